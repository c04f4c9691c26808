//! The symmetric `encrypt`/`decrypt` entry points: the request types, the checks every cipher
//! shares (which options a cipher takes, where the IV comes from) and the dispatch to the module
//! that implements each mode. No cipher arithmetic lives here.

use std::fmt;

use zeroize::Zeroizing;

use crate::aead::{self, Aead, KeySchedules};
use crate::block::{self, BlockMode};
use crate::error::{Error, Result};
use crate::tdea::{self, TdesMode};
use crate::{rng, stream, wrap, xts};

/// Tag length used when the client does not ask for one.
pub const DEFAULT_TAG_LENGTH: usize = 16;

/// Symmetric ciphers the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymmetricCipher {
    /// AES-GCM; keys of 16, 24 or 32 bytes; IV of 8, 12 (default) or 16 bytes; tag of 12 to 16.
    AesGcm,
    /// AES-GCM-SIV (RFC 8452); keys of 16 or 32 bytes; 12-byte nonce; 16-byte tag.
    AesGcmSiv,
    /// AES-CBC; keys of 16, 24 or 32 bytes; 16-byte IV; PKCS#5 padding or block-aligned data.
    AesCbc,
    /// AES-ECB; keys of 16, 24 or 32 bytes; no IV; PKCS#5 padding or block-aligned data.
    AesEcb,
    /// AES-XTS (IEEE 1619) over one data unit; keys of 32 or 64 bytes (two AES keys);
    /// the IV is the 16-byte tweak; at least 16 bytes of data.
    AesXts,
    /// AES-CTR; keys of 16, 24 or 32 bytes; the IV is the 16-byte initial counter block,
    /// incremented as one 128-bit big-endian number.
    AesCtr,
    /// ChaCha20-Poly1305 (RFC 8439); 32-byte key; 12-byte nonce; 16-byte tag.
    ChaCha20Poly1305,
    /// Plain ChaCha20 (RFC 8439) without authentication; 32-byte key. The IV is either the
    /// 12-byte nonce (the block counter starts at 0; the default) or 16 bytes laid out as
    /// OpenSSL's `EVP_chacha20` does: a 4-byte little-endian initial counter, then the nonce.
    ChaCha20,
    /// AES Key Wrap (RFC 3394) used as a cipher; keys of 16, 24 or 32 bytes; no IV (the
    /// standard initial value); data a multiple of 8 bytes, at least 16.
    AesKeyWrap,
    /// AES Key Wrap with Padding (RFC 5649) used as a cipher; keys of 16, 24 or 32 bytes; no IV;
    /// data from 1 byte up.
    AesKeyWrapPad,
    /// Triple DES (TDEA) in CBC mode; two-key (16 bytes) or three-key (24 bytes) keys; 8-byte
    /// IV; PKCS#5 padding or 8-byte-aligned data. KMIP 1.x interoperability only; refused by a
    /// `fips` build.
    TdesCbc,
    /// Triple DES in ECB mode; no IV; as [`SymmetricCipher::TdesCbc`] otherwise.
    TdesEcb,
}

