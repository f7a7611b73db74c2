//! Sorted-set commands (Redis 7.0 semantics, replies and errors).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::protocol::Out;
use crate::storage::zset::{LexBound, LexRange, Limits, Range, ScoreRange, ZSet};
use crate::storage::{Str, Value};

pub fn commands() -> Vec<Command> {
    vec![
        cmd("zadd", -4, WRITE | DENYOOM | FAST, zadd).keys(1, 1, 1),
        cmd("zincrby", 4, WRITE | DENYOOM | FAST, zincrby).keys(1, 1, 1),
        cmd("zrem", -3, WRITE | FAST, zrem).keys(1, 1, 1),
        cmd("zcard", 2, READONLY | FAST, zcard).keys(1, 1, 1),
        cmd("zcount", 4, READONLY | FAST, zcount).keys(1, 1, 1),
        cmd("zlexcount", 4, READONLY | FAST, zlexcount).keys(1, 1, 1),
        cmd("zscore", 3, READONLY | FAST, zscore).keys(1, 1, 1),
        cmd("zmscore", -3, READONLY | FAST, zmscore).keys(1, 1, 1),
        cmd("zrank", 3, READONLY | FAST, zrank).keys(1, 1, 1),
        cmd("zrevrank", 3, READONLY | FAST, zrevrank).keys(1, 1, 1),
        cmd("zrange", -4, READONLY, zrange).keys(1, 1, 1),
        cmd("zrangestore", -5, WRITE | DENYOOM, zrangestore).keys(1, 2, 1),
        cmd("zrangebyscore", -4, READONLY, zrangebyscore).keys(1, 1, 1),
        cmd("zrevrangebyscore", -4, READONLY, zrevrangebyscore).keys(1, 1, 1),
        cmd("zrangebylex", -4, READONLY, zrangebylex).keys(1, 1, 1),
        cmd("zrevrangebylex", -4, READONLY, zrevrangebylex).keys(1, 1, 1),
        cmd("zrevrange", -4, READONLY, zrevrange).keys(1, 1, 1),
        cmd("zremrangebyrank", 4, WRITE, zremrangebyrank).keys(1, 1, 1),
        cmd("zremrangebyscore", 4, WRITE, zremrangebyscore).keys(1, 1, 1),
        cmd("zremrangebylex", 4, WRITE, zremrangebylex).keys(1, 1, 1),
        cmd("zpopmin", -2, WRITE | FAST, zpopmin).keys(1, 1, 1),
        cmd("zpopmax", -2, WRITE | FAST, zpopmax).keys(1, 1, 1),
        cmd("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, bzpopmin).keys(1, -2, 1),
        cmd("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, bzpopmax).keys(1, -2, 1),
        cmd("zmpop", -4, WRITE, zmpop).keys(0, 0, 0),
        cmd("bzmpop", -5, WRITE | BLOCKING, bzmpop).keys(0, 0, 0),
        cmd("zrandmember", -2, READONLY, zrandmember).keys(1, 1, 1),
        cmd("zunion", -3, READONLY, zunion).keys(0, 0, 0),
        cmd("zinter", -3, READONLY, zinter).keys(0, 0, 0),
        cmd("zdiff", -3, READONLY, zdiff).keys(0, 0, 0),
        cmd("zunionstore", -4, WRITE | DENYOOM, zunionstore).keys(1, 1, 1),
        cmd("zinterstore", -4, WRITE | DENYOOM, zinterstore).keys(1, 1, 1),
        cmd("zdiffstore", -4, WRITE | DENYOOM, zdiffstore).keys(1, 1, 1),
        cmd("zintercard", -3, READONLY, zintercard).keys(0, 0, 0),
        cmd("zscan", -3, READONLY, zscan).keys(1, 1, 1),
    ]
}

// ---------------------------------------------------------------------------
// Plumbing.

/// Handlers write into a detached reply buffer so that they may hold a
/// borrowed value from the keyspace (which borrows `ctx`) while replying.
fn with_out(ctx: &mut Ctx, a: &[Bytes], f: fn(&mut Ctx, &mut Out, &[Bytes])) {
    super::with_out(ctx, |ctx, o| f(ctx, o, a))
}

macro_rules! handlers {
    ($($name:ident => $imp:expr),* $(,)?) => {
        $(fn $name(ctx: &mut Ctx, a: &[Bytes]) { with_out(ctx, a, $imp) })*
    };
}

handlers! {
    zadd => |c, o, a| zadd_generic(c, o, a, false),
    zincrby => |c, o, a| zadd_generic(c, o, a, true),
    zrem => zrem_impl,
    zcard => zcard_impl,
    zcount => zcount_impl,
    zlexcount => zlexcount_impl,
    zscore => zscore_impl,
    zmscore => zmscore_impl,
    zrank => |c, o, a| zrank_generic(c, o, a, false),
    zrevrank => |c, o, a| zrank_generic(c, o, a, true),
    zrange => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Auto, Dir::Auto),
    zrangestore => |c, o, a| zrange_generic(c, o, a, 2, true, RangeType::Auto, Dir::Auto),
    zrangebyscore => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Score, Dir::Fwd),
    zrevrangebyscore => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Score, Dir::Rev),
    zrangebylex => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Lex, Dir::Fwd),
    zrevrangebylex => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Lex, Dir::Rev),
    zrevrange => |c, o, a| zrange_generic(c, o, a, 1, false, RangeType::Rank, Dir::Rev),
    zremrangebyrank => |c, o, a| zremrange_generic(c, o, a, RangeType::Rank),
    zremrangebyscore => |c, o, a| zremrange_generic(c, o, a, RangeType::Score),
    zremrangebylex => |c, o, a| zremrange_generic(c, o, a, RangeType::Lex),
    zpopmin => |c, o, a| zpop_minmax(c, o, a, false),
    zpopmax => |c, o, a| zpop_minmax(c, o, a, true),
    bzpopmin => |c, o, a| bzpop(c, o, a, false),
    bzpopmax => |c, o, a| bzpop(c, o, a, true),
    zmpop => |c, o, a| zmpop_generic(c, o, a, 1, false),
    bzmpop => |c, o, a| zmpop_generic(c, o, a, 2, true),
    zrandmember => zrandmember_impl,
    zunion => |c, o, a| setop(c, o, a, false, 1, Op::Union, false),
    zinter => |c, o, a| setop(c, o, a, false, 1, Op::Inter, false),
    zdiff => |c, o, a| setop(c, o, a, false, 1, Op::Diff, false),
    zintercard => |c, o, a| setop(c, o, a, false, 1, Op::Inter, true),
    zunionstore => |c, o, a| setop(c, o, a, true, 2, Op::Union, false),
    zinterstore => |c, o, a| setop(c, o, a, true, 2, Op::Inter, false),
    zdiffstore => |c, o, a| setop(c, o, a, true, 2, Op::Diff, false),
    zscan => zscan_impl,
}

