//! The shared SQL backend for PostgreSQL and MySQL/MariaDB: every statement is written once
//! here, with `:N` parameter markers that the [`Dialect`] renders for its driver. A [`Driver`]
//! only runs statements (in transactions, retried on serialization failures and deadlocks) and
//! queries; it knows no KMS logic.
//!
//! Several servers may share the database: objects and rights are cached only as the change log
//! (`changes.rs`) keeps them true. Updates are optimistic: they apply only to the revision that
//! was read.

pub(crate) mod changes;
mod dialect;
mod mysql;
mod postgres;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;

use crate::{LocateQuery, ObjectStore, Result, StoreError, StoredObject};
pub(crate) use dialect::OBJECT_KINDS;
pub(crate) use dialect::text;

pub use changes::BOUND as CACHE_BOUND;
pub use dialect::{Dialect, READY, UPGRADING};

pub use mysql::MysqlDriver;
pub use postgres::PostgresDriver;

/// Longest wait for any database call before the request fails.
pub(crate) const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Attempts of a transaction that meets serialization failures or deadlocks.
const ATTEMPTS: u32 = 6;

/// Runs `attempt` until it commits. An attempt answering `Ok(Some(error))` met a serialization
/// failure or a deadlock and is retried with exponential backoff; one that takes longer than
/// [`CALL_TIMEOUT`] fails with `timed_out()`.
pub(crate) async fn retry_transaction<F, Fut>(
    mut attempt: F,
    timed_out: impl Fn() -> StoreError,
) -> Result<(), TxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<StoreError>, TxError>>,
{
    let mut last = None;
    for n in 0..ATTEMPTS {
        match tokio::time::timeout(CALL_TIMEOUT, attempt()).await {
            Err(_) => return Err(TxError::Store(timed_out())),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(retryable))) => {
                last = Some(retryable);
                tokio::time::sleep(std::time::Duration::from_millis(5 << n)).await;
            }
            Ok(Err(e)) => return Err(e),
        }
    }
    Err(TxError::Store(last.unwrap_or_else(timed_out)))
}

/// A statement parameter or a column value. Typed even when null, as PostgreSQL requires.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(bool),
}

/// The kind of a result column, for decoding.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Int,
    Text,
    Bytes,
}

pub type Row = Vec<SqlValue>;

/// What zero affected rows means for a statement of a transaction.
#[derive(Clone, Debug)]
pub enum OnZeroRows {
    /// Fine.
    Ignore,
    /// The insert found the uid taken.
    AlreadyExists(String),
    /// The update or delete found no row with that uid (and revision).
    Missing(String),
}

/// One statement of a transaction, already rendered for the driver.
#[derive(Clone, Debug)]
pub struct Stmt {
    /// Borrowed for the statements every request writes (rendered by hand, see
    /// [`Dialect::create`]), owned when rendered at run time.
    pub sql: std::borrow::Cow<'static, str>,
    pub params: Vec<SqlValue>,
    pub on_zero_rows: OnZeroRows,
}

/// Why a transaction did not commit, as the backend logic needs to know it.
#[derive(Debug)]
pub enum TxError {
    /// A statement's guard tripped: nothing was committed.
    ZeroRows(OnZeroRows),
    Store(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

/// The driver of one database server.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    fn dialect(&self) -> Dialect;
    /// Runs the statements in one transaction; retries the whole transaction on serialization
    /// failures and deadlocks.
    async fn transaction(&self, stmts: &[Stmt]) -> Result<(), TxError>;
    /// Runs a query and decodes its rows.
    async fn query(&self, sql: &str, params: &[SqlValue], kinds: &[Kind]) -> Result<Vec<Row>>;
    /// Runs one schema statement; `already_done` tells whether its error means the change was
    /// made before (MySQL has no `CREATE INDEX IF NOT EXISTS`).
    async fn schema(&self, sql: &str) -> Result<()>;
    /// The connection pool's use, when the driver can tell.
    fn pool(&self) -> Option<crate::PoolUse> {
        None
    }
}

/// A store on PostgreSQL or MySQL/MariaDB.
pub struct SqlStore {
    driver: std::sync::Arc<dyn Driver>,
    /// Objects and rights, kept true by the change log; `None` before the schema has it.
    cache: Option<std::sync::Arc<changes::SharedCache>>,
}

impl SqlStore {
    /// Wraps a driver, brings the schema up to date and starts following the change log.
    pub async fn open(driver: Box<dyn Driver>) -> Result<SqlStore> {
        let mut store = SqlStore {
            driver: driver.into(),
            cache: None,
        };
        store.migrate().await?;
        let cache = std::sync::Arc::new(changes::SharedCache::default());
        changes::follow(store.driver.clone(), std::sync::Arc::downgrade(&cache));
        store.cache = Some(cache);
        Ok(store)
    }

