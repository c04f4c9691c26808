//! The CLI configuration file (`~/.cosmian/kms.json`, `--conf`, `KMS_CLI_CONF`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Keys of `kms.json`, as Cosmian's CLI writes them.
#[derive(Deserialize, Default, Clone)]
pub struct CliConfig {
    #[serde(default = "default_url")]
    pub kms_server_url: String,
    pub bootstrap_server_url: Option<String>,
    pub access_token: Option<String>,
    pub database_secret: Option<String>,
    #[serde(default)]
    pub accept_invalid_certs: bool,
    pub ssl_client_pkcs12_path: Option<PathBuf>,
    pub ssl_client_pkcs12_password: Option<String>,
}

impl std::fmt::Debug for CliConfig {
    // Tokens, secrets and passwords never appear in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliConfig")
            .field("kms_server_url", &self.kms_server_url)
            .field("bootstrap_server_url", &self.bootstrap_server_url)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field(
                "database_secret",
                &self.database_secret.as_ref().map(|_| "***"),
            )
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("ssl_client_pkcs12_path", &self.ssl_client_pkcs12_path)
            .field(
                "ssl_client_pkcs12_password",
                &self.ssl_client_pkcs12_password.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

fn default_url() -> String {
    "http://localhost:9998".into()
}

impl CliConfig {
    /// The client certificate and key of `ssl_client_pkcs12_path` as PEM, for mutual TLS.
    pub fn client_identity_pem(&self) -> anyhow::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        let Some(path) = &self.ssl_client_pkcs12_path else {
            return Ok(None);
        };
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read the client PKCS#12 {}", path.display()))?;
        let password = self.ssl_client_pkcs12_password.as_deref().unwrap_or("");
        let store = p12_keystore::KeyStore::from_pkcs12(
            &data,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .with_context(|| {
            format!(
                "{} is not a PKCS#12 file this password opens (ssl_client_pkcs12_password)",
                path.display()
            )
        })?;
        let (_, chain) = store
            .private_key_chain()
            .with_context(|| format!("{} holds no private key", path.display()))?;
        let pem = |label: &str, der: &[u8]| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let mut out = format!("-----BEGIN {label}-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.push_str(&String::from_utf8_lossy(line));
                out.push('\n');
            }
            out.push_str(&format!("-----END {label}-----\n"));
            out
        };
        let mut out = zeroize::Zeroizing::new(String::new());
        for cert in chain.certs() {
            out.push_str(&pem("CERTIFICATE", cert.as_der()));
        }
        out.push_str(&pem("PRIVATE KEY", chain.key().as_der()));
        Ok(Some(zeroize::Zeroizing::new(out.as_bytes().to_vec())))
    }

    /// Loads `path`, or the default location; a missing default file means default settings.
    pub fn load(path: Option<&Path>) -> anyhow::Result<CliConfig> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => match std::env::var_os("HOME") {
                Some(home) => (PathBuf::from(home).join(".cosmian/kms.json"), false),
                None => {
                    return Ok(CliConfig {
                        kms_server_url: default_url(),
                        ..CliConfig::default()
                    });
                }
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid CLI configuration (JSON with kms_server_url ...)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(CliConfig {
                kms_server_url: default_url(),
                ..CliConfig::default()
            }),
            Err(e) => Err(e)
                .with_context(|| format!("cannot read the CLI configuration {}", path.display())),
        }
    }
}