pub(crate) fn limits(ctx: &Ctx) -> Limits {
    let e = &ctx.srv.encoding;
    Limits {
        entries: e.zset_max_listpack_entries.load(Ordering::Relaxed) as usize,
        value: e.zset_max_listpack_value.load(Ordering::Relaxed) as usize,
    }
}

/// Looks a zset up for reading: Ok(None) if missing, Err(()) if another type.
pub(crate) fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c ZSet>, ()> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(()),
        },
    }
}

/// Looks a zset up for writing: Ok(None) if missing, Err(()) if another type.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut ZSet>, ()> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(()),
        },
    }
}

/// Deletes `key` if the command emptied its zset (Redis never keeps empty ones).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db(key);
    if matches!(db.dict.get(key), Some(e) if matches!(&e.value, Value::ZSet(z) if z.is_empty())) {
        db.remove(key);
        ctx.notify(ev::GENERIC, "del", key);
    }
}

/// Stores `z` at `dst` (SET semantics: replaces any value, clears the TTL),
/// or deletes `dst` when `z` is empty. Returns 1 when the keyspace changed.
fn store_result(ctx: &mut Ctx, dst: &[u8], z: ZSet, event: &'static str) -> u64 {
    let now = ctx.now;
    if z.is_empty() {
        let db = ctx.db(dst);
        if db.get_mut(dst, now).is_some() {
            db.remove(dst);
            ctx.notify(ev::GENERIC, "del", dst);
            return 1;
        }
        return 0;
    }
    let _ = ctx.lookup_write(dst);
    ctx.db(dst).set(dst, Value::ZSet(z));
    ctx.notify(ev::ZSET, event, dst);
    ctx.signal_ready(dst);
    1
}

// ---------------------------------------------------------------------------
// Argument parsing, following Redis's C parsing functions.

/// strtod on a NUL-terminated copy: (value, bytes consumed).
fn c_strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let start = buf.as_ptr() as *const libc::c_char;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; errno is
    // thread-local.
    let (v, erange) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtod(start, &mut end);
        (v, *libc::__errno_location() == libc::ERANGE)
    };
    (v, end as usize - start as usize, erange)
}

fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Redis's string2d (scores, weights, increments).
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() || c_isspace(s[0]) {
        return None;
    }
    let (v, n, erange) = c_strtod(s);
    if n != s.len() || (erange && (v.is_infinite() || v == 0.0)) || v.is_nan() {
        return None;
    }
    Some(v)
}

/// One end of a score range (zslParseRange: "(" prefix, plain strtod).
fn parse_range_item(s: &[u8]) -> Option<(f64, bool)> {
    let (body, ex) = match s.first() {
        Some(b'(') => (&s[1..], true),
        _ => (s, false),
    };
    let (v, n, _) = c_strtod(body);
    // strtod stops at an embedded NUL, which Redis takes as the end.
    if (n < body.len() && body[n] != 0) || v.is_nan() {
        return None;
    }
    Some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_range_item(min)?;
    let (max, maxex) = parse_range_item(max)?;
    Some(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

fn parse_lex_item(s: &[u8]) -> Option<LexBound> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Str(s[1..].to_vec(), true)),
        b'[' => Some(LexBound::Str(s[1..].to_vec(), false)),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    Some(LexRange {
        min: parse_lex_item(min)?,
        max: parse_lex_item(max)?,
    })
}

const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";

/// getRangeLongFromObjectOrReply with a custom message (used for both
/// "not an integer" and "out of range").
fn range_long(s: &[u8], min: i64, max: i64, msg: &str, o: &mut Out) -> Option<i64> {
    match parse_i64(s) {
        Some(v) if v >= min && v <= max => Some(v),
        _ => {
            o.err(msg);
            None
        }
    }
}

/// Blocking timeout in seconds → absolute deadline (None = forever).
fn parse_timeout(s: &[u8], now: u64, o: &mut Out) -> Result<Option<u64>, ()> {
    let Some(t) = parse_score(s) else {
        o.err("ERR timeout is not a float or out of range");
        return Err(());
    };
    let ms = (t * 1000.0).ceil();
    // A C cast of inf/huge values yields LLONG_MIN on x86: "negative".
    let ms = if (-9.2e18..9.2e18).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    };
    if ms < 0 {
        o.err("ERR timeout is negative");
        return Err(());
    }
    Ok(if ms > 0 { Some(now + ms as u64) } else { None })
}

