//! The codec's one error type.

use crate::tag::Tag;

/// Why a KMIP message could not be decoded or converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("message is truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("message nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{count} trailing bytes after the message")]
    Trailing { count: usize },
    #[error("unknown item type 0x{item_type:02X} for tag {tag}")]
    UnknownItemType { tag: Tag, item_type: u8 },
    #[error("tag {tag}: length {length} is not valid for a {item_type}")]
    BadLength {
        tag: Tag,
        item_type: &'static str,
        length: usize,
    },
    #[error("tag {tag}: {reason}")]
    BadValue { tag: Tag, reason: String },
    #[error("tag {tag}: expected a {expected}, found a {found}")]
    WrongType {
        tag: Tag,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{structure}: missing required {field}")]
    Missing { structure: Tag, field: Tag },
    #[error("{structure}: {field} appears more than once")]
    Duplicate { structure: Tag, field: Tag },
    #[error("expected {expected}, found {found}")]
    UnexpectedTag { expected: Tag, found: Tag },
    #[error("tag {tag}: 0x{value:08X} is not a known value of this enumeration")]
    UnknownEnumValue { tag: Tag, value: u32 },
    #[error("unknown tag name `{0}`")]
    UnknownTagName(String),
    #[error("JSON TTLV: {0}")]
    Json(String),
    /// serde_json's own message is left out: it may quote the input.
    #[error("{problem} at line {line} column {column}")]
    JsonSyntax {
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error("XML TTLV: {0}")]
    Xml(String),
    #[error("XML syntax")]
    XmlSyntax(#[source] quick_xml::Error),
    #[error("KMIP version {major}.{minor} is not supported")]
    UnsupportedVersion { major: i32, minor: i32 },
}
