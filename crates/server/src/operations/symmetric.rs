//! How KMIP cryptographic parameters and a key's attributes choose a symmetric cipher.

use kmip::model::{Attribute, CryptographicParameters};
use kmip::{BlockCipherMode, CryptographicAlgorithm, HashingAlgorithm, PaddingMethod};
use kms_crypto::{HashAlgorithm, Padding, SymmetricCipher};
use kms_store::StoredObject;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// Cipher, padding and tag length for one Encrypt or Decrypt.
pub struct CipherChoice {
    pub cipher: SymmetricCipher,
    pub padding: Padding,
    pub tag_length: usize,
    /// Whether the server must generate the IV when none is given.
    pub random_iv: bool,
}

/// What a key's use must do about its mode binding.
#[derive(Debug)]
pub enum Binding {
    /// The key is bound to the mode used, already.
    Bound,
    /// The key has no mode yet: these parameters record the one used, at its first use.
    Record(CryptographicParameters),
}

/// Chooses the cipher for one use of `key`, field by field from the request's parameters, else
/// the key's `CryptographicParameters` attribute, else the algorithm's default (AES-GCM,
/// ChaCha20-Poly1305), and checks it against the key's mode binding.
///
/// A key serves one mode family only: the mode its `CryptographicParameters` name, or the one
/// recorded at its first use. Otherwise one mode would break another with the same key: AES-ECB
/// of a zero block is GCM's hash key (GCM tags forged), and CTR with GCM's counter decrypts GCM
/// data whatever the usage mask says.
pub fn choose_bound(
    key: &StoredObject,
    request: Option<&CryptographicParameters>,
) -> KResult<(CipherChoice, Binding)> {
    let stored = key.attributes.cryptographic_parameters();
    let merged = merge(request, stored.as_ref());
    let choice = choose(key, merged.as_ref())?;
    match bound_cipher(key, stored.as_ref())? {
        Some(bound) if bound != choice.cipher => Err(KmsError::ModeNotAllowed {
            uid: key.uid.clone(),
            bound: format!("{bound:?}"),
            asked: format!("{:?}", choice.cipher),
        }),
        Some(_) => Ok((choice, Binding::Bound)),
        None => {
            let mut record = stored.unwrap_or_default();
            match choice.cipher {
                SymmetricCipher::ChaCha20 => {
                    record.cryptographic_algorithm = Some(CryptographicAlgorithm::ChaCha20);
                }
                cipher => record.block_cipher_mode = Some(mode_of(cipher)),
            }
            Ok((choice, Binding::Record(record)))
        }
    }
}

/// Records the mode of a key's first use in its `CryptographicParameters`, unless another use
/// bound it meanwhile to another mode (then this use is refused).
pub async fn record_binding(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: &str,
    cipher: SymmetricCipher,
    binding: Binding,
) -> KResult<()> {
    let Binding::Record(params) = binding else {
        return Ok(());
    };
    kms.modify(ctx, Some(uid.to_owned().into()), |object| {
        let stored = object.attributes.cryptographic_parameters();
        match bound_cipher(object, stored.as_ref())? {
            Some(bound) if bound != cipher => Err(KmsError::ModeNotAllowed {
                uid: object.uid.clone(),
                bound: format!("{bound:?}"),
                asked: format!("{cipher:?}"),
            }),
            Some(_) => Ok(()),
            None => {
                object
                    .attributes
                    .set(Attribute::CryptographicParameters(params.clone()));
                Ok(())
            }
        }
    })
    .await
    .map(drop)
}

/// The cipher the key's own parameters bind it to, if they name a mode (or, for ChaCha20, an
/// algorithm).
pub fn bound_cipher(
    key: &StoredObject,
    stored: Option<&CryptographicParameters>,
) -> KResult<Option<SymmetricCipher>> {
    match stored {
        Some(p) if p.block_cipher_mode.is_some() || p.cryptographic_algorithm.is_some() => {
            Ok(Some(choose(key, Some(p))?.cipher))
        }
        _ => Ok(None),
    }
}

