//! Whole KMIP request messages: batch items in order, the ID placeholder carried between them,
//! BatchErrorContinuationOption (Stop, Continue, Undo with its journal), MaximumResponseSize, and
//! the server's own limits on items per batch and response size. It runs each item through
//! [`Kms::dispatch`] and knows nothing of any particular operation but what the operation table
//! in [`crate::operations`] says of it.

use kmip::model::{
    RequestMessage, ResponseBatchItem, ResponseHeader, ResponseMessage, ResponsePayload,
};
use kmip::{BatchErrorContinuationOption, DateTime, ResultStatus};
use kms_store::StoredObject;

use crate::error::KmsError;
use crate::kms::{Kms, RequestContext};
use crate::operations::{self, Effect};

/// Processes a request message: each batch item in order, stopping at the first failure unless
/// the client asked to continue (or to undo what the batch did).
pub async fn process(
    kms: &Kms,
    mut ctx: RequestContext,
    request: RequestMessage,
) -> ResponseMessage {
    let header = &request.request_header;
    let (major, minor) = (
        header.protocol_version.protocol_version_major,
        header.protocol_version.protocol_version_minor,
    );
    let continuation = header.batch_error_continuation_option;
    let maximum_response_size = header.maximum_response_size;
    let correlation = header.client_correlation_value.clone();
    let respond = |items: Vec<ResponseBatchItem>| ResponseMessage {
        response_header: ResponseHeader {
            client_correlation_value: correlation.clone(),
            ..ResponseHeader::new(major, minor, DateTime::now(), items.len() as i32)
        },
        batch_item: items,
    };

    // Refused before any work: a batch longer than the server allows.
    if request.batch_item.len() > kms.limits.max_batch_items {
        let error = KmsError::TooManyBatchItems {
            count: request.batch_item.len(),
            max: kms.limits.max_batch_items,
        };
        tracing::info!(request_id = %ctx.request_id, user = %ctx.user, error = %error, "request refused");
        return respond(vec![ResponseBatchItem::failure(
            None,
            None,
            error.reason(),
            error.to_string(),
        )]);
    }

    ctx.kmip_1 = major < 2;
    let undo = continuation == Some(BatchErrorContinuationOption::Undo);
    let continue_on_error = continuation == Some(BatchErrorContinuationOption::Continue);
    let mut journal = UndoJournal::default();
    let mut items = Vec::with_capacity(request.batch_item.len());
    for item in request.batch_item {
        let op = item.operation;
        let id = item.unique_batch_item_id.clone();
        let effect = operations::effect(&item.request_payload);
        let mut target = match undo.then(|| operations::target(&item.request_payload)) {
            Some(Some(named)) => kms.resolve(&ctx, named.cloned()).await.ok(),
            _ => None,
        };
        // An Import without identifier creates its object.
        let effect = match target.as_deref() {
            Some("") => {
                target = None;
                Some(Effect::Creates)
            }
            _ => effect,
        };
        if let Some(uid) = &target {
            journal.remember(kms, uid).await;
        }
        // Each answer is encoded once, here: measured against the size limits, then kept
        // encoded (`ResponsePayload::Other`) and moved into the response tree.
        let result = kms
            .dispatch(&mut ctx, item.request_payload)
            .await
            .and_then(|payload| {
                let encoded = payload.encode();
                let size = kmip::binary::encoded_len(&encoded);
                if let Some(max) = maximum_response_size
                    && size > max.max(0) as usize
                {
                    return Err(KmsError::ResponseTooLarge { size, max });
                }
                if size > ctx.response_budget {
                    return Err(KmsError::ResponseBudgetExceeded {
                        max: kms.limits.max_response_size,
                    });
                }
                ctx.response_budget -= size;
                Ok((payload, encoded))
            });
        if undo && let Ok((payload, _)) = &result {
            match (effect, &target) {
                (Some(Effect::Creates), _) => {
                    for uid in created_uids(payload) {
                        journal.created(kms, &uid).await;
                    }
                }
                (Some(Effect::Changes), Some(uid)) => journal.written(kms, uid).await,
                (Some(Effect::Replaces), Some(uid)) => {
                    journal.written(kms, uid).await;
                    for new in created_uids(payload) {
                        journal.created(kms, &new).await;
                    }
                }
                _ => {}
            }
        }
        let failed = result.is_err();
        items.push(match result {
            Ok((payload, encoded)) => ResponseBatchItem::success(
                kmip::model::ResponsePayload::Other(payload.operation(), encoded),
                id,
            ),
            Err(e) => {
                log_failure(&ctx, op, &e);
                ResponseBatchItem::failure(
                    Some(op),
                    id,
                    e.reason(),
                    e.client_message(ctx.request_id),
                )
            }
        });
        if failed && undo {
            // Undo: the items before the failure are rolled back and say so.
            std::mem::take(&mut journal).roll_back(kms).await;
            let last = items.len().saturating_sub(1);
            for done in items.iter_mut().take(last) {
                if done.result_status == ResultStatus::Success {
                    done.result_status = ResultStatus::OperationUndone;
                }
            }
        }
        if failed && !continue_on_error {
            break;
        }
    }
    respond(items)
}

