//! AES in the unauthenticated block modes CBC, ECB and CTR, all through aws-lc-rs. These modes
//! give no integrity: callers that need it must use an AEAD, and this module must not pretend
//! otherwise (a bad padding is reported as such, never as an authentication failure).

use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, Algorithm, DecryptingKey, DecryptionContext, EncryptingKey,
    EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::symmetric::Padding;

const BLOCK_LEN: usize = 16;

/// A block mode together with its padding; CTR never pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockMode {
    Cbc(Padding),
    Ecb(Padding),
    Ctr,
}

impl BlockMode {
    const fn name(self) -> &'static str {
        match self {
            Self::Cbc(_) => "AES-CBC",
            Self::Ecb(_) => "AES-ECB",
            Self::Ctr => "AES-CTR",
        }
    }

    /// Whether unpadded data must fill whole blocks (CTR is a stream mode and takes any length).
    const fn needs_whole_blocks(self) -> bool {
        matches!(self, Self::Cbc(Padding::None) | Self::Ecb(Padding::None))
    }

    fn key(self, key: &[u8]) -> Result<UnboundCipherKey> {
        let algorithm: &'static Algorithm = match key.len() {
            16 => &AES_128,
            24 => &AES_192,
            32 => &AES_256,
            actual => {
                return Err(Error::InvalidKeyLength {
                    algorithm: self.name(),
                    expected: "16, 24 or 32",
                    actual,
                });
            }
        };
        UnboundCipherKey::new(algorithm, key).map_err(Error::backend("load an AES key"))
    }

    /// The 16-byte IV of CBC and CTR; ECB has none (the caller already refused one for ECB).
    fn iv(self, iv: Option<&[u8]>) -> Result<Option<[u8; BLOCK_LEN]>> {
        if matches!(self, Self::Ecb(_)) {
            return Ok(None);
        }
        let iv = iv.ok_or(Error::MissingIv {
            algorithm: self.name(),
        })?;
        <[u8; BLOCK_LEN]>::try_from(iv)
            .map(Some)
            .map_err(|_| Error::InvalidIvLength {
                algorithm: self.name(),
                expected: "16",
                actual: iv.len(),
            })
    }

    fn check_alignment(self, len: usize) -> Result<()> {
        if len.is_multiple_of(BLOCK_LEN) {
            return Ok(());
        }
        Err(Error::DataNotBlockAligned {
            algorithm: self.name(),
            block_size: BLOCK_LEN,
            actual: len,
        })
    }
}

fn encryption_context(iv: Option<[u8; BLOCK_LEN]>) -> EncryptionContext {
    match iv {
        Some(iv) => EncryptionContext::Iv128(FixedLength::from(iv)),
        None => EncryptionContext::None,
    }
}

fn decryption_context(iv: Option<[u8; BLOCK_LEN]>) -> DecryptionContext {
    match iv {
        Some(iv) => DecryptionContext::Iv128(FixedLength::from(iv)),
        None => DecryptionContext::None,
    }
}

/// Encrypts `plaintext`; `iv` is required for CBC and CTR and absent for ECB.
pub(crate) fn encrypt(
    mode: BlockMode,
    key: &[u8],
    iv: Option<&[u8]>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let key = mode.key(key)?;
    let context = encryption_context(mode.iv(iv)?);
    if mode.needs_whole_blocks() {
        mode.check_alignment(plaintext.len())?;
    }
    // The buffer holds plaintext until encryption succeeds, so it is wiped if encryption fails.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + BLOCK_LEN));
    buffer.extend_from_slice(plaintext);
    match mode {
        BlockMode::Cbc(Padding::Pkcs5) | BlockMode::Ecb(Padding::Pkcs5) => {
            let key = if matches!(mode, BlockMode::Cbc(_)) {
                PaddedBlockEncryptingKey::cbc_pkcs7(key)
            } else {
                PaddedBlockEncryptingKey::ecb_pkcs7(key)
            }
            .map_err(Error::backend("prepare AES with padding"))?;
            key.less_safe_encrypt(&mut *buffer, context)
                .map_err(Error::backend("encrypt"))?;
        }
        BlockMode::Cbc(Padding::None) | BlockMode::Ecb(Padding::None) | BlockMode::Ctr => {
            let key = match mode {
                BlockMode::Cbc(_) => EncryptingKey::cbc(key),
                BlockMode::Ecb(_) => EncryptingKey::ecb(key),
                BlockMode::Ctr => EncryptingKey::ctr(key),
            }
            .map_err(Error::backend("prepare AES"))?;
            key.less_safe_encrypt(buffer.as_mut_slice(), context)
                .map_err(Error::backend("encrypt"))?;
        }
    }
    Ok(std::mem::take(&mut *buffer))
}

