//! SQLite backend: one file, WAL journal, `synchronous=FULL` so that a commit is on disk before
//! the call returns. Writes go through one writer thread that commits every write waiting in its
//! queue in a single transaction (group commit): concurrent writers share one fsync instead of
//! weakening durability. Reads use a small pool of connections on the blocking thread pool.
//! Checkpoints (copying the WAL back into the database, two more fsyncs and every page the WAL
//! holds) run on a thread of their own with their own connection, so that commits never wait
//! for them; the writer restarts the WAL itself only when it has grown past [`WAL_RESTART_AT`].
//!
//! The statements, schema steps and row decoding are the shared SQL layer's
//! ([`Dialect::Sqlite`]); this module only runs them on its writer thread and readers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::cache::{Committed, ObjectCache};
use crate::sql::{
    Dialect, Kind, OnZeroRows, READY, Row, SqlValue, Stmt, UPGRADING, VERSION, context_of,
    schema_action, text,
};
use crate::{LocateQuery, ObjectStore, Result, StoreError, StoredObject};

const BACKEND: &str = "sqlite";
/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
const READERS: usize = 8;
/// WAL frames (pages) past which the writer restarts the WAL from its start after a commit (the
/// checkpointer has copied nearly all of them back by then): about 64 MiB.
const WAL_RESTART_AT: i64 = 16 * 1024;
/// Least time between two background checkpoints.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

const DIALECT: Dialect = Dialect::Sqlite;

enum WriteOp {
    Create(StoredObject),
    Update(StoredObject),
    Delete(String),
    Clear,
    /// Grants or revocations of rights: the cache holds no grants.
    Grants(Vec<Stmt>),
    /// Re-encrypts the database under a new SQLCipher key (alone, outside any transaction).
    Rekey(CipherKey),
}

struct Job {
    /// What the cache must learn when the write commits.
    op: WriteOp,
    stmts: Vec<Stmt>,
    reply: oneshot::Sender<Answer>,
}

/// The writer's answer to a job: its result, and what the job held, handed back so that the
/// waiting task frees it (in its own malloc arena) rather than the writer thread, whose time
/// bounds the rate of commits.
struct Answer(
    Result<()>,
    #[allow(dead_code, reason = "only dropped")] Spent,
);

/// What a job held, to be dropped by the task that waits for it.
#[allow(dead_code, reason = "only dropped")]
struct Spent(WriteOp, Vec<Stmt>);

