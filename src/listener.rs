//! Accept loops. Each listener has a role (the forward proxy, a route's
//! reverse listener, the admin listener) and serves HTTP/1.1 with keep-alive;
//! every proxied request loads the snapshot current at its start. Each
//! listener serves at most `max_connections` at once (`slots`); accept
//! failures back off and are logged at most once a second (`throttle`).

mod slots;
mod throttle;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::task::Poll;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use std::time::Instant;

use crate::app::AppInner;
use crate::body::ProxyBody;
use crate::drain::DrainWatch;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::snapshot::{ListenerRole, SnapshotCell};
use crate::{admin, proxy};
pub(crate) use slots::Slot;
use slots::Slots;
use throttle::{Backoff, LogThrottle};

/// Connections the kernel holds for a listener that has not accepted them
/// (past `max_connections`, they wait here); capped by `net.core.somaxconn`.
/// tokio's default is 128.
const ACCEPT_BACKLOG: u32 = 1024;
/// The read buffer of an HTTP/1.1 connection from the app, which bounds its
/// request head too. hyper's default (~400 KiB) is held by every connection
/// that sent a burst of body bytes, stalled or not.
const H1_READ_BUFFER: usize = 64 << 10;
/// What one HTTP/2 stream may queue for sending to the app.
const H2_SEND_BUFFER: usize = 64 << 10;
/// The largest request head an app may send over HTTP/2.
const H2_HEADER_LIST: u32 = 64 << 10;

/// What every connection shares.
#[derive(Clone)]
pub(crate) struct ServeContext {
    pub cell: SnapshotCell,
    pub metrics: Arc<Metrics>,
    pub drain: DrainWatch,
    /// For the admin endpoints (reload, status); weak so listeners do not
    /// keep the app alive.
    pub app: Weak<AppInner>,
    /// The connection's place in its listener's `max_connections`; set per
    /// connection, and kept by a tunnel the connection becomes.
    pub slot: Option<Arc<Slot>>,
}

/// A running accept loop. Dropping it (or `stop`) stops accepting; open
/// connections finish on their own.
#[derive(Debug)]
pub struct Listener {
    /// The address as configured (may have port 0).
    pub configured: SocketAddr,
    /// The address actually bound.
    pub local: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Listener {
    pub async fn bind(
        role: ListenerRole,
        configured: SocketAddr,
    ) -> std::io::Result<(TcpListener, SocketAddr)> {
        let socket = match configured {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(configured)?;
        let tcp = socket.listen(ACCEPT_BACKLOG)?;
        let local = tcp.local_addr()?;
        tracing::info!(%role, %local, "listening");
        Ok((tcp, local))
    }

    /// Starts serving an already-bound socket.
    pub fn spawn(
        role: ListenerRole,
        configured: SocketAddr,
        tcp: TcpListener,
        ctx: ServeContext,
    ) -> Listener {
        let local = tcp.local_addr().unwrap_or(configured);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(tcp, role, ctx, stopped));
        Listener {
            configured,
            local,
            stop,
        }
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    role: ListenerRole,
    ctx: ServeContext,
    mut stopped: watch::Receiver<bool>,
) {
    let mut draining = ctx.drain.clone();
    let slots = Arc::new(Slots::default());
    let (mut backoff, mut failures, mut fulls) = (
        Backoff::default(),
        LogThrottle::default(),
        LogThrottle::default(),
    );
    loop {
        // A place first: past the limit, connections wait in the kernel's
        // accept queue and hold no file descriptor here.
        let max = || ctx.cell.load().proxy.limits.max_connections;
        let full = || {
            ctx.metrics.limit_rejected("connections");
            if let Some(suppressed) = fulls.allow(Instant::now()) {
                tracing::warn!(%role, max_connections = max(), suppressed, "connection limit reached; new connections wait in the accept queue");
            }
        };
        let slot = tokio::select! {
            _ = stopped.changed() => break,
            _ = draining.draining() => break,
            slot = slots.take(max, full) => slot,
        };
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            _ = draining.draining() => break,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff.reset();
                let _ = stream.set_nodelay(true);
                let ctx = ServeContext {
                    slot: Some(Arc::new(slot)),
                    ..ctx.clone()
                };
                tokio::spawn(serve_connection(stream, role.clone(), ctx));
            }
            Err(e) => {
                // Usually EMFILE: wait (longer each time) for descriptors to
                // be freed instead of spinning, and say so once a second.
                drop(slot);
                if let Some(suppressed) = failures.allow(Instant::now()) {
                    tracing::warn!(%role, error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    tracing::info!(%role, "stopped listening");
}

/// Serves HTTP/1.1 on one connection: a TCP stream from an accept loop, or
/// the TLS stream inside an intercepted CONNECT tunnel. On shutdown the
/// request in progress finishes, then the connection closes.
pub async fn serve_connection<I>(stream: I, role: ListenerRole, ctx: ServeContext)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = ctx.cell.load().proxy.client_header_timeout;
    let kind = role.kind();
    let (metrics, mut draining) = (Arc::clone(&ctx.metrics), ctx.drain.clone());
    metrics.connection(kind, 1);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(H1_READ_BUFFER)
        .serve_connection(TokioIo::new(stream), service(role, ctx))
        .with_upgrades();
    let result = until_drained(conn, &mut draining, |c| c.graceful_shutdown()).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
    metrics.connection(kind, -1);
}

/// Serves HTTP/2 on the TLS stream of an intercepted tunnel whose app chose
/// h2 by ALPN. Each stream is one request, handled as any other; on
/// shutdown the streams under way finish (GOAWAY), then the connection
/// closes.
pub async fn serve_h2<I>(stream: I, role: ListenerRole, ctx: ServeContext)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kind = role.kind();
    let (metrics, mut draining) = (Arc::clone(&ctx.metrics), ctx.drain.clone());
    let limits = ctx.cell.load().proxy.limits.clone();
    metrics.connection(kind, 1);
    // What one app connection can make countersign hold: its streams, the
    // body bytes it may send ahead (the window), what waits to be sent back.
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_streams)
        .initial_stream_window_size(limits.h2_window)
        .initial_connection_window_size(limits.h2_window)
        .max_send_buf_size(H2_SEND_BUFFER)
        .max_header_list_size(H2_HEADER_LIST)
        .serve_connection(TokioIo::new(stream), service(role, ctx));
    let result = until_drained(conn, &mut draining, |c| c.graceful_shutdown()).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "client h2 connection ended with an error");
    }
    metrics.connection(kind, -1);
}

