//! Keyspace commands (DEL, EXISTS, SCAN, RENAME, EXPIRE...) and DEBUG.
//!
//! Multi-key commands reach each key through `ctx.db(key)`: routing holds
//! every shard involved. Whole-keyspace commands are `AllShards` and walk
//! `ctx.held_shards()`.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::protocol::Out;
use crate::storage::{Db, Entry, Record, Str, Value, digest, expire};
use crate::util::glob_match;

pub fn commands() -> Vec<Command> {
    vec![
        cmd("del", -2, WRITE, del).keys(1, -1, 1),
        cmd("unlink", -2, WRITE | FAST, unlink).keys(1, -1, 1),
        cmd("exists", -2, READONLY | FAST, exists).keys(1, -1, 1),
        cmd("type", 2, READONLY | FAST, type_cmd).keys(1, 1, 1),
        cmd("touch", -2, READONLY | FAST, touch).keys(1, -1, 1),
        cmd("keys", 2, READONLY, keys_cmd).all_shards(),
        cmd("scan", -2, READONLY, scan).all_shards(),
        cmd("randomkey", 1, READONLY, randomkey).all_shards(),
        cmd("rename", 3, WRITE, rename).keys(1, 2, 1),
        cmd("renamenx", 3, WRITE | FAST, renamenx).keys(1, 2, 1),
        cmd("move", 3, WRITE | FAST, move_cmd).keys(1, 1, 1),
        cmd("copy", -3, WRITE | DENYOOM, copy).keys(1, 2, 1),
        cmd("dbsize", 1, READONLY | FAST, dbsize).all_shards(),
        cmd("flushdb", -1, WRITE | TOUCHES_OWN_WATCHES, flushdb)
            .all_shards()
            .special(Special::Flush),
        cmd("flushall", -1, WRITE | TOUCHES_OWN_WATCHES, flushall)
            .all_shards()
            .special(Special::Flush),
        cmd("swapdb", 3, WRITE | FAST | TOUCHES_OWN_WATCHES, swapdb).all_shards(),
        cmd("object", -2, READONLY, object).keys(2, 2, 1),
        cmd("expire", -3, WRITE | FAST, expire).keys(1, 1, 1),
        cmd("pexpire", -3, WRITE | FAST, pexpire).keys(1, 1, 1),
        cmd("expireat", -3, WRITE | FAST, expireat).keys(1, 1, 1),
        cmd("pexpireat", -3, WRITE | FAST, pexpireat).keys(1, 1, 1),
        cmd("ttl", 2, READONLY | FAST, ttl).keys(1, 1, 1),
        cmd("pttl", 2, READONLY | FAST, pttl).keys(1, 1, 1),
        cmd("expiretime", 2, READONLY | FAST, expiretime).keys(1, 1, 1),
        cmd("pexpiretime", 2, READONLY | FAST, pexpiretime).keys(1, 1, 1),
        cmd("persist", 2, WRITE | FAST, persist).keys(1, 1, 1),
        cmd(
            "debug",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
            debug,
        )
        .all_shards(),
    ]
}

// ---------------------------------------------------------------- helpers

/// Whether the entry at position `i` of `db` has a TTL that passed.
fn is_expired(db: &Db, i: usize, now: u64) -> bool {
    db.dict[i].has_ttl() && db.dict.expire_at(i) <= now
}

/// Read lookup without touching the LRU clock (Redis's LOOKUP_NOTOUCH):
/// deletes the key if expired and counts a keyspace hit or miss.
fn lookup_notouch<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c Entry> {
    let now = ctx.now;
    let dbi = ctx.db;
    let store = ctx.store_of(key);
    if store.dbs[dbi].expire_if_needed(key, now) {
        store.stats.expired_keys += 1;
    }
    if store.dbs[dbi].peek(key, now).is_some() {
        store.stats.keyspace_hits += 1;
        store.dbs[dbi].peek(key, now)
    } else {
        store.stats.keyspace_misses += 1;
        None
    }
}

/// Deletes `key` from DB `dbi` on its shard if it is expired (counted).
/// Returns true if the key is (still) there and live afterwards.
fn exists_for_write(ctx: &mut Ctx, key: &[u8], dbi: usize) -> bool {
    let now = ctx.now;
    let store = ctx.store_of(key);
    if store.dbs[dbi].expire_if_needed(key, now) {
        store.stats.expired_keys += 1;
    }
    store.dbs[dbi].peek(key, now).is_some()
}

/// Stores `rec` under `key`, overwriting an existing key in place so it
/// keeps its dict position (a SCAN in progress does not miss it).
fn put_entry(db: &mut Db, key: &[u8], rec: Record) {
    db.insert_entry(key, rec);
}

/// Like Redis's dbAdd: a list, zset or stream appearing under `key` in DB `dbi`
/// (RENAME, MOVE, COPY) may serve clients blocked on it.
fn signal_added(ctx: &mut Ctx, key: &[u8], dbi: usize) {
    let store = ctx.store_of(key);
    let servable = matches!(
        store.dbs[dbi].dict.get(key).map(|e| &e.value),
        Some(Value::List(_) | Value::ZSet(_) | Value::Stream(_))
    );
    let k: Box<[u8]> = key.into();
    if servable && store.blocked.contains_key(&(dbi, k.clone())) {
        store.ready_keys.push((dbi, k));
    }
}

/// getIntFromObjectOrReply: `msg` replaces every error when given.
fn parse_int(arg: &[u8], msg: Option<&str>) -> Result<i64, String> {
    let v = parse_i64(arg).ok_or_else(|| msg.unwrap_or(errors::NOT_INT).to_string())?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(msg
            .unwrap_or("ERR value is out of range, value must between -2147483648 and 2147483647")
            .to_string());
    }
    Ok(v)
}

