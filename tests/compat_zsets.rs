//! Sorted-set commands: keel vs stock redis-server, byte for byte (random
//! replies by shape).
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use common::{Members, Pair, check_random};

pair_tests!(
    zadd_options_scores,
    zrange_variants,
    zremrange,
    zpop_zmpop,
    zunion_zinter_zdiff_across_shards,
    resp3_shapes,
    zrandmember,
    zrandmember_members,
    zscan,
    wrongtype_and_sets_as_inputs,
    encodings,
    score_formatting,
    store_with_sets_across_shards,
);

fn zadd_options_scores(p: &mut Pair) {
    p.script(
        r#"
        ZADD z 1 a 2 b 3 c
        ZADD z 1 a
        ZADD z CH 5 a 6 d
        ZADD z NX 10 a 11 e
        ZADD z XX 20 a 21 f
        ZADD z XX CH 20 a 22 b
        ZADD z GT 1 a
        ZADD z GT CH 100 a
        ZADD z LT CH 1 a
        ZADD z LT 1000 a
        ZADD z XX GT CH 2000 a
        ZADD z NX XX 1 a
        ZADD z NX GT 1 a
        ZADD z NX LT 1 a
        ZADD z GT LT 1 a
        ZADD z INCR 1 a 2 b
        ZADD z INCR 5 a
        ZADD z INCR NX 5 a
        ZADD z INCR XX 5 nothere
        ZADD z INCR GT -5 a
        ZADD z 1
        ZADD z 1 a 2
        ZADD z abc a
        ZADD z nan a
        ZADD z 1 a x b
        ZADD z inf a
        ZADD z INCR -inf a
        ZADD z +inf a -inf b 0x10 c 1e3 d -0 e
        ZRANGE z 0 -1 WITHSCORES
        ZADD z " 1" a
        ZADD z "1 " a
        ZADD z "" a
        ZADD z 1e400 a
        ZADD z 1.5e-400 a
        ZADD z ch
        ZADD z nx xx
        ZINCRBY z 1 a
        ZINCRBY z 2.5 newm
        ZINCRBY z nan a
        ZINCRBY z abc a
        ZINCRBY z nx a
        ZSCORE z newm
        ZSCORE z nope
        ZSCORE nokey a
        ZMSCORE z a nope newm
        ZMSCORE nokey a b
        ZCARD z
        ZCARD nokey
        ZRANK z b
        ZREVRANK z b
        ZRANK z nope
        ZRANK nokey a
        ZREM z a b nope
        ZREM nokey a
        ZRANGE z 0 -1 WITHSCORES
        ZREM z c d e f newm
        ZCARD z
        ZRANGE z 0 -1
        "#,
    );
}

