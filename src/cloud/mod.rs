//! The AWS side of operations: resource names, provisioning, and checks for `status`.

pub mod destroy;
pub mod plan;
pub mod provision;
pub mod write_config;

use crate::aws::AwsClients;
use crate::aws::{AwsError, load_sdk_config};
use crate::config::Config;

/// Names of the resources `provision` manages, derived from `name` and `environment` (the
/// same names the Terraform modules use).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Names {
    pub topic: String,
    pub queue: String,
    pub dlq: String,
    pub sns_dlq: String,
    pub alarm_oldest_age: String,
    pub alarm_dlq_depth: String,
    pub alarm_sns_dlq_depth: String,
    pub alarm_rds_free_storage: String,
}

impl Names {
    pub fn from_config(config: &Config) -> Self {
        let env = format!("{}-{}", config.name, config.environment);
        let prefix = format!("{env}-ingest");
        Self {
            topic: prefix.clone(),
            queue: prefix.clone(),
            dlq: format!("{prefix}-dlq"),
            sns_dlq: format!("{prefix}-sns-dlq"),
            // As `terraform/modules/alarms` names them.
            alarm_oldest_age: format!("{env}-sqs-oldest-message-age"),
            alarm_dlq_depth: format!("{env}-sqs-dlq-not-empty"),
            alarm_sns_dlq_depth: format!("{env}-sqs-sns-dlq-not-empty"),
            alarm_rds_free_storage: format!("{env}-rds-free-storage-low"),
        }
    }

    /// Every alarm `provision` creates: what `provision --destroy` deletes.
    pub fn alarms(&self) -> [&str; 4] {
        [
            &self.alarm_oldest_age,
            &self.alarm_dlq_depth,
            &self.alarm_sns_dlq_depth,
            &self.alarm_rds_free_storage,
        ]
    }

    /// Names earlier releases of `provision` gave the same alarms; `--destroy` removes these
    /// too when they exist, so an upgrade leaves nothing behind.
    pub fn legacy_alarms(&self) -> [String; 3] {
        [
            format!("{}-oldest-message-age", self.queue),
            format!("{}-dlq-depth", self.queue),
            format!("{}-sns-dlq-depth", self.queue),
        ]
    }
}

/// Every AWS client the operator commands use.
#[derive(Clone)]
pub struct CloudClients {
    pub bus: AwsClients,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub rds: aws_sdk_rds::Client,
    pub eks: aws_sdk_eks::Client,
}

impl CloudClients {
    pub async fn from_config(config: &Config) -> Result<Self, AwsError> {
        let sdk = load_sdk_config(&config.aws).await?;
        let bus = AwsClients::from_sdk(sdk.clone());
        Ok(Self {
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            rds: aws_sdk_rds::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            bus,
        })
    }

    pub fn region(&self) -> String {
        self.bus
            .sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// The RDS instance `id` (`None`: no such instance). Terraform owns it; `provision` and
    /// `status` only read it.
    pub async fn rds_instance(&self, id: &str) -> Result<Option<RdsInstance>, AwsError> {
        let out = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .db_instances
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(|db| RdsInstance {
                    pending_modifications: db
                        .pending_modified_values
                        .as_ref()
                        .map(pending_modifications)
                        .unwrap_or_default(),
                    status: db.db_instance_status.unwrap_or_default(),
                    engine: db.engine.unwrap_or_default(),
                    multi_az: db.multi_az.unwrap_or(false),
                    instance_class: db.db_instance_class.unwrap_or_default(),
                    allocated_storage_gib: db.allocated_storage.map(|g| g.max(0) as u64),
                    read_replicas: db.read_replica_db_instance_identifiers.unwrap_or_default(),
                    arn: db.db_instance_arn,
                })),
            Err(e) => match crate::aws::classify("rds:DescribeDBInstances", e) {
                AwsError::NotFound(_) => Ok(None),
                e => Err(e),
            },
        }
    }

    /// The nodegroups of EKS cluster `name`.
    pub async fn eks_nodegroups(&self, name: &str) -> Result<Vec<EksNodegroup>, AwsError> {
        let names: Vec<String> = self
            .eks
            .list_nodegroups()
            .cluster_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| crate::aws::classify("eks:ListNodegroups", e))?;
        let mut groups = Vec::new();
        for group in names {
            let out = self
                .eks
                .describe_nodegroup()
                .cluster_name(name)
                .nodegroup_name(&group)
                .send()
                .await
                .map_err(|e| crate::aws::classify("eks:DescribeNodegroup", e))?;
            if let Some(ng) = out.nodegroup {
                groups.push(EksNodegroup {
                    name: group,
                    status: ng.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    version: ng.version.unwrap_or_default(),
                    issues: ng
                        .health
                        .and_then(|h| h.issues)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| {
                            format!(
                                "{}: {}",
                                i.code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                                i.message.unwrap_or_default()
                            )
                        })
                        .collect(),
                });
            }
        }
        Ok(groups)
    }

    /// The EKS cluster `name` (`None`: no such cluster).
    /// The maintenance RDS has pending for the instance `arn`.
    pub async fn rds_pending_maintenance(
        &self,
        arn: &str,
    ) -> Result<Vec<RdsMaintenance>, AwsError> {
        let mut actions = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .rds
                .describe_pending_maintenance_actions()
                .resource_identifier(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| crate::aws::classify("rds:DescribePendingMaintenanceActions", e))?;
            for resource in out.pending_maintenance_actions.unwrap_or_default() {
                for a in resource
                    .pending_maintenance_action_details
                    .unwrap_or_default()
                {
                    let time = |d: Option<aws_smithy_types::DateTime>| {
                        d.and_then(|d| std::time::SystemTime::try_from(d).ok())
                    };
                    actions.push(RdsMaintenance {
                        action: a.action.unwrap_or_default(),
                        description: a.description.unwrap_or_default(),
                        opt_in_status: a.opt_in_status,
                        due: time(a.current_apply_date)
                            .or(time(a.forced_apply_date))
                            .or(time(a.auto_applied_after_date)),
                    });
                }
            }
            marker = out.marker;
            if marker.is_none() {
                break;
            }
        }
        Ok(actions)
    }

    /// Every add-on installed on the EKS cluster `name`, with its status and health.
    pub async fn eks_addons(&self, name: &str) -> Result<Vec<EksAddon>, AwsError> {
        let names: Vec<String> = self
            .eks
            .list_addons()
            .cluster_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| crate::aws::classify("eks:ListAddons", e))?;
        let mut addons = Vec::new();
        for addon in names {
            let out = self
                .eks
                .describe_addon()
                .cluster_name(name)
                .addon_name(&addon)
                .send()
                .await
                .map_err(|e| crate::aws::classify("eks:DescribeAddon", e))?;
            if let Some(a) = out.addon {
                addons.push(EksAddon {
                    name: addon,
                    version: a.addon_version.unwrap_or_default(),
                    status: a.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    issues: a
                        .health
                        .and_then(|h| h.issues)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| {
                            format!(
                                "{}: {}",
                                i.code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                                i.message.unwrap_or_default()
                            )
                        })
                        .collect(),
                });
            }
        }
        Ok(addons)
    }

    pub async fn eks_cluster(&self, name: &str) -> Result<Option<EksCluster>, AwsError> {
        match self.eks.describe_cluster().name(name).send().await {
            Ok(out) => Ok(out.cluster.map(|c| EksCluster {
                status: c.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                version: c.version.unwrap_or_default(),
                endpoint: c.endpoint,
            })),
            Err(e) => match crate::aws::classify("eks:DescribeCluster", e) {
                AwsError::NotFound(_) => Ok(None),
                e => Err(e),
            },
        }
    }
}

