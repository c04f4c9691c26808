//! Cryptographic primitives of the KMS, behind small functions on byte-slice keys; the only
//! crate that calls a crypto library. It does no I/O, keeps no state and knows nothing of KMIP.
//!
//! aws-lc-rs does the work wherever it offers the operation. A few RustCrypto crates fill the
//! gaps, each noted in the module that uses it: `aes` and `ghash` (AES-GCM with IVs other than
//! 12 bytes or truncated tags), `chacha20` (ChaCha20 without Poly1305), `xts-mode` with `aes`
//! (AES-XTS), `argon2` (the `redis-findex` master key).
//!
//! Secrets handed back (decrypted data, generated or unwrapped keys) come in
//! [`zeroize::Zeroizing`] buffers, and no `Debug` output or error message contains key bytes
//! or plaintext.
//!
//! ```
//! use kms_crypto::{DecryptRequest, EncryptRequest, SymmetricCipher, decrypt, encrypt, random_key};
//!
//! let key = random_key(32)?;
//! let sealed = encrypt(&EncryptRequest {
//!     aad: b"object 42",
//!     ..EncryptRequest::new(SymmetricCipher::AesGcm, &key, b"data key")
//! })?;
//! let opened = decrypt(&DecryptRequest {
//!     iv: sealed.iv.as_deref(),
//!     aad: b"object 42",
//!     tag: sealed.tag.as_deref(),
//!     ..DecryptRequest::new(SymmetricCipher::AesGcm, &key, &sealed.ciphertext)
//! })?;
//! assert_eq!(opened.as_slice(), b"data key");
//! # Ok::<(), kms_crypto::Error>(())
//! ```

mod aead;
pub use aead::{GcmStream, KeySchedules, MAX_STREAMED_DECRYPTION};
pub mod asymmetric;
mod block;
mod error;
mod hash;
mod kdf;
mod rng;
mod seal;
mod stream;
mod streaming;
mod symmetric;
mod tdea;
mod wrap;
mod xts;

#[cfg(test)]
mod test_hex;

pub use error::{Error, Result};
pub use hash::{HashAlgorithm, Hasher, hash, hmac, hmac_verify, sha256};
pub use kdf::{Argon2Params, MAX_DERIVED_LENGTH, argon2id, hkdf, kdf_counter_hmac, pbkdf2};
pub use rng::{MAX_RANDOM_LENGTH, random_bytes, random_id, random_key};
pub use seal::Sealer;
pub use streaming::{CipherStream, StreamEnd, StreamStart};
pub use symmetric::{
    DEFAULT_TAG_LENGTH, DecryptRequest, EncryptRequest, Encrypted, Padding, SymmetricCipher,
    decrypt, decrypt_with, encrypt, encrypt_with,
};
pub use wrap::{aes_key_unwrap, aes_key_unwrap_unpadded, aes_key_wrap, aes_key_wrap_unpadded};
