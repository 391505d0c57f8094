//! The `TokenStore` on Redis, shared by every replica: one hash per key
//! (`v`, the version, and `d`, the document), under `key_prefix`. With
//! `store_key` the document is sealed with AES-256-GCM bound to the Redis
//! key and the version, so a value moved to another key, or given another
//! version, does not open. A rotated refresh token is written by a
//! compare-and-set on the version (a Lua script): a writer that read an
//! older version never overwrites a newer one.

mod client;
mod conn;
mod inspect;
mod lost;
mod pending;
mod primary;
mod sentinel;
mod write;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::seal::{self, SealKey};
use super::{
    session_hash, Facts, Presented, StoreError, StoreKey, StoreSlot, StoredGrant, TokenStore,
    UnsavedOutcome, Versioned,
};
use crate::config::{Secret, StoreConfig};

pub use client::describe;
pub use conn::Conn;
use conn::Held;
pub use inspect::Records;
pub use pending::RedisPending;
use write::Guard;

/// The sealing key of `config`, if it has a `store_key`.
fn seal_of(config: &StoreConfig) -> Result<Option<Arc<SealKey>>, StoreError> {
    match &config.store_key {
        Some(k) => Ok(Some(Arc::new(SealKey::new(k).ok_or_else(|| {
            StoreError::Unreachable {
                location: config.url.clone(),
                cause: "store_key is not a 32-byte key".into(),
            }
        })?))),
        None => Ok(None),
    }
}

const FORMAT: &str = "countersign-token-store";
/// Binds every sealed value to this use, its Redis key and its version.
const AAD: &str = "countersign redis store v1";

#[derive(Debug)]
pub struct RedisTokenStore {
    conn: Arc<Conn>,
    prefix: String,
    seal: Option<Arc<SealKey>>,
    wait_replicas: u32,
    unsaved_grace: Duration,
}

/// What names `key` under the prefix: `grant:CREDENTIAL`, or
/// `session:CREDENTIAL:HASH` (a session's id is hashed with its credential,
/// so no user id shows in a key name). Leases and published tokens of the
/// same item put their own word before it.
pub fn item_name(key: &StoreKey) -> String {
    match &key.session {
        None => format!("grant:{}", key.credential),
        Some(session) => format!(
            "session:{}:{}",
            key.credential,
            session_hash(&key.credential, session)
        ),
    }
}

impl RedisTokenStore {
    pub fn open(config: &StoreConfig) -> Result<RedisTokenStore, StoreError> {
        let conn = Conn::shared(config)?;
        lost::watch(&conn, &config.key_prefix);
        Ok(RedisTokenStore {
            conn,
            prefix: config.key_prefix.clone(),
            seal: seal_of(config)?,
            wait_replicas: config.wait_replicas,
            unsaved_grace: config.unsaved_grace,
        })
    }

    /// The Redis key of `key` (see `item_name`).
    pub fn name(&self, key: &StoreKey) -> String {
        format!("{}{}", self.prefix, item_name(key))
    }

    /// The Redis key of credential `credential`'s own state, or of its
    /// session whose `session_hash` is `session` (all a session file
    /// tells of it).
    pub fn key_name(&self, credential: &str, session: Option<&str>) -> String {
        match session {
            None => format!("{}grant:{credential}", self.prefix),
            Some(hash) => format!("{}session:{credential}:{hash}", self.prefix),
        }
    }

