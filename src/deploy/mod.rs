//! Deployment artefacts from the configuration: Helm values for `helm-charts/latamctl`,
//! Terraform variables for `terraform/envs/<env>`, an Argo CD Application, and values for
//! Datadog's own charts ([`datadog`]).
//!
//! Helm values are layered: the chart's defaults < the environment overlay in
//! `templates/helm/<env>.yaml` < values derived from `latamctl.toml`, Terraform outputs and
//! flags. The result passes the chart's `values.schema.json` (checked in the test command).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{BusKind, Config, StoreKind, merge};

pub mod datadog;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Built-in copies of `templates/`, used unless `--templates DIR` is given.
const HELM_DEV: &str = include_str!("../../templates/helm/dev.yaml");
const HELM_PROD: &str = include_str!("../../templates/helm/prod.yaml");
const ARGOCD_APPLICATION: &str = include_str!("../../templates/argocd/application.yaml");

/// Where overlays come from.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub dir: Option<PathBuf>,
}

impl Templates {
    fn read(&self, relative: &str, builtin: Option<&'static str>) -> Result<String> {
        match &self.dir {
            Some(dir) => {
                let path = dir.join(relative);
                std::fs::read_to_string(&path).map_err(|e| Error::Read {
                    path,
                    message: e.to_string(),
                })
            }
            None => builtin.map(str::to_owned).ok_or_else(|| {
                Error::Invalid(format!(
                    "no built-in template {relative}: give --templates DIR holding it"
                ))
            }),
        }
    }

    fn yaml(&self, relative: &str, builtin: Option<&'static str>) -> Result<Value> {
        let text = self.read(relative, builtin)?;
        let value: Value = serde_saphyr::from_str(&text)
            .map_err(|e| Error::Invalid(format!("template {relative} is not valid YAML: {e}")))?;
        Ok(if value.is_null() { json!({}) } else { value })
    }

    fn helm_overlay(&self, env: &str) -> Result<Value> {
        let builtin = match env {
            "dev" => Some(HELM_DEV),
            "prod" => Some(HELM_PROD),
            _ => None,
        };
        self.yaml(&format!("helm/{env}.yaml"), builtin)
    }
}

/// `terraform output -json`: `{"name": {"value": ..., "type": ..., "sensitive": ...}}`.
#[derive(Debug, Default, Clone)]
pub struct TerraformOutputs(BTreeMap<String, Value>);

#[derive(Deserialize)]
struct OutputEntry {
    value: Value,
    #[serde(default)]
    sensitive: bool,
}

