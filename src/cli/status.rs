//! `latamctl status`: the runbook table. Exit 0 all ok, 1 any warn/fail, 2 could not run.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Context, Exit};
use crate::bus::Queue;
use crate::bus::aws::{AwsClients, SqsQueue};
use crate::bus::embedded::{EmbeddedQueue, QUEUE_FILE};
use crate::cloud::CloudClients;
use crate::config::{BusKind, Config, Overrides, StoreKind};
use crate::output::{self, OutputFormat};
use crate::pipeline;
use crate::status::{self, State, Targets};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::{STORE_FILE, SqliteStore};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of the API to check (default with the embedded bus: http://<api.listen>).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Refresh every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<u64>,
    /// Skip the Kubernetes checks (config: kubernetes.enabled).
    #[arg(long)]
    pub no_kubernetes: bool,
    /// Data directory of the embedded queue and SQLite store (config: data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// AWS endpoint override for emulators such as moto (config: aws.endpoint_url).
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let mut o = Overrides::default();
    o.set_opt(
        "data_dir",
        args.data_dir.as_ref().map(|p| p.display().to_string()),
    )
    .set_opt("aws.endpoint_url", args.aws_endpoint_url.clone());
    if args.no_kubernetes {
        o.set("kubernetes.enabled", false);
    }
    let (config, _) = ctx.load(&o)?;
    let targets = targets(&config, &args).await?;
    loop {
        let report = status::run(&config, &targets).await;
        if args.watch.is_some() && ctx.global.output == OutputFormat::Table {
            print!("\x1b[2J\x1b[H");
        }
        output::print(ctx.global.output, &report, || status::table(&report))?;
        // As the README promises: 0 healthy, 1 degraded, 2 a component fails.
        let exit = match report.overall {
            State::Ok | State::Skipped => Exit::Success,
            State::Fail => Exit::Error,
            _ => Exit::Failure,
        };
        let Some(every) = args.watch else {
            return Ok(exit);
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(every.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit),
        }
    }
}

async fn targets(config: &Config, args: &StatusArgs) -> anyhow::Result<Targets> {
    let api = args
        .api
        .clone()
        .or_else(|| {
            (config.bus == BusKind::Embedded).then(|| format!("http://{}", config.api.listen))
        })
        .map(|u| u.trim_end_matches('/').to_owned());
    let needs_aws = config.bus == BusKind::Aws
        || config.aws.rds_instance_id.is_some()
        || config.aws.eks_cluster.is_some();
    let cloud = if needs_aws {
        Some(CloudClients::from_config(config).await?)
    } else {
        None
    };
    let data_dir = pipeline::data_dir(config);
    let queue: Option<Arc<dyn Queue>> = match config.bus {
        BusKind::Embedded if data_dir.join(QUEUE_FILE).exists() => Some(Arc::new(
            EmbeddedQueue::open(&data_dir, &config.queue).await?,
        )),
        BusKind::Embedded => None,
        BusKind::Aws => match (&config.aws.queue_url, &cloud) {
            (Some(url), Some(_)) => {
                let clients = AwsClients::from_config(&config.aws).await?;
                Some(Arc::new(SqsQueue::new(
                    &clients,
                    url,
                    config.aws.dlq_url.as_deref(),
                )))
            }
            _ => None,
        },
    };
    let store: Option<Arc<dyn Store>> = match config.store {
        StoreKind::Sqlite if data_dir.join(STORE_FILE).exists() => Some(Arc::new(
            SqliteStore::open(&data_dir, config.database.query_timeout).await?,
        )),
        StoreKind::Sqlite => None,
        StoreKind::Postgres if config.database.url.is_some() || config.database.host.is_some() => {
            Some(Arc::new(
                PostgresStore::connect(&config.database, &config.aws).await?,
            ))
        }
        StoreKind::Postgres => None,
    };
    let kube = if config.kubernetes.enabled {
        status::kubernetes::client(config.kubernetes.context.as_deref()).await
    } else {
        None
    };
    Ok(Targets {
        api,
        api_token: config.api.token.clone(),
        cloud,
        queue,
        store,
        kube,
    })
}
