//! The store as the metrics see it: every call's latency and errors per backend
//! (`kms_store_duration_seconds`, `kms_store_errors_total`), the connection pool's use at each
//! scrape, and the objects by type and state (`kms_objects`), counted once at start-up in one
//! query and then kept by the creates, updates and deletes of this server. Objects another
//! server changes show in this server's figures from its next start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use kmip::{KmipEnum, ObjectType, State, Tag};
use kms_store::{Grant, LocateQuery, ObjectStore, Obtained, Result, StoredObject};

/// The store calls; `Call::X as usize` indexes [`CALLS`].
#[derive(Clone, Copy)]
enum Call {
    Create,
    Get,
    Update,
    Delete,
    Grant,
    RevokeGrant,
    Grants,
    Rights,
    Obtained,
    Locate,
    Health,
    Clear,
}

/// The store calls, as labels, in the order of [`Call`].
const CALLS: [&str; 12] = [
    "create",
    "get",
    "update",
    "delete",
    "grant",
    "revoke_grant",
    "grants",
    "rights",
    "obtained",
    "locate",
    "health",
    "clear",
];

/// A store whose calls are measured.
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
    /// Latency and errors of each call of [`CALLS`], looked up in the registry once.
    handles: Vec<(metrics::Histogram, metrics::Counter)>,
    /// Whether `kms_objects` holds a census (the backend counted at start-up).
    census: Arc<AtomicBool>,
}

impl MeteredStore {
    /// Wraps `inner`; the census runs in the background (a large database must not delay the
    /// start).
    pub fn new(inner: Arc<dyn ObjectStore>) -> MeteredStore {
        let backend = inner.backend();
        let store = MeteredStore {
            backend,
            handles: CALLS
                .iter()
                .map(|call| {
                    (
                        metrics::histogram!("kms_store_duration_seconds", "backend" => backend, "call" => *call),
                        metrics::counter!("kms_store_errors_total", "backend" => backend, "call" => *call),
                    )
                })
                .collect(),
            inner,
            census: Arc::new(AtomicBool::new(false)),
        };
        let (inner, census) = (store.inner.clone(), store.census.clone());
        tokio::spawn(async move {
            match inner.census().await {
                Ok(Some(counts)) => {
                    for c in counts {
                        objects_gauge(c.object_type, c.state).increment(c.count as f64);
                    }
                    census.store(true, Ordering::Release);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot count the objects for the metrics"),
            }
            // Counting a large table reads much of it (a database's GROUP BY may sort it in
            // the process); what that freed goes back to the system.
            kms_alloc::release_freed();
        });
        store
    }

    /// Runs the store call `call` and records its latency and failure.
    async fn timed<T>(
        &self,
        call: Call,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let start = Instant::now();
        let result = fut.await;
        if let Some((latency, errors)) = self.handles.get(call as usize) {
            latency.record(start.elapsed().as_secs_f64());
            if result.is_err() {
                errors.increment(1);
            }
        }
        result
    }

    fn counting(&self) -> bool {
        self.census.load(Ordering::Acquire)
    }

    /// The type and state of `uid` before a change, when the census is kept.
    async fn before(&self, uid: &str) -> Option<(ObjectType, State)> {
        if !self.counting() {
            return None;
        }
        match self.inner.get(uid).await {
            Ok(Some(o)) => Some((o.object_type, o.state)),
            _ => None,
        }
    }
}

fn name(tag: Tag, value: u32) -> &'static str {
    kmip::enums::enum_domain(tag)
        .and_then(|d| kmip::enums::enum_name(d, value, true))
        .unwrap_or("Unknown")
}

fn objects_gauge(object_type: ObjectType, state: State) -> metrics::Gauge {
    metrics::gauge!(
        "kms_objects",
        "object_type" => name(Tag::OBJECT_TYPE, object_type.to_u32()),
        "state" => name(Tag::STATE, state.to_u32()),
    )
}

#[async_trait]
impl ObjectStore for MeteredStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn tenants(&self) -> Option<&kms_store::sqlite_enc::Tenants> {
        self.inner.tenants()
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        let kind = (object.object_type, object.state);
        self.timed(Call::Create, self.inner.create(object)).await?;
        if self.counting() {
            objects_gauge(kind.0, kind.1).increment(1.0);
        }
        Ok(())
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        self.timed(Call::Get, self.inner.get(uid)).await
    }

    async fn get_shared(&self, uid: &str) -> Result<Option<std::sync::Arc<StoredObject>>> {
        self.timed(Call::Get, self.inner.get_shared(uid)).await
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        let before = self.before(&object.uid).await;
        let after = (object.object_type, object.state);
        self.timed(Call::Update, self.inner.update(object)).await?;
        if let Some(before) = before.filter(|b| *b != after) {
            objects_gauge(before.0, before.1).decrement(1.0);
            objects_gauge(after.0, after.1).increment(1.0);
        }
        Ok(())
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        let before = self.before(uid).await;
        self.timed(Call::Delete, self.inner.delete(uid)).await?;
        if let Some(before) = before {
            objects_gauge(before.0, before.1).decrement(1.0);
        }
        Ok(())
    }

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.timed(Call::Grant, self.inner.grant(uid, user, operations))
            .await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.timed(
            Call::RevokeGrant,
            self.inner.revoke_grant(uid, user, operations),
        )
        .await
    }

    async fn grants(&self, uid: &str) -> Result<Vec<Grant>> {
        self.timed(Call::Grants, self.inner.grants(uid)).await
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        self.timed(Call::Rights, self.inner.rights(uid, user)).await
    }

    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>> {
        self.timed(Call::Obtained, self.inner.obtained(user)).await
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        self.timed(Call::Locate, self.inner.locate(query)).await
    }

    async fn health(&self) -> Result<()> {
        self.timed(Call::Health, self.inner.health()).await
    }

    async fn clear(&self) -> Result<()> {
        self.timed(Call::Clear, self.inner.clear()).await
    }

    async fn census(&self) -> Result<Option<Vec<kms_store::Census>>> {
        self.inner.census().await
    }

    fn pool(&self) -> Option<kms_store::PoolUse> {
        self.inner.pool()
    }
}

/// Publishes the pool's use (called at each scrape: it reads counters the pool keeps).
pub fn publish_pool(store: &dyn ObjectStore) {
    if let Some(p) = store.pool() {
        let backend = store.backend();
        metrics::gauge!("kms_store_pool_connections", "backend" => backend, "state" => "max")
            .set(p.max as f64);
        metrics::gauge!("kms_store_pool_connections", "backend" => backend, "state" => "open")
            .set(p.open as f64);
        metrics::gauge!("kms_store_pool_connections", "backend" => backend, "state" => "idle")
            .set(p.idle as f64);
        metrics::gauge!("kms_store_pool_connections", "backend" => backend, "state" => "waiting")
            .set(p.waiting as f64);
    }
}
