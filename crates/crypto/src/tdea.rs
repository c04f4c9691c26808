//! Triple DES (TDEA, NIST SP 800-67) in CBC and ECB with two-key (16-byte) and three-key
//! (24-byte) keys, through the RustCrypto `des` crate because aws-lc-rs does not expose it.
//!
//! For KMIP 1.x interoperability only: NIST disallows TDEA for encryption after 2023
//! (SP 800-131A rev. 2), its 64-bit block wears out after a few gigabytes under one key, and a
//! build with the `fips` feature refuses it. The caller logs a warning on every use.

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{TdesEde2, TdesEde3};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::symmetric::Padding;

pub(crate) const BLOCK: usize = 8;

/// Triple DES block modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TdesMode {
    Cbc(Padding),
    Ecb(Padding),
}

impl TdesMode {
    const fn name(self) -> &'static str {
        match self {
            Self::Cbc(_) => "Triple DES CBC",
            Self::Ecb(_) => "Triple DES ECB",
        }
    }

    const fn padding(self) -> Padding {
        match self {
            Self::Cbc(p) | Self::Ecb(p) => p,
        }
    }
}

enum Tdes {
    Two(TdesEde2),
    Three(TdesEde3),
}

impl Tdes {
    fn new(mode: TdesMode, key: &[u8]) -> Result<Tdes> {
        let invalid = || Error::InvalidKeyLength {
            algorithm: mode.name(),
            expected: "16 (two-key) or 24 (three-key)",
            actual: key.len(),
        };
        Ok(match key.len() {
            16 => Tdes::Two(TdesEde2::new_from_slice(key).map_err(|_| invalid())?),
            24 => Tdes::Three(TdesEde3::new_from_slice(key).map_err(|_| invalid())?),
            _ => return Err(invalid()),
        })
    }

    fn block(&self, block: &mut [u8], decrypt: bool) {
        let b = GenericArray::from_mut_slice(block);
        match (self, decrypt) {
            (Tdes::Two(c), false) => c.encrypt_block(b),
            (Tdes::Two(c), true) => c.decrypt_block(b),
            (Tdes::Three(c), false) => c.encrypt_block(b),
            (Tdes::Three(c), true) => c.decrypt_block(b),
        }
    }
}

fn iv(mode: TdesMode, iv: Option<&[u8]>) -> Result<Option<[u8; BLOCK]>> {
    match (mode, iv) {
        (TdesMode::Ecb(_), _) => Ok(None),
        (TdesMode::Cbc(_), None) => Err(Error::MissingIv {
            algorithm: mode.name(),
        }),
        (TdesMode::Cbc(_), Some(iv)) => {
            <[u8; BLOCK]>::try_from(iv)
                .map(Some)
                .map_err(|_| Error::InvalidIvLength {
                    algorithm: mode.name(),
                    expected: "8",
                    actual: iv.len(),
                })
        }
    }
}

fn aligned(mode: TdesMode, len: usize) -> Result<()> {
    if len.is_multiple_of(BLOCK) {
        return Ok(());
    }
    Err(Error::DataNotBlockAligned {
        algorithm: mode.name(),
        block_size: BLOCK,
        actual: len,
    })
}

pub(crate) fn encrypt(
    mode: TdesMode,
    key: &[u8],
    iv_given: Option<&[u8]>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let cipher = Tdes::new(mode, key)?;
    let mut chain = iv(mode, iv_given)?;
    let mut out = plaintext.to_vec();
    match mode.padding() {
        Padding::Pkcs5 => {
            let fill = BLOCK - out.len() % BLOCK;
            out.resize(out.len() + fill, fill as u8);
        }
        Padding::None => aligned(mode, out.len())?,
    }
    for block in out.chunks_exact_mut(BLOCK) {
        if let Some(c) = &chain {
            block.iter_mut().zip(c).for_each(|(b, c)| *b ^= c);
        }
        cipher.block(block, false);
        if let Some(c) = &mut chain {
            c.copy_from_slice(block);
        }
    }
    Ok(out)
}

