//! KMIP 2.1 attributes: the `Attributes` structure as an ordered list of typed attributes.

use super::{Interval, Item, UniqueIdentifier, kmip_struct};
use crate::error::Error;
use crate::generated::*;
use crate::tag::Tag;
use crate::ttlv::{DateTime, Ttlv};

kmip_struct! {
    /// `Name`: a name and its type.
    pub struct Name {
        pub name_value: String = Tag::NAME_VALUE,
        pub name_type: NameType = Tag::NAME_TYPE,
    }
}

kmip_struct! {
    /// `Link` to another object.
    pub struct Link {
        pub link_type: LinkType = Tag::LINK_TYPE,
        pub linked_object_identifier: UniqueIdentifier = Tag::LINKED_OBJECT_IDENTIFIER,
    }
}

kmip_struct! {
    /// `Digest` of the object's key material.
    pub struct Digest {
        pub hashing_algorithm: HashingAlgorithm = Tag::HASHING_ALGORITHM,
        pub digest_value: Option<Vec<u8>> = Tag::DIGEST_VALUE,
        pub key_format_type: Option<KeyFormatType> = Tag::KEY_FORMAT_TYPE,
    }
}

kmip_struct! {
    /// `RevocationReason`: a code and an optional message.
    pub struct RevocationReason {
        pub revocation_reason_code: RevocationReasonCode = Tag::REVOCATION_REASON_CODE,
        pub revocation_message: Option<String> = Tag::REVOCATION_MESSAGE,
    }
}

kmip_struct! {
    /// `VendorAttribute`: a vendor-named attribute of any type. Cosmian's user tags are one
    /// (`cosmian` / `tag` / JSON array of strings).
    pub struct VendorAttribute {
        pub vendor_identification: String = Tag::VENDOR_IDENTIFICATION,
        pub attribute_name: String = Tag::ATTRIBUTE_NAME,
        pub attribute_value: Ttlv = Tag::ATTRIBUTE_VALUE,
    }
}

kmip_struct! {
    /// `CryptographicParameters`: how to use a key in a cryptographic operation.
    #[derive(Default)]
    pub struct CryptographicParameters {
        pub block_cipher_mode: Option<BlockCipherMode> = Tag::BLOCK_CIPHER_MODE,
        pub padding_method: Option<PaddingMethod> = Tag::PADDING_METHOD,
        pub hashing_algorithm: Option<HashingAlgorithm> = Tag::HASHING_ALGORITHM,
        pub key_role_type: Option<KeyRoleType> = Tag::KEY_ROLE_TYPE,
        pub digital_signature_algorithm: Option<DigitalSignatureAlgorithm> = Tag::DIGITAL_SIGNATURE_ALGORITHM,
        pub cryptographic_algorithm: Option<CryptographicAlgorithm> = Tag::CRYPTOGRAPHIC_ALGORITHM,
        pub random_iv: Option<bool> = Tag::RANDOM_IV,
        pub iv_length: Option<i32> = Tag::IV_LENGTH,
        pub tag_length: Option<i32> = Tag::TAG_LENGTH,
        pub fixed_field_length: Option<i32> = Tag::FIXED_FIELD_LENGTH,
        pub invocation_field_length: Option<i32> = Tag::INVOCATION_FIELD_LENGTH,
        pub counter_length: Option<i32> = Tag::COUNTER_LENGTH,
        pub initial_counter_value: Option<i32> = Tag::INITIAL_COUNTER_VALUE,
        pub salt_length: Option<i32> = Tag::SALT_LENGTH,
        pub mask_generator: Option<MaskGenerator> = Tag::MASK_GENERATOR,
        pub mask_generator_hashing_algorithm: Option<HashingAlgorithm> = Tag::MASK_GENERATOR_HASHING_ALGORITHM,
        pub p_source: Option<Vec<u8>> = Tag::P_SOURCE,
        pub trailer_field: Option<i32> = Tag::TRAILER_FIELD,
    }
}

kmip_struct! {
    /// `UsageLimits`: how much an object may still protect.
    pub struct UsageLimits {
        pub usage_limits_total: i64 = Tag::USAGE_LIMITS_TOTAL,
        pub usage_limits_count: Option<i64> = Tag::USAGE_LIMITS_COUNT,
        pub usage_limits_unit: UsageLimitsUnit = Tag::USAGE_LIMITS_UNIT,
    }
}

