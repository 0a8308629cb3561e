//! `latamctl slo` without a Prometheus: an unreachable one explained, and sampling a running
//! `serve`'s `/metrics`.

use super::*;

#[test]
fn slo_explains_an_unreachable_prometheus() {
    let dir = support::tempdir();
    let (code, out, err) = support::run(
        &["slo", "--prometheus", "http://127.0.0.1:9", "-o", "json"],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no data on stdout: {out}");
    assert!(
        err.contains("cannot query Prometheus at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(err.contains("Check the URL"), "{err}");
}

/// Without Prometheus: sample a running serve's /metrics while traffic flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slo_samples_metrics_endpoints() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    let http = client();
    post(&http, &serve.base, "before").await.unwrap();

    let base = serve.base.clone();
    let cwd = dir.path().to_owned();
    let sampler = tokio::task::spawn_blocking(move || {
        support::run(
            &[
                "slo",
                "--metrics",
                &base,
                "--window",
                "3s",
                "--interval",
                "500ms",
                "-o",
                "yaml",
            ],
            &[],
            &cwd,
        )
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..20 {
        post(&http, &serve.base, &format!("during {i}"))
            .await
            .unwrap();
    }
    let (code, out, err) = sampler.await.unwrap();
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let report: Value = serde_saphyr::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        report["source"]
            .as_str()
            .unwrap()
            .starts_with("metrics http://")
    );
    let slos = report["slos"].as_array().unwrap();
    let get = |n: &str| slos.iter().find(|s| s["slo"] == n).unwrap().clone();
    let errors = get("errors");
    assert_eq!(errors["sli"], 1.0, "{errors:?}");
    assert_eq!(errors["state"], "ok");
    assert_eq!(errors["window"], "3s");
    assert_eq!(get("availability")["sli"], 1.0);
    assert_eq!(get("retries")["sli"], 1.0);
    // The pipeline's own SLOs: every message stored within 5 s, none dead-lettered.
    let freshness = get("freshness");
    assert_eq!(freshness["sli"], 1.0, "{freshness:?}");
    assert_eq!(freshness["state"], "ok", "{freshness:?}");
    let completeness = get("completeness");
    assert_eq!(completeness["sli"], 1.0, "{completeness:?}");
    drop(serve);
}
