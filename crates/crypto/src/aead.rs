//! Authenticated encryption: AES-GCM, AES-GCM-SIV and ChaCha20-Poly1305. aws-lc-rs does the
//! work whenever it can; the AES-GCM shapes it lacks (any IV from 1 to 1024 bytes, tags of 4, 8
//! or 12 to 15 bytes) are composed here from the RustCrypto AES block cipher and GHASH, and
//! truncated ChaCha20-Poly1305 tags (12 to 15 bytes) are checked against the full tag. Plaintext
//! must never leave this module unless the tag verified.

use std::sync::OnceLock;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use aws_lc_rs::aead::{self as lc, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The AEAD ciphers; the caller has already refused padding for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aead {
    AesGcm,
    AesGcmSiv,
    ChaCha20Poly1305,
}

/// Ciphertext and tag, kept apart as KMIP carries them in separate fields.
pub(crate) struct Sealed {
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

const FULL_TAG: usize = 16;
const STANDARD_NONCE: usize = 12;
const GCM_IV_LENGTHS: &str = "1 to 1024";
const GCM_TAG_LENGTHS: &str = "4, 8 or 12 to 16";
/// Longest AES-GCM plaintext, 2^39 - 256 bits (NIST SP 800-38D, section 5.2.1.1).
const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

impl Aead {
    const fn name(self) -> &'static str {
        match self {
            Self::AesGcm => "AES-GCM",
            Self::AesGcmSiv => "AES-GCM-SIV",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }

    /// The aws-lc-rs algorithm for this key; checking the key length here covers both paths.
    fn library_algorithm(self, key: &[u8]) -> Result<&'static lc::Algorithm> {
        let invalid = |expected| Error::InvalidKeyLength {
            algorithm: self.name(),
            expected,
            actual: key.len(),
        };
        match (self, key.len()) {
            (Self::AesGcm, 16) => Ok(&lc::AES_128_GCM),
            (Self::AesGcm, 24) => Ok(&lc::AES_192_GCM),
            (Self::AesGcm, 32) => Ok(&lc::AES_256_GCM),
            (Self::AesGcm, _) => Err(invalid("16, 24 or 32")),
            (Self::AesGcmSiv, 16) => Ok(&lc::AES_128_GCM_SIV),
            (Self::AesGcmSiv, 32) => Ok(&lc::AES_256_GCM_SIV),
            (Self::AesGcmSiv, _) => Err(invalid("16 or 32")),
            (Self::ChaCha20Poly1305, 32) => Ok(&lc::CHACHA20_POLY1305),
            (Self::ChaCha20Poly1305, _) => Err(invalid("32")),
        }
    }

    fn check_iv(self, iv: &[u8]) -> Result<()> {
        let accepted = match self {
            Self::AesGcm => (1..=1024).contains(&iv.len()),
            Self::AesGcmSiv | Self::ChaCha20Poly1305 => iv.len() == STANDARD_NONCE,
        };
        if accepted {
            return Ok(());
        }
        Err(Error::InvalidIvLength {
            algorithm: self.name(),
            expected: match self {
                Self::AesGcm => GCM_IV_LENGTHS,
                Self::AesGcmSiv | Self::ChaCha20Poly1305 => "12",
            },
            actual: iv.len(),
        })
    }

    fn check_tag_length(self, len: usize) -> Result<()> {
        let accepted = match self {
            // SP 800-38D section 5.2.1.2: 128 to 96 bits, and 64 or 32 for some applications.
            Self::AesGcm => matches!(len, 4 | 8 | 12..=FULL_TAG),
            // Truncated Poly1305 tags, as the KMIP test cases use them (96 bits and more).
            Self::ChaCha20Poly1305 => (12..=FULL_TAG).contains(&len),
            Self::AesGcmSiv => len == FULL_TAG,
        };
        if accepted {
            return Ok(());
        }
        Err(Error::InvalidTagLength {
            algorithm: self.name(),
            expected: match self {
                Self::AesGcm => GCM_TAG_LENGTHS,
                Self::ChaCha20Poly1305 => "12 to 16",
                Self::AesGcmSiv => "16",
            },
            actual: len,
        })
    }

    fn check_data(self, len: usize) -> Result<()> {
        // aws-lc-rs enforces the same bound for AES-GCM; checking first gives a clear message.
        // GCM-SIV and ChaCha20-Poly1305 allow far more than any request the server accepts.
        if self == Self::AesGcm && len as u64 > GCM_MAX_PLAINTEXT {
            return Err(Error::DataTooLong {
                algorithm: self.name(),
                maximum: GCM_MAX_PLAINTEXT,
                actual: len as u64,
            });
        }
        Ok(())
    }
}

/// Encrypts and authenticates; the tag has `tag_length` bytes.
pub(crate) fn seal(
    alg: Aead,
    key: &[u8],
    schedules: Option<&KeySchedules>,
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_length: usize,
) -> Result<Sealed> {
    let lc_alg = alg.library_algorithm(key)?;
    alg.check_iv(iv)?;
    alg.check_tag_length(tag_length)?;
    alg.check_data(plaintext.len())?;
    // Only AES-GCM passes the checks above with another IV length, and only AES-GCM and
    // ChaCha20-Poly1305 with a shorter tag.
    if iv.len() == STANDARD_NONCE && tag_length == FULL_TAG {
        library_seal(alg, lc_alg, key, schedules, iv, aad, plaintext)
    } else if alg == Aead::ChaCha20Poly1305 {
        let mut sealed = library_seal(alg, lc_alg, key, schedules, iv, aad, plaintext)?;
        sealed.tag.truncate(tag_length);
        Ok(sealed)
    } else {
        gcm_seal(key, iv, aad, plaintext, tag_length)
    }
}

/// Verifies the tag and, only if it matches, returns the plaintext.
pub(crate) fn open(
    alg: Aead,
    key: &[u8],
    schedules: Option<&KeySchedules>,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let lc_alg = alg.library_algorithm(key)?;
    alg.check_iv(iv)?;
    alg.check_tag_length(tag.len())?;
    alg.check_data(ciphertext.len())?;
    if iv.len() == STANDARD_NONCE && tag.len() == FULL_TAG {
        library_open(alg, lc_alg, key, schedules, iv, aad, ciphertext, tag)
    } else if alg == Aead::ChaCha20Poly1305 {
        chacha_open_truncated(lc_alg, key, schedules, iv, aad, ciphertext, tag)
    } else {
        gcm_open(key, iv, aad, ciphertext, tag)
    }
}

/// Whether `given` (possibly truncated) is the prefix of the `full` tag, compared in constant
/// time; an empty tag never is.
fn check_tag(full: &[u8], given: &[u8]) -> Result<()> {
    let prefix = full.get(..given.len()).unwrap_or(&[]);
    if given.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(prefix, given)) {
        return Err(Error::AuthenticationFailed);
    }
    Ok(())
}

