//! Stream contents as RDB carries them, and the node listpacks
//! (t_stream.c's layout: a master entry, then delta-encoded entries).

use super::RdbError;
use super::packed::{Elem, LpWriter, lp_decode};

pub type Id = (u64, u64);
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamData {
    /// Live entries in ID order.
    pub entries: Vec<(Id, Fields)>,
    pub length: u64,
    pub last_id: Id,
    pub first_id: Id,
    pub max_deleted_id: Id,
    pub entries_added: u64,
    pub groups: Vec<GroupData>,
    /// The listpack nodes as loaded (where Redis cut them), so the in-memory
    /// stream can keep Redis's node boundaries; the writer follows them when
    /// given, else cuts nodes as XADD would.
    pub nodes: Vec<NodeData>,
}

/// One stream listpack node's shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeData {
    /// The node key (master entry ID).
    pub master: Id,
    pub master_fields: Vec<Vec<u8>>,
    /// Live entries.
    pub count: u64,
    /// Entries flagged deleted, still in the listpack.
    pub deleted: u64,
    /// Listpack size in bytes.
    pub bytes: usize,
    /// ID of the last entry in the listpack, deleted or not.
    pub last_id: Id,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupData {
    pub name: Vec<u8>,
    pub last_id: Id,
    /// -1 = unknown (SCG_INVALID_ENTRIES_READ).
    pub entries_read: i64,
    pub pel: Vec<PendingData>,
    pub consumers: Vec<ConsumerData>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PendingData {
    pub id: Id,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsumerData {
    pub name: Vec<u8>,
    pub seen_time: u64,
    pub active_time: u64,
    pub pel: Vec<Id>,
}

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// stream-node-max-entries / -bytes defaults.
const NODE_MAX_ENTRIES: usize = 100;
const NODE_MAX_BYTES: usize = 4096;

pub fn id_from_key(k: &[u8]) -> Result<Id, RdbError> {
    if k.len() != 16 {
        return Err(RdbError::Corrupt(
            "Stream node key entry is not the size of a stream ID".into(),
        ));
    }
    Ok((
        u64::from_be_bytes(k[..8].try_into().unwrap()),
        u64::from_be_bytes(k[8..].try_into().unwrap()),
    ))
}

pub fn id_to_key(id: Id) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.0.to_be_bytes());
    k[8..].copy_from_slice(&id.1.to_be_bytes());
    k
}

/// Appends the live entries of one node listpack to `out`; returns the node's shape.
pub fn decode_node(
    master: Id,
    lp: &[u8],
    out: &mut Vec<(Id, Fields)>,
) -> Result<NodeData, RdbError> {
    let bad = || RdbError::Corrupt("Stream listpack integrity check failed".into());
    let el = lp_decode(lp)?;
    if el.is_empty() {
        return Err(RdbError::Corrupt("Empty listpack inside stream".into()));
    }
    let mut it = el.into_iter();
    let int = |it: &mut std::vec::IntoIter<Elem<'_>>| -> Result<i64, RdbError> {
        it.next().and_then(|e| e.as_int()).ok_or_else(bad)
    };
    let count = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nf = int(&mut it)?;
    if count < 0 || deleted < 0 || nf < 0 || nf as usize > lp.len() {
        return Err(bad());
    }
    let mut master_fields = Vec::with_capacity(nf as usize);
    for _ in 0..nf {
        master_fields.push(it.next().ok_or_else(bad)?.to_vec());
    }
    if int(&mut it)? != 0 {
        return Err(bad());
    }
    let total = count.checked_add(deleted).ok_or_else(bad)?;
    let mut live = 0;
    let mut last_id = master;
    for _ in 0..total {
        let flags = int(&mut it)?;
        let ms = master.0.wrapping_add(int(&mut it)? as u64);
        let seq = master.1.wrapping_add(int(&mut it)? as u64);
        let mut fields = Vec::new();
        let used = if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                fields.push((f.clone(), it.next().ok_or_else(bad)?.to_vec()));
            }
            master_fields.len() as i64 + 3
        } else {
            let m = int(&mut it)?;
            if m < 0 || m as usize > lp.len() {
                return Err(bad());
            }
            for _ in 0..m {
                let f = it.next().ok_or_else(bad)?.to_vec();
                let v = it.next().ok_or_else(bad)?.to_vec();
                fields.push((f, v));
            }
            2 * m + 4
        };
        if int(&mut it)? != used {
            return Err(bad());
        }
        last_id = (ms, seq);
        if flags & FLAG_DELETED == 0 {
            live += 1;
            out.push(((ms, seq), fields));
        }
    }
    if live != count || it.next().is_some() {
        return Err(bad());
    }
    Ok(NodeData {
        master,
        master_fields,
        count: count as u64,
        deleted: deleted as u64,
        bytes: lp.len(),
        last_id,
    })
}