/// A DB index argument of MOVE / COPY ... DB.
fn parse_db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, String> {
    let id = parse_int(arg, None)?;
    if id < 0 || id as usize >= ctx.srv.databases {
        return Err("ERR DB index is out of range".into());
    }
    Ok(id as usize)
}

fn is_lfu_policy(ctx: &Ctx) -> bool {
    ctx.srv
        .config
        .read()
        .unwrap()
        .get("maxmemory-policy")
        .ends_with("-lfu")
}

/// The encoding Redis would report for a string created by SET.
fn str_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && parse_i64(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// OBJECT ENCODING as Redis 7.0 picks it. Sets and hashes track their
/// one-way conversion themselves, as do zsets.
fn encoding(_ctx: &Ctx, v: &Value, raw: bool) -> &'static str {
    match v {
        Value::Str(_) if raw => "raw",
        Value::Str(s) => str_encoding(s),
        // 7.0 lists are always quicklists.
        Value::List(_) => "quicklist",
        Value::Set(set) => set.encoding(),
        Value::Stream(_) => "stream",
        Value::Hash(h) => h.encoding(),
        Value::ZSet(z) => z.encoding(),
    }
}

/// Redis shares the objects of integers 0..9999 (refcount INT_MAX) unless
/// maxmemory is set with an LRU/LFU policy.
fn refcount(ctx: &Ctx, v: &Value) -> i64 {
    match v {
        Value::Str(s) => {
            let shared =
                matches!(parse_i64(s), Some(n) if (0..10000).contains(&n) && s.len() <= 20);
            if !shared {
                return 1;
            }
            let cfg = ctx.srv.config.read().unwrap();
            let policy = cfg.get("maxmemory-policy");
            let no_shared = policy.ends_with("-lru") || policy.ends_with("-lfu");
            if cfg.get_i64("maxmemory") == 0 || !no_shared {
                i32::MAX as i64
            } else {
                1
            }
        }
        _ => 1,
    }
}

fn idle_secs(e: &Entry, now_ms: u64) -> u64 {
    (now_ms / 1000).saturating_sub(e.lru as u64)
}

