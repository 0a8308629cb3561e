//! The AWS rows: the SNS topic and its subscription, the SNS dead-letter queue, the queue's
//! oldest message age from CloudWatch, RDS and EKS.

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
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let start = aws_smithy_types::DateTime::from_secs(now.secs() - 600);
    let out = cloud
        .cloudwatch
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("QueueName")
                .value(queue_name)
                .build(),
        )
        .start_time(start)
        .end_time(now)
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .send()
        .await
        .ok()?;
    out.datapoints()
        .iter()
        .max_by_key(|d| d.timestamp.map(|t| t.secs()))
        .and_then(|d| d.maximum)
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

/// The RDS row.
pub(super) async fn check_rds(cloud: &CloudClients, id: &str) -> Check {
    match cloud.rds_instance(id).await {
        Ok(Some(db)) => {
            let mut c = Check::new("rds", State::Ok)
                .figure("instance", id)
                .figure("status", &db.status)
                .figure("engine", &db.engine)
                .figure("multi_az", db.multi_az);
            match db.status.as_str() {
                "available" => {}
                "backing-up" | "modifying" | "upgrading" | "maintenance" => {
                    c.worsen(State::Warn, "RDS is busy; expect higher latency")
                }
                _ => c.worsen(State::Fail, "RDS instance is not available"),
            }
            c
        }
        Ok(None) => Check::new("rds", State::Fail)
            .figure("instance", id)
            .hint("not found: check aws.rds_instance_id or apply terraform/"),
        Err(e) => Check::new("rds", State::Fail)
            .figure("instance", id)
            .hint(e.to_string()),
    }
}

/// Host and port of an API server URL, for comparing a kubeconfig's server with the EKS
/// endpoint (`https://X` and `https://X:443/` are the same server).
pub(super) fn server_key(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    if host.contains(':') {
        host
    } else {
        format!("{host}:443")
    }
}

/// The EKS row; with `kube_server` (the kubeconfig context's API server), fails when it is not
/// this cluster's endpoint: every Kubernetes row would describe another cluster.
pub(super) async fn check_eks(
    cloud: &CloudClients,
    name: &str,
    kube_server: Option<&str>,
) -> Check {
    match cloud.eks_cluster(name).await {
        Ok(Some(cluster)) => {
            let mut c = Check::new("eks", State::Ok)
                .figure("cluster", name)
                .figure("status", &cluster.status)
                .figure("version", &cluster.version);
            if cluster.status != "ACTIVE" {
                c.worsen(State::Fail, "EKS cluster is not ACTIVE");
            }
            if let (Some(server), Some(endpoint)) = (kube_server, cluster.endpoint.as_deref()) {
                if server_key(server) == server_key(endpoint) {
                    c = c.figure("kubeconfig", "this cluster");
                } else {
                    c = c.figure("kubeconfig", server);
                    c.worsen(
                        State::Fail,
                        format!(
                            "the kubeconfig context is pointed at another cluster ({server}, not {endpoint}): the k8s rows describe that one; `aws eks update-kubeconfig --name {name}` or set kubernetes.context"
                        ),
                    );
                }
            }
            c
        }
        Ok(None) => Check::new("eks", State::Fail)
            .figure("cluster", name)
            .hint("not found: check aws.eks_cluster or apply terraform/"),
        Err(e) => Check::new("eks", State::Fail)
            .figure("cluster", name)
            .hint(e.to_string()),
    }
}
