//! Values that made a later step panic are refused when the config is
//! checked, naming the key: `leaf_lifetime = "100000000h"` once passed
//! `check`, and then every interception panicked.

fn check_toml(dir: &std::path::Path, toml: &str) -> (Option<i32>, String) {
    let path = dir.join("proxy.toml");
    std::fs::write(&path, toml).unwrap();
    let out = crate::binary::check(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// Every duration key set to `long`, and the issued key's `margin` to
/// `margin`.
fn durations(long: &str, margin: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "{long}"
response_timeout = "{long}"
idle_timeout = "{long}"
client_header_timeout = "{long}"
drain_timeout = "{long}"

[admin]
listen = "127.0.0.1:0"
control_listen = "127.0.0.1:0"
browser_listen = "127.0.0.1:0"

[intercept]
ca_cert = "ca/ca.pem"
ca_key = "ca/ca-key.pem"
leaf_lifetime = "{long}"

[credential.bank]
type = "oauth2"
grant = "client_credentials"
token_url = "http://127.0.0.1:1/token"
client_id = "id"
client_secret = "secret"
wait_for_token = "{long}"

[credential.keys]
type = "issued-key"
issue_url = "http://127.0.0.1:1/issue"
form = {{ sid = "s" }}
query = "authorization"
lifetime = "{long}"
margin = "{margin}"
wait_for_token = "{long}"
"#
    )
}

/// `leaf_lifetime = "100000000h"` once passed `check`, and then every
/// interception panicked (the app got an empty reply). Every duration key
/// is bounded the same way, so no later clock arithmetic can overflow.
#[test]
fn durations_too_long_for_the_clocks_are_refused_by_check_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    for long in ["100000000h", "8761h", "99999999999999999999ms"] {
        let (code, text) = check_toml(dir.path(), &durations(long, long));
        assert_eq!(code, Some(64), "{long}: {text}");
        for key in [
            "proxy.connect_timeout",
            "proxy.response_timeout",
            "proxy.idle_timeout",
            "proxy.client_header_timeout",
            "proxy.drain_timeout",
            "intercept.leaf_lifetime",
            "credential.bank.wait_for_token",
            "credential.keys.lifetime",
            "credential.keys.margin",
            "credential.keys.wait_for_token",
        ] {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("{key}:")))
                .unwrap_or_else(|| panic!("{long}: no problem at {key}:\n{text}"));
            assert!(line.contains("at most 365 days"), "{line}");
        }
    }
    let (code, text) = check_toml(dir.path(), &durations("8760h", "5s"));
    assert_eq!(code, Some(0), "the longest allowed: {text}");
}
