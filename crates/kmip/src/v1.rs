//! KMIP 1.x at the edge: converts 1.x messages to the 2.1 shape the model reads, and 2.1-shaped
//! messages back to what a 1.x peer expects, keeping only what that version defines.
//!
//! KMIP 1.x names attributes with text (`Attribute { AttributeName, AttributeValue }`) inside
//! `TemplateAttribute`s; 2.x writes each attribute as its own tag inside `Attributes`. Custom
//! attributes (`x-...`, `y-...`) become `VendorAttribute`s with vendor identification `x` / `y`.

use crate::enums::{attribute_name_of_tag, tag_of_attribute_name};
use crate::error::Error;
use crate::generated::Operation;
use crate::tag::Tag;
use crate::ttlv::{Ttlv, Value};

/// The `(major, minor)` protocol version in a message's header.
pub fn message_version(msg: &Ttlv) -> Option<(i32, i32)> {
    let header = msg
        .child(Tag::REQUEST_HEADER)
        .or_else(|| msg.child(Tag::RESPONSE_HEADER))?;
    let pv = header.child(Tag::PROTOCOL_VERSION)?;
    let major = pv.child(Tag::PROTOCOL_VERSION_MAJOR)?.as_i32().ok()?;
    let minor = pv.child(Tag::PROTOCOL_VERSION_MINOR)?.as_i32().ok()?;
    Some((major, minor))
}

/// Highest tag each 1.x minor version defines.
fn last_tag_of(minor: i32) -> u32 {
    match minor {
        0 => 0x4200A1,
        1 => 0x4200B7,
        2 => 0x4200D3,
        3 => 0x4200F7,
        _ => 0x420124,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    ToV2,
    ToV1,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Request,
    Response,
}

/// Converts a KMIP 1.x request message to the 2.1 shape.
pub fn request_to_v2(msg: Ttlv) -> Result<Ttlv, Error> {
    convert(msg, Kind::Request, Direction::ToV2, 4)
}

/// Converts a 2.1-shaped request to KMIP 1.`minor`.
pub fn request_to_v1(msg: Ttlv, minor: i32) -> Result<Ttlv, Error> {
    convert(msg, Kind::Request, Direction::ToV1, minor)
}

/// Converts a KMIP 1.x response message to the 2.1 shape.
pub fn response_to_v2(msg: Ttlv) -> Result<Ttlv, Error> {
    convert(msg, Kind::Response, Direction::ToV2, 4)
}

/// Converts a 2.1-shaped response to KMIP 1.`minor`, dropping every tag that version does not
/// define (real 1.x appliances fail on unknown tags).
pub fn response_to_v1(msg: Ttlv, minor: i32) -> Result<Ttlv, Error> {
    convert(msg, Kind::Response, Direction::ToV1, minor)
}

fn convert(msg: Ttlv, kind: Kind, dir: Direction, minor: i32) -> Result<Ttlv, Error> {
    let tag = msg.tag;
    let children = msg.into_children()?;
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        if child.tag != Tag::BATCH_ITEM {
            out.push(child);
            continue;
        }
        let item_children = child.into_children()?;
        let op = item_children
            .iter()
            .find(|c| c.tag == Tag::OPERATION)
            .and_then(|c| c.as_enum().ok())
            .and_then(<Operation as crate::KmipEnum>::from_u32);
        let mut new_item = Vec::with_capacity(item_children.len());
        for c in item_children {
            if c.tag == Tag::REQUEST_PAYLOAD || c.tag == Tag::RESPONSE_PAYLOAD {
                new_item.push(convert_payload(c, op, kind, dir, minor)?);
            } else {
                new_item.push(c);
            }
        }
        out.push(Ttlv::structure(Tag::BATCH_ITEM, new_item));
    }
    let mut result = Ttlv::structure(tag, out);
    if dir == Direction::ToV1 {
        let last = last_tag_of(minor);
        strip_unknown(&mut result, last);
        if kind == Kind::Response {
            downgrade_result_reasons(&mut result, minor);
        }
    }
    Ok(result)
}

