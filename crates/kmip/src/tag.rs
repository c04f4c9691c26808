//! KMIP tags: a 3-byte number with a specification name; unknown tags are kept as numbers.

use std::fmt;

use crate::enums::{EnumKind, lookup_name, lookup_value};
use crate::generated::{OPERATION_RESPONSE_NAMES, TAGS_BY_NAME, TAGS_BY_VALUE};

/// Base of the pseudo-tags naming an operation's request payload at the root of Cosmian's JSON
/// (`{"tag": "Create", ...}`); never written in binary messages.
const OPERATION_REQUEST_BASE: u32 = 0xFF_0000;
/// Base of the pseudo-tags naming an operation's response payload (`"CreateResponse"`).
const OPERATION_RESPONSE_BASE: u32 = 0xFF_8000;

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
        // Every node of every JSON answer is named here: the specification's tags and the
        // operations' responses by index, the rest by search.
        let tables = name_tables();
        if let Some(name) = self
            .0
            .checked_sub(SPEC_TAGS_BASE)
            .and_then(|i| tables.spec.get(i as usize))
        {
            return *name;
        }
        if let Ok(i) = TAGS_BY_VALUE.binary_search_by_key(&self.0, |(v, _)| *v) {
            return Some(TAGS_BY_VALUE[i].1);
        }
        if let Some(op) = self
            .0
            .checked_sub(OPERATION_RESPONSE_BASE)
            .filter(|v| *v < 0x8000)
        {
            return match tables.responses.get(op as usize) {
                Some(name) => *name,
                None => OPERATION_RESPONSE_NAMES
                    .iter()
                    .find(|(v, _)| *v == op)
                    .map(|(_, n)| *n),
            };
        }
        let op = self
            .0
            .checked_sub(OPERATION_REQUEST_BASE)
            .filter(|v| *v < 0x8000)?;
        lookup_value(EnumKind::Operation, op).map(|e| e.spec)
    }

    /// The pseudo-tag of an operation's request payload at the root of a JSON request.
    pub fn operation_request(operation: u32) -> Tag {
        Tag(OPERATION_REQUEST_BASE + (operation & 0x7FFF))
    }

    /// The pseudo-tag of an operation's response payload at the root of a JSON response.
    pub fn operation_response(operation: u32) -> Tag {
        Tag(OPERATION_RESPONSE_BASE + (operation & 0x7FFF))
    }

    /// The operation whose request pseudo-tag this is.
    pub fn as_operation_request(self) -> Option<u32> {
        self.0
            .checked_sub(OPERATION_REQUEST_BASE)
            .filter(|v| *v < 0x8000)
    }

    /// The tag of a specification name, or of a `0x42XXXX` hex spelling.
    pub fn from_name(name: &str) -> Option<Tag> {
        // Every name of a request's JSON is looked up: the names this crate knows are found
        // in one hash lookup, the others the way `lookup` describes.
        match name_index().get(name) {
            Some(t) => Some(Tag(*t)),
            None => Tag::lookup(name),
        }
    }

    /// The tag of a name: exact, then equal but for case, then the aliases and operation names
    /// of Cosmian's JSON, then hex.
    fn lookup(name: &str) -> Option<Tag> {
        if let Ok(i) = TAGS_BY_NAME.binary_search_by_key(&name, |(n, _)| n) {
            return Some(Tag(TAGS_BY_NAME[i].1));
        }
        // Cosmian's JSON spells some names in its own case (`CertificateSubjectCn` for
        // `CertificateSubjectCN`): a name equal but for case is the same tag (the first such in
        // `TAGS_BY_NAME`, as a scan would find). Operation names (`Encrypt`) come this way on
        // every request, hence an index rather than a scan.
        let lower = name.to_ascii_lowercase();
        let index = tags_by_lowercase_name();
        let first = index.partition_point(|(n, _)| n.as_ref() < lower.as_str());
        if let Some((n, t)) = index.get(first)
            && n.as_ref() == lower
        {
            return Some(Tag(*t));
        }
        // Names Cosmian's JSON uses for structures that share a specification tag.
        match name {
            "VendorAttribute" => return Some(Tag::ATTRIBUTE),
            "VendorAttributeReference" => return Some(Tag::ATTRIBUTE_REFERENCE),
            _ => {}
        }
        if let Some(op) = name
            .strip_suffix("Response")
            .and_then(|n| lookup_name(EnumKind::Operation, n))
        {
            return Some(Tag::operation_response(op));
        }
        if let Some(op) = lookup_name(EnumKind::Operation, name) {
            return Some(Tag::operation_request(op));
        }
        let hex = name
            .strip_prefix("0x")
            .or_else(|| name.strip_prefix("0X"))?;
        let v = u32::from_str_radix(hex, 16).ok()?;
        (v <= 0xFF_FFFF).then_some(Tag(v))
    }
}

/// First tag of the specification's range (`0x420000`, unused) and how many tags from it
/// [`NameTables::spec`] holds: every tag of KMIP 2.1 (the last is `0x420176`).
const SPEC_TAGS_BASE: u32 = 0x42_0000;
const SPEC_TAGS: usize = 0x200;

