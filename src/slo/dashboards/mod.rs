//! Dashboards from the SLO spec: one list of panels (SLIs, error budget and burn rate per SLO,
//! RED per route, the pipeline, queue, database and process resources), each with its PromQL
//! and its Datadog query side by side, rendered as a Grafana dashboard or a Datadog one.
//! Both show the same panels by construction.

use serde_json::{Value, json};

use super::datadog::{Datadog, filter};
use super::promql::{self, Matchers};
use super::spec::{SloSpec, trim_float};
use super::{Error, Result};

mod fleet;
mod rows;

pub use fleet::{FLEET_GRAFANA_UID, datadog_fleet, fleet_queries, grafana_fleet};

use rows::rows;

/// Grafana's dashboard `uid` (stable, so links survive re-imports).
pub const GRAFANA_UID: &str = "latamctl";

/// Routes that are not user traffic.
const OPERATIONAL_ROUTES: &str = "/healthz|/readyz|/metrics";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Timeseries,
    Stat,
}

struct Query {
    promql: String,
    legend: String,
    datadog: String,
}

struct Panel {
    title: String,
    description: String,
    kind: Kind,
    /// Grafana unit id.
    unit: &'static str,
    /// Stat panels: value below which the panel turns red.
    red_below: Option<f64>,
    queries: Vec<Query>,
}

struct Row {
    title: String,
    panels: Vec<Panel>,
}

/// `metric{namespace=~"$namespace", system=~"$system", extra}`.
fn sel(metric: &str, extra: &str) -> String {
    let mut m = String::from("namespace=~\"$namespace\", system=~\"$system\"");
    if !extra.is_empty() {
        m.push_str(", ");
        m.push_str(extra);
    }
    format!("{metric}{{{m}}}")
}

fn rate(metric: &str, extra: &str) -> String {
    format!("rate({}[$__rate_interval])", sel(metric, extra))
}

fn ts(title: &str, description: &str, unit: &'static str, queries: Vec<Query>) -> Panel {
    Panel {
        title: title.into(),
        description: description.into(),
        kind: Kind::Timeseries,
        unit,
        red_below: None,
        queries,
    }
}

fn q(promql: String, legend: &str, datadog: String) -> Query {
    Query {
        promql,
        legend: legend.into(),
        datadog,
    }
}

fn pretty(v: &Value) -> Result<String> {
    super::canonical_json(v, "dashboard")
}

fn query_variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "query": { "query": query, "refId": name },
        "definition": query,
        "refresh": 2,
        "multi": true,
        "includeAll": true,
        "allValue": ".*",
        "sort": 1,
        "current": { "selected": true, "text": ["All"], "value": ["$__all"] }
    })
}

