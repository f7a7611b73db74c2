//! Seeded randomised comparison: thousands of generated commands over a small
//! keyspace (30 keys, some hash-tagged so they spread over shards, and 3 DBs)
//! sent to keel and stock redis-server, replies compared byte for byte (set
//! and hash listings as sorted multisets, TTLs by sign), DEBUG DIGEST
//! compared after every batch.
//!
//! Fixed seeds always run; `KEEL_RANDOM_SEED=<u64>` adds one more. A mismatch
//! names its seed, step and the commands that led to it.

#[macro_use]
mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::{Pair, Resp, describe, encode, show, unordered};

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
// PRNG and generator state

/// splitmix64: tiny, seedable, good enough for picking commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An integer in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Exact,
    /// Arrays sorted at every level (set and hash iteration order).
    Unordered,
    /// Integer replies compared as -2 / -1 / positive.
    TtlSign,
}

struct Cmd {
    args: Vec<Vec<u8>>,
    cmp: Cmp,
}

struct G {
    rng: Rng,
    /// Milliseconds part of the next stream ID: only grows.
    next_id: u64,
}

type Gen = fn(&mut G) -> Cmd;

fn cmd(parts: &[&str]) -> Cmd {
    Cmd {
        args: parts.iter().map(|s| s.as_bytes().to_vec()).collect(),
        cmp: Cmp::Exact,
    }
}

fn owned(parts: Vec<String>, cmp: Cmp) -> Cmd {
    Cmd {
        args: parts.into_iter().map(String::into_bytes).collect(),
        cmp,
    }
}

const KEYS: [&str; 30] = [
    "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "{a}0", "{a}1", "{a}2", "{a}3",
    "{a}4", "{b}0", "{b}1", "{b}2", "{b}3", "{b}4", "{c}0", "{c}1", "{c}2", "{c}3", "{c}4", "{d}0",
    "{d}1", "{d}2", "{d}3", "{d}4",
];

const VALUES: [&str; 12] = [
    "0",
    "1",
    "-1",
    "42",
    "abc",
    "hello world",
    "",
    "3.5",
    "9223372036854775807",
    "x",
    "-9223372036854775808",
    "0010",
];

/// Floats exact in binary, so formatting cannot depend on precision.
const FLOATS: [&str; 8] = ["0", "1.5", "-0.25", "3", "0.125", "-2", "10.5", "1e3"];

impl G {
    fn new(seed: u64) -> G {
        G {
            rng: Rng(seed),
            next_id: 1,
        }
    }

    fn key(&mut self) -> String {
        KEYS[self.rng.below(KEYS.len() as u64) as usize].to_string()
    }

    /// 1..=max distinct-or-not keys.
    fn keys(&mut self, max: u64) -> Vec<String> {
        let n = 1 + self.rng.below(max);
        (0..n).map(|_| self.key()).collect()
    }

    fn val(&mut self) -> String {
        self.rng.pick(&VALUES).to_string()
    }

    fn int(&mut self, lo: i64, hi: i64) -> String {
        self.rng.range(lo, hi).to_string()
    }

    fn float(&mut self) -> String {
        self.rng.pick(&FLOATS).to_string()
    }

    fn stream_id(&mut self) -> String {
        if self.rng.chance(5) {
            // Usually not above the stream's top: an error on both.
            return self.rng.pick(&["0-0", "1-1", "0-1", "5"]).to_string();
        }
        self.next_id += self.rng.below(3);
        let id = format!("{}-{}", self.next_id, self.rng.below(2));
        self.next_id += 1;
        id
    }

    /// An ID somewhere among those handed out so far.
    fn old_id(&mut self) -> String {
        let ms = self.rng.below(self.next_id + 1);
        match self.rng.below(3) {
            0 => ms.to_string(),
            1 => format!("{ms}-{}", self.rng.below(2)),
            _ => format!("({ms}-0"),
        }
    }
}

// ---------------------------------------------------------------------------
// Generators, one per family