impl SymmetricCipher {
    /// The cipher's usual name, as used in error messages.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AesGcm => "AES-GCM",
            Self::AesGcmSiv => "AES-GCM-SIV",
            Self::AesCbc => "AES-CBC",
            Self::AesEcb => "AES-ECB",
            Self::AesXts => "AES-XTS",
            Self::AesCtr => "AES-CTR",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Self::ChaCha20 => "ChaCha20",
            Self::AesKeyWrap => "AES key wrap (RFC 3394)",
            Self::AesKeyWrapPad => "AES key wrap with padding (RFC 5649)",
            Self::TdesCbc => "Triple DES CBC",
            Self::TdesEcb => "Triple DES ECB",
        }
    }

    /// Whether the cipher authenticates (takes AAD and produces a tag).
    #[must_use]
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::AesGcm | Self::AesGcmSiv | Self::ChaCha20Poly1305
        )
    }

    /// Length of the IV generated when the request carries none; `None` for ECB, which has no IV.
    #[must_use]
    pub const fn default_iv_length(self) -> Option<usize> {
        match self {
            Self::AesGcm | Self::AesGcmSiv | Self::ChaCha20Poly1305 | Self::ChaCha20 => Some(12),
            Self::AesCbc | Self::AesCtr | Self::AesXts => Some(16),
            Self::TdesCbc => Some(8),
            Self::AesEcb | Self::AesKeyWrap | Self::AesKeyWrapPad | Self::TdesEcb => None,
        }
    }

    /// Sorts the cipher into the module that implements it, refusing padding on every cipher
    /// but CBC and ECB so that the modules below never see that combination.
    fn family(self, padding: Padding) -> Result<Family> {
        match (self, padding) {
            (Self::AesCbc, padding) => Ok(Family::Block(BlockMode::Cbc(padding))),
            (Self::AesEcb, padding) => Ok(Family::Block(BlockMode::Ecb(padding))),
            (Self::TdesCbc | Self::TdesEcb, _) if cfg!(feature = "fips") => {
                Err(Error::UnsupportedMode {
                    algorithm: self.name(),
                    detail: "is off in this FIPS build (NIST disallows it for encryption); use AES",
                })
            }
            (Self::TdesCbc, padding) => Ok(Family::Tdes(TdesMode::Cbc(padding))),
            (Self::TdesEcb, padding) => Ok(Family::Tdes(TdesMode::Ecb(padding))),
            (_, Padding::Pkcs5) => Err(Error::UnsupportedMode {
                algorithm: self.name(),
                detail: "does not use padding; ask for no padding (only CBC and ECB pad)",
            }),
            (Self::AesCtr, Padding::None) => Ok(Family::Block(BlockMode::Ctr)),
            (Self::AesGcm, Padding::None) => Ok(Family::Aead(Aead::AesGcm)),
            (Self::AesGcmSiv, Padding::None) => Ok(Family::Aead(Aead::AesGcmSiv)),
            (Self::ChaCha20Poly1305, Padding::None) => Ok(Family::Aead(Aead::ChaCha20Poly1305)),
            (Self::AesXts, Padding::None) => Ok(Family::Xts),
            (Self::ChaCha20, Padding::None) => Ok(Family::ChaCha20),
            (Self::AesKeyWrap, Padding::None) => Ok(Family::KeyWrap { padded: false }),
            (Self::AesKeyWrapPad, Padding::None) => Ok(Family::KeyWrap { padded: true }),
        }
    }
}

impl fmt::Display for SymmetricCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Block padding, for AES-CBC and AES-ECB only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: the data must be a whole number of 16-byte blocks.
    None,
    /// PKCS#5 padding (PKCS#7 on 16-byte blocks), added on encryption and checked on decryption.
    Pkcs5,
}

/// What to encrypt and how.
pub struct EncryptRequest<'a> {
    pub cipher: SymmetricCipher,
    pub key: &'a [u8],
    /// `None` generates a random IV of [`SymmetricCipher::default_iv_length`]; must be `None`
    /// for ECB.
    pub iv: Option<&'a [u8]>,
    /// Additional authenticated data; must be empty for ciphers that do not authenticate,
    /// since silently ignoring it would let a caller believe it is protected.
    pub aad: &'a [u8],
    pub plaintext: &'a [u8],
    /// AEAD tag length in bytes: AES-GCM accepts 12 to 16 (the tag is truncated), the other
    /// AEADs only 16. Ignored by ciphers without a tag.
    pub tag_length: usize,
    /// Only AES-CBC and AES-ECB accept [`Padding::Pkcs5`].
    pub padding: Padding,
}

impl<'a> EncryptRequest<'a> {
    /// A request with a generated IV, no AAD, the default tag length and no padding.
    #[must_use]
    pub fn new(cipher: SymmetricCipher, key: &'a [u8], plaintext: &'a [u8]) -> Self {
        Self {
            cipher,
            key,
            iv: None,
            aad: &[],
            plaintext,
            tag_length: DEFAULT_TAG_LENGTH,
            padding: Padding::None,
        }
    }
}

