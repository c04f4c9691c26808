//! SignatureVerify: whether a signature of data (or of its digest) is valid for a public key,
//! in one request or streamed in parts (the signature comes with the final part).

use kmip::model::{SignatureVerify, SignatureVerifyResponse};
use kmip::{Operation, State, ValidityIndicator};
use kms_crypto::asymmetric::Message;

use super::asymmetric::{parameters, public_key, scheme_hash, signature_scheme};
use super::{require_state, require_usage, require_usage_period, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};
use crate::streams::{Part, Step};

pub async fn signature_verify(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: SignatureVerify,
) -> KResult<SignatureVerifyResponse> {
    let key = kms.load_shared(ctx, request.unique_identifier).await?;
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
    let step = kms.streams.step(
        &ctx.user,
        &key.uid,
        Operation::SignatureVerify,
        scheme_hash(scheme),
        Part {
            init: request.init_indicator,
            last: request.final_indicator,
            correlation: request.correlation_value.as_deref(),
            data: request.data,
            digested: request.digested_data,
        },
    )?;
    let message = match &step {
        Step::Pending(id) => {
            // KMIP answers a middle part with the correlation value; validity comes at the end.
            return Ok(SignatureVerifyResponse {
                unique_identifier: key.uid.clone().into(),
                validity_indicator: ValidityIndicator::Unknown,
                data: None,
                correlation_value: Some(id.clone()),
            });
        }
        Step::Data(d) => Message::Data(d),
        Step::Digest(d) => Message::Digest(d),
    };
    let signature = request
        .signature_data
        .ok_or_else(|| KmsError::MissingData("SignatureVerify needs SignatureData".into()))?;
    let valid = kms_crypto::asymmetric::verify(kind, &public, scheme, message, &signature)?;
    Ok(SignatureVerifyResponse {
        unique_identifier: key.uid.clone().into(),
        validity_indicator: if valid {
            ValidityIndicator::Valid
        } else {
            ValidityIndicator::Invalid
        },
        data: None,
        correlation_value: None,
    })
}
