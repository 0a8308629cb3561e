//! `/metrics` says what `metric::TABLE` says: every family `serve` exposes is in the table,
//! with the table's kind as its `# TYPE` and the table's help as its `# HELP`.

use std::time::Duration;

use latamctl::metric::{Kind, TABLE};

use super::support::{self, Serve, client, post, wait_stored};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_tables_kind_and_help() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    let http = client();
    let id = post(&http, &serve.base, "counted").await.unwrap();
    assert!(
        wait_stored(&http, &serve.base, &[id], Duration::from_secs(10))
            .await
            .is_empty()
    );
    // The gauges of the periodic tasks (queue depth, disk) are set within a few seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let text = serve.metrics(&http).await;
    let mut seen = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            if name.starts_with("process_") {
                continue;
            }
            let row = TABLE
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} is exposed but not in metric::TABLE"));
            let want = match row.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert_eq!(
                kind, want,
                "{name}: exposed as {kind}, the table says {want}"
            );
            let help = format!("# HELP {name} {}", row.help);
            assert!(
                text.contains(&help),
                "{name} lacks its help: {help}\n{text}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} families exposed:\n{text}");
}
