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
pub use pending::RedisPending;

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

/// Writes version ARGV[2] with document ARGV[3] only when the version
/// stored is ARGV[1] (0: nothing stored), with ARGV[4] as the process that
/// presented its refresh token (`p`, cleared when empty). Returns {1, new}
/// or {0, found}; {2, 0} when nothing is stored and the lost seeds KEYS[2]
/// hold ARGV[5] (a spent seed is never written back). A write where nothing
/// was stored deletes KEYS[2] if ARGV[6] is 1 (a session authorized again,
/// or `store migrate`).
const CAS: &str = r"
local found = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if found ~= tonumber(ARGV[1]) then return {0, found} end
if found == 0 and ARGV[5] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[5]) == 1 then
  return {2, 0}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'p', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'p')
end
if found == 0 and ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
return {1, tonumber(ARGV[2])}
";

/// Stores a successor whose first write failed (ARGV[3], document ARGV[4]),
/// only over the version this process marked as presented (ARGV[1], with
/// `p` = ARGV[2]): a stored grant that moved on (another replica renewed
/// after `unsaved_grace`, or a session ended and authorized again) is not
/// overwritten ({0, found}). Into an empty item it is written (the store
/// lost the grant, and this successor is its newest refresh token), except
/// for a session (ARGV[6] = 1) under the epoch this process read (ARGV[5]):
/// that one was deleted, the session ended ({3, 0}).
const UNSAVED: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v then
  if tonumber(v) == tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'p') == ARGV[2] then
    redis.call('HSET', KEYS[1], 'v', ARGV[3], 'd', ARGV[4])
    redis.call('HDEL', KEYS[1], 'p')
    return {1, tonumber(ARGV[3])}
  end
  return {0, tonumber(v)}
end
if ARGV[6] == '1' and ARGV[5] ~= '' and redis.call('GET', KEYS[2]) == ARGV[5] then
  return {3, 0}
