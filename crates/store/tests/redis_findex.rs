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
        .arg(format!("{}:*:o:*", redis.settings.prefix))
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

async fn wait_for_rotation(store: &RedisFindexStore) {
    for _ in 0..1200 {
        if store.rotation_progress().is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the rotation did not finish in a minute");
}

/// A change of master password while the rotating server takes writes: nothing is lost, grants
/// and the index follow, other servers are refused meanwhile, the old password opens nothing
/// afterwards and no key of the old generation is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_password_changes_online() {
    let redis = TestRedis::new().await.unwrap();
    let old = RedisFindexStore::open(&redis.settings).await.unwrap();
    for i in 0..400 {
        old.create(conformance::sample(&format!("r{i}"), "alice", &["rot"]))
            .await
            .unwrap();
    }
    for i in 0..40 {
        old.grant(&format!("r{i}"), "bob", &["get".into()])
            .await
            .unwrap();
    }
    let mut rotating_settings = redis.settings.clone();
    rotating_settings.new_master_password = Some(Secret::new("the new master password"));
    let rotating = std::sync::Arc::new(RedisFindexStore::open(&rotating_settings).await.unwrap());
    // Writes on the rotating server while it moves entries.
    let writer = {
        let s = rotating.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                s.create(conformance::sample(&format!("n{i}"), "alice", &["rot"]))
                    .await
                    .unwrap();
                let uid = format!("r{}", 399 - i);
                let mut o = s.get(&uid).await.unwrap().expect("readable while rotating");
                o.tags.push("updated".into());
                s.update(o).await.unwrap();
                s.grant(&format!("r{}", 100 + i), "carol", &["encrypt".into()])
                    .await
                    .unwrap();
            }
        })
    };
    // The server still on the old password is refused with what to do.
    let e = old
        .create(conformance::sample("late", "alice", &[]))
        .await
        .expect_err("refused while rotating");
    assert!(e.to_string().contains("master password"), "{e}");
    writer.await.unwrap();
    wait_for_rotation(&rotating).await;

    let mut new_settings = redis.settings.clone();
    new_settings.master_password = Secret::new("the new master password");
    let new = RedisFindexStore::open(&new_settings).await.unwrap();
    let tagged = |t: &str| LocateQuery {
        tags: vec![t.into()],
        ..LocateQuery::default()
    };
    assert_eq!(new.locate(&tagged("rot")).await.unwrap().len(), 450);
    assert_eq!(new.locate(&tagged("updated")).await.unwrap().len(), 50);
    assert_eq!(new.obtained("bob").await.unwrap().len(), 40);
    assert_eq!(new.obtained("carol").await.unwrap().len(), 50);
    assert_eq!(
        new.rights("r3", "bob").await.unwrap(),
        vec!["get".to_owned()]
    );
    let e = RedisFindexStore::open(&redis.settings)
        .await
        .err()
        .expect("the old password is refused");
    assert!(e.to_string().contains("does not open"), "{e}");
    let first_generation = format!("{}:1:", redis.settings.prefix);
    let left: Vec<String> = redis
        .dump()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .filter(|k| k.starts_with(&first_generation))
        .collect();
    assert!(left.is_empty(), "old generation left: {left:?}");
    redis.drop_now().await.unwrap();
}

