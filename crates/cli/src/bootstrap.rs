//! `ckms bootstrap-start`: sends the whole bootstrap sequence (database, PKCS#12, its password,
//! start) to a server waiting in bootstrap mode. The bootstrap certificate is self-signed:
//! `--bootstrap-fingerprint` pins the one the server logged, so nothing is sent to anyone else.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kms_client::{ClientConfig, http_client};
use serde_json::{Value, json};

use crate::config::CliConfig;
use crate::output::{Output, network, refused, usage};

#[derive(Args)]
pub struct BootstrapStartArgs {
    /// sqlite, postgresql, mysql, sqlite-enc or redis-findex.
    #[arg(long)]
    database_type: String,
    /// Database URL (postgresql, mysql, redis-findex).
    #[arg(long)]
    database_url: Option<String>,
    /// Directory of the SQLite database (sqlite, sqlite-enc).
    #[arg(long)]
    sqlite_path: Option<PathBuf>,
    #[arg(long)]
    redis_master_password: Option<String>,
    #[arg(long)]
    redis_findex_label: Option<String>,
    /// PKCS#12 file with the certificate and key of the KMS's HTTPS port.
    #[arg(long)]
    https_p12_file: Option<PathBuf>,
    #[arg(long)]
    https_p12_password: Option<String>,
    /// Delete every object in the database before starting.
    #[arg(long)]
    clear_database: bool,
    /// SHA-256 fingerprint of the bootstrap certificate, as the server logged it.
    #[arg(long)]
    bootstrap_fingerprint: Option<String>,
    /// The token the bootstrap server asks for (its `--bootstrap-token`), sent with every
    /// request as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "KMS_BOOTSTRAP_TOKEN", hide_env_values = true)]
    bootstrap_token: Option<String>,
}

/// The bootstrap URL: `bootstrap_server_url`, else `kms_server_url` with https.
fn bootstrap_url(conf: &CliConfig) -> String {
    let url = conf
        .bootstrap_server_url
        .clone()
        .unwrap_or_else(|| conf.kms_server_url.clone());
    let url = match url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => url,
    };
    url.trim_end_matches('/').to_owned()
}

async fn check(response: reqwest::Response, step: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(refused(format!("{step} refused ({status}): {message}")));
    }
    Ok(body)
}

pub async fn run(
    conf: &CliConfig,
    accept_invalid_certs: bool,
    args: BootstrapStartArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let base = bootstrap_url(conf);
    if args.bootstrap_fingerprint.is_none() && !accept_invalid_certs {
        out.warn(
            "the bootstrap certificate is self-signed; pass --bootstrap-fingerprint with the SHA-256 the server logged",
        );
    }
    let http = http_client(&ClientConfig {
        server_url: base.clone(),
        accept_invalid_certs,
        pinned_sha256: args.bootstrap_fingerprint.clone(),
        ..ClientConfig::default()
    })?;
    let post = |url: String| {
        let request = http.post(url);
        match &args.bootstrap_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let transport = |e: reqwest::Error| {
        network(format!(
            "cannot reach the bootstrap server at {base}: {e:#}; if the certificate does not match the pinned fingerprint, nothing was sent"
        ))
    };
    // Database.
    let (route, body) = match args.database_type.as_str() {
        "postgresql" | "mysql" => (
            args.database_type.clone(),
            json!({ "url": args.database_url.clone().ok_or_else(|| usage("--database-url is required for this database type"))? }),
        ),
        "sqlite" | "sqlite-enc" => (
            args.database_type.clone(),
            json!({ "path": args.sqlite_path.clone().unwrap_or_else(|| PathBuf::from("./sqlite-data")) }),
        ),
        "redis-findex" => (
            "redis-findex".into(),
            json!({
                "url": args.database_url.clone().ok_or_else(|| usage("--database-url is required for redis-findex"))?,
                "master_password": args.redis_master_password.clone().ok_or_else(|| usage("--redis-master-password is required"))?,
                "findex_label": args.redis_findex_label.clone().ok_or_else(|| usage("--redis-findex-label is required"))?,
            }),
        ),
        other => {
            return Err(usage(format!(
                "unknown database type `{other}`: use sqlite, sqlite-enc, postgresql, mysql or redis-findex"
            )));
        }
    };
    check(
        post(format!("{base}/{route}"))
            .json(&body)
            .send()
            .await
            .map_err(transport)?,
        "database",
    )
    .await?;
    // PKCS#12 and its password.
    if let Some(file) = &args.https_p12_file {
        let data =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let part = reqwest::multipart::Part::bytes(data)
            .file_name("kms.p12")
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("file", part);
        check(
            post(format!("{base}/pkcs12"))
                .multipart(form)
                .send()
                .await
                .map_err(transport)?,
            "PKCS#12",
        )
        .await?;
    }
    if let Some(password) = &args.https_p12_password {
        check(
            post(format!("{base}/pkcs12-password"))
                .json(&json!({ "password": password }))
                .send()
                .await
                .map_err(transport)?,
            "PKCS#12 password",
        )
        .await?;
    }
    check(
        post(format!("{base}/start"))
            .json(&json!({ "clear_database": args.clear_database }))
            .send()
            .await
            .map_err(transport)?,
        "start",
    )
    .await?;
    out.report(
        "The KMS server is starting",
        json!({ "success": "KMS server starting" }),
    );
    Ok(())
}
