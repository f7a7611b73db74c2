//! The seeded command generator of the randomised tests: a small keyspace
//! (30 keys, some hash-tagged so they spread over shards, 3 DBs) and one
//! generator per command family. Shared by compat_random (replies compared
//! with stock Redis) and replication_effects (datasets compared with a
//! stock replica).

// ---------------------------------------------------------------------------
// PRNG and generator state

/// splitmix64: tiny, seedable, good enough for picking commands.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An integer in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Cmp {
    Exact,
    /// Arrays sorted at every level (set and hash iteration order).
    Unordered,
    /// TTL / PTTL / EXPIRETIME: negative replies exactly, PTTL within
    /// `PTTL_TOLERANCE_MS`, seconds exactly unless the two servers straddle
    /// a rounding boundary (checked with a follow-up PTTL/PEXPIRETIME).
    Ttl,
}

pub struct Cmd {
    pub args: Vec<Vec<u8>>,
    pub cmp: Cmp,
}

pub struct G {
    pub rng: Rng,
    /// Milliseconds part of the next stream ID: only grows.
    pub next_id: u64,
}

pub type Gen = fn(&mut G) -> Cmd;

pub fn cmd(parts: &[&str]) -> Cmd {
    Cmd {
        args: parts.iter().map(|s| s.as_bytes().to_vec()).collect(),
        cmp: Cmp::Exact,
    }
}

pub fn owned(parts: Vec<String>, cmp: Cmp) -> Cmd {
    Cmd {
        args: parts.into_iter().map(String::into_bytes).collect(),
        cmp,
    }
}

pub const KEYS: [&str; 30] = [
    "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "{a}0", "{a}1", "{a}2", "{a}3",
    "{a}4", "{b}0", "{b}1", "{b}2", "{b}3", "{b}4", "{c}0", "{c}1", "{c}2", "{c}3", "{c}4", "{d}0",
    "{d}1", "{d}2", "{d}3", "{d}4",
];

pub const VALUES: [&str; 12] = [
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
pub const FLOATS: [&str; 8] = ["0", "1.5", "-0.25", "3", "0.125", "-2", "10.5", "1e3"];

impl G {
    pub fn new(seed: u64) -> G {
        G {
            rng: Rng(seed),
            next_id: 1,
        }
    }

    pub fn key(&mut self) -> String {
        KEYS[self.rng.below(KEYS.len() as u64) as usize].to_string()
    }

    /// 1..=max distinct-or-not keys.
    pub fn keys(&mut self, max: u64) -> Vec<String> {
        let n = 1 + self.rng.below(max);
        (0..n).map(|_| self.key()).collect()
    }

    pub fn val(&mut self) -> String {
        self.rng.pick(&VALUES).to_string()
    }

    pub fn int(&mut self, lo: i64, hi: i64) -> String {
        self.rng.range(lo, hi).to_string()
    }

    pub fn float(&mut self) -> String {
        self.rng.pick(&FLOATS).to_string()
    }

    pub fn stream_id(&mut self) -> String {
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
    pub fn old_id(&mut self) -> String {
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
pub fn foreign(g: &mut G) -> Cmd {
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

pub fn strings(g: &mut G) -> Cmd {
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

pub fn keyspace(g: &mut G) -> Cmd {
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
            Cmp::Ttl,
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

pub const ELEMS: [&str; 8] = ["a", "b", "c", "1", "2", "300", "", "long-element-xyz"];

pub fn lists_cmd(g: &mut G) -> Cmd {
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

pub const FIELDS: [&str; 6] = ["f", "g", "h", "1", "field-with-a-longer-name", "n"];

pub fn hashes_cmd(g: &mut G) -> Cmd {
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

pub const MEMBERS: [&str; 10] = ["1", "2", "3", "17", "-4", "100", "a", "b", "zz", "1000000"];

pub fn sets_cmd(g: &mut G) -> Cmd {
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

pub const SCORES: [&str; 10] = [
    "0", "1", "2", "-1", "1.5", "2.5", "-inf", "+inf", "10", "0.25",
];
pub const ZMEMBERS: [&str; 8] = ["a", "b", "c", "d", "one", "two", "x", "1"];

pub fn zsets_cmd(g: &mut G) -> Cmd {
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
pub fn half_key(g: &mut G, odd: bool) -> String {
    KEYS[2 * g.rng.below(KEYS.len() as u64 / 2) as usize + odd as usize].to_string()
}

pub fn hll(g: &mut G) -> Cmd {
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

pub fn streams(g: &mut G) -> Cmd {
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

pub fn hll_and_streams_gen(g: &mut G) -> Cmd {
    match g.rng.below(20) {
        0..=8 => hll(g),
        9..=17 => streams(g),
        18 => strings(g),
        _ => foreign(g),
    }
}

pub const SCRIPTS: [(&str, usize, usize); 10] = [
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

pub fn eval(g: &mut G) -> Cmd {
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
pub fn any(g: &mut G) -> Cmd {
    let gens: [Gen; 9] = [
        strings, keyspace, lists_cmd, hashes_cmd, sets_cmd, zsets_cmd, hll, streams, eval,
    ];
    gens[g.rng.below(gens.len() as u64) as usize](g)
}