    /// Wraps a driver without touching the schema (tests of the migration), and without cache.
    #[cfg(any(test, feature = "test-support"))]
    pub fn without_migration(driver: Box<dyn Driver>) -> SqlStore {
        SqlStore {
            driver: driver.into(),
            cache: None,
        }
    }

    /// Runs a changing transaction, recorded in the change log, and drops `uid` from this
    /// server's cache once it committed.
    async fn change(&self, mut stmts: Vec<Stmt>, uid: Option<&str>) -> Result<(), TxError> {
        let dialect = self.driver.dialect();
        if self.cache.is_some() {
            match uid {
                Some(uid) => stmts.extend(changes::record(dialect, uid)),
                None => stmts.extend(changes::record_everything(dialect)),
            }
        }
        let result = self.driver.transaction(&stmts).await;
        if let Some(cache) = &self.cache {
            // Also when it failed: whether it committed may be unknown.
            cache.invalidate(uid.unwrap_or("*"));
        }
        result
    }

    /// Brings the schema up to date (see [`SqlStore::migrate_until`]).
    pub async fn migrate(&self) -> Result<()> {
        self.migrate_until(None).await
    }

    /// Fault injection for tests: the upgrade stops before step `step`, leaving `upgrading`.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn migrate_interrupted_before(&self, step: usize) -> Result<()> {
        self.migrate_until(Some(step)).await
    }

    async fn query(&self, sql: &str, params: &[SqlValue], kinds: &[Kind]) -> Result<Vec<Row>> {
        let (sql, params) = self.driver.dialect().render(sql, params);
        self.driver.query(&sql, &params, kinds).await
    }

    /// The `(version, state)` in the context table, if any.
    pub async fn context(&self) -> Result<Option<(String, String)>> {
        let rows = self
            .query(Dialect::CONTEXT, &[], &[Kind::Text, Kind::Text])
            .await?;
        Ok(rows.first().and_then(context_of))
    }

    /// Records the schema version and state (`ready` or `upgrading`).
    pub async fn set_context(&self, version: &str, state: &str) -> Result<()> {
        let stmt = self.driver.dialect().set_context(version, state);
        self.driver
            .transaction(&[stmt])
            .await
            .map_err(tx_store_error)
    }

    /// Runs the schema upgrade as the seed describes it: flag `upgrading`, run every step in
    /// order, flag `ready` with this version. `fail_after` stops before that step, leaving
    /// the database `upgrading` (tests inject the fault this way).
    async fn migrate_until(&self, fail_after: Option<usize>) -> Result<()> {
        let dialect = self.driver.dialect();
        self.driver.schema(dialect.context_table()).await?;
        let from = match schema_action(self.context().await?, self.driver.backend())? {
            None => return Ok(()),
            Some(from) => from,
        };
        log_schema_change(&from, self.driver.backend());
        // The version recorded while upgrading is the target: an older server that starts
        // meanwhile sees a newer schema and refuses, rather than running its own steps.
        self.set_context(VERSION, UPGRADING).await?;
        for (i, (name, statements)) in dialect.schema_steps().into_iter().enumerate() {
            if fail_after == Some(i) {
                return Err(interrupted(self.driver.backend(), i, name));
            }
            tracing::info!(step = name, "schema step");
            for sql in statements {
                self.driver.schema(sql).await?;
            }
        }
        self.set_context(VERSION, READY).await?;
        Ok(())
    }

    /// Refuses to work while another server upgrades the schema.
    async fn ready(&self) -> Result<()> {
        match self.context().await? {
            Some((_, s)) if s == UPGRADING => Err(StoreError::Upgrading),
            _ => Ok(()),
        }
    }

    async fn missing_or_conflict(&self, uid: &str) -> StoreError {
        match self
            .query(Dialect::EXISTS, &[text(uid)], &[Kind::Int])
            .await
        {
            Ok(rows) if rows.is_empty() => StoreError::NotFound {
                uid: uid.to_owned(),
            },
            Ok(_) => StoreError::Conflict {
                uid: uid.to_owned(),
            },
            Err(e) => e,
        }
    }
}

