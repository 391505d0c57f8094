//! AES-256-GCM sealing of a stored value, bound to where it is stored: the
//! associated data names the key (and version) a value was written under,
//! so a value copied or moved to another key does not open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

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
}
