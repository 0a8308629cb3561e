//! The RDS row: state, CPU, storage, connections, replica lag, pending modifications and
//! pending maintenance.

use super::aws::latest_metric;
use super::{Check, State};
use crate::cloud::{CloudClients, RdsMaintenance};

use crate::config::Config;
use std::time::{Duration, SystemTime};

/// Memory of an RDS instance class in GiB, for PostgreSQL's default `max_connections`
/// (`LEAST(DBInstanceClassMemory / 9531392, 5000)`); `None` for a class not listed.
fn class_memory_gib(class: &str) -> Option<f64> {
    let mut parts = class.trim_start_matches("db.").splitn(2, '.');
    let (family, size) = (parts.next()?, parts.next()?);
    let base = match size {
        "micro" => 1.0,
        "small" => 2.0,
        "medium" => 4.0,
        "large" => 8.0,
        "xlarge" => 16.0,
        s => s.strip_suffix("xlarge")?.parse::<f64>().ok()? * 16.0,
    };
    let per_family = match family.chars().next()? {
        // Burstable: micro 1, small 2, medium 4, large 8, xlarge 16, 2xlarge 32.
        't' => base,
        // General purpose: large 8, then 16 per xlarge.
        'm' => base,
        // Memory optimized: twice the m family.
        'r' | 'x' => base * 2.0,
        _ => return None,
    };
    Some(per_family)
}

fn default_max_connections(class: &str) -> Option<u64> {
    let bytes = class_memory_gib(class)? * 1024.0 * 1024.0 * 1024.0;
    Some(((bytes / 9_531_392.0) as u64).min(5000))
}

/// The RDS row: state, CPU, free storage against the allocated storage, connections against
/// `max_connections`, replica lag, and modifications waiting for the maintenance window.
pub(super) async fn check_rds(config: &Config, cloud: &CloudClients, id: &str) -> Check {
    use aws_sdk_cloudwatch::types::Statistic;
    let db = match cloud.rds_instance(id).await {
        Ok(Some(db)) => db,
        Ok(None) => {
            return Check::new("rds", State::Fail)
                .figure("instance", id)
                .hint("not found: check aws.rds_instance_id or apply terraform/");
        }
        Err(e) => {
            return Check::new("rds", State::Fail)
                .figure("instance", id)
                .hint(e.to_string());
        }
    };
    let s = &config.status;
    let mut c = Check::new("rds", State::Ok)
        .figure("instance", id)
        .figure("status", &db.status)
        .figure("engine", &db.engine)
        .figure("multi_az", db.multi_az);
    match db.status.as_str() {
        "available" => {}
        "backing-up" | "modifying" | "upgrading" | "maintenance" => {
            c.worsen(State::Warn, "RDS is busy; expect higher latency")
        }
        _ => c.worsen(State::Fail, "RDS instance is not available"),
    }
    let dim = ("DBInstanceIdentifier", id);
    let (cpu, free, connections) = tokio::join!(
        latest_metric(
            cloud,
            "AWS/RDS",
            "CPUUtilization",
            dim,
            Statistic::Average,
            300
        ),
        latest_metric(
            cloud,
            "AWS/RDS",
            "FreeStorageSpace",
            dim,
            Statistic::Minimum,
            300
        ),
        latest_metric(
            cloud,
            "AWS/RDS",
            "DatabaseConnections",
            dim,
            Statistic::Maximum,
            60
        ),
    );
    match cpu {
        Some(cpu) => {
            c = c.figure("cpu", format!("{cpu:.0}%"));
            if cpu > s.rds_cpu_warn_percent {
                c.worsen(
                    State::Warn,
                    format!(
                        "RDS CPU {cpu:.0}% (over {}%): slow queries or too small an instance class; Performance Insights shows which",
                        s.rds_cpu_warn_percent
                    ),
                );
            }
        }
        None => c = c.figure("cpu", "no data"),
    }
    match (free, db.allocated_storage_gib) {
        (Some(free), Some(gib)) if gib > 0 => {
            let size = gib as f64 * 1024.0 * 1024.0 * 1024.0;
            let used = 1.0 - free / size;
            c = c.figure(
                "storage",
                format!(
                    "{:.0}% used ({:.1} of {gib} GiB free)",
                    used * 100.0,
                    free / (1024.0 * 1024.0 * 1024.0)
                ),
            );
            let what = format!(
                "RDS storage {:.0}% used: raise the allocated storage (Terraform db_allocated_storage) or enable storage autoscaling (db_max_allocated_storage); a full instance refuses writes and the worker pauses",
                used * 100.0
            );
            if used > s.disk_used_fail {
                c.worsen(State::Fail, what);
            } else if used > s.disk_used_warn {
                c.worsen(State::Warn, what);
            }
        }
        (Some(free), _) => {
            c = c.figure(
                "storage",
                format!("{:.1} GiB free", free / (1024.0 * 1024.0 * 1024.0)),
            )
        }
        (None, _) => c = c.figure("storage", "no data"),
    }
    let configured = (s.rds_max_connections > 0).then_some(s.rds_max_connections);
    let max = configured.or_else(|| default_max_connections(&db.instance_class));
    match (connections, max) {
        (Some(n), Some(max)) => {
            let estimated = if configured.is_some() { "" } else { "~" };
            c = c.figure("connections", format!("{n:.0}/{estimated}{max}"));
            if n > s.rds_connections_warn * max as f64 {
                c.worsen(
                    State::Warn,
                    format!(
                        "{n:.0} connections of {estimated}{max}: pools (database.max_connections × replicas) are near max_connections; lower them or use RDS Proxy"
                    ),
                );
            }
        }
        (Some(n), None) => c = c.figure("connections", format!("{n:.0}")),
        (None, _) => c = c.figure("connections", "no data"),
    }
    for replica in &db.read_replicas {
        let lag = latest_metric(
            cloud,
            "AWS/RDS",
            "ReplicaLag",
            ("DBInstanceIdentifier", replica),
            Statistic::Maximum,
            60,
        )
        .await;
        if let Some(lag) = lag {
            c = c.figure(&format!("replica_lag {replica}"), format!("{lag:.0}s"));
            if lag > s.rds_replica_lag_warn.as_secs_f64() {
                c.worsen(
                    State::Warn,
                    format!("replica {replica} lags {lag:.0}s: reads there are stale"),
                );
            }
        }
    }
    match &db.arn {
        Some(arn) => match cloud.rds_pending_maintenance(arn).await {
            Ok(actions) => maintenance(&mut c, arn, &actions, s.rds_maintenance_warn),
            Err(e) => c.worsen(
                State::Warn,
                format!("cannot read the pending maintenance: {e}"),
            ),
        },
        None => c = c.figure("maintenance", "unknown (no instance ARN)"),
    }
    if !db.pending_modifications.is_empty() {
        c = c.figure("pending", db.pending_modifications.join(","));
        c.worsen(
            State::Warn,
            format!(
                "modifications wait for the next maintenance window: {} (apply now with `aws rds modify-db-instance --apply-immediately`, or expect a restart then)",
                db.pending_modifications.join(", ")
            ),
        );
    }
    c
}

