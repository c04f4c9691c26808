//! The OASIS KMIP XML test-case encoding: element name = tag name, `type` and `value`
//! attributes, structures as nested elements, masks as space-separated names.
//!
//! Values beginning with `$` are placeholders of the test cases (`$NOW`, `$UNIQUE_IDENTIFIER_0`).
//! A TextString placeholder stays text; for other types the caller's [`Resolver`] decides.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::enums::{self, MaskKind};
use crate::error::Error;
use crate::json::{hex_decode, hex_encode_into};
use crate::tag::Tag;
use crate::ttlv::{DateTime, ItemType, Ttlv, Value, canonical_big_integer};

const MAX_DEPTH: usize = 64;

/// Gives values to `$...` placeholders of non-text items.
pub trait Resolver {
    fn resolve(&mut self, tag: Tag, item_type: ItemType, placeholder: &str) -> Option<Value>;
}

/// Refuses every placeholder.
pub struct NoPlaceholders;

impl Resolver for NoPlaceholders {
    fn resolve(&mut self, _: Tag, _: ItemType, _: &str) -> Option<Value> {
        None
    }
}

/// Parses a single element.
pub fn from_str(text: &str) -> Result<Ttlv, Error> {
    let mut all = parse_document(text, &mut NoPlaceholders)?;
    if all.len() != 1 {
        return Err(Error::Xml(format!(
            "expected one top-level element, found {}",
            all.len()
        )));
    }
    Ok(all.remove(0))
}

