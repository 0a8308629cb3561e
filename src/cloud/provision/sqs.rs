//! The SQS side: the queue, its dead-letter queue, the SNS dead-letter queue, their
//! attributes (compared by meaning, not text) and the queue policy that lets the topic send.

use super::*;

impl Provisioner<'_> {
    /// Encryption of every queue: the customer-managed key Terraform made (data keys reused
    /// for 300 s, as the module sets), else SSE-SQS.
    fn encryption(&self) -> Vec<(QueueAttributeName, String)> {
        match &self.config.provision.sqs_kms_key {
            Some(key) => vec![
                (QueueAttributeName::KmsMasterKeyId, key.clone()),
                (
                    QueueAttributeName::KmsDataKeyReusePeriodSeconds,
                    KMS_DATA_KEY_REUSE_SECONDS.to_string(),
                ),
            ],
            // No customer key: SSE-SQS, and a key found on the queue (Terraform's) is drift
            // the plan names, not something to keep silently ("" removes it).
            None => vec![
                (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
                (QueueAttributeName::KmsMasterKeyId, String::new()),
            ],
        }
    }

    pub(super) async fn dlq(&mut self) -> Result<(Option<String>, Option<String>)> {
        let name = self.names.dlq.clone();
        let mut desired = BTreeMap::from([
            (
                QueueAttributeName::MessageRetentionPeriod,
                self.config.provision.dlq_retention.as_secs().to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                RECEIVE_WAIT_SECONDS.to_string(),
            ),
        ]);
        desired.extend(self.encryption());
        let (url, arn) = self
            .queue("sqs dlq", &name, desired, "dead-letter queue")
            .await?;
        if let (Some(url), Some(arn)) = (&url, &arn) {
            self.queue_attribute(
                "sqs dlq policy",
                &name,
                url,
                QueueAttributeName::Policy,
                json!({"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn)]}),
                "TLS only",
            )
            .await?;
        } else {
            self.record("sqs dlq policy", &name, Action::Create, "TLS only".into());
        }
        Ok((url, arn))
    }

    pub(super) async fn main_queue(
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
                RECEIVE_WAIT_SECONDS.to_string(),
            ),
        ]);
        desired.extend(self.encryption());
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
            let policy = queue_policy("AllowTopicToSend", arn, topic_arn);
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
    pub(super) async fn queue(
        &mut self,
        resource: &'static str,
        name: &str,
        desired: BTreeMap<QueueAttributeName, String>,
        what: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let sqs = &self.clients.bus.sqs;
        let shown: Vec<(String, String)> = desired
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect();
        let existing = existing_queue_url(sqs, name).await?;
        let Some(url) = existing else {
            if !self.apply {
                self.record_desired(
                    resource,
                    name,
                    Action::Create,
                    format!("{what}; {PENDING}"),
                    shown,
                );
                return Ok((None, None));
            }
            let url = sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(
                    desired.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
                ))
                .send()
                .await
                .map_err(|e| classify("sqs:CreateQueue", e))?
                .queue_url
                .ok_or_else(|| Error::Invalid(format!("CreateQueue {name} returned no URL")))?;
            let arn = queue_attributes(self.clients, &url)
                .await?
                .remove(&QueueAttributeName::QueueArn);
            self.record_desired(
                resource,
                name,
                Action::Create,
                format!("{what}; {url}"),
                shown,
            );
            return Ok((Some(url), arn));
        };
        let actual = queue_attributes(self.clients, &url).await?;
        let differing: HashMap<QueueAttributeName, String> = desired
            .into_iter()
            .filter(|(k, v)| !same_attribute(actual.get(k), v))
            .collect();
        let arn = actual.get(&QueueAttributeName::QueueArn).cloned();
        if differing.is_empty() {
            self.record_desired(resource, name, Action::Unchanged, url.clone(), shown);
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
            self.record_desired(resource, name, Action::Update, detail, shown);
        }
        Ok((Some(url), arn))
    }

    /// One JSON-valued queue attribute (policy), compared by meaning, not by bytes.
    pub(super) async fn queue_attribute(
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
                .attributes(attribute.clone(), text.clone())
                .send()
                .await
                .map_err(|e| classify("sqs:SetQueueAttributes", e))?;
        }
        self.record_desired(
            resource,
            name,
            action,
            what.to_owned(),
            [(attribute.as_str().to_owned(), text)],
        );
        Ok(())
    }

    /// The subscription's own dead-letter queue: SNS discards a message it cannot deliver
    /// for a client-side reason (queue policy, KMS) unless the subscription has one.
    pub(super) async fn sns_dlq(
        &mut self,
        topic_arn: Option<&str>,
    ) -> Result<(Option<String>, Option<String>)> {
        let name = self.names.sns_dlq.clone();
        let mut desired = BTreeMap::from([
            // The longest SQS keeps anything: these are accepted messages SNS could not deliver.
            (
                QueueAttributeName::MessageRetentionPeriod,
                SQS_MAX_RETENTION_SECONDS.to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                RECEIVE_WAIT_SECONDS.to_string(),
            ),
        ]);
        desired.extend(self.encryption());
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
                queue_policy("AllowTopicToDeadLetter", arn, topic_arn),
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
}

/// Long polling of every queue (the Terraform module's `receive_wait_time_seconds`).
pub(super) const RECEIVE_WAIT_SECONDS: u32 = 20;
/// `kms_data_key_reuse_period_seconds` of the Terraform module.
pub(super) const KMS_DATA_KEY_REUSE_SECONDS: u32 = 300;
/// 14 days: the longest SQS keeps a message.
pub(super) const SQS_MAX_RETENTION_SECONDS: u32 = 1_209_600;

/// A queue policy as `terraform/modules/sqs` writes it (same statements and Sids): only the
/// topic may send, and nobody without TLS.
pub(super) fn queue_policy(sid: &str, queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
            deny_insecure_transport(queue_arn),
        ],
    })
}

fn deny_insecure_transport(queue_arn: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:*",
        "Resource": queue_arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })
}

/// Equal by meaning: JSON documents compared as values (numbers and numeric strings alike),
/// plain strings compared as they are.
pub(super) fn same_attribute(actual: Option<&String>, desired: &str) -> bool {
    // An attribute AWS does not report is one that is not set: "" wants it unset.
    let Some(actual) = actual else {
        return desired.is_empty();
    };
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
pub(super) fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

pub(crate) async fn queue_attributes(
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
pub(crate) async fn existing_queue_url(
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