/// The block cipher mode that names a cipher's family in `CryptographicParameters`.
fn mode_of(cipher: SymmetricCipher) -> BlockCipherMode {
    match cipher {
        SymmetricCipher::AesGcm => BlockCipherMode::GCM,
        SymmetricCipher::AesCbc => BlockCipherMode::CBC,
        SymmetricCipher::AesEcb => BlockCipherMode::ECB,
        SymmetricCipher::AesXts => BlockCipherMode::XTS,
        SymmetricCipher::AesCtr => BlockCipherMode::CTR,
        SymmetricCipher::AesGcmSiv => BlockCipherMode::GCMSIV,
        SymmetricCipher::AesKeyWrap => BlockCipherMode::NISTKeyWrap,
        SymmetricCipher::AesKeyWrapPad => BlockCipherMode::AESKeyWrapPadding,
        SymmetricCipher::TdesCbc => BlockCipherMode::CBC,
        SymmetricCipher::TdesEcb => BlockCipherMode::ECB,
        SymmetricCipher::ChaCha20Poly1305 | SymmetricCipher::ChaCha20 => BlockCipherMode::AEAD,
    }
}

/// The request's parameters over the key's, field by field.
fn merge(
    request: Option<&CryptographicParameters>,
    stored: Option<&CryptographicParameters>,
) -> Option<CryptographicParameters> {
    match (request, stored) {
        (None, None) => None,
        (Some(r), None) => Some(r.clone()),
        (None, Some(s)) => Some(s.clone()),
        (Some(r), Some(s)) => Some(CryptographicParameters {
            block_cipher_mode: r.block_cipher_mode.or(s.block_cipher_mode),
            padding_method: r.padding_method.or(s.padding_method),
            hashing_algorithm: r.hashing_algorithm.or(s.hashing_algorithm),
            cryptographic_algorithm: r.cryptographic_algorithm.or(s.cryptographic_algorithm),
            random_iv: r.random_iv.or(s.random_iv),
            iv_length: r.iv_length.or(s.iv_length),
            tag_length: r.tag_length.or(s.tag_length),
            ..r.clone()
        }),
    }
}

