//! PKCS#12 export: Get or Export with `KeyFormatType` PKCS_12 of a private key (or of a
//! certificate, for its private key) answers the key, its certificate and the chain of issuers
//! held here, in one PKCS#12 protected by a password.
//!
//! The password is a Secret Data object (type Password) the caller may `get`, named like a
//! wrapping key: `KeyWrappingSpecification` / `EncryptionKeyInformation` / `UniqueIdentifier`;
//! text there that names no object is the password itself (what Cosmian's clients send).
//! Modern algorithms by default (PBES2 with AES-256, HMAC-SHA-256 MAC); legacy ones (3DES, SHA-1
//! MAC, for old Java and Windows) when its `CryptographicParameters` name the DES3 algorithm.
//! The password is wiped after use and never logged.

use kmip::model::{
    CryptographicParameters, Get, Item, KeyBlock, Object, PrivateKey, UniqueIdentifier,
};
use kmip::{CryptographicAlgorithm, KeyFormatType, LinkType, ObjectType, Operation, Tag};
use kms_store::StoredObject;
use zeroize::Zeroizing;

use super::asymmetric;
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// The longest issuer chain followed.
const MAX_CHAIN: usize = 10;

fn link(stored: &StoredObject, link_type: LinkType) -> Option<UniqueIdentifier> {
    stored
        .attributes
        .links()
        .find(|l| l.link_type == link_type)
        .map(|l| l.linked_object_identifier.clone())
}

async fn load_as(
    kms: &Kms,
    ctx: &mut RequestContext,
    uid: UniqueIdentifier,
    operation: Operation,
) -> KResult<StoredObject> {
    let previous = ctx.operation.replace(operation);
    let loaded = kms.load(ctx, Some(uid)).await;
    ctx.operation = previous;
    loaded
}

fn der_of(cert: &StoredObject) -> KResult<Vec<u8>> {
    match &cert.object {
        Some(Object::Certificate(c)) => Ok(c.certificate_value.clone()),
        _ => Err(KmsError::InvalidRequest(format!(
            "object `{}` is not a certificate",
            cert.uid
        ))),
    }
}

/// The PKCS#12 of `stored` (a private key or a certificate) as a PrivateKey object.
pub async fn export(
    kms: &Kms,
    ctx: &mut RequestContext,
    stored: &StoredObject,
    request: &Get,
) -> KResult<Object> {
    let spec = request.key_wrapping_specification.as_ref().ok_or_else(|| {
        KmsError::MissingData(
            "a PKCS#12 needs a password: name a Secret Data (Password) object in the KeyWrappingSpecification's EncryptionKeyInformation".into(),
        )
    })?;
    let info = spec.child(Tag::ENCRYPTION_KEY_INFORMATION).ok_or_else(|| {
        KmsError::MissingData(
            "the KeyWrappingSpecification has no EncryptionKeyInformation naming the password"
                .into(),
        )
    })?;
    let password_uid = info
        .child(Tag::UNIQUE_IDENTIFIER)
        .map(UniqueIdentifier::from_ttlv)
        .transpose()?
        .ok_or_else(|| {
            KmsError::MissingData("the EncryptionKeyInformation names no password object".into())
        })?;
    let legacy = info
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .map(CryptographicParameters::from_ttlv)
        .transpose()?
        .and_then(|p| p.cryptographic_algorithm)
        == Some(CryptographicAlgorithm::DES3);
    // The password object; Cosmian's clients put the password itself in its place, so text
    // that names no object is the password.
    let password = match load_as(kms, ctx, password_uid.clone(), Operation::Get).await {
        Ok(secret) => {
            if secret.object_type != ObjectType::SecretData {
                return Err(KmsError::InvalidRequest(format!(
                    "object `{}` is a {:?}: the PKCS#12 password is a Secret Data object",
                    secret.uid, secret.object_type
                )));
            }
            Zeroizing::new(
                String::from_utf8(super::key_bytes(&secret)?.to_vec()).map_err(|_| {
                    KmsError::InvalidRequest("the PKCS#12 password is not UTF-8 text".into())
                })?,
            )
        }
        Err(KmsError::NotFound(_) | KmsError::NoneTagged(_)) => match password_uid {
            UniqueIdentifier::Text(text) => Zeroizing::new(text),
            _ => {
                return Err(KmsError::InvalidRequest(
                    "the PKCS#12 password is a Secret Data object, or text".into(),
                ));
            }
        },
        Err(e) => return Err(e),
    };
    // The private key and the leaf certificate, whichever was named.
    let (private, leaf) = match stored.object_type {
        ObjectType::PrivateKey => {
            let cert_uid = match link(stored, LinkType::CertificateLink) {
                Some(c) => Some(c),
                None => match link(stored, LinkType::PublicKeyLink) {
                    Some(p) => link(
                        &load_as(kms, ctx, p, Operation::Get).await?,
                        LinkType::CertificateLink,
                    ),
                    None => None,
                },
            };
            let cert_uid = cert_uid.ok_or_else(|| {
                KmsError::InvalidRequest(format!(
                    "private key `{}` has no certificate linked to it (CertificateLink, or its public key's): certify its public key first",
                    stored.uid
                ))
            })?;
            (
                stored.clone(),
                load_as(kms, ctx, cert_uid, Operation::Get).await?,
            )
        }
        ObjectType::Certificate => {
            let key_uid = link(stored, LinkType::PrivateKeyLink).ok_or_else(|| {
                KmsError::InvalidRequest(format!(
                    "certificate `{}` has no PrivateKeyLink: its private key is not held here",
                    stored.uid
                ))
            })?;
            (
                load_as(kms, ctx, key_uid, Operation::Export).await?,
                stored.clone(),
            )
        }
        other => {
            return Err(KmsError::KeyFormatNotSupported(format!(
                "PKCS_12 for a {other:?}: export a private key or its certificate"
            )));
        }
    };
    if private.attributes.extractable() == Some(false) {
        return Err(KmsError::NotExtractable(private.uid.clone()));
    }
    if private.attributes.sensitive() == Some(true) {
        return Err(KmsError::Sensitive(private.uid.clone()));
    }
    let (_, pkcs8) = asymmetric::private_key(&private)?;
    let mut chain = vec![der_of(&leaf)?];
    let mut current = leaf;
    while let Some(issuer) = link(&current, LinkType::CertificateLink) {
        if chain.len() >= MAX_CHAIN {
            break;
        }
        let next = load_as(kms, ctx, issuer, Operation::Get).await?;
        if next.uid == current.uid {
            break;
        }
        chain.push(der_of(&next)?);
        current = next;
    }

    let bad = |e: p12_keystore::error::Error| {
        KmsError::InvalidRequest(format!("the PKCS#12 cannot be made: {e}"))
    };
    let key = p12_keystore::PrivateKey::from_der(&pkcs8).map_err(bad)?;
    let certs = chain
        .iter()
        .map(|d| p12_keystore::Certificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let local_key_id = kms_crypto::sha256(&chain[0])[..20].to_vec();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        &private.uid,
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            local_key_id,
            key,
            certs,
        )),
    );
    let mut writer = store.writer(&password);
    if legacy {
        writer = writer
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1);
    }
    let p12 = writer.write().map_err(bad)?;
    Ok(Object::PrivateKey(PrivateKey {
        key_block: KeyBlock::plain(KeyFormatType::PKCS_12, p12),
    }))
}

