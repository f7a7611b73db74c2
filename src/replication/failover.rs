//! FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | ABORT: Redis 6.2's
//! coordinated switch of roles between this master and one of its replicas.
//!
//! Writes are paused (clients wait, as under CLIENT PAUSE WRITE) so the
//! stream stops growing; shard 0's cron checks every tick whether a replica
//! acknowledged the whole stream; then, with every shard held so the offset
//! is exact, this node becomes a replica of it and sends it
//! `PSYNC <replid> <offset> FAILOVER`, which makes the target promote itself
//! and accept us by partial resync. The pause ends when the target answers;
//! a refusal makes us master again; a connection that fails is retried, as
//! any link (FAILOVER ABORT ends the attempt).

use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{master, replica};
use crate::server::shard::ShardRt;
use crate::storage::{ShardStore, now_ms};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    WaitForSync,
    InProgress,
}

struct Failover {
    target: Option<(String, u16)>,
    deadline_ms: Option<u64>,
    force: bool,
    phase: Phase,
}

static STATE: Mutex<Option<Failover>> = Mutex::new(None);
/// Read on every command: a failover is pending and writes must wait.
static PAUSED: AtomicBool = AtomicBool::new(false);

pub fn writes_paused() -> bool {
    PAUSED.load(Ordering::Acquire)
}

pub fn active() -> bool {
    STATE.lock().unwrap().is_some()
}

/// INFO's `master_failover_state`.
pub fn state_name() -> &'static str {
    match STATE.lock().unwrap().as_ref().map(|f| f.phase) {
        None => "no-failover",
        Some(Phase::WaitForSync) => "waiting-for-sync",
        Some(Phase::InProgress) => "failover-in-progress",
    }
}

/// True while our PSYNC to the target must carry FAILOVER.
pub fn in_progress() -> bool {
    matches!(STATE.lock().unwrap().as_ref(), Some(f) if f.phase == Phase::InProgress)
}

fn clear() {
    *STATE.lock().unwrap() = None;
    PAUSED.store(false, Ordering::Release);
}

fn log_abort(target: &Option<(String, u16)>, why: &str) {
    match target {
        Some((h, p)) => crate::log::notice(&format!("FAILOVER to {h}:{p} aborted: {why}")),
        None => crate::log::notice(&format!("FAILOVER to any replica aborted: {why}")),
    }
}

/// Ends a failover that did not happen. In progress we already follow the
/// target, so we become master again (`stores`: every shard, held).
fn abort(stores: Option<&mut [&mut ShardStore]>, why: &str) {
    let taken = STATE.lock().unwrap().take();
    let Some(f) = taken else { return };
    log_abort(&f.target, why);
    if f.phase == Phase::InProgress
        && let Some(stores) = stores
    {
        replica::promote(stores);
    }
    PAUSED.store(false, Ordering::Release);
}

