//! Binary TTLV: 3-byte tag, 1-byte type, 4-byte length, value padded to 8 bytes.
//!
//! The decoder checks every length against the remaining input before allocating, bounds the
//! nesting depth and the message size, and rejects trailing bytes. Byte strings are copied once,
//! from the input into their `Vec`.

use crate::error::Error;
use crate::tag::Tag;
use crate::ttlv::{DateTime, ItemType, Ttlv, Value};

/// Limits applied while decoding.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted message, header included.
    pub max_message_size: usize,
    /// Deepest accepted nesting of structures.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Length of the whole message whose first 8 bytes are `header`; refuses a message that is not a
/// structure or would exceed `limits.max_message_size`. For reading a message from a stream.
pub fn message_length(header: &[u8; 8], limits: &Limits) -> Result<usize, Error> {
    let tag = Tag(u32::from_be_bytes([0, header[0], header[1], header[2]]));
    if header[3] != ItemType::Structure as u8 {
        return Err(Error::WrongType {
            tag,
            expected: "Structure",
            found: ItemType::from_code(header[3])
                .map(|t| t.name())
                .unwrap_or("unknown type"),
        });
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let total = len.checked_add(8).ok_or(Error::TooLarge {
        size: usize::MAX,
        limit: limits.max_message_size,
    })?;
    if total > limits.max_message_size {
        return Err(Error::TooLarge {
            size: total,
            limit: limits.max_message_size,
        });
    }
    Ok(total)
}

/// Decodes exactly one item filling `input`.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Ttlv, Error> {
    if input.len() > limits.max_message_size {
        return Err(Error::TooLarge {
            size: input.len(),
            limit: limits.max_message_size,
        });
    }
    let mut reader = Reader {
        input,
        pos: 0,
        limits,
    };
    let item = reader.item(0)?;
    if reader.pos != input.len() {
        return Err(Error::Trailing {
            count: input.len() - reader.pos,
        });
    }
    Ok(item)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let available = self.input.len() - self.pos;
        if n > available {
            return Err(Error::Truncated {
                needed: n,
                available,
            });
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn item(&mut self, depth: usize) -> Result<Ttlv, Error> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let h = self.take(8)?;
        let tag = Tag(u32::from_be_bytes([0, h[0], h[1], h[2]]));
        let code = h[3];
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let item_type = ItemType::from_code(code).ok_or(Error::UnknownItemType {
            tag,
            item_type: code,
        })?;
        let bad = |t: ItemType| Error::BadLength {
            tag,
            item_type: t.name(),
            length: len,
        };
        let value = match item_type {
            ItemType::Structure => {
                let body = self.take(len)?;
                let mut inner = Reader {
                    input: body,
                    pos: 0,
                    limits: self.limits,
                };
                let mut children = crate::ttlv::Children::new();
                while inner.pos < body.len() {
                    children.push(inner.item(depth + 1)?);
                }
                Value::Structure(children.finish())
            }
            ItemType::Integer | ItemType::Enumeration | ItemType::Interval => {
                if len != 4 {
                    return Err(bad(item_type));
                }
                let b = self.take(8)?;
                let raw = [b[0], b[1], b[2], b[3]];
                match item_type {
                    ItemType::Integer => Value::Integer(i32::from_be_bytes(raw)),
                    ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(raw)),
                    _ => Value::Interval(u32::from_be_bytes(raw)),
                }
            }
            ItemType::LongInteger
            | ItemType::DateTime
            | ItemType::DateTimeExtended
            | ItemType::Boolean => {
                if len != 8 {
                    return Err(bad(item_type));
                }
                let b = self.take(8)?;
                let raw = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                let v = i64::from_be_bytes(raw);
                match item_type {
                    ItemType::LongInteger => Value::LongInteger(v),
                    ItemType::DateTime => Value::DateTime(DateTime(v)),
                    ItemType::DateTimeExtended => Value::DateTimeExtended(v),
                    _ => match v {
                        0 => Value::Boolean(false),
                        1 => Value::Boolean(true),
                        _ => {
                            return Err(Error::BadValue {
                                tag,
                                reason: "a Boolean must be 0 or 1".into(),
                            });
                        }
                    },
                }
            }
            ItemType::BigInteger => {
                if !len.is_multiple_of(8) || len == 0 {
                    return Err(bad(item_type));
                }
                Value::BigInteger(self.take(len)?.to_vec())
            }
            ItemType::TextString | ItemType::ByteString => {
                let padded = len.checked_add(7).map(|l| l & !7).ok_or(bad(item_type))?;
                let b = self.take(padded)?;
                let bytes = &b[..len];
                if item_type == ItemType::TextString {
                    let s = std::str::from_utf8(bytes).map_err(|_| Error::BadValue {
                        tag,
                        reason: "text string is not valid UTF-8".into(),
                    })?;
                    Value::TextString(s.to_owned())
                } else {
                    Value::ByteString(bytes.to_vec())
                }
            }
        };
        Ok(Ttlv { tag, value })
    }
}

/// Encodes an item.
pub fn encode(item: &Ttlv) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_into(item, &mut out);
    out
}

