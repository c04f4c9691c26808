//! Authenticated encryption: AES-GCM, AES-GCM-SIV and ChaCha20-Poly1305. aws-lc-rs does the
//! work whenever it can; the RustCrypto `aes-gcm` crate covers only the AES-GCM shapes aws-lc-rs
//! lacks (tags shorter than 16 bytes, IVs other than 12 bytes). Plaintext must never leave this
//! module unless the tag verified.

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::{U8, U12, U13, U14, U15, U16};
use aes_gcm::aead::generic_array::{ArrayLength, GenericArray};
use aes_gcm::aes::cipher::{BlockCipher, BlockEncrypt, BlockSizeUser};
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use aws_lc_rs::aead::{self as lc, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The AEAD ciphers; the caller has already refused padding for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aead {
    AesGcm,
    AesGcmSiv,
    ChaCha20Poly1305,
}

/// Ciphertext and tag, kept apart as KMIP carries them in separate fields.
pub(crate) struct Sealed {
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

const FULL_TAG: usize = 16;
const STANDARD_NONCE: usize = 12;
const GCM_IV_LENGTHS: &str = "8, 12 or 16";
const GCM_TAG_LENGTHS: &str = "12 to 16";
/// Longest AES-GCM plaintext, 2^39 - 256 bits (NIST SP 800-38D, section 5.2.1.1).
const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

impl Aead {
    const fn name(self) -> &'static str {
        match self {
            Self::AesGcm => "AES-GCM",
            Self::AesGcmSiv => "AES-GCM-SIV",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }

    /// The aws-lc-rs algorithm for this key; checking the key length here covers both paths.
    fn library_algorithm(self, key: &[u8]) -> Result<&'static lc::Algorithm> {
        let invalid = |expected| Error::InvalidKeyLength {
            algorithm: self.name(),
            expected,
            actual: key.len(),
        };
        match (self, key.len()) {
            (Self::AesGcm, 16) => Ok(&lc::AES_128_GCM),
            (Self::AesGcm, 24) => Ok(&lc::AES_192_GCM),
            (Self::AesGcm, 32) => Ok(&lc::AES_256_GCM),
            (Self::AesGcm, _) => Err(invalid("16, 24 or 32")),
            (Self::AesGcmSiv, 16) => Ok(&lc::AES_128_GCM_SIV),
            (Self::AesGcmSiv, 32) => Ok(&lc::AES_256_GCM_SIV),
            (Self::AesGcmSiv, _) => Err(invalid("16 or 32")),
            (Self::ChaCha20Poly1305, 32) => Ok(&lc::CHACHA20_POLY1305),
            (Self::ChaCha20Poly1305, _) => Err(invalid("32")),
        }
    }

    fn check_iv(self, iv: &[u8]) -> Result<()> {
        let accepted = match self {
            Self::AesGcm => matches!(iv.len(), 8 | 12 | 16),
            Self::AesGcmSiv | Self::ChaCha20Poly1305 => iv.len() == STANDARD_NONCE,
        };
        if accepted {
            return Ok(());
        }
        Err(Error::InvalidIvLength {
            algorithm: self.name(),
            expected: match self {
                Self::AesGcm => GCM_IV_LENGTHS,
                Self::AesGcmSiv | Self::ChaCha20Poly1305 => "12",
            },
            actual: iv.len(),
        })
    }

    fn check_tag_length(self, len: usize) -> Result<()> {
        let accepted = match self {
            Self::AesGcm => (12..=FULL_TAG).contains(&len),
            Self::AesGcmSiv | Self::ChaCha20Poly1305 => len == FULL_TAG,
        };
        if accepted {
            return Ok(());
        }
        Err(Error::InvalidTagLength {
            algorithm: self.name(),
            expected: match self {
                Self::AesGcm => GCM_TAG_LENGTHS,
                Self::AesGcmSiv | Self::ChaCha20Poly1305 => "16",
            },
            actual: len,
        })
    }

    fn check_data(self, len: usize) -> Result<()> {
        // aws-lc-rs enforces the same bound for AES-GCM; checking first gives a clear message.
        // GCM-SIV and ChaCha20-Poly1305 allow far more than any request the server accepts.
        if self == Self::AesGcm && len as u64 > GCM_MAX_PLAINTEXT {
            return Err(Error::DataTooLong {
                algorithm: self.name(),
                maximum: GCM_MAX_PLAINTEXT,
                actual: len as u64,
            });
        }
        Ok(())
    }
}

/// Encrypts and authenticates; the tag has `tag_length` bytes.
pub(crate) fn seal(
    alg: Aead,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_length: usize,
) -> Result<Sealed> {
    let lc_alg = alg.library_algorithm(key)?;
    alg.check_iv(iv)?;
    alg.check_tag_length(tag_length)?;
    alg.check_data(plaintext.len())?;
    // Only AES-GCM passes the checks above with another IV or tag length.
    if iv.len() == STANDARD_NONCE && tag_length == FULL_TAG {
        library_seal(lc_alg, key, iv, aad, plaintext)
    } else {
        gcm_seal(key, iv, aad, plaintext, tag_length)
    }
}

/// Verifies the tag and, only if it matches, returns the plaintext.
pub(crate) fn open(
    alg: Aead,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let lc_alg = alg.library_algorithm(key)?;
    alg.check_iv(iv)?;
    alg.check_tag_length(tag.len())?;
    alg.check_data(ciphertext.len())?;
    if iv.len() == STANDARD_NONCE && tag.len() == FULL_TAG {
        library_open(lc_alg, key, iv, aad, ciphertext, tag)
    } else {
        gcm_open(key, iv, aad, ciphertext, tag)
    }
}

fn library_key(lc_alg: &'static lc::Algorithm, key: &[u8]) -> Result<LessSafeKey> {
    // `LessSafeKey` because the IV comes from the request (KMIP lets the client choose it);
    // uniqueness is the client's responsibility when it sends one, ours when we generate it.
    UnboundKey::new(lc_alg, key)
        .map(LessSafeKey::new)
        .map_err(Error::backend("load an AEAD key"))
}

fn library_seal(
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed> {
    let key = library_key(lc_alg, key)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(Error::backend("read the nonce"))?;
    // The buffer holds plaintext until sealing succeeds, so it is wiped if sealing fails.
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), buffer.as_mut_slice())
        .map_err(Error::backend("encrypt"))?;
    Ok(Sealed {
        ciphertext: std::mem::take(&mut *buffer),
        tag: tag.as_ref().to_vec(),
    })
}

