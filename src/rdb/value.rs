//! The only place that knows keel's in-memory value structs: builds them
//! from decoded RDB contents (with the encoding flags Redis 7.0 would end up
//! with) and views them in the form the writer needs.

use super::RdbError;
use super::stream::{ConsumerData, GroupData, NodeData, PendingData, StreamData};
use crate::storage::Value;
use crate::storage::hash::{Hash, HashLimits};
use crate::storage::list::List;
use crate::storage::set::Set;
use crate::storage::stream::{Consumer, ConsumerGroup, Node, PendingEntry, Stream, StreamId};
use crate::storage::zset::ZSet;

/// The encoding thresholds (the *-max-* config parameters).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Default for Limits {
    /// Redis 7.0's compiled defaults.
    fn default() -> Self {
        Limits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

impl Limits {
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        let g = |n: &str| cfg.get_i64(n).max(0) as usize;
        Limits {
            hash_max_listpack_entries: g("hash-max-listpack-entries"),
            hash_max_listpack_value: g("hash-max-listpack-value"),
            set_max_intset_entries: g("set-max-intset-entries"),
            zset_max_listpack_entries: g("zset-max-listpack-entries"),
            zset_max_listpack_value: g("zset-max-listpack-value"),
        }
    }

    fn hash(&self) -> HashLimits {
        HashLimits {
            max_entries: self.hash_max_listpack_entries,
            max_value: self.hash_max_listpack_value,
        }
    }
}

fn dup(what: &str) -> RdbError {
    RdbError::Corrupt(format!("Duplicate {what} detected"))
}

pub fn list(items: Vec<Vec<u8>>) -> Value {
    Value::List(Box::new(List {
        items: items.into(),
    }))
}

/// A set; `packed` = it came as an intset/listpack blob (converted to a
/// hashtable only when too big), else it is built like Redis's SET loader
/// (intset while every member is an integer and the count fits).
pub fn set(members: Vec<Vec<u8>>, packed: bool, lim: &Limits) -> Result<Value, RdbError> {
    let max = lim.set_max_intset_entries.min(1 << 30);
    let intset = members.len() <= max
        && members
            .iter()
            .all(|m| crate::storage::set::as_int(m).is_some());
    let s = Set::from_distinct_members(members, intset).ok_or_else(|| dup("set members"))?;
    let _ = packed;
    Ok(Value::Set(s))
}

/// A hash; `packed` = it came as a listpack/ziplist/zipmap (kept a listpack
/// unless it has too many entries, or, for ziplist/zipmap, too long a
/// string), else built like Redis's HASH loader.
pub fn hash(
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    packed: bool,
    check_value_len: bool,
    lim: &Limits,
) -> Result<Value, RdbError> {
    let hl = lim.hash();
    let n = pairs.len();
    let long = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        pairs
            .iter()
            .any(|(f, v)| f.len() > hl.max_value || v.len() > hl.max_value)
    };
    let hashtable = if packed {
        n > hl.max_entries || (check_value_len && long(&pairs))
    } else {
        n > hl.max_entries || long(&pairs)
    };
    let h = Hash::from_distinct_pairs(pairs, hashtable).ok_or_else(|| dup("hash fields"))?;
    Ok(Value::Hash(h))
}

/// A sorted set from (member, score) pairs. NaN scores and duplicate
/// members are errors. `packed` = it came as a ziplist/listpack (kept a
/// listpack unless too many entries), else Redis's ZSET_2 rule: listpack
/// when both the count and the longest member fit.
pub fn zset(mut pairs: Vec<(Vec<u8>, f64)>, packed: bool, lim: &Limits) -> Result<Value, RdbError> {
    if pairs.iter().any(|p| p.1.is_nan()) {
        return Err(RdbError::Corrupt("Zset with NAN score detected".into()));
    }
    {
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        if !pairs.iter().all(|(m, _)| seen.insert(m.as_slice())) {
            return Err(dup("zset fields"));
        }
    }
    pairs.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    let n = pairs.len();
    let listpack = if packed {
        n <= lim.zset_max_listpack_entries
    } else {
        n <= lim.zset_max_listpack_entries
            && pairs
                .iter()
                .all(|(m, _)| m.len() <= lim.zset_max_listpack_value)
    };
    Ok(Value::ZSet(ZSet::from_sorted(pairs, listpack)))
}

fn sid(id: (u64, u64)) -> StreamId {
    StreamId::new(id.0, id.1)
}

fn tid(id: StreamId) -> (u64, u64) {
    (id.ms, id.seq)
}

