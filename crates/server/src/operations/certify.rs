//! Certify: an X.509 certificate for a public key held by the KMS or for a PKCS#10 request,
//! self-signed or signed by an issuer (private key and certificate) held by the KMS.
//!
//! What the request's attributes say (see the guide, "Certificates"):
//! - subject: `CertificateSubjectCN`, `...O`, `...OU`, `...C`, `...Email` (taken from the CSR
//!   when there is one and they are absent);
//! - issuer: a `PrivateKeyLink` to the issuer's private key and a `CertificateLink` to its
//!   certificate; with neither, the certificate is self-signed by the subject's own private key
//!   (the public key's `PrivateKeyLink`);
//! - vendor attributes (`cosmian`): `requested_validity_days` (default 365), `ca` (`true`, or
//!   `pathlen:N`), `subject_alternative_names` (comma-separated DNS names, IP addresses and
//!   e-mail addresses), `key_usage` and `extended_key_usage` (comma-separated names, as OpenSSL
//!   spells them);
//! - the public key: named, the batch's placeholder (a CreateKeyPair just before: its private
//!   key stands for its public key), or a PKCS#10 request.
//!
//! The serial number is 16 random bytes; a CA gets keyCertSign and cRLSign, a leaf
//! digitalSignature and keyEncipherment with serverAuth and clientAuth.

use kmip::model::{
    Attribute, Attributes, Certificate, Certify, Link, Object, UidResponse, UniqueIdentifier,
};
use kmip::{CertificateRequestType, CertificateType, LinkType, ObjectType, State, Tag};
use kms_store::StoredObject;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use super::{insert, new_stored_object, new_uid};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

const DEFAULT_VALIDITY_DAYS: i64 = 365;

fn bad(what: impl std::fmt::Display) -> KmsError {
    KmsError::InvalidRequest(what.to_string())
}

fn vendor(attributes: &Attributes, name: &str) -> Option<String> {
    attributes.0.iter().find_map(|a| match a {
        Attribute::VendorAttribute(v) if v.attribute_name == name => v
            .attribute_value
            .as_str()
            .ok()
            .map(str::to_owned)
            .or_else(|| v.attribute_value.as_i32().ok().map(|i| i.to_string()))
            .or_else(|| {
                v.attribute_value
                    .as_bytes()
                    .ok()
                    .and_then(|b| String::from_utf8(b.to_vec()).ok())
            }),
        _ => None,
    })
}

/// The names of a comma-separated list.
fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn text(attributes: &Attributes, tag: Tag) -> Option<String> {
    attributes.0.iter().find_map(|a| match a {
        Attribute::Other(t) if t.tag == tag => t.as_str().ok().map(str::to_owned),
        _ => None,
    })
}

fn link(attributes: &Attributes, link_type: LinkType) -> Option<UniqueIdentifier> {
    attributes
        .links()
        .find(|l| l.link_type == link_type)
        .map(|l| l.linked_object_identifier.clone())
}

/// The private key of `stored` as PKCS#8 DER, for rcgen.
fn signing_key(stored: &StoredObject) -> KResult<KeyPair> {
    let (_, der) = super::asymmetric::private_key(stored)?;
    KeyPair::try_from(der.as_slice()).map_err(|e| {
        KmsError::FeatureNotSupported(format!(
            "signing certificates with key `{}`: {e}; use an RSA, P-256, P-384, P-521 or Ed25519 key",
            stored.uid
        ))
    })
}

