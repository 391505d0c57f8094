//! The `issuer` and FAPI keys: what they stand in for, and each problem at
//! its key path.

use std::path::Path;

use super::super::super::validate;
use crate::config::{CredentialConfig, Grant, OAuth2Config};

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

const CODE_FLOW: &str = r#"
[credential.bank]
type = "oauth2"
grant = "authorization_code"
client_id = "c"
client_secret = "s"
redirect_uri = "https://app.test/oauth2/bank/callback"
token_store = "sessions"
"#;

#[test]
fn an_issuer_stands_in_for_the_token_and_authorize_urls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let o = oauth2(
        dir.path(),
        &format!("{CODE_FLOW}issuer = \"https://bank.test/as\"\n"),
    );
    assert_eq!(o.issuer.as_deref(), Some("https://bank.test/as"));
    assert!(o.token_url.is_none());
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("the code flow")
    };
    assert!(flow.authorize_url.is_none());
    // Explicit endpoints are kept, and used instead of the discovered ones.
    let o = oauth2(
        dir.path(),
        &format!("{CODE_FLOW}issuer = \"https://bank.test/as\"\ntoken_url = \"https://bank.test/t\"\nauthorize_url = \"https://bank.test/a\"\n"),
    );
    assert_eq!(o.token_url.unwrap(), "https://bank.test/t");
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("the code flow")
    };
    assert_eq!(flow.authorize_url.as_ref().unwrap(), "https://bank.test/a");
}

#[test]
fn without_an_issuer_both_urls_are_needed_and_a_bad_issuer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    assert_eq!(
        problems(dir.path(), CODE_FLOW),
        ["credential.bank.token_url", "credential.bank.authorize_url"]
    );
    for bad in ["ftp://bank.test", "https://bank.test/as?x=1", "bank.test"] {
        assert_eq!(
            problems(dir.path(), &format!("{CODE_FLOW}issuer = \"{bad}\"\n")),
            ["credential.bank.issuer"],
            "{bad}"
        );
    }
}

#[test]
fn the_assertion_audience_defaults_to_the_issuer_without_a_token_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.pem"),
        include_str!("../../../../../tests/integration/oauth2/test-ec-key.pem"),
    )
    .unwrap();
    let toml = r#"
        [credential.bank]
        type = "oauth2"
        issuer = "https://bank.test/as"
        grant = "client_credentials"
        client_id = "c"
        client_auth = "private_key_jwt"
        signing_alg = "ES256"
        private_key_file = "k.pem"
    "#;
    let o = oauth2(dir.path(), toml);
    let crate::config::ClientAuth::PrivateKeyJwt(key) = &o.client_auth else {
        panic!("private_key_jwt")
    };
    assert_eq!(key.audience, "https://bank.test/as");
}

fn with_keys(dir: &Path, extra: &str) -> String {
    std::fs::write(
        dir.join("rsa.pem"),
        include_str!("../../../../../tests/integration/oauth2/test-rsa-key.pem"),
    )
    .unwrap();
    let _ = std::fs::create_dir(dir.join("sessions"));
    format!("{CODE_FLOW}issuer = \"https://bank.test/as\"\nscope = \"openid accounts\"\n{extra}\n")
}

#[test]
fn a_signed_pushed_hybrid_flow_is_read_with_the_issuer_as_audience() {
    let dir = tempfile::tempdir().unwrap();
    let toml = with_keys(
        dir.path(),
        "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nkid = \"k1\"\npar = true\nresponse_type = \"code id_token\"\nresponse_mode = \"form_post\"",
    );
    let o = oauth2(dir.path(), &toml);
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("the code flow")
    };
    let key = flow.fapi.request_object.as_ref().unwrap();
    assert_eq!(key.audience, "https://bank.test/as");
    assert_eq!(key.kid.as_deref(), Some("k1"));
    assert_eq!(
        flow.fapi.request_object_lifetime,
        std::time::Duration::from_secs(300),
        "5 minutes unless set"
    );
    assert!(flow.fapi.par && flow.fapi.hybrid);
    assert_eq!(
        flow.fapi.response_mode,
        crate::config::ResponseMode::FormPost
    );
    // The client still authenticates with its secret: the key is only for
    // the request object.
    assert!(matches!(
        o.client_auth,
        crate::config::ClientAuth::SecretBasic(_)
    ));
}

