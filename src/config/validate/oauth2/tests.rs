//! Each `oauth2` rule's failure, reported at its key path, and a full
//! valid credential read into the validated types.

use std::path::Path;

use super::super::validate;
use crate::config::{ClientAuth, CredentialConfig, Grant, OAuth2Config, SigningAlg};

const RSA: &str = include_str!("../../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../../tests/integration/oauth2/test-ec-key.pem");

fn problems(dir: &Path, toml: &str) -> Vec<String> {
    match validate(toml, dir) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
    }
}

fn oauth2(dir: &Path, toml: &str) -> OAuth2Config {
    let config = validate(toml, dir).unwrap_or_else(|e| panic!("{e}"));
    match config.credentials.into_values().next() {
        Some(CredentialConfig::OAuth2(o)) => *o,
        _ => panic!("an oauth2 credential"),
    }
}

#[test]
fn a_complete_refresh_token_credential() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["as.test".into()]).unwrap();
    std::fs::write(dir.path().join("as-ca.pem"), cert.cert.pem()).unwrap();
    let toml = r#"
        [credential.bank]
        type = "oauth2"
        token_url = "https://as.test/oauth2/token"
        grant = "refresh_token"
        client_id = "my-app"
        client_secret = "s3cret"
        client_auth = "client_secret_post"
        refresh_token = "rt-seed"
        scope = "private:account private:virtual-account"
        audience = "https://api.test"
        resource = "https://api.test/v1"
        extra_params = { "x-env" = "sandbox" }
        token_store = "bank.store"
        store_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        ca_file = "as-ca.pem"
        refresh_at = 0.5
        wait_for_token = "2s"
    "#;
    let o = oauth2(dir.path(), toml);
    assert_eq!(
        o.token_url.as_ref().unwrap().to_string(),
        "https://as.test/oauth2/token"
    );
    assert!(matches!(&o.grant, Grant::RefreshToken { seed: Some(s) } if s.expose() == "rt-seed"));
    assert!(matches!(&o.client_auth, ClientAuth::SecretPost(s) if s.expose() == "s3cret"));
    let params: Vec<_> = o
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        params,
        [
            ("scope", "private:account private:virtual-account"),
            ("audience", "https://api.test"),
            ("resource", "https://api.test/v1"),
            ("x-env", "sandbox")
        ]
    );
    let store = o.token_store.as_ref().unwrap();
    assert_eq!(store.path, dir.path().join("bank.store"));
    assert_eq!(
        store.key.as_ref().unwrap().expose(),
        &(0..32).collect::<Vec<u8>>()[..]
    );
    assert_eq!(o.ca_roots.len(), 1);
    assert_eq!(o.refresh_at, 0.5);
    assert_eq!(o.wait_for_token, std::time::Duration::from_secs(2));
    let debug = format!("{o:?}");
    for secret in ["s3cret", "rt-seed", "AAECAwQF"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn defaults_basic_auth_and_the_token_url_as_assertion_audience() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[credential.c]\ntype = \"oauth2\"\ntoken_url = \"http://127.0.0.1:9/token\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\n";
    let o = oauth2(dir.path(), &format!("{base}client_secret = \"s\"\n"));
    assert!(matches!(o.client_auth, ClientAuth::SecretBasic(_)));
    assert_eq!(o.refresh_at, 0.8);
    assert_eq!(o.wait_for_token, std::time::Duration::from_secs(5));
    assert!(o.token_store.is_none());
    std::fs::write(dir.path().join("k.pem"), EC).unwrap();
    let jwt = format!("{base}client_auth = \"private_key_jwt\"\nprivate_key_file = \"k.pem\"\nsigning_alg = \"ES256\"\nkid = \"k1\"\n");
    let ClientAuth::PrivateKeyJwt(key) = oauth2(dir.path(), &jwt).client_auth else {
        panic!("private_key_jwt")
    };
    assert_eq!(key.alg, SigningAlg::Es256);
    assert_eq!(key.audience, "http://127.0.0.1:9/token");
    assert_eq!(key.kid.as_deref(), Some("k1"));
}

