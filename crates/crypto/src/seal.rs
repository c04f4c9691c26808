//! Sealing records at rest under a key the caller derived (the `redis-findex` store): AES-256-GCM
//! with a random 96-bit nonce, or deterministically with AES-256-GCM-SIV and a synthetic nonce
//! (an HMAC of the associated data and plaintext), so that equal inputs seal to equal bytes and
//! an entry can be found and removed again. The key is expanded once, in [`Sealer::new`].
//!
//! A sealed record is `nonce (12) || ciphertext || tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM, AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const NONCE: usize = 12;
const TAG: usize = 16;

/// A 256-bit key prepared for sealing and opening records.
pub struct Sealer {
    random: LessSafeKey,
    deterministic: LessSafeKey,
    synthetic_iv: hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// Prepares `key` (32 bytes). The deterministic mode uses sub-keys derived from it, so one
    /// key serves both modes without the two ever sharing a cipher key.
    pub fn new(key: &[u8]) -> Result<Sealer> {
        if key.len() != 32 {
            return Err(Error::InvalidKeyLength {
                algorithm: "record sealing (AES-256-GCM)",
                expected: "32",
                actual: key.len(),
            });
        }
        let derive = |label: &[u8]| -> Zeroizing<Vec<u8>> {
            let k = hmac::Key::new(hmac::HMAC_SHA256, key);
            Zeroizing::new(hmac::sign(&k, label).as_ref().to_vec())
        };
        let unbound = |alg, k: &[u8]| {
            UnboundKey::new(alg, k)
                .map(LessSafeKey::new)
                .map_err(Error::backend("prepare a sealing key"))
        };
        Ok(Sealer {
            random: unbound(&AES_256_GCM, key)?,
            deterministic: unbound(&AES_256_GCM_SIV, &derive(b"deterministic cipher")[..])?,
            synthetic_iv: hmac::Key::new(hmac::HMAC_SHA256, &derive(b"synthetic iv")[..]),
        })
    }

    /// Seals `plaintext` bound to `aad`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE];
        crate::rng::fill_iv(&mut nonce)?;
        seal_with(&self.random, nonce, aad, plaintext)
    }

    /// Seals `plaintext` bound to `aad` so that the same inputs always give the same bytes
    /// (AES-256-GCM-SIV under a synthetic nonce): for set members that must be removable.
    pub fn seal_deterministic(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut ctx = hmac::Context::with_key(&self.synthetic_iv);
        ctx.update(&(aad.len() as u64).to_be_bytes());
        ctx.update(aad);
        ctx.update(plaintext);
        let tag = ctx.sign();
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE]);
        seal_with(&self.deterministic, nonce, aad, plaintext)
    }

    /// Opens a record sealed by [`Sealer::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open_with(&self.random, aad, sealed)
    }

    /// Opens a record sealed by [`Sealer::seal_deterministic`] with the same `aad`.
    pub fn open_deterministic(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open_with(&self.deterministic, aad, sealed)
    }
}

fn seal_with(
    key: &LessSafeKey,
    nonce: [u8; NONCE],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(NONCE + plaintext.len() + TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(NONCE);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(Error::backend("seal a record"))?;
    out.append(&mut body);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE + TAG {
        return Err(Error::AuthenticationFailed);
    }
    let (nonce, body) = sealed.split_at(NONCE);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::AuthenticationFailed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| Error::AuthenticationFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_associated_data() {
        let s = Sealer::new(&[7u8; 32]).expect("key");
        let a = s.seal(b"k1", b"secret").expect("seal");
        assert_ne!(a, s.seal(b"k1", b"secret").expect("seal"), "random nonces");
        assert_eq!(s.open(b"k1", &a).expect("open").as_slice(), b"secret");
        assert!(s.open(b"k2", &a).is_err(), "moved to another entry");
        let d = s.seal_deterministic(b"w", b"uid").expect("seal");
        assert_eq!(d, s.seal_deterministic(b"w", b"uid").expect("seal"));
        assert_ne!(d, s.seal_deterministic(b"v", b"uid").expect("seal"));
        assert_eq!(
            s.open_deterministic(b"w", &d).expect("open").as_slice(),
            b"uid"
        );
        assert!(
            s.open(b"w", &d).is_err(),
            "the two modes use different keys"
        );
        assert!(s.open(b"k1", &a[..20]).is_err());
        assert!(Sealer::new(&[0u8; 16]).is_err());
    }
}
