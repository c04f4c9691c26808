//! The typed KMIP 2.1 model: objects, attributes, operation payloads and messages, each
//! converting to and from the TTLV tree.
//!
//! Conversion is strict: a known tag in a place the model does not expect is an error, so
//! nothing is silently dropped. Unknown tags (vendor extensions) survive in [`Attribute::Other`]
//! and in the payloads of operations this model does not type ([`RequestPayload::Other`]).

mod attributes;
mod message;
mod objects;
mod payloads;

pub use attributes::*;
pub use message::*;
pub use objects::*;
pub use payloads::*;

use crate::enums::KmipEnum;
use crate::error::Error;
use crate::tag::Tag;
use crate::ttlv::{DateTime, Ttlv, Value};

/// A value that is one TTLV item.
pub trait Item: Sized {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error>;
    fn to_ttlv(&self, tag: Tag) -> Ttlv;
    /// Whether a child with tag `found` fills a field declared with tag `field`.
    fn accepts(field: Tag, found: Tag) -> bool {
        field == found
    }
}

/// How a struct field holds items: exactly one (`T`), at most one (`Option<T>`), any (`Vec<T>`).
pub trait Field: Sized {
    type Slot: Default;
    fn accepts(field: Tag, found: Tag) -> bool;
    fn absorb(slot: &mut Self::Slot, item: &Ttlv, structure: Tag) -> Result<(), Error>;
    fn finish(slot: Self::Slot, structure: Tag, field: Tag) -> Result<Self, Error>;
    fn emit(&self, field: Tag, out: &mut Vec<Ttlv>);
}

impl<T: Item> Field for T {
    type Slot = Option<T>;
    fn accepts(field: Tag, found: Tag) -> bool {
        T::accepts(field, found)
    }
    fn absorb(slot: &mut Option<T>, item: &Ttlv, structure: Tag) -> Result<(), Error> {
        if slot.is_some() {
            return Err(Error::Duplicate {
                structure,
                field: item.tag,
            });
        }
        *slot = Some(T::from_ttlv(item)?);
        Ok(())
    }
    fn finish(slot: Option<T>, structure: Tag, field: Tag) -> Result<T, Error> {
        slot.ok_or(Error::Missing { structure, field })
    }
    fn emit(&self, field: Tag, out: &mut Vec<Ttlv>) {
        out.push(self.to_ttlv(field));
    }
}

impl<T: Item> Field for Option<T> {
    type Slot = Option<T>;
    fn accepts(field: Tag, found: Tag) -> bool {
        T::accepts(field, found)
    }
    fn absorb(slot: &mut Option<T>, item: &Ttlv, structure: Tag) -> Result<(), Error> {
        <T as Field>::absorb(slot, item, structure)
    }
    fn finish(slot: Option<T>, _: Tag, _: Tag) -> Result<Option<T>, Error> {
        Ok(slot)
    }
    fn emit(&self, field: Tag, out: &mut Vec<Ttlv>) {
        if let Some(v) = self {
            out.push(v.to_ttlv(field));
        }
    }
}

impl<T: Item> Field for Vec<T> {
    type Slot = Vec<T>;
    fn accepts(field: Tag, found: Tag) -> bool {
        T::accepts(field, found)
    }
    fn absorb(slot: &mut Vec<T>, item: &Ttlv, _: Tag) -> Result<(), Error> {
        slot.push(T::from_ttlv(item)?);
        Ok(())
    }
    fn finish(slot: Vec<T>, _: Tag, _: Tag) -> Result<Vec<T>, Error> {
        Ok(slot)
    }
    fn emit(&self, field: Tag, out: &mut Vec<Ttlv>) {
        for v in self {
            out.push(v.to_ttlv(field));
        }
    }
}

