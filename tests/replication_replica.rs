//! keel as a replica: of a stock redis-server 7.0 master (disk and
//! diskless), in chains with stock replicas below it, after a cut link,
//! after its own restart (SHUTDOWN and kill -9) with scripts and several
//! DBs in the backlog, through failovers, and against masters that hang up
//! or send garbage. Real processes, real sockets.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::repl::{StockReplica, TempDir, dbsizes, digest, info_field, info_int, wait_synced};
use common::{Conn, DirKeel, Server};

fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

fn redis_master(extra: &[&str]) -> (Server, TempDir) {
    let dir = TempDir::new("rmaster");
    let mut a = vec!["--dir", dir.path()];
    a.extend_from_slice(extra);
    (Server::redis(&a), dir)
}

fn keel_replica_of(port: u16, shards: usize, extra: &[&str]) -> (Server, TempDir) {
    let dir = TempDir::new("kreplica");
    let p = port.to_string();
    let mut a = vec!["--dir", dir.path(), "--replicaof", "127.0.0.1", &p];
    a.extend_from_slice(extra);
    (Server::keel(shards, &a), dir)
}

/// Writes of every type over DBs 0, 2 and 7, MULTI/EXEC, a script, TTLs.
fn writes(c: &mut Conn, tag: &str, n: usize) {
    for db in ["0", "2", "7"] {
        c.cmd(&["SELECT", db]);
        for i in 0..n {
            c.cmd(&["SET", &format!("{tag}:s{i}"), &i.to_string()]);
            c.cmd(&["RPUSH", &format!("{tag}:l{}", i % 5), &i.to_string()]);
            c.cmd(&["HSET", &format!("{tag}:h{}", i % 3), &format!("f{i}"), "v"]);
            c.cmd(&[
                "ZADD",
                &format!("{tag}:z"),
                &i.to_string(),
                &format!("m{i}"),
            ]);
            c.cmd(&["SADD", &format!("{tag}:set"), &format!("m{i}")]);
            c.cmd(&["INCR", &format!("{tag}:ctr")]);
        }
        c.cmd(&["SET", &format!("{tag}:ttl"), "v", "EX", "1000"]);
    }
    c.cmd(&["SELECT", "3"]);
    c.line("MULTI");
    for i in 0..5 {
        c.cmd(&["INCRBY", &format!("{tag}:tx{i}"), "5"]);
    }
    assert!(s(c.line("EXEC")).starts_with("*5"));
    c.cmd(&["SELECT", "0"]);
    let r = c.cmd(&[
        "EVAL",
        "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])",
        "2",
        &format!("{tag}:e1"),
        &format!("{tag}:e2"),
        "x",
    ]);
    assert!(r.starts_with(b":"), "{}", s(r));
    c.cmd(&["DEL", &format!("{tag}:s0")]);
}

/// Values big enough for every non-compact encoding (quicklist of many
/// nodes, hashtable hash/set, skiplist zset, intset, streams with groups).
fn big_values(c: &mut Conn, tag: &str) {
    let many: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let mut a = vec!["RPUSH".to_string(), format!("{tag}:biglist")];
    a.extend(many.iter().map(|i| format!("item-{i}-{}", "x".repeat(40))));
    c.cmd(&a);
    let mut a = vec!["SADD".to_string(), format!("{tag}:intset")];
    a.extend(many.iter().take(100).cloned());
    c.cmd(&a);
    let mut a = vec!["SADD".to_string(), format!("{tag}:bigset")];
    a.extend(many.iter().map(|i| format!("m{i}")));
    c.cmd(&a);
    let mut a = vec!["HSET".to_string(), format!("{tag}:bighash")];
    for i in &many {
        a.push(format!("f{i}"));
        a.push("v".repeat(70));
    }
    c.cmd(&a);
    let mut a = vec!["ZADD".to_string(), format!("{tag}:bigzset")];
    for i in &many {
        a.push(i.clone());
        a.push(format!("m{i}"));
    }
    c.cmd(&a);
    let stream = format!("{tag}:stream");
    for i in 0..50 {
        c.cmd(&["XADD", &stream, "*", "f", &i.to_string()]);
    }
    c.cmd(&["XGROUP", "CREATE", &stream, "g", "0"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "5",
        "STREAMS",
        &stream,
        ">",
    ]);
    c.cmd(&["SET", &format!("{tag}:int"), "12345"]);
    c.cmd(&["SET", &format!("{tag}:bigstr"), &"z".repeat(100_000)]);
}

