# Composition of the latamctl pipeline for one environment:
#
#   clients -> API (EKS) --sns:Publish--> SNS topic --raw--> SQS queue --> worker (EKS or Lambda) -> RDS
#                                              |               \--(maxReceiveCount)--> DLQ
#                                              \--(SNS could not deliver to the queue)--> SNS DLQ
#
# dev and prod share this file; they differ only in variables.tf defaults / tfvars.

locals {
  # The RDS free-storage alarm: 10 % of the initially allocated storage, at least 2 GiB
  # (latamctl provision computes the same from the instance when its config lacks it).
  db_free_storage_threshold_bytes = max(2 * 1024 * 1024 * 1024, floor(var.db_allocated_storage * 1024 * 1024 * 1024 * 0.10))
  # AWS: visibility timeout >= 6x the function timeout for an SQS-triggered Lambda, so a batch
  # still being retried by the poller does not become visible to another invocation.
  queue_visibility_timeout_seconds = var.enable_lambda_worker ? max(var.queue_visibility_timeout_seconds, 6 * var.lambda_timeout) : var.queue_visibility_timeout_seconds

  # The Lambda worker holds a batch 15 min through a database outage (modules/lambda/README.md):
  # 8 receives survive an outage of 7 x 15 min = 1 h 45 min without dead-lettering.
  max_receive_count = var.enable_lambda_worker ? max(var.max_receive_count, 8) : var.max_receive_count

  # The database accepts connections only from these security groups. Static keys keep for_each
  # plannable before the groups exist.
  db_client_security_groups = merge(
    { eks = module.eks.cluster_security_group_id },
    var.enable_lambda_worker ? { lambda = module.lambda_worker[0].security_group_id } : {},
  )
}

module "eks" {
  source = "../../modules/eks"

  name        = var.name
  environment = var.environment

  vpc_cidr              = var.vpc_cidr
  availability_zones    = var.availability_zones
  single_nat_gateway    = var.single_nat_gateway
  log_retention_in_days = var.log_retention_in_days

  kubernetes_version           = var.kubernetes_version
  endpoint_public_access       = var.cluster_endpoint_public_access
  public_access_cidrs          = var.cluster_public_access_cidrs
  cluster_admin_principal_arns = var.cluster_admin_principal_arns

  node_instance_types = var.node_instance_types
  node_ami_type       = var.node_ami_type
  node_capacity_type  = var.node_capacity_type
  node_min_size       = var.node_min_size
  node_desired_size   = var.node_desired_size
  node_max_size       = var.node_max_size

  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}

module "sns" {
  source = "../../modules/sns"

  name        = var.name
  environment = var.environment

  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}

module "sqs" {
  source = "../../modules/sqs"

  name        = var.name
  environment = var.environment
  topic_arn   = module.sns.topic_arn

  max_receive_count          = local.max_receive_count
  visibility_timeout_seconds = local.queue_visibility_timeout_seconds
  message_retention_seconds  = var.queue_message_retention_seconds
  # latamctl provision sets the same: provision.dlq_retention.
  dlq_message_retention_seconds = var.queue_dlq_message_retention_seconds

  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}

module "rds" {
  source = "../../modules/rds"

  name        = var.name
  environment = var.environment

  vpc_id                     = module.eks.vpc_id
  subnet_ids                 = module.eks.private_subnet_ids
  allowed_security_group_ids = local.db_client_security_groups

  instance_class          = var.db_instance_class
  allocated_storage       = var.db_allocated_storage
  max_allocated_storage   = var.db_max_allocated_storage
  database_name           = var.db_name
  master_username         = var.db_username
  multi_az                = var.db_multi_az
  deletion_protection     = var.db_deletion_protection
  skip_final_snapshot     = var.db_skip_final_snapshot
  backup_retention_period = var.db_backup_retention_days
  log_retention_in_days   = var.log_retention_in_days

  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}

module "iam" {
  source = "../../modules/iam"

  name        = var.name
  environment = var.environment

  oidc_provider_arn        = module.eks.oidc_provider_arn
  oidc_issuer              = module.eks.oidc_issuer
  namespace                = var.k8s_namespace
  api_service_account      = var.api_service_account
  worker_service_account   = var.worker_service_account
  worker_trusted_role_arns = var.keda_operator_role_arn == null ? [] : [var.keda_operator_role_arn]

  topic_arn             = module.sns.topic_arn
  topic_kms_key_arn     = module.sns.kms_key_arn
  queue_arn             = module.sqs.queue_arn
  dlq_arn               = module.sqs.dlq_arn
  queue_kms_key_arn     = module.sqs.kms_key_arn
  db_secret_arn         = module.rds.secret_arn
  db_secret_kms_key_arn = module.rds.kms_key_arn
}

module "lambda_worker" {
  source = "../../modules/lambda"
  count  = var.enable_lambda_worker ? 1 : 0

  name        = var.name
  environment = var.environment

  package_path                   = var.lambda_package_path
  architecture                   = var.lambda_architecture
  timeout                        = var.lambda_timeout
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  max_concurrency                = var.lambda_max_concurrency
  environment_variables          = var.lambda_environment_variables

  queue_arn         = module.sqs.queue_arn
  queue_kms_key_arn = module.sqs.kms_key_arn

  vpc_id                      = module.eks.vpc_id
  subnet_ids                  = module.eks.private_subnet_ids
  database_security_group_id  = module.rds.security_group_id
  database_host               = module.rds.address
  database_name               = module.rds.database_name
  database_user               = module.rds.username
  database_secret_arn         = module.rds.secret_arn
  database_secret_kms_key_arn = module.rds.kms_key_arn

  log_retention_in_days       = var.log_retention_in_days
  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}

module "alarms" {
  source = "../../modules/alarms"

  name        = var.name
  environment = var.environment

  alarm_topic_arn       = var.alarm_topic_arn
  alarm_email_endpoints = var.alarm_email_endpoints

  queue_name                                 = module.sqs.queue_name
  dlq_name                                   = module.sqs.dlq_name
  sns_dlq_name                               = module.sqs.sns_dlq_name
  queue_oldest_message_age_threshold_seconds = var.queue_oldest_message_age_threshold_seconds

  db_instance_identifier = module.rds.instance_identifier
  # Seed 5.1: memory > 90 % used  <=>  FreeableMemory < 10 % of the instance's RAM.
  db_freeable_memory_threshold_bytes = floor(var.db_instance_memory_gib * 1024 * 1024 * 1024 * 0.10)
  db_free_storage_threshold_bytes    = local.db_free_storage_threshold_bytes

  sns_topic_name = module.sns.topic_name

  kms_deletion_window_in_days = var.kms_deletion_window_in_days
}
