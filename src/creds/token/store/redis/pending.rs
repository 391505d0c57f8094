//! Authorizations under way in Redis (`[store]`), shared by every replica:
//! one string per value, `PREFIX pending:CREDENTIAL:KIND:HASH` (the hash of
//! the ticket or `state`, so a key name is no usable ticket), expiring with
//! its time to live. Sealed with `store_key` and bound to the key name like
//! every value countersign writes. Taken with `GETDEL`: one replica gets a
//! value, every other one finds nothing, so a ticket or a `state` is
//! redeemed once fleet-wide.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::super::pending::{Pending, PendingKind, PendingStore};
use super::super::seal::{self, SealKey};
use super::super::{seed_hash, StoreError};
use super::conn::Conn;
use crate::config::{Secret, StoreConfig};

const FORMAT: &str = "countersign-pending";
/// Binds every sealed value to this use and its Redis key.
const AAD: &str = "countersign redis pending v1";

#[derive(Debug)]
pub struct RedisPending {
    conn: Arc<Conn>,
    /// `PREFIX pending:CREDENTIAL:`
    base: String,
    seal: Option<Arc<SealKey>>,
}

impl RedisPending {
    pub fn open(config: &StoreConfig, credential: &str) -> Result<RedisPending, StoreError> {
        Ok(RedisPending {
            conn: Conn::shared(config)?,
            base: format!("{}pending:{credential}:", config.key_prefix),
            seal: super::seal_of(config)?,
        })
    }

    /// The Redis key of `(kind, id)`.
    pub fn name(&self, kind: PendingKind, id: &str) -> String {
        let hash = &seed_hash(Some(&Secret::new(id)))[..32];
        format!("{}{}:{hash}", self.base, kind.as_str())
    }

    fn bound_to(name: &str) -> Vec<u8> {
        format!("{AAD}\n{name}").into_bytes()
    }

    fn encode(&self, name: &str, value: &Secret) -> Result<String, StoreError> {
        let value = Value::String(value.expose().to_string());
        seal::wrap(
            FORMAT,
            "value",
            &value,
            self.seal.as_deref(),
            &Self::bound_to(name),
        )
        .ok_or_else(|| self.conn.unreachable("sealing failed".into()))
    }

    fn decode(&self, name: &str, text: &[u8]) -> Result<Secret, StoreError> {
        let bound_to = Self::bound_to(name);
        match seal::unwrap(FORMAT, "value", text, self.seal.as_deref(), &bound_to, name)? {
            Value::String(v) => Ok(Secret::new(v)),
            _ => Err(StoreError::Damaged {
                location: name.to_string(),
            }),
        }
    }
}

impl PendingStore for RedisPending {
    fn put<'a>(
        &'a self,
        kind: PendingKind,
        id: &'a str,
        value: Secret,
        ttl: Duration,
    ) -> Pending<'a, ()> {
        Box::pin(async move {
            let name = self.name(kind, id);
            let doc = self.encode(&name, &value)?;
            let conn = Arc::clone(&self.conn);
            let millis = ttl.as_millis().max(1) as u64;
            self.conn
                .run(async move {
                    let mut manager = conn.manager().await?;
                    redis::cmd("SET")
                        .arg(&name)
                        .arg(doc)
                        .arg("PX")
                        .arg(millis)
                        .query_async::<()>(&mut manager)
                        .await
                        .map_err(|e| conn.failed(&e))
                })
                .await
        })
    }

    fn take<'a>(&'a self, kind: PendingKind, id: &'a str) -> Pending<'a, Option<Secret>> {
        Box::pin(async move {
            let name = self.name(kind, id);
            let conn = Arc::clone(&self.conn);
            let asked = name.clone();
            let doc: Option<Vec<u8>> = self
                .conn
                .run(async move {
                    let mut manager = conn.manager().await?;
                    redis::cmd("GETDEL")
                        .arg(&asked)
                        .query_async(&mut manager)
                        .await
                        .map_err(|e| conn.failed(&e))
                })
                .await?;
            doc.map(|d| self.decode(&name, &d)).transpose()
        })
    }
}
