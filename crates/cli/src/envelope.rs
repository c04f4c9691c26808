//! Envelope encryption of files: a fresh AES-256 data key encrypts the file locally in
//! authenticated chunks; only the 32-byte data key goes to the KMS, which encrypts it under the
//! user's key. Large files are therefore never sent to the server.
//!
//! Format: `CKMSENV1`, u32 header length, header (wrapped data key with its IV and tag, nonce
//! prefix, chunk size), then chunks of AES-256-GCM ciphertext. Chunk `i` uses nonce
//! `prefix(8) || i (u32 BE)` and associated data `user AAD || i || last-flag`, so chunks cannot be
//! reordered, dropped or truncated without detection. The chunk size is always 1 MiB: the
//! header is not authenticated as a whole, so a file declaring another size is refused.
//!
//! The format code ([`Header`], [`seal_chunks`], [`open_chunks`]) works on any reader and writer
//! with a given data key; the KMS only wraps and unwraps that key, through [`KeyWrapper`].
//! Output goes to `OUTPUT.partial`, created new, and reaches `OUTPUT` only when complete; on any
//! error it is removed.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use kmip::model::{Decrypt, Encrypt, EncryptResponse};
use kms_client::KmsClient;
use kms_crypto::{DecryptRequest, EncryptRequest, Padding, SymmetricCipher};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"CKMSENV1";
/// Plaintext bytes per chunk, the only chunk size written and read.
const CHUNK: usize = 1 << 20;
const TAG: usize = 16;
/// Bytes of the data key.
const DATA_KEY: usize = 32;
const MAX_HEADER: usize = 64 * 1024;

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
    if !crate::output::progress_enabled() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
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
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
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

/// The data key encrypted by the KMS: ciphertext, IV and tag, none of them empty.
#[derive(Clone, Debug, PartialEq)]
struct WrappedKey {
    ciphertext: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
}

impl WrappedKey {
    /// The wrapped key in the KMS answer to Encrypt. An answer lacking the ciphertext, the IV
    /// or the tag (or holding an empty one) is an error: the file could never be decrypted.
    fn from_response(answer: EncryptResponse) -> anyhow::Result<WrappedKey> {
        fn required(value: Option<Vec<u8>>, what: &str) -> anyhow::Result<Vec<u8>> {
            match value {
                Some(v) if !v.is_empty() => Ok(v),
                _ => bail!("the KMS answer to Encrypt has no {what}: the data key is not wrapped"),
            }
        }
        Ok(WrappedKey {
            ciphertext: required(answer.data, "data")?,
            iv: required(answer.iv_counter_nonce, "IV")?,
            tag: required(answer.authenticated_encryption_tag, "authentication tag")?,
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        for (what, v) in [
            ("wrapped data key", &self.ciphertext),
            ("IV", &self.iv),
            ("tag", &self.tag),
        ] {
            if v.is_empty() {
                bail!("empty {what} in the header");
            }
        }
        Ok(())
    }
}

/// What encrypts data keys: the KMS, or a fixed key in tests.
trait KeyWrapper {
    async fn wrap(&self, data_key: &[u8]) -> anyhow::Result<WrappedKey>;
    async fn unwrap(&self, wrapped: &WrappedKey) -> anyhow::Result<Zeroizing<Vec<u8>>>;
}

/// A KMS key that wraps data keys with Encrypt and unwraps them with Decrypt, the format's
/// magic as authenticated data.
struct KmsWrapper<'a> {
    client: &'a KmsClient,
    key_id: &'a str,
}

impl KeyWrapper for KmsWrapper<'_> {
    async fn wrap(&self, data_key: &[u8]) -> anyhow::Result<WrappedKey> {
        let answer = self
            .client
            .call(Encrypt {
                authenticated_encryption_additional_data: Some(MAGIC.to_vec()),
                ..Encrypt::new(Some(self.key_id.into()), data_key.to_vec())
            })
            .await
            .context("the KMS could not wrap the data key")?;
        WrappedKey::from_response(answer)
    }

