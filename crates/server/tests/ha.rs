//! High availability: two servers on one PostgreSQL, MariaDB or Redis (`redis-findex`) database give
//! the same answers as one. Concurrent creates, reads, attribute changes, revokes and destroys go
//! through both servers, and every answer is checked against one model of the expected state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use kmip::model::*;
use kmip::{CryptographicAlgorithm, RevocationReasonCode, State};
use kms_client::{KmsClient, op};
use kms_store::sql::testing::TestDatabase;

const WORKERS: usize = 6;
const ROUNDS: usize = 5;

fn uid(s: &str) -> Option<UniqueIdentifier> {
    Some(s.into())
}

async fn state_of(client: &KmsClient, id: &str) -> (Option<State>, BTreeSet<String>) {
    let r = client.call(GetAttributes::all(id)).await.unwrap();
    (
        r.attributes.state(),
        r.attributes.object_groups().map(str::to_owned).collect(),
    )
}

/// One worker: its own keys, alternating servers at every step; returns the model of its keys
/// and the groups it added to the shared object.
async fn worker(
    w: usize,
    clients: [KmsClient; 2],
    shared: String,
) -> (Vec<(String, State)>, Vec<String>) {
    let mut model = Vec::new();
    let mut groups = Vec::new();
    for i in 0..ROUNDS {
        let (c, other) = (&clients[(w + i) % 2], &clients[(w + i + 1) % 2]);
        let id = format!("ha-{w}-{i}");
        c.call(Create::symmetric_key(CryptographicAlgorithm::AES, 256).with_unique_identifier(&id))
            .await
            .unwrap();
        // Read-your-writes across servers.
        assert_eq!(state_of(other, &id).await.0, Some(State::PreActive));
        other.call(op::Activate::new(&id)).await.unwrap();
        let e = c
            .call(Encrypt::new(uid(&id), id.as_bytes().to_vec()))
            .await
            .unwrap();
        let d = other.call(Decrypt::of(uid(&id), &e)).await.unwrap();
        assert_eq!(d.data.as_deref(), Some(id.as_bytes()));
        // Every worker adds a group to the same object through alternating servers: none may be
        // lost to a concurrent update.
        let group = format!("g-{w}-{i}");
        c.call(op::AddAttribute::new(
            &shared,
            Attribute::ObjectGroup(group.clone()),
        ))
        .await
        .unwrap();
        groups.push(group);
        let mut state = State::Active;
        if i % 2 == 0 {
            other
                .call(Revoke::new(&id, RevocationReasonCode::Superseded))
                .await
                .unwrap();
            c.call(Destroy::new(&id)).await.unwrap();
            state = State::Destroyed;
        }
        model.push((id, state));
    }
    (model, groups)
}

