//! Stand-ins for STS and the container credentials endpoint that give
//! out new keys at every call (numbered, so a test can tell which keys
//! signed a request), for as long as the test asks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::handler_server::{form_decode, serve};

/// An `Expiration` `seconds` from now, as STS and the container endpoint
/// write it.
fn expires_in(seconds: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The access key id of the `n`th keys a fake gives out (from 1).
pub(super) fn key_id(prefix: &str, n: usize) -> String {
    format!("ASIA{prefix}{n:04}")
}

pub(super) type Seen<T> = Arc<Mutex<Vec<T>>>;

/// A stand-in for STS: answers every AssumeRoleWithWebIdentity with new
/// keys (`ASIASTS0001`, `ASIASTS0002`, ...) that expire `lifetime`
/// seconds later; keeps every form it received.
pub(super) async fn short_lived_sts(lifetime: i64) -> (SocketAddr, Seen<HashMap<String, String>>) {
    let seen: Seen<HashMap<String, String>> = Arc::default();
    let log = Arc::clone(&seen);
    let addr = serve(None, move |req: Request<Incoming>| {
        let log = Arc::clone(&log);
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let n = {
                let mut log = log.lock().unwrap();
                log.push(form_decode(&String::from_utf8_lossy(&body)));
                log.len()
            };
            let xml = format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                 <SessionToken>sts-session-{n}</SessionToken><SecretAccessKey>sts/secret/{n}</SecretAccessKey>\
                 <Expiration>{}</Expiration><AccessKeyId>{}</AccessKeyId>\
                 </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
                expires_in(lifetime),
                key_id("STS", n)
            );
            Response::new(Full::new(Bytes::from(xml)))
        }
    })
    .await;
    (addr, seen)
}

/// A stand-in for the ECS / EKS Pod Identity endpoint at
/// `/v1/credentials`: keeps the Authorization header of every GET and
/// answers each with new keys (`ASIAPOD0001`, ...) for an hour.
pub(super) async fn container_endpoint() -> (SocketAddr, Seen<Option<String>>) {
    let seen: Seen<Option<String>> = Arc::default();
    let log = Arc::clone(&seen);
    let addr = serve(None, move |req: Request<Incoming>| {
        let log = Arc::clone(&log);
        async move {
            if req.uri().path() != "/v1/credentials" {
                return Response::builder()
                    .status(404)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            let n = {
                let mut log = log.lock().unwrap();
                log.push(
                    req.headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string()),
                );
                log.len()
            };
            let json = serde_json::json!({
                "AccessKeyId": key_id("POD", n),
                "SecretAccessKey": format!("pod/secret/{n}"),
                "Token": format!("pod-session-{n}"),
                "Expiration": expires_in(3600),
            });
            Response::new(Full::new(Bytes::from(json.to_string())))
        }
    })
    .await;
    (addr, seen)
}