pub(crate) fn decrypt(
    mode: TdesMode,
    key: &[u8],
    iv_given: Option<&[u8]>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = Tdes::new(mode, key)?;
    let mut chain = iv(mode, iv_given)?;
    aligned(mode, ciphertext.len())?;
    let mut out = Zeroizing::new(ciphertext.to_vec());
    for block in out.chunks_exact_mut(BLOCK) {
        let input: [u8; BLOCK] = block.try_into().unwrap_or([0; BLOCK]);
        cipher.block(block, true);
        if let Some(c) = &mut chain {
            block.iter_mut().zip(c.iter()).for_each(|(b, c)| *b ^= c);
            *c = input;
        }
    }
    if mode.padding() == Padding::Pkcs5 {
        let fill = usize::from(out.last().copied().unwrap_or(0));
        if fill == 0
            || fill > BLOCK
            || fill > out.len()
            || out[out.len() - fill..]
                .iter()
                .any(|b| usize::from(*b) != fill)
        {
            return Err(Error::InvalidPadding);
        }
        let keep = out.len() - fill;
        out.truncate(keep);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    const KEY3: &str = "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123";
    const PLAIN: &[u8] = b"The qufck brown fox jump";

    /// NIST SP 800-67 rev. 2, appendix B (three-key TDEA, ECB).
    #[test]
    fn matches_sp_800_67() -> Result<()> {
        let ct = encrypt(TdesMode::Ecb(Padding::None), &hex(KEY3), None, PLAIN)?;
        assert_eq!(ct, hex("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900"));
        let pt = decrypt(TdesMode::Ecb(Padding::None), &hex(KEY3), None, &ct)?;
        assert_eq!(pt.as_slice(), PLAIN);
        Ok(())
    }

    /// CBC with PKCS#5 padding, with two- and three-key keys, as `openssl enc -des-ede3-cbc` and
    /// `-des-ede-cbc` compute them.
    #[test]
    fn cbc_matches_openssl() -> Result<()> {
        let iv = hex("0011223344556677");
        let cases = [
            (
                KEY3,
                "256554b72a698322ff9b1a0d888c3a5e7f94342f68b4faaf1396b8e571acd5c6",
            ),
            (
                "0123456789ABCDEF23456789ABCDEF01",
                "6618723ead5f6a04da67e221353deb282399f7644fe4deaf29c4705b64d65d74",
            ),
        ];
        for (key, expected) in cases {
            let mode = TdesMode::Cbc(Padding::Pkcs5);
            let ct = encrypt(mode, &hex(key), Some(&iv), PLAIN)?;
            assert_eq!(ct, hex(expected));
            assert_eq!(decrypt(mode, &hex(key), Some(&iv), &ct)?.as_slice(), PLAIN);
        }
        Ok(())
    }

    #[test]
    fn bad_keys_ivs_lengths_and_padding_are_refused() {
        let mode = TdesMode::Cbc(Padding::Pkcs5);
        assert!(matches!(
            encrypt(mode, &[0; 8], Some(&[0; 8]), b"x"),
            Err(Error::InvalidKeyLength { .. })
        ));
        assert!(matches!(
            encrypt(mode, &[1; 24], Some(&[0; 16]), b"x"),
            Err(Error::InvalidIvLength { .. })
        ));
        assert!(matches!(
            encrypt(mode, &[1; 24], None, b"x"),
            Err(Error::MissingIv { .. })
        ));
        assert!(matches!(
            encrypt(TdesMode::Ecb(Padding::None), &[1; 24], None, b"seven!!"),
            Err(Error::DataNotBlockAligned { .. })
        ));
        assert!(matches!(
            decrypt(mode, &hex(KEY3), Some(&[0; 8]), &[0; 16]),
            Err(Error::InvalidPadding)
        ));
    }
}
