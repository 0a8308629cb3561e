//! `provision --fleet --dry-run` on moto: a system in sync, one drifting, one missing config.

use super::*;

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
