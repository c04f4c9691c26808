//! Enumerations and bit masks: which tag holds which enumeration, and their names in each
//! spelling (the specification's, used in XML; Cosmian's, used in JSON).

pub use crate::generated::{EnumEntry, EnumKind};
use crate::tag::Tag;

/// A typed KMIP enumeration.
pub trait KmipEnum: Sized + Copy {
    const KIND: EnumKind;
    fn to_u32(self) -> u32;
    fn from_u32(value: u32) -> Option<Self>;

    /// The specification's name of this value.
    fn spec_name(self) -> &'static str {
        lookup_value(Self::KIND, self.to_u32())
            .map(|e| e.spec)
            .unwrap_or("?")
    }
}

/// What an Enumeration item under a tag means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumDomain {
    /// One of the KMIP enumerations.
    Kind(EnumKind),
    /// A tag number (KMIP 2.x `AttributeReference`, `ExtensionTag`...).
    Tag,
    /// A PKCS#11 function, numbered from 1 in the order of PKCS#11's `CK_FUNCTION_LIST`.
    Pkcs11Function,
    /// A PKCS#11 return code (`CKR_...` without the prefix).
    Pkcs11ReturnCode,
}

const PKCS11_FUNCTIONS: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetFunctionList",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestInit",
    "C_Digest",
    "C_DigestUpdate",
    "C_DigestKey",
    "C_DigestFinal",
    "C_SignInit",
    "C_Sign",
    "C_SignUpdate",
    "C_SignFinal",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit",
    "C_Verify",
    "C_VerifyUpdate",
    "C_VerifyFinal",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
    "C_GetFunctionStatus",
    "C_CancelFunction",
    "C_WaitForSlotEvent",
];

const PKCS11_RETURN_CODES: &[(&str, u32)] = &[
    ("OK", 0x00),
    ("CANCEL", 0x01),
    ("HOST_MEMORY", 0x02),
    ("SLOT_ID_INVALID", 0x03),
    ("GENERAL_ERROR", 0x05),
    ("FUNCTION_FAILED", 0x06),
    ("ARGUMENTS_BAD", 0x07),
    ("CRYPTOKI_NOT_INITIALIZED", 0x190),
    ("CRYPTOKI_ALREADY_INITIALIZED", 0x191),
];

/// The meaning of an Enumeration item with this tag, when it has a name table.
pub fn enum_domain(tag: Tag) -> Option<EnumDomain> {
    let kind = match tag {
        Tag::ATTRIBUTE_REFERENCE => return Some(EnumDomain::Tag),
        Tag::PKCS_11_FUNCTION => return Some(EnumDomain::Pkcs11Function),
        Tag::PKCS_11_RETURN_CODE => return Some(EnumDomain::Pkcs11ReturnCode),
        Tag::MASK_GENERATOR_HASHING_ALGORITHM => EnumKind::HashingAlgorithm,
        Tag::EXTENSION_TYPE => EnumKind::ItemTypeEnumeration,
        Tag::UNIQUE_IDENTIFIER => EnumKind::UniqueIdentifierEnumeration,
        Tag::EXPECTED_OBJECT_TYPE => EnumKind::ObjectType,
        _ => return EnumKind::from_tag_name(tag.name()?).map(EnumDomain::Kind),
    };
    Some(EnumDomain::Kind(kind))
}

pub fn lookup_value(kind: EnumKind, value: u32) -> Option<&'static EnumEntry> {
    // Some values have alias names; the first entry of a value is its canonical name.
    let entries = kind.entries();
    let i = entries.partition_point(|e| e.value < value);
    entries.get(i).filter(|e| e.value == value)
}

/// Finds a value by either spelling.
pub fn lookup_name(kind: EnumKind, name: &str) -> Option<u32> {
    kind.entries()
        .iter()
        .find(|e| e.spec == name || e.cosmian == name)
        .map(|e| e.value)
}