pub async fn certify(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Certify,
) -> KResult<UidResponse> {
    super::require_may_create(ctx)?;
    let mut attributes = request.attributes.unwrap_or_default();
    // Cosmian's clients group the subject fields in a CertificateAttributes structure (empty
    // fields meaning absent).
    let grouped: Vec<Attribute> = attributes
        .0
        .iter()
        .filter_map(|a| match a {
            Attribute::Other(t) if t.tag == Tag::CERTIFICATE_ATTRIBUTES => t.children().ok(),
            _ => None,
        })
        .flatten()
        .filter(|f| f.as_str().is_ok_and(|v| !v.is_empty()))
        .map(|f| Attribute::Other(f.clone()))
        .collect();
    attributes
        .0
        .retain(|a| a.tag() != Tag::CERTIFICATE_ATTRIBUTES);
    attributes.0.extend(grouped);
    // Cosmian's `certify --generate-key-pair`: no key named, a key algorithm given: the key
    // pair is made here first, then certified (self-signed unless an issuer is named).
    let mut unique_identifier = request.unique_identifier.clone();
    if unique_identifier.is_none()
        && request.certificate_request_value.is_none()
        && ctx.placeholder.is_none()
        && attributes.cryptographic_algorithm().is_some()
    {
        let (kind, bits) = super::asymmetric::kind_for_create(&attributes)?;
        let mut pair_attributes = Attributes::new();
        for a in &attributes.0 {
            if matches!(
                a.tag(),
                Tag::CRYPTOGRAPHIC_ALGORITHM
                    | Tag::CRYPTOGRAPHIC_LENGTH
                    | Tag::CRYPTOGRAPHIC_DOMAIN_PARAMETERS
            ) {
                pair_attributes.0.push(a.clone());
            }
        }
        pair_attributes.set(Attribute::ActivationDate(kmip::DateTime::now()));
        if let Ok(tags) = attributes.user_tags() {
            pair_attributes.set_user_tags(&tags);
        }
        let (_, public) = super::create_key_pair::store_pair(
            kms,
            ctx,
            kind,
            bits,
            pair_attributes.clone(),
            pair_attributes,
        )
        .await?;
        unique_identifier = Some(public.into());
    }
    let mut params = CertificateParams::default();
    // rcgen's default subject is a placeholder name: the request says the subject.
    params.distinguished_name = rcgen::DistinguishedName::new();

    // The subject's public key: a CSR, or a public key held here.
    let (public_spki, subject_key): (Vec<u8>, Option<StoredObject>) = match (
        &request.certificate_request_value,
        unique_identifier,
    ) {
        (Some(csr), _) => {
            if request
                .certificate_request_type
                .is_some_and(|t| t != CertificateRequestType::PKCS_10)
            {
                return Err(KmsError::FeatureNotSupported(
                    "certificate requests other than PKCS#10 (DER)".into(),
                ));
            }
            let parsed = rcgen::CertificateSigningRequestParams::from_der(&csr.as_slice().into())
                    .map_err(|e| bad(format!("the certificate request cannot be used: {e}; send a DER PKCS#10 request signed by its key")))?;
            params.distinguished_name = parsed.params.distinguished_name.clone();
            params.subject_alt_names = parsed.params.subject_alt_names.clone();
            let (_, csr_parsed) = <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(csr)
                    .map_err(|_| bad("the certificate request is not DER PKCS#10"))?;
            (
                csr_parsed
                    .certification_request_info
                    .subject_pki
                    .raw
                    .to_vec(),
                None,
            )
        }
        (None, uid) => {
            // Named, or the batch's placeholder (a key pair created just before); a private
            // key stands for its public key.
            let mut key = kms.load(ctx, uid).await?;
            if key.object_type == ObjectType::PrivateKey
                && let Some(public) = link(&key.attributes, LinkType::PublicKeyLink)
            {
                key = kms.load(ctx, Some(public)).await?;
            }
            if key.object_type != ObjectType::PublicKey {
                return Err(bad(format!(
                    "object `{}` is a {:?}: Certify names the public key to certify (or give a PKCS#10 request)",
                    key.uid, key.object_type
                )));
            }
            let (_, spki) = super::asymmetric::public_key(&key)?;
            (spki, Some(key))
        }
    };

    // Subject fields given as attributes replace the request's.
    let mut dn = std::mem::take(&mut params.distinguished_name);
    for (tag, dn_type) in [
        (Tag::CERTIFICATE_SUBJECT_CN, DnType::CommonName),
        (Tag::CERTIFICATE_SUBJECT_O, DnType::OrganizationName),
        (Tag::CERTIFICATE_SUBJECT_OU, DnType::OrganizationalUnitName),
        (Tag::CERTIFICATE_SUBJECT_C, DnType::CountryName),
    ] {
        if let Some(v) = text(&attributes, tag) {
            dn.push(dn_type, v);
        }
    }
    if dn.get(&DnType::CommonName).is_none() {
        return Err(KmsError::MissingData(
            "the certificate needs a subject: give CertificateSubjectCN (and O, OU, C as wanted)"
                .into(),
        ));
    }
    params.distinguished_name = dn;
    if let Some(sans) = vendor(&attributes, "subject_alternative_names") {
        add_sans(&mut params, &sans)?;
    }
    let days = match vendor(&attributes, "requested_validity_days") {
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=36_500).contains(d))
            .ok_or_else(|| {
                bad(format!(
                    "requested_validity_days `{d}` is not a number of days from 1 to 36500"
                ))
            })?,
        None => DEFAULT_VALIDITY_DAYS,
    };
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
    let mut serial = kms_crypto::random_bytes(16)?;
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    apply_ca(&mut params, vendor(&attributes, "ca").as_deref())?;
    // An OpenSSL extensions section (`x509_extensions`): the same settings in OpenSSL's syntax.
    // (`x509-extension`, as bytes, is how Cosmian's clients send it.)
    if let Some(file) =
        vendor(&attributes, "x509_extensions").or_else(|| vendor(&attributes, "x509-extension"))
    {
        for (name, value) in openssl_extensions(&file)? {
            attributes
                .0
                .push(Attribute::VendorAttribute(kmip::model::VendorAttribute {
                    vendor_identification: kmip::model::COSMIAN_VENDOR.into(),
                    attribute_name: name.into(),
                    attribute_value: kmip::Ttlv::new(
                        Tag::ATTRIBUTE_VALUE,
                        kmip::Value::TextString(value),
                    ),
                }));
        }
        apply_ca(&mut params, vendor(&attributes, "ca").as_deref())?;
        if let Some(sans) = vendor(&attributes, "subject_alternative_names") {
            add_sans(&mut params, &sans)?;
        }
    }
    if let Some(list) = vendor(&attributes, "key_usage") {
        params.key_usages = names(&list)
            .map(|u| {
                Ok(match u {
                    "digitalSignature" => KeyUsagePurpose::DigitalSignature,
                    "nonRepudiation" | "contentCommitment" => KeyUsagePurpose::ContentCommitment,
                    "keyEncipherment" => KeyUsagePurpose::KeyEncipherment,
                    "dataEncipherment" => KeyUsagePurpose::DataEncipherment,
                    "keyAgreement" => KeyUsagePurpose::KeyAgreement,
                    "keyCertSign" => KeyUsagePurpose::KeyCertSign,
                    "cRLSign" => KeyUsagePurpose::CrlSign,
                    other => return Err(bad(format!("key usage `{other}` is not one of digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign"))),
                })
            })
            .collect::<KResult<_>>()?;
    }
    if let Some(list) = vendor(&attributes, "extended_key_usage") {
        params.extended_key_usages = names(&list)
            .map(|u| {
                Ok(match u {
                    "serverAuth" => ExtendedKeyUsagePurpose::ServerAuth,
                    "clientAuth" => ExtendedKeyUsagePurpose::ClientAuth,
                    "codeSigning" => ExtendedKeyUsagePurpose::CodeSigning,
                    "emailProtection" => ExtendedKeyUsagePurpose::EmailProtection,
                    "timeStamping" => ExtendedKeyUsagePurpose::TimeStamping,
                    "OCSPSigning" => ExtendedKeyUsagePurpose::OcspSigning,
                    other => return Err(bad(format!("extended key usage `{other}` is not one of serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning"))),
                })
            })
            .collect::<KResult<_>>()?;
    }
    params.use_authority_key_identifier_extension = true;

    let subject_public = rcgen::SubjectPublicKeyInfo::from_der(&public_spki)
        .map_err(|e| KmsError::FeatureNotSupported(format!("certifying this public key: {e}")))?;

    // The issuer: named by links, or the subject itself.
    let mut issuer_key_uid = link(&attributes, LinkType::PrivateKeyLink);
    let mut issuer_cert_uid = link(&attributes, LinkType::CertificateLink);
    // One of the two names the other: a certificate its private key, a private key its
    // certificate (directly or through its public key).
    match (&issuer_key_uid, &issuer_cert_uid) {
        (None, Some(cert)) => {
            let issuer_cert = kms.load(ctx, Some(cert.clone())).await?;
            issuer_key_uid = link(&issuer_cert.attributes, LinkType::PrivateKeyLink);
        }
        (Some(key), None) => {
            let issuer_key = kms.load(ctx, Some(key.clone())).await?;
            issuer_cert_uid = match link(&issuer_key.attributes, LinkType::CertificateLink) {
                Some(c) => Some(c),
                None => match link(&issuer_key.attributes, LinkType::PublicKeyLink) {
                    Some(p) => link(
                        &kms.load(ctx, Some(p)).await?.attributes,
                        LinkType::CertificateLink,
                    ),
                    None => None,
                },
            };
        }
        _ => {}
    }
    let (der, issuer_cert) = match (issuer_key_uid, issuer_cert_uid) {
        (Some(key_uid), Some(cert_uid)) => {
            let issuer_key = kms.load(ctx, Some(key_uid)).await?;
            let issuer_cert = kms.load(ctx, Some(cert_uid)).await?;
            require_active(&issuer_key)?;
            let Some(Object::Certificate(c)) = &issuer_cert.object else {
                return Err(bad(format!(
                    "object `{}` is not a certificate",
                    issuer_cert.uid
                )));
            };
            let issuer = Issuer::from_ca_cert_der(
                &c.certificate_value.as_slice().into(),
                signing_key(&issuer_key)?,
            )
            .map_err(|e| bad(format!("the issuer certificate cannot be used: {e}")))?;
            let cert = params
                .signed_by(&subject_public, &issuer)
                .map_err(|e| bad(format!("the certificate cannot be signed: {e}")))?;
            (cert.der().to_vec(), Some(issuer_cert.uid))
        }
        (None, None) => {
            let subject = subject_key.as_ref().ok_or_else(|| {
                bad("a certificate for a request is signed by an issuer: give its PrivateKeyLink and CertificateLink")
            })?;
            let private_uid = link(&subject.attributes, LinkType::PrivateKeyLink).ok_or_else(|| {
                bad(format!("public key `{}` has no PrivateKeyLink: a self-signed certificate needs its private key", subject.uid))
            })?;
            let private = kms.load(ctx, Some(private_uid)).await?;
            require_active(&private)?;
            let key = signing_key(&private)?;
            let cert = params
                .self_signed(&key)
                .map_err(|e| bad(format!("the certificate cannot be signed: {e}")))?;
            (cert.der().to_vec(), None)
        }
        _ => {
            return Err(bad(
                "the issuer's private key and certificate are not both known: name them with a PrivateKeyLink and a CertificateLink (one is enough when the other is linked to it), or neither for a self-signed certificate",
            ));
        }
    };

    // The certificate object, linked to its public key and its issuer's certificate.
    let object = Object::Certificate(Certificate {
        certificate_type: CertificateType::X_509,
        certificate_value: der,
    });
    let mut cert_attributes = Attributes::new();
    for a in &attributes.0 {
        if matches!(a, Attribute::Name(_) | Attribute::ObjectGroup(_))
            || a.tag() == Tag::UNIQUE_IDENTIFIER
        {
            cert_attributes.0.push(a.clone());
        }
    }
    if let Ok(tags) = attributes.user_tags() {
        cert_attributes.set_user_tags(&tags);
    }
    super::certificate::derive_attributes(&object, &mut cert_attributes)?;
    if let Some(key) = &subject_key {
        cert_attributes.0.push(Attribute::Link(Link {
            link_type: LinkType::PublicKeyLink,
            linked_object_identifier: key.uid.clone().into(),
        }));
        if let Some(private) = link(&key.attributes, LinkType::PrivateKeyLink) {
            cert_attributes.0.push(Attribute::Link(Link {
                link_type: LinkType::PrivateKeyLink,
                linked_object_identifier: private,
            }));
        }
    }
    if let Some(issuer) = issuer_cert {
        cert_attributes.0.push(Attribute::Link(Link {
            link_type: LinkType::CertificateLink,
            linked_object_identifier: issuer.into(),
        }));
    }
    cert_attributes.set(Attribute::ActivationDate(kmip::DateTime::now()));
    let uid = new_uid(&cert_attributes)?;
    let stored = new_stored_object(ctx, uid, object, cert_attributes, State::Active)?;
    let uid = insert(kms, ctx, stored).await?;
    // The public key learns its certificate.
    if let Some(key) = subject_key {
        kms.modify(ctx, Some(key.uid.into()), |k| {
            k.attributes.0.retain(
                |a| !matches!(a, Attribute::Link(l) if l.link_type == LinkType::CertificateLink),
            );
            k.attributes.0.push(Attribute::Link(Link {
                link_type: LinkType::CertificateLink,
                linked_object_identifier: uid.clone().into(),
            }));
            Ok(())
        })
        .await?;
    }
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}