    async fn unwrap(&self, wrapped: &WrappedKey) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let answer = self
            .client
            .call(Decrypt {
                unique_identifier: Some(self.key_id.into()),
                cryptographic_parameters: None,
                data: Some(wrapped.ciphertext.clone()),
                iv_counter_nonce: Some(wrapped.iv.clone()),
                correlation_value: None,
                init_indicator: None,
                final_indicator: None,
                authenticated_encryption_additional_data: Some(MAGIC.to_vec()),
                authenticated_encryption_tag: Some(wrapped.tag.clone()),
            })
            .await
            .context("the KMS could not unwrap the data key (wrong key?)")?;
        Ok(Zeroizing::new(answer.data.context(
            "the KMS answer to Decrypt has no data: the data key is not unwrapped",
        )?))
    }
}

/// The header of an envelope file.
#[derive(Clone, Debug, PartialEq)]
struct Header {
    wrapped: WrappedKey,
    prefix: [u8; 8],
}

impl Header {
    /// A header for a new file: `wrapped` and a random nonce prefix.
    fn new(wrapped: WrappedKey) -> anyhow::Result<Header> {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&kms_crypto::random_bytes(8)?);
        Ok(Header { wrapped, prefix })
    }

    /// The start of the file: magic, header length and header.
    fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        self.wrapped.check()?;
        let mut header = Vec::new();
        put_bytes(&mut header, &self.wrapped.ciphertext)?;
        put_bytes(&mut header, &self.wrapped.iv)?;
        put_bytes(&mut header, &self.wrapped.tag)?;
        header.extend_from_slice(&self.prefix);
        header.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(&header);
        Ok(out)
    }

    /// Reads the start of a file written by [`Header::to_bytes`].
    fn read(reader: &mut impl Read) -> anyhow::Result<Header> {
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .context("not a file encrypted by `ckms sym encrypt`")?;
        if &magic != MAGIC {
            bail!("not a file encrypted by `ckms sym encrypt` (bad magic)");
        }
        let mut len = [0u8; 4];
        reader.read_exact(&mut len).context("truncated header")?;
        let header_len = u32::from_be_bytes(len) as usize;
        if header_len > MAX_HEADER {
            bail!("corrupt header");
        }
        let mut header = vec![0u8; header_len];
        reader.read_exact(&mut header).context("truncated header")?;
        let mut h = header.as_slice();
        let wrapped = WrappedKey {
            ciphertext: take_bytes(&mut h)?.to_vec(),
            iv: take_bytes(&mut h)?.to_vec(),
            tag: take_bytes(&mut h)?.to_vec(),
        };
        wrapped.check().context("corrupt header")?;
        if h.len() != 12 {
            bail!("corrupt header");
        }
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&h[..8]);
        let chunk = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if chunk != CHUNK {
            bail!("corrupt header: chunk size {chunk}, files are written in chunks of {CHUNK}");
        }
        Ok(Header { wrapped, prefix })
    }
}

/// Encrypts all of `reader` into chunks written to `writer`, under `key` and the nonce prefix
/// of `header`; `progress` gets the plaintext bytes of each chunk.
fn seal_chunks(
    reader: &mut impl Read,
    writer: &mut impl Write,
    key: &[u8],
    header: &Header,
    aad: &[u8],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let mut current = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut n = read_full(reader, &mut current)?;
    let mut index: u32 = 0;
    loop {
        // Read ahead one chunk to know whether this one is the last.
        let m = if n == CHUNK {
            read_full(reader, &mut next)?
        } else {
            0
        };
        let last = m == 0;
        let sealed = kms_crypto::encrypt(&EncryptRequest {
            cipher: SymmetricCipher::AesGcm,
            key,
            iv: Some(&nonce(&header.prefix, index)),
            aad: &chunk_aad(aad, index, last),
            plaintext: &current[..n],
            tag_length: TAG,
            padding: Padding::None,
        })?;
        writer.write_all(&sealed.ciphertext)?;
        writer.write_all(
            sealed
                .tag
                .as_deref()
                .context("AES-GCM gave no authentication tag")?,
        )?;
        progress(n as u64);
        if last {
            return Ok(());
        }
        std::mem::swap(&mut current, &mut next);
        n = m;
        index = index.checked_add(1).context("file too large")?;
    }
}

