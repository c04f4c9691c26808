//! Multi-part operations (streamed Sign, SignatureVerify, and AES-GCM Encrypt and Decrypt
//! through `operations/streamed_crypt.rs`; KMIP `InitIndicator`,
//! `FinalIndicator`, `CorrelationValue`): what a client has sent so far, kept in this server's
//! memory under a random correlation value until the final part.
//!
//! A stream belongs to the user who started it, on the key and operation it started with; it
//! expires [`TTL`] after its last part. The state is bounded: [`MAX_PER_USER`] open streams per
//! user, [`MAX_TOTAL`] in all, and a buffering stream (Ed25519, ML-DSA, which sign the whole
//! message) holds at most [`MAX_BUFFER`] bytes. The state lives in one server's memory: behind
//! a load balancer, the parts of one stream must reach the same server (sticky sessions), or the
//! later parts are answered "unknown correlation value".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmip::Operation;
use zeroize::Zeroizing;

use crate::error::{KResult, KmsError};

/// How long a stream waits for its next part.
pub const TTL: Duration = Duration::from_secs(300);
/// Open streams per user.
pub const MAX_PER_USER: usize = 32;
/// Open streams on this server.
pub const MAX_TOTAL: usize = 4096;
/// Bytes a buffering stream may hold.
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// What a stream has absorbed so far.
pub enum Partial {
    /// Hash-then-sign schemes hash as the parts come.
    Digest(kms_crypto::Hasher),
    /// Schemes that sign the message itself keep it.
    Buffer(Zeroizing<Vec<u8>>),
    /// A streamed Encrypt or Decrypt (boxed: it holds the expanded key).
    Cipher(Box<kms_crypto::CipherStream>),
}

impl Partial {
    /// Absorbs one part.
    pub fn feed(&mut self, data: &[u8]) -> KResult<()> {
        match self {
            Partial::Digest(h) => h.update(data),
            Partial::Buffer(b) => {
                if b.len() + data.len() > MAX_BUFFER {
                    return Err(KmsError::InvalidRequest(format!(
                        "a streamed operation of this key buffers at most {MAX_BUFFER} bytes; sign a digest instead (an RSA or ECDSA key)"
                    )));
                }
                b.extend_from_slice(data);
            }
            Partial::Cipher(_) => {
                return Err(KmsError::InvalidRequest(
                    "this CorrelationValue belongs to a streamed Encrypt or Decrypt".into(),
                ));
            }
        }
        Ok(())
    }
}

pub struct Stream {
    user: String,
    uid: String,
    operation: Operation,
    expires: Instant,
    pub partial: Partial,
}

/// The open streams of this server.
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<Vec<u8>, Stream>>,
}

fn unknown() -> KmsError {
    KmsError::InvalidRequest(
        "unknown, expired or foreign CorrelationValue: start the stream again with InitIndicator"
            .into(),
    )
}

impl Streams {
    /// Opens a stream; answers its correlation value.
    pub fn open(
        &self,
        user: &str,
        uid: &str,
        operation: Operation,
        partial: Partial,
    ) -> KResult<Vec<u8>> {
        let id = kms_crypto::random_bytes(16)?;
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_TOTAL {
            return Err(KmsError::PermissionDenied(format!(
                "this server has {MAX_TOTAL} streamed operations open; finish some or retry later"
            )));
        }
        if open.values().filter(|s| s.user == user).count() >= MAX_PER_USER {
            return Err(KmsError::PermissionDenied(format!(
                "user `{user}` has {MAX_PER_USER} streamed operations open; finish some first"
            )));
        }
        open.insert(
            id.clone(),
            Stream {
                user: user.to_owned(),
                uid: uid.to_owned(),
                operation,
                expires: now + TTL,
                partial,
            },
        );
        Ok(id)
    }

