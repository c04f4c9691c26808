//! Envelope encryption of files: a fresh AES-256 data key encrypts the file locally in
//! authenticated chunks; only the 32-byte data key goes to the KMS, which encrypts it under the
//! user's key. Large files are therefore never sent to the server.
//!
//! Format: `CKMSENV1`, u32 header length, header (wrapped data key with its IV and tag, nonce
//! prefix, chunk size), then chunks of AES-256-GCM ciphertext. Chunk `i` uses nonce
//! `prefix(8) || i (u32 BE)` and associated data `user AAD || i || last-flag`, so chunks cannot be
//! reordered, dropped or truncated without detection.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use kmip::model::{Decrypt, Encrypt, RequestPayload, ResponsePayload};
use kms_client::KmsClient;
use kms_crypto::{DecryptRequest, EncryptRequest, Padding, SymmetricCipher};

const MAGIC: &[u8; 8] = b"CKMSENV1";
const CHUNK: usize = 1 << 20;
const TAG: usize = 16;

fn chunk_aad(user_aad: &[u8], index: u32, last: bool) -> Vec<u8> {
    let mut aad = user_aad.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn nonce(prefix: &[u8; 8], index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&index.to_be_bytes());
    n
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Reads up to `buf.len()` bytes, fewer only at end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> anyhow::Result<()> {
    out.extend_from_slice(
        &u16::try_from(b.len())
            .context("header field too long")?
            .to_be_bytes(),
    );
    out.extend_from_slice(b);
    Ok(())
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> anyhow::Result<&'a [u8]> {
    if input.len() < 2 {
        bail!("truncated header");
    }
    let len = u16::from_be_bytes([input[0], input[1]]) as usize;
    if input.len() < 2 + len {
        bail!("truncated header");
    }
    let v = &input[2..2 + len];
    *input = &input[2 + len..];
    Ok(v)
}

pub async fn encrypt_file(
    client: &KmsClient,
    key_id: &str,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?,
    );
    let total = std::fs::metadata(input)?.len();
    let dek = kms_crypto::random_key(32)?;
    let response = client
        .send(RequestPayload::Encrypt(Encrypt {
            unique_identifier: Some(key_id.into()),
            cryptographic_parameters: None,
            data: Some(dek.to_vec()),
            iv_counter_nonce: None,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: Some(MAGIC.to_vec()),
        }))
        .await
        .context("the KMS could not wrap the data key")?;
    let ResponsePayload::Encrypt(wrapped) = response else {
        bail!("unexpected answer to Encrypt")
    };
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&kms_crypto::random_bytes(8)?);
    let mut header = Vec::new();
    put_bytes(&mut header, wrapped.data.as_deref().unwrap_or_default())?;
    put_bytes(
        &mut header,
        wrapped.iv_counter_nonce.as_deref().unwrap_or_default(),
    )?;
    put_bytes(
        &mut header,
        wrapped
            .authenticated_encryption_tag
            .as_deref()
            .unwrap_or_default(),
    )?;
    header.extend_from_slice(&prefix);
    header.extend_from_slice(&(CHUNK as u32).to_be_bytes());

    let tmp = output.with_extension("partial");
    let mut writer = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    writer.write_all(MAGIC)?;
    writer.write_all(&(header.len() as u32).to_be_bytes())?;
    writer.write_all(&header)?;
    let bar = progress(total);
    let mut current = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut n = read_full(&mut reader, &mut current)?;
    let mut index: u32 = 0;
    loop {
        // Read ahead one chunk to know whether this one is the last.
        let m = if n == CHUNK {
            read_full(&mut reader, &mut next)?
        } else {
            0
        };
        let last = m == 0;
        let sealed = kms_crypto::encrypt(&EncryptRequest {
            cipher: SymmetricCipher::AesGcm,
            key: &dek,
            iv: Some(&nonce(&prefix, index)),
            aad: &chunk_aad(aad.as_bytes(), index, last),
            plaintext: &current[..n],
            tag_length: TAG,
            padding: Padding::None,
        })?;
        writer.write_all(&sealed.ciphertext)?;
        writer.write_all(sealed.tag.as_deref().unwrap_or_default())?;
        bar.inc(n as u64);
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        n = m;
        index = index.checked_add(1).context("file too large")?;
    }
    writer.flush()?;
    drop(writer);
    std::fs::rename(&tmp, output)?;
    bar.finish_and_clear();
    Ok(())
}

pub async fn decrypt_file(
    client: &KmsClient,
    key_id: &str,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?,
    );
    let total = std::fs::metadata(input)?.len();
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .context("not a file encrypted by `ckms sym encrypt`")?;
    if &magic != MAGIC {
        bail!("not a file encrypted by `ckms sym encrypt` (bad magic)");
    }
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let header_len = u32::from_be_bytes(len) as usize;
    if header_len > 64 * 1024 {
        bail!("corrupt header");
    }
    let mut header = vec![0u8; header_len];
    reader.read_exact(&mut header).context("truncated header")?;
    let mut h = header.as_slice();
    let wrapped = take_bytes(&mut h)?.to_vec();
    let iv = take_bytes(&mut h)?.to_vec();
    let tag = take_bytes(&mut h)?.to_vec();
    if h.len() != 12 {
        bail!("corrupt header");
    }
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&h[..8]);
    let chunk = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    if chunk == 0 || chunk > 64 << 20 {
        bail!("corrupt header: chunk size {chunk}");
    }
    let response = client
        .send(RequestPayload::Decrypt(Decrypt {
            unique_identifier: Some(key_id.into()),
            cryptographic_parameters: None,
            data: Some(wrapped),
            iv_counter_nonce: Some(iv),
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: Some(MAGIC.to_vec()),
            authenticated_encryption_tag: Some(tag),
        }))
        .await
        .context("the KMS could not unwrap the data key (wrong key?)")?;
    let ResponsePayload::Decrypt(unwrapped) = response else {
        bail!("unexpected answer to Decrypt")
    };
    let dek = zeroize::Zeroizing::new(unwrapped.data.unwrap_or_default());

    let tmp = output.with_extension("partial");
    let mut writer = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    let bar = progress(total);
    let sealed_len = chunk + TAG;
    let mut current = vec![0u8; sealed_len];
    let mut next = vec![0u8; sealed_len];
    let mut n = read_full(&mut reader, &mut current)?;
    let mut index: u32 = 0;
    let result = (|| -> anyhow::Result<()> {
        loop {
            let m = if n == sealed_len {
                read_full(&mut reader, &mut next)?
            } else {
                0
            };
            let last = m == 0;
            if n < TAG {
                bail!("the file is truncated");
            }
            let plain = kms_crypto::decrypt(&DecryptRequest {
                cipher: SymmetricCipher::AesGcm,
                key: &dek,
                iv: Some(&nonce(&prefix, index)),
                aad: &chunk_aad(aad.as_bytes(), index, last),
                ciphertext: &current[..n - TAG],
                tag: Some(&current[n - TAG..n]),
                padding: Padding::None,
            })
            .context("the file was modified, truncated, or the authentication data differs")?;
            writer.write_all(&plain)?;
            bar.inc(n as u64);
            if last {
                return Ok(());
            }
            std::mem::swap(&mut current, &mut next);
            n = m;
            index = index.checked_add(1).context("file too large")?;
        }
    })();
    if let Err(e) = result {
        drop(writer);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    writer.flush()?;
    drop(writer);
    std::fs::rename(&tmp, output)?;
    bar.finish_and_clear();
    Ok(())
}
