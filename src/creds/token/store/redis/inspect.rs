//! Reading the shared store for the operator's commands (`countersign
//! token`), beyond what renewals need: how many sessions of a credential
//! are stored. Read only; no value is opened.

use std::sync::Arc;

use super::super::StoreError;
use super::RedisTokenStore;

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
