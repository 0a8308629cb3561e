//! `latamctl serve`: the API and/or the worker, until SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{Context, Exit};
use crate::api::{self};
use crate::compose::{self, Role};
use crate::config::Overrides;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which half to run: the API, the worker, or both.
    #[arg(long, value_enum, default_value = "all", env = "LATAMCTL_ROLE")]
    pub role: Role,
    /// Address to listen on (config: api.listen; default 127.0.0.1:8080; port 0 = any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub token: super::ApiTokenArgs,
    #[command(flatten)]
    pub database: super::DatabaseUrlArgs,
    /// Do not apply database migrations at start (config: database.migrate_on_start).
    #[arg(long)]
    pub no_migrate: bool,
    /// AWS region (config: aws.region).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// SNS topic ARN to publish to (config: aws.topic_arn).
    #[arg(long, value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// SQS queue URL to consume (config: aws.queue_url).
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// SQS dead-letter queue URL (config: aws.dlq_url).
    #[arg(long, value_name = "URL")]
    pub dlq_url: Option<String>,
    /// Concurrent receive loops (config: worker.concurrency).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Messages per batch (config: worker.batch_size; default 10 on SQS, 100 embedded).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        self.token.apply(&mut o);
        self.database.apply(&mut o);
        o.set_opt("api.listen", self.listen.clone())
            .set_opt("aws.region", self.aws_region.clone())
            .set_opt("aws.topic_arn", self.topic_arn.clone())
            .set_opt("aws.queue_url", self.queue_url.clone())
            .set_opt("aws.dlq_url", self.dlq_url.clone())
            .set_opt("worker.concurrency", self.concurrency)
            .set_opt("worker.batch_size", self.batch_size);
        if self.no_migrate {
            o.set("database.migrate_on_start", false);
        }
        o
    }
}

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    let (config, _) = ctx.load(&args.overrides())?;
    let role = args.role;
    crate::telemetry::metrics_handle();
    crate::telemetry::spawn_metrics_upkeep();
    crate::telemetry::record_resource_limits();
    metrics::gauge!(crate::metric::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "role" => role_name(role))
        .set(1.0);

    let pipeline = compose::Pipeline::build(&config, role).await?;
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another process using it? choose another with --listen",
                config.api.listen
            )
        })?;
    let addr = listener.local_addr()?;

    eprintln!(
        "latamctl {} serving (role {})",
        env!("CARGO_PKG_VERSION"),
        role_name(role)
    );
    eprintln!("  listening on http://{addr}");
    eprintln!("  bus:   {}", pipeline.bus);
    eprintln!("  store: {}", pipeline.store.target());
    if role.runs_api() {
        eprintln!(
            "  try:   curl -s -XPOST http://{addr}/ingresar-datos -H 'content-type: application/json' -d '{{\"topic_arn\":\"{}\",\"message\":\"hola\"}}'",
            config.topics[0]
        );
    }

    let shutdown = CancellationToken::new();
    let state = pipeline.state.clone();
    let router = pipeline.router();
    let running = pipeline.start(&shutdown).await;

    let server = {
        let shutdown = shutdown.clone();
        api::server::serve(
            listener,
            router,
            api::server::ConnectionLimits {
                header_read_timeout: config.api.header_read_timeout,
                idle_timeout: config.api.idle_timeout,
                body_read_timeout: config.api.body_read_timeout,
                max_connections: config.api.max_connections,
                drain_timeout: config.api.request_timeout + Duration::from_secs(5),
            },
            shutdown,
        )
    };
    let mut server_task = tokio::spawn(server);

    // SIGHUP re-reads the config's `log.level` (a ConfigMap edit reaches the mounted file):
    // the log filter changes without a restart.
    let stop = wait_for_signal();
    tokio::pin!(stop);
    let mut hangup = hangup_signal();
    let overrides = args.overrides();
    let early_exit = loop {
        tokio::select! {
            _ = &mut stop => break None,
            r = &mut server_task => break Some(r),
            _ = next_hangup(&mut hangup) => reload_log_level(ctx, &overrides),
        }
    };
    if let Some(result) = early_exit {
        shutdown.cancel();
        result??;
        anyhow::bail!("the HTTP server stopped unexpectedly");
    }

    eprintln!("latamctl: shutting down: readiness off, draining HTTP and in-flight batches");
    state.begin_shutdown();
    shutdown.cancel();
    server_task.await??;
    running
        .stop(config.worker.visibility_timeout + Duration::from_secs(5))
        .await;
    let _ = tokio::task::spawn_blocking(crate::telemetry::flush_traces).await;
    eprintln!("latamctl: stopped");
    Ok(Exit::Success)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::All => "all",
        Role::Api => "api",
        Role::Worker => "worker",
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
}

async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        signal.recv().await;
        return;
    }
    let _ = hangup;
    std::future::pending::<()>().await
}

/// `log.level` from the config as `serve` read it at start (file, environment, flags).
fn reload_log_level(ctx: &Context, overrides: &crate::config::Overrides) {
    use crate::telemetry::LevelChange;
    let level = match ctx.resolve(overrides) {
        Ok((config, _)) => config.log.level,
        Err(error) => {
            tracing::warn!(
                message = "SIGHUP: the configuration cannot be read; the log level is unchanged",
                error = format!("{error:#}")
            );
            return;
        }
    };
    match crate::telemetry::set_log_level(&level) {
        Ok(LevelChange::Changed) => {
            tracing::warn!(message = "SIGHUP: log level changed", level = %level)
        }
        Ok(LevelChange::Unchanged) => {
            tracing::info!(message = "SIGHUP: log level unchanged", level = %level)
        }
        Ok(LevelChange::PinnedByRustLog) => tracing::warn!(
            message = "SIGHUP: RUST_LOG is set and wins over log.level; unset it to change the level at run time"
        ),
        Err(error) => tracing::warn!(message = "SIGHUP: the log level is unchanged", %error),
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
