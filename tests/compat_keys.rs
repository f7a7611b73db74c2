//! Keyspace commands: keel vs stock redis-server.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Pair, now_ms};

pair_tests!(
    del_exists_type_touch,
    rename_renamenx,
    move_and_select,
    copy,
    dbsize_flush,
    swapdb,
    object_encoding,
    expire_options,
    expire_absolute_and_persist,
    keys_and_scan,
    active_expiry,
    debug_digest,
);

fn del_exists_type_touch(p: &mut Pair) {
    p.checks(&[
        "MSET a 1 b 2 c 3",
        "DEL a",
        "DEL a",
        "DEL b c d",
        "EXISTS a b c",
        "SET x 1",
        "EXISTS x",
        "EXISTS x x x",
        "EXISTS x nokey x",
        "EXISTS",
        "DEL",
        "TYPE x",
        "TYPE nokey",
        "TYPE",
        "TYPE a b",
        "MSET t1 1 t2 2",
        "TOUCH t1 t2 nokey",
        "TOUCH t1 t1",
        "TOUCH nokey",
        "TOUCH",
        "UNLINK t1 t2 nokey",
        "UNLINK t1",
        "EXISTS t1 t2",
        "MSET u1 1 u2 2 u3 3 u4 4 u5 5 u6 6 u7 7 u8 8",
        "DEL u1 u2 u3 u4 u5 u6 u7 u8 u1 nokey",
        "DBSIZE",
    ]);
}

fn rename_renamenx(p: &mut Pair) {
    p.checks(&[
        "SET x v",
        "RENAME x y",
        "GET x",
        "GET y",
        "RENAME nokey z",
        "RENAMENX nokey z",
        "RENAME y y",
        "RENAMENX y y",
        "SET z 1",
        "RENAMENX y z",
        "GET z",
        "RENAMENX y w",
        "EXISTS y w",
        "RENAME w z",
        "GET z",
        "RENAME z",
        "RENAMENX z",
        "SET {tag}a 1",
        "RENAME {tag}a {tag}b",
        "GET {tag}b",
        "SET n 10",
        "RENAME n n2",
        "INCR n2",
        "OBJECT ENCODING n2",
    ]);
    // The TTL travels with the key; the target's TTL is replaced.
    p.check("SET t v EX 100");
    p.check("RENAME t t2");
    p.check_int_close("TTL t2", 0);
    p.check("SET t3 v EX 500");
    p.check("SET t4 v");
    p.check("RENAME t4 t3");
    p.check("TTL t3");
    for i in 0..40 {
        p.check(&format!("SET src:{i} val:{i}"));
        p.check(&format!("RENAME src:{i} dst:{}", i * 31));
    }
    p.check("DBSIZE");
    p.check("MGET dst:0 dst:31 dst:62 dst:1209 src:0");
}

fn move_and_select(p: &mut Pair) {
    p.checks(&[
        "SET w v",
        "MOVE w 1",
        "MOVE w 1",
        "EXISTS w",
        "SELECT 1",
        "GET w",
        "MOVE w 1",
        "SET w other",
        "SELECT 0",
        "SET w mine",
        "MOVE w 1",
        "SELECT 1",
        "GET w",
        "MOVE w 0",
        "GET w",
        "SELECT 0",
        "GET w",
        "MOVE w 100",
        "MOVE w 16",
        "MOVE w -1",
        "MOVE w abc",
        "MOVE nokey 1",
        "MOVE w",
        "SELECT 15",
        "SET only15 x",
        "DBSIZE",
        "SELECT 16",
        "SELECT -1",
        "SELECT abc",
        "SELECT 1.0",
        "SELECT 9223372036854775808",
        "SELECT",
        "SELECT 1 2",
        "DBSIZE",
        "GET only15",
        "SELECT 0",
        "GET only15",
        "DBSIZE",
    ]);
    p.check("SET mt v EX 100");
    p.check("MOVE mt 2");
    p.check("SELECT 2");
    p.check_int_close("TTL mt", 0);
    p.check("SELECT 0");
    // Each connection has its own selected DB.
    let (mut k2, mut r2) = p.conns();
    for line in ["SELECT 3", "SET perconn x", "DBSIZE"] {
        let (a, b) = (k2.line(line), r2.line(line));
        p.expect_eq(&format!("second connection: {line}"), &a, &b);
    }
    p.check("EXISTS perconn");
    p.check("SELECT 3");
    p.check("GET perconn");
}

