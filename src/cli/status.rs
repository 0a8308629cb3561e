//! `latamctl status`: the runbook table. Exit 0 all ok, 1 any warn/fail, 2 could not run.

use std::time::Duration;

use clap::Args;

use super::{Context, Exit};
use crate::compose;
use crate::config::Overrides;
use crate::output::{self, OutputFormat};
use crate::status::{self, State};

#[derive(Debug, Args)]
#[command(mut_arg("fleet", |a| a.conflicts_with("api")))]
#[command(mut_arg("fleet_concurrency", |a| a.alias("concurrency")))]
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
    /// The image the pods should run (`repository:tag`, `latamctl:tag` or a bare tag): a pod
    /// running another is a warning (config: kubernetes.expected_image).
    #[arg(long, value_name = "IMAGE")]
    pub expect_image: Option<String>,
    /// --fleet FILE: check every system of a fleet file instead of one config.
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
    /// With --fleet: show only systems in these states (ok, warn, fail), e.g. `warn,fail`.
    #[arg(long, value_name = "STATES", value_delimiter = ',', requires = "fleet")]
    pub only: Vec<String>,
}

/// Prints one round (the screen cleared first under `--watch`); with `--watch` waits for
/// the next round and answers `None`, else (or on Ctrl-C) the exit status.
async fn show<T: serde::Serialize>(
    ctx: &Context,
    watch: Option<u64>,
    value: &T,
    overall: State,
    table: impl FnOnce() -> String,
) -> anyhow::Result<Option<Exit>> {
    if watch.is_some() && ctx.global.output == OutputFormat::Table {
        print!("\x1b[2J\x1b[H");
    }
    output::print(ctx.global.output, value, table)?;
    let exit = exit_of(overall);
    let Some(every) = watch else {
        return Ok(Some(exit));
    };
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(every.max(1))) => Ok(None),
        _ = tokio::signal::ctrl_c() => Ok(Some(exit)),
    }
}

/// As docs/operating.md promises: 0 healthy, 1 degraded, 2 a component (or a system) fails.
fn exit_of(state: State) -> Exit {
    crate::fleet::RowState::verdict(state).into()
}

/// A check's state as a fleet row's: skipped counts as ok; a warning exits 1, a failure 2.
impl crate::fleet::RowState for State {
    const SUMMARY: &'static [Self] = &[State::Ok, State::Warn, State::Fail];
    fn name(self) -> &'static str {
        match self {
            State::Ok | State::Skipped => "ok",
            State::Warn => "warn",
            State::Fail => "fail",
        }
    }
    fn verdict(self) -> crate::fleet::Verdict {
        match self {
            State::Ok | State::Skipped => crate::fleet::Verdict::Success,
            State::Warn => crate::fleet::Verdict::Failure,
            State::Fail => crate::fleet::Verdict::Error,
        }
    }
}

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    if let Some(file) = args.fleet.fleet.clone() {
        return fleet::run(ctx, &args, &file).await;
    }
    let mut o = Overrides::default();
    if args.no_kubernetes {
        o.set("kubernetes.enabled", false);
    }
    if let Some(image) = &args.expect_image {
        o.set("kubernetes.expected_image", image.as_str());
    }
    let (config, _) = ctx.load(&o)?;
    let targets = compose::status_targets(&config, args.api.clone(), args.window).await?;
    loop {
        let report = status::run(&config, &targets).await;
        if let Some(exit) = show(ctx, args.watch, &report, report.overall, || {
            status::table(&report)
        })
        .await?
        {
            return Ok(exit);
        }
    }
}

/// `status --fleet FILE`: every system of the fleet checked concurrently, one row each.
mod fleet {
    use std::path::Path;
    use std::time::Duration;

    use serde::Serialize;

    use super::{Exit, StatusArgs, show};
    use crate::cli::Context;
    use crate::config::Overrides;
    use crate::fleet::System;
    use crate::status::{self, Check, Report, State};

    /// One system's row: its state, the worst component and why, and the figures a
    /// runbook reads first; `checks` has every component's details.
    #[derive(Debug, Serialize)]
    struct Row {
        name: String,
        state: State,
        worst: String,
        hint: String,
        api_error_rate: Option<String>,
        api_p95_ms: Option<String>,
        queue_oldest_age_s: Option<String>,
        dlq_depth: Option<String>,
        db_latency_ms: Option<String>,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        labels: std::collections::BTreeMap<String, String>,
        checks: Vec<Check>,
    }

    #[derive(Debug, Serialize)]
    struct FleetReport {
        overall: State,
        summary: String,
        systems: Vec<Row>,
    }

