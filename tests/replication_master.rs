//! keel as a master: stock redis-server 7.0 replicas follow it (full sync
//! by disk and diskless transfer, the stream of a write load over every
//! shard and several DBs, partial resync after a cut link), the stream's
//! order respects causality, PSYNC's acceptance rule, WAIT, ROLE, INFO,
//! min-replicas-to-write, old SYNC, output limits. Real processes, real
//! sockets.

mod common;

use std::time::{Duration, Instant};

use common::repl::{
    RawReplica, StockReplica, TempDir, dbsizes, digest, info_field, info_int, wait_for, wait_synced,
};
use common::{Conn, DirKeel, Server};

/// keel on its own data dir (a disk-based sync writes its RDB there).
fn keel(shards: usize, extra: &[&str]) -> (Server, TempDir) {
    let dir = TempDir::new("master");
    let mut args = vec!["--dir", dir.path()];
    args.extend_from_slice(extra);
    (Server::keel(shards, &args), dir)
}

fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// Data of several types in DBs 0, 3 and 9, keys over every shard.
fn load_data(c: &mut Conn, tag: &str, n: usize) {
    for db in ["0", "3", "9"] {
        c.cmd(&["SELECT", db]);
        for i in 0..n {
            let k = format!("{tag}:s:{i}");
            c.cmd(&["SET", &k, &format!("v{i}")]);
            c.cmd(&["RPUSH", &format!("{tag}:l:{}", i % 7), &i.to_string()]);
            c.cmd(&[
                "HSET",
                &format!("{tag}:h:{}", i % 5),
                &format!("f{i}"),
                &i.to_string(),
            ]);
            c.cmd(&[
                "ZADD",
                &format!("{tag}:z:{}", i % 3),
                &i.to_string(),
                &format!("m{i}"),
            ]);
            c.cmd(&["SADD", &format!("{tag}:set:{}", i % 4), &format!("m{i}")]);
            if i % 10 == 0 {
                c.cmd(&["SET", &format!("{tag}:ttl:{i}"), "x", "EX", "1000"]);
                c.cmd(&["INCRBY", &format!("{tag}:ctr"), "3"]);
            }
        }
    }
    c.cmd(&["SELECT", "0"]);
}

