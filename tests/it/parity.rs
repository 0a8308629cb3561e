//! One owner per resource: Terraform owns the KMS keys (and IAM, RDS, EKS, the network);
//! `provision` creates and reconciles the messaging resources with exactly the settings the
//! Terraform modules declare. The fixture is the artifact: `scripts/terraform_messaging.py`
//! evaluates `terraform/envs/prod` (modules sns, sqs, alarms) with the variables `render
//! terraform-vars` makes from the same config; this test builds those resources on moto as
//! Terraform would, then asks `provision --dry-run` what it would change. Changing either side
//! alone (a module attribute, or what provision sets) makes this test fail.
//!
//! Needs `LATAMCTL_TEST_MOTO_URL` and `LATAMCTL_TEST_HCL_PYTHON` (a Python with python-hcl2);
//! scripts/test.sh sets both.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use uuid::Uuid;

use crate::cloud::aws_env;
use crate::support;

/// Attributes Terraform sets that provision leaves alone, and why.
const NOT_MANAGED_BY_PROVISION: &[(&str, &str)] = &[(
    "RedriveAllowPolicy",
    "moto (the emulator these tests use) does not implement it; the queue policy already limits who sends",
)];

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The `${address}` placeholders of the evaluated Terraform, filled with what moto assigned.
fn fill(text: &str, known: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (address, value) in known {
        out = out.replace(&format!("${{{address}}}"), value);
    }
    assert!(
        !out.contains("${"),
        "an unknown placeholder is left in {out}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_and_provision_build_the_same_messaging_resources() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(python) = support::service("LATAMCTL_TEST_HCL_PYTHON") else {
        return;
    };
    let dir = support::tempdir();
    let id = &Uuid::new_v4().simple().to_string()[..8];
    let name = format!("tp{id}");
    let sns_key = format!("arn:aws:kms:us-east-1:123456789012:key/{}", Uuid::new_v4());
    let sqs_key = format!("arn:aws:kms:us-east-1:123456789012:key/{}", Uuid::new_v4());
    let alarm_topic = format!("arn:aws:sns:us-east-1:123456789012:{name}-oncall");
    let base = format!(
        "name = \"{name}\"\nenvironment = \"prod\"\nbus = \"aws\"\n[aws]\nregion = \"us-east-1\"\nalarm_topic_arn = \"{alarm_topic}\"\n"
    );
    std::fs::write(dir.path().join("latamctl.toml"), &base).unwrap();
    let env = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| support::run(args, &envs, dir.path());

    // Terraform's view, from the modules themselves.
    let (code, vars, err) = run(&["render", "terraform-vars", "--env", "prod"]);
    assert_eq!(code, 0, "{err}");
    let vars_file = dir.path().join("vars.json");
    std::fs::write(&vars_file, &vars).unwrap();
    let out = std::process::Command::new(&python)
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/terraform_messaging.py"),
        )
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg("prod")
        .arg(&vars_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tf = json(&String::from_utf8_lossy(&out.stdout));

    // The RDS instance Terraform made (provision only watches it), and the config the env's
    // `latamctl_config` output writes: the instance, and the alarm threshold Terraform computed.
    let storage_alarm = format!("{name}-prod-rds-free-storage-low");
    let storage = &tf["alarms"][&storage_alarm];
    let db_id = storage["Dimensions"]["DBInstanceIdentifier"]
        .as_str()
        .unwrap_or_else(|| panic!("no RDS free-storage alarm in {tf}"))
        .to_owned();
    let threshold = storage["Threshold"].as_f64().unwrap() as u64;
    let rds_line = format!("rds_instance_id = \"{db_id}\"\n");
    let with_keys = format!(
        "{base}{rds_line}[provision]\nsns_kms_key = \"{sns_key}\"\nsqs_kms_key = \"{sqs_key}\"\n"
    );
    let computed = with_keys.clone();
    let with_keys = format!("{with_keys}db_free_storage_alarm_bytes = {threshold}\n");
    std::fs::write(dir.path().join("latamctl.toml"), &with_keys).unwrap();
    std::fs::write(dir.path().join("computed.toml"), &computed).unwrap();
    std::fs::write(dir.path().join("no-keys.toml"), format!("{base}{rds_line}")).unwrap();

    // Build it on moto as Terraform would.
    let sdk = super::cloud::moto_sdk(&moto).await;
    let (sns, sqs) = (
        aws_sdk_sns::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let allocated_gib: i32 = json(&vars)["db_allocated_storage"]
        .as_i64()
        .map_or(100, |g| g as i32); // the prod default when render leaves it to Terraform
    aws_sdk_rds::Client::new(&sdk)
        .create_db_instance()
        .db_instance_identifier(&db_id)
        .db_instance_class("db.t4g.medium")
        .engine("postgres")
        .allocated_storage(allocated_gib)
        .master_username("latam")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    let mut known = BTreeMap::from([
        ("aws_kms_key.topic.arn".to_owned(), sns_key.clone()),
        ("aws_kms_key.queue.arn".to_owned(), sqs_key.clone()),
    ]);
    let attrs = |resource: &str| -> BTreeMap<String, String> {
        tf[resource]["attributes"]
            .as_object()
            .unwrap_or_else(|| panic!("no {resource} in {tf}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    let topic = tf["sns topic"]["name"].as_str().unwrap();
    let topic_arn = sns
        .create_topic()
        .name(topic)
        .attributes(
            "KmsMasterKeyId",
            fill(&attrs("sns topic")["KmsMasterKeyId"], &known),
        )
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    known.insert("aws_sns_topic.this.arn".into(), topic_arn.clone());
    sns.set_topic_attributes()
        .topic_arn(&topic_arn)
        .attribute_name("Policy")
        .attribute_value(fill(&attrs("sns topic")["Policy"], &known))
        .send()
        .await
        .unwrap();
    let mut urls = BTreeMap::new();
    for resource in ["sqs dlq", "sqs queue", "sqs sns-dlq"] {
        let name = tf[resource]["name"].as_str().unwrap();
        let address = tf[resource]["address"].as_str().unwrap();
        let mut create = sqs.create_queue().queue_name(name);
        for (k, v) in attrs(resource) {
            if k != "Policy" && !NOT_MANAGED_BY_PROVISION.iter().any(|(n, _)| *n == k) {
                create = create.attributes(QueueAttributeName::from(k.as_str()), fill(&v, &known));
            }
        }
        let url = create.send().await.unwrap().queue_url.unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        known.insert(format!("{address}.arn"), arn);
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(
                QueueAttributeName::Policy,
                fill(&attrs(resource)["Policy"], &known),
            )
            .send()
            .await
            .unwrap();
        urls.insert(resource, url);
    }
    let mut subscribe = sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&known["aws_sqs_queue.this.arn"]);
    for (k, v) in attrs("sns subscription") {
        subscribe = subscribe.attributes(k, fill(&v, &known));
    }
    subscribe.send().await.unwrap();
    let alarms = tf["alarms"].as_object().unwrap();
    assert_eq!(
        alarms.len(),
        4,
        "the three SQS alarms and RDS free storage: {tf}"
    );
    for (alarm, a) in alarms {
        let dims = a["Dimensions"].as_object().unwrap();
        let mut put = cw
            .put_metric_alarm()
            .alarm_name(alarm)
            .alarm_description(a["AlarmDescription"].as_str().unwrap())
            .namespace(a["Namespace"].as_str().unwrap())
            .metric_name(a["MetricName"].as_str().unwrap())
            .statistic(aws_sdk_cloudwatch::types::Statistic::from(
                a["Statistic"].as_str().unwrap(),
            ))
            .period(a["Period"].as_i64().unwrap() as i32)
            .evaluation_periods(a["EvaluationPeriods"].as_i64().unwrap() as i32)
            .set_datapoints_to_alarm(a["DatapointsToAlarm"].as_i64().map(|n| n as i32))
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::from(
                a["ComparisonOperator"].as_str().unwrap(),
            ))
            .threshold(a["Threshold"].as_f64().unwrap())
            .treat_missing_data(a["TreatMissingData"].as_str().unwrap())
            .alarm_actions(&alarm_topic)
            .ok_actions(&alarm_topic);
        for (k, v) in dims {
            put = put.dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name(k)
                    .value(v.as_str().unwrap())
                    .build(),
            );
        }
        put.send().await.unwrap();
    }

    // provision finds nothing to change on what Terraform built.
    let dry_run = |config: &str| {
        let (code, out, err) = run(&[
            "provision",
            "--config",
            config,
            "--dry-run",
            "--aws-endpoint-url",
            &moto,
            "-o",
            "json",
        ]);
        (
            code,
            if out.is_empty() {
                Value::Null
            } else {
                json(&out)
            },
            err,
        )
    };
    let (code, plan, err) = dry_run("latamctl.toml");
    let changes = plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{err}"));
    let drift: Vec<String> = changes
        .iter()
        // The instance is Terraform's: provision only reports that it exists.
        .filter(|c| c["action"] != "unchanged" && c["resource"] != "rds instance")
        .map(|c| {
            format!(
                "{} {}: {} ({})",
                c["resource"], c["name"], c["action"], c["detail"]
            )
        })
        .collect();
    assert!(
        drift.is_empty(),
        "provision would change what Terraform built: {drift:#?}"
    );
    assert_eq!(code, 0, "{err}");

    // Every attribute Terraform sets is one provision sets too (and so compares).
    let desired = |resource: &str| -> Vec<String> {
        changes
            .iter()
            .filter(|c| c["resource"] == resource || c["resource"] == format!("{resource} policy"))
            .flat_map(|c| {
                c["desired"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for resource in [
        "sns topic",
        "sqs queue",
        "sqs dlq",
        "sqs sns-dlq",
        "sns subscription",
    ] {
        let ours = desired(resource);
        for key in attrs(resource).keys() {
            if NOT_MANAGED_BY_PROVISION.iter().any(|(n, _)| n == key) {
                continue;
            }
            assert!(
                ours.contains(key),
                "{resource}: Terraform sets {key}, provision does not: {ours:?}"
            );
        }
    }
    for (alarm, a) in alarms {
        let row = changes
            .iter()
            .find(|c| c["resource"] == "cloudwatch alarm" && c["name"] == alarm.as_str())
            .unwrap_or_else(|| panic!("provision has no alarm {alarm}"));
        for key in a.as_object().unwrap().keys() {
            assert!(
                row["desired"].get(key).is_some(),
                "{alarm}: Terraform sets {key}, provision does not: {row}"
            );
        }
        assert_eq!(
            row["desired"]["Threshold"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
            a["Threshold"].as_f64().unwrap()
        );
        assert_eq!(
            row["desired"]["EvaluationPeriods"],
            a["EvaluationPeriods"].to_string()
        );
    }

    // Without the threshold in its config, provision computes Terraform's from the instance.
    let (code, plan, err) = dry_run("computed.toml");
    assert_eq!(code, 0, "{plan} {err}");
    let row = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == storage_alarm.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["action"], "unchanged", "{row}");

    // Without the keys in its config, provision would rewrite Terraform's encryption: the plan
    // says so instead of passing.
    let (code, plan, _) = dry_run("no-keys.toml");
    assert_eq!(code, 1, "{plan}");
    let updated: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert!(
        updated.iter().any(|d| d.contains("KmsMasterKeyId")),
        "{updated:?}"
    );
    let queues = updated
        .iter()
        .filter(|d| d.contains("KmsMasterKeyId"))
        .count();
    assert!(
        queues >= 4,
        "the topic and the three queues carry Terraform's keys: {updated:?}"
    );

    // Drift on one attribute: the plan names it, provision converges it, the key stays.
    sqs.set_queue_attributes()
        .queue_url(&urls["sqs queue"])
        .attributes(QueueAttributeName::VisibilityTimeout, "99")
        .send()
        .await
        .unwrap();
    let (code, plan, _) = dry_run("latamctl.toml");
    assert_eq!(code, 1, "{plan}");
    let queue_row = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "sqs queue")
        .unwrap()
        .clone();
    assert_eq!(queue_row["action"], "update", "{queue_row}");
    assert!(
        queue_row["detail"]
            .as_str()
            .unwrap()
            .contains("VisibilityTimeout"),
        "{queue_row}"
    );
    let (code, _, err) = run(&["provision", "--aws-endpoint-url", &moto]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = dry_run("latamctl.toml");
    assert_eq!(code, 0, "converged: {err}");
    let now = sqs
        .get_queue_attributes()
        .queue_url(&urls["sqs queue"])
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        now[&QueueAttributeName::VisibilityTimeout],
        attrs("sqs queue")["VisibilityTimeout"]
    );
    assert_eq!(
        now[&QueueAttributeName::KmsMasterKeyId],
        sqs_key,
        "Terraform's key is untouched"
    );
}
