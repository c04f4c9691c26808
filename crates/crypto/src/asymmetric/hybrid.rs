//! Public-key encryption of arbitrary data with EC (ECIES), X25519 and ML-KEM keys: a key
//! encapsulation followed by AES-256-GCM, as `docs/adr/0004-ecies-and-ml-kem-encryption.md`
//! describes.
//!
//! ```text
//! shared  = ECDH(ephemeral, recipient)  |  ML-KEM.Encaps(recipient)
//! key     = HKDF-SHA256(salt = "", ikm = shared, info = "kms-hybrid-v1" || enc || recipient)
//! output  = enc || AES-256-GCM(key, nonce = 0^96, aad, plaintext) || tag
//! ```
//! `enc` is the ephemeral public key (uncompressed point, or 32 bytes for X25519) or the ML-KEM
//! ciphertext; `recipient` is the recipient's raw public key. The key is used once, so the
//! fixed nonce is safe.

use aws_lc_rs::agreement;
use zeroize::Zeroizing;

use super::{Curve, KeyKind, MlKem, encoding};
use crate::error::{Error, Result};
use crate::symmetric::{DecryptRequest, EncryptRequest, SymmetricCipher, decrypt, encrypt};

const INFO: &[u8] = b"kms-hybrid-v1";
const NONCE: [u8; 12] = [0; 12];

fn agreement_of(kind: KeyKind) -> Result<&'static agreement::Algorithm> {
    Ok(match kind {
        KeyKind::Ec(Curve::P256) => &agreement::ECDH_P256,
        KeyKind::Ec(Curve::P384) => &agreement::ECDH_P384,
        KeyKind::Ec(Curve::P521) => &agreement::ECDH_P521,
        KeyKind::X25519 => &agreement::X25519,
        other => {
            return Err(Error::UnsupportedAlgorithm {
                algorithm: other.name(),
                detail: "keys do not encrypt; encrypt with RSA, P-256/384/521, X25519 or ML-KEM keys",
            });
        }
    })
}

/// Length of `enc` for a kind of key.
fn enc_len(kind: KeyKind) -> Result<usize> {
    Ok(match kind {
        KeyKind::Ec(c) => 1 + 2 * c.scalar_len(),
        KeyKind::X25519 => 32,
        KeyKind::MlKem(MlKem::MlKem512) => 768,
        KeyKind::MlKem(MlKem::MlKem768) => 1088,
        KeyKind::MlKem(MlKem::MlKem1024) => 1568,
        other => {
            agreement_of(other)?;
            0
        }
    })
}

fn derive(shared: &[u8], enc: &[u8], recipient: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::hkdf;
    let mut info = Vec::with_capacity(INFO.len() + enc.len() + recipient.len());
    info.extend_from_slice(INFO);
    info.extend_from_slice(enc);
    info.extend_from_slice(recipient);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(shared);
    let parts = [info.as_slice()];
    let okm = prk
        .expand(&parts, hkdf::HKDF_SHA256)
        .map_err(Error::backend("derive a key"))?;
    let mut key = Zeroizing::new(vec![0u8; 32]);
    okm.fill(&mut key).map_err(Error::backend("derive a key"))?;
    Ok(key)
}

/// Encrypts `plaintext` for the holder of `public` (canonical form), binding `aad`.
pub fn hybrid_encrypt(
    kind: KeyKind,
    public: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let recipient = encoding::public_raw(kind, public)?;
    let (enc, shared) = match kind {
        KeyKind::MlKem(level) => super::ml_kem_encapsulate(level, &recipient)?,
        _ => {
            let alg = agreement_of(kind)?;
            let ephemeral =
                agreement::PrivateKey::generate(alg).map_err(Error::backend("generate a key"))?;
            let enc = ephemeral
                .compute_public_key()
                .map_err(Error::backend("generate a key"))?
                .as_ref()
                .to_vec();
            let peer = agreement::UnparsedPublicKey::new(alg, &recipient);
            let shared = agreement::agree(
                &ephemeral,
                peer,
                Error::InvalidKey {
                    algorithm: kind.name(),
                    reason: "the public key is not a valid point",
                },
                |s| Ok(Zeroizing::new(s.to_vec())),
            )?;
            (enc, shared)
        }
    };
    let key = derive(&shared, &enc, &recipient)?;
    let sealed = encrypt(&EncryptRequest {
        iv: Some(&NONCE),
        aad,
        ..EncryptRequest::new(SymmetricCipher::AesGcm, &key, plaintext)
    })?;
    let mut out = enc;
    out.extend_from_slice(&sealed.ciphertext);
    out.extend_from_slice(&sealed.tag.unwrap_or_default());
    Ok(out)
}

/// Decrypts what [`hybrid_encrypt`] made for `private` (canonical form).
pub fn hybrid_decrypt(
    kind: KeyKind,
    private: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let n = enc_len(kind)?;
    if ciphertext.len() < n + 16 {
        return Err(Error::DataTooShort {
            algorithm: kind.name(),
            minimum: n + 16,
            actual: ciphertext.len(),
        });
    }
    let (enc, rest) = ciphertext.split_at(n);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let public = super::public_of_private(kind, private)?;
    let recipient = encoding::public_raw(kind, &public)?;
    let shared = match kind {
        KeyKind::MlKem(level) => super::ml_kem_decapsulate(level, private, enc)?,
        _ => {
            let alg = agreement_of(kind)?;
            let raw = encoding::private_raw(kind, private)?;
            let key = agreement::PrivateKey::from_private_key(alg, &raw).map_err(|_| {
                Error::InvalidKey {
                    algorithm: kind.name(),
                    reason: "the private key cannot be read",
                }
            })?;
            let peer = agreement::UnparsedPublicKey::new(alg, enc);
            agreement::agree(
                &key,
                peer,
                Error::DecryptionFailed {
                    algorithm: kind.name(),
                },
                |s| Ok(Zeroizing::new(s.to_vec())),
            )?
        }
    };
    let key = derive(&shared, enc, &recipient)?;
    decrypt(&DecryptRequest {
        iv: Some(&NONCE),
        aad,
        tag: Some(tag),
        ..DecryptRequest::new(SymmetricCipher::AesGcm, &key, body)
    })
    .map_err(|_| Error::DecryptionFailed {
        algorithm: kind.name(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::asymmetric::generate_key_pair;

    #[test]
    fn every_kind_round_trips_and_a_changed_byte_fails() {
        for kind in [
            KeyKind::Ec(Curve::P256),
            KeyKind::Ec(Curve::P384),
            KeyKind::Ec(Curve::P521),
            KeyKind::X25519,
            KeyKind::MlKem(MlKem::MlKem512),
            KeyKind::MlKem(MlKem::MlKem768),
            KeyKind::MlKem(MlKem::MlKem1024),
        ] {
            let pair = generate_key_pair(kind, 0).unwrap();
            let c = hybrid_encrypt(kind, &pair.public, b"secret data", b"aad").unwrap();
            assert_eq!(c.len(), enc_len(kind).unwrap() + 11 + 16, "{kind:?}");
            assert_eq!(
                hybrid_decrypt(kind, &pair.private, &c, b"aad")
                    .unwrap()
                    .as_slice(),
                b"secret data"
            );
            assert!(hybrid_decrypt(kind, &pair.private, &c, b"other").is_err());
            let mut bad = c.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(hybrid_decrypt(kind, &pair.private, &bad, b"aad").is_err());
        }
        let pair = generate_key_pair(KeyKind::Ed25519, 0).unwrap();
        assert!(hybrid_encrypt(KeyKind::Ed25519, &pair.public, b"x", b"").is_err());
    }
}
