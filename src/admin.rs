//! The admin listener: health, readiness, metrics, status and reload, on its
//! own port so that no path is taken from an upstream API. Nothing here ever
//! shows a secret: status lists names, kinds, states and dates only.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{self, ProxyBody};
use crate::config::ConfigError;
use crate::creds::oauth2::TokenStats;
use crate::drain::DrainWatch;
use crate::error::ProxyError;
use crate::metrics::{Metrics, Sample};
use crate::snapshot::{ListenerRole, Snapshot};

mod sessions;

const ENDPOINTS: &str = "GET /healthz, GET /readyz, GET /metrics, GET /status, POST /reload, POST /oauth2/NAME/authorize?session=ID, GET /oauth2/NAME/start?ticket=T, GET /oauth2/NAME/callback";

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

/// Serves the admin endpoints over HTTP/1.1 on one accepted connection.
pub(crate) async fn serve<I, C>(stream: I, control: Arc<C>, drain: DrainWatch)
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
    let service = crate::serve::guarded(
        ListenerRole::Admin,
        move |req| {
            let control = Arc::clone(&control);
            async move { handle(&*control, req).await }
        },
        on_panic,
    );
    crate::serve::http1(stream, service, header_timeout, drain).await;
}

async fn handle<B, C: Control>(control: &C, req: Request<B>) -> Response<ProxyBody> {
    let snapshot = control.snapshot();
    if let Some(resp) = sessions::handle(&snapshot, req.method(), req.uri(), req.headers()).await {
        return resp;
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => readiness(&snapshot),
        (&Method::GET, "/metrics") => metrics(control, &snapshot),
        (&Method::GET, "/status") => {
            json_response(StatusCode::OK, &status(&control.state(), &snapshot))
        }
        (&Method::POST, "/reload") => match control.reload().await {
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
        },
        _ => text(
            StatusCode::NOT_FOUND,
            &format!("no such admin endpoint; try {ENDPOINTS}\n"),
        ),
    }
}

