//! The streaming RDB reader.

use std::io::Read;

use super::packed::{Elem, intset_decode, lp_decode, zipmap_decode, zl_decode};
use super::stream::{ConsumerData, GroupData, PendingData, StreamData, decode_node, id_from_key};
use super::value::{self, Limits};
use super::*;
use crate::storage::{Key, Record, Value};

/// Load options.
#[derive(Clone, Debug)]
pub struct LoadOpts {
    /// Encoding thresholds to apply to loaded values.
    pub limits: Limits,
    /// A master drops keys whose TTL passed; a replica keeps them.
    pub drop_expired: bool,
    /// "Now" in ms for `drop_expired` (and hash field TTLs).
    pub now_ms: u64,
    /// rdbchecksum: verify the trailing CRC64 (a stored 0 is never checked).
    pub verify_checksum: bool,
    /// Number of databases; SELECTDB beyond it is an error.
    pub databases: usize,
    /// Skip MODULE_AUX records and MODULE_2 values instead of failing.
    pub skip_modules: bool,
}

impl Default for LoadOpts {
    fn default() -> Self {
        LoadOpts {
            limits: Limits::default(),
            drop_expired: true,
            now_ms: crate::storage::now_ms(),
            verify_checksum: true,
            databases: 16,
            skip_modules: false,
        }
    }
}

/// What a load found besides the keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadInfo {
    pub version: u32,
    pub keys_loaded: u64,
    /// Keys dropped because their TTL had passed (drop_expired).
    pub keys_expired: u64,
    /// Empty collections skipped, as Redis does.
    pub empty_keys_skipped: u64,
    /// Module aux records / values skipped (skip_modules).
    pub modules_skipped: u64,
    /// Hash fields dropped because their 7.4 field TTL had passed.
    pub hash_fields_expired: u64,
    pub redis_ver: Option<String>,
    pub redis_bits: Option<i64>,
    pub ctime: Option<i64>,
    pub used_mem: Option<i64>,
    pub aof_base: Option<bool>,
    /// Only when exactly 40 bytes, as Redis requires.
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub repl_stream_db: Option<i64>,
    /// Bodies of `lua` AUX fields (scripts saved by Redis <= 6.2).
    pub lua: Vec<Vec<u8>>,
    /// FUNCTION2 payloads: each library's full source, as saved.
    pub functions: Vec<Vec<u8>>,
    /// The stored checksum (0 = saved without).
    pub checksum: u64,
}

/// A counting, checksumming reader.
pub(super) struct Rd<'r, R: Read> {
    r: &'r mut R,
    crc: u64,
    pub pos: u64,
}

/// Strings are read in chunks of this size, so a bogus length costs no
/// more memory than the bytes that actually arrive.
const CHUNK: usize = 1 << 20;

fn corrupt<T>(m: impl Into<String>) -> Result<T, RdbError> {
    Err(RdbError::Corrupt(m.into()))
}

/// Initial capacity for a collection of claimed size `n`.
fn cap(n: u64) -> usize {
    n.min(1024) as usize
}

