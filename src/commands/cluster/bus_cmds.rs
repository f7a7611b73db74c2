//! CLUSTER subcommands of a bus member: they read and change the bus's
//! state (`crate::cluster::state`) under its lock, then `commit` saves
//! nodes.conf and publishes the new slot map before the reply, as Redis
//! saves before it answers.

use bytes::Bytes;

use super::super::{Ctx, errors, parse_i64};
use super::keys_in_slot;
use crate::cluster::codec::flags as nf;
use crate::cluster::state::{self, Name, SLOTS, State, name_str};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn syntax_error(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.out.err(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
        lossy(&args[1][..args[1].len().min(128)])
    ));
}

/// A slot argument (getSlotOrReply).
fn slot_arg(b: &[u8]) -> Result<usize, &'static str> {
    parse_i64(b)
        .filter(|s| (0..SLOTS as i64).contains(s))
        .map(|s| s as usize)
        .ok_or("ERR Invalid or out of range slot")
}

/// The node named by an argument, or stock's "Unknown node" error.
fn node_arg(st: &State, b: &[u8], prefix: &str) -> Result<Name, String> {
    state::parse_name(b)
        .filter(|n| st.nodes.contains_key(n))
        .ok_or_else(|| format!("ERR {prefix} {}", lossy(b)))
}

fn db0_keys(ctx: &mut Ctx) -> usize {
    let mut n = 0;
    for i in ctx.held_shards() {
        n += ctx.store(i).dbs[0].len();
    }
    n
}

pub fn run(ctx: &mut Ctx, sub: &'static str, args: &[Bytes]) {
    let srv = ctx.srv;
    let bus = srv.cluster.as_ref().unwrap().bus.as_ref().unwrap();
    let mut st = bus.lock().unwrap();
    let r = match sub {
        "info" => {
            let t = st.info_text();
            ctx.out.verbatim(t.as_bytes());
            Ok(())
        }
        "myid" => {
            ctx.out.bulk(&st.myself);
            Ok(())
        }
        "nodes" => {
            let t = st.nodes_text();
            ctx.out.verbatim(t.as_bytes());
            Ok(())
        }
        "slots" => {
            slots_reply(ctx, &st);
            Ok(())
        }
        "shards" => {
            shards_reply(ctx, &st);
            Ok(())
        }
        "links" => {
            links_reply(ctx, &st);
            Ok(())
        }
        "meet" => meet(ctx, &mut st, args),
        "addslots" | "delslots" => {
            let mut slots = Vec::new();
            for a in &args[2..] {
                match slot_arg(a) {
                    Ok(s) => slots.push((s, s)),
                    Err(e) => return ctx.out.err(e),
                }
            }
            change_slots(ctx, &mut st, &slots, sub == "delslots")
        }
        "addslotsrange" | "delslotsrange" => {
            if args.len() % 2 == 1 {
                return ctx.out.err(&errors::wrong_args(&format!("cluster|{sub}")));
            }
            let mut slots = Vec::new();
            for p in args[2..].chunks(2) {
                let (a, b) = match (slot_arg(&p[0]), slot_arg(&p[1])) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => return ctx.out.err(e),
                };
                if a > b {
                    return ctx.out.err(&format!(
                        "ERR start slot number {a} is greater than end slot number {b}"
                    ));
                }
                slots.push((a, b));
            }
            change_slots(ctx, &mut st, &slots, sub == "delslotsrange")
        }
        "flushslots" => {
            if db0_keys(ctx) != 0 {
                Err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.".into())
            } else {
                let me = st.myself;
                st.del_node_slots(&me);
                st.dirty = true;
                ctx.out.ok();
                Ok(())
            }
        }
        "setslot" => setslot(ctx, &mut st, args),
        "bumpepoch" => {
            let bumped = st.bump_epoch();
            let e = st.me().config_epoch;
            ctx.out
                .simple(&format!("{} {e}", if bumped { "BUMPED" } else { "STILL" }));
            Ok(())
        }
        "set-config-epoch" => match parse_i64(&args[2]) {
            None => Err(errors::NOT_INT.into()),
            Some(e) if e < 0 => Err(format!("ERR Invalid config epoch specified: {e}")),
            Some(_) if st.nodes.len() > 1 => Err("ERR The user can assign a config epoch only when the node does not know any other node.".into()),
            Some(_) if st.me().config_epoch != 0 => {
                Err("ERR Node config epoch is already non-zero".into())
            }
            Some(e) => {
                st.me_mut().config_epoch = e as u64;
                st.current_epoch = st.current_epoch.max(e as u64);
                st.dirty = true;
                ctx.out.ok();
                Ok(())
            }
        },
        "saveconfig" => match st.save() {
            Ok(()) => {
                ctx.out.ok();
                Ok(())
            }
            Err(e) => Err(format!("ERR error saving the cluster node config: {e}")),
        },
        "forget" => forget(ctx, &mut st, args),
        "replicate" => replicate(ctx, &mut st, args),
        "replicas" | "slaves" => {
            let n = match node_arg(&st, &args[2], "Unknown node") {
                Ok(n) => n,
                Err(e) => return ctx.out.err(&e),
            };
            if st.nodes[&n].is_slave() {
                Err("ERR The specified node is not a master".into())
            } else {
                let reps = st.replicas_of(&n);
                ctx.out.array(reps.len());
                for r in reps {
                    let line = st.node_line(&st.nodes[&r], false);
                    ctx.out.bulk_str(&line);
                }
                Ok(())
            }
        }
        "count-failure-reports" => match node_arg(&st, &args[2], "Unknown node") {
            Ok(n) => {
                let now = state::now_ms();
                let validity = st.set.node_timeout * 2;
                let c = st.nodes[&n]
                    .fail_reports
                    .iter()
                    .filter(|r| now.saturating_sub(r.1) <= validity)
                    .count();
                ctx.out.int(c as i64);
                Ok(())
            }
            Err(e) => Err(e),
        },
        "failover" => failover(ctx, &mut st, args),
        "reset" => reset(ctx, &mut st, args),
        _ => {
            syntax_error(ctx, args);
            Ok(())
        }
    };
    crate::cluster::bus::commit(srv, &mut st);
    if let Err(e) = r {
        ctx.out.err(&e);
    }
}

