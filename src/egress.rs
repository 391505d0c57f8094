//! Egress safety, in the manner of Smokescreen: a name is resolved once,
//! every address it resolves to is checked, and only checked addresses are
//! dialled, so DNS rebinding cannot slip between check and connect. Internal
//! ranges (loopback, private, link-local with the cloud metadata address,
//! CGNAT, IPv4 embedded in IPv6, ...) are refused unless a route names the
//! host or `[egress] allow` lists it; countersign's own listeners are never a
//! destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use crate::config::EgressAllow;
#[cfg(test)]
use crate::config::HostPattern;

/// The addresses countersign listens on, kept current by the app.
#[derive(Debug, Clone, Default)]
pub struct OwnAddrs(Arc<RwLock<Vec<SocketAddr>>>);

impl OwnAddrs {
    pub fn set(&self, addrs: Vec<SocketAddr>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = addrs;
    }

    /// Whether dialling `target` could reach one of our listeners: the same
    /// port on the same address, on a loopback or unspecified one, or (for a
    /// listener on every interface) on any non-public one. IPv4-mapped IPv6
    /// forms count as the IPv4 address they carry.
    fn is_own(&self, target: SocketAddr) -> bool {
        let ip = target.ip().to_canonical();
        let own = self.0.read().unwrap_or_else(|p| p.into_inner());
        own.iter().any(|l| {
            l.port() == target.port()
                && (l.ip().to_canonical() == ip
                    || ip.is_loopback()
                    || ip.is_unspecified()
                    || l.ip().is_unspecified() && classify(ip).is_some())
        })
    }
}

/// How far a destination is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The upstream of a route: the operator named it, any range is fine.
    Named,
    /// Anything the app chose (passthrough, CONNECT tunnels).
    Untrusted,
}

#[derive(Debug, Clone)]
pub struct EgressPolicy {
    allow: EgressAllow,
    own: OwnAddrs,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EgressError {
    #[error("{host} resolves to {ip}, a {class} address; add it to [egress] allow to permit it")]
    Blocked {
        host: String,
        ip: IpAddr,
        class: &'static str,
    },
    #[error("{host}:{port} is countersign's own listener; refusing to loop")]
    SelfLoop { host: String, port: u16 },
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

impl EgressPolicy {
    pub fn new(allow: EgressAllow, own: OwnAddrs) -> Self {
        EgressPolicy { allow, own }
    }

    /// Resolves `host` once and returns its addresses if every one may be
    /// dialled under `trust`.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        trust: Trust,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| EgressError::Resolve {
                    host: host.to_string(),
                    detail: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(EgressError::NoAddress {
                host: host.to_string(),
            });
        }
        for addr in &addrs {
            self.check(host, *addr, trust)?;
        }
        Ok(addrs)
    }

    fn check(&self, host: &str, addr: SocketAddr, trust: Trust) -> Result<(), EgressError> {
        if self.own.is_own(addr) {
            return Err(EgressError::SelfLoop {
                host: host.to_string(),
                port: addr.port(),
            });
        }
        if trust == Trust::Named || self.allowed(host, addr.ip()) {
            return Ok(());
        }
        match classify(addr.ip()) {
            None => Ok(()),
            Some(class) => Err(EgressError::Blocked {
                host: host.to_string(),
                ip: addr.ip(),
                class,
            }),
        }
    }

    fn allowed(&self, host: &str, ip: IpAddr) -> bool {
        let host = host.to_ascii_lowercase();
        self.allow.hosts.iter().any(|p| p.matches(&host))
            || self
                .allow
                .networks
                .iter()
                .any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// The blocked class an address falls in, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (192, 0) if ip.octets()[2] == 0 => "IETF protocol assignments",
        (192, 0) if ip.octets()[2] == 2 => "documentation",
        (198, 51) if ip.octets()[2] == 100 => "documentation",
        (203, 0) if ip.octets()[2] == 113 => "documentation",
        (10, _) | (192, 168) => "private",
        (172, 16..=31) => "private",
        (169, 254) => "link-local (cloud metadata)",
        (100, 64..=127) => "CGNAT",
        (198, 18..=19) => "benchmarking",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Mapped, compatible, SIIT (::ffff:0:a.b.c.d), NAT64 (global and local
    // use), 6to4 and Teredo all carry an IPv4 address a relay may reach.
    let embeds_v4 = ip.to_ipv4_mapped().is_some()
        || (s[..6] == [0; 6])
        || (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4])
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0);
    Some(match s[0] {
        _ if embeds_v4 => "IPv4-in-IPv6",
        0x0100 if s[1..4] == [0; 3] => "discard-only",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xfc00..=0xfdff => "private (unique local)",
        0xff00..=0xffff => "multicast",
        _ => return None,
    })
}

