//! The one rustls crypto provider (ring), built once and shared by every
//! TLS configuration and certified key countersign makes: upstream client
//! configs, client identities, and the leaf certificates of interception.

use std::sync::{Arc, LazyLock};

use rustls::crypto::CryptoProvider;

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

pub fn provider() -> &'static Arc<CryptoProvider> {
    &PROVIDER
}
