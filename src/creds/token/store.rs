//! The durable state of credentials that must outlive a restart (today an
//! OAuth2 refresh token, per credential or per user session), behind one
//! seam, `TokenStore`: load, save and delete by `StoreKey`. A rotated
//! refresh token is saved before the access token that came with it is
//! used, so a restart never presents a spent one.
//!
//! The encrypted file store (`file`) is the embedded default; `redis` is
//! the store shared by several replicas (`[store]`); `open` picks one from
//! the config.
//!
//! The seam is blocking: credentials are built synchronously (at start and
//! on reload), and the reads and writes of a renewal already run in
//! `spawn_blocking`. The Redis store keeps its async connection on a thread
//! of its own and waits for it with a bound (see `redis::Conn`), so no
//! async thread of countersign ever drives Redis.

mod counted;
mod facts;
mod file;
mod lease;
mod pending;
mod published;
mod redis;
mod seal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use sha2::{Digest, Sha256};

use crate::config::{Secret, TokenStoreConfig};

pub use facts::Facts;
pub use file::{FileStore, FileTokenStore};
pub use lease::{Lease, Leases, PUBLISH_STORE_CALLS, ROTATING_STORE_CALLS};
pub use pending::{MemoryPending, PendingKind, PendingStore};
pub use published::{Board, Published};
pub use redis::{Records, RedisPending, RedisTokenStore};

/// A stored grant and the version it was stored as (the file store has no
/// versions: always 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub version: u64,
    pub grant: StoredGrant,
}

/// What survives a restart: the refresh token now valid, and which configured
/// seed it descends from (so a new seed in the config takes over).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub seed_sha256: String,
    pub refresh_token: Secret,
    /// On a shared store: the process that has handed this refresh token
    /// to the token endpoint and not yet stored its successor.
    pub presented: Option<Presented>,
    /// A user session's facts for its app (none for a credential's own
    /// grant, or a session stored before they were kept).
    pub facts: Option<Facts>,
}

impl StoredGrant {
    /// A grant no request holds.
    pub fn new(seed_sha256: String, refresh_token: Secret) -> StoredGrant {
        StoredGrant {
            seed_sha256,
            refresh_token,
            presented: None,
            facts: None,
        }
    }

    /// The same, with `facts`.
    pub fn with_facts(mut self, facts: Option<Facts>) -> StoredGrant {
        self.facts = facts;
        self
    }
}

impl std::fmt::Debug for StoredGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredGrant")
            .field("seed_sha256", &self.seed_sha256)
            .field("presented", &self.presented)
            .field("facts", &self.facts.is_some())
            .finish_non_exhaustive()
    }
}

/// Which process presented a refresh token, and when (Unix seconds, its
/// clock). Written before the token request, cleared with the successor:
/// a replica that finds another's mark knows the token may be spent and
/// its successor held, unsaved, by that process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub by: String,
    pub at_unix: u64,
}

