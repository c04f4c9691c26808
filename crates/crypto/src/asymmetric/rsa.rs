//! RSA encryption: OAEP (with a label when given) and PKCS#1 v1.5.
//!
//! Decryption failures all give the same error, whatever went wrong inside the padding, so that
//! the answer tells an attacker nothing about the plaintext (PKCS#1 v1.5 in particular).

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepAlgorithm, OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;

/// RSA encryption padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaEncryption<'a> {
    /// RSAES-OAEP with `hash`, MGF1 over `mgf1`, and the label (empty when none).
    Oaep {
        hash: HashAlgorithm,
        mgf1: HashAlgorithm,
        label: &'a [u8],
    },
    Pkcs1v15,
}

pub(super) fn oaep(hash: HashAlgorithm, mgf1: HashAlgorithm) -> Result<&'static OaepAlgorithm> {
    use HashAlgorithm as H;
    match (hash, mgf1) {
        (H::Sha1, H::Sha1) => Ok(&OAEP_SHA1_MGF1SHA1),
        (H::Sha256, H::Sha256) => Ok(&OAEP_SHA256_MGF1SHA256),
        (H::Sha384, H::Sha384) => Ok(&OAEP_SHA384_MGF1SHA384),
        (H::Sha512, H::Sha512) => Ok(&OAEP_SHA512_MGF1SHA512),
        (a, b) if a == b => Err(Error::UnsupportedAlgorithm {
            algorithm: "RSA-OAEP",
            detail: "the hash must be SHA-1, SHA-256, SHA-384 or SHA-512",
        }),
        _ => Err(Error::UnsupportedAlgorithm {
            algorithm: "RSA-OAEP",
            detail: "the crypto library needs the same hash for OAEP and MGF1; send the same MaskGeneratorHashingAlgorithm as HashingAlgorithm",
        }),
    }
}

/// OAEP hash pairs the library lacks that `rsa_raw` computes: any two of SHA-1 and SHA-2.
fn computed_here(hash: HashAlgorithm, mgf1: HashAlgorithm) -> bool {
    use HashAlgorithm as H;
    let sha = |h| matches!(h, H::Sha1 | H::Sha224 | H::Sha256 | H::Sha384 | H::Sha512);
    sha(hash) && sha(mgf1)
}

fn public_key(spki: &[u8]) -> Result<PublicEncryptingKey> {
    PublicEncryptingKey::from_der(spki).map_err(|_| Error::InvalidKey {
        algorithm: "RSA",
        reason: "the public key cannot be read",
    })
}

fn label(l: &[u8]) -> Option<&[u8]> {
    (!l.is_empty()).then_some(l)
}

/// The longest plaintext one encryption takes.
pub fn rsa_max_plaintext(spki: &[u8], padding: RsaEncryption<'_>) -> Result<usize> {
    if let RsaEncryption::Oaep { hash, mgf1, .. } = padding
        && oaep(hash, mgf1).is_err()
        && computed_here(hash, mgf1)
    {
        let (n, _) = super::encoding::rsa_public_components(spki)?;
        return Ok(n.len().saturating_sub(2 * hash.output_len() + 2));
    }
    let key = public_key(spki)?;
    Ok(match padding {
        RsaEncryption::Oaep { hash, mgf1, .. } => OaepPublicEncryptingKey::new(key)
            .map_err(Error::backend("load a key"))?
            .max_plaintext_size(oaep(hash, mgf1)?),
        RsaEncryption::Pkcs1v15 => Pkcs1PublicEncryptingKey::new(key)
            .map_err(Error::backend("load a key"))?
            .max_plaintext_size(),
    })
}

/// Encrypts `data` for the holder of the private key of `spki`.
pub fn rsa_encrypt(spki: &[u8], padding: RsaEncryption<'_>, data: &[u8]) -> Result<Vec<u8>> {
    if let RsaEncryption::Oaep { hash, mgf1, label } = padding
        && oaep(hash, mgf1).is_err()
        && computed_here(hash, mgf1)
    {
        return super::rsa_raw::oaep_encrypt(spki, hash, mgf1, label, data);
    }
    let maximum = rsa_max_plaintext(spki, padding)?;
    if data.len() > maximum {
        return Err(Error::DataTooLong {
            algorithm: "RSA encryption",
            maximum: maximum as u64,
            actual: data.len() as u64,
        });
    }
    let key = public_key(spki)?;
    let failed = Error::backend("encrypt with RSA");
    match padding {
        RsaEncryption::Oaep {
            hash,
            mgf1,
            label: l,
        } => {
            let key = OaepPublicEncryptingKey::new(key).map_err(failed)?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let n = key
                .encrypt(oaep(hash, mgf1)?, data, &mut out, label(l))
                .map_err(Error::backend("encrypt with RSA"))?
                .len();
            out.truncate(n);
            Ok(out)
        }
        RsaEncryption::Pkcs1v15 => {
            let key = Pkcs1PublicEncryptingKey::new(key).map_err(failed)?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let n = key
                .encrypt(data, &mut out)
                .map_err(Error::backend("encrypt with RSA"))?
                .len();
            out.truncate(n);
            Ok(out)
        }
    }
}