impl<'r, R: Read> Rd<'r, R> {
    pub fn new(r: &'r mut R) -> Self {
        Rd { r, crc: 0, pos: 0 }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.r.read_exact(buf)?;
        self.crc = crc64(self.crc, buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        let n = usize::try_from(n).map_err(|_| RdbError::Corrupt("length too big".into()))?;
        let mut v = Vec::with_capacity(n.min(CHUNK));
        while v.len() < n {
            let old = v.len();
            let step = (n - old).min(CHUNK.max(old));
            v.resize(old + step, 0);
            self.fill(&mut v[old..])?;
        }
        Ok(v)
    }

    /// A length; Err for the string-only special encodings.
    fn len_or_special(&mut self) -> Result<(u64, bool), RdbError> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => ((b & 0x3F) as u64, false),
            1 => (((b & 0x3F) as u64) << 8 | self.u8()? as u64, false),
            3 => ((b & 0x3F) as u64, true),
            _ => match b {
                0x80 => (u32::from_be_bytes(self.arr()?) as u64, false),
                0x81 => (u64::from_be_bytes(self.arr()?), false),
                _ => return corrupt(format!("Unknown length encoding {b} in rdbLoadLen()")),
            },
        })
    }

    /// A plain length (where Redis reads a count). Like Redis, the special
    /// form is taken as its 6-bit number.
    pub fn len(&mut self) -> Result<u64, RdbError> {
        Ok(self.len_or_special()?.0)
    }

    /// An RDB string in any of its forms (raw, INT8/16/32, LZF).
    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        let (n, special) = self.len_or_special()?;
        if !special {
            return self.bytes(n);
        }
        match n {
            0 => Ok((self.u8()? as i8).to_string().into_bytes()),
            1 => Ok(i16::from_le_bytes(self.arr()?).to_string().into_bytes()),
            2 => Ok(i32::from_le_bytes(self.arr()?).to_string().into_bytes()),
            3 => {
                let clen = self.len()?;
                let ulen = self.len()?;
                // LZF expands at most ~88x (a 3-byte ref yields 264 bytes):
                // refuse claims beyond that before allocating for them.
                if ulen == 0 {
                    // Redis accepts it: decompressing into no room "makes"
                    // the 0 bytes it asked for, whatever the input holds.
                    self.bytes(clen)?;
                    return Ok(Vec::new());
                }
                if ulen > clen.saturating_mul(90) {
                    return corrupt("Invalid LZF compressed string");
                }
                let c = self.bytes(clen)?;
                lzf::decompress(&c, ulen as usize)
            }
            _ => corrupt(format!("Unknown RDB string encoding type {n}")),
        }
    }

    fn i64_le(&mut self) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.arr()?))
    }

    fn f64_le(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.arr()?))
    }

    /// The pre-4.0 string double.
    fn str_double(&mut self) -> Result<f64, RdbError> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                // sscanf("%lg"): a number must start the string.
                let b = self.bytes(n as u64)?;
                match c_strtod(&b) {
                    (_, 0) => corrupt("bad double value"),
                    (v, _) => Ok(v),
                }
            }
        }
    }
}

/// C's strtod over `s` up to its first NUL: (value, bytes used).
fn c_strtod(s: &[u8]) -> (f64, usize) {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    let mut buf = s[..end].to_vec();
    buf.push(0);
    let start = buf.as_ptr() as *const libc::c_char;
    let mut stop: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call.
    let v = unsafe { libc::strtod(start, &mut stop) };
    (v, stop as usize - start as usize)
}

/// A packed zset's score as Redis reads it (zzlStrtod): strtod over at
/// most 127 bytes, whatever follows the number, 0 when there is none.
fn elem_double(e: Elem<'_>) -> Result<f64, RdbError> {
    match e {
        Elem::Int(v) => Ok(v as f64),
        Elem::Str(s) => Ok(c_strtod(&s[..s.len().min(127)]).0),
    }
}

fn pairs(el: Vec<Elem<'_>>) -> Result<super::stream::Fields, RdbError> {
    if !el.len().is_multiple_of(2) {
        return corrupt("odd number of elements in a packed hash");
    }
    Ok(el
        .chunks_exact(2)
        .map(|c| (c[0].to_vec(), c[1].to_vec()))
        .collect())
}

fn zpairs(el: Vec<Elem<'_>>) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    if !el.len().is_multiple_of(2) {
        return corrupt("odd number of elements in a packed zset");
    }
    el.chunks_exact(2)
        .map(|c| Ok((c[0].to_vec(), elem_double(c[1])?)))
        .collect()
}

/// Per-value context: limits and the field-TTL clock.
pub(super) struct ObjCtx<'a> {
    pub lim: &'a Limits,
    pub now_ms: u64,
    pub drop_expired: bool,
    pub skip_modules: bool,
    pub hash_fields_expired: u64,
    pub modules_skipped: u64,
}

