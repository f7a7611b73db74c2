//! The compact encodings of small hashes, sets and sorted sets (listpack,
//! intset) against stock redis-server: randomized command sequences that
//! cross the encoding limits both ways, compared reply by reply, by OBJECT
//! ENCODING after every write, by DEBUG DIGEST-VALUE / DEBUG DIGEST, and
//! through RDB (DEBUG RELOAD on both, stock loading keel's dump, DUMP and
//! RESTORE each way).
//!
//! The limits are lowered (CONFIG SET on both) so that a few commands cross
//! them. Strings get the same treatment around keel's own limits (keys up
//! to 16 bytes and values up to 38 bytes stored inside the keyspace entry,
//! TTLs in a side table), compared with stock. Key names with `{a}` `{b}` `{c}` hash tags land on different
//! shards of `--shards 4`.

#[macro_use]
mod common;

use std::path::PathBuf;

use common::{Pair, Resp, Server};

pair_tests!(
    hash_random,
    set_random,
    zset_random,
    rdb_round_trip,
    string_ttl_random
);

/// xorshift64*: a fixed seed per scenario keeps failures reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: [&str; 3] = ["k{a}", "k{b}", "k{c}"];

/// Compares a reply exactly while the key is compact on stock (whose order
/// keel must match), else as unordered collections.
fn check_by_encoding(p: &mut Pair, key: &str, line: &str) {
    let enc = p.check(&format!("object encoding {key}"));
    if enc.starts_with(b"$9\r\nhashtable") || enc.starts_with(b"$8\r\nskiplist") {
        p.check_unordered(line);
    } else {
        p.check(line);
    }
}

/// After a write: the encoding and the value's digest agree.
fn after_write(p: &mut Pair, key: &str) {
    p.check(&format!("object encoding {key}"));
    p.check(&format!("debug digest-value {key}"));
}

fn hash_random(p: &mut Pair) {
    p.checks(&[
        "config set hash-max-listpack-entries 6",
        "config set hash-max-listpack-value 8",
    ]);
    let fields = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "longfield9"];
    let values = ["1", "-7", "x", "12345678", "123456789", "3.5", "", "abc"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..700 {
        let k = KEYS[rng.below(KEYS.len())];
        let f = rng.pick(&fields);
        match rng.below(16) {
            0..=2 => {
                let mut line = format!("hset {k}");
                for _ in 0..1 + rng.below(3) {
                    line += &format!(" {} {}", rng.pick(&fields), rng.pick(&values));
                }
                p.check(&line);
                after_write(p, k);
            }
            3 => {
                p.check(&format!("hsetnx {k} {f} {}", rng.pick(&values)));
                after_write(p, k);
            }
            4 | 5 => {
                p.check(&format!("hdel {k} {f} {}", rng.pick(&fields)));
                p.check(&format!("exists {k}"));
                after_write(p, k);
            }
            6 => {
                p.check(&format!("hincrby {k} {f} {}", rng.below(200_000_000)));
                after_write(p, k);
            }
            7 => {
                p.check(&format!("hincrbyfloat {k} {f} 1.25"));
                after_write(p, k);
            }
            8 => check_by_encoding(p, k, &format!("hgetall {k}")),
            9 => {
                check_by_encoding(p, k, &format!("hkeys {k}"));
                check_by_encoding(p, k, &format!("hvals {k}"));
            }
            10 => {
                // Count >= size gives the whole hash, in listpack order.
                check_by_encoding(p, k, &format!("hrandfield {k} 50 withvalues"));
                p.check_shape(&format!("hrandfield {k} -7 withvalues"));
                p.check_shape(&format!("hrandfield {k} 2"));
                p.check_shape(&format!("hrandfield {k}"));
            }
            11 => check_by_encoding(p, k, &format!("hscan {k} 0 count 100")),
            12 => {
                p.check(&format!("hmget {k} {f} f1 nope"));
                p.check(&format!("hstrlen {k} {f}"));
                p.check(&format!("hexists {k} {f}"));
                p.check(&format!("hlen {k}"));
            }
            13 => check_by_encoding(p, k, &format!("hscan {k} 0 match f* count 100")),
            14 => {
                if rng.below(4) == 0 {
                    p.check(&format!("del {k}"));
                }
            }
            _ => {
                p.check(&format!("hget {k} {f}"));
            }
        }
        if i % 50 == 0 {
            p.check("debug digest");
        }
    }
    p.check("debug digest");
}

