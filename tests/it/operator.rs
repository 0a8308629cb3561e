//! The operator's day, against moto and a real PostgreSQL: provision → serve → publish
//! --verify → status → poison → drain/redrive → destroy. Plus drain on the embedded queue.

use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::cloud::aws_env;
use super::store::fresh_database;
use super::support::{self, Serve};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

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

#[tokio::test]
async fn publish_thresholds_fail_with_exit_1_when_the_api_is_down() {
    let dir = support::tempdir();
    let (code, out, err) = support::run(
        &[
            "publish",
            "--api",
            "http://127.0.0.1:1",
            "--count",
            "5",
            "--rate",
            "100",
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    let report = json(&out);
    assert_eq!(report["acked"], 0);
    assert_eq!(report["errors"]["connect"], 5);
    assert_eq!(report["passed"], false);
}

/// RDS and EKS belong to Terraform: `status` reads their state into rows and `provision
/// --dry-run` lists them as `exists`, both through the one reader in `cloud`; an instance
/// or cluster that is not there is a failed row saying so, not an AWS error text.
#[tokio::test]
async fn status_and_provision_read_rds_and_eks() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let sdk = super::cloud::moto_sdk(&moto).await;
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let (db, cluster) = (format!("db{suffix}"), format!("eks{suffix}"));
    aws_sdk_rds::Client::new(&sdk)
        .create_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("app")
        .master_user_password("not-a-secret-1")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name(&cluster)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let dir = support::tempdir();
    let env: Vec<(&str, String)> = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = |db: &str, cluster: &str| {
        let config = format!(
            "name = \"rds{suffix}\"\n[aws]\nregion = \"us-east-1\"\nrds_instance_id = \"{db}\"\neks_cluster = \"{cluster}\"\n"
        );
        std::fs::write(dir.path().join("latamctl.toml"), config).unwrap();
        let (_, out, err) = support::run(
            &["status", "-o", "json", "--no-kubernetes", "--window", "0s"],
            &envs,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        let find = |component: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["component"] == component)
                .unwrap_or_else(|| panic!("no {component} row: {report}"))
                .clone()
        };
        (find("rds"), find("eks"))
    };

    let (rds, eks) = rows(&db, &cluster);
    only_what_moto_does_not_serve(
        &rds,
        "the pending maintenance",
        "rds:DescribePendingMaintenanceActions",
    );
    assert_eq!(rds["figures"]["status"], "available");
    assert_eq!(rds["figures"]["engine"], "postgres");
    only_what_moto_does_not_serve(&eks, "the add-ons", "eks:ListAddons");
    assert_eq!(eks["figures"]["status"], "ACTIVE");

    let (code, out, err) =
        support::run(&["provision", "--dry-run", "-o", "json"], &envs, dir.path());
    assert!(code == 0 || code == 1, "{err}");
    let plan = json(&out);
    let row = |resource: &str| {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["resource"] == resource)
            .unwrap_or_else(|| panic!("no {resource} in {plan}"))
            .clone()
    };
    assert_eq!(row("rds instance")["action"], "exists", "{plan}");
    assert_eq!(row("eks cluster")["action"], "exists", "{plan}");
    // Seed 4.2's disk signal: with an instance to watch, provision owns its free-storage
    // alarm as the Terraform alarms module declares it (10 % of 20 GiB is under the 2 GiB floor).
    let storage = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["resource"] == "cloudwatch alarm"
                && c["name"]
                    .as_str()
                    .unwrap()
                    .ends_with("-rds-free-storage-low")
        })
        .unwrap_or_else(|| panic!("no RDS free-storage alarm in {plan}"))
        .clone();
    assert_eq!(storage["action"], "create", "{storage}");
    assert_eq!(storage["desired"]["MetricName"], "FreeStorageSpace");
    assert_eq!(storage["desired"]["Threshold"], (2u64 << 30).to_string());
    assert_eq!(
        storage["desired"]["Dimensions"],
        format!("DBInstanceIdentifier={db}")
    );

    let (rds, eks) = rows("absent-db", "absent-cluster");
    assert_eq!(rds["state"], "fail", "{rds}");
    assert!(rds["hint"].as_str().unwrap().contains("not found"), "{rds}");
    assert_eq!(eks["state"], "fail", "{eks}");
    assert!(eks["hint"].as_str().unwrap().contains("not found"), "{eks}");

    // The kubeconfig context must be this cluster: its server against DescribeCluster's
    // endpoint (the Kubernetes rows themselves fail here: nothing answers at either address).
    let endpoint = aws_sdk_eks::Client::new(&sdk)
        .describe_cluster()
        .name(&cluster)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .endpoint
        .expect("moto gives the cluster an endpoint");
    let eks_row = |server: &str| {
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("latamctl.toml"),
            format!("name = \"rds{suffix}\"\n[aws]\nregion = \"us-east-1\"\neks_cluster = \"{cluster}\"\n[status]\ncheck_timeout = \"2s\"\n"),
        )
        .unwrap();
        let mut with_kube = envs.clone();
        let kubeconfig = kubeconfig.display().to_string();
        with_kube.push(("KUBECONFIG", kubeconfig.as_str()));
        let (_, out, err) = support::run(
            &["status", "-o", "json", "--window", "0s"],
            &with_kube,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == "eks")
            .unwrap_or_else(|| panic!("no eks row: {report}"))
            .clone()
    };
    let same = eks_row(&format!("{}:443/", endpoint.trim_end_matches('/')));
    only_what_moto_does_not_serve(&same, "the add-ons", "eks:ListAddons");
    assert_eq!(same["figures"]["kubeconfig"], "this cluster", "{same}");
    let other = eks_row("https://another-cluster.gr7.us-east-1.eks.amazonaws.com");
    assert_eq!(other["state"], "fail", "{other}");
    assert!(
        other["hint"]
            .as_str()
            .unwrap()
            .contains("pointed at another cluster"),
        "{other}"
    );
}