fn write_help(out: &mut Out, cmd_name: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        cmd_name.to_ascii_uppercase()
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

// ---------------------------------------------------------------- DEL & co

fn del_generic(ctx: &mut Ctx, args: &[Bytes]) {
    let now = ctx.now;
    let dbi = ctx.db;
    let mut n = 0;
    for k in &args[1..] {
        let store = ctx.store_of(k);
        if store.dbs[dbi].expire_if_needed(k, now) {
            store.stats.expired_keys += 1;
        }
        if store.dbs[dbi].remove(k).is_some() {
            store.dirty += 1;
            n += 1;
            ev::notify(ev::GENERIC, "del", k, dbi);
            // XREADGROUP waiters on a deleted stream must be told (-UNBLOCKED);
            // others re-check and stay blocked.
            let dbkey = (dbi, Box::<[u8]>::from(&k[..]));
            if !store.blocked.is_empty() && store.blocked.contains_key(&dbkey) {
                store.ready_keys.push(dbkey);
            }
        }
    }
    ctx.out.int(n);
}

fn del(ctx: &mut Ctx, args: &[Bytes]) {
    del_generic(ctx, args)
}

// Values are freed inline: strings are cheap to drop. Large aggregates may
// want a background drop once those types exist.
fn unlink(ctx: &mut Ctx, args: &[Bytes]) {
    del_generic(ctx, args)
}

fn exists(ctx: &mut Ctx, args: &[Bytes]) {
    let mut n = 0;
    for k in &args[1..] {
        if lookup_notouch(ctx, k).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn touch(ctx: &mut Ctx, args: &[Bytes]) {
    let mut n = 0;
    for k in &args[1..] {
        if ctx.lookup_read(k).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn type_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let t = lookup_notouch(ctx, &args[1]).map_or("none", |e| e.value.type_name());
    ctx.out.simple(t);
}

// ---------------------------------------------------------------- KEYS, SCAN, RANDOMKEY, DBSIZE

fn keys_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let pat = &args[1][..];
    // A lone "*" also matches the empty key, which glob_match does not.
    let all = pat == b"*";
    let now = ctx.now;
    let dbi = ctx.db;
    let mut body = Out::new(ctx.out.resp3);
    let mut n = 0;
    for i in ctx.held_shards() {
        let db = &ctx.store(i).dbs[dbi];
        for (j, (k, _)) in db.dict.iter().enumerate() {
            if (all || glob_match(pat, k, false)) && !is_expired(db, j, now) {
                body.bulk(k);
                n += 1;
            }
        }
    }
    ctx.out.array(n);
    ctx.out.raw(&body.buf);
}

/// strtoul(s, &end, 10) accepting only a fully consumed string, as Redis's
/// parseScanCursorOrReply: "" is 0, a leading '-' wraps, overflow fails.
fn parse_cursor(s: &[u8]) -> Option<u64> {
    if s.first().is_some_and(|c| c.is_ascii_whitespace()) {
        return None;
    }
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoul consumed nothing: fine only for the empty string.
        return s.is_empty().then_some(0);
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

/// SCAN cursor over all shards: `v * nshards + shard`, where v = 0 starts
/// the shard and v = p + 1 resumes at dict position p. Each shard's dict is
/// walked from its last position down to 0: `swap_remove` only moves the
/// last (already visited) element into a hole, and inserts append at the
/// end, so keys present for the whole scan are never missed.
fn scan(ctx: &mut Ctx, args: &[Bytes]) {
    crate::replication::touches_arbitrary_keys();
    let Some(cursor) = parse_cursor(&args[1]) else {
        ctx.out.err("ERR invalid cursor");
        return;
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if eq_ic(&args[i], "count") && more {
            let Some(c) = parse_i64(&args[i + 1]) else {
                ctx.out.err(errors::NOT_INT);
                return;
            };
            if c < 1 {
                ctx.out.err(errors::SYNTAX);
                return;
            }
            count = c;
        } else if eq_ic(&args[i], "match") && more {
            let p = &args[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else if eq_ic(&args[i], "type") && more {
            type_name = Some(&args[i + 1][..]);
        } else {
            ctx.out.err(errors::SYNTAX);
            return;
        }
        i += 2;
    }

    let nshards = ctx.nshards() as u64;
    let dbi = ctx.db;
    let count = count as usize;
    let mut shard = (cursor % nshards) as usize;
    let mut resume = cursor / nshards;
    let mut keys: Vec<Box<[u8]>> = Vec::new();
    let next;
    loop {
        let dict = &ctx.store(shard).dbs[dbi].dict;
        let len = dict.len() as u64;
        // Next position to visit, plus one (0 = shard done).
        let mut left = if resume == 0 { len } else { resume.min(len) };
        while left > 0 && keys.len() < count {
            left -= 1;
            keys.push(dict.get_index(left as usize).unwrap().0.into());
        }
        if left > 0 {
            next = left * nshards + shard as u64;
            break;
        }
        shard += 1;
        resume = 0;
        if shard as u64 >= nshards {
            next = 0;
            break;
        }
        if keys.len() >= count {
            next = shard as u64;
            break;
        }
    }

    // Filter as Redis: pattern, then type (a NOTOUCH lookup), then expiry.
    let now = ctx.now;
    let mut body = Out::new(ctx.out.resp3);
    let mut n = 0;
    for k in keys {
        if let Some(p) = pattern
            && !glob_match(p, &k, false)
        {
            continue;
        }
        if let Some(t) = type_name {
            let actual = lookup_notouch(ctx, &k).map_or("none", |e| e.value.type_name());
            if !t.eq_ignore_ascii_case(actual.as_bytes()) {
                continue;
            }
        }
        let store = ctx.store_of(&k);
        if store.dbs[dbi].expire_if_needed(&k, now) {
            store.stats.expired_keys += 1;
            continue;
        }
        if store.dbs[dbi].peek(&k, now).is_none() {
            continue; // expired on a replica: hidden, not deleted
        }
        body.bulk(&k);
        n += 1;
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(n);
    ctx.out.raw(&body.buf);
}

fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::replication::touches_arbitrary_keys();
    let dbi = ctx.db;
    let now = ctx.now;
    let held = ctx.held_shards();
    let mut tries = 100;
    loop {
        let sizes: Vec<usize> = held.iter().map(|&i| ctx.store(i).dbs[dbi].len()).collect();
        let total: usize = sizes.iter().sum();
        if total == 0 {
            ctx.out.null();
            return;
        }
        // Pick a shard weighted by its size, then a key uniformly in it.
        let mut r = fastrand::usize(0..total);
        let mut si = 0;
        while r >= sizes[si] {
            r -= sizes[si];
            si += 1;
        }
        let store = ctx.store(held[si]);
        let db = &mut store.dbs[dbi];
        let all_volatile = db.len() == db.expires_len();
        let key = db.dict.get_index(r).unwrap().0.to_vec();
        if is_expired(db, r, now) {
            if db.replica_mode {
                // A replica cannot delete: give up after some tries, as Redis.
                tries -= 1;
                if all_volatile && tries == 0 {
                    ctx.out.bulk(&key);
                    return;
                }
                continue;
            }
            db.remove_expired(&key);
            store.stats.expired_keys += 1;
            continue;
        }
        ctx.out.bulk(&key);
        return;
    }
}

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) {
    let dbi = ctx.db;
    let n: usize = ctx
        .held_shards()
        .into_iter()
        .map(|i| ctx.store(i).dbs[dbi].len())
        .sum();
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------- RENAME, MOVE, COPY

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) {
    let (src, dst) = (&args[1][..], &args[2][..]);
    if ctx.lookup_write(src).is_none() {
        ctx.out.err(errors::NO_SUCH_KEY);
        return;
    }
    if src == dst {
        if nx {
            ctx.out.int(0)
        } else {
            ctx.out.ok()
        }
        return;
    }
    let dbi = ctx.db;
    if exists_for_write(ctx, dst, dbi) && nx {
        ctx.out.int(0);
        return;
    }
    let entry = ctx.db(src).remove(src).expect("looked up above");
    put_entry(ctx.db(dst), dst, entry);
    ev::notify(ev::NEW, "new", dst, dbi);
    ctx.notify(ev::GENERIC, "rename_from", src);
    ctx.notify(ev::GENERIC, "rename_to", dst);
    signal_added(ctx, dst, dbi);
    // The source is gone: its XREADGROUP waiters are told (dbDelete).
    ctx.signal_ready(src);
    ctx.dirty(dst, 1);
    if nx { ctx.out.int(1) } else { ctx.out.ok() }
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &[Bytes]) {
    rename_generic(ctx, args, true)
}

// A key lives on the same shard in every DB, so the key spec covers both ends.
fn move_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.srv.cluster.is_some() {
        return ctx.out.err("ERR MOVE is not allowed in cluster mode");
    }
    let key = &args[1][..];
    let dst = match parse_db_index(ctx, &args[2]) {
        Ok(d) => d,
        Err(e) => {
            ctx.out.err(&e);
            return;
        }
    };
    if dst == ctx.db {
        ctx.out
            .err("ERR source and destination objects are the same");
        return;
    }
    if ctx.lookup_write(key).is_none() || exists_for_write(ctx, key, dst) {
        ctx.out.int(0);
        return;
    }
    let entry = ctx.db(key).remove(key).expect("looked up above");
    ctx.db_n(key, dst).insert_entry(key, entry);
    ev::notify(ev::NEW, "new", key, dst);
    ctx.notify(ev::GENERIC, "move_from", key);
    ev::notify(ev::GENERIC, "move_to", key, dst);
    signal_added(ctx, key, dst);
    ctx.dirty(key, 1);
    ctx.out.int(1);
}

fn copy(ctx: &mut Ctx, args: &[Bytes]) {
    let (src, dst) = (&args[1][..], &args[2][..]);
    let mut replace = false;
    let mut dst_db = ctx.db;
    let mut j = 3;
    while j < args.len() {
        if eq_ic(&args[j], "replace") {
            replace = true;
        } else if eq_ic(&args[j], "db") && j + 1 < args.len() {
            match parse_db_index(ctx, &args[j + 1]) {
                Ok(d) => dst_db = d,
                Err(e) => {
                    ctx.out.err(&e);
                    return;
                }
            }
            j += 1;
        } else {
            ctx.out.err(errors::SYNTAX);
            return;
        }
        j += 1;
    }
    if ctx.srv.cluster.is_some() && (ctx.db != 0 || dst_db != 0) {
        ctx.out
            .err("ERR Copying to another database is not allowed in cluster mode");
        return;
    }
    if dst_db == ctx.db && src == dst {
        ctx.out
            .err("ERR source and destination objects are the same");
        return;
    }
    let Some(e) = ctx.lookup_read(src) else {
        ctx.out.int(0);
        return;
    };
    let (value, raw) = (e.value.clone(), e.raw);
    let expire_at = ctx.db(src).expire_of(src);
    if exists_for_write(ctx, dst, dst_db) && !replace {
        ctx.out.int(0);
        return;
    }
    let entry = Record {
        freq: crate::storage::evict::LFU_INIT_VAL,
        value,
        expire_at,
        lru: (ctx.now / 1000) as u32,
        raw,
    };
    put_entry(ctx.db_n(dst, dst_db), dst, entry);
    ev::notify(ev::NEW, "new", dst, dst_db);
    ev::notify(ev::GENERIC, "copy_to", dst, dst_db);
    signal_added(ctx, dst, dst_db);
    ctx.dirty(dst, 1);
    ctx.out.int(1);
}

// ---------------------------------------------------------------- FLUSHDB, FLUSHALL, SWAPDB

/// [ASYNC|SYNC]; None after replying a syntax error.
fn flush_async(ctx: &mut Ctx, args: &[Bytes]) -> Option<bool> {
    match args.len() {
        1 => Some(
            ctx.srv
                .config
                .read()
                .unwrap()
                .get_bool("lazyfree-lazy-user-flush"),
        ),
        2 if eq_ic(&args[1], "sync") => Some(false),
        2 if eq_ic(&args[1], "async") => Some(true),
        _ => {
            ctx.out.err(errors::SYNTAX);
            None
        }
    }
}

/// Empties DB `dbi` (all DBs if None) on every held shard; returns the
/// number of keys removed. ASYNC drops the old dicts on a helper thread.
pub(crate) fn empty_data(ctx: &mut Ctx, dbi: Option<usize>, lazy: bool) -> u64 {
    let mut removed = 0u64;
    let mut garbage = Vec::new();
    let now = ctx.now;
    for i in ctx.held_shards() {
        let store = ctx.store(i);
        if !store.watched.is_empty() {
            for j in 0..store.dbs.len() {
                if dbi.is_none_or(|d| d == j) {
                    crate::server::watch::touch_existing(store, j, now);
                }
            }
        }
        let mut n = 0;
        for (j, db) in store.dbs.iter_mut().enumerate() {
            if dbi.is_some_and(|d| d != j) || db.is_empty() {
                continue;
            }
            n += db.len() as u64;
            if lazy {
                garbage.push(std::mem::take(&mut db.dict));
            } else {
                db.clear();
            }
        }
        store.dirty += n;
        removed += n;
        // XREADGROUP waiters on an emptied DB are told their stream is gone
        // (scanDatabaseForDeletedStreams); others re-check and stay blocked.
        let gone: Vec<(usize, Box<[u8]>)> = store
            .blocked
            .keys()
            .filter(|(d, _)| dbi.is_none_or(|x| x == *d))
            .cloned()
            .collect();
        store.ready_keys.extend(gone);
    }
    // Like Redis's lazyfree threshold: small sets are not worth a thread.
    if removed > 64 {
        LAZYFREE_PENDING.fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
        std::thread::spawn(move || {
            drop(garbage);
            LAZYFREE_PENDING.fetch_sub(removed, std::sync::atomic::Ordering::Relaxed);
            LAZYFREED.fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
        });
    }
    removed
}

/// INFO lazyfree_pending_objects: keys of flushed DBs a thread still frees.
pub static LAZYFREE_PENDING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// INFO lazyfreed_objects: keys freed by those threads so far.
pub static LAZYFREED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(lazy) = flush_async(ctx, args) else {
        return;
    };
    let dbi = ctx.db;
    empty_data(ctx, Some(dbi), lazy);
    // Replicated even when there was nothing to flush, as Redis.
    crate::replication::propagate(dbi, args);
    ctx.out.ok();
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(lazy) = flush_async(ctx, args) else {
        return;
    };
    empty_data(ctx, None, lazy);
    crate::replication::propagate(ctx.db, args);
    let srv = ctx.srv;
    crate::server::persist::after_flushall(srv, &mut super::snapshot::all_stores(ctx));
    // Redis counts one more change for FLUSHALL itself.
    if let Some(&i) = ctx.held_shards().first() {
        ctx.store(i).dirty += 1;
    }
    ctx.out.ok();
}

fn swapdb(ctx: &mut Ctx, args: &[Bytes]) {
    // Cluster mode has DB 0 only.
    if ctx.srv.cluster.is_some() {
        return ctx.out.err("ERR SWAPDB is not allowed in cluster mode");
    }
    let a = match parse_int(&args[1], Some("ERR invalid first DB index")) {
        Ok(v) => v,
        Err(e) => return ctx.out.err(&e),
    };
    let b = match parse_int(&args[2], Some("ERR invalid second DB index")) {
        Ok(v) => v,
        Err(e) => return ctx.out.err(&e),
    };
    let n = ctx.srv.databases as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        ctx.out.err("ERR DB index is out of range");
        return;
    }
    let (a, b) = (a as usize, b as usize);
    let held = ctx.held_shards();
    if a != b {
        let (lo, hi) = (a.min(b), a.max(b));
        let now = ctx.now;
        for &i in &held {
            crate::server::watch::touch_swapped(ctx.store(i), a, b, now);
            let (left, right) = ctx.store(i).dbs.split_at_mut(hi);
            let (x, y) = (&mut left[lo], &mut right[0]);
            // Contents move; per-DB flags such as replica_mode stay put.
            std::mem::swap(&mut x.dict, &mut y.dict);
            // Clients stay in their DB: every key of theirs is re-checked
            // (scanDatabaseForReadyKeys, and XREADGROUP's stream gone or
            // replaced: scanDatabaseForDeletedStreams); a waiter that finds
            // nothing for it stays blocked.
            let store = ctx.store(i);
            let ready: Vec<(usize, Box<[u8]>)> = store
                .blocked
                .keys()
                .filter(|(d, _)| *d == a || *d == b)
                .cloned()
                .collect();
            store.ready_keys.extend(ready);
        }
    }
    if let Some(&i) = held.first() {
        ctx.store(i).dirty += 1;
    }
    ctx.out.ok();
}

// ---------------------------------------------------------------- OBJECT

fn object(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = &args[1][..];
    let lsub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let want = match lsub.as_str() {
        "help" => 2,
        "encoding" | "refcount" | "idletime" | "freq" => 3,
        _ => {
            ctx.out.err(&errors::unknown_subcommand(sub, "object"));
            return;
        }
    };
    if args.len() != want {
        ctx.out.err(&errors::wrong_args(&format!("object|{lsub}")));
        return;
    }
    if want == 2 {
        write_help(
            ctx.out,
            "object",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        );
        return;
    }
    let lfu = is_lfu_policy(ctx);
    let now = ctx.now;
    let Some(e) = lookup_notouch(ctx, &args[2]).cloned() else {
        ctx.out.null();
        return;
    };
    match lsub.as_str() {
        "encoding" => {
            let enc = encoding(ctx, &e.value, e.raw);
            ctx.out.bulk_str(enc)
        }
        "refcount" => {
            let rc = refcount(ctx, &e.value);
            ctx.out.int(rc)
        }
        "idletime" => {
            if lfu {
                ctx.out.err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            } else {
                ctx.out.int(idle_secs(&e, now) as i64);
            }
        }
        _ => {
            if !lfu {
                ctx.out.err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            } else {
                let f = crate::storage::evict::lfu_decayed(e.freq, e.lru, now / 1000);
                ctx.out.int(f as i64);
            }
        }
    }
}

// ---------------------------------------------------------------- EXPIRE & co

const EXP_NX: u8 = 1;
const EXP_XX: u8 = 2;
const EXP_GT: u8 = 4;
const EXP_LT: u8 = 8;

/// EXPIRE family. `relative`: add the current time; `secs`: seconds unit.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], relative: bool, secs: bool, name: &str) {
    let mut fl = 0u8;
    for opt in &args[3..] {
        fl |= if eq_ic(opt, "nx") {
            EXP_NX
        } else if eq_ic(opt, "xx") {
            EXP_XX
        } else if eq_ic(opt, "gt") {
            EXP_GT
        } else if eq_ic(opt, "lt") {
            EXP_LT
        } else {
            ctx.out.err(&format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            ));
            return;
        };
    }
    if fl & EXP_NX != 0 && fl & (EXP_XX | EXP_GT | EXP_LT) != 0 {
        ctx.out
            .err("ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if fl & EXP_GT != 0 && fl & EXP_LT != 0 {
        ctx.out
            .err("ERR GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = parse_i64(&args[2]) else {
        ctx.out.err(errors::NOT_INT);
        return;
    };
    let invalid = errors::INVALID_EXPIRE.replace("{}", name);
    if secs {
        when = match when.checked_mul(1000) {
            Some(w) => w,
            None => return ctx.out.err(&invalid),
        };
    }
    let base = if relative { ctx.now as i64 } else { 0 };
    when = match when.checked_add(base) {
        Some(w) => w,
        None => return ctx.out.err(&invalid),
    };

    let key = &args[1][..];
    if ctx.lookup_write(key).is_none() {
        ctx.out.int(0);
        return;
    }
    let current: i64 = match ctx.db(key).expire_of(key) {
        0 => -1,
        at => at as i64,
    };
    if (fl & EXP_NX != 0 && current != -1)
        || (fl & EXP_XX != 0 && current == -1)
        || (fl & EXP_GT != 0 && (current == -1 || when <= current))
        || (fl & EXP_LT != 0 && current != -1 && when >= current)
    {
        ctx.out.int(0);
        return;
    }
    let now = ctx.now as i64;
    let dbi = ctx.db;
    let db = ctx.db(key);
    if when <= now && !db.replica_mode {
        // An expiry in the past deletes the key, as Redis (propagated as DEL).
        db.remove(key);
        crate::replication::propagate(dbi, &[b"DEL", key]);
        ev::notify(ev::GENERIC, "del", key, dbi);
    } else {
        // A replica keeps past expiries (hidden) until its master's DEL.
        db.set_expire(key, when.max(1) as u64);
        // Redis 7: PEXPIREAT <absolute ms> with the same NX/XX/GT/LT flags.
        if crate::replication::active() && (relative || secs) {
            let ms = when.to_string();
            let mut eff: Vec<&[u8]> = vec![b"PEXPIREAT", key, ms.as_bytes()];
            eff.extend(args[3..].iter().map(|a| &a[..]));
            crate::replication::propagate(dbi, &eff);
        }
        ev::notify(ev::GENERIC, "expire", key, dbi);
    }
    ctx.dirty(key, 1);
    ctx.out.int(1);
}

fn expire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, true, true, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, true, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, false, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, false, false, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], ms: bool, abs: bool) {
    let now = ctx.now as i64;
    if lookup_notouch(ctx, &args[1]).is_none() {
        ctx.out.int(-2);
        return;
    }
    let at = ctx.db(&args[1]).expire_of(&args[1]) as i64;
    if at == 0 {
        ctx.out.int(-1);
        return;
    }
    let t = if abs { at } else { at - now }.max(0);
    ctx.out.int(if ms { t } else { (t + 500) / 1000 });
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, true, true)
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let had_ttl = matches!(ctx.lookup_write(key), Some(e) if e.has_ttl());
    if had_ttl {
        ctx.db(key).set_expire(key, 0);
        ctx.dirty(key, 1);
        ctx.notify(ev::GENERIC, "persist", key);
    }
    ctx.out.int(had_ttl as i64);
}

