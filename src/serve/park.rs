//! HTTP/1.1 on a listener's TCP connection, holding no hyper connection
//! while the connection waits for a request: a fresh connection until its
//! first byte, a keep-alive connection between requests. hyper keeps a
//! connection's read and write buffers (8 KiB each) and its state for the
//! connection's whole life; an idle keep-alive connection needs none of it.
//!
//! How a connection is parked: once a response is written and flushed,
//! when hyper asks for the next request's bytes and none has arrived for
//! `PARK_AFTER`, the socket (`Parkable`) reports end of input. hyper then
//! ends the connection as if the app had closed it, except that the socket
//! is not shut down; `into_parts` hands it back, with any bytes hyper had
//! read and not used. The socket then waits to become readable with
//! nothing allocated but this task (about 1.3 KiB) and a small shared
//! state, and its next bytes start a new hyper connection.
//!
//! Not parked: after a request with a body (hyper may still be reading what
//! the handler left of it), and never after CONNECT (the socket becomes a
//! tunnel). The wait for the next request head, parked or not, is
//! `client_header_timeout` from the moment the connection went idle, as it
//! is with hyper alone.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::rewake::Rewake;
use super::{BoxError, H1_READ_BUFFER};
use crate::drain::DrainWatch;

/// How long a keep-alive connection waits for its next request before it
/// is parked. Parking and starting again costs about 9,000 instructions
/// (hyper's connection and buffers are made anew), some 14% of a small
/// proxied request: an app sending on a connection more often than this
/// does not pay it, and at most one park per `PARK_AFTER` per connection
/// costs nothing measurable.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// Serves HTTP/1.1 with keep-alive on `stream` as `super::http1` does
/// (same header timeout, same drain), parking the connection while it
/// waits for a request.
pub async fn http1_parked<S, B>(
    stream: TcpStream,
    service: S,
    header_timeout: Duration,
    drain: DrainWatch,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve(stream, service, header_timeout, drain).await;
}

/// What `serve` did with a connection, for the tests.
#[derive(Debug, Default, PartialEq, Eq)]
struct Served {
    /// hyper connections made for it.
    started: usize,
    /// Times it was parked after a response.
    parks: usize,
}

/// `http1_parked`, saying what it did.
async fn serve<S, B>(
    stream: TcpStream,
    service: S,
    header_timeout: Duration,
    mut drain: DrainWatch,
) -> Served
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let state = Arc::new(Idle::default());
    let tracked = {
        let state = Arc::clone(&state);
        service_fn(move |req: Request<Incoming>| {
            state.request(&req);
            let answer = service.call(req);
            let state = Arc::clone(&state);
            async move {
                let resp = answer.await?;
                Ok::<_, S::Error>(resp.map(|body| Tracked { body, state }))
            }
        })
    };
    let mut service = Some(tracked);
    let mut io = Parkable {
        stream,
        unread: Bytes::new(),
        state: Arc::clone(&state),
        grace: None,
        waiting: false,
        idle_since: None,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_buf_size(H1_READ_BUFFER);
    let mut served = Served::default();
    loop {
        // The request head is due within the header timeout of the moment
        // the connection went idle (or was accepted).
        let deadline = io.idle_since.take().unwrap_or_else(Instant::now) + header_timeout;
        if io.unread.is_empty() {
            // `peek`, not `readable`: tokio reports a new socket readable
            // before any byte has come.
            let mut first = [0u8; 1];
            tokio::select! {
                waited = tokio::time::timeout_at(deadline, io.stream.peek(&mut first)) => match waited {
                    Ok(Ok(0)) => return served,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "client connection ended with an error");
                        return served;
                    }
                    Err(_) => {
                        tracing::debug!(timeout = ?header_timeout, "idle client connection closed: no request within client_header_timeout");
                        return served;
                    }
                },
                _ = drain.draining() => return served,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        builder.header_read_timeout(left.max(Duration::from_millis(1)));
        state.reset();
        let Some(svc) = service.take() else {
            return served;
        };
        served.started += 1;
        // Boxed, so that a parked connection's task holds only a pointer's
        // worth of it.
        // Polled again in place when it wakes itself (`rewake`).
        let mut conn = Rewake::new(Box::new(
            builder
                .serve_connection(TokioIo::new(io), svc)
                .with_upgrades(),
        ));
        let result = tokio::select! {
            result = &mut conn => result,
            _ = drain.draining() => {
                Pin::new(&mut **conn.get_mut()).graceful_shutdown();
                (&mut conn).await
            }
        };
        let parked = state.parked.load(Relaxed);
        match (result, parked) {
            (Ok(()), false) => return served,
            (Err(e), false) => {
                tracing::debug!(error = %e, "client connection ended with an error");
                return served;
            }
            // Parked (hyper saw the end of input we reported); an error
            // then is hyper's for a request head it had only part of, and
            // those bytes come back in `read_buf`.
            (_, true) => match conn.into_inner().into_parts() {
                Some(parts) => {
                    served.parks += 1;
                    io = parts.io.into_inner();
                    // A copy: `read_buf` shares hyper's whole read buffer,
                    // which a parked connection must not keep.
                    io.unread = match parts.read_buf.is_empty() {
                        true => Bytes::new(),
                        false => Bytes::copy_from_slice(&parts.read_buf),
                    };
                    service = Some(parts.service);
                }
                None => return served,
            },
        }
    }
}