/// Writes of every kind the stream must carry: MULTI/EXEC across shards
/// and DBs, scripts in both replication modes, expiring keys, deletes.
fn write_mix(c: &mut Conn, tag: &str) {
    c.cmd(&["SELECT", "5"]);
    assert_eq!(c.line("MULTI"), b"+OK\r\n");
    for i in 0..10 {
        c.cmd(&["INCR", &format!("{tag}:tx:{i}")]);
    }
    c.cmd(&["SELECT", "6"]);
    c.cmd(&["MSET", &format!("{tag}:a"), "1", &format!("{tag}:b"), "2"]);
    let exec = s(c.line("EXEC"));
    assert!(exec.starts_with("*12"), "EXEC: {exec}");
    c.cmd(&["SELECT", "0"]);
    // Effects replication (the default): the writes, as MULTI/EXEC.
    let script = "for i=1,#KEYS do redis.call('INCRBY', KEYS[i], ARGV[1]) end return #KEYS";
    let r = c.cmd(&[
        "EVAL",
        script,
        "3",
        &format!("{tag}:e1"),
        &format!("{tag}:e2"),
        &format!("{tag}:e3"),
        "7",
    ]);
    assert_eq!(r, b":3\r\n");
    // A script that reads the clock: only its effects give replicas the same value.
    let r = c.cmd(&[
        "EVAL",
        "redis.call('SET', KEYS[1], tostring(redis.call('TIME')[2])) return 1",
        "1",
        &format!("{tag}:time"),
    ]);
    assert_eq!(r, b":1\r\n");
    // Verbatim replication: EVAL, then EVALSHA (sent as EVAL the first time).
    assert_eq!(c.line("CONFIG SET lua-replicate-commands no"), b"+OK\r\n");
    let body = "redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LLEN', KEYS[1])";
    let sha = s(c.cmd(&["SCRIPT", "LOAD", body]));
    let sha = sha
        .trim()
        .trim_start_matches('$')
        .split("\r\n")
        .nth(1)
        .unwrap()
        .to_string();
    for i in 0..5 {
        c.cmd(&["EVALSHA", &sha, "1", &format!("{tag}:vl"), &i.to_string()]);
    }
    c.cmd(&["EVAL", body, "1", &format!("{tag}:vl2"), "x"]);
    assert_eq!(c.line("CONFIG SET lua-replicate-commands yes"), b"+OK\r\n");
    // Keys that expire on the master: replicas get DELs.
    for i in 0..20 {
        c.cmd(&["SET", &format!("{tag}:short:{i}"), "v", "PX", "50"]);
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..10 {
        // Lazy expiry on access, and active expiry for the rest.
        c.cmd(&["GET", &format!("{tag}:short:{i}")]);
    }
    c.cmd(&[
        "DEL",
        &format!("{tag}:s:1"),
        &format!("{tag}:s:2"),
        &format!("{tag}:missing"),
    ]);
    c.cmd(&["SELECT", "9"]);
    c.cmd(&["FLUSHDB"]);
    c.cmd(&["SELECT", "0"]);
}

/// Waits for the replica to match keel and compares the datasets.
fn assert_same(keel: &mut Conn, replica: &mut Conn, what: &str) {
    // Expired keys leave keel by active expiry within a few cycles.
    wait_for(20, &format!("{what}: expired keys gone from keel"), || {
        (0..20).all(|i| keel.cmd(&["EXISTS", &format!("w:short:{i}")]) == b":0\r\n")
    });
    std::thread::sleep(Duration::from_millis(300));
    wait_synced(keel, replica, what);
    assert_eq!(
        digest(keel),
        digest(replica),
        "{what}: DEBUG DIGEST differs"
    );
    assert_eq!(
        dbsizes(keel, 16),
        dbsizes(replica, 16),
        "{what}: DBSIZE per DB differs"
    );
    keel.cmd(&["SELECT", "0"]);
    replica.cmd(&["SELECT", "0"]);
}

fn follow(diskless: bool) {
    let mode = if diskless { "yes" } else { "no" };
    let (keel, _dir) = keel(
        4,
        &[
            "--repl-diskless-sync",
            mode,
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    let mut k = keel.conn();
    load_data(&mut k, "pre", 60);
    let replica = StockReplica::start(keel.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut k, &mut r, "initial sync");
    let log = replica.log();
    if diskless {
        assert!(
            log.contains("receiving streamed RDB from master with EOF"),
            "not diskless:\n{log}"
        );
    } else {
        assert!(
            log.contains("bytes from master to disk"),
            "not disk-based:\n{log}"
        );
    }
    assert_eq!(info_int(&mut k, "stats", "sync_full"), 1);
    assert_eq!(info_int(&mut k, "replication", "connected_slaves"), 1);
    wait_for(10, "slave0 online", || {
        info_field(&mut k, "replication", "slave0").contains("state=online")
    });
    let role = s(k.line("ROLE"));
    assert!(role.starts_with("*3\r\n$6\r\nmaster\r\n:"), "ROLE: {role}");
    assert!(
        role.contains(&format!(
            "${}\r\n{}\r\n",
            replica.server.port.to_string().len(),
            replica.server.port
        )),
        "ROLE lists the replica: {role}"
    );
    assert_same(&mut k, &mut r, "after full sync");
    load_data(&mut k, "post", 40);
    write_mix(&mut k, "w");
    assert_same(&mut k, &mut r, "after the write load");
    // The replica's offset is keel's: the same bytes were counted.
    assert_eq!(
        info_field(&mut k, "replication", "master_replid"),
        info_field(&mut r, "replication", "master_replid")
    );
}

#[test]
fn stock_replica_follows_keel_disk_sync() {
    follow(false);
}

#[test]
fn stock_replica_follows_keel_diskless_sync() {
    follow(true);
}

#[test]
fn cut_link_resumes_with_partial_resync() {
    let (keel, _dir) = keel(4, &["--repl-diskless-sync-delay", "0"]);
    let mut k = keel.conn();
    let replica = StockReplica::start(keel.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut k, &mut r, "initial sync");
    load_data(&mut k, "a", 30);
    // Writes go on while the link is cut twice, once from each side.
    let port = keel.port;
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(port);
        for i in 0..3000 {
            w.cmd(&["INCR", &format!("cnt:{}", i % 13)]);
            w.cmd(&["RPUSH", &format!("seq:{}", i % 5), &i.to_string()]);
        }
    });
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(s(k.line("CLIENT KILL TYPE replica")), ":1\r\n");
    std::thread::sleep(Duration::from_millis(300));
    wait_for(20, "link back up", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
    });
    let killed = s(r.line("CLIENT KILL TYPE master"));
    assert_eq!(killed, ":1\r\n");
    writer.join().unwrap();
    wait_synced(&mut k, &mut r, "after the cuts");
    assert_eq!(
        digest(&mut k),
        digest(&mut r),
        "digest after partial resyncs"
    );
    assert_eq!(
        info_int(&mut k, "stats", "sync_full"),
        1,
        "a cut link must not cost a full sync"
    );
    assert!(
        info_int(&mut k, "stats", "sync_partial_ok") >= 2,
        "partial resyncs counted"
    );
    let log = replica.log();
    assert!(
        log.contains("Successful partial resynchronization with master"),
        "replica log:\n{log}"
    );
}

