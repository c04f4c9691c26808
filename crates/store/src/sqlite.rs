//! SQLite backend: one file, WAL journal, `synchronous=FULL` so that a commit is on disk before
//! the call returns. Writes go through one writer thread that commits every write waiting in its
//! queue in a single transaction (group commit): concurrent writers share one fsync instead of
//! weakening durability. Reads use a small pool of connections on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use kmip::model::{Attributes, Item, Object};
use kmip::{KmipEnum, ObjectType, State, Tag, binary};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::cache::{Committed, ObjectCache};
use crate::{LocateQuery, ObjectStore, Result, StoreError, StoredObject};

const BACKEND: &str = "sqlite";
/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
const READERS: usize = 8;

/// The schema steps, in order. Each is idempotent, so an interrupted upgrade can run them all
/// again from the start.
const SCHEMA_STEPS: &[(&str, &str)] = &[
    (
        "objects and tags",
        "CREATE TABLE IF NOT EXISTS objects (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            uid TEXT NOT NULL UNIQUE,
            object_type INTEGER NOT NULL,
            state INTEGER NOT NULL,
            owner TEXT NOT NULL,
            object BLOB,
            attributes BLOB NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE IF NOT EXISTS tags (
            uid TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (uid, tag)
        );",
    ),
    (
        "locate indexes",
        "CREATE INDEX IF NOT EXISTS objects_owner_type_state ON objects (owner, object_type, state);
         CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, uid);",
    ),
];

enum WriteOp {
    Create(StoredObject),
    Update(StoredObject),
    Delete(String),
    Clear,
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<()>>,
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    cache: Arc<ObjectCache>,
    /// Exclusive lock on `<database>.lock`: one server process per SQLite database, which is
    /// what makes the cache safe. Released when the store is dropped or the process dies.
    _lock: std::fs::File,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: e.to_string(),
        source: Some(Box::new(e)),
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `path`, running schema upgrades.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            backend: BACKEND,
            location: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create its directory: {e}")))?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| open_err(format!("cannot open its lock file: {e}")))?;
        lock.try_lock().map_err(|_| {
            open_err("another kms-server process is using this database; stop it or choose another --sqlite-path".into())
        })?;
        let mut conn = open_connection(path).map_err(|e| open_err(e.to_string()))?;
        migrate(&mut conn, None).map_err(|e| open_err(format!("schema upgrade failed: {e}")))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let cache = Arc::new(ObjectCache::default());
        let writer_cache = cache.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &writer_cache))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(Some(tx)),
            readers: Arc::new(Mutex::new(Vec::new())),
            cache,
            _lock: lock,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable {
                backend: BACKEND,
                reason: "writer lock poisoned".into(),
                source: None,
            })?
            .clone()
            .ok_or(StoreError::Unavailable {
                backend: BACKEND,
                reason: "the store is closed".into(),
                source: None,
            })?;
        sender
            .send(Job { op, reply })
            .map_err(|_| StoreError::Unavailable {
                backend: BACKEND,
                reason: "the writer thread stopped".into(),
                source: None,
            })?;
        rx.await.map_err(|_| StoreError::Unavailable {
            backend: BACKEND,
            reason: "the writer thread stopped".into(),
            source: None,
        })?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match conn {
                Some(c) => c,
                None => open_connection(&path).map_err(unavailable)?,
            };
            let result = f(&conn);
            if let Ok(mut r) = readers.lock()
                && r.len() < READERS
            {
                r.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            backend: BACKEND,
            reason: format!("reader task failed: {e}"),
            source: None,
        })?
    }
}

/// The seed's migration, as for the SQL servers (`crate::sql::SqlStore::migrate`): flag
/// `upgrading`, run every idempotent step in order, flag `ready` with this version. An upgrade
/// stopped part-way (`fail_after`, for tests) leaves `upgrading`; the next open runs it again.
fn migrate(conn: &mut Connection, fail_after: Option<usize>) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS context (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version TEXT NOT NULL,
            state TEXT NOT NULL
        );",
    )?;
    let current: Option<(String, String)> = conn
        .query_row("SELECT version, state FROM context WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let version = env!("CARGO_PKG_VERSION");
    if let Some((v, s)) = &current
        && v == version
        && s == "ready"
    {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO context (id, version, state) VALUES (1, ?1, 'upgrading')
         ON CONFLICT (id) DO UPDATE SET state = 'upgrading'",
        params![version],
    )?;
    for (i, (name, sql)) in SCHEMA_STEPS.iter().enumerate() {
        if fail_after == Some(i) {
            return Err(rusqlite::Error::InvalidQuery);
        }
        tracing::info!(step = name, "sqlite schema step");
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.commit()?;
    }
    conn.execute(
        "UPDATE context SET version = ?1, state = 'ready' WHERE id = 1",
        params![version],
    )?;
    Ok(())
}

fn encode_object(o: &Object) -> Vec<u8> {
    binary::encode(&o.to_ttlv(o.tag()))
}

fn encode_attributes(a: &Attributes) -> Vec<u8> {
    binary::encode(&a.to_ttlv(Tag::ATTRIBUTES))
}

