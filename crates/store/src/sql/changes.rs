//! The change log that lets several servers on one PostgreSQL or MariaDB database cache objects
//! and rights safely.
//!
//! Every write that changes or removes an object or its rights (update, delete, grant, revoke,
//! clear; a create changes nothing another server may hold) also bumps a one-row counter and
//! records `(seq, uid)` in `changes`, in the same transaction. The counter row is locked until
//! commit, so sequence order is commit order and the log has no gaps: a server that has read
//! every entry up to `seq` has seen every change committed before it read.
//!
//! Each server polls the log every [`POLL`] and drops the entries it names from its cache. The
//! cache serves only while the last poll that completed started less than [`FRESH`] ago: a
//! change committed on another server is refused here within [`BOUND`] (the poll interval plus
//! the time a request takes from the cache), and at once on the server that made it. When the
//! log cannot be read (database unreachable, a gap because this server fell behind the
//! pruning), the cache is emptied and bypassed until a poll succeeds again.
//!
//! The cache is bounded ([`CAPACITY`] objects); key material is wiped when an entry is dropped
//! (`KeyMaterial` zeroizes on drop). A reader inserts what it read only if no invalidation ran
//! since it started reading, so the cache never holds a value older than the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{Dialect, Driver, Kind, OnZeroRows, SqlValue, Stmt, text};
use crate::StoredObject;

/// How often the log is read.
pub(crate) const POLL: Duration = Duration::from_millis(20);
/// How recent the start of the last completed poll must be for the cache to serve.
pub(crate) const FRESH: Duration = Duration::from_millis(80);
/// The promise: a change committed elsewhere is seen here within this time.
pub const BOUND: Duration = Duration::from_millis(100);
/// Most objects kept.
const CAPACITY: usize = 16_384;
/// Most log entries read per poll.
pub(crate) const BATCH: usize = 2_000;
/// Entries kept behind the newest when pruning.
pub(crate) const KEEP: i64 = 100_000;
/// Polls between two prunings (about ten seconds).
pub(crate) const PRUNE_EVERY: u32 = 500;
/// The uid a `clear` records: every entry goes.
pub(crate) const EVERYTHING: &str = "*";

#[derive(Default)]
struct Entry {
    object: Option<Arc<StoredObject>>,
    /// Rights by user, as `ObjectStore::rights` answers them.
    rights: HashMap<String, Vec<String>>,
}

#[derive(Default)]
struct State {
    generation: u64,
    entries: HashMap<String, Entry>,
    /// Start of the last poll that completed, if the log is being followed.
    fresh: Option<Instant>,
}

/// The cache of one server, kept true by the change log.
#[derive(Default)]
pub(crate) struct SharedCache {
    state: Mutex<State>,
}

impl SharedCache {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// The generation to give [`SharedCache::put_object`] and [`SharedCache::put_rights`],
    /// taken before reading the database; `None` when the cache must not serve.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.with(|s| {
            s.fresh
                .filter(|f| f.elapsed() < FRESH)
                .map(|_| s.generation)
        })
        .flatten()
    }

    pub(crate) fn object(&self, uid: &str) -> Option<Arc<StoredObject>> {
        self.with(|s| {
            s.fresh.filter(|f| f.elapsed() < FRESH)?;
            s.entries.get(uid)?.object.clone()
        })
        .flatten()
    }

    pub(crate) fn rights(&self, uid: &str, user: &str) -> Option<Vec<String>> {
        self.with(|s| {
            s.fresh.filter(|f| f.elapsed() < FRESH)?;
            s.entries.get(uid)?.rights.get(user).cloned()
        })
        .flatten()
    }

    /// Keeps `object` under `key` (its uid, or its entry name on Redis) if no invalidation ran
    /// since `generation` was taken.
    pub(crate) fn put_object(&self, generation: u64, key: &str, object: &Arc<StoredObject>) {
        self.with(|s| {
            if s.generation == generation {
                make_room(s, key);
                s.entries.entry(key.to_owned()).or_default().object = Some(object.clone());
            }
        });
    }

    pub(crate) fn put_rights(&self, generation: u64, uid: &str, user: &str, rights: &[String]) {
        self.with(|s| {
            if s.generation == generation {
                make_room(s, uid);
                s.entries
                    .entry(uid.to_owned())
                    .or_default()
                    .rights
                    .insert(user.to_owned(), rights.to_vec());
            }
        });
    }

    /// Drops what the cache holds of `uid` (everything for [`EVERYTHING`]).
    pub(crate) fn invalidate(&self, uid: &str) {
        self.with(|s| {
            s.generation = s.generation.wrapping_add(1);
            if uid == EVERYTHING {
                s.entries.clear();
            } else {
                s.entries.remove(uid);
            }
        });
    }

    /// Empties the cache and stops it serving until a poll completes.
    pub(crate) fn lost(&self) {
        self.with(|s| {
            s.generation = s.generation.wrapping_add(1);
            s.entries.clear();
            s.fresh = None;
        });
    }

    /// A poll that started at `started` applied every change committed before it.
    pub(crate) fn polled(&self, started: Instant) {
        self.with(|s| s.fresh = Some(started));
    }
}