fn set_random(p: &mut Pair) {
    p.checks(&["config set set-max-intset-entries 6"]);
    let ints = [
        "1",
        "-1",
        "0",
        "7",
        "300",
        "-40000",
        "70000",
        "-5000000000",
        "9223372036854775807",
        "-9223372036854775808",
        "12",
        "13",
    ];
    let strs = ["a", "007", "1.5", "9223372036854775808", " 1"];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let member = |rng: &mut Rng| -> &'static str {
        if rng.below(12) == 0 {
            rng.pick(&strs)
        } else {
            rng.pick(&ints)
        }
    };
    for i in 0..700 {
        let k = KEYS[rng.below(KEYS.len())];
        let k2 = KEYS[rng.below(KEYS.len())];
        match rng.below(15) {
            0..=3 => {
                let mut line = format!("sadd {k}");
                for _ in 0..1 + rng.below(3) {
                    line += &format!(" {}", member(&mut rng));
                }
                p.check(&line);
                after_write(p, k);
            }
            4 | 5 => {
                p.check(&format!(
                    "srem {k} {} {}",
                    member(&mut rng),
                    member(&mut rng)
                ));
                after_write(p, k);
            }
            6 => {
                // Which member pops is random: compare the shape, then
                // resynchronize keel from stock's contents.
                p.check_shape(&format!("spop {k}"));
                resync_set(p, k);
                after_write(p, k);
            }
            7 => {
                p.check(&format!("smove {k} {k2} {}", member(&mut rng)));
                after_write(p, k);
                after_write(p, k2);
            }
            8 => {
                p.check(&format!("sinterstore {k} {k2} {}", KEYS[rng.below(3)]));
                after_write(p, k);
            }
            9 => {
                p.check(&format!("sunionstore {k} {k2} {}", KEYS[rng.below(3)]));
                after_write(p, k);
            }
            10 => {
                p.check(&format!("sdiffstore {k} {k2} {}", KEYS[rng.below(3)]));
                after_write(p, k);
            }
            11 => {
                check_by_encoding(p, k, &format!("smembers {k}"));
                check_by_encoding(p, k, &format!("sscan {k} 0 count 100"));
                check_by_encoding(p, k, &format!("srandmember {k} 50"));
                p.check_shape(&format!("srandmember {k} -9"));
                p.check_shape(&format!("srandmember {k} 2"));
            }
            12 => {
                p.check(&format!("sismember {k} {}", member(&mut rng)));
                p.check(&format!("smismember {k} 1 7 a {}", member(&mut rng)));
                p.check(&format!("scard {k}"));
                p.check(&format!("sintercard 2 {k} {k2}"));
            }
            13 => check_by_encoding(p, k, &format!("sinter {k} {k2}")),
            _ => {
                if rng.below(3) == 0 {
                    p.check(&format!("del {k}"));
                }
            }
        }
        if i % 50 == 0 {
            p.check("debug digest");
        }
    }
    p.check("debug digest");
}

/// Makes keel's set `k` equal to stock's (after a random SPOP): deletes it
/// on both and re-adds stock's members in stock's order.
fn resync_set(p: &mut Pair, k: &str) {
    let members = match Resp::parse(&p.r.line(&format!("smembers {k}"))) {
        Resp::Array(v) => v,
        other => panic!("smembers: {other:?}"),
    };
    p.check(&format!("del {k}"));
    if members.is_empty() {
        return;
    }
    let mut args: Vec<Vec<u8>> = vec![b"sadd".to_vec(), k.as_bytes().to_vec()];
    args.extend(members.iter().map(|m| m.as_bytes().to_vec()));
    p.check_args(&args);
}

