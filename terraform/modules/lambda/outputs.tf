output "function_name" {
  description = "Name of the worker function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the worker function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "Execution role of the worker function."
  value       = aws_iam_role.this.arn
}

output "security_group_id" {
  description = "Security group of the function's ENIs (allowed by the database security group)."
  value       = aws_security_group.this.id
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping (disable it to pause consumption)."
  value       = aws_lambda_event_source_mapping.sqs.uuid
}
