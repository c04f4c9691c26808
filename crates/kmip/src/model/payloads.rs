//! Request and response payloads of the KMIP 2.1 operations, one structure each.

use super::{
    ANY_ATTRIBUTE, ANY_OBJECT, Attribute, Attributes, CryptographicParameters, Interval, Item,
    Object, RevocationReason, UniqueIdentifier, kmip_struct,
};
use crate::error::Error;
use crate::generated::*;
use crate::tag::Tag;
use crate::ttlv::{DateTime, Ttlv};

/// `NewAttribute` / `CurrentAttribute`: a structure holding one attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeHolder(pub Attribute);

impl Item for AttributeHolder {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        match item.children()? {
            [one] => Attribute::from_ttlv(one).map(AttributeHolder),
            _ => Err(Error::BadValue {
                tag: item.tag,
                reason: "must hold exactly one attribute".into(),
            }),
        }
    }
    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        Ttlv::structure(tag, vec![self.0.to_ttlv(self.0.tag())])
    }
}

kmip_struct! {
    pub struct ProtocolVersion {
        pub protocol_version_major: i32 = Tag::PROTOCOL_VERSION_MAJOR,
        pub protocol_version_minor: i32 = Tag::PROTOCOL_VERSION_MINOR,
    }
}

kmip_struct! {
    pub struct Create {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub attributes: Attributes = Tag::ATTRIBUTES,
        pub protection_storage_masks: Option<Ttlv> = Tag::PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    pub struct CreateResponse {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
    }
}

kmip_struct! {
    pub struct CreateKeyPair {
        pub common_attributes: Option<Attributes> = Tag::COMMON_ATTRIBUTES,
        pub private_key_attributes: Option<Attributes> = Tag::PRIVATE_KEY_ATTRIBUTES,
        pub public_key_attributes: Option<Attributes> = Tag::PUBLIC_KEY_ATTRIBUTES,
        pub common_protection_storage_masks: Option<Ttlv> = Tag::COMMON_PROTECTION_STORAGE_MASKS,
        pub private_protection_storage_masks: Option<Ttlv> = Tag::PRIVATE_PROTECTION_STORAGE_MASKS,
        pub public_protection_storage_masks: Option<Ttlv> = Tag::PUBLIC_PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    pub struct CreateKeyPairResponse {
        pub private_key_unique_identifier: UniqueIdentifier = Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
        pub public_key_unique_identifier: UniqueIdentifier = Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
    }
}

kmip_struct! {
    pub struct Register {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub attributes: Attributes = Tag::ATTRIBUTES,
        pub object: Object = ANY_OBJECT,
        pub protection_storage_masks: Option<Ttlv> = Tag::PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    /// Response of the operations that answer only an identifier.
    pub struct UidResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
    }
}

kmip_struct! {
    /// Request of the operations that take only an optional identifier (Activate, Destroy...).
    pub struct UidRequest {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
    }
}

kmip_struct! {
    pub struct ReKey {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub offset: Option<Interval> = Tag::OFFSET,
        pub attributes: Option<Attributes> = Tag::ATTRIBUTES,
        pub protection_storage_masks: Option<Ttlv> = Tag::PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    pub struct ReKeyKeyPair {
        pub private_key_unique_identifier: Option<UniqueIdentifier> = Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
        pub offset: Option<Interval> = Tag::OFFSET,
        pub common_attributes: Option<Attributes> = Tag::COMMON_ATTRIBUTES,
        pub private_key_attributes: Option<Attributes> = Tag::PRIVATE_KEY_ATTRIBUTES,
        pub public_key_attributes: Option<Attributes> = Tag::PUBLIC_KEY_ATTRIBUTES,
        pub common_protection_storage_masks: Option<Ttlv> = Tag::COMMON_PROTECTION_STORAGE_MASKS,
        pub private_protection_storage_masks: Option<Ttlv> = Tag::PRIVATE_PROTECTION_STORAGE_MASKS,
        pub public_protection_storage_masks: Option<Ttlv> = Tag::PUBLIC_PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    pub struct DeriveKey {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub unique_identifier: Vec<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub derivation_method: DerivationMethod = Tag::DERIVATION_METHOD,
        pub derivation_parameters: Ttlv = Tag::DERIVATION_PARAMETERS,
        pub attributes: Attributes = Tag::ATTRIBUTES,
    }
}

kmip_struct! {
    pub struct Certify {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub attributes: Option<Attributes> = Tag::ATTRIBUTES,
        pub certificate_request_unique_identifier: Option<UniqueIdentifier> = Tag::CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER,
        pub certificate_request_type: Option<CertificateRequestType> = Tag::CERTIFICATE_REQUEST_TYPE,
        pub certificate_request_value: Option<Vec<u8>> = Tag::CERTIFICATE_REQUEST_VALUE,
        pub protection_storage_masks: Option<Ttlv> = Tag::PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    /// ReCertify (KMIP 1.x; kept for its clients): a new certificate replacing one held here.
    pub struct ReCertify {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub certificate_request_type: Option<CertificateRequestType> = Tag::CERTIFICATE_REQUEST_TYPE,
        pub certificate_request_value: Option<Vec<u8>> = Tag::CERTIFICATE_REQUEST_VALUE,
        pub offset: Option<Interval> = Tag::OFFSET,
        pub attributes: Option<Attributes> = Tag::ATTRIBUTES,
    }
}

kmip_struct! {
    pub struct Locate {
        pub maximum_items: Option<i32> = Tag::MAXIMUM_ITEMS,
        pub offset_items: Option<i32> = Tag::OFFSET_ITEMS,
        pub storage_status_mask: Option<i32> = Tag::STORAGE_STATUS_MASK,
        pub object_group_member: Option<ObjectGroupMember> = Tag::OBJECT_GROUP_MEMBER,
        pub attributes: Option<Attributes> = Tag::ATTRIBUTES,
    }
}

kmip_struct! {
    pub struct LocateResponse {
        pub located_items: Option<i32> = Tag::LOCATED_ITEMS,
        pub unique_identifier: Vec<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
    }
}

kmip_struct! {
    pub struct Check {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub usage_limits_count: Option<i64> = Tag::USAGE_LIMITS_COUNT,
        pub cryptographic_usage_mask: Option<i32> = Tag::CRYPTOGRAPHIC_USAGE_MASK,
        pub lease_time: Option<Interval> = Tag::LEASE_TIME,
    }
}

kmip_struct! {
    pub struct CheckResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub usage_limits_count: Option<i64> = Tag::USAGE_LIMITS_COUNT,
        pub cryptographic_usage_mask: Option<i32> = Tag::CRYPTOGRAPHIC_USAGE_MASK,
        pub lease_time: Option<Interval> = Tag::LEASE_TIME,
    }
}

kmip_struct! {
    pub struct Get {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub key_format_type: Option<KeyFormatType> = Tag::KEY_FORMAT_TYPE,
        pub key_wrap_type: Option<KeyWrapType> = Tag::KEY_WRAP_TYPE,
        pub key_compression_type: Option<KeyCompressionType> = Tag::KEY_COMPRESSION_TYPE,
        pub key_wrapping_specification: Option<Ttlv> = Tag::KEY_WRAPPING_SPECIFICATION,
    }
}

kmip_struct! {
    pub struct GetResponse {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub object: Object = ANY_OBJECT,
    }
}

kmip_struct! {
    pub struct GetAttributes {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        /// An Enumeration naming a tag, or a `VendorAttributeReference` structure.
        pub attribute_reference: Vec<Ttlv> = Tag::ATTRIBUTE_REFERENCE,
    }
}

kmip_struct! {
    pub struct GetAttributesResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub attributes: Attributes = Tag::ATTRIBUTES,
    }
}

kmip_struct! {
    /// Response of AddAttribute, SetAttribute, ModifyAttribute and DeleteAttribute. KMIP 2.x
    /// answers the identifier only; a 1.x peer also gets the attribute.
    pub struct AttributeResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub attribute: Option<Attribute> = ANY_ATTRIBUTE,
    }
}

kmip_struct! {
    pub struct GetAttributeListResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub attribute_reference: Vec<Ttlv> = Tag::ATTRIBUTE_REFERENCE,
    }
}

kmip_struct! {
    /// AddAttribute and SetAttribute.
    pub struct NewAttributeRequest {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub new_attribute: AttributeHolder = Tag::NEW_ATTRIBUTE,
    }
}

kmip_struct! {
    pub struct ModifyAttribute {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub current_attribute: Option<AttributeHolder> = Tag::CURRENT_ATTRIBUTE,
        pub new_attribute: AttributeHolder = Tag::NEW_ATTRIBUTE,
    }
}

kmip_struct! {
    pub struct DeleteAttribute {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub current_attribute: Option<AttributeHolder> = Tag::CURRENT_ATTRIBUTE,
        pub attribute_reference: Option<Ttlv> = Tag::ATTRIBUTE_REFERENCE,
    }
}

kmip_struct! {
    pub struct Revoke {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub revocation_reason: RevocationReason = Tag::REVOCATION_REASON,
        pub compromise_occurrence_date: Option<DateTime> = Tag::COMPROMISE_OCCURRENCE_DATE,
        /// Cosmian extension: revoke the objects linked to this one too (a key pair's other
        /// half).
        pub cascade: Option<bool> = Tag::CASCADE,
    }
}

kmip_struct! {
    /// Destroy, with Cosmian's extensions.
    pub struct Destroy {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        /// Cosmian extension: delete the object's record too, not only its material.
        pub remove: Option<bool> = Tag::REMOVE,
        /// Cosmian extension: destroy the objects linked to this one too.
        pub cascade: Option<bool> = Tag::CASCADE,
        /// Cosmian extension: fail unless the object is of this type.
        pub expected_object_type: Option<ObjectType> = Tag::EXPECTED_OBJECT_TYPE,
    }
}

impl Destroy {
    /// A plain Destroy of `unique_identifier` (its record kept, no cascade).
    pub fn new(unique_identifier: impl Into<UniqueIdentifier>) -> Destroy {
        Destroy {
            unique_identifier: Some(unique_identifier.into()),
            remove: None,
            cascade: None,
            expected_object_type: None,
        }
    }
}

kmip_struct! {
    pub struct Query {
        pub query_function: Vec<QueryFunction> = Tag::QUERY_FUNCTION,
    }
}

kmip_struct! {
    pub struct QueryResponse {
        pub operation: Vec<Operation> = Tag::OPERATION,
        pub object_type: Vec<ObjectType> = Tag::OBJECT_TYPE,
        pub vendor_identification: Option<String> = Tag::VENDOR_IDENTIFICATION,
        pub server_information: Option<Ttlv> = Tag::SERVER_INFORMATION,
        pub application_namespace: Vec<String> = Tag::APPLICATION_NAMESPACE,
        pub extension_information: Vec<Ttlv> = Tag::EXTENSION_INFORMATION,
        pub attestation_type: Vec<AttestationType> = Tag::ATTESTATION_TYPE,
        pub rng_parameters: Vec<Ttlv> = Tag::RNG_PARAMETERS,
        pub profile_information: Vec<Ttlv> = Tag::PROFILE_INFORMATION,
        pub validation_information: Vec<Ttlv> = Tag::VALIDATION_INFORMATION,
        pub capability_information: Vec<Ttlv> = Tag::CAPABILITY_INFORMATION,
        pub client_registration_method: Vec<ClientRegistrationMethod> = Tag::CLIENT_REGISTRATION_METHOD,
        pub defaults_information: Option<Ttlv> = Tag::DEFAULTS_INFORMATION,
        pub protection_storage_masks: Vec<Ttlv> = Tag::PROTECTION_STORAGE_MASKS,
    }
}

kmip_struct! {
    pub struct DiscoverVersions {
        pub protocol_version: Vec<ProtocolVersion> = Tag::PROTOCOL_VERSION,
    }
}

kmip_struct! {
    pub struct Encrypt {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub iv_counter_nonce: Option<Vec<u8>> = Tag::IV_COUNTER_NONCE,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
        pub authenticated_encryption_additional_data: Option<Vec<u8>> = Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
    }
}

kmip_struct! {
    pub struct EncryptResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub iv_counter_nonce: Option<Vec<u8>> = Tag::IV_COUNTER_NONCE,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub authenticated_encryption_tag: Option<Vec<u8>> = Tag::AUTHENTICATED_ENCRYPTION_TAG,
    }
}

