//! The borrowed-store path (issue 23): a single-shard command for a key of
//! another shard runs on the connection's thread with the owner's store
//! borrowed while the owner idles. These tests check the invariants that
//! path must keep — replies as stock, blocked clients on the owner woken
//! by a borrowed push, WATCH, the replication stream — and that the path
//! was really taken (INFO's keel_borrowed_commands moved).
//!
//! Keys: with 2 shards, slots 0-8191 are shard 0 and 8192-16383 shard 1;
//! `{bar}` hashes to slot 5061 and `{foo}` to 12182, so whichever shard a
//! connection lands on, one of the two tags is remote to it.

mod common;

use std::time::Duration;

use common::repl::{StockReplica, digest, info_int, wait_for, wait_synced};
use common::{Conn, Pair, Server, self_check};

const TAGS: [&str; 2] = ["{bar}", "{foo}"];

fn borrowed(c: &mut Conn) -> i64 {
    info_int(c, "server", "keel_borrowed_commands")
}

/// Asserts that `f` ran at least one command through the borrow path
/// (skipped against stock in the harness's self-check, which has no such path).
fn expect_borrowed(c: &mut Conn, what: &str, f: impl FnOnce()) {
    let before = if self_check() { 0 } else { borrowed(c) };
    f();
    if !self_check() {
        let after = borrowed(c);
        assert!(
            after > before,
            "{what}: no command took the borrow path ({before} -> {after})"
        );
    }
}

#[test]
fn remote_keys_answer_as_stock() {
    let mut p = Pair::new(2);
    let mut info = p.keel.conn();
    expect_borrowed(&mut info, "command mix", || {
        for t in TAGS {
            for line in [
                "SET {t}s hello",
                "GET {t}s",
                "APPEND {t}s _world",
                "STRLEN {t}s",
                "INCR {t}n",
                "INCRBY {t}n 41",
                "GET {t}n",
                "EXISTS {t}s {t}n {t}none",
                "TYPE {t}s",
                "HSET {t}h a 1 b 2",
                "HGET {t}h a",
                "HGETALL {t}h",
                "RPUSH {t}l x y z",
                "LRANGE {t}l 0 -1",
                "LPOP {t}l",
                "SADD {t}set m1 m2",
                "SISMEMBER {t}set m2",
                "ZADD {t}z 1 a 2 b",
                "ZRANGE {t}z 0 -1 WITHSCORES",
                "EXPIRE {t}s 100",
                "TTL {t}s",
                "PERSIST {t}s",
                "GET {t}none",
                "HGET {t}s a",
                "DEL {t}s {t}h",
                "EXISTS {t}s",
            ] {
                p.check(&line.replace("{t}", t));
            }
        }
    });
    // Lazy expiry of a remote key through the borrow path.
    for t in TAGS {
        p.check(&format!("SET {t}short v PX 30"));
    }
    std::thread::sleep(Duration::from_millis(80));
    for t in TAGS {
        p.check(&format!("GET {t}short"));
        p.check(&format!("EXISTS {t}short"));
    }
    p.finish();
}

/// A client blocked on the owner shard is woken by a push that another
/// shard's connection ran on the borrowed store.
#[test]
fn blocked_client_on_owner_woken_by_borrowed_push() {
    let keel = Server::keel(2, &[]);
    let mut info = keel.conn();
    let mut pusher = keel.conn();
    let mut counter = keel.conn();
    expect_borrowed(&mut counter, "pushes", || {
        for round in 0..6 {
            for t in TAGS {
                let key = format!("{t}q{round}");
                let mut waiter = keel.conn();
                waiter.send(&common::encode(&["BLPOP", &key, "10"]));
                wait_for(10, "the waiter blocks", || {
                    info_int(&mut info, "clients", "blocked_clients") == 1
                });
                assert_eq!(pusher.cmd(&["LPUSH", &key, "v1"]), b":1\r\n");
                let got = waiter
                    .try_read_reply(Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("{key}: the blocked client was not woken ({e:?})"));
                let want = format!("*2\r\n${}\r\n{key}\r\n$2\r\nv1\r\n", key.len());
                assert_eq!(common::show(&got), common::show(want.as_bytes()), "{key}");
                assert_eq!(pusher.cmd(&["EXISTS", &key]), b":0\r\n", "{key} popped");
            }
        }
    });
}

