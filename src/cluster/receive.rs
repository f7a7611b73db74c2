//! What the bus does with a received message (clusterProcessPacket):
//! handshakes and address updates, gossip sections, PFAIL/FAIL reports,
//! UPDATE and stale slot claims, config epoch collisions, votes for
//! replicas. The bus thread (`bus`) reads the frames and calls `process`.

use super::bus::{broadcast, drop_link, header, send, send_ping};
use super::codec::{self, Body, Msg, NULL_NAME, Name, flags as nf};
use super::failover;
use super::state::{Node, SLOTS, State, name_str, now_ms};

fn peer_ip(st: &State, link: u64) -> Option<String> {
    let l = st.links.get(&link)?;
    l.stream.peer_addr().ok().map(|a| a.ip().to_string())
}

/// The sender's address as this link sees it: announced IP or the peer's.
fn sender_ip(st: &State, link: u64, m: &Msg) -> Option<String> {
    if !m.myip.is_empty() {
        return Some(m.myip.clone());
    }
    peer_ip(st, link)
}

pub(super) fn process(st: &mut State, link: u64, m: Msg) {
    let now = now_ms();
    let Some(l) = st.links.get(&link) else {
        return;
    };
    let (inbound, link_node) = (l.inbound, l.node);
    let sender: Option<Name> = match link_node {
        Some(n) if st.nodes.get(&n).is_some_and(|n| !n.in_handshake()) => Some(n),
        _ => st.nodes.contains_key(&m.sender).then_some(m.sender),
    };
    if let Some(s) = sender {
        st.nodes.get_mut(&s).unwrap().data_received = now;
        if inbound && link_node != Some(s) {
            // One inbound link per node (setClusterNodeToInboundClusterLink):
            // an older one from a peer that reconnected goes.
            let old: Vec<u64> = st
                .links
                .iter()
                .filter(|&(&id, l)| id != link && l.inbound && l.node == Some(s))
                .map(|(&id, _)| id)
                .collect();
            for id in old {
                drop_link(st, id);
            }
            if let Some(l) = st.links.get_mut(&link) {
                l.node = Some(s);
            }
        }
    }
    if let Some(s) = sender
        && !st.nodes[&s].in_handshake()
    {
        if m.current_epoch > st.current_epoch {
            st.current_epoch = m.current_epoch;
            st.dirty = true;
        }
        let n = st.nodes.get_mut(&s).unwrap();
        if m.config_epoch > n.config_epoch {
            n.config_epoch = m.config_epoch;
            st.dirty = true;
        }
        n.repl_offset = m.offset;
        failover::on_header(st, &s, &m);
    }
    let ping_like = matches!(m.typ, codec::PING | codec::PONG | codec::MEET);
    if m.typ == codec::PING || m.typ == codec::MEET {
        if (m.typ == codec::MEET || st.me().ip.is_empty())
            && st.set.announce_ip.is_empty()
            && let Some(Ok(a)) = st.links.get(&link).map(|l| l.stream.local_addr())
        {
            let ip = a.ip().to_string();
            if st.me().ip != ip {
                crate::log::notice(&format!("IP address for this node updated to {ip}"));
                st.me_mut().ip = ip;
                st.dirty = true;
            }
        }
        if sender.is_none()
            && m.typ == codec::MEET
            && let Some(ip) = sender_ip(st, link, &m)
        {
            let mut n = Node::new(super::state::random_name(), nf::HANDSHAKE);
            n.ip = ip;
            n.port = m.port;
            n.pport = m.pport;
            n.cport = m.cport;
            st.nodes.insert(n.name, n);
            st.dirty = true;
        }
        send_ping(st, link, codec::PONG);
    }
    if ping_like {
        if !inbound && let Some(ln) = link_node {
            let in_hs = st.nodes.get(&ln).is_some_and(|n| n.in_handshake());
            if in_hs {
                if let Some(s) = sender {
                    // We already know this node: keep the known one.
                    update_address(st, &s, link, &m);
                    st.del_node(&ln);
                    return;
                }
                let mut n = st.nodes.remove(&ln).unwrap();
                n.name = m.sender;
                n.flags &= !nf::HANDSHAKE;
                n.flags |= m.flags & (nf::MASTER | nf::SLAVE);
                st.nodes.insert(n.name, n);
                if let Some(l) = st.links.get_mut(&link) {
                    l.node = Some(m.sender);
                }
                st.dirty = true;
            } else if ln != m.sender {
                // Another node answers at this address now.
                if let Some(n) = st.nodes.get_mut(&ln) {
                    n.flags |= nf::NOADDR;
                    n.ip.clear();
                    n.port = 0;
                    n.pport = 0;
                    n.cport = 0;
                }
                if let Some(l) = st.links.get_mut(&link) {
                    l.closed = true;
                }
                st.dirty = true;
                return;
            }
        }
        if let Some(s) = sender {
            let n = st.nodes.get_mut(&s).unwrap();
            n.flags = (n.flags & !nf::NOFAILOVER) | (m.flags & nf::NOFAILOVER);
            if m.typ == codec::PING && !n.in_handshake() {
                update_address(st, &s, link, &m);
            }
        }
        if !inbound
            && m.typ == codec::PONG
            && let Some(ln) = st.links.get(&link).and_then(|l| l.node)
            && let Some(n) = st.nodes.get_mut(&ln)
        {
            n.pong_received = now;
            n.ping_sent = 0;
            if n.flags & nf::PFAIL != 0 {
                n.flags &= !nf::PFAIL;
                st.dirty = true;
            } else if n.failed() {
                clear_failure_if_needed(st, &ln);
            }
        }
        let Some(s) = sender else {
            return;
        };
        if m.slaveof == NULL_NAME {
            st.set_node_as_master(&s);
        } else {
            if st.nodes[&s].is_master() {
                st.del_node_slots(&s);
                let n = st.nodes.get_mut(&s).unwrap();
                n.flags &= !(nf::MASTER | nf::MIGRATE_TO);
                n.flags |= nf::SLAVE;
                st.dirty = true;
            }
            if st.nodes.contains_key(&m.slaveof) && st.nodes[&s].slaveof != Some(m.slaveof) {
                st.nodes.get_mut(&s).unwrap().slaveof = Some(m.slaveof);
                st.dirty = true;
            }
        }
        let sender_master = if st.nodes[&s].is_master() {
            Some(s)
        } else {
            st.nodes[&s].slaveof.filter(|m| st.nodes.contains_key(m))
        };
        let dirty_slots = sender_master.is_some_and(|sm| *st.slot_bitmap(&sm) != *m.myslots);
        if dirty_slots && st.nodes[&s].is_master() {
            update_slots_config_with(st, s, m.config_epoch, &m.myslots);
        }
        if dirty_slots {
            // The sender claims slots a newer config gives to another node.
            for j in 0..SLOTS {
                if !codec::slot_bit(&m.myslots, j) {
                    continue;
                }
                let Some(o) = st.owner[j] else { continue };
                if o == s {
                    continue;
                }
                if st.nodes[&o].config_epoch > m.config_epoch {
                    send_update(st, &s, &o);
                    break;
                }
            }
        }
        if st.me().is_master() && st.nodes[&s].is_master() && m.config_epoch == st.me().config_epoch
        {
            epoch_collision(st, &s);
        }
        process_gossip(st, Some(s), &m);
        if let Body::Ping {
            hostname: Some(h), ..
        } = &m.body
        {
            let n = st.nodes.get_mut(&s).unwrap();
            if n.hostname != *h {
                n.hostname = h.clone();
                st.dirty = true;
            }
        }
        return;
    }
    let Some(s) = sender else {
        return;
    };
    match (&m.body, m.typ) {
        (Body::Publish { channel, message }, codec::PUBLISH) => {
            st.published.push((channel.clone(), message.clone()));
        }
        (Body::Publish { channel, message }, codec::PUBLISHSHARD) => {
            st.published_shard.push((channel.clone(), message.clone()));
        }
        (Body::Fail { about }, _) => {
            if let Some(n) = st.nodes.get_mut(about)
                && n.flags & (nf::FAIL | nf::MYSELF) == 0
            {
                crate::log::notice(&format!(
                    "FAIL message received from {} about {}",
                    name_str(&s),
                    name_str(about)
                ));
                n.flags |= nf::FAIL;
                n.flags &= !nf::PFAIL;
                n.fail_time = now;
                st.dirty = true;
            }
        }
        (
            Body::Update {
                config_epoch,
                name,
                slots,
            },
            _,
        ) => {
            let Some(n) = st.nodes.get(name) else { return };
            if n.config_epoch >= *config_epoch {
                return;
            }
            let name = *name;
            st.set_node_as_master(&name);
            st.nodes.get_mut(&name).unwrap().config_epoch = *config_epoch;
            update_slots_config_with(st, name, *config_epoch, slots);
            st.dirty = true;
        }
        (_, codec::AUTH_REQUEST) => vote_if_needed(st, &s, &m),
        (_, codec::AUTH_ACK) => failover::on_auth_ack(st, &s, &m),
        (_, codec::MFSTART) => failover::on_mfstart(st, &s),
        _ => {}
    }
}

