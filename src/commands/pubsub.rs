//! Pub/sub commands. The registry and delivery are in server::pubsub.

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, eq_ic};
use crate::server::client::Client;
use crate::server::pubsub::{self, Kind};

pub fn commands() -> Vec<Command> {
    let sub = PUBSUB | NOSCRIPT | LOADING | STALE;
    vec![
        cmd("subscribe", -2, sub, subscribe).special(Special::Subscribe),
        cmd("unsubscribe", -1, sub, unsubscribe).special(Special::Subscribe),
        cmd("psubscribe", -2, sub, psubscribe).special(Special::Subscribe),
        cmd("punsubscribe", -1, sub, punsubscribe).special(Special::Subscribe),
        cmd("ssubscribe", -2, sub, ssubscribe).special(Special::SSubscribe),
        cmd("sunsubscribe", -1, sub, sunsubscribe).special(Special::SSubscribe),
        cmd(
            "publish",
            3,
            PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
            publish,
        ),
        cmd(
            "spublish",
            3,
            PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
            spublish,
        )
        .special(Special::SPublish),
        cmd("pubsub", -2, 0, pubsub_cmd),
    ]
}

fn client_of<'a>(ctx: &'a mut Ctx) -> &'a mut Client {
    ctx.client
        .as_deref_mut()
        .expect("pub/sub command without a client")
}

fn names(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Channel => ("subscribe", "unsubscribe"),
        Kind::Pattern => ("psubscribe", "punsubscribe"),
        Kind::Shard => ("ssubscribe", "sunsubscribe"),
    }
}

/// The count reported in replies: channels + patterns, or shard channels.
fn reply_count(c: &Client, kind: Kind) -> usize {
    match kind {
        Kind::Shard => c.subs.len(Kind::Shard),
        _ => c.subs.count(),
    }
}

fn reply_event(ctx: &mut Ctx, head: &str, name: Option<&[u8]>, count: usize) {
    ctx.out.push(3);
    ctx.out.bulk(head.as_bytes());
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(count as i64);
}

fn subscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    let srv = ctx.srv;
    for name in &args[1..] {
        let c = client_of(ctx);
        let shard = c.info.shard;
        let queue = c.subs.queue.clone();
        if pubsub::subscribe(srv, shard, kind, name, c.id, &queue) {
            c.subs.names.entry(kind).or_default().push(name.clone());
        }
        let n = reply_count(c, kind);
        reply_event(ctx, names(kind).0, Some(name), n);
    }
    let c = client_of(ctx);
    c.subs.publish_counts(&c.info);
}

fn unsubscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    let srv = ctx.srv;
    let targets: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        client_of(ctx)
            .subs
            .names
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    };
    if targets.is_empty() {
        let n = reply_count(client_of(ctx), kind);
        return reply_event(ctx, names(kind).1, None, n);
    }
    for name in &targets {
        let c = client_of(ctx);
        let shard = c.info.shard;
        if pubsub::unsubscribe(srv, shard, kind, name, c.id)
            && let Some(v) = c.subs.names.get_mut(&kind)
        {
            v.retain(|n| n != name);
        }
        let n = reply_count(c, kind);
        reply_event(ctx, names(kind).1, Some(name), n);
    }
    let c = client_of(ctx);
    c.subs.publish_counts(&c.info);
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(ctx, args, Kind::Channel)
}
fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(ctx, args, Kind::Pattern)
}
fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(ctx, args, Kind::Shard)
}
fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(ctx, args, Kind::Channel)
}
fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(ctx, args, Kind::Pattern)
}
fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(ctx, args, Kind::Shard)
}

fn publish(ctx: &mut Ctx, args: &[Bytes]) {
    let n = pubsub::publish(ctx.srv, Kind::Channel, &args[1], &args[2]);
    // Cluster bus: the other nodes get it over the bus, replicas included,
    // so it is not replicated as well (Redis 7.0).
    if let Some(bus) = ctx.srv.cluster.as_ref().and_then(|c| c.bus.as_ref()) {
        crate::cluster::bus::publish(&mut bus.lock().unwrap(), &args[1], &args[2]);
        crate::replication::custom();
    } else if ctx.srv.cluster.is_none() {
        // Replicas publish it to their own subscribers (stock's
        // forceCommandPropagation): it changes no data, so it is sent
        // explicitly.
        crate::replication::propagate(ctx.db, args);
    }
    ctx.out.int(n as i64);
}

fn spublish(ctx: &mut Ctx, args: &[Bytes]) {
    let n = pubsub::publish(ctx.srv, Kind::Shard, &args[1], &args[2]);
    // The other nodes of this slot's shard get it over the bus (not
    // replicated then, as Redis 7.0).
    if let Some(bus) = ctx.srv.cluster.as_ref().and_then(|c| c.bus.as_ref()) {
        crate::cluster::bus::publish_shard(&mut bus.lock().unwrap(), &args[1], &args[2]);
        crate::replication::custom();
    } else if ctx.srv.cluster.is_none() {
        crate::replication::propagate(ctx.db, args);
    }
    ctx.out.int(n as i64);
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Print this help.",
];

const SUBCOMMANDS: &[(&str, i32)] = &[
    ("channels", -2),
    ("help", 2),
    ("numpat", 2),
    ("numsub", -2),
    ("shardchannels", -2),
    ("shardnumsub", -2),
];

fn pubsub_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    if let Err(e) = super::connection::check_subcommand("pubsub", SUBCOMMANDS, args) {
        return ctx.out.err(&e);
    }
    let g = &ctx.srv.pubsub;
    let n = args.len();
    let sub = &args[1];
    if eq_ic(sub, "help") && n == 2 {
        super::connection::reply_help(ctx, HELP);
    } else if (eq_ic(sub, "channels") || eq_ic(sub, "shardchannels")) && n <= 3 {
        let kind = if eq_ic(sub, "channels") {
            Kind::Channel
        } else {
            Kind::Shard
        };
        let list = g.names(kind, args.get(2).map(|p| p.as_ref()));
        ctx.out.array(list.len());
        for c in list {
            ctx.out.bulk(&c);
        }
    } else if eq_ic(sub, "numsub") || eq_ic(sub, "shardnumsub") {
        let kind = if eq_ic(sub, "numsub") {
            Kind::Channel
        } else {
            Kind::Shard
        };
        let counts: Vec<usize> = args[2..].iter().map(|c| g.subscribers(kind, c)).collect();
        if kind == Kind::Channel {
            ctx.out.array(counts.len() * 2);
        } else {
            ctx.out.map(counts.len());
        }
        for (c, k) in args[2..].iter().zip(counts) {
            ctx.out.bulk(c);
            ctx.out.int(k as i64);
        }
    } else if eq_ic(sub, "numpat") && n == 2 {
        let k = g.numpat();
        ctx.out.int(k as i64);
    } else {
        ctx.out.err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
}
