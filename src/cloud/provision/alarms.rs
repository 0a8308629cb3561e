//! The CloudWatch alarms: the desired list (named as `terraform/modules/alarms` names them)
//! and creating or updating what differs.

use super::*;

impl Provisioner<'_> {
    /// The alarms of `terraform/modules/alarms` that provision also owns, with its names,
    /// descriptions, thresholds and periods (the parity test compares them): the three SQS
    /// alarms, and RDS free storage when `aws.rds_instance_id` names the instance.
    pub(super) async fn desired_alarms(&self) -> Vec<AlarmSpec> {
        let age = self.config.provision.alarm_oldest_message_age.as_secs();
        let sqs = |name: &str,
                   description: String,
                   metric,
                   queue: &str,
                   threshold,
                   periods,
                   datapoints| AlarmSpec {
            name: name.to_owned(),
            description,
            namespace: "AWS/SQS",
            metric,
            dimension: ("QueueName", queue.to_owned()),
            statistic: Statistic::Maximum,
            period: 60,
            comparison: ComparisonOperator::GreaterThanThreshold,
            threshold,
            evaluation_periods: periods,
            datapoints_to_alarm: datapoints,
            treat_missing_data: "notBreaching",
        };
        let mut specs = vec![
            sqs(
                &self.names.alarm_oldest_age,
                format!(
                    "Oldest message in {} is older than {age}s: workers are down or not keeping up.",
                    self.names.queue
                ),
                "ApproximateAgeOfOldestMessage",
                &self.names.queue,
                age as f64,
                5,
                Some(5),
            ),
            sqs(
                &self.names.alarm_sns_dlq_depth,
                format!(
                    "{} holds messages SNS could not deliver to {} (check the queue policy, the KMS key policy and that the queue exists); fix the cause, then redrive them to the queue (terraform/README.md).",
                    self.names.sns_dlq, self.names.queue
                ),
                "ApproximateNumberOfMessagesVisible",
                &self.names.sns_dlq,
                0.0,
                1,
                None,
            ),
            sqs(
                &self.names.alarm_dlq_depth,
                format!(
                    "{} holds messages the worker failed to store after maxReceiveCount attempts: inspect and redrive (latamctl drain).",
                    self.names.dlq
                ),
                "ApproximateNumberOfMessagesVisible",
                &self.names.dlq,
                0.0,
                1,
                None,
            ),
        ];
        if let Some(spec) = self.rds_free_storage_alarm().await {
            specs.push(spec);
        }
        specs
    }

    /// Seed 4.2's disk signal on RDS, as `terraform/modules/alarms` declares it. The threshold
    /// is `provision.db_free_storage_alarm_bytes` when not 0 (Terraform's `latamctl_config` output
    /// writes the value the env computed), or else what the envs compute: 10 % of the
    /// instance's allocated storage, at least 2 GiB. None without an instance to watch.
    async fn rds_free_storage_alarm(&self) -> Option<AlarmSpec> {
        let id = self.config.aws.rds_instance_id.clone()?;
        let threshold = match self.config.provision.db_free_storage_alarm_bytes {
            0 => {
                let gib = self
                    .clients
                    .rds_instance(&id)
                    .await
                    .ok()??
                    .allocated_storage_gib?;
                free_storage_threshold_bytes(gib)
            }
            bytes => bytes,
        };
        Some(AlarmSpec {
            name: self.names.alarm_rds_free_storage.clone(),
            description: format!("{id} free storage below {threshold} bytes."),
            namespace: "AWS/RDS",
            metric: "FreeStorageSpace",
            dimension: ("DBInstanceIdentifier", id),
            statistic: Statistic::Minimum,
            period: 300,
            comparison: ComparisonOperator::LessThanThreshold,
            threshold: threshold as f64,
            evaluation_periods: 1,
            datapoints_to_alarm: None,
            treat_missing_data: "missing",
        })
    }

    pub(super) async fn alarms(&mut self) -> Result<()> {
        let specs = self.desired_alarms().await;
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
                    .namespace(spec.namespace)
                    .metric_name(spec.metric)
                    .dimensions(
                        Dimension::builder()
                            .name(spec.dimension.0)
                            .value(&spec.dimension.1)
                            .build(),
                    )
                    .statistic(spec.statistic.clone())
                    .period(spec.period)
                    .evaluation_periods(spec.evaluation_periods)
                    .set_datapoints_to_alarm(spec.datapoints_to_alarm)
                    .threshold(spec.threshold)
                    .comparison_operator(spec.comparison.clone())
                    .treat_missing_data(spec.treat_missing_data)
                    .set_alarm_actions(Some(actions.clone()))
                    .set_ok_actions(Some(actions.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("cloudwatch:PutMetricAlarm", e))?;
            }
            let detail = format!(
                "{} {} {} {} for {} min",
                spec.dimension.1,
                spec.metric,
                if spec.comparison == ComparisonOperator::LessThanThreshold {
                    "<"
                } else {
                    ">"
                },
                spec.threshold,
                spec.evaluation_periods * spec.period / 60
            );
            let desired = spec.desired();
            self.record_desired("cloudwatch alarm", &spec.name, action, detail, desired);
        }
        Ok(())
    }
}

