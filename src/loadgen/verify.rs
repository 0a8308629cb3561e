//! `--verify`: polls `GET /data/{id}` until every acknowledged message is stored or the
//! time is up, and measures each record's end-to-end latency (stored_at − received_at).

use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use super::{Percentiles, progress};

#[derive(Debug, Serialize)]
pub struct Verified {
    pub stored: u64,
    pub missing: u64,
    /// stored_at − received_at of each record: the pipeline's own latency.
    pub end_to_end_latency: Percentiles,
}

pub async fn verify(
    api: &crate::api::client::ApiClient,
    ids: &[Uuid],
    timeout: Duration,
    interactive: bool,
) -> Verified {
    let bar = progress(ids.len() as u64, "verifying", interactive);
    let deadline = Instant::now() + timeout;
    let mut missing: Vec<Uuid> = ids.to_vec();
    let mut e2e = Vec::with_capacity(ids.len());
    while !missing.is_empty() {
        let mut still = Vec::new();
        for chunk in missing.chunks(32) {
            let checks = chunk
                .iter()
                .map(|id| async move { (*id, api.record(*id).await.ok().flatten()) });
            for (id, record) in futures::future::join_all(checks).await {
                match record {
                    Some(r) => {
                        e2e.push((r.stored_at - r.received_at).to_std().unwrap_or_default());
                        bar.inc(1);
                    }
                    None => still.push(id),
                }
            }
        }
        missing = still;
        if missing.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bar.finish_and_clear();
    Verified {
        stored: (ids.len() - missing.len()) as u64,
        missing: missing.len() as u64,
        end_to_end_latency: Percentiles::of(&mut e2e),
    }
}
