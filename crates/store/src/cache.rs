//! A read cache for a backend whose process is the only writer of its database (SQLite, held
//! with an exclusive lock). The writer thread updates the cache in commit order, under the same
//! lock that readers use to insert, and bumps a generation on every write: a reader inserts what
//! it read only if no write happened since it started reading, so the cache never holds a value
//! older than the database.
//!
//! Shared databases (PostgreSQL, MySQL, Redis) must not use it: another server may write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::StoredObject;

/// Most objects kept; beyond it an arbitrary entry is evicted.
const CAPACITY: usize = 16_384;

#[derive(Default)]
struct Inner {
    generation: u64,
    objects: HashMap<String, Arc<StoredObject>>,
}

#[derive(Default)]
pub(crate) struct ObjectCache {
    inner: Mutex<Inner>,
}

/// A change committed to the database, as the cache sees it.
pub(crate) enum Committed<'a> {
    /// The object as written, and its revision in the database after the write.
    Upsert(&'a StoredObject, u64),
    Remove(&'a str),
    Clear,
}

impl ObjectCache {
    pub(crate) fn get(&self, uid: &str) -> Option<Arc<StoredObject>> {
        self.inner.lock().ok()?.objects.get(uid).cloned()
    }

    /// The generation to pass to [`ObjectCache::insert_read`], taken before reading.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.lock().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    /// Caches what a reader read, unless a write committed since `generation`.
    pub(crate) fn insert_read(&self, generation: u64, object: &Arc<StoredObject>) {
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation == generation
        {
            insert(&mut inner, object.clone());
        }
    }

    /// Applies committed changes, in commit order (called by the writer thread).
    pub(crate) fn committed(&self, change: Committed<'_>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.generation = inner.generation.wrapping_add(1);
        match change {
            // Kept fresh when cached; a new object waits for its first read, so a run of
            // creates does not fill the cache with keys nobody reads.
            Committed::Upsert(o, revision) => {
                if let Some(cached) = inner.objects.get_mut(&o.uid) {
                    let mut fresh = o.clone();
                    fresh.revision = revision;
                    *cached = Arc::new(fresh);
                }
            }
            Committed::Remove(uid) => {
                inner.objects.remove(uid);
            }
            Committed::Clear => inner.objects.clear(),
        }
    }
}

fn insert(inner: &mut Inner, object: Arc<StoredObject>) {
    if inner.objects.len() >= CAPACITY
        && !inner.objects.contains_key(&object.uid)
        && let Some(victim) = inner.objects.keys().next().cloned()
    {
        inner.objects.remove(&victim);
    }
    inner.objects.insert(object.uid.clone(), object);
}