/// Decrypts the chunks that follow the header in `reader` into `writer`. Each chunk is
/// written only once authenticated, but a later chunk may still fail: the caller discards the
/// output on error.
fn open_chunks(
    reader: &mut impl Read,
    writer: &mut impl Write,
    key: &[u8],
    header: &Header,
    aad: &[u8],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let sealed_len = CHUNK + TAG;
    let mut current = vec![0u8; sealed_len];
    let mut next = vec![0u8; sealed_len];
    let mut n = read_full(reader, &mut current)?;
    let mut index: u32 = 0;
    loop {
        let m = if n == sealed_len {
            read_full(reader, &mut next)?
        } else {
            0
        };
        let last = m == 0;
        if n < TAG {
            bail!("the file is truncated");
        }
        let plain = kms_crypto::decrypt(&DecryptRequest {
            cipher: SymmetricCipher::AesGcm,
            key,
            iv: Some(&nonce(&header.prefix, index)),
            aad: &chunk_aad(aad, index, last),
            ciphertext: &current[..n - TAG],
            tag: Some(&current[n - TAG..n]),
            padding: Padding::None,
        })
        .context("the file was modified, truncated, or the authentication data differs")?;
        writer.write_all(&plain)?;
        progress(n as u64);
        if last {
            return Ok(());
        }
        std::mem::swap(&mut current, &mut next);
        n = m;
        index = index.checked_add(1).context("file too large")?;
    }
}

/// How a finished output file takes its place.
#[derive(Clone, Copy, PartialEq)]
enum Publish {
    /// Replace an existing file (ciphertext).
    Replace,
    /// Refuse to replace anything, not even a symbolic link; private to the owner (plaintext).
    NoClobber,
}

/// An output file being written to `DEST.partial`, created new (never through a symbolic link,
/// never over an existing file). It reaches `DEST` only through [`PartialFile::commit`];
/// dropped before, it is removed.
struct PartialFile {
    tmp: PathBuf,
    dest: PathBuf,
    publish: Publish,
    writer: Option<BufWriter<File>>,
    /// The temporary file is gone: moved to `dest`.
    committed: bool,
}

fn exists(path: &Path) -> bool {
    // Without following a symbolic link: a dangling one exists too.
    std::fs::symlink_metadata(path).is_ok()
}

fn refuse_existing(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} already exists: remove it or choose another output file (-o)",
        path.display()
    )
}

impl PartialFile {
    fn create(dest: &Path, publish: Publish) -> anyhow::Result<PartialFile> {
        let mut name = dest
            .file_name()
            .with_context(|| format!("{} is not a file name", dest.display()))?
            .to_owned();
        name.push(".partial");
        let tmp = dest.with_file_name(name);
        if publish == Publish::NoClobber && exists(dest) {
            return Err(refuse_existing(dest));
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if publish == Publish::NoClobber {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        let file = match options.open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(refuse_existing(&tmp)
                    .context("a partial output file is in the way (an interrupted run?)"));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", tmp.display()));
            }
        };
        Ok(PartialFile {
            tmp,
            dest: dest.to_owned(),
            publish,
            writer: Some(BufWriter::new(file)),
            committed: false,
        })
    }

    fn writer(&mut self) -> anyhow::Result<&mut BufWriter<File>> {
        self.writer.as_mut().context("the output file is closed")
    }