#[test]
fn every_problem_is_reported_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
        [credential.a]
        type = "oauth2"
        token_url = "ftp://as.test/token"
        grant = "password"
        client_auth = "kerberos"
        refresh_at = 1.5
        wait_for_token = "soon"
        extra_params = { "grant_type" = "x", "ok" = "${env:COUNTERSIGN_SURELY_UNSET}" }
        [credential.b]
        type = "oauth2"
        grant = "refresh_token"
        client_id = ""
        kid = "k"
        store_key = "c2hvcnQ="
        [credential.c]
        type = "oauth2"
        token_url = "https://user@as.test/token"
        grant = "client_credentials"
        client_id = "c"
        client_secret = "s"
        refresh_token = "rt"
        token_store = "c.store"
        [credential.d]
        type = "oauth2"
        token_url = "https://as.test/token"
        grant = "client_credentials"
        client_id = "d"
        bogus = 1
    "#;
    assert_eq!(
        problems(dir.path(), toml),
        [
            "credential.a.token_url",
            "credential.a.client_id",
            "credential.a.grant",
            "credential.a.client_auth",
            "credential.a.extra_params.grant_type",
            "credential.a.extra_params.ok",
            "credential.a.refresh_at",
            "credential.a.wait_for_token",
            "credential.b.token_url",
            "credential.b.client_id",
            "credential.b.kid",
            "credential.b.client_secret",
            "credential.b.store_key",
            "credential.b.token_store",
            "credential.c.token_url",
            "credential.c.refresh_token",
            "credential.c.token_store",
            "credential.d",
        ]
    );
}

#[test]
fn private_key_jwt_needs_a_suitable_pkcs8_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ec.pem"), EC).unwrap();
    std::fs::write(dir.path().join("rsa.pem"), RSA).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["x.test".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    let cred = |name: &str, extra: &str| {
        format!("[credential.{name}]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/t\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_auth = \"private_key_jwt\"\n{extra}\n")
    };
    let toml = [
        cred(
            "a",
            "private_key_file = \"ec.pem\"\nsigning_alg = \"RS256\"",
        ),
        cred(
            "b",
            "private_key_file = \"rsa.pem\"\nsigning_alg = \"ES256\"",
        ),
        cred(
            "c",
            "private_key_file = \"missing.pem\"\nsigning_alg = \"HS256\"",
        ),
        cred(
            "d",
            "private_key_file = \"cert.pem\"\nsigning_alg = \"PS256\"\nclient_secret = \"s\"",
        ),
        cred("e", ""),
        cred(
            "ok",
            "private_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"",
        ),
    ]
    .concat();
    assert_eq!(
        problems(dir.path(), &toml),
        [
            "credential.a.private_key_file",
            "credential.b.private_key_file",
            "credential.c.signing_alg",
            "credential.c.private_key_file",
            "credential.d.client_secret",
            "credential.d.private_key_file",
            "credential.e.signing_alg",
            "credential.e.private_key_file",
        ]
    );
}

#[test]
fn two_credentials_may_not_share_a_token_store() {
    let dir = tempfile::tempdir().unwrap();
    let cred = |name: &str| {
        format!("[credential.{name}]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/t\"\ngrant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"rt\"\ntoken_store = \"shared.store\"\n")
    };
    let toml = cred("a") + &cred("b");
    assert_eq!(problems(dir.path(), &toml), ["credential.b.token_store"]);
}