/// Writes a (member, score) element of a range/pop reply.
#[inline]
fn emit(o: &mut Out, m: &[u8], s: f64, withscores: bool) {
    if withscores && o.resp3 {
        o.array(2);
    }
    o.bulk(m);
    if withscores {
        o.double(s);
    }
}

/// Array header for `n` elements, flat in RESP2 with scores.
fn range_header(o: &mut Out, n: usize, withscores: bool) {
    o.array(if withscores && !o.resp3 { n * 2 } else { n });
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY

fn zadd_generic(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], mut incr: bool) {
    let key = &a[1];
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut i = 2;
    while i < a.len() {
        let opt = &a[i];
        if eq_ic(opt, "nx") {
            nx = true;
        } else if eq_ic(opt, "xx") {
            xx = true;
        } else if eq_ic(opt, "ch") {
            ch = true;
        } else if eq_ic(opt, "incr") {
            incr = true;
        } else if eq_ic(opt, "gt") {
            gt = true;
        } else if eq_ic(opt, "lt") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let n = a.len() - i;
    if !n.is_multiple_of(2) || n == 0 {
        return o.err(errors::SYNTAX);
    }
    let n = n / 2;
    if nx && xx {
        return o.err("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return o.err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && n > 1 {
        return o.err("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(n);
    for j in 0..n {
        match parse_score(&a[i + 2 * j]) {
            Some(s) => scores.push(s),
            None => return o.err(errors::NOT_FLOAT),
        }
    }
    let lim = limits(ctx);
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut score = 0.0;
    let mut nan = false;
    let mut apply = |z: &mut ZSet| {
        for (j, &s0) in scores.iter().enumerate() {
            let m = &a[i + 2 * j + 1];
            match z.score(m) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let mut s = s0;
                    if incr {
                        s += cur;
                        if s.is_nan() {
                            nan = true;
                            return;
                        }
                    }
                    if (lt && s >= cur) || (gt && s <= cur) {
                        continue;
                    }
                    score = s;
                    processed += 1;
                    if s != cur {
                        z.update(m, cur, s);
                        updated += 1;
                    }
                }
                None if !xx => {
                    z.insert_new(m, s0, lim);
                    score = s0;
                    added += 1;
                    processed += 1;
                }
                None => {}
            }
        }
    };
    match write(ctx, key) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(Some(z)) => apply(z),
        Ok(None) if xx => {}
        Ok(None) => {
            let mut z = ZSet::new();
            apply(&mut z);
            if !z.is_empty() {
                ctx.db(key).set(key, Value::ZSet(z));
            }
        }
    }
    if nan {
        return o.err("ERR resulting score is not a number (NaN)");
    }
    if added + updated > 0 {
        ctx.dirty(key, added + updated);
        ctx.notify(ev::ZSET, if incr { "zincr" } else { "zadd" }, key);
        ctx.signal_ready(key);
    }
    if incr {
        if processed > 0 {
            o.double(score);
        } else {
            o.null();
        }
    } else {
        o.int((if ch { added + updated } else { added }) as i64);
    }
}

// ---------------------------------------------------------------------------
// Simple reads and ZREM

fn zrem_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let key = &a[1];
    let z = match write(ctx, key) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(None) => return o.int(0),
        Ok(Some(z)) => z,
    };
    let mut deleted = 0;
    for m in &a[2..] {
        if z.remove(m).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if deleted > 0 {
        ctx.notify(ev::ZSET, "zrem", key);
    }
    drop_if_empty(ctx, key);
    if deleted > 0 {
        ctx.dirty(key, deleted);
    }
    o.int(deleted as i64);
}

fn zcard_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(None) => o.int(0),
        Ok(Some(z)) => o.int(z.len() as i64),
    }
}

fn zcount_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let Some(r) = parse_score_range(&a[2], &a[3]) else {
        return o.err(ERR_MINMAX_FLOAT);
    };
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(None) => o.int(0),
        Ok(Some(z)) => o.int(z.count_in_range(&r) as i64),
    }
}

fn zlexcount_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let Some(r) = parse_lex_range(&a[2], &a[3]) else {
        return o.err(ERR_MINMAX_LEX);
    };
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(None) => o.int(0),
        Ok(Some(z)) => o.int(z.count_in_range(&r) as i64),
    }
}

fn zscore_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(z) => match z.and_then(|z| z.score(&a[2])) {
            Some(s) => o.double(s),
            None => o.null(),
        },
    }
}

fn zmscore_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(z) => {
            o.array(a.len() - 2);
            for m in &a[2..] {
                match z.and_then(|z| z.score(m)) {
                    Some(s) => o.double(s),
                    None => o.null(),
                }
            }
        }
    }
}

fn zrank_generic(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], rev: bool) {
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(None) => o.null(),
        Ok(Some(z)) => match z.rank(&a[2]) {
            Some(r) if rev => o.int((z.len() - 1 - r) as i64),
            Some(r) => o.int(r as i64),
            None => o.null(),
        },
    }
}

// ---------------------------------------------------------------------------
// ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

