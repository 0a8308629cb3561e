//! `provision --destroy`: deletes what `provision` created (the alarms by the one list
//! [`Names::alarms`], and the names earlier releases used); "already gone" counts as success.

use super::plan::{Action, Change, Outputs, Plan, Result};
use aws_sdk_sqs::types::QueueAttributeName;

use super::provision::{existing_queue_url, find_subscription, find_topic, queue_attributes};
use super::{CloudClients, Names};
use crate::aws::classify;
use crate::config::Config;

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
            desired: Default::default(),
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
    // The storage alarm exists only where an RDS instance is configured: elsewhere it is
    // listed only if it is there (a config that dropped `aws.rds_instance_id`).
    let watches_rds = config.aws.rds_instance_id.is_some();
    for name in current
        .iter()
        .filter(|n| **n != names.alarm_rds_free_storage || watches_rds || existing.contains(n))
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
