//! CLUSTER, READONLY, READWRITE, ASKING. In bus mode (`crate::cluster`)
//! the subcommands read and change the bus's state; with a static map
//! (`cluster-node` lines) the ones that would change it answer an error.
//! Replies have Redis 7.0's shapes.

use bytes::Bytes;

use super::server::{reply_help, subcommand};
use super::table::{Command, Special, cmd, flags::*};
use super::{Ctx, errors, parse_i64};
use crate::server::cluster::ClusterMap;

mod bus_cmds;
pub(crate) use bus_cmds::debug_clusterlink;
mod migrate;
use crate::storage::slot::{SLOTS, key_slot, slot_shard};

pub const DISABLED: &str = "ERR This instance has cluster support disabled";

pub fn commands() -> Vec<Command> {
    vec![
        cmd("cluster", -2, 0, cluster).special(Special::Cluster),
        cmd("readonly", 1, FAST | LOADING | STALE, readonly),
        cmd("readwrite", 1, FAST | LOADING | STALE, readonly),
        cmd("asking", 1, FAST, asking).special(Special::Asking),
        cmd(
            "restore-asking",
            -4,
            WRITE | DENYOOM | ASKING,
            super::persistence::restore,
        )
        .keys(1, 1, 1),
        cmd("migrate", -6, WRITE, migrate::migrate)
            .keys(3, 3, 1)
            .special(Special::Migrate),
    ]
}

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

/// ASKING: the next command may use a slot being imported here (the
/// pipeline clears the flag after it, as Redis's resetClient).
/// DEBUG DROP-CLUSTER-PACKET-FILTER <type>.
pub(crate) fn debug_drop_packet_filter(ctx: &mut Ctx, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(t) => {
            crate::cluster::bus::DROP_FILTER.store(t, std::sync::atomic::Ordering::Relaxed);
            ctx.out.ok();
        }
        None => ctx.out.err(errors::NOT_INT),
    }
}

fn asking(ctx: &mut Ctx, _args: &[Bytes]) {
    if ctx.srv.cluster.is_none() {
        return ctx.out.err(DISABLED);
    }
    if let Some(c) = ctx.client.as_mut() {
        c.asking = true;
    }
    ctx.out.ok();
}

/// READONLY / READWRITE: whether a replica serves this client's reads of
/// its master's slots.
fn readonly(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.srv.cluster.is_none() {
        return ctx.out.err(DISABLED);
    }
    let on = args[0].eq_ignore_ascii_case(b"readonly");
    if let Some(c) = ctx.client.as_mut() {
        c.readonly = on;
    }
    ctx.out.ok();
}

fn cluster(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(sub) = subcommand(ctx, args) else {
        return;
    };
    let Some(cluster) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    if cluster.bus.is_some()
        && !matches!(
            sub,
            "help" | "keyslot" | "countkeysinslot" | "getkeysinslot"
        )
    {
        return bus_cmds::run(ctx, sub, args);
    }
    let map = &*cluster.map();
    match sub {
        "help" => reply_help(ctx.out, &args[0], HELP),
        "info" => {
            let info = info_text(map);
            ctx.out.verbatim(info.as_bytes())
        }
        "myid" => ctx.out.bulk_str(&map.me().id),
        "nodes" => {
            let nodes = nodes_text(map);
            ctx.out.verbatim(nodes.as_bytes())
        }
        "slots" => slots_reply(ctx, map),
        "shards" => shards_reply(ctx, map),
        "keyslot" => ctx.out.int(key_slot(&args[2]) as i64),
        "countkeysinslot" => {
            let Some(slot) = parse_i64(&args[2]) else {
                return ctx.out.err(errors::NOT_INT);
            };
            if !(0..SLOTS as i64).contains(&slot) {
                return ctx.out.err("ERR Invalid slot");
            }
            let shard = slot_shard(slot as usize, ctx.nshards());
            let n = ctx.store(shard).dbs[0].count_in_slot(slot as usize);
            ctx.out.int(n as i64)
        }
        "getkeysinslot" => {
            let (Some(slot), Some(max)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return ctx.out.err(errors::NOT_INT);
            };
            if !(0..SLOTS as i64).contains(&slot) || max < 0 {
                return ctx.out.err("ERR Invalid slot or number of keys");
            }
            let keys = keys_in_slot(ctx, slot as usize, max as usize);
            ctx.out.array(keys.len());
            for k in keys {
                ctx.out.bulk(&k);
            }
        }
        // No cluster bus: no links, no replicas, no failure reports.
        "links" => ctx.out.array(0),
        "replicas" | "slaves" | "count-failure-reports" => {
            if !map.nodes.iter().any(|n| n.id.as_bytes() == &args[2][..]) {
                return ctx.out.err(&format!(
                    "ERR Unknown node {}",
                    String::from_utf8_lossy(&args[2])
                ));
            }
            if sub == "count-failure-reports" {
                ctx.out.int(0)
            } else {
                ctx.out.array(0)
            }
        }
        // Nothing to save: the map lives in the config.
        "saveconfig" => ctx.out.ok(),
        other => ctx.out.err(&format!(
            "ERR CLUSTER {} is not supported: keel's slot map is static (cluster-node directives in the config)",
            other.to_ascii_uppercase()
        )),
    }
}

