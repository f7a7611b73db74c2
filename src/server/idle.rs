//! What a shard's executor does when it runs out of work (glommio's idle
//! hooks): lend its store to the other shards (server::stores) and decide
//! whether to spin before parking.
//!
//! Spinning saves the wake-up of a parked executor (~50 µs of CPU here)
//! when work comes back within the spin, and burns the spin when it does
//! not. So a shard spins (up to `hop-spin-us`) only while most of its
//! recent idle periods ended within that time, and never while the machine
//! has fewer free cores than shards (other processes' CPU, sampled each
//! second from /proc).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::shard::ShardRt;

/// Whether the machine has a free core per shard (see `sample_cpu`).
static CORES_FREE: AtomicBool = AtomicBool::new(false);

/// Share of recent idle periods short enough for a spin to catch, in
/// 1/1024 (an exponential average over ~8 periods).
const PAYOFF_ONE: u32 = 1024;
/// Spin while at least half of the recent idle periods were short.
const PAYOFF_MIN: u32 = PAYOFF_ONE / 2;

struct Idle {
    rt: Rc<ShardRt>,
    max_spin: Duration,
    lent: Cell<bool>,
    payoff: Cell<u32>,
}

thread_local! {
    static IDLE: RefCell<Option<Idle>> = const { RefCell::new(None) };
}

/// Installs the hooks on this shard's executor thread.
pub(super) fn install(rt: &Rc<ShardRt>, max_spin: Duration) {
    IDLE.with(|i| {
        *i.borrow_mut() = Some(Idle {
            rt: rt.clone(),
            max_spin,
            lent: Cell::new(false),
            payoff: Cell::new(0),
        })
    });
    glommio::set_idle_hooks(glommio::IdleHooks { enter, leave });
}

fn enter() -> Duration {
    IDLE.with(|i| {
        let i = i.borrow();
        let Some(st) = i.as_ref() else {
            return Duration::ZERO;
        };
        // A held gate means a coordinator uses the store (or waits to).
        if st.rt.gate.is_free() {
            st.rt.stores.lend(st.rt.id);
            st.lent.set(true);
        }
        if st.max_spin.is_zero()
            || st.payoff.get() < PAYOFF_MIN
            || !CORES_FREE.load(Ordering::Relaxed)
        {
            Duration::ZERO
        } else {
            st.max_spin
        }
    })
}

fn leave(idle: Duration, _parked: bool) {
    IDLE.with(|i| {
        let i = i.borrow();
        let Some(st) = i.as_ref() else { return };
        if st.lent.replace(false) {
            st.rt.stores.reclaim(st.rt.id);
        }
        // Would a spin of max_spin have caught this wake-up (whether or not
        // one ran)?
        let hit = if idle <= st.max_spin { PAYOFF_ONE } else { 0 };
        let p = st.payoff.get();
        st.payoff.set(p - p / 8 + hit / 8);
    })
}

/// Previous /proc sample: (all CPU ticks, idle ticks, this process's ticks).
static LAST: std::sync::Mutex<Option<(u64, u64, u64)>> = std::sync::Mutex::new(None);

/// From shard 0's cron, about once a second: the cores left free by other
/// processes (this one's own CPU, spinning included, counts as free).
pub(super) fn sample_cpu(nshards: usize) {
    let (Some((all, idle, ncpu)), Some(mine)) = (system_ticks(), process_ticks()) else {
        return;
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((a0, i0, m0)) = *last
        && all > a0
    {
        // /proc/stat sums over CPUs: the per-CPU share of a window is
        // ticks / (all / ncpu).
        let per_cpu = (all - a0) as f64 / ncpu as f64;
        let busy_others = ((all - a0) - (idle - i0)).saturating_sub(mine - m0.min(mine));
        let free = ncpu as f64 - busy_others as f64 / per_cpu;
        CORES_FREE.store(free >= nshards as f64 - 0.25, Ordering::Relaxed);
    }
    *last = Some((all, idle, mine));
}

/// (total ticks, idle + iowait ticks, CPUs) from /proc/stat.
fn system_ticks() -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = s.lines();
    let first = lines.next()?;
    let v: Vec<u64> = first
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let ncpu = lines.filter(|l| l.starts_with("cpu")).count().max(1) as u64;
    Some((v.iter().sum(), v[3] + v[4], ncpu))
}

/// utime + stime of this process, in clock ticks, from /proc/self/stat.
fn process_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}
