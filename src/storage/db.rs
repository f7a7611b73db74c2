//! One logical database: a dict of keys, values and TTLs (see `dict`).

use super::dict::DenseMap;
pub use super::strval::Str;

pub type Key = Box<[u8]>;

pub use super::keyhash::KeyHasher;
pub use super::value::Value;

pub use super::dict::Entry;

/// A key's value and metadata outside the keyspace: what RDB loading,
/// RESTORE, COPY and MOVE carry from one place to another.
#[derive(Clone, Debug)]
pub struct Record {
    pub value: Value,
    /// Absolute expiry in ms since the epoch; 0 = no TTL.
    pub expire_at: u64,
    pub lru: u32,
    pub freq: u8,
    pub raw: bool,
}

impl Record {
    fn into_entry(self) -> (Entry, u64) {
        let mut e = Entry::new(self.value, self.lru);
        e.freq = self.freq;
        e.raw = self.raw;
        (e, self.expire_at)
    }

    fn from_entry(e: Entry, expire_at: u64) -> Self {
        let lru = e.lru;
        let freq = e.freq;
        let raw = e.raw;
        Record {
            value: take_value(e),
            expire_at,
            lru,
            freq,
            raw,
        }
    }
}

/// Moves the value out of an entry (which has a Drop for its key).
fn take_value(mut e: Entry) -> Value {
    std::mem::replace(&mut e.value, Value::Str(super::strval::Str::new()))
}

#[derive(Default)]
pub struct Db {
    /// Keys, values and TTLs.
    pub dict: DenseMap,
    /// Replicas hide expired keys but never delete them (the master's DEL does).
    pub replica_mode: bool,
    /// This DB's number (for the DEL an expiry sends to replicas).
    pub index: usize,
    /// Estimated mean remaining TTL (ms) of the keys with one, from active
    /// expiry's samples (INFO keyspace `avg_ttl`, Redis's running average).
    pub avg_ttl: u64,
    /// The keys of each cluster slot (cluster mode; see slot_index).
    pub slots: super::slot_index::SlotIndex,
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
        // Inline strings came with the entry.
        if let Some(Entry {
            value: Value::Str(Str::Heap(s)),
            ..
        }) = self.dict.get(key)
        {
            super::dict::prefetch_read(s.as_ptr());
        }
    }

    /// True if the key exists and is logically expired at `now`.
    fn is_expired(&self, key: &[u8], now: u64) -> bool {
        matches!(self.dict.get_index_of(key), Some(i) if self.dict[i].has_ttl() && self.dict.expire_at(i) <= now)
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
        if self.dict[i].has_ttl() && self.dict.expire_at(i) <= now {
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

    /// The TTL of `key` (ms since the epoch), 0 for none or missing.
    pub fn expire_of(&self, key: &[u8]) -> u64 {
        self.dict.expire_of(key)
    }

    /// Number of keys with a TTL.
    pub fn expires_len(&self) -> usize {
        self.dict.expires_len()
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
        match self.dict.get_index_of(key) {
            Some(i) => {
                let e = &mut self.dict[i];
                e.value = value;
                e.lru = lru;
                e.raw = false;
                if e.has_ttl() || expire_at != 0 {
                    self.dict.set_expire_at(i, expire_at);
                }
            }
            None => {
                let i = self.dict.insert_new(key, Entry::new(value, lru), expire_at);
                self.slots.added(i, key);
                super::notify::notify(super::notify::NEW, "new", key, self.index);
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
        let Some(i) = self.dict.get_index_of(key) else {
            return false;
        };
        self.dict.set_expire_at(i, expire_at);
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
        super::notify::notify(super::notify::EXPIRED, "expired", key, self.index);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Record> {
        if !self.slots.active() {
            let (e, at) = self.dict.swap_remove(key)?;
            return Some(Record::from_entry(e, at));
        }
        let i = self.dict.get_index_of(key)?;
        let last = self.dict.len() - 1;
        let (e, at) = self.dict.swap_remove(key)?;
        self.slots.removed(i, last);
        Some(Record::from_entry(e, at))
    }

    /// Inserts a record as is (RENAME, MOVE, COPY, RESTORE, loading); an
    /// existing key is overwritten in place, keeping its dict position (a
    /// SCAN in progress does not miss it).
    pub fn insert_entry(&mut self, key: &[u8], rec: Record) {
        let (e, at) = rec.into_entry();
        let len = self.dict.len();
        if self.dict.insert(key, e, at).is_none() {
            self.slots.added(len, key);
        }
    }

    pub fn clear(&mut self) {
        self.dict = DenseMap::default();
        self.slots.clear();
    }

    /// Keys of `slot`, at most `max`: from the slot index when there is
    /// one, else by a scan.
    pub fn keys_in_slot(&self, slot: usize, max: usize) -> Vec<&[u8]> {
        match self.slots.positions(slot, self.dict.len()) {
            Some(p) => p
                .iter()
                .take(max)
                .filter_map(|&i| self.dict.get_index(i as usize).map(|(k, _)| k))
                .collect(),
            None => self
                .dict
                .keys()
                .filter(|k| super::slot::key_slot(k) == slot)
                .take(max)
                .collect(),
        }
    }

    /// COUNTKEYSINSLOT.
    pub fn count_in_slot(&self, slot: usize) -> usize {
        match self.slots.positions(slot, self.dict.len()) {
            Some(p) => p.len(),
            None => self
                .dict
                .keys()
                .filter(|k| super::slot::key_slot(k) == slot)
                .count(),
        }
    }
}
