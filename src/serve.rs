//! Drives one connection with a service it is given: HTTP/1.1 (with
//! upgrades, for CONNECT) or HTTP/2, until the connection ends or
//! countersign drains. A listener's TCP connections are parked while they
//! wait for a request (`park`). It knows nothing of what the requests are for: the
//! accept loops and the proxy's intercepted tunnels hand it their streams
//! and services.

mod guard;
mod park;
mod rewake;

use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::drain::DrainWatch;
pub use guard::guarded;
pub use park::http1_parked;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The read buffer of an HTTP/1.1 connection, which bounds its request head
/// too. hyper's default (~400 KiB) is held by every connection that sent a
/// burst of body bytes, stalled or not.
const H1_READ_BUFFER: usize = 64 << 10;
/// What one HTTP/2 stream may queue for sending to the peer.
const H2_SEND_BUFFER: usize = 64 << 10;
/// The largest request head a peer may send over HTTP/2.
const H2_HEADER_LIST: u32 = 64 << 10;

/// What one HTTP/2 connection may make countersign hold: its streams, and
/// the body bytes it may send ahead (the window, per stream and in all).
#[derive(Debug, Clone, Copy)]
pub struct H2Limits {
    pub max_streams: u32,
    pub window: u32,
}

/// Serves HTTP/1.1 with keep-alive on `stream`; the request head must come
/// within `header_timeout`. On drain the request in progress finishes,
/// then the connection closes. `drain` keeps shutdown waiting meanwhile.
pub async fn http1<I, S, B>(stream: I, service: S, header_timeout: Duration, mut drain: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(H1_READ_BUFFER)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    // Polled again in place when it wakes itself (`rewake`).
    let conn = rewake::Rewake::new(Box::pin(conn));
    let result = until_drained(conn, &mut drain, |c| {
        c.get_mut().get_mut().as_mut().graceful_shutdown()
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Serves HTTP/2 on `stream` (the peer chose h2 by ALPN). Each stream is
/// one request; on drain the streams under way finish (GOAWAY), then the
/// connection closes.
pub async fn h2<I, S, B>(stream: I, service: S, limits: H2Limits, mut drain: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .initial_stream_window_size(limits.window)
        .initial_connection_window_size(limits.window)
        .max_send_buf_size(H2_SEND_BUFFER)
        .max_header_list_size(H2_HEADER_LIST)
        .serve_connection(TokioIo::new(stream), service);
    let result = until_drained(conn, &mut drain, |c| c.graceful_shutdown()).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "client h2 connection ended with an error");
    }
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
