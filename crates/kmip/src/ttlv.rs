//! The TTLV tree: tag, type, value. Every encoding decodes into this and encodes from it.

use crate::error::Error;
use crate::tag::Tag;

/// One TTLV item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ttlv {
    pub tag: Tag,
    pub value: Value,
}

/// Seconds since the Unix epoch, the KMIP `DateTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub i64);

impl DateTime {
    /// The current time, to the second.
    pub fn now() -> DateTime {
        DateTime(time::OffsetDateTime::now_utc().unix_timestamp())
    }

    /// RFC 3339 in UTC (`2024-01-02T03:04:05Z`), or `None` outside the years 0..=9999.
    pub fn to_rfc3339(self) -> Option<String> {
        let t = time::OffsetDateTime::from_unix_timestamp(self.0).ok()?;
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }

    /// Parses RFC 3339 (any offset; converted to UTC).
    pub fn parse_rfc3339(s: &str) -> Option<DateTime> {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        Some(DateTime(t.unix_timestamp()))
    }
}

/// The value of an item, one variant per KMIP item type. `Debug` shows the length of byte
/// strings and big integers, not their bytes: they may be key material.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Ttlv>),
    Integer(i32),
    LongInteger(i64),
    /// Big-endian two's complement, length a multiple of 8 (the decoders sign-extend to it).
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    DateTime(DateTime),
    Interval(u32),
    /// Microseconds since the Unix epoch.
    DateTimeExtended(i64),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Structure(c) => f.debug_tuple("Structure").field(c).finish(),
            Value::Integer(v) => f.debug_tuple("Integer").field(v).finish(),
            Value::LongInteger(v) => f.debug_tuple("LongInteger").field(v).finish(),
            Value::BigInteger(b) => write!(f, "BigInteger({} bytes)", b.len()),
            Value::Enumeration(v) => f.debug_tuple("Enumeration").field(v).finish(),
            Value::Boolean(v) => f.debug_tuple("Boolean").field(v).finish(),
            Value::TextString(v) => f.debug_tuple("TextString").field(v).finish(),
            Value::ByteString(b) => write!(f, "ByteString({} bytes)", b.len()),
            Value::DateTime(v) => f.debug_tuple("DateTime").field(v).finish(),
            Value::Interval(v) => f.debug_tuple("Interval").field(v).finish(),
            Value::DateTimeExtended(v) => f.debug_tuple("DateTimeExtended").field(v).finish(),
        }
    }
}

/// KMIP item types with their binary codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemType {
    Structure = 0x01,
    Integer = 0x02,
    LongInteger = 0x03,
    BigInteger = 0x04,
    Enumeration = 0x05,
    Boolean = 0x06,
    TextString = 0x07,
    ByteString = 0x08,
    DateTime = 0x09,
    Interval = 0x0A,
    DateTimeExtended = 0x0B,
}

impl ItemType {
    pub fn from_code(code: u8) -> Option<ItemType> {
        Some(match code {
            0x01 => ItemType::Structure,
            0x02 => ItemType::Integer,
            0x03 => ItemType::LongInteger,
            0x04 => ItemType::BigInteger,
            0x05 => ItemType::Enumeration,
            0x06 => ItemType::Boolean,
            0x07 => ItemType::TextString,
            0x08 => ItemType::ByteString,
            0x09 => ItemType::DateTime,
            0x0A => ItemType::Interval,
            0x0B => ItemType::DateTimeExtended,
            _ => return None,
        })
    }

    /// The name used by the JSON and XML encodings.
    pub fn name(self) -> &'static str {
        match self {
            ItemType::Structure => "Structure",
            ItemType::Integer => "Integer",
            ItemType::LongInteger => "LongInteger",
            ItemType::BigInteger => "BigInteger",
            ItemType::Enumeration => "Enumeration",
            ItemType::Boolean => "Boolean",
            ItemType::TextString => "TextString",
            ItemType::ByteString => "ByteString",
            ItemType::DateTime => "DateTime",
            ItemType::Interval => "Interval",
            ItemType::DateTimeExtended => "DateTimeExtended",
        }
    }

    pub fn from_name(name: &str) -> Option<ItemType> {
        Some(match name {
            "Structure" => ItemType::Structure,
            "Integer" => ItemType::Integer,
            "LongInteger" => ItemType::LongInteger,
            "BigInteger" => ItemType::BigInteger,
            "Enumeration" => ItemType::Enumeration,
            "Boolean" => ItemType::Boolean,
            "TextString" => ItemType::TextString,
            "ByteString" => ItemType::ByteString,
            "DateTime" => ItemType::DateTime,
            "Interval" => ItemType::Interval,
            "DateTimeExtended" => ItemType::DateTimeExtended,
            _ => return None,
        })
    }
}

impl Value {
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

/// Sign-extends a big-endian two's complement integer to a multiple of 8 bytes (at least 8).
pub fn canonical_big_integer(mut bytes: Vec<u8>) -> Vec<u8> {
    let rem = bytes.len() % 8;
    if rem != 0 || bytes.is_empty() {
        let pad = if bytes.is_empty() { 8 } else { 8 - rem };
        let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            0xFF
        } else {
            0x00
        };
        let mut out = vec![fill; pad];
        out.append(&mut bytes);
        return out;
    }
    bytes
}

