//! Connection commands: PING ECHO QUIT SELECT HELLO AUTH CLIENT RESET
//! SHUTDOWN MONITOR. They run on the connection's own thread.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::server::client::{Client, ReplyMode};
use crate::server::tracking;

pub fn commands() -> Vec<Command> {
    vec![
        cmd("ping", -1, FAST, ping).special(Special::Ping),
        cmd("echo", 2, FAST | STALE | LOADING, echo),
        cmd(
            "quit",
            -1,
            ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
            quit,
        )
        .special(Special::Quit),
        cmd("select", 2, LOADING | STALE | FAST, select).special(Special::Select),
        cmd(
            "hello",
            -1,
            NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
            hello,
        ),
        cmd(
            "auth",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
            auth,
        ),
        cmd("client", -2, 0, client).special(Special::Client),
        cmd(
            "reset",
            1,
            NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
            reset,
        )
        .special(Special::Reset),
        cmd("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, monitor),
    ]
}

fn client_of<'a>(ctx: &'a mut Ctx) -> &'a mut Client {
    ctx.client
        .as_deref_mut()
        .expect("connection command without a client")
}

fn ping(ctx: &mut Ctx, args: &[Bytes]) {
    // A subscribed RESP2 connection gets PING's answer as a message-like array.
    if let Some(c) = ctx.client.as_deref()
        && !c.resp3
        && c.subs.any()
        && args.len() <= 2
    {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map(|a| a.as_ref()).unwrap_or(b""));
        return;
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => ctx.out.err(&errors::wrong_args("ping")),
    }
}

fn echo(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.out.bulk(&args[1]);
}

fn quit(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.ok();
    client_of(ctx).close_after_reply = true;
}

fn select(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(n) = parse_i64(&args[1]) else {
        return ctx.out.err(errors::NOT_INT);
    };
    if ctx.srv.cluster.is_some() && n != 0 {
        return ctx.out.err("ERR SELECT is not allowed in cluster mode");
    }
    if n < 0 || n as usize >= ctx.srv.databases {
        return ctx.out.err("ERR DB index is out of range");
    }
    client_of(ctx).select(n as usize);
    ctx.out.ok();
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// ACLAuthenticateUser: on success the connection becomes `user`; a
/// failure is logged in ACL LOG (object: the command name as sent).
fn authenticate(
    ctx: &mut Ctx,
    cmd_name: &[u8],
    user: &[u8],
    pass: &[u8],
) -> Result<(), &'static str> {
    let name = String::from_utf8_lossy(user).into_owned();
    match crate::acl::get_user(&name) {
        Some(u) if u.check_password(pass) => {
            let c = client_of(ctx);
            c.authenticated = true;
            c.set_user(u);
            Ok(())
        }
        _ => {
            let srv = ctx.srv;
            let c = client_of(ctx);
            let context = if c.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            let object = String::from_utf8_lossy(cmd_name).into_owned();
            crate::server::acl_log_for(srv, c, "auth", context, object, Some(name));
            Err(WRONGPASS)
        }
    }
}

fn auth(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.out.err(errors::SYNTAX);
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if crate::acl::default_user().nopass() {
            return ctx.out.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    match authenticate(ctx, &args[0], user, pass) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.err(e),
    }
}

