//! AES key wrap, with padding (RFC 5649, KWP) and without (RFC 3394, KW), for envelope
//! encryption of data keys. aws-lc-rs does the work for 128- and 256-bit key-encryption keys;
//! it has no 192-bit variant, so for those this module runs the RFC algorithm itself over
//! aws-lc-rs AES block operations. Unwrapped key material must only leave in `Zeroizing`.

use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesBlockCipher, AesKek, KeyWrap, KeyWrapPadded};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const KWP: &str = "AES key wrap with padding (RFC 5649)";
const KW: &str = "AES key wrap (RFC 3394)";
const SEMIBLOCK: usize = 8;
/// RFC 3394 default initial value.
const KW_IV: [u8; SEMIBLOCK] = [0xa6; SEMIBLOCK];
/// RFC 5649 alternative initial value, high half; the low half is the key length.
const KWP_AIV_PREFIX: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];
/// RFC 5649 carries the key length in 32 bits.
const KWP_MAX_KEY: usize = u32::MAX as usize;

/// How the key-encryption key is run: by aws-lc-rs's key wrap, or by this module for AES-192.
enum Kek<'a> {
    Library {
        cipher: &'static AesBlockCipher,
        kek: &'a [u8],
    },
    Aes192 {
        kek: &'a [u8],
    },
}

impl<'a> Kek<'a> {
    fn new(kek: &'a [u8], algorithm: &'static str) -> Result<Self> {
        match kek.len() {
            16 => Ok(Self::Library {
                cipher: &AES_128,
                kek,
            }),
            24 => Ok(Self::Aes192 { kek }),
            32 => Ok(Self::Library {
                cipher: &AES_256,
                kek,
            }),
            actual => Err(Error::InvalidKeyLength {
                algorithm,
                expected: "16, 24 or 32",
                actual,
            }),
        }
    }
}

fn library_kek(cipher: &'static AesBlockCipher, kek: &[u8]) -> Result<AesKek> {
    AesKek::new(cipher, kek).map_err(Error::backend("load the key-encryption key"))
}

/// Wraps `key` under `kek` with RFC 5649 (KWP); any key length from 1 byte up is accepted.
///
/// # Errors
/// [`Error::InvalidKeyLength`] for a KEK that is not 16, 24 or 32 bytes; [`Error::DataTooShort`]
/// for an empty key.
pub fn aes_key_wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    let kek = Kek::new(kek, KWP)?;
    if key.is_empty() {
        return Err(Error::DataTooShort {
            algorithm: KWP,
            minimum: 1,
            actual: 0,
        });
    }
    if key.len() > KWP_MAX_KEY {
        return Err(Error::DataTooLong {
            algorithm: KWP,
            maximum: KWP_MAX_KEY as u64,
            actual: key.len() as u64,
        });
    }
    match kek {
        Kek::Library { cipher, kek } => {
            // KWP output is the key rounded up to 8 bytes plus one semiblock.
            let mut out = vec![0u8; key.len() + 2 * SEMIBLOCK];
            let len = library_kek(cipher, kek)?
                .wrap_with_padding(key, &mut out)
                .map_err(Error::backend("wrap a key"))?
                .len();
            out.truncate(len);
            Ok(out)
        }
        Kek::Aes192 { kek } => rfc::kwp_wrap(&rfc::Aes::new(&cipher::AES_192, kek)?, key),
    }
}

/// Unwraps an RFC 5649 (KWP) wrapped key and checks its integrity.
///
/// # Errors
/// [`Error::KeyUnwrapFailed`] when the integrity check fails (wrong KEK or corrupted data);
/// [`Error::DataTooShort`] / [`Error::DataNotBlockAligned`] for impossible wrapped lengths.
pub fn aes_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let kek = Kek::new(kek, KWP)?;
    check_wrapped(KWP, wrapped, 2 * SEMIBLOCK)?;
    match kek {
        Kek::Library { cipher, kek } => {
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            // Every failure of a well-formed input is the integrity check.
            let len = library_kek(cipher, kek)?
                .unwrap_with_padding(wrapped, &mut out)
                .map_err(|_| Error::KeyUnwrapFailed)?
                .len();
            out.truncate(len);
            Ok(out)
        }
        Kek::Aes192 { kek } => rfc::kwp_unwrap(&rfc::Aes::new(&cipher::AES_192, kek)?, wrapped),
    }
}

