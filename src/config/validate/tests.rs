//! One test per validation rule, by the key paths it reports.

use super::*;
use crate::config::{CredentialConfig, Unmatched};

/// The key paths of every problem in `toml`.
fn problems(toml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    match validate(toml, dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
    }
}

fn messages(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    validate(toml, dir.path()).unwrap_err().to_string()
}

const ROUTE: &str =
    "[[route]]\nname = \"r\"\nhosts = [\"a.test\"]\nupstream = \"https://a.test\"\n";

#[test]
fn an_empty_file_is_a_valid_deny_everything_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let c = validate("", dir.path()).unwrap();
    assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:3128");
    assert_eq!(c.proxy.unmatched, Unmatched::Deny);
    assert_eq!(c.proxy.max_body, 64 << 20);
    assert_eq!(c.proxy.spool_memory, 1 << 20);
}

#[test]
fn syntax_errors_give_a_position_but_never_quote_the_line() {
    let e = messages("[credential.x]\ntype = \"header\"\nbearer = \"sekrit-value\n");
    assert!(e.contains("line 3"), "{e}");
    assert!(!e.contains("sekrit"), "{e}");
}

#[test]
fn every_section_reports_its_own_shape_errors() {
    let toml = "[proxy]\nlisten = 5\n[[route]]\nname = \"a\"\nbogus = 1\n[credential.c]\ntype = \"header\"\nextra = 1\n[surprise]\n";
    assert_eq!(
        problems(toml),
        ["proxy.listen", "route[0]", "surprise", "credential.c"]
    );
}

#[test]
fn proxy_values_are_checked() {
    let toml = "[proxy]\nlisten = \"localhost\"\nunmatched = \"maybe\"\nmax_body = 0\nspool_memory = \"1 furlong\"\nspool_dir = \"/definitely/not/here\"\nconnect_timeout = \"0s\"\nidle_timeout = \"5\"\n";
    assert_eq!(
        problems(toml),
        [
            "proxy.listen",
            "proxy.unmatched",
            "proxy.spool_memory",
            "proxy.max_body",
            "proxy.spool_dir",
            "proxy.connect_timeout",
            "proxy.idle_timeout"
        ]
    );
}

#[test]
fn idle_connections_is_a_count_from_zero_and_defaults_to_64() {
    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str| validate(toml, dir.path()).unwrap().proxy.idle_connections;
    assert_eq!(load(""), 64);
    assert_eq!(load("[proxy]\nidle_connections = 0\n"), 0);
    assert_eq!(load("[proxy]\nidle_connections = 100000\n"), 100_000);
    for bad in ["-1", "100001"] {
        let toml = format!("[proxy]\nidle_connections = {bad}\n");
        assert_eq!(problems(&toml), ["proxy.idle_connections"]);
        assert!(
            messages(&toml).contains("must be between 0 and 100000"),
            "{}",
            messages(&toml)
        );
    }
}

#[test]
fn credential_rules() {
    let toml = r#"
        [credential.none]
        api_key = "k"
        [credential.odd]
        type = "kerberos"
        [credential.colon]
        type = "paypay-opa"
        api_key = "a:b"
        api_secret = ""
        nonce_length = 4
        [credential.twice]
        type = "header"
        bearer = "t"
        basic = { username = "u", password = "p" }
        [credential.nothing]
        type = "header"
        [credential.badheader]
        type = "header"
        headers = { "Content-Length" = "1", "bad name" = "v", "X-Ok" = "line\nbreak" }
    "#;
    assert_eq!(
        problems(toml),
        [
            "credential.badheader.headers.Content-Length",
            "credential.badheader.headers.X-Ok",
            "credential.badheader.headers.bad name",
            "credential.colon.api_secret",
            "credential.colon.nonce_length",
            "credential.colon.api_key",
            "credential.none.type",
            "credential.nothing",
            "credential.odd.type",
            "credential.twice",
        ]
    );
}

#[test]
fn basic_auth_is_built_from_username_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[credential.b]\ntype = \"header\"\nbasic = { username = \"Aladdin\", password = \"open sesame\" }\n";
    let c = validate(toml, dir.path()).unwrap();
    let CredentialConfig::Header { headers } = &c.credentials["b"] else {
        panic!()
    };
    assert_eq!(headers[0].1, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert!(!format!("{:?}", c.credentials).contains("QWxhZGRpbjpvcGVuIHNlc2FtZQ"));
}

#[test]
fn route_rules() {
    let toml = r#"
        [[route]]
        hosts = ["a.test:443", "*.", "ok.test"]
        port = 70000
        path_prefix = "v2"
        methods = ["GET", "N O"]
        upstream = "https://u@x.test"
        credential = "ghost"
        [[route]]
        name = "no/slash"
        upstream = "ftp://x"
        [[route]]
        name = "q"
        hosts = ["q.test"]
        upstream = "http://q.test/base?x=1"
        ca_file = "missing.pem"
    "#;
    assert_eq!(
        problems(toml),
        [
            "route[0].name",
            "route[0].hosts[0]",
            "route[0].hosts[1]",
            "route[0].port",
            "route[0].path_prefix",
            "route[0].methods",
            "route[0].upstream",
            "route[0].credential",
            "route[1].name",
            "route[1].hosts",
            "route[1].upstream",
            "route[2].upstream",
            "route[2].ca_file",
        ]
    );
}

