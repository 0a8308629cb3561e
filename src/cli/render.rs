//! `latamctl render`: generated artefacts, one subcommand per family (alerts, dashboards).
//! Each writes to stdout, or atomically to `--out FILE`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use super::{Context, Exit};
use crate::slo::{SloSpec, cloudwatch, dashboards, datadog, prometheus};

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(subcommand)]
    pub what: RenderCommand,
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// Alerting and recording rules, SLOs and monitors from the SLO spec.
    Alerts(AlertsArgs),
    /// Dashboards (SLIs, error budget, RED, queue, database) from the SLO spec.
    Dashboards(DashboardsArgs),
}

/// Where the spec comes from and where the result goes.
#[derive(Debug, Args)]
pub struct SpecAndOutput {
    /// SLO spec (default: the built-in copy of examples/slo.yaml).
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// Write here instead of stdout (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Target system.
    #[arg(long, value_enum, default_value_t = AlertFormat::Prometheus)]
    pub format: AlertFormat,
    #[command(flatten)]
    pub io: SpecAndOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertFormat {
    /// Plain Prometheus rules file (recording rules, burn-rate and threshold alerts).
    Prometheus,
    /// The same groups as a Prometheus Operator PrometheusRule manifest.
    PrometheusRule,
    /// CloudWatch PutMetricAlarm inputs for the AWS-side metrics (ALB, Container Insights, SQS, RDS).
    Cloudwatch,
    /// Datadog SLOs and monitors as Terraform JSON.
    Datadog,
}

#[derive(Debug, Args)]
pub struct DashboardsArgs {
    /// Target system.
    #[arg(long, value_enum, default_value_t = DashboardFormat::Grafana)]
    pub format: DashboardFormat,
    #[command(flatten)]
    pub io: SpecAndOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DashboardFormat {
    /// Grafana dashboard JSON (for the Grafana sidecar ConfigMap or an import).
    Grafana,
    /// Datadog dashboard JSON (API or "Import dashboard JSON").
    Datadog,
}

pub async fn run(_ctx: &Context, args: RenderArgs) -> anyhow::Result<Exit> {
    let (io, text) = match args.what {
        RenderCommand::Alerts(a) => {
            let spec = SloSpec::load(a.io.slo.as_deref())?;
            let text = match a.format {
                AlertFormat::Prometheus => prometheus::rules_file(&spec),
                AlertFormat::PrometheusRule => prometheus::prometheus_rule(&spec),
                AlertFormat::Cloudwatch => cloudwatch::alarms(&spec)?,
                AlertFormat::Datadog => datadog::terraform(&spec)?,
            };
            (a.io, text)
        }
        RenderCommand::Dashboards(d) => {
            let spec = SloSpec::load(d.io.slo.as_deref())?;
            let text = match d.format {
                DashboardFormat::Grafana => dashboards::grafana(&spec)?,
                DashboardFormat::Datadog => dashboards::datadog(&spec)?,
            };
            (d.io, text)
        }
    };
    match io.out {
        Some(path) => write_atomically(&path, &text)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(Exit::Success)
}

/// Writes `text` to a temporary file next to `path`, then renames it over `path`: readers
/// (and a concurrent `git diff`) never see half a file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}", path.display())
    })?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
