//! The nonces an `hmac` credential draws, from the OS generator
//! (random.rs; they go out in the clear, so from its per-thread batches).

use crate::config::NonceFormat;
use crate::random::{fill_public, RandomError};

pub fn draw(format: NonceFormat) -> Result<String, RandomError> {
    match format {
        NonceFormat::Uuid => uuid_v4(),
        NonceFormat::Hex(len) => {
            let mut bytes = vec![0u8; len.div_ceil(2)];
            fill_public(&mut bytes)?;
            let mut text = crate::creds::sigv4::hex(&bytes);
            text.truncate(len);
            Ok(text)
        }
        NonceFormat::Alphanumeric(len) => crate::creds::paypay::random_nonce(len),
    }
}

/// A random UUID (RFC 9562 version 4), lowercase.
fn uuid_v4() -> Result<String, RandomError> {
    let mut b = [0u8; 16];
    fill_public(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::creds::sigv4::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_has_its_shape_and_nonces_differ() {
        let u = draw(NonceFormat::Uuid).unwrap();
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(&parts[2][..1], "4", "version 4: {u}");
        assert!("89ab".contains(&parts[3][..1]), "RFC variant: {u}");
        let h = draw(NonceFormat::Hex(33)).unwrap();
        assert_eq!(h.len(), 33);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let a = draw(NonceFormat::Alphanumeric(12)).unwrap();
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(draw(NonceFormat::Uuid).unwrap(), u);
    }
}