    /// Flushes and closes the file and moves it to its destination.
    fn commit(mut self) -> anyhow::Result<()> {
        let writer = self.writer.take().context("the output file is closed")?;
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        match self.publish {
            Publish::Replace => std::fs::rename(&self.tmp, &self.dest)
                .with_context(|| format!("cannot write {}", self.dest.display()))?,
            Publish::NoClobber => match std::fs::hard_link(&self.tmp, &self.dest) {
                // A link never replaces an existing name; the temporary name then goes away.
                Ok(()) => {
                    self.committed = true;
                    std::fs::remove_file(&self.tmp)
                        .with_context(|| format!("cannot remove {}", self.tmp.display()))?;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(refuse_existing(&self.dest));
                }
                // A file system without hard links: check, then rename.
                Err(_) => {
                    if exists(&self.dest) {
                        return Err(refuse_existing(&self.dest));
                    }
                    std::fs::rename(&self.tmp, &self.dest)
                        .with_context(|| format!("cannot write {}", self.dest.display()))?;
                }
            },
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Not committed (or the commit failed): the output is incomplete or unverified.
        drop(self.writer.take());
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

pub async fn encrypt_file(
    client: &KmsClient,
    key_id: &str,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    encrypt_with(&KmsWrapper { client, key_id }, input, output, aad).await
}

pub async fn decrypt_file(
    client: &KmsClient,
    key_id: &str,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    decrypt_with(&KmsWrapper { client, key_id }, input, output, aad).await
}

async fn encrypt_with(
    wrapper: &impl KeyWrapper,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let dek = kms_crypto::random_key(DATA_KEY)?;
    let header = Header::new(wrapper.wrap(&dek).await?)?;
    let mut out = PartialFile::create(output, Publish::Replace)?;
    out.writer()?.write_all(&header.to_bytes()?)?;
    let bar = progress(total);
    seal_chunks(
        &mut reader,
        out.writer()?,
        &dek,
        &header,
        aad.as_bytes(),
        |n| bar.inc(n),
    )?;
    out.commit()?;
    bar.finish_and_clear();
    Ok(())
}

async fn decrypt_with(
    wrapper: &impl KeyWrapper,
    input: &Path,
    output: &Path,
    aad: &str,
) -> anyhow::Result<()> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let header = Header::read(&mut reader)?;
    // Refuses an existing output before asking the KMS anything.
    let mut out = PartialFile::create(output, Publish::NoClobber)?;
    let dek = wrapper.unwrap(&header.wrapped).await?;
    if dek.len() != DATA_KEY {
        bail!(
            "the KMS unwrapped a data key of {} bytes instead of {DATA_KEY}",
            dek.len()
        );
    }
    let bar = progress(total);
    open_chunks(
        &mut reader,
        out.writer()?,
        &dek,
        &header,
        aad.as_bytes(),
        |n| bar.inc(n),
    )?;
    out.commit()?;
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail loudly on purpose"
    )]

    use super::*;

    /// A stand-in for the KMS: AES-256-GCM under a fixed key, the magic as associated data.
    struct LocalWrapper([u8; 32]);

    impl KeyWrapper for LocalWrapper {
        async fn wrap(&self, data_key: &[u8]) -> anyhow::Result<WrappedKey> {
            let sealed = kms_crypto::encrypt(&EncryptRequest {
                cipher: SymmetricCipher::AesGcm,
                key: &self.0,
                iv: None,
                aad: MAGIC,
                plaintext: data_key,
                tag_length: TAG,
                padding: Padding::None,
            })?;
            Ok(WrappedKey {
                ciphertext: sealed.ciphertext,
                iv: sealed.iv.unwrap(),
                tag: sealed.tag.unwrap(),
            })
        }

        async fn unwrap(&self, wrapped: &WrappedKey) -> anyhow::Result<Zeroizing<Vec<u8>>> {
            Ok(kms_crypto::decrypt(&DecryptRequest {
                cipher: SymmetricCipher::AesGcm,
                key: &self.0,
                iv: Some(&wrapped.iv),
                aad: MAGIC,
                ciphertext: &wrapped.ciphertext,
                tag: Some(&wrapped.tag),
                padding: Padding::None,
            })?)
        }
    }

    const KEK: LocalWrapper = LocalWrapper([7; 32]);
    const SIZES: [usize; 4] = [0, 1, CHUNK, 2 * CHUNK + 17];

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn fixed_header() -> Header {
        Header {
            wrapped: WrappedKey {
                ciphertext: vec![1; 48],
                iv: vec![2; 12],
                tag: vec![3; 16],
            },
            prefix: *b"prefix!!",
        }
    }

    /// Plaintext of `len` bytes encrypted to `dir/plain.enc`; returns the envelope's bytes.
    async fn encrypted(dir: &Path, len: usize) -> Vec<u8> {
        let plain = dir.join("plain");
        std::fs::write(&plain, data(len)).unwrap();
        let enc = dir.join("plain.enc");
        encrypt_with(&KEK, &plain, &enc, "aad").await.unwrap();
        std::fs::read(&enc).unwrap()
    }