fn library_open(
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = library_key(lc_alg, key)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(Error::backend("read the nonce"))?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    // aws-lc-rs reports every failure here as `Unspecified`; with lengths already checked the
    // only cause left is a tag mismatch. On failure the buffer may hold partial plaintext and
    // is wiped when dropped.
    key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, buffer.as_mut_slice())
        .map_err(|_| Error::AuthenticationFailed)?;
    Ok(buffer)
}

/// AES-GCM through RustCrypto for IVs other than 12 bytes or tags shorter than 16. The tag is
/// computed at full length and truncated, which is what GCM defines (SP 800-38D, MSB_t).
fn gcm_seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_length: usize,
) -> Result<Sealed> {
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    // The key length was checked by `library_algorithm`, so anything else is 32 bytes; the same
    // holds for the IV and tag matches below, checked by `check_iv` and `check_tag_length`.
    let full_tag = match key.len() {
        16 => gcm_seal_by_iv::<Aes128>(key, iv, aad, &mut buffer)?,
        24 => gcm_seal_by_iv::<Aes192>(key, iv, aad, &mut buffer)?,
        _ => gcm_seal_by_iv::<Aes256>(key, iv, aad, &mut buffer)?,
    };
    let tag = full_tag.get(..tag_length).ok_or(Error::InvalidTagLength {
        algorithm: Aead::AesGcm.name(),
        expected: GCM_TAG_LENGTHS,
        actual: tag_length,
    })?;
    Ok(Sealed {
        ciphertext: std::mem::take(&mut *buffer),
        tag: tag.to_vec(),
    })
}

fn gcm_seal_by_iv<A>(key: &[u8], iv: &[u8], aad: &[u8], buffer: &mut [u8]) -> Result<Vec<u8>>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
{
    match iv.len() {
        8 => gcm_seal_with::<A, U8>(key, iv, aad, buffer),
        12 => gcm_seal_with::<A, U12>(key, iv, aad, buffer),
        _ => gcm_seal_with::<A, U16>(key, iv, aad, buffer),
    }
}

