//! Discovery against a real HTTP server on 127.0.0.1:0 that serves a
//! configuration document and a key set, counts what it is asked, and can
//! change its answers (a key rotation, a document for another issuer).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::*;
use crate::config::EgressAllow;
use crate::egress::OwnAddrs;

#[derive(Default)]
struct Served {
    document: StdMutex<String>,
    keys: StdMutex<String>,
    document_reads: AtomicUsize,
    jwks_reads: AtomicUsize,
}

const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

fn key_set(kids: &[&str]) -> String {
    let keys: Vec<_> = kids
        .iter()
        .map(|k| json!({"kty":"EC","crv":"P-256","kid":k,"x":P256_X,"y":P256_Y}))
        .collect();
    json!({ "keys": keys }).to_string()
}

async fn serve() -> (String, Arc<Served>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(Served::default());
    *served.document.lock().unwrap() = json!({
        "issuer": base,
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
    })
    .to_string();
    *served.keys.lock().unwrap() = key_set(&["k1"]);
    let state = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        let body = match req.uri().path() {
                            "/.well-known/openid-configuration" => {
                                state.document_reads.fetch_add(1, Ordering::SeqCst);
                                state.document.lock().unwrap().clone()
                            }
                            "/jwks" => {
                                state.jwks_reads.fetch_add(1, Ordering::SeqCst);
                                state.keys.lock().unwrap().clone()
                            }
                            _ => "not found".into(),
                        };
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (base, served)
}

fn discovery(issuer: &str) -> Discovery {
    let settings = UpstreamSettings {
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_idle: 4,
    };
    let egress = Arc::new(EgressPolicy::new(
        EgressAllow::default(),
        OwnAddrs::default(),
    ));
    Discovery::new(issuer, &[], None, settings, egress).unwrap()
}

#[test]
fn the_well_known_path_follows_the_issuer_path() {
    assert_eq!(
        well_known("https://bank.test"),
        "https://bank.test/.well-known/openid-configuration"
    );
    assert_eq!(
        well_known("https://bank.test/as/"),
        "https://bank.test/as/.well-known/openid-configuration"
    );
}

#[tokio::test]
async fn the_document_is_read_once_then_kept() {
    let (base, served) = serve().await;
    let d = discovery(&base);
    let m = d.metadata().await.unwrap();
    assert_eq!(
        m.token_endpoint(false).unwrap().to_string(),
        format!("{base}/token")
    );
    d.metadata().await.unwrap();
    assert_eq!(served.document_reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_document_for_another_issuer_is_refused() {
    let (base, served) = serve().await;
    *served.document.lock().unwrap() = json!({ "issuer": "https://evil.test" }).to_string();
    let e = discovery(&base).metadata().await.unwrap_err();
    assert!(
        matches!(&e, DiscoveryError::WrongIssuer(i) if i == "https://evil.test"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_and_a_page_that_is_not_json_are_named() {
    let (base, served) = serve().await;
    *served.document.lock().unwrap() = "<html>welcome</html>".into();
    let e = discovery(&base).metadata().await.unwrap_err();
    assert!(matches!(e, DiscoveryError::NotJson), "{e}");
    // A port nothing listens on (bound, then closed).
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let e = discovery(&format!("http://{addr}"))
        .metadata()
        .await
        .unwrap_err();
    assert!(matches!(e, DiscoveryError::Unreachable(_)), "{e}");
}

#[tokio::test]
async fn an_unknown_kid_reads_the_keys_again_but_not_more_than_every_interval() {
    let (base, served) = serve().await;
    let d = discovery(&base);
    assert_eq!(
        d.key(Some("k1"), "ES256").await.unwrap().kid.as_deref(),
        Some("k1")
    );
    assert_eq!(served.jwks_reads.load(Ordering::SeqCst), 1);
    // The provider rotates in k2.
    *served.keys.lock().unwrap() = key_set(&["k2"]);
    // Just read: a miss does not read again yet.
    let e = d.key(Some("k2"), "ES256").await.unwrap_err();
    assert!(matches!(e, DiscoveryError::NoKey(..)), "{e}");
    assert_eq!(served.jwks_reads.load(Ordering::SeqCst), 1);
    d.age_by(MISS_INTERVAL).await;
    assert!(d.key(Some("k2"), "ES256").await.is_ok());
    assert_eq!(served.jwks_reads.load(Ordering::SeqCst), 2);
    assert_eq!(
        served.document_reads.load(Ordering::SeqCst),
        2,
        "the document too"
    );
    // A key of the wrong kind for the algorithm is no key.
    assert!(d.key(Some("k2"), "PS256").await.is_err());
}

#[tokio::test]
async fn both_are_read_again_once_older_than_the_refresh_period() {
    let (base, served) = serve().await;
    let d = discovery(&base);
    d.key(None, "ES256").await.unwrap();
    d.age_by(REFRESH - Duration::from_secs(1)).await;
    d.key(None, "ES256").await.unwrap();
    assert_eq!(served.jwks_reads.load(Ordering::SeqCst), 1);
    d.age_by(Duration::from_secs(1)).await;
    d.key(None, "ES256").await.unwrap();
    assert_eq!(served.jwks_reads.load(Ordering::SeqCst), 2);
    assert_eq!(served.document_reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_a_kid_only_an_unambiguous_key_is_used() {
    let (base, served) = serve().await;
    *served.keys.lock().unwrap() = key_set(&["a", "b"]);
    let d = discovery(&base);
    assert!(d.key(None, "ES256").await.is_err());
    assert!(d.key(Some("b"), "ES256").await.is_ok());
}
