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
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, flags};
use crate::protocol::Out;
use crate::scripting::{Engine, ScriptHost, ScriptStatus, functions};
use crate::server::scripts;
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
        cmd("fcall", -3, f | MAY_REPLICATE, eval)
            .special(Special::Function { ro: false })
            .keys(0, 0, 0),
        cmd("fcall_ro", -3, f | READONLY, eval)
            .special(Special::Function { ro: true })
            .keys(0, 0, 0),
        cmd("function", -2, 0, function).special(Special::FunctionAdmin),
        cmd("script", -2, 0, script),
    ]
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call noscript commands
/// (Redis's test hook).
pub static DENY_SCRIPT_DISABLED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Every engine's status, for SCRIPT KILL from any connection.
static STATUSES: std::sync::Mutex<Vec<Arc<ScriptStatus>>> = std::sync::Mutex::new(Vec::new());

fn with_engine<R>(srv: &crate::server::Server, f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        let engine = e.get_or_insert_with(|| {
            let en = Engine::new();
            STATUSES.lock().unwrap().push(en.status());
            en
        });
        // Read per run: CONFIG SET applies to every shard's engine (lua-time-limit
        // is an alias of busy-reply-threshold).
        let ms = srv.config.read().unwrap().get_i64("busy-reply-threshold");
        engine.set_busy_threshold(ms.max(0) as u64);
        f(engine)
    })
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
    /// FCALL (the -BUSY text names FUNCTION KILL).
    function: bool,
    /// MONITOR lines of the commands run (`[db lua]`), fed once the run
    /// is final (not for a run that is redone holding every shard).
    monitored: Vec<(usize, Vec<Bytes>)>,
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
        if c.flags & flags::NOSCRIPT != 0 && !DENY_SCRIPT_DISABLED.load(Relaxed) {
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
        // Redis's scriptVerifyWriteCommandAllow: server states that refuse
        // a write, until the script has written (then it must go on).
        if c.is_write() && !self.wrote && !crate::replication::replica::MasterApply::active() {
            let srv = self.ctx.srv;
            if crate::replication::replica::read_only_for_clients(srv) {
                return Err("-READONLY You can't write against a read only replica.".into());
            }
            if crate::replication::master::not_enough_replicas(srv) {
                return Err("-NOREPLICAS Not enough good replicas to write.".into());
            }
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
        if matches!(c.name, "xread" | "xreadgroup") && blocks(args) {
            // Stock's stream commands refuse BLOCK from a script themselves.
            out.err(&format!(
                "ERR {} command is not allowed with BLOCK option from scripts",
                String::from_utf8_lossy(&args[0])
            ));
            return Ok(out.buf);
        }
        let monitored = c.flags & (flags::SKIP_MONITOR | flags::ADMIN) == 0
            && self.ctx.srv.monitor_count.load(Relaxed) > 0;
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
            if monitored {
                self.monitored.push((self.ctx.db, args.to_vec()));
            }
            return Ok(out.buf);
        }
        {
            let mut sub = self.ctx.nested(&mut out);
            sub.no_block = true;
            let ran = crate::server::shard::with_current(|rt| {
                crate::server::shard::run_handler(rt.stats(), idx, c, &mut sub, args)
            });
            if ran.is_none() {
                // No shard runtime: the AOF loading at startup on the main
                // thread (it holds every store), as load.rs runs commands.
                (c.handler)(&mut sub, args);
            }
        }
        if monitored {
            self.monitored.push((self.ctx.db, args.to_vec()));
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

    fn acl_check_cmd(&mut self, args: &[Bytes]) -> Option<bool> {
        let (idx, _) = super::lookup(&args[0])?;
        Some(match &self.ctx.caller {
            Some(caller) => crate::acl::check(&caller.0, idx, args).is_ok(),
            None => true,
        })
    }

    fn oom(&self) -> bool {
        self.oom
    }

    fn stale(&self) -> bool {
        !crate::replication::replica::MasterApply::active()
            && crate::replication::replica::stale_denied(self.ctx.srv)
    }

    fn busy(&mut self, _elapsed_ms: u64) {
        // The engine logs the slow script itself.
        if !self.busy {
            self.busy = true;
            scripts::SCRIPT_BUSY_FUNCTION
                .store(self.function, std::sync::atomic::Ordering::Relaxed);
            scripts::SCRIPT_BUSY.store(true, std::sync::atomic::Ordering::Relaxed);
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

/// XREAD/XREADGROUP with a BLOCK option (before STREAMS).
fn blocks(args: &[Bytes]) -> bool {
    let opts = &args[1..];
    opts.iter()
        .take_while(|a| !a.eq_ignore_ascii_case(b"streams"))
        .enumerate()
        .any(|(i, a)| a.eq_ignore_ascii_case(b"block") && i + 1 < opts.len())
}

fn eval(ctx: &mut Ctx, args: &[Bytes]) {
    let srv = ctx.srv;
    let resp3 = ctx.out.resp3;
    let mut out = Out::new(resp3);
    let (is_sha, ro, function) = match super::lookup(&args[0]) {
        Some((_, c)) => match c.special {
            Special::Script { sha, ro } => (sha, ro, false),
            Special::Function { ro } => (false, ro, true),
            _ => (false, false, false),
        },
        None => (false, false, false),
    };
    let script_flags = if function {
        Engine::function_flags(&args[1])
    } else {
        crate::scripting::script_flags(is_sha, &args[1])
    };
    let read_only = script_flags.map(|f| f.read_only(ro)).unwrap_or(ro);
    let cluster_checks =
        srv.cluster.is_some() && !crate::replication::replica::MasterApply::active();
    // check() made sure the declared keys share one slot.
    let slot = scripts::script_keys(args)
        .first()
        .map(|&i| key_slot(&args[i]));
    // Replicas get the script's effects (its writes, as MULTI/EXEC), or
    // under `lua-replicate-commands no` the script itself.
    let db = ctx.db;
    // Functions always replicate their effects (Redis 7).
    let verbatim =
        !function && crate::replication::active() && crate::replication::scripts_verbatim(srv);
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
            function,
            monitored: Vec::new(),
        };
        if function {
            engine.fcall_command(args, ro, &mut host, &mut out);
        } else {
            engine.eval_command(args, is_sha, ro, &mut host, &mut out);
        }
        if host.busy {
            scripts::SCRIPT_BUSY.store(false, std::sync::atomic::Ordering::Relaxed);
            crate::server::shard::busy_ended();
        }
        if !host.need_all || host.wrote {
            for (db, args) in host.monitored.drain(..) {
                srv.feed_monitors(db, "lua", &args);
            }
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
        scripts::mark_global(function, is_sha, args);
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
        return match running.map(|s| s.kill(false)) {
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

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// FUNCTION's subcommands: (name, arity as in Redis's table, writes).
const FUNCTION_SUBS: &[(&str, i32, bool)] = &[
    ("delete", 3, true),
    ("dump", 2, false),
    ("flush", -2, true),
    ("help", 2, false),
    ("kill", 2, false),
    ("list", -2, false),
    ("load", -3, true),
    ("restore", -3, true),
    ("stats", 2, false),
];

/// Every script engine's status (FUNCTION STATS / KILL look for a running one).
fn running_status() -> Option<Arc<ScriptStatus>> {
    STATUSES
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.is_running())
        .cloned()
}

fn function(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = args[1].to_ascii_lowercase();
    let Some(&(name, arity, writes)) = FUNCTION_SUBS
        .iter()
        .find(|(n, _, _)| n.as_bytes() == &sub[..])
    else {
        return ctx.out.err(&format!(
            "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    };
    let n = args.len();
    if (arity >= 0 && n != arity as usize) || (arity < 0 && n < (-arity) as usize) {
        return ctx.out.err(&format!(
            "ERR wrong number of arguments for 'function|{name}' command"
        ));
    }
    let from_master = crate::replication::replica::MasterApply::active();
    // The subcommands' own flags (the container has none): write ones are
    // refused on a read-only replica, LOAD/RESTORE (deny-oom) over maxmemory.
    if writes && !from_master {
        if crate::replication::replica::read_only_for_clients(ctx.srv) {
            return ctx
                .out
                .err("READONLY You can't write against a read only replica.");
        }
        if matches!(name, "load" | "restore") && crate::storage::evict::over_limit() {
            return ctx.out.err(crate::storage::evict::OOM_ERR);
        }
    }
    let srv = ctx.srv;
    let changed = match name {
        "help" => {
            ctx.out.array(FUNCTION_HELP.len());
            for h in FUNCTION_HELP {
                ctx.out.simple(h);
            }
            false
        }
        "load" => function_load(ctx, args, from_master),
        "delete" => {
            let lib = String::from_utf8_lossy(&args[2]).into_owned();
            let r = functions::update(|set| {
                if set.remove(&lib) {
                    Ok(())
                } else {
                    Err("Library not found".into())
                }
            });
            reply_ok_or(ctx, r)
        }
        "flush" => {
            if n == 3
                && !args[2].eq_ignore_ascii_case(b"sync")
                && !args[2].eq_ignore_ascii_case(b"async")
            {
                ctx.out
                    .err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                false
            } else if n > 3 {
                syntax_error(ctx, args);
                false
            } else {
                let _ = functions::update(|set| {
                    *set = functions::LibrarySet::default();
                    Ok(())
                });
                ctx.out.ok();
                true
            }
        }
        "list" => {
            function_list(ctx, args);
            false
        }
        "dump" => {
            let compression = srv.config.read().unwrap().get_bool("rdbcompression");
            let payload = crate::rdb::dump_functions(&functions::codes(), compression);
            ctx.out.bulk(&payload);
            false
        }
        "restore" => function_restore(ctx, args),
        "stats" => {
            function_stats(ctx);
            false
        }
        "kill" => {
            match running_status().map(|s| s.kill(true)) {
                None => ctx.out.err("NOTBUSY No scripts in execution right now."),
                Some(Ok(())) => ctx.out.ok(),
                Some(Err(e)) => ctx.out.err(e),
            }
            false
        }
        _ => unreachable!("every FUNCTION_SUBS entry is handled"),
    };
    if changed {
        // Replicas (and a later restart) learn the change as the command.
        crate::replication::propagate(ctx.db, args);
    }
}

fn reply_ok_or(ctx: &mut Ctx, r: Result<(), String>) -> bool {
    match r {
        Ok(()) => {
            ctx.out.ok();
            true
        }
        Err(e) => {
            ctx.out.err(&format!("ERR {e}"));
            false
        }
    }
}

/// addReplySubcommandSyntaxError.
fn syntax_error(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]);
    let sub: String = sub.chars().take(128).collect();
    ctx.out.err(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
    ));
}

fn function_load(ctx: &mut Ctx, args: &[Bytes], from_master: bool) -> bool {
    let mut replace = false;
    let mut pos = 2;
    while pos < args.len() - 1 {
        if args[pos].eq_ignore_ascii_case(b"replace") {
            replace = true;
            pos += 1;
            continue;
        }
        let opt = &args[pos];
        let opt = &opt[..opt.iter().position(|&c| c == 0).unwrap_or(opt.len())];
        ctx.out.err(&format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(opt)
        ));
        return false;
    }
    let code = &args[pos];
    // Redis's order: header, name, engine and an existing library are
    // refused before the code runs.
    let meta = match functions::parse_meta(code) {
        Ok(m) => m,
        Err(e) => {
            ctx.out.err(&format!("ERR {e}"));
            return false;
        }
    };
    if functions::valid_name(&meta.name) && meta.engine.eq_ignore_ascii_case(b"lua") && !replace {
        let name = String::from_utf8_lossy(&meta.name);
        if functions::current().libs.contains_key(name.as_ref()) {
            ctx.out.err(&format!("ERR Library '{name}' already exists"));
            return false;
        }
    }
    // The master's stream is obeyed without the load time limit.
    let timeout = if from_master {
        0
    } else {
        crate::scripting::LOAD_TIMEOUT_MS
    };
    let lib = with_engine(ctx.srv, |e| e.compile_library(code, timeout));
    let r = lib.and_then(|lib| {
        let name = lib.name.clone();
        functions::update(|set| set.add(lib, replace)).map(|()| name)
    });
    match r {
        Ok(name) => {
            ctx.out.bulk(name.as_bytes());
            true
        }
        Err(e) => {
            ctx.out.err(&format!("ERR {e}"));
            false
        }
    }
}

fn function_restore(ctx: &mut Ctx, args: &[Bytes]) -> bool {
    if args.len() > 4 {
        syntax_error(ctx, args);
        return false;
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
        Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
        Some(_) => {
            ctx.out.err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
            return false;
        }
    };
    use crate::rdb::FunctionsPayloadError as PayloadErr;
    let records = match crate::rdb::restore_functions(&args[2]) {
        Ok(c) => c,
        Err(_) => {
            ctx.out
                .err("ERR DUMP payload version or checksum are wrong");
            return false;
        }
    };
    // Every library compiles into a set of its own first (rdbFunctionLoad),
    // in payload order: the first failure is the reply.
    let mut restored = functions::LibrarySet::default();
    for rec in records {
        let r = match rec {
            Ok(code) => {
                let code = Bytes::from(code);
                with_engine(ctx.srv, |e| e.compile_library(&code, 0))
                    .and_then(|lib| restored.add(lib, false))
            }
            Err(PayloadErr::Data(e)) => Err(e.to_string()),
            Err(PayloadErr::Footer) => Err("DUMP payload version or checksum are wrong".into()),
        };
        if let Err(e) = r {
            ctx.out.err(&format!("ERR {e}"));
            return false;
        }
    }
    let r = functions::update(|set| {
        if policy == Policy::Flush {
            *set = restored;
            Ok(())
        } else {
            set.join(restored, policy == Policy::Replace)
        }
    });
    reply_ok_or(ctx, r)
}

fn function_list(ctx: &mut Ctx, args: &[Bytes]) {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
            i += 1;
            continue;
        }
        if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return ctx.out.err("ERR library name argument was not given");
            }
            pattern = Some(&args[i + 1]);
            i += 2;
            continue;
        }
        let a = &a[..a.iter().position(|&c| c == 0).unwrap_or(a.len())];
        return ctx.out.err(&format!(
            "ERR Unknown argument {}",
            String::from_utf8_lossy(a)
        ));
    }
    let set = functions::current();
    let libs: Vec<_> = set
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| crate::util::glob_match(p, l.name.as_bytes(), true)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for l in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(l.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(l.engine.as_bytes());
        out.bulk(b"functions");
        out.array(l.functions.len());
        for f in &l.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<_> = functions::flag_names(f.flags).collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&l.code);
        }
    }
}

fn function_stats(ctx: &mut Ctx) {
    let running = running_status().and_then(|s| s.detail());
    if running.as_ref().is_some_and(|d| !d.function) {
        return ctx.out.err(crate::scripting::busy_error(false));
    }
    let set = functions::current();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some(d) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(d.name.as_bytes());
            out.bulk(b"command");
            out.array(d.command.len());
            for a in &d.command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(d.start.elapsed().as_millis() as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(set.libs.len() as i64);
    out.bulk(b"functions_count");
    out.int(set.function_count() as i64);
}
