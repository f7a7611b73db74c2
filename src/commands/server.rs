//! server commands: INFO (see info.rs), CONFIG, COMMAND, TIME, LASTSAVE.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::table::{Command, cmd, table};
use super::{Ctx, eq_ic, errors, flags::*, info, lookup};
use crate::config::{PARAMS, find_param};
use crate::protocol::Out;
use crate::util::glob_match;

pub fn commands() -> Vec<Command> {
    // Taken at table build, i.e. process start: INFO's used_memory_startup.
    info::startup_memory();
    vec![
        cmd("info", -1, LOADING | STALE, info::info).all_shards(),
        // AllShards: RESETSTAT clears every shard's keyspace counters.
        cmd("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, config).all_shards(),
        cmd("command", -1, LOADING | STALE, command),
        cmd("time", 1, LOADING | STALE | FAST, time),
        // Conn: `enable-module-command local` needs the client's address.
        cmd("module", -2, ADMIN | NOSCRIPT, module),
        cmd("lolwut", -1, READONLY | FAST, lolwut),
        cmd("lastsave", 1, LOADING | STALE | FAST, lastsave),
    ]
}

// ---------------------------------------------------------------- TIME, LASTSAVE

fn time(ctx: &mut Ctx, _args: &[Bytes]) {
    let us = crate::storage::now_us();
    ctx.out.array(2);
    ctx.out.bulk_str(&(us / 1_000_000).to_string());
    ctx.out.bulk_str(&(us % 1_000_000).to_string());
}

fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.int(ctx.srv.lastsave.load(Ordering::Relaxed) as i64);
}

// ---------------------------------------------------------------- subcommands

/// Subcommand `sub` of a container command (case-insensitive), checking its
/// arity against its spec. Replies with the error and returns None when
/// unknown or misused. Returns the subcommand's name ("get" of "config|get").
pub(crate) fn subcommand(ctx: &mut Ctx, args: &[Bytes]) -> Option<&'static str> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let c = crate::cmdspec::find(&name)?;
    let Some(sub) = c.sub(&args[1]).filter(|s| has_sub(s)) else {
        ctx.out.err(&errors::unknown_subcommand(&args[1], c.name));
        return None;
    };
    if !sub.arity_ok(args.len()) {
        ctx.out.err(&errors::wrong_args(sub.name));
        return None;
    }
    Some(&sub.name[c.name.len() + 1..])
}

/// Replies a HELP text as Redis's addReplyHelp does.
pub(crate) fn reply_help(out: &mut Out, cmd: &[u8], lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(cmd).to_ascii_uppercase()
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

// ---------------------------------------------------------------- MODULE, LOLWUT

/// Whether a protected command (`enable-debug-command` / `enable-module-command`:
/// yes, no or local) may run for this client: "local" means a loopback peer.
pub(crate) fn protected_allowed(ctx: &Ctx, setting: &str) -> bool {
    match setting {
        "yes" => true,
        "local" => ctx.client.as_ref().is_some_and(|c| {
            c.info
                .addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| match a.ip() {
                    std::net::IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
                    std::net::IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
                })
        }),
        _ => false,
    }
}