/// A known node's address as its PING shows it; a change drops its link.
fn update_address(st: &mut State, name: &Name, link: u64, m: &Msg) {
    if *name == st.myself {
        return;
    }
    let Some(ip) = sender_ip(st, link, m) else {
        return;
    };
    let n = st.nodes.get_mut(name).unwrap();
    if n.ip == ip && n.port == m.port && n.cport == m.cport {
        return;
    }
    n.ip = ip;
    n.port = m.port;
    n.pport = m.pport;
    n.cport = m.cport;
    n.flags &= !nf::NOADDR;
    if let Some(l) = n.link.take()
        && let Some(l) = st.links.get_mut(&l)
    {
        l.closed = true;
    }
    st.dirty = true;
}

fn send_update(st: &mut State, to: &Name, about: &Name) {
    let Some(link) = st.nodes.get(to).and_then(|n| n.link) else {
        return;
    };
    let mut m = header(st, codec::UPDATE);
    m.body = Body::Update {
        config_epoch: st.nodes[about].config_epoch,
        name: *about,
        slots: st.slot_bitmap(about),
    };
    send(st, link, &m);
}

/// clusterUpdateSlotsConfigWith: slots claimed with a newer config epoch
/// move to `sender`.
fn update_slots_config_with(
    st: &mut State,
    sender: Name,
    epoch: u64,
    slots: &[u8; codec::SLOTS_BYTES],
) {
    if sender == st.myself {
        return;
    }
    let my_master = if st.me().is_master() {
        Some(st.myself)
    } else {
        st.me().slaveof
    };
    let mut lost_master = false;
    let (mut sender_slots, mut migrated_ours) = (0, 0);
    for j in 0..SLOTS {
        if !codec::slot_bit(slots, j) {
            continue;
        }
        sender_slots += 1;
        if st.owner[j] == Some(sender) {
            continue;
        }
        if st.importing.contains_key(&j) {
            continue;
        }
        let older = match st.owner[j] {
            None => true,
            Some(o) => st.nodes.get(&o).is_none_or(|n| n.config_epoch < epoch),
        };
        if older {
            if st.owner[j] == my_master && my_master.is_some() {
                lost_master = true;
                migrated_ours += 1;
            }
            if st.owner[j] == Some(st.myself) {
                crate::log::warning(&format!(
                    "Slot {j} moved to {} by a newer configuration",
                    name_str(&sender)
                ));
            }
            st.owner[j] = Some(sender);
            st.migrating.remove(&j);
            st.dirty = true;
        }
    }
    // Our master (or we) lost its last slot: follow the new owner, unless
    // cluster-allow-replica-migration is off and only part of the sender's
    // slots were ours (then it is a migration, not a failover).
    let grandmaster = st
        .me()
        .slaveof
        .and_then(|m| st.nodes.get(&m))
        .and_then(|m| m.slaveof)
        .filter(|g| *g != st.myself);
    if lost_master
        && let Some(mm) = my_master
        && st.num_slots(&mm) == 0
        && (st.set.allow_replica_migration || sender_slots == migrated_ours)
    {
        crate::log::warning(&format!(
            "Configuration change detected. Reconfiguring myself as a replica of {}",
            name_str(&sender)
        ));
        failover::follow(st, &sender);
    } else if let Some(g) = grandmaster {
        crate::log::warning(&format!(
            "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}",
            name_str(&g)
        ));
        failover::follow(st, &g);
    }
}

