//! JSON TTLV as Cosmian KMS writes it: `{"tag": NAME, "type": TYPE, "value": V}`.
//!
//! Written: Structure values as arrays, ByteString upper-case hex, LongInteger and BigInteger
//! `"0x"` hex, Enumeration by Cosmian's name (hex when unnamed), DateTime RFC 3339 UTC.
//! Accepted besides: a missing `type` when the value is an array (a Structure, as Cosmian 5.x
//! writes some), enumerations by either spelling or hex, integers and long integers as decimal
//! or hex strings, masks as names. Refused: any other field, a field given twice, a missing
//! `tag` or `value` (docs/adr/0003-json-ttlv-leniency.md).

use serde_json::Value as J;

use crate::enums::{self, MaskKind};
use crate::error::Error;
use crate::tag::Tag;
use crate::ttlv::{DateTime, ItemType, Ttlv, Value, canonical_big_integer};

mod fast;

const MAX_DEPTH: usize = 64;

/// Parses JSON TTLV bytes, straight into the tree (no intermediate JSON document). The text is
/// checked to be UTF-8 once, whole, rather than string by string as it is read.
pub fn from_slice(bytes: &[u8]) -> Result<Ttlv, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        Error::JsonSyntax {
            problem: "text that is not UTF-8",
            line,
            column,
        }
    })?;
    from_str(text)
}

/// Parses JSON TTLV text: the common way of writing it by hand in one pass, anything else (and
/// every error) with serde_json's streaming reader ([`from_str_general`]).
pub fn from_str(text: &str) -> Result<Ttlv, Error> {
    match fast::read(text) {
        Some(tree) => Ok(tree),
        None => from_str_general(text),
    }
}

/// Parses JSON TTLV text with serde_json's streaming reader, whatever its key order, escapes
/// or numbers: what [`from_str`] does when its fast path declines (public for the tests that
/// check both agree).
#[doc(hidden)]
pub fn from_str_general(text: &str) -> Result<Ttlv, Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let tree = NodeSeed {
        depth: 0,
        hint: None,
    }
    .deserialize(&mut de)
    .map_err(explain)?;
    de.end().map_err(explain)?;
    Ok(tree)
}

/// Marks the messages of this decoder inside serde_json errors, to tell them from serde_json's
/// own (which may quote the input, key material included, and are never shown).
const OURS: &str = "\u{1}";

/// A decoding error raised inside serde_json, carrying this decoder's message.
fn ours<E: serde::de::Error>(error: Error) -> E {
    E::custom(format_args!("{OURS}{error}"))
}

/// This decoder's message with its position, or, for serde_json's own errors, the kind of
/// problem and where it is, without quoting the input.
fn explain(e: serde_json::Error) -> Error {
    let text = e.to_string();
    match text.strip_prefix(OURS) {
        Some(message) => Error::Json(message.to_owned()),
        None => Error::JsonSyntax {
            problem: match e.classify() {
                serde_json::error::Category::Data => "a JSON value of the wrong kind",
                serde_json::error::Category::Eof => "the JSON ends too early",
                _ => "malformed JSON",
            },
            line: e.line(),
            column: e.column(),
        },
    }
}

/// Streaming decoding of one node. Nodes whose `tag` and `type` come before their `value` (the
/// order Cosmian and this crate write) are decoded in one pass; others are buffered and decoded
/// by [`node`].
struct NodeSeed {
    depth: usize,
    hint: Option<Tag>,
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Tag,
    Type,
    Value,
    #[serde(other)]
    Other,
}

/// A `tag` or `type` string, read without allocating when possible.
struct Name<T>(fn(&str) -> Option<T>, &'static str);

impl<'de, T> serde::de::DeserializeSeed<'de> for Name<T> {
    type Value = (Option<T>, String);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T> serde::de::Visitor<'_> for Name<T> {
    type Value = (Option<T>, String);
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match (self.0)(v) {
            Some(t) => Ok((Some(t), String::new())),
            None => Ok((None, v.to_owned())),
        }
    }
}