kmip_struct! {
    pub struct Decrypt {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub iv_counter_nonce: Option<Vec<u8>> = Tag::IV_COUNTER_NONCE,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
        pub authenticated_encryption_additional_data: Option<Vec<u8>> = Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
        pub authenticated_encryption_tag: Option<Vec<u8>> = Tag::AUTHENTICATED_ENCRYPTION_TAG,
    }
}

kmip_struct! {
    pub struct DecryptResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct Sign {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub digested_data: Option<Vec<u8>> = Tag::DIGESTED_DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
    }
}

kmip_struct! {
    pub struct SignResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub signature_data: Option<Vec<u8>> = Tag::SIGNATURE_DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct SignatureVerify {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub digested_data: Option<Vec<u8>> = Tag::DIGESTED_DATA,
        pub signature_data: Option<Vec<u8>> = Tag::SIGNATURE_DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
    }
}

kmip_struct! {
    pub struct SignatureVerifyResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub validity_indicator: ValidityIndicator = Tag::VALIDITY_INDICATOR,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct Mac {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
    }
}

kmip_struct! {
    pub struct MacResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub mac_data: Option<Vec<u8>> = Tag::MAC_DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct MacVerify {
        pub unique_identifier: Option<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub cryptographic_parameters: Option<CryptographicParameters> = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub mac_data: Option<Vec<u8>> = Tag::MAC_DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
    }
}

