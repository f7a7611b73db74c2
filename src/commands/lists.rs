//! List commands (Redis 7.0 t_list.c semantics), blocking variants included.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64, with_out};
use crate::protocol::Out;
use crate::storage::Value;
use crate::storage::list::{End, List, range};

const OUT_OF_RANGE: &str = "ERR index out of range";
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, \
    2 from the second ... or use negative to start from the end of the list";
const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";

pub fn commands() -> Vec<Command> {
    let w = WRITE | DENYOOM | FAST;
    vec![
        cmd("lpush", -3, w, lpush).keys(1, 1, 1),
        cmd("rpush", -3, w, rpush).keys(1, 1, 1),
        cmd("lpushx", -3, w, lpushx).keys(1, 1, 1),
        cmd("rpushx", -3, w, rpushx).keys(1, 1, 1),
        cmd("lpop", -2, WRITE | FAST, lpop).keys(1, 1, 1),
        cmd("rpop", -2, WRITE | FAST, rpop).keys(1, 1, 1),
        cmd("llen", 2, READONLY | FAST, llen).keys(1, 1, 1),
        cmd("lrange", 4, READONLY, lrange).keys(1, 1, 1),
        cmd("lindex", 3, READONLY, lindex).keys(1, 1, 1),
        cmd("lset", 4, WRITE | DENYOOM, lset).keys(1, 1, 1),
        cmd("linsert", 5, WRITE | DENYOOM, linsert).keys(1, 1, 1),
        cmd("lrem", 4, WRITE, lrem).keys(1, 1, 1),
        cmd("ltrim", 4, WRITE, ltrim).keys(1, 1, 1),
        cmd("lpos", -3, READONLY, lpos).keys(1, 1, 1),
        cmd("lmove", 5, WRITE | DENYOOM, lmove).keys(1, 2, 1),
        cmd("rpoplpush", 3, WRITE | DENYOOM, rpoplpush).keys(1, 2, 1),
        cmd("lmpop", -4, WRITE, lmpop).keys(0, 0, 0),
        cmd("blpop", -3, WRITE | NOSCRIPT | BLOCKING, blpop).keys(1, -2, 1),
        cmd("brpop", -3, WRITE | NOSCRIPT | BLOCKING, brpop).keys(1, -2, 1),
        cmd("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, blmove).keys(1, 2, 1),
        cmd(
            "brpoplpush",
            4,
            WRITE | DENYOOM | NOSCRIPT | BLOCKING,
            brpoplpush,
        )
        .keys(1, 2, 1),
        cmd("blmpop", -5, WRITE | BLOCKING, blmpop).keys(0, 0, 0),
    ]
}

// ---------------------------------------------------------------------------
// Helpers

/// Marker for a key holding another type.
struct WrongType;

/// The list at `key` for writing (lazy expiry, no stats).
fn list_mut<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut List>, WrongType> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(WrongType),
        },
    }
}

/// The list at `key` for reading (counts keyspace hits/misses).
fn list_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c List>, WrongType> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(WrongType),
        },
    }
}

/// Redis's getRangeLongFromObjectOrReply: a parse failure and an out of
/// range value give the same message.
fn parse_in(arg: &[u8], min: i64, max: i64) -> Option<i64> {
    parse_i64(arg).filter(|v| (min..=max).contains(v))
}

fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ic(arg, "left") {
        Some(End::Left)
    } else if eq_ic(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// A blocking timeout in seconds (a float) as relative ms, 0 = forever,
/// converted like Redis 7.0's getTimeoutFromObjectOrReply.
pub fn timeout_ms(arg: &[u8]) -> Result<i64, &'static str> {
    let secs = super::parse_long_double(arg).ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = (secs * 1000.0).ceil();
    // Redis casts to long long; out of range values (inf included) become
    // LLONG_MIN on x86-64, hence "negative".
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ms) || ms < 0.0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    Ok(ms as i64)
}

/// Parses a blocking timeout and turns it into an absolute deadline
/// (Some(None) = wait forever). Writes the error and returns None on bad input.
pub fn parse_timeout(ctx: &mut Ctx, arg: &[u8]) -> Option<Option<u64>> {
    match timeout_ms(arg) {
        Ok(0) => Some(None),
        // A deadline past i64 wraps negative in Redis: it expires at once.
        Ok(ms) => Some(Some(
            (ctx.now as i64)
                .checked_add(ms)
                .map_or(ctx.now, |d| d as u64),
        )),
        Err(e) => {
            ctx.out.err(e);
            None
        }
    }
}

