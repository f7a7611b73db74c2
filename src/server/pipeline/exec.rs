//! EXEC: the queued transaction, run with every shard it touches held.

use std::sync::Arc;

use super::route::{Route, is_script};
use crate::commands::{Ctx, errors, flags};
use crate::protocol::Out;
use crate::server::ThreadStats;
use crate::server::conn::Conn;
use crate::server::shard::run_handler;
use crate::server::watch;
use crate::storage::slot::key_shard;

impl Conn<'_> {
    /// EXEC: holds every shard the queued commands (and the watched keys)
    /// live on, checks WATCH, runs the commands in order, releases.
    pub(crate) async fn exec(&mut self, exec_idx: usize) -> Out {
        let resp3 = self.client.resp3;
        let mut out = Out::new(resp3);
        let Some(queued) = self.client.multi.take() else {
            out.err("ERR EXEC without MULTI");
            return out;
        };
        if std::mem::take(&mut self.client.multi_error) {
            watch::unwatch_all(self.client);
            out.err(errors::EXECABORT);
            return out;
        }
        // ACL rules may have changed since the commands were queued: each
        // is checked again, as Redis 7.0's execCommand does.
        if crate::acl::generation() != self.client.acl_gen {
            self.refresh_user();
        }
        let mut revoked: Vec<Option<String>> = vec![None; queued.len()];
        if !self.client.user.unrestricted {
            for (i, q) in queued.iter().enumerate() {
                if let Err((denied, object)) = crate::acl::check(&self.client.user, q.idx, &q.args)
                {
                    self.acl_log(crate::acl::reason_name(denied), "multi", object);
                    let reason = match denied {
                        crate::acl::Denied::Command => {
                            "no permission to execute the command or subcommand"
                        }
                        crate::acl::Denied::Key(_) => "no permission to touch the specified keys",
                        crate::acl::Denied::Channel(_) => {
                            "no permission to access one of the channels used as arguments"
                        }
                    };
                    revoked[i] = Some(format!(
                        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
                    ));
                }
            }
        }
        let nshards = self.rt.srv.nshards;
        let mut shards: Vec<usize> = Vec::new();
        for q in &queued {
            // A script inside MULTI may reach any key: hold everything.
            if is_script(q.cmd) {
                shards.extend(0..nshards);
            }
            match self.route(q.cmd, &q.args) {
                Route::Shard(s) => shards.push(s),
                Route::Hold(v) => shards.extend(v),
                Route::Conn => {}
            }
        }
        shards.extend(
            self.client
                .watched
                .iter()
                .map(|w| key_shard(&w.key, nshards)),
        );
        shards.sort_unstable();
        shards.dedup();
        let rt = self.rt.clone();
        let srv = rt.srv;
        let client = &mut *self.client;
        let out = rt
            .with_shards(&shards, |view| {
                // maxmemory is checked once, for the whole transaction.
                let denyoom = queued.iter().any(|q| q.cmd.flags & flags::DENYOOM != 0);
                let mut scratch = Out::new(resp3);
                let mut ctx = Ctx::new(
                    &mut scratch,
                    client.db,
                    srv,
                    Some(&mut *client),
                    view.reborrow(),
                );
                if crate::server::shard::oom_refused(&mut ctx, denyoom) {
                    out.err(&format!(
                        "EXECABORT Transaction discarded because of: {}",
                        crate::storage::evict::OOM_ERR
                    ));
                    return out;
                }
                if watch::watch_failed(client, crate::storage::now_ms()) {
                    out.null_array();
                    return out;
                }
                out.array(queued.len());
                let caller = (!client.user.unrestricted)
                    .then(|| Arc::new((client.user.clone(), client.info.clone())));
                // One unit: the transaction's effects replicate as one
                // MULTI/EXEC (or bare, if there is only one).
                let unit = crate::replication::enter();
                crate::server::shard::nested(|| {
                    for (q, revoked) in queued.iter().zip(&revoked) {
                        if let Some(e) = revoked {
                            out.err(e);
                            continue;
                        }
                        let db = client.db;
                        let mut ctx =
                            Ctx::new(&mut out, db, srv, Some(&mut *client), view.reborrow());
                        // Blocking commands inside MULTI never block.
                        ctx.no_block = true;
                        ctx.caller = caller.clone();
                        run_handler(rt.stats(), q.idx, q.cmd, &mut ctx, &q.args);
                        // A command may switch protocol (HELLO) mid-transaction.
                        out.resp3 = client.resp3;
                    }
                });
                crate::replication::leave(unit, false, 0, &[]);
                crate::server::tracking::flush_pending(srv);
                out
            })
            .await;
        watch::unwatch_all(self.client);
        ThreadStats::bump(&rt.stats().cmd_calls[exec_idx], 1);
        rt.serve_ready();
        out
    }
}
