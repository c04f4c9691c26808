//! The conformance suite and the encrypted layout of `redis-findex` on the real Redis
//! (`KMS_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; unreachable is a failure). Each
//! test has a key prefix of its own, deleted at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use kms_store::redis::RedisFindexStore;
use kms_store::redis::testing::TestRedis;
use kms_store::{LocateQuery, ObjectStore, Secret, StoreError, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_findex_conformance() {
    let redis = TestRedis::new().await.unwrap();
    let store = RedisFindexStore::open(&redis.settings).await.unwrap();
    conformance::run_all(&store).await;
    redis.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_password_is_refused_at_start() {
    let redis = TestRedis::new().await.unwrap();
    let store = RedisFindexStore::open(&redis.settings).await.unwrap();
    store
        .create(conformance::sample("p1", "alice", &["t"]))
        .await
        .unwrap();
    let mut wrong = redis.settings.clone();
    wrong.master_password = Secret::new("not the password");
    let e = RedisFindexStore::open(&wrong).await.err().expect("refused");
    assert!(
        e.to_string().contains("master password does not open"),
        "{e}"
    );
    assert!(!e.to_string().contains("not the password"), "{e}");
    redis.drop_now().await.unwrap();
}

/// A new label re-keys the index at start: no index token stays the same, Locate still finds
/// every object, and a server still on the old label is told to restart rather than writing
/// entries nobody can find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_label_rekeys_the_index() {
    let redis = TestRedis::new().await.unwrap();
    let old = RedisFindexStore::open(&redis.settings).await.unwrap();
    for i in 0..20 {
        old.create(conformance::sample(&format!("l{i}"), "alice", &["blue"]))
            .await
            .unwrap();
    }
    old.grant("l3", "bob", &["get".into()]).await.unwrap();
    let index_keys = |dump: &[(Vec<u8>, Vec<Vec<u8>>)]| -> std::collections::BTreeSet<Vec<u8>> {
        dump.iter()
            .filter(|(k, _)| k.windows(3).any(|w| w == b":i:"))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let before = index_keys(&redis.dump().await.unwrap());
    let mut relabelled = redis.settings.clone();
    relabelled.label = "another label".into();
    let new = RedisFindexStore::open(&relabelled).await.unwrap();
    let after = index_keys(&redis.dump().await.unwrap());
    assert_eq!(before.len(), after.len());
    assert!(before.is_disjoint(&after), "every token changed");
    let tagged = LocateQuery {
        tags: vec!["blue".into()],
        ..LocateQuery::default()
    };
    assert_eq!(new.locate(&tagged).await.unwrap().len(), 20);
    assert_eq!(new.obtained("bob").await.unwrap().len(), 1);
    let e = old
        .create(conformance::sample("late", "alice", &[]))
        .await
        .expect_err("the old label is refused");
    assert!(e.to_string().contains("--redis-findex-label"), "{e}");
    assert!(old.locate(&tagged).await.is_err());
    redis.drop_now().await.unwrap();
}

/// A record moved to another entry, or altered, is detected rather than served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_records_are_refused() {
    let redis = TestRedis::new().await.unwrap();
    let store = RedisFindexStore::open(&redis.settings).await.unwrap();
    store
        .create(conformance::sample("s1", "alice", &[]))
        .await
        .unwrap();
    store
        .create(conformance::sample("s2", "mallory", &[]))
        .await
        .unwrap();
    let client = redis::Client::open(redis.settings.url.expose()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:o:*", redis.settings.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    let data: Vec<u8> = redis::cmd("HGET")
        .arg(&entries[1])
        .arg("data")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&entries[0])
        .arg("data")
        .arg(data)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut refused = 0;
    for uid in ["s1", "s2"] {
        if let Err(e) = store.get(uid).await {
            assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
            refused += 1;
        }
    }
    assert_eq!(refused, 1, "the entry whose record was replaced is refused");
    redis.drop_now().await.unwrap();
}