/// The restarted replica `r` caught up with `m`, which did no full sync
/// beyond the `full_before` it had counted before the restart.
fn resynced_partially(m: &mut Conn, r: &mut Conn, full_before: i64) {
    wait_synced(m, r, "after the restart");
    assert_eq!(
        info_int(m, "stats", "sync_full"),
        full_before,
        "the restart resynced partially"
    );
}

fn assert_same(m: &mut Conn, r: &mut Conn, what: &str) {
    wait_synced(m, r, what);
    assert_eq!(digest(m), digest(r), "{what}: DEBUG DIGEST differs");
    assert_eq!(dbsizes(m, 8), dbsizes(r, 8), "{what}: DBSIZE per DB");
    m.cmd(&["SELECT", "0"]);
    r.cmd(&["SELECT", "0"]);
}

fn follows_stock_master(diskless: &str) {
    let (master, _md) = redis_master(&[
        "--repl-diskless-sync",
        diskless,
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut m = master.conn();
    writes(&mut m, "pre", 30);
    big_values(&mut m, "pre");
    let shards = if diskless == "yes" { 4 } else { 1 };
    let (keel, _kd) = keel_replica_of(master.port, shards, &[]);
    let mut k = keel.conn();
    assert_same(&mut m, &mut k, "after the full sync");
    writes(&mut m, "post", 30);
    big_values(&mut m, "post");
    assert_same(&mut m, &mut k, "after the stream");
    assert_eq!(info_field(&mut k, "replication", "role"), "slave");
    assert_eq!(
        info_field(&mut k, "replication", "master_link_status"),
        "up"
    );
    assert_eq!(
        info_field(&mut k, "replication", "master_replid"),
        info_field(&mut m, "replication", "master_replid")
    );
    assert_eq!(
        s(k.line("SET x 1")),
        "-READONLY You can't write against a read only replica.\r\n"
    );
    let role = s(k.line("ROLE"));
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n"), "{role}");
    assert!(role.contains("$9\r\nconnected\r\n"), "{role}");
    assert_eq!(info_int(&mut m, "stats", "sync_full"), 1);
    assert!(
        keel.log_text()
            .contains("MASTER <-> REPLICA sync: Finished with success")
    );
}

#[test]
fn keel_follows_stock_master_disk() {
    follows_stock_master("no");
}

#[test]
fn keel_follows_stock_master_diskless() {
    follows_stock_master("yes");
}

/// A key alive on the master but past its TTL on the replica's clock is
/// still there for the master's commands (Redis: replicas never expire).
#[test]
fn master_commands_see_logically_expired_keys() {
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    let (keel, _kd) = keel_replica_of(master.port, 2, &[]);
    let mut k = keel.conn();
    wait_synced(&mut m, &mut k, "sync");
    assert_eq!(m.line("DEBUG SET-ACTIVE-EXPIRE 0"), b"+OK\r\n");
    // The master's clock decides: a far-future PEXPIREAT on the master is
    // the replica's view too, but an expiry in the past of the replica's
    // clock only hides the key from readers.
    m.cmd(&["SET", "k", "10"]);
    wait_synced(&mut m, &mut k, "k");
    // Make the key logically expired on the replica only: the master gets
    // the same absolute time but never looks at the key again.
    let past = (common::now_ms() + 150).to_string();
    m.cmd(&["PEXPIREAT", "k", &past]);
    wait_synced(&mut m, &mut k, "pexpireat");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        k.cmd(&["GET", "k"]),
        b"$-1\r\n",
        "readers do not see an expired key"
    );
    assert_eq!(
        k.cmd(&["DBSIZE"]),
        b":1\r\n",
        "the replica keeps it until the master's DEL"
    );
    m.cmd(&["GET", "k"]);
    wait_synced(&mut m, &mut k, "lazy expiry DEL");
    assert_eq!(k.cmd(&["DBSIZE"]), b":0\r\n", "the master's DEL removed it");
}

/// stock master -> keel -> stock replica: the sub-replica gets the
/// master's stream verbatim (same id, same offsets) through keel.
#[test]
fn chained_stock_replica_below_keel() {
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    writes(&mut m, "a", 20);
    let (keel, _kd) = keel_replica_of(master.port, 4, &["--repl-diskless-sync-delay", "0"]);
    let mut k = keel.conn();
    wait_synced(&mut m, &mut k, "keel synced");
    let sub = StockReplica::start(keel.port, &["--enable-debug-command", "yes"]);
    let mut r = sub.conn();
    wait_synced(&mut m, &mut r, "sub-replica synced");
    writes(&mut m, "b", 20);
    assert_same(&mut m, &mut k, "keel");
    assert_same(&mut m, &mut r, "sub-replica");
    for f in ["master_replid", "master_repl_offset"] {
        assert_eq!(
            info_field(&mut r, "replication", f),
            info_field(&mut m, "replication", f),
            "{f}"
        );
    }
    // keel's link to the master is cut: keel PSYNCs, the sub-replica stays.
    assert_eq!(s(k.line("CLIENT KILL TYPE master")), ":1\r\n");
    writes(&mut m, "c", 10);
    assert_same(&mut m, &mut r, "after keel's link was cut");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "keel resynced partially"
    );
    assert!(info_int(&mut m, "stats", "sync_partial_ok") >= 1);
}