/// Logs a failed operation with its detail; server-side failures at warning level.
pub fn log_failure(ctx: &RequestContext, op: kmip::Operation, e: &KmsError) {
    if e.http_status() >= 500 {
        tracing::warn!(request_id = %ctx.request_id, operation = ?op, user = %ctx.user, error = %e, "operation failed");
    } else {
        tracing::info!(request_id = %ctx.request_id, operation = ?op, user = %ctx.user, error = %e, "operation failed");
    }
}

/// The objects an operation's response says it made.
fn created_uids(payload: &ResponsePayload) -> Vec<String> {
    let uids = match payload {
        ResponsePayload::Create(r) => vec![&r.unique_identifier],
        ResponsePayload::Register(r)
        | ResponsePayload::Import(r)
        | ResponsePayload::ReKey(r)
        | ResponsePayload::DeriveKey(r)
        | ResponsePayload::Certify(r)
        | ResponsePayload::ReCertify(r) => vec![&r.unique_identifier],
        ResponsePayload::CreateKeyPair(r) | ResponsePayload::ReKeyKeyPair(r) => vec![
            &r.private_key_unique_identifier,
            &r.public_key_unique_identifier,
        ],
        _ => vec![],
    };
    uids.into_iter()
        .filter_map(|u| u.as_text().map(str::to_owned))
        .collect()
}

/// What an Undo batch must put back.
#[derive(Default)]
struct UndoJournal {
    entries: Vec<Entry>,
}

struct Entry {
    uid: String,
    /// The object before the batch touched it; `None`: the batch created it.
    before: Option<StoredObject>,
    /// The revision the batch's last write left; restore only if it is still the stored one.
    written: Option<u64>,
    /// The batch's last write removed the object (Destroy with Remove).
    removed: bool,
}

impl UndoJournal {
    /// Snapshots an object before an item changes it. It is restored only if the item's own
    /// write is still the latest, so an object the caller may not change (the item fails on
    /// it) is never written back.
    async fn remember(&mut self, kms: &Kms, uid: &str) {
        if self.entries.iter().any(|e| e.uid == uid) {
            return;
        }
        let before = match kms.store.get(uid).await {
            Ok(Some(before)) => Some(before),
            // Not there yet: the item may create it (Import).
            Ok(None) => None,
            _ => return,
        };
        self.entries.push(Entry {
            uid: uid.to_owned(),
            before,
            written: None,
            removed: false,
        });
    }

    async fn created(&mut self, kms: &Kms, uid: &str) {
        if !self.entries.iter().any(|e| e.uid == uid) {
            self.entries.push(Entry {
                uid: uid.to_owned(),
                before: None,
                written: None,
                removed: false,
            });
        }
        self.written(kms, uid).await;
    }

