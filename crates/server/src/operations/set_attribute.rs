//! SetAttribute (KMIP 2.1 §6.1.53): creates the attribute when the object has no instance of
//! it, replaces the one instance it has, and fails on an attribute with several instances.

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
                let tag = attr.tag();
                match stored.attributes.0.iter().filter(|a| a.tag() == tag).count() {
                    0 | 1 => stored.attributes.set(attr.clone()),
                    n => {
                        return Err(KmsError::MultiValued(format!(
                            "the object has {n} {} values; say which to change with ModifyAttribute, or remove them with DeleteAttribute",
                            attribute_name(&attr)
                        )));
                    }
                }
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
