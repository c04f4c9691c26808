//! `redis-findex`: objects in Redis sealed by the KMS, found through an encrypted index
//! (`findex.rs`). Redis sees entry names and index tokens (keyed hashes), sealed values, revision
//! counters and set sizes; never an identifier, a keyword, an attribute or key material.
//!
//! Layout under the key prefix `P` (default `kms`):
//! - `P:salt` (Argon2 salt), `P:check` (a constant sealed under the data key: a wrong master
//!   password is refused at start), `P:context` (hash: `version`, `state`, `label`), `P:seq`;
//! - `P:o:<entry name>`: a hash with `rev` and `data` (the sealed record, bound to the key name
//!   and revision), `grev` and `grants` (the sealed grants, bound likewise);
//! - `P:i:<token>`: a set of deterministically sealed uids, one set per keyword.
//!
//! Every write is one Lua script, so an object, its index entries and its revision change
//! atomically; a script compares the revision first (optimistic concurrency between servers)
//! and checks that the schema is `ready` under this server's label. Nothing is cached.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};

use crate::findex::{
    self, Grants, Keys, Keyword, Record, decode_grants, decode_record, encode_grants,
    encode_record, grant_keywords, object_keywords,
};
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
    /// Public; changing it re-keys the index at the next start.
    pub label: String,
    /// Prefix of every Redis key (`--redis-key-prefix`, default `kms`).
    pub prefix: String,
}

pub struct RedisFindexStore {
    conn: ConnectionManager,
    create_script: Script,
    swap_script: Script,
    keys: Keys,
    label: String,
    prefix: String,
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

/// The prelude of every write script: the schema must be ready, under this server's label.
const PRELUDE: &str = r"
local ctx = redis.call('HMGET', KEYS[1], 'state', 'label')
if ctx[1] ~= 'ready' then return -2 end
if ctx[2] ~= ARGV[1] then return -3 end
";

/// KEYS: context, entry, index sets; ARGV: label, record, one index entry per set.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'rev', '1', 'data', ARGV[2], 'grev', '0')
for i = 3, #KEYS do redis.call('SADD', KEYS[i], ARGV[i]) end
return 1
";

/// KEYS: context, entry, index sets; ARGV: label, revision field, expected revision, new
/// revision (empty: delete the entry), value field, value, how many of the sets lose their
/// entry (the others gain one), then one index entry per set.
const SWAP: &str = r"
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur then return -1 end
if cur ~= ARGV[3] then return 0 end
if ARGV[4] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4], ARGV[5], ARGV[6])
end
local removed = tonumber(ARGV[7])
for i = 3, #KEYS do
  if i - 2 <= removed then redis.call('SREM', KEYS[i], ARGV[i + 5])
  else redis.call('SADD', KEYS[i], ARGV[i + 5]) end
end
return 1
";

/// `state` and `label` of the context.
type Context = (Option<String>, Option<String>);
/// `rev`, `data`, `grev` and `grants` of an entry.
type EntryFields = [Option<Vec<u8>>; 4];

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

