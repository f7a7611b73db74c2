//! Set commands (Redis 7.0): SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD
//! SPOP SRANDMEMBER SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE
//! SDIFF SDIFFSTORE SSCAN.

use bytes::Bytes;

use crate::storage::notify as ev;
use std::sync::atomic::Ordering;

use super::hashes::{
    empty_scan, parse_scan_cursor, parse_scan_opts, parse_signed_count, sample_unique,
};
use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64, with_out};
use crate::protocol::Out;
use crate::storage::hash::scan_step;
use crate::storage::set::Set;
use crate::storage::{Entry, Value};

pub fn commands() -> Vec<Command> {
    vec![
        cmd("sadd", -3, WRITE | DENYOOM | FAST, sadd).keys(1, 1, 1),
        cmd("srem", -3, WRITE | FAST, srem).keys(1, 1, 1),
        cmd("smembers", 2, READONLY, sinter).keys(1, 1, 1),
        cmd("sismember", 3, READONLY | FAST, sismember).keys(1, 1, 1),
        cmd("smismember", -3, READONLY | FAST, smismember).keys(1, 1, 1),
        cmd("scard", 2, READONLY | FAST, scard).keys(1, 1, 1),
        cmd("spop", -2, WRITE | FAST, spop).keys(1, 1, 1),
        cmd("srandmember", -2, READONLY, srandmember).keys(1, 1, 1),
        cmd("smove", 4, WRITE | FAST, smove).keys(1, 2, 1),
        cmd("sinter", -2, READONLY, sinter).keys(1, -1, 1),
        cmd("sintercard", -3, READONLY, sintercard).keys(0, 0, 0),
        cmd("sinterstore", -3, WRITE | DENYOOM, sinterstore).keys(1, -1, 1),
        cmd("sunion", -2, READONLY, sunion).keys(1, -1, 1),
        cmd("sunionstore", -3, WRITE | DENYOOM, sunionstore).keys(1, -1, 1),
        cmd("sdiff", -2, READONLY, sdiff).keys(1, -1, 1),
        cmd("sdiffstore", -3, WRITE | DENYOOM, sdiffstore).keys(1, -1, 1),
        cmd("sscan", -3, READONLY, sscan).keys(1, 1, 1),
    ]
}

fn max_intset(ctx: &Ctx) -> usize {
    let e = &ctx.srv.encoding;
    e.set_max_intset_entries.load(Ordering::Relaxed) as usize
}

/// Read lookup: Ok(None) when missing, Err(()) on a wrong type.
fn read_set<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Set>, ()> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

fn write_set<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, ()> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// The stored set at `key`, with no expiry check (the caller looked it up).
fn stored_set<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Set> {
    match &mut ctx.db(key).dict.get_mut(key)?.value {
        Value::Set(s) => Some(s),
        _ => None,
    }
}

