//! One shard's runtime: its executor-local state, the message mesh to the
//! other shards, and the two ways to run a command (inline / as a hop).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use std::sync::Arc;

use super::blocking::{self, Waiter};
use super::gate::Gate;
use super::{Server, ThreadStats};
use std::sync::atomic::Ordering;

use crate::commands::{BlockRequest, Command, Ctx, Special, flags};
use crate::protocol::Out;
use crate::server::watch::{self, WATCHING_CLIENTS};

/// A command sent to the shard that owns its keys.
#[derive(Clone)]
pub struct Job {
    pub cmd_idx: usize,
    pub cmd: &'static Command,
    pub args: Vec<Bytes>,
    pub db: usize,
    pub resp3: bool,
    /// Blocking commands: the waiter to register if the command blocks.
    /// Without one, a command that would block replies as on timeout.
    pub waiter: Option<Arc<Waiter>>,
    /// Reply as on timeout instead of blocking (the deadline passed).
    pub no_block: bool,
    /// A script's restricted ACL user (see `Ctx::caller`).
    pub caller: Option<crate::commands::Caller>,
    /// Who sent it (slow log entries).
    pub origin: Option<Arc<super::client::ClientInfo>>,
}

impl Job {
    pub fn new(
        cmd_idx: usize,
        cmd: &'static Command,
        args: Vec<Bytes>,
        db: usize,
        resp3: bool,
    ) -> Job {
        Job {
            cmd_idx,
            cmd,
            args,
            db,
            resp3,
            waiter: None,
            no_block: false,
            caller: None,
            origin: None,
        }
    }

    pub fn by(mut self, origin: &Arc<super::client::ClientInfo>) -> Job {
        self.origin = Some(origin.clone());
        self
    }
}

/// The reply of a job, and what it waits for if it blocked (then `out` is empty).
pub struct JobResult {
    pub out: Out,
    pub block: Option<BlockRequest>,
    /// A script asked to be re-run holding every shard (`Ctx::need_all_shards`).
    pub need_all: bool,
}

/// A function run on another shard's thread (pub/sub fan-out, queries).
pub type RemoteFn = Box<dyn FnOnce(&Rc<ShardRt>) -> Box<dyn std::any::Any + Send> + Send>;

pub enum Msg {
    /// Run `f` on the shard; answer with `Reply { Any }`.
    Call {
        id: u64,
        from: usize,
        f: RemoteFn,
    },
    /// Run these jobs in order; answer with `Reply { Outs }`.
    Exec {
        id: u64,
        from: usize,
        jobs: Vec<Job>,
    },
    /// Acquire the gate for `from`; answer with `Reply { Held }` once held.
    Hold {
        id: u64,
        from: usize,
    },
    /// Deliver a published message to this shard's subscribers (no reply).
    Publish {
        kind: super::pubsub::Kind,
        channel: Bytes,
        message: Bytes,
    },
    /// Block this thread until the barrier is released (BGSAVE's fork).
    Park(std::sync::Arc<super::persist::ParkBarrier>),
    /// Release a gate acquired by Hold.
    Release,
    /// Over maxmemory: evict some of this shard's keys (no reply).
    Evict,
    /// ACL rules changed: drop subscribers that lost a channel (no reply).
    AclChanged,
    /// A borrower's command signalled keys clients block on here (no reply).
    ServeReady,
    /// Tracking invalidations wait for one of this shard's connections
    /// (in its `ClientInfo::tracking_out`): wake it (no reply).
    Push {
        client: u64,
    },
    Reply {
        id: u64,
        payload: Payload,
    },
}

pub enum Payload {
    Outs(Vec<JobResult>),
    Held,
    /// A blocked client's keys (on several shards) were signalled: retry.
    Retry,
    Any(Box<dyn std::any::Any + Send>),
}

pub use super::stores::{StoreRegistry, View};

#[derive(Default)]
struct ReplySlot {
    payload: RefCell<Option<Payload>>,
    waker: RefCell<Option<Waker>>,
}

/// Resolves when the matching `Msg::Reply` arrives.
pub struct ReplyFuture(Rc<ReplySlot>);

