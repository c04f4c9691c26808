//! JSON TTLV as clients write it, read in one pass by hand: every node an object whose keys
//! are `tag`, `type` and `value` in that order, strings without escapes, numbers integers. That
//! is what Cosmian's clients, this crate and nearly every request send; reading it costs a
//! third of what serde_json's streaming reader does (whose visitors, key matching and string
//! reads take most of an encrypt's decoding).
//!
//! Anything else (another key order, a missing `type`, an escape, a fraction, an error of any
//! kind) is declined with `None`, and the caller reads the whole text again with the general
//! reader, which accepts what it accepts and words every error. What this reader returns is
//! what the general reader returns for the same text (`json_fast_path_agrees` in the property
//! tests): the leaves go through the same [`leaf`], the attribute-name hint and the depth limit
//! are the same.

use super::{MAX_DEPTH, Raw, leaf};
use crate::enums;
use crate::tag::Tag;
use crate::ttlv::{Children, ItemType, Ttlv, Value};

/// The tree of `text`, when it is written the common way (see the module).
pub(super) fn read(text: &str) -> Option<Ttlv> {
    let mut r = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let tree = r.node(0, None)?;
    r.space();
    (r.at == r.bytes.len()).then_some(tree)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn node(&mut self, depth: usize, hint: Option<Tag>) -> Option<Ttlv> {
        // serde_json refuses more than 128 nested arrays and objects, two per node: nodes
        // below 63 levels are left to it, whose error it is.
        if depth >= MAX_DEPTH {
            return None;
        }
        self.byte(b'{')?;
        self.key("tag")?;
        let tag = Tag::from_name(self.string()?)?;
        self.byte(b',')?;
        self.key("type")?;
        let item_type = ItemType::from_name(self.string()?)?;
        self.byte(b',')?;
        self.key("value")?;
        let value = if item_type == ItemType::Structure {
            Value::Structure(self.children(depth + 1)?)
        } else {
            let meaning = if tag == Tag::ATTRIBUTE_VALUE {
                hint.unwrap_or(tag)
            } else {
                tag
            };
            self.space();
            let raw = match *self.bytes.get(self.at)? {
                b'"' => Raw::Str(self.string()?),
                b't' => self.literal("true", Raw::Bool(true))?,
                b'f' => self.literal("false", Raw::Bool(false))?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            };
            leaf(tag, item_type, meaning, raw).ok()?
        };
        self.byte(b'}')?;
        Some(Ttlv { tag, value })
    }

    /// A structure's array of nodes, each `AttributeValue` with the hint of the
    /// `AttributeName` before it.
    fn children(&mut self, depth: usize) -> Option<Vec<Ttlv>> {
        self.byte(b'[')?;
        let mut children = Children::new();
        self.space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Some(children.finish());
        }
        let mut hint = None;
        loop {
            let child = self.node(depth, hint)?;
            if child.tag == Tag::ATTRIBUTE_NAME {
                hint = child.as_str().ok().and_then(enums::tag_of_attribute_name);
            }
            children.push(child);
            self.space();
            match *self.bytes.get(self.at)? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(children.finish());
                }
                _ => return None,
            }
        }
    }

    /// Skips JSON white space.
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The byte `b`, after white space.
    fn byte(&mut self, b: u8) -> Option<()> {
        self.space();
        (self.bytes.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    /// `"name"` and its colon.
    fn key(&mut self, name: &str) -> Option<()> {
        self.space();
        let rest = self.bytes.get(self.at..)?;
        let quoted = rest.len() > name.len() + 1
            && rest[0] == b'"'
            && rest[1..].starts_with(name.as_bytes())
            && rest[name.len() + 1] == b'"';
        quoted.then(|| self.at += name.len() + 2)?;
        self.byte(b':')
    }

    /// A string without escapes or control characters, after white space.
    fn string(&mut self) -> Option<&'a str> {
        self.byte(b'"')?;
        let start = self.at;
        let len = plain_run(&self.bytes[start..]);
        self.at = start + len;
        (*self.bytes.get(self.at)? == b'"').then_some(())?;
        self.at += 1;
        // Quotes are ASCII: both ends are character boundaries of the text.
        self.text.get(start..start + len)
    }

    fn literal(&mut self, word: &str, raw: Raw<'a>) -> Option<Raw<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word.as_bytes()).then_some(())?;
        self.at = end;
        Some(raw)
    }

    /// An integer as serde_json reads it: a `u64` when not negative, an `i64` when negative;
    /// fractions, exponents, `-0` and integers beyond those are declined (serde_json reads them
    /// as floats).
    fn number(&mut self) -> Option<Raw<'a>> {
        let negative = self.bytes[self.at] == b'-';
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.bytes.get(self.at) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            return None;
        }
        if negative {
            if n == 0 {
                return None;
            }
            let i = 0i64.checked_sub_unsigned(n)?;
            Some(Raw::Num {
                i: Some(i),
                u: None,
            })
        } else {
            Some(Raw::Num {
                i: i64::try_from(n).ok(),
                u: Some(n),
            })
        }
    }
}

