//! keel replicas apply the master's stream on all shards at once
//! (src/replication/apply.rs): a stock master under a mixed write load
//! (multi-key commands, MULTI, EVAL with undeclared keys, FCALL, expiries,
//! SELECT, SWAPDB) against keel replicas of 2 and 4 shards, readers on the
//! replica that must never see half of a transaction or script, a kill -9
//! of a replica in the middle of a catch-up, and WAIT on a keel master
//! whose keel replicas apply in parallel.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::repl::{TempDir, digest, info_field, info_int, wait_for, wait_synced};
use common::{Conn, DirKeel, Server};

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The shard keel places a key on (its own mapping, not a copy of it).
fn shard(key: &str, n: usize) -> usize {
    keel::storage::slot::key_shard(key.as_bytes(), n)
}

/// Two keys on different shards at 2 and at 4 shards.
fn apart(prefix: &str) -> (String, String) {
    let a = format!("{prefix}:a");
    for i in 0.. {
        let b = format!("{prefix}:b{i}");
        if shard(&a, 2) != shard(&b, 2) && shard(&a, 4) != shard(&b, 4) {
            return (a, b);
        }
    }
    unreachable!()
}

/// Sends `cmds` in one write and reads every reply; none may be an error.
fn pipeline(c: &mut Conn, cmds: &[Vec<String>]) {
    let mut buf = Vec::new();
    for cmd in cmds {
        buf.extend_from_slice(&common::encode(cmd));
    }
    c.send(&buf);
    for cmd in cmds {
        let r = c.read_reply();
        assert!(!r.starts_with(b"-"), "{cmd:?}: {}", s(&r));
    }
}

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

const LIB: &str = "#!lua name=par\n\
    redis.register_function('bump', function(keys, args)\n\
      redis.call('INCR', keys[1])\n\
      return redis.call('INCR', args[1])\n\
    end)";

/// The pairs a transaction, a script and a function always move together.
struct Pairs {
    tx: (String, String),
    script: (String, String),
    func: (String, String),
}

impl Pairs {
    fn new() -> Pairs {
        Pairs {
            tx: apart("tx"),
            script: apart("sc"),
            func: apart("fn"),
        }
    }
}

/// One round of the mixed load: single-key writes of every type, MSET and
/// RENAME across shards, MULTI/EXEC, EVAL touching an undeclared key,
/// FCALL, keys with short TTLs, writes in DB 3, SWAPDB 5 6.
fn mixed_round(p: &Pairs, i: usize) -> Vec<Vec<String>> {
    let i_s = i.to_string();
    let mut c = vec![
        v(&["SELECT", "0"]),
        v(&["SET", &format!("s:{i}"), &i_s]),
        v(&["INCR", &format!("c:{}", i % 50)]),
        v(&["RPUSH", &format!("l:{}", i % 10), &i_s]),
        v(&["HSET", &format!("h:{}", i % 7), &format!("f{i}"), &i_s]),
        v(&["SADD", &format!("set:{}", i % 5), &i_s]),
        v(&["ZADD", "z", &i_s, &format!("m{}", i % 300)]),
        v(&["MSET", &format!("m1:{i}"), "x", &format!("m2:{i}"), "y"]),
        v(&["MULTI"]),
        v(&["INCR", &p.tx.0]),
        v(&["INCR", &p.tx.1]),
        v(&["EXEC"]),
        v(&[
            "EVAL",
            &format!(
                "redis.call('INCR', KEYS[1]) return redis.call('INCR', '{}')",
                p.script.1
            ),
            "1",
            &p.script.0,
        ]),
        v(&["FCALL", "bump", "1", &p.func.0, &p.func.1]),
        v(&["SET", &format!("ttl:{}", i % 40), "v", "PX", "30"]),
        v(&["SELECT", "3"]),
        v(&["INCR", "db3:ctr"]),
        v(&["LPUSH", &format!("db3:l{}", i % 3), &i_s]),
    ];
    if i.is_multiple_of(25) {
        c.push(v(&[
            "RENAME",
            &format!("db3:l{}", i % 3),
            &format!("db3:r{i}"),
        ]));
        c.push(v(&["SELECT", "5"]));
        c.push(v(&["SET", &format!("sw:{i}"), &i_s]));
        c.push(v(&["SWAPDB", "5", "6"]));
    }
    c
}

