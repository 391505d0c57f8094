//! Telling a store that lost its data from one that never held any, fleet
//! wide. A fresh Redis and a flushed one look the same; what tells them
//! apart is what the replicas remember, so each keeps two things:
//!
//! - the store's epoch (`PREFIX epoch`, a random value set once by the
//!   first replica that reads the store): a replica that read one epoch and
//!   later finds another, or none, knows the store lost its data;
//! - which keys it has seen holding a grant, and the fingerprint of the
//!   configured seed each grant descends from (`Conn::mark`).
//!
//! A replica that finds the store lost writes that into the store, for the
//! replicas that remember nothing (started since): a set `PREFIX lost:ITEM`
//! per item it had seen, holding the fingerprints of the seeds the lost
//! grants descend from. A key found empty with such a set is lost for
//! everyone; a credential's configured seed whose fingerprint is in the set
//! is never written into the empty key, so never presented (the versioned
//! write refuses to seed it, atomically with the check), and only a new
//! seed, or `store migrate --force`, writes the item again. The set is
//! consulted only where the item is empty: a spurious record (the epoch
//! key alone deleted or evicted) never blocks a grant still stored. Seeds
//! spent by a stored successor are another set, `PREFIX spent:ITEM`
//! (`write.rs`). An empty session key under an unchanged epoch was deleted
//! (the session ended on another replica), not lost.
//!
//! A replica that has read the epoch reads it again every `WATCH_EVERY`
//! (`watch`), so a loss is recorded even while no renewal is due. A new
//! epoch is adopted only once every lost item is recorded: a record that
//! failed is tried again at the next read, and meanwhile every read of this
//! process sees the epoch as changed (a lost session is never taken for an
//! ended one).
//!
//! Bounds: one watcher task per connection (one script every 5 s, on a
//! blocking thread of the store's runtime while it waits); one epoch key
//! per store; one `lost:` set per item a replica had
//! seen (a credential or a session), each holding the few seeds that item
//! descended from; a session's set is deleted when the session is written
//! again (authorized again) or ended (`DELETE`). Recording a loss is one pipelined round trip
//! of one `SADD` per item seen, repeated at each read of the epoch (every
//! 5 s, and each renewal's read) until Redis takes it; meanwhile the
//! connection keeps one copy of the list of items it had seen.
//!
//! A store rolled back (an older version of a grant this process saw at a
//! newer one) is told by `Conn::rolled_back` and refused as lost by
//! `load_versioned`, recorded with `record`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::super::StoreError;
use super::conn::EpochSeen;
use super::Conn;

/// How often a replica that has read the store's epoch reads it again,
/// so that a loss is recorded within this long even if no renewal reads
/// the store meanwhile.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Reads item KEYS[1] (`v`, `d`), the epoch KEYS[2] (set to ARGV[1] if
/// there is none: the first reader, or a store that lost it), and, if the
/// item is empty, the lost seeds KEYS[3] holds.
const LOAD: &str = r"
local got = redis.call('HMGET', KEYS[1], 'v', 'd')
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
local lost = {}
if not got[1] then lost = redis.call('SMEMBERS', KEYS[3]) end
return {got[1], got[2], epoch, lost}
";

/// The epoch KEYS[1], set to ARGV[1] first if there is none.
const EPOCH: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
return epoch
";

/// What one read of an item found.
pub struct Loaded {
    pub version: Option<u64>,
    pub doc: Option<Vec<u8>>,
    /// The store's epoch differs from the one this process adopted: the
    /// store lost its data, and the items lost may not all be recorded yet.
    pub epoch_changed: bool,
    /// With an empty item: the fingerprints of seeds recorded lost for it.
    pub lost: Vec<String>,
}

/// The Redis key of the epoch under `prefix`.
pub fn epoch_name(prefix: &str) -> String {
    format!("{prefix}epoch")
}

/// The Redis key of the lost seeds of the item named `name` (under
/// `prefix`).
pub fn lost_name(prefix: &str, name: &str) -> String {
    let item = name.strip_prefix(prefix).unwrap_or(name);
    format!("{prefix}lost:{item}")
}

/// The Redis key of the spent seeds of the item named `name` (under
/// `prefix`): those a stored successor descends from (`write.rs`).
pub fn spent_name(prefix: &str, name: &str) -> String {
    let item = name.strip_prefix(prefix).unwrap_or(name);
    format!("{prefix}spent:{item}")
}

/// Reads the item `name`, the epoch and the lost seeds in one round trip.
pub fn load(conn: &Arc<Conn>, prefix: &str, name: &str) -> Result<Loaded, StoreError> {
    let fresh = fresh_epoch(conn)?;
    let keys = [
        name.to_string(),
        epoch_name(prefix),
        lost_name(prefix, name),
    ];
    let worker = Arc::clone(conn);
    let (version, doc, epoch, lost): (Option<u64>, Option<Vec<u8>>, String, Vec<String>) = conn
        .block(async move {
            let mut manager = worker.manager().await?;
            redis::Script::new(LOAD)
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .arg(fresh)
                .invoke_async(&mut manager)
                .await
                .map_err(|e| worker.failed(&e))
        })?;
    let seen = conn.epoch_peek(&epoch);
    let epoch_changed = seen != EpochSeen::Same;
    if let EpochSeen::Changed { first, lost } = seen {
        record_all(conn, prefix, &epoch, first, lost);
    }
    Ok(Loaded {
        version,
        doc,
        epoch_changed,
        lost,
    })
}

