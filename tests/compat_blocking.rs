//! Blocking commands with several clients: the same steps run on keel and on
//! stock redis-server, each on its own connections, and the replies seen by
//! every client are compared byte for byte.
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Conn, Log, Pair, compare, encode, reply_within, step, words};

pair_tests!(
    woken_by_push,
    fifo_between_waiters,
    blmove_and_blmpop,
    zset_blocking,
    timeouts,
    inside_multi,
    disconnected_waiter,
    wrong_types_when_woken,
    served_by_other_commands,
);

/// Long enough for a server on a loaded 2-core machine to have parked a
/// blocking command it was sent.
const SETTLE: Duration = Duration::from_millis(150);

fn send(c: &mut Conn, line: &str) {
    c.send(&encode(&words(line)));
}

/// The reply a blocked client got (or did not get) within `t`.
fn got(log: &mut Log, c: &mut Conn, label: &str, t: Duration) {
    let r = reply_within(c, t);
    log.push((label.to_string(), r));
}

/// Sends a blocking command and checks it is still blocked after SETTLE.
fn block(log: &mut Log, c: &mut Conn, line: &str) {
    send(c, line);
    let r = reply_within(c, SETTLE);
    log.push((format!("{line} (blocked)"), r));
}

const WAKE: Duration = Duration::from_secs(3);

fn woken_by_push(p: &mut Pair) {
    compare(p, "woken_by_push", |s, log| {
        // Same shard, then keys on different shards.
        for (k1, k2) in [("{a}k1", "{a}k2"), ("{a}x1", "{b}x2"), ("{c}y1", "{d}y2")] {
            let (mut a, mut w) = (s.conn(), s.conn());
            block(log, &mut a, &format!("BLPOP {k1} {k2} 0"));
            step(log, &mut w, &format!("RPUSH {k2} x y"));
            got(log, &mut a, "BLPOP woken", WAKE);
            step(log, &mut w, &format!("LRANGE {k2} 0 -1"));
            block(log, &mut a, &format!("BRPOP {k1} {k2} 0"));
            step(log, &mut w, &format!("LPUSH {k1} p q"));
            got(log, &mut a, "BRPOP woken", WAKE);
            step(log, &mut w, &format!("LRANGE {k1} 0 -1"));
        }
        // RPUSH with several elements to a key two clients wait on.
        let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
        block(log, &mut a, "BLPOP {b}m 0");
        block(log, &mut b, "BLPOP {c}other {b}m 0");
        step(log, &mut w, "RPUSH {b}m 1 2 3");
        got(log, &mut a, "first waiter", WAKE);
        got(log, &mut b, "second waiter", WAKE);
        step(log, &mut w, "LRANGE {b}m 0 -1");
    });
}

fn fifo_between_waiters(p: &mut Pair) {
    compare(p, "fifo", |s, log| {
        for key in ["q", "{d}q"] {
            let (mut a, mut b, mut c, mut w) = (s.conn(), s.conn(), s.conn(), s.conn());
            block(log, &mut a, &format!("BLPOP {key} 0"));
            block(log, &mut b, &format!("BRPOP {key} 0"));
            block(log, &mut c, &format!("BLPOP {{a}}zz {key} 0"));
            step(log, &mut w, &format!("RPUSH {key} a"));
            got(log, &mut a, "first", WAKE);
            got(log, &mut b, "second, not yet", Duration::from_millis(100));
            step(log, &mut w, &format!("RPUSH {key} b c"));
            got(log, &mut b, "second", WAKE);
            got(log, &mut c, "third", WAKE);
            step(log, &mut w, &format!("LRANGE {key} 0 -1"));
        }
    });
}

