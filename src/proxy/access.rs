//! The access log line and request metrics. Both are emitted when the
//! response body is done (sent, or abandoned by the app), so the byte counts
//! and duration are final.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::uri::Authority;
use http::Method;
use http_body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ClientBodyError, ProxyBody};
use crate::metrics::{Metrics, RouteMetrics};

/// What one request did, filled in along the request path.
pub struct Access {
    started: Instant,
    /// The route's metric handles (and name), once a route took it.
    pub route: Option<Arc<RouteMetrics>>,
    pub method: Method,
    /// The host the app asked for.
    pub host: String,
    /// Where countersign sent it (`host:port`), if anywhere.
    pub upstream: Option<Authority>,
    /// The credential kind that acted, if any.
    pub credential: &'static str,
    pub status: u16,
    pub error: Option<&'static str>,
    pub bytes_in: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl Access {
    pub fn new(metrics: Arc<Metrics>, method: Method, host: String) -> Self {
        Access {
            started: Instant::now(),
            route: None,
            method,
            host,
            upstream: None,
            credential: "",
            status: 0,
            error: None,
            bytes_in: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// The route's name; empty when no route took the request.
    pub fn route_name(&self) -> &str {
        self.route.as_deref().map_or("", RouteMetrics::name)
    }

    fn finish(&self, bytes_out: u64) {
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let route = self.route.as_deref().unwrap_or(self.metrics.unrouted());
        self.metrics
            .request(route, &self.method, self.status, bytes_in, bytes_out);
        tracing::info!(
            route = %self.route_name(),
            method = %self.method,
            host = %self.host,
            upstream = %self.upstream.as_ref().map_or("", Authority::as_str),
            credential = self.credential,
            status = self.status,
            duration_ms = self.started.elapsed().as_millis() as u64,
            bytes_in,
            bytes_out,
            error = self.error.unwrap_or(""),
            "request"
        );
    }
}

/// The response body on its way to the app; logs the request when dropped.
pub struct LoggedBody {
    inner: ProxyBody,
    bytes: u64,
    access: Access,
}

impl LoggedBody {
    pub fn new(inner: ProxyBody, access: Access) -> Self {
        LoggedBody {
            inner,
            bytes: 0,
            access,
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.access.finish(self.bytes);
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that counts the bytes read from the app, and marks its
/// failures as the app's (`ClientBodyError`).
pub struct CountedBody<B> {
    inner: B,
    counter: Arc<AtomicU64>,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        CountedBody { inner, counter }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ClientBodyError(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
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
