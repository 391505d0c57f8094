//! Rules for `[intercept]`, `[connect]` and `[egress]`: how CONNECT requests
//! and unrouted traffic are handled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::super::raw::{RawConnect, RawEgress, RawIntercept};
use super::super::{EgressAllow, HostPattern, InterceptSettings};
use super::Checker;
use crate::pki::ca::LocalCa;

impl Checker<'_> {
    pub(super) fn intercept(&mut self, raw: RawIntercept) -> Option<InterceptSettings> {
        let leaf_lifetime = self.duration(
            "intercept.leaf_lifetime",
            raw.leaf_lifetime,
            Duration::from_secs(24 * 3600),
        );
        let (Some(cert), Some(key)) = (raw.ca_cert, raw.ca_key) else {
            self.problem(
                "intercept",
                "needs both `ca_cert` and `ca_key` (create them with `countersign ca init --out DIR`)",
            );
            return None;
        };
        let cert = self.base_dir.join(cert);
        let key = self.base_dir.join(key);
        self.other_files.push(cert.clone());
        self.other_files.push(key.clone());
        match LocalCa::load(&cert, &key) {
            Ok(ca) => Some(InterceptSettings {
                ca: Arc::new(ca),
                leaf_lifetime,
            }),
            Err(e) => {
                self.problem("intercept.ca_cert", e);
                None
            }
        }
    }

    pub(super) fn tunnel(&mut self, raw: RawConnect) -> Vec<(HostPattern, Option<u16>)> {
        let mut out = Vec::new();
        for (i, entry) in raw.tunnel.iter().enumerate() {
            let path = format!("connect.tunnel[{i}]");
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
                    Ok(port) if port > 0 => (h, Some(port)),
                    _ => {
                        self.problem(path, "ends in something that is not a port");
                        continue;
                    }
                },
                _ => (entry.as_str(), None),
            };
            if let Some(pattern) = self.host_pattern(&path, host) {
                out.push((pattern, port));
            }
        }
        out
    }

    pub(super) fn egress(&mut self, raw: RawEgress) -> EgressAllow {
        let mut allow = EgressAllow::default();
        for (i, entry) in raw.allow.iter().enumerate() {
            let path = format!("egress.allow[{i}]");
            if let Some((net, bits)) = entry.split_once('/') {
                match (net.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Ok(ip), Ok(b)) if b <= if ip.is_ipv4() { 32 } else { 128 } => {
                        allow.networks.push((ip, b))
                    }
                    _ => self.problem(path, "is not a network; write e.g. \"10.0.0.0/8\""),
                }
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                allow
                    .networks
                    .push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else if let Some(pattern) = self.host_pattern(&path, entry) {
                allow.hosts.push(pattern);
            }
        }
        allow
    }
}