/// Highest result reason each 1.x minor version defines (General Failure, 0x100, is in all).
fn last_reason_of(minor: i32) -> u32 {
    match minor {
        0 => 0x0E,
        1 => 0x11,
        2 | 3 => 0x15,
        _ => 0x18,
    }
}

/// Replaces result reasons a 1.x client does not know: a wrong lifecycle state was a permission
/// problem in 1.x (as its test cases expect); anything else becomes General Failure.
fn downgrade_result_reasons(message: &mut Ttlv, minor: i32) {
    let last = last_reason_of(minor);
    let Value::Structure(children) = &mut message.value else {
        return;
    };
    for item in children.iter_mut().filter(|c| c.tag == Tag::BATCH_ITEM) {
        let Value::Structure(fields) = &mut item.value else {
            continue;
        };
        for f in fields.iter_mut().filter(|f| f.tag == Tag::RESULT_REASON) {
            if let Value::Enumeration(v) = &mut f.value
                && *v > last
                && *v != 0x100
            {
                *v = match *v {
                    // Wrong Key Lifecycle State was a permission problem in 1.x.
                    0x43 => 0x0C,
                    // Object Not Found was Item Not Found.
                    0x37 => 0x01,
                    _ => 0x100,
                };
            }
        }
    }
}

fn strip_unknown(item: &mut Ttlv, last: u32) {
    if let Value::Structure(children) = &mut item.value {
        children.retain(|c| c.tag.0 >= 0x420000 && c.tag.0 <= last);
        for c in children {
            strip_unknown(c, last);
        }
    }
}

