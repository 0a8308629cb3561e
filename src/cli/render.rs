//! `latamctl render`: generated artefacts, one subcommand per family (alerts, dashboards,
//! Helm values, Terraform variables, Argo CD Application). Each writes to stdout, or
//! atomically to `--out FILE`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::{Context, Exit};
use crate::config::Overrides;
use crate::deploy;
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
    /// Synthetic tests (readiness, POST then GET, the certificate) and log monitors from the
    /// SLO spec's `synthetics` section.
    Synthetics(SyntheticsArgs),
    /// Helm values for helm-charts/latamctl from the config, Terraform outputs and templates/helm/<env>.yaml.
    Helm(HelmArgs),
    /// Terraform variables (.tfvars.json) for terraform/envs/<env> from the config.
    TerraformVars(DeployArgs),
    /// An Argo CD Application for the chart with deploy/gitops/<env>/values.yaml.
    Argocd(ArgocdArgs),
    /// Values for Datadog's charts: the Agent and Cluster Agent (datadog/datadog) or the
    /// synthetics private location worker (datadog/synthetics-private-location).
    DatadogAgent(DatadogAgentArgs),
}

#[derive(Debug, Args)]
pub struct DatadogAgentArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Which chart the values are for.
    #[arg(long, value_enum, default_value = "agent")]
    pub component: DatadogComponent,
    /// Datadog site.
    #[arg(long, default_value = "datadoghq.com")]
    pub site: String,
    /// Secret holding the API key (key `api-key`); the key itself is never rendered.
    #[arg(long, default_value = "datadog-api-key", value_name = "NAME")]
    pub api_key_secret: String,
    /// Secret holding the private location's configuration JSON (the chart's `configSecret`).
    #[arg(long, default_value = "datadog-private-location", value_name = "NAME")]
    pub private_location_secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatadogComponent {
    /// datadog/datadog: node Agent, Cluster Agent, logs, OTLP receiver.
    Agent,
    /// datadog/synthetics-private-location: runs the synthetic tests from inside.
    PrivateLocation,
}

/// Environment, overlays and output of the deployment renderers.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Target environment (selects templates/helm/<env>.yaml and deploy/gitops/<env>/).
    #[arg(long, default_value = "dev")]
    pub env: String,
    /// Read overlays from this directory instead of the built-in copies of templates/.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Write here instead of stdout (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HelmArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// `terraform output -json` of the environment: fills topic/queue URLs and IRSA role ARNs
    /// the config lacks.
    #[arg(long, value_name = "FILE")]
    pub terraform_outputs: Option<PathBuf>,
    /// Image repository.
    #[arg(long, value_name = "REPO")]
    pub image_repository: Option<String>,
    /// Image tag (CI: the git SHA).
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// IRSA role of the api ServiceAccount (default: Terraform output api_irsa_role_arn).
    #[arg(long, value_name = "ARN")]
    pub api_role_arn: Option<String>,
    /// IRSA role of the worker ServiceAccount (default: Terraform output worker_irsa_role_arn).
    #[arg(long, value_name = "ARN")]
    pub worker_role_arn: Option<String>,
    /// Existing Secret holding the database URL (key `url`).
    #[arg(long, value_name = "NAME")]
    pub database_secret: Option<String>,
    /// Existing Secret holding the API bearer token (key `token`).
    #[arg(long, value_name = "NAME")]
    pub api_token_secret: Option<String>,
}

#[derive(Debug, Args)]
pub struct ArgocdArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Git repository Argo CD syncs from.
    #[arg(long, default_value = "https://github.com/latam/latamctl.git")]
    pub repo_url: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    pub revision: String,
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
    /// Argo Rollouts AnalysisTemplate: the request alerts measured on a new ReplicaSet, so a
    /// release that breaks them is aborted.
    AnalysisTemplate,
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
    /// The fleet overview instead: one row per system with each SLO's budget left and burn
    /// rate, linking to the per-system dashboard.
    #[arg(long)]
    pub fleet: bool,
    #[command(flatten)]
    pub io: SpecAndOutput,
}