    /// Takes the stream `id` out, if `user` opened it on `uid` for `operation` and it has not
    /// expired. The caller puts it back ([`Streams::resume`]) unless it was the final part.
    pub fn take(&self, id: &[u8], user: &str, uid: &str, operation: Operation) -> KResult<Stream> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ours = open.get(id).is_some_and(|s| {
            s.user == user && s.uid == uid && s.operation == operation && s.expires > Instant::now()
        });
        if !ours {
            return Err(unknown());
        }
        open.remove(id).ok_or_else(unknown)
    }

    /// Puts back a stream taken for a middle part.
    pub fn resume(&self, id: Vec<u8>, mut stream: Stream) {
        stream.expires = Instant::now() + TTL;
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, stream);
    }
}

/// Where one request of a possibly streamed operation leaves it.
pub enum Step {
    /// A part was absorbed; the client continues with this correlation value.
    Pending(Vec<u8>),
    /// The whole message (the request's, or the stream's at its final part).
    Data(Vec<u8>),
    /// Its digest (the client's `DigestedData`, or what a hashing stream absorbed).
    Digest(Vec<u8>),
}

/// The parts of one request of an operation that may be streamed.
pub struct Part<'a> {
    pub init: Option<bool>,
    pub last: Option<bool>,
    pub correlation: Option<&'a [u8]>,
    pub data: Option<Vec<u8>>,
    pub digested: Option<Vec<u8>>,
}

impl Streams {
    /// Runs one request of a streamed (or whole) operation of `user` on `uid`: `hash` is the
    /// scheme's hash when it hashes before signing (the stream then keeps only the running
    /// digest), `None` when it needs the message itself.
    pub fn step(
        &self,
        user: &str,
        uid: &str,
        operation: Operation,
        hash: Option<kms_crypto::HashAlgorithm>,
        part: Part<'_>,
    ) -> KResult<Step> {
        let streamed = part.init == Some(true) || part.correlation.is_some_and(|c| !c.is_empty());
        if !streamed {
            return match (part.data, part.digested) {
                (Some(data), None) => Ok(Step::Data(data)),
                (None, Some(digest)) => Ok(Step::Digest(digest)),
                (Some(_), Some(_)) => Err(KmsError::InvalidRequest(
                    "give either Data or DigestedData, not both".into(),
                )),
                (None, None) => Err(KmsError::MissingData(
                    "give the Data (or its digest as DigestedData)".into(),
                )),
            };
        }
        if part.digested.is_some() {
            return Err(KmsError::InvalidRequest(
                "a streamed operation takes Data parts, not DigestedData".into(),
            ));
        }
        let data = part.data.unwrap_or_default();
        let (id, mut stream) = if part.init == Some(true) {
            if part.correlation.is_some_and(|c| !c.is_empty()) {
                return Err(KmsError::InvalidRequest(
                    "the first part (InitIndicator) has no CorrelationValue yet".into(),
                ));
            }
            let partial = match hash {
                Some(h) => Partial::Digest(kms_crypto::Hasher::new(h)?),
                None => Partial::Buffer(Zeroizing::new(Vec::new())),
            };
            let stream = Stream {
                user: user.to_owned(),
                uid: uid.to_owned(),
                operation,
                expires: Instant::now() + TTL,
                partial,
            };
            (None, stream)
        } else {
            let id = part.correlation.unwrap_or_default();
            (Some(id.to_vec()), self.take(id, user, uid, operation)?)
        };
        stream.partial.feed(&data)?;
        if part.last == Some(true) {
            return Ok(match stream.partial {
                Partial::Digest(h) => Step::Digest(h.finish()),
                Partial::Buffer(b) => Step::Data(b.to_vec()),
                // `feed` refused it already.
                Partial::Cipher(_) => {
                    return Err(KmsError::InvalidRequest(
                        "this CorrelationValue belongs to a streamed Encrypt or Decrypt".into(),
                    ));
                }
            });
        }
        match id {
            Some(id) => {
                self.resume(id.clone(), stream);
                Ok(Step::Pending(id))
            }
            None => self
                .open(user, uid, operation, stream.partial)
                .map(Step::Pending),
        }
    }
}
