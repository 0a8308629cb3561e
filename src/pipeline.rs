//! Builds the pipeline's parts from the configuration: the store, the publisher and the
//! queue. The only place that knows which implementation a config selects.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bus::aws::{AwsClients, SnsPublisher, SqsQueue};
use crate::bus::embedded::EmbeddedQueue;
use crate::bus::{Publisher, Queue, QueueAdmin};
use crate::config::{BusKind, Config, StoreKind};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;

/// Which halves of the pipeline a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// API and worker in one process.
    All,
    /// Only the HTTP API (publishes, reads records).
    Api,
    /// Only the worker (consumes, stores); still serves /healthz, /readyz, /metrics.
    Worker,
}

impl Role {
    pub fn runs_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_worker(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// The data directory as an absolute path (for messages).
pub fn data_dir(config: &Config) -> PathBuf {
    std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone())
}

/// Opens the configured store; migrates it when `migrate` is set (SQLite always migrates).
pub async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store {
        StoreKind::Sqlite => {
            Arc::new(SqliteStore::open(&data_dir(config), config.database.query_timeout).await?)
        }
        StoreKind::Postgres => {
            let store = PostgresStore::connect(&config.database, &config.aws).await?;
            if !migrate {
                // The schema is managed elsewhere (an init container, `latamctl migrate`).
            } else if let Err(error) = store.ping().await {
                // Down at start: start anyway, not ready, and migrate once it answers.
                tracing::warn!(message = "PostgreSQL is unreachable; starting not ready and migrating when it answers.", %error);
                store.migration_pending();
                tokio::spawn(migrate_when_reachable(store.clone()));
            } else {
                let applied = store.migrate().await.map_err(|e| {
                    anyhow::anyhow!(
                        "{e}\nFix the migration, or start with --no-migrate and run `latamctl migrate` later."
                    )
                })?;
                if !applied.is_empty() {
                    tracing::info!(message = "Applied database migrations.", versions = ?applied);
                }
            }
            Arc::new(store)
        }
    })
}

/// Retries the migration with backoff (2 s doubling to 60 s) until it succeeds.
async fn migrate_when_reachable(store: PostgresStore) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let delay = crate::worker::backoff(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(60),
            attempt,
        );
        tokio::time::sleep(delay).await;
        match store.migrate().await {
            Ok(applied) => {
                tracing::info!(message = "PostgreSQL answers; migrations applied, ready.", versions = ?applied, attempt);
                return;
            }
            Err(error) => {
                tracing::warn!(message = "Migration still failing; retrying.", %error, attempt)
            }
        }
    }
}

/// The bus halves a role needs.
pub struct Bus {
    pub publisher: Option<Arc<dyn Publisher>>,
    pub queue: Option<Arc<dyn Queue>>,
    pub admin: Option<Arc<dyn QueueAdmin>>,
    /// Human description for the startup line.
    pub describe: String,
}

/// Opens the configured bus for `role`.
pub async fn open_bus(config: &Config, role: Role) -> anyhow::Result<Bus> {
    match config.bus {
        BusKind::Embedded => {
            let queue = EmbeddedQueue::open(&data_dir(config), &config.queue).await?;
            let describe = format!("embedded queue {}", queue.path().display());
            let queue = Arc::new(queue);
            Ok(Bus {
                publisher: role.runs_api().then(|| queue.clone() as Arc<dyn Publisher>),
                queue: role.runs_worker().then(|| queue.clone() as Arc<dyn Queue>),
                admin: Some(queue as Arc<dyn QueueAdmin>),
                describe,
            })
        }
        BusKind::Aws => {
            let clients = AwsClients::from_config(&config.aws).await?;
            let mut describe = Vec::new();
            let publisher: Option<Arc<dyn Publisher>> = if role.runs_api() {
                let topic_arn =
                    config.require(&config.aws.topic_arn, "aws.topic_arn", "bus = \"aws\"")?;
                describe.push(format!("SNS {topic_arn}"));
                Some(Arc::new(SnsPublisher::new(
                    &clients,
                    topic_arn,
                    config.aws.publish_attempts,
                )))
            } else {
                None
            };
            let (queue, admin) = if role.runs_worker() {
                let queue_url =
                    config.require(&config.aws.queue_url, "aws.queue_url", "bus = \"aws\"")?;
                describe.push(format!("SQS {queue_url}"));
                let q = Arc::new(SqsQueue::new(
                    &clients,
                    queue_url,
                    config.aws.dlq_url.as_deref(),
                ));
                (
                    Some(q.clone() as Arc<dyn Queue>),
                    Some(q as Arc<dyn QueueAdmin>),
                )
            } else {
                (None, None)
            };
            Ok(Bus {
                publisher,
                queue,
                admin,
                describe: describe.join(" → "),
            })
        }
    }
}