/// Reads one value of type `t`. Ok(None) = an empty collection (skipped).
pub(super) fn read_object<R: Read>(
    rd: &mut Rd<'_, R>,
    t: u8,
    cx: &mut ObjCtx<'_>,
) -> Result<Option<Value>, RdbError> {
    let lim = cx.lim;
    let v = match t {
        T_STRING => Value::Str(rd.string()?.into()),
        T_LIST => {
            let n = rd.len()?;
            let mut items = Vec::with_capacity(cap(n));
            for _ in 0..n {
                items.push(rd.string()?);
            }
            if items.is_empty() {
                return Ok(None);
            }
            value::list(items)
        }
        T_SET => {
            let n = rd.len()?;
            let mut m = Vec::with_capacity(cap(n));
            for _ in 0..n {
                m.push(rd.string()?);
            }
            if m.is_empty() {
                return Ok(None);
            }
            value::set(m, false, lim)?
        }
        T_ZSET | T_ZSET_2 => {
            let n = rd.len()?;
            let mut p = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = rd.string()?;
                let s = if t == T_ZSET {
                    rd.str_double()?
                } else {
                    rd.f64_le()?
                };
                p.push((m, s));
            }
            if p.is_empty() {
                return Ok(None);
            }
            value::zset(p, false, lim)?
        }
        T_HASH => {
            let n = rd.len()?;
            let mut p = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let f = rd.string()?;
                let v = rd.string()?;
                p.push((f, v));
            }
            if p.is_empty() {
                return Ok(None);
            }
            value::hash(p, false, true, lim)?
        }
        T_HASH_METADATA | T_HASH_METADATA_PRE_GA => {
            let min = if t == T_HASH_METADATA {
                rd.i64_le()? as u64
            } else {
                0
            };
            let n = rd.len()?;
            let mut p = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let ttl = rd.len()?;
                let f = rd.string()?;
                let v = rd.string()?;
                let at = if ttl == 0 {
                    0
                } else if t == T_HASH_METADATA {
                    ttl.wrapping_add(min).wrapping_sub(1)
                } else {
                    ttl
                };
                if cx.field_expired(at) {
                    continue;
                }
                p.push((f, v));
            }
            if p.is_empty() {
                return Ok(None);
            }
            value::hash(p, false, true, lim)?
        }
        T_MODULE_2 => {
            let id = rd.len()?;
            if !cx.skip_modules {
                return Err(RdbError::Module(format!(
                    "The RDB file contains module data I can't load: no matching module type '{}'",
                    module_name(id)
                )));
            }
            skip_module_values(rd)?;
            cx.modules_skipped += 1;
            return Ok(None);
        }
        T_MODULE_PRE_GA => {
            return Err(RdbError::Module(
                "The RDB file contains module data (pre-GA format) I can't load".into(),
            ));
        }
        T_HASH_ZIPMAP
        | T_LIST_ZIPLIST
        | T_SET_INTSET
        | T_ZSET_ZIPLIST
        | T_HASH_ZIPLIST
        | T_HASH_LISTPACK
        | T_ZSET_LISTPACK
        | T_SET_LISTPACK
        | T_HASH_LISTPACK_EX
        | T_HASH_LISTPACK_EX_PRE_GA => {
            if t == T_HASH_LISTPACK_EX {
                rd.i64_le()?; // minExpire: recomputed from the triples
            }
            let blob = rd.string()?;
            return read_blob(t, &blob, cx);
        }
        T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
            let n = rd.len()?;
            let mut items = Vec::new();
            for _ in 0..n {
                let container = if t == T_LIST_QUICKLIST_2 {
                    rd.len()?
                } else {
                    2
                };
                let data = rd.string()?;
                if data.is_empty() {
                    return corrupt("Quicklist node with empty data");
                }
                match container {
                    1 => items.push(data),
                    2 => {
                        let el = if t == T_LIST_QUICKLIST_2 {
                            lp_decode(&data)?
                        } else {
                            zl_decode(&data)?
                        };
                        items.extend(el.into_iter().map(|e| e.to_vec()));
                    }
                    _ => return corrupt("Quicklist integrity check failed"),
                }
            }
            if items.is_empty() {
                return Ok(None);
            }
            value::list(items)
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => {
            value::stream(read_stream(rd, t)?)
        }
        _ => return Err(RdbError::UnknownType(t)),
    };
    Ok(Some(v))
}

impl ObjCtx<'_> {
    fn field_expired(&mut self, at: u64) -> bool {
        if self.drop_expired && at != 0 && at <= self.now_ms {
            self.hash_fields_expired += 1;
            true
        } else {
            false
        }
    }
}

