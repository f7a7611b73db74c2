//! The keyspace dict: entries in one dense Vec (index order is what SCAN,
//! RANDOMKEY and eviction sampling walk), found through a hash table of
//! 4-byte positions, as Redis's dict rehashes keys when the table grows or
//! an entry moves (a swap_remove). An entry is 64 bytes and holds the key
//! (up to 16 bytes inline), the value (strings up to 38 bytes inline) and
//! the LRU/LFU fields: a typical small string key costs no allocation at
//! all, and a lookup finds key and value in the cache line it loaded.
//!
//! TTLs live beside the entries, keyed by position (`Ttls`): a key without
//! one pays nothing for it (Redis keeps them in a second dict too), and an
//! entry's flag says whether to look.

use std::mem::ManuallyDrop;

use super::keyhash::KeyHasher;
use super::value::Value;
use hashbrown::HashTable;

/// Keys up to this long are stored in the entry.
const KEY_INLINE: usize = 16;
/// `Entry::klen` of a key on the heap.
const KEY_HEAP: u8 = u8::MAX;

union KeyBytes {
    inline: [u8; KEY_INLINE],
    heap: ManuallyDrop<Box<[u8]>>,
}

/// One key of the keyspace: its value and the metadata Redis keeps in the
/// robj. The key itself is set when the entry goes into a dict.
pub struct Entry {
    pub value: Value,
    key: KeyBytes,
    /// Key length when inline, else KEY_HEAP.
    klen: u8,
    /// LRU clock in seconds at last access (OBJECT IDLETIME).
    pub lru: u32,
    /// LFU counter (logarithmic, Redis's 8 bits); decays by idle time.
    pub freq: u8,
    /// A string modified in place (APPEND, SETRANGE, SETBIT, PFADD...):
    /// Redis reports such strings as "raw" whatever their length.
    pub raw: bool,
    /// Has an expiry in the dict's `Ttls`.
    ttl: bool,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 64);

