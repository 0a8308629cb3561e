//! The service roles with exactly their Terraform grants: the api publishes (and is refused
//! without `sns:Publish`), the worker stores and acks, the Lambda consumes a batch.

use latamctl::bus::sns::SnsPublisher;
use latamctl::bus::sqs::SqsQueue;
use latamctl::bus::{Publisher, Queue};
use serde_json::json;

use super::*;
use crate::store::fresh_database;
use crate::support::{Serve, client, post};

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

fn without(actions: &[String], removed: &str) -> Vec<String> {
    assert!(
        actions.iter().any(|a| a == removed),
        "{removed} not granted"
    );
    actions.iter().filter(|a| *a != removed).cloned().collect()
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