/// Decrypts `data` with the PKCS#8 private key `pkcs8`.
pub fn rsa_decrypt(
    pkcs8: &[u8],
    padding: RsaEncryption<'_>,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if let RsaEncryption::Oaep { hash, mgf1, label } = padding
        && oaep(hash, mgf1).is_err()
        && computed_here(hash, mgf1)
    {
        return super::rsa_raw::oaep_decrypt(pkcs8, hash, mgf1, label, data);
    }
    super::LoadedPrivateKey::new(super::KeyKind::Rsa, pkcs8).rsa_decrypt(padding, data)
}

/// CKM_RSA_AES_KEY_WRAP (PKCS#11 3.0): a fresh AES-256 key encrypted with RSA-OAEP (`hash`,
/// MGF1 with the same hash), followed by `key` wrapped with it by AES-KWP (RFC 5649).
pub fn rsa_aes_key_wrap(spki: &[u8], hash: HashAlgorithm, key: &[u8]) -> Result<Vec<u8>> {
    let ephemeral = crate::random_key(32)?;
    let padding = RsaEncryption::Oaep {
        hash,
        mgf1: hash,
        label: &[],
    };
    let mut out = rsa_encrypt(spki, padding, &ephemeral)?;
    out.extend(crate::aes_key_wrap(&ephemeral, key)?);
    Ok(out)
}

/// The inverse of [`rsa_aes_key_wrap`].
pub fn rsa_aes_key_unwrap(
    pkcs8: &[u8],
    hash: HashAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let size = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|_| Error::InvalidKey {
            algorithm: "RSA",
            reason: "the private key cannot be read",
        })?
        .key_size_bytes();
    if wrapped.len() <= size {
        return Err(Error::DataTooShort {
            algorithm: "RSA-AES key wrap",
            minimum: size + 16,
            actual: wrapped.len(),
        });
    }
    let padding = RsaEncryption::Oaep {
        hash,
        mgf1: hash,
        label: &[],
    };
    let ephemeral = rsa_decrypt(pkcs8, padding, &wrapped[..size])?;
    crate::aes_key_unwrap(&ephemeral, &wrapped[size..])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::asymmetric::{KeyKind, generate_key_pair};

    #[test]
    fn oaep_and_pkcs1_round_trip_and_a_wrong_label_fails() {
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        for padding in [
            RsaEncryption::Oaep {
                hash: HashAlgorithm::Sha256,
                mgf1: HashAlgorithm::Sha256,
                label: b"",
            },
            RsaEncryption::Oaep {
                hash: HashAlgorithm::Sha1,
                mgf1: HashAlgorithm::Sha1,
                label: b"l",
            },
            RsaEncryption::Pkcs1v15,
        ] {
            let c = rsa_encrypt(&pair.public, padding, b"secret").unwrap();
            assert_eq!(c.len(), 256);
            assert_eq!(
                rsa_decrypt(&pair.private, padding, &c).unwrap().as_slice(),
                b"secret"
            );
        }
        let with = RsaEncryption::Oaep {
            hash: HashAlgorithm::Sha256,
            mgf1: HashAlgorithm::Sha256,
            label: b"a",
        };
        let other = RsaEncryption::Oaep {
            hash: HashAlgorithm::Sha256,
            mgf1: HashAlgorithm::Sha256,
            label: b"b",
        };
        let c = rsa_encrypt(&pair.public, with, b"secret").unwrap();
        assert!(matches!(
            rsa_decrypt(&pair.private, other, &c),
            Err(Error::DecryptionFailed { .. })
        ));
    }

    #[test]
    fn too_long_data_is_refused_with_the_limit() {
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let padding = RsaEncryption::Oaep {
            hash: HashAlgorithm::Sha256,
            mgf1: HashAlgorithm::Sha256,
            label: b"",
        };
        assert!(matches!(
            rsa_encrypt(&pair.public, padding, &[0; 300]),
            Err(Error::DataTooLong { maximum: 190, .. })
        ));
    }

    #[test]
    fn rsa_aes_key_wrap_round_trips() {
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let wrapped = rsa_aes_key_wrap(&pair.public, HashAlgorithm::Sha256, &[7; 45]).unwrap();
        assert_eq!(wrapped.len(), 256 + 56);
        let back = rsa_aes_key_unwrap(&pair.private, HashAlgorithm::Sha256, &wrapped).unwrap();
        assert_eq!(back.as_slice(), &[7; 45]);
        assert!(rsa_aes_key_unwrap(&pair.private, HashAlgorithm::Sha256, &wrapped[..200]).is_err());
    }
}
