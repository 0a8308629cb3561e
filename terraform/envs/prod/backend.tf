# Remote state in S3 with S3-native locking (a .tflock object next to the state; no DynamoDB
# table needed since Terraform 1.10/1.11). Partial configuration: the bucket and region are given
# at init time so no account-specific name lives in the repository:
#
#   terraform init -backend-config=backend.hcl
#
# backend.hcl (not committed):
#   bucket = "acme-latam-tfstate"   # versioned, SSE-KMS, public access blocked
#   region = "us-east-1"
#
# With an older Terraform, replace use_lockfile with: dynamodb_table = "terraform-locks"
terraform {
  backend "s3" {
    key          = "latamctl/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
