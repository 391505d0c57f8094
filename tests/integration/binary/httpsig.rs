//! `sign` and `check` for http-signature (RFC 9421): `sign` reproduces
//! appendix B.2.6 (ed25519, deterministic) byte for byte, prints every
//! header it adds with a fixed time and nonce (the same twice), and shows
//! the signature base; `check` refuses a config that cannot work, naming
//! the key.

use std::path::Path;

use super::*;

fn rfc_key(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc9421")
        .join(name)
        .display()
        .to_string()
}

fn config(dir: &Path, credential: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            r#"
[credential.partner]
type = "http-signature"
algorithm = "ed25519"
private_key_file = "{}"
keyid = "test-key-ed25519"
{credential}

[[route]]
name = "partner"
hosts = ["example.com"]
upstream = "https://example.com"
credential = "partner"
"#,
            rfc_key("test-key-ed25519.pem")
        ),
    )
}

/// `countersign sign` for RFC 9421's test-request (B.2) at its time;
/// returns (stdout lines sorted, stderr).
fn sign(config: &Path, extra: &[&str]) -> (Vec<String>, String) {
    let body = config.with_file_name("body.json");
    std::fs::write(&body, br#"{"hello": "world"}"#).unwrap();
    let out = Command::new(BIN)
        .args(["sign", "--config"])
        .arg(config)
        .args(["--route", "partner", "--method", "POST"])
        .args(["--url", "http://example.com/foo?param=Value&Pet=dog"])
        .args(["-H", "Date: Tue, 20 Apr 2021 02:07:55 GMT"])
        .args(["-H", "Content-Type: application/json"])
        .arg("--body-file")
        .arg(&body)
        .args(["--epoch", "1618884473"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines, stderr)
}

#[test]
fn sign_reproduces_rfc_9421_b_2_6_and_shows_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "label = \"sig-b26\"\ncomponents = [\"date\", \"@method\", \"@path\", \"@authority\", \"content-type\", \"content-length\"]",
    );
    let (lines, stderr) = sign(&path, &[]);
    assert_eq!(
        lines,
        [
            "content-length: 18",
            "host: example.com",
            "signature-input: sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
            "signature: sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
        ],
        "{stderr}"
    );
    let base = [
        "# signature base:",
        "#   \"date\": Tue, 20 Apr 2021 02:07:55 GMT",
        "#   \"@method\": POST",
        "#   \"@path\": /foo",
        "#   \"@authority\": example.com",
        "#   \"content-type\": application/json",
        "#   \"content-length\": 18",
        "#   \"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
    ]
    .join("\n");
    assert!(stderr.contains(&base), "{stderr}");
}

#[test]
fn sign_prints_content_digest_and_a_fixed_nonce_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "components = [\"@method\", \"@target-uri\", \"content-digest\"]\ncontent_digest = \"sha-512\"\nnonce = true\nexpires = \"1m\"\ntag = \"app\"",
    );
    let (first, stderr) = sign(&path, &["--nonce", "fixed-nonce-1"]);
    let (second, _) = sign(&path, &["--nonce", "fixed-nonce-1"]);
    assert_eq!(
        first, second,
        "ed25519 with a fixed time and nonce is reproducible"
    );
    let header = |name: &str| {
        first
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {first:?}"))
            .to_string()
    };
    // RFC 9530 B.1 / RFC 9421 B.2: the digest of the test-request's body.
    assert_eq!(
        header("content-digest"),
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    );
    assert_eq!(
        header("signature-input"),
        "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1618884473;expires=1618884533;keyid=\"test-key-ed25519\";nonce=\"fixed-nonce-1\";tag=\"app\""
    );
    assert!(header("signature").starts_with("sig1=:"), "{first:?}");
    assert!(
        stderr.contains("#   \"@target-uri\": https://example.com/foo?param=Value&Pet=dog"),
        "{stderr}"
    );
    // Without --nonce, a fresh one each time.
    let (a, _) = sign(&path, &[]);
    let (b, _) = sign(&path, &[]);
    assert_ne!(a, b);
}

#[test]
fn check_refuses_what_cannot_work_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[credential.partner]
type = "http-signature"
algorithm = "ecdsa-p256-sha256"
private_key_file = "{}"
secret = "do-not-print-me"
components = ["@method", "Date", "@status", "content-digest"]

[[route]]
name = "partner"
hosts = ["example.com"]
upstream = "https://example.com"
credential = "partner"
"#,
            rfc_key("test-key-ed25519.pem")
        ),
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "credential.partner.private_key_file: is not a P-256 EC key usable for ecdsa-p256-sha256",
        "credential.partner.secret: is for hmac-sha256",
        "credential.partner.components[1]: is not lowercase",
        "credential.partner.components[2]: is not a derived component",
        "credential.partner.content_digest: missing",
    ] {
        assert!(stderr.contains(want), "{want}\n{stderr}");
    }
    assert!(!stderr.contains("do-not-print-me"), "{stderr}");
}
