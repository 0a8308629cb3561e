variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "topic_suffix" {
  description = "Suffix of the topic name: the topic is \"<name>-<environment>-<topic_suffix>\"."
  type        = string
  default     = "ingest"
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the topic's KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}
