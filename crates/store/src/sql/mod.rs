//! The shared SQL backend for PostgreSQL and MySQL/MariaDB: every statement is written once
//! here, with `:N` parameter markers that the [`Dialect`] renders for its driver. A [`Driver`]
//! only runs statements (in transactions, retried on serialization failures and deadlocks) and
//! queries; it knows no KMS logic.
//!
//! There is no in-process cache: several servers may share the database, so every answer comes
//! from it. Updates are optimistic: they apply only to the revision that was read.

mod mysql;
mod postgres;
pub mod testing;

use async_trait::async_trait;
use kmip::model::{Attributes, Item, Object};
use kmip::{KmipEnum, ObjectType, State, Tag, binary};

use crate::{LocateQuery, ObjectStore, Result, StoreError, StoredObject};

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
    pub sql: String,
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
}

/// SQL differences between the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    /// Renders `:N` markers (1-based) as `$N` (PostgreSQL) or `?` with the parameters repeated
    /// in order of appearance (MySQL).
    pub fn render(self, sql: &str, params: &[SqlValue]) -> (String, Vec<SqlValue>) {
        let mut out = String::with_capacity(sql.len());
        let mut ordered = Vec::new();
        let bytes = sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b':' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let n: usize = sql[start..end].parse().unwrap_or(0);
                match self {
                    Dialect::Postgres => out.push_str(&format!("${n}")),
                    Dialect::Mysql => {
                        out.push('?');
                        if let Some(p) = n.checked_sub(1).and_then(|k| params.get(k)) {
                            ordered.push(p.clone());
                        }
                    }
                }
                i = end;
            } else {
                out.push(bytes[i] as char);
                i += 1;
            }
        }
        match self {
            Dialect::Postgres => (out, params.to_vec()),
            Dialect::Mysql => (out, ordered),
        }
    }

    fn insert_ignore(self, table_and_columns: &str, values: &str, conflict: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "INSERT INTO {table_and_columns} VALUES {values} ON CONFLICT ({conflict}) DO NOTHING"
            ),
            Dialect::Mysql => format!("INSERT IGNORE INTO {table_and_columns} VALUES {values}"),
        }
    }

    /// The schema steps, in order; each is idempotent.
    pub fn schema_steps(self) -> Vec<(&'static str, Vec<&'static str>)> {
        match self {
            Dialect::Postgres => vec![
                (
                    "objects and tags",
                    vec![
                        "CREATE TABLE IF NOT EXISTS objects (
                            seq BIGSERIAL PRIMARY KEY,
                            uid TEXT NOT NULL UNIQUE,
                            object_type BIGINT NOT NULL,
                            state BIGINT NOT NULL,
                            owner TEXT NOT NULL,
                            object BYTEA,
                            attributes BYTEA NOT NULL,
                            revision BIGINT NOT NULL DEFAULT 1)",
                        "CREATE TABLE IF NOT EXISTS tags (uid TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (uid, tag))",
                    ],
                ),
                (
                    "locate indexes",
                    vec![
                        "CREATE INDEX IF NOT EXISTS objects_owner_type_state ON objects (owner, object_type, state)",
                        "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, uid)",
                    ],
                ),
            ],
            Dialect::Mysql => vec![
                (
                    "objects and tags",
                    vec![
                        "CREATE TABLE IF NOT EXISTS objects (
                            seq BIGINT AUTO_INCREMENT PRIMARY KEY,
                            uid VARCHAR(255) NOT NULL UNIQUE,
                            object_type BIGINT NOT NULL,
                            state BIGINT NOT NULL,
                            owner VARCHAR(255) NOT NULL,
                            object LONGBLOB,
                            attributes LONGBLOB NOT NULL,
                            revision BIGINT NOT NULL DEFAULT 1) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                        "CREATE TABLE IF NOT EXISTS tags (uid VARCHAR(255) NOT NULL, tag VARCHAR(255) NOT NULL,
                            PRIMARY KEY (uid, tag)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    ],
                ),
                (
                    "locate indexes",
                    vec![
                        "CREATE INDEX objects_owner_type_state ON objects (owner, object_type, state)",
                        "CREATE INDEX tags_tag ON tags (tag, uid)",
                    ],
                ),
            ],
        }
    }

    fn context_table(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS context (id BIGINT PRIMARY KEY, version TEXT NOT NULL, state TEXT NOT NULL)"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS context (id BIGINT PRIMARY KEY, version VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL)"
            }
        }
    }
}

fn int(v: u32) -> SqlValue {
    SqlValue::Int(Some(i64::from(v)))
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(Some(s.to_owned()))
}

/// A store on PostgreSQL or MySQL/MariaDB.
pub struct SqlStore {
    driver: Box<dyn Driver>,
}

