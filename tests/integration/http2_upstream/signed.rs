//! Signed requests over h2: PayPay's HMAC verifies against what arrived,
//! aws-sigv4's spooled and chunk-signed bodies arrive whole, framed by
//! their Content-Length, with the host it signed as `:authority`.

use http::Version;

use super::{start, KEY, SECRET};
use crate::harness::*;

#[tokio::test]
async fn a_paypay_signed_post_over_h2_verifies_as_received() {
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let sidecar = start(&upstream, &ca, "credential = \"paypay\"").await;
    let body = r#"{"merchantPaymentId":"m-1","amount":{"amount":1,"currency":"JPY"}}"#;
    for _ in 0..2 {
        let answer = send(
            sidecar.proxy(),
            post("http://api.test/v2/codes", "application/json", body),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.version, Version::HTTP_2);
        assert_eq!(got.body, body.as_bytes());
        assert_eq!(got.header("content-length"), Some(&*body.len().to_string()));
        verify_opa(&got, KEY, SECRET).unwrap();
    }
    assert_eq!(upstream.connections(), 1);
}

fn sigv4_config(upstream: &Upstream, ca_file: &std::path::Path) -> String {
    let keys = "region = \"us-east-1\"\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"";
    let route = |name: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nhosts = [\"{name}.s3.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\ncredential = \"{name}\"\n",
            upstream.https_url(),
            ca_file.display()
        )
    };
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_dir = \"DIR\"\nspool_memory = \"64KiB\"\n\
         [credential.signed]\ntype = \"aws-sigv4\"\nservice = \"s3\"\n{keys}\n\
         [credential.streaming]\ntype = \"aws-sigv4\"\nservice = \"s3\"\npayload = \"streaming\"\n{keys}\n{}{}",
        route("signed"),
        route("streaming")
    )
}

#[tokio::test]
async fn aws_sigv4_spooled_and_chunk_signed_bodies_arrive_whole_over_h2() {
    use sha2::Digest as _;
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let sidecar = Sidecar::start_in(dir, &sigv4_config(&upstream, &ca_file)).await;

    // Past spool_memory: read from the spool file for the h2 stream.
    let data = "s".repeat(200 << 10);
    let answer = send(
        sidecar.proxy(),
        post(
            "http://signed.s3.test/k.bin",
            "application/octet-stream",
            &data,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.version, Version::HTTP_2);
    assert_eq!(got.body_len, data.len() as u64);
    let sha = format!("{:x}", sha2::Sha256::digest(data.as_bytes()));
    assert_eq!(got.header("x-amz-content-sha256"), Some(&*sha));
    let auth = got.header("authorization").unwrap();
    assert!(
        auth.contains("SignedHeaders=content-length;content-type;host;"),
        "{auth}"
    );
    // The host it signed is the authority the upstream read.
    assert_eq!(got.header("host"), None);
    let authority = format!("localhost:{}", upstream.addr.port());
    assert_eq!(got.uri.authority().map(|a| a.as_str()), Some(&*authority));

    // The streaming payload: signed chunk by chunk as it goes, framed by
    // its Content-Length (no Transfer-Encoding on h2).
    let big = "z".repeat((300 << 10) + 3);
    let answer = send(
        sidecar.proxy(),
        post(
            "http://streaming.s3.test/big.bin",
            "application/octet-stream",
            &big,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.version, Version::HTTP_2);
    let frame = |size: u64| format!("{size:x};chunk-signature=").len() as u64 + 64 + 4 + size;
    let n = big.len() as u64;
    let wire = (n / 65536) * frame(65536) + frame(n % 65536) + frame(0);
    assert_eq!(got.body_len, wire);
    assert_eq!(got.header("content-length"), Some(&*wire.to_string()));
    assert_eq!(got.header("content-encoding"), Some("aws-chunked"));
    assert!(got.body.starts_with(b"10000;chunk-signature="));
    assert_eq!(upstream.connections(), 1);
}
