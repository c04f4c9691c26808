//! PKCS#12 export: Get or Export with `KeyFormatType` PKCS_12 of a private key (or of a
//! certificate, for its private key) answers the key, its certificate and the chain of issuers
//! held here, in one PKCS#12 protected by a password.
//!
//! The password is a Secret Data object (type Password) the caller may `get`, named like a
//! wrapping key: `KeyWrappingSpecification` / `EncryptionKeyInformation` / `UniqueIdentifier`.
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
    let secret = load_as(kms, ctx, password_uid, Operation::Get).await?;
    if secret.object_type != ObjectType::SecretData {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}: the PKCS#12 password is a Secret Data object",
            secret.uid, secret.object_type
        )));
    }
    let password = Zeroizing::new(
        String::from_utf8(super::key_bytes(&secret)?.to_vec()).map_err(|_| {
            KmsError::InvalidRequest("the PKCS#12 password is not UTF-8 text".into())
        })?,
    );

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
