//! aws-sigv4 through the proxy: a signed payload is spooled and bounded
//! by max_body like PayPay's, an `UNSIGNED-PAYLOAD` route streams a body
//! of any size unread. (botocore checks the signatures themselves in
//! tests/interop/sigv4.rs.)

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
