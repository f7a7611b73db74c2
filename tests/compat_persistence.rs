//! DUMP / RESTORE: keel vs stock redis-server.

#[macro_use]
mod common;

use common::{Pair, Resp};

pair_tests!(
    restore_errors,
    dump_identical,
    cross_restore,
    restore_ttl_and_idle,
    restore_freq_and_idle_per_policy,
);

/// Values of every type in small and big encodings, on both servers.
fn populate(p: &mut Pair) {
    let mut lines: Vec<String> = vec![
        "SET s hello".into(),
        "SET n 12345".into(),
        "SET neg -7".into(),
        "SET big 9223372036854775807".into(),
        format!("SET long {}", "abc".repeat(100)),
        "RPUSH l a b 1 -5 300 70000".into(),
        "SADD si 1 2 3 -100000 5000000000".into(),
        "SADD ss a b c".into(),
        "HSET h f1 v1 f2 2".into(),
        "ZADD z 1 a 2.5 b -inf c 1e300 d 0.1 e".into(),
        format!("HSET hlong f {}", "v".repeat(100)),
        format!("ZADD zlong 1 {}", "m".repeat(100)),
    ];
    for i in 0..300 {
        lines.push(format!("HSET hm f{i} {i}"));
        lines.push(format!("ZADD zb {} m{i}", i as f64 / 3.0));
        lines.push(format!("RPUSH lb {}", "x".repeat(i)));
        lines.push(format!("SADD sb m{i}"));
        lines.push(format!("SADD sib {i}"));
        lines.push(format!("SADD sii {}", i * 1000));
    }
    for i in 1..=250 {
        lines.push(format!("XADD x {i}-1 f {i} g v"));
        lines.push(format!("XADD xg {i}-{} f {i}", i % 3));
    }
    for l in [
        "XADD x 300-0 other field",
        "XGROUP CREATE xg g1 0",
        "XGROUP CREATE xg g2 $",
        "XREADGROUP GROUP g1 alice COUNT 5 STREAMS xg >",
        "XREADGROUP GROUP g1 bob COUNT 3 STREAMS xg >",
        "XACK xg g1 2-2",
        "XGROUP CREATECONSUMER xg g1 carol",
        "XDEL xg 100-1 101-2",
        "XADD xe 1-1 f v",
        "XDEL xe 1-1",
        "XGROUP CREATE xe g 0",
    ] {
        lines.push(l.into());
    }
    for i in 0..600 {
        lines.push(format!("SADD sbig {i}"));
        lines.push(format!("HSET hb f{i} {i}"));
    }
    for l in &lines {
        p.check(l);
    }
}

const KEYS: &[&str] = &[
    "s", "n", "neg", "big", "long", "l", "si", "ss", "h", "z", "hlong", "zlong", "hb", "hm", "zb",
    "lb", "sb", "sib", "sii", "sbig", "x", "xg", "xe",
];

/// Hashtable-encoded values: their DUMP order is Redis's dict order.
const UNORDERED: &[&str] = &["ss", "sb", "sbig", "hb", "hlong", "xg", "xe"];

fn restore_errors(p: &mut Pair) {
    p.checks(&[
        "SET s v",
        "RESTORE s 0 x",
        "RESTORE s2 -1 x",
        "RESTORE s2 abc x",
        "RESTORE s2 0 x",
        "RESTORE s2 0 \"\"",
        "RESTORE s 0 x REPLACE foo",
        "RESTORE s 0 x IDLETIME -1",
        "RESTORE s 0 x IDLETIME",
        "RESTORE s 0 x IDLETIME abc",
        "RESTORE s 0 x FREQ 256",
        "RESTORE s 0 x FREQ -1",
        "RESTORE s 0 x FREQ 1 IDLETIME 1",
        "RESTORE s 0 x IDLETIME 1 FREQ 1",
        "RESTORE s2 0 x ABSTTL REPLACE",
        "RESTORE",
        "RESTORE a b",
        "DUMP",
        "DUMP nokey",
        "DUMP a b",
    ]);
    // A valid payload of a newer RDB version, a wrong checksum, bad data.
    let good = Resp::parse(&p.r.cmd(&["DUMP", "s"])).as_bytes().to_vec();
    let mut newer = good.clone();
    let n = newer.len();
    newer[n - 10] = 11;
    let mut badcrc = good.clone();
    badcrc[n - 1] ^= 1;
    p.check_args(&[&b"RESTORE"[..], b"x1", b"0", &newer]);
    p.check_args(&[&b"RESTORE"[..], b"x2", b"0", &badcrc]);
    // Unknown type 20 with a correct footer: "Bad data format".
    let mut t20 = vec![20u8, 1, b'a'];
    t20.extend_from_slice(&10u16.to_le_bytes());
    let crc = keel::rdb::crc64(0, &t20);
    t20.extend_from_slice(&crc.to_le_bytes());
    p.check_args(&[&b"RESTORE"[..], b"x3", b"0", &t20]);
    // An empty list (quicklist with no nodes) is "Bad data format" too.
    let mut empty = vec![18u8, 0];
    empty.extend_from_slice(&10u16.to_le_bytes());
    let crc = keel::rdb::crc64(0, &empty);
    empty.extend_from_slice(&crc.to_le_bytes());
    p.check_args(&[&b"RESTORE"[..], b"x4", b"0", &empty]);
    p.check("EXISTS x1 x2 x3 x4");
    // REPLACE over an existing key, then the copy reads the same.
    p.check_args(&[&b"RESTORE"[..], b"s", b"0", &good, b"REPLACE"]);
    p.check_args(&[&b"RESTORE"[..], b"s3", b"0", &good]);
    p.checks(&["GET s3", "TYPE s3"]);
}

