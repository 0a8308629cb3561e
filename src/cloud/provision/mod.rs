//! `latamctl provision`: create or update the SNS topic, the SQS queue and its DLQ, the queue
//! policy, the SNS→SQS subscription and the CloudWatch alarms; idempotent, with a dry-run plan
//! and a destroy mode.
//!
//! Every resource is read first and compared with what the config wants; only differences
//! are written, so a second run reports everything `unchanged` and `--dry-run` doubles as
//! drift detection. RDS and EKS belong to Terraform: they are only checked.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::plan::{Action, Change, Error, Outputs, Plan, Result};
use super::{CloudClients, Names};
use crate::aws::{AwsError, classify};
use crate::config::Config;

mod alarms;
mod sns;
mod sqs;

pub(crate) use sns::find_subscription;
pub(super) use sns::find_topic;
use sqs::same_attribute;
pub(super) use sqs::{existing_queue_url, queue_attributes};

const PENDING: &str = "(known after apply)";

struct Provisioner<'a> {
    clients: &'a CloudClients,
    config: &'a Config,
    names: Names,
    apply: bool,
    changes: Vec<Change>,
}

/// Plans (`apply = false`) or applies the pipeline's AWS resources.
pub async fn provision(clients: &CloudClients, config: &Config, apply: bool) -> Result<Plan> {
    let mut p = Provisioner {
        clients,
        config,
        names: Names::from_config(config),
        apply,
        changes: Vec::new(),
    };
    let topic_arn = p.topic().await?;
    p.topic_policy(topic_arn.as_deref()).await?;
    let (dlq_url, dlq_arn) = p.dlq().await?;
    // The DLQ's RedriveAllowPolicy (which queues may dead-letter into it) is set by the
    // Terraform module; provision leaves it alone because moto, the emulator the tests use,
    // does not implement it, and the queue policy already limits who can send.
    let (queue_url, queue_arn) = p
        .main_queue(topic_arn.as_deref(), dlq_arn.as_deref())
        .await?;
    let (sns_dlq_url, sns_dlq_arn) = p.sns_dlq(topic_arn.as_deref()).await?;
    p.subscription(
        topic_arn.as_deref(),
        queue_arn.as_deref(),
        sns_dlq_arn.as_deref(),
    )
    .await?;
    p.alarms().await?;
    p.check_rds().await;
    p.check_eks().await;
    Ok(Plan {
        applied: apply,
        changes: p.changes,
        outputs: Outputs {
            region: clients.region(),
            topic_arn,
            queue_url,
            dlq_url,
            sns_dlq_url,
        },
    })
}

impl Provisioner<'_> {
    fn record(&mut self, resource: &'static str, name: &str, action: Action, detail: String) {
        self.changes.push(Change {
            resource,
            name: name.to_owned(),
            action,
            detail,
            desired: BTreeMap::new(),
        });
    }

    /// Records a change with what provision sets on the resource.
    fn record_desired<K: ToString, V: ToString>(
        &mut self,
        resource: &'static str,
        name: &str,
        action: Action,
        detail: String,
        desired: impl IntoIterator<Item = (K, V)>,
    ) {
        self.record(resource, name, action, detail);
        if let Some(last) = self.changes.last_mut() {
            last.desired = desired
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }

    async fn check_rds(&mut self) {
        let Some(id) = self.config.aws.rds_instance_id.clone() else {
            return;
        };
        let (action, detail) = match self.clients.rds_instance(&id).await {
            Ok(Some(db)) => (
                if db.status == "available" {
                    Action::Exists
                } else {
                    Action::Missing
                },
                format!("{}, status {} (managed by Terraform)", db.engine, db.status),
            ),
            Ok(None) => (Action::Missing, "not found: apply terraform/ first".into()),
            Err(e) => (Action::Missing, format!("{e}: apply terraform/ first")),
        };
        self.record("rds instance", &id, action, detail);
    }

    async fn check_eks(&mut self) {
        let Some(name) = self.config.aws.eks_cluster.clone() else {
            return;
        };
        let (action, detail) = match self.clients.eks_cluster(&name).await {
            Ok(Some(cluster)) => (
                if cluster.status == "ACTIVE" {
                    Action::Exists
                } else {
                    Action::Missing
                },
                format!("status {} (managed by Terraform)", cluster.status),
            ),
            Ok(None) => (Action::Missing, "not found: apply terraform/ first".into()),
            Err(e) => (Action::Missing, format!("{e}: apply terraform/ first")),
        };
        self.record("eks cluster", &name, action, detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_attributes_compare_by_meaning() {
        let a = r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":"5"}"#.to_owned();
        assert!(same_attribute(
            Some(&a),
            r#"{"maxReceiveCount": 5, "deadLetterTargetArn": "arn:x"}"#
        ));
        assert!(!same_attribute(
            Some(&a),
            r#"{"maxReceiveCount": 6, "deadLetterTargetArn": "arn:x"}"#
        ));
        assert!(same_attribute(Some(&"30".to_owned()), "30"));
        assert!(!same_attribute(None, "30"));
        assert!(same_attribute(None, ""), "\"\" wants the attribute unset");
    }
}
