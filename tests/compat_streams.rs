//! Streams: keel vs stock redis-server, byte for byte. Explicit IDs keep the
//! replies deterministic; idle times are never compared.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Conn, Pair, compare, reply_within, step};

pair_tests!(
    add_range_len_del,
    trimming,
    ids_and_errors,
    consumer_groups,
    pending_and_claims,
    info,
    xread_non_blocking,
    xread_block_woken_by_xadd,
    resp3_shapes,
    xreadgroup_unblocked_when_stream_replaced,
);

fn add_range_len_del(p: &mut Pair) {
    p.checks(&[
        "XADD s 1-1 a 1 b 2",
        "XADD s 1-2 c 3",
        "XADD s 2-0 d 4",
        "XADD s 5-* e 5",
        "XLEN s",
        "XRANGE s - +",
        "XRANGE s - + COUNT 2",
        "XRANGE s (1-1 +",
        "XRANGE s 1 1",
        "XREVRANGE s + - COUNT 1",
        "XREVRANGE s 2-0 (1-1",
        "XDEL s 1-2 9-9",
        "XRANGE s - +",
        "XLEN s",
        "XADD nomk NOMKSTREAM 1-1 a 1",
        "EXISTS nomk",
        "TYPE s",
        "XRANGE missing - +",
    ]);
}

fn trimming(p: &mut Pair) {
    for i in 1..=120 {
        p.check(&format!("XADD t {i}-0 f {i}"));
    }
    p.checks(&[
        "XTRIM t MAXLEN 100",
        "XLEN t",
        "XTRIM t MAXLEN ~ 10",
        "XLEN t",
        "XTRIM t MINID 110",
        "XRANGE t - + COUNT 3",
        "XADD t MAXLEN 5 200-0 f x",
        "XLEN t",
        "XTRIM t MAXLEN ~ 1 LIMIT 10",
        "XTRIM t MAXLEN 1 LIMIT 10",
        "XTRIM t FOO 1",
        "XTRIM t MAXLEN -1",
    ]);
}

fn ids_and_errors(p: &mut Pair) {
    p.checks(&[
        "XADD e 5-5 a 1",
        "XADD e 5-5 a 1",
        "XADD e 4-0 a 1",
        "XADD e 0-0 a 1",
        "XADD e notanid a 1",
        "XADD e 6-0 a",
        "XADD e 18446744073709551615-18446744073709551615 a 1",
        "XADD e * a 1",
        "SET str x",
        "XADD str 1-1 a 1",
        "XRANGE e x +",
        "XSETID e 100-0",
        "XSETID e 1-0",
        "XADD e 50-0 a 1",
        "XADD e 101-0 a 1",
    ]);
}

fn consumer_groups(p: &mut Pair) {
    p.checks(&[
        "XGROUP CREATE g grp $",
        "XGROUP CREATE g grp $ MKSTREAM",
        "XGROUP CREATE g grp $ MKSTREAM",
        "XADD g 1-0 a 1",
        "XADD g 2-0 b 2",
        "XGROUP CREATE g grp2 0",
        "XREADGROUP GROUP grp2 alice COUNT 1 STREAMS g >",
        "XREADGROUP GROUP grp2 bob STREAMS g >",
        "XREADGROUP GROUP grp2 bob STREAMS g >",
        "XREADGROUP GROUP grp2 alice STREAMS g 0",
        "XREADGROUP GROUP nogrp alice STREAMS g >",
        "XACK g grp2 1-0 9-9",
        "XREADGROUP GROUP grp2 alice STREAMS g 0",
        "XGROUP SETID g grp2 0",
        "XGROUP CREATECONSUMER g grp2 carol",
        "XGROUP CREATECONSUMER g grp2 carol",
        "XGROUP DELCONSUMER g grp2 bob",
        "XGROUP DESTROY g grp",
        "XGROUP DESTROY g grp",
        "XGROUP HELP",
        "XGROUP NOPE g",
    ]);
}

fn pending_and_claims(p: &mut Pair) {
    p.checks(&[
        "XADD c 1-0 a 1",
        "XADD c 2-0 b 2",
        "XADD c 3-0 c 3",
        "XGROUP CREATE c g 0",
        "XREADGROUP GROUP g alice STREAMS c >",
        "XPENDING c g",
        // The extended form carries idle times (ms): only its empty case is timing-free.
        "XPENDING c g - + 10 nobody",
        "XCLAIM c g bob 0 1-0 2-0 JUSTID",
        "XPENDING c g",
        "XCLAIM c g bob 0 3-0 FORCE RETRYCOUNT 5 JUSTID",
        "XAUTOCLAIM c g carol 0 0 COUNT 2 JUSTID",
        "XAUTOCLAIM c g carol 0 0",
        "XDEL c 2-0",
        "XAUTOCLAIM c g dave 0 0 JUSTID",
        "XACK c g 1-0 2-0 3-0",
        "XPENDING c g",
    ]);
}