impl RedisFindexStore {
    /// Connects, derives the keys (Argon2id: a fraction of a second), checks the master
    /// password against the database, and brings the layout and the index up to date (a new
    /// label re-keys the index here).
    pub async fn open(settings: &RedisSettings) -> Result<RedisFindexStore> {
        let location = "the --database-url";
        if settings.prefix.is_empty()
            || !settings
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(open_err(
                location,
                "the key prefix must be letters, digits, `_`, `-` or `.`",
            ));
        }
        if settings.master_password.expose().is_empty() {
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
        let p = &settings.prefix;
        let fresh_salt = kms_crypto::random_bytes(16).map_err(findex::crypto("draw a salt"))?;
        let _: Value = redis::cmd("SET")
            .arg(format!("{p}:salt"))
            .arg(&fresh_salt)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let salt: Vec<u8> = conn.get(format!("{p}:salt")).await.map_err(unavailable)?;
        let password = settings.master_password.clone();
        let label = settings.label.clone();
        let keys = tokio::task::spawn_blocking(move || {
            Keys::derive(password.expose().as_bytes(), &salt, &label)
        })
        .await
        .map_err(|e| open_err(location, format!("key derivation stopped: {e}")))??;
        let check_key = format!("{p}:check");
        let check = keys
            .data
            .seal(check_key.as_bytes(), b"kms redis-findex")
            .map_err(findex::crypto("seal"))?;
        let _: Value = redis::cmd("SET")
            .arg(&check_key)
            .arg(check)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let stored: Vec<u8> = conn.get(&check_key).await.map_err(unavailable)?;
        if keys.data.open(check_key.as_bytes(), &stored).is_err() {
            return Err(open_err(
                location,
                format!(
                    "the master password does not open this database (key prefix `{p}`): give the \
                     --redis-master-password it was created with"
                ),
            ));
        }
        let store = RedisFindexStore {
            conn,
            create_script: Script::new(&format!("{PRELUDE}{CREATE}")),
            swap_script: Script::new(&format!("{PRELUDE}{SWAP}")),
            keys,
            label: settings.label.clone(),
            prefix: settings.prefix.clone(),
        };
        store.migrate().await?;
        Ok(store)
    }

    fn context_key(&self) -> String {
        format!("{}:context", self.prefix)
    }

    fn entry_key(&self, uid: &str) -> String {
        format!("{}:o:{}", self.prefix, self.keys.entry_name(uid))
    }

    fn set_key(&self, keyword: &Keyword) -> String {
        format!("{}:i:{}", self.prefix, self.keys.token(keyword))
    }

    fn index_entry(&self, set_key: &str, uid: &str) -> Result<Vec<u8>> {
        self.keys
            .index
            .seal_deterministic(set_key.as_bytes(), uid.as_bytes())
            .map_err(findex::crypto("seal an index entry"))
    }

    fn record_aad(key: &str, field: &str, revision: u64) -> Vec<u8> {
        format!("{key}|{field}|{revision}").into_bytes()
    }

