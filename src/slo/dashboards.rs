//! Dashboards from the SLO spec: one list of panels (SLIs, error budget and burn rate per SLO,
//! RED per route, the pipeline, queue, database and process resources), each with its PromQL
//! and its Datadog query side by side, rendered as a Grafana dashboard or a Datadog one.
//! Both show the same panels by construction.

use serde_json::{Value, json};

use super::datadog::{Datadog, filter};
use super::promql::{self, Matchers};
use super::spec::{SloSpec, trim_float};
use super::{Error, Result};

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

/// The dashboards' rows, each from its own function, Grafana and Datadog queries side by side.
fn rows(spec: &SloSpec) -> Result<Vec<Row>> {
    let c = Queries::new(spec);
    Ok(vec![
        Row {
            title: "Service level objectives".into(),
            panels: slo_row(&c, spec)?,
        },
        Row {
            title: "Requests (RED)".into(),
            panels: red_row(&c)?,
        },
        Row {
            title: "Pipeline".into(),
            panels: pipeline_row(&c)?,
        },
        Row {
            title: "Queue".into(),
            panels: queue_row(&c)?,
        },
        Row {
            title: "Database".into(),
            panels: database_row(&c)?,
        },
        Row {
            title: "Process resources".into(),
            panels: resources_row(&c)?,
        },
    ])
}

/// What every row's queries share: the Datadog names, the `$system` template variable and
/// the matcher that leaves out probes and scrapes.
struct Queries<'a> {
    dd: Datadog<'a>,
    sys: &'static str,
    user_routes: String,
}

impl<'a> Queries<'a> {
    fn new(spec: &'a SloSpec) -> Self {
        Self {
            dd: Datadog::new(spec),
            sys: "$system",
            user_routes: format!("route!~\"{OPERATIONAL_ROUTES}\""),
        }
    }

    /// A Datadog filter: `text`'s matchers plus the template variable.
    fn ddf(&self, text: &str) -> Result<String> {
        let m = Matchers::parse(text).map_err(|message| Error::Render {
            backend: "dashboard",
            message,
        })?;
        let f = filter(&[&m])?;
        let sys = self.sys;
        Ok(if f == "{*}" {
            format!("{{{sys}}}")
        } else {
            format!("{{{sys} AND {}", &f[1..])
        })
    }
}

impl Queries<'_> {
    /// A rate panel of `metric` by the label `by`.
    fn counter_by(&self, title: &str, desc: &str, metric: &str, by: &str) -> Result<Panel> {
        Ok(ts(
            title,
            desc,
            "ops",
            vec![q(
                format!("sum by ({by}) ({})", rate(metric, "")),
                &format!("{{{{{by}}}}}"),
                format!(
                    "sum:{}{} by {{{by}}}.as_rate()",
                    self.dd.counter(metric),
                    self.ddf("")?
                ),
            )],
        ))
    }
}

/// The `p` quantile of histogram `hist` by label `by`, over the events `extra` selects.
fn quantile(p: &str, hist: &str, by: &str, extra: &str) -> String {
    format!(
        "histogram_quantile({p}, sum by (le, {by}) ({}))",
        rate(&format!("{hist}_bucket"), extra)
    )
}

/// Service level objectives: each SLO's attainment and budget left, and the burn rates.
fn slo_row(c: &Queries, spec: &SloSpec) -> Result<Vec<Panel>> {
    let (dd, sys) = (&c.dd, c.sys);
    let mut slo_panels = Vec::new();
    let mut burn_queries = Vec::new();
    let burn_window = spec.page_window();
    for slo in &spec.spec.slos {
        let window = promql::duration(slo.time_window);
        let record = promql::sli_error_record(slo.time_window);
        let labels = format!("slo=\"{}\"", slo.name);
        let budget = trim_float(slo.error_budget());
        let good = dd.good_ratio(&slo.indicator, sys)?;
        slo_panels.push(Panel {
            title: format!("{} ({window})", slo.display_name),
            description: format!(
                "Good events over {window}; objective {}%. {}",
                trim_float(slo.target * 100.0),
                slo.description.trim()
            ),
            kind: Kind::Stat,
            unit: "percentunit",
            red_below: Some(slo.target),
            queries: vec![q(
                format!("1 - {}", sel(&record, &labels)),
                "{{system}}",
                good.clone(),
            )],
        });
        slo_panels.push(Panel {
            title: format!("{}: error budget left", slo.display_name),
            description: format!(
                "Share of the {window} error budget ({}% bad events) not spent yet; below 0 the SLO is missed.",
                trim_float(slo.error_budget() * 100.0)
            ),
            kind: Kind::Stat,
            unit: "percentunit",
            red_below: Some(0.0),
            queries: vec![q(
                format!("1 - {} / {budget}", sel(&record, &labels)),
                "{{system}}",
                format!("1 - (1 - ({good})) / {budget}"),
            )],
        });
        burn_queries.push(q(
            format!(
                "{} / {budget}",
                sel(&promql::sli_error_record(burn_window), &labels)
            ),
            &format!("{} {{{{system}}}}", slo.name),
            format!("(1 - ({good})) / {budget}"),
        ));
    }
    let mut slo_row = slo_panels;
    slo_row.push(ts(
        &format!(
            "Burn rate ({} window)",
            promql::duration(burn_window)
        ),
        &format!(
            "Bad-event ratio divided by the error budget: 1 spends the budget exactly over the SLO window; {} pages.",
            trim_float(spec.page_burn_rate())
        ),
        "none",
        burn_queries,
    ));
    Ok(slo_row)
}

