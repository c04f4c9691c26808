//! Asymmetric keys: generation, the encodings KMIP names, signatures and RSA encryption.
//!
//! Keys cross this module's boundary as DER bytes in one canonical form per side:
//! PKCS#8 `PrivateKeyInfo` for private keys and X.509 `SubjectPublicKeyInfo` for public keys,
//! except ML-KEM, whose keys are the raw FIPS 203 encodings (the library has no PKCS#8 form for
//! them). [`encoding`] converts between the canonical forms and the other formats (PKCS#1,
//! SEC1, raw points and scalars, RSA components).
//!
//! Everything runs in aws-lc-rs. The `der`, `pkcs1`, `pkcs8`, `sec1` and `spki` crates only
//! read and write the DER structures around the keys.

pub mod encoding;
mod hybrid;
mod loaded;
mod rsa;
mod rsa_raw;
mod sign;

use aws_lc_rs::encoding::{AsDer, AsRawBytes};
use aws_lc_rs::signature::KeyPair as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub use hybrid::{hybrid_decrypt, hybrid_encrypt};
pub use loaded::LoadedPrivateKey;
pub use rsa::{
    RsaEncryption, rsa_aes_key_unwrap, rsa_aes_key_wrap, rsa_decrypt, rsa_encrypt,
    rsa_max_plaintext,
};
pub use sign::{Message, SignatureScheme, sign, verify};

/// The elliptic curves of ECDSA and ECDH keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
}

impl Curve {
    /// Size of the curve's order, in bits (the key's `CryptographicLength`).
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            Self::P256 | Self::Secp256k1 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }

    /// Length in bytes of a private scalar.
    #[must_use]
    pub const fn scalar_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
            Self::Secp256k1 => "secp256k1",
        }
    }
}

/// ML-KEM parameter sets (FIPS 203).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlKem {
    MlKem512,
    MlKem768,
    MlKem1024,
}

/// ML-DSA parameter sets (FIPS 204).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlDsa {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

/// What kind of asymmetric key a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Rsa,
    Ec(Curve),
    Ed25519,
    X25519,
    MlKem(MlKem),
    MlDsa(MlDsa),
}

impl KeyKind {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec(c) => c.name(),
            Self::Ed25519 => "Ed25519",
            Self::X25519 => "X25519",
            Self::MlKem(MlKem::MlKem512) => "ML-KEM-512",
            Self::MlKem(MlKem::MlKem768) => "ML-KEM-768",
            Self::MlKem(MlKem::MlKem1024) => "ML-KEM-1024",
            Self::MlDsa(MlDsa::MlDsa44) => "ML-DSA-44",
            Self::MlDsa(MlDsa::MlDsa65) => "ML-DSA-65",
            Self::MlDsa(MlDsa::MlDsa87) => "ML-DSA-87",
        }
    }

    /// The `CryptographicLength` of a key of this kind (RSA: given by the modulus).
    #[must_use]
    pub const fn fixed_bits(self) -> Option<u32> {
        match self {
            Self::Rsa => None,
            Self::Ec(c) => Some(c.bits()),
            Self::Ed25519 | Self::X25519 => Some(256),
            Self::MlKem(MlKem::MlKem512) => Some(512),
            Self::MlKem(MlKem::MlKem768) => Some(768),
            Self::MlKem(MlKem::MlKem1024) => Some(1024),
            Self::MlDsa(MlDsa::MlDsa44) => Some(44),
            Self::MlDsa(MlDsa::MlDsa65) => Some(65),
            Self::MlDsa(MlDsa::MlDsa87) => Some(87),
        }
    }
}

/// A generated key pair in the canonical forms (see the module documentation).
pub struct KeyPair {
    pub kind: KeyKind,
    /// `CryptographicLength` of both keys.
    pub bits: u32,
    pub private: Zeroizing<Vec<u8>>,
    pub public: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({}, {} bits)", self.kind.name(), self.bits)
    }
}

/// RSA moduli this server generates: multiples of 8 from 2048 to 8192 bits... as far as the
/// library goes, which is the four sizes below.
pub const RSA_GENERATED_BITS: &[u32] = &[2048, 3072, 4096, 8192];

/// The bytes of an encoding the library made (its buffers have an inherent `as_ref`).
macro_rules! encoded {
    ($made:expr) => {
        $made
            .map(|d| d.as_ref().to_vec())
            .map_err(Error::backend("encode a key"))
    };
}