fn convert_payload(
    payload: Ttlv,
    op: Option<Operation>,
    kind: Kind,
    dir: Direction,
    minor: i32,
) -> Result<Ttlv, Error> {
    let tag = payload.tag;
    let children = payload.into_children()?;
    let mut out = Vec::with_capacity(children.len());
    let mut loose_attributes = Vec::new();
    let locate = op == Some(Operation::Locate) && kind == Kind::Request;
    let get_attributes_response = op == Some(Operation::GetAttributes) && kind == Kind::Response;
    for c in children {
        match (dir, c.tag) {
            (Direction::ToV2, Tag::TEMPLATE_ATTRIBUTE) => {
                out.push(template_to_attributes(c, Tag::ATTRIBUTES)?)
            }
            (Direction::ToV2, Tag::COMMON_TEMPLATE_ATTRIBUTE) => {
                out.push(template_to_attributes(c, Tag::COMMON_ATTRIBUTES)?)
            }
            (Direction::ToV2, Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE) => {
                out.push(template_to_attributes(c, Tag::PRIVATE_KEY_ATTRIBUTES)?)
            }
            (Direction::ToV2, Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE) => {
                out.push(template_to_attributes(c, Tag::PUBLIC_KEY_ATTRIBUTES)?)
            }
            (Direction::ToV2, Tag::ATTRIBUTE) if locate || get_attributes_response => {
                loose_attributes.push(attribute_to_v2(c)?);
            }
            (Direction::ToV2, Tag::ATTRIBUTE) => {
                let v2 = attribute_to_v2(c)?;
                match (kind, op) {
                    (Kind::Request, Some(Operation::AddAttribute | Operation::ModifyAttribute)) => {
                        out.push(Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![v2]))
                    }
                    (Kind::Request, Some(Operation::DeleteAttribute)) => {
                        out.push(Ttlv::structure(Tag::CURRENT_ATTRIBUTE, vec![v2]))
                    }
                    // Responses of the attribute operations carry the attribute itself in 1.x.
                    _ => out.push(v2),
                }
            }
            (Direction::ToV2, Tag::ATTRIBUTE_NAME) => {
                let name = c.as_str()?;
                out.push(match tag_of_attribute_name(name) {
                    Some(t) => Ttlv::new(Tag::ATTRIBUTE_REFERENCE, Value::Enumeration(t.0)),
                    None => Ttlv::structure(
                        Tag::ATTRIBUTE_REFERENCE,
                        vec![
                            Ttlv::new(
                                Tag::VENDOR_IDENTIFICATION,
                                Value::TextString(vendor_of(name).into()),
                            ),
                            Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.to_owned())),
                        ],
                    ),
                });
            }
            (Direction::ToV2, Tag::ATTRIBUTE_INDEX) => {}
            (Direction::ToV1, Tag::ATTRIBUTES) if locate || get_attributes_response => {
                for a in c.into_children()? {
                    if let Some(v1) = attribute_to_v1(a, minor)? {
                        out.push(v1);
                    }
                }
            }
            (Direction::ToV1, Tag::ATTRIBUTES) => {
                out.push(attributes_to_template(c, Tag::TEMPLATE_ATTRIBUTE, minor)?)
            }
            (Direction::ToV1, Tag::COMMON_ATTRIBUTES) => out.push(attributes_to_template(
                c,
                Tag::COMMON_TEMPLATE_ATTRIBUTE,
                minor,
            )?),
            (Direction::ToV1, Tag::PRIVATE_KEY_ATTRIBUTES) => out.push(attributes_to_template(
                c,
                Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
                minor,
            )?),
            (Direction::ToV1, Tag::PUBLIC_KEY_ATTRIBUTES) => out.push(attributes_to_template(
                c,
                Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
                minor,
            )?),
            (Direction::ToV1, Tag::NEW_ATTRIBUTE | Tag::CURRENT_ATTRIBUTE) => {
                for a in c.into_children()? {
                    if let Some(v1) = attribute_to_v1(a, minor)? {
                        out.push(v1);
                    }
                }
            }
            (Direction::ToV1, Tag::ATTRIBUTE_REFERENCE) => match &c.value {
                Value::Enumeration(t) => {
                    if let Some(name) = is_v1_attribute(Tag(*t), minor)
                        .then(|| attribute_name_of_tag(Tag(*t)))
                        .flatten()
                    {
                        out.push(Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name)));
                    }
                }
                _ => {
                    if let Some(n) = c.child(Tag::ATTRIBUTE_NAME) {
                        out.push(Ttlv::new(Tag::ATTRIBUTE_NAME, n.value.clone()));
                    }
                }
            },
            (Direction::ToV1, t)
                if kind == Kind::Response
                    && matches!(
                        op,
                        Some(
                            Operation::AddAttribute
                                | Operation::ModifyAttribute
                                | Operation::DeleteAttribute
                        )
                    )
                    && t != Tag::UNIQUE_IDENTIFIER =>
            {
                if let Some(v1) = attribute_to_v1(c, minor)? {
                    out.push(v1);
                }
            }
            _ => out.push(c),
        }
    }
    if !loose_attributes.is_empty() {
        // 1.x Locate lists attributes loose in the payload; 2.x gathers them in `Attributes`,
        // after the other fields.
        out.push(Ttlv::structure(Tag::ATTRIBUTES, loose_attributes));
    }
    Ok(Ttlv::structure(tag, out))
}

fn vendor_of(name: &str) -> &'static str {
    if name.starts_with("y-") { "y" } else { "x" }
}

fn template_to_attributes(template: Ttlv, tag: Tag) -> Result<Ttlv, Error> {
    let mut out = Vec::new();
    for c in template.into_children()? {
        if c.tag == Tag::ATTRIBUTE {
            out.push(attribute_to_v2(c)?);
        }
        // Template references by `Name` were deprecated in 1.3 and removed in 2.0; they are dropped.
    }
    Ok(Ttlv::structure(tag, out))
}

fn attributes_to_template(attributes: Ttlv, tag: Tag, minor: i32) -> Result<Ttlv, Error> {
    let mut out = Vec::new();
    for a in attributes.into_children()? {
        if let Some(v1) = attribute_to_v1(a, minor)? {
            out.push(v1);
        }
    }
    Ok(Ttlv::structure(tag, out))
}

