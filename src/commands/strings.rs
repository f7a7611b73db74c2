//! String commands: GET/SET family, counters, ranges, LCS. Bit commands live
//! in `bits.rs` and are collected here.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::errors::{NOT_INT, OVERFLOW, SYNTAX, WRONGTYPE, wrong_args};
use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, parse_i64, with_out};
use crate::protocol::Out;
use crate::storage::{Str, Value, strval};

/// proto-max-bulk-len can never be set below this (Redis's config minimum),
/// so sizes under it skip the config lock.
const MIN_PROTO_MAX_BULK_LEN: i64 = 1024 * 1024;

/// The string inside a value, or None for other types (-> WRONGTYPE).
#[allow(unreachable_patterns)] // other Value variants arrive with their families
pub(crate) fn str_of(v: &Value) -> Option<&Str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// The string as a Vec to edit in place (APPEND, SETRANGE, SETBIT): it
/// moves to the heap, as Redis makes such a string "raw".
#[allow(unreachable_patterns)]
pub(crate) fn str_of_mut(v: &mut Value) -> Option<&mut Vec<u8>> {
    match v {
        Value::Str(s) => Some(s.make_vec()),
        _ => None,
    }
}

/// The configured proto-max-bulk-len (512MB by default).
pub(crate) fn proto_max_bulk_len(ctx: &Ctx) -> i64 {
    let cfg = ctx.srv.config.read().unwrap_or_else(|e| e.into_inner());
    let v = cfg.get("proto-max-bulk-len");
    v.parse()
        .ok()
        .or_else(|| crate::config::parse_memory(v))
        .unwrap_or(512 * 1024 * 1024)
}

/// True when `size + append` exceeds proto-max-bulk-len (or overflows);
/// replies with Redis's error in that case.
fn string_too_long(ctx: &mut Ctx, size: i64, append: i64) -> bool {
    let total = size.checked_add(append);
    if let Some(t) = total
        && t < MIN_PROTO_MAX_BULK_LEN
    {
        return false;
    }
    if total.is_none_or(|t| t > proto_max_bulk_len(ctx)) {
        ctx.out
            .err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return true;
    }
    false
}

/// GET semantics shared by GET, GETSET, GETDEL and SET ... GET: replies with
/// the value or null. Returns false after a WRONGTYPE error.
fn reply_get(ctx: &mut Ctx, key: &[u8]) -> bool {
    with_out(ctx, |ctx, out| match ctx.lookup_read(key) {
        None => {
            out.null();
            true
        }
        Some(e) => match str_of(&e.value) {
            Some(s) => {
                out.bulk(s);
                true
            }
            None => {
                out.err(WRONGTYPE);
                false
            }
        },
    })
}

// Flags of SET / GETEX options (parseExtendedStringArgumentsOrReply).
const F_NX: u32 = 1 << 0;
const F_XX: u32 = 1 << 1;
const F_EX: u32 = 1 << 2;
const F_PX: u32 = 1 << 3;
const F_KEEPTTL: u32 = 1 << 4;
const F_GET: u32 = 1 << 5;
const F_EXAT: u32 = 1 << 6;
const F_PXAT: u32 = 1 << 7;
const F_PERSIST: u32 = 1 << 8;
const F_ANY_EXPIRE: u32 = F_EX | F_PX | F_EXAT | F_PXAT;

