//! processCommand: a parsed batch of commands, each checked, queued in
//! MULTI or routed to the shard(s) its keys live on, replies in order.

mod blocked;
mod checks;
mod exec;
mod open_slot;
pub(crate) mod route;
mod wait;

pub(crate) use checks::acl_log_for;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use glommio::net::TcpStream;

use super::ThreadStats;
use super::client::{Queued, ReplyMode};
use super::conn::Conn;
use super::shard::{Job, ShardRt, run_handler};
use crate::commands::{self, Command, Ctx, Special, flags};
use crate::protocol::Out;
use crate::server::watch;
use crate::storage::slot::key_shard;
use route::{Route, is_script};

/// A command waiting for its reply within the current pipeline.
pub(crate) struct Slot {
    pub(crate) out: Option<Out>,
    /// Replies of remote batch `batch`, position `pos`.
    pub(crate) remote: Option<(usize, usize)>,
    pub(crate) suppress: bool,
}

impl Conn<'_> {
    /// Runs a batch of parsed commands. Single-shard commands are grouped per
    /// shard and sent in one message per shard; anything else is a barrier
    /// that first completes the commands before it.
    pub(crate) async fn run_pipeline(
        &mut self,
        stream: &TcpStream,
        cmds: Vec<Vec<Bytes>>,
        wbuf: &mut Vec<u8>,
    ) {
        let mut slots: Vec<Slot> = Vec::with_capacity(cmds.len());
        let nshards = self.rt.srv.nshards;
        if cmds.len() > 1 && self.rt.gate.is_free() {
            self.prefetch_keys(&cmds);
        }
        let mut batches: Vec<Vec<Job>> = (0..nshards).map(|_| Vec::new()).collect();
        // Last-interaction time for CLIENT LIST: once per batch is enough.
        let batch_ms = crate::storage::now_ms();
        for args in cmds {
            // After QUIT (or a self CLIENT KILL, or PSYNC) nothing more runs.
            if self.client.close_after_reply || self.client.sync_request.is_some() {
                break;
            }
            if super::ops::writes_paused() {
                let write = self.may_write(&args);
                if super::ops::holds(write) {
                    // CLIENT PAUSE or FAILOVER: this command waits, after
                    // what came before it, until the pause ends (after a
                    // FAILOVER it then likely meets READONLY).
                    self.complete(&mut slots, &mut batches).await;
                    // Counted as blocked meanwhile, as Redis's postponed
                    // clients (INFO blocked_clients, CLIENT LIST flag b).
                    let _postponed = Postponed::new(self.rt.srv, &self.client.info);
                    while super::ops::holds(write) {
                        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
            }
            let tracking = super::tracking::ACTIVE.load(Ordering::Relaxed) > 0;
            if tracking {
                self.end_caching(&mut slots, &mut batches).await;
            }
            let suppress = self.reply_suppressed();
            let resp3 = self.client.resp3;
            let asking = self.client.asking;
            // Queued in MULTI on an open slot: -ASK / -TRYAGAIN now, and
            // the transaction fails (Redis's flagTransaction).
            if self.client.multi.is_some()
                && self.rt.srv.cluster.is_some()
                && let Some((idx, cmd)) = commands::lookup(&args[0])
                && !cmd.special.is_tx_control()
                && cmd.arity_ok(args.len())
                && let Some(open_slot::OpenSlotOutcome::Redirected(out)) = self
                    .open_slot(idx, cmd, &args, asking, true, &mut slots, &mut batches)
                    .await
            {
                count_error(&self.rt, &out);
                self.client.multi_error = true;
                self.clear_asking(&args);
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            let Some((idx, cmd, args)) = self.admit(args, &mut slots, suppress, batch_ms) else {
                self.client.after_client_cmd = false;
                continue;
            };
            // (Un)subscribe confirmations are pushed even under CLIENT REPLY
            // OFF/SKIP (stock's CLIENT_PUSHING); PUBLISH's reply is not a push.
            let suppress = suppress
                && cmd.flags & (flags::PUBSUB | flags::NOSCRIPT) != flags::PUBSUB | flags::NOSCRIPT
                // CLIENT REPLY ON answers +OK whatever the mode was.
                && !(cmd.special == Special::Client && crate::server::client::is_reply_on(&args));
            if tracking {
                self.client.after_client_cmd = cmd.special == Special::Client;
            }
            if cmd.special == Special::Wait {
                self.complete(&mut slots, &mut batches).await;
                let out = self.wait_replicas(&args).await;
                count_error(&self.rt, &out);
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            if cmd.special == Special::Exec {
                self.complete(&mut slots, &mut batches).await;
                let out = self.exec(idx).await;
                if out.buf.first() == Some(&b'-') {
                    // EXECABORT, EXEC without MULTI: a call that failed.
                    count_error(&self.rt, &out);
                    ThreadStats::bump(&self.rt.stats().cmd_calls[idx], 1);
                    ThreadStats::bump(&self.rt.stats().cmd_failed[idx], 1);
                }
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            // A slot being migrated or imported: served only if the keys
            // allow it (ASK / TRYAGAIN otherwise), decided on its shard.
            if self.rt.srv.cluster.is_some()
                && let Some(outcome) = self
                    .open_slot(idx, cmd, &args, asking, false, &mut slots, &mut batches)
                    .await
            {
                let out = match outcome {
                    open_slot::OpenSlotOutcome::Redirected(out) => {
                        count_error(&self.rt, &out);
                        if cmd.special == Special::Exec {
                            // A redirected EXEC discards the transaction.
                            self.client.multi = None;
                            self.client.multi_error = false;
                            watch::unwatch_all(self.client);
                        }
                        out
                    }
                    open_slot::OpenSlotOutcome::Ran(out) => out,
                };
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            let mut route = self.route(cmd, &args);
            // Over maxmemory, a client hearing its own invalidations holds
            // every shard: what the command evicts on any of them is told
            // before its reply (stock evicts before running a command).
            if nshards > 1
                && matches!(route, Route::Shard(_))
                && cmd.flags & flags::BLOCKING == 0
                && !is_script(cmd)
                && super::conn::gets_pushes(self.client)
                && crate::storage::evict::over_limit()
            {
                route = Route::Hold((0..nshards).collect());
            }
            if is_script(cmd) {
                self.complete(&mut slots, &mut batches).await;
                let mut job = Job::new(idx, cmd, args, self.client.db, resp3).by(&self.client.info);
                job.caller = self.script_caller();
                let mut r = self.run_routed(job.clone(), &route).await;
                if r.need_all {
                    let all: Vec<usize> = (0..nshards).collect();
                    r = self.run_held(&job, &all).await;
                }
                slots.push(Slot {
                    out: Some(r.out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            if cmd.flags & flags::BLOCKING != 0 {
                self.complete(&mut slots, &mut batches).await;
                let Some(out) = self.run_blocking(stream, idx, cmd, args, route).await else {
                    // The client went away while blocked.
                    self.client.close_after_reply = true;
                    return;
                };
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            // Another shard's key, nothing in flight before it: run it here
            // on that shard's store if its idle owner lent it (no message,
            // no wake-up), else as a job below.
            if let Route::Shard(s) = route
                && s != self.rt.id
                && cmd.special == Special::None
                && batches.iter().all(|b| b.is_empty())
                && self.try_borrowed(s, idx, cmd, &args, &mut slots, suppress, wbuf)
            {
                continue;
            }
            match route {
                // Local key, nothing in flight before it: run now, straight
                // into the write buffer (no job, no reply copy).
                Route::Shard(s)
                    if s == self.rt.id
                        && batches.iter().all(|b| b.is_empty())
                        && self.rt.gate.is_free() =>
                {
                    for sl in slots.drain(..) {
                        if let (false, Some(o)) = (sl.suppress, sl.out) {
                            wbuf.extend_from_slice(&o.buf);
                        }
                    }
                    let db = self.client.db;
                    if suppress {
                        let mut scratch = Out::new(resp3);
                        self.rt
                            .run_inline(idx, cmd, &args, db, &mut scratch, &self.client.info);
                    } else {
                        let mut out = Out {
                            buf: std::mem::take(wbuf),
                            resp3,
                        };
                        self.rt
                            .run_inline(idx, cmd, &args, db, &mut out, &self.client.info);
                        *wbuf = out.buf;
                    }
                    // Its own invalidations follow the reply (Redis's
                    // tracking_pending_keys).
                    self.take_pushes(wbuf);
                }
                Route::Shard(s) => {
                    slots.push(Slot {
                        out: None,
                        remote: Some((s, batches[s].len())),
                        suppress,
                    });
                    batches[s].push(
                        Job::new(idx, cmd, args, self.client.db, resp3).by(&self.client.info),
                    );
                }
                Route::Hold(shards) => {
                    self.complete(&mut slots, &mut batches).await;
                    let job = Job::new(idx, cmd, args, self.client.db, resp3);
                    let out = self.run_held(&job, &shards).await.out;
                    slots.push(Slot {
                        out: Some(out),
                        remote: None,
                        suppress,
                    });
                }
                Route::Conn => {
                    self.complete(&mut slots, &mut batches).await;
                    let info = self.client.info.clone();
                    info.argv_mem
                        .store(args.iter().map(|a| a.len()).sum(), Ordering::Relaxed);
                    let out = self.run_conn(idx, cmd, &args);
                    info.argv_mem.store(0, Ordering::Relaxed);
                    slots.push(Slot {
                        out: Some(out),
                        remote: None,
                        suppress,
                    });
                }
            }
        }
        self.complete(&mut slots, &mut batches).await;
        // CLIENT LIST's multi / multi-mem (argv bytes + a pointer per argument).
        let (n, mem) = match &self.client.multi {
            Some(q) => (
                q.len() as i64,
                q.iter()
                    .map(|c| c.args.iter().map(|a| a.len() + 8).sum::<usize>())
                    .sum(),
            ),
            None => (-1, 0),
        };
        self.client.info.multi.store(n, Ordering::Relaxed);
        self.client.info.multi_mem.store(mem, Ordering::Relaxed);
        for s in slots {
            if !s.suppress
                && let Some(o) = s.out
            {
                wbuf.extend_from_slice(&o.buf);
            }
        }
        self.take_pushes(wbuf);
    }

    /// A tracking client's invalidations go out after the replies before
    /// them (a subscriber's are written by its read loop).
    fn take_pushes(&mut self, wbuf: &mut Vec<u8>) {
        if !self.client.subs.any() && super::conn::gets_pushes(self.client) {
            super::tracking::drain(&self.client.info, &self.client.subs.queue);
            wbuf.extend_from_slice(&self.client.subs.queue.take());
        }
    }

    /// CLIENT CACHING applies to the one command after it (or the
    /// transaction): once that command ran, the flag goes (Redis clears it
    /// after any command but CLIENT, outside MULTI).
    async fn end_caching(&mut self, slots: &mut [Slot], batches: &mut [Vec<Job>]) {
        use super::tracking::CACHING;
        let info = self.client.info.clone();
        if info.tracking.load(Ordering::Relaxed) & CACHING == 0
            || self.client.after_client_cmd
            || self.client.multi.is_some()
        {
            return;
        }
        // The command it applied to may still be running on another shard.
        self.complete(slots, batches).await;
        info.tracking.fetch_and(!CACHING, Ordering::Relaxed);
    }

    /// Runs a command on shard `s`'s borrowed store, its reply going
    /// straight into the write buffer after the completed ones before it.
    /// False (nothing run) when `s` did not lend its store.
    #[allow(clippy::too_many_arguments)]
    fn try_borrowed(
        &mut self,
        s: usize,
        idx: usize,
        cmd: &'static Command,
        args: &[Bytes],
        slots: &mut Vec<Slot>,
        suppress: bool,
        wbuf: &mut Vec<u8>,
    ) -> bool {
        let (db, resp3) = (self.client.db, self.client.resp3);
        if suppress {
            let mut scratch = Out::new(resp3);
            return self.rt.try_run_borrowed(
                s,
                idx,
                cmd,
                args,
                db,
                &mut scratch,
                &self.client.info,
            );
        }
        // Every slot before is complete (nothing in flight): flushing them
        // is harmless even if the store is not lent.
        for sl in slots.drain(..) {
            if let (false, Some(o)) = (sl.suppress, sl.out) {
                wbuf.extend_from_slice(&o.buf);
            }
        }
        let mut out = Out {
            buf: std::mem::take(wbuf),
            resp3,
        };
        let ran = self
            .rt
            .try_run_borrowed(s, idx, cmd, args, db, &mut out, &self.client.info);
        *wbuf = out.buf;
        ran
    }

    /// The part of a command's way that needs no other shard: the checks
    /// (a rejection flags or ends the transaction), and queueing inside
    /// MULTI. Returns the command when it is to be run; otherwise its reply
    /// is in `slots`. The busy-script hook uses it too.
    pub(crate) fn admit(
        &mut self,
        args: Vec<Bytes>,
        slots: &mut Vec<Slot>,
        suppress: bool,
        now_ms: u64,
    ) -> Option<(usize, &'static Command, Vec<Bytes>)> {
        // processCommand's tracking-table limit, queued commands included:
        // the client's own invalidations go before this reply.
        if super::tracking::limit_before_command(self.rt.srv) {
            let own = super::tracking::take_own(&self.client.info);
            if !own.is_empty() {
                slots.push(Slot {
                    out: Some(Out {
                        buf: own,
                        resp3: self.client.resp3,
                    }),
                    remote: None,
                    suppress: false,
                });
            }
        }
        let checked = self.check(&args, slots, suppress);
        self.clear_asking(&args);
        let Some((idx, cmd)) = checked else {
            let exec = commands::lookup(&args[0]).is_some_and(|(_, c)| c.special == Special::Exec);
            if exec {
                // A rejected EXEC discards the transaction (execCommandAbort).
                self.client.multi = None;
                self.client.multi_error = false;
                watch::unwatch_all(self.client);
            } else if self.client.multi.is_some() {
                self.client.multi_error = true;
            }
            return None;
        };
        self.client.info.touch(now_ms, idx, &args);
        if let Some(queue) = self.client.multi.as_mut()
            && !cmd.special.is_tx_control()
        {
            let mut out = Out::new(self.client.resp3);
            if cmd.flags & flags::NO_MULTI != 0 {
                out.err("ERR Command not allowed inside a transaction");
                count_error(&self.rt, &out);
                self.client.multi_error = true;
            } else {
                out.simple("QUEUED");
                queue.push(Queued { idx, cmd, args });
            }
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
            return None;
        }
        Some((idx, cmd, args))
    }

    /// Pipelines: the first key of each command that runs here is looked
    /// up ahead (a hint only: arguments that are not keys cost a wasted
    /// lookup), so the memory misses of the batch overlap.
    pub(crate) fn prefetch_keys(&self, cmds: &[Vec<Bytes>]) {
        // Owner thread with the gate free (checked by the caller): nobody
        // else touches the store, and this only reads it.
        let mut own = self.rt.own();
        let store = own.store(self.rt.id);
        let Some(db) = store.dbs.get(self.client.db) else {
            return;
        };
        let (nshards, me) = (self.rt.srv.nshards, self.rt.id);
        let local = cmds
            .iter()
            .filter_map(|args| args.get(1))
            .filter(|key| key_shard(key, nshards) == me);
        // Two steps: table slots and entries, then (entries now cached)
        // string values.
        for key in local.clone() {
            db.prefetch(key);
        }
        for key in local {
            db.prefetch_value(key);
        }
    }

    /// What CLIENT PAUSE WRITE holds back: writes, commands that may
    /// replicate (scripts, PUBLISH) and an EXEC with either queued;
    /// commands being queued are not held.
    pub(crate) fn may_write(&self, args: &[Bytes]) -> bool {
        let Some((_, cmd)) = commands::lookup(&args[0]) else {
            return false;
        };
        // A call with the wrong arity is answered at once, as Redis checks
        // arity before postponing.
        if !cmd.arity_ok(args.len()) {
            return false;
        }
        // A script with declared flags writes only without `no-writes`
        // (scriptFlagsToCmdFlags drops MAY_REPLICATE).
        let writes = |c: &Command, a: &[Bytes]| match crate::server::scripts::effective_flags(c, a)
        {
            Some((w, _)) => w,
            None => c.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0,
        };
        match &self.client.multi {
            Some(q) if cmd.special == Special::Exec => q.iter().any(|q| writes(q.cmd, &q.args)),
            Some(_) => false,
            None => writes(cmd, args),
        }
    }

    /// CLIENT REPLY OFF/SKIP: whether the next command's reply is dropped.
    pub(crate) fn reply_suppressed(&mut self) -> bool {
        match self.client.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::Skip => {
                self.client.reply_mode = ReplyMode::On;
                true
            }
            // Set by CLIENT REPLY SKIP itself: its own reply is dropped, the next one too.
            ReplyMode::SkipNext => {
                self.client.reply_mode = ReplyMode::Skip;
                true
            }
        }
    }

    pub(crate) fn run_conn(&mut self, idx: usize, cmd: &'static Command, args: &[Bytes]) -> Out {
        let srv = self.rt.srv;
        let mut out = Out::new(self.client.resp3);
        let db = self.client.db;
        let none = crate::server::stores::View::none(srv.nshards);
        let mut ctx = Ctx::new(&mut out, db, srv, Some(&mut *self.client), none);
        run_handler(self.rt.stats(), idx, cmd, &mut ctx, args);
        out
    }
}

/// Counts an error reply produced outside a handler (rejections).
pub(crate) fn count_error(rt: &ShardRt, out: &Out) {
    if out.buf.first() == Some(&b'-') {
        rt.stats().ops.lock().unwrap().count_error(&out.buf);
    }
}

/// A command waiting out a CLIENT PAUSE, counted as a blocked client until
/// dropped (also when the connection's task ends meanwhile).
struct Postponed<'a> {
    srv: &'a super::Server,
    info: std::sync::Arc<super::client::ClientInfo>,
}

impl<'a> Postponed<'a> {
    fn new(srv: &'a super::Server, info: &std::sync::Arc<super::client::ClientInfo>) -> Self {
        info.blocked.store(true, Ordering::Relaxed);
        srv.blocked_clients.fetch_add(1, Ordering::Relaxed);
        Postponed {
            srv,
            info: info.clone(),
        }
    }
}

impl Drop for Postponed<'_> {
    fn drop(&mut self) {
        self.srv.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        self.info.blocked.store(false, Ordering::Relaxed);
    }
}