/// The length of an item's binary encoding, computed without encoding it.
pub fn encoded_len(item: &Ttlv) -> usize {
    let padded = |n: usize| n.div_ceil(8) * 8;
    8 + match &item.value {
        Value::Structure(children) => children.iter().map(encoded_len).sum(),
        Value::Integer(_)
        | Value::Enumeration(_)
        | Value::Interval(_)
        | Value::LongInteger(_)
        | Value::DateTimeExtended(_)
        | Value::DateTime(_)
        | Value::Boolean(_) => 8,
        Value::BigInteger(b) => padded(b.len()).max(8),
        Value::TextString(s) => padded(s.len()),
        Value::ByteString(b) => padded(b.len()),
    }
}

/// Encodes an item at the end of `out`.
pub fn encode_into(item: &Ttlv, out: &mut Vec<u8>) {
    let t = item.tag.0.to_be_bytes();
    out.extend_from_slice(&t[1..4]);
    out.push(item.value.item_type() as u8);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    let put_len = |out: &mut Vec<u8>, len: usize| {
        // KMIP lengths are 32-bit; a message this crate builds never reaches 4 GiB (checked).
        let l = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        out[len_at..len_at + 4].copy_from_slice(&l);
    };
    match &item.value {
        Value::Structure(children) => {
            for c in children {
                encode_into(c, out);
            }
            let len = out.len() - body_at;
            put_len(out, len);
        }
        Value::Integer(v) => {
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            put_len(out, 4);
        }
        Value::Enumeration(v) | Value::Interval(v) => {
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            put_len(out, 4);
        }
        Value::LongInteger(v) | Value::DateTimeExtended(v) | Value::DateTime(DateTime(v)) => {
            out.extend_from_slice(&v.to_be_bytes());
            put_len(out, 8);
        }
        Value::Boolean(b) => {
            out.extend_from_slice(&u64::from(*b).to_be_bytes());
            put_len(out, 8);
        }
        Value::BigInteger(b) => {
            let rem = b.len() % 8;
            if rem != 0 || b.is_empty() {
                let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
                    0xFF
                } else {
                    0
                };
                let pad = if b.is_empty() { 8 } else { 8 - rem };
                out.extend(std::iter::repeat_n(fill, pad));
            }
            out.extend_from_slice(b);
            let len = out.len() - body_at;
            put_len(out, len);
        }
        Value::TextString(s) => {
            out.extend_from_slice(s.as_bytes());
            put_len(out, s.len());
            pad8(out, s.len());
        }
        Value::ByteString(b) => {
            out.extend_from_slice(b);
            put_len(out, b.len());
            pad8(out, b.len());
        }
    }
}

fn pad8(out: &mut Vec<u8>, len: usize) {
    let pad = (8 - len % 8) % 8;
    out.extend(std::iter::repeat_n(0, pad));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '|')
            .collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The examples of the KMIP 2.1 specification, section 9.1.2 (TTLV encoding examples).
    #[test]
    fn specification_examples() {
        let cases: Vec<(Value, &str)> = vec![
            (
                Value::Integer(8),
                "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
            ),
            (
                Value::LongInteger(123456789000000000),
                "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
            ),
            (
                Value::BigInteger(hex("0000000003FD35EB6BC2DF4618080000")),
                "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
            ),
            (
                Value::Enumeration(255),
                "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            ),
            (
                Value::Boolean(true),
                "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
            ),
            (
                Value::TextString("Hello World".into()),
                "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
            ),
            (
                Value::ByteString(vec![1, 2, 3]),
                "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
            ),
            (
                Value::DateTime(DateTime(0x47DA67F8)),
                "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
            ),
            (
                Value::Interval(864000),
                "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
            ),
            (
                Value::Structure(vec![
                    Ttlv::new(Tag(0x420004), Value::Enumeration(254)),
                    Ttlv::new(Tag(0x420005), Value::Integer(255)),
                ]),
                "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            ),
        ];
        for (value, expected) in cases {
            let item = Ttlv::new(Tag(0x420020), value);
            let bytes = encode(&item);
            assert_eq!(bytes, hex(expected), "{item:?}");
            assert_eq!(decode(&bytes, &Limits::default()).unwrap(), item);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let l = Limits::default();
        let ok = encode(&Ttlv::new(Tag(0x420020), Value::Integer(1)));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing, &l),
            Err(Error::Truncated { .. }) | Err(Error::Trailing { .. })
        ));
        assert!(matches!(
            decode(&ok[..10], &l),
            Err(Error::Truncated { .. })
        ));
        let huge = hex("420078 01 FFFFFFF0");
        assert!(matches!(decode(&huge, &l), Err(Error::Truncated { .. })));
        let header: [u8; 8] = huge.try_into().unwrap();
        assert!(matches!(
            message_length(&header, &l),
            Err(Error::TooLarge { .. })
        ));
        let mut deep = Ttlv::new(Tag(0x420020), Value::Integer(1));
        for _ in 0..100 {
            deep = Ttlv::structure(Tag(0x420078), vec![deep]);
        }
        assert!(matches!(
            decode(&encode(&deep), &l),
            Err(Error::TooDeep { .. })
        ));
        let bad_bool = hex("420020 06 00000008 0000000000000002");
        assert!(decode(&bad_bool, &l).is_err());
    }
}