fn read_blob(t: u8, blob: &[u8], cx: &mut ObjCtx<'_>) -> Result<Option<Value>, RdbError> {
    let lim = cx.lim;
    let v = match t {
        T_HASH_ZIPMAP => {
            let p = zipmap_decode(blob)?;
            if p.is_empty() {
                return corrupt("Zipmap integrity check failed");
            }
            let p = p
                .into_iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .collect();
            value::hash(p, true, true, lim)?
        }
        T_LIST_ZIPLIST => {
            let el = zl_decode(blob)?;
            if el.is_empty() {
                return Ok(None);
            }
            value::list(el.into_iter().map(|e| e.to_vec()).collect())
        }
        T_SET_INTSET => {
            let v = intset_decode(blob)?;
            value::set(
                v.into_iter().map(|i| i.to_string().into_bytes()).collect(),
                true,
                lim,
            )?
        }
        T_SET_LISTPACK => {
            let el = lp_decode(blob)?;
            if el.is_empty() {
                return Ok(None);
            }
            value::set(el.into_iter().map(|e| e.to_vec()).collect(), true, lim)?
        }
        T_ZSET_ZIPLIST | T_ZSET_LISTPACK => {
            let el = if t == T_ZSET_ZIPLIST {
                zl_decode(blob)?
            } else {
                lp_decode(blob)?
            };
            if el.is_empty() {
                return Ok(None);
            }
            value::zset(zpairs(el)?, true, lim)?
        }
        T_HASH_ZIPLIST | T_HASH_LISTPACK => {
            let el = if t == T_HASH_ZIPLIST {
                zl_decode(blob)?
            } else {
                lp_decode(blob)?
            };
            if el.is_empty() {
                return Ok(None);
            }
            value::hash(pairs(el)?, true, t == T_HASH_ZIPLIST, lim)?
        }
        T_HASH_LISTPACK_EX | T_HASH_LISTPACK_EX_PRE_GA => {
            let el = lp_decode(blob)?;
            if el.is_empty() {
                return Ok(None);
            }
            if !el.len().is_multiple_of(3) {
                return corrupt("Hash listpack with field TTLs: bad element count");
            }
            let mut p = Vec::with_capacity(el.len() / 3);
            for c in el.chunks_exact(3) {
                let at = c[2].as_int().filter(|&v| v >= 0).ok_or_else(|| {
                    RdbError::Corrupt("Hash listpack with field TTLs: bad TTL".into())
                })?;
                if !cx.field_expired(at as u64) {
                    p.push((c[0].to_vec(), c[1].to_vec()));
                }
            }
            if p.is_empty() {
                return Ok(None);
            }
            value::hash(p, true, false, lim)?
        }
        _ => return Err(RdbError::UnknownType(t)),
    };
    Ok(Some(v))
}

fn read_id<R: Read>(rd: &mut Rd<'_, R>) -> Result<(u64, u64), RdbError> {
    Ok((rd.len()?, rd.len()?))
}

fn read_raw_id<R: Read>(rd: &mut Rd<'_, R>) -> Result<(u64, u64), RdbError> {
    id_from_key(&rd.arr::<16>()?)
}

