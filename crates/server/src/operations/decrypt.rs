//! Decrypt with a symmetric key or a private key.

use kmip::State;
use kmip::model::{Decrypt, DecryptResponse};

use super::{
    asymmetric, key_bytes, require_state, require_usage, require_usage_period, symmetric, usage,
};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn decrypt(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Decrypt,
) -> KResult<DecryptResponse> {
    let mut request = request;
    let key = kms
        .load_shared(ctx, request.unique_identifier.take())
        .await?;
    // Decryption stays possible after deactivation or compromise, to recover protected data.
    require_state(
        &key,
        &[State::Active, State::Deactivated, State::Compromised],
        "a pre-active key cannot decrypt; activate it first",
    )?;
    require_usage(&key, usage::DECRYPT, "decrypt")?;
    require_usage_period(&key, false)?;
    if key.object_type == kmip::ObjectType::PrivateKey {
        return private_key_decrypt(kms, &key, request);
    }
    let (choice, binding) =
        symmetric::choose_bound(&key, request.cryptographic_parameters.as_ref())?;
    if super::streamed_crypt::is_streamed(
        request.init_indicator,
        request.correlation_value.as_ref(),
    ) {
        let answer = super::streamed_crypt::decrypt_part(kms, ctx, &key, &choice, request)?;
        symmetric::record_binding(kms, ctx, &key.uid, choice.cipher, binding).await?;
        return Ok(answer);
    }
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("Decrypt needs Data".into()))?;
    // Cosmian's clients send empty IV and tag fields for ciphers without them (key wrap).
    let plaintext = kms_crypto::decrypt_with(
        &kms_crypto::DecryptRequest {
            cipher: choice.cipher,
            key: key_bytes(&key)?,
            iv: given(&request.iv_counter_nonce),
            aad: request
                .authenticated_encryption_additional_data
                .as_deref()
                .unwrap_or(&[]),
            ciphertext: &data,
            tag: given(&request.authenticated_encryption_tag),
            padding: choice.padding,
        },
        &key.schedules,
    )?;
    symmetric::record_binding(kms, ctx, &key.uid, choice.cipher, binding).await?;
    Ok(DecryptResponse {
        unique_identifier: key.uid.clone().into(),
        data: Some(plaintext.to_vec()),
        correlation_value: None,
    })
}

/// A byte field's value, an empty one counting as absent.
fn given(field: &Option<Vec<u8>>) -> Option<&[u8]> {
    field.as_deref().filter(|v| !v.is_empty())
}

/// Decryption with a private key: RSA (OAEP, PKCS#1 v1.5, RSA-AES key wrap), EC and X25519
/// (ECIES), ML-KEM.
fn private_key_decrypt(
    kms: &Kms,
    key: &kms_store::StoredObject,
    request: Decrypt,
) -> KResult<DecryptResponse> {
    let loaded = asymmetric::loaded_private_key(kms, key)?;
    let (kind, private) = (loaded.kind(), loaded.der());
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("Decrypt needs Data".into()))?;
    let params = asymmetric::parameters(request.cryptographic_parameters.as_ref(), key);
    let aad = request
        .authenticated_encryption_additional_data
        .as_deref()
        .unwrap_or(&[]);
    let plaintext = match kind {
        kms_crypto::asymmetric::KeyKind::Rsa
            if params.cryptographic_algorithm == Some(kmip::CryptographicAlgorithm::AES) =>
        {
            let hash = asymmetric::oaep_hash(&params)?;
            kms_crypto::asymmetric::rsa_aes_key_unwrap(private, hash, &data)?
        }
        kms_crypto::asymmetric::KeyKind::Rsa => {
            let padding = asymmetric::rsa_encryption(&params)?;
            match padding {
                // The paddings the library has use the parsed key kept between requests.
                kms_crypto::asymmetric::RsaEncryption::Oaep { hash, mgf1, .. }
                    if hash != mgf1 || hash == kms_crypto::HashAlgorithm::Sha224 =>
                {
                    kms_crypto::asymmetric::rsa_decrypt(private, padding, &data)?
                }
                _ => loaded.rsa_decrypt(padding, &data)?,
            }
        }
        other => kms_crypto::asymmetric::hybrid_decrypt(other, private, &data, aad)?,
    };
    Ok(DecryptResponse {
        unique_identifier: key.uid.clone().into(),
        data: Some(plaintext.to_vec()),
        correlation_value: None,
    })
}
