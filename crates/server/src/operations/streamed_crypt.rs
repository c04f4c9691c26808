//! Streamed (multi-part) Encrypt and Decrypt with AES-GCM, AES-CBC, AES-CTR, ChaCha20 and
//! ChaCha20-Poly1305 (`kms_crypto::CipherStream`): `InitIndicator` opens a stream under a random
//! `CorrelationValue` (`streams.rs`: owned by the user, key and operation, bounded, expiring),
//! middle parts continue it, `FinalIndicator` ends it. Each part answers the output it
//! completes; an AEAD encryption answers the tag at the end, and an AEAD decryption answers its
//! plaintext only at the final part, once the tag verified.

use kmip::Operation;
use kmip::model::{Decrypt, DecryptResponse, Encrypt, EncryptResponse};
use kms_crypto::{CipherStream, StreamStart};
use kms_store::StoredObject;

use super::key_bytes;
use super::symmetric::CipherChoice;
use crate::error::{KResult, KmsError};
use crate::kms::{Kms, RequestContext};
use crate::streams::{Partial, Stream};

/// Whether a request is a part of a streamed operation.
pub fn is_streamed(init: Option<bool>, correlation: Option<&Vec<u8>>) -> bool {
    init == Some(true) || correlation.is_some_and(|c| !c.is_empty())
}

/// Where a part's stream comes from: opened by this part, or taken back for it.
enum Origin {
    New,
    Taken(Vec<u8>, Box<Stream>),
}

/// Opens a stream (a first part) or takes it back (a later part).
fn stream_of(
    kms: &Kms,
    ctx: &RequestContext,
    key: &StoredObject,
    operation: Operation,
    init: Option<bool>,
    correlation: Option<&[u8]>,
    start: impl FnOnce() -> KResult<CipherStream>,
) -> KResult<(Origin, CipherStream)> {
    if init == Some(true) {
        if correlation.is_some_and(|c| !c.is_empty()) {
            return Err(KmsError::InvalidRequest(
                "the first part (InitIndicator) has no CorrelationValue yet".into(),
            ));
        }
        return Ok((Origin::New, start()?));
    }
    let id = correlation.unwrap_or(&[]);
    let mut stream = kms.streams.take(id, &ctx.user, &key.uid, operation)?;
    let partial = std::mem::replace(&mut stream.partial, Partial::Buffer(Default::default()));
    match partial {
        Partial::Cipher(c) => Ok((Origin::Taken(id.to_vec(), Box::new(stream)), *c)),
        _ => Err(KmsError::InvalidRequest(
            "this CorrelationValue belongs to another kind of stream".into(),
        )),
    }
}

pub fn encrypt_part(
    kms: &Kms,
    ctx: &RequestContext,
    key: &StoredObject,
    choice: &CipherChoice,
    request: Encrypt,
) -> KResult<EncryptResponse> {
    let generated_iv = match (&request.iv_counter_nonce, request.init_indicator) {
        (None, Some(true)) if choice.random_iv => Some(kms_crypto::random_bytes(
            choice.cipher.default_iv_length().unwrap_or(12),
        )?),
        (None, Some(true)) => {
            return Err(KmsError::MissingData(
                "RandomIV is false: give the IVCounterNonce".into(),
            ));
        }
        _ => None,
    };
    let key_bytes = key_bytes(key)?;
    let iv = request
        .iv_counter_nonce
        .clone()
        .or_else(|| generated_iv.clone())
        .unwrap_or_default();
    let aad = request
        .authenticated_encryption_additional_data
        .clone()
        .unwrap_or_default();
    let (id, mut stream) = stream_of(
        kms,
        ctx,
        key,
        Operation::Encrypt,
        request.init_indicator,
        request.correlation_value.as_deref(),
        || start(choice, key_bytes, &iv, &aad, false),
    )?;
    let mut data = stream.update(request.data.as_deref().unwrap_or(&[]))?;
    let (correlation_value, tag) = if request.final_indicator == Some(true) {
        let end = stream.finish(None)?;
        data.extend_from_slice(&end.data);
        (None, end.tag)
    } else {
        (
            Some(reopen(kms, ctx, key, Operation::Encrypt, id, stream)?),
            None,
        )
    };
    Ok(EncryptResponse {
        unique_identifier: key.uid.clone().into(),
        data: Some(data.to_vec()),
        iv_counter_nonce: generated_iv,
        correlation_value,
        authenticated_encryption_tag: tag,
    })
}

pub fn decrypt_part(
    kms: &Kms,
    ctx: &RequestContext,
    key: &StoredObject,
    choice: &CipherChoice,
    request: Decrypt,
) -> KResult<DecryptResponse> {
    let key_bytes = key_bytes(key)?;
    let iv = request.iv_counter_nonce.clone().unwrap_or_default();
    let aad = request
        .authenticated_encryption_additional_data
        .clone()
        .unwrap_or_default();
    let (id, mut stream) = stream_of(
        kms,
        ctx,
        key,
        Operation::Decrypt,
        request.init_indicator,
        request.correlation_value.as_deref(),
        || {
            if iv.is_empty() {
                return Err(KmsError::MissingData(
                    "a streamed decryption needs the IVCounterNonce in its first part".into(),
                ));
            }
            start(choice, key_bytes, &iv, &aad, true)
        },
    )?;
    let mut data = stream.update(request.data.as_deref().unwrap_or(&[]))?;
    if request.final_indicator == Some(true) {
        let tag = request.authenticated_encryption_tag.as_deref();
        if choice.cipher.is_aead() && tag.is_none() {
            return Err(KmsError::MissingData(
                "the final part of a decryption needs the tag".into(),
            ));
        }
        let end = stream.finish(tag)?;
        data.extend_from_slice(&end.data);
        return Ok(DecryptResponse {
            unique_identifier: key.uid.clone().into(),
            data: Some(data.to_vec()),
            correlation_value: None,
        });
    }
    Ok(DecryptResponse {
        unique_identifier: key.uid.clone().into(),
        // An AEAD decryption answers nothing before the tag verified.
        data: (!data.is_empty()).then(|| data.to_vec()),
        correlation_value: Some(reopen(kms, ctx, key, Operation::Decrypt, id, stream)?),
    })
}

/// Keeps a stream for its next part: a new one is opened, a taken one put back.
fn reopen(
    kms: &Kms,
    ctx: &RequestContext,
    key: &StoredObject,
    operation: Operation,
    origin: Origin,
    cipher: CipherStream,
) -> KResult<Vec<u8>> {
    match origin {
        Origin::New => kms.streams.open(
            &ctx.user,
            &key.uid,
            operation,
            Partial::Cipher(Box::new(cipher)),
        ),
        Origin::Taken(id, mut stream) => {
            stream.partial = Partial::Cipher(Box::new(cipher));
            kms.streams.resume(id.clone(), *stream);
            Ok(id)
        }
    }
}

/// Starts the stream the key's cipher choice names.
fn start(
    choice: &CipherChoice,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    decrypt: bool,
) -> KResult<CipherStream> {
    Ok(CipherStream::start(&StreamStart {
        cipher: choice.cipher,
        padding: choice.padding,
        key,
        iv,
        aad,
        tag_length: choice.tag_length,
        decrypt,
    })?)
}
