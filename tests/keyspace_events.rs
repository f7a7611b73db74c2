//! Keyspace notifications (notify-keyspace-events) against stock Redis 7.0:
//! the same scripted workload runs on both, and the keyspace/keyevent
//! messages a subscriber receives must be the same, message for message and
//! in the same order. On keel several subscribers listen at once, so with 4
//! shards they sit on other shards than the writer (connections are spread
//! by SO_REUSEPORT) and every one of them must hear everything.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Conn, Pair, Resp, Server, show};

/// Subscribers opened on keel (each must receive every message).
const KEEL_SUBSCRIBERS: usize = 6;
/// Marks the end of a phase: published after the workload.
const END: &str = "keel-test-end";

fn subscribe(c: &mut Conn) {
    // One reply per pattern/channel.
    c.send(&common::encode(&["PSUBSCRIBE", "__key*@*__:*"]));
    c.read_reply();
    c.send(&common::encode(&["SUBSCRIBE", END]));
    c.read_reply();
}

/// The (channel, message) pairs of the push messages `c` receives until the
/// END marker, which is not included.
fn messages_until_end(c: &mut Conn) -> Vec<(String, String)> {
    let mut got = Vec::new();
    loop {
        let raw = match c.try_read_reply(Duration::from_secs(10)) {
            Ok(r) => r,
            Err(e) => panic!(
                "{}: no END marker ({e:?}) after {} messages: {got:?}",
                c.who,
                got.len()
            ),
        };
        let Resp::Array(items) = Resp::parse(&raw) else {
            panic!("{}: not a push message: {}", c.who, show(&raw));
        };
        let parts: Vec<String> = items.iter().map(|r| r.as_str()).collect();
        match parts[0].as_str() {
            "pmessage" => got.push((parts[2].clone(), parts[3].clone())),
            "message" if parts[1] == END => return got,
            _ => panic!("{}: unexpected push {parts:?}", c.who),
        }
    }
}

/// Runs `phase` (commands sent through `p.check`, compared reply by reply),
/// then compares what the subscribers heard.
fn heard_equal(p: &mut Pair, what: &str, phase: impl FnOnce(&mut Pair)) {
    heard(p, what, false, phase)
}

/// As `heard_equal`, with the order ignored (active expiry and eviction
/// pick keys at random on both servers).
fn heard(p: &mut Pair, what: &str, unordered: bool, phase: impl FnOnce(&mut Pair)) {
    let mut rsub = p.redis.conn();
    subscribe(&mut rsub);
    let mut ksubs: Vec<Conn> = (0..KEEL_SUBSCRIBERS).map(|_| p.keel.conn()).collect();
    for s in &mut ksubs {
        subscribe(s);
    }
    phase(p);
    // Nothing is ordered between the END marker and events produced on
    // other shards, so it is sent once every event must have arrived: a
    // round trip to every shard (DBSIZE holds them all) comes first.
    p.k.line("DBSIZE");
    std::thread::sleep(Duration::from_millis(50));
    // Receiver counts differ (several subscribers on keel).
    p.k.line(&format!("PUBLISH {END} x"));
    p.r.line(&format!("PUBLISH {END} x"));
    let mut want = messages_until_end(&mut rsub);
    if unordered {
        want.sort();
    } else if p.shards > 1 {
        want = per_key(want);
    }
    assert!(!want.is_empty(), "{what}: stock sent no notification");
    for (i, s) in ksubs.iter_mut().enumerate() {
        let mut got = messages_until_end(s);
        if unordered {
            got.sort();
        } else if p.shards > 1 {
            got = per_key(got);
        }
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            p.fail(format!(
                "{what}: subscriber {i} heard {} messages, stock {}; first difference at {first}:\n    keel:  {:?}\n    redis: {:?}",
                got.len(),
                want.len(),
                &got[first..(first + 6).min(got.len())],
                &want[first..(first + 6).min(want.len())],
            ));
        }
    }
}

