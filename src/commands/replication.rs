//! REPLCONF, PSYNC, SYNC, WAIT, ROLE: the master side of replication as
//! a replica's handshake and clients see it. The stream itself is in
//! `crate::replication`.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::replication::{master, replica};

pub fn commands() -> Vec<Command> {
    vec![
        cmd(
            "replconf",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
            replconf,
        )
        .special(Special::Replconf),
        cmd("psync", -3, NOSCRIPT | NO_MULTI, psync),
        cmd("sync", 1, NOSCRIPT | NO_MULTI, sync),
        cmd("wait", 3, NOSCRIPT, wait).special(Special::Wait),
        cmd("replicaof", 3, ADMIN | NOSCRIPT | STALE, replicaof).all_shards(),
        cmd("slaveof", 3, ADMIN | NOSCRIPT | STALE, replicaof).all_shards(),
        cmd("failover", -1, ADMIN | NOSCRIPT | STALE, failover).all_shards(),
        cmd("role", 1, NOSCRIPT | LOADING | STALE | FAST, role),
    ]
}

fn client<'a>(ctx: &'a mut Ctx) -> &'a mut crate::server::client::Client {
    ctx.client
        .as_deref_mut()
        .expect("connection command without a client")
}

fn replconf(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return ctx.out.err(errors::SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if eq_ic(opt, "listening-port") {
            match parse_i64(val) {
                Some(p) => client(ctx).replconf.port = p,
                None => return ctx.out.err(errors::NOT_INT),
            }
        } else if eq_ic(opt, "ip-address") {
            if val.len() >= 256 {
                return ctx.out.err("ERR REPLCONF ip-address provided by replica instance is too long: 256 bytes are allowed");
            }
            client(ctx).replconf.ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if eq_ic(opt, "capa") {
            if eq_ic(val, "eof") {
                client(ctx).replconf.capa_eof = true;
            } else if eq_ic(val, "psync2") {
                client(ctx).replconf.capa_psync2 = true;
            } else if eq_ic(val, "keel-scripts") {
                client(ctx).replconf.capa_keel_scripts = true;
            }
        } else if eq_ic(opt, "ack") || eq_ic(opt, "getack") {
            // ACKs reach a replica link's own reader; on a plain
            // connection (or from a master link, later) there is no reply.
            return;
        } else if eq_ic(opt, "rdb-only") || eq_ic(opt, "rdb-filter-only") {
            // Accepted: redis-cli --rdb sends them.
        } else {
            return ctx.out.err(&format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    ctx.out.ok();
}

fn psync(ctx: &mut Ctx, args: &[Bytes]) {
    // Validate before any state changes (Redis #10243).
    if parse_i64(&args[2]).is_none() {
        return ctx.out.err(errors::NOT_INT);
    }
    if master::repl().is_none() {
        return ctx.out.err("ERR replication is not available");
    }
    client(ctx).sync_request = Some(args.to_vec());
}

fn sync(ctx: &mut Ctx, args: &[Bytes]) {
    if master::repl().is_none() {
        return ctx.out.err("ERR replication is not available");
    }
    client(ctx).sync_request = Some(args.to_vec());
}

/// WAIT's arguments: (numreplicas, timeout ms, 0 = forever).
pub fn wait_args(args: &[Bytes]) -> Result<(i64, i64), &'static str> {
    let n = parse_i64(&args[1]).ok_or(errors::NOT_INT)?;
    let t = parse_i64(&args[2]).ok_or("ERR timeout is not an integer or out of range")?;
    if t < 0 {
        return Err("ERR timeout is negative");
    }
    Ok((n, t))
}

/// WAIT where it cannot block (inside MULTI): the count now. The blocking
/// form is run by the connection.
pub const WAIT_ON_REPLICA: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

fn wait(ctx: &mut Ctx, args: &[Bytes]) {
    if let Err(e) = wait_args(args) {
        return ctx.out.err(e);
    }
    if replica::is_replica() {
        return ctx.out.err(WAIT_ON_REPLICA);
    }
    let target = master::current_offset();
    ctx.out.int(master::acked(target) as i64);
}

fn failover(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.srv.cluster.is_some() {
        return ctx.out.err(
            "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.",
        );
    }
    let mut stores = super::snapshot::all_stores(ctx);
    match crate::replication::failover::command(&mut stores, args) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.err(&e),
    }
}

fn replicaof(ctx: &mut Ctx, args: &[Bytes]) {
    let srv = ctx.srv;
    if crate::replication::failover::active() {
        return ctx.out.err("ERR REPLICAOF not allowed while failing over.");
    }
    let mut stores = super::snapshot::all_stores(ctx);
    if eq_ic(&args[1], "no") && eq_ic(&args[2], "one") {
        if replica::is_replica() {
            replica::promote(&mut stores);
            let _ = srv.config.write().unwrap().set("replicaof", "");
        }
        return ctx.out.ok();
    }
    let port = match parse_i64(&args[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        Some(_) => return ctx.out.err("ERR Invalid master port"),
        None => return ctx.out.err(errors::NOT_INT),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    match replica::set_master(&mut stores, host.clone(), port) {
        Ok(true) => {
            let _ = srv
                .config
                .write()
                .unwrap()
                .set("replicaof", &format!("{host} {port}"));
            crate::log::notice(&format!("REPLICAOF {host}:{port} enabled (user request)"));
            ctx.out.ok()
        }
        Ok(false) => ctx.out.simple("OK Already connected to specified master"),
        Err(e) => ctx.out.err(&e),
    }
}

fn role(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(r) = master::repl() else {
        ctx.out.array(3);
        ctx.out.bulk(b"master");
        ctx.out.int(0);
        ctx.out.array(0);
        return;
    };
    master::cut(false);
    let st = r.lock();
    if let Some(m) = &st.replica.of {
        ctx.out.array(5);
        ctx.out.bulk(b"slave");
        ctx.out.bulk(m.host.as_bytes());
        ctx.out.int(m.port as i64);
        ctx.out.bulk(m.state_name().as_bytes());
        ctx.out.int(if m.state == replica::LinkState::Connected {
            st.offset
        } else {
            -1
        });
        return;
    }
    let online: Vec<_> = st.replicas.iter().filter(|l| l.online()).collect();
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(st.offset);
    ctx.out.array(online.len());
    for l in online {
        ctx.out.array(3);
        ctx.out.bulk(l.ip.as_bytes());
        ctx.out.bulk(l.port.to_string().as_bytes());
        ctx.out
            .bulk(l.ack_off.load(Ordering::Acquire).to_string().as_bytes());
    }
}

/// INFO's replication section fields, in Redis 7.0's order.
pub fn info_fields(min_replicas: i64) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let Some(r) = master::repl() else {
        v.push(("role".into(), "master".into()));
        return v;
    };
    // Every write acknowledged so far is counted in the offset shown.
    master::cut(false);
    let st = r.lock();
    let now = crate::storage::now_ms();
    match &st.replica.of {
        None => v.push(("role".into(), "master".into())),
        Some(m) => {
            let up = m.state == replica::LinkState::Connected;
            let (prio, ro) = {
                let c = r.srv.config.read().unwrap();
                (
                    c.get_i64("replica-priority"),
                    c.get_bool("replica-read-only"),
                )
            };
            let last_io = if m.last_io_ms == 0 {
                -1
            } else {
                (now.saturating_sub(m.last_io_ms) / 1000) as i64
            };
            v.extend([
                ("role".into(), "slave".into()),
                ("master_host".into(), m.host.clone()),
                ("master_port".into(), m.port.to_string()),
                (
                    "master_link_status".into(),
                    if up { "up" } else { "down" }.into(),
                ),
                ("master_last_io_seconds_ago".into(), last_io.to_string()),
                (
                    "master_sync_in_progress".into(),
                    ((m.state == replica::LinkState::Transfer) as u8).to_string(),
                ),
                (
                    "slave_read_repl_offset".into(),
                    st.offset.max(m.read_reploff).to_string(),
                ),
                ("slave_repl_offset".into(), st.offset.to_string()),
            ]);
            if m.state == replica::LinkState::Transfer {
                let left = (m.sync_total - m.sync_read).max(0);
                v.extend([
                    ("master_sync_total_bytes".into(), m.sync_total.to_string()),
                    ("master_sync_read_bytes".into(), m.sync_read.to_string()),
                    ("master_sync_left_bytes".into(), left.to_string()),
                    (
                        "master_sync_perc".into(),
                        format!(
                            "{:.2}",
                            if m.sync_total > 0 {
                                m.sync_read as f64 * 100.0 / m.sync_total as f64
                            } else {
                                0.0
                            }
                        ),
                    ),
                    (
                        "master_sync_last_io_seconds_ago".into(),
                        last_io.max(0).to_string(),
                    ),
                ]);
            }
            if !up {
                let down = if m.down_since_ms == 0 {
                    -1
                } else {
                    (now.saturating_sub(m.down_since_ms) / 1000) as i64
                };
                v.push(("master_link_down_since_seconds".into(), down.to_string()));
            }
            v.extend([
                ("slave_priority".into(), prio.to_string()),
                ("slave_read_only".into(), (ro as u8).to_string()),
                ("replica_announced".into(), "1".into()),
            ]);
        }
    }
    v.push(("connected_slaves".into(), st.replicas.len().to_string()));
    if min_replicas > 0 {
        v.push((
            "min_slaves_good_slaves".into(),
            st.good_replicas.to_string(),
        ));
    }
    for (i, l) in st.replicas.iter().enumerate() {
        let state = match l.state.load(Ordering::Acquire) {
            master::WAIT_BGSAVE => "wait_bgsave",
            master::SEND_BULK => "send_bulk",
            _ => "online",
        };
        let lag = if l.online() {
            now.saturating_sub(l.ack_ms.load(Ordering::Acquire)) / 1000
        } else {
            0
        };
        v.push((
            format!("slave{i}"),
            format!(
                "ip={},port={},state={},offset={},lag={}",
                l.ip,
                l.port,
                state,
                l.ack_off.load(Ordering::Acquire),
                lag
            ),
        ));
    }
    let (active, size, first, histlen) = match &st.backlog {
        Some(b) => (1, b.size, b.first_byte(), b.histlen()),
        None => (
            0,
            r.srv
                .config
                .read()
                .unwrap()
                .get_i64("repl-backlog-size")
                .max(16 * 1024) as usize,
            0,
            0,
        ),
    };
    v.extend([
        (
            "master_failover_state".into(),
            crate::replication::failover::state_name().into(),
        ),
        ("master_replid".into(), st.replid.clone()),
        ("master_replid2".into(), st.replid2.clone()),
        ("master_repl_offset".into(), st.offset.to_string()),
        ("second_repl_offset".into(), st.second_offset.to_string()),
        ("repl_backlog_active".into(), active.to_string()),
        ("repl_backlog_size".into(), size.to_string()),
        ("repl_backlog_first_byte_offset".into(), first.to_string()),
        ("repl_backlog_histlen".into(), histlen.to_string()),
    ]);
    v
}

/// sync_full, sync_partial_ok, sync_partial_err (INFO stats).
pub fn sync_counters() -> (u64, u64, u64) {
    match master::repl() {
        Some(r) => {
            let st = r.lock();
            (st.sync_full, st.sync_partial_ok, st.sync_partial_err)
        }
        None => (0, 0, 0),
    }
}

/// mem_replication_backlog.
pub fn backlog_memory() -> usize {
    master::repl()
        .and_then(|r| r.lock().backlog.as_ref().map(|b| b.memory()))
        .unwrap_or(0)
}
