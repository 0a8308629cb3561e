//! `latamctl drain`: peek at, delete, or redrive messages of the queue or its DLQ — on the
//! embedded queue (`--data-dir`) or on SQS, with the same flags.
//!
//! Nothing is lost on failure: with `--out`, messages are written and fsynced before they
//! are deleted; a redrive deletes from the DLQ only what the main queue accepted.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{Context, Exit};
use crate::bus::{Delivery, QueueAdmin, QueueName};
use crate::compose;
use crate::config::Overrides;
use crate::output;

/// How long drained messages stay hidden while being written and deleted.
const DRAIN_VISIBILITY: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Which queue: the main queue or its dead-letter queue.
    #[arg(long, value_enum, default_value = "dlq")]
    pub queue: QueueName,
    /// Read and put back; delete nothing.
    #[arg(long, conflicts_with = "redrive")]
    pub peek: bool,
    /// Move DLQ messages back to the main queue (only with --queue dlq).
    #[arg(long)]
    pub redrive: bool,
    /// Most messages to handle.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max: usize,
    /// Append drained messages to this JSON Lines file, fsynced before anything is deleted.
    /// When deleting without it, latamctl-drained-<queue>-<time>.jsonl in the current
    /// directory keeps a copy: a drain never destroys the only copy of a message.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
}

