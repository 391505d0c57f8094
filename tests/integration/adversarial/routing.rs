//! Reaching past a route's `path_prefix` and `methods` with its credential:
//! on the route's own listener (which once took anything), with `..;` and
//! other dot segments a lenient upstream resolves (on the proxy, the route
//! listener and inside an intercepted tunnel), and by hiding a second key
//! parameter in the query of an issued-key route.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;

use crate::harness::*;
use crate::issued_key::{self, Issuer, Mode, SID, SPW};

/// Route `api`: host `api.example.test`, only GET and POST under `/v1`,
/// with its own listener and a bearer credential.
fn config(upstream: &str, unmatched: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
unmatched = "{unmatched}"

[credential.key]
type = "header"
bearer = "route-secret"

[[route]]
name = "api"
hosts = ["api.example.test"]
path_prefix = "/v1"
methods = ["GET", "POST"]
upstream = "{upstream}"
credential = "key"
listen = "127.0.0.1:0"
"#
    )
}

/// Paths that are `/admin` (or `/`) to Tomcat, Jetty, Spring or IIS.
const DOT_FORMS: &[&str] = &[
    "/v1/../admin",
    "/v1/..;/admin",
    "/v1/.;/admin",
    "/v1/%2e%2e;/admin",
    "/v1/..%3b/admin",
    "/v1/..;jsessionid=x/admin",
    "/v1/%252e%252e/admin",
    "/v1%2f..%2fadmin",
    "/v1/..%5cadmin",
    "/v1/%c0%ae%c0%ae/admin",
];

fn origin_form(method: Method, path: &str, host: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn assert_refused(answer: &Answer, status: u16, reason: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some(reason),
        "{what}: {answer:?}"
    );
}

#[tokio::test]
async fn the_route_listener_applies_the_routes_methods_and_prefix() {
    let upstream = Upstream::http().await;
    // Even with passthrough on, a route listener serves its route or nothing.
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "passthrough")).await;
    let addr = sidecar.app.route_addr("api").expect("route listener");
    let cases = [
        (Method::DELETE, "/v1/x"),
        (Method::PUT, "/v1"),
        (Method::GET, "/admin"),
        (Method::GET, "/v10/x"),
        (Method::GET, "/V1/x"),
        (Method::GET, "//v1/x"),
        (Method::GET, "/"),
    ];
    for (method, path) in cases {
        let what = format!("{method} {path}");
        let answer = send(addr, origin_form(method, path, "127.0.0.1")).await;
        assert_refused(&answer, 403, "no-route", &what);
        assert!(
            answer.body.contains("route `api` does not take"),
            "{what}: {}",
            answer.body
        );
    }
    for path in DOT_FORMS {
        let answer = send(addr, origin_form(Method::GET, path, "127.0.0.1")).await;
        assert_refused(&answer, 400, "bad-request", path);
        assert!(answer.body.contains("dot segments removed"), "{path}");
    }
    let nul = send(addr, origin_form(Method::GET, "/v1/x%00", "127.0.0.1")).await;
    assert_refused(&nul, 400, "bad-request", "NUL");
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    // What the route does take still goes through, signed.
    let ok = send(addr, origin_form(Method::POST, "/v1/x", "127.0.0.1")).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        upstream.last().header("authorization"),
        Some("Bearer route-secret")
    );
}

#[tokio::test]
async fn the_proxy_refuses_every_dot_segment_spelling_and_what_the_route_does_not_take() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    for path in DOT_FORMS {
        let url = format!("http://api.example.test{path}");
        let answer = send(sidecar.proxy(), get(&url)).await;
        assert_refused(&answer, 400, "bad-request", path);
    }
    let delete = Request::delete("http://api.example.test/v1/x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = send(sidecar.proxy(), delete).await;
    assert_refused(&answer, 403, "no-route", "DELETE");
    let answer = send(sidecar.proxy(), get("http://api.example.test/admin")).await;
    assert_refused(&answer, 403, "no-route", "/admin");
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
}

#[tokio::test]
async fn an_intercepted_tunnel_refuses_every_dot_segment_spelling() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let app_ca = std::fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap();
    let upstream_ca = ca.write_ca(dir.path());
    let toml = config(&upstream.https_url(), "deny")
        + &format!(
        "ca_file = \"{}\"\n\n[intercept]\nca_cert = \"ca/ca.pem\"\nca_key = \"ca/ca-key.pem\"\n",
        upstream_ca.display()
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    for path in DOT_FORMS {
        let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
            .await
            .unwrap();
        let req = origin_form(Method::GET, path, "api.example.test");
        let answer = https_over(tunnel, "api.example.test", &app_ca, req)
            .await
            .unwrap();
        assert_refused(&answer, 400, "bad-request", path);
    }
    // HTTP/2 inside the tunnel goes the same way.
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let req = Request::get("https://api.example.test/v1/..;/admin")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = h2_over(tunnel, "api.example.test", &app_ca, req)
        .await
        .unwrap();
    assert_refused(&answer, 400, "bad-request", "h2 ..;");
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let req = origin_form(Method::DELETE, "/v1/x", "api.example.test");
    let answer = https_over(tunnel, "api.example.test", &app_ca, req)
        .await
        .unwrap();
    assert_refused(&answer, 403, "no-route", "DELETE in the tunnel");
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
}

/// The AmiVoice recipe puts the key in the `authorization` parameter; the
/// app cannot add one a lenient server reads first or instead.
#[tokio::test]
async fn an_issued_key_parameter_cannot_be_smuggled_or_overridden() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let upstream = Upstream::http().await;
    let toml = issued_key::config(
        &issuer,
        &upstream.http_url(),
        &issued_key::amivoice(300_000, ""),
    );
    let sidecar = issued_key::start(&toml).await;
    for query in [
        "d=grammar;authorization=app",
        "d=grammar%26authorization%3Dapp",
    ] {
        let answer = issued_key::call(&sidecar, &format!("/v1/recognize?{query}")).await;
        assert_refused(&answer, 400, "unsignable-request", query);
        assert!(answer.body.contains("`authorization`"), "{}", answer.body);
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    let answer = issued_key::call(
        &sidecar,
        "/v1/recognize?Authorization=app&d=1&authoriz%2561tion=app",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = upstream.last().uri;
    let query = sent.query().unwrap();
    assert!(query.starts_with("d=1&authorization="), "{query}");
    assert!(!query.contains("app"), "{query}");
}
