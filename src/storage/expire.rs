//! Active expiry: Redis's activeExpireCycle (slow cycle), run per shard by
//! the shard's cron so keys with a TTL vanish even if never accessed.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::ShardStore;

/// DEBUG SET-ACTIVE-EXPIRE: when false the cron skips active expiry
/// (keys then expire only lazily on access), like server.active_expire_enabled.
pub static ACTIVE_EXPIRE_ENABLED: AtomicBool = AtomicBool::new(true);

pub fn active_expire_enabled() -> bool {
    ACTIVE_EXPIRE_ENABLED.load(Ordering::Relaxed)
}

pub fn set_active_expire(on: bool) {
    ACTIVE_EXPIRE_ENABLED.store(on, Ordering::Relaxed);
}

/// Keys sampled per round (ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP).
const KEYS_PER_LOOP: usize = 20;
/// A DB is sampled again while more than this percentage of its sample was
/// expired (ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE at the default effort 1).
const ACCEPTABLE_STALE: usize = 10;

thread_local! {
    /// Next DB to visit: a cycle cut short by its budget resumes at the next
    /// DB instead of starving the later ones (Redis's static current_db).
    /// Per thread, as each shard's cron runs on its own thread.
    static NEXT_DB: Cell<usize> = const { Cell::new(0) };
    /// Per DB, the position in `expires` where sampling resumes (Redis's
    /// expires_cursor): successive cycles sweep the whole set, so every
    /// volatile key is checked in bounded time, not just probably.
    static CURSORS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// One active expiry cycle over `store`: for each DB, checks the next 20
/// keys with a TTL (a cursor sweeping `expires`, like Redis's bucket walk),
/// deletes the expired ones, and samples again while
/// the sample was more than 10% stale, until `time_budget_us` is spent
/// (checked every 16 rounds, as Redis). Replica DBs are skipped: their
/// master sends the DELs. Returns the number of keys deleted, also added
/// to `store.stats.expired_keys`.
pub fn active_expire_cycle(store: &mut ShardStore, now_ms: u64, time_budget_us: u64) -> usize {
    let start = Instant::now();
    let ndbs = store.dbs.len();
    if ndbs == 0 {
        return 0;
    }
    let first = NEXT_DB.with(|c| c.get()) % ndbs;
    let mut cursors = CURSORS.take();
    cursors.resize(ndbs, 0);
    let mut iteration = 0u64;
    let mut total_expired = 0usize;
    let mut total_sampled = 0usize;
    let mut timed_out = false;
    let mut visited = 0;
    while visited < ndbs && !timed_out {
        let dbi = (first + visited) % ndbs;
        visited += 1;
        let db = &mut store.dbs[dbi];
        if db.replica_mode {
            continue;
        }
        let pos = &mut cursors[dbi];
        loop {
            iteration += 1;
            let num = db.expires_len();
            if num == 0 {
                db.avg_ttl = 0;
                break;
            }
            let mut sampled = 0;
            let mut expired = 0;
            let (mut ttl_sum, mut ttl_samples) = (0u64, 0u64);
            for _ in 0..num.min(KEYS_PER_LOOP) {
                let n = db.expires_len();
                if n == 0 {
                    break;
                }
                if *pos >= n {
                    *pos = 0;
                }
                sampled += 1;
                let (i, at) = db.dict.expire_item(*pos);
                if at <= now_ms {
                    // Removing the key moves the last TTL item to `pos`:
                    // look there again.
                    let key = db
                        .dict
                        .get_index(i)
                        .expect("TTL of a live entry")
                        .0
                        .to_vec();
                    db.remove_expired(&key);
                    expired += 1;
                } else {
                    ttl_sum += at - now_ms;
                    ttl_samples += 1;
                    *pos += 1;
                }
            }
            if let Some(avg) = ttl_sum.checked_div(ttl_samples) {
                // Redis's estimate: each sample weighs 2% against the history.
                db.avg_ttl = if db.avg_ttl == 0 {
                    avg
                } else {
                    db.avg_ttl / 50 * 49 + avg / 50
                };
            }
            total_sampled += sampled;
            total_expired += expired;
            if iteration.is_multiple_of(16) && start.elapsed().as_micros() as u64 > time_budget_us {
                timed_out = true;
                break;
            }
            if sampled == 0 || expired * 100 / sampled <= ACCEPTABLE_STALE {
                break;
            }
        }
    }
    NEXT_DB.with(|c| c.set((first + visited) % ndbs));
    CURSORS.set(cursors);
    store.stats.expired_keys += total_expired as u64;
    // Running estimate of the stale share, weighted 5% per cycle (INFO's expired_stale_perc).
    let perc = if total_sampled > 0 {
        total_expired as f64 / total_sampled as f64
    } else {
        0.0
    };
    store.stats.expired_stale_perc = perc * 0.05 + store.stats.expired_stale_perc * 0.95;
    total_expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Value;

    fn v() -> Value {
        Value::Str(b"x".into())
    }

    #[test]
    fn expires_all_stale_keys_and_counts() {
        let mut s = ShardStore::new(0, 4);
        for i in 0..1000u32 {
            s.dbs[0].set_with_expire(format!("k{i}").as_bytes(), v(), 500);
        }
        for i in 0..10u32 {
            s.dbs[2].set_with_expire(format!("k{i}").as_bytes(), v(), 500);
        }
        s.dbs[0].set(b"plain", v());
        s.dbs[0].set_with_expire(b"future", v(), 10_000);
        // All sampled keys are stale, so the loop keeps going until the DBs
        // are clean (the generous budget is never hit).
        let n = active_expire_cycle(&mut s, 1000, 10_000_000);
        assert_eq!(n, 1010);
        assert_eq!(s.stats.expired_keys, 1010);
        assert_eq!(s.dbs[0].len(), 2);
        assert_eq!(s.dbs[0].expires_len(), 1);
        assert!(s.dbs[2].is_empty());
        assert!(s.stats.expired_stale_perc > 0.0);
    }

    #[test]
    fn stops_when_few_keys_are_stale() {
        let mut s = ShardStore::new(0, 1);
        for i in 0..10_000u32 {
            s.dbs[0].set_with_expire(format!("live{i}").as_bytes(), v(), 10_000);
        }
        for i in 0..10u32 {
            s.dbs[0].set_with_expire(format!("dead{i}").as_bytes(), v(), 1);
        }
        // 0.1% stale: one round of 20 samples, then stop.
        let n = active_expire_cycle(&mut s, 1000, 10_000_000);
        assert!(n <= 20);
        assert!(s.dbs[0].len() >= 10_000);
    }

    #[test]
    fn sweep_reaches_every_stale_key() {
        let mut s = ShardStore::new(0, 1);
        for i in 0..10_000u32 {
            s.dbs[0].set_with_expire(format!("live{i}").as_bytes(), v(), 10_000);
        }
        for i in 0..10u32 {
            s.dbs[0].set_with_expire(format!("dead{i}").as_bytes(), v(), 1);
        }
        // One lap of the cursor is 10_010 / 20 cycles.
        let mut total = 0;
        for _ in 0..10_010 / KEYS_PER_LOOP + 2 {
            total += active_expire_cycle(&mut s, 1000, 10_000_000);
        }
        assert_eq!(total, 10);
        assert_eq!(s.dbs[0].len(), 10_000);
    }

    #[test]
    fn respects_time_budget_and_rotates_dbs() {
        let mut s = ShardStore::new(0, 2);
        for i in 0..200_000u32 {
            s.dbs[0].set_with_expire(format!("k{i}").as_bytes(), v(), 1);
        }
        let n = active_expire_cycle(&mut s, 1000, 1);
        // Cut short after 16 rounds of 20 keys.
        assert!(n > 0 && n <= 16 * KEYS_PER_LOOP, "expired {n}");
        // Repeated cycles finish the job.
        let mut total = n;
        for _ in 0..10_000 {
            if s.dbs[0].is_empty() {
                break;
            }
            total += active_expire_cycle(&mut s, 1000, 1);
        }
        assert_eq!(total, 200_000);
        assert_eq!(s.stats.expired_keys, 200_000);
    }

    #[test]
    fn replicas_and_future_keys_untouched() {
        let mut s = ShardStore::new(0, 1);
        s.dbs[0].replica_mode = true;
        s.dbs[0].set_with_expire(b"a", v(), 1);
        assert_eq!(active_expire_cycle(&mut s, 1000, 1000), 0);
        s.dbs[0].replica_mode = false;
        s.dbs[0].set_with_expire(b"b", v(), 5000);
        assert_eq!(active_expire_cycle(&mut s, 1000, 1000), 1);
        assert_eq!(s.dbs[0].len(), 1);
    }
}
