//! Replication, master side: write records, the global order, the stream.
//!
//! Every execution unit that changes data (one command, one EXEC, one
//! script) collects its *effects* — the commands as a replica must replay
//! them — on the thread that runs it. When the unit ends, and only if
//! replication is active (a backlog exists), the shard takes the next
//! number of one global counter (the LSN) in the same synchronous step and
//! sends the record to the replication core (`master.rs`), which merges
//! records by LSN into one PSYNC2 stream. Taking the LSN before the reply
//! leaves means a write acknowledged before another was sent precedes it
//! in the stream.

pub mod apply;
pub mod backlog;
pub mod failover;
pub mod master;
pub mod replica;
pub mod sync;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

pub use master::{Repl, repl};

/// Records are made only while a backlog exists (Redis counts no offset
/// without one). Flipped on at a global cut, with every shard parked.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The next LSN to take. Dense: every number becomes one record.
static NEXT_LSN: AtomicU64 = AtomicU64::new(0);

/// One command of a record, RESP-encoded, with the DB it must run in.
pub struct Effect {
    pub db: i32,
    pub resp: Vec<u8>,
    /// Verbatim EVALSHA: the EVAL form, sent when some replica may lack
    /// the body, with the script's SHA1.
    pub eval_form: Option<(String, Vec<u8>)>,
}

/// A unit's effects under its place in the global order.
pub struct Record {
    pub lsn: u64,
    pub effects: Vec<Effect>,
}

#[derive(Default)]
struct Unit {
    depth: u32,
    effects: Vec<Effect>,
    /// The running command chose its own effects (or none).
    custom: bool,
    /// Nested commands record nothing (a script replicated verbatim).
    verbatim_script: u32,
    /// Each effect is a record of its own, without MULTI/EXEC (SCAN and
    /// RANDOMKEY run directly: the keys they find expired).
    split: bool,
}

thread_local! {
    static UNIT: RefCell<Unit> = RefCell::new(Unit::default());
    static BATCH: RefCell<Batch> = RefCell::new(Batch::default());
}

/// Records a shard thread made during the current pass of its executor:
/// they go to the replication core as one message when the pass ends (the
/// flusher task runs after the tasks already runnable), so keel-repl wakes
/// once per pass, not once per write.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    bytes: usize,
    /// The flusher task of this thread; None on threads without one
    /// (their records go out at once).
    flusher: Option<Waker>,
    /// The flusher has been woken and has not run yet.
    scheduled: bool,
}

/// A batch this large goes out without waiting for the pass to end.
const BATCH_MAX_RECORDS: usize = 256;
const BATCH_MAX_BYTES: usize = 256 * 1024;

pub fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

pub(crate) fn set_active(on: bool) {
    ACTIVE.store(on, Ordering::Release);
}

/// The LSN the next record will take (read at a cut, shards parked).
pub(crate) fn next_lsn() -> u64 {
    NEXT_LSN.load(Ordering::SeqCst)
}

/// RESP encoding of a command.
pub fn encode(args: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    header(&mut v, b'*', args.len());
    for a in args {
        let a = a.as_ref();
        header(&mut v, b'$', a.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// `<kind><n>\r\n` without a temporary string (once per argument of
/// every replicated write).
fn header(v: &mut Vec<u8>, kind: u8, n: usize) {
    v.push(kind);
    v.extend_from_slice(crate::protocol::fmt_i64(&mut [0u8; 20], n as i64));
    v.extend_from_slice(b"\r\n");
}

/// Opens an execution unit (a command, or EXEC around its commands).
/// Returns a token for `leave`; None while replication is off.
pub fn enter() -> Option<bool> {
    if !active() {
        return None;
    }
    Some(UNIT.with(|u| {
        let mut u = u.borrow_mut();
        u.depth += 1;
        std::mem::replace(&mut u.custom, false)
    }))
}

/// Closes a unit opened by `enter`. `changed`: the command changed data,
/// so unless it chose its own effects it is replayed as `args` in `db`.
/// The outermost unit sends its record.
pub fn leave(token: Option<bool>, changed: bool, db: usize, args: &[Bytes]) {
    let Some(saved_custom) = token else { return };
    let record = UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if changed && !u.custom && !args.is_empty() && u.verbatim_script == 0 {
            u.effects.push(Effect {
                db: db as i32,
                resp: encode(args),
                eval_form: None,
            });
        }
        u.custom = saved_custom;
        u.depth -= 1;
        if u.depth == 0 && !u.effects.is_empty() {
            Some((std::mem::take(&mut u.effects), std::mem::take(&mut u.split)))
        } else {
            if u.depth == 0 {
                u.split = false;
            }
            None
        }
    });
    match record {
        Some((effects, true)) => {
            for e in effects {
                send(vec![e]);
            }
        }
        Some((effects, false)) => send(effects),
        None => {}
    }
}

/// A command that touches arbitrary keys (SCAN, RANDOMKEY), run directly
/// rather than inside EXEC or a script: the deletions of the expired keys
/// it meets go out one by one, not as a transaction (Redis 7.0's
/// propagatePendingCommands for CMD_TOUCHES_ARBITRARY_KEYS).
pub fn touches_arbitrary_keys() {
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if u.depth == 1 {
            u.split = true;
        }
    });
}