/// WATCH on a key that another connection modifies through the borrow
/// path makes EXEC fail, as in stock.
#[test]
fn watch_sees_borrowed_writes() {
    let mut p = Pair::new(2);
    let (mut k2, mut r2) = p.conns();
    let mut info = p.keel.conn();
    expect_borrowed(&mut info, "watched writes", || {
        for round in 0..4 {
            for t in TAGS {
                let key = format!("{t}w{round}");
                p.check(&format!("SET {key} 0"));
                p.check(&format!("WATCH {key}"));
                p.check("MULTI");
                p.check(&format!("INCR {key}"));
                let (a, b) = (k2.cmd(&["SET", &key, "x"]), r2.cmd(&["SET", &key, "x"]));
                assert_eq!(a, b);
                p.check("EXEC");
                p.check(&format!("GET {key}"));
                // Untouched watched key: EXEC runs.
                p.check(&format!("WATCH {key}"));
                p.check("MULTI");
                p.check(&format!("INCR {t}other{round}"));
                p.check("EXEC");
            }
        }
    });
    p.finish();
}

/// Concurrent writes from connections on both shards, many of them through
/// the borrow path: a stock replica ends with the same dataset.
#[test]
fn stock_replica_follows_borrowed_writes() {
    let dir = common::repl::TempDir::new("borrow-master");
    let keel = Server::keel(2, &["--dir", dir.path()]);
    let mut k = keel.conn();
    let replica = StockReplica::start(keel.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut k, &mut r, "initial sync");
    expect_borrowed(&mut k, "concurrent writes", || {
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let mut c = keel.conn();
                std::thread::spawn(move || {
                    for i in 0..400 {
                        let t = TAGS[i % 2];
                        let key = format!("{t}k{}", i % 37);
                        let v = format!("{n}:{i}");
                        c.cmd(&["SET", &key, &v]);
                        c.cmd(&["INCR", &format!("{t}ctr{}", i % 5)]);
                        c.cmd(&["RPUSH", &format!("{t}list{}", i % 3), &v]);
                        c.cmd(&["HSET", &format!("{t}hash"), &key, &v]);
                        if i % 7 == 0 {
                            c.cmd(&["DEL", &key]);
                        }
                        if i % 11 == 0 {
                            c.cmd(&["PEXPIRE", &format!("{t}list{}", i % 3), "50"]);
                        }
                        c.cmd(&["GET", &key]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    // Lists given a short TTL expire (active expiry's DELs go to the stream).
    for t in TAGS {
        for i in 0..3 {
            k.cmd(&["PEXPIRE", &format!("{t}list{i}"), "30"]);
        }
    }
    wait_for(20, "expired lists gone", || {
        (0..3).all(|i| {
            TAGS.iter()
                .all(|t| k.cmd(&["EXISTS", &format!("{t}list{i}")]) == b":0\r\n")
        })
    });
    wait_synced(&mut k, &mut r, "after the write load");
    assert_eq!(digest(&mut k), digest(&mut r), "DEBUG DIGEST differs");
}

/// Both shards busy (8 clients without pipelining, keys on both shards):
/// an owner also lends its store while it sends replies, so its own
/// commands and borrowers' commands alternate on one store at a high rate.
/// No update may be lost or doubled: the counters, list lengths and hash
/// fields end as on stock after the same load.
#[test]
fn busy_owners_lose_no_update() {
    let mut p = Pair::new(2);
    let mut info = p.keel.conn();
    let load = |port: u16| {
        let threads: Vec<_> = (0..8)
            .map(|n| {
                std::thread::spawn(move || {
                    let mut c = Conn::connect(port);
                    for i in 0..1500 {
                        let t = TAGS[(i + n) % 2];
                        assert_eq!(&c.cmd(&["INCR", &format!("{t}ctr{}", i % 4)])[..1], b":");
                        c.cmd(&["RPUSH", &format!("{t}list{}", i % 3), "x"]);
                        c.cmd(&["HINCRBY", &format!("{t}h"), &format!("f{}", i % 5), "2"]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    let (kport, rport) = (p.keel.port, p.redis.port);
    expect_borrowed(&mut info, "busy load", || load(kport));
    load(rport);
    for t in TAGS {
        for i in 0..4 {
            p.check(&format!("GET {t}ctr{i}"));
        }
        for i in 0..3 {
            p.check(&format!("LLEN {t}list{i}"));
        }
        // Field order follows the clients' interleaving: compare per field.
        p.check(&format!("HLEN {t}h"));
        for f in 0..5 {
            p.check(&format!("HGET {t}h f{f}"));
        }
    }
    p.finish();
}
