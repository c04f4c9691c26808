//! What the asymmetric operations share: which kind of key a request or a key block names, and
//! the translation between KMIP key blocks (PKCS#1, PKCS#8, X.509, ECPrivateKey, Raw,
//! Transparent*) and the canonical DER forms of `kms_crypto::asymmetric`.

use kmip::model::{Attributes, KeyBlock, KeyMaterial, KeyValue, PlainKeyValue};
use kmip::{CryptographicAlgorithm, KeyFormatType, RecommendedCurve, Tag, Ttlv, Value};
use kms_crypto::asymmetric::{Curve, KeyKind, MlDsa, MlKem, encoding};
use kms_store::StoredObject;
use zeroize::Zeroizing;

use crate::error::{KResult, KmsError};

/// The kind of key pair a CreateKeyPair asks for, and the RSA modulus size.
pub fn kind_for_create(attributes: &Attributes) -> KResult<(KeyKind, u32)> {
    let algorithm = attributes.cryptographic_algorithm().ok_or_else(|| {
        KmsError::MissingData(
            "CreateKeyPair needs a CryptographicAlgorithm (RSA, EC, ECDSA, ECDH, Ed25519, ML_KEM, ML_DSA)"
                .into(),
        )
    })?;
    let length = attributes.cryptographic_length();
    let curve = attributes
        .cryptographic_domain_parameters()
        .and_then(|p| p.recommended_curve)
        .or_else(|| recommended_curve(attributes));
    let kind = kind_of(algorithm, length, curve)?;
    let bits = match kind {
        KeyKind::Rsa => {
            let bits = length.unwrap_or(2048);
            let bits = u32::try_from(bits).unwrap_or(0);
            if !kms_crypto::asymmetric::RSA_GENERATED_BITS.contains(&bits) {
                return Err(KmsError::InvalidRequest(format!(
                    "RSA keys of {bits} bits cannot be generated: ask for 2048, 3072, 4096 or 8192 bits"
                )));
            }
            bits
        }
        other => other.fixed_bits().unwrap_or(0),
    };
    Ok((kind, bits))
}

/// A `RecommendedCurve` given as an attribute of its own (KMIP 1.x clients).
fn recommended_curve(attributes: &Attributes) -> Option<RecommendedCurve> {
    attributes.0.iter().find_map(|a| match a {
        kmip::model::Attribute::Other(t) if t.tag == Tag::RECOMMENDED_CURVE => t
            .as_enum()
            .ok()
            .and_then(<RecommendedCurve as kmip::KmipEnum>::from_u32),
        _ => None,
    })
}

