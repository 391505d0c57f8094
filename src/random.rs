//! The one source of randomness: the operating system's generator, through
//! ring's `SystemRandom` (the generator ring's own signing APIs take, and
//! the one rustls's provider uses). Nonces, PKCE verifiers, `state`
//! values, JWT ids, token store nonces and retry jitter all come from here.

use std::sync::LazyLock;

use ring::rand::{SecureRandom, SystemRandom};

static SYSTEM: LazyLock<SystemRandom> = LazyLock::new(SystemRandom::new);

/// The OS generator failed (ring's error says nothing more): whatever
/// needed the bytes cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the OS generator.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    SYSTEM.fill(buf).map_err(|_| RandomError)
}

/// The generator, for ring APIs that take one (ECDSA key loading and
/// signing, RSA-PSS signing).
pub fn generator() -> &'static dyn SecureRandom {
    &*SYSTEM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_with_fresh_bytes() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