impl Future for ReplyFuture {
    type Output = Payload;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Payload> {
        if let Some(p) = self.0.payload.borrow_mut().take() {
            return Poll::Ready(p);
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

pub struct ShardRt {
    pub id: usize,
    pub srv: &'static Server,
    pub gate: Gate,
    pub stores: StoreRegistry,
    peers: Vec<Option<ConnectedSender<Msg>>>,
    pending: RefCell<HashMap<u64, Rc<ReplySlot>>>,
    next_id: Cell<u64>,
}

impl ShardRt {
    pub fn new(
        id: usize,
        srv: &'static Server,
        stores: StoreRegistry,
        peers: Vec<Option<ConnectedSender<Msg>>>,
    ) -> ShardRt {
        ShardRt {
            id,
            srv,
            gate: Gate::default(),
            stores,
            peers,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
        }
    }

    pub fn stats(&self) -> &ThreadStats {
        &self.srv.stats[self.id]
    }

    /// A view of this shard's store. Caller must be the owner thread with
    /// the gate free (or held by itself).
    pub fn own(&self) -> View<'_> {
        self.stores.owner(self.id)
    }

    /// Runs one keyed job on this shard's data, registers it as blocked if
    /// it blocks, and serves clients blocked on keys it made ready. The gate
    /// must be free or held by the caller.
    pub fn run_job(self: &Rc<Self>, job: &Job) -> JobResult {
        let r = self.run_job_once(job);
        if let Some(b) = &r.block {
            // Owner thread, gate free or ours (see above).
            let mut own = self.own();
            let store = own.store(self.id);
            let waiter = job.waiter.as_ref().expect("blocked without a waiter");
            let rerun = b.rerun_args.as_ref().map(|a| Job {
                args: a.clone(),
                ..job.clone()
            });
            let job = rerun.as_ref().unwrap_or(job);
            blocking::register(store, self.srv.nshards, job.db, &b.keys, waiter, Some(job));
        }
        self.serve_ready();
        r
    }

    /// Runs a non-blocking keyed command on this shard, writing its reply into
    /// `out` (the connection's write buffer). The gate must be free.
    pub fn run_inline(
        self: &Rc<Self>,
        idx: usize,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        out: &mut Out,
        origin: &super::client::ClientInfo,
    ) {
        self.run_unblocking(self.own(), idx, cmd, args, db, out, origin);
        self.serve_ready();
    }

    /// Runs a command that may not block against the stores of `view`.
    #[allow(clippy::too_many_arguments)]
    fn run_unblocking(
        &self,
        view: View<'_>,
        idx: usize,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        out: &mut Out,
        origin: &super::client::ClientInfo,
    ) {
        let mut ctx = Ctx::new(out, db, self.srv, None, view);
        ctx.origin = Some(origin);
        ctx.no_block = true;
        run_handler(self.stats(), idx, cmd, &mut ctx, args);
    }

    /// Runs a non-blocking command whose keys are all on shard `s` (not this
    /// one) here, with `s`'s store borrowed while its executor idles: no
    /// message, no wake-up of `s`. False, having run nothing, when `s` has
    /// not lent its store (busy, held, or borrowed by another shard).
    #[allow(clippy::too_many_arguments)]
    pub fn try_run_borrowed(
        self: &Rc<Self>,
        s: usize,
        idx: usize,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        out: &mut Out,
        origin: &super::client::ClientInfo,
    ) -> bool {
        // Keyspace events are published from the thread that runs the
        // command: borrowed runs (published from here) mixed with hops
        // (from the owner) would let another shard's subscribers hear two
        // events of one key out of order (tests/keyspace_events.rs).
        use crate::storage::notify;
        if notify::flags() & (notify::KEYSPACE | notify::KEYEVENT) != 0 {
            return false;
        }
        let Some(mut b) = self.stores.try_borrow(s) else {
            return false;
        };
        let mut view = b.view();
        self.run_unblocking(view.reborrow(), idx, cmd, args, db, out, origin);
        // Clients blocked on a key this command fed are served by the
        // owner, in their order (as after an Exec there).
        let ready = !view.store(s).ready_keys.is_empty();
        drop(view);
        drop(b);
        if ready {
            self.post(s, Msg::ServeReady);
        }
        ThreadStats::bump(&self.stats().borrowed_cmds, 1);
        true
    }

    /// Sends as much of `buf` as socket `fd` takes now, never waiting, with
    /// this shard's store lent to the other shards during the system call
    /// when its gate is free: a busy shard spends much of its time in
    /// send(2) (the kernel's TCP path), and a remote command arriving then
    /// runs on its connection's thread instead of hopping (issue 23). No
    /// reference into the store lives across the call: commands have run,
    /// and this thread runs nothing else until `reclaim` returns.
    pub fn send_lending(&self, fd: std::os::fd::RawFd, buf: &[u8]) -> std::io::Result<usize> {
        let lend = self.stores.len() > 1 && self.gate.is_free();
        if lend {
            self.stores.lend(self.id);
        }
        // SAFETY: `buf` is readable for its length; `fd` is the caller's
        // open socket; MSG_DONTWAIT never blocks the executor.
        let n = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        let err = (n < 0).then(std::io::Error::last_os_error);
        if lend {
            self.stores.reclaim(self.id);
        }
        match err {
            Some(e) => Err(e),
            None => Ok(n as usize),
        }
    }

    fn run_job_once(&self, job: &Job) -> JobResult {
        let mut out = Out::new(job.resp3);
        let mut ctx = Ctx::new(&mut out, job.db, self.srv, None, self.own());
        ctx.origin = job.origin.as_deref();
        ctx.no_block = job.no_block || job.waiter.is_none();
        ctx.caller = job.caller.clone();
        run_handler(self.stats(), job.cmd_idx, job.cmd, &mut ctx, &job.args);
        let block = ctx.block.take();
        let need_all = ctx.need_all_shards;
        JobResult {
            out,
            block,
            need_all,
        }
    }

    /// Serves clients blocked on keys that commands signalled ready, in
    /// FIFO order per key. Runs on the owner thread with the gate free.
    pub fn serve_ready(self: &Rc<Self>) {
        if !self.gate.is_free() {
            return; // the holder's release serves them
        }
        self.serve_ready_held();
    }

    /// Releases the gate after serving the ready keys: a gate handed from
    /// holder to holder is never free, so waiting for a free gate could
    /// starve blocked clients for as long as holds keep coming.
    pub fn serve_and_release(self: &Rc<Self>) {
        self.serve_ready_held();
        self.gate.release();
    }

    /// `serve_ready` for a caller that holds the gate and is done with the
    /// data (no other holder is touching it).
    fn serve_ready_held(self: &Rc<Self>) {
        // Owner thread; the gate is free or held by a finished holder.
        let mut own = self.own();
        let store = own.store(self.id);
        while let Some(dbkey) = store.ready_keys.pop() {
            let Some(queue) = store.blocked.remove(&dbkey) else {
                continue;
            };
            // Serve in arrival order. A waiter that finds nothing, or finds the
            // key holding another type (Redis keeps it blocked), keeps its place.
            let mut kept = std::collections::VecDeque::new();
            for entry in queue {
                let w = entry.waiter.clone();
                let Some(job) = entry.job.as_deref().and_then(|j| j.downcast_ref::<Job>()) else {
                    if w.claim() {
                        self.deliver(w.origin, w.wake_id, Payload::Retry);
                    }
                    continue;
                };
                if !w.claim() {
                    continue;
                }
                // A key now holding a type the command does not pop from keeps
                // its waiters blocked, as Redis (errors from other keys, e.g.
                // BLMOVE's destination, are delivered).
                let wrong_type = store.dbs[dbkey.0]
                    .dict
                    .get(&dbkey.1)
                    .is_some_and(|e| !waits_for(job.cmd, &e.value));
                let r = if wrong_type {
                    None
                } else {
                    Some(self.run_job_once(job))
                };
                let Some(r) = r.filter(|r| r.block.is_none()) else {
                    w.unclaim();
                    kept.push_back(entry);
                    continue;
                };
                self.deliver(w.origin, w.wake_id, Payload::Outs(vec![r]));
            }
            if !kept.is_empty() {
                // Waiters registered while serving (none today) go after.
                let q = store.blocked.entry(dbkey).or_default();
                kept.append(q);
                *q = kept;
            }
        }
    }

    /// Resolves reply `id` of shard `to`, locally or by message.
    pub fn deliver(self: &Rc<Self>, to: usize, id: u64, payload: Payload) {
        if to == self.id {
            self.handle(Msg::Reply { id, payload });
        } else {
            self.reply(to, id, payload);
        }
    }

    /// Sends `msg` to shard `to`. Bounded channels: waits if it is full.
    async fn send(&self, to: usize, msg: Msg) {
        let tx = self.peers[to].as_ref().expect("no channel to self");
        // A closed channel means the peer's executor is gone: only at shutdown.
        if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m))) =
            tx.try_send(msg)
        {
            let _ = tx.send(m).await;
        }
    }

    /// Sends a message that needs no answer, from synchronous code.
    pub fn post(self: &Rc<Self>, to: usize, msg: Msg) {
        let tx = self.peers[to].as_ref().expect("no channel to self");
        if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m))) =
            tx.try_send(msg)
        {
            let rt = self.clone();
            glommio::spawn_local(async move {
                let _ = rt.peers[to].as_ref().unwrap().send(m).await;
            })
            .detach();
        }
    }

    /// Evicts from this shard's store once its gate is free (after the hold
    /// of a multi-shard command that asked for it, if any).
    pub fn evict_soon(self: &Rc<Self>) {
        let rt = self.clone();
        glommio::spawn_local(async move {
            rt.gate.acquire().await;
            // The gate is ours: nobody else touches the store.
            let mut own = rt.own();
            let store = own.store(rt.id);
            crate::storage::evict::make_room(store, crate::storage::now_ms(), 100_000, 2000);
            crate::storage::evict::asked_done(rt.id);
            rt.serve_and_release();
        })
        .detach();
    }

    /// Sends without waiting; false if the channel is full.
    pub fn try_post(&self, to: usize, msg: Msg) -> bool {
        let tx = self.peers[to].as_ref().expect("no channel to self");
        tx.try_send(msg).is_ok()
    }

    /// Forgets a reply slot that will never be answered.
    pub fn drop_slot(&self, id: u64) {
        self.pending.borrow_mut().remove(&id);
    }

    pub fn new_slot(&self) -> (u64, ReplyFuture) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let slot = Rc::new(ReplySlot::default());
        self.pending.borrow_mut().insert(id, slot.clone());
        (id, ReplyFuture(slot))
    }

    /// Sends jobs to their shard; the returned future yields their replies.
    pub async fn exec_remote(&self, to: usize, jobs: Vec<Job>) -> ReplyFuture {
        let (id, fut) = self.new_slot();
        self.send(
            to,
            Msg::Exec {
                id,
                from: self.id,
                jobs,
            },
        )
        .await;
        fut
    }

    /// Runs `f` on every shard (this one inline) and returns the results in
    /// shard order. For fan-out that needs no data hold: pub/sub, queries.
    pub async fn call_all<T: Send + 'static>(
        self: &Rc<Self>,
        f: impl Fn(&Rc<ShardRt>) -> T + Send + Sync + Clone + 'static,
    ) -> Vec<T> {
        let mut futs = Vec::new();
        for s in 0..self.stores.len() {
            if s == self.id {
                continue;
            }
            let (id, fut) = self.new_slot();
            let g = f.clone();
            let call: RemoteFn = Box::new(move |rt| Box::new(g(rt)));
            self.send(
                s,
                Msg::Call {
                    id,
                    from: self.id,
                    f: call,
                },
            )
            .await;
            futs.push((s, fut));
        }
        let mut out: Vec<Option<T>> = (0..self.stores.len()).map(|_| None).collect();
        out[self.id] = Some(f(self));
        for (s, fut) in futs {
            if let Payload::Any(b) = fut.await {
                out[s] = b.downcast::<T>().ok().map(|b| *b);
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Holds every shard in `shards` (ascending, deduplicated), runs `f` with
    /// a view of their stores, releases them. Deadlock-free: every
    /// coordinator acquires in the same order, and waiting never blocks a thread.
    pub async fn with_shards<R>(
        self: &Rc<Self>,
        shards: &[usize],
        f: impl FnOnce(&mut View<'_>) -> R,
    ) -> R {
        debug_assert!(shards.windows(2).all(|w| w[0] < w[1]));
        for &s in shards {
            if s == self.id {
                self.gate.acquire().await;
            } else {
                let (id, fut) = self.new_slot();
                self.send(s, Msg::Hold { id, from: self.id }).await;
                fut.await;
            }
        }
        // The remote owners acknowledged the hold through the channel, which
        // orders their last writes before our reads (and ours before their
        // next reads on Release).
        let mut view = self.stores.held(shards);
        let r = f(&mut view);
        drop(view);
        for &s in shards {
            if s == self.id {
                self.gate.release();
                self.serve_ready_soon();
            } else {
                self.send(s, Msg::Release).await;
            }
        }
        r
    }

    /// Handles one message from another shard.
    pub fn handle(self: &Rc<Self>, msg: Msg) {
        match msg {
            Msg::Exec { id, from, jobs } => {
                if self.gate.is_free() {
                    let outs = jobs.iter().map(|j| self.run_job(j)).collect();
                    self.reply(from, id, Payload::Outs(outs));
                } else {
                    let rt = self.clone();
                    glommio::spawn_local(async move {
                        rt.gate.acquire().await;
                        let outs = jobs.iter().map(|j| rt.run_job(j)).collect();
                        // run_job could not serve blocked clients while the
                        // gate was ours: a push here must still wake them.
                        rt.serve_and_release();
                        rt.send(
                            from,
                            Msg::Reply {
                                id,
                                payload: Payload::Outs(outs),
                            },
                        )
                        .await;
                    })
                    .detach();
                }
            }
            Msg::Hold { id, from } => {
                let rt = self.clone();
                glommio::spawn_local(async move {
                    rt.gate.acquire().await;
                    rt.send(
                        from,
                        Msg::Reply {
                            id,
                            payload: Payload::Held,
                        },
                    )
                    .await;
                })
                .detach();
            }
            Msg::Publish {
                kind,
                channel,
                message,
            } => super::pubsub::deliver_local(kind, &channel, &message),
            Msg::Park(b) => b.park(),
            Msg::Call { id, from, f } => {
                let r = f(self);
                self.reply(from, id, Payload::Any(r));
            }
            Msg::Release => self.serve_and_release(),
            Msg::AclChanged => super::pubsub::kill_revoked(self.srv, self.id),
            Msg::Push { client } => super::tracking::push_local(client),
            Msg::Evict => self.evict_soon(),
            Msg::ServeReady => self.serve_ready(),
            Msg::Reply { id, payload } => {
                if let Some(slot) = self.pending.borrow_mut().remove(&id) {
                    *slot.payload.borrow_mut() = Some(payload);
                    if let Some(w) = slot.waker.borrow_mut().take() {
                        w.wake();
                    }
                }
            }
        }
    }

    /// Serves ready keys from a fresh task (callers that are inside
    /// `with_shards` must not recurse into job execution).
    fn serve_ready_soon(self: &Rc<Self>) {
        // Owner thread; only reads the length.
        if self.own().store(self.id).ready_keys.is_empty() {
            return;
        }
        let rt = self.clone();
        // Waits its turn for the gate: holders may follow one another.
        glommio::spawn_local(async move {
            rt.gate.acquire().await;
            rt.serve_and_release();
        })
        .detach();
    }

    fn reply(self: &Rc<Self>, to: usize, id: u64, payload: Payload) {
        let tx = self.peers[to].as_ref().expect("no channel to self");
        if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m))) =
            tx.try_send(Msg::Reply { id, payload })
        {
            let rt = self.clone();
            glommio::spawn_local(async move {
                let tx = rt.peers[to].as_ref().unwrap();
                let _ = tx.send(m).await;
            })
            .detach();
        }
    }

    /// Drains one incoming channel forever.
    pub async fn receive_loop(self: Rc<Self>, rx: ConnectedReceiver<Msg>) {
        while let Some(msg) = rx.recv().await {
            self.handle(msg);
        }
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Rc<ShardRt>>> = const { std::cell::RefCell::new(None) };
}

/// Makes `rt` the runtime of this thread (for synchronous code that must
/// reach other shards, like PUBLISH).
pub fn set_current(rt: &Rc<ShardRt>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(rt.clone()));
}