/// Name of an Enumeration value for display: `cosmian` chooses Cosmian's JSON spelling.
pub fn enum_name(domain: EnumDomain, value: u32, cosmian: bool) -> Option<&'static str> {
    match domain {
        EnumDomain::Tag => Tag(value).name(),
        EnumDomain::Kind(kind) => {
            lookup_value(kind, value).map(|e| if cosmian { e.cosmian } else { e.spec })
        }
        EnumDomain::Pkcs11Function => value
            .checked_sub(1)
            .and_then(|i| PKCS11_FUNCTIONS.get(i as usize))
            .copied(),
        EnumDomain::Pkcs11ReturnCode => PKCS11_RETURN_CODES
            .iter()
            .find(|(_, v)| *v == value)
            .map(|(n, _)| *n),
    }
}

/// Value of an Enumeration given by name (either spelling) or as `0x` hex.
pub fn enum_value(domain: Option<EnumDomain>, text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    match domain? {
        EnumDomain::Tag => Tag::from_name(text).map(|t| t.0),
        EnumDomain::Kind(kind) => lookup_name(kind, text),
        EnumDomain::Pkcs11Function => PKCS11_FUNCTIONS
            .iter()
            .position(|n| *n == text)
            .and_then(|i| u32::try_from(i + 1).ok()),
        EnumDomain::Pkcs11ReturnCode => PKCS11_RETURN_CODES
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, v)| *v),
    }
}

/// Bit masks written as space-separated names in the XML encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    CryptographicUsage,
    StorageStatus,
    ProtectionStorage,
}

const USAGE_MASK: &[(&str, u32)] = &[
    ("Sign", 0x0000_0001),
    ("Verify", 0x0000_0002),
    ("Encrypt", 0x0000_0004),
    ("Decrypt", 0x0000_0008),
    ("WrapKey", 0x0000_0010),
    ("UnwrapKey", 0x0000_0020),
    ("Export", 0x0000_0040),
    ("MACGenerate", 0x0000_0080),
    ("MACVerify", 0x0000_0100),
    ("DeriveKey", 0x0000_0200),
    ("ContentCommitment", 0x0000_0400),
    ("KeyAgreement", 0x0000_0800),
    ("CertificateSign", 0x0000_1000),
    ("CRLSign", 0x0000_2000),
    ("GenerateCryptogram", 0x0000_4000),
    ("ValidateCryptogram", 0x0000_8000),
    ("TranslateEncrypt", 0x0001_0000),
    ("TranslateDecrypt", 0x0002_0000),
    ("TranslateWrap", 0x0004_0000),
    ("TranslateUnwrap", 0x0008_0000),
    ("Authenticate", 0x0010_0000),
    ("Unrestricted", 0x0020_0000),
    ("FPEEncrypt", 0x0040_0000),
    ("FPEDecrypt", 0x0080_0000),
];

const STORAGE_STATUS_MASK: &[(&str, u32)] = &[
    ("OnLineStorage", 0x1),
    ("ArchivalStorage", 0x2),
    ("DestroyedStorage", 0x4),
];

const PROTECTION_STORAGE_MASK: &[(&str, u32)] = &[
    ("Software", 0x1),
    ("Hardware", 0x2),
    ("OnProcessor", 0x4),
    ("OnSystem", 0x8),
    ("OffSystem", 0x10),
    ("Hypervisor", 0x20),
    ("OperatingSystem", 0x40),
    ("Container", 0x80),
    ("OnPremises", 0x100),
    ("OffPremises", 0x200),
    ("SelfManaged", 0x400),
    ("Outsourced", 0x800),
    ("Validated", 0x1000),
    ("SameJurisdiction", 0x2000),
];

impl MaskKind {
    pub fn for_tag(tag: Tag) -> Option<MaskKind> {
        match tag {
            Tag::CRYPTOGRAPHIC_USAGE_MASK => Some(MaskKind::CryptographicUsage),
            Tag::STORAGE_STATUS_MASK => Some(MaskKind::StorageStatus),
            Tag::PROTECTION_STORAGE_MASK => Some(MaskKind::ProtectionStorage),
            _ => None,
        }
    }

