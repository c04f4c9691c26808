//! Conversions between the canonical key forms (PKCS#8 and SubjectPublicKeyInfo DER; raw for
//! ML-KEM) and the other encodings KMIP names: PKCS#1, SEC1, raw scalars and points, and the
//! components of transparent RSA keys.
//!
//! The DER structures are read and written with the RustCrypto `der` family; every key that
//! comes out of a conversion has been loaded by aws-lc-rs once, so that a malformed key is
//! refused at the door rather than at first use.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfo;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::{Curve, KeyKind, MlDsa, MlKem, sign};
use crate::error::{Error, Result};

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const ML_DSA_44: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
const ML_DSA_65: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
const ML_DSA_87: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

fn curve_oid(curve: Curve) -> ObjectIdentifier {
    match curve {
        Curve::P256 => P256,
        Curve::P384 => P384,
        Curve::P521 => P521,
        Curve::Secp256k1 => SECP256K1,
    }
}

fn invalid(algorithm: &'static str, reason: &'static str) -> Error {
    Error::InvalidKey { algorithm, reason }
}

fn kind_of(algorithm: &AlgorithmIdentifierRef<'_>) -> Result<KeyKind> {
    let oid = algorithm.oid;
    Ok(match oid {
        RSA => KeyKind::Rsa,
        ED25519 => KeyKind::Ed25519,
        X25519 => KeyKind::X25519,
        ML_DSA_44 => KeyKind::MlDsa(MlDsa::MlDsa44),
        ML_DSA_65 => KeyKind::MlDsa(MlDsa::MlDsa65),
        ML_DSA_87 => KeyKind::MlDsa(MlDsa::MlDsa87),
        EC => {
            let curve = algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| invalid("EC", "the key does not name its curve"))?;
            KeyKind::Ec(match curve {
                P256 => Curve::P256,
                P384 => Curve::P384,
                P521 => Curve::P521,
                SECP256K1 => Curve::Secp256k1,
                _ => {
                    return Err(Error::UnsupportedAlgorithm {
                        algorithm: "EC",
                        detail: "this curve is not supported; use P-256, P-384, P-521 or secp256k1",
                    });
                }
            })
        }
        _ => {
            return Err(Error::UnsupportedAlgorithm {
                algorithm: "this key",
                detail: "its algorithm is not one of RSA, EC (P-256/384/521, secp256k1), Ed25519, X25519 or ML-DSA",
            });
        }
    })
}

fn algorithm_of(kind: KeyKind, curve: &ObjectIdentifier) -> Result<AlgorithmIdentifierRef<'_>> {
    let (oid, parameters) = match kind {
        KeyKind::Rsa => (RSA, Some(AnyRef::NULL)),
        KeyKind::Ec(_) => (EC, Some(AnyRef::from(curve))),
        KeyKind::Ed25519 => (ED25519, None),
        KeyKind::X25519 => (X25519, None),
        KeyKind::MlDsa(MlDsa::MlDsa44) => (ML_DSA_44, None),
        KeyKind::MlDsa(MlDsa::MlDsa65) => (ML_DSA_65, None),
        KeyKind::MlDsa(MlDsa::MlDsa87) => (ML_DSA_87, None),
        KeyKind::MlKem(_) => {
            return Err(Error::UnsupportedAlgorithm {
                algorithm: "ML-KEM",
                detail: "ML-KEM keys exist only in their raw form here; use the Raw key format",
            });
        }
    };
    Ok(AlgorithmIdentifierRef { oid, parameters })
}

/// The kind of key a PKCS#8 `PrivateKeyInfo` holds.
pub fn private_kind(pkcs8: &[u8]) -> Result<KeyKind> {
    let info = PrivateKeyInfo::from_der(pkcs8)
        .map_err(|_| invalid("private", "it is not a DER PKCS#8 PrivateKeyInfo"))?;
    kind_of(&info.algorithm)
}

/// The kind of key a `SubjectPublicKeyInfo` holds.
pub fn public_kind(spki: &[u8]) -> Result<KeyKind> {
    let info = SubjectPublicKeyInfoRef::from_der(spki)
        .map_err(|_| invalid("public", "it is not a DER SubjectPublicKeyInfo"))?;
    kind_of(&info.algorithm)
}

