//! One file per KMIP operation; this module holds what several of them share: building a new
//! object's stored form, the usage-mask and state checks, and attribute rules.

pub mod activate;
pub mod add_attribute;
pub mod asymmetric;
pub mod certificate;
pub mod certify;
pub mod check;
pub mod create;
pub mod create_key_pair;
pub mod decrypt;
pub mod delete_attribute;
pub mod derive_key;
pub mod destroy;
pub mod discover_versions;
pub mod encrypt;
pub mod export;
pub mod get;
pub mod get_attribute_list;
pub mod get_attributes;
pub mod hash;
pub mod hsm;
pub mod import;
pub mod interop;
pub mod locate;
pub mod log;
pub mod mac;
pub mod mac_verify;
pub mod modify_attribute;
pub mod pkcs12;
pub mod query;
pub mod re_certify;
pub mod re_key;
pub mod re_key_key_pair;
pub mod register;
pub mod revoke;
pub mod rng_retrieve;
pub mod rng_seed;
pub mod set_attribute;
pub mod sign;
pub mod signature_verify;
pub mod streamed_crypt;
pub mod symmetric;
pub mod validate;
pub mod wrapping;

use kmip::Operation;

use kmip::model::{RequestPayload, ResponsePayload, UniqueIdentifier};

/// What an operation does to stored objects: the batch layer snapshots what `Changes` touches
/// and what `Creates` makes, so that an Undo batch can put them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads objects or none at all.
    Reads,
    /// Makes a new object (its identifier is in the response).
    Creates,
    /// Changes the object it names (see [`Target`]) or the batch's placeholder.
    Changes,
    /// Changes the object it names and makes new ones from it (ReKey: the replacement).
    Replaces,
}

/// The object a changing operation names; `None` means the batch's ID placeholder.
pub trait Target {
    fn target(&self) -> Option<&UniqueIdentifier>;
}

/// The one table of operations: each line declares the operation, its module (a file of this
/// folder, declared above, holding an `async fn` of the same name taking `(&Kms, &mut
/// RequestContext, payload)`) and its [`Effect`]. Dispatch, the Query answer and the Undo
/// journal all come from it. (The modules are declared outside the macro so that rustfmt sees
/// them.)
macro_rules! operations {
    (
        typed { $( $op:ident => $module:ident, $effect:ident; )* }
        untyped { $( $uop:ident => $umodule:ident; )* }
    ) => {
        /// The operations this server implements, for Query. The untyped test-harness
        /// operations (Interop, Log) are answered but not advertised.
        pub const SUPPORTED: &[Operation] = &[ $( Operation::$op, )* ];

        /// What the operation of this payload does, or `None` if the server does not implement it.
        pub fn effect(payload: &RequestPayload) -> Option<Effect> {
            match payload {
                $( RequestPayload::$op(_) => Some(Effect::$effect), )*
                $( RequestPayload::Other(Operation::$uop, _) => Some(Effect::Reads), )*
                _ => None,
            }
        }

        /// For an operation that changes an object: `Some(named)`, where `named` is the
        /// identifier it gives (`None`: the batch's placeholder).
        pub fn target(payload: &RequestPayload) -> Option<Option<&UniqueIdentifier>> {
            match payload {
                $( RequestPayload::$op(p) => target_of!($effect, p), )*
                _ => None,
            }
        }

        /// Runs one operation.
        pub async fn run(
            kms: &Kms,
            ctx: &mut RequestContext,
            payload: RequestPayload,
        ) -> KResult<ResponsePayload> {
            ctx.operation = Some(payload.operation());
            if let Some(key) = hsm::addressed(ctx, &payload) {
                // Boxed: inline, the HSM operations' futures would make every operation's as
                // large as theirs.
                return Box::pin(hsm::run(kms, ctx, key?, payload)).await;
            }
            match payload {
                // Each operation's future on the heap, at its own size: inline, this one would be
                // as large as the largest (kilobytes), copied whole for every operation run.
                $( RequestPayload::$op(p) => Ok(ResponsePayload::$op(Box::pin($module::$module(kms, ctx, p)).await?)), )*
                $( RequestPayload::Other(Operation::$uop, p) => Ok(ResponsePayload::Other(
                    Operation::$uop,
                    Box::pin($umodule::$umodule(kms, ctx, p)).await?,
                )), )*
                other => Err(KmsError::OperationNotSupported(format!("{:?}", other.operation()))),
            }
        }
    };
}

