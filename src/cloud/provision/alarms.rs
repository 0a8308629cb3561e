//! The CloudWatch alarms: the desired list (named as `terraform/modules/alarms` names them)
//! and creating or updating what differs.

use super::*;

impl Provisioner<'_> {
    /// The three SQS alarms of `terraform/modules/alarms`, with its names, descriptions,
    /// thresholds and periods (the parity test compares them).
    pub(super) fn desired_alarms(&self) -> Vec<AlarmSpec> {
        let age = self.config.provision.alarm_oldest_message_age.as_secs();
        vec![
            AlarmSpec {
                name: self.names.alarm_oldest_age.clone(),
                description: format!(
                    "Oldest message in {} is older than {age}s: workers are down or not keeping up.",
                    self.names.queue
                ),
                metric: "ApproximateAgeOfOldestMessage",
                queue: self.names.queue.clone(),
                threshold: age as f64,
                evaluation_periods: 5,
                datapoints_to_alarm: Some(5),
            },
            AlarmSpec {
                name: self.names.alarm_sns_dlq_depth.clone(),
                description: format!(
                    "{} holds messages SNS could not deliver to {} (check the queue policy, the KMS key policy and that the queue exists); fix the cause, then redrive them to the queue (terraform/README.md).",
                    self.names.sns_dlq, self.names.queue
                ),
                metric: "ApproximateNumberOfMessagesVisible",
                queue: self.names.sns_dlq.clone(),
                threshold: 0.0,
                evaluation_periods: 1,
                datapoints_to_alarm: None,
            },
            AlarmSpec {
                name: self.names.alarm_dlq_depth.clone(),
                description: format!(
                    "{} holds messages the worker failed to store after maxReceiveCount attempts: inspect and redrive (latamctl drain).",
                    self.names.dlq
                ),
                metric: "ApproximateNumberOfMessagesVisible",
                queue: self.names.dlq.clone(),
                threshold: 0.0,
                evaluation_periods: 1,
                datapoints_to_alarm: None,
            },
        ]
    }

    pub(super) async fn alarms(&mut self) -> Result<()> {
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
                    .set_datapoints_to_alarm(spec.datapoints_to_alarm)
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
            let desired = spec.desired();
            self.record_desired("cloudwatch alarm", &spec.name, action, detail, desired);
        }
        Ok(())
    }
}

pub(super) struct AlarmSpec {
    name: String,
    description: String,
    metric: &'static str,
    queue: String,
    threshold: f64,
    evaluation_periods: i32,
    datapoints_to_alarm: Option<i32>,
}

impl AlarmSpec {
    /// The alarm's settings as PutMetricAlarm names them.
    fn desired(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("AlarmDescription", self.description.clone()),
            ("Namespace", "AWS/SQS".to_owned()),
            ("MetricName", self.metric.to_owned()),
            ("Statistic", "Maximum".to_owned()),
            ("Period", "60".to_owned()),
            ("EvaluationPeriods", self.evaluation_periods.to_string()),
            ("ComparisonOperator", "GreaterThanThreshold".to_owned()),
            ("Threshold", self.threshold.to_string()),
            ("TreatMissingData", "notBreaching".to_owned()),
            ("Dimensions", format!("QueueName={}", self.queue)),
        ];
        if let Some(n) = self.datapoints_to_alarm {
            out.push(("DatapointsToAlarm", n.to_string()));
        }
        out
    }

    fn matches(&self, a: &MetricAlarm, actions: &[String]) -> bool {
        let dims_ok = a.dimensions().iter().any(|d| {
            d.name.as_deref() == Some("QueueName") && d.value.as_deref() == Some(&self.queue)
        });
        a.metric_name.as_deref() == Some(self.metric)
            && a.namespace.as_deref() == Some("AWS/SQS")
            && a.threshold == Some(self.threshold)
            && a.evaluation_periods == Some(self.evaluation_periods)
            && a.datapoints_to_alarm == self.datapoints_to_alarm
            && a.treat_missing_data.as_deref() == Some("notBreaching")
            && a.period == Some(60)
            && a.statistic == Some(Statistic::Maximum)
            && a.comparison_operator == Some(ComparisonOperator::GreaterThanThreshold)
            && a.alarm_description.as_deref() == Some(&self.description)
            && a.alarm_actions() == actions
            && dims_ok
    }
}