#[test]
fn the_authorization_code_flow_and_its_keys_only_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let code = |extra: &str| {
        format!("[credential.gmo]\ntype = \"oauth2\"\ngrant = \"authorization_code\"\ntoken_url = \"https://as.test/token\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/cb\"\nclient_id = \"c\"\nclient_secret = \"s\"\ntoken_store = \"sessions\"\n{extra}")
    };
    let o = oauth2(
        dir.path(),
        &code("session_param = \"sessionId\"\nauthorize_secret = \"0123456789abcdef-start\"\n"),
    );
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("an authorization_code grant")
    };
    assert_eq!(flow.session_header.as_str(), "x-countersign-session");
    assert_eq!(flow.session_param.as_deref(), Some("sessionId"));
    assert_eq!(
        flow.authorize_secret.as_ref().map(|s| s.expose()),
        Some("0123456789abcdef-start")
    );
    assert!(
        !format!("{o:?}").contains("0123456789abcdef"),
        "Debug hides it"
    );

    assert_eq!(
        problems(
            dir.path(),
            &code("session_header = \"authorization\"\nsession_param = \"a b\"\nauthorize_secret = \"short\"\n")
        ),
        [
            "credential.gmo.session_header",
            "credential.gmo.session_param",
            "credential.gmo.authorize_secret",
        ]
    );
    let cc = "[credential.cc]\ntype = \"oauth2\"\ngrant = \"client_credentials\"\ntoken_url = \"https://as.test/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uri = \"https://app.test/cb\"\nsession_param = \"sessionId\"\n";
    assert_eq!(
        problems(dir.path(), cc),
        ["credential.cc.redirect_uri", "credential.cc.session_param"]
    );
}

#[test]
fn session_facts_name_plain_fields_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let code = |extra: &str| {
        format!("[credential.kr]\ntype = \"oauth2\"\ngrant = \"authorization_code\"\ntoken_url = \"https://as.test/token\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/cb\"\nclient_id = \"c\"\nclient_secret = \"s\"\ntoken_store = \"sessions\"\n{extra}")
    };
    let o = oauth2(
        dir.path(),
        &code("session_facts = [\"user_seq_no\", \"client_use_code\"]\nrevocation_url = \"https://as.test/revoke\"\n"),
    );
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("an authorization_code grant")
    };
    assert_eq!(flow.session_facts, ["user_seq_no", "client_use_code"]);
    assert_eq!(
        flow.revocation_url
            .as_ref()
            .map(|u| u.to_string())
            .as_deref(),
        Some("https://as.test/revoke")
    );

    let refused = validate(
        &code("session_facts = [\"access_token\", \"Refresh_Token\", \"id_token\", \"dpop_token\", \"user_seq_no\", \"user_seq_no\", \"a b\", \"\", \"scope\"]\nrevocation_url = \"ftp://as.test/revoke\"\n"),
        dir.path(),
    )
    .err()
    .unwrap();
    let found: Vec<(String, String)> = refused
        .problems
        .into_iter()
        .map(|p| (p.path, p.message))
        .collect();
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "credential.kr.session_facts[0]",
            "credential.kr.session_facts[1]",
            "credential.kr.session_facts[2]",
            "credential.kr.session_facts[3]",
            "credential.kr.session_facts[5]",
            "credential.kr.session_facts[6]",
            "credential.kr.session_facts[7]",
            "credential.kr.session_facts[8]",
            "credential.kr.revocation_url",
        ]
    );
    assert!(found[0].1.contains("names a token"), "{found:?}");
    assert!(found[4].1.contains("twice"), "{found:?}");
    // The entries are named by index, never quoted.
    for (_, message) in &found {
        assert!(
            !message.contains("user_seq_no") && !message.contains("Refresh_Token"),
            "{message}"
        );
    }

    let cc = "[credential.cc]\ntype = \"oauth2\"\ngrant = \"client_credentials\"\ntoken_url = \"https://as.test/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nsession_facts = [\"user_seq_no\"]\nrevocation_url = \"https://as.test/revoke\"\n";
    assert_eq!(
        problems(dir.path(), cc),
        [
            "credential.cc.session_facts",
            "credential.cc.revocation_url"
        ]
    );
}
