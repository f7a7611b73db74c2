//! Hash values.
//!
//! Two representations for Redis 7.0's two encodings. While "listpack" the
//! pairs live in one contiguous buffer (`packed::Packed`) in insertion
//! order, and a delete shifts the rest down, as a listpack does, so HGETALL
//! and friends reply in Redis's order and a small hash costs one allocation
//! (none when tiny) instead of two per field plus an index table. Lookups
//! scan, which is what Redis does too below hash-max-listpack-entries. Once
//! a limit is crossed the buffer becomes an IndexSet of field+value blocks
//! ("hashtable", one-way as in Redis) whose deletes swap the last entry in,
//! which keeps them O(1) and keeps HSCAN's positional cursor sound (see
//! `scan_step`).

use indexmap::IndexSet;

use super::keyhash::KeyHasher;
use super::packed::{Packed, PackedIter};

type Table = IndexSet<Pair, KeyHasher>;

/// A field and its value in one allocation (the "hashtable" form): the
/// field's LEB128 length, the field, then the value. Found, hashed and
/// compared by the field alone, so the table is looked up by `&[u8]`.
/// One block instead of two Vecs (48 bytes of headers and two blocks)
/// per field.
#[derive(Clone, Debug)]
struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Self {
        let (h, n) = super::packed::len_header(field.len());
        let mut v = Vec::with_capacity(n + field.len() + value.len());
        v.extend_from_slice(&h[..n]);
        v.extend_from_slice(field);
        v.extend_from_slice(value);
        Pair(v.into_boxed_slice())
    }

    #[inline]
    fn split(&self) -> (&[u8], &[u8]) {
        let (f, end) = super::packed::read_elem(&self.0, 0);
        (f, &self.0[end..])
    }
}

impl std::borrow::Borrow<[u8]> for Pair {
    fn borrow(&self) -> &[u8] {
        self.split().0
    }
}

impl std::hash::Hash for Pair {
    /// As the field's `[u8]` hashes, which `Borrow` requires.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.split().0.hash(h)
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.split().0 == other.split().0
    }
}

impl Eq for Pair {}

#[derive(Clone, Debug)]
pub struct Hash {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Packed(Packed),
    Table(Box<Table>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Packed(Packed::default()),
        }
    }
}

impl PartialEq for Hash {
    /// Same encoding and same field/value pairs (order aside, as a map).
    fn eq(&self, other: &Self) -> bool {
        self.is_hashtable() == other.is_hashtable()
            && self.len() == other.len()
            && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
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

/// Where a field sits in a packed hash: the byte ranges of the field and of
/// its value.
struct Slot {
    field: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl Packed {
    /// Finds `field` among the pairs; when absent, also says how many pairs
    /// there are.
    fn find_pair(&self, field: &[u8]) -> Result<Slot, usize> {
        let mut it = self.elems();
        let mut n = 0;
        while let Some((f, fr)) = it.next_with_range() {
            let (_, vr) = it
                .next_with_range()
                .expect("packed hash: field without value");
            if f == field {
                return Ok(Slot {
                    field: fr,
                    value: vr,
                });
            }
            n += 1;
        }
        Err(n)
    }

    fn get_value(&self, field: &[u8]) -> Option<&[u8]> {
        let mut it = self.elems();
        while let Some(f) = it.next() {
            let v = it.next()?;
            if f == field {
                return Some(v);
            }
        }
        None
    }
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.elems().count() / 2,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Packed(p) => p.is_empty(),
            Repr::Table(t) => t.is_empty(),
        }
    }

    /// False while Redis would keep this hash in a listpack.
    pub fn is_hashtable(&self) -> bool {
        matches!(self.repr, Repr::Table(_))
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.is_hashtable() {
            "hashtable"
        } else {
            "listpack"
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.get_value(field),
            Repr::Table(t) => t.get(field).map(|p| p.split().1),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Field/value pairs in reply order (what DEBUG DIGEST-VALUE mixes).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => Iter(IterRepr::Packed(p.elems())),
            Repr::Table(t) => Iter(IterRepr::Table(t.iter())),
        }
    }

    /// The pair at position `i` of `iter`'s order (O(i) while packed).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(i),
            Repr::Table(t) => t.get_index(i).map(Pair::split),
        }
    }

    pub fn convert_to_hashtable(&mut self) {
        if let Repr::Packed(p) = &self.repr {
            let mut t = Table::with_capacity_and_hasher(self.len(), Default::default());
            let mut it = p.elems();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert(Pair::new(f, v));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Redis's hashTypeTryConversion: converts up front when any of the
    /// strings about to be written is longer than the listpack value limit.
    pub fn try_conversion<'a>(
        &mut self,
        lens: impl IntoIterator<Item = &'a [u8]>,
        lim: HashLimits,
    ) {
        if !self.is_hashtable() && lens.into_iter().any(|s| s.len() > lim.max_value) {
            self.convert_to_hashtable();
        }
    }

    /// Sets a field. Returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if let Repr::Packed(p) = &mut self.repr {
            if field.len() <= lim.max_value && value.len() <= lim.max_value {
                // An update keeps the field's position in both encodings.
                match p.find_pair(field) {
                    Ok(slot) => {
                        p.replace(slot.value, value);
                        return false;
                    }
                    Err(n) if n < lim.max_entries => {
                        p.push(&[field, value]);
                        return true;
                    }
                    Err(_) => {}
                }
            }
            self.convert_to_hashtable();
        }
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        // An update keeps the field's position.
        t.replace_full(Pair::new(field, value)).1.is_none()
    }

    /// Deletes a field. Returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => match p.find_pair(field) {
                Ok(slot) => {
                    p.remove(slot.field.start..slot.value.end);
                    true
                }
                Err(_) => false,
            },
            Repr::Table(t) => t.swap_remove(field),
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

    /// Builds a hash with the given encoding from distinct pairs in order
    /// (the RDB loader, which decided the encoding); None on a duplicate field.
    pub fn from_distinct_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>, hashtable: bool) -> Option<Self> {
        if hashtable {
            let mut t = Table::with_capacity_and_hasher(pairs.len(), Default::default());
            for (f, v) in pairs {
                if !t.insert(Pair::new(&f, &v)) {
                    return None;
                }
            }
            return Some(Hash {
                repr: Repr::Table(Box::new(t)),
            });
        }
        // Duplicates: a sorted copy of the fields when there are many.
        if pairs.len() > 16 {
            let mut fs: Vec<&[u8]> = pairs.iter().map(|(f, _)| f.as_slice()).collect();
            fs.sort_unstable();
            if fs.windows(2).any(|w| w[0] == w[1]) {
                return None;
            }
        } else if (1..pairs.len()).any(|i| pairs[..i].iter().any(|(f, _)| *f == pairs[i].0)) {
            return None;
        }
        let mut p = Packed::default();
        let elems: Vec<&[u8]> = pairs.iter().flat_map(|(f, v)| [&f[..], &v[..]]).collect();
        p.push(&elems);
        Some(Hash {
            repr: Repr::Packed(p),
        })
    }
}

