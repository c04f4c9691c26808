//! Sign: a signature of data (or of the client's digest of it) with a private key.

use kmip::State;
use kmip::model::{Sign, SignResponse};
use kms_crypto::asymmetric::Message;

use super::asymmetric::{parameters, private_key, signature_scheme};
use super::{require_state, require_usage, require_usage_period, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn sign(kms: &Kms, ctx: &mut RequestContext, request: Sign) -> KResult<SignResponse> {
    if request.init_indicator.is_some()
        || request.final_indicator.is_some()
        || request.correlation_value.is_some()
    {
        return Err(KmsError::FeatureNotSupported(
            "streamed signing (InitIndicator, FinalIndicator, CorrelationValue); send the whole data, or its digest as DigestedData".into(),
        ));
    }
    let key = kms.load(ctx, request.unique_identifier).await?;
    require_state(
        &key,
        &[State::Active],
        "only an active key can sign; activate it first",
    )?;
    require_usage(&key, usage::SIGN, "sign")?;
    require_usage_period(&key, true)?;
    let (kind, private) = private_key(&key)?;
    let params = parameters(request.cryptographic_parameters.as_ref(), &key);
    let scheme = signature_scheme(kind, &params)?;
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
                "Sign needs Data or DigestedData".into(),
            ));
        }
    };
    let signature = kms_crypto::asymmetric::sign(kind, &private, scheme, message)?;
    Ok(SignResponse {
        unique_identifier: key.uid.into(),
        signature_data: Some(signature),
        correlation_value: None,
    })
}
