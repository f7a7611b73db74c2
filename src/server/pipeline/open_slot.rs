//! Requests on a slot being migrated or imported (the missing-keys part of
//! Redis's getNodeByQuery): whether the keys exist here decides between
//! serving the request, `-ASK` and `-TRYAGAIN`. The check runs with the
//! slot's shard held, and a plain command then runs under that same hold,
//! so no MIGRATE moves a key between the check and the command.

use bytes::Bytes;

use super::Slot;
use super::route::{Route, is_script};
use crate::commands::{self, Command, Ctx, Special, flags};
use crate::protocol::Out;
use crate::server::ThreadStats;
use crate::server::cluster::{self, OpenSlot};
use crate::server::conn::Conn;
use crate::server::shard::{Job, run_handler};
use crate::storage::slot::{key_slot, slot_shard};

pub(crate) enum OpenSlotOutcome {
    /// -ASK or -TRYAGAIN (not run).
    Redirected(Out),
    /// Served here under the hold.
    Ran(Out),
}

impl Conn<'_> {
    /// None: the request is not on an open slot, or it may be served and
    /// runs the usual way (scripts, blocking commands, EXEC, and commands
    /// being queued in MULTI: `probe_only`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open_slot(
        &mut self,
        idx: usize,
        cmd: &'static Command,
        args: &[Bytes],
        asking: bool,
        probe_only: bool,
        slots: &mut [Slot],
        batches: &mut [Vec<Job>],
    ) -> Option<OpenSlotOutcome> {
        let map = self.rt.srv.cluster.as_ref()?.map();
        if !map.has_open_slots() {
            return None;
        }
        // Shard channels stay on the source until the slot is handed over;
        // MIGRATE itself works in an open slot.
        if matches!(
            cmd.special,
            Special::SPublish | Special::SSubscribe | Special::Migrate
        ) {
            return None;
        }
        let keys: Vec<Bytes> = if cmd.special == Special::Exec {
            self.client
                .multi
                .as_ref()?
                .iter()
                .flat_map(|q| {
                    cluster::request_keys(q.cmd, &q.args)
                        .into_iter()
                        .map(|i| q.args[i].clone())
                })
                .collect()
        } else {
            cluster::request_keys(cmd, args)
                .into_iter()
                .map(|i| args[i].clone())
                .collect()
        };
        let first = keys.first()?.clone();
        let slot = key_slot(&first);
        let open = map.open_slot(slot)?;
        if open == OpenSlot::Importing && !asking && cmd.flags & flags::ASKING == 0 {
            // The cluster check already sent it elsewhere (MOVED).
            return None;
        }
        let multiple = keys.iter().any(|k| *k != first);
        let nshards = self.rt.srv.nshards;
        let shard = slot_shard(slot, nshards);
        // Before taking the hold: what came earlier in the pipeline runs first.
        self.complete(slots, batches).await;
        let plain = !probe_only
            && !is_script(cmd)
            && cmd.flags & flags::BLOCKING == 0
            && cmd.special != Special::Exec
            && match self.route(cmd, args) {
                Route::Shard(s) => s == shard,
                Route::Hold(v) => v == [shard],
                Route::Conn => false,
            };
        let rt = self.rt.clone();
        let srv = rt.srv;
        let db = self.client.db;
        let resp3 = self.client.resp3;
        let client = &mut *self.client;
        rt.with_shards(&[shard], |view| {
            let mut out = Out::new(resp3);
            let verdict = {
                let mut ctx = Ctx::new(&mut out, 0, srv, None, view.reborrow());
                let now = ctx.now;
                let d = &ctx.store(shard).dbs[0];
                let existing = keys.iter().filter(|k| d.peek(k, now).is_some()).count();
                map.open_slot_verdict(slot, open, keys.len() - existing, existing, multiple)
            };
            match verdict {
                Err(r) => {
                    ThreadStats::bump(&rt.stats().cmd_rejected[idx], 1);
                    out.err(&map.message(&r));
                    Some(OpenSlotOutcome::Redirected(out))
                }
                Ok(()) if plain => {
                    let mut ctx = Ctx::new(&mut out, db, srv, Some(client), view.reborrow());
                    run_handler(rt.stats(), idx, cmd, &mut ctx, args);
                    Some(OpenSlotOutcome::Ran(out))
                }
                Ok(()) => None,
            }
        })
        .await
    }

    /// Redis's resetClient: ASKING holds for the next command only, or
    /// through the transaction that command opens.
    pub(crate) fn clear_asking(&mut self, args: &[Bytes]) {
        if !self.client.asking {
            return;
        }
        let in_multi = self.client.multi.is_some();
        let keep = match commands::lookup(&args[0]) {
            Some((_, c)) => {
                matches!(c.special, Special::Asking | Special::Multi)
                    || (in_multi && !matches!(c.special, Special::Exec | Special::Discard))
            }
            None => in_multi,
        };
        if !keep {
            self.client.asking = false;
        }
    }
}
