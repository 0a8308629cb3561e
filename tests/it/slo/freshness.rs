//! The freshness SLI in a real Prometheus while the worker is paused.

use super::*;

/// The freshness SLI is the worker's view of POST-to-readable: with the worker stopped
/// (SIGSTOP) while the api keeps accepting, the messages it stores on resuming are older than
/// 5 s, and the recorded SLI of real Prometheus moves from 0 to about the stale share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freshness_sli_moves_when_the_worker_is_paused() {
    let Some(prometheus_bin) = support::service("LATAMCTL_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap();
    let api = Serve::start(&["--data-dir", data_arg, "--role", "api"], &[], dir.path());
    let worker = Serve::start(
        &["--data-dir", data_arg, "--role", "worker"],
        &[],
        dir.path(),
    );
    let rules = dir.path().join("rules.yaml");
    let (code, _, err) = support::run(
        &["render", "alerts", "--out", rules.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let target = worker.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&prometheus_bin, dir.path(), &rules, &[(&target, "stable")]);
    let http = client();
    let stored = |ids: Vec<uuid::Uuid>| {
        let (http, base) = (http.clone(), api.base.clone());
        async move {
            let missing = support::wait_stored(&http, &base, &ids, Duration::from_secs(60)).await;
            assert!(missing.is_empty(), "{} not stored", missing.len());
        }
    };
    let sli = r#"latamctl_slo:sli_error:ratio_rate5m{slo="freshness",system="e2e"}"#;

    // Warm-up, then 20 fresh messages: the SLI is 0.
    let mut ids = vec![post(&http, &api.base, "warm-up").await.unwrap()];
    stored(ids.clone()).await;
    eventually(Duration::from_secs(30), "the age histogram scraped twice", || async {
        let r = prom
            .query(&http, r#"count_over_time(latamctl_stored_message_age_seconds_count{system="e2e"}[1m])"#)
            .await;
        match r.first() {
            Some((_, n)) if *n >= 2.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    ids.clear();
    for i in 0..20 {
        ids.push(post(&http, &api.base, &format!("fresh {i}")).await.unwrap());
    }
    stored(ids.clone()).await;
    let fresh = eventually(
        Duration::from_secs(30),
        "the freshness SLI of fresh messages",
        || async {
            match prom.query(&http, sli).await.as_slice() {
                [(_, v)] if v.is_finite() => Ok(*v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(fresh, 0.0, "every message was stored within 5 s");

    // Pause the worker, accept 20 more, wait past the 5 s threshold, resume.
    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    ids.clear();
    for i in 0..20 {
        ids.push(post(&http, &api.base, &format!("late {i}")).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    stored(ids).await;
    let stale = eventually(
        Duration::from_secs(60),
        "the freshness SLI after the pause",
        || async {
            match prom.query(&http, sli).await.as_slice() {
                [(_, v)] if *v > 0.3 => Ok(*v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(stale <= 0.6, "20 of about 41 messages were late: {stale}");
    drop(prom);
    drop(worker);
    drop(api);
}
