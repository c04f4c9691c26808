//! The encrypted index and the sealed records of the `redis-findex` store: what Redis is given
//! instead of identifiers, keywords and objects. No Redis here: the store (`redis.rs`) moves the
//! bytes this module makes.
//!
//! Keys (written down in `docs/redis-findex.md`):
//! - the master key is Argon2id of the master password with a random salt kept in Redis;
//! - from it, by HKDF-SHA256: the data key (AES-256-GCM, random nonces) that seals objects and
//!   grants, the entry-name key (HMAC-SHA256) that turns a uid into its Redis key name, and, with
//!   the public label as HKDF salt, the index keys: keyword tokens (HMAC-SHA256) and the
//!   deterministic sealing of index entries (AES-256-GCM-SIV, synthetic nonce).
//!
//! Every sealed value is bound to its Redis key name (and for records to their revision) as
//! associated data, so Redis cannot move a ciphertext to another entry.

use std::collections::{BTreeMap, BTreeSet};

use kmip::enums::KmipEnum;
use kmip::model::Attribute;
use kmip::{ObjectType, State};
use kms_crypto::{Argon2Params, HashAlgorithm, Sealer, hkdf, hmac};
use zeroize::Zeroizing;

use crate::model::{decode_attributes, decode_object, encode_attributes, encode_object};
use crate::{Result, StoreError, StoredObject};

/// Argon2id cost of the master key: RFC 9106's second recommended option.
pub const ARGON2: Argon2Params = Argon2Params::RFC9106_LOW_MEMORY;

/// The keys of one store, derived once at start.
pub struct Keys {
    /// Seals records and grants.
    pub data: Sealer,
    /// Uid → entry name.
    names: Zeroizing<Vec<u8>>,
    /// Keyword → index token.
    tokens: Zeroizing<Vec<u8>>,
    /// Seals index entries (deterministically, so they can be removed).
    pub index: Sealer,
}

impl Keys {
    /// Derives every key from the master password, the salt kept in Redis and the label.
    pub fn derive(password: &[u8], salt: &[u8], label: &str) -> Result<Keys> {
        let master = kms_crypto::argon2id(password, salt, ARGON2)
            .map_err(crypto("derive the master key"))?;
        let sub = |salt: &[u8], info: &str| {
            hkdf(
                HashAlgorithm::Sha256,
                &master[..],
                salt,
                info.as_bytes(),
                32,
            )
            .map_err(crypto("derive a key"))
        };
        let sealer = |k: Zeroizing<Vec<u8>>| Sealer::new(&k).map_err(crypto("prepare a key"));
        Ok(Keys {
            data: sealer(sub(b"", "kms redis-findex data v1")?)?,
            names: sub(b"", "kms redis-findex entry names v1")?,
            tokens: sub(label.as_bytes(), "kms redis-findex index tokens v1")?,
            index: sealer(sub(label.as_bytes(), "kms redis-findex index entries v1")?)?,
        })
    }

    /// The hex name that stands for `uid` in Redis key names.
    pub fn entry_name(&self, uid: &str) -> String {
        hex(&mac(&self.names, uid.as_bytes()))
    }