/// ChaCha20-Poly1305 with a truncated tag: the keystream recovers the candidate plaintext, which
/// sealing again (deterministic for a key and nonce) turns into the full tag; the plaintext is
/// released only if the given tag is its prefix (compared in constant time), and wiped
/// otherwise.
fn chacha_open_truncated(
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
    schedules: Option<&KeySchedules>,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    let mut stream =
        chacha20::ChaCha20::new_from_slices(key, iv).map_err(|_| Error::InvalidIvLength {
            algorithm: Aead::ChaCha20Poly1305.name(),
            expected: "12",
            actual: iv.len(),
        })?;
    // Block 0 keys Poly1305; the data starts at block 1 (RFC 8439 section 2.8).
    stream.seek(64u64);
    stream.apply_keystream(&mut plain);
    let resealed = library_seal(
        Aead::ChaCha20Poly1305,
        lc_alg,
        key,
        schedules,
        iv,
        aad,
        &plain,
    )?;
    check_tag(&resealed.tag, tag)?;
    Ok(plain)
}

fn library_key(lc_alg: &'static lc::Algorithm, key: &[u8]) -> Result<LessSafeKey> {
    // `LessSafeKey` because the IV comes from the request (KMIP lets the client choose it);
    // uniqueness is the client's responsibility when it sends one, ours when we generate it.
    UnboundKey::new(lc_alg, key)
        .map(LessSafeKey::new)
        .map_err(Error::backend("load an AEAD key"))
}

/// An AEAD key made ready (aws-lc's AES key schedule and GHASH table, or ChaCha20-Poly1305's
/// context), kept with the key it was made from so that the next request with the same key
/// skips that work. The server keeps one with each object it caches (`kms_store`), so it lives
/// exactly as long as the cached key material.
///
/// It holds at most one prepared key, for the first AEAD used, on the heap: 16 bytes in each
/// object until a request prepares one. It is held with a copy of the bytes it was made from
/// and used only for those bytes and that AEAD (bytes compared in constant time); any other
/// call makes a key for itself alone. Dropping frees both: the copy is wiped by `Zeroizing`,
/// and aws-lc frees its context (`EVP_AEAD_CTX_free`; the key schedule lives inside the
/// context) with `OPENSSL_free`, which wipes the whole allocation before freeing it
/// (`crypto/mem.c`).
///
/// A clone starts empty, so that a changed copy of an object never meets the old key's
/// schedule, and every value compares equal: it is derived from the key material, which the
/// owner compares.
#[derive(Default)]
pub struct KeySchedules {
    kept: OnceLock<Box<Prepared>>,
}

struct Prepared {
    alg: Aead,
    key: Zeroizing<Vec<u8>>,
    ready: LessSafeKey,
}

/// A prepared key kept in [`KeySchedules`], or made for one call.
enum Ready<'a> {
    Kept(&'a LessSafeKey),
    Made(LessSafeKey),
}

impl Ready<'_> {
    fn get(&self) -> &LessSafeKey {
        match self {
            Ready::Kept(key) => key,
            Ready::Made(key) => key,
        }
    }
}

impl KeySchedules {
    /// How many prepared keys are kept (0 or 1).
    #[must_use]
    pub fn prepared(&self) -> usize {
        usize::from(self.kept.get().is_some())
    }

