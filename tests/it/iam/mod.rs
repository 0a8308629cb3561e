//! Least privilege, proven rather than reviewed: every principal the Terraform defines runs
//! the real binary (or, for the Lambda, the real handler with the event source mapping's SQS
//! calls) with keys of an IAM user holding exactly the actions its policy document grants,
//! against a moto server that enforces IAM. The actions are read from the `.tf` files by
//! `scripts/iam_actions.py` (`LATAMCTL_TEST_IAM_ACTIONS`), so a grant removed from the
//! Terraform, or a new AWS call in the code, fails here.
//!
//! What moto checks: the signature, and that an Allow names the action. What it does not:
//! resource ARNs (every user gets `"Resource": "*"`; ARN scoping is checked statically by
//! scripts/check_hcl.py), conditions (`kms:ViaService`), KMS itself (nothing is encrypted
//! here), resource policies. See "What the emulators cannot prove" in docs/cloud.md.
//!
//! Children: `roles` (api, worker, Lambda), `operator_policy`, `grants` (the Terraform's grants
//! against docs/cloud.md's table and the actions the code calls).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::Credentials;
use latamctl::aws::AwsClients;
use serde_json::Value;
use uuid::Uuid;

use super::cloud::{Moto, queue_counts};
// The Lambda test's body names `super::lambda::…`: from a child it resolves here.
use super::lambda;
use super::support;

mod grants;
mod operator_policy;
mod roles;

#[derive(Clone, Debug)]
struct Keys {
    id: String,
    secret: String,
}

/// The IAM-enforcing moto server and its admin.
struct IamMoto {
    url: String,
    admin: Keys,
    python: String,
}

impl IamMoto {
    fn new() -> Option<IamMoto> {
        let url = support::service("LATAMCTL_TEST_MOTO_IAM_URL")?;
        let admin: Value = serde_json::from_str(
            &std::env::var("LATAMCTL_TEST_MOTO_IAM_ADMIN").expect("LATAMCTL_TEST_MOTO_IAM_ADMIN"),
        )
        .unwrap();
        Some(IamMoto {
            url,
            admin: Keys {
                id: admin["id"].as_str().unwrap().to_owned(),
                secret: admin["secret"].as_str().unwrap().to_owned(),
            },
            python: std::env::var("LATAMCTL_TEST_MOTO_PYTHON").expect("LATAMCTL_TEST_MOTO_PYTHON"),
        })
    }

    /// A new IAM user allowed exactly `actions` (already translated for the emulator).
    fn user(&self, hint: &str, actions: &[String]) -> Keys {
        let name = format!("{hint}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let out = std::process::Command::new(&self.python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto_iam.py"))
            .args(["user", &self.url, &self.admin.id, &self.admin.secret, &name])
            .args(actions)
            .output()
            .expect("run scripts/moto_iam.py");
        assert!(
            out.status.success(),
            "moto_iam.py user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Keys {
            id: v["id"].as_str().unwrap().to_owned(),
            secret: v["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Clients signing with `keys`.
    async fn clients(&self, keys: &Keys) -> AwsClients {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(
                &keys.id,
                &keys.secret,
                None,
                None,
                "iam-test",
            ))
            .load()
            .await;
        AwsClients {
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
        }
    }

    /// The environment of a `latamctl` process signing with `keys`.
    fn env(&self, keys: &Keys) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", keys.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", keys.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("KUBECONFIG", "/nonexistent".into()),
        ]
    }

    /// Topic, queue, DLQ and raw subscription, made by the admin.
    async fn pipeline(&self) -> Moto {
        Moto::create(self.url.clone(), self.clients(&self.admin).await).await
    }
}

/// The actions the Terraform grants `principal`.
fn granted(principal: &str) -> Vec<String> {
    let path = std::env::var("LATAMCTL_TEST_IAM_ACTIONS")
        .expect("LATAMCTL_TEST_IAM_ACTIONS (set by scripts/test.sh)");
    let all: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.get(principal)
        .unwrap_or_else(|| panic!("no {principal} in the IAM actions: {all:?}"))
        .clone()
}

/// IAM actions as moto names them. AWS authorizes a batch API by its single-message action
/// (`DeleteMessageBatch` needs `sqs:DeleteMessage`) and CloudWatch as `cloudwatch:*`; moto
/// checks the API's own name and the signing name (`monitoring:`). The translation only adds
/// names for the same grant; it never widens one.
fn emulator_actions(actions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        out.push(a.clone());
        match a.as_str() {
            "sqs:DeleteMessage"
            | "sqs:ChangeMessageVisibility"
            | "sqs:SendMessage"
            | "sns:Publish" => out.push(format!("{a}Batch")),
            _ => {}
        }
        if let Some(rest) = a.strip_prefix("cloudwatch:") {
            out.push(format!("monitoring:{rest}"));
        }
    }
    out
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