fn wrap_pkcs8(kind: KeyKind, inner: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let curve = match kind {
        KeyKind::Ec(c) => curve_oid(c),
        _ => P256,
    };
    let info = PrivateKeyInfo::new(algorithm_of(kind, &curve)?, inner);
    info.to_der()
        .map(Zeroizing::new)
        .map_err(|_| invalid(kind.name(), "the key cannot be encoded"))
}

fn wrap_spki(kind: KeyKind, bits: &[u8]) -> Result<Vec<u8>> {
    let curve = match kind {
        KeyKind::Ec(c) => curve_oid(c),
        _ => P256,
    };
    let info = SubjectPublicKeyInfoRef {
        algorithm: algorithm_of(kind, &curve)?,
        subject_public_key: BitStringRef::from_bytes(bits)
            .map_err(|_| invalid(kind.name(), "the key cannot be encoded"))?,
    };
    info.to_der()
        .map_err(|_| invalid(kind.name(), "the key cannot be encoded"))
}

/// RSA: PKCS#1 `RSAPrivateKey` → PKCS#8.
pub fn rsa_private_from_pkcs1(pkcs1: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    pkcs1::RsaPrivateKey::from_der(pkcs1)
        .map_err(|_| invalid("RSA", "it is not a DER PKCS#1 RSAPrivateKey"))?;
    // Structure only: keys the library will not use (under 2048 bits) can still be stored and
    // converted; an operation on them is refused when it loads them.
    wrap_pkcs8(KeyKind::Rsa, pkcs1)
}

/// The key inside a PKCS#8 structure (PKCS#1 for RSA, SEC1 for EC, an OCTET STRING for the
/// Edwards and Montgomery curves).
fn pkcs8_inner(kind: KeyKind, pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let info = PrivateKeyInfo::from_der(pkcs8)
        .map_err(|_| invalid(kind.name(), "it is not a DER PKCS#8 PrivateKeyInfo"))?;
    if kind_of(&info.algorithm)? != kind {
        return Err(invalid(kind.name(), "the key is of another algorithm"));
    }
    Ok(Zeroizing::new(info.private_key.to_vec()))
}

/// RSA: PKCS#8 → PKCS#1 `RSAPrivateKey`.
pub fn rsa_private_to_pkcs1(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    pkcs8_inner(KeyKind::Rsa, pkcs8)
}

/// RSA: PKCS#1 `RSAPublicKey` → SubjectPublicKeyInfo.
pub fn rsa_public_from_pkcs1(pkcs1: &[u8]) -> Result<Vec<u8>> {
    pkcs1::RsaPublicKey::from_der(pkcs1)
        .map_err(|_| invalid("RSA", "it is not a DER PKCS#1 RSAPublicKey"))?;
    wrap_spki(KeyKind::Rsa, pkcs1)
}

/// RSA: SubjectPublicKeyInfo → PKCS#1 `RSAPublicKey`.
pub fn rsa_public_to_pkcs1(spki: &[u8]) -> Result<Vec<u8>> {
    public_raw(KeyKind::Rsa, spki)
}

/// The parts of an RSA private key, big-endian without leading zeros; wiped when dropped.
#[derive(Default)]
pub struct RsaPrivateComponents {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub private_exponent: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qinv: Vec<u8>,
}

impl Drop for RsaPrivateComponents {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for part in [
            &mut self.private_exponent,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qinv,
        ] {
            part.zeroize();
        }
    }
}

impl std::fmt::Debug for RsaPrivateComponents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPrivateComponents({} bits)", self.modulus.len() * 8)
    }
}

/// RSA: the components of a PKCS#8 private key.
pub fn rsa_private_components(pkcs8: &[u8]) -> Result<RsaPrivateComponents> {
    let inner = pkcs8_inner(KeyKind::Rsa, pkcs8)?;
    let key = pkcs1::RsaPrivateKey::from_der(&inner)
        .map_err(|_| invalid("RSA", "it is not a DER PKCS#1 RSAPrivateKey"))?;
    Ok(RsaPrivateComponents {
        modulus: key.modulus.as_bytes().to_vec(),
        public_exponent: key.public_exponent.as_bytes().to_vec(),
        private_exponent: key.private_exponent.as_bytes().to_vec(),
        p: key.prime1.as_bytes().to_vec(),
        q: key.prime2.as_bytes().to_vec(),
        dp: key.exponent1.as_bytes().to_vec(),
        dq: key.exponent2.as_bytes().to_vec(),
        qinv: key.coefficient.as_bytes().to_vec(),
    })
}