/// Chained clients on different shards: each write is sent only after the
/// previous one (by another connection, on another shard) was acknowledged,
/// so the stream must carry them in that order.
#[test]
fn stream_order_respects_causality() {
    let (keel, _dir) = keel(4, &[]);
    let mut k = keel.conn();
    let mut raw = RawReplica::connect(keel.port);
    let reply = raw.psync("?", -1, false);
    assert!(reply.starts_with("+FULLRESYNC "), "{reply}");
    raw.read_rdb();
    let mut clients: Vec<Conn> = (0..6).map(|_| keel.conn()).collect();
    let steps = 1500;
    for n in 0..steps {
        let c = &mut clients[n % 6];
        // Keys with different tags land on different shards.
        let key = format!("chain:{{t{}}}", n % 11);
        assert_eq!(c.cmd(&["SET", &key, &n.to_string()]), b"+OK\r\n");
    }
    let mut seen = Vec::new();
    while seen.len() < steps {
        let Some((args, _)) = raw.command(Duration::from_secs(10)) else {
            panic!("stream ended after {} of {steps} writes", seen.len());
        };
        if args[0].eq_ignore_ascii_case("set") {
            seen.push(args[2].parse::<usize>().unwrap());
        }
    }
    let expected: Vec<usize> = (0..steps).collect();
    assert_eq!(
        seen, expected,
        "the stream reordered causally chained writes"
    );
    drop(k.cmd(&["PING"]));
}

