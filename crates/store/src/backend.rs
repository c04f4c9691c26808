//! Which database holds the objects: the backends this build has, their settings checked once
//! ([`Backend::from_settings`]), and opening one ([`Backend::open`]). The server's flags, its
//! configuration file and the bootstrap server all come through here.
//!
//! Adding a backend: a module implementing [`ObjectStore`], one variant and one arm in each
//! `match` below, and the conformance suite passing on it.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::redis::{RedisFindexStore, RedisSettings};
use crate::sql::{MysqlDriver, PostgresDriver, SqlStore};
use crate::sqlite::SqliteStore;
use crate::sqlite_enc::TenantRouter;
use crate::{ObjectStore, Result};

/// A secret from the configuration (a database URL with its password, a PKCS#12 password):
/// wiped from memory when dropped, and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A PKCS#12 file holding a client certificate and its key, with its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    pub p12_file: PathBuf,
    pub password: Secret,
}

/// A database and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one server process.
    Sqlite { path: PathBuf },
    /// One SQLCipher database per tenant in this directory, chosen by each request's secret.
    SqliteEnc { dir: PathBuf },
    /// The URL may hold a password: it is a secret.
    Postgresql { url: Secret, pool_size: usize },
    Mysql {
        url: Secret,
        pool_size: usize,
        /// `--mysql-user-cert-file`: the client certificate the server authenticates with.
        client_cert: Option<ClientCert>,
    },
    /// Redis with application-level encryption and an encrypted index.
    RedisFindex(RedisSettings),
}

/// The raw settings a backend is chosen from (flags, environment, file or bootstrap upload).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--database-type`; `None` is the default, SQLite.
    pub kind: Option<String>,
    pub url: Option<Secret>,
    /// The SQLite directory (`--sqlite-path`, default `./sqlite-data`).
    pub sqlite_dir: Option<PathBuf>,
    pub pool_size: Option<usize>,
    /// `--redis-master-password`: the keys of `redis-findex` are derived from it.
    pub redis_master_password: Option<Secret>,
    /// `--redis-new-master-password`: re-encrypt everything under it, online.
    pub redis_new_master_password: Option<Secret>,
    /// `--redis-findex-label`: public; changing it re-keys the index.
    pub redis_findex_label: Option<String>,
    /// `--redis-key-prefix` (default `kms`): several deployments on one Redis.
    pub redis_key_prefix: Option<String>,
    /// `--mysql-user-cert-file`: a PKCS#12 client certificate for MySQL/MariaDB over TLS.
    pub mysql_user_cert_file: Option<PathBuf>,
    pub mysql_user_cert_password: Option<Secret>,
}

/// Why the settings name no usable backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "unknown database type `{0}`; expected one of: {available}",
        available = Backend::AVAILABLE.join(", ")
    )]
    Unknown(String),
    #[error("--database-type redis-findex needs {0}")]
    MissingRedis(&'static str),
    #[error("--database-type {kind} needs --database-url (for example {example})")]
    MissingUrl {
        kind: &'static str,
        example: &'static str,
    },
}

/// Connections per server to a shared database when not configured.
pub const DEFAULT_POOL_SIZE: usize = 16;

