//! Datadog synthetic tests and log monitors as Terraform JSON (`datadog_synthetics_test`,
//! `datadog_monitor` of type `log alert`), from the spec's `synthetics` section and its
//! threshold alerts (seed 4.2 and 5.1):
//!
//! - an API test on `/readyz`: 200 and `ready`, faster than the slow-request threshold;
//! - a multistep API test: POST a message, extract `transaction_id`, GET `/data/{id}` until
//!   200 (retried up to `storeWithin`) with the same id and message back;
//! - an SSL test on the ingress host: valid, and not expiring within `alertDaysBeforeExpiry`;
//! - log monitors on the worker's dead-letter and store-refusal events ([`crate::event`]).
//!
//! Every test alerts after failing for the error-rate alert's `for` (3 minutes in the seed),
//! from any location.

use std::time::Duration;

use serde_json::{Map, json};

use super::Datadog;
use crate::slo::spec::{Indicator, SloSpec, Synthetics, trim_float};
use crate::slo::{Error, Result};

/// Datadog synthetics variable with the API's bearer token (a secure global variable).
const TOKEN_VARIABLE: &str = "LATAMCTL_API_TOKEN";
/// What the multistep test extracts from the POST's answer.
const ID_VARIABLE: &str = "TRANSACTION_ID";

/// Requests slower than this fail the tests: the threshold of the spec's latency alert on
/// the request histogram (seed 5.1: 400 ms), else the latency SLO's.
pub fn slow_request(spec: &SloSpec) -> Result<Duration> {
    let alert = spec.spec.alerts.iter().find_map(|a| match &a.indicator {
        Indicator::Latency(l) if l.histogram == crate::metric::HTTP_REQUEST_DURATION_SECONDS => {
            Some(l.threshold)
        }
        _ => None,
    });
    let slo = || {
        spec.spec.slos.iter().find_map(|s| match &s.indicator {
            Indicator::Latency(l)
                if l.histogram == crate::metric::HTTP_REQUEST_DURATION_SECONDS =>
            {
                Some(l.threshold)
            }
            _ => None,
        })
    };
    alert.or_else(slo).ok_or_else(|| Error::Render {
        backend: "datadog synthetics",
        message: "the spec has no latency alert or SLO on http_request_duration_seconds to take the slow-request threshold from".into(),
    })
}

/// How long a test must fail before it alerts: the `for` of the spec's error-ratio alert on
/// `http_requests_total` (seed 5.1: 3 minutes).
pub fn failure_duration(spec: &SloSpec) -> Result<Duration> {
    spec.spec
        .alerts
        .iter()
        .find_map(|a| match &a.indicator {
            Indicator::Ratio(r)
                if r.total
                    .iter()
                    .any(|t| t == crate::metric::HTTP_REQUESTS_TOTAL) =>
            {
                Some(a.for_)
            }
            _ => None,
        })
        .ok_or_else(|| Error::Render {
            backend: "datadog synthetics",
            message: "the spec has no error-ratio alert on http_requests_total to take how long a test must fail from".into(),
        })
}

