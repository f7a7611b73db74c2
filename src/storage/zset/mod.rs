//! Sorted set values, ordered by (score, member bytes).
//!
//! Two representations, as Redis 7.0 has: one packed buffer while small
//! (the "listpack" encoding, `listpack.rs`: linear member lookups, like a
//! listpack) and, once a size limit is crossed, a skiplist with spans
//! (O(log n) rank) plus a member index (the "skiplist" encoding,
//! `skiplist.rs`). Conversion is one-way except for the STORE commands,
//! which build their result and may shrink it. This file holds the ranges
//! and the operations on either form.

use std::fmt;

mod listpack;
mod skiplist;

use listpack::{Lp, lp_read};
use skiplist::{NIL, Skiplist};

/// zset-max-listpack-entries / zset-max-listpack-value, read once per command.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

/// A score or lex interval, with Redis's "first/last in range" semantics.
pub trait Range {
    /// True when the interval can hold nothing (min > max, or equal and open).
    fn is_empty(&self) -> bool;
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
}

/// `min`/`max` with "(" exclusivity, as ZRANGEBYSCORE parses them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl Range for ScoreRange {
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        if self.minex {
            score > self.min
        } else {
            score >= self.min
        }
    }
    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        if self.maxex {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lex range: "-", "+", "[x" or "(x".
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    /// "-": below every string (always exclusive, as in Redis).
    Min,
    /// "+": above every string.
    Max,
    /// A string and whether it is exclusive.
    Str(Vec<u8>, bool),
}

impl LexBound {
    fn excl(&self) -> bool {
        !matches!(self, LexBound::Str(_, false))
    }
}

/// Compares a member with a bound (Redis's sdscmplex).
fn cmp_lex(v: &[u8], b: &LexBound) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match b {
        LexBound::Min => Greater,
        LexBound::Max => Less,
        LexBound::Str(s, _) => v.cmp(s),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl Range for LexRange {
    fn is_empty(&self) -> bool {
        use std::cmp::Ordering::*;
        let c = match (&self.min, &self.max) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Greater,
            (LexBound::Str(a, _), LexBound::Str(b, _)) => a.cmp(b),
        };
        c == Greater || (c == Equal && (self.min.excl() || self.max.excl()))
    }
    fn gte_min(&self, _: f64, m: &[u8]) -> bool {
        let c = cmp_lex(m, &self.min);
        if self.min.excl() {
            c.is_gt()
        } else {
            c.is_ge()
        }
    }
    fn lte_max(&self, _: f64, m: &[u8]) -> bool {
        let c = cmp_lex(m, &self.max);
        if self.max.excl() {
            c.is_lt()
        } else {
            c.is_le()
        }
    }
}

/// (score, member) strictly before (score2, member2).
#[inline]
fn before(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> bool {
    s1 < s2 || (s1 == s2 && m1 < m2)
}

#[derive(Clone, Default)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Sorted by (score, member), packed.
    Small(Lp),
    /// Boxed so that a small set does not carry the skiplist's fields.
    Big(Box<Skiplist>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Small(Lp::default())
    }
}

impl ZSet {
    /// An empty set in the listpack encoding.
    pub fn new() -> Self {
        ZSet::default()
    }

    /// An empty set in the skiplist encoding.
    pub fn new_skiplist() -> Self {
        ZSet {
            repr: Repr::Big(Box::new(Skiplist::new())),
        }
    }