/// The messages grouped by key (stable: each key's own order kept). Shards
/// deliver what they produce in order, but two keys on two shards have no
/// order between them, as with any two publishers.
fn per_key(mut msgs: Vec<(String, String)>) -> Vec<(String, String)> {
    let key = |(chan, msg): &(String, String)| -> String {
        match chan.split_once("__:") {
            Some((head, k)) if head.starts_with("__keyspace@") => format!("{head}:{k}"),
            Some((head, _)) => format!("{}:{msg}", head.replace("keyevent", "keyspace")),
            None => chan.clone(),
        }
    };
    msgs.sort_by_key(|m| key(m));
    msgs
}

fn config_flags(p: &mut Pair) {
    for v in [
        "KEA",
        "AKE",
        "",
        "g$lshzxetK",
        "Elg$",
        "mnK",
        "Ag",
        "KEAmn",
        "d",
        "x",
        "KEA?",
        "a",
        "K E",
    ] {
        p.check_args(&["CONFIG", "SET", "notify-keyspace-events", v]);
        p.check("CONFIG GET notify-keyspace-events");
    }
    p.check("CONFIG SET notify-keyspace-events KEA notify-keyspace-events K");
}

fn strings_and_keys(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEAn");
    heard_equal(p, "strings and keys", |p| {
        p.checks(&[
            "SET a 1",
            "SET a 2 EX 100",
            "SET a 3 KEEPTTL",
            "SET a 4 NX",
            "SET a 5 XX GET",
            "SETNX b 1",
            "SETEX c 100 x",
            "PSETEX d 100000 x",
            "GETSET a 9",
            "MSET e 1 f 2 g 3",
            "MSETNX h 1 i 2",
            "INCR e",
            "DECRBY e 3",
            "INCRBYFLOAT e 1.5",
            "APPEND f xyz",
            "APPEND newapp abc",
            "SETRANGE g 2 zz",
            "SETRANGE g 2 \"\"",
            "SETBIT bits 7 1",
            "SETBIT bits 7 1",
            "BITFIELD bf SET u8 0 255 GET u8 0",
            "BITOP OR dest bits bf",
            "BITOP AND dest nothere nothere2",
            "PFADD hll a b c",
            "PFADD hll a",
            "PFMERGE hll2 hll",
            "GETEX a PX 100000",
            "GETEX a PERSIST",
            "GETEX a EXAT 1",
            "GETDEL b",
            "EXPIRE c 1000",
            "PEXPIRE c 1 GT",
            "PEXPIRE c 2000000 GT",
            "PERSIST c",
            "EXPIRE c -1",
            "RENAME d d2",
            "RENAMENX d2 e",
            "RENAMENX d2 d3",
            "COPY d3 d4",
            "COPY d3 d4 REPLACE",
            "COPY d3 d5 DB 1",
            "MOVE d4 2",
            "DEL d3 d4 nothere f",
            "UNLINK g h",
        ]);
        let dump = p.check("DUMP i");
        let Resp::Bulk(payload) = Resp::parse(&dump) else {
            panic!("DUMP: {}", show(&dump));
        };
        p.check_args(&[&b"RESTORE"[..], b"r1", b"0", &payload]);
        p.check_args(&[&b"RESTORE"[..], b"i", b"0", &payload, b"REPLACE"]);
        p.check_args(&[&b"RESTORE"[..], b"i", b"1", &payload, b"REPLACE", b"ABSTTL"]);
        p.check("FLUSHDB");
    });
}