    pub async fn run(ctx: &Context, args: &StatusArgs, file: &Path) -> anyhow::Result<Exit> {
        // Logging as configured here; each system's own config is read below.
        let _ = ctx.load(&Overrides::default());
        let systems = crate::fleet::load(file)?;
        let only = parse_only(&args.only)?;
        let mut o = Overrides::default();
        if args.no_kubernetes {
            o.set("kubernetes.enabled", false);
        }
        if let Some(image) = &args.expect_image {
            o.set("kubernetes.expected_image", image.as_str());
        }
        let overrides = ctx.fleet_overrides(&o);
        loop {
            let rows = crate::fleet::each(
                &systems,
                args.fleet.fleet_concurrency,
                "checking",
                |system| check(system, args, &overrides),
            )
            .await;
            let overall = rows.iter().map(|r| r.state).max().unwrap_or(State::Ok);
            let (
                crate::fleet::Report {
                    summary,
                    systems: mut rows,
                },
                _,
            ) = crate::fleet::report(rows, |r| r.state, |r| &r.name);
            if !only.is_empty() {
                rows.retain(|r| only.contains(&r.state));
            }
            let report = FleetReport {
                overall,
                summary,
                systems: rows,
            };
            if let Some(exit) =
                show(ctx, args.watch, &report, report.overall, || table(&report)).await?
            {
                return Ok(exit);
            }
        }
    }

    fn parse_only(states: &[String]) -> anyhow::Result<Vec<State>> {
        states
            .iter()
            .map(|s| match s.trim() {
                "ok" => Ok(State::Ok),
                "warn" => Ok(State::Warn),
                "fail" => Ok(State::Fail),
                other => anyhow::bail!("--only {other:?}: use ok, warn or fail (comma-separated)"),
            })
            .collect()
    }

    /// One system, under its own timeout: a system that cannot be read or does not answer
    /// is a failed row, never a failed command.
    async fn check(system: System, args: &StatusArgs, overrides: &Overrides) -> Row {
        let failed = |system: &System, component: &str, hint: String| Row {
            name: system.name.clone(),
            state: State::Fail,
            worst: component.to_owned(),
            hint,
            api_error_rate: None,
            api_p95_ms: None,
            queue_oldest_age_s: None,
            dlq_depth: None,
            db_latency_ms: None,
            labels: system.labels.clone(),
            checks: Vec::new(),
        };
        let config = match system.config(overrides) {
            Ok(config) => config,
            Err(e) => return failed(&system, "config", e),
        };
        let limit = config.status.check_timeout + args.window + Duration::from_secs(2);
        let checked = tokio::time::timeout(limit, async {
            let targets =
                crate::compose::status_targets(&config, system.api.clone(), args.window).await?;
            anyhow::Ok(status::run(&config, &targets).await)
        })
        .await;
        let report = match checked {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => return failed(&system, "setup", format!("{e:#}")),
            Err(_) => {
                return failed(
                    &system,
                    "timeout",
                    format!("no answer within {}", humantime::format_duration(limit)),
                );
            }
        };
        row(system, report)
    }

    fn row(system: System, report: Report) -> Row {
        let worst = report
            .checks
            .iter()
            .filter(|c| c.state != State::Skipped)
            .max_by_key(|c| c.state);
        let figure = |component: &str, key: &str| {
            report
                .checks
                .iter()
                .find(|c| c.component == component)
                .and_then(|c| c.figures.get(key).cloned())
        };
        Row {
            name: system.name,
            state: report.overall,
            worst: worst
                .filter(|c| c.state > State::Ok)
                .map(|c| c.component.clone())
                .unwrap_or_default(),
            hint: worst
                .filter(|c| c.state > State::Ok)
                .map(|c| c.hint.clone())
                .unwrap_or_default(),
            api_error_rate: figure("api", "error_rate"),
            api_p95_ms: figure("api", "p95_ms"),
            queue_oldest_age_s: figure("queue", "oldest_age_s"),
            dlq_depth: figure("dlq", "depth"),
            db_latency_ms: figure("database", "latency_ms"),
            labels: system.labels,
            checks: report.checks,
        }
    }

    fn table(report: &FleetReport) -> String {
        let mut b = tabled::builder::Builder::default();
        b.push_record([
            "SYSTEM",
            "STATE",
            "WORST",
            "API ERR",
            "API P95 MS",
            "OLDEST S",
            "DLQ",
            "DB MS",
            "HINT",
        ]);
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        for r in &report.systems {
            let state = serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            b.push_record([
                r.name.clone(),
                state,
                r.worst.clone(),
                dash(&r.api_error_rate),
                dash(&r.api_p95_ms),
                dash(&r.queue_oldest_age_s),
                dash(&r.dlq_depth),
                dash(&r.db_latency_ms),
                r.hint.clone(),
            ]);
        }
        let mut t = b.build();
        t.with(tabled::settings::Style::sharp()).with(
            tabled::settings::Modify::new(tabled::settings::object::Columns::new(8..9))
                .with(tabled::settings::Width::wrap(50).keep_words(true)),
        );
        format!("{t}\n{}\n", report.summary)
    }
}
