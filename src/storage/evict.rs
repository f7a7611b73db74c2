//! maxmemory: when allocated memory passes the limit, keys go by the
//! configured policy, chosen as Redis chooses them: `maxmemory-samples`
//! random keys per DB feed a small pool of the best candidates (oldest
//! access, lowest LFU counter, nearest expiry), the best one is evicted.
//!
//! The limit is the process's (`memory::used_memory`, one sum over every
//! thread). Each shard evicts from its own keys: before a command it runs
//! (writes land on the shard of their key, so eviction follows the writes)
//! and in its cron. A shard holding less than half the keys of the richest
//! one asks that one instead (a message, no wait): otherwise the shard that
//! sees the limit first would drain itself while the others keep theirs.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use super::{Entry, Key, ShardStore};
use crate::config::Config;

pub const LFU_INIT_VAL: u8 = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Policy {
    NoEviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    fn from_u8(v: u8) -> Policy {
        [
            Policy::NoEviction,
            Policy::AllkeysLru,
            Policy::AllkeysLfu,
            Policy::AllkeysRandom,
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ][v as usize]
    }

    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

// The settings read on every command, copied out of the config.
static MAXMEMORY: AtomicU64 = AtomicU64::new(0);
static POLICY: AtomicU8 = AtomicU8::new(0);
static SAMPLES: AtomicU32 = AtomicU32::new(5);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);
static IGNORE_ON_REPLICA: AtomicBool = AtomicBool::new(true);
/// INFO's evicted_keys.
pub static EVICTED: AtomicU64 = AtomicU64::new(0);

/// Per shard: its key count as of its last eviction pass or cron, and
/// whether an eviction request to it is in flight.
struct ShardView {
    keys: AtomicU64,
    asked: AtomicBool,
}

static SHARDS: std::sync::OnceLock<Vec<ShardView>> = std::sync::OnceLock::new();

/// At startup, once the shard count is known (what eviction asks of the
/// server goes through `storage::Hooks`).
pub fn init(nshards: usize) {
    let _ = SHARDS.set(
        (0..nshards)
            .map(|_| ShardView {
                keys: AtomicU64::new(0),
                asked: AtomicBool::new(false),
            })
            .collect(),
    );
}

/// Keys the policy may evict here (volatile policies: keys with a TTL).
fn note_keys(store: &ShardStore) -> u64 {
    let volatile = policy().volatile();
    let n: usize = store
        .dbs
        .iter()
        .map(|d| {
            if volatile {
                d.expires_len()
            } else {
                d.dict.len()
            }
        })
        .sum();
    if let Some(v) = SHARDS.get().and_then(|s| s.get(store.id)) {
        v.keys.store(n as u64, Ordering::Relaxed);
    }
    n as u64
}

/// Hands the eviction to the shard with the most keys when it holds more
/// than twice `mine`: Running (it evicts soon), else None.
fn ask_richer(me: usize, mine: u64) -> Room {
    let Some(shards) = SHARDS.get() else {
        return Room::Fail;
    };
    let Some((rich, n)) = shards
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(i, v)| (i, v.keys.load(Ordering::Relaxed)))
        .max_by_key(|&(_, n)| n)
    else {
        return Room::Fail;
    };
    if n == 0 || n <= mine.saturating_mul(2) {
        return Room::Fail;
    }
    if !shards[rich].asked.swap(true, Ordering::AcqRel)
        && !super::hooks().is_some_and(|h| (h.ask_evict)(rich))
    {
        shards[rich].asked.store(false, Ordering::Release);
    }
    Room::Running
}

/// The request to this shard was served.
pub fn asked_done(shard: usize) {
    if let Some(v) = SHARDS.get().and_then(|s| s.get(shard)) {
        v.asked.store(false, Ordering::Release);
    }
}

/// Called at startup and after CONFIG SET.
pub fn refresh(cfg: &Config) {
    MAXMEMORY.store(cfg.get_i64("maxmemory").max(0) as u64, Ordering::Relaxed);
    POLICY.store(
        Policy::parse(cfg.get("maxmemory-policy")) as u8,
        Ordering::Relaxed,
    );
    SAMPLES.store(
        cfg.get_i64("maxmemory-samples").clamp(1, 64) as u32,
        Ordering::Relaxed,
    );
    LFU_LOG_FACTOR.store(
        cfg.get_i64("lfu-log-factor").max(0) as u32,
        Ordering::Relaxed,
    );
    LFU_DECAY_TIME.store(
        cfg.get_i64("lfu-decay-time").max(0) as u32,
        Ordering::Relaxed,
    );
    IGNORE_ON_REPLICA.store(cfg.get_bool("replica-ignore-maxmemory"), Ordering::Relaxed);
}

