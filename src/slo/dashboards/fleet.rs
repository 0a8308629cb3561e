//! The fleet dashboard: one row per `system` with each SLO's error budget left and burn
//! rate, how many SLOs page or are out of budget, sortable, each system linking to the
//! per-system dashboard filtered to it. From the same spec and recording rules as the
//! per-system dashboards.

use serde_json::{Value, json};

use super::{GRAFANA_UID, pretty};
use crate::slo::Result;
use crate::slo::datadog::Datadog;
use crate::slo::promql;
use crate::slo::spec::{SloSpec, trim_float};

/// Grafana `uid` of the fleet dashboard.
pub const FLEET_GRAFANA_UID: &str = "latamctl-fleet";

/// The scope every fleet query carries (the dashboard's variables).
const SCOPE: &str = "namespace=~\"$namespace\", system=~\"$system\"";

/// One column of the fleet table: its header, PromQL (an instant vector by namespace and
/// system) and Datadog query (by system).
struct Column {
    id: String,
    header: String,
    promql: String,
    datadog: String,
    kind: ColumnKind,
}

#[derive(Clone, Copy, PartialEq)]
enum ColumnKind {
    /// How many SLOs of the system are in a state: red above 0.
    Count,
    /// Share of the budget left: red below 0, orange below 25 %.
    Budget,
    /// Burn rate: orange above 1, red at the page rate.
    Burn,
}

fn columns(spec: &SloSpec) -> Result<Vec<Column>> {
    let dd = Datadog::new(spec);
    let page = trim_float(spec.page_burn_rate());
    let burn_window = spec.page_window();
    let burn_label = promql::duration(burn_window);
    let by = " by {system}";
    let mut budget_terms = Vec::new();
    let mut page_terms = Vec::new();
    let mut per_slo = Vec::new();
    for slo in &spec.spec.slos {
        let budget = trim_float(slo.error_budget());
        let window = promql::duration(slo.time_window);
        let sel = |record: String| format!("{record}{{slo=\"{}\", {SCOPE}}}", slo.name);
        let left = format!(
            "1 - {} / {budget}",
            sel(promql::sli_error_record(slo.time_window))
        );
        let burn = format!("{} / {budget}", sel(promql::sli_error_record(burn_window)));
        budget_terms.push(format!("({left} <= bool 0)"));
        page_terms.push(format!("({burn} >= bool {page})"));
        let good = dd.good_ratio_by(&slo.indicator, "$system", by)?;
        per_slo.push(Column {
            id: format!("budget_{}", slo.name),
            header: format!("{}: budget left ({window})", slo.name),
            promql: left,
            datadog: format!("1 - (1 - ({good})) / {budget}"),
            kind: ColumnKind::Budget,
        });
        per_slo.push(Column {
            id: format!("burn_{}", slo.name),
            header: format!("{}: burn rate ({burn_label})", slo.name),
            promql: burn,
            datadog: format!("(1 - ({good})) / {budget}"),
            kind: ColumnKind::Burn,
        });
    }
    // `or` keeps every SLO's series (their `slo` labels differ); the sum counts per system.
    let count = |terms: &[String]| format!("sum by (namespace, system) ({})", terms.join(" or "));
    let mut out = vec![
        Column {
            id: "paging".into(),
            header: format!("SLOs paging (burn ≥ {page}x)"),
            promql: count(&page_terms),
            datadog: String::new(),
            kind: ColumnKind::Count,
        },
        Column {
            id: "exhausted".into(),
            header: "SLOs out of budget".into(),
            promql: count(&budget_terms),
            datadog: String::new(),
            kind: ColumnKind::Count,
        },
    ];
    out.extend(per_slo);
    Ok(out)
}

/// Every PromQL query of the fleet dashboard (for tests that run them on a Prometheus).
pub fn fleet_queries(spec: &SloSpec) -> Result<Vec<String>> {
    Ok(columns(spec)?.into_iter().map(|c| c.promql).collect())
}

fn thresholds(kind: ColumnKind, page: f64) -> Value {
    let steps = match kind {
        ColumnKind::Count => json!([
            { "color": "green", "value": null }, { "color": "red", "value": 1 }
        ]),
        ColumnKind::Budget => json!([
            { "color": "red", "value": null }, { "color": "orange", "value": 0 },
            { "color": "green", "value": 0.25 }
        ]),
        ColumnKind::Burn => json!([
            { "color": "green", "value": null }, { "color": "orange", "value": 1 },
            { "color": "red", "value": page }
        ]),
    };
    json!({ "mode": "absolute", "steps": steps })
}