/// The kind of key an algorithm, a length and a curve name together.
pub fn kind_of(
    algorithm: CryptographicAlgorithm,
    length: Option<i32>,
    curve: Option<RecommendedCurve>,
) -> KResult<KeyKind> {
    use CryptographicAlgorithm as A;
    let by_length = |what: &str| -> KResult<Curve> {
        match length {
            None | Some(256) => Ok(Curve::P256),
            Some(384) => Ok(Curve::P384),
            Some(521) => Ok(Curve::P521),
            Some(other) => Err(KmsError::InvalidRequest(format!(
                "{what} keys of {other} bits do not exist: name the curve (P-256, P-384, P-521, SECP256K1, CURVE25519) in RecommendedCurve"
            ))),
        }
    };
    Ok(match (algorithm, curve) {
        (A::RSA, _) => KeyKind::Rsa,
        (A::Ed25519, _) => KeyKind::Ed25519,
        (A::EC | A::ECDSA | A::ECDH, Some(RecommendedCurve::P_256)) => KeyKind::Ec(Curve::P256),
        (A::EC | A::ECDSA | A::ECDH, Some(RecommendedCurve::P_384)) => KeyKind::Ec(Curve::P384),
        (A::EC | A::ECDSA | A::ECDH, Some(RecommendedCurve::P_521)) => KeyKind::Ec(Curve::P521),
        (A::EC | A::ECDSA | A::ECDH, Some(RecommendedCurve::SECP256K1)) => {
            KeyKind::Ec(Curve::Secp256k1)
        }
        (A::ECDSA, Some(RecommendedCurve::CURVE25519)) => KeyKind::Ed25519,
        (A::EC | A::ECDH, Some(RecommendedCurve::CURVE25519)) => KeyKind::X25519,
        (A::EC | A::ECDSA | A::ECDH, None) => KeyKind::Ec(by_length("EC")?),
        (A::ML_KEM, _) => KeyKind::MlKem(match length {
            Some(512) => MlKem::MlKem512,
            None | Some(768) => MlKem::MlKem768,
            Some(1024) => MlKem::MlKem1024,
            Some(other) => {
                return Err(KmsError::InvalidRequest(format!(
                    "ML-KEM has no {other} parameter set: give CryptographicLength 512, 768 or 1024"
                )));
            }
        }),
        (A::ML_DSA, _) => KeyKind::MlDsa(match length {
            Some(44) => MlDsa::MlDsa44,
            None | Some(65) => MlDsa::MlDsa65,
            Some(87) => MlDsa::MlDsa87,
            Some(other) => {
                return Err(KmsError::InvalidRequest(format!(
                    "ML-DSA has no {other} parameter set: give CryptographicLength 44, 65 or 87"
                )));
            }
        }),
        (A::EC | A::ECDSA | A::ECDH, Some(other)) => {
            return Err(KmsError::FeatureNotSupported(format!(
                "the curve {other:?}; use P_256, P_384, P_521, SECP256K1 or CURVE25519"
            )));
        }
        (other, _) => {
            return Err(KmsError::FeatureNotSupported(format!(
                "key pairs of algorithm {other:?}; use RSA, EC (ECDSA, ECDH), Ed25519, ML_KEM or ML_DSA"
            )));
        }
    })
}

/// The curve name KMIP gives a key kind in transparent structures and attributes.
pub fn curve_of(kind: KeyKind) -> Option<RecommendedCurve> {
    match kind {
        KeyKind::Ec(Curve::P256) => Some(RecommendedCurve::P_256),
        KeyKind::Ec(Curve::P384) => Some(RecommendedCurve::P_384),
        KeyKind::Ec(Curve::P521) => Some(RecommendedCurve::P_521),
        KeyKind::Ec(Curve::Secp256k1) => Some(RecommendedCurve::SECP256K1),
        KeyKind::Ed25519 | KeyKind::X25519 => Some(RecommendedCurve::CURVE25519),
        _ => None,
    }
}

/// The algorithm a key of this kind is recorded with when the client did not say.
pub fn algorithm_of(kind: KeyKind) -> CryptographicAlgorithm {
    match kind {
        KeyKind::Rsa => CryptographicAlgorithm::RSA,
        KeyKind::Ec(_) => CryptographicAlgorithm::EC,
        KeyKind::Ed25519 => CryptographicAlgorithm::Ed25519,
        KeyKind::X25519 => CryptographicAlgorithm::ECDH,
        KeyKind::MlKem(_) => CryptographicAlgorithm::ML_KEM,
        KeyKind::MlDsa(_) => CryptographicAlgorithm::ML_DSA,
    }
}

/// The format the server keeps a new private key in.
pub fn private_format(kind: KeyKind) -> KeyFormatType {
    match kind {
        KeyKind::Rsa => KeyFormatType::PKCS_1,
        KeyKind::MlKem(_) => KeyFormatType::Raw,
        _ => KeyFormatType::PKCS_8,
    }
}

/// The format the server keeps a new public key in.
pub fn public_format(kind: KeyKind) -> KeyFormatType {
    match kind {
        KeyKind::Rsa => KeyFormatType::PKCS_1,
        KeyKind::MlKem(_) => KeyFormatType::Raw,
        _ => KeyFormatType::X_509,
    }
}

fn material(kb: &KeyBlock) -> KResult<&KeyMaterial> {
    match &kb.key_value {
        Some(KeyValue::Plain(p)) => Ok(&p.key_material),
        Some(KeyValue::Wrapped(_)) => Err(KmsError::InvalidRequest(
            "the key is wrapped: unwrap it first (Import it with its wrapping key)".into(),
        )),
        None => Err(KmsError::InvalidRequest(
            "the key block has no key value".into(),
        )),
    }
}