impl TerraformOutputs {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| {
            Error::Invalid(format!(
                "{} is not `terraform output -json` output: {message}",
                path.display()
            ))
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: BTreeMap<String, OutputEntry> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self(
            entries
                .into_iter()
                // Sensitive outputs are never copied into generated files.
                .filter(|(_, e)| !e.sensitive)
                .map(|(k, e)| (k, e.value))
                .collect(),
        ))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// Inputs of `render helm` besides the config.
#[derive(Debug, Clone, Default)]
pub struct HelmInputs {
    pub env: String,
    pub image_repository: Option<String>,
    pub image_tag: Option<String>,
    pub api_role_arn: Option<String>,
    pub worker_role_arn: Option<String>,
    pub database_secret: Option<String>,
    pub api_token_secret: Option<String>,
    pub terraform: TerraformOutputs,
    pub templates: Templates,
}

/// Helm values for `helm-charts/latamctl`.
pub fn helm_values(config: &Config, inputs: &HelmInputs) -> Result<Value> {
    if config.bus != BusKind::Aws || config.store != StoreKind::Postgres {
        return Err(Error::Invalid(
            "the chart runs api and worker as separate Deployments, which share state only \
             through AWS and PostgreSQL: set bus = \"aws\" and store = \"postgres\" in the config \
             you render from (`embedded`/`sqlite` are for one-machine `latamctl serve`)"
                .into(),
        ));
    }
    let tf = &inputs.terraform;
    let pick = |config_value: &Option<String>, output: &str| {
        config_value.clone().or_else(|| tf.string(output))
    };
    let region = pick(&config.aws.region, "region");
    let topic_arn = pick(&config.aws.topic_arn, "topic_arn");
    let queue_url = pick(&config.aws.queue_url, "queue_url");
    let dlq_url = pick(&config.aws.dlq_url, "dlq_url");
    let mut missing = Vec::new();
    for (value, key, output) in [
        (&region, "aws.region", "region"),
        (&topic_arn, "aws.topic_arn", "topic_arn"),
        (&queue_url, "aws.queue_url", "queue_url"),
    ] {
        if value.is_none() {
            missing.push(format!("{key} (or Terraform output `{output}`)"));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "cannot render Helm values without {}: run `latamctl provision --write-config`, or \
             pass --terraform-outputs FILE from `terraform output -json`",
            missing.join(", ")
        )));
    }

    let mut aws = Map::new();
    for (key, value) in [
        ("region", &region),
        ("topic_arn", &topic_arn),
        ("queue_url", &queue_url),
        ("dlq_url", &dlq_url),
    ] {
        if let Some(v) = value {
            aws.insert(key.to_owned(), json!(v));
        }
    }
    if config.aws.publish_attempts != 3 {
        aws.insert(
            "publish_attempts".into(),
            json!(config.aws.publish_attempts),
        );
    }
    if config.aws.publish_in_flight != crate::config::DEFAULT_PUBLISH_IN_FLIGHT {
        aws.insert(
            "publish_in_flight".into(),
            json!(config.aws.publish_in_flight),
        );
    }

    let humantime = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let generated = json!({
        "system": config.name,
        "environment": inputs.env,
        "image": {
            "repository": inputs.image_repository.clone().unwrap_or_else(|| "ghcr.io/latam/latamctl".into()),
            "tag": inputs.image_tag.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        },
        "config": {
            "bus": "aws",
            "store": "postgres",
            "topics": config.topics,
            "worker": {
                "concurrency": config.worker.concurrency,
                "batch_size": config.effective_batch_size(),
                "wait_time": humantime(config.worker.wait_time),
                "visibility_timeout": humantime(config.worker.visibility_timeout),
            },
            "aws": aws,
            "database": {
                "max_connections": config.database.max_connections,
                "migrate_on_start": config.database.migrate_on_start,
                "query_timeout": humantime(config.database.query_timeout),
            },
            "api": {
                "body_limit_bytes": config.api.body_limit_bytes,
                "request_timeout": humantime(config.api.request_timeout),
                "publish_timeout": humantime(config.api.publish_timeout),
            },
            "log": {"format": "json", "level": config.log.level},
        },
        "database": {
            "existingSecret": inputs.database_secret.clone().unwrap_or_else(|| "latamctl-database".into()),
            "secretKey": "url",
        },
        "api": {"serviceAccount": {"roleArn": inputs.api_role_arn.clone().or_else(|| tf.string("api_irsa_role_arn")).unwrap_or_default()}},
        "worker": {"serviceAccount": {"roleArn": inputs.worker_role_arn.clone().or_else(|| tf.string("worker_irsa_role_arn")).unwrap_or_default()}},
    });
    let mut values = generated;
    if let Some(secret) = &inputs.api_token_secret {
        merge(
            &mut values,
            json!({"apiToken": {"existingSecret": secret, "secretKey": "token"}}),
        );
    }
    // The overlay goes under what the config says (and after it, so the generated keys
    // lead the file).
    fill(&mut values, inputs.templates.helm_overlay(&inputs.env)?);
    Ok(values)
}

