//! The conformance suite and the migration mechanism on real PostgreSQL and MariaDB/MySQL
//! (addresses in `KMS_TEST_POSTGRES_URL` / `KMS_TEST_MYSQL_URL`; unreachable is a failure).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use kms_store::sql::testing::TestDatabase;
use kms_store::sql::{MysqlDriver, PostgresDriver, READY, SqlStore, UPGRADING};
use kms_store::{ObjectStore, StoreError, conformance};

async fn conformance_on(db: TestDatabase) {
    let store = SqlStore::open(db.driver(8).unwrap()).await.unwrap();
    conformance::run_all(&store).await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    conformance_on(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_conformance() {
    conformance_on(TestDatabase::mysql().await.unwrap()).await;
}

/// An upgrade stopped between two steps leaves `upgrading`; requests get the retryable error;
/// the next start runs every step again and ends `ready` with every object intact.
async fn interrupted_upgrade(db: TestDatabase) {
    let store = SqlStore::open(db.driver(4).unwrap()).await.unwrap();
    for i in 0..5 {
        store
            .create(conformance::sample(&format!("keep{i}"), "alice", &["t"]))
            .await
            .unwrap();
    }
    // An older server wrote the database; this one upgrades and is stopped part-way.
    store.set_context("0.0.1", READY).await.unwrap();
    let upgrading = SqlStore::without_migration(db.driver(2).unwrap());
    let err = upgrading
        .migrate_interrupted_before(1)
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
    let restarted = SqlStore::open(db.driver(2).unwrap()).await.unwrap();
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
    restarted.migrate().await.unwrap();
    assert_eq!(
        restarted
            .get("keep4")
            .await
            .unwrap()
            .map(|o| o.uid)
            .as_deref(),
        Some("keep4")
    );
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_interrupted_upgrade() {
    interrupted_upgrade(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_interrupted_upgrade() {
    interrupted_upgrade(TestDatabase::mysql().await.unwrap()).await;
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

/// A test that fails before `drop_now` leaves no schema or database behind: the guard drops it.
async fn abandoned_database_is_dropped(db: TestDatabase) {
    let name = db.name.clone();
    let probe = match db.backend {
        "postgresql" => TestDatabase::postgres().await.unwrap(),
        _ => TestDatabase::mysql().await.unwrap(),
    };
    // PostgreSQL schemas and MySQL databases are both listed there.
    let exists_sql =
        format!("SELECT 1 FROM information_schema.schemata WHERE schema_name = '{name}'");
    let driver = probe.driver(1).unwrap();
    let exists = |rows: Vec<kms_store::sql::Row>| !rows.is_empty();
    assert!(exists(
        driver
            .query(&exists_sql, &[], &[kms_store::sql::Kind::Int])
            .await
            .unwrap()
    ));
    // Dropped without drop_now, as when a test panics.
    drop(db);
    assert!(
        !exists(
            driver
                .query(&exists_sql, &[], &[kms_store::sql::Kind::Int])
                .await
                .unwrap()
        ),
        "the guard dropped {name}"
    );
    drop(driver);
    probe.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_postgres_schema_is_dropped() {
    abandoned_database_is_dropped(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_mysql_database_is_dropped() {
    abandoned_database_is_dropped(TestDatabase::mysql().await.unwrap()).await;
}

/// TLS asked for is TLS verified: the local server's self-signed certificate is refused with
/// `sslmode=require` alone, and accepted once its certificate is given as `sslrootcert`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_is_verified_when_asked_for() {
    let base = kms_store::sql::testing::postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert!(
        std::path::Path::new(snakeoil).exists(),
        "the test PostgreSQL's certificate is expected at {snakeoil}"
    );
    let strict = PostgresDriver::connect(&format!("{base}{sep}sslmode=require"), 1).unwrap();
    let err = SqlStore::without_migration(Box::new(strict))
        .health()
        .await
        .expect_err("an unknown issuer is refused");
    assert!(err.to_string().contains("postgresql"), "{err}");
    let pinned = PostgresDriver::connect(
        &format!("{base}{sep}sslmode=require&sslrootcert={snakeoil}"),
        1,
    )
    .unwrap();
    SqlStore::without_migration(Box::new(pinned))
        .health()
        .await
        .expect("the certificate given as sslrootcert is trusted");
}

/// The cache serves reads (a change written around the change log is not seen), and follows
/// the log: a change another store makes is seen within the bound, and a store's own change at
/// once.
async fn cache_follows_the_change_log(db: TestDatabase) {
    let a = SqlStore::open(db.driver(4).unwrap()).await.unwrap();
    let b = SqlStore::open(db.driver(4).unwrap()).await.unwrap();
    // A store without cache writes without recording its changes.
    let unlogged = SqlStore::without_migration(db.driver(2).unwrap());
    a.create(conformance::sample("cached", "alice", &["t"]))
        .await
        .unwrap();
    // A change written around the log is not seen by a read the cache serves. The cache serves
    // only while its poller keeps up, which a loaded machine may briefly not: tried until one
    // round had it serving.
    let mut served = false;
    for round in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // A fresh read goes to the database, and fills the cache when it serves.
        let read = kms_store::fresh(a.get("cached")).await.unwrap().unwrap();
        let mut changed = read.clone();
        changed.owner = format!("unlogged-{round}");
        unlogged.update(changed).await.unwrap();
        if a.get("cached").await.unwrap().unwrap().owner == read.owner {
            served = true;
            break;
        }
    }
    assert!(served, "the cache never served a read");
    // A fresh read bypasses it.
    let fresh = kms_store::fresh(a.get("cached")).await.unwrap().unwrap();
    assert!(fresh.owner.starts_with("unlogged"), "{}", fresh.owner);
    // B's logged change reaches A within the bound.
    let mut by_b = fresh.clone();
    by_b.owner = "bob".into();
    b.update(by_b).await.unwrap();
    let since = std::time::Instant::now();
    // A read that started after the bound must see it (one that started before may not).
    loop {
        let started = since.elapsed();
        if a.get("cached").await.unwrap().unwrap().owner == "bob" {
            break;
        }
        assert!(
            started < kms_store::sql::CACHE_BOUND,
            "not seen within the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // A's own change, at once.
    let mut by_a = a.get("cached").await.unwrap().unwrap();
    by_a.owner = "carol".into();
    a.update(by_a).await.unwrap();
    assert_eq!(a.get("cached").await.unwrap().unwrap().owner, "carol");
    // Rights too.
    assert!(a.rights("cached", "dave").await.unwrap().is_empty());
    b.grant("cached", "dave", &["encrypt".to_owned()])
        .await
        .unwrap();
    let since = std::time::Instant::now();
    loop {
        let started = since.elapsed();
        if !a.rights("cached", "dave").await.unwrap().is_empty() {
            break;
        }
        assert!(
            started < kms_store::sql::CACHE_BOUND,
            "grant not seen within the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    drop((a, b, unlogged));
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cache_follows_the_change_log() {
    cache_follows_the_change_log(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_cache_follows_the_change_log() {
    cache_follows_the_change_log(TestDatabase::mysql().await.unwrap()).await;
}
