//! Destroy: removes the key material; the metadata stays, unless the client asks (Cosmian's
//! `Remove`) for the whole record to go. An active key must be revoked first.

use kmip::model::{Attribute, Destroy, UidResponse};
use kmip::{DateTime, State};

use super::{require_object_type, require_state};
use crate::error::KResult;
use crate::kms::{Kms, RequestContext, echo_selector, set_state};

pub async fn destroy(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Destroy,
) -> KResult<UidResponse> {
    let remove = request.remove == Some(true);
    let named = request.unique_identifier.clone();
    let (uid, ()) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            require_object_type(stored, request.expected_object_type)?;
            let destroyed = matches!(stored.state, State::Destroyed | State::DestroyedCompromised);
            if remove && destroyed {
                // Already without material: only the record is left to remove.
                return Ok(());
            }
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
    if remove {
        kms.store.delete(&uid).await?;
        tracing::info!(%uid, user = %ctx.user, "object removed");
    }
    Ok(UidResponse {
        unique_identifier: echo_selector(named.as_ref(), uid),
    })
}
