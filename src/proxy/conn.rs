//! A connection from the app, served by the proxy: each request goes to
//! `handle` under the panic guard, on the snapshot current at its start.
//! The proxy and route listeners hand their connections here, and so do
//! intercepted CONNECT tunnels (`connect`), over HTTP/1.1 or h2.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::drain::DrainWatch;
use crate::error::ProxyError;
use crate::listener::Slot;
use crate::metrics::Metrics;
use crate::serve::{self, H2Limits};
use crate::snapshot::{ListenerRole, SnapshotCell};

/// What every connection of the app shares.
#[derive(Clone)]
pub(crate) struct Context {
    pub cell: SnapshotCell,
    pub metrics: Arc<Metrics>,
    /// Keeps shutdown waiting while the connection is open.
    pub drain: DrainWatch,
    /// The connection's place in its listener's `max_connections`, kept by
    /// a tunnel the connection becomes.
    pub slot: Option<Arc<Slot>>,
}

/// Serves HTTP/1.1 (and CONNECT) from the app on a listener's connection,
/// holding no hyper connection while it waits for a request.
pub(crate) async fn http1_tcp(stream: TcpStream, role: ListenerRole, ctx: Context) {
    let header_timeout = ctx.cell.load().proxy.client_header_timeout;
    let drain = ctx.drain.clone();
    serve::http1_parked(stream, service(role, ctx), header_timeout, drain).await;
}

/// Serves HTTP/1.1 (and CONNECT) from the app on `stream`.
pub(crate) async fn http1<I>(stream: I, role: ListenerRole, ctx: Context)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = ctx.cell.load().proxy.client_header_timeout;
    let drain = ctx.drain.clone();
    serve::http1(stream, service(role, ctx), header_timeout, drain).await;
}

/// Serves HTTP/2 from the app on `stream`, within the configured h2 limits.
pub(crate) async fn h2<I>(stream: I, role: ListenerRole, ctx: Context)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = {
        let snapshot = ctx.cell.load();
        H2Limits {
            max_streams: snapshot.proxy.limits.h2_max_streams,
            window: snapshot.proxy.limits.h2_window,
        }
    };
    let drain = ctx.drain.clone();
    serve::h2(stream, service(role, ctx), limits, drain).await;
}

/// Each request to `handle`; a panic there answers 500 `internal`.
fn service(
    role: ListenerRole,
    ctx: Context,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::ProxyBody>,
    Error = std::convert::Infallible,
    Future = impl std::future::Future + Send + 'static,
> + Clone
       + Sync {
    let role = Arc::new(role);
    let metrics = Arc::clone(&ctx.metrics);
    // Shared, so that a request takes one reference, not a copy of each
    // handle (the drain watch alone is two counted references).
    let ctx = Arc::new(ctx);
    let on_panic = move || {
        let e = ProxyError::Internal;
        metrics.error(e.reason());
        e.into_response()
    };
    serve::guarded(
        Arc::clone(&role),
        move |req| {
            let (ctx, role) = (Arc::clone(&ctx), Arc::clone(&role));
            // Boxed: the request future is several KiB, and hyper and the
            // guard move it a few times per request (memcpy of the whole
            // state); a box moves as a pointer, for one allocation.
            Box::pin(async move { super::handle(&ctx, &role, req).await })
        },
        on_panic,
    )
}
