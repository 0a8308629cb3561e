use super::load::collect_leaves;
use super::*;
use std::collections::HashMap;
use std::path::Path;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("latamctl.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn precedence_is_flag_then_env_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "[api]\nlisten = \"0.0.0.0:1\"\n[worker]\nconcurrency = 7\nbatch_size = 3\n",
    );
    let env = env_of(&[
        ("LATAMCTL_API_LISTEN", "0.0.0.0:2"),
        ("LATAMCTL_WORKER_CONCURRENCY", "9"),
    ]);
    let mut flags = Overrides::default();
    flags.set("api.listen", "0.0.0.0:3");
    let (cfg, sources) = load_with_env(Some(&file), &flags, env).unwrap();
    assert_eq!(cfg.api.listen, "0.0.0.0:3", "flag beats env and file");
    assert_eq!(cfg.worker.concurrency, 9, "env beats file");
    assert_eq!(cfg.worker.batch_size, 3, "file beats default");
    assert_eq!(cfg.queue.max_receive_count, 5, "default");
    assert_eq!(sources.env.len(), 2);
}

#[test]
fn every_key_has_an_env_variable() {
    let env = env_of(&[
        ("LATAMCTL_AWS_QUEUE_URL", "http://q"),
        ("LATAMCTL_DATABASE_MIGRATE_ON_START", "false"),
        ("LATAMCTL_TOPICS", "a, b"),
        ("LATAMCTL_BUS", "aws"),
        ("LATAMCTL_WORKER_WAIT_TIME", "2s"),
        ("DATABASE_URL", "postgres://u:p@h/db"),
    ]);
    let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
    assert_eq!(cfg.aws.queue_url.as_deref(), Some("http://q"));
    assert!(!cfg.database.migrate_on_start);
    assert_eq!(cfg.topics, vec!["a", "b"]);
    assert_eq!(cfg.bus, BusKind::Aws);
    assert_eq!(cfg.worker.wait_time, Duration::from_secs(2));
    assert_eq!(cfg.database.url.as_deref(), Some("postgres://u:p@h/db"));
}

/// Keys without a default are read from the environment as text; a numeric optional
/// key would then fail to load. Every such key must be a string.
#[test]
fn every_key_without_a_default_accepts_text_from_the_environment() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut leaves = Vec::new();
    collect_leaves(&defaults, &mut Vec::new(), &mut leaves);
    let names: Vec<String> = leaves
        .iter()
        .filter(|(_, v)| v.is_null())
        // The `*_file` secrets are paths that must exist; their own test covers them.
        .filter(|(p, _)| !SECRET_FILES.iter().any(|(_, f)| p.join(".") == *f))
        .map(|(p, _)| env_name(p))
        .collect();
    assert!(names.len() > 5);
    let env = move |k: &str| names.iter().any(|n| n == k).then(|| "123".to_owned());
    load_with_env(None, &Overrides::default(), env).unwrap();
}

/// The Citus recipe (docs/cloud.md) sets only a URL: the store follows it instead of the
/// `sqlite` default, unless a layer says `store` itself.
#[test]
fn a_postgres_url_without_a_store_means_postgres() {
    let url = [("LATAMCTL_DATABASE_URL", "postgres://a/x")];
    let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&url)).unwrap();
    assert_eq!(cfg.store, StoreKind::Postgres);
    assert!(
        sources.inferred[0].contains("database.url"),
        "{:?}",
        sources.inferred
    );

    let host = [("LATAMCTL_DATABASE_HOST", "db.internal")];
    let (cfg, _) = load_with_env(None, &Overrides::default(), env_of(&host)).unwrap();
    assert_eq!(cfg.store, StoreKind::Postgres);

    let explicit = [
        ("DATABASE_URL", "postgres://a/x"),
        ("LATAMCTL_STORE", "sqlite"),
    ];
    let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&explicit)).unwrap();
    assert_eq!(cfg.store, StoreKind::Sqlite);
    assert!(sources.inferred.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "store = \"sqlite\"\n");
    let (cfg, _) = load_with_env(Some(&file), &Overrides::default(), env_of(&url)).unwrap();
    assert_eq!(
        cfg.store,
        StoreKind::Sqlite,
        "the file's explicit store wins"
    );

    let mut flags = Overrides::default();
    flags.set("store", "sqlite");
    let (cfg, _) = load_with_env(None, &flags, env_of(&url)).unwrap();
    assert_eq!(cfg.store, StoreKind::Sqlite);

    let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&[])).unwrap();
    assert_eq!(cfg.store, StoreKind::Sqlite, "nothing configured: SQLite");
    assert!(sources.inferred.is_empty());
}

#[test]
fn latamctl_database_url_beats_database_url() {
    let env = env_of(&[
        ("LATAMCTL_DATABASE_URL", "postgres://a/x"),
        ("DATABASE_URL", "postgres://b/y"),
    ]);
    let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
    assert_eq!(cfg.database.url.as_deref(), Some("postgres://a/x"));
}

#[test]
fn unknown_file_key_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "[worker]\nconcurency = 3\n");
    let err = load_with_env(Some(&file), &Overrides::default(), env_of(&[])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("latamctl.toml"), "{msg}");
    assert!(msg.contains("concurency"), "{msg}");
}

#[test]
fn bad_env_value_says_what_is_expected() {
    let env = env_of(&[("LATAMCTL_WORKER_CONCURRENCY", "many")]);
    let err = load_with_env(None, &Overrides::default(), env).unwrap_err();
    assert!(
        err.to_string().contains("LATAMCTL_WORKER_CONCURRENCY"),
        "{err}"
    );
}

#[test]
fn missing_explicit_file_is_an_error() {
    let err = load_with_env(
        Some(Path::new("/nonexistent/latamctl.toml")),
        &Overrides::default(),
        env_of(&[]),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Read { .. }));
}

#[test]
fn secrets_are_redacted() {
    let env = env_of(&[
        ("LATAMCTL_API_TOKEN", "s3cret"),
        (
            "LATAMCTL_DATABASE_URL",
            "postgres://user:hunter2@db:5432/app",
        ),
    ]);
    let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
    let shown = cfg.redacted().to_string();
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(
        shown.contains("postgres://user:<redacted>@db:5432/app"),
        "{shown}"
    );
    let query = redact_url("postgres://db/app?sslmode=require&password=hunter2");
    assert!(
        !query.contains("hunter2") && query.contains("sslmode=require"),
        "{query}"
    );
}

#[test]
fn require_says_what_to_set() {
    let cfg = Config::default();
    let err = cfg
        .require(&cfg.aws.topic_arn, "aws.topic_arn", "bus = \"aws\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("LATAMCTL_AWS_TOPIC_ARN"), "{err}");
    assert!(err.contains("[aws] topic_arn"), "{err}");
}

#[test]
fn publish_in_flight_defaults_to_16_and_refuses_0() {
    let (cfg, _) = load_with_env(None, &Overrides::default(), env_of(&[])).unwrap();
    assert_eq!(cfg.aws.publish_in_flight, 16);
    let env = env_of(&[("LATAMCTL_AWS_PUBLISH_IN_FLIGHT", "4")]);
    let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
    assert_eq!(cfg.aws.publish_in_flight, 4);
    let env = env_of(&[("LATAMCTL_AWS_PUBLISH_IN_FLIGHT", "0")]);
    let err = load_with_env(None, &Overrides::default(), env).unwrap_err();
    assert!(
        err.to_string()
            .contains("aws.publish_in_flight must be at least 1"),
        "{err}"
    );
}