    fn bits(self) -> &'static [(&'static str, u32)] {
        match self {
            MaskKind::CryptographicUsage => USAGE_MASK,
            MaskKind::StorageStatus => STORAGE_STATUS_MASK,
            MaskKind::ProtectionStorage => PROTECTION_STORAGE_MASK,
        }
    }

    /// Space-separated names; bits without a name are added as one `0x` hex word.
    pub fn format(self, value: i32) -> String {
        let mut rest = value as u32;
        let mut words: Vec<String> = Vec::new();
        for (name, bit) in self.bits() {
            if rest & bit != 0 {
                words.push((*name).to_owned());
                rest &= !bit;
            }
        }
        if rest != 0 || words.is_empty() {
            words.push(format!("0x{rest:08X}"));
        }
        words.join(" ")
    }

    /// Parses names separated by spaces or `|`, or a decimal or `0x` number.
    pub fn parse(self, text: &str) -> Option<i32> {
        let mut v: u32 = 0;
        for word in text.split([' ', '|']).filter(|w| !w.is_empty()) {
            if let Some(hex) = word.strip_prefix("0x") {
                v |= u32::from_str_radix(hex, 16).ok()?;
            } else if let Ok(n) = word.parse::<u32>() {
                v |= n;
            } else {
                v |= self.bits().iter().find(|(n, _)| *n == word)?.1;
            }
        }
        Some(v as i32)
    }
}

/// The tag a KMIP 1.x attribute name designates (`"Cryptographic Algorithm"` ->
/// `CryptographicAlgorithm`), used to read the `AttributeValue` next to it.
pub fn tag_of_attribute_name(name: &str) -> Option<Tag> {
    let compact: String = name.split([' ', '-']).collect();
    let compact = compact
        .replace("X.509", "X_509")
        .replace("PKCS#12", "PKCS_12");
    Tag::from_name(&compact)
}

/// The KMIP 1.x attribute name of a tag (`CryptographicAlgorithm` -> `"Cryptographic Algorithm"`).
pub fn attribute_name_of_tag(tag: Tag) -> Option<String> {
    let name = tag.name()?;
    let special = match name {
        "X_509CertificateIdentifier" => Some("X.509 Certificate Identifier"),
        "X_509CertificateIssuer" => Some("X.509 Certificate Issuer"),
        "X_509CertificateSubject" => Some("X.509 Certificate Subject"),
        "PKCS_12FriendlyName" => Some("PKCS#12 Friendly Name"),
        "CryptographicUsageMask" => Some("Cryptographic Usage Mask"),
        _ => None,
    };
    if let Some(s) = special {
        return Some(s.to_owned());
    }
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.push(*c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let m = MaskKind::CryptographicUsage;
        assert_eq!(m.parse("Encrypt Decrypt"), Some(12));
        assert_eq!(m.format(12), "Encrypt Decrypt");
        assert_eq!(m.parse("Encrypt|Bogus"), None);
    }

    #[test]
    fn attribute_names() {
        assert_eq!(
            tag_of_attribute_name("Cryptographic Usage Mask"),
            Some(Tag::CRYPTOGRAPHIC_USAGE_MASK)
        );
        assert_eq!(tag_of_attribute_name("x-custom"), None);
        assert_eq!(
            attribute_name_of_tag(Tag::CRYPTOGRAPHIC_ALGORITHM).as_deref(),
            Some("Cryptographic Algorithm")
        );
        assert_eq!(
            attribute_name_of_tag(Tag::UNIQUE_IDENTIFIER).as_deref(),
            Some("Unique Identifier")
        );
        assert_eq!(
            attribute_name_of_tag(Tag::INITIAL_DATE).as_deref(),
            Some("Initial Date")
        );
        assert_eq!(
            attribute_name_of_tag(Tag::OBJECT_TYPE).as_deref(),
            Some("Object Type")
        );
    }

    #[test]
    fn enum_names_both_spellings() {
        let d = enum_domain(Tag::HASHING_ALGORITHM).unwrap();
        assert_eq!(
            enum_value(Some(d), "SHA_256"),
            enum_value(Some(d), "SHA256")
        );
        assert_eq!(enum_name(d, 6, true), Some("SHA256"));
        assert_eq!(enum_name(d, 6, false), Some("SHA_256"));
    }
}
