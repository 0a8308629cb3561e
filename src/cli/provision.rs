//! `latamctl provision`: create/update the pipeline's AWS resources (idempotent), plan them
//! with `--dry-run`, or delete them with `--destroy`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{Context, Exit};
use crate::cloud::CloudClients;
use crate::cloud::plan::Plan;
use crate::cloud::{destroy, provision, write_config};
use crate::config::Overrides;
use crate::output::{self, OutputFormat};

#[derive(Debug, Args)]
#[command(mut_arg("fleet", |a| a.requires("dry_run").conflicts_with_all(["write_config", "destroy"])))]
#[command(mut_arg("fleet_concurrency", |a| a.alias("concurrency")))]
pub struct ProvisionArgs {
    /// Print the plan and change nothing; exit 1 when something would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the created ARNs/URLs into this config file's [aws] table (other keys kept).
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
    /// Delete what provision created (asks for confirmation unless --yes).
    #[arg(long)]
    pub destroy: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// AWS region (config: aws.region).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// With --dry-run, --fleet FILE: the drift of every system of a fleet file (each with its
    /// own config), one row each, drifted first; exit 1 when any drifts, 2 when one cannot
    /// be read.
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    dry_run: bool,
    destroy: bool,
}

pub async fn run(ctx: &Context, args: ProvisionArgs) -> anyhow::Result<Exit> {
    let mut o = Overrides::default();
    o.set_opt("aws.region", args.aws_region.clone());
    if let Some(file) = &args.fleet.fleet {
        // Logging as configured here; each system's own config is read by the fleet.
        let _ = ctx.load(&Overrides::default());
        return fleet::run(ctx, &args, &ctx.fleet_overrides(&o), file).await;
    }
    let (config, _) = ctx.load(&o)?;
    let clients = CloudClients::from_config(&config).await?;

    if args.destroy && !args.dry_run && !args.yes {
        confirm_destroy(&config)?;
    }
    let spinner = spinner(if args.dry_run {
        "reading AWS resources"
    } else if args.destroy {
        "deleting AWS resources"
    } else {
        "provisioning AWS resources"
    });
    let plan = if args.destroy {
        destroy::destroy(&clients, &config, !args.dry_run).await
    } else {
        provision::provision(&clients, &config, !args.dry_run).await
    };
    spinner.finish_and_clear();
    let plan = plan?;

    if let (Some(path), false, false) = (&args.write_config, args.dry_run, args.destroy) {
        write_config::write_config(path, &plan.outputs, config.aws.endpoint_url.as_deref())?;
        eprintln!(
            "wrote [aws] topic_arn, queue_url, dlq_url to {}",
            path.display()
        );
    }

    let report = Report {
        plan: &plan,
        dry_run: args.dry_run,
        destroy: args.destroy,
    };
    output::print(ctx.global.output, &report, || table(&plan))?;
    if ctx.global.output == OutputFormat::Table {
        eprintln!("{}", summary(&plan, args.dry_run));
    }
    Ok(
        if plan.has_missing() || (args.dry_run && plan.has_changes()) {
            Exit::Failure
        } else {
            Exit::Success
        },
    )
}

fn confirm_destroy(config: &crate::config::Config) -> anyhow::Result<()> {
    let names = crate::cloud::Names::from_config(config);
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "--destroy deletes {}, {} and {} with their messages: confirm with --yes (stdin is not a terminal)",
            names.topic,
            names.queue,
            names.dlq
        );
    }
    eprint!(
        "Delete SNS topic {}, SQS queues {} and {} (with their messages) and the alarms? Type 'yes': ",
        names.topic, names.queue, names.dlq
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("not confirmed; nothing deleted");
    }
    Ok(())
}

