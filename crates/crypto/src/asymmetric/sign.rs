//! Signatures: RSA-PSS and PKCS#1 v1.5, ECDSA (DER signatures), Ed25519, ML-DSA; on data or on
//! a digest computed by the client.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_lc_rs::digest::Digest;
use aws_lc_rs::rsa::{RsaParameters, RsaPssSaltLength};
use aws_lc_rs::signature::RsaSignatureEncoding;
use aws_lc_rs::signature::{self as sig, EcdsaSigningAlgorithm, VerificationAlgorithm};

use super::{Curve, KeyKind, MlDsa, encoding};
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;

/// How to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    RsaPkcs1v15(HashAlgorithm),
    /// `salt`: the salt length in bytes; `None` for the hash's length.
    RsaPss {
        hash: HashAlgorithm,
        salt: Option<u16>,
    },
    Ecdsa(HashAlgorithm),
    Ed25519,
    MlDsa,
}

/// What is signed: the data itself, or its digest (with the scheme's hash) made by the client.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    Data(&'a [u8]),
    Digest(&'a [u8]),
}

fn unsupported(algorithm: &'static str, detail: &'static str) -> Error {
    Error::UnsupportedAlgorithm { algorithm, detail }
}

pub(crate) fn ecdsa_signing(
    curve: Curve,
    hash: Option<HashAlgorithm>,
) -> Result<&'static EcdsaSigningAlgorithm> {
    use HashAlgorithm as H;
    Ok(match (curve, hash) {
        (Curve::P256, None | Some(H::Sha256)) => &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
        (Curve::P384, None | Some(H::Sha384)) => &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        (Curve::P384, Some(H::Sha3_384)) => &sig::ECDSA_P384_SHA3_384_ASN1_SIGNING,
        (Curve::P521, None | Some(H::Sha512)) => &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
        (Curve::P521, Some(H::Sha384)) => &sig::ECDSA_P521_SHA384_ASN1_SIGNING,
        (Curve::P521, Some(H::Sha256)) => &sig::ECDSA_P521_SHA256_ASN1_SIGNING,
        (Curve::P521, Some(H::Sha224)) => &sig::ECDSA_P521_SHA224_ASN1_SIGNING,
        (Curve::P521, Some(H::Sha3_512)) => &sig::ECDSA_P521_SHA3_512_ASN1_SIGNING,
        (Curve::Secp256k1, None | Some(H::Sha256)) => &sig::ECDSA_P256K1_SHA256_ASN1_SIGNING,
        (Curve::Secp256k1, Some(H::Sha3_256)) => &sig::ECDSA_P256K1_SHA3_256_ASN1_SIGNING,
        _ => {
            return Err(unsupported(
                "ECDSA",
                "this curve and hash pair is not supported; sign P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512 (or SHA-256/384), secp256k1 with SHA-256",
            ));
        }
    })
}

