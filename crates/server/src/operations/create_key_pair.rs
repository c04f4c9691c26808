//! CreateKeyPair: a private key and its public key, generated together and linked both ways.

use kmip::model::{
    Attribute, Attributes, CreateKeyPair, CreateKeyPairResponse, Link, Object, PrivateKey,
    PublicKey,
};
use kmip::{DateTime, LinkType, State, Tag};
use kms_crypto::asymmetric::{KeyKind, generate_key_pair};

use super::asymmetric::{
    algorithm_of, key_block, kind_for_create, private_format, private_material, public_format,
    public_material,
};
use super::{insert, is_multi_valued, new_stored_object, new_uid, usage};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn create_key_pair(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: CreateKeyPair,
) -> KResult<CreateKeyPairResponse> {
    super::require_may_create(ctx)?;
    let common = request.common_attributes.unwrap_or_default();
    let private_attributes = merged(&common, request.private_key_attributes);
    let public_attributes = merged(&common, request.public_key_attributes);
    let (kind, rsa_bits) = kind_for_create(&private_attributes)?;
    let (private_uid, public_uid) = store_pair(
        kms,
        ctx,
        kind,
        rsa_bits,
        private_attributes,
        public_attributes,
    )
    .await?;
    // The batch's ID placeholder names the private key.
    ctx.placeholder = Some(private_uid.clone());
    Ok(CreateKeyPairResponse {
        private_key_unique_identifier: private_uid.into(),
        public_key_unique_identifier: public_uid.into(),
    })
}

/// Generates a key pair of `kind` and saves both halves with these attributes, linked both
/// ways; answers (private, public) identifiers. Both are saved or neither.
pub async fn store_pair(
    kms: &Kms,
    ctx: &mut RequestContext,
    kind: KeyKind,
    rsa_bits: u32,
    mut private_attributes: Attributes,
    mut public_attributes: Attributes,
) -> KResult<(String, String)> {
    // RSA generation takes from milliseconds to seconds: off the request threads.
    let pair = tokio::task::spawn_blocking(move || generate_key_pair(kind, rsa_bits))
        .await
        .map_err(|e| KmsError::InvalidRequest(format!("key generation stopped: {e}")))??;
    let algorithm = private_attributes
        .cryptographic_algorithm()
        .unwrap_or_else(|| algorithm_of(kind));
    let (private_usage, public_usage) = default_usage(kind);
    let now = DateTime::now();
    for (attributes, mask) in [
        (&mut private_attributes, private_usage),
        (&mut public_attributes, public_usage),
    ] {
        attributes.set(Attribute::CryptographicAlgorithm(algorithm));
        attributes.set(Attribute::CryptographicLength(
            i32::try_from(pair.bits).unwrap_or(0),
        ));
        if attributes.cryptographic_usage_mask().is_none() {
            attributes.set(Attribute::CryptographicUsageMask(mask));
        }
        if !attributes.has(Tag::ORIGINAL_CREATION_DATE) {
            attributes.set(Attribute::OriginalCreationDate(now));
        }
        attributes.set(Attribute::Other(super::create::random_number_generator()));
    }
    let private_uid = new_uid(&private_attributes)?;
    let public_uid = new_uid(&public_attributes)?;
    if private_uid == public_uid {
        return Err(KmsError::InvalidRequest(
            "the private and the public key need different UniqueIdentifiers".into(),
        ));
    }
    private_attributes.0.push(Attribute::Link(Link {
        link_type: LinkType::PublicKeyLink,
        linked_object_identifier: public_uid.clone().into(),
    }));
    public_attributes.0.push(Attribute::Link(Link {
        link_type: LinkType::PrivateKeyLink,
        linked_object_identifier: private_uid.clone().into(),
    }));
    let private_format = private_format(kind);
    let public_format = public_format(kind);
    private_attributes.set(Attribute::KeyFormatType(private_format));
    public_attributes.set(Attribute::KeyFormatType(public_format));
    let private = Object::PrivateKey(PrivateKey {
        key_block: key_block(
            private_format,
            private_material(kind, &pair.private, private_format)?,
            algorithm,
            pair.bits,
        ),
    });
    let public = Object::PublicKey(PublicKey {
        key_block: key_block(
            public_format,
            public_material(kind, &pair.public, public_format)?,
            algorithm,
            pair.bits,
        ),
    });
    let private = new_stored_object(
        ctx,
        private_uid,
        private,
        private_attributes,
        State::PreActive,
    )?;
    let public = new_stored_object(ctx, public_uid, public, public_attributes, State::PreActive)?;
    let public_uid = insert(kms, ctx, public).await?;
    // Both or neither: a private key whose public half could not be saved is removed again.
    let private_uid = match insert(kms, ctx, private).await {
        Ok(uid) => uid,
        Err(e) => {
            if let Err(cleanup) = kms.store.delete(&public_uid).await {
                tracing::warn!(request_id = %ctx.request_id, uid = %public_uid, error = %cleanup, "could not remove the public key of a failed CreateKeyPair");
            }
            return Err(e);
        }
    };
    Ok((private_uid, public_uid))
}

/// `specific` over `common`: single-valued attributes replace, multi-valued ones add.
pub fn merged(common: &Attributes, specific: Option<Attributes>) -> Attributes {
    let mut out = common.clone();
    for attribute in specific.map(|a| a.0).unwrap_or_default() {
        if is_multi_valued(&attribute) {
            out.0.push(attribute);
        } else {
            out.set(attribute);
        }
    }
    out
}

/// What each half of a new pair may do when the client does not say.
fn default_usage(kind: KeyKind) -> (i32, i32) {
    use usage::*;
    match kind {
        KeyKind::Rsa | KeyKind::Ec(_) => (SIGN | DECRYPT | UNWRAP_KEY, VERIFY | ENCRYPT | WRAP_KEY),
        KeyKind::Ed25519 | KeyKind::MlDsa(_) => (SIGN, VERIFY),
        KeyKind::X25519 | KeyKind::MlKem(_) => (DECRYPT | UNWRAP_KEY, ENCRYPT | WRAP_KEY),
    }
}