pub(super) fn read_stream<R: Read>(rd: &mut Rd<'_, R>, t: u8) -> Result<StreamData, RdbError> {
    let mut s = StreamData::default();
    let nodes = rd.len()?;
    let mut last_key = None;
    for _ in 0..nodes {
        let key = rd.string()?;
        let master = id_from_key(&key)?;
        if last_key.is_some_and(|k| k >= master) {
            return corrupt("Stream node keys out of order");
        }
        last_key = Some(master);
        let lp = rd.string()?;
        let node = decode_node(master, &lp, &mut s.entries)?;
        s.nodes.push(node);
    }
    if s.entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return corrupt("Stream entry IDs out of order");
    }
    s.length = rd.len()?;
    if s.length != s.entries.len() as u64 {
        return corrupt("Stream length does not match its entries");
    }
    s.last_id = read_id(rd)?;
    if t >= T_STREAM_LISTPACKS_2 {
        s.first_id = read_id(rd)?;
        s.max_deleted_id = read_id(rd)?;
        s.entries_added = rd.len()?;
    } else {
        s.first_id = s.entries.first().map(|e| e.0).unwrap_or((0, 0));
        s.entries_added = s.length;
    }
    let ngroups = rd.len()?;
    for _ in 0..ngroups {
        let mut g = GroupData {
            name: rd.string()?,
            last_id: read_id(rd)?,
            ..Default::default()
        };
        g.entries_read = if t >= T_STREAM_LISTPACKS_2 {
            rd.len()? as i64
        } else {
            estimate_entries_read(&s, g.last_id)
        };
        let npel = rd.len()?;
        for _ in 0..npel {
            let id = read_raw_id(rd)?;
            let delivery_time = rd.i64_le()? as u64;
            let delivery_count = rd.len()?;
            g.pel.push(PendingData {
                id,
                delivery_time,
                delivery_count,
            });
        }
        let mut pel_ids: std::collections::HashSet<_> = g.pel.iter().map(|p| p.id).collect();
        if pel_ids.len() != g.pel.len() {
            return corrupt("Duplicated global PEL entry loading stream consumer group");
        }
        let ncons = rd.len()?;
        for _ in 0..ncons {
            let name = rd.string()?;
            let seen_time = rd.i64_le()? as u64;
            let active_time = if t == T_STREAM_LISTPACKS_3 {
                rd.i64_le()? as u64
            } else {
                seen_time
            };
            let n = rd.len()?;
            let mut pel = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let id = read_raw_id(rd)?;
                if !pel_ids.remove(&id) {
                    return corrupt("Consumer PEL NACK not found in group PEL");
                }
                pel.push(id);
            }
            g.consumers.push(ConsumerData {
                name,
                seen_time,
                active_time,
                pel,
            });
        }
        if !pel_ids.is_empty() {
            return corrupt("Stream CG PEL entry without consumer");
        }
        s.groups.push(g);
    }
    Ok(s)
}

/// streamEstimateDistanceFromFirstEverEntry for v1 streams (no max_deleted).
fn estimate_entries_read(s: &StreamData, id: (u64, u64)) -> i64 {
    if s.entries_added == 0 {
        return 0;
    }
    if s.length == 0 && id <= s.last_id {
        return s.entries_added as i64;
    }
    if id == s.last_id {
        return s.entries_added as i64;
    }
    if id > s.last_id {
        return -1;
    }
    if id < s.first_id {
        return 0;
    }
    if id == s.first_id {
        return 1;
    }
    -1
}

/// Walks the tagged values of one module value up to its EOF marker.
fn skip_module_values<R: Read>(rd: &mut Rd<'_, R>) -> Result<(), RdbError> {
    loop {
        match rd.len()? {
            0 => return Ok(()),
            1 | 2 => {
                rd.len()?;
            }
            3 => {
                rd.arr::<4>()?;
            }
            4 => {
                rd.arr::<8>()?;
            }
            5 => {
                rd.string()?;
            }
            op => return corrupt(format!("Unknown module opcode {op}")),
        }
    }
}

fn module_name(id: u64) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9)
        .map(|i| CHARS[((id >> (10 + (8 - i) * 6)) & 63) as usize] as char)
        .collect()
}

