//! `latamctl status`: the runbook table. Exit 0 all ok, 1 any warn/fail, 2 could not run.

use std::time::Duration;

use clap::Args;

use super::{Context, Exit};
use crate::compose;
use crate::config::Overrides;
use crate::output::{self, OutputFormat};
use crate::status::{self, State};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of the API to check (default with the embedded bus: http://<api.listen>).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Refresh every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<u64>,
    /// The API's error ratio and p95 are over this window: two `/metrics` samples this far
    /// apart (0s: since the API process started).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Skip the Kubernetes checks (config: kubernetes.enabled).
    #[arg(long)]
    pub no_kubernetes: bool,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let mut o = Overrides::default();
    if args.no_kubernetes {
        o.set("kubernetes.enabled", false);
    }
    let (config, _) = ctx.load(&o)?;
    let targets = compose::status_targets(&config, args.api.clone(), args.window).await?;
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
