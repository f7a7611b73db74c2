//! PSYNC2 torture: continuous failovers, restarts and link faults over five
//! nodes (keel with 1, 2 and 4 shards, two stock redis-server 7.0), with a
//! write load of every type, several DBs, MULTI/EXEC and scripts in both
//! replication modes. See tests/common/torture.rs for what each cycle does
//! and asserts. The long soak is `bench-scripts/psync2-soak`.

mod common;

use common::torture::Torture;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn run(seed: u64, cycles: usize) {
    let mut t = Torture::new(seed);
    let sum = t.run(cycles);
    println!(
        "seed {seed}: {} cycles, faults {:?}, full syncs {}, partial syncs {}, divergences {}",
        sum.cycles, sum.faults, sum.full_syncs, sum.partial_syncs, sum.divergences
    );
}

/// The bounded CI run: a fixed schedule.
#[test]
fn torture_fixed_seed() {
    common::require_tool("redis-server");
    run(env_u64("KEEL_TORTURE_SEED").unwrap_or(20261125), 15);
}

/// A few cycles of a fresh schedule each run (the seed is printed on failure).
#[test]
fn torture_random_seed() {
    common::require_tool("redis-server");
    let seed = common::now_ms() ^ 0x5eed_5eed;
    run(seed, 4);
}

/// The soak: KEEL_TORTURE_CYCLES cycles (default 200) of KEEL_TORTURE_SEED.
#[test]
#[ignore]
fn torture_soak() {
    common::require_tool("redis-server");
    let seed = env_u64("KEEL_TORTURE_SEED").unwrap_or_else(common::now_ms);
    let cycles = env_u64("KEEL_TORTURE_CYCLES").unwrap_or(200) as usize;
    run(seed, cycles);
}