/// The Grafana fleet dashboard: one table, a row per system, every column sortable; the
/// system name links to the per-system dashboard (`uid` [`GRAFANA_UID`]) filtered to it.
pub fn grafana_fleet(spec: &SloSpec) -> Result<String> {
    let columns = columns(spec)?;
    let page = spec.page_burn_rate();
    let targets: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "refId": c.id,
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "expr": c.promql,
                "instant": true,
                "range": false,
                "format": "table",
            })
        })
        .collect();
    let mut rename = serde_json::Map::new();
    let mut overrides = vec![json!({
        "matcher": { "id": "byName", "options": "system" },
        "properties": [{
            "id": "links",
            "value": [{
                "title": "Open ${__value.raw}'s dashboard",
                "url": format!(
                    "/d/{GRAFANA_UID}?var-namespace=${{__data.fields.namespace}}&var-system=${{__value.raw}}&${{__url_time_range}}"
                ),
            }]
        }]
    })];
    for c in &columns {
        rename.insert(format!("Value #{}", c.id), json!(c.header));
        let mut properties = vec![
            json!({ "id": "thresholds", "value": thresholds(c.kind, page) }),
            json!({ "id": "custom.cellOptions", "value": { "type": "color-background" } }),
        ];
        properties.push(match c.kind {
            ColumnKind::Budget => json!({ "id": "unit", "value": "percentunit" }),
            ColumnKind::Burn => json!({ "id": "decimals", "value": 2 }),
            ColumnKind::Count => json!({ "id": "decimals", "value": 0 }),
        });
        overrides.push(json!({
            "matcher": { "id": "byName", "options": c.header },
            "properties": properties,
        }));
    }
    let panel = json!({
        "type": "table",
        "id": 1,
        "title": "Systems: SLOs paging, out of budget, budget left and burn rate",
        "description": "One row per system (Prometheus `system` label). Click a column header to sort; click a system to open its dashboard. Reads the recording rules of `latamctl render alerts`.",
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "x": 0, "y": 0, "w": 24, "h": 22 },
        "targets": targets,
        "transformations": [
            { "id": "merge", "options": {} },
            { "id": "organize", "options": {
                "excludeByName": { "Time": true },
                "indexByName": { "system": 0, "namespace": 1 },
                "renameByName": Value::Object(rename),
            } }
        ],
        "fieldConfig": { "defaults": { "custom": { "align": "auto", "filterable": true } }, "overrides": overrides },
        "options": {
            "showHeader": true,
            "sortBy": [{ "displayName": columns[0].header, "desc": true }],
        },
    });
    let doc = json!({
        "uid": FLEET_GRAFANA_UID,
        "title": format!("{} / fleet: SLOs of every system", spec.metadata.name),
        "description": format!(
            "Generated by `latamctl render dashboards --format grafana --fleet` from the SLO spec `{}`; do not edit, render again.",
            spec.metadata.name
        ),
        "tags": ["latamctl", "slo", "fleet"],
        "timezone": "browser",
        "editable": true,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-1h", "to": "now" },
        "annotations": { "list": [] },
        "links": [{ "title": "System dashboard", "type": "link", "url": format!("/d/{GRAFANA_UID}"), "keepTime": true }],
        "templating": {
            "list": [
                {
                    "name": "datasource", "label": "Data source", "type": "datasource",
                    "query": "prometheus", "current": {}, "hide": 0, "refresh": 1
                },
                super::query_variable("namespace", "Namespace", "label_values(latamctl_slo:sli_error:ratio_rate5m, namespace)"),
                super::query_variable("system", "System", "label_values(latamctl_slo:sli_error:ratio_rate5m{namespace=~\"$namespace\"}, system)"),
            ]
        },
        "panels": [panel],
    });
    pretty(&doc)
}

