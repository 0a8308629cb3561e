//! The workloads' names as the chart's helper gives them: overrides, the cut, the release name.

use super::*;

/// `status` finds the workloads under the names the chart's helper gives them: overrides, the
/// 52-character cut, a release name that already contains the chart's name.
#[test]
fn status_names_objects_as_the_chart_does() {
    let Some(python) = support::service("LATAMCTL_TEST_HELM_PYTHON") else {
        return;
    };
    let h = Harness::start();
    let status = h.status();
    let long = "a-release-name-long-enough-to-be-cut-by-the-chart-helper-x";
    let cases: [(&str, &[&str]); 5] = [
        ("latamctl-prod", &[]),
        ("ingest", &[]),
        (long, &[]),
        ("ingest", &["nameOverride=pipeline"]),
        ("ingest", &["fullnameOverride=edge-ingestion"]),
    ];
    for (release_name, sets) in cases {
        let rendered = render(&python, &[], sets, release_name);
        let mut values = json!({});
        for s in sets {
            let (k, v) = s.split_once('=').unwrap();
            values[k] = json!(v);
        }
        let release = Release::from_values(release_name, &values);
        h.cluster.load(healthy(&rendered));
        let (code, report) = status.run(&release, None);
        assert_eq!(code, 0, "{release_name} {sets:?}: {:?}", not_ok(&report));
        let names: Vec<&str> = rendered
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        for c in ["api", "worker"] {
            let shown = row(&report, &format!("k8s {c}"))["figures"]["workload"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                names
                    .iter()
                    .any(|n| shown == format!("deployment {NAMESPACE}/{n}")),
                "{release_name} {sets:?}: {shown} not in {names:?}"
            );
        }
    }
    // A release status does not know the overrides of: named in the hint, exit 2.
    let rendered = render(&python, &[], &["fullnameOverride=edge-ingestion"], "ingest");
    h.cluster.load(healthy(&rendered));
    let (code, report) = status.run(&Release::from_values("ingest", &json!({})), None);
    assert_eq!(code, 2);
    let r = row(&report, "k8s api");
    assert_eq!(r["state"], "fail");
    assert!(
        r["hint"].as_str().unwrap().contains("fullname_override"),
        "{r:#}"
    );
}
