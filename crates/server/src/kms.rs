//! The KMS core: holds the store, runs one operation for one user, and processes whole KMIP
//! request messages (batches, ID placeholders, error continuation).

use std::sync::Arc;

use kmip::model::{
    Attribute, RequestMessage, RequestPayload, ResponseBatchItem, ResponseHeader, ResponseMessage,
    ResponsePayload, UniqueIdentifier,
};
use kmip::{BatchErrorContinuationOption, DateTime, Operation, State};
use kms_store::{ObjectStore, StoredObject};

use crate::error::{KResult, KmsError};
use crate::operations;

/// The key management server core, shared by every transport.
pub struct Kms {
    pub store: Arc<dyn ObjectStore>,
    pub vendor: String,
}

/// Per-request state: who asks, and the ID placeholder of the batch so far.
pub struct RequestContext {
    pub user: String,
    /// The unique identifier produced or used by the previous operation of the batch, used when
    /// an operation omits its identifier (KMIP "ID Placeholder").
    pub placeholder: Option<String>,
    /// The client speaks KMIP 1.x: attribute operations answer the attribute too.
    pub kmip_1: bool,
}

impl RequestContext {
    pub fn new(user: impl Into<String>) -> Self {
        RequestContext {
            user: user.into(),
            placeholder: None,
            kmip_1: false,
        }
    }

    /// The attribute to echo in an attribute operation's answer: KMIP 1.x only.
    pub fn echo<T>(&self, attribute: T) -> Option<T> {
        self.kmip_1.then_some(attribute)
    }
}

