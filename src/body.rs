//! Body types on the request path. Bodies stream by default; a credential
//! that signs the body has it spooled (`spool`) through its hash first.

pub mod budget;
mod buffer;
pub mod deadline;
mod file;
mod offload;
pub mod spool;
mod writer;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};

pub use budget::{Budget, Share, SpoolHold, SpoolUsage};
pub use deadline::{BodyTimeout, BodyWait, DeadlineBody};
pub use spool::{spool, Observer, SpoolError, SpoolLimits, Spooled};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type the proxy sends and returns.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A failure of the app's request body (a malformed chunk, a connection
/// gone mid-body), marked so that wherever it surfaces, even from inside
/// the upstream client, it is answered as the app's fault.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ClientBodyError(pub BoxError);

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Any hyper-compatible body, boxed with its error erased.
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// Keeps `guard` alive exactly as long as the body.
pub fn with_guard<G: Send + Sync + Unpin + 'static>(body: ProxyBody, guard: G) -> ProxyBody {
    boxed(Guarded {
        body,
        _guard: guard,
    })
}

struct Guarded<G> {
    body: ProxyBody,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