/// Readers on the replica: an MGET of each pair must show equal counters
/// (never half of a MULTI, script or function). Returns the number of
/// checks that saw a write in progress (neither 0 nor final).
fn reader(port: u16, p: &Pairs, stop: Arc<AtomicBool>, seen: Arc<AtomicU64>) {
    let mut c = Conn::connect(port);
    while !stop.load(Ordering::Relaxed) {
        let r = c.cmd(&[
            "MGET",
            &p.tx.0,
            &p.tx.1,
            &p.script.0,
            &p.script.1,
            &p.func.0,
            &p.func.1,
        ]);
        let text = s(&r);
        // *6, then each element: $-1, or $len and the value.
        let mut lines = text.split("\r\n").skip(1);
        let mut vals = Vec::new();
        while let Some(l) = lines.next() {
            if l == "$-1" {
                vals.push("nil");
            } else if l.starts_with('$') {
                vals.push(lines.next().unwrap());
            }
        }
        assert_eq!(vals.len(), 6, "{text:?}");
        let val = |k: usize| vals[k];
        for pair in 0..3 {
            assert_eq!(
                val(2 * pair),
                val(2 * pair + 1),
                "a reader saw half of a unit (pair {pair}): {text:?}"
            );
        }
        if val(0) != "nil" {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn mixed_load_on(shards: usize) {
    let mdir = TempDir::new("par-master");
    let master = Server::redis(&["--dir", mdir.path(), "--repl-backlog-size", "64mb"]);
    let mut m = master.conn();
    assert!(s(&m.cmd(&["FUNCTION", "LOAD", LIB])).contains("par"));
    let port = master.port.to_string();
    // Its own --dir: a replica's full sync writes dump.rdb, which any later
    // server started in the working directory would load.
    let rdir = TempDir::new("par-replica");
    let replica = Server::keel(
        shards,
        &["--dir", rdir.path(), "--replicaof", "127.0.0.1", &port],
    );
    let mut r = replica.conn();
    wait_synced(&mut m, &mut r, "initial sync");
    let pairs = Arc::new(Pairs::new());
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (p, st, se, port) = (pairs.clone(), stop.clone(), seen.clone(), replica.port);
            std::thread::spawn(move || reader(port, &p, st, se))
        })
        .collect();
    let t = Instant::now();
    let mut i = 0;
    while i < 3000 && t.elapsed() < Duration::from_secs(6) {
        let mut batch = Vec::new();
        for _ in 0..50 {
            batch.extend(mixed_round(&pairs, i));
            i += 1;
        }
        pipeline(&mut m, &batch);
    }
    // Let the short TTLs pass so the master's DELs are part of the stream.
    std::thread::sleep(Duration::from_millis(100));
    m.cmd(&["SELECT", "0"]);
    for k in 0..40 {
        m.cmd(&["GET", &format!("ttl:{k}")]);
    }
    wait_synced(&mut m, &mut r, "replica caught up");
    stop.store(true, Ordering::Relaxed);
    for h in readers {
        h.join().expect("reader saw a torn unit");
    }
    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "the readers never saw the pairs written"
    );
    assert_eq!(
        digest(&mut r),
        digest(&mut m),
        "DEBUG DIGEST after {i} rounds"
    );
    assert!(digest(&mut m).len() > 10);
    assert_eq!(
        info_int(&mut r, "stats", "unexpected_error_replies"),
        0,
        "the replica failed commands of the stream"
    );
    // The stream really held every kind of unit.
    assert!(i >= 50);
    let tx = s(&m.cmd(&["GET", &pairs.tx.0]));
    assert!(tx.contains(&i.to_string()), "{tx}");
}

#[test]
fn stock_master_mixed_load_2_shards() {
    mixed_load_on(2);
}

#[test]
fn stock_master_mixed_load_4_shards() {
    mixed_load_on(4);
}

fn counter_and_list(c: &mut Conn, from: usize, n: usize) {
    let mut batch = Vec::new();
    for i in from..from + n {
        batch.push(v(&["INCR", "k9:ctr"]));
        batch.push(v(&["RPUSH", "k9:list", &i.to_string()]));
        batch.push(v(&["MULTI"]));
        batch.push(v(&["INCR", "k9:txa"]));
        batch.push(v(&["RPUSH", "k9:txl", &i.to_string()]));
        batch.push(v(&["EXEC"]));
        batch.push(v(&["SET", &format!("k9:s{i}"), &i.to_string()]));
    }
    pipeline(c, &batch);
}

