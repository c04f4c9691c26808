//! What the server reads from a registered X.509 certificate: the attributes KMIP derives from
//! it (type, length, subject and issuer fields), which clients then find it by.

use kmip::model::{Attribute, Attributes, Object};
use kmip::{CertificateType, Tag, Ttlv, Value};

use crate::error::{KResult, KmsError};

/// Checks a certificate object holds a DER X.509 certificate and sets the attributes derived
/// from it (read-only for clients).
pub fn derive_attributes(object: &Object, attributes: &mut Attributes) -> KResult<()> {
    let Object::Certificate(certificate) = object else {
        return Ok(());
    };
    if certificate.certificate_type != CertificateType::X_509 {
        return Err(KmsError::FeatureNotSupported(format!(
            "certificates of type {:?}; register X.509 certificates (DER)",
            certificate.certificate_type
        )));
    }
    let der = &certificate.certificate_value;
    let (rest, parsed) = x509_parser::parse_x509_certificate(der).map_err(|_| {
        KmsError::InvalidRequest(
            "the CertificateValue is not a DER X.509 certificate (convert PEM with `openssl x509 -outform DER`)".into(),
        )
    })?;
    if !rest.is_empty() {
        return Err(KmsError::InvalidRequest(
            "the CertificateValue has bytes after the certificate; send one DER certificate".into(),
        ));
    }
    attributes.set(Attribute::CertificateType(CertificateType::X_509));
    attributes.set(Attribute::Digest(kmip::model::Digest {
        hashing_algorithm: kmip::HashingAlgorithm::SHA_256,
        digest_value: Some(kms_crypto::sha256(der).to_vec()),
        key_format_type: None,
    }));
    // The certificate's validity, unless the client dates the object itself: in use from
    // notBefore, deactivated at notAfter.
    let validity = parsed.validity();
    if !attributes.has(Tag::ACTIVATION_DATE) {
        attributes.set(Attribute::ActivationDate(kmip::DateTime(
            validity.not_before.timestamp(),
        )));
    }
    if !attributes.has(Tag::DEACTIVATION_DATE) {
        attributes.set(Attribute::DeactivationDate(kmip::DateTime(
            validity.not_after.timestamp(),
        )));
    }
    attributes.set(Attribute::CertificateLength(
        i32::try_from(der.len()).unwrap_or(i32::MAX),
    ));
    let text = |tag: Tag, value: Option<&str>, attributes: &mut Attributes| {
        attributes.remove(tag);
        if let Some(v) = value {
            attributes.0.push(Attribute::Other(Ttlv::new(
                tag,
                Value::TextString(v.to_owned()),
            )));
        }
    };
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let subject = parsed.subject();
    let issuer = parsed.issuer();
    for (tag, value) in [
        (
            Tag::CERTIFICATE_SUBJECT_CN,
            first(&mut subject.iter_common_name()),
        ),
        (
            Tag::CERTIFICATE_SUBJECT_O,
            first(&mut subject.iter_organization()),
        ),
        (
            Tag::CERTIFICATE_SUBJECT_OU,
            first(&mut subject.iter_organizational_unit()),
        ),
        (
            Tag::CERTIFICATE_SUBJECT_C,
            first(&mut subject.iter_country()),
        ),
        (
            Tag::CERTIFICATE_SUBJECT_EMAIL,
            first(&mut subject.iter_email()),
        ),
        (
            Tag::CERTIFICATE_ISSUER_CN,
            first(&mut issuer.iter_common_name()),
        ),
        (
            Tag::CERTIFICATE_ISSUER_O,
            first(&mut issuer.iter_organization()),
        ),
        (
            Tag::CERTIFICATE_ISSUER_OU,
            first(&mut issuer.iter_organizational_unit()),
        ),
        (Tag::CERTIFICATE_ISSUER_C, first(&mut issuer.iter_country())),
        (
            Tag::CERTIFICATE_ISSUER_EMAIL,
            first(&mut issuer.iter_email()),
        ),
    ] {
        text(tag, value.as_deref(), attributes);
    }
    // The issuer and serial that name the certificate everywhere (X.509 Certificate
    // Identifier), and its subject and issuer names as DER.
    for tag in [
        Tag::X_509_CERTIFICATE_IDENTIFIER,
        Tag::X_509_CERTIFICATE_SUBJECT,
        Tag::X_509_CERTIFICATE_ISSUER,
    ] {
        attributes.remove(tag);
    }
    let bytes = |tag: Tag, b: &[u8]| Ttlv::new(tag, Value::ByteString(b.to_vec()));
    attributes.0.push(Attribute::Other(Ttlv::structure(
        Tag::X_509_CERTIFICATE_IDENTIFIER,
        vec![
            bytes(Tag::ISSUER_DISTINGUISHED_NAME, issuer.as_raw()),
            bytes(Tag::CERTIFICATE_SERIAL_NUMBER, parsed.raw_serial()),
        ],
    )));
    attributes.0.push(Attribute::Other(Ttlv::structure(
        Tag::X_509_CERTIFICATE_SUBJECT,
        vec![bytes(Tag::SUBJECT_DISTINGUISHED_NAME, subject.as_raw())],
    )));
    attributes.0.push(Attribute::Other(Ttlv::structure(
        Tag::X_509_CERTIFICATE_ISSUER,
        vec![bytes(Tag::ISSUER_DISTINGUISHED_NAME, issuer.as_raw())],
    )));
    Ok(())
}
