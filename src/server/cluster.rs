//! Cluster mode as the shards see it: an immutable slot map (`ClusterMap`)
//! and the redirection check run before a command executes.
//!
//! Two sources for the map. With `cluster-node <host>:<port> <ranges>`
//! lines (the same in every process) it is static: no bus, every process
//! derives the same node IDs and epochs from the map alone (a fixed
//! topology for tests and clients, no other process needed). Without them
//! the node is a real Redis Cluster member: the bus thread
//! (`crate::cluster`) owns the state and publishes a new map whenever it
//! changes (`Cluster::publish`); shards pick it up by generation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use crate::commands::{Command, Special};
use crate::config::Config;
use crate::storage::slot::{SLOTS, key_slot};

/// No node serves the slot.
const UNASSIGNED: u16 = u16::MAX;

pub struct Node {
    pub host: String,
    pub port: u16,
    /// 40 hex chars of sha1("host:port"): every process computes the same.
    pub id: String,
    /// Position in the map + 1, so every master has its own config epoch.
    pub epoch: u64,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The process's cluster: the current map, and the bus state when the node
/// speaks the cluster bus.
pub struct Cluster {
    current: RwLock<Arc<ClusterMap>>,
    generation: AtomicU64,
    pub bus: Option<Mutex<crate::cluster::state::State>>,
}

thread_local! {
    static CACHED: RefCell<(u64, Option<Arc<ClusterMap>>)> = const { RefCell::new((0, None)) };
}

impl Cluster {
    /// None without `cluster-enabled yes`. In bus mode nodes.conf is loaded
    /// (or a new node id made) here; errors are fatal.
    pub fn from_config(cfg: &Config) -> Result<Option<Cluster>, String> {
        if cfg.get_bool("cluster-enabled") {
            crate::storage::slot_index::enable();
        }
        if let Some(map) = ClusterMap::from_config(cfg)? {
            return Ok(Some(Cluster::with_map(map, None)));
        }
        if !cfg.get_bool("cluster-enabled") {
            return Ok(None);
        }
        let cport = listen_cport(cfg)?;
        let (port, announced_cport) = announced_ports(cfg, cport);
        let set = crate::cluster::state::Settings {
            port,
            cport,
            announced_cport,
            announce_ip: cfg.get("cluster-announce-ip").to_string(),
            hostname: cfg.get("cluster-announce-hostname").to_string(),
            node_timeout: cfg.get_i64("cluster-node-timeout").max(1) as u64,
            require_full_coverage: cfg.get_bool("cluster-require-full-coverage"),
            allow_reads_when_down: cfg.get_bool("cluster-allow-reads-when-down"),
            config_file: std::path::PathBuf::from(cfg.get("dir"))
                .join(cfg.get("cluster-config-file"))
                .to_string_lossy()
                .into_owned(),
            validity_factor: cfg.get_i64("cluster-replica-validity-factor").max(0) as u64,
            no_failover: cfg.get_bool("cluster-replica-no-failover"),
            allow_replica_migration: cfg.get_bool("cluster-allow-replica-migration"),
            repl_ping_ms: cfg.get_i64("repl-ping-replica-period").max(1) as u64 * 1000,
        };
        let mut st = crate::cluster::state::State::new(set);
        if st.load()? {
            crate::log::notice(&format!(
                "Node configuration loaded, I'm {}",
                crate::cluster::state::name_str(&st.myself)
            ));
        } else {
            crate::log::notice(&format!(
                "No cluster configuration found, I'm {}",
                crate::cluster::state::name_str(&st.myself)
            ));
        }
        st.update_state();
        st.dirty = true;
        let map = crate::cluster::bus::snapshot(&st);
        Ok(Some(Cluster::with_map(map, Some(Mutex::new(st)))))
    }