impl Kms {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Kms {
            store,
            vendor: "Cosmian".into(),
        }
    }

    /// Runs one operation. An operation that read an object and lost a race to update it (another
    /// request or server changed it meanwhile) runs again on the new state.
    pub async fn dispatch(
        &self,
        ctx: &mut RequestContext,
        payload: RequestPayload,
    ) -> KResult<ResponsePayload> {
        const ATTEMPTS: u32 = 40;
        let mutates = matches!(
            payload,
            RequestPayload::AddAttribute(_)
                | RequestPayload::SetAttribute(_)
                | RequestPayload::ModifyAttribute(_)
                | RequestPayload::DeleteAttribute(_)
                | RequestPayload::Activate(_)
                | RequestPayload::Revoke(_)
                | RequestPayload::Destroy(_)
                | RequestPayload::Import(_)
        );
        if !mutates {
            return self.dispatch_once(ctx, payload).await;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.dispatch_once(ctx, payload.clone()).await {
                Err(KmsError::Conflict(uid)) if attempt < ATTEMPTS => {
                    tracing::debug!(%uid, attempt, "concurrent update; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn dispatch_once(
        &self,
        ctx: &mut RequestContext,
        payload: RequestPayload,
    ) -> KResult<ResponsePayload> {
        use RequestPayload as R;
        let response = match payload {
            R::Create(p) => {
                ResponsePayload::Create(operations::create::create(self, ctx, p).await?)
            }
            R::Register(p) => {
                ResponsePayload::Register(operations::register::register(self, ctx, p).await?)
            }
            R::Import(p) => {
                ResponsePayload::Import(operations::import::import(self, ctx, p).await?)
            }
            R::Get(p) => ResponsePayload::Get(operations::get::get(self, ctx, p).await?),
            R::Export(p) => {
                ResponsePayload::Export(operations::export::export(self, ctx, p).await?)
            }
            R::Locate(p) => {
                ResponsePayload::Locate(operations::locate::locate(self, ctx, p).await?)
            }
            R::Check(p) => ResponsePayload::Check(operations::check::check(self, ctx, p).await?),
            R::GetAttributes(p) => ResponsePayload::GetAttributes(
                operations::get_attributes::get_attributes(self, ctx, p).await?,
            ),
            R::GetAttributeList(p) => ResponsePayload::GetAttributeList(
                operations::get_attribute_list::get_attribute_list(self, ctx, p).await?,
            ),
            R::AddAttribute(p) => ResponsePayload::AddAttribute(
                operations::add_attribute::add_attribute(self, ctx, p).await?,
            ),
            R::SetAttribute(p) => ResponsePayload::SetAttribute(
                operations::set_attribute::set_attribute(self, ctx, p).await?,
            ),
            R::ModifyAttribute(p) => ResponsePayload::ModifyAttribute(
                operations::modify_attribute::modify_attribute(self, ctx, p).await?,
            ),
            R::DeleteAttribute(p) => ResponsePayload::DeleteAttribute(
                operations::delete_attribute::delete_attribute(self, ctx, p).await?,
            ),
            R::Activate(p) => {
                ResponsePayload::Activate(operations::activate::activate(self, ctx, p).await?)
            }
            R::Revoke(p) => {
                ResponsePayload::Revoke(operations::revoke::revoke(self, ctx, p).await?)
            }
            R::Destroy(p) => {
                ResponsePayload::Destroy(operations::destroy::destroy(self, ctx, p).await?)
            }
            R::Encrypt(p) => {
                ResponsePayload::Encrypt(operations::encrypt::encrypt(self, ctx, p).await?)
            }
            R::Decrypt(p) => {
                ResponsePayload::Decrypt(operations::decrypt::decrypt(self, ctx, p).await?)
            }
            R::MAC(p) => ResponsePayload::MAC(operations::mac::mac(self, ctx, p).await?),
            R::MACVerify(p) => {
                ResponsePayload::MACVerify(operations::mac_verify::mac_verify(self, ctx, p).await?)
            }
            R::Hash(p) => ResponsePayload::Hash(operations::hash::hash(p)?),
            R::RNGRetrieve(p) => {
                ResponsePayload::RNGRetrieve(operations::rng_retrieve::rng_retrieve(p)?)
            }
            R::Query(p) => ResponsePayload::Query(operations::query::query(self, p)),
            R::DiscoverVersions(p) => ResponsePayload::DiscoverVersions(
                operations::discover_versions::discover_versions(p),
            ),
            // The test-harness operation of the OASIS test cases (Begin/End/Reset): nothing to do.
            R::Other(Operation::Interop, _) => ResponsePayload::Other(
                Operation::Interop,
                kmip::Ttlv::structure(kmip::Tag::RESPONSE_PAYLOAD, vec![]),
            ),
            // Log: a client's message for the server's log.
            R::Other(Operation::Log, payload) => {
                let text = payload
                    .child(kmip::Tag::LOG_MESSAGE)
                    .and_then(|m| m.as_str().ok())
                    .unwrap_or("");
                tracing::info!(user = %ctx.user, message = %text.chars().take(1024).collect::<String>(), "client log message");
                ResponsePayload::Other(
                    Operation::Log,
                    kmip::Ttlv::structure(kmip::Tag::RESPONSE_PAYLOAD, vec![]),
                )
            }
            other => {
                return Err(KmsError::OperationNotSupported(format!(
                    "{:?}",
                    other.operation()
                )));
            }
        };
        Ok(response)
    }

    /// Processes a request message: each batch item in order, stopping at the first failure
    /// unless the client asked to continue.
    pub async fn process_message(&self, user: &str, request: RequestMessage) -> ResponseMessage {
        let mut ctx = RequestContext::new(user);
        ctx.kmip_1 = request
            .request_header
            .protocol_version
            .protocol_version_major
            < 2;
        let continue_on_error = matches!(
            request.request_header.batch_error_continuation_option,
            Some(BatchErrorContinuationOption::Continue)
        );
        let undo = matches!(
            request.request_header.batch_error_continuation_option,
            Some(BatchErrorContinuationOption::Undo)
        );
        let mut journal = UndoJournal::default();
        let mut items = Vec::with_capacity(request.batch_item.len());
        for item in request.batch_item {
            let op = item.operation;
            let id = item.unique_batch_item_id.clone();
            if undo && let Some(uid) = undo::target(&item.request_payload, &ctx) {
                journal.remember(self, &uid).await;
            }
            let mut result = self.dispatch(&mut ctx, item.request_payload).await;
            if undo && let Ok(payload) = &result {
                journal.created(payload);
            }
            if let (Ok(payload), Some(max)) =
                (&result, request.request_header.maximum_response_size)
            {
                let size = kmip::binary::encode(&payload.encode()).len();
                if size > max.max(0) as usize {
                    result = Err(KmsError::ResponseTooLarge { size, max });
                }
            }
            let failed = result.is_err();
            items.push(match result {
                Ok(payload) => ResponseBatchItem::success(payload, id),
                Err(e) => {
                    tracing::info!(operation = ?op, user, error = %e, "operation failed");
                    ResponseBatchItem::failure(Some(op), id, e.reason(), e.to_string())
                }
            });
            if failed && undo {
                // Undo: the items before the failure are rolled back and say so.
                std::mem::take(&mut journal).roll_back(self).await;
                let last = items.len().saturating_sub(1);
                for done in items.iter_mut().take(last) {
                    if done.result_status == kmip::ResultStatus::Success {
                        done.result_status = kmip::ResultStatus::OperationUndone;
                    }
                }
            }
            if failed && !continue_on_error {
                break;
            }
        }
        ResponseMessage {
            response_header: ResponseHeader {
                client_correlation_value: request.request_header.client_correlation_value,
                ..ResponseHeader::new(
                    request
                        .request_header
                        .protocol_version
                        .protocol_version_major,
                    request
                        .request_header
                        .protocol_version
                        .protocol_version_minor,
                    DateTime::now(),
                    items.len() as i32,
                )
            },
            batch_item: items,
        }
    }

    /// The object `uid` (or the batch's placeholder), which `ctx.user` must own.
    pub async fn load(
        &self,
        ctx: &mut RequestContext,
        uid: Option<UniqueIdentifier>,
    ) -> KResult<StoredObject> {
        let uid = resolve_uid(ctx, uid)?;
        let object = self
            .store
            .get(&uid)
            .await?
            .ok_or_else(|| KmsError::NotFound(uid.clone()))?;
        if object.owner != ctx.user {
            return Err(KmsError::PermissionDenied(format!(
                "user `{}` has no right on object `{uid}`",
                ctx.user
            )));
        }
        ctx.placeholder = Some(uid);
        Ok(object)
    }
}

mod undo {
    //! What an Undo batch must restore: the state of every object its items touch, taken before
    //! the item runs, and the objects they create.

    use kmip::model::{RequestPayload, ResponsePayload, UniqueIdentifier};

    use super::RequestContext;

    /// The object an operation works on: the one it names, or the batch's placeholder.
    pub fn target(payload: &RequestPayload, ctx: &RequestContext) -> Option<String> {
        use RequestPayload as R;
        let named: Option<&Option<UniqueIdentifier>> = match payload {
            R::Activate(p)
            | R::Destroy(p)
            | R::Archive(p)
            | R::Recover(p)
            | R::GetAttributeList(p) => Some(&p.unique_identifier),
            R::Revoke(p) => Some(&p.unique_identifier),
            R::AddAttribute(p) | R::SetAttribute(p) => Some(&p.unique_identifier),
            R::ModifyAttribute(p) => Some(&p.unique_identifier),
            R::DeleteAttribute(p) => Some(&p.unique_identifier),
            R::Encrypt(p) => Some(&p.unique_identifier),
            R::MAC(p) => Some(&p.unique_identifier),
            R::Import(p) => return p.unique_identifier.as_text().map(str::to_owned),
            _ => None,
        };
        match named? {
            Some(UniqueIdentifier::Text(s)) => Some(s.clone()),
            _ => ctx.placeholder.clone(),
        }
    }

    /// The object an operation created.
    pub fn created(payload: &ResponsePayload) -> Option<String> {
        let uid = match payload {
            ResponsePayload::Create(r) => &r.unique_identifier,
            ResponsePayload::Register(r) => &r.unique_identifier,
            _ => return None,
        };
        uid.as_text().map(str::to_owned)
    }
}

/// Objects as they were before an Undo batch touched them (`None`: created by the batch).
#[derive(Default)]
struct UndoJournal {
    before: Vec<(String, Option<StoredObject>)>,
}

impl UndoJournal {
    async fn remember(&mut self, kms: &Kms, uid: &str) {
        if self.before.iter().any(|(u, _)| u == uid) {
            return;
        }
        if let Ok(state) = kms.store.get(uid).await {
            self.before.push((uid.to_owned(), state));
        }
    }

    fn created(&mut self, payload: &ResponsePayload) {
        if let Some(uid) = undo::created(payload)
            && !self.before.iter().any(|(u, _)| *u == uid)
        {
            self.before.push((uid, None));
        }
    }

    /// Puts every object back as it was, newest change first. This compensates rather than
    /// rolls back a transaction: a change another client made meanwhile to the same object is
    /// overwritten, which the Undo option asks for.
    async fn roll_back(self, kms: &Kms) {
        for (uid, before) in self.before.into_iter().rev() {
            let result = match before {
                None => kms.store.delete(&uid).await,
                Some(mut old) => match kms.store.get(&uid).await {
                    Ok(Some(now)) => {
                        old.revision = now.revision;
                        kms.store.update(old).await
                    }
                    Ok(None) => kms.store.create(old).await,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                tracing::error!(%uid, error = %e, "undo could not restore an object");
            }
        }
    }
}

/// Randomized exponential backoff (up to 64 ms) so that racing writers spread out.
fn backoff(attempt: u32) -> std::time::Duration {
    let ceiling_us = 1_000u64 << attempt.min(6);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    std::time::Duration::from_micros(ceiling_us / 2 + jitter % (ceiling_us / 2 + 1))
}

/// The identifier an operation names, or the batch's placeholder when it names none.
pub fn resolve_uid(ctx: &RequestContext, uid: Option<UniqueIdentifier>) -> KResult<String> {
    match uid {
        Some(UniqueIdentifier::Text(s)) => Ok(s),
        Some(UniqueIdentifier::Enumeration(_)) | None => ctx.placeholder.clone().ok_or_else(|| {
            KmsError::MissingData(
                "no UniqueIdentifier given and no previous operation in the batch to refer to"
                    .into(),
            )
        }),
        Some(UniqueIdentifier::Index(i)) => Err(KmsError::FeatureNotSupported(format!(
            "unique identifier index {i}; give the identifier as text"
        ))),
    }
}

/// Sets the state in both the row and the attributes, and stamps LastChangeDate.
pub fn set_state(object: &mut StoredObject, state: State) {
    object.state = state;
    object.attributes.set(Attribute::State(state));
    touch(object);
}

/// Stamps LastChangeDate.
pub fn touch(object: &mut StoredObject) {
    object
        .attributes
        .set(Attribute::LastChangeDate(DateTime::now()));
}

/// Name of a state for messages.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::PreActive => "pre-active",
        State::Active => "active",
        State::Deactivated => "deactivated",
        State::Compromised => "compromised",
        State::Destroyed => "destroyed",
        State::DestroyedCompromised => "destroyed (compromised)",
    }
}

/// The operations this server implements, for Query.
pub const SUPPORTED_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::Register,
    Operation::Locate,
    Operation::Check,
    Operation::Get,
    Operation::GetAttributes,
    Operation::GetAttributeList,
    Operation::AddAttribute,
    Operation::ModifyAttribute,
    Operation::DeleteAttribute,
    Operation::SetAttribute,
    Operation::Activate,
    Operation::Revoke,
    Operation::Destroy,
    Operation::Query,
    Operation::DiscoverVersions,
    Operation::Encrypt,
    Operation::Decrypt,
    Operation::MAC,
    Operation::MACVerify,
    Operation::RNGRetrieve,
    Operation::Hash,
    Operation::Import,
    Operation::Export,
];
