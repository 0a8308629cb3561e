//! The operator's day, against moto and a real PostgreSQL: provision → serve → publish
//! --verify → status → poison → drain/redrive → destroy. Plus drain on the embedded queue.
//! Children: `cloud_day`, `drain` (embedded queue), `publish`, `rds_eks` (RDS and EKS rows and
//! plan entries), `fleet` (`provision --fleet --dry-run`).

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

// Test bodies name `super::cloud::…` and `super::queue::…`: from a child they resolve here.
use super::cloud::{self, aws_env};
use super::queue;
use super::support;

mod cloud_day;
mod drain;
mod fleet;
mod publish;
mod rds_eks;

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}