fn hello(ctx: &mut Ctx, args: &[Bytes]) {
    let mut i = 1;
    let mut proto = None;
    if args.len() >= 2 {
        match parse_i64(&args[1]) {
            Some(v) if v == 2 || v == 3 => proto = Some(v),
            Some(_) => return ctx.out.err("NOPROTO unsupported protocol version"),
            None => {
                return ctx
                    .out
                    .err("ERR Protocol version is not an integer or out of range");
            }
        }
        i = 2;
    }
    let mut setname = None;
    while i < args.len() {
        if eq_ic(&args[i], "AUTH") && i + 2 < args.len() {
            if let Err(e) = authenticate(ctx, &args[0], &args[i + 1], &args[i + 2]) {
                return ctx.out.err(e);
            }
            i += 3;
        } else if eq_ic(&args[i], "SETNAME") && i + 1 < args.len() {
            setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            return ctx.out.err(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if !client_of(ctx).authenticated {
        return ctx.out.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = setname {
        if let Err(e) = valid_client_name(&name) {
            return ctx.out.err(e);
        }
        *client_of(ctx).info.name.lock().unwrap() = String::from_utf8_lossy(&name).into_owned();
    }
    let c = client_of(ctx);
    if let Some(p) = proto {
        c.resp3 = p == 3;
        c.subs.queue.resp3.set(c.resp3);
        c.info.resp.store(p as usize, Ordering::Relaxed);
    }
    let id = c.id;
    let proto = if c.resp3 { 3 } else { 2 };
    ctx.out.resp3 = proto == 3;
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(crate::REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(proto);
    ctx.out.bulk(b"id");
    ctx.out.int(id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(if ctx.srv.cluster.is_some() {
        b"cluster"
    } else {
        b"standalone"
    });
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
}

fn valid_client_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| b <= b' ' || b > b'~') {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    Ok(())
}

fn reset(ctx: &mut Ctx, _args: &[Bytes]) {
    let srv = ctx.srv;
    let default = crate::acl::default_user();
    let c = client_of(ctx);
    c.select(0);
    c.resp3 = false;
    c.info.resp.store(2, Ordering::Relaxed);
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.multi = None;
    c.multi_error = false;
    crate::server::watch::unwatch_all(c);
    // Cluster: READWRITE, no ASKING.
    c.readonly = false;
    c.asking = false;
    // clientSetDefaultAuth: the default user, authenticated if it needs no password.
    c.authenticated = default.nopass() && default.enabled();
    c.set_user(default);
    let (shard, id) = (c.info.shard, c.id);
    c.subs.clear(srv, shard, id);
    c.subs.publish_counts(&c.info);
    c.subs.queue.resp3.set(false);
    tracking::disable(&c.info);
    *c.info.name.lock().unwrap() = String::new();
    ctx.out.resp3 = false;
    ctx.out.simple("RESET");
}

fn monitor(ctx: &mut Ctx, _args: &[Bytes]) {
    let c = client_of(ctx);
    c.monitor = true;
    ctx.out.ok();
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
    "LIST [options ...]",
    "    Return information about client connections. Options: TYPE (NORMAL|MASTER|REPLICA|PUBSUB), ID id [id ...].",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
];

pub fn reply_help(ctx: &mut Ctx, lines: &[&str]) {
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

/// CLIENT subcommands of Redis 7.0 with their arity (name included).
const CLIENT_SUBCOMMANDS: &[(&str, i32)] = &[
    ("caching", -3),
    ("getname", 2),
    ("getredir", 2),
    ("help", 2),
    ("id", 2),
    ("info", 2),
    ("kill", -3),
    ("list", -2),
    ("no-evict", 3),
    ("pause", -3),
    ("reply", 3),
    ("setname", 3),
    ("tracking", -3),
    ("trackinginfo", 2),
    ("unblock", -3),
    ("unpause", 2),
];

/// Checks a container's subcommand and its arity as Redis does; the error
/// to reply otherwise.
pub fn check_subcommand(
    container: &str,
    table: &[(&str, i32)],
    args: &[Bytes],
) -> Result<(), String> {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let Some(&(name, arity)) = table.iter().find(|(n, _)| *n == sub) else {
        return Err(errors::unknown_subcommand(&args[1], container));
    };
    let n = args.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(format!(
            "ERR wrong number of arguments for '{container}|{name}' command"
        ));
    }
    Ok(())
}

fn client(ctx: &mut Ctx, args: &[Bytes]) {
    if let Err(e) = check_subcommand("client", CLIENT_SUBCOMMANDS, args) {
        return ctx.out.err(&e);
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let now = ctx.now;
    match (sub.as_str(), args.len()) {
        ("help", 2) => reply_help(ctx, CLIENT_HELP),
        ("id", 2) => {
            let id = client_of(ctx).id;
            ctx.out.int(id as i64)
        }
        ("getname", 2) => {
            let name = client_of(ctx).info.name.lock().unwrap().clone();
            if name.is_empty() {
                ctx.out.null()
            } else {
                ctx.out.bulk(name.as_bytes())
            }
        }
        ("setname", 3) => {
            if let Err(e) = valid_client_name(&args[2]) {
                return ctx.out.err(e);
            }
            *client_of(ctx).info.name.lock().unwrap() =
                String::from_utf8_lossy(&args[2]).into_owned();
            ctx.out.ok()
        }
        ("info", 2) => {
            let line = client_of(ctx).info.list_line(now) + "\n";
            ctx.out.verbatim(line.as_bytes())
        }
        ("list", _) => client_list(ctx, &args[2..]),
        ("kill", _) if args.len() >= 3 => client_kill(ctx, &args[2..]),
        ("no-evict", 3) => {
            let on = if eq_ic(&args[2], "on") {
                true
            } else if eq_ic(&args[2], "off") {
                false
            } else {
                return ctx.out.err(errors::SYNTAX);
            };
            let c = client_of(ctx);
            c.no_evict = on;
            c.info.no_evict.store(on, Ordering::Relaxed);
            ctx.out.ok()
        }
        ("reply", 3) => {
            let c = client_of(ctx);
            if eq_ic(&args[2], "on") {
                c.reply_mode = ReplyMode::On;
                ctx.out.ok()
            } else if eq_ic(&args[2], "off") {
                c.reply_mode = ReplyMode::Off;
            } else if eq_ic(&args[2], "skip") {
                // This command's reply is already suppressed if mode was OFF;
                // with mode ON it is sent, and the next one is skipped.
                if c.reply_mode != ReplyMode::Off {
                    c.reply_mode = ReplyMode::Skip;
                }
            } else {
                ctx.out.err(errors::SYNTAX)
            }
        }
        ("unpause", 2) => {
            crate::server::ops::unpause_clients();
            ctx.out.ok()
        }
        ("pause", 3 | 4) => {
            let all = if args.len() == 4 {
                if eq_ic(&args[3], "write") {
                    false
                } else if eq_ic(&args[3], "all") {
                    true
                } else {
                    return ctx.out.err("ERR CLIENT PAUSE mode must be WRITE or ALL");
                }
            } else {
                true
            };
            match parse_i64(&args[2]) {
                None => ctx.out.err("ERR timeout is not an integer or out of range"),
                Some(t) if t < 0 => ctx.out.err("ERR timeout is negative"),
                Some(t) => {
                    crate::server::ops::pause_clients(all, now.saturating_add(t as u64));
                    ctx.out.ok()
                }
            }
        }
        ("unblock", 3 | 4) => {
            let code = if args.len() == 4 {
                if eq_ic(&args[3], "timeout") {
                    1
                } else if eq_ic(&args[3], "error") {
                    2
                } else {
                    return ctx
                        .out
                        .err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                }
            } else {
                1
            };
            let Some(id) = parse_i64(&args[2]) else {
                return ctx.out.err(errors::NOT_INT);
            };
            let clients = ctx.srv.clients.lock().unwrap();
            let hit = clients
                .get(&(id as u64))
                .filter(|c| c.blocked.load(Ordering::Relaxed))
                .map(|c| c.unblock.store(code, Ordering::Relaxed))
                .is_some();
            drop(clients);
            ctx.out.int(hit as i64)
        }
        ("tracking", _) => client_tracking(ctx, args),
        ("caching", _) => client_caching(ctx, args),
        ("getredir", 2) => {
            let info = &client_of(ctx).info;
            let on = info.tracking.load(Ordering::Relaxed) & tracking::ON != 0;
            let redir = info.tracking_redir.load(Ordering::Relaxed) as i64;
            ctx.out.int(if on { redir } else { -1 })
        }
        ("trackinginfo", 2) => client_trackinginfo(ctx),
        _ => ctx.out.err(&format!(
            "ERR CLIENT {} is not supported by keel yet",
            sub.to_ascii_uppercase()
        )),
    }
}

/// CLIENT TRACKING (on|off) [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis's checks in its order.
fn client_tracking(ctx: &mut Ctx, args: &[Bytes]) {
    let mut redir: i64 = 0;
    let mut options = 0u32;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq_ic(a, "redirect") && more {
            j += 1;
            if redir != 0 {
                return ctx
                    .out
                    .err("ERR A client can only redirect to a single other client");
            }
            let Some(id) = parse_i64(&args[j]) else {
                return ctx.out.err(errors::NOT_INT);
            };
            redir = id;
            let exists = id > 0 && ctx.srv.clients.lock().unwrap().contains_key(&(id as u64));
            if !exists {
                return ctx
                    .out
                    .err("ERR The client ID you want redirect to does not exist");
            }
        } else if eq_ic(a, "bcast") {
            options |= tracking::BCAST;
        } else if eq_ic(a, "optin") {
            options |= tracking::OPTIN;
        } else if eq_ic(a, "optout") {
            options |= tracking::OPTOUT;
        } else if eq_ic(a, "noloop") {
            options |= tracking::NOLOOP;
        } else if eq_ic(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        j += 1;
    }
    let info = client_of(ctx).info.clone();
    if eq_ic(&args[2], "on") {
        let cur = info.tracking.load(Ordering::Relaxed);
        if options & tracking::BCAST == 0 && !prefixes.is_empty() {
            return ctx
                .out
                .err("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if cur & tracking::ON != 0 && (cur ^ options) & tracking::BCAST != 0 {
            return ctx.out.err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if options & tracking::BCAST != 0 && options & (tracking::OPTIN | tracking::OPTOUT) != 0 {
            return ctx
                .out
                .err("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if options & tracking::OPTIN != 0 && options & tracking::OPTOUT != 0 {
            return ctx
                .out
                .err("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if (options & tracking::OPTIN != 0 && cur & tracking::OPTOUT != 0)
            || (options & tracking::OPTOUT != 0 && cur & tracking::OPTIN != 0)
        {
            return ctx.out.err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if options & tracking::BCAST != 0
            && let Some(e) = tracking::prefix_collision(&info, &prefixes)
        {
            return ctx.out.err(&e);
        }
        tracking::enable(&info, redir as u64, options, &prefixes);
        if redir > 0
            && let Some(target) = ctx.srv.clients.lock().unwrap().get(&(redir as u64))
        {
            target.push_target.store(true, Ordering::Relaxed);
        }
    } else if eq_ic(&args[2], "off") {
        tracking::disable(&info);
    } else {
        return ctx.out.err(errors::SYNTAX);
    }
    ctx.out.ok()
}

/// CLIENT CACHING yes|no: the next command is (OPTIN) or is not (OPTOUT)
/// tracked.
fn client_caching(ctx: &mut Ctx, args: &[Bytes]) {
    let info = client_of(ctx).info.clone();
    let f = info.tracking.load(Ordering::Relaxed);
    if f & tracking::ON == 0 {
        return ctx.out.err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    if eq_ic(&args[2], "yes") {
        if f & tracking::OPTIN == 0 {
            return ctx.out.err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if eq_ic(&args[2], "no") {
        if f & tracking::OPTOUT == 0 {
            return ctx.out.err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return ctx.out.err(errors::SYNTAX);
    }
    info.tracking.fetch_or(tracking::CACHING, Ordering::Relaxed);
    ctx.out.ok()
}

fn client_trackinginfo(ctx: &mut Ctx) {
    let info = client_of(ctx).info.clone();
    let f = info.tracking.load(Ordering::Relaxed);
    let mut flags: Vec<&str> = vec![if f & tracking::ON != 0 { "on" } else { "off" }];
    if f & tracking::BCAST != 0 {
        flags.push("bcast");
    }
    if f & tracking::OPTIN != 0 {
        flags.push("optin");
        if f & tracking::CACHING != 0 {
            flags.push("caching-yes");
        }
    }
    if f & tracking::OPTOUT != 0 {
        flags.push("optout");
        if f & tracking::CACHING != 0 {
            flags.push("caching-no");
        }
    }
    if f & tracking::NOLOOP != 0 {
        flags.push("noloop");
    }
    if f & tracking::BROKEN_REDIR != 0 {
        flags.push("broken_redirect");
    }
    ctx.out.map(3);
    ctx.out.bulk(b"flags");
    ctx.out.set(flags.len());
    for fl in flags {
        ctx.out.bulk(fl.as_bytes());
    }
    ctx.out.bulk(b"redirect");
    ctx.out.int(if f & tracking::ON != 0 {
        info.tracking_redir.load(Ordering::Relaxed) as i64
    } else {
        -1
    });
    ctx.out.bulk(b"prefixes");
    let prefixes = tracking::prefixes_of(&info);
    ctx.out.array(prefixes.len());
    for p in prefixes {
        ctx.out.bulk(&p);
    }
}

fn client_list(ctx: &mut Ctx, opts: &[Bytes]) {
    let mut ids: Option<Vec<u64>> = None;
    let mut typ_filter: Option<String> = None;
    if !opts.is_empty() {
        if eq_ic(&opts[0], "type") && opts.len() == 2 {
            let t = String::from_utf8_lossy(&opts[1]).to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return ctx.out.err(&format!("ERR Unknown client type '{t}'"));
            }
            typ_filter = Some(if t == "slave" {
                "replica".to_string()
            } else {
                t
            });
        } else if eq_ic(&opts[0], "id") && opts.len() >= 2 {
            let mut v = Vec::new();
            for o in &opts[1..] {
                match parse_i64(o) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return ctx.out.err("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
    }
    let now = ctx.now;
    let clients = ctx.srv.clients.lock().unwrap();
    let mut s = String::new();
    for (id, c) in clients.iter() {
        if let Some(ids) = &ids
            && !ids.contains(id)
        {
            continue;
        }
        if typ_filter.as_ref().is_some_and(|t| t != c.kind()) {
            continue;
        }
        // Killed but not yet closed by its own task: Redis frees it at once.
        if c.killed.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        s.push_str(&c.list_line(now));
        s.push('\n');
    }
    drop(clients);
    ctx.out.verbatim(s.as_bytes());
}

fn client_kill(ctx: &mut Ctx, opts: &[Bytes]) {
    let me = client_of(ctx).id;
    // Old form: CLIENT KILL addr:port
    if opts.len() == 1 {
        let addr = String::from_utf8_lossy(&opts[0]).into_owned();
        let n = kill_where(ctx, |c| c.addr == addr, None);
        return if n == 0 {
            ctx.out.err("ERR No such client")
        } else {
            ctx.out.ok()
        };
    }
    if !opts.len().is_multiple_of(2) {
        return ctx.out.err(errors::SYNTAX);
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut typ = None;
    let mut user: Option<String> = None;
    for pair in opts.chunks(2) {
        let v = String::from_utf8_lossy(&pair[1]).into_owned();
        if eq_ic(&pair[0], "id") {
            match parse_i64(&pair[1]) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return ctx.out.err("ERR client-id should be greater than 0"),
            }
        } else if eq_ic(&pair[0], "addr") {
            addr = Some(v);
        } else if eq_ic(&pair[0], "laddr") {
            laddr = Some(v);
        } else if eq_ic(&pair[0], "skipme") {
            skipme = match v.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return ctx.out.err(errors::SYNTAX),
            };
        } else if eq_ic(&pair[0], "type") {
            let t = v.to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return ctx.out.err(&format!("ERR Unknown client type '{v}'"));
            }
            typ = Some(t);
        } else if eq_ic(&pair[0], "user") {
            if crate::acl::get_user(&v).is_none() {
                return ctx.out.err(&format!("ERR No such user '{v}'"));
            }
            user = Some(v);
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
    }
    let skip = if skipme { Some(me) } else { None };
    let n = kill_where(
        ctx,
        |c| {
            id.is_none_or(|i| c.id == i)
                && addr.as_ref().is_none_or(|a| &c.addr == a)
                && laddr.as_ref().is_none_or(|a| &c.laddr == a)
                && typ
                    .as_ref()
                    .is_none_or(|t| t == c.kind() || (t == "slave" && c.kind() == "replica"))
                && user.as_ref().is_none_or(|u| *c.user.lock().unwrap() == *u)
        },
        skip,
    );
    ctx.out.int(n as i64);
}

/// Marks matching clients killed and shuts their sockets down so their
/// tasks wake up and close. Killing oneself closes after the reply.
pub(crate) fn kill_where(
    ctx: &mut Ctx,
    pred: impl Fn(&crate::server::client::ClientInfo) -> bool,
    skip: Option<u64>,
) -> usize {
    let me = client_of(ctx).id;
    let clients = ctx.srv.clients.lock().unwrap();
    let mut n = 0;
    let mut kill_self = false;
    for c in clients.values() {
        // A client killed before but not yet gone is not counted again
        // (Redis frees it at once).
        if Some(c.id) == skip || c.killed.load(Ordering::Relaxed) || !pred(c) {
            continue;
        }
        n += 1;
        if c.id == me {
            kill_self = true;
            continue;
        }
        c.kill();
    }
    drop(clients);
    if kill_self {
        client_of(ctx).close_after_reply = true;
    }
    n
}