    /// Decrypts `envelope` to `dir/out` and returns the error, checking that no output (final
    /// or partial) is left.
    async fn refused(dir: &Path, envelope: &[u8]) -> anyhow::Error {
        let input = dir.join("tampered.enc");
        std::fs::write(&input, envelope).unwrap();
        let out = dir.join("out");
        let err = decrypt_with(&KEK, &input, &out, "aad")
            .await
            .expect_err("must be refused");
        assert!(!exists(&out), "output left after: {err:#}");
        assert!(!exists(&dir.join("out.partial")), "partial left: {err:#}");
        err
    }

    /// Chunks of a file of `len` bytes: an empty file has one, empty.
    fn chunks(len: usize) -> usize {
        len.div_ceil(CHUNK).max(1)
    }

    fn header_len(envelope: &[u8]) -> usize {
        12 + u32::from_be_bytes(envelope[8..12].try_into().unwrap()) as usize
    }

    #[test]
    fn chunks_round_trip_with_a_fixed_data_key() {
        let key = [9u8; 32];
        let header = fixed_header();
        for len in SIZES {
            let plain = data(len);
            let mut sealed = Vec::new();
            let mut seen = 0;
            seal_chunks(&mut &plain[..], &mut sealed, &key, &header, b"ad", |n| {
                seen += n
            })
            .unwrap();
            assert_eq!(seen, len as u64);
            assert_eq!(sealed.len(), len + chunks(len) * TAG, "{len} bytes");
            let mut opened = Vec::new();
            open_chunks(&mut &sealed[..], &mut opened, &key, &header, b"ad", |_| {}).unwrap();
            assert_eq!(opened, plain, "{len} bytes");
            // Another key, nonce prefix or associated data opens nothing.
            let other = Header {
                prefix: *b"another!",
                ..header.clone()
            };
            for (k, h, ad) in [
                (&[8u8; 32], &header, &b"ad"[..]),
                (&key, &other, b"ad"),
                (&key, &header, b"da"),
            ] {
                assert!(open_chunks(&mut &sealed[..], &mut Vec::new(), k, h, ad, |_| {}).is_err());
            }
        }
    }

    #[test]
    fn header_round_trips_and_refuses_empty_fields() {
        let header = fixed_header();
        let bytes = header.to_bytes().unwrap();
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(Header::read(&mut &bytes[..]).unwrap(), header);
        for field in 0..3 {
            let mut h = header.clone();
            match field {
                0 => h.wrapped.ciphertext.clear(),
                1 => h.wrapped.iv.clear(),
                _ => h.wrapped.tag.clear(),
            }
            assert!(h.to_bytes().is_err(), "field {field} empty");
            // Written by hand, such a header is refused on reading too.
            let mut raw = Vec::new();
            put_bytes(&mut raw, &h.wrapped.ciphertext).unwrap();
            put_bytes(&mut raw, &h.wrapped.iv).unwrap();
            put_bytes(&mut raw, &h.wrapped.tag).unwrap();
            raw.extend_from_slice(&h.prefix);
            raw.extend_from_slice(&(CHUNK as u32).to_be_bytes());
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            file.extend_from_slice(&raw);
            let err = Header::read(&mut &file[..]).unwrap_err();
            assert!(format!("{err:#}").contains("empty"), "{err:#}");
        }
    }

