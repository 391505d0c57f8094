//! A client certificate chain and its key (mutual TLS), loaded and checked.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::CertifiedKey;

use super::provider::provider;
use super::{check_expiry, read_certs, read_key};

/// A checked client identity: the key matches the leaf and the leaf is valid.
#[derive(Clone)]
pub struct ClientIdentity {
    pub key: Arc<CertifiedKey>,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain_len", &self.key.cert.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Loads `cert_file` (leaf first, then any intermediates) and `key_file`.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ClientIdentity, String> {
        let chain = read_certs(cert_file)?;
        let key = read_key(key_file)?;
        let not_after = check_expiry(&chain[0], cert_file)?;
        let certified = CertifiedKey::from_der(chain, key, provider()).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the key in `{}` does not match the certificate in `{}`",
                key_file.display(),
                cert_file.display()
            ),
            other => format!(
                "`{}` cannot be used as a TLS key: {other}",
                key_file.display()
            ),
        })?;
        Ok(ClientIdentity {
            key: Arc::new(certified),
            not_after,
        })
    }
}
