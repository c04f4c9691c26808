//! Encrypt with a symmetric key or a public key.

use kmip::State;
use kmip::model::{Encrypt, EncryptResponse};

use super::{
    asymmetric, consume_usage, key_bytes, require_state, require_usage, require_usage_period,
    symmetric, usage,
};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn encrypt(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Encrypt,
) -> KResult<EncryptResponse> {
    let mut request = request;
    // An empty IV is no IV (Cosmian's clients send one for ciphers without IV).
    if request.iv_counter_nonce.as_ref().is_some_and(Vec::is_empty) {
        request.iv_counter_nonce = None;
    }
    let key = kms
        .load_shared(ctx, request.unique_identifier.take())
        .await?;
    require_state(
        &key,
        &[State::Active],
        "only an active key can encrypt; activate it first",
    )?;
    require_usage(&key, usage::ENCRYPT, "encrypt")?;
    require_usage_period(&key, true)?;
    if key.object_type == kmip::ObjectType::PublicKey {
        return public_key_encrypt(kms, ctx, &key, request).await;
    }
    let (choice, binding) =
        symmetric::choose_bound(&key, request.cryptographic_parameters.as_ref())?;
    if super::streamed_crypt::is_streamed(
        request.init_indicator,
        request.correlation_value.as_ref(),
    ) {
        let answer = super::streamed_crypt::encrypt_part(kms, ctx, &key, &choice, request)?;
        symmetric::record_binding(kms, ctx, &key.uid, choice.cipher, binding).await?;
        return Ok(answer);
    }
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("Encrypt needs Data".into()))?;
    if request.iv_counter_nonce.is_none() && !choice.random_iv {
        return Err(KmsError::MissingData(
            "RandomIV is false: give the IVCounterNonce".into(),
        ));
    }
    let out = kms_crypto::encrypt_with(
        &kms_crypto::EncryptRequest {
            cipher: choice.cipher,
            key: key_bytes(&key)?,
            iv: request.iv_counter_nonce.as_deref(),
            aad: request
                .authenticated_encryption_additional_data
                .as_deref()
                .unwrap_or(&[]),
            plaintext: &data,
            tag_length: choice.tag_length,
            padding: choice.padding,
        },
        &key.schedules,
    )?;
    symmetric::record_binding(kms, ctx, &key.uid, choice.cipher, binding).await?;
    // Counted only once the data is encrypted: a request that fails uses nothing up.
    if key.attributes.usage_limits().is_some() {
        consume_usage(kms, ctx, &key.uid, data.len()).await?;
    }
    // The IV is returned only when the server chose it, as KMIP specifies.
    let iv = if request.iv_counter_nonce.is_none() {
        out.iv
    } else {
        None
    };
    Ok(EncryptResponse {
        unique_identifier: key.uid.clone().into(),
        data: Some(out.ciphertext),
        iv_counter_nonce: iv,
        correlation_value: None,
        authenticated_encryption_tag: out.tag,
    })
}

/// Encryption with a public key: RSA (OAEP, PKCS#1 v1.5, RSA-AES key wrap), EC and X25519
/// (ECIES), ML-KEM.
async fn public_key_encrypt(
    kms: &Kms,
    ctx: &mut RequestContext,
    key: &kms_store::StoredObject,
    request: Encrypt,
) -> KResult<EncryptResponse> {
    let (kind, public) = asymmetric::public_key(key)?;
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("Encrypt needs Data".into()))?;
    let params = asymmetric::parameters(request.cryptographic_parameters.as_ref(), key);
    let aad = request
        .authenticated_encryption_additional_data
        .as_deref()
        .unwrap_or(&[]);
    let ciphertext = match kind {
        // CKM_RSA_AES_KEY_WRAP when the parameters name AES.
        kms_crypto::asymmetric::KeyKind::Rsa
            if params.cryptographic_algorithm == Some(kmip::CryptographicAlgorithm::AES) =>
        {
            let hash = asymmetric::oaep_hash(&params)?;
            kms_crypto::asymmetric::rsa_aes_key_wrap(&public, hash, &data)?
        }
        kms_crypto::asymmetric::KeyKind::Rsa => kms_crypto::asymmetric::rsa_encrypt(
            &public,
            asymmetric::rsa_encryption(&params)?,
            &data,
        )?,
        // ECIES and ML-KEM: a key encapsulation, then AES-256-GCM (docs/adr/0004).
        other => kms_crypto::asymmetric::hybrid_encrypt(other, &public, &data, aad)?,
    };
    if key.attributes.usage_limits().is_some() {
        consume_usage(kms, ctx, &key.uid, data.len()).await?;
    }
    Ok(EncryptResponse {
        unique_identifier: key.uid.clone().into(),
        data: Some(ciphertext),
        iv_counter_nonce: None,
        correlation_value: None,
        authenticated_encryption_tag: None,
    })
}