/// The FAILOVER command (every shard held: ABORT may have to promote).
pub fn command(stores: &mut [&mut ShardStore], args: &[bytes::Bytes]) -> Result<(), String> {
    let eq = |a: &[u8], s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    if args.len() == 2 && eq(&args[1], "abort") {
        if !active() {
            return Err("ERR No failover in progress.".into());
        }
        abort(Some(stores), "Failover manually aborted");
        return Ok(());
    }
    let (mut timeout, mut force, mut target) = (0i64, false, None);
    let mut j = 1;
    while j < args.len() {
        if eq(&args[j], "timeout") && j + 1 < args.len() && timeout == 0 {
            timeout =
                crate::commands::parse_i64(&args[j + 1]).ok_or(crate::commands::errors::NOT_INT)?;
            if timeout <= 0 {
                return Err("ERR FAILOVER timeout must be greater than 0".into());
            }
            j += 2;
        } else if eq(&args[j], "to") && j + 2 < args.len() && target.is_none() {
            let port =
                crate::commands::parse_i64(&args[j + 2]).ok_or(crate::commands::errors::NOT_INT)?;
            target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if eq(&args[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(crate::commands::errors::SYNTAX.into());
        }
    }
    if active() {
        return Err("ERR FAILOVER already in progress.".into());
    }
    if replica::is_replica() {
        return Err("ERR FAILOVER is not valid when server is a replica.".into());
    }
    let Some(r) = master::repl() else {
        return Err("ERR FAILOVER requires connected replicas.".into());
    };
    let target = {
        let st = r.lock();
        if st.replicas.is_empty() {
            return Err("ERR FAILOVER requires connected replicas.".into());
        }
        if force && (timeout == 0 || target.is_none()) {
            return Err(
                "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
                    .into(),
            );
        }
        match target {
            Some((host, port)) => {
                let Some(l) = st.replicas.iter().find(|l| l.ip == host && l.port == port) else {
                    return Err("ERR FAILOVER target HOST and PORT is not a replica.".into());
                };
                if !l.online() {
                    return Err("ERR FAILOVER target replica is not online.".into());
                }
                crate::log::notice(&format!("FAILOVER requested to {host}:{port}."));
                Some((host, port as u16))
            }
            None => {
                crate::log::notice("FAILOVER requested to any replica.");
                None
            }
        }
    };
    *STATE.lock().unwrap() = Some(Failover {
        target,
        deadline_ms: (timeout > 0).then(|| now_ms() + timeout as u64),
        force,
        phase: Phase::WaitForSync,
    });
    PAUSED.store(true, Ordering::Release);
    Ok(())
}

/// Shard 0's cron, every tick while waiting: has a replica caught up (or
/// the deadline passed)? Then hand over with every shard held.
pub async fn tick(rt: &Rc<ShardRt>) {
    let waiting =
        matches!(STATE.lock().unwrap().as_ref(), Some(f) if f.phase == Phase::WaitForSync);
    if !waiting {
        return;
    }
    let all: Vec<usize> = (0..rt.srv.nshards).collect();
    rt.with_shards(&all, |view| {
        let mut stores = view.all_mut();
        let Some(r) = master::repl() else { return };
        let mut guard = STATE.lock().unwrap();
        let Some(f) = guard.as_mut() else { return };
        if f.phase != Phase::WaitForSync {
            return;
        }
        let expired = f.deadline_ms.is_some_and(|d| now_ms() >= d);
        if expired && !f.force {
            drop(guard);
            abort(None, "Replica never caught up before timeout");
            return;
        }
        // Records still on their way to the stream count: flush them.
        master::cut(false);
        let caught_up = {
            let st = r.lock();
            let synced =
                |l: &master::Link| l.online() && l.ack_off.load(Ordering::Acquire) == st.offset;
            match &f.target {
                Some((h, p)) => st
                    .replicas
                    .iter()
                    .any(|l| l.ip == *h && l.port == *p as i64 && synced(l)),
                None => match st.replicas.iter().find(|l| synced(l)) {
                    Some(l) => {
                        f.target = Some((l.ip.clone(), l.port as u16));
                        true
                    }
                    None => false,
                },
            }
        };
        if !caught_up && !expired {
            return;
        }
        let (host, port) = f.target.clone().expect("a target when handing over");
        if caught_up {
            crate::log::notice(&format!(
                "Failover target {host}:{port} is synced, failing over."
            ));
        } else {
            crate::log::notice(&format!(
                "FAILOVER to {host}:{port} time out exceeded, failing over."
            ));
        }
        f.phase = Phase::InProgress;
        drop(guard);
        if let Err(e) = replica::set_master(&mut stores, host, port) {
            abort(None, &e);
        }
    })
    .await;
}

/// The target answered our `PSYNC ... FAILOVER`: accepted (a partial or
/// full sync follows) ends the pause; anything else makes us master again.
pub async fn psync_answered(rt: &Rc<ShardRt>, accepted: bool, why: &str) {
    if !in_progress() {
        return;
    }
    if accepted {
        clear();
        return;
    }
    let all: Vec<usize> = (0..rt.srv.nshards).collect();
    rt.with_shards(&all, |view| {
        let mut stores = view.all_mut();
        abort(Some(&mut stores), why);
    })
    .await;
}