/// Decrypts `ciphertext` and, with PKCS#5, checks and removes the padding.
pub(crate) fn decrypt(
    mode: BlockMode,
    key: &[u8],
    iv: Option<&[u8]>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = mode.key(key)?;
    let context = decryption_context(mode.iv(iv)?);
    if !matches!(mode, BlockMode::Ctr) {
        // Padded or not, CBC and ECB ciphertexts are whole blocks.
        mode.check_alignment(ciphertext.len())?;
    }
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plaintext_len = match mode {
        BlockMode::Cbc(Padding::Pkcs5) | BlockMode::Ecb(Padding::Pkcs5) => {
            let key = if matches!(mode, BlockMode::Cbc(_)) {
                PaddedBlockDecryptingKey::cbc_pkcs7(key)
            } else {
                PaddedBlockDecryptingKey::ecb_pkcs7(key)
            }
            .map_err(Error::backend("prepare AES with padding"))?;
            // With the alignment checked, a failure can only be the padding check.
            key.decrypt(buffer.as_mut_slice(), context)
                .map_err(|_| Error::InvalidPadding)?
                .len()
        }
        BlockMode::Cbc(Padding::None) | BlockMode::Ecb(Padding::None) | BlockMode::Ctr => {
            let key = match mode {
                BlockMode::Cbc(_) => DecryptingKey::cbc(key),
                BlockMode::Ecb(_) => DecryptingKey::ecb(key),
                BlockMode::Ctr => DecryptingKey::ctr(key),
            }
            .map_err(Error::backend("prepare AES"))?;
            key.decrypt(buffer.as_mut_slice(), context)
                .map_err(Error::backend("decrypt"))?
                .len()
        }
    };
    // aws-lc-rs removes padding by returning a prefix of the buffer.
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    const SP800_38A_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const SP800_38A_PLAINTEXT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                                       30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    /// NIST SP 800-38A, F.1.1 (ECB-AES128.Encrypt).
    #[test]
    fn ecb_matches_sp_800_38a() -> Result<()> {
        let key = hex(SP800_38A_KEY);
        let ciphertext = encrypt(
            BlockMode::Ecb(Padding::None),
            &key,
            None,
            &hex(SP800_38A_PLAINTEXT),
        )?;
        assert_eq!(
            ciphertext,
            hex(
                "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf\
                 43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4"
            )
        );
        Ok(())
    }

    /// NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt).
    #[test]
    fn cbc_matches_sp_800_38a() -> Result<()> {
        let key = hex(SP800_38A_KEY);
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let mode = BlockMode::Cbc(Padding::None);
        let ciphertext = encrypt(mode, &key, Some(&iv), &hex(SP800_38A_PLAINTEXT))?;
        assert_eq!(
            ciphertext,
            hex(
                "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                 73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
            )
        );
        let plaintext = decrypt(mode, &key, Some(&iv), &ciphertext)?;
        assert_eq!(plaintext.as_slice(), hex(SP800_38A_PLAINTEXT));
        Ok(())
    }

    /// NIST SP 800-38A, F.5.1 (CTR-AES128.Encrypt).
    #[test]
    fn ctr_matches_sp_800_38a() -> Result<()> {
        let key = hex(SP800_38A_KEY);
        let counter = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ciphertext = encrypt(
            BlockMode::Ctr,
            &key,
            Some(&counter),
            &hex(SP800_38A_PLAINTEXT),
        )?;
        assert_eq!(
            ciphertext,
            hex(
                "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff\
                 5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"
            )
        );
        Ok(())
    }

    #[test]
    fn pkcs5_padding_adds_a_full_block_to_aligned_data() -> Result<()> {
        let key = [1u8; 16];
        let iv = [2u8; 16];
        let mode = BlockMode::Cbc(Padding::Pkcs5);
        assert_eq!(encrypt(mode, &key, Some(&iv), &[0u8; 16])?.len(), 32);
        assert_eq!(encrypt(mode, &key, Some(&iv), &[0u8; 15])?.len(), 16);
        assert_eq!(encrypt(mode, &key, Some(&iv), &[])?.len(), 16);
        Ok(())
    }

    #[test]
    fn unaligned_data_without_padding_is_refused() {
        let key = [1u8; 16];
        for mode in [BlockMode::Cbc(Padding::None), BlockMode::Ecb(Padding::None)] {
            let iv = matches!(mode, BlockMode::Cbc(_)).then_some(&[0u8; 16][..]);
            assert!(matches!(
                encrypt(mode, &key, iv, &[0u8; 17]),
                Err(Error::DataNotBlockAligned {
                    block_size: 16,
                    actual: 17,
                    ..
                })
            ));
            assert!(matches!(
                decrypt(mode, &key, iv, &[0u8; 20]),
                Err(Error::DataNotBlockAligned { actual: 20, .. })
            ));
        }
        assert!(matches!(
            decrypt(BlockMode::Ecb(Padding::Pkcs5), &key, None, &[0u8; 15]),
            Err(Error::DataNotBlockAligned { .. })
        ));
    }

    #[test]
    fn a_wrong_key_or_corrupted_ciphertext_shows_as_invalid_padding() -> Result<()> {
        let key = [1u8; 32];
        let iv = [2u8; 16];
        let mode = BlockMode::Cbc(Padding::Pkcs5);
        let ciphertext = encrypt(mode, &key, Some(&iv), b"sixteen byte msg and more")?;
        // Several wrong keys: one of them could decrypt to valid padding by chance (about 1/256).
        let failures = (0u8..8)
            .filter(|k| decrypt(mode, &[*k; 32], Some(&iv), &ciphertext).is_err())
            .count();
        assert!(failures >= 6);
        // The 25-byte message ends in seven 0x07 bytes; flipping the matching bit pattern in the
        // previous ciphertext block turns the last one into 0x11, which no padding can be.
        let mut corrupted = ciphertext.clone();
        if let Some(byte) = corrupted.get_mut(15) {
            *byte ^= 0x07 ^ 0x11;
        }
        assert!(matches!(
            decrypt(mode, &key, Some(&iv), &corrupted),
            Err(Error::InvalidPadding)
        ));
        assert!(matches!(
            decrypt(mode, &key, Some(&iv), &[]),
            Err(Error::InvalidPadding)
        ));
        Ok(())
    }

    #[test]
    fn ecb_pkcs5_round_trips() -> Result<()> {
        let key = [9u8; 24];
        let mode = BlockMode::Ecb(Padding::Pkcs5);
        let ciphertext = encrypt(mode, &key, None, b"hello")?;
        assert_eq!(decrypt(mode, &key, None, &ciphertext)?.as_slice(), b"hello");
        Ok(())
    }
}
