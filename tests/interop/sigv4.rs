//! AWS SigV4 as botocore (the AWS SDK for Python, pinned in .ci/run) sees
//! it: requests signed by countersign's `aws-sigv4` reach a recording
//! upstream, and sigv4/verify.py recomputes each signature with botocore
//! from what arrived, as an AWS service would. Bodies cross the spool
//! boundary, S3's single encoding and `UNSIGNED-PAYLOAD` are covered, and
//! one route stacks a static API key before the signature. countersign
//! runs as the compiled binary, as a user runs it.

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::integration::harness::process::BinarySidecar;
use crate::integration::harness::*;

mod over_h2;

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

[credential.key]
type = "header"
headers = {{ "X-Api-Key" = "static-key" }}

[credential.api]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
access_key_id = "{AK}"
secret_access_key = "{SK}"
session_token = "{TOKEN}"

[credential.s3]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
access_key_id = "{AK}"
secret_access_key = "{SK}"

[credential.s3-unsigned]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
access_key_id = "{AK}"
secret_access_key = "{SK}"
payload = "unsigned"

[[route]]
name = "api"
hosts = ["api.aws.test"]
upstream = "{upstream}"
credential = ["key", "api"]

[[route]]
name = "s3"
hosts = ["bucket.s3.test"]
upstream = "{upstream}"
credential = "s3"

[credential.s3-streaming]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
access_key_id = "{AK}"
secret_access_key = "{SK}"
payload = "streaming"

[[route]]
name = "s3-streaming"
hosts = ["chunks.s3.test"]
upstream = "{upstream}"
credential = "s3-streaming"

[[route]]
name = "s3-unsigned"
hosts = ["stream.s3.test"]
upstream = "{upstream}"
credential = "s3-unsigned"
"#
    )
}

/// botocore's verdict on `got`, signed for `service`/`region`.
fn verify(got: &Recorded, service: &str, region: &str, token: Option<&str>, unsigned: bool) {
    verify_with(got, service, region, token, unsigned, None);
}

/// As `verify`; `streamed` is the body the app sent when the route signs
/// it chunk by chunk.
fn verify_with(
    got: &Recorded,
    service: &str,
    region: &str,
    token: Option<&str>,
    unsigned: bool,
    streamed: Option<&[u8]>,
) {
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
        "region": region,
        "unsigned": unsigned,
        "streaming": streamed.is_some(),
        "decoded": base64::engine::general_purpose::STANDARD.encode(streamed.unwrap_or_default()),
    });
    let verdict = crate::verifier::run(
        "python3",
        "tests/interop/sigv4/verify.py",
        &input,
        "is botocore installed? .ci/run installs it",
    );
    assert_eq!(verdict["ok"], true, "botocore: {}", verdict["why"]);
}

pub(crate) fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.body(Full::new(Bytes::from(body))).unwrap()
}

/// PUTs to `url` with bodies just under and over the 64 KiB `spool_memory`
/// of the tests' configs, and an empty one; `verify` checks each as the
/// upstream got it.
pub(crate) async fn puts_around_spool_memory(
    sidecar: &BinarySidecar,
    upstream: &Upstream,
    url: &str,
    verify: impl Fn(&Recorded),
) {
    for len in [(64 << 10) - 1, (64 << 10) + 1, 0] {
        let data = body(len);
        let headers = [("content-type", "application/octet-stream")];
        let answer = send(sidecar.proxy(), request("PUT", url, &headers, data.clone())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.body, data);
        verify(&got);
    }
}

/// A body of `len` bytes that is not all one byte.
pub(crate) fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
#[ignore = "interop: needs python3 with botocore; run by .ci/run"]
async fn botocore_accepts_what_aws_sigv4_signs() {
    let upstream = Upstream::http().await;
    let sidecar = BinarySidecar::start(&config(&upstream.http_url())).await;

    // A stacked API key, then SigV4 with a session token over a JSON body
    // past spool_memory (on disk), a path that needs double encoding, an
    // unsorted query, and a header with runs of spaces.
    let json = format!("{{\"data\":\"{}\"}}", "x".repeat(200 << 10));
    let answer = send(
        sidecar.proxy(),
        request(
            "POST",
            "http://api.aws.test/prod/items/a%20b//c?b=2&a=1&a=0&empty=",
            &[
                ("content-type", "application/json"),
                ("x-trace", "  one   two  "),
            ],
            json.clone().into_bytes(),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body, json.as_bytes());
    assert_eq!(got.header("x-api-key"), Some("static-key"));
    let auth = got.header("authorization").unwrap();
    assert!(auth.contains("x-api-key"), "the key is signed: {auth}");
    verify(&got, "execute-api", "eu-west-1", Some(TOKEN), false);

    // A GET with no body.
    send(
        sidecar.proxy(),
        request(
            "GET",
            "http://api.aws.test/prod/items?limit=10",
            &[],
            vec![],
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

    // S3: a PUT whose key has a space, a colon and a tilde.
    let object = "http://bucket.s3.test/dir/my%20file%3Av1~.bin?x-id=PutObject";
    puts_around_spool_memory(&sidecar, &upstream, object, |got| {
        verify(got, "s3", "us-east-1", None, false)
    })
    .await;

    // S3 with UNSIGNED-PAYLOAD: the body streams through unhashed.
    let data = body(300 << 10);
    send(
        sidecar.proxy(),
        request("PUT", "http://stream.s3.test/big.bin", &[], data.clone()),
    )
    .await;
    let got = upstream.last();
    assert_eq!(got.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    assert_eq!(got.body, data);
    verify(&got, "s3", "us-east-1", None, true);

    // S3 with the streaming payload: the body arrives in aws-chunked
    // chunks, each signed after the one before; the seed signature is
    // botocore's to check, the chain verify.py's (from AWS's description).
    // (An empty body needs an explicit Content-Length: 0, as SDKs send.)
    for len in [(150 << 10) + 7, 0] {
        let data = body(len);
        let length = len.to_string();
        let answer = send(
            sidecar.proxy(),
            request(
                "PUT",
                "http://chunks.s3.test/streamed%20object.bin",
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-length", &length),
                ],
                data.clone(),
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(
            got.header("x-amz-content-sha256"),
            Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        );
        verify_with(&got, "s3", "us-east-1", None, false, Some(&data));
    }

    // The control: botocore refuses a request whose body was changed.
    let mut tampered = upstream.received()[0].clone();
    tampered.body[10] ^= 1;
    let refused = std::panic::catch_unwind(|| {
        verify(&tampered, "execute-api", "eu-west-1", Some(TOKEN), false)
    });
    assert!(refused.is_err(), "botocore accepted a changed body");
}