/// clusterHandleConfigEpochCollision: of two masters with the same config
/// epoch, the one with the smaller name takes a new epoch.
fn epoch_collision(st: &mut State, other: &Name) {
    if *other <= st.myself {
        return;
    }
    st.current_epoch += 1;
    let e = st.current_epoch;
    st.me_mut().config_epoch = e;
    st.dirty = true;
    crate::log::notice(&format!(
        "WARNING: configEpoch collision with node {}. configEpoch set to {e}",
        name_str(other)
    ));
}

fn process_gossip(st: &mut State, sender: Option<Name>, m: &Msg) {
    let Body::Ping { gossip, .. } = &m.body else {
        return;
    };
    let now = now_ms();
    let sender_is_master = sender.is_some_and(|s| st.nodes.get(&s).is_some_and(|n| n.is_master()));
    for g in gossip {
        if st.nodes.contains_key(&g.name) {
            if sender_is_master && g.name != st.myself {
                let s = sender.unwrap();
                let n = st.nodes.get_mut(&g.name).unwrap();
                if g.flags & (nf::FAIL | nf::PFAIL) != 0 {
                    match n.fail_reports.iter_mut().find(|r| r.0 == s) {
                        Some(r) => r.1 = now,
                        None => n.fail_reports.push((s, now)),
                    }
                    mark_failing_if_needed(st, &g.name);
                } else {
                    n.fail_reports.retain(|r| r.0 != s);
                }
            }
            let n = st.nodes.get_mut(&g.name).unwrap();
            if n.flags & (nf::FAIL | nf::PFAIL) != 0
                && g.flags & (nf::NOADDR | nf::FAIL | nf::PFAIL) == 0
                && (n.ip != g.ip || n.port != g.port || n.cport != g.cport)
                && n.flags & nf::MYSELF == 0
            {
                if let Some(l) = n.link.take()
                    && let Some(l) = st.links.get_mut(&l)
                {
                    l.closed = true;
                }
                let n = st.nodes.get_mut(&g.name).unwrap();
                n.ip = g.ip.clone();
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                n.flags &= !nf::NOADDR;
                st.dirty = true;
            }
        } else if sender.is_some()
            && g.flags & nf::NOADDR == 0
            && st.blacklist.get(&g.name).is_none_or(|&t| t <= now)
            && g.name != NULL_NAME
            && g.name.iter().all(u8::is_ascii_hexdigit)
        {
            let mut n = Node::new(g.name, g.flags & !(nf::MYSELF | nf::HANDSHAKE | nf::MEET));
            n.ip = g.ip.clone();
            n.port = g.port;
            n.pport = g.pport;
            n.cport = g.cport;
            st.nodes.insert(g.name, n);
            st.dirty = true;
        }
    }
}