fn bytes_of(kb: &KeyBlock) -> KResult<&[u8]> {
    match material(kb)? {
        KeyMaterial::Bytes(b) => Ok(b),
        KeyMaterial::Structure(_) => Err(KmsError::InvalidRequest(format!(
            "a {:?} key block holds bytes, not a structure",
            kb.key_format_type
        ))),
    }
}

fn fields(kb: &KeyBlock) -> KResult<&[Ttlv]> {
    match material(kb)? {
        KeyMaterial::Structure(s) => Ok(s),
        KeyMaterial::Bytes(_) => Err(KmsError::InvalidRequest(format!(
            "a {:?} key block holds a structure of components, not bytes",
            kb.key_format_type
        ))),
    }
}

fn big(items: &[Ttlv], tag: Tag) -> KResult<Vec<u8>> {
    let value = items
        .iter()
        .find(|t| t.tag == tag)
        .ok_or_else(|| KmsError::MissingData(format!("the transparent key has no {tag}")))?;
    match &value.value {
        Value::BigInteger(b) | Value::ByteString(b) => {
            let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            Ok(b[start..].to_vec())
        }
        _ => Err(KmsError::InvalidRequest(format!(
            "{tag} must be a BigInteger"
        ))),
    }
}

fn curve_in(items: &[Ttlv]) -> Option<RecommendedCurve> {
    items
        .iter()
        .find(|t| t.tag == Tag::RECOMMENDED_CURVE)
        .and_then(|t| t.as_enum().ok())
        .and_then(<RecommendedCurve as kmip::KmipEnum>::from_u32)
}

fn block_kind(kb: &KeyBlock, curve: Option<RecommendedCurve>) -> KResult<KeyKind> {
    let algorithm = kb.cryptographic_algorithm.ok_or_else(|| {
        KmsError::MissingData(format!(
            "a {:?} key block needs its CryptographicAlgorithm",
            kb.key_format_type
        ))
    })?;
    kind_of(algorithm, kb.cryptographic_length, curve)
}

/// The private key of a key block, in canonical form.
pub fn read_private(kb: &KeyBlock) -> KResult<(KeyKind, Zeroizing<Vec<u8>>)> {
    Ok(match kb.key_format_type {
        KeyFormatType::PKCS_8 => {
            let der = bytes_of(kb)?;
            let kind = encoding::private_kind(der)?;
            if kind == KeyKind::Rsa {
                // Structure only, as for PKCS#1: RSA keys under 2048 bits are kept, not used.
                encoding::rsa_private_components(der)?;
            } else {
                kms_crypto::asymmetric::check_private(kind, der)?;
            }
            (kind, Zeroizing::new(der.to_vec()))
        }
        KeyFormatType::PKCS_1 => (
            KeyKind::Rsa,
            encoding::rsa_private_from_pkcs1(bytes_of(kb)?)?,
        ),
        KeyFormatType::ECPrivateKey => {
            let hint = match kb.cryptographic_algorithm {
                Some(_) => match block_kind(kb, None) {
                    Ok(KeyKind::Ec(c)) => Some(c),
                    _ => None,
                },
                None => None,
            };
            let (curve, der) = encoding::ec_private_from_sec1(bytes_of(kb)?, hint)?;
            (KeyKind::Ec(curve), der)
        }
        KeyFormatType::TransparentRSAPrivateKey => {
            let f = fields(kb)?;
            let parts = encoding::RsaPrivateComponents {
                modulus: big(f, Tag::MODULUS)?,
                public_exponent: big(f, Tag::PUBLIC_EXPONENT)?,
                private_exponent: big(f, Tag::PRIVATE_EXPONENT)?,
                p: big(f, Tag::P)?,
                q: big(f, Tag::Q)?,
                dp: big(f, Tag::PRIME_EXPONENT_P)?,
                dq: big(f, Tag::PRIME_EXPONENT_Q)?,
                qinv: big(f, Tag::CRT_COEFFICIENT)?,
            };
            (KeyKind::Rsa, encoding::rsa_private_from_components(&parts)?)
        }
        KeyFormatType::TransparentECPrivateKey
        | KeyFormatType::TransparentECDSAPrivateKey
        | KeyFormatType::TransparentECDHPrivateKey => {
            let f = fields(kb)?;
            let kind = block_kind(kb, curve_in(f))?;
            let d = Zeroizing::new(big(f, Tag::D)?);
            (kind, encoding::private_from_raw(kind, &d)?)
        }
        KeyFormatType::Raw => {
            let kind = block_kind(kb, None)?;
            (kind, encoding::private_from_raw(kind, bytes_of(kb)?)?)
        }
        other => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{other:?} private keys cannot be used here; use PKCS_1, PKCS_8, ECPrivateKey, Raw or a transparent RSA/EC structure"
            )));
        }
    })
}

