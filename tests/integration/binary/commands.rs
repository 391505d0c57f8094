//! The one-shot commands as a user runs them: `check` (every problem,
//! exit 64, files named), `sign` (the published PayPay example), `ca init`
//! and `token`.

use super::*;

#[test]
fn check_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[proxy]
unmatched = "maybe"
max_body = "12 parsecs"

[credential.p]
type = "paypay-opa"
api_key = "${env:COUNTERSIGN_TEST_SURELY_UNSET}"
api_secret = "s"

[[route]]
name = "a"
hosts = ["a.test"]
upstream = "ftp://a.test"
credential = "nope"

[[route]]
name = "b"
hosts = ["a.test"]
upstream = "https://a.test"
"#,
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in [
        "proxy.unmatched:",
        "proxy.max_body:",
        "credential.p.api_key:",
        "route[0].upstream:",
        "route[0].credential:",
    ] {
        assert!(stderr.contains(path), "missing {path} in:\n{stderr}");
    }
}

/// The controls may not be opened to the network without a secret:
/// `check` names the missing key (and not the address), and so do `run`
/// and every reload, which use the same check.
#[test]
fn check_refuses_controls_off_loopback_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    for admin in [
        "listen = \"0.0.0.0:9901\"\ncontrol_listen = \"0.0.0.0:19902\"\n",
        "control_listen = \"10.9.8.7:19902\"\n",
    ] {
        let path = write_config(dir.path(), &format!("[admin]\n{admin}"));
        let out = check(&path);
        assert_eq!(out.status.code(), Some(64), "{admin}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("admin.control_secret: missing"), "{stderr}");
        assert!(!stderr.contains("19902"), "no value quoted: {stderr}");
    }
    std::fs::write(dir.path().join("control-secret"), "0123456789abcdef-ctl").unwrap();
    let path = write_config(
        dir.path(),
        "[admin]\nlisten = \"0.0.0.0:9901\"\ncontrol_listen = \"0.0.0.0:19902\"\ncontrol_secret = \"${file:control-secret}\"\n",
    );
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_example_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml.example");
    let out = check(&example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sign_reproduces_the_published_paypay_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.paypay]
type = "paypay-opa"
api_key = "APIKeyGenerated"
api_secret = "APIKeySecretGenerated"

[[route]]
name = "paypay"
hosts = ["api.paypay.ne.jp"]
upstream = "https://api.paypay.ne.jp"
credential = "paypay"
"#,
    );
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"sampleRequestBodyKey1":"sampleRequestBodyValue1","sampleRequestBodyKey2":"sampleRequestBodyValue2"}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["sign", "--config"])
        .arg(&path)
        .args([
            "--route",
            "paypay",
            "--method",
            "POST",
            "--url",
            "http://api.paypay.ne.jp/v2/codes",
        ])
        .args([
            "-H",
            "Content-Type: application/json;charset=UTF-8;",
            "--body-file",
        ])
        .arg(&body)
        .args(["--nonce", "acd028", "--epoch", "1579843452"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(
        &"authorization: hmac OPA-Auth:APIKeyGenerated:NW1jKIMnzR7tEhMWtcJcaef+nFVBt7jjAGcVuxHhchc=:acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="
    ), "{stdout}");
    assert!(lines.contains(&"host: api.paypay.ne.jp"), "{stdout}");
    assert!(lines.contains(&"content-length: 101"), "{stdout}");
    assert_eq!(
        lines.len(),
        3,
        "only added or changed headers are printed: {stdout}"
    );
}

