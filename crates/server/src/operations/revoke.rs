//! Revoke: deactivates an object, or marks it compromised when the reason says so.

use kmip::model::{Attribute, Revoke, UidResponse};
use kmip::{DateTime, RevocationReasonCode, State};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext, echo_selector, set_state};

pub async fn revoke(kms: &Kms, ctx: &mut RequestContext, request: Revoke) -> KResult<UidResponse> {
    let named = request.unique_identifier.clone();
    let (uid, ()) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            let now = DateTime::now();
            let compromised = matches!(
                request.revocation_reason.revocation_reason_code,
                RevocationReasonCode::KeyCompromise | RevocationReasonCode::CACompromise
            );
            let new_state = if compromised {
                stored.attributes.set(Attribute::CompromiseDate(now));
                stored.attributes.set(Attribute::CompromiseOccurrenceDate(
                    request.compromise_occurrence_date.unwrap_or(now),
                ));
                match stored.state {
                    State::Destroyed | State::DestroyedCompromised => State::DestroyedCompromised,
                    _ => State::Compromised,
                }
            } else {
                match stored.state {
                    // A revoked key that is not compromised keeps its later states.
                    State::PreActive | State::Active => {
                        stored.attributes.set(Attribute::DeactivationDate(now));
                        State::Deactivated
                    }
                    other => other,
                }
            };
            stored.attributes.set(Attribute::RevocationReason(
                request.revocation_reason.clone(),
            ));
            set_state(stored, new_state);
            Ok(())
        })
        .await?;
    Ok(UidResponse {
        unique_identifier: echo_selector(named.as_ref(), uid),
    })
}
