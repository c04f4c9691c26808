//! Key derivation: PBKDF2 and HKDF (aws-lc-rs), and the NIST SP 800-108 KDF in counter mode
//! with an HMAC PRF (assembled here from aws-lc-rs HMAC: counter before the fixed input).

use std::num::NonZeroU32;

use aws_lc_rs::{hkdf, pbkdf2};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, hmac};

/// The longest key derived in one call, in bytes.
pub const MAX_DERIVED_LENGTH: usize = 512;

fn check_length(algorithm: &'static str, length: usize) -> Result<()> {
    if length == 0 || length > MAX_DERIVED_LENGTH {
        return Err(Error::DataTooLong {
            algorithm,
            maximum: MAX_DERIVED_LENGTH as u64,
            actual: length as u64,
        });
    }
    Ok(())
}

fn unsupported(algorithm: &'static str) -> Error {
    Error::UnsupportedAlgorithm {
        algorithm,
        detail: "the hash must be SHA-1, SHA-256, SHA-384 or SHA-512",
    }
}

/// PBKDF2 with HMAC-`hash` (RFC 8018).
pub fn pbkdf2(
    hash: HashAlgorithm,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    length: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check_length("PBKDF2", length)?;
    let algorithm = match hash {
        HashAlgorithm::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        HashAlgorithm::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        HashAlgorithm::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        HashAlgorithm::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        _ => return Err(unsupported("PBKDF2")),
    };
    let iterations = NonZeroU32::new(iterations).ok_or(Error::UnsupportedMode {
        algorithm: "PBKDF2",
        detail: "needs an iteration count of at least 1",
    })?;
    let mut out = Zeroizing::new(vec![0u8; length]);
    pbkdf2::derive(algorithm, iterations, salt, password, &mut out);
    Ok(out)
}

/// HKDF with `hash` (RFC 5869).
pub fn hkdf(
    hash: HashAlgorithm,
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    length: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check_length("HKDF", length)?;
    let algorithm = match hash {
        HashAlgorithm::Sha1 => hkdf::HKDF_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => hkdf::HKDF_SHA256,
        HashAlgorithm::Sha384 => hkdf::HKDF_SHA384,
        HashAlgorithm::Sha512 => hkdf::HKDF_SHA512,
        _ => return Err(unsupported("HKDF")),
    };
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    if length > 255 * hash.output_len() {
        return Err(Error::DataTooLong {
            algorithm: "HKDF",
            maximum: (255 * hash.output_len()) as u64,
            actual: length as u64,
        });
    }
    let prk = hkdf::Salt::new(algorithm, salt).extract(ikm);
    let parts = [info];
    let okm = prk
        .expand(&parts, Len(length))
        .map_err(Error::backend("derive a key"))?;
    let mut out = Zeroizing::new(vec![0u8; length]);
    okm.fill(&mut out).map_err(Error::backend("derive a key"))?;
    Ok(out)
}

/// NIST SP 800-108 KDF in counter mode with HMAC-`hash` as PRF: `K(i) = HMAC(key, [i]_32 ||
/// fixed)`, `i` from 1, concatenated and cut to `length` bytes. `fixed` is the fixed input
/// data (label, 0x00, context and the length, as the caller encodes them).
pub fn kdf_counter_hmac(
    hash: HashAlgorithm,
    key: &[u8],
    fixed: &[u8],
    length: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check_length("SP 800-108 counter KDF", length)?;
    let mut out = Zeroizing::new(Vec::with_capacity(length + hash.output_len()));
    let mut i: u32 = 1;
    while out.len() < length {
        let mut input = i.to_be_bytes().to_vec();
        input.extend_from_slice(fixed);
        out.extend_from_slice(&Zeroizing::new(hmac(hash, key, &input)?));
        i += 1;
    }
    out.truncate(length);
    Ok(out)
}

/// Argon2id cost parameters (RFC 9106): memory in KiB, passes, lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Argon2Params {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    pub const RFC9106_LOW_MEMORY: Argon2Params = Argon2Params {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 4,
    };
}

/// Argon2id (RFC 9106; the RustCrypto `argon2` crate: aws-lc-rs has no Argon2) of `password`
/// with `salt`, giving a 32-byte key.
pub fn argon2id(password: &[u8], salt: &[u8], params: Argon2Params) -> Result<Zeroizing<[u8; 32]>> {
    let invalid = |detail: &'static str| Error::UnsupportedAlgorithm {
        algorithm: "Argon2id",
        detail,
    };
    let p = argon2::Params::new(params.memory_kib, params.passes, params.lanes, Some(32))
        .map_err(|_| invalid("the memory, passes and lanes are out of Argon2's range"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
        .hash_password_into(password, salt, &mut out[..])
        .map_err(|_| invalid("the salt must be 8 to 64 bytes and the password at most 4 GiB"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::test_hex::decode as hex;

    #[test]
    fn rfc_vectors() {
        // RFC 6070, PBKDF2-HMAC-SHA1, 2 iterations.
        assert_eq!(
            pbkdf2(HashAlgorithm::Sha1, b"password", b"salt", 2, 20)
                .unwrap()
                .as_slice(),
            hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")
        );
        // RFC 5869 test case 1.
        let okm = hkdf(
            HashAlgorithm::Sha256,
            &hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
            &hex("000102030405060708090a0b0c"),
            &hex("f0f1f2f3f4f5f6f7f8f9"),
            42,
        )
        .unwrap();
        assert_eq!(
            okm.as_slice(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
        // Counter mode: the first block is HMAC(key, 00000001 || fixed).
        let k = kdf_counter_hmac(HashAlgorithm::Sha256, b"key", b"fixed", 40).unwrap();
        let mut first = vec![0, 0, 0, 1];
        first.extend_from_slice(b"fixed");
        assert_eq!(
            &k[..32],
            hmac(HashAlgorithm::Sha256, b"key", &first)
                .unwrap()
                .as_slice()
        );
        assert_eq!(k.len(), 40);
        assert!(pbkdf2(HashAlgorithm::Sha256, b"p", b"s", 0, 32).is_err());
        assert!(hkdf(HashAlgorithm::Sha256, b"k", b"", b"", 0).is_err());
    }
}

#[cfg(test)]
mod argon2_tests {
    use super::*;

    /// RFC 9106 section 5.3 needs secret and associated data, which this API does not take;
    /// this checks determinism, salt sensitivity and the parameter checks instead.
    #[test]
    fn argon2id_is_deterministic_and_salted() {
        let p = Argon2Params {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        };
        let a = argon2id(b"password", b"saltsalt", p).expect("derive");
        assert_eq!(*a, *argon2id(b"password", b"saltsalt", p).expect("derive"));
        assert_ne!(*a, *argon2id(b"password", b"saltsalu", p).expect("derive"));
        assert!(argon2id(b"password", b"short", p).is_err());
    }
}