impl Backend {
    /// The `--database-type` values this build accepts.
    pub const AVAILABLE: &'static [&'static str] = &[
        "sqlite",
        "sqlite-enc",
        "postgresql",
        "mysql",
        "redis-findex",
    ];

    /// Checks the settings and names the backend.
    pub fn from_settings(settings: Settings) -> Result<Backend, BackendError> {
        let pool_size = settings.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1);
        let kind = settings.kind.as_deref().unwrap_or("sqlite");
        Ok(match kind {
            "sqlite" => Backend::Sqlite {
                path: settings
                    .sqlite_dir
                    .unwrap_or_else(|| PathBuf::from("./sqlite-data"))
                    .join("kms.db"),
            },
            "sqlite-enc" => Backend::SqliteEnc {
                dir: settings
                    .sqlite_dir
                    .unwrap_or_else(|| PathBuf::from("./sqlite-data")),
            },
            "postgresql" => Backend::Postgresql {
                url: settings.url.ok_or(BackendError::MissingUrl {
                    kind: "postgresql",
                    example: "postgres://kms:password@127.0.0.1:5432/kms",
                })?,
                pool_size,
            },
            "mysql" => Backend::Mysql {
                url: settings.url.ok_or(BackendError::MissingUrl {
                    kind: "mysql",
                    example: "mysql://kms:password@127.0.0.1:3306/kms",
                })?,
                pool_size,
                client_cert: settings.mysql_user_cert_file.map(|p12_file| ClientCert {
                    p12_file,
                    password: settings.mysql_user_cert_password.unwrap_or_default(),
                }),
            },
            "redis-findex" => Backend::RedisFindex(RedisSettings {
                url: settings.url.ok_or(BackendError::MissingUrl {
                    kind: "redis-findex",
                    example: "redis://127.0.0.1:6379",
                })?,
                master_password: settings
                    .redis_master_password
                    .filter(|p| !p.expose().is_empty())
                    .ok_or(BackendError::MissingRedis(
                        "--redis-master-password (the secret its keys are derived from)",
                    ))?,
                new_master_password: settings
                    .redis_new_master_password
                    .filter(|p| !p.expose().is_empty()),
                label: settings
                    .redis_findex_label
                    .ok_or(BackendError::MissingRedis(
                        "--redis-findex-label (a public label; any text)",
                    ))?,
                prefix: settings.redis_key_prefix.unwrap_or_else(|| "kms".into()),
            }),
            other => return Err(BackendError::Unknown(other.to_owned())),
        })
    }

    /// The `--database-type` name of this backend.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::SqliteEnc { .. } => "sqlite-enc",
            Backend::Postgresql { .. } => "postgresql",
            Backend::Mysql { .. } => "mysql",
            Backend::RedisFindex(_) => "redis-findex",
        }
    }

    /// Connections per server to a shared database (`None` for SQLite).
    pub fn pool_size(&self) -> Option<usize> {
        match self {
            Backend::Sqlite { .. } | Backend::SqliteEnc { .. } | Backend::RedisFindex(_) => None,
            Backend::Postgresql { pool_size, .. } | Backend::Mysql { pool_size, .. } => {
                Some(*pool_size)
            }
        }
    }

    /// Checks the settings parse (a URL that names a host, a database), without connecting.
    pub fn check(&self) -> Result<()> {
        match self {
            Backend::Sqlite { .. } | Backend::SqliteEnc { .. } => Ok(()),
            Backend::Postgresql { url, .. } => PostgresDriver::connect(url.expose(), 1).map(drop),
            Backend::Mysql {
                url, client_cert, ..
            } => MysqlDriver::connect_with(url.expose(), 1, client_cert.as_ref()).map(drop),
            Backend::RedisFindex(r) => {
                redis::Client::open(r.url.expose())
                    .map(drop)
                    .map_err(|e| crate::StoreError::Open {
                        backend: "redis-findex",
                        location: "the --database-url".into(),
                        reason: format!("not a Redis URL ({e}); use redis://host:6379"),
                    })
            }
        }
    }

    /// Opens the database and brings its schema up to date.
    pub async fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        Ok(match self {
            Backend::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
            Backend::SqliteEnc { dir } => Arc::new(TenantRouter::new(dir)?),
            Backend::Postgresql { url, pool_size } => Arc::new(
                SqlStore::open(Box::new(PostgresDriver::connect(url.expose(), *pool_size)?))
                    .await?,
            ),
            Backend::Mysql {
                url,
                pool_size,
                client_cert,
            } => Arc::new(
                SqlStore::open(Box::new(MysqlDriver::connect_with(
                    url.expose(),
                    *pool_size,
                    client_cert.as_ref(),
                )?))
                .await?,
            ),
            Backend::RedisFindex(settings) => Arc::new(RedisFindexStore::open(settings).await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: &str) -> Settings {
        Settings {
            kind: Some(kind.into()),
            ..Settings::default()
        }
    }

    #[test]
    fn default_is_sqlite_in_sqlite_data() {
        assert_eq!(
            Backend::from_settings(Settings::default()).expect("valid settings"),
            Backend::Sqlite {
                path: PathBuf::from("./sqlite-data/kms.db")
            }
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = Backend::from_settings(settings("oracle")).expect_err("refused");
        assert!(
            e.to_string()
                .contains("sqlite, sqlite-enc, postgresql, mysql, redis-findex"),
            "{e}"
        );
        let e = Backend::from_settings(Settings {
            url: Some(Secret::new("redis://127.0.0.1")),
            ..settings("redis-findex")
        })
        .expect_err("refused");
        assert!(e.to_string().contains("--redis-master-password"), "{e}");
        let e = Backend::from_settings(settings("mysql")).expect_err("refused");
        assert!(e.to_string().contains("--database-url"), "{e}");
    }

    #[test]
    fn the_url_is_secret() {
        let b = Backend::from_settings(Settings {
            url: Some(Secret::new("postgres://kms:hunter2@db/kms")),
            ..settings("postgresql")
        })
        .expect("valid settings");
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