/// Wraps `key` under `kek` with RFC 3394 (KW, no padding); the key must be a multiple of 8
/// bytes and at least 16.
///
/// # Errors
/// As [`aes_key_wrap`], plus [`Error::DataNotBlockAligned`] for a key that is not a multiple
/// of 8 bytes.
pub fn aes_key_wrap_unpadded(kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    let kek = Kek::new(kek, KW)?;
    check_wrapped(KW, key, 2 * SEMIBLOCK)?;
    match kek {
        Kek::Library { cipher, kek } => {
            let mut out = vec![0u8; key.len() + SEMIBLOCK];
            let len = library_kek(cipher, kek)?
                .wrap(key, &mut out)
                .map_err(Error::backend("wrap a key"))?
                .len();
            out.truncate(len);
            Ok(out)
        }
        Kek::Aes192 { kek } => rfc::wrap(&rfc::Aes::new(&cipher::AES_192, kek)?, KW_IV, key),
    }
}

/// Unwraps an RFC 3394 (KW) wrapped key and checks its integrity.
///
/// # Errors
/// As [`aes_key_unwrap`].
pub fn aes_key_unwrap_unpadded(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let kek = Kek::new(kek, KW)?;
    check_wrapped(KW, wrapped, 3 * SEMIBLOCK)?;
    match kek {
        Kek::Library { cipher, kek } => {
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let len = library_kek(cipher, kek)?
                .unwrap(wrapped, &mut out)
                .map_err(|_| Error::KeyUnwrapFailed)?
                .len();
            out.truncate(len);
            Ok(out)
        }
        Kek::Aes192 { kek } => {
            let (check, key) = rfc::unwrap(&rfc::Aes::new(&cipher::AES_192, kek)?, wrapped)?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(&check, &KW_IV).is_err() {
                return Err(Error::KeyUnwrapFailed);
            }
            Ok(key)
        }
    }
}

/// Both wrap inputs of KW and wrapped data of either scheme are whole semiblocks.
fn check_wrapped(algorithm: &'static str, data: &[u8], minimum: usize) -> Result<()> {
    if data.len() < minimum {
        return Err(Error::DataTooShort {
            algorithm,
            minimum,
            actual: data.len(),
        });
    }
    if !data.len().is_multiple_of(SEMIBLOCK) {
        return Err(Error::DataNotBlockAligned {
            algorithm,
            block_size: SEMIBLOCK,
            actual: data.len(),
        });
    }
    Ok(())
}

/// The RFC 3394 / RFC 5649 algorithms over a raw AES block function, for the AES-192 KEKs that
/// aws-lc-rs's key wrap does not take. Callers have checked lengths already.
mod rfc {
    use super::*;

    pub(super) struct Aes {
        encrypting: EncryptingKey,
        decrypting: DecryptingKey,
    }

    impl Aes {
        pub(super) fn new(algorithm: &'static cipher::Algorithm, kek: &[u8]) -> Result<Self> {
            let unbound = || {
                UnboundCipherKey::new(algorithm, kek)
                    .map_err(Error::backend("load the key-encryption key"))
            };
            // ECB on one block at a time is the raw AES permutation the RFCs are written with.
            Ok(Self {
                encrypting: EncryptingKey::ecb(unbound()?)
                    .map_err(Error::backend("prepare AES"))?,
                decrypting: DecryptingKey::ecb(unbound()?)
                    .map_err(Error::backend("prepare AES"))?,
            })
        }

        fn encrypt(&self, block: &mut [u8; 16]) -> Result<()> {
            self.encrypting
                .less_safe_encrypt(block, EncryptionContext::None)
                .map(|_| ())
                .map_err(Error::backend("encrypt a block"))
        }

        fn decrypt(&self, block: &mut [u8; 16]) -> Result<()> {
            self.decrypting
                .decrypt(block, DecryptionContext::None)
                .map(|_| ())
                .map_err(Error::backend("decrypt a block"))
        }
    }

    type Semiblock = [u8; SEMIBLOCK];