fn ecdsa_verification(
    curve: Curve,
    hash: HashAlgorithm,
) -> Result<&'static sig::EcdsaVerificationAlgorithm> {
    use HashAlgorithm as H;
    Ok(match (curve, hash) {
        (Curve::P256, H::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, H::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (Curve::P256, H::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (Curve::P256, H::Sha1) => &sig::ECDSA_P256_SHA1_ASN1,
        (Curve::P384, H::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, H::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (Curve::P384, H::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (Curve::P384, H::Sha3_384) => &sig::ECDSA_P384_SHA3_384_ASN1,
        (Curve::P521, H::Sha224) => &sig::ECDSA_P521_SHA224_ASN1,
        (Curve::P521, H::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (Curve::P521, H::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (Curve::P521, H::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
        (Curve::P521, H::Sha3_512) => &sig::ECDSA_P521_SHA3_512_ASN1,
        (Curve::Secp256k1, H::Sha256) => &sig::ECDSA_P256K1_SHA256_ASN1,
        (Curve::Secp256k1, H::Sha3_256) => &sig::ECDSA_P256K1_SHA3_256_ASN1,
        _ => {
            return Err(unsupported(
                "ECDSA",
                "this curve and hash pair is not supported for verification",
            ));
        }
    })
}

pub(crate) fn ml_dsa_signing(level: MlDsa) -> &'static sig::PqdsaSigningAlgorithm {
    match level {
        MlDsa::MlDsa44 => &sig::ML_DSA_44_SIGNING,
        MlDsa::MlDsa65 => &sig::ML_DSA_65_SIGNING,
        MlDsa::MlDsa87 => &sig::ML_DSA_87_SIGNING,
    }
}

fn ml_dsa_verification(level: MlDsa) -> &'static sig::PqdsaVerificationAlgorithm {
    match level {
        MlDsa::MlDsa44 => &sig::ML_DSA_44,
        MlDsa::MlDsa65 => &sig::ML_DSA_65,
        MlDsa::MlDsa87 => &sig::ML_DSA_87,
    }
}

/// The library's signing API takes `'static` encodings; a PSS salt length chosen by the client
/// gets one made once per (hash, salt) pair and kept (at most a few thousand tiny values).
fn rsa_encoding(scheme: SignatureScheme) -> Result<&'static RsaSignatureEncoding> {
    use HashAlgorithm as H;
    let (base, salt) = match scheme {
        SignatureScheme::RsaPkcs1v15(H::Sha256) => return Ok(&sig::RSA_PKCS1_SHA256),
        SignatureScheme::RsaPkcs1v15(H::Sha384) => return Ok(&sig::RSA_PKCS1_SHA384),
        SignatureScheme::RsaPkcs1v15(H::Sha512) => return Ok(&sig::RSA_PKCS1_SHA512),
        SignatureScheme::RsaPss { hash, salt } => {
            let base = match hash {
                H::Sha256 => sig::RSA_PSS_SHA256,
                H::Sha384 => sig::RSA_PSS_SHA384,
                H::Sha512 => sig::RSA_PSS_SHA512,
                _ => {
                    return Err(unsupported(
                        "RSA-PSS",
                        "signing takes SHA-256, SHA-384 or SHA-512",
                    ));
                }
            };
            match salt {
                None => {
                    return Ok(match hash {
                        H::Sha384 => &sig::RSA_PSS_SHA384,
                        H::Sha512 => &sig::RSA_PSS_SHA512,
                        _ => &sig::RSA_PSS_SHA256,
                    });
                }
                Some(s) => (base, (hash, s)),
            }
        }
        _ => {
            return Err(unsupported(
                "RSA PKCS#1 v1.5",
                "signing takes SHA-256, SHA-384 or SHA-512",
            ));
        }
    };
    static MADE: OnceLock<Mutex<HashMap<(HashAlgorithm, u16), &'static RsaSignatureEncoding>>> =
        OnceLock::new();
    let mut made = MADE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(*made.entry(salt).or_insert_with(|| {
        Box::leak(Box::new(
            base.with_pss_salt_length(RsaPssSaltLength::Custom(salt.1)),
        ))
    }))
}

fn rsa_parameters(scheme: SignatureScheme) -> Result<RsaParameters> {
    use HashAlgorithm as H;
    Ok(match scheme {
        SignatureScheme::RsaPkcs1v15(H::Sha1) => sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        SignatureScheme::RsaPkcs1v15(H::Sha256) => {
            sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        SignatureScheme::RsaPkcs1v15(H::Sha384) => sig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RsaPkcs1v15(H::Sha512) => {
            sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        SignatureScheme::RsaPss { hash, salt } => {
            let base = match hash {
                H::Sha256 => sig::RSA_PSS_2048_8192_SHA256,
                H::Sha384 => sig::RSA_PSS_2048_8192_SHA384,
                H::Sha512 => sig::RSA_PSS_2048_8192_SHA512,
                _ => {
                    return Err(unsupported(
                        "RSA-PSS",
                        "verification takes SHA-256, SHA-384 or SHA-512",
                    ));
                }
            };
            match salt {
                None => base,
                Some(s) => base.with_pss_salt_length(RsaPssSaltLength::Custom(s)),
            }
        }
        _ => {
            return Err(unsupported(
                "RSA PKCS#1 v1.5",
                "verification takes SHA-1, SHA-256, SHA-384 or SHA-512",
            ));
        }
    })
}

fn imported_digest(hash: HashAlgorithm, digest: &[u8]) -> Result<Digest> {
    Digest::import_less_safe(digest, hash.digest()?).map_err(|_| Error::DataTooShort {
        algorithm: hash.name(),
        minimum: hash.output_len(),
        actual: digest.len(),
    })
}

fn wrong_scheme(kind: KeyKind) -> Error {
    Error::UnsupportedMode {
        algorithm: kind.name(),
        detail: "keys do not make signatures of this kind; ask for the key's own signature algorithm",
    }
}

/// Signs `message` with `private` (canonical form), parsing the key for this one use (see
/// [`super::LoadedPrivateKey`] to parse once and sign many times).
pub fn sign(
    kind: KeyKind,
    private: &[u8],
    scheme: SignatureScheme,
    message: Message<'_>,
) -> Result<Vec<u8>> {
    super::LoadedPrivateKey::new(kind, private).sign(scheme, message)
}

pub(super) fn rsa_sign_with(
    pair: &aws_lc_rs::rsa::KeyPair,
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    message: Message<'_>,
) -> Result<Vec<u8>> {
    let encoding = rsa_encoding(scheme)?;
    let failed = Error::backend("sign");
    let mut out = vec![0u8; pair.public_modulus_len()];
    match message {
        Message::Data(data) => pair
            .sign(
                encoding,
                &aws_lc_rs::rand::SystemRandom::new(),
                data,
                &mut out,
            )
            .map_err(failed)?,
        Message::Digest(d) => pair
            .sign_digest(encoding, &imported_digest(hash, d)?, &mut out)
            .map_err(failed)?,
    }
    Ok(out)
}

pub(super) fn ecdsa_sign_with(
    pair: &aws_lc_rs::signature::EcdsaKeyPair,
    hash: HashAlgorithm,
    message: Message<'_>,
) -> Result<Vec<u8>> {
    let failed = Error::backend("sign");
    let signature = match message {
        Message::Data(data) => pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), data)
            .map_err(failed)?,
        Message::Digest(d) => pair
            .sign_digest(&imported_digest(hash, d)?)
            .map_err(failed)?,
    };
    Ok(signature.as_ref().to_vec())
}

pub(super) fn whole_message<'a>(algorithm: &'static str, message: Message<'a>) -> Result<&'a [u8]> {
    match message {
        Message::Data(data) => Ok(data),
        Message::Digest(_) => Err(unsupported(
            algorithm,
            "signs the data itself, not a digest; send Data",
        )),
    }
}

pub(super) fn wrong_scheme_for(kind: KeyKind) -> Error {
    wrong_scheme(kind)
}

/// Checks `signature` of `message` with `public` (canonical form): `Ok(false)` when it does not
/// verify.
pub fn verify(
    kind: KeyKind,
    public: &[u8],
    scheme: SignatureScheme,
    message: Message<'_>,
    signature: &[u8],
) -> Result<bool> {
    let raw = encoding::public_raw(kind, public)?;
    let outcome = match (kind, scheme) {
        (
            KeyKind::Rsa,
            SignatureScheme::RsaPkcs1v15(hash) | SignatureScheme::RsaPss { hash, .. },
        ) => {
            let check = |params: RsaParameters| -> Result<bool> {
                Ok(match message {
                    Message::Data(data) => params.verify_sig(&raw, data, signature),
                    Message::Digest(d) => {
                        params.verify_digest_sig(&raw, &imported_digest(hash, d)?, signature)
                    }
                }
                .is_ok())
            };
            if let SignatureScheme::RsaPss {
                hash: h @ (HashAlgorithm::Sha1 | HashAlgorithm::Sha224),
                salt,
            } = scheme
            {
                let digest = match message {
                    Message::Data(data) => crate::hash(h, data)?,
                    Message::Digest(d) => d.to_vec(),
                };
                return super::rsa_raw::pss_verify(
                    public,
                    h,
                    salt.map(usize::from),
                    &digest,
                    signature,
                );
            }
            let params = rsa_parameters(scheme)?;
            // A PSS signature whose salt length is not given: the hash's length, else the
            // largest the key allows (the two lengths signers use).
            if let SignatureScheme::RsaPss { salt: None, .. } = scheme
                && !check(rsa_parameters(scheme)?)?
            {
                return check(params.with_pss_salt_length(RsaPssSaltLength::Max));
            }
            return check(params);
        }
        (KeyKind::Ec(curve), SignatureScheme::Ecdsa(hash)) => {
            let alg = ecdsa_verification(curve, hash)?;
            match message {
                Message::Data(data) => alg.verify_sig(&raw, data, signature),
                Message::Digest(d) => {
                    alg.verify_digest_sig(&raw, &imported_digest(hash, d)?, signature)
                }
            }
        }
        (KeyKind::Ed25519, SignatureScheme::Ed25519) => match message {
            Message::Data(data) => sig::ED25519.verify_sig(&raw, data, signature),
            Message::Digest(_) => {
                return Err(unsupported(
                    "Ed25519",
                    "verifies the data itself, not a digest; send Data",
                ));
            }
        },
        (KeyKind::MlDsa(level), SignatureScheme::MlDsa) => match message {
            Message::Data(data) => ml_dsa_verification(level).verify_sig(&raw, data, signature),
            Message::Digest(_) => {
                return Err(unsupported(
                    "ML-DSA",
                    "verifies the data itself, not a digest; send Data",
                ));
            }
        },
        _ => return Err(wrong_scheme(kind)),
    };
    Ok(outcome.is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::asymmetric::{MlDsa, generate_key_pair};

    #[test]
    fn every_scheme_signs_and_verifies_and_rejects_a_changed_message() {
        use HashAlgorithm as H;
        let rsa = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let cases = [
            (&rsa, SignatureScheme::RsaPkcs1v15(H::Sha256)),
            (
                &rsa,
                SignatureScheme::RsaPss {
                    hash: H::Sha256,
                    salt: None,
                },
            ),
            (
                &rsa,
                SignatureScheme::RsaPss {
                    hash: H::Sha256,
                    salt: Some(222),
                },
            ),
            (
                &rsa,
                SignatureScheme::RsaPss {
                    hash: H::Sha512,
                    salt: Some(0),
                },
            ),
        ];
        let others = [
            (
                generate_key_pair(KeyKind::Ec(Curve::P256), 0).unwrap(),
                SignatureScheme::Ecdsa(H::Sha256),
            ),
            (
                generate_key_pair(KeyKind::Ec(Curve::P521), 0).unwrap(),
                SignatureScheme::Ecdsa(H::Sha512),
            ),
            (
                generate_key_pair(KeyKind::Ec(Curve::Secp256k1), 0).unwrap(),
                SignatureScheme::Ecdsa(H::Sha256),
            ),
            (
                generate_key_pair(KeyKind::Ed25519, 0).unwrap(),
                SignatureScheme::Ed25519,
            ),
            (
                generate_key_pair(KeyKind::MlDsa(MlDsa::MlDsa65), 0).unwrap(),
                SignatureScheme::MlDsa,
            ),
        ];
        let all = cases.into_iter().chain(others.iter().map(|(p, s)| (p, *s)));
        for (pair, scheme) in all {
            let s = sign(pair.kind, &pair.private, scheme, Message::Data(b"hello")).unwrap();
            assert!(
                verify(pair.kind, &pair.public, scheme, Message::Data(b"hello"), &s).unwrap(),
                "{scheme:?}"
            );
            assert!(
                !verify(pair.kind, &pair.public, scheme, Message::Data(b"hellO"), &s).unwrap(),
                "{scheme:?}"
            );
        }
    }

    #[test]
    fn a_digest_signature_verifies_on_the_data() {
        let pair = generate_key_pair(KeyKind::Ec(Curve::P256), 0).unwrap();
        let scheme = SignatureScheme::Ecdsa(HashAlgorithm::Sha256);
        let digest = crate::hash(HashAlgorithm::Sha256, b"data").unwrap();
        let s = sign(pair.kind, &pair.private, scheme, Message::Digest(&digest)).unwrap();
        assert!(verify(pair.kind, &pair.public, scheme, Message::Data(b"data"), &s).unwrap());
    }

    #[test]
    fn a_key_refuses_another_algorithms_scheme() {
        let pair = generate_key_pair(KeyKind::Ed25519, 0).unwrap();
        assert!(
            sign(
                pair.kind,
                &pair.private,
                SignatureScheme::Ecdsa(HashAlgorithm::Sha256),
                Message::Data(b"x")
            )
            .is_err()
        );
    }
}
