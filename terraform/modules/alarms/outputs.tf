output "alarm_topic_arn" {
  description = "SNS topic receiving the alarm and OK notifications."
  value       = local.topic_arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.queue_oldest_message_age.alarm_name,
      aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name,
      aws_cloudwatch_metric_alarm.sns_dlq_not_empty.alarm_name,
      aws_cloudwatch_metric_alarm.db_cpu.alarm_name,
      aws_cloudwatch_metric_alarm.db_freeable_memory.alarm_name,
      aws_cloudwatch_metric_alarm.db_free_storage.alarm_name,
    ],
    aws_cloudwatch_metric_alarm.sns_failed_notifications[*].alarm_name,
  )
}
