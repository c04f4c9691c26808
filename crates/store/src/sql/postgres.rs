//! PostgreSQL driver: tokio-postgres through a deadpool pool, TLS by rustls as the URL's
//! `sslmode` says (libpq's meanings), multi-host URLs with `target_session_attrs=read-write` for
//! failover.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Dialect, Driver, Kind, OnZeroRows, Row, SqlValue, Stmt, TxError};
use crate::{Result, StoreError};

const BACKEND: &str = "postgresql";
use super::CALL_TIMEOUT;

pub struct PostgresDriver {
    pool: Pool,
    /// Hosts, ports and database name, never the password.
    location: String,
}

fn location_of(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

impl PostgresDriver {
    /// A pool of at most `pool_size` connections to `url` (`postgres://user:password@host/db?...`).
    pub fn connect(url: &str, pool_size: usize) -> Result<PostgresDriver> {
        let (url, policy) = tls_policy(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            backend: BACKEND,
            location: "(the URL given)".into(),
            reason: format!(
                "the URL does not parse ({e}); expected postgres://user:password@host:5432/database"
            ),
        })?;
        config.connect_timeout(Duration::from_secs(3));
        let location = location_of(&config);
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Open {
                backend: BACKEND,
                location: location.clone(),
                reason: e.to_string(),
            })?;
        let tls_config = match &policy {
            TlsPolicy::Full { roots } => builder
                .with_root_certificates(root_store(roots, &location)?)
                .with_no_client_auth(),
            TlsPolicy::Chain { roots } => {
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    std::sync::Arc::new(root_store(roots, &location)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| StoreError::Open {
                    backend: BACKEND,
                    location: location.clone(),
                    reason: e.to_string(),
                })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(std::sync::Arc::new(ChainOnly(verifier)))
                    .with_no_client_auth()
            }
            TlsPolicy::Unverified => {
                if unprotected(&config, &policy) {
                    tracing::warn!(
                        %location,
                        "the connection to PostgreSQL is not authenticated and may not be encrypted: key material can travel in clear or to an impostor; add sslmode=verify-full (and sslrootcert=CA.pem for a private CA) to --database-url"
                    );
                }
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(std::sync::Arc::new(EncryptOnly(provider)))
                    .with_no_client_auth()
            }
        };
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(3)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Open {
                backend: BACKEND,
                location: location.clone(),
                reason: e.to_string(),
            })?;
        Ok(PostgresDriver { pool, location })
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            backend: BACKEND,
            reason: format!(
                "{} is unreachable: {what}; check --database-url and that the server runs",
                self.location
            ),
            source: None,
        }
    }

    fn classify(&self, e: tokio_postgres::Error) -> (bool, StoreError) {
        let retry = matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED);
        if e.code().is_none() || e.is_closed() {
            return (false, self.unavailable(e));
        }
        let reason = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        (
            retry,
            StoreError::Query {
                backend: BACKEND,
                reason,
            },
        )
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| self.unavailable(e))
    }
}

/// Reads libpq's `sslmode`: `verify-ca` and `verify-full` verify the server certificate (and are
/// passed to tokio-postgres as `require`); `prefer` (the default) and `require` encrypt without
/// verifying, as libpq does.
/// How the connection is protected, from the URL's `sslmode` and `sslrootcert` (libpq's
/// names). One difference from libpq, on purpose: `require` verifies the certificate too,
/// against `sslrootcert` if given (the chain only, as libpq's `verify-ca`), else against the
/// public roots with the host name. `prefer` (the default) and `allow` encrypt when the server
/// offers it without authenticating it, as libpq does; the server warns at start when such a
/// connection goes to another machine.
#[derive(Debug, PartialEq)]
enum TlsPolicy {
    /// `disable`, `allow`, `prefer`: nothing verified.
    Unverified,
    /// `require` or `verify-ca` with `sslrootcert`: the chain, not the name.
    Chain { roots: Option<std::path::PathBuf> },
    /// `verify-full`, or `require`/`verify-ca` without `sslrootcert`: chain and host name.
    Full { roots: Option<std::path::PathBuf> },
}

