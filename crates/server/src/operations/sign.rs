//! Sign: a signature of data (or of the client's digest of it) with a private key, in one
//! request or streamed in parts (`InitIndicator` ... `FinalIndicator`, see `streams.rs`).

use kmip::model::{Sign, SignResponse};
use kmip::{Operation, State};
use kms_crypto::asymmetric::Message;

use super::asymmetric::{loaded_private_key, parameters, scheme_hash, signature_scheme};
use super::{require_state, require_usage, require_usage_period, usage};
use crate::error::KResult;
use crate::kms::{Kms, RequestContext};
use crate::streams::{Part, Step};

pub async fn sign(kms: &Kms, ctx: &mut RequestContext, request: Sign) -> KResult<SignResponse> {
    let key = kms.load_shared(ctx, request.unique_identifier).await?;
    require_state(
        &key,
        &[State::Active],
        "only an active key can sign; activate it first",
    )?;
    require_usage(&key, usage::SIGN, "sign")?;
    require_usage_period(&key, true)?;
    let private = loaded_private_key(kms, &key)?;
    let kind = private.kind();
    let params = parameters(request.cryptographic_parameters.as_ref(), &key);
    let scheme = signature_scheme(kind, &params)?;
    let step = kms.streams.step(
        &ctx.user,
        &key.uid,
        Operation::Sign,
        scheme_hash(scheme),
        Part {
            init: request.init_indicator,
            last: request.final_indicator,
            correlation: request.correlation_value.as_deref(),
            data: request.data,
            digested: request.digested_data,
        },
    )?;
    let signature = match &step {
        Step::Pending(_) => None,
        Step::Data(data) => Some(private.sign(scheme, Message::Data(data))?),
        Step::Digest(digest) => Some(private.sign(scheme, Message::Digest(digest))?),
    };
    Ok(SignResponse {
        unique_identifier: key.uid.clone().into(),
        signature_data: signature,
        correlation_value: match step {
            Step::Pending(id) => Some(id),
            _ => None,
        },
    })
}