/// Requests (RED): rate, errors and latency by route.
fn red_row(c: &Queries) -> Result<Vec<Panel>> {
    let (dd, user_routes) = (&c.dd, c.user_routes.clone());
    let ddf = |text: &str| c.ddf(text);
    let requests = dd.counter(crate::metric::HTTP_REQUESTS_TOTAL);
    let duration = dd.distribution(crate::metric::HTTP_REQUEST_DURATION_SECONDS);
    let red = vec![
        ts(
            "Requests per second by route",
            "Every answered request, by route template (probes and scrapes excluded).",
            "reqps",
            vec![q(
                format!(
                    "sum by (route) ({})",
                    rate(crate::metric::HTTP_REQUESTS_TOTAL, &user_routes)
                ),
                "{{route}}",
                format!(
                    "sum:{requests}{} by {{route}}.as_rate()",
                    ddf(&user_routes)?
                ),
            )],
        ),
        ts(
            "Errors per second by route and status",
            "4xx are rejected client requests, 5xx failures of the bus or the store.",
            "reqps",
            vec![q(
                format!(
                    "sum by (route, status) ({})",
                    rate(crate::metric::HTTP_REQUESTS_TOTAL, "status=~\"4..|5..\"")
                ),
                "{{route}} {{status}}",
                format!(
                    "sum:{requests}{} by {{route,status}}.as_rate()",
                    ddf("status=~\"4..|5..\"")?
                ),
            )],
        ),
        ts(
            "Latency by route (p50, p95, p99)",
            "From the request-duration histogram; the latency SLO is 95 % under 200 ms.",
            "s",
            ["0.5", "0.95", "0.99"]
                .iter()
                .map(|p| -> Result<Query> {
                    let pn = trim_float(p.parse::<f64>().unwrap_or(0.0) * 100.0);
                    Ok(q(
                        quantile(
                            p,
                            crate::metric::HTTP_REQUEST_DURATION_SECONDS,
                            "route",
                            &user_routes,
                        ),
                        &format!("p{pn} {{{{route}}}}"),
                        format!("p{pn}:{duration}{} by {{route}}", ddf(&user_routes)?),
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    ];

    Ok(red)
}

/// Pipeline: published and stored rates, errors, retries, worker batches.
fn pipeline_row(c: &Queries) -> Result<Vec<Panel>> {
    let counter_by =
        |title: &str, desc: &str, metric: &str, by: &str| c.counter_by(title, desc, metric, by);
    let dd = &c.dd;
    let ddf = |text: &str| c.ddf(text);
    let pipeline = vec![
        ts(
            "Messages published and stored per second",
            "Published: accepted by the bus (POST answered 200). Stored: rows inserted by the worker.",
            "ops",
            vec![
                q(
                    format!("sum({})", rate(crate::metric::MESSAGES_PUBLISHED_TOTAL, "")),
                    "published",
                    format!(
                        "sum:{}{}.as_rate()",
                        dd.counter(crate::metric::MESSAGES_PUBLISHED_TOTAL),
                        ddf("")?
                    ),
                ),
                q(
                    format!("sum({})", rate(crate::metric::MESSAGES_STORED_TOTAL, "")),
                    "stored",
                    format!(
                        "sum:{}{}.as_rate()",
                        dd.counter(crate::metric::MESSAGES_STORED_TOTAL),
                        ddf("")?
                    ),
                ),
            ],
        ),
        counter_by(
            "Publish errors by type",
            "Publishes that failed (timeouts, bus unavailable, rejected).",
            crate::metric::PUBLISH_ERRORS_TOTAL,
            "error_type",
        )?,
        counter_by(
            "Retries by operation",
            "The retry-rate SLI's numerator: SNS publish and batch insert retries.",
            crate::metric::RETRIES_TOTAL,
            "operation",
        )?,
        counter_by(
            "Worker batches by outcome",
            "ok, partial (poison messages left for the DLQ) or store_error (batch returned to the queue).",
            crate::metric::WORKER_BATCHES_TOTAL,
            "outcome",
        )?,
        counter_by(
            "Poison messages by reason",
            "Received messages that could not be decoded; they reach the dead-letter queue.",
            crate::metric::POISON_MESSAGES_TOTAL,
            "reason",
        )?,
        ts(
            "Worker batch duration (p95)",
            "Receive to acknowledgement of a batch.",
            "s",
            vec![q(
                format!(
                    "histogram_quantile(0.95, sum by (le) ({}))",
                    rate("latamctl_worker_batch_duration_seconds_bucket", "")
                ),
                "p95",
                format!(
                    "p95:{}{}",
                    dd.distribution(crate::metric::WORKER_BATCH_DURATION_SECONDS),
                    ddf("")?
                ),
            )],
        ),
    ];
    Ok(pipeline)
}

/// Queue: depth by state and the oldest message's age.
fn queue_row(c: &Queries) -> Result<Vec<Panel>> {
    let dd = &c.dd;
    let ddf = |text: &str| c.ddf(text);
    let queue = vec![
        ts(
            "Queue depth",
            "Messages visible and in flight in the main queue, and in the dead-letter queue.",
            "short",
            vec![q(
                format!("max by (queue, state) ({})", sel(promql::QUEUE_DEPTH, "")),
                "{{queue}} {{state}}",
                format!(
                    "max:{}{} by {{queue,state}}",
                    dd.gauge(promql::QUEUE_DEPTH),
                    ddf("")?
                ),
            )],
        ),
        ts(
            "Oldest message age",
            "How long the oldest message has waited: growing means the workers do not keep up.",
            "s",
            vec![q(
                format!("max by (system) ({})", sel(promql::QUEUE_AGE, "")),
                "{{system}}",
                format!(
                    "max:{}{} by {{system}}",
                    dd.gauge(promql::QUEUE_AGE),
                    ddf("")?
                ),
            )],
        ),
    ];
    Ok(queue)
}

/// Database: query latency, errors, pool connections.
fn database_row(c: &Queries) -> Result<Vec<Panel>> {
    let dd = &c.dd;
    let ddf = |text: &str| c.ddf(text);
    let db = vec![
        ts(
            "Query latency by operation (p95)",
            "The DB-latency SLO is 95 % of queries under 100 ms.",
            "s",
            vec![q(
                quantile(
                    "0.95",
                    crate::metric::DB_QUERY_DURATION_SECONDS,
                    "operation",
                    "",
                ),
                "{{operation}}",
                format!(
                    "p95:{}{} by {{operation}}",
                    dd.distribution(crate::metric::DB_QUERY_DURATION_SECONDS),
                    ddf("")?
                ),
            )],
        ),
        ts(
            "Query errors by operation",
            "Failed or timed-out queries.",
            "ops",
            vec![q(
                format!(
                    "sum by (operation, error_type) ({})",
                    rate(crate::metric::DB_ERRORS_TOTAL, "")
                ),
                "{{operation}} {{error_type}}",
                format!(
                    "sum:{}{} by {{operation,error_type}}.as_rate()",
                    dd.counter(crate::metric::DB_ERRORS_TOTAL),
                    ddf("")?
                ),
            )],
        ),
        ts(
            "Connection pool",
            "Connections in use and idle; in use at the pool size means queries wait for a connection.",
            "short",
            vec![q(
                format!(
                    "sum by (state) ({})",
                    sel(crate::metric::DB_POOL_CONNECTIONS, "")
                ),
                "{{state}}",
                format!(
                    "sum:{}{} by {{state}}",
                    dd.gauge(crate::metric::DB_POOL_CONNECTIONS),
                    ddf("")?
                ),
            )],
        ),
    ];
    Ok(db)
}

/// Process resources: CPU and memory against their limits, ready replicas.
fn resources_row(c: &Queries) -> Result<Vec<Panel>> {
    let dd = &c.dd;
    let ddf = |text: &str| c.ddf(text);
    let process_by = "pod_name";
    let resources = vec![
        ts(
            "CPU used / limit",
            "Per process, against its cgroup CPU quota (the pod limit); the alert fires above 80 % for 10 minutes.",
            "percentunit",
            vec![q(
                format!(
                    "{} / {}",
                    rate(promql::CPU_SECONDS, ""),
                    sel(promql::CPU_LIMIT, "")
                ),
                "{{instance}}",
                format!(
                    "sum:{}{f} by {{{process_by}}}.as_rate() / avg:{}{f} by {{{process_by}}}",
                    dd.counter(promql::CPU_SECONDS),
                    dd.gauge(promql::CPU_LIMIT),
                    f = ddf("")?
                ),
            )],
        ),
        ts(
            "Memory used / limit",
            "Resident memory against the cgroup memory limit; the alert fires above 90 % for 5 minutes.",
            "percentunit",
            vec![q(
                format!(
                    "{} / {}",
                    sel(promql::MEMORY_RESIDENT, ""),
                    sel(promql::MEMORY_LIMIT, "")
                ),
                "{{instance}}",
                format!(
                    "avg:{}{f} by {{{process_by}}} / avg:{}{f} by {{{process_by}}}",
                    dd.gauge(promql::MEMORY_RESIDENT),
                    dd.gauge(promql::MEMORY_LIMIT),
                    f = ddf("")?
                ),
            )],
        ),
        ts(
            "Ready replicas",
            "Processes reporting ready (bus and store answer, not shutting down).",
            "short",
            vec![q(
                format!("sum by (component) ({})", sel(promql::READY, "")),
                "{{component}}",
                format!(
                    "sum:{}{} by {{component}}",
                    dd.gauge(promql::READY),
                    ddf("")?
                ),
            )],
        ),
    ];
    Ok(resources)
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
mod tests {
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
}
