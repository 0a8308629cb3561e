//! The disk row (seed 4.2): the filesystem the embedded data dir lives on.

use super::{Check, State};
use crate::config::Config;

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Used fraction against `status.disk_used_warn` / `disk_used_fail`. A data dir that does not
/// exist yet is measured at its nearest existing parent (where it will be created).
pub(super) async fn check_disk(config: &Config) -> Check {
    let dir = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let mut probe = dir.clone();
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p.to_path_buf(),
            None => break,
        }
    }
    let measured = probe.clone();
    let usage =
        tokio::task::spawn_blocking(move || crate::telemetry::filesystem_usage(&measured)).await;
    let mut check = Check::new("disk", State::Ok).figure("data_dir", dir.display());
    let usage = match usage {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            check.worsen(
                State::Fail,
                format!("cannot read the filesystem of {}: {e}", probe.display()),
            );
            return check;
        }
        Err(e) => {
            check.worsen(State::Fail, format!("statvfs did not finish: {e}"));
            return check;
        }
    };
    let used = usage.used_ratio();
    check = check
        .figure("used", format!("{:.1}%", used * 100.0))
        .figure("free", gib(usage.free_bytes))
        .figure("size", gib(usage.size_bytes));
    let s = &config.status;
    let what = format!(
        "the data dir's filesystem is {:.0}% used: when it is full the embedded queue refuses publishes (503) and the worker pauses; grow the volume (the chart's persistence size) or free space (drain the DLQ, check the backlog)",
        used * 100.0
    );
    if used > s.disk_used_fail {
        check.worsen(State::Fail, what);
    } else if used > s.disk_used_warn {
        check.worsen(State::Warn, what);
    }
    check
}
