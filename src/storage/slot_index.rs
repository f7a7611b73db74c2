//! The keys of each cluster slot (Redis's slot-to-key lists), so CLUSTER
//! COUNTKEYSINSLOT and GETKEYSINSLOT cost the keys of the slot, not the
//! whole keyspace. Kept per DB in cluster mode only (`enable` at startup);
//! it holds the keys' positions in the DB's dense entry vector, which move
//! only when a removal swaps the last entry into the hole: 10 bytes a key.

use std::sync::atomic::{AtomicBool, Ordering};

use super::slot::{SLOTS, key_slot};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Cluster mode: DBs index their keys by slot from their first key on.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

#[derive(Default)]
pub struct SlotIndex {
    inner: Option<Box<Inner>>,
}

struct Inner {
    /// Per slot, the positions of its keys.
    lists: Vec<Vec<u32>>,
    /// Per entry position: its index in its slot's list, and its slot.
    at: Vec<u32>,
    slot: Vec<u16>,
}

impl SlotIndex {
    /// Whether removals must report positions (`removed`).
    pub fn active(&self) -> bool {
        self.inner.is_some()
    }

    /// A new key at position `i` (the end of the entry vector). The index
    /// starts with an empty DB only: one created later would miss keys.
    pub fn added(&mut self, i: usize, key: &[u8]) {
        if self.inner.is_none() {
            if i != 0 || !ENABLED.load(Ordering::Relaxed) {
                return;
            }
            self.inner = Some(Box::new(Inner {
                lists: vec![Vec::new(); SLOTS],
                at: Vec::new(),
                slot: Vec::new(),
            }));
        }
        let Some(n) = self.inner.as_mut() else { return };
        if n.at.len() != i {
            // Out of step (an entry changed behind the index): drop it.
            self.inner = None;
            return;
        }
        let s = key_slot(key);
        n.at.push(n.lists[s].len() as u32);
        n.slot.push(s as u16);
        n.lists[s].push(i as u32);
    }

    /// The key at position `i` was removed and the one at `last` (the old
    /// end) moved into its place.
    pub fn removed(&mut self, i: usize, last: usize) {
        let Some(n) = self.inner.as_mut() else { return };
        if n.at.len() != last + 1 || i > last {
            self.inner = None;
            return;
        }
        let s = n.slot[i] as usize;
        let a = n.at[i] as usize;
        n.lists[s].swap_remove(a);
        if let Some(&other) = n.lists[s].get(a) {
            n.at[other as usize] = a as u32;
        }
        if i != last {
            let (ms, ma) = (n.slot[last] as usize, n.at[last] as usize);
            n.lists[ms][ma] = i as u32;
            n.at[i] = ma as u32;
            n.slot[i] = ms as u16;
        }
        n.at.pop();
        n.slot.pop();
    }

    pub fn clear(&mut self) {
        self.inner = None;
    }

    /// The positions of the slot's keys; None when not indexed (`len`: the
    /// DB's entry count, a check that the index is in step).
    pub fn positions(&self, slot: usize, len: usize) -> Option<&[u32]> {
        let n = self.inner.as_ref()?;
        (n.at.len() == len && slot < SLOTS).then(|| n.lists[slot].as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_adds_and_swap_removes() {
        enable();
        let mut ix = SlotIndex::default();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..2000 {
            let k = format!("k{}", i % 7 * 1000 + i).into_bytes();
            ix.added(keys.len(), &k);
            keys.push(k);
        }
        for step in 0..1500 {
            let i = (step * 7919) % keys.len();
            let last = keys.len() - 1;
            keys.swap_remove(i);
            ix.removed(i, last);
            if step % 3 == 0 {
                let k = format!("new{step}").into_bytes();
                ix.added(keys.len(), &k);
                keys.push(k);
            }
        }
        let mut total = 0;
        for s in 0..SLOTS {
            let mut got: Vec<&[u8]> = ix
                .positions(s, keys.len())
                .unwrap()
                .iter()
                .map(|&p| keys[p as usize].as_slice())
                .collect();
            let mut want: Vec<&[u8]> = keys
                .iter()
                .filter(|k| key_slot(k) == s)
                .map(|k| k.as_slice())
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "slot {s}");
            total += got.len();
        }
        assert_eq!(total, keys.len());
        assert!(ix.positions(0, keys.len() + 1).is_none());
    }

    /// Through the DB: SET, DEL, RENAME-like re-inserts, FLUSH; the index
    /// answers as a scan of the keyspace would.
    #[test]
    fn db_keeps_it_in_step() {
        use crate::storage::Value;
        use crate::storage::db::Db;
        use crate::storage::strval::Str;
        enable();
        let mut db = Db::default();
        let scan = |db: &Db, s: usize| {
            let mut v: Vec<Vec<u8>> = db
                .dict
                .keys()
                .filter(|k| key_slot(k) == s)
                .map(|k| k.to_vec())
                .collect();
            v.sort();
            v
        };
        let check = |db: &Db| {
            assert!(db.slots.active());
            for s in (0..SLOTS).step_by(97).chain([key_slot(b"{t}")]) {
                let mut got: Vec<Vec<u8>> = db
                    .keys_in_slot(s, usize::MAX)
                    .iter()
                    .map(|k| k.to_vec())
                    .collect();
                got.sort();
                assert_eq!(got, scan(db, s), "slot {s}");
                assert_eq!(db.count_in_slot(s), got.len());
            }
        };
        for i in 0..3000 {
            let k = if i % 5 == 0 {
                format!("{{t}}{i}")
            } else {
                format!("k{i}")
            };
            db.set(k.as_bytes(), Value::Str(Str::from_slice(b"v")));
        }
        check(&db);
        for i in (0..3000).step_by(3) {
            let k = if i % 5 == 0 {
                format!("{{t}}{i}")
            } else {
                format!("k{i}")
            };
            if let Some(rec) = db.remove(k.as_bytes()) {
                // RENAME: the record comes back under another name.
                if i % 2 == 0 {
                    db.insert_entry(format!("r{i}").as_bytes(), rec);
                }
            }
        }
        check(&db);
        assert_eq!(db.keys_in_slot(key_slot(b"{t}"), 3).len(), 3);
        db.clear();
        assert_eq!(db.count_in_slot(key_slot(b"{t}")), 0);
        db.set(b"{t}x", Value::Str(Str::from_slice(b"v")));
        check(&db);
        assert_eq!(db.count_in_slot(key_slot(b"{t}")), 1);
    }
}
