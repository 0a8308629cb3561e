//! The AWS rows: the SNS topic and its subscription, the SNS dead-letter queue, the queue's
//! oldest message age from CloudWatch. RDS and EKS have their own files.

use super::{Check, State};
use crate::cloud::CloudClients;
use crate::config::Config;

pub(super) async fn oldest_age_from_cloudwatch(
    config: &Config,
    cloud: &CloudClients,
) -> Option<f64> {
    let queue_name = config
        .aws
        .queue_url
        .as_deref()?
        .rsplit('/')
        .next()?
        .to_owned();
    latest_metric(
        cloud,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        ("QueueName", &queue_name),
        aws_sdk_cloudwatch::types::Statistic::Maximum,
        60,
    )
    .await
}

pub(super) async fn check_topic(config: &Config, cloud: &CloudClients) -> Check {
    let Some(arn) = config.aws.topic_arn.as_deref() else {
        return Check::new("sns topic", State::Fail).hint(
            "aws.topic_arn is not set: run `latamctl provision --write-config latamctl.toml`",
        );
    };
    let sns = &cloud.bus.sns;
    let attrs = match sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(o) => o.attributes.unwrap_or_default(),
        Err(e) => {
            return Check::new("sns topic", State::Fail)
                .figure("arn", arn)
                .hint(crate::aws::classify("sns:GetTopicAttributes", e).to_string());
        }
    };
    let get = |k: &str| attrs.get(k).cloned().unwrap_or_else(|| "0".into());
    let mut check = Check::new("sns topic", State::Ok)
        .figure("arn", arn)
        .figure("subscriptions_confirmed", get("SubscriptionsConfirmed"))
        .figure("subscriptions_pending", get("SubscriptionsPending"));
    if let Some(queue_url) = &config.aws.queue_url {
        let queue_arn = cloud
            .bus
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .ok()
            .and_then(|o| o.attributes)
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn));
        let subscribed = match &queue_arn {
            Some(q) => crate::cloud::provision::find_subscription(sns, arn, q)
                .await
                .map(|s| s.is_some())
                .unwrap_or(false),
            None => false,
        };
        check = check.figure("queue_subscribed", subscribed);
        if !subscribed {
            check.worsen(
                State::Fail,
                "the queue is not subscribed to the topic: messages go nowhere; run `latamctl provision`",
            );
        }
    }
    check
}

/// Messages SNS could not deliver to the queue (client-side failures: policy, KMS).
pub(super) async fn check_sns_dlq(cloud: &CloudClients, url: &str) -> Check {
    let out = cloud
        .bus
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await;
    match out {
        Ok(o) => {
            let depth: u64 = o
                .attributes
                .unwrap_or_default()
                .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut c = Check::new("sns dlq", State::Ok).figure("depth", depth);
            if depth > 0 {
                c.worsen(
                    State::Fail,
                    "SNS could not deliver messages to the queue (queue policy, KMS key, deleted \
                     queue): fix the cause, then redrive with `LATAMCTL_AWS_DLQ_URL=<sns dlq url> \
                     latamctl drain --queue dlq --redrive`",
                );
            }
            c
        }
        Err(e) => Check::new("sns dlq", State::Fail)
            .hint(crate::aws::classify("sqs:GetQueueAttributes", e).to_string()),
    }
}

/// The latest datapoint of a CloudWatch metric over the last 10 minutes (`None`: no data,
/// or CloudWatch did not answer).
pub(super) async fn latest_metric(
    cloud: &CloudClients,
    namespace: &str,
    metric: &str,
    dimension: (&str, &str),
    statistic: aws_sdk_cloudwatch::types::Statistic,
    period: i32,
) -> Option<f64> {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs();
    let start = aws_smithy_types::DateTime::from_secs(now - 600);
    // A little past now, so the period holding the newest datapoint is whole.
    let end = aws_smithy_types::DateTime::from_secs(now + 60);
    let out = cloud
        .cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name(dimension.0)
                .value(dimension.1)
                .build(),
        )
        .start_time(start)
        .end_time(end)
        .period(period)
        .statistics(statistic.clone())
        .send()
        .await
        .ok()?;
    let point = out
        .datapoints()
        .iter()
        .max_by_key(|d| d.timestamp.map(|t| t.secs()))?;
    use aws_sdk_cloudwatch::types::Statistic as S;
    match statistic {
        S::Maximum => point.maximum,
        S::Minimum => point.minimum,
        _ => point.average,
    }
}
