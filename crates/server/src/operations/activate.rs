//! Activate: a pre-active object becomes active.

use kmip::model::{Attribute, UidRequest, UidResponse};
use kmip::{DateTime, State};

use super::require_state;
use crate::error::KResult;
use crate::kms::{Kms, RequestContext, set_state};

pub async fn activate(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: UidRequest,
) -> KResult<UidResponse> {
    let (uid, ()) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            require_state(
                stored,
                &[State::PreActive],
                "only a pre-active object can be activated",
            )?;
            stored
                .attributes
                .set(Attribute::ActivationDate(DateTime::now()));
            set_state(stored, State::Active);
            Ok(())
        })
        .await?;
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}
