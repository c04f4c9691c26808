//! Managed objects: keys, secret data, opaque objects, certificates, split keys.

use super::{Attributes, BigInt, Item, RawEnum, kmip_struct};
use crate::error::Error;
use crate::generated::*;
use crate::tag::Tag;
use crate::ttlv::{Ttlv, Value};

/// `KeyMaterial`: bytes (raw, opaque, PKCS#1/#8, SPKI...) or a transparent structure.
#[derive(Clone, PartialEq)]
pub enum KeyMaterial {
    Bytes(Vec<u8>),
    /// Transparent formats (`TransparentSymmetricKey`'s `Key`, RSA/EC components), kept as items.
    Structure(Vec<Ttlv>),
}

impl Drop for KeyMaterial {
    /// Key material is wiped from memory when its last holder drops it.
    fn drop(&mut self) {
        self.wipe();
    }
}

impl KeyMaterial {
    /// Overwrites every byte of the material with zeros (what dropping it does).
    fn wipe(&mut self) {
        use zeroize::Zeroize;
        fn wipe(items: &mut [Ttlv]) {
            for item in items {
                match &mut item.value {
                    Value::ByteString(b) | Value::BigInteger(b) => b.zeroize(),
                    Value::Structure(children) => wipe(children),
                    _ => {}
                }
            }
        }
        match self {
            KeyMaterial::Bytes(b) => b.zeroize(),
            KeyMaterial::Structure(items) => wipe(items),
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    // Key material never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Bytes(b) => write!(f, "KeyMaterial::Bytes(<{} bytes>)", b.len()),
            KeyMaterial::Structure(s) => write!(f, "KeyMaterial::Structure(<{} items>)", s.len()),
        }
    }
}

impl Item for KeyMaterial {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match &item.value {
            Value::ByteString(b) => Ok(KeyMaterial::Bytes(b.clone())),
            Value::Structure(c) => Ok(KeyMaterial::Structure(c.clone())),
            _ => Err(Error::WrongType {
                tag: item.tag,
                expected: "ByteString",
                found: item.value.item_type().name(),
            }),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        match self {
            KeyMaterial::Bytes(b) => Ttlv::new(tag, Value::ByteString(b.clone())),
            KeyMaterial::Structure(c) => Ttlv::structure(tag, c.clone()),
        }
    }
}

kmip_struct! {
    /// `KeyValue` in its plain form.
    pub struct PlainKeyValue {
        pub key_material: KeyMaterial = Tag::KEY_MATERIAL,
        pub attributes: Option<Attributes> = Tag::ATTRIBUTES,
        /// KMIP 1.x attributes inside the key value.
        pub attribute: Vec<Ttlv> = Tag::ATTRIBUTE,
    }
}

/// `KeyValue`: a structure, or a byte string when the key is wrapped.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    Plain(PlainKeyValue),
    Wrapped(Vec<u8>),
}

impl Item for KeyValue {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match &item.value {
            Value::ByteString(b) => Ok(KeyValue::Wrapped(b.clone())),
            _ => PlainKeyValue::from_ttlv(item).map(KeyValue::Plain),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        match self {
            KeyValue::Plain(p) => p.to_ttlv(tag),
            KeyValue::Wrapped(b) => Ttlv::new(tag, Value::ByteString(b.clone())),
        }
    }
}

kmip_struct! {
    /// `KeyBlock`.
    pub struct KeyBlock {
        pub key_format_type: KeyFormatType = Tag::KEY_FORMAT_TYPE,
        pub key_compression_type: Option<KeyCompressionType> = Tag::KEY_COMPRESSION_TYPE,
        pub key_value: Option<KeyValue> = Tag::KEY_VALUE,
        pub cryptographic_algorithm: Option<CryptographicAlgorithm> = Tag::CRYPTOGRAPHIC_ALGORITHM,
        pub cryptographic_length: Option<i32> = Tag::CRYPTOGRAPHIC_LENGTH,
        pub key_wrapping_data: Option<Ttlv> = Tag::KEY_WRAPPING_DATA,
    }
}

impl KeyBlock {
    /// The key bytes of a Raw, Opaque or TransparentSymmetricKey block.
    pub fn symmetric_key_bytes(&self) -> Option<&[u8]> {
        let Some(KeyValue::Plain(p)) = &self.key_value else {
            return None;
        };
        match &p.key_material {
            KeyMaterial::Bytes(b) => Some(b),
            KeyMaterial::Structure(items) => items
                .iter()
                .find(|t| t.tag == Tag::KEY)
                .and_then(|t| t.as_bytes().ok()),
        }
    }
}

