//! The one shape of every periodic background task: run a step every period until the
//! process shuts down.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs `step` at once and then every `period` until `shutdown` is cancelled. A step slower
/// than the period delays the next one instead of bunching the missed ticks; cancellation is
/// seen between steps, not inside one. (`step` returns an owned future, not an async
/// closure's borrowing one, so the loop can be spawned: such futures are not provably Send.)
pub async fn every<F, Fut>(period: Duration, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        step().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn steps_at_once_then_every_period_until_cancelled() {
        let shutdown = CancellationToken::new();
        let mut steps = 0;
        let stop = shutdown.clone();
        let started = tokio::time::Instant::now();
        every(Duration::from_secs(10), shutdown, || {
            steps += 1;
            if steps == 3 {
                stop.cancel();
            }
            std::future::ready(())
        })
        .await;
        // Three steps: at 0 s, 10 s and 20 s (paused time advances exactly).
        assert_eq!(steps, 3);
        assert_eq!(started.elapsed(), Duration::from_secs(20));
    }
}