kmip_struct! {
    pub struct MacVerifyResponse {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub validity_indicator: ValidityIndicator = Tag::VALIDITY_INDICATOR,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct RngRetrieve {
        pub data_length: i32 = Tag::DATA_LENGTH,
    }
}

kmip_struct! {
    pub struct DataResponse {
        pub data: Vec<u8> = Tag::DATA,
    }
}

kmip_struct! {
    pub struct RngSeed {
        pub data: Vec<u8> = Tag::DATA,
    }
}

kmip_struct! {
    pub struct RngSeedResponse {
        pub data_length: i32 = Tag::DATA_LENGTH,
    }
}

kmip_struct! {
    pub struct Hash {
        pub cryptographic_parameters: CryptographicParameters = Tag::CRYPTOGRAPHIC_PARAMETERS,
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
        pub init_indicator: Option<bool> = Tag::INIT_INDICATOR,
        pub final_indicator: Option<bool> = Tag::FINAL_INDICATOR,
    }
}

kmip_struct! {
    pub struct HashResponse {
        pub data: Option<Vec<u8>> = Tag::DATA,
        pub correlation_value: Option<Vec<u8>> = Tag::CORRELATION_VALUE,
    }
}

kmip_struct! {
    pub struct Import {
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub replace_existing: Option<bool> = Tag::REPLACE_EXISTING,
        pub key_wrap_type: Option<KeyWrapType> = Tag::KEY_WRAP_TYPE,
        pub attributes: Attributes = Tag::ATTRIBUTES,
        pub object: Object = ANY_OBJECT,
    }
}

kmip_struct! {
    pub struct ExportResponse {
        pub object_type: ObjectType = Tag::OBJECT_TYPE,
        pub unique_identifier: UniqueIdentifier = Tag::UNIQUE_IDENTIFIER,
        pub attributes: Attributes = Tag::ATTRIBUTES,
        pub object: Object = ANY_OBJECT,
    }
}

kmip_struct! {
    pub struct Validate {
        pub certificate: Vec<Ttlv> = Tag::CERTIFICATE,
        pub unique_identifier: Vec<UniqueIdentifier> = Tag::UNIQUE_IDENTIFIER,
        pub validity_time: Option<DateTime> = Tag::VALIDITY_DATE,
    }
}

kmip_struct! {
    pub struct ValidateResponse {
        pub validity_indicator: ValidityIndicator = Tag::VALIDITY_INDICATOR,
        /// Why the chain is not valid (an extension of this server's).
        pub validity_reason: Option<String> = Tag::VALIDITY_REASON,
    }
}

impl Encrypt {
    /// An Encrypt of `data` with the key's default parameters and a server-chosen IV.
    pub fn new(unique_identifier: Option<UniqueIdentifier>, data: Vec<u8>) -> Encrypt {
        Encrypt {
            unique_identifier,
            cryptographic_parameters: None,
            data: Some(data),
            iv_counter_nonce: None,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: None,
        }
    }
}

impl Decrypt {
    /// A Decrypt of `data` with the key's default parameters.
    pub fn new(unique_identifier: Option<UniqueIdentifier>, data: Vec<u8>) -> Decrypt {
        Decrypt {
            unique_identifier,
            cryptographic_parameters: None,
            data: Some(data),
            iv_counter_nonce: None,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: None,
            authenticated_encryption_tag: None,
        }
    }

    /// The Decrypt of what an Encrypt answered: its ciphertext, IV and tag.
    pub fn of(unique_identifier: Option<UniqueIdentifier>, encrypted: &EncryptResponse) -> Decrypt {
        Decrypt {
            unique_identifier,
            cryptographic_parameters: None,
            data: encrypted.data.clone(),
            iv_counter_nonce: encrypted.iv_counter_nonce.clone(),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: None,
            authenticated_encryption_tag: encrypted.authenticated_encryption_tag.clone(),
        }
    }
}

impl Create {
    /// A Create of a symmetric key of `length_bits` bits: algorithm and length, no other
    /// attribute. Add more with [`Create::with`], [`Create::with_unique_identifier`],
    /// [`Create::with_usage_mask`] or [`Create::with_user_tags`].
    pub fn symmetric_key(algorithm: CryptographicAlgorithm, length_bits: i32) -> Create {
        Create {
            object_type: ObjectType::SymmetricKey,
            attributes: Attributes(vec![
                Attribute::CryptographicAlgorithm(algorithm),
                Attribute::CryptographicLength(length_bits),
            ]),
            protection_storage_masks: None,
        }
    }

    /// This Create with `attribute`, replacing any attribute with the same tag.
    pub fn with(mut self, attribute: Attribute) -> Create {
        self.attributes.set(attribute);
        self
    }

    /// This Create asking for the identifier `unique_identifier`.
    pub fn with_unique_identifier(self, unique_identifier: impl Into<UniqueIdentifier>) -> Create {
        self.with(Attribute::UniqueIdentifier(unique_identifier.into()))
    }

    /// This Create with the `CryptographicUsageMask` `mask`.
    pub fn with_usage_mask(self, mask: i32) -> Create {
        self.with(Attribute::CryptographicUsageMask(mask))
    }

    /// This Create with these user tags, replacing any given before.
    pub fn with_user_tags<S: AsRef<str>>(mut self, tags: &[S]) -> Create {
        self.attributes = self.attributes.with_user_tags(tags);
        self
    }
}

impl Register {
    /// A Register of `object` with `attributes`; the object type is the object's.
    pub fn new(attributes: Attributes, object: Object) -> Register {
        Register {
            object_type: object.object_type(),
            attributes,
            object,
            protection_storage_masks: None,
        }
    }
}

impl Import {
    /// An Import of `object` under `unique_identifier`, with `attributes`, not replacing an
    /// existing object; the object type is the object's.
    pub fn new(
        unique_identifier: impl Into<UniqueIdentifier>,
        attributes: Attributes,
        object: Object,
    ) -> Import {
        Import {
            unique_identifier: unique_identifier.into(),
            object_type: object.object_type(),
            replace_existing: None,
            key_wrap_type: None,
            attributes,
            object,
        }
    }
}

impl UidRequest {
    /// A request naming the object `unique_identifier` (Activate, Destroy, Archive...).
    pub fn new(unique_identifier: impl Into<UniqueIdentifier>) -> UidRequest {
        UidRequest {
            unique_identifier: Some(unique_identifier.into()),
        }
    }
}

impl Get {
    /// A Get (or Export) of `unique_identifier` in its stored format, unwrapped.
    pub fn new(unique_identifier: impl Into<UniqueIdentifier>) -> Get {
        Get {
            unique_identifier: Some(unique_identifier.into()),
            key_format_type: None,
            key_wrap_type: None,
            key_compression_type: None,
            key_wrapping_specification: None,
        }
    }
}

impl GetAttributes {
    /// A GetAttributes of every attribute of `unique_identifier`.
    pub fn all(unique_identifier: impl Into<UniqueIdentifier>) -> GetAttributes {
        GetAttributes {
            unique_identifier: Some(unique_identifier.into()),
            attribute_reference: vec![],
        }
    }
}

impl NewAttributeRequest {
    /// An AddAttribute or SetAttribute of `attribute` on `unique_identifier`.
    pub fn new(
        unique_identifier: impl Into<UniqueIdentifier>,
        attribute: Attribute,
    ) -> NewAttributeRequest {
        NewAttributeRequest {
            unique_identifier: Some(unique_identifier.into()),
            new_attribute: AttributeHolder(attribute),
        }
    }
}

impl Locate {
    /// A Locate of every object matching `attributes`, unpaged.
    pub fn matching(attributes: Attributes) -> Locate {
        Locate {
            maximum_items: None,
            offset_items: None,
            storage_status_mask: None,
            object_group_member: None,
            attributes: Some(attributes),
        }
    }
}

impl Revoke {
    /// A Revoke of `unique_identifier` for `code`, without message or compromise date.
    pub fn new(
        unique_identifier: impl Into<UniqueIdentifier>,
        code: RevocationReasonCode,
    ) -> Revoke {
        Revoke {
            unique_identifier: Some(unique_identifier.into()),
            revocation_reason: RevocationReason {
                revocation_reason_code: code,
                revocation_message: None,
            },
            compromise_occurrence_date: None,
            cascade: None,
        }
    }
}

impl Hash {
    /// A Hash of `data` with `algorithm`, in one call.
    pub fn new(algorithm: HashingAlgorithm, data: Vec<u8>) -> Hash {
        Hash {
            cryptographic_parameters: CryptographicParameters {
                hashing_algorithm: Some(algorithm),
                ..Default::default()
            },
            data: Some(data),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        }
    }
}

impl Mac {
    /// A MAC of `data` with the key `unique_identifier` and its default parameters, in one call.
    pub fn new(unique_identifier: impl Into<UniqueIdentifier>, data: Vec<u8>) -> Mac {
        Mac {
            unique_identifier: Some(unique_identifier.into()),
            cryptographic_parameters: None,
            data: Some(data),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        }
    }
}

impl MacVerify {
    /// A MACVerify of `mac` over `data` with the key `unique_identifier`, in one call.
    pub fn new(
        unique_identifier: impl Into<UniqueIdentifier>,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> MacVerify {
        MacVerify {
            unique_identifier: Some(unique_identifier.into()),
            cryptographic_parameters: None,
            data: Some(data),
            mac_data: Some(mac),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        }
    }
}
