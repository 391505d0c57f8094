//! The shared store's grants and authorizations under way, with their
//! failures counted in `countersign_store_errors` (op `grant`, `pending`).
//! `open` and `pending` hand these out, so every caller (a credential's
//! grant, a session's, `authorize`/`start`/`callback`) is counted in this
//! one place, whatever it does with the error afterwards.
//!
//! Not counted, because the store did its job: a compare-and-set refused
//! because another replica wrote a newer version (`Stale`) or holds the
//! presented mark (`Presented`), a lease held elsewhere (`Busy`), a spent
//! seed refused (`Spent`), and a grant or session lost with the store's
//! data (`Lost`: counted once per process under op `lost` where it is
//! found).

use std::time::Duration;

use super::pending::{Pending, PendingKind, PendingStore};
use super::{
    count_error, StoreError, StoreKey, StoreOp, StoreSlot, StoredGrant, TokenStore, UnsavedOutcome,
    Versioned,
};
use crate::config::Secret;

/// A store whose failures are counted. Forwards every method (a method
/// added to the traits must be forwarded here too, or the wrapped store's
/// own is hidden behind the default).
#[derive(Debug)]
pub struct Counted<S>(pub S);

/// Counts `result`'s error under `op`, unless it is no failure of the store.
fn counted<T>(
    op: StoreOp,
    key: Option<&StoreKey>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if let Err(e) = &result {
        // Not failures of the store: another replica's newer token or
        // mark, a lease held elsewhere, a spent seed refused; and a lost
        // grant or session is counted once per process under `lost`.
        let ended_session =
            matches!(e, StoreError::Lost { .. }) && key.is_some_and(|k| k.session.is_some());
        let refusal = matches!(
            e,
            StoreError::Stale { .. }
                | StoreError::Presented { .. }
                | StoreError::Busy { .. }
                | StoreError::Spent { .. }
                | StoreError::Lost { .. }
        );
        if !refusal && !ended_session {
            count_error(op);
        }
    }
    result
}

impl<S: TokenStore> TokenStore for Counted<S> {
    fn load(&self, key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        counted(StoreOp::Grant, Some(key), self.0.load(key))
    }

    fn save(&self, key: &StoreKey, grant: &StoredGrant) -> Result<(), StoreError> {
        counted(StoreOp::Grant, Some(key), self.0.save(key, grant))
    }

    fn load_versioned(&self, key: &StoreKey) -> Result<Option<Versioned>, StoreError> {
        counted(StoreOp::Grant, Some(key), self.0.load_versioned(key))
    }

    fn replace(&self, key: &StoreKey, seen: u64, grant: &StoredGrant) -> Result<u64, StoreError> {
        counted(StoreOp::Grant, Some(key), self.0.replace(key, seen, grant))
    }

    fn store_unsaved(
        &self,
        key: &StoreKey,
        marked: Option<u64>,
        epoch: Option<&str>,
        grant: &StoredGrant,
    ) -> Result<UnsavedOutcome, StoreError> {
        counted(
            StoreOp::Grant,
            Some(key),
            self.0.store_unsaved(key, marked, epoch, grant),
        )
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        counted(StoreOp::Grant, Some(key), self.0.delete(key))
    }

    fn slot(&self, key: &StoreKey) -> StoreSlot {
        self.0.slot(key)
    }

    fn location(&self, key: &StoreKey) -> String {
        self.0.location(key)
    }

    fn unsaved_grace(&self) -> Option<Duration> {
        self.0.unsaved_grace()
    }

    fn epoch(&self) -> Option<String> {
        self.0.epoch()
    }
}

impl<S: PendingStore> PendingStore for Counted<S> {
    fn put<'a>(
        &'a self,
        kind: PendingKind,
        id: &'a str,
        value: Secret,
        ttl: Duration,
    ) -> Pending<'a, ()> {
        let put = self.0.put(kind, id, value, ttl);
        Box::pin(async move { counted(StoreOp::Pending, None, put.await) })
    }

    fn take<'a>(&'a self, kind: PendingKind, id: &'a str) -> Pending<'a, Option<Secret>> {
        let take = self.0.take(kind, id);
        Box::pin(async move { counted(StoreOp::Pending, None, take.await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(op: StoreOp) -> u64 {
        super::super::error_counts()
            .find(|(name, _)| *name == op.name())
            .map_or(0, |(_, n)| n)
    }

    /// A store that fails with what `fail` makes.
    #[derive(Debug)]
    struct Failing(fn() -> StoreError);

    impl TokenStore for Failing {
        fn load(&self, _: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
            Err((self.0)())
        }
        fn save(&self, _: &StoreKey, _: &StoredGrant) -> Result<(), StoreError> {
            Err((self.0)())
        }
        fn delete(&self, _: &StoreKey) -> Result<(), StoreError> {
            Err((self.0)())
        }
        fn slot(&self, _: &StoreKey) -> StoreSlot {
            super::super::slot_named("counted test".into())
        }
        fn location(&self, _: &StoreKey) -> String {
            "nowhere".into()
        }
    }

    // The counters are process-wide and other tests count too: only the
    // ops no other unit test fails on are compared exactly, and the
    // refusals must leave `grant` where a failure moved it.
    #[test]
    fn failures_are_counted_and_refusals_are_not() {
        let down = Counted(Failing(|| StoreError::Unreachable {
            location: "redis".into(),
            cause: "gone".into(),
        }));
        let credential = StoreKey::credential("bank");
        let before = count(StoreOp::Grant);
        assert!(down.load(&credential).is_err());
        assert!(down
            .replace(
                &credential,
                1,
                &StoredGrant::new(String::new(), Secret::new("rt"))
            )
            .is_err());
        assert!(count(StoreOp::Grant) >= before + 2);

        let refusals = [
            Counted(Failing(|| StoreError::Stale {
                location: "k".into(),
            })),
            Counted(Failing(|| StoreError::Lost {
                location: "k".into(),
                seeds: Vec::new(),
            })),
            Counted(Failing(|| StoreError::Spent {
                location: "k".into(),
            })),
            Counted(Failing(|| StoreError::Busy {
                location: "k".into(),
            })),
            Counted(Failing(|| StoreError::Presented {
                location: "k".into(),
                by: "other".into(),
                age_s: 1,
            })),
        ];
        let before = count(StoreOp::Grant);
        for refusal in &refusals {
            assert!(refusal.load(&credential).is_err());
            assert!(refusal.load(&StoreKey::session("bank", "alice")).is_err());
        }
        // Nothing else in this crate's unit tests fails a grant on a
        // counted store, so the refusals moved nothing (a lost grant is
        // counted once, under `lost`, where it is found).
        assert_eq!(count(StoreOp::Grant), before);
    }
}