/// 10 % of the allocated storage, at least 2 GiB: `db_free_storage_threshold_bytes` in
/// `terraform/envs/*/main.tf`.
pub(super) fn free_storage_threshold_bytes(allocated_gib: u64) -> u64 {
    const GIB: u64 = 1024 * 1024 * 1024;
    (2 * GIB).max(allocated_gib * GIB / 10)
}

pub(super) struct AlarmSpec {
    name: String,
    description: String,
    namespace: &'static str,
    metric: &'static str,
    dimension: (&'static str, String),
    statistic: Statistic,
    period: i32,
    comparison: ComparisonOperator,
    threshold: f64,
    evaluation_periods: i32,
    datapoints_to_alarm: Option<i32>,
    treat_missing_data: &'static str,
}

impl AlarmSpec {
    /// The alarm's settings as PutMetricAlarm names them.
    fn desired(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("AlarmDescription", self.description.clone()),
            ("Namespace", self.namespace.to_owned()),
            ("MetricName", self.metric.to_owned()),
            ("Statistic", self.statistic.as_str().to_owned()),
            ("Period", self.period.to_string()),
            ("EvaluationPeriods", self.evaluation_periods.to_string()),
            ("ComparisonOperator", self.comparison.as_str().to_owned()),
            ("Threshold", self.threshold.to_string()),
            ("TreatMissingData", self.treat_missing_data.to_owned()),
            (
                "Dimensions",
                format!("{}={}", self.dimension.0, self.dimension.1),
            ),
        ];
        if let Some(n) = self.datapoints_to_alarm {
            out.push(("DatapointsToAlarm", n.to_string()));
        }
        out
    }

    fn matches(&self, a: &MetricAlarm, actions: &[String]) -> bool {
        let dims_ok = a.dimensions().iter().any(|d| {
            d.name.as_deref() == Some(self.dimension.0)
                && d.value.as_deref() == Some(&self.dimension.1)
        });
        a.metric_name.as_deref() == Some(self.metric)
            && a.namespace.as_deref() == Some(self.namespace)
            && a.threshold == Some(self.threshold)
            && a.evaluation_periods == Some(self.evaluation_periods)
            && a.datapoints_to_alarm == self.datapoints_to_alarm
            && a.treat_missing_data.as_deref() == Some(self.treat_missing_data)
            && a.period == Some(self.period)
            && a.statistic.as_ref() == Some(&self.statistic)
            && a.comparison_operator.as_ref() == Some(&self.comparison)
            && a.alarm_description.as_deref() == Some(&self.description)
            && a.alarm_actions() == actions
            && dims_ok
    }
}

#[cfg(test)]
mod tests {
    use super::free_storage_threshold_bytes;

    #[test]
    fn the_free_storage_threshold_is_the_envs_formula() {
        const GIB: u64 = 1024 * 1024 * 1024;
        // max(2 GiB, floor(allocated * 0.10)): 20 GiB (dev) and 100 GiB (prod) instances.
        assert_eq!(free_storage_threshold_bytes(20), 2 * GIB);
        assert_eq!(free_storage_threshold_bytes(100), 10 * GIB);
        assert_eq!(free_storage_threshold_bytes(25), 2_684_354_560);
    }
}
