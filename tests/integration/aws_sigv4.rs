//! aws-sigv4 through the proxy: a signed payload is spooled and bounded
//! by max_body like PayPay's, an `UNSIGNED-PAYLOAD` route streams a body
//! of any size unread; temporary keys sign SigV4A with the key derived
//! from them. (botocore and awscrt check the signatures themselves in
//! tests/interop/sigv4.rs and sigv4a.rs.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::handler_server::{form_decode, serve};
use crate::harness::*;

fn config(upstream: &str) -> String {
    let keys = "region = \"us-east-1\"\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"";
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"
spool_memory = "64KiB"
max_body = "1MiB"

[credential.signed]
type = "aws-sigv4"
service = "s3"
{keys}

[credential.unsigned]
type = "aws-sigv4"
service = "s3"
payload = "unsigned"
{keys}

[[route]]
name = "signed"
hosts = ["signed.s3.test"]
upstream = "{upstream}"
credential = "signed"

[credential.streaming]
type = "aws-sigv4"
service = "s3"
payload = "streaming"
{keys}

[[route]]
name = "streaming"
hosts = ["streaming.s3.test"]
upstream = "{upstream}"
credential = "streaming"

[[route]]
name = "unsigned"
hosts = ["unsigned.s3.test"]
upstream = "{upstream}"
credential = "unsigned"
"#
    )
}

#[tokio::test]
async fn unsigned_payload_streams_past_max_body_and_a_signed_one_is_bounded() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let big = "b".repeat(3 << 20);

    let answer = send(
        sidecar.proxy(),
        post(
            "http://unsigned.s3.test/big.bin",
            "application/octet-stream",
            &big,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, big.len() as u64);
    assert_eq!(got.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    let auth = got.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/us-east-1/s3/aws4_request, SignedHeaders=")
            && auth.contains("x-amz-content-sha256;x-amz-date, Signature="),
        "{auth}"
    );

    let answer = send(
        sidecar.proxy(),
        post(
            "http://signed.s3.test/big.bin",
            "application/octet-stream",
            &big,
        ),
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(
        upstream.received().len(),
        1,
        "nothing more reached the upstream"
    );

    let small = "s".repeat(100 << 10);
    let answer = send(
        sidecar.proxy(),
        post(
            "http://signed.s3.test/small.bin",
            "application/octet-stream",
            &small,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body, small.as_bytes());
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(small.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(got.header("x-amz-content-sha256"), Some(sha.as_str()));
}

/// A stand-in for STS: answers AssumeRoleWithWebIdentity with fixed
/// temporary keys valid for an hour (or, when `refuse`, with STS's error
/// for a bad token), and keeps every form it received.
async fn fake_sts(
    refuse: bool,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<HashMap<String, String>>>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let addr = serve(None, move |req: Request<Incoming>| {
        let log = Arc::clone(&log);
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            log.lock()
                .unwrap()
                .push(form_decode(&String::from_utf8_lossy(&body)));
            if refuse {
                let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>claims: sub=system:serviceaccount:x</Message></Error></ErrorResponse>";
                return Response::builder().status(400).body(Full::new(Bytes::from(xml))).unwrap();
            }
            let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
            let expires = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                expires.year(),
                u8::from(expires.month()),
                expires.day(),
                expires.hour(),
                expires.minute(),
                expires.second()
            );
            let xml = format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                 <SessionToken>{TEMP_TOKEN}</SessionToken><SecretAccessKey>{TEMP_SECRET}</SecretAccessKey>\
                 <Expiration>{expires}</Expiration><AccessKeyId>{TEMP_ID}</AccessKeyId>\
                 </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            );
            Response::new(Full::new(Bytes::from(xml)))
        }
    })
    .await;
    (addr, seen)
}

const TEMP_ID: &str = "ASIATEMPEXAMPLE1";
const TEMP_SECRET: &str = "temp/Secret+Key1";
const TEMP_TOKEN: &str = "IQoJb3JpZ2luX2Vj/temp+session=";
const ROLE: &str = "arn:aws:iam::123456789012:role/app";

fn web_identity_config(upstream: &str, sts: std::net::SocketAddr) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.irsa]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
keys = "web-identity"
role_arn = "{ROLE}"
web_identity_token_file = "DIR/token"
sts_url = "http://{sts}/"

[[route]]
name = "api"
hosts = ["api.aws.test"]
upstream = "{upstream}"
credential = "irsa"
"#
    )
}