/// Splits entries into node listpacks: along `shape` (node master IDs and
/// fields, e.g. as loaded) when given, else as XADD would with the default
/// stream-node-max-entries/-bytes. Returns (node key, listpack) pairs.
/// Entries deleted in memory are not written (a node's deleted count is 0).
pub fn encode_nodes(entries: &[(Id, Fields)], shape: &[NodeData]) -> Vec<([u8; 16], Vec<u8>)> {
    let mut nodes = Vec::new();
    let mut i = 0;
    let mut shape = shape.iter().peekable();
    while i < entries.len() {
        // The node holding entries[i]: the last shape node whose master <= it.
        let mut node = None;
        while let Some(n) = shape.peek() {
            if n.master <= entries[i].0 {
                node = shape.next();
            } else {
                break;
            }
        }
        let (master, mfields): (Id, Vec<&[u8]>) = match node {
            Some(n) => (
                n.master,
                n.master_fields.iter().map(|f| f.as_slice()).collect(),
            ),
            None => (
                entries[i].0,
                entries[i].1.iter().map(|(f, _)| f.as_slice()).collect(),
            ),
        };
        let mut j = i;
        if node.is_some() {
            let next = shape.peek().map(|n| n.master);
            while j < entries.len() && next.is_none_or(|m| entries[j].0 < m) {
                j += 1;
            }
        } else {
            let mut bytes = 0;
            while j < entries.len()
                && j - i < NODE_MAX_ENTRIES
                && (j == i || bytes < NODE_MAX_BYTES)
                && shape.peek().is_none_or(|n| entries[j].0 < n.master)
            {
                bytes += entries[j]
                    .1
                    .iter()
                    .map(|(f, v)| f.len() + v.len() + 4)
                    .sum::<usize>()
                    + 12;
                j += 1;
            }
        }
        let mut w = LpWriter::new();
        w.push_int((j - i) as i64);
        w.push_int(0);
        w.push_int(mfields.len() as i64);
        for f in &mfields {
            w.push(f);
        }
        w.push_int(0);
        for (id, fields) in &entries[i..j] {
            let same = fields.len() == mfields.len()
                && fields.iter().zip(&mfields).all(|((f, _), m)| f == m);
            w.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
            w.push_int(id.0.wrapping_sub(master.0) as i64);
            w.push_int(id.1.wrapping_sub(master.1) as i64);
            if same {
                for (_, v) in fields {
                    w.push(v);
                }
                w.push_int(fields.len() as i64 + 3);
            } else {
                w.push_int(fields.len() as i64);
                for (f, v) in fields {
                    w.push(f);
                    w.push(v);
                }
                w.push_int(2 * fields.len() as i64 + 4);
            }
        }
        nodes.push((id_to_key(master), w.finish()));
        i = j;
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_round_trip() {
        let mut entries = Vec::new();
        for i in 0..250u64 {
            let fields = if i % 7 == 3 {
                vec![
                    (b"other".to_vec(), b"x".to_vec()),
                    (b"f".to_vec(), i.to_string().into_bytes()),
                ]
            } else {
                vec![(b"f".to_vec(), i.to_string().into_bytes())]
            };
            entries.push((
                (1000 + i / 3, if i % 3 == 0 { 5 } else { i % 3 - 1 }),
                fields,
            ));
        }
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        let nodes = encode_nodes(&entries, &[]);
        assert!(nodes.len() >= 3);
        let mut out = Vec::new();
        let mut shape = Vec::new();
        for (k, lp) in &nodes {
            shape.push(decode_node(id_from_key(k).unwrap(), lp, &mut out).unwrap());
        }
        assert_eq!(out, entries);
        // Re-encoding along the loaded shape gives the same nodes.
        assert_eq!(encode_nodes(&entries, &shape), nodes);
        // A shape with other cuts and master fields is followed.
        let shape2 = vec![
            NodeData {
                master: (0, 0),
                master_fields: vec![b"zz".to_vec()],
                ..Default::default()
            },
            NodeData {
                master: entries[7].0,
                master_fields: vec![b"f".to_vec()],
                ..Default::default()
            },
        ];
        let nodes2 = encode_nodes(&entries, &shape2);
        assert_eq!(nodes2.len(), 2);
        let mut out = Vec::new();
        for (k, lp) in &nodes2 {
            decode_node(id_from_key(k).unwrap(), lp, &mut out).unwrap();
        }
        assert_eq!(out, entries);
    }
}
