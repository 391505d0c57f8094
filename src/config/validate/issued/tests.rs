//! Each `issued-key` rule's failure, reported at its key path, and full
//! valid credentials (AmiVoice with sid/spw, and a JSON issuer) read into
//! the validated types.

use std::path::Path;
use std::time::Duration;

use super::super::{validate, validate_with_env};
use crate::config::{
    Config, ConfigError, CredentialConfig, IssuedKeyConfig, KeyPlacement, KeyResponse,
};

fn problems(dir: &Path, toml: &str) -> Vec<String> {
    match validate(toml, dir) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
    }
}

fn issued(dir: &Path, toml: &str) -> IssuedKeyConfig {
    issued_key(validate(toml, dir))
}

fn issued_key(validated: Result<Config, ConfigError>) -> IssuedKeyConfig {
    let config = validated.unwrap_or_else(|e| panic!("{e}"));
    match config.credentials.into_values().next() {
        Some(CredentialConfig::IssuedKey(k)) => *k,
        _ => panic!("an issued-key credential"),
    }
}

const BASE: &str = "[credential.k]\ntype = \"issued-key\"\nissue_url = \"http://127.0.0.1:9/issue\"\nform = { sid = \"s\" }\nlifetime = \"300s\"\nquery = \"authorization\"\n";

#[test]
fn the_amivoice_recipe() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spw"), "pass-word\n").unwrap();
    let toml = r#"
        [credential.amivoice]
        type = "issued-key"
        issue_url = "https://acp-api.amivoice.com/issue_service_authorization"
        form = { sid = "${env:COUNTERSIGN_TEST_AMIVOICE_SID}", spw = "${file:spw}", epi = "300000", ipa = "203.0.113.0/24" }
        lifetime = "300s"
        query = "authorization"
    "#;
    let env = [("COUNTERSIGN_TEST_AMIVOICE_SID", "service-id")];
    let k = issued_key(validate_with_env(toml, dir.path(), &env));
    assert_eq!(
        k.issue_url.to_string(),
        "https://acp-api.amivoice.com/issue_service_authorization"
    );
    let form: Vec<_> = k
        .form
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect();
    assert_eq!(
        form,
        [
            ("epi", "300000"),
            ("ipa", "203.0.113.0/24"),
            ("sid", "service-id"),
            ("spw", "pass-word")
        ]
    );
    assert!(k.bearer.is_none());
    assert_eq!(k.response, KeyResponse::Text);
    assert_eq!(k.lifetime, Some(Duration::from_secs(300)));
    assert_eq!(k.margin, None);
    assert_eq!(
        k.placement,
        KeyPlacement::Query {
            name: "authorization".into()
        }
    );
    assert_eq!(k.refresh_at, 0.8);
    assert_eq!(k.wait_for_token, Duration::from_secs(5));
    let debug = format!("{k:?}");
    for secret in ["service-id", "pass-word"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn a_json_issuer_with_a_master_key_and_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
        [credential.k]
        type = "issued-key"
        issue_url = "http://127.0.0.1:9/keys?version=2"
        bearer = "master-key-1"
        response = "json"
        json_field = "key"
        expires_in_field = "expires_in"
        margin = "2s"
        header = "X-Api-Key"
        prefix = "Key "
        refresh_at = 0.5
        wait_for_token = "1s"
    "#;
    let k = issued(dir.path(), toml);
    assert_eq!(k.bearer.as_ref().unwrap().expose(), "master-key-1");
    assert!(k.form.is_empty());
    assert_eq!(
        k.response,
        KeyResponse::Json {
            key_field: "key".into(),
            expires_in_field: Some("expires_in".into())
        }
    );
    assert_eq!((k.lifetime, k.margin), (None, Some(Duration::from_secs(2))));
    let KeyPlacement::Header { name, prefix } = &k.placement else {
        panic!("a header")
    };
    assert_eq!((name.as_str(), prefix.as_str()), ("x-api-key", "Key "));
    assert!(!format!("{k:?}").contains("master-key-1"));
}

#[test]
fn an_empty_credential_reports_every_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[credential.k]\ntype = \"issued-key\"\n";
    assert_eq!(
        problems(dir.path(), toml),
        [
            "credential.k.issue_url",
            "credential.k",
            "credential.k.lifetime",
            "credential.k"
        ]
    );
}

