//! One logical database: a dict of keys plus the set of keys with a TTL
//! (sampled by active expiry, like Redis's `expires` dict).

use super::dict::{DenseMap, DenseSet};

pub type Key = Box<[u8]>;

/// Keys are user-controlled: a keyed hash (random per process) keeps
/// collision attacks out, and aHash costs a fraction of SipHash.
pub type KeyHasher = ahash::RandomState;

/// A value: one variant per Redis type (HyperLogLog is a Str, as in Redis).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    // Boxed: the enum is as small as a string's Vec, so a string key's
    // entry stays 48 bytes (unboxed, a Hash made every Entry 104).
    List(Box<super::list::List>),
    Hash(Box<super::hash::Hash>),
    Set(Box<super::set::Set>),
    ZSet(Box<super::zset::ZSet>),
    Stream(Box<super::stream::Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in ms since the epoch; 0 = no TTL.
    pub expire_at: u64,
    /// LRU clock in seconds at last access (OBJECT IDLETIME).
    pub lru: u32,
    /// LFU counter (logarithmic, Redis's 8 bits); decays by idle time.
    pub freq: u8,
    /// A string modified in place (APPEND, SETRANGE, SETBIT, PFADD...):
    /// Redis reports such strings as "raw" whatever their length.
    pub raw: bool,
}

#[derive(Default)]
pub struct Db {
    pub dict: DenseMap<Entry>,
    pub expires: DenseSet,
    /// Replicas hide expired keys but never delete them (the master's DEL does).
    pub replica_mode: bool,
    /// This DB's number (for the DEL an expiry sends to replicas).
    pub index: usize,
}

