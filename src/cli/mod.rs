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

/// `latamctl --version`: the version, the git commit it was built from (build.rs) and the
/// enabled cargo features.
pub const VERSION: &str = env!("LATAMCTL_VERSION");

#[derive(Debug, Parser)]
#[command(
    name = "latamctl",
    version = VERSION,
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

/// `--api-token` / `--api-token-file`, the same on every command that takes them.
#[derive(Debug, Args, Default)]
pub struct ApiTokenArgs {
    /// Bearer token of the API: required on POST and GET by `serve`, sent by clients
    /// (config: api.token).
    #[arg(long, value_name = "TOKEN")]
    pub api_token: Option<String>,
    /// File holding the API token (a mounted secret; not visible in `ps`) (config:
    /// api.token_file).
    #[arg(long, value_name = "FILE", conflicts_with = "api_token")]
    pub api_token_file: Option<PathBuf>,
}

impl ApiTokenArgs {
    pub fn apply(&self, o: &mut Overrides) {
        o.set_opt("api.token", self.api_token.clone()).set_opt(
            "api.token_file",
            self.api_token_file
                .as_ref()
                .map(|p| p.display().to_string()),
        );
    }
}

/// `--database-url` / `--database-url-file`, the same on every command that takes them.
#[derive(Debug, Args, Default)]
pub struct DatabaseUrlArgs {
    /// PostgreSQL URL (config: database.url; env DATABASE_URL too).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the PostgreSQL URL (a mounted secret) (config: database.url_file).
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<PathBuf>,
}

impl DatabaseUrlArgs {
    pub fn apply(&self, o: &mut Overrides) {
        o.set_opt("database.url", self.database_url.clone())
            .set_opt(
                "database.url_file",
                self.database_url_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            );
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: HTTP API and/or worker (embedded by default, no setup needed).
    #[command(after_help = "Examples:
  latamctl serve
  latamctl serve --listen 0.0.0.0:8080 --api-token-file /var/run/secrets/latamctl/api-token/token
  latamctl serve --role api --bus aws --store postgres --database-url-file /var/run/secrets/latamctl/database/url
  latamctl serve --role worker --data-dir /var/lib/latamctl")]
    Serve(serve::ServeArgs),
    /// Create or update SNS, SQS + DLQ, subscription, policies and alarms (idempotent; --dry-run plans).
    #[command(after_help = "Examples:
  latamctl provision --dry-run
  latamctl provision --write-config latamctl.toml
  latamctl provision --destroy --dry-run
  latamctl provision --destroy --yes -o json
  latamctl provision --fleet examples/fleet.toml --dry-run")]
    Provision(provision::ProvisionArgs),
    /// Smoke test / load: send N messages on a schedule (constant|linear|incremental|wave), verify end to end.
    #[command(after_help = "Examples:
  latamctl publish --count 200 --verify
  latamctl publish --api http://localhost:8080 --rate 1000 --count 10000 --verify -o json
  latamctl publish --pattern wave --rate 500 --duration 2m --period 30s
  latamctl publish --via sns --count 10 --bus aws
  latamctl publish --fleet examples/fleet.toml --count 20 --verify")]
    Publish(publish::PublishArgs),
    /// Peek at, delete or redrive messages of the queue or its dead-letter queue.
    #[command(after_help = "Examples:
  latamctl drain --queue dlq --peek
  latamctl drain --queue dlq --redrive --max 500
  latamctl drain --queue dlq --out dlq-backup.jsonl
  latamctl --bus aws drain --queue dlq --peek -o json")]
    Drain(drain::DrainArgs),
    /// Runbook table: every component's health and key figures; exit 0 healthy, 1 degraded, 2 error.
    #[command(after_help = "Examples:
  latamctl status
  latamctl status --api http://localhost:8080 --window 1m
  latamctl --config latamctl.toml status -o json
  latamctl status --watch 5
  latamctl status --fleet examples/fleet.toml --only warn,fail")]
    Status(status::StatusArgs),
    /// Render deployment artefacts (Helm values, Terraform variables, Argo CD) and alerts/dashboards.
    #[command(after_help = "Examples:
  latamctl render alerts --format prometheus --out examples/alerts/prometheus-rules.yaml
  latamctl render dashboards --format grafana
  latamctl render dashboards --format grafana --fleet --out fleet-dashboard.json
  latamctl render synthetics --format datadog --out synthetics.tf.json
  latamctl render datadog-agent --env prod --api-key-secret datadog-api-key
  latamctl render helm --env prod --image-tag 0a1b2c3 --out values-prod.yaml
  latamctl render terraform-vars --env dev
  latamctl render argocd --env prod --revision v1.2.0")]
    Render(render::RenderArgs),
    /// Create or update the database schema (PostgreSQL/Citus or SQLite).
    #[command(after_help = "Examples:
  latamctl migrate
  latamctl migrate --database-url-file /var/run/secrets/latamctl/database/url
  DATABASE_URL=postgres://app@db:5432/ingest?sslmode=require latamctl migrate -o json")]
    Migrate(migrate::MigrateArgs),
    /// SLIs against SLOs now: error budget left and burn rate (exit 1 when one pages).
    #[command(after_help = "Examples:
  latamctl slo --prometheus http://prometheus:9090
  latamctl slo --metrics http://localhost:8080/metrics --window 1m
  latamctl slo --prometheus http://prometheus:9090 --slo examples/slo.yaml -o json
  latamctl slo --fleet examples/fleet.toml --prometheus http://prometheus:9090")]
    Slo(slo::SloArgs),
    /// Show the effective configuration.
    #[command(after_help = "Examples:
  latamctl config show
  latamctl --config latamctl.toml config show -o json")]
    Config(config_cmd::ConfigArgs),
    /// Print shell completions, or write man pages.
    #[command(after_help = "Examples:
  latamctl completions bash
  latamctl completions zsh
  latamctl completions --man target/man")]
    Completions(completions::CompletionsArgs),
}

impl From<crate::fleet::Verdict> for Exit {
    fn from(verdict: crate::fleet::Verdict) -> Self {
        match verdict {
            crate::fleet::Verdict::Success => Exit::Success,
            crate::fleet::Verdict::Failure => Exit::Failure,
            crate::fleet::Verdict::Error => Exit::Error,
        }
    }
}

/// What every command receives.
pub struct Context {
    pub global: GlobalArgs,
    /// Export request traces when configured (`serve` only: the other commands are
    /// clients and make no spans worth exporting).
    pub traces: bool,
}

impl Context {
    /// `overrides` with the global backend flags (`--bus`, `--store`, `--data-dir`,
    /// `--aws-endpoint-url`), for every system of a fleet.
    pub fn fleet_overrides(&self, overrides: &Overrides) -> Overrides {
        let mut o = overrides.clone();
        self.global.backend.apply(&mut o);
        o
    }

