//! `payload = "streaming"` (S3): the body is sent as it arrives, in
//! `aws-chunked` encoding, each 64 KiB chunk signed with the signature of
//! the one before it (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), so a
//! multi-GiB upload starts at once and never needs the whole body first.
//! The request's headers carry the seed signature; `apply` leaves a
//! `ChunkSigning` in the request's extensions and the proxy wraps the body
//! with it. At most one chunk (plus one received frame) is held.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::HeaderValue;
use http_body::{Body, Frame};

use super::{hex, hmac};
use crate::body::{BoxError, ProxyBody};
use crate::creds::CredError;

pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// The size of every chunk but the last; S3 wants at least 8 KiB.
pub const CHUNK: usize = 64 * 1024;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// For the streaming payload: the app's Content-Length becomes
/// `x-amz-decoded-content-length`, the encoded length `Content-Length`,
/// and `aws-chunked` is put first in `Content-Encoding`. Returns the
/// declared length.
pub fn streaming_headers(parts: &mut Parts) -> Result<u64, CredError> {
    use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            CredError::Request(
                "aws-sigv4 with payload = \"streaming\" needs the body's length; send Content-Length".into(),
            )
        })?;
    let encoding = match parts.headers.get(CONTENT_ENCODING) {
        Some(e) => {
            let mut v = b"aws-chunked,".to_vec();
            v.extend_from_slice(e.as_bytes());
            HeaderValue::from_bytes(&v)
                .map_err(|_| CredError::Request("Content-Encoding is not valid".into()))?
        }
        None => HeaderValue::from_static("aws-chunked"),
    };
    parts.headers.insert(CONTENT_ENCODING, encoding);
    parts.headers.insert(
        super::X_AMZ_DECODED_CONTENT_LENGTH,
        HeaderValue::from(declared),
    );
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(encoded_len(declared)));
    Ok(declared)
}

/// The length on the wire of a `decoded`-byte body in `CHUNK`-byte
/// chunks: each `hex(size);chunk-signature=<64 hex>\r\n<data>\r\n`, then
/// the empty final chunk.
pub fn encoded_len(decoded: u64) -> u64 {
    let c = CHUNK as u64;
    let framed = |size: u64| format!("{size:x}").len() as u64 + 17 + 64 + 2 + size + 2;
    let rem = decoded % c;
    (decoded / c) * framed(c) + if rem > 0 { framed(rem) } else { 0 } + framed(0)
}

/// What signing the chunks of one request needs.
#[derive(Clone)]
pub struct ChunkSigning {
    pub(super) key: [u8; 32],
    pub(super) amz_date: String,
    pub(super) scope: String,
    /// The signature of the request's headers.
    pub(super) seed: String,
    /// The body's length as the app declared it.
    pub(super) decoded_len: u64,
}

impl std::fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigning")
            .field("decoded_len", &self.decoded_len)
            .finish_non_exhaustive()
    }
}

impl ChunkSigning {
    pub fn wrap(self, inner: ProxyBody) -> ProxyBody {
        crate::body::boxed(ChunkedBody {
            inner,
            buf: BytesMut::new(),
            prev: self.seed.clone(),
            signing: self,
            seen: 0,
            inner_done: false,
            done: false,
        })
    }

    /// `data` framed and signed after the chunk whose signature is `prev`.
    fn chunk(&self, prev: &str, data: &[u8]) -> (Bytes, String) {
        use sha2::{Digest as _, Sha256};
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            hex(&Sha256::digest(data))
        );
        let sig = hex(&hmac(&self.key, sts.as_bytes()));
        let head = format!("{:x};chunk-signature={sig}\r\n", data.len());
        let mut out = BytesMut::with_capacity(head.len() + data.len() + 2);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        (out.freeze(), sig)
    }
}

struct ChunkedBody {
    inner: ProxyBody,
    buf: BytesMut,
    prev: String,
    signing: ChunkSigning,
    seen: u64,
    inner_done: bool,
    done: bool,
}

impl ChunkedBody {
    fn emit(&mut self, data: &[u8]) -> Frame<Bytes> {
        let (bytes, sig) = self.signing.chunk(&self.prev, data);
        self.prev = sig;
        Frame::data(bytes)
    }
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.buf.len() >= CHUNK {
                let data = this.buf.split_to(CHUNK);
                return Poll::Ready(Some(Ok(this.emit(&data))));
            }
            if this.inner_done {
                if !this.buf.is_empty() {
                    let data = this.buf.split();
                    return Poll::Ready(Some(Ok(this.emit(&data))));
                }
                this.done = true;
                if this.seen != this.signing.decoded_len {
                    return Poll::Ready(Some(Err(length_error(this.seen, &this.signing))));
                }
                return Poll::Ready(Some(Ok(this.emit(&[]))));
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => this.inner_done = true,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => {
                    // Trailers cannot be signed this way; they are dropped.
                    if let Ok(data) = frame.into_data() {
                        this.seen += data.len() as u64;
                        if this.seen > this.signing.decoded_len {
                            this.done = true;
                            return Poll::Ready(Some(Err(length_error(this.seen, &this.signing))));
                        }
                        this.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

fn length_error(seen: u64, signing: &ChunkSigning) -> BoxError {
    Box::new(crate::body::ClientBodyError(
        format!(
            "the request body is not the {} bytes its Content-Length declared (at least {seen})",
            signing.decoded_len
        )
        .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn encoded_lengths() {
        // AWS's example: 66560 bytes in 64 KiB chunks is 66824 on the wire.
        assert_eq!(encoded_len(66560), 66824);
        assert_eq!(encoded_len(0), 86);
        assert_eq!(
            encoded_len(CHUNK as u64),
            5 + 17 + 64 + 4 + CHUNK as u64 + 86
        );
    }

    fn signing(decoded_len: u64) -> ChunkSigning {
        ChunkSigning {
            key: [7; 32],
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
            decoded_len,
        }
    }

    #[tokio::test]
    async fn the_body_is_reframed_into_signed_chunks_of_exact_length() {
        let len = CHUNK * 2 + 1000;
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        // Arrives in odd frame sizes.
        let frames = data.chunks(10_007).map(Bytes::copy_from_slice).collect();
        let inner = crate::body::boxed(Frames(frames));
        let out = signing(len as u64)
            .wrap(inner)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(out.len() as u64, encoded_len(len as u64));
        // Decode and check each signature chains from the seed.
        let s = signing(len as u64);
        let (mut rest, mut prev, mut decoded) = (&out[..], s.seed.clone(), Vec::new());
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let head = std::str::from_utf8(&rest[..line_end]).unwrap();
            let (size, sig) = head.split_once(";chunk-signature=").unwrap();
            let size = usize::from_str_radix(size, 16).unwrap();
            let data = &rest[line_end + 2..line_end + 2 + size];
            let (_, expected) = s.chunk(&prev, data);
            assert_eq!(sig, expected);
            prev = expected;
            decoded.extend_from_slice(data);
            rest = &rest[line_end + 2 + size + 2..];
            if size == 0 {
                break;
            }
            assert!(
                size == CHUNK || rest.starts_with(b"0;"),
                "only the last data chunk is short"
            );
        }
        assert!(rest.is_empty());
        assert_eq!(decoded, data);
    }

    #[tokio::test]
    async fn a_body_that_is_not_its_declared_length_fails() {
        let short = signing(10).wrap(crate::body::full(Bytes::from_static(b"12345")));
        assert!(short.collect().await.is_err());
        let long = signing(3).wrap(crate::body::full(Bytes::from_static(b"12345")));
        assert!(long.collect().await.is_err());
    }

    /// A body that yields the given frames.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }
}
