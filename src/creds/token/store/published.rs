//! The fleet's current access token of an item, in the shared store: the
//! lease holder writes it after a renewal, and every replica reads it
//! instead of asking the token endpoint itself. One hash per item
//! (`PREFIX token:ITEM`): `g`, a generation the holder increments (by a
//! compare-and-set, so two writers never both think they published it),
//! `e`, its expiry on Redis's own clock (so replicas' clocks need not
//! agree), `l`, its whole lifetime in ms, and `d`, the token. With
//! `store_key`, `d` is sealed with AES-256-GCM bound to the key and the
//! generation. Each write is announced on the channel `PREFIX published:ITEM`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

use super::redis::{describe, item_name, Conn};
use super::seal::SealKey;
use super::{StoreError, StoreKey};
use crate::config::StoreConfig;

const AAD: &str = "countersign published token v1";

/// Writes generation ARGV[2] if ARGV[1] is still stored (0: none), with
/// lifetime ARGV[4] ms from Redis's now; announces it. {1, new} or {0, found}.
const PUBLISH: &str = r"
local found = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
if found ~= tonumber(ARGV[1]) then return {0, found} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'g', ARGV[2], 'd', ARGV[3], 'e', now + tonumber(ARGV[4]), 'l', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return {1, tonumber(ARGV[2])}
";

/// {g, d, ms left on Redis's clock, l}, or {} when nothing is published.
const READ: &str = r"
local v = redis.call('HMGET', KEYS[1], 'g', 'd', 'e', 'l')
if not v[1] then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {tonumber(v[1]), v[2], tonumber(v[3]) - now, tonumber(v[4])}
";

/// A token as published.
pub struct Published {
    pub generation: u64,
    /// The token's value (what requests carry).
    pub value: Vec<u8>,
    /// How long it is still valid, on Redis's clock (may be negative: expired).
    pub left_ms: i64,
    /// Its whole lifetime when published.
    pub lifetime: Duration,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("generation", &self.generation)
            .field("left_ms", &self.left_ms)
            .finish_non_exhaustive()
    }
}

/// The published tokens of one shared store.
pub struct Board {
    conn: Arc<Conn>,
    prefix: String,
    seal: Option<SealKey>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("store", &self.conn.location)
            .finish_non_exhaustive()
    }
}

impl Board {
    pub fn open(config: &StoreConfig) -> Result<Board, StoreError> {
        let conn = Conn::shared(config)?;
        let seal = match &config.store_key {
            Some(k) => Some(
                SealKey::new(k)
                    .ok_or_else(|| conn.unreachable("store_key is not a 32-byte key".into()))?,
            ),
            None => None,
        };
        Ok(Board {
            conn,
            prefix: config.key_prefix.clone(),
            seal,
        })
    }

    /// The Redis key of `key`'s published token.
    pub fn name(&self, key: &StoreKey) -> String {
        format!("{}token:{}", self.prefix, item_name(key))
    }

    /// The channel its publications are announced on.
    pub fn channel(&self, key: &StoreKey) -> String {
        format!("{}published:{}", self.prefix, item_name(key))
    }

