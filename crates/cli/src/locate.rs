//! `ckms locate`: identifiers of objects matching tags and attributes.

use clap::Args;
use kmip::model::{Attribute, Attributes, Locate, Name};
use kmip::{CryptographicAlgorithm, NameType, ObjectType, State};
use kms_client::KmsClient;
use serde_json::json;

use crate::output::{Output, usage};

#[derive(Args)]
pub struct LocateArgs {
    /// User tag that must be present (repeatable).
    #[arg(long, short = 't')]
    tag: Vec<String>,
    /// Cryptographic algorithm: aes, chacha20.
    #[arg(long, short = 'a')]
    algorithm: Option<String>,
    /// Cryptographic length in bits.
    #[arg(long, short = 'n')]
    cryptographic_length: Option<i32>,
    /// Object type: symmetric-key, secret-data, opaque-object.
    #[arg(long)]
    object_type: Option<String>,
    /// State: pre-active, active, deactivated, compromised, destroyed.
    #[arg(long)]
    state: Option<String>,
    /// Name of the object.
    #[arg(long)]
    name: Option<String>,
    /// Object group.
    #[arg(long)]
    object_group: Option<String>,
    /// Return at most this many.
    #[arg(long)]
    maximum_items: Option<i32>,
    /// Skip this many.
    #[arg(long)]
    offset_items: Option<i32>,
}

pub async fn run(client: &KmsClient, args: LocateArgs, out: &Output) -> anyhow::Result<()> {
    let mut a = Attributes::new();
    if let Some(alg) = &args.algorithm {
        a.0.push(Attribute::CryptographicAlgorithm(
            match alg.to_ascii_lowercase().as_str() {
                "aes" => CryptographicAlgorithm::AES,
                "chacha20" => CryptographicAlgorithm::ChaCha20,
                other => {
                    return Err(usage(format!(
                        "unknown algorithm `{other}`: use aes or chacha20"
                    )));
                }
            },
        ));
    }
    if let Some(l) = args.cryptographic_length {
        a.0.push(Attribute::CryptographicLength(l));
    }
    if let Some(t) = &args.object_type {
        a.0.push(Attribute::ObjectType(match t.as_str() {
            "symmetric-key" => ObjectType::SymmetricKey,
            "secret-data" => ObjectType::SecretData,
            "opaque-object" => ObjectType::OpaqueObject,
            other => return Err(usage(format!("unknown object type `{other}`"))),
        }));
    }
    if let Some(s) = &args.state {
        a.0.push(Attribute::State(match s.as_str() {
            "pre-active" => State::PreActive,
            "active" => State::Active,
            "deactivated" => State::Deactivated,
            "compromised" => State::Compromised,
            "destroyed" => State::Destroyed,
            other => return Err(usage(format!("unknown state `{other}`"))),
        }));
    }
    if let Some(n) = args.name {
        a.0.push(Attribute::Name(Name {
            name_value: n,
            name_type: NameType::UninterpretedTextString,
        }));
    }
    if let Some(g) = args.object_group {
        a.0.push(Attribute::ObjectGroup(g));
    }
    a.set_user_tags(&args.tag);
    let found = client
        .call(Locate {
            maximum_items: args.maximum_items,
            offset_items: args.offset_items,
            ..Locate::matching(a)
        })
        .await?;
    let ids: Vec<String> = found
        .unique_identifier
        .iter()
        .filter_map(|u| u.as_text().map(str::to_owned))
        .collect();
    let text = if ids.is_empty() {
        "No object found".to_owned()
    } else {
        ids.join("\n")
    };
    out.report(
        &text,
        json!({ "unique_identifiers": ids, "located_items": found.located_items }),
    );
    Ok(())
}
