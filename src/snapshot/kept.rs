//! The parts of a snapshot that are costly to lose and outlive it: upstream
//! clients (each with its pool of keep-alive connections) and the leaf
//! certificate cache of HTTPS interception. Like `TokenRegistry` does for
//! token managers, `Kept` hands each snapshot build the piece for an exact
//! fingerprint of everything that shapes it, so a reload that does not touch
//! a piece keeps it (warm pools, no new handshakes, no re-minted leaves) and
//! any change to it (roots, client identity, SNI, `http2`, timeouts,
//! `[egress]`, the CA, the leaf lifetime) builds a new one at once. The
//! count of upstream connections opened is kept here too, across reloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{EgressAllow, HostPattern};
use crate::egress::{EgressPolicy, Trust};
use crate::pki::ca::LocalCa;
use crate::pki::leaf::LeafMinter;
use crate::upstream::{ClientSpec, Opened, UpstreamClient, UpstreamSettings};

/// Owned by the App, shared by every snapshot it builds.
#[derive(Debug, Default)]
pub struct Kept {
    /// Weak: a piece lives as long as some snapshot uses it.
    clients: Mutex<HashMap<[u8; 32], Weak<UpstreamClient>>>,
    minters: Mutex<HashMap<[u8; 32], Weak<LeafMinter>>>,
    /// Upstream connections opened by every client made here, by protocol.
    opened: Arc<Opened>,
}

impl Kept {
    /// The client for `spec` under these settings and egress rules: the one a
    /// live snapshot already uses if every input is the same, else a new one.
    /// `egress` must be the policy built from `allow`.
    pub fn client(
        &self,
        spec: &ClientSpec,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
        allow: &EgressAllow,
    ) -> Result<Arc<UpstreamClient>, String> {
        let key = client_fingerprint(spec, settings, allow);
        get_or_make(&self.clients, key, || {
            UpstreamClient::counted(spec, Arc::clone(egress), settings, Arc::clone(&self.opened))
        })
    }

    /// Upstream connections opened by the clients made here, by protocol.
    pub fn opened(&self) -> &Arc<Opened> {
        &self.opened
    }

    /// The leaf minter (and its cache) for this CA and leaf lifetime.
    pub fn minter(&self, ca: &Arc<LocalCa>, lifetime: Duration) -> Arc<LeafMinter> {
        let mut h = Sha256::new();
        field(&mut h, &ca.cert);
        field(&mut h, &lifetime.as_nanos().to_be_bytes());
        let made = get_or_make(&self.minters, h.finalize().into(), || {
            Ok::<_, std::convert::Infallible>(LeafMinter::new(Arc::clone(ca), lifetime))
        });
        match made {
            Ok(minter) => minter,
            Err(never) => match never {},
        }
    }
}

fn get_or_make<T, E>(
    map: &Mutex<HashMap<[u8; 32], Weak<T>>>,
    key: [u8; 32],
    make: impl FnOnce() -> Result<T, E>,
) -> Result<Arc<T>, E> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, piece| piece.strong_count() > 0);
    if let Some(piece) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(piece);
    }
    let piece = Arc::new(make()?);
    map.insert(key, Arc::downgrade(&piece));
    Ok(piece)
}

/// Every input of `UpstreamClient::new`, and the egress rules its policy
/// enforces. A client identity is fingerprinted by its certificate chain:
/// the key was checked to match the leaf, so the chain names the pair.
fn client_fingerprint(
    spec: &ClientSpec,
    settings: UpstreamSettings,
    allow: &EgressAllow,
) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, &(spec.extra_roots.len() as u64).to_be_bytes());
    for root in &spec.extra_roots {
        field(&mut h, root);
    }
    match &spec.identity {
        None => field(&mut h, b"no identity"),
        Some(identity) => {
            field(&mut h, &(identity.key.cert.len() as u64).to_be_bytes());
            for cert in &identity.key.cert {
                field(&mut h, cert);
            }
        }
    }
    field(&mut h, spec.sni.as_deref().unwrap_or("\0no sni").as_bytes());
    let trust: &[u8] = match spec.trust {
        None => b"default",
        Some(Trust::Named) => b"named",
        Some(Trust::Untrusted) => b"untrusted",
    };
    field(&mut h, trust);
    field(&mut h, if spec.http2 { b"h2" } else { b"http/1.1" });
    for d in [
        settings.connect_timeout,
        settings.response_timeout,
        settings.idle_timeout,
    ] {
        field(&mut h, &d.as_nanos().to_be_bytes());
    }
    field(&mut h, &(settings.max_idle as u64).to_be_bytes());
    field(&mut h, &(allow.hosts.len() as u64).to_be_bytes());
    for host in &allow.hosts {
        match host {
            HostPattern::Exact(name) => field(&mut h, format!("={name}").as_bytes()),
            HostPattern::Suffix(name) => field(&mut h, format!("*{name}").as_bytes()),
        }
    }
    field(&mut h, &(allow.networks.len() as u64).to_be_bytes());
    for (net, bits) in &allow.networks {
        field(&mut h, net.to_string().as_bytes());
        field(&mut h, &[*bits]);
    }
    h.finalize().into()
}

/// Length-prefixed, so no two different inputs hash the same bytes.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::OwnAddrs;

    fn settings(idle: u64) -> UpstreamSettings {
        UpstreamSettings {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(idle),
            max_idle: 32,
        }
    }

    #[test]
    fn the_same_inputs_get_the_same_client_and_any_change_a_new_one() {
        let kept = Kept::default();
        let allow = EgressAllow::default();
        let egress = Arc::new(EgressPolicy::new(allow.clone(), OwnAddrs::default()));
        let named = ClientSpec {
            trust: Some(Trust::Named),
            ..ClientSpec::default()
        };
        let a = kept.client(&named, settings(90), &egress, &allow).unwrap();
        let b = kept.client(&named, settings(90), &egress, &allow).unwrap();
        assert!(Arc::ptr_eq(&a, &b));

        let with_sni = ClientSpec {
            sni: Some("x.test".into()),
            ..named.clone()
        };
        let untrusted = ClientSpec {
            trust: Some(Trust::Untrusted),
            ..ClientSpec::default()
        };
        let h2 = ClientSpec {
            http2: true,
            ..named.clone()
        };
        let wider = EgressAllow {
            hosts: vec![HostPattern::Exact("intranet.test".into())],
            networks: Vec::new(),
        };
        let others = [
            kept.client(&with_sni, settings(90), &egress, &allow),
            kept.client(&untrusted, settings(90), &egress, &allow),
            kept.client(&h2, settings(90), &egress, &allow),
            kept.client(&named, settings(91), &egress, &allow),
            kept.client(&named, settings(90), &egress, &wider),
        ];
        for other in others {
            assert!(!Arc::ptr_eq(&a, &other.unwrap()));
        }
    }

    #[test]
    fn a_client_no_snapshot_uses_is_not_kept() {
        let kept = Kept::default();
        let allow = EgressAllow::default();
        let egress = Arc::new(EgressPolicy::new(allow.clone(), OwnAddrs::default()));
        let spec = ClientSpec::default();
        let first = kept.client(&spec, settings(90), &egress, &allow).unwrap();
        let weak = Arc::downgrade(&first);
        drop(first);
        assert!(weak.upgrade().is_none());
        kept.client(&spec, settings(90), &egress, &allow).unwrap();
        assert_eq!(kept.clients.lock().unwrap().len(), 1);
    }
}
