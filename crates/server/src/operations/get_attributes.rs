//! GetAttributes: the attributes asked for, or all of them.

use kmip::model::{Attribute, Attributes, GetAttributes, GetAttributesResponse};
use kmip::{Tag, Value};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn get_attributes(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: GetAttributes,
) -> KResult<GetAttributesResponse> {
    let stored = kms.load_shared(ctx, request.unique_identifier).await?;
    let attributes = if request.attribute_reference.is_empty() {
        stored.attributes.clone()
    } else {
        let mut out = Vec::new();
        for reference in &request.attribute_reference {
            match &reference.value {
                Value::Enumeration(tag) => {
                    out.extend(
                        stored
                            .attributes
                            .0
                            .iter()
                            .filter(|a| a.tag() == Tag(*tag))
                            .cloned(),
                    );
                }
                Value::Structure(_) => {
                    let vendor = reference
                        .child(Tag::VENDOR_IDENTIFICATION)
                        .and_then(|t| t.as_str().ok());
                    let name = reference
                        .child(Tag::ATTRIBUTE_NAME)
                        .and_then(|t| t.as_str().ok());
                    out.extend(
                        stored
                            .attributes
                            .0
                            .iter()
                            .filter(|a| {
                                matches!(a, Attribute::VendorAttribute(v)
                                    if Some(v.vendor_identification.as_str()) == vendor
                                        && Some(v.attribute_name.as_str()) == name)
                            })
                            .cloned(),
                    );
                }
                _ => {}
            }
        }
        Attributes(out)
    };
    let attributes = kms.visible_attributes(ctx, &stored, attributes).await?;
    Ok(GetAttributesResponse {
        unique_identifier: stored.uid.clone().into(),
        attributes,
    })
}
