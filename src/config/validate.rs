//! What a loaded config must satisfy beyond its types: each rule names the key to fix.

use super::*;

impl Config {
    pub(super) fn validate(&self) -> Result<()> {
        let invalid = |message: String| Error::Invalid {
            origin: String::new(),
            message,
        };
        if self.topics.is_empty() {
            return Err(invalid(
                "`topics` is empty: list at least one topic name clients may post to".into(),
            ));
        }
        if let Some(bad) = self.topics.iter().find(|t| !valid_topic_name(t)) {
            return Err(invalid(format!(
                "topic name {bad:?} is not valid: use 1-256 letters, digits, '-' or '_'"
            )));
        }
        if self.worker.batch_size > 10 && self.bus == BusKind::Aws {
            return Err(invalid(format!(
                "worker.batch_size = {} is out of range with bus = \"aws\": SQS receives at most 10 (0 picks 10)",
                self.worker.batch_size
            )));
        }
        if self.aws.publish_in_flight == 0 {
            return Err(invalid("aws.publish_in_flight must be at least 1".into()));
        }
        if self.worker.concurrency == 0 {
            return Err(invalid("worker.concurrency must be at least 1".into()));
        }
        if self.queue.max_receive_count == 0 {
            return Err(invalid("queue.max_receive_count must be at least 1".into()));
        }
        if self.provision.dlq_retention <= self.provision.queue_retention {
            return Err(invalid(
                "provision.dlq_retention must be longer than provision.queue_retention: a message moved to the DLQ keeps its original enqueue time".into(),
            ));
        }
        if self.api.body_limit_bytes < 1024 {
            return Err(invalid(
                "api.body_limit_bytes must be at least 1024 bytes".into(),
            ));
        }
        if self.api.max_connections == 0 {
            return Err(invalid("api.max_connections must be at least 1".into()));
        }
        if self.api.body_read_timeout >= self.api.request_timeout {
            return Err(invalid(format!(
                "api.body_read_timeout ({}) must be shorter than api.request_timeout ({}): a trickled body is then answered 408 before the request times out",
                humantime::format_duration(self.api.body_read_timeout),
                humantime::format_duration(self.api.request_timeout)
            )));
        }
        if self.api.header_read_timeout.is_zero() || self.api.idle_timeout.is_zero() {
            return Err(invalid(
                "api.header_read_timeout and api.idle_timeout must be above 0".into(),
            ));
        }
        if let Some(bad) = self
            .kubernetes
            .components
            .iter()
            .find(|c| !matches!(c.as_str(), "api" | "worker"))
        {
            return Err(invalid(format!(
                "kubernetes.components has {bad:?}: the chart deploys \"api\" and \"worker\""
            )));
        }
        if let Some(token) = &self.api.token
            && token.trim().is_empty()
        {
            return Err(invalid(
                "api.token is set but empty: unset LATAMCTL_API_TOKEN or give it a value".into(),
            ));
        }
        Ok(())
    }
}
