//! Token managers outlive snapshots: the registry (owned by the App) hands
//! each snapshot build the manager for a credential's exact content, keyed by
//! a fingerprint of that content. An unchanged credential keeps its manager,
//! and so its token, across reloads; any change (a rotated secret, a new
//! scope) makes a new manager, so the change takes effect at once.
//!
//! Each kind of credential computes its own fingerprint (with
//! `Fingerprint`) and says how to start what it keeps (a `TokenManager`,
//! or anything else that renews in the background, like OAuth2's per-user
//! sessions); the registry only keeps them, and stops them at shutdown.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};

use crate::upstream::UpstreamSettings;

/// Waiting for a stop to finish.
pub type Stopped<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the registry keeps: something that renews tokens in the background
/// and must be stopped, without losing state, when countersign stops.
pub trait Renewing: Send + Sync + 'static {
    /// Starts no more renewals.
    fn stop(&self);
    /// Returns once no renewal under way is left (call after `stop`).
    fn stopped(&self) -> Stopped<'_>;
}

/// One kept value, seen both as itself (to hand out again) and as
/// something to stop. Weak: it lives as long as some snapshot uses it.
struct Kept {
    value: Weak<dyn Any + Send + Sync>,
    renewing: Weak<dyn Renewing>,
}

#[derive(Default)]
pub struct TokenRegistry {
    kept: Mutex<HashMap<[u8; 32], Kept>>,
    /// Set by `shutdown`: a stopped App starts no new renewals.
    closed: AtomicBool,
}

impl std::fmt::Debug for TokenRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRegistry")
            .field("kept", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl TokenRegistry {
    pub fn new() -> TokenRegistry {
        TokenRegistry::default()
    }

    /// What is kept under fingerprint `key` (see `Fingerprint`), or what
    /// `start` makes, kept from now on. Errors are `(key, message)` under
    /// `credential.NAME`.
    pub fn keep<T: Renewing>(
        &self,
        key: [u8; 32],
        start: impl FnOnce() -> Result<T, (&'static str, String)>,
    ) -> Result<Arc<T>, (&'static str, String)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(("", "countersign is stopping".to_string()));
        }
        let mut kept = self.lock();
        kept.retain(|_, k| k.renewing.strong_count() > 0);
        let found = kept.get(&key).and_then(|k| k.value.upgrade());
        if let Some(found) = found.and_then(|v| v.downcast::<T>().ok()) {
            return Ok(found);
        }
        let made = Arc::new(start()?);
        let value: Weak<dyn Any + Send + Sync> = Arc::downgrade(&made) as _;
        let renewing: Weak<dyn Renewing> = Arc::downgrade(&made) as _;
        kept.insert(key, Kept { value, renewing });
        Ok(made)
    }

    /// Stops every renewal and waits for those under way to finish, so a
    /// rotated refresh token is stored before exit.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let live: Vec<Arc<dyn Renewing>> = {
            let kept = self.lock();
            kept.values().filter_map(|k| k.renewing.upgrade()).collect()
        };
        for r in &live {
            r.stop();
        }
        for r in &live {
            r.stopped().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A SHA-256 over tagged, length-prefixed fields, so that no two different
/// credentials can feed the same bytes.
#[derive(Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn feed(&mut self, tag: &str, bytes: &[u8]) {
        for part in [tag.as_bytes(), bytes] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    /// The trust roots, client certificate and upstream timeouts every
    /// token source's connections are made with.
    pub fn connection(
        &mut self,
        roots: &[rustls_pki_types::CertificateDer<'static>],
        identity: Option<&crate::pki::identity::ClientIdentity>,
        s: UpstreamSettings,
    ) {
        // A rotated client certificate is a new credential: new connections.
        for cert in identity.iter().flat_map(|id| id.key.cert.iter()) {
            self.feed("client_cert", cert.as_ref());
        }
        for root in roots {
            self.feed("ca", root.as_ref());
        }
        for d in [s.connect_timeout, s.response_timeout, s.idle_timeout] {
            self.feed("timeout", &d.as_nanos().to_le_bytes());
        }
        self.feed("max_idle", &(s.max_idle as u64).to_le_bytes());
    }

    /// Every field of the shared store a credential's renewals go through
    /// (none: no tag at all), so a changed store (a rotated password, other
    /// Sentinels) is a new credential with connections of its own.
    pub fn shared_store(&mut self, shared: Option<&crate::config::StoreConfig>) {
        let Some(shared) = shared else { return };
        let text = |s: &Option<crate::config::Secret>| {
            s.as_ref().map_or(String::new(), |s| s.expose().to_string())
        };
        self.feed("shared", shared.url.as_bytes());
        self.feed("prefix", shared.key_prefix.as_bytes());
        self.feed("shared_user", text(&shared.username).as_bytes());
        self.feed("shared_password", text(&shared.password).as_bytes());
        let key = shared.store_key.as_ref().map_or(&[][..], |k| k.expose());
        self.feed("shared_key", key);
        self.feed("shared_ca", shared.ca_pem.as_deref().unwrap_or_default());
        if let Some((cert, key)) = &shared.client_identity {
            self.feed("shared_client_cert", cert);
            self.feed("shared_client_key", key.expose());
        }
        if let Some(s) = &shared.sentinel {
            self.feed("sentinel_user", text(&s.username).as_bytes());
            self.feed("sentinel_password", text(&s.password).as_bytes());
        }
        // What the fleet's renewal is bound by and falls back to.
        self.feed("shared_timeout", &shared.timeout.as_nanos().to_le_bytes());
        self.feed("wait_replicas", &shared.wait_replicas.to_le_bytes());
        self.feed("local_fallback", &[u8::from(shared.local_fallback)]);
        let grace = shared.unsaved_grace.as_nanos().to_le_bytes();
        self.feed("unsaved_grace", &grace);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, Default)]
    struct Fake {
        stops: AtomicUsize,
    }

    impl Renewing for Fake {
        fn stop(&self) {
            self.stops.fetch_add(1, Ordering::SeqCst);
        }

        fn stopped(&self) -> Stopped<'_> {
            Box::pin(std::future::ready(()))
        }
    }

    #[tokio::test]
    async fn unchanged_content_keeps_what_it_started_until_shutdown_stops_it() {
        let registry = TokenRegistry::new();
        let starts = AtomicUsize::new(0);
        let start = || {
            starts.fetch_add(1, Ordering::SeqCst);
            Ok(Fake::default())
        };
        let a = registry.keep([1; 32], start).unwrap();
        let again = registry.keep([1; 32], start).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "same fingerprint, same manager");
        let b = registry.keep([2; 32], start).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        // Once no snapshot uses it, the same content starts afresh.
        drop(b);
        let b = registry.keep([2; 32], start).unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);

        let refused = registry.keep::<Fake>([3; 32], || Err(("grant", "bad".into())));
        assert_eq!(refused.unwrap_err(), ("grant", "bad".to_string()));

        registry.shutdown().await;
        assert_eq!(a.stops.load(Ordering::SeqCst), 1);
        assert_eq!(b.stops.load(Ordering::SeqCst), 1);
        let late = registry.keep([4; 32], start).unwrap_err();
        assert_eq!(late, ("", "countersign is stopping".to_string()));
        assert_eq!(starts.load(Ordering::SeqCst), 3, "nothing starts after");
    }
}
