//! AES-XTS (IEEE 1619, NIST SP 800-38E) over one data unit, with the RustCrypto `xts-mode` and
//! `aes` crates because aws-lc-rs has no XTS. XTS gives confidentiality only; this module must
//! not be presented as authenticating anything.

use aes::cipher::{BlockCipher, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use xts_mode::Xts128;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const NAME: &str = "AES-XTS";
const BLOCK_LEN: usize = 16;
/// IEEE 1619 caps a data unit at 2^20 blocks.
const MAX_DATA_UNIT: usize = BLOCK_LEN << 20;

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// Encrypts `plaintext` as one data unit under the 16-byte tweak `iv`; lengths that are not a
/// multiple of 16 use ciphertext stealing.
pub(crate) fn encrypt(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    apply(key, iv, &mut buffer, Direction::Encrypt)?;
    Ok(std::mem::take(&mut *buffer))
}

/// Decrypts one data unit encrypted by [`encrypt`].
pub(crate) fn decrypt(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    apply(key, iv, &mut buffer, Direction::Decrypt)?;
    Ok(buffer)
}

fn apply(key: &[u8], iv: &[u8], data: &mut [u8], direction: Direction) -> Result<()> {
    if key.len() != 32 && key.len() != 64 {
        return Err(Error::InvalidKeyLength {
            algorithm: NAME,
            expected: "32 (two AES-128 keys) or 64 (two AES-256 keys)",
            actual: key.len(),
        });
    }
    // The first half encrypts the data, the second half the tweak.
    let (data_key, tweak_key) = key.split_at(key.len() / 2);
    // SP 800-38E (and FIPS 140-3 IG C.I) require the two halves to differ; with equal halves
    // the tweak encryption leaks information about the data encryption.
    if aws_lc_rs::constant_time::verify_slices_are_equal(data_key, tweak_key).is_ok() {
        return Err(Error::WeakKey {
            algorithm: NAME,
            reason: "its two halves are equal",
        });
    }
    let tweak = <[u8; BLOCK_LEN]>::try_from(iv).map_err(|_| Error::InvalidIvLength {
        algorithm: NAME,
        expected: "16 (the tweak)",
        actual: iv.len(),
    })?;
    check_data(data.len())?;
    if key.len() == 32 {
        run::<Aes128>(data_key, tweak_key, tweak, data, direction)
    } else {
        run::<Aes256>(data_key, tweak_key, tweak, data, direction)
    }
}

fn run<C>(
    data_key: &[u8],
    tweak_key: &[u8],
    tweak: [u8; BLOCK_LEN],
    data: &mut [u8],
    direction: Direction,
) -> Result<()>
where
    C: BlockCipher + BlockEncrypt + BlockDecrypt + KeyInit,
{
    let load = |half: &[u8]| {
        C::new_from_slice(half).map_err(|_| Error::InvalidKeyLength {
            algorithm: NAME,
            expected: "32 or 64",
            actual: 2 * half.len(),
        })
    };
    let xts = Xts128::new(load(data_key)?, load(tweak_key)?);
    match direction {
        Direction::Encrypt => xts.encrypt_sector(data, tweak),
        Direction::Decrypt => xts.decrypt_sector(data, tweak),
    }
    Ok(())
}

fn check_data(len: usize) -> Result<()> {
    // `xts-mode` panics below one block, so this check is what keeps a short request from
    // crashing the server.
    if len < BLOCK_LEN {
        return Err(Error::DataTooShort {
            algorithm: NAME,
            minimum: BLOCK_LEN,
            actual: len,
        });
    }
    if len > MAX_DATA_UNIT {
        return Err(Error::DataTooLong {
            algorithm: NAME,
            maximum: MAX_DATA_UNIT as u64,
            actual: len as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    /// IEEE 1619-2007, annex B, vector 2: data unit sequence number 0x3333333333 as the
    /// little-endian tweak.
    #[test]
    fn matches_ieee_1619_vector_2() -> Result<()> {
        let mut key = vec![0x11u8; 16];
        key.extend_from_slice(&[0x22u8; 16]);
        let tweak = hex("33333333330000000000000000000000");
        let plaintext = [0x44u8; 32];
        let ciphertext = encrypt(&key, &tweak, &plaintext)?;
        assert_eq!(
            ciphertext,
            hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0")
        );
        assert_eq!(decrypt(&key, &tweak, &ciphertext)?.as_slice(), plaintext);
        Ok(())
    }

    #[test]
    fn equal_key_halves_are_refused() {
        assert!(matches!(
            encrypt(&[0u8; 32], &[0u8; 16], &[0u8; 32]),
            Err(Error::WeakKey { .. })
        ));
        assert!(matches!(
            decrypt(&[7u8; 64], &[0u8; 16], &[0u8; 32]),
            Err(Error::WeakKey { .. })
        ));
    }

    #[test]
    fn data_shorter_than_a_block_is_refused_instead_of_panicking() {
        let key: Vec<u8> = (0..32).collect();
        for len in [0, 1, 15] {
            assert!(matches!(
                encrypt(&key, &[0u8; 16], &vec![0u8; len]),
                Err(Error::DataTooShort { minimum: 16, .. })
            ));
            assert!(matches!(
                decrypt(&key, &[0u8; 16], &vec![0u8; len]),
                Err(Error::DataTooShort { minimum: 16, .. })
            ));
        }
    }

    #[test]
    fn ciphertext_stealing_round_trips_and_keeps_the_length() -> Result<()> {
        let key: Vec<u8> = (0..64).collect();
        let tweak = [5u8; 16];
        for len in [16, 17, 31, 33, 100] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ciphertext = encrypt(&key, &tweak, &plaintext)?;
            assert_eq!(ciphertext.len(), len);
            assert_eq!(decrypt(&key, &tweak, &ciphertext)?.as_slice(), plaintext);
        }
        Ok(())
    }
}