/// `Attribute { AttributeName, [AttributeIndex], AttributeValue }` -> the 2.x attribute item.
fn attribute_to_v2(attr: Ttlv) -> Result<Ttlv, Error> {
    let mut name = None;
    let mut value = None;
    for c in attr.into_children()? {
        match c.tag {
            Tag::ATTRIBUTE_NAME => name = Some(c.as_str()?.to_owned()),
            Tag::ATTRIBUTE_VALUE => value = Some(c),
            _ => {}
        }
    }
    let name = name.ok_or(Error::Missing {
        structure: Tag::ATTRIBUTE,
        field: Tag::ATTRIBUTE_NAME,
    })?;
    let value = value.ok_or(Error::Missing {
        structure: Tag::ATTRIBUTE,
        field: Tag::ATTRIBUTE_VALUE,
    })?;
    Ok(match tag_of_attribute_name(&name) {
        Some(tag) => Ttlv {
            tag,
            value: value.value,
        },
        None => Ttlv::structure(
            Tag::VENDOR_ATTRIBUTE,
            vec![
                Ttlv::new(
                    Tag::VENDOR_IDENTIFICATION,
                    Value::TextString(vendor_of(&name).into()),
                ),
                Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name)),
                value,
            ],
        ),
    })
}

/// A 2.x attribute item -> `Attribute { AttributeName, AttributeValue }`; `None` for what 1.x
/// cannot express (vendor attributes of other vendors than `x` and `y`).
/// Whether KMIP 1.`minor` defines `tag` as an attribute: tags grow with the versions, and the
/// Key Format Type, a field of the key block in 1.x, became an attribute in 2.0.
fn is_v1_attribute(tag: Tag, minor: i32) -> bool {
    tag.0 <= last_tag_of(minor) && tag != Tag::KEY_FORMAT_TYPE
}

fn attribute_to_v1(attr: Ttlv, minor: i32) -> Result<Option<Ttlv>, Error> {
    if attr.tag == Tag::VENDOR_ATTRIBUTE {
        let vendor = attr
            .child(Tag::VENDOR_IDENTIFICATION)
            .and_then(|v| v.as_str().ok())
            .unwrap_or("");
        if vendor != "x" && vendor != "y" {
            return Ok(None);
        }
        let name = attr.child(Tag::ATTRIBUTE_NAME).cloned();
        let value = attr.child(Tag::ATTRIBUTE_VALUE).cloned();
        return Ok(match (name, value) {
            (Some(n), Some(v)) => Some(Ttlv::structure(Tag::ATTRIBUTE, vec![n, v])),
            _ => None,
        });
    }
    if !is_v1_attribute(attr.tag, minor) {
        return Ok(None);
    }
    let Some(name) = attribute_name_of_tag(attr.tag) else {
        return Ok(None);
    };
    Ok(Some(Ttlv::structure(
        Tag::ATTRIBUTE,
        vec![
            Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name)),
            Ttlv {
                tag: Tag::ATTRIBUTE_VALUE,
                value: attr.value,
            },
        ],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute_list(tags: &[Tag]) -> Ttlv {
        let mut payload = vec![Ttlv::new(
            Tag::UNIQUE_IDENTIFIER,
            Value::TextString("k".into()),
        )];
        payload.extend(
            tags.iter()
                .map(|t| Ttlv::new(Tag::ATTRIBUTE_REFERENCE, Value::Enumeration(t.0))),
        );
        Ttlv::structure(
            Tag::RESPONSE_MESSAGE,
            vec![Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![
                    Ttlv::new(
                        Tag::OPERATION,
                        Value::Enumeration(Operation::GetAttributeList as u32),
                    ),
                    Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload),
                ],
            )],
        )
    }

    fn names(message: &Ttlv) -> Vec<String> {
        let item = message.child(Tag::BATCH_ITEM).unwrap();
        item.child(Tag::RESPONSE_PAYLOAD)
            .unwrap()
            .children()
            .unwrap()
            .iter()
            .filter(|c| c.tag == Tag::ATTRIBUTE_NAME)
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    /// A 1.x client hears only of the attributes its version defines.
    #[test]
    fn attribute_names_follow_the_version() {
        let tags = [
            Tag::STATE,
            Tag::FRESH,
            Tag::SENSITIVE,
            Tag::SHORT_UNIQUE_IDENTIFIER,
            Tag::KEY_FORMAT_TYPE,
        ];
        let at = |minor| names(&response_to_v1(attribute_list(&tags), minor).unwrap());
        assert_eq!(at(4), ["State", "Fresh", "Sensitive"]);
        assert_eq!(at(2), ["State", "Fresh"]);
        assert_eq!(at(0), ["State"]);
    }
}