/// RSA: a PKCS#8 private key from its components (all of them; the library checks they agree).
pub fn rsa_private_from_components(c: &RsaPrivateComponents) -> Result<Zeroizing<Vec<u8>>> {
    let key = pkcs1::RsaPrivateKey {
        modulus: uint(&c.modulus)?,
        public_exponent: uint(&c.public_exponent)?,
        private_exponent: uint(&c.private_exponent)?,
        prime1: uint(&c.p)?,
        prime2: uint(&c.q)?,
        exponent1: uint(&c.dp)?,
        exponent2: uint(&c.dq)?,
        coefficient: uint(&c.qinv)?,
        other_prime_infos: None,
    };
    let pkcs1 = Zeroizing::new(
        key.to_der()
            .map_err(|_| invalid("RSA", "the key cannot be encoded"))?,
    );
    rsa_private_from_pkcs1(&pkcs1)
}

/// RSA: modulus and public exponent of a SubjectPublicKeyInfo.
pub fn rsa_public_components(spki: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pkcs1 = public_raw(KeyKind::Rsa, spki)?;
    let key = pkcs1::RsaPublicKey::from_der(&pkcs1)
        .map_err(|_| invalid("RSA", "it is not a DER PKCS#1 RSAPublicKey"))?;
    Ok((
        key.modulus.as_bytes().to_vec(),
        key.public_exponent.as_bytes().to_vec(),
    ))
}

/// RSA: a SubjectPublicKeyInfo from modulus and public exponent.
pub fn rsa_public_from_components(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let key = pkcs1::RsaPublicKey {
        modulus: uint(modulus)?,
        public_exponent: uint(exponent)?,
    };
    let pkcs1 = key
        .to_der()
        .map_err(|_| invalid("RSA", "the key cannot be encoded"))?;
    rsa_public_from_pkcs1(&pkcs1)
}

/// EC: SEC1 `ECPrivateKey` (RFC 5915, naming its curve) → PKCS#8. `curve` is required when the
/// structure does not name its curve.
pub fn ec_private_from_sec1(
    sec1: &[u8],
    curve: Option<Curve>,
) -> Result<(Curve, Zeroizing<Vec<u8>>)> {
    let key = sec1::EcPrivateKey::from_der(sec1)
        .map_err(|_| invalid("EC", "it is not a DER SEC1 ECPrivateKey"))?;
    let named = key
        .parameters
        .and_then(|p| p.named_curve())
        .map(|oid| match oid {
            P256 => Ok(Curve::P256),
            P384 => Ok(Curve::P384),
            P521 => Ok(Curve::P521),
            SECP256K1 => Ok(Curve::Secp256k1),
            _ => Err(Error::UnsupportedAlgorithm {
                algorithm: "EC",
                detail: "this curve is not supported; use P-256, P-384, P-521 or secp256k1",
            }),
        })
        .transpose()?;
    let curve = named
        .or(curve)
        .ok_or_else(|| invalid("EC", "the key does not name its curve"))?;
    ec_private_from_scalar(curve, key.private_key)
}

/// EC: the private scalar (big-endian) → PKCS#8 (the public point is computed).
pub fn ec_private_from_scalar(curve: Curve, scalar: &[u8]) -> Result<(Curve, Zeroizing<Vec<u8>>)> {
    let mut padded = Zeroizing::new(vec![0u8; curve.scalar_len()]);
    let scalar = strip_zeros(scalar);
    if scalar.len() > padded.len() {
        return Err(invalid(
            curve.name(),
            "the private scalar is longer than the curve's order",
        ));
    }
    let offset = padded.len() - scalar.len();
    padded[offset..].copy_from_slice(scalar);
    let sec1 = sec1::EcPrivateKey {
        private_key: &padded,
        parameters: Some(sec1::EcParameters::NamedCurve(curve_oid(curve))),
        public_key: None,
    };
    let der = Zeroizing::new(
        sec1.to_der()
            .map_err(|_| invalid(curve.name(), "the key cannot be encoded"))?,
    );
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
        sign::ecdsa_signing(curve, None)?,
        &der,
    )
    .map_err(|_| {
        invalid(
            curve.name(),
            "the private scalar is not a valid key of this curve",
        )
    })?;
    let pkcs8 = pair.to_pkcs8v1().map_err(Error::backend("encode a key"))?;
    Ok((curve, Zeroizing::new(pkcs8.as_ref().to_vec())))
}