/// A write of some other type, so wrong-type errors come up in every family.
fn foreign(g: &mut G) -> Cmd {
    let k = g.key();
    let v = g.val();
    let id = g.stream_id();
    match g.rng.below(8) {
        7 => cmd(&["DEL", &k]),
        0 => cmd(&["SET", &k, &v]),
        1 => cmd(&["RPUSH", &k, &v]),
        2 => cmd(&["SADD", &k, &v]),
        3 => cmd(&["HSET", &k, "f", &v]),
        4 => cmd(&["ZADD", &k, "1", &v]),
        5 => cmd(&["PFADD", &k, &v]),
        _ => cmd(&["XADD", &k, &id, "f", &v]),
    }
}

fn strings(g: &mut G) -> Cmd {
    let k = g.key();
    let v = g.val();
    let r = &mut g.rng;
    match r.below(22) {
        0 | 1 => {
            let mut a = vec!["SET".to_string(), k, v];
            match r.below(6) {
                0 => a.extend(["EX".into(), "10000".into()]),
                1 => a.extend(["PX".into(), "100000000".into()]),
                2 => a.push("KEEPTTL".into()),
                3 => a.extend(["EXAT".into(), "4000000000".into()]),
                _ => {}
            }
            match r.below(4) {
                0 => a.push("NX".into()),
                1 => a.push("XX".into()),
                _ => {}
            }
            if r.chance(30) {
                a.push("GET".into());
            }
            owned(a, Cmp::Exact)
        }
        2 | 3 => cmd(&["GET", &k]),
        4 => {
            let n = g.int(-5, 100);
            cmd(&["INCRBY", &k, &n])
        }
        5 => cmd(&[r.pick(&["INCR", "DECR"]), &k]),
        6 => cmd(&["APPEND", &k, &v]),
        7 => {
            let (s, e) = (g.int(-10, 10), g.int(-10, 10));
            cmd(&["GETRANGE", &k, &s, &e])
        }
        8 => {
            let off = g.int(0, 20);
            cmd(&["SETRANGE", &k, &off, &v])
        }
        9 => {
            let mut a = vec!["MSET".to_string()];
            for _ in 0..1 + g.rng.below(3) {
                a.push(g.key());
                a.push(g.val());
            }
            owned(a, Cmp::Exact)
        }
        10 => {
            let mut a = vec!["MGET".to_string()];
            a.extend(g.keys(4));
            owned(a, Cmp::Exact)
        }
        11 | 12 => {
            let off = g.int(0, 100);
            let bit = g.int(0, 1);
            cmd(&["SETBIT", &k, &off, &bit])
        }
        13 => {
            let off = g.int(0, 100);
            cmd(&["GETBIT", &k, &off])
        }
        14 => {
            let mut a = vec!["BITCOUNT".to_string(), k];
            if g.rng.chance(60) {
                a.push(g.int(-5, 10));
                a.push(g.int(-5, 10));
                if g.rng.chance(50) {
                    a.push(g.rng.pick(&["BYTE", "BIT"]).into());
                }
            }
            owned(a, Cmp::Exact)
        }
        15 => cmd(&["STRLEN", &k]),
        16 => cmd(&[r.pick(&["GETSET", "SETNX"]), &k, &v]),
        17 => cmd(&["GETDEL", &k]),
        18 => {
            let mut a = vec!["MSETNX".to_string()];
            for _ in 0..1 + g.rng.below(2) {
                a.push(g.key());
                a.push(g.val());
            }
            owned(a, Cmp::Exact)
        }
        19 => {
            let f = g.float();
            cmd(&["INCRBYFLOAT", &k, &f])
        }
        20 => match r.below(3) {
            0 => cmd(&["GETEX", &k, "PERSIST"]),
            1 => cmd(&["GETEX", &k, "EX", "20000"]),
            _ => cmd(&["SETEX", &k, "30000", &v]),
        },
        _ => {
            let b = g.int(0, 1);
            cmd(&["BITPOS", &k, &b])
        }
    }
}