/// keel loads no Redis modules (they are C shared objects built against
/// Redis's own internals): LIST is empty, LOAD and LOADEX fail as a failed
/// load does in Redis, UNLOAD finds no such module.
fn module(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(sub) = subcommand(ctx, args) else {
        return;
    };
    if sub == "help" {
        return reply_help(
            ctx.out,
            &args[0],
            &[
                "LIST",
                "    Return a list of loaded modules.",
                "LOAD <path> [<arg> ...]",
                "    Load a module library from <path>, passing to it any optional arguments.",
                "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
                "    Load a module library from <path>, while passing it module configurations and optional arguments.",
                "UNLOAD <name>",
                "    Unload a module.",
            ],
        );
    }
    let setting = ctx
        .srv
        .config
        .read()
        .unwrap()
        .get("enable-module-command")
        .to_string();
    // LOAD, LOADEX and UNLOAD are protected; LIST is not.
    if sub != "list" && !protected_allowed(ctx, &setting) {
        return ctx.out.err(
            "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        );
    }
    match sub {
        "list" => ctx.out.array(0),
        "unload" => ctx
            .out
            .err("ERR Error unloading module: no such module with that name"),
        _ => {
            crate::log::warning(&format!(
                "Module {} failed to load: keel does not load Redis modules",
                String::from_utf8_lossy(&args[2])
            ));
            ctx.out
                .err("ERR Error loading the extension. Please check the server logs.")
        }
    }
}

/// LOLWUT [VERSION v] [args]: keel's own art for versions 5 and 6 (their
/// arguments parsed and clamped as Redis does), the version line otherwise.
fn lolwut(ctx: &mut Ctx, args: &[Bytes]) {
    let mut version: Option<i64> = None;
    let mut rest = &args[1..];
    if args.len() >= 3 && eq_ic(&args[1], "version") {
        let Some(v) = super::parse_i64(&args[2]) else {
            return ctx.out.err(errors::NOT_INT);
        };
        // Redis prints it with %u: only the low 32 bits count.
        version = Some(v as u32 as i64);
        rest = &args[3..];
    }
    // Versions 5 and 6 read 3 and 2 numbers; the others read none.
    let wanted = match version {
        Some(5) => 3,
        Some(6) => 2,
        _ => 0,
    };
    let mut nums = Vec::new();
    for a in rest.iter().take(wanted) {
        match super::parse_i64(a) {
            Some(n) => nums.push(n),
            None => return ctx.out.err(errors::NOT_INT),
        }
    }
    let ver = crate::REDIS_VERSION;
    let text = match version {
        Some(5) => {
            let cols = nums.first().copied().unwrap_or(66).clamp(1, 1000) as usize;
            let per_row = nums.get(1).copied().unwrap_or(8).clamp(1, 200) as usize;
            let per_col = nums.get(2).copied().unwrap_or(12).clamp(1, 200) as usize;
            format!(
                "{}\nA grid slowly coming apart, keel's own. Redis ver. {ver}\n",
                lolwut_grid(cols, per_row, per_col)
            )
        }
        Some(6) => {
            let cols = nums.first().copied().unwrap_or(80).clamp(1, 1000) as usize;
            let rows = nums.get(1).copied().unwrap_or(20).clamp(1, 1000) as usize;
            format!(
                "{}\nA skyline of shards, keel's own. Redis ver. {ver}\n",
                lolwut_skyline(cols, rows)
            )
        }
        // Other versions take no arguments and never fail on them.
        _ => format!("Redis ver. {ver}\n"),
    };
    ctx.out.verbatim(text.as_bytes());
}

/// Squares drifting and turning more the lower they sit, drawn with
/// braille-free ASCII so any terminal shows it.
fn lolwut_grid(cols: usize, per_row: usize, per_col: usize) -> String {
    let size = (cols / per_row).max(1);
    // Bounded, so LOLWUT stays cheap whatever the arguments.
    let h = (per_col * size / 2 + 1).min(1000);
    let w = cols;
    let mut canvas = vec![vec![b' '; w]; h.max(1)];
    let mut seed: u64 = crate::storage::now_us() | 1;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 1000.0
    };
    for r in 0..per_col {
        for c in 0..per_row {
            let chaos = r as f64 / per_col as f64;
            let dx = ((rnd() - 0.5) * chaos * size as f64) as isize;
            let dy = ((rnd() - 0.5) * chaos * size as f64 / 2.0) as isize;
            let x0 = (c * size) as isize + dx;
            let y0 = (r * size / 2) as isize + dy;
            let half = (size / 2).max(1) as isize;
            for k in 0..(size as isize) {
                for (x, y, ch) in [
                    (x0 + k, y0, b'-'),
                    (x0 + k, y0 + half, b'-'),
                    (x0, y0 + k / 2, b'|'),
                    (x0 + size as isize - 1, y0 + k / 2, b'|'),
                ] {
                    if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < canvas.len() {
                        canvas[y as usize][x as usize] = ch;
                    }
                }
            }
        }
    }
    canvas
        .iter()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Towers of random height, one per few columns, with lit windows.
fn lolwut_skyline(cols: usize, rows: usize) -> String {
    let mut seed: u64 = crate::storage::now_us() | 1;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let mut canvas = vec![vec![b' '; cols]; rows];
    let mut x = 0;
    while x < cols {
        let width = 3 + rnd(5);
        let height = 1 + rnd(rows);
        for (y, line) in canvas.iter_mut().enumerate().skip(rows - height) {
            for (i, cell) in line.iter_mut().enumerate().skip(x).take(width) {
                let edge = i == x || i == x + width - 1 || y == rows - height;
                *cell = if edge {
                    b'#'
                } else if rnd(3) == 0 {
                    b'o'
                } else {
                    b'.'
                };
            }
        }
        x += width + rnd(3);
    }
    canvas
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- CONFIG

fn config(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(sub) = subcommand(ctx, args) else {
        return;
    };
    match sub {
        "get" => config_get(ctx, &args[2..]),
        "set" => config_set(ctx, args),
        "resetstat" => config_resetstat(ctx),
        "rewrite" => config_rewrite(ctx),
        _ => reply_help(
            ctx.out,
            &args[0],
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        ),
    }
}

fn config_get(ctx: &mut Ctx, patterns: &[Bytes]) {
    let cfg = ctx.srv.config.read().unwrap();
    // (name as replied, canonical name); one entry per canonical name.
    let mut found: Vec<(String, &'static str)> = Vec::new();
    for pat in patterns {
        let text = String::from_utf8_lossy(pat);
        if !pat.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            // An exact name is echoed as typed, as Redis does.
            if let Some(p) = find_param(&text)
                && !found.iter().any(|(_, c)| *c == p.name)
            {
                found.push((text.into_owned(), p.name));
            }
            continue;
        }
        for p in PARAMS.iter().filter(|p| !p.hidden) {
            for name in std::iter::once(p.name).chain(p.alias) {
                if glob_match(pat, name.as_bytes(), true) && !found.iter().any(|(n, _)| n == name) {
                    found.push((name.to_string(), p.name));
                }
            }
        }
    }
    ctx.out.map(found.len());
    for (name, canon) in found {
        ctx.out.bulk_str(&name);
        ctx.out.bulk_str(cfg.get(canon));
    }
}

fn config_set(ctx: &mut Ctx, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        ctx.out.err(errors::SYNTAX);
        return;
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0]).into_owned(),
                String::from_utf8_lossy(&p[1]).into_owned(),
            )
        })
        .collect();
    // The first bad name decides the error, as in Redis.
    let local = ctx
        .client
        .as_ref()
        .is_some_and(|c| crate::config::peer_is_local(&c.info.addr));
    let protected_ok = crate::config::protected_allowed(
        ctx.srv
            .config
            .read()
            .unwrap()
            .get("enable-protected-configs"),
        local,
    );
    let mut params = Vec::new();
    for (name, _) in &pairs {
        let why = match find_param(name) {
            None => {
                ctx.out.err(&format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
                return;
            }
            Some(p) if p.immutable => "can't set immutable config",
            Some(p) if p.protected && !protected_ok => "can't set protected config",
            Some(p)
                if params
                    .iter()
                    .any(|q: &&crate::config::Param| q.name == p.name) =>
            {
                "duplicate parameter"
            }
            Some(p) => {
                params.push(p);
                continue;
            }
        };
        ctx.out.err(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ));
        return;
    }
    let mut guard = ctx.srv.config.write().unwrap();
    let mut next = guard.clone();
    // The error names the parameter as typed (an alias stays an alias).
    for (p, (name, value)) in params.iter().zip(&pairs) {
        if let Err(why) = next.set_param(p, value) {
            ctx.out.err(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
            return;
        }
    }
    // Side effects that can fail go before the commit, so a failure changes nothing.
    if params.iter().any(|p| p.name == "logfile")
        && next.get("logfile") != guard.get("logfile")
        && let Err(e) = crate::log::set_file(next.get("logfile"))
    {
        ctx.out.err(&format!(
            "ERR CONFIG SET failed (possibly related to argument 'logfile') - {e}"
        ));
        return;
    }
    crate::log::set_level(next.get("loglevel"));
    *guard = next;
    drop(guard);
    ctx.srv.config_changed();
    // As stock's startAppendOnly: the rewrite that turns the AOF on starts
    // now, unless another child runs (the cron starts it after that one).
    if crate::aof::start_pending() && !ctx.srv.persist.bgsave_in_progress() {
        super::snapshot::start_aof_rewrite_now(ctx);
    }
    ctx.out.ok();
}