fn spinner(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn table(plan: &Plan) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record(["RESOURCE", "NAME", "ACTION", "DETAIL"]);
    for c in &plan.changes {
        b.push_record([
            c.resource.to_owned(),
            c.name.clone(),
            serde_json::to_value(c.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            c.detail.clone(),
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::sharp());
    let mut out = t.to_string();
    let o = &plan.outputs;
    if o.topic_arn.is_some() || o.queue_url.is_some() {
        out.push_str("\n\n");
        out.push_str(&output::key_value_table([
            ("region", o.region.clone()),
            ("topic_arn", o.topic_arn.clone().unwrap_or_default()),
            ("queue_url", o.queue_url.clone().unwrap_or_default()),
            ("dlq_url", o.dlq_url.clone().unwrap_or_default()),
            ("sns_dlq_url", o.sns_dlq_url.clone().unwrap_or_default()),
        ]));
    }
    out
}

fn summary(plan: &Plan, dry_run: bool) -> String {
    let count = |a| plan.changes.iter().filter(|c| c.action == a).count();
    use crate::cloud::plan::Action::*;
    let verb = if dry_run { "would be " } else { "" };
    format!(
        "{} {verb}created, {} {verb}updated, {} {verb}deleted, {} unchanged{}",
        count(Create),
        count(Update),
        count(Delete),
        count(Unchanged),
        if plan.has_missing() {
            "; a checked resource is missing (exit 1)"
        } else {
            ""
        }
    )
}

/// `provision --fleet FILE --dry-run`: every system's plan, read concurrently, changing
/// nothing.
mod fleet {
    use std::path::Path;

    use serde::Serialize;

    use super::{ProvisionArgs, summary};
    use crate::cli::{Context, Exit};
    use crate::cloud::CloudClients;
    use crate::cloud::plan::{Change, Plan};
    use crate::config::Overrides;
    use crate::output;

    #[derive(Debug, Serialize)]
    struct Row {
        system: String,
        state: State,
        summary: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The changes the plan would make (unchanged resources left out).
        changes: Vec<Change>,
    }

    type FleetReport = crate::fleet::Report<Row>;

    /// Best to worst.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        InSync,
        /// Something would change.
        Drift,
        /// A checked resource is not there.
        Missing,
        /// AWS could not be read.
        Error,
    }

    impl crate::fleet::RowState for State {
        const SUMMARY: &'static [Self] =
            &[State::InSync, State::Drift, State::Missing, State::Error];
        fn name(self) -> &'static str {
            match self {
                State::InSync => "in_sync",
                State::Drift => "drift",
                State::Missing => "missing",
                State::Error => "error",
            }
        }
        fn verdict(self) -> crate::fleet::Verdict {
            match self {
                State::InSync => crate::fleet::Verdict::Success,
                State::Drift | State::Missing => crate::fleet::Verdict::Failure,
                State::Error => crate::fleet::Verdict::Error,
            }
        }
    }

    async fn plan(system: &crate::fleet::System, overrides: &Overrides) -> Result<Plan, String> {
        let config = system.config(overrides)?;
        let clients = CloudClients::from_config(&config)
            .await
            .map_err(|e| format!("{e:#}"))?;
        crate::cloud::provision::provision(&clients, &config, false)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn run(
        ctx: &Context,
        args: &ProvisionArgs,
        overrides: &Overrides,
        file: &Path,
    ) -> anyhow::Result<Exit> {
        let systems = crate::fleet::load(file)?;
        let rows = crate::fleet::each(
            &systems,
            args.fleet.fleet_concurrency,
            "reading",
            |system| async move {
                match plan(&system, overrides).await {
                    Ok(plan) => Row {
                        system: system.name.clone(),
                        state: if plan.has_missing() {
                            State::Missing
                        } else if plan.has_changes() {
                            State::Drift
                        } else {
                            State::InSync
                        },
                        summary: summary(&plan, true),
                        error: None,
                        changes: plan
                            .changes
                            .into_iter()
                            .filter(|c| {
                                c.action.is_change()
                                    || c.action == crate::cloud::plan::Action::Missing
                            })
                            .collect(),
                    },
                    Err(e) => Row {
                        system: system.name.clone(),
                        state: State::Error,
                        summary: String::new(),
                        error: Some(e),
                        changes: Vec::new(),
                    },
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
        b.push_record(["SYSTEM", "STATE", "CHANGES", "DETAIL"]);
        for r in &report.systems {
            let detail = match &r.error {
                Some(e) => e.clone(),
                None => r
                    .changes
                    .iter()
                    .map(|c| {
                        let action = serde_json::to_value(c.action)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        format!("{action} {} {}", c.resource, c.name)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            b.push_record([
                r.system.clone(),
                crate::fleet::RowState::name(r.state).to_owned(),
                r.summary.clone(),
                detail,
            ]);
        }
        let mut t = b.build();
        t.with(tabled::settings::Style::sharp()).with(
            tabled::settings::Modify::new(tabled::settings::object::Columns::new(3..4))
                .with(tabled::settings::Width::wrap(60).keep_words(true)),
        );
        format!("{t}\n{}\n", report.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::plan::{Action, Change, Outputs};

    fn plan(applied: bool) -> Plan {
        let change = |resource, name: &str, action, detail: &str| Change {
            resource,
            name: name.to_owned(),
            action,
            detail: detail.to_owned(),
            desired: Default::default(),
        };
        Plan {
            applied,
            changes: vec![
                change(
                    "sns topic",
                    "latam-dev-ingest",
                    Action::Unchanged,
                    "arn:aws:sns:us-east-1:123456789012:latam-dev-ingest",
                ),
                change(
                    "sqs dlq",
                    "latam-dev-ingest-dlq",
                    Action::Create,
                    "dead-letter queue; (known after apply)",
                ),
                change(
                    "sqs queue",
                    "latam-dev-ingest",
                    Action::Update,
                    "RedrivePolicy: https://sqs.us-east-1.amazonaws.com/123456789012/latam-dev-ingest",
                ),
                change(
                    "rds instance",
                    "latam-dev-db",
                    Action::Missing,
                    "not found: apply terraform/ first",
                ),
            ],
            outputs: Outputs {
                region: "us-east-1".into(),
                topic_arn: Some("arn:aws:sns:us-east-1:123456789012:latam-dev-ingest".into()),
                queue_url: Some(
                    "https://sqs.us-east-1.amazonaws.com/123456789012/latam-dev-ingest".into(),
                ),
                dlq_url: None,
                sns_dlq_url: None,
            },
        }
    }

    #[test]
    fn plan_table_snapshot() {
        let p = plan(false);
        insta::assert_snapshot!(table(&p));
        assert_eq!(
            summary(&p, true),
            "1 would be created, 1 would be updated, 0 would be deleted, 1 unchanged; a checked resource is missing (exit 1)"
        );
    }

    #[test]
    fn plan_json_snapshot() {
        let p = plan(true);
        insta::assert_json_snapshot!(Report {
            plan: &p,
            dry_run: false,
            destroy: false
        });
    }
}