/// Verbatim scripts: a keel master with lua-replicate-commands no sends
/// EVAL and EVALSHA; a keel replica runs them (and, restarted, still has
/// the bodies for EVALSHA in the backlog).
#[test]
fn replica_restart_partial_resync_with_scripts_and_dbs() {
    let mdir = TempDir::new("kmaster");
    let master = Server::keel(
        4,
        &[
            "--dir",
            mdir.path(),
            "--lua-replicate-commands",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    let mut m = master.conn();
    let rdir = TempDir::new("krestart");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", "3600 1"];
    let mut rk = DirKeel::start(&rdir.0, 2, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    let body = "redis.call('SELECT', ARGV[2]) redis.call('RPUSH', KEYS[1], ARGV[1]) return 1";
    let sha = s(m.cmd(&["SCRIPT", "LOAD", body]));
    let sha = sha.split("\r\n").nth(1).unwrap().to_string();
    m.cmd(&["SELECT", "5"]);
    m.cmd(&["EVALSHA", &sha, "1", "list", "a", "5"]);
    m.cmd(&["SET", "in5", "1"]);
    wait_synced(&mut m, &mut r, "initial");
    // The master's stream now has DB 5 selected; the replica saves that.
    rk.shutdown(r);
    // Meanwhile: more EVALSHA (sent as EVALSHA: the replica had the body)
    // and plain writes, still in DB 5 without a new SELECT.
    for i in 0..5 {
        m.cmd(&["EVALSHA", &sha, "1", "list", &format!("b{i}"), "5"]);
    }
    m.cmd(&["INCR", "in5"]);
    let full_before = info_int(&mut m, "stats", "sync_full");
    let rk2 = DirKeel::start_on(rport, &rdir.0, 4, &extra);
    let mut r = rk2.conn();
    wait_synced(&mut m, &mut r, "after the restart");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        full_before,
        "restart must resync partially"
    );
    assert!(info_int(&mut m, "stats", "sync_partial_ok") >= 1);
    r.cmd(&["SELECT", "5"]);
    assert_eq!(
        r.cmd(&["GET", "in5"]),
        b"$1\r\n2\r\n",
        "write landed in the stream's DB"
    );
    assert_eq!(
        s(r.cmd(&["LLEN", "list"])),
        ":6\r\n",
        "EVALSHA in the backlog found its script"
    );
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// kill -9 of the replica: its last RDB is older, the master's backlog
/// still covers it, so it resyncs partially from the older offset.
#[test]
fn replica_kill9_resumes_from_last_save() {
    let (master, _md) = redis_master(&[
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "10mb",
    ]);
    let mut m = master.conn();
    let rdir = TempDir::new("kill9");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", ""];
    let mut rk = DirKeel::start(&rdir.0, 2, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    writes(&mut m, "a", 20);
    wait_synced(&mut m, &mut r, "initial");
    assert_eq!(r.line("SAVE"), b"+OK\r\n");
    writes(&mut m, "b", 20);
    wait_synced(&mut m, &mut r, "more");
    // No connection of ours may keep the old process's port half-open.
    drop(r);
    rk.signal("-9");
    rk.wait_exit();
    writes(&mut m, "c", 10);
    let rk2 = DirKeel::start_on(rport, &rdir.0, 4, &extra);
    let mut r = rk2.conn();
    assert_same(&mut m, &mut r, "after kill -9");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "kill -9 restart resynced partially"
    );
}

/// Failover: the keel replica is promoted; a stock replica of the old
/// master and the old master itself follow it with partial resyncs.
#[test]
fn failover_to_keel_with_partial_resyncs() {
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    let (keel, _kd) = keel_replica_of(master.port, 4, &["--repl-diskless-sync-delay", "0"]);
    let mut k = keel.conn();
    let other = StockReplica::start(master.port, &["--enable-debug-command", "yes"]);
    let mut o = other.conn();
    writes(&mut m, "a", 20);
    wait_synced(&mut m, &mut k, "keel");
    wait_synced(&mut m, &mut o, "other");
    let old_id = info_field(&mut m, "replication", "master_replid");
    assert_eq!(k.line("REPLICAOF NO ONE"), b"+OK\r\n");
    assert_eq!(info_field(&mut k, "replication", "role"), "master");
    assert_eq!(info_field(&mut k, "replication", "master_replid2"), old_id);
    let off = info_int(&mut k, "replication", "master_repl_offset");
    assert_eq!(
        info_int(&mut k, "replication", "second_repl_offset"),
        off + 1
    );
    // The old master stops taking writes and follows keel, as does the other replica.
    let kp = keel.port.to_string();
    assert_eq!(o.cmd(&["REPLICAOF", "127.0.0.1", &kp]), b"+OK\r\n");
    assert_eq!(m.cmd(&["REPLICAOF", "127.0.0.1", &kp]), b"+OK\r\n");
    writes(&mut k, "after", 20);
    assert_same(&mut k, &mut o, "other follows keel");
    assert_same(&mut k, &mut m, "old master follows keel");
    assert_eq!(
        info_int(&mut k, "stats", "sync_full"),
        0,
        "every resync after the failover was partial"
    );
    assert_eq!(info_int(&mut k, "stats", "sync_partial_ok"), 2);
    // And back: keel follows the old master again after it is promoted.
    assert_eq!(m.line("REPLICAOF NO ONE"), b"+OK\r\n");
    let mp = master.port.to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &mp]), b"+OK\r\n");
    assert_eq!(o.cmd(&["REPLICAOF", "127.0.0.1", &mp]), b"+OK\r\n");
    writes(&mut m, "back", 10);
    assert_same(&mut m, &mut k, "keel follows the old master again");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        2,
        "only the two initial full syncs"
    );
}

