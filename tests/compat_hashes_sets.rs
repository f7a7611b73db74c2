//! Hash and set commands: keel vs stock redis-server, byte for byte (random
//! replies by shape, hash-table iteration order unordered).
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{Conn, Members, Pair, Resp, check_random, check_random_reply, show};

pair_tests!(
    hash_basics,
    hash_wrongtype,
    hincrby,
    hincrbyfloat_formatting,
    hrandfield_shapes,
    hscan_options,
    set_basics,
    set_wrongtype,
    spop_srandmember,
    smove,
    set_ops_across_shards,
    sscan_options,
    hash_resp3,
    set_resp3,
    random_counts,
    scan_completeness,
    encodings,
    store_across_shards,
);

fn hash_basics(p: &mut Pair) {
    p.script(
        r#"
        hset h1 f1 v1 f2 v2 f3 3
        hset h1 f1 v1b f4 v4
        hset h1 f1
        hset h1
        hmset h1 f5 v5
        hmset h1 f5
        hsetnx h1 f1 x
        hsetnx h1 nf nv
        hget h1 f1
        hget h1 nope
        hget nokey f
        hmget h1 f1 nope f3
        hmget nokey a b
        hlen h1
        hlen nokey
        hstrlen h1 f1
        hstrlen h1 nope
        hstrlen nokey f
        hexists h1 f1
        hexists h1 nope
        hexists nokey f
        hkeys h1
        hvals h1
        hgetall h1
        hkeys nokey
        hvals nokey
        hgetall nokey
        hdel h1 f2 nope f2
        hgetall h1
        hdel nokey a
        hdel h1 f1 f3 f4 f5 nf
        hlen h1
        hgetall h1
        hset hl f1 v1 f2 0123456789012345678901234567890123456789012345678901234567890123456789
        hlen hl
        hget hl f2
        hsetnx hl f3 v3
        hstrlen hl f2
        hdel hl f1 f2 f3
        hlen hl
        "#,
    );
}

fn hash_wrongtype(p: &mut Pair) {
    p.script(
        r#"
        sadd s1 a
        hset s1 a b
        hsetnx s1 a b
        hget s1 a
        hmget s1 a
        hdel s1 a
        hlen s1
        hstrlen s1 a
        hexists s1 a
        hkeys s1
        hvals s1
        hgetall s1
        hincrby s1 a 1
        hincrbyfloat s1 a 1
        hrandfield s1
        hrandfield s1 1
        hscan s1 0
        hmset s1 a b
        "#,
    );
}

fn hincrby(p: &mut Pair) {
    p.script(
        r#"
        sadd s1 a
        hincrby hi a 1
        hincrby hi a -5
        hincrby hi a abc
        hincrby hi a 1.5
        hincrby hi a 9223372036854775807
        hset hi big 9223372036854775807 str hello sp " 1" z 007
        hincrby hi big 1
        hincrby hi big -1
        hincrby hi str 1
        hincrby hi sp 1
        hincrby hi z 1
        hincrby hi new -9223372036854775808
        hincrby hi new -1
        hincrby hi new 0
        hgetall hi
        hincrby s1 a x
        "#,
    );
}

fn hincrbyfloat_formatting(p: &mut Pair) {
    p.script(
        r#"
        sadd s1 a
        hincrbyfloat hf a 1.5
        hincrbyfloat hf a 0.1
        hincrbyfloat hf a -1.6
        hincrbyfloat hf b 10.50
        hincrbyfloat hf c 3.0e3
        hincrbyfloat hf d abc
        hincrbyfloat hf d inf
        hincrbyfloat hf d -inf
        hincrbyfloat hf d nan
        hincrbyfloat hf d " 1"
        hincrbyfloat hf d ""
        hincrbyfloat hf e 1e308
        hincrbyfloat hf e 1e308
        hincrbyfloat hf e 1e308
        hset hf s hello i 12
        hincrbyfloat hf s 1
        hincrbyfloat hf i 1.25
        hincrbyfloat hf f 5.0000000000000000001
        hincrbyfloat hf g 0x10
        hincrbyfloat hf h 1.1e-10
        hincrbyfloat hf h -1.1e-10
        %hgetall hf
        hincrbyfloat s1 a x
        hincrbyfloat ld a 1e4000
        hincrbyfloat ld b -0.0
        hincrbyfloat ld c 0.1
        hincrbyfloat ld c 0.2
        hincrbyfloat ld c 1e-20
        hincrbyfloat ld d 1e4933
        hincrbyfloat ld e 1.18973149535723176502e+4932
        hincrbyfloat ld e 1.18973149535723176502e+4932
        hincrbyfloat ld f 3.4e-4950
        hincrbyfloat ld g 123456789012345678901234567890
        hincrbyfloat ld h +5
        hincrbyfloat ld h .5
        hincrbyfloat ld h 5.
        hincrbyfloat ld i 0x1p3
        hincrbyfloat ld j INF
        hincrbyfloat ld j Infinity
        hincrbyfloat ld j 1e-5000
        hstrlen ld a
        hget ld c
        hget ld b
        "#,
    );
}