/// Records in the store that the item `name` (descending from the seed
/// whose fingerprint is `seed`) was lost, for every replica.
pub fn record(conn: &Arc<Conn>, prefix: &str, name: &str, seed: &str) -> Result<(), StoreError> {
    let (lost, seed) = (lost_name(prefix, name), seed.to_string());
    let worker = Arc::clone(conn);
    conn.block(async move {
        let mut manager = worker.manager().await?;
        redis::cmd("SADD")
            .arg(&lost)
            .arg(&seed)
            .query_async::<()>(&mut manager)
            .await
            .map_err(|e| worker.failed(&e))
    })
}

/// The store lost its data (its epoch is now `epoch`; `first`: this
/// process sees it for the first time): records every item this process
/// had seen before (`held`, each key with its seed's fingerprint) as
/// lost, all in one round trip, and adopts `epoch` once they are all
/// recorded. Until then the epoch reads as changed, and the next
/// read of it (the epoch watch, within `WATCH_EVERY`, or a renewal)
/// records them again (adding a member twice changes nothing).
fn record_all(
    conn: &Arc<Conn>,
    prefix: &str,
    epoch: &str,
    first: bool,
    held: Vec<(String, String)>,
) {
    if first {
        tracing::error!(
            store = %conn.location,
            items = held.len(),
            "the shared store lost its data (its epoch changed: flushed, or restarted without persistence); every grant and session this replica had seen there is recorded as lost, and no configured refresh_token it descends from is presented again"
        );
    }
    let records: Vec<(String, String)> = held
        .into_iter()
        .map(|(name, seed)| (lost_name(prefix, &name), seed))
        .collect();
    let worker = Arc::clone(conn);
    let recorded = conn.block(async move {
        if records.is_empty() {
            return Ok(());
        }
        let mut manager = worker.manager().await?;
        let mut pipe = redis::pipe();
        for (lost, seed) in &records {
            pipe.cmd("SADD").arg(lost).arg(seed).ignore();
        }
        pipe.query_async::<()>(&mut manager)
            .await
            .map_err(|e| worker.failed(&e))
    });
    match recorded {
        Ok(()) => conn.epoch_commit(epoch),
        Err(e) => {
            tracing::warn!(store = %conn.location, error = %e, "cannot record the lost items in the shared store yet; trying again at the next read of its epoch (within 5 s)");
        }
    }
}

/// Reads the epoch every `WATCH_EVERY` (one `GET`; one watcher per
/// connection, ending with it): once this process has read one, a store
/// that lost it gets the lost items this process had seen recorded at the
/// first read that can write them (tried again every `WATCH_EVERY` until
/// then), before a replica started since could seed them.
pub fn watch(conn: &Arc<Conn>, prefix: &str) {
    if conn.watched.swap(true, Ordering::Relaxed) {
        return;
    }
    let (weak, prefix): (Weak<Conn>, String) = (Arc::downgrade(conn), prefix.to_string());
    conn.spawn(async move {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let (weak, prefix) = (weak.clone(), prefix.clone());
            // `check` waits for the store's own thread: run it beside it.
            let alive = tokio::task::spawn_blocking(move || match weak.upgrade() {
                Some(conn) => {
                    check(&conn, &prefix);
                    true
                }
                None => false,
            })
            .await
            .unwrap_or(false);
            if !alive {
                return;
            }
        }
    });
}

/// One look at the epoch: a changed or missing one records every item
/// this process had seen as lost (and sets a new epoch if there is none).
fn check(conn: &Arc<Conn>, prefix: &str) {
    if conn.epoch().is_none() {
        return;
    }
    let Ok(fresh) = fresh_epoch(conn) else {
        return;
    };
    let (name, worker) = (epoch_name(prefix), Arc::clone(conn));
    let found = conn.block(async move {
        let mut manager = worker.manager().await?;
        // The epoch there, or the fresh one set now if there is none.
        redis::Script::new(EPOCH)
            .key(&name)
            .arg(&fresh)
            .invoke_async::<String>(&mut manager)
            .await
            .map_err(|e| worker.failed(&e))
    });
    // An unreachable store is the renewals' to report.
    if let Ok(epoch) = found {
        if let EpochSeen::Changed { first, lost } = conn.epoch_peek(&epoch) {
            record_all(conn, prefix, &epoch, first, lost);
        }
    }
}

/// A new random epoch, in case the store has none.
fn fresh_epoch(conn: &Conn) -> Result<String, StoreError> {
    let mut bytes = [0u8; 12];
    crate::random::fill(&mut bytes).map_err(|e| conn.unreachable(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