fn gcm_seal_with<A, N>(key: &[u8], iv: &[u8], aad: &[u8], buffer: &mut [u8]) -> Result<Vec<u8>>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
    N: ArrayLength<u8>,
{
    let cipher = gcm_cipher::<A, N, U16>(key)?;
    let nonce = gcm_nonce::<N>(iv)?;
    // The plaintext and AAD lengths were checked against the GCM bounds, the only failure cause.
    let tag = cipher
        .encrypt_in_place_detached(&nonce, aad, buffer)
        .map_err(|_| Error::DataTooLong {
            algorithm: Aead::AesGcm.name(),
            maximum: GCM_MAX_PLAINTEXT,
            actual: buffer.len() as u64,
        })?;
    Ok(tag.to_vec())
}

fn gcm_open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    match key.len() {
        16 => gcm_open_by_iv::<Aes128>(key, iv, aad, &mut buffer, tag)?,
        24 => gcm_open_by_iv::<Aes192>(key, iv, aad, &mut buffer, tag)?,
        _ => gcm_open_by_iv::<Aes256>(key, iv, aad, &mut buffer, tag)?,
    }
    Ok(buffer)
}

fn gcm_open_by_iv<A>(key: &[u8], iv: &[u8], aad: &[u8], buffer: &mut [u8], tag: &[u8]) -> Result<()>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
{
    match iv.len() {
        8 => gcm_open_by_tag::<A, U8>(key, iv, aad, buffer, tag),
        12 => gcm_open_by_tag::<A, U12>(key, iv, aad, buffer, tag),
        _ => gcm_open_by_tag::<A, U16>(key, iv, aad, buffer, tag),
    }
}

fn gcm_open_by_tag<A, N>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> Result<()>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
    N: ArrayLength<u8>,
{
    // The tag size is a type parameter of `AesGcm`, so each accepted length is its own instance.
    match tag.len() {
        12 => gcm_open_with::<A, N, U12>(key, iv, aad, buffer, tag),
        13 => gcm_open_with::<A, N, U13>(key, iv, aad, buffer, tag),
        14 => gcm_open_with::<A, N, U14>(key, iv, aad, buffer, tag),
        15 => gcm_open_with::<A, N, U15>(key, iv, aad, buffer, tag),
        _ => gcm_open_with::<A, N, U16>(key, iv, aad, buffer, tag),
    }
}

fn gcm_open_with<A, N, T>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> Result<()>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
    N: ArrayLength<u8>,
    T: aes_gcm::TagSize,
{
    let cipher = gcm_cipher::<A, N, T>(key)?;
    let nonce = gcm_nonce::<N>(iv)?;
    let tag = GenericArray::<u8, T>::from_exact_iter(tag.iter().copied()).ok_or(
        Error::InvalidTagLength {
            algorithm: Aead::AesGcm.name(),
            expected: GCM_TAG_LENGTHS,
            actual: tag.len(),
        },
    )?;
    // `aes-gcm` decrypts the buffer only after the tag compared equal (in constant time), so a
    // failure leaves the ciphertext untouched.
    cipher
        .decrypt_in_place_detached(&nonce, aad, buffer, &tag)
        .map_err(|_| Error::AuthenticationFailed)
}

fn gcm_cipher<A, N, T>(key: &[u8]) -> Result<AesGcm<A, N, T>>
where
    A: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
    N: ArrayLength<u8>,
    T: aes_gcm::TagSize,
{
    AesGcm::<A, N, T>::new_from_slice(key).map_err(|_| Error::InvalidKeyLength {
        algorithm: Aead::AesGcm.name(),
        expected: "16, 24 or 32",
        actual: key.len(),
    })
}

