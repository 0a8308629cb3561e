//! `latamctl publish`: smoke tests and load. Sends N messages through the API (or straight to
//! SNS) on a fixed arrival schedule, optionally verifies each is stored, and checks k6-style
//! thresholds (defaults from the seed's SLOs): exit 1 when one is violated. The engine
//! (schedule, send, verify) is `loadgen`; this file is the command: flags, thresholds, report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use super::{Context, Exit};
use crate::bus::Publisher;
use crate::config::Overrides;
use crate::loadgen::{
    Pattern, Percentiles, Sender, Shape, Verified, load_bodies, send_all, verify,
};
use crate::output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// POST /ingresar-datos on the API.
    Api,
    /// SNS Publish to aws.topic_arn (bypasses the API).
    Sns,
}

#[derive(Debug, Args)]
#[command(mut_arg("fleet", |a| a.conflicts_with_all(["api", "api_token", "api_token_file"])))]
pub struct PublishArgs {
    /// Base URL of the API (default: http://<api.listen>).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Send through the API or straight to SNS.
    #[arg(long, value_enum, default_value = "api")]
    pub via: Via,
    /// Number of messages (default 100 when --duration is not given).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Run length instead of a count (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Peak arrival rate, messages per second.
    #[arg(long, default_value_t = 50.0, value_name = "R")]
    pub rate: f64,
    /// Load shape.
    #[arg(long, value_enum, default_value = "constant")]
    pub pattern: Pattern,
    /// Steps of the incremental pattern.
    #[arg(long, default_value_t = 5)]
    pub steps: u32,
    /// Period of the wave pattern.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub period: Duration,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Message text for every message (default: generated).
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub message: Option<String>,
    /// JSON Lines file of request bodies ({"message": ..., "topic_arn"?: ..., "attributes"?: {...}}), cycled.
    #[arg(long, value_name = "FILE.jsonl")]
    pub file: Option<PathBuf>,
    /// Topic name to post to (default: the first of `topics`).
    #[arg(long)]
    pub topic: Option<String>,
    #[command(flatten)]
    pub token: super::ApiTokenArgs,
    /// After sending, poll GET /data/{id} until every acknowledged message is stored.
    #[arg(long)]
    pub verify: bool,
    /// Longest wait for --verify.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub verify_timeout: Duration,
    /// Threshold: fail (exit 1) when the error ratio is above this (seed alert: 1 %).
    #[arg(long, default_value_t = 0.01, value_name = "RATIO")]
    pub max_error_rate: f64,
    /// Threshold: fail (exit 1) when the p95 request latency is above this (seed SLO: 200 ms).
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_p95: Duration,
    /// --fleet FILE: smoke-test every system of a fleet file (each with its own config's API
    /// and token), one row each, worst first.
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub shape: Shape,
    pub planned: u64,
    pub sent: u64,
    pub acked: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
    pub elapsed_seconds: f64,
    pub achieved_rate: f64,
    pub request_latency: Percentiles,
    pub verified: Option<Verified>,
    pub thresholds: Vec<Threshold>,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub struct Threshold {
    pub name: String,
    pub limit: String,
    pub actual: String,
    pub ok: bool,
}

pub async fn run(ctx: &Context, args: PublishArgs) -> anyhow::Result<Exit> {
    if let Some(file) = &args.fleet.fleet {
        // Logging as configured here; each system's own config is read by the fleet.
        let _ = ctx.load(&Overrides::default());
        return fleet::run(ctx, &args, file).await;
    }
    let mut o = Overrides::default();
    args.token.apply(&mut o);
    let (config, _) = ctx.load(&o)?;
    let api = args
        .api
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.api.listen));
    let report = send_and_check(&config, &args, &api, true).await?;
    output::print(ctx.global.output, &report, || table(&report))?;
    Ok(if report.passed {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// One run against one system: send, verify, check the thresholds. `interactive`: the
/// start line and the progress bars on stderr (off for fleet rows).
async fn send_and_check(
    config: &crate::config::Config,
    args: &PublishArgs,
    api: &str,
    interactive: bool,
) -> anyhow::Result<Report> {
    let shape = Shape {
        pattern: args.pattern,
        rate: args.rate,
        count: args.count,
        duration: args.duration,
        steps: args.steps,
        period: args.period,
    };
    let schedule = shape.schedule()?;
    let planned = schedule.len() as u64;
    let api = api.trim_end_matches('/').to_owned();
    if args.verify && args.via == Via::Sns && args.api.is_none() {
        tracing::info!(message = "Verifying through the API.", api = %api);
    }
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| config.topics[0].clone());
    let bodies = load_bodies(
        args.file.as_deref(),
        args.message.as_deref(),
        &topic,
        &config.topics,
    )?;
    let client = crate::api::client::ApiClient::new(
        &api,
        config.api.token.clone(),
        Duration::from_secs(30),
        args.concurrency,
    )?;
    let sns: Option<Arc<dyn Publisher>> = match args.via {
        Via::Api => None,
        Via::Sns => {
            let clients = crate::aws::AwsClients::from_config(&config.aws).await?;
            Some(crate::compose::sns_publisher(config, &clients, 3, "--via sns")?.0)
        }
    };
    let target = match args.via {
        Via::Api => format!("{api}/ingresar-datos"),
        Via::Sns => format!(
            "SNS {}",
            config.aws.topic_arn.as_deref().unwrap_or_default()
        ),
    };
    if interactive {
        eprintln!(
            "publishing {planned} messages to {target}: {:?} pattern, peak {} msg/s, over {:.1}s",
            args.pattern,
            args.rate,
            shape.plan()?.0.as_secs_f64()
        );
    }

    let (sent, elapsed) = send_all(
        &schedule,
        &bodies,
        &Sender {
            api: client.clone(),
            sns,
            topic: topic.clone(),
        },
        args.concurrency,
        interactive,
    )
    .await?;

    let ids: Vec<Uuid> = sent.iter().filter_map(|s| s.id).collect();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for e in sent.iter().filter_map(|s| s.error.clone()) {
        *errors.entry(e).or_default() += 1;
    }
    let mut latencies: Vec<Duration> = sent.iter().map(|s| s.latency).collect();
    let request_latency = Percentiles::of(&mut latencies);
    let error_rate = if sent.is_empty() {
        0.0
    } else {
        (sent.len() - ids.len()) as f64 / sent.len() as f64
    };

    let verified = if args.verify {
        Some(verify(&client, &ids, args.verify_timeout, interactive).await)
    } else {
        None
    };

    let thresholds = thresholds(
        args,
        error_rate,
        &request_latency,
        verified.as_ref(),
        ids.len(),
    );
    let passed = thresholds.iter().all(|t| t.ok);
    Ok(Report {
        target,
        shape,
        planned,
        sent: sent.len() as u64,
        acked: ids.len() as u64,
        errors,
        error_rate,
        elapsed_seconds: elapsed.as_secs_f64(),
        achieved_rate: sent.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        request_latency,
        verified,
        thresholds,
        passed,
    })
}

/// The pass/fail checks of the run.
fn thresholds(
    args: &PublishArgs,
    error_rate: f64,
    request_latency: &Percentiles,
    verified: Option<&Verified>,
    acked: usize,
) -> Vec<Threshold> {
    let mut thresholds = vec![
        Threshold {
            name: "error_rate".into(),
            limit: format!("<= {:.2}%", args.max_error_rate * 100.0),
            actual: format!("{:.2}%", error_rate * 100.0),
            ok: error_rate <= args.max_error_rate,
        },
        Threshold {
            name: "request_p95".into(),
            limit: format!("<= {}", humantime::format_duration(args.max_p95)),
            actual: format!("{:.1}ms", request_latency.p95_ms),
            ok: request_latency.p95_ms <= args.max_p95.as_secs_f64() * 1000.0,
        },
    ];
    if let Some(v) = verified {
        thresholds.push(Threshold {
            name: "stored".into(),
            limit: format!("{} of {}", acked, acked),
            actual: format!("{} of {}", v.stored, acked),
            ok: v.missing == 0,
        });
    }
    thresholds
}

fn ms(p: &Percentiles) -> String {
    format!(
        "p50 {:.1}ms  p95 {:.1}ms  p99 {:.1}ms  max {:.1}ms",
        p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
    )
}

/// `connect: 3, 503 publish_timeout: 1`, or `none`.
fn error_list(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".to_owned();
    }
    errors
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(r: &Report) -> String {
    let mut rows = vec![
        ("target".to_owned(), r.target.clone()),
        (
            "sent / acked".to_owned(),
            format!("{} / {} (planned {})", r.sent, r.acked, r.planned),
        ),
        ("errors".to_owned(), error_list(&r.errors)),
        (
            "rate".to_owned(),
            format!(
                "{:.1} msg/s over {:.1}s",
                r.achieved_rate, r.elapsed_seconds
            ),
        ),
        ("request latency".to_owned(), ms(&r.request_latency)),
    ];
    if let Some(v) = &r.verified {
        rows.push((
            "stored".to_owned(),
            format!("{} (missing {})", v.stored, v.missing),
        ));
        rows.push(("end-to-end latency".to_owned(), ms(&v.end_to_end_latency)));
    }
    for t in &r.thresholds {
        rows.push((
            format!("threshold {}", t.name),
            format!(
                "{} {} (limit {})",
                if t.ok { "ok" } else { "FAILED" },
                t.actual,
                t.limit
            ),
        ));
    }
    rows.push((
        "result".to_owned(),
        if r.passed { "passed" } else { "FAILED" }.to_owned(),
    ));
    output::key_value_table(rows)
}

/// `publish --fleet FILE`: the same smoke test against every system, one row each.
mod fleet {
    use std::path::Path;

    use serde::Serialize;

    use super::{PublishArgs, Report, send_and_check};
    use crate::cli::{Context, Exit};
    use crate::config::Overrides;
    use crate::output;

    #[derive(Debug, Serialize)]
    struct Row {
        system: String,
        state: State,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        labels: std::collections::BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        report: Option<Report>,
    }

    type FleetReport = crate::fleet::Report<Row>;

    /// Best to worst.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        Passed,
        /// A threshold was not met.
        Failed,
        /// Could not run.
        Error,
    }

    impl crate::fleet::RowState for State {
        const SUMMARY: &'static [Self] = &[State::Passed, State::Failed, State::Error];
        fn name(self) -> &'static str {
            match self {
                State::Passed => "passed",
                State::Failed => "failed",
                State::Error => "error",
            }
        }
        fn verdict(self) -> crate::fleet::Verdict {
            match self {
                State::Passed => crate::fleet::Verdict::Success,
                State::Failed => crate::fleet::Verdict::Failure,
                State::Error => crate::fleet::Verdict::Error,
            }
        }
    }

    pub async fn run(ctx: &Context, args: &PublishArgs, file: &Path) -> anyhow::Result<Exit> {
        let systems = crate::fleet::load(file)?;
        let overrides = ctx.fleet_overrides(&Overrides::default());
        let overrides = &overrides;
        let rows = crate::fleet::each(
            &systems,
            args.fleet.fleet_concurrency,
            "smoke-testing",
            |system| async move {
                let outcome = match system.config(overrides) {
                    Ok(config) => {
                        let api = system.api_url(&config);
                        send_and_check(&config, args, &api, false)
                            .await
                            .map_err(|e| format!("{e:#}"))
                    }
                    Err(e) => Err(e),
                };
                let (state, error, report) = match outcome {
                    Ok(r) if r.passed => (State::Passed, None, Some(r)),
                    Ok(r) => (State::Failed, None, Some(r)),
                    Err(e) => (State::Error, Some(e), None),
                };
                Row {
                    system: system.name.clone(),
                    state,
                    error,
                    labels: system.labels.clone(),
                    report,
                }
            },
        )
        .await;
        let (report, verdict) = crate::fleet::report(rows, |r| r.state, |r| &r.system);
        output::print(ctx.global.output, &report, || table(&report))?;
        Ok(verdict.into())
    }

    fn table(report: &FleetReport) -> String {
        let mut b = tabled::builder::Builder::default();
        b.push_record([
            "SYSTEM",
            "RESULT",
            "ACKED",
            "STORED",
            "ERRORS",
            "REQUEST P95 MS",
            "E2E P99 MS",
            "FAILED CHECKS",
        ]);
        for row in &report.systems {
            let Some(r) = &row.report else {
                b.push_record([
                    row.system.clone(),
                    crate::fleet::RowState::name(row.state).to_owned(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    row.error.clone().unwrap_or_default(),
                ]);
                continue;
            };
            let errors = super::error_list(&r.errors);
            let failed: Vec<String> = r
                .thresholds
                .iter()
                .filter(|t| !t.ok)
                .map(|t| format!("{} {} (limit {})", t.name, t.actual, t.limit))
                .collect();
            b.push_record([
                row.system.clone(),
                crate::fleet::RowState::name(row.state).to_owned(),
                format!("{}/{}", r.acked, r.sent),
                r.verified
                    .as_ref()
                    .map(|v| format!("{}/{}", v.stored, r.acked))
                    .unwrap_or_else(|| "-".into()),
                errors,
                format!("{:.1}", r.request_latency.p95_ms),
                r.verified
                    .as_ref()
                    .map(|v| format!("{:.1}", v.end_to_end_latency.p99_ms))
                    .unwrap_or_else(|| "-".into()),
                failed.join("; "),
            ]);
        }
        let mut t = b.build();
        t.with(tabled::settings::Style::sharp()).with(
            tabled::settings::Modify::new(tabled::settings::object::Columns::new(7..8))
                .with(tabled::settings::Width::wrap(50).keep_words(true)),
        );
        format!("{t}\n{}\n", report.summary)
    }
}
