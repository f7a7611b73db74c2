//! Set values.
//!
//! Redis 7.0 has two encodings, and keel three representations. While
//! "intset" the members are canonical integers kept sorted by value, so
//! iteration (SMEMBERS, SSCAN, SRANDMEMBER with a large count...) gives
//! Redis's intset order; they live in one buffer of fixed-width decimal
//! slots (`IntStrs`), which keeps a small set to one exact-size buffer (in
//! the value itself when it is tiny) while lookups stay binary searches and
//! members stay borrowable byte strings. "hashtable" sets of at most
//! `PACKED_MAX_ENTRIES` short members are one packed buffer in insertion
//! order (`Strs`, as Redis 7.2's listpack sets; 7.0 reports them as
//! "hashtable", and so does keel): lookups scan, deletes shift the rest
//! down. Larger ones are an IndexSet whose deletes swap the last member in.
//! Both keep SSCAN's positional cursor sound (see `hash::scan_step`).
//! Nothing goes back to "intset" (as in Redis).

use indexmap::IndexSet;

use super::keyhash::KeyHasher;
use super::packed::{Packed, PackedIter, SmallBuf};

type Table = IndexSet<Vec<u8>, KeyHasher>;

/// The packed "hashtable" form's limits (Redis 7.2's set-max-listpack-entries
/// and -value defaults; invisible to commands).
const PACKED_MAX_ENTRIES: usize = 128;
const PACKED_MAX_VALUE: usize = 64;

#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Ints(IntStrs),
    Strs(Packed),
    Table(Box<Table>),
}

impl Default for Set {
    /// An empty intset.
    fn default() -> Self {
        Set {
            repr: Repr::Ints(IntStrs::default()),
        }
    }
}

impl PartialEq for Set {
    /// Same encoding and same members.
    fn eq(&self, other: &Self) -> bool {
        self.is_hashtable() == other.is_hashtable()
            && self.len() == other.len()
            && self.iter().all(|m| other.contains(m))
    }
}

/// Redis caps intsets at 2^30 entries whatever set-max-intset-entries says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// The integer an intset can hold for `m` (Redis's string2ll rules).
pub fn as_int(m: &[u8]) -> Option<i64> {
    crate::util::parse_i64(m)
}

/// Sorted distinct integers as decimal strings in slots of one width, like
/// an intset's 16/32/64-bit widths: `buf[0]` is the width W (the longest
/// member's length), then each slot is a length byte and W bytes. Empty
/// when there are no members. A longer member widens every slot (never
/// narrowed back, as an intset is never downgraded).
#[derive(Clone, Debug, Default)]
struct IntStrs {
    buf: SmallBuf,
}

/// The value of a canonical decimal integer (what the slots hold).
fn int_of(d: &[u8]) -> i64 {
    let (neg, digits) = match d.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, d),
    };
    // Accumulating negatively reaches i64::MIN without overflow.
    let mut v: i64 = 0;
    for &c in digits {
        v = v.wrapping_mul(10).wrapping_sub((c - b'0') as i64);
    }
    if neg { v } else { v.wrapping_neg() }
}

impl IntStrs {
    fn width(&self) -> usize {
        self.buf.first().map_or(0, |&w| w as usize)
    }

    fn len(&self) -> usize {
        match self.width() {
            0 => 0,
            w => (self.buf.len() - 1) / (w + 1),
        }
    }

