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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
}

thread_local! {
    static UNIT: RefCell<Unit> = RefCell::new(Unit::default());
}

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
    v.push(b'*');
    v.extend_from_slice(args.len().to_string().as_bytes());
    v.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        v.push(b'$');
        v.extend_from_slice(a.len().to_string().as_bytes());
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
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
            Some(std::mem::take(&mut u.effects))
        } else {
            None
        }
    });
    if let Some(effects) = record {
        send(effects);
    }
}

/// Drops the effects the running unit gathered so far (DEBUG LOADAOF: what
/// it replays from the file is not propagated again, as stock's dirty = 0).
pub fn discard_effects() {
    UNIT.with(|u| u.borrow_mut().effects.clear());
}

/// Takes the next LSN and hands the record to the replication core.
fn send(effects: Vec<Effect>) {
    let lsn = NEXT_LSN.fetch_add(1, Ordering::SeqCst);
    master::submit(Record { lsn, effects });
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
