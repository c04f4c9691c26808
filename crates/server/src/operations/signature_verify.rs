//! SignatureVerify: whether a signature of data (or of its digest) is valid for a public key.

use kmip::model::{SignatureVerify, SignatureVerifyResponse};
use kmip::{State, ValidityIndicator};
use kms_crypto::asymmetric::Message;

use super::asymmetric::{parameters, public_key, signature_scheme};
use super::{require_state, require_usage, require_usage_period, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn signature_verify(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: SignatureVerify,
) -> KResult<SignatureVerifyResponse> {
    if request.init_indicator.is_some()
        || request.final_indicator.is_some()
        || request.correlation_value.is_some()
    {
        return Err(KmsError::FeatureNotSupported(
            "streamed verification (InitIndicator, FinalIndicator, CorrelationValue); send the whole data, or its digest as DigestedData".into(),
        ));
    }
    let key = kms.load(ctx, request.unique_identifier).await?;
    // Verification stays possible after deactivation or compromise, to check old signatures.
    require_state(
        &key,
        &[State::Active, State::Deactivated, State::Compromised],
        "a pre-active key cannot verify; activate it first",
    )?;
    require_usage(&key, usage::VERIFY, "verify")?;
    require_usage_period(&key, false)?;
    let (kind, public) = public_key(&key)?;
    let params = parameters(request.cryptographic_parameters.as_ref(), &key);
    let scheme = signature_scheme(kind, &params)?;
    let signature = request
        .signature_data
        .ok_or_else(|| KmsError::MissingData("SignatureVerify needs SignatureData".into()))?;
    let message = match (&request.data, &request.digested_data) {
        (Some(data), None) => Message::Data(data),
        (None, Some(digest)) => Message::Digest(digest),
        (Some(_), Some(_)) => {
            return Err(KmsError::InvalidRequest(
                "give either Data or DigestedData, not both".into(),
            ));
        }
        (None, None) => {
            return Err(KmsError::MissingData(
                "SignatureVerify needs Data or DigestedData".into(),
            ));
        }
    };
    let valid = kms_crypto::asymmetric::verify(kind, &public, scheme, message, &signature)?;
    Ok(SignatureVerifyResponse {
        unique_identifier: key.uid.into(),
        validity_indicator: if valid {
            ValidityIndicator::Valid
        } else {
            ValidityIndicator::Invalid
        },
        data: None,
        correlation_value: None,
    })
}
