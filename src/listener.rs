//! Accept loops. Each listener has a role (the forward proxy, or one route's
//! reverse listener) and serves HTTP/1.1 with keep-alive; every request loads
//! the snapshot current at its start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy;
use crate::snapshot::{ListenerRole, Snapshot, SnapshotCell};

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
        let tcp = TcpListener::bind(configured).await?;
        let local = tcp.local_addr()?;
        tracing::info!(%role, %local, "listening");
        Ok((tcp, local))
    }

    /// Starts serving an already-bound socket.
    pub fn spawn(
        role: ListenerRole,
        configured: SocketAddr,
        tcp: TcpListener,
        cell: Arc<ArcSwap<Snapshot>>,
    ) -> Listener {
        let local = tcp.local_addr().unwrap_or(configured);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(tcp, role, cell, stopped));
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
    cell: Arc<ArcSwap<Snapshot>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, role.clone(), Arc::clone(&cell)));
            }
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning.
                tracing::warn!(%role, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(%role, "stopped listening");
}

/// Serves HTTP/1.1 on one connection: a TCP stream from an accept loop, or
/// the TLS stream inside an intercepted CONNECT tunnel.
pub async fn serve_connection<I>(stream: I, role: ListenerRole, cell: SnapshotCell)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = cell.load().proxy.client_header_timeout;
    let role = Arc::new(role);
    let service = service_fn(move |req| {
        let cell = Arc::clone(&cell);
        let role = Arc::clone(&role);
        async move { Ok::<_, Infallible>(proxy::handle(cell, &role, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}
