//! KMIP tags: a 3-byte number with a specification name; unknown tags are kept as numbers.

use std::fmt;

use crate::generated::{TAGS_BY_NAME, TAGS_BY_VALUE};

/// A KMIP tag. Known tags are associated constants (`Tag::UNIQUE_IDENTIFIER`); any other value
/// (vendor extensions, tags of later versions) is carried through unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// KMIP 2.x vendor attributes are `Attribute` structures holding `VendorIdentification`,
    /// `AttributeName` and `AttributeValue`; Cosmian's JSON calls them `VendorAttribute`.
    pub const VENDOR_ATTRIBUTE: Tag = Tag::ATTRIBUTE;

    /// The specification name of this tag (`"UniqueIdentifier"`), if this crate knows it.
    pub fn name(self) -> Option<&'static str> {
        TAGS_BY_VALUE
            .binary_search_by_key(&self.0, |(v, _)| *v)
            .ok()
            .map(|i| TAGS_BY_VALUE[i].1)
    }

    /// The tag of a specification name, or of a `0x42XXXX` hex spelling.
    pub fn from_name(name: &str) -> Option<Tag> {
        if let Ok(i) = TAGS_BY_NAME.binary_search_by_key(&name, |(n, _)| n) {
            return Some(Tag(TAGS_BY_NAME[i].1));
        }
        // Names Cosmian's JSON uses for structures that share a specification tag.
        match name {
            "VendorAttribute" => return Some(Tag::ATTRIBUTE),
            "VendorAttributeReference" => return Some(Tag::ATTRIBUTE_REFERENCE),
            _ => {}
        }
        let hex = name.strip_prefix("0x").or_else(|| name.strip_prefix("0X"))?;
        let v = u32::from_str_radix(hex, 16).ok()?;
        (v <= 0xFF_FFFF).then_some(Tag(v))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:06X}", self.0),
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Tag::UNIQUE_IDENTIFIER.name(), Some("UniqueIdentifier"));
        assert_eq!(Tag::from_name("UniqueIdentifier"), Some(Tag::UNIQUE_IDENTIFIER));
        assert_eq!(Tag::from_name("0x540001"), Some(Tag(0x540001)));
        assert_eq!(Tag(0x540001).to_string(), "0x540001");
        for (v, n) in TAGS_BY_VALUE {
            assert_eq!(Tag::from_name(n), Some(Tag(*v)), "{n}");
        }
    }
}
