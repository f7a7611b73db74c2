//! Transactions and pub/sub: keel vs stock redis-server. Multi-client steps
//! run on each server with their own connections; every reply is compared
//! byte for byte (PUBSUB CHANNELS unordered).
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Conn, Log, Pair, Resp, compare, encode, reply_within, step, unordered, words};

pair_tests!(
    multi_exec_basics,
    queue_errors_abort,
    exec_across_shards,
    select_inside_multi,
    watch_other_client,
    watch_flush_and_expiry,
    watch_not_invalidated,
    subscribe_replies,
    subscribed_mode_restrictions,
    publish_to_many_subscribers,
    pubsub_introspection,
    publish_inside_multi,
    resp3_push,
    sharded_pubsub,
    pubsub_clients_in_client_list,
    client_kill_visible_at_once,
    flush_and_swapdb_of_stale_watched_keys,
    exec_rechecks_min_replicas,
);

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(150);

/// Sends `line` and logs the next `n` replies (subscribe confirmations).
fn step_n(log: &mut Log, c: &mut Conn, line: &str, n: usize) {
    c.send(&encode(&words(line)));
    for i in 0..n {
        let r = reply_within(c, WAIT);
        log.push((format!("{line} reply {i}"), r));
    }
}

/// Like `step_n` for replies whose order follows a hash table (UNSUBSCRIBE
/// with no arguments): logs the replies' kinds and counts in order and the
/// channel names sorted.
fn step_n_unordered(log: &mut Log, c: &mut Conn, line: &str, n: usize) {
    c.send(&encode(&words(line)));
    let mut names = Vec::new();
    for i in 0..n {
        let r = reply_within(c, WAIT);
        let kind = r.first().copied();
        let parsed = matches!(kind, Some(b'*' | b'>')).then(|| Resp::parse(&r));
        match parsed {
            Some(Resp::Array(v)) if v.len() == 3 => {
                names.push(v[1].clone());
                let shape = format!("{kind:?} {:?} {:?}", v[0], v[2]).into_bytes();
                log.push((format!("{line} reply {i} (kind, count)"), shape));
            }
            _ => log.push((format!("{line} reply {i}"), r)),
        }
    }
    names.sort();
    log.push((format!("{line} names"), format!("{names:?}").into_bytes()));
}

/// The next pushed message, or a marker when none comes within `t`.
fn got(log: &mut Log, c: &mut Conn, label: &str, t: Duration) {
    let r = reply_within(c, t);
    log.push((label.to_string(), r));
}

fn multi_exec_basics(p: &mut Pair) {
    p.script(
        r#"
        EXEC
        DISCARD
        MULTI
        MULTI
        SET a 1
        INCR a
        GET a
        EXEC
        MULTI
        SET a 2
        DISCARD
        GET a
        MULTI
        EXEC
        MULTI
        LPUSH a x
        INCR a
        SET b 1
        EXEC
        GET b
        MULTI
        WATCH a
        UNWATCH
        EXEC
        WATCH
        WATCH a b
        UNWATCH
        UNWATCH
        WATCH a
        MULTI
        PING
        ECHO hi
        EXEC
        !resp3
        MULTI
        GET nokey
        HGETALL nokey
        ZSCORE nokey a
        INCRBYFLOAT f 1.5
        EXEC
        "#,
    );
}

fn queue_errors_abort(p: &mut Pair) {
    p.script(
        r#"
        SET k v
        MULTI
        SET k v2
        NOSUCHCOMMAND x
        EXEC
        GET k
        MULTI
        SET k
        GET k
        EXEC
        MULTI
        INCR k
        EXEC
        MULTI
        SET k v4
        DISCARD
        EXEC
        MULTI
        GET k
        WATCH k
        EXEC
        # SUBSCRIBE runs at once inside MULTI; EXEC is then refused.
        MULTI
        SET k v3
        SUBSCRIBE x
        EXEC
        GET k
        # Refused outside MULTI too, still with the EXECABORT prefix.
        EXEC
        "#,
    );
}

