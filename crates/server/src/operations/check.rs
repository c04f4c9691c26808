//! Check: whether the object could be used as the client describes.

use kmip::model::{Check, CheckResponse};

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn check(kms: &Kms, ctx: &mut RequestContext, request: Check) -> KResult<CheckResponse> {
    let stored = kms.load(ctx, request.unique_identifier).await?;
    if let Some(wanted) = request.cryptographic_usage_mask {
        let mask = stored.attributes.cryptographic_usage_mask().unwrap_or(0);
        if mask & wanted != wanted {
            return Err(KmsError::UsageNotAllowed {
                uid: stored.uid,
                operation: "be used as checked",
            });
        }
    }
    // A passed check answers the identifier only; the checked values are not echoed.
    Ok(CheckResponse {
        unique_identifier: stored.uid.into(),
        usage_limits_count: None,
        cryptographic_usage_mask: None,
        lease_time: None,
    })
}