/// Variables for `terraform/envs/<env>` (a `.tfvars.json` file).
pub fn terraform_vars(config: &Config, env: &str) -> Result<Value> {
    let region = config.aws.region.clone().ok_or_else(|| {
        Error::Invalid(
            "terraform variables need aws.region: set [aws] region in latamctl.toml or LATAMCTL_AWS_REGION"
                .into(),
        )
    })?;
    let fullname = crate::status::kubernetes::Names::from_config(&config.kubernetes).fullname();
    let mut vars = json!({
        "region": region,
        "name": config.name,
        "environment": env,
        "system": config.name,
        "k8s_namespace": config.kubernetes.namespace,
        "api_service_account": format!("{fullname}-api"),
        "worker_service_account": format!("{fullname}-worker"),
        "max_receive_count": config.queue.max_receive_count,
        "queue_visibility_timeout_seconds": config.worker.visibility_timeout.as_secs().max(1),
        "queue_message_retention_seconds": config.provision.queue_retention.as_secs(),
        "queue_dlq_message_retention_seconds": config.provision.dlq_retention.as_secs(),
        "queue_oldest_message_age_threshold_seconds": config.provision.alarm_oldest_message_age.as_secs(),
    });
    if let Some(arn) = &config.aws.alarm_topic_arn {
        vars["alarm_topic_arn"] = json!(arn);
    }
    Ok(vars)
}

/// An Argo CD Application for the chart with the environment's GitOps values file.
pub fn argocd_application(
    config: &Config,
    env: &str,
    repo_url: &str,
    revision: &str,
    templates: &Templates,
) -> Result<Value> {
    let mut app = templates.yaml("argocd/application.yaml", Some(ARGOCD_APPLICATION))?;
    let release = &config.kubernetes.release;
    merge(
        &mut app,
        json!({
            "metadata": {
                "name": format!("{}-{env}", config.name),
                "labels": {"latamctl.io/environment": env, "latamctl.io/system": config.name},
            },
            "spec": {
                "source": {
                    "repoURL": repo_url,
                    "targetRevision": revision,
                    "path": "helm-charts/latamctl",
                    "helm": {
                        "releaseName": release,
                        "valueFiles": [format!("../../deploy/gitops/{env}/values.yaml")],
                    },
                },
                "destination": {"namespace": config.kubernetes.namespace},
            },
        }),
    );
    Ok(app)
}

/// The opposite of [`merge`](crate::config::merge): adds what `base` lacks from `under`, keeps what `base` has.
fn fill(base: &mut Value, under: Value) {
    if let (Value::Object(b), Value::Object(u)) = (base, under) {
        for (k, v) in u {
            match b.get_mut(&k) {
                Some(existing) => fill(existing, v),
                None => {
                    b.insert(k, v);
                }
            }
        }
    }
}

