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
use serde::Serialize;
use serde_json::{Value, json};

use super::{CloudClients, Names};
use crate::aws::{AwsError, classify};
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What provision did, or would do, to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
    /// Already gone (destroy).
    Absent,
    /// A checked resource (RDS, EKS) exists.
    Exists,
    /// A checked resource is missing or not usable.
    Missing,
}

impl Action {
    pub fn is_change(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub resource: &'static str,
    pub name: String,
    pub action: Action,
    pub detail: String,
}

/// ARNs and URLs `serve` needs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub region: String,
    pub topic_arn: Option<String>,
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// Where SNS puts what it could not deliver to the queue.
    pub sns_dlq_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub applied: bool,
    pub changes: Vec<Change>,
    pub outputs: Outputs,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    pub fn has_missing(&self) -> bool {
        self.changes.iter().any(|c| c.action == Action::Missing)
    }
}

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
        let out = self
            .clients
            .rds
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await;
        let (action, detail) = match out {
            Ok(out) => match out.db_instances.unwrap_or_default().into_iter().next() {
                Some(db) => {
                    let status = db.db_instance_status.unwrap_or_default();
                    let engine = db.engine.unwrap_or_default();
                    let action = if status == "available" {
                        Action::Exists
                    } else {
                        Action::Missing
                    };
                    (
                        action,
                        format!("{engine}, status {status} (managed by Terraform)"),
                    )
                }
                None => (Action::Missing, "not found: apply terraform/ first".into()),
            },
            Err(e) => (
                Action::Missing,
                format!(
                    "{}: apply terraform/ first",
                    classify("rds:DescribeDBInstances", e)
                ),
            ),
        };
        self.record("rds instance", &id, action, detail);
    }

    async fn check_eks(&mut self) {
        let Some(name) = self.config.aws.eks_cluster.clone() else {
            return;
        };
        let out = self.clients.eks.describe_cluster().name(&name).send().await;
        let (action, detail) = match out {
            Ok(out) => {
                let status = out
                    .cluster
                    .and_then(|c| c.status)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                let action = if status == "ACTIVE" {
                    Action::Exists
                } else {
                    Action::Missing
                };
                (action, format!("status {status} (managed by Terraform)"))
            }
            Err(e) => (
                Action::Missing,
                format!(
                    "{}: apply terraform/ first",
                    classify("eks:DescribeCluster", e)
                ),
            ),
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

async fn queue_attributes(
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
async fn existing_queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) => match classify("sqs:GetQueueUrl", e) {
            AwsError::NotFound(_) => Ok(None),
            other => Err(other.into()),
        },
    }
}

