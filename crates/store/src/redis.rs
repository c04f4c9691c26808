//! `redis-findex`: objects in Redis sealed by the KMS, found through an encrypted index
//! (`findex.rs`). Redis sees entry names and index tokens (keyed hashes), sealed values, revision
//! counters and set sizes; never an identifier, a keyword, an attribute or key material.
//!
//! Layout under the key prefix `P` (default `kms`); `G` is a key generation, one per master
//! password (a rotation moves everything from one generation to the next):
//! - `P:context` (hash: `version`, `state` — `ready`, `upgrading` or `rotating` —, `label`, `gen`,
//!   and `next` while rotating), `P:seq`;
//! - `P:G:salt` (Argon2 salt), `P:G:check` (a constant sealed under the data key: a wrong master
//!   password is refused at start);
//! - `P:G:o:<entry name>`: a hash with `rev` and `data` (the sealed record, bound to the key name
//!   and revision), `grev` and `grants` (the sealed grants, bound likewise);
//! - `P:G:i:<token>`: a set of deterministically sealed uids, one set per keyword.
//!
//! Every write is one Lua script, so an object, its index entries and its revision change
//! atomically; a script compares the revision first (optimistic concurrency between servers)
//! and checks that the database is `ready` under this server's label and generation.
//!
//! Objects and rights are cached, kept true across servers as on PostgreSQL (see
//! `sql/changes.rs`): every swap (update, delete, grant change) also bumps `P:chseq` and adds
//! `seq:<entry name>` to the sorted set `P:changes`, in the same script; each server reads the
//! set every 20 ms (with the context: a relabel or another generation drops the cache) and
//! serves from its cache only while its last complete read is recent. During a rotation the cache
//! is bypassed.
//!
//! A server started with `--redis-new-master-password` as well re-encrypts everything into the
//! next generation in the background while it serves (reads look in both generations, a write
//! first moves its object); other servers are refused until restarted with the new password.
//! Interrupted, the next start with both passwords resumes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};

use crate::findex::{
    self, Grants, Keys, Keyword, Record, decode_grants, decode_record, encode_grants,
    encode_record, grant_keywords, object_keywords,
};
use crate::sql::changes::{self, SharedCache};
use crate::{Grant, LocateQuery, ObjectStore, Obtained, Result, Secret, StoreError, StoredObject};

const BACKEND: &str = "redis-findex";
/// The layout version this build writes; a database with a newer one is refused.
const SCHEMA_VERSION: u32 = 1;
/// Entries fetched per pipeline by Locate.
const BATCH: usize = 512;

/// How to reach and open a `redis-findex` database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: Secret,
    pub master_password: Secret,
    /// `--redis-new-master-password`: re-encrypt everything under this one.
    pub new_master_password: Option<Secret>,
    /// Public; changing it re-keys the index at the next start.
    pub label: String,
    /// Prefix of every Redis key (`--redis-key-prefix`, default `kms`).
    pub prefix: String,
}

/// The keys of one generation and where its entries live.
struct Generation {
    n: u64,
    keys: Keys,
    /// `P:G`.
    base: String,
    /// Entry keys already computed, by identifier (each is an HMAC, on every request
    /// otherwise); emptied when it reaches [`ENTRY_KEYS_KEPT`].
    entry_keys: Mutex<HashMap<String, String>>,
}

/// Most entry keys a generation remembers (about 200 bytes each).
const ENTRY_KEYS_KEPT: usize = 16 * 1024;

impl Generation {
    fn new(n: u64, keys: Keys, base: String) -> Generation {
        Generation {
            n,
            keys,
            base,
            entry_keys: Mutex::new(HashMap::new()),
        }
    }

    fn entry_key(&self, uid: &str) -> String {
        if let Ok(known) = self.entry_keys.lock()
            && let Some(key) = known.get(uid)
        {
            return key.clone();
        }
        let key = format!("{}:o:{}", self.base, self.keys.entry_name(uid));
        if let Ok(mut known) = self.entry_keys.lock() {
            if known.len() >= ENTRY_KEYS_KEPT {
                known.clear();
            }
            known.insert(uid.to_owned(), key.clone());
        }
        key
    }

    fn set_key(&self, keyword: &Keyword) -> String {
        format!("{}:i:{}", self.base, self.keys.token(keyword))
    }

    fn index_entry(&self, set_key: &str, uid: &str) -> Result<Vec<u8>> {
        self.keys
            .index
            .seal_deterministic(set_key.as_bytes(), uid.as_bytes())
            .map_err(findex::crypto("seal an index entry"))
    }

    fn seal(&self, key: &str, field: &str, revision: u64, plain: &[u8]) -> Result<Vec<u8>> {
        self.keys
            .data
            .seal(&aad(key, field, revision), plain)
            .map_err(findex::crypto("seal a record"))
    }

    /// The index sets and entries of `keywords` for `uid`.
    fn entries(
        &self,
        uid: &str,
        keywords: impl IntoIterator<Item = Keyword>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        keywords
            .into_iter()
            .map(|k| {
                let set = self.set_key(&k);
                let member = self.index_entry(&set, uid)?;
                Ok((set, member))
            })
            .collect()
    }

    fn decode_entry(&self, key: &str, fields: EntryFields) -> Result<Option<Entry>> {
        let [rev, data, grev, grants] = fields;
        let (Some(rev), Some(data)) = (rev, data) else {
            return Ok(None);
        };
        let number = |b: Vec<u8>| {
            String::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| tampered("a revision that is not a number"))
        };
        let revision = number(rev)?;
        let plain = self
            .keys
            .data
            .open(&aad(key, "data", revision), &data)
            .map_err(|_| tampered("a record that does not open under its name and revision"))?;
        let record = decode_record(&plain, revision)?;
        let grants_revision = grev.map(number).transpose()?.unwrap_or(0);
        let grants = match grants {
            Some(g) => decode_grants(
                &self
                    .keys
                    .data
                    .open(&aad(key, "grants", grants_revision), &g)
                    .map_err(|_| {
                        tampered("grants that do not open under their name and revision")
                    })?,
            )?,
            None => Grants::new(),
        };
        if *key != self.entry_key(&record.object.uid) {
            return Err(tampered("a record stored under another object's name"));
        }
        Ok(Some(Entry {
            record,
            grants,
            grants_revision,
        }))
    }
}