/// Generates a key pair. `rsa_bits` is the modulus size for RSA and ignored otherwise.
pub fn generate_key_pair(kind: KeyKind, rsa_bits: u32) -> Result<KeyPair> {
    let failed = |e| Error::backend("generate a key pair")(e);
    let (private, public): (Vec<u8>, Vec<u8>) = match kind {
        KeyKind::Rsa => {
            use aws_lc_rs::rsa::KeySize;
            let size = match rsa_bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                8192 => KeySize::Rsa8192,
                _ => {
                    return Err(Error::UnsupportedAlgorithm {
                        algorithm: "RSA",
                        detail: "the crypto library generates moduli of 2048, 3072, 4096 and 8192 bits; ask for one of them",
                    });
                }
            };
            let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(failed)?;
            let private = encoded!(pair.as_der())?;
            let public = encoded!(pair.public_key().as_der())?;
            (private, public)
        }
        KeyKind::Ec(curve) => {
            let alg = sign::ecdsa_signing(curve, None)?;
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(failed)?;
            let private = encoded!(pair.to_pkcs8v1())?;
            let public = encoded!(pair.public_key().as_der())?;
            (private, public)
        }
        KeyKind::Ed25519 => {
            let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(failed)?;
            let private = encoded!(pair.to_pkcs8v1())?;
            let public = encoded!(pair.public_key().as_der())?;
            (private, public)
        }
        KeyKind::X25519 => {
            use aws_lc_rs::agreement;
            use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
            let key = agreement::PrivateKey::generate(&agreement::X25519).map_err(failed)?;
            let raw: Curve25519SeedBin<'_> =
                key.as_be_bytes().map_err(Error::backend("encode a key"))?;
            let private = encoding::private_from_raw(kind, raw.as_ref())?;
            let public = key
                .compute_public_key()
                .map_err(failed)?
                .as_der()
                .map_err(Error::backend("encode a key"))?
                .as_ref()
                .to_vec();
            (private.to_vec(), public)
        }
        KeyKind::MlKem(level) => {
            use aws_lc_rs::kem;
            let key = kem::DecapsulationKey::generate(ml_kem(level)).map_err(failed)?;
            let private = encoded!(key.key_bytes())?;
            let public = key
                .encapsulation_key()
                .map_err(failed)?
                .key_bytes()
                .map_err(Error::backend("encode a key"))?
                .as_ref()
                .to_vec();
            (private, public)
        }
        KeyKind::MlDsa(level) => {
            let pair = aws_lc_rs::signature::PqdsaKeyPair::generate(sign::ml_dsa_signing(level))
                .map_err(failed)?;
            let private = encoded!(pair.to_pkcs8v1())?;
            let public = encoded!(pair.public_key().as_der())?;
            (private, public)
        }
    };
    let bits = match kind.fixed_bits() {
        Some(b) => b,
        None => rsa_bits,
    };
    Ok(KeyPair {
        kind,
        bits,
        private: Zeroizing::new(private),
        public,
    })
}

fn ml_kem(level: MlKem) -> &'static aws_lc_rs::kem::Algorithm<aws_lc_rs::kem::AlgorithmId> {
    use aws_lc_rs::kem;
    match level {
        MlKem::MlKem512 => &kem::ML_KEM_512,
        MlKem::MlKem768 => &kem::ML_KEM_768,
        MlKem::MlKem1024 => &kem::ML_KEM_1024,
    }
}

/// ML-KEM: a fresh shared secret and its encapsulation (ciphertext) for `public` (raw key).
pub fn ml_kem_encapsulate(level: MlKem, public: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    use aws_lc_rs::kem;
    let key = kem::EncapsulationKey::new(ml_kem(level), public).map_err(|_| Error::InvalidKey {
        algorithm: KeyKind::MlKem(level).name(),
        reason: "the public key is not a valid encapsulation key",
    })?;
    let (ciphertext, secret) = key.encapsulate().map_err(Error::backend("encapsulate"))?;
    Ok((
        ciphertext.as_ref().to_vec(),
        Zeroizing::new(secret.as_ref().to_vec()),
    ))
}

/// ML-KEM: the shared secret of `ciphertext` with `private` (raw key).
pub fn ml_kem_decapsulate(
    level: MlKem,
    private: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::kem;
    let key =
        kem::DecapsulationKey::new(ml_kem(level), private).map_err(|_| Error::InvalidKey {
            algorithm: KeyKind::MlKem(level).name(),
            reason: "the private key is not a valid decapsulation key",
        })?;
    let secret = key
        .decapsulate(kem::Ciphertext::from(ciphertext))
        .map_err(|_| Error::DataTooShort {
            algorithm: KeyKind::MlKem(level).name(),
            minimum: 768,
            actual: ciphertext.len(),
        })?;
    Ok(Zeroizing::new(secret.as_ref().to_vec()))
}