fn meet(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    if args.len() > 5 {
        syntax_error(ctx, args);
        return Ok(());
    }
    let Some(port) = parse_i64(&args[3]) else {
        return Err(format!(
            "ERR Invalid TCP base port specified: {}",
            lossy(&args[3])
        ));
    };
    let cport = match args.get(4) {
        Some(a) => parse_i64(a)
            .ok_or_else(|| format!("ERR Invalid TCP bus port specified: {}", lossy(a)))?,
        None => port + 10000,
    };
    let ok = (0..=65535).contains(&port)
        && (0..=65535).contains(&cport)
        && st.start_handshake(&lossy(&args[2]), port as u16, cport as u16);
    if !ok {
        return Err(format!(
            "ERR Invalid node address specified: {}:{}",
            lossy(&args[2]),
            lossy(&args[3])
        ));
    }
    ctx.out.ok();
    Ok(())
}

fn change_slots(
    ctx: &mut Ctx,
    st: &mut State,
    ranges: &[(usize, usize)],
    del: bool,
) -> Result<(), String> {
    let mut seen = vec![false; SLOTS];
    for &(a, b) in ranges {
        for (s, seen_s) in seen.iter_mut().enumerate().take(b + 1).skip(a) {
            if del && st.owner[s].is_none() {
                return Err(format!("ERR Slot {s} is already unassigned"));
            }
            if !del && st.owner[s].is_some() {
                return Err(format!("ERR Slot {s} is already busy"));
            }
            if std::mem::replace(seen_s, true) {
                return Err(format!("ERR Slot {s} specified multiple times"));
            }
        }
    }
    let me = st.myself;
    for s in (0..SLOTS).filter(|&s| seen[s]) {
        if del {
            st.owner[s] = None;
            st.migrating.remove(&s);
        } else {
            // Now the real owner: an import of it is over.
            st.importing.remove(&s);
            st.owner[s] = Some(me);
        }
    }
    st.dirty = true;
    ctx.out.ok();
    Ok(())
}