fn aad(key: &str, field: &str, revision: u64) -> Vec<u8> {
    format!("{key}|{field}|{revision}").into_bytes()
}

/// The generation this server writes, and while it rotates, the one it empties.
struct Generations {
    current: Arc<Generation>,
    previous: Option<Arc<Generation>>,
}

struct Inner {
    conn: ConnectionManager,
    create_script: Script,
    swap_script: Script,
    move_script: Script,
    label: String,
    prefix: String,
    generations: RwLock<Generations>,
    /// Entries moved by the running rotation, and how many there were when it (re)started.
    progress: Mutex<(usize, usize)>,
    log_script: Script,
    /// Objects and rights by entry name, kept true by the change log.
    cache: Arc<SharedCache>,
}

/// The store: cheap handles on one connection manager; a rotation runs on a task of its own.
pub struct RedisFindexStore {
    inner: Arc<Inner>,
    rotation: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisFindexStore {
    fn drop(&mut self) {
        if let Some(task) = &self.rotation {
            task.abort();
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: e.to_string(),
        source: None,
    }
}

fn parsing(e: redis::ParsingError) -> StoreError {
    StoreError::Query {
        backend: BACKEND,
        reason: format!("unexpected reply: {e}"),
    }
}

fn open_err(location: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Open {
        backend: BACKEND,
        location: location.to_owned(),
        reason: reason.into(),
    }
}

/// The prelude of every write script (KEYS[1] the context; ARGV[1] the label, ARGV[2] the
/// generation this server writes): the database must be ready in that generation, or being
/// rotated into it.
const PRELUDE: &str = r"
local ctx = redis.call('HMGET', KEYS[1], 'state', 'label', 'gen', 'next')
if ctx[2] ~= ARGV[1] then return -3 end
if ctx[1] == 'ready' then
  if ctx[3] ~= ARGV[2] then return -4 end
elseif ctx[1] == 'rotating' then
  if ctx[4] ~= ARGV[2] then return -5 end
else
  return -2
end
";

/// KEYS: context, entry, index sets; ARGV: label, generation, record, one index entry per set.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'rev', '1', 'data', ARGV[3], 'grev', '0')
for i = 3, #KEYS do redis.call('SADD', KEYS[i], ARGV[i + 1]) end
return 1
";

/// KEYS: context, entry, change counter, change log, index sets; ARGV: label, generation,
/// revision field, expected revision, new revision (empty: delete the entry), value field,
/// value, how many of the sets lose their entry (the others gain one), then one index entry per
/// set.
const SWAP: &str = r"
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if not cur then return -1 end
if cur ~= ARGV[4] then return 0 end
if ARGV[5] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7])
end
local removed = tonumber(ARGV[8])
for i = 5, #KEYS do
  if i - 4 <= removed then redis.call('SREM', KEYS[i], ARGV[i + 4])
  else redis.call('SADD', KEYS[i], ARGV[i + 4]) end
end
local n = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], n, n .. ':' .. KEYS[2])
return 1
";

/// Records a change of everything (`clear`). KEYS: change counter, change log; ARGV: what
/// changed.
const LOG: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, n .. ':' .. ARGV[1])
return n
";

/// Moves one entry to the next generation (rotation). KEYS: context, new entry, old entry,
/// index sets; ARGV: label, new generation, old revision, old grants revision, record and
/// grants sealed for the new entry (grants empty when none), how many of the sets (the old
/// generation's) lose their entry, then one index entry per set.
const MOVE: &str = r"
local r = redis.call('HMGET', KEYS[3], 'rev', 'grev')
if not r[1] then return 2 end
if r[1] ~= ARGV[3] or (r[2] or '0') ~= ARGV[4] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'rev', ARGV[3], 'data', ARGV[5], 'grev', ARGV[4])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'grants', ARGV[6]) end
end
redis.call('DEL', KEYS[3])
local removed = tonumber(ARGV[7])
for i = 4, #KEYS do
  if i - 3 <= removed then redis.call('SREM', KEYS[i], ARGV[i + 4])
  else redis.call('SADD', KEYS[i], ARGV[i + 4]) end
end
return 1
";

/// `state`, `label`, `gen` and `next` of the context.
type Context = [Option<String>; 4];
/// `rev`, `data`, `grev` and `grants` of an entry.
type EntryFields = [Option<Vec<u8>>; 4];
const CONTEXT_FIELDS: [&str; 4] = ["state", "label", "gen", "next"];
const ENTRY_FIELDS: [&str; 4] = ["rev", "data", "grev", "grants"];

/// An entry as read: the record and its grants, with their revisions.
struct Entry {
    record: Record,
    grants: Grants,
    grants_revision: u64,
}

/// Index changes of one write: entries to remove, then entries to add.
struct IndexChange {
    remove: Vec<Keyword>,
    add: Vec<Keyword>,
}

impl IndexChange {
    fn between(old: &BTreeSet<Keyword>, new: &BTreeSet<Keyword>) -> IndexChange {
        IndexChange {
            remove: old.difference(new).cloned().collect(),
            add: new.difference(old).cloned().collect(),
        }
    }
}

fn tampered(what: &str) -> StoreError {
    StoreError::Corrupt {
        uid: "(sealed)".into(),
        reason: format!(
            "Redis returned {what}: the data was altered outside the KMS, or written under another \
             master password"
        ),
    }
}

fn refused(reason: &str) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: reason.into(),
        source: None,
    }
}

const RELABELLED: &str = "another server re-keyed the index under a different \
                          --redis-findex-label; restart this server with that label";
const PASSWORD_CHANGED: &str = "the master password was changed by another server; restart this \
                                server with the new --redis-master-password";
const ROTATING: &str = "another server is re-encrypting the database under a new master \
                        password; restart this server with the new --redis-master-password once \
                        it is done";