/// The public key of a key block, in canonical form.
pub fn read_public(kb: &KeyBlock) -> KResult<(KeyKind, Vec<u8>)> {
    Ok(match kb.key_format_type {
        KeyFormatType::X_509 | KeyFormatType::PKCS_8 => {
            let der = bytes_of(kb)?;
            let kind = encoding::public_kind(der)?;
            if kind == KeyKind::Rsa {
                encoding::rsa_public_components(der)?;
            } else {
                kms_crypto::asymmetric::public_bits(kind, der)?;
            }
            (kind, der.to_vec())
        }
        KeyFormatType::PKCS_1 => (
            KeyKind::Rsa,
            encoding::rsa_public_from_pkcs1(bytes_of(kb)?)?,
        ),
        KeyFormatType::TransparentRSAPublicKey => {
            let f = fields(kb)?;
            (
                KeyKind::Rsa,
                encoding::rsa_public_from_components(
                    &big(f, Tag::MODULUS)?,
                    &big(f, Tag::PUBLIC_EXPONENT)?,
                )?,
            )
        }
        KeyFormatType::TransparentECPublicKey
        | KeyFormatType::TransparentECDSAPublicKey
        | KeyFormatType::TransparentECDHPublicKey => {
            let f = fields(kb)?;
            let kind = block_kind(kb, curve_in(f))?;
            let q = f
                .iter()
                .find(|t| t.tag == Tag::Q_STRING)
                .and_then(|t| t.as_bytes().ok())
                .ok_or_else(|| {
                    KmsError::MissingData("the transparent key has no QString".into())
                })?;
            (kind, encoding::public_from_raw(kind, q)?)
        }
        KeyFormatType::Raw => {
            let kind = block_kind(kb, None)?;
            (kind, encoding::public_from_raw(kind, bytes_of(kb)?)?)
        }
        other => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{other:?} public keys cannot be used here; use PKCS_1, X_509, Raw or a transparent RSA/EC structure"
            )));
        }
    })
}

fn object_block(stored: &StoredObject) -> KResult<&KeyBlock> {
    stored
        .object
        .as_ref()
        .ok_or_else(|| KmsError::Destroyed(stored.uid.clone()))?
        .key_block()
        .ok_or_else(|| KmsError::InvalidRequest(format!("object `{}` is not a key", stored.uid)))
}

/// The private key of a stored PrivateKey object, in canonical form.
pub fn private_key(stored: &StoredObject) -> KResult<(KeyKind, Zeroizing<Vec<u8>>)> {
    if stored.object_type != kmip::ObjectType::PrivateKey {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}; this operation needs a private key",
            stored.uid, stored.object_type
        )));
    }
    read_private(object_block(stored)?)
}

/// The public key of a stored PublicKey object, in canonical form.
pub fn public_key(stored: &StoredObject) -> KResult<(KeyKind, Vec<u8>)> {
    if stored.object_type != kmip::ObjectType::PublicKey {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}; this operation needs a public key",
            stored.uid, stored.object_type
        )));
    }
    read_public(object_block(stored)?)
}

/// A positive integer as a KMIP BigInteger (two's complement: a leading zero byte when the
/// high bit is set).
fn big_value(tag: Tag, magnitude: &[u8]) -> Ttlv {
    let mut v = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(magnitude);
    Ttlv::new(tag, Value::BigInteger(v))
}

fn curve_value(kind: KeyKind) -> KResult<Ttlv> {
    let curve = curve_of(kind).ok_or_else(|| {
        KmsError::KeyFormatNotSupported(format!("a transparent EC form of a {} key", kind.name()))
    })?;
    Ok(Ttlv::new(
        Tag::RECOMMENDED_CURVE,
        Value::Enumeration(curve as u32),
    ))
}

