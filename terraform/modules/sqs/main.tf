# The ingestion queue, its dead-letter queue, the SNS -> SQS subscription and its own DLQ.
#
# Flow: topic --(raw delivery)--> queue --(maxReceiveCount failures)--> DLQ.
#             \--(delivery to the queue failed)--> SNS DLQ (the subscription's redrive policy).
# Raw message delivery means the SQS body is exactly what the API published and SNS message
# attributes arrive as SQS message attributes (no SNS JSON envelope for the worker to unwrap).
#
# Two DLQs on purpose: the queue's DLQ holds messages the worker failed to store; the SNS DLQ
# holds messages SNS could not put on the queue at all (the API already answered 200 for them).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  queue_name   = "${var.name}-${var.environment}-${var.queue_suffix}"
  dlq_name     = "${local.queue_name}-dlq"
  sns_dlq_name = "${local.queue_name}-sns-dlq"
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# One key for the queue and both DLQs (a message keeps the same protection when it is redriven).
# SNS must be able to encrypt into the queue and into the SNS DLQ, but only for deliveries from
# our topic: for both, SNS calls KMS with aws:SourceArn = the topic, so one statement covers both.
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
  description             = "Encrypts SQS queues ${local.queue_name}, ${local.dlq_name} and ${local.sns_dlq_name}"
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

# ---------------------------------------------------------------------------------------------
# SNS DLQ: the subscription's dead-letter queue
# ---------------------------------------------------------------------------------------------
# SNS retries server-side delivery errors (SQS unavailable) for a long time, but a client-side
# error (the queue policy or the KMS key policy denies SNS, the queue was deleted or recreated)
# is not retried: without a subscription redrive policy SNS discards the message, after the API
# already answered 200. Those messages land here instead. A queue of its own, so they never mix
# with the worker's failures in the queue's DLQ; alarmed in the alarms module. Retention is the
# maximum: the clock starts when SNS writes the message here, and a fix may take a while.
resource "aws_sqs_queue" "sns_dlq" {
  name                              = local.sns_dlq_name
  message_retention_seconds         = 1209600 # 14 days, the maximum
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  kms_master_key_id                 = aws_kms_key.queue.arn
  kms_data_key_reuse_period_seconds = 300

  # Only SNS writes here; no SQS queue may use it as its dead-letter target.
  redrive_allow_policy = jsonencode({
    redrivePermission = "denyAll"
  })
}

# SNS may send only on behalf of our topic (the same condition as on the main queue). Operators
# read and redrive through their IAM permissions. TLS is required for every SQS call.
data "aws_iam_policy_document" "sns_dlq" {
  statement {
    sid       = "AllowTopicToDeadLetter"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.sns_dlq.arn]

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
    resources = [aws_sqs_queue.sns_dlq.arn]

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

resource "aws_sqs_queue_policy" "sns_dlq" {
  queue_url = aws_sqs_queue.sns_dlq.id
  policy    = data.aws_iam_policy_document.sns_dlq.json
}

# ---------------------------------------------------------------------------------------------
# The subscription
# ---------------------------------------------------------------------------------------------

# The fan-out the seed design was missing, with raw delivery. Its redrive policy sends what SNS
# cannot deliver to the queue (client-side errors at once, server-side errors after SNS's retries)
# to the SNS DLQ instead of discarding it.
resource "aws_sns_topic_subscription" "this" {
  topic_arn            = var.topic_arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this.arn
  raw_message_delivery = true
  filter_policy        = var.filter_policy

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.sns_dlq.arn
  })

  # The queue and the SNS DLQ must accept the topic's messages before the first delivery.
  depends_on = [aws_sqs_queue_policy.this, aws_sqs_queue_policy.sns_dlq]
}
