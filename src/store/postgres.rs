//! PostgreSQL store (RDS, or Citus when the extension is installed).
//!
//! A pooled connection per query; each batch is one multi-row
//! `INSERT .. ON CONFLICT (transaction_id) DO NOTHING` in one transaction. Schema changes are
//! the versioned files in `migrations/postgres`, applied by `latamctl migrate` or at `serve`
//! start. On Citus, migration 0002 distributes `records` by `transaction_id`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::record::StoredRecord;

use super::{
    Error, KeyReservation, Migration, MigrationReport, Record, RecordCount, Result, Store,
    StoreStats, timed,
};
use crate::config::{AwsConfig, DatabaseConfig, redact_url};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows per INSERT statement (6 binds each; PostgreSQL allows 65535 binds).
const ROWS_PER_STATEMENT: usize = 1000;

/// Most rows `status` counts; past it the planner's estimate (or "at least") is reported.
/// A bounded count of this many rows takes milliseconds; a full `count(*)` of a big table
/// (or of every shard of a Citus one) takes minutes and loads the database.
pub const COUNT_BOUND: u64 = 100_000;

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    query_timeout: Duration,
    /// False while a migration is pending: readiness stays false meanwhile.
    migrated: Arc<AtomicBool>,
    /// The database, credentials redacted (`Store::target`).
    target: String,
    /// Whether `records` is a Citus distributed table; read once, on first need.
    distributed: Arc<std::sync::OnceLock<bool>>,
}