fn lists(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEAn");
    heard_equal(p, "lists", |p| {
        p.checks(&[
            "LPUSH l a b c d e f",
            "RPUSH l g",
            "LPUSHX l h",
            "RPUSHX nothere x",
            "LINSERT l BEFORE a z",
            "LINSERT l BEFORE nothere z",
            "LSET l 0 Z",
            "LREM l 1 Z",
            "LREM l 1 nothere",
            "LTRIM l 0 5",
            "LPOP l",
            "RPOP l 2",
            "LMOVE l l2 LEFT RIGHT",
            "LMOVE l l LEFT RIGHT",
            "RPOPLPUSH l2 l",
            "LMPOP 2 nothere l RIGHT COUNT 2",
            "BLPOP l 1",
            "BRPOP l 1",
            "BLMOVE l l3 RIGHT LEFT 1",
            "BLMPOP 1 2 l3 l LEFT COUNT 10",
            "RPUSH one x",
            "LTRIM one 1 0",
            "RPUSH s 3 1 2",
            "SORT s STORE sorted",
            "SORT nothere STORE sorted",
            "DEL s",
        ]);
        // A blocked client, served by a push from another connection.
        let (mut kb, mut rb) = p.conns();
        kb.send(&common::encode(&["BLPOP", "blk", "5"]));
        rb.send(&common::encode(&["BLPOP", "blk", "5"]));
        std::thread::sleep(Duration::from_millis(200));
        p.check("LPUSH blk v");
        let (kr, rr) = (kb.read_reply(), rb.read_reply());
        p.expect_eq("served BLPOP", &kr, &rr);
        kb.send(&common::encode(&[
            "BLMOVE", "blk2", "dst", "LEFT", "RIGHT", "5",
        ]));
        rb.send(&common::encode(&[
            "BLMOVE", "blk2", "dst", "LEFT", "RIGHT", "5",
        ]));
        std::thread::sleep(Duration::from_millis(200));
        p.check("RPUSH blk2 v w");
        let (kr, rr) = (kb.read_reply(), rb.read_reply());
        p.expect_eq("served BLMOVE", &kr, &rr);
        p.check("FLUSHALL");
    });
}

fn sets_hashes(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEAn");
    heard_equal(p, "sets and hashes", |p| {
        p.checks(&[
            "SADD s1 a b c",
            "SADD s1 a",
            "SADD s2 b c d",
            "SREM s1 a",
            "SREM s1 nothere",
            "SMOVE s1 s3 b",
            "SMOVE s1 s3 c",
            "SMOVE s2 s2 b",
            "SINTERSTORE i s2 s3",
            "SINTERSTORE i nothere s2",
            "SUNIONSTORE u s2 s3",
            "SDIFFSTORE d s2 s3",
            "SDIFFSTORE d s3 s3",
            "SADD one x",
            "SPOP one",
            "SADD two x y",
            "SADD three x y z",
            "SPOP three 0",
            "HSET h f v g w",
            "HMSET h f v2",
            "HSETNX h f v3",
            "HSETNX h n 1",
            "HINCRBY h n 2",
            "HINCRBYFLOAT h n 1.5",
            "HDEL h f nothere",
            "HDEL h g n",
            "HDEL h f",
        ]);
        // Members come back in set order, which may differ.
        p.check_unordered("SPOP two 5");
        p.check("FLUSHALL");
    });
}

fn zsets_geo(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEAn");
    heard_equal(p, "zsets and geo", |p| {
        p.checks(&[
            "ZADD z 1 a 2 b 3 c 4 d 5 e",
            "ZADD z 1 a",
            "ZADD z XX 10 nothere",
            "ZINCRBY z 1 a",
            "ZADD z INCR 1 b",
            "ZREM z a nothere",
            "ZREMRANGEBYRANK z 0 0",
            "ZREMRANGEBYSCORE z 100 200",
            "ZREMRANGEBYSCORE z 3 3",
            "ZREMRANGEBYLEX z [d [d",
            "ZADD z2 1 x 2 y",
            "ZUNIONSTORE zu 2 z z2",
            "ZINTERSTORE zi 2 z z2",
            "ZDIFFSTORE zd 1 z2",
            "ZRANGESTORE zr z2 0 0",
            "ZRANGESTORE zr z2 5 6",
            "ZPOPMIN z2",
            "ZPOPMAX z2 5",
            "ZMPOP 1 zu MIN COUNT 1",
            "BZPOPMIN zu 1",
            "BZMPOP 1 1 zd MAX",
            "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEORADIUS g 15 37 200 km STORE gs",
            "GEOSEARCHSTORE gs2 g FROMLONLAT 15 37 BYRADIUS 200 km",
            "GEOSEARCHSTORE gs2 g FROMLONLAT 0 0 BYRADIUS 1 km",
            "GEORADIUS nothere 15 37 200 km STORE gs",
        ]);
        p.check("FLUSHALL");
    });
}

