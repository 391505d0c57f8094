//! Leases on the shared store: at most one replica of the fleet holds the
//! lease of an item (a credential's grant, or one session of it) at a time.
//! Whoever holds it may renew that item's token; the others wait for what
//! it publishes.
//!
//! A lease is a Redis key `PREFIX lease:ITEM` set with `SET NX PX` to a
//! random owner id. Its holder extends it (`renew`) while its token request
//! runs and deletes it when done (`release`); both go through scripts that
//! act only while the key still holds the holder's own id, so a holder whose
//! lease expired and was taken by another never extends or deletes the
//! other's. A holder that dies leaves the key to expire after its TTL.
//!
//! `valid_until` is counted on the holder's clock from before the command
//! was sent, so it never ends later than Redis's own expiry (clocks that
//! run at the same rate assumed; not that they agree on the time).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::redis::{item_name, Conn};
use super::{StoreError, StoreKey};
use crate::config::StoreConfig;

/// Extends the lease KEYS[1] to ARGV[2] ms if it still holds owner ARGV[1].
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease KEYS[1] if it still holds owner ARGV[1].
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The leases of one shared store.
#[derive(Clone)]
pub struct Leases {
    conn: Arc<Conn>,
    prefix: String,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("store", &self.conn.location)
            .finish_non_exhaustive()
    }
}

/// A lease this process holds. Dropping it without `release` leaves it to
/// expire.
#[derive(Debug)]
pub struct Lease {
    leases: Leases,
    name: String,
    owner: String,
    ttl: Duration,
    valid_until: Instant,
}

/// The store calls one renewal of a rotating grant makes under its lease:
/// storing a successor left unsaved, reading the grant, writing the
/// presented mark, and writing the successor (or clearing the mark).
pub const ROTATING_STORE_CALLS: u32 = 4;

/// The store calls of a `Fleet` renewal of a source that makes none itself
/// (`client_credentials`, issued keys): the publication of the token,
/// still under the lease.
pub const PUBLISH_STORE_CALLS: u32 = 1;

impl Leases {
    /// The longest one renewal may hold its lease: `request` (the token
    /// request's connect and response timeouts) and `calls` store calls,
    /// each at most the connection's per-call budget (`Conn::budget`:
    /// a connect, the command and a retry, plus the Sentinels). The one
    /// place both the fleet's and a session's lease are sized.
    pub fn renewal_bound(&self, request: Duration, calls: u32) -> Duration {
        request + self.conn.budget().saturating_mul(calls)
    }

    /// The longest from a `Presented` mark to the end of the write of the
    /// successor: the token request and one store call. `unsaved_grace`
    /// must be longer (and longer than the clocks of two replicas differ):
    /// after it, another replica presents the marked token again.
    pub fn presented_bound(&self, request: Duration) -> Duration {
        request + self.conn.budget()
    }

    /// The leases of the store `config` names (its one connection in the
    /// process; connects lazily).
    pub fn open(config: &StoreConfig) -> Result<Leases, StoreError> {
        Ok(Leases {
            conn: Conn::shared(config)?,
            prefix: config.key_prefix.clone(),
        })
    }

    /// The Redis key of `key`'s lease.
    pub fn name(&self, key: &StoreKey) -> String {
        format!("{}lease:{}", self.prefix, item_name(key))
    }