    #[test]
    fn a_kms_answer_without_key_iv_or_tag_is_an_error() {
        let full = EncryptResponse {
            unique_identifier: "k".into(),
            data: Some(vec![1; 48]),
            iv_counter_nonce: Some(vec![2; 12]),
            correlation_value: None,
            authenticated_encryption_tag: Some(vec![3; 16]),
        };
        assert!(WrappedKey::from_response(full.clone()).is_ok());
        for (what, empty) in [("data", None), ("data", Some(vec![]))] {
            let answer = EncryptResponse {
                data: empty,
                ..full.clone()
            };
            let err = WrappedKey::from_response(answer).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
        for (what, empty) in [("IV", None), ("IV", Some(vec![]))] {
            let answer = EncryptResponse {
                iv_counter_nonce: empty,
                ..full.clone()
            };
            let err = WrappedKey::from_response(answer).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
        for (what, empty) in [("tag", None), ("tag", Some(vec![]))] {
            let answer = EncryptResponse {
                authenticated_encryption_tag: empty,
                ..full.clone()
            };
            let err = WrappedKey::from_response(answer).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
    }

    /// A KMS on a loopback port that answers every JSON TTLV request with `answer`.
    async fn fake_kms(answer: kmip::model::ResponsePayload) -> KmsClient {
        use kmip::KmipEnum;
        let mut tree = answer.encode();
        tree.tag = kmip::Tag::operation_response(answer.operation().to_u32());
        let body = kmip::json::to_string(&tree);
        let app = axum::Router::new().route(
            "/kmip/2_1",
            axum::routing::post(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        KmsClient::with_url(&format!("http://{addr}")).unwrap()
    }

    #[tokio::test]
    async fn encrypt_refuses_a_kms_answer_without_iv_or_tag() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("plain");
        std::fs::write(&input, b"secret").unwrap();
        let output = dir.path().join("plain.enc");
        let client = fake_kms(kmip::model::ResponsePayload::Encrypt(EncryptResponse {
            unique_identifier: "k".into(),
            data: Some(vec![1; 48]),
            iv_counter_nonce: None,
            correlation_value: None,
            authenticated_encryption_tag: None,
        }))
        .await;
        let err = encrypt_file(&client, "k", &input, &output, "")
            .await
            .expect_err("an envelope without IV and tag can never be decrypted");
        assert!(format!("{err:#}").contains("IV"), "{err:#}");
        assert!(!output.exists(), "no output");
    }

    #[tokio::test]
    async fn files_round_trip() {
        for len in SIZES {
            let dir = tempfile::tempdir().unwrap();
            let envelope = encrypted(dir.path(), len).await;
            assert_eq!(
                envelope.len(),
                header_len(&envelope) + len + chunks(len) * TAG
            );
            let out = dir.path().join("out");
            decrypt_with(&KEK, &dir.path().join("plain.enc"), &out, "aad")
                .await
                .unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), data(len), "{len} bytes");
            assert!(!exists(&dir.path().join("out.partial")));
            assert!(!exists(&dir.path().join("plain.enc.partial")));
        }
    }

    #[tokio::test]
    async fn wrong_authentication_data_or_key_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        encrypted(dir.path(), 10).await;
        let input = dir.path().join("plain.enc");
        let out = dir.path().join("out");
        assert!(decrypt_with(&KEK, &input, &out, "other").await.is_err());
        assert!(!exists(&out) && !exists(&dir.path().join("out.partial")));
        let err = decrypt_with(&LocalWrapper([8; 32]), &input, &out, "aad")
            .await
            .expect_err("another key");
        assert!(
            !exists(&out) && !exists(&dir.path().join("out.partial")),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn truncated_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let envelope = encrypted(dir.path(), CHUNK + 100).await;
        let h = header_len(&envelope);
        for cut in [0, 5, 8, 11, h - 1, h, h + 10, h + CHUNK, envelope.len() - 1] {
            let err = refused(dir.path(), &envelope[..cut]).await;
            assert!(!format!("{err:#}").is_empty(), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn reordered_chunks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let envelope = encrypted(dir.path(), 3 * CHUNK).await;
        let h = header_len(&envelope);
        let sealed = CHUNK + TAG;
        let chunk = |i: usize| &envelope[h + i * sealed..h + (i + 1) * sealed];
        for order in [[1, 0, 2], [0, 2, 1], [2, 1, 0]] {
            let mut swapped = envelope[..h].to_vec();
            for i in order {
                swapped.extend_from_slice(chunk(i));
            }
            let err = refused(dir.path(), &swapped).await;
            assert!(
                format!("{err:#}").contains("modified"),
                "{order:?}: {err:#}"
            );
        }
    }

    #[tokio::test]
    async fn a_dropped_last_chunk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // The last chunk partly or completely filled.
        for len in [2 * CHUNK + 17, 2 * CHUNK] {
            let envelope = encrypted(dir.path(), len).await;
            let kept = header_len(&envelope) + (chunks(len) - 1) * (CHUNK + TAG);
            let err = refused(dir.path(), &envelope[..kept]).await;
            assert!(format!("{err:#}").contains("modified"), "{len}: {err:#}");
        }
    }

    #[tokio::test]
    async fn any_flipped_bit_in_the_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A small file: a chunk size changed in the header would still hold all of it.
        let envelope = encrypted(dir.path(), 1).await;
        for bit in 0..header_len(&envelope) * 8 {
            let mut flipped = envelope.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            refused(dir.path(), &flipped).await;
        }
    }

    #[tokio::test]
    async fn a_flipped_bit_in_any_chunk_is_refused_and_no_plaintext_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let envelope = encrypted(dir.path(), 2 * CHUNK + 17).await;
        let h = header_len(&envelope);
        // In the first, second and last chunk, their tags, and the very last byte: the earlier
        // chunks were already written out when the last one fails.
        for at in [
            h,
            h + CHUNK,
            h + CHUNK + TAG + 5,
            h + 2 * (CHUNK + TAG) + 3,
            envelope.len() - 1,
        ] {
            let mut flipped = envelope.clone();
            flipped[at] ^= 0x10;
            let err = refused(dir.path(), &flipped).await;
            assert!(
                format!("{err:#}").contains("modified"),
                "byte {at}: {err:#}"
            );
        }
    }

    #[tokio::test]
    async fn an_existing_output_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        encrypted(dir.path(), 10).await;
        let input = dir.path().join("plain.enc");
        let out = dir.path().join("out");
        std::fs::write(&out, b"precious").unwrap();
        let err = decrypt_with(&KEK, &input, &out, "aad")
            .await
            .expect_err("exists");
        let msg = format!("{err:#}");
        assert!(msg.contains(&out.display().to_string()), "{msg}");
        assert!(msg.contains("remove it or choose another output"), "{msg}");
        assert_eq!(std::fs::read(&out).unwrap(), b"precious");
        assert!(!exists(&dir.path().join("out.partial")));

        // A partial file left by an interrupted run is refused and left too.
        std::fs::remove_file(&out).unwrap();
        let partial = dir.path().join("out.partial");
        std::fs::write(&partial, b"earlier").unwrap();
        let err = decrypt_with(&KEK, &input, &out, "aad")
            .await
            .expect_err("partial exists");
        let msg = format!("{err:#}");
        assert!(msg.contains(&partial.display().to_string()), "{msg}");
        assert_eq!(std::fs::read(&partial).unwrap(), b"earlier");
        assert!(!exists(&out));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_at_the_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        encrypted(dir.path(), 10).await;
        let input = dir.path().join("plain.enc");
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let out = dir.path().join("out");
        std::os::unix::fs::symlink(&target, &out).unwrap();
        let err = decrypt_with(&KEK, &input, &out, "aad")
            .await
            .expect_err("symlink");
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_symlink());

