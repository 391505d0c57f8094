//! `sign` and `check` for aws-sigv4 and stacked credentials: `sign`
//! reproduces the get-vanilla case of AWS's SigV4 test suite, and its
//! SigV4A case (same headers, a signature that the suite's public key
//! verifies, the same each run); `check` refuses a stack of two
//! credentials that both write Authorization.

use super::*;

#[test]
fn sign_reproduces_the_sigv4_suites_get_vanilla() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.aws]
type = "aws-sigv4"
service = "service"
region = "us-east-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

[[route]]
name = "aws"
hosts = ["example.amazonaws.com"]
upstream = "https://example.amazonaws.com"
credential = "aws"
"#,
    );
    let out = Command::new(BIN)
        .args(["sign", "--config"])
        .arg(&path)
        .args(["--route", "aws", "--url", "http://example.amazonaws.com/"])
        // 2015-08-30T12:36:00Z, the suite's time.
        .args(["--epoch", "1440938160"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "host: example.amazonaws.com",
            "x-amz-date: 20150830T123600Z",
        ],
        "{stdout}"
    );
}

#[test]
fn sign_reproduces_the_sigv4a_suites_get_vanilla_deterministically() {
    use p256::ecdsa::signature::Verifier as _;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.aws]
type = "aws-sigv4"
service = "service"
region = "us-east-1"
algorithm = "sigv4a"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

[[route]]
name = "aws"
hosts = ["example.amazonaws.com"]
upstream = "https://example.amazonaws.com"
credential = "aws"
"#,
    );
    let run = || {
        let out = Command::new(BIN)
            .args(["sign", "--config"])
            .arg(&path)
            .args(["--route", "aws", "--url", "http://example.amazonaws.com/"])
            .args(["--epoch", "1440938160"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let stdout = run();
    assert_eq!(run(), stdout, "RFC 6979: the same signature each run");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    let prefix = "authorization: AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=";
    let signature = lines[0].strip_prefix(prefix).expect(&stdout);
    assert_eq!(
        lines[1..],
        [
            "host: example.amazonaws.com",
            "x-amz-date: 20150830T123600Z",
            "x-amz-region-set: us-east-1",
        ],
        "{stdout}"
    );
    // The suite's string to sign (header-string-to-sign.txt) and public key.
    let string_to_sign = "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\ncf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02";
    let unhex = |t: &str| -> Vec<u8> {
        (0..t.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
            .collect()
    };
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&unhex(
        "04b6618f6a65740a99e650b33b6b4b5bd0d43b176d721a3edfea7e7d2d56d936b1865ed22a7eadc9c5cb9d2cbaca1b3699139fedc5043dc6661864218330c8e518",
    ))
    .unwrap();
    let sig = p256::ecdsa::Signature::from_der(&unhex(signature)).unwrap();
    assert!(key.verify(string_to_sign.as_bytes(), &sig).is_ok());
}

#[test]
fn check_refuses_two_bearer_credentials_on_one_route() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.first]
type = "header"
bearer = "one"

[credential.second]
type = "oauth2"
token_url = "https://auth.test/token"
grant = "client_credentials"
client_id = "c"
client_secret = "s"

[[route]]
name = "a"
hosts = ["a.test"]
upstream = "https://a.test"
credential = ["first", "second"]
"#,
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "route[0].credential: `first` and `second` both write the header `authorization`"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("one"),
        "the bearer token is never shown: {stderr}"
    );
}
