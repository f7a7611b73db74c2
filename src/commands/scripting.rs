//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT: the server side of Lua.
//!
//! A script runs where its declared keys live: on their shard, or on the
//! connection's thread with every involved shard held (no keys at all: every
//! shard). `redis.call` runs handlers right there against the held stores.
//! A script that touches a key of a shard it does not hold, before it wrote
//! anything, is abandoned and re-run holding every shard (and its sha is
//! remembered on this thread so later runs start that way). After a write the
//! attempt cannot be undone: the call fails with an error instead.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, flags};
use crate::protocol::Out;
use crate::scripting::{Engine, ScriptHost, ScriptStatus};
use crate::storage::slot::{key_shard, key_slot};

pub fn commands() -> Vec<Command> {
    let f = NOSCRIPT | STALE | SKIP_MONITOR;
    vec![
        cmd("eval", -3, f | MAY_REPLICATE, eval)
            .special(Special::Script {
                sha: false,
                ro: false,
            })
            .keys(0, 0, 0),
        cmd("evalsha", -3, f | MAY_REPLICATE, eval)
            .special(Special::Script {
                sha: true,
                ro: false,
            })
            .keys(0, 0, 0),
        cmd("eval_ro", -3, f | READONLY, eval)
            .special(Special::Script {
                sha: false,
                ro: true,
            })
            .keys(0, 0, 0),
        cmd("evalsha_ro", -3, f | READONLY, eval)
            .special(Special::Script {
                sha: true,
                ro: true,
            })
            .keys(0, 0, 0),
        cmd("script", -2, 0, script),
    ]
}

/// KEYS of EVAL-like commands (EVAL's spec; the others share its shape).
fn script_keys(args: &[Bytes]) -> Vec<usize> {
    crate::cmdspec::find("eval").map_or(Vec::new(), |s| s.key_positions(args))
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// Scripts seen touching undeclared keys of other shards: they start
    /// holding every shard.
    static GLOBAL_SHAS: RefCell<HashSet<Vec<u8>>> = RefCell::new(HashSet::new());
}

/// A script has run past busy-reply-threshold: other clients get -BUSY
/// (except for the commands that may run meanwhile), as in Redis.
pub static SCRIPT_BUSY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub const BUSY_ERR: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Whether `args` may run while a script is busy (flag allow_busy, SCRIPT
/// KILL, SHUTDOWN NOSAVE).
pub fn allowed_while_busy(cmd: &Command, args: &[Bytes]) -> bool {
    // Subcommands flagged allow_busy in Redis 7.0: SCRIPT KILL, and for
    // when functions exist, FUNCTION KILL and FUNCTION STATS.
    let sub = |name: &str, subs: &[&str]| {
        cmd.name == name
            && args.len() == 2
            && subs
                .iter()
                .any(|s| args[1].eq_ignore_ascii_case(s.as_bytes()))
    };
    cmd.flags & ALLOW_BUSY != 0 || sub("script", &["kill"]) || sub("function", &["kill", "stats"])
}

/// Every engine's status, for SCRIPT KILL from any connection.
static STATUSES: std::sync::Mutex<Vec<Arc<ScriptStatus>>> = std::sync::Mutex::new(Vec::new());

fn with_engine<R>(srv: &crate::server::Server, f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        let engine = e.get_or_insert_with(|| {
            let mut en = Engine::new();
            STATUSES.lock().unwrap().push(en.status());
            let c = srv.config.read().unwrap();
            // lua-time-limit is an alias of busy-reply-threshold.
            en.set_busy_threshold(c.get_i64("busy-reply-threshold").max(0) as u64);
            en
        });
        f(engine)
    })
}

/// The script identity used to remember "global" scripts: EVALSHA's sha or
/// EVAL's body.
fn script_id(args: &[Bytes]) -> Vec<u8> {
    if args[0].len() >= 7 && args[0][..7].eq_ignore_ascii_case(b"evalsha") {
        args[1].to_ascii_lowercase()
    } else {
        crate::scripting::sha1hex(&args[1]).into_bytes()
    }
}

/// Whether a script must run with every shard held (routing, conn side).
pub fn needs_all_shards(args: &[Bytes]) -> bool {
    script_keys(args).is_empty() || GLOBAL_SHAS.with(|g| g.borrow().contains(&script_id(args)))
}

struct Host<'h, 'c> {
    ctx: &'h mut Ctx<'c>,
    status: Arc<ScriptStatus>,
    wrote: bool,
    /// A key of a shard not held was touched before any write: re-run.
    need_all: bool,
    /// EVAL_RO / EVALSHA_RO, or a `no-writes` shebang.
    read_only: bool,
    /// Cluster mode, for a client (never for the master's stream): each
    /// call's keys must be local, and in one slot unless cross-slot is allowed.
    cluster_checks: bool,
    /// The script's slot: its declared keys', else the first key it used.
    slot: Option<usize>,
    cross_slot_ok: bool,
    /// Over maxmemory when the script started (Redis's script_oom): its
    /// deny-oom calls fail until it has written.
    oom: bool,
    allow_oom: bool,
    /// The run passed busy-reply-threshold.
    busy: bool,
}

