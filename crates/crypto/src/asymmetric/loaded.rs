//! A private key parsed once for many operations. Parsing dominates the cost of an RSA
//! operation (the library checks the key's consistency) and is a large part of an ECDSA
//! signature, so the server keeps these in a bounded cache; each library key object is made on
//! first use and kept. Dropping one frees (and clears) the library's copies and wipes the DER.

use std::sync::OnceLock;

use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, PqdsaKeyPair};
use zeroize::Zeroizing;

use super::KeyKind;
use super::rsa::{RsaEncryption, oaep};
use super::sign::{
    Message, SignatureScheme, ecdsa_sign_with, ecdsa_signing, ml_dsa_signing, rsa_sign_with,
    whole_message, wrong_scheme_for,
};
use crate::error::{Error, Result};

pub struct LoadedPrivateKey {
    kind: KeyKind,
    der: Zeroizing<Vec<u8>>,
    rsa_sign: OnceLock<aws_lc_rs::rsa::KeyPair>,
    rsa_oaep: OnceLock<OaepPrivateDecryptingKey>,
    rsa_pkcs1: OnceLock<Pkcs1PrivateDecryptingKey>,
    /// With the curve's own hash (the default); other hashes parse the key again.
    ecdsa: OnceLock<EcdsaKeyPair>,
    ed25519: OnceLock<Ed25519KeyPair>,
    ml_dsa: OnceLock<PqdsaKeyPair>,
}

impl std::fmt::Debug for LoadedPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedPrivateKey({})", self.kind.name())
    }
}

/// The key made once, or the error of making it (not kept: the next use tries again).
fn once<T>(cell: &OnceLock<T>, make: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = make()?;
    Ok(cell.get_or_init(|| v))
}

impl LoadedPrivateKey {
    /// A private key of `kind` in canonical form (PKCS#8; raw for ML-KEM). Nothing is parsed
    /// until it is used.
    #[must_use]
    pub fn new(kind: KeyKind, der: &[u8]) -> Self {
        LoadedPrivateKey {
            kind,
            der: Zeroizing::new(der.to_vec()),
            rsa_sign: OnceLock::new(),
            rsa_oaep: OnceLock::new(),
            rsa_pkcs1: OnceLock::new(),
            ecdsa: OnceLock::new(),
            ed25519: OnceLock::new(),
            ml_dsa: OnceLock::new(),
        }
    }

    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key in canonical form.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    fn bad(&self) -> Error {
        Error::InvalidKey {
            algorithm: self.kind.name(),
            reason: "the private key cannot be read",
        }
    }

    fn decrypting(&self) -> Result<PrivateDecryptingKey> {
        PrivateDecryptingKey::from_pkcs8(&self.der).map_err(|_| self.bad())
    }

    /// Signs `message` as `scheme` says.
    pub fn sign(&self, scheme: SignatureScheme, message: Message<'_>) -> Result<Vec<u8>> {
        let failed = Error::backend("sign");
        match (self.kind, scheme) {
            (
                KeyKind::Rsa,
                SignatureScheme::RsaPkcs1v15(hash) | SignatureScheme::RsaPss { hash, .. },
            ) => {
                let pair = once(&self.rsa_sign, || {
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(&self.der).map_err(|_| self.bad())
                })?;
                rsa_sign_with(pair, scheme, hash, message)
            }
            (KeyKind::Ec(curve), SignatureScheme::Ecdsa(hash)) => {
                let default = ecdsa_signing(curve, None)?;
                let asked = ecdsa_signing(curve, Some(hash))?;
                if std::ptr::eq(default, asked) {
                    let pair = once(&self.ecdsa, || {
                        EcdsaKeyPair::from_pkcs8(default, &self.der).map_err(|_| self.bad())
                    })?;
                    ecdsa_sign_with(pair, hash, message)
                } else {
                    let pair =
                        EcdsaKeyPair::from_pkcs8(asked, &self.der).map_err(|_| self.bad())?;
                    ecdsa_sign_with(&pair, hash, message)
                }
            }
            (KeyKind::Ed25519, SignatureScheme::Ed25519) => {
                let data = whole_message("Ed25519", message)?;
                let pair = once(&self.ed25519, || {
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.der).map_err(|_| self.bad())
                })?;
                Ok(pair.try_sign(data).map_err(failed)?.as_ref().to_vec())
            }
            (KeyKind::MlDsa(level), SignatureScheme::MlDsa) => {
                let data = whole_message("ML-DSA", message)?;
                let alg = ml_dsa_signing(level);
                let pair = once(&self.ml_dsa, || {
                    PqdsaKeyPair::from_pkcs8(alg, &self.der).map_err(|_| self.bad())
                })?;
                let mut out = vec![0u8; alg.signature_len()];
                let n = pair.sign(data, &mut out).map_err(failed)?;
                out.truncate(n);
                Ok(out)
            }
            _ => Err(wrong_scheme_for(self.kind)),
        }
    }

    /// RSA decryption (the library's paddings; others go through [`super::rsa_decrypt`]).
    pub fn rsa_decrypt(
        &self,
        padding: RsaEncryption<'_>,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if self.kind != KeyKind::Rsa {
            return Err(Error::UnsupportedMode {
                algorithm: self.kind.name(),
                detail: "keys do not decrypt with RSA paddings",
            });
        }
        let failed = Error::backend("load a key");
        match padding {
            RsaEncryption::Oaep { hash, mgf1, label } => {
                let alg = oaep(hash, mgf1)?;
                let key = once(&self.rsa_oaep, || {
                    OaepPrivateDecryptingKey::new(self.decrypting()?).map_err(failed)
                })?;
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let n = key
                    .decrypt(alg, data, &mut out, (!label.is_empty()).then_some(label))
                    .map_err(|_| Error::DecryptionFailed {
                        algorithm: "RSA-OAEP",
                    })?
                    .len();
                out.truncate(n);
                Ok(out)
            }
            RsaEncryption::Pkcs1v15 => {
                let key = once(&self.rsa_pkcs1, || {
                    Pkcs1PrivateDecryptingKey::new(self.decrypting()?).map_err(failed)
                })?;
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let n = key
                    .decrypt(data, &mut out)
                    .map_err(|_| Error::DecryptionFailed {
                        algorithm: "RSA PKCS#1 v1.5",
                    })?
                    .len();
                out.truncate(n);
                Ok(out)
            }
        }
    }
}
