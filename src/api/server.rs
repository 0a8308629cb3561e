//! The HTTP server under the bounds a listener reachable by any client needs (slowloris,
//! CWE-400). `axum::serve` gives hyper no timer, so no header or idle timeout applies, and it
//! accepts connections without limit. This accept loop adds, per connection:
//!
//! - **header-read timeout** (`api.header_read_timeout`, 10 s): a request head that has begun
//!   to arrive must be complete within it, or the connection is closed;
//! - **idle timeout** (`api.idle_timeout`, 75 s): a connection with no request in flight and no
//!   byte of a next one is closed after it. It must be longer than the load balancer's idle
//!   timeout (the ALB's 60 s, set in the chart's ingress annotation), or the ALB reuses a
//!   connection the server has just closed and answers 502 (`tests/it/hostile.rs` checks both
//!   values);
//! - **body-read deadline** (`api.body_read_timeout`, 5 s): the request body must arrive
//!   within it; a trickled body is answered 408 and the connection closed, nothing enqueued;
//! - **`api.max_connections`** (4096): past it the longest-idle connection (idle or still
//!   sending its head, never one with a request in flight) is closed to make room; if every
//!   connection is busy, new ones wait in the kernel's accept backlog. Descriptors stay
//!   bounded whatever clients do.
//!
//! On shutdown, idle keep-alive connections close at once and in-flight requests finish.
//! `latamctl_http_open_connections` and `latamctl_http_connections_closed_total{reason}` show
//! what the bounds did.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::metric;

/// The connection bounds (config `api.*`; see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    /// Longest wait for in-flight requests after shutdown begins.
    pub drain_timeout: Duration,
}

/// Why the server closed a connection (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    HeaderTimeout,
    IdleTimeout,
    BodyTimeout,
    Evicted,
}

impl CloseReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::Evicted => "evicted",
        }
    }

    pub fn count(self) {
        metrics::counter!(metric::HTTP_CONNECTIONS_CLOSED_TOTAL, "reason" => self.label())
            .increment(1);
    }
}

/// What one connection is doing, shared by its socket wrapper, its service and its watchdog.
struct Conn {
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
    /// A byte of a next request head arrived while no request was in flight.
    reading_head: AtomicBool,
    /// Milliseconds since [`epoch`] of the last change of phase.
    since_ms: AtomicU64,
    evicted: AtomicBool,
    wake: Notify,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Conn {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            reading_head: AtomicBool::new(false),
            since_ms: AtomicU64::new(now_ms()),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// The instant this connection is closed unless its phase changes, and why.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, CloseReason)> {
        if self.busy() {
            return None;
        }
        let since = epoch() + Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        Some(if self.reading_head.load(Ordering::Acquire) {
            (
                since + limits.header_read_timeout,
                CloseReason::HeaderTimeout,
            )
        } else {
            (since + limits.idle_timeout, CloseReason::IdleTimeout)
        })
    }

    fn on_bytes_read(&self) {
        if !self.busy() && !self.reading_head.swap(true, Ordering::AcqRel) {
            self.since_ms.store(now_ms(), Ordering::Release);
            // The header deadline is sooner than the idle one the watchdog sleeps on.
            self.wake.notify_one();
        }
    }

    fn on_request(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.reading_head.store(false, Ordering::Release);
    }

    fn on_response(&self) {
        self.since_ms.store(now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Decrements the in-flight count when the router's response future ends (or is dropped).
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.on_response();
    }
}

/// The open connections, for eviction at the cap.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn add(&self, conn: Arc<Conn>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().unwrap().insert(id, conn);
        metrics::gauge!(metric::HTTP_OPEN_CONNECTIONS).increment(1.0);
        id
    }

    fn remove(&self, id: u64) {
        self.conns.lock().unwrap().remove(&id);
        metrics::gauge!(metric::HTTP_OPEN_CONNECTIONS).decrement(1.0);
    }

    /// Asks the connection that has waited longest without a request in flight to close.
    /// False when every connection is busy (or already asked).
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().unwrap();
        let victim = conns
            .values()
            .filter(|c| !c.busy() && !c.evicted.load(Ordering::Acquire))
            .min_by_key(|c| c.since_ms.load(Ordering::Acquire));
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                c.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Arc::new(Registry::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog below owns the header timeout: hyper's would also close idle
        // keep-alive connections after it, well before the load balancer's idle timeout.
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        // At the cap, close the longest-idle connection to make room; ask again every
        // 100 ms while every connection is busy (the new ones wait in the accept backlog).
        let permit = loop {
            if let Ok(p) = permits.clone().try_acquire_owned() {
                break Some(p);
            }
            registry.evict_one();
            tokio::select! {
                p = permits.clone().acquire_owned() => break p.ok(),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.cancelled() => break None,
            }
        };
        let Some(permit) = permit else { break };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset before
                    // accept: back off a moment instead of spinning.
                    tracing::warn!(message = "accept failed", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // Reap finished connection tasks so the set does not grow with every connection.
        while tasks.try_join_next().is_some() {}
        let conn = Arc::new(Conn::new());
        let id = registry.add(conn.clone());
        let (app, builder, registry, shutdown) = (
            app.clone(),
            builder.clone(),
            registry.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            serve_connection(stream, app, &builder, conn, limits, shutdown).await;
            registry.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    // Shutdown: each connection closes when idle, in-flight requests finish.
    if tokio::time::timeout(limits.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            message = "HTTP connections still open after the drain timeout; closing them",
            open = tasks.len()
        );
        tasks.shutdown().await;
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    conn: Arc<Conn>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: conn.clone(),
    });
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            conn.on_request();
            let guard = InFlight(conn.clone());
            let deadline = Instant::now() + limits.body_read_timeout;
            let req = req.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                })
            });
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                drop(guard);
                response
            }
        })
    };
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let (at, reason) = conn.deadline(&limits).unwrap_or((
            Instant::now() + limits.idle_timeout,
            CloseReason::IdleTimeout,
        ));
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = tokio::time::sleep_until(at) => {
                // The phase may have changed since the deadline was computed.
                if conn.deadline(&limits).is_some_and(|(now_at, _)| now_at <= Instant::now()) {
                    reason.count();
                    return;
                }
            }
            _ = conn.wake.notified() => {
                if conn.evicted.load(Ordering::Acquire) && !conn.busy() {
                    CloseReason::Evicted.count();
                    return;
                }
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The socket, telling its connection when request bytes arrive.
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_bytes_read();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The error a request body yields when it has not fully arrived by its deadline; the ingest
/// handlers answer it 408 and close the connection.
#[derive(Debug)]
pub struct BodyDeadlineExceeded;

impl std::fmt::Display for BodyDeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time (api.body_read_timeout)")
    }
}

impl std::error::Error for BodyDeadlineExceeded {}

/// Whether `error` (a body-read rejection) comes from the body deadline.
pub fn is_body_deadline(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyDeadlineExceeded>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A request body that fails with [`BodyDeadlineExceeded`] once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyDeadlineExceeded)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
