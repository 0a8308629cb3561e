//! PostgreSQL faults: a private cluster restarted mid-drain, and writes refused for a minute
//! (REVOKE INSERT, read-only role).

use super::*;

use crate::outage::app_role_database;

/// A PostgreSQL cluster of the test's own, so it can be restarted without touching the
/// shared one.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    url: String,
}

impl PrivatePostgres {
    fn as_postgres(cmd: &std::path::Path) -> std::process::Command {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(cmd);
            c
        } else {
            std::process::Command::new(cmd)
        }
    }

    fn start() -> Option<PrivatePostgres> {
        support::service("LATAMCTL_TEST_DATABASE_URL")?;
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::Builder::new()
            .prefix("latamctl-pg")
            .tempdir_in("/tmp")
            .unwrap();
        let _ = std::process::Command::new("chown")
            .args(["postgres", dir.path().to_str().unwrap()])
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        let ok = Self::as_postgres(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
            ])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "initdb failed");
        let pg = PrivatePostgres {
            bin,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        pg.ctl(&[
            "start",
            "-w",
            "-o",
            &format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                pg.dir.path().display()
            ),
        ]);
        Some(pg)
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let out = Self::as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Self::as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// PostgreSQL restarted (fast shutdown, every connection dropped) while the worker drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_restart_mid_drain() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let mut env = vec![
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", pg.url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
    ];
    env.extend(STRICT_WORKER);
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &env, dir.path());
    let load = Load::start(&serve.base, 8, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.ctl(&["restart", "-m", "fast", "-w"]);
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "PostgreSQL restart mid-drain",
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&pg.url).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}

/// The database answers `SELECT 1` but refuses writes for 60 s (`break_sql`), then is fixed.
async fn writes_refused_for_a_minute(fault: &'static str, break_sql: &str, fix_sql: &str) {
    let Some(db) = app_role_database().await else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let mut env = vec![
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", db.app_url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
    ];
    env.extend(STRICT_WORKER);
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap(), "--no-migrate"],
        &env,
        dir.path(),
    );
    let load = Load::start(&serve.base, 2, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.exec(break_sql).await;
    db.reconnect_app().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    db.exec(fix_sql).await;
    db.reconnect_app().await;
    let fixed = Instant::now();
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert_eq!(serve.terminate(), Some(0));
    let admin_url = {
        let mut u = reqwest::Url::parse(&db.app_url).unwrap();
        u.set_username("postgres").unwrap();
        u.to_string()
    };
    FaultLine {
        fault,
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&admin_url).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_revoke_insert_for_60_s() {
    writes_refused_for_a_minute(
        "PostgreSQL REVOKE INSERT for 60 s, then GRANT",
        "REVOKE INSERT ON records FROM {role}",
        "GRANT INSERT ON records TO {role}",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_read_only_for_60_s() {
    writes_refused_for_a_minute(
        "PostgreSQL default_transaction_read_only 60 s",
        "ALTER ROLE {role} SET default_transaction_read_only = on",
        "ALTER ROLE {role} RESET default_transaction_read_only",
    )
    .await;
}