fn config_resetstat(ctx: &mut Ctx) {
    for s in &ctx.srv.stats {
        s.reset();
    }
    crate::replication::replica::UNEXPECTED_ERRORS.store(0, Ordering::Relaxed);
    for i in ctx.held_shards() {
        ctx.store(i).stats = Default::default();
    }
    ctx.out.ok();
}

/// Replaces the `user` lines of a config file's text with `users`: in place
/// of the first one, else after the generated block.
fn rewrite_user_lines(text: &str, users: &[String]) -> String {
    const MARK: &str = "# Generated by CONFIG REWRITE";
    let is_user = |l: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("user"))
    };
    let mut out: Vec<String> = Vec::new();
    let mut placed = false;
    for l in text.lines() {
        if is_user(l) {
            if !placed {
                out.extend(users.iter().cloned());
                placed = true;
            }
            continue;
        }
        out.push(l.to_string());
    }
    if !placed && !users.is_empty() {
        if !out.iter().any(|l| l == MARK) {
            out.push(MARK.to_string());
        }
        out.extend(users.iter().cloned());
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

fn config_rewrite(ctx: &mut Ctx) {
    let cfg = ctx.srv.config.read().unwrap().clone();
    let Some(path) = cfg.file.clone() else {
        ctx.out
            .err("ERR The server is running without a config file");
        return;
    };
    let res = (|| -> std::io::Result<()> {
        let old = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut text = cfg.rewrite_text(&old);
        // Users go in the file unless an ACL file holds them (Redis's
        // rewriteConfigUserOption).
        let users: Vec<String> = if cfg.get("aclfile").is_empty() {
            crate::acl::read()
                .users
                .iter()
                .map(|(name, u)| format!("user {name} {}", u.describe()))
                .collect()
        } else {
            Vec::new()
        };
        text = rewrite_user_lines(&text, &users);
        // Write a sibling file and rename it over, so a crash never leaves half a config.
        let tmp = format!("{path}.tmp-{}", std::process::id());
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    })();
    match res {
        Ok(()) => {
            crate::log::warning("CONFIG REWRITE executed with success.");
            ctx.out.ok();
        }
        Err(e) => {
            crate::log::warning(&format!("CONFIG REWRITE failed: {e}"));
            ctx.out.err(&format!("ERR Rewriting config file: {e}"));
        }
    }
}

// ---------------------------------------------------------------- COMMAND
//
// Everything here is read from the command's spec (`crate::cmdspec`), for the
// commands keel's table has.

use crate::cmdspec::{self, Spec};

/// Whether keel implements subcommand `s` (of a container in its table).
fn has_sub(s: &Spec) -> bool {
    let (parent, sub) = s.name.split_once('|').unwrap_or((s.name, ""));
    lookup(parent.as_bytes()).is_some_and(|(_, c)| !c.lacks_subs.contains(&sub))
}

/// The spec of each command keel has, in table order.
fn specs() -> impl Iterator<Item = &'static Spec> {
    table().commands.iter().filter_map(|c| c.spec)
}