impl Job {
    fn answer(self, result: Result<()>) {
        let _ = self.reply.send(Answer(result, Spent(self.op, self.stmts)));
    }
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    /// Joined when the store is dropped, so that the database is closed (its connection's
    /// SQLCipher state freed) before the lock is released or the process exits.
    writer_thread: Option<std::thread::JoinHandle<()>>,
    /// The background checkpointer; it stops when the writer does, and is joined after it.
    checkpoint_thread: Option<std::thread::JoinHandle<()>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    cache: Arc<ObjectCache>,
    /// The SQLCipher key of an encrypted database (`sqlite-enc`). Reads hold it shared;
    /// re-keying holds it exclusively, so that no reader sees pages under a key it lacks.
    key: Arc<tokio::sync::RwLock<Option<CipherKey>>>,
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

/// The SQLCipher key of an encrypted database, as `PRAGMA key` takes a raw key: `x'<hex>'`.
#[derive(Clone)]
pub(crate) struct CipherKey(Arc<zeroize::Zeroizing<String>>);

impl CipherKey {
    pub(crate) fn raw(key: &[u8; 32]) -> CipherKey {
        let mut text = zeroize::Zeroizing::new(String::with_capacity(67));
        text.push_str("x'");
        for b in key {
            text.push_str(&format!("{b:02X}"));
        }
        text.push('\'');
        CipherKey(Arc::new(text))
    }
}

fn open_connection(path: &Path, key: Option<&CipherKey>) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    if let Some(key) = key {
        // First statement on the connection: SQLCipher derives nothing from a raw key.
        conn.pragma_update(None, "key", key.0.as_str())?;
        // SQLCipher writes its own errors (a wrong key: "hmac check failed") to stderr, outside
        // the server's logs; the store reports a wrong key as its own error instead.
        conn.pragma_update(None, "cipher_log_level", "NONE")?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Freed content (a destroyed key's material) is overwritten with zeros, not left in
    // free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// Owner-only permissions for what holds key material: the directory 0700, the database, its
/// journal files and lock file 0600, whatever the umask. SQLite gives `-wal` and `-shm` the
/// database file's mode. An existing database readable by others is left as it is, with a
/// warning (the operator may have a reason, e.g. a backup group).
#[cfg(unix)]
fn private_files(dir: Option<&Path>, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = dir
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Some(warning) = readable_by_others(path)? {
                tracing::warn!("{warning}");
            }
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_files(dir: Option<&Path>, _path: &Path) -> std::io::Result<()> {
    match dir {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// The start-up warning for a database file (or its directory) that others may read.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    for p in [
        Some(path),
        path.parent().filter(|d| !d.as_os_str().is_empty()),
    ]
    .into_iter()
    .flatten()
    {
        let mode = std::fs::metadata(p)?.permissions().mode();
        if mode & 0o077 != 0 {
            open.push(format!("{} (mode {:o})", p.display(), mode & 0o777));
        }
    }
    Ok((!open.is_empty()).then(|| {
        format!(
            "the key database is readable by other users: {}; restrict it with chmod 700 on the directory and chmod 600 on kms.db*",
            open.join(", ")
        )
    }))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `path`, running schema upgrades.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, None)
    }

    /// Opens the SQLCipher database `path` with `key`, creating it when `create`. A missing
    /// file (unless `create`) or a wrong key fails with [`StoreError::NotFound`] before anything
    /// is created or locked.
    pub(crate) fn open_encrypted(
        path: &Path,
        key: &CipherKey,
        create: bool,
    ) -> Result<SqliteStore> {
        let refused = || StoreError::NotFound {
            uid: "the encrypted database".into(),
        };
        if !create {
            if !path.is_file() {
                return Err(refused());
            }
            let conn = open_connection(path, Some(key)).map_err(|_| refused())?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|_| refused())?;
        }
        Self::open_with(path, Some(key.clone()))
    }

    fn open_with(path: &Path, key: Option<CipherKey>) -> Result<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            backend: BACKEND,
            location: path.display().to_string(),
            reason,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        private_files(dir, path)
            .map_err(|e| open_err(format!("cannot create it or its directory: {e}")))?;
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let mut lock_options = std::fs::OpenOptions::new();
        lock_options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut lock_options, 0o600);
        let lock = lock_options
            .open(&lock_path)
            .map_err(|e| open_err(format!("cannot open its lock file: {e}")))?;
        lock.try_lock().map_err(|_| {
            open_err("another kms-server process is using this database; stop it or choose another --sqlite-path".into())
        })?;
        let mut conn = open_connection(path, key.as_ref()).map_err(|e| open_err(e.to_string()))?;
        migrate(&mut conn, None).map_err(|e| match e {
            e @ StoreError::Open { .. } => e,
            e => open_err(format!("schema upgrade failed: {e}")),
        })?;
        // Checkpoints are the checkpointer's (see the module).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| open_err(e.to_string()))?;
        let key = Arc::new(tokio::sync::RwLock::new(key));
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let restart = Arc::new(AtomicBool::new(false));
        let checkpointing = Arc::new(Mutex::new(()));
        let checkpoint_thread = {
            let (path, key, restart, checkpointing) = (
                path.to_owned(),
                key.clone(),
                restart.clone(),
                checkpointing.clone(),
            );
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_loop(&path, &key, &nudged, &restart, &checkpointing))
                .map_err(|e| open_err(format!("cannot start the checkpoint thread: {e}")))?
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let cache = Arc::new(ObjectCache::default());
        let writer_cache = cache.clone();
        let writer = Writer {
            cache: writer_cache,
            nudge,
            restart,
            checkpointing,
        };
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &writer))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(Some(tx)),
            writer_thread: Some(writer_thread),
            checkpoint_thread: Some(checkpoint_thread),
            readers: Arc::new(Mutex::new(Vec::new())),
            cache,
            key,
            _lock: lock,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<()> {
        let stmts = match &op {
            WriteOp::Create(o) => DIALECT.create(o),
            WriteOp::Update(o) => DIALECT.update(o),
            WriteOp::Delete(uid) => DIALECT.delete(uid),
            WriteOp::Clear => DIALECT.clear(),
            WriteOp::Grants(stmts) => stmts.clone(),
            WriteOp::Rekey(_) => Vec::new(),
        };
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
            .send(Job { op, stmts, reply })
            .map_err(|_| StoreError::Unavailable {
                backend: BACKEND,
                reason: "the writer thread stopped".into(),
                source: None,
            })?;
        rx.await
            .map_err(|_| StoreError::Unavailable {
                backend: BACKEND,
                reason: "the writer thread stopped".into(),
                source: None,
            })?
            .0
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || {
            let key = key.blocking_read();
            let conn = readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match conn {
                Some(c) => c,
                None => open_connection(&path, key.as_ref()).map_err(unavailable)?,
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

impl Drop for SqliteStore {
    /// Closes the queue and waits for the writer thread to commit what it holds and close its
    /// connection. A detached writer could still be closing an SQLCipher database while the
    /// process exits and libcrypto's exit handler frees what it uses (a crash at exit), or
    /// while a reopened store of the same file takes the lock.
    fn drop(&mut self) {
        match self.writer.get_mut() {
            Ok(sender) => drop(sender.take()),
            Err(poisoned) => drop(poisoned.into_inner().take()),
        }
        if let Some(thread) = self.writer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the SQLite writer thread panicked");
        }
        if let Some(thread) = self.checkpoint_thread.take()
            && thread.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the SQLite checkpoint thread panicked");
        }
    }
}

impl SqliteStore {
    /// Re-encrypts an encrypted database under `new` while it serves: writes queue behind the
    /// re-keying (one SQLCipher transaction: after a crash the file is under the old key or the
    /// new one, never half), reads wait for it, and the readers reopen under the new key.
    pub(crate) async fn rekey(&self, new: CipherKey) -> Result<()> {
        let mut key = self.key.write().await;
        if key.is_none() {
            return Err(StoreError::Query {
                backend: BACKEND,
                reason: "this database is not encrypted".into(),
            });
        }
        tracing::info!(database = %self.path.display(), "re-encrypting the database under a new key");
        self.write(WriteOp::Rekey(new.clone())).await?;
        if let Ok(mut r) = self.readers.lock() {
            r.clear();
        }
        *key = Some(new);
        tracing::info!(database = %self.path.display(), "database re-encrypted");
        Ok(())
    }
}

/// Runs a re-keying job alone: a checkpoint, then `PRAGMA rekey` (SQLCipher rewrites every page
/// in one transaction).
fn rekey(conn: &Connection, key: &CipherKey) -> Result<()> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(unavailable)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(unavailable)?;
    tracing::info!(pages, "re-keying: rewriting every page under the new key");
    conn.pragma_update(None, "rekey", key.0.as_str())
        .map_err(unavailable)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(unavailable)?;
    Ok(())
}

