//! The Citus queries and the class-08 rule on real PostgreSQL. There is no Citus here: the
//! catalog the queries read is stood in for with Citus's own names and types
//! (`pg_dist_node`, `pg_dist_placement`, `get_shard_id_for_distribution_column`, as in
//! Citus 13's `pg_dist_*` definitions), so the SQL, its joins and its filters run for
//! real; what a real coordinator answers is verified only on a real cluster.

use std::time::Duration;

use latamctl::store::{self, Record, Store, citus};
use uuid::Uuid;

use super::store::{connect, fresh_database};

/// Three worker groups; shard = 101 + (last byte of the id) % 3. Shard 101 is on
/// worker-1; 102 on worker-2, with a stale copy (shardstate 4, to be deleted) on worker-1;
/// 103 only on worker-3, which is disabled.
const CATALOG: &str = "
CREATE TYPE noderole AS ENUM ('primary', 'secondary', 'unavailable');
CREATE TABLE pg_dist_node (
    nodeid int PRIMARY KEY, groupid int NOT NULL, nodename text NOT NULL, nodeport int NOT NULL,
    noderack text NOT NULL DEFAULT 'default', hasmetadata bool NOT NULL DEFAULT false,
    isactive bool NOT NULL DEFAULT true, noderole noderole NOT NULL DEFAULT 'primary',
    nodecluster name NOT NULL DEFAULT 'default', metadatasynced bool NOT NULL DEFAULT false,
    shouldhaveshards bool NOT NULL DEFAULT true);
CREATE TABLE pg_dist_placement (
    placementid bigint PRIMARY KEY, shardid bigint NOT NULL, shardstate int NOT NULL,
    shardlength bigint NOT NULL, groupid int NOT NULL);
CREATE FUNCTION get_shard_id_for_distribution_column(table_name regclass, distribution_value anyelement)
    RETURNS bigint LANGUAGE sql AS
    $$ SELECT 101 + get_byte(uuid_send(distribution_value::text::uuid), 15) % 3 $$;
INSERT INTO pg_dist_node (nodeid, groupid, nodename, nodeport, isactive, noderole) VALUES
    (1, 0, 'coordinator', 5432, true, 'primary'),
    (2, 1, 'worker-1', 5432, true, 'primary'),
    (3, 2, 'worker-2', 5432, true, 'primary'),
    (4, 3, 'worker-3', 5432, false, 'primary'),
    (5, 2, 'worker-2-replica', 5432, true, 'secondary');
INSERT INTO pg_dist_placement VALUES
    (1, 101, 1, 0, 1),
    (2, 102, 1, 0, 2),
    (3, 102, 4, 0, 1),
    (4, 103, 1, 0, 3);
";

async fn pool() -> Option<(sqlx::PgPool, String)> {
    let url = fresh_database().await?;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    Some((pool, url))
}

#[tokio::test]
async fn placement_reads_healthy_placements_on_active_primaries_for_every_id() {
    let Some((pool, _)) = pool().await else {
        return;
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE records (transaction_id uuid PRIMARY KEY); {CATALOG}"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let ids: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let nodes = citus::placement(&pool, Duration::from_secs(5), &ids)
        .await
        .unwrap();
    assert_eq!(nodes.len(), ids.len(), "one node per id, in order");
    for (id, node) in ids.iter().zip(&nodes) {
        let want = match id.as_bytes()[15] % 3 {
            0 => "worker-1:5432",
            // Not worker-1's stale copy, not the secondary.
            1 => "worker-2:5432",
            // Its only node is disabled.
            _ => citus::NO_ACTIVE_PLACEMENT,
        };
        assert_eq!(node, want, "{id}");
    }
    assert_eq!(
        citus::inactive_nodes(&pool, Duration::from_secs(5))
            .await
            .unwrap(),
        ["worker-3:5432"]
    );
}

fn record() -> Record {
    Record {
        transaction_id: Uuid::now_v7(),
        topic: "data-ingestion-topic".into(),
        message: "m".into(),
        attributes: Default::default(),
        received_at: chrono::Utc::now(),
    }
}

/// Class 08 is a node's outage only when the server names a remote node, as a Citus
/// coordinator does; PgBouncer's 08P01 ("server conn crashed?") is the database's.
#[tokio::test]
async fn only_a_class_08_answer_naming_a_remote_node_is_one_nodes_outage() {
    let Some((pool, url)) = pool().await else {
        return;
    };
    let store = connect(&url).await;
    store.apply_migrations().await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE refusal (code text, text text);
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE r refusal;
         BEGIN
           SELECT * INTO r FROM refusal LIMIT 1;
           RAISE EXCEPTION '%', r.text USING ERRCODE = r.code;
         END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let cases = [
        ("08P01", "server conn crashed?", None),
        ("08006", "connection to the server was lost", None),
        (
            "08006",
            "connection to the remote node postgres@10.0.3.7:5432 failed with the following error: Connection refused",
            Some("10.0.3.7:5432"),
        ),
        (
            "08001",
            "connection to the remote node worker-2:5432 failed with the following error: timeout expired",
            Some("worker-2:5432"),
        ),
    ];
    for (code, text, node) in cases {
        sqlx::query("DELETE FROM refusal")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO refusal VALUES ($1, $2)")
            .bind(code)
            .bind(text)
            .execute(&pool)
            .await
            .unwrap();
        let error = store.insert_batch(&[record()]).await.unwrap_err();
        match node {
            None => assert!(
                matches!(error, store::Error::Unavailable(_)),
                "{code} {text}: {error:?}"
            ),
            Some(node) => {
                assert!(
                    matches!(error, store::Error::NodeUnavailable(_)),
                    "{code} {text}: {error:?}"
                );
                assert_eq!(error.node(), Some(node));
            }
        }
    }
}
