//! An issued key the upstream echoes back in a response header (a
//! redirect to the request URI) never reaches the app.

use bytes::Bytes;
use http_body_util::Full;

use crate::handler_server::serve;
use crate::issued_key::{amivoice, call, config, start, Issuer, Mode, SID, SPW};

/// An API that redirects every request to its own URI, and echoes the URI
/// in every header that can carry one.
async fn echoing_api() -> String {
    let addr = serve(
        None,
        |req: http::Request<hyper::body::Incoming>| async move {
            let pq = req.uri().path_and_query().unwrap().to_string();
            let key = crate::handler_server::form_decode(req.uri().query().unwrap_or(""))
                .remove("authorization")
                .unwrap_or_default();
            http::Response::builder()
                .status(302)
                .header("location", format!("http://amivoice.test{pq}"))
                .header("content-location", pq.as_str())
                .header(
                    "link",
                    format!("<{pq}>; rel=\"self\", </v1/other>; rel=\"next\""),
                )
                .header("refresh", format!("0; url={pq}"))
                .header("x-request-url", pq.as_str())
                .header("x-key", key)
                .header("x-kept", "yes")
                .body(Full::new(Bytes::new()))
                .unwrap()
        },
    )
    .await;
    format!("http://127.0.0.1:{}", addr.port())
}

#[tokio::test]
async fn an_issued_key_echoed_in_response_headers_never_reaches_the_app() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = echoing_api().await;
    let sidecar = start(&config(&issuer, &api, &amivoice(300_000, ""))).await;
    let answer = call(&sidecar, "/v1/recognize?d=grammar&u=1").await;
    assert_eq!(answer.status, 302, "{answer:?}");
    let key = issuer.keys().pop().expect("a key was issued");
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    for (name, value) in &answer.headers {
        let value = value.to_str().unwrap();
        assert!(
            !value.contains(&key)
                && !value
                    .to_ascii_uppercase()
                    .contains(&encoded.to_ascii_uppercase()),
            "{name}: {value}"
        );
    }
    // URLs keep everything but the key, so the redirect still works.
    assert_eq!(
        answer.header("location"),
        Some("http://amivoice.test/v1/recognize?d=grammar&u=1")
    );
    assert_eq!(
        answer.header("content-location"),
        Some("/v1/recognize?d=grammar&u=1")
    );
    assert_eq!(
        answer.header("link"),
        Some("</v1/recognize?d=grammar&u=1>; rel=\"self\", </v1/other>; rel=\"next\"")
    );
    assert_eq!(
        answer.header("refresh"),
        Some("0; url=/v1/recognize?d=grammar&u=1")
    );
    assert_eq!(
        answer.header("x-request-url"),
        Some("/v1/recognize?d=grammar&u=1")
    );
    assert_eq!(answer.header("x-key"), None, "a bare key is dropped");
    assert_eq!(answer.header("x-kept"), Some("yes"));
}