fn sadd(ctx: &mut Ctx, args: &[Bytes]) {
    let max = max_intset(ctx);
    let key = &args[1];
    match write_set(ctx, key) {
        Err(()) => return ctx.out.err(errors::WRONGTYPE),
        Ok(Some(_)) => {}
        Ok(None) => ctx.db(key).set(key, Value::Set(Set::new_for(&args[2]))),
    }
    let s = stored_set(ctx, key).expect("set just looked up");
    let added = args[2..].iter().filter(|m| s.add(m, max)).count();
    ctx.dirty(key, added as u64);
    if added > 0 {
        ctx.notify(ev::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
}

fn srem(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (removed, emptied) = match write_set(ctx, key) {
        Err(()) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => {
            let mut n = 0;
            for m in &args[2..] {
                if s.remove(m) {
                    n += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (n, s.is_empty())
        }
    };
    if removed > 0 {
        ctx.notify(ev::SET, "srem", key);
    }
    if emptied {
        ctx.db(key).remove(key);
        ctx.notify(ev::GENERIC, "del", key);
    }
    ctx.dirty(key, removed);
    ctx.out.int(removed as i64);
}

fn sismember(ctx: &mut Ctx, args: &[Bytes]) {
    match read_set(ctx, &args[1]).map(|s| s.is_some_and(|s| s.contains(&args[2]))) {
        Err(()) => ctx.out.err(errors::WRONGTYPE),
        Ok(b) => ctx.out.int(b as i64),
    }
}

fn smismember(ctx: &mut Ctx, args: &[Bytes]) {
    with_out(ctx, |ctx, out| match read_set(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(s) => {
            out.array(args.len() - 2);
            for m in &args[2..] {
                out.int(s.is_some_and(|s| s.contains(m)) as i64);
            }
        }
    })
}

fn scard(ctx: &mut Ctx, args: &[Bytes]) {
    match read_set(ctx, &args[1]).map(|s| s.map_or(0, |s| s.len())) {
        Err(()) => ctx.out.err(errors::WRONGTYPE),
        Ok(n) => ctx.out.int(n as i64),
    }
}

fn smove(ctx: &mut Ctx, args: &[Bytes]) {
    let (src, dst, ele) = (&args[1], &args[2], &args[3]);
    let src_state = write_set(ctx, src).map(|s| s.is_some());
    let dst_state = write_set(ctx, dst).map(|s| s.is_some());
    if src_state == Ok(false) {
        return ctx.out.int(0);
    }
    let (Ok(_), Ok(dst_exists)) = (src_state, dst_state) else {
        return ctx.out.err(errors::WRONGTYPE);
    };
    let s = stored_set(ctx, src).expect("source looked up");
    if src == dst {
        let is = s.contains(ele);
        return ctx.out.int(is as i64);
    }
    if !s.remove(ele) {
        return ctx.out.int(0);
    }
    let emptied = s.is_empty();
    ctx.notify(ev::SET, "srem", src);
    if emptied {
        ctx.db(src).remove(src);
        ctx.notify(ev::GENERIC, "del", src);
    }
    ctx.dirty(src, 1);
    if !dst_exists {
        ctx.db(dst).set(dst, Value::Set(Set::new_for(ele)));
    }
    let max = max_intset(ctx);
    let d = stored_set(ctx, dst).expect("destination present");
    if d.add(ele, max) {
        ctx.dirty(dst, 1);
        ctx.notify(ev::SET, "sadd", dst);
    }
    ctx.out.int(1);
}

fn spop(ctx: &mut Ctx, args: &[Bytes]) {
    match args.len() {
        2 => {}
        3 => return spop_count(ctx, args),
        _ => return ctx.out.err(errors::SYNTAX),
    }
    let key = &args[1];
    let (ele, emptied) = match write_set(ctx, key) {
        Err(()) => return ctx.out.err(errors::WRONGTYPE),
        Ok(None) => return ctx.out.null(),
        Ok(Some(s)) => {
            let i = fastrand::usize(..s.len());
            let ele = s.remove_index(i).expect("index in range");
            (ele, s.is_empty())
        }
    };
    ctx.notify(ev::SET, "spop", key);
    if emptied {
        ctx.db(key).remove(key);
        ctx.notify(ev::GENERIC, "del", key);
    }
    ctx.dirty(key, 1);
    ctx.out.bulk(&ele);
    // The member chosen here, not another random pick on the replica.
    crate::replication::propagate(ctx.db, &[b"SREM", &key[..], &ele[..]]);
}

/// SPOP with a count is replicated as Redis does: SREMs of the popped
/// members, at most this many per command.
const SPOP_PROPAGATE_BATCH: usize = 1024;

fn propagate_srems(dbi: usize, key: &[u8], popped: &[Vec<u8>]) {
    for chunk in popped.chunks(SPOP_PROPAGATE_BATCH) {
        let mut eff: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 2);
        eff.push(b"SREM");
        eff.push(key);
        eff.extend(chunk.iter().map(|m| &m[..]));
        crate::replication::propagate(dbi, &eff);
    }
}

/// Redis switches SPOP strategy when what stays is small next to what goes.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop_count(ctx: &mut Ctx, args: &[Bytes]) {
    // getPositiveLongFromObjectOrReply: one message for junk and negatives.
    let count = match parse_i64(&args[2]) {
        Some(n) if n >= 0 => n as usize,
        _ => return ctx.out.err("ERR value is out of range, must be positive"),
    };
    let key = &args[1];
    let max = max_intset(ctx);
    let dbi = ctx.db;
    with_out(ctx, |ctx, out| {
        let s = match write_set(ctx, key) {
            Err(()) => return out.err(errors::WRONGTYPE),
            Ok(None) => return out.set(0),
            Ok(Some(s)) => s,
        };
        if count == 0 {
            return out.set(0);
        }
        let size = s.len();
        ev::notify(ev::SET, "spop", key, dbi);
        if count >= size {
            // Redis replies with SUNION of the set: rebuilt from an intset.
            let mut all = Set::new_intset();
            s.iter().for_each(|m| {
                all.add(m, max);
            });
            reply_members(out, &all);
            ctx.db(key).remove(key);
            ctx.notify(ev::GENERIC, "del", key);
            ctx.dirty(key, size as u64);
            crate::replication::propagate(ctx.db, &[b"DEL", &key[..]]);
            return;
        }
        out.set(count);
        let remaining = size - count;
        let track = crate::replication::active();
        let mut popped: Vec<Vec<u8>> = Vec::new();
        if remaining * SPOP_MOVE_STRATEGY_MUL > count {
            for _ in 0..count {
                let i = fastrand::usize(..s.len());
                let m = s.remove_index(i).expect("index in range");
                out.bulk(&m);
                if track {
                    popped.push(m.to_vec());
                }
            }
        } else {
            // Keep `remaining` random members in a new set (whose encoding
            // Redis picks afresh) and reply with the rest.
            let mut kept: Option<Set> = None;
            for _ in 0..remaining {
                let i = fastrand::usize(..s.len());
                let m = s.remove_index(i).expect("index in range");
                kept.get_or_insert_with(|| Set::new_for(&m)).add(&m, max);
            }
            for m in s.iter() {
                out.bulk(m);
                if track {
                    popped.push(m.to_vec());
                }
            }
            *s = kept.expect("remaining > 0");
        }
        ctx.dirty(key, count as u64);
        if track {
            propagate_srems(ctx.db, key, &popped);
        }
    })
}

fn srandmember(ctx: &mut Ctx, args: &[Bytes]) {
    match args.len() {
        2 => {}
        3 => return srandmember_count(ctx, args),
        _ => return ctx.out.err(errors::SYNTAX),
    }
    with_out(ctx, |ctx, out| match read_set(ctx, &args[1]) {
        Err(()) => out.err(errors::WRONGTYPE),
        Ok(None) => out.null(),
        Ok(Some(s)) => out.bulk(s.get_index(fastrand::usize(..s.len())).unwrap()),
    })
}

fn srandmember_count(ctx: &mut Ctx, args: &[Bytes]) {
    let l = match parse_signed_count(&args[2]) {
        Ok(l) => l,
        Err(e) => return ctx.out.err(&e),
    };
    with_out(ctx, |ctx, out| {
        let s = match read_set(ctx, &args[1]) {
            Err(()) => return out.err(errors::WRONGTYPE),
            Ok(None) => return out.array(0),
            Ok(Some(s)) => s,
        };
        let count = l.unsigned_abs() as usize;
        let size = s.len();
        if count == 0 {
            return out.array(0);
        }
        if l < 0 || count == 1 {
            out.array(count);
            for _ in 0..count {
                out.bulk(s.get_index(fastrand::usize(..size)).unwrap());
            }
            return;
        }
        if count >= size {
            return reply_array(out, s);
        }
        out.array(count);
        for i in sample_unique(size, count, !s.is_hashtable()) {
            out.bulk(s.get_index(i).unwrap());
        }
    })
}

fn reply_members(out: &mut Out, s: &Set) {
    out.set(s.len());
    s.iter().for_each(|m| out.bulk(m));
}

fn reply_array(out: &mut Out, s: &Set) {
    out.array(s.len());
    s.iter().for_each(|m| out.bulk(m));
}

// ---------------------------------------------------------------------------
// Multi-key operations. The source sets are moved out of their entries for
// the computation (so several can be borrowed at once across shards) and
// put back before anything is written.

struct Taken {
    /// Per argument key: index into `sets`, None for a missing key.
    slots: Vec<Option<usize>>,
    keys: Vec<Bytes>,
    sets: Vec<Set>,
}

impl Taken {
    fn get(&self, j: usize) -> Option<&Set> {
        self.slots[j].map(|i| &self.sets[i])
    }

    fn restore(self, ctx: &mut Ctx) {
        for (k, s) in self.keys.into_iter().zip(self.sets) {
            if let Some(slot) = stored_set(ctx, &k) {
                *slot = s;
            }
        }
    }
}

/// Looks every key up for reading (in order, as Redis does) and takes the
/// sets out. Err(()) on the first wrong type, with everything restored.
fn take_sets(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Taken, ()> {
    let mut t = Taken {
        slots: Vec::with_capacity(keys.len()),
        keys: Vec::new(),
        sets: Vec::new(),
    };
    for k in keys {
        let present = match read_set(ctx, k) {
            Ok(s) => s.is_some(),
            Err(()) => {
                t.restore(ctx);
                return Err(());
            }
        };
        if !present {
            t.slots.push(None);
        } else if let Some(i) = t.keys.iter().position(|x| x == k) {
            t.slots.push(Some(i));
        } else {
            let s = std::mem::take(stored_set(ctx, k).expect("set just looked up"));
            t.slots.push(Some(t.sets.len()));
            t.keys.push(k.clone());
            t.sets.push(s);
        }
    }
    Ok(t)
}

/// Where a set operation's result goes.
enum Dest<'a> {
    Reply,
    Store(&'a Bytes),
    /// SINTERCARD: the cardinality, stopping at the limit (0 = none).
    Card(usize),
}

/// Stores `result` at `dst` (or deletes `dst` when empty) and replies with
/// the size, as the *STORE commands do.
fn store_result(ctx: &mut Ctx, dst: &Bytes, result: Set, event: &'static str) {
    // Expire a stale destination first, like Redis's lookups do.
    let _ = ctx.lookup_write(dst);
    let n = result.len();
    if n > 0 {
        ctx.db(dst).set(dst, Value::Set(result));
        ctx.dirty(dst, 1);
        ctx.notify(ev::SET, event, dst);
    } else if ctx.db(dst).remove(dst).is_some() {
        ctx.dirty(dst, 1);
        ctx.notify(ev::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

fn sinter(ctx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(ctx, &args[1..], Dest::Reply)
}

fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(ctx, &args[2..], Dest::Store(&args[1]))
}

fn sintercard(ctx: &mut Ctx, args: &[Bytes]) {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => return ctx.out.err("ERR numkeys should be greater than 0"),
    };
    if numkeys > args.len() - 2 {
        return ctx
            .out
            .err("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        let more = j + 1 < args.len();
        if eq_ic(&args[j], "limit") && more {
            j += 1;
            match parse_i64(&args[j]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return ctx.out.err("ERR LIMIT can't be negative"),
            }
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        j += 1;
    }
    sinter_generic(ctx, &args[2..2 + numkeys], Dest::Card(limit))
}

fn sinter_generic(ctx: &mut Ctx, keys: &[Bytes], dest: Dest) {
    let Ok(t) = take_sets(ctx, keys) else {
        return ctx.out.err(errors::WRONGTYPE);
    };
    let max = max_intset(ctx);
    let sets: Option<Vec<&Set>> = (0..keys.len()).map(|j| t.get(j)).collect();
    // Walk the smallest set (stable sort: ties keep key order, like glibc's
    // merge-sort qsort) and keep what every other set has.
    let mut inter: Vec<Vec<u8>> = Vec::new();
    let mut card = 0usize;
    if let Some(mut sets) = sets {
        sets.sort_by_key(|s| s.len());
        for m in sets[0].iter() {
            if sets[1..].iter().all(|s| s.contains(m)) {
                card += 1;
                match dest {
                    Dest::Card(limit) if limit > 0 && card >= limit => break,
                    Dest::Card(_) => {}
                    _ => inter.push(m.to_vec()),
                }
            }
        }
    }
    t.restore(ctx);
    match dest {
        Dest::Card(_) => ctx.out.int(card as i64),
        Dest::Reply => {
            ctx.out.set(inter.len());
            inter.iter().for_each(|m| ctx.out.bulk(m));
        }
        Dest::Store(dst) => {
            let mut result = Set::new_intset();
            inter.iter().for_each(|m| {
                result.add(m, max);
            });
            store_result(ctx, dst, result, "sinterstore");
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

impl Op {
    fn store_event(self) -> &'static str {
        if self == Op::Union {
            "sunionstore"
        } else {
            "sdiffstore"
        }
    }
}

fn sunion(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(ctx, &args[1..], None, Op::Union)
}

fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(ctx, &args[2..], Some(&args[1]), Op::Union)
}

fn sdiff(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(ctx, &args[1..], None, Op::Diff)
}

fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(ctx, &args[2..], Some(&args[1]), Op::Diff)
}

fn sunion_diff(ctx: &mut Ctx, keys: &[Bytes], dst: Option<&Bytes>, op: Op) {
    let Ok(t) = take_sets(ctx, keys) else {
        return ctx.out.err(errors::WRONGTYPE);
    };
    let max = max_intset(ctx);
    let sets: Vec<Option<&Set>> = (0..keys.len()).map(|j| t.get(j)).collect();
    let result = match op {
        Op::Union => union_of(&sets, max),
        Op::Diff => {
            let same = t.slots[0].is_some() && t.slots[1..].contains(&t.slots[0]);
            if same {
                Set::new_intset()
            } else {
                diff_of(&sets, max)
            }
        }
    };
    t.restore(ctx);
    match dst {
        None => reply_members(ctx.out, &result),
        Some(dst) => store_result(ctx, dst, result, op.store_event()),
    }
}

/// Union built the way Redis builds it: into a fresh intset, so the result
/// encoding (and, for an intset, the order) follows the content.
fn union_of(sets: &[Option<&Set>], max: usize) -> Set {
    let mut r = Set::new_intset();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            r.add(m, max);
        }
    }
    r
}

/// Difference with Redis's choice between its two algorithms, which can
/// leave different encodings: algorithm 2 adds all of the first set before
/// removing, so a transient non-integer or overflow converts the result.
fn diff_of(sets: &[Option<&Set>], max: usize) -> Set {
    let mut r = Set::new_intset();
    let Some(first) = sets[0] else {
        return r;
    };
    let present: Vec<&Set> = sets.iter().flatten().copied().collect();
    let one = (first.len() * present.len()) / 2;
    let two: usize = present.iter().map(|s| s.len()).sum();
    if one <= two {
        let others = &sets[1..];
        for m in first.iter() {
            if !others.iter().flatten().any(|s| s.contains(m)) {
                r.add(m, max);
            }
        }
    } else {
        for m in first.iter() {
            r.add(m, max);
        }
        for s in sets[1..].iter().flatten() {
            if r.is_empty() {
                break;
            }
            for m in s.iter() {
                r.remove(m);
            }
        }
    }
    r
}

fn sscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_scan_cursor(&args[2]) else {
        return ctx.out.err("ERR invalid cursor");
    };
    with_out(ctx, |ctx, out| {
        let s = match read_set(ctx, &args[1]) {
            Err(()) => return out.err(errors::WRONGTYPE),
            Ok(None) => return empty_scan(out),
            Ok(Some(s)) => s,
        };
        let opts = match parse_scan_opts(&args[3..]) {
            Ok(o) => o,
            Err(e) => return out.err(e),
        };
        let mut found: Vec<usize> = Vec::new();
        let next = if s.is_hashtable() {
            let (next, pos) = scan_step(s.len(), cursor, opts.count);
            found.extend(pos);
            next
        } else {
            // An intset is small: everything in one call, cursor 0.
            found.extend(0..s.len());
            0
        };
        found.retain(|&i| opts.matches(s.get_index(i).unwrap()));
        out.array(2);
        out.bulk(next.to_string().as_bytes());
        out.array(found.len());
        for i in found {
            out.bulk(s.get_index(i).unwrap());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ms: &[&str]) -> Set {
        Set::from_members(ms.iter().map(|m| m.as_bytes()), 512)
    }

    fn strs(s: &Set) -> Vec<String> {
        s.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn union_result_encoding_follows_content() {
        let mut a = set(&["3", "x"]);
        a.remove(b"x");
        assert_eq!(a.encoding(), "hashtable");
        let b = set(&["1", "2"]);
        let u = union_of(&[Some(&a), Some(&b), None], 512);
        assert_eq!(u.encoding(), "intset");
        assert_eq!(strs(&u), ["1", "2", "3"]);
    }

    #[test]
    fn diff_algorithms() {
        // Algorithm 1 (first set small): only survivors are added.
        let a = set(&["1", "2", "x"]);
        let b = set(&["x"]);
        let d = diff_of(&[Some(&a), Some(&b)], 512);
        assert_eq!(strs(&d), ["1", "2"]);
        assert_eq!(d.encoding(), "intset");
        // Algorithm 2 (first set big next to the rest): add all, remove.
        let a = set(&["1", "2", "3", "4", "5", "6", "x"]);
        let (c, e) = (set(&["y"]), set(&["z"]));
        let d = diff_of(&[Some(&a), Some(&b), Some(&c), Some(&e)], 512);
        assert_eq!(d.len(), 6);
        assert_eq!(d.encoding(), "hashtable");
        assert!(diff_of(&[None, Some(&b)], 512).is_empty());
    }
}
