terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Lower bound only in modules: the root modules (terraform/envs/*) pin the exact series.
      # 5.81 is the first release where aws_iam_openid_connect_provider.thumbprint_list is optional.
      version = ">= 5.81, < 7.0"
    }
  }
}
