//! SORT and SORT_RO against stock redis-server, byte for byte, at 1 and 4
//! shards (BY/GET keys spread over the shards): every option, LIMIT edge
//! cases, weights Redis cannot read, ACL and cluster-mode refusals, inside
//! MULTI and scripts. Then cross-shard atomicity under concurrent writers,
//! SORT ... STORE through replication both ways (stock master -> keel
//! replica, keel master -> stock replica), and a replica that meets a
//! command it cannot apply (propagation-error-behavior). Real processes.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::repl::{StockReplica, TempDir, digest, info_int, wait_for, wait_synced};
use common::{Conn, DirKeel, Pair, Resp, Server};

/// Data every scenario sorts: a list, an intset, a string set, a zset
/// (listpack and skiplist), weights as strings and in hashes.
fn load(p: &mut Pair) {
    p.script(
        r##"
RPUSH l 3 1 2 10 -5 2.5 1e2 0x10 inf -inf 7
RPUSH ids 1 2 3 4 5 6 7 8 9
SADD iset 5 3 9 1 7
SADD sset banana apple cherry date elder fig
ZADD z 5 a 1 b 3 c 2 d 4 e
ZADD zs 1 x 1 y 1 w 2 v
MSET w_1 90 w_2 10 w_3 50 w_4 40 w_5 30 w_6 60 w_7 70 w_8 80 w_9 20
MSET o_1 one o_2 two o_3 three o_4 four o_5 five o_6 six o_7 seven o_8 eight
HSET h_1 f 9 g x
HSET h_2 f 8 g y
HSET h_3 f 7
HSET h_4 f 6 g z
HSET h_5 f 5
HSET h_6 f 4
HSET h_7 f 3
HSET h_8 f 2
HSET h_9 f 1
SET w_apple 3
SET w_banana 1
SET w_cherry 2
SET w_date 6
SET w_elder 5
SET w_fig 4
"##,
    );
}

fn sort_numbers_alpha_limit(p: &mut Pair) {
    load(p);
    p.script(
        r##"
SORT l
SORT l DESC
SORT l ASC
SORT ids ALPHA
SORT ids ALPHA DESC
SORT l LIMIT 0 3
SORT l LIMIT 2 3
SORT l LIMIT -1 3
SORT l LIMIT 0 -1
SORT l LIMIT 0 -7
SORT l LIMIT 0 0
SORT l LIMIT 5 0
SORT l LIMIT 10 5
SORT l LIMIT 11 5
SORT l LIMIT 100 5
SORT l LIMIT 1 100
SORT l LIMIT 9223372036854775807 9223372036854775807
SORT l LIMIT -9223372036854775808 2
SORT l DESC LIMIT 1 2
SORT l LIMIT 1 2 DESC ALPHA ASC
SORT l LIMIT 0 1 LIMIT 3 2
SORT_RO l
SORT_RO l DESC LIMIT 0 2
SORT_RO ids ALPHA LIMIT 3 3
SORT iset
SORT iset DESC
SORT sset ALPHA
SORT sset ALPHA DESC LIMIT 1 2
SORT z
SORT z ALPHA
SORT z ALPHA DESC
SORT zs ALPHA
SORT nosuchkey
SORT nosuchkey ALPHA LIMIT 0 3
SORT_RO nosuchkey DESC
RPUSH dup 2 1 2 1 3
SORT dup
SORT dup DESC
RPUSH ws " 3" "" 1 "4"
SORT ws
RPUSH nul "1\x00zz" 0
SORT nul
RPUSH anul "b\x00a" "b\x00b" "a"
SORT anul ALPHA
SORT anul ALPHA DESC
"##,
    );
}

fn sort_errors(p: &mut Pair) {
    load(p);
    p.script(
        r##"
SORT sset
SORT_RO sset
SORT sset LIMIT 0 1
SORT sset DESC
RPUSH bad 1 x 2
SORT bad
SORT bad LIMIT 0 1
RPUSH nan nan 1
SORT nan
RPUSH big 1e400 1
SORT big
SORT l LIMIT
SORT l LIMIT 0
SORT l LIMIT a 1
SORT l LIMIT 0 b
SORT l LIMIT 0 1.5
SORT l LIMIT 01 1
SORT l BY
SORT l GET
SORT l STORE
SORT l FOO
SORT l ALPHA FOO LIMIT x y
SORT l LIMIT x y FOO
SORT
SORT_RO
SORT_RO l STORE dst
SORT_RO l store dst
SORT_RO l LIMIT 0 1 STORE dst
EXISTS dst
SET str v
SORT str
SORT_RO str
HSET hh a 1
SORT hh
XADD st 1-1 a 1
SORT st
SORT str FOO
SORT str LIMIT x 1
SORT str BY nosort
"##,
    );
}