fn zset_random(p: &mut Pair) {
    p.checks(&[
        "config set zset-max-listpack-entries 6",
        "config set zset-max-listpack-value 8",
    ]);
    let members = ["a", "b", "c", "d", "e", "f", "g", "longmember", "x"];
    let scores = ["1", "2", "2", "-3.5", "0", "1e3", "inf", "-inf", "7"];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..700 {
        let k = KEYS[rng.below(KEYS.len())];
        let k2 = KEYS[rng.below(KEYS.len())];
        let m = rng.pick(&members);
        match rng.below(18) {
            0..=2 => {
                let flags = ["", "nx", "xx", "gt", "lt", "ch", "xx ch", "nx ch", "gt ch"];
                let mut line = format!("zadd {k} {}", rng.pick(&flags));
                for _ in 0..1 + rng.below(3) {
                    line += &format!(" {} {}", rng.pick(&scores), rng.pick(&members));
                }
                p.check(&line);
                after_write(p, k);
            }
            3 => {
                p.check(&format!("zadd {k} incr {} {m}", rng.pick(&scores)));
                after_write(p, k);
            }
            4 => {
                p.check(&format!("zincrby {k} 2.5 {m}"));
                after_write(p, k);
            }
            5 | 6 => {
                p.check(&format!("zrem {k} {m} {}", rng.pick(&members)));
                after_write(p, k);
            }
            7 => {
                p.check(&format!("zrange {k} 0 -1 withscores"));
                p.check(&format!("zrange {k} 1 -2 rev"));
                p.check(&format!("zrange {k} -2 100 withscores"));
            }
            8 => {
                p.check(&format!("zrangebyscore {k} -inf +inf withscores"));
                p.check(&format!("zrangebyscore {k} (1 7 limit 1 2"));
                p.check(&format!("zrevrangebyscore {k} 2 -3.5 withscores"));
                p.check(&format!("zcount {k} (0 +inf"));
            }
            9 => {
                // Lex ranges are defined on equal scores only: their own keys.
                let k = ["lx{a}", "lx{b}"][rng.below(2)];
                if rng.below(3) == 0 {
                    p.check(&format!("zrem {k} {m}"));
                } else {
                    p.check(&format!("zadd {k} 0 {m} 0 {}", rng.pick(&members)));
                }
                after_write(p, k);
                p.check(&format!("zrangebylex {k} - +"));
                p.check(&format!("zrangebylex {k} [b (f limit 0 3"));
                p.check(&format!("zrevrangebylex {k} + [c"));
                p.check(&format!("zlexcount {k} (a +"));
            }
            10 => {
                p.check(&format!("zrank {k} {m}"));
                p.check(&format!("zrevrank {k} {m}"));
                p.check(&format!("zscore {k} {m}"));
                p.check(&format!("zmscore {k} {m} a nope"));
                p.check(&format!("zcard {k}"));
            }
            11 => {
                p.check(&format!("zremrangebyrank {k} 0 0"));
                after_write(p, k);
            }
            12 => {
                p.check(&format!("zremrangebyscore {k} 1 2"));
                after_write(p, k);
            }
            13 => {
                p.check(&format!("zunionstore {k} 2 {k2} {}", KEYS[rng.below(3)]));
                after_write(p, k);
            }
            14 => {
                p.check(&format!(
                    "zinterstore {k} 2 {k2} {} weights 2 1",
                    KEYS[rng.below(3)]
                ));
                after_write(p, k);
            }
            15 => {
                check_by_encoding(p, k, &format!("zrandmember {k} 50 withscores"));
                p.check_shape(&format!("zrandmember {k} -5 withscores"));
                p.check_shape(&format!("zrandmember {k} 2"));
                check_by_encoding(p, k, &format!("zscan {k} 0 count 100"));
            }
            16 => {
                p.check(&format!("zrangestore {k2} {k} 0 2"));
                after_write(p, k2);
            }
            _ => {
                if rng.below(3) == 0 {
                    p.check(&format!("del {k}"));
                }
            }
        }
        if i % 50 == 0 {
            p.check("debug digest");
        }
    }
    p.check("debug digest");
}