/// `provision --fleet --dry-run` against moto: a provisioned system is in sync, one that was
/// never provisioned drifts (exit 1), one whose config is missing is an error row (exit 2),
/// and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_fleet_dry_run_reports_the_drift_of_every_system() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let dir = support::tempdir();
    let id = &Uuid::new_v4().simple().to_string()[..8];
    let (synced, drifted) = (format!("fa{id}"), format!("fb{id}"));
    for name in [&synced, &drifted] {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!("name = \"{name}\"\nenvironment = \"test\"\nbus = \"aws\"\n"),
        )
        .unwrap();
    }
    let env: Vec<(&str, String)> = aws_env(&moto)
        .into_iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
        .collect();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| support::run(args, &envs, dir.path());
    let config = format!("{synced}.toml");
    let (code, _, err) = run(&[
        "provision",
        "--config",
        &config,
        "--aws-endpoint-url",
        &moto,
    ]);
    assert_eq!(code, 0, "{err}");

    let fleet = |with_ghost: bool| {
        let mut text = format!(
            "[[system]]\nname = \"{synced}\"\nconfig = \"{synced}.toml\"\n\n[[system]]\nname = \"{drifted}\"\nconfig = \"{drifted}.toml\"\n"
        );
        if with_ghost {
            text.push_str("\n[[system]]\nname = \"ghost\"\nconfig = \"ghost.toml\"\n");
        }
        let path = dir.path().join(format!("fleet-{with_ghost}.toml"));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let file = fleet(false);
    let args = [
        "provision",
        "--fleet",
        &file,
        "--dry-run",
        "--aws-endpoint-url",
        &moto,
        "-o",
        "json",
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "a drifting system makes exit 1: {err}");
    let report = json(&out);
    let rows = report["systems"].as_array().unwrap();
    assert_eq!(rows[0]["system"], drifted.as_str(), "drift first: {report}");
    assert_eq!(rows[0]["state"], "drift");
    assert!(
        rows[0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "create"),
        "{report}"
    );
    assert_eq!(rows[1]["system"], synced.as_str());
    assert_eq!(rows[1]["state"], "in_sync", "{report}");
    assert_eq!(
        report["summary"],
        "2 systems: 1 in_sync, 1 drift, 0 missing, 0 error"
    );
    // The dry run created nothing: the drifting system still drifts.
    let (code, _, _) = run(&args);
    assert_eq!(code, 1);

    let file = fleet(true);
    let (code, out, err) = run(&[
        "provision",
        "--fleet",
        &file,
        "--dry-run",
        "--aws-endpoint-url",
        &moto,
        "-o",
        "json",
    ]);
    assert_eq!(code, 2, "{err}");
    let report = json(&out);
    assert_eq!(report["systems"][0]["system"], "ghost");
    assert_eq!(report["systems"][0]["state"], "error");
    // Without --dry-run, a fleet is refused: provisioning fifty systems is one at a time.
    let (code, _, err) = run(&["provision", "--fleet", &file]);
    assert_eq!(code, 2);
    assert!(err.contains("--dry-run"), "{err}");
}

