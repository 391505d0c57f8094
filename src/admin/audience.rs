//! Who the admin endpoints are for, and which listener serves whom:
//!
//! - probes (the kubelet, Prometheus): `/healthz`, `/readyz`, `/metrics`,
//!   on the admin listener, which may be the pod's address;
//! - controls (the operator, the app): everything else but the browser
//!   endpoints, on the control listener, behind `admin.control_secret`
//!   when it is set;
//! - browsers: `GET /oauth2/NAME/start` and `/callback`, on the browser
//!   listener, or on the control listener when the operator says so
//!   (`browser_listen = "control"`).
//!
//! Each listener serves its own audience only. Which one serves the
//! browsers is decided per request from the serving snapshot, so a reload
//! that moves them applies at once.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::{AdminSettings, BrowserListen};
use crate::snapshot::ListenerRole;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    Probe,
    Control,
    Browser,
}

/// Whose endpoint `path` is; anything unknown is the controls', so that
/// it is behind their secret.
pub(super) fn audience(path: &str) -> Audience {
    match path {
        "/healthz" | "/readyz" | "/metrics" => Audience::Probe,
        _ => match path
            .strip_prefix("/oauth2/")
            .and_then(|r| r.split_once('/'))
        {
            Some((_, "start" | "callback")) => Audience::Browser,
            _ => Audience::Control,
        },
    }
}

/// The audiences one listener serves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Served {
    pub probe: bool,
    pub control: bool,
    pub browser: bool,
}

impl Served {
    pub(super) fn of(role: &ListenerRole, admin: &AdminSettings) -> Served {
        let control = *role == ListenerRole::Control;
        let browser = match role {
            ListenerRole::Browser => true,
            _ => control && admin.browser_listen == BrowserListen::Control,
        };
        Served {
            probe: *role == ListenerRole::Admin,
            control,
            browser,
        }
    }

    pub(super) fn serves(self, audience: Audience) -> bool {
        match audience {
            Audience::Probe => self.probe,
            Audience::Control => self.control,
            Audience::Browser => self.browser,
        }
    }

    /// The endpoints served here, for a 404.
    pub(super) fn endpoints(self) -> String {
        let mut out = Vec::new();
        if self.probe {
            out.push("GET /healthz, GET /readyz, GET /metrics");
        }
        if self.control {
            out.push("GET /status, POST /reload, POST /oauth2/NAME/authorize?session=ID, GET and DELETE /oauth2/NAME/sessions/ID");
        }
        if self.browser {
            out.push("GET /oauth2/NAME/start?ticket=T, GET /oauth2/NAME/callback");
        }
        out.join(", ")
    }
}

/// Which listener, by its key, serves `audience` when this one does not.
pub(super) fn key_of(audience: Audience, admin: &AdminSettings) -> &'static str {
    match audience {
        Audience::Probe => "admin.listen",
        Audience::Control => "admin.control_listen",
        Audience::Browser if admin.browser_listen == BrowserListen::Control => {
            "admin.control_listen"
        }
        Audience::Browser => "admin.browser_listen",
    }
}

/// What a caller of a control endpoint showed of `admin.control_secret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No secret is set: the listener's address is the guard (loopback).
    Open,
    /// The caller presented the secret.
    Operator,
    /// A secret is set and the caller did not present it.
    Stranger,
}

impl Caller {
    pub(super) fn of(admin: &AdminSettings, headers: &HeaderMap) -> Caller {
        let Some(secret) = &admin.control_secret else {
            return Caller::Open;
        };
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token {
            Some(token) if same(token.as_bytes(), secret.expose().as_bytes()) => Caller::Operator,
            _ => Caller::Stranger,
        }
    }
}

/// Compares digests, and those byte by byte without stopping early: the
/// time taken says nothing about the secret, not even its length.
fn same(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use http::HeaderValue;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_path_belongs_to_one_audience() {
        for p in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(audience(p), Audience::Probe, "{p}");
        }
        for p in ["/oauth2/gmo/start", "/oauth2/gmo/callback"] {
            assert_eq!(audience(p), Audience::Browser, "{p}");
        }
        for p in [
            "/status",
            "/reload",
            "/oauth2/gmo/authorize",
            "/oauth2/gmo/sessions",
            "/oauth2/start",
            "/nope",
            "/healthz/",
            "/metrics/x",
        ] {
            assert_eq!(audience(p), Audience::Control, "{p}");
        }
    }

    #[test]
    fn each_listener_serves_its_own_audience_only() {
        let served = |role, admin: &AdminSettings| Served::of(&role, admin);
        let only = |probe, control, browser| Served {
            probe,
            control,
            browser,
        };
        // The defaults: nothing shared, whatever `listen` is.
        for listen in ["127.0.0.1:9901", "0.0.0.0:9901"] {
            let defaults = AdminSettings {
                listen: addr(listen),
                browser_listen: BrowserListen::Own(addr("127.0.0.1:9903")),
                ..AdminSettings::default()
            };
            assert_eq!(
                served(ListenerRole::Admin, &defaults),
                only(true, false, false)
            );
            assert_eq!(
                served(ListenerRole::Control, &defaults),
                only(false, true, false)
            );
            assert_eq!(
                served(ListenerRole::Browser, &defaults),
                only(false, false, true)
            );
            assert_eq!(key_of(Audience::Control, &defaults), "admin.control_listen");
            assert_eq!(key_of(Audience::Browser, &defaults), "admin.browser_listen");
        }
        // No sessions: no browser endpoints anywhere.
        let unused = AdminSettings::default();
        assert_eq!(
            served(ListenerRole::Control, &unused),
            only(false, true, false)
        );

        // Shared only when the operator says so.
        let browsers_with_controls = AdminSettings {
            browser_listen: BrowserListen::Control,
            ..AdminSettings::default()
        };
        assert_eq!(
            served(ListenerRole::Control, &browsers_with_controls),
            only(false, true, true)
        );
        assert_eq!(
            served(ListenerRole::Admin, &browsers_with_controls),
            only(true, false, false)
        );
        assert_eq!(
            served(ListenerRole::Forward, &browsers_with_controls),
            only(false, false, false)
        );
        assert_eq!(
            key_of(Audience::Browser, &browsers_with_controls),
            "admin.control_listen"
        );
    }

    #[test]
    fn only_the_exact_secret_makes_an_operator() {
        let admin = AdminSettings {
            control_secret: Some(Secret::new("0123456789abcdef-ctl")),
            ..AdminSettings::default()
        };
        let caller = |value: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = value {
                h.insert(AUTHORIZATION, HeaderValue::from_static(v));
            }
            Caller::of(&admin, &h)
        };
        assert_eq!(
            caller(Some("Bearer 0123456789abcdef-ctl")),
            Caller::Operator
        );
        assert_eq!(
            caller(Some("bearer 0123456789abcdef-ctl")),
            Caller::Operator
        );
        for wrong in [
            None,
            Some("Bearer 0123456789abcdef-ct"),
            Some("Bearer 0123456789abcdef-ctl0"),
            Some("Basic 0123456789abcdef-ctl"),
            Some("0123456789abcdef-ctl"),
            Some("Bearer"),
        ] {
            assert_eq!(caller(wrong), Caller::Stranger, "{wrong:?}");
        }
        let open = AdminSettings::default();
        assert_eq!(Caller::of(&open, &HeaderMap::new()), Caller::Open);
    }
}
