//! The RDB writer (version 10, the encodings Redis 7.0 writes).

use std::io::{self, Write};

use super::packed::{LpWriter, canonical_i64, intset_encode};
use super::stream::{StreamData, encode_nodes, id_to_key};
use super::value::{self, Form, Limits};
use super::*;
use crate::storage::{Db, Value};

/// AUX data for `save`.
#[derive(Clone, Debug, Default)]
pub struct SaveAux {
    /// Written with repl-stream-db and repl-offset when Some (full sync, or a
    /// SAVE by a master with a backlog / a replica with a master).
    pub repl_id: Option<String>,
    pub repl_offset: i64,
    pub repl_stream_db: i64,
    /// Script bodies: one `lua` AUX each (7.0 ignores them on load).
    pub lua: Vec<Vec<u8>>,
    /// Function library sources: one FUNCTION2 record each.
    pub functions: Vec<Vec<u8>>,
    /// used-mem AUX value.
    pub used_mem: u64,
    /// aof-base AUX value.
    pub aof_base: bool,
}

/// Writer options.
#[derive(Clone, Copy, Debug)]
pub struct SaveOpts {
    /// rdbcompression: LZF for strings longer than 20 bytes when it saves >= 4.
    pub compression: bool,
    /// rdbchecksum: write the CRC64 (else 8 zero bytes).
    pub checksum: bool,
    /// Encoding thresholds, for values whose struct keeps no encoding flag.
    pub limits: Limits,
    /// Unix ms for the ctime AUX field.
    pub now_ms: u64,
    /// `rdb-key-save-delay`: µs slept after each key (negative n: 1 µs
    /// once per -n keys), so tests can catch a save in progress.
    pub key_save_delay: i64,
}

impl Default for SaveOpts {
    fn default() -> Self {
        SaveOpts {
            compression: true,
            checksum: true,
            limits: Limits::default(),
            now_ms: crate::storage::now_ms(),
            key_save_delay: 0,
        }
    }
}

/// Redis's debugDelay as a per-key pacing: the µs to sleep after key
/// number `n`: `usec`, or for negative `usec` 1 µs once per `-usec` keys.
pub fn key_delay_us(usec: i64, n: u64) -> u64 {
    match usec {
        u if u < 0 => n.is_multiple_of(u.unsigned_abs()) as u64,
        u => u as u64,
    }
}

/// Quicklist node size limit (list-max-listpack-size -2 = 8 KB).
const QL_NODE_BYTES: usize = 8192;

/// A writer that keeps the CRC64 of what went through it.
pub(super) struct Wr<'w, W: Write> {
    w: &'w mut W,
    crc: u64,
    compression: bool,
}

impl<W: Write> Wr<'_, W> {
    fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc64(self.crc, b);
        self.w.write_all(b)
    }

    fn u8(&mut self, b: u8) -> io::Result<()> {
        self.raw(&[b])
    }

    fn len(&mut self, n: u64) -> io::Result<()> {
        if n < 64 {
            self.u8(n as u8)
        } else if n < 16384 {
            self.raw(&[0x40 | (n >> 8) as u8, n as u8])
        } else if n <= u32::MAX as u64 {
            let mut b = [0x80, 0, 0, 0, 0];
            b[1..].copy_from_slice(&(n as u32).to_be_bytes());
            self.raw(&b)
        } else {
            let mut b = [0x81; 9];
            b[1..].copy_from_slice(&n.to_be_bytes());
            self.raw(&b)
        }
    }

    /// rdbSaveRawString: INT form for short canonical int32s, LZF when on
    /// and worth it, else raw.
    fn string(&mut self, s: &[u8]) -> io::Result<()> {
        if s.len() <= 11
            && let Some(v) = canonical_i64(s)
        {
            if let Ok(b) = i8::try_from(v) {
                return self.raw(&[0xC0, b as u8]);
            } else if let Ok(h) = i16::try_from(v) {
                let b = h.to_le_bytes();
                return self.raw(&[0xC1, b[0], b[1]]);
            } else if let Ok(w) = i32::try_from(v) {
                let b = w.to_le_bytes();
                return self.raw(&[0xC2, b[0], b[1], b[2], b[3]]);
            }
        }
        if self.compression
            && s.len() > 20
            && let Some(c) = lzf::compress(s, s.len() - 4)
        {
            self.u8(0xC3)?;
            self.len(c.len() as u64)?;
            self.len(s.len() as u64)?;
            return self.raw(&c);
        }
        self.len(s.len() as u64)?;
        self.raw(s)
    }

    /// Raw string without the INT forms (packed blobs).
    fn blob(&mut self, s: &[u8]) -> io::Result<()> {
        if self.compression
            && s.len() > 20
            && let Some(c) = lzf::compress(s, s.len() - 4)
        {
            self.u8(0xC3)?;
            self.len(c.len() as u64)?;
            self.len(s.len() as u64)?;
            return self.raw(&c);
        }
        self.len(s.len() as u64)?;
        self.raw(s)
    }

    fn aux(&mut self, k: &str, v: &[u8]) -> io::Result<()> {
        self.u8(OP_AUX)?;
        self.string(k.as_bytes())?;
        self.string(v)
    }
}

