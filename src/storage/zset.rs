//! Sorted set values, ordered by (score, member bytes).
//!
//! Two representations, as Redis 7.0 has: a sorted vector while small (the
//! "listpack" encoding: linear member lookups, like a listpack) and, once a
//! size limit is crossed, a skiplist with spans (O(log n) rank) plus a
//! member -> score map (the "skiplist" encoding). Conversion is one-way
//! except for the STORE commands, which build their result and may shrink it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

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

/// A score as a listpack gives it back: "-0" is stored as the integer 0.
#[inline]
fn lp(s: f64) -> f64 {
    if s == 0.0 { 0.0 } else { s }
}

/// Gives back a small set's slack once it is mostly unused.
fn shrink<T>(v: &mut Vec<T>) {
    if v.capacity() > 2 * v.len() + 4 {
        v.shrink_to_fit();
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
    /// Sorted by (score, member); kept at its exact capacity.
    Small(Vec<(Box<[u8]>, f64)>),
    /// Boxed so that a small set does not carry the skiplist's fields.
    Big(Box<Skiplist>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Small(Vec::new())
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
            let mut v: Vec<_> = items
                .into_iter()
                .map(|(m, s)| (m.into_boxed_slice(), lp(s)))
                .collect();
            v.shrink_to_fit();
            ZSet {
                repr: Repr::Small(v),
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
            Repr::Small(v) => v.len(),
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
            Repr::Small(v) => v.iter().find(|(m, _)| &**m == member).map(|e| e.1),
            Repr::Big(s) => s.dict.get(member).copied(),
        }
    }

    /// Converts to the skiplist encoding (no-op if already there).
    pub fn to_skiplist(&mut self) {
        if let Repr::Small(v) = &mut self.repr {
            let mut sl = Skiplist::new();
            for (m, s) in std::mem::take(v) {
                sl.insert_new(&m, s);
            }
            self.repr = Repr::Big(Box::new(sl));
        }
    }

    /// Converts back to listpack when within the limits (Redis does this only
    /// for results of ZUNIONSTORE & co).
    pub fn maybe_to_listpack(&mut self, lim: Limits) {
        if let Repr::Big(sl) = &self.repr
            && sl.len <= lim.entries
            && sl.dict.keys().all(|m| m.len() <= lim.value)
        {
            let mut v: Vec<_> = self.iter().map(|(m, s)| (Box::from(m), lp(s))).collect();
            v.shrink_to_fit();
            self.repr = Repr::Small(v);
        }
    }

    /// Adds a member known to be absent, converting to skiplist first when the
    /// listpack would exceed the limits.
    pub fn insert_new(&mut self, member: &[u8], score: f64, lim: Limits) {
        if let Repr::Small(v) = &self.repr
            && (v.len() + 1 > lim.entries || member.len() > lim.value)
        {
            self.to_skiplist();
        }
        match &mut self.repr {
            Repr::Small(v) => {
                let i = v.partition_point(|(m, s)| before(*s, m, score, member));
                v.reserve_exact(1);
                v.insert(i, (member.into(), lp(score)));
            }
            Repr::Big(sl) => sl.insert_new(member, score),
        }
    }

    /// Changes the score of an existing member from `old` to `new`.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        match &mut self.repr {
            Repr::Small(v) => {
                let i = v
                    .iter()
                    .position(|(m, _)| &**m == member)
                    .expect("member present");
                let (m, _) = v.remove(i);
                let j = v.partition_point(|(m2, s)| before(*s, m2, new, member));
                v.insert(j, (m, lp(new)));
            }
            Repr::Big(sl) => sl.update_score(member, old, new),
        }
    }

    /// Removes a member, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Small(v) => {
                let i = v.iter().position(|(m, _)| &**m == member)?;
                let score = v.remove(i).1;
                shrink(v);
                Some(score)
            }
            Repr::Big(sl) => {
                let score = sl.dict.get(member).copied()?;
                sl.delete(score, member);
                Some(score)
            }
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Small(v) => v.iter().position(|(m, _)| &**m == member),
            Repr::Big(sl) => {
                let score = *sl.dict.get(member)?;
                Some(sl.rank(score, member) - 1)
            }
        }
    }

    /// The element at 0-based ascending rank `r` (< len).
    pub fn get(&self, r: usize) -> (&[u8], f64) {
        match &self.repr {
            Repr::Small(v) => (&v[r].0, v[r].1),
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
            Repr::Small(_) => r as u32,
            Repr::Big(sl) => sl.by_rank(r + 1),
        };
        Iter {
            set: self,
            pos,
            rev,
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
            Repr::Small(v) => v.iter().position(|(m, s)| r.gte_min(*s, m))?,
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
            Repr::Small(v) => v.iter().rposition(|(m, s)| r.lte_max(*s, m))?,
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
                v.drain(start..=end);
                shrink(v);
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
                let (m, s) = if max { v.pop()? } else { v.remove(0) };
                Some((m.into_vec(), s))
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
            Repr::Small(v) => (0, v.iter().map(|(m, s)| (&**m, d2string(*s))).collect()),
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
    /// Vector index (listpack) or node slot (skiplist); NIL when done.
    pos: u32,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos == NIL {
            return None;
        }
        match &self.set.repr {
            Repr::Small(v) => {
                let (m, s) = &v[self.pos as usize];
                self.pos = if self.rev {
                    self.pos.checked_sub(1).unwrap_or(NIL)
                } else if self.pos as usize + 1 < v.len() {
                    self.pos + 1
                } else {
                    NIL
                };
                Some((m, *s))
            }
            Repr::Big(sl) => {
                let n = &sl.nodes[self.pos as usize];
                self.pos = if self.rev { n.back } else { n.links[0].fwd };
                Some((&n.ele, n.score))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Skiplist with spans, nodes kept in an arena (slot 0 is the header).

const NIL: u32 = u32::MAX;
const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Link {
    fwd: u32,
    /// Number of level-0 steps this link jumps.
    span: u32,
}

#[derive(Clone)]
struct Node {
    ele: Arc<[u8]>,
    score: f64,
    back: u32,
    /// Empty for free slots.
    links: Box<[Link]>,
}

#[derive(Clone)]
struct Skiplist {
    dict: HashMap<Arc<[u8]>, f64>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    empty: Arc<[u8]>,
}

fn random_level() -> usize {
    let mut l = 1;
    // p = 1/4, as Redis.
    while l < MAX_LEVEL && fastrand::u32(..) & 0xFFFF < 0xFFFF / 4 {
        l += 1;
    }
    l
}

impl Skiplist {
    fn new() -> Self {
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        let header = Node {
            ele: empty.clone(),
            score: 0.0,
            back: NIL,
            links: vec![Link { fwd: NIL, span: 0 }; MAX_LEVEL].into_boxed_slice(),
        };
        Skiplist {
            dict: HashMap::new(),
            nodes: vec![header],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            empty,
        }
    }

    #[inline]
    fn link(&self, x: u32, i: usize) -> Link {
        self.nodes[x as usize].links[i]
    }

    #[inline]
    fn link_mut(&mut self, x: u32, i: usize) -> &mut Link {
        &mut self.nodes[x as usize].links[i]
    }

    /// True when node `f` sorts before (score, ele).
    #[inline]
    fn node_before(&self, f: u32, score: f64, ele: &[u8]) -> bool {
        let n = &self.nodes[f as usize];
        before(n.score, &n.ele, score, ele)
    }

    /// Predecessors at each level of the position of (score, ele), and their ranks.
    fn find_update(&self, score: f64, ele: &[u8]) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let mut update = [0u32; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                if l.fwd != NIL && self.node_before(l.fwd, score, ele) {
                    rank[i] += l.span;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let ele: Arc<[u8]> = Arc::from(member);
        self.dict.insert(ele.clone(), score);
        self.insert_node(score, ele, None);
    }

    /// Links a node for (score, ele); reuses slot `reuse` when given.
    fn insert_node(&mut self, score: f64, ele: Arc<[u8]>, reuse: Option<u32>) -> u32 {
        let (mut update, mut rank) = self.find_update(score, &ele);
        let lvl = random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = 0;
                self.link_mut(0, i).span = self.len as u32;
            }
            self.level = lvl;
        }
        let node = Node {
            ele,
            score,
            back: if update[0] == 0 { NIL } else { update[0] },
            links: vec![Link { fwd: NIL, span: 0 }; lvl].into_boxed_slice(),
        };
        let x = match reuse.or_else(|| self.free.pop()) {
            Some(x) => {
                self.nodes[x as usize] = node;
                x
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let u = self.link(update[i], i);
            let d = rank[0] - rank[i];
            *self.link_mut(x, i) = Link {
                fwd: u.fwd,
                span: u.span - d,
            };
            *self.link_mut(update[i], i) = Link {
                fwd: x,
                span: d + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.link_mut(u, i).span += 1;
        }
        let f = self.link(x, 0).fwd;
        if f != NIL {
            self.nodes[f as usize].back = x;
        } else {
            self.tail = x;
        }
        self.len += 1;
        x
    }

    /// Unlinks node `x` given its predecessors; does not free the slot.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.link(u, i);
            if ul.fwd == x {
                let xl = self.link(x, i);
                *self.link_mut(u, i) = Link {
                    fwd: xl.fwd,
                    span: ul.span + xl.span - 1,
                };
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let f = self.link(x, 0).fwd;
        let back = self.nodes[x as usize].back;
        if f != NIL {
            self.nodes[f as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.link(0, self.level - 1).fwd == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    fn free_slot(&mut self, x: u32) {
        let n = &mut self.nodes[x as usize];
        n.links = Box::new([]);
        n.ele = self.empty.clone();
        self.free.push(x);
    }

    /// Removes (score, ele), which must be present, from list and dict.
    fn delete(&mut self, score: f64, ele: &[u8]) {
        let (update, _) = self.find_update(score, ele);
        let x = self.link(update[0], 0).fwd;
        debug_assert!(x != NIL && &*self.nodes[x as usize].ele == ele);
        self.unlink(x, &update);
        self.dict.remove(ele);
        self.free_slot(x);
    }

    fn update_score(&mut self, ele: &[u8], old: f64, new: f64) {
        let (update, _) = self.find_update(old, ele);
        let x = self.link(update[0], 0).fwd;
        debug_assert!(x != NIL && &*self.nodes[x as usize].ele == ele);
        let back = self.nodes[x as usize].back;
        let fwd = self.link(x, 0).fwd;
        // In place when the order cannot change (strict, like Redis).
        let stays = (back == NIL || self.nodes[back as usize].score < new)
            && (fwd == NIL || self.nodes[fwd as usize].score > new);
        if stays {
            self.nodes[x as usize].score = new;
        } else {
            self.unlink(x, &update);
            let e = self.nodes[x as usize].ele.clone();
            self.insert_node(new, e, Some(x));
        }
        if let Some(s) = self.dict.get_mut(ele) {
            *s = new;
        }
    }

    /// 1-based rank of a present element.
    fn rank(&self, score: f64, ele: &[u8]) -> usize {
        let mut x = 0u32;
        let mut r = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.fwd == NIL {
                    break;
                }
                let n = &self.nodes[l.fwd as usize];
                if n.score < score || (n.score == score && &*n.ele <= ele) {
                    r += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            if x != 0 && &*self.nodes[x as usize].ele == ele {
                return r;
            }
        }
        unreachable!("rank of a missing element")
    }

    /// Slot of the element at 1-based rank `rank` (1..=len).
    fn by_rank(&self, rank: usize) -> u32 {
        let mut x = 0u32;
        let mut t = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.fwd != NIL && t + l.span as usize <= rank {
                    t += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            if t == rank {
                return x;
            }
        }
        NIL
    }

    /// Number of leading elements for which `pred` holds, descending the
    /// levels like Redis's zslFirstInRange (pred should hold on a prefix).
    fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = 0u32;
        let mut t = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.fwd == NIL {
                    break;
                }
                let n = &self.nodes[l.fwd as usize];
                if pred(n.score, &n.ele) {
                    t += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
        }
        t
    }

    /// Deletes 1-based ranks start..=end.
    fn delete_rank_range(&mut self, start: usize, end: usize) {
        let mut update = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        let mut t = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.fwd != NIL && t + (l.span as usize) < start {
                    t += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        t += 1;
        x = self.link(x, 0).fwd;
        while x != NIL && t <= end {
            let next = self.link(x, 0).fwd;
            self.unlink(x, &update);
            let ele = self.nodes[x as usize].ele.clone();
            self.dict.remove(&*ele);
            self.free_slot(x);
            t += 1;
            x = next;
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn d2string_like_redis() {
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(1e17), "100000000000000000");
        assert_eq!(d2string(1e19), "1e+19");
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(f64::INFINITY), "inf");
    }
}