fn sort_by_get(p: &mut Pair) {
    load(p);
    p.script(
        r##"
SORT ids BY w_*
SORT ids BY w_* DESC
SORT ids BY w_* LIMIT 2 4
SORT ids BY w_* DESC LIMIT 0 3
SORT ids BY w_* GET #
SORT ids BY w_* GET o_*
SORT ids BY w_* GET # GET o_* GET h_*->f
SORT ids BY h_*->f
SORT ids BY h_*->f GET h_*->g
SORT ids BY h_*->nofield
SORT ids BY h_*->g ALPHA
SORT ids BY h_*->g ALPHA DESC
SORT ids BY o_* ALPHA
SORT ids BY o_* ALPHA DESC
SORT ids BY o_* ALPHA LIMIT 0 4
SORT ids BY nokey_*
SORT ids BY nokey_* GET #
SORT ids BY o_*
SORT ids BY h_*
SORT ids BY h_* ALPHA
SORT ids GET h_*
SORT ids GET nokey_*
SORT ids GET h_*->
SORT ids GET h_->f*
SORT ids GET *
SORT ids GET w_
SORT ids GET ##
SORT ids GET "#\x00x"
SORT ids BY w_*->
SORT ids BY w_ GET #
SORT sset BY w_*
SORT sset BY w_* GET #
SORT sset BY w_* DESC LIMIT 1 3
SORT iset BY w_* GET o_*
SORT z BY w_*
SORT z BY o_* ALPHA GET o_*
SORT_RO ids BY w_* GET o_* LIMIT 1 3
SORT_RO ids BY h_*->f DESC GET #
SET w_x 1
SET w_y 3
SET w_w 2
SORT zs BY w_*
SORT zs BY w_* ALPHA
SORT zs BY w_* GET # DESC
SET w_4 notanumber
SORT ids BY w_*
SORT ids BY w_* ALPHA
SET w_4 40
SORT ids BY w_* BY nosort
SORT ids BY nosort BY w_*
"##,
    );
}

/// `BY <no star>`: the value's own order; lists and zsets honour DESC and
/// LIMIT, sets keep whatever order they have (compared unordered).
fn sort_nosort(p: &mut Pair) {
    load(p);
    p.script(
        r##"
SORT l BY nosort
SORT l BY nosort DESC
SORT l BY nosort LIMIT 2 3
SORT l BY nosort DESC LIMIT 2 3
SORT l BY nosort LIMIT 0 0
SORT l BY nosort LIMIT 20 3
SORT l BY nosort LIMIT -3 -3
SORT l BY nosort ALPHA
SORT l BY nosort GET #
SORT l BY nosort GET # LIMIT 1 2 DESC
SORT z BY nosort
SORT z BY nosort DESC
SORT z BY nosort LIMIT 1 2
SORT z BY nosort DESC LIMIT 1 2
SORT z BY nosort DESC LIMIT 4 10
SORT z BY nosort LIMIT 5 1
SORT z BY nosort LIMIT 0 0
SORT z BY nosort DESC LIMIT 0 0
SORT z BY nosort GET # GET w_*
SORT_RO z BY nosort DESC LIMIT 1 3
SORT ids BY nosort GET w_* DESC LIMIT 0 4
SORT nosuchkey BY nosort DESC LIMIT 1 1
SORT zs BY nosort
%SORT iset BY nosort
%SORT sset BY nosort
%SORT sset BY nosort GET w_*
SORT sset BY nosort LIMIT 0 0
SORT sset BY nosort STORE dst
LRANGE dst 0 -1
SORT iset BY nosort STORE dst
LRANGE dst 0 -1
EVAL "return redis.call('sort', KEYS[1], 'by', 'nosort')" 1 sset
EVAL "return redis.call('sort', KEYS[1], 'by', 'nosort', 'get', 'w_*')" 1 sset
EVAL "return redis.call('sort_ro', KEYS[1], 'by', 'nosort', 'desc')" 1 z
"##,
    );
}

