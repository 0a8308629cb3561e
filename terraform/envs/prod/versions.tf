terraform {
  # 1.11: S3 backend native locking (use_lockfile) is GA; cross-variable validation (1.9+).
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned to the 5.x series; >= 5.81 for the optional OIDC thumbprint_list. Commit the
      # .terraform.lock.hcl produced by `terraform init` to pin the exact build.
      version = "~> 5.81"
    }
  }
}