    /// After CONFIG SET: the bus announces the current
    /// cluster-announce-port / -bus-port / -hostname and uses the current
    /// node timeout, validity factor and replica-migration switch.
    pub fn config_changed(&self, srv: &crate::server::Server) {
        let Some(bus) = &self.bus else {
            return;
        };
        let (port, cport, hostname, migration, timeout, validity) = {
            let c = srv.config.read().unwrap();
            let Ok(listen) = listen_cport(&c) else {
                return;
            };
            let (port, cport) = announced_ports(&c, listen);
            (
                port,
                cport,
                c.get("cluster-announce-hostname").to_string(),
                c.get_bool("cluster-allow-replica-migration"),
                c.get_i64("cluster-node-timeout").max(1) as u64,
                c.get_i64("cluster-replica-validity-factor").max(0) as u64,
            )
        };
        let mut st = bus.lock().unwrap();
        st.set.allow_replica_migration = migration;
        st.set.node_timeout = timeout;
        st.set.validity_factor = validity;
        st.set_announced(port, cport, &hostname);
        crate::cluster::bus::commit(srv, &mut st);
    }

    fn with_map(map: ClusterMap, bus: Option<Mutex<crate::cluster::state::State>>) -> Cluster {
        Cluster {
            current: RwLock::new(Arc::new(map)),
            generation: AtomicU64::new(1),
            bus,
        }
    }

    /// The current map: a thread-local copy, refreshed when the bus
    /// published a newer one (one relaxed load per call otherwise).
    pub fn map(&self) -> Arc<ClusterMap> {
        let g = self.generation.load(Ordering::Acquire);
        CACHED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != g || c.1.is_none() {
                *c = (g, Some(self.current.read().unwrap().clone()));
            }
            c.1.clone().unwrap()
        })
    }

    pub fn publish(&self, map: ClusterMap) {
        *self.current.write().unwrap() = Arc::new(map);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The address and port of this node's master, from nodes.conf at
    /// startup (the node then follows it as `replicaof` would).
    pub fn startup_master(&self) -> Option<(String, u16)> {
        let st = self.bus.as_ref()?.lock().unwrap();
        let me = st.me();
        let m = me.slaveof.filter(|_| me.is_slave())?;
        let m = st.nodes.get(&m)?;
        (!m.ip.is_empty() && m.port != 0).then(|| (m.ip.clone(), m.port))
    }
}

/// Shard 0's task in bus mode: delivers what other nodes published (bus
/// PUBLISH, queued by the bus thread) to this node's subscribers, applies
/// the replication role changes the bus decided (elections, a master
/// following the node that took its slots), and reads the exact offset of
/// a master paused for a manual failover.
pub async fn deliver_bus_publish(rt: std::rc::Rc<super::shard::ShardRt>) {
    use crate::cluster::state::RoleChange;
    let Some(bus) = rt.srv.cluster.as_ref().and_then(|c| c.bus.as_ref()) else {
        return;
    };
    let all: Vec<usize> = (0..rt.srv.nshards).collect();
    // The last paused offset read: published once a second read agrees
    // (a write admitted just before the pause may still be on its way).
    let mut last_paused: Option<i64> = None;
    loop {
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        let (msgs, shard_msgs, role, paused) = {
            let mut st = bus.lock().unwrap();
            let paused = st.me().is_master()
                && st.mf.end != 0
                && st.mf.replica.is_some()
                && st.mf.paused_offset.is_none();
            (
                std::mem::take(&mut st.published),
                std::mem::take(&mut st.published_shard),
                st.role_change.take(),
                paused,
            )
        };
        let all_msgs = msgs
            .into_iter()
            .map(|m| (super::pubsub::Kind::Channel, m))
            .chain(
                shard_msgs
                    .into_iter()
                    .map(|m| (super::pubsub::Kind::Shard, m)),
            );
        for (kind, (channel, message)) in all_msgs {
            super::pubsub::publish(rt.srv, kind, &Bytes::from(channel), &Bytes::from(message));
        }
        if let Some(role) = role {
            let srv = rt.srv;
            rt.with_shards(&all, |view| {
                let mut stores = view.all_mut();
                match role {
                    RoleChange::Promote => {
                        crate::replication::replica::promote(&mut stores);
                        let _ = srv.config.write().unwrap().set("replicaof", "");
                    }
                    RoleChange::Follow(host, port, unpause) => {
                        match crate::replication::replica::set_master(
                            &mut stores,
                            host.clone(),
                            port,
                        ) {
                            Ok(_) => {
                                let _ = srv
                                    .config
                                    .write()
                                    .unwrap()
                                    .set("replicaof", &format!("{host} {port}"));
                            }
                            Err(e) => {
                                crate::log::warning(&format!("Could not follow {host}:{port}: {e}"))
                            }
                        }
                        if unpause {
                            super::ops::unpause_clients();
                        }
                    }
                }
            })
            .await;
        }
        if !paused {
            last_paused = None;
            continue;
        }
        let off = rt
            .with_shards(&all, |_| {
                crate::replication::master::cut(false).map(|c| c.offset)
            })
            .await;
        if off.is_some() && off == last_paused {
            let mut st = bus.lock().unwrap();
            if st.mf.end != 0 && st.mf.replica.is_some() {
                st.mf.paused_offset = off.map(|o| o.max(0) as u64);
            }
        }
        last_paused = off;
    }
}

