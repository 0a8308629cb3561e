//! Shared test helpers: the real binary on a free port, services from the environment.
//!
//! External services are found through env vars that `scripts/test.sh` sets after starting
//! them: `LATAMCTL_TEST_MOTO_URL` (moto server) and `LATAMCTL_TEST_DATABASE_URL` (a private
//! PostgreSQL cluster). Without them those tests skip with a message, unless
//! `LATAMCTL_TEST_REQUIRE_SERVICES=1` (set by the test script), where a missing service fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

pub const BIN: &str = env!("CARGO_BIN_EXE_latamctl");

/// An env var naming a test service; `None` means skip (unless services are required).
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("LATAMCTL_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "{var} is not set but LATAMCTL_TEST_REQUIRE_SERVICES=1: run scripts/test.sh"
                );
            }
            eprintln!("skipping: {var} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

/// A `latamctl serve` child process; killed on drop.
pub struct Serve {
    pub child: Child,
    pub base: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts `latamctl serve ARGS --listen 127.0.0.1:0` with `envs` (an empty value unsets
    /// the variable); waits for the listening line.
    pub fn start(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(cwd)
            .env_remove("LATAMCTL_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // An empty value unsets the variable (`("RUST_LOG", "")`: the config's log.level).
        for (k, v) in envs {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("spawn latamctl");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        let _ = tx.send(addr.to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "latamctl serve did not start; stderr:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        };
        Serve {
            child,
            base,
            stderr: lines,
        }
    }

    /// `GET /readyz`: its status code and body.
    pub async fn readyz(&self, http: &reqwest::Client) -> (u16, serde_json::Value) {
        let resp = http.get(self.url("/readyz")).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` page.
    pub async fn metrics(&self, http: &reqwest::Client) -> String {
        http.get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for exit; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "serve did not stop within 30 s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `latamctl ARGS` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("LATAMCTL_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run latamctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// POSTs one message; returns the transaction id on 200.
pub async fn post(client: &reqwest::Client, base: &str, message: &str) -> Result<Uuid, String> {
    let resp = client
        .post(format!("{base}/ingresar-datos"))
        .json(&serde_json::json!({"topic_arn": "data-ingestion-topic", "message": message}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["transaction_id"].as_str().unwrap().parse().unwrap())
}

/// Polls `GET /data/{id}` for every id until all are found or `deadline` passes; returns the
/// ids still missing.
pub async fn wait_stored(
    client: &reqwest::Client,
    base: &str,
    ids: &[Uuid],
    deadline: Duration,
) -> Vec<Uuid> {
    let until = Instant::now() + deadline;
    let mut missing: Vec<Uuid> = ids.to_vec();
    while !missing.is_empty() && Instant::now() < until {
        let mut still = Vec::new();
        for chunk in missing.chunks(64) {
            let checks = chunk.iter().map(|id| {
                let url = format!("{base}/data/{id}");
                let client = client.clone();
                async move {
                    let ok = matches!(client.get(url).send().await, Ok(r) if r.status() == 200);
                    (*id, ok)
                }
            });
            for (id, ok) in futures::future::join_all(checks).await {
                if !ok {
                    still.push(id);
                }
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    missing
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn data_dir(root: &Path) -> PathBuf {
    root.join("data")
}

/// A TCP proxy in front of a service that can be cut (new connections dropped, open ones
/// closed), to make it unreachable and bring it back.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// `target` is a URL (`http://host:port`, `postgres://user@host:port/db`).
    pub async fn start(target: &str) -> Proxy {
        let target = reqwest::Url::parse(target).unwrap();
        let target = format!("{}:{}", target.host_str().unwrap(), target.port().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = rx.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    if !*rx.borrow() {
                        return; // dropped: connection reset
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async { while rx.changed().await.is_ok() && *rx.borrow() {} } => {}
                    }
                });
            }
        });
        Proxy { addr, up }
    }

    pub fn set(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_via(&self, url: &str) -> String {
        let mut u = reqwest::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }
}

/// Polls `done` every 200 ms until it holds; fails the test past `within`.
pub async fn wait_until<F, Fut>(within: std::time::Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
