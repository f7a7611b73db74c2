//! Parallel apply of the master's stream on a replica.
//!
//! The link task parses what it read into commands and hands the run to
//! `apply_run`, which holds every shard (ascending, as any hold) for the
//! whole run, so readers and snapshots see either none or all of it and the
//! offset fed at the end always matches the data. Inside the hold the run
//! is cut into phases: a maximal sequence of commands whose keys all live on
//! one shard is split per shard and each shard applies its part on its own
//! thread at once (`Msg::Call` to the owner of a held store, which is free
//! to touch it: its gate is ours and we do not touch it meanwhile); any
//! other command (several shards, no known keys, scripts, FLUSH*, SWAPDB...)
//! runs alone on the link's thread with a view of every store, in stream
//! order, after the phase before it finished everywhere. Each key's writes
//! keep the stream's order: they all go to one shard, in order.

use std::rc::Rc;

use bytes::Bytes;

use super::master;
use super::replica::{MasterApply, apply_one, not_applied, with_link};
use crate::commands::{Command, Scope, Special};
use crate::server::client::Client;
use crate::server::shard::{Msg, Payload, ShardRt};
use crate::storage::slot::key_shard;

/// One command of the master's stream: its arguments (None: only its bytes
/// count, a discarded MULTI block), the command they name (looked up once,
/// by the link) and its raw bytes (a slice of what was read, no copy).
pub struct StreamCmd {
    pub args: Option<Vec<Bytes>>,
    pub cmd: Option<(usize, &'static Command)>,
    pub raw: Bytes,
}

/// A single-shard command ready to run on its shard.
struct Op {
    idx: usize,
    cmd: &'static Command,
    db: usize,
    args: Vec<Bytes>,
}

/// What to do with one command of the stream.
enum Kind {
    /// Nothing to run (MULTI, EXEC, PING, REPLCONF; SELECT is tracked here).
    Skip,
    /// Every key on this shard.
    Shard(usize, usize, &'static Command),
    /// The cross-shard path: alone, every store in view.
    Serial,
}

/// The shard a command's keys all live on, if it may run there alone.
fn classify(args: &[Bytes], found: Option<(usize, &'static Command)>, nshards: usize) -> Kind {
    let Some((idx, cmd)) = found else {
        return Kind::Serial; // apply_one logs it
    };
    match cmd.special {
        Special::Multi | Special::Exec | Special::Ping | Special::Replconf => return Kind::Skip,
        Special::None => {}
        _ => return Kind::Serial,
    }
    if cmd.scope != Scope::Keys || !cmd.arity_ok(args.len()) || cmd.reaches_unknown_keys(args) {
        return Kind::Serial;
    }
    match one_shard(cmd, args, nshards) {
        Some(s) => Kind::Shard(s, idx, cmd),
        None => Kind::Serial,
    }
}

/// The shard of every key of `args`, when they share one. The fixed key
/// positions (nearly every write) are walked without a Vec.
fn one_shard(cmd: &Command, args: &[Bytes], nshards: usize) -> Option<usize> {
    fn same(
        args: &[Bytes],
        mut keys: impl Iterator<Item = usize>,
        nshards: usize,
    ) -> Option<usize> {
        let s = key_shard(&args[keys.next()?], nshards);
        keys.all(|k| key_shard(&args[k], nshards) == s).then_some(s)
    }
    if cmd.movable {
        return same(args, cmd.key_indexes(args).into_iter(), nshards);
    }
    if cmd.first_key <= 0 {
        return None;
    }
    let n = args.len() as i32;
    let last = if cmd.last_key < 0 {
        n + cmd.last_key
    } else {
        cmd.last_key.min(n - 1)
    };
    let step = cmd.step.max(1) as usize;
    if cmd.first_key > last {
        return None;
    }
    same(
        args,
        (cmd.first_key as usize..=last as usize).step_by(step),
        nshards,
    )
}

/// SELECT from the stream: the DB, or None (logged) for a malformed one.
fn selected(args: &[Bytes], databases: usize) -> Option<usize> {
    match args
        .get(1)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|d| d.parse::<usize>().ok())
    {
        Some(d) if d < databases => Some(d),
        _ => {
            // A master's malformed SELECT (found by tests/fuzz_repl_stream.rs).
            crate::log::warning("== CRITICAL == bad SELECT from the master");
            None
        }
    }
}

/// Runs a shard's part of a phase on its own thread (the caller holds the
/// shard's gate for us). Replies are dropped; errors logged as in Redis.
fn run_ops(rt: &Rc<ShardRt>, ops: Vec<Op>) {
    let _master = MasterApply::enter();
    let mut view = rt.own();
    let mut out = crate::protocol::Out::new(false);
    // One context for the part: a clock read per 64 commands instead of
    // one per command (the part runs in about a millisecond).
    let mut ctx = crate::commands::Ctx::new(&mut out, 0, rt.srv, None, view.reborrow());
    ctx.no_block = true;
    for (i, op) in ops.into_iter().enumerate() {
        if i > 0 && i % 64 == 0 {
            ctx.now = crate::storage::now_ms();
            crate::storage::db::set_command_time(ctx.now);
        }
        ctx.out.buf.clear();
        ctx.db = op.db;
        crate::server::shard::run_handler(rt.stats(), op.idx, op.cmd, &mut ctx, &op.args);
        ctx.block = None;
        if ctx.out.buf.first() == Some(&b'-') {
            not_applied(rt, rt.srv, &ctx.out.buf, op.cmd.name, false);
        }
    }
}

/// Runs the pending per-shard parts at once, the local one inline, and
/// waits until every shard finished its part.
async fn run_phase(rt: &Rc<ShardRt>, phase: &mut [Vec<Op>]) {
    let mut waits = Vec::new();
    for (s, ops) in phase.iter_mut().enumerate() {
        if s == rt.id || ops.is_empty() {
            continue;
        }
        let ops = std::mem::take(ops);
        let (id, fut) = rt.new_slot();
        rt.post(
            s,
            Msg::Call {
                id,
                from: rt.id,
                f: Box::new(move |rt| {
                    run_ops(rt, ops);
                    Box::new(())
                }),
            },
        );
        waits.push(fut);
    }
    let local = std::mem::take(&mut phase[rt.id]);
    if !local.is_empty() {
        run_ops(rt, local);
    }
    for w in waits {
        // The reply through the channel orders the shard's writes before
        // whatever we run next on its store.
        w.await;
    }
}

/// Holds shards `0..upto`, in ascending order (deadlock-free with every
/// other holder, SAVE/BGSAVE and full syncs included).
async fn hold_upto(rt: &Rc<ShardRt>, upto: usize) {
    for s in 0..upto {
        hold(rt, s).await;
    }
}

async fn hold(rt: &Rc<ShardRt>, s: usize) {
    if s == rt.id {
        rt.gate.acquire().await;
    } else {
        let (id, fut) = rt.new_slot();
        rt.post(s, Msg::Hold { id, from: rt.id });
        fut.await;
    }
}

fn release_upto(rt: &Rc<ShardRt>, upto: usize) {
    for s in 0..upto {
        if s == rt.id {
            // Serves clients blocked on keys the run made ready.
            rt.serve_and_release();
        } else {
            rt.post(s, Msg::Release);
        }
    }
}

/// On the owner's thread: takes its gate if nobody holds or waits for it,
/// without waiting.
fn try_hold(rt: &Rc<ShardRt>) -> bool {
    if !rt.gate.is_free() {
        return false;
    }
    let mut acquire = std::pin::pin!(rt.gate.acquire());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // A free gate is granted on the first poll.
    std::future::Future::poll(acquire.as_mut(), &mut cx).is_ready()
}

/// One step of a run, in stream order.
enum Step {
    /// Single-shard commands, per shard, applied on all shards at once.
    Phase(Vec<Vec<Op>>),
    /// A command alone on the link's thread, every store in view, in `db`.
    Serial(usize, Vec<Bytes>),
}

/// Applies `cmds` (in stream order) with every shard held, and feeds their
/// bytes to this node's backlog in the same hold: the offset never covers
/// a command not applied on every shard, nor lags the data a snapshot sees.
/// `client` is the master's client (its DB is the stream's).
///
/// The run is classified before the hold. When it starts with a phase and
/// the highest shard is another thread's, that shard is taken together
/// with its part of the phase in one message (if its gate is free: a try,
/// so the ascending order is kept; else it is held in order afterwards):
/// one cross-thread round trip per run instead of two.
pub async fn apply_run(rt: &Rc<ShardRt>, client: &mut Client, cmds: Vec<StreamCmd>, link_gen: u64) {
    if cmds.is_empty() {
        return;
    }
    let srv = rt.srv;
    let n = srv.nshards;
    let empty = || -> Vec<Vec<Op>> { (0..n).map(|_| Vec::new()).collect() };
    let mut steps = Vec::new();
    let mut phase = empty();
    let mut pending = false;
    // The run's bytes, fed to the backlog after it applied (copied only if
    // this node keeps a backlog).
    let mut raw = Vec::with_capacity(cmds.len());
    let mut db = client.db;
    for StreamCmd {
        args,
        cmd,
        raw: bytes,
    } in cmds
    {
        let Some(args) = args else {
            raw.push(bytes);
            continue;
        };
        if cmd.is_some_and(|(_, c)| c.special == Special::Select) {
            if let Some(d) = selected(&args, srv.databases) {
                db = d;
            }
            raw.push(bytes);
            continue;
        }
        crate::aof::feed_applied(db, &args, &bytes);
        raw.push(bytes);
        match classify(&args, cmd, n) {
            Kind::Skip => {}
            Kind::Shard(s, idx, cmd) => {
                phase[s].push(Op { idx, cmd, db, args });
                pending = true;
            }
            Kind::Serial => {
                if pending {
                    steps.push(Step::Phase(std::mem::replace(&mut phase, empty())));
                    pending = false;
                }
                steps.push(Step::Serial(db, args));
            }
        }
    }
    if pending {
        steps.push(Step::Phase(phase));
    }
    let last = n - 1;
    let combined =
        rt.id != last && matches!(steps.first(), Some(Step::Phase(p)) if !p[last].is_empty());
    let upto = if combined { last } else { n };
    hold_upto(rt, upto).await;
    // REPLICAOF holds every shard too: a replaced link stops here (it
    // cannot be halfway, we hold shard 0).
    if with_link(link_gen, |_| ()).is_none() {
        release_upto(rt, upto);
        return;
    }
    let mut steps = steps.into_iter();
    if combined && let Some(Step::Phase(mut p)) = steps.next() {
        let ops = std::mem::take(&mut p[last]);
        let (id, fut) = rt.new_slot();
        rt.post(
            last,
            Msg::Call {
                id,
                from: rt.id,
                f: Box::new(move |rt| {
                    if try_hold(rt) {
                        run_ops(rt, ops);
                        Box::new(None::<Vec<Op>>)
                    } else {
                        Box::new(Some(ops))
                    }
                }),
            },
        );
        run_phase(rt, &mut p).await;
        let back = match fut.await {
            Payload::Any(b) => b.downcast::<Option<Vec<Op>>>().ok().and_then(|b| *b),
            _ => None,
        };
        if let Some(ops) = back {
            // Busy: every lower shard is ours, so waiting keeps the order.
            hold(rt, last).await;
            let mut p = empty();
            p[last] = ops;
            run_phase(rt, &mut p).await;
        }
    }
    // Every gate is ours from here (the combined phase took or held the last).
    let mut view = rt.stores.held(&(0..n).collect::<Vec<_>>());
    for step in steps {
        match step {
            Step::Phase(mut p) => run_phase(rt, &mut p).await,
            Step::Serial(d, args) => {
                client.select(d);
                let _master = MasterApply::enter();
                apply_one(rt, client, &mut view, &args);
            }
        }
    }
    client.select(db);
    master::feed_applied(link_gen, &raw);
    with_link(link_gen, |st| {
        st.replica.of.as_mut().unwrap().stream_db = db as i64;
    });
    release_upto(rt, n);
}
