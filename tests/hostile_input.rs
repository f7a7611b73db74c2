//! Hostile input, keel and stock redis-server side by side: glob patterns
//! built to blow up a backtracking matcher (every pattern consumer), counts,
//! offsets, ranges and stream IDs at their limits, malformed RESP framing,
//! and corrupt RESTORE payloads. Each case must get stock's reply, in
//! bounded time, and keel must keep serving.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Conn, Pair, Resp, encode, show};

/// Generous next to what stock needs (microseconds), tiny next to what an
/// exponential matcher needs (years).
const FAST: Duration = Duration::from_secs(2);
/// How long stock may take over a hostile RESTORE payload: with seed
/// 1796681504346 one mutated payload took stock 58 s on a loaded 2-core
/// machine (keel: 23 ms).
const STOCK_PATIENCE: Duration = Duration::from_secs(180);

/// Sends `args` to both, compares the replies and times keel's.
fn timed(p: &mut Pair, what: &str, args: &[Vec<u8>]) -> Vec<u8> {
    let t = Instant::now();
    let k = p.k.cmd(args);
    let took = t.elapsed();
    let r = p.r.cmd(args);
    assert!(took < FAST, "{what}: keel took {took:?}");
    p.expect_eq(what, &k, &r);
    r
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// "a*a*...a*b": the pattern of Redis's keyspace regression test.
fn nested(unit: &str, n: usize, tail: &str) -> String {
    format!("{}{tail}", unit.repeat(n))
}

/// The nested patterns of Redis's keyspace tests ("Regression for pattern
/// matching long nested loops", "... very long nested loops") and friends,
/// through every pattern consumer: KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH,
/// PSUBSCRIBE delivery, PUBSUB CHANNELS, ACL key and channel patterns,
/// CONFIG GET, COMMAND LIST FILTERBY PATTERN, and scripts.
fn nested_patterns(p: &mut Pair) {
    let a40 = "a".repeat(40);
    let a50k = "a".repeat(50_000);
    let keyspace = nested("a*", 20, "b");
    let very_long = "*?".repeat(50_000);
    p.check("FLUSHALL");
    p.check_args(&[b("SET"), b(&a40), b("1")]);
    timed(p, "KEYS a*a*...b", &[b("KEYS"), b(&keyspace)]);
    p.check("FLUSHALL");
    p.check_args(&[b("SET"), b(&a50k), b("1")]);
    timed(p, "KEYS *?*?... (50000)", &[b("KEYS"), b(&very_long)]);
    // At the star-run limit (1000 runs match, 1001 never do) and beyond.
    for pat in [
        "*?".repeat(1000),
        "*?".repeat(1001),
        nested("*?", 1000, "*"),
        nested("*?", 1000, "*a"),
        nested("a*", 900, "b"),
        nested("*a", 3000, ""),
    ] {
        let r = timed(
            p,
            &format!("KEYS ({} bytes)", pat.len()),
            &[b("KEYS"), b(&pat)],
        );
        assert!(r.starts_with(b"*"), "{}", show(&r));
    }
    let scan = |p: &mut Pair, cmd: &[&str], pat: &str| {
        let mut args: Vec<Vec<u8>> = cmd.iter().map(|s| b(s)).collect();
        args.extend([b("MATCH"), b(pat), b("COUNT"), b("1000")]);
        timed(p, &format!("{} MATCH ({} bytes)", cmd[0], pat.len()), &args);
    };
    scan(p, &["SCAN", "0"], &keyspace);
    scan(p, &["SCAN", "0"], &very_long);
    let m = "a".repeat(3000);
    p.check_args(&[b("HSET"), b("h"), b(&m), b("v")]);
    p.check_args(&[b("SADD"), b("s"), b(&m)]);
    p.check_args(&[b("ZADD"), b("z"), b("1"), b(&m)]);
    for (cmd, key) in [("HSCAN", "h"), ("SSCAN", "s"), ("ZSCAN", "z")] {
        scan(p, &[cmd, key, "0"], &nested("a*", 40, "b"));
        scan(p, &[cmd, key, "0"], &nested("*a", 999, "*"));
    }
    timed(
        p,
        "EVAL KEYS",
        &[
            b("EVAL"),
            b("return redis.call('keys', ARGV[1])"),
            b("0"),
            b(&keyspace),
        ],
    );
    // Config names and command names are matched without case.
    timed(
        p,
        "CONFIG GET",
        &[b("CONFIG"), b("GET"), b(&nested("*A", 30, "*Q"))],
    );
    timed(
        p,
        "CONFIG GET",
        &[
            b("CONFIG"),
            b("GET"),
            b("*M*A*X*M*E*M*O*R*Y*-*S*A*M*P*L*E*S"),
        ],
    );
    timed(
        p,
        "COMMAND LIST FILTERBY PATTERN",
        &[
            b("COMMAND"),
            b("LIST"),
            b("FILTERBY"),
            b("PATTERN"),
            b(&nested("*e", 30, "*q")),
        ],
    );

    // Pub/sub: a pattern subscriber, a channel that nearly matches.
    let chan = "a".repeat(5000);
    let pchan = nested("a*", 40, "b");
    let (mut ks, mut rs) = p.conns();
    let (mut kp, mut rp) = p.conns();
    let sub = [b("SUBSCRIBE"), b(&chan)];
    p.expect_eq("SUBSCRIBE", &ks.cmd(&sub), &rs.cmd(&sub));
    let psub = [b("PSUBSCRIBE"), b(&pchan), b("a*")];
    ks.send(&encode(&psub));
    rs.send(&encode(&psub));
    for _ in 0..2 {
        let (k, r) = (ks.read_reply(), rs.read_reply());
        p.expect_eq("PSUBSCRIBE", &k, &r);
    }
    for (what, args) in [
        ("PUBLISH", vec![b("PUBLISH"), b(&chan), b("m")]),
        (
            "PUBSUB CHANNELS",
            vec![b("PUBSUB"), b("CHANNELS"), b(&pchan)],
        ),
        (
            "PUBSUB CHANNELS",
            vec![b("PUBSUB"), b("CHANNELS"), b(&nested("*a", 999, "*"))],
        ),
    ] {
        let t = Instant::now();
        let k = kp.cmd(&args);
        assert!(t.elapsed() < FAST, "{what}: keel took {:?}", t.elapsed());
        let r = rp.cmd(&args);
        p.expect_eq(what, &k, &r);
    }
    // The subscriber got the message once per matching subscription.
    for _ in 0..2 {
        let (k, r) = (ks.read_reply(), rs.read_reply());
        p.expect_eq("message", &k, &r);
    }
    drop((ks, rs, kp, rp));

    // ACL: key and channel patterns of a user, checked on every access.
    p.check_args(&[
        b("ACL"),
        b("SETUSER"),
        b("u"),
        b("on"),
        b("nopass"),
        b(&format!("~{keyspace}")),
        b(&format!("&{pchan}")),
        b("+@all"),
    ]);
    let (mut ku, mut ru) = p.conns();
    let auth = [b("AUTH"), b("u"), b("x")];
    p.expect_eq("AUTH", &ku.cmd(&auth), &ru.cmd(&auth));
    for args in [
        vec![b("GET"), b(&a40)],
        vec![b("GET"), b(&nested("a", 1, &"a".repeat(40)))],
        vec![b("PUBLISH"), b(&chan), b("m")],
    ] {
        let t = Instant::now();
        let k = ku.cmd(&args);
        assert!(t.elapsed() < FAST, "ACL check took {:?}", t.elapsed());
        let r = ru.cmd(&args);
        p.expect_eq("ACL-checked command", &k, &r);
    }
    p.check("ACL DELUSER u");
    p.check("PING");
}

/// Random keys and patterns over an alphabet rich in glob syntax, ranges
/// in either order, high bytes (C's signed char) and case: KEYS and
/// SCAN MATCH must select exactly the keys stock selects; CONFIG GET checks
/// the case-folding matcher.
fn random_patterns(p: &mut Pair) {
    let seed = std::env::var("KEEL_GLOB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(common::now_ms);
    eprintln!("random_patterns: KEEL_GLOB_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let key_alpha: &[u8] = b"abAB-]^\\[*?z\x80\xff\x00";
    let pat_alpha: &[u8] = b"abAB-]^\\[*?z\x80\xff\x00**??[[]";
    let pick = |rng: &mut fastrand::Rng, alpha: &[u8], n: usize| -> Vec<u8> {
        (0..n).map(|_| alpha[rng.usize(..alpha.len())]).collect()
    };
    p.check("FLUSHALL");
    let mut set = Vec::new();
    for _ in 0..300 {
        let n = rng.usize(1..6);
        let k = pick(&mut rng, key_alpha, n);
        set.extend(encode(&[b"SET".to_vec(), k, b"1".to_vec()]));
    }
    p.k.send(&set);
    p.r.send(&set);
    for _ in 0..300 {
        let (k, r) = (p.k.read_reply(), p.r.read_reply());
        p.expect_eq("SET", &k, &r);
    }
    // The config names keel knows: CONFIG GET must list the same of them.
    let all = [b"CONFIG".to_vec(), b"GET".to_vec(), b"*".to_vec()];
    let stock_names = config_names(&p.r.cmd(&all)).expect("CONFIG GET *");
    let known: Vec<Vec<u8>> = config_names(&p.k.cmd(&all))
        .expect("CONFIG GET *")
        .into_iter()
        .filter(|n| stock_names.contains(n))
        .collect();
    let sorted = |raw: &[u8]| match Resp::parse(raw) {
        Resp::Array(mut v) => {
            v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            Ok(v)
        }
        _ => Err(raw.to_vec()),
    };
    for i in 0..400 {
        let n = rng.usize(0..9);
        let pat = pick(&mut rng, pat_alpha, n);
        let args = [b"KEYS".to_vec(), pat.clone()];
        let (k, r) = (p.k.cmd(&args), p.r.cmd(&args));
        if sorted(&k) != sorted(&r) {
            p.fail(format!(
                "KEYS {} (case {i})\n    keel:  {}\n    redis: {}",
                show(&pat),
                show(&k),
                show(&r)
            ));
        }
        if i % 4 == 0 {
            let mut opts = vec![b"MATCH".to_vec(), pat.clone()];
            opts.extend([b"COUNT".to_vec(), b"50".to_vec()]);
            let (k, r) = (scan_match(&mut p.k, &opts), scan_match(&mut p.r, &opts));
            if k != r {
                p.fail(format!("SCAN MATCH {}: keel {k:?} redis {r:?}", show(&pat)));
            }
        }
        // Config names: lower case letters and glob syntax, folded case.
        let n = rng.usize(1..7);
        let cpat: Vec<u8> = pick(&mut rng, b"aeimxAEM*?[]-^\\", n);
        let args = [b"CONFIG".to_vec(), b"GET".to_vec(), cpat.clone()];
        let (k, r) = (p.k.cmd(&args), p.r.cmd(&args));
        let only_known = |v: Result<Vec<Vec<u8>>, Vec<u8>>| {
            v.map(|v| {
                v.into_iter()
                    .filter(|n| known.contains(n))
                    .collect::<Vec<_>>()
            })
        };
        let (kn, rn) = (only_known(config_names(&k)), only_known(config_names(&r)));
        if kn != rn {
            let shown = |v: &Result<Vec<Vec<u8>>, Vec<u8>>| match v {
                Ok(v) => v
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(raw) => show(raw),
            };
            p.fail(format!(
                "CONFIG GET {}\n    keel:  {}\n    redis: {}",
                show(&cpat),
                shown(&kn),
                shown(&rn)
            ));
        }
    }
}

/// The names of a CONFIG GET reply, sorted.
fn config_names(raw: &[u8]) -> Result<Vec<Vec<u8>>, Vec<u8>> {
    match Resp::parse(raw) {
        Resp::Array(v) => {
            let mut n: Vec<Vec<u8>> = v.iter().step_by(2).map(|x| x.as_bytes().to_vec()).collect();
            n.sort();
            Ok(n)
        }
        _ => Err(raw.to_vec()),
    }
}

fn scan_match(c: &mut Conn, opts: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Vec<u8>> {
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    for _ in 0..10_000 {
        let mut args = vec![b"SCAN".to_vec(), cursor.clone()];
        args.extend(opts.iter().cloned());
        let raw = c.cmd(&args);
        let Resp::Array(parts) = Resp::parse(&raw) else {
            return Err(raw);
        };
        let [Resp::Bulk(next), Resp::Array(batch)] = parts.as_slice() else {
            return Err(raw);
        };
        keys.extend(batch.iter().map(|k| k.as_bytes().to_vec()));
        cursor = next.clone();
        if cursor == b"0" {
            keys.sort();
            keys.dedup();
            return Ok(keys);
        }
    }
    Err(b"SCAN did not end".to_vec())
}

/// Counts, offsets, ranges and stream IDs at the edges of their types:
/// stock's replies (errors included), and no huge reservation up front.
fn limits(p: &mut Pair) {
    p.checks(&[
        "FLUSHALL",
        // Strings and bits: the result may not pass proto-max-bulk-len.
        "SETRANGE k 536870912 x",
        "SETRANGE k -1 x",
        "SETRANGE k 9223372036854775807 x",
        "SETRANGE k 536870911 \"\"",
        "SETBIT b 4294967296 1",
        "SETBIT b -1 1",
        "GETBIT b 9223372036854775807",
        "BITFIELD bf SET u8 4294967296 1",
        "BITFIELD bf SET u8 #536870912 1",
        "BITFIELD bf GET u8 9223372036854775807",
        "BITFIELD bf INCRBY i64 4294967232 1",
        "BITFIELD bf SET u64 0 1",
        "BITFIELD bf SET i65 0 1",
        "BITFIELD_RO bf GET u8 #-1",
        "CONFIG SET proto-max-bulk-len 1mb",
        "SETRANGE k 1048576 x",
        "SETRANGE k 1048575 x",
        "APPEND k x",
        "SETBIT b2 8388608 1",
        "SETBIT b2 8388607 1",
        "BITFIELD b3 SET u8 8388608 1",
        "BITFIELD b3 SET u8 8388600 1",
        "CONFIG SET proto-max-bulk-len 512mb",
        "DEL k b b2 b3 bf",
        // Random members: stock's range errors for counts it cannot double.
        "SADD s a b c",
        "SRANDMEMBER s -9223372036854775808",
        "SRANDMEMBER s 0",
        "HSET h a 1 b 2",
        "HRANDFIELD h -9223372036854775808",
        "HRANDFIELD h -9223372036854775808 WITHVALUES",
        "HRANDFIELD h -4611686018427387904 WITHVALUES",
        "HRANDFIELD h 9223372036854775807 WITHVALUES",
        "ZADD z 1 a 2 b",
        "ZRANDMEMBER z -9223372036854775808",
        "ZRANDMEMBER z -9223372036854775808 WITHSCORES",
        "ZRANDMEMBER z -4611686018427387904 WITHSCORES",
        "ZRANDMEMBER z 9223372036854775807 WITHSCORES",
        // Lists.
        "RPUSH l a b c a",
        "LPOS l a RANK -9223372036854775808",
        "LPOS l a RANK 9223372036854775807",
        "LPOS l a RANK -9223372036854775807",
        "LPOS l a COUNT -1",
        "LPOS l a COUNT 9223372036854775807",
        "LPOS l a MAXLEN -1",
        "LPOS l a MAXLEN 9223372036854775807",
        "LPOS l a RANK 0",
        "LRANGE l -9223372036854775808 9223372036854775807",
        "LINDEX l -9223372036854775808",
        "LSET l -9223372036854775808 x",
        "LPOP l -1",
        "LMPOP 9223372036854775807 l LEFT",
        "LMPOP -1 l LEFT",
        "LMPOP 1 l LEFT COUNT 9223372036854775807",
        "LTRIM l -9223372036854775808 9223372036854775807",
        // Sorted sets.
        "ZADD z 3 c",
        "ZRANGE z 0 -1 BYSCORE LIMIT 0 9223372036854775807",
        "ZRANGE z 0 -1 BYSCORE LIMIT -9223372036854775808 -9223372036854775808",
        "ZRANGE z 0 -1 BYSCORE LIMIT 9223372036854775807 1",
        "ZRANGEBYLEX z - + LIMIT -1 -1",
        "ZRANGE z -9223372036854775808 9223372036854775807",
        "ZPOPMIN z -1",
        "ZMPOP 0 z MIN",
        "ZINTERCARD 1 z LIMIT -1",
        "ZUNIONSTORE d 9223372036854775807 z",
        "ZUNIONSTORE d -1 z",
        "SINTERCARD 9223372036854775807 s",
        "SINTERCARD 1 s LIMIT -1",
        "SPOP s -1",
        // Bit ranges.
        "SET str hello",
        "BITCOUNT str -9223372036854775808 9223372036854775807",
        "BITCOUNT str 0 -9223372036854775808 BIT",
        "BITCOUNT str -9223372036854775808 -1 BIT",
        "BITPOS str 1 -9223372036854775808 9223372036854775807",
        "BITPOS str 0 -9223372036854775808 9223372036854775807 BIT",
        "BITPOS str 1 9223372036854775807 BIT",
        "GETRANGE str -9223372036854775808 9223372036854775807",
        "SUBSTR str 9223372036854775807 -9223372036854775808",
        // Expiry arithmetic that would overflow.
        "GETEX str EX 9223372036854775807",
        "GETEX str PX 9223372036854775807",
        "SET x 1 EX 9223372036854775807",
        "SET x 1 PX 9223372036854775807",
        "SET x 1 EXAT 9223372036854775807",
        "EXPIRE str 9223372036854775807",
        "EXPIRE str -9223372036854775808",
        "PEXPIRE str 9223372036854775807",
        "EXPIREAT str 9223372036854775807",
        "INCRBY n 9223372036854775807",
        "INCRBY n 1",
        "DECRBY m -9223372036854775808",
        "INCRBYFLOAT f 1e308",
        "INCRBYFLOAT f 1e308",
        // Streams at the last possible ID.
        "XADD st 18446744073709551615-18446744073709551615 f v",
        "XADD st 18446744073709551615-18446744073709551615 f v",
        "XADD st * f v",
        "XADD st2 18446744073709551615-* f v",
        "XADD st3 0-0 f v",
        "XADD st3 18446744073709551616-0 f v",
        "XADD st3 -1 f v",
        "XRANGE st 18446744073709551615-18446744073709551615 +",
        "XRANGE st - 18446744073709551615-18446744073709551615",
        "XRANGE st (18446744073709551615-18446744073709551615 +",
        "XRANGE st - (0-0",
        "XREVRANGE st + - COUNT -1",
        "XRANGE st - + COUNT 9223372036854775807",
        "XTRIM st MAXLEN -1",
        "XTRIM st MINID 18446744073709551615-18446744073709551615",
        "XTRIM st MAXLEN 9223372036854775807",
        "XADD st4 MAXLEN 9223372036854775808 * f v",
        "XADD st4 MINID 18446744073709551616 * f v",
        "XSETID st 18446744073709551615-18446744073709551615",
        "XSETID st 1-1",
        "XGROUP CREATE st g $",
        "XAUTOCLAIM st g c 0 0-0 COUNT 9223372036854775807",
        "XAUTOCLAIM st g c 0 0-0 COUNT 1073741824",
        "XPENDING st g - + 9223372036854775807",
        "XPENDING st g - + -1",
        "XREAD COUNT -1 STREAMS st 0",
        "XREAD COUNT 9223372036854775807 STREAMS st 0",
        "XINFO STREAM st FULL COUNT -1",
    ]);
    p.check_sorted("SRANDMEMBER s 9223372036854775807");
    p.check_shape("SRANDMEMBER s -1000");
    p.check_shape("HRANDFIELD h -1000 WITHVALUES");
    p.check_shape("ZRANDMEMBER z -1000 WITHSCORES");
    p.check("PING");
}

/// Raw framing that stock refuses (and then closes), or skips: the same
/// bytes back from keel, and the same close.
fn framing(p: &mut Pair) {
    let big = |c: u8, n: usize| vec![c; n];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "multibulk count too big",
            b"*1048577\r\n$4\r\nPING\r\n".to_vec(),
        ),
        ("multibulk count not a number", b"*abc\r\n".to_vec()),
        (
            "negative multibulk count",
            b"*-1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        ),
        ("empty multibulk", b"*0\r\n*1\r\n$4\r\nPING\r\n".to_vec()),
        ("bulk length too big", b"*1\r\n$536870913\r\nx\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-1\r\n".to_vec()),
        ("bulk length not a number", b"*1\r\n$x\r\n".to_vec()),
        ("nested array", b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec()),
        ("integer in a request", b"*1\r\n:1\r\n".to_vec()),
        ("unbalanced quotes", b"SET k \"abc\r\n".to_vec()),
        ("inline without CRLF past 64 KB", big(b'a', 70_000)),
        (
            "multibulk count past 64 KB",
            [b"*".to_vec(), big(b'1', 70_000)].concat(),
        ),
        (
            "bulk count past 64 KB",
            [b"*1\r\n$".to_vec(), big(b'1', 70_000)].concat(),
        ),
        ("inline PING", b"PING\r\n\r\n  \r\nPING\n".to_vec()),
    ];
    for (what, req) in cases {
        let (mut k, mut r) = p.conns();
        k.send_lossy(&req);
        r.send_lossy(&req);
        let quiet = Duration::from_millis(300);
        let (kb, kc) = k.read_until_close(quiet);
        let (rb, rc) = r.read_until_close(quiet);
        p.expect_eq(what, &kb, &rb);
        if kc != rc {
            p.fail(format!("{what}: closed keel {kc} redis {rc}"));
        }
    }
    p.check("PING");
}

pair_tests!(nested_patterns, random_patterns, limits, framing);

/// The value at `key` in a form that does not depend on its encoding.
fn contents(c: &mut Conn, key: &str) -> Vec<Vec<u8>> {
    let t = c.line(&format!("TYPE {key}"));
    let mut out = vec![t.clone()];
    let sorted = |raw: Vec<u8>| match Resp::parse(&raw) {
        Resp::Array(v) => {
            let mut v: Vec<Vec<u8>> = v.iter().map(|x| x.as_bytes().to_vec()).collect();
            v.sort();
            v.concat()
        }
        _ => raw,
    };
    match &t[..] {
        b"+string\r\n" => out.push(c.line(&format!("GET {key}"))),
        b"+list\r\n" => out.push(c.line(&format!("LRANGE {key} 0 -1"))),
        b"+set\r\n" => out.push(sorted(c.line(&format!("SMEMBERS {key}")))),
        b"+hash\r\n" => {
            out.push(sorted(c.line(&format!("HKEYS {key}"))));
            out.push(sorted(c.line(&format!("HVALS {key}"))));
            out.push(c.line(&format!("HLEN {key}")));
        }
        // Member and score pairs, in any order: a packed zset whose scores
        // are out of order is kept so by Redis, sorted by keel.
        b"+zset\r\n" => {
            let raw = c.line(&format!("ZRANGE {key} 0 -1 WITHSCORES"));
            let mut pairs: Vec<Vec<u8>> = match Resp::parse(&raw) {
                Resp::Array(v) => v
                    .chunks(2)
                    .map(|p| [p[0].as_bytes(), b" ", p[1].as_bytes()].concat())
                    .collect(),
                _ => vec![raw],
            };
            pairs.sort();
            out.extend(pairs);
        }
        b"+stream\r\n" => {
            out.push(c.line(&format!("XRANGE {key} - +")));
            out.push(c.line(&format!("XLEN {key}")));
            out.push(c.line(&format!("XINFO GROUPS {key}")));
        }
        _ => {}
    }
    out
}

/// Whether `key` holds a stream whose IDs are not strictly increasing or
/// whose XLEN is not its number of entries.
fn corrupt_stream(c: &mut Conn, key: &str) -> bool {
    if c.line(&format!("TYPE {key}")) != b"+stream\r\n" {
        return false;
    }
    let Resp::Array(entries) = Resp::parse(&c.line(&format!("XRANGE {key} - +"))) else {
        return false;
    };
    let ids: Vec<(u64, u64)> = entries
        .iter()
        .filter_map(|e| match e {
            Resp::Array(v) => {
                let id = v.first()?.as_str();
                let (ms, seq) = id.split_once('-')?;
                Some((ms.parse().ok()?, seq.parse().ok()?))
            }
            _ => None,
        })
        .collect();
    let len = Resp::parse(&c.line(&format!("XLEN {key}"))).as_int();
    ids.windows(2).any(|w| w[0] >= w[1]) || len != entries.len() as i64
}

/// Fills stock with one key per type and encoding; their DUMP payloads.
fn payloads(r: &mut Conn) -> Vec<(String, Vec<u8>)> {
    let mut setup: Vec<String> = vec![
        "SET str hello".into(),
        "SET int 12345".into(),
        format!("SET long {}", "x".repeat(300)),
        "RPUSH list a b 1 2 ccc".into(),
        "HSET hash f1 v1 f2 2 f3 v3".into(),
        "SADD iset 1 2 3 -7 100000".into(),
        "SADD sset a b c".into(),
        "ZADD zset 1 a 2.5 b -3 c".into(),
        "XADD stream 1-1 f v g w".into(),
        "XADD stream 2-1 f v2".into(),
        "XADD stream 3-0 h z".into(),
        "XGROUP CREATE stream g 0".into(),
        "XREADGROUP GROUP g alice COUNT 2 STREAMS stream >".into(),
    ];
    let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    setup.push(format!("RPUSH biglist {}", many.join(" ")));
    setup.push(format!(
        "HSET bighash {}",
        many.iter()
            .map(|m| format!("{m} {m}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    setup.push(format!("SADD bigset {}", many.join(" ")));
    setup.push(format!(
        "ZADD bigzset {}",
        many.iter()
            .enumerate()
            .map(|(i, m)| format!("{i} {m}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for l in &setup {
        let rep = r.line(l);
        assert!(!rep.starts_with(b"-"), "{l}: {}", show(&rep));
    }
    let keys = [
        "str", "int", "long", "list", "hash", "iset", "sset", "zset", "stream", "biglist",
        "bighash", "bigset", "bigzset",
    ];
    keys.iter()
        .map(|k| {
            let Resp::Bulk(p) = Resp::parse(&r.line(&format!("DUMP {k}"))) else {
                panic!("DUMP {k}");
            };
            (k.to_string(), p)
        })
        .collect()
}

/// A payload with its CRC64 recomputed, so the value decoder is reached.
fn reseal(mut body: Vec<u8>) -> Vec<u8> {
    let n = body.len();
    let crc = keel::rdb::crc64(0, &body[..n - 8]);
    body[n - 8..].copy_from_slice(&crc.to_le_bytes());
    body
}

fn mutate(rng: &mut fastrand::Rng, p: &[u8]) -> Vec<u8> {
    let (mut body, tail) = (p[..p.len() - 10].to_vec(), p[p.len() - 10..].to_vec());
    for _ in 0..rng.usize(1..4) {
        if body.is_empty() {
            break;
        }
        let i = rng.usize(..body.len());
        match rng.u8(..6) {
            0 => body[i] ^= 1 << rng.u8(..8),
            1 => body[i] = [0, 0xff, 0x7f, 0x80, 0xfe, 1][rng.usize(..6)],
            2 => body.truncate(i.max(1)),
            3 => body.insert(i, rng.u8(..)),
            4 => {
                body.remove(i);
            }
            _ => {
                let j = rng.usize(i..body.len());
                let chunk = body[i..j].to_vec();
                body.splice(j..j, chunk);
            }
        }
    }
    reseal([body, tail].concat())
}

/// RESTORE of corrupted payloads (each resealed with a valid CRC so the
/// decoder sees the damage) against stock with sanitize-dump-payload yes:
/// the same reply (`-ERR Bad data format` where stock refuses), the same
/// value where stock accepts, and keel still serving.
#[test]
fn restore_of_corrupt_payloads_as_stock() {
    let seed = std::env::var("KEEL_RESTORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(common::now_ms);
    eprintln!("restore_of_corrupt_payloads_as_stock: KEEL_RESTORE_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut p = Pair::with_args(
        1,
        &["--sanitize-dump-payload", "yes"],
        &["--sanitize-dump-payload", "yes"],
    );
    let payloads = payloads(&mut p.r);
    let (mut refused, mut accepted, mut stricter, mut corrupt) = (0, 0, 0, 0);
    // The slowest reply to a mutated payload: keel's, stock's and its input.
    let mut slowest = (Duration::ZERO, Duration::ZERO, String::new());
    for (name, good) in &payloads {
        // Intact, the payload restores to the same value.
        let args = [
            b"RESTORE".to_vec(),
            b"ok".to_vec(),
            b"0".to_vec(),
            good.clone(),
            b"REPLACE".to_vec(),
        ];
        p.check_args(&args);
        let (k, r) = (contents(&mut p.k, "ok"), contents(&mut p.r, "ok"));
        assert_eq!(k, r, "{name}: intact payload");
        for i in 0..150 {
            let bad = mutate(&mut rng, good);
            let args = [
                b"RESTORE".to_vec(),
                b"mk".to_vec(),
                b"0".to_vec(),
                bad.clone(),
                b"REPLACE".to_vec(),
            ];
            let hex: String = bad.iter().map(|b| format!("{b:02x}")).collect();
            let what = format!("{name} mutation {i}: RESTORE (hex) {hex}");
            p.k.send(&encode(&args));
            p.r.send(&encode(&args));
            let t = Instant::now();
            let k = p.k.read_reply();
            slowest.0 = slowest.0.max(t.elapsed());
            // Stock's deep sanitization of some payloads is slow on a
            // loaded machine: it gets longer than keel's read_reply has
            // (still a failure, of the test's premise, if it never answers).
            let t = Instant::now();
            let r = p.r.try_read_reply(STOCK_PATIENCE).unwrap_or_else(|e| {
                panic!("stock gave no reply within {STOCK_PATIENCE:?} ({e:?}) to {what}")
            });
            if t.elapsed() > slowest.1 {
                slowest = (slowest.0, t.elapsed(), format!("{name} mutation {i}"));
            }
            if k != r {
                // Stock reads a stream's metadata without checking each
                // length's encoding or the entries' order: it keeps streams
                // whose IDs do not grow, whose XLEN is not their entry count,
                // or whose groups' IDs come from a bad length (-1). keel
                // refuses those; every other difference is a failure.
                if k.starts_with(b"-ERR Bad data format") && *name == "stream" {
                    stricter += 1;
                    corrupt += corrupt_stream(&mut p.r, "mk") as usize;
                    p.r.line("DEL mk");
                    continue;
                }
                p.expect_eq(&what, &k, &r);
            }
            if r == b"+OK\r\n" {
                accepted += 1;
                let (k, r) = (contents(&mut p.k, "mk"), contents(&mut p.r, "mk"));
                if k != r {
                    p.fail(format!(
                        "{what}: restored value\n    keel:  {k:?}\n    redis: {r:?}"
                    ));
                }
                p.check("DEL mk");
            } else {
                refused += 1;
            }
        }
        p.check("PING");
    }
    eprintln!(
        "{refused} payloads refused, {accepted} accepted, as stock; {stricter} streams stock \
         kept refused by keel ({corrupt} of them visibly corrupt in stock); slowest reply: \
         keel {:?}, stock {:?} ({})",
        slowest.0, slowest.1, slowest.2
    );
    assert!(
        refused > 500,
        "only {refused} corrupt payloads were refused"
    );
    p.checks(&[
        "CONFIG GET sanitize-dump-payload",
        "EXISTS ok mk",
        "CONFIG SET sanitize-dump-payload bogus",
        "CONFIG SET sanitize-dump-payload clients",
        "CONFIG GET sanitize-dump-payload",
        "CONFIG SET sanitize-dump-payload no",
        "CONFIG GET sanitize-dump-payload",
    ]);
    // Intact payloads restore the same under every setting.
    for (name, good) in &payloads {
        let key = format!("restored-{name}").into_bytes();
        let args = [b"RESTORE".to_vec(), key, b"0".to_vec(), good.clone()];
        p.check_args(&args);
    }
    p.finish();
}