/// Parses every top-level element, looking inside a `<KMIP>` wrapper if there is one.
pub fn parse_document(text: &str, resolver: &mut dyn Resolver) -> Result<Vec<Ttlv>, Error> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    // Stack of open structures: (tag, children, name of the last AttributeName child).
    let mut stack: Vec<(Tag, Vec<Ttlv>, Option<Tag>)> = Vec::new();
    let mut out = Vec::new();
    let mut in_wrapper = false;
    loop {
        let ev = reader.read_event().map_err(Error::XmlSyntax)?;
        match ev {
            Event::Start(e) => {
                let name = element_name(&e)?;
                if name == "KMIP" && stack.is_empty() && !in_wrapper {
                    in_wrapper = true;
                    continue;
                }
                let tag =
                    Tag::from_name(&name).ok_or_else(|| Error::UnknownTagName(name.clone()))?;
                if let Some(t) = attr(&e, b"type")?
                    && t != "Structure"
                {
                    return Err(Error::Xml(format!("<{name}> has children but type `{t}`")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::TooDeep { limit: MAX_DEPTH });
                }
                stack.push((tag, Vec::new(), None));
            }
            Event::Empty(e) => {
                let name = element_name(&e)?;
                let tag =
                    Tag::from_name(&name).ok_or_else(|| Error::UnknownTagName(name.clone()))?;
                let hint = stack.last().and_then(|s| s.2);
                let item = leaf(&e, tag, hint, resolver)?;
                match stack.last_mut() {
                    Some((_, children, attr_name)) => {
                        if item.tag == Tag::ATTRIBUTE_NAME {
                            *attr_name = item.as_str().ok().and_then(enums::tag_of_attribute_name);
                        }
                        children.push(item)
                    }
                    None => out.push(item),
                }
            }
            Event::End(e) => {
                let Some((tag, children, _)) = stack.pop() else {
                    if in_wrapper && e.name().as_ref() == b"KMIP" {
                        in_wrapper = false;
                        continue;
                    }
                    return Err(Error::Xml("unbalanced end tag".into()));
                };
                let item = Ttlv::structure(tag, children);
                match stack.last_mut() {
                    Some((_, c, _)) => c.push(item),
                    None => out.push(item),
                }
            }
            Event::Text(t) if !t.iter().all(|b| b.is_ascii_whitespace()) => {
                return Err(Error::Xml(
                    "text content is not part of the KMIP XML encoding".into(),
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml("document ends inside an element".into()));
    }
    Ok(out)
}

fn element_name(e: &BytesStart<'_>) -> Result<String, Error> {
    std::str::from_utf8(e.name().as_ref())
        .map(str::to_owned)
        .map_err(|_| Error::Xml("element name is not UTF-8".into()))
}

fn attr(e: &BytesStart<'_>, key: &[u8]) -> Result<Option<String>, Error> {
    for a in e.attributes() {
        let a = a.map_err(|err| Error::Xml(format!("bad attribute: {err}")))?;
        if a.key.as_ref() == key {
            let v = a.unescape_value().map_err(Error::XmlSyntax)?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn leaf(
    e: &BytesStart<'_>,
    tag: Tag,
    hint: Option<Tag>,
    resolver: &mut dyn Resolver,
) -> Result<Ttlv, Error> {
    let type_name = attr(e, b"type")?;
    let item_type = match type_name.as_deref() {
        None | Some("Structure") => return Ok(Ttlv::structure(tag, Vec::new())),
        Some(t) => ItemType::from_name(t)
            .ok_or_else(|| Error::Xml(format!("<{tag}>: unknown type `{t}`")))?,
    };
    let text = attr(e, b"value")?.unwrap_or_default();
    let meaning = if tag == Tag::ATTRIBUTE_VALUE {
        hint.unwrap_or(tag)
    } else {
        tag
    };
    if text.starts_with('$') && item_type != ItemType::TextString {
        let v = resolver
            .resolve(tag, item_type, &text)
            .ok_or_else(|| Error::BadValue {
                tag,
                reason: format!("placeholder `{text}` has no value"),
            })?;
        return Ok(Ttlv::new(tag, v));
    }
    let bad = || Error::BadValue {
        tag,
        reason: format!("`{text}` is not a valid {}", item_type.name()),
    };
    let value = match item_type {
        ItemType::Structure => Value::Structure(Vec::new()),
        ItemType::Integer => Value::Integer(
            int(&text)
                .and_then(|n| i32::try_from(n).ok())
                .or_else(|| MaskKind::for_tag(meaning).and_then(|m| m.parse(&text)))
                .ok_or_else(bad)?,
        ),
        ItemType::LongInteger => Value::LongInteger(int(&text).ok_or_else(bad)?),
        ItemType::DateTimeExtended => Value::DateTimeExtended(int(&text).ok_or_else(bad)?),
        ItemType::BigInteger => {
            let h = text.strip_prefix("0x").unwrap_or(&text);
            let h = if h.len() % 2 == 1 {
                format!("0{h}")
            } else {
                h.to_owned()
            };
            Value::BigInteger(canonical_big_integer(hex_decode(&h).ok_or_else(bad)?))
        }
        ItemType::Enumeration => Value::Enumeration(
            enums::enum_value(enums::enum_domain(meaning), &text).ok_or_else(bad)?,
        ),
        ItemType::Boolean => Value::Boolean(match text.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad()),
        }),
        ItemType::TextString => Value::TextString(text.clone()),
        ItemType::ByteString => Value::ByteString(hex_decode(&text).ok_or_else(bad)?),
        ItemType::DateTime => Value::DateTime(
            DateTime::parse_rfc3339(&text)
                .or_else(|| int(&text).map(DateTime))
                .ok_or_else(bad)?,
        ),
        ItemType::Interval => Value::Interval(
            int(&text)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
    };
    Ok(Ttlv::new(tag, value))
}

fn int(s: &str) -> Option<i64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok().map(|u| u as i64),
        None => s.parse().ok(),
    }
}

/// Encodes one item as indented XML.
pub fn to_string(item: &Ttlv) -> String {
    let mut out = String::new();
    write(item, 0, None, &mut out);
    out
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Attribute values are whitespace-normalized by XML parsers; keep these exact.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn write(item: &Ttlv, indent: usize, hint: Option<Tag>, out: &mut String) {
    let name = item
        .tag
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("0x{:06X}", item.tag.0));
    out.push_str(&"  ".repeat(indent));
    out.push('<');
    out.push_str(&name);
    let meaning = if item.tag == Tag::ATTRIBUTE_VALUE {
        hint.unwrap_or(item.tag)
    } else {
        item.tag
    };
    let text = match &item.value {
        Value::Structure(children) => {
            if children.is_empty() {
                out.push_str("/>\n");
                return;
            }
            out.push_str(">\n");
            let mut attr_hint = None;
            for c in children {
                write(c, indent + 1, attr_hint, out);
                if c.tag == Tag::ATTRIBUTE_NAME {
                    attr_hint = c.as_str().ok().and_then(enums::tag_of_attribute_name);
                }
            }
            out.push_str(&"  ".repeat(indent));
            out.push_str("</");
            out.push_str(&name);
            out.push_str(">\n");
            return;
        }
        Value::Integer(v) => match MaskKind::for_tag(meaning) {
            Some(m) => m.format(*v),
            None => v.to_string(),
        },
        Value::LongInteger(v) | Value::DateTimeExtended(v) => v.to_string(),
        Value::BigInteger(b) => lower_hex(b),
        Value::Enumeration(v) => enums::enum_domain(meaning)
            .and_then(|d| enums::enum_name(d, *v, false))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("0x{v:08X}")),
        Value::Boolean(b) => b.to_string(),
        Value::TextString(s) => s.clone(),
        Value::ByteString(b) => lower_hex(b),
        Value::DateTime(d) => d.to_rfc3339().unwrap_or_else(|| d.0.to_string()),
        Value::Interval(v) => v.to_string(),
    };
    out.push_str(" type=\"");
    out.push_str(item.value.item_type().name());
    out.push_str("\" value=\"");
    escape(&text, out);
    out.push_str("\"/>\n");
}

fn lower_hex(b: &[u8]) -> String {
    let mut s = String::new();
    hex_encode_into(b, &mut s);
    s.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_value_uses_attribute_name() {
        let xml = r#"<Attribute>
            <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
            <AttributeValue type="Integer" value="Encrypt Decrypt"/>
        </Attribute>"#;
        let t = from_str(xml).unwrap();
        assert_eq!(t.children().unwrap()[1].value, Value::Integer(12));
        let again = from_str(&to_string(&t)).unwrap();
        assert_eq!(again, t);
        assert!(to_string(&t).contains("Encrypt Decrypt"));
    }
}
