//! `latamctl render`: a bad spec refused, every format written, and the committed rendered
//! files current.

use super::*;

use crate::support::BIN;

#[test]
fn render_rejects_a_bad_spec_clearly() {
    let dir = support::tempdir();
    let bad = dir.path().join("slo.yaml");
    std::fs::write(
        &bad,
        latamctl::slo::spec::DEFAULT_SPEC.replacen("target: 0.95", "target: 95", 1),
    )
    .unwrap();
    let (code, out, err) = support::run(
        &["render", "alerts", "--slo", bad.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("spec.slos[latency].target"), "{err}");
    assert!(err.contains("99.9 % is 0.999"), "{err}");
}

#[test]
fn render_writes_every_format() {
    let dir = support::tempdir();
    for (args, check) in [
        (["alerts", "prometheus"], "groups:"),
        (["alerts", "prometheus-rule"], "kind: PrometheusRule"),
        (["alerts", "datadog"], "datadog_monitor"),
        (["alerts", "cloudwatch"], "MetricAlarms"),
        (["dashboards", "grafana"], "\"schemaVersion\""),
        (["dashboards", "datadog"], "\"layout_type\""),
    ] {
        let out = dir.path().join(format!("{}-{}", args[0], args[1]));
        let (code, stdout, err) = support::run(
            &[
                "render",
                args[0],
                "--format",
                args[1],
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
            dir.path(),
        );
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(stdout.is_empty(), "data goes to the file: {stdout}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(check), "{args:?}");
    }
}

/// The committed copies (examples/alerts, the Helm chart's files) are what the binary
/// renders: scripts/render-artifacts.sh --check with this test's binary.
#[test]
fn rendered_artifacts_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/render-artifacts.sh"))
        .arg("--check")
        .env("LATAMCTL_BIN", BIN)
        .current_dir(root)
        .output()
        .expect("run scripts/render-artifacts.sh");
    assert!(
        out.status.success(),
        "committed rendered files are stale; run scripts/render-artifacts.sh\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
