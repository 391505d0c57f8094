//! Leaf certificates for intercepted hosts, minted on demand from the local
//! CA, short-lived, and cached (as ready TLS server configs) until they near
//! their end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ca::LocalCa;
use super::provider::provider;

/// Entries this many are kept at most; the cache is cleared past it.
const MAX_CACHED: usize = 4096;

pub struct LeafMinter {
    ca: Arc<LocalCa>,
    lifetime: Duration,
    cache: Mutex<HashMap<String, (Arc<ServerConfig>, Instant)>>,
}

impl std::fmt::Debug for LeafMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMinter")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl LeafMinter {
    pub fn new(ca: Arc<LocalCa>, lifetime: Duration) -> Self {
        LeafMinter {
            ca,
            lifetime,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A TLS server config presenting a leaf for `host` (cached; reminted
    /// once half its lifetime has passed).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((config, fresh_until)) = cache.get(host) {
                if *fresh_until > now {
                    return Ok(Arc::clone(config));
                }
            }
        }
        // Minted without the lock: tunnels to other hosts do not wait for
        // this key generation and signature. (Two tunnels to a new host at
        // once may both mint; one leaf is kept.)
        let config = self.mint(host)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        // A lifetime too long for the clock is not cached rather than
        // panicking (config validation keeps it far below that).
        if let Some(fresh_until) = now.checked_add(self.lifetime / 2) {
            cache.insert(host.to_string(), (Arc::clone(&config), fresh_until));
        }
        Ok(config)
    }

    fn mint(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let san = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.try_into()
                    .map_err(|_| format!("`{host}` cannot be put in a certificate"))?,
            ),
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = time::Duration::try_from(self.lifetime)
            .ok()
            .and_then(|lifetime| now.checked_add(lifetime))
            .ok_or_else(|| {
                format!(
                    "leaf_lifetime {:?} ends past the last date a certificate can hold",
                    self.lifetime
                )
            })?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let leaf = params
            .signed_by(&key, &self.ca.issuer)
            .map_err(|e| format!("cannot sign a leaf for `{host}`: {e}"))?;
        let chain = vec![leaf.der().clone(), self.ca.cert.clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let certified =
            CertifiedKey::from_der(chain, key_der, provider()).map_err(|e| e.to_string())?;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(Arc::new(certified))));
        // h2 first: an app that offers it gets it; what countersign speaks
        // to the upstream is the upstream's own pick (`upstream/protocol.rs`).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca.cert
    }
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minter(lifetime: Duration) -> LeafMinter {
        let dir = tempfile::tempdir().unwrap();
        let files = super::super::ca::init(dir.path()).unwrap();
        let ca = LocalCa::load(&files.cert, &files.key).unwrap();
        LeafMinter::new(Arc::new(ca), lifetime)
    }

    /// A lifetime past the last date a certificate can hold (only reachable
    /// by bypassing config validation) is an error, never a panic.
    #[test]
    fn a_lifetime_beyond_the_calendar_is_an_error_not_a_panic() {
        let m = minter(Duration::from_secs(100_000_000 * 3600));
        let e = m.server_config("api.test").unwrap_err();
        assert!(e.contains("leaf_lifetime"), "{e}");
        assert!(minter(Duration::from_secs(24 * 3600))
            .server_config("api.test")
            .is_ok());
    }
}