/// Whether a database host is another machine (not `localhost` or a loopback address): what
/// travels to it crosses a network.
pub(crate) fn is_remote_host(host: &str) -> bool {
    host != "localhost"
        && !host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The software version a migrated schema records.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `(version, state)` of a context row.
pub(crate) fn context_of(row: &Row) -> Option<(String, String)> {
    match (row.first(), row.get(1)) {
        (Some(SqlValue::Text(Some(v))), Some(SqlValue::Text(Some(s)))) => {
            Some((v.clone(), s.clone()))
        }
        _ => None,
    }
}

/// What the migration must do, given the context row: nothing (`None`: this version, ready),
/// or upgrade from the version it names. A schema written by a newer server is refused: an
/// older server would otherwise run its own steps on it and write its older version back.
pub(crate) fn schema_action(
    context: Option<(String, String)>,
    backend: &'static str,
) -> Result<Option<String>> {
    // A database without schema: created from nothing (an empty `from`).
    let Some((version, state)) = context else {
        return Ok(Some(String::new()));
    };
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    if parse(&version) > parse(VERSION) {
        return Err(StoreError::Open {
            backend,
            location: "the context table".into(),
            reason: format!(
                "the schema was written by version {version}, newer than this server ({VERSION}); run version {version} or later"
            ),
        });
    }
    if version == VERSION && state == READY {
        return Ok(None);
    }
    Ok(Some(version))
}

/// Says what the migration is about to do: create the schema, or upgrade it from `from`.
pub(crate) fn log_schema_change(from: &str, backend: &'static str) {
    if from.is_empty() {
        tracing::info!(version = VERSION, backend, "creating the database schema");
    } else {
        tracing::warn!(from = %from, to = VERSION, backend, "upgrading the database schema");
    }
}

/// Grants from `(user_id, operation)` rows sorted by user.
pub(crate) fn grants_from_rows(rows: &[Row]) -> Vec<crate::Grant> {
    let mut out: Vec<crate::Grant> = Vec::new();
    for row in rows {
        let (Some(SqlValue::Text(Some(user))), Some(SqlValue::Text(Some(op)))) =
            (row.first(), row.get(1))
        else {
            continue;
        };
        match out.last_mut() {
            Some(g) if g.user == *user => g.operations.push(op.clone()),
            _ => out.push(crate::Grant {
                user: user.clone(),
                operations: vec![op.clone()],
            }),
        }
    }
    out
}

/// Operations from `(operation)` rows.
pub(crate) fn operations_from_rows(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| match row.first() {
            Some(SqlValue::Text(Some(op))) => Some(op.clone()),
            _ => None,
        })
        .collect()
}

/// Obtained objects from `(uid, owner, state, operation)` rows in creation order.
pub(crate) fn obtained_from_rows(rows: &[Row]) -> Result<Vec<crate::Obtained>> {
    use kmip::enums::KmipEnum;
    let mut out: Vec<crate::Obtained> = Vec::new();
    for row in rows {
        let (
            Some(SqlValue::Text(Some(uid))),
            Some(SqlValue::Text(Some(owner))),
            Some(SqlValue::Int(Some(state))),
            Some(SqlValue::Text(Some(op))),
        ) = (row.first(), row.get(1), row.get(2), row.get(3))
        else {
            continue;
        };
        let state = u32::try_from(*state)
            .ok()
            .and_then(kmip::State::from_u32)
            .ok_or_else(|| StoreError::Corrupt {
                uid: uid.clone(),
                reason: format!("unknown state {state}"),
            })?;
        match out.last_mut() {
            Some(o) if o.uid == *uid => {
                if !o.operations.contains(op) {
                    o.operations.push(op.clone());
                }
            }
            _ => out.push(crate::Obtained {
                uid: uid.clone(),
                owner: owner.clone(),
                state,
                operations: vec![op.clone()],
            }),
        }
    }
    Ok(out)
}

/// The error of a migration stopped by fault injection.
pub(crate) fn interrupted(backend: &'static str, step: usize, name: &str) -> StoreError {
    StoreError::Unavailable {
        backend,
        reason: format!("upgrade interrupted before step {step} ({name}) by fault injection"),
        source: None,
    }
}

fn tx_store_error(e: TxError) -> StoreError {
    match e {
        TxError::Store(s) => s,
        TxError::ZeroRows(OnZeroRows::AlreadyExists(uid)) => StoreError::AlreadyExists { uid },
        TxError::ZeroRows(OnZeroRows::Missing(uid)) => StoreError::NotFound { uid },
        TxError::ZeroRows(OnZeroRows::Ignore) => StoreError::NotFound { uid: String::new() },
    }
}

