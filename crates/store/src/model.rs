//! What the store keeps: a managed object with its attributes, state, owner and tags.

use kmip::model::{Attribute, Attributes, Item, Object};
use kmip::{CryptographicAlgorithm, DateTime, ObjectType, State, Tag, binary};

/// How every backend stores an object and its attributes: binary TTLV.
pub(crate) fn encode_object(o: &Object) -> Vec<u8> {
    binary::encode(&o.to_ttlv(o.tag()))
}

pub(crate) fn encode_attributes(a: &Attributes) -> Vec<u8> {
    binary::encode(&a.to_ttlv(Tag::ATTRIBUTES))
}

pub(crate) fn decode_object(bytes: &[u8]) -> Result<Object, String> {
    binary::decode(bytes, &binary::Limits::default())
        .and_then(|t| Object::from_ttlv(&t))
        .map_err(|e| format!("object: {e}"))
}

pub(crate) fn decode_attributes(bytes: &[u8]) -> Result<Attributes, String> {
    binary::decode(bytes, &binary::Limits::default())
        .and_then(|t| Attributes::from_ttlv(&t))
        .map_err(|e| format!("attributes: {e}"))
}

/// One managed object as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub uid: String,
    pub object_type: ObjectType,
    /// The object with its key material; `None` once destroyed (metadata is kept).
    pub object: Option<Object>,
    pub attributes: Attributes,
    pub state: State,
    pub owner: String,
    /// User tags, sorted and deduplicated.
    pub tags: Vec<String>,
    /// Incremented by every update; an update based on an older revision is refused with
    /// [`crate::StoreError::Conflict`] (optimistic concurrency between servers).
    pub revision: u64,
    /// The AEAD key prepared from `object`'s key material by the first request that used it,
    /// kept while this value lives (in the cache, as long as the entry) and wiped when it is
    /// dropped. A copy starts empty; it is never stored.
    pub schedules: kms_crypto::KeySchedules,
}

/// A date attribute (by tag) that must lie in `[from, to]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub tag: Tag,
    pub from: DateTime,
    pub to: DateTime,
}

/// Who may do what on one object besides its owner: the operations (KMIP operation names in
/// snake case, as the server spells them) granted to one user, or to `*`, every user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub operations: Vec<String>,
}

/// The user every grant to `*` is for.
pub const EVERY_USER: &str = "*";

/// An object on which a user holds rights without owning it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obtained {
    pub uid: String,
    pub owner: String,
    pub state: State,
    /// The user's own grants and those to `*`, merged and sorted.
    pub operations: Vec<String>,
}

/// Criteria of a Locate; every criterion given must match.
#[derive(Clone, Debug, Default)]
pub struct LocateQuery {
    /// Only objects of this owner.
    pub owner: Option<String>,
    /// Only objects this user owns or holds a right on (directly or through `*`); checked by
    /// the backend, like the tags.
    pub visible_to: Option<String>,
    /// Only the object with this identifier.
    pub uid: Option<String>,
    /// Whether destroyed objects (Destroyed, DestroyedCompromised) are included.
    pub include_destroyed: bool,
    /// Date attributes that must lie in an inclusive range.
    pub dates: Vec<DateRange>,
    /// Every bit of this usage mask must be set in the object's.
    pub usage_mask: Option<i32>,
    /// Attributes the object must have, equal.
    pub equal: Vec<Attribute>,
    pub object_type: Option<ObjectType>,
    pub state: Option<State>,
    pub algorithm: Option<CryptographicAlgorithm>,
    pub length: Option<i32>,
    /// Every one of these names (`Name` attribute values) must be present.
    pub names: Vec<String>,
    /// Every one of these object groups must be present.
    pub object_groups: Vec<String>,
    /// Every one of these user tags must be present.
    pub tags: Vec<String>,
    /// Skip this many matches.
    pub offset: usize,
    /// Return at most this many.
    pub limit: Option<usize>,
}

impl LocateQuery {
    /// The uids of the `candidates` (objects whose user tags the backend already matched in
    /// SQL, in creation order) that match every other criterion, after `offset`, at most `limit`.
    pub fn select(
        &self,
        candidates: impl Iterator<Item = crate::Result<StoredObject>>,
    ) -> crate::Result<Vec<String>> {
        let rest = LocateQuery {
            tags: Vec::new(),
            visible_to: None,
            ..self.clone()
        };
        let mut out = Vec::new();
        let mut skipped = 0;
        for candidate in candidates {
            let o = candidate?;
            if !rest.matches(&o) {
                continue;
            }
            if skipped < self.offset {
                skipped += 1;
                continue;
            }
            out.push(o.uid);
            if self.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// Whether an object matches the criteria the SQL did not check (names, groups, tags,
    /// algorithm, length). Shared by every backend so that they agree. `visible_to` needs the
    /// grants, which only the backend sees: it is not checked here.
    pub fn matches(&self, o: &StoredObject) -> bool {
        if !self.include_destroyed
            && matches!(o.state, State::Destroyed | State::DestroyedCompromised)
        {
            return false;
        }
        if self.uid.as_ref().is_some_and(|u| *u != o.uid) {
            return false;
        }
        if self.owner.as_ref().is_some_and(|w| *w != o.owner) {
            return false;
        }
        if self.object_type.is_some_and(|t| t != o.object_type)
            || self.state.is_some_and(|s| s != o.state)
        {
            return false;
        }
        if self.algorithm.is_some() && self.algorithm != o.attributes.cryptographic_algorithm() {
            return false;
        }
        if self.length.is_some() && self.length != o.attributes.cryptographic_length() {
            return false;
        }
        if !self
            .names
            .iter()
            .all(|n| o.attributes.names().any(|x| &x.name_value == n))
        {
            return false;
        }
        if !self
            .object_groups
            .iter()
            .all(|g| o.attributes.object_groups().any(|x| x == g))
        {
            return false;
        }
        if let Some(wanted) = self.usage_mask
            && o.attributes.cryptographic_usage_mask().unwrap_or(0) & wanted != wanted
        {
            return false;
        }
        if !self.equal.iter().all(|a| o.attributes.0.contains(a)) {
            return false;
        }
        let in_range = |r: &DateRange| {
            o.attributes
                .date(r.tag)
                .is_some_and(|d| r.from <= d && d <= r.to)
        };
        if !self.dates.iter().all(in_range) {
            return false;
        }
        self.tags.iter().all(|t| o.tags.contains(t))
    }
}