fn exec_across_shards(p: &mut Pair) {
    p.script(
        r#"
        MULTI
        SET {a}k 1
        SET {b}k 2
        SET {c}k 3
        RPUSH {d}l x y
        MSET {a}m 1 {b}m 2 {c}m 3 {d}m 4
        MGET {a}k {b}k {c}k {d}m
        INCR {a}k
        SADD {b}s a b
        SINTERSTORE {c}dst {b}s {b}s
        LMOVE {d}l {a}l LEFT RIGHT
        DEL {a}k {b}k {c}k
        DBSIZE
        EXISTS {a}l {a}m {a}k
        EXEC
        %KEYS *
        DBSIZE
        "#,
    );
}

fn select_inside_multi(p: &mut Pair) {
    p.script(
        r#"
        SET k db0
        MULTI
        SELECT 1
        SET k db1
        GET k
        SELECT 0
        GET k
        SELECT 1
        EXEC
        GET k
        SELECT 0
        GET k
        MULTI
        SELECT 99
        SELECT x
        EXEC
        MULTI
        SWAPDB 0 1
        GET k
        EXEC
        GET k
        "#,
    );
}

fn watch_other_client(p: &mut Pair) {
    compare(p, "watch_other_client", |s, log| {
        // Same key, another key on the same shard, keys on other shards.
        for (watched, written) in [
            ("{a}k", "{a}k"),
            ("{a}k {b}k", "{b}k"),
            ("{c}k {d}k", "{d}k"),
            ("{a}w", "{a}unrelated"),
            ("{a}w {b}w", "{c}unrelated"),
        ] {
            let (mut a, mut b) = (s.conn(), s.conn());
            step(log, &mut a, &format!("WATCH {watched}"));
            step(log, &mut b, &format!("SET {written} other"));
            step(log, &mut a, "MULTI");
            step(log, &mut a, "SET {a}result done");
            step(log, &mut a, "EXEC");
            step(log, &mut a, "GET {a}result");
            step(log, &mut a, "DEL {a}result");
        }
        // Writes of every family invalidate, and DEL of a missing key does not.
        for write in [
            "LPUSH {b}x 1",
            "HSET {b}x f v",
            "EXPIRE {b}x 100",
            "DEL {b}x",
            "DEL {b}x",
            "SADD {b}x m",
            "RENAME {b}x {b}y",
            "ZADD {b}y 1 a",
            "PFADD {b}y2 a",
        ] {
            let (mut a, mut b) = (s.conn(), s.conn());
            step(log, &mut a, "WATCH {b}x {b}y {b}y2");
            step(log, &mut b, write);
            step(log, &mut a, "MULTI");
            step(log, &mut a, "PING");
            step(log, &mut a, "EXEC");
        }
        // The watching client's own write invalidates too.
        let mut a = s.conn();
        step(log, &mut a, "WATCH {d}own");
        step(log, &mut a, "SET {d}own 1");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "PING");
        step(log, &mut a, "EXEC");
        // EXEC and DISCARD clear the watch.
        step(log, &mut a, "MULTI");
        step(log, &mut a, "PING");
        step(log, &mut a, "EXEC");
        step(log, &mut a, "WATCH {d}own");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "DISCARD");
        step(log, &mut a, "SET {d}own 2");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "PING");
        step(log, &mut a, "EXEC");
    });
}

fn watch_flush_and_expiry(p: &mut Pair) {
    compare(p, "watch_flush_and_expiry", |s, log| {
        for (flush, watched) in [
            ("FLUSHDB", "{a}k"),
            ("FLUSHALL", "{b}k"),
            ("FLUSHDB", "{c}missing"),
        ] {
            let (mut a, mut b) = (s.conn(), s.conn());
            step(log, &mut b, "SET {a}k v");
            step(log, &mut b, "SET {b}k v");
            step(log, &mut a, &format!("WATCH {watched}"));
            step(log, &mut b, flush);
            step(log, &mut a, "MULTI");
            step(log, &mut a, "PING");
            step(log, &mut a, "EXEC");
        }
        // FLUSHDB of another database leaves the watch alone.
        let (mut a, mut b) = (s.conn(), s.conn());
        step(log, &mut b, "SET {a}k v");
        step(log, &mut a, "WATCH {a}k");
        step(log, &mut b, "SELECT 3");
        step(log, &mut b, "FLUSHDB");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "PING");
        step(log, &mut a, "EXEC");
        // A watched key that expires before EXEC.
        for key in ["{a}t", "{d}t"] {
            let mut a = s.conn();
            step(log, &mut a, &format!("SET {key} v PX 100"));
            step(log, &mut a, &format!("WATCH {key}"));
            std::thread::sleep(Duration::from_millis(250));
            step(log, &mut a, "MULTI");
            step(log, &mut a, "PING");
            step(log, &mut a, "EXEC");
        }
        // Already expired when watched: not invalidated.
        let mut a = s.conn();
        step(log, &mut a, "SET {b}t v PX 50");
        std::thread::sleep(Duration::from_millis(150));
        step(log, &mut a, "WATCH {b}t");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "PING");
        step(log, &mut a, "EXEC");
    });
}

