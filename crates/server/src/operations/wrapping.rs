//! Key wrapping (KMIP `KeyWrappingSpecification` / `KeyWrappingData`): a key served wrapped by
//! another key the caller may use (Get, Export), and a wrapped key unwrapped on Import.
//!
//! Wrapping keys: AES keys (AES-KW, RFC 3394; AES-KWP, RFC 5649, the default; AES-GCM), RSA
//! public keys (RSA-OAEP, the default; RSA-AES key wrap, CKM_RSA_AES_KEY_WRAP, when the
//! parameters name AES), and EC, X25519 and ML-KEM public keys (docs/adr/0004). Only the `Encrypt` wrapping method is offered. What is wrapped is the
//! key material itself (`NoEncoding`) or the TTLV-encoded `KeyValue` (`TTLVEncoding`, the
//! default KMIP gives).

use kmip::model::{
    CryptographicParameters, Item, KeyBlock, KeyMaterial, KeyValue, Object, PlainKeyValue,
    UniqueIdentifier,
};
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, EncodingOption, KmipEnum, ObjectType, Operation,
    State, Tag, Ttlv, Value, WrappingMethod,
};
use kms_store::StoredObject;
use zeroize::Zeroizing;

use super::{asymmetric, key_bytes, require_state, require_usage, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// A parsed `KeyWrappingSpecification` or `KeyWrappingData`.
struct Wrapping {
    key: UniqueIdentifier,
    parameters: Option<CryptographicParameters>,
    encoding: EncodingOption,
    iv: Option<Vec<u8>>,
}

fn parse(item: &Ttlv, what: &str) -> KResult<Wrapping> {
    let bad = |m: String| KmsError::InvalidRequest(format!("{what}: {m}"));
    let method = item
        .child(Tag::WRAPPING_METHOD)
        .and_then(|m| m.as_enum().ok())
        .ok_or_else(|| bad("it needs a WrappingMethod".into()))?;
    if method != WrappingMethod::Encrypt as u32 {
        return Err(KmsError::WrappingNotSupported(
            "wrapping methods other than Encrypt (MAC/sign, TR-31)",
        ));
    }
    if item.child(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(KmsError::WrappingNotSupported(
            "a MACSignatureKeyInformation (wrapping by MAC or signature)",
        ));
    }
    if item.child(Tag::ATTRIBUTE_NAME).is_some() {
        return Err(KmsError::WrappingNotSupported(
            "wrapping attributes with the key (AttributeName)",
        ));
    }
    let info = item.child(Tag::ENCRYPTION_KEY_INFORMATION).ok_or_else(|| {
        bad("it needs an EncryptionKeyInformation naming the wrapping key".into())
    })?;
    let key = info
        .child(Tag::UNIQUE_IDENTIFIER)
        .map(UniqueIdentifier::from_ttlv)
        .transpose()?
        .ok_or_else(|| {
            bad("the EncryptionKeyInformation needs the wrapping key's UniqueIdentifier".into())
        })?;
    let parameters = info
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .map(CryptographicParameters::from_ttlv)
        .transpose()?;
    let encoding = match item
        .child(Tag::ENCODING_OPTION)
        .and_then(|e| e.as_enum().ok())
    {
        None => EncodingOption::TTLVEncoding,
        Some(v) => {
            EncodingOption::from_u32(v).ok_or_else(|| bad(format!("unknown EncodingOption {v}")))?
        }
    };
    let iv = item
        .child(Tag::IV_COUNTER_NONCE)
        .and_then(|v| v.as_bytes().ok())
        .map(<[u8]>::to_vec);
    Ok(Wrapping {
        key,
        parameters,
        encoding,
        iv,
    })
}

/// Loads the wrapping (or unwrapping) key with the caller's right for `as_operation`.
async fn load_key(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: &UniqueIdentifier,
    as_operation: Operation,
    wrapped_uid: &str,
) -> KResult<StoredObject> {
    let operation = ctx.operation.replace(as_operation);
    let loaded = kms.load(ctx, Some(uid.clone())).await;
    ctx.operation = operation;
    let key = loaded?;
    if key.uid == wrapped_uid {
        return Err(KmsError::InvalidRequest(format!(
            "object `{wrapped_uid}` cannot wrap itself: name another key"
        )));
    }
    Ok(key)
}

/// The plaintext to wrap: the key material or the TTLV-encoded key value.
fn plaintext(kb: &KeyBlock, encoding: EncodingOption) -> KResult<Zeroizing<Vec<u8>>> {
    let Some(KeyValue::Plain(value)) = &kb.key_value else {
        return Err(KmsError::InvalidRequest(
            "the key is already wrapped; ask for it as registered (KeyWrapType AsRegistered)"
                .into(),
        ));
    };
    Ok(Zeroizing::new(match encoding {
        EncodingOption::TTLVEncoding => kmip::binary::encode(&value.to_ttlv(Tag::KEY_VALUE)),
        EncodingOption::NoEncoding => match &value.key_material {
            KeyMaterial::Bytes(b) => b.clone(),
            KeyMaterial::Structure(_) => {
                return Err(KmsError::InvalidRequest(
                    "a transparent key has no bytes to wrap without encoding: ask for TTLVEncoding or another KeyFormatType".into(),
                ));
            }
        },
    }))
}

/// Wraps the key block of `object` (served as `uid`) as `spec` says. Never leaves the key in
/// the clear: any failure is an error.
pub async fn wrap(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: &str,
    object: &mut Object,
    spec: &Ttlv,
) -> KResult<()> {
    let wrapping = parse(spec, "KeyWrappingSpecification")?;
    let kek = load_key(kms, ctx, &wrapping.key, Operation::Encrypt, uid).await?;
    require_state(
        &kek,
        &[State::Active],
        "only an active key can wrap; activate it first",
    )?;
    require_usage(&kek, usage::WRAP_KEY, "wrap keys")?;
    let kb = object.key_block_mut().ok_or_else(|| {
        KmsError::InvalidRequest(format!("object `{uid}` is not a key and cannot be wrapped"))
    })?;
    let data = plaintext(kb, wrapping.encoding)?;
    let params = asymmetric::parameters(wrapping.parameters.as_ref(), &kek);
    let mut iv = None;
    let wrapped = match kek.object_type {
        ObjectType::SymmetricKey => {
            let kek_bytes = key_bytes(&kek)?;
            match params.block_cipher_mode {
                Some(BlockCipherMode::NISTKeyWrap) => {
                    kms_crypto::aes_key_wrap_unpadded(kek_bytes, &data)?
                }
                None | Some(BlockCipherMode::AESKeyWrapPadding) => {
                    kms_crypto::aes_key_wrap(kek_bytes, &data)?
                }
                Some(BlockCipherMode::GCM) => {
                    let out = kms_crypto::encrypt(&kms_crypto::EncryptRequest::new(
                        kms_crypto::SymmetricCipher::AesGcm,
                        kek_bytes,
                        &data,
                    ))?;
                    iv = out.iv;
                    let mut c = out.ciphertext;
                    c.extend(out.tag.unwrap_or_default());
                    c
                }
                Some(other) => {
                    return Err(KmsError::BadCryptographicParameters(format!(
                        "an AES key wraps with NISTKeyWrap, AESKeyWrapPadding or GCM, not {other:?}"
                    )));
                }
            }
        }
        ObjectType::PublicKey => {
            let (kind, public) = asymmetric::public_key(&kek)?;
            if kind != kms_crypto::asymmetric::KeyKind::Rsa {
                // ECIES / ML-KEM (docs/adr/0004).
                kms_crypto::asymmetric::hybrid_encrypt(kind, &public, &data, &[])?
            } else if params.cryptographic_algorithm == Some(CryptographicAlgorithm::AES) {
                let hash = asymmetric::oaep_hash(&params)?;
                kms_crypto::asymmetric::rsa_aes_key_wrap(&public, hash, &data)?
            } else {
                kms_crypto::asymmetric::rsa_encrypt(
                    &public,
                    asymmetric::rsa_encryption(&params)?,
                    &data,
                )?
            }
        }
        other => {
            return Err(KmsError::InvalidRequest(format!(
                "object `{}` is a {other:?}: wrap with an AES key or an RSA public key",
                kek.uid
            )));
        }
    };
    let mut info = vec![Ttlv::new(
        Tag::UNIQUE_IDENTIFIER,
        Value::TextString(kek.uid.clone()),
    )];
    if let Some(p) = &wrapping.parameters {
        info.push(p.to_ttlv(Tag::CRYPTOGRAPHIC_PARAMETERS));
    }
    let mut data_items = vec![
        Ttlv::new(
            Tag::WRAPPING_METHOD,
            Value::Enumeration(WrappingMethod::Encrypt as u32),
        ),
        Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, info),
    ];
    if let Some(iv) = iv {
        data_items.push(Ttlv::new(Tag::IV_COUNTER_NONCE, Value::ByteString(iv)));
    }
    if spec.child(Tag::ENCODING_OPTION).is_some() {
        data_items.push(Ttlv::new(
            Tag::ENCODING_OPTION,
            Value::Enumeration(wrapping.encoding as u32),
        ));
    }
    kb.key_value = Some(KeyValue::Wrapped(wrapped));
    kb.key_wrapping_data = Some(Ttlv::structure(Tag::KEY_WRAPPING_DATA, data_items));
    Ok(())
}

