variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

variable "vpc_id" {
  description = "VPC the database lives in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnet IDs for the DB subnet group (at least two AZs; never public subnets)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An RDS subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on the PostgreSQL port, keyed by a static label (e.g. { eks = \"sg-...\", lambda = \"sg-...\" }). Nothing else can reach the database."
  type        = map(string)
}

variable "engine_version" {
  description = "PostgreSQL engine version. A major version (\"16\") lets RDS pick and auto-upgrade the minor."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.engine_version))
    error_message = "This module is written for PostgreSQL 16 (parameter group family postgres16)."
  }
}

variable "instance_class" {
  description = "RDS instance class (e.g. db.t4g.medium for dev, db.m7g.large for prod)."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage >= 20
    error_message = "gp3 storage for PostgreSQL starts at 20 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Upper bound in GiB for storage autoscaling (0 disables autoscaling)."
  type        = number
  default     = 100
}

variable "database_name" {
  description = "Name of the database created on the instance (latamctl config: [database] name)."
  type        = string
  default     = "latamctl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must start with a letter and contain only lowercase letters, digits and underscores."
  }
}

variable "master_username" {
  description = "Master user name (latamctl config: [database] user). The password is generated and rotated by RDS in Secrets Manager; it never appears in Terraform."
  type        = string
  default     = "latamctl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be 1-16 lowercase letters/digits/underscores, start with a letter, and not be a reserved name."
  }
}

variable "multi_az" {
  description = "Run a synchronous standby in a second AZ (automatic failover). true in prod."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off. true in prod."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Skip the final snapshot on destroy. Only for disposable environments."
  type        = bool
  default     = false
}

variable "backup_retention_period" {
  description = "Days of automated backups / point-in-time recovery (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be between 1 and 35 (0 would disable backups)."
  }
}

variable "backup_window" {
  description = "Daily UTC backup window (hh24:mi-hh24:mi); must not overlap maintenance_window."
  type        = string
  default     = "03:00-04:00"
}

variable "maintenance_window" {
  description = "Weekly UTC maintenance window (ddd:hh24:mi-ddd:hh24:mi)."
  type        = string
  default     = "sun:05:00-sun:06:00"
}

variable "performance_insights_retention_period" {
  description = "Performance Insights retention in days (7 is the free tier; otherwise a multiple of 31 up to 731)."
  type        = number
  default     = 7
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 disables; 1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "log_min_duration_statement_ms" {
  description = "Log statements slower than this many milliseconds (-1 disables slow-query logging)."
  type        = number
  default     = 500
}

variable "log_retention_in_days" {
  description = "Retention of the exported PostgreSQL logs in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "apply_immediately" {
  description = "Apply modifications immediately instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the database KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}
