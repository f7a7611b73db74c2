//! List values and the pure list algorithms behind the list commands.

use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {
    pub items: VecDeque<Vec<u8>>,
}

/// Which end of a list (Redis's LIST_HEAD / LIST_TAIL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl List {
    pub fn new() -> Self {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// OBJECT ENCODING. Redis 7.0 creates every list as a quicklist (the
    /// listpack list encoding only arrived in 7.2), so this never varies.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Elements head to tail: what DEBUG DIGEST-VALUE mixes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|v| v.as_slice())
    }

    pub fn push(&mut self, end: End, v: Vec<u8>) {
        match end {
            End::Left => self.items.push_front(v),
            End::Right => self.items.push_back(v),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// Pops up to `n` elements from `end`, in pop order.
    pub fn pop_n(&mut self, end: End, n: usize) -> Vec<Vec<u8>> {
        let n = n.min(self.items.len());
        match end {
            End::Left => self.items.drain(..n).collect(),
            End::Right => {
                let at = self.items.len() - n;
                let mut v: Vec<_> = self.items.drain(at..).collect();
                v.reverse();
                v
            }
        }
    }

    /// The element at a Redis index (negative counts from the tail).
    pub fn index(&self, idx: i64) -> Option<&Vec<u8>> {
        let i = abs_index(idx, self.items.len())?;
        self.items.get(i)
    }

    pub fn index_mut(&mut self, idx: i64) -> Option<&mut Vec<u8>> {
        let i = abs_index(idx, self.items.len())?;
        self.items.get_mut(i)
    }

    /// LINSERT: inserts next to the first `pivot` from the head. Returns
    /// false when the pivot is absent.
    pub fn insert(&mut self, pivot: &[u8], after: bool, v: Vec<u8>) -> bool {
        match self.items.iter().position(|e| e.as_slice() == pivot) {
            Some(i) => {
                self.items.insert(if after { i + 1 } else { i }, v);
                true
            }
            None => false,
        }
    }

    /// LREM: removes up to |count| elements equal to `v` (all when 0),
    /// scanning from the tail when count is negative. Returns how many.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        // i64::MIN has no positive counterpart; Redis ends up removing all.
        let limit = if count == 0 || count == i64::MIN {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let mut removed = 0;
        if count >= 0 {
            self.items.retain(|e| {
                if removed < limit && e.as_slice() == v {
                    removed += 1;
                    false
                } else {
                    true
                }
            });
        } else {
            // Everything before the limit-th match from the tail stays:
            // find that boundary, then drop matches after it in one pass.
            let mut from = self.items.len();
            for (i, e) in self.items.iter().enumerate().rev() {
                if removed == limit {
                    break;
                }
                if e.as_slice() == v {
                    removed += 1;
                    from = i;
                }
            }
            let mut i = 0;
            self.items.retain(|e| {
                let keep = i < from || e.as_slice() != v;
                i += 1;
                keep
            });
        }
        removed
    }

    /// LTRIM: keeps `start..=stop` (Redis indexes). Returns how many went.
    pub fn trim(&mut self, start: i64, stop: i64) -> usize {
        let len = self.items.len();
        let (ltrim, rtrim) = match range(start, stop, len) {
            Some((s, e)) => (s, len - e - 1),
            None => (len, 0),
        };
        self.items.drain(..ltrim);
        let keep = self.items.len() - rtrim;
        self.items.truncate(keep);
        ltrim + rtrim
    }

    /// LPOS: indexes of `v` per RANK (non-zero), COUNT (None = option not
    /// given: at most one; Some(0) = all) and MAXLEN (0 = no limit).
    pub fn positions(&self, v: &[u8], rank: i64, count: Option<u64>, maxlen: u64) -> Vec<usize> {
        let len = self.items.len();
        let from_tail = rank < 0;
        // Redis negates i64::MIN in place and keeps it negative, so every
        // match qualifies: the same as rank 1 from the tail.
        let rank = if rank == i64::MIN {
            1
        } else {
            rank.unsigned_abs()
        };
        let want = match count {
            None => 1,
            Some(0) => u64::MAX,
            Some(n) => n,
        };
        let mut out = Vec::new();
        let mut matches = 0u64;
        for scanned in 0..len {
            if maxlen != 0 && scanned as u64 >= maxlen {
                break;
            }
            let i = if from_tail {
                len - 1 - scanned
            } else {
                scanned
            };
            if self.items[i].as_slice() == v {
                matches += 1;
                if matches >= rank {
                    out.push(i);
                    if out.len() as u64 >= want {
                        break;
                    }
                }
            }
        }
        out
    }
}

/// A Redis list index (negative from the tail) as a position, if in range.
pub fn abs_index(idx: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if idx < 0 { len.checked_add(idx)? } else { idx };
    (0..len).contains(&i).then_some(i as usize)
}

/// LRANGE/LTRIM range normalisation: Some((first, last)) inclusive, or
/// None when the range is empty.
pub fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        List {
            items: items.iter().map(|s| s.as_bytes().to_vec()).collect(),
        }
    }

    fn strs(l: &List) -> Vec<String> {
        l.iter()
            .map(|e| String::from_utf8(e.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn ranges() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(0, -4, 3), None);
        assert_eq!(range(-2, -1, 3), Some((1, 2)));
        assert_eq!(range(0, 0, 0), None);
        assert_eq!(range(i64::MIN, i64::MAX, 2), Some((0, 1)));
    }

    #[test]
    fn indexes() {
        assert_eq!(abs_index(-1, 3), Some(2));
        assert_eq!(abs_index(-3, 3), Some(0));
        assert_eq!(abs_index(-4, 3), None);
        assert_eq!(abs_index(3, 3), None);
        assert_eq!(abs_index(i64::MIN, 3), None);
    }

    #[test]
    fn pops() {
        let mut l = list(&["a", "b", "c", "d"]);
        assert_eq!(l.pop_n(End::Right, 2), vec![b"d".to_vec(), b"c".to_vec()]);
        assert_eq!(l.pop_n(End::Left, 5), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(l.is_empty());
    }

    #[test]
    fn rem_and_trim() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(-2, b"a"), 2);
        assert_eq!(strs(&l), ["a", "b", "c"]);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(-1, b"a"), 1);
        assert_eq!(strs(&l), ["a", "b", "a", "c"]);
        assert_eq!(l.remove(-10, b"a"), 2);
        assert_eq!(strs(&l), ["b", "c"]);
        assert_eq!(l.remove(i64::MIN, b"b"), 1);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(1, b"a"), 1);
        assert_eq!(strs(&l), ["b", "a", "c", "a"]);
        assert_eq!(l.remove(0, b"a"), 2);
        assert_eq!(strs(&l), ["b", "c"]);
        let mut l = list(&["a", "b", "c", "d", "e"]);
        assert_eq!(l.trim(1, -2), 2);
        assert_eq!(strs(&l), ["b", "c", "d"]);
        assert_eq!(l.trim(5, 10), 3);
        assert!(l.is_empty());
    }

    #[test]
    fn insert() {
        let mut l = list(&["a", "b", "a"]);
        assert!(l.insert(b"a", true, b"x".to_vec()));
        assert!(l.insert(b"b", false, b"y".to_vec()));
        assert!(!l.insert(b"z", false, b"y".to_vec()));
        assert_eq!(strs(&l), ["a", "x", "y", "b", "a"]);
    }

    #[test]
    fn lpos() {
        let l = list(&["a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(l.positions(b"c", 1, None, 0), vec![2]);
        assert_eq!(l.positions(b"c", 2, None, 0), vec![6]);
        assert_eq!(l.positions(b"c", -1, None, 0), vec![7]);
        assert_eq!(l.positions(b"c", 1, Some(0), 0), vec![2, 6, 7]);
        assert_eq!(l.positions(b"c", -2, Some(0), 0), vec![6, 2]);
        assert_eq!(l.positions(b"c", 1, Some(2), 0), vec![2, 6]);
        assert_eq!(l.positions(b"c", 1, Some(0), 7), vec![2, 6]);
        assert_eq!(l.positions(b"c", 1, None, 2), Vec::<usize>::new());
        assert_eq!(l.positions(b"c", 4, None, 0), Vec::<usize>::new());
        assert_eq!(l.positions(b"c", i64::MIN, None, 0), vec![7]);
    }
}