fn end_event(end: End, left: &'static str, right: &'static str) -> &'static str {
    if matches!(end, End::Left) {
        left
    } else {
        right
    }
}

/// Deletes `key` when its list became empty (Redis never keeps empty lists).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8], empty: bool) {
    if empty {
        ctx.db(key).remove(key);
        ctx.notify(ev::GENERIC, "del", key);
    }
}

fn write_bulks(out: &mut Out, items: &[Vec<u8>]) {
    out.array(items.len());
    for v in items {
        out.bulk(v);
    }
}

// ---------------------------------------------------------------------------
// Push

fn push_generic(ctx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) {
    let key = &args[1];
    let len = match list_mut(ctx, key) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) if only_existing => return ctx.out.int(0),
        Ok(None) => {
            let mut l = List::new();
            for v in &args[2..] {
                l.push(end, v.to_vec());
            }
            let n = l.len();
            ctx.db(key).set(key, Value::List(Box::new(l)));
            n
        }
        Ok(Some(l)) => {
            for v in &args[2..] {
                l.push(end, v.to_vec());
            }
            l.len()
        }
    };
    ctx.dirty(key, (args.len() - 2) as u64);
    ctx.notify(ev::LIST, end_event(end, "lpush", "rpush"), key);
    ctx.signal_ready(key);
    ctx.out.int(len as i64);
}

fn lpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Right, true)
}

// ---------------------------------------------------------------------------
// Pop

fn pop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) {
    if args.len() > 3 {
        return ctx
            .out
            .err(&errors::wrong_args(&String::from_utf8_lossy(&args[0])));
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_in(a, 0, i64::MAX) {
            Some(n) => Some(n as usize),
            None => return ctx.out.err(MUST_BE_POSITIVE),
        },
    };
    let key = &args[1];
    let (items, empty) = match list_mut(ctx, key) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) if count.is_some() => return ctx.out.null_array(),
        Ok(None) => return ctx.out.null(),
        Ok(Some(_)) if count == Some(0) => return ctx.out.array(0),
        Ok(Some(l)) => (l.pop_n(end, count.unwrap_or(1)), l.is_empty()),
    };
    ctx.notify(ev::LIST, end_event(end, "lpop", "rpop"), key);
    drop_if_empty(ctx, key, empty);
    ctx.dirty(key, items.len() as u64);
    match count {
        None => ctx.out.bulk(&items[0]),
        Some(_) => write_bulks(ctx.out, &items),
    }
}

fn lpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Left)
}

fn rpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Right)
}

// ---------------------------------------------------------------------------
// Reads

fn llen(ctx: &mut Ctx, args: &[Bytes]) {
    match list_read(ctx, &args[1]) {
        Err(WrongType) => ctx.out.err(errors::WRONGTYPE),
        Ok(l) => {
            let n = l.map_or(0, |l| l.len());
            ctx.out.int(n as i64)
        }
    }
}

fn lrange(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(start), Some(stop)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return ctx.out.err(errors::NOT_INT);
    };
    with_out(ctx, |ctx, out| match list_read(ctx, &args[1]) {
        Err(WrongType) => out.err(errors::WRONGTYPE),
        Ok(None) => out.array(0),
        Ok(Some(l)) => match range(start, stop, l.len()) {
            None => out.array(0),
            Some((a, b)) => {
                out.array(b - a + 1);
                for v in l.items.range(a..=b) {
                    out.bulk(v);
                }
            }
        },
    })
}

fn lindex(ctx: &mut Ctx, args: &[Bytes]) {
    // Redis looks the key up before parsing the index.
    with_out(ctx, |ctx, out| match list_read(ctx, &args[1]) {
        Err(WrongType) => out.err(errors::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(l)) => match parse_i64(&args[2]) {
            None => out.err(errors::NOT_INT),
            Some(i) => match l.index(i) {
                Some(v) => out.bulk(v),
                None => out.null(),
            },
        },
    })
}