fn info(p: &mut Pair) {
    p.checks(&[
        "XADD i 1-0 a 1",
        "XADD i 2-0 b 2",
        "XGROUP CREATE i g 0",
        "XREADGROUP GROUP g alice COUNT 1 STREAMS i >",
        "XINFO STREAM i",
        "XINFO GROUPS i",
        "XINFO STREAM missing",
        "XINFO HELP",
        "XINFO NOPE i",
    ]);
}

fn xread_non_blocking(p: &mut Pair) {
    p.checks(&[
        "XADD r1 1-0 a 1",
        "XADD r2 1-0 b 1",
        "XADD r2 2-0 b 2",
        "XREAD STREAMS r1 r2 0 0",
        "XREAD COUNT 1 STREAMS r1 r2 0 1-0",
        "XREAD STREAMS r1 r2 $ $",
        "XREAD STREAMS r1 0 1",
        "XREAD STREAMS r1",
        "XREAD BLOCK 10 STREAMS r1 $",
        "XREAD BLOCK -1 STREAMS r1 $",
    ]);
}

/// A client blocked with `$` is served the entry another client adds.
fn xread_block_woken_by_xadd(p: &mut Pair) {
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let mut waiter: Conn = s.conn();
        let mut writer: Conn = s.conn();
        writer.line("XADD w 1-0 a 1");
        waiter.send(b"XREAD BLOCK 5000 STREAMS w other $ $\r\n");
        std::thread::sleep(Duration::from_millis(200));
        writer.line("XADD w 2-0 b 2");
        got.push(reply_within(&mut waiter, Duration::from_secs(3)));
    }
    let (k, r) = (got[0].clone(), got[1].clone());
    p.expect_eq("XREAD BLOCK woken by XADD", &k, &r);
}

fn resp3_shapes(p: &mut Pair) {
    p.proto(true);
    p.checks(&[
        "XADD s3 1-0 a 1",
        "XRANGE s3 - +",
        "XREAD STREAMS s3 0",
        "XINFO STREAM s3",
        "XREAD STREAMS s3 $",
    ]);
    p.proto(false);
}

/// A client blocked in XREADGROUP is answered -UNBLOCKED as soon as its
/// stream is replaced by another type (SET, DEL + SADD in MULTI), emptied
/// (FLUSHDB, SWAPDB) or renamed away, and served when RENAME brings a stream
/// with its group; a blocked XREAD stays blocked until a stream has data.
/// Keys `{a}` and `{b}` are on different shards of `--shards 4`.
fn xreadgroup_unblocked_when_stream_replaced(p: &mut Pair) {
    compare(p, "xreadgroup_unblocked_when_stream_replaced", |s, log| {
        let wait = Duration::from_secs(3);
        let cases: &[&[&str]] = &[
            &["SET {a}s v"],
            &["MULTI", "DEL {a}s", "SADD {a}s m", "EXEC"],
            &["FLUSHDB"],
            &["SWAPDB 9 10"],
            &["RENAME {a}s {a}t"],
            &["XADD {a}n 5-0 f v", "RENAME {a}n {a}s"],
            &[
                "XGROUP CREATE {a}n g $ MKSTREAM",
                "XADD {a}n 7-0 f v",
                "RENAME {a}n {a}s",
            ],
        ];
        for (i, writes) in cases.iter().enumerate() {
            let (mut w, mut c) = (s.conn(), s.conn());
            for cmd in ["SELECT 9", "FLUSHALL", "XGROUP CREATE {a}s g $ MKSTREAM"] {
                step(log, &mut c, cmd);
            }
            w.line("SELECT 9");
            w.send(b"XREADGROUP GROUP g alice BLOCK 0 STREAMS {b}x {a}s > >\r\n");
            std::thread::sleep(Duration::from_millis(150));
            step(log, &mut c, "XGROUP CREATE {b}x g $ MKSTREAM");
            for cmd in writes.iter() {
                step(log, &mut c, cmd);
            }
            log.push((
                format!("case {i}: blocked reader's reply"),
                reply_within(&mut w, wait),
            ));
        }
        // XREAD without a group is not answered by a type change.
        let (mut w, mut c) = (s.conn(), s.conn());
        step(log, &mut c, "DEL {a}r");
        step(log, &mut c, "XADD {a}r 1-0 f v");
        w.send(b"XREAD BLOCK 0 STREAMS {a}r $\r\n");
        std::thread::sleep(Duration::from_millis(150));
        step(log, &mut c, "SET {a}r v");
        log.push((
            "XREAD after SET".into(),
            reply_within(&mut w, Duration::from_millis(300)),
        ));
        step(log, &mut c, "DEL {a}r");
        step(log, &mut c, "XADD {a}r 2-0 f v");
        log.push(("XREAD after XADD".into(), reply_within(&mut w, wait)));
    });
}