fn watch_not_invalidated(p: &mut Pair) {
    compare(p, "watch_not_invalidated", |s, log| {
        let (mut a, mut b) = (s.conn(), s.conn());
        step(log, &mut b, "SET {a}k v");
        for write in [
            "SETNX {a}k other",
            "SET {a}k x NX",
            "SET {a}missing x XX",
            "LPUSHX {a}missing v",
            "GET {a}k",
            "EXISTS {a}k",
            "HDEL {a}missing f",
            "SREM {a}missing m",
            "EXPIRE {a}missing 10",
            "PERSIST {a}k",
        ] {
            step(log, &mut a, "WATCH {a}k {a}missing");
            step(log, &mut b, write);
            step(log, &mut a, "MULTI");
            step(log, &mut a, "GET {a}k");
            step(log, &mut a, "EXEC");
        }
    });
}

fn subscribe_replies(p: &mut Pair) {
    compare(p, "subscribe_replies", |s, log| {
        let mut a = s.conn();
        step_n(log, &mut a, "SUBSCRIBE c1 c2 c1", 3);
        step_n(log, &mut a, "PSUBSCRIBE p* q?", 2);
        step_n(log, &mut a, "UNSUBSCRIBE c1 nosuch", 2);
        step_n(log, &mut a, "PUNSUBSCRIBE q? nosuch", 2);
        // No arguments: every channel / pattern, one reply each.
        step_n(log, &mut a, "UNSUBSCRIBE", 1);
        step_n(log, &mut a, "PUNSUBSCRIBE", 1);
        step_n(log, &mut a, "UNSUBSCRIBE", 1);
        step_n(log, &mut a, "PUNSUBSCRIBE", 1);
        // Out of subscribed mode: normal commands again.
        step(log, &mut a, "SET k v");
        step(log, &mut a, "PING");
        step_n(log, &mut a, "SUBSCRIBE x y z", 3);
        step_n_unordered(log, &mut a, "UNSUBSCRIBE", 3);
        step(log, &mut a, "PING hello");
    });
}

fn subscribed_mode_restrictions(p: &mut Pair) {
    compare(p, "subscribed_mode_restrictions", |s, log| {
        let mut a = s.conn();
        step_n(log, &mut a, "SUBSCRIBE ch", 1);
        for line in [
            "GET k",
            "SET k v",
            "PING",
            "PING msg",
            "MULTI",
            "select 1",
            "SUBSCRIBE",
            "NOSUCH",
        ] {
            step(log, &mut a, line);
        }
        step_n(log, &mut a, "PSUBSCRIBE x*", 1);
        step(log, &mut a, "RESET");
        step(log, &mut a, "GET k");
        // RESP3 allows any command while subscribed.
        step(log, &mut a, "HELLO 3");
        log.pop();
        step_n(log, &mut a, "SUBSCRIBE ch", 1);
        step(log, &mut a, "SET k v");
        step(log, &mut a, "GET k");
        step(log, &mut a, "PING");
    });
}