/// Drops the effects the running unit gathered so far (DEBUG LOADAOF: what
/// it replays from the file is not propagated again, as stock's dirty = 0).
pub fn discard_effects() {
    UNIT.with(|u| u.borrow_mut().effects.clear());
}

/// Takes the next LSN and hands the record to the replication core: at
/// the end of this executor pass on a shard thread, at once elsewhere.
fn send(effects: Vec<Effect>) {
    let lsn = NEXT_LSN.fetch_add(1, Ordering::SeqCst);
    let rec = Record { lsn, effects };
    let full = BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let Some(w) = &b.flusher else {
            return Some(vec![rec]);
        };
        if !b.scheduled {
            w.wake_by_ref();
            b.scheduled = true;
        }
        b.bytes += rec.effects.iter().map(|e| e.resp.len()).sum::<usize>();
        b.records.push(rec);
        if b.records.len() >= BATCH_MAX_RECORDS || b.bytes >= BATCH_MAX_BYTES {
            b.bytes = 0;
            Some(std::mem::take(&mut b.records))
        } else {
            None
        }
    });
    if let Some(records) = full {
        master::submit(records);
    }
}

/// Sends this thread's batched records now. Before anything on this
/// thread waits for the stream to hold every LSN taken so far (a cut,
/// an fsync for `appendfsync always`).
pub fn flush_local() {
    let records = BATCH.with(|b| {
        let mut b = b.borrow_mut();
        b.bytes = 0;
        std::mem::take(&mut b.records)
    });
    if !records.is_empty() {
        master::submit(records);
    }
}

/// The task that sends a shard thread's batch when its executor has run
/// the tasks that were runnable when the first record of the batch was
/// made (spawned once per shard, at start).
pub fn flusher() -> impl Future<Output = ()> {
    struct Flusher;
    impl Future for Flusher {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            BATCH.with(|b| {
                let mut b = b.borrow_mut();
                b.scheduled = false;
                if b.flusher.is_none() {
                    b.flusher = Some(cx.waker().clone());
                }
            });
            flush_local();
            Poll::Pending
        }
    }
    Flusher
}

/// The running command replaces its default effect (the command itself)
/// with the ones it pushes through `propagate` (none at all if it pushes
/// nothing).
pub fn custom() {
    UNIT.with(|u| u.borrow_mut().custom = true);
}

/// Adds an effect to the running unit: `args` replayed in `db`.
pub fn propagate(db: usize, args: &[impl AsRef<[u8]>]) {
    if !active() {
        return;
    }
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if u.verbatim_script > 0 {
            return;
        }
        u.custom = true;
        u.effects.push(Effect {
            db: db as i32,
            resp: encode(args),
            eval_form: None,
        });
    });
}

/// A verbatim EVALSHA: the stream carries `evalsha` where every replica is
/// known to hold the script, else `eval` (which teaches it the body).
pub fn propagate_evalsha(db: usize, sha: &str, evalsha: &[Bytes], eval: &[Bytes]) {
    if !active() {
        return;
    }
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        u.custom = true;
        u.effects.push(Effect {
            db: db as i32,
            resp: encode(evalsha),
            eval_form: Some((sha.to_ascii_lowercase(), encode(eval))),
        });
    });
}

/// While a script replicated verbatim runs, its `redis.call`s record
/// nothing (the replica runs the script itself).
pub fn verbatim_script(on: bool) {
    UNIT.with(|u| {
        let mut u = u.borrow_mut();
        if on {
            u.verbatim_script += 1;
        } else {
            u.verbatim_script -= 1;
        }
    });
}

/// A key deleted here because its TTL passed: replicas get a DEL. Inside
/// a unit it joins the unit's effects (before the command's own); outside
/// (active expiry) it is a record of its own.
pub fn expired(db: usize, key: &[u8]) {
    if !active() {
        return;
    }
    let standalone = UNIT.with(|u| {
        let mut u = u.borrow_mut();
        let e = Effect {
            db: db as i32,
            resp: encode(&[b"DEL".as_slice(), key]),
            eval_form: None,
        };
        if u.depth == 0 {
            Some(vec![e])
        } else {
            u.effects.push(e);
            None
        }
    });
    if let Some(effects) = standalone {
        send(effects);
    }
}

/// Whether `lua-replicate-commands no` asks for verbatim scripts.
pub fn scripts_verbatim(srv: &crate::server::Server) -> bool {
    !srv.config
        .read()
        .unwrap()
        .get_bool("lua-replicate-commands")
}

/// 40 random hex characters.
pub fn random_id() -> String {
    (0..40)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect()
}
