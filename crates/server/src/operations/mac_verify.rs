//! MACVerify: checks an HMAC in constant time.

use kmip::model::{MacVerify, MacVerifyResponse};
use kmip::{State, ValidityIndicator};

use super::mac::mac_hash;
use super::{key_bytes, require_state, require_usage, require_usage_period, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn mac_verify(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: MacVerify,
) -> KResult<MacVerifyResponse> {
    let key = kms.load_shared(ctx, request.unique_identifier).await?;
    require_state(
        &key,
        &[State::Active, State::Deactivated, State::Compromised],
        "a pre-active key cannot verify",
    )?;
    require_usage(&key, usage::MAC_VERIFY, "verify a MAC")?;
    require_usage_period(&key, false)?;
    let hash = mac_hash(&key, request.cryptographic_parameters.as_ref())?;
    let data = request
        .data
        .ok_or_else(|| KmsError::MissingData("MACVerify needs Data".into()))?;
    let mac = request
        .mac_data
        .ok_or_else(|| KmsError::MissingData("MACVerify needs MACData".into()))?;
    let valid = kms_crypto::hmac_verify(hash, key_bytes(&key)?, &data, &mac)?;
    Ok(MacVerifyResponse {
        unique_identifier: key.uid.clone().into(),
        validity_indicator: if valid {
            ValidityIndicator::Valid
        } else {
            ValidityIndicator::Invalid
        },
        correlation_value: None,
    })
}
