//! Stream values: entries, consumer groups, and a model of Redis's
//! listpack nodes (approximate `~` trimming and XINFO depend on where the
//! node boundaries fall, so they are tracked exactly as Redis would cut them).

use std::collections::{BTreeMap, BTreeSet};

/// A stream entry ID. Ordered as Redis compares them (ms, then seq).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID; None when wrapping past the maximum (streamIncrID).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID; None below 0-0 (streamDecrID).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Redis's SCG_INVALID_ENTRIES_READ: the group's read counter is unknown.
pub const ENTRIES_READ_INVALID: i64 = -1;

/// One pending (delivered, unacknowledged) entry of a group: a streamNACK.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEntry {
    /// Last delivery time, ms since the epoch.
    pub delivery_time: i64,
    /// How many times the entry was delivered.
    pub delivery_count: u64,
    /// Name of the consumer owning it (always present in the group's consumers).
    pub consumer: Vec<u8>,
}

/// A consumer of a group (Redis 7.0 tracks only seen-time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumer {
    /// Last time the consumer was seen (read or claimed), ms since the epoch.
    pub seen_time: i64,
    /// IDs of the group PEL entries this consumer owns.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsumerGroup {
    /// last-delivered-id.
    pub last_id: StreamId,
    /// entries-read counter, or ENTRIES_READ_INVALID.
    pub entries_read: i64,
    /// The group PEL, in ID order.
    pub pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name, in byte order (as Redis's rax iterates them).
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

/// One listpack node as Redis would hold it: only what decides node cuts
/// and approximate trims is kept (the entries themselves are in `entries`).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Fields of the master entry (the first entry added to the node).
    pub master_fields: Vec<Vec<u8>>,
    /// Live entries.
    pub count: u64,
    /// Entries flagged deleted but still in the listpack.
    pub deleted: u64,
    /// lpBytes() of the listpack.
    pub bytes: usize,
    /// ID of the last entry appended to the node, deleted or not.
    pub last_id: StreamId,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// Live entries in ID order.
    pub entries: BTreeMap<StreamId, Fields>,
    /// last-generated-id (may exceed the last entry after XDEL/XSETID).
    pub last_id: StreamId,
    /// recorded-first-entry-id (0-0 when empty).
    pub first_id: StreamId,
    /// max-deleted-entry-id.
    pub max_deleted_entry_id: StreamId,
    /// entries-added: every entry ever appended.
    pub entries_added: u64,
    /// Consumer groups by name, in byte order.
    pub groups: BTreeMap<Vec<u8>, ConsumerGroup>,
    /// Listpack nodes keyed by master entry ID (the rax keys).
    pub nodes: BTreeMap<StreamId, Node>,
}

/// Trim strategy of XADD/XTRIM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

// ---- listpack sizes (listpack.c) ----

fn lp_backlen(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

fn lp_int_enc(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    }
}

fn lp_int(v: i64) -> usize {
    let e = lp_int_enc(v);
    e + lp_backlen(e)
}

/// Size of a string element: listpack stores integer-looking strings as integers.
fn lp_str(s: &[u8]) -> usize {
    if let Some(v) = crate::util::parse_i64(s) {
        return lp_int(v);
    }
    let e = match s.len() {
        0..64 => 1 + s.len(),
        64..4096 => 2 + s.len(),
        _ => 5 + s.len(),
    };
    e + lp_backlen(e)
}

const LP_EMPTY: usize = 7;
const FLAG_SAMEFIELDS: i64 = 2;

impl Node {
    fn set_count(&mut self, count: u64) {
        self.bytes = self.bytes - lp_int(self.count as i64) + lp_int(count as i64);
        self.count = count;
    }
    fn set_deleted(&mut self, deleted: u64) {
        self.bytes = self.bytes - lp_int(self.deleted as i64) + lp_int(deleted as i64);
        self.deleted = deleted;
    }
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Redis 7.0 has a single stream encoding.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Entries in ID order as (ms, seq) -> fields: what DEBUG DIGEST mixes.
    pub fn digest_entries(&self) -> impl Iterator<Item = (StreamId, &Fields)> {
        self.entries.iter().map(|(id, f)| (*id, f))
    }