fn require_active(key: &StoredObject) -> KResult<()> {
    super::require_state(
        key,
        &[State::Active],
        "only an active key signs certificates; activate it first",
    )
}

fn add_sans(params: &mut CertificateParams, sans: &str) -> KResult<()> {
    for name in names(sans) {
        let san = if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            SanType::IpAddress(ip)
        } else if name.contains('@') {
            SanType::Rfc822Name(name.try_into().map_err(|e| bad(format!("`{name}`: {e}")))?)
        } else {
            SanType::DnsName(name.try_into().map_err(|e| bad(format!("`{name}`: {e}")))?)
        };
        params.subject_alt_names.push(san);
    }
    Ok(())
}

/// A CA (`true`, `pathlen:N`) or a leaf (`None`, `false`), with the key usages of each.
fn apply_ca(params: &mut CertificateParams, ca: Option<&str>) -> KResult<()> {
    match ca {
        None | Some("false") => {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        Some(ca) => {
            let constraint = match ca.strip_prefix("pathlen:") {
                Some(n) => BasicConstraints::Constrained(n.parse().map_err(|_| {
                    bad(format!("`ca` value `{ca}`: pathlen:N with N from 0 to 255"))
                })?),
                None if ca == "true" => BasicConstraints::Unconstrained,
                None => {
                    return Err(bad(format!(
                        "`ca` value `{ca}`: give true, false or pathlen:N"
                    )));
                }
            };
            params.is_ca = IsCa::Ca(constraint);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.extended_key_usages = Vec::new();
        }
    }
    Ok(())
}

/// The settings of an OpenSSL extensions section (`basicConstraints`, `keyUsage`,
/// `extendedKeyUsage`, `subjectAltName`), as this operation's vendor attributes. Section headers,
/// comments and `critical` are accepted; other keys are refused with their name.
fn openssl_extensions(file: &str) -> KResult<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for line in file.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("x509 extensions: `{line}` is not `name = value`")))?;
        let parts: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "critical")
            .collect();
        match key.trim() {
            "basicConstraints" => {
                let ca = parts.iter().any(|p| p.eq_ignore_ascii_case("CA:TRUE"));
                let pathlen = parts.iter().find_map(|p| p.strip_prefix("pathlen:"));
                out.push((
                    "ca",
                    match (ca, pathlen) {
                        (true, Some(n)) => format!("pathlen:{}", n.trim()),
                        (true, None) => "true".into(),
                        (false, _) => "false".into(),
                    },
                ));
            }
            "keyUsage" => out.push(("key_usage", parts.join(","))),
            "extendedKeyUsage" => out.push(("extended_key_usage", parts.join(","))),
            "subjectAltName" => {
                let names: Vec<&str> = parts
                    .iter()
                    .map(|p| {
                        p.split_once(':').map(|(_, v)| v.trim()).ok_or_else(|| {
                            bad(format!("subjectAltName `{p}`: write DNS:, IP: or email:"))
                        })
                    })
                    .collect::<KResult<_>>()?;
                out.push(("subject_alternative_names", names.join(",")));
            }
            "subjectKeyIdentifier" | "authorityKeyIdentifier" => {}
            other => {
                return Err(bad(format!(
                    "x509 extensions: `{other}` is not supported; use basicConstraints, keyUsage, extendedKeyUsage, subjectAltName"
                )));
            }
        }
    }
    Ok(out)
}