kmip_struct! {
    /// `CryptographicDomainParameters`.
    pub struct CryptographicDomainParameters {
        pub qlength: Option<i32> = Tag::QLENGTH,
        pub recommended_curve: Option<RecommendedCurve> = Tag::RECOMMENDED_CURVE,
    }
}

/// Field tag for "any one attribute" in payloads.
pub const ANY_ATTRIBUTE: Tag = Tag(1);

macro_rules! attributes {
    ($( $variant:ident($ty:ty) = $tag:ident ),* $(,)?) => {
        /// One KMIP 2.1 attribute. Attributes this model does not type are kept whole in `Other`.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Attribute {
            $( $variant($ty), )*
            Other(Ttlv),
        }

        impl Attribute {
            /// The tag this attribute is written with.
            pub fn tag(&self) -> Tag {
                match self {
                    $( Attribute::$variant(_) => Tag::$tag, )*
                    Attribute::Other(t) => t.tag,
                }
            }

            /// Whether this tag names a typed attribute.
            pub fn is_typed(tag: Tag) -> bool {
                matches!(tag, $( Tag::$tag )|*)
            }
        }

        impl Item for Attribute {
            fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
                Ok(match item.tag {
                    $( Tag::$tag => Attribute::$variant(<$ty as Item>::from_ttlv(item)?), )*
                    _ => Attribute::Other(item.clone()),
                })
            }
            fn to_ttlv(&self, _: Tag) -> Ttlv {
                match self {
                    $( Attribute::$variant(v) => v.to_ttlv(Tag::$tag), )*
                    Attribute::Other(t) => t.clone(),
                }
            }
            fn accepts(field: Tag, found: Tag) -> bool {
                if field == ANY_ATTRIBUTE { found != Tag::UNIQUE_IDENTIFIER } else { field == found }
            }
        }
    };
}

attributes! {
    UniqueIdentifier(UniqueIdentifier) = UNIQUE_IDENTIFIER,
    Name(Name) = NAME,
    ObjectType(ObjectType) = OBJECT_TYPE,
    CryptographicAlgorithm(CryptographicAlgorithm) = CRYPTOGRAPHIC_ALGORITHM,
    CryptographicLength(i32) = CRYPTOGRAPHIC_LENGTH,
    CryptographicParameters(CryptographicParameters) = CRYPTOGRAPHIC_PARAMETERS,
    CryptographicDomainParameters(CryptographicDomainParameters) = CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
    CertificateType(CertificateType) = CERTIFICATE_TYPE,
    CertificateLength(i32) = CERTIFICATE_LENGTH,
    DigitalSignatureAlgorithm(DigitalSignatureAlgorithm) = DIGITAL_SIGNATURE_ALGORITHM,
    Digest(Digest) = DIGEST,
    OperationPolicyName(String) = OPERATION_POLICY_NAME,
    CryptographicUsageMask(i32) = CRYPTOGRAPHIC_USAGE_MASK,
    LeaseTime(Interval) = LEASE_TIME,
    UsageLimits(UsageLimits) = USAGE_LIMITS,
    State(State) = STATE,
    InitialDate(DateTime) = INITIAL_DATE,
    ActivationDate(DateTime) = ACTIVATION_DATE,
    ProcessStartDate(DateTime) = PROCESS_START_DATE,
    ProtectStopDate(DateTime) = PROTECT_STOP_DATE,
    DeactivationDate(DateTime) = DEACTIVATION_DATE,
    DestroyDate(DateTime) = DESTROY_DATE,
    CompromiseOccurrenceDate(DateTime) = COMPROMISE_OCCURRENCE_DATE,
    CompromiseDate(DateTime) = COMPROMISE_DATE,
    RevocationReason(RevocationReason) = REVOCATION_REASON,
    ArchiveDate(DateTime) = ARCHIVE_DATE,
    ObjectGroup(String) = OBJECT_GROUP,
    Fresh(bool) = FRESH,
    Link(Link) = LINK,
    ContactInformation(String) = CONTACT_INFORMATION,
    LastChangeDate(DateTime) = LAST_CHANGE_DATE,
    OriginalCreationDate(DateTime) = ORIGINAL_CREATION_DATE,
    KeyValuePresent(bool) = KEY_VALUE_PRESENT,
    Pkcs12FriendlyName(String) = PKCS_12_FRIENDLY_NAME,
    Description(String) = DESCRIPTION,
    Comment(String) = COMMENT,
    Sensitive(bool) = SENSITIVE,
    AlwaysSensitive(bool) = ALWAYS_SENSITIVE,
    Extractable(bool) = EXTRACTABLE,
    NeverExtractable(bool) = NEVER_EXTRACTABLE,
    ShortUniqueIdentifier(Vec<u8>) = SHORT_UNIQUE_IDENTIFIER,
    VendorAttribute(VendorAttribute) = VENDOR_ATTRIBUTE,
    ObjectGroupMember(ObjectGroupMember) = OBJECT_GROUP_MEMBER,
    KeyFormatType(KeyFormatType) = KEY_FORMAT_TYPE,
    ProtectionStorageMask(i32) = PROTECTION_STORAGE_MASK,
}