/// Strings and TTLs: keys on both sides of the 16-byte inline limit,
/// values growing and shrinking across the 38-byte one, TTLs set, moved
/// (RENAME, COPY, MOVE, SWAPDB) and cleared, deletes reordering the keyspace.
/// Expiry times are absolute and far away, so replies do not depend on
/// timing.
fn string_ttl_random(p0: &mut Pair) {
    // DEBUG RELOAD writes dump.rdb: data dirs of its own (p0 only supplies
    // the shard count).
    let kdir = tempdir(&format!("keel-str{}", p0.shards));
    let rdir = tempdir(&format!("redis-str{}", p0.shards));
    let kd = kdir.to_str().unwrap().to_string();
    let rd = rdir.to_str().unwrap().to_string();
    let mut pair = Pair::with_args(p0.shards, &["--dir", &kd], &["--dir", &rd]);
    let p = &mut pair;
    let keys = [
        "s{a}",
        "s{b}",
        "a-key-longer-than-16{a}",
        "another-long-key-name{b}",
        "n{a}",
        "exactly16bytes{a}",
    ];
    let vals = [
        "v".to_string(),
        "12345".to_string(),
        "-9".to_string(),
        "x".repeat(37),
        "y".repeat(38),
        "z".repeat(39),
        "w".repeat(100),
    ];
    let mut rng = Rng(0x0bad_cafe_f00d_1234);
    let at = |n: usize| 4_000_000_000_000u64 + n as u64 * 1000;
    for i in 0..800 {
        let k = keys[rng.below(keys.len())];
        let k2 = keys[rng.below(keys.len())];
        let v = &vals[rng.below(vals.len())];
        match rng.below(16) {
            0 | 1 => {
                p.check(&format!("set {k} {v}"));
                after_write(p, k);
            }
            2 => {
                p.check(&format!("set {k} {v} pxat {}", at(i)));
                after_write(p, k);
            }
            3 => {
                let opt = ["keepttl", "get", "nx", "xx", "keepttl get"][rng.below(5)];
                p.check(&format!("set {k} {v} {opt}"));
                after_write(p, k);
            }
            4 => {
                p.check(&format!("append {k} {v}"));
                after_write(p, k);
            }
            5 => {
                p.check(&format!("setrange {k} {} {v}", rng.below(45)));
                after_write(p, k);
            }
            6 => {
                p.check(&format!("incrby {k} {}", rng.below(1000)));
                after_write(p, k);
            }
            7 => {
                p.check(&format!("pexpireat {k} {}", at(i)));
                p.check(&format!("persist {k2}"));
                after_write(p, k);
            }
            8 => {
                p.check(&format!("rename {k} {k2}"));
                after_write(p, k2);
            }
            9 => {
                p.check(&format!("copy {k} {k2} replace"));
                after_write(p, k2);
            }
            10 => {
                p.check(&format!("del {k}"));
            }
            11 => {
                p.check(&format!("move {k} 1"));
                p.check("select 1");
                p.check(&format!("pexpiretime {k}"));
                p.check(&format!("move {k} 0"));
                p.check("select 0");
            }
            12 => {
                p.check(&format!("getex {k} persist"));
                p.check(&format!("pexpiretime {k}"));
            }
            13 => {
                p.check("swapdb 0 2");
                p.check("dbsize");
                p.check("swapdb 0 2");
            }
            14 => {
                p.check(&format!("setbit {k} {} 1", rng.below(400)));
                after_write(p, k);
            }
            _ => {
                p.check(&format!("get {k}"));
                p.check(&format!("strlen {k}"));
                p.check(&format!("getrange {k} 30 45"));
                p.check(&format!("pexpiretime {k}"));
                p.check(&format!("object encoding {k}"));
            }
        }
        if i % 50 == 0 {
            p.check("debug digest");
            p.check("dbsize");
            p.check_unordered("keys *");
        }
    }
    p.check("debug digest");
    p.check("debug reload");
    p.check("debug digest");
    for k in keys {
        p.check(&format!("pexpiretime {k}"));
    }
    pair.finish();
    drop(pair);
    let _ = std::fs::remove_dir_all(&kdir);
    let _ = std::fs::remove_dir_all(&rdir);
}

fn tempdir(tag: &str) -> PathBuf {
    common::tempdir(&format!("compact-{tag}"))
}

/// Keys in every compact form and one of each big form, with the limits
/// at their defaults (what RDB files carry between servers).
const FILL: &str = r#"
    hset hs{a} f1 v1 f2 2 f3 -3 f4 123456789012 f5 3.5
    hset hb{b} big 0123456789012345678901234567890123456789012345678901234567890123456789 f x
    sadd si{a} 1 -2 300 -70000 5000000000
    sadd si16{c} 1 2 3
    sadd ss{b} a b c 1
    zadd zs{c} 1 a 2.5 b -inf c 1e300 d 3 e
    zadd zb{a} 1 0123456789012345678901234567890123456789012345678901234567890123456789 2 x
"#;

const CHECK_KEYS: [&str; 7] = [
    "hs{a}", "hb{b}", "si{a}", "si16{c}", "ss{b}", "zs{c}", "zb{a}",
];