    /// Builds a set from items already sorted by (score, member) and unique:
    /// listpack when `listpack`, else skiplist.
    pub fn from_sorted(items: Vec<(Vec<u8>, f64)>, listpack: bool) -> Self {
        if listpack {
            ZSet {
                repr: Repr::Small(Lp::from_sorted(items.iter().map(|(m, s)| (&m[..], *s)))),
            }
        } else {
            let mut sl = Skiplist::new();
            for (m, s) in items {
                sl.insert_new(&m, s);
            }
            ZSet {
                repr: Repr::Big(Box::new(sl)),
            }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len as usize,
            Repr::Big(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Small(_) => "listpack",
            Repr::Big(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Small(_))
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Small(v) => v.find(member).map(|e| e.1),
            Repr::Big(s) => s.score_of(member),
        }
    }

    /// Converts to the skiplist encoding (no-op if already there).
    pub fn to_skiplist(&mut self) {
        if let Repr::Small(v) = &self.repr {
            let mut sl = Skiplist::new();
            for (m, s, _) in v.elems() {
                sl.insert_new(m, s);
            }
            self.repr = Repr::Big(Box::new(sl));
        }
    }

    /// Converts back to listpack when within the limits (Redis does this only
    /// for results of ZUNIONSTORE & co).
    pub fn maybe_to_listpack(&mut self, lim: Limits) {
        if let Repr::Big(sl) = &self.repr
            && sl.len <= lim.entries
            && sl.members().all(|m| m.len() <= lim.value)
        {
            let v = Lp::from_sorted(self.iter());
            self.repr = Repr::Small(v);
        }
    }

    /// Adds a member known to be absent, converting to skiplist first when the
    /// listpack would exceed the limits.
    pub fn insert_new(&mut self, member: &[u8], score: f64, lim: Limits) {
        if let Repr::Small(v) = &self.repr
            && (v.len as usize + 1 > lim.entries || member.len() > lim.value)
        {
            self.to_skiplist();
        }
        match &mut self.repr {
            Repr::Small(v) => v.insert(member, score),
            Repr::Big(sl) => sl.insert_new(member, score),
        }
    }

    /// Changes the score of an existing member from `old` to `new`.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        match &mut self.repr {
            Repr::Small(v) => {
                let (_, _, r) = v.find(member).expect("member present");
                v.splice(r, &[], -1);
                v.insert(member, new);
            }
            Repr::Big(sl) => sl.update_score(member, old, new),
        }
    }

    /// Removes a member, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Small(v) => {
                let (_, score, r) = v.find(member)?;
                v.splice(r, &[], -1);
                Some(score)
            }
            Repr::Big(sl) => {
                let score = sl.score_of(member)?;
                sl.delete(score, member);
                Some(score)
            }
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Small(v) => v.find(member).map(|e| e.0),
            Repr::Big(sl) => {
                let score = sl.score_of(member)?;
                Some(sl.rank(score, member) - 1)
            }
        }
    }

    /// The element at 0-based ascending rank `r` (< len).
    pub fn get(&self, r: usize) -> (&[u8], f64) {
        match &self.repr {
            Repr::Small(v) => {
                let (m, s, _) = v.elems().nth(r).expect("rank below len");
                (m, s)
            }
            Repr::Big(sl) => {
                let n = &sl.nodes[sl.by_rank(r + 1) as usize];
                (&n.ele, n.score)
            }
        }
    }

    /// Elements from rank `r` on, ascending, or descending when `rev`.
    pub fn iter_from(&self, r: usize, rev: bool) -> Iter<'_> {
        let pos = match &self.repr {
            _ if r >= self.len() => NIL,
            Repr::Small(v) => v.offset(r) as u32,
            Repr::Big(sl) => sl.by_rank(r + 1),
        };
        // Backwards over a packed set: the offsets up to `r`, popped in turn.
        let back = match &self.repr {
            Repr::Small(v) if rev && pos != NIL => {
                v.elems().take(r + 1).map(|e| e.2.start as u32).collect()
            }
            _ => Vec::new(),
        };
        Iter {
            set: self,
            pos,
            rev,
            back,
        }
    }

    /// All elements in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Whether some element can be in range (Redis's zslIsInRange check).
    fn may_hold<R: Range>(&self, r: &R) -> bool {
        if r.is_empty() || self.is_empty() {
            return false;
        }
        let (lm, ls) = self.get(self.len() - 1);
        let (fm, fs) = self.get(0);
        r.gte_min(ls, lm) && r.lte_max(fs, fm)
    }

    /// Rank of the first element in range.
    pub fn first_in_range<R: Range>(&self, r: &R) -> Option<usize> {
        if !self.may_hold(r) {
            return None;
        }
        let i = match &self.repr {
            Repr::Small(v) => v.elems().position(|(m, s, _)| r.gte_min(s, m))?,
            Repr::Big(sl) => sl.count_while(|s, m| !r.gte_min(s, m)),
        };
        if i >= self.len() {
            return None;
        }
        let (m, s) = self.get(i);
        r.lte_max(s, m).then_some(i)
    }

    /// Rank of the last element in range.
    pub fn last_in_range<R: Range>(&self, r: &R) -> Option<usize> {
        if !self.may_hold(r) {
            return None;
        }
        let i = match &self.repr {
            Repr::Small(v) => {
                v.elems()
                    .enumerate()
                    .filter(|(_, (m, s, _))| r.lte_max(*s, m))
                    .last()?
                    .0
            }
            Repr::Big(sl) => sl.count_while(|s, m| r.lte_max(s, m)).checked_sub(1)?,
        };
        let (m, s) = self.get(i);
        r.gte_min(s, m).then_some(i)
    }

    /// ZCOUNT / ZLEXCOUNT.
    pub fn count_in_range<R: Range>(&self, r: &R) -> usize {
        let Some(first) = self.first_in_range(r) else {
            return 0;
        };
        match &self.repr {
            Repr::Small(_) => self
                .iter_from(first, false)
                .take_while(|(m, s)| r.lte_max(*s, m))
                .count(),
            Repr::Big(_) => match self.last_in_range(r) {
                Some(last) => last + 1 - first,
                None => self.len() - first,
            },
        }
    }

    /// Removes the elements in range; returns how many.
    pub fn remove_range<R: Range>(&mut self, r: &R) -> usize {
        let Some(first) = self.first_in_range(r) else {
            return 0;
        };
        let n = self
            .iter_from(first, false)
            .take_while(|(m, s)| r.lte_max(*s, m))
            .count();
        self.remove_ranks(first, first + n - 1)
    }

    /// Removes ranks `start..=end` (0-based, valid); returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        match &mut self.repr {
            Repr::Small(v) => {
                let (a, b) = (v.offset(start), v.offset(end + 1));
                v.splice(a..b, &[], -((end + 1 - start) as isize));
            }
            Repr::Big(sl) => sl.delete_rank_range(start + 1, end + 1),
        }
        end + 1 - start
    }

    /// Removes and returns the lowest (or highest) element.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        match &mut self.repr {
            Repr::Small(v) => {
                let (m, s, r) = if max {
                    v.elems().last()?
                } else {
                    v.elems().next()?
                };
                let m = m.to_vec();
                v.splice(r, &[], -1);
                Some((m, s))
            }
            Repr::Big(sl) => {
                let x = if max {
                    sl.tail
                } else {
                    sl.nodes[0].links[0].fwd
                };
                let node = &sl.nodes[x as usize];
                let (m, s) = (node.ele.to_vec(), node.score);
                sl.delete(s, &m);
                Some((m, s))
            }
        }
    }

    /// One ZSCAN step. The listpack returns everything with cursor 0 (as
    /// Redis does); the skiplist scans node slots, which stay fixed for a
    /// member's lifetime, so members present throughout are always returned.
    /// Yields (member, score as Redis prints it) pairs.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(&[u8], String)>) {
        match &self.repr {
            Repr::Small(v) => (0, v.elems().map(|(m, s, _)| (m, d2string(s))).collect()),
            Repr::Big(sl) => {
                let mut out = Vec::new();
                let mut i = (cursor as usize).max(1);
                let mut budget = count.saturating_mul(10);
                while i < sl.nodes.len() && out.len() < count && budget > 0 {
                    let n = &sl.nodes[i];
                    if !n.links.is_empty() {
                        out.push((&*n.ele, crate::protocol::fmt_double(n.score)));
                    }
                    i += 1;
                    budget -= 1;
                }
                let next = if i >= sl.nodes.len() { 0 } else { i as u64 };
                (next, out)
            }
        }
    }
}