/// Gathers the children of a structure as a decoder reads them, into a `Vec` of exactly their
/// number when there are few (most structures have one to four): a `Vec` grown by `push`
/// starts at four, and a 100,000-wide structure of two-child structures then held twice the
/// memory its children need.
pub(crate) struct Children {
    first: [Option<Ttlv>; Children::INLINE],
    count: usize,
    spilled: Vec<Ttlv>,
}

impl Children {
    const INLINE: usize = 8;

    pub(crate) fn new() -> Children {
        Children {
            first: Default::default(),
            count: 0,
            spilled: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, child: Ttlv) {
        if self.count < Self::INLINE {
            self.first[self.count] = Some(child);
        } else {
            if self.spilled.is_empty() {
                self.spilled.reserve(Self::INLINE * 2);
                self.spilled
                    .extend(self.first.iter_mut().filter_map(Option::take));
            }
            self.spilled.push(child);
        }
        self.count += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<Ttlv> {
        if self.count > Self::INLINE {
            return self.spilled;
        }
        let mut out = Vec::with_capacity(self.count);
        out.extend(self.first.iter_mut().filter_map(Option::take));
        out
    }
}

impl Ttlv {
    pub fn new(tag: Tag, value: Value) -> Ttlv {
        Ttlv { tag, value }
    }

    pub fn structure(tag: Tag, children: Vec<Ttlv>) -> Ttlv {
        Ttlv {
            tag,
            value: Value::Structure(children),
        }
    }

    fn wrong(&self, expected: ItemType) -> Error {
        Error::WrongType {
            tag: self.tag,
            expected: expected.name(),
            found: self.value.item_type().name(),
        }
    }

    pub fn children(&self) -> Result<&[Ttlv], Error> {
        match &self.value {
            Value::Structure(c) => Ok(c),
            _ => Err(self.wrong(ItemType::Structure)),
        }
    }

    pub fn into_children(self) -> Result<Vec<Ttlv>, Error> {
        match self.value {
            Value::Structure(c) => Ok(c),
            _ => Err(Error::WrongType {
                tag: self.tag,
                expected: "Structure",
                found: self.value.item_type().name(),
            }),
        }
    }

    /// The first child with this tag.
    pub fn child(&self, tag: Tag) -> Option<&Ttlv> {
        match &self.value {
            Value::Structure(c) => c.iter().find(|t| t.tag == tag),
            _ => None,
        }
    }

    pub fn as_i32(&self) -> Result<i32, Error> {
        match self.value {
            Value::Integer(v) => Ok(v),
            _ => Err(self.wrong(ItemType::Integer)),
        }
    }

    pub fn as_i64(&self) -> Result<i64, Error> {
        match self.value {
            Value::LongInteger(v) => Ok(v),
            _ => Err(self.wrong(ItemType::LongInteger)),
        }
    }

    pub fn as_enum(&self) -> Result<u32, Error> {
        match self.value {
            Value::Enumeration(v) => Ok(v),
            _ => Err(self.wrong(ItemType::Enumeration)),
        }
    }

    pub fn as_bool(&self) -> Result<bool, Error> {
        match self.value {
            Value::Boolean(v) => Ok(v),
            _ => Err(self.wrong(ItemType::Boolean)),
        }
    }

    pub fn as_str(&self) -> Result<&str, Error> {
        match &self.value {
            Value::TextString(v) => Ok(v),
            _ => Err(self.wrong(ItemType::TextString)),
        }
    }

    pub fn as_bytes(&self) -> Result<&[u8], Error> {
        match &self.value {
            Value::ByteString(v) => Ok(v),
            _ => Err(self.wrong(ItemType::ByteString)),
        }
    }

    pub fn as_datetime(&self) -> Result<DateTime, Error> {
        match self.value {
            Value::DateTime(v) => Ok(v),
            _ => Err(self.wrong(ItemType::DateTime)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_of_bytes_not_the_bytes() {
        let key = Ttlv::structure(
            Tag::KEY_MATERIAL,
            vec![
                Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(vec![0xAB; 32])),
                Ttlv::new(Tag::KEY_MATERIAL, Value::BigInteger(vec![0xCD; 16])),
                Ttlv::new(Tag::NAME_VALUE, Value::TextString("label".into())),
            ],
        );
        let shown = format!("{key:?}");
        assert!(shown.contains("ByteString(32 bytes)"), "{shown}");
        assert!(shown.contains("BigInteger(16 bytes)"), "{shown}");
        assert!(shown.contains("\"label\""), "{shown}");
        for secret in ["171", "205"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    /// Children come out in order, however many; up to eight, in a `Vec` of exactly their
    /// number.
    #[test]
    fn children_keep_their_order_and_few_take_no_spare_room() {
        for n in 0..40 {
            let mut children = Children::new();
            for i in 0..n {
                children.push(Ttlv::new(Tag::OBJECT_TYPE, Value::Integer(i)));
            }
            let out = children.finish();
            let values: Vec<i32> = out.iter().map(|c| c.as_i32().unwrap()).collect();
            assert_eq!(values, (0..n).collect::<Vec<_>>());
            if n <= 8 {
                assert_eq!(out.capacity(), out.len(), "{n} children");
            }
        }
    }
}