impl PostgresStore {
    /// Builds the pool. Connections are opened on first use, so a database that is down at
    /// start is reported by readiness instead of killing the process.
    ///
    /// The connection is `database.url`, or `database.host`/`name`/`user` with the password
    /// from `database.password` or the Secrets Manager secret `database.secret_arn` (the
    /// RDS-managed master secret, `{"username", "password"}`), read once at start.
    pub async fn connect(config: &DatabaseConfig, aws: &AwsConfig) -> Result<Self> {
        let options = connect_options(config, aws).await?;
        let node_connection_timeout = super::citus::node_connection_timeout(config.query_timeout);
        let pool = PgPoolOptions::new()
            .after_connect(move |conn, _meta| {
                let value = node_connection_timeout.clone();
                Box::pin(async move {
                    super::citus::set_node_connection_timeout(conn, &value).await;
                    Ok(())
                })
            })
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.query_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options.application_name("latamctl"));
        if let (None, None, Some(arn)) = (&config.url, &config.password, &config.secret_arn) {
            tokio::spawn(refresh_credentials(
                pool.clone(),
                config.clone(),
                aws.clone(),
                arn.clone(),
            ));
        }
        Ok(Self {
            pool,
            query_timeout: config.query_timeout,
            migrated: Arc::new(AtomicBool::new(true)),
            target: describe(config),
            distributed: Arc::default(),
        })
    }

    /// Readiness fails until [`migrate`](Self::migrate) succeeds (a migration is pending
    /// in the background).
    pub fn migration_pending(&self) {
        self.migrated.store(false, Ordering::SeqCst);
    }

    /// Whether the database answers at all (no schema needed).
    pub async fn ping(&self) -> Result<()> {
        timed("ping", self.query_timeout, async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Applies pending migrations; returns the versions applied now.
    pub async fn apply_migrations(&self) -> Result<Vec<i64>> {
        // A connection failure (TLS, auth, DNS) reported as itself, not as a failed migration.
        self.ping().await?;
        let before = applied_versions(&self.pool).await.unwrap_or_default();
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| Error::Migration(e.to_string()))?;
        let after = applied_versions(&self.pool).await?;
        self.migrated.store(true, Ordering::SeqCst);
        Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
    }

    /// Rows in `records` without a full scan: the planner's estimate when it has one that
    /// is past [`COUNT_BOUND`], a count bounded there otherwise. On Citus the coordinator's
    /// `records` is an empty shell (its `reltuples` stays -1 or 0 after ANALYZE), so the
    /// estimate is the sum of the shards' own statistics, read on the workers through
    /// `run_command_on_shards`; shards never analyzed leave the figure unknown.
    pub async fn record_count(&self) -> Result<RecordCount> {
        if self.is_citus().await? {
            return super::citus::record_count(&self.pool).await;
        }
        let estimate: f64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT reltuples::float8 FROM pg_class WHERE oid = 'records'::regclass), -1)",
        )
        .fetch_one(&self.pool)
        .await?;
        if estimate >= COUNT_BOUND as f64 {
            return Ok(RecordCount::Estimate {
                rows: estimate as u64,
                source: "pg_class.reltuples",
            });
        }
        let bound = i64::try_from(COUNT_BOUND).unwrap_or(i64::MAX);
        let counted: i64 =
            sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM records LIMIT $1) AS bounded")
                .bind(bound + 1)
                .fetch_one(&self.pool)
                .await?;
        let counted = u64::try_from(counted).unwrap_or(0);
        Ok(if counted > COUNT_BOUND {
            RecordCount::AtLeast { rows: COUNT_BOUND }
        } else {
            RecordCount::Exact { rows: counted }
        })
    }

    /// Whether `records` is distributed by Citus. Cached once known after the migrations
    /// (which distribute it); an error is not cached. Plain PostgreSQL has no
    /// `pg_dist_partition`, so the extension is asked about first.
    async fn is_distributed(&self) -> bool {
        if let Some(known) = self.distributed.get() {
            return *known;
        }
        let read = timed("is_distributed", self.query_timeout, async {
            if !self.is_citus().await? {
                return Ok(false);
            }
            Ok(sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition
                                WHERE logicalrelid = to_regclass('records'))",
            )
            .fetch_one(&self.pool)
            .await?)
        })
        .await;
        match read {
            Ok(distributed) => {
                if self.migrated.load(Ordering::SeqCst) {
                    let _ = self.distributed.set(distributed);
                }
                distributed
            }
            Err(_) => false,
        }
    }

    /// Whether the `citus` extension is installed (records are then distributed).
    pub async fn is_citus(&self) -> Result<bool> {
        Ok(sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// The configured database without its credentials: the URL redacted, or `host:port/name`.
fn describe(config: &DatabaseConfig) -> String {
    match (&config.url, &config.host) {
        (Some(url), _) => redact_url(url),
        (None, Some(host)) => format!(
            "{host}:{}/{}",
            config.port,
            config.name.as_deref().unwrap_or_default()
        ),
        (None, None) => String::new(),
    }
}

/// The credentials in an RDS-managed secret.
#[derive(serde::Deserialize)]
struct SecretCredentials {
    username: String,
    password: String,
}

async fn connect_options(config: &DatabaseConfig, aws: &AwsConfig) -> Result<PgConnectOptions> {
    if let Some(url) = config.url.as_deref() {
        return PgConnectOptions::from_str(url).map_err(|e| {
            Error::Config(format!(
                "database.url {} is not a valid PostgreSQL URL: {e}",
                redact_url(url)
            ))
        });
    }
    let secret = match (&config.password, &config.secret_arn) {
        (None, Some(arn)) => Some(read_secret(aws, arn).await?),
        _ => None,
    };
    options_from_parts(config, secret.as_ref())
}

/// Options from `database.host`/`port`/`name`/`user`/`password`, the secret's credentials
/// filling what the config leaves out.
fn options_from_parts(
    config: &DatabaseConfig,
    secret: Option<&SecretCredentials>,
) -> Result<PgConnectOptions> {
    let Some(host) = config.host.as_deref() else {
        return Err(Error::Config(
            "store = \"postgres\" needs `database.url`: set LATAMCTL_DATABASE_URL or \
             DATABASE_URL (postgres://user:password@host:5432/db), or [database] url in \
             latamctl.toml — or database.host with database.secret_arn"
                .into(),
        ));
    };
    let ssl_mode = PgSslMode::from_str(&config.ssl_mode).map_err(|_| {
        Error::Config(format!(
            "database.ssl_mode {:?} is not one of disable, allow, prefer, require, verify-ca, verify-full",
            config.ssl_mode
        ))
    })?;
    let mut options = PgConnectOptions::new()
        .host(host)
        .port(config.port)
        .ssl_mode(ssl_mode)
        .application_name("latamctl");
    if let Some(name) = &config.name {
        options = options.database(name);
    }
    let user = config
        .user
        .clone()
        .or_else(|| secret.map(|s| s.username.clone()));
    let password = config
        .password
        .clone()
        .or_else(|| secret.map(|s| s.password.clone()));
    if let Some(user) = &user {
        options = options.username(user);
    }
    if let Some(password) = &password {
        options = options.password(password);
    }
    Ok(options)
}

/// Re-reads the Secrets Manager secret every `database.secret_refresh` and gives the pool
/// the new credentials when they changed (RDS rotates its managed secret): connections
/// opened after a rotation use the new password without a restart.
async fn refresh_credentials(pool: PgPool, config: DatabaseConfig, aws: AwsConfig, arn: String) {
    let mut current: Option<(String, String)> = None;
    loop {
        tokio::time::sleep(config.secret_refresh).await;
        if pool.is_closed() {
            return;
        }
        let secret = match read_secret(&aws, &arn).await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(message = "Failed to re-read the database secret; keeping the current credentials.", %error);
                continue;
            }
        };
        let fresh = (secret.username.clone(), secret.password.clone());
        if current.as_ref() == Some(&fresh) {
            continue;
        }
        match options_from_parts(&config, Some(&secret)) {
            Ok(options) => {
                pool.set_connect_options(options);
                if current.is_some() {
                    tracing::info!(
                        message = "Database credentials changed in Secrets Manager; new connections use them."
                    );
                }
                current = Some(fresh);
            }
            Err(error) => {
                tracing::warn!(message = "Cannot use the refreshed database secret.", %error)
            }
        }
    }
}

