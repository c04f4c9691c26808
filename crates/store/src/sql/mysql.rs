//! MySQL and MariaDB driver: mysql_async's pool, TLS through the URL's parameters
//! (`require_ssl=true`, verified against the public roots, or against `ssl_ca=CA.pem` for a
//! private CA), `CLIENT_FOUND_ROWS` so that an update that changes nothing still counts its row.

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, TxOpts, Value};

use super::{Dialect, Driver, Kind, OnZeroRows, Row, SqlValue, Stmt, TxError};
use crate::{Result, StoreError};

const BACKEND: &str = "mysql";
use super::CALL_TIMEOUT;
/// Deadlock found, lock wait timeout: the transaction may simply be retried.
const RETRYABLE: &[u16] = &[1213, 1205];
/// Duplicate key name: the index of a schema step exists already.
const DUPLICATE_KEY_NAME: u16 = 1061;

pub struct MysqlDriver {
    pool: Pool,
    location: String,
}

/// Takes `ssl_ca=PATH` (this project's parameter: the CA file of a private CA) out of the URL,
/// which mysql_async would refuse.
fn take_ssl_ca(url: &str) -> (String, Option<std::path::PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut ca = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("ssl_ca=") {
            Some(path) => {
                ca = Some(std::path::PathBuf::from(path));
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), ca)
    } else {
        (format!("{base}?{}", kept.join("&")), ca)
    }
}

/// Whether the connection carries key material in clear to another machine; the server warns.
fn unprotected(host: &str, ssl: Option<&mysql_async::SslOpts>) -> bool {
    ssl.is_none() && super::is_remote_host(host)
}

impl MysqlDriver {
    /// A pool of at most `pool_size` connections to `url` (`mysql://user:password@host:3306/db`).
    pub fn connect(url: &str, pool_size: usize) -> Result<MysqlDriver> {
        Self::connect_with(url, pool_size, None)
    }

