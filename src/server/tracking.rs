//! Client-side caching: CLIENT TRACKING (Redis's tracking.c semantics).
//!
//! The table of which clients may cache which key is split by shard: each
//! shard's part holds the keys that shard owns, so a read remembers its keys
//! and a write invalidates them on whatever thread runs the command (the
//! owner, or a coordinator holding the shard). Each part sits behind its own
//! mutex, which only that shard's runner takes (uncontended), so the expiry
//! and eviction hooks reach it without a store reference.
//!
//! An invalidation is a RESP frame built where the write ran and delivered
//! to the receiving connection's push queue on its own shard (locally, or as
//! `Msg::Push` on the same channel that carries the writer's later replies to
//! that shard, so it arrives before them). BCAST keys are gathered per thread
//! and sent by a task that runs once the current commands are done, as
//! Redis's beforeSleep does.
//!
//! Nothing of this runs while no client has tracking on: the command path
//! checks `ACTIVE` once.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;

use super::Server;
use super::client::ClientInfo;
use super::pubsub::PushQueue;

/// Clients with tracking on (INFO tracking_clients); the one check of the
/// command path.
pub static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// `tracking-table-max-keys` (0: no limit).
pub static MAX_KEYS: AtomicU64 = AtomicU64::new(1_000_000);
static KEYS: AtomicU64 = AtomicU64::new(0);
static ITEMS: AtomicU64 = AtomicU64::new(0);
/// Rounds the table stayed over its limit (the eviction effort grows).
static OVER_ROUNDS: AtomicU64 = AtomicU64::new(0);

// The client's tracking flags (ClientInfo::tracking).
pub const ON: u32 = 1;
pub const BCAST: u32 = 2;
pub const OPTIN: u32 = 4;
pub const OPTOUT: u32 = 8;
/// CLIENT CACHING yes/no given for the next command.
pub const CACHING: u32 = 16;
pub const NOLOOP: u32 = 32;
pub const BROKEN_REDIR: u32 = 64;

type Table = HashMap<Box<[u8]>, Vec<u64>>;

static TABLES: OnceLock<Vec<Mutex<Table>>> = OnceLock::new();

fn tables(nshards: usize) -> &'static [Mutex<Table>] {
    TABLES.get_or_init(|| (0..nshards).map(|_| Mutex::default()).collect())
}

fn table_of(nshards: usize, key: &[u8]) -> &'static Mutex<Table> {
    &tables(nshards)[crate::storage::slot::key_shard(key, nshards)]
}

/// BCAST prefixes and the clients registered for each.
/// A connection of this shard: its push queue and its shared state.
type Receiver = (Rc<PushQueue>, Arc<ClientInfo>);

static PREFIXES: RwLock<BTreeMap<Bytes, Vec<u64>>> = RwLock::new(BTreeMap::new());

thread_local! {
    /// This shard's connections' push queues, by client id.
    static QUEUES: RefCell<HashMap<u64, Receiver>> = RefCell::new(HashMap::new());
    /// BCAST: keys modified per prefix since the last flush, with the
    /// client that last modified each (NOLOOP).
    static PENDING: RefCell<BTreeMap<Bytes, BTreeMap<Bytes, u64>>> =
        const { RefCell::new(BTreeMap::new()) };
    /// The keys declared by the scripts running on this thread (innermost
    /// last): a read inside a script remembers these for its caller.
    static SCRIPT_KEYS: RefCell<Vec<Vec<Bytes>>> = const { RefCell::new(Vec::new()) };
}

/// Before a command: a script (EVAL, FCALL and their variants) declares
/// its keys; true if it is one (then `script_leave` after it).
pub fn script_enter(cmd: &crate::commands::Command, args: &[Bytes]) -> bool {
    use crate::commands::Special;
    if !matches!(
        cmd.special,
        Special::Script { .. } | Special::Function { .. }
    ) {
        return false;
    }
    let keys = cmd
        .key_indexes(args)
        .into_iter()
        .map(|i| args[i].clone())
        .collect();
    SCRIPT_KEYS.with(|s| s.borrow_mut().push(keys));
    true
}

pub fn script_leave() {
    SCRIPT_KEYS.with(|s| s.borrow_mut().pop());
}