/// A row whose only complaint is the read moto does not serve (it answers 500 or 404 where
/// AWS answers; tests/it/mocks_status.rs has the AWS answers): on AWS this row is ok.
fn only_what_moto_does_not_serve(row: &Value, what: &str, action: &str) {
    assert_eq!(row["state"], "warn", "{row}");
    let hint = row["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!("cannot read {what}: AWS unavailable: {action}:")),
        "{row}"
    );
    assert_eq!(hint.matches("cannot read").count(), 1, "{row}");
}

/// RDS and EKS in depth on moto: CPU, storage against the allocated size, connections
/// against the class's max_connections (CloudWatch), a nodegroup's status and version skew.
#[tokio::test]
async fn status_reads_rds_and_eks_in_depth() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let sdk = super::cloud::moto_sdk(&moto).await;
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let (db, cluster) = (format!("dd{suffix}"), format!("ed{suffix}"));
    aws_sdk_rds::Client::new(&sdk)
        .create_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("latam")
        .master_user_password("secret-password")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    let eks = aws_sdk_eks::Client::new(&sdk);
    eks.create_cluster()
        .name(&cluster)
        .version("1.30")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    eks.create_nodegroup()
        .cluster_name(&cluster)
        .nodegroup_name("old")
        .version("1.28")
        .node_role("arn:aws:iam::123456789012:role/node")
        .subnets("subnet-1")
        .send()
        .await
        .unwrap();
    let dir = support::tempdir();
    std::fs::write(
        dir.path().join("latamctl.toml"),
        format!("name = \"dd{suffix}\"\n[aws]\nregion = \"us-east-1\"\nrds_instance_id = \"{db}\"\neks_cluster = \"{cluster}\"\n"),
    )
    .unwrap();
    let env: Vec<(&str, String)> = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = || {
        let (code, out, err) = support::run(
            &["status", "-o", "json", "--no-kubernetes", "--window", "0s"],
            &envs,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        let find = |component: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["component"] == component)
                .unwrap_or_else(|| panic!("no {component} row: {report}"))
                .clone()
        };
        (code, find("rds"), find("eks"))
    };

    // No datapoints yet: shown as such, not a failure. The nodegroup two minors behind warns.
    // moto serves neither DescribePendingMaintenanceActions nor the EKS add-on calls (it
    // answers 500/404): the rows say they could not be read, and nothing else is wrong. The
    // answers of the real APIs are in tests/it/mocks_status.rs.
    let (_, rds, eks) = rows();
    only_what_moto_does_not_serve(
        &rds,
        "the pending maintenance",
        "rds:DescribePendingMaintenanceActions",
    );
    assert!(
        eks["hint"]
            .as_str()
            .unwrap()
            .contains("cannot read the add-ons: AWS unavailable: eks:ListAddons"),
        "{eks}"
    );
    assert_eq!(rds["figures"]["cpu"], "no data", "{rds}");
    assert_eq!(eks["figures"]["nodegroups"], "1", "{eks}");
    assert_eq!(eks["figures"]["nodegroup old"], "ACTIVE 1.28", "{eks}");
    assert_eq!(eks["state"], "warn", "{eks}");
    assert!(
        eks["hint"]
            .as_str()
            .unwrap()
            .contains("more than one minor behind"),
        "{eks}"
    );

    // The instance is busy, nearly full and near its connection limit.
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for (metric, value) in [
        ("CPUUtilization", 95.0),
        ("FreeStorageSpace", 1024.0 * 1024.0 * 1024.0),
        ("DatabaseConnections", 100.0),
    ] {
        cw.put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(&db)
                            .build(),
                    )
                    .value(value)
                    .timestamp(aws_smithy_types::DateTime::from(
                        std::time::SystemTime::now(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let (code, rds, _) = rows();
    assert_eq!(code, 2, "{rds}");
    assert_eq!(rds["state"], "fail", "{rds}");
    assert_eq!(rds["figures"]["cpu"], "95%", "{rds}");
    assert_eq!(
        rds["figures"]["storage"], "95% used (1.0 of 20 GiB free)",
        "{rds}"
    );
    assert_eq!(rds["figures"]["connections"], "100/~112", "{rds}");
    let hint = rds["hint"].as_str().unwrap();
    for words in [
        "RDS CPU 95%",
        "RDS storage 95% used",
        "100 connections of ~112",
    ] {
        assert!(hint.contains(words), "{words}: {rds}");
    }
}
