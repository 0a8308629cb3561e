//! What `provision` and `provision --destroy` report: one [`Change`] per resource, the
//! [`Plan`] of them, and the [`Outputs`] `--write-config` records.

use serde::Serialize;

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What provision did, or would do, to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
    /// Already gone (destroy).
    Absent,
    /// A checked resource (RDS, EKS) exists.
    Exists,
    /// A checked resource is missing or not usable.
    Missing,
}

impl Action {
    pub fn is_change(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub resource: &'static str,
    pub name: String,
    pub action: Action,
    pub detail: String,
    /// What provision sets on the resource, attribute by attribute, as the AWS API names
    /// them (`-o json`): the Terraform parity test compares these with the modules.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub desired: std::collections::BTreeMap<String, String>,
}

/// ARNs and URLs `serve` needs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub region: String,
    pub topic_arn: Option<String>,
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// Where SNS puts what it could not deliver to the queue.
    pub sns_dlq_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub applied: bool,
    pub changes: Vec<Change>,
    pub outputs: Outputs,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    pub fn has_missing(&self) -> bool {
        self.changes.iter().any(|c| c.action == Action::Missing)
    }
}