    /// Runs `heard` (on the store's thread) each time a token of `key` is
    /// announced, over a connection of its own, reconnecting after a
    /// failure, until the handle aborts it. A missed announcement costs
    /// nothing but time: readers also look when their own token is due.
    pub fn listen<F, Fut>(&self, key: &StoreKey, heard: F) -> Option<tokio::task::AbortHandle>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        // A weak handle: the subscription never keeps the store's
        // connection (and its thread) alive on its own.
        let (weak, channel, timeout) = (
            Arc::downgrade(&self.conn),
            self.channel(key),
            self.conn.timeout,
        );
        self.conn.spawn(async move {
            loop {
                let Some(conn) = weak.upgrade() else { return };
                // Finding the primary is bounded by its own timeouts (one
                // per Sentinel asked); subscribing, by one.
                let found = conn.client().await.ok();
                let at = found.as_ref().and_then(|(_, at)| at.clone());
                let connect = async {
                    let (client, _) = found?;
                    let subscribed = async {
                        let mut pubsub = client.get_async_pubsub().await?;
                        pubsub.subscribe(&channel).await?;
                        Ok::<_, redis::RedisError>(pubsub.into_on_message())
                    };
                    match subscribed.await {
                        Ok(messages) => Some(messages),
                        Err(e) => {
                            conn.forget_primary_at(at.as_deref(), &describe(&e));
                            None
                        }
                    }
                };
                let subscribed = tokio::time::timeout(timeout, connect).await;
                drop(conn);
                if let Ok(Some(mut messages)) = subscribed {
                    use futures_core::Stream as _;
                    while std::future::poll_fn(|cx| std::pin::Pin::new(&mut messages).poll_next(cx))
                        .await
                        .is_some()
                    {
                        heard().await;
                    }
                    // The subscription ended: the primary closed it (it
                    // went away, or was demoted in a failover).
                    if let Some(conn) = weak.upgrade() {
                        conn.forget_primary_at(at.as_deref(), "the subscription was closed");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// What is published for `key`, if anything.
    pub async fn read(&self, key: &StoreKey) -> Result<Option<Published>, StoreError> {
        let name = self.name(key);
        let conn = Arc::clone(&self.conn);
        let asked = name.clone();
        let found: Vec<redis::Value> = self
            .conn
            .run(async move {
                let mut manager = conn.manager().await?;
                redis::Script::new(READ)
                    .key(&asked)
                    .invoke_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))
            })
            .await?;
        if found.is_empty() {
            return Ok(None);
        }
        let damaged = || StoreError::Damaged {
            location: name.clone(),
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => Some(*n),
            _ => None,
        };
        let [g, d, left, l] = found.as_slice() else {
            return Err(damaged());
        };
        let (Some(g), Some(left), Some(l)) = (int(g), int(left), int(l)) else {
            return Err(damaged());
        };
        let redis::Value::BulkString(d) = d else {
            return Err(damaged());
        };
        let generation = u64::try_from(g).map_err(|_| damaged())?;
        let value = self.open_value(&name, generation, d)?;
        Ok(Some(Published {
            generation,
            value,
            left_ms: left,
            lifetime: Duration::from_millis(u64::try_from(l).unwrap_or(0)),
        }))
    }

    /// Publishes `value`, valid for `lifetime` from now, as generation
    /// `next` (past `seen`) if `seen` is still the one stored (0: none);
    /// `Err(found)` when another generation was published since.
    pub async fn publish(
        &self,
        key: &StoreKey,
        seen: u64,
        next: u64,
        value: &[u8],
        lifetime: Duration,
    ) -> Result<Result<u64, u64>, StoreError> {
        let name = self.name(key);
        let channel = self.channel(key);
        let doc = self.seal_value(&name, next, value)?;
        let conn = Arc::clone(&self.conn);
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let (done, g): (i64, u64) = self
            .conn
            .run(async move {
                let mut manager = conn.manager().await?;
                redis::Script::new(PUBLISH)
                    .key(&name)
                    .key(&channel)
                    .arg(seen)
                    .arg(next)
                    .arg(doc)
                    .arg(ms)
                    .invoke_async(&mut manager)
                    .await
                    .map_err(|e| conn.failed(&e))
            })
            .await?;
        Ok(if done == 1 { Ok(g) } else { Err(g) })
    }

    fn bound_to(name: &str, generation: u64) -> Vec<u8> {
        format!("{AAD}\n{name}\n{generation}").into_bytes()
    }

    fn seal_value(&self, name: &str, generation: u64, value: &[u8]) -> Result<String, StoreError> {
        match &self.seal {
            None => Ok(format!("p.{}", B64.encode(value))),
            Some(key) => {
                let (nonce, data) = key
                    .seal(&Board::bound_to(name, generation), value)
                    .ok_or_else(|| self.conn.unreachable("cannot seal the token".into()))?;
                Ok(format!("s.{}.{}", B64.encode(nonce), B64.encode(data)))
            }
        }
    }

    fn open_value(&self, name: &str, generation: u64, doc: &[u8]) -> Result<Vec<u8>, StoreError> {
        let damaged = || StoreError::Damaged {
            location: name.to_string(),
        };
        let sealed = |problem| StoreError::Sealed {
            location: name.to_string(),
            problem,
        };
        let doc = std::str::from_utf8(doc).map_err(|_| damaged())?;
        let parts: Vec<&str> = doc.split('.').collect();
        match (parts.as_slice(), &self.seal) {
            (["p", plain], None) => B64.decode(plain).map_err(|_| damaged()),
            (["p", _], Some(_)) => Err(sealed("is not sealed, but store_key is set")),
            (["s", _, _], None) => Err(sealed("is sealed, but no store_key is configured")),
            (["s", nonce, data], Some(key)) => {
                let nonce = B64.decode(nonce).map_err(|_| damaged())?;
                let data = B64.decode(data).map_err(|_| damaged())?;
                key.open(&Board::bound_to(name, generation), &nonce, data)
                    .ok_or_else(|| sealed("does not open with store_key (another key, or moved)"))
            }
            _ => Err(damaged()),
        }
    }
}
