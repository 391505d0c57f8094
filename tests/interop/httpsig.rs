//! RFC 9421 HTTP Message Signatures as the PyPI package
//! `http-message-signatures` (pinned in .ci/run) sees them: the compiled
//! countersign binary signs requests with each algorithm of its
//! `http-signature` credential, a recording upstream takes them, and
//! httpsig/verify.py recomputes each signature base from what arrived and
//! verifies the signature and the signed Content-Digest against the body,
//! as a receiving API would. Bodies cross the spool boundary; one route
//! stacks a bearer token under the signature, which covers it. Query
//! parameters are signed one by one (`@query-param`) with names and
//! values that need decoding and encoding again.

mod binary;
mod over_h2;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::integration::harness::*;
use binary::Binary;
const HMAC_SECRET: &str = "dGhpcyBpcyBhIHNoYXJlZCBzZWNyZXQgZm9yIHRlc3RzIG9ubHkh";

fn key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn rfc_key(name: &str) -> PathBuf {
    key(&format!("tests/rfc9421/{name}"))
}

fn rsa_key() -> PathBuf {
    key("tests/integration/oauth2/test-rsa-key.pem")
}

/// One route per algorithm (host `NAME.sig.test`, `_` as `-`), each with its own
/// parameters, and `stacked.sig.test` with a bearer token first.
fn config(upstream: &str, dir: &Path) -> String {
    let common = r#"components = ["@method", "@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target", '@query-param;name="b"', '@query-param;name="sp%20ace"', "content-type", "x-multi", "content-digest"]"#;
    let file = |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap();
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_memory = "64KiB"
spool_dir = {dir}

[credential.hmac]
type = "http-signature"
algorithm = "hmac-sha256"
secret = "{HMAC_SECRET}"
secret_encoding = "base64"
keyid = "hmac-key"
content_digest = "sha-256"
{common}

[credential.ed25519]
type = "http-signature"
algorithm = "ed25519"
private_key_file = {ed}
keyid = "test-key-ed25519"
label = "partner"
content_digest = "sha-512"
nonce = true
{common}

[credential.ecdsa]
type = "http-signature"
algorithm = "ecdsa-p256-sha256"
private_key_file = {ec}
keyid = "test-key-ecc-p256"
content_digest = "sha-256"
expires = "5m"
{common}

[credential.rsa-pss]
type = "http-signature"
algorithm = "rsa-pss-sha512"
private_key_file = {pss}
keyid = "test-key-rsa-pss"
content_digest = "sha-512"
tag = "countersign-interop"
alg = true
{common}

[credential.rsa-v1_5]
type = "http-signature"
algorithm = "rsa-v1_5-sha256"
private_key_file = {rsa}
keyid = "rsa-1"
content_digest = "sha-256"
alg = true
nonce = true
{common}

[credential.bearer]
type = "header"
bearer = "stacked-token"

[credential.over-bearer]
type = "http-signature"
algorithm = "ed25519"
private_key_file = {ed}
keyid = "test-key-ed25519"
content_digest = "sha-256"
components = ["@method", "@target-uri", "authorization", "content-length", "content-digest"]

[[route]]
name = "stacked"
hosts = ["stacked.sig.test"]
upstream = "{upstream}"
credential = ["bearer", "over-bearer"]
{routes}"#,
        dir = file(dir.to_path_buf()),
        ed = file(rfc_key("test-key-ed25519.pem")),
        ec = file(rfc_key("test-key-ecc-p256.pem")),
        pss = file(rfc_key("test-key-rsa-pss.pem")),
        rsa = file(rsa_key()),
        routes = ALGORITHMS
            .iter()
            .map(|a| format!(
                "\n[[route]]\nname = \"{a}\"\nhosts = [\"{}.sig.test\"]\nupstream = \"{upstream}\"\ncredential = \"{a}\"\n",
                a.replace('_', "-")
            ))
            .collect::<String>(),
    )
}

/// Credential names, each also the route's and the host's first label.
const ALGORITHMS: [&str; 5] = ["hmac", "ed25519", "ecdsa", "rsa-pss", "rsa-v1_5"];

fn algorithm(credential: &str) -> &'static str {
    match credential {
        "hmac" => "hmac-sha256",
        "ed25519" | "over-bearer" => "ed25519",
        "ecdsa" => "ecdsa-p256-sha256",
        "rsa-pss" => "rsa-pss-sha512",
        "rsa-v1_5" => "rsa-v1_5-sha256",
        other => panic!("no credential {other}"),
    }
}

/// What verify.py says of `got`, signed by `credential`.
fn verify(got: &Recorded, credential: &str, require: &[&str]) -> serde_json::Value {
    let host = got.header("host").unwrap();
    let target = got
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    verify_at(got, &format!("http://{host}{target}"), credential, require)
}

/// As `verify`, for `got` received as `url`.
fn verify_at(got: &Recorded, url: &str, credential: &str, require: &[&str]) -> serde_json::Value {
    let headers: Vec<(String, String)> = got
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let alg = algorithm(credential);
    let private_key_file = match credential {
        "ed25519" | "over-bearer" => rfc_key("test-key-ed25519.pem"),
        "ecdsa" => rfc_key("test-key-ecc-p256.pem"),
        "rsa-pss" => rfc_key("test-key-rsa-pss.pem"),
        _ => rsa_key(),
    };
    let keyid = match credential {
        "hmac" => "hmac-key",
        "ed25519" | "over-bearer" => "test-key-ed25519",
        "ecdsa" => "test-key-ecc-p256",
        "rsa-pss" => "test-key-rsa-pss",
        _ => "rsa-1",
    };
    let input = serde_json::json!({
        "method": got.method.as_str(),
        "url": url,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&got.body),
        "algorithm": alg,
        "secret": HMAC_SECRET,
        "private_key_file": private_key_file.display().to_string(),
        "keyid": keyid,
        "tag": (credential == "rsa-pss").then_some("countersign-interop"),
        "require": require,
        "digest": true,
    });
    crate::verifier::run(
        "python3",
        "tests/interop/httpsig/verify.py",
        &input,
        "is http-message-signatures installed? .ci/run installs it",
    )
}

