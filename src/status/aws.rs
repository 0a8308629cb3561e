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
async fn latest_metric(
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

/// Memory of an RDS instance class in GiB, for PostgreSQL's default `max_connections`
/// (`LEAST(DBInstanceClassMemory / 9531392, 5000)`); `None` for a class not listed.
pub(super) fn class_memory_gib(class: &str) -> Option<f64> {
    let mut parts = class.trim_start_matches("db.").splitn(2, '.');
    let (family, size) = (parts.next()?, parts.next()?);
    let base = match size {
        "micro" => 1.0,
        "small" => 2.0,
        "medium" => 4.0,
        "large" => 8.0,
        "xlarge" => 16.0,
        s => s.strip_suffix("xlarge")?.parse::<f64>().ok()? * 16.0,
    };
    let per_family = match family.chars().next()? {
        // Burstable: micro 1, small 2, medium 4, large 8, xlarge 16, 2xlarge 32.
        't' => base,
        // General purpose: large 8, then 16 per xlarge.
        'm' => base,
        // Memory optimized: twice the m family.
        'r' | 'x' => base * 2.0,
        _ => return None,
    };
    Some(per_family)
}

fn default_max_connections(class: &str) -> Option<u64> {
    let bytes = class_memory_gib(class)? * 1024.0 * 1024.0 * 1024.0;
    Some(((bytes / 9_531_392.0) as u64).min(5000))
}

/// The RDS row: state, CPU, free storage against the allocated storage, connections against
/// `max_connections`, replica lag, and modifications waiting for the maintenance window.
pub(super) async fn check_rds(config: &Config, cloud: &CloudClients, id: &str) -> Check {
    use aws_sdk_cloudwatch::types::Statistic;
    let db = match cloud.rds_instance(id).await {
        Ok(Some(db)) => db,
        Ok(None) => {
            return Check::new("rds", State::Fail)
                .figure("instance", id)
                .hint("not found: check aws.rds_instance_id or apply terraform/");
        }
        Err(e) => {
            return Check::new("rds", State::Fail)
                .figure("instance", id)
                .hint(e.to_string());
        }
    };
    let s = &config.status;
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
    let dim = ("DBInstanceIdentifier", id);
    let (cpu, free, connections) = tokio::join!(
        latest_metric(
            cloud,
            "AWS/RDS",
            "CPUUtilization",
            dim,
            Statistic::Average,
            300
        ),
        latest_metric(
            cloud,
            "AWS/RDS",
            "FreeStorageSpace",
            dim,
            Statistic::Minimum,
            300
        ),
        latest_metric(
            cloud,
            "AWS/RDS",
            "DatabaseConnections",
            dim,
            Statistic::Maximum,
            60
        ),
    );
    match cpu {
        Some(cpu) => {
            c = c.figure("cpu", format!("{cpu:.0}%"));
            if cpu > s.rds_cpu_warn_percent {
                c.worsen(
                    State::Warn,
                    format!(
                        "RDS CPU {cpu:.0}% (over {}%): slow queries or too small an instance class; Performance Insights shows which",
                        s.rds_cpu_warn_percent
                    ),
                );
            }
        }
        None => c = c.figure("cpu", "no data"),
    }
    match (free, db.allocated_storage_gib) {
        (Some(free), Some(gib)) if gib > 0 => {
            let size = gib as f64 * 1024.0 * 1024.0 * 1024.0;
            let used = 1.0 - free / size;
            c = c.figure(
                "storage",
                format!(
                    "{:.0}% used ({:.1} of {gib} GiB free)",
                    used * 100.0,
                    free / (1024.0 * 1024.0 * 1024.0)
                ),
            );
            let what = format!(
                "RDS storage {:.0}% used: raise the allocated storage (Terraform db_allocated_storage) or enable storage autoscaling (db_max_allocated_storage); a full instance refuses writes and the worker pauses",
                used * 100.0
            );
            if used > s.disk_used_fail {
                c.worsen(State::Fail, what);
            } else if used > s.disk_used_warn {
                c.worsen(State::Warn, what);
            }
        }
        (Some(free), _) => {
            c = c.figure(
                "storage",
                format!("{:.1} GiB free", free / (1024.0 * 1024.0 * 1024.0)),
            )
        }
        (None, _) => c = c.figure("storage", "no data"),
    }
    let configured = (s.rds_max_connections > 0).then_some(s.rds_max_connections);
    let max = configured.or_else(|| default_max_connections(&db.instance_class));
    match (connections, max) {
        (Some(n), Some(max)) => {
            let estimated = if configured.is_some() { "" } else { "~" };
            c = c.figure("connections", format!("{n:.0}/{estimated}{max}"));
            if n > s.rds_connections_warn * max as f64 {
                c.worsen(
                    State::Warn,
                    format!(
                        "{n:.0} connections of {estimated}{max}: pools (database.max_connections × replicas) are near max_connections; lower them or use RDS Proxy"
                    ),
                );
            }
        }
        (Some(n), None) => c = c.figure("connections", format!("{n:.0}")),
        (None, _) => c = c.figure("connections", "no data"),
    }
    for replica in &db.read_replicas {
        let lag = latest_metric(
            cloud,
            "AWS/RDS",
            "ReplicaLag",
            ("DBInstanceIdentifier", replica),
            Statistic::Maximum,
            60,
        )
        .await;
        if let Some(lag) = lag {
            c = c.figure(&format!("replica_lag {replica}"), format!("{lag:.0}s"));
            if lag > s.rds_replica_lag_warn.as_secs_f64() {
                c.worsen(
                    State::Warn,
                    format!("replica {replica} lags {lag:.0}s: reads there are stale"),
                );
            }
        }
    }
    if !db.pending_modifications.is_empty() {
        c = c.figure("pending", db.pending_modifications.join(","));
        c.worsen(
            State::Warn,
            format!(
                "modifications wait for the next maintenance window: {} (apply now with `aws rds modify-db-instance --apply-immediately`, or expect a restart then)",
                db.pending_modifications.join(", ")
            ),
        );
    }
    c
}

/// The minor version of `1.30` / `1.30.2-eks-...`.
fn minor(version: &str) -> Option<u32> {
    version
        .split('.')
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
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
            match cloud.eks_nodegroups(name).await {
                Ok(groups) => {
                    c = c.figure("nodegroups", groups.len());
                    for g in &groups {
                        c = c.figure(
                            &format!("nodegroup {}", g.name),
                            format!("{} {}", g.status, g.version),
                        );
                        match g.status.as_str() {
                            "ACTIVE" => {}
                            "CREATING" | "UPDATING" | "DELETING" => c.worsen(
                                State::Warn,
                                format!("nodegroup {} is {}", g.name, g.status),
                            ),
                            other => c.worsen(
                                State::Fail,
                                format!(
                                    "nodegroup {} is {other}: `aws eks describe-nodegroup --cluster-name {name} --nodegroup-name {}`",
                                    g.name, g.name
                                ),
                            ),
                        }
                        if !g.issues.is_empty() {
                            c.worsen(
                                State::Warn,
                                format!("nodegroup {} health: {}", g.name, g.issues.join("; ")),
                            );
                        }
                        if let (Some(cp), Some(ng)) = (minor(&cluster.version), minor(&g.version))
                            && cp > ng + 1
                        {
                            c.worsen(
                                State::Warn,
                                format!(
                                    "nodegroup {} runs {} against the control plane's {}: more than one minor behind; upgrade it (`aws eks update-nodegroup-version`)",
                                    g.name, g.version, cluster.version
                                ),
                            );
                        }
                    }
                }
                Err(e) => c.worsen(State::Warn, format!("cannot read the nodegroups: {e}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_max_connections_follow_the_class_memory() {
        // 8 GiB: 8 * 1024^3 / 9531392 = 901.
        assert_eq!(default_max_connections("db.m6g.large"), Some(901));
        assert_eq!(default_max_connections("db.t3.micro"), Some(112));
        assert_eq!(default_max_connections("db.r6g.large"), Some(1802));
        assert_eq!(default_max_connections("db.r6g.16xlarge"), Some(5000));
        assert_eq!(default_max_connections("db.serverless"), None);
    }

    #[test]
    fn minor_versions() {
        assert_eq!(minor("1.30"), Some(30));
        assert_eq!(minor("1.28.5-eks-5e0fdde"), Some(28));
        assert_eq!(minor("x"), None);
    }

    #[test]
    fn servers_compare_by_host_and_port() {
        assert_eq!(
            server_key("https://ABC.eks.amazonaws.com"),
            server_key("https://abc.eks.amazonaws.com:443/")
        );
        assert_ne!(server_key("https://a:6443"), server_key("https://a"));
    }
}
