//! The admin endpoints: health, readiness, metrics, status, reload and the
//! authorization-code flow, on ports of their own so that no path is taken
//! from an upstream API, split by audience (`audience`): probes, controls,
//! browsers. Nothing here ever shows a secret: status lists names, kinds,
//! states and dates only. What the endpoints may do to the running app is
//! the `Control` they are given.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{self, ProxyBody};
use crate::config::ConfigError;
use crate::drain::DrainWatch;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::snapshot::{ListenerRole, Snapshot};

mod audience;
mod sessions;
mod status;

use audience::{Audience, Caller, Served};

/// What the admin endpoints may do to the running countersign, and no
/// more: read the serving snapshot, the last reload's outcome, the bound
/// listeners and the metrics, and reload.
pub(crate) trait Control: Send + Sync + 'static {
    /// The snapshot serving new requests now.
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Loads, validates and swaps in the config now: the new generation,
    /// or every problem (the old config keeps serving).
    fn reload(&self) -> impl Future<Output = Result<u64, ConfigError>> + Send;
    /// The last reload's problems and the bound listeners.
    fn state(&self) -> State;
    fn metrics(&self) -> &Metrics;
}

/// What `/status` and `/metrics` show besides the snapshot.
#[derive(Default)]
pub(crate) struct State {
    /// The problems of the last refused reload, if the last attempt failed.
    pub last_reload_error: Option<ConfigError>,
    /// Every listener by role, with its bound address.
    pub listeners: BTreeMap<ListenerRole, SocketAddr>,
}

/// Serves the admin endpoints over HTTP/1.1 on one accepted connection of
/// the admin listener `role` (`Admin`, `Control` or `Browser`).
pub(crate) async fn serve<I, C>(stream: I, control: Arc<C>, role: ListenerRole, drain: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Control,
{
    let header_timeout = control.snapshot().proxy.client_header_timeout;
    let on_panic = {
        let control = Arc::clone(&control);
        move || {
            let e = ProxyError::Internal;
            control.metrics().error(e.reason());
            e.into_response()
        }
    };
    let role = Arc::new(role);
    let service = crate::serve::guarded(
        Arc::clone(&role),
        move |req| {
            let (control, role) = (Arc::clone(&control), Arc::clone(&role));
            async move { handle(&*control, &role, req).await }
        },
        on_panic,
    );
    crate::serve::http1(stream, service, header_timeout, drain).await;
}

async fn handle<B, C: Control>(
    control: &C,
    role: &ListenerRole,
    req: Request<B>,
) -> Response<ProxyBody>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<body::BoxError>,
{
    let snapshot = control.snapshot();
    let (parts, req_body) = req.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let served = Served::of(role, &snapshot.admin);
    let audience = audience::audience(uri.path());
    if !served.serves(audience) {
        return not_found(served, Some(audience::key_of(audience, &snapshot.admin)));
    }
    match audience {
        Audience::Probe => match (method, uri.path()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => readiness(&snapshot),
            (&Method::GET, "/metrics") => metrics(control, &snapshot),
            _ => not_found(served, None),
        },
        Audience::Browser => {
            // Only the callback takes a POST (a provider's form_post, or
            // the fragment page's): its small form is read first.
            let form = match *method == Method::POST {
                true => {
                    let limited =
                        http_body_util::Limited::new(req_body, sessions::MAX_CALLBACK_FORM);
                    match http_body_util::BodyExt::collect(limited).await {
                        Ok(collected) => Some(collected.to_bytes()),
                        Err(_) => {
                            return text(
                                StatusCode::BAD_REQUEST,
                                "the form could not be read, or is larger than 64 KiB\n",
                            )
                        }
                    }
                }
                false => None,
            };
            sessions::browser(&snapshot, method, uri, headers, form.as_ref())
                .await
                .unwrap_or_else(|| not_found(served, None))
        }
        Audience::Control => {
            let caller = Caller::of(&snapshot.admin, headers);
            if let Some(resp) = sessions::control(&snapshot, caller, method, uri, headers).await {
                return resp;
            }
            if caller == Caller::Stranger {
                return unauthorized();
            }
            match (method, uri.path()) {
                (&Method::GET, "/status") => {
                    json_response(StatusCode::OK, &status::status(&control.state(), &snapshot))
                }
                (&Method::POST, "/reload") => reload(control).await,
                _ => not_found(served, None),
            }
        }
    }
}

async fn reload<C: Control>(control: &C) -> Response<ProxyBody> {
    match control.reload().await {
        Ok(generation) => json_response(StatusCode::OK, &json!({ "generation": generation })),
        Err(e) => {
            let problems: Vec<_> = e
                .problems
                .iter()
                .map(|p| json!({ "path": p.path, "message": p.message }))
                .collect();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({ "problems": problems }),
            )
        }
    }
}

/// What this listener serves; `elsewhere`: the key of the listener that
/// serves what was asked for.
fn not_found(served: Served, elsewhere: Option<&str>) -> Response<ProxyBody> {
    let hint = elsewhere.map_or(String::new(), |key| {
        format!(" (that one is served by the listener at {key})")
    });
    text(
        StatusCode::NOT_FOUND,
        &format!(
            "no such endpoint on this admin listener{hint}; it serves {}\n",
            served.endpoints()
        ),
    )
}

/// The answer to a control request without `admin.control_secret`.
fn unauthorized() -> Response<ProxyBody> {
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        "the control endpoints need `Authorization: Bearer` with admin.control_secret\n",
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Ready once the config is loaded and the listeners bound (both true for a
/// running app) and every `required` credential can sign.
fn readiness(snapshot: &Snapshot) -> Response<ProxyBody> {
    // Each with the reason its last token fetch gave, when there is one
    // (a message safe to show: it is in 503 answers too).
    let waiting: Vec<String> = snapshot
        .required
        .iter()
        .filter(|name| {
            !snapshot
                .credentials
                .get(*name)
                .is_some_and(|c| c.is_ready())
        })
        .map(|name| {
            let cause = snapshot
                .credentials
                .get(name)
                .and_then(|c| c.token_stats())
                .and_then(|t| t.last_error);
            match cause {
                Some(cause) => format!("{name} ({cause})"),
                None => name.clone(),
            }
        })
        .collect();
    if waiting.is_empty() {
        text(StatusCode::OK, "ready\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "not ready: waiting for required credential(s): {}\n",
                waiting.join(", ")
            ),
        )
    }
}

fn metrics<C: Control>(control: &C, snapshot: &Snapshot) -> Response<ProxyBody> {
    let last_reload_ok = control.state().last_reload_error.is_none();
    let Ok(exposition) = control
        .metrics()
        .exposition(&snapshot.live_metrics(last_reload_ok))
    else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n",
        );
    };
    let mut resp = Response::new(body::full(exposition));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

fn text(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
