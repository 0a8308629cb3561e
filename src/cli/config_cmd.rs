//! `latamctl config show`: the effective merged configuration, secrets redacted.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Context, Exit};
use crate::config::{Overrides, flatten};
use crate::output::{self, OutputFormat};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults < file < env < flags); secrets redacted.
    /// `-o table` lists every key with its environment variable.
    Show,
}

#[derive(Serialize)]
struct Shown {
    config: serde_json::Value,
    file: Option<String>,
    env: Vec<String>,
    /// Where each secret came from, never its value.
    secrets: std::collections::BTreeMap<String, String>,
    /// Settings derived from others because no layer set them, with the reason.
    inferred: Vec<String>,
}

pub async fn run(ctx: &Context, args: ConfigArgs) -> anyhow::Result<Exit> {
    match args.command {
        ConfigCommand::Show => {
            let (config, sources) = ctx.load(&Overrides::default())?;
            let value = config.redacted();
            if ctx.global.output == OutputFormat::Table {
                let rows = flatten(&value).into_iter().map(|(k, v)| {
                    let path: Vec<String> = k.split('.').map(str::to_owned).collect();
                    (format!("{k}  ({})", crate::config::env_name(&path)), v)
                });
                let mut text = output::key_value_table(rows);
                text.push_str(&format!(
                    "\nfile: {}\nenv:  {}\n",
                    sources
                        .file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "none".into()),
                    if sources.env.is_empty() {
                        "none".to_owned()
                    } else {
                        sources.env.join(", ")
                    }
                ));
                text.push_str("secrets (where from; values never shown):\n");
                for (key, source) in &sources.secrets {
                    text.push_str(&format!("  {key}: {source}\n"));
                }
                for note in &sources.inferred {
                    text.push_str(&format!("inferred: {note}\n"));
                }
                print!("{text}");
            } else {
                let shown = Shown {
                    config: value,
                    file: sources.file.map(|p| p.display().to_string()),
                    env: sources.env,
                    secrets: sources.secrets,
                    inferred: sources.inferred,
                };
                output::print(ctx.global.output, &shown, String::new)?;
            }
            Ok(Exit::Success)
        }
    }
}
