//! Replica elections and manual failover, as Redis 7.0's cluster.c
//! (clusterHandleSlaveFailover, clusterHandleManualFailover): a replica of
//! a failed master waits a delay (500-1000 ms plus 1 s per replica with a
//! newer offset), bumps currentEpoch, asks the masters for their vote and
//! takes its master's slots with a majority. CLUSTER FAILOVER starts the
//! same election at once, after the master paused its writes and the
//! replica processed its whole stream (FORCE skips the master). The bus
//! thread decides; shard 0 changes the replication role (`RoleChange`).

use super::bus;
use super::codec::{self, Name, flags as nf};
use super::state::{RoleChange, SLOTS, State, name_str, now_ms};

/// CLUSTER_MF_TIMEOUT: a manual failover must finish within this.
pub const MF_TIMEOUT: u64 = 5000;
/// The master pauses its writes for MF_TIMEOUT times this.
const MF_PAUSE_MULT: u64 = 2;

/// resetManualFailover: a master that paused its writes for it resumes.
pub fn reset_manual(st: &mut State) {
    if st.mf.replica.is_some() {
        crate::server::ops::unpause_clients();
    }
    st.mf = Default::default();
}

/// Both sides, every cron tick: a manual failover past its end is dropped.
pub fn check_manual_timeout(st: &mut State) {
    if st.mf.end != 0 && st.mf.end < now_ms() {
        crate::log::warning("Manual failover timed out.");
        reset_manual(st);
    }
}

/// CLUSTER FAILOVER [FORCE] on a replica (TAKEOVER is `takeover`).
pub fn start_manual(st: &mut State, force: bool) {
    reset_manual(st);
    st.mf.end = now_ms() + MF_TIMEOUT;
    if force {
        crate::log::warning("Forced failover user request accepted.");
        st.mf.can_start = true;
        return;
    }
    crate::log::warning("Manual failover user request accepted.");
    let Some(link) = st
        .me()
        .slaveof
        .and_then(|m| st.nodes.get(&m))
        .and_then(|m| m.link)
    else {
        return;
    };
    let m = bus::header(st, codec::MFSTART);
    bus::send(st, link, &m);
}

/// CLUSTER FAILOVER TAKEOVER: a new config epoch without consensus, then
/// the master's slots.
pub fn takeover(st: &mut State) {
    reset_manual(st);
    st.mf.end = now_ms() + MF_TIMEOUT;
    crate::log::warning("Taking over the master (user request).");
    bump_epoch_without_consensus(st);
    replace_master(st);
}

/// clusterBumpConfigEpochWithoutConsensus.
fn bump_epoch_without_consensus(st: &mut State) {
    let max = st.max_epoch();
    if st.me().config_epoch == 0 || st.me().config_epoch != max {
        st.current_epoch += 1;
        let e = st.current_epoch;
        st.me_mut().config_epoch = e;
        st.dirty = true;
        crate::log::warning(&format!("New configEpoch set to {e}, for the takeover"));
    }
}

/// MFSTART from `sender`: if it is our replica, pause writes and tell it
/// our offset (once shard 0 read it exactly, see `paused_offset`).
pub fn on_mfstart(st: &mut State, sender: &Name) {
    let Some(n) = st.nodes.get(sender) else {
        return;
    };
    if !st.me().is_master() || n.slaveof != Some(st.myself) {
        return;
    }
    reset_manual(st);
    let now = now_ms();
    st.mf.end = now + MF_TIMEOUT;
    st.mf.replica = Some(*sender);
    crate::server::ops::pause_clients(false, now + MF_TIMEOUT * MF_PAUSE_MULT);
    crate::log::warning(&format!(
        "Manual failover requested by replica {}.",
        name_str(sender)
    ));
}

/// Master side, every cron tick: ping the replica of a manual failover
/// (the PAUSED flag and our offset ride on the header).
pub fn ping_manual_replica(st: &mut State) {
    if st.mf.end == 0 || !st.me().is_master() || st.mf.paused_offset.is_none() {
        return;
    }
    if let Some(link) = st
        .mf
        .replica
        .and_then(|r| st.nodes.get(&r))
        .and_then(|n| n.link)
    {
        bus::send_ping(st, link, codec::PING);
    }
}

/// A message from `sender` with its header's flags: our master paused.
pub fn on_header(st: &mut State, sender: &Name, m: &codec::Msg) {
    if st.mf.end != 0
        && st.me().is_slave()
        && st.me().slaveof == Some(*sender)
        && m.mflags[0] & codec::MF_PAUSED != 0
        && st.mf.master_offset.is_none()
    {
        st.mf.master_offset = Some(m.offset);
        crate::log::warning(&format!(
            "Received replication offset for paused master manual failover: {}",
            m.offset
        ));
    }
}

/// Replica side: the paused master's offset is reached, the election may
/// start (clusterHandleManualFailover).
pub fn handle_manual(st: &mut State) {
    if st.mf.end == 0 || st.mf.can_start {
        return;
    }
    let Some(off) = st.mf.master_offset else {
        return;
    };
    if st.repl_offset >= off {
        st.mf.can_start = true;
        crate::log::warning("All master replication stream processed, manual failover can start.");
    }
}

/// FAILOVER_AUTH_ACK: a vote counts if its master serves slots and voted
/// in our election's epoch or later.
pub fn on_auth_ack(st: &mut State, sender: &Name, m: &codec::Msg) {
    let Some(n) = st.nodes.get(sender) else {
        return;
    };
    if n.is_master() && st.num_slots(sender) > 0 && m.current_epoch >= st.election.epoch {
        st.election.auth_count += 1;
        handle_replica_failover(st);
    }
}