// Written by hand so that the key and the plaintext can never reach a log.
impl fmt::Debug for EncryptRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("cipher", &self.cipher)
            .field("key_len", &self.key.len())
            .field("iv", &self.iv)
            .field("aad_len", &self.aad.len())
            .field("plaintext_len", &self.plaintext.len())
            .field("tag_length", &self.tag_length)
            .field("padding", &self.padding)
            .finish()
    }
}

/// The result of [`encrypt`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    pub ciphertext: Vec<u8>,
    /// The IV used, given or generated; `None` for ECB. The caller must return it to the client.
    pub iv: Option<Vec<u8>>,
    /// The authentication tag, for AEAD ciphers only.
    pub tag: Option<Vec<u8>>,
}

/// What to decrypt and how.
pub struct DecryptRequest<'a> {
    pub cipher: SymmetricCipher,
    pub key: &'a [u8],
    /// The IV used to encrypt; required by every cipher but ECB, refused by ECB.
    pub iv: Option<&'a [u8]>,
    /// Must equal the AAD given to encryption; must be empty for ciphers that do not authenticate.
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
    /// Required by AEAD ciphers, refused by the others.
    pub tag: Option<&'a [u8]>,
    pub padding: Padding,
}

impl<'a> DecryptRequest<'a> {
    /// A request with no IV, AAD or tag and no padding; set the fields the cipher needs.
    #[must_use]
    pub fn new(cipher: SymmetricCipher, key: &'a [u8], ciphertext: &'a [u8]) -> Self {
        Self {
            cipher,
            key,
            iv: None,
            aad: &[],
            ciphertext,
            tag: None,
            padding: Padding::None,
        }
    }
}

// Written by hand so that the key can never reach a log.
impl fmt::Debug for DecryptRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptRequest")
            .field("cipher", &self.cipher)
            .field("key_len", &self.key.len())
            .field("iv", &self.iv)
            .field("aad_len", &self.aad.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .field("tag", &self.tag)
            .field("padding", &self.padding)
            .finish()
    }
}

enum Family {
    Aead(Aead),
    Block(BlockMode),
    Xts,
    ChaCha20,
    KeyWrap { padded: bool },
    Tdes(TdesMode),
}

/// Encrypts `req.plaintext`, generating the IV if the request has none.
///
/// # Errors
/// Any [`Error`] describing a key, IV, tag length, padding or data length the cipher does not
/// accept; [`Error::Rng`] if an IV cannot be generated.
pub fn encrypt(req: &EncryptRequest<'_>) -> Result<Encrypted> {
    encrypt_keeping(req, None)
}

/// [`encrypt`], with the AEAD key prepared once and kept in `schedules` for later requests
/// with the same key.
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_with(req: &EncryptRequest<'_>, schedules: &KeySchedules) -> Result<Encrypted> {
    encrypt_keeping(req, Some(schedules))
}

fn encrypt_keeping(
    req: &EncryptRequest<'_>,
    schedules: Option<&KeySchedules>,
) -> Result<Encrypted> {
    let cipher = req.cipher;
    let family = cipher.family(req.padding)?;
    if !cipher.is_aead() {
        refuse_aad(cipher, req.aad)?;
    }
    let iv = encryption_iv(cipher, req.iv)?;
    let iv_bytes = iv.as_deref().unwrap_or_default();
    let (ciphertext, tag) = match family {
        Family::Aead(alg) => {
            let sealed = aead::seal(
                alg,
                req.key,
                schedules,
                iv_bytes,
                req.aad,
                req.plaintext,
                req.tag_length,
            )?;
            (sealed.ciphertext, Some(sealed.tag))
        }
        Family::Block(mode) => (
            block::encrypt(mode, req.key, iv.as_deref(), req.plaintext)?,
            None,
        ),
        Family::Xts => (xts::encrypt(req.key, iv_bytes, req.plaintext)?, None),
        Family::ChaCha20 => (
            stream::chacha20_encrypt(req.key, iv_bytes, req.plaintext)?,
            None,
        ),
        Family::KeyWrap { padded: true } => (wrap::aes_key_wrap(req.key, req.plaintext)?, None),
        Family::Tdes(mode) => (
            tdea::encrypt(mode, req.key, iv.as_deref(), req.plaintext)?,
            None,
        ),
        Family::KeyWrap { padded: false } => {
            (wrap::aes_key_wrap_unpadded(req.key, req.plaintext)?, None)
        }
    };
    Ok(Encrypted {
        ciphertext,
        iv,
        tag,
    })
}

