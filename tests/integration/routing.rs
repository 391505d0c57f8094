//! Routing policy, reverse listeners, header hygiene and the errors
//! countersign makes itself.

use std::time::Duration;

use crate::harness::*;

fn config(upstream: &str, unmatched: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
unmatched = "{unmatched}"
response_timeout = "300ms"
connect_timeout = "2s"

[credential.key]
type = "header"
headers = {{ "X-Api-Key" = "k-123" }}
bearer = "tok-456"

[[route]]
name = "api"
hosts = ["api.example.test", "*.svc.example.test"]
upstream = "{upstream}"
credential = "key"
listen = "127.0.0.1:0"
"#
    )
}

#[tokio::test]
async fn unmatched_hosts_are_denied_by_default_with_a_helpful_body() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let answer = send(sidecar.proxy(), get("http://elsewhere.test/x")).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("x-countersign-error"), Some("no-route"));
    assert!(answer.body.contains("[[route]]"), "{}", answer.body);
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn passthrough_forwards_unmatched_requests_without_any_credential() {
    let upstream = Upstream::http().await;
    let toml =
        config("http://127.0.0.1:9", "passthrough") + "\n[egress]\nallow = [\"127.0.0.1\"]\n";
    let sidecar = Sidecar::start(&toml).await;
    let url = format!("http://127.0.0.1:{}/open?q=1", upstream.addr.port());
    let mut req = get(&url);
    req.headers_mut().insert("x-app", "kept".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/open?q=1");
    assert_eq!(got.header("x-app"), Some("kept"));
    assert!(got.header("authorization").is_none());
    assert!(got.header("x-api-key").is_none());
}

#[tokio::test]
async fn header_credentials_replace_what_the_app_sent() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let mut req = get("http://a.svc.example.test/v1/items");
    req.headers_mut()
        .insert("x-api-key", "app-guess".parse().unwrap());
    req.headers_mut()
        .insert("authorization", "Basic YXBwOmFwcA==".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(
        got.headers.get_all("x-api-key").iter().collect::<Vec<_>>(),
        ["k-123"]
    );
    assert_eq!(
        got.headers
            .get_all("authorization")
            .iter()
            .collect::<Vec<_>>(),
        ["Bearer tok-456"]
    );
}

#[tokio::test]
async fn a_route_listener_takes_origin_form_and_rewrites_host() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let addr = sidecar
        .app
        .route_addr("api")
        .expect("the route has a listener");
    let req = http::Request::get("/v1/items?page=2")
        .header("host", format!("127.0.0.1:{}", addr.port()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = send(addr, req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/v1/items?page=2");
    assert_eq!(
        got.header("host"),
        Some(&*format!("127.0.0.1:{}", upstream.addr.port()))
    );
    assert_eq!(got.header("x-api-key"), Some("k-123"));
}

#[tokio::test]
async fn hop_by_hop_and_proxy_headers_are_not_forwarded_either_way() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let mut req = get("http://api.example.test/");
    let h = req.headers_mut();
    h.insert("proxy-authorization", "Basic c2VjcmV0".parse().unwrap());
    h.insert("connection", "keep-alive, x-private".parse().unwrap());
    h.insert("x-private", "for the proxy only".parse().unwrap());
    h.insert("x-end-to-end", "kept".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200);
    let got = upstream.last();
    assert!(got.header("proxy-authorization").is_none());
    assert!(got.header("x-private").is_none());
    assert_eq!(got.header("x-end-to-end"), Some("kept"));
    assert!(
        answer.header("x-hop").is_none(),
        "response hop-by-hop header leaked"
    );
    assert_eq!(answer.header("x-upstream"), Some("yes"));
}

#[tokio::test]
async fn origin_form_on_the_proxy_listener_is_a_clear_400() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let req = http::Request::get("/v1/items")
        .header("host", "api.example.test")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.header("x-countersign-error"), Some("bad-request"));
    assert!(answer.body.contains("absolute-form"), "{}", answer.body);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_naming_the_reason() {
    // Bind then drop: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sidecar = Sidecar::start(&config(&format!("http://127.0.0.1:{port}"), "deny")).await;
    let answer = send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(answer.status, 502);
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("upstream-unreachable")
    );
}

