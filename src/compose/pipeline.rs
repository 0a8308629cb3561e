//! The running process, wired in one place: for a config and a role, the API's state and
//! router, the worker, and every background task, ready to run. `serve` runs it; what it
//! starts is listed here and nowhere else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{Role, data_dir, open_bus, open_store};
use crate::api::{self, ApiSettings, AppState};
use crate::config::{BusKind, Config, StoreKind};
use crate::store::Store;
use crate::worker::{self, Worker};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything one `serve` process runs, built and not yet started.
pub struct Pipeline {
    /// The API's shared state (readiness included); [`Pipeline::router`] serves it.
    pub state: AppState,
    pub store: Arc<dyn Store>,
    /// The bus, for the startup line.
    pub bus: String,
    worker: Option<Worker>,
    /// Each background task, given the shutdown token when started.
    tasks: Vec<Box<dyn FnOnce(CancellationToken) -> Task + Send>>,
    readiness_interval: Duration,
}

/// A started [`Pipeline`]: its background tasks and its worker.
pub struct Running {
    background: JoinSet<()>,
    worker: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Opens the store and the bus for `role` and wires the API state, the worker (when
    /// the role runs it) and the background tasks: the data dir's disk gauges (embedded
    /// queue or SQLite store), the queue gauges (worker), the idempotency-key purge (API),
    /// the readiness refresh (which also sets `latamctl_ready`), the database pool gauges.
    pub async fn build(config: &Config, role: Role) -> anyhow::Result<Self> {
        let store = open_store(
            config,
            config.database.migrate_on_start,
            role.runs_api() && role.runs_worker(),
        )
        .await?;
        let bus = open_bus(config, role).await?;
        let state = AppState::new(
            ApiSettings::from(config),
            bus.publisher.clone(),
            bus.queue.clone(),
            Some(store.clone()),
        );
        let mut tasks: Vec<Box<dyn FnOnce(CancellationToken) -> Task + Send>> = Vec::new();
        if config.bus == BusKind::Embedded || config.store == StoreKind::Sqlite {
            let dir = data_dir(config);
            tasks.push(Box::new(move |shutdown| {
                Box::pin(crate::telemetry::report_data_dir_usage(
                    dir,
                    Duration::from_secs(5),
                    shutdown,
                ))
            }));
        }
        let worker = match (&bus.queue, role.runs_worker()) {
            (Some(queue), true) => {
                let stats_queue = queue.clone();
                tasks.push(Box::new(move |shutdown| {
                    Box::pin(worker::report_queue_stats(
                        stats_queue,
                        Duration::from_secs(5),
                        shutdown,
                    ))
                }));
                let mut worker_config = config.worker.clone();
                worker_config.batch_size = config.effective_batch_size();
                let worker = Worker::new(queue.clone(), store.clone(), worker_config);
                state.readiness().watch_worker(worker.gate());
                Some(worker)
            }
            _ => None,
        };
        if role.runs_api() {
            let (store, ttl) = (store.clone(), config.api.idempotency_ttl);
            tasks.push(Box::new(move |shutdown| {
                Box::pin(purge_idempotency_keys(store, ttl, shutdown))
            }));
        }
        let pool_store = store.clone();
        tasks.push(Box::new(move |shutdown| {
            Box::pin(report_pool_gauges(
                pool_store,
                Duration::from_secs(15),
                shutdown,
            ))
        }));
        Ok(Self {
            state,
            store,
            bus: bus.describe,
            worker,
            tasks,
            readiness_interval: config.api.readiness_interval,
        })
    }

    /// The HTTP routes over this pipeline's state.
    pub fn router(&self) -> axum::Router {
        api::app(self.state.clone())
    }

    /// Checks readiness once (so the first probe answers from real state), then starts
    /// every background task and the worker, each until `shutdown`.
    pub async fn start(self, shutdown: &CancellationToken) -> Running {
        let readiness = self.state.readiness();
        readiness.refresh().await;
        let mut background = JoinSet::new();
        background.spawn(readiness.run(self.readiness_interval, shutdown.clone()));
        for task in self.tasks {
            background.spawn(task(shutdown.clone()));
        }
        let worker = self.worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        Running { background, worker }
    }
}

/// What the Lambda worker runs per invocation: the store, and the SQS queue (when
/// `aws.queue_url` is set) through which a batch that failed store-wide is held.
pub struct LambdaParts {
    pub store: Arc<dyn Store>,
    pub queue: Option<crate::bus::sqs::SqsQueue>,
}

impl LambdaParts {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(config, config.database.migrate_on_start, false).await?;
        let queue = match &config.aws.queue_url {
            Some(url) => {
                let clients = crate::aws::AwsClients::from_config(&config.aws).await?;
                Some(crate::bus::sqs::SqsQueue::new(&clients, url, None))
            }
            None => None,
        };
        Ok(Self { store, queue })
    }
}

impl Running {
    /// After shutdown was signalled: waits up to `worker_grace` for the worker's in-flight
    /// batches, then stops the background tasks.
    pub async fn stop(mut self, worker_grace: Duration) {
        if let Some(task) = self.worker.take()
            && tokio::time::timeout(worker_grace, task).await.is_err()
        {
            tracing::warn!(
                message =
                    "Worker did not finish in time; unacknowledged messages will be redelivered."
            );
        }
        self.background.shutdown().await;
    }
}

/// Keeps the database pool gauges (`latamctl_db_pool_connections`) current.
async fn report_pool_gauges(store: Arc<dyn Store>, every: Duration, shutdown: CancellationToken) {
    crate::background::every(every, shutdown, || {
        if let Some((in_use, idle)) = store.pool_stats() {
            metrics::gauge!(crate::metric::DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use);
            metrics::gauge!(crate::metric::DB_POOL_CONNECTIONS, "state" => "idle").set(idle);
        }
        async {}
    })
    .await;
}

/// Forgets idempotency keys older than `ttl`, hourly.
async fn purge_idempotency_keys(store: Arc<dyn Store>, ttl: Duration, shutdown: CancellationToken) {
    crate::background::every(Duration::from_secs(3600), shutdown, || {
        let store = store.clone();
        async move {
            let cutoff = chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or_default();
            match store.purge_keys(cutoff).await {
                Ok(n) if n > 0 => {
                    tracing::info!(message = "Purged expired idempotency keys.", count = n)
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(message = "Failed to purge idempotency keys.", %error)
                }
            }
        }
    })
    .await;
}
