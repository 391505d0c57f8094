//! The one source of randomness: the operating system's generator, through
//! ring's `SystemRandom` (the generator ring's own signing APIs take, and
//! the one rustls's provider uses). Nonces, PKCE verifiers, `state`
//! values, JWT ids, token store nonces and retry jitter all come from here;
//! a request's nonce, which goes out in the clear, from bytes fetched in
//! batches (`fill_public`).

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

/// Bytes `fill_public` fetches from the OS at once, per thread.
const BATCH: usize = 256;

/// What `fill_public` fetched for this thread and has not handed out.
struct Batch {
    bytes: [u8; BATCH],
    /// Bytes handed out (and wiped) from the start of `bytes`.
    used: usize,
}

thread_local! {
    static PUBLIC: std::cell::RefCell<Batch> = const {
        std::cell::RefCell::new(Batch { bytes: [0; BATCH], used: BATCH })
    };
}

/// Fills `buf` (up to 64 bytes) for a value that goes out in the clear and
/// is used once, such as a request's nonce: bytes from the OS generator,
/// as `fill` gives, but fetched for this thread 256 at a time, each handed
/// out once and wiped from the batch as it is, so that a signed request
/// costs no system call of its own. Larger requests go to `fill`. Secrets
/// (PKCE verifiers, `state`, keys, sealing nonces) use `fill`. Per thread
/// this holds at most 256 bytes.
pub fn fill_public(buf: &mut [u8]) -> Result<(), RandomError> {
    if buf.len() > BATCH / 4 {
        return fill(buf);
    }
    PUBLIC.with(|batch| {
        let mut batch = batch.borrow_mut();
        if BATCH - batch.used < buf.len() {
            fill(&mut batch.bytes)?;
            batch.used = 0;
        }
        let (start, end) = (batch.used, batch.used + buf.len());
        buf.copy_from_slice(&batch.bytes[start..end]);
        batch.bytes[start..end].fill(0);
        batch.used = end;
        Ok(())
    })
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

    #[test]
    fn public_bytes_are_fresh_across_batches_and_never_handed_out_twice() {
        // 300 draws of 16 bytes: about 19 batches, each boundary crossed.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let mut b = [0u8; 16];
            fill_public(&mut b).unwrap();
            assert!(seen.insert(b), "a value came twice");
        }
        // Larger than a quarter batch: straight from the OS.
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        fill_public(&mut a).unwrap();
        fill_public(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 100]);
    }

    #[test]
    fn a_public_draw_wipes_what_it_takes_from_the_batch() {
        let mut b = [0u8; 8];
        fill_public(&mut b).unwrap();
        PUBLIC.with(|batch| {
            let batch = batch.borrow();
            assert!(batch.bytes[..batch.used].iter().all(|&x| x == 0));
        });
    }
}
