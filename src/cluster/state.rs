//! The cluster's state as this node sees it: the node table, the slot
//! owners, epochs, migrations; the nodes.conf file; the text and
//! configuration changes of the CLUSTER subcommands. Message handling and
//! the links are in `bus`.

use std::collections::HashMap;
use std::net::TcpStream;

pub use super::codec::Name;
use super::codec::{self, flags as nf};

pub const SLOTS: usize = 16384;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn random_name() -> Name {
    let mut n = [0u8; 40];
    for c in n.iter_mut() {
        *c = b"0123456789abcdef"[fastrand::usize(0..16)];
    }
    n
}

pub fn name_str(n: &Name) -> &str {
    std::str::from_utf8(n).unwrap_or("?")
}

/// A 40-byte node name from a command argument (any other length is unknown).
pub fn parse_name(b: &[u8]) -> Option<Name> {
    b.try_into().ok()
}

pub struct Node {
    pub name: Name,
    pub flags: u16,
    pub ip: String,
    pub port: u16,
    pub pport: u16,
    pub cport: u16,
    pub hostname: String,
    pub config_epoch: u64,
    pub slaveof: Option<Name>,
    pub ctime: u64,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    pub repl_offset: u64,
    /// Masters that reported this node as PFAIL/FAIL, with the time.
    pub fail_reports: Vec<(Name, u64)>,
    /// Id of the outbound link in `State::links`.
    pub link: Option<u64>,
    /// When this node (a master) last had our vote for one of its replicas.
    pub voted_time: u64,
}

impl Node {
    pub fn new(name: Name, flags: u16) -> Node {
        Node {
            name,
            flags,
            ip: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            hostname: String::new(),
            config_epoch: 0,
            slaveof: None,
            ctime: now_ms(),
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            repl_offset: 0,
            fail_reports: Vec::new(),
            link: None,
            voted_time: 0,
        }
    }
    pub fn is_master(&self) -> bool {
        self.flags & nf::MASTER != 0
    }
    pub fn is_slave(&self) -> bool {
        self.flags & nf::SLAVE != 0
    }
    pub fn in_handshake(&self) -> bool {
        self.flags & nf::HANDSHAKE != 0
    }
    pub fn failed(&self) -> bool {
        self.flags & nf::FAIL != 0
    }
}

pub struct Link {
    pub stream: TcpStream,
    pub inbound: bool,
    /// The node of an outbound link (inbound links learn it from messages).
    pub node: Option<Name>,
    pub ctime: u64,
    pub rbuf: Vec<u8>,
    pub wbuf: Vec<u8>,
    pub closed: bool,
}

pub struct Settings {
    /// The client port we announce (cluster-announce-port, else port).
    pub port: u16,
    /// The bus port we listen on (cluster-port, else port + 10000).
    pub cport: u16,
    /// The bus port we announce (cluster-announce-bus-port, else `cport`).
    pub announced_cport: u16,
    pub announce_ip: String,
    pub hostname: String,
    pub node_timeout: u64,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub config_file: String,
    /// cluster-replica-validity-factor (0: any data age may fail over).
    pub validity_factor: u64,
    /// cluster-replica-no-failover: only a manual failover promotes us.
    pub no_failover: bool,
    /// cluster-allow-replica-migration: a master left without slots, or a
    /// replica whose master was, follows the slots' new owner.
    pub allow_replica_migration: bool,
    /// repl-ping-replica-period in ms (part of the data age limit).
    pub repl_ping_ms: u64,
}

/// A replica's election (clusterState's failover_auth_* fields).
#[derive(Default)]
pub struct Election {
    /// When the election starts (or started); 0: none yet.
    pub auth_time: u64,
    pub auth_count: usize,
    pub auth_sent: bool,
    pub rank: usize,
    pub epoch: u64,
}

