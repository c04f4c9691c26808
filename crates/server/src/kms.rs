//! The KMS core: holds the store, runs one operation for one user (through the table in
//! [`crate::operations`]), loads objects with the ownership check, and changes them with one
//! read-change-write helper that retries lost races. Whole request messages are in [`crate::batch`].

use std::sync::Arc;

use kmip::model::{
    Attribute, RequestMessage, RequestPayload, ResponseMessage, ResponsePayload, UniqueIdentifier,
};
use kmip::{DateTime, State};
use kms_store::{ObjectStore, StoredObject};

use crate::error::{KResult, KmsError};
use crate::operations;

/// The key management server core, shared by every transport.
pub struct Kms {
    pub store: Arc<dyn ObjectStore>,
    pub vendor: String,
    pub limits: Limits,
    /// When set, only these users may create, register or import objects.
    pub privileged_users: Option<Vec<String>>,
    /// Streamed (multi-part) operations in progress on this server.
    pub streams: crate::streams::Streams,
    /// Private keys parsed by earlier requests.
    pub key_cache: crate::key_cache::KeyCache,
    /// The HSM and its admins, when configured.
    pub hsm: Option<crate::operations::hsm::HsmState>,
}

/// What one request may ask of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most items in one request message.
    pub max_batch_items: usize,
    /// Most bytes of response payloads one request may produce (binary TTLV size).
    pub max_response_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_items: 10_000,
            max_response_size: 64 * 1024 * 1024,
        }
    }
}

/// Per-request state: who asks, and the ID placeholder of the batch so far.
pub struct RequestContext {
    pub user: String,
    /// The unique identifier produced or used by the previous operation of the batch, used when
    /// an operation omits its identifier (KMIP "ID Placeholder").
    pub placeholder: Option<String>,
    /// The client speaks KMIP 1.x: attribute operations answer the attribute too.
    pub kmip_1: bool,
    /// The operation being run, whose right [`Kms::authorize`] checks.
    pub operation: Option<kmip::Operation>,
    /// Whether the user may create, register or import objects (see `--privileged-users`).
    pub may_create: bool,
    /// Identifies the request in the log and in failure answers.
    pub request_id: crate::error::RequestId,
    /// Bytes of response payload this request may still produce; an operation that knows its
    /// answer's size before working (RNGRetrieve) refuses beyond it.
    pub response_budget: usize,
    /// Bytes the server may still generate for this request (RNGRetrieve), in proportion to
    /// the request's size (see [`RequestContext::with_body_len`]).
    pub generated_budget: usize,
}

/// Bytes the server generates for a request (random bytes) at the most: this many per byte of
/// the request, and at least [`GENERATED_FLOOR`]. What a small request costs in memory stays
/// proportional to it, whatever it asks for.
pub const GENERATED_PER_BODY_BYTE: usize = 64;
/// What any request may have generated (one RNGRetrieve of the largest size).
pub const GENERATED_FLOOR: usize = 1024 * 1024;

impl RequestContext {
    pub fn new(user: impl Into<String>) -> Self {
        RequestContext {
            user: user.into(),
            placeholder: None,
            kmip_1: false,
            operation: None,
            may_create: true,
            request_id: crate::error::RequestId::next(),
            response_budget: Limits::default().max_response_size,
            generated_budget: GENERATED_FLOOR,
        }
    }