fn hrandfield_shapes(p: &mut Pair) {
    p.script(
        r#"
        hset hr a 1 b 2 c 3 d 4 e 5
        hrandfield hr 0
        hrandfield hr 5
        hrandfield hr 10
        hrandfield hr 5 withvalues
        hrandfield hr 10 WITHVALUES
        hrandfield hr 1 withvalue
        hrandfield hr 1 withvalues x
        hrandfield hr abc
        hrandfield hr -9223372036854775808
        hrandfield hr 9223372036854775807
        hrandfield hr -4611686018427387904 withvalues
        hrandfield hr 4611686018427387904 withvalues
        hrandfield hr 0 withvalues
        hrandfield nokey
        hrandfield nokey 5
        hrandfield nokey 5 withvalues
        hrandfield nokey abc
        hrandfield nokey 1 foo
        ~hrandfield hr
        ~hrandfield hr 1
        ~hrandfield hr -7
        ~hrandfield hr -7 withvalues
        ~hrandfield hr 3
        ~hrandfield hr 3 withvalues
        ~hrandfield hr 1 withvalues
        "#,
    );
}

fn hscan_options(p: &mut Pair) {
    p.script(
        r#"
        sadd s1 a
        hset hs f1 v1 f2 v2 g1 v3 f3 4
        hscan hs 0
        hscan hs 0 match f*
        hscan hs 0 MATCH f* COUNT 1
        hscan hs 0 count 0
        hscan hs 0 count -1
        hscan hs 0 count abc
        hscan hs 0 count
        hscan hs 0 match
        hscan hs 0 type string
        hscan hs abc
        hscan hs -1
        hscan hs " 1"
        hscan hs ""
        hscan hs 18446744073709551616
        hscan hs 18446744073709551615
        hscan nokey 0
        hscan nokey 0 count 0
        hscan nokey x
        hscan s1 0 count 0
        hscan s1 x
        "#,
    );
}

fn set_basics(p: &mut Pair) {
    p.script(
        r#"
        sadd s1 3 1 2 10 -5
        sadd s1 2 4
        smembers s1
        sadd s1
        scard s1
        sismember s1 3
        sismember s1 03
        sismember s1 x
        sismember nokey x
        smismember s1 1 x 3 03
        smismember nokey 1 2
        scard nokey
        smembers nokey
        srem s1 1 x 1
        smembers s1
        srem nokey a
        sadd s1 abc
        scard s1
        srem s1 abc
        %smembers s1
        srem s1 2 3 4 10 -5
        scard s1
        smembers s1
        sadd si 9223372036854775807 -9223372036854775808 0 -1 1 100 99
        smembers si
        sadd si 9223372036854775808
        %smembers si
        sadd sn -0 01 +1 " 1"
        %smembers sn
        "#,
    );
}

fn set_wrongtype(p: &mut Pair) {
    p.script(
        r#"
        hset h1 a b
        sadd h1 a
        srem h1 a
        smembers h1
        sismember h1 a
        smismember h1 a
        scard h1
        spop h1
        spop h1 2
        srandmember h1
        srandmember h1 2
        smove h1 s2 a
        sadd s2 a
        smove s2 h1 a
        smove nokey h1 a
        smove h1 nokey a
        sinter h1
        sinter nokey h1
        sinter s2 h1
        sintercard 1 h1
        sinterstore d h1
        sunion h1 s2
        sunionstore d s2 h1
        sdiff h1
        sdiff s2 h1
        sdiff nokey h1
        sdiffstore d nokey h1
        sscan h1 0
        sscan h1 0 count 0
        sscan h1 x
        "#,
    );
}