kmip_struct! {
    pub struct SymmetricKey {
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct PublicKey {
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct PrivateKey {
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct SecretData {
        pub secret_data_type: SecretDataType = Tag::SECRET_DATA_TYPE,
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct OpaqueObject {
        pub opaque_data_type: RawEnum = Tag::OPAQUE_DATA_TYPE,
        pub opaque_data_value: Vec<u8> = Tag::OPAQUE_DATA_VALUE,
    }
}

kmip_struct! {
    pub struct Certificate {
        pub certificate_type: CertificateType = Tag::CERTIFICATE_TYPE,
        pub certificate_value: Vec<u8> = Tag::CERTIFICATE_VALUE,
    }
}

kmip_struct! {
    pub struct SplitKey {
        pub split_key_parts: i32 = Tag::SPLIT_KEY_PARTS,
        pub key_part_identifier: i32 = Tag::KEY_PART_IDENTIFIER,
        pub split_key_threshold: i32 = Tag::SPLIT_KEY_THRESHOLD,
        pub split_key_method: SplitKeyMethod = Tag::SPLIT_KEY_METHOD,
        pub prime_field_size: Option<BigInt> = Tag::PRIME_FIELD_SIZE,
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct PgpKey {
        pub pgp_key_version: i32 = Tag::PGP_KEY_VERSION,
        pub key_block: KeyBlock = Tag::KEY_BLOCK,
    }
}

kmip_struct! {
    pub struct CertificateRequestObject {
        pub certificate_request_type: CertificateRequestType = Tag::CERTIFICATE_REQUEST_TYPE,
        pub certificate_request_value: Vec<u8> = Tag::CERTIFICATE_REQUEST_VALUE,
    }
}

/// A managed object; its tag tells which.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    SymmetricKey(SymmetricKey),
    PublicKey(PublicKey),
    PrivateKey(PrivateKey),
    SecretData(SecretData),
    OpaqueObject(OpaqueObject),
    Certificate(Certificate),
    SplitKey(SplitKey),
    PgpKey(PgpKey),
    CertificateRequest(CertificateRequestObject),
}

/// Field tag for "any managed object" in payloads.
pub const ANY_OBJECT: Tag = Tag(0);

impl Object {
    pub fn object_type(&self) -> ObjectType {
        match self {
            Object::SymmetricKey(_) => ObjectType::SymmetricKey,
            Object::PublicKey(_) => ObjectType::PublicKey,
            Object::PrivateKey(_) => ObjectType::PrivateKey,
            Object::SecretData(_) => ObjectType::SecretData,
            Object::OpaqueObject(_) => ObjectType::OpaqueObject,
            Object::Certificate(_) => ObjectType::Certificate,
            Object::SplitKey(_) => ObjectType::SplitKey,
            Object::PgpKey(_) => ObjectType::PGPKey,
            Object::CertificateRequest(_) => ObjectType::CertificateRequest,
        }
    }

    pub fn tag(&self) -> Tag {
        match self {
            Object::SymmetricKey(_) => Tag::SYMMETRIC_KEY,
            Object::PublicKey(_) => Tag::PUBLIC_KEY,
            Object::PrivateKey(_) => Tag::PRIVATE_KEY,
            Object::SecretData(_) => Tag::SECRET_DATA,
            Object::OpaqueObject(_) => Tag::OPAQUE_OBJECT,
            Object::Certificate(_) => Tag::CERTIFICATE,
            Object::SplitKey(_) => Tag::SPLIT_KEY,
            Object::PgpKey(_) => Tag::PGP_KEY,
            Object::CertificateRequest(_) => Tag::CERTIFICATE_REQUEST,
        }
    }

    pub fn key_block(&self) -> Option<&KeyBlock> {
        match self {
            Object::SymmetricKey(k) => Some(&k.key_block),
            Object::PublicKey(k) => Some(&k.key_block),
            Object::PrivateKey(k) => Some(&k.key_block),
            Object::SecretData(k) => Some(&k.key_block),
            Object::SplitKey(k) => Some(&k.key_block),
            Object::PgpKey(k) => Some(&k.key_block),
            _ => None,
        }
    }

    pub fn key_block_mut(&mut self) -> Option<&mut KeyBlock> {
        match self {
            Object::SymmetricKey(k) => Some(&mut k.key_block),
            Object::PublicKey(k) => Some(&mut k.key_block),
            Object::PrivateKey(k) => Some(&mut k.key_block),
            Object::SecretData(k) => Some(&mut k.key_block),
            Object::SplitKey(k) => Some(&mut k.key_block),
            Object::PgpKey(k) => Some(&mut k.key_block),
            _ => None,
        }
    }

    fn is_object_tag(tag: Tag) -> bool {
        matches!(
            tag,
            Tag::SYMMETRIC_KEY
                | Tag::PUBLIC_KEY
                | Tag::PRIVATE_KEY
                | Tag::SECRET_DATA
                | Tag::OPAQUE_OBJECT
                | Tag::CERTIFICATE
                | Tag::SPLIT_KEY
                | Tag::PGP_KEY
                | Tag::CERTIFICATE_REQUEST
        )
    }
}

impl Item for Object {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        Ok(match item.tag {
            Tag::SYMMETRIC_KEY => Object::SymmetricKey(SymmetricKey::from_ttlv(item)?),
            Tag::PUBLIC_KEY => Object::PublicKey(PublicKey::from_ttlv(item)?),
            Tag::PRIVATE_KEY => Object::PrivateKey(PrivateKey::from_ttlv(item)?),
            Tag::SECRET_DATA => Object::SecretData(SecretData::from_ttlv(item)?),
            Tag::OPAQUE_OBJECT => Object::OpaqueObject(OpaqueObject::from_ttlv(item)?),
            Tag::CERTIFICATE => Object::Certificate(Certificate::from_ttlv(item)?),
            Tag::SPLIT_KEY => Object::SplitKey(SplitKey::from_ttlv(item)?),
            Tag::PGP_KEY => Object::PgpKey(PgpKey::from_ttlv(item)?),
            Tag::CERTIFICATE_REQUEST => {
                Object::CertificateRequest(CertificateRequestObject::from_ttlv(item)?)
            }
            other => {
                return Err(Error::BadValue {
                    tag: other,
                    reason: "not a managed object".into(),
                });
            }
        })
    }
    fn to_ttlv(&self, _: Tag) -> Ttlv {
        match self {
            Object::SymmetricKey(o) => o.to_ttlv(Tag::SYMMETRIC_KEY),
            Object::PublicKey(o) => o.to_ttlv(Tag::PUBLIC_KEY),
            Object::PrivateKey(o) => o.to_ttlv(Tag::PRIVATE_KEY),
            Object::SecretData(o) => o.to_ttlv(Tag::SECRET_DATA),
            Object::OpaqueObject(o) => o.to_ttlv(Tag::OPAQUE_OBJECT),
            Object::Certificate(o) => o.to_ttlv(Tag::CERTIFICATE),
            Object::SplitKey(o) => o.to_ttlv(Tag::SPLIT_KEY),
            Object::PgpKey(o) => o.to_ttlv(Tag::PGP_KEY),
            Object::CertificateRequest(o) => o.to_ttlv(Tag::CERTIFICATE_REQUEST),
        }
    }
    fn accepts(field: Tag, found: Tag) -> bool {
        if field == ANY_OBJECT {
            Object::is_object_tag(found)
        } else {
            field == found
        }
    }
}

impl KeyBlock {
    /// A block holding `key_material` in the clear, in `key_format_type`, without algorithm,
    /// length or wrapping.
    pub fn plain(key_format_type: KeyFormatType, key_material: Vec<u8>) -> KeyBlock {
        KeyBlock {
            key_format_type,
            key_compression_type: None,
            key_value: Some(KeyValue::Plain(PlainKeyValue {
                key_material: KeyMaterial::Bytes(key_material),
                attributes: None,
                attribute: vec![],
            })),
            cryptographic_algorithm: None,
            cryptographic_length: None,
            key_wrapping_data: None,
        }
    }
}

impl Object {
    /// A symmetric key of `length_bits` bits holding `key` in the clear, in Raw format.
    pub fn symmetric_key(
        algorithm: CryptographicAlgorithm,
        length_bits: i32,
        key: Vec<u8>,
    ) -> Object {
        Object::SymmetricKey(SymmetricKey {
            key_block: KeyBlock {
                cryptographic_algorithm: Some(algorithm),
                cryptographic_length: Some(length_bits),
                ..KeyBlock::plain(KeyFormatType::Raw, key)
            },
        })
    }

    /// A secret data of `secret_data_type` holding `secret` in the clear, in Opaque format.
    pub fn secret_data(secret_data_type: SecretDataType, secret: Vec<u8>) -> Object {
        Object::SecretData(SecretData {
            secret_data_type,
            key_block: KeyBlock::plain(KeyFormatType::Opaque, secret),
        })
    }
}

#[cfg(test)]
mod wipe_tests {
    use super::*;

    #[test]
    fn wiping_zeroes_every_byte_of_the_material() {
        let mut bytes = KeyMaterial::Bytes(vec![0xA5; 32]);
        bytes.wipe();
        assert!(matches!(&bytes, KeyMaterial::Bytes(b) if b.iter().all(|x| *x == 0)));
        let mut structure = KeyMaterial::Structure(vec![Ttlv::structure(
            Tag::KEY_MATERIAL,
            vec![Ttlv::new(Tag::P, Value::BigInteger(vec![0x7F; 16]))],
        )]);
        structure.wipe();
        let KeyMaterial::Structure(items) = &structure else {
            unreachable!("built as a structure")
        };
        let Value::Structure(children) = &items[0].value else {
            unreachable!("built as a structure")
        };
        assert!(matches!(&children[0].value, Value::BigInteger(b) if b.iter().all(|x| *x == 0)));
    }
}