/// Parses SET (from arg 3) or GETEX (from arg 2) options with Redis's rules:
/// conflicting or repeated-incompatible options are a syntax error.
fn parse_ext_options(args: &[Bytes], is_set: bool) -> Option<(u32, Option<&[u8]>)> {
    let mut flags = 0u32;
    let mut expire = None;
    let mut j = if is_set { 3 } else { 2 };
    while j < args.len() {
        let opt = &args[j][..];
        let has_next = j + 1 < args.len();
        let expire_ok = |own: u32| flags & (F_KEEPTTL | F_PERSIST | (F_ANY_EXPIRE & !own)) == 0;
        if is_set && eq_ic(opt, "nx") && flags & F_XX == 0 {
            flags |= F_NX;
        } else if is_set && eq_ic(opt, "xx") && flags & F_NX == 0 {
            flags |= F_XX;
        } else if is_set && eq_ic(opt, "get") {
            flags |= F_GET;
        } else if is_set && eq_ic(opt, "keepttl") && flags & (F_PERSIST | F_ANY_EXPIRE) == 0 {
            flags |= F_KEEPTTL;
        } else if !is_set && eq_ic(opt, "persist") && flags & (F_ANY_EXPIRE | F_KEEPTTL) == 0 {
            flags |= F_PERSIST;
        } else if let Some(f) = [
            ("ex", F_EX),
            ("px", F_PX),
            ("exat", F_EXAT),
            ("pxat", F_PXAT),
        ]
        .iter()
        .find(|(n, _)| eq_ic(opt, n))
        .map(|&(_, f)| f)
            && expire_ok(f)
            && has_next
        {
            flags |= f;
            expire = Some(&args[j + 1][..]);
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some((flags, expire))
}

/// Converts an EX/PX/EXAT/PXAT argument to an absolute ms timestamp, or
/// replies with the error Redis gives (getExpireMillisecondsOrReply).
fn expire_at_ms(ctx: &mut Ctx, arg: &[u8], flags: u32, name: &str) -> Option<u64> {
    let Some(mut ms) = parse_i64(arg) else {
        ctx.out.err(NOT_INT);
        return None;
    };
    let seconds = flags & (F_EX | F_EXAT) != 0;
    let bad = |ctx: &mut Ctx| {
        ctx.out
            .err(&format!("ERR invalid expire time in '{name}' command"))
    };
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        bad(ctx);
        return None;
    }
    if seconds {
        ms *= 1000;
    }
    if flags & (F_EX | F_PX) != 0 {
        ms = ms.wrapping_add(ctx.now as i64);
    }
    if ms <= 0 {
        bad(ctx);
        return None;
    }
    Some(ms as u64)
}

/// setGenericCommand: SET, SETNX, SETEX, PSETEX.
#[allow(clippy::too_many_arguments)]
fn set_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    flags: u32,
    key: &[u8],
    val: &[u8],
    expire: Option<&[u8]>,
    name: &str,
    replies: Replies,
) {
    let mut when = 0;
    if let Some(e) = expire {
        match expire_at_ms(ctx, e, flags, name) {
            Some(w) => when = w,
            None => return,
        }
    }
    if flags & F_GET != 0 && !reply_get(ctx, key) {
        return;
    }
    let done = with_out(ctx, |ctx, out| {
        let entry = ctx.lookup_write(key);
        let found = entry.is_some();
        if (flags & F_NX != 0 && found) || (flags & F_XX != 0 && !found) {
            if flags & F_GET == 0 {
                (replies.abort)(out);
            }
            return false;
        }
        // Overwrite in place when the TTL stays as it is (the common SET):
        // the expires index needs no update and the buffer can be reused.
        if let Some(e) = entry
            && (flags & F_KEEPTTL != 0 || (!e.has_ttl() && when == 0))
        {
            match &mut e.value {
                Value::Str(Str::Heap(s))
                    if val.len() > strval::INLINE
                        && s.capacity() >= val.len()
                        && s.capacity() <= 2 * val.len() + 64 =>
                {
                    s.clear();
                    s.extend_from_slice(val);
                }
                _ => e.value = Value::Str(Str::from(val)),
            }
            // A new value: not "raw" because an APPEND changed the old one.
            e.raw = false;
            return true;
        }
        let db = ctx.db(key);
        if flags & F_KEEPTTL != 0 {
            db.set_keep_ttl(key, Value::Str(Str::from(val)));
        } else {
            db.set_with_expire(key, Value::Str(Str::from(val)), when);
        }
        true
    });
    if done {
        ctx.dirty(key, 1);
        ctx.notify(ev::STRING, "set", key);
        if expire.is_some() {
            ctx.notify(ev::GENERIC, "expire", key);
        }
        if flags & F_GET == 0 {
            (replies.ok)(ctx.out);
        }
        if crate::replication::active() {
            propagate_set(ctx, flags, args, expire.map(|_| when));
        }
    }
}

