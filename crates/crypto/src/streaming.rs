//! Symmetric encryption over parts (KMIP streamed Encrypt and Decrypt): one [`CipherStream`]
//! per stream, fed part by part, ended once.
//!
//! - AES-GCM: [`GcmStream`], each encrypted part answered as it comes.
//! - AES-CBC and AES-CTR: each part's whole blocks are answered as they come; CBC keeps a
//!   partial block for the next part, and a padded CBC decryption keeps its last block until the
//!   end, where the padding is checked.
//! - ChaCha20: the keystream continues across parts.
//! - ChaCha20-Poly1305: the tag covers the whole message, so the parts are held (at most
//!   [`MAX_STREAMED_DECRYPTION`] bytes) and encrypted or decrypted at the end.
//!
//! Every stream gives, over any split of the input, exactly what the one-shot
//! [`crate::encrypt`] and [`crate::decrypt`] give (property tests below).

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroizing;

use crate::aead::{AesAny, GcmStream, MAX_STREAMED_DECRYPTION};
use crate::error::{Error, Result};
use crate::symmetric::{DecryptRequest, EncryptRequest, Padding, SymmetricCipher};

const BLOCK: usize = 16;

/// What a stream was started with.
pub struct StreamStart<'a> {
    pub cipher: SymmetricCipher,
    pub padding: Padding,
    pub key: &'a [u8],
    pub iv: &'a [u8],
    pub aad: &'a [u8],
    pub tag_length: usize,
    pub decrypt: bool,
}

/// What ends a stream: the last output and, for an encryption with an AEAD, the tag.
pub struct StreamEnd {
    pub data: Zeroizing<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
}

/// One streamed encryption or decryption.
pub struct CipherStream {
    inner: Inner,
    decrypt: bool,
}

impl std::fmt::Debug for CipherStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CipherStream(***)")
    }
}

enum Inner {
    Gcm(Box<GcmStream>),
    Cbc {
        aes: Box<AesAny>,
        chain: [u8; BLOCK],
        pending: Zeroizing<Vec<u8>>,
        padding: Padding,
    },
    Ctr {
        aes: Box<AesAny>,
        counter: [u8; BLOCK],
        block: Zeroizing<[u8; BLOCK]>,
        used: usize,
    },
    ChaCha20(Box<ChaCha20>),
    /// ChaCha20-Poly1305: the whole input, handled at the end.
    Held {
        key: Zeroizing<Vec<u8>>,
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_length: usize,
        data: Zeroizing<Vec<u8>>,
    },
}

fn not_streamable(cipher: SymmetricCipher) -> Error {
    Error::UnsupportedMode {
        algorithm: cipher.name(),
        detail: "cannot be streamed (AES-GCM, AES-CBC, AES-CTR, ChaCha20 and ChaCha20-Poly1305 can); send the data in one request",
    }
}

fn iv16(cipher: SymmetricCipher, iv: &[u8]) -> Result<[u8; BLOCK]> {
    <[u8; BLOCK]>::try_from(iv).map_err(|_| Error::InvalidIvLength {
        algorithm: cipher.name(),
        expected: "16",
        actual: iv.len(),
    })
}

