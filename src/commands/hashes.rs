//! Hash commands (Redis 7.0): HSET HSETNX HGET HMGET HMSET HDEL HLEN HSTRLEN
//! HEXISTS HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.
//! Also the SCAN-family and random-sampling helpers shared with sets.

use bytes::Bytes;

use crate::storage::notify as ev;
use std::sync::atomic::Ordering;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64, with_out};
use crate::protocol::Out;
use crate::storage::hash::{Hash, HashLimits, scan_step};
use crate::storage::{Entry, Value};

pub fn commands() -> Vec<Command> {
    vec![
        cmd("hset", -4, WRITE | DENYOOM | FAST, hset).keys(1, 1, 1),
        cmd("hsetnx", 4, WRITE | DENYOOM | FAST, hsetnx).keys(1, 1, 1),
        cmd("hget", 3, READONLY | FAST, hget).keys(1, 1, 1),
        cmd("hmget", -3, READONLY | FAST, hmget).keys(1, 1, 1),
        cmd("hmset", -4, WRITE | DENYOOM | FAST, hset).keys(1, 1, 1),
        cmd("hdel", -3, WRITE | FAST, hdel).keys(1, 1, 1),
        cmd("hlen", 2, READONLY | FAST, hlen).keys(1, 1, 1),
        cmd("hstrlen", 3, READONLY | FAST, hstrlen).keys(1, 1, 1),
        cmd("hexists", 3, READONLY | FAST, hexists).keys(1, 1, 1),
        cmd("hkeys", 2, READONLY, hkeys).keys(1, 1, 1),
        cmd("hvals", 2, READONLY, hvals).keys(1, 1, 1),
        cmd("hgetall", 2, READONLY, hgetall).keys(1, 1, 1),
        cmd("hincrby", 4, WRITE | DENYOOM | FAST, hincrby).keys(1, 1, 1),
        cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, hincrbyfloat).keys(1, 1, 1),
        cmd("hrandfield", -2, READONLY, hrandfield).keys(1, 1, 1),
        cmd("hscan", -3, READONLY, hscan).keys(1, 1, 1),
    ]
}

// ---------------------------------------------------------------------------
// Helpers shared with the other aggregate families.

/// Redis's `emptyscan` reply.
pub(crate) fn empty_scan(out: &mut Out) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

/// Parses a SCAN cursor like Redis (strtoul base 10: optional sign, an empty
/// string is 0, a leading space or trailing junk or overflow is invalid).
pub(crate) fn parse_scan_cursor(s: &[u8]) -> Option<u64> {
    if s.first()
        .is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // No conversion: strtoul leaves the end pointer at the start, which
        // is only the end of the string when the string is empty.
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// SCAN options after the cursor.
pub(crate) struct ScanOpts {
    pub count: usize,
    /// None when absent or "*" (Redis skips matching then).
    pub pattern: Option<Bytes>,
}

impl ScanOpts {
    pub fn matches(&self, s: &[u8]) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => crate::util::glob_match(p, s, false),
        }
    }
}

/// Parses `[MATCH pattern] [COUNT count]` (any order, repeats allowed) the
/// way scanGenericCommand does for HSCAN/SSCAN/ZSCAN.
pub(crate) fn parse_scan_opts(args: &[Bytes]) -> Result<ScanOpts, &'static str> {
    let mut opts = ScanOpts {
        count: 10,
        pattern: None,
    };
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if eq_ic(&args[i], "count") && more {
            let n = parse_i64(&args[i + 1]).ok_or(errors::NOT_INT)?;
            if n < 1 {
                return Err(errors::SYNTAX);
            }
            opts.count = n as usize;
        } else if eq_ic(&args[i], "match") && more {
            let p = &args[i + 1];
            opts.pattern = if &p[..] == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok(opts)
}

/// `count` distinct positions out of `0..size` (count < size), in
/// ascending order (selection sampling, Knuth's algorithm S).
pub(crate) fn sample_ordered(size: usize, count: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    let mut need = count;
    for i in 0..size {
        if need == 0 {
            break;
        }
        if fastrand::usize(..size - i) < need {
            out.push(i);
            need -= 1;
        }
    }
    out
}

/// `count` distinct positions out of `0..size` (count < size) in random
/// order; cheap when count is small next to size.
pub(crate) fn sample_sparse(size: usize, count: usize) -> Vec<usize> {
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let i = fastrand::usize(..size);
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// A unique random sample as Redis's HRANDFIELD/SRANDMEMBER pick it: small
/// (listpack/intset) values and counts close to the size reply in stored
/// order, big ones in random order.
pub(crate) fn sample_unique(size: usize, count: usize, compact: bool) -> Vec<usize> {
    if compact || count * 3 > size {
        sample_ordered(size, count)
    } else {
        sample_sparse(size, count)
    }
}

/// Parses a count that Redis reads with getRangeLongFromObjectOrReply
/// between -LONG_MAX and LONG_MAX.
pub(crate) fn parse_signed_count(s: &[u8]) -> Result<i64, String> {
    match parse_i64(s) {
        None => Err(errors::NOT_INT.into()),
        Some(i64::MIN) => Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )),
        Some(n) => Ok(n),
    }
}