/// The names [`Tag::name`] finds by index.
struct NameTables {
    /// Of the tags `SPEC_TAGS_BASE..SPEC_TAGS_BASE + SPEC_TAGS`, by their offset.
    spec: Box<[Option<&'static str>]>,
    /// Of the operations' response pseudo-tags, by operation.
    responses: Box<[Option<&'static str>]>,
}

fn name_tables() -> &'static NameTables {
    static TABLES: std::sync::OnceLock<NameTables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut spec = vec![None; SPEC_TAGS];
        for (v, n) in TAGS_BY_VALUE {
            if let Some(slot) = v
                .checked_sub(SPEC_TAGS_BASE)
                .and_then(|i| spec.get_mut(i as usize))
            {
                slot.get_or_insert(*n);
            }
        }
        let last = OPERATION_RESPONSE_NAMES
            .iter()
            .map(|(op, _)| *op as usize)
            .filter(|op| *op < 0x400)
            .max()
            .unwrap_or(0);
        let mut responses = vec![None; last + 1];
        for (op, n) in OPERATION_RESPONSE_NAMES {
            if let Some(slot) = responses.get_mut(*op as usize) {
                slot.get_or_insert(*n);
            }
        }
        NameTables {
            spec: spec.into_boxed_slice(),
            responses: responses.into_boxed_slice(),
        }
    })
}

/// A hash for the fixed table of [`name_index`], eight bytes at a time (a name is looked up for
/// every node of every JSON request; FNV-1a, a byte at a time, cost a multiplication per
/// character), with murmur3's finalizer so that the low bits the table indexes by depend on
/// every byte. The table holds only this crate's own names (what a client sends is looked up,
/// never inserted), so it cannot be flooded.
#[derive(Default)]
struct NameHash(u64);

impl NameHash {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for NameHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0; 8];
            word.copy_from_slice(w);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = words.remainder();
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length tells "ab" from "ab\0".
        self.mix(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type NameIndex = std::collections::HashMap<Box<str>, u32, std::hash::BuildHasherDefault<NameHash>>;

/// The tag of every name this crate knows (specification names, Cosmian's aliases, operation
/// request and response names), each as [`Tag::lookup`] finds it.
fn name_index() -> &'static NameIndex {
    static INDEX: std::sync::OnceLock<NameIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut names: Vec<String> = TAGS_BY_NAME.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.extend([
            "VendorAttribute".to_owned(),
            "VendorAttributeReference".to_owned(),
        ]);
        for e in EnumKind::Operation.entries() {
            for n in [e.spec, e.cosmian] {
                names.push(n.to_owned());
                names.push(format!("{n}Response"));
            }
        }
        names
            .into_iter()
            .filter_map(|n| Tag::lookup(&n).map(|t| (n.into_boxed_str(), t.0)))
            .collect()
    })
}

/// The tags by lower-case name, in `TAGS_BY_NAME` order among equal names.
fn tags_by_lowercase_name() -> &'static [(Box<str>, u32)] {
    static INDEX: std::sync::OnceLock<Vec<(Box<str>, u32)>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: Vec<(Box<str>, u32)> = TAGS_BY_NAME
            .iter()
            .map(|(n, t)| (n.to_ascii_lowercase().into_boxed_str(), *t))
            .collect();
        // Stable: equal names keep their order.
        index.sort_by(|a, b| a.0.cmp(&b.0));
        index
    })
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
        assert_eq!(
            Tag::from_name("UniqueIdentifier"),
            Some(Tag::UNIQUE_IDENTIFIER)
        );
        assert_eq!(Tag::from_name("0x540001"), Some(Tag(0x540001)));
        assert_eq!(Tag(0x540001).to_string(), "0x540001");
        let create = Tag::from_name("Create").unwrap();
        assert_eq!(create.name(), Some("Create"));
        assert_eq!(
            Tag::from_name("CreateResponse").unwrap().name(),
            Some("CreateResponse")
        );
        assert_eq!(create.as_operation_request(), Some(1));
        for (v, n) in TAGS_BY_VALUE {
            assert_eq!(Tag::from_name(n), Some(Tag(*v)), "{n}");
        }
    }

    /// The tables `name` reads by index say what a search of the generated lists says, for
    /// every tag of the indexed ranges, known or not.
    #[test]
    fn names_by_index_are_the_names_searched() {
        let searched = |v: u32| {
            TAGS_BY_VALUE
                .iter()
                .find(|(t, _)| *t == v)
                .map(|(_, n)| *n)
                .or_else(|| {
                    let op = v.checked_sub(OPERATION_RESPONSE_BASE)?;
                    OPERATION_RESPONSE_NAMES
                        .iter()
                        .find(|(o, _)| *o == op)
                        .map(|(_, n)| *n)
                })
        };
        let mut known = 0;
        for v in (SPEC_TAGS_BASE - 2..SPEC_TAGS_BASE + SPEC_TAGS as u32 + 2)
            .chain(OPERATION_RESPONSE_BASE - 2..OPERATION_RESPONSE_BASE + 0x500)
        {
            assert_eq!(Tag(v).name(), searched(v), "{v:#x}");
            known += usize::from(searched(v).is_some());
        }
        assert!(known > 400, "{known} names checked");
    }
}