fn blmove_and_blmpop(p: &mut Pair) {
    compare(p, "blmove_blmpop", |s, log| {
        for (src, dst) in [("{a}src", "{a}dst"), ("{a}s2", "{b}d2"), ("{c}s3", "{c}s3")] {
            let (mut a, mut w) = (s.conn(), s.conn());
            block(log, &mut a, &format!("BLMOVE {src} {dst} RIGHT LEFT 0"));
            step(log, &mut w, &format!("RPUSH {src} v1 v2"));
            got(log, &mut a, "BLMOVE woken", WAKE);
            step(log, &mut w, &format!("LRANGE {dst} 0 -1"));
            step(log, &mut w, &format!("LRANGE {src} 0 -1"));
            step(log, &mut w, &format!("DEL {src} {dst}"));
            block(log, &mut a, &format!("BRPOPLPUSH {src} {dst} 0"));
            step(log, &mut w, &format!("LPUSH {src} z"));
            got(log, &mut a, "BRPOPLPUSH woken", WAKE);
            step(log, &mut w, &format!("LRANGE {dst} 0 -1"));
        }
        let (mut a, mut w) = (s.conn(), s.conn());
        block(log, &mut a, "BLMPOP 0 2 {a}ma {b}mb LEFT COUNT 3");
        step(log, &mut w, "RPUSH {b}mb 1 2 3 4");
        got(log, &mut a, "BLMPOP woken", WAKE);
        step(log, &mut w, "LRANGE {b}mb 0 -1");
        block(log, &mut a, "BLMPOP 0 2 {a}ma {b}none RIGHT");
        step(log, &mut w, "RPUSH {a}ma x y");
        got(log, &mut a, "BLMPOP woken", WAKE);
    });
}

fn zset_blocking(p: &mut Pair) {
    compare(p, "zset_blocking", |s, log| {
        for (k1, k2) in [("{a}z1", "{a}z2"), ("{a}z3", "{b}z4")] {
            let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
            block(log, &mut a, &format!("BZPOPMIN {k1} {k2} 0"));
            block(log, &mut b, &format!("BZPOPMAX {k2} 0"));
            step(log, &mut w, &format!("ZADD {k2} 1 m1 2 m2"));
            got(log, &mut a, "BZPOPMIN woken", WAKE);
            got(log, &mut b, "BZPOPMAX woken", WAKE);
            step(log, &mut w, &format!("ZCARD {k2}"));
            block(log, &mut a, &format!("BZMPOP 0 2 {k1} {k2} MAX COUNT 2"));
            step(log, &mut w, &format!("ZADD {k1} 1 a 2 b 3 c"));
            got(log, &mut a, "BZMPOP woken", WAKE);
            step(log, &mut w, &format!("ZRANGE {k1} 0 -1 WITHSCORES"));
        }
        // A zset waiter is not served by a list push to the same key.
        let (mut a, mut w) = (s.conn(), s.conn());
        block(log, &mut a, "BZPOPMIN {c}t 0.6");
        step(log, &mut w, "RPUSH {c}t x");
        got(log, &mut a, "still blocked", Duration::from_millis(100));
        step(log, &mut w, "DEL {c}t");
        step(log, &mut w, "ZADD {c}t 5 five");
        got(log, &mut a, "BZPOPMIN woken after type change", WAKE);
    });
}

/// Timeout replies are compared; their durations are checked on both: not
/// before the 300 ms asked (a few ms of clock caching aside), and not much
/// after (stock checks timeouts at least every 100 ms).
fn timeouts(p: &mut Pair) {
    compare(p, "timeouts", |s, log| {
        let mut a = s.conn();
        for line in [
            "BLPOP none 0.3",
            "BRPOP none {b}none 0.3",
            "BLMOVE none {c}d LEFT LEFT 0.3",
            "BRPOPLPUSH none d 0.3",
            "BLMPOP 0.3 2 none {d}none LEFT",
            "BZPOPMIN none 0.3",
            "BZPOPMAX none {a}none 0.3",
            "BZMPOP 0.3 1 none MIN",
        ] {
            let t = Instant::now();
            let r = a.line(line);
            let d = t.elapsed();
            log.push((line.to_string(), r));
            assert!(
                d >= Duration::from_millis(295) && d < Duration::from_millis(800),
                "{}: {line} timed out after {d:?}, asked 300 ms",
                s.name
            );
        }
        a.line("HELLO 3");
        for line in [
            "BLPOP none 0.05",
            "BLMOVE none d LEFT LEFT 0.05",
            "BLMPOP 0.05 1 none LEFT",
            "BZPOPMIN none 0.05",
            "BZMPOP 0.05 1 none MIN",
        ] {
            step(log, &mut a, line);
        }
    });
}