fn spop_srandmember(p: &mut Pair) {
    p.script(
        r#"
        sadd s2 a
        spop s2 1 2
        spop s2 -1
        spop s2 abc
        spop s2 0
        spop nokey
        spop nokey 3
        spop nokey -1
        spop nokey 0
        srandmember s2 1 2
        srandmember s2 abc
        srandmember s2 -9223372036854775808
        srandmember s2 0
        srandmember nokey
        srandmember nokey 5
        srandmember nokey -5
        srandmember nokey abc
        sadd sp 5 3 1 4 2
        srandmember sp 5
        srandmember sp 10
        ~srandmember sp
        ~srandmember sp -10
        ~srandmember sp 3
        ~srandmember sp 1
        spop sp 5
        scard sp
        sadd sp 5 3 1 4 2
        spop sp 10
        scard sp
        sadd sp2 a b c
        %spop sp2 3
        scard sp2
        sadd sp3 1 2 3 4 5 6 7 8 9 10
        ~spop sp3 2
        ~spop sp3 7
        scard sp3
        ~spop sp3
        ~spop sp3
        scard sp3
        sadd sp4 x
        spop sp4
        spop sp4
        scard sp4
        "#,
    );
}

fn smove(p: &mut Pair) {
    p.script(
        r#"
        sadd ma 1 2 3
        sadd mb x
        smove ma mb 2
        smembers ma
        %smembers mb
        smove ma mb 9
        smove ma ma 1
        smove ma ma 9
        smove ma mc 1
        smembers mc
        smove ma mc 3
        smembers ma
        scard ma
        smembers mc
        smove nokey mc 1
        sadd md 7
        smove md mc 7
        scard md
        smembers mc
        "#,
    );
}

fn set_ops_across_shards(p: &mut Pair) {
    p.script(
        r#"
        sadd {a}oa 1 2 3 4 5
        sadd {b}ob 4 5 6
        sadd {c}oc 5 6 7 x
        sinter {a}oa {b}ob
        sinter {a}oa {b}ob {c}oc
        sinter {a}oa nokey
        sinter {a}oa {a}oa
        sinter nokey
        sintercard 2 {a}oa {b}ob
        sintercard 2 {a}oa {b}ob limit 1
        sintercard 2 {a}oa {b}ob LIMIT 0
        sintercard 2 {a}oa {b}ob limit -1
        sintercard 2 {a}oa {b}ob limit x
        sintercard 2 {a}oa {b}ob limit
        sintercard 2 {a}oa {b}ob foo 1
        sintercard 0 {a}oa
        sintercard -1 {a}oa
        sintercard x {a}oa
        sintercard 3 {a}oa {b}ob
        sintercard 1 nokey
        sinterstore {d}od {a}oa {b}ob
        smembers {d}od
        sinterstore {d}od {a}oa nokey
        scard {d}od
        sinterstore {d}od {a}oa {b}ob
        sinterstore {d}od {a}oa {c}oc
        scard {d}od
        sinterstore {a}oa {a}oa {b}ob
        smembers {a}oa
        sadd {a}oa 1 2 3
        sunion {a}oa {b}ob
        %sunion {a}oa {b}ob {c}oc nokey
        %sunion {a}oa {c}oc
        sunion nokey
        sunionstore {d}ou {a}oa {b}ob
        smembers {d}ou
        sunionstore {d}ou nokey
        scard {d}ou
        sdiff {a}oa {b}ob
        sdiff {a}oa {c}oc
        sdiff {a}oa {a}oa
        sdiff {a}oa {b}ob {a}oa
        sdiff nokey {a}oa
        sdiff {a}oa nokey
        %sdiff {c}oc {a}oa
        sdiffstore {a}odd {a}oa {b}ob
        smembers {a}odd
        sdiffstore {a}odd {a}oa {a}oa
        scard {a}odd
        sadd {a}big1 1 2 3 4 5 6 x
        sadd {b}small1 x
        sadd {c}small2 y
        sadd {d}small3 z
        %sdiff {a}big1 {b}small1 {c}small2 {d}small3
        sdiffstore {b}bd {a}big1 {b}small1 {c}small2 {d}small3
        %smembers {b}bd
        sinterstore {b}ob {b}ob {b}ob
        smembers {b}ob
        "#,
    );
}

fn sscan_options(p: &mut Pair) {
    p.script(
        r#"
        sadd {a}oa 1 2 3 4 5
        sadd {b}ob 4 5 6
        sadd {c}oc 5 6 7 x
        sscan {a}oa 0
        sscan {a}oa 0 match 1*
        sscan {a}oa 0 count 1
        sscan {b}ob 0 match
        sscan {a}oa 0 count 0
        sscan nokey 0
        sscan nokey 0 match x count 0
        sscan {a}oa ""
        sscan {a}oa -5
        sscan {a}oa " 0"
        %sscan {c}oc 0
        "#,
    );
}