pub struct ClusterMap {
    pub nodes: Vec<Node>,
    /// Index of this process's node in `nodes`.
    pub myself: usize,
    /// Node index per slot, UNASSIGNED when none.
    owner: Vec<u16>,
    /// cluster_state:ok (with cluster-require-full-coverage no, a partial
    /// map is ok too).
    state_ok: bool,
    allow_reads_when_down: bool,
    /// Open slots (CLUSTER SETSLOT MIGRATING / IMPORTING): slot -> node.
    migrating: HashMap<u16, u16>,
    importing: HashMap<u16, u16>,
    /// This node's master when it is a replica (READONLY reads).
    master: Option<u16>,
}

/// A slot this node is moving keys out of or into.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum OpenSlot {
    /// Ours, keys leaving for this node.
    Migrating(usize),
    /// Keys arriving from another node.
    Importing,
}

/// Why a command is not served here (Redis's CLUSTER_REDIR_* codes).
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    CrossSlot,
    Moved(usize, usize),
    Unbound,
    Down,
    DownReadOnly,
    /// A key of a migrating slot is missing here: ask its new node.
    Ask(usize, usize),
    /// Some keys of a multi-key request are missing in an open slot.
    TryAgain,
}

impl ClusterMap {
    /// Builds the map when `cluster-enabled yes`; None otherwise. Errors are
    /// fatal config errors (overlaps, slots past 16383, no entry for myself).
    /// Without `cluster-node` lines: None (the bus builds the map).
    pub fn from_config(cfg: &Config) -> Result<Option<ClusterMap>, String> {
        if !cfg.get_bool("cluster-enabled") {
            return Ok(None);
        }
        let entries = parse_nodes(cfg.get("cluster-node"))?;
        if entries.is_empty() {
            return Ok(None);
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut owner = vec![UNASSIGNED; SLOTS];
        for (host, port, ranges) in entries {
            let addr = format!("{host}:{port}");
            if nodes.iter().any(|n| n.addr() == addr) {
                return Err(format!("cluster-node {addr} is listed twice"));
            }
            let me = nodes.len() as u16;
            nodes.push(Node {
                id: node_id(&addr),
                epoch: me as u64 + 1,
                host,
                port,
            });
            for (a, b) in ranges {
                for (s, o) in owner.iter_mut().enumerate().take(b + 1).skip(a) {
                    if *o != UNASSIGNED {
                        return Err(format!(
                            "cluster-node {addr}: slot {s} is already assigned to {}",
                            nodes[*o as usize].addr()
                        ));
                    }
                    *o = me;
                }
            }
        }
        let ip = match cfg.get("cluster-announce-ip") {
            "" => "127.0.0.1",
            ip => ip,
        };
        let port = match cfg.get_i64("cluster-announce-port") {
            0 => cfg.get_i64("port"),
            p => p,
        };
        let Some(myself) = nodes
            .iter()
            .position(|n| n.host == ip && i64::from(n.port) == port)
        else {
            return Err(format!(
                "cluster-node: the slot map has no entry for this node ({ip}:{port}, from cluster-announce-ip and port/cluster-announce-port)"
            ));
        };
        let full = owner.iter().all(|&o| o != UNASSIGNED);
        Ok(Some(ClusterMap {
            nodes,
            myself,
            owner,
            state_ok: full || !cfg.get_bool("cluster-require-full-coverage"),
            allow_reads_when_down: cfg.get_bool("cluster-allow-reads-when-down"),
            migrating: HashMap::new(),
            importing: HashMap::new(),
            master: None,
        }))
    }

    /// The bus's snapshot: `owner` holds indexes into `nodes`.
    pub fn from_parts(
        nodes: Vec<Node>,
        myself: usize,
        owner: Vec<Option<usize>>,
        state_ok: bool,
        allow_reads_when_down: bool,
    ) -> ClusterMap {
        ClusterMap {
            nodes,
            myself,
            owner: owner
                .into_iter()
                .map(|o| o.map_or(UNASSIGNED, |o| o as u16))
                .collect(),
            state_ok,
            allow_reads_when_down,
            migrating: HashMap::new(),
            importing: HashMap::new(),
            master: None,
        }
    }

    /// This node replicates `master` (an index in `nodes`).
    pub fn with_master(mut self, master: Option<usize>) -> ClusterMap {
        self.master = master.map(|m| m as u16);
        self
    }

    /// The open slots: (slot, node) pairs for MIGRATING and IMPORTING.
    pub fn with_open_slots(
        mut self,
        migrating: impl IntoIterator<Item = (usize, usize)>,
        importing: impl IntoIterator<Item = (usize, usize)>,
    ) -> ClusterMap {
        let conv = |(s, n): (usize, usize)| (s as u16, n as u16);
        self.migrating = migrating.into_iter().map(conv).collect();
        self.importing = importing.into_iter().map(conv).collect();
        self
    }

    /// Whether any slot is being migrated or imported (the fast path skips
    /// the per-key existence checks otherwise).
    pub fn has_open_slots(&self) -> bool {
        !self.migrating.is_empty() || !self.importing.is_empty()
    }

    /// Whether `slot` is open here, as getNodeByQuery sees it: migrating
    /// only counts for a slot we own.
    pub fn open_slot(&self, slot: usize) -> Option<OpenSlot> {
        let s = slot as u16;
        match self.migrating.get(&s) {
            Some(&n) if self.owner(slot) == Some(self.myself) => {
                Some(OpenSlot::Migrating(n as usize))
            }
            _ => self
                .importing
                .contains_key(&s)
                .then_some(OpenSlot::Importing),
        }
    }

    /// Which slots this node serves, indexed by slot.
    pub fn owned(&self) -> Vec<bool> {
        self.owner
            .iter()
            .map(|&o| o as usize == self.myself)
            .collect()
    }

    pub fn me(&self) -> &Node {
        &self.nodes[self.myself]
    }

    pub fn state_ok(&self) -> bool {
        self.state_ok
    }

    /// The node serving `slot`, if any.
    pub fn owner(&self, slot: usize) -> Option<usize> {
        let o = self.owner[slot];
        (o != UNASSIGNED).then_some(o as usize)
    }

    pub fn slots_assigned(&self) -> usize {
        self.owner.iter().filter(|&&o| o != UNASSIGNED).count()
    }

    /// Contiguous slot runs in slot order: (start, end, node).
    pub fn runs(&self) -> Vec<(usize, usize, usize)> {
        let mut v: Vec<(usize, usize, usize)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            if o == UNASSIGNED {
                continue;
            }
            match v.last_mut() {
                Some(r) if r.2 == o as usize && r.1 + 1 == s => r.1 = s,
                _ => v.push((s, s, o as usize)),
            }
        }
        v
    }

