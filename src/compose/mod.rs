//! Builds the pipeline's parts from the configuration: the store, the publisher and the
//! queue, to run them (`serve`, `lambda`) or to inspect them (`status`, `drain`,
//! `publish --via sns`). The composition root: the only place that knows which
//! implementation a config selects (no other module matches on `BusKind`/`StoreKind` to
//! build one); commands ask here and hold trait objects.

mod pipeline;
pub use pipeline::{LambdaParts, Pipeline, Running};

use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::AwsClients;
use crate::bus::embedded::{EmbeddedQueue, QUEUE_FILE};
use crate::bus::sns::SnsPublisher;
use crate::bus::sqs::SqsQueue;
use crate::bus::{Publisher, Queue, QueueAdmin};
use crate::config::{BusKind, Config, StoreKind};
use crate::status::{Check, State};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::{STORE_FILE, SqliteStore};

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
/// `shared_reads`: this process serves GETs and its own worker writes the records, so
/// SQLite's GETs may share read transactions ([`SqliteStore::with_shared_reads`]).
pub async fn open_store(
    config: &Config,
    migrate: bool,
    shared_reads: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store {
        StoreKind::Sqlite => {
            let store = SqliteStore::open(&data_dir(config), config.database.query_timeout).await?;
            Arc::new(if shared_reads {
                store.with_shared_reads()
            } else {
                store
            })
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
                let applied = store.apply_migrations().await.map_err(|e| {
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
        match store.apply_migrations().await {
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
                let (publisher, topic_arn) = sns_publisher(
                    config,
                    &clients,
                    config.aws.publish_attempts,
                    "bus = \"aws\"",
                )?;
                describe.push(format!("SNS {topic_arn}"));
                Some(publisher)
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

/// A publisher to the configured SNS topic (`aws.topic_arn`, required for `why`), trying
/// each publish up to `attempts` times; and the topic's ARN.
pub fn sns_publisher(
    config: &Config,
    clients: &AwsClients,
    attempts: u32,
    why: &str,
) -> anyhow::Result<(Arc<dyn Publisher>, String)> {
    let topic_arn = config.require(&config.aws.topic_arn, "aws.topic_arn", why)?;
    Ok((
        Arc::new(
            SnsPublisher::new(clients, topic_arn, attempts)
                .with_in_flight(config.aws.publish_in_flight),
        ),
        topic_arn.to_owned(),
    ))
}

/// A queue that exists, to inspect: its messages (`Queue`) and its admin side.
pub struct ExistingQueue {
    pub queue: Arc<dyn Queue>,
    pub admin: Arc<dyn QueueAdmin>,
}

/// The configured queue if there is one to inspect (`status`, `drain`): the embedded queue
/// only when its file exists (inspecting never creates one), SQS only when `aws.queue_url`
/// is set. `aws` reuses clients the caller already built.
pub async fn existing_queue(
    config: &Config,
    aws: Option<&AwsClients>,
) -> anyhow::Result<Option<ExistingQueue>> {
    match config.bus {
        BusKind::Embedded => {
            let dir = data_dir(config);
            if !dir.join(QUEUE_FILE).exists() {
                return Ok(None);
            }
            let queue = Arc::new(EmbeddedQueue::open(&dir, &config.queue).await?);
            Ok(Some(ExistingQueue {
                queue: queue.clone(),
                admin: queue,
            }))
        }
        BusKind::Aws => {
            let Some(url) = config.aws.queue_url.as_deref() else {
                return Ok(None);
            };
            let built;
            let clients = match aws {
                Some(clients) => clients,
                None => {
                    built = AwsClients::from_config(&config.aws).await?;
                    &built
                }
            };
            let queue = Arc::new(SqsQueue::new(clients, url, config.aws.dlq_url.as_deref()));
            Ok(Some(ExistingQueue {
                queue: queue.clone(),
                admin: queue,
            }))
        }
    }
}

/// Why [`existing_queue`] found none, as a hint that says what to set.
pub fn missing_queue_hint(config: &Config) -> String {
    match config.bus {
        BusKind::Embedded if config.aws.queue_url.is_some() => format!(
            "no embedded queue at {}, and the config names an SQS queue ([aws] queue_url) but \
             selects the embedded bus: pass --bus aws, or set bus = \"aws\" in the config",
            data_dir(config).join(QUEUE_FILE).display()
        ),
        BusKind::Embedded => format!(
            "no embedded queue at {}: point --data-dir at the directory `latamctl serve` uses",
            data_dir(config).join(QUEUE_FILE).display()
        ),
        BusKind::Aws => "no SQS queue configured: set aws.queue_url (`latamctl provision \
                         --write-config FILE` writes it)"
            .to_owned(),
    }
}

/// The configured store if there is one to inspect (`status`): the SQLite file only when
/// it exists, PostgreSQL only when `database.url` or `database.host` is set. Never creates
/// or migrates anything.
pub async fn existing_store(config: &Config) -> anyhow::Result<Option<Arc<dyn Store>>> {
    Ok(match config.store {
        StoreKind::Sqlite => {
            let dir = data_dir(config);
            if !dir.join(STORE_FILE).exists() {
                return Ok(None);
            }
            Some(Arc::new(
                SqliteStore::open(&dir, config.database.query_timeout).await?,
            ))
        }
        StoreKind::Postgres => {
            if config.database.url.is_none() && config.database.host.is_none() {
                return Ok(None);
            }
            Some(Arc::new(
                PostgresStore::connect(&config.database, &config.aws).await?,
            ))
        }
    })
}

/// Why a file or connection could not be opened, in one line: a damaged SQLite file's
/// hint says the two ways out (`serve` prints the steps).
fn unopened_hint(e: &anyhow::Error) -> String {
    let damaged = matches!(
        e.downcast_ref::<crate::bus::Error>(),
        Some(crate::bus::Error::Damaged(_))
    ) || matches!(
        e.downcast_ref::<crate::store::Error>(),
        Some(crate::store::Error::Damaged(_))
    );
    if damaged {
        crate::sqlite::status_hint(&e.to_string())
    } else {
        e.to_string()
    }
}

/// The rows for a queue `status` could not open: the queue's, and for the embedded bus the
/// DLQ's too (it lives in the same file).
fn unopened_queue(config: &Config, e: &anyhow::Error) -> Vec<Check> {
    match config.bus {
        BusKind::Embedded => {
            let file = data_dir(config).join(QUEUE_FILE);
            vec![
                Check::new("queue", State::Fail)
                    .figure("file", file.display())
                    .hint(unopened_hint(e)),
                Check::new("dlq", State::Fail)
                    .figure("file", file.display())
                    .hint(
                        "the dead-letter queue is in the same file as the queue: see the queue row",
                    ),
            ]
        }
        BusKind::Aws => vec![Check::new("queue", State::Fail).hint(e.to_string())],
    }
}

/// What `status` checks for this config: the API (given, or the embedded bus's own listen
/// address), the AWS clients when the bus or an RDS/EKS check needs them, the queue and the
/// store when they exist, the SNS topic when the bus is SNS, the Kubernetes release.
pub async fn status_targets(
    config: &Config,
    api: Option<String>,
    api_window: std::time::Duration,
) -> anyhow::Result<crate::status::Targets> {
    let aws_bus = config.bus == BusKind::Aws;
    let api = api
        .or_else(|| (!aws_bus).then(|| format!("http://{}", config.api.listen)))
        .map(|u| u.trim_end_matches('/').to_owned());
    let needs_aws =
        aws_bus || config.aws.rds_instance_id.is_some() || config.aws.eks_cluster.is_some();
    let cloud = if needs_aws {
        Some(crate::cloud::CloudClients::from_config(config).await?)
    } else {
        None
    };
    // A queue or store that cannot be opened (a damaged file, a bad URL) is its own `fail`
    // row: every other row is still checked.
    let queue = match existing_queue(config, cloud.as_ref().map(|c| &c.bus)).await {
        Ok(queue) => Ok(queue.map(|q| q.queue)),
        Err(e) => Err(unopened_queue(config, &e)),
    };
    let store = existing_store(config).await.map_err(|e| {
        let row = Check::new("database", State::Fail);
        match config.store {
            StoreKind::Sqlite => row
                .figure("kind", "sqlite")
                .figure("file", data_dir(config).join(STORE_FILE).display()),
            StoreKind::Postgres => row.figure("kind", "postgres"),
        }
        .hint(unopened_hint(&e))
    });
    let cluster = if config.kubernetes.enabled {
        crate::status::kubernetes::client(config.kubernetes.context.as_deref()).await
    } else {
        None
    };
    let (kube, kube_server) = match cluster {
        Some(c) => (Some(c.client), c.server),
        None => (None, None),
    };
    Ok(crate::status::Targets {
        api,
        api_token: config.api.token.clone(),
        api_window,
        sns_topic: aws_bus,
        cloud,
        queue,
        store,
        kube,
        kube_server,
    })
}