    /// The member in slot `i` (< len).
    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        let w = self.width();
        let at = 1 + i * (w + 1);
        let n = self.buf[at] as usize;
        &self.buf[at + 1..at + 1 + n]
    }

    /// Binary search by value: Ok(slot) or Err(insertion slot).
    fn find(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match int_of(self.get(mid)).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Inserts canonical integer `m` at slot `pos`, widening if needed.
    fn insert(&mut self, pos: usize, m: &[u8]) {
        let (n, old_w) = (self.len(), self.width());
        let w = old_w.max(m.len());
        let mut v = Vec::with_capacity(1 + (n + 1) * (w + 1));
        v.push(w as u8);
        let put = |v: &mut Vec<u8>, e: &[u8]| {
            v.push(e.len() as u8);
            v.extend_from_slice(e);
            v.resize(v.len() + w - e.len(), 0);
        };
        if w == old_w {
            // Same width: the slots around the new one are copied as they are.
            let at = 1 + pos * (w + 1);
            v.extend_from_slice(&self.buf[1..at]);
            put(&mut v, m);
            v.extend_from_slice(&self.buf[at..]);
        } else {
            for i in 0..pos {
                put(&mut v, self.get(i));
            }
            put(&mut v, m);
            for i in pos..n {
                put(&mut v, self.get(i));
            }
        }
        self.buf = v.into();
    }

    /// Removes slot `i` (< len).
    fn remove(&mut self, i: usize) {
        if self.len() == 1 {
            self.buf = SmallBuf::default();
            return;
        }
        let w = self.width();
        let at = 1 + i * (w + 1);
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.drain(at..at + w + 1);
        self.buf = v.into();
    }
}

/// Where `m` sits in a packed string set: its byte range and its position.
fn find_str(p: &Packed, m: &[u8]) -> Option<(std::ops::Range<usize>, usize)> {
    let mut it = p.elems();
    let mut i = 0;
    while let Some((e, r)) = it.next_with_range() {
        if e == m {
            return Some((r, i));
        }
        i += 1;
    }
    None
}

/// Whether `n` members, the longest `longest` bytes, stay packed.
fn fits_packed(n: usize, longest: usize) -> bool {
    n <= PACKED_MAX_ENTRIES && longest <= PACKED_MAX_VALUE
}

impl Set {
    /// An empty set with the encoding Redis's setTypeCreate picks for a set
    /// whose first member will be `first`.
    pub fn new_for(first: &[u8]) -> Self {
        if as_int(first).is_none() {
            Set {
                repr: Repr::Strs(Packed::default()),
            }
        } else {
            Set::default()
        }
    }

    /// An empty intset (the start of SINTERSTORE/SUNION/SDIFF results).
    pub fn new_intset() -> Self {
        Set::default()
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Strs(p) => p.elems().count(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Ints(s) => s.len() == 0,
            Repr::Strs(p) => p.is_empty(),
            Repr::Table(t) => t.is_empty(),
        }
    }

    /// False while Redis would keep this set in an intset.
    pub fn is_hashtable(&self) -> bool {
        !matches!(self.repr, Repr::Ints(_))
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.is_hashtable() {
            "hashtable"
        } else {
            "intset"
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => as_int(m).is_some_and(|v| s.find(v).is_ok()),
            Repr::Strs(p) => m.len() <= PACKED_MAX_VALUE && p.elems().any(|e| e == m),
            Repr::Table(t) => t.contains(m),
        }
    }