fn hash_resp3(p: &mut Pair) {
    p.script(
        r#"
        !resp3
        hset h3 a 1 b 2
        hgetall h3
        hgetall nokey3
        hkeys nokey3
        hget nokey3 a
        hmget nokey3 a b
        hrandfield nokey3
        hrandfield nokey3 3
        hrandfield h3 5 withvalues
        hrandfield h3 5
        hrandfield h3 0 withvalues
        ~hrandfield h3 -3 withvalues
        ~hrandfield h3 1 withvalues
        hscan h3 0
        hscan nokey3 0
        hincrbyfloat h3 a 1.5
        "#,
    );
}

fn set_resp3(p: &mut Pair) {
    p.script(
        r#"
        !resp3
        sadd r3 3 1 2
        smembers r3
        smembers nokey3
        sinter r3 r3
        sinter r3 nokey3
        sunion r3 nokey3
        sdiff r3 nokey3
        sdiff nokey3 r3
        sintercard 1 r3
        srandmember r3 5
        srandmember nokey3 5
        srandmember nokey3
        spop nokey3
        spop nokey3 2
        spop r3 0
        smismember r3 1 5
        sismember r3 1
        sscan r3 0
        sadd r4 1 2
        spop r4 5
        "#,
    );
}

/// Elements of a reply: an array's items as byte strings (nested pairs
/// flattened).
fn items(r: &Resp) -> Vec<Vec<u8>> {
    match r {
        Resp::Array(v) => v.iter().flat_map(items).collect(),
        Resp::Bulk(b) => vec![b.clone()],
        other => panic!("unexpected item {other:?}"),
    }
}