#[tokio::test]
async fn web_identity_keys_come_from_sts_and_sign_requests() {
    let upstream = Upstream::http().await;
    let (sts, forms) = fake_sts(false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "eyJhbGciOi.projected.token\n").unwrap();
    let sidecar = Sidecar::start_in(dir, &web_identity_config(&upstream.http_url(), sts)).await;
    let answer = send(
        sidecar.proxy(),
        get("http://api.aws.test/prod/items?b=1&a=2"),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.header("x-amz-security-token"), Some(TEMP_TOKEN));
    let auth = got.header("authorization").unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={TEMP_ID}/"))
            && auth.contains("/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="),
        "{auth}"
    );
    let again = send(sidecar.proxy(), get("http://api.aws.test/prod/other")).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        upstream.last().header("x-amz-security-token"),
        Some(TEMP_TOKEN)
    );
    let forms = forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "one exchange for both requests: {forms:?}");
    let form = &forms[0];
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["Version"], "2011-06-15");
    assert_eq!(form["RoleArn"], ROLE);
    assert_eq!(form["RoleSessionName"], "countersign");
    assert_eq!(form["WebIdentityToken"], "eyJhbGciOi.projected.token");
}

#[tokio::test]
async fn a_refused_web_identity_gives_503_token_unavailable_naming_stss_code() {
    let upstream = Upstream::http().await;
    let (sts, _) = fake_sts(true).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "bad.token").unwrap();
    let sidecar = Sidecar::start_in(dir, &web_identity_config(&upstream.http_url(), sts)).await;
    let answer = send(sidecar.proxy(), get("http://api.aws.test/prod/items")).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("token-unavailable")
    );
    assert!(
        answer.body.contains("InvalidIdentityToken"),
        "{}",
        answer.body
    );
    assert!(
        !answer.body.contains("serviceaccount"),
        "STS's message is not quoted: {}",
        answer.body
    );
    assert!(upstream.received().is_empty());
}

/// A stand-in for the EKS Pod Identity agent: answers a GET that carries
/// the expected authorization token with temporary keys for an hour, and
/// 401 otherwise; counts the requests it answered with keys.
async fn fake_pod_identity(token: &'static str) -> (std::net::SocketAddr, Arc<Mutex<usize>>) {
    let served = Arc::new(Mutex::new(0usize));
    let count = Arc::clone(&served);
    let addr = serve(None, move |req: Request<Incoming>| {
        let count = Arc::clone(&count);
        async move {
            let authorized = req.method() == http::Method::GET
                && req.uri().path() == "/v1/credentials"
                && req
                    .headers()
                    .get("authorization")
                    .is_some_and(|v| v == token);
            if !authorized {
                return Response::builder()
                    .status(401)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            *count.lock().unwrap() += 1;
            let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
            let json = serde_json::json!({
                "AccessKeyId": TEMP_ID,
                "SecretAccessKey": TEMP_SECRET,
                "Token": TEMP_TOKEN,
                "AccountId": "123456789012",
                "Expiration": format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    expires.year(),
                    u8::from(expires.month()),
                    expires.day(),
                    expires.hour(),
                    expires.minute(),
                    expires.second()
                ),
            });
            Response::new(Full::new(Bytes::from(json.to_string())))
        }
    })
    .await;
    (addr, served)
}

#[tokio::test]
async fn container_endpoint_keys_sign_requests() {
    let upstream = Upstream::http().await;
    let (agent, served) = fake_pod_identity("pod-identity-token").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "pod-identity-token\n").unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.pod]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
keys = "container"
container_url = "http://{agent}/v1/credentials"
container_token_file = "DIR/token"

[[route]]
name = "s3"
hosts = ["bucket.s3.test"]
upstream = "{}"
credential = "pod"
"#,
        upstream.http_url()
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    for _ in 0..2 {
        let answer = send(
            sidecar.proxy(),
            post("http://bucket.s3.test/k.txt", "text/plain", "hello"),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.header("x-amz-security-token"), Some(TEMP_TOKEN));
        let auth = got.header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential={TEMP_ID}/"
            )) && auth.contains("/us-east-1/s3/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="),
            "{auth}"
        );
    }
    assert_eq!(
        *served.lock().unwrap(),
        1,
        "one key fetch for both requests"
    );
}

