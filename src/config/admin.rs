//! `[admin]`: the admin endpoints, on three listeners by audience.
//!
//! - probes (the kubelet, Prometheus): `/healthz`, `/readyz`, `/metrics`
//!   on `listen`, which may be the pod's address;
//! - the operator and the app: `/status`, `POST /reload`,
//!   `POST /oauth2/NAME/authorize`, sessions, on `control_listen`
//!   (127.0.0.1:9902 unless set), loopback unless a bearer
//!   `control_secret` guards it;
//! - end users' browsers: `/oauth2/NAME/start` and `/callback` on
//!   `browser_listen` (127.0.0.1:9903 unless set), bound only when a
//!   credential has user sessions; `browser_listen = "control"` serves
//!   them on the control listener instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Secret;

/// The probe listener when `[admin] listen` is not set.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901);
/// The control listener when `control_listen` is not set, whatever
/// `listen` is.
pub const DEFAULT_CONTROL_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9902);
/// The browser listener when `browser_listen` is not set.
pub const DEFAULT_BROWSER_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9903);

/// Where the browser endpoints are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserListen {
    /// A listener of their own.
    Own(SocketAddr),
    /// On the control listener: the operator wrote `browser_listen =
    /// "control"`.
    Control,
    /// Nowhere: no credential has user sessions, so there is nothing for
    /// a browser to do.
    Unused,
}

impl BrowserListen {
    /// The address of a listener of their own, if they have one.
    pub fn own(self) -> Option<SocketAddr> {
        match self {
            BrowserListen::Own(addr) => Some(addr),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// The probe listener.
    pub listen: SocketAddr,
    /// The control listener.
    pub control_listen: SocketAddr,
    /// When set, every control endpoint needs `Authorization: Bearer` with
    /// it (`POST /oauth2/NAME/authorize` also takes that credential's own
    /// `authorize_secret`).
    pub control_secret: Option<Secret>,
    /// Where the browser endpoints are served.
    pub browser_listen: BrowserListen,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: DEFAULT_LISTEN,
            control_listen: DEFAULT_CONTROL_LISTEN,
            control_secret: None,
            browser_listen: BrowserListen::Unused,
        }
    }
}

/// Loopback in any spelling (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`).
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}
