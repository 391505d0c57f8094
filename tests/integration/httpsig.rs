//! http-signature through the proxy: a signature that covers the body is
//! made over a body spooled once and bounded by max_body (413 past it, and
//! nothing sent); one that does not cover it lets any body stream through
//! unread. (The PyPI package http-message-signatures checks the signatures
//! themselves in tests/interop/httpsig.rs.)

use crate::harness::*;

fn config(upstream: &str) -> String {
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc9421/test-key-ed25519.pem");
    let key = serde_json::to_string(&key.display().to_string()).unwrap();
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"
spool_memory = "64KiB"
max_body = "1MiB"

[credential.body]
type = "http-signature"
algorithm = "ed25519"
private_key_file = {key}
keyid = "k"
components = ["@method", "@path", "content-digest"]
content_digest = "sha-256"

[credential.headers]
type = "http-signature"
algorithm = "ed25519"
private_key_file = {key}
keyid = "k"
components = ["@method", "@path"]

[[route]]
name = "body"
hosts = ["body.sig.test"]
upstream = "{upstream}"
credential = "body"

[[route]]
name = "headers"
hosts = ["headers.sig.test"]
upstream = "{upstream}"
credential = "headers"
"#
    )
}

#[tokio::test]
async fn a_covered_body_is_bounded_by_max_body_an_uncovered_one_streams() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let big = "b".repeat(3 << 20);

    let answer = send(
        sidecar.proxy(),
        post(
            "http://headers.sig.test/big",
            "application/octet-stream",
            &big,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, big.len() as u64);
    assert!(got.header("content-digest").is_none());
    assert!(got
        .header("signature-input")
        .unwrap()
        .starts_with("sig1=(\"@method\" \"@path\");created="));

    let answer = send(
        sidecar.proxy(),
        post("http://body.sig.test/big", "application/octet-stream", &big),
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(upstream.received().len(), 1, "nothing more was sent");

    let small = "s".repeat(100 << 10);
    let answer = send(
        sidecar.proxy(),
        post(
            "http://body.sig.test/small",
            "application/octet-stream",
            &small,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body, small.as_bytes());
    let digest = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(small.as_bytes()))
    };
    assert_eq!(
        got.header("content-digest"),
        Some(format!("sha-256=:{digest}:").as_str())
    );
}
