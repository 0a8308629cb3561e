# The ingestion queue, its dead-letter queue and the SNS -> SQS subscription.
#
# Flow: topic --(raw delivery)--> queue --(maxReceiveCount failures)--> DLQ.
# Raw message delivery means the SQS body is exactly what the API published and SNS message
# attributes arrive as SQS message attributes (no SNS JSON envelope for the worker to unwrap).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  queue_name   = "${var.name}-${var.environment}-${var.queue_suffix}"
  dlq_name     = "${local.queue_name}-dlq"
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# One key for the queue and its DLQ (a message keeps the same protection when it is redriven).
# SNS must be able to encrypt into the queue, but only for deliveries from our topic.
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

  statement {
    sid       = "AllowSnsDeliveryFromTopic"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.topic_arn]
    }
  }
}

resource "aws_kms_key" "queue" {
  description             = "Encrypts SQS queues ${local.queue_name} and ${local.dlq_name}"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "queue" {
  name          = "alias/${local.queue_name}-sqs"
  target_key_id = aws_kms_key.queue.key_id
}

resource "aws_sqs_queue" "dlq" {
  name                              = local.dlq_name
  message_retention_seconds         = var.dlq_message_retention_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  kms_master_key_id                 = aws_kms_key.queue.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "this" {
  name                              = local.queue_name
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  kms_master_key_id                 = aws_kms_key.queue.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only our main queue may use the DLQ as its dead-letter target. A separate resource because the
# DLQ is created before the queue that points at it.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

# Queue policy: the topic is the only sender; consumers (IRSA role, Lambda role) get access
# through their own IAM policies. TLS is required for every SQS call.
data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "AllowTopicToSend"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.topic_arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

# The DLQ receives only redriven messages (SQS moves them internally, no policy needed for that).
data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# The fan-out the seed design was missing. No subscription-level redrive: SNS retries delivery to
# SQS for ~23 days, and a DLQ here would mix SNS-failed messages with worker-failed ones.
resource "aws_sns_topic_subscription" "this" {
  topic_arn            = var.topic_arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this.arn
  raw_message_delivery = true
  filter_policy        = var.filter_policy

  # The queue must accept the topic's messages before the first delivery.
  depends_on = [aws_sqs_queue_policy.this]
}
