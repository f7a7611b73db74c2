//! Seeded randomised comparison: thousands of generated commands (the
//! generator is common/cmdgen.rs) over a small keyspace (30 keys, some
//! hash-tagged so they spread over shards, and 3 DBs)
//! sent to keel and stock redis-server, replies compared byte for byte (set
//! and hash listings as sorted multisets, TTLs within a few hundred ms),
//! DEBUG DIGEST (which sees only whether a key has a TTL) and every key's
//! PEXPIRETIME compared after every batch.
//!
//! Fixed seeds always run; `KEEL_RANDOM_SEED=<u64>` adds one more. A mismatch
//! names its seed, step and the commands that led to it.

#[macro_use]
mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::cmdgen::*;
use common::{PTTL_TOLERANCE_MS, Pair, Resp, describe, encode, show, unordered};

pair_tests!(
    strings_and_bits,
    keyspace_and_dbs,
    lists,
    hashes,
    sets,
    zsets,
    hll_and_streams,
    multi_exec_and_scripts,
    mixed,
);

const SEEDS: [u64; 3] = [1, 0x5eed, 20240607];
/// Commands per seed (a MULTI block counts as one).
const STEPS: usize = 1200;
/// DEBUG DIGEST is compared every this many steps.
const BATCH: usize = 50;
/// A seed stops after this many mismatches: its state has diverged.
const MAX_FAILS_PER_SEED: usize = 5;

fn seeds() -> Vec<u64> {
    let mut s = SEEDS.to_vec();
    if let Ok(v) = std::env::var("KEEL_RANDOM_SEED") {
        let v = v.trim();
        let n = v
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16))
            .unwrap_or_else(|| v.parse())
            .unwrap_or_else(|e| panic!("KEEL_RANDOM_SEED={v:?}: {e}"));
        s.push(n);
    }
    s
}

// ---------------------------------------------------------------------------
// Runner

struct Run<'a> {
    p: &'a mut Pair,
    name: &'static str,
    seed: u64,
    step: usize,
    fails: usize,
    recent: VecDeque<String>,
}

impl Run<'_> {
    /// Sends one command to both and compares; false once this seed has
    /// failed too often to go on.
    fn exchange(&mut self, args: &[Vec<u8>], cmp: Cmp) -> bool {
        let what = describe(args);
        self.recent.push_back(what.clone());
        if self.recent.len() > 12 {
            self.recent.pop_front();
        }
        let req = encode(args);
        self.p.k.send(&req);
        self.p.r.send(&req);
        let rr = self
            .p
            .r
            .try_read_reply(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("test bug: stock redis gave no reply ({e:?}) to {what}"));
        let kr = match self.p.k.try_read_reply(Duration::from_secs(10)) {
            Ok(b) => b,
            Err(e) => {
                self.mismatch(&what, &format!("no reply ({e:?})"), &show(&rr));
                self.p.finish();
                unreachable!();
            }
        };
        let same = kr == rr
            || match cmp {
                Cmp::Exact => false,
                Cmp::Unordered => {
                    kr.first() == rr.first()
                        && unordered(&Resp::parse(&kr)) == unordered(&Resp::parse(&rr))
                }
                Cmp::Ttl => match (Resp::parse(&kr), Resp::parse(&rr)) {
                    (Resp::Int(a), Resp::Int(b)) => self.ttls_agree(args, a, b),
                    _ => false,
                },
            };
        if !same {
            self.mismatch(&what, &show(&kr), &show(&rr));
        }
        self.fails < MAX_FAILS_PER_SEED
    }

    fn mismatch(&mut self, what: &str, keel: &str, redis: &str) {
        let context = if self.fails == 0 {
            let v: Vec<&str> = self.recent.iter().map(|s| s.as_str()).collect();
            format!(
                "\n    leading commands (oldest first):\n      {}",
                v.join("\n      ")
            )
        } else {
            String::new()
        };
        self.fails += 1;
        self.p.fail(format!(
            "[{} seed {} (KEEL_RANDOM_SEED={}) step {}] {what}\n    keel:  {keel}\n    redis: {redis}{context}",
            self.name, self.seed, self.seed, self.step
        ));
    }

    /// Whether TTL-family replies `k` (keel) and `r` (redis) agree: a
    /// negative one exactly; PTTL within the tolerance; whole seconds
    /// exactly, or one apart only while the key's time sits within the
    /// tolerance of the rounding boundary (TTL rounds to the nearest
    /// second, EXPIRETIME truncates), which a follow-up read checks.
    fn ttls_agree(&mut self, args: &[Vec<u8>], k: i64, r: i64) -> bool {
        if k < 0 || r < 0 {
            return k == r;
        }
        let name = args[0].to_ascii_uppercase();
        if name == b"PTTL" {
            return (k - r).abs() <= PTTL_TOLERANCE_MS;
        }
        if k == r {
            return true;
        }
        if (k - r).abs() > 1 {
            return false;
        }
        let (follow, boundary) = if name == b"TTL" {
            ("PTTL", 500)
        } else {
            ("PEXPIRETIME", 0)
        };
        let req = encode(&[follow.as_bytes(), &args[1]]);
        let ms = |c: &mut common::Conn| {
            c.send(&req);
            match Resp::parse(&c.read_reply()) {
                Resp::Int(n) if n >= 0 => Some(n % 1000),
                _ => None,
            }
        };
        let near = |m: Option<i64>| {
            m.is_some_and(|m| {
                let d = (m - boundary).rem_euclid(1000);
                d.min(1000 - d) <= PTTL_TOLERANCE_MS
            })
        };
        near(ms(&mut self.p.k)) || near(ms(&mut self.p.r))
    }

    fn digest(&mut self) -> bool {
        self.exchange(&[b"DEBUG".to_vec(), b"DIGEST".to_vec()], Cmp::Exact) && self.expiry_times()
    }

    /// DEBUG DIGEST sees only whether a key has a TTL: every key's
    /// PEXPIRETIME, in every DB the generator uses, compared within the
    /// tolerance. The selected DB is restored after.
    fn expiry_times(&mut self) -> bool {
        let db = |c: &mut common::Conn| {
            let list = Resp::parse(&c.line("CLIENT INFO")).as_str();
            list.split_whitespace()
                .find_map(|f| f.strip_prefix("db="))
                .map(str::to_string)
                .expect("db= in CLIENT INFO")
        };
        let (kdb, rdb) = (db(&mut self.p.k), db(&mut self.p.r));
        if kdb != rdb {
            self.mismatch("CLIENT INFO db=", &kdb, &rdb);
            return false;
        }
        let mut ok = true;
        for d in 0..3 {
            self.p.k.line(&format!("SELECT {d}"));
            self.p.r.line(&format!("SELECT {d}"));
            for key in KEYS {
                let line = format!("PEXPIRETIME {key}");
                let (k, r) = (self.p.k.line(&line), self.p.r.line(&line));
                let same = k == r
                    || matches!((Resp::parse(&k), Resp::parse(&r)),
                        (Resp::Int(a), Resp::Int(b)) if a >= 0 && b >= 0 && (a - b).abs() <= PTTL_TOLERANCE_MS);
                if !same {
                    self.mismatch(&format!("(db {d}) {line}"), &show(&k), &show(&r));
                    ok = false;
                }
            }
        }
        self.p.k.line(&format!("SELECT {kdb}"));
        self.p.r.line(&format!("SELECT {rdb}"));
        ok && self.fails < MAX_FAILS_PER_SEED
    }
}