    /// Members in iteration order (what DEBUG DIGEST-VALUE xors).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(s) => Iter(IterRepr::Ints(s, 0..s.len())),
            Repr::Strs(p) => Iter(IterRepr::Strs(p.elems())),
            Repr::Table(t) => Iter(IterRepr::Table(t.iter())),
        }
    }

    /// The member at position `i` of `iter`'s order (O(i) while packed).
    pub fn get_index(&self, i: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Ints(s) => (i < s.len()).then(|| s.get(i)),
            Repr::Strs(p) => p.elems().nth(i),
            Repr::Table(t) => t.get_index(i).map(|m| m.as_slice()),
        }
    }

    /// Converts to the big "hashtable" form.
    pub fn convert_to_hashtable(&mut self) {
        if matches!(self.repr, Repr::Table(_)) {
            return;
        }
        let mut t = Table::with_capacity_and_hasher(self.len(), Default::default());
        t.extend(self.iter().map(|m| m.to_vec()));
        self.repr = Repr::Table(Box::new(t));
    }

    /// Leaves the intset for a "hashtable" that will also get `m`: packed
    /// when everything fits, as Redis 7.2 picks a listpack.
    fn leave_intset(&mut self, m: &[u8]) {
        let Repr::Ints(s) = &self.repr else { return };
        let longest = (0..s.len()).map(|i| s.get(i).len()).max().unwrap_or(0);
        if !fits_packed(s.len() + 1, longest.max(m.len())) {
            return self.convert_to_hashtable();
        }
        let mut p = Packed::default();
        let members: Vec<&[u8]> = (0..s.len()).map(|i| s.get(i)).collect();
        p.push(&members);
        self.repr = Repr::Strs(p);
    }

    /// Adds a member. Returns true when it is new. `max_intset` is
    /// set-max-intset-entries.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Repr::Ints(s) = &mut self.repr {
            if let Some(v) = as_int(m) {
                let Err(pos) = s.find(v) else {
                    return false;
                };
                if s.len() < max_intset.min(INTSET_HARD_MAX) {
                    s.insert(pos, m);
                    return true;
                }
                // Too many for an intset: far too many to pack.
                self.convert_to_hashtable();
            } else {
                self.leave_intset(m);
            }
        }
        if let Repr::Strs(p) = &mut self.repr {
            if m.len() <= PACKED_MAX_VALUE {
                if p.elems().any(|e| e == m) {
                    return false;
                }
                if p.elems().count() < PACKED_MAX_ENTRIES {
                    p.push(&[m]);
                    return true;
                }
            }
            self.convert_to_hashtable();
        }
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        t.insert(m.to_vec())
    }

    /// Removes a member. Returns true when it existed.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => match as_int(m).map(|v| s.find(v)) {
                Some(Ok(i)) => {
                    s.remove(i);
                    true
                }
                _ => false,
            },
            Repr::Strs(p) => match find_str(p, m) {
                Some((r, _)) => {
                    p.remove(r);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.swap_remove(m),
        }
    }

    /// Removes and returns the member at position `i`.
    pub fn remove_index(&mut self, i: usize) -> Option<Vec<u8>> {
        match &mut self.repr {
            Repr::Ints(s) => {
                if i >= s.len() {
                    return None;
                }
                let m = s.get(i).to_vec();
                s.remove(i);
                Some(m)
            }
            Repr::Strs(p) => {
                let mut it = p.elems();
                for _ in 0..i {
                    it.next()?;
                }
                let (m, r) = it.next_with_range()?;
                let m = m.to_vec();
                p.remove(r);
                Some(m)
            }
            Repr::Table(t) => t.swap_remove_index(i),
        }
    }

    /// Builds a set from members (RESTORE, tests), picking the encoding the
    /// way SADD would.
    pub fn from_members<M: AsRef<[u8]>>(
        members: impl IntoIterator<Item = M>,
        max_intset: usize,
    ) -> Self {
        let mut it = members.into_iter().peekable();
        let mut s = match it.peek() {
            Some(first) => Set::new_for(first.as_ref()),
            None => Set::default(),
        };
        for m in it {
            s.add(m.as_ref(), max_intset);
        }
        s
    }

    /// Builds a set with the given encoding from distinct members (the RDB
    /// loader, which decided it); an intset must get only canonical
    /// integers. None on a duplicate.
    pub fn from_distinct_members(members: Vec<Vec<u8>>, intset: bool) -> Option<Self> {
        if !intset {
            let longest = members.iter().map(|m| m.len()).max().unwrap_or(0);
            if !fits_packed(members.len(), longest) {
                let mut t = Table::with_capacity_and_hasher(members.len(), Default::default());
                for m in members {
                    if !t.insert(m) {
                        return None;
                    }
                }
                return Some(Set {
                    repr: Repr::Table(Box::new(t)),
                });
            }
            // At most PACKED_MAX_ENTRIES: pairwise is cheap enough.
            if (1..members.len()).any(|i| members[..i].contains(&members[i])) {
                return None;
            }
            let mut p = Packed::default();
            let ms: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
            p.push(&ms);
            return Some(Set {
                repr: Repr::Strs(p),
            });
        }
        let mut v: Vec<(i64, Vec<u8>)> = members
            .into_iter()
            .map(|m| as_int(&m).map(|i| (i, m)))
            .collect::<Option<_>>()?;
        v.sort_unstable_by_key(|(i, _)| *i);
        if v.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let w = v.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        let mut s = IntStrs::default();
        if w > 0 {
            let mut buf = Vec::with_capacity(1 + v.len() * (w + 1));
            buf.push(w as u8);
            for (_, m) in &v {
                buf.push(m.len() as u8);
                buf.extend_from_slice(m);
                buf.resize(buf.len() + w - m.len(), 0);
            }
            s.buf = buf.into();
        }
        Some(Set {
            repr: Repr::Ints(s),
        })
    }
}