/// Decrypts `req.ciphertext`; for AEAD ciphers nothing is returned unless the tag verifies.
///
/// # Errors
/// [`Error::AuthenticationFailed`] when an AEAD tag does not verify, [`Error::InvalidPadding`]
/// when PKCS#5 padding is malformed, and any [`Error`] describing a parameter the cipher does
/// not accept.
pub fn decrypt(req: &DecryptRequest<'_>) -> Result<Zeroizing<Vec<u8>>> {
    decrypt_keeping(req, None)
}

/// [`decrypt`], with the AEAD key prepared once and kept in `schedules` for later requests
/// with the same key.
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_with(
    req: &DecryptRequest<'_>,
    schedules: &KeySchedules,
) -> Result<Zeroizing<Vec<u8>>> {
    decrypt_keeping(req, Some(schedules))
}

fn decrypt_keeping(
    req: &DecryptRequest<'_>,
    schedules: Option<&KeySchedules>,
) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = req.cipher;
    let family = cipher.family(req.padding)?;
    if !cipher.is_aead() {
        refuse_aad(cipher, req.aad)?;
        if req.tag.is_some() {
            return Err(Error::UnsupportedMode {
                algorithm: cipher.name(),
                detail: "has no authentication tag; leave the tag out",
            });
        }
    }
    let iv = decryption_iv(cipher, req.iv)?;
    let iv_bytes = iv.unwrap_or_default();
    match family {
        Family::Aead(alg) => {
            let tag = req.tag.ok_or(Error::MissingTag {
                algorithm: cipher.name(),
            })?;
            aead::open(
                alg,
                req.key,
                schedules,
                iv_bytes,
                req.aad,
                req.ciphertext,
                tag,
            )
        }
        Family::Block(mode) => block::decrypt(mode, req.key, iv, req.ciphertext),
        Family::Xts => xts::decrypt(req.key, iv_bytes, req.ciphertext),
        Family::ChaCha20 => stream::chacha20_decrypt(req.key, iv_bytes, req.ciphertext),
        Family::KeyWrap { padded: true } => wrap::aes_key_unwrap(req.key, req.ciphertext),
        Family::KeyWrap { padded: false } => wrap::aes_key_unwrap_unpadded(req.key, req.ciphertext),
        Family::Tdes(mode) => tdea::decrypt(mode, req.key, iv, req.ciphertext),
    }
}

fn refuse_aad(cipher: SymmetricCipher, aad: &[u8]) -> Result<()> {
    if aad.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedMode {
            algorithm: cipher.name(),
            detail: "does not authenticate and takes no additional authenticated data; \
                     leave the AAD out or use an AEAD cipher such as AES-GCM",
        })
    }
}

/// The IV to encrypt with: the one given, or a fresh random one of the default length.
fn encryption_iv(cipher: SymmetricCipher, given: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
    match (cipher.default_iv_length(), given) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(no_iv_taken(cipher)),
        (Some(_), Some(iv)) => Ok(Some(iv.to_vec())),
        (Some(len), None) => {
            let mut iv = vec![0u8; len];
            rng::fill_iv(&mut iv)?;
            Ok(Some(iv))
        }
    }
}

