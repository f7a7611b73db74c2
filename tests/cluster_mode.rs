//! Emulated cluster mode: two keel processes (2 shards and 1 shard) share a
//! static slot map (A: 0-8191, B: 8192-16383). A cluster client, redis-cli
//! -c and redis-benchmark --cluster work against them; redirections, the
//! multi-key rules and the CLUSTER replies are compared with stock Redis 7.0
//! in cluster mode. Real processes, real clients.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::repl::{TempDir, wait_for};
use common::{Conn, DirKeel, Resp, Server, encode, free_port, require_tool, show};

/// Node A owns 0-8191 (`bar` is slot 5061), node B 8192-16383 (`foo` is 12182).
struct Cluster {
    a: DirKeel,
    b: DirKeel,
    _dir: TempDir,
}

fn map_args(pa: u16, pb: u16) -> Vec<String> {
    vec![
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-node".into(),
        format!("127.0.0.1:{pa} 0-8191"),
        "--cluster-node".into(),
        format!("127.0.0.1:{pb} 8192-16383"),
        "--save".into(),
        String::new(),
    ]
}

fn two_nodes() -> Cluster {
    let dir = TempDir::new("cluster");
    let (pa, pb) = (free_port(), free_port());
    let args = map_args(pa, pb);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let a = DirKeel::start_on(pa, &dir.0, 2, &args);
    let b = DirKeel::start_on(pb, &dir.0, 1, &args);
    Cluster { a, b, _dir: dir }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn int(c: &mut Conn, line: &str) -> i64 {
    c.val(line).as_int()
}

fn sha1_hex(text: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Node IDs are sha1("host:port"), the same in every process.
fn node_id(port: u16) -> String {
    sha1_hex(&format!("127.0.0.1:{port}"))
}

/// Every key of node `c` and the slot the node computes for it.
fn keys_and_slots(c: &mut Conn) -> Vec<(Vec<u8>, i64)> {
    let Resp::Array(keys) = c.val("KEYS *") else {
        panic!("KEYS did not answer an array");
    };
    let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    // One pipelined round of CLUSTER KEYSLOT.
    let mut req = Vec::new();
    for k in &keys {
        req.extend(encode(&[&b"CLUSTER"[..], b"KEYSLOT", k]));
    }
    c.send(&req);
    keys.into_iter()
        .map(|k| {
            let slot = Resp::parse(&c.read_reply()).as_int();
            (k, slot)
        })
        .collect()
}

#[test]
fn cluster_client_spreads_10k_keys_over_both_nodes() {
    let cl = two_nodes();
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", cl.a.port)])
            .unwrap();
    let mut con = client.get_connection().unwrap();
    const N: usize = 10_000;
    for i in 0..N {
        let _: () = redis::cmd("SET")
            .arg(format!("user:{i}"))
            .arg(format!("value-{i}"))
            .query(&mut con)
            .unwrap();
    }
    for i in 0..N {
        let v: String = redis::cmd("GET")
            .arg(format!("user:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(v, format!("value-{i}"), "user:{i} read back");
    }
    let (mut ca, mut cb) = (cl.a.conn(), cl.b.conn());
    let (na, nb) = (int(&mut ca, "DBSIZE"), int(&mut cb, "DBSIZE"));
    assert!(na > 0 && nb > 0, "keys on both nodes: {na} and {nb}");
    assert_eq!(na + nb, N as i64);
    // Each node holds only keys of its own slots.
    let mut per_slot: BTreeMap<i64, usize> = BTreeMap::new();
    for (c, range, name) in [(&mut ca, 0..8192, "A"), (&mut cb, 8192..16384, "B")] {
        for (k, slot) in keys_and_slots(c) {
            assert!(
                range.contains(&slot),
                "node {name} holds {} of slot {slot}",
                s(&k)
            );
            *per_slot.entry(slot).or_default() += 1;
        }
    }
    // COUNTKEYSINSLOT / GETKEYSINSLOT agree with KEYS, on the owning node.
    for (&slot, &n) in per_slot.iter().step_by(97) {
        let c = if slot < 8192 { &mut ca } else { &mut cb };
        assert_eq!(
            int(c, &format!("CLUSTER COUNTKEYSINSLOT {slot}")),
            n as i64,
            "slot {slot}"
        );
        let Resp::Array(keys) = c.val(&format!("CLUSTER GETKEYSINSLOT {slot} 1000")) else {
            panic!("GETKEYSINSLOT did not answer an array");
        };
        assert_eq!(keys.len(), n);
        for k in keys {
            let ks = k.as_str();
            assert_eq!(int(c, &format!("CLUSTER KEYSLOT {ks}")), slot);
        }
        let other = if slot < 8192 { &mut cb } else { &mut ca };
        assert_eq!(
            int(other, &format!("CLUSTER COUNTKEYSINSLOT {slot}")),
            0,
            "slot {slot} on the other node"
        );
    }
}

#[test]
fn moved_redirects_and_redis_cli_follows_them() {
    require_tool("redis-cli");
    let cl = two_nodes();
    let (pa, pb) = (cl.a.port, cl.b.port);
    let (mut ca, mut cb) = (cl.a.conn(), cl.b.conn());
    // foo is slot 12182 (B), bar slot 5061 (A).
    assert_eq!(
        s(&ca.line("SET foo v")),
        format!("-MOVED 12182 127.0.0.1:{pb}\r\n")
    );
    assert_eq!(
        s(&ca.line("GET foo")),
        format!("-MOVED 12182 127.0.0.1:{pb}\r\n")
    );
    assert_eq!(
        s(&cb.line("GET {bar}x")),
        format!("-MOVED 5061 127.0.0.1:{pa}\r\n")
    );
    assert_eq!(s(&ca.line("SET bar here")), "+OK\r\n");
    // Keyless commands run locally on any node.
    assert_eq!(s(&cb.line("PING")), "+PONG\r\n");
    assert_eq!(s(&cb.line("DBSIZE")), ":0\r\n");

    let out = Command::new("redis-cli")
        .args(["-c", "-p", &pa.to_string(), "SET", "foo", "via-cli"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(s(&out.stdout).trim(), "OK");
    assert_eq!(s(&cb.line("GET foo")), "$7\r\nvia-cli\r\n");
    assert_eq!(int(&mut ca, "DBSIZE"), 1, "only bar is on A");
    assert_eq!(int(&mut cb, "DBSIZE"), 1, "foo landed on B");
    let out = Command::new("redis-cli")
        .args(["-c", "-p", &pb.to_string(), "GET", "bar"])
        .output()
        .unwrap();
    assert_eq!(s(&out.stdout).trim(), "here");

    // Hash tags keep related keys on one node.
    let slot = int(&mut ca, "CLUSTER KEYSLOT {u1}a");
    assert_eq!(int(&mut ca, "CLUSTER KEYSLOT {u1}b"), slot);
    let (owner, other, port) = if slot < 8192 {
        (&mut ca, &mut cb, pa)
    } else {
        (&mut cb, &mut ca, pb)
    };
    assert_eq!(
        s(&other.line("MSET {u1}a 1 {u1}b 2")),
        format!("-MOVED {slot} 127.0.0.1:{port}\r\n")
    );
    assert_eq!(s(&owner.line("MSET {u1}a 1 {u1}b 2")), "+OK\r\n");
    assert_eq!(
        s(&owner.line("MGET {u1}a {u1}b")),
        "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(s(&owner.line("RENAME {u1}a {u1}c")), "+OK\r\n");
    assert_eq!(s(&owner.line("DEL {u1}b {u1}c")), ":2\r\n");
    assert_eq!(
        s(&owner.line("EVAL \"return redis.call('set', KEYS[1], ARGV[1])\" 1 {u1}d x")),
        "+OK\r\n"
    );
    // A script may not reach a key of the other node.
    let remote = if port == pa { "foo" } else { "bar" };
    let body = format!("return redis.call('get', '{remote}')");
    assert_eq!(
        s(&owner.cmd(&["EVAL", &body, "1", "{u1}d"])),
        format!(
            "-ERR Script attempted to access a non local key in a cluster node script: {}, on @user_script:1.\r\n",
            sha1_hex(&body)
        )
    );

    // A redirected command inside MULTI flags the transaction.
    assert_eq!(s(&ca.line("MULTI")), "+OK\r\n");
    assert_eq!(
        s(&ca.line("SET foo x")),
        format!("-MOVED 12182 127.0.0.1:{pb}\r\n")
    );
    assert_eq!(s(&ca.line("SET bar y")), "+QUEUED\r\n");
    assert_eq!(
        s(&ca.line("EXEC")),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(s(&ca.line("GET bar")), "$4\r\nhere\r\n");
}

#[test]
fn partial_slot_maps_answer_clusterdown() {
    let dir = TempDir::new("cluster-partial");
    let pa = free_port();
    let half = format!("127.0.0.1:{pa} 0-8191");
    let base = [
        "--cluster-enabled",
        "yes",
        "--cluster-node",
        &half,
        "--save",
        "",
    ];
    let k = DirKeel::start_on(pa, &dir.0, 1, &base);
    let mut c = k.conn();
    assert!(
        s(&c.line("CLUSTER INFO"))
            .contains("cluster_state:fail\r\ncluster_slots_assigned:8192\r\n")
    );
    assert_eq!(
        s(&c.line("GET foo")),
        "-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert_eq!(
        s(&c.line("GET bar")),
        "-CLUSTERDOWN The cluster is down\r\n"
    );
    drop(c);
    drop(k);
    let mut args = base.to_vec();
    args.extend(["--cluster-require-full-coverage", "no"]);
    let pb = free_port();
    let half = format!("127.0.0.1:{pb} 0-8191");
    args[3] = &half;
    let k = DirKeel::start_on(pb, &dir.0, 1, &args);
    let mut c = k.conn();
    assert!(
        c.val("CLUSTER INFO")
            .as_str()
            .starts_with("cluster_state:ok\r\n")
    );
    assert_eq!(s(&c.line("SET bar 1")), "+OK\r\n");
    assert_eq!(
        s(&c.line("GET foo")),
        "-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert_eq!(
        s(&c.line("CLUSTER SLOTS")),
        format!(
            "*1\r\n*3\r\n:0\r\n:8191\r\n*4\r\n$9\r\n127.0.0.1\r\n:{pb}\r\n$40\r\n{}\r\n*0\r\n",
            node_id(pb)
        )
    );
}

/// Stock redis-server in cluster mode serving every slot.
fn stock_cluster(dir: &TempDir) -> Server {
    let conf = format!("{}/nodes.conf", dir.path());
    let r = Server::redis(&["--cluster-enabled", "yes", "--cluster-config-file", &conf]);
    let mut c = r.conn();
    assert_eq!(s(&c.line("CLUSTER ADDSLOTSRANGE 0 16383")), "+OK\r\n");
    // A fresh master waits a moment before its state turns ok.
    wait_for(30, "stock cluster_state:ok", || {
        c.val("CLUSTER INFO")
            .as_str()
            .starts_with("cluster_state:ok")
    });
    r
}

#[test]
fn multi_key_rules_match_stock_redis() {
    let dir = TempDir::new("cluster-stock");
    let stock = stock_cluster(&dir);
    let cl = two_nodes();
    let mut r = stock.conn();
    let mut k = cl.a.conn();
    // A key of node A in another slot than bar's (5061), found by slot.
    let x1 = (0..)
        .map(|i| format!("x{i}"))
        .find(|key| {
            let slot = int(&mut r, &format!("CLUSTER KEYSLOT {key}"));
            slot < 8192 && slot != 5061
        })
        .unwrap();
    let script_get = "\"return redis.call('get', KEYS[1])\"";
    let lines: Vec<String> = [
        "MSET bar 1 foo 2",
        "MSET {bar}a 1 {bar}b 2",
        "MGET {bar}a {bar}b",
        "MGET bar foo",
        "DEL bar foo",
        "DEL {bar}a {bar}b",
        "EXISTS bar {bar}a",
        "SADD {bar}s1 a b",
        "SADD {bar}s2 c",
        "SUNIONSTORE {bar}d {bar}s1 {bar}s2",
        "SUNIONSTORE bar {bar}s1 foo",
        "SINTER {bar}s1 X1",
        "RENAME bar foo",
        "RENAME {bar}d {bar}e",
        "SCARD {bar}e",
        "LMOVE {bar}l X1 LEFT RIGHT",
        "COPY {bar}e foo",
        "COPY {bar}e {bar}f DB 1",
        "COPY {bar}e {bar}f",
        "MOVE {bar}e 1",
        "SWAPDB 0 1",
        "FAILOVER",
        "FAILOVER ABORT",
        "SELECT 1",
        "SELECT 0",
        "SELECT x",
        "WATCH bar X1",
        "SSUBSCRIBE bar X1",
        "SPUBLISH bar msg",
        "PFMERGE {bar}h X1",
        "XREAD STREAMS {bar}s X1 0 0",
        "BLPOP bar X1 0",
        "READONLY",
        "READWRITE",
        "ASKING",
        "CLUSTER KEYSLOT foo",
        "CLUSTER KEYSLOT {u1}a",
        "CLUSTER KEYSLOT {}x",
        "CLUSTER COUNTKEYSINSLOT 5061",
        "CLUSTER COUNTKEYSINSLOT 16384",
        "CLUSTER COUNTKEYSINSLOT -1",
        "CLUSTER COUNTKEYSINSLOT x",
        "CLUSTER GETKEYSINSLOT 5061 0",
        "CLUSTER GETKEYSINSLOT 1 -1",
        "CLUSTER GETKEYSINSLOT 16384 1",
        "CLUSTER GETKEYSINSLOT x 1",
        "CLUSTER FOO",
        "CLUSTER INFO extra",
        "CLUSTER KEYSLOT",
        "CLUSTER HELP",
        "CLUSTER REPLICAS 0000000000000000000000000000000000000000",
        "COMMAND INFO asking readonly readwrite",
    ]
    .iter()
    .map(|l| l.replace("X1", &x1))
    .collect();
    let mut mismatches = Vec::new();
    let mut compare = |line: &str, k: &mut Conn, r: &mut Conn| {
        let (kr, rr) = (k.line(line), r.line(line));
        if kr != rr {
            mismatches.push(format!(
                "{line}\n    keel:  {}\n    redis: {}",
                show(&kr),
                show(&rr)
            ));
        }
    };
    for line in &lines {
        compare(line, &mut k, &mut r);
    }
    // Scripts: declared keys must share a slot.
    for line in [
        format!("EVAL {script_get} 2 bar foo"),
        format!("EVAL {script_get} 2 bar {{bar}}z"),
        format!("EVAL {script_get} 1 {{bar}}a"),
        // A shebang script may not wander off its slot; a plain one may.
        format!(
            "EVAL \"#!lua\nredis.call('get', KEYS[1]) return redis.call('get', '{x1}')\" 1 bar"
        ),
        format!("EVAL \"redis.call('set', KEYS[1], 1) return redis.call('get', '{x1}')\" 1 bar"),
        "EVAL \"#!lua flags=no-cluster\nreturn 1\" 0".to_string(),
        "EVAL \"return 1\" 0".to_string(),
    ] {
        compare(&line, &mut k, &mut r);
    }
    // Transactions: every queued command is checked when queued; EXEC
    // checks that the whole transaction lives in one slot.
    let txs: [&[&str]; 4] = [
        &["MULTI", "SET bar 1", "SET X1 2", "EXEC", "GET bar"],
        &["MULTI", "SET {bar}q 1", "GET {bar}q", "INCR bar", "EXEC"],
        &["MULTI", "MSET bar 1 X1 2", "SET bar 3", "EXEC"],
        &["MULTI", "PING", "EXEC"],
    ];
    for tx in txs {
        for line in tx {
            compare(&line.replace("X1", &x1), &mut k, &mut r);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // Slot contents agree (order aside).
    let sorted = |c: &mut Conn| -> BTreeSet<Vec<u8>> {
        let Resp::Array(v) = c.val("CLUSTER GETKEYSINSLOT 5061 100") else {
            panic!("not an array")
        };
        v.iter().map(|x| x.as_bytes().to_vec()).collect()
    };
    assert_eq!(sorted(&mut k), sorted(&mut r));
}

#[test]
fn cluster_replies_have_redis_shapes() {
    let cl = two_nodes();
    let (pa, pb) = (cl.a.port, cl.b.port);
    let (ida, idb) = (node_id(pa), node_id(pb));
    let mut c = cl.a.conn();
    assert_eq!(s(&c.line("CLUSTER MYID")), format!("$40\r\n{ida}\r\n"));
    assert_eq!(int(&mut cl.b.conn(), "CLUSTER KEYSLOT foo"), 12182);
    let nodes = format!(
        "{ida} 127.0.0.1:{pa}@{} myself,master - 0 0 1 connected 0-8191\n\
         {idb} 127.0.0.1:{pb}@{} master - 0 0 2 connected 8192-16383\n",
        pa as u32 + 10000,
        pb as u32 + 10000
    );
    assert_eq!(c.val("CLUSTER NODES").as_str(), nodes);
    let info = c.val("CLUSTER INFO").as_str();
    assert_eq!(
        info,
        "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:2\r\n\
         cluster_size:2\r\ncluster_current_epoch:2\r\ncluster_my_epoch:1\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n"
    );
    let slot_entry = |a: u32, b: u32, port: u16, id: &str, empty_map: &str| {
        format!(
            "*3\r\n:{a}\r\n:{b}\r\n*4\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$40\r\n{id}\r\n{empty_map}\r\n"
        )
    };
    assert_eq!(
        s(&c.line("CLUSTER SLOTS")),
        format!(
            "*2\r\n{}{}",
            slot_entry(0, 8191, pa, &ida, "*0"),
            slot_entry(8192, 16383, pb, &idb, "*0")
        )
    );
    // RESP2 maps are flat arrays of twice the length.
    let shard = |a: u32, b: u32, port: u16, id: &str, resp3: bool| {
        let (head, outer, inner) = if resp3 { ("%", 2, 7) } else { ("*", 4, 14) };
        format!(
            "{head}{outer}\r\n$5\r\nslots\r\n*2\r\n:{a}\r\n:{b}\r\n$5\r\nnodes\r\n*1\r\n{head}{inner}\r\n\
             $2\r\nid\r\n$40\r\n{id}\r\n$4\r\nport\r\n:{port}\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
             $8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
             $18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
        )
    };
    assert_eq!(
        s(&c.line("CLUSTER SHARDS")),
        format!(
            "*2\r\n{}{}",
            shard(0, 8191, pa, &ida, false),
            shard(8192, 16383, pb, &idb, false)
        )
    );
    assert_eq!(s(&c.line("CLUSTER LINKS")), "*0\r\n");
    assert_eq!(s(&c.line(&format!("CLUSTER REPLICAS {idb}"))), "*0\r\n");
    assert!(s(&c.line("CLUSTER ADDSLOTS 1")).starts_with("-ERR CLUSTER ADDSLOTS is not supported"));

    // RESP3: maps and verbatim strings where Redis uses them.
    c.line("HELLO 3");
    assert_eq!(
        s(&c.line("CLUSTER SLOTS")),
        format!(
            "*2\r\n{}{}",
            slot_entry(0, 8191, pa, &ida, "%0"),
            slot_entry(8192, 16383, pb, &idb, "%0")
        )
    );
    assert_eq!(
        s(&c.line("CLUSTER SHARDS")),
        format!(
            "*2\r\n{}{}",
            shard(0, 8191, pa, &ida, true),
            shard(8192, 16383, pb, &idb, true)
        )
    );
    assert_eq!(
        s(&c.line("CLUSTER NODES")),
        format!("={}\r\ntxt:{nodes}\r\n", nodes.len() + 4)
    );
    assert!(s(&c.line("CLUSTER INFO")).starts_with("="));
    let hello = s(&c.line("HELLO 2"));
    assert!(hello.contains("$4\r\nmode\r\n$7\r\ncluster\r\n"), "{hello}");

    assert!(s(&c.line("INFO server")).contains("redis_mode:cluster\r\n"));
    assert!(s(&c.line("INFO cluster")).contains("cluster_enabled:1\r\n"));
    assert_eq!(
        s(&c.line("CONFIG GET cluster-enabled")),
        "*2\r\n$15\r\ncluster-enabled\r\n$3\r\nyes\r\n"
    );
    assert!(s(&c.line("CONFIG SET cluster-enabled no")).starts_with("-ERR"));
    // COMMAND knows every CLUSTER subcommand, as Redis 7.0.
    let Resp::Array(info) = c.val("COMMAND INFO cluster") else {
        panic!("COMMAND INFO")
    };
    let Resp::Array(entry) = &info[0] else {
        panic!("COMMAND INFO cluster entry")
    };
    let Resp::Array(subs) = &entry[9] else {
        panic!("subcommands")
    };
    assert_eq!(subs.len(), 27);
    let docs = s(&c.line("COMMAND DOCS cluster"));
    assert!(docs.contains("cluster|getkeysinslot"), "{docs}");
}

#[test]
fn cluster_disabled_answers_like_redis() {
    let keel = Server::keel(2, &[]);
    let redis = Server::redis(&[]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for line in [
        "CLUSTER INFO",
        "CLUSTER SLOTS",
        "CLUSTER NODES",
        "CLUSTER KEYSLOT foo",
        "CLUSTER COUNTKEYSINSLOT 1",
        "CLUSTER FOO",
        "CLUSTER INFO x",
        "READONLY",
        "READWRITE",
        "ASKING",
        "MSET a 1 b 2",
        "SELECT 1",
        "INFO cluster",
    ] {
        assert_eq!(show(&k.line(line)), show(&r.line(line)), "{line}");
    }
}

#[test]
fn bad_slot_maps_stop_startup() {
    let p = free_port().to_string();
    let me = format!("127.0.0.1:{p}");
    let run = |maps: &[String]| {
        let mut args: Vec<String> = vec![
            "--port".into(),
            p.clone(),
            "--cluster-enabled".into(),
            "yes".into(),
        ];
        for m in maps {
            args.extend(["--cluster-node".to_string(), m.clone()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{maps:?} must not start");
        s(&out.stderr)
    };
    let e = run(&[format!("{me} 0-9000"), "127.0.0.1:1 9000-16383".into()]);
    assert!(e.contains("slot 9000 is already assigned"), "{e}");
    assert!(run(&[format!("{me} 0-16384")]).contains("slot 16384 is out of range"));
    assert!(run(&["127.0.0.1:1 0-16383".into()]).contains("no entry for this node"));
    // Without any `cluster-node` line the node is a cluster bus member
    // instead (tests/cluster_bus.rs).
}

#[test]
fn redis_benchmark_cluster_mode_spreads_requests() {
    require_tool("redis-benchmark");
    let cl = two_nodes();
    let out = Command::new("redis-benchmark")
        .args([
            "--cluster",
            "-p",
            &cl.a.port.to_string(),
            "-t",
            "set,get",
            "-n",
            "20000",
            "-r",
            "1000",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-benchmark failed: {}\n{}",
        s(&out.stdout),
        s(&out.stderr)
    );
    let text = s(&out.stdout);
    assert!(text.contains("Cluster has 2 master nodes"), "{text}");
    let (na, nb) = (
        int(&mut cl.a.conn(), "DBSIZE"),
        int(&mut cl.b.conn(), "DBSIZE"),
    );
    assert!(na > 0 && nb > 0, "requests on both nodes: {na} and {nb}");
}

#[test]
fn a_replica_applies_its_masters_stream_without_redirects() {
    // The replica serves 0-8191; 8192-16383 belongs to a node that is not
    // running. Its master (plain keel) writes keys of both halves.
    let master = Server::keel(2, &["--repl-diskless-sync-delay", "0"]);
    let dir = TempDir::new("cluster-replica");
    let (pr, absent) = (free_port(), free_port());
    let mine = format!("127.0.0.1:{pr} 0-8191");
    let theirs = format!("127.0.0.1:{absent} 8192-16383");
    let mp = master.port.to_string();
    let args = [
        "--cluster-enabled",
        "yes",
        "--cluster-node",
        &mine,
        "--cluster-node",
        &theirs,
        "--save",
        "",
        "--replicaof",
        "127.0.0.1",
        &mp,
    ];
    let replica = DirKeel::start_on(pr, &dir.0, 2, &args);
    let (mut m, mut r) = (master.conn(), replica.conn());
    for i in 0..200 {
        m.line(&format!("SET k{i} {i}"));
    }
    m.line("SET foo 1");
    m.line("MSET bar 1 {bar}x 2");
    common::repl::wait_synced(&mut m, &mut r, "the replica's offset");
    assert_eq!(int(&mut r, "DBSIZE"), 203, "every key applied");
    assert_eq!(
        int(&mut r, "CLUSTER COUNTKEYSINSLOT 12182"),
        1,
        "foo is there"
    );
    // Clients are still redirected for slots of the other node.
    assert_eq!(
        s(&r.line("GET foo")),
        format!("-MOVED 12182 127.0.0.1:{absent}\r\n")
    );
    assert_eq!(s(&r.line("GET {bar}x")), "$1\r\n2\r\n");
}