fn copy(p: &mut Pair) {
    p.checks(&[
        "SET s1 v",
        "COPY s1 s2",
        "GET s2",
        "COPY s1 s2",
        "SET s1 v2",
        "COPY s1 s2 REPLACE",
        "GET s2",
        "COPY s1 s3 DB 1",
        "SELECT 1",
        "GET s3",
        "SELECT 0",
        "COPY s1 s3 DB 1",
        "COPY s1 s3 DB 1 REPLACE",
        "COPY s1 s1",
        "COPY s1 s1 DB 0",
        "COPY s1 s1 DB 1 REPLACE",
        "COPY nokey s4",
        "EXISTS s4",
        "COPY s1 s2 DB 99",
        "COPY s1 s2 DB -1",
        "COPY s1 s2 DB abc",
        "COPY s1 s2 FOO",
        "COPY s1 s2 DB",
        "COPY s1",
        "SET n 42",
        "COPY n n2",
        "OBJECT ENCODING n2",
        "INCR n2",
        "GET n",
        "SET {c}a x",
        "COPY {c}a {c}b",
        "GET {c}b",
    ]);
    p.check("SET e v EX 100");
    p.check("COPY e e2");
    p.check_int_close("TTL e2", 0);
    p.check("COPY s1 e2 REPLACE");
    p.check("TTL e2");
    for i in 0..30 {
        p.check(&format!("COPY s1 copy:{i}"));
    }
    p.check("DBSIZE");
}

fn dbsize_flush(p: &mut Pair) {
    p.checks(&[
        "DBSIZE",
        "MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8",
        "DBSIZE",
        "SELECT 1",
        "MSET a 1 b 2",
        "DBSIZE",
        "FLUSHDB",
        "DBSIZE",
        "SELECT 0",
        "DBSIZE",
        "SELECT 2",
        "SET x y",
        "SELECT 0",
        "FLUSHALL",
        "DBSIZE",
        "SELECT 2",
        "DBSIZE",
        "SELECT 0",
        "MSET a 1 b 2",
        "FLUSHDB ASYNC",
        "DBSIZE",
        "MSET a 1 b 2",
        "FLUSHDB SYNC",
        "DBSIZE",
        "FLUSHDB FOO",
        "FLUSHDB SYNC ASYNC",
        "MSET a 1 b 2",
        "FLUSHALL ASYNC",
        "DBSIZE",
        "FLUSHALL SYNC",
        "FLUSHALL FOO",
        "DBSIZE 1",
        "SET after flush",
        "GET after",
    ]);
}

fn swapdb(p: &mut Pair) {
    p.checks(&[
        "MSET a 0 b 0",
        "SELECT 1",
        "MSET a 1 c 1",
        "SELECT 0",
        "SWAPDB 0 1",
        "MGET a b c",
        "DBSIZE",
        "SELECT 1",
        "MGET a b c",
        "SWAPDB 1 1",
        "MGET a b c",
        "SWAPDB 1 5",
        "DBSIZE",
        "SELECT 5",
        "DBSIZE",
        "SWAPDB 0 99",
        "SWAPDB 16 0",
        "SWAPDB -1 0",
        "SWAPDB a 1",
        "SWAPDB 1 b",
        "SWAPDB 0",
        "SELECT 0",
    ]);
    // A connection sitting in DB 0 sees the swapped contents at once.
    let (mut k2, mut r2) = p.conns();
    p.check("SWAPDB 0 5");
    let (a, b) = (k2.line("MGET a b c"), r2.line("MGET a b c"));
    p.expect_eq("other connection after SWAPDB: MGET a b c", &a, &b);
    p.check("SET sw v EX 100");
    p.check("SWAPDB 0 6");
    p.check("SELECT 6");
    p.check_int_close("TTL sw", 0);
}