/// PFAIL becomes FAIL when a majority of masters reported it.
fn mark_failing_if_needed(st: &mut State, name: &Name) {
    let needed = st.size() / 2 + 1;
    let now = now_ms();
    let validity = st.set.node_timeout * 2;
    let me_master = st.me().is_master();
    let Some(n) = st.nodes.get_mut(name) else {
        return;
    };
    if n.flags & nf::PFAIL == 0 || n.failed() {
        return;
    }
    n.fail_reports
        .retain(|r| now.saturating_sub(r.1) <= validity);
    let failures = n.fail_reports.len() + usize::from(me_master);
    if failures < needed {
        return;
    }
    crate::log::notice(&format!(
        "Marking node {} as failing (quorum reached).",
        name_str(name)
    ));
    n.flags &= !nf::PFAIL;
    n.flags |= nf::FAIL;
    n.fail_time = now;
    let mut m = header(st, codec::FAIL);
    m.body = Body::Fail { about: *name };
    broadcast(st, &m);
    st.dirty = true;
}

fn clear_failure_if_needed(st: &mut State, name: &Name) {
    let now = now_ms();
    let timeout = st.set.node_timeout;
    let has_slots = st.num_slots(name) > 0;
    let n = st.nodes.get_mut(name).unwrap();
    if n.is_slave() || !has_slots || now.saturating_sub(n.fail_time) > timeout * 2 {
        crate::log::notice(&format!(
            "Clear FAIL state for node {}: is reachable again.",
            name_str(name)
        ));
        n.flags &= !nf::FAIL;
        st.dirty = true;
    }
}

/// clusterSendFailoverAuthIfNeeded: a master votes once per epoch for a
/// replica of a failed master whose claimed slots are not newer elsewhere.
fn vote_if_needed(st: &mut State, node: &Name, m: &Msg) {
    let now = now_ms();
    if !st.me().is_master() || st.num_slots(&st.myself) == 0 {
        return;
    }
    if m.current_epoch < st.current_epoch || st.last_vote_epoch == st.current_epoch {
        return;
    }
    let Some(n) = st.nodes.get(node) else { return };
    let Some(master) = n.slaveof.filter(|_| n.is_slave()) else {
        return;
    };
    let Some(mn) = st.nodes.get(&master) else {
        return;
    };
    if !mn.failed() && m.mflags[0] & codec::MF_FORCEACK == 0 {
        return;
    }
    if now.saturating_sub(mn.voted_time) < st.set.node_timeout * 2 {
        return;
    }
    for j in 0..SLOTS {
        if !codec::slot_bit(&m.myslots, j) {
            continue;
        }
        if let Some(o) = st.owner[j]
            && st
                .nodes
                .get(&o)
                .is_some_and(|o| o.config_epoch > m.config_epoch)
        {
            return;
        }
    }
    st.last_vote_epoch = st.current_epoch;
    st.nodes.get_mut(&master).unwrap().voted_time = now;
    st.dirty = true;
    if let Some(link) = st.nodes.get(node).and_then(|n| n.link) {
        let ack = header(st, codec::AUTH_ACK);
        send(st, link, &ack);
    }
    crate::log::notice(&format!(
        "Failover auth granted to {} for epoch {}",
        name_str(node),
        st.current_epoch
    ));
}
