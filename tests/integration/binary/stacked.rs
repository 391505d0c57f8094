//! `sign` and `check` for aws-sigv4 and stacked credentials: `sign`
//! reproduces the get-vanilla case of AWS's SigV4 test suite, and `check`
//! refuses a stack of two credentials that both write Authorization.

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