/// The password a `PKCS_12PasswordLink` names: a Secret Data object, or the link's text itself
/// (what Cosmian's clients send). The link is taken out of the attributes: it is never stored.
async fn linked_password(
    kms: &Kms,
    ctx: &mut RequestContext,
    attributes: &mut kmip::model::Attributes,
) -> KResult<Zeroizing<String>> {
    let position = attributes.0.iter().position(|a| {
        matches!(a, kmip::model::Attribute::Link(l) if l.link_type == LinkType::PKCS_12PasswordLink)
    });
    let Some(kmip::model::Attribute::Link(link)) = position.map(|p| attributes.0.remove(p)) else {
        return Err(KmsError::MissingData(
            "a PKCS#12 is opened with its password: give a PKCS_12PasswordLink to a Secret Data object holding it".into(),
        ));
    };
    attributes.0.retain(|a| {
        !matches!(a, kmip::model::Attribute::Link(l) if l.link_type == LinkType::PKCS_12PasswordLink)
    });
    match load_as(
        kms,
        ctx,
        link.linked_object_identifier.clone(),
        Operation::Get,
    )
    .await
    {
        Ok(secret) if secret.object_type == ObjectType::SecretData => Ok(Zeroizing::new(
            String::from_utf8(super::key_bytes(&secret)?.to_vec()).map_err(|_| {
                KmsError::InvalidRequest("the PKCS#12 password is not UTF-8 text".into())
            })?,
        )),
        Ok(other) => Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}: the PKCS#12 password is a Secret Data object",
            other.uid, other.object_type
        ))),
        Err(KmsError::NotFound(_) | KmsError::NoneTagged(_)) => match link.linked_object_identifier
        {
            UniqueIdentifier::Text(text) => Ok(Zeroizing::new(text)),
            _ => Err(KmsError::InvalidRequest(
                "the PKCS#12 password is a Secret Data object, or text".into(),
            )),
        },
        Err(e) => Err(e),
    }
}

/// The certificates of a PKCS#12, leaf first, then each issuer by name.
fn chain_order(ders: &[Vec<u8>], leaf_hint: Option<usize>) -> KResult<Vec<usize>> {
    let names = ders
        .iter()
        .map(|d| {
            x509_parser::parse_x509_certificate(d)
                .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
                .map_err(|_| {
                    KmsError::InvalidRequest("the PKCS#12 holds a malformed certificate".into())
                })
        })
        .collect::<KResult<Vec<_>>>()?;
    let leaf = leaf_hint
        .or_else(|| {
            (0..names.len()).find(|i| {
                !names
                    .iter()
                    .enumerate()
                    .any(|(j, n)| j != *i && n.1 == names[*i].0)
            })
        })
        .unwrap_or(0);
    let mut order = vec![leaf];
    while order.len() < ders.len() {
        let (subject, issuer) = &names[order[order.len() - 1]];
        if subject == issuer {
            break;
        }
        match (0..names.len()).find(|i| !order.contains(i) && names[*i].0 == *issuer) {
            Some(next) => order.push(next),
            None => break,
        }
    }
    Ok(order)
}