fn lpos(ctx: &mut Ctx, args: &[Bytes]) {
    let mut rank = 1i64;
    let mut count: Option<u64> = None;
    let mut maxlen = 0u64;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if more && eq_ic(opt, "rank") {
            j += 1;
            match parse_i64(&args[j]) {
                None => return ctx.out.err(errors::NOT_INT),
                Some(0) => return ctx.out.err(RANK_ZERO),
                Some(r) => rank = r,
            }
        } else if more && eq_ic(opt, "count") {
            j += 1;
            match parse_in(&args[j], 0, i64::MAX) {
                None => return ctx.out.err("ERR COUNT can't be negative"),
                Some(c) => count = Some(c as u64),
            }
        } else if more && eq_ic(opt, "maxlen") {
            j += 1;
            match parse_in(&args[j], 0, i64::MAX) {
                None => return ctx.out.err("ERR MAXLEN can't be negative"),
                Some(m) => maxlen = m as u64,
            }
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        j += 1;
    }
    let found = match list_read(ctx, &args[1]) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => Vec::new(),
        Ok(Some(l)) => l.positions(&args[2], rank, count, maxlen),
    };
    if count.is_some() {
        ctx.out.array(found.len());
        for i in found {
            ctx.out.int(i as i64);
        }
    } else {
        match found.first() {
            Some(&i) => ctx.out.int(i as i64),
            None => ctx.out.null(),
        }
    }
}

// ---------------------------------------------------------------------------
// In-place writes

fn lset(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let r = match list_mut(ctx, key) {
        Err(WrongType) => Err(errors::WRONGTYPE),
        Ok(None) => Err(errors::NO_SUCH_KEY),
        Ok(Some(l)) => match parse_i64(&args[2]) {
            None => Err(errors::NOT_INT),
            Some(i) => match l.index_mut(i) {
                None => Err(OUT_OF_RANGE),
                Some(v) => {
                    *v = args[3].to_vec();
                    Ok(())
                }
            },
        },
    };
    match r {
        Ok(()) => {
            ctx.dirty(key, 1);
            ctx.notify(ev::LIST, "lset", key);
            ctx.out.ok()
        }
        Err(e) => ctx.out.err(e),
    }
}

fn linsert(ctx: &mut Ctx, args: &[Bytes]) {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return ctx.out.err(errors::SYNTAX);
    };
    let key = &args[1];
    let len = match list_mut(ctx, key) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => {
            if !l.insert(&args[3], after, args[4].to_vec()) {
                return ctx.out.int(-1);
            }
            l.len()
        }
    };
    ctx.dirty(key, 1);
    ctx.notify(ev::LIST, "linsert", key);
    ctx.signal_ready(key);
    ctx.out.int(len as i64);
}

fn lrem(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(count) = parse_i64(&args[2]) else {
        return ctx.out.err(errors::NOT_INT);
    };
    let key = &args[1];
    let (removed, empty) = match list_mut(ctx, key) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => (l.remove(count, &args[3]), l.is_empty()),
    };
    if removed > 0 {
        ctx.notify(ev::LIST, "lrem", key);
    }
    drop_if_empty(ctx, key, empty);
    ctx.dirty(key, removed as u64);
    ctx.out.int(removed as i64);
}

fn ltrim(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(start), Some(stop)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return ctx.out.err(errors::NOT_INT);
    };
    let key = &args[1];
    let (removed, empty) = match list_mut(ctx, key) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.ok(),
        Ok(Some(l)) => (l.trim(start, stop), l.is_empty()),
    };
    ctx.notify(ev::LIST, "ltrim", key);
    drop_if_empty(ctx, key, empty);
    ctx.dirty(key, removed as u64);
    ctx.out.ok();
}

// ---------------------------------------------------------------------------
// Moves