/// Normalises ZRANGE-style indexes: the inclusive rank interval, or None
/// when empty.
pub fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// The elements of a score/lex range with LIMIT applied (Redis's walk:
/// first/last in range, skip `offset` unchecked, then take while in range).
fn walk_range<'z, R: Range>(
    z: &'z ZSet,
    r: &R,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    if (offset > 0 && offset as u64 >= z.len() as u64) || offset < 0 {
        // A negative offset makes Redis's skip loop run off the end.
        return Vec::new();
    }
    let start = if rev {
        z.last_in_range(r)
            .and_then(|i| i.checked_sub(offset as usize))
    } else {
        z.first_in_range(r)
            .map(|i| i + offset as usize)
            .filter(|&i| i < z.len())
    };
    let Some(start) = start else {
        return Vec::new();
    };
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    z.iter_from(start, rev)
        .take(take)
        .take_while(|(m, s)| {
            if rev {
                r.gte_min(*s, m)
            } else {
                r.lte_max(*s, m)
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn zrange_generic(
    ctx: &mut Ctx,
    o: &mut Out,
    a: &[Bytes],
    first: usize,
    store: bool,
    mut rtype: RangeType,
    mut dir: Dir,
) {
    let key = &a[first];
    let (mut minidx, mut maxidx) = (first + 1, first + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = first + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let arg = &a[j];
        if !store && eq_ic(arg, "withscores") {
            withscores = true;
        } else if eq_ic(arg, "limit") && left >= 2 {
            match (parse_i64(&a[j + 1]), parse_i64(&a[j + 2])) {
                (Some(off), Some(lim)) => {
                    offset = off;
                    limit = lim;
                }
                _ => return o.err(errors::NOT_INT),
            }
            j += 2;
        } else if dir == Dir::Auto && eq_ic(arg, "rev") {
            dir = Dir::Rev;
        } else if rtype == RangeType::Auto && eq_ic(arg, "bylex") {
            rtype = RangeType::Lex;
        } else if rtype == RangeType::Auto && eq_ic(arg, "byscore") {
            rtype = RangeType::Score;
        } else {
            return o.err(errors::SYNTAX);
        }
        j += 1;
    }
    if dir == Dir::Auto {
        dir = Dir::Fwd;
    }
    if rtype == RangeType::Auto {
        rtype = RangeType::Rank;
    }
    if limit != -1 && rtype == RangeType::Rank {
        return o.err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && rtype == RangeType::Lex {
        return o.err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let rev = dir == Dir::Rev;
    if rev && rtype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match rtype {
        RangeType::Score => match parse_score_range(&a[minidx], &a[maxidx]) {
            Some(r) => Parsed::Score(r),
            None => return o.err(ERR_MINMAX_FLOAT),
        },
        RangeType::Lex => match parse_lex_range(&a[minidx], &a[maxidx]) {
            Some(r) => Parsed::Lex(r),
            None => return o.err(ERR_MINMAX_LEX),
        },
        _ => match (parse_i64(&a[minidx]), parse_i64(&a[maxidx])) {
            (Some(s), Some(e)) => Parsed::Rank(s, e),
            _ => return o.err(errors::NOT_INT),
        },
    };
    let lim = if store { Some(limits(ctx)) } else { None };
    let result: Option<ZSet> = {
        let z = match read(ctx, key) {
            Err(()) => return o.err(errors::WRONGTYPE),
            Ok(None) if store => None,
            Ok(None) => return o.array(0),
            Ok(Some(z)) => Some(z),
        };
        let mut rank_len = None;
        let items: Vec<(&[u8], f64)> = match (z, &parsed) {
            (None, _) => Vec::new(),
            (Some(z), Parsed::Rank(s, e)) => match rank_range(*s, *e, z.len()) {
                None => Vec::new(),
                Some((s, e)) => {
                    rank_len = Some(e - s + 1);
                    let from = if rev { z.len() - 1 - s } else { s };
                    z.iter_from(from, rev).take(e - s + 1).collect()
                }
            },
            (Some(z), Parsed::Score(r)) => walk_range(z, r, rev, offset, limit),
            (Some(z), Parsed::Lex(r)) => walk_range(z, r, rev, offset, limit),
        };
        match lim {
            None => {
                range_header(o, items.len(), withscores);
                for (m, s) in items {
                    emit(o, m, s, withscores);
                }
                None
            }
            Some(lim) => {
                // As Redis: a skiplist up front only when a rank range is
                // known to exceed the listpack limit; else converted on insert.
                let mut dst = match rank_len {
                    Some(n) if n > lim.entries => ZSet::new_skiplist(),
                    _ => ZSet::new(),
                };
                for (m, s) in items {
                    dst.insert_new(m, s, lim);
                }
                Some(dst)
            }
        }
    };
    if let Some(dst) = result {
        let n = dst.len();
        let dkey = &a[1];
        let changed = store_result(ctx, dkey, dst, "zrangestore");
        ctx.dirty(dkey, changed);
        o.int(n as i64);
    }
}

fn zremrange_generic(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], t: RangeType) {
    let key = &a[1];
    enum P {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let p = match t {
        RangeType::Rank => match (parse_i64(&a[2]), parse_i64(&a[3])) {
            (Some(s), Some(e)) => P::Rank(s, e),
            _ => return o.err(errors::NOT_INT),
        },
        RangeType::Score => match parse_score_range(&a[2], &a[3]) {
            Some(r) => P::Score(r),
            None => return o.err(ERR_MINMAX_FLOAT),
        },
        _ => match parse_lex_range(&a[2], &a[3]) {
            Some(r) => P::Lex(r),
            None => return o.err(ERR_MINMAX_LEX),
        },
    };
    let z = match write(ctx, key) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(None) => return o.int(0),
        Ok(Some(z)) => z,
    };
    let deleted = match p {
        P::Rank(s, e) => match rank_range(s, e, z.len()) {
            None => return o.int(0),
            Some((s, e)) => z.remove_ranks(s, e),
        },
        P::Score(r) => z.remove_range(&r),
        P::Lex(r) => z.remove_range(&r),
    };
    if deleted > 0 {
        let event = match t {
            RangeType::Rank => "zremrangebyrank",
            RangeType::Score => "zremrangebyscore",
            _ => "zremrangebylex",
        };
        ctx.notify(ev::ZSET, event, key);
    }
    drop_if_empty(ctx, key);
    ctx.dirty(key, deleted as u64);
    o.int(deleted as i64);
}

// ---------------------------------------------------------------------------
// Pops

/// Redis's genericZpopCommand. `count` -1 = plain single pop. Returns Err
/// after replying WRONGTYPE, Ok(false) when every key was missing.
#[allow(clippy::too_many_arguments)]
fn generic_pop(
    ctx: &mut Ctx,
    o: &mut Out,
    keys: &[Bytes],
    max: bool,
    emitkey: bool,
    count: i64,
    nested: bool,
    nil_when_empty: bool,
) -> Result<bool, ()> {
    let mut found = None;
    for k in keys {
        match write(ctx, k) {
            Err(()) => {
                o.err(errors::WRONGTYPE);
                return Err(());
            }
            Ok(None) => continue,
            Ok(Some(_)) => {
                found = Some(k);
                break;
            }
        }
    }
    let Some(key) = found else {
        if nil_when_empty {
            o.null_array();
        } else {
            o.array(0);
        }
        return Ok(false);
    };
    if count == 0 {
        o.array(0);
        return Ok(true);
    }
    let single = count == -1;
    let count = if single { 1 } else { count as u64 };
    let Ok(Some(z)) = write(ctx, key) else {
        unreachable!()
    };
    let n = (z.len() as u64).min(count) as usize;
    match (nested, emitkey) {
        (false, false) => o.array(n * 2),
        (true, false) => o.array(n),
        (false, true) => {
            o.array(n * 2 + 1);
            o.bulk(key);
        }
        (true, true) => {
            o.array(2);
            o.bulk(key);
            o.array(n);
        }
    }
    for _ in 0..n {
        let (m, s) = z.pop(max).expect("n <= len");
        if nested {
            o.array(2);
        }
        o.bulk(&m);
        o.double(s);
    }
    if n > 0 {
        ctx.notify(ev::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    drop_if_empty(ctx, key);
    ctx.dirty(key, n as u64);
    // Replicated as Redis 7: ZPOPMIN/ZPOPMAX key [count], whatever the
    // form (ZMPOP, BZPOPMIN, BZMPOP, or a blocked client served later).
    let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    if single {
        crate::replication::propagate(ctx.db, &[name, &key[..]]);
    } else {
        let n = n.to_string();
        crate::replication::propagate(ctx.db, &[name, &key[..], n.as_bytes()]);
    }
    Ok(true)
}

fn zpop_minmax(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], max: bool) {
    if a.len() > 3 {
        return o.err(errors::SYNTAX);
    }
    let mut count = -1;
    if a.len() == 3 {
        match range_long(
            &a[2],
            0,
            i64::MAX,
            "ERR value is out of range, must be positive",
            o,
        ) {
            Some(c) => count = c,
            None => return,
        }
    }
    let nested = o.resp3 && count != -1;
    let _ = generic_pop(ctx, o, &a[1..2], max, false, count, nested, false);
}

/// Shared tail of BZPOPMIN/BZPOPMAX/BZMPOP: pop from the first non-empty
/// key, else block (or reply null when blocking is not allowed).
#[allow(clippy::too_many_arguments)]
fn blocking_pop(
    ctx: &mut Ctx,
    o: &mut Out,
    keys: &[Bytes],
    timeout: &[u8],
    max: bool,
    count: i64,
    nested: bool,
    nil_when_empty: bool,
) {
    let Ok(deadline) = parse_timeout(timeout, ctx.now, o) else {
        return;
    };
    for k in keys {
        match read_len(ctx, k) {
            Err(()) => return o.err(errors::WRONGTYPE),
            Ok(0) => continue,
            Ok(_) => {
                let _ = generic_pop(
                    ctx,
                    o,
                    std::slice::from_ref(k),
                    max,
                    true,
                    count,
                    nested,
                    nil_when_empty,
                );
                return;
            }
        }
    }
    if ctx.no_block {
        return o.null_array();
    }
    ctx.block_on(keys.to_vec(), deadline);
}

/// Length of the zset at `key` for a write lookup (0 if missing).
fn read_len(ctx: &mut Ctx, key: &[u8]) -> Result<usize, ()> {
    Ok(write(ctx, key)?.map_or(0, |z| z.len()))
}

fn bzpop(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], max: bool) {
    let n = a.len();
    blocking_pop(ctx, o, &a[1..n - 1], &a[n - 1], max, -1, false, false);
}

fn zmpop_generic(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], nk_idx: usize, block: bool) {
    let Some(numkeys) = range_long(
        &a[nk_idx],
        1,
        i64::MAX,
        "ERR numkeys should be greater than 0",
        o,
    ) else {
        return;
    };
    let where_idx = match (nk_idx as u64 + 1).checked_add(numkeys as u64) {
        Some(w) if w < a.len() as u64 => w as usize,
        _ => return o.err(errors::SYNTAX),
    };
    let max = if eq_ic(&a[where_idx], "min") {
        false
    } else if eq_ic(&a[where_idx], "max") {
        true
    } else {
        return o.err(errors::SYNTAX);
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if count == -1 && eq_ic(&a[j], "count") && more > 0 {
            j += 1;
            match range_long(&a[j], 1, i64::MAX, "ERR count should be greater than 0", o) {
                Some(c) => count = c,
                None => return,
            }
        } else {
            return o.err(errors::SYNTAX);
        }
        j += 1;
    }
    if count == -1 {
        count = 1;
    }
    let keys = &a[nk_idx + 1..where_idx];
    if block {
        blocking_pop(ctx, o, keys, &a[1], max, count, true, true);
    } else {
        let _ = generic_pop(ctx, o, keys, max, true, count, true, true);
    }
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER

fn zrandmember_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    if a.len() >= 3 {
        let Some(l) = parse_i64(&a[2]) else {
            return o.err(errors::NOT_INT);
        };
        if l == i64::MIN {
            return o.err(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        let withscores = if a.len() > 4 || (a.len() == 4 && !eq_ic(&a[3], "withscores")) {
            return o.err(errors::SYNTAX);
        } else {
            a.len() == 4
        };
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return o.err("ERR value is out of range");
        }
        return match read(ctx, &a[1]) {
            Err(()) => o.err(errors::WRONGTYPE),
            Ok(None) => o.array(0),
            Ok(Some(z)) => randmember_count(o, z, l, withscores),
        };
    }
    match read(ctx, &a[1]) {
        Err(()) => o.err(errors::WRONGTYPE),
        Ok(None) => o.null(),
        Ok(Some(z)) => o.bulk(z.get(fastrand::usize(..z.len())).0),
    }
}

fn randmember_count(o: &mut Out, z: &ZSet, l: i64, withscores: bool) {
    let size = z.len();
    let count = l.unsigned_abs();
    if count == 0 {
        return o.array(0);
    }
    // A packed set finds a rank by scanning: index it once for many draws.
    let packed: Vec<(&[u8], f64)> = if z.is_listpack() && count > 1 {
        z.iter().collect()
    } else {
        Vec::new()
    };
    let at = |r: usize| {
        if packed.is_empty() {
            z.get(r)
        } else {
            packed[r]
        }
    };
    // Negative count: independent draws, repeats allowed.
    if l < 0 || count == 1 {
        range_header(o, count as usize, withscores);
        for _ in 0..count {
            let (m, s) = at(fastrand::usize(..size));
            emit(o, m, s, withscores);
        }
        return;
    }
    let count = count.min(size as u64) as usize;
    range_header(o, count, withscores);
    if count == size {
        // The whole set, highest first (Redis's zuiNext order).
        for (m, s) in z.iter_from(size - 1, true) {
            emit(o, m, s, withscores);
        }
        return;
    }
    // Distinct ranks: a partial shuffle when the request is a large share of
    // the set, else rejection sampling (as Redis's CASE 3 / CASE 4).
    if count * 3 > size {
        let mut ranks: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = fastrand::usize(i..size);
            ranks.swap(i, j);
        }
        for &r in &ranks[..count] {
            let (m, s) = at(r);
            emit(o, m, s, withscores);
        }
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        while seen.len() < count {
            let r = fastrand::usize(..size);
            if seen.insert(r) {
                let (m, s) = at(r);
                emit(o, m, s, withscores);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF (+STORE) / ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's zunionInterAggregate: a sum of +inf and -inf is 0.
pub fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// weight * score, with NaN (0 * inf) taken as 0.
fn weighted(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() { 0.0 } else { v }
}

/// An input of a set operation: a sorted set, or a plain set whose members
/// count with score 1.
#[derive(Clone, Copy)]
enum Src<'v> {
    Missing,
    Z(&'v ZSet),
    S(&'v crate::storage::set::Set),
}

impl<'v> Src<'v> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => set_len(s),
        }
    }

    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => set_contains(s, m).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&'v [u8], f64) -> bool) {
        match *self {
            Src::Missing => {}
            Src::Z(z) => {
                // Redis walks sorted sets from the top (zuiInitIterator).
                for (m, s) in z.iter_from(z.len().wrapping_sub(1), true) {
                    if !f(m, s) {
                        return;
                    }
                }
            }
            Src::S(s) => {
                for m in set_members(s) {
                    if !f(m, 1.0) {
                        return;
                    }
                }
            }
        }
    }
}

fn set_len(s: &crate::storage::set::Set) -> usize {
    s.len()
}
fn set_contains(s: &crate::storage::set::Set, m: &[u8]) -> bool {
    s.contains(m)
}
fn set_members(s: &crate::storage::set::Set) -> impl Iterator<Item = &[u8]> {
    s.iter()
}

/// Outcome of a set operation: sorted (member, score) pairs or a count.
pub enum SetOpResult<'v> {
    Items(Vec<(&'v [u8], f64)>),
    Card(u64),
}

/// Union, intersection or difference over `srcs` (in argument order, with
/// weights), as Redis computes it; `same[i]` is the index of the first
/// source that is the same key as source i (ZDIFF's "same set" shortcut).
fn compute_setop<'v>(
    srcs: &[(Src<'v>, f64, usize)],
    op: Op,
    agg: Aggregate,
    card_only: bool,
    card_limit: u64,
) -> SetOpResult<'v> {
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    if op != Op::Diff {
        // Smallest first, stable like glibc's merge-sort qsort.
        order.sort_by_key(|&i| srcs[i].0.len());
    }
    let s = |k: usize| &srcs[order[k]];
    let mut out: Vec<(&'v [u8], f64)> = Vec::new();
    let mut card = 0u64;
    match op {
        Op::Inter => {
            if s(0).0.len() > 0 {
                s(0).0.for_each(|m, sc| {
                    let mut score = weighted(s(0).1, sc);
                    for k in 1..srcs.len() {
                        match s(k).0.find(m) {
                            Some(v) => aggregate(&mut score, v * s(k).1, agg),
                            None => return true,
                        }
                    }
                    if card_only {
                        card += 1;
                        return !(card_limit > 0 && card >= card_limit);
                    }
                    out.push((m, score));
                    true
                });
            }
        }
        Op::Union => {
            let mut acc: HashMap<&'v [u8], f64> = HashMap::new();
            for k in 0..srcs.len() {
                let (src, w, _) = *s(k);
                src.for_each(|m, sc| {
                    let v = weighted(w, sc);
                    acc.entry(m)
                        .and_modify(|t| aggregate(t, v, agg))
                        .or_insert(v);
                    true
                });
            }
            out = acc.into_iter().collect();
        }
        Op::Diff => {
            let first = srcs[0].2;
            if srcs[0].0.len() > 0 && !srcs[1..].iter().any(|x| x.2 == first) {
                srcs[0].0.for_each(|m, sc| {
                    if !srcs[1..].iter().any(|x| x.0.find(m).is_some()) {
                        out.push((m, sc));
                    }
                    true
                });
            }
        }
    }
    if card_only {
        return SetOpResult::Card(card);
    }
    out.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(b.0)));
    SetOpResult::Items(out)
}

fn setop(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], store: bool, nk: usize, op: Op, card: bool) {
    let Some(n) = parse_i64(&a[nk]) else {
        return o.err(errors::NOT_INT);
    };
    if n < 1 {
        let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
        return o.err(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if n as u64 > (a.len() - nk - 1) as u64 {
        return o.err(errors::SYNTAX);
    }
    let n = n as usize;
    let keys = &a[nk + 1..nk + 1 + n];
    // Type checks come before option parsing, as in Redis.
    for k in keys {
        if let Some(e) = ctx.lookup_read(k)
            && !matches!(e.value, Value::ZSet(_) | Value::Set(_))
        {
            return o.err(errors::WRONGTYPE);
        }
    }
    let mut weights = vec![1.0f64; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0u64;
    let mut j = nk + 1 + n;
    while j < a.len() {
        let rem = a.len() - j;
        if op != Op::Diff && !card && rem > n && eq_ic(&a[j], "weights") {
            j += 1;
            for w in weights.iter_mut() {
                match parse_score(&a[j]) {
                    Some(v) => *w = v,
                    None => return o.err("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != Op::Diff && !card && rem >= 2 && eq_ic(&a[j], "aggregate") {
            let v = &a[j + 1];
            agg = if eq_ic(v, "sum") {
                Aggregate::Sum
            } else if eq_ic(v, "min") {
                Aggregate::Min
            } else if eq_ic(v, "max") {
                Aggregate::Max
            } else {
                return o.err(errors::SYNTAX);
            };
            j += 2;
        } else if !store && !card && eq_ic(&a[j], "withscores") {
            withscores = true;
            j += 1;
        } else if card && rem >= 2 && eq_ic(&a[j], "limit") {
            match range_long(&a[j + 1], 0, i64::MAX, "ERR LIMIT can't be negative", o) {
                Some(l) => limit = l as u64,
                None => return,
            }
            j += 2;
        } else {
            return o.err(errors::SYNTAX);
        }
    }

    // Move the inputs out of the keyspace so they can be read together
    // (they may live on several shards); they go back right after.
    let mut uniq: Vec<&Bytes> = Vec::new();
    let mut idx = Vec::with_capacity(n);
    for k in keys {
        let i = uniq.iter().position(|u| *u == k).unwrap_or_else(|| {
            uniq.push(k);
            uniq.len() - 1
        });
        idx.push(i);
    }
    let now = ctx.now;
    let mut vals: Vec<Option<Value>> = uniq
        .iter()
        .map(|k| {
            ctx.db(k)
                .get_mut(k, now)
                .map(|e| std::mem::replace(&mut e.value, Value::Str(Str::new())))
        })
        .collect();
    let lim = limits(ctx);
    let stored: Option<ZSet> = {
        let srcs: Vec<(Src, f64, usize)> = idx
            .iter()
            .zip(&weights)
            .map(|(&i, &w)| {
                let src = match &vals[i] {
                    Some(Value::ZSet(z)) => Src::Z(z),
                    Some(Value::Set(s)) => Src::S(s),
                    _ => Src::Missing,
                };
                (src, w, i)
            })
            .collect();
        match compute_setop(&srcs, op, agg, card, limit) {
            SetOpResult::Card(c) => {
                o.int(c as i64);
                None
            }
            SetOpResult::Items(items) if store => {
                let listpack =
                    items.len() <= lim.entries && items.iter().all(|(m, _)| m.len() <= lim.value);
                let owned = items.into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                Some(ZSet::from_sorted(owned, listpack))
            }
            SetOpResult::Items(items) => {
                range_header(o, items.len(), withscores);
                for (m, s) in items {
                    emit(o, m, s, withscores);
                }
                None
            }
        }
    };
    for (k, v) in uniq.iter().zip(vals.iter_mut()) {
        if let Some(v) = v.take()
            && let Some(e) = ctx.db(k).dict.get_mut(&k[..])
        {
            e.value = v;
        }
    }
    if let Some(z) = stored {
        // An empty result deletes the destination, as in Redis.
        let len = z.len();
        let dst = &a[1];
        let event = match op {
            Op::Union => "zunionstore",
            Op::Inter => "zinterstore",
            Op::Diff => "zdiffstore",
        };
        let changed = store_result(ctx, dst, z, event);
        ctx.dirty(dst, changed);
        o.int(len as i64);
    }
}

// ---------------------------------------------------------------------------
// ZSCAN

/// Redis's parseScanCursorOrReply (strtoul: sign allowed, no leading space).
fn parse_cursor(s: &[u8]) -> Option<u64> {
    if s.first().is_some_and(|&b| c_isspace(b)) {
        return None;
    }
    let mut buf = s.to_vec();
    buf.push(0);
    let start = buf.as_ptr() as *const libc::c_char;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: NUL-terminated buffer that outlives the call.
    let (v, erange) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtoul(start, &mut end, 10);
        (v, *libc::__errno_location() == libc::ERANGE)
    };
    let n = end as usize - start as usize;
    if erange || n < s.len() && s[n] != 0 {
        return None;
    }
    Some(v)
}

fn zscan_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let Some(cursor) = parse_cursor(&a[2]) else {
        return o.err("ERR invalid cursor");
    };
    let z = match read(ctx, &a[1]) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(None) => {
            o.array(2);
            o.bulk(b"0");
            return o.array(0);
        }
        Ok(Some(z)) => z,
    };
    let mut count = 10i64;
    let mut pat: Option<&[u8]> = None;
    let mut i = 3;
    while i < a.len() {
        let left = a.len() - i;
        if eq_ic(&a[i], "count") && left >= 2 {
            match parse_i64(&a[i + 1]) {
                None => return o.err(errors::NOT_INT),
                Some(c) if c < 1 => return o.err(errors::SYNTAX),
                Some(c) => count = c,
            }
            i += 2;
        } else if eq_ic(&a[i], "match") && left >= 2 {
            let p = &a[i + 1][..];
            pat = if p == b"*" { None } else { Some(p) };
            i += 2;
        } else {
            return o.err(errors::SYNTAX);
        }
    }
    let (next, items) = z.scan(cursor, count.min(i64::MAX / 20) as usize);
    let items: Vec<_> = items
        .into_iter()
        .filter(|(m, _)| pat.is_none_or(|p| crate::util::glob_match(p, m, false)))
        .collect();
    o.array(2);
    o.bulk(next.to_string().as_bytes());
    o.array(items.len() * 2);
    for (m, s) in items {
        o.bulk(m);
        o.bulk(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_parsing_like_redis() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b"1 "), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"abc"), None);
    }

    #[test]
    fn range_items() {
        assert_eq!(parse_range_item(b"(1"), Some((1.0, true)));
        assert_eq!(parse_range_item(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_range_item(b"("), Some((0.0, true)));
        assert_eq!(parse_range_item(b" 5"), Some((5.0, false)));
        assert_eq!(parse_range_item(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_range_item(b"x"), None);
        assert_eq!(parse_range_item(b"nan"), None);
        assert!(parse_lex_item(b"-x").is_none());
        assert!(parse_lex_item(b"a").is_none());
        assert_eq!(parse_lex_item(b"["), Some(LexBound::Str(vec![], false)));
    }

    #[test]
    fn ranks() {
        assert_eq!(rank_range(0, -1, 3), Some((0, 2)));
        assert_eq!(rank_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(rank_range(2, 1, 3), None);
        assert_eq!(rank_range(3, 5, 3), None);
        assert_eq!(rank_range(-1, -1, 3), Some((2, 2)));
        assert_eq!(rank_range(0, 0, 0), None);
    }

    #[test]
    fn aggregates() {
        let mut t = f64::INFINITY;
        aggregate(&mut t, f64::NEG_INFINITY, Aggregate::Sum);
        assert_eq!(t, 0.0);
        let mut t = 1.0;
        aggregate(&mut t, f64::NAN, Aggregate::Min);
        assert_eq!(t, 1.0);
        aggregate(&mut t, 0.5, Aggregate::Min);
        assert_eq!(t, 0.5);
        assert_eq!(weighted(0.0, f64::INFINITY), 0.0);
    }

    #[test]
    fn setops() {
        let lim = Limits {
            entries: 128,
            value: 64,
        };
        let mut a = ZSet::new();
        let mut b = ZSet::new();
        for (m, s) in [("x", 1.0), ("y", 2.0), ("z", 3.0)] {
            a.insert_new(m.as_bytes(), s, lim);
        }
        for (m, s) in [("y", 10.0), ("z", 20.0)] {
            b.insert_new(m.as_bytes(), s, lim);
        }
        let srcs = [(Src::Z(&a), 1.0, 0), (Src::Z(&b), 2.0, 1)];
        let SetOpResult::Items(v) = compute_setop(&srcs, Op::Inter, Aggregate::Sum, false, 0)
        else {
            panic!()
        };
        assert_eq!(v, vec![(&b"y"[..], 22.0), (&b"z"[..], 43.0)]);
        let SetOpResult::Items(v) = compute_setop(&srcs, Op::Union, Aggregate::Max, false, 0)
        else {
            panic!()
        };
        assert_eq!(
            v,
            vec![(&b"x"[..], 1.0), (&b"y"[..], 20.0), (&b"z"[..], 40.0)]
        );
        let SetOpResult::Items(v) = compute_setop(&srcs, Op::Diff, Aggregate::Sum, false, 0) else {
            panic!()
        };
        assert_eq!(v, vec![(&b"x"[..], 1.0)]);
        let SetOpResult::Card(c) = compute_setop(&srcs, Op::Inter, Aggregate::Sum, true, 1) else {
            panic!()
        };
        assert_eq!(c, 1);
        let same = [(Src::Z(&a), 1.0, 0), (Src::Z(&a), 1.0, 0)];
        let SetOpResult::Items(v) = compute_setop(&same, Op::Diff, Aggregate::Sum, false, 0) else {
            panic!()
        };
        assert!(v.is_empty());
    }
}
