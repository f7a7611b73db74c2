//! List commands: keel vs stock redis-server, byte for byte.
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`: moves between them cross shards.

#[macro_use]
mod common;

use common::Pair;
use keel::storage::slot::key_shard;

pair_tests!(
    push_range_index,
    set_insert_pop,
    lrem_ltrim,
    lpos_options,
    lmove_rpoplpush,
    lmove_across_shards,
    lmpop_options,
    blocking_without_blocking,
    integer_edges,
    wrongtype,
    resp3_nulls,
    ttl_and_encoding,
);

#[test]
fn tags_cover_all_shards() {
    let s: Vec<usize> = ["{a}", "{b}", "{c}", "{d}"]
        .iter()
        .map(|k| key_shard(k.as_bytes(), 4))
        .collect();
    assert_eq!(s, vec![3, 0, 1, 2]);
}

fn push_range_index(p: &mut Pair) {
    p.script(
        r#"
        lpush l a b c
        rpush l d e f
        lrange l 0 -1
        llen l
        llen nokey
        lpushx nokey a
        rpushx nokey a
        exists nokey
        lpushx l x
        rpushx l y z
        lrange l 0 -1
        lrange l -3 -1
        lrange l 5 2
        lrange l -100 100
        lrange l 100 200
        lrange l 0 -100
        lrange l -1 -1
        lrange l a 1
        lrange l 0 b
        lrange l 01 1
        lrange l 1.0 2
        lrange nokey 0 -1
        lrange nokey a 1
        lindex l 0
        lindex l -1
        lindex l 100
        lindex l -100
        lindex l abc
        lindex nokey abc
        lindex nokey 0
        lpush l
        rpush
        lpush "" v
        lrange "" 0 -1
        rpush bin "a\x00b" "\r\n" ""
        lrange bin 0 -1
        lindex bin 2
        "#,
    );
}

fn set_insert_pop(p: &mut Pair) {
    p.script(
        r#"
        rpush l a b c d e f
        lset l 0 first
        lset l -1 last
        lset l 100 x
        lset l -100 x
        lset l abc x
        lset nokey 0 x
        lset nokey abc x
        lrange l 0 -1
        linsert l before first pre
        linsert l after last post
        linsert l after nothere v
        linsert l middle first v
        linsert l BEFORE c "c-"
        linsert l AFTER c "c+"
        linsert nokey before a b
        linsert nokey middle a b
        exists nokey
        lrange l 0 -1
        lpop l
        rpop l
        lpop l 2
        rpop l 2
        lpop l 0
        rpop l 0
        lpop l -1
        lpop l abc
        lpop l 1 2
        rpop l 1 2 3
        lpop nokey
        lpop nokey 0
        lpop nokey 3
        rpop nokey -1
        lrange l 0 -1
        rpop l 100
        llen l
        exists l
        lrange l 0 -1
        rpush one x
        lpop one 0
        lpop one 1
        exists one
        "#,
    );
}

fn lrem_ltrim(p: &mut Pair) {
    p.script(
        r#"
        rpush r a b a c a b a
        lrem r 2 a
        lrange r 0 -1
        lrem r -1 a
        lrange r 0 -1
        lrem r 0 b
        lrange r 0 -1
        lrem r 0 zz
        lrem r x a
        lrem nokey 1 a
        lrem nokey x a
        lrem r 0 a
        lrem r 0 c
        llen r
        exists r
        rpush t 1 2 3 4 5 6 7 8 9
        ltrim t 1 -2
        lrange t 0 -1
        ltrim t -3 100
        lrange t 0 -1
        ltrim t a 1
        ltrim nokey 0 1
        ltrim nokey a 1
        ltrim t 5 1
        llen t
        exists t
        lrange t 0 -1
        rpush t2 1 2 3
        ltrim t2 0 -1
        ltrim t2 -100 100
        lrange t2 0 -1
        ltrim t2 -1 0
        lrange t2 0 -1
        "#,
    );
}

fn lpos_options(p: &mut Pair) {
    p.script(
        r#"
        rpush p a b c 1 2 3 c c
        lpos p c
        lpos p c rank 2
        lpos p c rank -1
        lpos p c rank -2 count 0
        lpos p c count 0
        lpos p c count 2
        lpos p c count 0 maxlen 7
        lpos p c maxlen 2
        lpos p c maxlen 2 count 0
        lpos p c rank -1 maxlen 2 count 0
        lpos p zz
        lpos p zz count 0
        lpos p zz count 1
        lpos p c rank 0
        lpos p c rank abc
        lpos p c count -1
        lpos p c count abc
        lpos p c maxlen -1
        lpos p c maxlen abc
        lpos p c rank
        lpos p c foo 1
        lpos p c rank 1 count
        lpos p c rank 9223372036854775807
        lpos p c rank -9223372036854775808
        lpos p c rank -9223372036854775808 count 0
        lpos p c count 1 count 3
        lpos p c RANK 1 COUNT 1 MAXLEN 0
        lpos p c rank 3 count 5
        lpos p c rank -3 count 5
        lpos p c rank 10
        lpos nokey c
        lpos nokey c count 1
        lpos nokey c rank 0
        lpos nokey c count -1
        "#,
    );
}

fn lmove_rpoplpush(p: &mut Pair) {
    p.script(
        r#"
        rpush m1 a b c
        lmove m1 m2 left right
        lmove m1 m2 right left
        lrange m2 0 -1
        lmove m1 m2 left left
        lrange m1 0 -1
        exists m1
        lmove m1 m2 left left
        lmove m2 m2 left right
        lrange m2 0 -1
        lmove m2 m2 right left
        lrange m2 0 -1
        lmove m2 m3 up left
        lmove m2 m3 left down
        lmove nokey m3 up left
        lmove nokey m3 LEFT RIGHT
        exists m3
        rpoplpush m2 m4
        rpoplpush nokey m4
        lrange m4 0 -1
        rpush single x
        rpoplpush single single
        lrange single 0 -1
        lmove single single left right
        lrange single 0 -1
        "#,
    );
}

fn lmove_across_shards(p: &mut Pair) {
    p.script(
        r#"
        rpush {a}src 1 2 3 4 5
        lmove {a}src {b}dst left right
        lmove {a}src {c}dst right left
        lmove {a}src {d}dst left left
        rpoplpush {a}src {b}dst
        lrange {a}src 0 -1
        lrange {b}dst 0 -1
        lrange {c}dst 0 -1
        lrange {d}dst 0 -1
        rpoplpush {a}src {c}dst
        exists {a}src
        lrange {c}dst 0 -1
        lmove {a}src {b}dst left left
        rpoplpush {a}src {b}dst
        lmove {b}dst {a}src right right
        lrange {a}src 0 -1
        set {c}str x
        lmove {a}src {c}str left left
        rpoplpush {a}src {c}str
        lrange {a}src 0 -1
        lmove {c}str {a}src left left
        rpush {b}l1 x y
        rpush {c}l2 z
        lmpop 2 {b}l1 {c}l2 right count 5
        lmpop 3 {a}none {b}none {c}l2 left
        lmpop 2 {b}l1 {c}l2 left
        lrange {b}dst 0 -1
        "#,
    );
}

fn lmpop_options(p: &mut Pair) {
    p.script(
        r#"
        rpush m2 a b c d
        rpush m4 1 2 3
        lmpop 1 m2 left
        lmpop 2 nokey m2 right count 10
        lmpop 2 nokey m4 left count 1
        lmpop 2 nokey nokey2 left
        lmpop 0 a left
        lmpop -1 a left
        lmpop abc a left
        lmpop 2 a left
        lmpop 1 a
        lmpop 1 a middle
        lmpop 1 a left count 0
        lmpop 1 a left count -1
        lmpop 1 a left count abc
        lmpop 1 a left count 1 count 2
        lmpop 1 a left count
        lmpop 1 a left foo
        lmpop 9223372036854775807 a left
        lmpop 3 a b left
        lmpop 1 m4 LEFT COUNT 2
        lmpop 1 m4 right
        llen m4
        exists m4
        "#,
    );
}

/// Blocking commands on data that is already there, argument errors and
/// short timeouts: one client is enough.
fn blocking_without_blocking(p: &mut Pair) {
    p.script(
        r#"
        rpush bl a b c
        blpop bl 0
        brpop bl 0
        blpop nokey bl 1
        blpop bl -1
        blpop bl abc
        blpop bl inf
        blpop bl 1e300
        blpop bl nan
        blmpop 0.2 2 nokey bl left count 5
        blmove nokey bl left left 0.1
        brpoplpush nokey bl 0.1
        blpop nokey 0.1
        brpop nokey nokey2 0.01
        rpush bl a b c
        blmpop 0 1 bl right
        blmpop 0 0 bl right
        blmpop abc 1 bl right
        blmpop -1 1 bl right
        blmpop 0 1 bl middle
        blmpop 0 1 bl left count 0
        blmpop abc 1 bl left count 0
        blmove bl bm left right 0
        blmove bl bm left right -1
        blmove bl bm up right 0
        blmove bl bm left right abc
        brpoplpush bl bm 0
        brpoplpush bl bm -1
        brpoplpush bl bm abc
        lrange bm 0 -1
        exists bl
        rpush {a}x 1
        blmove {a}x {b}y left left 0
        brpoplpush {b}y {c}z 0
        lrange {c}z 0 -1
        blpop x 1e-4
        blpop x 0x0.1
        blpop x 1e400
        blpop x 9223372036854776
        blpop x " 1"
        blpop x "1 "
        blpop x .5e-1
        "#,
    );
}

fn integer_edges(p: &mut Pair) {
    p.script(
        r#"
        lpush big 123 -5 9223372036854775808 00 1.5
        lrange big 0 -1
        linsert big before 00 z
        lrem big 1 00
        lpos big 9223372036854775808
        lrange big 0 -1
        rpush x a 1 a 01 a -0 a 1.0
        lrem x -9223372036854775808 a
        lrange x 0 -1
        lpos x 1 rank -9223372036854775808
        lpos x 1 rank -9223372036854775808 count 0
        lpos x 1 rank 9223372036854775807 count 0
        lpos x 1 count 9223372036854775807 maxlen 9223372036854775807
        lpos x 1 count 9223372036854775808
        linsert x before 01 q
        linsert x after 1 r
        lrange x 0 -1
        lindex x 9223372036854775807
        lindex x -9223372036854775808
        lindex x 9223372036854775808
        lrange x -9223372036854775808 9223372036854775807
        ltrim x -9223372036854775808 9223372036854775807
        lset x -9223372036854775808 z
        lpop x 9223372036854775807
        rpush x a
        lpop x 9223372036854775808
        lmpop 1 x LEFT count 9223372036854775807
        "#,
    );
}

fn wrongtype(p: &mut Pair) {
    p.script(
        r#"
        set s v
        lpush s a
        rpush s a
        lpushx s a
        rpushx s a
        lpop s
        lpop s 2
        lpop s -1
        rpop s
        llen s
        lrange s 0 -1
        lrange s a 0
        lindex s 0
        lindex s abc
        lset s 0 a
        lset s abc a
        linsert s before a b
        linsert s middle a b
        lrem s 0 a
        lrem s x a
        ltrim s 0 1
        ltrim s x 1
        lpos s a
        lpos s a rank 0
        lmove s d left left
        rpush l1 a b
        lmove l1 s left left
        lrange l1 0 -1
        rpoplpush l1 s
        lmove s l1 up left
        lmpop 2 nokey s left
        lmpop 2 l1 s left
        rpush l2 x
        lmpop 2 l2 s left
        blpop nokey s 0
        blpop s nokey 0
        rpush l3 y
        blpop l3 s 0
        blmpop 0 2 nokey s left
        blmove s d left left 0
        blmove l1 s left left 0
        brpoplpush s d 0
        brpoplpush nokey s 0.05
        hset h f v
        lpush h a
        lrange h 0 -1
        get l1
        "#,
    );
}

fn resp3_nulls(p: &mut Pair) {
    p.script(
        r#"
        !resp3
        lpop nokey
        lpop nokey 1
        rpop nokey 0
        lmpop 1 nokey left
        lindex nokey 0
        lmove nokey d left left
        rpoplpush nokey d
        lpos nokey x
        lpos nokey x count 0
        blpop nokey 0.01
        blmove nokey d left left 0.01
        brpoplpush nokey d 0.01
        blmpop 0.01 1 nokey left
        rpush one x y
        lrange one 0 -1
        lindex one 5
        lpos one zz
        lpos one x count 0
        lpop one 1
        lmpop 1 one left count 3
        rpush one a
        blpop one 0
        lrange nokey 0 -1
        !resp2
        lpop nokey
        lpop nokey 1
        lmpop 1 nokey left
        "#,
    );
}

fn ttl_and_encoding(p: &mut Pair) {
    p.script(
        r#"
        rpush e 1 2 3
        expire e 100
        lpop e
        ttl e
        lmove e e left right
        ttl e
        rpush one x
        expire one 100
        lmove one one left left
        ttl one
        object encoding one
        rpush big a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0
        object encoding big
        type big
        debug digest-value one big
        rpush big a b 1 2 -3 00 ""
        debug digest-value one big
        debug digest
        lpush big 123456789012
        debug digest-value big
        rpush small a b c d
        object encoding small
        rpush small e
        object encoding small
        rpush long 01234567890123456789012345678901234567890123456789012345678901234567890123456789
        object encoding long
        "#,
    );
}