/// A PKCS#12 being imported: the private key it holds (PKCS#8) replaces it in the request; its
/// certificates are saved beside it by [`store_chain`] once the key is.
pub struct Opened {
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// Opens a PKCS#12 given to Import or Register (a PrivateKey whose block is PKCS_12); `None`
/// for anything else.
pub async fn open(
    kms: &Kms,
    ctx: &mut RequestContext,
    object: &mut Object,
    attributes: &mut kmip::model::Attributes,
) -> KResult<Option<Opened>> {
    let Object::PrivateKey(key) = object else {
        return Ok(None);
    };
    if key.key_block.key_format_type != KeyFormatType::PKCS_12 {
        return Ok(None);
    }
    let data = match &key.key_block.key_value {
        Some(kmip::model::KeyValue::Plain(p)) => match &p.key_material {
            kmip::model::KeyMaterial::Bytes(b) => b.clone(),
            kmip::model::KeyMaterial::Structure(_) => {
                return Err(KmsError::InvalidRequest(
                    "a PKCS#12 key block holds the file's bytes".into(),
                ));
            }
        },
        _ => {
            return Err(KmsError::InvalidRequest(
                "a PKCS#12 key block holds the file's bytes".into(),
            ));
        }
    };
    let password = linked_password(kms, ctx, attributes).await?;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&data, &password).map_err(|_| {
        KmsError::InvalidRequest(
            "the PKCS#12 does not open with this password, or is malformed".into(),
        )
    })?;
    let [bag] = archive.keys.as_slice() else {
        return Err(KmsError::InvalidRequest(format!(
            "the PKCS#12 holds {} private keys; import files with exactly one",
            archive.keys.len()
        )));
    };
    let ders: Vec<Vec<u8>> = archive
        .certs
        .iter()
        .map(|c| c.cert.as_der().to_vec())
        .collect();
    if ders.is_empty() {
        return Err(KmsError::InvalidRequest(
            "the PKCS#12 holds no certificate".into(),
        ));
    }
    let hint = archive.certs.iter().position(|c| {
        c.local_key_id.is_some()
            && c.local_key_id.as_deref() == bag.local_key_id.as_ref().map(|k| k.0.as_slice())
    });
    let order = chain_order(&ders, hint)?;
    key.key_block = KeyBlock::plain(KeyFormatType::PKCS_8, bag.key.as_der().to_vec());
    // The key of a certificate signs and decrypts unless the client says otherwise.
    if attributes.cryptographic_usage_mask().is_none() {
        attributes.set(kmip::model::Attribute::CryptographicUsageMask(
            super::usage::SIGN | super::usage::DECRYPT | super::usage::UNWRAP_KEY,
        ));
    }
    Ok(Some(Opened {
        chain: order.into_iter().map(|i| ders[i].clone()).collect(),
    }))
}

/// Saves the certificates of an opened PKCS#12 (root first, each linked to its issuer, the leaf
/// to the key) and links the key to its certificate.
pub async fn store_chain(
    kms: &Kms,
    ctx: &mut RequestContext,
    key_uid: &str,
    opened: Opened,
) -> KResult<Vec<String>> {
    use kmip::model::{Attribute, Attributes, Certificate, Link};
    let mut ids = vec![String::new(); opened.chain.len()];
    for (position, der) in opened.chain.iter().enumerate().rev() {
        let object = Object::Certificate(Certificate {
            certificate_type: kmip::CertificateType::X_509,
            certificate_value: der.clone(),
        });
        let mut attributes = Attributes::new();
        if let Some(issuer) = ids.get(position + 1).filter(|i| !i.is_empty()) {
            attributes.0.push(Attribute::Link(Link {
                link_type: LinkType::CertificateLink,
                linked_object_identifier: issuer.clone().into(),
            }));
        }
        if position == 0 {
            attributes.0.push(Attribute::Link(Link {
                link_type: LinkType::PrivateKeyLink,
                linked_object_identifier: key_uid.to_owned().into(),
            }));
        }
        super::certificate::derive_attributes(&object, &mut attributes)?;
        let uid = super::new_uid(&attributes)?;
        let stored = super::new_stored_object(ctx, uid, object, attributes, kmip::State::Active)?;
        let placeholder = ctx.placeholder.clone();
        ids[position] = super::insert(kms, ctx, stored).await?;
        ctx.placeholder = placeholder;
    }
    let leaf = ids[0].clone();
    kms.modify(ctx, Some(key_uid.to_owned().into()), |k| {
        k.attributes.0.push(Attribute::Link(Link {
            link_type: LinkType::CertificateLink,
            linked_object_identifier: leaf.clone().into(),
        }));
        Ok(())
    })
    .await?;
    Ok(ids)
}