impl Entry {
    /// A fresh entry (LRU now, LFU's initial counter), not yet keyed.
    pub fn new(value: Value, lru: u32) -> Self {
        Entry {
            value,
            key: KeyBytes {
                inline: [0; KEY_INLINE],
            },
            klen: 0,
            lru,
            freq: super::evict::LFU_INIT_VAL,
            raw: false,
            ttl: false,
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        if self.klen == KEY_HEAP {
            // SAFETY: klen == KEY_HEAP is set only together with `heap`.
            unsafe { &self.key.heap }
        } else {
            // SAFETY: otherwise `inline` is the live field, klen <= 16.
            unsafe { &self.key.inline[..self.klen as usize] }
        }
    }

    /// Whether the key has a TTL (its time is in the dict).
    pub fn has_ttl(&self) -> bool {
        self.ttl
    }

    fn drop_key(&mut self) {
        if self.klen == KEY_HEAP {
            // SAFETY: `heap` is live (klen says so) and dropped only here,
            // after which klen marks the inline field live again.
            unsafe { ManuallyDrop::drop(&mut self.key.heap) };
            self.klen = 0;
        }
    }

    fn set_key(&mut self, key: &[u8]) {
        self.drop_key();
        if key.len() <= KEY_INLINE {
            let mut inline = [0; KEY_INLINE];
            inline[..key.len()].copy_from_slice(key);
            self.key = KeyBytes { inline };
            self.klen = key.len() as u8;
        } else {
            self.key = KeyBytes {
                heap: ManuallyDrop::new(key.into()),
            };
            self.klen = KEY_HEAP;
        }
    }

    /// Heap bytes the entry owns for its key (MEMORY USAGE).
    pub fn key_heap_size(&self) -> usize {
        if self.klen == KEY_HEAP {
            self.key().len()
        } else {
            0
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.drop_key();
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        let mut e = Entry::new(self.value.clone(), self.lru);
        e.set_key(self.key());
        e.freq = self.freq;
        e.raw = self.raw;
        e.ttl = self.ttl;
        e
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key())
            .field("value", &self.value)
            .field("lru", &self.lru)
            .field("freq", &self.freq)
            .field("raw", &self.raw)
            .finish()
    }
}

/// Expiry times by entry position: a dense list (sampled by active expiry
/// and volatile eviction) found through a table of 4-byte indexes. 12 bytes
/// per item plus the table's ~10.
#[derive(Clone, Default)]
struct Ttls {
    items: Vec<[u32; 3]>,
    index: HashTable<u32>,
}

#[inline]
fn pos_hash(pos: u32) -> u64 {
    // Positions are dense and not chosen by clients: a multiplicative hash
    // spreads them over the low bits (bucket) and the top bits (tag).
    (pos as u64 | 1 << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline]
fn item(pos: u32, at: u64) -> [u32; 3] {
    [pos, at as u32, (at >> 32) as u32]
}

#[inline]
fn item_at(it: &[u32; 3]) -> u64 {
    it[1] as u64 | (it[2] as u64) << 32
}

impl Ttls {
    fn find(&self, pos: u32) -> Option<usize> {
        let items = &self.items;
        self.index
            .find(pos_hash(pos), |&i| items[i as usize][0] == pos)
            .map(|&i| i as usize)
    }

    fn get(&self, pos: u32) -> u64 {
        self.find(pos).map_or(0, |i| item_at(&self.items[i]))
    }

    fn set(&mut self, pos: u32, at: u64) {
        if let Some(i) = self.find(pos) {
            self.items[i] = item(pos, at);
            return;
        }
        let i = self.items.len() as u32;
        let items = &self.items;
        self.index
            .insert_unique(pos_hash(pos), i, |&j| pos_hash(items[j as usize][0]));
        self.items.push(item(pos, at));
    }

    fn remove(&mut self, pos: u32) -> u64 {
        let items = &self.items;
        let Ok(found) = self
            .index
            .find_entry(pos_hash(pos), |&i| items[i as usize][0] == pos)
        else {
            return 0;
        };
        let (i, _) = found.remove();
        let i = i as usize;
        let last = self.items.len() - 1;
        if i != last {
            let moved = self.items[last][0];
            let slot = self
                .index
                .find_mut(pos_hash(moved), |&j| j as usize == last)
                .expect("every item is indexed");
            *slot = i as u32;
        }
        item_at(&self.items.swap_remove(i))
    }

    /// The item for entry `from` now belongs to entry `to`.
    fn repoint(&mut self, from: u32, to: u32) {
        let at = self.remove(from);
        self.set(to, at);
    }
}

#[derive(Default, Clone)]
pub struct DenseMap {
    entries: Vec<Entry>,
    table: HashTable<u32>,
    ttls: Ttls,
    hasher: KeyHasher,
}

impl DenseMap {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get_index_of(&self, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.table
            .find(self.hash(key), |&i| entries[i as usize].key() == key)
            .map(|&i| i as usize)
    }

    /// Starts loading what a lookup of `key` will touch (table slots and
    /// candidate entries) without waiting for it. A pipeline does this for
    /// all its keys first, so their cache misses overlap instead of
    /// following one another.
    pub fn prefetch(&self, key: &[u8]) {
        let entries = &self.entries;
        // `find` hands every candidate position to the closure; answering
        // "no match" walks the probe sequence without reading any entry.
        let _ = self.table.find(self.hash(key), |&i| {
            if let Some(e) = entries.get(i as usize) {
                prefetch_read(e as *const Entry as *const u8);
            }
            false
        });
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.get_index_of(key).map(|i| &self.entries[i])
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let i = self.get_index_of(key)?;
        Some(&mut self.entries[i])
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get_index_of(key).is_some()
    }

    pub fn get_index(&self, i: usize) -> Option<(&[u8], &Entry)> {
        self.entries.get(i).map(|e| (e.key(), e))
    }

    /// The expiry of the entry at `i` (ms since the epoch), 0 for none.
    #[inline]
    pub fn expire_at(&self, i: usize) -> u64 {
        if self.entries[i].ttl {
            self.ttls.get(i as u32)
        } else {
            0
        }
    }

    /// The expiry of `key`, 0 for none or a missing key.
    pub fn expire_of(&self, key: &[u8]) -> u64 {
        self.get_index_of(key).map_or(0, |i| self.expire_at(i))
    }

    /// Sets (or with 0 clears) the expiry of the entry at `i`.
    pub fn set_expire_at(&mut self, i: usize, at: u64) {
        let e = &mut self.entries[i];
        if at != 0 {
            e.ttl = true;
            self.ttls.set(i as u32, at);
        } else if e.ttl {
            e.ttl = false;
            self.ttls.remove(i as u32);
        }
    }

    /// Number of keys with an expiry.
    pub fn expires_len(&self) -> usize {
        self.ttls.items.len()
    }

    /// The `n`th key with an expiry (n < expires_len): its entry position
    /// and time. Sampling walks these, as Redis walks its expires dict.
    pub fn expire_item(&self, n: usize) -> (usize, u64) {
        let it = &self.ttls.items[n];
        (it[0] as usize, item_at(it))
    }

    /// Inserts a new entry (key absent) with expiry `at` (0 for none);
    /// returns its position.
    pub fn insert_new(&mut self, key: &[u8], mut entry: Entry, at: u64) -> usize {
        let hash = self.hash(key);
        let pos =
            u32::try_from(self.entries.len()).expect("more than 4G keys in one DB of one shard");
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, pos, |&i| hasher.hash_one(entries[i as usize].key()));
        entry.set_key(key);
        entry.ttl = false;
        self.entries.push(entry);
        self.set_expire_at(pos as usize, at);
        pos as usize
    }

    /// Inserts or replaces (keeping the key's position); returns the entry
    /// and expiry replaced.
    pub fn insert(&mut self, key: &[u8], mut entry: Entry, at: u64) -> Option<(Entry, u64)> {
        match self.get_index_of(key) {
            Some(i) => {
                let old_at = self.expire_at(i);
                let old = &mut self.entries[i];
                // The key stays where it is: swap the new entry's contents in.
                entry.ttl = old.ttl;
                std::mem::swap(&mut old.value, &mut entry.value);
                std::mem::swap(&mut old.lru, &mut entry.lru);
                std::mem::swap(&mut old.freq, &mut entry.freq);
                std::mem::swap(&mut old.raw, &mut entry.raw);
                entry.set_key(key);
                self.set_expire_at(i, at);
                entry.ttl = false;
                Some((entry, old_at))
            }
            None => {
                self.insert_new(key, entry, at);
                None
            }
        }
    }

    /// Removes `key`; the last entry takes its place (IndexMap's
    /// swap_remove). Returns the entry and its expiry.
    pub fn swap_remove(&mut self, key: &[u8]) -> Option<(Entry, u64)> {
        let hash = self.hash(key);
        let entries = &self.entries;
        let found = self
            .table
            .find_entry(hash, |&i| entries[i as usize].key() == key)
            .ok()?;
        let (pos, _) = found.remove();
        let pos = pos as usize;
        let at = self.expire_at(pos);
        if self.entries[pos].ttl {
            self.ttls.remove(pos as u32);
        }
        let last = self.entries.len() - 1;
        if pos != last {
            let moved = self.hash(self.entries[last].key());
            let slot = self
                .table
                .find_mut(moved, |&i| i as usize == last)
                .expect("every entry is in the table");
            *slot = pos as u32;
            if self.entries[last].ttl {
                self.ttls.repoint(last as u32, pos as u32);
            }
        }
        let mut e = self.entries.swap_remove(pos);
        e.ttl = false;
        Some((e, at))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &Entry)> + DoubleEndedIterator {
        self.entries.iter().map(|e| (e.key(), e))
    }

    /// Entries with their expiry (0 for none).
    pub fn iter_with_expire(&self) -> impl Iterator<Item = (&[u8], &Entry, u64)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key(), e, self.expire_at(i)))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + DoubleEndedIterator {
        self.entries.iter().map(|e| e.key())
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &Entry> + DoubleEndedIterator {
        self.entries.iter()
    }

    /// Bytes held by the dict's own structures (entries, tables), not by
    /// values: INFO's overhead fields.
    pub fn overhead_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.table.capacity() * 5
            + self.ttls.items.capacity() * 12
            + self.ttls.index.capacity() * 5
    }

    /// Of which, for expiries.
    pub fn expires_overhead_bytes(&self) -> usize {
        self.ttls.items.capacity() * 12 + self.ttls.index.capacity() * 5
    }
}

