//! `latamctl migrate`: apply the versioned schema in `migrations/` to the configured store.

use clap::Args;
use serde::Serialize;

use super::{Context, Exit};
use crate::config::{Overrides, StoreKind, redact_url};
use crate::output;
use crate::store::postgres::{PostgresStore, known_migrations};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL (config: database.url; env DATABASE_URL too).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the PostgreSQL URL (a mounted secret) (config: database.url_file).
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct MigrateReport {
    store: StoreKind,
    target: String,
    applied_now: Vec<i64>,
    known: Vec<Migration>,
    citus: Option<bool>,
}

#[derive(Serialize)]
struct Migration {
    version: i64,
    description: String,
}

pub async fn run(ctx: &Context, args: MigrateArgs) -> anyhow::Result<Exit> {
    let mut o = Overrides::default();
    o.set_opt("database.url", args.database_url.clone())
        .set_opt(
            "database.url_file",
            args.database_url_file
                .as_ref()
                .map(|p| p.display().to_string()),
        );
    let (config, _) = ctx.load(&o)?;
    let report = match config.store {
        StoreKind::Postgres => {
            let store = PostgresStore::connect(&config.database, &config.aws).await?;
            let applied_now = store.migrate().await?;
            MigrateReport {
                store: config.store,
                target: config
                    .database
                    .url
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_default(),
                applied_now,
                known: known_migrations()
                    .into_iter()
                    .map(|(version, description)| Migration {
                        version,
                        description,
                    })
                    .collect(),
                citus: Some(store.is_citus().await?),
            }
        }
        StoreKind::Sqlite => {
            // Opening the store applies its migrations.
            crate::pipeline::open_store(&config, true).await?;
            MigrateReport {
                store: config.store,
                target: crate::pipeline::data_dir(&config)
                    .join(crate::store::sqlite::STORE_FILE)
                    .display()
                    .to_string(),
                applied_now: Vec::new(),
                known: Vec::new(),
                citus: None,
            }
        }
    };
    output::print(ctx.global.output, &report, || {
        let mut rows = vec![
            (
                "store".to_owned(),
                format!("{:?}", report.store).to_lowercase(),
            ),
            ("target".to_owned(), report.target.clone()),
            (
                "applied now".to_owned(),
                if report.applied_now.is_empty() {
                    "none (schema up to date)".to_owned()
                } else {
                    format!("{:?}", report.applied_now)
                },
            ),
        ];
        for m in &report.known {
            rows.push((format!("migration {}", m.version), m.description.clone()));
        }
        if let Some(citus) = report.citus {
            rows.push((
                "citus".to_owned(),
                if citus {
                    "yes: records distributed by transaction_id".to_owned()
                } else {
                    "no: plain PostgreSQL tables".to_owned()
                },
            ));
        }
        output::key_value_table(rows)
    })?;
    Ok(Exit::Success)
}