/// How Redis 7 replicates a SET that happened: any TTL as `SET k v PXAT
/// <abs ms>` (so replicas and later replays agree on the instant), else
/// the command without its GET flag.
fn propagate_set(ctx: &mut Ctx, flags: u32, args: &[Bytes], when: Option<u64>) {
    let db = ctx.db;
    if let Some(when) = when {
        let ms = when.to_string();
        let (key, val) = if eq_ic(&args[0], "set") {
            (&args[1], &args[2])
        } else {
            (&args[1], &args[3]) // SETEX / PSETEX key ttl value
        };
        crate::replication::propagate(db, &[b"SET", &key[..], &val[..], b"PXAT", ms.as_bytes()]);
    } else if flags & F_GET != 0 {
        let kept: Vec<&Bytes> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !eq_ic(a, "get"))
            .map(|(_, a)| a)
            .collect();
        crate::replication::propagate(db, &kept);
    }
}

/// What SET-like commands reply on success and on an NX/XX abort.
#[derive(Clone, Copy)]
struct Replies {
    ok: fn(&mut Out),
    abort: fn(&mut Out),
}
const OK_OR_NULL: Replies = Replies {
    ok: reply_ok,
    abort: reply_null,
};
const ONE_OR_ZERO: Replies = Replies {
    ok: reply_one,
    abort: reply_zero,
};

fn reply_ok(out: &mut Out) {
    out.ok();
}
fn reply_null(out: &mut Out) {
    out.null();
}
fn reply_one(out: &mut Out) {
    out.int(1);
}
fn reply_zero(out: &mut Out) {
    out.int(0);
}

fn set_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((flags, expire)) = parse_ext_options(args, true) else {
        ctx.out.err(SYNTAX);
        return;
    };
    set_generic(
        ctx, args, flags, &args[1], &args[2], expire, "set", OK_OR_NULL,
    );
}

fn setnx_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    set_generic(
        ctx,
        args,
        F_NX,
        &args[1],
        &args[2],
        None,
        "setnx",
        ONE_OR_ZERO,
    );
}

fn setex_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let e = Some(&args[2][..]);
    set_generic(ctx, args, F_EX, &args[1], &args[3], e, "setex", OK_OR_NULL);
}

fn psetex_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let e = Some(&args[2][..]);
    set_generic(ctx, args, F_PX, &args[1], &args[3], e, "psetex", OK_OR_NULL);
}

fn get_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    reply_get(ctx, &args[1]);
}

fn getex_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((flags, expire)) = parse_ext_options(args, false) else {
        ctx.out.err(SYNTAX);
        return;
    };
    let key = &args[1][..];
    match ctx.lookup_read(key).map(|e| str_of(&e.value).is_some()) {
        None => return ctx.out.null(),
        Some(false) => return ctx.out.err(WRONGTYPE),
        Some(true) => {}
    }
    let mut when = 0;
    if let Some(e) = expire {
        match expire_at_ms(ctx, e, flags, "getex") {
            Some(w) => when = w,
            None => return,
        }
    }
    let now = ctx.now;
    with_out(ctx, |ctx, out| {
        if let Some(s) = ctx.db(key).peek(key, now).and_then(|e| str_of(&e.value)) {
            out.bulk(s);
        }
    });
    let dbi = ctx.db;
    let db = ctx.db(key);
    // Replicated as Redis 7 does: DEL, PEXPIREAT <abs ms> or PERSIST.
    let ms = when.to_string();
    let (changed, effect, event): (bool, &[&[u8]], _) =
        if flags & (F_EXAT | F_PXAT) != 0 && when <= now {
            (db.remove(key).is_some(), &[b"DEL", key], "del")
        } else if expire.is_some() {
            (
                db.set_expire(key, when),
                &[b"PEXPIREAT", key, ms.as_bytes()],
                "expire",
            )
        } else if flags & F_PERSIST != 0 {
            (
                db.peek(key, now).is_some_and(|e| e.has_ttl()) && db.set_expire(key, 0),
                &[b"PERSIST", key],
                "persist",
            )
        } else {
            (false, &[], "")
        };
    if changed {
        ctx.dirty(key, 1);
        ctx.notify(ev::GENERIC, event, key);
        crate::replication::propagate(dbi, effect);
    }
}