/// YAML text of a value, with a header comment.
pub fn to_yaml(header: &str, value: &Value) -> Result<String> {
    let body = serde_saphyr::to_string(value)
        .map_err(|e| Error::Invalid(format!("cannot write YAML: {e}")))?;
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_config() -> Config {
        let mut c = Config {
            bus: BusKind::Aws,
            store: StoreKind::Postgres,
            ..Config::default()
        };
        c.aws.region = Some("us-east-1".into());
        c.aws.topic_arn = Some("arn:aws:sns:us-east-1:123456789012:latam-prod-ingest".into());
        c.aws.queue_url =
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/latam-prod-ingest".into());
        c
    }

    #[test]
    fn helm_values_layer_overlay_then_config() {
        let v = helm_values(
            &cloud_config(),
            &HelmInputs {
                env: "prod".into(),
                image_tag: Some("abc1234".into()),
                api_role_arn: Some("arn:aws:iam::123456789012:role/api".into()),
                ..HelmInputs::default()
            },
        )
        .unwrap();
        assert_eq!(v["config"]["bus"], "aws");
        assert_eq!(
            v["config"]["worker"]["batch_size"], 10,
            "auto batch size on SQS"
        );
        assert_eq!(
            v["config"]["aws"]["queue_url"],
            "https://sqs.us-east-1.amazonaws.com/123456789012/latam-prod-ingest"
        );
        assert!(
            v["config"]["aws"].get("dlq_url").is_none(),
            "unset keys are left out"
        );
        assert_eq!(v["image"]["tag"], "abc1234");
        assert_eq!(v["worker"]["keda"]["enabled"], true, "prod overlay");
        assert_eq!(v["api"]["autoscaling"]["minReplicas"], 3, "prod overlay");
        assert_eq!(
            v["api"]["serviceAccount"]["roleArn"],
            "arn:aws:iam::123456789012:role/api"
        );
        let text = serde_json::to_string(&v).unwrap();
        assert!(
            !text.contains("\"url\":\"postgres"),
            "no database URL in values"
        );
    }

    #[test]
    fn terraform_outputs_fill_what_the_config_lacks() {
        let mut c = cloud_config();
        c.aws.queue_url = None;
        let tf = TerraformOutputs::parse(
            r#"{"queue_url": {"value": "https://sqs/q", "type": "string", "sensitive": false},
                "dlq_url": {"value": "https://sqs/d", "type": "string", "sensitive": false},
                "worker_irsa_role_arn": {"value": "arn:aws:iam::1:role/w", "type": "string", "sensitive": false},
                "db_password": {"value": "nope", "type": "string", "sensitive": true}}"#,
        )
        .unwrap();
        let v = helm_values(
            &c,
            &HelmInputs {
                env: "dev".into(),
                terraform: tf,
                ..HelmInputs::default()
            },
        )
        .unwrap();
        assert_eq!(v["config"]["aws"]["queue_url"], "https://sqs/q");
        assert_eq!(v["config"]["aws"]["dlq_url"], "https://sqs/d");
        assert_eq!(
            v["worker"]["serviceAccount"]["roleArn"],
            "arn:aws:iam::1:role/w"
        );
        assert!(!serde_json::to_string(&v).unwrap().contains("nope"));
    }

    #[test]
    fn embedded_config_or_missing_urls_are_refused_with_what_to_do() {
        let err = helm_values(
            &Config::default(),
            &HelmInputs {
                env: "dev".into(),
                ..HelmInputs::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bus = \"aws\""), "{err}");
        let mut c = cloud_config();
        c.aws.topic_arn = None;
        let err = helm_values(
            &c,
            &HelmInputs {
                env: "dev".into(),
                ..HelmInputs::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("aws.topic_arn") && err.contains("terraform output -json"),
            "{err}"
        );
        let err = helm_values(
            &cloud_config(),
            &HelmInputs {
                env: "staging".into(),
                ..HelmInputs::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--templates"), "{err}");
    }

    #[test]
    fn image_tags_stay_strings_in_yaml() {
        let v = helm_values(
            &cloud_config(),
            &HelmInputs {
                env: "dev".into(),
                image_tag: Some("1234567".into()),
                ..HelmInputs::default()
            },
        )
        .unwrap();
        let text = to_yaml("t", &v).unwrap();
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back["image"]["tag"], json!("1234567"), "{text}");
    }

    /// Every variable emitted is declared by both Terraform environments.
    #[test]
    fn terraform_vars_are_declared_variables() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let vars = terraform_vars(&cloud_config(), "dev").unwrap();
        for env in ["dev", "prod"] {
            let text =
                std::fs::read_to_string(root.join(format!("terraform/envs/{env}/variables.tf")))
                    .unwrap();
            let declared: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("variable \""))
                .filter_map(|l| l.split('"').next())
                .collect();
            for key in vars.as_object().unwrap().keys() {
                assert!(
                    declared.contains(&key.as_str()),
                    "{env}: {key} is not a variable"
                );
            }
        }
    }

    #[test]
    fn argocd_application_points_at_the_env_values() {
        let app = argocd_application(
            &cloud_config(),
            "prod",
            "https://git.example/latamctl.git",
            "v1.2.3",
            &Templates::default(),
        )
        .unwrap();
        assert_eq!(app["kind"], "Application");
        assert_eq!(app["metadata"]["name"], "latam-prod");
        assert_eq!(
            app["spec"]["source"]["repoURL"],
            "https://git.example/latamctl.git"
        );
        assert_eq!(app["spec"]["source"]["helm"]["releaseName"], "latamctl");
        assert_eq!(
            app["spec"]["source"]["helm"]["valueFiles"],
            json!(["../../deploy/gitops/prod/values.yaml"])
        );
        assert_eq!(
            app["spec"]["syncPolicy"]["automated"]["selfHeal"], true,
            "from the template"
        );
    }
}