fn accepted(got: &Recorded, credential: &str, require: &[&str]) -> serde_json::Value {
    let verdict = verify(got, credential, require);
    assert_eq!(verdict["ok"], true, "{credential}: {verdict}");
    verdict
}

fn request(method: &str, url: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("x-multi", "  first  ")
        .header("x-multi", "second, third")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A JSON body of about `len` bytes.
fn json(len: usize) -> Vec<u8> {
    format!("{{\"data\":\"{}\"}}", "x".repeat(len)).into_bytes()
}

const ALL: [&str; 12] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@path",
    "@query",
    "@request-target",
    r#""@query-param";name="b""#,
    r#""@query-param";name="sp%20ace""#,
    "content-type",
    "x-multi",
    "content-digest",
];

#[tokio::test]
#[ignore = "interop: needs python3 with http-message-signatures; run by .ci/run"]
async fn http_message_signatures_accepts_what_http_signature_signs() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        with_free_admin_port(&config(&upstream.http_url(), dir.path())),
    )
    .unwrap();
    let binary = Binary::start(&path);

    for credential in ALGORITHMS {
        // A small body, one past spool_memory (64 KiB: spooled to disk),
        // and none at all.
        let cases = [
            ("POST", json(100)),
            ("PUT", json(200 << 10)),
            ("GET", vec![]),
        ];
        for (method, body) in cases {
            let host = credential.replace('_', "-");
            let url = format!(
                "http://{host}.sig.test/v1/items%20a/b?b=2+x%7E*&a=1&empty=&sp+ace=%C3%A7%2F"
            );
            let answer = send(binary.proxy, request(method, &url, body.clone())).await;
            assert_eq!(answer.status, 200, "{credential} {method}: {answer:?}");
            let got = upstream.last();
            assert_eq!(got.body, body);
            let verdict = accepted(&got, credential, &ALL);
            assert_eq!(verdict["body_checked"], true, "{verdict}");
            let label = if credential == "ed25519" {
                "partner"
            } else {
                "sig1"
            };
            assert_eq!(verdict["label"], label, "{verdict}");
            let params = &verdict["params"];
            assert!(params["created"].is_i64(), "{verdict}");
            match credential {
                "ed25519" | "rsa-v1_5" => assert!(params["nonce"].is_string(), "{verdict}"),
                "ecdsa" => assert_eq!(
                    params["expires"].as_i64().unwrap() - params["created"].as_i64().unwrap(),
                    300,
                    "{verdict}"
                ),
                "rsa-pss" => {
                    assert_eq!(params["alg"], "rsa-pss-sha512", "{verdict}");
                    assert_eq!(params["tag"], "countersign-interop", "{verdict}");
                }
                _ => {}
            }
        }
    }

    // Stacked: the bearer token is written first and the signature covers
    // it. The app streams its body chunked, past spool_memory: the
    // signature covers content-length, which countersign knows once the
    // body is spooled, and sends.
    let (tx, body) = channel_body();
    let sent = json(100 << 10);
    let chunks: Vec<Bytes> = sent.chunks(7 << 10).map(Bytes::copy_from_slice).collect();
    tokio::spawn(async move {
        for chunk in chunks {
            tx.send(Ok(chunk)).await.unwrap();
        }
    });
    let streamed = Request::post("http://stacked.sig.test/pay")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let answer = send(binary.proxy, streamed).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body, sent);
    assert_eq!(got.header("authorization"), Some("Bearer stacked-token"));
    assert_eq!(
        got.header("content-length"),
        Some(sent.len().to_string().as_str())
    );
    accepted(
        &got,
        "over-bearer",
        &[
            "@method",
            "@target-uri",
            "authorization",
            "content-length",
            "content-digest",
        ],
    );

    // The controls: the package refuses a changed body (the digest no
    // longer matches) and a changed covered header.
    let mut tampered = upstream.received()[0].clone();
    tampered.body[5] ^= 1;
    let verdict = verify(&tampered, "hmac", &ALL);
    assert_eq!(verdict["ok"], false, "a changed body was accepted");
    let mut tampered = upstream.received()[0].clone();
    tampered
        .headers
        .insert("content-type", "text/plain".parse().unwrap());
    let verdict = verify(&tampered, "hmac", &ALL);
    assert_eq!(verdict["ok"], false, "a changed header was accepted");

    // A covered query parameter or header the app did not send: 400
    // naming it, and nothing sent.
    let before = upstream.received().len();
    let cases = [
        (
            "http://hmac.sig.test/v1",
            "the request has no query parameter `b`",
        ),
        (
            "http://hmac.sig.test/v1?b=1&sp%20ace=2",
            "the request has no header `x-multi`",
        ),
    ];
    for (url, want) in cases {
        let bare = Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let answer = send(binary.proxy, bare).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(
            answer.header("x-countersign-error"),
            Some("unsignable-request")
        );
        assert!(answer.body.contains(want), "{want}: {}", answer.body);
    }
    assert_eq!(upstream.received().len(), before);
}