fn getdel_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    if reply_get(ctx, key) && ctx.db(key).remove(key).is_some() {
        ctx.dirty(key, 1);
        ctx.notify(ev::GENERIC, "del", key);
        crate::replication::propagate(ctx.db, &[b"DEL", key]);
    }
}

fn getset_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    if reply_get(ctx, key) {
        ctx.db(key).set(key, Value::Str(Str::from(&args[2][..])));
        ctx.dirty(key, 1);
        ctx.notify(ev::STRING, "set", key);
        // Replicated as SET (stock 7.0 rewrites it): replicas count a SET.
        crate::replication::propagate(ctx.db, &[b"SET", key, &args[2][..]]);
    }
}

fn mget_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    with_out(ctx, |ctx, out| {
        out.array(args.len() - 1);
        for key in &args[1..] {
            match ctx.lookup_read(key).and_then(|e| str_of(&e.value)) {
                Some(s) => out.bulk(s),
                None => out.null(),
            }
        }
    });
}

fn mset_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) {
    if args.len().is_multiple_of(2) {
        ctx.out.err(&wrong_args(if nx { "msetnx" } else { "mset" }));
        return;
    }
    if nx {
        for pair in args[1..].chunks(2) {
            if ctx.lookup_write(&pair[0]).is_some() {
                ctx.out.int(0);
                return;
            }
        }
    }
    for pair in args[1..].chunks(2) {
        ctx.db(&pair[0])
            .set(&pair[0], Value::Str(Str::from(&pair[1][..])));
        ctx.dirty(&pair[0], 1);
        ctx.notify(ev::STRING, "set", &pair[0]);
    }
    if nx { ctx.out.int(1) } else { ctx.out.ok() }
}

fn mset_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    mset_generic(ctx, args, false);
}

fn msetnx_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    mset_generic(ctx, args, true);
}

/// incrDecrCommand: the value must be a string2ll integer; TTL is kept.
fn incr_by(ctx: &mut Ctx, key: &[u8], incr: i64) {
    let res: Result<i64, &str> = match ctx.lookup_write(key) {
        Some(e) => match &mut e.value {
            Value::Str(s) => match parse_i64(s) {
                None => Err(NOT_INT),
                Some(old) => match old.checked_add(incr) {
                    None => Err(OVERFLOW),
                    Some(v) => {
                        let mut buf = [0u8; 20];
                        *s = Str::from(crate::protocol::fmt_i64(&mut buf, v));
                        // Redis stores a new integer object: "int" again.
                        e.raw = false;
                        Ok(v)
                    }
                },
            },
            _ => Err(WRONGTYPE),
        },
        None => {
            let mut buf = [0u8; 20];
            let s = Str::from(crate::protocol::fmt_i64(&mut buf, incr));
            ctx.db(key).set(key, Value::Str(s));
            Ok(incr)
        }
    };
    match res {
        Ok(v) => {
            ctx.dirty(key, 1);
            ctx.notify(ev::STRING, "incrby", key);
            ctx.out.int(v);
        }
        Err(e) => ctx.out.err(e),
    }
}

fn incr_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    incr_by(ctx, &args[1], 1);
}

fn decr_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    incr_by(ctx, &args[1], -1);
}

fn incrby_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(n) => incr_by(ctx, &args[1], n),
        None => ctx.out.err(NOT_INT),
    }
}

fn decrby_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => ctx.out.err("ERR decrement would overflow"),
        Some(n) => incr_by(ctx, &args[1], -n),
        None => ctx.out.err(NOT_INT),
    }
}

unsafe extern "C" {
    fn keel_incrbyfloat(
        cur: *const libc::c_char,
        cur_len: usize,
        incr: *const libc::c_char,
        incr_len: usize,
        out: *mut libc::c_char,
        out_len: *mut usize,
    ) -> libc::c_int;
}

/// Size of the C side's formatting buffer (Redis's MAX_LONG_DOUBLE_CHARS).
const LD_BUF: usize = 5 * 1024;

