//! `store.sentinels`: Redis Sentinels name the store's primary instead of a
//! fixed `store.url`. Each Sentinel is `host:port`; the master name and the
//! Sentinels' own credentials have keys of their own; `tls` makes every
//! connection (Sentinels and primary) TLS, with `ca_file` and the client
//! certificate as for a `rediss://` url. No message quotes a value.

use super::super::super::raw::RawStore;
use super::super::super::store::SentinelConfig;
use super::super::Checker;

impl Checker<'_> {
    /// The Sentinel keys of `raw` (`sentinels` is set), each checked at its
    /// own path.
    pub(super) fn store_sentinels(&mut self, raw: &mut RawStore) -> Option<SentinelConfig> {
        let entries = raw.sentinels.take().unwrap_or_default();
        if entries.is_empty() {
            self.problem(
                "store.sentinels",
                "is empty; list each Sentinel as \"host:port\", e.g. [\"sentinel-0:26379\", \"sentinel-1:26379\"]",
            );
        }
        let mut nodes = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match host_port(entry.trim()) {
                Ok(node) => nodes.push(node),
                Err(problem) => self.problem(format!("store.sentinels[{i}]"), problem),
            }
        }
        let master = match raw.sentinel_master.take() {
            None => {
                self.problem(
                    "store.sentinel_master",
                    "missing; the name the Sentinels monitor the primary under (their `sentinel monitor NAME ...`), e.g. \"mymaster\"",
                );
                None
            }
            Some(m) if m.is_empty() || m.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                self.problem(
                    "store.sentinel_master",
                    "must be a name without spaces or control characters",
                );
                None
            }
            Some(m) => Some(m),
        };
        let username = raw
            .sentinel_username
            .as_deref()
            .and_then(|u| self.secret("store.sentinel_username", u));
        let password = raw
            .sentinel_password
            .as_deref()
            .and_then(|p| self.secret("store.sentinel_password", p));
        if raw.sentinel_username.is_some() && raw.sentinel_password.is_none() {
            self.problem(
                "store.sentinel_password",
                "missing; sentinel_username needs a password",
            );
        }
        let failed = nodes.len() != entries.len()
            || entries.is_empty()
            || (raw.sentinel_username.is_some() && username.is_none())
            || (raw.sentinel_password.is_some() && password.is_none());
        if failed {
            return None;
        }
        Some(SentinelConfig {
            nodes,
            master: master?,
            username,
            password,
            tls: raw.tls.unwrap_or(false),
        })
    }

    /// With `url`, the Sentinel keys have no use: say so rather than
    /// ignore them.
    pub(super) fn sentinel_keys_unused(&mut self, raw: &RawStore) {
        let set = [
            ("store.sentinel_master", raw.sentinel_master.is_some()),
            ("store.sentinel_username", raw.sentinel_username.is_some()),
            ("store.sentinel_password", raw.sentinel_password.is_some()),
        ];
        for (path, is_set) in set {
            if is_set {
                self.problem(path, "is only used with store.sentinels");
            }
        }
        if raw.tls.is_some() {
            self.problem(
                "store.tls",
                "is only used with store.sentinels; with store.url, a rediss:// url chooses TLS",
            );
        }
    }
}

/// `host:port`, `[v6]:port`; no scheme, no user info, port 1 to 65535.
fn host_port(text: &str) -> Result<(String, u16), &'static str> {
    if text.contains("://") || text.contains('@') || text.contains('/') {
        return Err("is \"host:port\" alone, e.g. \"sentinel-0:26379\" (no scheme, user info or path; see store.sentinel_username, store.tls)");
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("has no port; write \"host:port\", e.g. \"sentinel-0:26379\"");
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or("an IPv6 host is written in brackets: \"[::1]:26379\"")?,
        None if host.contains(':') => {
            return Err("an IPv6 host is written in brackets: \"[::1]:26379\"")
        }
        None => host,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("has no host");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err("has a port that is not a number from 1 to 65535"),
    }
}
