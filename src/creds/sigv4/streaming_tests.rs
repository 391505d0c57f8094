//! AWS's published example of the streaming payload ("Signature
//! Calculations for the Authorization Header: Transferring Payload in
//! Multiple Chunks", Example: PUT Object): 66560 bytes of `a` put to
//! `/examplebucket/chunkObject.txt` in 64 KiB chunks on 20130524. The
//! seed and the three chunk signatures are AWS's published values, not
//! values recomputed here.

use bytes::Bytes;
use http_body_util::BodyExt;

use super::*;

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNKS: [(usize, &str); 3] = [
    (
        65536,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    ),
    (
        1024,
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    ),
    (
        0,
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ),
];

fn example_credential() -> AwsSigV4 {
    let keys = crate::config::StaticKeys {
        access_key_id: crate::config::Secret::new("AKIAIOSFODNN7EXAMPLE"),
        secret_access_key: crate::config::Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    AwsSigV4 {
        name: "s3".into(),
        config: AwsSigV4Config {
            service: "s3".into(),
            region: "us-east-1".into(),
            keys: AwsKeys::Static(keys),
            payload: AwsPayload::Streaming,
            content_sha256: true,
            algorithm: AwsAlgorithm::SigV4,
        },
        manager: None,
        v4a_keys: v4a::KeyCache::default(),
    }
}

#[tokio::test]
async fn aws_published_streaming_example_seed_and_chunk_signatures() {
    let (mut parts, ()) = http::Request::builder()
        .method("PUT")
        .uri("https://s3.amazonaws.com/examplebucket/chunkObject.txt")
        .header("host", "s3.amazonaws.com")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .header("content-length", "66560")
        .body(())
        .unwrap()
        .into_parts();
    let params = SignParams {
        nonce: None,
        // 2013-05-24T00:00:00Z
        epoch: Some(1_369_353_600),
    };
    example_credential()
        .apply(&mut parts, BodyDigest::Absent, &params)
        .await
        .unwrap();
    let h = &parts.headers;
    assert_eq!(h["content-length"], "66824");
    assert_eq!(h["x-amz-decoded-content-length"], "66560");
    assert_eq!(h["content-encoding"], "aws-chunked");
    assert_eq!(
        h["x-amz-content-sha256"],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    );
    assert_eq!(
        h[AUTHORIZATION],
        format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature={SEED}").as_str()
    );

    let signing = parts.extensions.remove::<ChunkSigning>().unwrap();
    // The app's body arrives in odd frames; the chunks are still 64 KiB.
    let frames = [
        Bytes::from(vec![b'a'; 40_000]),
        Bytes::from(vec![b'a'; 26_560]),
    ];
    let body = crate::body::boxed(Frames(frames.into()));
    let wire = signing.wrap(body).collect().await.unwrap().to_bytes();
    assert_eq!(wire.len(), 66824);
    let mut expected = Vec::new();
    for (size, sig) in CHUNKS {
        expected.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
        expected.extend(std::iter::repeat_n(b'a', size));
        expected.extend_from_slice(b"\r\n");
    }
    assert!(
        wire[..] == expected[..],
        "the chunk framing or a chunk signature differs from AWS's example"
    );
}

/// A body that yields the given frames, one a poll.
struct Frames(std::collections::VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}