/// A connection of this shard can receive invalidations.
pub fn register(info: &Arc<ClientInfo>, queue: &Rc<PushQueue>) {
    QUEUES.with(|q| {
        q.borrow_mut()
            .insert(info.id, (queue.clone(), info.clone()))
    });
}

/// The connection closed: its tracking ends and its queue goes.
pub fn unregister(info: &ClientInfo) {
    disable(info);
    QUEUES.with(|q| q.borrow_mut().remove(&info.id));
}

/// Moves a connection's pending invalidations into its push queue (and
/// wakes it): on its own shard, after `deliver` queued them.
pub fn push_local(client: u64) {
    QUEUES.with(|q| {
        if let Some((queue, info)) = q.borrow().get(&client) {
            drain(info, queue);
        }
    });
}

/// The connection's pending invalidations, into its queue.
pub fn drain(info: &ClientInfo, queue: &PushQueue) {
    let pending = std::mem::take(&mut *info.tracking_out.lock().unwrap());
    if !pending.is_empty() {
        queue.push_raw(&pending);
    }
}

/// Frames are appended to the receiver's `tracking_out` right here, before
/// the writer's reply leaves: a command the receiver sends after that reply
/// drains them ahead of its own reply (`drain`), whatever the mesh's timing.
/// The message only wakes an idle receiver.
fn deliver(to: &ClientInfo, frame: Vec<u8>) {
    to.tracking_out.lock().unwrap().extend_from_slice(&frame);
    super::shard::with_current(|rt| {
        if rt.id == to.shard {
            push_local(to.id);
        } else {
            rt.post(to.shard, super::shard::Msg::Push { client: to.id });
        }
    });
}

/// What an invalidation says: one key, several (BCAST, already an array)
/// or every key (a flush: null in the tracking client's protocol).
enum Value<'a> {
    Key(&'a [u8]),
    Array(&'a [u8]),
    Null,
}

fn bulk(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
    b.extend_from_slice(s);
    b.extend_from_slice(b"\r\n");
}

/// sendTrackingMessage: to the client, or its redirection target (as a
/// push in RESP3, as a `__redis__:invalidate` message to a RESP2
/// subscriber), or `tracking-redir-broken` when the target is gone.
fn send(clients: &BTreeMap<u64, Arc<ClientInfo>>, c: &ClientInfo, v: Value) {
    let mut to = c;
    let redir = c.tracking_redir.load(Relaxed);
    if redir != 0 {
        let Some(r) = clients.get(&redir) else {
            c.tracking.fetch_or(BROKEN_REDIR, Relaxed);
            if c.resp.load(Relaxed) > 2 {
                let mut f = b">2\r\n".to_vec();
                bulk(&mut f, b"tracking-redir-broken");
                f.extend_from_slice(format!(":{redir}\r\n").as_bytes());
                deliver(c, f);
            }
            return;
        };
        to = r;
    }
    let mut f = Vec::with_capacity(64);
    if to.resp.load(Relaxed) > 2 {
        f.extend_from_slice(b">2\r\n");
        bulk(&mut f, b"invalidate");
    } else if redir != 0 && to.subs.iter().any(|n| n.load(Relaxed) > 0) {
        f.extend_from_slice(b"*3\r\n");
        bulk(&mut f, b"message");
        bulk(&mut f, b"__redis__:invalidate");
    } else {
        return;
    }
    match v {
        Value::Key(k) => {
            f.extend_from_slice(b"*1\r\n");
            bulk(&mut f, k);
        }
        Value::Array(a) => f.extend_from_slice(a),
        Value::Null if c.resp.load(Relaxed) > 2 => f.extend_from_slice(b"_\r\n"),
        Value::Null => f.extend_from_slice(b"$-1\r\n"),
    }
    deliver(to, f);
}

/// CLIENT TRACKING ON: `flags` among BCAST, OPTIN, OPTOUT, NOLOOP.
pub fn enable(info: &ClientInfo, redirect: u64, flags: u32, prefixes: &[Bytes]) {
    let old = info.tracking.load(Relaxed);
    if old & ON == 0 {
        ACTIVE.fetch_add(1, Relaxed);
    }
    // CACHING survives (as Redis, which clears only the mode flags).
    info.tracking.store(ON | flags | (old & CACHING), Relaxed);
    info.tracking_redir.store(redirect, Relaxed);
    if flags & BCAST != 0 {
        let mut mine = info.tracking_prefixes.lock().unwrap();
        let mut table = PREFIXES.write().unwrap();
        let empty = [Bytes::new()];
        let wanted = if prefixes.is_empty() {
            &empty[..]
        } else {
            prefixes
        };
        for p in wanted {
            let ids = table.entry(p.clone()).or_default();
            if !ids.contains(&info.id) {
                ids.push(info.id);
                mine.push(p.clone());
            }
        }
    }
}

/// CLIENT TRACKING OFF (also RESET and a closed connection). The table
/// keeps the client's id; it is skipped and dropped lazily, as in Redis.
pub fn disable(info: &ClientInfo) {
    let old = info.tracking.swap(0, Relaxed);
    if old & ON == 0 {
        return;
    }
    ACTIVE.fetch_sub(1, Relaxed);
    let mine = std::mem::take(&mut *info.tracking_prefixes.lock().unwrap());
    if !mine.is_empty() {
        let mut table = PREFIXES.write().unwrap();
        for p in mine {
            if let Some(ids) = table.get_mut(&p) {
                ids.retain(|&i| i != info.id);
                if ids.is_empty() {
                    table.remove(&p);
                }
            }
        }
    }
}

/// checkPrefixCollisionsOrReply: the error for prefixes that overlap each
/// other or the client's own.
pub fn prefix_collision(info: &ClientInfo, prefixes: &[Bytes]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let mine = info.tracking_prefixes.lock().unwrap();
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(m) = mine.iter().find(|m| overlap(m, p)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(m)
            ));
        }
        if let Some(q) = prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            ));
        }
    }
    None
}