/// The contents, encoding and digest of every FILL key on keel and on
/// stock `r` compared through `p`'s failure list.
fn compare_keys(p: &mut Pair, what: &str, keel: &mut common::Conn, r: &mut common::Conn) {
    for k in CHECK_KEYS {
        for line in [
            format!("object encoding {k}"),
            format!("debug digest-value {k}"),
            format!("type {k}"),
        ] {
            let (kr, rr) = (keel.line(&line), r.line(&line));
            p.expect_eq(&format!("{what}: {line}"), &kr, &rr);
        }
        let ty = r.line(&format!("type {k}"));
        let line = match &ty[..] {
            b"+hash\r\n" => format!("hgetall {k}"),
            b"+set\r\n" => format!("smembers {k}"),
            _ => format!("zrange {k} 0 -1 withscores"),
        };
        let (kr, rr) = (keel.line(&line), r.line(&line));
        let compact = !matches!(
            &r.line(&format!("object encoding {k}"))[..],
            b"$9\r\nhashtable\r\n" | b"$8\r\nskiplist\r\n"
        );
        if compact {
            p.expect_eq(&format!("{what}: {line}"), &kr, &rr);
        } else if common::unordered(&Resp::parse(&kr)) != common::unordered(&Resp::parse(&rr)) {
            p.fail(format!(
                "{what}: {line} (unordered)\n    keel:  {}\n    redis: {}",
                common::show(&kr),
                common::show(&rr)
            ));
        }
    }
    let (kd, rd) = (keel.line("debug digest"), r.line("debug digest"));
    p.expect_eq(&format!("{what}: debug digest"), &kd, &rd);
}

fn rdb_round_trip(p0: &mut Pair) {
    // This scenario needs data dirs: its own pair (p0 only supplies the
    // shard count).
    let kdir = tempdir("keel");
    let rdir = tempdir("redis");
    let kd = kdir.to_str().unwrap().to_string();
    let rd = rdir.to_str().unwrap().to_string();
    let mut p = Pair::with_args(p0.shards, &["--dir", &kd], &["--dir", &rd]);
    p.script(FILL);
    let (mut k, mut r) = p.conns();
    compare_keys(&mut p, "loaded by commands", &mut k, &mut r);

    // DEBUG RELOAD: each server saves and loads its own file.
    p.check("debug reload");
    let (mut k, mut r) = p.conns();
    compare_keys(&mut p, "after DEBUG RELOAD", &mut k, &mut r);

    // Stock loads keel's file.
    p.check("save");
    let stock = Server::redis(&["--dir", &kd, "--dbfilename", "dump.rdb"]);
    let mut s = stock.conn();
    let n = s.line("dbsize");
    p.expect_eq("stock loading keel's dump: dbsize", &n, b":7\r\n");
    compare_keys(&mut p, "stock loading keel's dump", &mut k, &mut s);

    // DUMP/RESTORE both ways: each payload carries the compact encoding.
    for key in CHECK_KEYS {
        let kdump = k.cmd(&["dump", key]);
        let rdump = r.cmd(&["dump", key]);
        let (Resp::Bulk(kp), Resp::Bulk(rp)) = (Resp::parse(&kdump), Resp::parse(&rdump)) else {
            panic!("dump {key}: keel {kdump:?} redis {rdump:?}");
        };
        let restored = format!("{key}x");
        let restored = restored.replacen('{', "r{", 1);
        let a = r.cmd(&[&b"restore"[..], restored.as_bytes(), &b"0"[..], &kp[..]]);
        p.expect_eq(
            &format!("stock RESTORE of keel's DUMP {key}"),
            &a,
            b"+OK\r\n",
        );
        let b = k.cmd(&[&b"restore"[..], restored.as_bytes(), &b"0"[..], &rp[..]]);
        p.expect_eq(
            &format!("keel RESTORE of stock's DUMP {key}"),
            &b,
            b"+OK\r\n",
        );
        for line in [
            format!("object encoding {restored}"),
            format!("debug digest-value {restored}"),
            format!("debug digest-value {key}"),
        ] {
            let (kr, rr) = (k.line(&line), r.line(&line));
            p.expect_eq(&line, &kr, &rr);
        }
    }
    p.finish();
    drop(s);
    drop(stock);
    drop(p);
    let _ = std::fs::remove_dir_all(&kdir);
    let _ = std::fs::remove_dir_all(&rdir);
}
