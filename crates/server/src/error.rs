//! The KMS error type, mapped once to a KMIP result reason and an HTTP status.

use kmip::ResultReason;
use kms_store::StoreError;

/// Why an operation failed. Messages say what to do and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("object `{0}` not found")]
    NotFound(String),
    #[error("no object you may see carries all the tags {0}")]
    NoneTagged(String),
    #[error("object `{0}` is destroyed: its key material is gone")]
    Destroyed(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("multi-valued attribute: {0}")]
    MultiValued(String),
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    #[error("missing data: {0}")]
    MissingData(String),
    #[error("object `{uid}` is {state}; {action}")]
    WrongState {
        uid: String,
        state: &'static str,
        action: String,
    },
    #[error(
        "object `{uid}` may not be used to {operation}: its cryptographic usage mask does not allow it"
    )]
    UsageNotAllowed {
        uid: String,
        operation: &'static str,
    },
    #[error("operation {0} is not supported by this server")]
    OperationNotSupported(String),
    #[error("not supported: {0}")]
    FeatureNotSupported(String),
    #[error(
        "key `{uid}` serves {bound} only (its CryptographicParameters, or its first use); it cannot be used with {asked}: use a separate key for that mode"
    )]
    ModeNotAllowed {
        uid: String,
        bound: String,
        asked: String,
    },
    #[error("bad cryptographic parameters: {0}")]
    BadCryptographicParameters(String),
    #[error("{0}")]
    Cryptographic(kms_crypto::Error),
    /// The HSM refused or failed an operation (device errors, login lost).
    #[error("{0}")]
    Hsm(kms_hsm::HsmError),
    /// A tag that does not verify and a CBC padding that does not check out get this one
    /// answer: telling them apart would make the server a padding oracle.
    #[error(
        "decryption failed: the ciphertext, tag, IV, padding, additional data or key differ from those used to encrypt"
    )]
    DecryptionFailed,
    #[error("attribute {0} not found")]
    AttributeNotFound(String),
    #[error("attribute {0} is read-only: the server manages it")]
    AttributeReadOnly(String),
    #[error("attribute {0} has a single value; use SetAttribute or ModifyAttribute to change it")]
    AttributeSingleValued(String),
    #[error(
        "an object with identifier `{0}` already exists; choose another identifier or set ReplaceExisting"
    )]
    AlreadyExists(String),
    #[error("object `{0}` is sensitive: its key material does not leave the server in clear")]
    Sensitive(String),
    #[error("object `{0}` is not extractable")]
    NotExtractable(String),
    #[error("not supported by this server yet: {0}; ask for the key without it")]
    WrappingNotSupported(&'static str),
    #[error("key format type {0} is not supported for this object")]
    KeyFormatNotSupported(String),
    #[error("{0}")]
    NotQuantumSafe(String),
    #[error(
        "the response is {size} bytes, more than the MaximumResponseSize of {max}; raise it or ask for less"
    )]
    ResponseTooLarge { size: usize, max: i32 },
    #[error(
        "the request has {count} batch items, more than the {max} this server accepts; split it"
    )]
    TooManyBatchItems { count: usize, max: usize },
    #[error(
        "the request body is larger than the {max} bytes this server accepts (its --max-request-size); send less in each request"
    )]
    BodyTooLarge { max: usize },
    #[error("the request body could not be read: {0}; send it again")]
    BodyUnreadable(String),
    #[error(
        "the responses to this request would exceed the server's limit of {max} bytes; ask for less in each request"
    )]
    ResponseBudgetExceeded { max: usize },
    #[error(
        "the server did not finish this request within {seconds} s; a change it asked for may or may not have been made: read the object's state before retrying"
    )]
    OutcomeUnknown { seconds: f64 },
    #[error(
        "this request asks the server to generate more than {per_byte} bytes per byte it carries; ask for less in each request"
    )]
    GeneratedBudgetExceeded { per_byte: usize },
    #[error("object `{0}` kept changing concurrently; retry the operation")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("KMIP decoding failed: {0}")]
    Codec(#[from] kmip::Error),
    #[error("the body is not valid JSON TTLV: {0}")]
    BadJson(kmip::Error),
    #[error(
        "`{0}` is neither an operation nor a RequestMessage; send e.g. {{\"tag\": \"Create\", ...}}"
    )]
    NotAnOperation(String),
    /// A configuration posted to the bootstrap server that cannot be used.
    #[error("{0}")]
    InvalidConfiguration(String),
    /// The bootstrap server already handed over to the KMS.
    #[error("the KMS is already starting with the configuration given; nothing more is accepted")]
    AlreadyStarted,
    /// A bootstrap request without the right `--bootstrap-token`.
    #[error(
        "this bootstrap request does not carry the bootstrap token; send it as `Authorization: Bearer TOKEN`"
    )]
    BootstrapToken,
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("the object already has the name `{0}`; give another name")]
    NonUniqueName(String),
}