/// The Datadog fleet dashboard: a query table, a row per `system` tag, each SLO's budget
/// left and burn rate as columns (conditional colours at the same thresholds), and a link
/// from each system to the per-system dashboard with `system` set.
pub fn datadog_fleet(spec: &SloSpec) -> Result<String> {
    let page = spec.page_burn_rate();
    let requests: Vec<Value> = columns(spec)?
        .into_iter()
        .filter(|c| !c.datadog.is_empty())
        .map(|c| {
            let formats = match c.kind {
                ColumnKind::Budget => json!([
                    { "comparator": "<", "value": 0, "palette": "white_on_red" },
                    { "comparator": "<", "value": 0.25, "palette": "white_on_yellow" },
                    { "comparator": ">=", "value": 0.25, "palette": "white_on_green" }
                ]),
                _ => json!([
                    { "comparator": ">=", "value": page, "palette": "white_on_red" },
                    { "comparator": ">", "value": 1, "palette": "white_on_yellow" },
                    { "comparator": "<=", "value": 1, "palette": "white_on_green" }
                ]),
            };
            json!({ "q": c.datadog, "aggregator": "last", "alias": c.header, "conditional_formats": formats })
        })
        .collect();
    let doc = json!({
        "title": format!("{} / fleet: SLOs of every system", spec.metadata.name),
        "description": format!(
            "Generated by `latamctl render dashboards --format datadog --fleet` from the SLO spec `{}`; one row per `system` tag. Authoritative SLO status: the Datadog SLOs of `latamctl render alerts --format datadog`.",
            spec.metadata.name
        ),
        "layout_type": "ordered",
        "template_variables": [
            { "name": "system", "prefix": "system", "available_values": [], "default": "*" }
        ],
        "widgets": [{
            "definition": {
                "type": "query_table",
                "title": "Systems: error budget left and burn rate per SLO",
                "has_search_bar": "always",
                "time": { "live_span": "1mo" },
                "requests": requests,
                "custom_links": [{
                    "label": "Open this system's dashboard",
                    "link": format!(
                        "/dashboard/lists?q={}&tpl_var_system={{{{system.value}}}}",
                        urlencode(&format!("{} / SLOs", spec.metadata.name))
                    ),
                }],
            }
        }],
    });
    pretty(&doc)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_table_has_two_columns_per_slo_and_links_to_the_system_dashboard() {
        let spec = SloSpec::builtin().unwrap();
        let g: Value = serde_json::from_str(&grafana_fleet(&spec).unwrap()).unwrap();
        let panel = &g["panels"][0];
        assert_eq!(panel["type"], "table");
        let targets = panel["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 2 + 2 * spec.spec.slos.len());
        assert!(
            targets
                .iter()
                .all(|t| t["instant"] == true && t["format"] == "table")
        );
        // Every target's value column is renamed to a header, and every header has colours.
        let renames = &panel["transformations"][1]["options"]["renameByName"];
        let overrides = panel["fieldConfig"]["overrides"].as_array().unwrap();
        for t in targets {
            let header = renames[format!("Value #{}", t["refId"].as_str().unwrap())]
                .as_str()
                .unwrap();
            assert!(
                overrides.iter().any(|o| o["matcher"]["options"] == header),
                "{header}"
            );
        }
        let link = overrides[0]["properties"][0]["value"][0]["url"]
            .as_str()
            .unwrap();
        assert!(link.starts_with(&format!("/d/{GRAFANA_UID}?")), "{link}");
        assert!(link.contains("var-system=${__value.raw}"), "{link}");
        // The page threshold is the spec's.
        let page = spec.page_burn_rate();
        let paging = targets[0]["expr"].as_str().unwrap();
        assert!(
            paging.contains(&format!(">= bool {}", trim_float(page))),
            "{paging}"
        );
        for slo in &spec.spec.slos {
            assert!(
                paging.contains(&format!("slo=\"{}\"", slo.name)),
                "{paging}"
            );
        }

        let d: Value = serde_json::from_str(&datadog_fleet(&spec).unwrap()).unwrap();
        let table = &d["widgets"][0]["definition"];
        assert_eq!(table["type"], "query_table");
        let requests = table["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 2 * spec.spec.slos.len());
        for r in requests {
            let q = r["q"].as_str().unwrap();
            assert!(q.contains(" by {system}"), "{q}");
            assert!(q.contains("$system"), "{q}");
        }
        assert!(
            table["custom_links"][0]["link"]
                .as_str()
                .unwrap()
                .contains("tpl_var_system={{system.value}}")
        );
    }
}
