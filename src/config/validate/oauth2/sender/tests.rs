//! `dpop`, `dpop_alg`, `certificate_bound`, `self_signed_tls_client_auth`
//! and the rule that a route presents the certificate its credential's
//! tokens are bound to.

use std::path::Path;

use crate::config::validate::validate;
use crate::config::{ClientAuth, CredentialConfig, DpopAlg, OAuth2Config};

/// (path, message) of every problem.
fn problems(dir: &Path, toml: &str) -> Vec<(String, String)> {
    match validate(toml, dir) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect(),
    }
}

fn paths(dir: &Path, toml: &str) -> Vec<String> {
    problems(dir, toml).into_iter().map(|(p, _)| p).collect()
}

fn credential(dir: &Path, toml: &str, name: &str) -> OAuth2Config {
    let mut config = validate(toml, dir).unwrap_or_else(|e| panic!("{e}"));
    match config.credentials.remove(name) {
        Some(CredentialConfig::OAuth2(o)) => *o,
        _ => panic!("an oauth2 credential"),
    }
}

fn cred(name: &str, extra: &str) -> String {
    format!("[credential.{name}]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/t\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{extra}\n")
}

#[test]
fn dpop_takes_es256_by_default_or_eddsa() {
    let dir = tempfile::tempdir().unwrap();
    let toml = [
        cred("plain", ""),
        cred("es", "dpop = true"),
        cred("ed", "dpop = true\ndpop_alg = \"EdDSA\""),
        cred("off", "dpop = false"),
    ]
    .concat();
    let get = |name| credential(dir.path(), &toml, name);
    assert_eq!(get("plain").dpop, None);
    assert_eq!(get("es").dpop, Some(DpopAlg::Es256));
    assert_eq!(get("ed").dpop, Some(DpopAlg::EdDsa));
    assert_eq!(get("off").dpop, None);
}

#[test]
fn dpop_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let toml = [
        cred("a", "dpop_alg = \"ES256\""),
        cred("b", "dpop = true\ndpop_alg = \"RS256\""),
    ]
    .concat();
    let found = problems(dir.path(), &toml);
    assert_eq!(
        found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["credential.a.dpop_alg", "credential.b.dpop_alg"]
    );
    assert!(found[0].1.contains("only used with dpop = true"));
    assert!(found[1].1.contains("\"EdDSA\""), "{}", found[1].1);
}

#[test]
fn a_rotating_grant_with_a_shared_store_cannot_be_dpop_bound() {
    let dir = tempfile::tempdir().unwrap();
    let refresh = "[credential.r]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/t\"\ngrant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\ndpop = true\n";
    let store = "[store]\nurl = \"redis://127.0.0.1:6379\"\n";
    let found = problems(dir.path(), &format!("{store}{refresh}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "credential.r.dpop");
    assert!(found[0]
        .1
        .contains("each replica has a DPoP key of its own"));
    // client_credentials: each replica fetches its own token.
    let cc = cred("cc", "dpop = true");
    assert_eq!(
        paths(dir.path(), &format!("{store}{cc}")),
        Vec::<String>::new()
    );
}

/// Writes a self-signed client certificate and its key as `NAME.pem` and
/// `NAME.key`.
fn client_cert(dir: &Path, name: &str) {
    let cert = rcgen::generate_simple_self_signed(vec![format!("{name}.client.test")]).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        cert.signing_key.serialize_pem(),
    )
    .unwrap();
}

fn route(i: usize, credential: &str, cert: Option<&str>) -> String {
    let cert = cert.map_or(String::new(), |c| {
        format!("client_cert = \"{c}.pem\"\nclient_key = \"{c}.key\"\n")
    });
    format!("[[route]]\nname = \"r{i}\"\nhosts = [\"r{i}.test\"]\nupstream = \"https://api.test\"\ncredential = \"{credential}\"\n{cert}")
}

#[test]
fn a_route_must_present_the_certificate_its_tokens_are_bound_to() {
    let dir = tempfile::tempdir().unwrap();
    client_cert(dir.path(), "bound");
    client_cert(dir.path(), "other");
    let bound = cred(
        "bank",
        "certificate_bound = true\nclient_cert = \"bound.pem\"\nclient_key = \"bound.key\"",
    );
    let ok = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n{bound}{}",
        route(0, "bank", Some("bound"))
    );
    assert_eq!(paths(dir.path(), &ok), Vec::<String>::new());
    assert!(credential(dir.path(), &ok, "bank").certificate_bound);

    let bad = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n{bound}{}{}{}",
        route(0, "bank", Some("bound")),
        route(1, "bank", Some("other")),
        route(2, "bank", None),
    );
    let found = problems(dir.path(), &bad);
    assert_eq!(
        found.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["route[1].client_cert", "route[2].client_cert"]
    );
    assert!(found[0]
        .1
        .contains("is not the certificate credential `bank`'s tokens are bound to"));
    assert!(found[1]
        .1
        .starts_with("missing; credential `bank` has certificate-bound tokens"));
}

#[test]
fn certificate_bound_needs_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let found = paths(dir.path(), &cred("bank", "certificate_bound = true"));
    assert_eq!(found, ["credential.bank.client_cert"]);
}

#[test]
fn self_signed_tls_client_auth_is_tls_client_auth_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    client_cert(dir.path(), "me");
    let toml = "[credential.bank]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/t\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_auth = \"self_signed_tls_client_auth\"\n";
    assert_eq!(paths(dir.path(), toml), ["credential.bank.client_cert"]);
    let with_cert = format!("{toml}client_cert = \"me.pem\"\nclient_key = \"me.key\"\n");
    let o = credential(dir.path(), &with_cert, "bank");
    assert!(matches!(
        o.client_auth,
        ClientAuth::TlsClientAuth { self_signed: true }
    ));
    let secret = format!("{with_cert}client_secret = \"s\"\n");
    assert_eq!(
        paths(dir.path(), &secret),
        ["credential.bank.client_secret"]
    );
}