fn uint(b: &[u8]) -> Result<UintRef<'_>> {
    UintRef::new(b).map_err(|_| invalid("RSA", "a component is not a valid integer"))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

/// EC: PKCS#8 → SEC1 `ECPrivateKey` naming its curve, with its public key.
pub fn ec_private_to_sec1(curve: Curve, pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der};
    let pair =
        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(sign::ecdsa_signing(curve, None)?, pkcs8)
            .map_err(|_| invalid(curve.name(), "the private key cannot be read"))?;
    let der: EcPrivateKeyRfc5915Der<'_> = pair
        .private_key()
        .as_der()
        .map_err(Error::backend("encode a key"))?;
    Ok(Zeroizing::new(der.as_ref().to_vec()))
}

/// The raw private key: the EC scalar (big-endian, the curve's length), the 32-byte Ed25519
/// seed or X25519 scalar. ML-KEM keys are raw already.
pub fn private_raw(kind: KeyKind, private: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match kind {
        KeyKind::Ec(curve) => {
            use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                sign::ecdsa_signing(curve, None)?,
                private,
            )
            .map_err(|_| invalid(curve.name(), "the private key cannot be read"))?;
            let bin: EcPrivateKeyBin<'_> = pair
                .private_key()
                .as_be_bytes()
                .map_err(Error::backend("encode a key"))?;
            Ok(Zeroizing::new(bin.as_ref().to_vec()))
        }
        KeyKind::Ed25519 | KeyKind::X25519 => {
            let inner = pkcs8_inner(kind, private)?;
            let octets = OctetStringRef::from_der(&inner)
                .map_err(|_| invalid(kind.name(), "the private key is malformed"))?;
            if octets.as_bytes().len() != 32 {
                return Err(invalid(kind.name(), "the private key is not 32 bytes"));
            }
            Ok(Zeroizing::new(octets.as_bytes().to_vec()))
        }
        KeyKind::MlKem(_) => Ok(Zeroizing::new(private.to_vec())),
        KeyKind::Rsa | KeyKind::MlDsa(_) => Err(Error::UnsupportedAlgorithm {
            algorithm: kind.name(),
            detail: "private keys have no raw form here; use PKCS#8 (or PKCS#1 for RSA)",
        }),
    }
}

/// A private key from its raw form (see [`private_raw`]) → canonical form.
pub fn private_from_raw(kind: KeyKind, raw: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match kind {
        KeyKind::Ec(curve) => ec_private_from_scalar(curve, raw).map(|(_, k)| k),
        KeyKind::Ed25519 | KeyKind::X25519 => {
            if raw.len() != 32 {
                return Err(invalid(kind.name(), "a raw private key has 32 bytes"));
            }
            let octets = OctetStringRef::new(raw)
                .and_then(|o| o.to_der())
                .map(Zeroizing::new)
                .map_err(|_| invalid(kind.name(), "the key cannot be encoded"))?;
            let pkcs8 = wrap_pkcs8(kind, &octets)?;
            super::check_private(kind, &pkcs8)?;
            Ok(pkcs8)
        }
        KeyKind::MlKem(_) => {
            super::check_private(kind, raw)?;
            Ok(Zeroizing::new(raw.to_vec()))
        }
        KeyKind::Rsa | KeyKind::MlDsa(_) => Err(Error::UnsupportedAlgorithm {
            algorithm: kind.name(),
            detail: "private keys have no raw form here; use PKCS#8 (or PKCS#1 for RSA)",
        }),
    }
}

/// The raw public key: the uncompressed EC point, the 32 bytes of Ed25519/X25519, the ML-DSA
/// public key, or for RSA the PKCS#1 `RSAPublicKey`. ML-KEM keys are raw already.
pub fn public_raw(kind: KeyKind, public: &[u8]) -> Result<Vec<u8>> {
    if let KeyKind::MlKem(_) = kind {
        return Ok(public.to_vec());
    }
    let info = SubjectPublicKeyInfoRef::from_der(public)
        .map_err(|_| invalid(kind.name(), "it is not a DER SubjectPublicKeyInfo"))?;
    if kind_of(&info.algorithm)? != kind {
        return Err(invalid(kind.name(), "the key is of another algorithm"));
    }
    info.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| invalid(kind.name(), "the public key is not a whole number of bytes"))
}

