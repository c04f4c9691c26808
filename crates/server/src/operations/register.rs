//! Register: an object supplied by the client, stored pre-active (or active if its activation
//! date has passed).

use kmip::State;
use kmip::model::{Register, UidResponse};

use super::{check_registrable, insert, new_stored_object, new_uid};
use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn register(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Register,
) -> KResult<UidResponse> {
    super::require_may_create(ctx)?;
    let mut request = request;
    // A PKCS#12: its private key is what is saved under this identifier, its certificates
    // beside it.
    let opened =
        super::pkcs12::open(kms, ctx, &mut request.object, &mut request.attributes).await?;
    check_registrable(request.object_type, &request.object)?;
    super::asymmetric::complete(&mut request.object)?;
    super::certificate::derive_attributes(&request.object, &mut request.attributes)?;
    let uid = new_uid(&request.attributes)?;
    let stored = new_stored_object(
        ctx,
        uid,
        request.object,
        request.attributes,
        State::PreActive,
    )?;
    let uid = insert(kms, ctx, stored).await?;
    if let Some(opened) = opened {
        super::pkcs12::store_chain(kms, ctx, &uid, opened).await?;
        ctx.placeholder = Some(uid.clone());
    }
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}