impl CipherStream {
    /// Starts a stream. The IV is required: a caller that lets the server choose it generates
    /// it first and answers it with the first part.
    pub fn start(s: &StreamStart<'_>) -> Result<CipherStream> {
        let cipher = s.cipher;
        if !cipher.is_aead() && !s.aad.is_empty() {
            return Err(Error::UnsupportedMode {
                algorithm: cipher.name(),
                detail: "does not authenticate additional data; leave it out",
            });
        }
        let inner = match cipher {
            SymmetricCipher::AesGcm => Inner::Gcm(Box::new(GcmStream::start(
                s.key,
                s.iv,
                s.aad,
                s.tag_length,
                s.decrypt,
            )?)),
            SymmetricCipher::AesCbc => Inner::Cbc {
                aes: Box::new(AesAny::new(s.key)?),
                chain: iv16(cipher, s.iv)?,
                pending: Zeroizing::new(Vec::with_capacity(2 * BLOCK)),
                padding: s.padding,
            },
            SymmetricCipher::AesCtr => Inner::Ctr {
                aes: Box::new(AesAny::new(s.key)?),
                counter: iv16(cipher, s.iv)?,
                block: Zeroizing::new([0; BLOCK]),
                used: BLOCK,
            },
            SymmetricCipher::ChaCha20 => {
                if s.key.len() != 32 {
                    return Err(Error::InvalidKeyLength {
                        algorithm: cipher.name(),
                        expected: "32",
                        actual: s.key.len(),
                    });
                }
                // The 12-byte nonce, block counter from 0 (the one-shot's default form).
                let stream =
                    ChaCha20::new_from_slices(s.key, s.iv).map_err(|_| Error::InvalidIvLength {
                        algorithm: cipher.name(),
                        expected: "12 when streamed",
                        actual: s.iv.len(),
                    })?;
                Inner::ChaCha20(Box::new(stream))
            }
            SymmetricCipher::ChaCha20Poly1305 => {
                // Checked now, so that a bad parameter fails the first part, not the last.
                let probe = EncryptRequest {
                    cipher,
                    key: s.key,
                    iv: Some(s.iv),
                    aad: s.aad,
                    plaintext: &[],
                    tag_length: s.tag_length,
                    padding: s.padding,
                };
                crate::encrypt(&probe)?;
                Inner::Held {
                    key: Zeroizing::new(s.key.to_vec()),
                    iv: s.iv.to_vec(),
                    aad: s.aad.to_vec(),
                    tag_length: s.tag_length,
                    data: Zeroizing::new(Vec::new()),
                }
            }
            other => return Err(not_streamable(other)),
        };
        Ok(CipherStream {
            inner,
            decrypt: s.decrypt,
        })
    }

