//! `ckms hash`, `ckms mac`, `ckms rng`: server-side primitives.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kmip::HashingAlgorithm;
use kmip::model::{CryptographicParameters, Hash, Mac, RngRetrieve};
use kms_client::KmsClient;
use serde_json::json;

use crate::output::Output;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn data_of(file: Option<PathBuf>, data: Option<String>) -> anyhow::Result<Vec<u8>> {
    match (file, data) {
        (Some(f), None) => {
            std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))
        }
        (None, Some(d)) => Ok(d.into_bytes()),
        _ => Err(crate::output::usage("give either a FILE or --data")),
    }
}

fn hashing(name: &str) -> anyhow::Result<HashingAlgorithm> {
    Ok(
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "sha1" => HashingAlgorithm::SHA_1,
            "sha224" => HashingAlgorithm::SHA_224,
            "sha256" => HashingAlgorithm::SHA_256,
            "sha384" => HashingAlgorithm::SHA_384,
            "sha512" => HashingAlgorithm::SHA_512,
            "sha3224" => HashingAlgorithm::SHA3_224,
            "sha3256" => HashingAlgorithm::SHA3_256,
            "sha3384" => HashingAlgorithm::SHA3_384,
            "sha3512" => HashingAlgorithm::SHA3_512,
            other => {
                return Err(crate::output::usage(format!(
                    "unknown hash `{other}`: use sha256, sha384, sha512, sha3-256..."
                )));
            }
        },
    )
}

#[derive(Args)]
pub struct HashArgs {
    /// File to hash.
    file: Option<PathBuf>,
    /// Text to hash instead of a file.
    #[arg(long)]
    data: Option<String>,
    #[arg(long, short = 'a', default_value = "sha256")]
    algorithm: String,
}

pub async fn hash(client: &KmsClient, args: HashArgs, out: &Output) -> anyhow::Result<()> {
    let data = data_of(args.file, args.data)?;
    let h = client
        .call(Hash::new(hashing(&args.algorithm)?, data))
        .await?;
    let digest = hex(h.data.as_deref().unwrap_or_default());
    out.report(&digest, json!({ "digest": digest }));
    Ok(())
}

#[derive(Args)]
pub struct MacArgs {
    /// The HMAC key.
    #[arg(long, short = 'k')]
    key_id: String,
    file: Option<PathBuf>,
    #[arg(long)]
    data: Option<String>,
    #[arg(long, short = 'a', default_value = "sha256")]
    algorithm: String,
}

pub async fn mac(client: &KmsClient, args: MacArgs, out: &Output) -> anyhow::Result<()> {
    let data = data_of(args.file, args.data)?;
    let params = CryptographicParameters {
        hashing_algorithm: Some(hashing(&args.algorithm)?),
        ..Default::default()
    };
    let m = client
        .call(Mac {
            cryptographic_parameters: Some(params),
            ..Mac::new(args.key_id, data)
        })
        .await?;
    let mac = hex(m.mac_data.as_deref().unwrap_or_default());
    out.report(&mac, json!({ "mac": mac }));
    Ok(())
}

#[derive(Args)]
pub struct RngArgs {
    /// Number of bytes.
    #[arg(long, short = 'n', default_value_t = 32)]
    bytes: i32,
}

pub async fn rng(client: &KmsClient, args: RngArgs, out: &Output) -> anyhow::Result<()> {
    let d = client
        .call(RngRetrieve {
            data_length: args.bytes,
        })
        .await?;
    let h = hex(&d.data);
    out.report(&h, json!({ "random": h }));
    Ok(())
}