pub fn stream(s: StreamData) -> Value {
    let mut st = Stream {
        last_id: sid(s.last_id),
        first_id: sid(s.first_id),
        max_deleted_entry_id: sid(s.max_deleted_id),
        entries_added: s.entries_added,
        ..Default::default()
    };
    for (id, fields) in s.entries {
        st.entries.insert(sid(id), fields);
    }
    for n in s.nodes {
        st.nodes.insert(
            sid(n.master),
            Node {
                master_fields: n.master_fields,
                count: n.count,
                deleted: n.deleted,
                bytes: n.bytes,
                last_id: sid(n.last_id),
            },
        );
    }
    for g in s.groups {
        let mut cg = ConsumerGroup {
            last_id: sid(g.last_id),
            entries_read: g.entries_read,
            ..Default::default()
        };
        // The loader checked that every PEL entry has exactly one consumer.
        let mut owner = std::collections::HashMap::new();
        for c in &g.consumers {
            for id in &c.pel {
                owner.insert(*id, c.name.clone());
            }
        }
        for p in g.pel {
            cg.pel.insert(
                sid(p.id),
                PendingEntry {
                    delivery_time: p.delivery_time as i64,
                    delivery_count: p.delivery_count,
                    consumer: owner.remove(&p.id).unwrap_or_default(),
                },
            );
        }
        for c in g.consumers {
            cg.consumers.insert(
                c.name,
                Consumer {
                    seen_time: c.seen_time as i64,
                    pel: c.pel.into_iter().map(sid).collect(),
                },
            );
        }
        st.groups.insert(g.name, cg);
    }
    Value::Stream(Box::new(st))
}

fn stream_data(st: &Stream) -> StreamData {
    StreamData {
        entries: st
            .entries
            .iter()
            .map(|(id, f)| (tid(*id), f.clone()))
            .collect(),
        length: st.entries.len() as u64,
        last_id: tid(st.last_id),
        first_id: tid(st.first_id),
        max_deleted_id: tid(st.max_deleted_entry_id),
        entries_added: st.entries_added,
        groups: st
            .groups
            .iter()
            .map(|(name, g)| GroupData {
                name: name.clone(),
                last_id: tid(g.last_id),
                entries_read: g.entries_read,
                pel: g
                    .pel
                    .iter()
                    .map(|(id, p)| PendingData {
                        id: tid(*id),
                        delivery_time: p.delivery_time as u64,
                        delivery_count: p.delivery_count,
                    })
                    .collect(),
                consumers: g
                    .consumers
                    .iter()
                    .map(|(name, c)| ConsumerData {
                        name: name.clone(),
                        seen_time: c.seen_time as u64,
                        active_time: c.seen_time as u64,
                        pel: c.pel.iter().map(|id| tid(*id)).collect(),
                    })
                    .collect(),
            })
            .collect(),
        // Nodes left with no live entry are dropped (Redis frees them too).
        nodes: st
            .nodes
            .iter()
            .filter(|(_, n)| n.count > 0)
            .map(|(id, n)| NodeData {
                master: tid(*id),
                master_fields: n.master_fields.clone(),
                count: n.count,
                deleted: n.deleted,
                bytes: n.bytes,
                last_id: tid(n.last_id),
            })
            .collect(),
    }
}

/// A value as the writer sees it.
pub enum Form<'a> {
    Str(&'a [u8]),
    List(Vec<&'a [u8]>),
    /// Sorted ascending, distinct.
    Intset(Vec<i64>),
    SetHt(Vec<&'a [u8]>),
    HashLp(Vec<(&'a [u8], &'a [u8])>),
    HashHt(Vec<(&'a [u8], &'a [u8])>),
    /// Sorted by (score, member).
    ZsetLp(Vec<(&'a [u8], f64)>),
    ZsetSkip(Vec<(&'a [u8], f64)>),
    Stream(StreamData),
}

pub fn form<'a>(v: &'a Value, _lim: &Limits) -> Form<'a> {
    match v {
        Value::Str(s) => Form::Str(s),
        Value::List(l) => Form::List(l.items.iter().map(|e| e.as_slice()).collect()),
        Value::Set(s) => {
            if !s.is_hashtable() {
                let mut v: Vec<i64> = s.iter().filter_map(crate::storage::set::as_int).collect();
                if v.len() == s.len() {
                    v.sort_unstable();
                    return Form::Intset(v);
                }
            }
            Form::SetHt(s.iter().collect())
        }
        Value::Hash(h) => {
            let pairs = h.iter().collect();
            if h.is_hashtable() {
                Form::HashHt(pairs)
            } else {
                Form::HashLp(pairs)
            }
        }
        Value::ZSet(z) => {
            let v: Vec<(&[u8], f64)> = z.iter().collect();
            if z.is_listpack() {
                Form::ZsetLp(v)
            } else {
                Form::ZsetSkip(v)
            }
        }
        Value::Stream(st) => Form::Stream(stream_data(st)),
    }
}
