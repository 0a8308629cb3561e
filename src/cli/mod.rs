//! The command line: clap definitions here, one file per subcommand.

mod completions;
mod config_cmd;
mod drain;
mod migrate;
mod provision;
mod publish;
mod render;
mod serve;
mod slo;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, BusKind, Config, LogFormat, Overrides, StoreKind};
use crate::output::OutputFormat;

/// Exit status of every command: 0 success, 1 a check failed (drift, threshold, unhealthy),
/// 2 the command could not do its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Error = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "latamctl",
    version,
    about = "Run and operate the pub/sub ingestion pipeline: POST → topic → queue → worker → database → GET.",
    long_about = None,
    propagate_version = true,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./latamctl.toml when it exists).
    #[arg(long, global = true, env = "LATAMCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format of data printed on stdout.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr (config: log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Which implementations and where, for every command (the config's `bus`, `store`,
/// `data_dir`, `aws.endpoint_url`), accepted before or after the subcommand like `--config`.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Backend")]
pub struct BackendArgs {
    /// Message bus (config: bus).
    #[arg(long, global = true, value_enum)]
    pub bus: Option<BusKind>,
    /// Record store (config: store).
    #[arg(long, global = true, value_enum)]
    pub store: Option<StoreKind>,
    /// Directory of the embedded queue and SQLite store (config: data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// AWS endpoint override for emulators such as moto (config: aws.endpoint_url).
    #[arg(long, global = true, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
}

impl BackendArgs {
    fn apply(&self, o: &mut Overrides) {
        o.set_opt(
            "bus",
            self.bus
                .map(|b| serde_json::to_value(b).unwrap_or_default()),
        )
        .set_opt(
            "store",
            self.store
                .map(|s| serde_json::to_value(s).unwrap_or_default()),
        )
        .set_opt(
            "data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        )
        .set_opt("aws.endpoint_url", self.aws_endpoint_url.clone());
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: HTTP API and/or worker (embedded by default, no setup needed).
    Serve(serve::ServeArgs),
    /// Create or update SNS, SQS + DLQ, subscription, policies and alarms (idempotent; --dry-run plans).
    Provision(provision::ProvisionArgs),
    /// Smoke test / load: send N messages on a schedule (constant|linear|incremental|wave), verify end to end.
    Publish(publish::PublishArgs),
    /// Peek at, delete or redrive messages of the queue or its dead-letter queue.
    Drain(drain::DrainArgs),
    /// Runbook table: every component's health and key figures; exit 0 healthy, 1 degraded, 2 error.
    Status(status::StatusArgs),
    /// Render deployment artefacts (Helm values, Terraform variables, Argo CD) and alerts/dashboards.
    Render(render::RenderArgs),
    /// Create or update the database schema (PostgreSQL/Citus or SQLite).
    Migrate(migrate::MigrateArgs),
    /// SLIs against SLOs now: error budget left and burn rate (exit 1 when one pages).
    Slo(slo::SloArgs),
    /// Show the effective configuration.
    Config(config_cmd::ConfigArgs),
    /// Print shell completions.
    Completions(completions::CompletionsArgs),
}

/// What every command receives.
pub struct Context {
    pub global: GlobalArgs,
}

impl Context {
    /// Loads the configuration with this command's flag overrides and starts logging.
    pub fn load(&self, overrides: &Overrides) -> anyhow::Result<(Config, config::Sources)> {
        let mut overrides = overrides.clone();
        self.global.backend.apply(&mut overrides);
        if let Some(format) = self.global.log_format {
            overrides.set(
                "log.format",
                serde_json::to_value(format).unwrap_or_default(),
            );
        }
        match self.global.verbose {
            0 => {}
            1 => {
                overrides.set("log.level", "info,latamctl=debug");
            }
            _ => {
                overrides.set("log.level", "debug,latamctl=trace");
            }
        }
        let (config, sources) = config::load(self.global.config.as_deref(), &overrides)?;
        crate::telemetry::init_logging(config.log.format, &config.log.level);
        for note in &sources.inferred {
            tracing::info!("{note}");
        }
        Ok((config, sources))
    }
}

/// Parses arguments, runs the command, maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Error.into();
        }
    };
    let ctx = Context { global: cli.global };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(&ctx, args).await,
            Command::Provision(args) => provision::run(&ctx, args).await,
            Command::Publish(args) => publish::run(&ctx, args).await,
            Command::Drain(args) => drain::run(&ctx, args).await,
            Command::Status(args) => status::run(&ctx, args).await,
            Command::Migrate(args) => migrate::run(&ctx, args).await,
            Command::Config(args) => config_cmd::run(&ctx, args).await,
            Command::Completions(args) => completions::run(args),
            Command::Render(args) => render::run(&ctx, args).await,
            Command::Slo(args) => slo::run(&ctx, args).await,
        }
    });
    // Background tasks (pollers, writers) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Error.into()
        }
    }
}