// ---------------------------------------------------------------------------

fn limits(ctx: &Ctx) -> HashLimits {
    let e = &ctx.srv.encoding;
    HashLimits {
        max_entries: e.hash_max_listpack_entries.load(Ordering::Relaxed) as usize,
        max_value: e.hash_max_listpack_value.load(Ordering::Relaxed) as usize,
    }
}

/// Read lookup: Ok(None) when missing, Err(()) on a wrong type.
fn read_hash<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Hash>, ()> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::Hash(h),
            ..
        }) => Ok(Some(h)),
        Some(_) => Err(()),
    }
}

fn write_hash<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Hash>, ()> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::Hash(h),
            ..
        }) => Ok(Some(h)),
        Some(_) => Err(()),
    }
}

/// The hash at `key`, created empty when missing (hashTypeLookupWriteOrCreate).
/// None (with WRONGTYPE written) for another type. Callers must not leave
/// the created hash empty.
fn hash_or_create<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Hash> {
    match write_hash(ctx, key) {
        Err(()) => {
            ctx.out.err(errors::WRONGTYPE);
            return None;
        }
        Ok(Some(_)) => {}
        Ok(None) => ctx.db(key).set(key, Value::Hash(Default::default())),
    }
    match &mut ctx.db(key).dict.get_mut(key)?.value {
        Value::Hash(h) => Some(h),
        _ => None,
    }
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 == 1 {
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        return ctx.out.err(&errors::wrong_args(&name));
    }
    let lim = limits(ctx);
    let key = &args[1];
    let Some(h) = hash_or_create(ctx, key) else {
        return;
    };
    h.try_conversion(args[2..].iter().map(|a| &a[..]), lim);
    let mut created = 0;
    for pair in args[2..].chunks(2) {
        created += h.set(&pair[0], &pair[1], lim) as i64;
    }
    ctx.dirty(key, (args.len() as u64 - 2) / 2);
    ctx.notify(ev::HASH, "hset", key);
    // HMSET replies +OK, HSET the number of new fields.
    if args[0].len() > 1 && args[0][1].eq_ignore_ascii_case(&b's') {
        ctx.out.int(created);
    } else {
        ctx.out.ok();
    }
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) {
    let lim = limits(ctx);
    let key = &args[1];
    let Some(h) = hash_or_create(ctx, key) else {
        return;
    };
    if h.contains(&args[2]) {
        return ctx.out.int(0);
    }
    h.try_conversion([&args[2][..], &args[3][..]], lim);
    h.set(&args[2], &args[3], lim);
    ctx.dirty(key, 1);
    ctx.notify(ev::HASH, "hset", key);
    ctx.out.int(1);
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) {
    with_out(ctx, |ctx, out| match read_hash(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(h) => match h.and_then(|h| h.get(&args[2])) {
            Some(v) => out.bulk(v),
            None => out.null(),
        },
    })
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) {
    with_out(ctx, |ctx, out| match read_hash(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(h) => {
            out.array(args.len() - 2);
            for f in &args[2..] {
                match h.and_then(|h| h.get(f)) {
                    Some(v) => out.bulk(v),
                    None => out.null(),
                }
            }
        }
    })
}