// ---------------------------------------------------------------- DEBUG

/// The length prefix of an RDB string of `len` bytes (rdbSaveLen).
fn rdb_len_size(len: usize) -> usize {
    if len < 1 << 6 {
        1
    } else if len < 1 << 14 {
        2
    } else if len <= u32::MAX as usize {
        5
    } else {
        9
    }
}

/// Bytes of an integer in RDB's INT8/16/32 string encodings, if it fits.
fn rdb_int_size(v: i64) -> Option<usize> {
    if i8::try_from(v).is_ok() {
        Some(2)
    } else if i16::try_from(v).is_ok() {
        Some(3)
    } else if i32::try_from(v).is_ok() {
        Some(5)
    } else {
        None
    }
}

/// rdbSavedObjectLen for a string value. Strings over 20 bytes are counted
/// uncompressed: Redis LZF-compresses them when that saves space, which this
/// does not model. Aggregates report 0 until an RDB writer exists.
fn serialized_len(v: &Value) -> usize {
    match v {
        Value::Str(s) => {
            if let Some(n) = (s.len() <= 11).then(|| parse_i64(s)).flatten()
                && let Some(sz) = rdb_int_size(n)
            {
                return sz;
            }
            rdb_len_size(s.len()) + s.len()
        }
        // RDB encodings of aggregates are not modelled.
        _ => 0,
    }
}