fn type_of(f: &Form<'_>) -> u8 {
    match f {
        Form::Str(_) => T_STRING,
        Form::List(_) => T_LIST_QUICKLIST_2,
        Form::Intset(_) => T_SET_INTSET,
        Form::SetHt(_) => T_SET,
        Form::HashLp(_) => T_HASH_LISTPACK,
        Form::HashHt(_) => T_HASH,
        Form::ZsetLp(_) => T_ZSET_LISTPACK,
        Form::ZsetSkip(_) => T_ZSET_2,
        Form::Stream(_) => T_STREAM_LISTPACKS_2,
    }
}

/// A zset score as zzlInsertAt stores it: an integer when the double is
/// integral and within +-2^62, else d2string text.
fn push_score(w: &mut LpWriter, s: f64) {
    if s.is_finite() && (-(i64::MAX as f64) / 2.0..=(i64::MAX as f64) / 2.0).contains(&s) {
        let i = s as i64;
        if i as f64 == s {
            w.push_int(i);
            return;
        }
    }
    w.push(crate::protocol::fmt_double(s).as_bytes());
}

/// Writes the type byte and the value.
fn write_value<W: Write>(wr: &mut Wr<'_, W>, v: &Value, lim: &Limits) -> io::Result<()> {
    let f = value::form(v, lim);
    wr.u8(type_of(&f))?;
    write_form(wr, f)
}

fn write_form<W: Write>(wr: &mut Wr<'_, W>, f: Form<'_>) -> io::Result<()> {
    match f {
        Form::Str(s) => wr.string(s),
        Form::List(items) => {
            // Greedy 8 KB listpack nodes, as 7.0 builds them with fill -2.
            let mut nodes = Vec::new();
            let mut cur = LpWriter::new();
            for e in items {
                let sz = LpWriter::elem_size(e);
                if !cur.is_empty() && cur.bytes() + sz > QL_NODE_BYTES {
                    nodes.push(std::mem::take(&mut cur).finish());
                }
                cur.push(e);
            }
            if !cur.is_empty() {
                nodes.push(cur.finish());
            }
            wr.len(nodes.len() as u64)?;
            for n in nodes {
                wr.len(2)?; // PACKED
                wr.blob(&n)?;
            }
            Ok(())
        }
        Form::Intset(v) => wr.blob(&intset_encode(&v)),
        Form::SetHt(m) => {
            wr.len(m.len() as u64)?;
            m.iter().try_for_each(|m| wr.string(m))
        }
        Form::HashLp(p) => {
            let mut w = LpWriter::new();
            for (f, v) in p {
                w.push(f);
                w.push(v);
            }
            wr.blob(&w.finish())
        }
        Form::HashHt(p) => {
            wr.len(p.len() as u64)?;
            for (f, v) in p {
                wr.string(f)?;
                wr.string(v)?;
            }
            Ok(())
        }
        Form::ZsetLp(p) => {
            let mut w = LpWriter::new();
            for (m, s) in p {
                w.push(m);
                push_score(&mut w, s);
            }
            wr.blob(&w.finish())
        }
        Form::ZsetSkip(p) => {
            // 7.0 writes from the tail: descending.
            wr.len(p.len() as u64)?;
            for (m, s) in p.iter().rev() {
                wr.string(m)?;
                wr.raw(&s.to_le_bytes())?;
            }
            Ok(())
        }
        Form::Stream(s) => write_stream(wr, &s),
    }
}

fn write_stream<W: Write>(wr: &mut Wr<'_, W>, s: &StreamData) -> io::Result<()> {
    let nodes = encode_nodes(&s.entries, &s.nodes);
    wr.len(nodes.len() as u64)?;
    for (k, lp) in &nodes {
        wr.blob(k)?;
        wr.blob(lp)?;
    }
    wr.len(s.entries.len() as u64)?;
    let id = |wr: &mut Wr<'_, W>, id: (u64, u64)| -> io::Result<()> {
        wr.len(id.0)?;
        wr.len(id.1)
    };
    id(wr, s.last_id)?;
    id(wr, s.first_id)?;
    id(wr, s.max_deleted_id)?;
    wr.len(s.entries_added)?;
    wr.len(s.groups.len() as u64)?;
    for g in &s.groups {
        wr.string(&g.name)?;
        id(wr, g.last_id)?;
        wr.len(g.entries_read as u64)?;
        wr.len(g.pel.len() as u64)?;
        for p in &g.pel {
            wr.raw(&id_to_key(p.id))?;
            wr.raw(&p.delivery_time.to_le_bytes())?;
            wr.len(p.delivery_count)?;
        }
        wr.len(g.consumers.len() as u64)?;
        for c in &g.consumers {
            wr.string(&c.name)?;
            wr.raw(&c.seen_time.to_le_bytes())?;
            wr.len(c.pel.len() as u64)?;
            for p in &c.pel {
                wr.raw(&id_to_key(*p))?;
            }
        }
    }
    Ok(())
}