/// A manual failover (CLUSTER FAILOVER) on either side: `end` is 0 when
/// none is in progress.
#[derive(Default)]
pub struct ManualFailover {
    pub end: u64,
    /// Replica side: the election may start (offset reached, or FORCE).
    pub can_start: bool,
    /// Master side: the replica that asked (MFSTART).
    pub replica: Option<Name>,
    /// Replica side: the master's offset once it paused its writes.
    pub master_offset: Option<u64>,
    /// Master side: our exact offset with writes paused (set by shard 0).
    pub paused_offset: Option<u64>,
}

/// A replication role change the bus decided; shard 0 applies it with
/// every shard held (the bus thread cannot hold the stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Promote,
    /// host, port; `unpause`: a manual failover paused our writes, resumed
    /// once we are a replica (not before: a held write would run here).
    Follow(String, u16, bool),
}

pub struct State {
    pub set: Settings,
    pub myself: Name,
    pub nodes: HashMap<Name, Node>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub owner: Vec<Option<Name>>,
    pub migrating: HashMap<usize, Name>,
    pub importing: HashMap<usize, Name>,
    pub state_ok: bool,
    pub links: HashMap<u64, Link>,
    pub next_link: u64,
    pub sent: [u64; codec::TYPE_COUNT],
    pub received: [u64; codec::TYPE_COUNT],
    /// Nodes FORGET-ten recently, not re-added from gossip for a minute.
    pub blacklist: HashMap<Name, u64>,
    /// (channel, message) of bus PUBLISH messages, for shard 0 to deliver.
    pub published: Vec<(Vec<u8>, Vec<u8>)>,
    /// The same for PUBLISHSHARD (SPUBLISH on a node of our shard).
    pub published_shard: Vec<(Vec<u8>, Vec<u8>)>,
    /// The slot map or the node table changed: save and republish.
    pub dirty: bool,
    /// Replication offset, refreshed by the bus for the headers.
    pub repl_offset: u64,
    /// Age of the replica's data (ms since the master link last worked),
    /// refreshed with `repl_offset`.
    pub data_age: u64,
    pub election: Election,
    pub mf: ManualFailover,
    pub role_change: Option<RoleChange>,
}

impl State {
    pub fn new(set: Settings) -> State {
        let myself = random_name();
        let mut me = Node::new(myself, nf::MYSELF | nf::MASTER);
        me.ip = set.announce_ip.clone();
        me.port = set.port;
        me.cport = set.announced_cport;
        me.hostname = set.hostname.clone();
        let mut nodes = HashMap::new();
        nodes.insert(myself, me);
        State {
            set,
            myself,
            nodes,
            current_epoch: 0,
            last_vote_epoch: 0,
            owner: vec![None; SLOTS],
            migrating: HashMap::new(),
            importing: HashMap::new(),
            state_ok: false,
            links: HashMap::new(),
            next_link: 1,
            sent: [0; codec::TYPE_COUNT],
            received: [0; codec::TYPE_COUNT],
            blacklist: HashMap::new(),
            published: Vec::new(),
            published_shard: Vec::new(),
            dirty: true,
            repl_offset: 0,
            data_age: 0,
            election: Election::default(),
            mf: ManualFailover::default(),
            role_change: None,
        }
    }

