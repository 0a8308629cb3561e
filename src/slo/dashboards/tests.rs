use super::*;

/// Every series the dashboards query (Grafana and Datadog) is one the service writes
/// (`crate::metric`), or metrics-process's `process_*`, or a recording rule's
/// `name:...` series.
#[test]
fn the_dashboards_query_only_metrics_the_service_writes() {
    let spec = SloSpec::builtin().unwrap();
    let text = format!("{}{}", grafana(&spec).unwrap(), datadog(&spec).unwrap());
    let names = regex::Regex::new(r"(latamctl|http|process)[._][a-z_]+").unwrap();
    let mut checked = 0;
    for m in names.find_iter(&text) {
        if text[m.end()..].starts_with(':') || text[..m.start()].ends_with(':') {
            continue; // a recording rule's series (`latamctl_slo:...`)
        }
        // Datadog's names carry the namespace: `latamctl.http_requests_total`.
        let name = m.as_str().trim_start_matches("latamctl.");
        if name.starts_with("process_") || name.starts_with("latamctl.") {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            crate::metric::ALL.contains(&base),
            "a dashboard queries {name}, which nothing in crate::metric writes"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} metric names found");
}

#[test]
fn grafana_and_datadog_show_the_same_panels() {
    let spec = SloSpec::builtin().unwrap();
    let g: Value = serde_json::from_str(&grafana(&spec).unwrap()).unwrap();
    let d: Value = serde_json::from_str(&datadog(&spec).unwrap()).unwrap();
    let grafana_titles: Vec<String> = g["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect();
    let datadog_titles: Vec<String> = d["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["definition"]["widgets"].as_array().unwrap())
        .map(|w| w["definition"]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(grafana_titles, datadog_titles);
    assert!(grafana_titles.iter().any(|t| t == "Connection pool"));
    // Two stats per SLO plus the burn-rate panel.
    let slo_panels = g["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "stat")
        .count();
    assert_eq!(slo_panels, 2 * spec.spec.slos.len());
    // Panels never overlap and stay within 24 columns.
    let mut cells = std::collections::HashSet::new();
    for p in g["panels"].as_array().unwrap() {
        let gp = &p["gridPos"];
        let (x, y, w, h) = (
            gp["x"].as_u64().unwrap(),
            gp["y"].as_u64().unwrap(),
            gp["w"].as_u64().unwrap(),
            gp["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "overlap at {cx},{cy}: {}",
                    p["title"]
                );
            }
        }
    }
}