fn write_info(out: &mut Out, s: &Spec) {
    cmdspec::write_info(out, s, &has_sub);
}

/// Full names (with subcommands) and their category bits, for COMMAND LIST.
fn all_names() -> Vec<(&'static str, u32)> {
    let mut v = Vec::new();
    for s in specs() {
        v.push((s.name, s.acl));
        v.extend(
            s.subs
                .iter()
                .filter(|x| has_sub(x))
                .map(|x| (x.name, x.acl)),
        );
    }
    v
}

fn command(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 1 {
        ctx.out.array(specs().count());
        for s in specs() {
            write_info(ctx.out, s);
        }
        return;
    }
    let Some(sub) = subcommand(ctx, args) else {
        return;
    };
    match sub {
        "count" => ctx.out.int(specs().count() as i64),
        "info" => {
            if args.len() == 2 {
                ctx.out.array(specs().count());
                for s in specs() {
                    write_info(ctx.out, s);
                }
                return;
            }
            ctx.out.array(args.len() - 2);
            for name in &args[2..] {
                match lookup_full(name) {
                    Some(s) => write_info(ctx.out, s),
                    None => ctx.out.null(),
                }
            }
        }
        "docs" => {
            let found: Vec<&Spec> = if args.len() == 2 {
                specs().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup_full(n)).collect()
            };
            ctx.out.map(found.len());
            for s in found {
                ctx.out.bulk_str(s.name);
                cmdspec::write_docs(ctx.out, s, &has_sub);
            }
        }
        "list" => command_list(ctx, args),
        "getkeys" => command_getkeys(ctx, &args[2..], false),
        "getkeysandflags" => command_getkeys(ctx, &args[2..], true),
        _ => reply_help(
            ctx.out,
            &args[0],
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        ),
    }
}

/// A command keel has by its name as typed, or "container|sub" (Redis's
/// lookupCommandBySds for COMMAND INFO/DOCS).
fn lookup_full(name: &[u8]) -> Option<&'static Spec> {
    let text = std::str::from_utf8(name).ok()?;
    match text.split_once('|') {
        None => lookup(name)?.1.spec,
        Some((c, sub)) => {
            let s = lookup(c.as_bytes())?.1.spec?.sub(sub.as_bytes())?;
            has_sub(s).then_some(s)
        }
    }
}