/// Ready once the config is loaded and the listeners bound (both true for a
/// running app) and every `required` credential can sign.
fn readiness(snapshot: &Snapshot) -> Response<ProxyBody> {
    let waiting: Vec<&str> = snapshot
        .required
        .iter()
        .filter(|name| {
            !snapshot
                .credentials
                .get(*name)
                .is_some_and(|c| c.is_ready())
        })
        .map(String::as_str)
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
    let state = control.state();
    let mut resp = Response::new(body::full(
        control.metrics().render(&live_samples(&state, snapshot)),
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Samples read from the serving snapshot at scrape time, grouped by name.
fn live_samples(state: &State, snapshot: &Snapshot) -> Vec<Sample> {
    let mut out = vec![
        gauge(
            "countersign_config_generation",
            "Generation of the serving config (1 at start, +1 per reload).",
            vec![],
            snapshot.generation as f64,
        ),
        gauge(
            "countersign_config_last_reload_ok",
            "1 if the last reload attempt succeeded (or none was made), else 0.",
            vec![],
            if state.last_reload_error.is_some() {
                0.0
            } else {
                1.0
            },
        ),
    ];
    let creds = || snapshot.credentials.iter();
    out.extend(creds().map(|(name, c)| {
        gauge(
            "countersign_credential_ready",
            "1 if the credential can sign now.",
            vec![("credential", name.clone()), ("type", c.kind().into())],
            f64::from(u8::from(c.is_ready())),
        )
    }));
    let tokens: Vec<_> = creds()
        .filter_map(|(name, c)| Some((name.clone(), c.token_stats()?)))
        .collect();
    for (name, t) in &tokens {
        for (result, n) in [("ok", t.fetches_ok), ("failed", t.fetches_failed)] {
            out.push(Sample {
                name: "countersign_token_fetches_total",
                help: "Token requests to the token endpoint, by credential and result.",
                kind: "counter",
                labels: vec![("credential", name.clone()), ("result", result.into())],
                value: n as f64,
            });
        }
    }
    out.extend(tokens.iter().map(|(name, t)| Sample {
        name: "countersign_token_fetch_seconds_total",
        help: "Time spent in token requests, by credential (divide by fetches for latency).",
        kind: "counter",
        labels: vec![("credential", name.clone())],
        value: t.fetch_seconds,
    }));
    let timed = |f: fn(&TokenStats) -> Option<std::time::Duration>, name, help| {
        tokens
            .iter()
            .filter_map(move |(cred, t)| {
                Some(gauge(
                    name,
                    help,
                    vec![("credential", cred.clone())],
                    f(t)?.as_secs_f64(),
                ))
            })
            .collect::<Vec<_>>()
    };
    out.extend(timed(
        |t| t.age,
        "countersign_token_age_seconds",
        "Age of the current token.",
    ));
    out.extend(timed(
        |t| t.expires_in,
        "countersign_token_expiry_seconds",
        "Seconds until the current token expires.",
    ));
    out.extend(snapshot.routes.iter().filter_map(|route| {
        let id = route.config.client_identity.as_ref()?;
        Some(gauge(
            "countersign_client_cert_expiry_seconds",
            "Seconds until the route's client certificate expires.",
            vec![("route", route.config.name.clone())],
            seconds_until(id.not_after),
        ))
    }));
    out
}

fn gauge(
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
    value: f64,
) -> Sample {
    Sample {
        name,
        help,
        kind: "gauge",
        labels,
        value,
    }
}

fn status(state: &State, snapshot: &Snapshot) -> serde_json::Value {
    let addr = |role: &ListenerRole| state.listeners.get(role).map(|a| a.to_string());
    let routes: Vec<_> = snapshot
        .routes
        .iter()
        .map(|r| {
            let c = &r.config;
            json!({
                "name": c.name,
                "hosts": c.hosts.iter().map(|h| match h {
                    crate::config::HostPattern::Exact(h) => h.clone(),
                    crate::config::HostPattern::Suffix(s) => format!("*.{s}"),
                }).collect::<Vec<_>>(),
                "path_prefix": c.path_prefix,
                "upstream": format!("{}://{}{}", c.upstream.scheme.as_str(), c.upstream.authority(), c.upstream.base_path),
                "credential": c.credential,
                "listen": addr(&ListenerRole::Reverse(c.name.clone())),
                "client_cert_expires_in_seconds": c.client_identity.as_ref().map(|i| seconds_until(i.not_after)),
            })
        })
        .collect();
    let credentials: Vec<_> = snapshot
        .credentials
        .iter()
        .map(|(name, c)| {
            json!({
                "name": name,
                "type": c.kind(),
                "required": snapshot.required.contains(name),
                "state": if c.is_ready() { "ready" } else { "waiting" },
                "token": c.token_stats().map(|t| json!({
                    "fetches_ok": t.fetches_ok,
                    "fetches_failed": t.fetches_failed,
                    "age_seconds": t.age.map(|d| d.as_secs()),
                    "expires_in_seconds": t.expires_in.map(|d| d.as_secs()),
                    "last_error": t.last_error,
                })),
                "sessions_active": c.sessions().map(|s| s.active()),
            })
        })
        .collect();
    let last_error = state.last_reload_error.as_ref().map(|e| {
        e.problems
            .iter()
            .map(|p| json!({ "path": p.path, "message": p.message }))
            .collect::<Vec<_>>()
    });
    json!({
        "generation": snapshot.generation,
        "last_reload_error": last_error,
        "listeners": {
            "proxy": addr(&ListenerRole::Forward),
            "admin": addr(&ListenerRole::Admin),
        },
        "unmatched": format!("{:?}", snapshot.proxy.unmatched).to_lowercase(),
        "interception": snapshot.minter.is_some(),
        "routes": routes,
        "credentials": credentials,
    })
}

fn seconds_until(t: SystemTime) -> f64 {
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    secs(t) - secs(SystemTime::now())
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
