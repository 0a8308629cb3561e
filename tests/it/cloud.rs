//! Cloud mode against moto server (SNS → SQS with a DLQ) and a real PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use latamctl::aws::AwsClients;
use latamctl::bus::sns::SnsPublisher;
use latamctl::bus::sqs::SqsQueue;
use latamctl::config::AwsConfig;
use serde_json::json;
use uuid::Uuid;

use super::queue::{self, Bus, MAX_RECEIVES};
use super::store::fresh_database;
use super::support::{self, Proxy, Serve, client, post, wait_stored};

/// SNS topic, SQS queue and DLQ (redrive after MAX_RECEIVES), raw subscription — unique names.
pub struct Moto {
    pub endpoint: String,
    pub clients: AwsClients,
    pub topic_arn: String,
    pub queue_url: String,
    pub dlq_url: String,
}

pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// An SDK config for moto with its static test credentials (what an operator's tools load).
pub async fn moto_sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

impl Moto {
    pub async fn new() -> Option<Moto> {
        let endpoint = support::service("LATAMCTL_TEST_MOTO_URL")?;
        let clients = moto_clients(&endpoint).await;
        Some(Moto::create(endpoint, clients).await)
    }

    /// Creates the topic, queues and subscription with `clients` (whose keys may do that).
    pub async fn create(endpoint: String, clients: AwsClients) -> Moto {
        let name = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let topic_arn = clients
            .sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let dlq_url = clients
            .sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = queue_arn(&clients, &dlq_url).await;
        let queue_url = clients
            .sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = queue_arn(&clients, &queue_url).await;
        clients
            .sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        Moto {
            endpoint,
            clients,
            topic_arn,
            queue_url,
            dlq_url,
        }
    }

    pub fn bus(&self) -> Bus {
        let q = Arc::new(SqsQueue::new(
            &self.clients,
            &self.queue_url,
            Some(&self.dlq_url),
        ));
        Bus {
            publisher: Arc::new(SnsPublisher::new(&self.clients, &self.topic_arn, 3)),
            queue: q.clone(),
            admin: q,
            wait: Duration::from_secs(2),
            _keep: None,
        }
    }

    pub fn serve_env(&self) -> Vec<(&'static str, String)> {
        let mut env = aws_env(&self.endpoint);
        env.extend([
            ("LATAMCTL_BUS", "aws".to_owned()),
            ("LATAMCTL_AWS_TOPIC_ARN", self.topic_arn.clone()),
            ("LATAMCTL_AWS_QUEUE_URL", self.queue_url.clone()),
            ("LATAMCTL_AWS_DLQ_URL", self.dlq_url.clone()),
        ]);
        env
    }
}

pub async fn moto_clients(endpoint: &str) -> AwsClients {
    // Credentials come from the default chain, as in production: set them process-wide
    // (nextest runs every test in its own process).
    for (k, v) in aws_env(endpoint) {
        if k != "AWS_ENDPOINT_URL" {
            // SAFETY: every test sets identical values; no test reads them concurrently with
            // a different expectation.
            unsafe { std::env::set_var(k, v) };
        }
    }
    AwsClients::from_config(&AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
        ..AwsConfig::default()
    })
    .await
    .unwrap()
}

async fn queue_arn(clients: &AwsClients, url: &str) -> String {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap()
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

// ---- the queue suite on SNS → SQS ----

#[tokio::test]
async fn sqs_publish_receive_ack() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    queue::publish_receive_ack(&moto.bus()).await;
}

#[tokio::test]
async fn sqs_redelivery_after_visibility_timeout() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    queue::redelivery_after_visibility_timeout(&moto.bus()).await;
}

#[tokio::test]
async fn sqs_release_makes_visible_again() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    queue::release_makes_visible_again(&moto.bus()).await;
}

#[tokio::test]
async fn sqs_dead_letter_and_redrive() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    queue::dead_letter_after_max_receives_and_redrive(&moto.bus()).await;
}

