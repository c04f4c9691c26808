//! Import: an object with its attributes under the identifier the client chooses (a new one
//! when it gives an empty identifier), replacing an existing one when asked
//! (`ReplaceExisting`). Imported keys are active unless their attributes say otherwise.

use kmip::model::{Import, UidResponse};
use kmip::{KeyWrapType, State};

use super::{check_registrable, new_stored_object, new_uid, wrapping};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext, resolve_uid};

pub async fn import(kms: &Kms, ctx: &mut RequestContext, request: Import) -> KResult<UidResponse> {
    let mut request = request;
    let uid = match resolve_uid(ctx, Some(request.unique_identifier.clone()))? {
        uid if uid.is_empty() => new_uid(&request.attributes)?,
        uid => uid,
    };
    // A wrapped key is unwrapped when the client asks for it unwrapped (KeyWrapType
    // NotWrapped), and otherwise kept wrapped as given.
    if request.key_wrap_type == Some(KeyWrapType::NotWrapped)
        && wrapping::is_wrapped(&request.object)
    {
        wrapping::unwrap(kms, ctx, &uid, &mut request.object).await?;
    }
    // A PKCS#12: its private key is what is saved under this identifier, its certificates
    // beside it.
    let opened =
        super::pkcs12::open(kms, ctx, &mut request.object, &mut request.attributes).await?;
    check_registrable(request.object_type, &request.object)?;
    super::asymmetric::complete(&mut request.object)?;
    super::certificate::derive_attributes(&request.object, &mut request.attributes)?;
    let state = request.attributes.state().unwrap_or(State::Active);
    let stored = new_stored_object(ctx, uid.clone(), request.object, request.attributes, state)?;
    match kms.store.get(&uid).await? {
        Some(_) if request.replace_existing == Some(true) => {
            // Replaced whole, through the read-change-write (ownership check, lost races rerun).
            kms.modify(ctx, Some(uid.clone().into()), |existing| {
                let (revision, owner) = (existing.revision, existing.owner.clone());
                *existing = stored.clone();
                // A grantee with the `import` right replaces the object, not its owner.
                existing.revision = revision;
                existing.owner = owner;
                Ok(())
            })
            .await?;
        }
        Some(existing) => {
            // Only someone who may see the object learns that the identifier is taken.
            kms.authorize(ctx, &existing).await?;
            return Err(KmsError::AlreadyExists(uid));
        }
        None => {
            super::require_may_create(ctx)?;
            kms.store.create(stored).await?
        }
    }
    if let Some(opened) = opened {
        super::pkcs12::store_chain(kms, ctx, &uid, opened).await?;
    }
    ctx.placeholder = Some(uid.clone());
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}
