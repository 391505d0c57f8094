//! `[store]`: a complete section read into `StoreConfig`, each rule's
//! failure at its key path, no value in any message, and credentials that
//! need no files once a shared store is set.

use std::path::Path;

use super::super::validate;
use crate::config::{ConfigError, CredentialConfig};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn errors(dir: &Path, toml: &str) -> ConfigError {
    validate(toml, dir).expect_err("invalid")
}

fn paths(e: &ConfigError) -> Vec<&str> {
    e.problems.iter().map(|p| p.path.as_str()).collect()
}

const REFRESH: &str = r#"
[credential.bank]
type = "oauth2"
token_url = "https://as.test/token"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
"#;

#[test]
fn a_complete_store_and_a_credential_without_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2-redis\n").unwrap();
    let toml = format!(
        r#"
        [store]
        url = "redis://redis.internal:6379/2"
        username = "countersign"
        password = "${{file:pw}}"
        key_prefix = "cs:prod:"
        store_key = "{KEY}"
        timeout = "3s"
        wait_replicas = 1
        unsaved_grace = "5m"
        {REFRESH}"#
    );
    let config = validate(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let store = config.store.as_ref().expect("[store]");
    assert_eq!(store.url, "redis://redis.internal:6379/2");
    assert_eq!(store.password.as_ref().unwrap().expose(), "hunter2-redis");
    assert_eq!(store.username.as_ref().unwrap().expose(), "countersign");
    assert_eq!(store.key_prefix, "cs:prod:");
    assert_eq!(store.store_key.as_ref().unwrap().expose().len(), 32);
    assert_eq!(store.timeout, std::time::Duration::from_secs(3));
    assert_eq!(store.wait_replicas, 1);
    assert_eq!(store.unsaved_grace, std::time::Duration::from_secs(300));
    assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    let Some(CredentialConfig::OAuth2(o)) = config.credentials.get("bank") else {
        panic!("oauth2");
    };
    assert!(o.token_store.is_none(), "no file needed");
    assert!(o.shared_store.is_some());
}

#[test]
fn defaults_and_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[store]\nurl = \"unix:///run/redis/redis.sock\"\n{REFRESH}");
    let config = validate(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let store = config.store.unwrap();
    assert_eq!(store.key_prefix, "countersign:");
    assert_eq!(store.timeout, std::time::Duration::from_secs(2));
    assert_eq!(store.wait_replicas, 0);
    assert!(!store.local_fallback);
    assert_eq!(store.unsaved_grace, std::time::Duration::from_secs(60));
    assert!(store.store_key.is_none() && store.password.is_none());
}

#[test]
fn each_bad_key_is_named_and_no_value_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, path) in [
        ("", "store.url"),
        ("url = \"http://redis:6379\"", "store.url"),
        ("url = \"redis://user:hunter2@redis:6379\"", "store.url"),
        ("url = \"redis://:6379\"", "store.url"),
        ("url = \"redis://redis:99999\"", "store.url"),
        ("url = \"redis://redis:6379/x-hunter2\"", "store.url"),
        ("url = \"unix://relative/hunter2.sock\"", "store.url"),
        (
            "url = \"redis://r\"\npassword = \"${env:COUNTERSIGN_TEST_NO_SUCH_VAR}\"",
            "store.password",
        ),
        ("url = \"redis://r\"\nusername = \"u\"", "store.password"),
        (
            "url = \"redis://r\"\nstore_key = \"aHVudGVyMg==\"",
            "store.store_key",
        ),
        ("url = \"redis://r\"\nca_file = \"ca.pem\"", "store.ca_file"),
        (
            "url = \"rediss://r\"\nca_file = \"no-such-hunter2.pem\"",
            "store.ca_file",
        ),
        (
            "url = \"rediss://r\"\nclient_cert = \"c.pem\"",
            "store.client_key",
        ),
        (
            "url = \"redis://r\"\nclient_cert = \"c.pem\"\nclient_key = \"k.pem\"",
            "store.client_cert",
        ),
        ("url = \"redis://r\"\ntimeout = \"0s\"", "store.timeout"),
        (
            "url = \"redis://r\"\nunsaved_grace = \"soon\"",
            "store.unsaved_grace",
        ),
        (
            "url = \"redis://r\"\nwait_replicas = -1",
            "store.wait_replicas",
        ),
        (
            "url = \"redis://r\"\nkey_prefix = \"a b\"",
            "store.key_prefix",
        ),
    ] {
        let e = errors(dir.path(), &format!("[store]\n{toml}\n"));
        assert_eq!(paths(&e), [path], "{toml}");
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn without_a_shared_store_a_refresh_grant_still_needs_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(dir.path(), REFRESH);
    assert_eq!(paths(&e), ["credential.bank.token_store"]);
}