async fn find_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<Option<String>> {
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

/// Deletes what `provision` created; "already gone" counts as success.
pub async fn destroy(clients: &CloudClients, config: &Config, apply: bool) -> Result<Plan> {
    let names = Names::from_config(config);
    let mut changes = Vec::new();
    let sns = &clients.bus.sns;
    let sqs = &clients.bus.sqs;
    let topic_arn = find_topic(sns, &names.topic).await?;
    let queue_url = existing_queue_url(sqs, &names.queue).await?;
    let queue_arn = match &queue_url {
        Some(url) => queue_attributes(clients, url)
            .await?
            .remove(&QueueAttributeName::QueueArn),
        None => None,
    };
    let mut push = |resource, name: &str, present: bool, detail: String| {
        changes.push(Change {
            resource,
            name: name.to_owned(),
            action: if present {
                Action::Delete
            } else {
                Action::Absent
            },
            detail,
        });
    };

    // Subscription first, then alarms, queues, topic: nothing left pointing at a deleted
    // resource.
    let sub_name = format!("{} → {}", names.topic, names.queue);
    let subscription = match (&topic_arn, &queue_arn) {
        (Some(t), Some(q)) => find_subscription(sns, t, q).await?,
        _ => None,
    };
    if let (Some(arn), true) = (&subscription, apply) {
        sns.unsubscribe()
            .subscription_arn(arn)
            .send()
            .await
            .map_err(|e| classify("sns:Unsubscribe", e))?;
    }
    push(
        "sns subscription",
        &sub_name,
        subscription.is_some(),
        subscription.clone().unwrap_or_default(),
    );

    // The same list `provision` creates from, plus the names earlier releases used.
    let current: Vec<String> = names.alarms().iter().map(|n| n.to_string()).collect();
    let legacy = names.legacy_alarms();
    let existing: Vec<String> = clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(current.iter().chain(&legacy).cloned().collect()))
        .send()
        .await
        .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?
        .metric_alarms
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.alarm_name)
        .collect();
    if apply && !existing.is_empty() {
        clients
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(existing.clone()))
            .send()
            .await
            .map_err(|e| classify("cloudwatch:DeleteAlarms", e))?;
    }
    for name in current
        .iter()
        .chain(legacy.iter().filter(|n| existing.contains(n)))
    {
        push(
            "cloudwatch alarm",
            name,
            existing.contains(name),
            String::new(),
        );
    }

    for (resource, name) in [
        ("sqs queue", &names.queue),
        ("sqs dlq", &names.dlq),
        ("sqs sns-dlq", &names.sns_dlq),
    ] {
        let url = existing_queue_url(sqs, name).await?;
        if let (Some(url), true) = (&url, apply) {
            sqs.delete_queue()
                .queue_url(url)
                .send()
                .await
                .map_err(|e| classify("sqs:DeleteQueue", e))?;
        }
        push(
            resource,
            name,
            url.is_some(),
            url.clone().unwrap_or_default(),
        );
    }

    if let (Some(arn), true) = (&topic_arn, apply) {
        sns.delete_topic()
            .topic_arn(arn)
            .send()
            .await
            .map_err(|e| classify("sns:DeleteTopic", e))?;
    }
    push(
        "sns topic",
        &names.topic,
        topic_arn.is_some(),
        topic_arn.clone().unwrap_or_default(),
    );

    Ok(Plan {
        applied: apply,
        changes,
        outputs: Outputs {
            region: clients.region(),
            ..Outputs::default()
        },
    })
}

/// Writes the outputs into the `[aws]` table of a TOML config file and sets `bus = "aws"`,
/// keeping everything else (comments included). Atomic: a temp file renamed over the
/// original.
pub fn write_config(
    path: &std::path::Path,
    outputs: &Outputs,
    endpoint_url: Option<&str>,
) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::Invalid(format!("{} is not valid TOML: {e}", path.display())))?;
    // What provision made is SNS/SQS: every later command reading this file means them.
    doc["bus"] = toml_edit::value("aws");
    if !doc.contains_table("aws") {
        doc["aws"] = toml_edit::table();
    }
    let aws = &mut doc["aws"];
    aws["region"] = toml_edit::value(outputs.region.clone());
    if let Some(endpoint) = endpoint_url {
        aws["endpoint_url"] = toml_edit::value(endpoint);
    }
    for (key, value) in [
        ("topic_arn", &outputs.topic_arn),
        ("queue_url", &outputs.queue_url),
        ("dlq_url", &outputs.dlq_url),
        ("sns_dlq_url", &outputs.sns_dlq_url),
    ] {
        if let Some(v) = value {
            aws[key] = toml_edit::value(v.clone());
        }
    }
    crate::output::write_atomically(path, &doc.to_string())
        .map_err(|e| Error::Invalid(format!("{e:#}")))
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

    #[test]
    fn write_config_keeps_other_keys_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latamctl.toml");
        std::fs::write(
            &path,
            "# mine\nbus = \"aws\"\n[aws]\nregion = \"eu-west-1\"\n[worker]\nconcurrency = 4\n",
        )
        .unwrap();
        let outputs = Outputs {
            region: "us-east-1".into(),
            topic_arn: Some("arn:aws:sns:us-east-1:1:t".into()),
            queue_url: Some("http://q".into()),
            dlq_url: Some("http://d".into()),
            sns_dlq_url: None,
        };
        write_config(&path, &outputs, Some("http://127.0.0.1:5000")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("concurrency = 4"),
            "{text}"
        );
        let value: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(value["aws"]["region"].as_str(), Some("us-east-1"));
        assert_eq!(
            value["aws"]["topic_arn"].as_str(),
            Some("arn:aws:sns:us-east-1:1:t")
        );
        assert_eq!(value["aws"]["dlq_url"].as_str(), Some("http://d"));
        assert_eq!(
            value["aws"]["endpoint_url"].as_str(),
            Some("http://127.0.0.1:5000")
        );
    }
}