/// The `maintenance` figure, and a warning for each action due within `warn` (or overdue):
/// applied by RDS in its own window otherwise, often with a restart.
fn maintenance(c: &mut Check, arn: &str, actions: &[RdsMaintenance], warn: Duration) {
    if actions.is_empty() {
        c.figures.insert("maintenance".into(), "none".into());
        return;
    }
    let now = SystemTime::now();
    let when = |due: Option<SystemTime>| {
        due.map_or("no date".to_owned(), |d| {
            humantime::format_rfc3339_seconds(d).to_string()[..10].to_owned()
        })
    };
    let figure = actions
        .iter()
        .map(|a| format!("{} (due {})", a.action, when(a.due)))
        .collect::<Vec<_>>()
        .join(", ");
    c.figures.insert("maintenance".into(), figure);
    for a in actions {
        let Some(due) = a.due else { continue };
        if due > now + warn {
            continue;
        }
        let what = if a.description.is_empty() {
            String::new()
        } else {
            format!(" ({})", a.description)
        };
        c.worsen(
            State::Warn,
            format!(
                "RDS maintenance {}{what} is due {}: apply it in a window you choose (`aws rds apply-pending-maintenance-action --resource-identifier {arn} --apply-action {} --opt-in-type immediate`), or RDS applies it then, usually with a restart",
                a.action,
                when(Some(due)),
                a.action
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn default_max_connections_follow_the_class_memory() {
        // 8 GiB: 8 * 1024^3 / 9531392 = 901.
        assert_eq!(default_max_connections("db.m6g.large"), Some(901));
        assert_eq!(default_max_connections("db.t3.micro"), Some(112));
        assert_eq!(default_max_connections("db.r6g.large"), Some(1802));
        assert_eq!(default_max_connections("db.r6g.16xlarge"), Some(5000));
        assert_eq!(default_max_connections("db.serverless"), None);
    }
}