#[test]
fn an_unknown_key_in_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(dir.path(), "[store]\nurl = \"redis://r\"\nsentinel = []\n");
    assert!(paths(&e).iter().all(|p| p.starts_with("store")), "{e}");
}

#[test]
fn the_url_may_come_from_a_file_and_is_checked_like_a_literal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("url"), "redis://redis.internal:6379/1\n").unwrap();
    std::fs::write(dir.path().join("bad-url"), "redis://user:pw@redis:6379\n").unwrap();
    let toml = format!("[store]\nurl = \"${{file:url}}\"\n{REFRESH}");
    let config = validate(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.store.unwrap().url, "redis://redis.internal:6379/1");
    let toml = format!("[store]\nurl = \"${{file:bad-url}}\"\n{REFRESH}");
    let e = errors(dir.path(), &toml);
    assert_eq!(paths(&e)[0], "store.url", "{e}");
    assert!(e.to_string().contains("user info"), "{e}");
    assert!(!e.to_string().contains("pw@"), "{e}");
    let toml = format!("[store]\nurl = \"${{file:missing}}\"\n{REFRESH}");
    assert_eq!(paths(&errors(dir.path(), &toml))[0], "store.url");
}

#[test]
fn sentinels_name_the_primary_instead_of_a_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spw"), "hunter2-sentinel\n").unwrap();
    let toml = format!(
        r#"
        [store]
        sentinels = ["sentinel-0.redis:26379", "[fd00::1]:26380"]
        sentinel_master = "mymaster"
        sentinel_username = "watcher"
        sentinel_password = "${{file:spw}}"
        {REFRESH}"#
    );
    let config = validate(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let store = config.store.as_ref().expect("[store]");
    let s = store.sentinel.as_ref().expect("sentinels");
    assert_eq!(
        s.nodes,
        [
            ("sentinel-0.redis".to_string(), 26379),
            ("fd00::1".to_string(), 26380)
        ]
    );
    assert_eq!(s.master, "mymaster");
    assert_eq!(s.password.as_ref().unwrap().expose(), "hunter2-sentinel");
    assert!(!s.tls && !store.is_tls());
    // Without a word from the config, a write counts once a replica has it.
    assert_eq!(store.wait_replicas, 1);
    assert_eq!(
        store.url,
        "redis+sentinel://sentinel-0.redis:26379,[fd00::1]:26380/mymaster"
    );
    assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
}

#[test]
fn url_and_sentinels_exclude_each_other_and_each_sentinel_key_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let both = "url = \"redis://r\"\nsentinels = [\"s:26379\"]\nsentinel_master = \"m\"";
    let e = errors(dir.path(), &format!("[store]\n{both}\n"));
    assert_eq!(paths(&e), ["store.sentinels"], "{e}");
    assert!(e.to_string().contains("not both"), "{e}");
    let m = "sentinel_master = \"m\"";
    for (toml, path) in [
        (
            "sentinels = []\nsentinel_master = \"m\"".to_string(),
            "store.sentinels",
        ),
        (format!("sentinels = [\"s\"]\n{m}"), "store.sentinels[0]"),
        (
            format!("sentinels = [\"s:1\", \"redis://hunter2:26379\"]\n{m}"),
            "store.sentinels[1]",
        ),
        (format!("sentinels = [\"s:0\"]\n{m}"), "store.sentinels[0]"),
        (
            format!("sentinels = [\"fd00::1:26379\"]\n{m}"),
            "store.sentinels[0]",
        ),
        (
            "sentinels = [\"s:26379\"]".to_string(),
            "store.sentinel_master",
        ),
        (
            "sentinels = [\"s:26379\"]\nsentinel_master = \"my master\"".to_string(),
            "store.sentinel_master",
        ),
        (
            format!("sentinels = [\"s:1\"]\n{m}\nsentinel_username = \"u\""),
            "store.sentinel_password",
        ),
        (
            format!("sentinels = [\"s:1\"]\n{m}\nwait_replicas = 0"),
            "store.wait_replicas",
        ),
        (
            format!("sentinels = [\"s:1\"]\n{m}\nca_file = \"ca.pem\""),
            "store.ca_file",
        ),
        (
            "url = \"redis://r\"\nsentinel_master = \"m\"".to_string(),
            "store.sentinel_master",
        ),
        (
            "url = \"redis://r\"\nsentinel_password = \"hunter2\"".to_string(),
            "store.sentinel_password",
        ),
        ("url = \"redis://r\"\ntls = true".to_string(), "store.tls"),
    ] {
        let e = errors(dir.path(), &format!("[store]\n{toml}\n"));
        assert_eq!(paths(&e), [path], "{toml}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
