variable "name" {
  description = "Short system name used as the first part of every resource name (e.g. \"latam\")."
  type        = string
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"); second part of every resource name."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# VPC
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC (/16 to /20). Public subnets take 1/256 each from its first sixteenth, private subnets one sixteenth each."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be a valid IPv4 CIDR between /16 and /20."
  }
}

variable "availability_zones" {
  description = "Availability zone names to spread subnets (and, with single_nat_gateway = false, NAT gateways) over, e.g. [\"us-east-1a\", \"us-east-1b\"]. Explicit so subnets never move when AWS adds a zone or one is impaired."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6
    error_message = "Give 2 (EKS and RDS need two AZs) to 6 availability zones."
  }

  validation {
    condition     = length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must not repeat a zone."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper, but egress depends on one AZ) instead of one per AZ."
  type        = bool
  default     = false
}

variable "flow_log_traffic_type" {
  description = "Traffic recorded by the VPC flow log: ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the VPC flow logs and EKS control-plane logs in CloudWatch Logs."
  type        = number
  default     = 365
}

# ---------------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "EKS Kubernetes version (major.minor)."
  type        = string
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version must look like \"1.35\"."
  }
}

variable "endpoint_public_access" {
  description = "Also expose the Kubernetes API endpoint publicly (restricted to public_access_cidrs). The private endpoint is always on."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint when endpoint_public_access = true. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0") && alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0))])
    error_message = "public_access_cidrs must be valid CIDRs and must not contain 0.0.0.0/0."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.public_access_cidrs) > 0
    error_message = "endpoint_public_access = true needs at least one CIDR in public_access_cidrs."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM principal ARNs (roles for humans or CI) granted cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "bootstrap_cluster_creator_admin_permissions" {
  description = "Grant the identity running Terraform cluster-admin at creation. Prefer cluster_admin_principal_arns."
  type        = bool
  default     = false
}

variable "cluster_addons" {
  description = "EKS managed add-ons to install (latest default version for the cluster's Kubernetes version)."
  type        = list(string)
  default     = ["vpc-cni", "kube-proxy", "coredns"]
}

# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------

variable "node_ami_type" {
  description = "AMI type of the managed node group (e.g. AL2023_x86_64_STANDARD, AL2023_ARM_64_STANDARD); must match node_instance_types."
  type        = string
  default     = "AL2023_x86_64_STANDARD"
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["t3.large"]
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Initial number of nodes (ignored afterwards so an autoscaler can own it)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 4

  validation {
    condition     = var.node_max_size >= var.node_min_size && var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size
    error_message = "Node group sizes must satisfy min <= desired <= max."
  }
}

variable "node_disk_size" {
  description = "Root volume size of each node in GiB (gp3, encrypted)."
  type        = number
  default     = 50
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the cluster KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}
