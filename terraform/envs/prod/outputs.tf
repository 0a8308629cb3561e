# Everything latamctl and the Helm chart need. No output carries a password: the database
# password exists only in the RDS-managed Secrets Manager secret (db_secret_arn).

output "region" {
  description = "AWS region (latamctl config: [aws] region)."
  value       = var.region
}

output "topic_arn" {
  description = "Ingestion topic (latamctl config: [aws] topic_arn)."
  value       = module.sns.topic_arn
}

output "queue_url" {
  description = "Ingestion queue (latamctl config: [aws] queue_url)."
  value       = module.sqs.queue_url
}

output "queue_arn" {
  description = "ARN of the ingestion queue."
  value       = module.sqs.queue_arn
}

output "dlq_url" {
  description = "Dead-letter queue (latamctl config: [aws] dlq_url)."
  value       = module.sqs.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.sqs.dlq_arn
}

output "sns_dlq_url" {
  description = "Dead-letter queue of the SNS subscription: messages SNS could not deliver to the queue (redrive: terraform/README.md)."
  value       = module.sqs.sns_dlq_url
}

output "sns_dlq_arn" {
  description = "ARN of the SNS subscription's dead-letter queue."
  value       = module.sqs.sns_dlq_arn
}

output "db_endpoint" {
  description = "Database host name (latamctl config: [database] host)."
  value       = module.rds.address
}

output "db_port" {
  description = "Database port."
  value       = module.rds.port
}

output "db_name" {
  description = "Database name (latamctl config: [database] name)."
  value       = module.rds.database_name
}

output "db_user" {
  description = "Database user (latamctl config: [database] user)."
  value       = module.rds.username
}

output "db_secret_arn" {
  description = "Secrets Manager secret with the database credentials, rotated by RDS (latamctl config: [database] secret_arn)."
  value       = module.rds.secret_arn
}

output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --region <region> --name <cluster_name>)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "vpc_id" {
  description = "VPC of the stack."
  value       = module.eks.vpc_id
}

output "api_irsa_role_arn" {
  description = "Helm: annotate the API ServiceAccount with eks.amazonaws.com/role-arn = this."
  value       = module.iam.api_role_arn
}

output "worker_irsa_role_arn" {
  description = "Helm: annotate the worker ServiceAccount with eks.amazonaws.com/role-arn = this."
  value       = module.iam.worker_role_arn
}

output "irsa_service_accounts" {
  description = "Namespace and ServiceAccount names the IRSA roles trust; the Helm release must use them."
  value       = module.iam.service_accounts
}

output "lambda_worker_function_name" {
  description = "Name of the Lambda worker, or null when enable_lambda_worker = false."
  value       = var.enable_lambda_worker ? module.lambda_worker[0].function_name : null
}

output "alarm_topic_arn" {
  description = "SNS topic receiving CloudWatch alarm notifications."
  value       = module.alarms.alarm_topic_arn
}

output "sns_kms_key_arn" {
  description = "Customer-managed KMS key of the topic (latamctl config: [provision] sns_kms_key)."
  value       = module.sns.kms_key_arn
}

output "sqs_kms_key_arn" {
  description = "Customer-managed KMS key of the queues (latamctl config: [provision] sqs_kms_key)."
  value       = module.sqs.kms_key_arn
}

output "latamctl_config" {
  description = "Ready-to-paste latamctl TOML configuration for this environment (no secrets)."
  value       = <<-EOT
    [aws]
    region = "${var.region}"
    topic_arn = "${module.sns.topic_arn}"
    queue_url = "${module.sqs.queue_url}"
    dlq_url = "${module.sqs.dlq_url}"
    rds_instance_id = "${module.rds.instance_identifier}"

    # Terraform owns these keys; provision only names them, so it converges to this encryption.
    [provision]
    sns_kms_key = "${module.sns.kms_key_arn}"
    sqs_kms_key = "${module.sqs.kms_key_arn}"
    db_free_storage_alarm_bytes = ${local.db_free_storage_threshold_bytes}

    [database]
    host = "${module.rds.address}"
    name = "${module.rds.database_name}"
    user = "${module.rds.username}"
    secret_arn = "${module.rds.secret_arn}"
  EOT
}
