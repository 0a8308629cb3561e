//! The Terraform's grants, checked without AWS: docs/cloud.md's table lists exactly them, and
//! every AWS action the code names is granted to some principal.

use super::*;

/// The IAM table in docs/cloud.md lists exactly what the Terraform grants, principal by principal.
#[test]
fn the_readme_lists_every_granted_action() {
    if support::service("LATAMCTL_TEST_IAM_ACTIONS").is_none() {
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cloud.md")).unwrap();
    let table = readme
        .split("<!-- iam-actions:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- iam-actions:end -->").next())
        .expect("docs/cloud.md has an iam-actions table");
    let mut documented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        documented
            .entry(cells[1].to_owned())
            .or_default()
            .push(cells[2].trim_matches('`').to_owned());
    }
    for principal in ["api", "worker", "lambda", "operator"] {
        let mut want = granted(principal);
        want.sort();
        let mut got = documented.remove(principal).unwrap_or_default();
        got.sort();
        assert_eq!(
            got, want,
            "the IAM table in docs/cloud.md for {principal} differs from the Terraform"
        );
    }
    assert!(
        documented.is_empty(),
        "docs/cloud.md documents unknown principals: {documented:?}"
    );
}

/// Every AWS action the code names (`classify("eks:ListAddons", …)`, the error it reports)
/// is granted to some principal by the Terraform: a call added to `status` without its grant
/// fails here instead of in production, where it reads as AccessDenied.
#[test]
fn every_action_the_code_calls_is_granted_by_the_terraform() {
    if support::service("LATAMCTL_TEST_IAM_ACTIONS").is_none() {
        return;
    }
    let mut granted_any: std::collections::BTreeSet<String> = Default::default();
    for principal in ["api", "worker", "lambda", "operator"] {
        granted_any.extend(granted(principal));
    }
    let mut named = std::collections::BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                let Some((service, action)) = piece.split_once(':') else {
                    continue;
                };
                if [
                    "sns",
                    "sqs",
                    "rds",
                    "eks",
                    "cloudwatch",
                    "secretsmanager",
                    "kms",
                ]
                .contains(&service)
                    && action.starts_with(|c: char| c.is_ascii_uppercase())
                    && action.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    // AWS authorizes a batch API by its single-message action.
                    let action = match action {
                        "DeleteMessageBatch" => "DeleteMessage",
                        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                        "SendMessageBatch" => "SendMessage",
                        "PublishBatch" => "Publish",
                        a => a,
                    };
                    named.insert(format!("{service}:{action}"));
                }
            }
        }
    }
    assert!(
        named.len() > 20,
        "the scan found too few actions: {named:?}"
    );
    let missing: Vec<&String> = named.difference(&granted_any).collect();
    assert!(
        missing.is_empty(),
        "the code calls actions no principal is granted in terraform/modules/iam: {missing:?}"
    );
}
