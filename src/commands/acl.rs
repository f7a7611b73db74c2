//! ACL: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT LOG SAVE LOAD GENPASS
//! DRYRUN HELP. Runs on the connection's thread; the users themselves live
//! in `crate::acl`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::acl::{self, Denied, User};

pub fn commands() -> Vec<Command> {
    vec![cmd("acl", -2, ADMIN | NOSCRIPT | LOADING | STALE, acl_cmd)]
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    // Subcommand existence and arity, as Redis's lookup does them.
    let u = acl::universe();
    let name = format!("acl|{}", String::from_utf8_lossy(&args[1]));
    let Some(id) = u.lookup(&name) else {
        return ctx.out.err(&errors::unknown_subcommand(&args[1], "acl"));
    };
    let sub = &u.cmds[id];
    let n = args.len() as i32;
    if (sub.arity > 0 && n != sub.arity) || n < -sub.arity {
        return ctx.out.err(&errors::wrong_args(&sub.fullname));
    }
    match &sub.fullname["acl|".len()..] {
        "setuser" => setuser(ctx, args),
        "deluser" => deluser(ctx, args),
        "getuser" => getuser(ctx, args),
        "list" | "users" => list(ctx, eq_ic(&args[1], "users")),
        "whoami" => {
            let name = ctx.client.as_deref().map(|c| c.user.name.clone());
            match name {
                Some(n) => ctx.out.bulk(n.as_bytes()),
                None => ctx.out.null(),
            }
        }
        "load" | "save" => {
            let file = ctx.srv.config.read().unwrap().get("aclfile").to_string();
            if file.is_empty() {
                return ctx.out.err(NO_ACLFILE);
            }
            if eq_ic(&args[1], "load") {
                match acl::load_file(&file) {
                    Ok(()) => {
                        after_change(ctx);
                        ctx.out.ok()
                    }
                    Err(e) => ctx.out.err(&format!("ERR {e}")),
                }
            } else {
                match acl::save_file(&file) {
                    Ok(()) => ctx.out.ok(),
                    Err(e) => {
                        crate::log::warning(&format!("Saving the ACL file: {e}"));
                        ctx.out.err("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
                    }
                }
            }
        }
        "cat" => cat(ctx, args),
        "genpass" => genpass(ctx, args),
        "log" => log(ctx, args),
        "dryrun" => dryrun(ctx, args),
        "help" => super::server::reply_help(ctx.out, &args[0], HELP),
        _ => ctx.out.err(&errors::unknown_subcommand(&args[1], "acl")),
    }
}

/// After users changed: whether new connections must authenticate.
fn after_change(ctx: &mut Ctx) {
    ctx.srv
        .auth_required
        .store(acl::auth_required(), Ordering::Relaxed);
}

fn setuser(ctx: &mut Ctx, args: &[Bytes]) {
    let name = &args[2];
    if name.iter().any(|&c| c.is_ascii_whitespace() || c == 0) {
        return ctx
            .out
            .err("ERR Usernames can't contain spaces or null characters");
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let ops: Vec<&[u8]> = args[3..].iter().map(|a| a.as_ref()).collect();
    let r = acl::write(|s| {
        let base = s.users.get(&name).map(|u| (**u).clone());
        let u = acl::build_user(&name, base.as_ref(), &ops)?;
        s.users.insert(name.clone(), Arc::new(u));
        Ok::<(), String>(())
    });
    match r {
        Ok(()) => {
            after_change(ctx);
            ctx.out.ok()
        }
        Err(e) => ctx.out.err(&format!("ERR {e}")),
    }
}

fn deluser(ctx: &mut Ctx, args: &[Bytes]) {
    let names: Vec<String> = args[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if names.iter().any(|n| n == "default") {
        return ctx.out.err("ERR The 'default' user cannot be removed");
    }
    let deleted: Vec<String> = acl::write(|s| {
        names
            .iter()
            .filter(|n| s.users.remove(*n).is_some())
            .cloned()
            .collect()
    });
    // Redis disconnects the clients authenticated as a deleted user.
    if !deleted.is_empty() {
        super::connection::kill_where(ctx, |c| deleted.contains(&*c.user.lock().unwrap()), None);
    }
    after_change(ctx);
    ctx.out.int(deleted.len() as i64);
}

fn getuser(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(u) = acl::get_user(&String::from_utf8_lossy(&args[2])) else {
        return ctx.out.null();
    };
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk_str("flags");
    let flags = u.flag_names();
    out.set(flags.len());
    for f in flags {
        out.bulk_str(f);
    }
    out.bulk_str("passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk_str(p);
    }
    selector_fields(out, u.root());
    out.bulk_str("selectors");
    out.array(u.selectors().len());
    for s in u.selectors() {
        out.map(3);
        selector_fields(out, s);
    }
}

/// aclAddReplySelectorDescription: commands, keys, channels.
fn selector_fields(out: &mut crate::protocol::Out, s: &acl::Selector) {
    out.bulk_str("commands");
    out.bulk_str(&s.describe_commands());
    out.bulk_str("keys");
    out.bulk_str(&s.keys_string());
    out.bulk_str("channels");
    out.bulk_str(&s.channels_string());
}

fn list(ctx: &mut Ctx, names_only: bool) {
    let users: Vec<(String, Arc<User>)> = acl::read()
        .users
        .iter()
        .map(|(n, u)| (n.clone(), u.clone()))
        .collect();
    ctx.out.array(users.len());
    for (n, u) in users {
        if names_only {
            ctx.out.bulk(n.as_bytes());
        } else {
            ctx.out
                .bulk(format!("user {n} {}", u.describe()).as_bytes());
        }
    }
}

fn cat(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 2 {
        ctx.out.array(acl::CATEGORIES.len());
        for c in acl::CATEGORIES {
            ctx.out.bulk_str(c);
        }
        return;
    }
    if args.len() != 3 {
        return ctx.out.err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    }
    let Some(bit) = acl::category_bit(&String::from_utf8_lossy(&args[2])) else {
        let c = String::from_utf8_lossy(&args[2]);
        let c: String = c.chars().take(128).collect();
        return ctx.out.err(&format!("ERR Unknown category '{c}'"));
    };
    let names: Vec<&str> = acl::universe()
        .cmds
        .iter()
        .filter(|c| c.cats & bit != 0)
        .map(|c| c.fullname.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk_str(n);
    }
}

fn genpass(ctx: &mut Ctx, args: &[Bytes]) {
    let mut bits = 256;
    if args.len() == 3 {
        match parse_i64(&args[2]) {
            Some(b) => bits = b,
            None => return ctx.out.err(errors::NOT_INT),
        }
    }
    if bits <= 0 || bits > 4096 {
        return ctx.out.err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
    }
    let chars = (bits + 3) / 4;
    let n = (chars as usize).div_ceil(2);
    let mut buf = vec![0u8; n];
    // The kernel's CSPRNG; fastrand only if /dev/urandom is unavailable.
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok();
    if !ok {
        buf.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    ctx.out.bulk(&hex.as_bytes()[..chars as usize]);
}

fn log(ctx: &mut Ctx, args: &[Bytes]) {
    let mut count: i64 = 10;
    if args.len() == 3 {
        if eq_ic(&args[2], "reset") {
            acl::write(|s| s.log.clear());
            return ctx.out.ok();
        }
        match parse_i64(&args[2]) {
            Some(c) => count = c.max(0),
            None => return ctx.out.err(errors::NOT_INT),
        }
    }
    let now = crate::storage::now_ms();
    let s = acl::read();
    let count = (count as usize).min(s.log.len());
    ctx.out.array(count);
    for e in s.log.iter().take(count) {
        ctx.out.map(7);
        ctx.out.bulk_str("count");
        ctx.out.int(e.count as i64);
        ctx.out.bulk_str("reason");
        ctx.out.bulk_str(e.reason);
        ctx.out.bulk_str("context");
        ctx.out.bulk_str(e.context);
        ctx.out.bulk_str("object");
        ctx.out.bulk(e.object.as_bytes());
        ctx.out.bulk_str("username");
        ctx.out.bulk(e.username.as_bytes());
        ctx.out.bulk_str("age-seconds");
        ctx.out
            .double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
        ctx.out.bulk_str("client-info");
        ctx.out.bulk(e.cinfo.as_bytes());
    }
}

fn dryrun(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(user) = acl::get_user(&name) else {
        return ctx.out.err(&format!("ERR User '{name}' not found"));
    };
    let req = &args[3..];
    let u = acl::universe();
    let base = String::from_utf8_lossy(&req[0]).into_owned();
    let not_found = || format!("ERR Command '{base}' not found");
    // lookupCommand: a container with an argument resolves its subcommand.
    let Some(mut id) = u.lookup(&base).filter(|_| !base.contains('|')) else {
        return ctx.out.err(&not_found());
    };
    if !u.cmds[id].subs.is_empty() && req.len() >= 2 {
        match u.lookup(&format!("{base}|{}", String::from_utf8_lossy(&req[1]))) {
            Some(s) => id = s,
            None => return ctx.out.err(&not_found()),
        }
    }
    let c = &u.cmds[id];
    let n = req.len() as i32;
    if (c.arity > 0 && c.arity != n) || n < -c.arity {
        return ctx.out.err(&format!(
            "ERR wrong number of arguments for '{}' command",
            c.fullname
        ));
    }
    let keel = super::lookup(&req[0]);
    let no_auth = keel.is_some_and(|(_, k)| k.flags & NO_AUTH != 0);
    match user.check_cmd(id, no_auth, req) {
        Ok(()) => ctx.out.ok(),
        Err(d) => {
            let msg = match d {
                Denied::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    c.fullname
                ),
                Denied::Key(p) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(&req[p])
                ),
                Denied::Channel(p) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(&req[p])
                ),
            };
            ctx.out.bulk(msg.as_bytes());
        }
    }
}