thread_local! {
    /// The running command's time (ms), set by `Ctx::new` and refreshed by
    /// the shard cron: writes stamp their LRU clock from it instead of
    /// reading the clock again (a clock read per SET showed in profiles).
    static COMMAND_TIME_MS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

pub fn set_command_time(ms: u64) {
    COMMAND_TIME_MS.with(|c| c.set(ms));
}

pub fn lru_clock() -> u32 {
    let ms = COMMAND_TIME_MS.with(|c| c.get());
    let ms = if ms == 0 { super::now_ms() } else { ms };
    (ms / 1000) as u32
}

/// While writes are paused (FAILOVER, CLIENT PAUSE) the stream must not grow:
/// expired keys are hidden but not deleted (Redis does the same under a
/// write pause).
fn expiry_paused() -> bool {
    super::hooks().is_some_and(|h| (h.writes_paused)())
}

/// See `Hooks::applying_master`.
fn applying_master() -> bool {
    super::hooks().is_some_and(|h| (h.applying_master)())
}

impl Db {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// See `DenseMap::prefetch`.
    pub fn prefetch(&self, key: &[u8]) {
        self.dict.prefetch(key);
    }

    /// Second step after `prefetch`: with the entry (likely) cached, starts
    /// loading a string's bytes.
    pub fn prefetch_value(&self, key: &[u8]) {
        if let Some(Entry {
            value: Value::Str(s),
            ..
        }) = self.dict.get(key)
        {
            super::dict::prefetch_read(s.as_ptr());
        }
    }

    /// True if the key exists and is logically expired at `now`.
    fn is_expired(&self, key: &[u8], now: u64) -> bool {
        matches!(self.dict.get(key), Some(e) if e.expire_at != 0 && e.expire_at <= now)
            && !(self.replica_mode && applying_master())
    }

    /// Deletes `key` if it is expired. Returns true when it was removed
    /// (the caller counts expired_keys).
    pub fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        if self.replica_mode || !self.is_expired(key, now) || expiry_paused() {
            return false;
        }
        self.remove_expired(key);
        true
    }

    /// Lookup for reading: hides expired keys, updates the LRU clock.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_mut(key, now).map(|e| &*e)
    }

    /// Lookup for writing; expired keys are removed first.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup(key, now).0
    }

    /// One hash lookup: the live entry (LRU clock touched), and whether an
    /// expired entry was deleted on the way (the caller counts it).
    pub fn lookup(&mut self, key: &[u8], now: u64) -> (Option<&mut Entry>, bool) {
        let Some(i) = self.dict.get_index_of(key) else {
            return (None, false);
        };
        let expire_at = self.dict[i].expire_at;
        if expire_at != 0 && expire_at <= now {
            if self.replica_mode {
                // Hidden from clients; the master's commands still see it
                // (its DEL, not our clock, ends the key).
                if !applying_master() {
                    return (None, false);
                }
                let e = &mut self.dict[i];
                return (Some(e), false);
            }
            if expiry_paused() {
                return (None, false);
            }
            self.remove_expired(key);
            return (None, true);
        }
        let e = &mut self.dict[i];
        super::evict::touch(e, now);
        (Some(e), false)
    }

    /// Lookup without touching the LRU clock or expiring (OBJECT, TYPE-free peeks).
    pub fn peek(&self, key: &[u8], now: u64) -> Option<&Entry> {
        if self.is_expired(key, now) {
            return None;
        }
        self.dict.get(key)
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.get_mut(key, now).is_some()
    }

    /// Sets the value and clears any TTL (SET semantics).
    pub fn set(&mut self, key: &[u8], value: Value) {
        self.set_with_expire(key, value, 0);
    }

    /// Sets the value with an absolute expiry (0 = none).
    pub fn set_with_expire(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let lru = lru_clock();
        match self.dict.get_mut(key) {
            Some(e) => {
                e.value = value;
                e.lru = lru;
                e.raw = false;
                if e.expire_at != 0 && expire_at == 0 {
                    self.expires.swap_remove(key);
                } else if e.expire_at == 0 && expire_at != 0 {
                    self.expires.insert_key(key);
                }
                e.expire_at = expire_at;
            }
            None => {
                self.dict.insert(
                    key,
                    Entry {
                        freq: crate::storage::evict::LFU_INIT_VAL,
                        value,
                        expire_at,
                        lru,
                        raw: false,
                    },
                );
                if expire_at != 0 {
                    self.expires.insert_key(key);
                }
            }
        }
    }

    /// Replaces the value, keeping the TTL (KEEPTTL, APPEND, INCR...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        match self.dict.get_mut(key) {
            Some(e) => {
                e.value = value;
                e.lru = lru_clock();
                e.raw = false;
            }
            None => self.set(key, value),
        }
    }

    /// Sets the TTL of an existing key (0 removes it). Returns false if missing.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        let Some(e) = self.dict.get_mut(key) else {
            return false;
        };
        if expire_at == 0 {
            if e.expire_at != 0 {
                self.expires.swap_remove(key);
            }
        } else if e.expire_at == 0 {
            self.expires.insert_key(key);
        }
        e.expire_at = expire_at;
        true
    }

    /// Marks a string as modified in place (see `Entry::raw`).
    pub fn mark_raw(&mut self, key: &[u8]) {
        if let Some(e) = self.dict.get_mut(key) {
            e.raw = true;
        }
    }

    /// Deletes a key whose TTL passed; replicas are sent a DEL.
    pub fn remove_expired(&mut self, key: &[u8]) {
        if let Some(h) = super::hooks() {
            (h.key_expired)(self.index, key);
        }
        self.remove(key);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.dict.swap_remove(key)?;
        if e.expire_at != 0 {
            self.expires.swap_remove(key);
        }
        Some(e)
    }

    /// Inserts an entry as is (RENAME, MOVE, COPY, SWAPDB helpers).
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry) {
        self.remove(key);
        if entry.expire_at != 0 {
            self.expires.insert_key(key);
        }
        self.dict.insert(key, entry);
    }

    pub fn clear(&mut self) {
        self.dict = DenseMap::default();
        self.expires = DenseSet::default();
    }
}
