variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (eks module output oidc_provider_arn)."
  type        = string
}

variable "oidc_issuer" {
  description = "Cluster OIDC issuer without https:// (eks module output oidc_issuer), e.g. oidc.eks.us-east-1.amazonaws.com/id/ABC."
  type        = string

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not include the https:// scheme."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the latamctl Helm release."
  type        = string
  default     = "latam"
}

variable "api_service_account" {
  description = "ServiceAccount name of the API Deployment (the only subject the api role trusts)."
  type        = string
  default     = "latamctl-api"
}

variable "worker_service_account" {
  description = "ServiceAccount name of the worker Deployment (the only subject the worker role trusts)."
  type        = string
  default     = "latamctl-worker"
}

variable "topic_arn" {
  description = "ARN of the ingestion topic the API publishes to."
  type        = string
}

variable "topic_kms_key_arn" {
  description = "ARN of the KMS key encrypting the topic."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the ingestion queue the worker consumes."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (the worker may read its attributes only)."
  type        = string
}

variable "queue_kms_key_arn" {
  description = "ARN of the KMS key encrypting the queues."
  type        = string
}

variable "db_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret with the database credentials."
  type        = string
}

variable "db_secret_kms_key_arn" {
  description = "ARN of the KMS key encrypting the database secret."
  type        = string
}

variable "worker_trusted_role_arns" {
  description = "IAM role ARNs that may also assume the worker role (sts:AssumeRole), e.g. the KEDA operator's role when its aws-sqs-queue scaler uses identityOwner: workload to read the queue depth. Empty: only the worker ServiceAccount."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.worker_trusted_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+", a))])
    error_message = "worker_trusted_role_arns must be IAM role ARNs (no account roots or wildcards)."
  }
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to both roles (organisation guardrail)."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Maximum session duration of the roles in seconds (the SDKs refresh IRSA credentials automatically)."
  type        = number
  default     = 3600
}