pub fn policy() -> Policy {
    Policy::from_u8(POLICY.load(Ordering::Relaxed))
}

/// Whether accesses feed LFU counters (an LFU policy is selected).
pub fn lfu() -> bool {
    matches!(policy(), Policy::AllkeysLfu | Policy::VolatileLfu)
}

/// Memory maxmemory does not count (a replica's output buffers): INFO
/// mem_not_counted_for_evict.
pub fn not_counted() -> u64 {
    super::hooks().map_or(0, |h| (h.replica_extra_bytes)())
}

/// Used memory is over a maxmemory that applies to this node (a replica
/// leaves eviction to its master unless replica-ignore-maxmemory is no).
pub fn over_limit() -> bool {
    let max = MAXMEMORY.load(Ordering::Relaxed);
    max > 0
        && crate::memory::used_memory().saturating_sub(not_counted()) > max
        && !(IGNORE_ON_REPLICA.load(Ordering::Relaxed)
            && super::hooks().is_some_and(|h| (h.is_replica)()))
}

/// Over the limit with nothing any shard may evict (Redis's EVICT_FAIL), as
/// far as the shards' last counts tell: what MULTI's queueing checks.
pub fn out_of_memory() -> bool {
    over_limit()
        && (policy() == Policy::NoEviction
            || SHARDS
                .get()
                .is_some_and(|s| s.iter().all(|v| v.keys.load(Ordering::Relaxed) == 0)))
}

/// Redis's LFULogIncr: the higher the counter, the less likely a hit raises it.
pub fn lfu_log_incr(counter: u8) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = (counter as f64 - LFU_INIT_VAL as f64).max(0.0);
    let p = 1.0 / (base * LFU_LOG_FACTOR.load(Ordering::Relaxed) as f64 + 1.0);
    if fastrand::f64() < p {
        counter + 1
    } else {
        counter
    }
}

/// Redis's LFUDecrAndReturn: one less per `lfu-decay-time` minutes idle.
pub fn lfu_decayed(counter: u8, last_access_secs: u32, now_secs: u64) -> u8 {
    let decay = LFU_DECAY_TIME.load(Ordering::Relaxed) as u64;
    if decay == 0 {
        return counter;
    }
    let minutes = now_secs.saturating_sub(last_access_secs as u64) / 60;
    counter.saturating_sub((minutes / decay).min(255) as u8)
}

/// An access: LRU clock always, LFU counter under an LFU policy.
#[inline]
pub fn touch(e: &mut Entry, now_ms: u64) {
    let now = now_ms / 1000;
    if lfu() {
        e.freq = lfu_log_incr(lfu_decayed(e.freq, e.lru, now));
    }
    e.lru = now as u32;
}

/// Candidates kept between evictions (Redis's EVPOOL_SIZE).
const POOL: usize = 16;

/// A sampled key: the higher `score`, the better to evict.
struct Candidate {
    score: u64,
    db: usize,
    key: Key,
}

