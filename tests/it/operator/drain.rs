//! `drain` on the embedded queue: peek, write to a file and delete, redrive, and bad usage.

use super::*;

#[tokio::test]
async fn drain_on_the_embedded_queue_peeks_writes_deletes_and_redrives() {
    use latamctl::bus::embedded::EmbeddedQueue;
    use latamctl::bus::{Publisher, Queue, QueueAdmin, QueueName};
    use latamctl::config::QueueConfig;

    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let q = EmbeddedQueue::open(
        &data,
        &QueueConfig {
            max_receive_count: 1,
            ..QueueConfig::default()
        },
    )
    .await
    .unwrap();
    for i in 0..3 {
        q.publish(&super::queue::message(&format!("dead {i}")))
            .await
            .unwrap();
    }
    // One receive without ack, then the next receive moves all three to the DLQ.
    let got = q
        .receive(10, Duration::ZERO, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        q.receive(10, Duration::ZERO, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(q.stats().await.unwrap().dead_letter, 3);
    drop(q);

    let d = data.to_str().unwrap();
    let run = |args: &[&str]| support::run(args, &[], dir.path());

    // A config that names an SQS queue but selects the embedded bus: the error says so.
    let cloudish = dir.path().join("cloud.toml");
    std::fs::write(
        &cloudish,
        "[aws]\nregion = \"us-east-1\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&[
        "--config",
        cloudish.to_str().unwrap(),
        "drain",
        "--queue",
        "dlq",
        "--peek",
        "--data-dir",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--bus aws") && err.contains("bus = \"aws\""),
        "the hint must point at the cloud bus: {err}"
    );
    let (code, out, err) = run(&[
        "drain",
        "--queue",
        "dlq",
        "--peek",
        "--data-dir",
        d,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["drained"], 3);
    // Backend flags go before the subcommand too, like --config.
    let (code, out, err) = run(&[
        "--data-dir",
        d,
        "--bus",
        "embedded",
        "drain",
        "--queue",
        "dlq",
        "--peek",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["drained"], 3);
    let (code, out, _) = run(&["drain", "--queue", "dlq", "--peek", "--data-dir", d]);
    assert_eq!(code, 0);
    assert!(
        out.contains("dead 0") && out.contains("TRANSACTION ID"),
        "{out}"
    );

    // Delete one into a file, redrive the other two.
    let file = dir.path().join("out.jsonl");
    let (code, out, err) = run(&[
        "drain",
        "--queue",
        "dlq",
        "--max",
        "1",
        "--out",
        file.to_str().unwrap(),
        "--data-dir",
        d,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["drained"], 1);
    let line: Value = serde_json::from_str(std::fs::read_to_string(&file).unwrap().trim()).unwrap();
    assert!(line["transaction_id"].is_string());
    let (code, out, err) = run(&[
        "drain",
        "--queue",
        "dlq",
        "--redrive",
        "--data-dir",
        d,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["redriven"], 2);

    let q = EmbeddedQueue::open(&data, &QueueConfig::default())
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.dead_letter), (2, 0));
    let back = q
        .receive_from(QueueName::Main, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].receive_count, 1, "redrive resets the receive count");

    // Bad usage: a clear error and exit 2.
    let (code, _, err) = run(&["drain", "--queue", "main", "--redrive", "--data-dir", d]);
    assert_eq!(code, 2);
    assert!(err.contains("--queue dlq"), "{err}");
    let (code, _, err) = run(&["drain", "--data-dir", "/nonexistent/dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("--data-dir"), "{err}");
}