    /// Sets what the request may have the server generate from the size of its body.
    pub fn with_body_len(mut self, body_len: usize) -> Self {
        self.generated_budget =
            GENERATED_FLOOR.max(body_len.saturating_mul(GENERATED_PER_BODY_BYTE));
        self
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
            limits: Limits::default(),
            privileged_users: None,
            streams: crate::streams::Streams::default(),
            key_cache: crate::key_cache::KeyCache::default(),
            hsm: None,
        }
    }

    /// A request context for `user` under this server's limits.
    pub fn context(&self, user: impl Into<String>) -> RequestContext {
        let user = user.into();
        let may_create = self
            .privileged_users
            .as_ref()
            .is_none_or(|p| p.contains(&user));
        RequestContext {
            response_budget: self.limits.max_response_size,
            may_create,
            ..RequestContext::new(user)
        }
    }

    /// Runs one operation (the table in [`operations`] says which function). Only the
    /// operations that use objects without changing what they decide on (Encrypt, Get, ...)
    /// may read the shared backends' caches; the others read the database itself.
    pub async fn dispatch(
        &self,
        ctx: &mut RequestContext,
        payload: RequestPayload,
    ) -> KResult<ResponsePayload> {
        let op = payload.operation();
        let start = std::time::Instant::now();
        let result = if operations::may_read_cache(&payload) {
            operations::run(self, ctx, payload).await
        } else {
            kms_store::fresh(operations::run(self, ctx, payload)).await
        };
        crate::observe::operation_done(op, ctx.placeholder.as_deref(), &result, start.elapsed());
        result
    }

    /// Processes a request message in the context the transport made (see [`crate::batch`]).
    /// Successful payloads come back encoded (`ResponsePayload::Other`), as they were
    /// measured against the response-size limits; `into_typed` decodes one.
    pub async fn process_message(
        &self,
        ctx: RequestContext,
        request: RequestMessage,
    ) -> ResponseMessage {
        crate::batch::process(self, ctx, request).await
    }

    /// The object `uid` (or the batch's placeholder), on which `ctx.user` must hold the right
    /// of `ctx.operation` (see [`Kms::authorize`]).
    pub async fn load(
        &self,
        ctx: &mut RequestContext,
        uid: Option<UniqueIdentifier>,
    ) -> KResult<StoredObject> {
        // A copy only when the store's cache still holds the object.
        Ok(std::sync::Arc::unwrap_or_clone(
            self.load_shared(ctx, uid).await?,
        ))
    }

    /// [`Kms::load`] for an operation that only reads the object: it is shared with the
    /// store's cache, not copied.
    pub async fn load_shared(
        &self,
        ctx: &mut RequestContext,
        uid: Option<UniqueIdentifier>,
    ) -> KResult<std::sync::Arc<StoredObject>> {
        let uid = self.resolve(ctx, uid).await?;
        let object = self
            .store
            .get_shared(&uid)
            .await?
            .ok_or_else(|| KmsError::NotFound(uid.clone()))?;
        self.authorize(ctx, &object).await?;
        ctx.placeholder = Some(uid);
        Ok(object)
    }

    /// Read-change-write of one object: loads `uid` (or the batch's placeholder) for `ctx.user`,
    /// lets `change` check and change it, stamps LastChangeDate, and writes it back if nobody
    /// changed it meanwhile. When another request or server won the race, it starts again on
    /// the new state (with a randomized backoff), so `change` must be free of side effects
    /// outside the object. Answers the identifier and what `change` returned.
    pub async fn modify<T>(
        &self,
        ctx: &mut RequestContext,
        uid: Option<UniqueIdentifier>,
        mut change: impl FnMut(&mut StoredObject) -> KResult<T>,
    ) -> KResult<(String, T)> {
        let uid = self.resolve(ctx, uid).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut object = self.load(ctx, Some(uid.clone().into())).await?;
            let value = change(&mut object)?;
            touch(&mut object);
            match self.store.update(object).await {
                Ok(()) => return Ok((uid, value)),
                Err(kms_store::StoreError::Conflict { .. }) if attempt < CONFLICT_ATTEMPTS => {
                    tracing::debug!(%uid, attempt, "concurrent update; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Kms {
    /// The identifier an operation names: its text, the batch's placeholder when it names none,
    /// or, when the text is a JSON array of strings (`["a","b"]`, Cosmian's convention), the one
    /// object not destroyed among those `ctx.user` may see that carries all these tags.
    pub async fn resolve(
        &self,
        ctx: &RequestContext,
        uid: Option<UniqueIdentifier>,
    ) -> KResult<String> {
        let uid = resolve_uid(ctx, uid)?;
        let Some(tags) = tag_selector(&uid)? else {
            return Ok(uid);
        };
        let query = kms_store::LocateQuery {
            visible_to: Some(ctx.user.clone()),
            tags,
            ..Default::default()
        };
        let mut found = self.store.locate(&query).await?;
        match found.len() {
            0 => Err(KmsError::NoneTagged(uid)),
            1 => Ok(found.swap_remove(0)),
            n => Err(KmsError::InvalidRequest(format!(
                "{n} objects carry the tags {uid}; name one by its identifier, or add a tag only it carries"
            ))),
        }
    }
}

/// The identifier a Revoke or Destroy answers: the tag selector the client named (Cosmian's
/// clients check the answer against what they sent), else the object's identifier.
pub fn echo_selector(named: Option<&UniqueIdentifier>, uid: String) -> UniqueIdentifier {
    match named {
        Some(UniqueIdentifier::Text(text)) if matches!(tag_selector(text), Ok(Some(_))) => {
            UniqueIdentifier::Text(text.clone())
        }
        _ => uid.into(),
    }
}

/// The tags of an identifier written as a JSON array of strings; `None` for a plain identifier.
fn tag_selector(uid: &str) -> KResult<Option<Vec<String>>> {
    if !uid.starts_with('[') {
        return Ok(None);
    }
    let Ok(tags) = serde_json::from_str::<Vec<String>>(uid) else {
        return Ok(None);
    };
    if tags.is_empty() {
        return Err(KmsError::InvalidRequest(
            "the UniqueIdentifier `[]` names no tag; give at least one".into(),
        ));
    }
    Ok(Some(tags))
}

/// Attempts of a read-change-write that keeps losing races before the client is told to retry.
const CONFLICT_ATTEMPTS: u32 = 40;

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