fn keyspace(g: &mut G) -> Cmd {
    let k = g.key();
    let k2 = g.key();
    let r = &mut g.rng;
    match r.below(22) {
        0..=5 => foreign(g),
        6 => {
            let mut a = vec![r.pick(&["DEL", "UNLINK"]).to_string()];
            a.extend(g.keys(3));
            owned(a, Cmp::Exact)
        }
        7 => {
            let mut a = vec![r.pick(&["EXISTS", "TOUCH"]).to_string()];
            a.extend(g.keys(4));
            owned(a, Cmp::Exact)
        }
        8 => cmd(&["TYPE", &k]),
        9 => cmd(&[r.pick(&["RENAME", "RENAMENX"]), &k, &k2]),
        10 => {
            let mut a = vec!["COPY".to_string(), k, k2];
            if r.chance(40) {
                a.extend(["DB".into(), r.below(3).to_string()]);
            }
            if r.chance(40) {
                a.push("REPLACE".into());
            }
            owned(a, Cmp::Exact)
        }
        11 => {
            let mut a = vec![
                "EXPIRE".to_string(),
                k,
                g.rng.pick(&["1000", "50000", "100000", "0", "-5"]).into(),
            ];
            if g.rng.chance(40) {
                a.push(g.rng.pick(&["NX", "XX"]).into());
            }
            owned(a, Cmp::Exact)
        }
        12 => cmd(&["PEXPIRE", &k, "99000000"]),
        13 => {
            // Absolute times: GT / LT then compare the same instants on both.
            let mut a = vec![
                "EXPIREAT".to_string(),
                k,
                g.rng
                    .pick(&["4000000000", "4100000000", "4200000000", "1"])
                    .into(),
            ];
            if g.rng.chance(60) {
                a.push(g.rng.pick(&["NX", "XX", "GT", "LT"]).into());
            }
            owned(a, Cmp::Exact)
        }
        14 => cmd(&["PERSIST", &k]),
        15 => owned(
            vec![r.pick(&["TTL", "PTTL", "EXPIRETIME"]).into(), k],
            Cmp::TtlSign,
        ),
        16 => cmd(&["MOVE", &k, &r.below(3).to_string()]),
        17 => cmd(&["SELECT", &r.below(3).to_string()]),
        18 => cmd(&["DBSIZE"]),
        19 => owned(
            vec!["KEYS".into(), r.pick(&["*", "k*", "{a}*", "*[13]"]).into()],
            Cmp::Unordered,
        ),
        20 => strings(g),
        _ => {
            if r.chance(30) {
                cmd(&["SWAPDB", &r.below(3).to_string(), &r.below(3).to_string()])
            } else {
                cmd(&["EXISTS", &k])
            }
        }
    }
}

const ELEMS: [&str; 8] = ["a", "b", "c", "1", "2", "300", "", "long-element-xyz"];

fn lists_cmd(g: &mut G) -> Cmd {
    if g.rng.chance(8) {
        return foreign(g);
    }
    let k = g.key();
    let k2 = g.key();
    let e = g.rng.pick(&ELEMS).to_string();
    let r = &mut g.rng;
    match r.below(18) {
        0..=2 => {
            let mut a = vec![r.pick(&["LPUSH", "RPUSH"]).to_string(), k];
            for _ in 0..1 + r.below(3) {
                a.push(r.pick(&ELEMS).into());
            }
            owned(a, Cmp::Exact)
        }
        3 => cmd(&[r.pick(&["LPUSHX", "RPUSHX"]), &k, &e]),
        4 => {
            let mut a = vec![r.pick(&["LPOP", "RPOP"]).to_string(), k];
            if r.chance(40) {
                a.push(r.below(4).to_string());
            }
            owned(a, Cmp::Exact)
        }
        5 | 6 => {
            let (s, e) = (g.int(-6, 6), g.int(-6, 6));
            cmd(&["LRANGE", &k, &s, &e])
        }
        7 => {
            let i = g.int(-4, 4);
            cmd(&["LINDEX", &k, &i])
        }
        8 => {
            let i = g.int(-4, 4);
            cmd(&["LSET", &k, &i, &e])
        }
        9 => {
            let pivot = r.pick(&ELEMS);
            cmd(&["LINSERT", &k, r.pick(&["BEFORE", "AFTER"]), pivot, &e])
        }
        10 => {
            let n = g.int(-2, 2);
            cmd(&["LREM", &k, &n, &e])
        }
        11 => {
            let (s, e) = (g.int(-5, 3), g.int(-3, 6));
            cmd(&["LTRIM", &k, &s, &e])
        }
        12 => cmd(&["LLEN", &k]),
        13 => {
            let mut a = vec!["LPOS".to_string(), k, e];
            if g.rng.chance(40) {
                a.extend(["RANK".into(), g.rng.pick(&["1", "2", "-1", "0"]).into()]);
            }
            if g.rng.chance(40) {
                a.extend(["COUNT".into(), g.int(0, 3)]);
            }
            if g.rng.chance(20) {
                a.extend(["MAXLEN".into(), g.int(0, 4)]);
            }
            owned(a, Cmp::Exact)
        }
        14 | 15 => {
            let (f, t) = (r.pick(&["LEFT", "RIGHT"]), r.pick(&["LEFT", "RIGHT"]));
            cmd(&["LMOVE", &k, &k2, f, t])
        }
        16 => cmd(&["RPOPLPUSH", &k, &k2]),
        _ => {
            let keys = g.keys(3);
            let mut a = vec!["LMPOP".to_string(), keys.len().to_string()];
            a.extend(keys);
            a.push(g.rng.pick(&["LEFT", "RIGHT"]).into());
            if g.rng.chance(50) {
                a.extend(["COUNT".into(), g.int(1, 3)]);
            }
            owned(a, Cmp::Exact)
        }
    }
}

