//! The SNS side: the topic and its subscription to the queue (raw delivery, redrive to the
//! SNS dead-letter queue), and finding them by name.

use super::*;

impl Provisioner<'_> {
    pub(super) async fn topic(&mut self) -> Result<Option<String>> {
        let name = self.names.topic.clone();
        let sns = &self.clients.bus.sns;
        let key = self
            .config
            .provision
            .sns_kms_key
            .clone()
            .unwrap_or_else(|| "alias/aws/sns".to_owned());
        let desired = BTreeMap::from([("KmsMasterKeyId", key.as_str())]);
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
                    "SNS topic, encrypted (KMS {key}); {}",
                    arn.as_deref().unwrap_or(PENDING)
                );
                self.record_desired("sns topic", &name, Action::Create, detail, desired);
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
                self.record_desired("sns topic", &name, action, detail, desired);
                Ok(Some(arn))
            }
        }
    }

    /// The topic policy the Terraform module sets: principals of this account (through their
    /// IAM policies) may publish and subscribe, and nobody publishes without TLS.
    pub(super) async fn topic_policy(&mut self, topic_arn: Option<&str>) -> Result<()> {
        let name = self.names.topic.clone();
        let what = "this account's principals only, TLS only";
        let Some(arn) = topic_arn else {
            self.record("sns topic policy", &name, Action::Create, what.into());
            return Ok(());
        };
        let policy = topic_policy(arn).to_string();
        let sns = &self.clients.bus.sns;
        let attrs = sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
            .map_err(|e| classify("sns:GetTopicAttributes", e))?
            .attributes
            .unwrap_or_default();
        let action = match attrs.get("Policy") {
            Some(current) if same_attribute(Some(current), &policy) => Action::Unchanged,
            Some(_) => Action::Update,
            None => Action::Create,
        };
        if action.is_change() && self.apply {
            sns.set_topic_attributes()
                .topic_arn(arn)
                .attribute_name("Policy")
                .attribute_value(&policy)
                .send()
                .await
                .map_err(|e| classify("sns:SetTopicAttributes", e))?;
        }
        self.record_desired(
            "sns topic policy",
            &name,
            action,
            what.into(),
            [("Policy", policy)],
        );
        Ok(())
    }

    pub(super) async fn subscription(
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
                self.record_desired(
                    "sns subscription",
                    &name,
                    Action::Create,
                    format!("{what}; {detail}"),
                    desired.clone(),
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
                    self.record_desired(
                        "sns subscription",
                        &name,
                        Action::Unchanged,
                        arn,
                        desired.clone(),
                    );
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
                    let detail = format!("{}: {arn}", keys.join(", "));
                    self.record_desired(
                        "sns subscription",
                        &name,
                        Action::Update,
                        detail,
                        desired.clone(),
                    );
                }
            }
        }
        Ok(())
    }
}

pub(crate) async fn find_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<Option<String>> {
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

/// The topic policy of `terraform/modules/sns` (same statements, same Sids), for a topic ARN
/// `arn:<partition>:sns:<region>:<account>:<name>`.
pub(super) fn topic_policy(topic_arn: &str) -> Value {
    let parts: Vec<&str> = topic_arn.split(':').collect();
    let (partition, account) = (
        parts.get(1).copied().unwrap_or("aws"),
        parts.get(4).copied().unwrap_or_default(),
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountPrincipalsViaIAM",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
                "Action": [
                    "sns:Publish",
                    "sns:Subscribe",
                    "sns:GetTopicAttributes",
                    "sns:ListSubscriptionsByTopic",
                ],
                "Resource": topic_arn,
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    })
}
