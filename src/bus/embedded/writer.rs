//! The queue's single writer: every write of this process (publishes, claims, acks,
//! visibility changes, upkeep) is an [`Op`] that the group-commit task runs with the others
//! waiting, in one transaction, so one fsync covers them all. Also the statements it runs.

use super::*;

/// One write for the group-commit writer. Everything waiting is done in one transaction,
/// so one fsync covers the publishes, claims, acks and visibility changes of that moment:
/// the worker's receives and acks do not add commits of their own on a busy queue.
pub(super) enum Op {
    /// A message as its row stores it, encoded on the publisher's thread so the writer's
    /// thread (the one every write waits for) only inserts.
    Publish {
        message_id: String,
        body: String,
        attributes: String,
        done: oneshot::Sender<Result<()>>,
    },
    Claim {
        queue: QueueName,
        max: usize,
        visibility: Duration,
        done: oneshot::Sender<Result<Vec<Delivery>>>,
    },
    /// Deletes `(seq, token)` pairs of `queue` whose receipt is still current; answers the
    /// seqs deleted.
    Delete {
        queue: QueueName,
        receipts: Vec<(i64, String)>,
        done: oneshot::Sender<Result<HashSet<i64>>>,
    },
    SetVisible {
        queue: QueueName,
        receipts: Vec<(i64, String)>,
        visible_at: i64,
        done: oneshot::Sender<Result<()>>,
    },
}

impl Op {
    /// Whether the caller stopped waiting (a publisher that timed out was told 503: its
    /// message must not be committed behind its back).
    fn abandoned(&self) -> bool {
        match self {
            Op::Publish { done, .. } | Op::SetVisible { done, .. } => done.is_closed(),
            Op::Claim { done, .. } => done.is_closed(),
            Op::Delete { done, .. } => done.is_closed(),
        }
    }