    /// The hex token that stands for a keyword in Redis key names.
    pub fn token(&self, keyword: &Keyword) -> String {
        hex(&mac(&self.tokens, &keyword.0))
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC-SHA256 with a 32-byte key cannot fail.
    hmac(HashAlgorithm::Sha256, key, data).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn crypto(what: &'static str) -> impl Fn(kms_crypto::Error) -> StoreError {
    move |e| StoreError::Unavailable {
        backend: "redis-findex",
        reason: format!("cannot {what}: {e}"),
        source: None,
    }
}

/// What the index maps to a set of uids: a kind and a value, never stored in clear.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Keyword(Vec<u8>);

impl Keyword {
    pub fn new(kind: &str, value: &str) -> Keyword {
        let mut k = Vec::with_capacity(kind.len() + 1 + value.len());
        k.extend_from_slice(kind.as_bytes());
        k.push(0);
        k.extend_from_slice(value.as_bytes());
        Keyword(k)
    }

    /// Every object is under this keyword (Locate without a selective criterion).
    pub fn all() -> Keyword {
        Keyword::new("all", "")
    }

    pub fn owner(user: &str) -> Keyword {
        Keyword::new("owner", user)
    }

    pub fn grantee(user: &str) -> Keyword {
        Keyword::new("grantee", user)
    }

    pub fn tag(tag: &str) -> Keyword {
        Keyword::new("tag", tag)
    }

    pub fn name(name: &str) -> Keyword {
        Keyword::new("name", name)
    }

    pub fn group(group: &str) -> Keyword {
        Keyword::new("group", group)
    }

    pub fn object_type(t: ObjectType) -> Keyword {
        Keyword::new("type", &t.to_u32().to_string())
    }
}

/// The keywords an object is indexed under (its grants' keywords come from [`grant_keywords`]).
pub fn object_keywords(o: &StoredObject) -> BTreeSet<Keyword> {
    let mut k = BTreeSet::new();
    k.insert(Keyword::all());
    k.insert(Keyword::owner(&o.owner));
    k.insert(Keyword::object_type(o.object_type));
    k.insert(Keyword::new("state", &o.state.to_u32().to_string()));
    if let Some(a) = o.attributes.cryptographic_algorithm() {
        k.insert(Keyword::new("algorithm", &a.to_u32().to_string()));
    }
    if let Some(l) = o.attributes.cryptographic_length() {
        k.insert(Keyword::new("length", &l.to_string()));
    }
    for t in &o.tags {
        k.insert(Keyword::tag(t));
    }
    for n in o.attributes.names() {
        k.insert(Keyword::name(&n.name_value));
    }
    for g in o.attributes.object_groups() {
        k.insert(Keyword::group(g));
    }
    for a in &o.attributes.0 {
        if let Attribute::Link(l) = a
            && let Some(target) = l.linked_object_identifier.as_text()
        {
            k.insert(Keyword::new("link", target));
        }
    }
    k
}

/// The grants on one object: user → operations.
pub type Grants = BTreeMap<String, BTreeSet<String>>;

pub fn grant_keywords(grants: &Grants) -> BTreeSet<Keyword> {
    grants
        .iter()
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(user, _)| Keyword::grantee(user))
        .collect()
}

/// A record as stored: the object and its creation sequence number (Locate answers in creation
/// order).
pub struct Record {
    pub seq: u64,
    pub object: StoredObject,
}

const RECORD_VERSION: u8 = 1;

struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn text(&mut self) -> Option<String> {
        self.bytes()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
}

/// Encodes a record (the buffer holds key material: it is wiped when dropped).
pub fn encode_record(seq: u64, o: &StoredObject) -> Zeroizing<Vec<u8>> {
    let mut w = Writer(Zeroizing::new(Vec::with_capacity(512)));
    w.0.push(RECORD_VERSION);
    w.u64(seq);
    w.bytes(o.uid.as_bytes());
    w.u32(o.object_type.to_u32());
    w.u32(o.state.to_u32());
    w.bytes(o.owner.as_bytes());
    w.u32(o.tags.len() as u32);
    for t in &o.tags {
        w.bytes(t.as_bytes());
    }
    w.bytes(&encode_attributes(&o.attributes));
    match &o.object {
        Some(obj) => {
            w.0.push(1);
            w.bytes(&Zeroizing::new(encode_object(obj)));
        }
        None => w.0.push(0),
    }
    w.0
}

/// Decodes a record opened from Redis; `revision` comes from the entry.
pub fn decode_record(bytes: &[u8], revision: u64) -> Result<Record> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        uid: "(sealed)".into(),
        reason: reason.to_owned(),
    };
    let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("empty record"))?;
    if version != RECORD_VERSION {
        return Err(corrupt("record written by a newer version"));
    }
    let mut r = Reader { rest };
    let truncated = || corrupt("truncated record");
    let seq = r.u64().ok_or_else(truncated)?;
    let uid = r.text().ok_or_else(truncated)?;
    let object_type = r
        .u32()
        .and_then(ObjectType::from_u32)
        .ok_or_else(|| corrupt("object type"))?;
    let state = r
        .u32()
        .and_then(State::from_u32)
        .ok_or_else(|| corrupt("state"))?;
    let owner = r.text().ok_or_else(truncated)?;
    let n = r.u32().ok_or_else(truncated)?;
    let mut tags = Vec::new();
    for _ in 0..n {
        tags.push(r.text().ok_or_else(truncated)?);
    }
    let attributes = r
        .bytes()
        .ok_or_else(truncated)
        .and_then(|b| decode_attributes(b).map_err(|e| corrupt(&e)))?;
    let object = match r.take(1).ok_or_else(truncated)? {
        [1] => Some(
            r.bytes()
                .ok_or_else(truncated)
                .and_then(|b| decode_object(b).map_err(|e| corrupt(&e)))?,
        ),
        _ => None,
    };
    Ok(Record {
        seq,
        object: StoredObject {
            uid,
            object_type,
            object,
            attributes,
            state,
            owner,
            tags,
            revision,
            schedules: Default::default(),
        },
    })
}

pub fn encode_grants(g: &Grants) -> Vec<u8> {
    let mut w = Writer(Zeroizing::new(Vec::new()));
    w.u32(g.len() as u32);
    for (user, ops) in g {
        w.bytes(user.as_bytes());
        w.u32(ops.len() as u32);
        for op in ops {
            w.bytes(op.as_bytes());
        }
    }
    w.0.to_vec()
}

pub fn decode_grants(bytes: &[u8]) -> Result<Grants> {
    let corrupt = || StoreError::Corrupt {
        uid: "(sealed)".into(),
        reason: "truncated grants".into(),
    };
    let mut r = Reader { rest: bytes };
    let mut g = Grants::new();
    for _ in 0..r.u32().ok_or_else(corrupt)? {
        let user = r.text().ok_or_else(corrupt)?;
        let mut ops = BTreeSet::new();
        for _ in 0..r.u32().ok_or_else(corrupt)? {
            ops.insert(r.text().ok_or_else(corrupt)?);
        }
        g.insert(user, ops);
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_grants_round_trip() {
        let o = StoredObject {
            uid: "u1".into(),
            object_type: ObjectType::SymmetricKey,
            object: None,
            attributes: kmip::model::Attributes(vec![Attribute::CryptographicLength(256)]),
            state: State::Active,
            owner: "alice".into(),
            tags: vec!["a".into(), "b".into()],
            revision: 0,
            schedules: Default::default(),
        };
        let r = decode_record(&encode_record(7, &o), 3).expect("decode");
        assert_eq!(r.seq, 7);
        assert_eq!(r.object, StoredObject { revision: 3, ..o });
        let mut g = Grants::new();
        g.entry("bob".into()).or_default().insert("get".into());
        assert_eq!(decode_grants(&encode_grants(&g)).expect("decode"), g);
        assert!(decode_record(&[1, 0, 0], 1).is_err());
    }
}
