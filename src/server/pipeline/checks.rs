//! The checks of a command before it runs, in Redis's order (processCommand).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Slot, count_error};
use crate::commands::{self, Command, Special, errors, flags};
use crate::protocol::Out;
use crate::server::ThreadStats;
use crate::server::client::Client;
use crate::server::cluster::{self, ClusterMap, Redirect};
use crate::server::conn::Conn;

const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

impl Conn<'_> {
    /// Lookup, arity and auth checks; pushes an error slot and returns None on failure.
    pub(crate) fn check(
        &mut self,
        args: &[Bytes],
        slots: &mut Vec<Slot>,
        suppress: bool,
    ) -> Option<(usize, &'static Command)> {
        let resp3 = self.client.resp3;
        let in_multi = self.client.multi.is_some();
        let rt = self.rt.clone();
        // A rejected EXEC also ends the transaction, as Redis's execCommandAbort.
        let mut is_exec = false;
        let err = |msg: String, slots: &mut Vec<Slot>, is_exec: bool| {
            let mut out = Out::new(resp3);
            // Stock wraps every rejection of EXEC (rejectCommand); keel so
            // far only these.
            if is_exec
                && (in_multi
                    || msg.starts_with("ERR Can't execute")
                    || msg.starts_with("BUSY ")
                    || msg.starts_with("NOPERM "))
            {
                let m = msg.strip_prefix("ERR ").unwrap_or(&msg);
                out.err(&format!("EXECABORT Transaction discarded because of: {m}"));
            } else {
                out.err(&msg);
            }
            count_error(&rt, &out);
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
        };
        let Some((idx, cmd)) = commands::lookup(&args[0]) else {
            err(
                errors::unknown_command(&args[0], &args[1..]),
                slots,
                is_exec,
            );
            return None;
        };
        is_exec = cmd.special == Special::Exec;
        let err = |msg: String, slots: &mut Vec<Slot>| err(msg, slots, is_exec);
        // Redis's order: arity before authentication.
        if !cmd.arity_ok(args.len()) {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err(errors::wrong_args(cmd.name), slots);
            return None;
        }
        // Redis's CMD_PROTECTED check, after arity and before auth.
        if cmd.flags & flags::PROTECTED != 0 && !self.debug_allowed() {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err(DEBUG_REFUSED.into(), slots);
            return None;
        }
        if !self.client.authenticated && cmd.flags & flags::NO_AUTH == 0 {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err("NOAUTH Authentication required.".into(), slots);
            return None;
        }
        // ACL: Redis checks after NOAUTH and the transaction's NO_MULTI.
        if crate::acl::generation() != self.client.acl_gen {
            self.refresh_user();
        }
        let skip_acl =
            self.client.user.unrestricted || (in_multi && cmd.flags & flags::NO_MULTI != 0);
        if !skip_acl && let Err((denied, object)) = crate::acl::check(&self.client.user, idx, args)
        {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            let context = if in_multi { "multi" } else { "toplevel" };
            self.acl_log(crate::acl::reason_name(denied), context, object);
            err(denied.noperm(&crate::acl::fullname(idx, args)), slots);
            return None;
        }
        // Redis's place for the cluster redirection: after auth, before the
        // replica/script-busy checks. The master's stream never comes here.
        if let Some(map) = self.rt.srv.cluster.as_ref().map(|c| c.map())
            && let Err(r) = self.cluster_check(&map, cmd, args)
        {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            // Not wrapped in EXECABORT: Redis discards the transaction and
            // replies the redirection itself.
            let mut out = Out::new(resp3);
            out.err(&map.message(&r));
            count_error(&self.rt, &out);
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
            return None;
        }
        // A script or function with declared flags: its flags decide (Redis's
        // scriptFlagsToCmdFlags).
        let flags_of = |cmd: &Command, args: &[Bytes]| {
            crate::server::scripts::effective_flags(cmd, args)
                .unwrap_or((cmd.is_write(), cmd.flags & flags::STALE != 0))
        };
        let (mut is_write, mut stale_ok) = flags_of(cmd, args);
        // EXEC is a write if a queued command is, and may run on a stale
        // replica only if all of them may (Redis's mstate.cmd_flags).
        if is_exec && let Some(queued) = &self.client.multi {
            for q in queued {
                let (w, s) = flags_of(q.cmd, &q.args);
                is_write |= w;
                stale_ok &= s;
            }
        }
        if is_write && crate::replication::replica::read_only_for_clients(self.rt.srv) {
            err(
                "READONLY You can't write against a read only replica.".into(),
                slots,
            );
            return None;
        }
        if !stale_ok && crate::replication::replica::stale_denied(self.rt.srv) {
            err(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                    .into(),
                slots,
            );
            return None;
        }
        // A load in course: only commands with the `loading` flag (EXEC:
        // only if every queued one has it).
        if self.rt.srv.persist.loading.load(Ordering::Acquire) {
            let mut ok = allowed_while_loading(cmd, args);
            if is_exec && let Some(queued) = &self.client.multi {
                ok &= queued.iter().all(|q| allowed_while_loading(q.cmd, &q.args));
            }
            if !ok {
                err(LOADING.into(), slots);
                return None;
            }
        }
        // Queueing in MULTI may grow memory without bound: Redis refuses
        // every queued command when nothing can be evicted.
        let busy = crate::server::scripts::SCRIPT_BUSY.load(Ordering::Relaxed);
        if in_multi
            && !busy
            && !matches!(
                cmd.special,
                Special::Exec | Special::Discard | Special::Quit | Special::Reset
            )
            && crate::storage::evict::out_of_memory()
        {
            err(crate::storage::evict::OOM_ERR.into(), slots);
            return None;
        }
        if (is_write || cmd.special == Special::Ping) && self.rt.srv.writes_denied_by_disk_error() {
            err(MISCONF.into(), slots);
            return None;
        }
        if is_write && crate::replication::master::not_enough_replicas(self.rt.srv) {
            err(
                "NOREPLICAS Not enough good replicas to write.".into(),
                slots,
            );
            return None;
        }
        if !self.client.resp3 && self.client.subs.any() && !cmd.special.allowed_when_subscribed() {
            // Redis names a subcommand by its full name (client|setname).
            let name = if args.len() > 1 && commands::is_container(idx) {
                format!(
                    "{}|{}",
                    cmd.name,
                    String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
                )
            } else {
                cmd.name.to_string()
            };
            err(
                format!(
                    "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
                slots,
            );
            return None;
        }
        // Redis's place for the busy-script check: the last rejection.
        if busy {
            let nosave = args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave"));
            let shutdown = cmd.special == Special::Shutdown;
            if shutdown && nosave && !in_multi {
                // The only way out of a script that already wrote: the shards
                // it holds will never be free, so no hold is attempted.
                crate::log::warning("SHUTDOWN NOSAVE during a busy script: exiting now.");
                std::process::exit(0);
            }
            // SHUTDOWN without NOSAVE refuses too (shutdownCommand); inside
            // MULTI it meets NO_MULTI when queued.
            let refused =
                !crate::server::scripts::allowed_while_busy(cmd, args) || (shutdown && !in_multi);
            if refused {
                err(crate::server::scripts::busy_err().into(), slots);
                return None;
            }
        }
        // Scripts skip the usual feed but show themselves before the
        // commands they run (Redis's evalCommand / fcallCommandGeneric).
        if self.rt.srv.monitor_count.load(Ordering::Relaxed) > 0
            && (cmd.flags & (flags::SKIP_MONITOR | flags::ADMIN) == 0
                || super::route::is_script(cmd))
        {
            self.rt
                .srv
                .feed_monitors(self.client.db, &self.client.info.addr, args);
        }
        Some((idx, cmd))
    }

    /// `enable-debug-command`: yes, or local for a loopback/unix client.
    pub(crate) fn debug_allowed(&self) -> bool {
        let c = self.rt.srv.config.read().unwrap();
        crate::config::protected_allowed(
            c.get("enable-debug-command"),
            crate::config::peer_is_local(&self.client.info.addr),
        )
    }

    /// The caller a script checks redis.call against (None: unrestricted).
    pub(crate) fn script_caller(&self) -> Option<crate::commands::Caller> {
        let c = &self.client;
        (!c.user.unrestricted).then(|| Arc::new((c.user.clone(), c.info.clone())))
    }

    /// Re-reads the connection's ACL user after a change. A deleted user
    /// leaves the connection with no permissions (DELUSER also kills it).
    pub(crate) fn refresh_user(&mut self) {
        let g = crate::acl::generation();
        let name = self.client.user.name.clone();
        let user =
            crate::acl::get_user(&name).unwrap_or_else(|| Arc::new(crate::acl::User::new(&name)));
        self.client.user = user;
        self.client.acl_gen = g;
    }

    pub(crate) fn acl_log(&self, reason: &'static str, context: &'static str, object: String) {
        acl_log_for(self.rt.srv, self.client, reason, context, object, None);
    }

    /// Whether this node serves the request (getNodeByQuery): its keys must
    /// hash to one slot of ours. EXEC checks every queued command together.
    pub(crate) fn cluster_check(
        &self,
        map: &ClusterMap,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Result<(), Redirect> {
        if cmd.special == Special::Exec {
            let Some(queued) = &self.client.multi else {
                return Ok(());
            };
            let keys = queued.iter().flat_map(|q| {
                cluster::request_keys(q.cmd, &q.args)
                    .into_iter()
                    .map(|i| &q.args[i][..])
            });
            let write = queued.iter().any(|q| q.cmd.is_write());
            return map
                .check_asking(keys, write, self.client.asking, self.client.readonly)
                .map(|_| ());
        }
        let keys = cluster::request_keys(cmd, args);
        if keys.is_empty() {
            return Ok(());
        }
        let asking = self.client.asking || cmd.flags & flags::ASKING != 0;
        let read_here =
            self.client.readonly || matches!(cmd.special, Special::SPublish | Special::SSubscribe);
        map.check_asking(
            keys.iter().map(|&i| &args[i][..]),
            cmd.is_write(),
            asking,
            read_here,
        )
        .map(|_| ())
    }
}

/// Adds an ACL LOG entry for a denial of `client`'s request.
pub(crate) fn acl_log_for(
    srv: &crate::server::Server,
    client: &Client,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: Option<String>,
) {
    let max = srv.config.read().unwrap().get_i64("acllog-max-len").max(0) as usize;
    let cinfo = client.info.list_line(crate::storage::now_ms());
    crate::acl::log_denial(
        reason,
        context,
        object,
        username.unwrap_or_else(|| client.user.name.clone()),
        cinfo,
        max,
    );
}

const LOADING: &str = "LOADING Redis is loading the dataset in memory";

/// Whether Redis's spec gives the command (or its subcommand) the
/// `loading` flag. An unknown subcommand passes: its handler's error is
/// Redis's reply.
fn allowed_while_loading(cmd: &Command, args: &[Bytes]) -> bool {
    let Some(spec) = cmd.spec else {
        return cmd.flags & flags::LOADING != 0;
    };
    if spec.subs.is_empty() || args.len() < 2 {
        return spec.flags & flags::LOADING != 0;
    }
    match spec.subs.iter().find(|s| {
        s.name
            .rsplit('|')
            .next()
            .is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(&args[1]))
    }) {
        Some(sub) => sub.flags & flags::LOADING != 0,
        None => true,
    }
}
