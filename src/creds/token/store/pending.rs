//! One-time values of authorizations under way (see
//! `creds::oauth2::sessions::authorize`): a ticket issued to the app, and
//! the `state` of an authorization with its PKCE verifier and the digest of
//! the browser's binding nonce. Each is put once with a time to live and
//! taken at most once: a second `take` of the same id, in this process or
//! (with `[store]`) on any replica, finds nothing.
//!
//! In memory (`MemoryPending`) without `[store]`; in Redis
//! (`RedisPending`, sealed like every value there, the TTL as the key's
//! expiry, taken with an atomic `GETDEL`) with it, so `authorize`, `start`
//! and `callback` may land on different replicas.

mod memory;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::Secret;

use super::StoreError;

pub use memory::MemoryPending;

/// Which one-time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingKind {
    /// A ticket for the app, worth one `start`.
    Ticket,
    /// An authorization's `state`, worth one `callback`.
    State,
}

impl PendingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Ticket => "ticket",
            PendingKind::State => "state",
        }
    }
}

/// What a pending-store call answers, later.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where one credential keeps its authorizations under way.
pub trait PendingStore: Send + Sync + std::fmt::Debug {
    /// Keeps `value` under `(kind, id)` for `ttl`.
    fn put<'a>(
        &'a self,
        kind: PendingKind,
        id: &'a str,
        value: Secret,
        ttl: Duration,
    ) -> Pending<'a, ()>;
    /// Takes the value under `(kind, id)` out, if it is there and
    /// unexpired; never twice.
    fn take<'a>(&'a self, kind: PendingKind, id: &'a str) -> Pending<'a, Option<Secret>>;
}