/// `cur + incr` in long double, formatted like Redis's ld2string(LD_STR_HUMAN).
/// `cur` None is a missing key (0).
pub(crate) fn incr_float(cur: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut buf = vec![0u8; LD_BUF];
    let mut len = 0usize;
    let (cp, cl) = cur.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
    // SAFETY: pointers/lengths describe live slices (or null for cur); the C
    // side copies at most len bytes of each input, writes at most LD_BUF
    // bytes into buf (which has that size) and sets len <= LD_BUF.
    let rc = unsafe {
        keel_incrbyfloat(
            cp as *const libc::c_char,
            cl,
            incr.as_ptr() as *const libc::c_char,
            incr.len(),
            buf.as_mut_ptr() as *mut libc::c_char,
            &mut len,
        )
    };
    match rc {
        0 => {
            buf.truncate(len);
            Ok(buf)
        }
        1 => Err(super::errors::NOT_FLOAT),
        _ => Err("ERR increment would produce NaN or Infinity"),
    }
}

fn incrbyfloat_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let res = match ctx.lookup_write(key) {
        Some(e) => match &mut e.value {
            Value::Str(s) => incr_float(Some(s), &args[2]).inspect(|v| {
                *s = Str::from(&v[..]);
                // A new string object in Redis (embstr when short).
                e.raw = false;
            }),
            _ => Err(WRONGTYPE),
        },
        None => incr_float(None, &args[2]).inspect(|v| {
            ctx.db(key).set(key, Value::Str(Str::from(v.clone())));
        }),
    };
    match res {
        Ok(v) => {
            ctx.dirty(key, 1);
            ctx.notify(ev::STRING, "incrbyfloat", key);
            ctx.out.bulk(&v);
            // The result, not the increment: float formatting must not
            // be redone on replicas.
            crate::replication::propagate(ctx.db, &[b"SET", key, &v[..], b"KEEPTTL"]);
        }
        Err(e) => ctx.out.err(e),
    }
}

fn append_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let add = &args[2][..];
    let old_len = match ctx.lookup_write(key) {
        None => {
            ctx.db(key).set(key, Value::Str(Str::from(add)));
            ctx.dirty(key, 1);
            ctx.notify(ev::STRING, "append", key);
            ctx.out.int(add.len() as i64);
            return;
        }
        Some(e) => match str_of(&e.value) {
            None => return ctx.out.err(WRONGTYPE),
            Some(s) => s.len(),
        },
    };
    if string_too_long(ctx, old_len as i64, add.len() as i64) {
        return;
    }
    let now = ctx.now;
    let mut new_len = 0;
    if let Some(s) = ctx
        .db(key)
        .get_mut(key, now)
        .and_then(|e| str_of_mut(&mut e.value))
    {
        s.extend_from_slice(add);
        new_len = s.len();
    }
    ctx.db(key).mark_raw(key);
    ctx.dirty(key, 1);
    ctx.notify(ev::STRING, "append", key);
    ctx.out.int(new_len as i64);
}

fn strlen_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    match ctx
        .lookup_read(&args[1])
        .map(|e| str_of(&e.value).map(|s| s.len()))
    {
        None => ctx.out.int(0),
        Some(None) => ctx.out.err(WRONGTYPE),
        Some(Some(n)) => ctx.out.int(n as i64),
    }
}

/// GETRANGE index math: the inclusive byte range, or None when empty.
pub(crate) fn getrange_bounds(mut start: i64, mut end: i64, len: usize) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = len as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        None
    } else {
        Some((start as usize, end as usize))
    }
}

fn getrange_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        ctx.out.err(NOT_INT);
        return;
    };
    with_out(ctx, |ctx, out| match ctx.lookup_read(&args[1]) {
        None => out.bulk(b""),
        Some(e) => match str_of(&e.value) {
            None => out.err(WRONGTYPE),
            Some(s) => match getrange_bounds(start, end, s.len()) {
                Some((a, b)) => out.bulk(&s[a..=b]),
                None => out.bulk(b""),
            },
        },
    });
}