    /// The slot runs of one node.
    pub fn node_runs(&self, node: usize) -> Vec<(usize, usize)> {
        self.runs()
            .into_iter()
            .filter(|r| r.2 == node)
            .map(|r| (r.0, r.1))
            .collect()
    }

    /// Masters serving at least one slot (cluster_size).
    pub fn size(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&n| self.owner.iter().any(|&o| o as usize == n))
            .count()
    }

    /// Redis's getNodeByQuery for one request: all keys must hash to one
    /// slot that this node serves. Ok(None) for a request without keys.
    pub fn check<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
        is_write: bool,
    ) -> Result<Option<usize>, Redirect> {
        self.check_asking(keys, is_write, false, false)
    }

    /// `check` for a client that sent ASKING (or RESTORE-ASKING): a slot
    /// being imported here is served. Whether the keys exist in an open
    /// slot is decided later, on the slot's shard (`open_slot_verdict`).
    /// `read_here`: a READONLY client (or a shard channel): on a replica,
    /// reads of its master's slots are served.
    pub fn check_asking<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
        is_write: bool,
        asking: bool,
        read_here: bool,
    ) -> Result<Option<usize>, Redirect> {
        let mut first: Option<(&[u8], usize)> = None;
        for k in keys {
            match first {
                None => {
                    let slot = key_slot(k);
                    if self.owner(slot).is_none() {
                        return Err(Redirect::Unbound);
                    }
                    first = Some((k, slot));
                }
                Some((f, slot)) => {
                    if f != k && key_slot(k) != slot {
                        return Err(Redirect::CrossSlot);
                    }
                }
            }
        }
        let Some((_, slot)) = first else {
            return Ok(None);
        };
        if !self.state_ok {
            if !self.allow_reads_when_down {
                return Err(Redirect::Down);
            }
            if is_write {
                return Err(Redirect::DownReadOnly);
            }
        }
        if asking && self.importing.contains_key(&(slot as u16)) {
            return Ok(Some(slot));
        }
        if read_here
            && !is_write
            && self.master.is_some()
            && self.owner(slot) == self.master.map(usize::from)
        {
            return Ok(Some(slot));
        }
        match self.owner(slot) {
            Some(n) if n != self.myself => Err(Redirect::Moved(slot, n)),
            _ => Ok(Some(slot)),
        }
    }

    /// Why a client blocked on `key` can no longer wait here, as
    /// clusterRedirectBlockedClientIfNeeded: the cluster is down (even when
    /// reads are allowed: only a write could serve it), or the key's slot is
    /// unassigned or another node's and not being imported here. `read_here`:
    /// a READONLY client's read of our master's slot.
    pub fn blocked_redirect(&self, key: &[u8], read_here: bool) -> Option<Redirect> {
        if !self.state_ok {
            return Some(Redirect::Down);
        }
        let slot = key_slot(key);
        let owner = self.owner(slot);
        if owner == Some(self.myself)
            || (read_here && self.master.is_some() && owner == self.master.map(usize::from))
            || self.importing.contains_key(&(slot as u16))
        {
            return None;
        }
        Some(match owner {
            Some(n) => Redirect::Moved(slot, n),
            None => Redirect::Unbound,
        })
    }

    /// getNodeByQuery's verdict for a request on an open slot, given how
    /// many of its keys exist here (`multiple`: distinct keys).
    pub fn open_slot_verdict(
        &self,
        slot: usize,
        open: OpenSlot,
        missing: usize,
        existing: usize,
        multiple: bool,
    ) -> Result<(), Redirect> {
        match open {
            OpenSlot::Migrating(_) if missing > 0 && existing > 0 => Err(Redirect::TryAgain),
            OpenSlot::Migrating(n) if missing > 0 => Err(Redirect::Ask(slot, n)),
            OpenSlot::Importing if multiple && missing > 0 => Err(Redirect::TryAgain),
            _ => Ok(()),
        }
    }

    /// The error reply (without '-') for a redirect, as clusterRedirectClient.
    pub fn message(&self, r: &Redirect) -> String {
        match r {
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Redirect::Moved(slot, n) => format!("MOVED {slot} {}", self.nodes[*n].addr()),
            Redirect::Ask(slot, n) => format!("ASK {slot} {}", self.nodes[*n].addr()),
            Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnly => {
                "CLUSTERDOWN The cluster is down and only accepts read commands".into()
            }
        }
    }
}

