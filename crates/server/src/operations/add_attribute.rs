//! AddAttribute: a new attribute, or a new instance of a multi-valued one.

use kmip::model::{AttributeResponse, NewAttributeRequest};

use super::{attribute_name, check_change_allowed, is_multi_valued, refresh_tags};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn add_attribute(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: NewAttributeRequest,
) -> KResult<AttributeResponse> {
    let (uid, attr) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            let attr = request.new_attribute.0.clone();
            check_change_allowed(stored, &attr)?;
            if !is_multi_valued(&attr) && stored.attributes.has(attr.tag()) {
                return Err(KmsError::AttributeSingleValued(attribute_name(&attr)));
            }
            if let kmip::model::Attribute::Name(name) = &attr
                && stored
                    .attributes
                    .names()
                    .any(|n| n.name_value == name.name_value)
            {
                return Err(KmsError::NonUniqueName(name.name_value.clone()));
            }
            stored.attributes.0.push(attr.clone());
            refresh_tags(stored)?;
            Ok(attr)
        })
        .await?;
    Ok(AttributeResponse {
        unique_identifier: uid.into(),
        attribute: ctx.echo(attr),
    })
}