#[tokio::test]
async fn an_untrusted_upstream_certificate_is_a_502_upstream_tls() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    // No ca_file: the test CA is not trusted.
    let sidecar = Sidecar::start(&config(&upstream.https_url(), "deny")).await;
    let answer = send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("upstream-tls"));
    assert!(answer.body.contains("certificate"), "{}", answer.body);
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_slow_upstream_is_a_504() {
    let upstream = Upstream::http_with(Behaviour {
        delay: Some(Duration::from_secs(5)),
        ..Behaviour::default()
    })
    .await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let answer = send(sidecar.proxy(), get("http://api.example.test/slow")).await;
    assert_eq!(answer.status, 504);
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("upstream-timeout")
    );
}

#[tokio::test]
async fn upstream_connections_are_pooled_and_client_connections_kept_alive() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    // One app connection, several requests on it.
    let stream = tokio::net::TcpStream::connect(sidecar.proxy())
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for i in 0..5 {
        sender.ready().await.unwrap();
        let resp = sender
            .send_request(get(&format!("http://api.example.test/{i}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
    }
    assert_eq!(upstream.received().len(), 5);
    assert_eq!(
        upstream.connections(),
        1,
        "countersign reuses its upstream connection"
    );
}

#[tokio::test]
async fn passthrough_to_an_internal_address_is_refused_unless_allowed() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config("http://127.0.0.1:9", "passthrough")).await;
    for url in [
        format!("http://127.0.0.1:{}/", upstream.addr.port()),
        format!("http://localhost:{}/", upstream.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let answer = send(sidecar.proxy(), get(&url)).await;
        assert_eq!(answer.status, 403, "{url}: {answer:?}");
        assert_eq!(
            answer.header("x-countersign-error"),
            Some("egress-denied"),
            "{url}"
        );
    }
    // countersign's own listener, even when loopback is allowed.
    let toml =
        config("http://127.0.0.1:9", "passthrough") + "\n[egress]\nallow = [\"127.0.0.0/8\"]\n";
    let open = Sidecar::start(&toml).await;
    let own = format!("http://127.0.0.1:{}/", open.proxy().port());
    let answer = send(open.proxy(), get(&own)).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.body.contains("own listener"), "{}", answer.body);
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn upstream_redirects_are_passed_back_not_followed() {
    let upstream = Upstream::http_with(Behaviour {
        redirect_to: Some("http://elsewhere.test/steal".into()),
        ..Behaviour::default()
    })
    .await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "deny")).await;
    let answer = send(sidecar.proxy(), get("http://api.example.test/moved")).await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        Some("http://elsewhere.test/steal")
    );
    assert_eq!(upstream.received().len(), 1);
}

/// A path with dot segments could leave a route's `path_prefix` at an
/// upstream that resolves them, carrying the route's credential: refused.
#[tokio::test]
async fn dot_segments_are_refused_before_routing() {
    let upstream = Upstream::http().await;
    let toml = config(&upstream.http_url(), "deny").replace(
        "credential = \"key\"",
        "credential = \"key\"\npath_prefix = \"/v2\"",
    );
    let sidecar = Sidecar::start(&toml).await;
    for path in ["/v2/../admin", "/v2/%2e%2e/admin", "/v2%2F..%2Fadmin"] {
        let answer = send(
            sidecar.proxy(),
            get(&format!("http://api.example.test{path}")),
        )
        .await;
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert!(
            answer.body.contains("dot segments removed"),
            "{}",
            answer.body
        );
    }
    assert!(upstream.received().is_empty());
    let fine = send(sidecar.proxy(), get("http://api.example.test/v2/a..b")).await;
    assert_eq!(fine.status, 200, "{fine:?}");
}
