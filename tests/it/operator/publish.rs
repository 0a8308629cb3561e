//! `publish` thresholds: an API that does not answer fails the run with exit 1.

use super::*;

#[tokio::test]
async fn publish_thresholds_fail_with_exit_1_when_the_api_is_down() {
    let dir = support::tempdir();
    let (code, out, err) = support::run(
        &[
            "publish",
            "--api",
            "http://127.0.0.1:1",
            "--count",
            "5",
            "--rate",
            "100",
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    let report = json(&out);
    assert_eq!(report["acked"], 0);
    assert_eq!(report["errors"]["connect"], 5);
    assert_eq!(report["passed"], false);
}
