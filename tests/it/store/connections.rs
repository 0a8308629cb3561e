//! How the store connects to PostgreSQL: the libpq sslmodes against a v1 certificate, and
//! `TCP_NODELAY` on every socket.

use super::*;

/// `CREATE EXTENSION citus` turns TLS on with a self-signed X.509 *v1* certificate, which
/// rustls refuses to parse even when it is told not to verify; psql (OpenSSL) connects. The
/// sslmodes must mean what libpq documents: `prefer`/`require` encrypt without verifying,
/// `verify-ca`/`verify-full` verify, and a refusal names `sslmode`. The cluster (started by
/// scripts/test.sh with `openssl x509 -req`, no extensions) rejects plaintext connections,
/// so every success below is an encrypted connection.
#[tokio::test]
async fn postgres_tls_with_a_v1_certificate_follows_the_libpq_sslmodes() {
    let Some(db) = fresh_database_on("LATAMCTL_TEST_TLS_DATABASE_URL").await else {
        return;
    };
    let cert = support::service("LATAMCTL_TEST_TLS_CERT").unwrap();
    let dir = support::tempdir();
    let migrate = |url: String| {
        support::run(
            &["migrate", "-o", "json"],
            &[("DATABASE_URL", &url)],
            dir.path(),
        )
    };

    for mode in ["prefer", "require"] {
        let (code, stdout, stderr) = migrate(format!("{db}?sslmode={mode}"));
        assert_eq!(code, 0, "sslmode={mode}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["store"], "postgres", "{stdout}");
    }
    let pool = sqlx::PgPool::connect(&format!("{db}?sslmode=require"))
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "sslmode=require must encrypt");

    // Verifying against the system's roots fails: the certificate is self-signed.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-full"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sslmode") && stderr.contains("sslrootcert"),
        "the error must name sslmode and how to trust the server: {stderr}"
    );
    // With the certificate as the root, verify-ca passes...
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-ca&sslrootcert={cert}"));
    assert_eq!(
        code, 0,
        "verify-ca with the server's certificate as root: {stderr}"
    );
    // ...and verify-full still checks the name: 127.0.0.1 is not CN=citus-auto-ssl.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-full&sslrootcert={cert}"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("sslmode"), "{stderr}");

    // Plaintext is refused by the server, and the error says so.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=disable"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no encryption"), "{stderr}");
}

/// The inodes of this process's TCP sockets connected to `port` (`/proc/self/net/tcp{,6}`).
fn sockets_to(port: u16) -> Vec<std::os::fd::RawFd> {
    let mut inodes = std::collections::BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 01: ESTABLISHED.
            if remote_port == Some(port) && fields[3] == "01" {
                inodes.insert(fields[9].to_owned());
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            inodes
                .contains(inode)
                .then(|| e.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .collect()
}

/// sqlx 0.9.0 stopped setting `TCP_NODELAY` (sqlx #4335): with Nagle's algorithm and delayed
/// ACKs a small write followed by a read can wait ~40 ms, which TLS makes likely. Every socket
/// of the store's pool, plaintext and TLS, must carry it.
#[tokio::test]
async fn every_postgres_socket_of_the_store_has_tcp_nodelay() {
    let Some(plain) = fresh_database().await else {
        return;
    };
    let Some(tls) = fresh_database_on("LATAMCTL_TEST_TLS_DATABASE_URL").await else {
        return;
    };
    for url in [plain, format!("{tls}?sslmode=require")] {
        let port = reqwest::Url::parse(&url).unwrap().port().unwrap();
        let store = PostgresStore::connect(
            &DatabaseConfig {
                url: Some(url.clone()),
                max_connections: 4,
                ..DatabaseConfig::default()
            },
            &AwsConfig::default(),
        )
        .await
        .unwrap();
        store.apply_migrations().await.unwrap();
        // Several at once, so the pool opens more than one connection.
        let pings = (0..4).map(|_| store.ping());
        for r in futures::future::join_all(pings).await {
            r.unwrap();
        }
        let fds = sockets_to(port);
        assert!(!fds.is_empty(), "no socket to port {port} found");
        for fd in &fds {
            // SAFETY: the fd is open (just listed) and borrowed only for this call.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
            let nodelay = socket2::SockRef::from(&borrowed).tcp_nodelay().unwrap();
            assert!(
                nodelay,
                "{url}: socket fd {fd} to port {port} lacks TCP_NODELAY"
            );
        }
        eprintln!("{} sockets to port {port}: all TCP_NODELAY", fds.len());
    }
}