#[inline(always)]
pub fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into
    // the program, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl std::ops::Index<usize> for DenseMap {
    type Output = Entry;
    fn index(&self, i: usize) -> &Entry {
        &self.entries[i]
    }
}

impl std::ops::IndexMut<usize> for DenseMap {
    fn index_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i]
    }
}

impl<'a> IntoIterator for &'a DenseMap {
    type Item = (&'a [u8], &'a Entry);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, Entry>, fn(&'a Entry) -> (&'a [u8], &'a Entry)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|e| (e.key(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Vec<u8> {
        // Short (inline) and long (heap) keys both.
        if n.is_multiple_of(2) {
            format!("key:{n}").into_bytes()
        } else {
            format!("a-longer-key-than-inline:{n}").into_bytes()
        }
    }

    fn val(n: usize) -> Entry {
        Entry::new(Value::Str(n.to_string().into_bytes().into()), 0)
    }

    fn num(e: &Entry) -> usize {
        match &e.value {
            Value::Str(s) => std::str::from_utf8(s).unwrap().parse().unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn insert_get_swap_remove_keep_positions_and_ttls_consistent() {
        let mut m = DenseMap::default();
        // Every fifth key has a TTL equal to 1000 + n.
        let ttl = |n: usize| {
            if n.is_multiple_of(5) {
                1000 + n as u64
            } else {
                0
            }
        };
        for n in 0..5000 {
            assert!(m.insert(&key(n), val(n), ttl(n)).is_none());
        }
        let (old, old_at) = m.insert(&key(7), val(70), 0).unwrap();
        assert_eq!((num(&old), old_at), (7, 0));
        assert_eq!(m.len(), 5000);
        assert_eq!(m.expires_len(), 1000);
        // Remove every third key; the moved last entries (and their TTLs)
        // must stay findable.
        for n in (0..5000).step_by(3) {
            let want = if n == 7 { 70 } else { n };
            let (e, at) = m.swap_remove(&key(n)).unwrap();
            assert_eq!((num(&e), at), (want, ttl(n)));
            assert!(m.swap_remove(&key(n)).is_none());
        }
        for n in 0..5000 {
            let got = m.get(&key(n)).map(num);
            let want = (n % 3 != 0).then_some(if n == 7 { 70 } else { n });
            assert_eq!(got, want, "key {n}");
            if let Some(i) = m.get_index_of(&key(n)) {
                assert_eq!(m.get_index(i).unwrap().0, &key(n)[..]);
                assert_eq!(m.expire_at(i), ttl(n), "ttl of key {n}");
                assert_eq!(m[i].has_ttl(), ttl(n) != 0);
            }
        }
        let live_ttls = (0..5000).filter(|&n| n % 3 != 0 && ttl(n) != 0).count();
        assert_eq!(m.expires_len(), live_ttls);
        for k in 0..m.expires_len() {
            let (pos, at) = m.expire_item(k);
            assert_eq!(m.expire_at(pos), at);
        }
        // Clearing and setting TTLs in place.
        let i = m.get_index_of(&key(10)).unwrap();
        m.set_expire_at(i, 0);
        assert_eq!(m.expire_of(&key(10)), 0);
        m.set_expire_at(i, 5);
        m.set_expire_at(i, 6);
        assert_eq!(m.expire_of(&key(10)), 6);
        assert_eq!(m.expires_len(), live_ttls);
        let c = m.clone();
        assert_eq!(c.iter_with_expire().filter(|e| e.2 != 0).count(), live_ttls);
        while let Some((k, _)) = m.get_index(0) {
            let k = k.to_vec();
            m.swap_remove(&k).unwrap();
        }
        assert!(m.is_empty());
        assert_eq!(m.expires_len(), 0);
        assert_eq!(c.len(), 5000 - 5000usize.div_ceil(3));
    }
}
