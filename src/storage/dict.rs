//! The keyspace dict: entries in one dense Vec (index order is what SCAN,
//! RANDOMKEY and eviction sampling walk), found through a hash table of
//! 4-byte positions. IndexMap keeps an 8-byte hash in every entry and an
//! 8-byte position per table slot; this layout saves ~20 bytes per key and
//! pays for it by hashing the key again when the table grows or an entry
//! moves (a swap_remove), as Redis's dict does. Keys up to 22 bytes live in
//! the entry itself: no allocation for them, and a lookup compares the key
//! in the cache line it already loaded (one memory miss fewer).

use super::db::KeyHasher;
use hashbrown::HashTable;

const INLINE: usize = 22;

/// A key as the dict stores it: inline when short, else on the heap (public
/// only because the borrowing iterator type names it).
#[derive(Clone)]

pub enum DictKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl DictKey {
    fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            DictKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            DictKey::Heap(key.into())
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            DictKey::Inline { len, bytes } => &bytes[..*len as usize],
            DictKey::Heap(k) => k,
        }
    }
}

pub struct DenseMap<V> {
    entries: Vec<(DictKey, V)>,
    table: HashTable<u32>,
    hasher: KeyHasher,
}

pub type DenseSet = DenseMap<()>;

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            entries: Vec::new(),
            table: HashTable::new(),
            hasher: KeyHasher::default(),
        }
    }
}

impl<V: Clone> Clone for DenseMap<V> {
    fn clone(&self) -> Self {
        DenseMap {
            entries: self.entries.clone(),
            table: self.table.clone(),
            hasher: self.hasher.clone(),
        }
    }
}

impl<V> DenseMap<V> {
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
            .find(self.hash(key), |&i| entries[i as usize].0.as_bytes() == key)
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
                prefetch_read(e as *const (DictKey, V) as *const u8);
            }
            false
        });
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_index_of(key).map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let i = self.get_index_of(key)?;
        Some(&mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get_index_of(key).is_some()
    }

    pub fn get_index(&self, i: usize) -> Option<(&[u8], &V)> {
        self.entries.get(i).map(|(k, v)| (k.as_bytes(), v))
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        let hash = self.hash(key);
        let entries = &mut self.entries;
        if let Some(&i) = self
            .table
            .find(hash, |&i| entries[i as usize].0.as_bytes() == key)
        {
            return Some(std::mem::replace(&mut entries[i as usize].1, value));
        }
        let pos = u32::try_from(entries.len()).expect("more than 4G keys in one DB of one shard");
        let hasher = &self.hasher;
        self.table.insert_unique(hash, pos, |&i| {
            hasher.hash_one(entries[i as usize].0.as_bytes())
        });
        entries.push((DictKey::new(key), value));
        None
    }

    /// Removes `key`; the last entry takes its place (IndexMap's swap_remove).
    pub fn swap_remove(&mut self, key: &[u8]) -> Option<V> {
        let hash = self.hash(key);
        let entries = &self.entries;
        let found = self
            .table
            .find_entry(hash, |&i| entries[i as usize].0.as_bytes() == key)
            .ok()?;
        let (pos, _) = found.remove();
        let pos = pos as usize;
        let last = self.entries.len() - 1;
        if pos != last {
            let moved = self.hash(self.entries[last].0.as_bytes());
            let slot = self
                .table
                .find_mut(moved, |&i| i as usize == last)
                .expect("every entry is in the table");
            *slot = pos as u32;
        }
        Some(self.entries.swap_remove(pos).1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &V)> + DoubleEndedIterator {
        self.entries.iter().map(|(k, v)| (k.as_bytes(), v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + DoubleEndedIterator {
        self.entries.iter().map(|(k, _)| k.as_bytes())
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + DoubleEndedIterator {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl DenseSet {
    /// Adds `key`; false when it was there.
    pub fn insert_key(&mut self, key: &[u8]) -> bool {
        self.insert(key, ()).is_none()
    }

    pub fn key_at(&self, i: usize) -> &[u8] {
        self.entries[i].0.as_bytes()
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

impl<V> std::ops::Index<usize> for DenseMap<V> {
    type Output = V;
    fn index(&self, i: usize) -> &V {
        &self.entries[i].1
    }
}

impl<V> std::ops::IndexMut<usize> for DenseMap<V> {
    fn index_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries[i].1
    }
}

impl<'a, V> IntoIterator for &'a DenseMap<V> {
    type Item = (&'a [u8], &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (DictKey, V)>,
        fn(&'a (DictKey, V)) -> (&'a [u8], &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_bytes(), v))
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

    #[test]
    fn insert_get_swap_remove_keep_positions_consistent() {
        let mut m: DenseMap<usize> = DenseMap::default();
        for n in 0..5000 {
            assert_eq!(m.insert(&key(n), n), None);
        }
        assert_eq!(m.insert(&key(7), 70), Some(7));
        assert_eq!(m.len(), 5000);
        // Remove every third key; the moved last entries must stay findable.
        for n in (0..5000).step_by(3) {
            let want = if n == 7 { 70 } else { n };
            assert_eq!(m.swap_remove(&key(n)), Some(want));
            assert_eq!(m.swap_remove(&key(n)), None);
        }
        for n in 0..5000 {
            let got = m.get(&key(n)).copied();
            let want = (n % 3 != 0).then_some(if n == 7 { 70 } else { n });
            assert_eq!(got, want, "key {n}");
            if let Some(i) = m.get_index_of(&key(n)) {
                assert_eq!(m.get_index(i).unwrap().0, &key(n)[..]);
            }
        }
        assert_eq!(m.iter().count(), m.len());
        while let Some((k, _)) = m.get_index(0) {
            let k = k.to_vec();
            m.swap_remove(&k).unwrap();
        }
        assert!(m.is_empty());
    }
}