fn hdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (deleted, emptied) = match write_hash(ctx, key) {
        Err(()) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(h)) => {
            let mut n = 0;
            for f in &args[2..] {
                if h.remove(f) {
                    n += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            (n, h.is_empty())
        }
    };
    if deleted > 0 {
        ctx.notify(ev::HASH, "hdel", key);
    }
    if emptied {
        ctx.db(key).remove(key);
        ctx.notify(ev::GENERIC, "del", key);
    }
    if deleted > 0 {
        ctx.dirty(key, deleted);
    }
    ctx.out.int(deleted as i64);
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) {
    let r = read_hash(ctx, &args[1]).map(|h| h.map_or(0, |h| h.len()));
    match r {
        Err(()) => ctx.out.err(errors::WRONGTYPE),
        Ok(n) => ctx.out.int(n as i64),
    }
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) {
    let r =
        read_hash(ctx, &args[1]).map(|h| h.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len()));
    match r {
        Err(()) => ctx.out.err(errors::WRONGTYPE),
        Ok(n) => ctx.out.int(n as i64),
    }
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) {
    let r = read_hash(ctx, &args[1]).map(|h| h.is_some_and(|h| h.contains(&args[2])));
    match r {
        Err(()) => ctx.out.err(errors::WRONGTYPE),
        Ok(b) => ctx.out.int(b as i64),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum What {
    Keys,
    Vals,
    Both,
}

fn getall(ctx: &mut Ctx, args: &[Bytes], what: What) {
    with_out(ctx, |ctx, out| match read_hash(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(None) if what == What::Both => out.map(0),
        Ok(None) => out.array(0),
        Ok(Some(h)) => {
            match what {
                What::Both => out.map(h.len()),
                _ => out.array(h.len()),
            }
            for (f, v) in h.iter() {
                if what != What::Vals {
                    out.bulk(f);
                }
                if what != What::Keys {
                    out.bulk(v);
                }
            }
        }
    })
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, What::Keys)
}

fn hvals(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, What::Vals)
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, What::Both)
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = parse_i64(&args[3]) else {
        return ctx.out.err(errors::NOT_INT);
    };
    let lim = limits(ctx);
    let key = &args[1];
    let Some(h) = hash_or_create(ctx, key) else {
        return;
    };
    let old = match h.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return ctx.out.err("ERR hash value is not an integer"),
        },
    };
    let Some(new) = old.checked_add(incr) else {
        return ctx.out.err(errors::OVERFLOW);
    };
    h.set(&args[2], new.to_string().as_bytes(), lim);
    ctx.dirty(key, 1);
    ctx.notify(ev::HASH, "hincrby", key);
    ctx.out.int(new);
}

/// Why a long double addition failed.
#[derive(Debug, PartialEq)]
enum LdErr {
    /// An operand is not a valid float (Redis's string2ld).
    NotFloat,
    /// The sum is NaN or infinite.
    NanOrInf,
}

/// `cur + incr` in C long double (`cur` None = 0), as INCRBYFLOAT computes
/// it; HINCRBYFLOAT words its errors differently, hence the mapping.
fn ld_add(cur: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, LdErr> {
    super::strings::incr_float(cur, incr).map_err(|e| {
        if e == errors::NOT_FLOAT {
            LdErr::NotFloat
        } else {
            LdErr::NanOrInf
        }
    })
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    // The increment alone (0 + incr) is checked before the key lookup.
    match ld_add(None, &args[3]) {
        Ok(_) => {}
        Err(LdErr::NotFloat) => return ctx.out.err(errors::NOT_FLOAT),
        Err(LdErr::NanOrInf) => return ctx.out.err("ERR value is NaN or Infinity"),
    }
    let lim = limits(ctx);
    let key = &args[1];
    let Some(h) = hash_or_create(ctx, key) else {
        return;
    };
    let new = match ld_add(h.get(&args[2]), &args[3]) {
        Ok(v) => v,
        Err(LdErr::NotFloat) => return ctx.out.err("ERR hash value is not a float"),
        Err(LdErr::NanOrInf) => {
            return ctx.out.err("ERR increment would produce NaN or Infinity");
        }
    };
    h.set(&args[2], &new, lim);
    ctx.dirty(key, 1);
    ctx.notify(ev::HASH, "hincrbyfloat", key);
    ctx.out.bulk(&new);
    // Redis 7: the result as HSET, so replicas need not redo float math.
    crate::replication::propagate(ctx.db, &[b"HSET", &key[..], &args[2][..], &new[..]]);
}

fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() >= 3 {
        let l = match parse_signed_count(&args[2]) {
            Ok(l) => l,
            Err(e) => return ctx.out.err(&e),
        };
        let withvalues = args.len() == 4 && eq_ic(&args[3], "withvalues");
        if args.len() > 4 || (args.len() == 4 && !withvalues) {
            return ctx.out.err(errors::SYNTAX);
        }
        if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return ctx.out.err("ERR value is out of range");
        }
        return with_out(ctx, |ctx, out| match read_hash(ctx, &args[1]) {
            Err(()) => out.err(errors::WRONGTYPE),
            Ok(None) => out.array(0),
            Ok(Some(h)) => randfield_count(out, h, l, withvalues),
        });
    }
    with_out(ctx, |ctx, out| match read_hash(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(h)) => {
            let i = fastrand::usize(..h.len());
            out.bulk(h.get_index(i).unwrap().0);
        }
    })
}

