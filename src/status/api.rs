//! The API's row: `/readyz`, and the error ratio and p95 from two `/metrics` samples a
//! window apart (Prometheus text parsed here).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Check, State};
use crate::api::PROBE_ROUTES;
use crate::api::client::ApiClient;
use crate::config::Config;

pub(super) async fn check_api(
    config: &Config,
    api: &str,
    token: Option<&str>,
    window: Duration,
) -> Check {
    let client = match ApiClient::new(
        api,
        token.map(str::to_owned),
        config.status.check_timeout,
        1,
    ) {
        Ok(c) => c,
        Err(e) => return Check::new("api", State::Fail).hint(e.to_string()),
    };
    let scrape = || async { http_figures(&client.metrics().await.ok()?) };
    // The window's first sample; the second comes after the readiness check.
    let first = if window.is_zero() {
        None
    } else {
        scrape().await
    };
    let started = Instant::now();
    let ready = client.readyz().await;
    let mut check = match ready {
        Err(e) => {
            return Check::new("api", State::Fail)
                .figure("url", api)
                .hint(format!(
                    "unreachable ({e}): is `latamctl serve` running there?"
                ));
        }
        Ok((status, body)) => {
            let ok = (200..300).contains(&status);
            let mut c = Check::new("api", if ok { State::Ok } else { State::Fail })
                .figure("url", api)
                .figure("readyz", status)
                .figure(
                    "readyz_ms",
                    format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
                );
            if !ok {
                let failing: Vec<String> = body["checks"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.as_str() != Some("ok"))
                            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                c = c.hint(format!("not ready: {}", failing.join("; ")));
            }
            c
        }
    };
    if first.is_some() {
        tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    }
    if let Some(last) = scrape().await {
        let (figures, over) = match &first {
            Some(first) => (
                last.since(first),
                humantime::format_duration(window).to_string(),
            ),
            None => (last, "since start".to_owned()),
        };
        check = check
            .figure("window", over)
            .figure("requests", figures.requests)
            .figure(
                "error_rate",
                format!("{:.2}%", figures.error_rate() * 100.0),
            );
        if let Some(p95) = figures.p95_seconds() {
            check = check.figure("p95_ms", format!("{:.1}", p95 * 1000.0));
            if p95 > config.status.p95_warn.as_secs_f64() {
                check.worsen(
                    State::Warn,
                    format!(
                        "p95 latency above {} (seed SLO)",
                        humantime::format_duration(config.status.p95_warn)
                    ),
                );
            }
        }
        if figures.requests > 0 && figures.error_rate() > config.status.error_rate_warn {
            check.worsen(
                State::Warn,
                format!(
                    "error rate above {:.1}% (seed alert): see the logs for 4xx/5xx causes",
                    config.status.error_rate_warn * 100.0
                ),
            );
        }
    }
    check
}

/// Request figures from an API's `/metrics` since it started (probes excluded).
#[derive(Debug, Default, PartialEq)]
pub struct HttpFigures {
    pub requests: u64,
    pub errors: u64,
    /// The latency histogram: (upper edge, cumulative count), edges ascending.
    pub buckets: Vec<(f64, f64)>,
}

impl HttpFigures {
    /// p95 from the latency histogram: the upper edge of the bucket holding the 95th
    /// percentile; `None` with no requests.
    pub fn p95_seconds(&self) -> Option<f64> {
        let &(_, total) = self.buckets.last()?;
        if total <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .find(|(_, count)| *count >= 0.95 * total)
            .map(|(edge, _)| *edge)
    }

    /// The figures of the requests between `earlier` and `self` (two samples of one
    /// process; a restart in between, counters lower than before, counts from zero).
    pub fn since(&self, earlier: &HttpFigures) -> HttpFigures {
        let restarted = self.requests < earlier.requests;
        let before = |edge: f64| {
            earlier
                .buckets
                .iter()
                .find(|(e, _)| *e == edge)
                .map_or(0.0, |(_, c)| *c)
        };
        let buckets: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|&(edge, count)| {
                let delta = if restarted {
                    count
                } else {
                    count - before(edge)
                };
                (edge, delta.max(0.0))
            })
            .collect();
        let (requests, errors) = if restarted {
            (self.requests, self.errors)
        } else {
            (
                self.requests - earlier.requests,
                self.errors.saturating_sub(earlier.errors),
            )
        };
        HttpFigures {
            requests,
            errors,
            buckets,
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

const DATA_ROUTE: &str = "/data/{transaction_id}";

/// Reads `http_requests_total` and `http_request_duration_seconds_bucket` out of the
/// Prometheus text format; `None` when the page does not parse.
pub fn http_figures(text: &str) -> Option<HttpFigures> {
    let samples = crate::slo::exposition::parse(text).ok()?;
    let mut figures = HttpFigures::default();
    let mut buckets: BTreeMap<String, f64> = BTreeMap::new();
    for sample in samples {
        let labels = &sample.labels;
        let route = labels.get("route").map(String::as_str);
        if route.is_some_and(|r| PROBE_ROUTES.contains(&r)) {
            continue;
        }
        match sample.name.as_str() {
            crate::metric::HTTP_REQUESTS_TOTAL => {
                let count = sample.value as u64;
                figures.requests += count;
                let status = labels.get("status").map(String::as_str).unwrap_or("");
                // 404 on GET /data/{id} means "not stored yet", the answer clients poll for.
                let polling = status == "404" && route == Some(DATA_ROUTE);
                if (status.starts_with('4') || status.starts_with('5')) && !polling {
                    figures.errors += count;
                }
            }
            name if name.strip_suffix("_bucket")
                == Some(crate::metric::HTTP_REQUEST_DURATION_SECONDS) =>
            {
                if let Some(le) = labels.get("le") {
                    *buckets.entry(le.clone()).or_default() += sample.value;
                }
            }
            _ => {}
        }
    }
    let mut edges: Vec<(f64, f64)> = buckets
        .into_iter()
        .filter_map(|(le, count)| {
            let edge = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((edge, count))
        })
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    figures.buckets = edges;
    Some(figures)
}