/// Runs `STEPS` generated steps per seed; `multi` percent of steps are
/// MULTI/EXEC blocks of commands from `gen`.
fn run(p: &mut Pair, name: &'static str, make: Gen, multi: u64) {
    for seed in seeds() {
        p.check("FLUSHALL");
        p.check("SELECT 0");
        // Each family sees a different stream of choices for the same seed.
        let salt = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) ^ b as u64);
        let mut g = G::new(seed ^ salt.rotate_left(17));
        let mut run = Run {
            p,
            name,
            seed,
            step: 0,
            fails: 0,
            recent: VecDeque::new(),
        };
        let mut ok = true;
        for step in 0..STEPS {
            run.step = step;
            ok = if g.rng.chance(multi) {
                block(&mut run, &mut g, make)
            } else {
                let c = make(&mut g);
                run.exchange(&c.args, c.cmp)
            };
            if ok && step % BATCH == BATCH - 1 {
                ok = run.digest();
            }
            if !ok {
                break;
            }
        }
        if ok {
            run.digest();
        }
    }
}

/// MULTI, 1..=4 commands, then EXEC (or DISCARD); sometimes a queued
/// command with a wrong arity, which aborts EXEC.
fn block(run: &mut Run, g: &mut G, make: Gen) -> bool {
    if !run.exchange(&[b"MULTI".to_vec()], Cmp::Exact) {
        return false;
    }
    let mut cmp = Cmp::Exact;
    for _ in 0..1 + g.rng.below(4) {
        let c = if g.rng.chance(3) {
            cmd(&["GET"])
        } else {
            make(g)
        };
        match c.cmp {
            Cmp::Exact => {}
            // Not comparable inside EXEC's array: replaced by a plain read.
            Cmp::Ttl => {
                let k = g.key();
                if !run.exchange(&cmd(&["EXISTS", &k]).args, Cmp::Exact) {
                    return false;
                }
                continue;
            }
            Cmp::Unordered => cmp = Cmp::Unordered,
        }
        if !run.exchange(&c.args, Cmp::Exact) {
            return false;
        }
    }
    let end = if g.rng.chance(10) { "DISCARD" } else { "EXEC" };
    run.exchange(&[end.as_bytes().to_vec()], cmp)
}

// ---------------------------------------------------------------------------
// Tests

fn strings_and_bits(p: &mut Pair) {
    run(
        p,
        "strings",
        |g| {
            if g.rng.chance(8) {
                foreign(g)
            } else {
                strings(g)
            }
        },
        0,
    );
}

fn keyspace_and_dbs(p: &mut Pair) {
    run(p, "keyspace", keyspace, 0);
}

fn lists(p: &mut Pair) {
    run(p, "lists", lists_cmd, 0);
}

fn hashes(p: &mut Pair) {
    run(p, "hashes", hashes_cmd, 0);
}

fn sets(p: &mut Pair) {
    run(p, "sets", sets_cmd, 0);
}

fn zsets(p: &mut Pair) {
    run(p, "zsets", zsets_cmd, 0);
}

fn hll_and_streams(p: &mut Pair) {
    run(p, "hll_streams", hll_and_streams_gen, 0);
}

fn multi_exec_and_scripts(p: &mut Pair) {
    run(
        p,
        "multi_scripts",
        |g| if g.rng.chance(50) { eval(g) } else { any(g) },
        40,
    );
}

fn mixed(p: &mut Pair) {
    run(p, "mixed", any, 5);
}