/// The children of a structure, with the `AttributeName` hint for `AttributeValue`s.
struct ChildrenSeed {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for ChildrenSeed {
    type Value = Vec<Ttlv>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ChildrenSeed {
    type Value = Vec<Ttlv>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of TTLV nodes")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut children = crate::ttlv::Children::new();
        let mut hint = None;
        while let Some(child) = seq.next_element_seed(NodeSeed {
            depth: self.depth,
            hint,
        })? {
            if child.tag == Tag::ATTRIBUTE_NAME {
                hint = child.as_str().ok().and_then(enums::tag_of_attribute_name);
            }
            children.push(child);
        }
        Ok(children.finish())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for NodeSeed {
    type Value = Ttlv;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Ttlv, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NodeSeed {
    type Value = Ttlv;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TTLV node: an object with `tag`, `type` and `value`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ttlv, A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(ours::<A::Error>(Error::TooDeep { limit: MAX_DEPTH }));
        }
        let mut tag: Option<Tag> = None;
        let mut item_type: Option<ItemType> = None;
        let mut value: Option<Value> = None;
        let mut buffered: Option<J> = None;
        let mut seen = [false; 3];
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Tag => Some(0),
                Key::Type => Some(1),
                Key::Value => Some(2),
                Key::Other => None,
            };
            match slot {
                Some(i) if seen[i] => {
                    return Err(ours::<A::Error>(err(
                        "a TTLV node gives `tag`, `type` or `value` twice",
                    )));
                }
                Some(i) => seen[i] = true,
                None => {
                    return Err(ours::<A::Error>(err(
                        "a TTLV node has only the fields `tag`, `type` and `value`",
                    )));
                }
            }
            match key {
                Key::Tag => {
                    let (t, name) = map.next_value_seed(Name(Tag::from_name, "a tag name"))?;
                    tag = Some(t.ok_or_else(|| ours::<A::Error>(Error::UnknownTagName(name)))?);
                }
                Key::Type => {
                    let (t, name) =
                        map.next_value_seed(Name(ItemType::from_name, "an item type"))?;
                    item_type =
                        Some(t.ok_or_else(|| {
                            ours::<A::Error>(err(format!("unknown type `{name}`")))
                        })?);
                }
                Key::Value => match (tag, item_type) {
                    (Some(_), Some(ItemType::Structure)) => {
                        value = Some(Value::Structure(map.next_value_seed(ChildrenSeed {
                            depth: self.depth + 1,
                        })?));
                    }
                    (Some(tag), Some(item_type)) => {
                        let meaning = if tag == Tag::ATTRIBUTE_VALUE {
                            self.hint.unwrap_or(tag)
                        } else {
                            tag
                        };
                        value = Some(map.next_value_seed(LeafSeed {
                            tag,
                            item_type,
                            meaning,
                        })?);
                    }
                    _ => buffered = Some(map.next_value()?),
                },
                Key::Other => {}
            }
        }
        if let Some(value) = value {
            let tag = tag.ok_or_else(|| ours::<A::Error>(err("a node has no string `tag`")))?;
            return Ok(Ttlv { tag, value });
        }
        // The value came before the tag or type, or the type is absent (a structure): decode
        // the buffered value the slow way.
        let raw = buffered.ok_or_else(|| ours::<A::Error>(err("a node has no `value`")))?;
        let tag = tag.ok_or_else(|| ours::<A::Error>(err("a node has no string `tag`")))?;
        let item_type = item_type.unwrap_or(ItemType::Structure);
        let mut object = serde_json::Map::new();
        object.insert("tag".into(), J::String(tag.to_string()));
        object.insert("type".into(), J::String(item_type.name().into()));
        object.insert("value".into(), raw);
        node(&J::Object(object), self.depth, self.hint).map_err(ours::<A::Error>)
    }
}

/// A leaf's value read straight from the text (no `serde_json::Value` in between), once its
/// tag and type are known.
struct LeafSeed {
    tag: Tag,
    item_type: ItemType,
    meaning: Tag,
}