/// Whether the object's key block is wrapped.
pub fn is_wrapped(object: &Object) -> bool {
    object.key_block().is_some_and(|kb| {
        kb.key_wrapping_data.is_some() || matches!(kb.key_value, Some(KeyValue::Wrapped(_)))
    })
}

/// Unwraps the key block of `object` in place with the key its `KeyWrappingData` names.
pub async fn unwrap(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: &str,
    object: &mut Object,
) -> KResult<()> {
    let kb = object
        .key_block_mut()
        .ok_or_else(|| KmsError::InvalidRequest("only keys can be unwrapped".into()))?;
    let data = kb.key_wrapping_data.clone().ok_or_else(|| {
        KmsError::InvalidRequest("the key has no KeyWrappingData: it is not wrapped".into())
    })?;
    let wrapping = parse(&data, "KeyWrappingData")?;
    let Some(KeyValue::Wrapped(wrapped)) = &kb.key_value else {
        return Err(KmsError::InvalidRequest(
            "a wrapped key's KeyValue must be the wrapped bytes".into(),
        ));
    };
    let mut kek = load_key(kms, ctx, &wrapping.key, Operation::Decrypt, uid).await?;
    // Wrapped for a public key (as the KeyWrappingData names it): unwrapped by its private key.
    if kek.object_type == ObjectType::PublicKey {
        let private = kek
            .attributes
            .links()
            .find(|l| l.link_type == kmip::LinkType::PrivateKeyLink)
            .map(|l| l.linked_object_identifier.clone())
            .ok_or_else(|| {
                KmsError::InvalidRequest(format!(
                    "the key was wrapped for public key `{}`, which has no PrivateKeyLink: import it with the private key named in the KeyWrappingData",
                    kek.uid
                ))
            })?;
        kek = load_key(kms, ctx, &private, Operation::Decrypt, uid).await?;
    }
    require_state(
        &kek,
        &[State::Active, State::Deactivated, State::Compromised],
        "a pre-active key cannot unwrap; activate it first",
    )?;
    require_usage(&kek, usage::UNWRAP_KEY, "unwrap keys")?;
    let params = asymmetric::parameters(wrapping.parameters.as_ref(), &kek);
    let plain = match kek.object_type {
        ObjectType::SymmetricKey => {
            let kek_bytes = key_bytes(&kek)?;
            match params.block_cipher_mode {
                Some(BlockCipherMode::NISTKeyWrap) => {
                    kms_crypto::aes_key_unwrap_unpadded(kek_bytes, wrapped)?
                }
                None | Some(BlockCipherMode::AESKeyWrapPadding) => {
                    kms_crypto::aes_key_unwrap(kek_bytes, wrapped)?
                }
                Some(BlockCipherMode::GCM) => {
                    if wrapped.len() < 16 {
                        return Err(KmsError::DecryptionFailed);
                    }
                    let (ciphertext, tag) = wrapped.split_at(wrapped.len() - 16);
                    kms_crypto::decrypt(&kms_crypto::DecryptRequest {
                        iv: wrapping.iv.as_deref(),
                        tag: Some(tag),
                        ..kms_crypto::DecryptRequest::new(
                            kms_crypto::SymmetricCipher::AesGcm,
                            kek_bytes,
                            ciphertext,
                        )
                    })?
                }
                Some(other) => {
                    return Err(KmsError::BadCryptographicParameters(format!(
                        "an AES key unwraps with NISTKeyWrap, AESKeyWrapPadding or GCM, not {other:?}"
                    )));
                }
            }
        }
        ObjectType::PrivateKey => {
            let (kind, private) = asymmetric::private_key(&kek)?;
            if kind != kms_crypto::asymmetric::KeyKind::Rsa {
                kms_crypto::asymmetric::hybrid_decrypt(kind, &private, wrapped, &[])?
            } else if params.cryptographic_algorithm == Some(CryptographicAlgorithm::AES) {
                kms_crypto::asymmetric::rsa_aes_key_unwrap(
                    &private,
                    asymmetric::oaep_hash(&params)?,
                    wrapped,
                )?
            } else {
                kms_crypto::asymmetric::rsa_decrypt(
                    &private,
                    asymmetric::rsa_encryption(&params)?,
                    wrapped,
                )?
            }
        }
        other => {
            return Err(KmsError::InvalidRequest(format!(
                "object `{}` is a {other:?}: unwrap with an AES key or an RSA private key",
                kek.uid
            )));
        }
    };
    let value = match wrapping.encoding {
        EncodingOption::NoEncoding => PlainKeyValue {
            key_material: KeyMaterial::Bytes(plain.to_vec()),
            attributes: None,
            attribute: vec![],
        },
        EncodingOption::TTLVEncoding => {
            let tree = kmip::binary::decode(&plain, &kmip::binary::Limits::default()).map_err(|_| {
                KmsError::InvalidRequest(
                    "the unwrapped data is not a TTLV-encoded KeyValue: was the key wrapped with NoEncoding? say so in the KeyWrappingData".into(),
                )
            })?;
            PlainKeyValue::from_ttlv(&tree)?
        }
    };
    kb.key_value = Some(KeyValue::Plain(value));
    kb.key_wrapping_data = None;
    Ok(())
}
