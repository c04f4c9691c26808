//! Access rights: the owner of an object may do everything with it and alone grants or revokes
//! rights on it, one KMIP operation at a time, to a user or to `*` (every user). Every operation
//! that names an object is checked here (through [`Kms::load`]), before the object is touched.
//!
//! A user with no right at all on an object gets the answer given for an object that does not
//! exist, so identifiers cannot be probed; a user with some right but not the one asked for gets
//! `PermissionDenied`.

use kmip::Operation;
use kms_store::{Grant, Obtained, StoredObject};

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// The right an operation on an object needs: the operation's name in snake case. `None` for
/// operations that name no object.
pub fn right_of(operation: Operation) -> Option<&'static str> {
    Some(match operation {
        Operation::Get => "get",
        Operation::Export => "export",
        Operation::GetAttributes => "get_attributes",
        Operation::GetAttributeList => "get_attribute_list",
        Operation::AddAttribute => "add_attribute",
        Operation::SetAttribute => "set_attribute",
        Operation::ModifyAttribute => "modify_attribute",
        Operation::DeleteAttribute => "delete_attribute",
        Operation::Activate => "activate",
        Operation::Revoke => "revoke",
        Operation::Destroy => "destroy",
        Operation::Encrypt => "encrypt",
        Operation::Decrypt => "decrypt",
        Operation::MAC => "mac",
        Operation::MACVerify => "mac_verify",
        Operation::Check => "check",
        Operation::Import => "import",
        Operation::Sign => "sign",
        Operation::SignatureVerify => "signature_verify",
        Operation::ReKey | Operation::ReKeyKeyPair => "rekey",
        Operation::DeriveKey => "derive_key",
        _ => return None,
    })
}

/// The rights that may be granted: one per operation on an object, and `locate` (the object
/// shows in the grantee's Locate answers; any right does that too).
pub const GRANTABLE: &[&str] = &[
    "get",
    "export",
    "get_attributes",
    "get_attribute_list",
    "add_attribute",
    "set_attribute",
    "modify_attribute",
    "delete_attribute",
    "activate",
    "revoke",
    "destroy",
    "encrypt",
    "decrypt",
    "mac",
    "mac_verify",
    "check",
    "import",
    "sign",
    "signature_verify",
    "rekey",
    "derive_key",
    "locate",
];