        // A dangling link is refused too: nothing is created where it points.
        let dangling = dir.path().join("nowhere");
        let out2 = dir.path().join("out2");
        std::os::unix::fs::symlink(&dangling, &out2).unwrap();
        assert!(decrypt_with(&KEK, &input, &out2, "aad").await.is_err());
        assert!(!exists(&dangling));

        // And so is a link where the partial file goes.
        let out3 = dir.path().join("out3");
        std::os::unix::fs::symlink(&target, dir.path().join("out3.partial")).unwrap();
        assert!(decrypt_with(&KEK, &input, &out3, "aad").await.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(!exists(&out3));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_plaintext_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        encrypted(dir.path(), CHUNK + 1).await;
        let out = dir.path().join("out");
        decrypt_with(&KEK, &dir.path().join("plain.enc"), &out, "aad")
            .await
            .unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[tokio::test]
    async fn encrypting_replaces_an_existing_output_and_leaves_no_partial_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let enc = dir.path().join("plain.enc");
        std::fs::write(&enc, b"old").unwrap();
        let envelope = encrypted(dir.path(), 10).await;
        assert_eq!(&envelope[..8], MAGIC);
        // The wrapping fails: nothing is written.
        struct Failing;
        impl KeyWrapper for Failing {
            async fn wrap(&self, _: &[u8]) -> anyhow::Result<WrappedKey> {
                bail!("no KMS")
            }
            async fn unwrap(&self, _: &WrappedKey) -> anyhow::Result<Zeroizing<Vec<u8>>> {
                bail!("no KMS")
            }
        }
        let other = dir.path().join("other.enc");
        assert!(
            encrypt_with(&Failing, &dir.path().join("plain"), &other, "")
                .await
                .is_err()
        );
        assert!(!exists(&other) && !exists(&dir.path().join("other.enc.partial")));
    }
}