/// One drained message as printed and written.
#[derive(Debug, Serialize)]
pub struct DrainedMessage {
    pub message_id: String,
    pub receive_count: u32,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    pub transaction_id: Option<String>,
    pub decode_error: Option<String>,
    pub body: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl From<&Delivery> for DrainedMessage {
    fn from(d: &Delivery) -> Self {
        let decoded = d.decode();
        Self {
            message_id: d.message_id.clone(),
            receive_count: d.receive_count,
            sent_at: d.sent_at,
            transaction_id: decoded.as_ref().ok().map(|r| r.transaction_id.to_string()),
            decode_error: decoded.err().map(|e| e.to_string()),
            body: d.body.clone(),
            attributes: d.attributes.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Summary {
    queue: QueueName,
    source: String,
    mode: &'static str,
    drained: usize,
    redriven: u64,
    failed: usize,
    out: Option<String>,
    /// How long the queue took to answer the receives (not the copy or the deletes): what
    /// the depth of the queue would show in.
    receives: ReceiveTiming,
    messages: Vec<DrainedMessage>,
}

#[derive(Debug, Default, Serialize)]
struct ReceiveTiming {
    calls: usize,
    total_ms: f64,
    slowest_ms: f64,
}

impl ReceiveTiming {
    fn add(&mut self, took: std::time::Duration) {
        let ms = took.as_secs_f64() * 1e3;
        self.calls += 1;
        self.total_ms += ms;
        self.slowest_ms = self.slowest_ms.max(ms);
    }
}

pub async fn run(ctx: &Context, args: DrainArgs) -> anyhow::Result<Exit> {
    if args.redrive && args.queue != QueueName::Dlq {
        anyhow::bail!("--redrive moves messages from the DLQ: use it with --queue dlq");
    }
    if args.max == 0 {
        anyhow::bail!("--max must be at least 1");
    }
    let (config, _) = ctx.load(&Overrides::default())?;
    let admin = compose::existing_queue(&config, None)
        .await?
        .ok_or_else(|| anyhow::anyhow!(compose::missing_queue_hint(&config)))?
        .admin;
    let source = admin.describe(args.queue);

    let bar = indicatif::ProgressBar::new(args.max as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

    let deleting = !args.peek && !args.redrive;
    let out = match (&args.out, deleting) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => {
            let path = PathBuf::from(format!(
                "latamctl-drained-{}-{}.jsonl",
                match args.queue {
                    QueueName::Main => "main",
                    QueueName::Dlq => "dlq",
                },
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            eprintln!(
                "deleting drained messages; a copy goes to {} (--out FILE to choose, --peek to delete nothing)",
                path.display()
            );
            Some(path)
        }
        (None, false) => None,
    };

    let mut summary = Summary {
        queue: args.queue,
        source,
        mode: if args.redrive {
            "redrive"
        } else if args.peek {
            "peek"
        } else {
            "delete"
        },
        drained: 0,
        redriven: 0,
        failed: 0,
        out: out.as_ref().map(|p| p.display().to_string()),
        receives: ReceiveTiming::default(),
        messages: Vec::new(),
    };

    if args.redrive {
        bar.set_message("redriving DLQ → main");
        summary.redriven = redrive(admin.as_ref(), args.max, &bar).await?;
    } else {
        bar.set_message(if args.peek { "peeking" } else { "draining" });
        drain(admin, &args, out.as_deref(), &bar, &mut summary).await?;
    }
    bar.finish_and_clear();

    let failed = summary.failed;
    output::print(ctx.global.output, &summary, || table(&summary))?;
    eprintln!(
        "{}: {} drained, {} redriven, {} failed{}",
        summary.mode,
        summary.drained,
        summary.redriven,
        summary.failed,
        summary
            .out
            .as_deref()
            .map(|p| format!("; written to {p}"))
            .unwrap_or_default()
    );
    Ok(if failed > 0 {
        Exit::Failure
    } else {
        Exit::Success
    })
}

async fn redrive(
    admin: &dyn QueueAdmin,
    max: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let mut moved = 0u64;
    while (moved as usize) < max {
        let n = admin.redrive((max - moved as usize).min(10)).await?;
        if n == 0 {
            break;
        }
        moved += n;
        bar.set_position(moved);
    }
    Ok(moved)
}

async fn drain(
    admin: Arc<dyn QueueAdmin>,
    args: &DrainArgs,
    out: Option<&std::path::Path>,
    bar: &indicatif::ProgressBar,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut out = match out {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?,
        ),
        None => None,
    };
    if args.peek
        && let Some(messages) = admin.peek(args.queue, args.max).await?
    {
        // The bus reads without receiving: no receive count spent, nothing hidden.
        let records: Vec<DrainedMessage> = messages.iter().map(DrainedMessage::from).collect();
        if let Some(file) = out.as_mut() {
            write_jsonl(file, &records)?;
        }
        summary.drained = records.len();
        bar.set_position(summary.drained as u64);
        summary.messages = records;
        return Ok(());
    }
    let mut seen = HashSet::new();
    // Peeked messages stay hidden until the end, so the loop does not read them twice.
    let mut held: Vec<Delivery> = Vec::new();
    while summary.drained < args.max {
        let want = (args.max - summary.drained).min(admin.max_receive());
        let started = std::time::Instant::now();
        let batch = admin
            .receive_from(args.queue, want, DRAIN_VISIBILITY)
            .await?;
        summary.receives.add(started.elapsed());
        if batch.is_empty() {
            break;
        }
        let fresh: Vec<Delivery> = batch
            .into_iter()
            .filter(|d| seen.insert(d.message_id.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let records: Vec<DrainedMessage> = fresh.iter().map(DrainedMessage::from).collect();
        if let Some(file) = out.as_mut() {
            write_jsonl(file, &records)?;
        }
        summary.drained += fresh.len();
        bar.set_position(summary.drained as u64);
        if args.peek {
            held.extend(fresh);
        } else {
            let refs: Vec<&Delivery> = fresh.iter().collect();
            let report = admin.delete_from(args.queue, &refs).await?;
            for (id, reason) in &report.failed {
                tracing::warn!(message = "Failed to delete a drained message; it stays in the queue.", message_id = %id, %reason);
            }
            summary.failed += report.failed.len();
        }
        summary.messages.extend(records);
    }
    if !held.is_empty() {
        let refs: Vec<&Delivery> = held.iter().collect();
        admin.release_to(args.queue, &refs).await?;
    }
    Ok(())
}

/// Appends the messages as JSON Lines and syncs: the copy is on disk before anything is
/// deleted.
fn write_jsonl(file: &mut std::fs::File, records: &[DrainedMessage]) -> anyhow::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *file, r)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    file.sync_all()?;
    Ok(())
}

fn table(summary: &Summary) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "MESSAGE ID",
        "RECEIVES",
        "SENT AT",
        "TRANSACTION ID",
        "BODY",
    ]);
    for m in &summary.messages {
        let mut body: String = m.body.chars().take(48).collect();
        if m.body.chars().count() > 48 {
            body.push('…');
        }
        b.push_record([
            m.message_id.clone(),
            m.receive_count.to_string(),
            m.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            m.transaction_id
                .clone()
                .or_else(|| m.decode_error.as_ref().map(|e| format!("undecodable: {e}")))
                .unwrap_or_default(),
            body,
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::sharp());
    let mut text = format!("{} ({})\n", summary.source, summary.mode);
    if summary.messages.is_empty() {
        if summary.mode != "redrive" {
            text.push_str("no messages\n");
        }
    } else {
        text.push_str(&t.to_string());
    }
    text
}
