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
                vec![format!("http://{}", local_address(&config.api.listen))]
            } else {
                args.metrics.clone()
            };
            let window = args.window.unwrap_or(DEFAULT_SAMPLING_WINDOW);
            let interval = args.interval.unwrap_or_else(|| {
                (window / 12).clamp(Duration::from_secs(1), Duration::from_secs(10))
            });
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

/// `0.0.0.0:8080` is where serve listens, not where to connect.
fn local_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_owned(),
    }
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
        s.burn_rate
            .map(|b| format!("{}x", trim_float((b * 100.0).round() / 100.0)))
            .unwrap_or_else(|| "-".into()),
        s.state.as_str().to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_become_connectable() {
        assert_eq!(local_address("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(local_address("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(percent(Some(0.99951)), "99.951%");
        assert_eq!(percent(None), "-");
    }
}