impl From<kms_crypto::Error> for KmsError {
    fn from(e: kms_crypto::Error) -> Self {
        match e {
            kms_crypto::Error::AuthenticationFailed
            | kms_crypto::Error::InvalidPadding
            | kms_crypto::Error::DecryptionFailed { .. } => KmsError::DecryptionFailed,
            other => KmsError::Cryptographic(other),
        }
    }
}

impl From<StoreError> for KmsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { uid } => KmsError::NotFound(uid),
            StoreError::AlreadyExists { uid } => KmsError::AlreadyExists(uid),
            StoreError::Conflict { uid } => KmsError::Conflict(uid),
            other => KmsError::Store(other),
        }
    }
}

impl KmsError {
    /// The KMIP result reason of this error.
    pub fn reason(&self) -> ResultReason {
        match self {
            // KMIP 2.x names a missing object "Object Not Found"; 1.x clients get "Item Not
            // Found" (see kmip::v1).
            KmsError::NotFound(_) | KmsError::NoneTagged(_) => ResultReason::ObjectNotFound,
            KmsError::Destroyed(_) => ResultReason::ObjectDestroyed,
            KmsError::PermissionDenied(_) => ResultReason::PermissionDenied,
            KmsError::InvalidRequest(_) => ResultReason::InvalidField,
            KmsError::MultiValued(_) => ResultReason::MultiValuedAttribute,
            KmsError::InvalidMessage(_)
            | KmsError::Codec(_)
            | KmsError::BadJson(_)
            | KmsError::NotAnOperation(_) => ResultReason::InvalidMessage,
            KmsError::InvalidConfiguration(_) => ResultReason::InvalidField,
            KmsError::AlreadyStarted => ResultReason::IllegalOperation,
            KmsError::BootstrapToken | KmsError::Unauthenticated(_) => {
                ResultReason::AuthenticationNotSuccessful
            }
            KmsError::MissingData(_) => ResultReason::MissingData,
            KmsError::WrongState { .. } => ResultReason::WrongKeyLifecycleState,
            KmsError::UsageNotAllowed { .. } => ResultReason::IncompatibleCryptographicUsageMask,
            KmsError::OperationNotSupported(_) => ResultReason::OperationNotSupported,
            KmsError::FeatureNotSupported(_) | KmsError::WrappingNotSupported(_) => {
                ResultReason::FeatureNotSupported
            }
            KmsError::BadCryptographicParameters(_) | KmsError::ModeNotAllowed { .. } => {
                ResultReason::BadCryptographicParameters
            }
            KmsError::DecryptionFailed | KmsError::Hsm(_) => ResultReason::CryptographicFailure,
            KmsError::Cryptographic(e) => match e {
                // The reasons the KMIP Profiles' mandatory test cases give for these two
                // conditions, the same in 1.4 and 2.1: an IV that the mode needs and the request
                // omits is an Invalid Message (CS-BC-M-12, CS-BC-M-13), a tag length the mode
                // does not allow a General Failure (CS-BC-M-GCM-1, CS-BC-M-CHACHA20POLY1305-1).
                kms_crypto::Error::MissingIv { .. } => ResultReason::InvalidMessage,
                kms_crypto::Error::InvalidTagLength { .. } => ResultReason::GeneralFailure,
                kms_crypto::Error::InvalidKey { .. } => ResultReason::InvalidField,
                _ => ResultReason::BadCryptographicParameters,
            },
            KmsError::AttributeNotFound(_) => ResultReason::AttributeNotFound,
            KmsError::NonUniqueName(_) => ResultReason::NonUniqueNameAttribute,
            KmsError::AttributeReadOnly(_) => ResultReason::AttributeReadOnly,
            KmsError::AttributeSingleValued(_) => ResultReason::AttributeSingleValued,
            KmsError::AlreadyExists(_) => ResultReason::ObjectAlreadyExists,
            KmsError::NotExtractable(_) => ResultReason::NotExtractable,
            KmsError::Sensitive(_) => ResultReason::Sensitive,
            KmsError::KeyFormatNotSupported(_) => ResultReason::KeyFormatTypeNotSupported,
            KmsError::Store(_) | KmsError::NotQuantumSafe(_) | KmsError::Conflict(_) => {
                ResultReason::GeneralFailure
            }
            KmsError::ResponseTooLarge { .. }
            | KmsError::ResponseBudgetExceeded { .. }
            | KmsError::GeneratedBudgetExceeded { .. } => ResultReason::ResponseTooLarge,
            KmsError::TooManyBatchItems { .. } | KmsError::BodyTooLarge { .. } => {
                ResultReason::ServerLimitExceeded
            }
            KmsError::BodyUnreadable(_) => ResultReason::InvalidMessage,
            KmsError::OutcomeUnknown { .. } => ResultReason::GeneralFailure,
        }
    }