fn command_list(ctx: &mut Ctx, args: &[Bytes]) {
    enum Filter {
        None,
        Module,
        Acl(u32),
        Pattern(Bytes),
    }
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "filterby") && args.len() - 1 - i == 2 {
            let arg = args[i + 2].clone();
            filter = if eq_ic(&args[i + 1], "module") {
                Filter::Module
            } else if eq_ic(&args[i + 1], "aclcat") {
                // An unknown category matches nothing.
                Filter::Acl(crate::acl::category_bit(&String::from_utf8_lossy(&arg)).unwrap_or(0))
            } else if eq_ic(&args[i + 1], "pattern") {
                Filter::Pattern(arg)
            } else {
                ctx.out.err(errors::SYNTAX);
                return;
            };
            i += 3;
        } else {
            ctx.out.err(errors::SYNTAX);
            return;
        }
    }
    let names: Vec<&str> = all_names()
        .into_iter()
        .filter(|(name, cats)| match &filter {
            Filter::None => true,
            Filter::Module => false,
            Filter::Acl(c) => cats & c != 0,
            Filter::Pattern(p) => glob_match(p, name.as_bytes(), true),
        })
        .map(|(n, _)| n)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk_str(n);
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS (Redis's getKeysSubcommandImpl).
fn command_getkeys(ctx: &mut Ctx, argv: &[Bytes], with_flags: bool) {
    // The command, or its subcommand when it is a container.
    let spec = lookup(&argv[0]).and_then(|(_, c)| c.spec).and_then(|s| {
        if argv.len() == 1 || s.subs.is_empty() {
            Some(s)
        } else {
            s.sub(&argv[1]).filter(|x| has_sub(x))
        }
    });
    let Some(spec) = spec else {
        ctx.out.err("ERR Invalid command specified");
        return;
    };
    if !spec.has_keys() {
        ctx.out.err("ERR The command has no key arguments");
        return;
    }
    if !spec.arity_ok(argv.len()) {
        ctx.out
            .err("ERR Invalid number of arguments specified for command");
        return;
    }
    let mut keys = Vec::new();
    spec.keys(argv, &mut keys);
    if keys.is_empty() {
        if spec.has(NO_MANDATORY_KEYS) {
            ctx.out.array(0);
        } else {
            ctx.out.err("ERR Invalid arguments specified for command");
        }
        return;
    }
    ctx.out.array(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&argv[pos]);
            cmdspec::write_key_flags(ctx.out, flags);
        } else {
            ctx.out.bulk(&argv[pos]);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn rewrite_puts_users_in_place_of_the_old_lines() {
        let users = vec!["user default on nopass ~* &* +@all".to_string()];
        assert_eq!(
            super::rewrite_user_lines("# c\nuser a on\nport 1\nuser b off\n", &users),
            "# c\nuser default on nopass ~* &* +@all\nport 1\n"
        );
        assert_eq!(
            super::rewrite_user_lines("port 1\n", &users),
            "port 1\n# Generated by CONFIG REWRITE\nuser default on nopass ~* &* +@all\n"
        );
        assert_eq!(
            super::rewrite_user_lines("user a on\nport 1\n", &[]),
            "port 1\n"
        );
    }

    #[test]
    fn rewrite_keeps_comments_and_other_lines() {
        let mut c = Config::default();
        c.load_text("# top\nport 7000\nsave 900 1\nsave 300 10\n")
            .unwrap();
        c.set("maxmemory", "1mb").unwrap();
        c.set("save", "").unwrap();
        c.set("requirepass", "a b").unwrap();
        // An unknown directive no longer loads (FATAL CONFIG FILE ERROR).
        assert!(Config::default().load_text("foo bar\n").is_err());
        let text = c.rewrite_text("# top\nport 7000\nsave 900 1\nsave 300 10\n");
        assert_eq!(
            text,
            "# top\nport 7000\nsave \"\"\n# Generated by CONFIG REWRITE\nrequirepass \"a b\"\nmaxmemory 1mb\n"
        );
        // The rewritten file loads back to the same values.
        let mut back = Config::default();
        back.load_text(&text).unwrap();
        assert_eq!(back.get("requirepass"), "a b");
        assert_eq!(back.get("save"), "");
        assert_eq!(back.get_i64("maxmemory"), 1 << 20);
        // REPLICAOF NO ONE (Sentinel's promotion) removes the line.
        let mut r = Config::default();
        r.load_text("# B\nreplicaof 127.0.0.1 6379\n").unwrap();
        r.set("replicaof", "").unwrap();
        assert_eq!(r.rewrite_text("# B\nreplicaof 127.0.0.1 6379\n"), "# B\n");
    }
}