/// LMOVE once the source is known to exist: pops from `src`, pushes on
/// `dst` (created if missing), replies with the element.
/// Returns true when an element moved.
fn lmove_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> bool {
    match list_mut(ctx, src) {
        Err(WrongType) => {
            ctx.out.err(errors::WRONGTYPE);
            return false;
        }
        // Only lists loaded from very old RDB files can be empty.
        Ok(None) => {
            ctx.out.null();
            return false;
        }
        Ok(Some(l)) if l.is_empty() => {
            ctx.out.null();
            return false;
        }
        Ok(Some(_)) => {}
    }
    let v = if src == dst {
        // Rotation: the key is never emptied, so its TTL stays.
        let Ok(Some(l)) = list_mut(ctx, src) else {
            unreachable!("source checked above")
        };
        let v = l.pop(from).expect("non-empty");
        l.push(to, v.clone());
        ctx.notify(ev::LIST, end_event(to, "lpush", "rpush"), src);
        ctx.notify(ev::LIST, end_event(from, "lpop", "rpop"), src);
        v
    } else {
        if let Err(WrongType) = list_mut(ctx, dst) {
            ctx.out.err(errors::WRONGTYPE);
            return false;
        }
        let Ok(Some(l)) = list_mut(ctx, src) else {
            unreachable!("source checked above")
        };
        let v = l.pop(from).expect("non-empty");
        let empty = l.is_empty();
        match list_mut(ctx, dst) {
            Ok(Some(d)) => d.push(to, v.clone()),
            _ => {
                let mut d = List::new();
                d.push(to, v.clone());
                ctx.db(dst).set(dst, Value::List(Box::new(d)));
            }
        }
        // Stock's order: the push on dst, then the pop (and del) of src.
        ctx.notify(ev::LIST, end_event(to, "lpush", "rpush"), dst);
        ctx.notify(ev::LIST, end_event(from, "lpop", "rpop"), src);
        drop_if_empty(ctx, src, empty);
        v
    };
    ctx.dirty(src, 1);
    ctx.signal_ready(dst);
    ctx.out.bulk(&v);
    true
}

fn lmove(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_end(&args[3]), parse_end(&args[4])) else {
        return ctx.out.err(errors::SYNTAX);
    };
    lmove_generic(ctx, &args[1], &args[2], from, to);
}

fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    lmove_generic(ctx, &args[1], &args[2], End::Right, End::Left);
}