/// Field/value pairs of a `Hash`.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Packed(PackedIter<'a>),
    Table(indexmap::set::Iter<'a, Pair>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(it) => Some((it.next()?, it.next()?)),
            IterRepr::Table(it) => it.next().map(Pair::split),
        }
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
    fn packed_updates_in_place_and_long_strings() {
        let big = lim(128, 100_000);
        let long = vec![b'x'; 300]; // a two-byte length header
        let mut h = Hash::new();
        h.set(b"a", b"1", big);
        h.set(b"b", &long, big);
        h.set(b"c", b"3", big);
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.get(b"b"), Some(&long[..]));
        // Grow, shrink and keep the position.
        assert!(!h.set(b"a", &long, big));
        assert!(!h.set(b"b", b"", big));
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            pairs,
            vec![
                (b"a".to_vec(), long.clone()),
                (b"b".to_vec(), vec![]),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(h.get_index(2), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(h.get_index(3), None);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.len(), 2);
        assert_eq!(h.get(b"c"), Some(&b"3"[..]));
        assert!(h.remove(b"b") && h.remove(b"c"));
        assert!(h.is_empty());

        // Conversion keeps the order; equality ignores it, not the encoding.
        let a = Hash::from_pairs([("x", "1"), ("y", "2")], big);
        let mut b = Hash::from_pairs([("y", "2"), ("x", "1")], big);
        assert_eq!(a, b);
        b.convert_to_hashtable();
        assert_ne!(a, b);
        assert_eq!(b.get_index(0), Some((&b"y"[..], &b"2"[..])));
    }

    #[test]
    fn table_pairs_update_in_place() {
        let mut h = Hash::new();
        let long = vec![b'f'; 200]; // a two-byte field length
        let l = lim(0, 1000);
        assert!(h.set(b"a", b"1", l));
        assert!(h.set(&long, b"", l));
        assert!(h.set(b"", b"empty field", l));
        assert_eq!(h.encoding(), "hashtable");
        assert!(!h.set(b"a", b"22", l));
        assert!(!h.set(&long, &long, l));
        assert_eq!(h.get_index(0), Some((&b"a"[..], &b"22"[..])));
        assert_eq!(h.get(&long), Some(&long[..]));
        assert_eq!(h.get(b""), Some(&b"empty field"[..]));
        assert_eq!(h.get(b"b"), None);
        assert!(h.remove(b"a") && !h.remove(b"a"));
        assert_eq!(h.len(), 2);
        assert_eq!(h.get_index(0), Some((&b""[..], &b"empty field"[..])));
    }

    #[test]
    fn distinct_pairs_reject_duplicates() {
        let p = |fs: &[&str]| -> Vec<(Vec<u8>, Vec<u8>)> {
            fs.iter()
                .map(|f| (f.as_bytes().to_vec(), b"v".to_vec()))
                .collect()
        };
        assert!(Hash::from_distinct_pairs(p(&["a", "b", "a"]), false).is_none());
        assert!(Hash::from_distinct_pairs(p(&["a", "b", "a"]), true).is_none());
        let many: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        let mut fs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let h = Hash::from_distinct_pairs(p(&fs), false).unwrap();
        assert_eq!((h.len(), h.encoding()), (40, "listpack"));
        fs.push("f7");
        assert!(Hash::from_distinct_pairs(p(&fs), false).is_none());
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
            let got: Vec<Vec<u8>> = pos.map(|p| h.get_index(p).unwrap().0.to_vec()).collect();
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
