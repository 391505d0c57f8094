//! The encrypted-file `TokenStore`: one file per key (a credential's
//! `token_store` file; a session's file in the `token_store` folder, named
//! by a hash of credential and session), replaced atomically, mode 0600,
//! optionally sealed with AES-256-GCM. `FileStore` is one such file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde_json::{json, Value};

use super::{session_hash, Facts, StoreError, StoreKey, StoreSlot, StoredGrant, TokenStore};
use crate::config::{Secret, TokenStoreConfig};

const FORMAT: &str = "countersign-token-store";
/// Binds ciphertexts to this format, so one sealed for another use never opens.
const AAD: &[u8] = b"countersign token store v1";

/// The `TokenStore` on files, from a `token_store` config: a credential's
/// state is the configured file, a session's is a file in the configured
/// folder.
#[derive(Debug)]
pub struct FileTokenStore {
    config: TokenStoreConfig,
}

impl FileTokenStore {
    pub fn new(config: &TokenStoreConfig) -> FileTokenStore {
        FileTokenStore {
            config: config.clone(),
        }
    }

    /// The file of `key`. A session's is named by a hash of the credential
    /// and session, so that two credentials never share a file even if their
    /// folders are one (through a link) and the id never shows in a name.
    fn path(&self, key: &StoreKey) -> PathBuf {
        match &key.session {
            None => self.config.path.clone(),
            Some(session) => {
                let name = format!("session-{}.json", session_hash(&key.credential, session));
                self.config.path.join(name)
            }
        }
    }

    /// Every session file in the folder of an authorization_code
    /// credential, with the hash its name holds (for `store migrate`).
    pub fn session_files(&self) -> Result<Vec<(String, FileStore)>, StoreError> {
        let folder = &self.config.path;
        let io = |source| StoreError::Io {
            action: "list",
            path: folder.clone(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(folder).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            let hash = name
                .strip_prefix("session-")
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if let Some(hash) = hash {
                let file = FileStore::new(&TokenStoreConfig {
                    path: folder.join(&*name),
                    key: self.config.key.clone(),
                });
                found.push((hash.to_string(), file));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    fn file(&self, key: &StoreKey) -> FileStore {
        FileStore::new(&TokenStoreConfig {
            path: self.path(key),
            key: self.config.key.clone(),
        })
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self, key: &StoreKey) -> Result<Option<StoredGrant>, StoreError> {
        self.file(key).load()
    }

    fn save(&self, key: &StoreKey, grant: &StoredGrant) -> Result<(), StoreError> {
        self.file(key).save(grant)
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.file(key).delete()
    }

    fn slot(&self, key: &StoreKey) -> StoreSlot {
        exclusive(&self.path(key))
    }

    fn location(&self, key: &StoreKey) -> String {
        self.path(key).display().to_string()
    }
}

/// One store file.
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
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

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
        let facts = match grant.get("facts") {
            None => None,
            Some(f) => Some(Facts::from_json(f).ok_or_else(|| self.garbage())?),
        };
        match (text("seed_sha256"), text("refresh_token")) {
            (Some(seed), Some(token)) if !token.is_empty() => {
                Ok(StoredGrant::new(seed.to_string(), Secret::new(token)).with_facts(facts))
            }
            _ => Err(self.garbage()),
        }
    }

    fn encode(&self, grant: &StoredGrant) -> Result<Vec<u8>, StoreError> {
        let mut inner = json!({
            "seed_sha256": grant.seed_sha256,
            "refresh_token": grant.refresh_token.expose(),
        });
        if let Some(facts) = &grant.facts {
            inner["facts"] = facts.to_json();
        }
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

impl FileStore {
    pub fn load(&self) -> Result<Option<StoredGrant>, StoreError> {
        match crate::files::read(&self.path).map_err(std::io::Error::from) {
            Ok(text) => self.decode(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", e)),
        }
    }

    /// Temp file in the same folder (created 0600), fsync, rename over the
    /// old file, fsync the folder: after a crash the file is old or new,
    /// never half-written, and the rename itself is durable.
    pub fn save(&self, grant: &StoredGrant) -> Result<(), StoreError> {
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

    /// Removes the file (a missing one is fine) and makes the removal
    /// durable.
    pub fn delete(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io("remove", e)),
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync the folder of", e))
    }
}

/// One lock per store file in this process (see `StoreSlot`), whichever
/// spelling of its path names it.
pub fn exclusive(path: &Path) -> StoreSlot {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    super::slot_named(format!("file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::seed_hash;
    use super::*;
    use crate::config::SecretBytes;
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    fn store(dir: &Path, key: Option<[u8; 32]>) -> FileStore {
        FileStore::new(&TokenStoreConfig {
            path: dir.join("bank.store"),
            key: key.map(SecretBytes::new),
        })
    }

    fn grant(token: &str) -> StoredGrant {
        StoredGrant::new(seed_hash(Some(&Secret::new("seed"))), Secret::new(token))
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

    fn keyed(path: &Path) -> FileTokenStore {
        FileTokenStore::new(&TokenStoreConfig {
            path: path.to_path_buf(),
            key: Some(SecretBytes::new([3; 32])),
        })
    }

    #[test]
    fn a_credentials_state_is_its_file_and_a_sessions_a_hashed_file_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bank.store");
        keyed(&file)
            .save(&StoreKey::credential("bank"), &grant("rt-bank"))
            .unwrap();
        assert_eq!(
            store(dir.path(), Some([3; 32])).load().unwrap(),
            Some(grant("rt-bank")),
            "the configured file, in the same format"
        );

        let folder = dir.path().join("sessions");
        std::fs::create_dir(&folder).unwrap();
        let sessions = keyed(&folder);
        sessions
            .save(&StoreKey::session("gmo", "alice"), &grant("rt-alice"))
            .unwrap();
        sessions
            .save(&StoreKey::session("other", "alice"), &grant("rt-other"))
            .unwrap();
        // The name sessions stored before have: the hex SHA-256 of
        // "credential\nsession", cut to 32 characters.
        let hex: String = Sha256::digest(b"gmo\nalice")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let alice = folder.join(format!("session-{}.json", &hex[..32]));
        let on_disk = FileStore::new(&TokenStoreConfig {
            path: alice.clone(),
            key: Some(SecretBytes::new([3; 32])),
        });
        assert_eq!(on_disk.load().unwrap(), Some(grant("rt-alice")));
        assert_eq!(
            sessions.location(&StoreKey::session("gmo", "alice")),
            alice.display().to_string()
        );
        let names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "one file per credential and session");
        assert!(names.iter().all(|n| !n.contains("alice")), "{names:?}");
    }

    #[test]
    fn delete_forgets_and_deleting_nothing_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = keyed(dir.path());
        let key = StoreKey::session("gmo", "bob");
        s.save(&key, &grant("rt-bob")).unwrap();
        s.delete(&key).unwrap();
        assert_eq!(s.load(&key).unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        s.delete(&key).unwrap();
    }

    #[test]
    fn one_lock_per_stored_item_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (keyed(dir.path()), keyed(dir.path()));
        let alice = StoreKey::session("gmo", "alice");
        let bob = StoreKey::session("gmo", "bob");
        assert!(Arc::ptr_eq(&one.slot(&alice), &two.slot(&alice)));
        assert!(!Arc::ptr_eq(&one.slot(&alice), &one.slot(&bob)));
    }
}