fn object_encoding(p: &mut Pair) {
    let long = "x".repeat(50);
    let edge44 = "y".repeat(44);
    let edge45 = "z".repeat(45);
    p.checks(&[
        "SET i 123",
        "OBJECT ENCODING i",
        "SET neg -1",
        "OBJECT ENCODING neg",
        "SET zero 0",
        "OBJECT ENCODING zero",
        "SET big 9223372036854775807",
        "OBJECT ENCODING big",
        "SET toobig 12345678901234567890",
        "OBJECT ENCODING toobig",
        "SET spaced \" 1\"",
        "OBJECT ENCODING spaced",
        "SET lead 01",
        "OBJECT ENCODING lead",
        "SET s hello",
        "OBJECT ENCODING s",
        "SET empty \"\"",
        "OBJECT ENCODING empty",
        "APPEND s world",
        "OBJECT ENCODING s",
        "SETRANGE i 0 9",
        "OBJECT ENCODING i",
        "INCR lead",
        "OBJECT ENCODING lead",
        "SET f 1.5",
        "INCRBYFLOAT f 1",
        "OBJECT ENCODING f",
        "SETBIT bits 3 1",
        "OBJECT ENCODING bits",
        "OBJECT ENCODING nokey",
        "OBJECT ENCODING",
        "OBJECT FOO x",
        "OBJECT REFCOUNT nokey",
        "OBJECT FREQ i",
    ]);
    for (k, v) in [("long", &long), ("e44", &edge44), ("e45", &edge45)] {
        p.check(&format!("SET {k} {v}"));
        p.check(&format!("OBJECT ENCODING {k}"));
    }
    p.check("GETSET e44 100");
    p.check("OBJECT ENCODING e44");
    p.check("MSET m1 42 m2 abc");
    p.check("OBJECT ENCODING m1");
    p.check("OBJECT ENCODING m2");
    p.check("SETNX m3 77");
    p.check("OBJECT ENCODING m3");
    p.check("SETEX m4 100 77");
    p.check("OBJECT ENCODING m4");
    p.check("COPY m1 m5");
    p.check("OBJECT ENCODING m5");
}

fn expire_options(p: &mut Pair) {
    p.checks(&[
        "SET e v",
        "EXPIRE e 100",
        "EXPIRE e 100 NX",
        "EXPIRE e 200 XX",
        "EXPIRE e 50 GT",
        "EXPIRE e 300 GT",
        "EXPIRE e 400 LT",
        "EXPIRE e 10 LT",
        "EXPIRE e 10 nx",
        "EXPIRE e 10 NX XX",
        "EXPIRE e 10 XX NX",
        "EXPIRE e 10 GT LT",
        "EXPIRE e 10 NX GT",
        "EXPIRE e 20 XX GT",
        "EXPIRE e 10 FOO",
        "EXPIRE e 5 GT GT",
        "EXPIRE e abc",
        "EXPIRE e 1.5",
        "EXPIRE e",
        "EXPIRE nokey 10",
        "EXPIRE nokey 10 NX",
        "EXPIRE e 9223372036854775807",
        "EXPIRE e -9223372036854775808",
        "PEXPIRE e 9223372036854775807",
        "EXPIREAT e 9223372036854775807",
        "SET p v",
        "EXPIRE p 100 XX",
        "EXPIRE p 100 GT",
        "TTL p",
        "EXPIRE p 100 LT",
        "SET p2 v",
        "EXPIRE p2 100 NX",
        "PEXPIRE p2 100000 XX",
        "PEXPIRE p2 200000 GT",
        "PEXPIRE p2 50000 LT",
        "PEXPIRE p2 50000 FOO",
        "SET neg v",
        "EXPIRE neg -1",
        "EXISTS neg",
        "SET zero v",
        "EXPIRE zero 0",
        "EXISTS zero",
        "SET negp v",
        "PEXPIRE negp -100",
        "EXISTS negp",
        "SET gtneg v",
        "EXPIRE gtneg -1 GT",
        "EXISTS gtneg",
        "EXPIRE gtneg -1 LT",
        "EXISTS gtneg",
        "TTL nokey",
        "PTTL nokey",
        "SET nottl v",
        "TTL nottl",
        "PTTL nottl",
        "EXPIRETIME nottl",
        "PEXPIRETIME nottl",
        "EXPIRETIME nokey",
        "PEXPIRETIME nokey",
        "TTL",
        "PTTL a b",
    ]);
    p.check_int_close("TTL e", 0);
    p.check_int_close("PTTL e", common::PTTL_TOLERANCE_MS);
    p.check_int_close("TTL p2", 0);
    p.check("SET sub v");
    p.check("PEXPIRE sub 1500");
    p.check_int_close("TTL sub", 1);
    p.check("PEXPIRE sub 1");
    std::thread::sleep(Duration::from_millis(30));
    p.checks(&["TTL sub", "PTTL sub", "EXISTS sub", "EXPIRE sub 10"]);
}

