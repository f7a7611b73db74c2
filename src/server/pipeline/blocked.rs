//! A blocking command (BLPOP...): run, or wait for a shard's wake-up.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use glommio::net::TcpStream;

use super::route::Route;
use crate::commands::Command;
use crate::protocol::Out;
use crate::server::ThreadStats;
use crate::server::blocking::Waiter;
use crate::server::client::ClientInfo;
use crate::server::conn::Conn;
use crate::server::shard::{Job, Payload, ReplyFuture};

impl Conn<'_> {
    /// Runs a blocking command: serve now, or wait until a shard serves it,
    /// the deadline passes (then it runs once more without blocking), or the
    /// client disconnects (None).
    pub(crate) async fn run_blocking(
        &mut self,
        stream: &TcpStream,
        idx: usize,
        cmd: &'static Command,
        mut args: Vec<Bytes>,
        route: Route,
    ) -> Option<Out> {
        let rt = self.rt.clone();
        loop {
            let (wake_id, wake) = rt.new_slot();
            let waiter = Arc::new(Waiter {
                claimed: false.into(),
                origin: rt.id,
                wake_id,
            });
            let mut job = Job::new(idx, cmd, args.clone(), self.client.db, self.client.resp3)
                .by(&self.client.info);
            job.waiter = Some(waiter.clone());
            let r = self.run_routed(job, &route).await;
            let Some(block) = r.block else {
                rt.drop_slot(wake_id);
                return Some(r.out);
            };
            if let Some(a) = &block.rerun_args {
                args = a.clone();
            }
            let info = self.client.info.clone();
            info.blocked.store(true, Ordering::Relaxed);
            info.argv_mem
                .store(args.iter().map(|a| a.len()).sum(), Ordering::Relaxed);
            let mut wake = wake;
            rt.srv.blocked_clients.fetch_add(1, Ordering::Relaxed);
            let was_replica = crate::replication::replica::is_replica();
            let readonly = self.client.readonly;
            let kicked = || kick_out(rt.srv, cmd, &args, readonly, was_replica);
            let outcome = wait_blocked(stream, &mut wake, block.deadline_ms, &info, &kicked).await;
            rt.srv.blocked_clients.fetch_sub(1, Ordering::Relaxed);
            info.blocked.store(false, Ordering::Relaxed);
            info.argv_mem.store(0, Ordering::Relaxed);
            let outcome = match outcome {
                Wake::Reply(p) => Wake::Reply(p),
                other => settle(&waiter, &mut wake, other).await,
            };
            rt.drop_slot(wake_id);
            // The blocked call counts once (Redis counts it when it blocks):
            // a served rerun is counted by the shard that runs it, every
            // other end here.
            if !matches!(outcome, Wake::Reply(_)) {
                let stats = rt.stats();
                ThreadStats::bump(&stats.cmd_calls[idx], 1);
                ThreadStats::bump(&stats.total_commands, 1);
                if matches!(outcome, Wake::Unblocked | Wake::Kicked(..)) {
                    ThreadStats::bump(&stats.cmd_failed[idx], 1);
                }
            }
            match outcome {
                Wake::Reply(Payload::Outs(mut v)) => return v.pop().map(|r| r.out),
                // Keys on several shards were signalled: run the command again.
                Wake::Reply(_) => continue,
                Wake::Gone => return None,
                Wake::Unblocked => {
                    let mut out = Out::new(self.client.resp3);
                    out.err("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                    return Some(out);
                }
                Wake::Kicked(msg, close) => {
                    let mut out = Out::new(self.client.resp3);
                    out.err(&msg);
                    self.client.close_after_reply |= close;
                    return Some(out);
                }
                // As Redis: a null reply, whatever the key holds by now. It is
                // a null array for every list/zset/stream blocking command,
                // BLMOVE and BRPOPLPUSH included (replyToBlockedClientTimedOut).
                Wake::Timeout => {
                    let mut out = Out::new(self.client.resp3);
                    out.null_array();
                    return Some(out);
                }
            }
        }
    }
}