fn sort_store(p: &mut Pair) {
    load(p);
    p.script(
        r##"
SORT l STORE dst
LRANGE dst 0 -1
TYPE dst
OBJECT ENCODING dst
SORT ids BY w_* GET # GET o_* GET nokey_* STORE dst
LRANGE dst 0 -1
SORT ids BY w_* GET h_*->g STORE dst
LRANGE dst 0 -1
SORT sset ALPHA DESC LIMIT 1 3 STORE dst
LRANGE dst 0 -1
SET str v EX 100
SORT l LIMIT 0 2 STORE str
TYPE str
TTL str
LRANGE str 0 -1
SORT l LIMIT 0 0 STORE str
EXISTS str
SORT nosuchkey STORE str
EXISTS str
SORT l STORE a STORE b
EXISTS a
LRANGE b 0 -1
SORT l STORE l
LRANGE l 0 -1
SORT z ALPHA STORE z
TYPE z
SORT bad STORE dst
SORT nosuchkey STORE dst
EXISTS dst
ZADD small 1 a 2 b
OBJECT ENCODING small
SORT_RO small BY nosort
OBJECT ENCODING small
SORT ids BY w_* STORE "w_*"
LRANGE w_* 0 -1
SORT ids BY nosort GET # STORE dst2 LIMIT 8 5
LRANGE dst2 0 -1
"##,
    );
}

/// Inside MULTI, from scripts (which hold only their declared keys at
/// first), RESP3 replies.
fn sort_multi_scripts_resp3(p: &mut Pair) {
    load(p);
    p.script(
        r##"
MULTI
SORT ids BY w_* GET o_*
SORT ids BY w_* GET o_* STORE dst
SORT_RO dst ALPHA
SET w_1 0
SORT ids BY w_* LIMIT 0 2
EXEC
EVAL "return redis.call('sort', KEYS[1], 'by', 'w_*', 'get', 'o_*')" 1 ids
EVAL "return redis.call('sort', KEYS[1], 'by', 'w_*', 'get', '#', 'store', KEYS[2])" 2 ids dst
LRANGE dst 0 -1
EVAL "return redis.call('sort_ro', KEYS[1], 'store', 'x')" 1 ids
EVAL "return redis.pcall('sort', KEYS[1])" 1 bad
EVAL_RO "return redis.call('sort', KEYS[1], 'by', 'w_*', 'store', 'x')" 1 ids
EVAL_RO "return redis.call('sort_ro', KEYS[1], 'by', 'w_*', 'get', 'h_*->g')" 1 ids
!resp3
SORT ids BY w_* GET o_* GET nokey_*
SORT_RO ids BY h_*->g GET h_*->g LIMIT 0 3
SORT nosuchkey
SORT ids LIMIT 0 2 STORE dst
SORT l BY nosort LIMIT 0 2
!resp2
"##,
    );
}

/// ACL: BY/GET patterns need read access to every key; STORE needs write
/// access to the destination.
fn sort_acl(p: &mut Pair) {
    load(p);
    p.script(
        r##"
ACL SETUSER some on nopass ~ids ~w_* ~dst +@all
ACL SETUSER allr on nopass %R~* ~dst +@all
ACL SETUSER allw on nopass %W~* +@all
ACL SETUSER anyk on nopass allkeys +@all
AUTH some x
SORT ids
SORT ids BY nosort
SORT ids BY w_*
SORT ids GET #
SORT ids LIMIT 0 1 GET w_*
SORT ids STORE dst
SORT ids STORE other
SORT_RO ids BY w_*
SORT ids LIMIT x y BY w_*
SORT ids BY w_* FOO
SORT ids FOO BY w_*
EVAL "return redis.call('sort', KEYS[1], 'by', 'w_*')" 1 ids
EVAL "return redis.call('sort', KEYS[1], 'get', '#')" 1 ids
EVAL "return redis.call('sort', KEYS[1], 'by', 'nosort')" 1 ids
AUTH allr x
EVAL "return redis.call('sort', KEYS[1], 'by', 'w_*', 'get', 'o_*')" 1 ids
SORT ids BY w_* GET o_*
SORT ids BY w_* STORE dst
SORT ids STORE other
AUTH allw x
SORT ids BY w_*
AUTH anyk x
SORT ids BY w_* GET o_* LIMIT 0 2
AUTH default x
"##,
    );
}

