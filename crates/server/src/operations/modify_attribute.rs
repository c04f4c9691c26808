//! ModifyAttribute: replaces an existing attribute instance (the one given as current, or the
//! first of that attribute).

use kmip::model::{Attribute, AttributeResponse, ModifyAttribute};

use super::{attribute_name, check_change_allowed, refresh_tags};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

fn same_instance_key(a: &Attribute, b: &Attribute) -> bool {
    match (a, b) {
        (Attribute::VendorAttribute(x), Attribute::VendorAttribute(y)) => {
            x.vendor_identification == y.vendor_identification
                && x.attribute_name == y.attribute_name
        }
        _ => a.tag() == b.tag(),
    }
}

pub async fn modify_attribute(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: ModifyAttribute,
) -> KResult<AttributeResponse> {
    let (uid, attr) = kms
        .modify(ctx, request.unique_identifier, |stored| {
            let new = request.new_attribute.0.clone();
            check_change_allowed(stored, &new)?;
            let position = match &request.current_attribute {
                Some(current) => stored.attributes.0.iter().position(|a| *a == current.0),
                None => stored
                    .attributes
                    .0
                    .iter()
                    .position(|a| same_instance_key(a, &new)),
            };
            let Some(i) = position else {
                return Err(KmsError::AttributeNotFound(attribute_name(&new)));
            };
            stored.attributes.0[i] = new.clone();
            refresh_tags(stored)?;
            Ok(new)
        })
        .await?;
    Ok(AttributeResponse {
        unique_identifier: uid.into(),
        attribute: ctx.echo(attr),
    })
}