/// The length of the run of bytes at the start of `bytes` that a JSON string holds as they are:
/// up to the first quote, backslash or control character. Eight bytes at a time (a hex
/// ByteString is most of a request).
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // The high bit of each byte that is zero (a quote or backslash) or below 0x20; exact
        // up to the first such byte, which is all that is read.
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(chunks.remainder().len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn node(tag: &str, item_type: &str, value: &str) -> String {
        format!(r#"{{"tag":"{tag}","type":"{item_type}","value":{value}}}"#)
    }

    /// What the one-pass reader takes, the general reader reads the same.
    fn taken(text: &str) -> Ttlv {
        let tree = read(text).unwrap_or_else(|| panic!("declined: {text}"));
        assert_eq!(
            tree,
            super::super::from_str_general(text).unwrap(),
            "{text}"
        );
        tree
    }

    #[test]
    fn takes_a_request_as_clients_write_it() {
        let text = r#" {"tag":"Encrypt","type":"Structure","value":[
            {"tag":"UniqueIdentifier","type":"TextString","value":"f0e1-uid"},
            {"tag" : "CryptographicParameters", "type" : "Structure", "value" : [
                {"tag":"BlockCipherMode","type":"Enumeration","value":"GCM"},
                {"tag":"TagLength","type":"Integer","value":16}]},
            {"tag":"Attributes","type":"Structure","value":[
                {"tag":"Attribute","type":"Structure","value":[
                    {"tag":"AttributeName","type":"TextString","value":"State"},
                    {"tag":"AttributeValue","type":"Enumeration","value":"Active"}]}]},
            {"tag":"Data","type":"ByteString","value":"00FFab"},
            {"tag":"InitIndicator","type":"Boolean","value":true},
            {"tag":"FinalIndicator","type":"Boolean","value":false},
            {"tag":"CorrelationValue","type":"ByteString","value":""},
            {"tag":"Offset","type":"LongInteger","value":-9223372036854775808},
            {"tag":"Offset","type":"LongInteger","value":"0x10"},
            {"tag":"Offset","type":"LongInteger","value":9223372036854775807},
            {"tag":"Offset","type":"Interval","value":4294967295},
            {"tag":"Nonce","type":"Structure","value":[]}]}
        "#;
        let tree = taken(text);
        assert_eq!(tree.tag, Tag::from_name("Encrypt").unwrap());
    }

    #[test]
    fn declines_what_it_does_not_read_and_the_general_reader_decides() {
        for text in [
            // Other key orders, keys, or a missing type.
            r#"{"type":"Integer","tag":"TagLength","value":16}"#.to_owned(),
            r#"{"tag":"TagLength","value":16,"type":"Integer"}"#.to_owned(),
            r#"{"tag":"Encrypt","value":[]}"#.to_owned(),
            r#"{"tag":"TagLength","type":"Integer","value":16,"extra":1}"#.to_owned(),
            // Escapes, fractions, exponents, -0, leading zeros, beyond 64 bits.
            node("UniqueIdentifier", "TextString", r#""a\"b""#),
            node("UniqueIdentifier", "TextString", r#""\u0061""#),
            node("TagLength", "Integer", "16.0"),
            node("TagLength", "Integer", "1e1"),
            node("TagLength", "Integer", "-0"),
            node("TagLength", "Integer", "016"),
            node("Offset", "LongInteger", "18446744073709551616"),
            node("Offset", "LongInteger", "-9223372036854775809"),
            // Errors.
            node("TagLength", "Integer", "4294967296"),
            node("NoSuchTag", "Integer", "1"),
            node("TagLength", "NoSuchType", "1"),
            node("Encrypt", "Structure", "[,]"),
            node("Encrypt", "Structure", "{}"),
            node("TagLength", "Integer", "null"),
            format!("{} x", node("TagLength", "Integer", "1")),
            "\"tag\"".to_owned(),
            String::new(),
        ] {
            assert!(read(&text).is_none(), "taken: {text}");
            // Whatever the general reader says, from_str says.
            assert_eq!(
                format!("{:?}", super::super::from_str(&text)),
                format!("{:?}", super::super::from_str_general(&text)),
            );
        }
    }

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_character() {
        for text in [
            "",
            "a",
            "abcdefgh",
            "abcdefghij\"",
            "\"",
            "ab\\cd",
            "é✓ümlaut and more text\u{1f}x",
            "0123456789abcdef\"tail",
            "\u{7f}\u{80}ÿ 01234567\ttab",
            "sixteen bytes ok!",
        ] {
            for skip in 0..text.len().min(9) {
                let bytes = &text.as_bytes()[skip..];
                let expected = bytes
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .unwrap_or(bytes.len());
                assert_eq!(plain_run(bytes), expected, "{text:?} from {skip}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_run_is_the_first_special_byte(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![proptest::prelude::any::<u8>(), 0x1eu8..0x24, 0x5bu8..0x5e],
                0..40,
            )
        ) {
            let expected = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len());
            proptest::prop_assert_eq!(plain_run(&bytes), expected);
        }
    }

    #[test]
    fn depth_is_limited_as_the_general_reader_limits_it() {
        let nest = |n: usize| {
            let mut text = node("TagLength", "Integer", "1");
            for _ in 0..n {
                text = node("Attributes", "Structure", &format!("[{text}]"));
            }
            text
        };
        taken(&nest(MAX_DEPTH - 1));
        let deep = nest(MAX_DEPTH);
        assert!(read(&deep).is_none());
        assert!(super::super::from_str(&deep).is_err());
    }
}