fn script_refusal(code: i64) -> StoreError {
    match code {
        -2 => StoreError::Upgrading,
        -3 => refused(RELABELLED),
        -4 => refused(PASSWORD_CHANGED),
        -5 => refused(ROTATING),
        other => StoreError::Query {
            backend: BACKEND,
            reason: format!("unexpected script answer {other}"),
        },
    }
}

/// Opens generation `n` with `password`: its salt (drawn when `create`), the keys, and the check
/// value proving the password is this generation's. `None` when the password is not.
async fn open_generation(
    conn: &mut ConnectionManager,
    prefix: &str,
    n: u64,
    password: &Secret,
    label: &str,
    create: bool,
) -> Result<Option<Generation>> {
    let base = format!("{prefix}:{n}");
    if create {
        let fresh = kms_crypto::random_bytes(16).map_err(findex::crypto("draw a salt"))?;
        let _: Value = redis::cmd("SET")
            .arg(format!("{base}:salt"))
            .arg(&fresh)
            .arg("NX")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
    }
    let salt: Option<Vec<u8>> = conn
        .get(format!("{base}:salt"))
        .await
        .map_err(unavailable)?;
    let salt = salt.ok_or_else(|| {
        open_err(
            "the --database-url",
            format!("key generation {n} has no salt in Redis: the database was altered"),
        )
    })?;
    let (password, label) = (password.clone(), label.to_owned());
    let keys = tokio::task::spawn_blocking(move || {
        Keys::derive(password.expose().as_bytes(), &salt, &label)
    })
    .await
    .map_err(|e| open_err("the --database-url", format!("key derivation stopped: {e}")))??;
    let check_key = format!("{base}:check");
    if create {
        let check = keys
            .data
            .seal(check_key.as_bytes(), b"kms redis-findex")
            .map_err(findex::crypto("seal"))?;
        let _: Value = redis::cmd("SET")
            .arg(&check_key)
            .arg(check)
            .arg("NX")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
    }
    let stored: Option<Vec<u8>> = conn.get(&check_key).await.map_err(unavailable)?;
    Ok(stored
        .filter(|s| keys.data.open(check_key.as_bytes(), s).is_ok())
        .map(|_| Generation::new(n, keys, base)))
}

fn wrong_password(prefix: &str) -> StoreError {
    open_err(
        "the --database-url",
        format!(
            "the master password does not open this database (key prefix `{prefix}`): give the \
             --redis-master-password it was created with"
        ),
    )
}

impl RedisFindexStore {
    /// Connects, derives the keys (Argon2id: a fraction of a second), checks the master
    /// password against the database, and brings the layout and the index up to date (a new
    /// label re-keys the index here); with a new master password, starts (or resumes) moving
    /// everything to a new key generation in the background.
    pub async fn open(settings: &RedisSettings) -> Result<RedisFindexStore> {
        let location = "the --database-url";
        let p = settings.prefix.as_str();
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(open_err(
                location,
                "the key prefix must be letters, digits, `_`, `-` or `.`",
            ));
        }
        if settings.master_password.expose().is_empty()
            || settings
                .new_master_password
                .as_ref()
                .is_some_and(|n| n.expose().is_empty())
        {
            return Err(open_err(
                location,
                "--redis-master-password is required and must not be empty",
            ));
        }
        let client = redis::Client::open(settings.url.expose()).map_err(|e| {
            open_err(
                location,
                format!("not a Redis URL ({e}); use redis://host:6379 or rediss://host:6380"),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2);
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| open_err(location, format!("cannot connect to Redis: {e}")))?;
        let context_key = format!("{p}:context");
        let _: () = redis::pipe()
            .hset_nx(&context_key, "version", SCHEMA_VERSION)
            .ignore()
            .hset_nx(&context_key, "state", "ready")
            .ignore()
            .hset_nx(&context_key, "label", &settings.label)
            .ignore()
            .hset_nx(&context_key, "gen", 1)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (version, [state, label, gen_, next]): (Option<u32>, Context) = redis::pipe()
            .hget(&context_key, "version")
            .cmd("HMGET")
            .arg(&context_key)
            .arg(&CONTEXT_FIELDS)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if version.unwrap_or(0) > SCHEMA_VERSION {
            return Err(open_err(
                location,
                format!(
                    "the database was written by a newer version of the server (layout {}); run \
                     that version",
                    version.unwrap_or(0)
                ),
            ));
        }
        let number = |v: &Option<String>| v.as_deref().and_then(|g| g.parse::<u64>().ok());
        let g = number(&gen_).ok_or_else(|| tampered("a context without a key generation"))?;
        let master = &settings.master_password;
        let new = settings.new_master_password.as_ref();
        let first = g == 1 && !redis_has(&mut conn, &format!("{p}:1:check")).await?;
        let generations = if state.as_deref() == Some("rotating") {
            let (Some(new), Some(n)) = (new, number(&next)) else {
                return Err(open_err(
                    location,
                    "the master password is being changed (a server was started with \
                     --redis-new-master-password and stopped before it finished): start one \
                     server with both --redis-master-password and --redis-new-master-password \
                     to finish it",
                ));
            };
            let old = open_generation(&mut conn, p, g, master, &settings.label, false)
                .await?
                .ok_or_else(|| wrong_password(p))?;
            let current = open_generation(&mut conn, p, n, new, &settings.label, true)
                .await?
                .ok_or_else(|| {
                    open_err(
                        location,
                        "--redis-new-master-password is not the one the interrupted change was \
                         started with",
                    )
                })?;
            tracing::warn!(
                "redis-findex: resuming the re-encryption under the new master password"
            );
            Generations {
                current: Arc::new(current),
                previous: Some(Arc::new(old)),
            }
        } else {
            match open_generation(&mut conn, p, g, master, &settings.label, first).await? {
                Some(old) => match new {
                    None => Generations {
                        current: Arc::new(old),
                        previous: None,
                    },
                    Some(new) => {
                        if label.as_deref() != Some(settings.label.as_str()) {
                            return Err(open_err(
                                location,
                                "change the master password and the label one at a time",
                            ));
                        }
                        let current =
                            open_generation(&mut conn, p, g + 1, new, &settings.label, true)
                                .await?
                                .ok_or_else(|| {
                                    open_err(
                                        location,
                                        "a different new master password was tried before; \
                                         give that one",
                                    )
                                })?;
                        let _: () = redis::pipe()
                            .hset(&context_key, "next", g + 1)
                            .ignore()
                            .hset(&context_key, "state", "rotating")
                            .ignore()
                            .query_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                        tracing::warn!(
                            "redis-findex: re-encrypting the database under the new master \
                             password; other servers are refused until restarted with it"
                        );
                        Generations {
                            current: Arc::new(current),
                            previous: Some(Arc::new(old)),
                        }
                    }
                },
                None => {
                    // A change that finished before this server was restarted with the new
                    // password alone.
                    let done = match new {
                        Some(new) => {
                            open_generation(&mut conn, p, g, new, &settings.label, false).await?
                        }
                        None => None,
                    };
                    let current = done.ok_or_else(|| wrong_password(p))?;
                    tracing::warn!(
                        "redis-findex: the database is already under the new master password; \
                         start with --redis-master-password set to it, without \
                         --redis-new-master-password"
                    );
                    Generations {
                        current: Arc::new(current),
                        previous: None,
                    }
                }
            }
        };
        let rotating = generations.previous.is_some();
        let inner = Arc::new(Inner {
            conn,
            create_script: Script::new(&format!("{PRELUDE}{CREATE}")),
            swap_script: Script::new(&format!("{PRELUDE}{SWAP}")),
            move_script: Script::new(&format!("{PRELUDE}{MOVE}")),
            log_script: Script::new(LOG),
            cache: Arc::new(SharedCache::default()),
            label: settings.label.clone(),
            prefix: settings.prefix.clone(),
            generations: RwLock::new(generations),
            progress: Mutex::new((0, 0)),
        });
        if !rotating
            && (state.as_deref() != Some("ready")
                || label.as_deref() != Some(settings.label.as_str()))
        {
            inner.rebuild_index().await?;
        }
        follow(Arc::downgrade(&inner));
        let rotation = rotating.then(|| {
            let inner = inner.clone();
            tokio::spawn(async move { inner.rotate().await })
        });
        Ok(RedisFindexStore { inner, rotation })
    }