fn sort_command_getkeys(p: &mut Pair) {
    p.script(
        r##"
COMMAND INFO sort sort_ro
COMMAND GETKEYS SORT k
COMMAND GETKEYS SORT k STORE d
COMMAND GETKEYS SORT k store d STORE e
COMMAND GETKEYS SORT k LIMIT 0 1 STORE d BY w_* GET #
COMMAND GETKEYS SORT k GET store x
COMMAND GETKEYS SORT k STORE
COMMAND GETKEYS SORT_RO k
COMMAND GETKEYS SORT_RO k STORE d
COMMAND GETKEYS SORT
COMMAND GETKEYSANDFLAGS SORT k STORE d
COMMAND GETKEYSANDFLAGS SORT k
COMMAND GETKEYSANDFLAGS SORT_RO k
%COMMAND LIST FILTERBY PATTERN sort*
%COMMAND LIST FILTERBY PATTERN lolwut
COMMAND INFO lolwut
COMMAND DOCS lolwut
COMMAND LIST FILTERBY MODULE foo
COMMAND GETKEYSANDFLAGS SET k v
COMMAND GETKEYSANDFLAGS SET k v GET
COMMAND GETKEYSANDFLAGS LMOVE a b LEFT RIGHT
COMMAND GETKEYSANDFLAGS GETDEL k
COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 2 a b
COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0
COMMAND GETKEYSANDFLAGS BITFIELD k SET u8 0 1
COMMAND GETKEYSANDFLAGS MSET a 1 b 2
COMMAND GETKEYSANDFLAGS EVAL "return 1" 2 a b
COMMAND GETKEYSANDFLAGS XREADGROUP GROUP g c STREAMS s1 s2 > >
COMMAND GETKEYSANDFLAGS DEL a b
COMMAND GETKEYSANDFLAGS RENAME a b
"##,
    );
}

fn debug_module_lolwut(p: &mut Pair) {
    p.script(
        r##"
DEBUG ERROR "foo bar"
DEBUG ERROR "ERR custom message"
DEBUG ERROR "multi\r\nline\nerror"
DEBUG ERROR ""
DEBUG ERROR
DEBUG ERROR a b
MODULE LIST
MODULE HELP
MODULE foo
MODULE LIST x
MODULE LOAD
MODULE UNLOAD
MODULE UNLOAD a b
MODULE LOAD /nonexistent/module.so
MODULE LOAD /nonexistent/module.so arg1 arg2
MODULE LOADEX /nonexistent/module.so CONFIG a b ARGS c
MODULE UNLOAD somemodule
LOLWUT
LOLWUT foo bar
LOLWUT VERSION 7
LOLWUT VERSION 4
LOLWUT VERSION 7 x y
LOLWUT VERSION x
LOLWUT VERSION 5 x
LOLWUT VERSION 5 10 x
LOLWUT VERSION 5 10 10 x
LOLWUT VERSION 6 x
LOLWUT VERSION 6 1 y
LOLWUT VERSION
!resp3
LOLWUT
MODULE LIST
DEBUG ERROR "resp3 error"
!resp2
"##,
    );
}

pair_tests!(
    sort_numbers_alpha_limit,
    sort_errors,
    sort_by_get,
    sort_nosort,
    sort_store,
    sort_multi_scripts_resp3,
    sort_acl,
    sort_command_getkeys,
);

/// DEBUG and MODULE enabled on both (keel's defaults may differ).
fn protected_enabled(shards: usize) -> Pair {
    let a = [
        "--enable-debug-command",
        "yes",
        "--enable-module-command",
        "yes",
    ];
    Pair::with_args(shards, &a, &a)
}

#[test]
fn debug_error_module_lolwut_like_stock() {
    for shards in [1, 4] {
        let mut p = protected_enabled(shards);
        debug_module_lolwut(&mut p);
        p.finish();
    }
}

