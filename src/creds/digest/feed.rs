//! A request body read through its `BodyHash`: each data frame is fed to
//! the hash as it passes, and the body fails at once (`MemorySpent`) when
//! the hash had to give up the copy of the body a credential signs whole,
//! so that the app is answered then, not after sending the rest.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::BodyHash;
use crate::body::BoxError;

pub struct Hashed<B> {
    body: B,
    hash: BodyHash,
}

impl<B> Hashed<B> {
    pub fn new(body: B, hash: BodyHash) -> Hashed<B> {
        Hashed { body, hash }
    }

    /// The hash, fed with every data frame read so far.
    pub fn into_hash(self) -> BodyHash {
        self.hash
    }
}

impl<B> Body for Hashed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            this.hash.update(data);
            if let Some(spent) = this.hash.spent() {
                return Poll::Ready(Some(Err(Box::new(spent.clone()))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