fn streams(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEAn");
    heard_equal(p, "streams", |p| {
        p.checks(&[
            "XADD st 1-1 a 1",
            "XADD st 1-2 a 2",
            "XADD st MAXLEN 1 1-3 a 3",
            "XADD st 1-4 a 4",
            "XTRIM st MAXLEN 1",
            "XTRIM st MAXLEN 1",
            "XADD st 1-5 a 5",
            "XDEL st 1-4 9-9",
            "XDEL st 9-9",
            "XSETID st 2-0",
            "XGROUP CREATE st g 0",
            "XGROUP CREATE st2 g $ MKSTREAM",
            "XGROUP SETID st g 0",
            "XGROUP CREATECONSUMER st g c1",
            "XGROUP CREATECONSUMER st g c1",
            "XADD st 3-1 b 1",
            "XREADGROUP GROUP g c2 STREAMS st >",
            "XREADGROUP GROUP g c2 STREAMS st >",
            "XCLAIM st g c3 0 3-1",
            "XAUTOCLAIM st g c4 0 0",
            "XACK st g 3-1",
            "XGROUP DELCONSUMER st g c1",
            "XGROUP DELCONSUMER st g nothere",
            "XGROUP DESTROY st g",
            "XGROUP DESTROY st g",
        ]);
        p.check("FLUSHALL");
    });
}

fn multi_and_scripts(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEA");
    heard_equal(p, "MULTI and scripts", |p| {
        p.checks(&[
            "MULTI",
            "SET {t}a 1",
            "SET b 1",
            "LPUSH c x",
            "DEL {t}a b c",
            "EXEC",
            "EVAL \"redis.call('set',KEYS[1],'1'); redis.call('incr',KEYS[1]); redis.call('sadd',KEYS[2],'m'); return redis.call('del',KEYS[1],KEYS[2])\" 2 k1 k2",
            "FUNCTION LOAD \"#!lua name=lib\nredis.register_function('f', function(keys, args) redis.call('hset', keys[1], 'f', 'v'); return redis.call('expire', keys[1], 100) end)\"",
            "FCALL f 1 fk",
            "FUNCTION FLUSH",
        ]);
        p.check("FLUSHALL");
    });
}

fn expiry(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KEA");
    // Lazy: active expiry off, the key expires when a command touches it.
    heard_equal(p, "lazy expiry", |p| {
        p.checks(&[
            "DEBUG SET-ACTIVE-EXPIRE 0",
            "SET lz v PX 20",
            "HSET lz2 f v",
            "PEXPIRE lz2 20",
        ]);
        std::thread::sleep(Duration::from_millis(100));
        p.checks(&["GET lz", "HSET lz2 f v", "DEBUG SET-ACTIVE-EXPIRE 1"]);
    });
    // Active: nobody touches the keys.
    heard(p, "active expiry", true, |p| {
        p.checks(&["SET ac1 v PX 20", "SET ac2 v PX 20", "SET ac3 v PX 20"]);
        std::thread::sleep(Duration::from_millis(1500));
        p.checks(&["DBSIZE"]);
    });
    p.check("FLUSHALL");
}

fn classes(p: &mut Pair) {
    // Only some classes, only keyevent or only keyspace, keymiss.
    for flags in ["Kl", "Eg", "E$x", "KEm", "Kn"] {
        p.check_args(&["CONFIG", "SET", "notify-keyspace-events", flags]);
        heard_equal(p, flags, |p| {
            p.checks(&[
                "SET x 1",
                "GET nothere",
                "LPUSH l a",
                "LPOP l",
                "SET y 1 PX 20",
                "EXPIRE x 100",
            ]);
            std::thread::sleep(Duration::from_millis(100));
            p.checks(&["GET y", "DEL x"]);
        });
    }
    p.check("CONFIG SET notify-keyspace-events \"\"");
    p.check("FLUSHALL");
}

/// Subscribe confirmations and messages are pushed even under CLIENT
/// REPLY OFF/SKIP (Redis's own pubsub.tcl subscribes that way).
fn subscribe_with_replies_off(p: &mut Pair) {
    p.check("CONFIG SET notify-keyspace-events KA");
    for mode in ["OFF", "SKIP"] {
        let (mut k, mut r) = p.conns();
        for c in [&mut k, &mut r] {
            c.send(&common::encode(&["CLIENT", "REPLY", mode]));
            c.send(&common::encode(&["PSUBSCRIBE", "*"]));
        }
        let (kr, rr) = (k.read_reply(), r.read_reply());
        p.expect_eq(&format!("PSUBSCRIBE after CLIENT REPLY {mode}"), &kr, &rr);
        p.check("SET foo bar");
        let (kr, rr) = (k.read_reply(), r.read_reply());
        p.expect_eq(
            &format!("keyspace event after CLIENT REPLY {mode}"),
            &kr,
            &rr,
        );
    }
    p.check("CONFIG SET notify-keyspace-events \"\"");
}

