//! Locate: the identifiers of the objects the user owns or holds a right on, matching every
//! attribute given.

use kmip::model::{Attribute, Locate, LocateResponse};
use kms_store::LocateQuery;

use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};

/// The value of a date attribute a Locate may range over.
fn date_value(a: &Attribute) -> Option<kmip::DateTime> {
    match a {
        Attribute::InitialDate(d)
        | Attribute::ActivationDate(d)
        | Attribute::ProcessStartDate(d)
        | Attribute::ProtectStopDate(d)
        | Attribute::DeactivationDate(d)
        | Attribute::DestroyDate(d)
        | Attribute::CompromiseOccurrenceDate(d)
        | Attribute::CompromiseDate(d)
        | Attribute::ArchiveDate(d)
        | Attribute::LastChangeDate(d)
        | Attribute::OriginalCreationDate(d) => Some(*d),
        _ => None,
    }
}

pub async fn locate(
    kms: &Kms,
    ctx: &mut RequestContext,
    request: Locate,
) -> KResult<LocateResponse> {
    let mut query = LocateQuery {
        visible_to: Some(ctx.user.clone()),
        ..LocateQuery::default()
    };
    if let Some(attributes) = &request.attributes {
        query.tags = attributes.user_tags()?;
        // Two instances of a date attribute give an inclusive range; one, an exact date.
        let mut seen: Vec<kmip::Tag> = Vec::new();
        for a in attributes.0.iter().filter(|a| date_value(a).is_some()) {
            let tag = a.tag();
            if seen.contains(&tag) {
                continue;
            }
            seen.push(tag);
            let all: Vec<kmip::DateTime> = attributes
                .0
                .iter()
                .filter(|x| x.tag() == tag)
                .filter_map(date_value)
                .collect();
            let (from, to) = match all.as_slice() {
                [one] => (*one, *one),
                [first, second] => ((*first).min(*second), (*first).max(*second)),
                _ => {
                    return Err(KmsError::InvalidRequest(format!(
                        "Locate takes one date or two (a range) for {tag}, not {}",
                        all.len()
                    )));
                }
            };
            query.dates.push(kms_store::DateRange { tag, from, to });
        }
        for a in &attributes.0 {
            if date_value(a).is_some() {
                continue;
            }
            match a {
                Attribute::ObjectType(t) => query.object_type = Some(*t),
                Attribute::State(s) => query.state = Some(*s),
                Attribute::CryptographicAlgorithm(alg) => query.algorithm = Some(*alg),
                Attribute::CryptographicLength(l) => query.length = Some(*l),
                Attribute::Name(n) => query.names.push(n.name_value.clone()),
                Attribute::ObjectGroup(g) => query.object_groups.push(g.clone()),
                Attribute::UniqueIdentifier(u) => query.uid = u.as_text().map(str::to_owned),
                // User tags are matched above, through the tags index.
                Attribute::VendorAttribute(v)
                    if v.vendor_identification == kmip::model::COSMIAN_VENDOR
                        && v.attribute_name == kmip::model::TAG_ATTRIBUTE_NAME => {}
                Attribute::CryptographicUsageMask(m) => query.usage_mask = Some(*m),
                // Any other attribute: the object must have an equal one.
                other => query.equal.push(other.clone()),
            }
        }
    }
    // Destroyed objects are in "destroyed storage": found only when the storage status mask
    // includes it or the state is asked for explicitly.
    const DESTROYED_STORAGE: i32 = 0x4;
    query.include_destroyed = request
        .storage_status_mask
        .is_some_and(|m| m & DESTROYED_STORAGE != 0)
        || query.state.is_some();
    let mut all = kms.store.locate(&query).await?;
    if kms.hsm.is_some() {
        for uid in super::hsm::locate_hsm(kms, ctx, &query).await? {
            if !all.contains(&uid) {
                all.push(uid);
            }
        }
    }
    let total = all.len();
    let offset = request.offset_items.unwrap_or(0).max(0) as usize;
    let max = request
        .maximum_items
        .filter(|m| *m > 0)
        .map(|m| m as usize)
        .unwrap_or(usize::MAX);
    let page: Vec<String> = all.into_iter().skip(offset).take(max).collect();
    // The next operations of the batch work on the first object found (KMIP 2.1 §6.1.27:
    // Locate sets the ID Placeholder), e.g. Locate then Get without an identifier.
    if let Some(first) = page.first() {
        ctx.placeholder = Some(first.clone());
    }
    let page: Vec<_> = page.into_iter().map(Into::into).collect();
    // LocatedItems tells a paging client how many there are in all; without paging it is left out.
    let paging = request.maximum_items.is_some() || request.offset_items.is_some();
    Ok(LocateResponse {
        located_items: paging.then_some(total as i32),
        unique_identifier: page,
    })
}