    /// ID of the last live entry (streamLastValidID), 0-0 when empty.
    pub fn last_valid_id(&self) -> StreamId {
        self.entries.keys().next_back().copied().unwrap_or_default()
    }

    /// Appends an entry with an ID already validated to exceed `last_id`.
    /// `max_bytes`/`max_entries` are stream-node-max-bytes/-entries.
    pub fn append(&mut self, id: StreamId, fields: Fields, max_bytes: i64, max_entries: i64) {
        let node_max_bytes = if max_bytes <= 0 || max_bytes > u32::MAX as i64 {
            u32::MAX as usize
        } else {
            max_bytes as usize
        };
        let totelelen: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        let mut new_node = true;
        if let Some((_, tail)) = self.nodes.iter().next_back() {
            new_node = tail.bytes + totelelen >= node_max_bytes
                || (max_entries > 0 && (tail.count + tail.deleted) as i64 >= max_entries);
        }
        if new_node {
            let mut bytes = LP_EMPTY + lp_int(0) + lp_int(0) + lp_int(fields.len() as i64);
            bytes += fields.iter().map(|(f, _)| lp_str(f)).sum::<usize>() + lp_int(0);
            self.nodes.insert(
                id,
                Node {
                    master_fields: fields.iter().map(|(f, _)| f.clone()).collect(),
                    count: 0,
                    deleted: 0,
                    bytes,
                    last_id: id,
                },
            );
        }
        let (master, node) = self.nodes.iter_mut().next_back().expect("tail node");
        let same = node.master_fields.len() == fields.len()
            && node
                .master_fields
                .iter()
                .zip(&fields)
                .all(|(m, (f, _))| m == f);
        let n = fields.len() as i64;
        let mut b = lp_int(if same { FLAG_SAMEFIELDS } else { 0 });
        b += lp_int(id.ms.wrapping_sub(master.ms) as i64);
        b += lp_int(id.seq.wrapping_sub(master.seq) as i64);
        if !same {
            b += lp_int(n);
            b += fields.iter().map(|(f, _)| lp_str(f)).sum::<usize>();
        }
        b += fields.iter().map(|(_, v)| lp_str(v)).sum::<usize>();
        b += lp_int(if same { n + 3 } else { 2 * n + 4 });
        node.bytes += b;
        node.set_count(node.count + 1);
        node.last_id = id;
        self.entries.insert(id, fields);
        self.entries_added += 1;
        self.last_id = id;
        if self.entries.len() == 1 {
            self.first_id = id;
        }
    }

    /// Key of the node holding `id`.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// Flags one entry deleted in its node (removing emptied nodes only when
    /// `drop_empty`, as XDEL does; trimming leaves them).
    fn mark_deleted(&mut self, id: StreamId, drop_empty: bool) {
        if let Some(k) = self.node_of(id) {
            let node = self.nodes.get_mut(&k).expect("node");
            if drop_empty && node.count == 1 {
                self.nodes.remove(&k);
            } else {
                node.set_count(node.count - 1);
                node.set_deleted(node.deleted + 1);
            }
        }
    }