const FIELDS: [&str; 6] = ["f", "g", "h", "1", "field-with-a-longer-name", "n"];

fn hashes_cmd(g: &mut G) -> Cmd {
    if g.rng.chance(8) {
        return foreign(g);
    }
    let k = g.key();
    let f = g.rng.pick(&FIELDS).to_string();
    let v = g.val();
    let r = &mut g.rng;
    match r.below(15) {
        0..=2 => {
            let mut a = vec![r.pick(&["HSET", "HMSET"]).to_string(), k];
            for _ in 0..1 + r.below(3) {
                a.push(r.pick(&FIELDS).into());
                a.push(r.pick(&VALUES).into());
            }
            owned(a, Cmp::Exact)
        }
        3 => cmd(&["HSETNX", &k, &f, &v]),
        4 | 5 => cmd(&["HGET", &k, &f]),
        6 => {
            let mut a = vec!["HMGET".to_string(), k];
            for _ in 0..1 + r.below(3) {
                a.push(r.pick(&FIELDS).into());
            }
            owned(a, Cmp::Exact)
        }
        7 => {
            let mut a = vec!["HDEL".to_string(), k];
            for _ in 0..1 + r.below(2) {
                a.push(r.pick(&FIELDS).into());
            }
            owned(a, Cmp::Exact)
        }
        8 => cmd(&["HLEN", &k]),
        9 => cmd(&["HEXISTS", &k, &f]),
        10 => {
            let n = g.int(-3, 50);
            cmd(&["HINCRBY", &k, &f, &n])
        }
        11 => {
            let x = g.float();
            cmd(&["HINCRBYFLOAT", &k, &f, &x])
        }
        12 => cmd(&["HSTRLEN", &k, &f]),
        _ => owned(
            vec![r.pick(&["HGETALL", "HKEYS", "HVALS"]).into(), k],
            Cmp::Unordered,
        ),
    }
}

const MEMBERS: [&str; 10] = ["1", "2", "3", "17", "-4", "100", "a", "b", "zz", "1000000"];

fn sets_cmd(g: &mut G) -> Cmd {
    if g.rng.chance(8) {
        return foreign(g);
    }
    let k = g.key();
    let k2 = g.key();
    let m = g.rng.pick(&MEMBERS).to_string();
    let r = &mut g.rng;
    match r.below(15) {
        0..=2 => {
            let mut a = vec!["SADD".to_string(), k];
            for _ in 0..1 + r.below(4) {
                a.push(r.pick(&MEMBERS).into());
            }
            owned(a, Cmp::Exact)
        }
        3 => {
            let mut a = vec!["SREM".to_string(), k];
            for _ in 0..1 + r.below(2) {
                a.push(r.pick(&MEMBERS).into());
            }
            owned(a, Cmp::Exact)
        }
        4 => cmd(&["SISMEMBER", &k, &m]),
        5 => {
            let m2 = r.pick(&MEMBERS);
            cmd(&["SMISMEMBER", &k, &m, m2])
        }
        6 => cmd(&["SCARD", &k]),
        7 => owned(vec!["SMEMBERS".into(), k], Cmp::Unordered),
        8 | 9 => {
            let mut a = vec![r.pick(&["SINTER", "SUNION", "SDIFF"]).to_string()];
            a.extend(g.keys(3));
            owned(a, Cmp::Unordered)
        }
        10 => {
            let keys = g.keys(3);
            let mut a = vec!["SINTERCARD".to_string(), keys.len().to_string()];
            a.extend(keys);
            if g.rng.chance(40) {
                a.extend(["LIMIT".into(), g.int(0, 3)]);
            }
            owned(a, Cmp::Exact)
        }
        11 | 12 => cmd(&["SMOVE", &k, &k2, &m]),
        _ => {
            let mut a = vec![
                r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
                    .to_string(),
                k,
            ];
            a.extend(g.keys(3));
            owned(a, Cmp::Exact)
        }
    }
}

