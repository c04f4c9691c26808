//! Store figures among many objects, `redis-findex` next to PostgreSQL in the same run: Create
//! (filling the store), Get, and Locate by tag (100 objects per tag), at 16 concurrent callers.
//!
//! `cargo run --release -p kms-store --features test-support --example backends_bench -- 100000`
//! (test services as for the tests: `KMS_TEST_REDIS_URL`, `KMS_TEST_POSTGRES_URL`; each backend
//! gets a throw-away prefix or schema, dropped at the end).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kms_store::redis::RedisFindexStore;
use kms_store::redis::testing::TestRedis;
use kms_store::sql::SqlStore;
use kms_store::sql::testing::TestDatabase;
use kms_store::{LocateQuery, ObjectStore, conformance};

const CONCURRENCY: usize = 16;
const OBJECTS_PER_TAG: usize = 100;

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `total` calls of `f(i)` from [`CONCURRENCY`] tasks; the rate and latency percentiles.
async fn run<F, Fut>(total: usize, f: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return latencies;
                    }
                    let t = Instant::now();
                    f(i).await;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures {
        rate: total as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn row(backend: &str, what: &str, f: &Figures) {
    println!(
        "| {backend} | {what} | {:.0}/s | {:.2} ms | {:.2} ms |",
        f.rate,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

async fn measure(backend: &str, store: Arc<dyn ObjectStore>, n: usize) {
    let tags = n / OBJECTS_PER_TAG;
    let s = store.clone();
    let create = run(n, move |i| {
        let s = s.clone();
        async move {
            let tag = format!("tag-{}", i % tags.max(1));
            s.create(conformance::sample(
                &format!("obj-{i}"),
                "bench-owner",
                &[&tag],
            ))
            .await
            .unwrap();
        }
    })
    .await;
    row(backend, &format!("Create (filling to {n})"), &create);
    let s = store.clone();
    let gets = 20_000.min(n);
    let get = run(gets, move |i| {
        let s = s.clone();
        async move {
            let uid = format!("obj-{}", (i * 7919) % n);
            assert!(s.get(&uid).await.unwrap().is_some());
        }
    })
    .await;
    row(backend, &format!("Get among {n}"), &get);
    let s = store.clone();
    let locates = 2_000.min(tags.max(1) * 2);
    let locate = run(locates, move |i| {
        let s = s.clone();
        async move {
            let query = LocateQuery {
                tags: vec![format!("tag-{}", i % tags.max(1))],
                ..LocateQuery::default()
            };
            let found = s.locate(&query).await.unwrap();
            assert_eq!(found.len(), n / tags.max(1));
        }
    })
    .await;
    row(
        backend,
        &format!("Locate by tag ({OBJECTS_PER_TAG} of {n})"),
        &locate,
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!("| backend | operation | rate | p50 | p99 |");
    println!("|---|---|---|---|---|");

    let redis = TestRedis::new().await.unwrap();
    let store = Arc::new(RedisFindexStore::open(&redis.settings).await.unwrap());
    measure("redis-findex", store, n).await;
    redis.drop_now().await.unwrap();

    let db = TestDatabase::postgres().await.unwrap();
    let store = Arc::new(
        SqlStore::open(db.driver(CONCURRENCY).unwrap())
            .await
            .unwrap(),
    );
    measure("postgresql", store, n).await;
    db.drop_now().await.unwrap();
}