#[test]
fn every_problem_is_reported_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
        [credential.a]
        type = "issued-key"
        issue_url = "ftp://issuer.test/issue"
        form = { sid = "${env:COUNTERSIGN_SURELY_UNSET}" }
        bearer = "line\nbreak"
        response = "xml"
        lifetime = "soon"
        margin = "0s"
        header = "Content-Length"
        query = "authorization"
        prefix = "x"
        refresh_at = 1.0
        wait_for_token = "never"
        [credential.b]
        type = "issued-key"
        issue_url = "https://issuer.test/issue?sid=leaked"
        form = { sid = "s", "" = "v" }
        response = "text"
        json_field = "key"
        lifetime = "5s"
        margin = "5s"
        header = "bad name"
        [credential.c]
        type = "issued-key"
        issue_url = "https://user@issuer.test/issue"
        bearer = "m"
        response = "json"
        expires_in_field = "ttl"
        query = ""
        prefix = "Bearer "
        [credential.d]
        type = "issued-key"
        issue_url = "http://issuer.test/issue"
        form = {}
        response = "json"
        json_field = ""
        lifetime = "10s"
        header = "Authorization"
        prefix = "Bad\u0001"
        [credential.e]
        type = "issued-key"
        surprise = 1
    "#;
    assert_eq!(
        problems(dir.path(), toml),
        [
            "credential.a.form.sid",
            "credential.a.issue_url",
            "credential.a.bearer",
            "credential.a.response",
            "credential.a.lifetime",
            "credential.a.margin",
            "credential.a",
            "credential.a.refresh_at",
            "credential.a.wait_for_token",
            "credential.b.form.",
            "credential.b.issue_url",
            "credential.b.json_field",
            "credential.b.margin",
            "credential.b.header",
            "credential.c.issue_url",
            "credential.c.json_field",
            "credential.c.prefix",
            "credential.c.query",
            "credential.d",
            "credential.d.json_field",
            "credential.d.prefix",
            "credential.e",
        ]
    );
}

#[test]
fn prefix_and_header_rules() {
    let dir = tempfile::tempdir().unwrap();
    let with = |extra: &str| format!("{BASE}{extra}");
    assert!(problems(dir.path(), BASE).is_empty());
    assert_eq!(
        problems(
            dir.path(),
            &with("header = \"Authorization\"\n").replace("query = \"authorization\"\n", "")
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(dir.path(), &with("prefix = \"Bearer \"\n")),
        ["credential.k.prefix"]
    );
    let nowhere = BASE.replace("query = \"authorization\"\n", "");
    assert_eq!(problems(dir.path(), &nowhere), ["credential.k"]);
    let proxy_header = nowhere.clone() + "header = \"Proxy-Authorization\"\n";
    assert_eq!(problems(dir.path(), &proxy_header), ["credential.k.header"]);
    let bad_prefix = nowhere + "header = \"Authorization\"\nprefix = \"a\\u0001\"\n";
    assert_eq!(problems(dir.path(), &bad_prefix), ["credential.k.prefix"]);
}

#[test]
fn the_lifetime_may_come_from_a_json_response_only() {
    let dir = tempfile::tempdir().unwrap();
    let no_lifetime = BASE.replace("lifetime = \"300s\"\n", "");
    assert_eq!(
        problems(dir.path(), &no_lifetime),
        ["credential.k.lifetime"]
    );
    let json = no_lifetime.clone()
        + "response = \"json\"\njson_field = \"key\"\nexpires_in_field = \"expires_in\"\n";
    assert!(problems(dir.path(), &json).is_empty());
    let text = no_lifetime + "expires_in_field = \"expires_in\"\n";
    assert_eq!(
        problems(dir.path(), &text),
        ["credential.k.expires_in_field", "credential.k.lifetime"]
    );
    let longer_margin = format!("{BASE}margin = \"301s\"\n");
    assert_eq!(
        problems(dir.path(), &longer_margin),
        ["credential.k.margin"]
    );
}

#[test]
fn a_form_field_in_the_issue_url_query_is_refused_but_other_parameters_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let leaked = BASE.replace("/issue\"", "/issue?v=1&sid=x\"");
    assert_eq!(problems(dir.path(), &leaked), ["credential.k.issue_url"]);
    let fine = BASE.replace("/issue\"", "/issue?v=1\"");
    assert!(problems(dir.path(), &fine).is_empty());
    let e = validate(&leaked, dir.path()).unwrap_err().to_string();
    assert!(e.contains("request body"), "{e}");
}