#[test]
fn each_fapi_problem_is_named_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"RS256\"",
            &["credential.bank.signing_alg"],
        ),
        (
            "request_object = \"signed\"",
            &[
                "credential.bank.signing_alg",
                "credential.bank.private_key_file",
            ],
        ),
        (
            "request_object = \"unsigned\"",
            &["credential.bank.request_object"],
        ),
        (
            "response_type = \"token\"",
            &["credential.bank.response_type"],
        ),
        (
            "response_type = \"code id_token\"\nresponse_mode = \"query\"",
            &["credential.bank.response_mode"],
        ),
        (
            "response_mode = \"query.jwt\"",
            &["credential.bank.response_mode"],
        ),
        // Keys of the private_key_jwt assertion without it, or a request object.
        ("signing_alg = \"PS256\"", &["credential.bank.signing_alg"]),
        // The request object's audience and lifetime: only with one, and
        // the lifetime within FAPI's 60 minutes.
        (
            "request_object_lifetime = \"61m\"\nrequest_object_audience = \"x\"",
            &[
                "credential.bank.request_object_audience",
                "credential.bank.request_object_lifetime",
            ],
        ),
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_lifetime = \"61m\"",
            &["credential.bank.request_object_lifetime"],
        ),
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_lifetime = \"0s\"",
            &["credential.bank.request_object_lifetime"],
        ),
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_lifetime = \"5\"",
            &["credential.bank.request_object_lifetime"],
        ),
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_audience = \"\"",
            &["credential.bank.request_object_audience"],
        ),
        (
            "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_audience = \"https://a b\"",
            &["credential.bank.request_object_audience"],
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            problems(dir.path(), &with_keys(dir.path(), extra)),
            *expected,
            "{extra}"
        );
    }
    // The hybrid flow needs `openid`; each key needing the issuer says so.
    let no_openid = with_keys(dir.path(), "response_type = \"code id_token\"")
        .replace("scope = \"openid accounts\"", "scope = \"accounts\"");
    assert_eq!(problems(dir.path(), &no_openid), ["credential.bank.scope"]);
    let no_issuer = format!(
        "{CODE_FLOW}token_url = \"https://bank.test/t\"\nauthorize_url = \"https://bank.test/a\"\npar = true\n"
    );
    assert_eq!(problems(dir.path(), &no_issuer), ["credential.bank.issuer"]);
    let jarm_no_issuer = no_issuer.replace("par = true", "response_mode = \"jwt\"");
    assert_eq!(
        problems(dir.path(), &jarm_no_issuer),
        ["credential.bank.issuer"]
    );
    let o = oauth2(
        dir.path(),
        &with_keys(dir.path(), "response_mode = \"form_post.jwt\""),
    );
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("the code flow")
    };
    assert_eq!(
        flow.fapi.response_mode,
        crate::config::ResponseMode::FormPostJwt
    );
    // Only the authorization-code flow has an authorization request.
    let cc = "[credential.c]\ntype = \"oauth2\"\ntoken_url = \"https://bank.test/t\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\npar = true\n";
    assert_eq!(problems(dir.path(), cc), ["credential.c.par"]);
}

/// `request_object_audience` replaces the issuer as the request object's
/// `aud`; `request_object_lifetime` is kept, up to 60 minutes.
#[test]
fn the_request_objects_audience_and_lifetime_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let toml = with_keys(
        dir.path(),
        "request_object = \"signed\"\nprivate_key_file = \"rsa.pem\"\nsigning_alg = \"PS256\"\nrequest_object_audience = \"https://bank.test/ob\"\nrequest_object_lifetime = \"60m\"",
    );
    let o = oauth2(dir.path(), &toml);
    let Grant::AuthorizationCode(flow) = &o.grant else {
        panic!("the code flow")
    };
    let key = flow.fapi.request_object.as_ref().unwrap();
    assert_eq!(key.audience, "https://bank.test/ob");
    assert_eq!(
        flow.fapi.request_object_lifetime,
        std::time::Duration::from_secs(3600)
    );
}
