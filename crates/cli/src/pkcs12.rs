//! PKCS#12 for `ckms certificates`: the server makes and opens them; the password travels as a
//! Secret Data object made for the one request and removed right after.

use anyhow::{Context, bail};
use kmip::model::{
    Attribute, Attributes, CryptographicParameters, Destroy, Get, Import, KeyBlock, Link, Object,
    PrivateKey, Register,
};
use kmip::{CryptographicAlgorithm, KeyFormatType, LinkType, SecretDataType, Tag, Ttlv, Value};
use kms_client::KmsClient;

/// The PKCS#12 of a certificate (or private key) held by the server.
pub async fn export(
    client: &KmsClient,
    id: &str,
    password: &str,
    legacy: bool,
) -> anyhow::Result<Vec<u8>> {
    let secret = password_object(client, password).await?;
    let mut info = vec![Ttlv::new(
        Tag::UNIQUE_IDENTIFIER,
        Value::TextString(secret.as_text().unwrap_or_default().to_owned()),
    )];
    if legacy {
        info.push(kmip::model::Item::to_ttlv(
            &CryptographicParameters {
                cryptographic_algorithm: Some(CryptographicAlgorithm::DES3),
                ..CryptographicParameters::default()
            },
            Tag::CRYPTOGRAPHIC_PARAMETERS,
        ));
    }
    let spec = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::new(Tag::WRAPPING_METHOD, Value::Enumeration(1)),
            Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, info),
        ],
    );
    let got = client
        .call(Get {
            key_format_type: Some(KeyFormatType::PKCS_12),
            key_wrapping_specification: Some(spec),
            ..Get::new(id)
        })
        .await;
    // The password object goes whatever happened.
    let removed = remove(client, secret).await;
    let got = got?;
    removed?;
    let kb = got
        .object
        .key_block()
        .context("the server answered no key block")?;
    match &kb.key_value {
        Some(kmip::model::KeyValue::Plain(p)) => match &p.key_material {
            kmip::model::KeyMaterial::Bytes(b) => Ok(b.clone()),
            kmip::model::KeyMaterial::Structure(_) => bail!("the server answered no PKCS#12 bytes"),
        },
        _ => bail!("the server answered no PKCS#12 bytes"),
    }
}

/// A Secret Data (Password) object holding `password`, for one request.
async fn password_object(
    client: &KmsClient,
    password: &str,
) -> anyhow::Result<kmip::model::UniqueIdentifier> {
    Ok(client
        .call(Register::new(
            Attributes::new(),
            Object::secret_data(SecretDataType::Password, password.as_bytes().to_vec()),
        ))
        .await
        .context("storing the PKCS#12 password for the request")?
        .unique_identifier)
}

async fn remove(client: &KmsClient, uid: kmip::model::UniqueIdentifier) -> anyhow::Result<()> {
    client
        .call(Destroy {
            remove: Some(true),
            ..Destroy::new(uid)
        })
        .await
        .context("removing the PKCS#12 password object")?;
    Ok(())
}

/// The identifier `uid`'s attributes link to with `link_type`.
async fn linked(
    client: &KmsClient,
    uid: &str,
    link_type: LinkType,
) -> anyhow::Result<Option<String>> {
    let attributes = client
        .call(kmip::model::GetAttributes {
            unique_identifier: Some(uid.into()),
            attribute_reference: vec![Ttlv::new(
                Tag::ATTRIBUTE_REFERENCE,
                Value::Enumeration(Tag::LINK.0),
            )],
        })
        .await?
        .attributes;
    Ok(attributes
        .links()
        .find(|l| l.link_type == link_type)
        .and_then(|l| l.linked_object_identifier.as_text().map(str::to_owned)))
}

/// Imports a PKCS#12: the server opens it (the password travels as a Secret Data object for
/// this one request) and saves the key, the certificate and the chain, linked. Answers the
/// key's identifier and the certificates' (leaf first).
pub async fn import(
    client: &KmsClient,
    data: &[u8],
    password: &str,
    tags: &[String],
) -> anyhow::Result<(String, Vec<String>)> {
    let secret = password_object(client, password).await?;
    let mut attributes = Attributes::new();
    attributes.set(Attribute::ActivationDate(kmip::DateTime::now()));
    attributes.set(Attribute::CryptographicUsageMask(0x1 | 0x8 | 0x20));
    attributes.set_user_tags(tags);
    attributes.0.push(Attribute::Link(Link {
        link_type: LinkType::PKCS_12PasswordLink,
        linked_object_identifier: secret.clone(),
    }));
    let imported = client
        .call(Import::new(
            String::new(),
            attributes,
            Object::PrivateKey(PrivateKey {
                key_block: KeyBlock::plain(KeyFormatType::PKCS_12, data.to_vec()),
            }),
        ))
        .await;
    let removed = remove(client, secret).await;
    let key = imported?
        .unique_identifier
        .as_text()
        .unwrap_or_default()
        .to_owned();
    removed?;
    let mut certificates = Vec::new();
    let mut next = linked(client, &key, LinkType::CertificateLink).await?;
    while let Some(cert) = next.take() {
        if certificates.contains(&cert) || certificates.len() >= 10 {
            break;
        }
        next = linked(client, &cert, LinkType::CertificateLink).await?;
        certificates.push(cert);
    }
    Ok((key, certificates))
}
