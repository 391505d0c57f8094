//! The one rustls crypto provider (ring), built once and shared by every
//! TLS configuration and certified key countersign makes: upstream client
//! configs, client identities, and the leaf certificates of interception.
//! It is also the process default (`install`), so a library that builds
//! its own TLS config with `ClientConfig::builder()` (redis-rs, for a
//! `rediss://` store) uses this one rather than building a second.

use std::sync::{Arc, LazyLock};

use rustls::crypto::CryptoProvider;

static PROVIDER: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| {
    // Installing fails only if a default is in place already; the only
    // provider compiled in is ring (deny.toml bans aws-lc-rs), so that one
    // is ring too, installed by rustls from its crate features for a
    // library that got there first. Either way there is one, shared.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::clone(CryptoProvider::get_default().expect("invariant: a default is installed"))
});

pub fn provider() -> &'static Arc<CryptoProvider> {
    &PROVIDER
}

/// Makes countersign's provider the process default, once; call it before
/// anything that may build a TLS config of its own.
pub fn install() {
    LazyLock::force(&PROVIDER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_default_is_countersigns_provider() {
        install();
        let default = CryptoProvider::get_default().expect("a default is installed");
        assert!(Arc::ptr_eq(default, provider()), "one provider, not two");
        // What redis-rs does for `rediss://`: a config from the default.
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        assert!(Arc::ptr_eq(config.crypto_provider(), provider()));
    }
}