    /// One part: the output it completes (possibly empty).
    pub fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let decrypt = self.decrypt;
        match &mut self.inner {
            Inner::Gcm(g) => Ok(Zeroizing::new(g.update(data)?)),
            Inner::Cbc {
                aes,
                chain,
                pending,
                padding,
            } => {
                pending.extend_from_slice(data);
                // A padded decryption keeps its last whole block for the end.
                let keep = if decrypt && *padding == Padding::Pkcs5 {
                    BLOCK
                } else {
                    0
                };
                let ready = pending.len().saturating_sub(keep) / BLOCK * BLOCK;
                let mut out = Zeroizing::new(Vec::with_capacity(ready));
                for block in pending[..ready].chunks_exact(BLOCK) {
                    out.extend_from_slice(&cbc_block(aes, chain, block, decrypt));
                }
                pending.drain(..ready);
                Ok(out)
            }
            Inner::Ctr {
                aes,
                counter,
                block,
                used,
            } => {
                let mut out = Zeroizing::new(data.to_vec());
                for byte in out.iter_mut() {
                    if *used == BLOCK {
                        **block = aes.encrypt(*counter);
                        *counter = (u128::from_be_bytes(*counter).wrapping_add(1)).to_be_bytes();
                        *used = 0;
                    }
                    *byte ^= block[*used];
                    *used += 1;
                }
                Ok(out)
            }
            Inner::ChaCha20(c) => {
                let mut out = Zeroizing::new(data.to_vec());
                c.try_apply_keystream(&mut out)
                    .map_err(|_| Error::DataTooLong {
                        algorithm: "ChaCha20",
                        maximum: u64::from(u32::MAX) * 64,
                        actual: out.len() as u64,
                    })?;
                Ok(out)
            }
            Inner::Held { data: held, .. } => {
                if held.len() + data.len() > MAX_STREAMED_DECRYPTION {
                    return Err(Error::DataTooLong {
                        algorithm: "streamed ChaCha20-Poly1305",
                        maximum: MAX_STREAMED_DECRYPTION as u64,
                        actual: (held.len() + data.len()) as u64,
                    });
                }
                held.extend_from_slice(data);
                Ok(Zeroizing::new(Vec::new()))
            }
        }
    }

    /// Ends the stream: the last output, and the tag of an AEAD encryption. An AEAD decryption
    /// needs `tag` and answers nothing unless it verifies.
    pub fn finish(self, tag: Option<&[u8]>) -> Result<StreamEnd> {
        let decrypt = self.decrypt;
        match self.inner {
            Inner::Gcm(g) if decrypt => Ok(StreamEnd {
                data: g.finish_open(tag.ok_or(Error::MissingTag {
                    algorithm: "AES-GCM",
                })?)?,
                tag: None,
            }),
            Inner::Gcm(g) => Ok(StreamEnd {
                data: Zeroizing::new(Vec::new()),
                tag: Some(g.finish_seal()),
            }),
            Inner::Cbc {
                aes,
                mut chain,
                pending,
                padding,
            } => {
                let data = match (padding, decrypt) {
                    (Padding::None, _) if pending.is_empty() => Zeroizing::new(Vec::new()),
                    (Padding::None, _) => {
                        return Err(Error::DataNotBlockAligned {
                            algorithm: "AES-CBC",
                            block_size: BLOCK,
                            actual: pending.len(),
                        });
                    }
                    (Padding::Pkcs5, false) => {
                        let fill = BLOCK - pending.len();
                        let mut last = [fill as u8; BLOCK];
                        last[..pending.len()].copy_from_slice(&pending);
                        Zeroizing::new(cbc_block(&aes, &mut chain, &last, false).to_vec())
                    }
                    (Padding::Pkcs5, true) => {
                        if pending.len() != BLOCK {
                            return Err(Error::InvalidPadding);
                        }
                        let plain = Zeroizing::new(cbc_block(&aes, &mut chain, &pending, true));
                        let fill = usize::from(plain[BLOCK - 1]);
                        if fill == 0
                            || fill > BLOCK
                            || plain[BLOCK - fill..]
                                .iter()
                                .any(|b| usize::from(*b) != fill)
                        {
                            return Err(Error::InvalidPadding);
                        }
                        Zeroizing::new(plain[..BLOCK - fill].to_vec())
                    }
                };
                Ok(StreamEnd { data, tag: None })
            }
            Inner::Ctr { .. } | Inner::ChaCha20(_) => Ok(StreamEnd {
                data: Zeroizing::new(Vec::new()),
                tag: None,
            }),
            Inner::Held {
                key,
                iv,
                aad,
                tag_length: _,
                data,
            } if decrypt => Ok(StreamEnd {
                data: crate::decrypt(&DecryptRequest {
                    cipher: SymmetricCipher::ChaCha20Poly1305,
                    key: &key,
                    iv: Some(&iv),
                    aad: &aad,
                    ciphertext: &data,
                    tag: Some(tag.ok_or(Error::MissingTag {
                        algorithm: "ChaCha20-Poly1305",
                    })?),
                    padding: Padding::None,
                })?,
                tag: None,
            }),
            Inner::Held {
                key,
                iv,
                aad,
                tag_length,
                data,
            } => {
                let sealed = crate::encrypt(&EncryptRequest {
                    cipher: SymmetricCipher::ChaCha20Poly1305,
                    key: &key,
                    iv: Some(&iv),
                    aad: &aad,
                    plaintext: &data,
                    tag_length,
                    padding: Padding::None,
                })?;
                Ok(StreamEnd {
                    data: Zeroizing::new(sealed.ciphertext),
                    tag: sealed.tag,
                })
            }
        }
    }
}