#[tokio::test]
async fn sqs_concurrent_publishes_arrive_once() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    queue::concurrent_publishes_arrive_once(&moto.bus(), 30).await;
}

#[tokio::test]
async fn sns_envelope_delivery_is_decoded() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    // A second queue subscribed without raw delivery receives the SNS JSON envelope.
    let url = moto
        .clients
        .sqs
        .create_queue()
        .queue_name(format!("env{}", &Uuid::new_v4().simple().to_string()[..10]))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    moto.clients
        .sns
        .subscribe()
        .topic_arn(&moto.topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(&moto.clients, &url).await)
        .send()
        .await
        .unwrap();
    let bus = moto.bus();
    let m = queue::message("enveloped");
    bus.publisher.publish(&m).await.unwrap();
    let enveloped = SqsQueue::new(&moto.clients, &url, None);
    let got = latamctl::bus::Queue::receive(
        &enveloped,
        10,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body.contains("\"Type\""),
        "expected an SNS envelope: {}",
        got[0].body
    );
    let record = got[0].decode().unwrap();
    assert_eq!(record.transaction_id, m.transaction_id);
    assert_eq!(record.message, "enveloped");
    assert_eq!(record.attributes, m.attributes);
}

// ---- serve --bus aws --store postgres ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_sns_sqs_and_postgres_stores_every_message_once() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend([
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("DATABASE_URL", db.clone()),
        ("LATAMCTL_WORKER_CONCURRENCY", "4".to_owned()),
        ("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()),
    ]);
    let serve = Serve::start(&[], &env_refs(&env), dir.path());
    let http = client();
    let ready = http.get(serve.url("/readyz")).send().await.unwrap();
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");

    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let (http, base, sem) = (http.clone(), serve.base.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await.unwrap();
            post(&http, &base, &format!("cloud {i}")).await
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap().expect("POST failed"));
    }
    let missing = wait_stored(&http, &serve.base, &ids, Duration::from_secs(180)).await;
    if !missing.is_empty() {
        let (main, in_flight) = queue_counts(&moto.clients, &moto.queue_url).await;
        let (dlq, _) = queue_counts(&moto.clients, &moto.dlq_url).await;
        let logs = serve.logs();
        let tail: Vec<&str> = logs.lines().rev().take(30).collect();
        panic!(
            "{} of 500 never stored; SQS visible {main}, in flight {in_flight}, DLQ {dlq}\nserve log tail:\n{}",
            missing.len(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 500);
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_db_query_duration_seconds_bucket{operation=\"insert_batch\"")
    );
    assert!(metrics.contains("latamctl_worker_batch_size_bucket"));
    assert_eq!(serve.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_reaches_the_dlq_and_the_worker_keeps_going() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    // Undecodable: no transaction id attribute, not an SNS envelope.
    moto.clients
        .sqs
        .send_message()
        .queue_url(&moto.queue_url)
        .message_body("this is not a latamctl message")
        .send()
        .await
        .unwrap();
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend([
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("DATABASE_URL", db),
        ("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()),
        ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "0s".to_owned()),
        ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "0s".to_owned()),
    ]);
    let serve = Serve::start(&[], &env_refs(&env), dir.path());
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (dlq, _) = queue_counts(&moto.clients, &moto.dlq_url).await;
        if dlq == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "poison message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Good messages still flow.
    let id = post(&http, &serve.base, "after the poison").await.unwrap();
    assert!(
        wait_stored(&http, &serve.base, &[id], Duration::from_secs(30))
            .await
            .is_empty()
    );
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_poison_messages_total{reason=\"missing_attribute\"}"),
        "{metrics}"
    );
    assert_eq!(serve.terminate(), Some(0));
}