end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'd', ARGV[4])
return {1, tonumber(ARGV[3])}
";

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
        Ok(RedisTokenStore {
            conn: Conn::shared(config)?,
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
    /// there. Returns the version written.
    pub fn import(
        &self,
        name: &str,
        grant: &StoredGrant,
        force: bool,
    ) -> Result<Result<u64, u64>, StoreError> {
        if !force {
            return self.compare_and_set_named(name, 0, grant, Guard::Migrate);
        }
        let mut seen = self.version_named(name)?;
        for _ in 0..8 {
            match self.compare_and_set_named(name, seen, grant, Guard::Migrate)? {
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

    /// Writes `grant` as version `seen + 1` if `seen` is still the stored
    /// version; then waits for `wait_replicas` replicas, if set.
    fn compare_and_set(
        &self,
        key: &StoreKey,
        seen: u64,
        grant: &StoredGrant,
    ) -> Result<Result<u64, u64>, StoreError> {
        let guard = match key.session {
            None => Guard::Seed,
            Some(_) => Guard::Session,
        };
        self.compare_and_set_named(&self.name(key), seen, grant, guard)
    }

    fn compare_and_set_named(
        &self,
        name: &str,
        seen: u64,
        grant: &StoredGrant,
        guard: Guard,
    ) -> Result<Result<u64, u64>, StoreError> {
        let next = seen + 1;
        let doc = self.encode(name, next, grant)?;
        let presenter = grant.presented.as_ref().map_or("", |p| p.by.as_str());
        let (refused, clear) = match guard {
            Guard::Seed => (grant.seed_sha256.as_str(), "0"),
            Guard::Session => ("", "1"),
            Guard::Migrate => ("", "1"),
        };
        let keys = vec![name.to_string(), lost::lost_name(&self.prefix, name)];
        let args = vec![
            seen.to_string(),
            next.to_string(),
            doc,
            presenter.to_string(),
            refused.to_string(),
            clear.to_string(),
        ];
        let answer = self.write(CAS, keys, args)?;
        match answer {
            (1, v) => {
                self.conn.mark(name, Some(&grant.seed_sha256));
                Ok(Ok(v))
            }
            (2, _) => Err(StoreError::Lost {
                location: name.to_string(),
                seeds: vec![grant.seed_sha256.clone()],
            }),
            (_, found) => Ok(Err(found)),
        }
    }

    /// Runs the writing `script` on `keys` with `args`; when it wrote
    /// (answered {1, ...}), waits for `wait_replicas` replicas, if set.
    fn write(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<(i64, u64), StoreError> {
        let (wait, timeout) = (self.wait_replicas, self.conn.timeout);
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            let script = redis::Script::new(script);
            let mut invocation = script.prepare_invoke();
            for k in &keys {
                invocation.key(k);
            }
            for a in &args {
                invocation.arg(a);
            }
            let answer: (i64, u64) = invocation
                .invoke_async(&mut manager)
                .await
                .map_err(|e| conn.failed(&e))?;
            if answer.0 == 1 && wait > 0 {
                // Half the timeout, so that Redis's answer comes before
                // the connection's own timeout gives up on it.
                let acked: u32 = redis::cmd("WAIT")
                    .arg(wait)
                    .arg((timeout.as_millis() as u64 / 2).max(1))
                    .query_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))?;
                if acked < wait {
                    let cause = format!(
                        "only {acked} of the {wait} replicas of store.wait_replicas acknowledged the write"
                    );
                    // A primary its replicas left (a failover the Sentinels
                    // have not told it of yet): ask them again.
                    conn.forget_primary(&cause);
                    return Err(conn.unreachable(cause));
                }
            }
            Ok(answer)
        })
    }
}

/// What a versioned write guards against where nothing is stored.
#[derive(Clone, Copy)]
enum Guard {
    /// A credential's grant: never write a seed recorded as lost.
    Seed,
    /// A session's: written again means authorized again; forget it was
    /// lost.
    Session,
    /// `store migrate`, the explicit way back: written, and forgotten as
    /// lost.
    Migrate,
}

impl TokenStore for RedisTokenStore {
    fn load(&self, key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        Ok(self.load_versioned(key)?.map(|v| v.grant))
    }

    fn load_versioned(&self, key: &StoreKey) -> Result<Option<Versioned>, StoreError> {
        let name = self.name(key);
        let found = lost::load(&self.conn, &self.prefix, &name)?;
        match (found.version, found.doc) {
            (Some(version), Some(doc)) => {
                let grant = self.decode(&name, version, &doc)?;
                self.conn.mark(&name, Some(&grant.seed_sha256));
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
        grant: &StoredGrant,
    ) -> Result<UnsavedOutcome, StoreError> {
        let Some(marked) = marked else {
            // Never marked (not presented through this store): nothing to
            // compare with, so only where nothing is stored.
            return match self.compare_and_set(key, 0, grant)? {
                Ok(_) => Ok(UnsavedOutcome::Stored),
                Err(found) => Ok(UnsavedOutcome::Superseded(found)),
            };
        };
        let name = self.name(key);
        let next = marked + 1;
        let doc = self.encode(&name, next, grant)?;
        let keys = vec![name.clone(), lost::epoch_name(&self.prefix)];
        let args = vec![
            marked.to_string(),
            super::process_id().to_string(),
            next.to_string(),
            doc,
            self.conn.epoch().unwrap_or_default(),
            if key.session.is_some() { "1" } else { "0" }.to_string(),
        ];
        Ok(match self.write(UNSAVED, keys, args)? {
            (1, _) => {
                self.conn.mark(&name, Some(&grant.seed_sha256));
                UnsavedOutcome::Stored
            }
            (3, _) => {
                self.conn.mark(&name, None);
                UnsavedOutcome::Ended
            }
            (_, found) => UnsavedOutcome::Superseded(found),
        })
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let name = self.name(key);
        self.conn.mark(&name, None);
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            redis::cmd("DEL")
                .arg(&name)
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
        if key.session.is_some() && !epoch_changed {
            // Same store, the key gone: the session was ended (`DELETE`)
            // on another replica.
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