/// The IV to decrypt with, which must be the one encryption used.
fn decryption_iv(cipher: SymmetricCipher, given: Option<&[u8]>) -> Result<Option<&[u8]>> {
    match (cipher.default_iv_length(), given) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(no_iv_taken(cipher)),
        (Some(_), Some(iv)) => Ok(Some(iv)),
        (Some(_), None) => Err(Error::MissingIv {
            algorithm: cipher.name(),
        }),
    }
}

fn no_iv_taken(cipher: SymmetricCipher) -> Error {
    Error::UnsupportedMode {
        algorithm: cipher.name(),
        detail: "takes no IV; leave the IV out",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    const ALL: [SymmetricCipher; 12] = [
        SymmetricCipher::AesGcm,
        SymmetricCipher::AesGcmSiv,
        SymmetricCipher::AesCbc,
        SymmetricCipher::AesEcb,
        SymmetricCipher::AesXts,
        SymmetricCipher::AesCtr,
        SymmetricCipher::ChaCha20Poly1305,
        SymmetricCipher::ChaCha20,
        SymmetricCipher::AesKeyWrap,
        SymmetricCipher::AesKeyWrapPad,
        SymmetricCipher::TdesCbc,
        SymmetricCipher::TdesEcb,
    ];

    fn key_lengths(cipher: SymmetricCipher) -> &'static [usize] {
        match cipher {
            SymmetricCipher::AesGcm
            | SymmetricCipher::AesCbc
            | SymmetricCipher::AesEcb
            | SymmetricCipher::AesCtr
            | SymmetricCipher::AesKeyWrap
            | SymmetricCipher::AesKeyWrapPad => &[16, 24, 32],
            SymmetricCipher::AesGcmSiv => &[16, 32],
            SymmetricCipher::AesXts => &[32, 64],
            SymmetricCipher::ChaCha20Poly1305 | SymmetricCipher::ChaCha20 => &[32],
            SymmetricCipher::TdesCbc | SymmetricCipher::TdesEcb => &[16, 24],
        }
    }

    /// A key whose bytes differ from one another, so that the two AES-XTS halves differ.
    fn key(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(1))
            .collect()
    }

    fn padding_for(cipher: SymmetricCipher) -> Padding {
        match cipher {
            SymmetricCipher::AesCbc
            | SymmetricCipher::AesEcb
            | SymmetricCipher::TdesCbc
            | SymmetricCipher::TdesEcb => Padding::Pkcs5,
            _ => Padding::None,
        }
    }

    fn round_trip(cipher: SymmetricCipher, key: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<()> {
        let padding = padding_for(cipher);
        let aad = if cipher.is_aead() { aad } else { &[] };
        let encrypted = encrypt(&EncryptRequest {
            aad,
            padding,
            ..EncryptRequest::new(cipher, key, plaintext)
        })?;
        assert_eq!(
            encrypted.iv.as_ref().map(Vec::len),
            cipher.default_iv_length(),
            "{cipher}"
        );
        assert_eq!(encrypted.tag.is_some(), cipher.is_aead(), "{cipher}");
        if plaintext.len() >= 16 {
            assert_ne!(encrypted.ciphertext, plaintext, "{cipher}");
        }
        let decrypted = decrypt(&DecryptRequest {
            iv: encrypted.iv.as_deref(),
            aad,
            tag: encrypted.tag.as_deref(),
            padding,
            ..DecryptRequest::new(cipher, key, &encrypted.ciphertext)
        })?;
        assert_eq!(decrypted.as_slice(), plaintext, "{cipher}");
        Ok(())
    }

    #[test]
    fn every_cipher_and_key_size_round_trips() -> Result<()> {
        let lengths = [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 4096];
        for cipher in ALL {
            for &key_len in key_lengths(cipher) {
                let key = key(key_len);
                for &len in &lengths {
                    let impossible = match cipher {
                        SymmetricCipher::AesXts => len < 16,
                        SymmetricCipher::AesKeyWrap => len < 16 || len % 8 != 0,
                        SymmetricCipher::AesKeyWrapPad => len == 0,
                        _ => false,
                    };
                    if impossible {
                        continue;
                    }
                    let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    round_trip(cipher, &key, &plaintext, b"header")?;
                }
            }
        }
        Ok(())
    }

    /// AES key wrap used as a cipher gives the RFC 3394 §4.1 and RFC 5649 §6 answers.
    #[test]
    fn key_wrap_ciphers_match_the_rfcs() -> Result<()> {
        let kek = hex("000102030405060708090A0B0C0D0E0F");
        let data = hex("00112233445566778899AABBCCDDEEFF");
        let kw = encrypt(&EncryptRequest::new(
            SymmetricCipher::AesKeyWrap,
            &kek,
            &data,
        ))?;
        assert_eq!(
            kw.ciphertext,
            hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
        );
        assert_eq!(kw.iv, None);
        let kek = hex("5840DF6E29B02AF1AB493B705BF16EA1AE8338F4DCC176A8");
        let data = hex("466F7250617369");
        let kwp = encrypt(&EncryptRequest::new(
            SymmetricCipher::AesKeyWrapPad,
            &kek,
            &data,
        ))?;
        assert_eq!(kwp.ciphertext, hex("AFBEB0F07DFBF5419200F2CCB50BB24F"));
        let mut tampered = kwp.ciphertext.clone();
        tampered[0] ^= 1;
        assert!(matches!(
            decrypt(&DecryptRequest::new(
                SymmetricCipher::AesKeyWrapPad,
                &kek,
                &tampered
            )),
            Err(Error::KeyUnwrapFailed)
        ));
        Ok(())
    }

    #[test]
    fn unpadded_block_modes_round_trip_aligned_data() -> Result<()> {
        for cipher in [SymmetricCipher::AesCbc, SymmetricCipher::AesEcb] {
            let key = key(32);
            let plaintext = [0x42u8; 48];
            let encrypted = encrypt(&EncryptRequest::new(cipher, &key, &plaintext))?;
            assert_eq!(encrypted.ciphertext.len(), 48);
            let decrypted = decrypt(&DecryptRequest {
                iv: encrypted.iv.as_deref(),
                ..DecryptRequest::new(cipher, &key, &encrypted.ciphertext)
            })?;
            assert_eq!(decrypted.as_slice(), plaintext);
        }
        Ok(())
    }

    #[test]
    fn a_given_iv_is_used_and_returned() -> Result<()> {
        let key = key(16);
        let iv = [9u8; 16];
        let request = EncryptRequest {
            iv: Some(&iv),
            padding: Padding::Pkcs5,
            ..EncryptRequest::new(SymmetricCipher::AesCbc, &key, b"data")
        };
        let first = encrypt(&request)?;
        let second = encrypt(&request)?;
        assert_eq!(first.iv.as_deref(), Some(&iv[..]));
        assert_eq!(first, second);
        Ok(())
    }

    #[test]
    fn generated_ivs_differ_between_calls() -> Result<()> {
        let key = key(32);
        let request = EncryptRequest::new(SymmetricCipher::AesGcm, &key, b"data");
        assert_ne!(encrypt(&request)?.iv, encrypt(&request)?.iv);
        Ok(())
    }

    #[test]
    fn wrong_key_lengths_are_reported_with_the_accepted_lengths() {
        for cipher in ALL {
            let key = key(17);
            let result = encrypt(&EncryptRequest {
                padding: padding_for(cipher),
                ..EncryptRequest::new(cipher, &key, &[0u8; 32])
            });
            match result {
                Err(Error::InvalidKeyLength {
                    algorithm, actual, ..
                }) => {
                    assert_eq!(algorithm, cipher.name());
                    assert_eq!(actual, 17);
                }
                other => panic!("{cipher}: expected InvalidKeyLength, got {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_iv_lengths_are_reported() {
        for cipher in ALL {
            if cipher.default_iv_length().is_none() {
                continue;
            }
            let key = key(key_lengths(cipher).first().copied().unwrap_or(32));
            // AES-GCM takes any IV from 1 to 1024 bytes.
            let iv = if cipher == SymmetricCipher::AesGcm {
                vec![0u8; 1025]
            } else {
                vec![0u8; 5]
            };
            let result = encrypt(&EncryptRequest {
                iv: Some(&iv),
                padding: padding_for(cipher),
                ..EncryptRequest::new(cipher, &key, &[0u8; 32])
            });
            assert!(
                matches!(result, Err(Error::InvalidIvLength { actual, .. }) if actual == iv.len()),
                "{cipher}: {result:?}"
            );
        }
    }

    #[test]
    fn ecb_and_key_wrap_refuse_an_iv_and_the_others_need_one_to_decrypt() {
        let key = key(32);
        for cipher in [
            SymmetricCipher::AesEcb,
            SymmetricCipher::AesKeyWrap,
            SymmetricCipher::AesKeyWrapPad,
        ] {
            let given = encrypt(&EncryptRequest {
                iv: Some(&[0u8; 16]),
                ..EncryptRequest::new(cipher, &key, &[0u8; 16])
            });
            assert!(
                matches!(given, Err(Error::UnsupportedMode { .. })),
                "{cipher}"
            );
        }
        for cipher in ALL {
            if cipher.default_iv_length().is_none() {
                continue;
            }
            let result = decrypt(&DecryptRequest {
                tag: cipher.is_aead().then_some(&[0u8; 16][..]),
                ..DecryptRequest::new(cipher, &key, &[0u8; 32])
            });
            assert!(
                matches!(result, Err(Error::MissingIv { .. })),
                "{cipher}: {result:?}"
            );
        }
    }

    #[test]
    fn options_a_cipher_lacks_are_refused() {
        let key = key(32);
        let padded_gcm = encrypt(&EncryptRequest {
            padding: Padding::Pkcs5,
            ..EncryptRequest::new(SymmetricCipher::AesGcm, &key, b"x")
        });
        assert!(matches!(padded_gcm, Err(Error::UnsupportedMode { .. })));
        let cbc_with_aad = encrypt(&EncryptRequest {
            aad: b"header",
            padding: Padding::Pkcs5,
            ..EncryptRequest::new(SymmetricCipher::AesCbc, &key, b"x")
        });
        assert!(matches!(cbc_with_aad, Err(Error::UnsupportedMode { .. })));
        let ctr_with_tag = decrypt(&DecryptRequest {
            iv: Some(&[0u8; 16]),
            tag: Some(&[0u8; 16]),
            ..DecryptRequest::new(SymmetricCipher::AesCtr, &key, b"x")
        });
        assert!(matches!(ctr_with_tag, Err(Error::UnsupportedMode { .. })));
        let gcm_without_tag = decrypt(&DecryptRequest {
            iv: Some(&[0u8; 12]),
            ..DecryptRequest::new(SymmetricCipher::AesGcm, &key, b"x")
        });
        assert!(matches!(gcm_without_tag, Err(Error::MissingTag { .. })));
    }

    #[test]
    fn wrong_key_fails_authentication_for_every_aead() -> Result<()> {
        for cipher in ALL.into_iter().filter(|c| c.is_aead()) {
            let key_a = key(32);
            let key_b = vec![0x55u8; 32];
            let encrypted = encrypt(&EncryptRequest::new(cipher, &key_a, b"secret"))?;
            let result = decrypt(&DecryptRequest {
                iv: encrypted.iv.as_deref(),
                tag: encrypted.tag.as_deref(),
                ..DecryptRequest::new(cipher, &key_b, &encrypted.ciphertext)
            });
            assert!(
                matches!(result, Err(Error::AuthenticationFailed)),
                "{cipher}: {result:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn debug_output_hides_key_and_plaintext() {
        let key = [0xabu8; 16];
        let request = EncryptRequest::new(SymmetricCipher::AesGcm, &key, b"top secret text");
        let shown = format!("{request:?}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.contains("top secret"), "{shown}");
        let shown = format!(
            "{:?}",
            DecryptRequest::new(SymmetricCipher::AesGcm, &key, b"c")
        );
        assert!(!shown.contains("171"), "{shown}");
    }
}