/// Chooses the cipher from the parameters given, else the algorithm's default.
fn choose(key: &StoredObject, params: Option<&CryptographicParameters>) -> KResult<CipherChoice> {
    let algorithm = params
        .and_then(|p| p.cryptographic_algorithm)
        .or_else(|| key.attributes.cryptographic_algorithm())
        .ok_or_else(|| {
            KmsError::BadCryptographicParameters(format!(
                "object `{}` has no CryptographicAlgorithm",
                key.uid
            ))
        })?;
    let mode = params.and_then(|p| p.block_cipher_mode);
    let padding = match params.and_then(|p| p.padding_method) {
        None | Some(PaddingMethod::None_) => None,
        Some(PaddingMethod::PKCS5) => Some(Padding::Pkcs5),
        Some(other) => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "padding {other:?} is not supported; use PKCS5 or None"
            )));
        }
    };
    let tag_length = match params.and_then(|p| p.tag_length) {
        None => 16,
        Some(t) if (1..=64).contains(&t) => t as usize,
        Some(t) => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "TagLength {t} is not a valid length in bytes"
            )));
        }
    };
    let cipher = match (algorithm, mode) {
        (CryptographicAlgorithm::AES, None | Some(BlockCipherMode::GCM)) => SymmetricCipher::AesGcm,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::CBC)) => SymmetricCipher::AesCbc,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::ECB)) => SymmetricCipher::AesEcb,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::XTS)) => SymmetricCipher::AesXts,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::CTR)) => SymmetricCipher::AesCtr,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::GCMSIV)) => SymmetricCipher::AesGcmSiv,
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::NISTKeyWrap)) => {
            SymmetricCipher::AesKeyWrap
        }
        (CryptographicAlgorithm::AES, Some(BlockCipherMode::AESKeyWrapPadding)) => {
            SymmetricCipher::AesKeyWrapPad
        }
        (CryptographicAlgorithm::DES3, None | Some(BlockCipherMode::CBC)) => {
            SymmetricCipher::TdesCbc
        }
        (CryptographicAlgorithm::DES3, Some(BlockCipherMode::ECB)) => SymmetricCipher::TdesEcb,
        (CryptographicAlgorithm::ChaCha20Poly1305, _)
        | (CryptographicAlgorithm::ChaCha20, Some(BlockCipherMode::AEAD)) => {
            SymmetricCipher::ChaCha20Poly1305
        }
        (CryptographicAlgorithm::ChaCha20, None) => {
            // A ChaCha20 key used without mode: the plain stream cipher, as in the KMIP test
            // cases; clients wanting authentication ask for the AEAD mode.
            SymmetricCipher::ChaCha20
        }
        (alg, mode) => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "{alg:?} with block cipher mode {mode:?} is not supported; use AES with GCM, GCMSIV, CBC, ECB, XTS, CTR, NISTKeyWrap or AESKeyWrapPadding, ChaCha20Poly1305, or DES3 with CBC or ECB"
            )));
        }
    };
    let padding = padding.unwrap_or(match cipher {
        // CBC without an explicit padding method pads, as clients of Cosmian expect.
        SymmetricCipher::AesCbc | SymmetricCipher::TdesCbc
            if params.and_then(|p| p.padding_method).is_none() =>
        {
            Padding::Pkcs5
        }
        _ => Padding::None,
    });
    if matches!(cipher, SymmetricCipher::TdesCbc | SymmetricCipher::TdesEcb) {
        tracing::warn!(
            key = %key.uid,
            "Triple DES used: kept for KMIP 1.x interoperability only; NIST disallows it for encryption (SP 800-131A), move this data to AES"
        );
    }
    let random_iv = params.and_then(|p| p.random_iv).unwrap_or(true);
    Ok(CipherChoice {
        cipher,
        padding,
        tag_length,
        random_iv,
    })
}

/// The hash function a KMIP hashing algorithm names.
pub fn hash_algorithm(h: HashingAlgorithm) -> KResult<HashAlgorithm> {
    Ok(match h {
        HashingAlgorithm::SHA_1 => HashAlgorithm::Sha1,
        HashingAlgorithm::SHA_224 => HashAlgorithm::Sha224,
        HashingAlgorithm::SHA_256 => HashAlgorithm::Sha256,
        HashingAlgorithm::SHA_384 => HashAlgorithm::Sha384,
        HashingAlgorithm::SHA_512 => HashAlgorithm::Sha512,
        HashingAlgorithm::SHA3_224 => HashAlgorithm::Sha3_224,
        HashingAlgorithm::SHA3_256 => HashAlgorithm::Sha3_256,
        HashingAlgorithm::SHA3_384 => HashAlgorithm::Sha3_384,
        HashingAlgorithm::SHA3_512 => HashAlgorithm::Sha3_512,
        other => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "hashing algorithm {other:?} is not supported; use SHA-1, SHA-2 or SHA-3"
            )));
        }
    })
}

/// The hash of an HMAC key's algorithm (`HMAC_SHA256` -> SHA-256).
pub fn hmac_hash(algorithm: CryptographicAlgorithm) -> Option<HashAlgorithm> {
    Some(match algorithm {
        CryptographicAlgorithm::HMAC_SHA1 => HashAlgorithm::Sha1,
        CryptographicAlgorithm::HMAC_SHA224 => HashAlgorithm::Sha224,
        CryptographicAlgorithm::HMAC_SHA256 => HashAlgorithm::Sha256,
        CryptographicAlgorithm::HMAC_SHA384 => HashAlgorithm::Sha384,
        CryptographicAlgorithm::HMAC_SHA512 => HashAlgorithm::Sha512,
        _ => return None,
    })
}