impl Host<'_, '_> {
    /// Redis's scriptVerifyClusterState for one redis.call.
    fn cluster_check(&mut self, c: &super::Command, args: &[Bytes]) -> Result<(), String> {
        use crate::server::cluster::{Redirect, request_keys};
        let Some(map) = self
            .ctx
            .srv
            .cluster
            .as_ref()
            .filter(|_| self.cluster_checks)
            .map(|c| c.map())
        else {
            return Ok(());
        };
        let keys = request_keys(c, args);
        let slot = match map.check(keys.iter().map(|&i| &args[i][..]), c.is_write()) {
            Ok(s) => s,
            Err(Redirect::Down) => {
                return Err(
                    "Script attempted to execute a command while the cluster is down".into(),
                );
            }
            Err(Redirect::DownReadOnly) => {
                return Err("Script attempted to execute a write command while the cluster is down and readonly".into());
            }
            Err(_) => {
                return Err("Script attempted to access a non local key in a cluster node".into());
            }
        };
        match (slot, self.slot) {
            (Some(s), Some(mine)) if s != mine && !self.cross_slot_ok => {
                Err("Script attempted to access keys that do not hash to the same slot".into())
            }
            (Some(s), None) if !self.cross_slot_ok => {
                self.slot = Some(s);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl ScriptHost for Host<'_, '_> {
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Result<Vec<u8>, String> {
        if self.need_all {
            return Err("-KEELRETRY script is being re-run holding every shard".into());
        }
        let Some((idx, c)) = super::lookup(&args[0]) else {
            return Err("Unknown Redis command called from script".into());
        };
        if !c.arity_ok(args.len()) {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        if c.flags & flags::NOSCRIPT != 0 {
            return Err("This Redis command is not allowed from script".into());
        }
        if let Some(caller) = &self.ctx.caller
            && let Err((denied, object)) = crate::acl::check(&caller.0, idx, args)
        {
            let max = self
                .ctx
                .srv
                .config
                .read()
                .unwrap()
                .get_i64("acllog-max-len");
            crate::acl::log_denial(
                crate::acl::reason_name(denied),
                "lua",
                object,
                caller.0.name.clone(),
                caller.1.list_line(crate::storage::now_ms()),
                max.max(0) as usize,
            );
            return Err(format!(
                "The user executing the script {}",
                denied.script_message()
            ));
        }
        if self.read_only && c.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0 {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        self.cluster_check(c, args)?;
        if self.oom && !self.allow_oom && !self.wrote && c.flags & flags::DENYOOM != 0 {
            return Err(format!("-{}", crate::storage::evict::OOM_ERR));
        }
        // Which shards the command needs, and whether we hold them.
        let n = self.ctx.nshards();
        let held = self.ctx.held_shards();
        let needed: Vec<usize> = match c.scope {
            _ if c.reaches_unknown_keys(args) => (0..n).collect(),
            super::Scope::Keys | super::Scope::KeysHeld => c
                .key_indexes(args)
                .iter()
                .map(|&i| key_shard(&args[i], n))
                .collect(),
            super::Scope::AllShards => (0..n).collect(),
            super::Scope::Conn => {
                if !matches!(
                    c.name,
                    "ping" | "echo" | "time" | "select" | "publish" | "spublish"
                ) {
                    return Err("This Redis command is not allowed from script".into());
                }
                Vec::new()
            }
        };
        if needed.iter().any(|s| !held.contains(s)) {
            if self.wrote {
                return Err("keel: the script used a key of a shard it did not hold after it had written; it will hold every shard from its next run".into());
            }
            self.need_all = true;
            return Err("-KEELRETRY script is being re-run holding every shard".into());
        }
        let mut out = Out::new(resp3);
        if c.name == "select" {
            // SELECT inside a script changes the script's DB only.
            match super::parse_i64(&args[1]) {
                Some(d) if d != 0 && self.cluster_checks => {
                    out.err("ERR SELECT is not allowed in cluster mode")
                }
                Some(d) if d >= 0 && (d as usize) < self.ctx.srv.databases => {
                    self.ctx.db = d as usize;
                    out.ok();
                }
                Some(_) => out.err("ERR DB index is out of range"),
                None => out.err(super::errors::NOT_INT),
            }
            return Ok(out.buf);
        }
        {
            let mut sub = self.ctx.nested(&mut out);
            sub.no_block = true;
            crate::server::shard::with_current(|rt| {
                crate::server::shard::run_handler(rt.stats(), idx, c, &mut sub, args)
            });
        }
        if c.is_write() && !out.buf.starts_with(b"-") {
            self.wrote = true;
            self.status.mark_write();
        }
        Ok(out.buf)
    }

    fn cluster_enabled(&self) -> bool {
        self.cluster_checks
    }

    fn oom(&self) -> bool {
        self.oom
    }

    fn busy(&mut self, _elapsed_ms: u64) {
        // The engine logs the slow script itself.
        if !self.busy {
            self.busy = true;
            SCRIPT_BUSY.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // This thread's own connections are answered from here.
        crate::server::shard::serve_while_busy();
    }

    fn log(&mut self, level: i32, msg: &str) {
        match level {
            0 => crate::log::debug(msg),
            1 => crate::log::verbose(msg),
            2 => crate::log::notice(msg),
            _ => crate::log::warning(msg),
        }
    }
}

fn eval(ctx: &mut Ctx, args: &[Bytes]) {
    let srv = ctx.srv;
    let resp3 = ctx.out.resp3;
    let mut out = Out::new(resp3);
    let (is_sha, ro) = match super::lookup(&args[0]) {
        Some((_, c)) => match c.special {
            Special::Script { sha, ro } => (sha, ro),
            _ => (false, false),
        },
        None => (false, false),
    };
    let script_flags = crate::scripting::script_flags(is_sha, &args[1]);
    let read_only = script_flags.map(|f| f.read_only(ro)).unwrap_or(ro);
    let cluster_checks =
        srv.cluster.is_some() && !crate::replication::replica::MasterApply::active();
    // check() made sure the declared keys share one slot.
    let slot = script_keys(args).first().map(|&i| key_slot(&args[i]));
    // Replicas get the script's effects (its writes, as MULTI/EXEC), or
    // under `lua-replicate-commands no` the script itself.
    let db = ctx.db;
    let verbatim = crate::replication::active() && crate::replication::scripts_verbatim(srv);
    crate::replication::custom();
    if verbatim {
        crate::replication::verbatim_script(true);
    }
    let (need_all, wrote) = with_engine(srv, |engine| {
        let mut host = Host {
            status: engine.status(),
            ctx,
            wrote: false,
            need_all: false,
            read_only,
            cluster_checks,
            slot,
            cross_slot_ok: script_flags.is_none_or(|f| f.allow_cross_slot()),
            oom: !crate::replication::replica::MasterApply::active()
                && crate::storage::evict::over_limit(),
            allow_oom: script_flags.is_some_and(|f| f.allow_oom()),
            busy: false,
        };
        engine.eval_command(args, is_sha, ro, &mut host, &mut out);
        if host.busy {
            SCRIPT_BUSY.store(false, std::sync::atomic::Ordering::Relaxed);
            crate::server::shard::busy_ended();
        }
        (host.need_all, host.wrote)
    });
    if verbatim {
        crate::replication::verbatim_script(false);
        if wrote {
            propagate_script(db, args, is_sha);
        }
    }
    if need_all {
        GLOBAL_SHAS.with(|g| g.borrow_mut().insert(script_id(args)));
        if !wrote {
            // Nothing was changed: the runtime runs the script again with
            // every shard held.
            ctx.need_all_shards = true;
            return;
        }
    }
    ctx.out.buf.extend_from_slice(&out.buf);
}

/// A script replicated verbatim: EVAL as it came; EVALSHA also carries
/// its EVAL form for replicas that may not hold the body.
fn propagate_script(db: usize, args: &[Bytes], is_sha: bool) {
    if !is_sha {
        return crate::replication::propagate(db, args);
    }
    let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let Some(script) = crate::scripting::Registry::global().get(&sha) else {
        return;
    };
    let mut eval = args.to_vec();
    eval[0] = Bytes::from_static(b"EVAL");
    eval[1] = script.body.clone();
    crate::replication::propagate_evalsha(db, &sha, args, &eval);
}

fn script(ctx: &mut Ctx, args: &[Bytes]) {
    let srv = ctx.srv;
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"kill") {
        let statuses = STATUSES.lock().unwrap();
        let running = statuses.iter().find(|s| s.is_running());
        return match running.map(|s| s.kill()) {
            None => ctx.out.err("NOTBUSY No scripts in execution right now."),
            Some(Ok(())) => ctx.out.ok(),
            Some(Err(e)) => ctx.out.err(e),
        };
    }
    let before = ctx.out.len();
    let handled = with_engine(srv, |engine| engine.script_command(args, ctx.out));
    // Under verbatim replication replicas must learn scripts (and their
    // flushes): SCRIPT LOAD and FLUSH go into the stream, as Redis <= 6.2.
    let ok = ctx.out.buf.get(before) != Some(&b'-');
    if handled
        && ok
        && args.len() >= 2
        && (args[1].eq_ignore_ascii_case(b"load") || args[1].eq_ignore_ascii_case(b"flush"))
        && crate::replication::active()
        && crate::replication::scripts_verbatim(srv)
    {
        if args[1].eq_ignore_ascii_case(b"flush") {
            crate::replication::master::forget_scripts();
        }
        crate::replication::propagate(ctx.db, args);
    }
    if !handled {
        ctx.out.err("ERR SCRIPT DEBUG is not supported by keel");
    }
}
