//! The same signatures over HTTP/2: an upstream that picks h2 by ALPN reads
//! the host from `:authority`, and botocore, given the request as such an
//! upstream sees it, accepts spooled and chunk-signed bodies.

use crate::integration::harness::process::BinarySidecar;
use crate::integration::harness::*;

use super::{body, request, verify_with, AK, SK};

fn config(upstream: &Upstream, ca_file: &std::path::Path) -> String {
    let route = |name: &str, payload: &str| {
        format!(
            "[credential.{name}]\ntype = \"aws-sigv4\"\nservice = \"s3\"\nregion = \"us-east-1\"\naccess_key_id = \"{AK}\"\nsecret_access_key = \"{SK}\"\n{payload}\n\
             [[route]]\nname = \"{name}\"\nhosts = [\"{name}.s3.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\ncredential = \"{name}\"\n",
            upstream.https_url(),
            ca_file.display()
        )
    };
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_memory = \"64KiB\"\nspool_dir = \"DIR\"\n{}{}",
        route("signed", ""),
        route("chunks", "payload = \"streaming\"")
    )
}

/// The request as an h2 server reads it: the host is `:authority` (and no
/// Host header rides beside it).
fn as_h2_server_reads(got: &Recorded) -> Recorded {
    assert_eq!(got.version, http::Version::HTTP_2);
    let authority = got.uri.authority().expect(":authority").as_str();
    assert_eq!(got.header("host"), None);
    let mut read = got.clone();
    read.headers
        .insert("host", http::HeaderValue::from_str(authority).unwrap());
    read
}

#[tokio::test]
#[ignore = "interop: needs python3 with botocore; run by .ci/run"]
async fn botocore_accepts_sigv4_received_over_h2() {
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let sidecar = BinarySidecar::start_in(dir, &config(&upstream, &ca_file)).await;

    // Under and over spool_memory, and empty.
    for len in [(64 << 10) - 1, (64 << 10) + 1, 0] {
        let data = body(len);
        let answer = send(
            sidecar.proxy(),
            request(
                "PUT",
                "http://signed.s3.test/dir/my%20file%3Av1~.bin?x-id=PutObject",
                &[("content-type", "application/octet-stream")],
                data.clone(),
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = as_h2_server_reads(&upstream.last());
        assert_eq!(got.body, data);
        verify_with(&got, "s3", "us-east-1", None, false, None);
    }

    // The streaming payload, signed chunk by chunk as it goes out.
    let data = body((150 << 10) + 7);
    let length = data.len().to_string();
    let answer = send(
        sidecar.proxy(),
        request(
            "PUT",
            "http://chunks.s3.test/streamed.bin",
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &length),
            ],
            data.clone(),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = as_h2_server_reads(&upstream.last());
    verify_with(&got, "s3", "us-east-1", None, false, Some(&data));
    assert_eq!(upstream.connections(), 1);
}

/// A route that offers h2 to an upstream that picks http/1.1: the Host the
/// connection writes is the one the signature covers.
#[tokio::test]
#[ignore = "interop: needs python3 with botocore; run by .ci/run"]
async fn botocore_accepts_sigv4_when_the_upstream_declines_h2() {
    let ca = TestCa::new();
    let upstream = Upstream::https_alpn(ca.server_config(), &[b"http/1.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let sidecar = BinarySidecar::start_in(dir, &config(&upstream, &ca_file)).await;
    let data = body(1000);
    let answer = send(
        sidecar.proxy(),
        request(
            "PUT",
            "http://signed.s3.test/k.bin",
            &[("content-type", "application/octet-stream")],
            data.clone(),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.version, http::Version::HTTP_11);
    let authority = format!("localhost:{}", upstream.addr.port());
    assert_eq!(got.header("host"), Some(&*authority));
    verify_with(&got, "s3", "us-east-1", None, false, None);
}