/// kill -9 of a keel replica right after a BGSAVE taken in the middle of
/// a catch-up: the restart loads that RDB, PSYNCs from its offset and ends
/// equal to the master, with no write lost or applied twice.
#[test]
fn kill9_mid_apply_resumes_without_loss_or_doubling() {
    let mdir = TempDir::new("par-k9m");
    let master = Server::redis(&[
        "--dir",
        mdir.path(),
        "--repl-backlog-size",
        "64mb",
        "--client-output-buffer-limit",
        "replica 0 0 0",
    ]);
    let mut m = master.conn();
    let rdir = TempDir::new("par-k9r");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", ""];
    let mut rk = DirKeel::start(&rdir.0, 2, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    counter_and_list(&mut m, 0, 100);
    wait_synced(&mut m, &mut r, "initial");
    // A backlog for the replica to catch up on.
    rk.signal("-STOP");
    let mut n = 100;
    for _ in 0..15 {
        counter_and_list(&mut m, n, 1000);
        n += 1000;
    }
    let target = info_int(&mut m, "replication", "master_repl_offset");
    rk.signal("-CONT");
    let mut saved_at = -1;
    // BGSAVE while it applies; its offset must be strictly inside the
    // catch-up for the test to mean anything (retry a few times).
    for _ in 0..20 {
        let r1 = s(&r.cmd(&["BGSAVE"]));
        assert!(r1.contains("started"), "{r1}");
        wait_for(20, "bgsave", || {
            info_int(&mut r, "persistence", "rdb_bgsave_in_progress") == 0
        });
        assert_eq!(
            info_field(&mut r, "persistence", "rdb_last_bgsave_status"),
            "ok"
        );
        saved_at = info_int(&mut r, "replication", "master_repl_offset");
        if saved_at < target {
            break;
        }
    }
    drop(r);
    rk.signal("-9");
    rk.wait_exit();
    // More writes while it is down.
    counter_and_list(&mut m, n, 500);
    n += 500;
    let rk2 = DirKeel::start_on(rport, &rdir.0, 2, &extra);
    let mut r = rk2.conn();
    wait_synced(&mut m, &mut r, "after restart");
    assert_eq!(digest(&mut r), digest(&mut m), "digest after kill -9");
    let n_s = n.to_string();
    assert_eq!(
        s(&r.cmd(&["GET", "k9:ctr"])),
        format!("${}\r\n{n_s}\r\n", n_s.len())
    );
    assert_eq!(s(&r.cmd(&["LLEN", "k9:list"])), format!(":{n}\r\n"));
    assert_eq!(s(&r.cmd(&["LLEN", "k9:txl"])), format!(":{n}\r\n"));
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "the restart resynced in full instead of continuing"
    );
    assert!(info_int(&mut m, "stats", "sync_partial_ok") >= 1);
    assert!(
        saved_at < target,
        "no BGSAVE landed inside the catch-up (saved at {saved_at}, target {target})"
    );
}

/// WAIT on a keel master with two keel replicas applying in parallel: a
/// count never includes a replica that lacks the write.
#[test]
fn wait_never_counts_a_replica_missing_the_write() {
    let dirs: Vec<TempDir> = (0..3)
        .map(|i| TempDir::new(&format!("par-wait{i}")))
        .collect();
    let master = Server::keel(2, &["--dir", dirs[0].path()]);
    let mut m = master.conn();
    let port = master.port.to_string();
    let reps: Vec<Server> = (1..3)
        .map(|i| {
            Server::keel(
                2,
                &["--dir", dirs[i].path(), "--replicaof", "127.0.0.1", &port],
            )
        })
        .collect();
    let mut rc: Vec<Conn> = reps.iter().map(|r| r.conn()).collect();
    for r in rc.iter_mut() {
        wait_for(20, "replica link up", || {
            info_field(r, "replication", "master_link_status") == "up"
        });
    }
    // Background load so the replicas are always applying something.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let mport = master.port;
    let load = std::thread::spawn(move || {
        let mut c = Conn::connect(mport);
        let mut i = 0usize;
        while !st.load(Ordering::Relaxed) {
            let batch: Vec<Vec<String>> = (0..200)
                .map(|j| v(&["SET", &format!("bg:{}", (i + j) % 5000), "x"]))
                .collect();
            pipeline(&mut c, &batch);
            i += 200;
        }
    });
    let mut counted = 0;
    let t = Instant::now();
    let mut k = 0;
    while k < 300 && t.elapsed() < Duration::from_secs(8) {
        let key = format!("w:{k}");
        m.cmd(&["SET", &key, &k.to_string()]);
        m.cmd(&["INCR", &format!("wc:{}", k % 7)]);
        let n = s(&m.cmd(&["WAIT", "2", "50"]));
        let n: usize = n.trim_start_matches(':').trim().parse().unwrap();
        let have = rc
            .iter_mut()
            .map(|r| r.cmd(&["GET", &key]) != b"$-1\r\n")
            .filter(|&has| has)
            .count();
        assert!(have >= n, "WAIT counted {n} replicas, {have} have {key}");
        counted += n;
        k += 1;
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(counted > 0, "WAIT never counted a replica");
    // How far the replicas are behind after the load depends on the
    // machine (the master may write faster than they apply): once they
    // caught up, WAIT must count both.
    for r in rc.iter_mut() {
        wait_synced(&mut m, r, "replica synced");
    }
    assert_eq!(s(&m.cmd(&["WAIT", "2", "10000"])), ":2\r\n");
    for r in rc.iter_mut() {
        assert_eq!(digest(r), digest(&mut m));
    }
}