/// A rotation stopped part-way (the server killed) is resumed by the next start with both
/// passwords; a start with only one of them meanwhile says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rotation_resumes() {
    let redis = TestRedis::new().await.unwrap();
    let old = RedisFindexStore::open(&redis.settings).await.unwrap();
    for i in 0..2000 {
        old.create(conformance::sample(&format!("x{i}"), "alice", &["t"]))
            .await
            .unwrap();
    }
    let mut both = redis.settings.clone();
    both.new_master_password = Some(Secret::new("next password"));
    let rotating = RedisFindexStore::open(&both).await.unwrap();
    loop {
        match rotating.rotation_progress() {
            Some((moved, _)) if moved >= 100 => break,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
            None => panic!("finished before it could be interrupted"),
        }
    }
    drop(rotating);
    let mut only_new = redis.settings.clone();
    only_new.master_password = Secret::new("next password");
    let e = RedisFindexStore::open(&only_new)
        .await
        .err()
        .expect("an unfinished change needs both passwords");
    assert!(e.to_string().contains("--redis-new-master-password"), "{e}");
    let resumed = RedisFindexStore::open(&both).await.unwrap();
    wait_for_rotation(&resumed).await;
    drop(resumed);
    let new = RedisFindexStore::open(&only_new).await.unwrap();
    let all = LocateQuery {
        tags: vec!["t".into()],
        ..LocateQuery::default()
    };
    assert_eq!(new.locate(&all).await.unwrap().len(), 2000);
    for i in (0..2000).step_by(97) {
        assert!(new.get(&format!("x{i}")).await.unwrap().is_some());
    }
    redis.drop_now().await.unwrap();
}

/// Two stores on one Redis cache objects and rights: a read the cache serves does not reach
/// Redis (an entry deleted around the change log is still answered, until a fresh read), a
/// change made through the other store is seen within the bound, one's own at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_the_change_log() {
    let redis = TestRedis::new().await.unwrap();
    let a = RedisFindexStore::open(&redis.settings).await.unwrap();
    let b = RedisFindexStore::open(&redis.settings).await.unwrap();
    a.create(conformance::sample("around", "alice", &[]))
        .await
        .unwrap();
    let client = redis::Client::open(redis.settings.url.expose()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*:o:*", redis.settings.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // A fresh read goes to Redis, and fills the cache when it serves.
        let read = kms_store::fresh(a.get("around")).await.unwrap();
        assert!(read.is_some());
        if a.get("around").await.unwrap().is_some() {
            let dump: Vec<u8> = redis::cmd("DUMP")
                .arg(&entries[0])
                .query_async(&mut conn)
                .await
                .unwrap();
            let _: () = redis::cmd("DEL")
                .arg(&entries[0])
                .query_async(&mut conn)
                .await
                .unwrap();
            let cached = a.get("around").await.unwrap().is_some();
            let _: () = redis::cmd("RESTORE")
                .arg(&entries[0])
                .arg(0)
                .arg(dump)
                .query_async(&mut conn)
                .await
                .unwrap();
            if cached {
                served = true;
                break;
            }
        }
    }
    assert!(served, "the cache never served a read");

    let mut by_b = kms_store::fresh(b.get("around")).await.unwrap().unwrap();
    assert_eq!(a.get("around").await.unwrap().unwrap().owner, "alice");
    by_b.owner = "bob".into();
    b.update(by_b).await.unwrap();
    let since = std::time::Instant::now();
    loop {
        let started = since.elapsed();
        if a.get("around").await.unwrap().unwrap().owner == "bob" {
            break;
        }
        assert!(
            started < kms_store::sql::CACHE_BOUND,
            "not seen within the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut by_a = kms_store::fresh(a.get("around")).await.unwrap().unwrap();
    by_a.owner = "carol".into();
    a.update(by_a).await.unwrap();
    assert_eq!(a.get("around").await.unwrap().unwrap().owner, "carol");

    assert!(a.rights("around", "dave").await.unwrap().is_empty());
    b.grant("around", "dave", &["encrypt".to_owned()])
        .await
        .unwrap();
    let since = std::time::Instant::now();
    loop {
        let started = since.elapsed();
        if !a.rights("around", "dave").await.unwrap().is_empty() {
            break;
        }
        assert!(
            started < kms_store::sql::CACHE_BOUND,
            "a grant not seen within the bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    b.delete("around").await.unwrap();
    let since = std::time::Instant::now();
    while a.get("around").await.unwrap().is_some() {
        assert!(
            since.elapsed() < kms_store::sql::CACHE_BOUND,
            "a delete not seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    redis.drop_now().await.unwrap();
}
