//! Durable home of a refresh token: the `TokenStore` interface and the file
//! store behind it (atomic replace, mode 0600, optional AES-256-GCM). A
//! rotated refresh token is saved here before the access token that came
//! with it is used, so a restart never presents a spent one.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::{Secret, TokenStoreConfig};

const FORMAT: &str = "countersign-token-store";
/// Binds ciphertexts to this format, so one sealed for another use never opens.
const AAD: &[u8] = b"countersign token store v1";

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

/// Where refresh tokens are kept. Blocking; callers run it off the async
/// threads. A shared (networked) store can implement this later.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    fn load(&self) -> Result<Option<StoredGrant>, StoreError>;
    fn save(&self, grant: &StoredGrant) -> Result<(), StoreError>;
}

/// Why the store could not be read or written. Names the file, never a value.
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

pub struct FileStore {
    path: PathBuf,
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("encrypted", &self.key.is_some())
            .finish()
    }
}

impl FileStore {
    pub fn new(config: &TokenStoreConfig) -> FileStore {
        let key = config.key.as_ref().map(|k| {
            let key = UnboundKey::new(&AES_256_GCM, k.expose())
                .expect("invariant: validation checked store_key is 32 bytes");
            LessSafeKey::new(key)
        });
        FileStore {
            path: config.path.clone(),
            key,
        }
    }

    fn garbage(&self) -> StoreError {
        StoreError::Garbage {
            path: self.path.clone(),
        }
    }

    fn decode(&self, text: &[u8]) -> Result<StoredGrant, StoreError> {
        let doc: Value = serde_json::from_slice(text).map_err(|_| self.garbage())?;
        if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(self.garbage());
        }
        match (doc.get("aes_256_gcm"), doc.get("grant"), &self.key) {
            (Some(sealed), None, Some(key)) => self.open(key, sealed),
            (Some(_), None, None) => Err(StoreError::KeyMissing {
                path: self.path.clone(),
            }),
            (None, Some(_), Some(_)) => Err(StoreError::NotEncrypted {
                path: self.path.clone(),
            }),
            (None, Some(grant), None) => self.grant(grant),
            _ => Err(self.garbage()),
        }
    }

    fn open(&self, key: &LessSafeKey, sealed: &Value) -> Result<StoredGrant, StoreError> {
        let field = |name| {
            sealed
                .get(name)
                .and_then(Value::as_str)
                .and_then(|v| B64.decode(v).ok())
        };
        let (Some(nonce), Some(mut data)) = (field("nonce"), field("sealed")) else {
            return Err(self.garbage());
        };
        let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| self.garbage())?;
        let plain = key
            .open_in_place(nonce, Aad::from(AAD), &mut data)
            .map_err(|_| StoreError::WrongKey {
                path: self.path.clone(),
            })?;
        let grant: Value = serde_json::from_slice(plain).map_err(|_| self.garbage())?;
        self.grant(&grant)
    }

    fn grant(&self, grant: &Value) -> Result<StoredGrant, StoreError> {
        let text = |name| grant.get(name).and_then(Value::as_str);
        match (text("seed_sha256"), text("refresh_token")) {
            (Some(seed), Some(token)) if !token.is_empty() => Ok(StoredGrant {
                seed_sha256: seed.to_string(),
                refresh_token: Secret::new(token),
            }),
            _ => Err(self.garbage()),
        }
    }

    fn encode(&self, grant: &StoredGrant) -> Result<Vec<u8>, StoreError> {
        let inner = json!({
            "seed_sha256": grant.seed_sha256,
            "refresh_token": grant.refresh_token.expose(),
        });
        let doc = match &self.key {
            None => json!({ "format": FORMAT, "grant": inner }),
            Some(key) => {
                let mut nonce = [0u8; NONCE_LEN];
                crate::random::fill(&mut nonce)
                    .map_err(|e| self.io("encrypt", std::io::Error::other(e)))?;
                let mut data = inner.to_string().into_bytes();
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(AAD),
                    &mut data,
                )
                .map_err(|_| self.io("encrypt", std::io::Error::other("sealing failed")))?;
                json!({
                    "format": FORMAT,
                    "aes_256_gcm": { "nonce": B64.encode(nonce), "sealed": B64.encode(data) },
                })
            }
        };
        Ok(doc.to_string().into_bytes())
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

