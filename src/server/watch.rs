//! WATCH's bookkeeping on the write path: the dirty flags a write sets
//! under the keys it touched, and what EXEC and the shard cron read. The
//! WATCH / UNWATCH commands themselves are in `commands::transactions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::commands::{Command, Ctx, flags};
use crate::server::client::Client;
use crate::storage::ShardStore;

/// Clients with at least one WATCHed key, process-wide: writes skip the
/// watch bookkeeping entirely while it is zero.
pub static WATCHING_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// Forgets every watched key. Shard entries are dropped lazily: a flag
/// nobody else holds is pruned by the shard cron.
pub fn unwatch_all(c: &mut Client) {
    if c.watch_flag.take().is_some() {
        WATCHING_CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
    c.watched.clear();
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
        if cmd.flags & flags::TOUCHES_OWN_WATCHES == 0 {
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