fn inside_multi(p: &mut Pair) {
    p.script(
        r#"
        MULTI
        BLPOP nokey 0
        BRPOP nokey {b}nokey 0
        BLMOVE nokey d LEFT LEFT 0
        BRPOPLPUSH nokey d 0
        BLMPOP 0 1 nokey LEFT
        BZPOPMIN nokey 0
        BZMPOP 0 1 nokey MIN
        RPUSH mq a
        BLPOP mq 0
        BLMOVE mq d LEFT LEFT 0
        EXEC
        !resp3
        MULTI
        BLPOP nokey 0
        BLMOVE nokey d LEFT LEFT 0
        BZPOPMIN nokey 0
        EXEC
        "#,
    );
}

fn disconnected_waiter(p: &mut Pair) {
    compare(p, "disconnected_waiter", |s, log| {
        for key in ["{a}gone", "{b}gone"] {
            let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
            block(log, &mut a, &format!("BLPOP {key} 0"));
            block(log, &mut b, &format!("BLPOP {key} 0"));
            drop(a);
            std::thread::sleep(SETTLE);
            step(log, &mut w, &format!("RPUSH {key} v1"));
            got(log, &mut b, "live waiter served", WAKE);
            step(log, &mut w, &format!("LLEN {key}"));
            let mut c = s.conn();
            block(log, &mut c, &format!("BZPOPMIN {key}z 0"));
            drop(c);
            std::thread::sleep(SETTLE);
            step(log, &mut w, &format!("ZADD {key}z 1 m"));
            step(log, &mut w, &format!("ZCARD {key}z"));
            let mut d = s.conn();
            block(log, &mut d, &format!("BLMOVE {key}s {key}d LEFT LEFT 0"));
            drop(d);
            std::thread::sleep(SETTLE);
            step(log, &mut w, &format!("RPUSH {key}s v"));
            step(log, &mut w, &format!("LLEN {key}s"));
            step(log, &mut w, &format!("EXISTS {key}d"));
        }
    });
}

fn wrong_types_when_woken(p: &mut Pair) {
    compare(p, "wrong_types", |s, log| {
        for (src, dst) in [("{a}src", "{a}dst"), ("{a}s2", "{b}d2")] {
            let (mut a, mut w) = (s.conn(), s.conn());
            step(log, &mut w, &format!("SET {dst} str"));
            block(log, &mut a, &format!("BLMOVE {src} {dst} LEFT LEFT 0"));
            step(log, &mut w, &format!("RPUSH {src} v"));
            got(log, &mut a, "BLMOVE woken to wrong type", WAKE);
            step(log, &mut w, &format!("LRANGE {src} 0 -1"));
            step(log, &mut w, &format!("GET {dst}"));
        }
        // A key that becomes a string keeps the waiter blocked.
        let (mut a, mut w) = (s.conn(), s.conn());
        block(log, &mut a, "BLPOP {c}k 0");
        step(log, &mut w, "SET {c}k s");
        got(log, &mut a, "not woken by SET", Duration::from_millis(100));
        step(log, &mut w, "DEL {c}k");
        step(log, &mut w, "RPUSH {c}k x");
        got(log, &mut a, "woken by RPUSH", WAKE);
    });
}