shard_tests!(bad_masters_do_not_hurt_the_replica);

/// Masters that hang up mid-RDB or send a corrupt one: keel keeps the data
/// it had (DEBUG DIGEST and DBSIZE of every DB unchanged after each bad
/// master, and while one is half-way through its RDB), never serves a
/// half-loaded set, retries, and syncs once a real master answers.
fn bad_masters_do_not_hurt_the_replica(shards: usize) {
    // What the bad masters send: a real RDB of other data.
    let (src, srcdir) = redis_master(&[]);
    let mut sc = src.conn();
    writes(&mut sc, "other", 20);
    assert_eq!(sc.line("SAVE"), b"+OK\r\n");
    let rdb = std::fs::read(std::path::Path::new(srcdir.path()).join("dump.rdb")).unwrap();
    drop(sc);
    drop(src);

    // The replica's own data, from a real master.
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    writes(&mut m, "real", 30);
    big_values(&mut m, "real");
    let (keel, _kd) = keel_replica_of(master.port, shards, &[]);
    let mut k = keel.conn();
    wait_synced(&mut m, &mut k, "the first sync");
    let want_digest = digest(&mut m);
    let want_sizes = dbsizes(&mut m, 16);
    assert!(want_sizes.iter().sum::<i64>() > 100, "{want_sizes:?}");
    let unchanged = |k: &mut Conn, what: &str| {
        assert_eq!(digest(k), want_digest, "DEBUG DIGEST {what}");
        assert_eq!(dbsizes(k, 16), want_sizes, "DBSIZE of DBs 0..16 {what}");
    };
    unchanged(&mut k, "after the first sync");

    let bad = TcpListener::bind(("127.0.0.1", common::free_port())).unwrap();
    let bad_port = bad.local_addr().unwrap().port().to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &bad_port]), b"+OK\r\n");
    let full = |len: usize, body: &[u8]| {
        let mut p = format!("+FULLRESYNC {} 0\r\n${len}\r\n", "a".repeat(40)).into_bytes();
        p.extend_from_slice(body);
        p
    };
    // Each next attempt of keel shows it gave up on the previous one.
    let mut c = accept_sync(&bad, "the first attempt");
    unchanged(&mut k, "after REPLICAOF a new master");

    // Half of the RDB, a pause, then a hang-up.
    c.write_all(&full(rdb.len(), &rdb[..rdb.len() / 2]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unchanged(&mut k, "while half an RDB has arrived");
    drop(c);
    let mut c = accept_sync(&bad, "after a hang-up mid-RDB");
    unchanged(&mut k, "after a master hung up mid-RDB");

    // The whole RDB with a wrong checksum: every key parses, the file is bad.
    let mut sum = rdb.clone();
    let n = sum.len();
    sum[n - 1] ^= 0x5a;
    c.write_all(&full(sum.len(), &sum)).unwrap();
    let c2 = accept_sync(&bad, "after an RDB with a wrong checksum");
    drop(c);
    let mut c = c2;
    unchanged(&mut k, "after an RDB with a wrong checksum");

    // Garbage after a valid header.
    c.write_all(&full(20, b"REDIS0010garbage!!!!")).unwrap();
    let c2 = accept_sync(&bad, "after a corrupt RDB");
    drop(c);
    unchanged(&mut k, "after a corrupt RDB");
    assert_eq!(
        info_field(&mut k, "replication", "master_link_status"),
        "down"
    );
    let log = keel.log_text();
    assert!(
        log.contains("Failed trying to load the MASTER synchronization DB"),
        "{log}"
    );
    drop(c2);
    drop(bad);

    // The real master again, with more writes meanwhile.
    writes(&mut m, "more", 5);
    let mp = master.port.to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &mp]), b"+OK\r\n");
    wait_synced(&mut m, &mut k, "the real master again");
    assert_eq!(
        digest(&mut k),
        digest(&mut m),
        "DEBUG DIGEST after the resync"
    );
    assert_eq!(dbsizes(&mut k, 16), dbsizes(&mut m, 16));
}

