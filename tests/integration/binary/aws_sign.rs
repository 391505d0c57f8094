//! `countersign sign` on aws-sigv4 routes: AWS's published examples
//! reproduced through the binary, with what it signed on stderr.

use std::path::Path;
use std::process::Command;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{write_config, BIN};

/// `sign` run to its end: stdout's lines (the headers added or changed)
/// and stderr's (what was signed).
fn sign(config: &Path, args: &[&str], body: Option<&Path>) -> (Vec<String>, Vec<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(["sign", "--config"]).arg(config).args(args);
    if let Some(body) = body {
        cmd.arg("--body-file").arg(body);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let lines = |s: &[u8]| {
        String::from_utf8_lossy(s)
            .lines()
            .map(str::to_string)
            .collect()
    };
    (lines(&out.stdout), lines(stderr.as_bytes()))
}

/// The indented lines under `# title:` on stderr.
fn section(stderr: &[String], title: &str) -> Vec<String> {
    stderr
        .iter()
        .skip_while(|l| *l != &format!("# {title}:"))
        .skip(1)
        .take_while(|l| l.starts_with("#   ") || *l == "#   " || *l == "#  ")
        .map(|l| l.strip_prefix("#   ").unwrap_or("").to_string())
        .collect()
}

/// AWS's "Example: PUT Object" of the streaming payload (66560 bytes of
/// `a` in 64 KiB chunks). No Content-Length on the command line: `sign`
/// takes it from the body file, as an app's HTTP client would send it.
#[test]
fn sign_reproduces_aws_published_streaming_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.s3]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
payload = "streaming"
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

[[route]]
name = "s3"
hosts = ["s3.amazonaws.com"]
upstream = "https://s3.amazonaws.com"
credential = "s3"
"#,
    );
    let body = dir.path().join("chunkObject.txt");
    std::fs::write(&body, vec![b'a'; 66560]).unwrap();
    let (stdout, stderr) = sign(
        &path,
        &[
            "--route",
            "s3",
            "--method",
            "PUT",
            "--url",
            "https://s3.amazonaws.com/examplebucket/chunkObject.txt",
            "-H",
            "x-amz-storage-class: REDUCED_REDUNDANCY",
            "--epoch",
            "1369353600",
        ],
        Some(&body),
    );
    for want in [
        "authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        "content-length: 66824",
        "x-amz-decoded-content-length: 66560",
        "content-encoding: aws-chunked",
        "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date: 20130524T000000Z",
    ] {
        assert!(stdout.iter().any(|l| l == want), "{want} in {stdout:#?}");
    }
    let canonical = section(&stderr, "canonical request");
    assert_eq!(
        canonical,
        [
            "PUT",
            "/examplebucket/chunkObject.txt",
            "",
            "content-encoding:aws-chunked",
            "content-length:66824",
            "host:s3.amazonaws.com",
            "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "x-amz-date:20130524T000000Z",
            "x-amz-decoded-content-length:66560",
            "x-amz-storage-class:REDUCED_REDUNDANCY",
            "",
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        ],
        "{stderr:#?}"
    );
    assert_eq!(
        section(&stderr, "string to sign"),
        [
            "AWS4-HMAC-SHA256",
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455",
        ],
        "{stderr:#?}"
    );
    let chunks: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with("# chunk "))
        .collect();
    assert_eq!(
        chunks,
        [
            "# chunk 1: 65536 bytes, chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "# chunk 2: 1024 bytes, chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "# chunk 3: 0 bytes, chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ],
        "{stderr:#?}"
    );
}

const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed-body POST with a session token: first AWS's test-suite case
/// `post-sts-header-before` (no body) with its published signature, then
/// the same credential over a body, whose SHA-256 ends the canonical
/// request and whose signature this test derives from the printed string
/// to sign with its own HMAC chain.
#[test]
fn sign_shows_a_signed_body_sigv4_post_with_a_session_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[credential.svc]
type = "aws-sigv4"
service = "service"
region = "us-east-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
session_token = "{STS_TOKEN}"

[[route]]
name = "svc"
hosts = ["example.amazonaws.com"]
upstream = "https://example.amazonaws.com"
credential = "svc"
"#
        ),
    );
    let args = [
        "--route",
        "svc",
        "--method",
        "POST",
        "--url",
        "https://example.amazonaws.com/",
        "--epoch",
        "1440938160",
    ];
    let (stdout, stderr) = sign(&path, &args, None);
    assert!(
        stdout.iter().any(|l| l == "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
        "{stdout:#?}"
    );
    assert!(stdout
        .iter()
        .any(|l| l == &format!("x-amz-security-token: {STS_TOKEN}")));
    assert_eq!(
        section(&stderr, "string to sign")
            .last()
            .map(String::as_str),
        Some("c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"),
        "{stderr:#?}"
    );

    let body = dir.path().join("form");
    let form = b"Action=ListUsers&Version=2010-05-08";
    std::fs::write(&body, form).unwrap();
    let (stdout, stderr) = sign(
        &path,
        &[
            &args[..],
            &["-H", "Content-Type: application/x-www-form-urlencoded"],
        ]
        .concat(),
        Some(&body),
    );
    let canonical = section(&stderr, "canonical request");
    assert_eq!(
        canonical.last().unwrap(),
        &hex(&Sha256::digest(form)),
        "the body's SHA-256 is signed: {stderr:#?}"
    );
    assert!(
        canonical.contains(&"content-length:35".to_string()),
        "{canonical:#?}"
    );
    assert!(canonical.contains(&format!("x-amz-security-token:{STS_TOKEN}")));
    let sts = section(&stderr, "string to sign");
    assert_eq!(sts[3], hex(&Sha256::digest(canonical.join("\n"))));
    let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
    for part in ["us-east-1", "service", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, sts.join("\n").as_bytes()));
    let auth = stdout
        .iter()
        .find_map(|l| l.strip_prefix("authorization: "))
        .unwrap();
    assert_eq!(
        auth,
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token, Signature={signature}")
    );
}