pub(crate) enum Wake {
    Reply(Payload),
    Timeout,
    Gone,
    /// CLIENT UNBLOCK ... ERROR (UNBLOCK ... TIMEOUT is a Timeout).
    Unblocked,
    /// The server no longer serves the keys: this error, then close the
    /// connection if set.
    Kicked(String, bool),
}

/// Whether a blocked client must be told to go, as Redis does from its
/// clients cron (clusterRedirectBlockedClientIfNeeded: the cluster is down,
/// or the keys' slot is now another node's and not being imported here) and
/// when it turns into a replica (disconnectAllBlockedClients: -UNBLOCKED,
/// then the connection is closed).
fn kick_out(
    srv: &crate::server::Server,
    cmd: &'static Command,
    args: &[Bytes],
    readonly: bool,
    was_replica: bool,
) -> Option<Wake> {
    if !was_replica && crate::replication::replica::is_replica() {
        let msg = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
        return Some(Wake::Kicked(msg.into(), true));
    }
    let map = srv.cluster.as_ref()?.map();
    let key = crate::server::cluster::request_keys(cmd, args)
        .first()
        .and_then(|&i| args.get(i))?
        .clone();
    map.blocked_redirect(&key, readonly && !cmd.is_write())
        .map(|r| Wake::Kicked(map.message(&r), false))
}

/// Waits for a blocked client's wake-up, its deadline, or its disconnection.
pub(crate) async fn wait_blocked(
    stream: &TcpStream,
    wake: &mut ReplyFuture,
    deadline_ms: Option<u64>,
    info: &ClientInfo,
    kicked: &dyn Fn() -> Option<Wake>,
) -> Wake {
    use futures_lite::future::or;
    let timer = async {
        match deadline_ms {
            Some(d) => {
                let now = crate::storage::now_ms();
                glommio::timer::sleep(std::time::Duration::from_millis(d.saturating_sub(now)))
                    .await;
                Wake::Timeout
            }
            None => futures_lite::future::pending().await,
        }
    };
    // EOF on the socket means the client is gone; pipelined input after the
    // blocking command just waits in the socket (then stop watching).
    let gone = async {
        let mut b = [0u8; 1];
        match stream.peek(&mut b).await {
            Ok(0) | Err(_) => Wake::Gone,
            Ok(_) => futures_lite::future::pending().await,
        }
    };
    // CLIENT UNBLOCK from another connection: a flag polled while blocked.
    info.unblock.store(0, Ordering::Relaxed);
    // Also every 50 ms: whether the cluster still lets it wait here.
    let unblock = async {
        for tick in 1u64.. {
            if tick % 10 == 0
                && let Some(w) = kicked()
            {
                return w;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            match info.unblock.swap(0, Ordering::Relaxed) {
                1 => return Wake::Timeout,
                2 => return Wake::Unblocked,
                _ => {}
            }
        }
        Wake::Timeout
    };
    or(
        async { Wake::Reply(wake.await) },
        or(timer, or(gone, unblock)),
    )
    .await
}

/// After a timeout or disconnect, decides the waiter's fate exactly once:
/// either we claim it (nobody will serve it any more), or a shard holds the
/// claim and is serving it right now — then its reply is coming, unless the
/// shard found nothing and released the claim, in which case we try again.
pub(crate) async fn settle(waiter: &Waiter, wake: &mut ReplyFuture, outcome: Wake) -> Wake {
    use futures_lite::future::or;
    loop {
        if waiter.claim() {
            return outcome;
        }
        let tick = async {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            None
        };
        if let Some(p) = or(async { Some((&mut *wake).await) }, tick).await {
            return match (p, outcome) {
                (Payload::Outs(v), _) => Wake::Reply(Payload::Outs(v)),
                (_, w @ (Wake::Gone | Wake::Unblocked | Wake::Kicked(..))) => w,
                _ => Wake::Timeout,
            };
        }
    }
}