    /// Writes the layout version and, on a new label or an interrupted re-keying, rebuilds the
    /// index from the records.
    async fn migrate(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let ctx = self.context_key();
        let _: () = redis::pipe()
            .hset_nx(&ctx, "version", SCHEMA_VERSION)
            .ignore()
            .hset_nx(&ctx, "state", "ready")
            .ignore()
            .hset_nx(&ctx, "label", &self.label)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (version, state, label): (Option<u32>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(&ctx)
                .arg(&["version", "state", "label"])
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        if version.unwrap_or(0) > SCHEMA_VERSION {
            return Err(open_err(
                "the --database-url",
                format!(
                    "the database was written by a newer version of the server (layout {}); run \
                     that version",
                    version.unwrap_or(0)
                ),
            ));
        }
        if state.as_deref() == Some("ready") && label.as_deref() == Some(self.label.as_str()) {
            return Ok(());
        }
        self.rebuild_index().await
    }

    /// Re-keys the index under this server's label: marks the database `upgrading` (other
    /// servers' requests fail cleanly), drops every index set, re-indexes every record, then
    /// marks it `ready` under the new label. Interrupted, it starts over at the next start.
    async fn rebuild_index(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let ctx = self.context_key();
        tracing::warn!(
            "redis-findex: re-keying the index under a new label (or resuming an interrupted \
             re-keying); requests wait until it is done"
        );
        let _: () = conn
            .hset(&ctx, "state", "upgrading")
            .await
            .map_err(unavailable)?;
        for key in self.scan(&format!("{}:i:*", self.prefix)).await? {
            let _: () = conn.del(key).await.map_err(unavailable)?;
        }
        let entries = self.scan(&format!("{}:o:*", self.prefix)).await?;
        let total = entries.len();
        for (n, key) in entries.iter().enumerate() {
            let Some(entry) = self.read_entry_at(key).await? else {
                continue;
            };
            let uid = &entry.record.object.uid;
            let mut pipe = redis::pipe();
            for k in object_keywords(&entry.record.object).union(&grant_keywords(&entry.grants)) {
                let set = self.set_key(k);
                let member = self.index_entry(&set, uid)?;
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

    /// Fails unless the database is ready under this server's label (checked with each read).
    fn check_context(&self, state: Option<String>, label: Option<String>) -> Result<()> {
        if state.as_deref() != Some("ready") {
            return Err(StoreError::Upgrading);
        }
        if label.as_deref() != Some(self.label.as_str()) {
            return Err(relabelled());
        }
        Ok(())
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
            .open(&Self::record_aad(key, "data", revision), &data)
            .map_err(|_| tampered("a record that does not open under its name and revision"))?;
        let record = decode_record(&plain, revision)?;
        let grants_revision = grev.map(number).transpose()?.unwrap_or(0);
        let grants = match grants {
            Some(g) => decode_grants(
                &self
                    .keys
                    .data
                    .open(&Self::record_aad(key, "grants", grants_revision), &g)
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

    async fn read_entry_at(&self, key: &str) -> Result<Option<Entry>> {
        let mut conn = self.conn.clone();
        let ((state, label), fields): (Context, EntryFields) = redis::pipe()
            .cmd("HMGET")
            .arg(self.context_key())
            .arg(&["state", "label"])
            .cmd("HMGET")
            .arg(key)
            .arg(&["rev", "data", "grev", "grants"])
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        // While re-keying, this server reads records to rebuild the index.
        if state.as_deref() != Some("upgrading") {
            self.check_context(state, label)?;
        }
        self.decode_entry(key, fields)
    }

    async fn read_entry(&self, uid: &str) -> Result<Option<Entry>> {
        self.read_entry_at(&self.entry_key(uid)).await
    }

    /// The entries of `uids` (absent ones skipped), in pipelines of [`BATCH`].
    async fn read_entries(&self, uids: &[String]) -> Result<Vec<Entry>> {
        let mut conn = self.conn.clone();
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(BATCH) {
            let keys: Vec<String> = chunk.iter().map(|u| self.entry_key(u)).collect();
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HMGET")
                    .arg(k)
                    .arg(&["rev", "data", "grev", "grants"]);
            }
            let rows: Vec<EntryFields> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
            for (k, fields) in keys.iter().zip(rows) {
                if let Some(e) = self.decode_entry(k, fields)? {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The uids under any of `keywords`, deduplicated, after checking the context.
    async fn uids_under(&self, keywords: &[Keyword]) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let sets: Vec<String> = keywords.iter().map(|k| self.set_key(k)).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.context_key())
            .arg(&["state", "label"]);
        for s in &sets {
            pipe.smembers(s);
        }
        let mut replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        if replies.is_empty() {
            return Err(tampered("an empty reply"));
        }
        let (state, label): Context =
            redis::from_redis_value(replies.remove(0)).map_err(parsing)?;
        self.check_context(state, label)?;
        let mut uids = BTreeSet::new();
        for (set, reply) in sets.iter().zip(replies) {
            let members: Vec<Vec<u8>> = redis::from_redis_value(reply).map_err(parsing)?;
            for m in members {
                let uid = self
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

    /// Runs the swap script; `Ok(false)` when the revision moved.
    #[allow(clippy::too_many_arguments)]
    async fn swap(
        &self,
        uid: &str,
        fields: (&str, &str),
        expected: u64,
        new: Option<(u64, Vec<u8>)>,
        change: &IndexChange,
    ) -> Result<bool> {
        let key = self.entry_key(uid);
        let mut inv = self.swap_script.key(self.context_key());
        inv.key(&key)
            .arg(&self.label)
            .arg(fields.0)
            .arg(expected.to_string());
        match new {
            Some((revision, value)) => inv.arg(revision.to_string()).arg(fields.1).arg(value),
            None => inv.arg("").arg(fields.1).arg(""),
        };
        inv.arg(change.remove.len());
        for k in change.remove.iter().chain(&change.add) {
            let set = self.set_key(k);
            inv.arg(self.index_entry(&set, uid)?);
            inv.key(set);
        }
        let mut conn = self.conn.clone();
        let outcome: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        match outcome {
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
            let sealed = self
                .keys
                .data
                .seal(
                    &Self::record_aad(&self.entry_key(uid), "grants", revision),
                    &encode_grants(&grants),
                )
                .map_err(findex::crypto("seal grants"))?;
            let index =
                IndexChange::between(&grant_keywords(&entry.grants), &grant_keywords(&grants));
            if self
                .swap(
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

fn tampered(what: &str) -> StoreError {
    StoreError::Corrupt {
        uid: "(sealed)".into(),
        reason: format!(
            "Redis returned {what}: the data was altered outside the KMS, or written under another \
             master password"
        ),
    }
}

fn relabelled() -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason:
            "another server re-keyed the index under a different --redis-findex-label; restart \
                 this server with that label"
                .into(),
        source: None,
    }
}

fn script_refusal(code: i64) -> StoreError {
    match code {
        -2 => StoreError::Upgrading,
        -3 => relabelled(),
        other => StoreError::Query {
            backend: BACKEND,
            reason: format!("unexpected script answer {other}"),
        },
    }
}

#[async_trait]
impl ObjectStore for RedisFindexStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        let mut conn = self.conn.clone();
        let seq: u64 = conn
            .incr(format!("{}:seq", self.prefix), 1)
            .await
            .map_err(unavailable)?;
        let object = StoredObject {
            revision: 1,
            ..object
        };
        let key = self.entry_key(&object.uid);
        let sealed = self
            .keys
            .data
            .seal(
                &Self::record_aad(&key, "data", 1),
                &encode_record(seq, &object),
            )
            .map_err(findex::crypto("seal a record"))?;
        let mut inv = self.create_script.key(self.context_key());
        inv.key(&key).arg(&self.label).arg(sealed);
        for k in object_keywords(&object) {
            let set = self.set_key(&k);
            inv.arg(self.index_entry(&set, &object.uid)?);
            inv.key(set);
        }
        let outcome: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        match outcome {
            1 => Ok(()),
            0 => Err(StoreError::AlreadyExists { uid: object.uid }),
            other => Err(script_refusal(other)),
        }
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        Ok(self.read_entry(uid).await?.map(|e| e.record.object))
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        let current = self
            .read_entry(&object.uid)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                uid: object.uid.clone(),
            })?;
        if current.record.object.revision != object.revision {
            return Err(StoreError::Conflict { uid: object.uid });
        }
        let revision = object.revision + 1;
        let key = self.entry_key(&object.uid);
        let sealed = self
            .keys
            .data
            .seal(
                &Self::record_aad(&key, "data", revision),
                &encode_record(current.record.seq, &object),
            )
            .map_err(findex::crypto("seal a record"))?;
        let index = IndexChange::between(
            &object_keywords(&current.record.object),
            &object_keywords(&object),
        );
        if self
            .swap(
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
        for _ in 0..64 {
            let entry = self
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
            if self
                .swap(
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
        self.change_grants(uid, |g| {
            g.entry(user.to_owned())
                .or_default()
                .extend(operations.iter().cloned());
        })
        .await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        match self
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
        Ok(self
            .read_entry(uid)
            .await?
            .map(|e| rights_of(&e.grants, user).into_iter().collect())
            .unwrap_or_default())
    }

    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>> {
        let uids = self
            .uids_under(&[Keyword::grantee(user), Keyword::grantee(crate::EVERY_USER)])
            .await?;
        let mut entries: Vec<Entry> = self
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
        // The most selective keyword the query names; the rest is checked on the records.
        let candidates = if let Some(uid) = &query.uid {
            // Still checks the context, then reads the one entry.
            self.uids_under(&[]).await?;
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
            self.uids_under(&primary).await?
        };
        let mut entries = self.read_entries(&candidates).await?;
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
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        for pattern in ["o", "i"] {
            for chunk in self
                .scan(&format!("{}:{pattern}:*", self.prefix))
                .await?
                .chunks(512)
            {
                let _: () = conn.del(chunk).await.map_err(unavailable)?;
            }
        }
        Ok(())
    }
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
