//! Least privilege, proven rather than reviewed: every principal the Terraform defines runs
//! the real binary (or, for the Lambda, the real handler with the event source mapping's SQS
//! calls) with keys of an IAM user holding exactly the actions its policy document grants,
//! against a moto server that enforces IAM. The actions are read from the `.tf` files by
//! `scripts/iam_actions.py` (`LATAMCTL_TEST_IAM_ACTIONS`), so a grant removed from the
//! Terraform, or a new AWS call in the code, fails here.
//!
//! What moto checks: the signature, and that an Allow names the action. What it does not:
//! resource ARNs (every user gets `"Resource": "*"`; ARN scoping is checked statically by
//! scripts/check_hcl.py), conditions (`kms:ViaService`), KMS itself (nothing is encrypted
//! here), resource policies. See "What the emulators cannot prove" in docs/cloud.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::Credentials;
use latamctl::aws::AwsClients;
use latamctl::bus::sns::SnsPublisher;
use latamctl::bus::sqs::SqsQueue;
use latamctl::bus::{Publisher, Queue};
use serde_json::{Value, json};
use uuid::Uuid;

use super::cloud::{Moto, queue_counts};
use super::store::fresh_database;
use super::support::{self, Serve, client, post};

#[derive(Clone, Debug)]
struct Keys {
    id: String,
    secret: String,
}

/// The IAM-enforcing moto server and its admin.
struct IamMoto {
    url: String,
    admin: Keys,
    python: String,
}

impl IamMoto {
    fn new() -> Option<IamMoto> {
        let url = support::service("LATAMCTL_TEST_MOTO_IAM_URL")?;
        let admin: Value = serde_json::from_str(
            &std::env::var("LATAMCTL_TEST_MOTO_IAM_ADMIN").expect("LATAMCTL_TEST_MOTO_IAM_ADMIN"),
        )
        .unwrap();
        Some(IamMoto {
            url,
            admin: Keys {
                id: admin["id"].as_str().unwrap().to_owned(),
                secret: admin["secret"].as_str().unwrap().to_owned(),
            },
            python: std::env::var("LATAMCTL_TEST_MOTO_PYTHON").expect("LATAMCTL_TEST_MOTO_PYTHON"),
        })
    }

    /// A new IAM user allowed exactly `actions` (already translated for the emulator).
    fn user(&self, hint: &str, actions: &[String]) -> Keys {
        let name = format!("{hint}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let out = std::process::Command::new(&self.python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto_iam.py"))
            .args(["user", &self.url, &self.admin.id, &self.admin.secret, &name])
            .args(actions)
            .output()
            .expect("run scripts/moto_iam.py");
        assert!(
            out.status.success(),
            "moto_iam.py user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Keys {
            id: v["id"].as_str().unwrap().to_owned(),
            secret: v["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Clients signing with `keys`.
    async fn clients(&self, keys: &Keys) -> AwsClients {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(
                &keys.id,
                &keys.secret,
                None,
                None,
                "iam-test",
            ))
            .load()
            .await;
        AwsClients {
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
        }
    }

    /// The environment of a `latamctl` process signing with `keys`.
    fn env(&self, keys: &Keys) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", keys.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", keys.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("KUBECONFIG", "/nonexistent".into()),
        ]
    }

    /// Topic, queue, DLQ and raw subscription, made by the admin.
    async fn pipeline(&self) -> Moto {
        Moto::create(self.url.clone(), self.clients(&self.admin).await).await
    }
}