fn settings(spec: &SloSpec) -> Result<&Synthetics> {
    spec.spec.synthetics.as_ref().ok_or_else(|| Error::Render {
        backend: "datadog synthetics",
        message: format!(
            "the SLO spec `{}` has no spec.synthetics section (base URL, locations, tickEvery, topic, storeWithin, ssl); see examples/slo.yaml",
            spec.metadata.name
        ),
    })
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// Terraform JSON: three synthetic tests and the log monitors.
pub fn terraform(spec: &SloSpec) -> Result<String> {
    let syn = settings(spec)?;
    let dd = Datadog::new(spec);
    let base = syn.base_url.trim_end_matches('/');
    let slow = ms(slow_request(spec)?);
    let failing_for = failure_duration(spec)?;
    let name = &spec.metadata.name;
    let options = |tick: u64| {
        json!({
            "tick_every": tick,
            "min_failure_duration": failing_for.as_secs(),
            "min_location_failed": 1,
            "retry": { "count": 1, "interval": 1000 },
            "monitor_options": { "renotify_interval": 120 },
        })
    };
    let tick = syn.tick_every.as_secs();
    let message = |what: &str| {
        format!(
            "{what}\n\nRunbook: {}\n${{var.datadog_notify}}",
            spec.runbook_url("LatamctlSynthetics", None)
        )
    };
    let mut tests = Map::new();
    tests.insert(
        format!("{}_readyz", dd.resource_name("api")),
        json!({
            "name": format!("[{name}] API ready from every location"),
            "type": "api",
            "subtype": "http",
            "status": "live",
            "message": message("GET /readyz is failing or slower than the slow-request threshold: the API cannot take messages from outside. Check `latamctl status` and the ingress."),
            "locations": syn.locations,
            "tags": dd.tags(&[("check", "readyz")]),
            "request_definition": { "method": "GET", "url": format!("{base}/readyz"), "timeout": 10 },
            "assertion": [
                { "type": "statusCode", "operator": "is", "target": "200" },
                { "type": "responseTime", "operator": "lessThan", "target": slow },
                { "type": "body", "operator": "validatesJSONPath",
                  "targetjsonpath": { "jsonpath": "$.status", "operator": "is", "targetvalue": "ready" } },
            ],
            "options_list": options(tick),
        }),
    );
    let body = json!({
        "topic_arn": syn.topic,
        "message": "datadog synthetic {{ SYNTHETIC_RUN }}",
        "attributes": { "source": "datadog-synthetics" },
    })
    .to_string();
    let auth = json!({
        "Content-Type": "application/json",
        "Authorization": format!("Bearer {{{{ {TOKEN_VARIABLE} }}}}"),
    });
    let store_within = syn.store_within.as_secs();
    // Datadog retries a step at most 5 times, at most 5 s apart: as close to `storeWithin`
    // as that allows.
    let retries = store_within.clamp(1, 5);
    let interval_ms = (store_within * 1000 / retries).min(5000);
    tests.insert(
        format!("{}_post_then_get", dd.resource_name("api")),
        json!({
            "name": format!("[{name}] A posted message is stored and read back"),
            "type": "api",
            "subtype": "multi",
            "status": "live",
            "message": message("POST /ingresar-datos then GET /data/{id} failed: messages are not accepted, or not stored within storeWithin. Check `latamctl status` (queue age, DLQ, database)."),
            "locations": syn.locations,
            "tags": dd.tags(&[("check", "end-to-end")]),
            "config_variable": [
                { "type": "global", "name": TOKEN_VARIABLE, "id": "${var.latamctl_api_token_variable_id}" },
                { "type": "text", "name": "SYNTHETIC_RUN", "pattern": "{{ numeric(10) }}" },
            ],
            "api_step": [
                {
                    "name": "POST a message",
                    "subtype": "http",
                    "request_definition": { "method": "POST", "url": format!("{base}/ingresar-datos"), "body": body, "timeout": 10 },
                    "request_headers": auth,
                    "assertion": [
                        { "type": "statusCode", "operator": "is", "target": "200" },
                        { "type": "responseTime", "operator": "lessThan", "target": slow },
                    ],
                    "extracted_value": [
                        { "name": ID_VARIABLE, "type": "http_body", "parser": { "type": "json_path", "value": "$.transaction_id" } },
                    ],
                },
                {
                    "name": "GET it back",
                    "subtype": "http",
                    "request_definition": { "method": "GET", "url": format!("{base}/data/{{{{ {ID_VARIABLE} }}}}"), "timeout": 10 },
                    "request_headers": auth,
                    // 404 until the worker stored it: retried for up to storeWithin.
                    "retry": { "count": retries, "interval": interval_ms },
                    "assertion": [
                        { "type": "statusCode", "operator": "is", "target": "200" },
                        { "type": "body", "operator": "validatesJSONPath",
                          "targetjsonpath": { "jsonpath": "$.transaction_id", "operator": "is", "targetvalue": format!("{{{{ {ID_VARIABLE} }}}}") } },
                        { "type": "body", "operator": "validatesJSONPath",
                          "targetjsonpath": { "jsonpath": "$.topic", "operator": "is", "targetvalue": syn.topic } },
                    ],
                },
            ],
            "options_list": options(tick),
        }),
    );
    tests.insert(
        format!("{}_certificate", dd.resource_name("api")),
        json!({
            "name": format!("[{name}] TLS certificate of {} valid and not about to expire", syn.ssl.host),
            "type": "api",
            "subtype": "ssl",
            "status": "live",
            "message": message(&format!("The certificate of {}:{} is invalid or expires within {} days: renew it (cert-manager, ACM).", syn.ssl.host, syn.ssl.port, syn.ssl.alert_days_before_expiry)),
            "locations": syn.locations,
            "tags": dd.tags(&[("check", "certificate")]),
            "request_definition": { "host": syn.ssl.host, "port": syn.ssl.port },
            "assertion": [
                { "type": "certificate", "operator": "isInMoreThan", "target": syn.ssl.alert_days_before_expiry.to_string() },
            ],
            "options_list": {
                "tick_every": tick.max(3600),
                "accept_self_signed": false,
                "check_certificate_revocation": true,
                "min_failure_duration": 0,
                "min_location_failed": 1,
            },
        }),
    );
    let mut monitors = Map::new();
    for (key, level, text, what) in crate::event::ALL {
        monitors.insert(
            format!("{}_log_{key}", dd.resource_name("worker")),
            json!({
                "name": format!("[{name}] {what}"),
                "type": "log alert",
                "query": log_query(spec, level, text),
                "message": message(&format!("{what} Log event: \"{text}\" (`latamctl drain --queue dlq --peek` shows dead-lettered messages).")),
                "monitor_thresholds": { "critical": 0 },
                "priority": 3,
                "tags": dd.tags(&[("event", key)]),
            }),
        );
    }
    let doc = json!({
        "//": format!(
            "Generated by `latamctl render synthetics --format datadog` from the SLO spec `{name}`; apply with Terraform (provider DataDog/datadog). Thresholds: requests slower than {}ms fail (the spec's slow-request alert), a test alerts after {} of failures (the error-rate alert's `for`).",
            slow,
            crate::slo::promql::duration(failing_for)
        ),
        "terraform": super::terraform_block(),
        "variable": {
            "datadog_notify": {
                "type": "string",
                "default": "",
                "description": "Appended to every message: who to notify (@pagerduty-latamctl, @slack-sre)."
            },
            "latamctl_api_token_variable_id": {
                "type": "string",
                "description": format!("Id of the Datadog synthetics global variable (secure) holding the API token, used as {{{{ {TOKEN_VARIABLE} }}}}.")
            }
        },
        "resource": {
            "datadog_synthetics_test": tests,
            "datadog_monitor": monitors,
        }
    });
    crate::slo::canonical_json(&doc, "datadog synthetics")
}

/// A log monitor query: the event's message (the JSON log's top-level `message`, Datadog's
/// reserved attribute, which a quoted phrase searches) at its level
/// from the worker pods (unified service tag `<partOf>-worker` of the Helm chart, `partOf`
/// being the spec's name by default), counted over 5 minutes per system.
fn log_query(spec: &SloSpec, level: &str, text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "logs(\"service:{}-worker status:{level} \\\"{escaped}\\\"\").index(\"*\").rollup(\"count\").by(\"system\").last(\"5m\") > {}",
        spec.metadata.name,
        trim_float(0.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn rendered() -> Value {
        serde_json::from_str(&terraform(&SloSpec::builtin().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn terraform_matches_snapshot() {
        let spec = SloSpec::builtin().unwrap();
        insta::assert_snapshot!("synthetics_terraform", terraform(&spec).unwrap());
    }

    #[test]
    fn the_multistep_test_posts_extracts_the_id_and_polls_until_stored() {
        let spec = SloSpec::builtin().unwrap();
        let doc = rendered();
        let tests = doc["resource"]["datadog_synthetics_test"]
            .as_object()
            .unwrap();
        let multi = tests
            .values()
            .find(|t| t["subtype"] == "multi")
            .expect("a multistep test");
        let steps = multi["api_step"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0]["request_definition"]["method"], "POST");
        assert!(
            steps[0]["request_definition"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/ingresar-datos")
        );
        assert_eq!(steps[0]["extracted_value"][0]["name"], ID_VARIABLE);
        assert_eq!(
            steps[0]["extracted_value"][0]["parser"]["value"],
            "$.transaction_id"
        );
        let body: Value =
            serde_json::from_str(steps[0]["request_definition"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["topic_arn"],
            spec.spec.synthetics.as_ref().unwrap().topic
        );
        let get = &steps[1];
        assert_eq!(
            get["request_definition"]["url"],
            "https://ingest.example.com/data/{{ TRANSACTION_ID }}"
        );
        // Retried for the whole storeWithin (30 s in the example).
        let retry = &get["retry"];
        assert!(
            retry["count"].as_u64().unwrap() * retry["interval"].as_u64().unwrap() >= 25_000,
            "{retry}"
        );
        assert_eq!(
            get["assertion"][1]["targetjsonpath"]["targetvalue"],
            "{{ TRANSACTION_ID }}"
        );
    }

    #[test]
    fn thresholds_come_from_the_spec() {
        let spec = SloSpec::builtin().unwrap();
        let doc = rendered();
        let tests = doc["resource"]["datadog_synthetics_test"]
            .as_object()
            .unwrap();
        // Seed 5.1: 400 ms and 3 minutes, read from the alerts.
        assert_eq!(slow_request(&spec).unwrap(), Duration::from_millis(400));
        assert_eq!(failure_duration(&spec).unwrap(), Duration::from_secs(180));
        let ready = tests.values().find(|t| t["subtype"] == "http").unwrap();
        assert_eq!(ready["assertion"][1]["target"], "400");
        assert_eq!(ready["options_list"]["min_failure_duration"], 180);
        assert_eq!(ready["options_list"]["tick_every"], 60);
        assert!(
            ready["locations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("pl:")),
            "a private location"
        );
        let ssl = tests.values().find(|t| t["subtype"] == "ssl").unwrap();
        assert_eq!(ssl["assertion"][0]["operator"], "isInMoreThan");
        assert_eq!(ssl["assertion"][0]["target"], "14");
        assert_eq!(ssl["request_definition"]["host"], "ingest.example.com");

        // A different alert threshold moves the tests' threshold with it.
        let mut spec = spec;
        for a in &mut spec.spec.alerts {
            if let Indicator::Latency(l) = &mut a.indicator {
                l.threshold = Duration::from_millis(800);
            }
        }
        assert_eq!(slow_request(&spec).unwrap(), Duration::from_millis(800));
    }

    #[test]
    fn log_monitors_match_the_events_the_worker_logs() {
        let doc = rendered();
        let monitors = doc["resource"]["datadog_monitor"].as_object().unwrap();
        assert_eq!(monitors.len(), crate::event::ALL.len());
        for (_, level, text, _) in crate::event::ALL {
            let m = monitors
                .values()
                .find(|m| m["query"].as_str().unwrap().contains(text))
                .unwrap_or_else(|| panic!("no monitor for {text:?}"));
            assert_eq!(m["type"], "log alert");
            let q = m["query"].as_str().unwrap();
            assert!(q.contains(&format!("status:{level}")), "{q}");
            // The Helm chart's unified service tag of the worker pods.
            assert!(q.contains("service:latamctl-worker "), "{q}");
            assert!(
                q.ends_with("> 0") && m["monitor_thresholds"]["critical"] == 0,
                "{q}"
            );
        }
        // The worker logs exactly these texts (the constants are its log messages).
        let worker = [
            include_str!("../../worker/mod.rs"),
            include_str!("../../worker/gate.rs"),
        ]
        .concat();
        for name in ["POISON", "REJECTED_BY_STORE", "STORE_REFUSES_WRITES"] {
            assert!(
                worker.contains(&format!("message = crate::event::{name}")),
                "the worker no longer logs crate::event::{name}"
            );
        }
    }

    #[test]
    fn a_spec_without_synthetics_says_what_to_add() {
        let mut spec = SloSpec::builtin().unwrap();
        spec.spec.synthetics = None;
        let e = terraform(&spec).unwrap_err().to_string();
        assert!(e.contains("spec.synthetics"), "{e}");
    }
}
