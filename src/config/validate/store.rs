//! Rules for `[store]`, the shared store of several replicas. Every key is
//! checked at its own path; a message never quotes a value (a URL could
//! carry a password).

use std::time::Duration;

use super::super::raw::RawStore;
use super::super::store::StoreConfig;
use super::Checker;

impl Checker<'_> {
    pub(super) fn store(&mut self, mut raw: RawStore) -> Option<StoreConfig> {
        if raw.url.is_some() && raw.sentinels.is_some() {
            self.problem(
                "store.sentinels",
                "set either store.url (one Redis) or store.sentinels with store.sentinel_master (the Sentinels name the primary), not both",
            );
            return None;
        }
        let (url, sentinel) = if raw.sentinels.is_some() {
            match self.store_sentinels(&mut raw) {
                Some(s) => (Some(s.describe()), Some(s)),
                None => (None, None),
            }
        } else {
            self.sentinel_keys_unused(&raw);
            // The url may be a reference too (`${file:...}`, `${env:...}`),
            // so a Kubernetes Secret can hold it.
            let url = match raw.url.as_deref().map(|u| self.secret("store.url", u)) {
                Some(None) => None,
                Some(Some(text)) => self.store_url(Some(text.expose().trim())),
                None => self.store_url(None),
            };
            (url, None)
        };
        let username = raw
            .username
            .as_deref()
            .and_then(|u| self.secret("store.username", u));
        let password = raw
            .password
            .as_deref()
            .and_then(|p| self.secret("store.password", p));
        if username.is_some() && password.is_none() && raw.password.is_none() {
            self.problem("store.password", "missing; username needs a password");
        }
        let key_prefix = raw.key_prefix.unwrap_or_else(|| "countersign:".into());
        if key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            self.problem(
                "store.key_prefix",
                "must not hold spaces or control characters",
            );
        }
        let tls = match &sentinel {
            Some(s) => s.tls,
            None => url.as_deref().is_some_and(|u| u.starts_with("rediss://")),
        };
        let ca_pem = raw.ca_file.as_deref().and_then(|f| {
            if !tls {
                self.problem(
                    "store.ca_file",
                    "is only used with TLS (a rediss:// url, or tls = true with sentinels)",
                );
                return None;
            }
            if self.ca_file("store.ca_file", f).is_empty() {
                return None;
            }
            crate::files::read(&self.base_dir.join(f)).ok()
        });
        let client_identity = self.store_identity(tls, raw.client_cert, raw.client_key);
        let store_key = raw
            .store_key
            .as_deref()
            .and_then(|k| self.store_key("store.store_key", k));
        let timeout = self.duration("store.timeout", raw.timeout, Duration::from_secs(2));
        let unsaved_grace = self.duration(
            "store.unsaved_grace",
            raw.unsaved_grace,
            Duration::from_secs(60),
        );
        let wait_replicas = match raw.wait_replicas {
            None if sentinel.is_some() => 1,
            Some(0) if sentinel.is_some() => {
                self.problem(
                    "store.wait_replicas",
                    "must be at least 1 with store.sentinels: a failover promotes a replica, which holds only the writes it had received, and until the Sentinels demote the old primary both take writes; only a write a replica acknowledged survives that",
                );
                0
            }
            None => 0,
            Some(n) => u32::try_from(n).unwrap_or_else(|_| {
                self.problem("store.wait_replicas", "must be a whole number from 0");
                0
            }),
        };
        let failed = (raw.username.is_some() && username.is_none())
            || (raw.password.is_some() && password.is_none())
            || (raw.store_key.is_some() && store_key.is_none());
        if failed {
            return None;
        }
        if raw.sentinels.is_some() && sentinel.is_none() {
            return None;
        }
        Some(StoreConfig {
            url: url?,
            sentinel,
            username,
            password,
            key_prefix,
            ca_pem,
            client_identity,
            store_key,
            timeout,
            wait_replicas,
            local_fallback: raw.local_fallback.unwrap_or(false),
            unsaved_grace,
        })
    }

    /// `redis://host[:port][/db]`, `rediss://...` or `unix:///path`, with
    /// no user info (username and password have keys of their own, which
    /// take references).
    fn store_url(&mut self, text: Option<&str>) -> Option<String> {
        const PATH: &str = "store.url";
        let Some(text) = text else {
            self.problem(
                PATH,
                "missing; e.g. \"redis://redis:6379\", \"rediss://redis:6380\" or \"unix:///run/redis.sock\" (or store.sentinels and store.sentinel_master, to ask Redis Sentinels for the primary)",
            );
            return None;
        };
        if let Some(socket) = text.strip_prefix("unix://") {
            if !socket.starts_with('/') || socket.len() < 2 {
                self.problem(
                    PATH,
                    "a unix:// url names an absolute path: unix:///run/redis.sock",
                );
                return None;
            }
            return Some(text.to_string());
        }
        let Some(rest) = text
            .strip_prefix("redis://")
            .or_else(|| text.strip_prefix("rediss://"))
        else {
            self.problem(PATH, "must start with redis://, rediss:// or unix://");
            return None;
        };
        let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
        let problem = if authority.contains('@') {
            "must not hold user info; use store.username and store.password"
        } else if authority.is_empty() || authority.starts_with(':') {
            "has no host"
        } else if authority.contains(['?', '#']) || db.contains(['?', '#']) {
            "must not have a query or fragment"
        } else if !db.is_empty() && db.parse::<u16>().is_err() {
            "the path is a database number, e.g. redis://redis:6379/0"
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) if !host.ends_with(']') && host.contains(':') => {
                    let _ = port;
                    "an IPv6 host is written in brackets: redis://[::1]:6379"
                }
                Some((_, port)) if port.parse::<u16>().map_or(true, |p| p == 0) => {
                    "has a port that is not a number from 1 to 65535"
                }
                _ => return Some(text.to_string()),
            }
        };
        self.problem(PATH, problem);
        None
    }

    /// `client_cert` and `client_key` go together, only over TLS.
    fn store_identity(
        &mut self,
        tls: bool,
        cert: Option<String>,
        key: Option<String>,
    ) -> Option<(Vec<u8>, crate::config::SecretBytes)> {
        let (cert, key) = match (cert, key) {
            (None, None) => return None,
            (Some(_), None) => {
                self.problem("store.client_key", "missing; client_cert needs its key");
                return None;
            }
            (None, Some(_)) => {
                self.problem(
                    "store.client_cert",
                    "missing; client_key needs its certificate",
                );
                return None;
            }
            (Some(c), Some(k)) => (self.base_dir.join(c), self.base_dir.join(k)),
        };
        if !tls {
            self.problem(
                "store.client_cert",
                "is only used with TLS (a rediss:// url, or tls = true with sentinels)",
            );
            return None;
        }
        self.other_files.push(cert.clone());
        self.other_files.push(key.clone());
        // Loaded the way a route's is, so a bad pair is named the same way.
        if let Err(e) = crate::pki::identity::ClientIdentity::load(&cert, &key) {
            self.problem("store.client_cert", e);
            return None;
        }
        let cert_pem = crate::files::read(&cert).ok()?;
        let key_pem = crate::files::read(&key).ok()?;
        Some((cert_pem, crate::config::SecretBytes::new(key_pem)))
    }
}

mod sentinel;
#[cfg(test)]
mod tests;