    /// CONFIG SET of cluster-announce-port / -bus-port / -hostname: what
    /// we announce from now on (clusterUpdateMyselfAnnouncedPorts and
    /// clusterUpdateMyselfHostname).
    pub fn set_announced(&mut self, port: u16, cport: u16, hostname: &str) {
        if (self.set.port, self.set.announced_cport) == (port, cport)
            && self.set.hostname == hostname
        {
            return;
        }
        self.set.port = port;
        self.set.announced_cport = cport;
        self.set.hostname = hostname.to_string();
        let me = self.me_mut();
        me.port = port;
        me.cport = cport;
        me.hostname = hostname.to_string();
        self.dirty = true;
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }
    pub fn me_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.myself).unwrap()
    }

    /// The master whose slots this node serves: itself or its master.
    pub fn my_master(&self) -> Option<&Node> {
        let me = self.me();
        if me.is_master() {
            return Some(me);
        }
        me.slaveof.and_then(|m| self.nodes.get(&m))
    }

    pub fn slots_of(&self, name: &Name) -> Vec<usize> {
        (0..SLOTS)
            .filter(|&s| self.owner[s].as_ref() == Some(name))
            .collect()
    }

    pub fn num_slots(&self, name: &Name) -> usize {
        self.owner
            .iter()
            .filter(|o| o.as_ref() == Some(name))
            .count()
    }

    pub fn slot_bitmap(&self, name: &Name) -> Box<[u8; codec::SLOTS_BYTES]> {
        let mut m = Box::new([0u8; codec::SLOTS_BYTES]);
        for s in 0..SLOTS {
            if self.owner[s].as_ref() == Some(name) {
                codec::set_slot_bit(&mut m, s);
            }
        }
        m
    }

    pub fn replicas_of(&self, name: &Name) -> Vec<Name> {
        let mut v: Vec<Name> = self
            .nodes
            .values()
            .filter(|n| n.is_slave() && n.slaveof.as_ref() == Some(name))
            .map(|n| n.name)
            .collect();
        v.sort_unstable();
        v
    }

    /// Nodes in a stable order (by name), myself included.
    pub fn sorted(&self) -> Vec<&Node> {
        let mut v: Vec<&Node> = self.nodes.values().collect();
        v.sort_unstable_by_key(|n| n.name);
        v
    }

    pub fn del_node_slots(&mut self, name: &Name) {
        for o in self.owner.iter_mut() {
            if o.as_ref() == Some(name) {
                *o = None;
            }
        }
    }

    /// Removes a node: its slots, links, migrations and failure reports.
    pub fn del_node(&mut self, name: &Name) {
        self.del_node_slots(name);
        self.migrating.retain(|_, n| n != name);
        self.importing.retain(|_, n| n != name);
        if let Some(n) = self.nodes.remove(name)
            && let Some(l) = n.link
            && let Some(l) = self.links.get_mut(&l)
        {
            l.closed = true;
        }
        for l in self.links.values_mut() {
            if l.node.as_ref() == Some(name) {
                l.closed = true;
            }
        }
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| r != name);
        }
        self.dirty = true;
    }

    pub fn set_node_as_master(&mut self, name: &Name) {
        if let Some(n) = self.nodes.get_mut(name)
            && !n.is_master()
        {
            n.flags &= !nf::SLAVE;
            n.flags |= nf::MASTER;
            n.slaveof = None;
            self.dirty = true;
        }
    }

    /// Recomputes cluster_state (clusterUpdateState without the rejoin
    /// delay): every slot served by a reachable node when full coverage is
    /// required, and a majority of the slot-owning masters reachable.
    pub fn update_state(&mut self) {
        let mut ok = true;
        if self.set.require_full_coverage {
            for o in &self.owner {
                match o.and_then(|n| self.nodes.get(&n)) {
                    Some(n) if !n.failed() => {}
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        let masters: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.is_master() && self.owner.contains(&Some(n.name)))
            .collect();
        let size = masters.len();
        let reachable = masters
            .iter()
            .filter(|n| n.flags & (nf::FAIL | nf::PFAIL) == 0)
            .count();
        if reachable < size / 2 + 1 {
            ok = false;
        }
        if ok != self.state_ok {
            crate::log::notice(&format!(
                "Cluster state changed: {}",
                if ok { "ok" } else { "fail" }
            ));
            self.state_ok = ok;
            self.dirty = true;
        }
    }

    /// Masters serving at least one slot.
    pub fn size(&self) -> usize {
        let mut owners: Vec<Name> = self.owner.iter().flatten().copied().collect();
        owners.sort_unstable();
        owners.dedup();
        owners.len()
    }

    /// The config epoch a node advertises: its master's for a replica.
    pub fn node_epoch(&self, n: &Node) -> u64 {
        if n.is_slave()
            && let Some(m) = n.slaveof.and_then(|m| self.nodes.get(&m))
        {
            return m.config_epoch;
        }
        n.config_epoch
    }

    pub fn max_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// clusterBumpConfigEpochWithoutConsensus: true when bumped.
    pub fn bump_epoch(&mut self) -> bool {
        let max = self.max_epoch();
        let me = self.me();
        if me.config_epoch == 0 || me.config_epoch != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.dirty = true;
            return true;
        }
        false
    }

    /// One line of CLUSTER NODES / nodes.conf (without the newline).
    pub fn node_line(&self, n: &Node, with_migrations: bool) -> String {
        let mut s = format!("{} {}:{}@{}", name_str(&n.name), n.ip, n.port, n.cport);
        if !n.hostname.is_empty() {
            s += &format!(",{}", n.hostname);
        }
        s.push(' ');
        s += &flags_text(n.flags);
        s.push(' ');
        match &n.slaveof {
            Some(m) => s += name_str(m),
            None => s.push('-'),
        }
        let connected = n.flags & nf::MYSELF != 0 || n.link.is_some();
        s += &format!(
            " {} {} {} {}",
            n.ping_sent,
            n.pong_received,
            self.node_epoch(n),
            if connected {
                "connected"
            } else {
                "disconnected"
            }
        );
        for (a, b) in ranges(&self.slots_of(&n.name)) {
            if a == b {
                s += &format!(" {a}");
            } else {
                s += &format!(" {a}-{b}");
            }
        }
        if with_migrations && n.name == self.myself {
            let mut m: Vec<_> = self.migrating.iter().collect();
            m.sort();
            for (slot, to) in m {
                s += &format!(" [{slot}->-{}]", name_str(to));
            }
            let mut i: Vec<_> = self.importing.iter().collect();
            i.sort();
            for (slot, from) in i {
                s += &format!(" [{slot}-<-{}]", name_str(from));
            }
        }
        s
    }

    pub fn nodes_text(&self) -> String {
        let mut s = String::new();
        for n in self.sorted() {
            s += &self.node_line(n, true);
            s.push('\n');
        }
        s
    }

    /// Writes nodes.conf atomically: a temporary file, fsync, rename.
    pub fn save(&self) -> std::io::Result<()> {
        use std::io::Write;
        let mut text = String::new();
        for n in self.sorted() {
            if n.in_handshake() {
                continue;
            }
            text += &self.node_line(n, true);
            text.push('\n');
        }
        text += &format!(
            "vars currentEpoch {} lastVoteEpoch {}\n",
            self.current_epoch, self.last_vote_epoch
        );
        let path = std::path::Path::new(&self.set.config_file);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Loads nodes.conf; Ok(false) when there is none (a new node).
    pub fn load(&mut self) -> Result<bool, String> {
        let text = match std::fs::read_to_string(&self.set.config_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("cluster config {}: {e}", self.set.config_file)),
        };
        if text.trim().is_empty() {
            return Ok(false);
        }
        let bad =
            |line: &str| format!("Unrecoverable error: corrupted cluster config file \"{line}\".");
        let mut nodes = HashMap::new();
        let mut owner = vec![None; SLOTS];
        let mut myself = None;
        let (mut migrating, mut importing) = (HashMap::new(), HashMap::new());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let w: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
            if w[0] == "vars" {
                let mut i = 1;
                while i + 1 < w.len() {
                    let v: u64 = w[i + 1].parse().map_err(|_| bad(line))?;
                    match w[i] {
                        "currentEpoch" => self.current_epoch = v,
                        "lastVoteEpoch" => self.last_vote_epoch = v,
                        _ => {}
                    }
                    i += 2;
                }
                continue;
            }
            if w.len() < 8 {
                return Err(bad(line));
            }
            let name = parse_name(w[0].as_bytes()).ok_or_else(|| bad(line))?;
            let (addr, hostname) = w[1].split_once(',').unwrap_or((w[1], ""));
            let (hp, cport) = addr.split_once('@').ok_or_else(|| bad(line))?;
            let (ip, port) = hp.rsplit_once(':').ok_or_else(|| bad(line))?;
            let mut n = Node::new(name, parse_flags(w[2]));
            n.ip = ip.to_string();
            n.port = port.parse().map_err(|_| bad(line))?;
            n.cport = cport.parse().map_err(|_| bad(line))?;
            n.hostname = hostname.to_string();
            if w[3] != "-" {
                n.slaveof = Some(parse_name(w[3].as_bytes()).ok_or_else(|| bad(line))?);
            }
            n.config_epoch = w[6].parse().map_err(|_| bad(line))?;
            n.flags &= !(nf::PFAIL | nf::HANDSHAKE);
            if n.flags & nf::MYSELF != 0 {
                myself = Some(name);
            }
            for s in &w[8..] {
                if let Some(m) = s.strip_prefix('[').and_then(|m| m.strip_suffix(']')) {
                    let (slot, to, map) = if let Some((a, b)) = m.split_once("->-") {
                        (a, b, &mut migrating)
                    } else if let Some((a, b)) = m.split_once("-<-") {
                        (a, b, &mut importing)
                    } else {
                        return Err(bad(line));
                    };
                    let slot: usize = slot.parse().map_err(|_| bad(line))?;
                    let to = parse_name(to.as_bytes()).ok_or_else(|| bad(line))?;
                    if slot >= SLOTS {
                        return Err(bad(line));
                    }
                    map.insert(slot, to);
                    continue;
                }
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let (a, b): (usize, usize) = (
                    a.parse().map_err(|_| bad(line))?,
                    b.parse().map_err(|_| bad(line))?,
                );
                if a > b || b >= SLOTS {
                    return Err(bad(line));
                }
                for o in &mut owner[a..=b] {
                    *o = Some(name);
                }
            }
            nodes.insert(name, n);
        }
        let Some(me) = myself else {
            return Err("Unrecoverable error: the cluster config file has no myself node".into());
        };
        // Our own address comes from the config, not the file.
        let n = nodes.get_mut(&me).unwrap();
        n.port = self.set.port;
        n.cport = self.set.announced_cport;
        n.hostname = self.set.hostname.clone();
        if !self.set.announce_ip.is_empty() {
            n.ip = self.set.announce_ip.clone();
        }
        self.myself = me;
        self.nodes = nodes;
        self.owner = owner;
        self.migrating = migrating;
        self.importing = importing;
        self.current_epoch = self.current_epoch.max(self.max_epoch());
        Ok(true)
    }

    /// CLUSTER INFO's text.
    pub fn info_text(&self) -> String {
        let assigned = self.owner.iter().filter(|o| o.is_some()).count();
        let (mut pfail, mut fail) = (0, 0);
        for o in self.owner.iter().flatten() {
            match self.nodes.get(o) {
                Some(n) if n.failed() => fail += 1,
                Some(n) if n.flags & nf::PFAIL != 0 => pfail += 1,
                _ => {}
            }
        }
        let mut s = format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{}\r\n\
             cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\n\
             cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
            if self.state_ok { "ok" } else { "fail" },
            assigned - pfail - fail,
            self.nodes.len(),
            self.size(),
            self.current_epoch,
            self.node_epoch(self.me()),
        );
        for (dir, counts) in [("sent", &self.sent), ("received", &self.received)] {
            let mut total = 0;
            for (t, &c) in counts.iter().enumerate() {
                if c > 0 {
                    s += &format!(
                        "cluster_stats_messages_{}_{dir}:{c}\r\n",
                        codec::TYPE_NAMES[t]
                    );
                    total += c;
                }
            }
            s += &format!("cluster_stats_messages_{dir}:{total}\r\n");
        }
        s += "total_cluster_links_buffer_limit_exceeded:0\r\n";
        s
    }

    /// CLUSTER RESET: forget every other node and every slot; HARD also
    /// zeroes the epochs and takes a new name. (The caller flushed the
    /// data and stopped replication.)
    pub fn reset(&mut self, hard: bool) {
        let others: Vec<Name> = self
            .nodes
            .keys()
            .filter(|n| **n != self.myself)
            .copied()
            .collect();
        for n in others {
            self.del_node(&n);
        }
        self.owner.iter_mut().for_each(|o| *o = None);
        self.migrating.clear();
        self.importing.clear();
        let me = self.myself;
        self.set_node_as_master(&me);
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            let mut n = self.nodes.remove(&me).unwrap();
            n.config_epoch = 0;
            n.name = random_name();
            self.myself = n.name;
            self.nodes.insert(n.name, n);
        }
        self.dirty = true;
    }

    /// Starts a handshake with ip:port (CLUSTER MEET, gossip): false when
    /// the address is invalid.
    pub fn start_handshake(&mut self, ip: &str, port: u16, cport: u16) -> bool {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            return false;
        };
        if port == 0 || cport == 0 {
            return false;
        }
        let ip = addr.to_string();
        if self
            .nodes
            .values()
            .any(|n| n.in_handshake() && n.ip == ip && n.port == port && n.cport == cport)
        {
            return true;
        }
        let mut n = Node::new(random_name(), nf::HANDSHAKE | nf::MEET);
        n.ip = ip;
        n.port = port;
        n.cport = cport;
        self.nodes.insert(n.name, n);
        self.dirty = true;
        true
    }
}

