//! Export: the object with its key material and every attribute.

use kmip::model::{ExportResponse, Get};

use super::get::served_object;
use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn export(kms: &Kms, ctx: &mut RequestContext, request: Get) -> KResult<ExportResponse> {
    let stored = kms.load(ctx, request.unique_identifier.clone()).await?;
    let object = served_object(kms, ctx, &stored, &request).await?;
    let attributes = kms
        .visible_attributes(ctx, &stored, stored.attributes.clone())
        .await?;
    Ok(ExportResponse {
        object_type: stored.object_type,
        unique_identifier: stored.uid.into(),
        attributes,
        object,
    })
}