/// The seed's migration, as for the SQL servers (`crate::sql::SqlStore::migrate`), with the
/// same statements and decision: flag `upgrading`, run every idempotent step in order, flag
/// `ready` with this version. An upgrade stopped part-way (`fail_after`, for tests) leaves
/// `upgrading`; the next open runs it again.
fn migrate(conn: &mut Connection, fail_after: Option<usize>) -> Result<()> {
    conn.execute_batch(DIALECT.context_table())
        .map_err(unavailable)?;
    let context = query(conn, Dialect::CONTEXT, &[], &[Kind::Text, Kind::Text])?
        .first()
        .and_then(context_of);
    let Some(from) = schema_action(context, BACKEND)? else {
        return Ok(());
    };
    crate::sql::log_schema_change(&from, BACKEND);
    // The version recorded while upgrading is the target: an older server that starts meanwhile
    // sees a newer schema and refuses, rather than running its own steps.
    run(conn, &[DIALECT.set_context(VERSION, UPGRADING)])?;
    for (i, (name, statements)) in DIALECT.schema_steps().into_iter().enumerate() {
        if fail_after == Some(i) {
            return Err(crate::sql::interrupted(BACKEND, i, name));
        }
        tracing::info!(step = name, "sqlite schema step");
        let tx = conn.transaction().map_err(unavailable)?;
        for sql in statements {
            tx.execute_batch(sql).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
    }
    run(conn, &[DIALECT.set_context(VERSION, READY)])
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            SqlValue::Int(v) => v.to_sql()?,
            SqlValue::Text(Some(t)) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            SqlValue::Bytes(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            SqlValue::Text(None) | SqlValue::Bytes(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Bool(b) => b.to_sql()?,
        })
    }
}