/// Loads an RDB stream; see the module docs. `on_key(db, key, entry)` is
/// called for every key kept; `on_aux(key, value)` for every AUX field.
pub fn load<R: Read>(
    r: &mut R,
    opts: &LoadOpts,
    mut on_key: impl FnMut(usize, Key, Record),
    mut on_aux: impl FnMut(&[u8], &[u8]),
) -> Result<LoadInfo, RdbError> {
    let mut rd = Rd::new(r);
    let magic: [u8; 9] = rd.arr()?;
    if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
        return Err(RdbError::BadSignature);
    }
    let version: u32 = std::str::from_utf8(&magic[5..]).unwrap().parse().unwrap();
    if !(1..=RDB_MAX_LOAD_VERSION).contains(&version) {
        return Err(RdbError::BadVersion(version));
    }
    let mut info = LoadInfo {
        version,
        ..Default::default()
    };
    let mut cx = ObjCtx {
        lim: &opts.limits,
        now_ms: opts.now_ms,
        drop_expired: opts.drop_expired,
        skip_modules: opts.skip_modules,
        hash_fields_expired: 0,
        modules_skipped: 0,
    };
    let mut db = 0usize;
    let mut expire: u64 = 0;
    let mut idle: Option<u64> = None;
    let lru_now = (crate::storage::now_ms() / 1000) as u32;
    loop {
        let t = rd.u8()?;
        match t {
            OP_EXPIRETIME => {
                let s = i32::from_le_bytes(rd.arr()?);
                expire = (s as i64 * 1000) as u64;
                continue;
            }
            OP_EXPIRETIME_MS => {
                expire = rd.i64_le()? as u64;
                continue;
            }
            OP_FREQ => {
                rd.u8()?;
                continue;
            }
            OP_IDLE => {
                idle = Some(rd.len()?);
                continue;
            }
            OP_EOF => break,
            OP_SELECTDB => {
                let n = rd.len()?;
                if n >= opts.databases as u64 {
                    return Err(RdbError::DbOutOfRange(opts.databases as u64));
                }
                db = n as usize;
                continue;
            }
            OP_RESIZEDB => {
                rd.len()?;
                rd.len()?;
                continue;
            }
            OP_SLOT_INFO => {
                rd.len()?;
                rd.len()?;
                rd.len()?;
                continue;
            }
            OP_AUX => {
                let k = rd.string()?;
                let v = rd.string()?;
                apply_aux(&mut info, &k, &v);
                on_aux(&k, &v);
                continue;
            }
            OP_MODULE_AUX => {
                let id = rd.len()?;
                let when_op = rd.len()?;
                let _when = rd.len()?;
                if when_op != 2 {
                    return corrupt("bad when_opcode in MODULE_AUX");
                }
                if !opts.skip_modules {
                    return Err(RdbError::Module(format!(
                        "The RDB file contains AUX module data I can't load: no matching module '{}'",
                        module_name(id)
                    )));
                }
                skip_module_values(&mut rd)?;
                info.modules_skipped += 1;
                continue;
            }
            OP_FUNCTION_PRE_GA => {
                info.functions.push(pre_ga_function(&mut rd)?);
                continue;
            }
            OP_FUNCTION2 => {
                info.functions.push(rd.string()?);
                continue;
            }
            _ => {}
        }
        // A key/value pair of type `t`.
        let key = rd.string()?;
        let obj = read_object(&mut rd, t, &mut cx)?;
        let (exp, idl) = (std::mem::take(&mut expire), idle.take());
        let Some(value) = obj else {
            info.empty_keys_skipped += 1;
            continue;
        };
        if opts.drop_expired && exp != 0 && exp < opts.now_ms {
            info.keys_expired += 1;
            continue;
        }
        let lru = match idl {
            Some(s) => lru_now.saturating_sub(s.min(u32::MAX as u64) as u32),
            None => lru_now,
        };
        info.keys_loaded += 1;
        on_key(
            db,
            key.into_boxed_slice(),
            Record {
                freq: crate::storage::evict::LFU_INIT_VAL,
                value,
                expire_at: exp,
                lru,
                raw: false,
            },
        );
    }
    let computed = rd.crc;
    if version >= 5 {
        let stored = u64::from_le_bytes(rd.arr()?);
        info.checksum = stored;
        if opts.verify_checksum && stored != 0 && stored != computed {
            return Err(RdbError::BadChecksum { stored, computed });
        }
    }
    info.hash_fields_expired = cx.hash_fields_expired;
    info.modules_skipped += cx.modules_skipped;
    Ok(info)
}

fn apply_aux(info: &mut LoadInfo, k: &[u8], v: &[u8]) {
    let s = || String::from_utf8_lossy(v).into_owned();
    let n = || {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
    };
    match k.to_ascii_lowercase().as_slice() {
        b"redis-ver" => info.redis_ver = Some(s()),
        b"redis-bits" => info.redis_bits = n(),
        b"ctime" => info.ctime = n(),
        b"used-mem" => info.used_mem = n(),
        b"aof-base" | b"aof-preamble" => info.aof_base = n().map(|x| x != 0),
        b"repl-id" if v.len() == 40 => info.repl_id = Some(s()),
        b"repl-offset" => info.repl_offset = n(),
        b"repl-stream-db" => info.repl_stream_db = n(),
        b"lua" => info.lua.push(v.to_vec()),
        _ => {}
    }
}