/// With rdbcompression off, keel's DUMP is byte-identical to Redis's.
fn dump_identical(p: &mut Pair) {
    p.check("CONFIG SET rdbcompression no");
    populate(p);
    for k in KEYS.iter().filter(|k| !UNORDERED.contains(k)) {
        p.check(&format!("DUMP {k}"));
    }
}

/// Redis's DUMP (compressed) restores in keel and keel's in Redis, to the
/// same contents and encodings.
fn cross_restore(p: &mut Pair) {
    populate(p);
    for k in KEYS {
        let from_redis = Resp::parse(&p.r.cmd(&["DUMP", k])).as_bytes().to_vec();
        let from_keel = Resp::parse(&p.k.cmd(&["DUMP", k])).as_bytes().to_vec();
        let copy = format!("{k}:copy");
        let kr =
            p.k.cmd(&[&b"RESTORE"[..], copy.as_bytes(), b"0", &from_redis]);
        let rr =
            p.r.cmd(&[&b"RESTORE"[..], copy.as_bytes(), b"0", &from_keel]);
        p.expect_eq(&format!("RESTORE {copy}"), &kr, &rr);
        for line in [
            format!("DEBUG DIGEST-VALUE {k} {copy}"),
            format!("OBJECT ENCODING {copy}"),
            format!("TYPE {copy}"),
        ] {
            p.check(&line);
        }
    }
    p.check("DEBUG DIGEST");
    // Streams with groups: keel's copy of Redis's payload reads like Redis's original.
    for k in ["xg", "xe"] {
        let copy = format!("{k}:copy");
        let kr = p.k.cmd(&["XINFO", "STREAM", &copy, "FULL"]);
        let rr = p.r.cmd(&["XINFO", "STREAM", k, "FULL"]);
        p.expect_eq(&format!("XINFO STREAM {k} FULL"), &kr, &rr);
    }
}

fn restore_ttl_and_idle(p: &mut Pair) {
    p.check("SET s v");
    let good = Resp::parse(&p.r.cmd(&["DUMP", "s"])).as_bytes().to_vec();
    let r = |p: &mut Pair, args: &[&[u8]]| {
        let mut a: Vec<&[u8]> = vec![b"RESTORE"];
        a.extend_from_slice(args);
        p.check_args(&a);
    };
    r(p, &[b"t1", b"100000", &good]);
    p.check_int_close("PTTL t1", common::PTTL_TOLERANCE_MS);
    r(p, &[b"t2", b"4102444800000", &good, b"ABSTTL"]);
    p.check("PEXPIRETIME t2");
    // Already expired: OK, and no key (an existing one is deleted with REPLACE).
    r(p, &[b"t3", b"1", &good, b"ABSTTL"]);
    p.check("EXISTS t3");
    r(p, &[b"t1", b"1", &good, b"ABSTTL", b"REPLACE"]);
    p.check("EXISTS t1");
    r(p, &[b"t4", b"0", &good, b"IDLETIME", b"1000"]);
    p.check_int_close("OBJECT IDLETIME t4", 1);
    r(p, &[b"t5", b"0", &good, b"FREQ", b"100"]);
    p.check("GET t5");
}

/// RESTORE's FREQ counts under an LFU policy and IDLETIME under the others;
/// the option that does not apply is ignored (objectSetLRUOrLFU).
fn restore_freq_and_idle_per_policy(p: &mut Pair) {
    p.check("SET s v");
    let good = Resp::parse(&p.r.cmd(&["DUMP", "s"])).as_bytes().to_vec();
    let r = |p: &mut Pair, args: &[&[u8]]| {
        let mut a: Vec<&[u8]> = vec![b"RESTORE"];
        a.extend_from_slice(args);
        p.check_args(&a);
    };
    p.check("CONFIG SET maxmemory-policy allkeys-lfu");
    for (key, freq) in [(&b"f1"[..], &b"100"[..]), (b"{x}f2", b"0"), (b"f3", b"255")] {
        r(p, &[key, b"0", &good, b"FREQ", freq]);
        p.check(&format!("OBJECT FREQ {}", String::from_utf8_lossy(key)));
    }
    // IDLETIME under LFU: ignored, the counter starts at its initial value.
    r(p, &[b"f4", b"0", &good, b"IDLETIME", b"1000"]);
    p.check("OBJECT FREQ f4");
    p.check("OBJECT IDLETIME f4");
    p.check("CONFIG SET maxmemory-policy allkeys-lru");
    // FREQ under LRU: ignored, the key is fresh (idle 0, or 1 when the
    // clock's second turns between the two commands on a loaded machine).
    r(p, &[b"l1", b"0", &good, b"FREQ", b"100"]);
    p.check_int_close("OBJECT IDLETIME l1", 1);
    p.check("OBJECT FREQ l1");
    r(p, &[b"l2", b"0", &good, b"IDLETIME", b"5000"]);
    p.check_int_close("OBJECT IDLETIME l2", 1);
    p.check("CONFIG SET maxmemory-policy noeviction");
}
