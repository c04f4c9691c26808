//! MAC: HMAC of data under a key.

use kmip::State;
use kmip::model::{Mac, MacResponse};
use kms_store::StoredObject;

use super::{
    consume_usage, key_bytes, require_state, require_usage, require_usage_period, symmetric, usage,
};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn mac(kms: &Kms, ctx: &mut RequestContext, request: Mac) -> KResult<MacResponse> {
    let key = kms.load_shared(ctx, request.unique_identifier).await?;
    require_state(
        &key,
        &[State::Active],
        "only an active key can compute a MAC",
    )?;
    require_usage(&key, usage::MAC_GENERATE, "generate a MAC")?;
    require_usage_period(&key, true)?;
    let hash = mac_hash(&key, request.cryptographic_parameters.as_ref())?;
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("MAC needs Data".into()))?;
    let mac = kms_crypto::hmac(hash, key_bytes(&key)?, &data)?;
    // Counted only once the MAC is computed: a request that fails uses nothing up.
    if key.attributes.usage_limits().is_some() {
        consume_usage(kms, ctx, &key.uid, data.len()).await?;
    }
    Ok(MacResponse {
        unique_identifier: key.uid.clone().into(),
        mac_data: Some(mac),
        correlation_value: None,
    })
}

/// The HMAC hash: from the parameters' algorithm or hashing algorithm, else the key's algorithm.
pub fn mac_hash(
    key: &StoredObject,
    params: Option<&kmip::model::CryptographicParameters>,
) -> KResult<kms_crypto::HashAlgorithm> {
    // What the request leaves out, the key's own CryptographicParameters attribute says.
    let params = Some(super::asymmetric::parameters(params, key));
    let params = params.as_ref();
    let asked = match params
        .and_then(|p| p.cryptographic_algorithm)
        .and_then(symmetric::hmac_hash)
    {
        Some(h) => Some(h),
        None => params
            .and_then(|p| p.hashing_algorithm)
            .map(symmetric::hash_algorithm)
            .transpose()?,
    };
    // An HMAC key's hash is fixed by its algorithm: a request cannot use it with another.
    if let Some(fixed) = key
        .attributes
        .cryptographic_algorithm()
        .and_then(symmetric::hmac_hash)
    {
        return match asked {
            Some(h) if h != fixed => Err(KmsError::ModeNotAllowed {
                uid: key.uid.clone(),
                bound: format!("HMAC-{fixed}"),
                asked: format!("HMAC-{h}"),
            }),
            _ => Ok(fixed),
        };
    }
    if let Some(h) = asked {
        return Ok(h);
    }
    key.attributes.cryptographic_algorithm().and_then(symmetric::hmac_hash).ok_or_else(|| {
        KmsError::BadCryptographicParameters(
            "say which HMAC to compute: give CryptographicParameters with HMAC_SHA256 (or 384, 512) or a HashingAlgorithm"
                .into(),
        )
    })
}