/// The material of a private key (canonical form) in `format`.
pub fn private_material(kind: KeyKind, der: &[u8], format: KeyFormatType) -> KResult<KeyMaterial> {
    let bytes = |b: Zeroizing<Vec<u8>>| KeyMaterial::Bytes(b.to_vec());
    Ok(match (format, kind) {
        (KeyFormatType::PKCS_8, k) if !matches!(k, KeyKind::MlKem(_)) => {
            KeyMaterial::Bytes(der.to_vec())
        }
        (KeyFormatType::PKCS_1, KeyKind::Rsa) => bytes(encoding::rsa_private_to_pkcs1(der)?),
        (KeyFormatType::ECPrivateKey, KeyKind::Ec(curve)) => {
            bytes(encoding::ec_private_to_sec1(curve, der)?)
        }
        (KeyFormatType::Raw, k) if !matches!(k, KeyKind::Rsa | KeyKind::MlDsa(_)) => {
            bytes(encoding::private_raw(k, der)?)
        }
        (KeyFormatType::TransparentRSAPrivateKey, KeyKind::Rsa) => {
            let c = encoding::rsa_private_components(der)?;
            KeyMaterial::Structure(vec![
                big_value(Tag::MODULUS, &c.modulus),
                big_value(Tag::PRIVATE_EXPONENT, &c.private_exponent),
                big_value(Tag::PUBLIC_EXPONENT, &c.public_exponent),
                big_value(Tag::P, &c.p),
                big_value(Tag::Q, &c.q),
                big_value(Tag::PRIME_EXPONENT_P, &c.dp),
                big_value(Tag::PRIME_EXPONENT_Q, &c.dq),
                big_value(Tag::CRT_COEFFICIENT, &c.qinv),
            ])
        }
        (
            KeyFormatType::TransparentECPrivateKey
            | KeyFormatType::TransparentECDSAPrivateKey
            | KeyFormatType::TransparentECDHPrivateKey,
            KeyKind::Ec(_) | KeyKind::Ed25519 | KeyKind::X25519,
        ) => {
            let d = encoding::private_raw(kind, der)?;
            KeyMaterial::Structure(vec![curve_value(kind)?, big_value(Tag::D, &d)])
        }
        (format, kind) => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{format:?} for a {} private key",
                kind.name()
            )));
        }
    })
}

/// The material of a public key (canonical form) in `format`.
pub fn public_material(kind: KeyKind, der: &[u8], format: KeyFormatType) -> KResult<KeyMaterial> {
    Ok(match (format, kind) {
        // A public key asked for in PKCS_8 is its SubjectPublicKeyInfo, as Cosmian's clients
        // expect (PKCS#8 itself has no public key form).
        (KeyFormatType::X_509 | KeyFormatType::PKCS_8, k) if !matches!(k, KeyKind::MlKem(_)) => {
            KeyMaterial::Bytes(der.to_vec())
        }
        (KeyFormatType::PKCS_1, KeyKind::Rsa) => {
            KeyMaterial::Bytes(encoding::rsa_public_to_pkcs1(der)?)
        }
        (KeyFormatType::Raw, k) if k != KeyKind::Rsa => {
            KeyMaterial::Bytes(encoding::public_raw(k, der)?)
        }
        (KeyFormatType::TransparentRSAPublicKey, KeyKind::Rsa) => {
            let (n, e) = encoding::rsa_public_components(der)?;
            KeyMaterial::Structure(vec![
                big_value(Tag::MODULUS, &n),
                big_value(Tag::PUBLIC_EXPONENT, &e),
            ])
        }
        (
            KeyFormatType::TransparentECPublicKey
            | KeyFormatType::TransparentECDSAPublicKey
            | KeyFormatType::TransparentECDHPublicKey,
            KeyKind::Ec(_) | KeyKind::Ed25519 | KeyKind::X25519,
        ) => KeyMaterial::Structure(vec![
            curve_value(kind)?,
            Ttlv::new(
                Tag::Q_STRING,
                Value::ByteString(encoding::public_raw(kind, der)?),
            ),
        ]),
        (format, kind) => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{format:?} for a {} public key",
                kind.name()
            )));
        }
    })
}