/// Where a connection is, as the socket wrapper needs to know it.
#[derive(Default)]
struct Idle {
    /// Responses under way (0 or 1: HTTP/1.1 answers in order).
    inflight: AtomicU8,
    /// The last request lets the connection park once it is answered.
    parkable: AtomicBool,
    /// A response was done with since the connection was (re)started.
    answered: AtomicBool,
    /// A CONNECT came: the socket may become a tunnel; never park.
    never: AtomicBool,
    /// The last response is written and flushed, and it was parkable.
    ready: AtomicBool,
    /// End of input was reported to hyper.
    parked: AtomicBool,
}

impl Idle {
    fn reset(&self) {
        self.answered.store(false, Relaxed);
        self.ready.store(false, Relaxed);
        self.parked.store(false, Relaxed);
    }

    fn request(&self, req: &Request<Incoming>) {
        if req.method() == Method::CONNECT {
            self.never.store(true, Relaxed);
        }
        self.inflight.fetch_add(1, Relaxed);
        self.answered.store(false, Relaxed);
        self.ready.store(false, Relaxed);
        self.parkable.store(req.body().is_end_stream(), Relaxed);
    }

    fn answered(&self) {
        self.inflight.fetch_sub(1, Relaxed);
        self.answered.store(true, Relaxed);
    }

    /// hyper flushes the socket only once its write buffer is empty.
    fn flushed(&self) {
        if self.inflight.load(Relaxed) == 0
            && self.answered.load(Relaxed)
            && self.parkable.load(Relaxed)
            && !self.never.load(Relaxed)
        {
            self.ready.store(true, Relaxed);
        }
    }
}

/// A response body that tells `Idle` when hyper is done with it (dropped:
/// its last bytes are in hyper's write buffer, or the exchange failed).
struct Tracked<B> {
    body: B,
    state: Arc<Idle>,
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.state.answered();
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket, as hyper sees it: bytes hyper had read and handed
/// back come first; an idle read with nothing to read, once the connection
/// may park, is reported as the end of input, and the shutdown that
/// follows is not done.
struct Parkable {
    stream: TcpStream,
    unread: Bytes,
    state: Arc<Idle>,
    /// Runs while the connection waits for its next request; it is parked
    /// when this ends. Made on the first wait, set again on each.
    grace: Option<Pin<Box<Sleep>>>,
    /// `grace` is set for the current wait.
    waiting: bool,
    /// When the current wait began.
    idle_since: Option<Instant>,
}

impl AsyncRead for Parkable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if read.is_ready() || !self.state.ready.load(Relaxed) {
            self.waiting = false;
            return read;
        }
        // Nothing to read, between requests: park once the grace is over.
        let deadline = Instant::now() + PARK_AFTER;
        let this = &mut *self;
        let grace = this
            .grace
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.waiting {
            grace.as_mut().reset(deadline);
            this.waiting = true;
            this.idle_since = Some(Instant::now());
        }
        ready!(grace.as_mut().poll(cx));
        this.waiting = false;
        this.state.parked.store(true, Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Parkable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.ready.store(false, Relaxed);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.ready.store(false, Relaxed);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.state.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.parked.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
