//! `latamctl migrate`: apply the versioned schema in `migrations/` to the configured store
//! (`Store::migrate`; SQLite migrates as it opens, and says what that applied).

use clap::Args;
use serde::Serialize;

use super::{Context, Exit};
use crate::config::{Overrides, StoreKind};
use crate::output;
use crate::store::MigrationReport;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: super::DatabaseUrlArgs,
}

#[derive(Serialize)]
struct MigrateReport {
    store: StoreKind,
    target: String,
    #[serde(flatten)]
    migrations: MigrationReport,
}

pub async fn run(ctx: &Context, args: MigrateArgs) -> anyhow::Result<Exit> {
    let mut o = Overrides::default();
    args.database.apply(&mut o);
    let (config, _) = ctx.load(&o)?;
    // Opened without migrating, so the report below is this command's own.
    let store = crate::compose::open_store(&config, false, false).await?;
    let report = MigrateReport {
        store: config.store,
        target: store.target(),
        migrations: store.migrate().await?,
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
                if report.migrations.applied_now.is_empty() {
                    "none (schema up to date)".to_owned()
                } else {
                    format!("{:?}", report.migrations.applied_now)
                },
            ),
        ];
        for m in &report.migrations.known {
            rows.push((format!("migration {}", m.version), m.description.clone()));
        }
        if let Some(citus) = report.migrations.citus {
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