fn publish_to_many_subscribers(p: &mut Pair) {
    compare(p, "publish_to_many", |s, log| {
        // Eight connections: the kernel spreads them over keel's shards.
        let mut subs: Vec<Conn> = (0..8).map(|_| s.conn()).collect();
        for (i, c) in subs.iter_mut().enumerate() {
            let line = match i % 4 {
                0 => "SUBSCRIBE news",
                1 => "PSUBSCRIBE n*",
                2 => "SUBSCRIBE news other",
                _ => "PSUBSCRIBE n* *s",
            };
            let n = line.split(' ').count() - 1;
            step_n(log, c, line, n);
        }
        let mut pb = s.conn();
        step(log, &mut pb, "PUBLISH news hello");
        step(log, &mut pb, "PUBLISH nope x");
        step(log, &mut pb, "PUBLISH other \"bin\x00\r\n\"");
        step(log, &mut pb, "PUBLISH s 1");
        for (i, c) in subs.iter_mut().enumerate() {
            // Everything each subscriber received; the order between
            // patterns matching one message follows a hash table.
            let mut got = Vec::new();
            loop {
                let r = reply_within(c, QUIET);
                if r == b"<no reply>" {
                    break;
                }
                got.push(r);
            }
            got.sort();
            log.push((format!("subscriber {i} messages"), got.concat()));
        }
        // A closed subscriber is no longer counted.
        drop(subs.remove(0));
        drop(subs.remove(0));
        std::thread::sleep(QUIET);
        step(log, &mut pb, "PUBLISH news again");
        step(log, &mut pb, "PUBSUB NUMSUB news other");
        step(log, &mut pb, "PUBSUB NUMPAT");
    });
}

fn pubsub_introspection(p: &mut Pair) {
    compare(p, "pubsub_introspection", |s, log| {
        let mut subs: Vec<Conn> = (0..6).map(|_| s.conn()).collect();
        for (i, c) in subs.iter_mut().enumerate() {
            step_n(log, c, &format!("SUBSCRIBE ch{} shared", i % 3), 2);
            step_n(log, c, &format!("PSUBSCRIBE p{}*", i % 2), 1);
        }
        let mut q = s.conn();
        for line in [
            "PUBSUB CHANNELS",
            "PUBSUB CHANNELS ch*",
            "PUBSUB CHANNELS nomatch*",
        ] {
            let r = q.line(line);
            // Channel order is the hash table's: compare as a set.
            let r = format!("{:?}", unordered(&Resp::parse(&r))).into_bytes();
            log.push((line.to_string(), r));
        }
        for line in [
            "PUBSUB NUMSUB",
            "PUBSUB NUMSUB ch0 ch1 ch2 shared nosuch ch0",
            "PUBSUB NUMPAT",
            "PUBSUB SHARDCHANNELS",
            "PUBSUB SHARDNUMSUB ch0",
            "PUBSUB",
            "PUBSUB FOO",
            "PUBSUB CHANNELS a b",
            "PUBSUB NUMPAT x",
        ] {
            step(log, &mut q, line);
        }
        step(log, &mut q, "PUBLISH shared m");
        step(log, &mut q, "PUBLISH p1x m");
    });
}

/// What Sentinel relies on: CLIENT LIST's sub/psub/ssub and `P` flag, and
/// CLIENT KILL TYPE pubsub ending exactly the subscribed clients.
fn pubsub_clients_in_client_list(p: &mut Pair) {
    compare(p, "pubsub_clients_in_client_list", |s, log| {
        let mut a = s.conn();
        step(log, &mut a, "CLIENT SETNAME subscriber");
        step_n(log, &mut a, "SUBSCRIBE x y", 2);
        step_n(log, &mut a, "PSUBSCRIBE p*", 1);
        // Refused in subscribed mode, by the subcommand's full name.
        step(log, &mut a, "CLIENT SETNAME other");
        let mut b = s.conn();
        step_n(log, &mut b, "SSUBSCRIBE {a}s", 1);
        step_n(log, &mut b, "SUNSUBSCRIBE {a}s", 1);
        let mut q = s.conn();
        step(log, &mut q, "CLIENT SETNAME asker");
        let fields = |line: &[u8]| -> Vec<u8> {
            let text = String::from_utf8_lossy(line).into_owned();
            let mut picked: Vec<String> = text
                .split(['\n', ' '])
                .filter(|f| {
                    ["name=", "flags=", "sub=", "psub=", "ssub="]
                        .iter()
                        .any(|p| f.starts_with(p))
                })
                .map(|f| f.trim().to_string())
                .collect();
            picked.sort();
            picked.join(" ").into_bytes()
        };
        let r = q.line("CLIENT LIST TYPE pubsub");
        log.push(("CLIENT LIST TYPE pubsub (fields)".into(), fields(&r)));
        let r = q.line("CLIENT LIST TYPE normal");
        log.push(("CLIENT LIST TYPE normal (fields)".into(), fields(&r)));
        step(log, &mut q, "CLIENT KILL TYPE pubsub");
        let closed = a.read_until_close(Duration::from_secs(3)).1;
        log.push(("subscriber closed".into(), format!("{closed}").into_bytes()));
        step(log, &mut b, "PING");
    });
}