/// The Grafana dashboard (JSON model, schema 39), for the Grafana sidecar or an import.
pub fn grafana(spec: &SloSpec) -> Result<String> {
    let mut panels = Vec::new();
    let mut id = 0;
    let mut y = 0;
    for row in rows(spec)? {
        id += 1;
        panels.push(json!({
            "type": "row", "id": id, "title": row.title, "collapsed": false,
            "gridPos": { "x": 0, "y": y, "w": 24, "h": 1 }, "panels": []
        }));
        y += 1;
        let mut x = 0;
        let mut line_height = 0;
        for p in row.panels {
            let (w, h) = match p.kind {
                Kind::Stat => (4, 4),
                Kind::Timeseries => (8, 8),
            };
            if x + w > 24 {
                x = 0;
                y += line_height;
                line_height = 0;
            }
            line_height = line_height.max(h);
            id += 1;
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    json!({
                        "refId": ((b'A' + i as u8) as char).to_string(),
                        "datasource": { "type": "prometheus", "uid": "${datasource}" },
                        "expr": q.promql,
                        "legendFormat": q.legend,
                    })
                })
                .collect();
            let mut defaults = json!({ "unit": p.unit });
            if let Some(red) = p.red_below {
                defaults["thresholds"] = json!({
                    "mode": "absolute",
                    "steps": [ { "color": "red", "value": null }, { "color": "green", "value": red } ]
                });
                defaults["decimals"] = json!(3);
            }
            let mut panel = json!({
                "type": match p.kind { Kind::Stat => "stat", Kind::Timeseries => "timeseries" },
                "id": id,
                "title": p.title,
                "description": p.description,
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "gridPos": { "x": x, "y": y, "w": w, "h": h },
                "targets": targets,
                "fieldConfig": { "defaults": defaults, "overrides": [] },
            });
            panel["options"] = match p.kind {
                Kind::Stat => json!({
                    "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                    "colorMode": "background", "graphMode": "none", "textMode": "auto"
                }),
                Kind::Timeseries => json!({
                    "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                    "tooltip": { "mode": "multi", "sort": "desc" }
                }),
            };
            panels.push(panel);
            x += w;
        }
        y += line_height;
    }
    let doc = json!({
        "uid": GRAFANA_UID,
        "title": format!("{} / SLOs, RED, pipeline, queue and database", spec.metadata.name),
        "description": format!(
            "Generated by `latamctl render dashboards --format grafana` from the SLO spec `{}`; do not edit, render again. SLO panels read the recording rules of `latamctl render alerts`.",
            spec.metadata.name
        ),
        "tags": ["latamctl", "slo"],
        "timezone": "browser",
        "editable": true,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-6h", "to": "now" },
        "annotations": { "list": [] },
        "templating": {
            "list": [
                {
                    "name": "datasource", "label": "Data source", "type": "datasource",
                    "query": "prometheus", "current": {}, "hide": 0, "refresh": 1
                },
                query_variable("namespace", "Namespace", "label_values(http_requests_total, namespace)"),
                query_variable("system", "System", "label_values(http_requests_total{namespace=~\"$namespace\"}, system)"),
            ]
        },
        "panels": panels,
    });
    pretty(&doc)
}

/// The same panels as a Datadog dashboard (the JSON `POST /api/v1/dashboard` takes, or
/// "Import dashboard JSON" in the UI).
pub fn datadog(spec: &SloSpec) -> Result<String> {
    let mut groups = Vec::new();
    for row in rows(spec)? {
        let widgets: Vec<Value> = row
            .panels
            .into_iter()
            .map(|p| {
                let definition = match p.kind {
                    Kind::Stat => json!({
                        "type": "query_value",
                        "title": p.title,
                        "requests": p.queries.iter().map(|q| json!({ "q": q.datadog, "aggregator": "avg" })).collect::<Vec<_>>(),
                        "precision": 3,
                        "autoscale": false,
                        "time": { "live_span": "1mo" },
                    }),
                    Kind::Timeseries => json!({
                        "type": "timeseries",
                        "title": p.title,
                        "show_legend": true,
                        "requests": p.queries.iter().map(|q| json!({ "q": q.datadog, "display_type": "line" })).collect::<Vec<_>>(),
                    }),
                };
                json!({ "definition": definition })
            })
            .collect();
        groups.push(json!({
            "definition": {
                "type": "group",
                "title": row.title,
                "layout_type": "ordered",
                "widgets": widgets,
            }
        }));
    }
    let doc = json!({
        "title": format!("{} / SLOs, RED, pipeline, queue and database", spec.metadata.name),
        "description": format!(
            "Generated by `latamctl render dashboards --format datadog` from the SLO spec `{}`: the panels of the Grafana dashboard over the OpenMetrics-scraped metrics (namespace `{}`). Authoritative SLO status: the Datadog SLOs of `latamctl render alerts --format datadog`.",
            spec.metadata.name, spec.spec.datadog.metric_namespace
        ),
        "layout_type": "ordered",
        "template_variables": [
            { "name": "system", "prefix": "system", "available_values": [], "default": "*" }
        ],
        "widgets": groups,
    });
    pretty(&doc)
}

#[cfg(test)]
mod tests;
