# ---------------------------------------------------------------------------------------------
# Identity and naming: resources are named "<name>-<environment>-<component>"
# ---------------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region of the whole stack (latamctl config: [aws] region)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1."
  }
}

variable "name" {
  description = "Short system name, first part of every resource name."
  type        = string
  default     = "latam"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name))
    error_message = "name must be 2-15 lowercase letters, digits or dashes, starting with a letter (it prefixes names with length limits)."
  }
}

variable "environment" {
  description = "Environment name, second part of every resource name and the environment tag."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "project" {
  description = "Value of the project tag on every resource."
  type        = string
  default     = "latamctl"
}

variable "system" {
  description = "Value of the system tag on every resource."
  type        = string
  default     = "data-ingestion"
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before a destroyed KMS key is really deleted (7-30 days)."
  type        = number
  default     = 30
}

variable "log_retention_in_days" {
  description = "Retention of every CloudWatch log group of the stack (VPC flow logs, EKS, RDS, Lambda)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a value CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

# ---------------------------------------------------------------------------------------------
# Network and EKS
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC (/16 to /20)."
  type        = string
  default     = "10.30.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones (2-6) of var.region to spread subnets and NAT gateways over."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]

  validation {
    condition     = alltrue([for az in var.availability_zones : startswith(az, var.region)])
    error_message = "Every availability zone must belong to var.region (e.g. us-east-1a for us-east-1)."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per AZ (egress survives an AZ outage)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.35"
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API publicly as well (only to cluster_public_access_cidrs)."
  type        = bool
  default     = false
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs (office / VPN egress) allowed to the public Kubernetes API endpoint. Never 0.0.0.0/0."
  type        = list(string)
  default     = []
}

variable "cluster_admin_principal_arns" {
  description = "IAM role ARNs (SSO admin role, CI deployer) given cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_ami_type" {
  description = "AMI type of the managed node group; must match the instance types' architecture."
  type        = string
  default     = "AL2023_x86_64_STANDARD"
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT capacity for the node group."
  type        = string
  default     = "ON_DEMAND"
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Initial number of nodes."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 9
}

# ---------------------------------------------------------------------------------------------
# Kubernetes identities (must match the Helm release)
# ---------------------------------------------------------------------------------------------

variable "k8s_namespace" {
  description = "Namespace of the latamctl Helm release."
  type        = string
  default     = "latam"
}

variable "api_service_account" {
  description = "ServiceAccount of the API Deployment; its IRSA role may only publish to the topic."
  type        = string
  default     = "latamctl-api"
}

variable "worker_service_account" {
  description = "ServiceAccount of the worker Deployment; its IRSA role may only consume the queue and read the DB secret."
  type        = string
  default     = "latamctl-worker"
}

variable "keda_operator_role_arn" {
  description = "IRSA role of the KEDA operator, trusted to assume the worker role when the chart's KEDA aws-sqs-queue scaler uses identityOwner: workload. null when KEDA is not used."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Messaging
# ---------------------------------------------------------------------------------------------

variable "max_receive_count" {
  description = "Failed receives before a message moves to the DLQ."
  type        = number
  default     = 5
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the ingestion queue. Raised automatically to 6x the Lambda timeout when the Lambda worker is enabled."
  type        = number
  default     = 60
}

variable "queue_message_retention_seconds" {
  description = "Retention of unconsumed messages in the ingestion queue (the DLQ keeps 14 days)."
  type        = number
  default     = 345600
}

variable "queue_dlq_message_retention_seconds" {
  description = "Retention of the dead-letter queue; longer than queue_message_retention_seconds (latamctl: provision.dlq_retention)."
  type        = number
  default     = 1209600
}

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_instance_memory_gib" {
  description = "RAM of db_instance_class in GiB; the FreeableMemory alarm fires below 10 % of it (> 90 % used)."
  type        = number
  default     = 8

  validation {
    condition     = var.db_instance_memory_gib > 0
    error_message = "db_instance_memory_gib must be positive."
  }
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500

  validation {
    condition     = var.db_max_allocated_storage == 0 || var.db_max_allocated_storage >= var.db_allocated_storage
    error_message = "db_max_allocated_storage must be 0 (no autoscaling) or >= db_allocated_storage."
  }
}

variable "db_multi_az" {
  description = "Synchronous standby in another AZ with automatic failover."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database until this is set to false."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot when the database is destroyed."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated backups / point-in-time recovery."
  type        = number
  default     = 14
}

variable "db_name" {
  description = "Database name (latamctl config: [database] name)."
  type        = string
  default     = "latamctl"
}

variable "db_username" {
  description = "Database master user (latamctl config: [database] user); its password lives only in Secrets Manager."
  type        = string
  default     = "latamctl"
}

# ---------------------------------------------------------------------------------------------
# Optional Lambda worker
# ---------------------------------------------------------------------------------------------

variable "enable_lambda_worker" {
  description = "Consume the queue with the SQS-triggered latamctl-lambda function (then scale the EKS worker Deployment to 0)."
  type        = bool
  default     = false
}

variable "lambda_package_path" {
  description = "Zip holding `bootstrap` built from the latamctl-lambda binary; required when enable_lambda_worker = true."
  type        = string
  default     = "../../../target/lambda/latamctl-lambda/bootstrap.zip"
}

variable "lambda_architecture" {
  description = "arm64 or x86_64; must match the binary in the zip."
  type        = string
  default     = "arm64"
}

variable "lambda_timeout" {
  description = "Lambda timeout per batch in seconds."
  type        = number
  default     = 30
}

variable "lambda_reserved_concurrency" {
  description = "Reserved (and maximum) concurrency of the Lambda worker."
  type        = number
  default     = 20
}

variable "lambda_max_concurrency" {
  description = "Maximum concurrent invocations started by the SQS event source (bounds DB connections)."
  type        = number
  default     = 10
}

variable "lambda_environment_variables" {
  description = "Extra non-secret environment variables for the Lambda worker (e.g. { RUST_LOG = \"info\" })."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------

variable "alarm_topic_arn" {
  description = "Existing SNS topic for alarms (e.g. on-call); null creates an encrypted one."
  type        = string
  default     = null
}

variable "alarm_email_endpoints" {
  description = "E-mail addresses subscribed to the created alarm topic."
  type        = list(string)
  default     = []
}

variable "queue_oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest queued message is older than this many seconds."
  type        = number
  default     = 300
}
