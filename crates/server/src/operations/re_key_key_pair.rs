//! ReKeyKeyPair: a new key pair replacing an existing one (named by its private key), of the
//! same kind, with the old keys' attributes, dates moved by `Offset`, names moved over, and
//! replacement links both ways for each half. The old keys keep their state.

use kmip::model::{CreateKeyPairResponse, ReKeyKeyPair};
use kmip::{LinkType, ObjectType};
use kms_crypto::asymmetric::KeyKind;

use super::asymmetric::private_key;
use super::create_key_pair::{merged, store_pair};
use super::re_key::{hand_over, require_material, successor_attributes};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn re_key_key_pair(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: ReKeyKeyPair,
) -> KResult<CreateKeyPairResponse> {
    super::require_may_create(ctx)?;
    let old_private = kms.load(ctx, request.private_key_unique_identifier).await?;
    if old_private.object_type != ObjectType::PrivateKey {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}: ReKeyKeyPair names the private key of the pair to replace",
            old_private.uid, old_private.object_type
        )));
    }
    require_material(&old_private)?;
    let (kind, _) = private_key(&old_private)?;
    let public_uid = old_private
        .attributes
        .links()
        .find(|l| l.link_type == LinkType::PublicKeyLink)
        .and_then(|l| l.linked_object_identifier.as_text().map(str::to_owned))
        .ok_or_else(|| {
            KmsError::InvalidRequest(format!(
                "private key `{}` has no PublicKeyLink: its public key is unknown",
                old_private.uid
            ))
        })?;
    let old_public = kms.load(ctx, Some(public_uid.into())).await?;
    let offset = request.offset.map(|o| o.0);
    let common = request.common_attributes.unwrap_or_default();
    let given_private = merged(&common, request.private_key_attributes);
    let given_public = merged(&common, request.public_key_attributes);
    let private_attributes = successor_attributes(&old_private, offset, Some(given_private))?;
    let public_attributes = successor_attributes(&old_public, offset, Some(given_public))?;
    let bits = match kind {
        KeyKind::Rsa => old_private
            .attributes
            .cryptographic_length()
            .and_then(|l| u32::try_from(l).ok())
            .unwrap_or(2048),
        other => other.fixed_bits().unwrap_or(0),
    };
    let (new_private, new_public) =
        store_pair(kms, ctx, kind, bits, private_attributes, public_attributes).await?;
    hand_over(kms, ctx, &old_private.uid, &new_private).await?;
    hand_over(kms, ctx, &old_public.uid, &new_public).await?;
    ctx.placeholder = Some(new_private.clone());
    Ok(CreateKeyPairResponse {
        private_key_unique_identifier: new_private.into(),
        public_key_unique_identifier: new_public.into(),
    })
}
