//! The operator's day on moto and PostgreSQL: provision, serve, publish --verify, status, a
//! poison message, drain/redrive, the alarms, destroy; and destroy refusing without --yes.

use std::time::Instant;

use super::*;
use crate::store::fresh_database;
use crate::support::Serve;

fn actions(plan: &Value) -> Vec<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_serve_publish_status_drain_destroy() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    let dir = support::tempdir();
    // Unique resource names on the shared moto.
    let name = format!("op{}", &Uuid::new_v4().simple().to_string()[..8]);
    std::fs::write(
        dir.path().join("latamctl.toml"),
        format!(
            "name = \"{name}\"\nenvironment = \"test\"\nbus = \"aws\"\nstore = \"postgres\"\n\n[worker]\nwait_time = \"1s\"\nretry_base_delay = \"0s\"\nretry_max_delay = \"0s\"\n\n# moto answers in tens of milliseconds: not the production latency target.\n[status]\np95_warn = \"5s\"\n"
        ),
    )
    .unwrap();
    let mut env: Vec<(&str, String)> = aws_env(&moto)
        .into_iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
        .collect();
    env.push(("DATABASE_URL", db.clone()));
    env.push(("KUBECONFIG", "/nonexistent".into()));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| support::run(args, &envs, dir.path());

    // Plan on an empty account: everything to create, exit 1.
    let (code, out, err) = run(&[
        "provision",
        "--dry-run",
        "--aws-endpoint-url",
        &moto,
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "{err}");
    let plan = json(&out);
    assert!(actions(&plan).iter().all(|a| a == "create"), "{plan}");

    // Apply, writing the ARNs/URLs into the config serve reads.
    let (code, out, err) = run(&[
        "provision",
        "--aws-endpoint-url",
        &moto,
        "--write-config",
        "latamctl.toml",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let applied = json(&out);
    assert!(
        applied["outputs"]["topic_arn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{name}-test-ingest"))
    );
    let config = std::fs::read_to_string(dir.path().join("latamctl.toml")).unwrap();
    assert!(
        config.contains("queue_url") && config.contains("name = \""),
        "{config}"
    );
    assert!(config.contains("sns_dlq_url"), "{config}");
    // The subscription dead-letters what SNS cannot deliver.
    let clients = super::cloud::moto_clients(&moto).await;
    let subs = clients
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(applied["outputs"]["topic_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let sub_arn = subs.subscriptions()[0].subscription_arn.clone().unwrap();
    let attrs = clients
        .sns
        .get_subscription_attributes()
        .subscription_arn(sub_arn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attrs["RawMessageDelivery"], "true");
    assert!(
        attrs["RedrivePolicy"].contains(&format!("{name}-test-ingest-sns-dlq")),
        "{attrs:?}"
    );

    // Second run: all unchanged; dry-run exit 0.
    let (code, out, err) = run(&["provision", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        actions(&json(&out)).iter().all(|a| a == "unchanged"),
        "{out}"
    );
    let (code, _, err) = run(&["provision", "--dry-run"]);
    assert_eq!(code, 0, "second dry-run must find nothing to do: {err}");

    // serve --bus aws on what provision created.
    let serve = Serve::start(&["--bus", "aws"], &envs, dir.path());
    let (code, out, err) = run(&[
        "publish",
        "--api",
        &serve.base,
        "--count",
        "200",
        "--rate",
        "100",
        "--verify",
        "--verify-timeout",
        "90s",
        "--max-p95",
        "2s",
        "-o",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(code, 0, "{err}\n{report}");
    assert_eq!(report["acked"], 200);
    assert_eq!(report["verified"]["stored"], 200);
    assert_eq!(report["passed"], true);

    let (code, out, err) = run(&[
        "status",
        "--api",
        &serve.base,
        "--window",
        "2s",
        "-o",
        "json",
    ]);
    let status = json(&out);
    assert_eq!(code, 0, "{err}\n{status}");
    assert_eq!(status["overall"], "ok", "{status}");
    let api_check = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "api")
        .unwrap();
    // The publishes were before the window: its figures are of the 2 s after them.
    assert_eq!(api_check["figures"]["window"], "2s", "{api_check}");
    let components: Vec<&str> = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    for c in ["api", "queue", "dlq", "sns topic", "sns dlq", "database"] {
        assert!(components.contains(&c), "status lacks {c}: {components:?}");
    }
    let db_check = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "database")
        .unwrap();
    assert_eq!(db_check["figures"]["records"], "200");

    // A poison message: status warns on the DLQ once it gets there.
    let queue_url = applied["outputs"]["queue_url"].as_str().unwrap();
    clients
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body("poison: not a latamctl message")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let dlq_warned = loop {
        let (code, out, _) = run(&[
            "status",
            "--api",
            &serve.base,
            "--window",
            "0s",
            "-o",
            "json",
        ]);
        let s = json(&out);
        let dlq = s["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == "dlq")
            .unwrap()
            .clone();
        if dlq["state"] == "warn" {
            assert_eq!(code, 1, "a warning must exit 1");
            break dlq;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the DLQ: {s}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(dlq_warned["figures"]["depth"], "1");
    assert!(dlq_warned["hint"].as_str().unwrap().contains("drain"));

    // Stop the worker so the redriven poison stays in the main queue for us to see.
    assert_eq!(serve.terminate(), Some(0));
    let (code, out, err) = run(&["drain", "--queue", "dlq", "--peek", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let peek = json(&out);
    assert_eq!(peek["drained"], 1);
    assert!(peek["messages"][0]["decode_error"].is_string());
    assert!(
        peek["messages"][0]["body"]
            .as_str()
            .unwrap()
            .starts_with("poison")
    );
    let (code, out, err) = run(&["drain", "--queue", "dlq", "--redrive", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["redriven"], 1);
    let (code, out, _) = run(&["drain", "--queue", "dlq", "--peek", "-o", "json"]);
    assert_eq!((code, json(&out)["drained"].clone()), (0, Value::from(0)));
    let out_file = dir.path().join("drained.jsonl");
    let (code, out, err) = run(&[
        "drain",
        "--queue",
        "main",
        "--out",
        out_file.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let drained = json(&out);
    assert_eq!(drained["drained"], 1);
    // The receives are timed apart from the copy and the deletes.
    assert!(
        drained["receives"]["calls"].as_u64().unwrap() >= 1,
        "{drained}"
    );
    assert!(drained["receives"]["slowest_ms"].as_f64().unwrap() > 0.0);
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written.lines().count(), 1);
    assert!(written.contains("poison"));

    // The alarms carry the names the Terraform alarms module gives them (one name per
    // alarm, whichever tool made it).
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&super::cloud::moto_clients(&moto).await.sdk);
    let alarms = || async {
        let mut names: Vec<String> = cloudwatch
            .describe_alarms()
            .alarm_name_prefix(format!("{name}-"))
            .send()
            .await
            .unwrap()
            .metric_alarms
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| a.alarm_name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        alarms().await,
        [
            format!("{name}-test-sqs-dlq-not-empty"),
            format!("{name}-test-sqs-oldest-message-age"),
            format!("{name}-test-sqs-sns-dlq-not-empty"),
        ]
    );

    // Destroy: everything deleted, then everything absent, and no alarm left behind.
    let (code, out, err) = run(&["provision", "--destroy", "--yes", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(actions(&json(&out)).iter().all(|a| a == "delete"), "{out}");
    assert_eq!(alarms().await, Vec::<String>::new(), "{out}");
    // And the emulator holds nothing of this system: no topic, queue or subscription.
    let clients = super::cloud::moto_clients(&moto).await;
    let topics: Vec<String> = clients
        .sns
        .list_topics()
        .send()
        .await
        .unwrap()
        .topics
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.topic_arn)
        .filter(|arn| arn.contains(&format!(":{name}-")))
        .collect();
    assert!(topics.is_empty(), "topics left after destroy: {topics:?}");
    let queues = clients
        .sqs
        .list_queues()
        .queue_name_prefix(format!("{name}-"))
        .send()
        .await
        .unwrap()
        .queue_urls
        .unwrap_or_default();
    assert!(queues.is_empty(), "queues left after destroy: {queues:?}");
    let subscriptions: Vec<String> = clients
        .sns
        .list_subscriptions()
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.topic_arn)
        .filter(|arn| arn.contains(&format!(":{name}-")))
        .collect();
    assert!(
        subscriptions.is_empty(),
        "subscriptions left after destroy: {subscriptions:?}"
    );
    let (code, out, err) = run(&["provision", "--destroy", "--yes", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(actions(&json(&out)).iter().all(|a| a == "absent"), "{out}");
}

#[tokio::test]
async fn destroy_without_yes_refuses_when_not_interactive() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let dir = support::tempdir();
    let env = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _, err) = support::run(&["provision", "--destroy"], &envs, dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
}