thread_local! {
    static POOL_KEYS: std::cell::RefCell<Vec<Candidate>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn score(policy: Policy, e: &Entry, expire_at: u64, now_ms: u64) -> u64 {
    match policy {
        Policy::AllkeysLru | Policy::VolatileLru => (now_ms / 1000).saturating_sub(e.lru as u64),
        Policy::AllkeysLfu | Policy::VolatileLfu => {
            255 - lfu_decayed(e.freq, e.lru, now_ms / 1000) as u64
        }
        // Nearest expiry first.
        Policy::VolatileTtl => u64::MAX - expire_at,
        _ => 0,
    }
}

/// Samples every non-empty DB into the pool.
fn fill_pool(store: &ShardStore, policy: Policy, now_ms: u64, pool: &mut Vec<Candidate>) {
    let samples = SAMPLES.load(Ordering::Relaxed) as usize;
    for (dbi, db) in store.dbs.iter().enumerate() {
        let n = if policy.volatile() {
            db.expires_len()
        } else {
            db.dict.len()
        };
        if n == 0 {
            continue;
        }
        for _ in 0..samples.min(n) {
            let i = fastrand::usize(..n);
            let (pos, at) = if policy.volatile() {
                db.dict.expire_item(i)
            } else {
                (i, 0)
            };
            let (key, e) = db.dict.get_index(pos).expect("index below len");
            if pool.iter().any(|c| c.db == dbi && *c.key == *key) {
                continue;
            }
            let s = score(policy, e, at, now_ms);
            if pool.len() < POOL {
                pool.push(Candidate {
                    score: s,
                    db: dbi,
                    key: key.into(),
                });
            } else if let Some(worst) = pool.iter_mut().min_by_key(|c| c.score)
                && worst.score < s
            {
                *worst = Candidate {
                    score: s,
                    db: dbi,
                    key: key.into(),
                };
            }
        }
    }
}

/// Picks the next key to evict from this shard, if any.
fn pick(store: &ShardStore, policy: Policy, now_ms: u64) -> Option<(usize, Key)> {
    if matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom) {
        let dbs: Vec<usize> = (0..store.dbs.len())
            .filter(|&d| {
                let db = &store.dbs[d];
                if policy.volatile() {
                    db.expires_len() != 0
                } else {
                    !db.dict.is_empty()
                }
            })
            .collect();
        let d = *dbs.get(fastrand::usize(..dbs.len().max(1)))?;
        let db = &store.dbs[d];
        let key = if policy.volatile() {
            let (pos, _) = db.dict.expire_item(fastrand::usize(..db.expires_len()));
            db.dict.get_index(pos)?.0.into()
        } else {
            db.dict
                .get_index(fastrand::usize(..db.dict.len()))?
                .0
                .into()
        };
        return Some((d, key));
    }
    POOL_KEYS.with(|p| {
        let mut pool = p.borrow_mut();
        fill_pool(store, policy, now_ms, &mut pool);
        // Best first; entries whose key went meanwhile are skipped.
        while !pool.is_empty() {
            let best = pool
                .iter()
                .enumerate()
                .max_by_key(|(_, c)| c.score)
                .map(|(i, _)| i)?;
            let c = pool.swap_remove(best);
            let db = &store.dbs[c.db];
            let live = if policy.volatile() {
                db.dict.get(&c.key).is_some_and(|e| e.has_ttl())
            } else {
                db.dict.contains_key(&c.key)
            };
            if live {
                return Some((c.db, c.key));
            }
        }
        None
    })
}

/// What an eviction pass achieved.
#[derive(PartialEq, Eq, Debug)]
pub enum Room {
    /// Under the limit.
    Ok,
    /// Still over after this pass's budget; more goes next time (Redis's
    /// EVICT_RUNNING: the command is not refused).
    Running,
    /// Nothing this shard may evict (noeviction, or no candidate key).
    Fail,
}

/// Evicts keys of this shard until used memory is under the limit, at most
/// `max_keys` of them or about `budget_us` of time.
pub fn make_room(store: &mut ShardStore, now_ms: u64, max_keys: usize, budget_us: u64) -> Room {
    // Also from the cron: the counts stay fresh for other shards.
    let mine = note_keys(store);
    // Nothing is evicted while writes are paused (the stream stands still).
    if !over_limit() || super::hooks().is_some_and(|h| (h.writes_paused)()) {
        return Room::Ok;
    }
    let policy = policy();
    if policy == Policy::NoEviction {
        return Room::Fail;
    }
    if ask_richer(store.id, mine) == Room::Running {
        return Room::Running;
    }
    let start = std::time::Instant::now();
    for n in 0..max_keys {
        if n % 16 == 15 && start.elapsed().as_micros() as u64 >= budget_us {
            return Room::Running;
        }
        let Some((dbi, key)) = pick(store, policy, now_ms) else {
            return ask_richer(store.id, 0);
        };
        // Replicas and the stream get a DEL, as for an expired key.
        if let Some(h) = super::hooks() {
            (h.key_expired)(dbi, &key);
        }
        store.dbs[dbi].remove(&key);
        super::notify::notify(super::notify::EVICTED, "evicted", &key, dbi);
        store.dirty += 1;
        EVICTED.fetch_add(1, Ordering::Relaxed);
        if !over_limit() {
            return Room::Ok;
        }
    }
    if over_limit() {
        Room::Running
    } else {
        Room::Ok
    }
}

pub const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut c = LFU_INIT_VAL;
        for _ in 0..100_000 {
            c = lfu_log_incr(c);
        }
        // Redis's table for lfu-log-factor 10: 100K hits give about 142.
        assert!((110..=180).contains(&c), "counter {c}");
        assert_eq!(lfu_decayed(20, 0, 60 * 5), 15);
        assert_eq!(lfu_decayed(3, 0, 60 * 50), 0);
    }
}
