//! `ckms`: the command-line client of the KMS.

mod access;
mod asym;
mod attributes;
mod bench;
mod bootstrap;
mod certs;
mod config;
mod envelope;
mod locate;
mod output;
mod pkcs12;
mod primitives;
mod sym;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use kms_client::{ClientConfig, KmsClient};
use serde_json::json;

use crate::config::CliConfig;
use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "ckms",
    version,
    about = "Command-line client of the KMS",
    after_help = output::EXIT_CODES
)]
struct Cli {
    /// Configuration file (default ~/.cosmian/kms.json).
    #[arg(long, global = true, env = "KMS_CLI_CONF")]
    conf: Option<PathBuf>,
    /// Server URL, overriding the configuration file.
    #[arg(long, global = true, env = "KMS_SERVER_URL")]
    url: Option<String>,
    /// Accept a server certificate that does not verify (tests only: anyone on the path can
    /// then read and change the traffic).
    #[arg(long, global = true)]
    accept_invalid_certs: bool,
    /// Bearer token (a JWT, or the server's API token), overriding `access_token` of the
    /// configuration file.
    #[arg(long, global = true, env = "KMS_ACCESS_TOKEN", hide_env_values = true)]
    access_token: Option<String>,
    /// Print the result as one JSON document on stdout, and errors and warnings as JSON
    /// objects on stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Symmetric keys and file encryption.
    Sym {
        #[command(subcommand)]
        command: sym::SymCommand,
    },
    /// RSA key pairs: create, export, import, wrap; encrypt, decrypt, sign, verify.
    Rsa {
        #[command(subcommand)]
        command: asym::AsymCommand,
    },
    /// Elliptic-curve key pairs (P-256/384/521, secp256k1, Ed25519, X25519).
    Ec {
        #[command(subcommand)]
        command: asym::AsymCommand,
    },
    /// Post-quantum key pairs (ML-KEM, ML-DSA).
    Pqc {
        #[command(subcommand)]
        command: asym::AsymCommand,
    },
    /// X.509 certificates: issue (certify), import, export.
    Certificates {
        #[command(subcommand)]
        command: certs::CertificatesCommand,
    },
    /// Find objects by attributes and tags.
    Locate(locate::LocateArgs),
    /// Read and change attributes.
    Attributes {
        #[command(subcommand)]
        command: attributes::AttributesCommand,
    },
    /// Hash data on the server.
    Hash(primitives::HashArgs),
    /// Compute a MAC on the server.
    Mac(primitives::MacArgs),
    /// Random bytes from the server.
    Rng(primitives::RngArgs),
    /// Rights on objects: grant, revoke, list; objects owned and obtained.
    AccessRights {
        #[command(subcommand)]
        command: access::AccessCommand,
    },
    /// Server information.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// Load benchmark: req/s and latency of encrypt (JSON and binary TTLV) and create.
    Bench(bench::BenchArgs),
    /// Configure a server waiting in bootstrap mode and start it, in one command.
    BootstrapStart(bootstrap::BootstrapStartArgs),
    /// Create a new encrypted database (server on sqlite-enc) and print its secret, once: put it
    /// in `database_secret` of the configuration file.
    NewDatabase,
    /// Re-encrypt the database of `database_secret` under a new secret, printed first; put it
    /// in `database_secret` once the command succeeds. Interrupted, run it again with
    /// `--new-secret` set to the printed secret.
    RotateDatabaseSecret {
        /// The new secret (default: a fresh one for the same database).
        #[arg(long)]
        new_secret: Option<String>,
    },
    /// Print the completion script of a shell, e.g. `ckms completions bash >
    /// /etc/bash_completion.d/ckms`, `ckms completions zsh > ~/.zfunc/_ckms`, `ckms completions
    /// fish > ~/.config/fish/completions/ckms.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The benchmark's floor: a minimal HTTP server that reads each request's body and answers
    /// 300 bytes, in a process of its own (started by `ckms bench`); prints its address.
    #[command(hide = true)]
    BenchFloor,
}

#[derive(Subcommand)]
enum ServerCommand {
    /// The server's version.
    Version,
}