async fn read_secret(aws: &AwsConfig, arn: &str) -> Result<SecretCredentials> {
    let sdk = crate::aws::load_sdk_config(aws)
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot read database.secret_arn {arn}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ))
        })?;
    let text = out
        .secret_string
        .ok_or_else(|| Error::Config(format!("secret {arn} has no SecretString")))?;
    serde_json::from_str(&text).map_err(|_| {
        // Never echo the secret's text.
        Error::Config(format!(
            "secret {arn} is not JSON with \"username\" and \"password\" (the RDS-managed format)"
        ))
    })
}

async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

#[async_trait]
impl Store for PostgresStore {
    fn target(&self) -> String {
        format!("postgres {}", self.target)
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        let applied_now = self.apply_migrations().await?;
        Ok(MigrationReport {
            applied_now,
            known: Migration::list(&MIGRATOR),
            citus: Some(self.is_citus().await?),
        })
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        Some((self.pool.size().saturating_sub(idle), idle))
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn insert_batch(&self, records: &[Record]) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let result = timed("insert_batch", self.query_timeout, async {
            let mut tx = self.pool.begin().await?;
            let mut inserted = 0;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO records (transaction_id, topic, message, attributes, received_at) ",
                );
                qb.push_values(chunk, |mut row, r| {
                    row.push_bind(r.transaction_id)
                        .push_bind(&r.topic)
                        .push_bind(&r.message)
                        .push_bind(Json(&r.attributes))
                        .push_bind(r.received_at);
                });
                qb.push(" ON CONFLICT (transaction_id) DO NOTHING");
                inserted += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(inserted)
        })
        .await;
        match result {
            // On Citus a worker node that hangs (frozen, a network partition that drops
            // packets) holds the write past the timeout without any error naming it: the
            // worker splits the batch by node to find which.
            Err(Error::Timeout { operation, timeout }) if self.is_distributed().await => {
                Err(Error::NodeUnavailable(format!(
                    "database query `{operation}` did not finish within {timeout:?} on a \
                     distributed store (a worker node may hang)"
                )))
            }
            other => other,
        }
    }

    async fn get(&self, transaction_id: Uuid) -> Result<Option<StoredRecord>> {
        timed("get", self.query_timeout, async {
            let row = sqlx::query(
                "SELECT transaction_id, topic, message, attributes, received_at, stored_at
                 FROM records WHERE transaction_id = $1",
            )
            .bind(transaction_id)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let Json(attributes): Json<BTreeMap<String, String>> = row.try_get("attributes")?;
            Ok(Some(StoredRecord {
                transaction_id: row.try_get("transaction_id")?,
                topic: row.try_get("topic")?,
                message: row.try_get("message")?,
                attributes,
                received_at: row.try_get("received_at")?,
                stored_at: row.try_get("stored_at")?,
            }))
        })
        .await
    }

    async fn reserve_key(
        &self,
        key: &str,
        request_hash: &str,
        candidate: Uuid,
    ) -> Result<KeyReservation> {
        timed("reserve_key", self.query_timeout, async {
            let created = sqlx::query(
                "INSERT INTO idempotency_keys (key, request_hash, transaction_id)
                 VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(request_hash)
            .bind(candidate)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            let row = sqlx::query(
                "SELECT request_hash, transaction_id, published, created_at FROM idempotency_keys WHERE key = $1",
            )
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
            Ok(KeyReservation {
                transaction_id: row.try_get("transaction_id")?,
                request_hash: row.try_get("request_hash")?,
                published: row.try_get("published")?,
                created,
                reserved_at: row.try_get("created_at")?,
            })
        })
        .await
    }

    async fn mark_published(&self, key: &str) -> Result<()> {
        timed("mark_published", self.query_timeout, async {
            sqlx::query("UPDATE idempotency_keys SET published = true WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn release_key(&self, key: &str) -> Result<()> {
        timed("release_key", self.query_timeout, async {
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND NOT published")
                .bind(key)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn purge_keys(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        timed("purge_keys", self.query_timeout, async {
            Ok(
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected(),
            )
        })
        .await
    }

    async fn ready(&self) -> Result<()> {
        if !self.migrated.load(Ordering::SeqCst) {
            return Err(Error::NotMigrated);
        }
        timed("ready", self.query_timeout, async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    async fn probe_write(&self) -> Result<()> {
        if !self.migrated.load(Ordering::SeqCst) {
            return Err(Error::NotMigrated);
        }
        timed("probe_write", self.query_timeout, async {
            let mut tx = self.pool.begin().await?;
            // On Citus this row routes to the shard of the nil id: the probe proves the
            // coordinator takes writes and that one shard does; `probe_write_nodes` covers
            // every worker node.
            sqlx::query(
                "INSERT INTO records (transaction_id, topic, message, attributes, received_at)
                 VALUES ($1, 'latamctl-write-probe', 'write probe', '{}', now())
                 ON CONFLICT (transaction_id) DO NOTHING",
            )
            .bind(super::PROBE_TRANSACTION_ID)
            .execute(&mut *tx)
            .await?;
            tx.rollback().await?;
            Ok(())
        })
        .await
    }

    async fn probe_write_nodes(&self) -> Option<Vec<(String, Result<()>)>> {
        if !self.is_distributed().await {
            return None;
        }
        super::citus::probe_write_nodes(&self.pool, self.query_timeout).await
    }

    async fn placement(&self, ids: &[Uuid]) -> Result<Option<Vec<String>>> {
        if ids.is_empty() || !self.is_distributed().await {
            return Ok(None);
        }
        super::citus::placement(&self.pool, self.query_timeout, ids)
            .await
            .map(Some)
    }

    async fn stats(&self) -> Result<StoreStats> {
        timed("stats", self.query_timeout, async {
            let records = self.record_count().await?;
            let newest: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT stored_at FROM records ORDER BY transaction_id DESC LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(StoreStats {
                records,
                newest_stored_at: newest,
            })
        })
        .await
    }
}
