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

use super::gate::Gate;
use super::{Server, ThreadStats};
use crate::commands::{Command, Ctx};
use crate::protocol::Out;
use crate::storage::ShardStore;

/// A command sent to the shard that owns its keys.
pub struct Job {
    pub cmd_idx: usize,
    pub cmd: &'static Command,
    pub args: Vec<Bytes>,
    pub db: usize,
    pub resp3: bool,
}

pub enum Msg {
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
    /// Release a gate acquired by Hold.
    Release,
    Reply {
        id: u64,
        payload: Payload,
    },
}

pub enum Payload {
    Outs(Vec<Out>),
    Held,
}

/// Raw pointers to every shard's store, set up before the executors start.
/// Each store is touched only by its owner thread, or by a coordinator
/// while the owner's gate is held for it.
#[derive(Clone)]
pub struct StoreRegistry(pub Vec<*mut ShardStore>);
// SAFETY: the pointers are only dereferenced under the ownership/hold
// protocol described above; the registry itself is immutable.
unsafe impl Send for StoreRegistry {}
unsafe impl Sync for StoreRegistry {}

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
    /// Only this shard's pointer set: the view of a command running inline.
    local_view: Vec<*mut ShardStore>,
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
        let local_view = (0..stores.0.len())
            .map(|i| {
                if i == id {
                    stores.0[i]
                } else {
                    std::ptr::null_mut()
                }
            })
            .collect();
        ShardRt {
            id,
            srv,
            gate: Gate::default(),
            stores,
            local_view,
            peers,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
        }
    }

    pub fn stats(&self) -> &ThreadStats {
        &self.srv.stats[self.id]
    }

    /// This shard's store. Caller must be the owner thread with the gate free
    /// (or held by itself).
    pub fn store_ptr(&self) -> *mut ShardStore {
        self.stores.0[self.id]
    }

    /// Runs one keyed job on this shard's data. The gate must be free or
    /// held by the caller.
    pub fn run_job(&self, job: &Job) -> Out {
        let mut out = Out::new(job.resp3);
        let mut ctx = Ctx::new(&mut out, job.db, self.srv, None, &self.local_view);
        run_handler(self.stats(), job.cmd_idx, job.cmd, &mut ctx, &job.args);
        out
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

    fn new_slot(&self) -> (u64, ReplyFuture) {
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

    /// Holds every shard in `shards` (ascending, deduplicated), runs `f` with
    /// a view of their stores, releases them. Deadlock-free: every
    /// coordinator acquires in the same order, and waiting never blocks a thread.
    pub async fn with_shards<R>(
        &self,
        shards: &[usize],
        f: impl FnOnce(&[*mut ShardStore]) -> R,
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
        let mut view = vec![std::ptr::null_mut(); self.stores.0.len()];
        for &s in shards {
            view[s] = self.stores.0[s];
        }
        // The remote owners acknowledged the hold through the channel, which
        // orders their last writes before our reads (and ours before their
        // next reads on Release).
        let r = f(&view);
        for &s in shards {
            if s == self.id {
                self.gate.release();
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
                        rt.gate.release();
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
            Msg::Release => self.gate.release(),
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

/// Runs a handler and records its statistics (calls, time, failures).
pub fn run_handler(
    stats: &ThreadStats,
    idx: usize,
    cmd: &'static Command,
    ctx: &mut Ctx,
    args: &[Bytes],
) {
    let start = Instant::now();
    let before = ctx.out.len();
    (cmd.handler)(ctx, args);
    let us = start.elapsed().as_micros() as u64;
    ThreadStats::bump(&stats.cmd_calls[idx], 1);
    ThreadStats::bump(&stats.cmd_usec[idx], us);
    ThreadStats::bump(&stats.total_commands, 1);
    if ctx.out.buf.get(before) == Some(&b'-') {
        ThreadStats::bump(&stats.cmd_failed[idx], 1);
    }
}