    /// Takes `key`'s lease for `ttl` if no one holds it; `None` when
    /// another holds it. With Sentinels it is set for the longest its vouch
    /// may take on top (`Conn::vouch_bound`), so that `ttl` of it is left
    /// once vouched for; one whose holder died lasts that much longer.
    pub async fn acquire(
        &self,
        key: &StoreKey,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let name = self.name(key);
        let owner = owner_id()?;
        // Set for the time its vouch may take too, so that the holder
        // still has `ttl` of it once vouched for.
        let vouching = self.conn.vouch_bound();
        let conn = Arc::clone(&self.conn);
        let (asked, id) = (name.clone(), owner.clone());
        let (taken, sent): (Option<String>, Instant) = self
            .conn
            .run(async move {
                let budget_end = Instant::now() + conn.budget().saturating_sub(conn.timeout * 2);
                // A renewal starts on the primary the Sentinels name now.
                conn.confirm_primary().await;
                let (mut manager, at) = conn.manager_at().await?;
                let sent = Instant::now();
                // A timeout of it is left for the WAIT after the Sentinels.
                let until = budget_end.min(sent + vouching.saturating_sub(conn.timeout));
                let taken: Option<String> = redis::cmd("SET")
                    .arg(&asked)
                    .arg(&id)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl + vouching))
                    .query_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))?;
                // Used only if vouched for now (`Conn::vouch_lease`: a
                // Sentinel names the primary it was won on, or while none
                // answers, that primary's replicas acknowledge it): a
                // replaced primary keeps taking writes until they demote
                // it, and what is written there is lost then. Otherwise this
                // attempt fails, its lease given back (it would block the
                // next attempt if that primary is the right one after all),
                // and the next attempt asks again. The vouch gets what is
                // left of `run`'s budget less room for the give-back.
                if taken.is_some() {
                    if let Err(e) = conn.vouch_lease(&mut manager, at.as_deref(), until).await {
                        let _: Result<i64, _> = redis::Script::new(RELEASE)
                            .key(&asked)
                            .arg(&id)
                            .arg(0)
                            .invoke_async(&mut manager)
                            .await;
                        return Err(e);
                    }
                }
                Ok((taken, sent))
            })
            .await?;
        Ok(taken.map(|_| Lease {
            leases: self.clone(),
            name,
            owner,
            ttl,
            valid_until: sent + ttl + vouching,
        }))
    }

    /// Whether anyone holds `key`'s lease now.
    pub async fn held(&self, key: &StoreKey) -> Result<bool, StoreError> {
        let name = self.name(key);
        let conn = Arc::clone(&self.conn);
        let n: u64 = self
            .conn
            .run(async move {
                let mut manager = conn.manager().await?;
                redis::cmd("EXISTS")
                    .arg(&name)
                    .query_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))
            })
            .await?;
        Ok(n > 0)
    }

    async fn script(
        &self,
        script: &'static str,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let conn = Arc::clone(&self.conn);
        let (name, owner) = (name.to_string(), owner.to_string());
        let done: i64 = self
            .conn
            .run(async move {
                let mut manager = conn.manager().await?;
                redis::Script::new(script)
                    .key(&name)
                    .arg(&owner)
                    .arg(millis(ttl))
                    .invoke_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))
            })
            .await?;
        Ok(done == 1)
    }
}

impl Lease {
    /// Extends the lease to a full TTL from now. False when it is no longer
    /// this holder's (it expired, and maybe another took it): the holder
    /// must then not act as if it held it.
    pub async fn renew(&mut self) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let kept = self
            .leases
            .script(RENEW, &self.name, &self.owner, self.ttl)
            .await?;
        if kept {
            self.valid_until = sent + self.ttl;
        } else {
            self.valid_until = sent;
        }
        Ok(kept)
    }

    /// Gives the lease up. False when it was no longer this holder's.
    pub async fn release(self) -> Result<bool, StoreError> {
        self.leases
            .script(RELEASE, &self.name, &self.owner, self.ttl)
            .await
    }

    /// Whether the lease lasts at least `span` more (on this clock).
    pub fn outlives(&self, span: Duration) -> bool {
        Instant::now() + span < self.valid_until
    }

    /// When the lease ends at the latest, unless renewed.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// The TTL it was taken (and is renewed) for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A random owner id (128 bits, hex).
fn owner_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes).map_err(|e| StoreError::Unreachable {
        location: "lease".into(),
        cause: e.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