/// Keys of DB 0 in `slot`, at most `max`. Only the slot's shard is read.
pub(crate) fn keys_in_slot(ctx: &mut Ctx, slot: usize, max: usize) -> Vec<Box<[u8]>> {
    let shard = slot_shard(slot, ctx.nshards());
    ctx.store(shard).dbs[0]
        .keys_in_slot(slot, max)
        .into_iter()
        .map(Box::from)
        .collect()
}

fn info_text(map: &ClusterMap) -> String {
    let assigned = map.slots_assigned();
    let n = map.nodes.len();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{n}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{n}\r\ncluster_my_epoch:{}\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n",
        if map.state_ok() { "ok" } else { "fail" },
        map.size(),
        map.me().epoch,
    )
}

/// CLUSTER NODES: `<id> <ip>:<port>@<cport> <flags> - 0 0 <epoch> connected <slots>`.
fn nodes_text(map: &ClusterMap) -> String {
    let mut s = String::new();
    for (i, n) in map.nodes.iter().enumerate() {
        let flags = if i == map.myself {
            "myself,master"
        } else {
            "master"
        };
        s += &format!(
            "{} {}:{}@{} {flags} - 0 0 {} connected",
            n.id,
            n.host,
            n.port,
            u32::from(n.port) + 10000,
            n.epoch
        );
        for (a, b) in map.node_runs(i) {
            if a == b {
                s += &format!(" {a}");
            } else {
                s += &format!(" {a}-{b}");
            }
        }
        s.push('\n');
    }
    s
}

/// CLUSTER SLOTS: per contiguous range [start, end, [ip, port, id, {}]].
fn slots_reply(ctx: &mut Ctx, map: &ClusterMap) {
    let runs = map.runs();
    ctx.out.array(runs.len());
    for (a, b, n) in runs {
        let node = &map.nodes[n];
        ctx.out.array(3);
        ctx.out.int(a as i64);
        ctx.out.int(b as i64);
        ctx.out.array(4);
        ctx.out.bulk_str(&node.host);
        ctx.out.int(node.port as i64);
        ctx.out.bulk_str(&node.id);
        // No hostname, no other endpoint: an empty map (`*0` in RESP2).
        ctx.out.map(0);
    }
}

/// CLUSTER SHARDS: one shard per master, each {slots: [a, b, ...], nodes: [{...}]}.
fn shards_reply(ctx: &mut Ctx, map: &ClusterMap) {
    use crate::replication::master;
    // As INFO's master_repl_offset: every write acknowledged so far counted.
    let my_offset = master::repl().map_or(0, |r| {
        master::cut(false);
        r.lock().offset
    });
    ctx.out.array(map.nodes.len());
    for (i, node) in map.nodes.iter().enumerate() {
        let runs = map.node_runs(i);
        ctx.out.map(2);
        ctx.out.bulk_str("slots");
        ctx.out.array(runs.len() * 2);
        for (a, b) in runs {
            ctx.out.int(a as i64);
            ctx.out.int(b as i64);
        }
        ctx.out.bulk_str("nodes");
        ctx.out.array(1);
        ctx.out.map(7);
        ctx.out.bulk_str("id");
        ctx.out.bulk_str(&node.id);
        ctx.out.bulk_str("port");
        ctx.out.int(node.port as i64);
        ctx.out.bulk_str("ip");
        ctx.out.bulk_str(&node.host);
        ctx.out.bulk_str("endpoint");
        ctx.out.bulk_str(&node.host);
        ctx.out.bulk_str("role");
        ctx.out.bulk_str("master");
        ctx.out.bulk_str("replication-offset");
        // Other nodes' offsets come with gossip, which keel has not.
        ctx.out.int(if i == map.myself { my_offset } else { 0 });
        ctx.out.bulk_str("health");
        ctx.out.bulk_str("online");
    }
}