/// One CBC block: encrypts (chaining the ciphertext) or decrypts (chaining the input).
fn cbc_block(aes: &AesAny, chain: &mut [u8; BLOCK], block: &[u8], decrypt: bool) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b.copy_from_slice(block);
    if decrypt {
        let plain = aes.decrypt(b);
        let out = std::array::from_fn(|i| plain[i] ^ chain[i]);
        *chain = b;
        out
    } else {
        let out = aes.encrypt(std::array::from_fn(|i| b[i] ^ chain[i]));
        *chain = out;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            out.push(data[at..c].to_vec());
            at = c;
        }
        out
    }

    fn streamed(
        start: &StreamStart<'_>,
        parts: &[Vec<u8>],
        tag: Option<&[u8]>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let mut s = CipherStream::start(start)?;
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&s.update(p)?);
        }
        let end = s.finish(tag)?;
        out.extend_from_slice(&end.data);
        Ok((out, end.tag))
    }

    const CIPHERS: [(SymmetricCipher, Padding, usize, usize); 6] = [
        (SymmetricCipher::AesGcm, Padding::None, 32, 12),
        (SymmetricCipher::AesCbc, Padding::Pkcs5, 16, 16),
        (SymmetricCipher::AesCbc, Padding::None, 24, 16),
        (SymmetricCipher::AesCtr, Padding::None, 32, 16),
        (SymmetricCipher::ChaCha20, Padding::None, 32, 12),
        (SymmetricCipher::ChaCha20Poly1305, Padding::None, 32, 12),
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// For every streamable cipher, streamed encryption and decryption over any split equal
        /// the one-shot functions.
        #[test]
        fn streams_equal_one_shot_for_every_split(
            which in 0usize..6,
            seed in proptest::prelude::any::<[u8; 32]>(),
            blocks in 0usize..8,
            extra in 0usize..16,
            cuts in proptest::collection::vec(0usize..200, 0..6),
            tag_cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let (cipher, padding, key_len, iv_len) = CIPHERS[which];
            // Unpadded CBC takes whole blocks only.
            let len = blocks * BLOCK + if padding == Padding::None && cipher == SymmetricCipher::AesCbc { 0 } else { extra };
            let data: Vec<u8> = (0..len).map(|i| seed[i % 32] ^ (i as u8)).collect();
            let key = &seed[..key_len];
            let iv: Vec<u8> = seed.iter().rev().take(iv_len).copied().collect();
            let aad: &[u8] = if cipher.is_aead() { b"header" } else { b"" };
            let one = crate::encrypt(&EncryptRequest {
                cipher, key, iv: Some(&iv), aad, plaintext: &data, tag_length: 16, padding,
            }).unwrap();
            let start = StreamStart { cipher, padding, key, iv: &iv, aad, tag_length: 16, decrypt: false };
            let (ct, tag) = streamed(&start, &parts(&data, &cuts), None).unwrap();
            proptest::prop_assert_eq!(&ct, &one.ciphertext);
            proptest::prop_assert_eq!(&tag, &one.tag);
            let start = StreamStart { decrypt: true, ..start };
            let (pt, _) = streamed(&start, &parts(&ct, &tag_cuts), tag.as_deref()).unwrap();
            proptest::prop_assert_eq!(&pt, &data);
        }
    }

    #[test]
    fn a_bad_padding_or_tag_is_refused_at_the_end() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let start = StreamStart {
            cipher: SymmetricCipher::AesCbc,
            padding: Padding::Pkcs5,
            key: &key,
            iv: &iv,
            aad: b"",
            tag_length: 16,
            decrypt: true,
        };
        // A block that does not decrypt to a valid padding, and a truncated ciphertext.
        assert!(matches!(
            streamed(&start, &[vec![0u8; 32]], None),
            Err(Error::InvalidPadding)
        ));
        assert!(matches!(
            streamed(&start, &[vec![0u8; 20]], None),
            Err(Error::InvalidPadding)
        ));
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let start = StreamStart {
            cipher: SymmetricCipher::ChaCha20Poly1305,
            padding: Padding::None,
            key: &key,
            iv: &nonce,
            aad: b"",
            tag_length: 16,
            decrypt: true,
        };
        assert!(streamed(&start, &[vec![1u8; 40]], Some(&[0u8; 16])).is_err());
        assert!(matches!(
            streamed(&start, &[vec![1u8; 40]], None),
            Err(Error::MissingTag { .. })
        ));
    }

    #[test]
    fn other_ciphers_are_refused_with_what_to_do() {
        let start = StreamStart {
            cipher: SymmetricCipher::AesXts,
            padding: Padding::None,
            key: &[0u8; 32],
            iv: &[0u8; 16],
            aad: b"",
            tag_length: 16,
            decrypt: false,
        };
        let err = CipherStream::start(&start).unwrap_err();
        assert!(err.to_string().contains("one request"), "{err}");
    }
}
