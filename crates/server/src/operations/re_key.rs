//! ReKey: a new symmetric key replacing an existing one, with its attributes (KMIP 2.1 §6.1.45):
//! fresh material, the dates moved by `Offset`, the names moved over, and replacement links
//! both ways. The old key keeps its state.

use kmip::model::{Attribute, Attributes, Link, ReKey, UidResponse};
use kmip::{DateTime, LinkType, ObjectType, State, Tag};
use kms_store::StoredObject;

use super::{insert, is_multi_valued, new_stored_object, new_uid};
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

pub async fn re_key(kms: &Kms, ctx: &mut RequestContext, request: ReKey) -> KResult<UidResponse> {
    super::require_may_create(ctx)?;
    let old = kms.load(ctx, request.unique_identifier).await?;
    if old.object_type != ObjectType::SymmetricKey {
        return Err(KmsError::InvalidRequest(format!(
            "object `{}` is a {:?}: ReKey replaces symmetric keys (ReKeyKeyPair replaces key pairs)",
            old.uid, old.object_type
        )));
    }
    require_material(&old)?;
    let attributes = successor_attributes(&old, request.offset.map(|o| o.0), request.attributes)?;
    let (object, attributes) = super::create::symmetric_key(attributes)?;
    let uid = new_uid(&attributes)?;
    let new = new_stored_object(ctx, uid, object, attributes, State::PreActive)?;
    let uid = insert(kms, ctx, new).await?;
    hand_over(kms, ctx, &old.uid, &uid).await?;
    ctx.placeholder = Some(uid.clone());
    Ok(UidResponse {
        unique_identifier: uid.into(),
    })
}

/// A destroyed key has no material to replace.
pub fn require_material(old: &StoredObject) -> KResult<()> {
    if old.object.is_none() || matches!(old.state, State::Destroyed | State::DestroyedCompromised) {
        return Err(KmsError::WrongState {
            uid: old.uid.clone(),
            state: crate::kms::state_name(old.state),
            action: "a destroyed key cannot be replaced".into(),
        });
    }
    Ok(())
}

/// Attributes the successor of a key does not inherit: the server's own, and those the new
/// key gets afresh.
fn inherited(attribute: &Attribute) -> bool {
    !matches!(
        attribute.tag(),
        Tag::UNIQUE_IDENTIFIER
            | Tag::STATE
            | Tag::INITIAL_DATE
            | Tag::LAST_CHANGE_DATE
            | Tag::ACTIVATION_DATE
            | Tag::DEACTIVATION_DATE
            | Tag::PROCESS_START_DATE
            | Tag::PROTECT_STOP_DATE
            | Tag::DESTROY_DATE
            | Tag::COMPROMISE_DATE
            | Tag::COMPROMISE_OCCURRENCE_DATE
            | Tag::REVOCATION_REASON
            | Tag::ARCHIVE_DATE
            | Tag::DIGEST
            | Tag::FRESH
            | Tag::LINK
            | Tag::KEY_VALUE_PRESENT
            | Tag::ALWAYS_SENSITIVE
            | Tag::NEVER_EXTRACTABLE
            | Tag::ORIGINAL_CREATION_DATE
            | Tag::RANDOM_NUMBER_GENERATOR
            | Tag::KEY_FORMAT_TYPE
    )
}

/// The attributes of the successor of `old`: its own (names included), the dates moved by
/// `offset` (KMIP: activation = now + offset, the other dates keep their distance to the
/// activation), and `given` over them.
pub fn successor_attributes(
    old: &StoredObject,
    offset: Option<u32>,
    given: Option<Attributes>,
) -> KResult<Attributes> {
    let now = DateTime::now();
    let mut out = Attributes(
        old.attributes
            .0
            .iter()
            .filter(|a| inherited(a))
            .cloned()
            .collect(),
    );
    let old_activation = old.attributes.activation_date();
    let activation = match (offset, old_activation) {
        (Some(o), _) => Some(DateTime(now.0 + i64::from(o))),
        (None, Some(_)) => Some(now),
        (None, None) => None,
    };
    if let Some(activation) = activation {
        out.set(Attribute::ActivationDate(activation));
        if let Some(old_activation) = old_activation {
            let shift = |d: DateTime| DateTime(activation.0 + (d.0 - old_activation.0));
            if let Some(d) = old.attributes.deactivation_date() {
                out.set(Attribute::DeactivationDate(shift(d)));
            }
            if let Some(d) = old.attributes.process_start_date() {
                out.set(Attribute::ProcessStartDate(shift(d)));
            }
            if let Some(d) = old.attributes.protect_stop_date() {
                out.set(Attribute::ProtectStopDate(shift(d)));
            }
        }
    }
    for attribute in given.map(|a| a.0).unwrap_or_default() {
        if super::is_read_only(attribute.tag()) && attribute.tag() != Tag::UNIQUE_IDENTIFIER {
            return Err(KmsError::AttributeReadOnly(super::attribute_name(
                &attribute,
            )));
        }
        if is_multi_valued(&attribute) {
            out.0.push(attribute);
        } else {
            out.set(attribute);
        }
    }
    Ok(out)
}

/// After the successor `new` of `old` is saved: the names leave the old key, and each points to
/// the other (ReplacementObjectLink, ReplacedObjectLink).
pub async fn hand_over(kms: &Kms, ctx: &mut RequestContext, old: &str, new: &str) -> KResult<()> {
    let operation = ctx.operation;
    kms.modify(ctx, Some(old.to_owned().into()), |o| {
        o.attributes.remove(Tag::NAME);
        o.attributes.0.push(Attribute::Link(Link {
            link_type: LinkType::ReplacementObjectLink,
            linked_object_identifier: new.to_owned().into(),
        }));
        Ok(())
    })
    .await?;
    kms.modify(ctx, Some(new.to_owned().into()), |n| {
        n.attributes.0.push(Attribute::Link(Link {
            link_type: LinkType::ReplacedObjectLink,
            linked_object_identifier: old.to_owned().into(),
        }));
        Ok(())
    })
    .await?;
    ctx.operation = operation;
    Ok(())
}