fn zrange_variants(p: &mut Pair) {
    p.script(
        r#"
        ZADD z 0 a 0 b 0 c 0 d 0 e 0 f 0 g
        ZADD s 1 one 2 two 3 three 4 four 5 five
        ZRANGE s 0 -1
        ZRANGE s 0 -1 WITHSCORES
        ZRANGE s -2 -1 WITHSCORES
        ZRANGE s 2 1
        ZRANGE s 5 10
        ZRANGE s -100 100
        ZRANGE s 0 -1 REV WITHSCORES
        ZRANGE s 1 3 REV
        ZRANGE s a b
        ZRANGE s 0 -1 LIMIT 0 1
        ZRANGE s 0 -1 LIMIT 0
        ZRANGE s 0 -1 BYLEX WITHSCORES
        ZRANGE s (1 5 BYSCORE
        ZRANGE s (1 (5 BYSCORE WITHSCORES
        ZRANGE s 5 1 BYSCORE REV WITHSCORES
        ZRANGE s (5 -inf BYSCORE REV LIMIT 1 2
        ZRANGE s -inf +inf BYSCORE LIMIT 1 -1
        ZRANGE s -inf +inf BYSCORE LIMIT -1 2
        ZRANGE s -inf +inf BYSCORE LIMIT 5 2
        ZRANGE s -inf +inf BYSCORE LIMIT 4 2
        ZRANGE s -inf +inf BYSCORE LIMIT 0 0
        ZRANGE s -inf +inf BYSCORE LIMIT a 0
        ZRANGE s x y BYSCORE
        ZRANGE s 1 2 BYSCORE BYLEX
        ZRANGE s 1 2 BYSCORE REV REV
        ZRANGE s 1 2 foo
        ZRANGE s ( ( BYSCORE
        ZRANGE s "(" "(3" BYSCORE
        ZRANGE z - + BYLEX
        ZRANGE z [b (e BYLEX
        ZRANGE z (e [b BYLEX REV
        ZRANGE z + - BYLEX REV LIMIT 1 3
        ZRANGE z - + BYLEX LIMIT 2 2
        ZRANGE z a + BYLEX
        ZRANGE z - - BYLEX
        ZRANGE z [a [a BYLEX
        ZRANGE z [a (a BYLEX
        ZRANGE z -a + BYLEX
        ZRANGE nokey 0 -1
        ZRANGE nokey 0 -1 BYSCORE
        ZRANGE nokey x y BYSCORE
        ZRANGEBYSCORE s 2 4
        ZRANGEBYSCORE s 2 4 WITHSCORES LIMIT 1 1
        ZRANGEBYSCORE s 2 4 REV
        ZRANGEBYSCORE s 2 4 BYSCORE
        ZRANGEBYSCORE s 2 4 LIMIT 1
        ZREVRANGEBYSCORE s 4 2 WITHSCORES
        ZREVRANGEBYSCORE s +inf -inf LIMIT 1 2
        ZREVRANGEBYSCORE s 2 4
        ZRANGEBYLEX z [b [d
        ZRANGEBYLEX z [b [d WITHSCORES
        ZRANGEBYLEX z - + LIMIT 1 2
        ZREVRANGEBYLEX z [d [b
        ZREVRANGEBYLEX z + - LIMIT 0 3
        ZRANGEBYLEX z b d
        ZREVRANGE s 0 1 WITHSCORES
        ZREVRANGE s 0 1 LIMIT 0 1
        ZREVRANGE s 0 -1 REV
        ZCOUNT s 2 4
        ZCOUNT s (2 (4
        ZCOUNT s -inf +inf
        ZCOUNT s 4 2
        ZCOUNT s x 2
        ZCOUNT nokey 1 2
        ZLEXCOUNT z - +
        ZLEXCOUNT z [b (d
        ZLEXCOUNT z b d
        ZLEXCOUNT z + -
        ZLEXCOUNT nokey - +
        ZRANGESTORE dst s 0 -1
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst s 2 3 BYSCORE REV
        ZRANGESTORE dst s 3 2 BYSCORE REV
        ZRANGESTORE dst s 3 2 BYSCORE REV WITHSCORES
        ZRANGESTORE dst z [a [c BYLEX LIMIT 1 5
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst s 10 20
        ZCARD dst
        ZRANGESTORE dst nokey 0 -1
        ZRANGESTORE dst s 0 -1 LIMIT 0 1
        "#,
    );
}

fn zremrange(p: &mut Pair) {
    p.script(
        r#"
        ZADD s 1 one 2 two 3 three 4 four 5 five 6 six
        ZREMRANGEBYRANK s 0 0
        ZREMRANGEBYRANK s -1 -1
        ZREMRANGEBYRANK s 5 10
        ZREMRANGEBYRANK s a 1
        ZREMRANGEBYSCORE s (2 3
        ZREMRANGEBYSCORE s x 3
        ZRANGE s 0 -1 WITHSCORES
        ZREMRANGEBYSCORE s -inf +inf
        ZCARD s
        ZADD l 0 a 0 b 0 c 0 d
        ZREMRANGEBYLEX l [b (d
        ZREMRANGEBYLEX l b d
        ZREMRANGEBYLEX l - +
        ZREMRANGEBYLEX l - +
        ZREMRANGEBYRANK nokey 0 -1
        "#,
    );
}

fn zpop_zmpop(p: &mut Pair) {
    p.script(
        r#"
        ZADD p 1 a 2 b 3 c 4 d 5 e
        ZPOPMIN p
        ZPOPMAX p
        ZPOPMIN p 0
        ZPOPMIN p -1
        ZPOPMIN p abc
        ZPOPMIN p 1 2
        ZPOPMAX p 2
        ZPOPMIN p 10
        ZPOPMIN p
        ZPOPMIN p 3
        ZADD p 1 a 2 b 3 c 4 d 5 e
        ZMPOP 1 p MIN
        ZMPOP 2 nokey p MAX COUNT 2
        ZMPOP 1 nokey MIN
        ZMPOP 0 p MIN
        ZMPOP -1 p MIN
        ZMPOP a p MIN
        ZMPOP 1 p MID
        ZMPOP 2 p MIN
        ZMPOP 1 p MIN COUNT 0
        ZMPOP 1 p MIN COUNT -1
        ZMPOP 1 p MIN COUNT 1 COUNT 1
        ZMPOP 1 p MIN COUNT
        ZMPOP 1 p MIN foo
        ZMPOP 1 p MIN COUNT 10
        ZMPOP 9223372036854775807 p MIN
        BZPOPMIN p 0.01
        BZPOPMIN p -1
        BZPOPMIN p abc
        BZMPOP 0.01 1 p MIN
        BZMPOP -1 1 p MIN
        BZMPOP abc 1 p MIN COUNT 0
        BZMPOP abc 0 p MIN
        ZADD p 1 a 2 b 3 c
        BZPOPMIN nokey p 0
        BZPOPMAX nokey p 0
        BZMPOP 0 2 nokey p MAX COUNT 5
        "#,
    );
}

fn zunion_zinter_zdiff_across_shards(p: &mut Pair) {
    p.script(
        r#"
        ZADD {a}z1 1 a 2 b 3 c
        ZADD {b}z2 10 b 20 c 30 d
        ZADD {c}z3 100 c 200 x
        ZUNION 2 {a}z1 {b}z2
        ZUNION 2 {a}z1 {b}z2 WITHSCORES
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES WEIGHTS 1 2 3
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES WEIGHTS 1 2 3 AGGREGATE MIN
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES AGGREGATE MAX
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES AGGREGATE avg
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES WEIGHTS 1 2
        ZUNION 3 {a}z1 {b}z2 {c}z3 WITHSCORES WEIGHTS 1 2 x
        ZUNION 2 {a}z1 {b}z2 {c}z3
        ZUNION 4 {a}z1 {b}z2 {c}z3
        ZUNION 0 {a}z1
        ZUNION -1 {a}z1
        ZUNION x {a}z1
        ZUNION 2 {a}z1 nokey WITHSCORES
        ZUNION 1 nokey
        ZINTER 2 {a}z1 {b}z2 WITHSCORES
        ZINTER 3 {a}z1 {b}z2 {c}z3 WITHSCORES
        ZINTER 2 {a}z1 {b}z2 WITHSCORES WEIGHTS 2 0.5 AGGREGATE MAX
        ZINTER 2 {a}z1 nokey
        ZINTER 2 {a}z1 {a}z1 WITHSCORES
        ZDIFF 2 {a}z1 {b}z2 WITHSCORES
        ZDIFF 2 {a}z1 {a}z1 WITHSCORES
        ZDIFF 1 {a}z1
        ZDIFF 2 {a}z1 {b}z2 WEIGHTS 1 1
        ZDIFF 2 {a}z1 {b}z2 AGGREGATE SUM
        ZINTERCARD 2 {a}z1 {b}z2
        ZINTERCARD 2 {a}z1 {b}z2 LIMIT 1
        ZINTERCARD 2 {a}z1 {b}z2 LIMIT 0
        ZINTERCARD 2 {a}z1 {b}z2 LIMIT -1
        ZINTERCARD 2 {a}z1 {b}z2 LIMIT x
        ZINTERCARD 2 {a}z1 {b}z2 WITHSCORES
        ZINTERCARD 0 {a}z1
        ZUNIONSTORE {d}zd 2 {a}z1 {b}z2
        ZRANGE {d}zd 0 -1 WITHSCORES
        ZUNIONSTORE {d}d2 3 {a}z1 {b}z2 {c}z3 WEIGHTS 1 1 -1 AGGREGATE MIN
        ZRANGE {d}d2 0 -1 WITHSCORES
        ZINTERSTORE {d}d2 2 {a}z1 {b}z2 WITHSCORES
        ZINTERSTORE {d}d2 2 {a}z1 nokey
        ZCARD {d}d2
        ZDIFFSTORE {d}d2 2 {b}z2 {a}z1
        ZRANGE {d}d2 0 -1 WITHSCORES
        ZDIFFSTORE {d}d2 0 {a}z1
        ZUNIONSTORE {d}d2 0 {a}z1
        ZINTERSTORE {d}d2 0 {a}z1
        ZADD i 1 a
        ZADD i2 inf a
        ZADD i3 -inf a
        ZUNION 2 i2 i3 WITHSCORES
        ZINTER 2 i2 i3 WITHSCORES
        ZUNION 2 i2 i WITHSCORES WEIGHTS 0 1
        ZINTER 2 i2 i WITHSCORES WEIGHTS 0 1
        ZINTER 2 i2 i WITHSCORES WEIGHTS 0 1 AGGREGATE MIN
        ZINTER 2 i i2 WITHSCORES WEIGHTS 1 0 AGGREGATE MAX
        ZADD f 0.1 a 0.2 b
        ZADD g 0.2 a 0.1 b
        ZUNION 2 f g WITHSCORES
        "#,
    );
}

fn resp3_shapes(p: &mut Pair) {
    p.script(
        r#"
        !resp3
        ZADD z 1 a 2 b 3 c
        ZRANGE z 0 -1 WITHSCORES
        ZRANGE z 0 -1
        ZRANGEBYSCORE z -inf inf WITHSCORES
        ZREVRANGE z 0 -1 WITHSCORES
        ZSCORE z a
        ZSCORE z nope
        ZMSCORE z a nope
        ZINCRBY z 1.5 a
        ZADD z INCR 1 a
        ZADD z XX INCR 1 nope
        ZRANK z nope
        ZUNION 1 z WITHSCORES
        ZINTER 1 z WITHSCORES
        ZDIFF 1 z WITHSCORES
        ZPOPMIN z
        ZPOPMIN z 1
        ZPOPMAX z 5
        ZPOPMAX z 0
        ZPOPMIN nokey
        ZPOPMIN nokey 2
        ZADD z 1 a 2 b 3 c
        ZMPOP 1 z MIN
        ZMPOP 1 z MAX COUNT 5
        ZMPOP 1 z MAX COUNT 5
        ZADD z 1 a 2 b 3 c
        BZPOPMIN z 0
        BZMPOP 0 1 z MIN COUNT 1
        ZRANDMEMBER nokey
        ZRANDMEMBER nokey 5
        ZRANDMEMBER z 5 WITHSCORES
        ~ZRANDMEMBER z -1 WITHSCORES
        ZSCAN z 0
        ZADD inf inf a -inf b
        ZRANGE inf 0 -1 WITHSCORES
        ZSCORE inf a
        ZRANGESTORE dd z 0 -1
        ZSCAN nokey 0
        "#,
    );
}

/// ZRANDMEMBER draws, in RESP2 and RESP3, of keel and (as a check of the
/// test) stock: every member is in the set with its score, counts are as
/// asked, positive counts give distinct members; a small (listpack) and a
/// large (skiplist) set.
fn zrandmember_members(p: &mut Pair) {
    let mut big = Members::new();
    let mut zadd = vec!["ZADD".to_string(), "zb".to_string()];
    for i in 0..300 {
        let score = i as f64 / 3.0 - 20.0;
        zadd.push(score.to_string());
        zadd.push(format!("m{i}"));
        big.insert(
            format!("m{i}").into_bytes(),
            Some(score.to_string().into_bytes()),
        );
    }
    p.check_args(&zadd);
    p.check("ZADD zs 1.5 a 2 b -3 c inf d 0.1 e");
    let small: Members = [
        ("a", "1.5"),
        ("b", "2"),
        ("c", "-3"),
        ("d", "inf"),
        ("e", "0.1"),
    ]
    .iter()
    .map(|(m, s)| (m.as_bytes().to_vec(), Some(s.as_bytes().to_vec())))
    .collect();
    let cases = [
        (
            "zb",
            &big,
            &[
                None,
                Some(1),
                Some(2),
                Some(50),
                Some(299),
                Some(300),
                Some(301),
                Some(-5),
                Some(-400),
            ][..],
        ),
        (
            "zs",
            &small,
            &[
                None,
                Some(1),
                Some(3),
                Some(5),
                Some(6),
                Some(-3),
                Some(-12),
            ][..],
        ),
    ];
    for resp3 in [false, true] {
        p.proto(resp3);
        for (key, src, counts) in &cases {
            for &n in *counts {
                let c = n.map(|n| format!(" {n}")).unwrap_or_default();
                let mut lines = vec![(format!("ZRANDMEMBER {key}{c}"), false)];
                if n.is_some() {
                    lines.push((format!("ZRANDMEMBER {key}{c} WITHSCORES"), true));
                }
                for (line, with_scores) in lines {
                    check_random(p, &line, src, n, with_scores);
                }
            }
        }
    }
    p.proto(false);
}

fn zrandmember(p: &mut Pair) {
    p.script(
        r#"
        ZADD r 1 a 2 b 3 c 4 d 5 e
        ZRANDMEMBER r 5
        ZRANDMEMBER r 10 WITHSCORES
        ZRANDMEMBER r 0
        ZRANDMEMBER r 1 2
        ZRANDMEMBER r 1 withscore
        ZRANDMEMBER r -9223372036854775808
        ZRANDMEMBER r 9223372036854775807 WITHSCORES
        ZRANDMEMBER r -4611686018427387904 WITHSCORES
        ZRANDMEMBER r x
        ~ZRANDMEMBER r
        ~ZRANDMEMBER r 3
        ~ZRANDMEMBER r -7 WITHSCORES
        ZRANDMEMBER nokey 0
        ZRANDMEMBER nokey -3
        "#,
    );
}

fn zscan(p: &mut Pair) {
    p.script(
        r#"
        ZADD sc 1 a 2 b -0 c 1e17 d 3.5 e inf f
        ZSCAN sc 0
        ZSCAN sc 0 MATCH *a*
        ZSCAN sc 0 COUNT 0
        ZSCAN sc 0 COUNT x
        ZSCAN sc 0 TYPE zset
        ZSCAN sc 0 MATCH
        ZSCAN sc abc
        ZSCAN sc -1
        ZSCAN sc " 1"
        ZSCAN sc 18446744073709551616
        ZSCAN nokey 0 COUNT 0
        "#,
    );
}

fn wrongtype_and_sets_as_inputs(p: &mut Pair) {
    p.script(
        r#"
        SET str x
        ZADD str 1 a
        ZINCRBY str 1 a
        ZREM str a
        ZCARD str
        ZCOUNT str 0 1
        ZCOUNT str x 1
        ZLEXCOUNT str - +
        ZSCORE str a
        ZMSCORE str a
        ZRANK str a
        ZRANGE str 0 -1
        ZRANGE str 0 -1 foo
        ZRANGESTORE d str 0 -1
        ZRANGEBYSCORE str 0 1
        ZREMRANGEBYRANK str 0 1
        ZREMRANGEBYSCORE str 0 1
        ZREMRANGEBYLEX str - +
        ZPOPMIN str
        ZPOPMIN str 0
        ZMPOP 2 nokey str MIN
        BZPOPMIN nokey str 0
        BZMPOP 0 2 nokey str MIN
        ZRANDMEMBER str
        ZRANDMEMBER str 2
        ZRANDMEMBER str 2 foo
        ZSCAN str 0
        ZSCAN str x
        ZUNION 2 nokey str
        ZUNION 2 nokey str foo
        ZINTERCARD 1 str
        ZDIFFSTORE d 1 str
        SADD {a}set 1 2 3 x
        ZADD {b}zz 5 1 6 x 7 y
        ZUNION 2 {a}set {b}zz WITHSCORES
        ZINTER 2 {a}set {b}zz WITHSCORES
        ZINTER 2 {b}zz {a}set WITHSCORES WEIGHTS 2 3
        ZDIFF 2 {a}set {b}zz WITHSCORES
        ZDIFF 2 {b}zz {a}set WITHSCORES
        ZINTERCARD 2 {a}set {b}zz
        ZUNIONSTORE {c}o 2 {a}set {b}zz
        ZRANGE {c}o 0 -1 WITHSCORES
        OBJECT ENCODING {c}o
        ZUNIONSTORE str 1 {a}set
        TYPE str
        ZRANGESTORE str {b}zz 0 -1
        ZADD ttl 1 a
        EXPIRE ttl 100
        ZUNIONSTORE ttl 1 {b}zz
        TTL ttl
        ZADD ttl2 1 a
        EXPIRE ttl2 100
        ZADD ttl2 2 b
        ZREM ttl2 a
        TTL ttl2
        ZREM ttl2 b
        EXISTS ttl2
        "#,
    );
}

fn encodings(p: &mut Pair) {
    p.script(
        r#"
        ZADD e 1 a 2 b
        OBJECT ENCODING e
        DEBUG DIGEST-VALUE e
        ZADD e 3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        OBJECT ENCODING e
        ZREM e aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        OBJECT ENCODING e
        DEBUG DIGEST-VALUE e
        ZADD e -0 c
        ZSCORE e c
        ZRANGESTORE e2 e 0 -1
        OBJECT ENCODING e2
        ZUNIONSTORE e3 1 e
        OBJECT ENCODING e3
        ZSCORE e3 c
        CONFIG SET zset-max-listpack-entries 2
        ZADD f 1 a 2 b
        OBJECT ENCODING f
        ZADD f 3 c
        OBJECT ENCODING f
        ZRANGESTORE f2 f 0 1
        OBJECT ENCODING f2
        ZRANGESTORE f3 f 0 2
        OBJECT ENCODING f3
        ZRANGESTORE f4 f -inf inf BYSCORE
        OBJECT ENCODING f4
        ZRANGESTORE f5 f 0 1 BYSCORE
        OBJECT ENCODING f5
        ZUNIONSTORE f6 1 f
        OBJECT ENCODING f6
        ZPOPMIN f 2
        OBJECT ENCODING f
        ZSCAN f 0
        CONFIG SET zset-max-listpack-entries 0
        ZADD g 1 a
        OBJECT ENCODING g
        CONFIG SET zset-max-listpack-entries 128
        CONFIG SET zset-max-listpack-value 0
        ZADD h 1 a
        OBJECT ENCODING h
        ZADD h2 1 ""
        OBJECT ENCODING h2
        CONFIG SET zset-max-listpack-value 64
        DEBUG DIGEST-VALUE f3
        "#,
    );
}

fn score_formatting(p: &mut Pair) {
    p.script(
        r#"
        ZADD f 0.1 a 1e17 b 1.5e-10 c 3.0 d -0 e 123456789.123456789 g 1e300 h -1e-300 i 17 j
        ZADD f 9007199254740993 k 0.30000000000000004 l 1e16 m 123e-5 n -inf o +inf q 2.5e-323 r
        ZRANGE f 0 -1 WITHSCORES
        ZSCORE f a
        ZSCORE f b
        ZSCORE f c
        ZSCORE f e
        ZSCORE f g
        ZSCORE f k
        ZSCORE f r
        ZMSCORE f a b c o q nope
        ZINCRBY f 0.2 a
        ZINCRBY f 1 q
        ZINCRBY f -inf q
        ZINCRBY f 1e308 h
        ZINCRBY f 1e308 h
        ZADD f INCR 1e308 h
        ZADD f INCR inf o
        ZSCORE f h
        ZRANGEBYSCORE f (0 (1 WITHSCORES
        ZRANGEBYSCORE f -inf -inf WITHSCORES
        ZRANGEBYSCORE f (-inf (inf LIMIT 0 3 WITHSCORES
        ZCOUNT f 1e-400 1e400
        ZRANGEBYSCORE f 1e-400 1e400
        ZUNIONSTORE u 1 f WEIGHTS 3
        ZRANGE u 0 -1 WITHSCORES
        ZUNIONSTORE u 1 f WEIGHTS 0
        ZRANGE u 0 -1 WITHSCORES
        ZUNIONSTORE u 1 f WEIGHTS inf
        ZRANGE u 0 -1 WITHSCORES
        !resp3
        ZRANGE f 0 -1 WITHSCORES
        ZSCORE f a
        ZSCORE f o
        ZSCORE f q
        ZMSCORE f a nope
        ZINCRBY f 0.1 a
        ZPOPMIN f 2
        ZPOPMAX f
        ZRANGEBYSCORE f 0 1 WITHSCORES
        ZREVRANGEBYSCORE f 1 0 WITHSCORES LIMIT 0 1
        ZUNION 1 f WITHSCORES
        "#,
    );
}

fn store_with_sets_across_shards(p: &mut Pair) {
    p.script(
        r#"
        ZADD {a}z 1 a 2 b 3 c 4 d
        ZADD {b}z 10 b 20 c 30 e
        SADD {c}s a c e f
        SADD {d}s 1 2 3
        ZUNIONSTORE {d}out 3 {a}z {b}z {c}s
        ZRANGE {d}out 0 -1 WITHSCORES
        ZUNIONSTORE {d}out 3 {a}z {b}z {c}s WEIGHTS 2 0.5 -1
        ZRANGE {d}out 0 -1 WITHSCORES
        ZUNIONSTORE {d}out 3 {a}z {b}z {c}s WEIGHTS 2 0.5 -1 AGGREGATE MIN
        ZRANGE {d}out 0 -1 WITHSCORES
        ZUNIONSTORE {d}out 3 {a}z {b}z {c}s AGGREGATE MAX
        ZRANGE {d}out 0 -1 WITHSCORES
        ZINTERSTORE {d}out 2 {a}z {b}z
        ZRANGE {d}out 0 -1 WITHSCORES
        ZINTERSTORE {d}out 3 {a}z {b}z {c}s WEIGHTS 1 1 100
        ZRANGE {d}out 0 -1 WITHSCORES
        ZINTERSTORE {d}out 2 {a}z {c}s AGGREGATE MAX WEIGHTS 1 5
        ZRANGE {d}out 0 -1 WITHSCORES
        ZINTERSTORE {d}out 2 {a}z {d}s
        EXISTS {d}out
        ZINTERSTORE {c}s 2 {a}z {c}s
        TYPE {c}s
        ZRANGE {c}s 0 -1 WITHSCORES
        ZUNIONSTORE {b}z 2 {b}z {a}z
        ZRANGE {b}z 0 -1 WITHSCORES
        ZDIFFSTORE {d}out 2 {b}z {a}z
        ZRANGE {d}out 0 -1 WITHSCORES
        ZDIFFSTORE {d}out 2 {a}z {b}z
        EXISTS {d}out
        ZUNIONSTORE {d}out 2 {a}z {d}s WEIGHTS 1
        ZUNIONSTORE {d}out 2 {a}z {d}s WEIGHTS 1 x
        ZUNIONSTORE {d}out 2 {a}z {d}s AGGREGATE
        ZUNIONSTORE {d}out 2 {a}z {d}s AGGREGATE foo
        ZUNIONSTORE {d}out 2 {a}z {d}s WITHSCORES
        ZUNIONSTORE {d}out 3 {a}z {d}s
        ZUNIONSTORE {d}out 1 {a}z {d}s
        SET {c}str x
        ZUNIONSTORE {d}out 2 {a}z {c}str
        ZINTERSTORE {d}out 2 {d}nokey {c}str
        ZINTER 2 {a}z {c}str
        ZUNION 2 {a}z {d}s WITHSCORES
        ZINTER 2 {a}z {b}z WITHSCORES
        ZDIFF 2 {a}z {b}z WITHSCORES
        ZINTERCARD 2 {a}z {b}z
        ZRANGESTORE {c}dst {a}z 0 1
        ZRANGE {c}dst 0 -1 WITHSCORES
        ZRANGESTORE {c}dst {a}z (1 +inf BYSCORE LIMIT 0 2
        ZRANGE {c}dst 0 -1 WITHSCORES
        ZMPOP 3 {d}nokey {a}z {b}z MAX COUNT 2
        ZMPOP 2 {d}nokey {c}str MIN
        BZMPOP 0.01 2 {d}nokey {b}nokey MIN
        BZPOPMIN {d}nokey {a}z 0
        BZPOPMAX {d}nokey {b}z 0
        "#,
    );
}