    fn fail(self, error: Error) {
        match self {
            Op::Publish { done, .. } | Op::SetVisible { done, .. } => {
                let _ = done.send(Err(error));
            }
            Op::Claim { done, .. } => {
                let _ = done.send(Err(error));
            }
            Op::Delete { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// The next visible messages of a queue with what a delivery needs, in visibility order,
/// at most `limit`: an index range on `messages_ready (queue, visible_at, seq)`, never a
/// scan of the backlog. Placeholders: `?1` queue, `?2` now. On the main queue the same rows
/// are the DLQ sweep's: the exhausted among them move to the DLQ, the others are claimed.
///
/// The batch size is a literal, not a placeholder: SQLite (3.47 and later) lets a bound
/// `LIMIT` shape the plan, so rebinding it expires the statement and every claim parsed and
/// planned its SQL again (measured: 4% of `serve`'s CPU under POST load). One cached
/// statement per batch size instead.
///
/// Plain statements by primary key, not `UPDATE .. WHERE seq IN (SELECT ..) RETURNING ..`:
/// SQLite runs that with three temporary b-trees (the `IN` list, the rows to update, the
/// `RETURNING` rows), each opened, zeroed and freed on every receive (measured with
/// callgrind: 16 % of `serve`'s instructions per POST in `memset` and b-tree setup).
pub fn claim_candidates(limit: usize) -> String {
    format!(
        "SELECT seq, message_id, body, attributes, sent_at, receive_count FROM messages \
         WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT {limit}"
    )
}

/// Claims one message (`?3`): a new receipt `?2`, invisible until `?1`.
pub const CLAIM_ONE: &str = "UPDATE messages SET visible_at = ?1, \
     receive_count = receive_count + 1, receipt = ?2 WHERE seq = ?3";

/// Moves one exhausted main-queue message (`?2`) to the DLQ, visible there at `?1`.
pub const DEAD_LETTER_ONE: &str =
    "UPDATE messages SET queue = 'dlq', receipt = NULL, visible_at = ?1 WHERE seq = ?2";

/// Deletes message `?3` of queue `?1` if it still holds receipt `?2` (one change: deleted).
///
/// By primary key. The `+` keeps `queue` and `receipt` filters, not an index: left to itself
/// the planner searched `messages_by_age (queue=?)`, every message of the queue, on each ack
/// (measured: 25 ms per batch of 100 behind 200,000 messages, and the API's publishes in
/// another process waited for it). Tests check the plan.
pub const DELETE_RECEIVED: &str =
    "DELETE FROM messages WHERE seq = ?3 AND +queue = ?1 AND +receipt = ?2";

/// Makes message `?4` of queue `?2` holding receipt `?3` visible at `?1`; by primary key,
/// like [`DELETE_RECEIVED`].
pub const SET_VISIBLE: &str =
    "UPDATE messages SET visible_at = ?1 WHERE seq = ?4 AND +queue = ?2 AND +receipt = ?3";

/// Statements kept prepared on a connection (rusqlite's default is 16): one claim and one
/// sweep per batch size in use, plus the fixed ones.
pub const STATEMENT_CACHE: usize = 64;

/// WAL size kept after a checkpoint (64 MiB).
pub(super) const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// How often expired messages are removed and the WAL checkpointed.
pub(super) const UPKEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Bytes the data takes in the file: pages in use (not on the free list) times page size.
pub(super) fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let bytes: i64 = conn.query_row(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        [],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// The queue's size as the group-commit writer tracks it: read from the file at most every
/// [`SIZE_REFRESH`] while the queue is under half its cap, estimated in between from the
/// commits (twice their payload: rows, attributes, index entries and page slack take about
/// 1.7 times it), and read before every commit past half the cap. The publish path thus pays
/// one extra query per second, not one per commit, and the cap stays exact where it matters.
#[derive(Default)]
pub(super) struct SizeEstimate {
    /// Bytes at the last read plus what was committed since (`None` before the first read).
    estimate: Option<u64>,
    read_at: Option<Instant>,
}

/// How long [`SizeEstimate`] trusts its estimate far from the cap (acks and other processes
/// change the size meanwhile).
pub(super) const SIZE_REFRESH: Duration = Duration::from_secs(1);

impl SizeEstimate {
    /// The used bytes when `incoming` more would exceed `max_bytes`; `None` when it fits (or
    /// the size cannot be read: the commit itself then reports a full disk).
    async fn would_exceed(
        &mut self,
        writer: &Writer,
        incoming: u64,
        max_bytes: u64,
    ) -> Option<u64> {
        let stale = self.read_at.is_none_or(|t| t.elapsed() >= SIZE_REFRESH);
        let near = self
            .estimate
            .is_none_or(|e| e.saturating_add(incoming.saturating_mul(2)) > max_bytes / 2);
        if stale || near {
            match writer.run(|conn| used_bytes(conn)).await {
                Ok(Ok(used)) => {
                    self.estimate = Some(used);
                    self.read_at = Some(Instant::now());
                }
                _ => return None,
            }
        }
        let used = self.estimate.unwrap_or(0);
        (used.saturating_add(incoming) > max_bytes).then_some(used)
    }

    fn added(&mut self, payload: u64) {
        if let Some(e) = self.estimate.as_mut() {
            *e = e.saturating_add(payload.saturating_mul(2));
        }
    }
}

pub(super) fn expire(conn: &Connection, config: &QueueConfig) -> rusqlite::Result<u64> {
    let now = now_ms();
    let mut expired = 0;
    for (queue, retention) in [("main", config.retention), ("dlq", config.dlq_retention)] {
        expired += conn.execute(
            "DELETE FROM messages WHERE queue = ?1 AND sent_at < ?2",
            params![queue, now.saturating_sub(millis(retention))],
        )? as u64;
    }
    Ok(expired)
}

/// Drops messages past their retention (as SQS does) and checkpoints the WAL, so neither
/// the table nor `queue.db-wal` grows without bound. The group-commit task runs it every
/// [`UPKEEP_INTERVAL`], between two transactions.
pub(super) async fn upkeep(writer: &Writer, config: &QueueConfig) {
    let config = config.clone();
    let done = writer
        .run(move |conn| {
            let expired = expire(conn, &config);
            let checkpoint = conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(|e| e.to_string());
            (expired, checkpoint)
        })
        .await;
    let Ok((expired, checkpoint)) = done else {
        return;
    };
    match expired {
        Ok(0) => {}
        Ok(n) => {
            metrics::counter!(crate::metric::QUEUE_EXPIRED_TOTAL).increment(n);
            tracing::warn!(
                message = "Removed messages past their retention.",
                count = n
            );
        }
        Err(error) => tracing::warn!(message = "Failed to expire old messages.", %error),
    }
    if let Err(error) = checkpoint {
        tracing::debug!(message = "WAL checkpoint failed.", %error);
    }
}

/// What one write of a transaction produced, answered after the commit.
pub(super) enum Outcome {
    Published,
    Claimed {
        deliveries: Result<Vec<Delivery>>,
        dead: u64,
    },
    Deleted(HashSet<i64>),
    Visible,
}

/// Collects everything waiting, has the writer thread do it in one transaction, then
/// answers every caller at once; runs [`upkeep`] in between. Stops, and with it the writer
/// thread, once every clone of the queue is gone.
pub(super) async fn group_commit_writer(
    writer: Writer,
    mut rx: mpsc::Receiver<Op>,
    notify: Arc<Notify>,
    config: QueueConfig,
) {
    let max_batch = config.group_commit_max.max(1);
    let (max_bytes, max_receive_count) = (config.max_bytes, config.max_receive_count);
    let mut size = SizeEstimate::default();
    let mut upkeep_tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        let mut ops = Vec::with_capacity(max_batch);
        tokio::select! {
            received = rx.recv_many(&mut ops, max_batch) => {
                if received == 0 {
                    return;
                }
            }
            _ = upkeep_tick.tick() => {
                upkeep(&writer, &config).await;
                continue;
            }
        }
        ops.retain(|op| !op.abandoned());
        // The cap: refuse publishes that would not fit rather than fill the disk. Acks and
        // receives still go through: they are what frees the space.
        let incoming: u64 = ops
            .iter()
            .map(|op| match op {
                Op::Publish {
                    body, attributes, ..
                } => (body.len() + attributes.len()) as u64 + 256,
                _ => 0,
            })
            .sum();
        if incoming > 0
            && let Some(used) = size.would_exceed(&writer, incoming, max_bytes).await
        {
            let why = format!("{used} of {max_bytes} bytes used (queue.max_bytes)");
            let (refused, kept): (Vec<Op>, Vec<Op>) = ops
                .into_iter()
                .partition(|op| matches!(op, Op::Publish { .. }));
            metrics::counter!(crate::metric::QUEUE_FULL_TOTAL).increment(refused.len() as u64);
            for op in refused {
                op.fail(Error::Full(why.clone()));
            }
            ops = kept;
        }
        if ops.is_empty() {
            continue;
        }
        let publishes = ops
            .iter()
            .filter(|op| matches!(op, Op::Publish { .. }))
            .count();
        let started = Instant::now();
        let done = writer
            .run(move |conn| {
                let result = transaction(conn, &ops, max_receive_count);
                (ops, result)
            })
            .await;
        let Ok((ops, result)) = done else {
            // The thread is gone; the callers see their senders dropped.
            return;
        };
        if publishes > 0 {
            metrics::histogram!(crate::metric::QUEUE_COMMIT_BATCH_SIZE).record(publishes as f64);
            metrics::histogram!(crate::metric::QUEUE_COMMIT_DURATION_SECONDS)
                .record(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(outcomes) => {
                if publishes > 0 {
                    size.added(incoming);
                }
                if answer(ops, outcomes, max_receive_count) {
                    notify.notify_waiters();
                }
            }
            Err(e) => {
                tracing::error!(message = "Failed to commit queue writes.", error = %e, count = ops.len(), publishes);
                for op in ops {
                    op.fail(Error::Unavailable(e.to_string()));
                }
            }
        }
    }
}

/// Answers every caller of a committed transaction; true when something became visible
/// (a long poll should look again).
pub(super) fn answer(ops: Vec<Op>, outcomes: Vec<Outcome>, max_receive_count: u32) -> bool {
    let now = now_ms();
    let mut wake = false;
    for (op, outcome) in ops.into_iter().zip(outcomes) {
        match (op, outcome) {
            (Op::Publish { done, .. }, Outcome::Published) => {
                wake = true;
                let _ = done.send(Ok(()));
            }
            (Op::Claim { done, .. }, Outcome::Claimed { deliveries, dead }) => {
                if dead > 0 {
                    metrics::counter!(crate::metric::QUEUE_DEAD_LETTERED_TOTAL).increment(dead);
                    tracing::warn!(
                        message = "Moved messages to the dead-letter queue.",
                        count = dead,
                        max_receive_count
                    );
                }
                let _ = done.send(deliveries);
            }
            (Op::Delete { done, .. }, Outcome::Deleted(seqs)) => {
                let _ = done.send(Ok(seqs));
            }
            (
                Op::SetVisible {
                    done, visible_at, ..
                },
                Outcome::Visible,
            ) => {
                wake |= visible_at <= now;
                let _ = done.send(Ok(()));
            }
            (op, _) => op.fail(Error::Unavailable("queue writer mismatch".into())),
        }
    }
    wake
}

/// One transaction for every waiting write: acks and visibility changes first, then the
/// publishes, then the claims (which may receive what was just published: it is answered
/// only after the commit, like the publish).
pub(super) fn transaction(
    conn: &mut Connection,
    ops: &[Op],
    max_receive_count: u32,
) -> rusqlite::Result<Vec<Outcome>> {
    let now = now_ms();
    crate::sqlite::immediate(conn, |tx| writes(tx, ops, now, max_receive_count))
}

/// The statements of [`transaction`], inside it.
fn writes(
    tx: &Connection,
    ops: &[Op],
    now: i64,
    max_receive_count: u32,
) -> rusqlite::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(match op {
            Op::Delete {
                queue, receipts, ..
            } => {
                let mut deleted = HashSet::with_capacity(receipts.len());
                let mut stmt = tx.prepare_cached(DELETE_RECEIVED)?;
                for (seq, token) in receipts {
                    if stmt.execute(params![queue_label(*queue), token, seq])? == 1 {
                        deleted.insert(*seq);
                    }
                }
                Some(Outcome::Deleted(deleted))
            }
            Op::SetVisible {
                queue,
                receipts,
                visible_at,
                ..
            } => {
                let mut stmt = tx.prepare_cached(SET_VISIBLE)?;
                for (seq, token) in receipts {
                    stmt.execute(params![visible_at, queue_label(*queue), token, seq])?;
                }
                Some(Outcome::Visible)
            }
            Op::Publish { .. } | Op::Claim { .. } => None,
        });
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at)
             VALUES (?1, 'main', ?2, ?3, ?4, ?4)",
        )?;
        for (op, outcome) in ops.iter().zip(outcomes.iter_mut()) {
            if let Op::Publish {
                message_id,
                body,
                attributes,
                ..
            } = op
            {
                insert.execute(params![message_id, body, attributes, now])?;
                *outcome = Some(Outcome::Published);
            }
        }
    }
    for (op, outcome) in ops.iter().zip(outcomes.iter_mut()) {
        if let Op::Claim {
            queue,
            max,
            visibility,
            ..
        } = op
        {
            *outcome = Some(claim(
                tx,
                *queue,
                *max,
                *visibility,
                now,
                max_receive_count,
            )?);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every write has an outcome"))
        .collect())
}

/// Claims up to `max` visible messages of `queue` inside the writer's transaction; on the
/// main queue, the exhausted among the candidates move to the DLQ instead, as SQS does on the
/// receive that would exceed maxReceiveCount (never received a time too many).
pub(super) fn claim(
    conn: &Connection,
    queue: QueueName,
    max: usize,
    visibility: Duration,
    now: i64,
    max_receive_count: u32,
) -> rusqlite::Result<Outcome> {
    let token = Uuid::new_v4().simple().to_string();
    let invisible_until = now.saturating_add(millis(visibility));
    let receive_limit = match queue {
        QueueName::Main => max_receive_count,
        QueueName::Dlq => u32::MAX,
    };
    // Every candidate read is claimed or moved to the DLQ, so each round reads an index
    // range bounded by the batch (`messages_ready`, in visibility order): a receive costs the
    // same with ten messages waiting or a million (tests/it/queue/sqlite.rs checks the plan). A
    // round that moved some reads again, so exhausted messages at the head do not make the
    // receive come back short while live ones wait behind them; not with a visibility timeout
    // of 0, whose claimed messages are still candidates (never twice in one receive).
    let mut candidates = conn.prepare_cached(&claim_candidates(max))?;
    let mut claim_one = conn.prepare_cached(CLAIM_ONE)?;
    let mut deliveries = Vec::with_capacity(max);
    let mut corrupt = None;
    let mut dead = 0u64;
    loop {
        let want = max - deliveries.len();
        let mut read = 0;
        let mut exhausted = Vec::new();
        let mut rows = candidates.query(params![queue_label(queue), now])?;
        let mut claimed = Vec::with_capacity(want);
        while let Some(row) = rows.next()? {
            read += 1;
            let seq: i64 = row.get(0)?;
            let receive_count: u32 = row.get::<_, i64>(5)?.try_into().unwrap_or(u32::MAX);
            if receive_count >= receive_limit {
                exhausted.push(seq);
            } else if claimed.len() < want {
                claimed.push((seq, row_to_delivery(row, Some(&token))));
            }
        }
        drop(rows);
        if !exhausted.is_empty() {
            let mut dead_letter = conn.prepare_cached(DEAD_LETTER_ONE)?;
            for seq in &exhausted {
                dead += dead_letter.execute(params![now, seq])? as u64;
            }
        }
        for (seq, delivery) in claimed {
            claim_one.execute(params![invisible_until, token, seq])?;
            match delivery {
                Ok(mut delivery) => {
                    delivery.receive_count = delivery.receive_count.saturating_add(1);
                    deliveries.push(delivery);
                }
                Err(e) => corrupt = Some(e),
            }
        }
        let again = !exhausted.is_empty() && read == max && invisible_until > now;
        if !again || deliveries.len() >= max || corrupt.is_some() {
            break;
        }
    }
    let deliveries = match corrupt {
        Some(e) => Err(unavailable(e)),
        None => {
            deliveries.sort_by(|a, b| a.receipt.cmp(&b.receipt));
            Ok(deliveries)
        }
    };
    Ok(Outcome::Claimed { deliveries, dead })
}
