//! DeriveKey: a symmetric key or secret data derived from a base key or secret the caller may
//! use (its usage mask allowing DeriveKey): PBKDF2, HKDF, NIST SP 800-108 counter mode (HMAC),
//! HMAC of the derivation data, or encryption of the derivation data (KMIP 2.1 §6.1.12).

use kmip::model::{
    Attribute, CryptographicParameters, DeriveKey, Item, Link, Object, SecretData, UidResponse,
};
use kmip::{DerivationMethod, LinkType, ObjectType, SecretDataType, State, Tag};
use zeroize::Zeroizing;

use super::{insert, key_bytes, new_stored_object, new_uid, require_state, require_usage, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// PBKDF2 iterations above this are refused: one request must not hold a core for seconds.
const MAX_ITERATIONS: u32 = 1_000_000;

pub async fn derive_key(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: DeriveKey,
) -> KResult<UidResponse> {
    super::require_may_create(ctx)?;
    if !matches!(
        request.object_type,
        ObjectType::SymmetricKey | ObjectType::SecretData
    ) {
        return Err(KmsError::InvalidRequest(format!(
            "DeriveKey makes a SymmetricKey or SecretData, not a {:?}",
            request.object_type
        )));
    }
    let [base] = request.unique_identifier.as_slice() else {
        return Err(KmsError::InvalidRequest(format!(
            "DeriveKey takes exactly one base object here, {} given",
            request.unique_identifier.len()
        )));
    };
    let base = kms.load(ctx, Some(base.clone())).await?;
    require_state(
        &base,
        &[State::Active],
        "only an active object can derive keys; activate it first",
    )?;
    require_usage(&base, usage::DERIVE_KEY, "derive keys")?;
    let secret = key_bytes(&base)?;

    let p = &request.derivation_parameters;
    let field = |tag: Tag| p.child(tag).and_then(|t| t.as_bytes().ok());
    let params = p
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .map(CryptographicParameters::from_ttlv)
        .transpose()?;
    let data = field(Tag::DERIVATION_DATA).unwrap_or_default();
    let hash = params
        .as_ref()
        .and_then(|c| {
            c.hashing_algorithm
                .map(super::symmetric::hash_algorithm)
                .or_else(|| {
                    c.cryptographic_algorithm
                        .and_then(super::symmetric::hmac_hash)
                        .map(Ok)
                })
        })
        .transpose()?
        .unwrap_or(kms_crypto::HashAlgorithm::Sha256);

    let mut attributes = request.attributes;
    let bits = match (request.object_type, attributes.cryptographic_length()) {
        (_, Some(bits)) => bits,
        (ObjectType::SecretData, None) => 256,
        (_, None) => {
            return Err(KmsError::MissingData(
                "DeriveKey needs the CryptographicLength of the key to derive".into(),
            ));
        }
    };
    if bits <= 0 || bits % 8 != 0 {
        return Err(KmsError::InvalidRequest(format!(
            "CryptographicLength {bits} is not a whole number of bytes"
        )));
    }
    let length = (bits / 8) as usize;

    let derived: Zeroizing<Vec<u8>> = match request.derivation_method {
        DerivationMethod::PBKDF2 => {
            let salt = field(Tag::SALT).ok_or_else(|| {
                KmsError::MissingData("PBKDF2 needs a Salt in the DerivationParameters".into())
            })?;
            let iterations = p
                .child(Tag::ITERATION_COUNT)
                .and_then(|t| t.as_i32().ok())
                .ok_or_else(|| {
                    KmsError::MissingData(
                        "PBKDF2 needs an IterationCount in the DerivationParameters".into(),
                    )
                })?;
            let iterations = u32::try_from(iterations).unwrap_or(0);
            if iterations > MAX_ITERATIONS {
                return Err(KmsError::InvalidRequest(format!(
                    "IterationCount {iterations} is above this server's limit of {MAX_ITERATIONS}"
                )));
            }
            kms_crypto::pbkdf2(hash, secret, salt, iterations, length)?
        }
        DerivationMethod::HKDF => kms_crypto::hkdf(
            hash,
            secret,
            field(Tag::SALT).unwrap_or_default(),
            data,
            length,
        )?,
        DerivationMethod::NIST800_108_C => {
            kms_crypto::kdf_counter_hmac(hash, secret, data, length)?
        }
        DerivationMethod::HMAC => {
            let mac = Zeroizing::new(kms_crypto::hmac(hash, secret, data)?);
            truncated(mac, length, "HMAC")?
        }
        DerivationMethod::ENCRYPT => {
            let (choice, _) = super::symmetric::choose_bound(&base, params.as_ref())?;
            let out = kms_crypto::encrypt(&kms_crypto::EncryptRequest {
                cipher: choice.cipher,
                key: secret,
                iv: field(Tag::INITIALIZATION_VECTOR),
                aad: &[],
                plaintext: data,
                tag_length: choice.tag_length,
                padding: choice.padding,
            })?;
            truncated(Zeroizing::new(out.ciphertext), length, "the encryption")?
        }
        other => {
            return Err(KmsError::FeatureNotSupported(format!(
                "the derivation method {other:?}; use PBKDF2, HKDF, NIST800_108_C, HMAC or ENCRYPT"
            )));
        }
    };

    let object = match request.object_type {
        ObjectType::SecretData => {
            attributes.remove(Tag::CRYPTOGRAPHIC_LENGTH);
            Object::secret_data(SecretDataType::Seed, derived.to_vec())
        }
        _ => {
            let algorithm = attributes.cryptographic_algorithm().ok_or_else(|| {
                KmsError::MissingData(
                    "DeriveKey needs the CryptographicAlgorithm of the key to derive".into(),
                )
            })?;
            Object::symmetric_key(algorithm, bits, derived.to_vec())
        }
    };
    if attributes.cryptographic_usage_mask().is_none() {
        let default = match object {
            Object::SecretData(SecretData { .. }) => usage::DERIVE_KEY,
            _ => usage::ENCRYPT | usage::DECRYPT | usage::WRAP_KEY | usage::UNWRAP_KEY,
        };
        attributes.set(Attribute::CryptographicUsageMask(default));
    }
    attributes.0.push(Attribute::Link(Link {
        link_type: LinkType::DerivationBaseObjectLink,
        linked_object_identifier: base.uid.clone().into(),
    }));
    let uid = new_uid(&attributes)?;
    let stored = new_stored_object(ctx, uid, object, attributes, State::PreActive)?;
    let uid = insert(kms, ctx, stored).await?;
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}

fn truncated(
    mut bytes: Zeroizing<Vec<u8>>,
    length: usize,
    what: &str,
) -> KResult<Zeroizing<Vec<u8>>> {
    if bytes.len() < length {
        return Err(KmsError::InvalidRequest(format!(
            "{what} gives {} bytes, fewer than the {length} asked for; ask for a shorter key",
            bytes.len()
        )));
    }
    bytes.truncate(length);
    Ok(bytes)
}
