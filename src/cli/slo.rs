//! `latamctl slo`: each SLO's SLI, error budget left and burn rate, from a Prometheus server
//! or by sampling `/metrics` endpoints. Exit 1 when a budget is exhausted or burns at the page
//! rate.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Context, Exit};
use crate::config::Overrides;
use crate::output;
use crate::slo::evaluate::{self, Report, SloStatus};
use crate::slo::promql::Matchers;
use crate::slo::spec::trim_float;
use crate::slo::{Error, SloSpec};

/// Sampling window of `--metrics` when `--window` is not given.
const DEFAULT_SAMPLING_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
#[command(mut_arg("fleet", |a| a.conflicts_with_all(["metrics", "scope"])))]
pub struct SloArgs {
    /// Prometheus server to query (its HTTP API), e.g. http://prometheus:9090.
    #[arg(
        long,
        value_name = "URL",
        env = "LATAMCTL_PROMETHEUS_URL",
        conflicts_with = "metrics"
    )]
    pub prometheus: Option<String>,
    /// Without Prometheus: `latamctl serve` endpoints to sample (repeat, or several values);
    /// default: this host's api.listen.
    #[arg(long, value_name = "URL", num_args = 1..)]
    pub metrics: Vec<String>,
    /// With --prometheus: the window of every SLO (default: each SLO's own, 30d). With
    /// --metrics: how long to sample (default 1m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
    /// With --metrics: time between samples (default: window / 12, between 1s and 10s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// With --prometheus: scope matchers instead of the spec's (`system!=""`), e.g.
    /// 'system="orders"', or '' for series without scrape labels.
    #[arg(long, value_name = "MATCHERS")]
    pub scope: Option<String>,
    /// SLO spec (default: the built-in copy of examples/slo.yaml).
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// Every system of a fleet file: with --prometheus, one set of queries scoped to the
    /// fleet's `system` labels; without, each system's API `/metrics` sampled at once. One
    /// row per system and SLO, worst first; exit 2 when a system cannot be evaluated, else 1
    /// when any SLO pages or is exhausted. (--fleet-concurrency: systems sampled at once.)
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub async fn run(ctx: &Context, args: SloArgs) -> anyhow::Result<Exit> {
    let (config, _) = ctx.load(&Overrides::default())?;
    let spec = SloSpec::load(args.slo.as_deref())?;
    if let Some(file) = &args.fleet.fleet {
        return fleet::run(ctx, &args, &spec, file).await;
    }
    let report = match &args.prometheus {
        Some(url) => {
            let scope = args
                .scope
                .as_deref()
                .map(Matchers::parse)
                .transpose()
                .map_err(|e| Error::Usage(format!("--scope: {e}")))?;
            let bar = spinner(format!("querying Prometheus at {url}"));
            let report = evaluate::from_prometheus(&spec, url, args.window, scope).await;
            bar.finish_and_clear();
            report?
        }
        None => {
            if args.scope.is_some() {
                return Err(Error::Usage(
                    "--scope applies to --prometheus; sampled endpoints have no scrape labels"
                        .into(),
                )
                .into());
            }
            let urls = if args.metrics.is_empty() {
                vec![format!(
                    "http://{}",
                    crate::fleet::connectable(&config.api.listen)
                )]
            } else {
                args.metrics.clone()
            };
            let (window, interval) = sampling(&args);
            let bar = spinner(String::new());
            let total = humantime::format_duration(window).to_string();
            let n = urls.len();
            let report = evaluate::from_endpoints(&spec, &urls, window, interval, |elapsed| {
                bar.set_message(format!(
                    "sampling {n} endpoint{}: {}s of {total}",
                    if n == 1 { "" } else { "s" },
                    elapsed.as_secs()
                ));
            })
            .await;
            bar.finish_and_clear();
            report?
        }
    };
    output::print(ctx.global.output, &report, || table(&report))?;
    Ok(if report.failed() {
        Exit::Failure
    } else {
        Exit::Success
    })
}

/// `--metrics` sampling: the window and the time between samples.
fn sampling(args: &SloArgs) -> (Duration, Duration) {
    let window = args.window.unwrap_or(DEFAULT_SAMPLING_WINDOW);
    let interval = args
        .interval
        .unwrap_or_else(|| (window / 12).clamp(Duration::from_secs(1), Duration::from_secs(10)));
    (window, interval)
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{}%", trim_float((v * 100.0 * 1000.0).round() / 1000.0)))
        .unwrap_or_else(|| "-".into())
}

