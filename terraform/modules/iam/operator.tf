# What an operator (an SRE, or CI) needs to run `latamctl provision` (create, update, --destroy),
# `latamctl status` and `latamctl drain` (peek, delete, --redrive) against this system, and
# nothing else: every resource-scoped action is limited to names starting with "<name>-<env>",
# the prefix the sns, sqs and alarms modules use. Attach the managed policy to the operator's
# role or group. tests/it/iam/operator_policy.rs runs those commands with exactly these
# actions against an IAM-enforcing emulator.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  arn_base   = "${local.partition}:%s:${local.region}:${local.account_id}"
}

data "aws_iam_policy_document" "operator" {
  statement {
    sid    = "ProvisionTopics"
    effect = "Allow"
    actions = [
      "sns:CreateTopic",
      "sns:DeleteTopic",
      "sns:GetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
      "sns:SetTopicAttributes",
      "sns:Subscribe",
    ]
    resources = ["arn:${format(local.arn_base, "sns")}:${local.prefix}-*"]
  }

  # Subscription ARNs are the topic's ARN plus ":<id>".
  statement {
    sid    = "ManageSubscriptions"
    effect = "Allow"
    actions = [
      "sns:GetSubscriptionAttributes",
      "sns:SetSubscriptionAttributes",
      "sns:Unsubscribe",
    ]
    resources = ["arn:${format(local.arn_base, "sns")}:${local.prefix}-*:*"]
  }

  statement {
    sid    = "ProvisionAndDrainQueues"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:CreateQueue",
      "sqs:DeleteMessage",
      "sqs:DeleteQueue",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
      "sqs:SetQueueAttributes",
    ]
    resources = ["arn:${format(local.arn_base, "sqs")}:${local.prefix}-*"]
  }

  statement {
    sid       = "ManageAlarms"
    effect    = "Allow"
    actions   = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"]
    resources = ["arn:${format(local.arn_base, "cloudwatch")}:alarm:${local.prefix}-*"]
  }

  # ListTopics and GetMetricStatistics support no resource-level permissions: AWS evaluates
  # them against "*".
  statement {
    sid       = "ReadWithoutResourceLevelPermissions"
    effect    = "Allow"
    actions   = ["cloudwatch:GetMetricStatistics", "sns:ListTopics"]
    resources = ["*"]
  }

  statement {
    sid       = "CheckDatabase"
    effect    = "Allow"
    actions   = ["rds:DescribeDBInstances", "rds:DescribePendingMaintenanceActions"]
    resources = ["arn:${format(local.arn_base, "rds")}:db:${local.prefix}-*"]
  }

  statement {
    sid       = "CheckCluster"
    effect    = "Allow"
    actions   = ["eks:DescribeCluster", "eks:ListNodegroups", "eks:ListAddons"]
    resources = ["arn:${format(local.arn_base, "eks")}:cluster/${local.prefix}-*"]
  }

  # status: each nodegroup's health and version skew.
  statement {
    sid       = "CheckNodegroups"
    effect    = "Allow"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${format(local.arn_base, "eks")}:nodegroup/${local.prefix}-*/*/*"]
  }

  # status: each add-on's status and health (vpc-cni, coredns, kube-proxy, ...).
  statement {
    sid       = "CheckAddons"
    effect    = "Allow"
    actions   = ["eks:DescribeAddon"]
    resources = ["arn:${format(local.arn_base, "eks")}:addon/${local.prefix}-*/*/*"]
  }

  # Peek and redrive read and re-send messages of the KMS-encrypted queues.
  statement {
    sid       = "UseQueueKeysThroughSqs"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.queue_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "operator" {
  name        = "${local.prefix}-latamctl-operator"
  description = "latamctl provision/status/drain on ${local.prefix}-* resources"
  policy      = data.aws_iam_policy_document.operator.json
}