/// Whether `ip` is inside `net`/`bits` (same family only).
pub fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(i), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(i) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(i), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(i) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_classified() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "CGNAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "IPv4-in-IPv6"),
            ("::ffff:8.8.8.8", "IPv4-in-IPv6"),
            ("::127.0.0.1", "IPv4-in-IPv6"),
            ("64:ff9b::a9fe:a9fe", "IPv4-in-IPv6"),
            ("2002:7f00:1::", "IPv4-in-IPv6"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private (unique local)"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("203.0.113.9", "documentation"),
            ("::ffff:0:7f00:1", "IPv4-in-IPv6"),
            ("64:ff9b:1::a9fe:a9fe", "IPv4-in-IPv6"),
            ("2001:0:4136:e378::1", "IPv4-in-IPv6"),
            ("100::1", "discard-only"),
        ] {
            assert_eq!(classify(ip(addr)), Some(class), "{addr}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.1.1",
            "2606:4700::1111",
            "2001:db8::1",
            "2001:4860::8888",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        assert!(in_network(ip("10.9.8.7"), ip("10.0.0.0"), 8));
        assert!(!in_network(ip("11.0.0.1"), ip("10.0.0.0"), 8));
        assert!(in_network(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_network(ip("fd00::5"), ip("fd00::"), 8));
        assert!(!in_network(ip("10.0.0.1"), ip("fd00::"), 8));
    }

    #[tokio::test]
    async fn the_policy_refuses_checks_names_and_loops() {
        let own = OwnAddrs::default();
        own.set(vec!["127.0.0.1:3128".parse().unwrap()]);
        let allow = EgressAllow {
            hosts: vec![HostPattern::Exact("localhost".into())],
            networks: vec![(ip("10.0.0.0"), 8)],
        };
        let p = EgressPolicy::new(allow, own);
        assert!(matches!(
            p.resolve("169.254.169.254", 80, Trust::Untrusted).await,
            Err(EgressError::Blocked { .. })
        ));
        assert!(p.resolve("10.1.1.1", 80, Trust::Untrusted).await.is_ok());
        assert!(p.resolve("127.0.0.1", 80, Trust::Named).await.is_ok());
        assert!(p.resolve("localhost", 80, Trust::Untrusted).await.is_ok());
        assert!(matches!(
            p.resolve("localhost", 3128, Trust::Named).await,
            Err(EgressError::SelfLoop { .. })
        ));
        assert!(matches!(
            p.resolve("::ffff:127.0.0.1", 3128, Trust::Named).await,
            Err(EgressError::SelfLoop { .. })
        ));
    }

    #[tokio::test]
    async fn a_listener_on_every_interface_is_ours_at_any_internal_address() {
        let own = OwnAddrs::default();
        own.set(vec!["0.0.0.0:9901".parse().unwrap()]);
        let all = EgressAllow {
            hosts: Vec::new(),
            networks: vec![(ip("0.0.0.0"), 0), (ip("::"), 0)],
        };
        let p = EgressPolicy::new(all, own);
        for target in ["10.0.0.7", "100.64.0.1", "169.254.1.1", "fd00::7"] {
            assert!(
                matches!(
                    p.resolve(target, 9901, Trust::Named).await,
                    Err(EgressError::SelfLoop { .. })
                ),
                "{target}"
            );
        }
        assert!(p.resolve("10.0.0.7", 9902, Trust::Named).await.is_ok());
    }
}
