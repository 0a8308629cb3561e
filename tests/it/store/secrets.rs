//! Credentials from Secrets Manager (and their rotation) and secrets read from files.

use super::*;

/// The database of `url` given in parts (host, port, name), credentials from the secret
/// `arn` in moto's Secrets Manager — as the Terraform lambda module wires it.
fn secret_backed(url: &str, arn: &str, moto: &str) -> (DatabaseConfig, AwsConfig) {
    let parsed = reqwest::Url::parse(url).unwrap();
    let database = DatabaseConfig {
        host: parsed.host_str().map(str::to_owned),
        port: parsed.port().unwrap(),
        name: Some(parsed.path().trim_start_matches('/').to_owned()),
        secret_arn: Some(arn.to_owned()),
        ssl_mode: "disable".into(),
        ..DatabaseConfig::default()
    };
    let aws = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.to_owned()),
        ..AwsConfig::default()
    };
    (database, aws)
}

/// The Lambda's connection: host/name in config, credentials from a Secrets Manager secret
/// (moto), as the Terraform lambda module wires it.
#[tokio::test]
async fn postgres_credentials_from_a_secrets_manager_secret() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(url) = fresh_database().await else {
        return;
    };
    let clients = super::cloud::moto_clients(&moto).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&clients.sdk);
    let arn = secrets
        .create_secret()
        .name(format!("db-{}", Uuid::new_v4().simple()))
        .secret_string(r#"{"username":"postgres","password":"rotated-secret","engine":"postgres"}"#)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let (database, aws) = secret_backed(&url, &arn, &moto);
    // Without the secret's username the connection would use the OS user and be refused.
    let store = PostgresStore::connect(&database, &aws).await.unwrap();
    store.apply_migrations().await.unwrap();
    inserts_are_idempotent(&store).await;

    let missing = DatabaseConfig {
        secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into()),
        ..database
    };
    let err = PostgresStore::connect(&missing, &aws)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("database.secret_arn"), "{err}");
    assert!(!err.contains("rotated-secret"));
}

/// RDS rotates its managed secret: new connections pick up the new credentials without a
/// restart. Here the secret first names a role that does not exist, then the real one.
#[tokio::test]
async fn rotated_secret_credentials_are_picked_up() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(url) = fresh_database().await else {
        return;
    };
    let clients = super::cloud::moto_clients(&moto).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&clients.sdk);
    let arn = secrets
        .create_secret()
        .name(format!("rot-{}", Uuid::new_v4().simple()))
        .secret_string(r#"{"username":"no_such_role","password":"old"}"#)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let (mut database, aws) = secret_backed(&url, &arn, &moto);
    database.secret_refresh = Duration::from_millis(300);
    database.query_timeout = Duration::from_secs(2);
    let store = PostgresStore::connect(&database, &aws).await.unwrap();
    assert!(
        store.ready().await.is_err(),
        "a role that does not exist cannot connect"
    );
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username":"postgres","password":"rotated"}"#)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store.ready().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated secret was never used"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    store.apply_migrations().await.unwrap();
}

/// `migrate --database-url-file` (a mounted Secret): the URL comes from the file, PostgreSQL
/// is inferred from it, and nothing secret is printed; a missing or unreadable file is exit 2
/// naming the key and the path, for `serve` too.
#[tokio::test]
async fn migrate_and_serve_read_secrets_from_files() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let url = url.replacen("postgres@", "postgres:pw-from-file@", 1);
    let dir = support::tempdir();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    let (code, stdout, stderr) = support::run(
        &[
            "migrate",
            "-o",
            "json",
            "--database-url-file",
            file.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["store"], "postgres");
    assert_eq!(v["applied_now"], serde_json::json!([1, 2]));
    assert!(
        !stdout.contains("pw-from-file") && !stderr.contains("pw-from-file"),
        "secret printed: {stdout} {stderr}"
    );

    for (args, key) in [
        (vec!["migrate", "--database-url-file"], "database.url_file"),
        (
            vec!["serve", "--listen", "127.0.0.1:0", "--api-token-file"],
            "api.token_file",
        ),
    ] {
        // Missing, and unreadable (a directory: root reads any file, not a directory).
        for path in ["/nonexistent/secret", dir.path().to_str().unwrap()] {
            let mut argv = args.clone();
            argv.push(path);
            let (code, _, stderr) = support::run(&argv, &[], dir.path());
            assert_eq!(code, 2, "{argv:?}: {stderr}");
            assert!(
                stderr.contains(key) && stderr.contains(path),
                "{argv:?}: the error must name {key} and {path}: {stderr}"
            );
        }
    }
}