/// LOLWUT 5 and 6 draw keel's own art: the reply's shape and last line are
/// stock's (a verbatim string in RESP3, a bulk string in RESP2).
#[test]
fn lolwut_art_has_stock_shape() {
    let keel = Server::keel(1, &[]);
    let mut k = keel.conn();
    for (line, tail) in [
        ("LOLWUT VERSION 5", "Redis ver. 7.0.15\n"),
        ("LOLWUT VERSION 5 1 1 1", "Redis ver. 7.0.15\n"),
        ("LOLWUT VERSION 5 100000 -5 100000", "Redis ver. 7.0.15\n"),
        ("LOLWUT VERSION 6", "Redis ver. 7.0.15\n"),
        ("LOLWUT VERSION 6 100000 -1", "Redis ver. 7.0.15\n"),
    ] {
        let Resp::Bulk(b) = k.val(line) else {
            panic!("{line}: not a bulk string");
        };
        let text = String::from_utf8_lossy(&b).into_owned();
        assert!(text.ends_with(tail), "{line}: {text:?}");
        assert!(text.len() > tail.len() + 10, "{line}: no art: {text:?}");
    }
    k.line("HELLO 3");
    let r = k.line("LOLWUT VERSION 6 20 5");
    assert!(
        r.starts_with(b"="),
        "RESP3 verbatim: {:?}",
        String::from_utf8_lossy(&r)
    );
    assert!(String::from_utf8_lossy(&r).contains("\r\ntxt:"));
}

/// MODULE is protected like in Redis: refused unless enable-module-command
/// allows it; "local" lets loopback clients in.
#[test]
fn module_command_is_protected_by_default() {
    let no = ["--enable-module-command", "no"];
    let mut p = Pair::with_args(1, &no, &no);
    p.script(
        r##"
MODULE LIST
MODULE LOAD /x.so
MODULE HELP
CONFIG GET enable-module-command
CONFIG SET enable-module-command yes
"##,
    );
    p.finish();
    let local = ["--enable-module-command", "local"];
    let mut p = Pair::with_args(1, &local, &local);
    p.script("MODULE LIST\nCONFIG GET enable-module-command\n");
    p.finish();
}

