//! The SNS endpoint cut for 30 s by a proxy, SQS and PostgreSQL up.

use super::*;

use crate::support::Proxy;

/// The SNS endpoint unreachable for 30 s (SQS and PostgreSQL stay up): POSTs answer 503
/// meanwhile and are not acked; everything acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_sns_endpoint_cut_for_30_s() {
    let Some(moto) = super::cloud::Moto::new().await else {
        return;
    };
    let Some(db) = super::store::fresh_database().await else {
        return;
    };
    let proxy = Proxy::start(&moto.endpoint).await;
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend([
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("LATAMCTL_DATABASE_URL", db.clone()),
        // Only SNS goes through the proxy.
        ("AWS_ENDPOINT_URL_SNS", format!("http://{}", proxy.addr)),
    ]);
    env.extend(STRICT_WORKER.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(
        &["--data-dir", dir.path().join("d").to_str().unwrap()],
        &envs,
        dir.path(),
    );
    let load = Load::start(&serve.base, 2, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set(false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.set(true);
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    let (dlq_visible, _) = {
        let out = moto
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&moto.dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n = out
            .attributes
            .unwrap_or_default()
            .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        (n, ())
    };
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "SNS endpoint cut for 30 s (proxy)",
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&db).await,
        dlq: dlq_visible,
        recovered_s,
    }
    .check();
}
