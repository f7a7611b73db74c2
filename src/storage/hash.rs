//! Hash values.
//!
//! One IndexMap serves both Redis 7.0 encodings. While "listpack" it keeps
//! insertion order and deletes by shifting, like a listpack does, so HGETALL
//! and friends reply in the same order as Redis. Once "hashtable" (one-way,
//! as in Redis) deletes swap the last entry in, which keeps them O(1) and
//! keeps HSCAN's positional cursor sound (see `scan_step`).

use indexmap::IndexMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hash {
    pub fields: IndexMap<Vec<u8>, Vec<u8>, crate::storage::db::KeyHasher>,
    /// False while Redis would keep this hash in a listpack.
    pub hashtable: bool,
}

/// The listpack thresholds (hash-max-listpack-entries / -value).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.hashtable {
            "hashtable"
        } else {
            "listpack"
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field).map(|v| v.as_slice())
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.contains_key(field)
    }

    /// Field/value pairs in reply order (what DEBUG DIGEST-VALUE mixes).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(f, v)| (f.as_slice(), v.as_slice()))
    }

    pub fn convert_to_hashtable(&mut self) {
        self.hashtable = true;
    }

    /// Redis's hashTypeTryConversion: converts up front when any of the
    /// strings about to be written is longer than the listpack value limit.
    pub fn try_conversion<'a>(
        &mut self,
        lens: impl IntoIterator<Item = &'a [u8]>,
        lim: HashLimits,
    ) {
        if !self.hashtable && lens.into_iter().any(|s| s.len() > lim.max_value) {
            self.hashtable = true;
        }
    }

    /// Sets a field. Returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if !self.hashtable && (field.len() > lim.max_value || value.len() > lim.max_value) {
            self.hashtable = true;
        }
        // An update keeps the field's position in both encodings.
        let new = match self.fields.get_mut(field) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
                false
            }
            None => {
                self.fields.insert(field.to_vec(), value.to_vec());
                true
            }
        };
        if !self.hashtable && self.fields.len() > lim.max_entries {
            self.hashtable = true;
        }
        new
    }

    /// Deletes a field. Returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.hashtable {
            self.fields.swap_remove(field).is_some()
        } else {
            self.fields.shift_remove(field).is_some()
        }
    }

    /// Builds a hash from pairs (RESTORE, tests), picking the encoding the
    /// way a sequence of HSETs would.
    pub fn from_pairs<F, V>(pairs: impl IntoIterator<Item = (F, V)>, lim: HashLimits) -> Self
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut h = Hash::new();
        for (f, v) in pairs {
            h.set(f.as_ref(), v.as_ref(), lim);
        }
        h
    }
}

/// One step of a positional scan over `len` entries (HSCAN/SSCAN on a
/// hashtable encoding). The cursor counts the positions still to visit,
/// walking down from the end; 0 starts a scan and is returned at the end.
///
/// Walking down makes the cursor safe under the two ways positions change:
/// appends land above the cursor (new entries may be missed, which SCAN
/// allows), and a swap-remove moves the last entry into the hole, i.e.
/// from an already visited position down into any position, so an entry
/// present for the whole scan can be returned twice but never skipped.
/// Returns the next cursor and the positions to visit, highest first.
pub fn scan_step(len: usize, cursor: u64, count: usize) -> (u64, impl Iterator<Item = usize>) {
    let start = if cursor == 0 {
        len
    } else {
        (cursor.min(len as u64)) as usize
    };
    let lo = start.saturating_sub(count.max(1));
    (lo as u64, (lo..start).rev())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(e: usize, v: usize) -> HashLimits {
        HashLimits {
            max_entries: e,
            max_value: v,
        }
    }

    #[test]
    fn encodings_and_order() {
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1", lim(3, 4)));
        assert!(h.set(b"b", b"2", lim(3, 4)));
        assert!(h.set(b"c", b"3", lim(3, 4)));
        assert!(!h.set(b"a", b"9", lim(3, 4)));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.remove(b"a"));
        let keys: Vec<_> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
        h.set(b"d", b"4", lim(3, 4));
        h.set(b"e", b"5", lim(3, 4));
        assert_eq!(h.encoding(), "hashtable");
        h.remove(b"b");
        h.remove(b"c");
        assert_eq!(h.encoding(), "hashtable");

        let mut h = Hash::new();
        h.set(b"f", b"12345", lim(3, 4));
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        h.try_conversion([&b"x"[..], &b"yyyyy"[..]], lim(3, 4));
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn scan_never_misses_stable_entries() {
        // Remove entries while scanning; every entry present all along is seen.
        let mut h = Hash::new();
        let big = lim(0, 64);
        for i in 0..100 {
            h.set(format!("f{i}").as_bytes(), b"v", big);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut removed = std::collections::HashSet::new();
        let mut round = 0;
        loop {
            let (next, pos) = scan_step(h.len(), cursor, 7);
            let got: Vec<Vec<u8>> = pos
                .map(|p| h.fields.get_index(p).unwrap().0.clone())
                .collect();
            seen.extend(got);
            // Delete a couple of entries each round, some seen, some not.
            for k in [format!("f{}", round * 3), format!("f{}", 99 - round)] {
                if h.remove(k.as_bytes()) {
                    removed.insert(k.into_bytes());
                }
            }
            h.set(format!("new{round}").as_bytes(), b"v", big);
            round += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            let k = format!("f{i}").into_bytes();
            if !removed.contains(&k) {
                assert!(seen.contains(&k), "missed {i}");
            }
        }
    }

    #[test]
    fn scan_cursor_bounds() {
        let (c, p) = scan_step(5, 0, 10);
        assert_eq!(c, 0);
        assert_eq!(p.collect::<Vec<_>>(), vec![4, 3, 2, 1, 0]);
        let (c, p) = scan_step(5, 0, 2);
        assert_eq!(c, 3);
        assert_eq!(p.collect::<Vec<_>>(), vec![4, 3]);
        // A stale cursor beyond the end is clamped.
        let (c, p) = scan_step(2, 1000, 1);
        assert_eq!(c, 1);
        assert_eq!(p.collect::<Vec<_>>(), vec![1]);
        let (c, _) = scan_step(0, 0, 10);
        assert_eq!(c, 0);
    }
}