#[async_trait]
impl ObjectStore for SqlStore {
    fn backend(&self) -> &'static str {
        self.driver.backend()
    }

    async fn create(&self, o: StoredObject) -> Result<()> {
        self.ready().await?;
        let stmts = self.driver.dialect().create(&o);
        self.driver
            .transaction(&stmts)
            .await
            .map_err(tx_store_error)
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        Ok(self.get_shared(uid).await?.map(Arc::unwrap_or_clone))
    }

    async fn get_shared(&self, uid: &str) -> Result<Option<Arc<StoredObject>>> {
        if let Some(object) = self
            .cache
            .as_ref()
            .filter(|_| !crate::wants_fresh())
            .and_then(|c| c.object(uid))
        {
            return Ok(Some(object));
        }
        let generation = self.cache.as_ref().and_then(|c| c.generation());
        let sql = self.driver.dialect().get();
        let rows = self.query(&sql, &[text(uid)], Dialect::GET_KINDS).await?;
        let object = Dialect::decode_get(uid, &rows)?.map(Arc::new);
        if let (Some(cache), Some(generation), Some(object)) = (&self.cache, generation, &object) {
            cache.put_object(generation, &object.uid, object);
        }
        Ok(object)
    }

    async fn update(&self, o: StoredObject) -> Result<()> {
        self.ready().await?;
        let stmts = self.driver.dialect().update(&o);
        match self.change(stmts, Some(&o.uid)).await {
            Ok(()) => Ok(()),
            Err(TxError::ZeroRows(OnZeroRows::Missing(uid))) => {
                Err(self.missing_or_conflict(&uid).await)
            }
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        self.ready().await?;
        let stmts = self.driver.dialect().delete(uid);
        self.change(stmts, Some(uid)).await.map_err(tx_store_error)
    }

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.ready().await?;
        let stmts = self.driver.dialect().grant(uid, user, operations);
        self.change(stmts, Some(uid)).await.map_err(tx_store_error)
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.ready().await?;
        let stmts = self.driver.dialect().revoke_grant(uid, user, operations);
        self.change(stmts, Some(uid)).await.map_err(tx_store_error)
    }

    async fn grants(&self, uid: &str) -> Result<Vec<crate::Grant>> {
        let rows = self
            .query(Dialect::GRANTS, &[text(uid)], &[Kind::Text, Kind::Text])
            .await?;
        Ok(grants_from_rows(&rows))
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        if let Some(rights) = self
            .cache
            .as_ref()
            .filter(|_| !crate::wants_fresh())
            .and_then(|c| c.rights(uid, user))
        {
            return Ok(rights);
        }
        let generation = self.cache.as_ref().and_then(|c| c.generation());
        let rows = self
            .query(Dialect::RIGHTS, &[text(uid), text(user)], &[Kind::Text])
            .await?;
        let rights = operations_from_rows(&rows);
        if let (Some(cache), Some(generation)) = (&self.cache, generation) {
            cache.put_rights(generation, uid, user, &rights);
        }
        Ok(rights)
    }

    async fn obtained(&self, user: &str) -> Result<Vec<crate::Obtained>> {
        let rows = self
            .query(
                Dialect::OBTAINED,
                &[text(user)],
                &[Kind::Text, Kind::Text, Kind::Int, Kind::Text],
            )
            .await?;
        obtained_from_rows(&rows)
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        self.ready().await?;
        let (sql, params) = self.driver.dialect().locate(query);
        let rows = self.driver.query(&sql, &params, OBJECT_KINDS).await?;
        query.select(rows.iter().map(|row| Dialect::decode(row, Vec::new())))
    }

    async fn health(&self) -> Result<()> {
        self.query("SELECT 1", &[], &[Kind::Int]).await.map(|_| ())
    }

    async fn clear(&self) -> Result<()> {
        let stmts = self.driver.dialect().clear();
        self.change(stmts, None).await.map_err(tx_store_error)
    }

    async fn census(&self) -> Result<Option<Vec<crate::Census>>> {
        let rows = self
            .query(
                "SELECT object_type, state, COUNT(*) FROM objects GROUP BY object_type, state",
                &[],
                &[Kind::Int, Kind::Int, Kind::Int],
            )
            .await?;
        Ok(Some(
            rows.iter()
                .filter_map(|row| match row.as_slice() {
                    [
                        SqlValue::Int(Some(t)),
                        SqlValue::Int(Some(s)),
                        SqlValue::Int(Some(n)),
                    ] => crate::census_row(*t, *s, *n),
                    _ => None,
                })
                .collect(),
        ))
    }

    fn pool(&self) -> Option<crate::PoolUse> {
        self.driver.pool()
    }
}
