//! Plain ChaCha20 (RFC 8439) without Poly1305, through the RustCrypto `chacha20` crate because
//! aws-lc-rs does not expose it. It gives confidentiality only; callers wanting integrity must
//! use ChaCha20-Poly1305.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20, ChaCha20Legacy};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const NAME: &str = "ChaCha20";
const KEY_LEN: usize = 32;
const BLOCK_LEN: u64 = 64;

/// Where the keystream starts: the RFC 8439 nonce and the first block counter.
struct Start<'a> {
    nonce: &'a [u8],
    counter: u32,
}

/// Reads the IV in either accepted form: the 12-byte nonce alone (counter 0), or OpenSSL's
/// 16-byte form, a little-endian 32-bit counter followed by the nonce.
fn start(iv: &[u8]) -> Result<Start<'_>> {
    match iv.len() {
        12 => Ok(Start {
            nonce: iv,
            counter: 0,
        }),
        16 => {
            let (counter, nonce) = iv.split_first_chunk::<4>().ok_or(invalid_iv(iv))?;
            Ok(Start {
                nonce,
                counter: u32::from_le_bytes(*counter),
            })
        }
        _ => Err(invalid_iv(iv)),
    }
}

/// The original ChaCha20's 64-bit nonce (with a 64-bit block counter from 0), which the KMIP test
/// cases use.
const LEGACY_NONCE_LEN: usize = 8;

fn apply_legacy(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(data.to_vec());
    let mut cipher = ChaCha20Legacy::new_from_slices(key, iv).map_err(|_| invalid_iv(iv))?;
    cipher
        .try_apply_keystream(&mut buffer)
        .map_err(|_| Error::DataTooLong {
            algorithm: NAME,
            maximum: u64::MAX,
            actual: data.len() as u64,
        })?;
    Ok(buffer)
}

fn invalid_iv(iv: &[u8]) -> Error {
    Error::InvalidIvLength {
        algorithm: NAME,
        expected: "8 (original 64-bit nonce), 12 (nonce) or 16 (little-endian counter then nonce)",
        actual: iv.len(),
    }
}

/// XORs `data` with the keystream; encryption and decryption are the same operation.
fn apply(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if key.len() != KEY_LEN {
        return Err(Error::InvalidKeyLength {
            algorithm: NAME,
            expected: "32",
            actual: key.len(),
        });
    }
    if iv.len() == LEGACY_NONCE_LEN {
        return apply_legacy(key, iv, data);
    }
    let start = start(iv)?;
    // The 32-bit block counter must not wrap, or the keystream would repeat. The `chacha20`
    // crate stops one block short of the wrap, and the bound reported here is the one it keeps.
    let maximum = u64::from(u32::MAX - start.counter) * BLOCK_LEN;
    let too_long = || Error::DataTooLong {
        algorithm: NAME,
        maximum,
        actual: data.len() as u64,
    };
    if data.len() as u64 > maximum {
        return Err(too_long());
    }
    let mut buffer = Zeroizing::new(data.to_vec());
    if buffer.is_empty() {
        return Ok(buffer);
    }
    let mut cipher = ChaCha20::new_from_slices(key, start.nonce).map_err(|_| invalid_iv(iv))?;
    cipher
        .try_seek(u64::from(start.counter) * BLOCK_LEN)
        .map_err(|_| too_long())?;
    // `try_` variants: the plain ones panic when the counter would overflow.
    cipher
        .try_apply_keystream(&mut buffer)
        .map_err(|_| too_long())?;
    Ok(buffer)
}

pub(crate) fn chacha20_encrypt(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut ciphertext = apply(key, iv, plaintext)?;
    Ok(std::mem::take(&mut *ciphertext))
}

pub(crate) fn chacha20_decrypt(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    apply(key, iv, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    const SUNSCREEN: &[u8] =
        b"Ladies and Gentlemen of the class of '99: If I could offer you only \
                               one tip for the future, sunscreen would be it.";

    /// RFC 8439, section 2.4.2: the example starts at block counter 1, so it takes the 16-byte IV.
    #[test]
    fn matches_rfc_8439_section_2_4_2_with_a_16_byte_iv() -> Result<()> {
        let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let iv = hex("01000000000000000000004a00000000");
        let ciphertext = chacha20_encrypt(&key, &iv, SUNSCREEN)?;
        assert_eq!(
            ciphertext,
            hex(
                "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b\
                 f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8\
                 07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736\
                 5af90bbf74a35be6b40b8eedf2785e42874d"
            )
        );
        assert_eq!(
            chacha20_decrypt(&key, &iv, &ciphertext)?.as_slice(),
            SUNSCREEN
        );
        Ok(())
    }

    /// RFC 8439, appendix A.1, test vector 1: zero key and nonce, counter 0.
    #[test]
    fn matches_rfc_8439_appendix_a_1_with_a_12_byte_nonce() -> Result<()> {
        let keystream = chacha20_encrypt(&[0u8; 32], &[0u8; 12], &[0u8; 64])?;
        assert_eq!(
            keystream,
            hex(
                "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
                 da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
            )
        );
        // The 16-byte form with a zero counter is the same stream.
        assert_eq!(
            chacha20_encrypt(&[0u8; 32], &[0u8; 16], &[0u8; 64])?,
            keystream
        );
        Ok(())
    }

    #[test]
    fn wrong_key_and_iv_lengths_are_refused() {
        assert!(matches!(
            chacha20_encrypt(&[0u8; 16], &[0u8; 12], b"x"),
            Err(Error::InvalidKeyLength { actual: 16, .. })
        ));
        for len in [0, 7, 13, 24] {
            assert!(matches!(
                chacha20_encrypt(&[0u8; 32], &vec![0u8; len], b"x"),
                Err(Error::InvalidIvLength { .. })
            ));
        }
    }

    #[test]
    fn the_counter_is_not_allowed_to_wrap() -> Result<()> {
        let at_counter = |counter: u32| {
            let mut iv = counter.to_le_bytes().to_vec();
            iv.extend_from_slice(&[0u8; 12]);
            iv
        };
        // Counter 2^32 - 2 leaves exactly one block before the wrap.
        let iv = at_counter(u32::MAX - 1);
        assert_eq!(chacha20_encrypt(&[1u8; 32], &iv, &[0u8; 64])?.len(), 64);
        assert!(matches!(
            chacha20_encrypt(&[1u8; 32], &iv, &[0u8; 65]),
            Err(Error::DataTooLong { maximum: 64, .. })
        ));
        let iv = at_counter(u32::MAX);
        assert!(chacha20_encrypt(&[1u8; 32], &iv, &[])?.is_empty());
        assert!(matches!(
            chacha20_encrypt(&[1u8; 32], &iv, &[0u8; 1]),
            Err(Error::DataTooLong { maximum: 0, .. })
        ));
        Ok(())
    }
}