#[test]
fn check_names_the_file_of_a_mismatched_client_key() {
    let clients = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = clients.client_cert("one", 90);
    let (_, other_key) = clients.client_cert("two", 90);
    std::fs::write(dir.path().join("transport.pem"), cert).unwrap();
    std::fs::write(dir.path().join("transport.key"), other_key).unwrap();
    let path = write_config(
        dir.path(),
        "[[route]]\nname = \"ob\"\nhosts = [\"ob.test\"]\nupstream = \"https://ob.test\"\nclient_cert = \"transport.pem\"\nclient_key = \"transport.key\"\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("route[0].client_cert"), "{stderr}");
    assert!(stderr.contains("transport.key"), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
}

#[test]
fn ca_init_writes_a_private_key_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ca");
    let out = Command::new(BIN)
        .args(["ca", "init", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NODE_EXTRA_CA_CERTS") && stdout.contains("REQUESTS_CA_BUNDLE"),
        "{stdout}"
    );
    let mode = std::fs::metadata(out_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The pair loads as an interception CA.
    let toml = "[intercept]\nca_cert = \"ca/ca.pem\"\nca_key = \"ca/ca-key.pem\"\n";
    countersign::config::parse(toml, dir.path()).expect("the new CA loads");
    let before = std::fs::read(out_dir.join("ca-key.pem")).unwrap();
    let again = Command::new(BIN)
        .args(["ca", "init", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(out_dir.join("ca-key.pem")).unwrap(), before);
}

/// `countersign token --config CONFIG ARGS...`: its exit code and stdout;
/// panics with stderr when `must_succeed` and it failed.
fn token_command(config: &Path, args: &[&str], must_succeed: bool) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["token", "--config"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        !must_succeed || out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `countersign token` fetches a client_credentials token and shows its
/// state; the token only with --reveal. A rotating grant is only inspected.
#[test]
fn token_shows_state_and_reveals_only_when_asked() {
    use crate::oauth2::{ClientCheck, TokenServer};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens = rt.block_on(TokenServer::start(
        &[("c", ClientCheck::Basic("s".into()))],
        300,
        &["rt-seed"],
    ));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[credential.cc]\ntype = \"oauth2\"\ntoken_url = \"{0}\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\nscope = \"accounts\"\n[credential.rt]\ntype = \"oauth2\"\ntoken_url = \"{0}\"\ngrant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"rt-seed\"\ntoken_store = \"rt.json\"\n",
        tokens.url()
    );
    let config = write_config(dir.path(), &toml);
    let run = |args: &[&str], ok: bool| token_command(&config, args, ok);
    let (_, text) = run(&["--credential", "cc"], true);
    assert!(
        text.contains("state: valid") && text.contains("scope: accounts"),
        "{text}"
    );
    assert!(
        text.contains("expires in: 29") || text.contains("expires in: 300s"),
        "{text}"
    );
    for issued in tokens.issued() {
        assert!(
            !text.contains(&issued),
            "the token was shown without --reveal"
        );
    }
    let (_, text) = run(&["--credential", "cc", "--reveal"], true);
    let last = tokens.issued().last().unwrap().clone();
    assert!(text.contains(&format!("token: {last}")), "{text}");

    let before = tokens.request_count();
    let (_, text) = run(&["--credential", "rt", "--reveal"], true);
    assert!(text.contains("not fetched"), "{text}");
    assert_eq!(
        tokens.request_count(),
        before,
        "a rotating grant must not be fetched"
    );
    let (code, _) = run(&["--credential", "nope"], false);
    assert_eq!(code, Some(2));
}

/// `countersign token` on an issued-key credential asks the issuer for a
/// key and shows its lifetime; the key itself, as issued, only with --reveal.
#[test]
fn token_fetches_an_issued_key_and_reveals_it_only_when_asked() {
    use crate::issued_key::{Issuer, Mode, SID, SPW};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = rt.block_on(Issuer::start(Mode::Text, SID, SPW, None));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[credential.amivoice]\ntype = \"issued-key\"\nissue_url = \"{}\"\nform = {{ sid = \"{SID}\", spw = \"{SPW}\", epi = \"300000\" }}\nlifetime = \"300s\"\nquery = \"authorization\"\n",
        issuer.url()
    );
    let config = write_config(dir.path(), &toml);
    let run = |reveal: &[&str]| {
        let args = [&["--credential", "amivoice"], reveal].concat();
        token_command(&config, &args, true).1
    };
    let text = run(&[]);
    assert!(
        text.contains("(issued-key)") && text.contains("state: valid"),
        "{text}"
    );
    // 300 s less the default 5 s margin.
    assert!(
        text.contains("expires in: 29"),
        "the key's usable life: {text}"
    );
    let first = issuer.keys();
    assert_eq!(first.len(), 1, "one key was issued");
    assert!(
        !text.contains(&first[0]),
        "the key was shown without --reveal"
    );

    let text = run(&["--reveal"]);
    let last = issuer.keys().last().unwrap().clone();
    // As issued: `+`, `/` and `=` are not form-encoded here.
    assert!(text.contains(&format!("token: {last}\n")), "{text}");
}