/// The stream's bytes are counted exactly: FULLRESYNC offset + bytes read
/// = master_repl_offset; then PSYNC's acceptance rule.
#[test]
fn psync_offsets_and_acceptance() {
    let (keel, _dir) = keel(
        2,
        &[
            "--repl-backlog-size",
            "16kb",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    let mut k = keel.conn();
    k.cmd(&["SET", "before", "1"]);
    let mut raw = RawReplica::connect(keel.port);
    let reply = raw.psync("?", -1, true);
    let parts: Vec<&str> = reply.split(' ').collect();
    assert_eq!(parts[0], "+FULLRESYNC", "{reply}");
    let replid = parts[1].to_string();
    assert_eq!(replid.len(), 40);
    let mut offset: i64 = parts[2].parse().unwrap();
    let rdb = raw.read_rdb();
    assert!(
        rdb.starts_with(b"REDIS0010"),
        "RDB version 10 for 7.0 replicas"
    );
    // Diskless: nothing comes before our first ACK.
    k.cmd(&["SET", "x", "1"]);
    assert!(
        raw.command(Duration::from_millis(300)).is_none(),
        "stream sent before the first ACK"
    );
    raw.ack(offset);
    let (args, n) = raw
        .command(Duration::from_secs(5))
        .expect("stream after ACK");
    assert_eq!(
        args[0].to_ascii_uppercase(),
        "SELECT",
        "a full sync's stream starts with SELECT"
    );
    offset += n as i64;
    let (args, n) = raw.command(Duration::from_secs(5)).unwrap();
    assert_eq!(args, ["SET", "x", "1"]);
    offset += n as i64;
    for i in 0..50 {
        k.cmd(&["SET", &format!("k{i}"), &"v".repeat(100)]);
    }
    let master_off = info_int(&mut k, "replication", "master_repl_offset");
    while offset < master_off {
        let (_, n) = raw.command(Duration::from_secs(5)).expect("stream");
        offset += n as i64;
    }
    assert_eq!(
        offset, master_off,
        "stream bytes counted as master_repl_offset"
    );
    raw.ack(offset);
    wait_for(5, "ACK seen", || {
        info_field(&mut k, "replication", "slave0").contains(&format!("offset={offset}"))
    });
    assert_eq!(s(k.line("WAIT 1 2000")), ":1\r\n");
    drop(raw);
    wait_for(5, "replica gone", || {
        info_int(&mut k, "replication", "connected_slaves") == 0
    });
    // Up to date: +CONTINUE with zero bytes.
    let mut again = RawReplica::connect(keel.port);
    let reply = again.psync(&replid, offset + 1, true);
    assert_eq!(reply, format!("+CONTINUE {replid}"));
    drop(again);
    wait_for(5, "replica gone", || {
        info_int(&mut k, "replication", "connected_slaves") == 0
    });
    // Ahead of the master, or an unknown id: full sync.
    let mut ahead = RawReplica::connect(keel.port);
    assert!(
        ahead
            .psync(&replid, offset + 100, true)
            .starts_with("+FULLRESYNC")
    );
    drop(ahead);
    let mut other = RawReplica::connect(keel.port);
    assert!(
        other
            .psync(&"a".repeat(40), offset + 1, true)
            .starts_with("+FULLRESYNC")
    );
    drop(other);
    wait_for(10, "replicas gone", || {
        info_int(&mut k, "replication", "connected_slaves") == 0
    });
    // Past the backlog: far more than 16 KB written since.
    let off_now = info_int(&mut k, "replication", "master_repl_offset");
    let replid_now = info_field(&mut k, "replication", "master_replid");
    for i in 0..400 {
        k.cmd(&["SET", &format!("big{i}"), &"x".repeat(200)]);
    }
    let first = info_int(&mut k, "replication", "repl_backlog_first_byte_offset");
    assert!(first > off_now + 1, "backlog trimmed (first byte {first})");
    let mut late = RawReplica::connect(keel.port);
    assert!(
        late.psync(&replid_now, off_now + 1, true)
            .starts_with("+FULLRESYNC")
    );
    let err_before = info_int(&mut k, "stats", "sync_partial_err");
    assert!(err_before >= 2, "sync_partial_err counts refused PSYNCs");
    // A bad offset is an error, not a sync, and the connection lives on.
    let mut c = keel.conn();
    assert_eq!(
        s(c.line("PSYNC ? notanumber")),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(c.line("PING"), b"+PONG\r\n");
}

#[test]
fn old_sync_protocol() {
    let (keel, _dir) = keel(2, &[]);
    let mut k = keel.conn();
    k.cmd(&["SET", "a", "1"]);
    let mut raw = RawReplica::connect(keel.port);
    raw.s.set_nodelay(true).ok();
    std::io::Write::write_all(&mut raw.s, b"SYNC\r\n").unwrap();
    let rdb = raw.read_rdb();
    assert!(rdb.starts_with(b"REDIS"), "SYNC answers with the bare RDB");
    k.cmd(&["SET", "b", "2"]);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            raw.command(Duration::from_secs(5))
                .expect("stream after SYNC")
                .0,
        );
    }
    assert!(got.iter().any(|a| a == &["SET", "b", "2"]), "{got:?}");
}

#[test]
fn wait_and_min_replicas() {
    let (keel, _dir) = keel(2, &["--repl-diskless-sync-delay", "0"]);
    let mut k = keel.conn();
    assert_eq!(s(k.line("WAIT 0 0")), ":0\r\n");
    let t = Instant::now();
    assert_eq!(s(k.line("WAIT 1 200")), ":0\r\n");
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "WAIT returned before its timeout"
    );
    let replica = StockReplica::start(keel.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut k, &mut r, "sync");
    k.cmd(&["SET", "w", "1"]);
    assert_eq!(s(k.line("WAIT 1 5000")), ":1\r\n");
    let t = Instant::now();
    assert_eq!(s(k.line("WAIT 2 300")), ":1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(290));
    assert_eq!(r.cmd(&["GET", "w"]), b"$1\r\n1\r\n");
    // MULTI: WAIT answers at once.
    k.line("MULTI");
    k.line("WAIT 5 10000");
    let exec = s(k.line("EXEC"));
    assert_eq!(exec, "*1\r\n:1\r\n");
    assert_eq!(s(k.line("CONFIG SET min-replicas-to-write 2")), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s(k.line("SET blocked 1")),
        "-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(s(k.line("GET w")), "$1\r\n1\r\n", "reads still work");
    assert_eq!(info_int(&mut k, "replication", "min_slaves_good_slaves"), 1);
    assert_eq!(s(k.line("CONFIG SET min-replicas-to-write 1")), "+OK\r\n");
    wait_for(5, "writes allowed", || {
        k.cmd(&["SET", "ok", "1"]) == b"+OK\r\n"
    });
}

/// A replica that stops reading is dropped at the output buffer limit
/// instead of growing memory without bound.
#[test]
fn replica_output_limit_drops_a_stuck_replica() {
    let (keel, _dir) = keel(
        2,
        &[
            "--client-output-buffer-limit",
            "replica 1mb 512kb 1",
            "--repl-backlog-size",
            "16kb",
        ],
    );
    let mut k = keel.conn();
    let mut raw = RawReplica::connect(keel.port);
    assert!(raw.psync("?", -1, false).starts_with("+FULLRESYNC"));
    raw.read_rdb();
    wait_for(5, "replica online", || {
        info_field(&mut k, "replication", "slave0").contains("online")
    });
    // The raw replica reads nothing more: socket buffers fill, then the lag.
    let big = "x".repeat(64 * 1024);
    for i in 0..400 {
        k.cmd(&["SET", &format!("b{}", i % 10), &big]);
        if info_int(&mut k, "replication", "connected_slaves") == 0 {
            break;
        }
    }
    wait_for(10, "stuck replica dropped", || {
        info_int(&mut k, "replication", "connected_slaves") == 0
    });
    assert!(
        keel.log_text().contains("output buffer limits"),
        "log:\n{}",
        keel.log_text()
    );
    assert_eq!(k.line("PING"), b"+PONG\r\n");
}

/// A master restarted from its own RDB (SHUTDOWN, then start with another
/// shard count) keeps its replicas: the file's replid becomes replid2, keys
/// that expired meanwhile reach them as DELs from the backlog, and they
/// resync partially (Redis 7.0 semantics).
#[test]
fn master_restart_keeps_partial_resync() {
    let dir = TempDir::new("restart");
    let extra = ["--save", "3600 1", "--repl-diskless-sync-delay", "0"];
    let mut k1 = DirKeel::start(&dir.0, 2, &extra);
    let port = k1.port;
    let mut k = k1.conn();
    let replica = StockReplica::start(port, &[]);
    let mut r = replica.conn();
    load_data(&mut k, "a", 20);
    assert_eq!(k.line("DEBUG SET-ACTIVE-EXPIRE 0"), b"+OK\r\n");
    for db in ["0", "2"] {
        k.cmd(&["SELECT", db]);
        for i in 0..50 {
            k.cmd(&["SET", &format!("short:{i}"), "v", "PX", "400"]);
        }
    }
    k.cmd(&["SELECT", "0"]);
    wait_synced(&mut k, &mut r, "before the restart");
    let old_id = info_field(&mut k, "replication", "master_replid");
    let old_off = info_int(&mut k, "replication", "master_repl_offset");
    // As Redis's test: once the replica acknowledged everything, the
    // shutdown has no GETACK to send (which would move the offset).
    wait_for(10, "the replica's ACK", || {
        info_field(&mut k, "replication", "slave0").contains(&format!("offset={old_off},"))
    });
    k.send_lossy(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    k1.wait_exit();
    std::thread::sleep(Duration::from_millis(600));
    let k2 = DirKeel::start_on(port, &dir.0, 4, &extra);
    let mut k = k2.conn();
    assert_eq!(info_field(&mut k, "replication", "master_replid2"), old_id);
    assert_eq!(
        info_int(&mut k, "replication", "second_repl_offset"),
        old_off + 1
    );
    assert_ne!(info_field(&mut k, "replication", "master_replid"), old_id);
    assert_eq!(
        info_int(&mut k, "persistence", "rdb_last_load_keys_expired"),
        100
    );
    assert!(
        info_int(&mut k, "replication", "master_repl_offset") > old_off,
        "DELs in the backlog"
    );
    wait_synced(&mut k, &mut r, "after the restart");
    assert_eq!(
        info_int(&mut k, "stats", "sync_full"),
        0,
        "the restart cost a full sync"
    );
    assert_eq!(info_int(&mut k, "stats", "sync_partial_ok"), 1);
    assert_eq!(digest(&mut k), digest(&mut r), "digest after the restart");
    assert_eq!(dbsizes(&mut k, 4), dbsizes(&mut r, 4));
    // The replica follows the new history.
    assert_eq!(
        info_field(&mut r, "replication", "master_replid"),
        info_field(&mut k, "replication", "master_replid")
    );
    k.cmd(&["SET", "after", "1"]);
    wait_synced(&mut k, &mut r, "a write after the restart");
    assert_eq!(r.cmd(&["GET", "after"]), b"$1\r\n1\r\n");
}

/// Regression (found by the torture test): a stock Redis 7 replica forgets
/// script bodies when it restarts, so verbatim EVALSHA in the backlog it
/// resumes from would fail there (NOSCRIPT) and the data diverge. Once
/// such a replica attached, keel sends every verbatim script as EVAL.
#[test]
fn stock_replica_restart_with_verbatim_evalsha_in_backlog() {
    let (keel, _dir) = keel(
        4,
        &[
            "--lua-replicate-commands",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    let mut k = keel.conn();
    let body = "redis.call('RPUSH', KEYS[1], ARGV[1]) return 1";
    let sha = s(k.cmd(&["SCRIPT", "LOAD", body]));
    let sha = sha.split("\r\n").nth(1).unwrap().to_string();
    let rdir = TempDir::new("stockrestart");
    let kp = keel.port.to_string();
    let args = [
        "--dir",
        rdir.path(),
        "--replicaof",
        "127.0.0.1",
        &kp,
        "--save",
        "3600 1",
        "--enable-debug-command",
        "yes",
    ];
    let replica = Server::redis(&args);
    let mut r = replica.conn();
    for i in 0..5 {
        k.cmd(&["EVALSHA", &sha, "1", "list", &i.to_string()]);
    }
    wait_synced(&mut k, &mut r, "initial");
    r.send_lossy(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    drop(r);
    std::thread::sleep(Duration::from_millis(300));
    drop(replica);
    for i in 5..10 {
        k.cmd(&["EVALSHA", &sha, "1", "list", &i.to_string()]);
    }
    // The same data dir (its RDB carries keel's replid and its offset).
    let replica = Server::redis(&args);
    let mut r = replica.conn();
    wait_synced(&mut k, &mut r, "after the restart");
    assert_eq!(
        r.cmd(&["LLEN", "list"]),
        b":10\r\n",
        "every EVALSHA reached the replica"
    );
    assert_eq!(digest(&mut k), digest(&mut r));
    assert!(!replica.log_text().contains("NOSCRIPT"));
}

/// SHUTDOWN gives lagging replicas up to shutdown-timeout to acknowledge
/// the whole stream (they can then PSYNC to the restarted master);
/// SHUTDOWN NOW does not wait.
#[test]
fn shutdown_waits_for_lagging_replicas_unless_now() {
    for now in [false, true] {
        let (keel, _dir) = keel(
            2,
            &["--shutdown-timeout", "1", "--repl-diskless-sync-delay", "0"],
        );
        let mut k = keel.conn();
        let mut raw = RawReplica::connect(keel.port);
        assert!(raw.psync("?", -1, false).starts_with("+FULLRESYNC"));
        raw.read_rdb();
        wait_for(5, "replica online", || {
            info_field(&mut k, "replication", "slave0").contains("online")
        });
        k.cmd(&["SET", "x", "1"]);
        // The raw replica reads the write but never acknowledges it.
        let t = Instant::now();
        k.send_lossy(if now {
            b"*2\r\n$8\r\nSHUTDOWN\r\n$3\r\nNOW\r\n"
        } else {
            b"*1\r\n$8\r\nSHUTDOWN\r\n"
        });
        let (_, closed) = k.read_until_close(Duration::from_secs(5));
        assert!(closed);
        let took = t.elapsed();
        let log = keel.log_text();
        if now {
            assert!(
                took < Duration::from_millis(900),
                "SHUTDOWN NOW waited {took:?}"
            );
            assert!(!log.contains("Waiting for replicas"), "{log}");
        } else {
            assert!(
                took >= Duration::from_millis(900),
                "SHUTDOWN did not wait: {took:?}"
            );
            assert!(
                log.contains("Waiting for replicas before shutting down"),
                "{log}"
            );
            assert!(log.contains("replicas lagging at shutdown"), "{log}");
        }
    }
}