fn setrange_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let val = &args[3][..];
    let Some(offset) = parse_i64(&args[2]) else {
        ctx.out.err(NOT_INT);
        return;
    };
    if offset < 0 {
        ctx.out.err("ERR offset is out of range");
        return;
    }
    let exists = match ctx.lookup_write(key) {
        None => None,
        Some(e) => match str_of(&e.value) {
            None => return ctx.out.err(WRONGTYPE),
            Some(s) => Some(s.len()),
        },
    };
    if val.is_empty() {
        // Setting nothing: reply with the current length, touch nothing.
        ctx.out.int(exists.unwrap_or(0) as i64);
        return;
    }
    if string_too_long(ctx, offset, val.len() as i64) {
        return;
    }
    let offset = offset as usize;
    let now = ctx.now;
    let db = ctx.db(key);
    if exists.is_none() {
        db.set(key, Value::Str(Str::new()));
    }
    let mut new_len = 0;
    if let Some(s) = db.get_mut(key, now).and_then(|e| str_of_mut(&mut e.value)) {
        if s.len() < offset + val.len() {
            s.resize(offset + val.len(), 0);
        }
        s[offset..offset + val.len()].copy_from_slice(val);
        new_len = s.len();
    }
    db.mark_raw(key);
    ctx.dirty(key, 1);
    ctx.notify(ev::STRING, "setrange", key);
    ctx.out.int(new_len as i64);
}

/// Result of the LCS dynamic program.
#[derive(Debug, PartialEq)]
pub(crate) struct Lcs {
    pub len: u32,
    /// The common subsequence itself (empty when not requested).
    pub string: Vec<u8>,
    /// Matching ranges, last first: (a_start, a_end, b_start, b_end).
    pub ranges: Vec<(u32, u32, u32, u32)>,
}

/// LCS of `a` and `b` with the same backtracking Redis uses, so ties and
/// range boundaries match. `want_seq` computes the string and ranges;
/// ranges shorter than `min_len` are dropped.
pub(crate) fn lcs(a: &[u8], b: &[u8], want_seq: bool, min_len: u64) -> Lcs {
    let (alen, blen) = (a.len(), b.len());
    let w = blen + 1;
    let mut t = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    let mut out = Lcs {
        len: total,
        string: Vec::new(),
        ranges: Vec::new(),
    };
    if !want_seq {
        return out;
    }
    let mut seq = vec![0u8; total as usize];
    let mut idx = total as usize;
    let (mut i, mut j) = (alen, blen);
    // `a_start == None` means no range is being tracked.
    let mut a_start: Option<usize> = None;
    let (mut a_end, mut b_start, mut b_end) = (0usize, 0usize, 0usize);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            seq[idx - 1] = a[i - 1];
            match a_start {
                None => {
                    a_start = Some(i - 1);
                    a_end = i - 1;
                    b_start = j - 1;
                    b_end = j - 1;
                }
                Some(s) if s == i && b_start == j => {
                    a_start = Some(s - 1);
                    b_start -= 1;
                }
                Some(_) => emit = true,
            }
            if a_start == Some(0) || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start.is_some() {
                emit = true;
            }
        }
        if emit {
            if let Some(s) = a_start {
                let match_len = (a_end - s + 1) as u64;
                if min_len == 0 || match_len >= min_len {
                    out.ranges
                        .push((s as u32, a_end as u32, b_start as u32, b_end as u32));
                }
            }
            a_start = None;
        }
    }
    out.string = seq;
    out
}

