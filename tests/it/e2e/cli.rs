//! The command line's configuration and help: bad config exits 2, `config show` redacts and
//! names secrets' sources, the example configs, `--version`, man pages and `--help` examples.

use super::*;

#[tokio::test]
async fn serve_reports_bad_configuration_and_exits_2() {
    let dir = support::tempdir();
    std::fs::write(
        dir.path().join("latamctl.toml"),
        "[worker]\nconcurency = 3\n",
    )
    .unwrap();
    let (code, _, stderr) = support::run(&["serve"], &[], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("concurency") && stderr.contains("latamctl.toml"),
        "{stderr}"
    );

    let empty = support::tempdir();
    let (code, _, stderr) = support::run(
        &["serve", "--bus", "aws", "--aws-region", "us-east-1"],
        &[],
        empty.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("LATAMCTL_AWS_TOPIC_ARN"), "{stderr}");

    let (code, _, stderr) = support::run(
        &["serve", "--store", "postgres"],
        &[("DATABASE_URL", "")],
        empty.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn config_show_redacts_secrets_and_lists_env_names() {
    let dir = support::tempdir();
    let (code, stdout, stderr) = support::run(
        &["config", "show", "-o", "json"],
        &[
            ("LATAMCTL_API_TOKEN", "t0ps3cret"),
            ("DATABASE_URL", "postgres://app:hunter2@db:5432/app"),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains("t0ps3cret") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["config"]["api"]["token"], "<redacted>");
    assert_eq!(
        v["config"]["database"]["url"],
        "postgres://app:<redacted>@db:5432/app"
    );

    let (code, stdout, _) = support::run(&["config", "show"], &[], dir.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("LATAMCTL_AWS_QUEUE_URL"), "{stdout}");
}

/// Secrets from files, the way Kubernetes mounts them: `serve --api-token-file` guards the
/// API with the file's token (nothing secret on the command line), `DATABASE_URL_FILE` works
/// like `DATABASE_URL`, and `config show` names where each secret came from, not its value.
#[tokio::test]
async fn secrets_come_from_files_and_config_show_names_their_source() {
    let dir = support::tempdir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "f1le-t0ken\n").unwrap();
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, "postgres://app:hunter2@db:5432/app\n").unwrap();
    let token_path = token_file.to_str().unwrap();
    let url_path = url_file.to_str().unwrap();

    let (code, stdout, stderr) = support::run(
        &["config", "show", "-o", "json"],
        &[
            ("LATAMCTL_API_TOKEN_FILE", token_path),
            ("DATABASE_URL_FILE", url_path),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains("f1le-t0ken") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["config"]["api"]["token"], "<redacted>");
    assert_eq!(v["secrets"]["api.token"], format!("file {token_path}"));
    assert_eq!(v["secrets"]["database.url"], format!("file {url_path}"));
    assert_eq!(v["secrets"]["database.password"], "unset");

    // A value and its file both set: which wins would be a guess.
    let (code, _, stderr) = support::run(
        &["config", "show"],
        &[
            ("LATAMCTL_API_TOKEN_FILE", token_path),
            ("LATAMCTL_API_TOKEN", "other"),
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("api.token_file"), "{stderr}");
    // A file that is not there names the key and the path.
    let (code, _, stderr) = support::run(
        &["config", "show"],
        &[("LATAMCTL_API_TOKEN_FILE", "/nonexistent/token")],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("api.token_file") && stderr.contains("/nonexistent/token"),
        "{stderr}"
    );

    let data = support::data_dir(dir.path());
    let serve = support::Serve::start(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--api-token-file",
            token_path,
        ],
        &[],
        dir.path(),
    );
    let http = reqwest::Client::new();
    let body = serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "m"});
    let url = format!("{}/ingresar-datos", serve.base);
    let denied = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = http
        .post(&url)
        .bearer_auth("f1le-t0ken")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

#[test]
fn example_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["examples/latamctl.toml", "examples/latamctl.aws.toml"] {
        let path = root.join(file);
        let (code, stdout, stderr) = support::run(
            &[
                "config",
                "show",
                "-o",
                "json",
                "--config",
                path.to_str().unwrap(),
            ],
            &[],
            root,
        );
        assert_eq!(code, 0, "{file}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["file"], path.to_str().unwrap());
    }
}

/// `--version` names the build's commit and features; `completions --man DIR` writes a page
/// per command, examples included; every `--help` shows examples.
#[test]
fn version_man_pages_and_help_examples() {
    let dir = support::tempdir();
    let (code, stdout, stderr) = support::run(&["--version"], &[], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("features: none"), "{stdout}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(out) = head.ok().filter(|o| o.status.success()) {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            stdout.contains(&format!("commit {commit}")),
            "{stdout} is not built from {commit}"
        );
    }

    let man = dir.path().join("man");
    let (code, stdout, stderr) = support::run(
        &["completions", "--man", man.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    for page in [
        "latamctl.1",
        "latamctl-serve.1",
        "latamctl-render-helm.1",
        "latamctl-status.1",
    ] {
        assert!(stdout.contains(page), "{page} not listed: {stdout}");
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not a man page"
        );
    }
    let serve = std::fs::read_to_string(man.join("latamctl-serve.1")).unwrap();
    assert!(
        serve.contains("Examples:") && serve.contains("\\-\\-api\\-token\\-file"),
        "{serve}"
    );

    let (code, stdout, _) = support::run(&["status", "--help"], &[], dir.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:\n  latamctl status"), "{stdout}");
    let (code, _, stderr) = support::run(&["completions"], &[], dir.path());
    assert_eq!(code, 2, "SHELL or --man is required: {stderr}");
}