/// A public key from its raw form (see [`public_raw`]) → canonical form.
pub fn public_from_raw(kind: KeyKind, raw: &[u8]) -> Result<Vec<u8>> {
    let expected = match kind {
        KeyKind::Rsa => return rsa_public_from_pkcs1(raw),
        KeyKind::MlKem(level) => {
            let len = match level {
                MlKem::MlKem512 => 800,
                MlKem::MlKem768 => 1184,
                MlKem::MlKem1024 => 1568,
            };
            if raw.len() != len {
                return Err(invalid(kind.name(), "the public key has the wrong length"));
            }
            return Ok(raw.to_vec());
        }
        KeyKind::Ec(curve) => 1 + 2 * curve.scalar_len(),
        KeyKind::Ed25519 | KeyKind::X25519 => 32,
        KeyKind::MlDsa(MlDsa::MlDsa44) => 1312,
        KeyKind::MlDsa(MlDsa::MlDsa65) => 1952,
        KeyKind::MlDsa(MlDsa::MlDsa87) => 2592,
    };
    if raw.len() != expected || matches!(kind, KeyKind::Ec(_)) && raw.first() != Some(&4) {
        return Err(invalid(
            kind.name(),
            "the raw public key has the wrong length (EC points are uncompressed: 04 || X || Y)",
        ));
    }
    wrap_spki(kind, raw)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::asymmetric::generate_key_pair;

    #[test]
    fn every_kind_round_trips_through_its_other_forms() {
        for kind in [
            KeyKind::Ec(Curve::P256),
            KeyKind::Ec(Curve::P384),
            KeyKind::Ec(Curve::P521),
            KeyKind::Ec(Curve::Secp256k1),
            KeyKind::Ed25519,
            KeyKind::X25519,
            KeyKind::MlKem(MlKem::MlKem768),
        ] {
            let pair = generate_key_pair(kind, 0).unwrap();
            let raw = private_raw(kind, &pair.private).unwrap();
            let back = private_from_raw(kind, &raw).unwrap();
            assert_eq!(private_raw(kind, &back).unwrap(), raw, "{kind:?}");
            let point = public_raw(kind, &pair.public).unwrap();
            assert_eq!(
                public_from_raw(kind, &point).unwrap(),
                pair.public,
                "{kind:?}"
            );
            if kind != KeyKind::MlKem(MlKem::MlKem768) {
                assert_eq!(private_kind(&pair.private).unwrap(), kind);
                assert_eq!(public_kind(&pair.public).unwrap(), kind);
            }
            assert_eq!(
                super::super::public_of_private(kind, &back).unwrap(),
                pair.public
            );
        }
    }

    #[test]
    fn rsa_round_trips_through_pkcs1_and_components() {
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let pkcs1 = rsa_private_to_pkcs1(&pair.private).unwrap();
        assert_eq!(*rsa_private_from_pkcs1(&pkcs1).unwrap(), *pair.private);
        let parts = rsa_private_components(&pair.private).unwrap();
        assert_eq!(parts.modulus.len(), 256);
        assert_eq!(*rsa_private_from_components(&parts).unwrap(), *pair.private);
        let public = rsa_public_to_pkcs1(&pair.public).unwrap();
        assert_eq!(rsa_public_from_pkcs1(&public).unwrap(), pair.public);
        let (n, e) = rsa_public_components(&pair.public).unwrap();
        assert_eq!(rsa_public_from_components(&n, &e).unwrap(), pair.public);
        assert_eq!(n, parts.modulus);
    }

    #[test]
    fn sec1_round_trips_and_names_its_curve() {
        let pair = generate_key_pair(KeyKind::Ec(Curve::P384), 0).unwrap();
        let sec1 = ec_private_to_sec1(Curve::P384, &pair.private).unwrap();
        let (curve, back) = ec_private_from_sec1(&sec1, None).unwrap();
        assert_eq!(curve, Curve::P384);
        assert_eq!(
            private_raw(KeyKind::Ec(curve), &back).unwrap(),
            private_raw(KeyKind::Ec(curve), &pair.private).unwrap()
        );
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(matches!(
            rsa_private_from_pkcs1(b"not a key"),
            Err(Error::InvalidKey { .. })
        ));
        assert!(private_kind(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(public_from_raw(KeyKind::Ec(Curve::P256), &[4; 10]).is_err());
    }
}