    /// Records the revision an item's write left on an object the journal follows.
    async fn written(&mut self, kms: &Kms, uid: &str) {
        let Some(entry) = self.entries.iter_mut().find(|e| e.uid == uid) else {
            return;
        };
        match kms.store.get(uid).await {
            Ok(Some(now)) => entry.written = Some(now.revision),
            Ok(None) => entry.removed = true,
            Err(_) => entry.written = None,
        }
    }

    /// Puts every object back as it was, newest change first. This compensates rather than
    /// rolls back a transaction, so it restores an object only if it is still as the batch
    /// left it: a change another client made since is kept (and logged), never overwritten.
    async fn roll_back(self, kms: &Kms) {
        for Entry {
            uid,
            before,
            written,
            removed,
        } in self.entries.into_iter().rev()
        {
            let now = match kms.store.get(&uid).await {
                Ok(now) => now,
                Err(e) => {
                    tracing::error!(%uid, error = %e, "undo could not read an object");
                    continue;
                }
            };
            let Some(now) = now else {
                // Gone: put back only what the batch itself removed, unless another client
                // created an object under that identifier since.
                if let (true, Some(old)) = (removed, before)
                    && let Err(e) = kms.store.create(old).await
                {
                    tracing::error!(%uid, error = %e, "undo could not restore a removed object");
                }
                continue;
            };
            if written != Some(now.revision) {
                tracing::warn!(%uid, "undo left an object alone: it changed after the batch wrote it");
                continue;
            }
            let result = match before {
                None => kms.store.delete(&uid).await,
                Some(mut old) => {
                    old.revision = now.revision;
                    kms.store.update(old).await
                }
            };
            if let Err(e) = result {
                tracing::error!(%uid, error = %e, "undo could not restore an object");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kms_store::conformance::sample;
    use kms_store::sqlite::SqliteStore;

    use super::*;

    fn kms(dir: &tempfile::TempDir) -> Kms {
        let store = SqliteStore::open(&dir.path().join("kms.db")).expect("open");
        Kms::new(Arc::new(store))
    }

    /// Changes the tags of `uid`, as a write of the batch or of another client would.
    async fn retag(kms: &Kms, uid: &str, tag: &str) {
        let mut o = kms.store.get(uid).await.expect("get").expect("there");
        o.tags = vec![tag.to_owned()];
        kms.store.update(o).await.expect("update");
    }

    async fn tags(kms: &Kms, uid: &str) -> Vec<String> {
        kms.store.get(uid).await.expect("get").expect("there").tags
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undo_restores_what_the_batch_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = kms(&dir);
        kms.store
            .create(sample("k", "alice", &["before"]))
            .await
            .expect("create");
        let mut journal = UndoJournal::default();
        journal.remember(&kms, "k").await;
        retag(&kms, "k", "batch").await;
        journal.written(&kms, "k").await;
        journal.roll_back(&kms).await;
        assert_eq!(tags(&kms, "k").await, ["before"]);
    }

    /// A change another client made after the batch wrote is kept, not overwritten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undo_keeps_a_later_change_by_someone_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = kms(&dir);
        kms.store
            .create(sample("k", "alice", &["before"]))
            .await
            .expect("create");
        let mut journal = UndoJournal::default();
        journal.remember(&kms, "k").await;
        retag(&kms, "k", "batch").await;
        journal.written(&kms, "k").await;
        retag(&kms, "k", "other client").await;
        journal.roll_back(&kms).await;
        assert_eq!(tags(&kms, "k").await, ["other client"]);
    }

    /// An object the caller may not change: the item fails on it, so no write of the batch is
    /// recorded and nothing is restored over its owner's later change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undo_leaves_objects_the_batch_did_not_write_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kms = kms(&dir);
        kms.store
            .create(sample("b", "bob", &["before"]))
            .await
            .expect("create");
        let mut journal = UndoJournal::default();
        journal.remember(&kms, "b").await;
        retag(&kms, "b", "bob's change").await;
        journal.roll_back(&kms).await;
        assert_eq!(tags(&kms, "b").await, ["bob's change"]);
    }
}