/// C's atoi: optional sign and leading digits, anything else ends it.
fn atoi(s: &[u8]) -> i64 {
    let t = std::str::from_utf8(s).unwrap_or("").trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in rest.bytes().take_while(u8::is_ascii_digit) {
        v = v.wrapping_mul(10).wrapping_add((c - b'0') as i64);
    }
    if neg { -v } else { v }
}

/// C's strtod on a prefix (DEBUG SLEEP ignores trailing junk; junk alone is 0).
fn strtod_prefix(s: &[u8]) -> f64 {
    let t = std::str::from_utf8(s).unwrap_or("").trim_start();
    let mut best = 0.0;
    for end in 1..=t.len() {
        if let Ok(v) = t[..end].parse::<f64>() {
            best = v;
        }
    }
    best
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` holding
/// `value:N` (zero-padded or cut to `size`); existing keys are left alone.
fn debug_populate(ctx: &mut Ctx, args: &[Bytes]) {
    let positive = |a: &[u8]| parse_i64(a).filter(|&v| v >= 0);
    const ERR: &str = "ERR value is out of range, must be positive";
    let Some(count) = positive(&args[2]) else {
        return ctx.out.err(ERR);
    };
    let size = match args.get(4) {
        Some(a) => match positive(a) {
            Some(v) => v as usize,
            None => return ctx.out.err(ERR),
        },
        None => 0,
    };
    let prefix = args.get(3).map_or(&b"key"[..], |p| &p[..]);
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{j}").as_bytes());
        // Redis formats the name into a 128-byte buffer.
        key.truncate(127);
        let dbi = ctx.db;
        if exists_for_write(ctx, &key, dbi) {
            continue;
        }
        let mut val = format!("value:{j}").into_bytes();
        if size > 0 {
            val.resize(size, 0);
        }
        ctx.db(&key).set(&key, Value::Str(Str::from(val)));
    }
    ctx.out.ok();
}

/// DEBUG PANIC [shard]: a Rust panic (the crash report path), on this
/// thread or, keel's extension, on the given shard's thread.
fn debug_panic(ctx: &mut Ctx, shard: Option<&Bytes>) {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let msg = format!("DEBUG PANIC called at Unix time {unix}");
    let target = match shard {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 && (n as usize) < ctx.nshards() => Some(n as usize),
            _ => return ctx.out.err("ERR shard index out of range"),
        },
    };
    let here = crate::server::shard::with_current(|rt| rt.id);
    match target {
        Some(t) if Some(t) != here => {
            crate::server::shard::with_current(|rt| {
                let f: crate::server::shard::RemoteFn = Box::new(move |_| {
                    crate::crash::set_current("debug");
                    panic!("{msg}")
                });
                rt.post(
                    t,
                    crate::server::shard::Msg::Call {
                        id: 0,
                        from: rt.id,
                        f,
                    },
                );
            });
            // The target runs the message even while this hold has its
            // gate; the process ends long before this sleep does.
            std::thread::sleep(std::time::Duration::from_secs(10));
            ctx.out.err("ERR the shard did not panic");
        }
        _ => panic!("{msg}"),
    }
}

fn debug(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = &args[1][..];
    let argc = args.len();
    if argc == 2 && eq_ic(sub, "help") {
        write_help(
            ctx.out,
            "debug",
            &[
                "AOF-FLUSH-SLEEP <microsec>",
                "    Server will sleep before flushing the AOF, this is used for testing.",
                "CLUSTERLINK KILL <to|from|all> <node-id>",
                "    Kills the link based on the direction to/from (both) with the provided node.",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message. Useful for clients",
                "    unit tests to simulate Redis errors.",
                "DROP-CLUSTER-PACKET-FILTER <packet-type>",
                "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "REPLICATE <string>",
                "    Replicates the provided string to replicas, allowing data divergence.",
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "PAUSE-CRON <0|1>",
                "    Stop periodic cron job processing.",
                "PANIC [<shard>]",
                "    Crash the server simulating a panic (keel: on the given shard's thread).",
                "SEGFAULT",
                "    Crash the server with sigsegv.",
                "QUICKLIST-PACKED-THRESHOLD <size>",
                "    Sets the threshold for elements to be inserted as plain vs packed nodes",
                "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        );
    } else if eq_ic(sub, "digest") && argc == 2 {
        let held = ctx.held_shards();
        let mut total = [0u8; 20];
        for j in 0..ctx.srv.databases {
            let mut x = [0u8; 20];
            let mut nonempty = false;
            for &i in &held {
                let db = &ctx.store(i).dbs[j];
                if !db.is_empty() {
                    nonempty = true;
                    for (a, b) in x.iter_mut().zip(digest::db_keys_xor(db).iter()) {
                        *a ^= b;
                    }
                }
            }
            if nonempty {
                digest::add_db(&mut total, j, &x);
            }
        }
        ctx.out.simple(&digest::hex(&total));
    } else if eq_ic(sub, "digest-value") {
        ctx.out.array(argc - 2);
        for k in &args[2..] {
            // Raw dict access: logically expired keys count too, as Redis.
            let d = digest::value_digest(ctx.db(k).dict.get(&k[..]));
            ctx.out.simple(&digest::hex(&d));
        }
    } else if eq_ic(sub, "error") && argc == 3 {
        // The argument as the error line itself (no ERR prefix added),
        // with CR and LF turned into spaces.
        let mut e = Vec::with_capacity(args[2].len() + 3);
        e.push(b'-');
        e.extend(
            args[2]
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        e.extend_from_slice(b"\r\n");
        ctx.out.raw(&e);
    } else if eq_ic(sub, "populate") && (3..=5).contains(&argc) {
        debug_populate(ctx, args);
    } else if eq_ic(sub, "reload") {
        let mut o = crate::server::persist::ReloadOpts {
            save: true,
            flush: true,
            merge: false,
        };
        for a in &args[2..] {
            if eq_ic(a, "nosave") {
                o.save = false;
            } else if eq_ic(a, "noflush") {
                o.flush = false;
            } else if eq_ic(a, "merge") {
                o.merge = true;
            } else {
                return ctx
                    .out
                    .err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
            }
        }
        let srv = ctx.srv;
        let mut stores = super::snapshot::all_stores(ctx);
        match crate::server::persist::debug_reload(srv, &mut stores, o) {
            Ok(()) => ctx.out.ok(),
            Err(e) => ctx.out.err(&e),
        }
    } else if eq_ic(sub, "loadaof") {
        let srv = ctx.srv;
        crate::aof::debug_loadaof(srv, &mut ctx.held_view());
        ctx.out.ok();
    } else if eq_ic(sub, "aof-flush-sleep") && argc == 3 {
        crate::aof::set_flush_sleep(atoi(&args[2]).max(0) as u64);
        ctx.out.ok();
    } else if eq_ic(sub, "protocol") && argc == 3 {
        debug_protocol(ctx, &args[2]);
    } else if eq_ic(sub, "set-disable-deny-scripts") && argc == 3 {
        let on = super::parse_i64(&args[2]).unwrap_or(0) != 0;
        super::scripting::DENY_SCRIPT_DISABLED.store(on, std::sync::atomic::Ordering::Relaxed);
        ctx.out.ok();
    } else if eq_ic(sub, "sleep") && argc == 3 {
        let secs = strtod_prefix(&args[2]);
        let us = (secs * 1e6) as i64;
        if us > 0 {
            // Every shard is held: the whole server stops, as in Redis.
            std::thread::sleep(std::time::Duration::from_micros(us as u64));
        }
        ctx.out.ok();
    } else if eq_ic(sub, "segfault") {
        crate::crash::segfault();
    } else if eq_ic(sub, "panic") && argc <= 3 {
        debug_panic(ctx, args.get(2));
    } else if eq_ic(sub, "quicklist-packed-threshold") && argc == 3 {
        // Redis's bounds (quicklistisSetPackedThreshold). keel's lists keep
        // every element the same way whatever its size, so a valid value
        // changes nothing anyone can observe.
        let ok = std::str::from_utf8(&args[2])
            .ok()
            .and_then(crate::config::parse_memory)
            .is_some_and(|sz| sz as u64 <= (1u64 << 32) - (1 << 20));
        if ok {
            ctx.out.ok();
        } else {
            ctx.out
                .err("ERR argument must be a memory value bigger than 1 and smaller than 4gb");
        }
    } else if eq_ic(sub, "pause-cron") && argc == 3 {
        crate::server::PAUSE_CRON.store(atoi(&args[2]) != 0, std::sync::atomic::Ordering::Relaxed);
        ctx.out.ok();
    } else if eq_ic(sub, "drop-cluster-packet-filter") && argc == 3 {
        super::cluster::debug_drop_packet_filter(ctx, args);
    } else if eq_ic(sub, "clusterlink") && argc == 5 && eq_ic(&args[2], "kill") {
        super::cluster::debug_clusterlink(ctx, args);
    } else if eq_ic(sub, "replicate") && argc >= 3 {
        // Sent to the replicas as is, whatever it is (stock's test hook
        // for a master that sends something its replicas reject).
        crate::replication::propagate(ctx.db, &args[2..]);
        ctx.out.ok();
    } else if eq_ic(sub, "set-active-expire") && argc == 3 {
        expire::set_active_expire(atoi(&args[2]) != 0);
        ctx.out.ok();
    } else if eq_ic(sub, "object") && argc == 3 {
        let key = &args[2][..];
        let now = ctx.now;
        let Some(e) = ctx.db(key).dict.get(key).cloned() else {
            ctx.out.err(errors::NO_SUCH_KEY);
            return;
        };
        let addr = ctx
            .db(key)
            .dict
            .get(key)
            .map_or(0, |e| e as *const Entry as usize);
        let rc = refcount(ctx, &e.value);
        let enc = encoding(ctx, &e.value, e.raw);
        let line = format!(
            "Value at:{:#x} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
            addr,
            rc,
            enc,
            serialized_len(&e.value),
            e.lru & 0xFF_FFFF,
            idle_secs(&e, now),
        );
        ctx.out.simple(&line);
    } else {
        ctx.out.err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)]),
            String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
        ));
    }
}

/// DEBUG PROTOCOL <type>: one reply of each RESP type, as stock.
fn debug_protocol(ctx: &mut Ctx, name: &[u8]) {
    let out = &mut *ctx.out;
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if is("string") {
        out.bulk(b"Hello World");
    } else if is("integer") {
        out.int(12345);
    } else if is("double") {
        // Stock's literal, not PI.
        #[allow(clippy::approx_constant)]
        out.double(3.141);
    } else if is("bignum") {
        let n = b"1234567999999999999999999999999999999";
        if out.resp3 {
            out.raw(b"(");
            out.raw(n);
            out.raw(b"\r\n");
        } else {
            out.bulk(n);
        }
    } else if is("null") {
        out.null();
    } else if is("array") || is("set") {
        if is("set") {
            out.set(3);
        } else {
            out.array(3);
        }
        for j in 0..3 {
            out.int(j);
        }
    } else if is("map") {
        out.map(3);
        for j in 0..3 {
            out.int(j);
            out.boolean(j == 1);
        }
    } else if is("attrib") {
        if out.resp3 {
            out.raw(b"|1\r\n");
            out.bulk(b"key-popularity");
            out.array(2);
            out.bulk(b"key:123");
            out.int(90);
        }
        out.bulk(b"Some real reply following the attribute");
    } else if is("push") {
        if !out.resp3 {
            return out.err("ERR RESP2 is not supported by this command");
        }
        out.push(2);
        out.bulk(b"server-cpu-usage");
        out.int(42);
        out.bulk(b"Some real reply following the push reply");
    } else if is("true") || is("false") {
        out.boolean(is("true"));
    } else if is("verbatim") {
        out.verbatim(b"This is a verbatim\nstring");
    } else {
        out.err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_is_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"+"), None);
    }

    #[test]
    fn encodings_and_rdb_sizes() {
        assert_eq!(str_encoding(b"123"), "int");
        assert_eq!(str_encoding(b"-9223372036854775808"), "int");
        assert_eq!(str_encoding(b"0123"), "embstr");
        assert_eq!(str_encoding(&[b'a'; 44]), "embstr");
        assert_eq!(str_encoding(&[b'a'; 45]), "raw");
        assert_eq!(serialized_len(&Value::Str(Str::from(b"bar".to_vec()))), 4);
        assert_eq!(serialized_len(&Value::Str(Str::from(b"123".to_vec()))), 2);
        assert_eq!(serialized_len(&Value::Str(Str::from(b"70000".to_vec()))), 5);
        assert_eq!(serialized_len(&Value::Str(Str::from(vec![b'x'; 100]))), 102);
    }

    #[test]
    fn c_number_prefixes() {
        assert_eq!(atoi(b"1abc"), 1);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b" -3"), -3);
        assert_eq!(strtod_prefix(b"0.5"), 0.5);
        assert_eq!(strtod_prefix(b"0.25s"), 0.25);
        assert_eq!(strtod_prefix(b"x"), 0.0);
    }
}
