//! Message digests and HMAC. Everything runs in aws-lc-rs; only HMAC over SHA-3, which
//! aws-lc-rs does not offer, is assembled here from its SHA-3 digests (RFC 2104), and it must
//! stay a plain composition of those digests.

use aws_lc_rs::{constant_time, digest, hmac as lc_hmac};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Hash functions named by KMIP's `HashingAlgorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl HashAlgorithm {
    /// The algorithm's usual name, as used in error messages.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha224 => "SHA-224",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Sha3_224 => "SHA3-224",
            Self::Sha3_256 => "SHA3-256",
            Self::Sha3_384 => "SHA3-384",
            Self::Sha3_512 => "SHA3-512",
        }
    }

    /// Length of the digest in bytes.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 | Self::Sha3_224 => 28,
            Self::Sha256 | Self::Sha3_256 => 32,
            Self::Sha384 | Self::Sha3_384 => 48,
            Self::Sha512 | Self::Sha3_512 => 64,
        }
    }

    pub(crate) fn digest(self) -> Result<&'static digest::Algorithm> {
        match self {
            Self::Sha1 => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            Self::Sha224 => Ok(&digest::SHA224),
            Self::Sha256 => Ok(&digest::SHA256),
            Self::Sha384 => Ok(&digest::SHA384),
            Self::Sha512 => Ok(&digest::SHA512),
            Self::Sha3_256 => Ok(&digest::SHA3_256),
            Self::Sha3_384 => Ok(&digest::SHA3_384),
            Self::Sha3_512 => Ok(&digest::SHA3_512),
            Self::Sha3_224 => Err(Error::UnsupportedAlgorithm {
                algorithm: "SHA3-224",
                detail: "the crypto library has no SHA3-224; use SHA3-256 or SHA-224",
            }),
        }
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Returns the digest of `data`.
///
/// # Errors
/// [`Error::UnsupportedAlgorithm`] for SHA3-224.
pub fn hash(alg: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>> {
    Ok(digest::digest(alg.digest()?, data).as_ref().to_vec())
}

/// SHA-256 of `data`: for fingerprints and bindings, where no algorithm choice can fail.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Returns the HMAC of `data` under `key` (RFC 2104) with the full output length of `alg`.
///
/// # Errors
/// [`Error::InvalidKeyLength`] for an empty key, [`Error::UnsupportedAlgorithm`] for SHA3-224.
pub fn hmac(alg: HashAlgorithm, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    if key.is_empty() {
        return Err(Error::InvalidKeyLength {
            algorithm: "HMAC",
            expected: "at least 1",
            actual: 0,
        });
    }
    match library_hmac(alg) {
        Some(lc_alg) => {
            let key = lc_hmac::Key::new(lc_alg, key);
            Ok(lc_hmac::sign(&key, data).as_ref().to_vec())
        }
        None => Ok(composed_hmac(alg.digest()?, key, data)),
    }
}

/// Checks in constant time that `mac` is the full-length HMAC of `data` under `key`.
///
/// Truncated MACs are refused (`Ok(false)`): accepting any prefix would let a forger guess a
/// one-byte MAC.
///
/// # Errors
/// As [`hmac`]; a MAC that does not match is `Ok(false)`, not an error.
pub fn hmac_verify(alg: HashAlgorithm, key: &[u8], data: &[u8], mac: &[u8]) -> Result<bool> {
    let expected = hmac(alg, key, data)?;
    Ok(constant_time::verify_slices_are_equal(&expected, mac).is_ok())
}

fn library_hmac(alg: HashAlgorithm) -> Option<lc_hmac::Algorithm> {
    match alg {
        HashAlgorithm::Sha1 => Some(lc_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        HashAlgorithm::Sha224 => Some(lc_hmac::HMAC_SHA224),
        HashAlgorithm::Sha256 => Some(lc_hmac::HMAC_SHA256),
        HashAlgorithm::Sha384 => Some(lc_hmac::HMAC_SHA384),
        HashAlgorithm::Sha512 => Some(lc_hmac::HMAC_SHA512),
        HashAlgorithm::Sha3_224
        | HashAlgorithm::Sha3_256
        | HashAlgorithm::Sha3_384
        | HashAlgorithm::Sha3_512 => None,
    }
}

/// HMAC as RFC 2104 defines it: `H((K0 ^ opad) || H((K0 ^ ipad) || data))`, where `K0` is the
/// key (hashed first if longer than the hash's block) padded with zeros to one block. For SHA-3
/// the block is the sponge rate, which aws-lc-rs reports as `block_len` (FIPS 198-1 with
/// SP 800-224 uses exactly that).
fn composed_hmac(alg: &'static digest::Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    let block_len = alg.block_len();
    let hashed_key;
    let key = if key.len() > block_len {
        hashed_key = digest::digest(alg, key);
        hashed_key.as_ref()
    } else {
        key
    };
    let mut k0 = Zeroizing::new(vec![0u8; block_len]);
    for (dst, src) in k0.iter_mut().zip(key) {
        *dst = *src;
    }
    let pad =
        |byte: u8| -> Zeroizing<Vec<u8>> { Zeroizing::new(k0.iter().map(|k| k ^ byte).collect()) };

    let mut inner = digest::Context::new(alg);
    inner.update(&pad(0x36));
    inner.update(data);
    let inner = inner.finish();

    let mut outer = digest::Context::new(alg);
    outer.update(&pad(0x5c));
    outer.update(inner.as_ref());
    outer.finish().as_ref().to_vec()
}

/// A digest computed part by part (streamed signing).
pub struct Hasher {
    context: digest::Context,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    /// A new digest of `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Result<Self> {
        Ok(Hasher {
            context: digest::Context::new(algorithm.digest()?),
        })
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.context.update(data);
    }

    /// The digest of everything absorbed.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        self.context.finish().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::test_hex::decode(s)
    }

    #[test]
    fn digests_of_abc_match_fips_180_and_202() -> Result<()> {
        let cases = [
            (
                HashAlgorithm::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                HashAlgorithm::Sha224,
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                HashAlgorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
            (
                HashAlgorithm::Sha3_256,
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            ),
            (
                HashAlgorithm::Sha3_384,
                "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b2\
                 98d88cea927ac7f539f1edf228376d25",
            ),
            (
                HashAlgorithm::Sha3_512,
                "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
                 10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
            ),
        ];
        for (alg, expected) in cases {
            assert_eq!(hash(alg, b"abc")?, hex(expected), "{alg}");
        }
        Ok(())
    }

    #[test]
    fn sha3_224_is_reported_unsupported() {
        assert!(matches!(
            hash(HashAlgorithm::Sha3_224, b"abc"),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            hmac(HashAlgorithm::Sha3_224, b"key", b"abc"),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn hmac_matches_rfc_4231_cases_1_and_2() -> Result<()> {
        let key1 = [0x0bu8; 20];
        assert_eq!(
            hmac(HashAlgorithm::Sha256, &key1, b"Hi There")?,
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            hmac(HashAlgorithm::Sha384, &key1, b"Hi There")?,
            hex(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                 faea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            hmac(HashAlgorithm::Sha512, &key1, b"Hi There")?,
            hex(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            )
        );
        assert_eq!(
            hmac(
                HashAlgorithm::Sha256,
                b"Jefe",
                b"what do ya want for nothing?"
            )?,
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        Ok(())
    }

    /// The hand-composed HMAC used for SHA-3 has no library reference to compare with, so the
    /// same composition runs on SHA-2 against aws-lc-rs, with short, block-sized and longer keys.
    #[test]
    fn composed_hmac_agrees_with_the_library() {
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let pairs = [
            (&digest::SHA256, lc_hmac::HMAC_SHA256),
            (&digest::SHA384, lc_hmac::HMAC_SHA384),
            (&digest::SHA512, lc_hmac::HMAC_SHA512),
        ];
        for (digest_alg, hmac_alg) in pairs {
            for key_len in [1usize, 20, 64, 128, 131, 200] {
                let key = vec![0xaau8; key_len];
                let library = lc_hmac::sign(&lc_hmac::Key::new(hmac_alg, &key), data);
                assert_eq!(
                    composed_hmac(digest_alg, &key, data),
                    library.as_ref(),
                    "key length {key_len}"
                );
            }
        }
    }

    #[test]
    fn sha3_hmac_has_the_digest_length() -> Result<()> {
        assert_eq!(hmac(HashAlgorithm::Sha3_256, b"k", b"m")?.len(), 32);
        assert_eq!(hmac(HashAlgorithm::Sha3_384, b"k", b"m")?.len(), 48);
        assert_eq!(hmac(HashAlgorithm::Sha3_512, b"k", b"m")?.len(), 64);
        Ok(())
    }

    #[test]
    fn hmac_verify_accepts_only_the_exact_mac() -> Result<()> {
        for alg in [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha512,
            HashAlgorithm::Sha3_256,
        ] {
            let mac = hmac(alg, b"secret", b"message")?;
            assert!(hmac_verify(alg, b"secret", b"message", &mac)?);
            assert!(!hmac_verify(alg, b"secret", b"massage", &mac)?);
            assert!(!hmac_verify(alg, b"Secret", b"message", &mac)?);
            let mut flipped = mac.clone();
            if let Some(last) = flipped.last_mut() {
                *last ^= 1;
            }
            assert!(!hmac_verify(alg, b"secret", b"message", &flipped)?);
            let truncated = mac.get(..mac.len() / 2).unwrap_or_default();
            assert!(!hmac_verify(alg, b"secret", b"message", truncated)?);
        }
        Ok(())
    }

    #[test]
    fn hmac_rejects_an_empty_key() {
        assert!(matches!(
            hmac(HashAlgorithm::Sha256, b"", b"m"),
            Err(Error::InvalidKeyLength { actual: 0, .. })
        ));
    }
}
