//! `[proxy]`: the forward listener, the unmatched policy, body sizes,
//! the spool folder and the timeouts (the global bounds are `limits`).

use std::ops::RangeInclusive;
use std::time::Duration;

use super::super::raw::RawProxy;
use super::super::{ProxySettings, Unmatched};
use super::Checker;

/// Idle keep-alive connections each upstream client keeps per upstream:
/// 64 requests at a time to one upstream go without dialling (measured:
/// wrk -c64 opened 1 upstream connection in 60k requests; with 32 kept,
/// 6,000 in 50k). A burst past that opens more, and they close as they go
/// idle instead of each holding about 26 KiB until `idle_timeout`. 0 keeps
/// none: every request dials.
const DEFAULT_IDLE_CONNECTIONS: i64 = 64;
const IDLE_CONNECTIONS: RangeInclusive<i64> = 0..=100_000;

impl Checker<'_> {
    pub(super) fn proxy(&mut self, mut raw: RawProxy) -> Option<ProxySettings> {
        let limits = self.limits(&mut raw);
        let listen = self.socket_addr(
            "proxy.listen",
            raw.listen.as_deref().unwrap_or("127.0.0.1:3128"),
        );
        let unmatched = match raw.unmatched.as_deref() {
            None | Some("deny") => Unmatched::Deny,
            Some("passthrough") => Unmatched::Passthrough,
            Some(_) => {
                self.problem(
                    "proxy.unmatched",
                    "is not a policy; use \"deny\" or \"passthrough\"",
                );
                Unmatched::Deny
            }
        };
        let max_body = self.size("proxy.max_body", raw.max_body, 64 << 20);
        let spool_memory = self.size("proxy.spool_memory", raw.spool_memory, 1 << 20);
        if max_body == 0 {
            self.problem("proxy.max_body", "must be larger than zero");
        }
        // Body lengths are counted in memory-sized integers too.
        for (key, value) in [
            ("proxy.max_body", max_body),
            ("proxy.spool_memory", spool_memory),
        ] {
            if usize::try_from(value).is_err() {
                self.problem(
                    key,
                    format!(
                        "is too large for this platform; at most {} bytes",
                        usize::MAX
                    ),
                );
            }
        }
        let spool_dir = raw
            .spool_dir
            .map(|d| self.base_dir.join(d))
            .unwrap_or_else(std::env::temp_dir);
        if !spool_dir.is_dir() {
            self.problem("proxy.spool_dir", "is not an existing folder");
        }
        let connect_timeout = self.duration(
            "proxy.connect_timeout",
            raw.connect_timeout,
            Duration::from_secs(10),
        );
        let response_timeout = self.duration(
            "proxy.response_timeout",
            raw.response_timeout,
            Duration::from_secs(60),
        );
        let idle_timeout = self.duration(
            "proxy.idle_timeout",
            raw.idle_timeout,
            Duration::from_secs(90),
        );
        let idle_connections = self.count(
            "proxy.idle_connections",
            raw.idle_connections,
            IDLE_CONNECTIONS,
            DEFAULT_IDLE_CONNECTIONS,
        );
        let client_header_timeout = self.duration(
            "proxy.client_header_timeout",
            raw.client_header_timeout,
            Duration::from_secs(30),
        );
        let drain_timeout = self.duration(
            "proxy.drain_timeout",
            raw.drain_timeout,
            Duration::from_secs(30),
        );
        // Every value is checked above, before a missing one ends the build.
        let settings = ProxySettings {
            listen: listen?,
            unmatched,
            max_body,
            spool_memory: usize::try_from(spool_memory).unwrap_or(usize::MAX),
            spool_dir,
            connect_timeout,
            response_timeout,
            idle_timeout,
            idle_connections: usize::try_from(idle_connections).unwrap_or(0),
            client_header_timeout,
            drain_timeout,
            limits,
        };
        Some(settings)
    }
}
