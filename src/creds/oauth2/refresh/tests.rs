//! A rotated refresh token the store refused is not lost with the manager
//! that received it: the next holder of the file's lock stores it first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderValue;

use super::*;
use crate::creds::token::StoreError;

/// A store in memory that refuses to save while `broken` is set.
#[derive(Debug, Default)]
struct Flaky {
    grant: std::sync::Mutex<Option<StoredGrant>>,
    broken: AtomicBool,
}

impl TokenStore for Flaky {
    fn load(&self, _key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        Ok(self.grant.lock().unwrap().clone())
    }

    fn save(&self, _key: &StoreKey, grant: &StoredGrant) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                action: "write",
                path: "flaky".into(),
                source: std::io::Error::other("disk full"),
            });
        }
        *self.grant.lock().unwrap() = Some(grant.clone());
        Ok(())
    }

    fn delete(&self, _key: &StoreKey) -> Result<(), StoreError> {
        *self.grant.lock().unwrap() = None;
        Ok(())
    }

    /// Unused: each test hands its grants their shared slot itself.
    fn slot(&self, _key: &StoreKey) -> StoreSlot {
        StoreSlot::default()
    }

    fn location(&self, _key: &StoreKey) -> String {
        "flaky".to_string()
    }
}

fn grant(store: &Arc<Flaky>, slot: &StoreSlot) -> RefreshGrant {
    RefreshGrant {
        store: Arc::clone(store) as Arc<dyn TokenStore>,
        key: StoreKey::credential("t"),
        slot: Arc::clone(slot),
        seed: Some(Secret::new("rt-0")),
        seed_sha256: store::seed_hash(Some(&Secret::new("rt-0"))),
        lease: None,
    }
}

/// The exchange a server that rotates does: `presented` in, `next` out.
fn rotates_to<'a>(
    next: &'static str,
    presented: &'a std::sync::Mutex<Vec<String>>,
) -> impl FnOnce(Secret) -> std::future::Ready<Result<Issued, FetchError>> + 'a {
    move |rt| {
        presented.lock().unwrap().push(rt.expose().to_string());
        std::future::ready(Ok(Issued {
            value: HeaderValue::from_static("Bearer at"),
            lifetime: Duration::from_secs(60),
            refresh_token: Some(Secret::new(next)),
        }))
    }
}

#[tokio::test]
async fn a_refused_save_is_stored_by_the_next_manager_before_anything_is_presented() {
    let store = Arc::new(Flaky::default());
    let slot: StoreSlot = Arc::default();
    let presented = std::sync::Mutex::new(Vec::new());

    let first = grant(&store, &slot);
    first
        .rotate("t", rotates_to("rt-1", &presented))
        .await
        .unwrap();
    store.broken.store(true, Ordering::SeqCst);
    let refused = first.rotate("t", rotates_to("rt-2", &presented)).await;
    assert!(
        matches!(refused, Err(FetchError::Store(_))),
        "the access token is not used"
    );
    assert!(slot.lock().await.is_some(), "rt-2 waits in the slot");

    // The manager is replaced (a reload) while the disk is still full: the
    // new one presents nothing, least of all the spent rt-1.
    drop(first);
    let second = grant(&store, &slot);
    let still = second.rotate("t", rotates_to("rt-x", &presented)).await;
    assert!(still.is_err());

    store.broken.store(false, Ordering::SeqCst);
    second
        .rotate("t", rotates_to("rt-3", &presented))
        .await
        .unwrap();
    assert_eq!(*presented.lock().unwrap(), ["rt-0", "rt-1", "rt-2"]);
    let stored = store.load(&StoreKey::credential("t")).unwrap().unwrap();
    assert_eq!(stored.refresh_token.expose(), "rt-3");
}

#[tokio::test]
async fn flush_stores_what_was_left_unsaved() {
    let store = Arc::new(Flaky::default());
    let slot: StoreSlot = Arc::default();
    let presented = std::sync::Mutex::new(Vec::new());
    let g = grant(&store, &slot);
    store.broken.store(true, Ordering::SeqCst);
    assert!(g.rotate("t", rotates_to("rt-1", &presented)).await.is_err());
    store.broken.store(false, Ordering::SeqCst);
    g.flush("t").await;
    assert_eq!(
        store
            .load(&StoreKey::credential("t"))
            .unwrap()
            .unwrap()
            .refresh_token
            .expose(),
        "rt-1"
    );
    assert!(slot.lock().await.is_none());
}