/// Whether `--json` is among the arguments (before `--`), for errors of the command line itself.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

#[tokio::main]
async fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => Output::clap_exit(&e, json_requested()),
    };
    let out = Output::new(cli.json);
    if let Err(e) = run(cli, &out).await {
        let code = out.error(&e);
        std::process::exit(code);
    }
}

/// Prints the completion script of `shell`.
fn completions(shell: clap_complete::Shell, out: &Output) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ckms", &mut script);
    let script = String::from_utf8(script)?;
    out.report(
        script.trim_end(),
        json!({ "shell": shell.to_string(), "script": script }),
    );
    Ok(())
}

async fn run(cli: Cli, out: &Output) -> anyhow::Result<()> {
    // Completions need no configuration and no server.
    if let Command::Completions { shell } = cli.command {
        return completions(shell, out);
    }
    if let Command::BenchFloor = cli.command {
        return bench::floor_process().await;
    }
    let mut conf = CliConfig::load(cli.conf.as_deref())?;
    if let Some(url) = cli.url {
        conf.kms_server_url = url;
    }
    if let Some(token) = cli.access_token {
        conf.access_token = Some(token);
    }
    if cli.accept_invalid_certs || conf.accept_invalid_certs {
        out.warn(
            "the server certificate is not verified (--accept-invalid-certs): use this for tests only",
        );
    }
    let client = KmsClient::new(ClientConfig {
        server_url: conf.kms_server_url.clone(),
        access_token: conf.access_token.clone(),
        accept_invalid_certs: cli.accept_invalid_certs || conf.accept_invalid_certs,
        pinned_sha256: None,
        client_identity_pem: conf.client_identity_pem()?,
        database_secret: conf.database_secret.clone(),
    })?;
    match cli.command {
        Command::Sym { command } => sym::run(&client, command, out).await,
        Command::Rsa { command } => asym::run(&client, asym::Family::Rsa, command, out).await,
        Command::Ec { command } => asym::run(&client, asym::Family::Ec, command, out).await,
        Command::Pqc { command } => asym::run(&client, asym::Family::Pqc, command, out).await,
        Command::Certificates { command } => certs::run(&client, command, out).await,
        Command::Locate(args) => locate::run(&client, args, out).await,
        Command::AccessRights { command } => access::run(&client, command, out).await,
        Command::Attributes { command } => attributes::run(&client, command, out).await,
        Command::Hash(args) => primitives::hash(&client, args, out).await,
        Command::Mac(args) => primitives::mac(&client, args, out).await,
        Command::Rng(args) => primitives::rng(&client, args, out).await,
        Command::Server {
            command: ServerCommand::Version,
        } => {
            let v = client.version().await?;
            out.value("version", &v);
            Ok(())
        }
        Command::Bench(args) => {
            bench::run(
                &conf.kms_server_url,
                conf.access_token.as_deref(),
                args,
                out,
            )
            .await
        }
        Command::RotateDatabaseSecret { new_secret } => {
            let current = conf.database_secret.as_deref().ok_or_else(|| {
                anyhow::anyhow!("no database_secret in the configuration file: nothing to rotate")
            })?;
            let new_secret = match new_secret {
                Some(s) => s,
                None => kms_client::rotated_secret(current)?,
            };
            out.note(
                &format!(
                    "new secret (keep it: if this command is interrupted, run it again with \
                     --new-secret and this value):\n{new_secret}"
                ),
                json!({
                    "note": "keep new_secret: if this command is interrupted, run it again with --new-secret and this value",
                    "new_secret": new_secret,
                }),
            );
            client.rotate_database_secret(&new_secret).await?;
            out.value("secret", &new_secret);
            Ok(())
        }
        Command::NewDatabase => {
            let secret = client.new_database().await?;
            out.value("secret", &secret);
            Ok(())
        }
        Command::Completions { shell } => completions(shell, out),
        Command::BenchFloor => bench::floor_process().await,
        Command::BootstrapStart(args) => {
            bootstrap::run(
                &conf,
                cli.accept_invalid_certs || conf.accept_invalid_certs,
                args,
                out,
            )
            .await
        }
    }
}
