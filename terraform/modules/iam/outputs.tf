output "api_role_arn" {
  description = "IRSA role of the API ServiceAccount (Helm: eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.this["api"].arn
}

output "worker_role_arn" {
  description = "IRSA role of the worker ServiceAccount (Helm: eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.this["worker"].arn
}

output "service_accounts" {
  description = "The namespace/ServiceAccount each role trusts; the Helm release must use exactly these."
  value = {
    namespace = var.namespace
    api       = var.api_service_account
    worker    = var.worker_service_account
  }
}