    /// Whether Redis answers (a `PING`).
    pub fn ping(&self) -> Result<(), StoreError> {
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            redis::cmd("PING")
                .query_async::<()>(&mut manager)
                .await
                .map_err(|e| conn.failed(&e))
        })
    }

    /// Writes `grant` under the Redis key `name` (from `key_name`), as
    /// `store migrate` copies it: only where nothing is stored yet
    /// (`Err(version found)` otherwise), or with `force` over whatever is
    /// there. Returns the version written. A credential's records of
    /// spent and lost seeds stay (`Guard::Migrate`).
    pub fn import(
        &self,
        name: &str,
        grant: &StoredGrant,
        force: bool,
    ) -> Result<Result<u64, u64>, StoreError> {
        let session = name
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|item| item.starts_with("session:"));
        let guard = Guard::Migrate { session };
        if !force {
            return self.compare_and_set_named(name, 0, grant, guard);
        }
        let mut seen = self.version_named(name)?;
        for _ in 0..8 {
            match self.compare_and_set_named(name, seen, grant, guard)? {
                Ok(v) => return Ok(Ok(v)),
                Err(found) => seen = found,
            }
        }
        Err(StoreError::Stale {
            location: name.to_string(),
        })
    }

    fn bound_to(name: &str, version: u64) -> Vec<u8> {
        format!("{AAD}\n{name}\n{version}").into_bytes()
    }

    fn encode(&self, name: &str, version: u64, grant: &StoredGrant) -> Result<String, StoreError> {
        let mut inner = json!({
            "seed_sha256": grant.seed_sha256,
            "refresh_token": grant.refresh_token.expose(),
        });
        if let Some(p) = &grant.presented {
            inner["presented"] = json!({ "by": p.by, "at": p.at_unix });
        }
        if let Some(facts) = &grant.facts {
            inner["facts"] = facts.to_json();
        }
        let bound_to = Self::bound_to(name, version);
        seal::wrap(FORMAT, "grant", &inner, self.seal.as_deref(), &bound_to)
            .ok_or_else(|| self.conn.unreachable("sealing failed".into()))
    }

    fn decode(&self, name: &str, version: u64, text: &[u8]) -> Result<StoredGrant, StoreError> {
        let garbage = || StoreError::Damaged {
            location: name.to_string(),
        };
        let bound_to = Self::bound_to(name, version);
        let grant = seal::unwrap(FORMAT, "grant", text, self.seal.as_deref(), &bound_to, name)?;
        let text = |n| grant.get(n).and_then(Value::as_str);
        let presented = match grant.get("presented") {
            None => None,
            Some(p) => match (p.get("by").and_then(Value::as_str), p.get("at")) {
                (Some(by), Some(at)) => Some(Presented {
                    by: by.to_string(),
                    at_unix: at.as_u64().ok_or_else(garbage)?,
                }),
                _ => return Err(garbage()),
            },
        };
        let facts = match grant.get("facts") {
            None => None,
            Some(f) => Some(Facts::from_json(f).ok_or_else(garbage)?),
        };
        match (text("seed_sha256"), text("refresh_token")) {
            (Some(seed), Some(token)) if !token.is_empty() => Ok(StoredGrant {
                seed_sha256: seed.to_string(),
                refresh_token: Secret::new(token),
                presented,
                facts,
            }),
            _ => Err(garbage()),
        }
    }
}

impl TokenStore for RedisTokenStore {
    fn load(&self, key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        Ok(self.load_versioned(key)?.map(|v| v.grant))
    }

    fn load_versioned(&self, key: &StoreKey) -> Result<Option<Versioned>, StoreError> {
        let name = self.name(key);
        // Remembered before the read is sent: a newer version that another
        // thread of this process sees while this read is under way is no
        // rollback of what this read finds.
        let before = self.conn.remembered(&name);
        let found = lost::load(&self.conn, &self.prefix, &name)?;
        match (found.version, found.doc) {
            (Some(version), Some(doc)) => {
                let grant = self.decode(&name, version, &doc)?;
                let held = Held::of(&grant, version);
                if let Some(highest) = before.and_then(|b| b.rolled_back_to(&held)) {
                    return Err(self.rolled_back(name, version, highest, held.seed));
                }
                self.conn.mark(&name, Some(held));
                Ok(Some(Versioned { version, grant }))
            }
            (None, None) => self.empty(key, name, found.epoch_changed, found.lost),
            _ => Err(StoreError::Damaged { location: name }),
        }
    }

    fn save(&self, key: &StoreKey, grant: &StoredGrant) -> Result<(), StoreError> {
        // Whatever version is there is replaced; a race with another
        // writer is retried on the version it found.
        let mut seen = self.stored_version(key)?;
        for _ in 0..8 {
            match self.compare_and_set(key, seen, grant)? {
                Ok(_) => return Ok(()),
                Err(found) => seen = found,
            }
        }
        Err(StoreError::Stale {
            location: self.name(key),
        })
    }

