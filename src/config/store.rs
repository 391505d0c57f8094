//! The validated `[store]` section: the shared store (Redis) that lets
//! several countersign replicas share one grant, its sessions and pending
//! authorizations. Without `[store]`, each credential keeps its files.

use std::time::Duration;

use super::{Secret, SecretBytes};

/// Where the shared store is and how to reach it. `Debug` shows no secret
/// (username, password, client key and `store_key` are redacted types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreConfig {
    /// `redis://host[:port][/db]`, `rediss://...` (TLS) or
    /// `unix:///path/to/redis.sock`, without user info. With `sentinel`,
    /// only a name for messages: `redis+sentinel://HOST:PORT,.../MASTER`.
    pub url: String,
    /// Where the Sentinels are, when they name the primary (instead of
    /// `url`).
    pub sentinel: Option<SentinelConfig>,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// Put before every key countersign writes, so several deployments can
    /// share one Redis (default `countersign:`).
    pub key_prefix: String,
    /// Extra trust roots for `rediss://` (PEM), from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key for `rediss://` (PEM).
    pub client_identity: Option<(Vec<u8>, SecretBytes)>,
    /// 32-byte AES-256-GCM key sealing every value countersign writes.
    pub store_key: Option<SecretBytes>,
    /// Bound on connecting and on each command (default 2 s).
    pub timeout: Duration,
    /// After each write of a refresh token, `WAIT` for this many replicas
    /// to acknowledge it (default 0: the primary's AOF must be fsynced).
    pub wait_replicas: u32,
    /// When the store cannot be reached, a client_credentials credential
    /// fetches its token itself (default false: it keeps its current token
    /// until that expires). Rotating grants never do.
    pub local_fallback: bool,
    /// How long a refresh token another replica presented and whose
    /// successor it has not stored is held back (default 60 s): that
    /// replica may hold the successor, unsaved, until Redis takes it.
    pub unsaved_grace: Duration,
}

/// The Sentinels that name the store's primary (`store.sentinels`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentinelConfig {
    /// `(host, port)` of each Sentinel, asked in this order.
    pub nodes: Vec<(String, u16)>,
    /// The name the Sentinels monitor the primary under.
    pub master: String,
    /// Credentials for the Sentinels themselves (the primary takes
    /// `StoreConfig::username` and `password`).
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// TLS to the Sentinels and the primary (`store.tls`).
    pub tls: bool,
}

impl StoreConfig {
    pub fn is_tls(&self) -> bool {
        match &self.sentinel {
            Some(s) => s.tls,
            None => self.url.starts_with("rediss://"),
        }
    }
}

impl SentinelConfig {
    /// A name for messages and `/status`: `redis+sentinel://A:1,B:2/NAME`
    /// (`rediss+sentinel` with TLS). Holds no credential.
    pub fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            })
            .collect();
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}+sentinel://{}/{}", nodes.join(","), self.master)
    }
}

#[cfg(test)]
impl StoreConfig {
    /// `redis://127.0.0.1:1` (nothing listens there), key prefix `t:`, a
    /// 100 ms timeout, the rest defaults: for tests of code that makes a
    /// store client (which connects lazily) but sends no command.
    pub(crate) fn unreachable() -> StoreConfig {
        StoreConfig {
            url: "redis://127.0.0.1:1".into(),
            sentinel: None,
            username: None,
            password: None,
            key_prefix: "t:".into(),
            ca_pem: None,
            client_identity: None,
            store_key: None,
            timeout: Duration::from_millis(100),
            wait_replicas: 0,
            local_fallback: false,
            unsaved_grace: Duration::from_secs(60),
        }
    }
}