/// trackingRememberKeys: after a read-only command of a tracking client
/// (not BCAST; OPTIN only after CACHING yes, OPTOUT unless CACHING no).
pub fn remember(srv: &Server, reader: &ClientInfo, keys: &[&[u8]]) {
    let f = reader.tracking.load(Relaxed);
    if f & ON == 0 || f & BCAST != 0 {
        return;
    }
    let caching = f & CACHING != 0;
    if (f & OPTIN != 0 && !caching) || (f & OPTOUT != 0 && caching) {
        return;
    }
    for key in keys {
        let mut t = table_of(srv.nshards, key).lock().unwrap();
        let ids = match t.get_mut(*key) {
            Some(ids) => ids,
            None => {
                KEYS.fetch_add(1, Relaxed);
                t.entry(Box::from(*key)).or_default()
            }
        };
        if !ids.contains(&reader.id) {
            ids.push(reader.id);
            ITEMS.fetch_add(1, Relaxed);
        }
    }
}

/// trackingInvalidateKey: `key` changed (or, `bcast` false, left the
/// table): every client that may cache it is told, except a NOLOOP
/// `writer`. BCAST clients hear of it when the pending keys are flushed.
pub fn invalidate(srv: &Server, key: &[u8], writer: Option<u64>, bcast: bool) {
    if bcast && !PREFIXES.read().unwrap().is_empty() {
        remember_bcast(key, writer.unwrap_or(0));
    }
    let ids = {
        let mut t = table_of(srv.nshards, key).lock().unwrap();
        match t.remove(key) {
            Some(ids) => ids,
            None => return,
        }
    };
    KEYS.fetch_sub(1, Relaxed);
    ITEMS.fetch_sub(ids.len() as u64, Relaxed);
    let clients = srv.clients.lock().unwrap();
    for id in ids {
        let Some(c) = clients.get(&id) else { continue };
        let f = c.tracking.load(Relaxed);
        if f & ON == 0 || f & BCAST != 0 || (f & NOLOOP != 0 && writer == Some(id)) {
            continue;
        }
        send(&clients, c, Value::Key(key));
    }
}