/// `(visible, in flight)` of an SQS queue, as SQS approximates them.
pub async fn queue_counts(clients: &AwsClients, url: &str) -> (u64, u64) {
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let get = |n: QueueAttributeName| attrs.get(&n).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Kills the worker's PostgreSQL connections repeatedly while it drains: nothing lost, no
/// duplicates, and it recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_connections_killed_mid_drain_lose_nothing() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend([
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("DATABASE_URL", db.clone()),
        ("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()),
        ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "200ms".to_owned()),
        ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "1s".to_owned()),
    ]);
    // Fill the queue first with the API only, then drain with a worker under fire.
    let api = Serve::start(&["--role", "api"], &env_refs(&env), dir.path());
    let http = client();
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(post(&http, &api.base, &format!("drain {i}")).await.unwrap());
    }
    let worker = Serve::start(&["--role", "worker"], &env_refs(&env), dir.path());
    let killer_pool =
        sqlx::PgPool::connect(&support::service("LATAMCTL_TEST_DATABASE_URL").unwrap())
            .await
            .unwrap();
    let db_name = reqwest::Url::parse(&db)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let killed = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut total = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&db_name)
                .fetch_one(&killer_pool)
                .await
                .unwrap();
                total += n;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            total
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let killed = killed.await.unwrap();
    assert!(
        killed > 0,
        "no connection was killed: the test did not test anything"
    );
    let missing = wait_stored(&http, &api.base, &ids, Duration::from_secs(120)).await;
    assert!(
        missing.is_empty(),
        "{} lost after connection kills ({killed} killed)",
        missing.len()
    );
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 200);
    assert_eq!(worker.terminate(), Some(0));
    assert_eq!(api.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_unreachable_answers_503_fast_and_recovers() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let dir = support::tempdir();
    let proxy = Proxy::start(&moto.endpoint).await;
    let endpoint = format!("http://{}", proxy.addr);
    let mut env = moto.serve_env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", endpoint));
    env.push(("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()));
    let serve = Serve::start(
        &["--data-dir", dir.path().join("d").to_str().unwrap()],
        &env_refs(&env),
        dir.path(),
    );
    let http = client();
    let id = post(&http, &serve.base, "before").await.unwrap();

    proxy.set(false);
    let started = Instant::now();
    let resp = http
        .post(serve.url("/ingresar-datos"))
        .json(&json!({"topic_arn": "data-ingestion-topic", "message": "during"}))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "bus_unavailable", "{body}");
    assert!(elapsed < Duration::from_secs(6), "503 took {elapsed:?}");
    // Readiness follows the failed publish within one refresh interval (5 s), without a
    // call to SNS of its own; the body carries the reason, not the SDK's error text. (The
    // proxy cuts SQS too, so the queue may turn unavailable first.)
    let deadline = Instant::now() + Duration::from_secs(8);
    let body = loop {
        let body = wait_readiness(&http, &serve, 503, Duration::from_secs(8)).await;
        if body["checks"]["publisher"] == "unavailable" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the publisher never turned unavailable: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !body.to_string().contains("arn:") && !body.to_string().contains("127.0.0.1"),
        "readiness leaks error text: {body}"
    );
    let health = http.get(serve.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness must not follow the bus");

    proxy.set(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        if let Ok(id) = post(&http, &serve.base, "after").await {
            break id;
        }
        assert!(Instant::now() < deadline, "POST never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    wait_readiness(&http, &serve, 200, Duration::from_secs(8)).await;
    assert!(
        wait_stored(&http, &serve.base, &[id, after], Duration::from_secs(60))
            .await
            .is_empty()
    );
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_retries_total{operation=\"publish\"}"),
        "retries not counted"
    );
    assert!(metrics.contains("latamctl_publish_errors_total{error_type=\"unavailable\"}"));
    assert_eq!(serve.terminate(), Some(0));
}

/// Polls `/readyz` until it answers `status`; returns its body.
pub async fn wait_readiness(
    http: &reqwest::Client,
    serve: &Serve,
    status: u16,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let resp = http.get(serve.url("/readyz")).send().await.unwrap();
        let got = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {got} {body}, want {status}:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