fn gcm_nonce<N: ArrayLength<u8>>(iv: &[u8]) -> Result<GenericArray<u8, N>> {
    GenericArray::from_exact_iter(iv.iter().copied()).ok_or(Error::InvalidIvLength {
        algorithm: Aead::AesGcm.name(),
        expected: GCM_IV_LENGTHS,
        actual: iv.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    /// Test cases from McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)".
    struct GcmCase {
        key: &'static str,
        iv: &'static str,
        aad: &'static str,
        plaintext: &'static str,
        ciphertext: &'static str,
        tag: &'static str,
    }

    const GCM_PLAINTEXT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308";
    const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

    const GCM_CASES: [GcmCase; 4] = [
        // Test case 2: zero key, zero IV, one zero block.
        GcmCase {
            key: "00000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            plaintext: "00000000000000000000000000000000",
            ciphertext: "0388dace60b6a392f328c2b971b2fe78",
            tag: "ab6e47d42cec13bdf53a67b21257bddf",
        },
        // Test case 3: four blocks, no AAD.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbaddecaf888",
            aad: "",
            plaintext: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                        1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            ciphertext: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                         21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
            tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
        },
        // Test case 4: partial last block and AAD.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbaddecaf888",
            aad: GCM_AAD,
            plaintext: GCM_PLAINTEXT,
            ciphertext: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                         21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            tag: "5bc94fbc3221a5db94fae95ae7121a47",
        },
        // Test case 5: 8-byte IV, which takes the RustCrypto path.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbad",
            aad: GCM_AAD,
            plaintext: GCM_PLAINTEXT,
            ciphertext: "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c7423\
                         73806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598",
            tag: "3612d2e79e3b0785561be14aaca2fccb",
        },
    ];

    #[test]
    fn aes_gcm_matches_the_gcm_specification() -> Result<()> {
        for (i, case) in GCM_CASES.iter().enumerate() {
            let (key, iv, aad) = (hex(case.key), hex(case.iv), hex(case.aad));
            let plaintext = hex(case.plaintext);
            let sealed = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, 16)?;
            assert_eq!(sealed.ciphertext, hex(case.ciphertext), "case {i}");
            assert_eq!(sealed.tag, hex(case.tag), "case {i}");
            let opened = open(
                Aead::AesGcm,
                &key,
                &iv,
                &aad,
                &sealed.ciphertext,
                &sealed.tag,
            )?;
            assert_eq!(opened.as_slice(), plaintext, "case {i}");
        }
        Ok(())
    }

    /// Both implementations must agree wherever both apply, or a key encrypted by one could not
    /// be decrypted by the other.
    #[test]
    fn library_and_rustcrypto_gcm_agree() -> Result<()> {
        let iv = [7u8; 12];
        for key_len in [16, 24, 32] {
            let key = vec![3u8; key_len];
            let library = seal(Aead::AesGcm, &key, &iv, b"aad", b"some plaintext", 16)?;
            let rustcrypto = gcm_seal(&key, &iv, b"aad", b"some plaintext", 16)?;
            assert_eq!(library.ciphertext, rustcrypto.ciphertext);
            assert_eq!(library.tag, rustcrypto.tag);
        }
        Ok(())
    }

    #[test]
    fn truncated_gcm_tags_verify_and_are_prefixes_of_the_full_tag() -> Result<()> {
        let key = hex(GCM_KEY);
        let iv = hex("cafebabefacedbaddecaf888");
        let aad = hex(GCM_AAD);
        let plaintext = hex(GCM_PLAINTEXT);
        let full = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, 16)?;
        for tag_length in 12..=15 {
            let sealed = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, tag_length)?;
            assert_eq!(sealed.tag.len(), tag_length);
            assert_eq!(Some(sealed.tag.as_slice()), full.tag.get(..tag_length));
            assert_eq!(sealed.ciphertext, full.ciphertext);
            let opened = open(
                Aead::AesGcm,
                &key,
                &iv,
                &aad,
                &sealed.ciphertext,
                &sealed.tag,
            )?;
            assert_eq!(opened.as_slice(), plaintext);

            let mut bad_tag = sealed.tag.clone();
            if let Some(first) = bad_tag.first_mut() {
                *first ^= 0x80;
            }
            assert!(matches!(
                open(Aead::AesGcm, &key, &iv, &aad, &sealed.ciphertext, &bad_tag),
                Err(Error::AuthenticationFailed)
            ));
        }
        Ok(())
    }

    #[test]
    fn gcm_takes_8_12_and_16_byte_ivs_with_every_key_size() -> Result<()> {
        for key_len in [16, 24, 32] {
            let key = vec![0x11u8; key_len];
            for iv_len in [8, 12, 16] {
                let iv = vec![0x22u8; iv_len];
                for tag_length in 12..=16 {
                    let sealed = seal(Aead::AesGcm, &key, &iv, b"a", b"plaintext!", tag_length)?;
                    let opened = open(
                        Aead::AesGcm,
                        &key,
                        &iv,
                        b"a",
                        &sealed.ciphertext,
                        &sealed.tag,
                    )?;
                    assert_eq!(opened.as_slice(), b"plaintext!");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn tag_lengths_outside_the_accepted_range_are_refused() {
        let key = [0u8; 32];
        let iv = [0u8; 12];
        for tag_length in [0, 4, 11, 17] {
            assert!(matches!(
                seal(Aead::AesGcm, &key, &iv, b"", b"x", tag_length),
                Err(Error::InvalidTagLength { .. })
            ));
            let tag = vec![0u8; tag_length];
            assert!(matches!(
                open(Aead::AesGcm, &key, &iv, b"", b"x", &tag),
                Err(Error::InvalidTagLength { .. })
            ));
        }
        for alg in [Aead::AesGcmSiv, Aead::ChaCha20Poly1305] {
            assert!(matches!(
                seal(alg, &key, &iv, b"", b"x", 12),
                Err(Error::InvalidTagLength { actual: 12, .. })
            ));
        }
    }

    #[test]
    fn chacha20_poly1305_matches_rfc_8439_section_2_8_2() -> Result<()> {
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        let nonce = hex("070000004041424344454647");
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only \
                          one tip for the future, sunscreen would be it.";
        let sealed = seal(Aead::ChaCha20Poly1305, &key, &nonce, &aad, plaintext, 16)?;
        assert_eq!(
            sealed.ciphertext,
            hex(
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
                 3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
                 92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
                 3ff4def08e4b7a9de576d26586cec64b6116"
            )
        );
        assert_eq!(sealed.tag, hex("1ae10b594f09e26a7e902ecbd0600691"));
        let opened = open(
            Aead::ChaCha20Poly1305,
            &key,
            &nonce,
            &aad,
            &sealed.ciphertext,
            &sealed.tag,
        )?;
        assert_eq!(opened.as_slice(), plaintext);
        Ok(())
    }

    #[test]
    fn tampering_with_any_input_fails_authentication() -> Result<()> {
        let cases: [(Aead, usize, usize); 6] = [
            (Aead::AesGcm, 32, 12),
            (Aead::AesGcm, 16, 16),
            (Aead::AesGcmSiv, 16, 12),
            (Aead::AesGcmSiv, 32, 12),
            (Aead::ChaCha20Poly1305, 32, 12),
            (Aead::AesGcm, 24, 8),
        ];
        for (alg, key_len, iv_len) in cases {
            let key = vec![0x5au8; key_len];
            let iv = vec![0x01u8; iv_len];
            let sealed = seal(alg, &key, &iv, b"header", b"attack at dawn", 16)?;

            let mut ciphertext = sealed.ciphertext.clone();
            if let Some(byte) = ciphertext.get_mut(3) {
                *byte ^= 1;
            }
            let mut tag = sealed.tag.clone();
            if let Some(byte) = tag.last_mut() {
                *byte ^= 1;
            }
            let mut other_iv = iv.clone();
            if let Some(byte) = other_iv.first_mut() {
                *byte ^= 1;
            }
            let attempts = [
                open(alg, &key, &iv, b"header", &ciphertext, &sealed.tag),
                open(alg, &key, &iv, b"header", &sealed.ciphertext, &tag),
                open(alg, &key, &iv, b"HEADER", &sealed.ciphertext, &sealed.tag),
                open(
                    alg,
                    &key,
                    &other_iv,
                    b"header",
                    &sealed.ciphertext,
                    &sealed.tag,
                ),
            ];
            for attempt in attempts {
                assert!(
                    matches!(attempt, Err(Error::AuthenticationFailed)),
                    "{alg:?}/{key_len}/{iv_len}: {attempt:?}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn gcm_siv_and_chacha_refuse_other_key_and_nonce_lengths() {
        assert!(matches!(
            seal(Aead::AesGcmSiv, &[0u8; 24], &[0u8; 12], b"", b"x", 16),
            Err(Error::InvalidKeyLength { actual: 24, .. })
        ));
        assert!(matches!(
            seal(
                Aead::ChaCha20Poly1305,
                &[0u8; 16],
                &[0u8; 12],
                b"",
                b"x",
                16
            ),
            Err(Error::InvalidKeyLength { actual: 16, .. })
        ));
        assert!(matches!(
            seal(Aead::AesGcmSiv, &[0u8; 16], &[0u8; 16], b"", b"x", 16),
            Err(Error::InvalidIvLength { actual: 16, .. })
        ));
        assert!(matches!(
            seal(Aead::AesGcm, &[0u8; 16], &[0u8; 13], b"", b"x", 16),
            Err(Error::InvalidIvLength { actual: 13, .. })
        ));
    }
}