/// FLUSHDB / FLUSHALL: every tracking client is told that every key is
/// invalid (a null), and the table empties.
pub fn flushed(srv: &Server) {
    for t in tables(srv.nshards) {
        t.lock().unwrap().clear();
    }
    KEYS.store(0, Relaxed);
    ITEMS.store(0, Relaxed);
    let clients = srv.clients.lock().unwrap();
    for c in clients.values() {
        if c.tracking.load(Relaxed) & ON != 0 {
            send(&clients, c, Value::Null);
        }
    }
}

fn remember_bcast(key: &[u8], writer: u64) {
    let matching: Vec<Bytes> = PREFIXES
        .read()
        .unwrap()
        .keys()
        .filter(|p| key.starts_with(p))
        .cloned()
        .collect();
    if matching.is_empty() {
        return;
    }
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        for prefix in matching {
            p.entry(prefix)
                .or_default()
                .insert(Bytes::copy_from_slice(key), writer);
        }
    });
}

/// Sends the BCAST keys gathered by the unit that just ended (a command,
/// a transaction, a script, an expiry cycle).
pub fn flush_pending(srv: &Server) {
    if PENDING.with(|p| !p.borrow().is_empty()) {
        flush_bcast(srv);
    }
}

/// trackingBroadcastInvalidationMessages: one array of keys per prefix to
/// its clients (a NOLOOP client's own keys left out).
fn flush_bcast(srv: &Server) {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if pending.is_empty() {
        return;
    }
    let prefixes = PREFIXES.read().unwrap().clone();
    let clients = srv.clients.lock().unwrap();
    let array = |keys: &BTreeMap<Bytes, u64>, skip: Option<u64>| {
        let kept: Vec<&Bytes> = keys
            .iter()
            .filter(|(_, w)| skip != Some(**w))
            .map(|(k, _)| k)
            .collect();
        if kept.is_empty() {
            return None;
        }
        let mut a = format!("*{}\r\n", kept.len()).into_bytes();
        for k in kept {
            bulk(&mut a, k);
        }
        Some(a)
    };
    for (prefix, keys) in pending {
        let Some(ids) = prefixes.get(&prefix) else {
            continue;
        };
        let all = array(&keys, None);
        for id in ids {
            let Some(c) = clients.get(id) else { continue };
            if c.tracking.load(Relaxed) & NOLOOP != 0 {
                if let Some(a) = array(&keys, Some(*id)) {
                    send(&clients, c, Value::Array(&a));
                }
            } else if let Some(a) = &all {
                send(&clients, c, Value::Array(a));
            }
        }
    }
}

/// trackingLimitUsedSlots, for this shard's part of the table: over
/// `tracking-table-max-keys`, keys leave the table and their clients are
/// told, with an effort that grows while the table stays over.
pub fn limit(srv: &Server, shard: usize) {
    let max = MAX_KEYS.load(Relaxed);
    if max == 0 || ACTIVE.load(Relaxed) == 0 || TABLES.get().is_none() {
        return;
    }
    if KEYS.load(Relaxed) <= max {
        OVER_ROUNDS.store(0, Relaxed);
        return;
    }
    let mut effort = 100 * (OVER_ROUNDS.load(Relaxed) + 1);
    while effort > 0 && KEYS.load(Relaxed) > max {
        effort -= 1;
        let key = {
            let t = tables(srv.nshards)[shard].lock().unwrap();
            // The map's order is its hash's: a random pick.
            match t.keys().next() {
                Some(k) => k.clone(),
                None => break,
            }
        };
        invalidate(srv, &key, None, false);
    }
    if KEYS.load(Relaxed) > max {
        OVER_ROUNDS.fetch_add(1, Relaxed);
    } else {
        OVER_ROUNDS.store(0, Relaxed);
    }
}

/// INFO: tracking_total_keys, tracking_total_items, tracking_total_prefixes.
pub fn totals() -> (u64, u64, usize) {
    (
        KEYS.load(Relaxed),
        ITEMS.load(Relaxed),
        PREFIXES.read().unwrap().len(),
    )
}

/// CLIENT TRACKINGINFO's prefixes.
pub fn prefixes_of(info: &ClientInfo) -> Vec<Bytes> {
    let mut v = info.tracking_prefixes.lock().unwrap().clone();
    v.sort();
    v
}

