//! Citus: which worker node holds a row, and a write probe per node. These read the
//! coordinator's metadata (`pg_dist_placement`, `pg_dist_node`,
//! `get_shard_id_for_distribution_column`), which answers while a worker node is down.
//! There is no Citus in CI here: `tests/it/citus_catalog.rs` runs these queries on real
//! PostgreSQL against a stand-in of the catalog with Citus's column names and types
//! (`pg_dist_node`, `pg_dist_placement`, `get_shard_id_for_distribution_column`); what a
//! real coordinator answers is verified only on a real cluster (docs/operating.md).

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{RecordCount, Result, timed};

/// One write probe per Citus worker node, inserted and rolled back, by `host:port`.
pub async fn probe_write_nodes(
    pool: &PgPool,
    timeout: Duration,
) -> Option<Vec<(String, Result<()>)>> {
    // One probe id per worker node: the first of a fixed series of ids whose shard is
    // placed there (the coordinator computes shard ids; no worker is contacted).
    let probes: Vec<(String, Uuid)> = timed("probe_nodes", timeout, async {
        Ok(sqlx::query_as(
            "SELECT DISTINCT ON (n.nodename, n.nodeport)
                    n.nodename || ':' || n.nodeport, g.id
             FROM (SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid AS id
                   FROM generate_series(1, 4096) AS i) AS g
             JOIN pg_dist_placement p
               ON p.shardid = get_shard_id_for_distribution_column('records', g.id)
                  AND p.shardstate = 1
             JOIN pg_dist_node n
               ON n.groupid = p.groupid AND n.noderole = 'primary' AND n.isactive
             ORDER BY n.nodename, n.nodeport, g.id",
        )
        .fetch_all(pool)
        .await?)
    })
    .await
    .ok()?;
    let mut out = Vec::with_capacity(probes.len());
    for (node, id) in probes {
        let result = timed("probe_write", timeout, async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO records (transaction_id, topic, message, attributes, received_at)
                 VALUES ($1, 'latamctl-write-probe', 'write probe', '{}', now())
                 ON CONFLICT (transaction_id) DO NOTHING",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.rollback().await?;
            Ok(())
        })
        .await;
        out.push((node, result));
    }
    // A node disabled in the metadata takes no writes and no probe reaches it: say so.
    if let Ok(inactive) = inactive_nodes(pool, timeout).await {
        for node in inactive {
            out.push((
                node,
                Err(super::Error::NodeUnavailable(
                    "marked inactive in pg_dist_node (citus_disable_node): its shards take no \
                     writes; citus_activate_node brings it back"
                        .to_owned(),
                )),
            ));
        }
    }
    Some(out)
}

/// What [`placement`] answers for an id whose shard has no active placement on an active
/// primary (a node disabled with `citus_disable_node`, a shard being moved).
pub const NO_ACTIVE_PLACEMENT: &str = "no active placement";

/// The `host:port` of the active primary node holding each id's shard, index for index
/// (only healthy placements, `shardstate = 1`, on active nodes; with replicated shards
/// the first such node by name).
pub async fn placement(pool: &PgPool, timeout: Duration, ids: &[Uuid]) -> Result<Vec<String>> {
    let nodes: Vec<String> = timed("placement", timeout, async {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(
                      (SELECT n.nodename || ':' || n.nodeport
                       FROM pg_dist_placement p
                       JOIN pg_dist_node n
                         ON n.groupid = p.groupid AND n.noderole = 'primary' AND n.isactive
                       WHERE p.shardid = get_shard_id_for_distribution_column('records', k.id)
                         AND p.shardstate = 1
                       ORDER BY n.nodename, n.nodeport
                       LIMIT 1),
                      $2)
             FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, i)
             ORDER BY k.i",
        )
        .bind(ids)
        .bind(NO_ACTIVE_PLACEMENT)
        .fetch_all(pool)
        .await?)
    })
    .await?;
    if nodes.len() != ids.len() {
        return Err(super::Error::Corrupt(format!(
            "the placement of {} ids came back as {} rows",
            ids.len(),
            nodes.len()
        )));
    }
    Ok(nodes)
}

/// The primary worker nodes `pg_dist_node` marks inactive (`citus_disable_node`): their
/// shards take no writes, and no write probe reaches them.
pub async fn inactive_nodes(pool: &PgPool, timeout: Duration) -> Result<Vec<String>> {
    timed("inactive_nodes", timeout, async {
        Ok(sqlx::query_scalar(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node
             WHERE noderole = 'primary' AND NOT isactive AND groupid <> 0
             ORDER BY nodename, nodeport",
        )
        .fetch_all(pool)
        .await?)
    })
    .await
}

/// Two thirds of the query timeout, in milliseconds: a Citus coordinator waits
/// `citus.node_connection_timeout` (30 s by default) for a worker node that does not
/// answer, past the query timeout, so a hung node would be a timeout naming no node. Below
/// it, the coordinator's own refusal names the node.
pub(super) fn node_connection_timeout(query_timeout: Duration) -> String {
    (query_timeout * 2 / 3)
        .max(Duration::from_millis(100))
        .as_millis()
        .to_string()
}

/// Sets `citus.node_connection_timeout` on a new connection where Citus is installed (a
/// no-op elsewhere). A failure is logged, not fatal: only the node's name in a hung node's
/// error is lost.
pub(super) async fn set_node_connection_timeout(conn: &mut sqlx::PgConnection, value: &str) {
    let set = sqlx::query(
        "SELECT set_config('citus.node_connection_timeout', $1, false)
         FROM pg_extension WHERE extname = 'citus'",
    )
    .bind(value)
    .execute(conn)
    .await;
    if let Err(error) = set {
        tracing::warn!(message = "Could not set citus.node_connection_timeout on a database connection.", %error);
    }
}

/// Rows in a distributed `records`: the coordinator's table is an empty shell (its
/// `reltuples` stays -1 or 0 after ANALYZE), so the estimate is the sum of the shards' own
/// statistics, read on the workers through `run_command_on_shards`; shards never analyzed
/// leave the figure unknown.
pub(super) async fn record_count(pool: &PgPool) -> Result<RecordCount> {
    // `result` is text; it is a number only where `success`. reltuples is -1 on a shard
    // never analyzed (PostgreSQL 14+), 0 before 14.
    let (shards, analyzed, rows): (i64, i64, f64) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE n > 0),
                COALESCE(sum(n) FILTER (WHERE n > 0), 0)::float8
         FROM (SELECT CASE WHEN success THEN result::float8 END AS n
               FROM run_command_on_shards('records',
                    $$SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass$$)) AS s",
    )
    .fetch_one(pool)
    .await?;
    Ok(if shards > 0 && analyzed > 0 {
        RecordCount::Estimate {
            rows: rows as u64,
            source: "the Citus shards' pg_class.reltuples",
        }
    } else {
        RecordCount::Unknown {
            why: "Citus shards have no statistics yet (ANALYZE records); a count would scan every shard",
        }
    })
}
