//! PKCS#12 for `ckms certificates`: export asks the server (the password travels as a
//! short-lived Secret Data object, removed after use), import opens the file here and imports
//! the key, the certificate and the chain, linked, so the password never leaves this machine.

use anyhow::{Context, bail};
use kmip::model::{
    Attribute, Attributes, Certificate, CryptographicParameters, Destroy, Get, Import, KeyBlock,
    Link, Object, PrivateKey, Register,
};
use kmip::{
    CertificateType, CryptographicAlgorithm, KeyFormatType, LinkType, SecretDataType, Tag, Ttlv,
    Value,
};
use kms_client::KmsClient;
use zeroize::Zeroizing;

/// The PKCS#12 of a certificate (or private key) held by the server.
pub async fn export(
    client: &KmsClient,
    id: &str,
    password: &str,
    legacy: bool,
) -> anyhow::Result<Vec<u8>> {
    let secret = client
        .call(Register::new(
            Attributes::new(),
            Object::secret_data(SecretDataType::Password, password.as_bytes().to_vec()),
        ))
        .await
        .context("storing the PKCS#12 password for the export")?
        .unique_identifier;
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
    let removed = client
        .call(Destroy {
            remove: Some(true),
            ..Destroy::new(secret)
        })
        .await;
    let got = got?;
    removed.context("removing the PKCS#12 password object")?;
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

fn subject_and_issuer(der: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| anyhow::anyhow!("the PKCS#12 holds a malformed certificate"))?;
    Ok((
        cert.subject().as_raw().to_vec(),
        cert.issuer().as_raw().to_vec(),
    ))
}

async fn import_one(
    client: &KmsClient,
    object: Object,
    attributes: Attributes,
) -> anyhow::Result<String> {
    let imported = client
        .call(Import::new(String::new(), attributes, object))
        .await?;
    Ok(imported
        .unique_identifier
        .as_text()
        .unwrap_or_default()
        .to_owned())
}

fn link(link_type: LinkType, id: &str) -> Attribute {
    Attribute::Link(Link {
        link_type,
        linked_object_identifier: id.to_owned().into(),
    })
}

/// Imports the key, its certificate and the chain of a PKCS#12; answers the key's identifier
/// and the certificates' (leaf first).
pub async fn import(
    client: &KmsClient,
    data: &[u8],
    password: &str,
    tags: &[String],
) -> anyhow::Result<(String, Vec<String>)> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, password)
        .map_err(|e| anyhow::anyhow!("the PKCS#12 does not open with this password ({e})"))?;
    let [key_bag] = archive.keys.as_slice() else {
        bail!(
            "the PKCS#12 holds {} private keys; this command imports files with exactly one",
            archive.keys.len()
        );
    };
    let ders: Vec<Vec<u8>> = archive
        .certs
        .iter()
        .map(|c| c.cert.as_der().to_vec())
        .collect();
    if ders.is_empty() {
        bail!("the PKCS#12 holds no certificate");
    }
    let names = ders
        .iter()
        .map(|d| subject_and_issuer(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The leaf: the certificate bag with the key's local key id, else the one no other names
    // as issuer.
    let leaf = archive
        .certs
        .iter()
        .position(|c| {
            c.local_key_id.is_some()
                && c.local_key_id.as_deref()
                    == key_bag.local_key_id.as_ref().map(|k| k.0.as_slice())
        })
        .or_else(|| {
            (0..names.len()).find(|i| {
                !names
                    .iter()
                    .enumerate()
                    .any(|(j, n)| j != *i && n.1 == names[*i].0)
            })
        })
        .unwrap_or(0);
    // The chain from the leaf up, following issuer names.
    let mut order = vec![leaf];
    while order.len() < ders.len() {
        let last = order[order.len() - 1];
        let (subject, issuer) = &names[last];
        if subject == issuer {
            break;
        }
        match (0..names.len()).find(|i| !order.contains(i) && names[*i].0 == *issuer) {
            Some(next) => order.push(next),
            None => break,
        }
    }
    let mut attributes = Attributes::new();
    attributes.set(Attribute::ActivationDate(kmip::DateTime::now()));
    attributes.set(Attribute::CryptographicUsageMask(0x1 | 0x8 | 0x20));
    attributes.set_user_tags(tags);
    let pkcs8 = Zeroizing::new(key_bag.key.as_der().to_vec());
    let key = import_one(
        client,
        Object::PrivateKey(PrivateKey {
            key_block: KeyBlock::plain(KeyFormatType::PKCS_8, pkcs8.to_vec()),
        }),
        attributes,
    )
    .await
    .context("importing the private key")?;
    // Certificates from the root down, each linked to its issuer; the leaf to the key.
    let mut ids = vec![String::new(); order.len()];
    for (position, index) in order.iter().enumerate().rev() {
        let mut attributes = Attributes::new();
        attributes.set_user_tags(tags);
        if let Some(issuer) = ids.get(position + 1).filter(|i| !i.is_empty()) {
            attributes.0.push(link(LinkType::CertificateLink, issuer));
        }
        if position == 0 {
            attributes.0.push(link(LinkType::PrivateKeyLink, &key));
        }
        ids[position] = import_one(
            client,
            Object::Certificate(Certificate {
                certificate_type: CertificateType::X_509,
                certificate_value: ders[*index].clone(),
            }),
            attributes,
        )
        .await
        .context("importing a certificate")?;
    }
    client
        .call(kms_client::op::AddAttribute::new(
            key.clone(),
            link(LinkType::CertificateLink, &ids[0]),
        ))
        .await
        .context("linking the key to its certificate")?;
    Ok((key, ids))
}