/// clusterGetSlaveRank: replicas of our master with a newer offset.
fn rank(st: &State) -> usize {
    let Some(master) = st.me().slaveof else {
        return 0;
    };
    st.nodes
        .values()
        .filter(|n| n.name != st.myself && n.is_slave() && n.slaveof == Some(master))
        .filter(|n| n.flags & nf::NOFAILOVER == 0 && n.repl_offset > st.repl_offset)
        .count()
}

/// clusterHandleSlaveFailover: called every cron tick and on a vote.
pub fn handle_replica_failover(st: &mut State) {
    let now = now_ms();
    let manual = st.mf.end != 0 && st.mf.can_start;
    let me = st.me();
    let Some(master) = me.slaveof.filter(|_| me.is_slave()) else {
        return;
    };
    let Some(mn) = st.nodes.get(&master) else {
        return;
    };
    // Only a failed master's replica runs for it (any replica when asked
    // by hand), unless told never to.
    let may_run = manual || (mn.failed() && !st.set.no_failover);
    if !may_run || st.num_slots(&master) == 0 {
        return;
    }
    let timeout = st.set.node_timeout;
    let auth_timeout = (timeout * 2).max(2000);
    let auth_retry = auth_timeout * 2;
    let auth_age = now.saturating_sub(st.election.auth_time);
    let mut data_age = st.data_age;
    if data_age > timeout {
        data_age -= timeout;
    }
    if st.set.validity_factor != 0
        && data_age > st.set.repl_ping_ms + timeout * st.set.validity_factor
        && !manual
    {
        return;
    }
    if auth_age > auth_retry {
        let e = &mut st.election;
        e.auth_time = now + 500 + fastrand::u64(0..500);
        e.auth_count = 0;
        e.auth_sent = false;
        let r = rank(st);
        st.election.rank = r;
        st.election.auth_time += r as u64 * 1000;
        if st.mf.end != 0 {
            st.election.auth_time = now;
            st.election.rank = 0;
        }
        crate::log::warning(&format!(
            "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
            st.election.auth_time.saturating_sub(now),
            st.election.rank,
            st.repl_offset
        ));
        // The other replicas learn our offset for their own rank.
        let links: Vec<u64> = st
            .nodes
            .values()
            .filter(|n| n.name != st.myself && n.is_slave() && n.slaveof == Some(master))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            bus::send_ping(st, l, codec::PONG);
        }
        if st.mf.end == 0 {
            return;
        }
    }
    if !st.election.auth_sent && st.mf.end == 0 {
        let r = rank(st);
        if r > st.election.rank {
            let added = (r - st.election.rank) as u64 * 1000;
            st.election.auth_time += added;
            st.election.rank = r;
            crate::log::warning(&format!(
                "Replica rank updated to #{r}, added {added} milliseconds of delay."
            ));
        }
    }
    if now < st.election.auth_time {
        return;
    }
    if now.saturating_sub(st.election.auth_time) > auth_timeout {
        return;
    }
    if !st.election.auth_sent {
        st.current_epoch += 1;
        st.election.epoch = st.current_epoch;
        crate::log::warning(&format!(
            "Starting a failover election for epoch {}.",
            st.current_epoch
        ));
        let mut m = bus::header(st, codec::AUTH_REQUEST);
        if st.mf.end != 0 {
            m.mflags[0] |= codec::MF_FORCEACK;
        }
        bus::broadcast(st, &m);
        st.election.auth_sent = true;
        st.dirty = true;
    }
    let needed = st.size() / 2 + 1;
    if st.election.auth_count >= needed {
        crate::log::warning("Failover election won: I'm the new master.");
        if st.me().config_epoch < st.election.epoch {
            let e = st.election.epoch;
            st.me_mut().config_epoch = e;
            crate::log::warning(&format!("configEpoch set to {e} after successful failover"));
        }
        replace_master(st);
    }
}

/// clusterFailoverReplaceYourMaster: we serve our master's slots now.
fn replace_master(st: &mut State) {
    let me = st.myself;
    let Some(old) = st.me().slaveof.filter(|_| st.me().is_slave()) else {
        return;
    };
    st.set_node_as_master(&me);
    for j in 0..SLOTS {
        if st.owner[j] == Some(old) {
            st.owner[j] = Some(me);
        }
    }
    st.role_change = Some(RoleChange::Promote);
    st.dirty = true;
    st.update_state();
    bus::broadcast_pong(st);
    reset_manual(st);
}

/// clusterSetMaster: follow `n` (our master's slots moved to it, or we lost
/// our last slot to it).
pub fn follow(st: &mut State, n: &Name) {
    if *n == st.myself {
        return;
    }
    let Some(node) = st.nodes.get(n) else { return };
    let (ip, port) = (node.ip.clone(), node.port);
    if st.me().is_master() {
        st.migrating.clear();
        st.importing.clear();
    }
    let me = st.me_mut();
    me.flags &= !(nf::MASTER | nf::MIGRATE_TO);
    me.flags |= nf::SLAVE;
    me.slaveof = Some(*n);
    let unpause = st.mf.replica.is_some();
    st.role_change = Some(RoleChange::Follow(ip, port, unpause));
    st.dirty = true;
    st.mf = Default::default();
}