/// Accepts keel's next connection to a fake master (within 20 s) and
/// answers its handshake up to PSYNC.
fn accept_sync(listener: &TcpListener, what: &str) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "keel did not connect to the fake master {what} (did it take the data?)"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The handshake replies go out at once (keel reads them a line at a
    // time); the sync starts once PSYNC arrived.
    c.write_all(b"+PONG\r\n+OK\r\n+OK\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("PSYNC") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "keel closed during the handshake {what}");
        got.extend_from_slice(&buf[..n]);
    }
    c
}

/// A keel master in verbatim script mode with a keel replica that restarts
/// on its own data dir (`--replicaof` in its flags, like a rewritten config).
struct RestartRig {
    master: Server,
    _mdir: TempDir,
    rdir: TempDir,
    port: String,
}

impl RestartRig {
    fn new() -> RestartRig {
        let mdir = TempDir::new("kmaster");
        let master = Server::keel(
            4,
            &[
                "--dir",
                mdir.path(),
                "--lua-replicate-commands",
                "no",
                "--repl-diskless-sync-delay",
                "0",
            ],
        );
        let port = master.port.to_string();
        RestartRig {
            master,
            _mdir: mdir,
            rdir: TempDir::new("krestart"),
            port,
        }
    }

    fn extra(&self) -> [&str; 5] {
        ["--replicaof", "127.0.0.1", &self.port, "--save", "3600 1"]
    }

