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

output "operator_policy_arn" {
  description = "Managed policy for the operator commands (provision, status, drain): attach it to the SRE or CI role."
  value       = aws_iam_policy.operator.arn
}