fn served_by_other_commands(p: &mut Pair) {
    compare(p, "served_by_other_commands", |s, log| {
        let (mut a, mut b, mut w) = (s.conn(), s.conn(), s.conn());
        // LMOVE into the watched key, across shards.
        block(log, &mut a, "BLPOP {b}gd 0");
        step(log, &mut w, "RPUSH {a}gs v");
        step(log, &mut w, "LMOVE {a}gs {b}gd LEFT LEFT");
        got(log, &mut a, "BLPOP served by LMOVE", WAKE);
        step(log, &mut w, "LLEN {b}gd");
        // A BLMOVE chain: the moved element serves the next waiter.
        block(log, &mut a, "BLMOVE {c}ca {d}cb LEFT LEFT 0");
        block(log, &mut b, "BLPOP {d}cb 0");
        step(log, &mut w, "RPUSH {c}ca v");
        got(log, &mut a, "BLMOVE", WAKE);
        got(log, &mut b, "BLPOP after BLMOVE", WAKE);
        step(log, &mut w, "LLEN {d}cb");
        // RPOPLPUSH, LINSERT-free paths and ZUNIONSTORE into a watched key.
        block(log, &mut a, "BRPOP {a}j1 {b}j2 {c}j3 0");
        step(log, &mut w, "RPUSH {d}js z");
        step(log, &mut w, "RPOPLPUSH {d}js {c}j3");
        got(log, &mut a, "BRPOP served by RPOPLPUSH", WAKE);
        block(log, &mut a, "BZPOPMIN {b}zu 0");
        step(log, &mut w, "ZADD {a}zsrc 3 m");
        step(log, &mut w, "ZUNIONSTORE {b}zu 1 {a}zsrc");
        got(log, &mut a, "BZPOPMIN served by ZUNIONSTORE", WAKE);
        // A push inside MULTI serves the waiter at EXEC.
        block(log, &mut a, "BLPOP {c}tx 0");
        step(log, &mut w, "MULTI");
        step(log, &mut w, "RPUSH {c}tx 1");
        step(log, &mut w, "RPUSH {c}tx 2");
        got(log, &mut a, "not before EXEC", Duration::from_millis(100));
        step(log, &mut w, "EXEC");
        got(log, &mut a, "BLPOP after EXEC", WAKE);
        step(log, &mut w, "LRANGE {c}tx 0 -1");
    });
}

shard_tests!(push_queued_behind_a_hold_wakes_the_blocked_client);

/// Regression (lost wake-up): a push that had to wait for its shard's gate
/// (another client holding every shard, as INFO or DBSIZE do) ran without
/// serving the clients blocked on its key, which then waited forever.
fn push_queued_behind_a_hold_wakes_the_blocked_client(shards: usize) {
    let keel = common::Server::keel(shards, &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holders: Vec<_> = (0..6)
        .map(|_| {
            let port = keel.port;
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    c.cmd(&["DBSIZE"]);
                }
            })
        })
        .collect();
    let mut pusher = keel.conn();
    for i in 0..200 {
        let key = format!("wake:{i}");
        let mut waiter = keel.conn();
        waiter.send(&common::encode(&["BLPOP", &key, "0"]));
        // Until it is registered as blocked.
        let t = std::time::Instant::now();
        while !String::from_utf8_lossy(&pusher.cmd(&["INFO", "clients"]))
            .contains("blocked_clients:1")
        {
            assert!(t.elapsed() < Duration::from_secs(5), "BLPOP did not block");
        }
        assert_eq!(pusher.cmd(&["RPUSH", &key, "x"]), b":1\r\n");
        let r = waiter.try_read_reply(Duration::from_secs(5));
        let want = format!("*2\r\n${}\r\n{key}\r\n$1\r\nx\r\n", key.len());
        match r {
            Ok(r) => assert_eq!(
                common::show(&r),
                common::show(want.as_bytes()),
                "iteration {i}: the woken client's reply"
            ),
            Err(e) => panic!("iteration {i}: the blocked client was not woken: {e:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in holders {
        h.join().unwrap();
    }
}