fn table(report: &Report) -> String {
    let mut b = tabled::builder::Builder::default();
    let burn_window = report
        .slos
        .first()
        .map(|s| s.burn_window.as_str())
        .unwrap_or("");
    b.push_record([
        "SLO".to_owned(),
        "SCOPE".to_owned(),
        "OBJECTIVE".to_owned(),
        "WINDOW".to_owned(),
        "SLI".to_owned(),
        "BUDGET LEFT".to_owned(),
        format!("BURN RATE ({burn_window})"),
        "STATE".to_owned(),
    ]);
    for s in &report.slos {
        b.push_record(row(s));
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::blank());
    format!(
        "{t}\nsource: {}; page burn rate {}x\n",
        report.source,
        trim_float(report.page_burn_rate)
    )
}

fn row(s: &SloStatus) -> [String; 8] {
    let scope = if s.scope.is_empty() {
        "-".to_owned()
    } else {
        s.scope.values().cloned().collect::<Vec<_>>().join("/")
    };
    [
        s.slo.clone(),
        scope,
        percent(Some(s.objective)),
        s.window.clone(),
        percent(s.sli),
        percent(s.error_budget_remaining),
        burn(s.burn_rate),
        s.state.as_str().to_owned(),
    ]
}

/// A burn rate to two decimals (`14.4x`), `-` without data.
fn burn(rate: Option<f64>) -> String {
    rate.map(|b| format!("{}x", trim_float((b * 100.0).round() / 100.0)))
        .unwrap_or_else(|| "-".into())
}

/// `slo --fleet FILE`: every system's SLOs, one row per system and SLO, worst first.
mod fleet {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde::Serialize;

    use super::{Exit, SloArgs, burn, percent, sampling, spinner};
    use crate::cli::Context;
    use crate::config::Overrides;
    use crate::output;
    use crate::slo::SloSpec;
    use crate::slo::evaluate::{self, SloStatus, State};
    use crate::slo::promql::{MatchOp, Matcher, Matchers};
    use crate::slo::spec::trim_float;

    /// One system: its worst SLO state (`error` when it could not be evaluated) and each
    /// SLO's status.
    #[derive(Debug, Serialize)]
    struct Row {
        system: String,
        state: Standing,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
        slos: Vec<SloStatus>,
    }

    #[derive(Debug, Serialize)]
    struct Report {
        source: String,
        page_burn_rate: f64,
        summary: String,
        systems: Vec<Row>,
    }

