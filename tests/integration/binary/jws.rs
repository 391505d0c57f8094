//! `sign` for jws-detached: with a fixed time and nonce, the protected
//! header (and so the first part of `x-jws-signature`) and the generated
//! `x-fapi-interaction-id` are exactly reproducible, the header is printed
//! decoded on stderr, and the signature verifies over the body file.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

use super::*;

#[test]
fn sign_prints_the_signature_header_reproducibly_with_a_fixed_time() {
    let dir = tempfile::tempdir().unwrap();
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/oauth2/test-rsa-key.pem"
    );
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[credential.jws]
type = "jws-detached"
version = "3.1.3"
private_key_file = "{key}"
kid = "kid-1"
issuer = "org/ssa"
interaction_id = true

[[route]]
name = "bank"
hosts = ["ob.bank.test"]
upstream = "https://ob.bank.test"
credential = "jws"
"#
        ),
    );
    let body = dir.path().join("payment.json");
    let payload = "{\"Data\":{\"Amount\":\"12.50\"},\"Risk\":{}}";
    std::fs::write(&body, payload).unwrap();
    let run = || {
        let out = Command::new(BIN)
            .args(["sign", "--config"])
            .arg(&path)
            .args(["--route", "bank", "--method", "POST"])
            .args(["--url", "http://ob.bank.test/pisp/domestic-payments"])
            .args(["-H", "Content-Type: application/json"])
            .arg("--body-file")
            .arg(&body)
            .args(["--epoch", "1700000000"])
            .args(["--nonce", "93bac548-d2de-4546-b106-880a5018460d"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run();
    let header = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    assert_eq!(
        header("x-fapi-interaction-id"),
        "93bac548-d2de-4546-b106-880a5018460d"
    );
    let jws = header("x-jws-signature");
    let (protected, sig) = jws.split_once("..").unwrap();
    // The protected header, as UK OB 3.1.3 has it (serde_json sorts keys).
    let expected = r#"{"alg":"PS256","b64":false,"crit":["b64","http://openbanking.org.uk/iat","http://openbanking.org.uk/iss","http://openbanking.org.uk/tan"],"cty":"application/json","http://openbanking.org.uk/iat":1700000000,"http://openbanking.org.uk/iss":"org/ssa","http://openbanking.org.uk/tan":"openbanking.org.uk","kid":"kid-1"}"#;
    assert_eq!(B64.decode(protected).unwrap(), expected.as_bytes());
    assert!(
        stderr.contains(&format!(
            "# x-jws-signature protected header: {expected}; signed: BASE64URL(header) '.' the body as sent (b64=false)"
        )),
        "{stderr}"
    );
    // b64=false: the payload is signed as it is.
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PSS_2048_8192_SHA256,
        crate::oauth2::public_key(crate::oauth2::RSA_KEY, "PS256"),
    )
    .verify(
        format!("{protected}.{payload}").as_bytes(),
        &B64.decode(sig).unwrap(),
    )
    .expect("the signature verifies over the body file");
    // A second run: the same header part (PSS salts the signature).
    let again = run().0;
    assert!(
        again.contains(&format!("x-jws-signature: {protected}..")),
        "{again}"
    );
}

#[test]
fn check_refuses_a_key_that_does_not_fit_and_an_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/oauth2/test-ec-key.pem"
    );
    let path = write_config(
        dir.path(),
        &format!(
            "[credential.jws]\ntype = \"jws-detached\"\nversion = \"3.2\"\nprivate_key_file = \"{key}\"\nkid = \"k\"\n\n[[route]]\nname = \"bank\"\nhosts = [\"ob.bank.test\"]\nupstream = \"https://ob.bank.test\"\ncredential = \"jws\"\n"
        ),
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "credential.jws.version: is not a UK open banking Read/Write API version",
        "credential.jws.private_key_file: is not an RSA key usable for PS256",
        "credential.jws.issuer: missing",
    ] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}
