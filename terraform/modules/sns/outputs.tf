output "topic_arn" {
  description = "ARN of the ingestion topic (latamctl config: [aws] topic_arn)."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the ingestion topic (CloudWatch dimension TopicName)."
  value       = aws_sns_topic.this.name
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the topic; publishers need kms:GenerateDataKey and kms:Decrypt on it."
  value       = aws_kms_key.topic.arn
}
