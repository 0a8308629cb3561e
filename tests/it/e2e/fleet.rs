//! `status --fleet`, `slo --fleet` and `publish --fleet` across ten live systems, a dead API
//! and a missing config.

use super::*;

/// `status --fleet`: ten live `serve` processes, one with a message in its dead-letter
/// queue, one whose API does not answer, one whose config file is missing. Every system has
/// its row with the right state, worst first, the summary counts them, the exit code is the
/// worst state, and `--only` filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fleet_reports_every_system_worst_first() {
    let dir = support::tempdir();
    let mut fleet = String::new();
    let mut servers = Vec::new();
    for i in 0..10 {
        let data = dir.path().join(format!("data{i}"));
        let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
        let config = dir.path().join(format!("sys{i}.toml"));
        std::fs::write(
            &config,
            format!("name = \"sys{i}\"\ndata_dir = \"{}\"\n", data.display()),
        )
        .unwrap();
        fleet.push_str(&format!(
            "[[system]]\nname = \"sys{i}\"\nconfig = \"sys{i}.toml\"\napi = \"{}\"\nlabels = {{ team = \"t{}\" }}\n\n",
            serve.base,
            i % 2
        ));
        servers.push((serve, data));
    }
    // A message in sys3's dead-letter queue.
    let queue = servers[3].1.join("queue.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", queue.display()))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at) VALUES ('poison', 'dlq', 'x', '{}', ?, ?)",
    )
    .bind(now)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // An API nobody listens on, and a config that is not there.
    std::fs::write(dir.path().join("down.toml"), "name = \"down\"\n").unwrap();
    fleet.push_str(
        "[[system]]\nname = \"down\"\nconfig = \"down.toml\"\napi = \"http://127.0.0.1:1\"\n\n[[system]]\nname = \"ghost\"\nconfig = \"missing.toml\"\n",
    );
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, fleet).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let run = |extra: &[&str]| {
        let mut args = vec![
            "status",
            "--fleet",
            file.as_str(),
            "--window",
            "0s",
            "--no-kubernetes",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        support::run(&args, &[], dir.path())
    };
    let (code, out, err) = tokio::task::block_in_place(|| run(&[]));
    assert_eq!(code, 2, "a failed system makes exit 2: {err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let systems = report["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 12, "{report}");
    let state = |name: &str| {
        systems
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {report}"))
            .clone()
    };
    let ghost = state("ghost");
    assert_eq!(ghost["state"], "fail");
    assert_eq!(ghost["worst"], "config");
    assert!(
        ghost["hint"].as_str().unwrap().contains("missing.toml"),
        "{ghost}"
    );
    let down = state("down");
    assert_eq!(down["state"], "fail", "{down}");
    assert_eq!(down["worst"], "api", "{down}");
    let dlq = state("sys3");
    assert_eq!(dlq["state"], "warn", "{dlq}");
    assert_eq!(dlq["worst"], "dlq", "{dlq}");
    assert_eq!(dlq["dlq_depth"], "1", "{dlq}");
    for i in [0, 1, 2, 4, 5, 6, 7, 8, 9] {
        let row = state(&format!("sys{i}"));
        assert_eq!(row["state"], "ok", "{row}");
        assert!(row["db_latency_ms"].is_string(), "{row}");
    }
    assert_eq!(state("sys1")["labels"]["team"], "t1");
    // Worst first.
    let order: Vec<&str> = systems
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(&order[..3], ["fail", "fail", "warn"], "{order:?}");
    assert_eq!(report["summary"], "12 systems: 9 ok, 1 warn, 2 fail");
    assert_eq!(report["overall"], "fail");

    let (code, out, _) = tokio::task::block_in_place(|| run(&["--only", "warn"]));
    assert_eq!(
        code, 2,
        "the exit code is the fleet's, not the filtered rows'"
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = report["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sys3"]);

    // `slo --fleet` samples every system's /metrics while `publish --fleet` smoke-tests
    // them: the live systems have SLO rows with data, the dead API and the missing config
    // are error rows (exit 2).
    let slo_run = {
        let (file, cwd) = (file.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            support::run(
                &[
                    "slo",
                    "--fleet",
                    &file,
                    "--window",
                    "4s",
                    "--interval",
                    "1s",
                    "-o",
                    "json",
                ],
                &[],
                &cwd,
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = tokio::task::block_in_place(|| {
        support::run(
            &[
                "publish",
                "--fleet",
                file.as_str(),
                "--count",
                "20",
                "--rate",
                "10",
                "--verify",
                "--verify-timeout",
                "10s",
                // The machine runs ten debug serves and other tests at once: what is checked
                // is that every system is published to and verified, not its latency.
                "--max-p95",
                "10s",
                "-o",
                "json",
            ],
            &[],
            dir.path(),
        )
    });
    assert_eq!(code, 2, "a system that cannot run makes exit 2: {err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let rows = report["systems"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "{report}");
    let row = |name: &str| rows.iter().find(|r| r["system"] == name).unwrap().clone();
    assert_eq!(rows[0]["system"], "ghost", "errors first: {report}");
    assert_eq!(row("ghost")["state"], "error");
    assert!(
        row("ghost")["error"]
            .as_str()
            .unwrap()
            .contains("missing.toml")
    );
    let down = row("down");
    assert_eq!(down["state"], "failed", "{down}");
    assert_eq!(down["report"]["acked"], 0, "{down}");
    for i in 0..10 {
        let r = row(&format!("sys{i}"));
        assert_eq!(r["state"], "passed", "{r}");
        assert_eq!(r["report"]["verified"]["stored"], 20, "{r}");
    }
    assert_eq!(
        report["summary"],
        "12 systems: 10 passed, 1 failed, 1 error"
    );

    let (code, out, err) = slo_run.join().unwrap();
    assert_eq!(code, 2, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let rows = report["systems"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "{report}");
    let row = |name: &str| rows.iter().find(|r| r["system"] == name).unwrap().clone();
    for name in ["down", "ghost"] {
        assert_eq!(row(name)["state"], "error", "{report}");
    }
    for i in 0..10 {
        let r = row(&format!("sys{i}"));
        let errors = r["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slo"] == "errors")
            .unwrap_or_else(|| panic!("{r}"))
            .clone();
        assert_eq!(errors["state"], "ok", "sys{i} had traffic and no 5xx: {r}");
        assert_eq!(errors["sli"], 1.0, "{r}");
    }

    // A fleet file with a typo is an error naming the file and the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[system]]\nname = \"a\"\nconfg = \"a.toml\"\n").unwrap();
    let (code, _, err) = support::run(
        &["status", "--fleet", bad.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml") && err.contains("confg"), "{err}");
    for (serve, _) in servers {
        drop(serve);
    }
}
