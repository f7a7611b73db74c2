//! Stream commands (Redis 7.0): XADD, XRANGE, XREAD, consumer groups...
//!
//! Blocking XREAD/XREADGROUP and re-runs: the runtime re-runs the same
//! argument list when a key is signalled, but `XREAD ... $` must keep
//! meaning "the last ID when the command first blocked", and a re-run must
//! behave like Redis's serveClientsBlockedOnStreamKey (one stream per
//! reply, default COUNT 1000, NOGROUP/UNBLOCKED errors). A handler cannot
//! tell a re-run from a fresh command, so a blocking invocation is
//! remembered in `PARKED`, keyed by the identity of its `args[0]` buffer:
//! the runtime re-runs with clones of the very same `Bytes`, and holding a
//! clone keeps that address from being reused by another command. The entry
//! stores the resolved IDs and the original deadline, and is dropped when
//! the command replies (or its connection is gone).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::protocol::Out;
use crate::storage::Value;
use crate::storage::stream::{
    Consumer, ConsumerGroup, ENTRIES_READ_INVALID, Fields, PendingEntry, Stream, StreamId, Trim,
};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const XADD_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";

pub fn commands() -> Vec<Command> {
    vec![
        cmd("xadd", -5, WRITE | DENYOOM | FAST, xadd).keys(1, 1, 1),
        cmd("xrange", -4, READONLY, xrange).keys(1, 1, 1),
        cmd("xrevrange", -4, READONLY, xrevrange).keys(1, 1, 1),
        cmd("xlen", 2, READONLY | FAST, xlen).keys(1, 1, 1),
        cmd("xdel", -3, WRITE | FAST, xdel).keys(1, 1, 1),
        cmd("xtrim", -4, WRITE, xtrim).keys(1, 1, 1),
        cmd("xread", -4, READONLY | BLOCKING, xread).keys(0, 0, 0),
        cmd("xreadgroup", -7, WRITE | BLOCKING, xreadgroup_cmd).keys(0, 0, 0),
        cmd("xack", -4, WRITE | FAST, xack).keys(1, 1, 1),
        cmd("xpending", -3, READONLY, xpending).keys(1, 1, 1),
        cmd("xclaim", -6, WRITE | FAST, xclaim_cmd).keys(1, 1, 1),
        cmd("xautoclaim", -6, WRITE | FAST, xautoclaim_cmd).keys(1, 1, 1),
        cmd("xsetid", -3, WRITE | DENYOOM | FAST, xsetid).keys(1, 1, 1),
        // Containers: the key is argument 2 of every keyed subcommand.
        cmd("xgroup", -2, WRITE_SUBCOMMANDS, xgroup).keys(2, 2, 1),
        cmd("xinfo", -2, 0, xinfo).keys(2, 2, 1),
    ]
}

// ------------------------------------------------------------ ID parsing

/// Redis's string2ull: string2ll rules, else strtoull (leading spaces,
/// sign, leading zeros; a '-' negates modulo 2^64).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// streamGenericParseIDOrReply. `seq_star` accepts `ms-*` (XADD) and then
/// the bool tells whether the sequence was given.
fn parse_id_ex(
    s: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Option<(StreamId, bool)> {
    if s.len() > 127 || s.contains(&0) {
        return None;
    }
    if s == b"-" || s == b"+" {
        if strict {
            return None;
        }
        return Some((
            if s == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    match s.iter().position(|&c| c == b'-') {
        Some(d) => {
            let ms = string2ull(&s[..d])?;
            let rest = &s[d + 1..];
            if seq_star && rest == b"*" {
                return Some((StreamId::new(ms, 0), false));
            }
            Some((StreamId::new(ms, string2ull(rest)?), true))
        }
        None => Some((StreamId::new(string2ull(s)?, missing_seq), true)),
    }
}

/// A list of exact IDs (XDEL, XACK): all valid, or the first error.
fn parse_ids(args: &[Bytes]) -> Result<Vec<StreamId>, &'static str> {
    args.iter().map(|a| parse_id(a, 0, true)).collect()
}

fn parse_id(s: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, &'static str> {
    parse_id_ex(s, missing_seq, strict, false)
        .map(|(id, _)| id)
        .ok_or(INVALID_ID)
}

/// A range bound: `(` makes it exclusive, then the ID is parsed strictly.
fn parse_interval(s: &[u8], missing_seq: u64) -> Result<(StreamId, bool), &'static str> {
    if s.len() > 1 && s[0] == b'(' {
        Ok((parse_id(&s[1..], missing_seq, true)?, true))
    } else {
        Ok((parse_id(s, missing_seq, false)?, false))
    }
}

fn int_arg(s: &[u8]) -> Result<i64, String> {
    parse_i64(s).ok_or_else(|| errors::NOT_INT.to_string())
}

// ------------------------------------------------------------ replies

fn reply_id(out: &mut Out, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

fn reply_entry(out: &mut Out, id: StreamId, fields: &Fields) {
    out.array(2);
    reply_id(out, id);
    out.array(fields.len() * 2);
    for (f, v) in fields {
        out.bulk(f);
        out.bulk(v);
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn subcommand_syntax(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.out.err(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(&args[1][..args[1].len().min(128)]),
        lossy(&args[0]).to_ascii_uppercase()
    ));
}

fn reply_help(ctx: &mut Ctx, name: &[u8], lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        lossy(name).to_ascii_uppercase()
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

// ------------------------------------------------------------ key access

#[derive(Clone, Copy, PartialEq)]
enum Lookup {
    Read,
    Write,
    /// Blocked-client service: no hit/miss statistics.
    Quiet,
}

/// Runs `f` with the stream at `key` (None when missing) moved out of the
/// keyspace, so `f` can write replies while holding it. Returns None after
/// replying WRONGTYPE. With `create`, a missing key becomes an empty stream.
fn with_stream<R>(
    ctx: &mut Ctx,
    key: &[u8],
    mode: Lookup,
    create: bool,
    f: impl FnOnce(&mut Ctx, Option<&mut Stream>) -> R,
) -> Option<R> {
    let now = ctx.now;
    let entry = match mode {
        Lookup::Read => ctx.lookup_read(key).is_some(),
        Lookup::Write => ctx.lookup_write(key).is_some(),
        Lookup::Quiet => ctx.db(key).get_mut(key, now).is_some(),
    };
    if !entry {
        if !create {
            return Some(f(ctx, None));
        }
        ctx.db(key).set(key, Value::Stream(Box::default()));
    }
    let mut st = match ctx.db(key).dict.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Stream(b)) => std::mem::take(&mut **b),
        _ => {
            ctx.out.err(errors::WRONGTYPE);
            return None;
        }
    };
    let r = f(ctx, Some(&mut st));
    if let Some(Value::Stream(b)) = ctx.db(key).dict.get_mut(key).map(|e| &mut e.value) {
        **b = st;
    }
    Some(r)
}

// ------------------------------------------------------------ XADD / XTRIM

struct AddTrim {
    id: Option<(StreamId, bool)>,
    nomkstream: bool,
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    idpos: usize,
    /// Index of the MAXLEN/MINID threshold argument (for the rewrite of
    /// `~` trims sent to replicas).
    trim_idx: usize,
}

fn parse_add_trim(args: &[Bytes], xadd: bool, node_max_entries: i64) -> Result<AddTrim, String> {
    let mut a = AddTrim {
        id: None,
        nomkstream: false,
        trim: None,
        approx: false,
        limit: 0,
        idpos: 0,
        trim_idx: 0,
    };
    let mut limit_given = false;
    let mut i = 2;
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(BOTH.into());
            }
            a.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let trim = if eq_ic(opt, "maxlen") {
                let n = int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_id(&args[i + 1], 0, true)?)
            };
            i += 1;
            a.trim = Some(trim);
            a.trim_idx = i;
        } else if eq_ic(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            let id = parse_id_ex(opt, 0, true, true).ok_or(INVALID_ID)?;
            a.id = Some(id);
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        i += 1;
    }
    if a.limit != 0 && a.trim.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && a.trim.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if limit_given {
        if !a.approx {
            return Err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
            );
        }
    } else if a.approx {
        let l = 100i64.saturating_mul(node_max_entries);
        a.limit = if l <= 0 {
            10000
        } else {
            l.min(1_000_000) as u64
        };
    } else {
        a.limit = 0;
    }
    a.idpos = i;
    Ok(a)
}