/// The `Attributes` structure (and `CommonAttributes`, `PrivateKeyAttributes`, ...): attributes
/// in the order they were given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(pub Vec<Attribute>);

impl Item for Attributes {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        item.children()?
            .iter()
            .map(Attribute::from_ttlv)
            .collect::<Result<_, _>>()
            .map(Attributes)
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::structure(tag, self.0.iter().map(|a| a.to_ttlv(a.tag())).collect())
    }
}

macro_rules! single_getters {
    ($( $fn:ident -> $variant:ident : $ty:ty ),* $(,)?) => {
        impl Attributes {
            $(
                /// The first value of this attribute, if present.
                pub fn $fn(&self) -> Option<$ty> {
                    self.0.iter().find_map(|a| match a {
                        Attribute::$variant(v) => Some(v.clone()),
                        _ => None,
                    })
                }
            )*
        }
    };
}

single_getters! {
    unique_identifier -> UniqueIdentifier: UniqueIdentifier,
    object_type -> ObjectType: ObjectType,
    cryptographic_algorithm -> CryptographicAlgorithm: CryptographicAlgorithm,
    cryptographic_length -> CryptographicLength: i32,
    cryptographic_parameters -> CryptographicParameters: CryptographicParameters,
    cryptographic_domain_parameters -> CryptographicDomainParameters: CryptographicDomainParameters,
    cryptographic_usage_mask -> CryptographicUsageMask: i32,
    state -> State: State,
    initial_date -> InitialDate: DateTime,
    activation_date -> ActivationDate: DateTime,
    deactivation_date -> DeactivationDate: DateTime,
    destroy_date -> DestroyDate: DateTime,
    compromise_date -> CompromiseDate: DateTime,
    process_start_date -> ProcessStartDate: DateTime,
    protect_stop_date -> ProtectStopDate: DateTime,
    revocation_reason -> RevocationReason: RevocationReason,
    key_format_type -> KeyFormatType: KeyFormatType,
    usage_limits -> UsageLimits: UsageLimits,
    extractable -> Extractable: bool,
    sensitive -> Sensitive: bool,
}

/// Vendor identification of Cosmian's vendor attributes.
pub const COSMIAN_VENDOR: &str = "cosmian";
/// Attribute name of Cosmian's user tags.
pub const TAG_ATTRIBUTE_NAME: &str = "tag";

impl Attributes {
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    /// These attributes with `attribute`, replacing any attribute with the same tag.
    pub fn with(mut self, attribute: Attribute) -> Attributes {
        self.set(attribute);
        self
    }

    /// These attributes with these user tags, replacing any given before.
    pub fn with_user_tags<S: AsRef<str>>(mut self, tags: &[S]) -> Attributes {
        let tags: Vec<String> = tags.iter().map(|t| t.as_ref().to_owned()).collect();
        self.set_user_tags(&tags);
        self
    }

