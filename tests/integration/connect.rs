//! HTTPS_PROXY clients: CONNECT to a routed host is intercepted with a leaf
//! from countersign's CA and signed; unrouted hosts are refused, or tunnelled
//! opaquely when allow-listed; internal destinations are refused.

use std::path::Path;

use crate::harness::*;

#[tokio::test]
async fn an_https_proxy_client_gets_its_request_signed() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting(&upstream, &ca, "").await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let mut req = get("/v1/items?page=1");
    req.headers_mut()
        .insert("host", "api.example.test".parse().unwrap());
    req.headers_mut()
        .insert("authorization", "Bearer app-value".parse().unwrap());
    let answer = https_over(tunnel, "api.example.test", &app_ca, req)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/v1/items?page=1");
    assert_eq!(
        got.header("authorization"),
        Some("Bearer intercepted-token")
    );
}

#[tokio::test]
async fn the_app_must_trust_the_local_ca() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, _) = intercepting(&upstream, &ca, "").await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let other = TestCa::new();
    let err = https_over(tunnel, "api.example.test", &other.ca_pem, get("/"))
        .await
        .unwrap_err();
    assert!(err.starts_with("TLS"), "{err}");
    assert!(upstream.received().is_empty());
}

/// An app that offers h2 by ALPN inside the tunnel gets HTTP/2; its
/// requests are signed like any other and reach the upstream over HTTP/1.1.
#[tokio::test]
async fn an_h2_app_inside_the_tunnel_gets_its_requests_signed() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting(&upstream, &ca, "").await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let req = http::Request::post("https://api.example.test/v1/items?page=2")
        .header("authorization", "Bearer app-value")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"n\":1}",
        )))
        .unwrap();
    let answer = h2_over(tunnel, "api.example.test", &app_ca, req)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/v1/items?page=2");
    assert_eq!(
        got.header("authorization"),
        Some("Bearer intercepted-token")
    );
    assert_eq!(got.body, b"{\"n\":1}");
}

/// A tunnel that never starts its TLS handshake is closed after
/// `client_header_timeout`, like a connection that never sends its head.
#[tokio::test]
async fn a_silent_intercepted_tunnel_is_closed() {
    use tokio::io::AsyncReadExt;
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, _) = intercepting(&upstream, &ca, "").await;
    let mut tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), tunnel.read(&mut buf))
        .await
        .expect("countersign closes the tunnel");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn unrouted_connects_are_refused_by_default() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, _) = intercepting(&upstream, &ca, "").await;
    let refused = connect_tunnel(sidecar.proxy(), "elsewhere.test:443")
        .await
        .unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused.contains("x-countersign-error: connect-denied"),
        "{refused}"
    );
}

#[tokio::test]
async fn allow_listed_connects_are_tunnelled_without_interception() {
    let ca = TestCa::new();
    let direct = Upstream::https(&ca).await;
    let extra = "\n[connect]\ntunnel = [\"localhost\"]\n[egress]\nallow = [\"localhost\"]\n";
    let (sidecar, _) = intercepting(&direct, &ca, extra).await;
    let target = format!("localhost:{}", direct.addr.port());
    let tunnel = connect_tunnel(sidecar.proxy(), &target).await.unwrap();
    // The app sees the upstream's own certificate: nothing was intercepted.
    let answer = https_over(tunnel, "localhost", &ca.ca_pem, get("/opaque"))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let got = direct.last();
    assert_eq!(got.uri.path(), "/opaque");
    assert!(got.header("authorization").is_none());
}

#[tokio::test]
async fn internal_and_own_destinations_are_refused_even_when_listed_for_tunnels() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let extra =
        "\n[connect]\ntunnel = [\"127.0.0.1\", \"169.254.169.254\", \"localhost\", \"[::1]\"]\n";
    let (sidecar, _) = intercepting(&upstream, &ca, extra).await;
    let port = upstream.addr.port();
    for target in [
        format!("127.0.0.1:{port}"),
        "169.254.169.254:80".to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let refused = connect_tunnel(sidecar.proxy(), &target).await.unwrap_err();
        assert!(refused.starts_with("HTTP/1.1 403"), "{target}: {refused}");
        assert!(refused.contains("egress-denied"), "{target}: {refused}");
    }
    // Allowing loopback never allows countersign itself.
    let extra = "\n[connect]\ntunnel = [\"127.0.0.1\"]\n[egress]\nallow = [\"127.0.0.1\"]\n";
    let (open, _) = intercepting(&upstream, &ca, extra).await;
    let own = format!("127.0.0.1:{}", open.proxy().port());
    let refused = connect_tunnel(open.proxy(), &own).await.unwrap_err();
    assert!(refused.contains("egress-denied"), "{refused}");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_routed_connect_without_a_ca_is_refused_with_instructions() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"api\"\nhosts = [\"api.example.test\"]\nupstream = \"{}\"\n",
        upstream.https_url()
    );
    let sidecar = Sidecar::start(&toml).await;
    let refused = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("intercept-unavailable"), "{refused}");
}

/// curl is a real HTTPS_PROXY client: it sends CONNECT and verifies the
/// minted leaf against the CA it is told to trust.
#[tokio::test]
async fn curl_through_https_proxy_is_signed() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting(&upstream, &ca, "").await;
    let ca_file = sidecar.dir.path().join("app-trusts.pem");
    std::fs::write(&ca_file, app_ca).unwrap();
    let proxy = format!("http://{}", sidecar.proxy());
    let out = run_curl(&proxy, &ca_file, "https://api.example.test/v2/curl?x=1").await;
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("upstream saw"), "{stdout}");
    // curl (built with nghttp2, as Debian's is) offers h2 and gets it.
    assert!(stdout.ends_with("\nhttp 2"), "{stdout}");
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/v2/curl?x=1");
    assert_eq!(
        got.header("authorization"),
        Some("Bearer intercepted-token")
    );
}

async fn run_curl(proxy: &str, ca_file: &Path, url: &str) -> std::process::Output {
    tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(["--write-out", "\nhttp %{http_version}", "--cacert"])
        .arg(ca_file)
        .arg(url)
        .env("HTTPS_PROXY", proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .await
        .expect("curl is installed (.ci/run installs it)")
}
