//! SetAttribute: sets a single-valued attribute, replacing its value if present.

use kmip::model::{AttributeResponse, NewAttributeRequest};

use super::{attribute_name, check_change_allowed, is_multi_valued, refresh_tags};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn set_attribute(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: NewAttributeRequest,
) -> KResult<AttributeResponse> {
    let (uid, attr) = kms
        .modify(ctx, request.unique_identifier, |stored| {
        let attr = request.new_attribute.0.clone();
        check_change_allowed(stored, &attr)?;
        if is_multi_valued(&attr) {
            // Vendor attributes are keyed by vendor and name: replace that one only.
            if let kmip::model::Attribute::VendorAttribute(v) = &attr {
                stored.attributes.0.retain(|a| {
                    !matches!(a, kmip::model::Attribute::VendorAttribute(x)
                        if x.vendor_identification == v.vendor_identification && x.attribute_name == v.attribute_name)
                });
                stored.attributes.0.push(attr.clone());
            } else {
                return Err(KmsError::InvalidRequest(format!(
                    "{} can have several values; use AddAttribute or ModifyAttribute",
                    attribute_name(&attr)
                )));
            }
        } else {
            stored.attributes.set(attr.clone());
        }
        refresh_tags(stored)?;
            Ok(attr)
        })
        .await?;
    Ok(AttributeResponse {
        unique_identifier: uid.into(),
        attribute: ctx.echo(attr),
    })
}