/// Operations whose answer may come from an object or right up to the cache's bound old
/// ([`kms_store::sql::CACHE_BOUND`]) on a shared database: they use an object, they do not
/// decide on its state for a change.
pub fn may_read_cache(payload: &RequestPayload) -> bool {
    matches!(
        payload,
        RequestPayload::Encrypt(_)
            | RequestPayload::Decrypt(_)
            | RequestPayload::MAC(_)
            | RequestPayload::MACVerify(_)
            | RequestPayload::Sign(_)
            | RequestPayload::SignatureVerify(_)
            | RequestPayload::Get(_)
            | RequestPayload::Export(_)
            | RequestPayload::GetAttributes(_)
            | RequestPayload::GetAttributeList(_)
    )
}

macro_rules! target_of {
    (Changes, $p:ident) => {
        Some(Target::target($p))
    };
    (Replaces, $p:ident) => {
        Some(Target::target($p))
    };
    ($other:ident, $p:ident) => {{
        let _ = $p;
        None
    }};
}

operations! {
    typed {
        Create => create, Creates;
        CreateKeyPair => create_key_pair, Creates;
        ReKey => re_key, Replaces;
        DeriveKey => derive_key, Creates;
        Certify => certify, Creates;
        ReCertify => re_certify, Replaces;
        Validate => validate, Reads;
        ReKeyKeyPair => re_key_key_pair, Replaces;
        Register => register, Creates;
        Import => import, Changes;
        Locate => locate, Reads;
        Check => check, Reads;
        Get => get, Reads;
        Export => export, Reads;
        GetAttributes => get_attributes, Reads;
        GetAttributeList => get_attribute_list, Reads;
        AddAttribute => add_attribute, Changes;
        SetAttribute => set_attribute, Changes;
        ModifyAttribute => modify_attribute, Changes;
        DeleteAttribute => delete_attribute, Changes;
        Activate => activate, Changes;
        Revoke => revoke, Changes;
        Destroy => destroy, Changes;
        Query => query, Reads;
        DiscoverVersions => discover_versions, Reads;
        Encrypt => encrypt, Changes;
        Decrypt => decrypt, Reads;
        MAC => mac, Changes;
        MACVerify => mac_verify, Reads;
        RNGRetrieve => rng_retrieve, Reads;
        RNGSeed => rng_seed, Reads;
        Hash => hash, Reads;
        Sign => sign, Reads;
        SignatureVerify => signature_verify, Reads;
    }
    untyped {
        Interop => interop;
        Log => log;
    }
}