#[test]
fn equal_precedence_is_a_tie_but_methods_or_prefixes_break_it() {
    let tie = format!("{ROUTE}{}", ROUTE.replace("\"r\"", "\"s\""));
    assert_eq!(problems(&tie), ["route[1]"]);
    let named_twice = format!("{ROUTE}{}", ROUTE.replace("a.test\"]", "b.test\"]"));
    assert_eq!(problems(&named_twice), ["route[1].name"]);
    let by_method = format!(
        "{}methods = [\"GET\"]\n{}methods = [\"POST\"]\n",
        ROUTE,
        ROUTE.replace("\"r\"", "\"s\"")
    );
    assert!(problems(&by_method).is_empty());
    let overlapping_methods = by_method.replace("[\"POST\"]", "[\"POST\", \"GET\"]");
    assert_eq!(problems(&overlapping_methods), ["route[1]"]);
    let by_prefix = format!(
        "{}path_prefix = \"/v2\"\n{}",
        ROUTE,
        ROUTE.replace("\"r\"", "\"s\"")
    );
    assert!(problems(&by_prefix).is_empty());
}

#[test]
fn listeners_must_not_collide() {
    let toml =
        format!("[proxy]\nlisten = \"127.0.0.1:3128\"\n{ROUTE}listen = \"127.0.0.1:3128\"\n");
    assert_eq!(problems(&toml), ["route[0].listen"]);
    let zero =
        "[proxy]\nlisten = \"127.0.0.1:0\"\n".to_string() + ROUTE + "listen = \"127.0.0.1:0\"\n";
    assert!(problems(&zero).is_empty());
}

#[test]
fn upstream_base_path_and_port_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let toml = ROUTE.replace("https://a.test", "https://A.test:8443/base/");
    let c = validate(&toml, dir.path()).unwrap();
    let up = &c.routes[0].upstream;
    assert_eq!(
        (up.host.as_str(), up.port, up.base_path.as_str()),
        ("a.test", 8443, "/base")
    );
    assert_eq!(up.authority(), "a.test:8443");
}

/// A route's own listener applies `path_prefix` and `methods` like the
/// proxy does, so a listen-only route with them is fine; what could never
/// match, or is matched differently than it reads, is refused.
#[test]
fn prefixes_are_plain_methods_non_empty_and_port_needs_hosts() {
    let listen_only = "[[route]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\nupstream = \"https://a.test\"\npath_prefix = \"/v1\"\nmethods = [\"GET\", \"POST\"]\n";
    assert!(problems(listen_only).is_empty());
    for prefix in ["/v1/..", "/v%31", "/v1;x", "//v1", "/v1\\\\x"] {
        let toml = format!("{ROUTE}path_prefix = \"{prefix}\"\n");
        assert_eq!(problems(&toml), ["route[0].path_prefix"], "{prefix}");
    }
    assert_eq!(
        problems(&format!("{ROUTE}methods = []\n")),
        ["route[0].methods"]
    );
    let port_alone = listen_only.replace("methods", "port = 443\nmethods");
    assert_eq!(problems(&port_alone), ["route[0].port"]);
}

#[test]
fn resend_closed_takes_three_words_and_never_echoes_another() {
    use crate::config::Resend;
    let dir = tempfile::tempdir().unwrap();
    for (word, want) in [
        ("any", Resend::Any),
        ("idempotent", Resend::Idempotent),
        ("never", Resend::Never),
    ] {
        let c = validate(&format!("{ROUTE}resend_closed = \"{word}\"\n"), dir.path()).unwrap();
        assert_eq!(c.routes[0].resend_closed, want);
    }
    assert_eq!(
        validate(ROUTE, dir.path()).unwrap().routes[0].resend_closed,
        Resend::Any
    );
    let toml = format!("{ROUTE}resend_closed = \"Pr0dSecret\"\n");
    assert_eq!(problems(&toml), ["route[0].resend_closed"]);
    assert!(!messages(&toml).contains("Pr0dSecret"));
}

#[test]
fn http2_is_on_by_default_can_be_turned_off_and_needs_tls_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    assert!(validate(ROUTE, dir.path()).unwrap().routes[0].http2);
    let off = validate(&format!("{ROUTE}http2 = false\n"), dir.path()).unwrap();
    assert!(!off.routes[0].http2);
    let plain = "[[route]]\nname = \"r\"\nhosts = [\"a.test\"]\nupstream = \"http://a.test\"\n";
    assert!(
        validate(plain, dir.path()).is_ok(),
        "the default is fine on http://"
    );
    let asked = format!("{plain}http2 = true\n");
    assert_eq!(problems(&asked), ["route[0].http2"]);
    assert!(
        messages(&asked).contains("https://"),
        "{}",
        messages(&asked)
    );
    assert!(!problems(&format!("{ROUTE}http2 = \"yes\"\n")).is_empty());
}
