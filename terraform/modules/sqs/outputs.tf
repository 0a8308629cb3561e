output "queue_url" {
  description = "URL of the ingestion queue (latamctl config: [aws] queue_url)."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the ingestion queue."
  value       = aws_sqs_queue.this.arn
}

output "queue_name" {
  description = "Name of the ingestion queue (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.this.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue (latamctl config: [aws] dlq_url)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.dlq.name
}

output "sns_dlq_url" {
  description = "URL of the SNS subscription's dead-letter queue: messages SNS could not deliver to the queue."
  value       = aws_sqs_queue.sns_dlq.url
}

output "sns_dlq_arn" {
  description = "ARN of the SNS subscription's dead-letter queue."
  value       = aws_sqs_queue.sns_dlq.arn
}

output "sns_dlq_name" {
  description = "Name of the SNS subscription's dead-letter queue (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.sns_dlq.name
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the queue and both DLQs; consumers need kms:Decrypt on it."
  value       = aws_kms_key.queue.arn
}

output "subscription_arn" {
  description = "ARN of the SNS -> SQS subscription."
  value       = aws_sns_topic_subscription.this.arn
}
