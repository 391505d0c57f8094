//! The error table of docs/errors.md is exact: it lists every status and
//! `x-countersign-error` that countersign can answer with, and nothing else.

use std::collections::BTreeSet;
use std::time::Duration;

use http::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::*;
use crate::upstream::ConnectError;

/// A real client error (a refused connection), to wrap in the variants
/// only hyper-util's client makes.
async fn client_error() -> hyper_util::client::legacy::Error {
    let client = Client::builder(TokioExecutor::new()).build_http::<ProxyBody>();
    let req = Request::get("http://127.0.0.1:1/")
        .body(body::empty())
        .unwrap();
    client.request(req).await.unwrap_err()
}

async fn every_error() -> Vec<ProxyError> {
    let a = || "api.test:443".to_string();
    let mut all = vec![
        ProxyError::BadRequest("x".into()),
        ProxyError::NoRoute {
            host: "h".into(),
            port: 80,
            path: "/".into(),
        },
        ProxyError::ConnectDenied {
            host: "h".into(),
            port: 443,
        },
        ProxyError::InterceptUnavailable {
            host: "h".into(),
            port: 443,
        },
        ProxyError::Intercept {
            host: "h".into(),
            detail: "x".into(),
        },
        ProxyError::Body(SpoolError::TooLarge { limit: 1 }),
        ProxyError::Body(SpoolError::TooLargeToSign {
            limit: 1,
            credential: "c".into(),
        }),
        ProxyError::Body(SpoolError::Client("x".into())),
        ProxyError::MemorySpent(crate::creds::MemorySpent {
            credential: "c".into(),
            budget: 1,
        }),
        ProxyError::Body(SpoolError::Disk {
            dir: "/tmp".into(),
            source: std::io::Error::other("x"),
        }),
        ProxyError::Credential(CredError::Request("x".into())),
        ProxyError::Credential(CredError::Session("x".into())),
        ProxyError::Credential(CredError::Random(crate::random::RandomError)),
        ProxyError::Credential(CredError::TokenUnavailable {
            what: "token",
            credential: "c".into(),
            waited: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
            cause: None,
        }),
        ProxyError::Upstream(UpstreamError::Timeout {
            authority: a(),
            timeout: Duration::from_secs(1),
        }),
        ProxyError::Upstream(UpstreamError::Exchange {
            authority: a(),
            source: client_error().await,
        }),
        ProxyError::Upstream(UpstreamError::Closed {
            authority: a(),
            source: client_error().await,
        }),
        ProxyError::Upstream(UpstreamError::Unprocessed {
            authority: a(),
            source: client_error().await,
        }),
        ProxyError::Upstream(UpstreamError::ClientBody {
            authority: a(),
            source: client_error().await,
        }),
        ProxyError::OutsideRoute {
            route: "r".into(),
            method: "DELETE".into(),
            path: "/".into(),
            rule: "x".into(),
        },
        ProxyError::BodyTimeout(crate::body::BodyTimeout {
            which: crate::body::BodyWait::Idle,
            after: Duration::from_secs(1),
        }),
        ProxyError::Body(SpoolError::Timeout(crate::body::BodyTimeout {
            which: crate::body::BodyWait::Total,
            after: Duration::from_secs(1),
        })),
        ProxyError::Internal,
    ];
    for kind in [
        ConnectErrorKind::Resolve,
        ConnectErrorKind::Refused,
        ConnectErrorKind::Timeout,
        ConnectErrorKind::Tls,
        ConnectErrorKind::Forbidden,
    ] {
        all.push(ProxyError::Tunnel {
            authority: a(),
            source: ConnectError::new(kind, "x"),
        });
        all.push(ProxyError::Upstream(UpstreamError::Connect {
            authority: a(),
            source: ConnectError::new(kind, "x"),
        }));
    }
    all
}

/// `(status, reason)` rows of the table under "Errors made by countersign"
/// in docs/errors.md.
fn documented_table() -> BTreeSet<(u16, String)> {
    let doc = include_str!("../../docs/errors.md");
    let section = doc
        .split("## Errors made by countersign")
        .nth(1)
        .expect("docs/errors.md has the section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse().ok()?;
            let reason = cells.get(2)?.trim_matches('`').to_string();
            Some((status, reason))
        })
        .collect()
}

/// Rows of the table that `ProxyError` does not make: the callback's
/// refusals of an ID token and of a JARM response
/// (admin/sessions/callback.rs, whose own test holds them to the table).
const MADE_BY_THE_CALLBACK: [(u16, &str); 2] = [(400, "id-token-invalid"), (400, "jarm-invalid")];

#[tokio::test]
async fn the_documented_error_table_lists_exactly_what_countersign_answers() {
    let mut made: BTreeSet<(u16, String)> = every_error()
        .await
        .iter()
        .map(|e| (e.status().as_u16(), e.reason().to_string()))
        .collect();
    made.extend(
        MADE_BY_THE_CALLBACK
            .iter()
            .map(|(status, reason)| (*status, reason.to_string())),
    );
    assert_eq!(documented_table(), made);
}

#[tokio::test]
async fn every_answer_carries_its_reason_and_a_body_that_says_why() {
    for e in every_error().await {
        let (status, reason) = (e.status(), e.reason());
        let resp = e.into_response();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()[ERROR_HEADER], reason);
    }
}