impl Target for kmip::model::UidRequest {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::Destroy {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::Revoke {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::NewAttributeRequest {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::ModifyAttribute {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::DeleteAttribute {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::Encrypt {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::Mac {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::Import {
    fn target(&self) -> Option<&UniqueIdentifier> {
        Some(&self.unique_identifier)
    }
}

use kmip::model::{Attribute, Attributes, Digest, Interval, Object};
use kmip::{DateTime, HashingAlgorithm, KeyFormatType, ObjectType, State, Tag};
use kms_store::StoredObject;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext, state_name};

/// Usage mask bits the server checks.
pub mod usage {
    pub const SIGN: i32 = 0x0000_0001;
    pub const VERIFY: i32 = 0x0000_0002;
    pub const ENCRYPT: i32 = 0x0000_0004;
    pub const DECRYPT: i32 = 0x0000_0008;
    pub const WRAP_KEY: i32 = 0x0000_0010;
    pub const UNWRAP_KEY: i32 = 0x0000_0020;
    pub const MAC_GENERATE: i32 = 0x0000_0080;
    pub const MAC_VERIFY: i32 = 0x0000_0100;
    pub const DERIVE_KEY: i32 = 0x0000_0200;
    pub const KEY_AGREEMENT: i32 = 0x0000_0800;
}

/// Attributes only the server sets.
pub fn is_read_only(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::UNIQUE_IDENTIFIER
            | Tag::OBJECT_TYPE
            | Tag::STATE
            | Tag::INITIAL_DATE
            | Tag::LAST_CHANGE_DATE
            | Tag::DESTROY_DATE
            | Tag::COMPROMISE_DATE
            | Tag::COMPROMISE_OCCURRENCE_DATE
            | Tag::REVOCATION_REASON
            | Tag::DIGEST
            | Tag::KEY_VALUE_PRESENT
            | Tag::ALWAYS_SENSITIVE
            | Tag::NEVER_EXTRACTABLE
            | Tag::ORIGINAL_CREATION_DATE
            | Tag::CRYPTOGRAPHIC_ALGORITHM
            | Tag::CRYPTOGRAPHIC_LENGTH
            | Tag::CERTIFICATE_TYPE
            | Tag::CERTIFICATE_LENGTH
            | Tag::CERTIFICATE_SUBJECT_CN
            | Tag::CERTIFICATE_SUBJECT_O
            | Tag::CERTIFICATE_SUBJECT_OU
            | Tag::CERTIFICATE_SUBJECT_C
            | Tag::CERTIFICATE_SUBJECT_EMAIL
            | Tag::CERTIFICATE_ISSUER_CN
            | Tag::CERTIFICATE_ISSUER_O
            | Tag::CERTIFICATE_ISSUER_OU
            | Tag::CERTIFICATE_ISSUER_C
            | Tag::CERTIFICATE_ISSUER_EMAIL
            | Tag::X_509_CERTIFICATE_IDENTIFIER
            | Tag::X_509_CERTIFICATE_SUBJECT
            | Tag::X_509_CERTIFICATE_ISSUER
            | Tag::FRESH
    )
}

/// Checks a client may give `attr` to the object (Add, Set, Modify): not an attribute only the
/// server sets, not undoing a protection, not the usage count, and the activation date only while
/// the object is pre-active.
pub fn check_change_allowed(object: &StoredObject, attr: &Attribute) -> KResult<()> {
    if is_read_only(attr.tag()) {
        return Err(KmsError::AttributeReadOnly(attribute_name(attr)));
    }
    check_protection_kept(object, attr.tag(), Some(attr))?;
    if let Attribute::UsageLimits(asked) = attr
        && asked.usage_limits_count.is_some()
        && asked.usage_limits_count
            != object
                .attributes
                .usage_limits()
                .and_then(|l| l.usage_limits_count)
    {
        return Err(KmsError::InvalidRequest(
            "the remaining usage count (UsageLimitsCount) is kept by the server; give the total only".into(),
        ));
    }
    if attr.tag() == Tag::ACTIVATION_DATE && object.state != State::PreActive {
        return Err(KmsError::WrongState {
            uid: object.uid.clone(),
            state: state_name(object.state),
            action: "the activation date can only change while the object is pre-active".into(),
        });
    }
    Ok(())
}

/// `Sensitive` once true and `Extractable` once false cannot be undone: not set back, not
/// deleted. `new` is the value asked for (`None`: the attribute is deleted).
pub fn check_protection_kept(
    object: &StoredObject,
    tag: Tag,
    new: Option<&Attribute>,
) -> KResult<()> {
    let undone = match tag {
        Tag::SENSITIVE => {
            object.attributes.sensitive() == Some(true)
                && !matches!(new, Some(Attribute::Sensitive(true)))
        }
        Tag::EXTRACTABLE => {
            object.attributes.extractable() == Some(false)
                && !matches!(new, Some(Attribute::Extractable(false)))
        }
        _ => false,
    };
    if undone {
        return Err(KmsError::InvalidRequest(format!(
            "{tag} of object `{}` protects its key material and cannot be undone",
            object.uid
        )));
    }
    Ok(())
}

/// Attributes that may have several instances.
pub fn is_multi_valued(attr: &Attribute) -> bool {
    match attr {
        Attribute::Name(_)
        | Attribute::ObjectGroup(_)
        | Attribute::Link(_)
        | Attribute::VendorAttribute(_) => true,
        Attribute::Other(t) => matches!(
            t.tag,
            Tag::ALTERNATIVE_NAME | Tag::APPLICATION_SPECIFIC_INFORMATION
        ),
        _ => false,
    }
}

/// Display name of an attribute for messages.
pub fn attribute_name(attr: &Attribute) -> String {
    match attr {
        Attribute::VendorAttribute(v) => {
            format!("{}:{}", v.vendor_identification, v.attribute_name)
        }
        other => other.tag().to_string(),
    }
}

/// The identifier a new object gets: the client's `UniqueIdentifier` attribute or a UUID v4.
pub fn new_uid(attributes: &Attributes) -> KResult<String> {
    match attributes.unique_identifier() {
        Some(kmip::model::UniqueIdentifier::Text(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(KmsError::InvalidRequest(
            "the UniqueIdentifier attribute must be a non-empty text".into(),
        )),
        None => Ok(uuid::Builder::from_random_bytes(kms_crypto::random_id()?)
            .into_uuid()
            .to_string()),
    }
}

/// Checks the object is of the type the client expects (Cosmian's `ExpectedObjectType`), so
/// that a command for one kind of object cannot act on another found by its tags.
pub fn require_object_type(object: &StoredObject, expected: Option<ObjectType>) -> KResult<()> {
    match expected {
        Some(expected) if expected != object.object_type => Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}, not the {expected:?} expected",
            object.uid, object.object_type
        ))),
        _ => Ok(()),
    }
}

/// Checks the object is in one of `allowed` states.
pub fn require_state(object: &StoredObject, allowed: &[State], action: &str) -> KResult<()> {
    if allowed.contains(&object.state) {
        return Ok(());
    }
    Err(KmsError::WrongState {
        uid: object.uid.clone(),
        state: state_name(object.state),
        action: action.to_owned(),
    })
}

/// Checks the usage mask allows `bit` (an object without a mask allows nothing).
pub fn require_usage(object: &StoredObject, bit: i32, operation: &'static str) -> KResult<()> {
    let mask = object.attributes.cryptographic_usage_mask().unwrap_or(0);
    if mask & bit == bit {
        return Ok(());
    }
    Err(KmsError::UsageNotAllowed {
        uid: object.uid.clone(),
        operation,
    })
}

/// Checks the key's protect-stop date (for protecting: encrypt, MAC) or process-start date (for
/// processing: decrypt, verify) allows use now.
pub fn require_usage_period(object: &StoredObject, protecting: bool) -> KResult<()> {
    let now = DateTime::now();
    let (date, what) = if protecting {
        (
            object.attributes.protect_stop_date().filter(|d| *d <= now),
            "its protect stop date has passed",
        )
    } else {
        (
            object.attributes.process_start_date().filter(|d| *d > now),
            "its process start date is not reached",
        )
    };
    match date {
        Some(_) => Err(KmsError::WrongState {
            uid: object.uid.clone(),
            state: state_name(object.state),
            action: format!("it cannot be used: {what}"),
        }),
        None => Ok(()),
    }
}

/// Consumes `bytes` (or one operation, for limits counted in objects) of the object's usage
/// limits, refusing when not enough is left. Its own read-change-write, so that concurrent uses
/// through any server are all counted.
pub async fn consume_usage(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: &str,
    bytes: usize,
) -> KResult<()> {
    kms.modify(ctx, Some(uid.to_owned().into()), |object| {
        let Some(mut limits) = object.attributes.usage_limits() else {
            return Ok(());
        };
        let needed = match limits.usage_limits_unit {
            kmip::UsageLimitsUnit::Byte => i64::try_from(bytes).unwrap_or(i64::MAX),
            _ => 1,
        };
        let left = limits
            .usage_limits_count
            .unwrap_or(limits.usage_limits_total);
        if needed > left {
            return Err(KmsError::PermissionDenied(format!(
                "object `{uid}` has reached its usage limits ({left} left, {needed} needed)"
            )));
        }
        limits.usage_limits_count = Some(left - needed);
        object.attributes.set(Attribute::UsageLimits(limits));
        Ok(())
    })
    .await
    .map(|_| ())
}

/// The raw bytes of a symmetric key (or secret data) object.
pub fn key_bytes(object: &StoredObject) -> KResult<&[u8]> {
    let Some(obj) = &object.object else {
        return Err(KmsError::Destroyed(object.uid.clone()));
    };
    obj.key_block()
        .and_then(|kb| kb.symmetric_key_bytes())
        .ok_or_else(|| {
            KmsError::InvalidRequest(format!(
                "object `{}` has no usable symmetric key material",
                object.uid
            ))
        })
}

/// Builds the stored form of a new object: server-managed attributes, state, tags.
/// Checks the caller may add objects to the server (`--privileged-users`).
pub fn require_may_create(ctx: &RequestContext) -> KResult<()> {
    if ctx.may_create {
        return Ok(());
    }
    tracing::info!(request_id = %ctx.request_id, user = %ctx.user, operation = ?ctx.operation, "access denied: not a privileged user");
    Err(KmsError::PermissionDenied(format!(
        "user `{}` may not add objects to this server: only its privileged users may; use objects others granted you",
        ctx.user
    )))
}

pub fn new_stored_object(
    ctx: &RequestContext,
    uid: String,
    object: Object,
    mut attributes: Attributes,
    default_state: State,
) -> KResult<StoredObject> {
    let now = DateTime::now();
    let object_type = object.object_type();
    if let Some(kb) = object.key_block() {
        if let Some(alg) = kb.cryptographic_algorithm
            && !attributes.has(Tag::CRYPTOGRAPHIC_ALGORITHM)
        {
            attributes.set(Attribute::CryptographicAlgorithm(alg));
        }
        if let Some(len) = kb.cryptographic_length
            && !attributes.has(Tag::CRYPTOGRAPHIC_LENGTH)
        {
            attributes.set(Attribute::CryptographicLength(len));
        }
        if let Some(bytes) = kb.symmetric_key_bytes() {
            let digest = kms_crypto::hash(kms_crypto::HashAlgorithm::Sha256, bytes)?;
            let format = match kb.key_format_type {
                KeyFormatType::TransparentSymmetricKey => KeyFormatType::Raw,
                other => other,
            };
            attributes.set(Attribute::Digest(Digest {
                hashing_algorithm: HashingAlgorithm::SHA_256,
                digest_value: Some(digest),
                key_format_type: Some(format),
            }));
        }
    }
    let state = match attributes.activation_date() {
        Some(d) if d <= now => State::Active,
        _ if default_state == State::Active => {
            attributes.set(Attribute::ActivationDate(now));
            State::Active
        }
        _ => default_state,
    };
    // The remaining count is the server's: it starts at the total, whatever the client says.
    if let Some(mut limits) = attributes.usage_limits() {
        limits.usage_limits_count = Some(limits.usage_limits_total);
        attributes.set(Attribute::UsageLimits(limits));
    }
    // Kept by the server from here on: whether the key was always sensitive and never
    // extractable.
    attributes.set(Attribute::AlwaysSensitive(
        attributes.sensitive().unwrap_or(false),
    ));
    attributes.set(Attribute::NeverExtractable(
        !attributes.extractable().unwrap_or(true),
    ));
    attributes.set(Attribute::UniqueIdentifier(uid.clone().into()));
    attributes.set(Attribute::ObjectType(object_type));
    attributes.set(Attribute::State(state));
    if !attributes.has(Tag::INITIAL_DATE) {
        attributes.set(Attribute::InitialDate(now));
    }
    server_maintained(&uid, &object, &mut attributes, now)?;
    attributes.set(Attribute::LastChangeDate(now));
    let tags = attributes.user_tags()?;
    Ok(StoredObject {
        uid,
        object_type,
        object: Some(object),
        attributes,
        state,
        owner: ctx.user.clone(),
        tags,
        revision: 0,
        schedules: Default::default(),
    })
}

/// The attributes KMIP 2.1 (§4) says every new object of its kind has, set by the server when the
/// client did not give them: when it was first made, that it was never served, the server's lease
/// (unlimited: this server grants no shorter one), its short identifier, where it is protected
/// (software), and for keys their format and the defaults of `Extractable` and `Sensitive`. A 1.x
/// client sees those its version defines ([`kmip::v1`]).
fn server_maintained(
    uid: &str,
    object: &Object,
    attributes: &mut Attributes,
    now: DateTime,
) -> KResult<()> {
    if !attributes.has(Tag::ORIGINAL_CREATION_DATE) {
        attributes.set(Attribute::OriginalCreationDate(now));
    }
    attributes.set(Attribute::Fresh(true));
    if !attributes.has(Tag::LEASE_TIME) {
        attributes.set(Attribute::LeaseTime(Interval(u32::MAX)));
    }
    attributes.set(Attribute::ShortUniqueIdentifier(kms_crypto::hash(
        kms_crypto::HashAlgorithm::Sha256,
        uid.as_bytes(),
    )?));
    if !attributes.has(Tag::PROTECTION_STORAGE_MASK) {
        attributes.set(Attribute::ProtectionStorageMask(PROTECTION_SOFTWARE));
    }
    if let Some(kb) = object.key_block() {
        if !attributes.has(Tag::KEY_FORMAT_TYPE) {
            attributes.set(Attribute::KeyFormatType(kb.key_format_type));
        }
        if attributes.extractable().is_none() {
            attributes.set(Attribute::Extractable(true));
        }
        if attributes.sensitive().is_none() {
            attributes.set(Attribute::Sensitive(false));
        }
    }
    Ok(())
}

/// Protection Storage Mask `Software` (KMIP 2.1 §11.22).
const PROTECTION_SOFTWARE: i32 = 0x0000_0001;

/// Saves a new object, answering AlreadyExists if the identifier is taken.
pub async fn insert(kms: &Kms, ctx: &mut RequestContext, object: StoredObject) -> KResult<String> {
    let uid = object.uid.clone();
    kms.store.create(object).await?;
    ctx.placeholder = Some(uid.clone());
    Ok(uid)
}

/// Object types a Register/Import accepts in this build.
pub fn check_registrable(object_type: ObjectType, object: &Object) -> KResult<()> {
    if object.object_type() != object_type {
        return Err(KmsError::InvalidRequest(format!(
            "ObjectType {:?} does not match the object given ({:?})",
            object_type,
            object.object_type()
        )));
    }
    match object_type {
        ObjectType::SymmetricKey | ObjectType::SecretData | ObjectType::OpaqueObject => Ok(()),
        ObjectType::PrivateKey | ObjectType::PublicKey => asymmetric::check_registered(object),
        ObjectType::Certificate => certificate::derive_attributes(object, &mut Attributes::new()),
        other => Err(KmsError::FeatureNotSupported(format!(
            "registering objects of type {other:?}"
        ))),
    }
}

/// Recomputes the tags column from the `cosmian`/`tag` vendor attributes.
pub fn refresh_tags(object: &mut StoredObject) -> KResult<()> {
    object.tags = object.attributes.user_tags()?;
    Ok(())
}
impl Target for kmip::model::ReKey {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
impl Target for kmip::model::ReKeyKeyPair {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.private_key_unique_identifier.as_ref()
    }
}
impl Target for kmip::model::ReCertify {
    fn target(&self) -> Option<&UniqueIdentifier> {
        self.unique_identifier.as_ref()
    }
}