fn expire_absolute_and_persist(p: &mut Pair) {
    let at = now_ms() / 1000 + 1000;
    let pat = now_ms() + 2_000_000;
    p.checks(&[
        "SET a v",
        &format!("EXPIREAT a {at}"),
        "EXPIRETIME a",
        &format!("EXPIREAT a {} NX", at + 5),
        &format!("EXPIREAT a {} GT", at + 5),
        "EXPIRETIME a",
        &format!("EXPIREAT a {} LT", at + 10),
        &format!("EXPIREAT a {} LT", at - 10),
        "EXPIRETIME a",
        &format!("EXPIREAT a {} XX", at),
        "PEXPIRETIME a",
        &format!("PEXPIREAT a {pat}"),
        "PEXPIRETIME a",
        "EXPIRETIME a",
        &format!("PEXPIREAT a {} GT", pat - 1),
        &format!("PEXPIREAT a {} GT", pat + 1),
        "PEXPIRETIME a",
        &format!("PEXPIREAT nokey {pat}"),
        "PEXPIREAT a abc",
        "EXPIREAT a 1",
        "EXISTS a",
        "SET b v",
        "PEXPIREAT b 0",
        "EXISTS b",
        "SET c v",
        &format!("PEXPIREAT c {pat}"),
        "PERSIST c",
        "PERSIST c",
        "TTL c",
        "PEXPIRETIME c",
        "PERSIST nokey",
        "PERSIST",
        "PERSIST a b",
        "SET d v EX 100",
        "SET d v2",
        "TTL d",
        "SET e v EX 100",
        "GETSET e v2",
        "TTL e",
        "SET f v EX 100",
        "APPEND f x",
        "PERSIST f",
        "TTL f",
    ]);
    p.check_int_close("TTL c", 0);
}

