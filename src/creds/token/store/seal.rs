//! AES-256-GCM sealing of a stored value, bound to where it is stored: the
//! associated data names the key (and version) a value was written under,
//! so a value copied or moved to another key does not open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde_json::{json, Value};

use super::StoreError;
use crate::config::SecretBytes;

/// A sealing key (`store_key`).
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    /// `key` must be 32 bytes (validation checks `store_key`).
    pub fn new(key: &SecretBytes) -> Option<SealKey> {
        let key = UnboundKey::new(&AES_256_GCM, key.expose()).ok()?;
        Some(SealKey(LessSafeKey::new(key)))
    }

    /// `(nonce, ciphertext and tag)` of `plain`, bound to `bound_to`.
    pub fn seal(&self, bound_to: &[u8], plain: &[u8]) -> Option<([u8; NONCE_LEN], Vec<u8>)> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce).ok()?;
        let mut data = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(bound_to),
                &mut data,
            )
            .ok()?;
        Some((nonce, data))
    }

    /// The plain text, if `data` was sealed with this key, this nonce and
    /// the same `bound_to`.
    pub fn open(&self, bound_to: &[u8], nonce: &[u8], mut data: Vec<u8>) -> Option<Vec<u8>> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(bound_to), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A stored value as a JSON document named by `format`: `{"format", FIELD:
/// value}` in the clear without a key, or `{"format", "aes_256_gcm":
/// {"nonce", "sealed"}}` with `value`'s JSON sealed and bound to `bound_to`.
/// `None` if sealing failed.
pub fn wrap(
    format: &str,
    field: &str,
    value: &Value,
    key: Option<&SealKey>,
    bound_to: &[u8],
) -> Option<String> {
    let doc = match key {
        None => json!({ "format": format, field: value }),
        Some(key) => {
            let (nonce, data) = key.seal(bound_to, value.to_string().as_bytes())?;
            json!({
                "format": format,
                "aes_256_gcm": { "nonce": B64.encode(nonce), "sealed": B64.encode(data) },
            })
        }
    };
    Some(doc.to_string())
}

/// The value `wrap` stored under `location`; errors name the location and
/// why, never the value.
pub fn unwrap(
    format: &str,
    field: &str,
    text: &[u8],
    key: Option<&SealKey>,
    bound_to: &[u8],
    location: &str,
) -> Result<Value, StoreError> {
    let garbage = || StoreError::Damaged {
        location: location.to_string(),
    };
    let sealed = |problem| StoreError::Sealed {
        location: location.to_string(),
        problem,
    };
    let doc: Value = serde_json::from_slice(text).map_err(|_| garbage())?;
    if doc.get("format").and_then(Value::as_str) != Some(format) {
        return Err(garbage());
    }
    match (doc.get("aes_256_gcm"), doc.get(field), key) {
        (Some(s), None, Some(key)) => {
            let part = |n| {
                s.get(n)
                    .and_then(Value::as_str)
                    .and_then(|v| B64.decode(v).ok())
            };
            let (Some(nonce), Some(data)) = (part("nonce"), part("sealed")) else {
                return Err(garbage());
            };
            let plain = key.open(bound_to, &nonce, data).ok_or_else(|| {
                sealed("cannot be opened with store_key (wrong key, or the value was altered or moved from another key)")
            })?;
            serde_json::from_slice(&plain).map_err(|_| garbage())
        }
        (Some(_), None, None) => Err(sealed("is sealed, but no store.store_key is configured")),
        (None, Some(_), Some(_)) => Err(sealed("is not sealed, but store.store_key is set")),
        (None, Some(v), None) => Ok(v.clone()),
        _ => Err(garbage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_where_it_was_sealed_and_with_its_key() {
        let key = SealKey::new(&SecretBytes::new([9; 32])).unwrap();
        let (nonce, data) = key.seal(b"k:a", b"rt-secret").unwrap();
        assert!(!data.windows(9).any(|w| w == b"rt-secret"));
        assert_eq!(
            key.open(b"k:a", &nonce, data.clone()).unwrap(),
            b"rt-secret"
        );
        assert!(key.open(b"k:b", &nonce, data.clone()).is_none(), "moved");
        let other = SealKey::new(&SecretBytes::new([8; 32])).unwrap();
        assert!(other.open(b"k:a", &nonce, data).is_none(), "wrong key");
        assert!(SealKey::new(&SecretBytes::new([1; 16])).is_none());
    }

    #[test]
    fn the_envelope_opens_where_it_was_written_and_says_why_not_elsewhere() {
        let key = SealKey::new(&SecretBytes::new([9; 32])).unwrap();
        let value = serde_json::json!({ "refresh_token": "rt-secret" });
        let sealed = wrap("f", "grant", &value, Some(&key), b"k:a").unwrap();
        assert!(!sealed.contains("rt-secret"), "{sealed}");
        let open =
            |text: &str, key, at: &[u8]| unwrap("f", "grant", text.as_bytes(), key, at, "k:a");
        assert_eq!(open(&sealed, Some(&key), b"k:a").unwrap(), value);
        for (text, key, at) in [
            (sealed.as_str(), Some(&key), &b"k:b"[..]),
            (sealed.as_str(), None, &b"k:a"[..]),
        ] {
            let e = open(text, key, at).unwrap_err();
            assert!(matches!(e, StoreError::Sealed { .. }), "{e}");
            assert!(!e.to_string().contains("rt-secret"), "{e}");
        }
        let clear = wrap("f", "grant", &value, None, b"k:a").unwrap();
        assert_eq!(open(&clear, None, b"k:a").unwrap(), value);
        assert!(matches!(
            open(&clear, Some(&key), b"k:a").unwrap_err(),
            StoreError::Sealed { .. }
        ));
        assert!(matches!(
            unwrap("other", "grant", clear.as_bytes(), None, b"k:a", "k:a").unwrap_err(),
            StoreError::Damaged { .. }
        ));
    }
}