/// Cluster mode: BY with a pattern and any GET are refused (Redis 7.0),
/// BY without `*` is fine, STORE must share the key's slot.
#[test]
fn cluster_mode_refuses_patterns_like_stock() {
    let dir = TempDir::new("sort-cluster");
    let conf = format!("{}/nodes.conf", dir.path());
    let stock = Server::redis(&["--cluster-enabled", "yes", "--cluster-config-file", &conf]);
    let mut r = stock.conn();
    assert_eq!(r.line("CLUSTER ADDSLOTSRANGE 0 16383"), b"+OK\r\n");
    wait_for(30, "stock cluster_state:ok", || {
        r.val("CLUSTER INFO")
            .as_str()
            .starts_with("cluster_state:ok")
    });
    let port = common::free_port();
    let node = format!("127.0.0.1:{port} 0-16383");
    let kd = TempDir::new("sort-cluster-keel");
    let keel = DirKeel::start_on(
        port,
        &kd.0,
        2,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-node",
            &node,
            "--save",
            "",
        ],
    );
    let mut k = keel.conn();
    let lines = [
        "RPUSH {a}l 3 1 2",
        "SET {a}w_1 5",
        "SORT {a}l",
        "SORT {a}l BY nosort",
        "SORT {a}l BY {a}w_*",
        "SORT {a}l BY w_*",
        "SORT {a}l GET #",
        "SORT {a}l GET {a}w_*",
        "SORT {a}l LIMIT 0 1 BY {a}w_* GET #",
        "SORT {a}l BY nosort GET #",
        "SORT_RO {a}l BY {a}w_*",
        "SORT {a}l STORE {a}dst",
        "SORT {a}l STORE other",
        "SORT {a}l FOO BY w_*",
        "SORT {a}l BY w_* FOO",
        "LRANGE {a}dst 0 -1",
    ];
    let mut diffs = Vec::new();
    for l in lines {
        let (kr, rr) = (k.line(l), r.line(l));
        if kr != rr {
            diffs.push(format!(
                "{l}\n    keel:  {}\n    redis: {}",
                common::show(&kr),
                common::show(&rr)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "cluster-mode SORT differs:\n{}",
        diffs.join("\n")
    );
}

/// Ids whose `prefix<id>` keys fall `per_shard` on each shard of a 4-shard
/// keel.
fn names_per_shard(prefix: &str, per_shard: usize) -> Vec<String> {
    let mut counts = [0usize; 4];
    let mut out = Vec::new();
    for i in 0.. {
        let name = format!("{prefix}{i}");
        let shard = keel::storage::slot::key_shard(name.as_bytes(), 4);
        if counts[shard] < per_shard {
            counts[shard] += 1;
            out.push(i.to_string());
        }
        if counts.iter().all(|&n| n == per_shard) {
            break;
        }
    }
    out
}

/// Writers move amounts between accounts on every shard in MULTI/EXEC;
/// readers SORT the account ids BY and GET the balances. Every read must
/// see a consistent total: the SORT holds every shard it reaches at once.
#[test]
fn cross_shard_sort_is_atomic_under_concurrent_writers() {
    const START: i64 = 1000;
    let keel = Server::keel(4, &[]);
    let mut c = keel.conn();
    let ids = names_per_shard("acct_", 2);
    // The hash keys land elsewhere; what matters is that acct_ keys span
    // every shard.
    assert_eq!(ids.len(), 8);
    let n = ids.len();
    let total = START * n as i64;
    for id in &ids {
        c.line(&format!("SET acct_{id} {START}"));
        c.line(&format!("RPUSH ids {id}"));
        c.line(&format!("HSET hacct_{id} v {START}"));
    }
    let port = keel.port;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let (ids, done) = (ids.clone(), done.clone());
        writers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (w + 1);
            let mut moves = 0u64;
            while !done.load(Ordering::Relaxed) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let a = &ids[(seed % n as u64) as usize];
                let b = &ids[((seed >> 8) % n as u64) as usize];
                let amt = (seed >> 16) % 50;
                c.line("MULTI");
                c.line(&format!("DECRBY acct_{a} {amt}"));
                c.line(&format!("INCRBY acct_{b} {amt}"));
                c.line(&format!("HINCRBY hacct_{a} v -{amt}"));
                c.line(&format!("HINCRBY hacct_{b} v {amt}"));
                let r = c.line("EXEC");
                assert!(
                    r.starts_with(b"*4"),
                    "EXEC: {}",
                    String::from_utf8_lossy(&r)
                );
                moves += 1;
            }
            moves
        }));
    }
    let sum = |r: &Resp, what: &str| -> i64 {
        let Resp::Array(items) = r else {
            panic!("{what}: not an array: {r:?}")
        };
        items
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .parse::<i64>()
                    .unwrap()
            })
            .sum()
    };
    let mut readers = Vec::new();
    for form in [
        "SORT ids BY nosort GET acct_*",
        "SORT ids BY acct_* GET acct_*",
        "SORT_RO ids BY hacct_*->v GET hacct_*->v",
        "SORT ids ALPHA GET acct_* GET hacct_*->v",
    ] {
        let (done, reads) = (done.clone(), reads.clone());
        readers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut bad = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let r = c.val(form);
                let s = sum(&r, form);
                let expect = if form.contains("GET acct_* GET hacct") {
                    2 * total
                } else {
                    total
                };
                if s != expect {
                    bad.push(format!("{form}: sum {s}, expected {expect}"));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
            bad
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    done.store(true, Ordering::Relaxed);
    let moves: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let bad: Vec<String> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    assert!(
        bad.is_empty(),
        "partial states seen: {:?}",
        &bad[..bad.len().min(5)]
    );
    assert!(moves > 50, "writers made only {moves} transfers");
    assert!(reads.load(Ordering::Relaxed) > 50, "too few reads");
    // Whatever happened, the balances still add up.
    let r = c.val("SORT ids GET acct_*");
    assert_eq!(sum(&r, "final"), total);
}

/// SORT ... STORE forms whose results replicas must reproduce exactly.
fn sort_store_writes(c: &mut Conn) {
    for l in [
        "RPUSH ids 1 2 3 4 5 6 7 8 9",
        "MSET w_1 90 w_2 10 w_3 50 w_4 40 w_5 30 w_6 60 w_7 70 w_8 80 w_9 20",
        "MSET o_1 one o_2 two o_3 three o_4 four o_5 five o_6 six",
        "HSET h_1 f 9",
        "HSET h_2 f 8",
        "HSET h_7 f 3",
        "SADD sset banana apple cherry date",
        "ZADD z 5 a 1 b 3 c",
        "SORT ids BY w_* GET # GET o_* GET h_*->f STORE d1",
        "SORT ids BY w_* DESC LIMIT 2 4 STORE d2",
        "SORT sset BY nosort STORE d3",
        "SORT sset ALPHA DESC STORE d4",
        "SORT z BY nosort DESC STORE d5",
        "SORT ids ALPHA LIMIT 0 0 STORE d2",
        "SET d6 x EX 1000",
        "SORT ids BY o_* ALPHA GET o_* STORE d6",
        "SORT nosuchkey STORE d4",
        "SELECT 3",
        "RPUSH l3 3 1 2",
        "SORT l3 STORE d7",
        "SELECT 0",
    ] {
        let r = c.line(l);
        assert!(!r.starts_with(b"-"), "{l}: {}", String::from_utf8_lossy(&r));
    }
}

#[test]
fn sort_store_replicates_stock_master_to_keel_replica() {
    let mdir = TempDir::new("sort-rmaster");
    let master = Server::redis(&["--dir", mdir.path(), "--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    m.line("RPUSH before 2 1");
    m.line("SORT before STORE before_sorted");
    let rdir = TempDir::new("sort-kreplica");
    let mp = master.port.to_string();
    let keel = Server::keel(4, &["--dir", rdir.path(), "--replicaof", "127.0.0.1", &mp]);
    let mut k = keel.conn();
    wait_synced(&mut m, &mut k, "full sync");
    sort_store_writes(&mut m);
    wait_synced(&mut m, &mut k, "stream with SORT ... STORE");
    assert_eq!(digest(&mut k), digest(&mut m), "DEBUG DIGEST");
    for key in ["d1", "d3", "d5", "d6"] {
        let l = format!("LRANGE {key} 0 -1");
        assert_eq!(k.line(&l), m.line(&l), "{l}");
    }
    assert_eq!(info_int(&mut k, "stats", "unexpected_error_replies"), 0);
    assert!(
        !keel.log_text().contains("== CRITICAL =="),
        "{}",
        keel.log_text()
    );
}

#[test]
fn sort_store_replicates_keel_master_to_stock_replica() {
    let mdir = TempDir::new("sort-kmaster");
    let master = Server::keel(
        4,
        &["--dir", mdir.path(), "--repl-diskless-sync-delay", "0"],
    );
    let mut m = master.conn();
    m.line("RPUSH before 2 1");
    let replica = StockReplica::start(master.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut m, &mut r, "full sync");
    sort_store_writes(&mut m);
    wait_synced(&mut m, &mut r, "stream with SORT ... STORE");
    assert_eq!(digest(&mut r), digest(&mut m), "DEBUG DIGEST");
    for key in ["d1", "d3", "d5", "d6"] {
        let l = format!("LRANGE {key} 0 -1");
        assert_eq!(r.line(&l), m.line(&l), "{l}");
    }
    assert!(
        !replica.log().contains("== CRITICAL =="),
        "{}",
        replica.log()
    );
}

/// An empty RDB as stock writes it.
fn empty_rdb() -> Vec<u8> {
    let dir = TempDir::new("sort-emptyrdb");
    let s = Server::redis(&["--dir", dir.path()]);
    let mut c = s.conn();
    assert_eq!(c.line("SAVE"), b"+OK\r\n");
    std::fs::read(dir.0.join("dump.rdb")).unwrap()
}

/// A master of our own: handshake, a full sync with an empty RDB, then the
/// stream `cmds` and a GETACK, whose ACK is returned.
fn fake_master(
    listener: &TcpListener,
    rdb: &[u8],
    cmds: &[&[&str]],
) -> (std::net::TcpStream, String) {
    let (mut c, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"+PONG\r\n+OK\r\n+OK\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("PSYNC") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "keel closed during the handshake");
        got.extend_from_slice(&buf[..n]);
    }
    let mut p = format!("+FULLRESYNC {} 0\r\n${}\r\n", "b".repeat(40), rdb.len()).into_bytes();
    p.extend_from_slice(rdb);
    for cmd in cmds {
        p.extend(common::encode(cmd));
    }
    p.extend(common::encode(&["REPLCONF", "GETACK", "*"]));
    c.write_all(&p).unwrap();
    // Skip whatever came before the ACK (listening-port, capa...).
    let mut text = String::new();
    while !text.contains("ACK") || !text.ends_with("\r\n") {
        let n = c.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "no ACK from keel; got {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    (c, text)
}

/// A command the replica cannot apply is logged, counted in INFO
/// (unexpected_error_replies, errorstats), and skipped: the stream goes on
/// and the offset counts its bytes, as Redis does with the default
/// propagation-error-behavior (ignore).
#[test]
fn unknown_command_from_master_is_counted_and_logged() {
    let rdb = empty_rdb();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("sort-fake1");
    let keel = Server::keel(2, &["--dir", dir.path(), "--replicaof", "127.0.0.1", &port]);
    let mut k = keel.conn();
    assert_eq!(
        k.line("CONFIG GET propagation-error-behavior"),
        b"*2\r\n$26\r\npropagation-error-behavior\r\n$6\r\nignore\r\n"
    );
    let (_c, ack) = fake_master(
        &listener,
        &rdb,
        &[
            &["SET", "a", "1"],
            &["NOSUCHCMD", "x", "y"],
            &["GET"],
            &["SET", "b", "2"],
        ],
    );
    assert!(ack.contains("ACK"), "{ack}");
    wait_for(10, "the stream applied", || {
        k.line("GET b") == b"$1\r\n2\r\n"
    });
    assert_eq!(k.line("GET a"), b"$1\r\n1\r\n");
    assert_eq!(info_int(&mut k, "stats", "unexpected_error_replies"), 2);
    assert!(info_int(&mut k, "stats", "total_error_replies") >= 2);
    let errs = String::from_utf8_lossy(&k.line("INFO errorstats")).into_owned();
    assert!(errs.contains("errorstat_ERR:count=2"), "{errs}");
    let log = keel.log_text();
    assert!(
        log.contains("== CRITICAL == This replica is sending an error to its master: 'unknown command 'NOSUCHCMD', with args beginning with: 'x' 'y' ' after processing the command '<unknown>'"),
        "{log}"
    );
    assert!(
        log.contains(
            "'wrong number of arguments for 'get' command' after processing the command 'get'"
        ),
        "{log}"
    );
    assert_eq!(k.line("CONFIG RESETSTAT"), b"+OK\r\n");
    assert_eq!(info_int(&mut k, "stats", "unexpected_error_replies"), 0);
    assert_eq!(
        k.line("CONFIG SET propagation-error-behavior bogus")
            .first(),
        Some(&b'-')
    );
}

/// With panic-on-replicas (or panic) a read-only replica stops at the
/// first command it cannot apply instead of diverging from its master.
#[test]
fn panic_on_replicas_stops_the_replica() {
    let rdb = empty_rdb();
    for behavior in ["panic-on-replicas", "panic"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let dir = TempDir::new("sort-fake2");
        let mut keel = Server::keel(
            2,
            &[
                "--dir",
                dir.path(),
                "--replicaof",
                "127.0.0.1",
                &port,
                "--propagation-error-behavior",
                behavior,
            ],
        );
        let listener2 = listener.try_clone().unwrap();
        let rdb2 = rdb.clone();
        let t = std::thread::spawn(move || {
            let (mut c, _) = listener2.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"+PONG\r\n+OK\r\n+OK\r\n").unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("PSYNC") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            let mut p =
                format!("+FULLRESYNC {} 0\r\n${}\r\n", "c".repeat(40), rdb2.len()).into_bytes();
            p.extend_from_slice(&rdb2);
            p.extend(common::encode(&["SET", "a", "1"]));
            p.extend(common::encode(&["NOSUCHCMD", "x"]));
            p.extend(common::encode(&["SET", "b", "2"]));
            let _ = c.write_all(&p);
            // Hold the socket until keel is gone.
            let _ = c.read(&mut buf);
        });
        wait_for(20, "keel to stop", || !keel.alive());
        t.join().unwrap();
        let log = keel.log_text();
        assert!(
            log.contains("This replica panicked sending an error to its master after processing the command '<unknown>'"),
            "{behavior}: {log}"
        );
    }
}

/// A writable replica (replica-read-only no) only logs and counts, as in
/// Redis 7.2, whatever propagation-error-behavior says.
#[test]
fn writable_replica_does_not_panic() {
    let rdb = empty_rdb();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("sort-fake3");
    let mut keel = Server::keel(
        1,
        &[
            "--dir",
            dir.path(),
            "--replicaof",
            "127.0.0.1",
            &port,
            "--propagation-error-behavior",
            "panic",
            "--replica-read-only",
            "no",
        ],
    );
    let mut k = keel.conn();
    let (_c, _ack) = fake_master(&listener, &rdb, &[&["NOSUCHCMD"], &["SET", "b", "2"]]);
    wait_for(10, "the stream applied", || {
        k.line("GET b") == b"$1\r\n2\r\n"
    });
    assert!(keel.alive());
    assert_eq!(info_int(&mut k, "stats", "unexpected_error_replies"), 1);
}
