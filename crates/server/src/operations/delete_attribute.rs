//! DeleteAttribute: removes one attribute instance, or every instance of a referenced attribute.

use kmip::model::{Attribute, AttributeResponse, DeleteAttribute};
use kmip::{Tag, Value};

use super::{attribute_name, is_read_only, refresh_tags};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn delete_attribute(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: DeleteAttribute,
) -> KResult<AttributeResponse> {
    let (uid, deleted) = kms
        .modify(ctx, request.unique_identifier, |stored| {
        let before = stored.attributes.0.len();
        let mut deleted: Option<Attribute> = None;
        if let Some(current) = &request.current_attribute {
            let target = current.0.clone();
            super::check_protection_kept(stored, target.tag(), None)?;
            if is_read_only(target.tag()) {
                return Err(KmsError::AttributeReadOnly(attribute_name(&target)));
            }
            match &target {
                // A vendor attribute is named by vendor and name; its value need not be given.
                Attribute::VendorAttribute(v) => stored.attributes.0.retain(|a| {
                    let hit = matches!(a, Attribute::VendorAttribute(x)
                        if x.vendor_identification == v.vendor_identification && x.attribute_name == v.attribute_name);
                    if hit && deleted.is_none() {
                        deleted = Some(a.clone());
                    }
                    !hit
                }),
                _ => {
                    if let Some(i) = stored.attributes.0.iter().position(|a| *a == target) {
                        deleted = Some(stored.attributes.0.remove(i));
                    }
                }
            }
            if stored.attributes.0.len() == before {
                return Err(KmsError::AttributeNotFound(attribute_name(&target)));
            }
        } else if let Some(reference) = &request.attribute_reference {
            match &reference.value {
                Value::Enumeration(t) => {
                    let tag = Tag(*t);
                    super::check_protection_kept(stored, tag, None)?;
                    if is_read_only(tag) {
                        return Err(KmsError::AttributeReadOnly(tag.to_string()));
                    }
                    deleted = stored.attributes.0.iter().find(|a| a.tag() == tag).cloned();
                    stored.attributes.remove(tag);
                    if stored.attributes.0.len() == before {
                        return Err(KmsError::AttributeNotFound(tag.to_string()));
                    }
                }
                _ => {
                    let vendor = reference
                        .child(Tag::VENDOR_IDENTIFICATION)
                        .and_then(|t| t.as_str().ok())
                        .unwrap_or("");
                    let name = reference
                        .child(Tag::ATTRIBUTE_NAME)
                        .and_then(|t| t.as_str().ok())
                        .unwrap_or("");
                    stored.attributes.0.retain(|a| {
                        let hit = matches!(a, Attribute::VendorAttribute(x)
                            if x.vendor_identification == vendor && x.attribute_name == name);
                        if hit && deleted.is_none() {
                            deleted = Some(a.clone());
                        }
                        !hit
                    });
                    if stored.attributes.0.len() == before {
                        return Err(KmsError::AttributeNotFound(format!("{vendor}:{name}")));
                    }
                }
            }
        } else {
            return Err(KmsError::MissingData(
                "DeleteAttribute needs a CurrentAttribute or an AttributeReference".into(),
            ));
        }
        refresh_tags(stored)?;
            Ok(deleted)
        })
        .await?;
    Ok(AttributeResponse {
        unique_identifier: uid.into(),
        attribute: deleted.and_then(|d| ctx.echo(d)),
    })
}
