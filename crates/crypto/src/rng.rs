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

/// Fills `buf` with random bytes; the building block for generated IVs.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|source| Error::Rng { source })
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

    #[test]
    fn random_key_has_the_requested_length() -> Result<()> {
        assert_eq!(random_key(32)?.len(), 32);
        Ok(())
    }
}