impl TokenStore for FileStore {
    fn load(&self) -> Result<Option<StoredGrant>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(text) => self.decode(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", e)),
        }
    }

    /// Temp file in the same folder (created 0600), fsync, rename over the
    /// old file, fsync the folder: after a crash the file is old or new,
    /// never half-written, and the rename itself is durable.
    fn save(&self, grant: &StoredGrant) -> Result<(), StoreError> {
        let bytes = self.encode(grant)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| self.io("create a temp file for", e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| self.io("write", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.io("replace", e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync the folder of", e))
    }
}

/// The lock of one store file, and what it guards besides the file: a
/// rotated grant that could not be written yet (a full disk, say). Whoever
/// holds the lock next (the same manager, or the one that replaced it after
/// a reload) stores that grant before presenting anything, so a rotated
/// refresh token is not lost with the manager that received it.
pub type StoreSlot = Arc<SlotLock>;
pub type SlotLock = tokio::sync::Mutex<Option<StoredGrant>>;

/// One lock per store file in this process: every read-refresh-write cycle
/// holds it, so two managers of one store (old and new, across a reload)
/// never both present the same refresh token.
pub fn exclusive(path: &Path) -> StoreSlot {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<SlotLock>>>> = LazyLock::new(Mutex::default);
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, lock| lock.strong_count() > 0);
    if let Some(lock) = locks.get(&path).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(None));
    locks.insert(path, Arc::downgrade(&lock));
    lock
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretBytes;
    use std::os::unix::fs::PermissionsExt as _;

    fn store(dir: &Path, key: Option<[u8; 32]>) -> FileStore {
        FileStore::new(&TokenStoreConfig {
            path: dir.join("bank.store"),
            key: key.map(SecretBytes::new),
        })
    }

    fn grant(token: &str) -> StoredGrant {
        StoredGrant {
            seed_sha256: seed_hash(Some(&Secret::new("seed"))),
            refresh_token: Secret::new(token),
        }
    }

    #[test]
    fn a_saved_grant_loads_back_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), None);
        assert_eq!(s.load().unwrap(), None);
        s.save(&grant("rt-1")).unwrap();
        s.save(&grant("rt-2")).unwrap();
        assert_eq!(s.load().unwrap(), Some(grant("rt-2")));
        let mode = std::fs::metadata(dir.path().join("bank.store"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn encrypted_stores_hide_the_token_and_refuse_the_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Some([7; 32]));
        s.save(&grant("rt-secret-value")).unwrap();
        let raw = std::fs::read_to_string(dir.path().join("bank.store")).unwrap();
        assert!(!raw.contains("rt-secret-value"));
        assert_eq!(s.load().unwrap(), Some(grant("rt-secret-value")));
        let wrong = store(dir.path(), Some([8; 32]));
        assert!(matches!(wrong.load(), Err(StoreError::WrongKey { .. })));
        let none = store(dir.path(), None);
        assert!(matches!(none.load(), Err(StoreError::KeyMissing { .. })));
    }

    #[test]
    fn garbage_and_plain_files_under_a_key_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), None).save(&grant("rt")).unwrap();
        let keyed = store(dir.path(), Some([1; 32]));
        assert!(matches!(keyed.load(), Err(StoreError::NotEncrypted { .. })));
        std::fs::write(dir.path().join("bank.store"), "not json at all").unwrap();
        let e = store(dir.path(), None).load().unwrap_err();
        assert!(matches!(e, StoreError::Garbage { .. }));
        assert!(e.to_string().contains("bank.store"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_refresh_token() {
        assert!(!format!("{:?}", grant("rt-hidden")).contains("rt-hidden"));
    }

    #[test]
    fn one_lock_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = exclusive(&dir.path().join("x"));
        let b = exclusive(&dir.path().join("x"));
        let c = exclusive(&dir.path().join("y"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