/// After a command, while some client tracks: a write that changed data
/// invalidates its keys (a flush: every key), a read-only command
/// remembers its keys for the client it ran for (a script's caller for
/// the commands the script runs).
pub fn after_command(
    ctx: &mut crate::commands::Ctx,
    cmd: &crate::commands::Command,
    args: &[Bytes],
    before: usize,
    wrote: bool,
) {
    use crate::commands::{Special, flags};
    let srv = ctx.srv;
    let who: Option<&ClientInfo> = match &ctx.client {
        Some(c) => Some(&*c.info),
        None => ctx.origin.or(ctx.script_client),
    };
    let failed = ctx.out.buf.get(before) == Some(&b'-');
    if cmd.special == Special::Flush {
        if !failed {
            flushed(srv);
        }
        return;
    }
    if cmd.flags & (flags::WRITE | flags::WRITE_SUBCOMMANDS) != 0 {
        if wrote {
            let writer = who.map(|c| c.id);
            for i in cmd.key_indexes(args) {
                invalidate(srv, &args[i], writer, true);
            }
        }
        return;
    }
    if cmd.flags & flags::READONLY == 0
        || cmd.flags & flags::PUBSUB != 0
        || matches!(
            cmd.special,
            Special::Script { .. } | Special::Function { .. }
        )
    {
        return;
    }
    let Some(reader) = who else { return };
    // Inside a script, a read remembers the script's declared keys for
    // its caller, not the keys of the command (Redis 7.0's call()).
    let declared = if ctx.in_script {
        SCRIPT_KEYS.with(|s| s.borrow().last().cloned())
    } else {
        None
    };
    let keys: Vec<&[u8]> = match &declared {
        Some(d) => d.iter().map(|k| &k[..]).collect(),
        None => cmd
            .key_indexes(args)
            .into_iter()
            .map(|i| &args[i][..])
            .collect(),
    };
    if keys.is_empty() {
        return;
    }
    remember(srv, reader, &keys);
    if KEYS.load(Relaxed) > MAX_KEYS.load(Relaxed) {
        let shard = crate::storage::slot::key_shard(keys[0], srv.nshards);
        limit(srv, shard);
    }
}

/// The command path's check: some client tracks, or the table still holds
/// keys (Redis invalidates and empties it on a flush even when the clients
/// that read them turned tracking off).
pub fn engaged() -> bool {
    ACTIVE.load(Relaxed) > 0 || KEYS.load(Relaxed) > 0
}

/// processCommand's trackingLimitUsedSlots: before any command (queued ones
/// included), a table over `tracking-table-max-keys` gives back keys.
/// True if keys were given back.
pub fn limit_before_command(srv: &Server) -> bool {
    if ACTIVE.load(Relaxed) == 0 || KEYS.load(Relaxed) <= MAX_KEYS.load(Relaxed) {
        return false;
    }
    for shard in 0..srv.nshards {
        limit(srv, shard);
        if KEYS.load(Relaxed) <= MAX_KEYS.load(Relaxed) {
            break;
        }
    }
    true
}

/// Invalidations meant for `c` itself that are still pending (its push
/// queue when it lives on this thread, then what other threads left), taken
/// out so the caller writes them ahead of a reply: evictions run before the
/// command, so stock sends theirs first.
pub fn take_own(c: &ClientInfo) -> Vec<u8> {
    let f = c.tracking.load(Relaxed);
    if f & ON == 0 || c.resp.load(Relaxed) <= 2 || c.subs.iter().any(|n| n.load(Relaxed) > 0) {
        return Vec::new();
    }
    let mut b = QUEUES.with(|q| q.borrow().get(&c.id).map(|(queue, _)| queue.take()));
    let b = b.get_or_insert_default();
    b.extend_from_slice(&std::mem::take(&mut *c.tracking_out.lock().unwrap()));
    std::mem::take(b)
}

/// A key expired or was evicted (the storage hook): its clients are told.
pub fn key_gone(key: &[u8]) {
    if ACTIVE.load(Relaxed) == 0 {
        return;
    }
    if let Some(srv) = super::shard::with_current(|rt| rt.srv) {
        invalidate(srv, key, None, true);
    }
}
