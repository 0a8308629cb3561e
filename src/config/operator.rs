//! The sections only the operator commands read: what `provision` creates, the thresholds of
//! `status`, and where `status` finds the Kubernetes release.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `latamctl provision` creates, besides the names derived from `name`/`environment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionConfig {
    /// How long the main queue keeps a message.
    #[serde(with = "humantime_serde")]
    pub queue_retention: Duration,
    /// How long the dead-letter queue keeps a message (longer than the main queue: a moved
    /// message keeps its original enqueue time).
    #[serde(with = "humantime_serde")]
    pub dlq_retention: Duration,
    /// Alarm when the oldest message in the queue is older than this.
    #[serde(with = "humantime_serde")]
    pub alarm_oldest_message_age: Duration,
    /// Customer-managed KMS key of the topic (its ARN: Terraform's `sns_kms_key_arn` output).
    /// Terraform owns the key; provision only names it. Unset: the AWS-managed `alias/aws/sns`.
    pub sns_kms_key: Option<String>,
    /// Customer-managed KMS key of the three queues (Terraform's `sqs_kms_key_arn` output),
    /// with data keys reused for 300 s as the Terraform module sets. Unset: SSE-SQS.
    pub sqs_kms_key: Option<String>,
    /// Threshold of the RDS free-storage alarm provision manages when `aws.rds_instance_id`
    /// is set (Terraform's `latamctl_config` output writes the env's value). 0: 10 % of the
    /// instance's allocated storage, at least 2 GiB, as `terraform/envs/*` compute it.
    pub db_free_storage_alarm_bytes: u64,
}

/// Thresholds of `latamctl status` (defaults from the seed's alerts and SLOs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Longest wait for each check.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
    /// Warn when the dead-letter queue holds more messages than this.
    pub dlq_warn: u64,
    /// Warn when the oldest queued message is older than this.
    #[serde(with = "humantime_serde")]
    pub oldest_message_warn: Duration,
    /// Fail when the oldest queued message is older than this.
    #[serde(with = "humantime_serde")]
    pub oldest_message_fail: Duration,
    /// Warn when the API's error ratio (4xx+5xx) is above this (seed: 1 %).
    pub error_rate_warn: f64,
    /// Warn when the API's p95 latency is above this (seed SLO: 200 ms).
    #[serde(with = "humantime_serde")]
    pub p95_warn: Duration,
    /// Warn when a database round trip takes longer than this (seed SLO: 100 ms).
    #[serde(with = "humantime_serde")]
    pub db_latency_warn: Duration,
    /// Warn when the disk the data lives on (the embedded data dir's filesystem, the RDS
    /// storage) is more than this fraction used (seed 4.2).
    pub disk_used_warn: f64,
    /// Fail when it is more than this fraction used.
    pub disk_used_fail: f64,
    /// Warn when the RDS instance's CPU (CloudWatch CPUUtilization, last 5 minutes) is above
    /// this percentage (seed 5.1: 80 %).
    pub rds_cpu_warn_percent: f64,
    /// Warn when RDS connections are above this fraction of `max_connections`.
    pub rds_connections_warn: f64,
    /// `max_connections` of the RDS instance; 0: PostgreSQL's RDS default for the instance
    /// class's memory (`LEAST(memory / 9531392, 5000)`).
    pub rds_max_connections: u64,
    /// Warn when a read replica lags more than this.
    #[serde(with = "humantime_serde")]
    pub rds_replica_lag_warn: Duration,
    /// Warn when pending RDS maintenance (DescribePendingMaintenanceActions) is due within
    /// this, so it can be applied in a window the team chooses rather than the one RDS does.
    #[serde(with = "humantime_serde")]
    pub rds_maintenance_warn: Duration,
}

/// Where `status` finds the pipeline's Kubernetes objects (`KUBECONFIG` or in-cluster).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Check Kubernetes at all (skipped when no kubeconfig is found either way).
    pub enabled: bool,
    /// Namespace of the Helm release.
    pub namespace: String,
    /// Helm release name. The chart names its workloads `<release>-api`/`-worker` when the
    /// release name contains "latamctl" (or `name_override`), else
    /// `<release>-latamctl-api`/`-worker`, cut to 52 characters before the suffix.
    pub release: String,
    /// The release's `nameOverride` chart value, when it sets one.
    pub name_override: Option<String>,
    /// The release's `fullnameOverride` chart value, when it sets one.
    pub fullname_override: Option<String>,
    /// The components the release deploys (`api`, `worker`): leave one out when its values
    /// set `<component>.enabled: false`.
    pub components: Vec<String>,
    /// The image the pods should run (`repository:tag`, `latamctl:tag` or a bare tag); a pod
    /// running another is a warning. `status --expect-image` sets it too.
    pub expected_image: Option<String>,
    /// kubeconfig context (default: the current one).
    pub context: Option<String>,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            queue_retention: Duration::from_secs(4 * 86_400),
            dlq_retention: Duration::from_secs(14 * 86_400),
            alarm_oldest_message_age: Duration::from_secs(300),
            sns_kms_key: None,
            sqs_kms_key: None,
            db_free_storage_alarm_bytes: 0,
        }
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(5),
            dlq_warn: 0,
            oldest_message_warn: Duration::from_secs(300),
            oldest_message_fail: Duration::from_secs(900),
            error_rate_warn: 0.01,
            p95_warn: Duration::from_millis(200),
            db_latency_warn: Duration::from_millis(100),
            disk_used_warn: 0.8,
            disk_used_fail: 0.9,
            rds_cpu_warn_percent: 80.0,
            rds_connections_warn: 0.8,
            rds_max_connections: 0,
            rds_replica_lag_warn: Duration::from_secs(30),
            rds_maintenance_warn: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: "latam".to_owned(),
            release: "latamctl".to_owned(),
            name_override: None,
            fullname_override: None,
            components: vec!["api".to_owned(), "worker".to_owned()],
            expected_image: None,
            context: None,
        }
    }
}