    fn replace(&self, key: &StoreKey, seen: u64, grant: &StoredGrant) -> Result<u64, StoreError> {
        self.compare_and_set(key, seen, grant)?
            .map_err(|_| StoreError::Stale {
                location: self.name(key),
            })
    }

    fn store_unsaved(
        &self,
        key: &StoreKey,
        marked: Option<u64>,
        epoch: Option<&str>,
        grant: &StoredGrant,
    ) -> Result<UnsavedOutcome, StoreError> {
        self.write_unsaved(key, marked, epoch, grant)
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let name = self.name(key);
        self.conn.mark(&name, None);
        // An ended item is not lost: a record of an earlier loss goes too.
        let lost = lost::lost_name(&self.prefix, &name);
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            redis::cmd("DEL")
                .arg(&name)
                .arg(&lost)
                .query_async::<()>(&mut manager)
                .await
                .map_err(|e| conn.failed(&e))
        })
    }

    fn slot(&self, key: &StoreKey) -> StoreSlot {
        super::slot_named(format!("redis {} {}", self.conn.location, self.name(key)))
    }

    fn location(&self, key: &StoreKey) -> String {
        format!("{} key {}", self.conn.location, self.name(key))
    }

    fn unsaved_grace(&self) -> Option<Duration> {
        Some(self.unsaved_grace)
    }

    fn epoch(&self) -> Option<String> {
        self.conn.epoch_read()
    }
}

impl RedisTokenStore {
    /// What an empty item `name` means: nothing yet (`None`), a session
    /// ended on another replica (`None`), or a lost grant (`Lost`, recorded
    /// in the store for every replica).
    fn empty(
        &self,
        key: &StoreKey,
        name: String,
        epoch_changed: bool,
        recorded: Vec<String>,
    ) -> Result<Option<Versioned>, StoreError> {
        let Some(seed) = self.conn.was_held(&name) else {
            return match recorded.is_empty() {
                true => Ok(None),
                false => Err(StoreError::Lost {
                    location: name,
                    seeds: recorded,
                }),
            };
        };
        if key.session.is_some() && !epoch_changed && recorded.is_empty() {
            // Same store, the key gone, no record of a loss (the epoch
            // watch records one when it sees the epoch change; ending a
            // session deletes any): the session was ended (`DELETE`) on
            // another replica.
            self.conn.mark(&name, None);
            return Ok(None);
        }
        if let Err(e) = lost::record(&self.conn, &self.prefix, &name, &seed) {
            tracing::warn!(key = %name, error = %e, "cannot record the lost item in the shared store; other replicas find it lost when they read it");
        }
        let mut seeds = recorded;
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
        Err(StoreError::Lost {
            location: name,
            seeds,
        })
    }

    /// The grant in `name` is at `version`, lower than the `highest` this
    /// process saw of it (from the seed `seed`): the store was rolled back
    /// (a restored backup, a restart or failover that lost acknowledged
    /// writes), and its refresh token may be spent. Lost, as an emptied
    /// key is, and recorded so (for the seed: never presented again).
    fn rolled_back(&self, name: String, version: u64, highest: u64, seed: String) -> StoreError {
        tracing::error!(key = %name, version, highest, "the shared store holds an older version of this grant than this replica saw there (rolled back: restored from a backup, or restarted or failed over without the newest writes); its refresh token may be spent, so it is not presented: the grant is lost");
        if let Err(e) = lost::record(&self.conn, &self.prefix, &name, &seed) {
            tracing::warn!(key = %name, error = %e, "cannot record the rolled-back item in the shared store");
        }
        StoreError::Lost {
            location: name,
            seeds: vec![seed],
        }
    }

    fn stored_version(&self, key: &StoreKey) -> Result<u64, StoreError> {
        self.version_named(&self.name(key))
    }

    /// The version stored under the Redis key `name` (0: nothing there).
    pub fn version_named(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_string();
        let conn = Arc::clone(&self.conn);
        let version: Option<u64> = self.conn.block(async move {
            let mut manager = conn.manager().await?;
            redis::cmd("HGET")
                .arg(&name)
                .arg("v")
                .query_async(&mut manager)
                .await
                .map_err(|e| conn.failed(&e))
        })?;
        Ok(version.unwrap_or(0))
    }
}