fn lcs_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    // Lengths first: the values are copied only once the table fits.
    let mut lens = [0usize; 2];
    let mut wrong = false;
    for (i, key) in args[1..3].iter().enumerate() {
        match ctx.lookup_read(key).map(|e| str_of(&e.value)) {
            None => {}
            Some(None) => wrong = true,
            Some(Some(s)) => lens[i] = s.len(),
        }
    }
    if wrong {
        ctx.out
            .err("ERR The specified keys must contain string values");
        return;
    }
    let (mut get_len, mut get_idx, mut with_len) = (false, false, false);
    let mut min_len: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j][..];
        if eq_ic(opt, "idx") {
            get_idx = true;
        } else if eq_ic(opt, "len") {
            get_len = true;
        } else if eq_ic(opt, "withmatchlen") {
            with_len = true;
        } else if eq_ic(opt, "minmatchlen") && j + 1 < args.len() {
            let Some(n) = parse_i64(&args[j + 1]) else {
                ctx.out.err(NOT_INT);
                return;
            };
            min_len = n.max(0);
            j += 1;
        } else {
            ctx.out.err(SYNTAX);
            return;
        }
        j += 1;
    }
    if get_len && get_idx {
        ctx.out
            .err("ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    let [alen, blen] = lens;
    if alen as u64 >= u32::MAX as u64 - 1 || blen as u64 >= u32::MAX as u64 - 1 {
        ctx.out.err("ERR String too long for LCS");
        return;
    }
    let table_bytes = (alen as u128 + 1) * (blen as u128 + 1) * 4;
    if table_bytes > proto_max_bulk_len(ctx) as u128 {
        ctx.out
            .err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return;
    }
    let now = ctx.now;
    let mut fetch = |key: &[u8]| {
        ctx.db(key)
            .peek(key, now)
            .and_then(|e| str_of(&e.value))
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (fetch(&args[1]), fetch(&args[2]));
    let r = lcs(&a, &b, get_idx || !get_len, min_len as u64);
    let out = &mut *ctx.out;
    if get_idx {
        out.map(2);
        out.bulk(b"matches");
        out.array(r.ranges.len());
        for &(a0, a1, b0, b1) in &r.ranges {
            out.array(2 + with_len as usize);
            out.array(2);
            out.int(a0 as i64);
            out.int(a1 as i64);
            out.array(2);
            out.int(b0 as i64);
            out.int(b1 as i64);
            if with_len {
                out.int((a1 - a0 + 1) as i64);
            }
        }
        out.bulk(b"len");
        out.int(r.len as i64);
    } else if get_len {
        out.int(r.len as i64);
    } else {
        out.bulk(&r.string);
    }
}

pub fn commands() -> Vec<Command> {
    vec![
        cmd("get", 2, READONLY | FAST, get_cmd).keys(1, 1, 1),
        cmd("set", -3, WRITE | DENYOOM, set_cmd).keys(1, 1, 1),
        cmd("setnx", 3, WRITE | DENYOOM | FAST, setnx_cmd).keys(1, 1, 1),
        cmd("setex", 4, WRITE | DENYOOM, setex_cmd).keys(1, 1, 1),
        cmd("psetex", 4, WRITE | DENYOOM, psetex_cmd).keys(1, 1, 1),
        cmd("mget", -2, READONLY | FAST, mget_cmd).keys(1, -1, 1),
        cmd("mset", -3, WRITE | DENYOOM, mset_cmd).keys(1, -1, 2),
        cmd("msetnx", -3, WRITE | DENYOOM, msetnx_cmd).keys(1, -1, 2),
        cmd("getset", 3, WRITE | DENYOOM | FAST, getset_cmd).keys(1, 1, 1),
        cmd("getdel", 2, WRITE | FAST, getdel_cmd).keys(1, 1, 1),
        cmd("getex", -2, WRITE | FAST, getex_cmd).keys(1, 1, 1),
        cmd("append", 3, WRITE | DENYOOM | FAST, append_cmd).keys(1, 1, 1),
        cmd("strlen", 2, READONLY | FAST, strlen_cmd).keys(1, 1, 1),
        cmd("incr", 2, WRITE | DENYOOM | FAST, incr_cmd).keys(1, 1, 1),
        cmd("decr", 2, WRITE | DENYOOM | FAST, decr_cmd).keys(1, 1, 1),
        cmd("incrby", 3, WRITE | DENYOOM | FAST, incrby_cmd).keys(1, 1, 1),
        cmd("decrby", 3, WRITE | DENYOOM | FAST, decrby_cmd).keys(1, 1, 1),
        cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, incrbyfloat_cmd).keys(1, 1, 1),
        cmd("getrange", 4, READONLY, getrange_cmd).keys(1, 1, 1),
        cmd("substr", 4, READONLY, getrange_cmd).keys(1, 1, 1),
        cmd("setrange", 4, WRITE | DENYOOM, setrange_cmd).keys(1, 1, 1),
        cmd("lcs", -3, READONLY, lcs_cmd).keys(1, 2, 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn range_math() {
        assert_eq!(getrange_bounds(0, -1, 5), Some((0, 4)));
        assert_eq!(getrange_bounds(-3, -1, 5), Some((2, 4)));
        assert_eq!(getrange_bounds(-1, -3, 5), None);
        assert_eq!(getrange_bounds(3, 1, 5), None);
        assert_eq!(getrange_bounds(0, 100, 5), Some((0, 4)));
        assert_eq!(getrange_bounds(-100, 1, 5), Some((0, 1)));
        assert_eq!(getrange_bounds(5, 10, 5), None);
        assert_eq!(getrange_bounds(0, -1, 0), None);
        assert_eq!(getrange_bounds(0, 0, 0), None);
        assert_eq!(getrange_bounds(i64::MIN, i64::MAX, 3), Some((0, 2)));
        // Redis clamps a negative end to 0, so (0, -100) still yields byte 0.
        assert_eq!(getrange_bounds(0, -100, 5), Some((0, 0)));
    }

    #[test]
    fn ext_options() {
        let a = b(&["set", "k", "v", "nx", "get", "ex", "10"]);
        let (f, e) = parse_ext_options(&a, true).unwrap();
        assert_eq!(f, F_NX | F_GET | F_EX);
        assert_eq!(e, Some(&b"10"[..]));
        assert!(parse_ext_options(&b(&["set", "k", "v", "nx", "xx"]), true).is_none());
        assert!(parse_ext_options(&b(&["set", "k", "v", "ex", "1", "px", "1"]), true).is_none());
        assert!(parse_ext_options(&b(&["set", "k", "v", "keepttl", "ex", "1"]), true).is_none());
        assert!(parse_ext_options(&b(&["set", "k", "v", "ex"]), true).is_none());
        assert!(parse_ext_options(&b(&["set", "k", "v", "persist"]), true).is_none());
        // A repeated EX is accepted; the last value wins.
        let a = b(&["set", "k", "v", "ex", "1", "EX", "2"]);
        assert_eq!(parse_ext_options(&a, true).unwrap().1, Some(&b"2"[..]));
        let a = b(&["getex", "k", "persist"]);
        assert_eq!(parse_ext_options(&a, false).unwrap().0, F_PERSIST);
        assert!(parse_ext_options(&b(&["getex", "k", "persist", "ex", "1"]), false).is_none());
        assert!(parse_ext_options(&b(&["getex", "k", "nx"]), false).is_none());
        assert!(parse_ext_options(&b(&["getex", "k", "keepttl"]), false).is_none());
    }

    #[test]
    fn float_incr() {
        let f = |c: Option<&str>, i: &str| {
            incr_float(c.map(str::as_bytes), i.as_bytes()).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(f(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(f(None, "3").unwrap(), "3");
        assert_eq!(f(Some("5.0e3"), "2.0e2").unwrap(), "5200");
        assert_eq!(f(Some("1"), "-1").unwrap(), "0");
        assert_eq!(f(Some("-0.5"), "0.5").unwrap(), "0");
        assert_eq!(f(Some("0.1"), "0.2").unwrap(), "0.3");
        assert!(f(Some("abc"), "1").is_err());
        assert!(f(Some("1"), " 1").is_err());
        assert!(f(Some("1"), "").is_err());
        assert!(f(Some("1"), "nan").is_err());
        assert_eq!(
            f(Some("1"), "inf").unwrap_err(),
            "ERR increment would produce NaN or Infinity"
        );
    }

    #[test]
    fn lcs_matches_redis() {
        // From the Redis LCS documentation.
        let r = lcs(b"ohmytext", b"mynewtext", true, 0);
        assert_eq!(r.string, b"mytext");
        assert_eq!(r.len, 6);
        assert_eq!(r.ranges, vec![(4, 7, 5, 8), (2, 3, 0, 1)]);
        let r = lcs(b"ohmytext", b"mynewtext", true, 4);
        assert_eq!(r.ranges, vec![(4, 7, 5, 8)]);
        let r = lcs(b"", b"abc", true, 0);
        assert_eq!((r.len, r.string.len(), r.ranges.len()), (0, 0, 0));
        assert_eq!(lcs(b"abc", b"abc", false, 0).len, 3);
    }

    #[test]
    fn itoa() {
        let mut buf = [0u8; 20];
        for n in [0, -1, 42, i64::MIN, i64::MAX] {
            assert_eq!(
                crate::protocol::fmt_i64(&mut buf, n),
                n.to_string().as_bytes()
            );
        }
    }
}
