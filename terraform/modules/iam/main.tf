# Least-privilege IRSA roles for the two latamctl workloads. Each role trusts exactly one
# ServiceAccount (namespace + name, via the :sub claim) and only tokens minted for STS (:aud);
# the worker role optionally also trusts named roles (the KEDA operator).
#
#   api    -> sns:Publish on the ingestion topic (+ the topic key, only through SNS)
#   worker -> consume the ingestion queue, read DLQ attributes, read the DB secret
#             (+ the queue and secret keys, only through SQS / Secrets Manager)

data "aws_region" "current" {}

locals {
  prefix = "${var.name}-${var.environment}"
  region = data.aws_region.current.name

  service_accounts = {
    api    = var.api_service_account
    worker = var.worker_service_account
  }
}

data "aws_iam_policy_document" "assume" {
  for_each = local.service_accounts

  statement {
    sid     = "IrsaFromOneServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.value}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }

  # KEDA (identityOwner: workload) assumes the worker role to read the queue depth.
  dynamic "statement" {
    for_each = each.key == "worker" && length(var.worker_trusted_role_arns) > 0 ? [1] : []

    content {
      sid     = "ExplicitlyTrustedRoles"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = var.worker_trusted_role_arns
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.service_accounts

  name                 = "${local.prefix}-${each.key}-irsa"
  description          = "IRSA role of ServiceAccount ${var.namespace}/${each.value}"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = var.max_session_duration
}

# ---------------------------------------------------------------------------------------------
# api: publish only
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "PublishToIngestionTopic"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [var.topic_arn]
  }

  statement {
    sid       = "UseTopicKeyThroughSns"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.topic_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "publish-ingestion-topic"
  role   = aws_iam_role.this["api"].id
  policy = data.aws_iam_policy_document.api.json
}

# ---------------------------------------------------------------------------------------------
# worker: consume the queue, store in PostgreSQL
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "worker" {
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
    sid       = "ReadDeadLetterQueueAttributes"
    effect    = "Allow"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.dlq_arn]
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
    resources = [var.db_secret_arn]
  }

  statement {
    sid       = "DecryptDatabaseSecretThroughSecretsManager"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.db_secret_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "consume-ingestion-queue"
  role   = aws_iam_role.this["worker"].id
  policy = data.aws_iam_policy_document.worker.json
}