    /// XDEL of one ID: true if it existed. Updates max-deleted-entry-id and
    /// the recorded first ID like Redis.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        self.mark_deleted(id, true);
        let was_first = id == self.first_id;
        if id > self.max_deleted_entry_id {
            self.max_deleted_entry_id = id;
        }
        if self.entries.is_empty() {
            self.first_id = StreamId::MIN;
        } else if was_first {
            self.first_id = *self.entries.keys().next().expect("nonempty");
        }
        true
    }

    /// streamTrim: returns the number of entries removed. `limit` 0 = none.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        let keys: Vec<StreamId> = self.nodes.keys().copied().collect();
        for (i, k) in keys.iter().enumerate() {
            if let Trim::MaxLen(m) = how
                && self.entries.len() as u64 <= m
            {
                break;
            }
            let node = &self.nodes[k];
            let count = node.count;
            if limit != 0 && deleted + count > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(m) => self.entries.len() as u64 - count >= m,
                Trim::MinId(min) => node.last_id < min,
            };
            let end = keys.get(i + 1).copied();
            let in_node: Vec<StreamId> = match end {
                Some(e) => self.entries.range(*k..e).map(|(id, _)| *id).collect(),
                None => self.entries.range(*k..).map(|(id, _)| *id).collect(),
            };
            if remove_node {
                for id in &in_node {
                    self.entries.remove(id);
                }
                self.nodes.remove(k);
                deleted += count;
                continue;
            }
            if approx {
                break;
            }
            let mut from_node = 0u64;
            for id in in_node {
                let stop = match how {
                    Trim::MaxLen(m) => self.entries.len() as u64 <= m,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.entries.remove(&id);
                from_node += 1;
            }
            // Deleted entries past the stop point are only reached by MINID
            // when the live ones are gone; their flags are already set.
            let node = self.nodes.get_mut(k).expect("node");
            node.set_count(node.count - from_node);
            node.set_deleted(node.deleted + from_node);
            deleted += from_node;
            break;
        }
        if self.entries.is_empty() {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = *self.entries.keys().next().expect("nonempty");
        }
        deleted
    }

    /// radix-tree-keys of XINFO STREAM.
    pub fn rax_keys(&self) -> usize {
        self.nodes.len()
    }

    /// radix-tree-nodes of XINFO STREAM, computed as the node count of a
    /// compressed radix tree over the 16-byte big-endian node keys.
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        rax_count(&keys, 0)
    }

    /// Entries-read estimate of `id` (streamEstimateDistanceFromFirstEverEntry);
    /// None when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            _ => {}
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            let len = self.entries.len() as u64;
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - len),
                std::cmp::Ordering::Equal => return Some(self.entries_added - len + 1),
                _ => {}
            }
        }
        None
    }

    /// streamRangeHasTombstones(start, +inf).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        start <= self.max_deleted_entry_id
    }

    /// A group's lag for XINFO (None = unknown).
    pub fn group_lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_INVALID && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        self.estimate_distance(g.last_id)
            .map(|r| self.entries_added as i64 - r as i64)
    }

    /// Moves the group's last-delivered-id to `id` (delivered now), keeping
    /// entries-read as streamReplyWithRange does.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let tomb = self.has_tombstones_from(id);
        let est = self.estimate_distance(id);
        let added = self.entries_added;
        let g = self.groups.get_mut(group).expect("group");
        if id > g.last_id {
            if g.entries_read != ENTRIES_READ_INVALID && !tomb {
                g.entries_read += 1;
            } else if added != 0 {
                g.entries_read = est.map(|v| v as i64).unwrap_or(ENTRIES_READ_INVALID);
            }
            g.last_id = id;
        }
    }
}

/// Node count of a compressed radix tree holding `keys` (sorted, distinct,
/// equal length) below `depth`, as Redis's rax lays them out: a run of
/// shared bytes is one compressed node, a fork is one node, a key end is a
/// leaf node.
fn rax_count(keys: &[[u8; 16]], depth: usize) -> usize {
    if keys.len() == 1 {
        return if depth < 16 { 2 } else { 1 };
    }
    let first = &keys[0];
    let last = &keys[keys.len() - 1];
    let mut c = depth;
    while c < 16 && first[c] == last[c] {
        c += 1;
    }
    let mut n = if c > depth { 1 } else { 0 };
    // Fork node at depth c: one child group per byte value.
    n += 1;
    let mut i = 0;
    while i < keys.len() {
        let b = keys[i][c];
        let mut j = i;
        while j < keys.len() && keys[j][c] == b {
            j += 1;
        }
        n += rax_count(&keys[i..j], c + 1);
        i = j;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn ids() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
    }

    #[test]
    fn node_cuts_by_count() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.append(StreamId::new(i, 0), f(&[("a", "1")]), 4096, 100);
        }
        assert_eq!(s.nodes.len(), 3);
        // MAXLEN ~ 120 only drops whole nodes: 250 -> 150.
        assert_eq!(s.trim(Trim::MaxLen(120), true, 10000), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.first_id, StreamId::new(101, 0));
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.rax_keys(), 2);
    }

    #[test]
    fn rax_shapes() {
        let mut s = Stream::default();
        assert_eq!(s.rax_nodes(), 1);
        s.append(StreamId::new(5, 0), f(&[("a", "1")]), 4096, 100);
        assert_eq!(s.rax_nodes(), 2);
    }
}
