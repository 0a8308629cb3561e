//! Citus: which worker node holds a row, and a write probe per node. These read the
//! coordinator's metadata (`pg_dist_placement`, `pg_dist_node`,
//! `get_shard_id_for_distribution_column`), which answers while a worker node is down.
//! There is no Citus in CI here: these queries follow Citus's documented catalog and are
//! exercised only on a real cluster (README: "A dead Citus node").

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Result, timed};

/// One write probe per Citus worker node, inserted and rolled back, by `host:port`.
pub(super) async fn probe_write_nodes(
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
    Some(out)
}

/// The `host:port` of the primary node holding each id's shard, index for index.
pub(super) async fn placement(
    pool: &PgPool,
    timeout: Duration,
    ids: &[Uuid],
) -> Option<Vec<String>> {
    let nodes: Vec<String> = timed("placement", timeout, async {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT ON (k.i) n.nodename || ':' || n.nodeport
             FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, i)
             JOIN pg_dist_placement p
               ON p.shardid = get_shard_id_for_distribution_column('records', k.id)
             JOIN pg_dist_node n ON n.groupid = p.groupid AND n.noderole = 'primary'
             ORDER BY k.i, n.nodename, n.nodeport",
        )
        .bind(ids)
        .fetch_all(pool)
        .await?)
    })
    .await
    .ok()?;
    (nodes.len() == ids.len()).then_some(nodes)
}