    /// Whether a change of master password is still moving entries: `(moved, total)`.
    pub fn rotation_progress(&self) -> Option<(usize, usize)> {
        let rotating = self
            .inner
            .generations
            .read()
            .map(|g| g.previous.is_some())
            .unwrap_or(false);
        rotating.then(|| self.inner.progress.lock().map(|p| *p).unwrap_or((0, 0)))
    }
}

async fn redis_has(conn: &mut ConnectionManager, key: &str) -> Result<bool> {
    conn.exists(key).await.map_err(unavailable)
}

impl Inner {
    fn context_key(&self) -> String {
        format!("{}:context", self.prefix)
    }

    fn counter_key(&self) -> String {
        format!("{}:chseq", self.prefix)
    }

    fn log_key(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// The cache and the entry name of `uid`, when the cache may be used (no rotation).
    fn cached(&self, uid: &str) -> Option<(&SharedCache, String)> {
        match self.generations() {
            (current, None) => Some((self.cache.as_ref(), current.entry_key(uid))),
            _ => None,
        }
    }

    fn generations(&self) -> (Arc<Generation>, Option<Arc<Generation>>) {
        match self.generations.read() {
            Ok(g) => (g.current.clone(), g.previous.clone()),
            // A panic while swapping generations cannot leave a half-written value: the guard
            // only ever replaces `previous` by `None`.
            Err(poisoned) => {
                let g = poisoned.into_inner();
                (g.current.clone(), g.previous.clone())
            }
        }
    }

    /// Fails unless the database is ready (or being rotated by this server) under this
    /// server's label and generation (checked with each read).
    fn check_context(&self, ctx: &Context, current: &Generation) -> Result<()> {
        let [state, label, gen_, next] = ctx;
        if label.as_deref() != Some(self.label.as_str()) {
            return Err(refused(RELABELLED));
        }
        let mine = current.n.to_string();
        match state.as_deref() {
            Some("ready") if gen_.as_deref() == Some(&mine) => Ok(()),
            Some("ready") => Err(refused(PASSWORD_CHANGED)),
            Some("rotating") if next.as_deref() == Some(&mine) => Ok(()),
            Some("rotating") => Err(refused(ROTATING)),
            _ => Err(StoreError::Upgrading),
        }
    }

    /// Re-keys the index of the current generation under this server's label: marks the
    /// database `upgrading` (other servers' requests fail cleanly), drops every index set,
    /// re-indexes every record, then marks it `ready` under the new label. Interrupted, it
    /// starts over at the next start.
    async fn rebuild_index(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let ctx = self.context_key();
        let (current, _) = self.generations();
        tracing::warn!(
            "redis-findex: re-keying the index under a new label (or resuming an interrupted \
             re-keying); requests wait until it is done"
        );
        let _: () = conn
            .hset(&ctx, "state", "upgrading")
            .await
            .map_err(unavailable)?;
        for chunk in self
            .scan(&format!("{}:i:*", current.base))
            .await?
            .chunks(512)
        {
            let _: () = conn.del(chunk).await.map_err(unavailable)?;
        }
        let entries = self.scan(&format!("{}:o:*", current.base)).await?;
        let total = entries.len();
        for (n, key) in entries.iter().enumerate() {
            let fields: EntryFields = redis::cmd("HMGET")
                .arg(key)
                .arg(&ENTRY_FIELDS)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(entry) = current.decode_entry(key, fields)? else {
                continue;
            };
            let mut pipe = redis::pipe();
            let keywords = object_keywords(&entry.record.object)
                .union(&grant_keywords(&entry.grants))
                .cloned()
                .collect::<Vec<_>>();
            for (set, member) in current.entries(&entry.record.object.uid, keywords)? {
                pipe.sadd(set, member).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await.map_err(unavailable)?;
            if (n + 1) % 1000 == 0 {
                tracing::info!("redis-findex: re-indexed {} of {total} objects", n + 1);
            }
        }
        let _: () = redis::pipe()
            .hset(&ctx, "label", &self.label)
            .ignore()
            .hset(&ctx, "state", "ready")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        tracing::info!("redis-findex: index re-keyed, {total} objects");
        Ok(())
    }

    /// Moves every entry of the previous generation into the current one, logging progress,
    /// then retires the previous generation. Errors are logged and the pass retried.
    async fn rotate(self: Arc<Self>) {
        loop {
            match self.rotation_pass().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "redis-findex: re-encryption pass failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One pass over the previous generation; `Ok(true)` once it is empty and retired.
    async fn rotation_pass(&self) -> Result<bool> {
        let (current, Some(previous)) = self.generations() else {
            return Ok(true);
        };
        let keys = self.scan(&format!("{}:o:*", previous.base)).await?;
        let total = keys.len();
        if let Ok(mut p) = self.progress.lock() {
            *p = (0, total);
        }
        tracing::info!("redis-findex: re-encrypting {total} objects under the new master password");
        for (n, key) in keys.iter().enumerate() {
            self.move_entry(&current, &previous, key).await?;
            if let Ok(mut p) = self.progress.lock() {
                p.0 = n + 1;
            }
            if (n + 1) % 1000 == 0 {
                tracing::info!("redis-findex: re-encrypted {} of {total} objects", n + 1);
            }
        }
        if !self
            .scan(&format!("{}:o:*", previous.base))
            .await?
            .is_empty()
        {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .hset(self.context_key(), "gen", current.n)
            .ignore()
            .hset(self.context_key(), "state", "ready")
            .ignore()
            .hdel(self.context_key(), "next")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        for chunk in self
            .scan(&format!("{}:*", previous.base))
            .await?
            .chunks(512)
        {
            let _: () = conn.del(chunk).await.map_err(unavailable)?;
        }
        if let Ok(mut g) = self.generations.write() {
            g.previous = None;
        }
        tracing::warn!(
            "redis-findex: every object is re-encrypted under the new master password; restart \
             the other servers with it (--redis-master-password), and this one without \
             --redis-new-master-password"
        );
        Ok(true)
    }

    /// Moves the entry at `old_key` (previous generation) to the current one, if still there.
    async fn move_entry(
        &self,
        current: &Generation,
        previous: &Generation,
        old_key: &str,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        for _ in 0..64 {
            let fields: EntryFields = redis::cmd("HMGET")
                .arg(old_key)
                .arg(&ENTRY_FIELDS)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(entry) = previous.decode_entry(old_key, fields)? else {
                return Ok(());
            };
            let object = &entry.record.object;
            let new_key = current.entry_key(&object.uid);
            let data = current.seal(
                &new_key,
                "data",
                object.revision,
                &encode_record(entry.record.seq, object),
            )?;
            let grants = if entry.grants.is_empty() {
                Vec::new()
            } else {
                current.seal(
                    &new_key,
                    "grants",
                    entry.grants_revision,
                    &encode_grants(&entry.grants),
                )?
            };
            let keywords: Vec<Keyword> = object_keywords(object)
                .union(&grant_keywords(&entry.grants))
                .cloned()
                .collect();
            let old = previous.entries(&object.uid, keywords.iter().cloned())?;
            let new = current.entries(&object.uid, keywords)?;
            let mut inv = self.move_script.key(self.context_key());
            inv.key(&new_key)
                .key(old_key)
                .arg(&self.label)
                .arg(current.n.to_string())
                .arg(object.revision.to_string())
                .arg(entry.grants_revision.to_string())
                .arg(data)
                .arg(grants)
                .arg(old.len());
            for (set, member) in old.into_iter().chain(new) {
                inv.key(set).arg(member);
            }
            let outcome: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
            match outcome {
                1 | 2 => return Ok(()),
                0 => continue,
                other => return Err(script_refusal(other)),
            }
        }
        Err(StoreError::Conflict {
            uid: "(an entry being re-encrypted)".into(),
        })
    }

    /// Before a write during a rotation: the object moves to the current generation first.
    async fn settle(&self, uid: &str) -> Result<Arc<Generation>> {
        let (current, previous) = self.generations();
        if let Some(previous) = previous {
            self.move_entry(&current, &previous, &previous.entry_key(uid))
                .await?;
        }
        Ok(current)
    }

    /// Every key matching `pattern` (SCAN, so Redis keeps serving).
    async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            out.extend(keys);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The entries of `uids` (absent ones skipped), in pipelines of [`BATCH`], after checking
    /// the context; during a rotation, from whichever generation holds each.
    async fn read_entries(&self, uids: &[String]) -> Result<Vec<Entry>> {
        let (current, previous) = self.generations();
        let mut conn = self.conn.clone();
        let mut out = Vec::with_capacity(uids.len());
        let mut checked = false;
        for chunk in uids.chunks(BATCH).chain(uids.is_empty().then_some(&[][..])) {
            let mut pipe = redis::pipe();
            pipe.cmd("HMGET")
                .arg(self.context_key())
                .arg(&CONTEXT_FIELDS);
            let mut keys = Vec::new();
            for uid in chunk {
                let mut both = vec![(current.clone(), current.entry_key(uid))];
                if let Some(p) = &previous {
                    both.push((p.clone(), p.entry_key(uid)));
                }
                for (_, k) in &both {
                    pipe.cmd("HMGET").arg(k).arg(&ENTRY_FIELDS);
                }
                keys.push(both);
            }
            let mut replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
            if replies.is_empty() {
                return Err(tampered("an empty reply"));
            }
            let ctx: Context = redis::from_redis_value(replies.remove(0)).map_err(parsing)?;
            if !checked {
                self.check_context(&ctx, &current)?;
                checked = true;
            }
            let mut replies = replies.into_iter();
            for both in keys {
                let mut found = None;
                for (generation, key) in both {
                    let fields: EntryFields = redis::from_redis_value(
                        replies.next().ok_or_else(|| tampered("a short reply"))?,
                    )
                    .map_err(parsing)?;
                    if found.is_none() {
                        found = generation.decode_entry(&key, fields)?;
                    }
                }
                out.extend(found);
            }
        }
        Ok(out)
    }

    async fn read_entry(&self, uid: &str) -> Result<Option<Entry>> {
        Ok(self.read_entries(&[uid.to_owned()]).await?.pop())
    }

    /// The uids under any of `keywords` (in both generations during a rotation), deduplicated,
    /// after checking the context.
    async fn uids_under(&self, keywords: &[Keyword]) -> Result<Vec<String>> {
        let (current, previous) = self.generations();
        let mut conn = self.conn.clone();
        let mut sets: Vec<(Arc<Generation>, String)> = keywords
            .iter()
            .map(|k| (current.clone(), current.set_key(k)))
            .collect();
        if let Some(p) = &previous {
            sets.extend(keywords.iter().map(|k| (p.clone(), p.set_key(k))));
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.context_key())
            .arg(&CONTEXT_FIELDS);
        for (_, s) in &sets {
            pipe.smembers(s);
        }
        let mut replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        if replies.is_empty() {
            return Err(tampered("an empty reply"));
        }
        let ctx: Context = redis::from_redis_value(replies.remove(0)).map_err(parsing)?;
        self.check_context(&ctx, &current)?;
        let mut uids = BTreeSet::new();
        for ((generation, set), reply) in sets.iter().zip(replies) {
            let members: Vec<Vec<u8>> = redis::from_redis_value(reply).map_err(parsing)?;
            for m in members {
                let uid = generation
                    .keys
                    .index
                    .open_deterministic(set.as_bytes(), &m)
                    .map_err(|_| tampered("an index entry that does not open under its set"))?;
                uids.insert(
                    String::from_utf8(uid.to_vec()).map_err(|_| tampered("an index entry"))?,
                );
            }
        }
        Ok(uids.into_iter().collect())
    }

    /// Runs the swap script on the current generation; `Ok(false)` when the revision moved.
    async fn swap(
        &self,
        current: &Generation,
        uid: &str,
        fields: (&str, &str),
        expected: u64,
        new: Option<(u64, Vec<u8>)>,
        change: &IndexChange,
    ) -> Result<bool> {
        let key = current.entry_key(uid);
        let mut inv = self.swap_script.key(self.context_key());
        inv.key(&key)
            .key(self.counter_key())
            .key(self.log_key())
            .arg(&self.label)
            .arg(current.n.to_string())
            .arg(fields.0)
            .arg(expected.to_string());
        match new {
            Some((revision, value)) => inv.arg(revision.to_string()).arg(fields.1).arg(value),
            None => inv.arg("").arg(fields.1).arg(""),
        };
        inv.arg(change.remove.len());
        let sets = current.entries(uid, change.remove.iter().chain(&change.add).cloned())?;
        for (set, member) in sets {
            inv.key(set).arg(member);
        }
        let mut conn = self.conn.clone();
        let outcome = inv.invoke_async::<i64>(&mut conn).await;
        // Also when it failed: whether it ran may be unknown.
        self.cache.invalidate(&key);
        match outcome.map_err(unavailable)? {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(StoreError::NotFound {
                uid: uid.to_owned(),
            }),
            other => Err(script_refusal(other)),
        }
    }

    /// Changes the grants of `uid` with `change`, retrying on concurrent grant changes.
    async fn change_grants(&self, uid: &str, change: impl Fn(&mut Grants)) -> Result<()> {
        let current = self.settle(uid).await?;
        for _ in 0..64 {
            let entry = self
                .read_entry(uid)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    uid: uid.to_owned(),
                })?;
            let mut grants = entry.grants.clone();
            change(&mut grants);
            grants.retain(|_, ops| !ops.is_empty());
            if grants == entry.grants {
                return Ok(());
            }
            let revision = entry.grants_revision + 1;
            let sealed = current.seal(
                &current.entry_key(uid),
                "grants",
                revision,
                &encode_grants(&grants),
            )?;
            let index =
                IndexChange::between(&grant_keywords(&entry.grants), &grant_keywords(&grants));
            if self
                .swap(
                    &current,
                    uid,
                    ("grev", "grants"),
                    entry.grants_revision,
                    Some((revision, sealed)),
                    &index,
                )
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict {
            uid: uid.to_owned(),
        })
    }
}

#[async_trait]
impl ObjectStore for RedisFindexStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        let s = &self.inner;
        let current = s.settle(&object.uid).await?;
        let mut conn = s.conn.clone();
        let seq: u64 = conn
            .incr(format!("{}:seq", s.prefix), 1)
            .await
            .map_err(unavailable)?;
        let object = StoredObject {
            revision: 1,
            schedules: Default::default(),
            ..object
        };
        let key = current.entry_key(&object.uid);
        let sealed = current.seal(&key, "data", 1, &encode_record(seq, &object))?;
        let mut inv = s.create_script.key(s.context_key());
        inv.key(&key)
            .arg(&s.label)
            .arg(current.n.to_string())
            .arg(sealed);
        for (set, member) in current.entries(&object.uid, object_keywords(&object))? {
            inv.key(set).arg(member);
        }
        let outcome: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        match outcome {
            1 => Ok(()),
            0 => Err(StoreError::AlreadyExists { uid: object.uid }),
            other => Err(script_refusal(other)),
        }
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        Ok(self.get_shared(uid).await?.map(Arc::unwrap_or_clone))
    }

    async fn get_shared(&self, uid: &str) -> Result<Option<Arc<StoredObject>>> {
        let cached = self.inner.cached(uid);
        if let Some((cache, key)) = &cached
            && !crate::wants_fresh()
            && let Some(object) = cache.object(key)
        {
            return Ok(Some(object));
        }
        let generation = cached.as_ref().and_then(|(c, _)| c.generation());
        let object = self
            .inner
            .read_entry(uid)
            .await?
            .map(|e| Arc::new(e.record.object));
        if let (Some((cache, key)), Some(generation), Some(object)) = (&cached, generation, &object)
        {
            cache.put_object(generation, key, object);
        }
        Ok(object)
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        let s = &self.inner;
        let current = s.settle(&object.uid).await?;
        let stored = s
            .read_entry(&object.uid)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                uid: object.uid.clone(),
            })?;
        if stored.record.object.revision != object.revision {
            return Err(StoreError::Conflict { uid: object.uid });
        }
        let revision = object.revision + 1;
        let sealed = current.seal(
            &current.entry_key(&object.uid),
            "data",
            revision,
            &encode_record(stored.record.seq, &object),
        )?;
        let index = IndexChange::between(
            &object_keywords(&stored.record.object),
            &object_keywords(&object),
        );
        if s.swap(
            &current,
            &object.uid,
            ("rev", "data"),
            object.revision,
            Some((revision, sealed)),
            &index,
        )
        .await?
        {
            Ok(())
        } else {
            Err(StoreError::Conflict { uid: object.uid })
        }
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        let s = &self.inner;
        let current = s.settle(uid).await?;
        for _ in 0..64 {
            let entry = s
                .read_entry(uid)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    uid: uid.to_owned(),
                })?;
            let keywords: BTreeSet<Keyword> = object_keywords(&entry.record.object)
                .union(&grant_keywords(&entry.grants))
                .cloned()
                .collect();
            let index = IndexChange::between(&keywords, &BTreeSet::new());
            if s.swap(
                &current,
                uid,
                ("rev", "data"),
                entry.record.object.revision,
                None,
                &index,
            )
            .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict {
            uid: uid.to_owned(),
        })
    }

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.inner
            .change_grants(uid, |g| {
                g.entry(user.to_owned())
                    .or_default()
                    .extend(operations.iter().cloned());
            })
            .await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        match self
            .inner
            .change_grants(uid, |g| {
                if let Some(ops) = g.get_mut(user) {
                    for op in operations {
                        ops.remove(op);
                    }
                }
            })
            .await
        {
            Err(StoreError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    async fn grants(&self, uid: &str) -> Result<Vec<Grant>> {
        Ok(self
            .inner
            .read_entry(uid)
            .await?
            .map(|e| {
                e.grants
                    .into_iter()
                    .map(|(user, ops)| Grant {
                        user,
                        operations: ops.into_iter().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        let cached = self.inner.cached(uid);
        if let Some((cache, key)) = &cached
            && !crate::wants_fresh()
            && let Some(rights) = cache.rights(key, user)
        {
            return Ok(rights);
        }
        let generation = cached.as_ref().and_then(|(c, _)| c.generation());
        let rights: Vec<String> = self
            .inner
            .read_entry(uid)
            .await?
            .map(|e| rights_of(&e.grants, user).into_iter().collect())
            .unwrap_or_default();
        if let (Some((cache, key)), Some(generation)) = (&cached, generation) {
            cache.put_rights(generation, key, user, &rights);
        }
        Ok(rights)
    }

    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>> {
        let s = &self.inner;
        let uids = s
            .uids_under(&[Keyword::grantee(user), Keyword::grantee(crate::EVERY_USER)])
            .await?;
        let mut entries: Vec<Entry> = s
            .read_entries(&uids)
            .await?
            .into_iter()
            .filter(|e| e.record.object.owner != user)
            .collect();
        entries.sort_by_key(|e| e.record.seq);
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let operations: Vec<String> = rights_of(&e.grants, user).into_iter().collect();
                (!operations.is_empty()).then_some(Obtained {
                    uid: e.record.object.uid,
                    owner: e.record.object.owner,
                    state: e.record.object.state,
                    operations,
                })
            })
            .collect())
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        let s = &self.inner;
        // The most selective keyword the query names; the rest is checked on the records.
        let candidates = if let Some(uid) = &query.uid {
            vec![uid.clone()]
        } else {
            let primary = if let Some(t) = query.tags.first() {
                vec![Keyword::tag(t)]
            } else if let Some(n) = query.names.first() {
                vec![Keyword::name(n)]
            } else if let Some(g) = query.object_groups.first() {
                vec![Keyword::group(g)]
            } else if let Some(o) = &query.owner {
                vec![Keyword::owner(o)]
            } else if let Some(u) = &query.visible_to {
                vec![
                    Keyword::owner(u),
                    Keyword::grantee(u),
                    Keyword::grantee(crate::EVERY_USER),
                ]
            } else if let Some(t) = query.object_type {
                vec![Keyword::object_type(t)]
            } else {
                vec![Keyword::all()]
            };
            s.uids_under(&primary).await?
        };
        let mut entries = s.read_entries(&candidates).await?;
        entries.sort_by_key(|e| e.record.seq);
        let visible = |e: &Entry| match &query.visible_to {
            None => true,
            Some(u) => e.record.object.owner == *u || !rights_of(&e.grants, u).is_empty(),
        };
        let mut out = Vec::new();
        let mut skipped = 0;
        for e in entries {
            if !visible(&e) || !query.matches(&e.record.object) {
                continue;
            }
            if skipped < query.offset {
                skipped += 1;
                continue;
            }
            out.push(e.record.object.uid);
            if query.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    async fn health(&self) -> Result<()> {
        let mut conn = self.inner.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        let s = &self.inner;
        let mut conn = s.conn.clone();
        let (current, previous) = s.generations();
        for generation in std::iter::once(current).chain(previous) {
            for pattern in ["o", "i"] {
                for chunk in s
                    .scan(&format!("{}:{pattern}:*", generation.base))
                    .await?
                    .chunks(512)
                {
                    let _: () = conn.del(chunk).await.map_err(unavailable)?;
                }
            }
        }
        let logged = s
            .log_script
            .key(s.counter_key())
            .key(s.log_key())
            .arg(changes::EVERYTHING)
            .invoke_async::<i64>(&mut conn)
            .await;
        s.cache.invalidate(changes::EVERYTHING);
        logged.map_err(unavailable)?;
        Ok(())
    }
}

/// Follows the change log for `inner`'s cache until the store is dropped (see
/// `sql/changes.rs` for the rules: the same bound, the same loss handling).
fn follow(inner: std::sync::Weak<Inner>) {
    tokio::spawn(async move {
        let mut last: Option<i64> = None;
        let mut polls: u32 = 0;
        let mut failing = false;
        loop {
            let Some(s) = inner.upgrade() else {
                return;
            };
            let started = std::time::Instant::now();
            match tokio::time::timeout(changes::FRESH, poll(&s, &mut last)).await {
                Ok(Ok(caught_up)) => {
                    if failing {
                        tracing::info!(
                            backend = BACKEND,
                            "the change log is read again: the object cache serves again"
                        );
                        failing = false;
                    }
                    if caught_up {
                        s.cache.polled(started);
                    } else {
                        continue;
                    }
                }
                outcome => {
                    let reason = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "Redis did not answer in time".to_owned(),
                    };
                    if !failing {
                        tracing::warn!(backend = BACKEND, %reason, "the change log cannot be read: the object cache is emptied and bypassed until it can");
                        failing = true;
                    }
                    s.cache.lost();
                    last = None;
                }
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(changes::PRUNE_EVERY)
                && let Some(seq) = last
            {
                let mut conn = s.conn.clone();
                let pruned: std::result::Result<(), _> = conn
                    .zrembyscore(s.log_key(), "-inf", format!("({}", seq - changes::KEEP))
                    .await;
                if let Err(e) = pruned {
                    tracing::debug!(error = %e, "pruning the change log failed; the next pruning retries");
                }
            }
            drop(s);
            tokio::time::sleep(changes::POLL).await;
        }
    });
}

/// Reads the log after `last` with the context; `Ok(true)` when every change committed before
/// the read was applied. A context that is not this server's (relabelled, another generation,
/// a rotation) or a gap in the log fails the poll, which empties the cache.
async fn poll(s: &Inner, last: &mut Option<i64>) -> Result<bool> {
    let (current, previous) = s.generations();
    if previous.is_some() {
        return Err(refused(
            "a change of master password is running: the cache waits for its end",
        ));
    }
    let mut conn = s.conn.clone();
    let from = match *last {
        Some(from) => from,
        None => {
            let seq: Option<i64> = conn.get(s.counter_key()).await.map_err(unavailable)?;
            *last = Some(seq.unwrap_or(0));
            return Ok(true);
        }
    };
    let (ctx, members): (Context, Vec<String>) = redis::pipe()
        .cmd("HMGET")
        .arg(s.context_key())
        .arg(&CONTEXT_FIELDS)
        .cmd("ZRANGEBYSCORE")
        .arg(s.log_key())
        .arg(format!("({from}"))
        .arg("+inf")
        .arg("LIMIT")
        .arg(0)
        .arg(changes::BATCH)
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    s.check_context(&ctx, &current)?;
    if ctx[0].as_deref() != Some("ready") {
        return Err(refused("the database is not ready: the cache waits"));
    }
    let mut expected = from + 1;
    for member in &members {
        let (seq, key) = member
            .split_once(':')
            .and_then(|(n, k)| Some((n.parse::<i64>().ok()?, k)))
            .ok_or_else(|| tampered("a change log entry that is not seq:name"))?;
        if seq != expected {
            return Err(refused(
                "the change log has a gap: entries were pruned before this server read them",
            ));
        }
        s.cache.invalidate(key);
        expected = seq + 1;
    }
    *last = Some(expected - 1);
    Ok(members.len() < changes::BATCH)
}

/// The operations `user` holds through grants: its own and those to every user.
fn rights_of(grants: &Grants, user: &str) -> BTreeSet<String> {
    [user, crate::EVERY_USER]
        .iter()
        .filter_map(|u| grants.get(*u))
        .flatten()
        .cloned()
        .collect()
}

#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    //! A key prefix of its own per test on the test Redis (`KMS_TEST_REDIS_URL`, default
    //! `redis://127.0.0.1:6379`), its keys deleted by [`TestRedis::drop_now`].

    use super::*;

    pub fn redis_url() -> String {
        std::env::var("KMS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    pub struct TestRedis {
        pub settings: RedisSettings,
    }

    impl TestRedis {
        /// A fresh prefix; fails (never skips) when Redis does not answer.
        pub async fn new() -> Result<TestRedis> {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let url = redis_url();
            let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| {
                    open_err(
                        "KMS_TEST_REDIS_URL",
                        format!("the Redis test service at {url} is required (start it with scripts/setup.sh): {e}"),
                    )
                })?;
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(TestRedis {
                settings: RedisSettings {
                    url: Secret::new(url),
                    master_password: Secret::new("test master password"),
                    new_master_password: None,
                    label: "test label".into(),
                    prefix: format!("kmstest{nanos:x}{}", std::process::id()),
                },
            })
        }

        /// Every key and value under this test's prefix.
        pub async fn dump(&self) -> Result<Vec<(Vec<u8>, Vec<Vec<u8>>)>> {
            let client = redis::Client::open(self.settings.url.expose()).map_err(unavailable)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(unavailable)?;
            let keys: Vec<Vec<u8>> = conn
                .keys(format!("{}*", self.settings.prefix))
                .await
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for k in keys {
                let kind: String = redis::cmd("TYPE")
                    .arg(&k)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let values: Vec<Vec<u8>> = match kind.as_str() {
                    "string" => vec![conn.get(&k).await.map_err(unavailable)?],
                    "hash" => {
                        let m: Vec<Vec<u8>> = redis::cmd("HGETALL")
                            .arg(&k)
                            .query_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                        m
                    }
                    "set" => conn.smembers(&k).await.map_err(unavailable)?,
                    _ => Vec::new(),
                };
                out.push((k, values));
            }
            Ok(out)
        }

        /// Deletes this test's keys.
        pub async fn drop_now(&self) -> Result<()> {
            let client = redis::Client::open(self.settings.url.expose()).map_err(unavailable)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(unavailable)?;
            let keys: Vec<String> = conn
                .keys(format!("{}:*", self.settings.prefix))
                .await
                .map_err(unavailable)?;
            if !keys.is_empty() {
                let _: () = conn.del(keys).await.map_err(unavailable)?;
            }
            Ok(())
        }
    }
}