/// Key positions the cluster check looks at: the command's keys, plus the
/// shard channels of SPUBLISH/SSUBSCRIBE/SUNSUBSCRIBE, which Redis 7 routes
/// by slot like keys.
pub fn request_keys(cmd: &Command, args: &[Bytes]) -> Vec<usize> {
    match cmd.special {
        Special::SPublish => vec![1],
        Special::SSubscribe => (1..args.len()).collect(),
        _ => cmd.key_indexes(args),
    }
}

/// The bus port we listen on: cluster-port, else port + 10000.
fn listen_cport(cfg: &Config) -> Result<u16, String> {
    let cport = match cfg.get_i64("cluster-port") {
        0 => cfg.get_i64("port") + 10000,
        p => p,
    };
    u16::try_from(cport)
        .map_err(|_| format!("the cluster bus port {cport} is out of range: set cluster-port"))
}

/// The client and bus ports we announce (deriveAnnouncedPorts without TLS).
fn announced_ports(cfg: &Config, listen_cport: u16) -> (u16, u16) {
    let port = match cfg.get_i64("cluster-announce-port") {
        0 => cfg.get_i64("port"),
        p => p,
    } as u16;
    let cport = match cfg.get_i64("cluster-announce-bus-port") {
        0 => listen_cport,
        p => p as u16,
    };
    (port, cport)
}

