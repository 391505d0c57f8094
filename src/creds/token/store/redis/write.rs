//! The versioned writes of the Redis store, each one Lua script: the
//! compare-and-set on a grant's version (which also refuses to write a
//! seed recorded as spent, or as lost into an empty item, and records the
//! seed a successor descends from as spent, in `PREFIX spent:ITEM`), and
//! the write of a successor left unsaved, only over the version carrying
//! this process's presented mark.
//!
//! Bounds: one `spent:` set per credential (sessions write none), one
//! fingerprint in it per configured seed the credential rotated from (one
//! per person's consent put into the config).

use std::sync::Arc;

use super::super::{seed_hash, StoreError, StoreKey, StoredGrant, UnsavedOutcome};
use super::conn::Held;
use super::{lost, RedisTokenStore};

/// Writes version ARGV[2] with document ARGV[3] only when the version
/// stored is ARGV[1] (0: nothing stored), with ARGV[4] as the process that
/// presented its refresh token (`p`, cleared when empty). Returns {1, new}
/// or {0, found}. The set KEYS[3] holds the fingerprints of seeds spent (a
/// successor was stored), KEYS[2] those of seeds whose grant the store
/// lost: a write of a seed itself (ARGV[5], its fingerprint) is refused
/// ({2, found}) if it is spent, or if nothing is stored and it was lost
/// (the lost record speaks only of an empty item: one written by a
/// spurious epoch change never blocks a grant still stored). A write of a
/// successor adds the seed it descends from (ARGV[7]) to the spent set. A
/// write where nothing was stored deletes the lost set if ARGV[6] is 1 (a
/// session authorized again, or copied by `store migrate`; never a
/// credential's).
const CAS: &str = r"
local found = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if found ~= tonumber(ARGV[1]) then return {0, found} end
if ARGV[5] ~= '' then
  if redis.call('SISMEMBER', KEYS[3], ARGV[5]) == 1
    or (found == 0 and redis.call('SISMEMBER', KEYS[2], ARGV[5]) == 1) then
    return {2, found}
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'p', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'p')
end
if found == 0 and ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[7]) end
return {1, tonumber(ARGV[2])}
";

/// Stores a successor whose first write failed (ARGV[3], document ARGV[4]),
/// only over the version this process marked as presented (ARGV[1], with
/// `p` = ARGV[2]): a stored grant that moved on (another replica renewed
/// after `unsaved_grace`, or a session ended and authorized again) is not
/// overwritten ({0, found}). Into an empty item it is written (the store
/// lost the grant, and this successor is its newest refresh token), except
/// for a session (ARGV[6] = 1) under the epoch this process read (ARGV[5]):
/// that one was deleted, the session ended ({3, 0}). A credential's
/// successor written records the seed it descends from (ARGV[7]) as spent
/// in the set KEYS[3], as the compare-and-set does.
const UNSAVED: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v then
  if tonumber(v) == tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'p') == ARGV[2] then
    redis.call('HSET', KEYS[1], 'v', ARGV[3], 'd', ARGV[4])
    redis.call('HDEL', KEYS[1], 'p')
    if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[7]) end
    return {1, tonumber(ARGV[3])}
  end
  return {0, tonumber(v)}
end
if ARGV[6] == '1' and ARGV[5] ~= '' and redis.call('GET', KEYS[2]) == ARGV[5] then
  return {3, 0}
end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'd', ARGV[4])
if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[7]) end
return {1, tonumber(ARGV[3])}
";

impl RedisTokenStore {
    /// Writes `grant` as version `seen + 1` if `seen` is still the stored
    /// version; then waits for `wait_replicas` replicas, if set.
    pub(super) fn compare_and_set(
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

    pub(super) fn compare_and_set_named(
        &self,
        name: &str,
        seen: u64,
        grant: &StoredGrant,
        guard: Guard,
    ) -> Result<Result<u64, u64>, StoreError> {
        let next = seen + 1;
        let doc = self.encode(name, next, grant)?;
        let presenter = grant.presented.as_ref().map_or("", |p| p.by.as_str());
        // A credential's grant: the seed itself is refused if spent; a
        // successor records its seed as spent.
        let is_seed = is_seed(grant);
        let seed = grant.seed_sha256.as_str();
        let (refused, clear, spent) = match guard {
            Guard::Seed if is_seed => (seed, "0", ""),
            Guard::Seed => ("", "0", seed),
            Guard::Session | Guard::Migrate { session: true } => ("", "1", ""),
            // Written as the operator asked (`--force` past a record, at
            // the risk `store migrate` names); the record of spent seeds
            // stays, and a successor adds its seed to it.
            Guard::Migrate { session: false } if is_seed => ("", "0", ""),
            Guard::Migrate { session: false } => ("", "0", seed),
        };
        let keys = vec![
            name.to_string(),
            lost::lost_name(&self.prefix, name),
            lost::spent_name(&self.prefix, name),
        ];
        let args = vec![
            seen.to_string(),
            next.to_string(),
            doc,
            presenter.to_string(),
            refused.to_string(),
            clear.to_string(),
            spent.to_string(),
        ];
        let answer = self.write(CAS, keys, args)?;
        match answer {
            (1, v) => {
                self.conn.mark(name, Some(Held::of(grant, v)));
                Ok(Ok(v))
            }
            (2, 0) => Err(StoreError::Lost {
                location: name.to_string(),
                seeds: vec![grant.seed_sha256.clone()],
            }),
            (2, _) => Err(StoreError::Spent {
                location: name.to_string(),
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

    /// See `TokenStore::store_unsaved`.
    pub(super) fn write_unsaved(
        &self,
        key: &StoreKey,
        marked: Option<u64>,
        epoch: Option<&str>,
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
        let keys = vec![
            name.clone(),
            lost::epoch_name(&self.prefix),
            lost::spent_name(&self.prefix, &name),
        ];
        // A credential's successor spends the seed it descends from.
        let spent = match key.session.is_none() && !is_seed(grant) {
            true => grant.seed_sha256.clone(),
            false => String::new(),
        };
        let args = vec![
            marked.to_string(),
            super::super::process_id().to_string(),
            next.to_string(),
            doc,
            // The epoch when the mark was written: the store may have
            // lost its data and got a new one since, which this process
            // has read by now (the successor then goes back in).
            epoch
                .map(str::to_string)
                .or_else(|| self.conn.epoch())
                .unwrap_or_default(),
            if key.session.is_some() { "1" } else { "0" }.to_string(),
            spent,
        ];
        Ok(match self.write(UNSAVED, keys, args)? {
            (1, _) => {
                self.conn.mark(&name, Some(Held::of(grant, next)));
                UnsavedOutcome::Stored
            }
            (3, _) => {
                self.conn.mark(&name, None);
                UnsavedOutcome::Ended
            }
            (_, found) => UnsavedOutcome::Superseded(found),
        })
    }
}

/// Whether `grant` holds the configured seed itself (not a successor).
fn is_seed(grant: &StoredGrant) -> bool {
    seed_hash(Some(&grant.refresh_token)) == grant.seed_sha256
}

/// What a versioned write guards against where nothing is stored.
#[derive(Clone, Copy)]
pub(super) enum Guard {
    /// A credential's grant: never write a seed recorded as lost.
    Seed,
    /// A session's: written again means authorized again; forget it was
    /// lost.
    Session,
    /// `store migrate`: written, never refused (it refuses an item with
    /// a record itself, unless `--force`); a session's record goes, a
    /// credential's record of spent seeds stays.
    Migrate { session: bool },
}