/// `MAXLEN|MINID ~ <n>` as replicas must replay it (Redis 7's
/// streamRewriteApproxSpecifier/TrimArgument): `= <length now>` or
/// `= <first ID now>`, so node-granular trimming cannot differ there.
fn rewrite_approx_trim(eff: &mut [Bytes], a: &AddTrim, s: &Stream) {
    eff[a.trim_idx - 1] = Bytes::from_static(b"=");
    eff[a.trim_idx] = match a.trim {
        Some(Trim::MaxLen(_)) => Bytes::from(s.len().to_string()),
        _ => {
            let first = s.entries.keys().next().copied().unwrap_or(StreamId::MAX);
            Bytes::from(first.to_string())
        }
    };
}

fn node_limits(ctx: &Ctx) -> (i64, i64) {
    let c = ctx.srv.config.read().unwrap();
    (
        c.get_i64("stream-node-max-bytes"),
        c.get_i64("stream-node-max-entries"),
    )
}

fn xadd(ctx: &mut Ctx, args: &[Bytes]) {
    let (max_bytes, max_entries) = node_limits(ctx);
    let a = match parse_add_trim(args, true, max_entries) {
        Ok(a) => a,
        Err(e) => return ctx.out.err(&e),
    };
    let nfields = args.len() as i64 - (a.idpos as i64 + 1);
    if nfields < 2 || nfields % 2 == 1 {
        return ctx.out.err(&errors::wrong_args("xadd"));
    }
    if let Some((id, true)) = a.id
        && id.is_zero()
    {
        return ctx
            .out
            .err("ERR The ID specified in XADD must be greater than 0-0");
    }
    let key = &args[1];
    if a.nomkstream {
        // NOMKSTREAM on a missing key: null, nothing created.
        let now = ctx.now;
        let exists = ctx.lookup_write(key).is_some();
        let _ = now;
        if !exists {
            return ctx.out.null();
        }
    }
    let fields: Fields = args[a.idpos + 1..]
        .chunks(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    let now = ctx.now;
    let added = with_stream(ctx, key, Lookup::Write, true, |ctx, s| {
        let s = s.expect("created");
        if s.last_id == StreamId::MAX {
            ctx.out
                .err("ERR The stream has exhausted the last possible ID, unable to add more items");
            return false;
        }
        let id = match a.id {
            Some((id, true)) => Some(id),
            Some((id, false)) => {
                if s.last_id.ms == id.ms {
                    if s.last_id.seq == u64::MAX {
                        ctx.out.err("ERR Elements are too large to be stored");
                        return false;
                    }
                    Some(StreamId::new(id.ms, s.last_id.seq + 1))
                } else {
                    Some(id)
                }
            }
            None => {
                if now > s.last_id.ms {
                    Some(StreamId::new(now, 0))
                } else {
                    s.last_id.incr()
                }
            }
        };
        let id = match id {
            Some(id) if id > s.last_id => id,
            _ => {
                ctx.out.err(XADD_TOO_SMALL);
                return false;
            }
        };
        s.append(id, fields, max_bytes, max_entries);
        reply_id(ctx.out, id);
        ctx.notify(ev::STREAM, "xadd", key);
        if let Some(t) = a.trim
            && s.trim(t, a.approx, a.limit) > 0
        {
            ctx.notify(ev::STREAM, "xtrim", key);
        }
        if crate::replication::active() {
            // Redis 7: the ID actually used, and `~` trims made exact.
            let mut eff: Vec<Bytes> = args.to_vec();
            let mut rewritten = false;
            if !matches!(a.id, Some((_, true))) {
                eff[a.idpos] = Bytes::from(id.to_string());
                rewritten = true;
            }
            if a.approx {
                rewrite_approx_trim(&mut eff, &a, s);
                rewritten = true;
            }
            if rewritten {
                crate::replication::propagate(ctx.db, &eff);
            }
        }
        true
    });
    if added == Some(true) {
        ctx.dirty(key, 1);
        ctx.signal_ready(key);
    }
}

fn xtrim(ctx: &mut Ctx, args: &[Bytes]) {
    let (_, max_entries) = node_limits(ctx);
    let a = match parse_add_trim(args, false, max_entries) {
        Ok(a) => a,
        Err(e) => return ctx.out.err(&e),
    };
    let key = &args[1];
    let n = with_stream(ctx, key, Lookup::Write, false, |ctx, s| {
        let n = match s {
            Some(s) => {
                let n = s.trim(a.trim.expect("checked"), a.approx, a.limit);
                if n > 0 && a.approx && crate::replication::active() {
                    let mut eff: Vec<Bytes> = args.to_vec();
                    rewrite_approx_trim(&mut eff, &a, s);
                    crate::replication::propagate(ctx.db, &eff);
                }
                n
            }
            None => 0,
        };
        ctx.out.int(n as i64);
        n
    });
    if let Some(n) = n
        && n > 0
    {
        ctx.dirty(key, n);
        ctx.notify(ev::STREAM, "xtrim", key);
    }
}

// ------------------------------------------------------------ XRANGE / XLEN / XDEL

fn xrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_generic(ctx, args, true)
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) {
    let (sa, ea) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let parsed = (|| -> Result<(StreamId, StreamId, i64), String> {
        let (mut start, sx) = parse_interval(sa, 0)?;
        if sx {
            start = start
                .incr()
                .ok_or("ERR invalid start ID for the interval")?;
        }
        let (mut end, ex) = parse_interval(ea, u64::MAX)?;
        if ex {
            end = end.decr().ok_or("ERR invalid end ID for the interval")?;
        }
        let mut count = -1;
        let mut j = 4;
        while j < args.len() {
            if eq_ic(&args[j], "count") && j + 1 < args.len() {
                count = int_arg(&args[j + 1])?.max(0);
                j += 2;
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
        Ok((start, end, count))
    })();
    let (start, end, count) = match parsed {
        Ok(p) => p,
        Err(e) => return ctx.out.err(&e),
    };
    with_stream(ctx, &args[1], Lookup::Read, false, |ctx, s| {
        let Some(s) = s else {
            return ctx.out.array(0);
        };
        if count == 0 {
            return ctx.out.null_array();
        }
        let limit = if count < 0 {
            usize::MAX
        } else {
            count as usize
        };
        let items: Vec<(&StreamId, &Fields)> = if start > end {
            Vec::new()
        } else if rev {
            s.entries.range(start..=end).rev().take(limit).collect()
        } else {
            s.entries.range(start..=end).take(limit).collect()
        };
        ctx.out.array(items.len());
        for (id, f) in items {
            reply_entry(ctx.out, *id, f);
        }
    });
}

fn xlen(ctx: &mut Ctx, args: &[Bytes]) {
    with_stream(ctx, &args[1], Lookup::Read, false, |ctx, s| {
        ctx.out.int(s.map_or(0, |s| s.len() as i64))
    });
}

fn xdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let n = with_stream(ctx, key, Lookup::Write, false, |ctx, s| {
        let Some(s) = s else {
            ctx.out.int(0);
            return 0;
        };
        let ids = match parse_ids(&args[2..]) {
            Ok(ids) => ids,
            Err(e) => {
                ctx.out.err(e);
                return 0;
            }
        };
        let n = ids.into_iter().filter(|id| s.delete(*id)).count() as u64;
        ctx.out.int(n as i64);
        n
    });
    if let Some(n) = n
        && n > 0
    {
        ctx.dirty(key, n);
        ctx.notify(ev::STREAM, "xdel", key);
    }
}

// ------------------------------------------------------------ XREAD / XREADGROUP

/// A blocked XREAD/XREADGROUP is re-run by the runtime with rewritten
/// arguments: the command name carries, after a NUL byte (which no client
/// can send as a command name that resolves), the deadline and the IDs
/// resolved when it first blocked, so `$` and `>` keep their meaning.
fn encode_rerun(args: &[Bytes], ids: &[StreamId], deadline: Option<u64>) -> Vec<Bytes> {
    let mut name = args[0].to_vec();
    name.push(0);
    name.extend_from_slice(
        deadline
            .map(|d| d.to_string())
            .unwrap_or("-".into())
            .as_bytes(),
    );
    for id in ids {
        name.extend_from_slice(format!("\0{}-{}", id.ms, id.seq).as_bytes());
    }
    let mut out = args.to_vec();
    out[0] = Bytes::from(name);
    out
}

fn decode_rerun(name: &[u8]) -> Option<(Vec<StreamId>, Option<u64>)> {
    let mut parts = name.split(|&b| b == 0);
    parts.next()?;
    let d = parts.next()?;
    let deadline = if d == b"-" {
        None
    } else {
        Some(std::str::from_utf8(d).ok()?.parse().ok()?)
    };
    let ids = parts
        .map(|p| {
            let t = std::str::from_utf8(p).ok()?;
            let (ms, seq) = t.split_once('-')?;
            Some(StreamId {
                ms: ms.parse().ok()?,
                seq: seq.parse().ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((ids, deadline))
}

struct ReadArgs {
    block: Option<u64>,
    count: u64,
    streams_arg: usize,
    n: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

fn parse_read(args: &[Bytes], group_mode: bool) -> Result<ReadArgs, String> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        streams_arg: 0,
        n: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i][..];
        if eq_ic(o, "block") && more > 0 {
            i += 1;
            let t = parse_i64(&args[i]).ok_or("ERR timeout is not an integer or out of range")?;
            if t < 0 {
                return Err("ERR timeout is negative".into());
            }
            r.block = Some(t as u64);
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            r.count = int_arg(&args[i])?.max(0) as u64;
        } else if eq_ic(o, "streams") && more > 0 {
            r.streams_arg = i + 1;
            let c = args.len() - r.streams_arg;
            if !c.is_multiple_of(2) {
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            r.n = c / 2;
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !group_mode {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if eq_ic(o, "noack") {
            if !group_mode {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.noack = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        i += 1;
    }
    if r.streams_arg == 0 {
        return Err(errors::SYNTAX.into());
    }
    if group_mode && r.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    Ok(r)
}

fn xread(ctx: &mut Ctx, args: &[Bytes]) {
    read_generic(ctx, args, false)
}

fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) {
    read_generic(ctx, args, true)
}

/// Delivers entries after `gt` to a group consumer (creating it), updating
/// the group's last ID, entries-read and PEL as streamReplyWithRange does.
#[allow(clippy::too_many_arguments)]
fn deliver_group(
    out: &mut Out,
    s: &mut Stream,
    gname: &[u8],
    consumer: &[u8],
    start: StreamId,
    count: u64,
    noack: bool,
    now: i64,
) {
    let ids: Vec<StreamId> = s
        .entries
        .range(start..)
        .map(|(id, _)| *id)
        .take(if count == 0 {
            usize::MAX
        } else {
            count as usize
        })
        .collect();
    out.array(ids.len());
    for id in ids {
        s.advance_group(gname, id);
        reply_entry(out, id, &s.entries[&id]);
        if noack {
            continue;
        }
        let g = s.groups.get_mut(gname).expect("group");
        if let Some(old) = g.pel.get_mut(&id) {
            let prev = std::mem::replace(&mut old.consumer, consumer.to_vec());
            old.delivery_time = now;
            old.delivery_count = 1;
            if let Some(c) = g.consumers.get_mut(&prev) {
                c.pel.remove(&id);
            }
        } else {
            g.pel.insert(
                id,
                PendingEntry {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: consumer.to_vec(),
                },
            );
        }
        g.consumers
            .get_mut(consumer)
            .expect("consumer")
            .pel
            .insert(id);
    }
}

/// The consumer's own PEL from `start` (XREADGROUP with an explicit ID).
fn deliver_history(
    out: &mut Out,
    s: &mut Stream,
    gname: &[u8],
    consumer: &[u8],
    start: StreamId,
    count: u64,
    now: i64,
) {
    let g = s.groups.get_mut(gname).expect("group");
    let ids: Vec<StreamId> = g.consumers[consumer]
        .pel
        .range(start..)
        .copied()
        .take(if count == 0 {
            usize::MAX
        } else {
            count as usize
        })
        .collect();
    out.array(ids.len());
    for id in ids {
        match s.entries.get(&id) {
            Some(f) => {
                reply_entry(out, id, f);
                if let Some(p) = g.pel.get_mut(&id) {
                    p.delivery_time = now;
                    p.delivery_count += 1;
                }
            }
            None => {
                out.array(2);
                reply_id(out, id);
                out.null_array();
            }
        }
    }
}

/// Looks up (refreshing seen-time) or creates a consumer; true if created.
fn touch_consumer(g: &mut ConsumerGroup, name: &[u8], now: i64) -> bool {
    match g.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => {
            g.consumers.insert(
                name.to_vec(),
                Consumer {
                    seen_time: now,
                    pel: Default::default(),
                },
            );
            true
        }
    }
}

/// Writes the top-level header of an XREAD reply with `n` streams.
fn read_header(out: &mut Out, n: usize) {
    if out.resp3 {
        out.map(n);
    } else {
        out.array(n);
    }
}

fn read_generic(ctx: &mut Ctx, args: &[Bytes], group_mode: bool) {
    let r = match parse_read(args, group_mode) {
        Ok(r) => r,
        Err(e) => return ctx.out.err(&e),
    };
    let keys = &args[r.streams_arg..r.streams_arg + r.n];
    let idargs = &args[r.streams_arg + r.n..];
    if r.block.is_some()
        && let Some((ids, deadline)) = decode_rerun(&args[0])
    {
        return serve_parked(ctx, &r, keys, ids, deadline);
    }
    let now = ctx.now as i64;

    // Resolve the IDs, checking types and groups, stream by stream.
    let mut ids = Vec::with_capacity(r.n);
    for (key, idarg) in keys.iter().zip(idargs) {
        let res = with_stream(
            ctx,
            key,
            Lookup::Read,
            false,
            |_, s| -> Result<StreamId, String> {
                if let Some((g, _)) = &r.group
                    && s.as_ref().is_none_or(|s| !s.groups.contains_key(&g[..]))
                {
                    return Err(format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        lossy(key),
                        lossy(g)
                    ));
                }
                if &idarg[..] == b"$" {
                    if group_mode {
                        return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
                    }
                    return Ok(s.map_or(StreamId::MIN, |s| s.last_id));
                }
                if &idarg[..] == b">" {
                    if !group_mode {
                        return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
                    }
                    return Ok(StreamId::MAX);
                }
                Ok(parse_id(idarg, 0, true)?)
            },
        );
        match res {
            None => return,
            Some(Err(e)) => return ctx.out.err(&e),
            Some(Ok(id)) => ids.push(id),
        }
    }

    // Serve synchronously what can be served.
    let mut body = Out::new(ctx.out.resp3);
    let mut served = 0;
    for (i, key) in keys.iter().enumerate() {
        let gt = ids[i];
        let created = with_stream(ctx, key, Lookup::Quiet, false, |_, s| {
            let s = s?;
            let (start, history) = match &r.group {
                Some((g, _)) => {
                    if gt != StreamId::MAX {
                        (gt, true)
                    } else {
                        let last = s.groups[&g[..]].last_id;
                        if !s.is_empty() && s.last_valid_id() > last {
                            (last, false)
                        } else {
                            return None;
                        }
                    }
                }
                None => {
                    if !s.is_empty() && s.last_valid_id() > gt {
                        (gt, false)
                    } else {
                        return None;
                    }
                }
            };
            let start = start.incr().unwrap_or(StreamId::MIN);
            if !body.resp3 {
                body.array(2);
            }
            body.bulk(key);
            let mut created = false;
            match &r.group {
                Some((g, c)) => {
                    created = touch_consumer(s.groups.get_mut(&g[..]).expect("group"), c, now);
                    if history {
                        deliver_history(&mut body, s, g, c, start, r.count, now);
                    } else {
                        deliver_group(&mut body, s, g, c, start, r.count, r.noack, now);
                    }
                }
                None => {
                    let items: Vec<_> = s
                        .entries
                        .range(start..)
                        .take(if r.count == 0 {
                            usize::MAX
                        } else {
                            r.count as usize
                        })
                        .collect();
                    body.array(items.len());
                    for (id, f) in items {
                        reply_entry(&mut body, *id, f);
                    }
                }
            }
            Some(created)
        });
        if let Some(Some(created)) = created {
            served += 1;
            if r.group.is_some() {
                ctx.dirty(key, 1 + created as u64);
            }
            if created {
                ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
            }
        }
    }
    if served > 0 {
        read_header(ctx.out, served);
        ctx.out.buf.extend_from_slice(&body.buf);
        return;
    }
    match r.block {
        Some(ms) if !ctx.no_block => {
            let deadline = if ms == 0 { None } else { Some(ctx.now + ms) };
            let rerun = encode_rerun(args, &ids, deadline);
            ctx.block_on_with(dedup(keys), deadline, rerun);
        }
        _ => ctx.out.null_array(),
    }
}

fn dedup(keys: &[Bytes]) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        if !v.contains(k) {
            v.push(k.clone());
        }
    }
    v
}

/// A re-run of a blocked XREAD/XREADGROUP: serve one stream that has new
/// entries as Redis's blocked-client service does, or keep waiting.
fn serve_parked(
    ctx: &mut Ctx,
    r: &ReadArgs,
    keys: &[Bytes],
    ids: Vec<StreamId>,
    deadline: Option<u64>,
) {
    let now = ctx.now as i64;
    let count = if r.count == 0 { 1000 } else { r.count };
    for (i, key) in keys.iter().enumerate() {
        let mut body = Out::new(ctx.out.resp3);
        let res = with_stream(
            ctx,
            key,
            Lookup::Quiet,
            false,
            |_, s| -> Result<Option<bool>, &str> {
                let Some(s) = s else {
                    return if r.group.is_some() {
                        Err("UNBLOCKED the stream key no longer exists")
                    } else {
                        Ok(None)
                    };
                };
                let gt = match &r.group {
                    Some((g, _)) => match s.groups.get(&g[..]) {
                        Some(grp) => grp.last_id,
                        None => {
                            return Err(
                                "NOGROUP the consumer group this client was blocked on no longer exists",
                            );
                        }
                    },
                    None => ids.get(i).copied().unwrap_or_default(),
                };
                if s.last_id <= gt {
                    return Ok(None);
                }
                let start = gt.incr().unwrap_or(StreamId::MIN);
                let mut created = false;
                match &r.group {
                    Some((g, c)) => {
                        created = touch_consumer(s.groups.get_mut(&g[..]).expect("group"), c, now);
                        deliver_group(&mut body, s, g, c, start, count, r.noack, now);
                    }
                    None => {
                        let items: Vec<_> = s.entries.range(start..).take(count as usize).collect();
                        body.array(items.len());
                        for (id, f) in items {
                            reply_entry(&mut body, *id, f);
                        }
                    }
                }
                Ok(Some(created))
            },
        );
        match res {
            None if r.group.is_some() => {
                // Overwritten by another type: unblockDeletedStreamReadgroupClients.
                ctx.out.buf.clear();
                return ctx.out.err("UNBLOCKED the stream key no longer exists");
            }
            None => {
                // Now a different type: Redis does not serve this key.
                ctx.out.buf.clear();
                continue;
            }
            Some(Err(e)) => return ctx.out.err(e),
            Some(Ok(None)) => continue,
            Some(Ok(Some(created))) => {
                if r.group.is_some() {
                    ctx.dirty(key, 1 + created as u64);
                }
                if created {
                    ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
                }
                read_header(ctx.out, 1);
                if !ctx.out.resp3 {
                    ctx.out.array(2);
                }
                ctx.out.bulk(key);
                ctx.out.buf.extend_from_slice(&body.buf);
                return;
            }
        }
    }
    if ctx.no_block {
        ctx.out.null_array();
    } else {
        ctx.block_on(dedup(keys), deadline);
    }
}

// ------------------------------------------------------------ XGROUP

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

/// Subcommand lookup and arity check of a container command, as the
/// Redis 7.0 dispatcher does. Returns the lowercase subcommand name.
fn container_sub(
    ctx: &mut Ctx,
    args: &[Bytes],
    name: &str,
    subs: &[(&'static str, i32)],
) -> Option<&'static str> {
    let Some(&(sub, arity)) = subs.iter().find(|(s, _)| eq_ic(&args[1], s)) else {
        ctx.out.err(&errors::unknown_subcommand(
            &args[1][..args[1].len().min(128)],
            name,
        ));
        return None;
    };
    let ok = if arity >= 0 {
        args.len() == arity as usize
    } else {
        args.len() >= (-arity) as usize
    };
    if !ok {
        ctx.out.err(&errors::wrong_args(&format!("{name}|{sub}")));
        return None;
    }
    Some(sub)
}

fn xgroup(ctx: &mut Ctx, args: &[Bytes]) {
    let subs = [
        ("create", -5),
        ("setid", -5),
        ("destroy", 4),
        ("createconsumer", 5),
        ("delconsumer", 5),
        ("help", 2),
    ];
    let Some(sub) = container_sub(ctx, args, "xgroup", &subs) else {
        return;
    };
    if sub == "help" {
        return reply_help(ctx, &args[0], XGROUP_HELP);
    }
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    let mut i = 5;
    while i < args.len() {
        if sub == "create" && eq_ic(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && eq_ic(&args[i], "entriesread")
            && i + 1 < args.len()
        {
            match parse_i64(&args[i + 1]) {
                None => return ctx.out.err(errors::NOT_INT),
                Some(v) if v < 0 && v != ENTRIES_READ_INVALID => {
                    return ctx
                        .out
                        .err("ERR value for ENTRIESREAD must be positive or -1");
                }
                Some(v) => entries_read = v,
            }
            i += 2;
        } else {
            return subcommand_syntax(ctx, args);
        }
    }
    let key = &args[2];
    let gname = args[3].to_vec();
    let res = with_stream(ctx, key, Lookup::Write, false, |ctx, s| -> (u64, bool) {
        let exists = s.is_some();
        if !mkstream {
            let Some(s) = &s else {
                ctx.out.err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
                return (0, false);
            };
            if !s.groups.contains_key(&gname)
                && matches!(sub, "setid" | "createconsumer" | "delconsumer")
            {
                ctx.out.err(&format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    lossy(&gname),
                    lossy(key)
                ));
                return (0, false);
            }
        }
        let now = ctx.now as i64;
        match sub {
            "create" if args.len() <= 8 => {
                let id = if &args[4][..] == b"$" {
                    s.as_ref().map_or(StreamId::MIN, |s| s.last_id)
                } else {
                    match parse_id(&args[4], 0, true) {
                        Ok(id) => id,
                        Err(e) => {
                            ctx.out.err(e);
                            return (0, false);
                        }
                    }
                };
                if !exists {
                    // Created below, outside the closure.
                    return (0, true);
                }
                let s = s.expect("exists");
                if s.groups.contains_key(&gname) {
                    ctx.out.err("BUSYGROUP Consumer Group name already exists");
                    return (0, false);
                }
                s.groups.insert(
                    gname.clone(),
                    ConsumerGroup {
                        last_id: id,
                        entries_read,
                        ..Default::default()
                    },
                );
                ctx.out.ok();
                (1, false)
            }
            "setid" if args.len() == 5 || args.len() == 7 => {
                let s = s.expect("exists");
                let id = if &args[4][..] == b"$" {
                    s.last_id
                } else {
                    match parse_id(&args[4], 0, false) {
                        Ok(id) => id,
                        Err(e) => {
                            ctx.out.err(e);
                            return (0, false);
                        }
                    }
                };
                let g = s.groups.get_mut(&gname).expect("group");
                g.last_id = id;
                g.entries_read = entries_read;
                ctx.out.ok();
                (1, false)
            }
            "destroy" => {
                let s = s.expect("exists");
                if s.groups.remove(&gname).is_some() {
                    ctx.out.int(1);
                    (1, false)
                } else {
                    ctx.out.int(0);
                    (0, false)
                }
            }
            "createconsumer" => {
                let g = s.expect("exists").groups.get_mut(&gname).expect("group");
                if g.consumers.contains_key(&args[4][..]) {
                    ctx.out.int(0);
                    (0, false)
                } else {
                    touch_consumer(g, &args[4], now);
                    ctx.out.int(1);
                    (1, false)
                }
            }
            "delconsumer" => {
                let g = s.expect("exists").groups.get_mut(&gname).expect("group");
                match g.consumers.remove(&args[4][..]) {
                    Some(c) => {
                        for id in &c.pel {
                            g.pel.remove(id);
                        }
                        ctx.out.int(c.pel.len() as i64);
                        (1, false)
                    }
                    None => {
                        ctx.out.int(0);
                        (0, false)
                    }
                }
            }
            _ => {
                subcommand_syntax(ctx, args);
                (0, false)
            }
        }
    });
    match res {
        Some((0, true)) => {
            // CREATE ... MKSTREAM on a missing key: make the stream, then the group.
            let mut s = Stream::default();
            let id = if &args[4][..] == b"$" {
                StreamId::MIN
            } else {
                parse_id(&args[4], 0, true).unwrap_or_default()
            };
            s.groups.insert(
                gname,
                ConsumerGroup {
                    last_id: id,
                    entries_read,
                    ..Default::default()
                },
            );
            ctx.db(key).set(key, Value::Stream(Box::new(s)));
            ctx.out.ok();
            ctx.dirty(key, 1);
            ctx.notify(ev::STREAM, "xgroup-create", key);
        }
        Some((n, _)) if n > 0 => {
            ctx.dirty(key, n);
            ctx.notify(ev::STREAM, xgroup_event(sub), key);
            if sub == "destroy" {
                // Blocked XREADGROUP clients of this group get -NOGROUP.
                ctx.signal_ready(key);
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------ XSETID

fn xsetid(ctx: &mut Ctx, args: &[Bytes]) {
    let id = match parse_id(&args[2], 0, true) {
        Ok(id) => id,
        Err(e) => return ctx.out.err(e),
    };
    let mut entries_added: i64 = -1;
    let mut max_del = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if eq_ic(&args[i], "entriesadded") && more > 0 {
            match parse_i64(&args[i + 1]) {
                None => return ctx.out.err(errors::NOT_INT),
                Some(v) if v < 0 => return ctx.out.err("ERR entries_added must be positive"),
                Some(v) => entries_added = v,
            }
            i += 2;
        } else if eq_ic(&args[i], "maxdeletedid") && more > 0 {
            match parse_id(&args[i + 1], 0, true) {
                Err(e) => return ctx.out.err(e),
                Ok(m) if id < m => {
                    return ctx.out.err(
                        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    );
                }
                Ok(m) => max_del = m,
            }
            i += 2;
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
    }
    let key = &args[1];
    let ok = with_stream(ctx, key, Lookup::Write, false, |ctx, s| {
        let Some(s) = s else {
            ctx.out.err(errors::NO_SUCH_KEY);
            return false;
        };
        if !s.is_empty() {
            if id < s.last_valid_id() {
                ctx.out.err(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                );
                return false;
            }
            if entries_added != -1 && s.len() as i64 > entries_added {
                ctx.out.err(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                );
                return false;
            }
        }
        s.last_id = id;
        if entries_added != -1 {
            s.entries_added = entries_added as u64;
        }
        if !max_del.is_zero() {
            s.max_deleted_entry_id = max_del;
        }
        ctx.out.ok();
        true
    });
    if ok == Some(true) {
        ctx.dirty(key, 1);
        ctx.notify(ev::STREAM, "xsetid", key);
    }
}

fn xgroup_event(sub: &str) -> &'static str {
    match sub {
        "create" => "xgroup-create",
        "setid" => "xgroup-setid",
        "destroy" => "xgroup-destroy",
        "createconsumer" => "xgroup-createconsumer",
        _ => "xgroup-delconsumer",
    }
}

// ------------------------------------------------------------ XACK / XPENDING

fn xack(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let n = with_stream(ctx, key, Lookup::Read, false, |ctx, s| {
        let Some(g) = s.and_then(|s| s.groups.get_mut(&args[2][..])) else {
            ctx.out.int(0);
            return 0;
        };
        let ids = match parse_ids(&args[3..]) {
            Ok(ids) => ids,
            Err(e) => {
                ctx.out.err(e);
                return 0;
            }
        };
        let mut n = 0;
        for id in ids {
            if let Some(p) = g.pel.remove(&id) {
                if let Some(c) = g.consumers.get_mut(&p.consumer) {
                    c.pel.remove(&id);
                }
                n += 1;
            }
        }
        ctx.out.int(n as i64);
        n
    });
    if let Some(n) = n
        && n > 0
    {
        ctx.dirty(key, n);
    }
}

fn xpending(ctx: &mut Ctx, args: &[Bytes]) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.out.err(errors::SYNTAX);
    }
    struct Ext {
        start: StreamId,
        end: StreamId,
        count: i64,
        minidle: i64,
        consumer: Option<Bytes>,
    }
    let ext = if argc >= 6 {
        let parsed = (|| -> Result<Ext, String> {
            let mut si = 3;
            let mut minidle = 0;
            if eq_ic(&args[3], "idle") {
                minidle = int_arg(&args[4])?;
                if argc < 8 {
                    return Err(errors::SYNTAX.into());
                }
                si += 2;
            }
            let count = int_arg(&args[si + 2])?.max(0);
            let (mut start, sx) = parse_interval(&args[si], 0)?;
            if sx {
                start = start
                    .incr()
                    .ok_or("ERR invalid start ID for the interval")?;
            }
            let (mut end, ex) = parse_interval(&args[si + 1], u64::MAX)?;
            if ex {
                end = end.decr().ok_or("ERR invalid end ID for the interval")?;
            }
            Ok(Ext {
                start,
                end,
                count,
                minidle,
                consumer: args.get(si + 3).cloned(),
            })
        })();
        match parsed {
            Ok(e) => Some(e),
            Err(e) => return ctx.out.err(&e),
        }
    } else {
        None
    };
    let key = &args[1];
    let now = ctx.now as i64;
    with_stream(ctx, key, Lookup::Read, false, |ctx, s| {
        let Some(g) = s.and_then(|s| s.groups.get(&args[2][..])) else {
            return ctx.out.err(&format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(key),
                lossy(&args[2])
            ));
        };
        let Some(e) = ext else {
            ctx.out.array(4);
            ctx.out.int(g.pel.len() as i64);
            if g.pel.is_empty() {
                ctx.out.null();
                ctx.out.null();
                ctx.out.null_array();
                return;
            }
            reply_id(ctx.out, *g.pel.keys().next().expect("nonempty"));
            reply_id(ctx.out, *g.pel.keys().next_back().expect("nonempty"));
            let owners: Vec<_> = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .collect();
            ctx.out.array(owners.len());
            for (name, c) in owners {
                ctx.out.array(2);
                ctx.out.bulk(name);
                ctx.out.bulk(c.pel.len().to_string().as_bytes());
            }
            return;
        };
        let ids: Vec<StreamId> = match &e.consumer {
            Some(c) => match g.consumers.get(&c[..]) {
                Some(c) => c.pel.iter().copied().filter(|id| *id >= e.start).collect(),
                None => return ctx.out.array(0),
            },
            None => g.pel.range(e.start..).map(|(id, _)| *id).collect(),
        };
        let mut rows = Vec::new();
        let mut count = e.count;
        for id in ids {
            if count == 0 || id > e.end {
                break;
            }
            let p = &g.pel[&id];
            if e.minidle != 0 && now - p.delivery_time < e.minidle {
                continue;
            }
            count -= 1;
            rows.push((id, p));
        }
        ctx.out.array(rows.len());
        for (id, p) in rows {
            ctx.out.array(4);
            reply_id(ctx.out, id);
            ctx.out.bulk(&p.consumer);
            ctx.out.int((now - p.delivery_time).max(0));
            ctx.out.int(p.delivery_count as i64);
        }
    });
}

// ------------------------------------------------------------ XCLAIM / XAUTOCLAIM

/// Moves a PEL entry to `consumer` (XCLAIM/XAUTOCLAIM bookkeeping).
fn reassign(g: &mut ConsumerGroup, id: StreamId, consumer: &[u8]) {
    let p = g.pel.get_mut(&id).expect("pending");
    if p.consumer != consumer {
        let prev = std::mem::replace(&mut p.consumer, consumer.to_vec());
        if let Some(c) = g.consumers.get_mut(&prev) {
            c.pel.remove(&id);
        }
        g.consumers
            .get_mut(consumer)
            .expect("consumer")
            .pel
            .insert(id);
    }
}

/// Drops a PEL entry whose stream entry is gone.
fn drop_pending(g: &mut ConsumerGroup, id: StreamId) {
    if let Some(p) = g.pel.remove(&id)
        && let Some(c) = g.consumers.get_mut(&p.consumer)
    {
        c.pel.remove(&id);
    }
}

fn xclaim(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let now = ctx.now as i64;
    let dirty = with_stream(ctx, key, Lookup::Read, false, |ctx, s| -> u64 {
        let Some(s) = s.filter(|s| s.groups.contains_key(&args[2][..])) else {
            ctx.out.err(&format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(key),
                lossy(&args[2])
            ));
            return 0;
        };
        let Some(minidle) = parse_i64(&args[4]) else {
            ctx.out.err("ERR Invalid min-idle-time argument for XCLAIM");
            return 0;
        };
        let minidle = minidle.max(0);
        let mut j = 5;
        let mut ids = Vec::new();
        while j < args.len() {
            match parse_id(&args[j], 0, true) {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
            j += 1;
        }
        let (mut force, mut justid) = (false, false);
        let mut retrycount: i64 = -1;
        let mut deliverytime: i64 = -1;
        let mut last_id = StreamId::MIN;
        while j < args.len() {
            let more = args.len() - 1 - j;
            let o = &args[j][..];
            let num = |a: &Bytes, what: &str| {
                parse_i64(a).ok_or_else(|| format!("ERR Invalid {what} option argument for XCLAIM"))
            };
            let r: Result<(), String> = if eq_ic(o, "force") {
                force = true;
                Ok(())
            } else if eq_ic(o, "justid") {
                justid = true;
                Ok(())
            } else if eq_ic(o, "idle") && more > 0 {
                j += 1;
                num(&args[j], "IDLE").map(|v| deliverytime = now.wrapping_sub(v))
            } else if eq_ic(o, "time") && more > 0 {
                j += 1;
                num(&args[j], "TIME").map(|v| deliverytime = v)
            } else if eq_ic(o, "retrycount") && more > 0 {
                j += 1;
                num(&args[j], "RETRYCOUNT").map(|v| retrycount = v)
            } else if eq_ic(o, "lastid") && more > 0 {
                j += 1;
                parse_id(&args[j], 0, true)
                    .map(|id| last_id = id)
                    .map_err(|e| e.to_string())
            } else {
                Err(format!("ERR Unrecognized XCLAIM option '{}'", lossy(o)))
            };
            if let Err(e) = r {
                ctx.out.err(&e);
                return 0;
            }
            j += 1;
        }
        let mut dirty = 0;
        let gname = &args[2][..];
        let g = s.groups.get_mut(gname).expect("group");
        if last_id > g.last_id {
            g.last_id = last_id;
            dirty += 1;
        }
        if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
            deliverytime = now;
        }
        let cname = &args[3][..];
        let mut consumer_ready = false;
        let mut body = Out::new(ctx.out.resp3);
        let mut n = 0;
        for id in ids {
            let g = s.groups.get_mut(gname).expect("group");
            let pending = g.pel.contains_key(&id);
            if !s.entries.contains_key(&id) {
                if pending {
                    drop_pending(g, id);
                    dirty += 1;
                }
                continue;
            }
            let mut fresh = false;
            if force && !pending {
                g.pel.insert(
                    id,
                    PendingEntry {
                        delivery_time: now,
                        delivery_count: 0,
                        consumer: Vec::new(),
                    },
                );
                fresh = true;
            } else if !pending {
                continue;
            }
            if !fresh && minidle != 0 && now - g.pel[&id].delivery_time < minidle {
                continue;
            }
            if !consumer_ready {
                if touch_consumer(g, cname, now) {
                    dirty += 1;
                    ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
                }
                consumer_ready = true;
            }
            if fresh {
                g.pel.get_mut(&id).expect("pending").consumer = cname.to_vec();
                g.consumers.get_mut(cname).expect("consumer").pel.insert(id);
            } else {
                reassign(g, id, cname);
            }
            let p = g.pel.get_mut(&id).expect("pending");
            p.delivery_time = deliverytime;
            if retrycount >= 0 {
                p.delivery_count = retrycount as u64;
            } else if !justid {
                p.delivery_count += 1;
            }
            if justid {
                reply_id(&mut body, id);
            } else {
                reply_entry(&mut body, id, &s.entries[&id]);
            }
            n += 1;
            dirty += 1;
        }
        ctx.out.array(n);
        ctx.out.buf.extend_from_slice(&body.buf);
        dirty
    });
    if let Some(d) = dirty
        && d > 0
    {
        ctx.dirty(key, d);
    }
}

fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(minidle) = parse_i64(&args[4]) else {
        return ctx
            .out
            .err("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let minidle = minidle.max(0);
    let start = match parse_interval(&args[5], 0) {
        Err(e) => return ctx.out.err(e),
        Ok((id, false)) => id,
        Ok((id, true)) => match id.incr() {
            Some(id) => id,
            None => return ctx.out.err("ERR invalid start ID for the interval"),
        },
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(&args[j], "count") && more > 0 {
            match parse_i64(&args[j + 1]) {
                Some(v) if (1..=i64::MAX / 16).contains(&v) => count = v,
                _ => return ctx.out.err("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(&args[j], "justid") {
            justid = true;
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        j += 1;
    }
    let key = &args[1];
    let now = ctx.now as i64;
    let dirty = with_stream(ctx, key, Lookup::Read, false, |ctx, s| -> u64 {
        let gname = &args[2][..];
        let Some(s) = s.filter(|s| s.groups.contains_key(gname)) else {
            ctx.out.err(&format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(key),
                lossy(gname)
            ));
            return 0;
        };
        let cname = &args[3][..];
        let mut attempts = count.saturating_mul(10);
        let mut count = count;
        let mut dirty = 0;
        let mut deleted = Vec::new();
        let mut body = Out::new(ctx.out.resp3);
        let mut n = 0;
        let mut consumer_ready = false;
        let mut cursor = start;
        let mut next: Option<StreamId> = None;
        loop {
            let g = s.groups.get_mut(gname).expect("group");
            let Some(id) = g.pel.range(cursor..).next().map(|(id, _)| *id) else {
                next = None;
                break;
            };
            if attempts == 0 || count == 0 {
                next = Some(id);
                break;
            }
            attempts -= 1;
            cursor = match id.incr() {
                Some(c) => c,
                None => StreamId::MAX,
            };
            if !s.entries.contains_key(&id) {
                drop_pending(g, id);
                deleted.push(id);
                dirty += 1;
                count -= 1;
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            if minidle != 0 && now - g.pel[&id].delivery_time < minidle {
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            if !consumer_ready {
                if touch_consumer(g, cname, now) {
                    dirty += 1;
                    ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
                }
                consumer_ready = true;
            }
            reassign(g, id, cname);
            let p = g.pel.get_mut(&id).expect("pending");
            p.delivery_time = now;
            if !justid {
                p.delivery_count += 1;
            }
            if justid {
                reply_id(&mut body, id);
            } else {
                reply_entry(&mut body, id, &s.entries[&id]);
            }
            n += 1;
            count -= 1;
            dirty += 1;
            if id == StreamId::MAX {
                break;
            }
        }
        ctx.out.array(3);
        reply_id(ctx.out, next.unwrap_or(StreamId::MIN));
        ctx.out.array(n);
        ctx.out.buf.extend_from_slice(&body.buf);
        ctx.out.array(deleted.len());
        for id in deleted {
            reply_id(ctx.out, id);
        }
        dirty
    });
    if let Some(d) = dirty
        && d > 0
    {
        ctx.dirty(key, d);
    }
}

// ------------------------------------------------------------ XINFO

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn xinfo(ctx: &mut Ctx, args: &[Bytes]) {
    let subs = [("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];
    let Some(sub) = container_sub(ctx, args, "xinfo", &subs) else {
        return;
    };
    if sub == "help" {
        return reply_help(ctx, &args[0], XINFO_HELP);
    }
    let key = &args[2];
    let now = ctx.now as i64;
    with_stream(ctx, key, Lookup::Read, false, |ctx, s| {
        let Some(s) = s else {
            return ctx.out.err(errors::NO_SUCH_KEY);
        };
        match sub {
            "consumers" => {
                let Some(g) = s.groups.get(&args[3][..]) else {
                    return ctx.out.err(&format!(
                        "NOGROUP No such consumer group '{}' for key name '{}'",
                        lossy(&args[3]),
                        lossy(key)
                    ));
                };
                ctx.out.array(g.consumers.len());
                for (name, c) in &g.consumers {
                    ctx.out.map(3);
                    ctx.out.bulk(b"name");
                    ctx.out.bulk(name);
                    ctx.out.bulk(b"pending");
                    ctx.out.int(c.pel.len() as i64);
                    ctx.out.bulk(b"idle");
                    ctx.out.int((now - c.seen_time).max(0));
                }
            }
            "groups" => {
                ctx.out.array(s.groups.len());
                for (name, g) in &s.groups {
                    ctx.out.map(6);
                    ctx.out.bulk(b"name");
                    ctx.out.bulk(name);
                    ctx.out.bulk(b"consumers");
                    ctx.out.int(g.consumers.len() as i64);
                    ctx.out.bulk(b"pending");
                    ctx.out.int(g.pel.len() as i64);
                    ctx.out.bulk(b"last-delivered-id");
                    reply_id(ctx.out, g.last_id);
                    reply_group_counters(ctx.out, s, g);
                }
            }
            _ => xinfo_stream(ctx, args, s),
        }
    });
}

/// entries-read and lag of a group.
fn reply_group_counters(out: &mut Out, s: &Stream, g: &ConsumerGroup) {
    out.bulk(b"entries-read");
    if g.entries_read != ENTRIES_READ_INVALID {
        out.int(g.entries_read);
    } else {
        out.null();
    }
    out.bulk(b"lag");
    match s.group_lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn xinfo_stream(ctx: &mut Ctx, args: &[Bytes], s: &Stream) {
    let opts = &args[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !eq_ic(&opts[0], "full") {
            return subcommand_syntax(ctx, args);
        }
        if opts.len() == 3 {
            if !eq_ic(&opts[1], "count") {
                return subcommand_syntax(ctx, args);
            }
            match parse_i64(&opts[2]) {
                None => return ctx.out.err(errors::NOT_INT),
                Some(c) => count = if c < 0 { 10 } else { c },
            }
        }
    }
    let out = &mut *ctx.out;
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.rax_keys() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.rax_nodes() as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted_entry_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
    let lim = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        out.bulk(b"first-entry");
        match s.entries.iter().next() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        out.bulk(b"last-entry");
        match s.entries.iter().next_back() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        return;
    }
    out.bulk(b"entries");
    let items: Vec<_> = s.entries.iter().take(lim).collect();
    out.array(items.len());
    for (id, f) in items {
        reply_entry(out, *id, f);
    }
    out.bulk(b"groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        reply_group_counters(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(lim).collect();
        out.array(pel.len());
        for (id, p) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(lim).collect();
            out.array(ids.len());
            for id in ids {
                let p = &g.pel[id];
                out.array(3);
                reply_id(out, *id);
                out.int(p.delivery_time);
                out.int(p.delivery_count as i64);
            }
        }
    }
}

// ------------------------------------------------------------ replication of group reads and claims

/// What a consumer group looked like before a command that may move its
/// PEL (XREADGROUP, XCLAIM, XAUTOCLAIM).
struct GroupSnap {
    key: Bytes,
    group: Bytes,
    last_id: StreamId,
    entries_read: i64,
    consumers: Vec<Vec<u8>>,
    pel: BTreeMap<StreamId, PendingEntry>,
}

fn snap_group(ctx: &mut Ctx, key: &Bytes, group: &Bytes) -> Option<GroupSnap> {
    let now = ctx.now;
    let Some(Value::Stream(s)) = ctx.db(key).peek(key, now).map(|e| &e.value) else {
        return None;
    };
    let g = s.groups.get(&group[..])?;
    Some(GroupSnap {
        key: key.clone(),
        group: group.clone(),
        last_id: g.last_id,
        entries_read: g.entries_read,
        consumers: g.consumers.keys().cloned().collect(),
        pel: g.pel.clone(),
    })
}

/// Replicates what the command did to each snapshotted group as commands
/// that replay exactly, as Redis 7 does for XREADGROUP/XCLAIM/XAUTOCLAIM:
/// XGROUP CREATECONSUMER for new consumers, one `XCLAIM key group consumer
/// 0 id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <id>` per pending
/// entry added or changed, XACK for entries that left the PEL (deleted
/// from the stream), and XGROUP SETID ... ENTRIESREAD when the group's
/// last ID or entries-read moved. The command itself is never replayed.
fn propagate_group_changes(ctx: &mut Ctx, snaps: Vec<GroupSnap>) {
    crate::replication::custom();
    let dbi = ctx.db;
    let now = ctx.now;
    for b in snaps {
        let Some(Value::Stream(s)) = ctx.db(&b.key).peek(&b.key, now).map(|e| &e.value) else {
            continue;
        };
        let Some(g) = s.groups.get(&b.group[..]) else {
            continue;
        };
        let (k, gn) = (&b.key[..], &b.group[..]);
        let mut effects: Vec<Vec<Vec<u8>>> = Vec::new();
        for c in g.consumers.keys() {
            if !b.consumers.contains(c) {
                effects.push(vec![
                    b"XGROUP".to_vec(),
                    b"CREATECONSUMER".to_vec(),
                    k.to_vec(),
                    gn.to_vec(),
                    c.clone(),
                ]);
            }
        }
        let last = g.last_id.to_string().into_bytes();
        for (id, p) in &g.pel {
            if b.pel.get(id) == Some(p) {
                continue;
            }
            effects.push(vec![
                b"XCLAIM".to_vec(),
                k.to_vec(),
                gn.to_vec(),
                p.consumer.clone(),
                b"0".to_vec(),
                id.to_string().into_bytes(),
                b"TIME".to_vec(),
                p.delivery_time.to_string().into_bytes(),
                b"RETRYCOUNT".to_vec(),
                p.delivery_count.to_string().into_bytes(),
                b"FORCE".to_vec(),
                b"JUSTID".to_vec(),
                b"LASTID".to_vec(),
                last.clone(),
            ]);
        }
        let gone: Vec<Vec<u8>> = b
            .pel
            .keys()
            .filter(|id| !g.pel.contains_key(id))
            .map(|id| id.to_string().into_bytes())
            .collect();
        if !gone.is_empty() {
            let mut a = vec![b"XACK".to_vec(), k.to_vec(), gn.to_vec()];
            a.extend(gone);
            effects.push(a);
        }
        if g.last_id != b.last_id || g.entries_read != b.entries_read {
            effects.push(vec![
                b"XGROUP".to_vec(),
                b"SETID".to_vec(),
                k.to_vec(),
                gn.to_vec(),
                last.clone(),
                b"ENTRIESREAD".to_vec(),
                g.entries_read.to_string().into_bytes(),
            ]);
        }
        for e in effects {
            crate::replication::propagate(dbi, &e);
        }
    }
}

fn xreadgroup_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    if !crate::replication::active() {
        return xreadgroup(ctx, args);
    }
    let snaps: Vec<GroupSnap> = match parse_read(args, true) {
        Ok(ReadArgs {
            group: Some((g, _)),
            streams_arg,
            n,
            ..
        }) => dedup(&args[streams_arg..streams_arg + n])
            .iter()
            .filter_map(|k| snap_group(ctx, k, &g))
            .collect(),
        _ => Vec::new(),
    };
    xreadgroup(ctx, args);
    if ctx.block.is_none() {
        propagate_group_changes(ctx, snaps);
    } else {
        crate::replication::custom();
    }
}

fn xclaim_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    if !crate::replication::active() {
        return xclaim(ctx, args);
    }
    let snaps: Vec<GroupSnap> = snap_group(ctx, &args[1], &args[2]).into_iter().collect();
    xclaim(ctx, args);
    propagate_group_changes(ctx, snaps);
}

fn xautoclaim_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    if !crate::replication::active() {
        return xautoclaim(ctx, args);
    }
    let snaps: Vec<GroupSnap> = snap_group(ctx, &args[1], &args[2]).into_iter().collect();
    xautoclaim(ctx, args);
    propagate_group_changes(ctx, snaps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ull_like_redis() {
        assert_eq!(string2ull(b"12"), Some(12));
        assert_eq!(string2ull(b"012"), Some(12));
        assert_eq!(string2ull(b"+5"), Some(5));
        assert_eq!(string2ull(b"-1"), None);
        assert_eq!(string2ull(b" -1"), Some(u64::MAX));
        assert_eq!(string2ull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(string2ull(b"18446744073709551616"), None);
        assert_eq!(string2ull(b""), None);
        assert_eq!(string2ull(b"1x"), None);
    }

    #[test]
    fn ids_parse() {
        assert_eq!(parse_id(b"5", 7, true), Ok(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"5-3", 7, true), Ok(StreamId::new(5, 3)));
        assert!(parse_id(b"-", 0, true).is_err());
        assert_eq!(parse_id(b"+", 0, false), Ok(StreamId::MAX));
        assert!(parse_id(b"1-2-3", 0, false).is_err());
        assert_eq!(
            parse_id_ex(b"5-*", 0, true, true),
            Some((StreamId::new(5, 0), false))
        );
        assert!(parse_id(b"5-*", 0, true).is_err());
        assert_eq!(parse_interval(b"(5", 0), Ok((StreamId::new(5, 0), true)));
        assert!(parse_interval(b"(-", 0).is_err());
        assert_eq!(parse_interval(b"(", 0), Err(INVALID_ID));
    }
}
