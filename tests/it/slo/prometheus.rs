//! The rendered rules, dashboards and rollout analysis in a real Prometheus scraping two
//! `serve`s, and `latamctl slo` (one system and a fleet) against it.

use super::*;

use latamctl::slo::SloSpec;

async fn post_invalid(http: &reqwest::Client, base: &str) -> u16 {
    http.post(format!("{base}/ingresar-datos"))
        .json(&serde_json::json!({"topic_arn": "", "message": "x"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The real thing: `serve` scraped by Prometheus with the rendered rules; 10 % of the traffic
/// is rejected (400), so the recorded SLIs have known values and the 4xx+5xx alert fires.
/// The spec is the built-in one with two test overrides written into a copy: the error-rate
/// alert's `for` (3m → 3s) and the long-window evaluation interval (5m → 1s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_evaluates_the_rendered_rules_against_serve() {
    let Some(prometheus_bin) = support::service("LATAMCTL_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    // A second, healthy `serve` of the same system: the stable ReplicaSet of an Argo Rollouts
    // release, while the first (which gets the rejected requests) is the new one.
    let stable_data = dir.path().join("stable-data");
    let stable = Serve::start(
        &["--data-dir", stable_data.to_str().unwrap()],
        &[],
        dir.path(),
    );

    let mut spec = SloSpec::builtin().unwrap();
    spec.spec.long_window_interval = Duration::from_secs(1);
    let alert = spec
        .spec
        .alerts
        .iter_mut()
        .find(|a| a.name == "LatamctlHighErrorRate")
        .unwrap();
    assert_eq!(alert.for_, Duration::from_secs(180), "the seed's 3 minutes");
    alert.for_ = Duration::from_secs(3);
    let spec_path = dir.path().join("slo.yaml");
    std::fs::write(&spec_path, serde_saphyr::to_string(&spec).unwrap()).unwrap();
    let rules = dir.path().join("rules.yaml");
    let (code, _, err) = support::run(
        &[
            "render",
            "alerts",
            "--slo",
            spec_path.to_str().unwrap(),
            "--out",
            rules.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");

    let target = serve.base.trim_start_matches("http://").to_owned();
    let stable_target = stable.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(
        &prometheus_bin,
        dir.path(),
        &rules,
        &[(&target, "canary"), (&stable_target, "stable")],
    );
    let http = client();

    // Every series must exist before the measured traffic: rate() ignores a series' first
    // sample, so the counted increase is exactly the traffic below.
    post(&http, &serve.base, "warm-up").await.unwrap();
    assert_eq!(post_invalid(&http, &serve.base).await, 400);
    post(&http, &stable.base, "warm-up").await.unwrap();
    eventually(
        Duration::from_secs(30),
        "two scrapes of the warmed-up series",
        || async {
            let r = prom
                .query(
                    &http,
                    r#"count_over_time(http_requests_total{system="e2e",status="400"}[1m])"#,
                )
                .await;
            match r.first() {
                Some((_, n)) if *n >= 2.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // 90 accepted, 10 rejected: 10 % errors (all 4xx), no 5xx; the stable version takes 20
    // good requests (10 of 120 for the system: still about 0.1).
    for i in 0..100 {
        if i % 10 == 9 {
            assert_eq!(post_invalid(&http, &serve.base).await, 400);
        } else {
            post(&http, &serve.base, &format!("message {i}"))
                .await
                .unwrap();
        }
        if i % 5 == 0 {
            post(&http, &stable.base, &format!("stable {i}"))
                .await
                .unwrap();
        }
    }

    let fired = eventually(
        Duration::from_secs(60),
        "LatamctlHighErrorRate firing",
        || async {
            let alerts = prom.alerts(&http).await;
            alerts
                .iter()
                .find(|(name, state, _)| name == "LatamctlHighErrorRate" && state == "firing")
                .cloned()
                .ok_or_else(|| format!("{alerts:?}"))
        },
    )
    .await;
    assert!(
        (0.05..=0.2).contains(&fired.2),
        "4xx+5xx ratio {} should be about 0.1",
        fired.2
    );

    let recorded =
        |slo: &str| format!(r#"latamctl_slo:sli_error:ratio_rate5m{{slo="{slo}",system="e2e"}}"#);
    let values = eventually(Duration::from_secs(30), "the recorded SLIs", || async {
        let mut values = BTreeMap::new();
        for slo in ["latency", "errors", "availability", "retries", "db_latency"] {
            match prom.query(&http, &recorded(slo)).await.as_slice() {
                [(labels, v)] => {
                    assert_eq!(labels["namespace"], "e2e-ns");
                    values.insert(slo, *v);
                }
                other => return Err(format!("{slo}: {other:?}")),
            }
        }
        Ok(values)
    })
    .await;
    // No 5xx series exists at all: 0, not "no data".
    assert_eq!(values["errors"], 0.0, "{values:?}");
    assert_eq!(values["availability"], 0.0, "{values:?}");
    assert_eq!(values["retries"], 0.0, "{values:?}");
    for slo in ["latency", "db_latency"] {
        assert!((0.0..=1.0).contains(&values[slo]), "{values:?}");
    }
    // The 30-day windows exist too (long-window group).
    let month = prom
        .query(
            &http,
            r#"latamctl_slo:sli_error:ratio_rate30d{slo="errors",system="e2e"}"#,
        )
        .await;
    assert_eq!(month.len(), 1, "{month:?}");
    let probe = prom
        .query(&http, r#"latamctl:up_and_ready:max{system="e2e"}"#)
        .await;
    assert_eq!(probe.first().map(|p| p.1), Some(1.0), "{probe:?}");
    // The gauges the CPU, memory and pool panels read are scraped.
    for q in [
        r#"latamctl_cpu_limit_cores{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
        r#"latamctl_memory_limit_bytes{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
        r#"latamctl_db_pool_connections{system="e2e",state="idle",rollouts_pod_template_hash="canary"}"#,
        r#"process_resident_memory_bytes{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
    ] {
        assert_eq!(prom.query(&http, q).await.len(), 1, "{q}");
    }
    let alerts = prom.alerts(&http).await;
    for quiet in [
        "LatamctlAvailabilityLow",
        "LatamctlErrorBudgetBurn",
        "LatamctlDeadLetters",
    ] {
        assert!(
            !alerts.iter().any(|(name, ..)| name == quiet),
            "{quiet} is active: {alerts:?}"
        );
    }

    // Every Grafana panel query is valid PromQL that this Prometheus answers.
    let dashboard: Value =
        serde_json::from_str(&latamctl::slo::dashboards::grafana(&spec).unwrap()).unwrap();
    let mut answered = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".*")
                .replace("$system", ".*");
            if !prom.query(&http, &expr).await.is_empty() {
                answered += 1;
            }
        }
    }
    assert!(
        answered >= 10,
        "only {answered} panel queries returned data"
    );

    // The Argo Rollouts analysis, as the chart's Rollout runs it: on the new ReplicaSet
    // ("canary", the serve that gets the rejected requests) the error-ratio metric fails at
    // the alert's threshold (the rollout would abort) while the slow-request metric, on fast
    // requests, passes; on the stable one (healthy) both pass, and its good requests do not
    // dilute the new version's ratio. promtool parses every query.
    let mut analysis_rules = String::from("groups:\n  - name: analysis\n    rules:\n");
    for m in latamctl::slo::rollouts::metrics(&spec) {
        let on = |hash: &str| {
            m.query
                .replace("{{args.system}}", "e2e")
                .replace("{{args.canary-hash}}", hash)
        };
        let mut value = BTreeMap::new();
        for hash in ["canary", "stable"] {
            let query = on(hash);
            let rows = prom.query(&http, &query).await;
            let v = match rows.as_slice() {
                [(_, v)] => *v,
                other => panic!("analysis {} on {hash}: {other:?} for {query}", m.name),
            };
            value.insert(hash, v);
        }
        match m.name.as_str() {
            "high-error-rate" => {
                assert!(
                    (0.05..=0.2).contains(&value["canary"]) && value["canary"] > m.threshold,
                    "error ratio {value:?} of the new version (10 % rejected) should fail the analysis (threshold {})",
                    m.threshold
                );
                assert_eq!(
                    value["stable"], 0.0,
                    "the healthy version's error ratio should be 0, passing the analysis: {value:?}"
                );
            }
            "slow-requests" => assert!(
                value.values().all(|v| *v <= m.threshold),
                "slow shares {value:?} should pass the analysis (threshold {})",
                m.threshold
            ),
            // Pipeline-wide (the worker is not in the canary): the same value on both, and
            // every message here was stored at once.
            "stale-messages" => {
                assert_eq!(value["canary"], value["stable"], "{value:?}");
                assert!(
                    value["canary"] <= m.threshold,
                    "stale share {value:?} should pass"
                );
            }
            other => panic!("unexpected analysis metric {other}"),
        }
        let query = on("canary");
        analysis_rules.push_str(&format!(
            "      - record: analysis:{}\n        expr: |\n{}\n",
            m.name.replace('-', "_"),
            query
                .lines()
                .map(|l| format!("          {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if let Some(promtool) = support::service("LATAMCTL_TEST_PROMTOOL_BIN") {
        let file = dir.path().join("analysis-rules.yaml");
        std::fs::write(&file, &analysis_rules).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Every column of the fleet dashboard answers with a row for this system.
    for expr in latamctl::slo::dashboards::fleet_queries(&spec).unwrap() {
        let expr = expr.replace("$namespace", ".*").replace("$system", ".*");
        let rows = prom.query(&http, &expr).await;
        assert!(
            rows.iter()
                .any(|(labels, _)| labels.get("system").map(String::as_str) == Some("e2e")),
            "fleet column {expr} has no row for e2e: {rows:?}"
        );
    }

    // `latamctl slo` against this Prometheus.
    let (code, out, err) = support::run(
        &[
            "slo",
            "--prometheus",
            &prom.url,
            "--scope",
            r#"system="e2e""#,
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let slos = report["slos"].as_array().unwrap();
    assert_eq!(slos.len(), 7, "{report}");
    let by_name = |n: &str| slos.iter().find(|s| s["slo"] == n).unwrap().clone();
    for name in [
        "errors",
        "availability",
        "retries",
        "freshness",
        "completeness",
    ] {
        let s = by_name(name);
        assert_eq!(s["sli"], 1.0, "{s}");
        assert_eq!(s["error_budget_remaining"], 1.0, "{s}");
        assert_eq!(s["burn_rate"], 0.0, "{s}");
        assert_eq!(s["state"], "ok", "{s}");
        assert_eq!(s["window"], "30d");
        assert_eq!(s["burn_window"], "1h");
        assert_eq!(s["scope"]["system"], "e2e");
        assert_eq!(s["scope"]["namespace"], "e2e-ns");
    }
    assert_eq!(by_name("errors")["objective"], 0.999);
    // Exit 1 exactly when a state pages or the budget is gone (latency depends on this
    // machine's speed, so it is checked for consistency, not for a value).
    let failing = slos
        .iter()
        .any(|s| s["state"] == "page" || s["state"] == "exhausted");
    assert_eq!(code, i32::from(failing), "{report}");

    // The table form names every SLO.
    let (_, table, _) = support::run(
        &[
            "slo",
            "--prometheus",
            &prom.url,
            "--scope",
            r#"system="e2e""#,
        ],
        &[],
        dir.path(),
    );
    for name in [
        "latency",
        "errors",
        "availability",
        "retries",
        "db_latency",
        "BUDGET LEFT",
    ] {
        assert!(table.contains(name), "{table}");
    }

    // `slo --fleet` against the same Prometheus: one set of queries for the fleet, each
    // system's rows from its `system` label; a system with no series is listed as no_data.
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[system]]\nname = \"e2e\"\nconfig = \"e2e.toml\"\n\n[[system]]\nname = \"absent\"\nconfig = \"absent.toml\"\n",
    )
    .unwrap();
    let (fleet_code, out, err) = support::run(
        &[
            "slo",
            "--fleet",
            fleet.to_str().unwrap(),
            "--prometheus",
            &prom.url,
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(fleet_code, code, "the same SLOs, the same exit: {err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let systems = report["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2, "{report}");
    let system = |n: &str| systems.iter().find(|s| s["system"] == n).unwrap().clone();
    let e2e = system("e2e");
    assert_eq!(e2e["slos"].as_array().unwrap().len(), 7, "{e2e}");
    let errors = e2e["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slo"] == "errors")
        .unwrap();
    assert_eq!(errors["state"], "ok", "{errors}");
    assert_eq!(errors["scope"]["system"], "e2e");
    let absent = system("absent");
    assert_eq!(absent["state"], "no_data", "{absent}");
    assert_eq!(absent["slos"].as_array().unwrap().len(), 7, "{absent}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 systems:"),
        "{report}"
    );
    drop(prom);
    assert_eq!(serve.terminate(), Some(0));
}
