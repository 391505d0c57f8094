//! `GET /status`: what the running countersign serves, as JSON: the
//! config generation and last reload error, the listeners, routes and
//! credentials. Names, kinds, states and dates only, never a secret.

use serde_json::json;

use super::State;
use crate::config::BrowserListen;
use crate::pki::seconds_until;
use crate::snapshot::{ListenerRole, Snapshot};

pub(super) fn status(state: &State, snapshot: &Snapshot) -> serde_json::Value {
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
                // One name as a string (as before stacks), several as a list.
                "credential": match c.credential.as_slice() {
                    [] => serde_json::Value::Null,
                    [one] => json!(one),
                    many => json!(many),
                },
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
                "sessions_lost": c.sessions().map(|s| s.lost()),
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
            // Where the controls and the browser endpoints are served
            // (none for browsers when no credential has user sessions).
            "control": addr(&ListenerRole::Control),
            "browser": match snapshot.admin.browser_listen {
                BrowserListen::Own(_) => addr(&ListenerRole::Browser),
                BrowserListen::Control => addr(&ListenerRole::Control),
                BrowserListen::Unused => None,
            },
        },
        "unmatched": format!("{:?}", snapshot.proxy.unmatched).to_lowercase(),
        "interception": snapshot.minter.is_some(),
        "routes": routes,
        "credentials": credentials,
    })
}