fn randfield_count(out: &mut Out, h: &Hash, l: i64, withvalues: bool) {
    let size = h.len();
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        return out.array(0);
    }
    // RESP3 nests each field/value pair; RESP2 flattens them.
    let header = |out: &mut Out, n: usize| {
        if withvalues && !out.resp3 {
            out.array(n * 2)
        } else {
            out.array(n)
        }
    };
    // Positional access into a listpack is a scan: index it once.
    let packed: Vec<(&[u8], &[u8])> = if h.is_hashtable() {
        Vec::new()
    } else {
        h.iter().collect()
    };
    let pair = |out: &mut Out, i: usize| {
        let (f, v) = packed
            .get(i)
            .copied()
            .unwrap_or_else(|| h.get_index(i).unwrap());
        if withvalues && out.resp3 {
            out.array(2);
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    if l < 0 || count == 1 {
        header(out, count);
        for _ in 0..count {
            pair(out, fastrand::usize(..size));
        }
        return;
    }
    if count >= size {
        header(out, size);
        (0..size).for_each(|i| pair(out, i));
        return;
    }
    header(out, count);
    for i in sample_unique(size, count, !h.is_hashtable()) {
        pair(out, i);
    }
}

fn hscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_scan_cursor(&args[2]) else {
        return ctx.out.err("ERR invalid cursor");
    };
    with_out(ctx, |ctx, out| {
        let h = match read_hash(ctx, &args[1]) {
            Err(()) => return out.err(errors::WRONGTYPE),
            Ok(None) => return empty_scan(out),
            Ok(Some(h)) => h,
        };
        let opts = match parse_scan_opts(&args[3..]) {
            Ok(o) => o,
            Err(e) => return out.err(e),
        };
        let mut found: Vec<usize> = Vec::new();
        let next = if h.is_hashtable() {
            let (next, pos) = scan_step(h.len(), cursor, opts.count);
            found.extend(pos);
            next
        } else {
            // A listpack is small: everything in one call, cursor 0.
            found.extend(0..h.len());
            0
        };
        found.retain(|&i| opts.matches(h.get_index(i).unwrap().0));
        out.array(2);
        out.bulk(next.to_string().as_bytes());
        out.array(found.len() * 2);
        for i in found {
            let (f, v) = h.get_index(i).unwrap();
            out.bulk(f);
            out.bulk(v);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_cursor_like_strtoul() {
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b""), Some(0));
        assert_eq!(parse_scan_cursor(b"+12"), Some(12));
        assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_scan_cursor(b" 1"), None);
        assert_eq!(parse_scan_cursor(b"1 "), None);
        assert_eq!(parse_scan_cursor(b"-"), None);
        assert_eq!(parse_scan_cursor(b"0x1"), None);
        assert_eq!(parse_scan_cursor(b"abc"), None);
    }

    #[test]
    fn scan_options() {
        let a = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        let o = parse_scan_opts(&a(&["MATCH", "f*", "count", "3"])).unwrap();
        assert_eq!(o.count, 3);
        assert!(o.matches(b"foo") && !o.matches(b"bar"));
        assert!(
            parse_scan_opts(&a(&["MATCH", "*"]))
                .unwrap()
                .pattern
                .is_none()
        );
        assert_eq!(
            parse_scan_opts(&a(&["count", "0"])).err(),
            Some(errors::SYNTAX)
        );
        assert_eq!(
            parse_scan_opts(&a(&["count", "x"])).err(),
            Some(errors::NOT_INT)
        );
        assert_eq!(parse_scan_opts(&a(&["count"])).err(), Some(errors::SYNTAX));
        assert_eq!(
            parse_scan_opts(&a(&["type", "x"])).err(),
            Some(errors::SYNTAX)
        );
    }

    #[test]
    fn long_double_adds_like_redis() {
        let add = |c: Option<&str>, i: &str| {
            ld_add(c.map(|c| c.as_bytes()), i.as_bytes()).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(add(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(add(None, "3.0e3").unwrap(), "3000");
        assert_eq!(add(Some("1"), "-1").unwrap(), "0");
        assert_eq!(add(Some("5.0e3"), "2.0e2").unwrap(), "5200");
        assert_eq!(add(None, "abc"), Err(LdErr::NotFloat));
        assert_eq!(add(Some(" 1"), "1"), Err(LdErr::NotFloat));
        assert_eq!(add(None, "inf"), Err(LdErr::NanOrInf));
        assert_eq!(add(Some("1e4932"), "1e4932"), Err(LdErr::NanOrInf));
    }

    #[test]
    fn samples_are_distinct() {
        for (size, count) in [(10, 9), (10, 1), (1000, 5), (5, 5)] {
            for s in [sample_ordered(size, count), sample_sparse(size, count)] {
                assert_eq!(s.len(), count);
                let set: std::collections::HashSet<_> = s.iter().collect();
                assert_eq!(set.len(), count);
                assert!(s.iter().all(|&i| i < size));
            }
            let s = sample_ordered(size, count);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
