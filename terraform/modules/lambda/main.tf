# The worker as an SQS-triggered Lambda (alternative to the EKS worker Deployment; run one or the
# other against a queue). The latamctl-lambda binary is the `bootstrap` of a provided.al2023
# function. The event source reports per-message failures (ReportBatchItemFailures), so only the
# failed messages of a batch become visible again; after maxReceiveCount receives the queue's
# redrive policy moves them to the DLQ. That redrive is the function's failure destination: a
# Lambda dead_letter_config would only apply to asynchronous invocations, which this is not.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  function_name  = "${var.name}-${var.environment}-worker"
  log_group_name = "/aws/lambda/${local.function_name}"
  partition      = data.aws_partition.current.partition
  account_id     = data.aws_caller_identity.current.account_id
  region         = data.aws_region.current.name

  # The contract with the latamctl-lambda binary. The password is not here: the function reads it
  # from the secret at LATAMCTL_DATABASE_SECRET_ARN.
  # arn:aws:sqs:REGION:ACCOUNT:NAME -> https://sqs.REGION.amazonaws.com/ACCOUNT/NAME
  queue_arn_parts = split(":", var.queue_arn)
  queue_url       = "https://sqs.${local.queue_arn_parts[3]}.amazonaws.com/${local.queue_arn_parts[4]}/${local.queue_arn_parts[5]}"

  latamctl_environment = {
    LATAMCTL_STORE               = "postgres"
    LATAMCTL_DATABASE_HOST       = var.database_host
    LATAMCTL_DATABASE_NAME       = var.database_name
    LATAMCTL_DATABASE_USER       = var.database_user
    LATAMCTL_DATABASE_SECRET_ARN = var.database_secret_arn
    # A batch that fails store-wide is held invisible this long (README.md: the arithmetic).
    LATAMCTL_AWS_QUEUE_URL            = local.queue_url
    LATAMCTL_WORKER_STORE_OUTAGE_HOLD = "${var.store_outage_hold_seconds}s"
  }
}

# ---------------------------------------------------------------------------------------------
# KMS: environment variables and the log group
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
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "AllowCloudWatchLogsForThisFunction"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Encrypts Lambda ${local.function_name} environment and logs"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.function_name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_in_days variable: 365 in prod, shorter in dev to save cost.
  name              = local.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = aws_kms_key.this.arn
}

# ---------------------------------------------------------------------------------------------
# Network: private subnets; egress only to the database and to AWS APIs over HTTPS
# ---------------------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name        = "${local.function_name}-sg"
  description = "Lambda ${local.function_name}: egress to PostgreSQL and HTTPS only"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.database_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS APIs (Secrets Manager) through the NAT gateway"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# ---------------------------------------------------------------------------------------------
# Execution role
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# ENI management for the VPC config (and basic logging). AWS-managed; its ec2 actions do not
# support resource-level permissions.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# X-Ray tracing (PutTraceSegments / PutTelemetryRecords have no resource-level permissions).
resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

data "aws_iam_policy_document" "this" {
  statement {
    sid    = "ConsumeIngestionQueue"
    effect = "Allow"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "DecryptQueueMessagesThroughSqs"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.queue_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadDatabaseSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_secret_arn]
  }

  statement {
    sid       = "DecryptDatabaseSecretThroughSecretsManager"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.database_secret_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "consume-ingestion-queue"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# ---------------------------------------------------------------------------------------------
# Function and trigger
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:SQS-triggered (synchronous poller): a function DLQ never receives these events; failures go to the queue's redrive DLQ.
  #checkov:skip=CKV_AWS_272:Code signing needs a Signer profile and signed artifacts from CI; the zip is built from source and pinned by source_code_hash.
  function_name = local.function_name
  description   = "latamctl worker: SQS ingestion queue -> PostgreSQL"
  role          = aws_iam_role.this.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions

  kms_key_arn = aws_kms_key.this.arn

  environment {
    variables = merge(var.environment_variables, local.latamctl_environment)
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
    aws_iam_role_policy_attachment.vpc_access,
  ]
}

resource "aws_lambda_event_source_mapping" "sqs" {
  event_source_arn = var.queue_arn
  function_name    = aws_lambda_function.this.arn
  enabled          = true

  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }

  depends_on = [aws_iam_role_policy.this]
}
