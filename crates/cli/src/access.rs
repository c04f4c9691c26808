//! `ckms access-rights`: grant, revoke and list rights on objects (the owner), and list the
//! objects one owns or was granted rights on. The arguments follow Cosmian's CLI.

use clap::Subcommand;
use kms_client::KmsClient;
use serde_json::{Value, json};

use crate::output::Output;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Grant a user (or `*`, every user) rights on an object you own.
    Grant {
        /// The user to grant the rights to, or `*` for every user.
        user: String,
        /// The operations to allow: get, export, encrypt, decrypt, mac, mac_verify, revoke,
        /// destroy, get_attributes, set_attribute, ..., locate.
        #[arg(required = true)]
        operations: Vec<String>,
        /// The object.
        #[arg(short = 'i', long = "object-uid")]
        object_uid: String,
    },
    /// Take rights on an object you own back from a user.
    Revoke {
        user: String,
        #[arg(required = true)]
        operations: Vec<String>,
        #[arg(short = 'i', long = "object-uid")]
        object_uid: String,
    },
    /// The rights granted on an object you own.
    List {
        /// The object.
        object_uid: String,
    },
    /// The objects you own.
    Owned,
    /// The objects others granted you rights on.
    Obtained,
}

pub async fn run(client: &KmsClient, command: AccessCommand, out: &Output) -> anyhow::Result<()> {
    match command {
        AccessCommand::Grant {
            user,
            operations,
            object_uid,
        } => change(client, out, "grant", &user, &operations, &object_uid).await,
        AccessCommand::Revoke {
            user,
            operations,
            object_uid,
        } => change(client, out, "revoke", &user, &operations, &object_uid).await,
        AccessCommand::List { object_uid } => {
            let list = client
                .access(&format!("/access/list/{object_uid}"), None)
                .await?;
            let text: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    format!(
                        "{}: {}",
                        g["user_id"].as_str().unwrap_or("?"),
                        names(&g["operations"])
                    )
                })
                .collect();
            out.report(&text.join("\n"), list);
            Ok(())
        }
        AccessCommand::Owned => {
            let owned = client.access("/access/owned", None).await?;
            let text: Vec<String> = owned
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    format!(
                        "{} [{}]",
                        o["object_id"].as_str().unwrap_or("?"),
                        o["state"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            out.report(&text.join("\n"), owned);
            Ok(())
        }
        AccessCommand::Obtained => {
            let obtained = client.access("/access/obtained", None).await?;
            let text: Vec<String> = obtained
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    format!(
                        "{} [{}] from {}: {}",
                        o["object_id"].as_str().unwrap_or("?"),
                        o["state"].as_str().unwrap_or("?"),
                        o["owner_id"].as_str().unwrap_or("?"),
                        names(&o["operations"])
                    )
                })
                .collect();
            out.report(&text.join("\n"), obtained);
            Ok(())
        }
    }
}

/// Grants (`grant`) or revokes (`revoke`) rights.
async fn change(
    client: &KmsClient,
    out: &Output,
    action: &str,
    user: &str,
    operations: &[String],
    uid: &str,
) -> anyhow::Result<()> {
    let body = json!({"unique_identifier": uid, "user_id": user, "operation_types": operations});
    client
        .access(&format!("/access/{action}"), Some(body))
        .await?;
    out.report(
        &format!("{action}d {} on {uid} for {user}", operations.join(", ")),
        json!({format!("{action}d"): operations, "user_id": user, "unique_identifier": uid}),
    );
    Ok(())
}

fn names(operations: &Value) -> String {
    operations
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