    /// [`MysqlDriver::connect`], authenticating with a client certificate over TLS
    /// (`--mysql-user-cert-file`); TLS is then on whatever the URL says.
    pub fn connect_with(
        url: &str,
        pool_size: usize,
        client_cert: Option<&crate::ClientCert>,
    ) -> Result<MysqlDriver> {
        let identity = client_cert.map(client_identity).transpose()?;
        let (url, ca) = take_ssl_ca(url);
        let opts = Opts::from_url(&url).map_err(|e| StoreError::Open {
            backend: BACKEND,
            location: "(the URL given)".into(),
            reason: format!(
                "the URL does not parse ({e}); expected mysql://user:password@host:3306/database"
            ),
        })?;
        let location = format!(
            "{}:{}/{}",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.db_name().unwrap_or("")
        );
        let constraints = PoolConstraints::new(pool_size.max(1).div_ceil(2), pool_size.max(1))
            .ok_or_else(|| StoreError::Open {
                backend: BACKEND,
                location: location.clone(),
                reason: "invalid pool size".into(),
            })?;
        let ssl = match (opts.ssl_opts().cloned(), ca) {
            (Some(ssl), Some(ca)) => Some(ssl.with_root_certs(vec![ca.into()])),
            (None, Some(ca)) => {
                Some(mysql_async::SslOpts::default().with_root_certs(vec![ca.into()]))
            }
            (ssl, None) => ssl,
        };
        let ssl = match identity {
            Some(identity) => Some(ssl.unwrap_or_default().with_client_identity(Some(identity))),
            None => ssl,
        };
        if unprotected(opts.ip_or_hostname(), ssl.as_ref()) {
            tracing::warn!(
                %location,
                "the connection to MySQL is not encrypted: key material travels in clear; add require_ssl=true (and ssl_ca=CA.pem for a private CA) to --database-url"
            );
        }
        let builder = OptsBuilder::from_opts(opts)
            .ssl_opts(ssl)
            .client_found_rows(true)
            // Connections stay open between requests: opening one costs more than the query.
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(300)),
            );
        Ok(MysqlDriver {
            pool: Pool::new(builder),
            location,
        })
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

    fn classify(&self, e: mysql_async::Error) -> (bool, StoreError) {
        match e {
            mysql_async::Error::Server(s) => (
                RETRYABLE.contains(&s.code),
                StoreError::Query {
                    backend: BACKEND,
                    reason: s.to_string(),
                },
            ),
            other => (false, self.unavailable(other)),
        }
    }

    async fn conn(&self) -> Result<mysql_async::Conn> {
        self.pool.get_conn().await.map_err(|e| self.classify(e).1)
    }

    async fn attempt(&self, stmts: &[Stmt]) -> Result<Option<StoreError>, TxError> {
        let mut conn = self.conn().await?;
        let mut tx = match conn.start_transaction(TxOpts::default()).await {
            Ok(t) => t,
            Err(e) => return Err(TxError::Store(self.classify(e).1)),
        };
        for s in stmts {
            if let Err(e) = tx.exec_drop(&*s.sql, params(&s.params)).await {
                let (retry, err) = self.classify(e);
                return if retry {
                    Ok(Some(err))
                } else {
                    Err(TxError::Store(err))
                };
            }
            if tx.affected_rows() == 0 && !matches!(s.on_zero_rows, OnZeroRows::Ignore) {
                // Dropping the transaction rolls it back.
                return Err(TxError::ZeroRows(s.on_zero_rows.clone()));
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

fn params(values: &[SqlValue]) -> Params {
    if values.is_empty() {
        return Params::Empty;
    }
    Params::Positional(
        values
            .iter()
            .map(|v| match v {
                SqlValue::Int(Some(i)) => Value::Int(*i),
                SqlValue::Text(Some(t)) => Value::Bytes(t.clone().into_bytes()),
                SqlValue::Bytes(Some(b)) => Value::Bytes(b.clone()),
                SqlValue::Bool(b) => Value::Int(i64::from(*b)),
                SqlValue::Int(None) | SqlValue::Text(None) | SqlValue::Bytes(None) => Value::NULL,
            })
            .collect(),
    )
}

fn decode(value: Value, kind: Kind) -> Result<SqlValue> {
    let bad = |what: &str| StoreError::Query {
        backend: BACKEND,
        reason: format!("unexpected column value: {what}"),
    };
    Ok(match (kind, value) {
        (Kind::Int, Value::NULL) => SqlValue::Int(None),
        (Kind::Text, Value::NULL) => SqlValue::Text(None),
        (Kind::Bytes, Value::NULL) => SqlValue::Bytes(None),
        (Kind::Int, Value::Int(i)) => SqlValue::Int(Some(i)),
        (Kind::Int, Value::UInt(u)) => {
            SqlValue::Int(Some(i64::try_from(u).map_err(|_| bad("integer"))?))
        }
        (Kind::Int, Value::Bytes(b)) => SqlValue::Int(Some(
            std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("integer"))?,
        )),
        (Kind::Text, Value::Bytes(b)) => {
            SqlValue::Text(Some(String::from_utf8(b).map_err(|_| bad("text"))?))
        }
        (Kind::Bytes, Value::Bytes(b)) => SqlValue::Bytes(Some(b)),
        _ => return Err(bad("type")),
    })
}

#[async_trait]
impl Driver for MysqlDriver {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Dialect {
        Dialect::Mysql
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
            let mut conn = self.conn().await?;
            let rows: Vec<mysql_async::Row> = conn
                .exec(sql, params(values))
                .await
                .map_err(|e| self.classify(e).1)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let values = row.unwrap();
                let mut r = Vec::with_capacity(kinds.len());
                for (value, kind) in values.into_iter().zip(kinds) {
                    r.push(decode(value, *kind)?);
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
        let mut conn = self.conn().await?;
        match conn.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(mysql_async::Error::Server(s)) if s.code == DUPLICATE_KEY_NAME => Ok(()),
            Err(e) => Err(self.classify(e).1),
        }
    }
}

/// The client identity of a PKCS#12 file: its certificate chain (PEM) and private key (PKCS#8).
fn client_identity(cert: &crate::ClientCert) -> Result<mysql_async::ClientIdentity> {
    let refused = |reason: String| StoreError::Open {
        backend: BACKEND,
        location: cert.p12_file.display().to_string(),
        reason,
    };
    let data = zeroize::Zeroizing::new(
        std::fs::read(&cert.p12_file)
            .map_err(|e| refused(format!("cannot read --mysql-user-cert-file: {e}")))?,
    );
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        cert.password.expose(),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|_| {
        refused(
            "--mysql-user-cert-file is not a PKCS#12 file or --mysql-user-cert-password is wrong"
                .into(),
        )
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        refused("--mysql-user-cert-file holds no private key with its certificate".into())
    })?;
    let mut chain_pem = String::new();
    for c in chain.certs() {
        chain_pem.push_str(&pem("CERTIFICATE", c.as_der()));
    }
    // PEM: the library reads a DER key as PKCS#1 only.
    let key_pem = zeroize::Zeroizing::new(pem("PRIVATE KEY", chain.key().as_der()));
    Ok(mysql_async::ClientIdentity::new(
        chain_pem.into_bytes().into(),
        key_pem.as_bytes().to_vec().into(),
    ))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cleartext_to_other_machines_is_flagged() {
        let tls = mysql_async::SslOpts::default();
        assert!(super::unprotected("db.example.com", None));
        assert!(!super::unprotected("db.example.com", Some(&tls)));
        assert!(!super::unprotected("127.0.0.1", None));
        assert!(!super::unprotected("localhost", None));
    }

    #[test]
    fn ssl_ca_is_taken_out_of_the_url() {
        assert_eq!(
            super::take_ssl_ca("mysql://u@h/db?require_ssl=true&ssl_ca=/ca.pem"),
            (
                "mysql://u@h/db?require_ssl=true".to_owned(),
                Some("/ca.pem".into())
            )
        );
        assert_eq!(
            super::take_ssl_ca("mysql://u@h/db?ssl_ca=/ca.pem"),
            ("mysql://u@h/db".to_owned(), Some("/ca.pem".into()))
        );
        assert_eq!(
            super::take_ssl_ca("mysql://u@h/db"),
            ("mysql://u@h/db".to_owned(), None)
        );
    }
}