    fn semiblocks(data: &[u8]) -> Zeroizing<Vec<Semiblock>> {
        // `chunks_exact` yields only full 8-byte chunks, so the copy cannot fail; the caller
        // has checked that no remainder is dropped.
        Zeroizing::new(
            data.chunks_exact(SEMIBLOCK)
                .map(|chunk| {
                    let mut semiblock = [0u8; SEMIBLOCK];
                    semiblock.copy_from_slice(chunk);
                    semiblock
                })
                .collect(),
        )
    }

    fn join(a: &Semiblock, b: &Semiblock) -> Zeroizing<[u8; 16]> {
        let mut block = Zeroizing::new([0u8; 16]);
        let (left, right) = block.split_at_mut(SEMIBLOCK);
        left.copy_from_slice(a);
        right.copy_from_slice(b);
        block
    }

    fn split(block: &[u8; 16]) -> (Semiblock, Semiblock) {
        let mut a = [0u8; SEMIBLOCK];
        let mut b = [0u8; SEMIBLOCK];
        let (left, right) = block.split_at(SEMIBLOCK);
        a.copy_from_slice(left);
        b.copy_from_slice(right);
        (a, b)
    }

    fn xor_counter(a: &mut Semiblock, t: u64) {
        for (byte, t_byte) in a.iter_mut().zip(t.to_be_bytes()) {
            *byte ^= t_byte;
        }
    }

    /// RFC 3394 section 2.2.1, the wrapping function W, for two or more semiblocks.
    pub(super) fn wrap(aes: &Aes, iv: Semiblock, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut r = semiblocks(plaintext);
        let n = r.len() as u64;
        let mut a = iv;
        for j in 0..6u64 {
            for (i, ri) in r.iter_mut().enumerate() {
                let mut block = join(&a, ri);
                aes.encrypt(&mut block)?;
                (a, *ri) = split(&block);
                xor_counter(&mut a, n * j + i as u64 + 1);
            }
        }
        let mut out = Vec::with_capacity(plaintext.len() + SEMIBLOCK);
        out.extend_from_slice(&a);
        for ri in r.iter() {
            out.extend_from_slice(ri);
        }
        Ok(out)
    }

    /// RFC 3394 section 2.2.2, the unwrapping function W⁻¹, for three or more semiblocks;
    /// returns the recovered initial value for the caller to check, and the key.
    pub(super) fn unwrap(aes: &Aes, wrapped: &[u8]) -> Result<(Semiblock, Zeroizing<Vec<u8>>)> {
        let mut c = semiblocks(wrapped);
        let Some((first, r)) = c.split_first_mut() else {
            return Err(Error::KeyUnwrapFailed);
        };
        let n = r.len() as u64;
        let mut a = *first;
        for j in (0..6u64).rev() {
            for (i, ri) in r.iter_mut().enumerate().rev() {
                xor_counter(&mut a, n * j + i as u64 + 1);
                let mut block = join(&a, ri);
                aes.decrypt(&mut block)?;
                (a, *ri) = split(&block);
            }
        }
        let mut key = Zeroizing::new(Vec::with_capacity(r.len() * SEMIBLOCK));
        for ri in r.iter() {
            key.extend_from_slice(ri);
        }
        Ok((a, key))
    }

    /// RFC 5649 section 4.1.
    pub(super) fn kwp_wrap(aes: &Aes, key: &[u8]) -> Result<Vec<u8>> {
        let mli = u32::try_from(key.len()).map_err(|_| Error::DataTooLong {
            algorithm: KWP,
            maximum: KWP_MAX_KEY as u64,
            actual: key.len() as u64,
        })?;
        let mut aiv = [0u8; SEMIBLOCK];
        let (prefix, length) = aiv.split_at_mut(4);
        prefix.copy_from_slice(&KWP_AIV_PREFIX);
        length.copy_from_slice(&mli.to_be_bytes());

        let mut padded = Zeroizing::new(key.to_vec());
        padded.resize(key.len().div_ceil(SEMIBLOCK) * SEMIBLOCK, 0);
        if padded.len() == SEMIBLOCK {
            // A single semiblock is encrypted as one AES block with the AIV in front.
            let mut p = [0u8; SEMIBLOCK];
            p.copy_from_slice(&padded);
            let mut block = join(&aiv, &p);
            aes.encrypt(&mut block)?;
            return Ok(block.to_vec());
        }
        wrap(aes, aiv, &padded)
    }

