//! The admin listener: health, readiness, metrics, status and reload, on its
//! own port so that no path is taken from an upstream API. Nothing here ever
//! shows a secret: status lists names, kinds, states and dates only.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::body::{self, ProxyBody};
use crate::listener::ServeContext;
use crate::snapshot::Snapshot;

mod sessions;

const ENDPOINTS: &str = "GET /healthz, GET /readyz, GET /metrics, GET /status, POST /reload, POST /oauth2/NAME/authorize?session=ID, GET /oauth2/NAME/start?ticket=T, GET /oauth2/NAME/callback";

pub(crate) async fn handle<B>(ctx: &ServeContext, req: Request<B>) -> Response<ProxyBody> {
    let Some(inner) = ctx.app.upgrade() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let app = App { inner };
    let snapshot = app.snapshot();
    if let Some(resp) = sessions::handle(&snapshot, req.method(), req.uri(), req.headers()).await {
        return resp;
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => readiness(&snapshot),
        (&Method::GET, "/metrics") => metrics(&app, &snapshot),
        (&Method::GET, "/status") => json_response(StatusCode::OK, &status(&app, &snapshot)),
        (&Method::POST, "/reload") => match app.reload().await {
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

fn metrics(app: &App, snapshot: &Snapshot) -> Response<ProxyBody> {
    let last_reload_ok = app.last_reload_error().is_none();
    let Ok(exposition) = app
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

fn status(app: &App, snapshot: &Snapshot) -> serde_json::Value {
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
                "listen": app.route_addr(&c.name).map(|a| a.to_string()),
                "client_cert_expires_in_seconds": c.client_identity.as_ref().map(|i| crate::pki::seconds_until(i.not_after)),
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
    let last_error = app.last_reload_error().map(|e| {
        e.problems
            .iter()
            .map(|p| json!({ "path": p.path, "message": p.message }))
            .collect::<Vec<_>>()
    });
    json!({
        "generation": snapshot.generation,
        "last_reload_error": last_error,
        "listeners": {
            "proxy": app.proxy_addr().to_string(),
            "admin": app.admin_addr().to_string(),
        },
        "unmatched": format!("{:?}", snapshot.proxy.unmatched).to_lowercase(),
        "interception": snapshot.minter.is_some(),
        "routes": routes,
        "credentials": credentials,
    })
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