    /// The HTTP status of this error when a single operation fails.
    pub fn http_status(&self) -> u16 {
        match self {
            KmsError::NotFound(_) | KmsError::NoneTagged(_) => 404,
            KmsError::PermissionDenied(_) => 403,
            KmsError::AlreadyExists(_) | KmsError::Conflict(_) => 409,
            KmsError::Store(StoreError::Unavailable { .. } | StoreError::Upgrading) => 503,
            KmsError::Store(_) | KmsError::Hsm(_) => 500,
            KmsError::OperationNotSupported(_) => 501,
            KmsError::InvalidMessage(_)
            | KmsError::Codec(_)
            | KmsError::BadJson(_)
            | KmsError::NotAnOperation(_)
            | KmsError::BodyUnreadable(_)
            | KmsError::InvalidConfiguration(_) => 400,
            KmsError::AlreadyStarted => 409,
            KmsError::BootstrapToken | KmsError::Unauthenticated(_) => 401,
            KmsError::Destroyed(_)
            | KmsError::InvalidRequest(_)
            | KmsError::MultiValued(_)
            | KmsError::MissingData(_)
            | KmsError::WrongState { .. }
            | KmsError::UsageNotAllowed { .. }
            | KmsError::FeatureNotSupported(_)
            | KmsError::WrappingNotSupported(_)
            | KmsError::BadCryptographicParameters(_)
            | KmsError::ModeNotAllowed { .. }
            | KmsError::Cryptographic(_)
            | KmsError::DecryptionFailed
            | KmsError::AttributeNotFound(_)
            | KmsError::AttributeReadOnly(_)
            | KmsError::AttributeSingleValued(_)
            | KmsError::NonUniqueName(_)
            | KmsError::NotExtractable(_)
            | KmsError::Sensitive(_)
            | KmsError::KeyFormatNotSupported(_)
            | KmsError::NotQuantumSafe(_)
            | KmsError::ResponseTooLarge { .. }
            | KmsError::ResponseBudgetExceeded { .. }
            | KmsError::GeneratedBudgetExceeded { .. } => 422,
            KmsError::TooManyBatchItems { .. } | KmsError::BodyTooLarge { .. } => 413,
            KmsError::OutcomeUnknown { .. } => 504,
        }
    }
}

impl KmsError {
    /// What the client is told. A server-side failure (5xx) says what kind of failure it is and
    /// what to do, and repeats the request id; the details (database host, user, driver
    /// message) are only in the server's log, under that id.
    pub fn client_message(&self, request_id: RequestId) -> String {
        if self.http_status() < 500 {
            return self.to_string();
        }
        let kind = match self {
            KmsError::Store(StoreError::Unavailable { backend, .. }) => {
                format!("the {backend} database is unavailable; retry shortly")
            }
            KmsError::Store(StoreError::Open { backend, .. }) => {
                format!("the {backend} database cannot be opened")
            }
            KmsError::Store(StoreError::Query { backend, .. }) => {
                format!("the {backend} database refused the operation")
            }
            KmsError::Store(StoreError::Corrupt { uid, .. }) => {
                format!("stored object `{uid}` cannot be read")
            }
            KmsError::Store(StoreError::Upgrading) => {
                "the database is being upgraded to a new schema; retry in a few seconds".into()
            }
            other => return format!("{other} (request id {request_id})"),
        };
        format!("{kind}; the server log has the details under request id {request_id}")
    }
}

/// Identifies one request in the server's log and in its failure answers: a random prefix
/// chosen when the process starts and a counter, so that taking one costs an atomic increment
/// (it is taken for every request) and ids of different processes do not collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId(u64);

impl RequestId {
    /// The id of the request being served (see [`crate::observe`]), or a new one outside a
    /// request.
    pub fn next() -> RequestId {
        crate::observe::current_request_id().unwrap_or_else(RequestId::fresh)
    }

    /// A new id.
    pub fn fresh() -> RequestId {
        static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(uuid::Uuid::new_v4().as_bytes().get(..4).unwrap_or(&[0; 4]));
            u64::from_be_bytes(bytes)
        });
        RequestId(
            prefix | (COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xFFFF_FFFF),
        )
    }

    /// The id as written: 16 lower-case hex digits (without `format!`'s padding machinery:
    /// it is written into every answer and access line).
    pub fn hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, d) in out.iter_mut().enumerate() {
            *d = DIGITS[((self.0 >> (60 - 4 * i)) & 0xF) as usize];
        }
        out
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).map_err(|_| std::fmt::Error)?)
    }
}

/// Result of KMS operations.
pub type KResult<T> = Result<T, KmsError>;

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_sixteen_hex_digits() {
        for n in [
            0,
            1,
            0xabc,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            RequestId::fresh().0,
        ] {
            assert_eq!(RequestId(n).to_string(), format!("{n:016x}"));
            assert_eq!(RequestId(n).hex(), *format!("{n:016x}").as_bytes());
        }
    }
}