/// The wire length of `n` bytes in aws-chunked 64 KiB chunks, worked out
/// here from AWS's description (not countersign's function): each chunk
/// `hex(size);chunk-signature=<64 hex>\r\n<data>\r\n`, then a final
/// empty one.
fn aws_chunked_len(n: u64) -> u64 {
    let frame = |size: u64| format!("{size:x};chunk-signature=").len() as u64 + 64 + 2 + size + 2;
    let full = n / 65536;
    let rest = n % 65536;
    full * frame(65536) + if rest > 0 { frame(rest) } else { 0 } + frame(0)
}

#[tokio::test]
async fn a_streaming_payload_goes_out_in_signed_chunks_past_max_body() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    // 8 MiB + 5 against max_body = 1MiB: nothing is spooled.
    let big = "z".repeat((8 << 20) + 5);
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
    let wire = aws_chunked_len(big.len() as u64);
    assert_eq!(got.body_len, wire);
    assert_eq!(got.header("content-length"), Some(&*wire.to_string()));
    assert_eq!(
        got.header("x-amz-decoded-content-length"),
        Some(&*big.len().to_string())
    );
    assert_eq!(got.header("content-encoding"), Some("aws-chunked"));
    assert_eq!(
        got.header("x-amz-content-sha256"),
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    );
    assert!(
        got.body.starts_with(b"10000;chunk-signature="),
        "{:?}",
        &got.body[..40]
    );
    let auth = got.header("authorization").unwrap();
    assert!(
        auth.contains("SignedHeaders=content-encoding;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length,"),
        "{auth}"
    );

    // A body of unknown length cannot be framed: refused before any of it
    // is read, naming the fix.
    let (tx, body) = channel_body();
    let req = http::Request::put("http://streaming.s3.test/unknown.bin")
        .body(body)
        .unwrap();
    drop(tx);
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("unsignable-request")
    );
    assert!(
        answer.body.contains("send Content-Length"),
        "{}",
        answer.body
    );
}

/// SigV4A with keys from STS: the temporary keys' own ECDSA key signs
/// (derived from them, not from anything static) over the headers as
/// they reached the upstream.
#[tokio::test]
async fn web_identity_keys_sign_sigv4a_with_the_key_derived_from_them() {
    use p256::ecdsa::signature::Verifier as _;
    use sha2::Digest as _;
    let upstream = Upstream::http().await;
    let (sts, forms) = fake_sts(false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "eyJhbGciOi.projected.token\n").unwrap();
    let config = web_identity_config(&upstream.http_url(), sts).replace(
        "keys = \"web-identity\"",
        "keys = \"web-identity\"\nalgorithm = \"sigv4a\"\nregion_set = [\"eu-west-1\", \"eu-central-1\"]",
    );
    let sidecar = Sidecar::start_in(dir, &config).await;
    for path in ["/prod/items", "/prod/other"] {
        let answer = send(sidecar.proxy(), get(&format!("http://api.aws.test{path}"))).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        let date = got.header("x-amz-date").unwrap();
        assert_eq!(
            got.header("x-amz-region-set"),
            Some("eu-west-1,eu-central-1")
        );
        assert_eq!(got.header("x-amz-security-token"), Some(TEMP_TOKEN));
        let auth = got.header("authorization").unwrap();
        let prefix = format!(
            "AWS4-ECDSA-P256-SHA256 Credential={TEMP_ID}/{}/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set;x-amz-security-token, Signature=",
            &date[..8]
        );
        let signature = auth.strip_prefix(&prefix).expect(auth);
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let canonical = format!(
            "GET\n{path}\n\nhost:{}\nx-amz-date:{date}\nx-amz-region-set:eu-west-1,eu-central-1\nx-amz-security-token:{TEMP_TOKEN}\n\nhost;x-amz-date;x-amz-region-set;x-amz-security-token\n{}",
            got.header("host").unwrap(),
            hex(&sha2::Sha256::digest(b""))
        );
        let string_to_sign = format!(
            "AWS4-ECDSA-P256-SHA256\n{date}\n{}/execute-api/aws4_request\n{}",
            &date[..8],
            hex(&sha2::Sha256::digest(canonical.as_bytes()))
        );
        let der: Vec<u8> = (0..signature.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
            .collect();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let key = countersign::creds::sigv4::v4a::derive_key(TEMP_ID, TEMP_SECRET).unwrap();
        assert!(
            key.verifying_key()
                .verify(string_to_sign.as_bytes(), &sig)
                .is_ok(),
            "{:?} {canonical}",
            got.headers
        );
    }
    assert_eq!(forms.lock().unwrap().len(), 1, "one exchange for both");
}