    fn replica(&self, shards: usize) -> DirKeel {
        DirKeel::start(&self.rdir.0, shards, &self.extra())
    }

    fn restart(&self, port: u16, shards: usize) -> DirKeel {
        DirKeel::start_on(port, &self.rdir.0, shards, &self.extra())
    }
}

/// Seed scenario 1 (Redis 4.0.3): a restarted replica must come back in
/// the DB its master's stream had selected, or the writes that follow
/// (with no new SELECT) land in the wrong DB.
#[test]
fn replica_restart_restores_selected_db() {
    let rig = RestartRig::new();
    let mut m = rig.master.conn();
    let mut rk = rig.replica(2);
    let rport = rk.port;
    let mut r = rk.conn();
    for (i, db) in ["1", "4", "2", "6"].iter().enumerate() {
        m.cmd(&["SELECT", db]);
        m.cmd(&["SET", "k", &i.to_string()]);
    }
    wait_synced(&mut m, &mut r, "initial");
    // The stream's DB is 6; the replica goes down before the next writes.
    rk.shutdown(r);
    for i in 0..10 {
        m.cmd(&["RPUSH", "after", &i.to_string()]);
    }
    let full = info_int(&mut m, "stats", "sync_full");
    let rk2 = rig.restart(rport, 4);
    let mut r = rk2.conn();
    resynced_partially(&mut m, &mut r, full);
    r.cmd(&["SELECT", "6"]);
    assert_eq!(
        r.cmd(&["LLEN", "after"]),
        b":10\r\n",
        "writes landed in DB 6"
    );
    r.cmd(&["SELECT", "0"]);
    assert_eq!(
        r.cmd(&["EXISTS", "after"]),
        b":0\r\n",
        "nothing landed in DB 0"
    );
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// Seed scenario 2 (Redis 4.0.4, #4483): EVALSHA calls made while the
/// replica was down are in the backlog; after its restart the replica
/// still has the body (saved in its RDB) and applies them.
#[test]
fn replica_restart_evalsha_in_backlog() {
    let rig = RestartRig::new();
    let mut m = rig.master.conn();
    let mut rk = rig.replica(2);
    let rport = rk.port;
    let mut r = rk.conn();
    let body = "redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LLEN', KEYS[1])";
    let sha = s(m.cmd(&["SCRIPT", "LOAD", body]));
    let sha = sha.split("\r\n").nth(1).unwrap().to_string();
    // The first EVALSHA goes out as EVAL (teaching the replica), the next as EVALSHA.
    m.cmd(&["EVALSHA", &sha, "1", "list", "a"]);
    m.cmd(&["EVALSHA", &sha, "1", "list", "b"]);
    wait_synced(&mut m, &mut r, "initial");
    rk.shutdown(r);
    for i in 0..5 {
        m.cmd(&["EVALSHA", &sha, "1", "list", &format!("c{i}")]);
    }
    let full = info_int(&mut m, "stats", "sync_full");
    let rk2 = rig.restart(rport, 4);
    let mut r = rk2.conn();
    resynced_partially(&mut m, &mut r, full);
    assert_eq!(
        r.cmd(&["LLEN", "list"]),
        b":7\r\n",
        "every EVALSHA of the backlog applied"
    );
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// Seed scenario 3 (Redis 4.0.5/4.0.6): a full sync whose RDB carries
/// script bodies the replica already has must not crash it.
#[test]
fn full_sync_onto_replica_holding_the_same_scripts() {
    let rig = RestartRig::new();
    let mut m = rig.master.conn();
    let body = "return redis.call('INCR', KEYS[1])";
    let sha = s(m.cmd(&["SCRIPT", "LOAD", body]));
    let sha = sha.split("\r\n").nth(1).unwrap().to_string();
    m.cmd(&["EVALSHA", &sha, "1", "n"]);
    let rk = rig.replica(2);
    let mut r = rk.conn();
    wait_synced(&mut m, &mut r, "first full sync");
    assert_eq!(
        s(r.cmd(&["SCRIPT", "EXISTS", &sha])),
        "*1\r\n:1\r\n",
        "the body came with the RDB"
    );
    // A second full sync onto the same replica: it leaves and comes back
    // under a history the master does not know.
    assert_eq!(r.line("REPLICAOF NO ONE"), b"+OK\r\n");
    r.cmd(&["SET", "local", "1"]);
    let full = info_int(&mut m, "stats", "sync_full");
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &rig.port]), b"+OK\r\n");
    wait_synced(&mut m, &mut r, "second full sync");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        full + 1,
        "a full sync happened"
    );
    m.cmd(&["EVALSHA", &sha, "1", "n"]);
    wait_synced(&mut m, &mut r, "after EVALSHA");
    assert_eq!(r.cmd(&["GET", "n"]), b"$1\r\n2\r\n");
    assert_eq!(
        r.cmd(&["EXISTS", "local"]),
        b":0\r\n",
        "the full sync replaced the data"
    );
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// keel master -> keel replica -> stock sub-replica; the middle is
/// promoted: the sub-replica and the old master follow it partially.
#[test]
fn keel_chain_promote_the_middle() {
    let mdir = TempDir::new("chainm");
    let master = Server::keel(
        2,
        &["--dir", mdir.path(), "--repl-diskless-sync-delay", "0"],
    );
    let mut m = master.conn();
    writes(&mut m, "a", 15);
    let (mid, _d) = keel_replica_of(master.port, 4, &["--repl-diskless-sync-delay", "0"]);
    let mut k = mid.conn();
    wait_synced(&mut m, &mut k, "middle");
    let sub = StockReplica::start(mid.port, &["--enable-debug-command", "yes"]);
    let mut r = sub.conn();
    wait_synced(&mut m, &mut r, "sub-replica");
    writes(&mut m, "b", 15);
    wait_synced(&mut m, &mut r, "chain");
    assert_eq!(k.line("REPLICAOF NO ONE"), b"+OK\r\n");
    let kp = mid.port.to_string();
    assert_eq!(m.cmd(&["REPLICAOF", "127.0.0.1", &kp]), b"+OK\r\n");
    writes(&mut k, "c", 15);
    assert_same(&mut k, &mut r, "sub-replica after the promotion");
    assert_same(&mut k, &mut m, "old master after the promotion");
    assert_eq!(
        info_int(&mut k, "stats", "sync_full"),
        1,
        "only the sub-replica's first sync was full"
    );
    assert!(info_int(&mut k, "stats", "sync_partial_ok") >= 2);
}