/// What `provision` and `status` read of the RDS instance.
#[derive(Debug, Clone)]
pub struct RdsInstance {
    /// `available`, `backing-up`, `modifying`, ...
    pub status: String,
    pub engine: String,
    pub multi_az: bool,
    /// `db.r6g.large`, ...
    pub instance_class: String,
    pub allocated_storage_gib: Option<u64>,
    /// Modifications waiting for the next maintenance window (`DBInstanceClass`, ...).
    pub pending_modifications: Vec<String>,
    pub read_replicas: Vec<String>,
    /// `arn:aws:rds:…:db:<id>`: what DescribePendingMaintenanceActions is asked about.
    pub arn: Option<String>,
}

/// One maintenance action RDS has pending for an instance (`system-update`, `db-upgrade`,
/// `os-upgrade`, `ca-certificate-rotation`, ...).
#[derive(Debug, Clone)]
pub struct RdsMaintenance {
    pub action: String,
    pub description: String,
    /// `immediate`, `next-maintenance` or `undo-opt-in` when the operator opted in.
    pub opt_in_status: Option<String>,
    /// When it will be applied: the opted-in date, else the date RDS forces it, else the
    /// date after which RDS applies it in a maintenance window.
    pub due: Option<std::time::SystemTime>,
}

/// One EKS add-on (`vpc-cni`, `coredns`, `kube-proxy`, ...), as `status` reads it.
#[derive(Debug, Clone)]
pub struct EksAddon {
    pub name: String,
    pub version: String,
    /// `ACTIVE`, `DEGRADED`, `CREATE_FAILED`, `UPDATING`, ...
    pub status: String,
    /// Health issues, `code: message`.
    pub issues: Vec<String>,
}

/// The names of the fields set in RDS's `PendingModifiedValues`.
fn pending_modifications(p: &aws_sdk_rds::types::PendingModifiedValues) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |set: bool, name: &str| {
        if set {
            out.push(name.to_owned());
        }
    };
    add(p.db_instance_class.is_some(), "DBInstanceClass");
    add(p.allocated_storage.is_some(), "AllocatedStorage");
    add(p.engine_version.is_some(), "EngineVersion");
    add(p.multi_az.is_some(), "MultiAZ");
    add(p.iops.is_some(), "Iops");
    add(p.storage_type.is_some(), "StorageType");
    add(p.master_user_password.is_some(), "MasterUserPassword");
    add(p.backup_retention_period.is_some(), "BackupRetentionPeriod");
    add(
        p.ca_certificate_identifier.is_some(),
        "CACertificateIdentifier",
    );
    out
}

/// One EKS managed nodegroup, as `status` reads it.
#[derive(Debug, Clone)]
pub struct EksNodegroup {
    pub name: String,
    /// `ACTIVE`, `DEGRADED`, `CREATE_FAILED`, `UPDATING`, ...
    pub status: String,
    /// Kubernetes version of its nodes (`1.30`).
    pub version: String,
    /// Health issues, `code: message`.
    pub issues: Vec<String>,
}

/// What `provision` and `status` read of the EKS cluster.
#[derive(Debug, Clone)]
pub struct EksCluster {
    /// `ACTIVE`, `CREATING`, `UPDATING`, ...
    pub status: String,
    pub version: String,
    /// The API server's URL (`https://<id>.<region>.eks.amazonaws.com`).
    pub endpoint: Option<String>,
}