    /// Every `Name`.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.0.iter().filter_map(|a| match a {
            Attribute::Name(n) => Some(n),
            _ => None,
        })
    }

    /// Every `ObjectGroup`.
    pub fn object_groups(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|a| match a {
            Attribute::ObjectGroup(g) => Some(g.as_str()),
            _ => None,
        })
    }

    /// Every `Link`.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.0.iter().filter_map(|a| match a {
            Attribute::Link(l) => Some(l),
            _ => None,
        })
    }

    /// The value of the first date attribute with this tag.
    pub fn date(&self, tag: Tag) -> Option<DateTime> {
        self.0
            .iter()
            .filter(|a| a.tag() == tag)
            .find_map(|a| a.to_ttlv(tag).as_datetime().ok())
    }

    /// Whether an attribute with this tag is present.
    pub fn has(&self, tag: Tag) -> bool {
        self.0.iter().any(|a| a.tag() == tag)
    }

    /// Replaces every attribute with the same tag by `attr` (single-instance attributes).
    pub fn set(&mut self, attr: Attribute) {
        let tag = attr.tag();
        match self.0.iter().position(|a| a.tag() == tag) {
            Some(i) => {
                self.0[i] = attr;
                // Most attributes have one instance: nothing more to remove.
                if !self.0[i + 1..].iter().any(|a| a.tag() == tag) {
                    return;
                }
                let mut seen = false;
                self.0.retain(|a| {
                    if a.tag() != tag {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.0.push(attr),
        }
    }

    /// Removes every attribute with this tag.
    pub fn remove(&mut self, tag: Tag) {
        self.0.retain(|a| a.tag() != tag);
    }

    /// Cosmian user tags: the union of every `cosmian`/`tag` vendor attribute's JSON array.
    pub fn user_tags(&self) -> Result<Vec<String>, Error> {
        let mut tags = Vec::new();
        for a in &self.0 {
            if let Attribute::VendorAttribute(v) = a
                && v.vendor_identification == COSMIAN_VENDOR
                && v.attribute_name == TAG_ATTRIBUTE_NAME
            {
                let text = match &v.attribute_value.value {
                    crate::Value::TextString(s) => s.clone(),
                    crate::Value::ByteString(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => {
                        return Err(Error::BadValue {
                            tag: Tag::ATTRIBUTE_VALUE,
                            reason: "user tags must be a JSON array of strings".into(),
                        });
                    }
                };
                let list: Vec<String> =
                    serde_json::from_str(&text).map_err(|_| Error::BadValue {
                        tag: Tag::ATTRIBUTE_VALUE,
                        reason: format!("user tags must be a JSON array of strings, got `{text}`"),
                    })?;
                tags.extend(list);
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Replaces the user tags.
    pub fn set_user_tags(&mut self, tags: &[String]) {
        self.0.retain(|a| {
            !matches!(a, Attribute::VendorAttribute(v)
                if v.vendor_identification == COSMIAN_VENDOR && v.attribute_name == TAG_ATTRIBUTE_NAME)
        });
        if !tags.is_empty() {
            // Serializing a list of strings cannot fail.
            let json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
            self.0.push(Attribute::VendorAttribute(VendorAttribute {
                vendor_identification: COSMIAN_VENDOR.into(),
                attribute_name: TAG_ATTRIBUTE_NAME.into(),
                attribute_value: Ttlv::new(Tag::ATTRIBUTE_VALUE, crate::Value::TextString(json)),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `set` leaves one attribute of its tag, in the place of the first, whether the tag was
    /// absent, once or several times present.
    #[test]
    fn set_leaves_one_attribute_of_its_tag() {
        let mut a = Attributes(vec![Attribute::CryptographicLength(128)]);
        a.set(Attribute::CryptographicLength(256));
        assert_eq!(a.0, vec![Attribute::CryptographicLength(256)]);

        let mut a = Attributes(vec![
            Attribute::CryptographicLength(128),
            Attribute::Sensitive(true),
            Attribute::CryptographicLength(192),
        ]);
        a.set(Attribute::CryptographicLength(256));
        assert_eq!(
            a.0,
            vec![
                Attribute::CryptographicLength(256),
                Attribute::Sensitive(true)
            ]
        );

        a.set(Attribute::Extractable(false));
        assert_eq!(a.0.len(), 3);
        assert_eq!(a.extractable(), Some(false));
    }
}
