//! The durable state of credentials that must outlive a restart (today an
//! OAuth2 refresh token, per credential or per user session), behind one
//! seam, `TokenStore`: load, save and delete by `StoreKey`. A rotated
//! refresh token is saved before the access token that came with it is
//! used, so a restart never presents a spent one.
//!
//! The encrypted file store (`file`) is the implementation today; a shared
//! store plugs in beside it, and `open` picks one from the config.

mod file;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{Secret, TokenStoreConfig};

pub use file::{FileStore, FileTokenStore};

/// What survives a restart: the refresh token now valid, and which configured
/// seed it descends from (so a new seed in the config takes over).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub seed_sha256: String,
    pub refresh_token: Secret,
}

impl std::fmt::Debug for StoredGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredGrant")
            .field("seed_sha256", &self.seed_sha256)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of a configured seed (or of nothing, when none is set).
pub fn seed_hash(seed: Option<&Secret>) -> String {
    let digest = Sha256::digest(seed.map_or(&b""[..], |s| s.expose().as_bytes()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
    /// Forgets the state under `key` (nothing there is not an error).
    fn delete(&self, key: &StoreKey) -> Result<(), StoreError>;
    /// The lock of what `key` names in this process (see `StoreSlot`): one
    /// per stored item, however many handles name it.
    fn slot(&self, key: &StoreKey) -> StoreSlot;
    /// Where `key` is kept, for messages (a path; never a value).
    fn location(&self, key: &StoreKey) -> String;
}

/// The store `config` names.
pub fn open(config: &TokenStoreConfig) -> Arc<dyn TokenStore> {
    Arc::new(FileTokenStore::new(config))
}

/// The lock of one stored item, and what it guards besides the item: a
/// rotated grant that could not be written yet (a full disk, say). Whoever
/// holds the lock next (the same manager, or the one that replaced it after
/// a reload) stores that grant before presenting anything, so a rotated
/// refresh token is not lost with the manager that received it. Every
/// read-refresh-write cycle holds it, so two managers of one item (old and
/// new, across a reload) never both present the same refresh token.
pub type StoreSlot = Arc<SlotLock>;
pub type SlotLock = tokio::sync::Mutex<Option<StoredGrant>>;

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
}