/// Decodes a DUMP payload (checks its version and CRC64): the value, or
/// None for an empty collection. Errors map to RESTORE's replies by the caller.
pub fn restore_payload(payload: &[u8], lim: &Limits) -> Result<Option<Value>, RestoreError> {
    if payload.len() < 10 {
        return Err(RestoreError::Footer);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return Err(RestoreError::Footer);
    }
    let crc = crc64(0, &payload[..payload.len() - 8]);
    if crc.to_le_bytes() != footer[2..10] {
        return Err(RestoreError::Footer);
    }
    // As Redis's RESTORE, the value is read from the whole payload: a value
    // may run into the footer's bytes, and bytes left over are ignored.
    let _ = body;
    let mut r = payload;
    let mut rd = Rd::new(&mut r);
    let mut cx = ObjCtx {
        lim,
        now_ms: crate::storage::now_ms(),
        drop_expired: true,
        skip_modules: false,
        hash_fields_expired: 0,
        modules_skipped: 0,
    };
    let t = rd.u8().map_err(RestoreError::Data)?;
    if !is_object_type(t) {
        return Err(RestoreError::Data(RdbError::UnknownType(t)));
    }
    read_object(&mut rd, t, &mut cx).map_err(RestoreError::Data)
}

/// Why FUNCTION RESTORE refused a payload (Redis's reply texts).
#[derive(Debug, PartialEq, Eq)]
pub enum FunctionsPayloadError {
    /// "DUMP payload version or checksum are wrong"
    Footer,
    /// The error text after `ERR `.
    Data(&'static str),
}

/// Decodes a FUNCTION DUMP payload into the libraries' codes: FUNCTION2
/// records (or 7.0-rc FUNCTION ones, turned into a `#!engine name=`
/// code) up to the 10-byte footer. A record that does not decode ends the
/// list with its error (Redis loads the records before it first).
pub fn restore_functions(
    payload: &[u8],
) -> Result<Vec<Result<Vec<u8>, FunctionsPayloadError>>, FunctionsPayloadError> {
    if payload.len() < 10 {
        return Err(FunctionsPayloadError::Footer);
    }
    let ver = u16::from_le_bytes([payload[payload.len() - 10], payload[payload.len() - 9]]);
    if ver > RDB_VERSION {
        return Err(FunctionsPayloadError::Footer);
    }
    let crc = crc64(0, &payload[..payload.len() - 8]);
    if crc.to_le_bytes() != payload[payload.len() - 8..] {
        return Err(FunctionsPayloadError::Footer);
    }
    let mut r = payload;
    let mut rd = Rd::new(&mut r);
    let mut out = Vec::new();
    while (payload.len() as u64).saturating_sub(rd.pos) > 10 {
        let lib = match rd.u8() {
            Err(_) => Err(FunctionsPayloadError::Data("can not read data type")),
            Ok(OP_FUNCTION2) => rd.string().map_err(|_| {
                FunctionsPayloadError::Data("failed loading the given functions payload")
            }),
            Ok(OP_FUNCTION_PRE_GA) => pre_ga_function(&mut rd).map_err(|_| {
                FunctionsPayloadError::Data("failed loading the given functions payload")
            }),
            Ok(_) => Err(FunctionsPayloadError::Data("given type is not a function")),
        };
        let failed = lib.is_err();
        out.push(lib);
        if failed {
            break;
        }
    }
    Ok(out)
}

/// A 7.0-rc FUNCTION record (name, engine, optional description, code) as
/// the code FUNCTION LOAD would take.
fn pre_ga_function<R: Read>(rd: &mut Rd<'_, R>) -> Result<Vec<u8>, RdbError> {
    let name = rd.string()?;
    let engine = rd.string()?;
    if rd.len()? != 0 {
        rd.string()?;
    }
    let code = rd.string()?;
    let mut lib = format!("#!{} name=", String::from_utf8_lossy(&engine)).into_bytes();
    lib.extend_from_slice(&name);
    lib.push(b'\n');
    lib.extend_from_slice(&code);
    Ok(lib)
}

/// Types 7.0's rdbLoadObjectType accepts (RESTORE refuses newer ones).
fn is_object_type(t: u8) -> bool {
    matches!(t, 0..=7 | 9..=19)
}

/// Why a DUMP payload was refused.
#[derive(Debug)]
pub enum RestoreError {
    /// Version too new or checksum wrong.
    Footer,
    /// The value does not decode ("Bad data format").
    Data(RdbError),
}
