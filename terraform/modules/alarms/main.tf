# CloudWatch alarms for the pipeline's infrastructure thresholds (seed design, section 5.1).
# The request-level thresholds of 5.1 (latency p99 > 400 ms, error rate > 1 %, availability) are
# application metrics and belong to the Prometheus rules of latamctl, not here.
#
# treat_missing_data is chosen per metric:
#   - SQS metrics: "notBreaching". An idle queue publishes no data points; that is not a backlog.
#   - RDS metrics: "missing". No data means the instance is not reporting (stopped, replaced);
#     the alarm keeps its last state instead of flapping to OK or firing a false CPU/memory page.
#   - SNS NumberOfNotificationsFailed: "notBreaching". Only published when there is traffic.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  prefix       = "${var.name}-${var.environment}"
  create_topic = var.alarm_topic_arn == null
  topic_arn    = local.create_topic ? aws_sns_topic.alarms[0].arn : var.alarm_topic_arn
  actions      = [local.topic_arn]
}

# ---------------------------------------------------------------------------------------------
# Alarm topic (created only when none is given), encrypted; CloudWatch may use the key
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
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "AllowCloudWatchAlarmsToPublish"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "alarms" {
  count = local.create_topic ? 1 : 0

  description             = "Encrypts SNS topic ${local.prefix}-alarms"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "alarms" {
  count = local.create_topic ? 1 : 0

  name          = "alias/${local.prefix}-alarms-sns"
  target_key_id = aws_kms_key.alarms[0].key_id
}

resource "aws_sns_topic" "alarms" {
  count = local.create_topic ? 1 : 0

  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms[0].arn
}

data "aws_iam_policy_document" "alarms_topic" {
  count = local.create_topic ? 1 : 0

  statement {
    sid       = "AllowCloudWatchAlarmsFromThisAccount"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "AccountPrincipalsViaIAM"
    effect    = "Allow"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [aws_sns_topic.alarms[0].arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.create_topic ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarms_topic[0].json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = local.create_topic ? toset(var.alarm_email_endpoints) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

# ---------------------------------------------------------------------------------------------
# SQS
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "queue_oldest_message_age" {
  alarm_name        = "${local.prefix}-sqs-oldest-message-age"
  alarm_description = "Oldest message in ${var.queue_name} is older than ${var.queue_oldest_message_age_threshold_seconds}s: workers are down or not keeping up."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateAgeOfOldestMessage"
  dimensions = {
    QueueName = var.queue_name
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_oldest_message_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name        = "${local.prefix}-sqs-dlq-not-empty"
  alarm_description = "${var.dlq_name} holds messages the worker failed to store after maxReceiveCount attempts: inspect and redrive (latamctl drain)."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = var.dlq_name
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# Messages SNS could not deliver to the ingestion queue (queue/KMS policy denies SNS, queue
# deleted or recreated). The API answered 200 for each of them: any message here is data that
# would otherwise have been lost, and nothing reprocesses it until an operator redrives it.
resource "aws_cloudwatch_metric_alarm" "sns_dlq_not_empty" {
  alarm_name        = "${local.prefix}-sqs-sns-dlq-not-empty"
  alarm_description = "${var.sns_dlq_name} holds messages SNS could not deliver to ${var.queue_name} (check the queue policy, the KMS key policy and that the queue exists); fix the cause, then redrive them to the queue (terraform/README.md)."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = var.sns_dlq_name
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# ---------------------------------------------------------------------------------------------
# RDS
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name        = "${local.prefix}-rds-cpu-high"
  alarm_description = "${var.db_instance_identifier} CPU above ${var.db_cpu_threshold_percent}% for 10 minutes."
  namespace         = "AWS/RDS"
  metric_name       = "CPUUtilization"
  dimensions = {
    DBInstanceIdentifier = var.db_instance_identifier
  }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.db_cpu_threshold_percent
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "db_freeable_memory" {
  alarm_name        = "${local.prefix}-rds-freeable-memory-low"
  alarm_description = "${var.db_instance_identifier} freeable memory below ${var.db_freeable_memory_threshold_bytes} bytes for 5 minutes (> 90% used)."
  namespace         = "AWS/RDS"
  metric_name       = "FreeableMemory"
  dimensions = {
    DBInstanceIdentifier = var.db_instance_identifier
  }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.db_freeable_memory_threshold_bytes
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "db_free_storage" {
  alarm_name        = "${local.prefix}-rds-free-storage-low"
  alarm_description = "${var.db_instance_identifier} free storage below ${var.db_free_storage_threshold_bytes} bytes."
  namespace         = "AWS/RDS"
  metric_name       = "FreeStorageSpace"
  dimensions = {
    DBInstanceIdentifier = var.db_instance_identifier
  }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.db_free_storage_threshold_bytes
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

# ---------------------------------------------------------------------------------------------
# SNS (optional)
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "sns_failed_notifications" {
  count = var.sns_topic_name == null ? 0 : 1

  alarm_name        = "${local.prefix}-sns-notifications-failed"
  alarm_description = "SNS could not deliver messages from ${coalesce(var.sns_topic_name, "-")} (check the queue policy and KMS key policy)."
  namespace         = "AWS/SNS"
  metric_name       = "NumberOfNotificationsFailed"
  dimensions = {
    TopicName = var.sns_topic_name
  }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}