/// Writes a whole RDB file. `dbs` yields (db index, db) pairs; a DB index
/// may come several times (one `Db` per shard): its keys are written under
/// one SELECTDB, with RESIZEDB summed over them. Empty DBs are skipped.
pub fn save<'a, W: Write>(
    w: &mut W,
    dbs: impl IntoIterator<Item = (usize, &'a Db)>,
    aux: &SaveAux,
    opts: SaveOpts,
) -> io::Result<()> {
    let mut wr = Wr {
        w,
        crc: 0,
        compression: opts.compression,
    };
    wr.raw(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
    wr.aux("redis-ver", crate::REDIS_VERSION.as_bytes())?;
    wr.aux("redis-bits", b"64")?;
    wr.aux("ctime", (opts.now_ms / 1000).to_string().as_bytes())?;
    wr.aux("used-mem", aux.used_mem.to_string().as_bytes())?;
    if let Some(id) = &aux.repl_id {
        wr.aux("repl-stream-db", aux.repl_stream_db.to_string().as_bytes())?;
        wr.aux("repl-id", id.as_bytes())?;
        wr.aux("repl-offset", aux.repl_offset.to_string().as_bytes())?;
    }
    wr.aux("aof-base", if aux.aof_base { b"1" } else { b"0" })?;
    for body in &aux.lua {
        wr.aux("lua", body)?;
    }
    for lib in &aux.functions {
        wr.u8(OP_FUNCTION2)?;
        wr.string(lib)?;
    }
    // Group shards' DBs by index, in increasing order.
    let mut groups: std::collections::BTreeMap<usize, Vec<&Db>> = Default::default();
    for (i, db) in dbs {
        if !db.is_empty() {
            groups.entry(i).or_default().push(db);
        }
    }
    let mut nkeys = 0u64;
    for (i, parts) in groups {
        wr.u8(OP_SELECTDB)?;
        wr.len(i as u64)?;
        wr.u8(OP_RESIZEDB)?;
        wr.len(parts.iter().map(|d| d.dict.len() as u64).sum())?;
        wr.len(parts.iter().map(|d| d.expires_len() as u64).sum())?;
        for db in parts {
            for (k, e, expire_at) in db.dict.iter_with_expire() {
                if expire_at != 0 {
                    wr.u8(OP_EXPIRETIME_MS)?;
                    wr.raw(&(expire_at as i64).to_le_bytes())?;
                }
                let f = value::form(&e.value, &opts.limits);
                wr.u8(type_of(&f))?;
                wr.string(k)?;
                write_form(&mut wr, f)?;
                nkeys += 1;
                let us = key_delay_us(opts.key_save_delay, nkeys);
                if us > 0 {
                    // What is saved so far goes out before the pause, so a
                    // slow save is seen in progress (file size, replica).
                    wr.w.flush()?;
                    std::thread::sleep(std::time::Duration::from_micros(us));
                }
            }
        }
    }
    wr.u8(OP_EOF)?;
    let crc = if opts.checksum { wr.crc } else { 0 };
    wr.w.write_all(&crc.to_le_bytes())?;
    Ok(())
}

/// `save` into a Vec.
pub fn save_to_vec<'a>(
    dbs: impl IntoIterator<Item = (usize, &'a Db)>,
    aux: &SaveAux,
    opts: SaveOpts,
) -> Vec<u8> {
    let mut v = Vec::new();
    save(&mut v, dbs, aux, opts).expect("writing to a Vec cannot fail");
    v
}

/// The DUMP payload of a value: type, value, RDB version (2 bytes LE),
/// CRC64 (8 bytes LE) of everything before it.
pub fn dump_payload(v: &Value, lim: &Limits, compression: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut wr = Wr {
        w: &mut buf,
        crc: 0,
        compression,
    };
    write_value(&mut wr, v, lim).expect("writing to a Vec cannot fail");
    buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// FUNCTION DUMP's payload: a FUNCTION2 record per library code, the RDB
/// version (2 bytes LE) and the CRC64 (8 bytes LE) of everything before it.
pub fn dump_functions(codes: &[impl AsRef<[u8]>], compression: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut wr = Wr {
        w: &mut buf,
        crc: 0,
        compression,
    };
    for code in codes {
        wr.u8(OP_FUNCTION2).expect("writing to a Vec cannot fail");
        wr.string(code.as_ref())
            .expect("writing to a Vec cannot fail");
    }
    buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// A stream value's bytes (no type byte), for tests of the stream layout.
#[cfg(test)]
pub(super) fn stream_record(s: &StreamData) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut wr = Wr {
        w: &mut buf,
        crc: 0,
        compression: false,
    };
    write_stream(&mut wr, s).unwrap();
    buf
}