/// The schema state, as the `context` table records it.
pub const READY: &str = "ready";
pub const UPGRADING: &str = "upgrading";

impl SqlStore {
    /// Wraps a driver and brings the schema up to date.
    pub async fn open(driver: Box<dyn Driver>) -> Result<SqlStore> {
        let store = SqlStore { driver };
        store.migrate(None).await?;
        Ok(store)
    }

    /// Wraps a driver without touching the schema (tests of the migration).
    pub fn without_migration(driver: Box<dyn Driver>) -> SqlStore {
        SqlStore { driver }
    }

    fn stmt(&self, sql: &str, params: &[SqlValue], on_zero_rows: OnZeroRows) -> Stmt {
        let (sql, params) = self.driver.dialect().render(sql, params);
        Stmt {
            sql,
            params,
            on_zero_rows,
        }
    }

    async fn query(&self, sql: &str, params: &[SqlValue], kinds: &[Kind]) -> Result<Vec<Row>> {
        let (sql, params) = self.driver.dialect().render(sql, params);
        self.driver.query(&sql, &params, kinds).await
    }

    /// The `(version, state)` in the context table, if any.
    pub async fn context(&self) -> Result<Option<(String, String)>> {
        let rows = self
            .query(
                "SELECT version, state FROM context WHERE id = 1",
                &[],
                &[Kind::Text, Kind::Text],
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| match (r.first(), r.get(1)) {
                (Some(SqlValue::Text(Some(v))), Some(SqlValue::Text(Some(s)))) => {
                    Some((v.clone(), s.clone()))
                }
                _ => None,
            }))
    }

    /// Records the schema version and state (`ready` or `upgrading`).
    pub async fn set_context(&self, version: &str, state: &str) -> Result<()> {
        let dialect = self.driver.dialect();
        let upsert = match dialect {
            Dialect::Postgres => {
                "INSERT INTO context (id, version, state) VALUES (1, :1, :2)
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state"
            }
            Dialect::Mysql => {
                "INSERT INTO context (id, version, state) VALUES (1, :1, :2)
                 ON DUPLICATE KEY UPDATE version = VALUES(version), state = VALUES(state)"
            }
        };
        let stmt = self.stmt(upsert, &[text(version), text(state)], OnZeroRows::Ignore);
        self.driver
            .transaction(&[stmt])
            .await
            .map_err(tx_store_error)
    }

    /// Runs the schema upgrade as the seed describes it: flag `upgrading`, run every step in
    /// order, flag `ready` with this version. `fail_after` stops after that many steps, leaving
    /// the database `upgrading` (tests inject the fault this way).
    pub async fn migrate(&self, fail_after: Option<usize>) -> Result<()> {
        self.driver
            .schema(self.driver.dialect().context_table())
            .await?;
        let version = env!("CARGO_PKG_VERSION");
        if let Some((v, s)) = self.context().await?
            && v == version
            && s == READY
        {
            return Ok(());
        }
        let previous = self
            .context()
            .await?
            .map(|(v, _)| v)
            .unwrap_or_else(|| version.to_owned());
        self.set_context(&previous, UPGRADING).await?;
        tracing::warn!(from = %previous, to = version, backend = self.driver.backend(), "upgrading the database schema");
        for (i, (name, statements)) in self.driver.dialect().schema_steps().into_iter().enumerate()
        {
            if fail_after == Some(i) {
                return Err(StoreError::Unavailable {
                    backend: self.driver.backend(),
                    reason: format!(
                        "upgrade interrupted before step {i} ({name}) by fault injection"
                    ),
                    source: None,
                });
            }
            tracing::info!(step = name, "schema step");
            for sql in statements {
                self.driver.schema(sql).await?;
            }
        }
        self.set_context(version, READY).await?;
        Ok(())
    }

    /// Refuses to work while another server upgrades the schema.
    async fn ready(&self) -> Result<()> {
        match self.context().await? {
            Some((_, s)) if s == UPGRADING => Err(StoreError::Upgrading),
            _ => Ok(()),
        }
    }

    fn tag_inserts(&self, o: &StoredObject) -> Vec<Stmt> {
        let sql = self
            .driver
            .dialect()
            .insert_ignore("tags (uid, tag)", "(:1, :2)", "uid, tag");
        o.tags
            .iter()
            .map(|t| self.stmt(&sql, &[text(&o.uid), text(t)], OnZeroRows::Ignore))
            .collect()
    }

    async fn missing_or_conflict(&self, uid: &str) -> StoreError {
        match self
            .query(
                "SELECT 1 FROM objects WHERE uid = :1",
                &[text(uid)],
                &[Kind::Int],
            )
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

    fn decode(&self, row: &Row, tags: Vec<String>) -> Result<StoredObject> {
        let limits = binary::Limits::default();
        let get_int = |i: usize| match row.get(i) {
            Some(SqlValue::Int(Some(v))) => Some(*v),
            _ => None,
        };
        let uid = match row.first() {
            Some(SqlValue::Text(Some(u))) => u.clone(),
            _ => {
                return Err(StoreError::Corrupt {
                    uid: "?".into(),
                    reason: "row without uid".into(),
                });
            }
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            uid: uid.clone(),
            reason,
        };
        let object_type = get_int(1)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(ObjectType::from_u32)
            .ok_or_else(|| corrupt("object type".into()))?;
        let state = get_int(2)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(State::from_u32)
            .ok_or_else(|| corrupt("state".into()))?;
        let owner = match row.get(3) {
            Some(SqlValue::Text(Some(o))) => o.clone(),
            _ => return Err(corrupt("owner".into())),
        };
        let object = match row.get(4) {
            Some(SqlValue::Bytes(Some(b))) => Some(
                binary::decode(b, &limits)
                    .and_then(|t| Object::from_ttlv(&t))
                    .map_err(|e| corrupt(format!("object: {e}")))?,
            ),
            _ => None,
        };
        let attributes = match row.get(5) {
            Some(SqlValue::Bytes(Some(b))) => binary::decode(b, &limits)
                .and_then(|t| Attributes::from_ttlv(&t))
                .map_err(|e| corrupt(format!("attributes: {e}")))?,
            _ => return Err(corrupt("attributes".into())),
        };
        let revision = get_int(6)
            .and_then(|r| u64::try_from(r).ok())
            .ok_or_else(|| corrupt("revision".into()))?;
        Ok(StoredObject {
            uid,
            object_type,
            object,
            attributes,
            state,
            owner,
            tags,
            revision,
        })
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

fn encode_object(o: &Object) -> Vec<u8> {
    binary::encode(&o.to_ttlv(o.tag()))
}

fn encode_attributes(a: &Attributes) -> Vec<u8> {
    binary::encode(&a.to_ttlv(Tag::ATTRIBUTES))
}

const OBJECT_COLUMNS: &str = "uid, object_type, state, owner, object, attributes, revision";
const OBJECT_KINDS: &[Kind] = &[
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::Bytes,
    Kind::Bytes,
    Kind::Int,
];

#[async_trait]
impl ObjectStore for SqlStore {
    fn backend(&self) -> &'static str {
        self.driver.backend()
    }

    async fn create(&self, o: StoredObject) -> Result<()> {
        self.ready().await?;
        let sql = self.driver.dialect().insert_ignore(
            "objects (uid, object_type, state, owner, object, attributes, revision)",
            "(:1, :2, :3, :4, :5, :6, 1)",
            "uid",
        );
        let mut stmts = vec![self.stmt(
            &sql,
            &[
                text(&o.uid),
                int(o.object_type.to_u32()),
                int(o.state.to_u32()),
                text(&o.owner),
                SqlValue::Bytes(o.object.as_ref().map(encode_object)),
                SqlValue::Bytes(Some(encode_attributes(&o.attributes))),
            ],
            OnZeroRows::AlreadyExists(o.uid.clone()),
        )];
        stmts.extend(self.tag_inserts(&o));
        self.driver
            .transaction(&stmts)
            .await
            .map_err(tx_store_error)
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        // One round trip: the schema state, the object (if any) and its tags as a JSON array.
        let tags_json = match self.driver.dialect() {
            Dialect::Postgres => "(SELECT json_agg(t.tag)::text FROM tags t WHERE t.uid = o.uid)",
            Dialect::Mysql => "(SELECT JSON_ARRAYAGG(t.tag) FROM tags t WHERE t.uid = o.uid)",
        };
        let sql = format!(
            "SELECT c.state, o.uid, o.object_type, o.state, o.owner, o.object, o.attributes, o.revision, {tags_json}
             FROM context c LEFT JOIN objects o ON o.uid = :1 WHERE c.id = 1"
        );
        let mut kinds = vec![Kind::Text];
        kinds.extend_from_slice(OBJECT_KINDS);
        kinds.push(Kind::Text);
        let rows = self.query(&sql, &[text(uid)], &kinds).await?;
        let Some(row) = rows.first() else {
            // No context row: the schema was never set up by this server's migration.
            return Err(StoreError::Upgrading);
        };
        if matches!(row.first(), Some(SqlValue::Text(Some(s))) if s == UPGRADING) {
            return Err(StoreError::Upgrading);
        }
        if matches!(row.get(1), Some(SqlValue::Text(None)) | None) {
            return Ok(None);
        }
        let mut tags: Vec<String> = match row.get(8) {
            Some(SqlValue::Text(Some(j))) => {
                serde_json::from_str(j).map_err(|e| StoreError::Corrupt {
                    uid: uid.to_owned(),
                    reason: format!("tags: {e}"),
                })?
            }
            _ => Vec::new(),
        };
        tags.sort();
        self.decode(&row[1..8].to_vec(), tags).map(Some)
    }

    async fn update(&self, o: StoredObject) -> Result<()> {
        self.ready().await?;
        let mut stmts = vec![
            self.stmt(
                "UPDATE objects SET object_type = :2, state = :3, owner = :4, object = :5, attributes = :6,
                 revision = revision + 1 WHERE uid = :1 AND revision = :7",
                &[
                    text(&o.uid),
                    int(o.object_type.to_u32()),
                    int(o.state.to_u32()),
                    text(&o.owner),
                    SqlValue::Bytes(o.object.as_ref().map(encode_object)),
                    SqlValue::Bytes(Some(encode_attributes(&o.attributes))),
                    SqlValue::Int(Some(o.revision as i64)),
                ],
                OnZeroRows::Missing(o.uid.clone()),
            ),
            self.stmt("DELETE FROM tags WHERE uid = :1", &[text(&o.uid)], OnZeroRows::Ignore),
        ];
        stmts.extend(self.tag_inserts(&o));
        match self.driver.transaction(&stmts).await {
            Ok(()) => Ok(()),
            Err(TxError::ZeroRows(OnZeroRows::Missing(uid))) => {
                Err(self.missing_or_conflict(&uid).await)
            }
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        self.ready().await?;
        let stmts = vec![
            self.stmt(
                "DELETE FROM tags WHERE uid = :1",
                &[text(uid)],
                OnZeroRows::Ignore,
            ),
            self.stmt(
                "DELETE FROM objects WHERE uid = :1",
                &[text(uid)],
                OnZeroRows::Missing(uid.to_owned()),
            ),
        ];
        self.driver
            .transaction(&stmts)
            .await
            .map_err(tx_store_error)
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        self.ready().await?;
        // PostgreSQL types each parameter from its first use: the column comparison comes first.
        let mut sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects
             WHERE (owner = :1 OR :1 IS NULL) AND (object_type = :2 OR :2 IS NULL) AND (state = :3 OR :3 IS NULL)
               AND (uid = :4 OR :4 IS NULL) AND (:5 OR state NOT IN (5, 6))"
        );
        let mut params = vec![
            SqlValue::Text(query.owner.clone()),
            SqlValue::Int(query.object_type.map(|t| i64::from(t.to_u32()))),
            SqlValue::Int(query.state.map(|s| i64::from(s.to_u32()))),
            SqlValue::Text(query.uid.clone()),
            SqlValue::Bool(query.include_destroyed),
        ];
        if !query.tags.is_empty() {
            let markers: Vec<String> = (0..query.tags.len())
                .map(|i| format!(":{}", i + 6))
                .collect();
            sql.push_str(&format!(
                " AND uid IN (SELECT uid FROM tags WHERE tag IN ({}) GROUP BY uid HAVING COUNT(DISTINCT tag) = {})",
                markers.join(", "),
                query.tags.len()
            ));
            params.extend(query.tags.iter().map(|t| text(t)));
        }
        sql.push_str(" ORDER BY seq");
        let rows = self.query(&sql, &params, OBJECT_KINDS).await?;
        query.select(rows.iter().map(|row| self.decode(row, Vec::new())))
    }

    async fn health(&self) -> Result<()> {
        self.query("SELECT 1", &[], &[Kind::Int]).await.map(|_| ())
    }

    async fn clear(&self) -> Result<()> {
        let stmts = vec![
            self.stmt("DELETE FROM tags", &[], OnZeroRows::Ignore),
            self.stmt("DELETE FROM objects", &[], OnZeroRows::Ignore),
        ];
        self.driver
            .transaction(&stmts)
            .await
            .map_err(tx_store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markers() {
        let p = [text("a"), SqlValue::Bool(true)];
        let (pg, pp) = Dialect::Postgres.render("x = :1 OR (:1 IS NULL AND :2)", &p);
        assert_eq!(pg, "x = $1 OR ($1 IS NULL AND $2)");
        assert_eq!(pp, p.to_vec());
        let (my, mp) = Dialect::Mysql.render("x = :1 OR (:1 IS NULL AND :2)", &p);
        assert_eq!(my, "x = ? OR (? IS NULL AND ?)");
        assert_eq!(mp, vec![text("a"), text("a"), SqlValue::Bool(true)]);
    }
}