/// The URL tokio-postgres can parse (verify modes become `require`, `sslrootcert` is taken out)
/// and the TLS policy it asks for.
fn tls_policy(url: &str) -> (String, TlsPolicy) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = "prefer".to_owned();
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", m)) => mode = m.to_owned(),
            Some(("sslrootcert", path)) => roots = Some(std::path::PathBuf::from(path)),
            _ => kept.push(pair.to_owned()),
        }
    }
    let policy = match mode.as_str() {
        "verify-full" => TlsPolicy::Full { roots },
        "verify-ca" | "require" if roots.is_some() => TlsPolicy::Chain { roots },
        "verify-ca" | "require" => TlsPolicy::Full { roots: None },
        _ => TlsPolicy::Unverified,
    };
    let tokio_mode = match policy {
        TlsPolicy::Unverified => mode,
        _ => "require".to_owned(),
    };
    kept.push(format!("sslmode={tokio_mode}"));
    (format!("{base}?{}", kept.join("&")), policy)
}

/// Whether the connection is open to eavesdroppers or impostors: nothing verified, and a host
/// on another machine. The server warns at start.
fn unprotected(config: &tokio_postgres::Config, policy: &TlsPolicy) -> bool {
    *policy == TlsPolicy::Unverified
        && config.get_hosts().iter().any(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => super::is_remote_host(name),
            tokio_postgres::config::Host::Unix(_) => false,
        })
}

/// The root certificates to verify against: the file given, else the public roots.
fn root_store(roots: &Option<std::path::PathBuf>, location: &str) -> Result<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let open_error = |reason: String| StoreError::Open {
                backend: BACKEND,
                location: location.to_owned(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| {
                open_error(format!("cannot read sslrootcert {}: {e}", path.display()))
            })?;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: rustls::pki_types::CertificateDer<'static> = cert.map_err(|e| {
                    open_error(format!(
                        "sslrootcert {} is not PEM certificates: {e}",
                        path.display()
                    ))
                })?;
                store
                    .add(cert)
                    .map_err(|e| open_error(format!("sslrootcert {}: {e}", path.display())))?;
            }
            if store.is_empty() {
                return Err(open_error(format!(
                    "sslrootcert {} holds no certificate",
                    path.display()
                )));
            }
        }
    }
    Ok(store)
}

/// libpq's `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(std::sync::Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        // The chain is checked before the name: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// libpq's `sslmode=prefer`: the connection is encrypted when the server offers it, the
/// certificate is not verified (handshake signatures still are).
#[derive(Debug)]
struct EncryptOnly(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn params(values: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                SqlValue::Int(i) => Box::new(*i),
                SqlValue::Text(t) => Box::new(t.clone()),
                SqlValue::Bytes(b) => Box::new(b.clone()),
                SqlValue::Bool(b) => Box::new(*b),
            }
        })
        .collect()
}