    /// A system's standing: its worst SLO's state, or that it could not be evaluated. Best
    /// to worst.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Standing {
        Ok,
        NoData,
        Burning,
        Page,
        Exhausted,
        Error,
    }

    impl From<crate::slo::evaluate::State> for Standing {
        fn from(state: crate::slo::evaluate::State) -> Self {
            use crate::slo::evaluate::State;
            match state {
                State::Ok => Standing::Ok,
                State::NoData => Standing::NoData,
                State::Burning => Standing::Burning,
                State::Page => Standing::Page,
                State::Exhausted => Standing::Exhausted,
            }
        }
    }

    impl crate::fleet::RowState for Standing {
        const SUMMARY: &'static [Self] = &[
            Standing::Ok,
            Standing::Burning,
            Standing::Page,
            Standing::Exhausted,
            Standing::NoData,
            Standing::Error,
        ];
        fn name(self) -> &'static str {
            match self {
                Standing::Ok => "ok",
                Standing::NoData => "no_data",
                Standing::Burning => "burning",
                Standing::Page => "page",
                Standing::Exhausted => "exhausted",
                Standing::Error => "error",
            }
        }
        /// Exit 2 when a system could not be evaluated, else 1 when an SLO pages or is
        /// exhausted.
        fn verdict(self) -> crate::fleet::Verdict {
            match self {
                Standing::Error => crate::fleet::Verdict::Error,
                Standing::Page | Standing::Exhausted => crate::fleet::Verdict::Failure,
                _ => crate::fleet::Verdict::Success,
            }
        }
    }

    fn row(system: &crate::fleet::System, slos: Result<Vec<SloStatus>, String>) -> Row {
        let (slos, error) = match slos {
            Ok(slos) => (slos, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let state = if error.is_some() {
            Standing::Error
        } else {
            slos.iter()
                .map(|s| Standing::from(s.state))
                .max()
                .unwrap_or(Standing::NoData)
        };
        Row {
            system: system.name.clone(),
            state,
            error,
            labels: system.labels.clone(),
            slos,
        }
    }

    pub async fn run(
        ctx: &Context,
        args: &SloArgs,
        spec: &SloSpec,
        file: &Path,
    ) -> anyhow::Result<Exit> {
        let systems = crate::fleet::load(file)?;
        let (source, rows) = match &args.prometheus {
            Some(url) => (
                format!("prometheus {url}"),
                from_prometheus(spec, url, args, &systems).await?,
            ),
            None => {
                let (window, interval) = sampling(args);
                let overrides = ctx.fleet_overrides(&Overrides::default());
                let overrides = &overrides;
                let rows = crate::fleet::each(
                    &systems,
                    args.fleet.fleet_concurrency,
                    "sampling",
                    |system| async move {
                        let slos = match system.config(overrides) {
                            Ok(config) => {
                                let url = system.api_url(&config);
                                evaluate::from_endpoints(spec, &[url], window, interval, |_| {})
                                    .await
                                    .map(|r| r.slos)
                                    .map_err(|e| e.to_string())
                            }
                            Err(e) => Err(e),
                        };
                        row(&system, slos)
                    },
                )
                .await;
                (
                    format!(
                        "metrics of {} systems over {}",
                        systems.len(),
                        humantime::format_duration(window)
                    ),
                    rows,
                )
            }
        };
        let (
            crate::fleet::Report {
                summary,
                systems: rows,
            },
            verdict,
        ) = crate::fleet::report(rows, |r| r.state, |r| &r.system);
        let exit: Exit = verdict.into();
        let report = Report {
            source,
            page_burn_rate: spec.page_burn_rate(),
            summary,
            systems: rows,
        };
        output::print(ctx.global.output, &report, || table(&report))?;
        Ok(exit)
    }

    /// One set of queries for the whole fleet: the spec's scope with `system` matching the
    /// fleet's names; each answer's `system` label says whose it is.
    async fn from_prometheus(
        spec: &SloSpec,
        url: &str,
        args: &SloArgs,
        systems: &[crate::fleet::System],
    ) -> anyhow::Result<Vec<Row>> {
        let names: Vec<String> = systems.iter().map(|s| regex::escape(&s.name)).collect();
        let mut matchers: Vec<Matcher> = spec
            .spec
            .scope
            .matchers
            .0
            .iter()
            .filter(|m| m.name != "system")
            .cloned()
            .collect();
        matchers.push(
            Matcher::new("system", MatchOp::Re, &names.join("|"))
                .map_err(|e| anyhow::anyhow!("fleet names as a matcher: {e}"))?,
        );
        let bar = spinner(format!(
            "querying Prometheus at {url} for {} systems",
            systems.len()
        ));
        let report =
            evaluate::from_prometheus(spec, url, args.window, Some(Matchers(matchers))).await;
        bar.finish_and_clear();
        let report = report?;
        Ok(systems
            .iter()
            .map(|system| {
                let slos: Vec<SloStatus> = report
                    .slos
                    .iter()
                    .filter(|s| s.scope.get("system") == Some(&system.name))
                    .cloned()
                    .collect();
                // No series for this system: every SLO without data, so it is listed.
                let slos = if slos.is_empty() {
                    let mut seen = std::collections::BTreeSet::new();
                    report
                        .slos
                        .iter()
                        .filter(|s| seen.insert(s.slo.clone()))
                        .map(|s| SloStatus {
                            scope: BTreeMap::from([("system".to_owned(), system.name.clone())]),
                            sli: None,
                            error_budget_remaining: None,
                            burn_rate: None,
                            state: State::NoData,
                            ..s.clone()
                        })
                        .collect()
                } else {
                    slos
                };
                row(system, Ok(slos))
            })
            .collect())
    }

    fn table(report: &Report) -> String {
        let mut b = tabled::builder::Builder::default();
        b.push_record([
            "SYSTEM",
            "SLO",
            "OBJECTIVE",
            "SLI",
            "BUDGET LEFT",
            "BURN RATE",
            "STATE",
        ]);
        for r in &report.systems {
            if let Some(e) = &r.error {
                b.push_record([
                    r.system.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("error: {e}"),
                ]);
            }
            for s in &r.slos {
                b.push_record([
                    r.system.clone(),
                    s.slo.clone(),
                    percent(Some(s.objective)),
                    percent(s.sli),
                    percent(s.error_budget_remaining),
                    burn(s.burn_rate),
                    s.state.as_str().to_owned(),
                ]);
            }
        }
        let mut t = b.build();
        t.with(tabled::settings::Style::sharp()).with(
            tabled::settings::Modify::new(tabled::settings::object::Columns::new(6..7))
                .with(tabled::settings::Width::wrap(60).keep_words(true)),
        );
        format!(
            "{t}\n{}\nsource: {}; page burn rate {}x\n",
            report.summary,
            report.source,
            trim_float(report.page_burn_rate)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_trimmed() {
        assert_eq!(percent(Some(0.99951)), "99.951%");
        assert_eq!(percent(None), "-");
    }
}