fn keys_and_scan(p: &mut Pair) {
    let mut mset = vec!["MSET".to_string()];
    for i in 0..250 {
        mset.push(format!("user:{i}"));
        mset.push(i.to_string());
    }
    for w in [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "h?llo", "h[a]llo", "a\\b",
    ] {
        mset.push(w.to_string());
        mset.push("x".into());
    }
    for i in 0..40 {
        mset.push(format!("{{tag}}:{i}"));
        mset.push("t".into());
    }
    p.check_args(&mset);
    p.check("SET withttl v EX 1000");
    for pat in [
        "*",
        "user:*",
        "user:1*",
        "user:?",
        "user:[1-3]?",
        "h?llo",
        "h*llo",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-b]llo",
        "h\\*llo",
        "h\\?llo",
        "h\\[a\\]llo",
        "a\\\\b",
        "{tag}:*",
        "nomatch*",
        "",
        "*[",
    ] {
        p.check_sorted(&format!("KEYS \"{}\"", pat.replace('\\', "\\\\")));
    }
    p.checks(&["KEYS", "KEYS a b"]);
    p.check_scan("");
    p.check_scan("COUNT 1");
    p.check_scan("COUNT 7");
    p.check_scan("COUNT 1000");
    p.check_scan("MATCH user:1*");
    p.check_scan("MATCH user:1* COUNT 3");
    p.check_scan("MATCH h?llo COUNT 5");
    p.check_scan("MATCH {tag}:*");
    p.check_scan("TYPE string");
    p.check_scan("TYPE list");
    p.check_scan("MATCH user:* TYPE string COUNT 50");
    p.checks(&[
        "SCAN abc",
        "SCAN 0 COUNT 0",
        "SCAN 0 COUNT -1",
        "SCAN 0 COUNT abc",
        "SCAN 0 MATCH",
        "SCAN 0 FOO bar",
        "SCAN 0 TYPE",
        "SCAN",
    ]);
    // An empty DB: one call, cursor 0, nothing.
    p.check("SELECT 9");
    p.check("SCAN 0");
    p.check("KEYS *");
    p.check("SELECT 0");
    p.check("FLUSHDB");
    p.check("SCAN 0");
}

fn active_expiry(p: &mut Pair) {
    p.check("SET keep v");
    p.check("PSETEX gone 100 v");
    for i in 0..50 {
        p.check(&format!("SET tmp:{i} v PX 100"));
    }
    p.check("SELECT 4");
    p.check("PSETEX gone4 100 v");
    p.check("SELECT 0");
    p.check("DBSIZE");
    // Nothing touches the keys from now on: only active expiry removes them.
    let settle = |c: &mut common::Conn| -> (i64, Duration) {
        let start = Instant::now();
        loop {
            let n = c.val("DBSIZE").as_int();
            if n == 1 || start.elapsed() > Duration::from_secs(5) {
                return (n, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    let (rn, rt) = settle(&mut p.r);
    let (kn, kt) = settle(&mut p.k);
    if kn != rn {
        p.fail(format!(
            "DBSIZE after 100 ms TTLs, no access: keel {kn} after {kt:?}, redis {rn} after {rt:?}"
        ));
    }
    p.check("SELECT 4");
    let (k4, r4) = (p.k.line("DBSIZE"), p.r.line("DBSIZE"));
    p.expect_eq("DB 4 DBSIZE after active expiry", &k4, &r4);
    p.check("SELECT 0");
    p.check("INFO keyspace");
}

fn debug_digest(p: &mut Pair) {
    p.check("DEBUG DIGEST");
    let pat = now_ms() + 3_600_000;
    p.checks(&[
        "MSET a 1 b hello c \"\" d 12345678901234567890",
        "SET e \"\\x00\\r\\n\"",
        &format!("PEXPIREAT a {pat}"),
        &format!("SET f v PXAT {}", pat + 17),
        "SELECT 1",
        "SET a other",
        "SELECT 0",
    ]);
    for i in 0..100 {
        p.check(&format!("SET k:{i} {}", i * i));
    }
    p.check("DEBUG DIGEST");
    p.check("DEBUG DIGEST-VALUE a b c nokey e");
    p.check("DEBUG DIGEST-VALUE");
    p.check("DEL k:5");
    p.check("DEBUG DIGEST");
    p.check("PERSIST a");
    p.check("DEBUG DIGEST");
    p.check("FLUSHALL");
    p.check("DEBUG DIGEST");
    // The digest ignores insertion order (and so shard layout).
    for reverse in [false, true] {
        p.check("FLUSHALL");
        let mut idx: Vec<u32> = (0..64).collect();
        if reverse {
            idx.reverse();
        }
        for i in idx {
            p.check(&format!("SET d:{i} {i}"));
        }
        p.check("DEBUG DIGEST");
    }
}
