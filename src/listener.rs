//! Accept loops. Each listener has a role (the forward proxy, a route's
//! reverse listener, an admin listener) and hands every connection it
//! accepts to the `Serve` it was given, which says what answers it (that is
//! decided where the app is assembled). Each listener serves at most
//! `max_connections` at once (`slots`); accept failures back off and are
//! logged at most once a second (`throttle`), and those for want of a file
//! descriptor count as `limit="descriptors"` rejections.

mod slots;
mod throttle;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::drain::DrainWatch;
use crate::metrics::Metrics;
use crate::snapshot::{ListenerRole, SnapshotCell};
pub(crate) use slots::Slot;
use slots::Slots;
use throttle::{Backoff, LogThrottle};

/// Connections the kernel holds for a listener that has not accepted them
/// (past `max_connections`, they wait here); capped by `net.core.somaxconn`.
/// tokio's default is 128.
const ACCEPT_BACKLOG: u32 = 1024;
/// Serves one accepted connection to its end. It is given the connection's
/// place in the listener's `max_connections`, to hold for as long as the
/// connection (or a tunnel it becomes) lives.
pub(crate) type Serve =
    Arc<dyn Fn(TcpStream, Slot) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What an accept loop needs besides its socket.
pub(crate) struct Accept {
    /// Read for `max_connections`, which a reload may change.
    pub cell: SnapshotCell,
    pub metrics: Arc<Metrics>,
    /// Stops the loop on shutdown.
    pub drain: DrainWatch,
    pub serve: Serve,
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
    pub(crate) fn spawn(
        role: ListenerRole,
        configured: SocketAddr,
        tcp: TcpListener,
        accept: Accept,
    ) -> Listener {
        let local = tcp.local_addr().unwrap_or(configured);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(tcp, role, accept, stopped));
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
    ctx: Accept,
    mut stopped: watch::Receiver<bool>,
) {
    let mut draining = ctx.drain.clone();
    let kind = role.kind();
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
                let (metrics, serve) = (Arc::clone(&ctx.metrics), (ctx.serve)(stream, slot));
                tokio::spawn(async move {
                    metrics.connection(kind, 1);
                    serve.await;
                    metrics.connection(kind, -1);
                });
            }
            Err(e) => {
                // Usually EMFILE: wait (longer each time) for descriptors to
                // be freed instead of spinning, and say so once a second.
                drop(slot);
                if out_of_descriptors(&e) {
                    ctx.metrics.limit_rejected("descriptors");
                }
                if let Some(suppressed) = failures.allow(Instant::now()) {
                    tracing::warn!(%role, error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    tracing::info!(%role, "stopped listening");
}

/// EMFILE (the process's file-descriptor limit) or ENFILE (the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}
