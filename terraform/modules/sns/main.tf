# The ingestion topic: the API publishes here, SNS fans out to the SQS queue(s) subscribed to it.
# Messages are encrypted at rest with a customer-managed KMS key.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  topic_name   = "${var.name}-${var.environment}-${var.topic_suffix}"
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# Key policy: the account root statement is the AWS default (it delegates key use to IAM policies,
# e.g. the api IRSA role's kms:GenerateDataKey). SNS and SQS service principals may use the key
# only on behalf of this account (SNS delivers to subscribed queues; SQS reads what SNS wrote).
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
    sid       = "AllowSnsAndSqsServiceUse"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "sqs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "topic" {
  description             = "Encrypts SNS topic ${local.topic_name}"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "topic" {
  name          = "alias/${local.topic_name}-sns"
  target_key_id = aws_kms_key.topic.key_id
}

resource "aws_sns_topic" "this" {
  name              = local.topic_name
  kms_master_key_id = aws_kms_key.topic.arn
}

# Topic policy: only principals of this account (through their IAM policies) may publish or
# subscribe, and only over TLS. Nothing is granted to other accounts or to "*".
data "aws_iam_policy_document" "topic" {
  statement {
    sid    = "AccountPrincipalsViaIAM"
    effect = "Allow"
    actions = [
      "sns:Publish",
      "sns:Subscribe",
      "sns:GetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
    ]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

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

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}
