//! A rotated refresh token the store refused is not lost with the manager
//! that received it: the next holder of the file's lock stores it first.
//! On a shared store, a token another process presented and whose
//! successor it has not stored is not presented again within the grace.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;

use super::*;
use crate::creds::token::store::Versioned;
use crate::creds::token::StoreError;

/// A store in memory that refuses to save while `broken` is set; with
/// `grace`, one several processes share (versions and presented marks).
#[derive(Debug, Default)]
struct Flaky {
    grant: std::sync::Mutex<Option<StoredGrant>>,
    broken: AtomicBool,
    version: AtomicU64,
    grace: Option<Duration>,
    /// The epoch it reports, and the one each `store_unsaved` was given.
    epoch: std::sync::Mutex<Option<String>>,
    offered_epochs: std::sync::Mutex<Vec<Option<String>>>,
}

impl TokenStore for Flaky {
    fn load(&self, _key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        Ok(self.grant.lock().unwrap().clone())
    }

    fn load_versioned(&self, key: &StoreKey) -> Result<Option<Versioned>, StoreError> {
        let version = self.version.load(Ordering::SeqCst);
        Ok(self.load(key)?.map(|grant| Versioned { version, grant }))
    }

    fn replace(&self, key: &StoreKey, seen: u64, grant: &StoredGrant) -> Result<u64, StoreError> {
        if self.version.load(Ordering::SeqCst) != seen {
            return Err(StoreError::Stale {
                location: "flaky".into(),
            });
        }
        self.save(key, grant)?;
        Ok(self.version.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn unsaved_grace(&self) -> Option<Duration> {
        self.grace
    }

    fn epoch(&self) -> Option<String> {
        self.epoch.lock().unwrap().clone()
    }

    fn store_unsaved(
        &self,
        key: &StoreKey,
        _marked: Option<u64>,
        epoch: Option<&str>,
        grant: &StoredGrant,
    ) -> Result<store::UnsavedOutcome, StoreError> {
        let epoch = epoch.map(str::to_string);
        self.offered_epochs.lock().unwrap().push(epoch);
        self.save(key, grant)
            .map(|()| store::UnsavedOutcome::Stored)
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
        facts: None,
        lost: None,
        reported_lost: Default::default(),
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
            id_token: None,
            fields: Default::default(),
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

/// A shared store holding `token` as presented by another process `age_s`
/// seconds ago.
fn shared_with_foreign_mark(token: &str, age_s: u64) -> Arc<Flaky> {
    let mut held = StoredGrant::new(
        store::seed_hash(Some(&Secret::new("rt-0"))),
        Secret::new(token),
    );
    held.presented = Some(Presented {
        by: "another-replica".into(),
        at_unix: unix_now() - age_s,
    });
    Arc::new(Flaky {
        grant: std::sync::Mutex::new(Some(held)),
        version: AtomicU64::new(4),
        grace: Some(Duration::from_secs(60)),
        ..Flaky::default()
    })
}

#[tokio::test]
async fn a_token_another_replica_presented_is_held_back_within_the_grace() {
    let store = shared_with_foreign_mark("rt-5", 10);
    let presented = std::sync::Mutex::new(Vec::new());
    let g = grant(&store, &Arc::default());
    let refused = g.rotate("t", rotates_to("rt-6", &presented)).await;
    match refused {
        Err(FetchError::Store(StoreError::Presented { by, age_s, .. })) => {
            assert_eq!(by, "another-replica");
            assert!((10..=11).contains(&age_s), "{age_s}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("presented"),
    }
    assert!(
        presented.lock().unwrap().is_empty(),
        "nothing was presented"
    );
    let message = StoreError::Presented {
        location: "k".into(),
        by: "b".into(),
        age_s: 3,
    }
    .to_string();
    assert!(message.contains("store.unsaved_grace"), "{message}");

    // That replica stores its successor (no mark): renewal goes on from it.
    let successor = StoredGrant::new(
        store::seed_hash(Some(&Secret::new("rt-0"))),
        Secret::new("rt-6"),
    );
    store
        .replace(&StoreKey::credential("t"), 4, &successor)
        .unwrap();
    g.rotate("t", rotates_to("rt-7", &presented)).await.unwrap();
    assert_eq!(*presented.lock().unwrap(), ["rt-6"]);
}

#[tokio::test]
async fn a_mark_older_than_the_grace_is_taken_for_a_dead_replica() {
    let store = shared_with_foreign_mark("rt-5", 61);
    let presented = std::sync::Mutex::new(Vec::new());
    let g = grant(&store, &Arc::default());
    g.rotate("t", rotates_to("rt-6", &presented)).await.unwrap();
    assert_eq!(*presented.lock().unwrap(), ["rt-5"]);
    let stored = store.load(&StoreKey::credential("t")).unwrap().unwrap();
    assert_eq!(stored.refresh_token.expose(), "rt-6");
    assert_eq!(stored.presented, None, "the successor carries no mark");
}

#[tokio::test]
async fn the_mark_is_written_before_presenting_and_stays_while_the_successor_is_unsaved() {
    let store = Arc::new(Flaky {
        grace: Some(Duration::from_secs(60)),
        epoch: std::sync::Mutex::new(Some("e1".into())),
        ..Flaky::default()
    });
    let g = grant(&store, &Arc::default());
    let seen_at_exchange = std::sync::Mutex::new(None);
    let s = Arc::clone(&store);
    g.rotate("t", |rt| {
        // The store already says who presented it, and the write of the
        // successor fails; the store then loses its data (a new epoch).
        *seen_at_exchange.lock().unwrap() = s.load(&StoreKey::credential("t")).unwrap();
        s.broken.store(true, Ordering::SeqCst);
        *s.epoch.lock().unwrap() = Some("e2".into());
        std::future::ready(Ok(Issued {
            value: HeaderValue::from_static("Bearer at"),
            lifetime: Duration::from_secs(60),
            refresh_token: Some(Secret::new(format!("{}-next", rt.expose()))),
            id_token: None,
            fields: Default::default(),
        }))
    })
    .await
    .err()
    .expect("the successor could not be stored");
    let marked = seen_at_exchange.lock().unwrap().clone().unwrap();
    assert_eq!(marked.refresh_token.expose(), "rt-0");
    assert_eq!(marked.presented.unwrap().by, store::process_id());
    let left = store.load(&StoreKey::credential("t")).unwrap().unwrap();
    assert!(left.presented.is_some(), "the spent token stays marked");

    store.broken.store(false, Ordering::SeqCst);
    g.flush("t").await;
    let saved = store.load(&StoreKey::credential("t")).unwrap().unwrap();
    assert_eq!(saved.refresh_token.expose(), "rt-0-next");
    assert_eq!(saved.presented, None);
    // Offered with the epoch it was marked under, not the one read since.
    let offered = store.offered_epochs.lock().unwrap().clone();
    assert_eq!(offered, [Some("e1".to_string())]);
}

#[tokio::test]
async fn a_failed_request_clears_the_mark() {
    let store = Arc::new(Flaky {
        grace: Some(Duration::from_secs(60)),
        ..Flaky::default()
    });
    let g = grant(&store, &Arc::default());
    let failed = g
        .rotate("t", |_| std::future::ready(Err(FetchError::Interrupted)))
        .await;
    assert!(failed.is_err());
    let left = store.load(&StoreKey::credential("t")).unwrap().unwrap();
    assert_eq!(left.refresh_token.expose(), "rt-0");
    assert_eq!(
        left.presented, None,
        "another replica may present it at once"
    );
}

mod sessions;
