//! Hostile and broken clients against the real binary (issue #30, slowloris / CWE-400): while
//! a well-behaved client POSTs at a steady rate, 2,000 connections send nothing and 2,000
//! send part of a request head and then nothing, and one client trickles a body. The server
//! must keep serving the real client, close every slow head within the header timeout, keep
//! its descriptors under `api.max_connections` plus a constant, and answer the trickled body
//! 408 without enqueueing anything. One line in the fault table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::faults::{FaultLine, account, embedded_dlq, sqlite_duplicates};
use super::kubernetes::{render, root, values_files};
use super::support::{self, Serve, post};

const IDLE: usize = 2000;
const SLOW_HEAD: usize = 2000;
const MAX_CONNECTIONS: usize = 500;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(1);
/// Descriptors the process holds besides client connections (data files, epoll, eventfds,
/// the listener, stdio), with room to spare.
const FD_CONSTANT: usize = 64;

/// Raises this process's descriptor limit to what the attack needs (the child inherits it).
fn raise_nofile(need: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur < need {
            lim.rlim_cur = need.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn metric(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Reads until the server closes (EOF or reset); what it sent first.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_slowloris_idle_and_slow_clients() {
    let limit = raise_nofile((IDLE + SLOW_HEAD) as u64 + 1024);
    assert!(
        limit >= (IDLE + SLOW_HEAD) as u64 + 256,
        "this test needs {} descriptors (ulimit -Hn is {limit})",
        IDLE + SLOW_HEAD + 256
    );
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let max = MAX_CONNECTIONS.to_string();
    let header = format!("{}s", HEADER_TIMEOUT.as_secs());
    let body = format!("{}s", BODY_TIMEOUT.as_secs());
    let envs = [
        ("LATAMCTL_API_MAX_CONNECTIONS", max.as_str()),
        ("LATAMCTL_API_HEADER_READ_TIMEOUT", header.as_str()),
        ("LATAMCTL_API_BODY_READ_TIMEOUT", body.as_str()),
    ];
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &envs, dir.path());
    let addr = serve.base.trim_start_matches("http://").to_owned();
    let pid = serve.pid();
    let baseline_fds = open_fds(pid);

    // Descriptors, sampled all along.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while !stop.load(Ordering::SeqCst) {
                most = most.max(open_fds(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            most
        })
    };

    // The well-behaved client: 50 POSTs a second on its keep-alive pool, every one timed.
    let good = {
        let (base, stop) = (serve.base.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let (mut acked, mut failed, mut latencies) = (Vec::new(), Vec::new(), Vec::new());
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let started = Instant::now();
                match post(&http, &base, &format!("well-behaved {i}")).await {
                    Ok(id) => {
                        latencies.push(started.elapsed());
                        acked.push(id);
                    }
                    Err(e) => failed.push(e),
                }
                i += 1;
            }
            (acked, failed, latencies)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The attack: idle connections and slow heads, opened as fast as the machine allows.
    let refused = Arc::new(AtomicUsize::new(0));
    let mut idle = tokio::task::JoinSet::new();
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..IDLE + SLOW_HEAD {
        let (addr, refused) = (addr.clone(), refused.clone());
        let connect = async move {
            match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&addr)).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    refused.fetch_add(1, Ordering::SeqCst);
                    None
                }
            }
        };
        if i % 2 == 0 {
            idle.spawn(async move {
                let mut s = connect.await?;
                until_closed(&mut s, Duration::from_secs(30))
                    .await
                    .map(|_| ())
            });
        } else {
            slow.spawn(async move {
                let mut s = connect.await?;
                s.write_all(
                    b"POST /ingresar-datos HTTP/1.1\r\nHost: latamctl\r\nContent-Type: appl",
                )
                .await
                .ok()?;
                let sent = Instant::now();
                until_closed(&mut s, Duration::from_secs(30)).await?;
                Some(sent.elapsed())
            });
        }
    }

    // A body trickled one byte a second: 408 (or a close), nothing enqueued.
    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    trickle
        .write_all(
            b"POST /ingresar-datos HTTP/1.1\r\nHost: latamctl\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{\"topic_arn\":\"data-ingestion-topic\",",
        )
        .await
        .unwrap();
    let trickled = Instant::now();
    let trickle_answer = {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = trickled + Duration::from_secs(15);
        loop {
            tokio::select! {
                r = trickle.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if Instant::now() > deadline || trickle.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let trickle_closed_s = trickled.elapsed().as_secs_f64();

    let mut slow_closes = Vec::new();
    let mut slow_open = 0;
    while let Some(r) = slow.join_next().await {
        match r.unwrap() {
            Some(d) => slow_closes.push(d),
            None => slow_open += 1,
        }
    }
    stop.store(true, Ordering::SeqCst);
    let most_fds = sampler.await.unwrap();
    let (acked, failed, mut latencies) = good.await.unwrap();
    idle.shutdown().await;

    let page = serve.metrics(&support::client()).await;
    let closed = |reason: &str| {
        metric(
            &page,
            &format!("latamctl_http_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    let (by_header, by_eviction, by_body) = (
        closed("header_timeout"),
        closed("evicted"),
        closed("body_timeout"),
    );
    let (stored, recovered_s) = account(&serve.base, &acked, Duration::from_secs(30)).await;
    assert_eq!(serve.terminate(), Some(0));

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e3;
    let slowest_close = slow_closes.iter().max().copied().unwrap_or_default();
    let detail = format!(
        " | p99 {p99:.1} ms | fds max {most_fds} (cap {MAX_CONNECTIONS}) | slow heads closed in ≤ {:.1} s | closed: {by_header} header, {by_eviction} evicted, {by_body} body | refused {}",
        slowest_close.as_secs_f64(),
        refused.load(Ordering::SeqCst)
    );
    FaultLine {
        fault: "2,000 idle + 2,000 slow-header conns, 1 slow body",
        acked: acked.len(),
        stored,
        duplicates: sqlite_duplicates(&data).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check_with(&detail);

    assert!(failed.is_empty(), "well-behaved POSTs failed: {failed:?}");
    assert_eq!(
        slow_open, 0,
        "slow-header connections still open after 30 s{detail}"
    );
    assert!(
        // The server's clock starts at accept; on a loaded machine (the whole suite on two
        // cores) a connection can wait seconds in the backlog first. Still far below the
        // 30 s that the code before the bounds never closed them within.
        slowest_close <= HEADER_TIMEOUT + Duration::from_secs(8),
        "a slow-header connection stayed open {slowest_close:?}{detail}"
    );
    assert!(
        most_fds <= baseline_fds + MAX_CONNECTIONS + FD_CONSTANT,
        "the process held {most_fds} descriptors (baseline {baseline_fds}){detail}"
    );
    assert!(
        trickle_answer.starts_with("HTTP/1.1 408"),
        "the trickled body was answered {trickle_answer:?} after {trickle_closed_s:.1} s"
    );
    assert!(
        trickle_closed_s <= BODY_TIMEOUT.as_secs_f64() + 2.0,
        "the trickled body's connection closed after {trickle_closed_s:.1} s"
    );
    assert!(trickle_answer.contains("body_timeout"), "{trickle_answer}");
    assert_eq!(by_body, 1.0, "{detail}");
    assert!(by_header + by_eviction >= SLOW_HEAD as f64, "{detail}");
    // Every row stored is a well-behaved message: nothing of the trickled body.
    assert_eq!(sqlite_rows(&data).await, acked.len() as u64, "{detail}");
}

async fn sqlite_rows(data: &std::path::Path) -> u64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", data.join("records.db").display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n as u64
}

/// A keep-alive connection with no request is closed after `api.idle_timeout` (counted), and
/// at SIGTERM idle connections close at once: the process exits without waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_at_the_idle_timeout_and_at_sigterm() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let args = ["--data-dir", data.to_str().unwrap()];
    let request = b"GET /healthz HTTP/1.1\r\nHost: latamctl\r\n\r\n";

    let serve = Serve::start(&args, &[("LATAMCTL_API_IDLE_TIMEOUT", "1s")], dir.path());
    let addr = serve.base.trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let answered = Instant::now();
    let seen = until_closed(&mut conn, Duration::from_secs(10))
        .await
        .expect("the idle connection was never closed");
    let idle_s = answered.elapsed().as_secs_f64();
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!((0.9..3.0).contains(&idle_s), "closed after {idle_s:.2} s");
    let page = serve.metrics(&support::client()).await;
    assert_eq!(
        metric(
            &page,
            "latamctl_http_connections_closed_total{reason=\"idle_timeout\"}"
        ),
        1.0,
        "{page}"
    );
    assert_eq!(serve.terminate(), Some(0));

    // The default idle timeout (75 s) would hold these; SIGTERM must not wait for them.
    let serve = Serve::start(&args, &[], dir.path());
    let addr = serve.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut buf = [0u8; 512];
        assert!(c.read(&mut buf).await.unwrap() > 0);
        idle.push(c);
    }
    let page = serve.metrics(&support::client()).await;
    assert!(
        metric(&page, "latamctl_http_open_connections") >= 20.0,
        "{page}"
    );
    let stopping = Instant::now();
    assert_eq!(serve.terminate(), Some(0));
    let stop_s = stopping.elapsed().as_secs_f64();
    assert!(
        stop_s < 5.0,
        "shutdown waited {stop_s:.1} s for idle connections"
    );
    for mut c in idle {
        assert!(until_closed(&mut c, Duration::from_secs(1)).await.is_some());
    }
}

/// The ALB's idle timeout against the server's keep-alive timeout, in what the chart renders
/// for every values file in the repo: with an ALB ingress the chart sets the ALB's, and it must
/// be shorter than `api.idle_timeout` in the rendered latamctl.toml, or the ALB reuses a
/// connection the server has just closed and answers 502.
#[test]
fn the_alb_idle_timeout_is_below_the_servers_on_every_values_file() {
    let Some(python) = support::service("LATAMCTL_TEST_HELM_PYTHON") else {
        return;
    };
    let work = support::tempdir();
    let mut albs = 0;
    let mut cases: Vec<(String, std::path::PathBuf, Vec<&str>)> = values_files(work.path())
        .into_iter()
        .map(|(label, file)| (label, file, Vec::new()))
        .collect();
    // The same check must catch a server timeout set below the ALB's.
    let prod = root().join("deploy/gitops/prod/values.yaml");
    cases.push((
        "prod with config.api.idle_timeout=30s".into(),
        prod,
        vec!["config.api.idle_timeout=30s"],
    ));
    for (label, file, sets) in cases {
        let rendered = render(&python, &[&file], &sets, "latamctl");
        match alb_and_server_idle(&rendered) {
            Some((alb, server)) if sets.is_empty() => {
                albs += 1;
                assert!(
                    alb < server,
                    "{label}: the ALB's idle timeout ({alb:?}) is not below the server's ({server:?})"
                );
            }
            Some((alb, server)) => assert!(alb >= server, "{label}: {alb:?} vs {server:?}"),
            None => {}
        }
    }
    assert!(albs >= 2, "no values file with an ALB ingress was checked");
}

/// (the ALB's idle timeout, the server's) when the rendered objects have an ALB ingress.
fn alb_and_server_idle(rendered: &[serde_json::Value]) -> Option<(Duration, Duration)> {
    let ingress = rendered
        .iter()
        .find(|o| o["kind"] == "Ingress" && o["spec"]["ingressClassName"] == "alb")?;
    let attributes =
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
            .as_str()
            .expect("an ALB ingress sets load-balancer-attributes");
    let alb: u64 = attributes
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("idle_timeout.timeout_seconds="))
        .expect("load-balancer-attributes sets idle_timeout.timeout_seconds")
        .parse()
        .unwrap();
    let toml_text = rendered
        .iter()
        .find_map(|o| o["data"]["latamctl.toml"].as_str())
        .expect("the chart renders latamctl.toml");
    let config: toml::Table = toml_text.parse().unwrap();
    let server = config["api"]
        .get("idle_timeout")
        .and_then(|v| v.as_str())
        .map_or(latamctl::config::ApiConfig::default().idle_timeout, |s| {
            humantime::parse_duration(s).unwrap()
        });
    Some((Duration::from_secs(alb), server))
}
