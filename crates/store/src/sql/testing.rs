//! Throw-away databases on the test services, for this crate's tests and the server's: a fresh
//! PostgreSQL schema or MySQL database per test, dropped by [`TestDatabase::drop_now`], or when
//! the value is dropped (a test that failed half-way leaves nothing behind).
//!
//! Addresses come from `KMS_TEST_POSTGRES_URL` and `KMS_TEST_MYSQL_URL` (defaults: the local
//! services of the project machines). An unreachable service is an error, never a skip.

use super::{Driver, MysqlDriver, PostgresDriver};
use crate::{Result, StoreError};

pub fn postgres_url() -> String {
    std::env::var("KMS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("KMS_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

impl TestDatabase {
    /// The backend of this database reached at `url` (the test's own URL, or one through a
    /// proxy), with `pool_size` connections.
    pub fn backend_at(&self, url: String, pool_size: usize) -> crate::Backend {
        let url = crate::Secret::new(url);
        match self.backend {
            "postgresql" => crate::Backend::Postgresql { url, pool_size },
            _ => crate::Backend::Mysql {
                url,
                pool_size,
                client_cert: None,
            },
        }
    }
}

/// A database of its own for one test.
pub struct TestDatabase {
    /// The URL to give the store or the server.
    pub url: String,
    /// `postgresql` or `mysql`.
    pub backend: &'static str,
    /// The schema or database name.
    pub name: String,
    admin: Box<dyn Driver>,
    admin_url: String,
    drop_sql: String,
    dropped: bool,
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("kms_test_{nanos:x}_{}", std::process::id())
}

fn required(backend: &str, url: &str, e: StoreError) -> StoreError {
    StoreError::Open {
        backend: "test",
        location: backend.to_owned(),
        reason: format!(
            "the {backend} test service at {url} is required (start it with scripts/setup.sh): {e}"
        ),
    }
}

impl TestDatabase {
    /// A fresh PostgreSQL schema, reached through `search_path`.
    pub async fn postgres() -> Result<TestDatabase> {
        let base = postgres_url();
        let admin = PostgresDriver::connect(&base, 2)?;
        let name = unique();
        admin
            .schema(&format!("CREATE SCHEMA {name}"))
            .await
            .map_err(|e| required("postgresql", &base, e))?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(TestDatabase {
            url: format!("{base}{sep}options=-csearch_path%3D{name}"),
            backend: "postgresql",
            admin: Box::new(admin),
            admin_url: base,
            drop_sql: format!("DROP SCHEMA {name} CASCADE"),
            dropped: false,
            name,
        })
    }

    /// A fresh MySQL/MariaDB database.
    pub async fn mysql() -> Result<TestDatabase> {
        let base = mysql_url();
        let admin = MysqlDriver::connect(&base, 2)?;
        let name = unique();
        admin
            .schema(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| required("mysql", &base, e))?;
        let root = base
            .rsplit_once('/')
            .map(|(r, _)| r.to_owned())
            .unwrap_or_else(|| base.clone());
        Ok(TestDatabase {
            url: format!("{root}/{name}"),
            backend: "mysql",
            admin: Box::new(admin),
            admin_url: base,
            drop_sql: format!("DROP DATABASE {name}"),
            dropped: false,
            name,
        })
    }

    /// A driver for this database.
    pub fn driver(&self, pool_size: usize) -> Result<Box<dyn Driver>> {
        Ok(match self.backend {
            "postgresql" => Box::new(PostgresDriver::connect(&self.url, pool_size)?),
            _ => Box::new(MysqlDriver::connect(&self.url, pool_size)?),
        })
    }

    /// Drops the schema or database.
    pub async fn drop_now(mut self) -> Result<()> {
        let result = self.admin.schema(&self.drop_sql).await;
        self.dropped = result.is_ok();
        result
    }
}

impl Drop for TestDatabase {
    /// The guard for a test that stopped before `drop_now` (a failed assertion): the schema or
    /// database is dropped on a fresh connection, from a thread with its own runtime because
    /// this may run inside the test's runtime, which cannot be blocked on.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (backend, url, sql) = (self.backend, self.admin_url.clone(), self.drop_sql.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin: Box<dyn Driver> = match backend {
                    "postgresql" => {
                        Box::new(PostgresDriver::connect(&url, 1).map_err(|e| e.to_string())?)
                    }
                    _ => Box::new(MysqlDriver::connect(&url, 1).map_err(|e| e.to_string())?),
                };
                admin.schema(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the test database {}: {dropped:?}",
                self.name
            );
        }
    }
}
