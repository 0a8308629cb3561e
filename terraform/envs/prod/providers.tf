provider "aws" {
  region = var.region

  # Every resource gets these tags; modules add only Name where useful.
  default_tags {
    tags = {
      project     = var.project
      environment = var.environment
      system      = var.system
      managed-by  = "terraform"
    }
  }
}