pub fn flags_text(f: u16) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (nf::MYSELF, "myself"),
        (nf::MASTER, "master"),
        (nf::SLAVE, "slave"),
        (nf::PFAIL, "fail?"),
        (nf::FAIL, "fail"),
        (nf::HANDSHAKE, "handshake"),
        (nf::NOADDR, "noaddr"),
        (nf::NOFAILOVER, "nofailover"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        "noflags".into()
    } else {
        v.join(",")
    }
}

pub fn parse_flags(s: &str) -> u16 {
    let mut f = 0;
    for w in s.split(',') {
        f |= match w {
            "myself" => nf::MYSELF,
            "master" => nf::MASTER,
            "slave" => nf::SLAVE,
            "fail?" => nf::PFAIL,
            "fail" => nf::FAIL,
            "handshake" => nf::HANDSHAKE,
            "noaddr" => nf::NOADDR,
            "nofailover" => nf::NOFAILOVER,
            _ => 0,
        };
    }
    f
}

/// Sorted slots to inclusive runs.
pub fn ranges(slots: &[usize]) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = Vec::new();
    for &s in slots {
        match v.last_mut() {
            Some(r) if r.1 + 1 == s => r.1 = s,
            _ => v.push((s, s)),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(file: &str) -> Settings {
        Settings {
            port: 7000,
            cport: 17000,
            announced_cport: 17000,
            announce_ip: "127.0.0.1".into(),
            hostname: String::new(),
            node_timeout: 15000,
            require_full_coverage: true,
            allow_reads_when_down: false,
            config_file: file.into(),
            validity_factor: 10,
            no_failover: false,
            allow_replica_migration: true,
            repl_ping_ms: 10_000,
        }
    }

    #[test]
    fn nodes_conf_round_trips() {
        let dir = std::env::temp_dir().join(format!("keel-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("nodes.conf");
        let file = file.to_str().unwrap();
        let mut st = State::new(settings(file));
        let me = st.myself;
        for s in (0..100).chain(200..=300) {
            st.owner[s] = Some(me);
        }
        let other = [b'b'; 40];
        let mut o = Node::new(other, nf::SLAVE);
        o.ip = "127.0.0.1".into();
        o.port = 7001;
        o.cport = 17001;
        o.slaveof = Some(me);
        st.nodes.insert(other, o);
        st.migrating.insert(5, other);
        st.me_mut().config_epoch = 3;
        st.current_epoch = 4;
        st.save().unwrap();
        let mut st2 = State::new(settings(file));
        assert!(st2.load().unwrap());
        assert_eq!(st2.myself, me);
        assert_eq!(st2.nodes_text(), st.nodes_text());
        assert_eq!(st2.current_epoch, 4);
        assert!(st2.nodes_text().contains(" 0-99 200-300 [5->-bbbb"));
        std::fs::write(file, "garbage\n").unwrap();
        assert!(State::new(settings(file)).load().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