/// A plain key block holding `material` in `format`.
pub fn key_block(
    format: KeyFormatType,
    material: KeyMaterial,
    algorithm: CryptographicAlgorithm,
    length: u32,
) -> KeyBlock {
    KeyBlock {
        key_format_type: format,
        key_compression_type: None,
        key_value: Some(KeyValue::Plain(PlainKeyValue {
            key_material: material,
            attributes: None,
            attribute: vec![],
        })),
        cryptographic_algorithm: Some(algorithm),
        cryptographic_length: i32::try_from(length).ok(),
        key_wrapping_data: None,
    }
}

/// Converts the key block of a stored private or public key to `format` (Get, Export).
pub fn convert(
    object_type: kmip::ObjectType,
    kb: &mut KeyBlock,
    format: KeyFormatType,
) -> KResult<()> {
    let material = match object_type {
        kmip::ObjectType::PrivateKey => {
            let (kind, der) = read_private(kb)?;
            private_material(kind, &der, format)?
        }
        kmip::ObjectType::PublicKey => {
            let (kind, der) = read_public(kb)?;
            public_material(kind, &der, format)?
        }
        other => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "{format:?} for a {other:?}"
            )));
        }
    };
    if let Some(KeyValue::Plain(p)) = &mut kb.key_value {
        p.key_material = material;
    }
    kb.key_format_type = format;
    Ok(())
}

/// Formats of private and public keys that the server reads (others are stored as given).
fn readable(format: KeyFormatType) -> bool {
    !matches!(
        format,
        KeyFormatType::Opaque
            | KeyFormatType::TransparentDSAPrivateKey
            | KeyFormatType::TransparentDSAPublicKey
            | KeyFormatType::TransparentDHPrivateKey
            | KeyFormatType::TransparentDHPublicKey
            | KeyFormatType::TransparentECMQVPrivateKey
            | KeyFormatType::TransparentECMQVPublicKey
    )
}

/// Checks a registered private or public key can be read, when it is in a format the server
/// uses (DSA, DH and opaque keys are kept as given, for clients that only store them).
pub fn check_registered(object: &kmip::model::Object) -> KResult<()> {
    let Some(kb) = object.key_block() else {
        return Ok(());
    };
    if matches!(kb.key_value, Some(KeyValue::Wrapped(_)) | None)
        || kb.key_wrapping_data.is_some()
        || !readable(kb.key_format_type)
    {
        return Ok(());
    }
    match object {
        kmip::model::Object::PrivateKey(_) => read_private(kb).map(|_| ()),
        kmip::model::Object::PublicKey(_) => read_public(kb).map(|_| ()),
        _ => Ok(()),
    }
}

/// The request's cryptographic parameters, completed field by field by the key's own
/// `CryptographicParameters` attribute.
pub fn parameters(
    request: Option<&kmip::model::CryptographicParameters>,
    key: &StoredObject,
) -> kmip::model::CryptographicParameters {
    let mut out = request.cloned().unwrap_or_default();
    if let Some(k) = key.attributes.cryptographic_parameters() {
        macro_rules! fill {
            ($($f:ident),*) => { $( if out.$f.is_none() { out.$f = k.$f.clone(); } )* };
        }
        fill!(
            block_cipher_mode,
            cryptographic_algorithm,
            padding_method,
            hashing_algorithm,
            digital_signature_algorithm,
            salt_length,
            mask_generator,
            mask_generator_hashing_algorithm,
            p_source
        );
    }
    out
}

