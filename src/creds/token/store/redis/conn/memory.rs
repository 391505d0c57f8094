//! What a connection remembers of the shared store, for telling a store
//! that lost its data, or was rolled back, from one that never held any:
//! the store's epoch (adopted once every item lost with the one before is
//! recorded), and what each key it used held (the seed, a session's
//! authorization, the highest version seen). See `lost.rs`.

use super::Conn;
use crate::creds::token::store::StoredGrant;

/// What a key held when this process last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The fingerprint of the configured seed the grant descends from.
    pub seed: String,
    /// When a session was authorized (its facts): a session ended and
    /// authorized again starts its versions over, under another time.
    pub since: Option<u64>,
    /// The highest version of this grant seen.
    pub version: u64,
}

impl Held {
    /// What `grant`, stored at `version`, is.
    pub fn of(grant: &StoredGrant, version: u64) -> Held {
        Held {
            seed: grant.seed_sha256.clone(),
            since: grant.facts.as_ref().and_then(|f| f.authorized_at),
            version,
        }
    }

    fn same_grant(&self, other: &Held) -> bool {
        self.seed == other.seed && self.since == other.since
    }

    /// This remembered version, if `stored` is the same grant at a lower
    /// one: the store was rolled back since.
    pub fn rolled_back_to(&self, stored: &Held) -> Option<u64> {
        (self.same_grant(stored) && self.version > stored.version).then_some(self.version)
    }
}

/// The store's epoch as this process knows it.
#[derive(Default)]
pub(super) struct Epochs {
    /// The last one adopted: every item lost before it is recorded. What a
    /// read compares with.
    adopted: Option<String>,
    /// The last one read (newer than `adopted` while the items lost with
    /// `adopted` are being recorded).
    read: Option<String>,
    /// The items lost when `read` was first seen (each key with its seed's
    /// fingerprint), until they are recorded: not those seen since,
    /// which the store holds under the new epoch. At most one entry per
    /// key in `seen`.
    lost: Vec<(String, String)>,
}

/// What a read of the store's epoch tells (`Conn::epoch_peek`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochSeen {
    /// The one adopted (or the first one read).
    Same,
    /// Another one: the store lost its data, and what was lost (`lost`:
    /// the keys this process had seen before it, with their seeds'
    /// fingerprints) is not recorded yet. `first`: this read is the first
    /// to see it.
    Changed {
        first: bool,
        lost: Vec<(String, String)>,
    },
}

impl Conn {
    /// Notes that `name` holds `held` (`Some`; the highest version of
    /// the same grant is kept), or was deleted by this process (`None`).
    pub fn mark(&self, name: &str, held: Option<Held>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match held {
            Some(held) => match seen.get_mut(name) {
                Some(known) if known.same_grant(&held) => {
                    known.version = known.version.max(held.version);
                }
                _ => {
                    seen.insert(name.to_string(), held);
                }
            },
            None => {
                seen.remove(name);
            }
        }
    }

    /// What this process remembers of `name`. A read compares its answer
    /// with what was remembered *before* it was sent: a version another
    /// thread saw meanwhile may be newer than the answer without any
    /// rollback (one primary answers in order).
    pub fn remembered(&self, name: &str) -> Option<Held> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(name).cloned()
    }

    /// The seed fingerprint of the grant `name` held when this process
    /// last looked; `None` if it held none.
    pub fn was_held(&self, name: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(name).map(|h| h.seed.clone())
    }

    /// Every key this process has seen holding a grant, with its seed's
    /// fingerprint.
    pub fn all_held(&self) -> Vec<(String, String)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .map(|(k, v)| (k.clone(), v.seed.clone()))
            .collect()
    }

    /// The store's epoch as this process adopted it (`epoch_commit`).
    pub fn epoch(&self) -> Option<String> {
        let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.adopted.clone()
    }

    /// The store's epoch as this process last read it (newer than
    /// `epoch` while the items lost with that one are being recorded).
    pub fn epoch_read(&self) -> Option<String> {
        let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.read.clone()
    }

    /// Notes the store's epoch as read now (`epoch_commit` adopts it):
    /// whether it differs from the one adopted (the store lost its data
    /// since: flushed, or restarted without persistence), and whether
    /// this is the first read of it. A changed epoch reads as changed
    /// until every lost item is recorded and `epoch_commit` adopts it, so
    /// a failed record is tried again and no read meanwhile takes a lost
    /// session for an ended one. The first epoch read is adopted at once
    /// (nothing was seen before it).
    pub fn epoch_peek(&self, now: &str) -> EpochSeen {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        let first = epoch.read.as_deref() != Some(now);
        if first {
            epoch.read = Some(now.to_string());
        }
        match epoch.adopted.as_deref() {
            None => {
                epoch.adopted = Some(now.to_string());
                EpochSeen::Same
            }
            Some(e) if e == now => EpochSeen::Same,
            Some(_) => {
                if first {
                    // Taken under the epoch's lock (`seen`'s is never held
                    // while waiting for it): every read of `now` gets
                    // this list, never one half made.
                    epoch.lost = self.all_held();
                }
                EpochSeen::Changed {
                    first,
                    lost: epoch.lost.clone(),
                }
            }
        }
    }

    /// Adopts the epoch `now`: every item lost with the one before is
    /// recorded in the store.
    pub fn epoch_commit(&self, now: &str) {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.adopted = Some(now.to_string());
        if epoch.read.as_deref() == Some(now) {
            epoch.lost = Vec::new();
        }
    }
}