/// This process's id in `Presented` marks: random, chosen once.
pub fn process_id() -> &'static str {
    static ID: LazyLock<String> = LazyLock::new(|| {
        let mut bytes = [0u8; 8];
        // Without randomness every process would share the id "0000...":
        // marks would then read as this process's own (today's behaviour
        // without marks), never as a stranger's.
        let _ = crate::random::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    &ID
}

/// The hex SHA-256 of a configured seed (or of nothing, when none is set).
pub fn seed_hash(seed: Option<&Secret>) -> String {
    let digest = Sha256::digest(seed.map_or(&b""[..], |s| s.expose().as_bytes()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash that names session `session` of credential `credential` in
/// either store (its file name, its Redis key): no user id shows there.
pub fn session_hash(credential: &str, session: &str) -> String {
    let id = Secret::new(format!("{credential}\n{session}"));
    seed_hash(Some(&id))[..32].to_string()
}

/// Whose durable state: a credential's own, or one user session's of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    pub credential: String,
    pub session: Option<String>,
}

impl StoreKey {
    /// Credential `name`'s own state (the refresh_token grant).
    pub fn credential(name: &str) -> StoreKey {
        StoreKey {
            credential: name.to_string(),
            session: None,
        }
    }

    /// The state of `session` of credential `name` (authorization_code).
    pub fn session(name: &str, session: &str) -> StoreKey {
        StoreKey {
            credential: name.to_string(),
            session: Some(session.to_string()),
        }
    }
}

/// Where durable state is kept, by key. Blocking; callers run it off the
/// async threads.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The state under `key`; `None` when nothing was saved there.
    fn load(&self, key: &StoreKey) -> Result<Option<StoredGrant>, StoreError>;
    /// Replaces the state under `key`, durably, before returning.
    fn save(&self, key: &StoreKey, grant: &StoredGrant) -> Result<(), StoreError>;
    /// The state under `key` and its version.
    fn load_versioned(&self, key: &StoreKey) -> Result<Option<Versioned>, StoreError> {
        Ok(self.load(key)?.map(|grant| Versioned { version: 0, grant }))
    }
    /// Replaces the state under `key` only if its version is still `seen`
    /// (`StoreError::Stale` otherwise); returns the new version. A store
    /// only one process writes (the file store) just saves.
    fn replace(&self, key: &StoreKey, seen: u64, grant: &StoredGrant) -> Result<u64, StoreError> {
        self.save(key, grant).map(|()| seen)
    }
    /// Stores `grant`, a successor whose first write failed, only over the
    /// version `marked` (the one carrying this process's `Presented`
    /// mark), or where the store lost everything since `epoch` (the
    /// store's `epoch()` when the mark was written); a store only one
    /// process writes (the file store) just saves.
    fn store_unsaved(
        &self,
        key: &StoreKey,
        marked: Option<u64>,
        epoch: Option<&str>,
        grant: &StoredGrant,
    ) -> Result<UnsavedOutcome, StoreError> {
        let _ = (marked, epoch);
        self.save(key, grant).map(|()| UnsavedOutcome::Stored)
    }
    /// Forgets the state under `key` (nothing there is not an error).
    fn delete(&self, key: &StoreKey) -> Result<(), StoreError>;
    /// The lock of what `key` names in this process (see `StoreSlot`): one
    /// per stored item, however many handles name it.
    fn slot(&self, key: &StoreKey) -> StoreSlot;
    /// Where `key` is kept, for messages (a path; never a value).
    fn location(&self, key: &StoreKey) -> String;
    /// How long another process's `Presented` mark holds the refresh token
    /// back, on a store several processes share; `None` when only one
    /// process writes (no marks are written).
    fn unsaved_grace(&self) -> Option<std::time::Duration> {
        None
    }
    /// On a shared store, its epoch as this process last read it (a store
    /// that lost its data gets a new one); `None` elsewhere.
    fn epoch(&self) -> Option<String> {
        None
    }
}

/// The store a credential keeps its state in: the shared store when
/// `[store]` is set, else its `token_store` files. Errors are `(key,
/// message)` under `credential.NAME`.
pub fn open(
    shared: Option<&crate::config::StoreConfig>,
    files: Option<&TokenStoreConfig>,
) -> Result<Arc<dyn TokenStore>, (&'static str, String)> {
    match (shared, files) {
        (Some(shared), _) => match RedisTokenStore::open(shared) {
            Ok(store) => Ok(Arc::new(counted::Counted(store))),
            Err(e) => Err(("token_store", e.to_string())),
        },
        (None, Some(files)) => Ok(Arc::new(FileTokenStore::new(files))),
        (None, None) => Err(("token_store", "missing".to_string())),
    }
}

/// Where credential `credential` keeps its authorizations under way: in
/// Redis when `[store]` is set (so any replica may finish what another
/// started), else in this process's memory.
pub fn pending(
    shared: Option<&crate::config::StoreConfig>,
    credential: &str,
) -> Result<Arc<dyn PendingStore>, (&'static str, String)> {
    match shared {
        Some(shared) => match RedisPending::open(shared, credential) {
            Ok(store) => Ok(Arc::new(counted::Counted(store))),
            Err(e) => Err(("token_store", e.to_string())),
        },
        None => Ok(Arc::new(MemoryPending::default())),
    }
}

/// Warns when `store.unsaved_grace` is not longer than the longest from a
/// `Presented` mark to the end of the successor's write: another replica
/// could then present a refresh token whose holder is still renewing.
pub fn check_grace(
    leases: &Leases,
    config: &crate::config::StoreConfig,
    request: std::time::Duration,
) {
    let needed = leases.presented_bound(request);
    if config.unsaved_grace <= needed {
        tracing::warn!(
            unsaved_grace_ms = config.unsaved_grace.as_millis() as u64,
            needed_ms = needed.as_millis() as u64,
            "store.unsaved_grace is not longer than a token request and a store write; another replica may present a refresh token whose holder is still renewing it: make it longer"
        );
    }
}

/// What a shared-store error happened in, for `countersign_store_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Reading the fleet's published token.
    Read,
    /// Taking, renewing or releasing a lease.
    Lease,
    /// Publishing a renewed token.
    Publish,
    /// Reading or writing a stored grant: loading it, the presented mark,
    /// the rotated successor, a session's end (`TokenStore` on Redis).
    Grant,
    /// Taking a session's renewal lease (`RefreshGrant` under a lease).
    SessionLease,
    /// Putting or taking an authorization under way (`RedisPending`).
    Pending,
    /// A grant or session found lost with the store's data (counted once
    /// per credential grant or session, per process).
    Lost,
}

impl StoreOp {
    pub const ALL: [StoreOp; 7] = [
        StoreOp::Read,
        StoreOp::Lease,
        StoreOp::Publish,
        StoreOp::Grant,
        StoreOp::SessionLease,
        StoreOp::Pending,
        StoreOp::Lost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StoreOp::Read => "read",
            StoreOp::Lease => "lease",
            StoreOp::Publish => "publish",
            StoreOp::Grant => "grant",
            StoreOp::SessionLease => "session_lease",
            StoreOp::Pending => "pending",
            StoreOp::Lost => "lost",
        }
    }
}