/// A client killed by CLIENT KILL is gone from CLIENT LIST at once, as in
/// stock's single process, whichever shard serves it.
fn client_kill_visible_at_once(p: &mut Pair) {
    compare(p, "client_kill_visible_at_once", |s, log| {
        let mut q = s.conn();
        let mut victims: Vec<(Conn, String)> = (0..6)
            .map(|_| {
                let mut c = s.conn();
                let r = c.line("CLIENT ID");
                let id = String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned();
                (c, id)
            })
            .collect();
        for (i, (_, id)) in victims.iter().enumerate() {
            // One packet: the LIST runs right behind the KILL.
            let mut req = encode(&words(&format!("CLIENT KILL ID {id}")));
            req.extend(encode(&words(&format!("CLIENT LIST ID {id}"))));
            q.send(&req);
            let r = reply_within(&mut q, WAIT);
            log.push((format!("CLIENT KILL ID <victim {i}>"), r));
            let r = reply_within(&mut q, WAIT);
            log.push((format!("CLIENT LIST ID <victim {i}> right after"), r));
        }
        for (i, (c, _)) in victims.iter_mut().enumerate() {
            let closed = c.read_until_close(Duration::from_secs(3)).1;
            log.push((
                format!("victim {i} closed"),
                format!("{closed}").into_bytes(),
            ));
        }
    });
}

fn publish_inside_multi(p: &mut Pair) {
    compare(p, "publish_inside_multi", |s, log| {
        let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
        step_n(log, &mut a, "SUBSCRIBE t1", 1);
        step_n(log, &mut b, "PSUBSCRIBE t*", 1);
        step(log, &mut w, "MULTI");
        step(log, &mut w, "PUBLISH t1 first");
        step(log, &mut w, "SET k v");
        step(log, &mut w, "PUBLISH t2 second");
        got(log, &mut a, "nothing before EXEC", QUIET);
        step(log, &mut w, "EXEC");
        got(log, &mut a, "t1 message", WAIT);
        got(log, &mut b, "t* message 1", WAIT);
        got(log, &mut b, "t* message 2", WAIT);
        got(log, &mut b, "no more", QUIET);
    });
}

fn resp3_push(p: &mut Pair) {
    compare(p, "resp3_push", |s, log| {
        let (mut a, mut w) = (s.conn(), s.conn());
        a.line("HELLO 3");
        step_n(log, &mut a, "SUBSCRIBE r1 r2", 2);
        step_n(log, &mut a, "PSUBSCRIBE r*", 1);
        step(log, &mut w, "PUBLISH r1 hi");
        got(log, &mut a, "message push", WAIT);
        got(log, &mut a, "pmessage push", WAIT);
        step(log, &mut a, "PING");
        step(log, &mut a, "PING x");
        step(log, &mut a, "GET nokey");
        step_n_unordered(log, &mut a, "UNSUBSCRIBE", 2);
        step_n(log, &mut a, "PUNSUBSCRIBE nosuch", 1);
        step_n(log, &mut a, "UNSUBSCRIBE", 1);
        step(log, &mut w, "PUBLISH r1 again");
        got(log, &mut a, "pmessage still", WAIT);
    });
}