/// The signature scheme of a Sign or SignatureVerify on a key of `kind`.
pub fn signature_scheme(
    kind: KeyKind,
    params: &kmip::model::CryptographicParameters,
) -> KResult<kms_crypto::asymmetric::SignatureScheme> {
    use kmip::{DigitalSignatureAlgorithm as D, HashingAlgorithm as H, PaddingMethod};
    use kms_crypto::asymmetric::SignatureScheme as S;
    let hash = |h: H| super::symmetric::hash_algorithm(h);
    let given_hash = params.hashing_algorithm.map(hash).transpose()?;
    let from_dsa = match params.digital_signature_algorithm {
        None => None,
        Some(D::SHA_1WithRSAEncryption) => Some((true, H::SHA_1)),
        Some(D::SHA_224WithRSAEncryption) => Some((true, H::SHA_224)),
        Some(D::SHA_256WithRSAEncryption) => Some((true, H::SHA_256)),
        Some(D::SHA_384WithRSAEncryption) => Some((true, H::SHA_384)),
        Some(D::SHA_512WithRSAEncryption) => Some((true, H::SHA_512)),
        Some(D::ECDSAWithSHA_1) => Some((false, H::SHA_1)),
        Some(D::ECDSAWithSHA224) => Some((false, H::SHA_224)),
        Some(D::ECDSAWithSHA256) => Some((false, H::SHA_256)),
        Some(D::ECDSAWithSHA384) => Some((false, H::SHA_384)),
        Some(D::ECDSAWithSHA512) => Some((false, H::SHA_512)),
        Some(D::RSASSA_PSS) => None,
        Some(other) => {
            return Err(KmsError::BadCryptographicParameters(format!(
                "the signature algorithm {other:?} is not supported"
            )));
        }
    };
    let salt = params
        .salt_length
        .map(|s| {
            u16::try_from(s).map_err(|_| {
                KmsError::BadCryptographicParameters(format!(
                    "SaltLength {s} is not a valid length"
                ))
            })
        })
        .transpose()?;
    Ok(match kind {
        KeyKind::Rsa => {
            let pkcs1 = matches!(from_dsa, Some((true, _)))
                || params.padding_method == Some(PaddingMethod::PKCS1V1_5);
            if params
                .padding_method
                .is_some_and(|p| !matches!(p, PaddingMethod::PKCS1V1_5 | PaddingMethod::PSS))
            {
                return Err(KmsError::BadCryptographicParameters(
                    "RSA signatures take the padding PSS or PKCS1v1_5".into(),
                ));
            }
            let hash = match (from_dsa, given_hash) {
                (Some((_, h)), _) => hash(h)?,
                (None, Some(h)) => h,
                (None, None) => kms_crypto::HashAlgorithm::Sha256,
            };
            if pkcs1 {
                S::RsaPkcs1v15(hash)
            } else {
                S::RsaPss { hash, salt }
            }
        }
        KeyKind::Ec(curve) => {
            let hash = match (from_dsa, given_hash) {
                (Some((_, h)), _) => hash(h)?,
                (None, Some(h)) => h,
                (None, None) => match curve {
                    kms_crypto::asymmetric::Curve::P384 => kms_crypto::HashAlgorithm::Sha384,
                    kms_crypto::asymmetric::Curve::P521 => kms_crypto::HashAlgorithm::Sha512,
                    _ => kms_crypto::HashAlgorithm::Sha256,
                },
            };
            S::Ecdsa(hash)
        }
        KeyKind::Ed25519 => S::Ed25519,
        KeyKind::MlDsa(_) => S::MlDsa,
        KeyKind::X25519 | KeyKind::MlKem(_) => {
            return Err(KmsError::InvalidRequest(format!(
                "{} keys do not sign; use an RSA, EC, Ed25519 or ML-DSA key",
                kind.name()
            )));
        }
    })
}

/// The OAEP hash the parameters name (SHA-256 unless told).
pub fn oaep_hash(
    params: &kmip::model::CryptographicParameters,
) -> KResult<kms_crypto::HashAlgorithm> {
    Ok(params
        .hashing_algorithm
        .map(super::symmetric::hash_algorithm)
        .transpose()?
        .unwrap_or(kms_crypto::HashAlgorithm::Sha256))
}