static STORE_ERRORS: [std::sync::atomic::AtomicU64; StoreOp::ALL.len()] =
    [const { std::sync::atomic::AtomicU64::new(0) }; StoreOp::ALL.len()];

/// Counts a failed shared-store operation (process-wide, for metrics).
pub fn count_error(op: StoreOp) {
    STORE_ERRORS[op as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Failed shared-store operations so far, by operation.
pub fn error_counts() -> impl Iterator<Item = (&'static str, u64)> {
    StoreOp::ALL.into_iter().map(|op| {
        (
            op.name(),
            STORE_ERRORS[op as usize].load(std::sync::atomic::Ordering::Relaxed),
        )
    })
}

/// The one lock in this process of the stored item `id` names (see
/// `StoreSlot`).
pub fn slot_named(id: String) -> StoreSlot {
    static LOCKS: LazyLock<Mutex<HashMap<String, Weak<SlotLock>>>> = LazyLock::new(Mutex::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, lock| lock.strong_count() > 0);
    if let Some(lock) = locks.get(&id).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(None));
    locks.insert(id, Arc::downgrade(&lock));
    lock
}

/// The lock of one stored item, and what it guards besides the item: a
/// rotated grant that could not be written yet (a full disk, say). Whoever
/// holds the lock next (the same manager, or the one that replaced it after
/// a reload) stores that grant before presenting anything, so a rotated
/// refresh token is not lost with the manager that received it. Every
/// read-refresh-write cycle holds it, so two managers of one item (old and
/// new, across a reload) never both present the same refresh token.
pub type StoreSlot = Arc<SlotLock>;
pub type SlotLock = tokio::sync::Mutex<Option<Unsaved>>;

/// A rotated grant its store refused to take, held until it is stored: the
/// grant, and the version this process wrote its `Presented` mark as
/// (on a shared store), over which alone it may be written, with the
/// store's epoch then (a session's key found empty under another epoch
/// was lost, and the successor goes back into it; under the same one it
/// was ended).
#[derive(Debug, Clone)]
pub struct Unsaved {
    pub grant: StoredGrant,
    pub marked: Option<u64>,
    pub epoch: Option<String>,
}

/// What became of an `Unsaved` grant offered to the store again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsavedOutcome {
    /// Stored: it is the grant's refresh token now.
    Stored,
    /// Not written: the stored grant moved on past the version marked
    /// (the version found); another replica renewed from it.
    Superseded(u64),
    /// Not written: the session was ended (deleted) meanwhile.
    Ended,
}

/// Why the store could not be read or written. Names where (the file), never
/// a value. A shared store adds its own cases here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} token store {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token store {} is not a countersign token store (damaged or foreign file); move it away to start again from the configured refresh_token", path.display())]
    Garbage { path: PathBuf },
    #[error("token store {} cannot be decrypted with store_key (wrong key, or the file was altered)", path.display())]
    WrongKey { path: PathBuf },
    #[error("token store {} is encrypted, but no store_key is configured", path.display())]
    KeyMissing { path: PathBuf },
    #[error("token store {} is not encrypted, but store_key is set; move the file away (the configured refresh_token is then used) or remove store_key", path.display())]
    NotEncrypted { path: PathBuf },
    #[error("cannot reach the shared token store {location}: {cause}")]
    Unreachable { location: String, cause: String },
    /// A lease won on a primary nothing vouched for: not used, given back.
    /// Not an outage of the store: the next attempt asks again.
    #[error("the renewal lease on shared token store {location} was not used: {cause}")]
    Unvouched { location: String, cause: String },
    #[error(
        "shared token store key {location} does not hold a countersign value (damaged or foreign)"
    )]
    Damaged { location: String },
    #[error("shared token store key {location} {problem}")]
    Sealed {
        location: String,
        problem: &'static str,
    },
    /// `seeds`: the fingerprints of the configured seeds the lost grant
    /// descends from (spent: never presented again).
    #[error("shared token store key {location} held a grant and is now empty, or holds an older version of it than this replica read there: the store lost its data (a Redis restarted without persistence, flushed, or rolled back); countersign does not reseed it from the configured refresh_token it descends from, on any replica, and this replica does not present the older one. Restore Redis from a backup that holds the newest refresh token, or have a person authorize again (a credential: delete the key if it holds an older version, set the new refresh_token and reload every replica; a session: the app authorizes it again)")]
    Lost {
        location: String,
        seeds: Vec<String>,
    },
    #[error("the configured refresh_token of shared token store key {location} was already exchanged for a successor (the grant went on from it); it is not presented again. Remove it, or set the refresh token a person obtained most recently, and reload")]
    Spent { location: String },
    #[error("shared token store key {location} holds a newer refresh token, written by another replica; this one is not stored over it")]
    Stale { location: String },
    #[error("the renewal lease {location} stayed with another replica; renewing again later")]
    Busy { location: String },
    #[error("replica {by} presented the refresh token in shared token store key {location} {age_s} s ago and has not stored its successor (its write may have failed); it is not presented again until that replica stores it or store.unsaved_grace passes")]
    Presented {
        location: String,
        by: String,
        age_s: u64,
    },
}