/// Runs `conn` to its end; when countersign starts draining, asks it to
/// shut down gracefully (HTTP/1.1: after the request in progress; h2:
/// GOAWAY, after the streams under way) and waits for that.
async fn until_drained<C, T>(
    conn: C,
    draining: &mut DrainWatch,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) -> T
where
    C: Future<Output = T>,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        _ = draining.draining() => {
            graceful(conn.as_mut());
            conn.await
        }
    }
}

/// What answers each request of a connection: the admin endpoints, or the
/// proxy for the listener's role.
fn service(
    role: ListenerRole,
    ctx: ServeContext,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ProxyBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
> + Clone {
    let role = Arc::new(role);
    service_fn(move |req: Request<Incoming>| {
        let ctx = ctx.clone();
        let role = Arc::clone(&role);
        let method = req.method().clone();
        async move {
            let metrics = Arc::clone(&ctx.metrics);
            let handled = catch_panic(async {
                match *role {
                    ListenerRole::Admin => admin::handle(&ctx, req).await,
                    _ => proxy::handle(&ctx, &role, req).await,
                }
            })
            .await;
            let resp = handled.unwrap_or_else(|payload| {
                // The payload is quoted only when it is a literal from the
                // code: a formatted one may hold request data or a secret.
                let message = payload.downcast_ref::<&'static str>().copied();
                tracing::error!(listener = %role, %method, panic = message.unwrap_or("(withheld)"), "request handler panicked; answered 500");
                let e = ProxyError::Internal;
                metrics.error(e.reason());
                e.into_response()
            });
            Ok::<_, Infallible>(resp)
        }
    })
}

/// Runs `fut`, turning a panic inside it into `Err(payload)`. Each poll runs
/// under `catch_unwind`, which costs nothing until something panics; the
/// future stays where hyper put it (no task spawned, no allocation), and
/// the app's connection is answered and kept.
async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_future_is_caught_and_its_payload_kept() {
        assert_eq!(catch_panic(async { 7 }).await.ok(), Some(7));
        let caught = catch_panic(async {
            tokio::task::yield_now().await;
            panic!("boom")
        })
        .await
        .unwrap_err();
        assert_eq!(caught.downcast_ref::<&'static str>(), Some(&"boom"));
    }
}
