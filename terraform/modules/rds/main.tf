# PostgreSQL 16 on RDS: private, encrypted (storage, Performance Insights, logs and the master
# secret with one customer-managed key), TLS-only, reachable only from the given security groups.
# The master password is generated and rotated by RDS in Secrets Manager
# (manage_master_user_password); Terraform never sees it.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  identifier     = "${var.name}-${var.environment}-db"
  engine_major   = split(".", var.engine_version)[0]
  log_exports    = ["postgresql", "upgrade"]
  account_root   = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  log_group_base = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/aws/rds/instance/${local.identifier}"
}

# ---------------------------------------------------------------------------------------------
# KMS
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy. "Resource: *" means this key only; the root statement is the AWS default delegating to IAM.
  #checkov:skip=CKV_AWS_111:Key policy. "Resource: *" means this key only; the root statement is the AWS default delegating to IAM.
  #checkov:skip=CKV_AWS_356:Key policy. "Resource: *" means this key only; it cannot name its own ARN.
  statement {
    sid       = "AccountAdministrationViaIAM"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  # CloudWatch Logs encrypts the exported PostgreSQL logs of this instance only.
  statement {
    sid       = "AllowCloudWatchLogsForThisInstance"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["${local.log_group_base}/*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Encrypts RDS ${local.identifier}: storage, Performance Insights, logs, master secret"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.identifier}"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------------------------------------
# Network: private subnets only, ingress only from the named security groups
# ---------------------------------------------------------------------------------------------

resource "aws_db_subnet_group" "this" {
  name        = local.identifier
  description = "Private subnets for ${local.identifier}"
  subnet_ids  = var.subnet_ids
}

# No egress rules: the database never initiates connections.
resource "aws_security_group" "this" {
  name        = "${local.identifier}-sg"
  description = "PostgreSQL ${local.identifier}: ingress only from the application security groups"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = var.allowed_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

# ---------------------------------------------------------------------------------------------
# Parameters: TLS only, DDL and slow-query logging
# ---------------------------------------------------------------------------------------------

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.identifier}-pg${local.engine_major}-"
  family      = "postgres${local.engine_major}"
  description = "PostgreSQL ${local.engine_major} for ${local.identifier}: TLS required, DDL and slow-query logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_statement_ms)
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------------------------------------
# Logs and Enhanced Monitoring
# ---------------------------------------------------------------------------------------------

# Created before the instance so RDS does not create them with infinite retention and no KMS.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_in_days variable: 365 in prod, shorter in dev to save cost.
  for_each = toset(local.log_exports)

  name              = "/aws/rds/instance/${local.identifier}/${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  name               = "${local.identifier}-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# ---------------------------------------------------------------------------------------------
# The instance
# ---------------------------------------------------------------------------------------------

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:Multi-AZ is the multi_az variable: true in prod, false in dev to halve the cost.
  #checkov:skip=CKV_AWS_293:Deletion protection is the deletion_protection variable: true in prod, false in disposable dev.
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  port           = 5432

  db_name                       = var.database_name
  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.this.arn

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  multi_az            = var.multi_az
  deletion_protection = var.deletion_protection

  backup_retention_period   = var.backup_retention_period
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = "${local.identifier}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = var.apply_immediately

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = var.performance_insights_retention_period

  monitoring_interval = var.monitoring_interval
  monitoring_role_arn = var.monitoring_interval > 0 ? aws_iam_role.monitoring[0].arn : null

  enabled_cloudwatch_logs_exports = local.log_exports

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy_attachment.monitoring,
  ]
}