/// Checks and normalizes the rights of a grant or revoke request.
fn checked_operations(operations: &[String]) -> KResult<Vec<String>> {
    if operations.is_empty() {
        return Err(KmsError::InvalidRequest(
            "name at least one operation to grant or revoke".into(),
        ));
    }
    let mut out = Vec::with_capacity(operations.len());
    for op in operations {
        let name = op.trim().to_ascii_lowercase().replace('-', "_");
        if !GRANTABLE.contains(&name.as_str()) {
            return Err(KmsError::InvalidRequest(format!(
                "`{op}` is not an operation that can be granted; use one of: {}",
                GRANTABLE.join(", ")
            )));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn checked_user(user: &str) -> KResult<()> {
    if user.trim().is_empty() {
        return Err(KmsError::InvalidRequest(
            "the user_id to grant to is empty; name a user, or `*` for every user".into(),
        ));
    }
    Ok(())
}

impl Kms {
    /// Checks that `ctx.user` may run `ctx.operation` on `object`: its owner may do anything;
    /// anyone else needs that operation granted to them or to `*`.
    pub async fn authorize(&self, ctx: &RequestContext, object: &StoredObject) -> KResult<()> {
        if object.owner == ctx.user {
            return Ok(());
        }
        let rights = self.store.rights(&object.uid, &ctx.user).await?;
        if rights.is_empty() {
            tracing::info!(
                request_id = %ctx.request_id,
                user = %ctx.user,
                operation = ?ctx.operation,
                uid = %object.uid,
                "access denied: no right on the object"
            );
            return Err(KmsError::NotFound(object.uid.clone()));
        }
        let needed = ctx.operation.and_then(right_of);
        if needed.is_some_and(|n| rights.iter().any(|r| r == n)) {
            return Ok(());
        }
        tracing::info!(
            request_id = %ctx.request_id,
            user = %ctx.user,
            operation = ?ctx.operation,
            uid = %object.uid,
            "access denied: operation not granted"
        );
        Err(KmsError::PermissionDenied(format!(
            "user `{}` may not {} object `{}`; its owner can grant that right",
            ctx.user,
            needed.unwrap_or("use"),
            object.uid
        )))
    }

    /// `object`'s attributes as `ctx.user` may see them: for anyone but the owner, without the
    /// links to objects that user has no right on (they would reveal their identifiers).
    pub async fn visible_attributes(
        &self,
        ctx: &RequestContext,
        object: &StoredObject,
        attributes: kmip::model::Attributes,
    ) -> KResult<kmip::model::Attributes> {
        if object.owner == ctx.user || attributes.links().next().is_none() {
            return Ok(attributes);
        }
        let mut out = Vec::with_capacity(attributes.0.len());
        for attribute in attributes.0 {
            if let kmip::model::Attribute::Link(link) = &attribute {
                let Some(target) = link.linked_object_identifier.as_text() else {
                    continue;
                };
                let visible = match self.store.get(target).await? {
                    Some(o) if o.owner == ctx.user => true,
                    Some(_) => !self.store.rights(target, &ctx.user).await?.is_empty(),
                    None => false,
                };
                if !visible {
                    continue;
                }
            }
            out.push(attribute);
        }
        Ok(kmip::model::Attributes(out))
    }

    /// The object `uid` for a rights request, which only its owner may make.
    async fn owned_by_caller(&self, ctx: &RequestContext, uid: &str) -> KResult<StoredObject> {
        // The HSM admins manage the rights on HSM keys, whoever created them.
        if self.is_hsm_admin_of(ctx, uid)
            && let Some(Ok(r)) = kms_hsm::HsmRef::parse(uid)
        {
            let mut record = self.hsm_record(&ctx.user, &r).await?;
            record.owner = ctx.user.clone();
            return Ok(record);
        }
        let object = self
            .store
            .get(uid)
            .await?
            .ok_or_else(|| KmsError::NotFound(uid.to_owned()))?;
        if object.owner == ctx.user {
            return Ok(object);
        }
        // Someone with rights learns that the object exists, not who else may use it.
        if self.store.rights(uid, &ctx.user).await?.is_empty() {
            return Err(KmsError::NotFound(uid.to_owned()));
        }
        Err(KmsError::PermissionDenied(format!(
            "only the owner of object `{uid}` manages its rights"
        )))
    }

    /// Grants `operations` on `uid` to `user` (or `*`); the caller must own the object.
    pub async fn grant_access(
        &self,
        ctx: &RequestContext,
        uid: &str,
        user: &str,
        operations: &[String],
    ) -> KResult<()> {
        self.change_access(ctx, uid, user, operations, true).await
    }

    /// Takes `operations` on `uid` back from `user`; the caller must own the object.
    pub async fn revoke_access(
        &self,
        ctx: &RequestContext,
        uid: &str,
        user: &str,
        operations: &[String],
    ) -> KResult<()> {
        self.change_access(ctx, uid, user, operations, false).await
    }

    async fn change_access(
        &self,
        ctx: &RequestContext,
        uid: &str,
        user: &str,
        operations: &[String],
        grant: bool,
    ) -> KResult<()> {
        checked_user(user)?;
        let operations = checked_operations(operations)?;
        let object = self.owned_by_caller(ctx, uid).await?;
        if grant {
            if user == object.owner {
                return Err(KmsError::InvalidRequest(format!(
                    "`{user}` owns object `{uid}` and may do everything with it already"
                )));
            }
            self.store.grant(uid, user, &operations).await?;
        } else {
            self.store.revoke_grant(uid, user, &operations).await?;
        }
        let change = if grant {
            "rights granted"
        } else {
            "rights revoked"
        };
        tracing::info!(request_id = %ctx.request_id, owner = %ctx.user, %uid, grantee = %user, ?operations, "{change}");
        Ok(())
    }

    /// The rights granted on `uid`; the caller must own the object.
    pub async fn list_access(&self, ctx: &RequestContext, uid: &str) -> KResult<Vec<Grant>> {
        self.owned_by_caller(ctx, uid).await?;
        Ok(self.store.grants(uid).await?)
    }

    /// The objects the caller owns (not destroyed ones).
    pub async fn owned(&self, ctx: &RequestContext) -> KResult<Vec<StoredObject>> {
        let uids = self
            .store
            .locate(&kms_store::LocateQuery {
                owner: Some(ctx.user.clone()),
                ..Default::default()
            })
            .await?;
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if let Some(o) = self.store.get(&uid).await? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// The objects others granted the caller rights on (directly or through `*`).
    pub async fn obtained(&self, ctx: &RequestContext) -> KResult<Vec<Obtained>> {
        Ok(self.store.obtained(&ctx.user).await?)
    }
}