fn sharded_pubsub(p: &mut Pair) {
    compare(p, "sharded_pubsub", |s, log| {
        let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
        step_n(log, &mut a, "SSUBSCRIBE {a}s1 {a}s2", 2);
        step_n(log, &mut b, "SSUBSCRIBE {b}s3", 1);
        step(log, &mut a, "GET k");
        step(log, &mut w, "SPUBLISH {a}s1 m1");
        step(log, &mut w, "SPUBLISH {b}s3 m3");
        step(log, &mut w, "SPUBLISH {c}none m");
        step(log, &mut w, "PUBLISH {a}s1 plain");
        got(log, &mut a, "smessage", WAIT);
        got(log, &mut b, "smessage", WAIT);
        got(log, &mut a, "no plain message", QUIET);
        step(log, &mut w, "PUBSUB SHARDNUMSUB {a}s1 {b}s3 none");
        step(log, &mut w, "PUBSUB NUMSUB {a}s1");
        step_n(log, &mut a, "SUNSUBSCRIBE {a}s1", 1);
        step_n(log, &mut a, "SUNSUBSCRIBE", 1);
        step_n(log, &mut a, "SUNSUBSCRIBE", 1);
        step(log, &mut a, "PING");
    });
}

/// FLUSHDB and SWAPDB leave a transaction alone when the watched key had
/// already expired (stale, active expiry off) or is replaced by a stale
/// key; a live key flushed or swapped in fails EXEC.
fn flush_and_swapdb_of_stale_watched_keys(p: &mut Pair) {
    compare(p, "flush_and_swapdb_of_stale_watched_keys", |s, log| {
        let cases: &[(&[&str], &str)] = &[
            (&["SELECT 9", "SET {a}x v PX 1"], "FLUSHDB"),
            (&["SELECT 9", "SET {a}x v PX 1"], "SWAPDB 9 10"),
            (&["SELECT 10", "SET {b}x v PX 1", "SELECT 9"], "SWAPDB 9 10"),
            (
                &[
                    "SELECT 10",
                    "SET {c}x v PX 1",
                    "SELECT 9",
                    "SET {c}x w PX 1",
                ],
                "SWAPDB 9 10",
            ),
            (&["SELECT 9", "SET {d}x v"], "FLUSHDB"),
            (&["SELECT 10", "SET {a}x v", "SELECT 9"], "SWAPDB 9 10"),
            (
                &[
                    "SELECT 9",
                    "SET {b}x v",
                    "SELECT 10",
                    "SET {b}x w PX 1",
                    "SELECT 9",
                ],
                "SWAPDB 9 10",
            ),
        ];
        for (setup, change) in cases {
            let key = setup
                .iter()
                .find_map(|c| c.strip_prefix("SET ").map(|r| r.split(' ').next().unwrap()))
                .unwrap();
            let mut a = s.conn();
            step(log, &mut a, "FLUSHALL");
            step(log, &mut a, "DEBUG SET-ACTIVE-EXPIRE 0");
            for c in setup.iter() {
                step(log, &mut a, c);
            }
            std::thread::sleep(Duration::from_millis(5));
            step(log, &mut a, &format!("WATCH {key}"));
            step(log, &mut a, change);
            step(log, &mut a, "MULTI");
            step(log, &mut a, "PING");
            step(log, &mut a, "EXEC");
            step(log, &mut a, "DEBUG SET-ACTIVE-EXPIRE 1");
        }
    });
}

/// EXEC re-checks min-replicas-to-write against its queued commands: a
/// transaction with a write is aborted (EXECABORT ... NOREPLICAS) if the
/// setting changed after queueing; one with only reads runs.
fn exec_rechecks_min_replicas(p: &mut Pair) {
    compare(p, "exec_rechecks_min_replicas", |s, log| {
        let (mut a, mut b) = (s.conn(), s.conn());
        step(log, &mut a, "SET {a}xx 1");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "INCR {a}xx");
        step(log, &mut b, "CONFIG SET min-replicas-to-write 2");
        step(log, &mut a, "EXEC");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "GET {a}xx");
        step(log, &mut a, "EXEC");
        step(log, &mut b, "CONFIG SET min-replicas-to-write 0");
        step(log, &mut a, "GET {a}xx");
        step(log, &mut a, "MULTI");
        step(log, &mut a, "EXEC");
    });
}
