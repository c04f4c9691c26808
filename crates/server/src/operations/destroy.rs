//! Destroy: removes the key material; the metadata stays. An active key must be revoked first.

use kmip::model::{Attribute, UidRequest, UidResponse};
use kmip::{DateTime, State};

use super::require_state;
use crate::error::KResult;
use crate::kms::{Kms, RequestContext, set_state};

pub async fn destroy(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: UidRequest,
) -> KResult<UidResponse> {
    let (uid, ()) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            require_state(
                stored,
                &[State::PreActive, State::Deactivated, State::Compromised],
                "an active key cannot be destroyed: revoke it first",
            )?;
            let new_state = if stored.state == State::Compromised {
                State::DestroyedCompromised
            } else {
                State::Destroyed
            };
            stored.object = None;
            stored
                .attributes
                .set(Attribute::DestroyDate(DateTime::now()));
            set_state(stored, new_state);
            Ok(())
        })
        .await?;
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}
