//! `ckms attributes get|set|delete`.

use clap::Subcommand;
use kmip::model::{Attribute, DeleteAttribute, GetAttributes, Item};
use kmip::{Tag, Ttlv, Value, json as kjson};
use kms_client::{KmsClient, op};
use serde_json::json;

use crate::output::{self, Output, usage};

#[derive(Subcommand)]
pub enum AttributesCommand {
    /// Print an object's attributes (all, or the ones named).
    Get {
        #[arg(long, short = 'i')]
        id: String,
        /// Attribute tag name, e.g. State, CryptographicUsageMask (repeatable).
        #[arg(long, short = 'a')]
        attribute: Vec<String>,
    },
    /// Set attributes: user tags, or any attribute given as a JSON TTLV node.
    Set {
        #[arg(long, short = 'i')]
        id: String,
        /// Replace the user tags with these (repeatable).
        #[arg(long, short = 't')]
        tag: Vec<String>,
        /// An attribute as JSON TTLV, e.g. '{"tag":"ObjectGroup","type":"TextString","value":"g"}'.
        #[arg(long)]
        attribute_json: Vec<String>,
    },
    /// Delete an attribute by tag name (all its instances), or every user tag.
    Delete {
        #[arg(long, short = 'i')]
        id: String,
        #[arg(long, short = 'a')]
        attribute: Option<String>,
        /// Delete the user tags.
        #[arg(long)]
        tags: bool,
    },
}

pub async fn run(
    client: &KmsClient,
    command: AttributesCommand,
    out: &Output,
) -> anyhow::Result<()> {
    match command {
        AttributesCommand::Get { id, attribute } => {
            let mut refs = Vec::new();
            for a in attribute {
                let tag =
                    Tag::from_name(&a).ok_or_else(|| usage(format!("unknown attribute `{a}`")))?;
                refs.push(Ttlv::new(
                    Tag::ATTRIBUTE_REFERENCE,
                    Value::Enumeration(tag.0),
                ));
            }
            let r = client
                .call(GetAttributes {
                    attribute_reference: refs,
                    ..GetAttributes::all(id.clone())
                })
                .await?;
            let tree = r.attributes.to_ttlv(Tag::ATTRIBUTES);
            let tree: serde_json::Value = serde_json::from_str(&kjson::to_string(&tree))?;
            let tags = r.attributes.user_tags().unwrap_or_default();
            let mut lines: Vec<String> = r
                .attributes
                .0
                .iter()
                .map(|a| kjson::to_string(&a.to_ttlv(a.tag())))
                .collect();
            if !tags.is_empty() {
                lines.push(format!("tags: {}", tags.join(", ")));
            }
            let uid = r
                .unique_identifier
                .as_text()
                .map_or_else(|| id.clone(), str::to_owned);
            out.report(
                &lines.join("\n"),
                json!({
                    "unique_identifier": uid,
                    "attributes": output::plain_attributes(&tree),
                    "tags": tags,
                    "ttlv": tree,
                }),
            );
        }
        AttributesCommand::Set {
            id,
            tag,
            attribute_json,
        } => {
            let mut attrs: Vec<Attribute> = Vec::new();
            if !tag.is_empty() {
                let mut a = kmip::model::Attributes::new();
                a.set_user_tags(&tag);
                attrs.extend(a.0);
            }
            for j in attribute_json {
                attrs.push(Attribute::from_ttlv(&kjson::from_str(&j)?)?);
            }
            for attr in attrs {
                client.call(op::SetAttribute::new(&id, attr)).await?;
            }
            out.report(
                &format!("attributes of {id} set"),
                json!({ "unique_identifier": id }),
            );
        }
        AttributesCommand::Delete {
            id,
            attribute,
            tags,
        } => {
            let reference = match (&attribute, tags) {
                (Some(a), _) => {
                    let tag = Tag::from_name(a)
                        .ok_or_else(|| usage(format!("unknown attribute `{a}`")))?;
                    Some(Ttlv::new(
                        Tag::ATTRIBUTE_REFERENCE,
                        Value::Enumeration(tag.0),
                    ))
                }
                (None, true) => Some(Ttlv::structure(
                    Tag::ATTRIBUTE_REFERENCE,
                    vec![
                        Ttlv::new(
                            Tag::VENDOR_IDENTIFICATION,
                            Value::TextString(kmip::model::COSMIAN_VENDOR.into()),
                        ),
                        Ttlv::new(
                            Tag::ATTRIBUTE_NAME,
                            Value::TextString(kmip::model::TAG_ATTRIBUTE_NAME.into()),
                        ),
                    ],
                )),
                (None, false) => {
                    return Err(usage("say what to delete: --attribute NAME or --tags"));
                }
            };
            client
                .call(DeleteAttribute {
                    unique_identifier: Some(id.clone().into()),
                    current_attribute: None,
                    attribute_reference: reference,
                })
                .await?;
            out.report(
                &format!("attribute of {id} deleted"),
                json!({ "unique_identifier": id }),
            );
        }
    }
    Ok(())
}