const SCORES: [&str; 10] = [
    "0", "1", "2", "-1", "1.5", "2.5", "-inf", "+inf", "10", "0.25",
];
const ZMEMBERS: [&str; 8] = ["a", "b", "c", "d", "one", "two", "x", "1"];

fn zsets_cmd(g: &mut G) -> Cmd {
    if g.rng.chance(8) {
        return foreign(g);
    }
    let k = g.key();
    let m = g.rng.pick(&ZMEMBERS).to_string();
    let r = &mut g.rng;
    let bound = |r: &mut Rng| -> String {
        let s = r.pick(&["0", "1", "2", "-1", "1.5", "-inf", "+inf", "10"]);
        if s.ends_with("inf") || r.chance(70) {
            s.into()
        } else {
            format!("({s}")
        }
    };
    let lex =
        |r: &mut Rng| -> String { r.pick(&["-", "+", "[a", "(b", "[one", "(x", "[1"]).into() };
    match r.below(22) {
        0..=2 => {
            let mut a = vec!["ZADD".to_string(), k];
            if r.chance(30) {
                a.push(r.pick(&["NX", "XX", "GT", "LT"]).into());
            }
            if r.chance(30) {
                a.push("CH".into());
            }
            let incr = r.chance(10);
            if incr {
                a.push("INCR".into());
            }
            for _ in 0..if incr { 1 } else { 1 + r.below(3) } {
                a.push(r.pick(&SCORES).into());
                a.push(r.pick(&ZMEMBERS).into());
            }
            owned(a, Cmp::Exact)
        }
        3 => {
            let s = r.pick(&SCORES);
            cmd(&["ZINCRBY", &k, s, &m])
        }
        4 => cmd(&["ZREM", &k, &m]),
        5 | 6 => {
            let (s, e) = (g.int(-4, 4), g.int(-4, 4));
            let mut a = vec!["ZRANGE".to_string(), k, s, e];
            if g.rng.chance(30) {
                a.push("REV".into());
            }
            if g.rng.chance(50) {
                a.push("WITHSCORES".into());
            }
            owned(a, Cmp::Exact)
        }
        7 => {
            let (lo, hi) = (bound(r), bound(r));
            let mut a = vec!["ZRANGE".to_string(), k, lo, hi, "BYSCORE".into()];
            if r.chance(30) {
                a.push("REV".into());
            }
            if r.chance(30) {
                a.extend([
                    "LIMIT".into(),
                    r.below(3).to_string(),
                    r.range(-1, 3).to_string(),
                ]);
            }
            if r.chance(50) {
                a.push("WITHSCORES".into());
            }
            owned(a, Cmp::Exact)
        }
        8 => {
            let (lo, hi) = (lex(r), lex(r));
            cmd(&["ZRANGEBYLEX", &k, &lo, &hi])
        }
        9 => {
            let (lo, hi) = (bound(r), bound(r));
            cmd(&["ZREVRANGEBYSCORE", &k, &hi, &lo, "WITHSCORES"])
        }
        10 => cmd(&[r.pick(&["ZRANK", "ZREVRANK", "ZSCORE"]), &k, &m]),
        11 => {
            let m2 = r.pick(&ZMEMBERS);
            cmd(&["ZMSCORE", &k, &m, m2])
        }
        12 => cmd(&["ZCARD", &k]),
        13 => {
            let (lo, hi) = (bound(r), bound(r));
            cmd(&["ZCOUNT", &k, &lo, &hi])
        }
        14 => {
            let (lo, hi) = (lex(r), lex(r));
            cmd(&["ZLEXCOUNT", &k, &lo, &hi])
        }
        15 => {
            let mut a = vec![r.pick(&["ZPOPMIN", "ZPOPMAX"]).to_string(), k];
            if r.chance(50) {
                a.push(r.below(3).to_string());
            }
            owned(a, Cmp::Exact)
        }
        16 | 17 => {
            let store = r.chance(60);
            let op = r.pick(&["UNION", "INTER", "DIFF"]);
            let keys = g.keys(3);
            let mut a = if store {
                vec![format!("Z{op}STORE"), k]
            } else {
                vec![format!("Z{op}")]
            };
            a.push(keys.len().to_string());
            a.extend(keys.iter().cloned());
            if op != "DIFF" {
                if g.rng.chance(30) {
                    a.push("WEIGHTS".into());
                    for _ in &keys {
                        a.push(g.rng.pick(&["1", "2", "0", "-1", "0.5"]).into());
                    }
                }
                if g.rng.chance(30) {
                    a.extend([
                        "AGGREGATE".into(),
                        g.rng.pick(&["SUM", "MIN", "MAX"]).into(),
                    ]);
                }
            }
            if !store && g.rng.chance(50) {
                a.push("WITHSCORES".into());
            }
            owned(a, Cmp::Exact)
        }
        18 => {
            let (s, e) = (g.int(-3, 3), g.int(-3, 3));
            cmd(&["ZREMRANGEBYRANK", &k, &s, &e])
        }
        19 => {
            if r.chance(50) {
                let (lo, hi) = (bound(r), bound(r));
                cmd(&["ZREMRANGEBYSCORE", &k, &lo, &hi])
            } else {
                let (lo, hi) = (lex(r), lex(r));
                cmd(&["ZREMRANGEBYLEX", &k, &lo, &hi])
            }
        }
        20 => {
            let (dst, s, e) = (g.key(), g.int(-3, 3), g.int(-3, 3));
            cmd(&["ZRANGESTORE", &dst, &k, &s, &e])
        }
        _ => {
            let keys = g.keys(3);
            let mut a = vec!["ZMPOP".to_string(), keys.len().to_string()];
            a.extend(keys);
            a.push(g.rng.pick(&["MIN", "MAX"]).into());
            if g.rng.chance(50) {
                a.extend(["COUNT".into(), g.int(1, 3)]);
            }
            owned(a, Cmp::Exact)
        }
    }
}