    /// The prepared key of `alg` for `key`: the kept one if it was made for this AEAD from
    /// these bytes, else a new one, kept if none is.
    fn ready(&self, alg: Aead, lc_alg: &'static lc::Algorithm, key: &[u8]) -> Result<Ready<'_>> {
        if self.kept.get().is_none() {
            let made = Box::new(Prepared {
                alg,
                key: Zeroizing::new(key.to_vec()),
                ready: library_key(lc_alg, key)?,
            });
            // Another request may have kept one meanwhile; the one made here serves this call.
            if let Err(made) = self.kept.set(made) {
                return Ok(Ready::Made(made.ready));
            }
        }
        match self.kept.get() {
            Some(kept)
                if kept.alg == alg
                    && bool::from(subtle::ConstantTimeEq::ct_eq(kept.key.as_slice(), key)) =>
            {
                Ok(Ready::Kept(&kept.ready))
            }
            _ => Ok(Ready::Made(library_key(lc_alg, key)?)),
        }
    }
}

/// The prepared key from `schedules` when given (see [`KeySchedules::ready`]), else one made
/// for this call.
fn ready<'a>(
    schedules: Option<&'a KeySchedules>,
    alg: Aead,
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
) -> Result<Ready<'a>> {
    match schedules {
        Some(kept) => kept.ready(alg, lc_alg, key),
        None => Ok(Ready::Made(library_key(lc_alg, key)?)),
    }
}

impl Clone for KeySchedules {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for KeySchedules {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

// Written by hand: only how many keys are prepared, never their bytes.
impl std::fmt::Debug for KeySchedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySchedules")
            .field("prepared", &self.prepared())
            .finish()
    }
}

fn library_seal(
    alg: Aead,
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
    schedules: Option<&KeySchedules>,
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed> {
    let key = ready(schedules, alg, lc_alg, key)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(Error::backend("read the nonce"))?;
    // The buffer holds plaintext until sealing succeeds, so it is wiped if sealing fails.
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .get()
        .seal_in_place_separate_tag(nonce, Aad::from(aad), buffer.as_mut_slice())
        .map_err(Error::backend("encrypt"))?;
    Ok(Sealed {
        ciphertext: std::mem::take(&mut *buffer),
        tag: tag.as_ref().to_vec(),
    })
}

#[allow(
    clippy::too_many_arguments,
    reason = "the AEAD inputs, each named by its role"
)]
fn library_open(
    alg: Aead,
    lc_alg: &'static lc::Algorithm,
    key: &[u8],
    schedules: Option<&KeySchedules>,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = ready(schedules, alg, lc_alg, key)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(Error::backend("read the nonce"))?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    // aws-lc-rs reports every failure here as `Unspecified`; with lengths already checked the
    // only cause left is a tag mismatch. On failure the buffer may hold partial plaintext and
    // is wiped when dropped.
    key.get()
        .open_in_place_separate_tag(nonce, Aad::from(aad), tag, buffer.as_mut_slice())
        .map_err(|_| Error::AuthenticationFailed)?;
    Ok(buffer)
}

/// AES-GCM for the shapes aws-lc-rs does not take (an IV other than 12 bytes, a tag shorter
/// than 16), composed here from the RustCrypto AES block cipher and GHASH exactly as NIST SP
/// 800-38D section 7 defines it: no crate offers GCM with an IV length chosen at run time. The
/// tag is computed at full length and truncated (MSB_t). Cross-checked against the `aes-gcm`
/// crate and the McGrew–Viega vectors in the tests.
fn gcm_seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_length: usize,
) -> Result<Sealed> {
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let full_tag = gcm_any(key, iv, aad, &mut buffer, Direction::Seal, None)?;
    let tag = full_tag.get(..tag_length).ok_or(Error::InvalidTagLength {
        algorithm: Aead::AesGcm.name(),
        expected: GCM_TAG_LENGTHS,
        actual: tag_length,
    })?;
    Ok(Sealed {
        ciphertext: std::mem::take(&mut *buffer),
        tag: tag.to_vec(),
    })
}

fn gcm_open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    gcm_any(key, iv, aad, &mut buffer, Direction::Open, Some(tag))?;
    Ok(buffer)
}