/// MIGRATE deletes what it moved with a `del` event (COPY keeps the key
/// and says nothing); each side moves to its own DB of one stock target.
fn migrate_deletes(p: &mut Pair) {
    let target = Server::redis(&[]);
    let port = target.port.to_string();
    p.check("CONFIG SET notify-keyspace-events KEA");
    heard_equal(p, "migrate", |p| {
        p.checks(&["SET m1 1", "SET m2 2", "SET m3 3", "SET m4 4"]);
        let moves: [&[&str]; 3] = [
            &["", "DB", "5000", "KEYS", "m1", "m2"],
            &["", "DB", "5000", "COPY", "KEYS", "m3"],
            &["m4", "DB", "5000", "REPLACE"],
        ];
        for m in moves {
            let run = |c: &mut Conn, db: &str| {
                let mut args = vec!["MIGRATE", "127.0.0.1", &port];
                args.extend(m.iter().map(|a| if *a == "DB" { db } else { *a }));
                c.cmd(&args)
            };
            let k = run(&mut p.k, "1");
            let r = run(&mut p.r, "2");
            p.expect_eq(&format!("MIGRATE {m:?}"), &k, &r);
        }
        p.checks(&["EXISTS m1 m2 m3 m4"]);
    });
}

pair_tests!(
    migrate_deletes,
    subscribe_with_replies_off,
    config_flags,
    strings_and_keys,
    lists,
    sets_hashes,
    zsets_geo,
    streams,
    multi_and_scripts,
    expiry,
    classes,
);

/// Eviction: keel and stock evict different keys (their memory accounting
/// differs), so the check is that every eviction is announced: one
/// `evicted` event per key INFO counts as evicted, each naming a key that
/// is gone. Run on stock too, to hold the test itself to account.
fn eviction_on(s: &Server) {
    let mut c = s.conn();
    let mut sub = s.conn();
    subscribe(&mut sub);
    assert_eq!(
        c.line("CONFIG SET notify-keyspace-events Ee"),
        b"+OK\r\n".to_vec()
    );
    let info = |c: &mut Conn, field: &str| -> i64 {
        let text = c.val("INFO").as_str();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("INFO has no {field}"))
            .trim()
            .parse()
            .unwrap()
    };
    let base = info(&mut c, "used_memory");
    c.line(&format!("CONFIG SET maxmemory {}", base + 2_000_000));
    c.line("CONFIG SET maxmemory-policy allkeys-random");
    let value = "v".repeat(1000);
    for i in 0..6000 {
        let r = c.cmd(&["SET", &format!("ev:{i}"), &value]);
        assert_eq!(r, b"+OK\r\n", "{}: SET ev:{i}", s.name);
    }
    c.line("CONFIG SET maxmemory 0");
    let evicted = info(&mut c, "evicted_keys");
    assert!(evicted > 0, "{}: nothing was evicted", s.name);
    // Evictions by other shards' crons are not ordered with the marker.
    std::thread::sleep(Duration::from_millis(300));
    c.line(&format!("PUBLISH {END} x"));
    let got = messages_until_end(&mut sub);
    assert_eq!(
        got.len() as i64,
        evicted,
        "{}: evicted events vs INFO",
        s.name
    );
    for (chan, key) in &got {
        assert_eq!(chan, "__keyevent@0__:evicted", "{}", s.name);
        assert_eq!(
            c.cmd(&["EXISTS", key]),
            b":0\r\n",
            "{}: {key} evicted",
            s.name
        );
    }
}

#[test]
fn eviction_is_announced() {
    eviction_on(&Server::redis(&[]));
    for shards in common::SHARD_MATRIX {
        eviction_on(&Server::keel(shards, &[]));
    }
}
