//! Where a command runs, and running it there: one shard, or several held.

use bytes::Bytes;

use super::Slot;
use crate::commands::{Command, Ctx, Scope, Special};
use crate::protocol::Out;
use crate::server::blocking;
use crate::server::conn::Conn;
use crate::server::shard::{Job, JobResult, Payload, ReplyFuture, run_handler};
use crate::storage::slot::key_shard;

/// Where one command of a pipeline is executed.
#[derive(Clone)]
pub(crate) enum Route {
    /// All keys on one shard (or no key data needed).
    Shard(usize),
    /// Keys span shards, or the command needs every shard.
    Hold(Vec<usize>),
    Conn,
}

impl Conn<'_> {
    pub(crate) fn route(&self, cmd: &'static Command, args: &[Bytes]) -> Route {
        let nshards = self.rt.srv.nshards;
        match cmd.scope {
            Scope::Conn if cmd.special == Special::Cluster => {
                match crate::server::cluster::data_shards(self.rt.srv, args) {
                    Some(s) if s.len() == 1 => Route::Shard(s[0]),
                    Some(s) => Route::Hold(s),
                    None => Route::Conn,
                }
            }
            Scope::Conn => Route::Conn,
            // WATCH inside MULTI only refuses: no data needed.
            Scope::KeysHeld if cmd.special == Special::Watch && self.client.multi.is_some() => {
                Route::Conn
            }
            Scope::KeysHeld => {
                let mut shards: Vec<usize> = cmd
                    .key_indexes(args)
                    .iter()
                    .map(|&k| key_shard(&args[k], nshards))
                    .collect();
                shards.sort_unstable();
                shards.dedup();
                Route::Hold(shards)
            }
            Scope::AllShards => Route::Hold((0..nshards).collect()),
            Scope::Keys
                if is_script(cmd) && crate::server::scripts::needs_all_shards(cmd, args) =>
            {
                Route::Hold((0..nshards).collect())
            }
            Scope::Keys if cmd.reaches_unknown_keys(args) => Route::Hold((0..nshards).collect()),
            // One shard: nothing to compute.
            Scope::Keys if nshards == 1 => Route::Shard(0),
            Scope::Keys => {
                let keys = cmd.key_indexes(args);
                let Some(&first) = keys.first() else {
                    return Route::Shard(self.rt.id);
                };
                let s0 = key_shard(&args[first], nshards);
                if keys[1..]
                    .iter()
                    .all(|&k| key_shard(&args[k], nshards) == s0)
                {
                    return Route::Shard(s0);
                }
                let mut shards: Vec<usize> =
                    keys.iter().map(|&k| key_shard(&args[k], nshards)).collect();
                shards.sort_unstable();
                shards.dedup();
                Route::Hold(shards)
            }
        }
    }

    /// Sends queued remote batches, runs the local one inline, and fills
    /// every slot's reply.
    pub(crate) async fn complete(&mut self, slots: &mut [Slot], batches: &mut [Vec<Job>]) {
        if batches.iter().all(|b| b.is_empty()) {
            return;
        }
        let me = self.rt.id;
        let mut futures: Vec<Option<ReplyFuture>> = (0..batches.len()).map(|_| None).collect();
        for (s, b) in batches.iter_mut().enumerate() {
            if s != me && !b.is_empty() {
                futures[s] = Some(self.rt.exec_remote(s, std::mem::take(b)).await);
            }
        }
        let mut results: Vec<Vec<JobResult>> = (0..batches.len()).map(|_| Vec::new()).collect();
        let local = std::mem::take(&mut batches[me]);
        if !local.is_empty() {
            if !self.rt.gate.is_free() {
                self.rt.gate.acquire().await;
                results[me] = local.iter().map(|j| self.rt.run_job(j)).collect();
                self.rt.serve_and_release();
            } else {
                results[me] = local.iter().map(|j| self.rt.run_job(j)).collect();
            }
        }
        for (s, f) in futures.into_iter().enumerate() {
            if let Some(f) = f {
                match f.await {
                    Payload::Outs(o) => results[s] = o,
                    _ => unreachable!("Exec answered without replies"),
                }
            }
        }
        let mut results: Vec<std::vec::IntoIter<JobResult>> =
            results.into_iter().map(|v| v.into_iter()).collect();
        for slot in slots.iter_mut() {
            if let Some((s, _)) = slot.remote.take() {
                slot.out = results[s].next().map(|r| r.out);
            }
        }
    }

    /// Runs a job with every shard in `shards` held. A blocking job that
    /// blocks is registered on every held shard before the holds go.
    pub(crate) async fn run_held(&mut self, job: &Job, shards: &[usize]) -> JobResult {
        let rt = self.rt.clone();
        let srv = rt.srv;
        let client = &mut *self.client;
        rt.with_shards(shards, |view| {
            let mut out = Out::new(client.resp3);
            let mut ctx = Ctx::new(&mut out, job.db, srv, Some(client), view.reborrow());
            ctx.no_block = job.no_block || job.waiter.is_none();
            ctx.caller = job.caller.clone();
            run_handler(rt.stats(), job.cmd_idx, job.cmd, &mut ctx, &job.args);
            let block = ctx.block.take();
            let need_all = ctx.need_all_shards;
            if let (Some(b), Some(w)) = (&block, &job.waiter) {
                for store in view.all_mut() {
                    let local = local_job(job, store.id, srv.nshards);
                    blocking::register(store, srv.nshards, job.db, &b.keys, w, local.as_ref());
                }
            }
            JobResult {
                out,
                block,
                need_all,
            }
        })
        .await
    }

    /// Runs one job wherever `route` says, returning its result.
    pub(crate) async fn run_routed(&mut self, job: Job, route: &Route) -> JobResult {
        match route {
            Route::Shard(s) if *s == self.rt.id => {
                if !self.rt.gate.is_free() {
                    self.rt.gate.acquire().await;
                    let r = self.rt.run_job(&job);
                    self.rt.serve_and_release();
                    r
                } else {
                    self.rt.run_job(&job)
                }
            }
            Route::Shard(s) => match self.rt.exec_remote(*s, vec![job]).await.await {
                Payload::Outs(mut v) => v.pop().expect("one job, one reply"),
                _ => unreachable!("Exec answered without replies"),
            },
            Route::Hold(shards) => self.run_held(&job, shards).await,
            Route::Conn => unreachable!("blocking commands have keys"),
        }
    }
}

/// For a blocking command whose keys span shards: the same command reduced
/// to the keys of `shard`, so that shard can serve the waiter itself in
/// arrival order. Only for the `CMD key... timeout` shape (BLPOP, BRPOP,
/// BZPOPMIN, BZPOPMAX); other commands get None and retry when woken.
pub(crate) fn local_job(job: &Job, shard: usize, nshards: usize) -> Option<Job> {
    let c = job.cmd;
    if c.movable || c.first_key != 1 || c.last_key != -2 || c.step != 1 {
        return None;
    }
    let n = job.args.len();
    let mut args = vec![job.args[0].clone()];
    args.extend(
        job.args[1..n - 1]
            .iter()
            .filter(|k| key_shard(k, nshards) == shard)
            .cloned(),
    );
    args.push(job.args[n - 1].clone());
    Some(Job {
        args,
        ..job.clone()
    })
}

/// EVAL, EVALSHA, FCALL and their _RO forms.
pub(crate) fn is_script(cmd: &Command) -> bool {
    matches!(
        cmd.special,
        Special::Script { .. } | Special::Function { .. }
    )
}
