//! Values for Datadog's own Helm charts (seed 4.3), so the cluster reports to Datadog without
//! exposing its endpoint:
//!
//! - `datadog/datadog`: the node Agent and the Cluster Agent, the API key only by Secret
//!   reference, logs from the pods that ask for them (the latamctl chart's
//!   `ad.datadoghq.com/latamctl.logs` annotation), the chart's `latamctl.io/system` and
//!   component labels as `system`/`component` tags (the monitors group by `system`), and an
//!   OTLP/HTTP receiver for `latamctl serve`'s traces (`[telemetry] otlp_endpoint`);
//! - `datadog/synthetics-private-location`: the private location worker that runs the
//!   synthetic tests of `render synthetics` from inside the cluster's network.
//!
//! The OpenMetrics check itself comes from the latamctl chart's pod annotations
//! (`datadog.enabled`), so the same `/metrics` reach Datadog with no code change.

use serde_json::{Value, json};

use super::{Error, Result};
use crate::config::Config;

/// Port of the Agent's OTLP/HTTP receiver on each node.
pub const OTLP_HTTP_PORT: u16 = 4318;

/// Pod labels of the latamctl chart turned into Datadog tags.
pub const POD_LABEL_TAGS: [(&str, &str); 2] = [
    ("latamctl.io/system", "system"),
    ("app.kubernetes.io/component", "component"),
];

/// What the Agent values need beyond the config.
#[derive(Debug, Clone)]
pub struct AgentInputs {
    pub env: String,
    /// Datadog site (`datadoghq.com`, `datadoghq.eu`, `us5.datadoghq.com`, ...).
    pub site: String,
    /// Secret holding the API key (key `api-key`), never the key itself.
    pub api_key_secret: String,
    /// Secret holding the private location's configuration (the JSON the Datadog UI gives
    /// when the private location is created), the chart's `configSecret`.
    pub private_location_secret: String,
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} {name:?} is not a Kubernetes Secret name (lowercase letters, digits, '-', '.')"
        )))
    }
}

/// The cluster name Datadog shows: `aws.eks_cluster`, else `<name>-<env>`.
fn cluster_name(config: &Config, env: &str) -> String {
    config
        .aws
        .eks_cluster
        .clone()
        .unwrap_or_else(|| format!("{}-{env}", config.name))
}

/// Values for the `datadog/datadog` chart.
pub fn agent_values(config: &Config, inputs: &AgentInputs) -> Result<Value> {
    check_name("--api-key-secret", &inputs.api_key_secret)?;
    if ![
        "datadoghq.com",
        "datadoghq.eu",
        "us3.datadoghq.com",
        "us5.datadoghq.com",
        "ap1.datadoghq.com",
        "ddog-gov.com",
    ]
    .contains(&inputs.site.as_str())
    {
        return Err(Error::Invalid(format!(
            "--site {:?} is not a Datadog site (datadoghq.com, datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, ap1.datadoghq.com, ddog-gov.com)",
            inputs.site
        )));
    }
    let labels: serde_json::Map<String, Value> = POD_LABEL_TAGS
        .iter()
        .map(|(label, tag)| ((*label).to_owned(), json!(tag)))
        .collect();
    Ok(json!({
        "datadog": {
            "site": inputs.site,
            "apiKeyExistingSecret": inputs.api_key_secret,
            "clusterName": cluster_name(config, &inputs.env),
            "tags": [format!("env:{}", inputs.env), format!("pipeline:{}", config.name)],
            "podLabelsAsTags": labels,
            // Logs only from pods that ask (the latamctl chart's logs annotation).
            "logs": { "enabled": true, "containerCollectAll": false },
            // Metrics come from the pods' OpenMetrics annotations, not from scraping every
            // pod that exposes Prometheus metrics.
            "prometheusScrape": { "enabled": false },
            // The chart opens the receiver as a host port on every node: pods send to
            // http://$(HOST_IP):4318 (`[telemetry] otlp_endpoint`).
            "otlp": {
                "receiver": {
                    "protocols": {
                        "http": { "enabled": true, "endpoint": format!("0.0.0.0:{OTLP_HTTP_PORT}") }
                    }
                }
            },
            "apm": { "portEnabled": false },
            "processAgent": { "enabled": false },
            "networkMonitoring": { "enabled": false },
        },
        "clusterAgent": {
            "enabled": true,
            "replicas": 2,
            "createPodDisruptionBudget": true,
            "metricsProvider": { "enabled": false },
        },
    }))
}

/// Values for the `datadog/synthetics-private-location` chart.
pub fn private_location_values(config: &Config, inputs: &AgentInputs) -> Result<Value> {
    check_name("--private-location-secret", &inputs.private_location_secret)?;
    Ok(json!({
        "replicaCount": 2,
        // The worker's configuration (keys, the location id) stays in the Secret.
        "configSecret": inputs.private_location_secret,
        "commonLabels": { "latamctl.io/system": config.name, "environment": inputs.env },
        "enableStatusProbes": true,
        "resources": {
            "requests": { "cpu": "250m", "memory": "512Mi" },
            "limits": { "cpu": "1", "memory": "1Gi" },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> AgentInputs {
        AgentInputs {
            env: "prod".into(),
            site: "datadoghq.com".into(),
            api_key_secret: "datadog-api-key".into(),
            private_location_secret: "datadog-private-location".into(),
        }
    }

    #[test]
    fn the_api_key_is_referenced_never_included() {
        let v = agent_values(&Config::default(), &inputs()).unwrap();
        assert_eq!(v["datadog"]["apiKeyExistingSecret"], "datadog-api-key");
        let text = v.to_string();
        assert!(!text.contains("\"apiKey\""), "{text}");
        assert_eq!(v["clusterAgent"]["enabled"], true);
        assert_eq!(v["datadog"]["logs"]["containerCollectAll"], false);
        assert_eq!(
            v["datadog"]["otlp"]["receiver"]["protocols"]["http"]["endpoint"],
            "0.0.0.0:4318"
        );
        let pl = private_location_values(&Config::default(), &inputs()).unwrap();
        assert_eq!(pl["configSecret"], "datadog-private-location");

        let mut bad = inputs();
        bad.api_key_secret = "Not A Secret".into();
        let e = agent_values(&Config::default(), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--api-key-secret"), "{e}");
        let mut bad = inputs();
        bad.site = "datadog.com".into();
        assert!(agent_values(&Config::default(), &bad).is_err());
    }

    #[test]
    fn tags_come_from_the_labels_the_latamctl_chart_sets() {
        let helpers = include_str!("../../helm-charts/latamctl/templates/_helpers.tpl");
        for (label, tag) in POD_LABEL_TAGS {
            assert!(
                helpers.contains(&format!("{label}:")),
                "the latamctl chart no longer sets the pod label {label}"
            );
            let v = agent_values(&Config::default(), &inputs()).unwrap();
            assert_eq!(v["datadog"]["podLabelsAsTags"][label], tag);
        }
        // The log annotation the Agent's logs setting relies on.
        assert!(helpers.contains("ad.datadoghq.com/latamctl.logs"));
    }

    #[test]
    fn the_cluster_is_named_after_eks_or_the_pipeline() {
        let mut config = Config::default();
        assert_eq!(cluster_name(&config, "prod"), "latam-prod");
        config.aws.eks_cluster = Some("latam-prod-eks".into());
        let v = agent_values(&config, &inputs()).unwrap();
        assert_eq!(v["datadog"]["clusterName"], "latam-prod-eks");
    }
}
