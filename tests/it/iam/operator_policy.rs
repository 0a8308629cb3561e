//! The operator policy runs `provision`, `status`, `drain --peek`/`--redrive` and `provision
//! --destroy` without an authorization failure.

use super::*;

/// The operator policy runs `provision`, `status`, `drain --peek`, `drain --redrive` and
/// `provision --destroy`: each exits without an authorization failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_policy_runs_provision_status_drain_and_destroy() {
    let Some(iam) = IamMoto::new() else { return };
    let dir = support::tempdir();
    let name = format!("op{}", &Uuid::new_v4().simple().to_string()[..8]);
    // No `bus` yet: the file `provision --write-config` writes must select SNS/SQS for the
    // commands after it (the cloud path in docs/cloud.md).
    std::fs::write(
        dir.path().join("latamctl.toml"),
        format!("name = \"{name}\"\nenvironment = \"test\"\n"),
    )
    .unwrap();
    let keys = iam.user("operator", &emulator_actions(&granted("operator")));
    let env = iam.env(&keys);
    let envs = refs(&env);
    let run = |args: &[&str]| support::run(args, &envs, dir.path());
    let no_refusal = |what: &str, out: &str, err: &str| {
        for word in ["not authorized", "AccessDenied", "AuthorizationError"] {
            assert!(
                !out.contains(word) && !err.contains(word),
                "{what} was refused a permission:\n{out}\n{err}"
            );
        }
    };

    let (code, out, err) = run(&["provision", "--write-config", "latamctl.toml", "-o", "json"]);
    no_refusal("provision", &out, &err);
    assert_eq!(code, 0, "provision: {err}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    let written = std::fs::read_to_string(dir.path().join("latamctl.toml")).unwrap();
    assert!(
        written.contains("bus = \"aws\"") && written.contains(&format!("name = \"{name}\"")),
        "{written}"
    );
    let (code, _, err) = run(&["provision", "--dry-run"]);
    no_refusal("provision --dry-run", "", &err);
    assert_eq!(code, 0, "a second plan finds nothing to do: {err}");

    // A message in the DLQ, put there by the admin, for drain to find.
    let admin = iam.clients(&iam.admin).await;
    let dlq_url = applied["outputs"]["dlq_url"].as_str().unwrap();
    let body = "dead-lettered";
    admin
        .sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(body)
        .send()
        .await
        .unwrap();

    let (code, out, err) = run(&["status", "--no-kubernetes", "-o", "json"]);
    no_refusal("status", &out, &err);
    let status: Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("status: {out}\n{err}"));
    let failing: Vec<&Value> = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "fail")
        .collect();
    assert!(failing.is_empty(), "status checks failing: {failing:?}");
    assert!(code <= 1, "status: {err}");

    let (code, out, err) = run(&["drain", "--queue", "dlq", "--peek", "-o", "json"]);
    no_refusal("drain --peek", &out, &err);
    assert_eq!(code, 0, "drain --peek: {err}");
    assert!(out.contains(body), "{out}");
    let (code, out, err) = run(&["drain", "--queue", "dlq", "--redrive", "-o", "json"]);
    no_refusal("drain --redrive", &out, &err);
    assert_eq!(code, 0, "drain --redrive: {err}");
    let queue_url = applied["outputs"]["queue_url"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue_counts(&admin, queue_url).await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "the redriven message never reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (code, out, err) = run(&["provision", "--destroy", "--yes", "-o", "json"]);
    no_refusal("provision --destroy", &out, &err);
    assert_eq!(code, 0, "provision --destroy: {err}");
}