/// Eviction's request to shard `to` (`storage::Hooks::ask_evict`): from its own
/// thread (a coordinator holding it) a local task, else a message.
pub fn ask_evict(to: usize) -> bool {
    with_current(|rt| {
        if rt.id == to {
            rt.evict_soon();
            true
        } else {
            rt.try_post(to, Msg::Evict)
        }
    }) == Some(true)
}

/// Runs `f` with this thread's shard runtime, if any.
pub fn with_current<R>(f: impl FnOnce(&Rc<ShardRt>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// From the interrupt hook of a script running past busy-reply-threshold
/// on this thread: answers this shard's waiting connections (see
/// `busy`).
pub fn serve_while_busy() {
    super::busy::tick();
}

/// The busy script of this thread ended: the connections served meanwhile
/// take over.
pub fn busy_ended() {
    super::busy::ended();
}

/// Whether a blocking command pops from values like `v`: its family
/// (the COMMAND DOCS group) is the type it waits for. Stream readers check
/// the type themselves (XREADGROUP answers -UNBLOCKED when it changed).
fn waits_for(cmd: &Command, v: &crate::storage::Value) -> bool {
    use crate::storage::Value;
    matches!(
        (v, cmd.spec.map_or("", |s| s.group)),
        (Value::List(_), "list") | (Value::ZSet(_), "sorted-set") | (_, "stream")
    )
}

/// Sum of the `dirty` counters of the stores a context holds.
fn held_dirty(ctx: &mut Ctx) -> u64 {
    (0..ctx.nshards())
        .filter_map(|i| ctx.try_store(i).map(|s| s.dirty))
        .sum()
}

thread_local! {
    /// Handlers running inside another (EXEC, scripts): maxmemory was
    /// checked once for the whole unit.
    static NESTED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as part of a unit whose maxmemory check is done (EXEC's body).
pub fn nested<R>(f: impl FnOnce() -> R) -> R {
    NESTED.with(|n| n.set(n.get() + 1));
    let r = f();
    NESTED.with(|n| n.set(n.get() - 1));
    r
}

/// maxmemory before a top-level command, as Redis's processCommand: evict
/// from the shards held, then refuse a deny-oom command if still over.
pub fn oom_refused(ctx: &mut Ctx, denyoom: bool) -> bool {
    use crate::storage::evict;
    if NESTED.with(|n| n.get()) > 0
        || !evict::over_limit()
        || crate::replication::replica::MasterApply::active()
    {
        return false;
    }
    let now = ctx.now;
    let mut failed = true;
    for i in 0..ctx.nshards() {
        if let Some(s) = ctx.try_store(i) {
            match evict::make_room(s, now, 100_000, 500) {
                evict::Room::Ok => return false,
                evict::Room::Running => failed = false,
                evict::Room::Fail => {}
            }
        }
    }
    // Refused only when nothing here could be evicted (Redis's EVICT_FAIL).
    denyoom && failed && evict::over_limit()
}

/// Commands refused over maxmemory: deny-oom ones, and scripts whose
/// shebang flags neither `no-writes` nor `allow-oom` (Redis 7).
fn denyoom(cmd: &Command, args: &[Bytes]) -> bool {
    use crate::scripting::ScriptFlags;
    if cmd.flags & flags::DENYOOM != 0 {
        return true;
    }
    if !matches!(
        cmd.special,
        Special::Script { ro: false, .. } | Special::Function { ro: false }
    ) {
        return false;
    }
    crate::server::scripts::request_flags(cmd, args)
        .is_some_and(|f| !f.compat() && !f.has(ScriptFlags::ALLOW_OOM | ScriptFlags::NO_WRITES))
}

/// Runs a handler and records its statistics (calls, time, failures).
pub fn run_handler(
    stats: &ThreadStats,
    idx: usize,
    cmd: &'static Command,
    ctx: &mut Ctx,
    args: &[Bytes],
) {
    let tracking = super::tracking::engaged();
    let evicting = tracking && crate::storage::evict::over_limit();
    let refused = oom_refused(ctx, denyoom(cmd, args));
    // The client's own keys evicted just now: told before the reply.
    if evicting
        && NESTED.with(|n| n.get()) == 0
        && let Some(who) = ctx.client.as_ref().map(|c| &*c.info).or(ctx.origin)
    {
        let own = super::tracking::take_own(who);
        ctx.out.buf.extend_from_slice(&own);
    }
    if refused {
        ThreadStats::bump(&stats.cmd_rejected[idx], 1);
        ctx.out.err(crate::storage::evict::OOM_ERR);
        return;
    }
    let start = Instant::now();
    let before = ctx.out.len();
    let watching = cmd.is_write() && WATCHING_CLIENTS.load(Ordering::Relaxed) > 0;
    // SCAN and RANDOMKEY split their unit themselves
    // (replication::touches_arbitrary_keys), so inside EXEC they do not.
    let unit = crate::replication::enter();
    let dirty_before = if watching || tracking || unit.is_some() {
        held_dirty(ctx)
    } else {
        0
    };
    crate::crash::set_current(cmd.name);
    let script = tracking && super::tracking::script_enter(cmd, args);
    nested(|| (cmd.handler)(ctx, args));
    if script {
        super::tracking::script_leave();
    }
    let dirty_after = if watching || tracking || unit.is_some() {
        held_dirty(ctx)
    } else {
        0
    };
    if watching && dirty_after != dirty_before {
        watch::touch_watched(ctx, cmd, args);
    }
    if tracking {
        super::tracking::after_command(ctx, cmd, args, before, dirty_after != dirty_before);
        if NESTED.with(|n| n.get()) == 0 {
            super::tracking::flush_pending(ctx.srv);
        }
    }
    // Replayed on replicas: data commands that changed data. SAVE resets
    // the counters; SHUTDOWN, DEBUG and the like never replicate.
    // XGROUP is a container without flags of its own (its subcommands write).
    let replicated =
        cmd.flags & (flags::WRITE | flags::MAY_REPLICATE | flags::WRITE_SUBCOMMANDS) != 0;
    crate::replication::leave(unit, replicated && dirty_after > dirty_before, ctx.db, args);
    let us = start.elapsed().as_micros() as u64;
    // A call that blocked counts once, when it is served or times out (its
    // rerun comes back through here), as Redis counts it on unblock.
    if ctx.block.is_none() {
        ThreadStats::bump(&stats.cmd_calls[idx], 1);
        ThreadStats::bump(&stats.cmd_usec[idx], us);
        ThreadStats::bump(&stats.total_commands, 1);
    }
    let failed = ctx.out.buf.get(before) == Some(&b'-');
    if failed {
        ThreadStats::bump(&stats.cmd_failed[idx], 1);
        stats
            .ops
            .lock()
            .unwrap()
            .count_error(&ctx.out.buf[before..]);
    }
    // A command that blocked is timed when it is served (as Redis).
    if ctx.block.is_none() {
        after_call(
            stats,
            idx,
            cmd,
            ctx,
            args,
            us,
            failed.then(|| &ctx.out.buf[before..]),
        );
    }
}

/// Slow log, latency events and the command's latency histogram.
fn after_call(
    stats: &ThreadStats,
    idx: usize,
    cmd: &'static Command,
    ctx: &Ctx,
    args: &[Bytes],
    us: u64,
    error: Option<&[u8]>,
) {
    let ops = &ctx.srv.ops;
    // An unknown subcommand or a wrong arity is a rejection in Redis:
    // never run, so neither logged nor timed.
    let container = crate::commands::is_container(idx);
    if container
        && (args.len() < 2
            || error.is_some_and(|e| {
                e.starts_with(b"-ERR unknown subcommand '")
                    || e.starts_with(b"-ERR wrong number of arguments")
            }))
    {
        return;
    }
    if cmd.flags & flags::SKIP_SLOWLOG == 0 && ops.is_slow(us) {
        let who = ctx.client.as_ref().map(|c| &*c.info).or(ctx.origin);
        let (addr, name) = match who {
            Some(c) => (c.addr.as_str(), c.name.lock().unwrap().clone()),
            None => ("", String::new()),
        };
        ops.slowlog_push(args, us, addr, &name);
    }
    let event = if cmd.flags & flags::FAST != 0 {
        "fast-command"
    } else {
        "command"
    };
    ops.latency_sample(event, us / 1000);
    if !ops.latency_tracking.load(Ordering::Relaxed) {
        return;
    }
    // Containers are timed per subcommand.
    let sub = if container {
        match super::client::subcommand_full_name(cmd.name, &args[1]) {
            Some(n) => Some(n),
            None => return,
        }
    } else {
        None
    };
    stats.ops.lock().unwrap().record(idx, sub, us);
}