/// Members of a `Set`.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Ints(&'a IntStrs, std::ops::Range<usize>),
    Strs(PackedIter<'a>),
    Table(indexmap::set::Iter<'a, Vec<u8>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Ints(s, r) => r.next().map(|i| s.get(i)),
            IterRepr::Strs(it) => it.next(),
            IterRepr::Table(it) => it.next().map(|m| m.as_slice()),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Ints(_, r) => r.size_hint(),
            IterRepr::Strs(_) => (0, None),
            IterRepr::Table(it) => it.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<String> {
        s.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn intset_order_and_conversion() {
        let mut s = Set::new_for(b"5");
        for m in ["5", "-3", "10", "0", "5", "-20"] {
            s.add(m.as_bytes(), 512);
        }
        assert_eq!(members(&s), ["-20", "-3", "0", "5", "10"]);
        assert_eq!(s.encoding(), "intset");
        s.remove(b"0");
        assert_eq!(members(&s), ["-20", "-3", "5", "10"]);
        // Non-canonical integers are strings.
        s.add(b"007", 512);
        assert_eq!(s.encoding(), "hashtable");
        s.remove(b"007");
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::new_for(b"1");
        s.add(b"1", 2);
        s.add(b"2", 2);
        assert_eq!(s.encoding(), "intset");
        s.add(b"3", 2);
        assert_eq!(s.encoding(), "hashtable");

        assert_eq!(Set::new_for(b"a").encoding(), "hashtable");
        let s = Set::from_members(["9", "-9223372036854775808", "9223372036854775807"], 512);
        assert_eq!(
            members(&s),
            ["-9223372036854775808", "9", "9223372036854775807"]
        );
    }

    #[test]
    fn intset_slots_widen_remove_and_find() {
        let mut s = Set::new_intset();
        for m in ["3", "1", "2"] {
            assert!(s.add(m.as_bytes(), 512));
        }
        assert!(!s.add(b"2", 512));
        // Widening keeps every member and the order.
        assert!(s.add(b"-9223372036854775808", 512));
        assert!(s.add(b"40", 512));
        assert_eq!(members(&s), ["-9223372036854775808", "1", "2", "3", "40"]);
        for m in ["-9223372036854775808", "1", "2", "3", "40"] {
            assert!(s.contains(m.as_bytes()), "{m}");
        }
        for m in ["0", "4", "-1", "400", "01", "x", ""] {
            assert!(!s.contains(m.as_bytes()), "{m}");
        }
        assert_eq!(s.get_index(4), Some(&b"40"[..]));
        assert_eq!(s.get_index(5), None);
        assert_eq!(s.remove_index(0), Some(b"-9223372036854775808".to_vec()));
        assert!(s.remove(b"2"));
        assert!(!s.remove(b"2"));
        assert_eq!(members(&s), ["1", "3", "40"]);
        for m in ["1", "3", "40"] {
            assert!(s.remove(m.as_bytes()));
        }
        assert!(s.is_empty());
        assert_eq!(s.encoding(), "intset");
        assert!(s.add(b"-5", 512));
        assert_eq!(members(&s), ["-5"]);

        // The loader's builder: sorted, duplicates refused, kinds checked.
        let v = |ms: &[&str]| ms.iter().map(|m| m.as_bytes().to_vec()).collect::<Vec<_>>();
        let s = Set::from_distinct_members(v(&["10", "-1", "7"]), true).unwrap();
        assert_eq!(members(&s), ["-1", "7", "10"]);
        assert_eq!(s, Set::from_members(["7", "10", "-1"], 512));
        assert!(Set::from_distinct_members(v(&["1", "1"]), true).is_none());
        assert!(Set::from_distinct_members(v(&["1", "a"]), true).is_none());
        assert!(Set::from_distinct_members(v(&["a", "a"]), false).is_none());
        assert!(Set::from_distinct_members(vec![], true).unwrap().is_empty());
    }

    #[test]
    fn packed_strings_look_like_a_hashtable() {
        let mut s = Set::new_for(b"a");
        assert_eq!(s.encoding(), "hashtable");
        assert!(matches!(s.repr, Repr::Strs(_)));
        for m in ["a", "b", "c", "b", "7"] {
            s.add(m.as_bytes(), 512);
        }
        assert_eq!(members(&s), ["a", "b", "c", "7"]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(b"7") && !s.contains(b"d"));
        assert!(s.remove(b"b") && !s.remove(b"b"));
        assert_eq!(members(&s), ["a", "c", "7"]);
        assert_eq!(s.remove_index(1), Some(b"c".to_vec()));
        assert_eq!(s.remove_index(2), None);
        assert_eq!(s.get_index(1), Some(&b"7"[..]));
        // Same members, other form: equal (both "hashtable").
        let mut t = s.clone();
        t.convert_to_hashtable();
        assert!(matches!(t.repr, Repr::Table(_)));
        assert_eq!(s, t);

        // A long member or one member too many: the big form.
        let long = vec![b'x'; PACKED_MAX_VALUE + 1];
        s.add(&long, 512);
        assert!(matches!(s.repr, Repr::Table(_)));
        assert_eq!(members(&s)[..2], ["a", "7"]);
        let mut s = Set::new_for(b"m");
        for i in 0..PACKED_MAX_ENTRIES {
            assert!(s.add(format!("m{i}").as_bytes(), 512));
        }
        assert!(matches!(s.repr, Repr::Strs(_)));
        assert!(s.add(b"last", 512));
        assert!(matches!(s.repr, Repr::Table(_)));
        assert_eq!(s.len(), PACKED_MAX_ENTRIES + 1);

        // An intset that gets a string keeps its members, packed or not.
        let mut s = Set::from_members(["3", "1", "2"], 512);
        s.add(b"x", 512);
        assert!(matches!(s.repr, Repr::Strs(_)));
        assert_eq!(members(&s), ["1", "2", "3", "x"]);
        let mut s = Set::from_members((0..200).map(|i| i.to_string()), 512);
        s.add(b"x", 512);
        assert!(matches!(s.repr, Repr::Table(_)));
        assert_eq!(s.len(), 201);
        // Past set-max-intset-entries: the big form.
        let mut s = Set::from_members(["1", "2"], 2);
        s.add(b"3", 2);
        assert!(matches!(s.repr, Repr::Table(_)));

        // The loader: small distinct members packed, duplicates refused.
        let v = |ms: &[&str]| ms.iter().map(|m| m.as_bytes().to_vec()).collect::<Vec<_>>();
        let s = Set::from_distinct_members(v(&["b", "a"]), false).unwrap();
        assert!(matches!(s.repr, Repr::Strs(_)));
        assert_eq!(members(&s), ["b", "a"]);
        assert!(Set::from_distinct_members(v(&["b", "a", "b"]), false).is_none());
    }

    #[test]
    fn tiny_intsets_are_inline() {
        let s = Set::from_members((0..10).map(|i| i.to_string()), 512);
        let Repr::Ints(i) = &s.repr else {
            panic!("intset expected")
        };
        assert!(matches!(i.buf, SmallBuf::Inline { .. }));
        assert_eq!(std::mem::size_of::<Set>(), 32);
    }

    #[test]
    fn int_of_extremes() {
        for v in [0, 1, -1, 42, -42, i64::MAX, i64::MIN, 10, -10] {
            assert_eq!(int_of(v.to_string().as_bytes()), v);
        }
    }
}