async fn two_servers_one_database(database: kms_store::Backend) {
    let a = TestServer::builder()
        .database(database.clone())
        .start()
        .await;
    let b = TestServer::builder().database(database).start().await;
    let clients = [
        KmsClient::with_url(&a.url).unwrap(),
        KmsClient::with_url(&b.url).unwrap(),
    ];
    let shared = "ha-shared".to_owned();
    clients[0]
        .call(
            Create::symmetric_key(CryptographicAlgorithm::AES, 128).with_unique_identifier(&shared),
        )
        .await
        .unwrap();

    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(w, clients.clone(), shared.clone())))
        .collect();
    let mut model = Vec::new();
    let mut expected_groups = BTreeSet::new();
    for t in tasks {
        let (m, g) = t.await.unwrap();
        model.extend(m);
        expected_groups.extend(g);
    }
    // Both servers agree with the model on every object.
    for client in &clients {
        for (id, state) in &model {
            assert_eq!(state_of(client, id).await.0, Some(*state), "{id}");
        }
        let (_, groups) = state_of(client, &shared).await;
        assert_eq!(
            groups, expected_groups,
            "no concurrent attribute change is lost"
        );
        let l = client
            .call(Locate::matching(Attributes(vec![Attribute::State(
                State::Active,
            )])))
            .await
            .unwrap();
        let active = model.iter().filter(|(_, s)| *s == State::Active).count();
        assert_eq!(
            l.unique_identifier.len(),
            active,
            "Locate sees the same active keys"
        );
    }
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgresql() {
    let db = TestDatabase::postgres().await.unwrap();
    two_servers_one_database(db.backend_at(db.url.clone(), 8)).await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_mariadb() {
    let db = TestDatabase::mysql().await.unwrap();
    two_servers_one_database(db.backend_at(db.url.clone(), 8)).await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_redis_findex() {
    let redis = kms_store::redis::testing::TestRedis::new().await.unwrap();
    two_servers_one_database(kms_store::Backend::RedisFindex(redis.settings.clone())).await;
    redis.drop_now().await.unwrap();
}

/// Encrypts with `id` on `client`: whether the server served it.
async fn encrypts(client: &KmsClient, id: &str) -> bool {
    client
        .call(Encrypt::new(uid(id), b"cache".to_vec()))
        .await
        .is_ok()
}

/// Waits until `client` stops serving encrypts with `id`: when the first refused request
/// started, from `since`. A request started after the bound that is still served fails.
async fn refused_after(
    client: &KmsClient,
    id: &str,
    since: std::time::Instant,
) -> std::time::Duration {
    loop {
        let started = since.elapsed();
        if !encrypts(client, id).await {
            return started;
        }
        assert!(
            started < kms_store::sql::CACHE_BOUND,
            "served by a request started {started:?} after the change"
        );
    }
}

/// Servers A (alice), B (alice) and C (bob) on one database, each caching objects and rights:
/// a key revoked on A is refused on B, which served it from its cache, within the cache's bound;
/// a right revoked on A is refused on C within the bound too: a request started after the
/// bound is never served.
async fn caches_follow_changes_made_elsewhere(database: kms_store::Backend) {
    let bound = kms_store::sql::CACHE_BOUND;
    let start = |user: &'static str| {
        TestServer::builder()
            .database(database.clone())
            .user(user)
            .start()
    };
    let (a, b, c) = (
        start("alice").await,
        start("alice").await,
        start("bob").await,
    );
    let [ca, cb, cc] = [&a, &b, &c].map(|s| KmsClient::with_url(&s.url).unwrap());
    for id in ["cache-revoked", "cache-granted"] {
        ca.call(Create::symmetric_key(CryptographicAlgorithm::AES, 256).with_unique_identifier(id))
            .await
            .unwrap();
        ca.call(op::Activate::new(id)).await.unwrap();
    }
    ca.access(
        "/access/grant",
        Some(serde_json::json!({
            "unique_identifier": "cache-granted", "user_id": "bob", "operation_types": ["encrypt"]
        })),
    )
    .await
    .unwrap();
    // B and C read the key and the right into their caches.
    for _ in 0..20 {
        assert!(encrypts(&cb, "cache-revoked").await);
        assert!(encrypts(&cc, "cache-granted").await);
    }

    ca.call(Revoke::new(
        "cache-revoked",
        RevocationReasonCode::KeyCompromise,
    ))
    .await
    .unwrap();
    let revoked = std::time::Instant::now();
    // Refused at once on the server that made the change.
    assert!(!encrypts(&ca, "cache-revoked").await);
    let seen = refused_after(&cb, "cache-revoked", revoked).await;
    println!("revoked key refused on the other server after {seen:?} (bound {bound:?})");

    ca.access(
        "/access/revoke",
        Some(serde_json::json!({
            "unique_identifier": "cache-granted", "user_id": "bob", "operation_types": ["encrypt"]
        })),
    )
    .await
    .unwrap();
    let taken = std::time::Instant::now();
    let seen = refused_after(&cc, "cache-granted", taken).await;
    println!("revoked right refused on the other server after {seen:?} (bound {bound:?})");
    for s in [a, b, c] {
        s.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_follow_changes_on_postgresql() {
    let db = TestDatabase::postgres().await.unwrap();
    caches_follow_changes_made_elsewhere(db.backend_at(db.url.clone(), 8)).await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_follow_changes_on_mariadb() {
    let db = TestDatabase::mysql().await.unwrap();
    caches_follow_changes_made_elsewhere(db.backend_at(db.url.clone(), 8)).await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_follow_changes_on_redis_findex() {
    let redis = kms_store::redis::testing::TestRedis::new().await.unwrap();
    caches_follow_changes_made_elsewhere(kms_store::Backend::RedisFindex(redis.settings.clone()))
        .await;
    redis.drop_now().await.unwrap();
}