/// HLLs and streams keep to alternate keys (shared ones would mostly give
/// WRONGTYPE); the other keys of multi-key commands are any.
fn half_key(g: &mut G, odd: bool) -> String {
    KEYS[2 * g.rng.below(KEYS.len() as u64 / 2) as usize + odd as usize].to_string()
}

fn hll(g: &mut G) -> Cmd {
    let k = half_key(g, false);
    match g.rng.below(6) {
        0..=2 => {
            let mut a = vec!["PFADD".to_string(), k];
            for _ in 0..g.rng.below(6) {
                a.push(format!("e{}", g.rng.below(400)));
            }
            owned(a, Cmp::Exact)
        }
        3 => {
            let mut a = vec!["PFCOUNT".to_string()];
            a.extend(g.keys(3));
            owned(a, Cmp::Exact)
        }
        4 => {
            let mut a = vec!["PFMERGE".to_string(), k];
            a.extend(g.keys(2));
            owned(a, Cmp::Exact)
        }
        _ => cmd(&["GET", &k]),
    }
}

fn streams(g: &mut G) -> Cmd {
    let k = half_key(g, true);
    match g.rng.below(8) {
        0..=2 => {
            let mut a = vec!["XADD".to_string(), k];
            if g.rng.chance(10) {
                a.push("NOMKSTREAM".into());
            }
            if g.rng.chance(15) {
                a.extend(["MAXLEN".into(), g.int(0, 5)]);
            }
            a.push(g.stream_id());
            for _ in 0..1 + g.rng.below(2) {
                a.push(g.rng.pick(&FIELDS).into());
                a.push(g.val());
            }
            owned(a, Cmp::Exact)
        }
        3 => {
            let (lo, hi) = if g.rng.chance(50) {
                ("-".to_string(), "+".to_string())
            } else {
                (g.old_id(), g.old_id())
            };
            let op = g.rng.pick(&["XRANGE", "XREVRANGE"]);
            let mut a = if op == "XRANGE" {
                vec![op.to_string(), k, lo, hi]
            } else {
                vec![op.to_string(), k, hi, lo]
            };
            if g.rng.chance(30) {
                a.extend(["COUNT".into(), g.int(0, 3)]);
            }
            owned(a, Cmp::Exact)
        }
        4 => cmd(&["XLEN", &k]),
        5 => {
            let mut a = vec!["XDEL".to_string(), k];
            for _ in 0..1 + g.rng.below(2) {
                a.push(format!("{}-{}", g.rng.below(g.next_id + 1), g.rng.below(2)));
            }
            owned(a, Cmp::Exact)
        }
        6 => {
            if g.rng.chance(50) {
                let n = g.int(0, 6);
                cmd(&["XTRIM", &k, "MAXLEN", &n])
            } else {
                let id = format!("{}", g.rng.below(g.next_id + 1));
                cmd(&["XTRIM", &k, "MINID", &id])
            }
        }
        _ => {
            let mut a = vec!["XRANGE".to_string(), k, "-".into(), "+".into()];
            if g.rng.chance(50) {
                a.extend(["COUNT".into(), "2".into()]);
            }
            owned(a, Cmp::Exact)
        }
    }
}