/// GCM-AE or GCM-AD on `data` in place. On opening, `tag` is compared (in constant time) before
/// anything is decrypted; a mismatch leaves `data` untouched. Answers the full tag.
fn gcm_any(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &mut [u8],
    direction: Direction,
    tag: Option<&[u8]>,
) -> Result<[u8; 16]> {
    let mut gcm = Gcm::new(key, iv, aad)?;
    match direction {
        Direction::Seal => {
            gcm.crypt(data, Direction::Seal);
            Ok(gcm.tag())
        }
        Direction::Open => {
            gcm.absorb_ciphertext(data);
            check_tag(&gcm.tag(), tag.unwrap_or(&[]))?;
            gcm.keystream(data);
            Ok([0u8; 16])
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Seal,
    Open,
}

/// An AES key of any size, for single blocks.
pub(crate) enum AesAny {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AesAny {
    pub(crate) fn new(key: &[u8]) -> Result<AesAny> {
        let invalid = || Error::InvalidKeyLength {
            algorithm: Aead::AesGcm.name(),
            expected: "16, 24 or 32",
            actual: key.len(),
        };
        Ok(match key.len() {
            16 => AesAny::A128(Aes128::new_from_slice(key).map_err(|_| invalid())?),
            24 => AesAny::A192(Aes192::new_from_slice(key).map_err(|_| invalid())?),
            32 => AesAny::A256(Aes256::new_from_slice(key).map_err(|_| invalid())?),
            _ => return Err(invalid()),
        })
    }

    pub(crate) fn encrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = GenericArray::from(block);
        match self {
            AesAny::A128(c) => c.encrypt_block(&mut b),
            AesAny::A192(c) => c.encrypt_block(&mut b),
            AesAny::A256(c) => c.encrypt_block(&mut b),
        }
        b.into()
    }

    pub(crate) fn decrypt(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = GenericArray::from(block);
        match self {
            AesAny::A128(c) => c.decrypt_block(&mut b),
            AesAny::A192(c) => c.decrypt_block(&mut b),
            AesAny::A256(c) => c.decrypt_block(&mut b),
        }
        b.into()
    }
}

/// AES-GCM as NIST SP 800-38D section 7 defines it, over data given in any number of parts:
/// the counter-mode keystream continues across parts, and GHASH absorbs the ciphertext a block
/// at a time (a partial block waits for the next part or the end).
struct Gcm {
    cipher: AesAny,
    j0: [u8; 16],
    counter: [u8; 16],
    /// Keystream of the current counter block, and how much of it is used.
    block: [u8; 16],
    used: usize,
    ghash: ghash::GHash,
    /// Ciphertext not yet absorbed (less than a block).
    pending: Vec<u8>,
    aad_bits: u64,
    ciphertext_bits: u64,
}

fn inc32(mut block: [u8; 16]) -> [u8; 16] {
    let counter = u32::from_be_bytes([block[12], block[13], block[14], block[15]]);
    block[12..].copy_from_slice(&counter.wrapping_add(1).to_be_bytes());
    block
}

fn length_block(a: u64, b: u64) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(&a.to_be_bytes());
    block[8..].copy_from_slice(&b.to_be_bytes());
    block
}

impl Gcm {
    fn new(key: &[u8], iv: &[u8], aad: &[u8]) -> Result<Gcm> {
        use ghash::universal_hash::{KeyInit as _, UniversalHash};
        let cipher = AesAny::new(key)?;
        let h = cipher.encrypt([0u8; 16]);
        // J0: IV || 0^31 || 1 for 96-bit IVs, else GHASH(IV padded || 0^64 || [len(IV)]_64).
        let j0 = if iv.len() == STANDARD_NONCE {
            let mut j = [0u8; 16];
            j[..12].copy_from_slice(iv);
            j[15] = 1;
            j
        } else {
            let mut g = ghash::GHash::new(&h.into());
            g.update_padded(iv);
            g.update(&[length_block(0, (iv.len() as u64).wrapping_mul(8)).into()]);
            g.finalize().into()
        };
        let mut ghash = ghash::GHash::new(&h.into());
        ghash.update_padded(aad);
        Ok(Gcm {
            cipher,
            j0,
            counter: j0,
            block: [0u8; 16],
            used: 16,
            ghash,
            pending: Vec::with_capacity(16),
            aad_bits: (aad.len() as u64).wrapping_mul(8),
            ciphertext_bits: 0,
        })
    }

    /// XORs the keystream into `data`.
    fn keystream(&mut self, data: &mut [u8]) {
        for byte in data {
            if self.used == 16 {
                self.counter = inc32(self.counter);
                self.block = self.cipher.encrypt(self.counter);
                self.used = 0;
            }
            *byte ^= self.block[self.used];
            self.used += 1;
        }
    }

    fn absorb_ciphertext(&mut self, ciphertext: &[u8]) {
        use ghash::universal_hash::UniversalHash;
        self.ciphertext_bits = self
            .ciphertext_bits
            .wrapping_add((ciphertext.len() as u64).wrapping_mul(8));
        let mut rest = ciphertext;
        if !self.pending.is_empty() {
            let take = (16 - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == 16 {
                let block: [u8; 16] = self.pending[..].try_into().unwrap_or([0u8; 16]);
                self.ghash.update(&[block.into()]);
                self.pending.clear();
            }
        }
        let whole = rest.len() - rest.len() % 16;
        if whole > 0 {
            self.ghash.update_padded(&rest[..whole]);
        }
        self.pending.extend_from_slice(&rest[whole..]);
    }

    /// Encrypts (`Seal`) or decrypts (`Open`) one part in place.
    fn crypt(&mut self, data: &mut [u8], direction: Direction) {
        if direction == Direction::Open {
            self.absorb_ciphertext(data);
            self.keystream(data);
        } else {
            self.keystream(data);
            self.absorb_ciphertext(data);
        }
    }

    /// The full tag over everything absorbed so far.
    fn tag(&self) -> [u8; 16] {
        use ghash::universal_hash::UniversalHash;
        let mut ghash = self.ghash.clone();
        if !self.pending.is_empty() {
            ghash.update_padded(&self.pending);
        }
        ghash.update(&[length_block(self.aad_bits, self.ciphertext_bits).into()]);
        let s: [u8; 16] = ghash.finalize().into();
        let mask = self.cipher.encrypt(self.j0);
        std::array::from_fn(|i| s[i] ^ mask[i])
    }
}

/// AES-GCM over parts (KMIP streamed Encrypt and Decrypt): each encrypted part is answered as
/// it comes; a decryption's plaintext is held back until the final part's tag verified.
pub struct GcmStream {
    gcm: Gcm,
    direction: Direction,
    tag_length: usize,
    /// Decryption: the plaintext so far, released only after the tag verified.
    held: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for GcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmStream(***)")
    }
}

/// Most bytes a streamed decryption holds back.
pub const MAX_STREAMED_DECRYPTION: usize = 64 * 1024 * 1024;

impl GcmStream {
    /// Starts encrypting (`decrypt` false) or decrypting with `key`, `iv` and `aad`.
    pub fn start(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        tag_length: usize,
        decrypt: bool,
    ) -> Result<GcmStream> {
        Aead::AesGcm.check_iv(iv)?;
        Aead::AesGcm.check_tag_length(tag_length)?;
        Ok(GcmStream {
            gcm: Gcm::new(key, iv, aad)?,
            direction: if decrypt {
                Direction::Open
            } else {
                Direction::Seal
            },
            tag_length,
            held: Zeroizing::new(Vec::new()),
        })
    }

    /// One part: its ciphertext when encrypting; nothing when decrypting (see [`GcmStream`]).
    pub fn update(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut part = data.to_vec();
        self.gcm.crypt(&mut part, self.direction);
        if self.direction == Direction::Seal {
            return Ok(part);
        }
        if self.held.len() + part.len() > MAX_STREAMED_DECRYPTION {
            return Err(Error::DataTooLong {
                algorithm: "streamed AES-GCM decryption",
                maximum: MAX_STREAMED_DECRYPTION as u64,
                actual: (self.held.len() + part.len()) as u64,
            });
        }
        self.held.extend_from_slice(&Zeroizing::new(part));
        Ok(Vec::new())
    }

    /// Ends an encryption: the tag.
    pub fn finish_seal(self) -> Vec<u8> {
        let tag = self.gcm.tag();
        tag[..self.tag_length.min(16)].to_vec()
    }

    /// Ends a decryption: the whole plaintext if `tag` verifies.
    pub fn finish_open(self, tag: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        check_tag(&self.gcm.tag(), tag)?;
        Ok(self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    /// [`super::seal`] with nothing kept, as most cases here want.
    fn seal(
        alg: Aead,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_length: usize,
    ) -> Result<Sealed> {
        super::seal(alg, key, None, iv, aad, plaintext, tag_length)
    }

    /// [`super::open`] with nothing kept.
    fn open(
        alg: Aead,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        super::open(alg, key, None, iv, aad, ciphertext, tag)
    }

    #[test]
    fn kept_schedules_serve_only_the_key_they_were_made_from() -> Result<()> {
        let kept = KeySchedules::default();
        let (a, b, iv) = ([1u8; 32], [2u8; 32], [3u8; 12]);
        let fresh_a = seal(Aead::AesGcm, &a, &iv, b"ad", b"data", 16)?;
        let fresh_b = seal(Aead::AesGcm, &b, &iv, b"ad", b"data", 16)?;
        assert_ne!(fresh_a.ciphertext, fresh_b.ciphertext);
        assert_eq!(kept.prepared(), 0);
        // Made for `a` and kept; used again for `a`.
        for _ in 0..2 {
            let sealed = super::seal(Aead::AesGcm, &a, Some(&kept), &iv, b"ad", b"data", 16)?;
            assert_eq!(
                (&sealed.ciphertext, &sealed.tag),
                (&fresh_a.ciphertext, &fresh_a.tag)
            );
            assert_eq!(kept.prepared(), 1);
        }
        // Other bytes of the same length never meet `a`'s schedule, sealing or opening.
        let sealed = super::seal(Aead::AesGcm, &b, Some(&kept), &iv, b"ad", b"data", 16)?;
        assert_eq!(
            (&sealed.ciphertext, &sealed.tag),
            (&fresh_b.ciphertext, &fresh_b.tag)
        );
        let opened = super::open(
            Aead::AesGcm,
            &b,
            Some(&kept),
            &iv,
            b"ad",
            &fresh_b.ciphertext,
            &fresh_b.tag,
        )?;
        assert_eq!(opened.as_slice(), b"data");
        assert!(matches!(
            super::open(
                Aead::AesGcm,
                &a,
                Some(&kept),
                &iv,
                b"ad",
                &fresh_b.ciphertext,
                &fresh_b.tag
            ),
            Err(Error::AuthenticationFailed)
        ));
        // Another AEAD with the same bytes never meets AES-GCM's schedule.
        let chacha = super::seal(Aead::ChaCha20Poly1305, &a, Some(&kept), &iv, b"", b"x", 12)?;
        let fresh = seal(Aead::ChaCha20Poly1305, &a, &iv, b"", b"x", 12)?;
        assert_eq!(
            (&chacha.ciphertext, &chacha.tag),
            (&fresh.ciphertext, &fresh.tag)
        );
        assert_eq!(kept.prepared(), 1);
        let opened = super::open(
            Aead::ChaCha20Poly1305,
            &a,
            Some(&kept),
            &iv,
            b"",
            &chacha.ciphertext,
            &chacha.tag,
        )?;
        assert_eq!(opened.as_slice(), b"x");
        // A copy starts empty, equal, and shows no key bytes.
        assert_eq!(kept.clone().prepared(), 0);
        assert!(kept.clone() == kept);
        assert_eq!(format!("{kept:?}"), "KeySchedules { prepared: 1 }");
        assert_eq!(std::mem::size_of::<KeySchedules>(), 16);
        Ok(())
    }

    /// Test cases from McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)".
    struct GcmCase {
        key: &'static str,
        iv: &'static str,
        aad: &'static str,
        plaintext: &'static str,
        ciphertext: &'static str,
        tag: &'static str,
    }

    const GCM_PLAINTEXT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308";
    const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

    const GCM_CASES: [GcmCase; 5] = [
        // Test case 6: a 60-byte IV (the KMIP test cases use this length).
        GcmCase {
            key: GCM_KEY,
            iv: "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728\
                 c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
            aad: GCM_AAD,
            plaintext: GCM_PLAINTEXT,
            ciphertext: "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca7\
                         01e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
            tag: "619cc5aefffe0bfa462af43c1699d050",
        },
        // Test case 2: zero key, zero IV, one zero block.
        GcmCase {
            key: "00000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            plaintext: "00000000000000000000000000000000",
            ciphertext: "0388dace60b6a392f328c2b971b2fe78",
            tag: "ab6e47d42cec13bdf53a67b21257bddf",
        },
        // Test case 3: four blocks, no AAD.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbaddecaf888",
            aad: "",
            plaintext: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                        1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            ciphertext: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                         21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
            tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
        },
        // Test case 4: partial last block and AAD.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbaddecaf888",
            aad: GCM_AAD,
            plaintext: GCM_PLAINTEXT,
            ciphertext: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                         21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            tag: "5bc94fbc3221a5db94fae95ae7121a47",
        },
        // Test case 5: 8-byte IV, which takes the RustCrypto path.
        GcmCase {
            key: GCM_KEY,
            iv: "cafebabefacedbad",
            aad: GCM_AAD,
            plaintext: GCM_PLAINTEXT,
            ciphertext: "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c7423\
                         73806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598",
            tag: "3612d2e79e3b0785561be14aaca2fccb",
        },
    ];

    #[test]
    fn aes_gcm_matches_the_gcm_specification() -> Result<()> {
        for (i, case) in GCM_CASES.iter().enumerate() {
            let (key, iv, aad) = (hex(case.key), hex(case.iv), hex(case.aad));
            let plaintext = hex(case.plaintext);
            let sealed = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, 16)?;
            assert_eq!(sealed.ciphertext, hex(case.ciphertext), "case {i}");
            assert_eq!(sealed.tag, hex(case.tag), "case {i}");
            let opened = open(
                Aead::AesGcm,
                &key,
                &iv,
                &aad,
                &sealed.ciphertext,
                &sealed.tag,
            )?;
            assert_eq!(opened.as_slice(), plaintext, "case {i}");
        }
        Ok(())
    }

    /// Both implementations must agree wherever both apply, or a key encrypted by one could not
    /// be decrypted by the other.
    #[test]
    fn library_and_rustcrypto_gcm_agree() -> Result<()> {
        let iv = [7u8; 12];
        for key_len in [16, 24, 32] {
            let key = vec![3u8; key_len];
            let library = seal(Aead::AesGcm, &key, &iv, b"aad", b"some plaintext", 16)?;
            let rustcrypto = gcm_seal(&key, &iv, b"aad", b"some plaintext", 16)?;
            assert_eq!(library.ciphertext, rustcrypto.ciphertext);
            assert_eq!(library.tag, rustcrypto.tag);
        }
        Ok(())
    }

    #[test]
    fn truncated_gcm_tags_verify_and_are_prefixes_of_the_full_tag() -> Result<()> {
        let key = hex(GCM_KEY);
        let iv = hex("cafebabefacedbaddecaf888");
        let aad = hex(GCM_AAD);
        let plaintext = hex(GCM_PLAINTEXT);
        let full = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, 16)?;
        for tag_length in 12..=15 {
            let sealed = seal(Aead::AesGcm, &key, &iv, &aad, &plaintext, tag_length)?;
            assert_eq!(sealed.tag.len(), tag_length);
            assert_eq!(Some(sealed.tag.as_slice()), full.tag.get(..tag_length));
            assert_eq!(sealed.ciphertext, full.ciphertext);
            let opened = open(
                Aead::AesGcm,
                &key,
                &iv,
                &aad,
                &sealed.ciphertext,
                &sealed.tag,
            )?;
            assert_eq!(opened.as_slice(), plaintext);

            let mut bad_tag = sealed.tag.clone();
            if let Some(first) = bad_tag.first_mut() {
                *first ^= 0x80;
            }
            assert!(matches!(
                open(Aead::AesGcm, &key, &iv, &aad, &sealed.ciphertext, &bad_tag),
                Err(Error::AuthenticationFailed)
            ));
        }
        Ok(())
    }

    #[test]
    fn gcm_takes_8_12_and_16_byte_ivs_with_every_key_size() -> Result<()> {
        for key_len in [16, 24, 32] {
            let key = vec![0x11u8; key_len];
            for iv_len in [8, 12, 16] {
                let iv = vec![0x22u8; iv_len];
                for tag_length in 12..=16 {
                    let sealed = seal(Aead::AesGcm, &key, &iv, b"a", b"plaintext!", tag_length)?;
                    let opened = open(
                        Aead::AesGcm,
                        &key,
                        &iv,
                        b"a",
                        &sealed.ciphertext,
                        &sealed.tag,
                    )?;
                    assert_eq!(opened.as_slice(), b"plaintext!");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn tag_lengths_outside_the_accepted_range_are_refused() {
        let key = [0u8; 32];
        let iv = [0u8; 12];
        for tag_length in [0, 3, 5, 11, 17] {
            assert!(matches!(
                seal(Aead::AesGcm, &key, &iv, b"", b"x", tag_length),
                Err(Error::InvalidTagLength { .. })
            ));
            let tag = vec![0u8; tag_length];
            assert!(matches!(
                open(Aead::AesGcm, &key, &iv, b"", b"x", &tag),
                Err(Error::InvalidTagLength { .. })
            ));
        }
        assert!(matches!(
            seal(Aead::AesGcmSiv, &key, &iv, b"", b"x", 12),
            Err(Error::InvalidTagLength { actual: 12, .. })
        ));
        assert!(matches!(
            seal(Aead::ChaCha20Poly1305, &key, &iv, b"", b"x", 11),
            Err(Error::InvalidTagLength { actual: 11, .. })
        ));
        // A truncated ChaCha20-Poly1305 tag is the full tag's prefix, and only it opens.
        let full = seal(Aead::ChaCha20Poly1305, &key, &iv, b"ad", b"data", 16).expect("seal");
        let short = seal(Aead::ChaCha20Poly1305, &key, &iv, b"ad", b"data", 12).expect("seal");
        assert_eq!(short.tag, full.tag[..12]);
        let opened = open(
            Aead::ChaCha20Poly1305,
            &key,
            &iv,
            b"ad",
            &short.ciphertext,
            &short.tag,
        )
        .expect("open");
        assert_eq!(opened.as_slice(), b"data");
        let mut bad = short.tag.clone();
        bad[11] ^= 1;
        assert!(
            open(
                Aead::ChaCha20Poly1305,
                &key,
                &iv,
                b"ad",
                &short.ciphertext,
                &bad
            )
            .is_err()
        );
    }

    #[test]
    fn chacha20_poly1305_matches_rfc_8439_section_2_8_2() -> Result<()> {
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        let nonce = hex("070000004041424344454647");
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only \
                          one tip for the future, sunscreen would be it.";
        let sealed = seal(Aead::ChaCha20Poly1305, &key, &nonce, &aad, plaintext, 16)?;
        assert_eq!(
            sealed.ciphertext,
            hex(
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
                 3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
                 92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
                 3ff4def08e4b7a9de576d26586cec64b6116"
            )
        );
        assert_eq!(sealed.tag, hex("1ae10b594f09e26a7e902ecbd0600691"));
        let opened = open(
            Aead::ChaCha20Poly1305,
            &key,
            &nonce,
            &aad,
            &sealed.ciphertext,
            &sealed.tag,
        )?;
        assert_eq!(opened.as_slice(), plaintext);
        Ok(())
    }

    #[test]
    fn tampering_with_any_input_fails_authentication() -> Result<()> {
        let cases: [(Aead, usize, usize); 6] = [
            (Aead::AesGcm, 32, 12),
            (Aead::AesGcm, 16, 16),
            (Aead::AesGcmSiv, 16, 12),
            (Aead::AesGcmSiv, 32, 12),
            (Aead::ChaCha20Poly1305, 32, 12),
            (Aead::AesGcm, 24, 8),
        ];
        for (alg, key_len, iv_len) in cases {
            let key = vec![0x5au8; key_len];
            let iv = vec![0x01u8; iv_len];
            let sealed = seal(alg, &key, &iv, b"header", b"attack at dawn", 16)?;

            let mut ciphertext = sealed.ciphertext.clone();
            if let Some(byte) = ciphertext.get_mut(3) {
                *byte ^= 1;
            }
            let mut tag = sealed.tag.clone();
            if let Some(byte) = tag.last_mut() {
                *byte ^= 1;
            }
            let mut other_iv = iv.clone();
            if let Some(byte) = other_iv.first_mut() {
                *byte ^= 1;
            }
            let attempts = [
                open(alg, &key, &iv, b"header", &ciphertext, &sealed.tag),
                open(alg, &key, &iv, b"header", &sealed.ciphertext, &tag),
                open(alg, &key, &iv, b"HEADER", &sealed.ciphertext, &sealed.tag),
                open(
                    alg,
                    &key,
                    &other_iv,
                    b"header",
                    &sealed.ciphertext,
                    &sealed.tag,
                ),
            ];
            for attempt in attempts {
                assert!(
                    matches!(attempt, Err(Error::AuthenticationFailed)),
                    "{alg:?}/{key_len}/{iv_len}: {attempt:?}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn gcm_siv_and_chacha_refuse_other_key_and_nonce_lengths() {
        assert!(matches!(
            seal(Aead::AesGcmSiv, &[0u8; 24], &[0u8; 12], b"", b"x", 16),
            Err(Error::InvalidKeyLength { actual: 24, .. })
        ));
        assert!(matches!(
            seal(
                Aead::ChaCha20Poly1305,
                &[0u8; 16],
                &[0u8; 12],
                b"",
                b"x",
                16
            ),
            Err(Error::InvalidKeyLength { actual: 16, .. })
        ));
        assert!(matches!(
            seal(Aead::AesGcmSiv, &[0u8; 16], &[0u8; 16], b"", b"x", 16),
            Err(Error::InvalidIvLength { actual: 16, .. })
        ));
        // AES-GCM takes any IV from 1 byte (up to the server's bound), not none.
        assert!(seal(Aead::AesGcm, &[0u8; 16], &[0u8; 13], b"", b"x", 16).is_ok());
        for bad in [0, 1025] {
            assert!(matches!(
                seal(Aead::AesGcm, &[0u8; 16], &vec![0u8; bad], b"", b"x", 16),
                Err(Error::InvalidIvLength { .. })
            ));
        }
    }

    /// The GCM composed here equals the `aes-gcm` crate for IV lengths it can be built for,
    /// every key size, random data and AAD, and every accepted tag length (a truncation).
    mod against_aes_gcm {
        use aes_gcm::aead::consts::{U1, U8, U12, U16, U60, U64};
        use aes_gcm::aead::generic_array::ArrayLength;
        use aes_gcm::{AeadInPlace, AesGcm, KeyInit as _};
        use proptest::prelude::*;

        use super::super::*;
        use super::{open, seal};

        fn oracle<N: ArrayLength<u8>>(
            key: &[u8],
            iv: &[u8],
            aad: &[u8],
            data: &[u8],
        ) -> (Vec<u8>, Vec<u8>) {
            let mut buffer = data.to_vec();
            let nonce = GenericArray::<u8, N>::from_slice(iv);
            let tag = match key.len() {
                16 => AesGcm::<Aes128, N>::new_from_slice(key)
                    .unwrap()
                    .encrypt_in_place_detached(nonce, aad, &mut buffer),
                24 => AesGcm::<Aes192, N>::new_from_slice(key)
                    .unwrap()
                    .encrypt_in_place_detached(nonce, aad, &mut buffer),
                _ => AesGcm::<Aes256, N>::new_from_slice(key)
                    .unwrap()
                    .encrypt_in_place_detached(nonce, aad, &mut buffer),
            }
            .unwrap();
            (buffer, tag.to_vec())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn same_as_aes_gcm(
                key_len in prop::sample::select(vec![16usize, 24, 32]),
                iv_len in prop::sample::select(vec![1usize, 8, 12, 16, 60, 64]),
                tag_len in prop::sample::select(vec![4usize, 8, 12, 13, 14, 15, 16]),
                seed in any::<[u8; 32]>(),
                aad in prop::collection::vec(any::<u8>(), 0..40),
                data in prop::collection::vec(any::<u8>(), 0..100),
            ) {
                let key = &seed[..key_len];
                let iv: Vec<u8> = (0..iv_len).map(|i| seed[i % 32] ^ (i as u8)).collect();
                let (ciphertext, tag) = match iv_len {
                    1 => oracle::<U1>(key, &iv, &aad, &data),
                    8 => oracle::<U8>(key, &iv, &aad, &data),
                    12 => oracle::<U12>(key, &iv, &aad, &data),
                    16 => oracle::<U16>(key, &iv, &aad, &data),
                    60 => oracle::<U60>(key, &iv, &aad, &data),
                    _ => oracle::<U64>(key, &iv, &aad, &data),
                };
                let sealed = seal(Aead::AesGcm, key, &iv, &aad, &data, tag_len).unwrap();
                prop_assert_eq!(&sealed.ciphertext, &ciphertext);
                prop_assert_eq!(&sealed.tag[..], &tag[..tag_len]);
                let opened = open(Aead::AesGcm, key, &iv, &aad, &sealed.ciphertext, &sealed.tag).unwrap();
                prop_assert_eq!(opened.as_slice(), &data[..]);
                let mut bad = sealed.tag.clone();
                bad[0] ^= 1;
                prop_assert!(open(Aead::AesGcm, key, &iv, &aad, &sealed.ciphertext, &bad).is_err());
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Streamed encryption equals one-shot encryption for every split of the input, and
        /// streamed decryption gives the data back only with the right tag.
        #[test]
        fn streamed_gcm_equals_one_shot(
            seed in proptest::prelude::any::<[u8; 32]>(),
            iv_len in 1usize..64,
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let key = &seed[..16];
            let iv: Vec<u8> = (0..iv_len).map(|i| seed[i % 32]).collect();
            let one = seal(Aead::AesGcm, key, &iv, b"aad", &data, 13).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut stream = GcmStream::start(key, &iv, b"aad", 13, false).unwrap();
            let mut out = Vec::new();
            for w in cuts.windows(2) {
                out.extend(stream.update(&data[w[0]..w[1]]).unwrap());
            }
            let tag = stream.finish_seal();
            proptest::prop_assert_eq!(&out, &one.ciphertext);
            proptest::prop_assert_eq!(&tag, &one.tag);
            let mut back = GcmStream::start(key, &iv, b"aad", 13, true).unwrap();
            for w in cuts.windows(2) {
                proptest::prop_assert!(back.update(&out[w[0]..w[1]]).unwrap().is_empty());
            }
            let opened = back.finish_open(&tag).unwrap();
            proptest::prop_assert_eq!(opened.as_slice(), &data[..]);
            let mut wrong = GcmStream::start(key, &iv, b"aad", 13, true).unwrap();
            wrong.update(&out).unwrap();
            let mut bad = tag.clone();
            bad[0] ^= 1;
            proptest::prop_assert!(wrong.finish_open(&bad).is_err());
        }
    }
}
