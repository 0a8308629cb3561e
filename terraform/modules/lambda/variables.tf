variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "package_path" {
  description = "Path of the deployment zip holding the `bootstrap` executable built from the latamctl-lambda binary (e.g. `cargo lambda build --release --arm64 --bin latamctl-lambda --output-format zip`)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must point to a .zip file."
  }
}

variable "architecture" {
  description = "Instruction set of the function; must match the binary in the zip."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MiB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Function timeout in seconds for one batch. The queue's visibility timeout should be >= 6x this."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and capping) the function; keep it >= max_concurrency so the SQS poller is never throttled."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrent_executions >= var.max_concurrency
    error_message = "reserved_concurrent_executions must be >= max_concurrency, otherwise SQS batches get throttled and retried."
  }
}

variable "max_concurrency" {
  description = "Maximum concurrent invocations the SQS event source may start (2-1000); caps the database connections opened by the Lambda worker."
  type        = number
  default     = 5

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000."
  }
}

variable "batch_size" {
  description = "Messages per invocation (1-10 keeps the standard queue behaviour of the ESM)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10
    error_message = "batch_size must be between 1 and 10."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the event source waits to fill a batch before invoking (0-300 s)."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "queue_arn" {
  description = "ARN of the ingestion queue that triggers the function. Failed messages go to its DLQ through the queue's redrive policy."
  type        = string
}

variable "queue_kms_key_arn" {
  description = "ARN of the KMS key encrypting the queue (the event source decrypts with the function's role)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the function's ENIs (egress through NAT for Secrets Manager)."
  type        = list(string)
}

variable "database_security_group_id" {
  description = "Security group of the database; the function's security group may egress to it on 5432."
  type        = string
}

variable "database_host" {
  description = "Database host (LATAMCTL_DATABASE_HOST)."
  type        = string
}

variable "database_name" {
  description = "Database name (LATAMCTL_DATABASE_NAME)."
  type        = string
}

variable "database_user" {
  description = "Database user (LATAMCTL_DATABASE_USER)."
  type        = string
}

variable "database_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the database password (LATAMCTL_DATABASE_SECRET_ARN)."
  type        = string
}

variable "database_secret_kms_key_arn" {
  description = "ARN of the KMS key encrypting the database secret."
  type        = string
}

variable "environment_variables" {
  description = "Extra environment variables (e.g. RUST_LOG). They cannot override the LATAMCTL_* variables set by this module; never put secrets here."
  type        = map(string)
  default     = {}
}

variable "log_retention_in_days" {
  description = "Retention of the function's CloudWatch log group."
  type        = number
  default     = 365
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the function's KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "store_outage_hold_seconds" {
  description = "How long a batch that failed store-wide (database down or refusing writes) stays invisible before it is retried. With the queue's max_receive_count M, an outage of up to (M - 1) x this many seconds dead-letters no healthy message (README.md)."
  type        = number
  default     = 900

  validation {
    condition     = var.store_outage_hold_seconds >= 0 && var.store_outage_hold_seconds <= 43200
    error_message = "store_outage_hold_seconds must be between 0 and 43200 (SQS's 12 h visibility limit)."
  }
}