/// Runs a query (already rendered for SQLite) and reads its rows as `kinds`.
fn query(conn: &Connection, sql: &str, params: &[SqlValue], kinds: &[Kind]) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    Ok(match kind {
                        Kind::Int => SqlValue::Int(r.get(i)?),
                        Kind::Text => SqlValue::Text(r.get(i)?),
                        Kind::Bytes => SqlValue::Bytes(r.get(i)?),
                    })
                })
                .collect::<rusqlite::Result<Row>>()
        })
        .map_err(unavailable)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)
}

/// Runs the statements of one write; a statement's zero-row guard becomes the store's error.
fn run(conn: &Connection, stmts: &[Stmt]) -> Result<()> {
    for stmt in stmts {
        let n = conn
            .prepare_cached(&stmt.sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(stmt.params.iter())))
            .map_err(unavailable)?;
        if n > 0 {
            continue;
        }
        match &stmt.on_zero_rows {
            OnZeroRows::Ignore => {}
            OnZeroRows::AlreadyExists(uid) => {
                return Err(StoreError::AlreadyExists { uid: uid.clone() });
            }
            OnZeroRows::Missing(uid) => {
                let (exists, params) =
                    DIALECT.render(Dialect::EXISTS, &[SqlValue::Text(Some(uid.clone()))]);
                let found = !query(conn, &exists, &params, &[Kind::Int])?.is_empty();
                return Err(if found {
                    StoreError::Conflict { uid: uid.clone() }
                } else {
                    StoreError::NotFound { uid: uid.clone() }
                });
            }
        }
    }
    Ok(())
}

/// What the writer thread holds besides its connection.
struct Writer {
    cache: Arc<ObjectCache>,
    /// Wakes the checkpointer after a commit (a full channel: it is already awake).
    nudge: mpsc::SyncSender<()>,
    /// Set by the checkpointer when the WAL is long: the writer restarts it.
    restart: Arc<AtomicBool>,
    /// Held by whoever checkpoints: SQLite answers SQLITE_BUSY at once, without waiting, to a
    /// checkpoint asked while another connection runs one, and the checkpoint after a destroy
    /// must not be skipped.
    checkpointing: Arc<Mutex<()>>,
}

