//! Reading the shared store for the operator's commands (`countersign
//! token`, `store migrate`), beyond what renewals need: how many sessions
//! of a credential are stored, and what is recorded of an item besides its
//! value (seeds lost with it, seeds spent). Read only; no value is opened.

use std::sync::Arc;

use super::super::StoreError;
use super::{lost, RedisTokenStore};

/// Keys `SCAN` looks at per round trip.
const SCAN_COUNT: u64 = 1000;

impl RedisTokenStore {
    /// How many sessions of credential `credential` are stored (their keys
    /// `PREFIX session:CREDENTIAL:*`), by `SCAN`, so a large Redis is never
    /// blocked.
    pub fn session_count(&self, credential: &str) -> Result<u64, StoreError> {
        let pattern = format!("{}session:{credential}:*", self.prefix);
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            let (mut cursor, mut count) = (0u64, 0u64);
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))?;
                count += keys.len() as u64;
                if next == 0 {
                    return Ok(count);
                }
                cursor = next;
            }
        })
    }
}

/// What the store records of one item besides its value: fingerprints of
/// configured seeds, never a token.
#[derive(Debug, Default)]
pub struct Records {
    /// The seeds the item's grant descended from when the store lost it.
    pub lost: Vec<String>,
    /// The seeds a stored successor descends from (spent).
    pub spent: Vec<String>,
}

impl Records {
    /// Whether anything is recorded.
    pub fn any(&self) -> bool {
        !self.lost.is_empty() || !self.spent.is_empty()
    }
}

impl RedisTokenStore {
    /// What is recorded of the item under the Redis key `name` (from
    /// `key_name`) besides its value.
    pub fn records_named(&self, name: &str) -> Result<Records, StoreError> {
        let lost = lost::lost_name(&self.prefix, name);
        let spent = lost::spent_name(&self.prefix, name);
        let conn = Arc::clone(&self.conn);
        self.conn.block(async move {
            let mut manager = conn.manager().await?;
            let (lost, spent): (Vec<String>, Vec<String>) = redis::pipe()
                .cmd("SMEMBERS")
                .arg(&lost)
                .cmd("SMEMBERS")
                .arg(&spent)
                .query_async(&mut manager)
                .await
                .map_err(|e| conn.failed(&e))?;
            Ok(Records { lost, spent })
        })
    }
}