fn apply(tx: &Connection, op: &WriteOp) -> Result<()> {
    match op {
        WriteOp::Create(o) => {
            let exists: bool = tx
                .query_row("SELECT 1 FROM objects WHERE uid = ?1", [&o.uid], |_| {
                    Ok(true)
                })
                .optional()
                .map_err(unavailable)?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::AlreadyExists { uid: o.uid.clone() });
            }
            tx.execute(
                "INSERT INTO objects (uid, object_type, state, owner, object, attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    o.uid,
                    o.object_type.to_u32(),
                    o.state.to_u32(),
                    o.owner,
                    o.object.as_ref().map(encode_object),
                    encode_attributes(&o.attributes)
                ],
            )
            .map_err(unavailable)?;
            insert_tags(tx, o)
        }
        WriteOp::Update(o) => {
            let n = tx
                .execute(
                    "UPDATE objects SET object_type = ?2, state = ?3, owner = ?4, object = ?5, attributes = ?6,
                     revision = revision + 1 WHERE uid = ?1 AND revision = ?7",
                    params![
                        o.uid,
                        o.object_type.to_u32(),
                        o.state.to_u32(),
                        o.owner,
                        o.object.as_ref().map(encode_object),
                        encode_attributes(&o.attributes),
                        o.revision as i64
                    ],
                )
                .map_err(unavailable)?;
            if n == 0 {
                let exists = tx
                    .query_row("SELECT 1 FROM objects WHERE uid = ?1", [&o.uid], |_| Ok(()))
                    .optional()
                    .map_err(unavailable)?
                    .is_some();
                return Err(if exists {
                    StoreError::Conflict { uid: o.uid.clone() }
                } else {
                    StoreError::NotFound { uid: o.uid.clone() }
                });
            }
            tx.execute("DELETE FROM tags WHERE uid = ?1", [&o.uid])
                .map_err(unavailable)?;
            insert_tags(tx, o)
        }
        WriteOp::Delete(uid) => {
            tx.execute("DELETE FROM tags WHERE uid = ?1", [uid])
                .map_err(unavailable)?;
            let n = tx
                .execute("DELETE FROM objects WHERE uid = ?1", [uid])
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound { uid: uid.clone() });
            }
            Ok(())
        }
        WriteOp::Clear => {
            tx.execute_batch("DELETE FROM tags; DELETE FROM objects;")
                .map_err(unavailable)?;
            Ok(())
        }
    }
}

fn insert_tags(tx: &Connection, o: &StoredObject) -> Result<()> {
    let mut stmt = tx
        .prepare_cached("INSERT OR IGNORE INTO tags (uid, tag) VALUES (?1, ?2)")
        .map_err(unavailable)?;
    for t in &o.tags {
        stmt.execute(params![o.uid, t]).map_err(unavailable)?;
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, cache: &ObjectCache) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut results: Vec<Result<()>> = Vec::with_capacity(batch.len());
        let commit = (|| -> rusqlite::Result<()> {
            let mut tx = conn.transaction()?;
            for job in &batch {
                // Each write in its own savepoint: one failing write does not undo the others.
                let sp = tx.savepoint()?;
                let r = apply(&sp, &job.op);
                if r.is_ok() {
                    sp.commit()?;
                }
                results.push(r);
            }
            tx.set_drop_behavior(rusqlite::DropBehavior::Commit);
            tx.commit()
        })();
        match commit {
            Ok(()) => {
                // The cache follows the database in commit order, before anyone is answered.
                for (job, r) in batch.iter().zip(&results) {
                    if r.is_ok() {
                        cache.committed(match &job.op {
                            WriteOp::Create(o) => Committed::Upsert(o, 1),
                            WriteOp::Update(o) => Committed::Upsert(o, o.revision + 1),
                            WriteOp::Delete(uid) => Committed::Remove(uid),
                            WriteOp::Clear => Committed::Clear,
                        });
                    }
                }
                for (job, r) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sqlite commit failed");
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Unavailable {
                        backend: BACKEND,
                        reason: format!("commit failed: {e}"),
                        source: None,
                    }));
                }
            }
        }
    }
}

fn decode_row(
    uid: String,
    object_type: u32,
    state: u32,
    owner: String,
    object: Option<Vec<u8>>,
    attributes: Vec<u8>,
    tags: Vec<String>,
) -> Result<StoredObject> {
    let corrupt = |reason: String| StoreError::Corrupt {
        uid: uid.clone(),
        reason,
    };
    let limits = binary::Limits::default();
    let object_type = ObjectType::from_u32(object_type)
        .ok_or_else(|| corrupt(format!("object type {object_type}")))?;
    let state = State::from_u32(state).ok_or_else(|| corrupt(format!("state {state}")))?;
    let object = match object {
        Some(b) => Some(
            binary::decode(&b, &limits)
                .and_then(|t| Object::from_ttlv(&t))
                .map_err(|e| corrupt(format!("object: {e}")))?,
        ),
        None => None,
    };
    let attributes = binary::decode(&attributes, &limits)
        .and_then(|t| Attributes::from_ttlv(&t))
        .map_err(|e| corrupt(format!("attributes: {e}")))?;
    Ok(StoredObject {
        uid,
        object_type,
        object,
        attributes,
        state,
        owner,
        tags,
        revision: 0,
    })
}

