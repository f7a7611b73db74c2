//! The "skiplist" encoding: a skiplist with spans (O(log n) rank) whose
//! nodes sit in an arena (slot 0 is the header), found by member through a
//! table of slot numbers.

use hashbrown::HashTable;

use super::before;
use crate::storage::keyhash::KeyHasher;

pub(super) const NIL: u32 = u32::MAX;
const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) fwd: u32,
    /// Number of level-0 steps this link jumps.
    pub(super) span: u32,
}

#[derive(Clone)]
pub(super) struct Node {
    pub(super) ele: Box<[u8]>,
    pub(super) score: f64,
    pub(super) back: u32,
    /// Empty for free slots.
    pub(super) links: Box<[Link]>,
}

/// The member -> node index is a table of 4-byte slots hashed by the
/// node's member (as the keyspace dict does), not a map holding a second
/// reference to each member and a copy of its score.
#[derive(Clone)]
pub(super) struct Skiplist {
    dict: HashTable<u32>,
    hasher: KeyHasher,
    pub(super) nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    pub(super) len: usize,
    pub(super) tail: u32,
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
    pub(super) fn new() -> Self {
        let header = Node {
            ele: Box::default(),
            score: 0.0,
            back: NIL,
            links: vec![Link { fwd: NIL, span: 0 }; MAX_LEVEL].into_boxed_slice(),
        };
        Skiplist {
            dict: HashTable::new(),
            hasher: KeyHasher::default(),
            nodes: vec![header],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
        }
    }

    /// The slot of `member`'s node.
    fn slot_of(&self, member: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.dict
            .find(self.hasher.hash_one(member), |&i| {
                *nodes[i as usize].ele == *member
            })
            .copied()
    }

    pub(super) fn score_of(&self, member: &[u8]) -> Option<f64> {
        self.slot_of(member).map(|x| self.nodes[x as usize].score)
    }

    /// Members in slot order (not sorted).
    pub(super) fn members(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes[1..]
            .iter()
            .filter(|n| !n.links.is_empty())
            .map(|n| &*n.ele)
    }

    /// Drops slot `x` from the member index (before its node is freed).
    fn unindex(&mut self, x: u32) {
        let h = self.hasher.hash_one(&*self.nodes[x as usize].ele);
        if let Ok(e) = self.dict.find_entry(h, |&i| i == x) {
            e.remove();
        }
    }

    #[inline]
    pub(super) fn link(&self, x: u32, i: usize) -> Link {
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

    pub(super) fn insert_new(&mut self, member: &[u8], score: f64) {
        let h = self.hasher.hash_one(member);
        let x = self.insert_node(score, member.into(), None);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.dict
            .insert_unique(h, x, |&j| hasher.hash_one(&*nodes[j as usize].ele));
    }

    /// Links a node for (score, ele); reuses slot `reuse` when given.
    fn insert_node(&mut self, score: f64, ele: Box<[u8]>, reuse: Option<u32>) -> u32 {
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
        n.ele = Box::default();
        self.free.push(x);
    }

    /// Removes (score, ele), which must be present, from list and dict.
    pub(super) fn delete(&mut self, score: f64, ele: &[u8]) {
        let (update, _) = self.find_update(score, ele);
        let x = self.link(update[0], 0).fwd;
        debug_assert!(x != NIL && &*self.nodes[x as usize].ele == ele);
        self.unlink(x, &update);
        self.unindex(x);
        self.free_slot(x);
    }

    /// The node keeps its slot, so the member index stays as it is.
    pub(super) fn update_score(&mut self, ele: &[u8], old: f64, new: f64) {
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
            let e = std::mem::take(&mut self.nodes[x as usize].ele);
            self.insert_node(new, e, Some(x));
        }
    }

    /// 1-based rank of a present element: the elements up to it in order.
    pub(super) fn rank(&self, score: f64, ele: &[u8]) -> usize {
        self.count_while(|s, e| s < score || (s == score && e <= ele))
    }

    /// Slot of the element at 1-based rank `rank` (1..=len).
    pub(super) fn by_rank(&self, rank: usize) -> u32 {
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
    pub(super) fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
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
    pub(super) fn delete_rank_range(&mut self, start: usize, end: usize) {
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
            self.unindex(x);
            self.free_slot(x);
            t += 1;
            x = next;
        }
    }
}