// ---------------------------------------------------------------------------
// Multi-key pops

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]`.
struct MpopArgs {
    first_key: usize,
    numkeys: usize,
    end: End,
    count: usize,
}

/// Parses the LMPOP arguments starting at `numkeys` position `idx`,
/// with Redis's error order. Writes the error on failure.
fn parse_mpop(ctx: &mut Ctx, args: &[Bytes], idx: usize) -> Option<MpopArgs> {
    let Some(numkeys) = parse_in(&args[idx], 1, i64::MAX) else {
        ctx.out.err("ERR numkeys should be greater than 0");
        return None;
    };
    let where_idx = (idx as u64 + 1).saturating_add(numkeys as u64);
    if where_idx >= args.len() as u64 {
        ctx.out.err(errors::SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let Some(end) = parse_end(&args[where_idx]) else {
        ctx.out.err(errors::SYNTAX);
        return None;
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && j + 1 < args.len() && eq_ic(&args[j], "count") {
            j += 1;
            match parse_in(&args[j], 1, i64::MAX) {
                Some(c) => count = Some(c as usize),
                None => {
                    ctx.out.err("ERR count should be greater than 0");
                    return None;
                }
            }
        } else {
            ctx.out.err(errors::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(MpopArgs {
        first_key: idx + 1,
        numkeys: numkeys as usize,
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first non-empty list among `keys`. `count` None is the
/// BLPOP/BRPOP form (`[key, element]`), Some the LMPOP form
/// (`[key, [elements...]]`). Returns false (writing nothing) when every
/// key is missing; a wrong type ends the scan with WRONGTYPE as in Redis.
fn pop_first(ctx: &mut Ctx, keys: &[Bytes], end: End, count: Option<usize>) -> bool {
    for key in keys {
        let (items, empty) = match list_mut(ctx, key) {
            Err(WrongType) => {
                ctx.out.err(errors::WRONGTYPE);
                return true;
            }
            Ok(None) => continue,
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => (l.pop_n(end, count.unwrap_or(1)), l.is_empty()),
        };
        ctx.notify(ev::LIST, end_event(end, "lpop", "rpop"), key);
        drop_if_empty(ctx, key, empty);
        ctx.dirty(key, items.len() as u64);
        // Replicated as Redis 7: LPOP/RPOP key [count] (BLPOP, BLMPOP,
        // LMPOP, and blocked clients served later).
        let name: &[u8] = if matches!(end, End::Left) {
            b"LPOP"
        } else {
            b"RPOP"
        };
        if count.is_none() {
            crate::replication::propagate(ctx.db, &[name, &key[..]]);
        } else {
            let n = items.len().to_string();
            crate::replication::propagate(ctx.db, &[name, &key[..], n.as_bytes()]);
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        match count {
            None => ctx.out.bulk(&items[0]),
            Some(_) => write_bulks(ctx.out, &items),
        }
        return true;
    }
    false
}

fn lmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 1) else {
        return;
    };
    let keys = &args[m.first_key..m.first_key + m.numkeys];
    if !pop_first(ctx, keys, m.end, Some(m.count)) {
        ctx.out.null_array();
    }
}

// ---------------------------------------------------------------------------
// Blocking

/// BLPOP/BRPOP/BLMPOP once arguments are parsed: serve now, reply as a
/// timeout when blocking is not allowed, else block on every key.
fn blocking_pop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    end: End,
    count: Option<usize>,
    deadline: Option<u64>,
) {
    if pop_first(ctx, keys, end, count) {
        return;
    }
    if ctx.no_block {
        return ctx.out.null_array();
    }
    ctx.block_on(keys.to_vec(), deadline);
}

fn bpop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) {
    let Some(deadline) = parse_timeout(ctx, &args[args.len() - 1]) else {
        return;
    };
    blocking_pop(ctx, &args[1..args.len() - 1], end, None, deadline)
}

fn blpop(ctx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(ctx, args, End::Right)
}

fn blmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 2) else {
        return;
    };
    let Some(deadline) = parse_timeout(ctx, &args[1]) else {
        return;
    };
    let keys = &args[m.first_key..m.first_key + m.numkeys];
    blocking_pop(ctx, keys, m.end, Some(m.count), deadline)
}

fn blmove_generic(ctx: &mut Ctx, args: &[Bytes], from: End, to: End, deadline: Option<u64>) {
    let src = &args[1];
    let exists = match list_mut(ctx, src) {
        Err(WrongType) => return ctx.out.err(errors::WRONGTYPE),
        Ok(l) => l.is_some(),
    };
    if exists {
        // Replicated as Redis 7: BLMOVE as LMOVE, BRPOPLPUSH as RPOPLPUSH.
        if lmove_generic(ctx, src, &args[2], from, to) {
            if eq_ic(&args[0], "brpoplpush") {
                crate::replication::propagate(ctx.db, &[b"RPOPLPUSH", &src[..], &args[2][..]]);
            } else {
                let a: Vec<&[u8]> = vec![b"LMOVE", src, &args[2], &args[3], &args[4]];
                crate::replication::propagate(ctx.db, &a);
            }
        }
    } else if ctx.no_block {
        // A null bulk here (MULTI), though a real timeout gets a null array.
        ctx.out.null()
    } else {
        ctx.block_on(vec![src.clone()], deadline)
    }
}

fn blmove(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_end(&args[3]), parse_end(&args[4])) else {
        return ctx.out.err(errors::SYNTAX);
    };
    let Some(deadline) = parse_timeout(ctx, &args[5]) else {
        return;
    };
    blmove_generic(ctx, args, from, to, deadline)
}

fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(deadline) = parse_timeout(ctx, &args[3]) else {
        return;
    };
    blmove_generic(ctx, args, End::Right, End::Left, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(timeout_ms(b"0"), Ok(0));
        assert_eq!(timeout_ms(b"1"), Ok(1000));
        assert_eq!(timeout_ms(b"0.0001"), Ok(1));
        assert_eq!(timeout_ms(b"1.5"), Ok(1500));
        // ceil(-0.1) is -0: Redis blocks forever.
        assert_eq!(timeout_ms(b"-0.0001"), Ok(0));
        assert_eq!(timeout_ms(b"-1"), Err(TIMEOUT_NEGATIVE));
        assert_eq!(timeout_ms(b"inf"), Err(TIMEOUT_NEGATIVE));
        assert_eq!(timeout_ms(b"1e300"), Err(TIMEOUT_NEGATIVE));
        assert_eq!(timeout_ms(b"abc"), Err(TIMEOUT_NOT_FLOAT));
        assert_eq!(timeout_ms(b" 1"), Err(TIMEOUT_NOT_FLOAT));
        assert_eq!(timeout_ms(b"nan"), Err(TIMEOUT_NOT_FLOAT));
    }
}