/// The checkpointer: after commits (at most every [`CHECKPOINT_EVERY`]), copies what the WAL
/// holds back into the database with a PASSIVE checkpoint, which waits for no reader and no
/// writer, on a connection of its own (opened again when the database is re-keyed: it holds the
/// key shared while it works, so no checkpoint runs during a re-keying). Stops when the writer
/// does.
fn checkpoint_loop(
    path: &Path,
    key: &tokio::sync::RwLock<Option<CipherKey>>,
    nudged: &mpsc::Receiver<()>,
    restart: &AtomicBool,
    checkpointing: &Mutex<()>,
) {
    let mut conn: Option<(Connection, Option<Arc<zeroize::Zeroizing<String>>>)> = None;
    while nudged.recv().is_ok() {
        {
            let key = key.blocking_read();
            let current = key.as_ref().map(|k| k.0.clone());
            let same_key = |k: &Option<Arc<zeroize::Zeroizing<String>>>| match (k, &current) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            if !conn.as_ref().is_some_and(|(_, k)| same_key(k)) {
                conn = open_connection(path, key.as_ref())
                    .map_err(|e| tracing::warn!(error = %e, "cannot open the checkpoint connection; the writer checkpoints when the WAL is long"))
                    .ok()
                    .map(|c| (c, current.clone()));
            }
            if let Some((c, _)) = &conn {
                let _checkpointing = checkpointing
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    Ok(frames) if frames >= WAL_RESTART_AT => {
                        restart.store(true, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "background checkpoint failed");
                        conn = None;
                    }
                }
            } else {
                restart.store(true, Ordering::Relaxed);
            }
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// Runs a batch of jobs in one transaction and commits it, answering each job's result. Each
/// job's failure must leave the others' writes in place: the jobs first run one after another
/// in the transaction alone, which is what nearly always happens; when one of them fails, the
/// transaction is rolled back and the batch runs again with each job in a savepoint of its
/// own, so that a failing job undoes only its own statements. (A savepoint per job, always,
/// cost two parsed statements and a copy of every page it touched into the sub-journal: about
/// a tenth of the writer's time under a load of creates.)
fn commit_batch(conn: &mut Connection, batch: &[Job]) -> (rusqlite::Result<()>, Vec<Result<()>>) {
    let mut results: Vec<Result<()>> = Vec::with_capacity(batch.len());
    let optimistic = (|| -> rusqlite::Result<bool> {
        let tx = conn.transaction()?;
        for job in batch {
            let r = run(&tx, &job.stmts);
            let failed = r.is_err();
            results.push(r);
            if failed {
                // Dropped: rolled back.
                return Ok(false);
            }
        }
        tx.commit().map(|()| true)
    })();
    match optimistic {
        Ok(true) => return (Ok(()), results),
        Ok(false) => results.clear(),
        Err(e) => return (Err(e), results),
    }
    let commit = (|| -> rusqlite::Result<()> {
        let mut tx = conn.transaction()?;
        for job in batch {
            // Each write in its own savepoint: one failing write does not undo the others.
            let sp = tx.savepoint()?;
            let r = run(&sp, &job.stmts);
            if r.is_ok() {
                sp.commit()?;
            }
            results.push(r);
        }
        tx.set_drop_behavior(rusqlite::DropBehavior::Commit);
        tx.commit()
    })();
    (commit, results)
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, writer: &Writer) {
    let cache = &writer.cache;
    // A re-keying received while a batch was being gathered waits for the next round.
    let mut held: Option<Job> = None;
    while let Some(first) = held.take().or_else(|| rx.recv().ok()) {
        if let WriteOp::Rekey(key) = &first.op {
            let result = rekey(&conn, key);
            first.answer(result);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) if matches!(job.op, WriteOp::Rekey(_)) => {
                    held = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (commit, results) = commit_batch(&mut conn, &batch);
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
                            WriteOp::Grants(_) | WriteOp::Rekey(_) => continue,
                        });
                    }
                }
                // Key material removed (Destroy, delete): the old pages still sit in the WAL
                // until a checkpoint copies the zeroed ones back; do it now and truncate the WAL,
                // so that a destroyed key is gone from disk when Destroy answers.
                let removed_material = batch.iter().zip(&results).any(|(job, r)| {
                    r.is_ok()
                        && matches!(&job.op,
                            WriteOp::Update(o) if o.object.is_none())
                        || matches!(&job.op, WriteOp::Delete(_) | WriteOp::Clear)
                });
                let _ = writer.nudge.try_send(());
                // The WAL grew long (the checkpointer falls behind, or readers kept it from
                // being restarted): start it over, which copies what is left and waits for the
                // readers. A destroy below truncates it anyway.
                let checkpointing = || {
                    writer
                        .checkpointing
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                };
                if !removed_material && writer.restart.swap(false, Ordering::Relaxed) {
                    let _checkpointing = checkpointing();
                    if let Err(e) =
                        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
                    {
                        tracing::warn!(error = %e, "restarting the WAL failed; it is retried later");
                    }
                }
                if removed_material {
                    let _checkpointing = checkpointing();
                    // The first column says whether a reader (a backup, say) kept the
                    // checkpoint from finishing.
                    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        r.get::<_, i64>(0)
                    }) {
                        Ok(0) => {}
                        Ok(_) => tracing::warn!(
                            "a reader kept the checkpoint after a destroy from finishing: the destroyed key's old pages stay in the WAL until the next checkpoint"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpoint after removing key material failed; it happens at the next one")
                        }
                    }
                }
                for (job, r) in batch.into_iter().zip(results) {
                    job.answer(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sqlite commit failed");
                for job in batch {
                    job.answer(Err(StoreError::Unavailable {
                        backend: BACKEND,
                        reason: format!("commit failed: {e}"),
                        source: None,
                    }));
                }
            }
        }
    }
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
        Ok(self.get_shared(uid).await?.map(Arc::unwrap_or_clone))
    }

    async fn get_shared(&self, uid: &str) -> Result<Option<Arc<StoredObject>>> {
        if let Some(o) = self.cache.get(uid) {
            return Ok(Some(o));
        }
        let generation = self.cache.generation();
        let uid = uid.to_owned();
        let found = self
            .read(move |conn| {
                let (sql, params) =
                    DIALECT.render(&DIALECT.get(), &[SqlValue::Text(Some(uid.clone()))]);
                let rows = query(conn, &sql, &params, Dialect::GET_KINDS)?;
                Dialect::decode_get(&uid, &rows)
            })
            .await?
            .map(Arc::new);
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

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.write(WriteOp::Grants(DIALECT.grant(uid, user, operations)))
            .await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.write(WriteOp::Grants(DIALECT.revoke_grant(uid, user, operations)))
            .await
    }

    async fn grants(&self, uid: &str) -> Result<Vec<crate::Grant>> {
        let uid = uid.to_owned();
        self.read(move |conn| {
            let (sql, params) = DIALECT.render(Dialect::GRANTS, &[text(&uid)]);
            let rows = query(conn, &sql, &params, &[Kind::Text, Kind::Text])?;
            Ok(crate::sql::grants_from_rows(&rows))
        })
        .await
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        let (uid, user) = (uid.to_owned(), user.to_owned());
        self.read(move |conn| {
            let (sql, params) = DIALECT.render(Dialect::RIGHTS, &[text(&uid), text(&user)]);
            let rows = query(conn, &sql, &params, &[Kind::Text])?;
            Ok(crate::sql::operations_from_rows(&rows))
        })
        .await
    }

    async fn obtained(&self, user: &str) -> Result<Vec<crate::Obtained>> {
        let user = user.to_owned();
        self.read(move |conn| {
            let (sql, params) = DIALECT.render(Dialect::OBTAINED, &[text(&user)]);
            let rows = query(
                conn,
                &sql,
                &params,
                &[Kind::Text, Kind::Text, Kind::Int, Kind::Text],
            )?;
            crate::sql::obtained_from_rows(&rows)
        })
        .await
    }

    async fn locate(&self, locate: &LocateQuery) -> Result<Vec<String>> {
        let locate = locate.clone();
        self.read(move |conn| {
            let (sql, params) = DIALECT.locate(&locate);
            let rows = query(conn, &sql, &params, crate::sql::OBJECT_KINDS)?;
            locate.select(rows.iter().map(|row| Dialect::decode(row, Vec::new())))
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

    async fn census(&self) -> Result<Option<Vec<crate::Census>>> {
        self.read(|conn| {
            // Counted here over one scan of the (owner, object_type, state) index rather than
            // with GROUP BY, whose sort SQLite keeps in memory: about 49 MiB for a million rows.
            let mut stmt = conn
                .prepare("SELECT object_type, state FROM objects")
                .map_err(unavailable)?;
            let mut rows = stmt.query([]).map_err(unavailable)?;
            let mut counts: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let key = (
                    row.get::<_, i64>(0).map_err(unavailable)?,
                    row.get::<_, i64>(1).map_err(unavailable)?,
                );
                *counts.entry(key).or_default() += 1;
            }
            Ok(Some(
                counts
                    .into_iter()
                    .filter_map(|((t, s), n)| crate::census_row(t, s, n))
                    .collect(),
            ))
        })
        .await
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

    /// The census counts what is stored by type and state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn census_counts_by_type_and_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("kms.db")).expect("open");
        for (uid, state) in [
            ("a", kmip::State::Active),
            ("b", kmip::State::Active),
            ("c", kmip::State::PreActive),
        ] {
            let mut o = crate::conformance::sample(uid, "alice", &[]);
            o.state = state;
            store.create(o).await.expect("create");
        }
        let mut census = store.census().await.expect("census").expect("counted");
        census.sort_by_key(|c| c.count);
        let counts: Vec<_> = census.iter().map(|c| (c.state, c.count)).collect();
        assert_eq!(
            counts,
            [(kmip::State::PreActive, 1), (kmip::State::Active, 2)]
        );
        assert!(
            census
                .iter()
                .all(|c| c.object_type == kmip::ObjectType::SymmetricKey)
        );
    }

    /// Writes that arrive together are committed together; one that fails (a create of a uid
    /// that exists) is refused alone, and every other write of its batch is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_in_a_batch_undoes_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("kms.db")).expect("open"));
        store
            .create(crate::conformance::sample("taken", "alice", &[]))
            .await
            .expect("create");
        for round in 0..5 {
            // Three fresh uids for one taken, all sent at once so that they queue behind each
            // other's commit; "twin-N" twice, so that exactly one of the two is stored.
            let uids: Vec<String> = (0..64)
                .map(|i| match i % 4 {
                    0 => "taken".to_owned(),
                    1 if i < 8 => format!("twin-{round}"),
                    _ => format!("r{round}-{i}"),
                })
                .collect();
            let tasks: Vec<_> = uids
                .iter()
                .map(|uid| {
                    let store = Arc::clone(&store);
                    let o = crate::conformance::sample(uid, "alice", &[]);
                    tokio::spawn(async move { store.create(o).await })
                })
                .collect();
            let mut twins_stored = 0;
            for (uid, task) in uids.iter().zip(tasks) {
                let result = task.await.expect("task");
                match uid.as_str() {
                    "taken" => assert!(
                        matches!(result, Err(StoreError::AlreadyExists { .. })),
                        "a create of a taken uid: {result:?}"
                    ),
                    u if u.starts_with("twin-") => {
                        if result.is_ok() {
                            twins_stored += 1;
                        } else {
                            assert!(matches!(result, Err(StoreError::AlreadyExists { .. })));
                        }
                    }
                    _ => {
                        result.expect("a fresh create");
                        assert!(store.get(uid).await.expect("get").is_some(), "{uid} stored");
                    }
                }
            }
            assert_eq!(twins_stored, 1, "one of the two twins is stored");
        }
        let reopened = {
            let path = dir.path().join("kms.db");
            drop(Arc::into_inner(store).expect("sole owner"));
            SqliteStore::open(&path).expect("reopen")
        };
        for round in 0..5 {
            assert!(
                reopened
                    .get(&format!("twin-{round}"))
                    .await
                    .expect("get")
                    .is_some()
            );
            assert!(
                reopened
                    .get(&format!("r{round}-2"))
                    .await
                    .expect("get")
                    .is_some()
            );
        }
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
        let mut conn = open_connection(&path, None).expect("connection");
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
        let conn = open_connection(&path, None).expect("connection");
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

    /// A schema written (or being upgraded) by a newer version is refused: the older server
    /// does not run its own steps on it and write its older version back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        drop(SqliteStore::open(&path).expect("open"));
        for state in [READY, UPGRADING] {
            let conn = open_connection(&path, None).expect("connection");
            conn.execute("UPDATE context SET version = '99.0.0', state = ?1", [state])
                .expect("a newer version");
            drop(conn);
            let err = SqliteStore::open(&path).err().expect("refused");
            assert!(err.to_string().contains("newer than this server"), "{err}");
            let conn = open_connection(&path, None).expect("connection");
            let version: String = conn
                .query_row("SELECT version FROM context", [], |r| r.get(0))
                .expect("version");
            assert_eq!(version, "99.0.0", "left as it was");
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

    /// Whether `needle` occurs in any file of the database.
    fn on_disk(path: &Path, needle: &[u8]) -> bool {
        ["", "-wal", "-shm"].iter().any(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::read(&p)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn destroyed_key_material_is_gone_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        let store = SqliteStore::open(&path).expect("open");
        let material: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        let mut o = crate::conformance::sample("doomed", "alice", &[]);
        if let Some(kmip::model::Object::SymmetricKey(k)) = &mut o.object
            && let Some(kmip::model::KeyValue::Plain(p)) = &mut k.key_block.key_value
        {
            p.key_material = kmip::model::KeyMaterial::Bytes(material.clone());
        }
        store.create(o.clone()).await.expect("create");
        assert!(on_disk(&path, &material), "the key is written");
        let mut destroyed = store.get("doomed").await.expect("get").expect("there");
        destroyed.object = None;
        store.update(destroyed).await.expect("destroy");
        assert!(
            !on_disk(&path, &material),
            "the destroyed key is gone from every file"
        );
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("sqlite-data");
        let path = data.join("kms.db");
        let store = SqliteStore::open(&path).expect("open");
        store
            .create(crate::conformance::sample("k", "alice", &[]))
            .await
            .expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            assert_eq!(mode(Path::new(&p)), 0o600, "kms.db{suffix}");
        }
        assert_eq!(readable_by_others(&path).expect("stat"), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let warning = readable_by_others(&path).expect("stat").expect("a warning");
        assert!(warning.contains("chmod 600"), "{warning}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_database_keeps_no_sequence_and_locate_keeps_creation_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        let store = SqliteStore::open(&path).expect("open");
        for uid in ["a", "b", "c"] {
            let o = crate::conformance::sample(uid, "alice", &[]);
            store.create(o).await.expect("create");
        }
        // The newest object's number is the one a plain rowid can give again.
        store.delete("c").await.expect("delete");
        for uid in ["d", "e"] {
            let o = crate::conformance::sample(uid, "alice", &[]);
            store.create(o).await.expect("create");
        }
        let query = LocateQuery {
            owner: Some("alice".into()),
            ..LocateQuery::default()
        };
        assert_eq!(
            store.locate(&query).await.expect("locate"),
            ["a", "b", "d", "e"]
        );
        let conn = Connection::open(&path).expect("open directly");
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(
            tables, 0,
            "no AUTOINCREMENT: no page of it written per commit"
        );
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
