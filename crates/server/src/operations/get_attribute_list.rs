//! GetAttributeList: references to every attribute the object has.

use kmip::model::{Attribute, GetAttributeListResponse, UidRequest};
use kmip::{Tag, Ttlv, Value};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

pub async fn get_attribute_list(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: UidRequest,
) -> KResult<GetAttributeListResponse> {
    let stored = kms.load_shared(ctx, request.unique_identifier).await?;
    let mut references: Vec<Ttlv> = Vec::new();
    for a in &stored.attributes.0 {
        let r = match a {
            Attribute::VendorAttribute(v) => Ttlv::structure(
                Tag::ATTRIBUTE_REFERENCE,
                vec![
                    Ttlv::new(
                        Tag::VENDOR_IDENTIFICATION,
                        Value::TextString(v.vendor_identification.clone()),
                    ),
                    Ttlv::new(
                        Tag::ATTRIBUTE_NAME,
                        Value::TextString(v.attribute_name.clone()),
                    ),
                ],
            ),
            other => Ttlv::new(Tag::ATTRIBUTE_REFERENCE, Value::Enumeration(other.tag().0)),
        };
        if !references.contains(&r) {
            references.push(r);
        }
    }
    Ok(GetAttributeListResponse {
        unique_identifier: stored.uid.clone().into(),
        attribute_reference: references,
    })
}
