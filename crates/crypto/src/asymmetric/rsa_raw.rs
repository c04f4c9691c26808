//! RSA with the parameter combinations the crypto library does not offer: OAEP whose MGF1 hash
//! differs from its label hash, and PSS verification with SHA-1 or SHA-224 (RFC 8017). The
//! paddings are written here from RFC 8017; the modular exponentiation is `crypto-bigint`'s,
//! constant time in the exponent, and OAEP decoding runs in constant time with `subtle`, so that
//! neither timing nor the error tells anything about the plaintext. Moduli up to 4096 bits.
//!
//! The common combinations never come here: they run in aws-lc-rs.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{U2048, U3072, U4096, Uint};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use super::encoding;
use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, hash};

fn limbs_to_be(words: &[u64], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; words.len() * 8]);
    for (i, w) in words.iter().enumerate() {
        let at = out.len() - (i + 1) * 8;
        out[at..at + 8].copy_from_slice(&w.to_be_bytes());
    }
    let start = out.len() - len;
    Zeroizing::new(out[start..].to_vec())
}

fn pow_fixed<const L: usize>(
    base: &[u8],
    exponent: &[u8],
    modulus: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let pad = |b: &[u8]| {
        let mut v = Zeroizing::new(vec![0u8; L * 8]);
        let at = v.len() - b.len();
        v[at..].copy_from_slice(b);
        v
    };
    let n = Uint::<L>::from_be_slice(&pad(modulus));
    let params = DynResidueParams::new(&n);
    let x = DynResidue::new(&Uint::<L>::from_be_slice(&pad(base)), params);
    let e = Uint::<L>::from_be_slice(&pad(exponent));
    let y = x.pow(&e).retrieve();
    limbs_to_be(y.as_words(), len)
}

/// `base^exponent mod modulus`, as `modulus.len()` bytes. Constant time in the exponent.
fn modpow(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let too_big = Error::UnsupportedAlgorithm {
        algorithm: "RSA",
        detail: "this padding combination is computed here for moduli up to 4096 bits only",
    };
    let len = modulus.len();
    if modulus.last().is_none_or(|b| b & 1 == 0) || base.len() > len || exponent.len() > len {
        return Err(Error::InvalidKey {
            algorithm: "RSA",
            reason: "the modulus is not odd or the input is longer than it",
        });
    }
    Ok(match len {
        0..=256 => pow_fixed::<{ U2048::LIMBS }>(base, exponent, modulus, len),
        257..=384 => pow_fixed::<{ U3072::LIMBS }>(base, exponent, modulus, len),
        385..=512 => pow_fixed::<{ U4096::LIMBS }>(base, exponent, modulus, len),
        _ => return Err(too_big),
    })
}

fn strip(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

/// MGF1 (RFC 8017 B.2.1).
fn mgf1(h: HashAlgorithm, seed: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + h.output_len()));
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = Zeroizing::new(seed.to_vec());
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash(h, &input)?);
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

