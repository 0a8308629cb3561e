//! The panels of every dashboard, row by row, with the Grafana (PromQL) and Datadog query of
//! each panel side by side so the two dashboards cannot show different things.

use super::*;

/// The dashboards' rows, each from its own function, Grafana and Datadog queries side by side.
pub(super) fn rows(spec: &SloSpec) -> Result<Vec<Row>> {
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
pub(super) struct Queries<'a> {
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
pub(super) fn quantile(p: &str, hist: &str, by: &str, extra: &str) -> String {
    format!(
        "histogram_quantile({p}, sum by (le, {by}) ({}))",
        rate(&format!("{hist}_bucket"), extra)
    )
}

/// Service level objectives: each SLO's attainment and budget left, and the burn rates.
pub(super) fn slo_row(c: &Queries, spec: &SloSpec) -> Result<Vec<Panel>> {
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
pub(super) fn red_row(c: &Queries) -> Result<Vec<Panel>> {
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
pub(super) fn pipeline_row(c: &Queries) -> Result<Vec<Panel>> {
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
                    rate(
                        &format!("{}_bucket", crate::metric::WORKER_BATCH_DURATION_SECONDS),
                        ""
                    )
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
pub(super) fn queue_row(c: &Queries) -> Result<Vec<Panel>> {
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
pub(super) fn database_row(c: &Queries) -> Result<Vec<Panel>> {
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
pub(super) fn resources_row(c: &Queries) -> Result<Vec<Panel>> {
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