fn setslot(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    if st.me().is_slave() {
        return Err("ERR Please use SETSLOT only with masters.".into());
    }
    let slot = slot_arg(&args[2])?;
    let action = lossy(&args[3]).to_ascii_lowercase();
    let me = st.myself;
    let target = |st: &State, prefix: &str| -> Result<Name, String> {
        let n = node_arg(st, &args[4], prefix)?;
        if st.nodes[&n].is_slave() {
            return Err("ERR Target node is not a master".into());
        }
        Ok(n)
    };
    match (action.as_str(), args.len()) {
        ("migrating", 5) => {
            if st.owner[slot] != Some(me) {
                return Err(format!("ERR I'm not the owner of hash slot {slot}"));
            }
            let n = target(st, "I don't know about node")?;
            st.migrating.insert(slot, n);
        }
        ("importing", 5) => {
            if st.owner[slot] == Some(me) {
                return Err(format!("ERR I'm already the owner of hash slot {slot}"));
            }
            let n = target(st, "I don't know about node")?;
            st.importing.insert(slot, n);
        }
        ("stable", 4) => {
            st.importing.remove(&slot);
            st.migrating.remove(&slot);
        }
        ("node", 5) => {
            let n = target(st, "Unknown node")?;
            let keys = keys_in_slot(ctx, slot, 1).len();
            if st.owner[slot] == Some(me) && n != me && keys != 0 {
                return Err(format!(
                    "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                ));
            }
            if keys == 0 {
                st.migrating.remove(&slot);
            }
            let was_mine = st.owner[slot] == Some(me);
            st.owner[slot] = Some(n);
            // A master left without slots follows the slot's new owner.
            if was_mine && n != me && st.num_slots(&me) == 0 && st.set.allow_replica_migration {
                crate::log::warning(&format!(
                    "Configuration change detected. Reconfiguring myself as a replica of {}",
                    name_str(&n)
                ));
                crate::cluster::failover::follow(st, &n);
            }
            if n == me && st.importing.remove(&slot).is_some() {
                // The import is over: a new epoch makes our claim win.
                if st.bump_epoch() {
                    crate::log::notice(&format!("configEpoch updated after importing slot {slot}"));
                }
                crate::cluster::bus::broadcast_pong(st);
            }
        }
        _ => {
            return Err(
                "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"
                    .into(),
            );
        }
    }
    st.dirty = true;
    ctx.out.ok();
    Ok(())
}

fn forget(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    let n = node_arg(st, &args[2], "Unknown node")?;
    if n == st.myself {
        return Err("ERR I tried hard but I can't forget myself...".into());
    }
    if st.me().is_slave() && st.me().slaveof == Some(n) {
        return Err("ERR Can't forget my master!".into());
    }
    st.blacklist.insert(n, state::now_ms() + 60_000);
    st.del_node(&n);
    ctx.out.ok();
    Ok(())
}

fn replicate(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    let n = node_arg(st, &args[2], "Unknown node")?;
    if n == st.myself {
        return Err("ERR Can't replicate myself".into());
    }
    if st.nodes[&n].is_slave() {
        return Err("ERR I can only replicate a master, not a replica.".into());
    }
    let me = st.myself;
    if st.me().is_master() && (st.num_slots(&me) != 0 || db0_keys(ctx) != 0) {
        return Err(
            "ERR To set a master the node must be empty and without assigned slots.".into(),
        );
    }
    let (ip, port) = (st.nodes[&n].ip.clone(), st.nodes[&n].port);
    let mut stores = super::super::snapshot::all_stores(ctx);
    crate::replication::replica::set_master(&mut stores, ip.clone(), port)?;
    let _ = ctx
        .srv
        .config
        .write()
        .unwrap()
        .set("replicaof", &format!("{ip} {port}"));
    let m = st.me_mut();
    m.flags &= !(nf::MASTER | nf::MIGRATE_TO);
    m.flags |= nf::SLAVE;
    m.slaveof = Some(n);
    st.migrating.clear();
    st.importing.clear();
    st.dirty = true;
    ctx.out.ok();
    Ok(())
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] (cluster::failover does the rest).
fn failover(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    if args.len() > 3 {
        syntax_error(ctx, args);
        return Ok(());
    }
    let mode = args.get(2).map(|a| lossy(a).to_ascii_lowercase());
    let (force, takeover) = match mode.as_deref() {
        None => (false, false),
        Some("force") => (true, false),
        Some("takeover") => (true, true),
        _ => return Err(errors::SYNTAX.into()),
    };
    if st.me().is_master() {
        return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
    }
    let Some(master) = st.me().slaveof.and_then(|m| st.nodes.get(&m)) else {
        return Err("ERR I'm a replica but my master is unknown to me".into());
    };
    if !force && (master.failed() || master.link.is_none()) {
        return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
    }
    if takeover {
        crate::cluster::failover::takeover(st);
        // The role changes now, under this command's hold of every shard.
        st.role_change = None;
        let mut stores = super::super::snapshot::all_stores(ctx);
        crate::replication::replica::promote(&mut stores);
        let _ = ctx.srv.config.write().unwrap().set("replicaof", "");
    } else {
        crate::cluster::failover::start_manual(st, force);
    }
    ctx.out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx, st: &mut State, args: &[Bytes]) -> Result<(), String> {
    let hard = match args
        .get(2)
        .map(|a| lossy(a).to_ascii_lowercase())
        .as_deref()
    {
        None | Some("soft") if args.len() <= 3 => false,
        Some("hard") if args.len() == 3 => true,
        _ => return Err(errors::SYNTAX.into()),
    };
    if st.me().is_master() && db0_keys(ctx) != 0 {
        return Err("ERR CLUSTER RESET can't be called with master nodes containing keys".into());
    }
    if st.me().is_slave() {
        let mut stores = super::super::snapshot::all_stores(ctx);
        crate::replication::replica::promote(&mut stores);
        let _ = ctx.srv.config.write().unwrap().set("replicaof", "");
        super::super::keys::empty_data(ctx, None, false);
    }
    st.reset(hard);
    ctx.out.ok();
    Ok(())
}

/// One node of CLUSTER SLOTS: [ip, port, id, {hostname}].
fn slot_node(ctx: &mut Ctx, n: &state::Node) {
    ctx.out.array(4);
    ctx.out.bulk_str(if n.ip.is_empty() { "?" } else { &n.ip });
    ctx.out.int(n.port as i64);
    ctx.out.bulk(&n.name);
    if n.hostname.is_empty() {
        ctx.out.map(0);
    } else {
        ctx.out.map(1);
        ctx.out.bulk_str("hostname");
        ctx.out.bulk_str(&n.hostname);
    }
}

fn slots_reply(ctx: &mut Ctx, st: &State) {
    let mut runs: Vec<(usize, usize, Name)> = Vec::new();
    for (s, o) in st.owner.iter().enumerate() {
        let Some(o) = o else { continue };
        match runs.last_mut() {
            Some(r) if r.2 == *o && r.1 + 1 == s => r.1 = s,
            _ => runs.push((s, s, *o)),
        }
    }
    ctx.out.array(runs.len());
    for (a, b, o) in runs {
        let replicas: Vec<&state::Node> = st
            .replicas_of(&o)
            .iter()
            .map(|r| &st.nodes[r])
            .filter(|r| !r.failed())
            .collect();
        ctx.out.array(3 + replicas.len());
        ctx.out.int(a as i64);
        ctx.out.int(b as i64);
        slot_node(ctx, &st.nodes[&o]);
        for r in replicas {
            slot_node(ctx, r);
        }
    }
}

fn shard_node(ctx: &mut Ctx, st: &State, n: &state::Node) {
    let offset = if n.name == st.myself {
        st.repl_offset
            .max(crate::replication::master::current_offset().max(0) as u64)
    } else {
        n.repl_offset
    };
    ctx.out.map(if n.hostname.is_empty() { 7 } else { 8 });
    ctx.out.bulk_str("id");
    ctx.out.bulk(&n.name);
    ctx.out.bulk_str("port");
    ctx.out.int(n.port as i64);
    ctx.out.bulk_str("ip");
    ctx.out.bulk_str(&n.ip);
    ctx.out.bulk_str("endpoint");
    ctx.out.bulk_str(if n.ip.is_empty() { "?" } else { &n.ip });
    if !n.hostname.is_empty() {
        ctx.out.bulk_str("hostname");
        ctx.out.bulk_str(&n.hostname);
    }
    ctx.out.bulk_str("role");
    ctx.out
        .bulk_str(if n.is_slave() { "replica" } else { "master" });
    ctx.out.bulk_str("replication-offset");
    ctx.out.int(offset as i64);
    ctx.out.bulk_str("health");
    ctx.out.bulk_str(if n.failed() { "fail" } else { "online" });
}

fn shards_reply(ctx: &mut Ctx, st: &State) {
    let masters: Vec<&state::Node> = st
        .sorted()
        .into_iter()
        .filter(|n| n.is_master() && !n.in_handshake())
        .collect();
    ctx.out.array(masters.len());
    for m in masters {
        let runs = state::ranges(&st.slots_of(&m.name));
        ctx.out.map(2);
        ctx.out.bulk_str("slots");
        ctx.out.array(runs.len() * 2);
        for (a, b) in runs {
            ctx.out.int(a as i64);
            ctx.out.int(b as i64);
        }
        let replicas = st.replicas_of(&m.name);
        ctx.out.bulk_str("nodes");
        ctx.out.array(1 + replicas.len());
        shard_node(ctx, st, m);
        for r in replicas {
            shard_node(ctx, st, &st.nodes[&r]);
        }
    }
}

fn links_reply(ctx: &mut Ctx, st: &State) {
    let mut links: Vec<&state::Link> = st.links.values().filter(|l| l.node.is_some()).collect();
    links.sort_by_key(|l| (l.node, l.inbound));
    ctx.out.array(links.len());
    for l in links {
        ctx.out.map(6);
        ctx.out.bulk_str("direction");
        ctx.out.bulk_str(if l.inbound { "from" } else { "to" });
        ctx.out.bulk_str("node");
        ctx.out.bulk_str(name_str(&l.node.unwrap()));
        ctx.out.bulk_str("create-time");
        ctx.out.int(l.ctime as i64);
        ctx.out.bulk_str("events");
        ctx.out.bulk_str(if l.wbuf.is_empty() { "r" } else { "rw" });
        ctx.out.bulk_str("send-buffer-allocated");
        ctx.out.int(l.wbuf.capacity() as i64);
        ctx.out.bulk_str("send-buffer-used");
        ctx.out.int(l.wbuf.len() as i64);
    }
}

/// DEBUG CLUSTERLINK KILL <to|from|all> <node-id> (argc checked by DEBUG).
pub fn debug_clusterlink(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(bus) = ctx.srv.cluster.as_ref().and_then(|c| c.bus.as_ref()) else {
        return if ctx.srv.cluster.is_some() {
            // The static map has no links: every node id is unknown to them.
            ctx.out
                .err(&format!("ERR Unknown node {}", lossy(&args[4])))
        } else {
            ctx.out
                .err("ERR Debug option only available for cluster mode enabled setup!")
        };
    };
    let mut st = bus.lock().unwrap();
    let name = match node_arg(&st, &args[4], "Unknown node") {
        Ok(n) => n,
        Err(e) => return ctx.out.err(&e),
    };
    let dir = &args[3][..];
    let (to, from) = if dir.eq_ignore_ascii_case(b"to") {
        (true, false)
    } else if dir.eq_ignore_ascii_case(b"from") {
        (false, true)
    } else if dir.eq_ignore_ascii_case(b"all") {
        (true, true)
    } else {
        // Stock also appends +OK after this error (a second reply).
        return ctx
            .out
            .err(&format!("ERR Unknown direction {}", lossy(dir)));
    };
    crate::cluster::bus::kill_links(&mut st, &name, to, from);
    ctx.out.ok();
}