fn make_room(s: &mut State, uid: &str) {
    if s.entries.len() >= CAPACITY
        && !s.entries.contains_key(uid)
        && let Some(victim) = s.entries.keys().next().cloned()
    {
        s.entries.remove(&victim);
    }
}

/// The statements a changing transaction ends with: the counter, then the log entry.
pub(crate) fn record(dialect: Dialect, uid: &str) -> [Stmt; 2] {
    [
        dialect.stmt(
            "UPDATE change_counter SET seq = seq + 1 WHERE id = 1",
            &[],
            OnZeroRows::Ignore,
        ),
        dialect.stmt(
            "INSERT INTO changes (seq, uid) SELECT seq, :1 FROM change_counter WHERE id = 1",
            &[text(uid)],
            OnZeroRows::Ignore,
        ),
    ]
}

/// The statement `clear` records.
pub(crate) fn record_everything(dialect: Dialect) -> [Stmt; 2] {
    record(dialect, EVERYTHING)
}

/// Follows the log for `cache` until the store is dropped.
pub(crate) fn follow(driver: Arc<dyn Driver>, cache: Weak<SharedCache>) {
    tokio::spawn(async move {
        let mut last: Option<i64> = None;
        let mut polls: u32 = 0;
        let mut failing = false;
        loop {
            let Some(cache) = cache.upgrade() else {
                return;
            };
            let started = Instant::now();
            match poll(driver.as_ref(), &cache, &mut last).await {
                Ok(caught_up) => {
                    if failing {
                        tracing::info!(
                            backend = driver.backend(),
                            "the change log is read again: the object cache serves again"
                        );
                        failing = false;
                    }
                    if caught_up {
                        cache.polled(started);
                    } else {
                        // More to read: at once.
                        continue;
                    }
                }
                Err(reason) => {
                    if !failing {
                        tracing::warn!(backend = driver.backend(), %reason, "the change log cannot be read: the object cache is emptied and bypassed until it can");
                        failing = true;
                    }
                    cache.lost();
                    last = None;
                }
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(PRUNE_EVERY)
                && let Some(seq) = last
            {
                prune(driver.as_ref(), seq).await;
            }
            drop(cache);
            tokio::time::sleep(POLL).await;
        }
    });
}

/// Reads the log after `last`; `Ok(true)` when everything committed before the poll started
/// has been applied.
async fn poll(
    driver: &dyn Driver,
    cache: &SharedCache,
    last: &mut Option<i64>,
) -> Result<bool, String> {
    let dialect = driver.dialect();
    let read = |sql: &'static str, params: Vec<SqlValue>, kinds: &'static [Kind]| async move {
        let (sql, params) = dialect.render(sql, &params);
        tokio::time::timeout(FRESH, driver.query(&sql, &params, kinds))
            .await
            .map_err(|_| "the database did not answer in time".to_owned())?
            .map_err(|e| e.to_string())
    };
    let Some(from) = *last else {
        // Following starts from now: the cache is empty.
        let rows = read(
            "SELECT seq FROM change_counter WHERE id = 1",
            Vec::new(),
            &[Kind::Int],
        )
        .await?;
        *last = Some(int(rows.first().and_then(|r| r.first())).unwrap_or(0));
        return Ok(true);
    };
    let rows = read(
        "SELECT seq, uid FROM changes WHERE seq > :1 ORDER BY seq LIMIT 2000",
        vec![SqlValue::Int(Some(from))],
        &[Kind::Int, Kind::Text],
    )
    .await?;
    let mut expected = from + 1;
    for row in &rows {
        let seq = int(row.first()).ok_or("a change without sequence number")?;
        if seq != expected {
            // Entries were pruned before this server read them.
            return Err(format!(
                "the change log jumps from {} to {seq}",
                expected - 1
            ));
        }
        if let Some(SqlValue::Text(Some(uid))) = row.get(1) {
            cache.invalidate(uid);
        }
        expected = seq + 1;
    }
    *last = Some(expected - 1);
    Ok(rows.len() < BATCH)
}

async fn prune(driver: &dyn Driver, last: i64) {
    let dialect = driver.dialect();
    let stmt = dialect.stmt(
        "DELETE FROM changes WHERE seq < :1",
        &[SqlValue::Int(Some(last - KEEP))],
        OnZeroRows::Ignore,
    );
    if let Err(e) = driver.transaction(&[stmt]).await {
        tracing::debug!(error = ?e, "pruning the change log failed; the next pruning retries");
    }
}

fn int(value: Option<&SqlValue>) -> Option<i64> {
    match value {
        Some(SqlValue::Int(Some(i))) => Some(*i),
        _ => None,
    }
}
