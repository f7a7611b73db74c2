//! SAVE, BGSAVE, SHUTDOWN: the commands that write the RDB file. The
//! machinery is in server::persist.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, eq_ic, errors};
use crate::server::persist;
use crate::storage::ShardStore;

pub fn commands() -> Vec<Command> {
    vec![
        cmd("save", 1, ADMIN | NOSCRIPT | NO_MULTI, save).all_shards(),
        cmd("bgsave", -1, ADMIN | NOSCRIPT, bgsave).all_shards(),
        cmd("bgrewriteaof", 1, ADMIN | NOSCRIPT, bgrewriteaof).all_shards(),
        cmd(
            "shutdown",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
            shutdown,
        )
        .special(Special::Shutdown)
        .all_shards(),
    ]
}

/// Every store, with all shards held (scope AllShards).
pub fn all_stores<'c>(ctx: &'c mut Ctx) -> Vec<&'c mut ShardStore> {
    ctx.held_stores()
}

fn save(ctx: &mut Ctx, _args: &[Bytes]) {
    let srv = ctx.srv;
    if srv.persist.bgsave_in_progress() {
        return ctx.out.err("ERR Background save already in progress");
    }
    let mut stores = all_stores(ctx);
    match persist::save_now(srv, &mut stores) {
        Ok(()) => ctx.out.ok(),
        Err(_) => ctx.out.err("ERR"),
    }
}

fn bgsave(ctx: &mut Ctx, args: &[Bytes]) {
    let schedule = match args.len() {
        1 => false,
        2 if eq_ic(&args[1], "schedule") => true,
        _ => return ctx.out.err(errors::SYNTAX),
    };
    let srv = ctx.srv;
    if srv.persist.bgsave_in_progress() {
        if schedule {
            srv.persist.scheduled.store(true, Ordering::Relaxed);
            return ctx.out.simple("Background saving scheduled");
        }
        return ctx.out.err("ERR Background save already in progress");
    }
    let stores: Vec<&ShardStore> = all_stores(ctx).into_iter().map(|s| &*s).collect();
    let r = crate::server::shard::with_current(|rt| {
        persist::bgsave(rt, &stores, persist::Target::File)
    })
    .unwrap_or_else(|| Err("ERR no shard runtime".into()));
    match r {
        Ok(_) => ctx.out.simple("Background saving started"),
        Err(e) => ctx.out.err(&e),
    }
}

fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) {
    let srv = ctx.srv;
    if crate::aof::rewrite_in_progress() {
        return ctx
            .out
            .err("ERR Background append only file rewriting already in progress");
    }
    if srv.persist.bgsave_in_progress() {
        crate::aof::schedule_rewrite();
        return ctx
            .out
            .simple("Background append only file rewriting scheduled");
    }
    let stores: Vec<&ShardStore> = all_stores(ctx).into_iter().map(|s| &*s).collect();
    let r = crate::server::shard::with_current(|rt| {
        persist::bgsave(rt, &stores, persist::Target::AofRewrite)
    })
    .unwrap_or_else(|| Err("ERR no shard runtime".into()));
    match r {
        Ok(_) => ctx
            .out
            .simple("Background append only file rewriting started"),
        Err(e) => ctx.out.err(&e),
    }
}

/// CONFIG SET appendonly yes: its first rewrite, started with every
/// shard held; on failure the cron tries again.
pub fn start_aof_rewrite_now(ctx: &mut Ctx) {
    let stores: Vec<&ShardStore> = all_stores(ctx).into_iter().map(|s| &*s).collect();
    let r = crate::server::shard::with_current(|rt| {
        persist::bgsave(rt, &stores, persist::Target::AofRewrite)
    });
    if let Some(Err(e)) = r {
        crate::log::warning(&format!("Can't start the AOF rewrite now: {e}"));
    }
}

fn shutdown(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut nosave, mut save, mut force, mut now) = (false, false, false, false);
    for a in &args[1..] {
        if eq_ic(a, "nosave") {
            nosave = true;
        } else if eq_ic(a, "save") {
            save = true;
        } else if eq_ic(a, "force") {
            force = true;
        } else if eq_ic(a, "now") {
            now = true;
        } else if eq_ic(a, "abort") {
            return ctx.out.err("ERR No shutdown in progress.");
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
    }
    if nosave && save {
        return ctx.out.err(errors::SYNTAX);
    }
    let srv = ctx.srv;
    if persist::prepare_for_shutdown(srv, &mut all_stores(ctx), save, nosave, now).is_err()
        && !force
    {
        return ctx.out.err("ERR Errors trying to SHUTDOWN. Check logs.");
    }
    srv.shutdown.store(true, Ordering::Relaxed);
    crate::log::warning("User requested shutdown...");
    crate::server::request_shutdown();
    // Like Redis, a successful SHUTDOWN closes the connection without a reply.
    if let Some(c) = ctx.client.as_deref_mut() {
        c.close_after_reply = true;
    }
}