fn cmd_val(c: &mut Conn, args: &[String]) -> Resp {
    Resp::parse(&c.cmd(args))
}

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// Random-member replies, in RESP2 and RESP3, of keel and (as a check of
/// the test) stock: every member is in the source with its value, counts
/// are as asked, positive counts give distinct members; SPOP removes
/// exactly what it returns.
fn random_counts(p: &mut Pair) {
    let mut hash = Members::new();
    let mut hset = args("HSET hr");
    for i in 0..300 {
        hset.push(format!("f{i}"));
        hset.push(format!("v{i}"));
        hash.insert(
            format!("f{i}").into_bytes(),
            Some(format!("v{i}").into_bytes()),
        );
    }
    // A small hash (listpack in stock) has its own code paths.
    let small_hash: Members = (0..5)
        .map(|i| {
            (
                format!("s{i}").into_bytes(),
                Some(format!("w{i}").into_bytes()),
            )
        })
        .collect();
    p.check("HSET hs s0 w0 s1 w1 s2 w2 s3 w3 s4 w4");
    let mut set = Members::new();
    let mut sadd = args("SADD sr x");
    set.insert(b"x".to_vec(), None);
    for i in 0..1000 {
        sadd.push(i.to_string());
        set.insert(i.to_string().into_bytes(), None);
    }
    let mut ints = Members::new();
    let mut sadd_int = args("SADD si");
    for i in 0..100 {
        sadd_int.push(i.to_string());
        ints.insert(i.to_string().into_bytes(), None);
    }
    for a in [&hset, &sadd, &sadd_int] {
        p.check_args(a);
    }
    let hash_counts = [
        None,
        Some(1),
        Some(2),
        Some(50),
        Some(299),
        Some(300),
        Some(301),
        Some(-5),
        Some(-400),
    ];
    let small_counts = [
        None,
        Some(1),
        Some(3),
        Some(5),
        Some(6),
        Some(-3),
        Some(-12),
    ];
    let set_counts = [
        None,
        Some(1),
        Some(5),
        Some(300),
        Some(900),
        Some(1001),
        Some(2000),
        Some(-3),
        Some(-1500),
    ];
    let mut cases: Vec<(String, &Members, Option<i64>, bool)> = Vec::new();
    for (key, src, counts) in [
        ("hr", &hash, &hash_counts[..]),
        ("hs", &small_hash, &small_counts[..]),
    ] {
        for &n in counts {
            let c = n.map(|n| format!(" {n}")).unwrap_or_default();
            cases.push((format!("HRANDFIELD {key}{c}"), src, n, false));
            if n.is_some() {
                cases.push((format!("HRANDFIELD {key}{c} WITHVALUES"), src, n, true));
            }
        }
    }
    for (key, src) in [("sr", &set), ("si", &ints)] {
        for &n in &set_counts {
            let c = n.map(|n| format!(" {n}")).unwrap_or_default();
            cases.push((format!("SRANDMEMBER {key}{c}"), src, n, false));
        }
    }
    for resp3 in [false, true] {
        p.proto(resp3);
        for (line, src, n, with_values) in &cases {
            check_random(p, line, src, *n, *with_values);
        }
    }
    p.proto(false);
    // SPOP: each pop returns members of the set not popped before, and
    // what is left plus what was popped is exactly the set.
    let mut popped = BTreeSet::new();
    for n in [None, Some(10), Some(1), Some(800)] {
        let c = n.map(|n| format!(" {n}")).unwrap_or_default();
        let line = format!("SPOP sr{c}");
        let (k, r) = p.both(&line);
        for (who, raw) in [("redis", &r), ("keel", &k)] {
            match check_random_reply(&Resp::parse(raw), &set, n, false) {
                Ok(m) if who == "keel" => {
                    for m in m {
                        if !popped.insert(m.clone()) {
                            p.fail(format!("{line}: keel popped {} twice", show(&m)));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => p.fail(format!("{line} ({who}): {e}")),
            }
        }
    }
    p.check("SCARD sr");
    let left: BTreeSet<_> = items(&cmd_val(&mut p.k, &args("SMEMBERS sr")))
        .into_iter()
        .collect();
    let all: BTreeSet<_> = left.union(&popped).cloned().collect();
    if !left.is_disjoint(&popped)
        || all.len() != set.len()
        || !all.iter().all(|m| set.contains_key(m))
    {
        p.fail(format!(
            "SPOP: {} left + {} popped, overlapping: {}, union is the set: {}",
            left.len(),
            popped.len(),
            !left.is_disjoint(&popped),
            all.len() == set.len() && all.iter().all(|m| set.contains_key(m))
        ));
    }
    p.check_shape("SPOP sr");
    p.check_shape("SPOP sr 1");
    p.check_shape("SPOP sr 1000");
    p.check("EXISTS sr");
}

/// Full HSCAN/SSCAN/ iteration: the member set, deduplicated.
fn scan_members(c: &mut Conn, cmd: &str, key: &str, opts: &str) -> BTreeSet<Vec<u8>> {
    let mut cursor = "0".to_string();
    let mut out = BTreeSet::new();
    for _ in 0..10_000 {
        let mut a = vec![cmd.to_string(), key.to_string(), cursor.clone()];
        a.extend(args(opts));
        let v = Resp::parse(&c.cmd(&a));
        let Resp::Array(parts) = v else {
            panic!("{cmd} reply {v:?}")
        };
        cursor = parts[0].as_str();
        let got = items(&parts[1]);
        if cmd == "HSCAN" {
            // Field names only: values are checked by HGETALL.
            out.extend(got.chunks(2).map(|c| c[0].clone()));
        } else {
            out.extend(got);
        }
        if cursor == "0" {
            return out;
        }
    }
    panic!("{cmd} {key} did not finish");
}

fn scan_completeness(p: &mut Pair) {
    let mut hset = args("HSET hb");
    for i in 0..129 {
        hset.push(format!("f{i}"));
        hset.push(format!("v{i}"));
    }
    p.check_args(&hset);
    let mut sadd = args("SADD sb 100000");
    sadd.extend((0..512).map(|i| (i * 7 % 1000 - 500).to_string()));
    p.check_args(&sadd);
    let mut sstr = args("SADD ss");
    sstr.extend((0..300).map(|i| format!("m{i}")));
    p.check_args(&sstr);
    p.check_unordered("HGETALL hb");
    p.check_unordered("SMEMBERS sb");
    p.check_unordered("SMEMBERS ss");
    let cases = [
        ("HSCAN", "hb", "COUNT 5"),
        ("HSCAN", "hb", "COUNT 7 MATCH f1*"),
        ("HSCAN", "hb", ""),
        ("SSCAN", "sb", "COUNT 10"),
        ("SSCAN", "sb", "MATCH *5*"),
        ("SSCAN", "ss", "COUNT 3"),
        ("SSCAN", "ss", "COUNT 1000 MATCH m2?"),
    ];
    for (cmd, key, opts) in cases {
        let k = scan_members(&mut p.k, cmd, key, opts);
        let r = scan_members(&mut p.r, cmd, key, opts);
        if k != r {
            p.fail(format!(
                "{cmd} {key} {opts} (full iteration): keel {} members, redis {}",
                k.len(),
                r.len()
            ));
        }
    }
    // Small listpack / intset encodings answer in one call, in order.
    p.script(
        r#"
        hset small a 1 b 2 c 3
        hscan small 0 count 1
        sadd smallint 5 3 1
        sscan smallint 0 count 1
        sadd smallstr z y x
        sscan smallstr 0 match y
        "#,
    );
}

fn encodings(p: &mut Pair) {
    p.script(
        r#"
        sadd si 1 2 3
        object encoding si
        sadd si 9223372036854775807
        object encoding si
        sadd si -9223372036854775808
        object encoding si
        sadd si 9223372036854775808
        object encoding si
        sadd sl a 1
        object encoding sl
        hset h a 1
        object encoding h
        hset h b 0123456789012345678901234567890123456789012345678901234567890123456789
        object encoding h
        hset h2 0123456789012345678901234567890123456789012345678901234567890123456789 v
        object encoding h2
        config set set-max-intset-entries 3
        sadd sc 3 2 1
        object encoding sc
        smembers sc
        sadd sc 0
        object encoding sc
        sadd sc2 3 2 1 0
        object encoding sc2
        sunionstore sc3 sc
        object encoding sc3
        sinterstore sc4 sc sc2
        object encoding sc4
        sdiffstore sc5 sc sc2
        exists sc5
        srem sc 0 1
        object encoding sc
        config set set-max-intset-entries 512
        config set set-max-listpack-entries 2
        sadd slp a b
        object encoding slp
        sadd slp c
        object encoding slp
        config set set-max-listpack-entries 128
        config set hash-max-listpack-entries 2
        hset hc a 1 b 2
        object encoding hc
        hscan hc 0 count 1
        hset hc c 3
        object encoding hc
        hdel hc a b
        object encoding hc
        config set hash-max-listpack-entries 128
        config set hash-max-listpack-value 4
        hset hv a 1234
        object encoding hv
        hset hv b 12345
        object encoding hv
        hset hv2 abcde 1
        object encoding hv2
        hincrbyfloat hv3 f 1.5
        object encoding hv3
        hsetnx hv4 f 123456
        object encoding hv4
        config set hash-max-listpack-value 64
        config set hash-max-listpack-entries 0
        hset h0 a 1
        object encoding h0
        config set hash-max-listpack-entries 128
        "#,
    );
}

fn store_across_shards(p: &mut Pair) {
    p.script(
        r#"
        sadd {a}s 1 2 3 4 x
        sadd {b}s 3 4 5 x y
        sadd {c}s 4 x z
        hset {d}h f v
        %sinter {a}s {b}s
        %sinter {a}s {b}s {c}s
        sinter {a}s {b}s {c}s {d}none
        sinter {a}s {d}h
        sinter {d}none {d}h
        sintercard 3 {a}s {b}s {c}s
        sintercard 3 {a}s {b}s {c}s limit 1
        %sunion {a}s {b}s {c}s {d}none
        sunion {a}s {d}h
        %sdiff {a}s {b}s
        %sdiff {a}s {b}s {c}s
        sdiff {a}s {d}h
        sdiff {d}none {d}h
        sinterstore {d}dst {a}s {b}s
        %smembers {d}dst
        sunionstore {d}dst {a}s {b}s {c}s
        scard {d}dst
        %smembers {d}dst
        sdiffstore {d}dst {a}s {b}s
        %smembers {d}dst
        sinterstore {d}dst {a}s {d}none
        exists {d}dst
        set {c}str v
        sunionstore {c}str {a}s
        type {c}str
        %smembers {c}str
        sdiffstore {b}s {b}s {a}s
        %smembers {b}s
        sinterstore {a}s {a}s {d}h
        %smembers {a}s
        sunionstore {d}h {a}s
        type {d}h
        smove {a}s {b}s 1
        smove {a}s {b}s 1
        smove {a}s {d}h 2
        set {c}str v
        smove {a}s {c}str 2
        %smembers {a}s
        %smembers {b}s
        !resp3
        sinter {a}s {d}none
        %sunion {a}s {b}s
        sdiff {d}none {a}s
        "#,
    );
    // Encoding of a store result follows its contents, not its sources.
    p.script(
        r#"
        sadd {a}i 1 2 3
        sadd {b}t 1 2 a
        sinterstore {c}o {a}i {b}t
        object encoding {c}o
        sunionstore {c}o {a}i {b}t
        object encoding {c}o
        "#,
    );
}
