//! ReCertify: a new certificate replacing one held here — same key (or the request given),
//! subject, alternative names, CA constraints, issuer and validity length, from now — with the
//! names moved over and replacement links both ways (as ReKey).

use kmip::model::{
    Attribute, Attributes, Certify, Link, Object, ReCertify, UidResponse, VendorAttribute,
};
use kmip::{LinkType, Tag, Ttlv, Value};
use x509_parser::extensions::GeneralName;

use super::re_key::hand_over;
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

fn vendor(name: &str, value: String) -> Attribute {
    Attribute::VendorAttribute(VendorAttribute {
        vendor_identification: kmip::model::COSMIAN_VENDOR.into(),
        attribute_name: name.into(),
        attribute_value: Ttlv::new(Tag::ATTRIBUTE_VALUE, Value::TextString(value)),
    })
}

pub async fn re_certify(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: ReCertify,
) -> KResult<UidResponse> {
    let old = kms.load(ctx, request.unique_identifier).await?;
    let Some(Object::Certificate(certificate)) = &old.object else {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}: ReCertify replaces a certificate",
            old.uid, old.object_type
        )));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate.certificate_value)
        .map_err(|_| KmsError::InvalidRequest("the certificate held is not X.509".into()))?;
    let mut attributes = Attributes::new();
    // The subject as the old certificate has it.
    for tag in [
        Tag::CERTIFICATE_SUBJECT_CN,
        Tag::CERTIFICATE_SUBJECT_O,
        Tag::CERTIFICATE_SUBJECT_OU,
        Tag::CERTIFICATE_SUBJECT_C,
    ] {
        attributes
            .0
            .extend(old.attributes.0.iter().filter(|a| a.tag() == tag).cloned());
    }
    let days = (parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp())
        / 86_400;
    attributes.0.push(vendor(
        "requested_validity_days",
        days.clamp(1, 36_500).to_string(),
    ));
    if let Ok(Some(bc)) = parsed.basic_constraints()
        && bc.value.ca
    {
        let ca = bc
            .value
            .path_len_constraint
            .map_or_else(|| "true".to_owned(), |n| format!("pathlen:{n}"));
        attributes.0.push(vendor("ca", ca));
    }
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_owned()),
                GeneralName::RFC822Name(e) => Some((*e).to_owned()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip)
                        .ok()
                        .map(|b| std::net::IpAddr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(*ip)
                        .ok()
                        .map(|b| std::net::IpAddr::from(b).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if !names.is_empty() {
            attributes
                .0
                .push(vendor("subject_alternative_names", names.join(",")));
        }
    }
    // The same issuer, by its certificate and that certificate's private key.
    let link = |attributes: &Attributes, t: LinkType| {
        attributes
            .links()
            .find(|l| l.link_type == t)
            .map(|l| l.linked_object_identifier.clone())
    };
    if let Some(issuer_cert) = link(&old.attributes, LinkType::CertificateLink) {
        let issuer = kms.load(ctx, Some(issuer_cert.clone())).await?;
        let issuer_key = link(&issuer.attributes, LinkType::PrivateKeyLink).ok_or_else(|| {
            KmsError::InvalidRequest(format!(
                "the issuer certificate `{}` has no PrivateKeyLink: its key is not held here",
                issuer.uid
            ))
        })?;
        for (t, id) in [
            (LinkType::CertificateLink, issuer_cert),
            (LinkType::PrivateKeyLink, issuer_key),
        ] {
            attributes.0.push(Attribute::Link(Link {
                link_type: t,
                linked_object_identifier: id,
            }));
        }
    }
    for a in request.attributes.map(|a| a.0).unwrap_or_default() {
        attributes.set(a);
    }
    let public = match (
        &request.certificate_request_value,
        link(&old.attributes, LinkType::PublicKeyLink),
    ) {
        (Some(_), _) => None,
        (None, Some(p)) => Some(p),
        (None, None) => {
            return Err(KmsError::InvalidRequest(format!(
                "certificate `{}` is not linked to a public key held here: give a certificate request",
                old.uid
            )));
        }
    };
    let certified = super::certify::certify(
        kms,
        ctx,
        Certify {
            unique_identifier: public,
            attributes: Some(attributes),
            certificate_request_unique_identifier: None,
            certificate_request_type: request.certificate_request_type,
            certificate_request_value: request.certificate_request_value,
            protection_storage_masks: None,
        },
    )
    .await?;
    let new = certified
        .unique_identifier
        .as_text()
        .map(str::to_owned)
        .unwrap_or_default();
    hand_over(kms, ctx, &old.uid, &new).await?;
    ctx.placeholder = Some(new.clone());
    Ok(UidResponse {
        unique_identifier: new.into(),
    })
}