pub fn node_id(addr: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(addr.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One `cluster-node` entry: address and inclusive slot ranges.
pub type NodeSpec = (String, u16, Vec<(usize, usize)>);

/// Parses the accumulated `cluster-node` value: a word with ':' starts a
/// node (`host:port`, the port after the last ':'), the words after it are
/// comma-separated slot ranges (`a-b` or `n`).
pub fn parse_nodes(v: &str) -> Result<Vec<NodeSpec>, String> {
    let mut out: Vec<NodeSpec> = Vec::new();
    for word in v.split_whitespace() {
        if let Some((host, port)) = word.rsplit_once(':') {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("cluster-node: invalid port in '{word}'"))?;
            if host.is_empty() {
                return Err(format!("cluster-node: no host in '{word}'"));
            }
            out.push((host.to_string(), port, Vec::new()));
            continue;
        }
        let Some(node) = out.last_mut() else {
            return Err(format!(
                "cluster-node: '{word}' must follow a <host>:<port> address"
            ));
        };
        for r in word.split(',').filter(|r| !r.is_empty()) {
            let slot = |s: &str| -> Result<usize, String> {
                let n: usize = s
                    .parse()
                    .map_err(|_| format!("cluster-node: invalid slot range '{r}'"))?;
                if n >= SLOTS {
                    return Err(format!(
                        "cluster-node: slot {n} is out of range (0-{})",
                        SLOTS - 1
                    ));
                }
                Ok(n)
            };
            let (a, b) = match r.split_once('-') {
                Some((a, b)) => (slot(a)?, slot(b)?),
                None => (slot(r)?, slot(r)?),
            };
            if a > b {
                return Err(format!(
                    "cluster-node: start slot {a} is greater than end slot {b}"
                ));
            }
            node.2.push((a, b));
        }
    }
    Ok(out)
}

/// The shards a CLUSTER subcommand reads or changes: the slot's one for
/// COUNTKEYSINSLOT/GETKEYSINSLOT/SETSLOT (a slot lives on exactly one
/// shard), every shard for the ones that check or drop the data or change
/// replication (bus mode). None: no data needed.
pub fn data_shards(srv: &super::Server, args: &[Bytes]) -> Option<Vec<usize>> {
    let c = srv.cluster.as_ref()?;
    let sub = args.get(1)?;
    let is = |name: &str| sub.eq_ignore_ascii_case(name.as_bytes());
    let n = match args.len() {
        3 if is("countkeysinslot") => crate::util::parse_i64(&args[2])?,
        4 if is("getkeysinslot") => crate::util::parse_i64(&args[2])?,
        5 | 6 if c.bus.is_some() && is("setslot") => crate::util::parse_i64(&args[2])?,
        _ if c.bus.is_some()
            && (is("replicate") || is("reset") || is("flushslots") || is("failover")) =>
        {
            return Some((0..srv.nshards).collect());
        }
        _ => return None,
    };
    (0..SLOTS as i64)
        .contains(&n)
        .then(|| vec![crate::storage::slot::slot_shard(n as usize, srv.nshards)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(lines: &str, port: u16) -> Result<Option<ClusterMap>, String> {
        let mut c = Config::default();
        c.load_text(&format!("cluster-enabled yes\nport {port}\n{lines}"))?;
        ClusterMap::from_config(&c)
    }

    #[test]
    fn parses_and_validates_the_map() {
        let m = map(
            "cluster-node 127.0.0.1:7000 0-8191\ncluster-node 127.0.0.1:7001 8192-16000,16001-16383",
            7001,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.myself, 1);
        assert!(m.state_ok());
        assert_eq!(m.runs(), vec![(0, 8191, 0), (8192, 16383, 1)]);
        assert_eq!(m.me().id, node_id("127.0.0.1:7001"));
        assert_eq!(m.me().id.len(), 40);
        // foo is slot 12182 (mine), bar 5061 (the other node's).
        assert_eq!(m.check([&b"foo"[..]], false), Ok(Some(12182)));
        assert_eq!(m.check([&b"bar"[..]], false), Err(Redirect::Moved(5061, 0)));
        assert_eq!(
            m.message(&Redirect::Moved(5061, 0)),
            "MOVED 5061 127.0.0.1:7000"
        );
        assert_eq!(
            m.check([&b"foo"[..], b"bar"], true),
            Err(Redirect::CrossSlot)
        );
        assert_eq!(
            m.check([&b"{bar}x"[..], b"{bar}y"], true),
            Err(Redirect::Moved(5061, 0))
        );
        assert_eq!(m.check(std::iter::empty(), true), Ok(None));

        let err = |lines: &str| map(lines, 7000).err().unwrap();
        assert!(
            err("cluster-node 127.0.0.1:7000 0-100\ncluster-node 127.0.0.1:7001 50-200")
                .contains("already assigned")
        );
        assert!(err("cluster-node 127.0.0.1:7000 0-16384").contains("out of range"));
        assert!(err("cluster-node 127.0.0.1:7000 0-10,5").contains("already assigned"));
        assert!(err("cluster-node 127.0.0.1:7001 0-16383").contains("no entry for this node"));
        assert!(err("cluster-node 127.0.0.1:7000 10-5").contains("greater"));

        // A partial map: keys of unserved slots, and a cluster that is down.
        let m = map("cluster-node 127.0.0.1:7000 0-8191", 7000)
            .unwrap()
            .unwrap();
        assert!(!m.state_ok());
        assert_eq!(m.check([&b"foo"[..]], false), Err(Redirect::Unbound));
        assert_eq!(m.check([&b"bar"[..]], false), Err(Redirect::Down));
        let m = map(
            "cluster-node 127.0.0.1:7000 0-8191\ncluster-require-full-coverage no",
            7000,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.check([&b"bar"[..]], false), Ok(Some(5061)));
        assert!(map("cluster-enabled no", 7000).unwrap().is_none());
    }

    /// The map is checked when the config is read, through the checks the
    /// server registers with config.
    #[test]
    fn a_bad_map_refuses_the_config() {
        crate::server::register_config_checks();
        let args = crate::config::tests::two_node_map_args();
        assert!(Config::from_args(&args).is_ok());
        let bad = |extra: &str| {
            let mut a = args.clone();
            a.extend(["--cluster-node".to_string(), extra.to_string()]);
            Config::from_args(&a).unwrap_err()
        };
        assert!(bad("127.0.0.1:7002 100").contains("already assigned"));
        assert!(bad("127.0.0.1:7002 16384").contains("out of range"));
        let mut a = args.clone();
        a.extend(["--rename-command", "nosuchcmd", "x"].map(String::from));
        assert!(
            Config::from_args(&a)
                .unwrap_err()
                .contains("No such command in rename-command")
        );
    }
}
