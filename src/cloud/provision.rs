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
        });
    }

    async fn topic(&mut self) -> Result<Option<String>> {
        let name = self.names.topic.clone();
        let sns = &self.clients.bus.sns;
        let desired = BTreeMap::from([("KmsMasterKeyId", "alias/aws/sns")]);
        match find_topic(sns, &name).await? {
            None => {
                let arn = if self.apply {
                    let mut req = sns.create_topic().name(&name);
                    for (k, v) in &desired {
                        req = req.attributes(*k, *v);
                    }
                    let out = req
                        .send()
                        .await
                        .map_err(|e| classify("sns:CreateTopic", e))?;
                    out.topic_arn
                } else {
                    None
                };
                let detail = format!(
                    "SNS topic, encrypted (KMS alias/aws/sns); {}",
                    arn.as_deref().unwrap_or(PENDING)
                );
                self.record("sns topic", &name, Action::Create, detail);
                Ok(arn)
            }
            Some(arn) => {
                let attrs = sns
                    .get_topic_attributes()
                    .topic_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| classify("sns:GetTopicAttributes", e))?
                    .attributes
                    .unwrap_or_default();
                let mut differing = Vec::new();
                for (k, v) in &desired {
                    if attrs.get(*k).map(String::as_str) != Some(*v) {
                        differing.push(*k);
                        if self.apply {
                            sns.set_topic_attributes()
                                .topic_arn(&arn)
                                .attribute_name(*k)
                                .attribute_value(*v)
                                .send()
                                .await
                                .map_err(|e| classify("sns:SetTopicAttributes", e))?;
                        }
                    }
                }
                let (action, detail) = if differing.is_empty() {
                    (Action::Unchanged, arn.clone())
                } else {
                    (Action::Update, format!("{}: {arn}", differing.join(", ")))
                };
                self.record("sns topic", &name, action, detail);
                Ok(Some(arn))
            }
        }
    }

    async fn dlq(&mut self) -> Result<(Option<String>, Option<String>)> {
        let name = self.names.dlq.clone();
        let desired = BTreeMap::from([
            (
                QueueAttributeName::MessageRetentionPeriod,
                self.config.provision.dlq_retention.as_secs().to_string(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
        ]);
        self.queue("sqs dlq", &name, desired, "dead-letter queue")
            .await
    }

    async fn main_queue(
        &mut self,
        topic_arn: Option<&str>,
        dlq_arn: Option<&str>,
    ) -> Result<(Option<String>, Option<String>)> {
        let name = self.names.queue.clone();
        let mut desired = BTreeMap::from([
            (
                QueueAttributeName::MessageRetentionPeriod,
                self.config.provision.queue_retention.as_secs().to_string(),
            ),
            (
                QueueAttributeName::VisibilityTimeout,
                self.config
                    .worker
                    .visibility_timeout
                    .as_secs()
                    .max(1)
                    .to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "20".to_owned(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
        ]);
        if let Some(dlq_arn) = dlq_arn {
            desired.insert(
                QueueAttributeName::RedrivePolicy,
                json!({
                    "deadLetterTargetArn": dlq_arn,
                    "maxReceiveCount": self.config.queue.max_receive_count,
                })
                .to_string(),
            );
        }
        let (url, arn) = self
            .queue(
                "sqs queue",
                &name,
                desired,
                &format!(
                    "redrive to DLQ after {} receives",
                    self.config.queue.max_receive_count
                ),
            )
            .await?;
        // The policy names the queue's own ARN, known only once it exists.
        if let (Some(url), Some(arn), Some(topic_arn)) = (&url, &arn, topic_arn) {
            let policy = queue_policy(arn, topic_arn);
            self.queue_attribute(
                "sqs queue policy",
                &name,
                url,
                QueueAttributeName::Policy,
                policy,
                "only the topic may send",
            )
            .await?;
        } else {
            self.record(
                "sqs queue policy",
                &name,
                Action::Create,
                "only the topic may send".into(),
            );
        }
        Ok((url, arn))
    }

    /// Creates the queue or brings its attributes to `desired`.
    async fn queue(
        &mut self,
        resource: &'static str,
        name: &str,
        desired: BTreeMap<QueueAttributeName, String>,
        what: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let sqs = &self.clients.bus.sqs;
        let existing = existing_queue_url(sqs, name).await?;
        let Some(url) = existing else {
            if !self.apply {
                self.record(resource, name, Action::Create, format!("{what}; {PENDING}"));
                return Ok((None, None));
            }
            let url = sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(desired.into_iter().collect()))
                .send()
                .await
                .map_err(|e| classify("sqs:CreateQueue", e))?
                .queue_url
                .ok_or_else(|| Error::Invalid(format!("CreateQueue {name} returned no URL")))?;
            let arn = queue_attributes(self.clients, &url)
                .await?
                .remove(&QueueAttributeName::QueueArn);
            self.record(resource, name, Action::Create, format!("{what}; {url}"));
            return Ok((Some(url), arn));
        };
        let actual = queue_attributes(self.clients, &url).await?;
        let differing: HashMap<QueueAttributeName, String> = desired
            .into_iter()
            .filter(|(k, v)| !same_attribute(actual.get(k), v))
            .collect();
        let arn = actual.get(&QueueAttributeName::QueueArn).cloned();
        if differing.is_empty() {
            self.record(resource, name, Action::Unchanged, url.clone());
        } else {
            let mut keys: Vec<&str> = differing.keys().map(|k| k.as_str()).collect();
            keys.sort_unstable();
            let detail = format!("{}: {url}", keys.join(", "));
            if self.apply {
                sqs.set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(differing))
                    .send()
                    .await
                    .map_err(|e| classify("sqs:SetQueueAttributes", e))?;
            }
            self.record(resource, name, Action::Update, detail);
        }
        Ok((Some(url), arn))
    }

    /// One JSON-valued queue attribute (policy), compared by meaning, not by bytes.
    async fn queue_attribute(
        &mut self,
        resource: &'static str,
        name: &str,
        url: &str,
        attribute: QueueAttributeName,
        value: Value,
        what: &str,
    ) -> Result<()> {
        let actual = queue_attributes(self.clients, url).await?;
        let text = value.to_string();
        let action = match actual.get(&attribute) {
            None => Action::Create,
            Some(current) if same_attribute(Some(current), &text) => Action::Unchanged,
            Some(_) => Action::Update,
        };
        if action.is_change() && self.apply {
            self.clients
                .bus
                .sqs
                .set_queue_attributes()
                .queue_url(url)
                .attributes(attribute, text)
                .send()
                .await
                .map_err(|e| classify("sqs:SetQueueAttributes", e))?;
        }
        self.record(resource, name, action, what.to_owned());
        Ok(())
    }

    /// The subscription's own dead-letter queue: SNS discards a message it cannot deliver
    /// for a client-side reason (queue policy, KMS) unless the subscription has one.
    async fn sns_dlq(
        &mut self,
        topic_arn: Option<&str>,
    ) -> Result<(Option<String>, Option<String>)> {
        let name = self.names.sns_dlq.clone();
        let desired = BTreeMap::from([
            (
                QueueAttributeName::MessageRetentionPeriod,
                self.config.provision.dlq_retention.as_secs().to_string(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
        ]);
        let (url, arn) = self
            .queue(
                "sqs sns-dlq",
                &name,
                desired,
                "what SNS could not deliver to the queue",
            )
            .await?;
        if let (Some(url), Some(arn), Some(topic_arn)) = (&url, &arn, topic_arn) {
            self.queue_attribute(
                "sqs sns-dlq policy",
                &name,
                url,
                QueueAttributeName::Policy,
                queue_policy(arn, topic_arn),
                "only the topic may send",
            )
            .await?;
        } else {
            self.record(
                "sqs sns-dlq policy",
                &name,
                Action::Create,
                "only the topic may send".into(),
            );
        }
        Ok((url, arn))
    }

    async fn subscription(
        &mut self,
        topic_arn: Option<&str>,
        queue_arn: Option<&str>,
        sns_dlq_arn: Option<&str>,
    ) -> Result<()> {
        let name = format!("{} → {}", self.names.topic, self.names.queue);
        let what = "sqs, raw delivery, undeliverable to the sns-dlq";
        let (Some(topic_arn), Some(queue_arn)) = (topic_arn, queue_arn) else {
            self.record(
                "sns subscription",
                &name,
                Action::Create,
                format!("{what}; {PENDING}"),
            );
            return Ok(());
        };
        let mut desired = BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
        if let Some(dlq) = sns_dlq_arn {
            desired.insert(
                "RedrivePolicy",
                json!({"deadLetterTargetArn": dlq}).to_string(),
            );
        }
        let sns = &self.clients.bus.sns;
        match find_subscription(sns, topic_arn, queue_arn).await? {
            None => {
                let detail = if self.apply {
                    let mut req = sns
                        .subscribe()
                        .topic_arn(topic_arn)
                        .protocol("sqs")
                        .endpoint(queue_arn)
                        .return_subscription_arn(true);
                    for (k, v) in &desired {
                        req = req.attributes(*k, v);
                    }
                    let out = req.send().await.map_err(|e| classify("sns:Subscribe", e))?;
                    out.subscription_arn.unwrap_or_default()
                } else {
                    PENDING.to_owned()
                };
                self.record(
                    "sns subscription",
                    &name,
                    Action::Create,
                    format!("{what}; {detail}"),
                );
            }
            Some(arn) => {
                let attrs = sns
                    .get_subscription_attributes()
                    .subscription_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| classify("sns:GetSubscriptionAttributes", e))?
                    .attributes
                    .unwrap_or_default();
                let differing: Vec<(&str, &String)> = desired
                    .iter()
                    .filter(|(k, v)| !same_attribute(attrs.get(**k), v))
                    .map(|(k, v)| (*k, v))
                    .collect();
                if differing.is_empty() {
                    self.record("sns subscription", &name, Action::Unchanged, arn);
                } else {
                    if self.apply {
                        for (k, v) in &differing {
                            sns.set_subscription_attributes()
                                .subscription_arn(&arn)
                                .attribute_name(*k)
                                .attribute_value(*v)
                                .send()
                                .await
                                .map_err(|e| classify("sns:SetSubscriptionAttributes", e))?;
                        }
                    }
                    let keys: Vec<&str> = differing.iter().map(|(k, _)| *k).collect();
                    self.record(
                        "sns subscription",
                        &name,
                        Action::Update,
                        format!("{}: {arn}", keys.join(", ")),
                    );
                }
            }
        }
        Ok(())
    }

    fn desired_alarms(&self) -> Vec<AlarmSpec> {
        vec![
            AlarmSpec {
                name: self.names.alarm_oldest_age.clone(),
                description: format!(
                    "Oldest message in {} is older than {} s: the worker is not keeping up or is down.",
                    self.names.queue,
                    self.config.provision.alarm_oldest_message_age.as_secs()
                ),
                metric: "ApproximateAgeOfOldestMessage",
                queue: self.names.queue.clone(),
                threshold: self.config.provision.alarm_oldest_message_age.as_secs() as f64,
                evaluation_periods: 5,
            },
            AlarmSpec {
                name: self.names.alarm_sns_dlq_depth.clone(),
                description: format!(
                    "SNS could not deliver messages to {} (queue policy, KMS, deleted queue); they wait in {}.",
                    self.names.queue, self.names.sns_dlq
                ),
                metric: "ApproximateNumberOfMessagesVisible",
                queue: self.names.sns_dlq.clone(),
                threshold: 0.0,
                evaluation_periods: 1,
            },
            AlarmSpec {
                name: self.names.alarm_dlq_depth.clone(),
                description: format!(
                    "Messages in the dead-letter queue {}: inspect with `latamctl drain --queue dlq --peek`.",
                    self.names.dlq
                ),
                metric: "ApproximateNumberOfMessagesVisible",
                queue: self.names.dlq.clone(),
                threshold: 0.0,
                evaluation_periods: 1,
            },
        ]
    }

    async fn alarms(&mut self) -> Result<()> {
        let specs = self.desired_alarms();
        let cw = &self.clients.cloudwatch;
        let existing = cw
            .describe_alarms()
            .set_alarm_names(Some(specs.iter().map(|s| s.name.clone()).collect()))
            .send()
            .await
            .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?
            .metric_alarms
            .unwrap_or_default();
        let actions: Vec<String> = self.config.aws.alarm_topic_arn.iter().cloned().collect();
        for spec in specs {
            let current = existing
                .iter()
                .find(|a| a.alarm_name.as_deref() == Some(&spec.name));
            let action = match current {
                None => Action::Create,
                Some(a) if spec.matches(a, &actions) => Action::Unchanged,
                Some(_) => Action::Update,
            };
            if action.is_change() && self.apply {
                cw.put_metric_alarm()
                    .alarm_name(&spec.name)
                    .alarm_description(&spec.description)
                    .namespace("AWS/SQS")
                    .metric_name(spec.metric)
                    .dimensions(
                        Dimension::builder()
                            .name("QueueName")
                            .value(&spec.queue)
                            .build(),
                    )
                    .statistic(Statistic::Maximum)
                    .period(60)
                    .evaluation_periods(spec.evaluation_periods)
                    .threshold(spec.threshold)
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    .treat_missing_data("notBreaching")
                    .set_alarm_actions(Some(actions.clone()))
                    .set_ok_actions(Some(actions.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("cloudwatch:PutMetricAlarm", e))?;
            }
            let detail = format!(
                "{} {} > {} for {} min",
                spec.queue, spec.metric, spec.threshold, spec.evaluation_periods
            );
            self.record("cloudwatch alarm", &spec.name, action, detail);
        }
        Ok(())
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

struct AlarmSpec {
    name: String,
    description: String,
    metric: &'static str,
    queue: String,
    threshold: f64,
    evaluation_periods: i32,
}

impl AlarmSpec {
    fn matches(&self, a: &MetricAlarm, actions: &[String]) -> bool {
        let dims_ok = a.dimensions().iter().any(|d| {
            d.name.as_deref() == Some("QueueName") && d.value.as_deref() == Some(&self.queue)
        });
        a.metric_name.as_deref() == Some(self.metric)
            && a.namespace.as_deref() == Some("AWS/SQS")
            && a.threshold == Some(self.threshold)
            && a.evaluation_periods == Some(self.evaluation_periods)
            && a.period == Some(60)
            && a.statistic == Some(Statistic::Maximum)
            && a.comparison_operator == Some(ComparisonOperator::GreaterThanThreshold)
            && a.alarm_description.as_deref() == Some(&self.description)
            && a.alarm_actions() == actions
            && dims_ok
    }
}

fn queue_policy(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowOnlyTheTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    })
}

/// Equal by meaning: JSON documents compared as values (numbers and numeric strings alike),
/// plain strings compared as they are.
fn same_attribute(actual: Option<&String>, desired: &str) -> bool {
    let Some(actual) = actual else { return false };
    if actual == desired {
        return true;
    }
    match (
        serde_json::from_str::<Value>(actual),
        serde_json::from_str::<Value>(desired),
    ) {
        (Ok(a), Ok(d)) if a.is_object() || d.is_object() => normalize(a) == normalize(d),
        _ => false,
    }
}

/// Numbers as strings, so `"maxReceiveCount": "5"` equals `"maxReceiveCount": 5`.
fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

pub(super) async fn queue_attributes(
    clients: &CloudClients,
    url: &str,
) -> Result<HashMap<QueueAttributeName, String>> {
    Ok(clients
        .bus
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| classify("sqs:GetQueueAttributes", e))?
        .attributes
        .unwrap_or_default())
}

/// The queue's URL, `None` when it does not exist; any other failure is an error (a denied
/// or throttled lookup must not pass for "absent").
pub(super) async fn existing_queue_url(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) => match classify("sqs:GetQueueUrl", e) {
            AwsError::NotFound(_) => Ok(None),
            other => Err(other.into()),
        },
    }
}

pub(super) async fn find_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<Option<String>> {
    let suffix = format!(":{name}");
    let mut token = None;
    loop {
        let out = sns
            .list_topics()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify("sns:ListTopics", e))?;
        if let Some(arn) = out
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn.as_deref())
            .find(|arn| arn.ends_with(&suffix))
        {
            return Ok(Some(arn.to_owned()));
        }
        token = out.next_token;
        if token.is_none() {
            return Ok(None);
        }
    }
}

pub(crate) async fn find_subscription(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
) -> Result<Option<String>> {
    let mut token = None;
    loop {
        let out = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify("sns:ListSubscriptionsByTopic", e))?;
        if let Some(arn) = out
            .subscriptions()
            .iter()
            .find(|s| {
                s.protocol.as_deref() == Some("sqs") && s.endpoint.as_deref() == Some(queue_arn)
            })
            .and_then(|s| s.subscription_arn.clone())
        {
            return Ok(Some(arn));
        }
        token = out.next_token;
        if token.is_none() {
            return Ok(None);
        }
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
    }
}
