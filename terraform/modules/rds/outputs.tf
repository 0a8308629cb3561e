output "address" {
  description = "DNS name of the instance (latamctl config: [database] host)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Database name (latamctl config: [database] name)."
  value       = aws_db_instance.this.db_name
}

output "username" {
  description = "Master user name (latamctl config: [database] user)."
  value       = aws_db_instance.this.username
}

output "secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret holding {\"username\",\"password\"} (latamctl config: [database] secret_arn). The password itself is never a Terraform output."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the instance and its secret; secret readers need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}

output "instance_identifier" {
  description = "RDS instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}