fn hll_and_streams_gen(g: &mut G) -> Cmd {
    match g.rng.below(20) {
        0..=8 => hll(g),
        9..=17 => streams(g),
        18 => strings(g),
        _ => foreign(g),
    }
}

const SCRIPTS: [(&str, usize, usize); 10] = [
    ("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, 1),
    (
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[2])",
        2,
        1,
    ),
    ("return redis.pcall('RPUSH', KEYS[1], ARGV[1])", 1, 1),
    (
        "local t = redis.call('TYPE', KEYS[1]); return {t.ok, redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3])}",
        3,
        0,
    ),
    ("return redis.call('SADD', KEYS[1], ARGV[1])", 1, 1),
    (
        "local v = redis.call('HINCRBY', KEYS[1], 'f', 1); redis.call('ZADD', KEYS[2], v, ARGV[1]); return redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')",
        2,
        1,
    ),
    ("return redis.call('LRANGE', KEYS[1], 0, -1)", 1, 0),
    ("return redis.call('GET', KEYS[1])", 1, 0),
    (
        "redis.call('DEL', KEYS[1]); return redis.call('RENAME', KEYS[2], KEYS[1])",
        2,
        0,
    ),
    (
        "local r = redis.pcall('LPUSH', KEYS[1], ARGV[1]); if type(r) == 'table' and r.err then return 'err: ' .. r.err end; return r",
        1,
        1,
    ),
];

fn eval(g: &mut G) -> Cmd {
    let (src, nkeys, nargs) = SCRIPTS[g.rng.below(SCRIPTS.len() as u64) as usize];
    let mut a = vec!["EVAL".to_string(), src.to_string(), nkeys.to_string()];
    for _ in 0..nkeys {
        a.push(g.key());
    }
    for _ in 0..nargs {
        a.push(g.rng.pick(&["1", "5", "a", "-2"]).into());
    }
    owned(a, Cmp::Exact)
}

/// Any single command from any family.
fn any(g: &mut G) -> Cmd {
    let gens: [Gen; 9] = [
        strings, keyspace, lists_cmd, hashes_cmd, sets_cmd, zsets_cmd, hll, streams, eval,
    ];
    gens[g.rng.below(gens.len() as u64) as usize](g)
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
                Cmp::TtlSign => {
                    let sign = |b: &[u8]| match Resp::parse(b) {
                        Resp::Int(n) => Resp::Int(n.clamp(-2, 1)),
                        other => other,
                    };
                    sign(&kr) == sign(&rr)
                }
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

    fn digest(&mut self) -> bool {
        self.exchange(&[b"DEBUG".to_vec(), b"DIGEST".to_vec()], Cmp::Exact)
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
            Cmp::TtlSign => {
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
