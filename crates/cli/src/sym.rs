//! `ckms sym`: symmetric key lifecycle and file encryption.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use kmip::model::{Attribute, Attributes, Create, Get, Import, Object, Revoke, UniqueIdentifier};
use kmip::{CryptographicAlgorithm, KeyFormatType, ObjectType, RevocationReasonCode};
use kms_client::{KmsClient, op};
use serde_json::json;

use crate::envelope;
use crate::output::Output;

#[derive(Clone, Copy, ValueEnum)]
pub enum Algorithm {
    Aes,
    Chacha20,
}

impl Algorithm {
    fn kmip(self) -> CryptographicAlgorithm {
        match self {
            Algorithm::Aes => CryptographicAlgorithm::AES,
            Algorithm::Chacha20 => CryptographicAlgorithm::ChaCha20,
        }
    }
}

#[derive(Subcommand)]
pub enum SymCommand {
    /// Create, import, export and manage keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Encrypt a file under a data key that the KMS key wraps (envelope encryption, streamed).
    Encrypt {
        /// The file to encrypt.
        file: PathBuf,
        /// The KMS key that wraps the data key.
        #[arg(long, short = 'k')]
        key_id: String,
        /// Output file (default: FILE.enc).
        #[arg(long, short = 'o')]
        output_file: Option<PathBuf>,
        /// Authenticated data bound to the file.
        #[arg(long)]
        authentication_data: Option<String>,
    },
    /// Decrypt a file produced by `sym encrypt`.
    Decrypt {
        file: PathBuf,
        #[arg(long, short = 'k')]
        key_id: String,
        /// Output file (default: FILE without .enc, or FILE.plain). It must not exist: an
        /// existing file is never replaced.
        #[arg(long, short = 'o')]
        output_file: Option<PathBuf>,
        #[arg(long)]
        authentication_data: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new key on the server.
    Create {
        /// Identifier to give the key (default: a UUID chosen by the server).
        key_id: Option<String>,
        #[arg(long, short = 'a', value_enum, default_value = "aes")]
        algorithm: Algorithm,
        #[arg(long = "number-of-bits", short = 'l', default_value_t = 256)]
        number_of_bits: i32,
        /// User tag (repeatable).
        #[arg(long, short = 't')]
        tag: Vec<String>,
    },
    /// Import raw key bytes from a file as an active key.
    Import {
        file: PathBuf,
        key_id: Option<String>,
        #[arg(long, short = 'a', value_enum, default_value = "aes")]
        algorithm: Algorithm,
        #[arg(long, short = 't')]
        tag: Vec<String>,
        /// Replace an existing key with the same identifier.
        #[arg(long, short = 'r')]
        replace: bool,
    },
    /// Write a key's raw bytes to a file.
    Export {
        #[arg(long, short = 'k')]
        key_id: String,
        file: PathBuf,
    },
    /// Make a pre-active key active.
    Activate { key_id: String },
    /// Revoke a key.
    Revoke {
        #[arg(long, short = 'k')]
        key_id: String,
        /// Why.
        revocation_reason: String,
        /// The key was compromised.
        #[arg(long)]
        compromised: bool,
    },
    /// Destroy a key's material (it must be revoked or never activated).
    Destroy { key_id: String },
}

pub async fn run(client: &KmsClient, command: SymCommand, out: &Output) -> anyhow::Result<()> {
    match command {
        SymCommand::Keys { command } => keys(client, command, out).await,
        SymCommand::Encrypt {
            file,
            key_id,
            output_file,
            authentication_data,
        } => {
            let output = output_file.unwrap_or_else(|| append_ext(&file, "enc"));
            envelope::encrypt_file(
                client,
                &key_id,
                &file,
                &output,
                authentication_data.as_deref().unwrap_or(""),
            )
            .await?;
            out.wrote(
                &format!("encrypted {} to {}", file.display(), output.display()),
                &output,
                "ciphertext",
                json!({ "input_file": file, "key_id": key_id }),
            );
            Ok(())
        }
        SymCommand::Decrypt {
            file,
            key_id,
            output_file,
            authentication_data,
        } => {
            let output = output_file.unwrap_or_else(|| match file.extension() {
                Some(e) if e == "enc" => file.with_extension(""),
                _ => append_ext(&file, "plain"),
            });
            envelope::decrypt_file(
                client,
                &key_id,
                &file,
                &output,
                authentication_data.as_deref().unwrap_or(""),
            )
            .await?;
            out.wrote(
                &format!("decrypted {} to {}", file.display(), output.display()),
                &output,
                "plaintext",
                json!({ "input_file": file, "key_id": key_id }),
            );
            Ok(())
        }
    }
}

pub fn append_ext(path: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The text of an identifier the KMS answered.
fn text_of(uid: &UniqueIdentifier) -> String {
    uid.as_text().unwrap_or_default().to_owned()
}

fn key_attributes(
    key_id: Option<String>,
    algorithm: Algorithm,
    bits: i32,
    tags: &[String],
) -> Attributes {
    let mut a = Attributes(vec![
        Attribute::CryptographicAlgorithm(algorithm.kmip()),
        Attribute::CryptographicLength(bits),
    ]);
    if let Some(id) = key_id {
        a.set(Attribute::UniqueIdentifier(id.into()));
    }
    a.set_user_tags(tags);
    a
}

async fn keys(client: &KmsClient, command: KeysCommand, out: &Output) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            key_id,
            algorithm,
            number_of_bits,
            tag,
        } => {
            let attributes = key_attributes(key_id, algorithm, number_of_bits, &tag);
            let created = client
                .call(Create {
                    object_type: ObjectType::SymmetricKey,
                    attributes,
                    protection_storage_masks: None,
                })
                .await?;
            let uid = text_of(&created.unique_identifier);
            out.report(
                &format!("The symmetric key was created with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
        KeysCommand::Import {
            file,
            key_id,
            algorithm,
            tag,
            replace,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let bits = i32::try_from(bytes.len() * 8).context("key file too large")?;
            let mut attributes = key_attributes(None, algorithm, bits, &tag);
            attributes.set(Attribute::CryptographicUsageMask(0x4 | 0x8 | 0x10 | 0x20));
            let object = Object::symmetric_key(algorithm.kmip(), bits, bytes);
            let uid = key_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let imported = client
                .call(Import {
                    replace_existing: Some(replace),
                    ..Import::new(uid, attributes, object)
                })
                .await?;
            let uid = text_of(&imported.unique_identifier);
            out.report(
                &format!("The symmetric key was imported with id: {uid}"),
                json!({ "unique_identifier": uid }),
            );
        }
        KeysCommand::Export { key_id, file } => {
            let get = client
                .call(Get {
                    key_format_type: Some(KeyFormatType::Raw),
                    ..Get::new(&key_id)
                })
                .await?;
            let bytes = get
                .object
                .key_block()
                .and_then(|kb| kb.symmetric_key_bytes())
                .context("the object has no symmetric key bytes")?
                .to_vec();
            write_private(&file, &bytes)?;
            out.wrote(
                &format!("The key {key_id} was exported to {}", file.display()),
                &file,
                "symmetric key, raw bytes",
                json!({ "unique_identifier": key_id }),
            );
        }
        KeysCommand::Activate { key_id } => {
            let activated = client.call(op::Activate::new(key_id)).await?;
            let uid = text_of(&activated.unique_identifier);
            out.report(
                &format!("The key {uid} is active"),
                json!({ "unique_identifier": uid }),
            );
        }
        KeysCommand::Revoke {
            key_id,
            revocation_reason,
            compromised,
        } => {
            let code = if compromised {
                RevocationReasonCode::KeyCompromise
            } else {
                RevocationReasonCode::CessationOfOperation
            };
            let mut revoke = Revoke::new(key_id, code);
            revoke.revocation_reason.revocation_message = Some(revocation_reason);
            let revoked = client.call(revoke).await?;
            let uid = text_of(&revoked.unique_identifier);
            out.report(
                &format!("The key {uid} was revoked"),
                json!({ "unique_identifier": uid }),
            );
        }
        KeysCommand::Destroy { key_id } => {
            let destroyed = client.call(kmip::model::Destroy::new(key_id)).await?;
            let uid = text_of(&destroyed.unique_identifier);
            out.report(
                &format!("The key {uid} was destroyed"),
                json!({ "unique_identifier": uid }),
            );
        }
    }
    Ok(())
}

/// Writes key material readable by the owner only.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