/// kill -9 of a keel replica in the middle of a full sync and in the
/// middle of applying a write stream: after a restart it converges.
#[test]
fn replica_kill9_during_sync_and_apply_converges() {
    let (master, _md) = redis_master(&[
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "50mb",
    ]);
    let mut m = master.conn();
    m.cmd(&["DEBUG", "POPULATE", "200000", "key", "100"]);
    let rdir = TempDir::new("kill9sync");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", "3600 1"];
    let mut rk = DirKeel::start(&rdir.0, 2, &extra);
    let rport = rk.port;
    {
        let mut r = rk.conn();
        common::repl::wait_for(20, "full sync in progress", || {
            info_field(&mut r, "replication", "master_sync_in_progress") == "1"
                || info_field(&mut r, "replication", "master_link_status") == "up"
        });
    }
    rk.signal("-9");
    rk.wait_exit();
    let mut rk = DirKeel::start_on(rport, &rdir.0, 4, &extra);
    let mut r = rk.conn();
    wait_synced(&mut m, &mut r, "after kill -9 during the sync");
    // Now during the stream: a writer runs while the replica dies.
    let mport = master.port;
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(mport);
        for i in 0..20000 {
            w.cmd(&["INCR", &format!("ctr:{}", i % 17)]);
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(r);
    rk.signal("-9");
    rk.wait_exit();
    writer.join().unwrap();
    let rk2 = DirKeel::start_on(rport, &rdir.0, 2, &extra);
    let mut r = rk2.conn();
    wait_synced(&mut m, &mut r, "after kill -9 during the stream");
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// Regression (found by the torture test): a keel replica saved by
/// SHUTDOWN while its master's stream was being applied wrote data ahead
/// of the offset it saved, and after the restart applied those commands a
/// second time (counters diverged).
#[test]
fn replica_shutdown_during_write_stream_saves_consistent_offset() {
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    let rdir = TempDir::new("shutstream");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", "3600 1"];
    let mut rk = DirKeel::start(&rdir.0, 4, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    wait_synced(&mut m, &mut r, "initial");
    let mport = master.port;
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(mport);
        for i in 0..30000 {
            w.cmd(&["INCR", &format!("ctr:{{{}}}", i % 31)]);
        }
    });
    std::thread::sleep(Duration::from_millis(150));
    rk.shutdown(r);
    let rk2 = DirKeel::start_on(rport, &rdir.0, 2, &extra);
    writer.join().unwrap();
    let mut r = rk2.conn();
    wait_synced(&mut m, &mut r, "after the restart");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "the restart resynced partially"
    );
    assert_eq!(
        digest(&mut m),
        digest(&mut r),
        "commands applied twice or lost"
    );
}