fn refs(boxed: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    boxed
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PostgresDriver {
    /// One attempt: `Ok(Err(retry))` asks for another attempt.
    async fn attempt(&self, stmts: &[Stmt]) -> Result<Option<StoreError>, TxError> {
        let mut client = self.client().await?;
        let tx = match client.transaction().await {
            Ok(t) => t,
            Err(e) => return Err(TxError::Store(self.classify(e).1)),
        };
        for s in stmts {
            let boxed = params(&s.params);
            let statement = match tx.prepare_cached(&s.sql).await {
                Ok(st) => st,
                Err(e) => {
                    let (retry, err) = self.classify(e);
                    return if retry {
                        Ok(Some(err))
                    } else {
                        Err(TxError::Store(err))
                    };
                }
            };
            match tx.execute(&statement, &refs(&boxed)).await {
                Ok(0) if !matches!(s.on_zero_rows, OnZeroRows::Ignore) => {
                    return Err(TxError::ZeroRows(s.on_zero_rows.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    let (retry, err) = self.classify(e);
                    return if retry {
                        Ok(Some(err))
                    } else {
                        Err(TxError::Store(err))
                    };
                }
            }
        }
        match tx.commit().await {
            Ok(()) => Ok(None),
            Err(e) => {
                let (retry, err) = self.classify(e);
                if retry {
                    Ok(Some(err))
                } else {
                    Err(TxError::Store(err))
                }
            }
        }
    }
}

#[async_trait]
impl Driver for PostgresDriver {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn pool(&self) -> Option<crate::PoolUse> {
        let status = self.pool.status();
        Some(crate::PoolUse {
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        })
    }

    async fn transaction(&self, stmts: &[Stmt]) -> Result<(), TxError> {
        super::retry_transaction(
            || self.attempt(stmts),
            || self.unavailable("the call timed out"),
        )
        .await
    }

    async fn query(&self, sql: &str, values: &[SqlValue], kinds: &[Kind]) -> Result<Vec<Row>> {
        let run = async {
            let client = self.client().await?;
            let boxed = params(values);
            // Prepared once per connection: one round trip per query afterwards.
            let statement = client
                .prepare_cached(sql)
                .await
                .map_err(|e| self.classify(e).1)?;
            let rows = client
                .query(&statement, &refs(&boxed))
                .await
                .map_err(|e| self.classify(e).1)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut r = Vec::with_capacity(kinds.len());
                for (i, kind) in kinds.iter().enumerate() {
                    let bad = |e: tokio_postgres::Error| StoreError::Query {
                        backend: BACKEND,
                        reason: e.to_string(),
                    };
                    r.push(match kind {
                        Kind::Int => match row.try_get::<_, Option<i64>>(i) {
                            Ok(v) => SqlValue::Int(v),
                            Err(_) => SqlValue::Int(
                                row.try_get::<_, Option<i32>>(i)
                                    .map_err(bad)?
                                    .map(i64::from),
                            ),
                        },
                        Kind::Text => SqlValue::Text(row.try_get(i).map_err(bad)?),
                        Kind::Bytes => SqlValue::Bytes(row.try_get(i).map_err(bad)?),
                    });
                }
                out.push(r);
            }
            Ok(out)
        };
        tokio::time::timeout(CALL_TIMEOUT, run)
            .await
            .map_err(|_| self.unavailable("the call timed out"))?
    }

    async fn schema(&self, sql: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .batch_execute(sql)
            .await
            .map_err(|e| self.classify(e).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_policy_verifies_whenever_tls_is_asked_for() {
        let p = |url: &str| tls_policy(url).1;
        assert_eq!(p("postgres://u@h/db"), TlsPolicy::Unverified);
        assert_eq!(p("postgres://u@h/db?sslmode=prefer"), TlsPolicy::Unverified);
        assert_eq!(
            p("postgres://u@h/db?sslmode=require"),
            TlsPolicy::Full { roots: None }
        );
        assert_eq!(
            p("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem"),
            TlsPolicy::Chain {
                roots: Some("/ca.pem".into())
            }
        );
        assert_eq!(
            p("postgres://u@h/db?sslrootcert=/ca.pem&sslmode=verify-full"),
            TlsPolicy::Full {
                roots: Some("/ca.pem".into())
            }
        );
        let (url, _) = tls_policy(
            "postgres://u@h/db?sslrootcert=/ca.pem&sslmode=verify-ca&application_name=k",
        );
        assert_eq!(url, "postgres://u@h/db?application_name=k&sslmode=require");
    }

    #[test]
    fn unprotected_connections_to_other_machines_are_flagged() {
        let check = |url: &str| {
            let (url, policy) = tls_policy(url);
            unprotected(&url.parse().expect("parses"), &policy)
        };
        assert!(check("postgres://u@db.example.com/kms"));
        assert!(check("postgres://u@10.1.2.3/kms?sslmode=prefer"));
        assert!(!check("postgres://u@127.0.0.1/kms"));
        assert!(!check("postgres://u@localhost/kms?sslmode=disable"));
        assert!(!check(
            "postgres://u@db.example.com/kms?sslmode=verify-full"
        ));
        assert!(!check("postgres://u@db.example.com/kms?sslmode=require"));
    }
}