    /// RFC 5649 section 4.2, with every integrity condition folded into one failure.
    pub(super) fn kwp_unwrap(aes: &Aes, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (aiv, mut padded) = if wrapped.len() == 2 * SEMIBLOCK {
            let mut block = Zeroizing::new([0u8; 16]);
            block.copy_from_slice(wrapped);
            aes.decrypt(&mut block)?;
            let (aiv, p) = split(&block);
            (aiv, Zeroizing::new(p.to_vec()))
        } else {
            unwrap(aes, wrapped)?
        };
        let (prefix, length) = aiv.split_at(4);
        let mut mli_bytes = [0u8; 4];
        mli_bytes.copy_from_slice(length);
        let mli = u32::from_be_bytes(mli_bytes) as usize;
        let padded_len = padded.len();
        let prefix_ok = prefix == KWP_AIV_PREFIX;
        // The length must fall in the last semiblock: 8(n-1) < MLI <= 8n.
        let length_ok = mli <= padded_len && mli + SEMIBLOCK > padded_len;
        let padding_ok = length_ok && padded.iter().skip(mli).all(|byte| *byte == 0);
        if !(prefix_ok && length_ok && padding_ok) {
            return Err(Error::KeyUnwrapFailed);
        }
        padded.truncate(mli);
        Ok(padded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::decode as hex;

    const KEK_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_DATA_256: &str = "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f";

    /// RFC 3394 section 4: (KEK, key data, wrapped) for 128-, 192- and 256-bit KEKs, covering
    /// both the aws-lc-rs path and this module's AES-192 path.
    #[test]
    fn kw_matches_rfc_3394_vectors() -> Result<()> {
        let cases = [
            (
                "000102030405060708090a0b0c0d0e0f",
                "00112233445566778899aabbccddeeff",
                "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5",
            ),
            (
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "00112233445566778899aabbccddeeff",
                "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d",
            ),
            (
                KEK_256,
                "00112233445566778899aabbccddeeff",
                "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7",
            ),
            (
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "00112233445566778899aabbccddeeff0001020304050607",
                "031d33264e15d33268f24ec260743edce1c6c7ddee725a936ba814915c6762d2",
            ),
            (
                KEK_256,
                "00112233445566778899aabbccddeeff0001020304050607",
                "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1",
            ),
            (
                KEK_256,
                KEY_DATA_256,
                "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43b\
                 fb988b9b7a02dd21",
            ),
        ];
        for (kek, key, wrapped) in cases {
            let (kek, key, wrapped) = (hex(kek), hex(key), hex(wrapped));
            assert_eq!(
                aes_key_wrap_unpadded(&kek, &key)?,
                wrapped,
                "KEK {} bytes",
                kek.len()
            );
            assert_eq!(aes_key_unwrap_unpadded(&kek, &wrapped)?.as_slice(), key);
        }
        Ok(())
    }

    /// RFC 5649 section 6, both with a 192-bit KEK.
    #[test]
    fn kwp_matches_rfc_5649_vectors() -> Result<()> {
        let kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let cases = [
            (
                "c37b7e6492584340bed12207808941155068f738",
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
            ),
            ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
        ];
        for (key, wrapped) in cases {
            let (key, wrapped) = (hex(key), hex(wrapped));
            assert_eq!(aes_key_wrap(&kek, &key)?, wrapped);
            assert_eq!(aes_key_unwrap(&kek, &wrapped)?.as_slice(), key);
        }
        Ok(())
    }

    /// The hand-run RFC algorithms and aws-lc-rs must agree on the KEK sizes both support.
    #[test]
    fn the_rfc_path_agrees_with_aws_lc_rs() -> Result<()> {
        for (wrap_cipher, kek_len) in [(&AES_128, 16usize), (&AES_256, 32)] {
            let kek: Vec<u8> = (0..kek_len as u8).map(|b| b.wrapping_mul(13)).collect();
            let algorithm = if kek_len == 16 {
                &cipher::AES_128
            } else {
                &cipher::AES_256
            };
            let aes = rfc::Aes::new(algorithm, &kek)?;
            for len in [1usize, 7, 8, 9, 16, 20, 24, 32, 33, 64] {
                let key: Vec<u8> = (0..len as u8).collect();
                let mut out = vec![0u8; len + 16];
                let library = library_kek(wrap_cipher, &kek)?
                    .wrap_with_padding(&key, &mut out)
                    .map_err(Error::backend("test"))?
                    .to_vec();
                assert_eq!(rfc::kwp_wrap(&aes, &key)?, library, "KWP {kek_len}/{len}");
                assert_eq!(rfc::kwp_unwrap(&aes, &library)?.as_slice(), key);
                if len >= 16 && len % 8 == 0 {
                    let library = aes_key_wrap_unpadded(&kek, &key)?;
                    assert_eq!(rfc::wrap(&aes, KW_IV, &key)?, library, "KW {kek_len}/{len}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn kwp_round_trips_every_kek_size_and_odd_key_lengths() -> Result<()> {
        for kek_len in [16, 24, 32] {
            let kek = vec![0x3cu8; kek_len];
            for len in [1usize, 5, 8, 15, 16, 17, 31, 32, 64, 100] {
                let key: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                let wrapped = aes_key_wrap(&kek, &key)?;
                assert_eq!(wrapped.len(), len.div_ceil(8) * 8 + 8);
                assert_eq!(aes_key_unwrap(&kek, &wrapped)?.as_slice(), key);
            }
        }
        Ok(())
    }

    #[test]
    fn tampered_data_or_a_wrong_kek_fails_the_integrity_check() -> Result<()> {
        for kek_len in [16, 24, 32] {
            let kek = vec![0x01u8; kek_len];
            let other = vec![0x02u8; kek_len];
            for len in [7usize, 32] {
                let key = vec![0x99u8; len];
                let wrapped = aes_key_wrap(&kek, &key)?;
                assert!(matches!(
                    aes_key_unwrap(&other, &wrapped),
                    Err(Error::KeyUnwrapFailed)
                ));
                let mut tampered = wrapped.clone();
                if let Some(byte) = tampered.last_mut() {
                    *byte ^= 1;
                }
                assert!(matches!(
                    aes_key_unwrap(&kek, &tampered),
                    Err(Error::KeyUnwrapFailed)
                ));
            }
            let wrapped = aes_key_wrap_unpadded(&kek, &[0x77u8; 32])?;
            assert!(matches!(
                aes_key_unwrap_unpadded(&other, &wrapped),
                Err(Error::KeyUnwrapFailed)
            ));
            // A KWP blob is not a valid KW blob: the initial values differ.
            let kwp = aes_key_wrap(&kek, &[0x77u8; 32])?;
            assert!(matches!(
                aes_key_unwrap_unpadded(&kek, &kwp),
                Err(Error::KeyUnwrapFailed)
            ));
        }
        Ok(())
    }

    #[test]
    fn impossible_lengths_are_refused_before_any_crypto() {
        assert!(matches!(
            aes_key_wrap(&[0u8; 20], b"key"),
            Err(Error::InvalidKeyLength { actual: 20, .. })
        ));
        assert!(matches!(
            aes_key_wrap(&[0u8; 16], b""),
            Err(Error::DataTooShort { minimum: 1, .. })
        ));
        assert!(matches!(
            aes_key_unwrap(&[0u8; 16], &[0u8; 8]),
            Err(Error::DataTooShort { .. })
        ));
        assert!(matches!(
            aes_key_unwrap(&[0u8; 16], &[0u8; 20]),
            Err(Error::DataNotBlockAligned { .. })
        ));
        assert!(matches!(
            aes_key_wrap_unpadded(&[0u8; 16], &[0u8; 12]),
            Err(Error::DataTooShort { .. })
        ));
        assert!(matches!(
            aes_key_wrap_unpadded(&[0u8; 24], &[0u8; 20]),
            Err(Error::DataNotBlockAligned { .. })
        ));
        assert!(matches!(
            aes_key_unwrap_unpadded(&[0u8; 32], &[0u8; 16]),
            Err(Error::DataTooShort { .. })
        ));
    }
}