/// Regression (found by the torture test): after REPLICAOF switched a
/// replica to another master mid-stream, the old link could still add the
/// bytes it was applying, so the saved offset no longer fell on a command
/// boundary ("Protocol error from MASTER" after the next restart).
#[test]
fn replicaof_switch_during_stream_keeps_offsets_on_boundaries() {
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    let other = StockReplica::start(master.port, &["--enable-debug-command", "yes"]);
    let mut o = other.conn();
    wait_synced(&mut m, &mut o, "other replica");
    let rdir = TempDir::new("switch");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", "3600 1"];
    let mut rk = DirKeel::start(&rdir.0, 4, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    wait_synced(&mut m, &mut r, "keel replica");
    let mport = master.port;
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(mport);
        for i in 0..20000 {
            w.cmd(&["RPUSH", &format!("l:{}", i % 7), &"v".repeat(30)]);
        }
    });
    // Switch masters back and forth while the stream flows.
    let op = other.server.port.to_string();
    for i in 0..6 {
        let p = if i % 2 == 0 { &op } else { &port };
        assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", p]), b"+OK\r\n");
        std::thread::sleep(Duration::from_millis(60));
    }
    writer.join().unwrap();
    wait_synced(&mut m, &mut r, "after the switches");
    assert_eq!(digest(&mut m), digest(&mut r));
    rk.shutdown(r);
    let full = info_int(&mut m, "stats", "sync_full");
    let rk2 = DirKeel::start_on(rport, &rdir.0, 2, &extra);
    let mut r = rk2.conn();
    resynced_partially(&mut m, &mut r, full);
    assert_eq!(digest(&mut m), digest(&mut r));
    assert!(
        !rk2.log_text().contains("Protocol error from MASTER"),
        "{}",
        rk2.log_text()
    );
}

/// replica-serve-stale-data no: while the link is down, commands without
/// the stale flag get -MASTERDOWN, exactly as from a stock replica; once
/// the link is up they run.
#[test]
fn stale_data_refused_while_the_link_is_down() {
    let dead = common::free_port().to_string();
    let extra = [
        "--replicaof",
        "127.0.0.1",
        dead.as_str(),
        "--replica-serve-stale-data",
        "no",
    ];
    let (keel, _kd) = {
        let dir = TempDir::new("stale");
        let mut a = vec!["--dir", dir.path()];
        a.extend_from_slice(&extra);
        (Server::keel(2, &a), dir)
    };
    let (stock, _sd) = redis_master(&extra);
    let mut k = keel.conn();
    let mut r = stock.conn();
    for line in ["GET x", "PING", "SET x 1"] {
        assert_eq!(s(k.line(line)), s(r.line(line)), "{line}");
    }
    assert!(s(k.line("GET x")).starts_with("-MASTERDOWN"));
    assert!(s(k.line("INFO replication")).contains("master_link_status:down"));
    let (master, _md) = redis_master(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    m.cmd(&["SET", "x", "1"]);
    let mp = master.port.to_string();
    assert_eq!(k.cmd(&["REPLICAOF", "127.0.0.1", &mp]), b"+OK\r\n");
    wait_synced(&mut m, &mut k, "link up");
    assert_eq!(k.line("GET x"), b"$1\r\n1\r\n");
}
