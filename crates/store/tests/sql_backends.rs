//! The conformance suite and the migration mechanism on real PostgreSQL and MariaDB/MySQL.
//!
//! Addresses come from `KMS_TEST_POSTGRES_URL` and `KMS_TEST_MYSQL_URL` (defaults: the local
//! services of the project machines). An unreachable database fails the test: it never skips.
//! Each test works in a schema (PostgreSQL) or database (MySQL) of its own and drops it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use kms_store::sql::{Driver, MysqlDriver, PostgresDriver, READY, SqlStore, UPGRADING};
use kms_store::{ObjectStore, StoreError, conformance};

pub fn postgres_url() -> String {
    std::env::var("KMS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("KMS_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL schema: (its URL, the admin driver to drop it, its name).
async fn pg_schema() -> (String, PostgresDriver, String) {
    let admin = PostgresDriver::connect(&postgres_url(), 2).unwrap();
    let name = unique("kms_test");
    admin
        .schema(&format!("CREATE SCHEMA {name}"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is required: {e}", postgres_url()));
    let sep = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    (
        format!("{}{sep}options=-csearch_path%3D{name}", postgres_url()),
        admin,
        name,
    )
}

/// A fresh MySQL database: (its URL, the admin driver to drop it, its name).
async fn mysql_database() -> (String, MysqlDriver, String) {
    let admin = MysqlDriver::connect(&mysql_url(), 2).unwrap();
    let name = unique("kms_test");
    admin
        .schema(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("MySQL/MariaDB at {} is required: {e}", mysql_url()));
    let base = mysql_url();
    let root = base
        .rsplit_once('/')
        .map(|(r, _)| r.to_owned())
        .unwrap_or(base);
    (format!("{root}/{name}"), admin, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    let (url, admin, name) = pg_schema().await;
    let store = SqlStore::open(Box::new(PostgresDriver::connect(&url, 8).unwrap()))
        .await
        .unwrap();
    conformance::run_all(&store).await;
    admin
        .schema(&format!("DROP SCHEMA {name} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_conformance() {
    let (url, admin, name) = mysql_database().await;
    let store = SqlStore::open(Box::new(MysqlDriver::connect(&url, 8).unwrap()))
        .await
        .unwrap();
    conformance::run_all(&store).await;
    admin
        .schema(&format!("DROP DATABASE {name}"))
        .await
        .unwrap();
}

/// An upgrade stopped between two steps leaves `upgrading`; requests get the retryable error;
/// the next start runs every step again and ends `ready` with every object intact.
async fn interrupted_upgrade(open: impl Fn() -> Box<dyn Driver>) {
    let store = SqlStore::open(open()).await.unwrap();
    for i in 0..5 {
        store
            .create(conformance::sample(&format!("keep{i}"), "alice", &["t"]))
            .await
            .unwrap();
    }
    // An older server wrote the database; this one upgrades and is stopped part-way.
    store.set_context("0.0.1", READY).await.unwrap();
    let upgrading = SqlStore::without_migration(open());
    let err = upgrading
        .migrate(Some(1))
        .await
        .expect_err("fault injected between steps");
    assert!(err.to_string().contains("interrupted"), "{err}");
    assert_eq!(
        upgrading.context().await.unwrap().map(|c| c.1).as_deref(),
        Some(UPGRADING)
    );

    // Meanwhile, requests fail cleanly with the retryable error.
    let err = store
        .get("keep0")
        .await
        .expect_err("no service while upgrading");
    assert!(matches!(err, StoreError::Upgrading), "{err:?}");
    assert!(err.to_string().contains("retry"), "{err}");

    // A restart resumes from the start and ends ready.
    let restarted = SqlStore::open(open()).await.unwrap();
    let (version, state) = restarted.context().await.unwrap().unwrap();
    assert_eq!(
        (version.as_str(), state.as_str()),
        (env!("CARGO_PKG_VERSION"), READY)
    );
    for i in 0..5 {
        let o = restarted
            .get(&format!("keep{i}"))
            .await
            .unwrap()
            .expect("object intact");
        assert_eq!(o.tags, vec!["t".to_owned()]);
    }
    // Running the upgrade again changes nothing (steps are idempotent).
    restarted.set_context("0.0.1", READY).await.unwrap();
    restarted.migrate(None).await.unwrap();
    assert_eq!(
        restarted
            .get("keep4")
            .await
            .unwrap()
            .map(|o| o.uid)
            .as_deref(),
        Some("keep4")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_interrupted_upgrade() {
    let (url, admin, name) = pg_schema().await;
    interrupted_upgrade(|| Box::new(PostgresDriver::connect(&url, 4).unwrap())).await;
    admin
        .schema(&format!("DROP SCHEMA {name} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_interrupted_upgrade() {
    let (url, admin, name) = mysql_database().await;
    interrupted_upgrade(|| Box::new(MysqlDriver::connect(&url, 4).unwrap())).await;
    admin
        .schema(&format!("DROP DATABASE {name}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_a_clear_error() {
    let store = SqlStore::without_migration(Box::new(
        PostgresDriver::connect("postgres://postgres:s3cret@127.0.0.1:1/none", 2).unwrap(),
    ));
    let err = store.health().await.expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(
        text.contains("postgresql") && text.contains("127.0.0.1:1"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret"),
        "the password must not appear: {text}"
    );
    let store = SqlStore::without_migration(Box::new(
        MysqlDriver::connect("mysql://root:s3cret@127.0.0.1:1/none", 2).unwrap(),
    ));
    let text = store
        .health()
        .await
        .expect_err("nothing listens")
        .to_string();
    assert!(text.contains("mysql") && !text.contains("s3cret"), "{text}");
}