fn tags_of(conn: &Connection, uid: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT tag FROM tags WHERE uid = ?1 ORDER BY tag")
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([uid], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)
}

#[async_trait]
impl ObjectStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        self.write(WriteOp::Create(object)).await
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        if let Some(o) = self.cache.get(uid) {
            return Ok(Some(o));
        }
        let generation = self.cache.generation();
        let uid = uid.to_owned();
        let found = self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT object_type, state, owner, object, attributes, revision FROM objects WHERE uid = ?1",
                )
                .map_err(unavailable)?
                .query_row([&uid], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .optional()
                .map_err(unavailable)?;
            let Some((t, s, owner, object, attributes, revision)) = row else { return Ok(None) };
            let tags = tags_of(conn, &uid)?;
            let mut o = decode_row(uid, t, s, owner, object, attributes, tags)?;
            o.revision = revision as u64;
            Ok(Some(o))
        })
        .await?;
        if let Some(o) = &found {
            self.cache.insert_read(generation, o);
        }
        Ok(found)
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        self.write(WriteOp::Update(object)).await
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        self.write(WriteOp::Delete(uid.to_owned())).await
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        let query = query.clone();
        self.read(move |conn| {
            let mut sql = String::from(
                "SELECT uid, object_type, state, owner, attributes FROM objects
                 WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR object_type = ?2) AND (?3 IS NULL OR state = ?3)
                   AND (?4 IS NULL OR uid = ?4) AND (?5 OR state NOT IN (5, 6))",
            );
            let mut tag_params: Vec<String> = Vec::new();
            if !query.tags.is_empty() {
                let placeholders: Vec<String> = (0..query.tags.len()).map(|i| format!("?{}", i + 6)).collect();
                sql.push_str(&format!(
                    " AND uid IN (SELECT uid FROM tags WHERE tag IN ({}) GROUP BY uid HAVING COUNT(DISTINCT tag) = {})",
                    placeholders.join(","),
                    query.tags.len()
                ));
                tag_params = query.tags.clone();
            }
            sql.push_str(" ORDER BY seq");
            let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
            let mut params: Vec<Box<dyn rusqlite::ToSql>> = vec![
                Box::new(query.owner.clone()),
                Box::new(query.object_type.map(|t| t.to_u32())),
                Box::new(query.state.map(|s| s.to_u32())),
                Box::new(query.uid.clone()),
                Box::new(query.include_destroyed),
            ];
            for t in tag_params {
                params.push(Box::new(t));
            }
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, u32>(2)?, r.get::<_, String>(3)?, r.get::<_, Vec<u8>>(4)?))
                })
                .map_err(unavailable)?;
            query.select(rows.map(|row| {
                let (uid, t, s, owner, attributes) = row.map_err(unavailable)?;
                decode_row(uid, t, s, owner, None, attributes, Vec::new())
            }))
        })
        .await
    }

    async fn health(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn clear(&self) -> Result<()> {
        self.write(WriteOp::Clear).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("kms.db")).expect("open");
        crate::conformance::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interrupted_upgrade_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        {
            let store = SqliteStore::open(&path).expect("open");
            for i in 0..3 {
                store
                    .create(crate::conformance::sample(
                        &format!("k{i}"),
                        "alice",
                        &["t"],
                    ))
                    .await
                    .expect("create");
            }
        }
        let mut conn = open_connection(&path).expect("connection");
        conn.execute("UPDATE context SET version = '0.0.1'", [])
            .expect("older version");
        assert!(
            migrate(&mut conn, Some(1)).is_err(),
            "fault injected between steps"
        );
        let state: String = conn
            .query_row("SELECT state FROM context", [], |r| r.get(0))
            .expect("state");
        assert_eq!(state, "upgrading");
        drop(conn);
        let store = SqliteStore::open(&path).expect("the next open resumes the upgrade");
        let conn = open_connection(&path).expect("connection");
        let (version, state): (String, String) = conn
            .query_row("SELECT version, state FROM context", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("context");
        assert_eq!(
            (version.as_str(), state.as_str()),
            (env!("CARGO_PKG_VERSION"), "ready")
        );
        for i in 0..3 {
            assert!(
                store.get(&format!("k{i}")).await.expect("get").is_some(),
                "object intact"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_process_per_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        let first = SqliteStore::open(&path).expect("open");
        let err = SqliteStore::open(&path)
            .err()
            .expect("second open must fail");
        assert!(err.to_string().contains("another kms-server"), "{err}");
        drop(first);
        SqliteStore::open(&path).expect("open after the first is dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        let mut o = crate::conformance::sample("persist", "alice", &["t1"]);
        {
            let store = SqliteStore::open(&path).expect("open");
            store.create(o.clone()).await.expect("create");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        o.revision = 1;
        assert_eq!(store.get("persist").await.expect("get"), Some(o));
    }
}
