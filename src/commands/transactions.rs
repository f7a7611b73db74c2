//! MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//!
//! Queuing and EXEC itself live in the connection (server::conn): EXEC holds
//! every shard its queued commands touch, so no other client observes a
//! partial transaction. WATCH registers a dirty flag under each key in the
//! owning shard; any write to the key sets it (see `touch_watched`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use super::Ctx;
use super::table::{Command, Special, cmd, flags::*};
use crate::server::client::{Client, Watched};
use crate::storage::ShardStore;

/// Clients with at least one WATCHed key, process-wide: writes skip the
/// watch bookkeeping entirely while it is zero.
pub static WATCHING_CLIENTS: AtomicUsize = AtomicUsize::new(0);

pub fn commands() -> Vec<Command> {
    vec![
        cmd(
            "multi",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            multi,
        )
        .special(Special::Multi),
        cmd(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
            exec_outside_conn,
        )
        .special(Special::Exec),
        cmd(
            "discard",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            discard,
        )
        .special(Special::Discard),
        cmd(
            "watch",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            watch,
        )
        .special(Special::Watch)
        .keys(1, -1, 1)
        .held(),
        cmd(
            "unwatch",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            unwatch,
        ),
    ]
}

fn client_of<'a>(ctx: &'a mut Ctx) -> &'a mut Client {
    ctx.client
        .as_deref_mut()
        .expect("transaction command without a client")
}

fn multi(ctx: &mut Ctx, _args: &[Bytes]) {
    let c = client_of(ctx);
    if c.multi.is_some() {
        return ctx.out.err("ERR MULTI calls can not be nested");
    }
    c.multi = Some(Vec::new());
    c.multi_error = false;
    ctx.out.ok();
}

/// EXEC is run by the connection; reaching the table handler means EXEC was
/// called where no transaction can exist (from a script).
fn exec_outside_conn(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.err("ERR EXEC without MULTI");
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) {
    let c = client_of(ctx);
    if c.multi.take().is_none() {
        return ctx.out.err("ERR DISCARD without MULTI");
    }
    c.multi_error = false;
    unwatch_all(c);
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) {
    unwatch_all(client_of(ctx));
    ctx.out.ok();
}

/// Forgets every watched key. Shard entries are dropped lazily: a flag
/// nobody else holds is pruned by the shard cron.
pub fn unwatch_all(c: &mut Client) {
    if c.watch_flag.take().is_some() {
        WATCHING_CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
    c.watched.clear();
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) {
    if client_of(ctx).multi.is_some() {
        return ctx.out.err("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.db;
    let now = ctx.now;
    let flag = {
        let c = client_of(ctx);
        if c.watch_flag.is_none() {
            c.watch_flag = Some(Arc::new(AtomicBool::new(false)));
            WATCHING_CLIENTS.fetch_add(1, Ordering::Relaxed);
        }
        c.watch_flag.clone().unwrap()
    };
    for key in &args[1..] {
        if client_of(ctx)
            .watched
            .iter()
            .any(|w| w.db == db && w.key == *key)
        {
            continue;
        }
        let store = ctx.store_of(key);
        let expire_at = store.dbs[db].expire_of(key.as_ref());
        // A key already expired when watched is not "modified" by its deletion.
        let expired_at_watch = expire_at != 0 && expire_at <= now;
        store
            .watched
            .entry((db, key.as_ref().into()))
            .or_default()
            .push(flag.clone());
        client_of(ctx).watched.push(Watched {
            db,
            key: key.clone(),
            expire_at: if expired_at_watch { 0 } else { expire_at },
        });
    }
    ctx.out.ok();
}

/// True if EXEC must fail: a watched key was written, or expired since WATCH.
pub fn watch_failed(c: &Client, now: u64) -> bool {
    let Some(flag) = &c.watch_flag else {
        return false;
    };
    flag.load(Ordering::Acquire)
        || c.watched
            .iter()
            .any(|w| w.expire_at != 0 && w.expire_at <= now)
}

/// Marks the watchers of `key` in DB `db` dirty.
pub fn touch_key(store: &mut ShardStore, db: usize, key: &[u8]) {
    if store.watched.is_empty() {
        return;
    }
    if let Some(flags) = store.watched.get(&(db, Box::<[u8]>::from(key))) {
        for f in flags {
            f.store(true, Ordering::Release);
        }
    }
}

/// `key` exists in `db` and has not logically expired.
fn live(store: &ShardStore, db: usize, key: &[u8], now: u64) -> bool {
    let d = &store.dbs[db];
    d.dict.contains_key(key) && {
        let at = d.expire_of(key);
        at == 0 || at > now
    }
}

/// Marks the watchers of keys that exist in DB `db` dirty: FLUSHDB and
/// FLUSHALL call it before emptying. A watched key that did not exist, or
/// had already expired, is not modified by a flush, as in Redis (one that
/// expired after WATCH fails EXEC anyway).
pub fn touch_existing(store: &mut ShardStore, db: usize, now: u64) {
    for ((d, key), flags) in store.watched.iter() {
        if *d == db && live(store, db, key, now) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
    }
}

/// SWAPDB `a` `b` (before the swap): a watched key of either DB is touched
/// when a live key is under its name in either DB; stale keys swapped for
/// stale or missing ones are no logical change (touchAllWatchedKeysInDb).
pub fn touch_swapped(store: &mut ShardStore, a: usize, b: usize, now: u64) {
    for ((d, key), flags) in store.watched.iter() {
        if (*d == a || *d == b) && (live(store, a, key, now) || live(store, b, key, now)) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
    }
}

/// Marks every watcher of DB `db` (or of every DB) dirty: SWAPDB.
pub fn touch_db(store: &mut ShardStore, db: Option<usize>) {
    for ((d, _), flags) in store.watched.iter() {
        if db.is_none_or(|x| x == *d) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
    }
}

/// Called after a write command that changed data (the `dirty` counter of a
/// held store moved): touches its declared keys, or whole DBs for keyless
/// writes (FLUSHDB touches only the selected DB).
pub fn touch_watched(ctx: &mut Ctx, cmd: &Command, args: &[Bytes]) {
    let keys = cmd.key_indexes(args);
    let db = ctx.db;
    if keys.is_empty() {
        // FLUSHDB/FLUSHALL/SWAPDB touch what they change themselves
        // (touch_existing, touch_swapped).
        if !matches!(cmd.name, "flushdb" | "flushall" | "swapdb") {
            for i in ctx.held_shards() {
                touch_db(ctx.store(i), None);
            }
        }
        return;
    }
    for i in keys {
        let key = &args[i];
        touch_key(ctx.store_of(key), db, key);
    }
}

/// Drops watch entries nobody holds any more (shard cron).
pub fn prune_watched(store: &mut ShardStore) {
    store.watched.retain(|_, flags| {
        flags.retain(|f| Arc::strong_count(f) > 1);
        !flags.is_empty()
    });
}

pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
