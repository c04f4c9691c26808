//! Random bytes, keys and IVs from the crypto library's generator; no other randomness source
//! may be used anywhere in the crate.

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest number of bytes one call returns. The length usually comes from a client (KMIP
/// `RNGRetrieve`, `Create` with a key length), so it is bounded to keep one request from
/// allocating without limit; a megabyte is far above any key or IV.
pub const MAX_RANDOM_LENGTH: usize = 1 << 20;

/// Returns `len` bytes from the cryptographically secure generator.
///
/// # Errors
/// [`Error::DataTooLong`] above [`MAX_RANDOM_LENGTH`], [`Error::Rng`] if the generator fails.
pub fn random_bytes(len: usize) -> Result<Vec<u8>> {
    check_length(len)?;
    let mut out = vec![0u8; len];
    fill(&mut out)?;
    Ok(out)
}

/// Returns a fresh secret key of `len` bytes, wiped from memory when dropped.
///
/// # Errors
/// [`Error::InvalidKeyLength`] for an empty key, [`Error::DataTooLong`] above
/// [`MAX_RANDOM_LENGTH`], [`Error::Rng`] if the generator fails.
pub fn random_key(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len == 0 {
        return Err(Error::InvalidKeyLength {
            algorithm: "key generation",
            expected: "at least 1",
            actual: 0,
        });
    }
    check_length(len)?;
    let mut key = Zeroizing::new(vec![0u8; len]);
    fill(&mut key)?;
    Ok(key)
}

/// The 16 random bytes of a version 4 UUID, from the generator's pool of IVs (identifiers are
/// public values, as IVs are): `uuid::Uuid::new_v4` would ask the operating system, a system
/// call for every new object.
///
/// # Errors
/// [`Error::Rng`] if the generator fails.
pub fn random_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    fill_iv(&mut id)?;
    Ok(id)
}

/// Fills `buf` with random bytes straight from the generator (keys, secrets).
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|source| Error::Rng { source })
}

/// Bytes of generator output each thread draws at once for IVs and nonces.
const IV_POOL: usize = 512;

/// A thread's unused generator output for IVs: `bytes[used..]` has never been handed out.
struct IvPool {
    bytes: [u8; IV_POOL],
    used: usize,
}

thread_local! {
    static IV_POOL_OF_THREAD: std::cell::RefCell<IvPool> =
        const { std::cell::RefCell::new(IvPool { bytes: [0; IV_POOL], used: IV_POOL }) };
}

/// Fills `buf` with random bytes for a value that is public once used: an IV or a nonce,
/// never a key. One generator call (which draws fresh CPU entropy each time, a tenth of a small
/// encryption's cost) serves many IVs: each thread draws [`IV_POOL`] bytes at once and hands
/// every byte out exactly once, wiping it as it goes.
pub(crate) fn fill_iv(buf: &mut [u8]) -> Result<()> {
    if buf.len() > IV_POOL / 4 {
        return fill(buf);
    }
    IV_POOL_OF_THREAD.with(|pool| {
        let mut pool = pool.borrow_mut();
        if IV_POOL - pool.used < buf.len() {
            fill(&mut pool.bytes)?;
            pool.used = 0;
        }
        let start = pool.used;
        let taken = &mut pool.bytes[start..start + buf.len()];
        buf.copy_from_slice(taken);
        taken.fill(0);
        pool.used += buf.len();
        Ok(())
    })
}

fn check_length(len: usize) -> Result<()> {
    if len > MAX_RANDOM_LENGTH {
        return Err(Error::DataTooLong {
            algorithm: "the random generator",
            maximum: MAX_RANDOM_LENGTH as u64,
            actual: len as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_have_the_requested_length_and_differ() -> Result<()> {
        let a = random_bytes(32)?;
        let b = random_bytes(32)?;
        assert_eq!(a.len(), 32);
        // Equal outputs would mean a broken generator (probability 2^-256 otherwise).
        assert_ne!(a, b);
        assert!(random_bytes(0)?.is_empty());
        Ok(())
    }

    /// Identifiers never repeat, across the pool's refills.
    #[test]
    fn random_ids_differ() -> Result<()> {
        let ids: std::collections::HashSet<[u8; 16]> =
            (0..1000).map(|_| random_id()).collect::<Result<_>>()?;
        assert_eq!(ids.len(), 1000);
        Ok(())
    }

    #[test]
    fn random_key_rejects_empty_and_oversized_lengths() {
        assert!(matches!(
            random_key(0),
            Err(Error::InvalidKeyLength { actual: 0, .. })
        ));
        assert!(matches!(
            random_key(MAX_RANDOM_LENGTH + 1),
            Err(Error::DataTooLong { .. })
        ));
        assert!(matches!(
            random_bytes(MAX_RANDOM_LENGTH + 1),
            Err(Error::DataTooLong { .. })
        ));
    }

    /// IVs from the pool never repeat: across refills, and between threads (each has its own).
    #[test]
    fn pooled_ivs_are_never_handed_out_twice() -> Result<()> {
        let draw = || -> Result<Vec<[u8; 12]>> {
            (0..1000)
                .map(|_| {
                    let mut iv = [0u8; 12];
                    fill_iv(&mut iv)?;
                    Ok(iv)
                })
                .collect()
        };
        let mut all = draw()?;
        all.extend(std::thread::spawn(draw).join().expect("thread")?);
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        // Longer than a pool's share: straight from the generator, still filled.
        let mut long = [0u8; IV_POOL];
        fill_iv(&mut long)?;
        assert_ne!(long, [0u8; IV_POOL]);
        Ok(())
    }

    #[test]
    fn random_key_has_the_requested_length() -> Result<()> {
        assert_eq!(random_key(32)?.len(), 32);
        Ok(())
    }
}
