variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "queue_suffix" {
  description = "Suffix of the queue name: the queue is \"<name>-<environment>-<queue_suffix>\", its DLQ \"...-dlq\", the subscription's DLQ \"...-sns-dlq\"."
  type        = string
  default     = "ingest"
}

variable "topic_arn" {
  description = "ARN of the SNS topic this queue subscribes to; the only sender the queue policy allows."
  type        = string
}

variable "max_receive_count" {
  description = "Receives after which a message that keeps failing is moved to the DLQ (redrive maxReceiveCount)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the main queue. Must exceed the worker's processing time per batch (for a Lambda consumer AWS recommends >= 6x the function timeout)."
  type        = number
  default     = 60

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 0 and 43200 (12 h)."
  }
}

variable "message_retention_seconds" {
  description = "How long the main queue keeps an unconsumed message (60 s - 14 days)."
  type        = number
  default     = 345600 # 4 days

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the DLQ keeps a failed message; must exceed message_retention_seconds (expiry counts from the original enqueue time)."
  type        = number
  default     = 1209600 # 14 days, the maximum

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }

  # A standard queue keeps a message's original enqueue time when it is moved to the DLQ, so the
  # DLQ must retain longer than the source queue or redriven-to-DLQ messages expire early.
  validation {
    condition     = var.dlq_message_retention_seconds > var.message_retention_seconds
    error_message = "dlq_message_retention_seconds must be greater than message_retention_seconds."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait of ReceiveMessage on the main queue (0-20 s); 20 minimises empty receives."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20
    error_message = "receive_wait_time_seconds must be between 0 and 20."
  }
}

variable "filter_policy" {
  description = "Optional SNS subscription filter policy (JSON string); null delivers every message."
  type        = string
  default     = null
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the queues' KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}