/// An RDS-style secret (`{"username", "password"}`) for the database at `url`, made by the
/// admin; returns its ARN.
async fn database_secret(admin: &AwsClients, url: &reqwest::Url) -> String {
    aws_sdk_secretsmanager::Client::new(&admin.sdk)
        .create_secret()
        .name(format!("db-{}", Uuid::new_v4().simple()))
        .secret_string(json!({"username": url.username(), "password": "unused"}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// The actions the Terraform grants `principal`.
fn granted(principal: &str) -> Vec<String> {
    let path = std::env::var("LATAMCTL_TEST_IAM_ACTIONS")
        .expect("LATAMCTL_TEST_IAM_ACTIONS (set by scripts/test.sh)");
    let all: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.get(principal)
        .unwrap_or_else(|| panic!("no {principal} in the IAM actions: {all:?}"))
        .clone()
}

/// IAM actions as moto names them. AWS authorizes a batch API by its single-message action
/// (`DeleteMessageBatch` needs `sqs:DeleteMessage`) and CloudWatch as `cloudwatch:*`; moto
/// checks the API's own name and the signing name (`monitoring:`). The translation only adds
/// names for the same grant; it never widens one.
fn emulator_actions(actions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        out.push(a.clone());
        match a.as_str() {
            "sqs:DeleteMessage"
            | "sqs:ChangeMessageVisibility"
            | "sqs:SendMessage"
            | "sns:Publish" => out.push(format!("{a}Batch")),
            _ => {}
        }
        if let Some(rest) = a.strip_prefix("cloudwatch:") {
            out.push(format!("monitoring:{rest}"));
        }
    }
    out
}

fn without(actions: &[String], removed: &str) -> Vec<String> {
    assert!(
        actions.iter().any(|a| a == removed),
        "{removed} not granted"
    );
    actions.iter().filter(|a| *a != removed).cloned().collect()
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn rows(db: &str) -> i64 {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// `serve --role api` with the api user's keys.
fn serve_api(iam: &IamMoto, moto: &Moto, keys: &Keys, db: &str, dir: &std::path::Path) -> Serve {
    let mut env = iam.env(keys);
    env.extend([
        ("LATAMCTL_BUS", "aws".to_owned()),
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("LATAMCTL_DATABASE_URL", db.to_owned()),
        ("LATAMCTL_AWS_TOPIC_ARN", moto.topic_arn.clone()),
        ("LATAMCTL_API_READINESS_INTERVAL", "300ms".to_owned()),
    ]);
    Serve::start(
        &[
            "--role",
            "api",
            "--data-dir",
            dir.join("d").to_str().unwrap(),
        ],
        &refs(&env),
        dir,
    )
}

/// The api role (`sns:Publish` and the topic key through SNS) becomes ready and accepts
/// POSTs that reach the queue. The same run without `sns:Publish` must fail: this is what
/// proves the test can see a missing grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_role_publishes_with_only_its_terraform_grants() {
    let Some(iam) = IamMoto::new() else { return };
    let Some(db) = fresh_database().await else {
        return;
    };
    let moto = iam.pipeline().await;
    let admin = iam.clients(&iam.admin).await;
    let dir = support::tempdir();
    let http = client();

    let actions = emulator_actions(&granted("api"));
    let serve = serve_api(&iam, &moto, &iam.user("api", &actions), &db, dir.path());
    let (status, body) = serve.readyz(&http).await;
    assert_eq!(
        status,
        200,
        "the api must become ready: {body}\n{}",
        serve.logs()
    );
    for i in 0..5 {
        post(&http, &serve.base, &format!("api role {i}"))
            .await
            .unwrap_or_else(|e| panic!("POST with the api role's grants: {e}\n{}", serve.logs()));
    }
    // 40 at once: more than the publisher's calls in flight, so they share `PublishBatch`
    // calls, which moto authorizes as `sns:PublishBatch` and AWS as `sns:Publish`.
    let texts: Vec<String> = (0..40).map(|i| format!("api role batch {i}")).collect();
    let together =
        futures::future::join_all(texts.iter().map(|text| post(&http, &serve.base, text))).await;
    for outcome in together {
        outcome.unwrap_or_else(|e| {
            panic!(
                "concurrent POST with the api role's grants: {e}\n{}",
                serve.logs()
            )
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue_counts(&admin, &moto.queue_url).await.0 < 45 {
        assert!(
            Instant::now() < deadline,
            "the 45 messages never reached SQS"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(serve);

    // Mutation: the same role without sns:Publish.
    let mutated = emulator_actions(&without(&granted("api"), "sns:Publish"));
    let serve = serve_api(
        &iam,
        &moto,
        &iam.user("api-mutant", &mutated),
        &db,
        dir.path(),
    );
    let refused = post(&http, &serve.base, "must be refused").await;
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("503")),
        "without sns:Publish a POST must fail with 503, got {refused:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = serve.readyz(&http).await;
        if status == 503 {
            assert_eq!(body["checks"]["publisher"], "unavailable", "{body}");
            assert!(
                !body.to_string().contains("not authorized"),
                "leaks: {body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness ignored the refused publish: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        serve.logs().contains("not authorized") || serve.logs().contains("AccessDenied"),
        "the log names the refusal:\n{}",
        serve.logs()
    );
}

/// The worker role stores and acknowledges: rows in PostgreSQL, the queue and DLQ empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_role_stores_and_acks_with_only_its_terraform_grants() {
    let Some(iam) = IamMoto::new() else { return };
    let Some(db) = fresh_database().await else {
        return;
    };
    let moto = iam.pipeline().await;
    let admin = iam.clients(&iam.admin).await;
    let publisher = SnsPublisher::new(&admin, &moto.topic_arn, 3);
    for i in 0..5 {
        publisher
            .publish(&latamctl::bus::OutboundMessage {
                transaction_id: Uuid::now_v7(),
                topic: "data-ingestion-topic".into(),
                message: format!("worker role {i}"),
                attributes: Default::default(),
                received_at: chrono::Utc::now(),
                traceparent: None,
            })
            .await
            .unwrap();
    }
    // A poison message: the worker backs it off with ChangeMessageVisibility until the
    // queue's redrive moves it to the DLQ.
    admin
        .sqs
        .send_message()
        .queue_url(&moto.queue_url)
        .message_body("poison: not a latamctl message")
        .send()
        .await
        .unwrap();
    // The database credentials from Secrets Manager, as the worker role is granted.
    let url = reqwest::Url::parse(&db).unwrap();
    let secret_arn = database_secret(&admin, &url).await;
    let dir = support::tempdir();
    let keys = iam.user("worker", &emulator_actions(&granted("worker")));
    let mut env = iam.env(&keys);
    env.extend([
        ("LATAMCTL_BUS", "aws".to_owned()),
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("LATAMCTL_DATABASE_HOST", url.host_str().unwrap().to_owned()),
        ("LATAMCTL_DATABASE_PORT", url.port().unwrap().to_string()),
        (
            "LATAMCTL_DATABASE_NAME",
            url.path().trim_start_matches('/').to_owned(),
        ),
        ("LATAMCTL_DATABASE_SECRET_ARN", secret_arn),
        ("LATAMCTL_DATABASE_SSL_MODE", "disable".to_owned()),
        ("LATAMCTL_WORKER_VISIBILITY_TIMEOUT", "1s".to_owned()),
        ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "0s".to_owned()),
        ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "0s".to_owned()),
        ("LATAMCTL_AWS_QUEUE_URL", moto.queue_url.clone()),
        ("LATAMCTL_AWS_DLQ_URL", moto.dlq_url.clone()),
        ("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()),
        ("LATAMCTL_API_READINESS_INTERVAL", "300ms".to_owned()),
    ]);
    let serve = Serve::start(
        &[
            "--role",
            "worker",
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
        ],
        &refs(&env),
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = rows(&db).await;
        let main = queue_counts(&admin, &moto.queue_url).await;
        if stored == 5 && main == (0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stored {stored} of 5, queue (visible, in flight) {main:?}:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue_counts(&admin, &moto.dlq_url).await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the DLQ:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, body) = serve.readyz(&client()).await;
    assert_eq!(status, 200, "{body}");
    for refusal in ["not authorized", "AccessDenied"] {
        assert!(!serve.logs().contains(refusal), "{}", serve.logs());
    }
}

/// The Lambda role: what the event source mapping does with it (receive, then delete what
/// the handler did not report failed) and what the handler does (read the database secret,
/// store the batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_role_consumes_a_batch_with_only_its_terraform_grants() {
    let Some(iam) = IamMoto::new() else { return };
    let Some(db) = fresh_database().await else {
        return;
    };
    let moto = iam.pipeline().await;
    let admin = iam.clients(&iam.admin).await;
    let url = reqwest::Url::parse(&db).unwrap();
    let secret_arn = database_secret(&admin, &url).await;
    let publisher = SnsPublisher::new(&admin, &moto.topic_arn, 3);
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = latamctl::bus::OutboundMessage {
            transaction_id: Uuid::now_v7(),
            topic: "data-ingestion-topic".into(),
            message: format!("lambda role {i}"),
            attributes: Default::default(),
            received_at: chrono::Utc::now(),
            traceparent: None,
        };
        ids.push(m.transaction_id);
        publisher.publish(&m).await.unwrap();
    }

    let keys = iam.user("lambda", &emulator_actions(&granted("lambda")));
    // The handler reads the secret through the default chain, as in Lambda.
    for (k, v) in iam.env(&keys) {
        // SAFETY: nextest runs each test in its own process; nothing else reads these.
        unsafe { std::env::set_var(k, v) };
    }
    let store = latamctl::store::postgres::PostgresStore::connect(
        &latamctl::config::DatabaseConfig {
            host: url.host_str().map(str::to_owned),
            port: url.port().unwrap(),
            name: Some(url.path().trim_start_matches('/').to_owned()),
            secret_arn: Some(secret_arn),
            ssl_mode: "disable".into(),
            ..Default::default()
        },
        &latamctl::config::AwsConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(iam.url.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("the Lambda role reads the database secret");
    store.apply_migrations().await.unwrap();

    // The event source mapping, with the function's role.
    let lambda = iam.clients(&keys).await;
    let queue = SqsQueue::new(&lambda, &moto.queue_url, None);
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "received {} of 5",
            received.len()
        );
        received.extend(
            queue
                .receive(10, Duration::from_secs(1), Duration::from_secs(30))
                .await
                .expect("sqs:ReceiveMessage with the Lambda role"),
        );
    }
    let event = super::lambda::event_of(&received);
    let response = latamctl::lambda::handle(&store, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let done: Vec<&latamctl::bus::Delivery> = received.iter().collect();
    let report = queue
        .ack(&done)
        .await
        .expect("sqs:DeleteMessage with the Lambda role");
    assert_eq!(report.acked, 5, "{report:?}");
    assert_eq!(rows(&db).await, 5);
    assert_eq!(queue_counts(&admin, &moto.queue_url).await, (0, 0));
}

/// The operator policy runs `provision`, `status`, `drain --peek`, `drain --redrive` and
/// `provision --destroy`: each exits without an authorization failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_policy_runs_provision_status_drain_and_destroy() {
    let Some(iam) = IamMoto::new() else { return };
    let dir = support::tempdir();
    let name = format!("op{}", &Uuid::new_v4().simple().to_string()[..8]);
    // No `bus` yet: the file `provision --write-config` writes must select SNS/SQS for the
    // commands after it (the cloud path in docs/cloud.md).
    std::fs::write(
        dir.path().join("latamctl.toml"),
        format!("name = \"{name}\"\nenvironment = \"test\"\n"),
    )
    .unwrap();
    let keys = iam.user("operator", &emulator_actions(&granted("operator")));
    let env = iam.env(&keys);
    let envs = refs(&env);
    let run = |args: &[&str]| support::run(args, &envs, dir.path());
    let no_refusal = |what: &str, out: &str, err: &str| {
        for word in ["not authorized", "AccessDenied", "AuthorizationError"] {
            assert!(
                !out.contains(word) && !err.contains(word),
                "{what} was refused a permission:\n{out}\n{err}"
            );
        }
    };

    let (code, out, err) = run(&["provision", "--write-config", "latamctl.toml", "-o", "json"]);
    no_refusal("provision", &out, &err);
    assert_eq!(code, 0, "provision: {err}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    let written = std::fs::read_to_string(dir.path().join("latamctl.toml")).unwrap();
    assert!(
        written.contains("bus = \"aws\"") && written.contains(&format!("name = \"{name}\"")),
        "{written}"
    );
    let (code, _, err) = run(&["provision", "--dry-run"]);
    no_refusal("provision --dry-run", "", &err);
    assert_eq!(code, 0, "a second plan finds nothing to do: {err}");

    // A message in the DLQ, put there by the admin, for drain to find.
    let admin = iam.clients(&iam.admin).await;
    let dlq_url = applied["outputs"]["dlq_url"].as_str().unwrap();
    let body = "dead-lettered";
    admin
        .sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(body)
        .send()
        .await
        .unwrap();

    let (code, out, err) = run(&["status", "--no-kubernetes", "-o", "json"]);
    no_refusal("status", &out, &err);
    let status: Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("status: {out}\n{err}"));
    let failing: Vec<&Value> = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "fail")
        .collect();
    assert!(failing.is_empty(), "status checks failing: {failing:?}");
    assert!(code <= 1, "status: {err}");

    let (code, out, err) = run(&["drain", "--queue", "dlq", "--peek", "-o", "json"]);
    no_refusal("drain --peek", &out, &err);
    assert_eq!(code, 0, "drain --peek: {err}");
    assert!(out.contains(body), "{out}");
    let (code, out, err) = run(&["drain", "--queue", "dlq", "--redrive", "-o", "json"]);
    no_refusal("drain --redrive", &out, &err);
    assert_eq!(code, 0, "drain --redrive: {err}");
    let queue_url = applied["outputs"]["queue_url"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue_counts(&admin, queue_url).await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "the redriven message never reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (code, out, err) = run(&["provision", "--destroy", "--yes", "-o", "json"]);
    no_refusal("provision --destroy", &out, &err);
    assert_eq!(code, 0, "provision --destroy: {err}");
}

/// The IAM table in docs/cloud.md lists exactly what the Terraform grants, principal by principal.
#[test]
fn the_readme_lists_every_granted_action() {
    if support::service("LATAMCTL_TEST_IAM_ACTIONS").is_none() {
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cloud.md")).unwrap();
    let table = readme
        .split("<!-- iam-actions:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- iam-actions:end -->").next())
        .expect("docs/cloud.md has an iam-actions table");
    let mut documented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        documented
            .entry(cells[1].to_owned())
            .or_default()
            .push(cells[2].trim_matches('`').to_owned());
    }
    for principal in ["api", "worker", "lambda", "operator"] {
        let mut want = granted(principal);
        want.sort();
        let mut got = documented.remove(principal).unwrap_or_default();
        got.sort();
        assert_eq!(
            got, want,
            "the IAM table in docs/cloud.md for {principal} differs from the Terraform"
        );
    }
    assert!(
        documented.is_empty(),
        "docs/cloud.md documents unknown principals: {documented:?}"
    );
}

/// Every AWS action the code names (`classify("eks:ListAddons", …)`, the error it reports)
/// is granted to some principal by the Terraform: a call added to `status` without its grant
/// fails here instead of in production, where it reads as AccessDenied.
#[test]
fn every_action_the_code_calls_is_granted_by_the_terraform() {
    if support::service("LATAMCTL_TEST_IAM_ACTIONS").is_none() {
        return;
    }
    let mut granted_any: std::collections::BTreeSet<String> = Default::default();
    for principal in ["api", "worker", "lambda", "operator"] {
        granted_any.extend(granted(principal));
    }
    let mut named = std::collections::BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                let Some((service, action)) = piece.split_once(':') else {
                    continue;
                };
                if [
                    "sns",
                    "sqs",
                    "rds",
                    "eks",
                    "cloudwatch",
                    "secretsmanager",
                    "kms",
                ]
                .contains(&service)
                    && action.starts_with(|c: char| c.is_ascii_uppercase())
                    && action.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    // AWS authorizes a batch API by its single-message action.
                    let action = match action {
                        "DeleteMessageBatch" => "DeleteMessage",
                        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                        "SendMessageBatch" => "SendMessage",
                        "PublishBatch" => "Publish",
                        a => a,
                    };
                    named.insert(format!("{service}:{action}"));
                }
            }
        }
    }
    assert!(
        named.len() > 20,
        "the scan found too few actions: {named:?}"
    );
    let missing: Vec<&String> = named.difference(&granted_any).collect();
    assert!(
        missing.is_empty(),
        "the code calls actions no principal is granted in terraform/modules/iam: {missing:?}"
    );
}
