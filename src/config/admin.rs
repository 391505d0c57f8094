//! `[admin]`: the admin endpoints, on up to three listeners by audience.
//!
//! - probes (the kubelet, Prometheus): `/healthz`, `/readyz`, `/metrics`
//!   on `listen`, which may be the pod's address;
//! - the operator and the app: `/status`, `POST /reload`,
//!   `POST /oauth2/NAME/authorize` on `control_listen`, loopback unless a
//!   bearer `control_secret` guards it;
//! - end users' browsers: `/oauth2/NAME/start` and `/callback` on
//!   `browser_listen`, or with the controls.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Secret;

/// The probe listener when `[admin] listen` is not set.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901);
/// The control listener when `listen` is not a loopback address and
/// `control_listen` is not set.
pub const DEFAULT_CONTROL_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9902);

#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// The probe listener.
    pub listen: SocketAddr,
    /// The control listener; `None`: the controls are served on `listen`,
    /// which is then a loopback address (a config from before the split).
    pub control_listen: Option<SocketAddr>,
    /// When set, every control endpoint needs `Authorization: Bearer` with
    /// it (`POST /oauth2/NAME/authorize` also takes that credential's own
    /// `authorize_secret`).
    pub control_secret: Option<Secret>,
    /// The browser listener; `None`: the browser endpoints are served
    /// wherever the controls are.
    pub browser_listen: Option<SocketAddr>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: DEFAULT_LISTEN,
            control_listen: None,
            control_secret: None,
            browser_listen: None,
        }
    }
}

/// Loopback in any spelling (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`).
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}
