//! rustls client configuration for TLS origination.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

use super::protocol;
use crate::pki::identity::ClientIdentity;
use crate::pki::provider::provider;

/// webpki roots plus the route's own CA bundle, the route's client
/// certificate if it has one; by ALPN `h2` then `http/1.1` when `http2`,
/// else `http/1.1` alone.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
    identity: Option<&ClientIdentity>,
    http2: bool,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (i, cert) in extra_roots.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| {
            format!(
                "CA certificate #{} cannot be used as a trust root: {e}",
                i + 1
            )
        })?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => {
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::clone(&id.key))))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = protocol::alpn(http2);
    Ok(Arc::new(config))
}

/// Presents the one client certificate of a route whenever asked.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