/// The public key (canonical form) of a private key (canonical form).
pub fn public_of_private(kind: KeyKind, private: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::InvalidKey {
        algorithm: kind.name(),
        reason: "the private key cannot be read",
    };
    let public = match kind {
        KeyKind::Rsa => aws_lc_rs::rsa::KeyPair::from_pkcs8(private)
            .map_err(|_| bad())?
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec()),
        KeyKind::Ec(curve) => aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            sign::ecdsa_signing(curve, None)?,
            private,
        )
        .map_err(|_| bad())?
        .public_key()
        .as_der()
        .map(|d| d.as_ref().to_vec()),
        KeyKind::Ed25519 => {
            aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(private)
                .map_err(|_| bad())?
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
        }
        KeyKind::X25519 => {
            let raw = encoding::private_raw(kind, private)?;
            aws_lc_rs::agreement::PrivateKey::from_private_key(&aws_lc_rs::agreement::X25519, &raw)
                .map_err(|_| bad())?
                .compute_public_key()
                .map_err(|_| bad())?
                .as_der()
                .map(|d| d.as_ref().to_vec())
        }
        KeyKind::MlKem(level) => {
            // FIPS 203: dk = dk_PKE (384k bytes) || ek (384k + 32 bytes) || H(ek) || z.
            aws_lc_rs::kem::DecapsulationKey::new(ml_kem(level), private).map_err(|_| bad())?;
            let k = match level {
                MlKem::MlKem512 => 2,
                MlKem::MlKem768 => 3,
                MlKem::MlKem1024 => 4,
            };
            let ek = private
                .get(384 * k..384 * k + 384 * k + 32)
                .ok_or_else(bad)?;
            let digest = crate::hash(crate::HashAlgorithm::Sha3_256, ek)?;
            if private.get(768 * k + 32..768 * k + 64) != Some(digest.as_slice()) {
                return Err(bad());
            }
            Ok(ek.to_vec())
        }
        KeyKind::MlDsa(level) => {
            aws_lc_rs::signature::PqdsaKeyPair::from_pkcs8(sign::ml_dsa_signing(level), private)
                .map_err(|_| bad())?
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
        }
    };
    public.map_err(Error::backend("encode a key"))
}

/// Checks that a private key (canonical form) is a valid key of its kind, and answers its
/// `CryptographicLength`.
pub fn check_private(kind: KeyKind, private: &[u8]) -> Result<u32> {
    let bad = |reason| Error::InvalidKey {
        algorithm: kind.name(),
        reason,
    };
    match kind {
        KeyKind::Rsa => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(private)
                .map_err(|_| bad("the RSA private key is malformed or inconsistent"))?;
            u32::try_from(pair.public_modulus_len() * 8)
                .map_err(|_| bad("the modulus is too large"))
        }
        KeyKind::MlDsa(level) => {
            let pair = aws_lc_rs::signature::PqdsaKeyPair::from_pkcs8(
                sign::ml_dsa_signing(level),
                private,
            )
            .map_err(|_| bad("the ML-DSA private key is malformed"))?;
            let _ = pair.private_key().as_raw_bytes();
            Ok(kind.fixed_bits().unwrap_or(0))
        }
        _ => {
            public_of_private(kind, private)?;
            Ok(kind.fixed_bits().unwrap_or(0))
        }
    }
}

/// The `CryptographicLength` of a public key (canonical form), checking it can be read.
pub fn public_bits(kind: KeyKind, public: &[u8]) -> Result<u32> {
    match kind {
        KeyKind::Rsa => {
            let key = aws_lc_rs::rsa::PublicEncryptingKey::from_der(public).map_err(|_| {
                Error::InvalidKey {
                    algorithm: "RSA",
                    reason: "the RSA public key is malformed",
                }
            })?;
            u32::try_from(key.key_size_bits()).map_err(|_| Error::InvalidKey {
                algorithm: "RSA",
                reason: "the modulus is too large",
            })
        }
        other => {
            encoding::public_raw(other, public)?;
            Ok(other.fixed_bits().unwrap_or(0))
        }
    }
}
