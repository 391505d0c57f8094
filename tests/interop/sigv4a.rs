//! SigV4A as the AWS Common Runtime sees it: requests signed by
//! countersign's `aws-sigv4` with `algorithm = "sigv4a"` reach a recording
//! upstream, and sigv4/verify_v4a.py has awscrt sign the same request (the
//! same scope and signed headers) and checks countersign's ECDSA signature
//! with the public key that awscrt's own signature verifies with.

use base64::Engine as _;

use crate::integration::harness::process::BinarySidecar;
use crate::integration::harness::*;
use crate::sigv4::{body, puts_around_spool_memory, request};

const AK: &str = "AKIDEXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE//session+token=";

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_memory = "64KiB"
spool_dir = "DIR"

[credential.mrap]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
algorithm = "sigv4a"
region_set = "*"
access_key_id = "{AK}"
secret_access_key = "{SK}"

[credential.mrap-unsigned]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
algorithm = "sigv4a"
region_set = ["us-east-1", "eu-west-1"]
payload = "unsigned"
access_key_id = "{AK}"
secret_access_key = "{SK}"

[credential.api]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
algorithm = "sigv4a"
access_key_id = "{AK}"
secret_access_key = "{SK}"
session_token = "{TOKEN}"

[[route]]
name = "mrap"
hosts = ["mrap.accesspoint.s3-global.test"]
upstream = "{upstream}"
credential = "mrap"

[[route]]
name = "mrap-unsigned"
hosts = ["stream.accesspoint.s3-global.test"]
upstream = "{upstream}"
credential = "mrap-unsigned"

[[route]]
name = "api"
hosts = ["api.aws.test"]
upstream = "{upstream}"
credential = "api"
"#
    )
}

/// The verdict of awscrt and `cryptography` on `got`.
fn verify(got: &Recorded, service: &str, region_set: &str, token: Option<&str>, unsigned: bool) {
    let target = got
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let headers: Vec<(String, String)> = got
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let input = serde_json::json!({
        "method": got.method.as_str(),
        "target": target,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&got.body),
        "access_key_id": AK,
        "secret_access_key": SK,
        "session_token": token,
        "service": service,
        "region_set": region_set,
        "unsigned": unsigned,
    });
    let verdict = crate::verifier::run(
        "python3",
        "tests/interop/sigv4/verify_v4a.py",
        &input,
        "are botocore and awscrt installed? .ci/run installs them",
    );
    assert_eq!(verdict["ok"], true, "awscrt: {}", verdict["why"]);
}

#[tokio::test]
#[ignore = "interop: needs python3 with botocore and awscrt; run by .ci/run"]
async fn awscrt_accepts_what_sigv4a_signs() {
    let upstream = Upstream::http().await;
    let sidecar = BinarySidecar::start(&config(&upstream.http_url())).await;

    // S3 through a Multi-Region Access Point, any region: a key with a
    // space and a colon.
    let object = "http://mrap.accesspoint.s3-global.test/dir/my%20file%3Av1.bin?x-id=PutObject";
    puts_around_spool_memory(&sidecar, &upstream, object, |got| {
        verify(got, "s3", "*", None, false)
    })
    .await;

    // UNSIGNED-PAYLOAD for two regions.
    let data = body(300 << 10);
    send(
        sidecar.proxy(),
        request(
            "PUT",
            "http://stream.accesspoint.s3-global.test/big.bin",
            &[],
            data.clone(),
        ),
    )
    .await;
    let got = upstream.last();
    assert_eq!(got.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    verify(&got, "s3", "us-east-1,eu-west-1", None, true);

    // Another service: double encoding, an unsorted query, a session
    // token, a header with runs of spaces; the region set is the region.
    send(
        sidecar.proxy(),
        request(
            "POST",
            "http://api.aws.test/prod/items/a%20b?b=2&a=1",
            &[
                ("content-type", "application/json"),
                ("x-trace", "  one   two  "),
            ],
            b"{\"a\":1}".to_vec(),
        ),
    )
    .await;
    verify(
        &upstream.last(),
        "execute-api",
        "eu-west-1",
        Some(TOKEN),
        false,
    );

    // The control: a changed body no longer verifies.
    let mut tampered = upstream.last();
    tampered.body[2] ^= 1;
    let refused = std::panic::catch_unwind(|| {
        verify(&tampered, "execute-api", "eu-west-1", Some(TOKEN), false)
    });
    assert!(refused.is_err(), "a changed body verified");
}