fn xor(a: &mut [u8], b: &[u8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// RSAES-OAEP encryption with any hash pair (RFC 8017 7.1.1).
pub fn oaep_encrypt(
    spki: &[u8],
    hash_alg: HashAlgorithm,
    mgf1_alg: HashAlgorithm,
    label: &[u8],
    message: &[u8],
) -> Result<Vec<u8>> {
    let (n, e) = encoding::rsa_public_components(spki)?;
    let k = n.len();
    let h_len = hash_alg.output_len();
    let maximum = k.saturating_sub(2 * h_len + 2);
    if message.len() > maximum {
        return Err(Error::DataTooLong {
            algorithm: "RSA-OAEP",
            maximum: maximum as u64,
            actual: message.len() as u64,
        });
    }
    let mut db = Zeroizing::new(hash(hash_alg, label)?);
    db.resize(k - message.len() - h_len - 2, 0);
    db.push(1);
    db.extend_from_slice(message);
    let seed = crate::random_bytes(h_len)?;
    let mut masked_db = db.clone();
    xor(&mut masked_db, &mgf1(mgf1_alg, &seed, k - h_len - 1)?);
    let mut masked_seed = Zeroizing::new(seed.to_vec());
    xor(&mut masked_seed, &mgf1(mgf1_alg, &masked_db, h_len)?);
    let mut em = Zeroizing::new(vec![0u8]);
    em.extend_from_slice(&masked_seed);
    em.extend_from_slice(&masked_db);
    Ok(modpow(&em, &e, &n)?.to_vec())
}

/// RSAES-OAEP decryption with any hash pair (RFC 8017 7.1.2), in constant time.
pub fn oaep_decrypt(
    pkcs8: &[u8],
    hash_alg: HashAlgorithm,
    mgf1_alg: HashAlgorithm,
    label: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let failed = Error::DecryptionFailed {
        algorithm: "RSA-OAEP",
    };
    let key = encoding::rsa_private_components(pkcs8)?;
    let n = strip(&key.modulus);
    let k = n.len();
    let h_len = hash_alg.output_len();
    let c = strip(ciphertext);
    if ciphertext.len() != k || k < 2 * h_len + 2 || c.len() == n.len() && c >= n {
        return Err(failed);
    }
    let em = modpow(ciphertext, strip(&key.private_exponent), n)?;
    let (y, rest) = em.split_at(1);
    let (masked_seed, masked_db) = rest.split_at(h_len);
    let mut seed = Zeroizing::new(masked_seed.to_vec());
    xor(&mut seed, &mgf1(mgf1_alg, masked_db, h_len)?);
    let mut db = Zeroizing::new(masked_db.to_vec());
    xor(&mut db, &mgf1(mgf1_alg, &seed, k - h_len - 1)?);
    let l_hash = hash(hash_alg, label)?;
    // Every byte is looked at whatever the content: the checks are folded into `good`.
    let mut good = y[0].ct_eq(&0) & db[..h_len].ct_eq(&l_hash[..]);
    let mut looking = subtle::Choice::from(1);
    let mut index: u32 = 0;
    for (i, byte) in db[h_len..].iter().enumerate() {
        let is_one = byte.ct_eq(&1);
        let is_zero = byte.ct_eq(&0);
        let found = looking & is_one;
        index.conditional_assign(&(i as u32), found);
        // Before the separator only zeros may appear.
        good &= !(looking & !is_one & !is_zero);
        looking &= !is_one;
    }
    good &= !looking;
    if !bool::from(good) {
        return Err(failed);
    }
    Ok(Zeroizing::new(db[h_len + index as usize + 1..].to_vec()))
}

/// RSASSA-PSS verification with any hash (RFC 8017 9.1.2, MGF1 with the same hash); the salt
/// length is `salt`, or recovered from the signature when `None`.
pub fn pss_verify(
    spki: &[u8],
    hash_alg: HashAlgorithm,
    salt: Option<usize>,
    m_hash: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let (n, e) = encoding::rsa_public_components(spki)?;
    let k = n.len();
    if signature.len() != k || m_hash.len() != hash_alg.output_len() {
        return Ok(false);
    }
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    let em_bits = bits - 1;
    let em_len = em_bits.div_ceil(8);
    let em_full = modpow(signature, &e, &n)?;
    if em_full.len() < em_len || em_full[..em_full.len() - em_len].iter().any(|b| *b != 0) {
        return Ok(false);
    }
    let em = &em_full[em_full.len() - em_len..];
    let h_len = hash_alg.output_len();
    if em_len < h_len + 2 || em.last() != Some(&0xBC) {
        return Ok(false);
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let h = &rest[..h_len];
    let top_bits = 8 * em_len - em_bits;
    if masked_db[0] >> (8 - top_bits) != 0 {
        return Ok(false);
    }
    let mut db = mgf1(hash_alg, h, masked_db.len())?;
    xor(&mut db, masked_db);
    db[0] &= 0xFF >> top_bits;
    let Some(one) = db.iter().position(|b| *b != 0) else {
        return Ok(false);
    };
    if db[one] != 1 {
        return Ok(false);
    }
    let salt_found = &db[one + 1..];
    if salt.is_some_and(|s| s != salt_found.len()) {
        return Ok(false);
    }
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(m_hash);
    m_prime.extend_from_slice(salt_found);
    Ok(hash(hash_alg, &m_prime)?.as_slice() == h)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::asymmetric::{KeyKind, RsaEncryption, generate_key_pair, rsa_decrypt, rsa_encrypt};

    #[test]
    fn oaep_here_agrees_with_the_library_both_ways() {
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let lib = RsaEncryption::Oaep {
            hash: HashAlgorithm::Sha256,
            mgf1: HashAlgorithm::Sha256,
            label: b"L",
        };
        let c = oaep_encrypt(
            &pair.public,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha256,
            b"L",
            b"hello",
        )
        .unwrap();
        assert_eq!(
            rsa_decrypt(&pair.private, lib, &c).unwrap().as_slice(),
            b"hello"
        );
        let c = rsa_encrypt(&pair.public, lib, b"world").unwrap();
        assert_eq!(
            oaep_decrypt(
                &pair.private,
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha256,
                b"L",
                &c
            )
            .unwrap()
            .as_slice(),
            b"world"
        );
        // Mixed hashes round trip; a wrong label or hash fails with the one error.
        let c = oaep_encrypt(
            &pair.public,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha256,
            b"",
            b"mixed",
        )
        .unwrap();
        assert_eq!(
            oaep_decrypt(
                &pair.private,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha256,
                b"",
                &c
            )
            .unwrap()
            .as_slice(),
            b"mixed"
        );
        for (h, m, l) in [
            (HashAlgorithm::Sha384, HashAlgorithm::Sha384, &b""[..]),
            (HashAlgorithm::Sha384, HashAlgorithm::Sha256, &b"x"[..]),
        ] {
            assert!(matches!(
                oaep_decrypt(&pair.private, h, m, l, &c),
                Err(Error::DecryptionFailed { .. })
            ));
        }
    }

    #[test]
    fn pss_here_verifies_library_signatures_and_rejects_others() {
        use crate::asymmetric::{Message, SignatureScheme, sign};
        let pair = generate_key_pair(KeyKind::Rsa, 2048).unwrap();
        let digest = hash(HashAlgorithm::Sha256, b"data").unwrap();
        for salt in [None, Some(0), Some(222)] {
            let s = sign(
                KeyKind::Rsa,
                &pair.private,
                SignatureScheme::RsaPss {
                    hash: HashAlgorithm::Sha256,
                    salt,
                },
                Message::Data(b"data"),
            )
            .unwrap();
            assert!(
                pss_verify(&pair.public, HashAlgorithm::Sha256, None, &digest, &s).unwrap(),
                "{salt:?}"
            );
            assert!(
                !pss_verify(&pair.public, HashAlgorithm::Sha256, Some(7), &digest, &s).unwrap()
            );
            let other = hash(HashAlgorithm::Sha256, b"datA").unwrap();
            assert!(!pss_verify(&pair.public, HashAlgorithm::Sha256, None, &other, &s).unwrap());
        }
    }
}
