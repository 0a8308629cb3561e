variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "alarm_topic_arn" {
  description = "Existing SNS topic for alarm notifications (e.g. the on-call topic). null creates an encrypted \"<name>-<environment>-alarms\" topic."
  type        = string
  default     = null
}

variable "alarm_email_endpoints" {
  description = "E-mail addresses subscribed to the created alarm topic (each must confirm). Ignored when alarm_topic_arn is set."
  type        = list(string)
  default     = []
}

variable "queue_name" {
  description = "Name of the ingestion queue."
  type        = string
}

variable "dlq_name" {
  description = "Name of the dead-letter queue."
  type        = string
}

variable "sns_dlq_name" {
  description = "Name of the SNS subscription's dead-letter queue (messages SNS could not deliver to the ingestion queue)."
  type        = string
}

variable "queue_oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest message of the ingestion queue is older than this (the worker is not keeping up or is down)."
  type        = number
  default     = 300
}

variable "db_instance_identifier" {
  description = "RDS instance identifier."
  type        = string
}

variable "db_cpu_threshold_percent" {
  description = "Alarm when the average RDS CPU stays above this for two 5-minute periods (seed section 5.1: 80 % for 10 min)."
  type        = number
  default     = 80
}

variable "db_freeable_memory_threshold_bytes" {
  description = "Alarm when RDS FreeableMemory averages below this over 5 minutes. Seed section 5.1 asks for > 90 % memory used: set it to 10 % of the instance class's RAM."
  type        = number
}

variable "db_free_storage_threshold_bytes" {
  description = "Alarm when RDS FreeStorageSpace drops below this many bytes."
  type        = number
  default     = 2147483648 # 2 GiB
}

variable "sns_topic_name" {
  description = "Optional ingestion topic name: alarms on NumberOfNotificationsFailed > 0 when set."
  type        = string
  default     = null
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the alarm topic's KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}
