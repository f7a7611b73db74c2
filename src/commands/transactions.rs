//! MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//!
//! Queuing and EXEC itself live in the connection (server::conn): EXEC holds
//! every shard its queued commands touch, so no other client observes a
//! partial transaction. WATCH registers a dirty flag under each key in the
//! owning shard; any write to the key sets it (`server::watch`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::Ctx;
use super::table::{Command, Special, cmd, flags::*};
use crate::server::client::{Client, Watched};
use crate::server::watch::{WATCHING_CLIENTS, unwatch_all};

pub fn commands() -> Vec<Command> {
    vec![
        cmd(
            "multi",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            multi,
        )
        .special(Special::Multi),
        cmd(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
            exec_outside_conn,
        )
        .special(Special::Exec),
        cmd(
            "discard",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            discard,
        )
        .special(Special::Discard),
        cmd(
            "watch",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            watch,
        )
        .special(Special::Watch)
        .keys(1, -1, 1)
        .held(),
        cmd(
            "unwatch",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            unwatch,
        ),
    ]
}

fn client_of<'a>(ctx: &'a mut Ctx) -> &'a mut Client {
    ctx.client
        .as_deref_mut()
        .expect("transaction command without a client")
}

fn multi(ctx: &mut Ctx, _args: &[Bytes]) {
    let c = client_of(ctx);
    if c.multi.is_some() {
        return ctx.out.err("ERR MULTI calls can not be nested");
    }
    c.multi = Some(Vec::new());
    c.multi_error = false;
    ctx.out.ok();
}

/// EXEC is run by the connection; reaching the table handler means EXEC was
/// called where no transaction can exist (from a script).
fn exec_outside_conn(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.err("ERR EXEC without MULTI");
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) {
    let c = client_of(ctx);
    if c.multi.take().is_none() {
        return ctx.out.err("ERR DISCARD without MULTI");
    }
    c.multi_error = false;
    unwatch_all(c);
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) {
    unwatch_all(client_of(ctx));
    ctx.out.ok();
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) {
    if client_of(ctx).multi.is_some() {
        return ctx.out.err("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.db;
    let now = ctx.now;
    let flag = {
        let c = client_of(ctx);
        if c.watch_flag.is_none() {
            c.watch_flag = Some(Arc::new(AtomicBool::new(false)));
            WATCHING_CLIENTS.fetch_add(1, Ordering::Relaxed);
        }
        c.watch_flag.clone().unwrap()
    };
    for key in &args[1..] {
        if client_of(ctx)
            .watched
            .iter()
            .any(|w| w.db == db && w.key == *key)
        {
            continue;
        }
        let store = ctx.store_of(key);
        let expire_at = store.dbs[db].expire_of(key.as_ref());
        // A key already expired when watched is not "modified" by its deletion.
        let expired_at_watch = expire_at != 0 && expire_at <= now;
        store
            .watched
            .entry((db, key.as_ref().into()))
            .or_default()
            .push(flag.clone());
        client_of(ctx).watched.push(Watched {
            db,
            key: key.clone(),
            expire_at: if expired_at_watch { 0 } else { expire_at },
        });
    }
    ctx.out.ok();
}
