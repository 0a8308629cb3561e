//! The database row: a round trip, a write probe, the figures, and a SQLite file that SQLite
//! calls damaged.

use std::sync::Arc;
use std::time::Instant;

use super::{Check, State};
use crate::config::Config;
use crate::store::Store;

/// The row of a SQLite store whose file SQLite calls damaged, found while checking it.
fn damaged_store(config: &Config, store: &dyn Store, e: &crate::store::Error) -> Check {
    let dir = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let path = dir.join(crate::store::sqlite::STORE_FILE);
    Check::new("database", State::Fail)
        .figure("kind", store.kind())
        .figure("file", path.display())
        .hint(crate::sqlite::status_hint(&format!(
            "{}: {e}",
            path.display()
        )))
}

/// What a node that refuses writes means and what to do, naming each node.
fn node_hint(failing: &[(String, String)]) -> String {
    let nodes: Vec<&str> = failing.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "database node {} refuses writes ({}): the worker holds the rows of its shards in flight and stores the others; bring the node back (on the coordinator: SELECT * FROM citus_check_cluster_node_health())",
        nodes.join(", "),
        failing
            .iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    )
}

pub(super) async fn check_store(config: &Config, store: Arc<dyn Store>) -> Check {
    match check_store_figures(config, store.as_ref()).await {
        Err(e) => damaged_store(config, store.as_ref(), &e),
        Ok(check) => check,
    }
}

/// The database row; `Err` only when SQLite finds the file damaged.
async fn check_store_figures(
    config: &Config,
    store: &dyn Store,
) -> Result<Check, crate::store::Error> {
    use crate::store::Error::Damaged;
    // The first round trip opens the connection (TCP, TLS, auth); time the second.
    match store.ready().await {
        Err(e @ Damaged(_)) => return Err(e),
        Err(e) => {
            return Ok(Check::new("database", State::Fail)
                .figure("kind", store.kind())
                .hint(format!(
                    "{e}: check database.url and that the database is up"
                )));
        }
        Ok(()) => {}
    }
    let started = Instant::now();
    match store.ready().await {
        Err(e @ Damaged(_)) => return Err(e),
        Err(e) => {
            return Ok(Check::new("database", State::Fail)
                .figure("kind", store.kind())
                .hint(format!("{e}: the database stopped answering")));
        }
        Ok(()) => {}
    }
    let latency = started.elapsed();
    // `SELECT 1` is not enough: a database can answer reads and refuse every write (revoked
    // INSERT, read-only after a failover, a missing table), and then the worker is stopped.
    match store.probe_write().await {
        Err(e @ Damaged(_)) => return Err(e),
        Err(e @ crate::store::Error::NodeUnavailable(_)) => {
            let node = e.node().unwrap_or("unknown").to_owned();
            return Ok(Check::new("database", State::Fail)
                .figure("kind", store.kind())
                .figure("reads", "ok")
                .figure("writes", "fail")
                .figure("node", &node)
                .hint(node_hint(&[(node.clone(), e.to_string())])));
        }
        Err(e) => {
            return Ok(Check::new("database", State::Fail)
                .figure("kind", store.kind())
                .figure("reads", "ok")
                .figure("writes", "fail")
                .hint(format!(
                    "{e}: reads work but a write to records fails; the worker is paused until writes commit"
                )));
        }
        Ok(()) => {}
    }
    // A distributed store: one probe per node, since one dead node refuses only its rows.
    let mut node_figures: Vec<(String, String)> = Vec::new();
    if let Some(nodes) = store.probe_write_nodes().await {
        node_figures.push(("nodes".into(), nodes.len().to_string()));
        for (node, result) in &nodes {
            let state = if result.is_ok() {
                "writes ok"
            } else {
                "writes fail"
            };
            node_figures.push((format!("node {node}"), state.into()));
        }
        let failing: Vec<(String, String)> = nodes
            .iter()
            .filter_map(|(node, r)| r.as_ref().err().map(|e| (node.clone(), e.to_string())))
            .collect();
        if !failing.is_empty() {
            let mut check = Check::new("database", State::Fail).figure("kind", store.kind());
            for (k, v) in &node_figures {
                check = check.figure(k, v);
            }
            return Ok(check
                .figure("reads", "ok")
                .figure(
                    "writes",
                    format!("fail on {} of {} nodes", failing.len(), nodes.len()),
                )
                .figure(
                    "node",
                    failing
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .hint(node_hint(&failing)));
        }
    }
    let mut check = Check::new("database", State::Ok)
        .figure("kind", store.kind())
        .figure("writes", "ok")
        .figure(
            "latency_ms",
            format!("{:.1}", latency.as_secs_f64() * 1000.0),
        );
    for (k, v) in &node_figures {
        check = check.figure(k, v);
    }
    match store.stats().await {
        Ok(stats) => {
            check = check
                .figure("records", stats.records.figure())
                .figure("records_basis", stats.records.basis())
                .figure(
                    "newest_age_s",
                    stats
                        .newest_stored_at
                        .map(|t| format!("{:.0}", (chrono::Utc::now() - t).as_seconds_f64()))
                        .unwrap_or_else(|| "n/a".into()),
                );
        }
        Err(e @ Damaged(_)) => return Err(e),
        Err(e) => check.worsen(State::Warn, format!("cannot read figures: {e}")),
    }
    if latency > config.status.db_latency_warn {
        check.worsen(
            State::Warn,
            format!(
                "round trip above {} (seed DB SLO)",
                humantime::format_duration(config.status.db_latency_warn)
            ),
        );
    }
    Ok(check)
}
