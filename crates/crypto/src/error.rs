//! The one error type of `kms-crypto`. Messages say what was wrong and what to send instead;
//! they must never carry key bytes, plaintext or any other secret, because the server copies
//! them into KMIP responses and logs.

use aws_lc_rs::error::Unspecified;

/// Everything that can go wrong in this crate.
///
/// The variants are structured so that the server can map them to a KMIP result reason with an
/// exhaustive `match` instead of reading the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not have a length the algorithm accepts.
    #[error(
        "{algorithm} takes a key of {expected} bytes, but the key has {actual} bytes; \
         use a key of a supported length"
    )]
    InvalidKeyLength {
        algorithm: &'static str,
        expected: &'static str,
        actual: usize,
    },

    /// The IV (nonce, tweak or initial counter block) has a length the algorithm does not accept.
    #[error(
        "{algorithm} takes an IV of {expected} bytes, but the IV has {actual} bytes; \
         send an IV of a supported length"
    )]
    InvalidIvLength {
        algorithm: &'static str,
        expected: &'static str,
        actual: usize,
    },

    /// Decryption needs the IV that encryption used, and none was sent.
    #[error("{algorithm} needs the IV that was used to encrypt; send it with the ciphertext")]
    MissingIv { algorithm: &'static str },

    /// The requested or received authentication tag has an unsupported length.
    #[error(
        "{algorithm} takes an authentication tag of {expected} bytes, but {actual} bytes were \
         asked for or sent; use a supported tag length"
    )]
    InvalidTagLength {
        algorithm: &'static str,
        expected: &'static str,
        actual: usize,
    },

    /// AEAD decryption needs the tag produced at encryption, and none was sent.
    #[error(
        "{algorithm} needs the authentication tag produced at encryption; \
         send it with the ciphertext"
    )]
    MissingTag { algorithm: &'static str },

    /// The request asks a cipher for an option it does not have (padding for a stream mode,
    /// additional authenticated data for a mode without authentication, an IV for ECB, ...).
    #[error("{algorithm} {detail}")]
    UnsupportedMode {
        algorithm: &'static str,
        /// Completes the sentence started by the algorithm name, e.g. "takes no IV; leave it out".
        detail: &'static str,
    },

    /// The algorithm exists in KMIP but this server cannot compute it.
    #[error("{algorithm} is not supported: {detail}")]
    UnsupportedAlgorithm {
        algorithm: &'static str,
        detail: &'static str,
    },

    /// The tag did not verify: the ciphertext, tag, IV, AAD or key differ from encryption.
    #[error(
        "authentication failed: the ciphertext, tag, IV, additional data or key differ from \
         those used to encrypt"
    )]
    AuthenticationFailed,

    /// The PKCS#5 padding found after decryption is malformed.
    #[error(
        "the decrypted data does not end with valid PKCS#5 padding: the key or IV is wrong, \
         the ciphertext is corrupted, or it was encrypted without padding (then ask for no padding)"
    )]
    InvalidPadding,

    /// An unpadded block mode received data that is not a whole number of blocks.
    #[error(
        "{algorithm} without padding needs data in whole blocks of {block_size} bytes, but got \
         {actual} bytes; send block-aligned data or ask for PKCS#5 padding"
    )]
    DataNotBlockAligned {
        algorithm: &'static str,
        block_size: usize,
        actual: usize,
    },

    /// The data is shorter than the algorithm's minimum.
    #[error("{algorithm} needs at least {minimum} bytes of data, but got {actual} bytes")]
    DataTooShort {
        algorithm: &'static str,
        minimum: usize,
        actual: usize,
    },

    /// The data is longer than one call of the algorithm may process.
    #[error(
        "{algorithm} processes at most {maximum} bytes in one request, but got {actual} bytes; \
         split the data into smaller requests"
    )]
    DataTooLong {
        algorithm: &'static str,
        maximum: u64,
        actual: u64,
    },

    /// The key has a structure the algorithm forbids (e.g. both AES-XTS halves equal).
    #[error("{algorithm} rejects this key because {reason}; generate a new key")]
    WeakKey {
        algorithm: &'static str,
        reason: &'static str,
    },

    /// A key given in a request cannot be used: malformed, inconsistent, or of another kind.
    #[error(
        "the {algorithm} key is not usable: {reason}; send a valid key in the format it is declared in"
    )]
    InvalidKey {
        algorithm: &'static str,
        reason: &'static str,
    },

    /// Asymmetric decryption failed. Deliberately says nothing of why (padding oracles).
    #[error(
        "{algorithm} decryption failed: the key, the parameters or the ciphertext are not those used to encrypt"
    )]
    DecryptionFailed { algorithm: &'static str },

    /// AES key unwrap found that the integrity check value does not match.
    #[error(
        "the wrapped key failed its integrity check: the key-encryption key is wrong or the \
         wrapped data is corrupted"
    )]
    KeyUnwrapFailed,

    /// The system random number generator failed.
    #[error(
        "the random number generator failed; no key, IV or random data can be produced until \
         it recovers"
    )]
    Rng {
        #[source]
        source: Unspecified,
    },

    /// The crypto library refused an operation whose inputs this crate had already checked.
    #[error("the crypto library failed to {operation}; this is a server fault, please report it")]
    Backend {
        operation: &'static str,
        #[source]
        source: Unspecified,
    },
}

/// Result of every fallible function in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an `aws-lc-rs` failure that input validation should have made impossible.
    pub(crate) fn backend(operation: &'static str) -> impl FnOnce(Unspecified) -> Self {
        move |source| Self::Backend { operation, source }
    }
}
