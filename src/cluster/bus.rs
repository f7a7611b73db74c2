//! The cluster bus: one thread (`keel-cluster`) that accepts links on the
//! cluster port, connects to every known node, exchanges PING/PONG/MEET
//! with gossip, FAIL, UPDATE and failover votes, and runs the cluster cron
//! every 100 ms. It polls its non-blocking sockets with poll(2). Each time
//! the state changed it saves nodes.conf and publishes a new slot map
//! snapshot to the shards (`commit`). Received messages are handled in
//! `receive`; elections and manual failovers in `failover`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::codec::{self, Body, Gossip, Msg, Name, flags as nf};
use super::failover;
use super::state::{Link, Node, State, name_str, now_ms};
use crate::server::Server;

/// DEBUG DROP-CLUSTER-PACKET-FILTER: received messages of this type are
/// dropped unprocessed (-1: none), for tests that cut one kind of traffic.
pub static DROP_FILTER: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(-1);

/// Starts the bus thread; Err when the cluster port cannot be bound.
pub fn start(srv: &'static Server) -> Result<(), String> {
    let Some(bus) = srv.cluster.as_ref().and_then(|c| c.bus.as_ref()) else {
        return Ok(());
    };
    let (port, binds) = {
        let st = bus.lock().unwrap();
        let c = srv.config.read().unwrap();
        let binds: Vec<(String, bool)> = c
            .get("bind")
            .split_whitespace()
            .map(|a| match a.strip_prefix('-') {
                Some(a) => (a.to_string(), true),
                None => (a.to_string(), false),
            })
            .map(|(a, opt)| match a.as_str() {
                "*" => ("0.0.0.0".to_string(), opt),
                "::*" => ("::".to_string(), opt),
                _ => (a, opt),
            })
            .collect();
        (st.set.cport, binds)
    };
    // The bus listens where the clients' port does, like Redis.
    let mut listeners = Vec::new();
    for (addr, optional) in binds {
        match TcpListener::bind((addr.as_str(), port)) {
            Ok(l) => {
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                listeners.push(l);
            }
            Err(_) if optional => {}
            Err(e) => {
                return Err(format!(
                    "Could not bind the cluster bus port {addr}:{port}: {e}"
                ));
            }
        }
    }
    if listeners.is_empty() {
        return Err(format!("Could not bind the cluster bus port {port}"));
    }
    std::thread::Builder::new()
        .name("keel-cluster".into())
        .spawn(move || run(srv, listeners))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn run(srv: &'static Server, listeners: Vec<TcpListener>) {
    let cluster = srv.cluster.as_ref().unwrap();
    let bus = cluster.bus.as_ref().unwrap();
    let mut last_cron = 0u64;
    let mut iteration = 0u64;
    loop {
        let (mut fds, ids) = {
            let st = bus.lock().unwrap();
            let mut fds: Vec<libc::pollfd> = listeners
                .iter()
                .map(|l| libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let mut ids = Vec::new();
            for (&id, l) in &st.links {
                let mut events = libc::POLLIN;
                if !l.wbuf.is_empty() {
                    events |= libc::POLLOUT;
                }
                fds.push(libc::pollfd {
                    fd: l.stream.as_raw_fd(),
                    events,
                    revents: 0,
                });
                ids.push(id);
            }
            (fds, ids)
        };
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        let mut st = bus.lock().unwrap();
        for (i, listener) in listeners.iter().enumerate() {
            if fds[i].revents == 0 {
                continue;
            }
            while let Ok((s, _)) = listener.accept() {
                if s.set_nonblocking(true).is_ok() {
                    let _ = s.set_nodelay(true);
                    add_link(&mut st, s, true, None);
                }
            }
        }
        let nl = listeners.len();
        for (i, id) in ids.iter().enumerate() {
            if fds[i + nl].revents != 0 {
                read_link(&mut st, *id);
            }
        }
        let now = now_ms();
        if now.saturating_sub(last_cron) >= 100 {
            last_cron = now;
            refresh_replication(&mut st, now);
            let to_connect = cron(&mut st, iteration);
            iteration += 1;
            if !to_connect.is_empty() {
                flush_and_reap(&mut st);
                commit(srv, &mut st);
                drop(st);
                let timeout = bus.lock().unwrap().set.node_timeout.clamp(10, 200);
                let links: Vec<_> = to_connect
                    .into_iter()
                    .map(|(name, ip, cport)| (name, connect(&ip, cport, timeout)))
                    .collect();
                st = bus.lock().unwrap();
                for (name, stream) in links {
                    attach(&mut st, name, stream);
                }
            }
        }
        flush_and_reap(&mut st);
        commit(srv, &mut st);
        if srv.shutdown.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
    }
}

/// Our replication offset and the age of our data as a replica (how long
/// ago the master link last worked; never up: too old to fail over).
fn refresh_replication(st: &mut State, now: u64) {
    use crate::replication::replica::LinkState;
    let Some(r) = crate::replication::master::repl() else {
        return;
    };
    let g = r.lock();
    st.repl_offset = g.offset.max(0) as u64;
    st.data_age = match &g.replica.of {
        Some(l) if l.state == LinkState::Connected => now.saturating_sub(l.last_io_ms),
        Some(l) if l.down_since_ms != 0 => now.saturating_sub(l.down_since_ms),
        _ => u64::MAX / 4,
    };
}

/// After a change: save nodes.conf and publish the slot map to the shards.
pub fn commit(srv: &Server, st: &mut State) {
    if !st.dirty {
        return;
    }
    st.update_state();
    st.dirty = false;
    if let Err(e) = st.save() {
        crate::log::warning(&format!("Could not save the cluster config: {e}"));
    }
    if let Some(c) = &srv.cluster {
        c.publish(snapshot(st));
    }
}

/// The routing view the shards consult.
pub fn snapshot(st: &State) -> crate::server::cluster::ClusterMap {
    use crate::server::cluster::{ClusterMap, Node as MapNode};
    let sorted: Vec<&Node> = st
        .sorted()
        .into_iter()
        .filter(|n| !n.in_handshake())
        .collect();
    let index = |name: &Name| sorted.iter().position(|n| n.name == *name);
    let owner: Vec<Option<usize>> = st
        .owner
        .iter()
        .map(|o| o.as_ref().and_then(index))
        .collect();
    let nodes = sorted
        .iter()
        .map(|n| MapNode {
            host: n.ip.clone(),
            port: n.port,
            id: name_str(&n.name).to_string(),
            epoch: n.config_epoch,
        })
        .collect();
    ClusterMap::from_parts(
        nodes,
        index(&st.myself).unwrap_or(0),
        owner,
        st.state_ok,
        st.set.allow_reads_when_down,
    )
    .with_master(
        st.me()
            .slaveof
            .filter(|_| st.me().is_slave())
            .and_then(|m| index(&m)),
    )
    .with_open_slots(
        st.migrating
            .iter()
            .filter_map(|(&s, n)| Some((s, index(n)?))),
        st.importing
            .iter()
            .filter_map(|(&s, n)| Some((s, index(n)?))),
    )
}

fn add_link(st: &mut State, stream: TcpStream, inbound: bool, node: Option<Name>) -> u64 {
    let id = st.next_link;
    st.next_link += 1;
    st.links.insert(
        id,
        Link {
            stream,
            inbound,
            node,
            ctime: now_ms(),
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            closed: false,
        },
    );
    id
}

fn read_link(st: &mut State, id: u64) {
    let mut buf = [0u8; 16384];
    loop {
        let Some(l) = st.links.get_mut(&id) else {
            return;
        };
        match l.stream.read(&mut buf) {
            Ok(0) => {
                l.closed = true;
                break;
            }
            Ok(n) => l.rbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                l.closed = true;
                break;
            }
        }
    }
    loop {
        let Some(l) = st.links.get_mut(&id) else {
            return;
        };
        if l.closed && l.rbuf.is_empty() {
            return;
        }
        let len = match codec::frame_len(&l.rbuf) {
            None => return,
            Some(Err(_)) => {
                l.closed = true;
                return;
            }
            Some(Ok(len)) => len,
        };
        if l.rbuf.len() < len {
            return;
        }
        let frame: Vec<u8> = l.rbuf.drain(..len).collect();
        let typ = u16::from_be_bytes([frame[12], frame[13]]) as usize;
        if typ < codec::TYPE_COUNT {
            st.received[typ] += 1;
        }
        if typ as i64 == DROP_FILTER.load(std::sync::atomic::Ordering::Relaxed) {
            crate::log::warning("Dropping packet that matches debug drop filter");
            continue;
        }
        // A malformed message is dropped; the link stays, as in Redis.
        if let Ok(m) = codec::decode(&frame) {
            super::receive::process(st, id, m);
        }
    }
}

fn flush_and_reap(st: &mut State) {
    for l in st.links.values_mut() {
        while !l.wbuf.is_empty() && !l.closed {
            match l.stream.write(&l.wbuf) {
                Ok(0) => l.closed = true,
                Ok(n) => {
                    l.wbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => l.closed = true,
            }
        }
    }
    let closed: Vec<u64> = st
        .links
        .iter()
        .filter(|(_, l)| l.closed)
        .map(|(&id, _)| id)
        .collect();
    for id in closed {
        drop_link(st, id);
    }
}

/// Closes a link now (freeClusterLink): nothing queued on it is sent.
pub(super) fn drop_link(st: &mut State, id: u64) {
    st.links.remove(&id);
    for n in st.nodes.values_mut() {
        if n.link == Some(id) {
            n.link = None;
        }
    }
}

/// DEBUG CLUSTERLINK KILL: closes our link to `name` (`to`), its link to us
/// (`from`), or both; the cron connects again.
pub fn kill_links(st: &mut State, name: &Name, to: bool, from: bool) {
    let ids: Vec<u64> = st
        .links
        .iter()
        .filter(|(_, l)| l.node == Some(*name) && if l.inbound { from } else { to })
        .map(|(&id, _)| id)
        .collect();
    for id in ids {
        drop_link(st, id);
    }
}

pub(super) fn header(st: &State, typ: u16) -> Msg {
    let me = st.me();
    let master = me
        .slaveof
        .filter(|_| me.is_slave())
        .and_then(|m| st.nodes.get(&m));
    let mut m = Msg::new(typ);
    m.port = st.set.port;
    m.cport = st.set.announced_cport;
    m.current_epoch = st.current_epoch;
    m.config_epoch = master.map_or(me.config_epoch, |m| m.config_epoch);
    m.offset = st.repl_offset;
    m.sender = st.myself;
    m.myslots = st.slot_bitmap(&master.map_or(st.myself, |m| m.name));
    if me.is_slave()
        && let Some(s) = me.slaveof
    {
        m.slaveof = s;
    }
    m.myip = st.set.announce_ip.clone();
    m.flags = me.flags;
    m.state = if st.state_ok { 0 } else { 1 };
    // A master in a manual failover: writes paused at this offset.
    if me.is_master()
        && st.mf.end != 0
        && let Some(off) = st.mf.paused_offset
    {
        m.mflags[0] |= codec::MF_PAUSED;
        m.offset = off;
    }
    m
}

pub(super) fn send(st: &mut State, link: u64, m: &Msg) {
    let bytes = codec::encode(m);
    if let Some(l) = st.links.get_mut(&link) {
        l.wbuf.extend_from_slice(&bytes);
        if (m.typ as usize) < codec::TYPE_COUNT {
            st.sent[m.typ as usize] += 1;
        }
    }
}

fn gossip_entry(n: &Node) -> Gossip {
    Gossip {
        name: n.name,
        ping_sent: (n.ping_sent / 1000) as u32,
        pong_received: (n.pong_received / 1000) as u32,
        ip: n.ip.clone(),
        port: n.port,
        cport: n.cport,
        flags: n.flags,
        pport: n.pport,
    }
}

/// PING, PONG or MEET with a gossip section about the other known nodes.
pub(super) fn send_ping(st: &mut State, link: u64, typ: u16) {
    let mut m = header(st, typ);
    let target = st.links.get(&link).and_then(|l| l.node);
    let gossip: Vec<Gossip> = st
        .nodes
        .values()
        .filter(|n| n.name != st.myself && Some(n.name) != target)
        .filter(|n| n.flags & (nf::HANDSHAKE | nf::NOADDR) == 0)
        .filter(|n| n.link.is_some() || st.owner.contains(&Some(n.name)) || n.is_slave())
        .map(gossip_entry)
        .collect();
    m.body = Body::Ping {
        gossip,
        hostname: Some(st.set.hostname.clone()),
    };
    if typ == codec::PING
        && let Some(l) = st.links.get(&link)
        && !l.inbound
        && let Some(n) = l.node.and_then(|n| st.nodes.get_mut(&n))
    {
        n.ping_sent = now_ms();
    }
    send(st, link, &m);
}

/// The links to every other node past its handshake.
fn peer_links(st: &State) -> Vec<u64> {
    st.nodes
        .values()
        .filter(|n| n.name != st.myself && !n.in_handshake())
        .filter_map(|n| n.link)
        .collect()
}

pub(super) fn broadcast(st: &mut State, m: &Msg) {
    let links = peer_links(st);
    for l in links {
        send(st, l, m);
    }
}

/// PUBLISH on this node: every other node delivers it to its own
/// subscribers (Redis's clusterPropagatePublish).
pub fn publish(st: &mut State, channel: &[u8], message: &[u8]) {
    let mut m = header(st, codec::PUBLISH);
    m.body = Body::Publish {
        channel: channel.to_vec(),
        message: message.to_vec(),
    };
    broadcast(st, &m);
}

/// SPUBLISH on this node: the other nodes serving our slots (our master,
/// its replicas) deliver it to their shard channel subscribers.
pub fn publish_shard(st: &mut State, channel: &[u8], message: &[u8]) {
    let mut m = header(st, codec::PUBLISHSHARD);
    m.body = Body::Publish {
        channel: channel.to_vec(),
        message: message.to_vec(),
    };
    let master = if st.me().is_master() {
        st.myself
    } else {
        match st.me().slaveof {
            Some(m) => m,
            None => return,
        }
    };
    let links: Vec<u64> = st
        .nodes
        .values()
        .filter(|n| n.name != st.myself && !n.in_handshake())
        .filter(|n| n.name == master || (n.is_slave() && n.slaveof == Some(master)))
        .filter_map(|n| n.link)
        .collect();
    for l in links {
        send(st, l, &m);
    }
}

pub fn broadcast_pong(st: &mut State) {
    let links = peer_links(st);
    for l in links {
        send_ping(st, l, codec::PONG);
    }
}

/// A new outbound link to `name` (MEET or PING on it), or a failed attempt
/// (which starts the failure-detection clock).
fn attach(st: &mut State, name: Name, stream: Option<TcpStream>) {
    let Some(n) = st.nodes.get_mut(&name) else {
        return;
    };
    if n.link.is_some() {
        return;
    }
    let Some(s) = stream else {
        if n.ping_sent == 0 {
            n.ping_sent = now_ms();
        }
        return;
    };
    let meet = n.flags & nf::MEET != 0;
    n.flags &= !nf::MEET;
    let old_ping_sent = n.ping_sent;
    let id = add_link(st, s, false, Some(name));
    st.nodes.get_mut(&name).unwrap().link = Some(id);
    send_ping(st, id, if meet { codec::MEET } else { codec::PING });
    if old_ping_sent != 0 {
        st.nodes.get_mut(&name).unwrap().ping_sent = old_ping_sent;
    }
}

fn connect(ip: &str, cport: u16, timeout: u64) -> Option<TcpStream> {
    let addr: SocketAddr = format!("{ip}:{cport}")
        .parse()
        .or_else(|_| format!("[{ip}]:{cport}").parse())
        .ok()?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_millis(timeout)).ok()?;
    s.set_nonblocking(true).ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}

/// clusterCron: links, handshakes, pings, PFAIL. Returns the nodes to
/// connect to (done without the lock: a connect can take a while).
fn cron(st: &mut State, iteration: u64) -> Vec<(Name, String, u16)> {
    let mut to_connect = Vec::new();
    let now = now_ms();
    let timeout = st.set.node_timeout;
    let handshake_timeout = timeout.max(1000);
    st.blacklist.retain(|_, t| *t > now);
    let names: Vec<Name> = st.nodes.keys().copied().collect();
    for name in &names {
        let Some(n) = st.nodes.get(name) else {
            continue;
        };
        if n.flags & (nf::MYSELF | nf::NOADDR) != 0 {
            continue;
        }
        if n.in_handshake() && now.saturating_sub(n.ctime) > handshake_timeout {
            st.del_node(name);
            continue;
        }
        if n.link.is_some() {
            continue;
        }
        to_connect.push((*name, n.ip.clone(), n.cport));
    }
    // Once a second: ping the node with the oldest pong among a few.
    if iteration.is_multiple_of(10) {
        let mut best: Option<(u64, Name)> = None;
        for _ in 0..5 {
            let Some(n) = st.nodes.values().nth(fastrand::usize(0..st.nodes.len())) else {
                break;
            };
            if n.link.is_none() || n.ping_sent != 0 || n.flags & (nf::MYSELF | nf::HANDSHAKE) != 0 {
                continue;
            }
            if best.is_none_or(|(p, _)| n.pong_received < p) {
                best = Some((n.pong_received, n.name));
            }
        }
        if let Some((_, name)) = best
            && let Some(l) = st.nodes[&name].link
        {
            send_ping(st, l, codec::PING);
        }
    }
    for name in &names {
        let Some(n) = st.nodes.get(name) else {
            continue;
        };
        if n.flags & (nf::MYSELF | nf::NOADDR | nf::HANDSHAKE) != 0 {
            continue;
        }
        // A link that answers nothing for half the timeout is re-opened.
        if let Some(l) = n.link
            && let Some(link) = st.links.get(&l)
            && now.saturating_sub(link.ctime) > timeout
            && n.ping_sent != 0
            && now.saturating_sub(n.ping_sent) > timeout / 2
            && now.saturating_sub(n.data_received) > timeout / 2
        {
            st.links.get_mut(&l).unwrap().closed = true;
        }
        let n = &st.nodes[name];
        if let Some(l) = n.link
            && n.ping_sent == 0
            && now.saturating_sub(n.pong_received) > timeout / 2
        {
            send_ping(st, l, codec::PING);
        }
        let n = st.nodes.get_mut(name).unwrap();
        if n.ping_sent == 0 {
            continue;
        }
        let delay = now
            .saturating_sub(n.ping_sent)
            .min(now.saturating_sub(n.data_received));
        if delay > timeout && n.flags & (nf::PFAIL | nf::FAIL) == 0 {
            crate::log::notice(&format!("*** NODE {} possibly failing", name_str(name)));
            n.flags |= nf::PFAIL;
            st.dirty = true;
        }
    }
    st.update_state();
    failover::check_manual_timeout(st);
    failover::ping_manual_replica(st);
    if st.me().is_slave() {
        failover::handle_manual(st);
        failover::handle_replica_failover(st);
    }
    to_connect
}