/// How a listpack stores a score (Redis's d2string): integers up to 2^62
/// print without exponent, the rest as %.17g.
pub fn d2string(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let lim = (i64::MAX / 2) as f64;
    if d.is_finite() && (-lim..=lim).contains(&d) && d.fract() == 0.0 {
        return (d as i64).to_string();
    }
    crate::protocol::fmt_double(d)
}

impl fmt::Debug for ZSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(m, s)| (String::from_utf8_lossy(m), s)))
            .finish()
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over (member, score) by rank.
pub struct Iter<'a> {
    set: &'a ZSet,
    /// Byte offset (listpack) or node slot (skiplist); NIL when done.
    pos: u32,
    rev: bool,
    /// Listpack backwards: offsets of the elements still to come, last first.
    back: Vec<u32>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos == NIL {
            return None;
        }
        match &self.set.repr {
            Repr::Small(v) => {
                let pos = if self.rev {
                    match self.back.pop() {
                        Some(p) => p,
                        None => {
                            self.pos = NIL;
                            return None;
                        }
                    }
                } else {
                    self.pos
                };
                let (m, s, next) = lp_read(&v.buf, pos as usize);
                if !self.rev {
                    self.pos = if next < v.buf.len() { next as u32 } else { NIL };
                }
                Some((m, s))
            }
            Repr::Big(sl) => {
                let n = &sl.nodes[self.pos as usize];
                self.pos = if self.rev { n.back } else { n.links[0].fwd };
                Some((&n.ele, n.score))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::listpack::lp_encode;
    use super::*;

    const BIG: Limits = Limits {
        entries: 0,
        value: 0,
    };
    const SMALL: Limits = Limits {
        entries: usize::MAX,
        value: usize::MAX,
    };

    fn check(z: &ZSet) {
        let v: Vec<_> = z.iter().collect();
        assert_eq!(v.len(), z.len());
        for w in v.windows(2) {
            assert!(before(w[0].1, w[0].0, w[1].1, w[1].0));
        }
        for (i, (m, s)) in v.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.get(i), (*m, *s));
            assert_eq!(z.score(m), Some(*s));
        }
        let r: Vec<_> = z.iter_from(z.len().saturating_sub(1), true).collect();
        let mut v2 = v.clone();
        v2.reverse();
        if !z.is_empty() {
            assert_eq!(r, v2);
        }
    }

    fn model_test(lim: Limits) {
        fastrand::seed(7);
        let mut z = ZSet::new();
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for step in 0..4000 {
            let m = format!("m{}", fastrand::u32(..300)).into_bytes();
            let s = fastrand::i32(-20..20) as f64;
            match fastrand::u32(..4) {
                0 | 1 => match z.score(&m) {
                    Some(old) => {
                        z.update(&m, old, s);
                        model.insert(m, s);
                    }
                    None => {
                        z.insert_new(&m, s, lim);
                        model.insert(m, s);
                    }
                },
                2 => assert_eq!(z.remove(&m), model.remove(&m)),
                _ => {
                    if !z.is_empty() {
                        let a = fastrand::usize(..z.len());
                        let b = fastrand::usize(a..z.len()).min(a + 5);
                        let gone: Vec<Vec<u8>> = z
                            .iter_from(a, false)
                            .take(b - a + 1)
                            .map(|e| e.0.to_vec())
                            .collect();
                        assert_eq!(z.remove_ranks(a, b), gone.len());
                        for g in gone {
                            model.remove(&g);
                        }
                    }
                }
            }
            if step % 97 == 0 {
                check(&z);
            }
            assert_eq!(z.len(), model.len());
        }
        check(&z);
        let mut want: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        want.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
        let got: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn skiplist_matches_model() {
        model_test(BIG);
    }

    #[test]
    fn listpack_matches_model() {
        model_test(SMALL);
    }

    #[test]
    fn conversion_is_one_way() {
        let lim = Limits {
            entries: 2,
            value: 4,
        };
        let mut z = ZSet::new();
        z.insert_new(b"a", 1.0, lim);
        z.insert_new(b"b", 2.0, lim);
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b"c", 3.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"c");
        assert_eq!(z.encoding(), "skiplist");
        z.maybe_to_listpack(lim);
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b"long!", 0.0, lim);
        assert_eq!(z.encoding(), "skiplist");
    }

    #[test]
    fn ranges() {
        for lim in [BIG, SMALL] {
            let mut z = ZSet::new();
            for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
                z.insert_new(m.as_bytes(), i as f64, lim);
            }
            let r = ScoreRange {
                min: 1.0,
                max: 3.0,
                minex: true,
                maxex: false,
            };
            assert_eq!(z.first_in_range(&r), Some(2));
            assert_eq!(z.last_in_range(&r), Some(3));
            assert_eq!(z.count_in_range(&r), 2);
            let empty = ScoreRange {
                min: 2.0,
                max: 2.0,
                minex: true,
                maxex: false,
            };
            assert_eq!(z.count_in_range(&empty), 0);
            let lr = LexRange {
                min: LexBound::Str(b"b".to_vec(), false),
                max: LexBound::Max,
            };
            let mut z2 = ZSet::new();
            for m in ["a", "b", "c"] {
                z2.insert_new(m.as_bytes(), 0.0, lim);
            }
            assert_eq!(z2.count_in_range(&lr), 2);
            let all = LexRange {
                min: LexBound::Min,
                max: LexBound::Max,
            };
            assert_eq!(z2.count_in_range(&all), 3);
            let none = LexRange {
                min: LexBound::Min,
                max: LexBound::Min,
            };
            assert!(none.is_empty());
            assert_eq!(z.remove_range(&r), 2);
            assert_eq!(z.iter().map(|e| e.1).collect::<Vec<_>>(), [0.0, 1.0, 4.0]);
        }
    }

    #[test]
    fn scan_returns_all() {
        let mut z = ZSet::new();
        for i in 0..1000 {
            z.insert_new(format!("{i}").as_bytes(), i as f64, BIG);
        }
        let mut cur = 0;
        let mut seen = std::collections::HashSet::new();
        loop {
            let (next, items) = z.scan(cur, 10);
            for (m, _) in items {
                seen.insert(m.to_vec());
            }
            if next == 0 {
                break;
            }
            cur = next;
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn packed_elements_round_trip_every_score_width() {
        let long = vec![b'm'; 300];
        let scores = [
            0.0,
            -128.0,
            127.0,
            128.0,
            -129.0,
            2147483647.0,
            -2147483648.0,
            2147483648.0,
            1.5,
            0.1,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            16777217.0,
            -0.5,
        ];
        for (i, &sc) in scores.iter().enumerate() {
            for m in [&b""[..], b"x", &long[..62], &long[..63], &long[..]] {
                let mut v = Vec::new();
                lp_encode(m, sc, &mut v);
                lp_encode(b"next", i as f64, &mut v);
                let (m2, s2, next) = lp_read(&v, 0);
                assert_eq!((m2, s2), (m, sc), "score {sc} member len {}", m.len());
                assert_eq!(lp_read(&v, next).0, b"next");
            }
        }
        // Reverse iteration and ranks over the packed form.
        let mut z = ZSet::new();
        let lim = Limits {
            entries: 128,
            value: 64,
        };
        for (i, &sc) in scores.iter().enumerate() {
            z.insert_new(format!("m{i}").as_bytes(), sc, lim);
        }
        assert!(z.is_listpack());
        let fwd: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let mut rev: Vec<_> = z
            .iter_from(z.len() - 1, true)
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        rev.reverse();
        assert_eq!(fwd, rev);
        for (r, (m, s)) in fwd.iter().enumerate() {
            assert_eq!(z.rank(m), Some(r));
            assert_eq!(z.get(r), (&m[..], *s));
        }
    }

    #[test]
    fn d2string_like_redis() {
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(1e17), "100000000000000000");
        assert_eq!(d2string(1e19), "1e+19");
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(f64::INFINITY), "inf");
    }
}