#[derive(Debug, Args)]
pub struct SyntheticsArgs {
    /// Target system.
    #[arg(long, value_enum, default_value_t = SyntheticsFormat::Datadog)]
    pub format: SyntheticsFormat,
    #[command(flatten)]
    pub io: SpecAndOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyntheticsFormat {
    /// Datadog synthetic tests and log monitors as Terraform JSON.
    Datadog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DashboardFormat {
    /// Grafana dashboard JSON (for the Grafana sidecar ConfigMap or an import).
    Grafana,
    /// Datadog dashboard JSON (API or "Import dashboard JSON").
    Datadog,
}

pub async fn run(ctx: &Context, args: RenderArgs) -> anyhow::Result<Exit> {
    let (out, text) = match args.what {
        RenderCommand::Alerts(a) => {
            let spec = SloSpec::load(a.io.slo.as_deref())?;
            let text = match a.format {
                AlertFormat::Prometheus => prometheus::rules_file(&spec),
                AlertFormat::PrometheusRule => prometheus::prometheus_rule(&spec),
                AlertFormat::AnalysisTemplate => crate::slo::rollouts::analysis_template(&spec),
                AlertFormat::Cloudwatch => cloudwatch::alarms(&spec)?,
                AlertFormat::Datadog => datadog::terraform(&spec)?,
            };
            (a.io.out, text)
        }
        RenderCommand::Dashboards(d) => {
            let spec = SloSpec::load(d.io.slo.as_deref())?;
            let text = match (d.format, d.fleet) {
                (DashboardFormat::Grafana, false) => dashboards::grafana(&spec)?,
                (DashboardFormat::Datadog, false) => dashboards::datadog(&spec)?,
                (DashboardFormat::Grafana, true) => dashboards::grafana_fleet(&spec)?,
                (DashboardFormat::Datadog, true) => dashboards::datadog_fleet(&spec)?,
            };
            (d.io.out, text)
        }
        RenderCommand::Synthetics(a) => {
            let spec = SloSpec::load(a.io.slo.as_deref())?;
            let text = match a.format {
                SyntheticsFormat::Datadog => datadog::synthetics::terraform(&spec)?,
            };
            (a.io.out, text)
        }
        RenderCommand::DatadogAgent(d) => {
            let (config, _) = ctx.load(&Overrides::default())?;
            let inputs = deploy::datadog::AgentInputs {
                env: d.deploy.env.clone(),
                site: d.site,
                api_key_secret: d.api_key_secret,
                private_location_secret: d.private_location_secret,
            };
            let (chart, values) = match d.component {
                DatadogComponent::Agent => (
                    "datadog/datadog",
                    deploy::datadog::agent_values(&config, &inputs)?,
                ),
                DatadogComponent::PrivateLocation => (
                    "datadog/synthetics-private-location",
                    deploy::datadog::private_location_values(&config, &inputs)?,
                ),
            };
            let header = format!(
                "Values for the {chart} Helm chart ({}), generated by `latamctl render datadog-agent`.\nSecrets are referenced by name, never included.",
                d.deploy.env
            );
            (d.deploy.out, deploy::to_yaml(&header, &values)?)
        }
        RenderCommand::Helm(h) => {
            let (config, _) = ctx.load(&Overrides::default())?;
            let inputs = deploy::HelmInputs {
                env: h.deploy.env.clone(),
                image_repository: h.image_repository,
                image_tag: h.image_tag,
                api_role_arn: h.api_role_arn,
                worker_role_arn: h.worker_role_arn,
                database_secret: h.database_secret,
                api_token_secret: h.api_token_secret,
                terraform: match &h.terraform_outputs {
                    Some(path) => deploy::TerraformOutputs::load(path)?,
                    None => deploy::TerraformOutputs::default(),
                },
                templates: deploy::Templates {
                    dir: h.deploy.templates.clone(),
                },
            };
            let values = deploy::helm_values(&config, &inputs)?;
            let header = format!(
                "Helm values for helm-charts/latamctl ({}), generated by `latamctl render helm`.\nSecrets are referenced by name (database.existingSecret), never included.",
                h.deploy.env
            );
            (h.deploy.out, deploy::to_yaml(&header, &values)?)
        }
        RenderCommand::TerraformVars(t) => {
            let (config, _) = ctx.load(&Overrides::default())?;
            let vars = deploy::terraform_vars(&config, &t.env)?;
            let mut text = serde_json::to_string_pretty(&vars)?;
            text.push('\n');
            (t.out, text)
        }
        RenderCommand::Argocd(a) => {
            let (config, _) = ctx.load(&Overrides::default())?;
            let app = deploy::argocd_application(
                &config,
                &a.deploy.env,
                &a.repo_url,
                &a.revision,
                &deploy::Templates {
                    dir: a.deploy.templates.clone(),
                },
            )?;
            let header = format!(
                "Argo CD Application for {} ({}), generated by `latamctl render argocd`.",
                config.name, a.deploy.env
            );
            (a.deploy.out, deploy::to_yaml(&header, &app)?)
        }
    };
    match out {
        Some(path) => write_atomically(&path, &text)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(Exit::Success)
}

/// [`crate::output::write_atomically`], then says so on stderr.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::output::write_atomically(path, text)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