/// Declares a KMIP structure: fields in specification order, each with its tag.
macro_rules! kmip_struct {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty = $ftag:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name { $( $(#[$fm])* pub $field: $ty, )* }

        impl $crate::model::Item for $name {
            fn from_ttlv(item: &$crate::Ttlv) -> Result<Self, $crate::Error> {
                #[allow(unused_imports)]
                use $crate::model::Field;
                let children = item.children()?;
                $( let mut $field = <<$ty as Field>::Slot as Default>::default(); )*
                for child in children {
                    $(
                        if <$ty as Field>::accepts($ftag, child.tag) {
                            <$ty as Field>::absorb(&mut $field, child, item.tag)?;
                            continue;
                        }
                    )*
                    return Err($crate::Error::BadValue {
                        tag: item.tag,
                        reason: format!("unexpected {} in {}", child.tag, item.tag),
                    });
                }
                Ok($name { $( $field: <$ty as Field>::finish($field, item.tag, $ftag)?, )* })
            }

            fn to_ttlv(&self, tag: $crate::Tag) -> $crate::Ttlv {
                #[allow(unused_imports)]
                use $crate::model::Field;
                // Room for every field, so the children are never moved while they are added.
                const FIELDS: usize = [$( stringify!($field) ),*].len();
                #[allow(unused_mut)]
                let mut children = Vec::with_capacity(FIELDS);
                $( Field::emit(&self.$field, $ftag, &mut children); )*
                $crate::Ttlv::structure(tag, children)
            }
        }
    };
}
pub(crate) use kmip_struct;

macro_rules! leaf {
    ($t:ty, $variant:ident, $getter:ident) => {
        impl Item for $t {
            fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
                item.$getter().map(Into::into)
            }
            fn to_ttlv(&self, tag: Tag) -> Ttlv {
                Ttlv::new(tag, Value::$variant(self.clone().into()))
            }
        }
    };
}

leaf!(i32, Integer, as_i32);
leaf!(i64, LongInteger, as_i64);
leaf!(bool, Boolean, as_bool);
leaf!(DateTime, DateTime, as_datetime);

impl Item for String {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        item.as_str().map(str::to_owned)
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::TextString(self.clone()))
    }
}

impl Item for Vec<u8> {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        item.as_bytes().map(<[u8]>::to_vec)
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::ByteString(self.clone()))
    }
}

/// A raw enumeration value, for enumerations with vendor-defined values (`OpaqueDataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEnum(pub u32);

impl Item for RawEnum {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        item.as_enum().map(RawEnum)
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::Enumeration(self.0))
    }
}

/// A KMIP `Interval`, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub u32);

impl Item for Interval {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match item.value {
            Value::Interval(v) => Ok(Interval(v)),
            _ => Err(Error::WrongType {
                tag: item.tag,
                expected: "Interval",
                found: item.value.item_type().name(),
            }),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::Interval(self.0))
    }
}

/// A KMIP `BigInteger` (big-endian two's complement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BigInt(pub Vec<u8>);

impl Item for BigInt {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match &item.value {
            Value::BigInteger(v) => Ok(BigInt(v.clone())),
            _ => Err(Error::WrongType {
                tag: item.tag,
                expected: "BigInteger",
                found: item.value.item_type().name(),
            }),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::BigInteger(self.0.clone()))
    }
}

/// Any item kept as a tree, where the model does not type the content.
impl Item for Ttlv {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        Ok(item.clone())
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv {
            tag,
            value: self.value.clone(),
        }
    }
}

impl<E: KmipEnum> Item for E {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        let v = item.as_enum()?;
        E::from_u32(v).ok_or(Error::UnknownEnumValue {
            tag: item.tag,
            value: v,
        })
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(tag, Value::Enumeration(self.to_u32()))
    }
}

/// A unique identifier: text, or in KMIP 2.x requests an ID placeholder enumeration or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UniqueIdentifier {
    Text(String),
    Enumeration(u32),
    Index(i32),
}

impl UniqueIdentifier {
    /// The text form, when it is one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            UniqueIdentifier::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<String> for UniqueIdentifier {
    fn from(s: String) -> Self {
        UniqueIdentifier::Text(s)
    }
}

impl From<&str> for UniqueIdentifier {
    fn from(s: &str) -> Self {
        UniqueIdentifier::Text(s.to_owned())
    }
}

impl From<&String> for UniqueIdentifier {
    fn from(s: &String) -> Self {
        UniqueIdentifier::Text(s.clone())
    }
}

impl Item for UniqueIdentifier {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match &item.value {
            Value::TextString(s) => Ok(UniqueIdentifier::Text(s.clone())),
            Value::Enumeration(e) => Ok(UniqueIdentifier::Enumeration(*e)),
            Value::Integer(i) => Ok(UniqueIdentifier::Index(*i)),
            _ => Err(Error::WrongType {
                tag: item.tag,
                expected: "TextString",
                found: item.value.item_type().name(),
            }),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::new(
            tag,
            match self {
                UniqueIdentifier::Text(s) => Value::TextString(s.clone()),
                UniqueIdentifier::Enumeration(e) => Value::Enumeration(*e),
                UniqueIdentifier::Index(i) => Value::Integer(*i),
            },
        )
    }
}