/// RSA encryption padding from the parameters: OAEP (SHA-256 unless told) or PKCS#1 v1.5.
pub fn rsa_encryption(
    params: &kmip::model::CryptographicParameters,
) -> KResult<kms_crypto::asymmetric::RsaEncryption<'_>> {
    use kmip::PaddingMethod;
    use kms_crypto::asymmetric::RsaEncryption;
    match params.padding_method {
        None | Some(PaddingMethod::OAEP) => {
            let hash = oaep_hash(params)?;
            let mgf1 = params
                .mask_generator_hashing_algorithm
                .map(super::symmetric::hash_algorithm)
                .transpose()?
                .unwrap_or(hash);
            Ok(RsaEncryption::Oaep {
                hash,
                mgf1,
                label: params.p_source.as_deref().unwrap_or(&[]),
            })
        }
        Some(PaddingMethod::PKCS1V1_5) => Ok(RsaEncryption::Pkcs1v15),
        Some(other) => Err(KmsError::BadCryptographicParameters(format!(
            "RSA encryption takes the padding OAEP or PKCS1v1_5, not {other:?}"
        ))),
    }
}

/// Fills the `CryptographicAlgorithm` and `CryptographicLength` of a registered private or
/// public key block that does not give them (PKCS#8 and X.509 keys say what they are).
pub fn complete(object: &mut kmip::model::Object) -> KResult<()> {
    let object_type = object.object_type();
    let Some(kb) = object.key_block_mut() else {
        return Ok(());
    };
    if kb.cryptographic_algorithm.is_some() && kb.cryptographic_length.is_some()
        || !matches!(
            object_type,
            kmip::ObjectType::PrivateKey | kmip::ObjectType::PublicKey
        )
        || !readable(kb.key_format_type)
        || !matches!(kb.key_value, Some(KeyValue::Plain(_)))
    {
        return Ok(());
    }
    let (kind, bits) = if object_type == kmip::ObjectType::PrivateKey {
        let (kind, der) = read_private(kb)?;
        let bits = match kind {
            KeyKind::Rsa => encoding::rsa_private_components(&der)?.modulus.len() * 8,
            other => other.fixed_bits().unwrap_or(0) as usize,
        };
        (kind, bits)
    } else {
        let (kind, der) = read_public(kb)?;
        let bits = match kind {
            KeyKind::Rsa => encoding::rsa_public_components(&der)?.0.len() * 8,
            other => other.fixed_bits().unwrap_or(0) as usize,
        };
        (kind, bits)
    };
    if kb.cryptographic_algorithm.is_none() {
        kb.cryptographic_algorithm = Some(algorithm_of(kind));
    }
    if kb.cryptographic_length.is_none() {
        kb.cryptographic_length = i32::try_from(bits).ok();
    }
    Ok(())
}

/// The hash a signature scheme applies before signing (`None`: it signs the message itself).
pub fn scheme_hash(
    scheme: kms_crypto::asymmetric::SignatureScheme,
) -> Option<kms_crypto::HashAlgorithm> {
    use kms_crypto::asymmetric::SignatureScheme as S;
    match scheme {
        S::RsaPkcs1v15(h) | S::RsaPss { hash: h, .. } | S::Ecdsa(h) => Some(h),
        S::Ed25519 | S::MlDsa => None,
    }
}

/// The private key of a stored PrivateKey object, parsed, from the server's key cache when an
/// earlier request parsed the same material (looked up by the digest of the stored bytes,
/// before any conversion).
pub fn loaded_private_key(
    kms: &crate::kms::Kms,
    stored: &StoredObject,
) -> KResult<std::sync::Arc<kms_crypto::asymmetric::LoadedPrivateKey>> {
    let kb = object_block(stored)?;
    let id = match &kb.key_value {
        Some(KeyValue::Plain(PlainKeyValue {
            key_material: KeyMaterial::Bytes(bytes),
            ..
        })) => {
            let mut tagged = Zeroizing::new(Vec::with_capacity(bytes.len() + 8));
            tagged.extend_from_slice(&(kb.key_format_type as u32).to_be_bytes());
            tagged.extend_from_slice(&kb.cryptographic_length.unwrap_or(0).to_be_bytes());
            tagged.extend_from_slice(bytes);
            kms_crypto::sha256(&tagged)
        }
        _ => {
            let (kind, der) = private_key(stored)?;
            return Ok(kms.key_cache.private(kind, &der));
        }
    };
    kms.key_cache.get_or_load(id, || {
        let (kind, der) = private_key(stored)?;
        Ok(kms_crypto::asymmetric::LoadedPrivateKey::new(kind, &der))
    })
}