impl LeafSeed {
    fn read<E: serde::de::Error>(&self, raw: Raw<'_>) -> Result<Value, E> {
        leaf(self.tag, self.item_type, self.meaning, raw).map_err(ours::<E>)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for LeafSeed {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LeafSeed {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TTLV value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.read(Raw::Str(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.read(Raw::Num {
            i: Some(v),
            u: u64::try_from(v).ok(),
        })
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.read(Raw::Num {
            i: i64::try_from(v).ok(),
            u: Some(v),
        })
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Value, E> {
        self.read(Raw::Num { i: None, u: None })
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.read(Raw::Bool(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.read(Raw::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        self.read(Raw::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        self.read(Raw::Other)
    }
}

/// A leaf's JSON value as [`leaf`] reads it, from the text or from a parsed document.
enum Raw<'a> {
    Str(&'a str),
    /// A number, as an `i64` and as a `u64` when it is an integer within their range.
    Num {
        i: Option<i64>,
        u: Option<u64>,
    },
    Bool(bool),
    /// `null`, an array or an object.
    Other,
}

impl<'a> Raw<'a> {
    fn of(v: &'a J) -> Raw<'a> {
        match v {
            J::String(s) => Raw::Str(s),
            J::Number(n) => Raw::Num {
                i: n.as_i64(),
                u: n.as_u64(),
            },
            J::Bool(b) => Raw::Bool(*b),
            _ => Raw::Other,
        }
    }

    fn as_str(&self) -> Option<&'a str> {
        match self {
            Raw::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Converts an already parsed JSON value.
pub fn from_value(v: &J) -> Result<Ttlv, Error> {
    node(v, 0, None)
}

fn err(msg: impl Into<String>) -> Error {
    Error::Json(msg.into())
}

fn node(v: &J, depth: usize, hint: Option<Tag>) -> Result<Ttlv, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep { limit: MAX_DEPTH });
    }
    let obj = v
        .as_object()
        .ok_or_else(|| err("every node must be an object with `tag`, `type` and `value`"))?;
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "tag" | "type" | "value"))
    {
        return Err(err(
            "a TTLV node has only the fields `tag`, `type` and `value`",
        ));
    }
    let tag_name = obj
        .get("tag")
        .and_then(J::as_str)
        .ok_or_else(|| err("a node has no string `tag`"))?;
    let tag = Tag::from_name(tag_name).ok_or_else(|| Error::UnknownTagName(tag_name.to_owned()))?;
    let item_type = match obj.get("type") {
        None => ItemType::Structure,
        Some(J::String(t)) => {
            ItemType::from_name(t).ok_or_else(|| err(format!("{tag}: unknown type `{t}`")))?
        }
        Some(_) => return Err(err(format!("{tag}: `type` must be a string"))),
    };
    let raw = obj
        .get("value")
        .ok_or_else(|| err(format!("{tag}: missing `value`")))?;
    // `AttributeValue` takes its meaning from the sibling `AttributeName` (KMIP 1.x attributes).
    let meaning = if tag == Tag::ATTRIBUTE_VALUE {
        hint.unwrap_or(tag)
    } else {
        tag
    };
    let value = match item_type {
        ItemType::Structure => {
            let arr = raw.as_array().ok_or_else(|| Error::BadValue {
                tag,
                reason: "invalid Structure value: a structure's value must be an array".into(),
            })?;
            let mut children = Vec::with_capacity(arr.len());
            let mut attr_hint = None;
            for c in arr {
                let child = node(c, depth + 1, attr_hint)?;
                if child.tag == Tag::ATTRIBUTE_NAME {
                    attr_hint = child.as_str().ok().and_then(enums::tag_of_attribute_name);
                }
                children.push(child);
            }
            Value::Structure(children)
        }
        _ => leaf(tag, item_type, meaning, Raw::of(raw))?,
    };
    Ok(Ttlv { tag, value })
}

/// The value of a non-structure item from its JSON value.
fn leaf(tag: Tag, item_type: ItemType, meaning: Tag, raw: Raw<'_>) -> Result<Value, Error> {
    let bad = |what: &str| Error::BadValue {
        tag,
        reason: format!("invalid {} value: {what}", item_type.name()),
    };
    Ok(match item_type {
        ItemType::Structure => return Err(bad("a structure's value must be an array")),
        ItemType::Integer => Value::Integer(match raw {
            Raw::Num { i, .. } => i
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad("out of range"))?,
            Raw::Str(s) => parse_int(s)
                .and_then(|n| i32::try_from(n).ok())
                .or_else(|| MaskKind::for_tag(meaning).and_then(|m| m.parse(s)))
                .ok_or_else(|| bad(s))?,
            _ => return Err(bad("expected a number")),
        }),
        ItemType::LongInteger | ItemType::DateTimeExtended => {
            let n = match raw {
                Raw::Num { i, .. } => i.ok_or_else(|| bad("out of range"))?,
                Raw::Str(s) => parse_int(s).ok_or_else(|| bad("not a number"))?,
                _ => return Err(bad("expected a string")),
            };
            if item_type == ItemType::LongInteger {
                Value::LongInteger(n)
            } else {
                Value::DateTimeExtended(n)
            }
        }
        ItemType::BigInteger => {
            let s = raw.as_str().ok_or_else(|| bad("expected a hex string"))?;
            let h = s.strip_prefix("0x").unwrap_or(s);
            let h = if h.len() % 2 == 1 {
                format!("0{h}")
            } else {
                h.to_owned()
            };
            // Never quoted: big integers carry private key material.
            Value::BigInteger(canonical_big_integer(
                hex_decode(&h).ok_or_else(|| bad("not hexadecimal"))?,
            ))
        }
        ItemType::Enumeration => Value::Enumeration(match raw {
            Raw::Str(s) => enums::enum_value(enums::enum_domain(meaning), s).ok_or_else(|| {
                Error::BadValue {
                    tag,
                    reason: format!("`{s}` is not a known name for this enumeration"),
                }
            })?,
            Raw::Num { u, .. } => u
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("out of range"))?,
            _ => return Err(bad("expected a name")),
        }),
        ItemType::Boolean => Value::Boolean(match raw {
            Raw::Bool(b) => b,
            Raw::Str("true") => true,
            Raw::Str("false") => false,
            _ => return Err(bad("expected true or false")),
        }),
        ItemType::TextString => Value::TextString(
            raw.as_str()
                .ok_or_else(|| bad("expected a string"))?
                .to_owned(),
        ),
        ItemType::ByteString => {
            let s = raw.as_str().ok_or_else(|| bad("expected a hex string"))?;
            Value::ByteString(hex_decode(s).ok_or_else(|| bad("not hexadecimal"))?)
        }
        ItemType::DateTime => Value::DateTime(match raw {
            Raw::Str(s) => DateTime::parse_rfc3339(s)
                .or_else(|| parse_int(s).map(DateTime))
                .ok_or_else(|| bad("expected an RFC 3339 date"))?,
            Raw::Num { i, .. } => DateTime(i.ok_or_else(|| bad("out of range"))?),
            _ => return Err(bad("expected an RFC 3339 date")),
        }),
        ItemType::Interval => Value::Interval(match raw {
            Raw::Num { u, .. } => u
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("out of range"))?,
            Raw::Str(s) => parse_int(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(s))?,
            _ => return Err(bad("expected a number")),
        }),
    })
}

fn parse_int(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok().map(|u| u as i64)
    } else {
        s.parse().ok()
    }
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; b.len() / 2];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (high, low) = (
            HEX_DIGITS[usize::from(pair[0])],
            HEX_DIGITS[usize::from(pair[1])],
        );
        if (high | low) > 0x0F {
            return None;
        }
        *o = high << 4 | low;
    }
    Some(out)
}

/// The value of each hex digit (either case); 0xFF for any other byte.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Appends upper-case hex.
pub fn hex_encode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    // Through a buffer on the stack, a chunk at a time, two digits per table entry: a push
    // per digit checks the capacity and the character's width every time.
    let mut digits = [0u8; 128];
    for chunk in bytes.chunks(64) {
        for (pair, b) in digits.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
        }
        // ASCII digits: always UTF-8.
        out.push_str(std::str::from_utf8(&digits[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// The two upper-case hex digits of each byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const D: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [D[i >> 4], D[i & 15]];
        i += 1;
    }
    table
};

/// Encodes to JSON TTLV text.
pub fn to_string(item: &Ttlv) -> String {
    let mut out = String::with_capacity(written_size(item));
    write_node(item, &mut out, None);
    out
}

/// About the length of `item` in JSON TTLV: enough that the text of a small answer is written
/// without growing its buffer, and exactly the hex of a large byte string (a 10 MB encrypt
/// answers 21 MB of text, which a buffer grown by doubling would hold in 32 MB).
fn written_size(item: &Ttlv) -> usize {
    // The tag, type and punctuation of one item, with a short value.
    const ITEM: usize = 64;
    ITEM + match &item.value {
        Value::Structure(children) => children.iter().map(written_size).sum(),
        Value::ByteString(b) | Value::BigInteger(b) => 2 * b.len(),
        Value::TextString(t) => t.len(),
        _ => 0,
    }
}

/// Writes text that needs no escape: tag and enumeration names (letters and digits), dates.
fn write_name(name: &str, out: &mut String) {
    debug_assert!(!name.bytes().any(needs_escape), "{name}");
    out.push('"');
    out.push_str(name);
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Writes `s` as a JSON string: runs that need no escape are copied whole (most text has
/// none).
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let mut run = 0;
    let bytes = s.as_bytes();
    while let Some(at) = bytes[run..].iter().position(|b| needs_escape(*b)) {
        let i = run + at;
        let escape = match bytes[i] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "",
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(&s[run..i]);
        run = i + 1;
        if escape.is_empty() {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", bytes[i]);
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// The children with every instance of one tag next to the first, when they are not already:
/// Cosmian's clients read the instances of a multi-instance attribute in `Attributes` as one
/// run and refuse a second run ("duplicate field"). `None` when nothing moves.
fn group_by_tag(children: &[Ttlv]) -> Option<Vec<Ttlv>> {
    let scattered = children.iter().enumerate().any(|(i, c)| {
        i > 0 && children[i - 1].tag != c.tag && children[..i - 1].iter().any(|p| p.tag == c.tag)
    });
    if !scattered {
        return None;
    }
    let mut order: Vec<Tag> = Vec::new();
    for c in children {
        if !order.contains(&c.tag) {
            order.push(c.tag);
        }
    }
    Some(
        order
            .iter()
            .flat_map(|t| children.iter().filter(move |c| c.tag == *t))
            .cloned()
            .collect(),
    )
}

/// The tree as JSON writes it (and reads it back): `item` with the attributes of every
/// `Attributes` structure grouped by tag (see [`group_by_tag`]).
pub fn as_written(item: &Ttlv) -> Ttlv {
    match &item.value {
        Value::Structure(children) => {
            let grouped = if item.tag == Tag::ATTRIBUTES {
                group_by_tag(children)
            } else {
                None
            };
            let children = grouped.as_deref().unwrap_or(children);
            Ttlv::structure(item.tag, children.iter().map(as_written).collect())
        }
        _ => item.clone(),
    }
}

fn write_node(item: &Ttlv, out: &mut String, hint: Option<Tag>) {
    use std::fmt::Write;
    out.push_str("{\"tag\":");
    match item.tag.name() {
        Some(n) => write_name(n, out),
        None => {
            let _ = write!(out, "\"0x{:06X}\"", item.tag.0);
        }
    }
    out.push_str(",\"type\":\"");
    out.push_str(item.value.item_type().name());
    out.push_str("\",\"value\":");
    let meaning = if item.tag == Tag::ATTRIBUTE_VALUE {
        hint.unwrap_or(item.tag)
    } else {
        item.tag
    };
    // `write!` into a String cannot fail.
    match &item.value {
        Value::Structure(children) => {
            out.push('[');
            let mut attr_hint = None;
            let grouped;
            let children: &[Ttlv] = if item.tag == Tag::ATTRIBUTES {
                grouped = group_by_tag(children);
                grouped.as_deref().unwrap_or(children)
            } else {
                children
            };
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_node(c, out, attr_hint);
                if c.tag == Tag::ATTRIBUTE_NAME {
                    attr_hint = c.as_str().ok().and_then(enums::tag_of_attribute_name);
                }
            }
            out.push(']');
        }
        Value::Integer(v) => {
            let _ = write!(out, "{v}");
        }
        Value::LongInteger(v) | Value::DateTimeExtended(v) => {
            let _ = write!(out, "\"0x{:016X}\"", *v as u64);
        }
        Value::BigInteger(b) => {
            out.push_str("\"0x");
            hex_encode_into(b, out);
            out.push('"');
        }
        Value::Enumeration(v) => {
            match enums::enum_domain(meaning).and_then(|d| enums::enum_name(d, *v, true)) {
                Some(name) => write_name(name, out),
                None => {
                    let _ = write!(out, "\"0x{v:08X}\"");
                }
            };
        }
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::TextString(s) => write_str(s, out),
        Value::ByteString(b) => {
            out.push('"');
            hex_encode_into(b, out);
            out.push('"');
        }
        Value::DateTime(d) => match d.to_rfc3339() {
            Some(s) => write_name(&s, out),
            None => {
                let _ = write!(out, "\"0x{:016X}\"", d.0 as u64);
            }
        },
        Value::Interval(v) => {
            let _ = write!(out, "{v}");
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_upper_case_digit_pairs_at_every_length() {
        for len in [0, 1, 2, 63, 64, 65, 127, 128, 129, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut out = "x".to_owned();
            hex_encode_into(&bytes, &mut out);
            let expected: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(out, format!("x{expected}"));
            assert_eq!(hex_decode(&out[1..]), Some(bytes));
        }
    }

    /// A large answer's text is written into a buffer of its size, not one grown by doubling.
    #[test]
    fn a_large_answer_is_written_without_spare_room() {
        let item = Ttlv::structure(
            Tag::from_name("EncryptResponse").expect("tag"),
            vec![
                Ttlv::new(
                    Tag::from_name("UniqueIdentifier").expect("tag"),
                    Value::TextString("k".into()),
                ),
                Ttlv::new(
                    Tag::from_name("Data").expect("tag"),
                    Value::ByteString(vec![7; 3 << 20]),
                ),
            ],
        );
        let text = to_string(&item);
        assert!(text.len() > 6 << 20);
        assert!(
            text.capacity() - text.len() < 4096,
            "{} for {}",
            text.capacity(),
            text.len()
        );
        assert_eq!(from_str(&text).expect("decode"), item);
    }

    #[test]
    fn cosmian_shapes() {
        let item = Ttlv::structure(
            Tag::REQUEST_PAYLOAD,
            vec![
                Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(vec![0xab, 0x01])),
                Ttlv::new(Tag::INITIAL_DATE, Value::DateTime(DateTime(0))),
                Ttlv::new(Tag::ITERATION_COUNT, Value::LongInteger(1)),
                Ttlv::new(Tag::HASHING_ALGORITHM, Value::Enumeration(6)),
            ],
        );
        let s = to_string(&item);
        assert!(
            s.contains(r#"{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"}"#),
            "{s}"
        );
        assert!(s.contains(r#""value":"AB01""#));
        assert!(s.contains(r#""value":"1970-01-01T00:00:00Z""#));
        assert!(s.contains(r#""value":"0x0000000000000001""#));
        assert!(s.contains(r#""value":"SHA256""#));
        assert_eq!(from_str(&s).unwrap(), item);
    }

    #[test]
    fn key_order_and_missing_type_do_not_matter() {
        let shuffled = r#"{"value":[{"value":"AES","type":"Enumeration","tag":"CryptographicAlgorithm"},
            {"tag":"AttributeName","value":"Cryptographic Usage Mask","type":"TextString"}],"tag":"Attributes"}"#;
        let ordered = r#"{"tag":"Attributes","type":"Structure","value":[
            {"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},
            {"tag":"AttributeName","type":"TextString","value":"Cryptographic Usage Mask"}]}"#;
        let streamed = from_str(ordered).unwrap();
        assert_eq!(from_str(shuffled).unwrap(), streamed);
        assert_eq!(
            from_value(&serde_json::from_str(ordered).unwrap()).unwrap(),
            streamed
        );
        assert!(
            from_str(r#"{"tag":"Attributes"}"#).is_err(),
            "a node without value"
        );
        assert!(
            from_str(r#"{"type":"Integer","value":1}"#).is_err(),
            "a node without tag"
        );
        assert!(
            from_str(r#"{"tag":"Attributes","type":"Structure","value":[]} trailing"#).is_err()
        );
    }

    /// Cosmian 5.x leaves out `type` on some structures, at any depth, among typed nodes.
    #[test]
    fn typeless_structures_nested_and_mixed() {
        let typeless = r#"{"tag":"Revoke","value":[
            {"tag":"UniqueIdentifier","type":"TextString","value":"k1"},
            {"tag":"RevocationReason","value":[
                {"tag":"RevocationReasonCode","type":"Enumeration","value":"KeyCompromise"},
                {"tag":"RevocationMessage","type":"TextString","value":"lost"}]},
            {"tag":"CompromiseOccurrenceDate","type":"DateTime","value":"2024-01-02T03:04:05Z"}]}"#;
        let typed = r#"{"tag":"Revoke","type":"Structure","value":[
            {"tag":"UniqueIdentifier","type":"TextString","value":"k1"},
            {"tag":"RevocationReason","type":"Structure","value":[
                {"tag":"RevocationReasonCode","type":"Enumeration","value":"KeyCompromise"},
                {"tag":"RevocationMessage","type":"TextString","value":"lost"}]},
            {"tag":"CompromiseOccurrenceDate","type":"DateTime","value":"2024-01-02T03:04:05Z"}]}"#;
        let expected = from_str(typed).unwrap();
        assert_eq!(from_str(typeless).unwrap(), expected);
        assert_eq!(
            from_value(&serde_json::from_str(typeless).unwrap()).unwrap(),
            expected
        );
        let reason = &expected.children().unwrap()[1];
        assert!(matches!(reason.value, Value::Structure(ref c) if c.len() == 2));
        // Deeper: a typeless structure inside a typeless structure inside a typed one, with the
        // value before the tag.
        let deep = r#"{"tag":"RequestPayload","type":"Structure","value":[{"tag":"Attributes","value":[
            {"value":[{"tag":"NameValue","type":"TextString","value":"n"},
                {"tag":"NameType","type":"Enumeration","value":"UninterpretedTextString"}],"tag":"Name"}]}]}"#;
        let tree = from_str(deep).unwrap();
        let name = &tree.children().unwrap()[0].children().unwrap()[0];
        assert_eq!(name.tag, Tag::NAME);
        assert_eq!(name.children().unwrap()[0].as_str().unwrap(), "n");
    }

    /// Leniency stops at the missing `type` of an array: everything else about a node is strict.
    #[test]
    fn typeless_nodes_stay_strict_otherwise() {
        for (bad, why) in [
            (
                r#"{"tag":"UniqueIdentifier","value":"k1"}"#,
                "a typeless non-array",
            ),
            (
                r#"{"tag":"Revoke","value":[{"tag":"UniqueIdentifier","value":"k1"}]}"#,
                "nested",
            ),
            (
                r#"{"tag":"Revoke","value":{"tag":"UniqueIdentifier"}}"#,
                "an object value",
            ),
            (
                r#"{"tag":"Revoke","value":[],"extra":1}"#,
                "an unknown field",
            ),
            (
                r#"{"tag":"Revoke","tag":"Revoke","value":[]}"#,
                "a field twice",
            ),
            (
                r#"{"tag":"Revoke","type":"Structure","value":"x"}"#,
                "a typed non-array",
            ),
            (
                r#"{"tag":"Revoke","value":[{"tag":"Nope","value":[]}]}"#,
                "an unknown tag",
            ),
        ] {
            assert!(from_str(bad).is_err(), "{why} is refused");
        }
        assert!(
            from_value(&serde_json::from_str(r#"{"tag":"Revoke","value":[],"extra":1}"#).unwrap())
                .is_err()
        );
    }

    #[test]
    fn leaves_read_from_the_text_as_from_a_document() {
        // The same leaf decoded in one pass (tag and type first) and the slow way (value
        // first, through a `serde_json::Value`): same value or same error, whatever the JSON.
        let leaves = [
            ("Integer", r#"7"#),
            ("Integer", r#"-7"#),
            ("Integer", r#""0x10""#),
            ("Integer", r#"4294967296"#),
            ("Integer", r#"1.5"#),
            ("Integer", r#"null"#),
            ("Integer", r#"[1]"#),
            ("LongInteger", r#"-9223372036854775808"#),
            ("LongInteger", r#"18446744073709551615"#),
            ("LongInteger", r#""0x7FFFFFFFFFFFFFFF""#),
            ("Enumeration", r#""AES""#),
            ("Enumeration", r#"3"#),
            ("Enumeration", r#"-3"#),
            ("Enumeration", r#"{"a":1}"#),
            ("Boolean", r#"true"#),
            ("Boolean", r#""false""#),
            ("Boolean", r#"1"#),
            ("TextString", r#""a \"quoted\" \u00e9 text""#),
            ("TextString", r#"12"#),
            ("ByteString", r#""00ff7F""#),
            ("ByteString", r#""0g""#),
            ("ByteString", r#""abc""#),
            ("DateTime", r#""2026-11-29T08:00:00Z""#),
            ("DateTime", r#"1700000000"#),
            ("DateTime", r#"1.0"#),
            ("Interval", r#"86400"#),
            ("Interval", r#"-1"#),
            ("BigInteger", r#""0x0102""#),
        ];
        for (item_type, value) in leaves {
            let streamed = from_str(&format!(
                r#"{{"tag":"CryptographicAlgorithm","type":"{item_type}","value":{value}}}"#
            ))
            .map_err(|e| e.to_string().split(" at line").next().map(str::to_owned));
            let buffered = from_str(&format!(
                r#"{{"value":{value},"type":"{item_type}","tag":"CryptographicAlgorithm"}}"#
            ))
            .map_err(|e| e.to_string().split(" at line").next().map(str::to_owned));
            assert_eq!(streamed, buffered, "{item_type} {value}");
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for text in [
            "",
            "plain",
            "say \"hi\"",
            "back\\slash",
            "line\nfeed\r\ttab",
            &all_controls,
            "\u{7f} é ü 日本 🔑",
            "\"",
            "ends with a newline\n",
        ] {
            let mut ours = String::new();
            write_str(text, &mut ours);
            assert_eq!(ours, serde_json::to_string(text).unwrap(), "{text:?}");
            let tree = Ttlv::new(Tag::NAME_VALUE, Value::TextString(text.to_owned()));
            assert_eq!(from_str(&to_string(&tree)).unwrap(), tree);
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_with_its_place() {
        let mut body = b"{\"tag\":\"Revoke\",\n \"value\":[\"".to_vec();
        body.extend_from_slice(&[0xC3, 0x28]);
        body.extend_from_slice(b"\"]}");
        let message = from_slice(&body).unwrap_err().to_string();
        assert!(message.contains("not UTF-8"), "{message}");
        assert!(message.contains("line 2 column 12"), "{message}");
    }

    /// Errors say what is wrong and where, and never quote the input's values.
    #[test]
    fn errors_explain_without_quoting_values() {
        let unknown =
            from_str(r#"{"tag":"Revoke","value":[{"tag":"Bogus","type":"Boolean","value":true}]}"#)
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("unknown tag name `Bogus`"), "{unknown}");
        assert!(unknown.contains("line 1 column"), "{unknown}");
        let secret = "C0FFEE0123456789SECRET";
        for bad in [
            format!(r#"{{"tag":"Revoke","value":"{secret}"}}"#),
            format!(r#"{{"tag":"KeyMaterial","type":"BigInteger","value":"{secret}"}}"#),
            format!(r#"{{"tag":"KeyMaterial","type":"ByteString","value":"{secret}"}}"#),
            format!(r#"{{"tag":{{"x":"{secret}"}},"value":[]}}"#),
            format!(r#"{{"tag":"Revoke","value":["{secret}"]}}"#),
            format!(r#"{{"tag":"Revoke","value":[{secret}"#),
        ] {
            let message = from_str(&bad).unwrap_err().to_string();
            assert!(!message.contains("SECRET"), "{message}");
        }
    }

    /// Instances of one attribute are written together; other structures keep their order.
    #[test]
    fn attributes_are_grouped_by_tag_in_json() {
        let vendor = |name: &str| {
            Ttlv::structure(
                Tag::ATTRIBUTE,
                vec![
                    Ttlv::new(Tag::VENDOR_IDENTIFICATION, Value::TextString("v".into())),
                    Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
                    Ttlv::new(Tag::ATTRIBUTE_VALUE, Value::TextString("x".into())),
                ],
            )
        };
        let length = Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256));
        let children = vec![vendor("a"), length.clone(), vendor("b")];
        let text = to_string(&Ttlv::structure(Tag::ATTRIBUTES, children.clone()));
        let back = from_str(&text).unwrap();
        let tags: Vec<Tag> = back.children().unwrap().iter().map(|c| c.tag).collect();
        assert_eq!(
            tags,
            [Tag::ATTRIBUTE, Tag::ATTRIBUTE, Tag::CRYPTOGRAPHIC_LENGTH]
        );
        let other = from_str(&to_string(&Ttlv::structure(
            Tag::TEMPLATE_ATTRIBUTE,
            children.clone(),
        )))
        .unwrap();
        assert_eq!(other.children().unwrap(), &children[..]);
    }

    #[test]
    fn accepts_variants() {
        let t = from_str(r#"{"tag":"RequestPayload","value":[{"tag":"HashingAlgorithm","type":"Enumeration","value":"SHA_256"},
            {"tag":"ObjectType","type":"Enumeration","value":"0x00000002"},
            {"tag":"CryptographicUsageMask","type":"Integer","value":"Encrypt Decrypt"}]}"#)
        .unwrap();
        let c = t.children().unwrap();
        assert_eq!(c[0].value, Value::Enumeration(6));
        assert_eq!(c[1].value, Value::Enumeration(2));
        assert_eq!(c[2].value, Value::Integer(12));
        assert!(from_str(r#"{"tag":"Nope","type":"Integer","value":1}"#).is_err());
        assert!(from_str(r#"{"tag":"ObjectType","type":"Enumeration","value":"Bogus"}"#).is_err());
    }
}