    /// Loads the configuration with this command's flag overrides and starts logging.
    pub fn load(&self, overrides: &Overrides) -> anyhow::Result<(Config, config::Sources)> {
        let (config, sources) = self.resolve(overrides)?;
        crate::telemetry::init_logging(
            config.log.format,
            &config.log.level,
            self.traces
                .then_some((&config.telemetry, config.environment.as_str())),
        );
        for note in &sources.inferred {
            tracing::info!("{note}");
        }
        Ok((config, sources))
    }

    /// The configuration with this command's flag overrides, as [`load`](Self::load) reads
    /// it, without starting logging (`serve` re-reads it on SIGHUP).
    pub fn resolve(&self, overrides: &Overrides) -> anyhow::Result<(Config, config::Sources)> {
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
        Ok(config::load(self.global.config.as_deref(), &overrides)?)
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
    let ctx = Context {
        traces: matches!(cli.command, Command::Serve(_)),
        global: cli.global,
    };
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// Every command's `--help` ends with examples, and every example is a real invocation:
    /// it parses with today's flags (a renamed flag breaks this test, not a reader's paste).
    #[test]
    fn every_command_has_examples_that_parse() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:"),
                "`latamctl {name} --help` has no examples"
            );
            let examples: Vec<&str> = help
                .lines()
                .skip(1)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            assert!(!examples.is_empty(), "{name}");
            for example in examples {
                // `VAR=value latamctl ...`: the assignments are the shell's, not ours.
                let words: Vec<&str> = example
                    .split_whitespace()
                    .skip_while(|w| *w != "latamctl")
                    .collect();
                assert!(
                    words.contains(&name),
                    "the example {example:?} under `{name}` does not run `{name}`"
                );
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("the example {example:?} does not parse: {e}");
                }
            }
        }
    }

    #[test]
    fn version_names_the_commit_and_the_features() {
        let version = Cli::command().render_version();
        assert!(version.starts_with(&format!("latamctl {}", env!("CARGO_PKG_VERSION"))));
        assert!(
            version.contains("(commit ") && version.contains("features: "),
            "{version}"
        );
    }
}
