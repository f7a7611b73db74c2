//! Function libraries through replication and restarts, with real
//! processes: a stock master feeding a keel replica and a keel master
//! feeding a stock replica carry FUNCTION LOAD/DELETE/FLUSH/RESTORE and
//! FCALL's effects; the libraries travel in the RDB of a full sync and
//! survive restarts of either side with a partial resync.

#[macro_use]
mod common;

use std::time::Duration;

use common::repl::{StockReplica, TempDir, digest, info_field, info_int, wait_synced};
use common::{Conn, DirKeel, Resp, Server};

shard_tests!(
    stock_master_keel_replica,
    keel_master_stock_replica,
    keel_master_keel_replica,
    flags_on_a_stale_replica,
);

const LIB_A: &str = "#!lua name=liba
redis.register_function('seta', function(keys, args)
  for i, k in ipairs(keys) do redis.call('set', k, args[1]) end
  return #keys
end)
redis.register_function{function_name='geta', callback=function(keys) return redis.call('mget', unpack(keys)) end, flags={'no-writes'}, description='reads'}";

const LIB_B: &str = "#!lua name=libb
redis.register_function('pushb', function(keys, args) return redis.call('rpush', keys[1], args[1]) end)";

const LIB_B2: &str = "#!lua name=libb
redis.register_function('pushb', function(keys, args) return redis.call('lpush', keys[1], args[1] .. 'v2') end)";

const LIB_C: &str = "#!lua name=libc
redis.register_function('incrc', function(keys) return redis.call('incr', keys[1]) end)";

fn ok(r: Vec<u8>, what: &str) -> Vec<u8> {
    assert!(
        !r.starts_with(b"-"),
        "{what}: {}",
        String::from_utf8_lossy(&r)
    );
    r
}

/// FUNCTION LIST WITHCODE with libraries and functions sorted by name (the
/// servers list them in hash-table order).
fn libraries(c: &mut Conn) -> String {
    let r = Resp::parse(&c.cmd(&["FUNCTION", "LIST", "WITHCODE"]));
    format!("{:?}", common::unordered(&r))
}

fn assert_same(m: &mut Conn, r: &mut Conn, what: &str) {
    wait_synced(m, r, what);
    assert_eq!(libraries(m), libraries(r), "{what}: FUNCTION LIST differs");
    assert_eq!(digest(m), digest(r), "{what}: DEBUG DIGEST differs");
}

/// FUNCTION operations and FCALLs of every kind on the master `m`.
fn function_traffic(m: &mut Conn, tag: &str) {
    ok(m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_A]), "load liba");
    ok(m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_B]), "load libb");
    let keys: Vec<String> = (0..8).map(|i| format!("{tag}:k{i}")).collect();
    let mut a = vec!["FCALL".to_string(), "seta".into(), keys.len().to_string()];
    a.extend(keys.iter().cloned());
    a.push("v1".into());
    // Keys of one slot only for a cluster-style call: here any keys.
    ok(m.cmd(&a), "fcall seta");
    for i in 0..5 {
        ok(
            m.cmd(&[
                "FCALL",
                "pushb",
                "1",
                &format!("{tag}:list"),
                &i.to_string(),
            ]),
            "fcall pushb",
        );
    }
    ok(
        m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_B2]),
        "replace libb",
    );
    ok(
        m.cmd(&["FCALL", "pushb", "1", &format!("{tag}:list"), "x"]),
        "fcall pushb v2",
    );
    ok(m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_C]), "load libc");
    ok(
        m.cmd(&["FCALL", "incrc", "1", &format!("{tag}:ctr")]),
        "incrc",
    );
    let dump = match Resp::parse(&m.cmd(&["FUNCTION", "DUMP"])) {
        Resp::Bulk(b) => b,
        other => panic!("FUNCTION DUMP: {other:?}"),
    };
    ok(m.cmd(&["FUNCTION", "DELETE", "libc"]), "delete libc");
    ok(m.cmd(&["FUNCTION", "FLUSH"]), "flush");
    ok(
        m.cmd(&[&b"FUNCTION"[..], b"RESTORE", &dump]),
        "restore into empty",
    );
    ok(
        m.cmd(&[&b"FUNCTION"[..], b"RESTORE", &dump, b"REPLACE"]),
        "restore replace",
    );
    ok(m.cmd(&["FUNCTION", "DELETE", "libb"]), "delete libb");
    ok(
        m.cmd(&["FCALL", "incrc", "1", &format!("{tag}:ctr")]),
        "incrc 2",
    );
}

fn no_errors_applied(r: &mut Conn, what: &str) {
    let errs = info_int(r, "stats", "unexpected_error_replies");
    assert!(
        errs <= 0,
        "{what}: the replica failed {errs} command(s) of the stream"
    );
}

fn stock_master_keel_replica(shards: usize) {
    let mdir = TempDir::new("fmaster");
    let master = Server::redis(&["--dir", mdir.path(), "--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    // A library before the replica exists: it arrives in the full sync's RDB.
    ok(m.cmd(&["FUNCTION", "LOAD", LIB_C]), "initial load");
    ok(m.cmd(&["FCALL", "incrc", "1", "pre"]), "initial fcall");
    let rdir = TempDir::new("freplica");
    let port = master.port.to_string();
    let extra = ["--replicaof", "127.0.0.1", &port, "--save", "3600 1"];
    let mut rk = DirKeel::start(&rdir.0, shards, &extra);
    let rport = rk.port;
    let mut r = rk.conn();
    assert_same(&mut m, &mut r, "after the full sync");
    function_traffic(&mut m, "t1");
    assert_same(&mut m, &mut r, "after the FUNCTION traffic");
    no_errors_applied(&mut r, "stream from stock");
    // The replica runs the replicated library itself.
    assert_eq!(
        r.cmd(&["FCALL_RO", "geta", "2", "t1:k0", "t1:k7"]),
        b"*2\r\n$2\r\nv1\r\n$2\r\nv1\r\n"
    );
    assert!(
        r.cmd(&["FCALL", "incrc", "1", "x"])
            .starts_with(b"-READONLY"),
        "a write function on a read-only replica"
    );
    // Restart the replica: its RDB holds the libraries, the master's
    // backlog has the FUNCTION LOADs too; PSYNC continues, no full sync.
    ok(m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_B]), "libb again");
    assert_same(&mut m, &mut r, "before the restart");
    let full_before = info_int(&mut m, "stats", "sync_full");
    rk.shutdown(r);
    ok(
        m.cmd(&["FUNCTION", "LOAD", "REPLACE", LIB_B2]),
        "libb while down",
    );
    ok(
        m.cmd(&["FCALL", "pushb", "1", "down", "1"]),
        "fcall while down",
    );
    let rk2 = DirKeel::start_on(rport, &rdir.0, shards, &extra);
    let mut r = rk2.conn();
    assert_same(&mut m, &mut r, "after the restart");
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        full_before,
        "the restart resynced partially"
    );
    no_errors_applied(&mut r, "after the restart");
    let log = std::fs::read_to_string(&rk2.log).unwrap();
    assert!(
        !log.contains("already exists") && !log.contains("Failed loading library"),
        "duplicate library load in the replica's log:\n{log}"
    );
}

fn keel_master_stock_replica(shards: usize) {
    let dir = TempDir::new("fkmaster");
    let extra = ["--save", "3600 1", "--repl-diskless-sync-delay", "0"];
    let mut k1 = DirKeel::start(&dir.0, shards, &extra);
    let port = k1.port;
    let mut k = k1.conn();
    // Libraries before the replica: the full sync's RDB carries them.
    ok(k.cmd(&["FUNCTION", "LOAD", LIB_A]), "initial load");
    ok(
        k.cmd(&["FCALL", "seta", "2", "p1", "p2", "pre"]),
        "initial fcall",
    );
    let replica = StockReplica::start(port, &[]);
    let mut r = replica.conn();
    assert_same(&mut k, &mut r, "after the full sync");
    function_traffic(&mut k, "t2");
    assert_same(&mut k, &mut r, "after the FUNCTION traffic");
    // Restart the master from its RDB (libraries inside): the stock
    // replica resyncs partially and the master still has its libraries.
    let off = info_int(&mut k, "replication", "master_repl_offset");
    common::repl::wait_for(10, "the replica's ACK", || {
        info_field(&mut k, "replication", "slave0").contains(&format!("offset={off},"))
    });
    let libs_before = libraries(&mut k);
    k.send_lossy(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    k1.wait_exit();
    std::thread::sleep(Duration::from_millis(600));
    let k2 = DirKeel::start_on(port, &dir.0, shards, &extra);
    let mut k = k2.conn();
    assert_eq!(
        libraries(&mut k),
        libs_before,
        "libraries after the restart"
    );
    ok(
        k.cmd(&["FCALL", "incrc", "1", "after"]),
        "fcall after restart",
    );
    ok(k.cmd(&["FUNCTION", "LOAD", LIB_B]), "load after restart");
    assert_same(&mut k, &mut r, "after the master's restart");
    assert_eq!(info_int(&mut k, "stats", "sync_full"), 0, "no full sync");
    assert_eq!(info_int(&mut k, "stats", "sync_partial_ok"), 1);
}

fn keel_master_keel_replica(shards: usize) {
    let mdir = TempDir::new("fkkmaster");
    let master = DirKeel::start(&mdir.0, shards, &["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    ok(m.cmd(&["FUNCTION", "LOAD", LIB_C]), "initial load");
    let rdir = TempDir::new("fkkreplica");
    let port = master.port.to_string();
    let replica = DirKeel::start(&rdir.0, 5 - shards, &["--replicaof", "127.0.0.1", &port]);
    let mut r = replica.conn();
    assert_same(&mut m, &mut r, "after the full sync");
    function_traffic(&mut m, "t3");
    assert_same(&mut m, &mut r, "after the FUNCTION traffic");
    no_errors_applied(&mut r, "stream from keel");
}

/// A replica whose master is gone, with `replica-serve-stale-data no`:
/// what functions and flagged scripts may run is decided by their flags
/// (allow-stale, no-writes), as on a stock replica in the same state.
fn flags_on_a_stale_replica(shards: usize) {
    let mdir = TempDir::new("fstalemaster");
    let master = Server::redis(&["--dir", mdir.path()]);
    let mut m = master.conn();
    ok(
        m.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=stale
redis.register_function{function_name='stale_ok', callback=function() return 'stale fine' end, flags={'allow-stale', 'no-writes'}}
redis.register_function{function_name='ro_only', callback=function() return 'ro' end, flags={'no-writes'}}
redis.register_function('writer', function(keys) return redis.call('set', keys[1], 'v') end)",
        ]),
        "load",
    );
    let rdir = TempDir::new("fstalereplica");
    let port = master.port.to_string();
    let stale = [
        "--replicaof",
        "127.0.0.1",
        &port,
        "--replica-serve-stale-data",
        "no",
    ];
    let keel = DirKeel::start(&rdir.0, shards, &stale);
    let stock = StockReplica::start(master.port, &["--replica-serve-stale-data", "no"]);
    let mut k = keel.conn();
    let mut r = stock.conn();
    wait_synced(&mut m, &mut k, "keel replica synced");
    wait_synced(&mut m, &mut r, "stock replica synced");
    drop(m);
    drop(master);
    for c in [&mut k, &mut r] {
        common::repl::wait_for(20, "the link to go down", || {
            info_field(c, "replication", "master_link_status") == "down"
        });
    }
    let cases: &[&[&str]] = &[
        &["FCALL", "stale_ok", "0"],
        &["FCALL_RO", "stale_ok", "0"],
        &["FCALL", "ro_only", "0"],
        &["FCALL", "writer", "1", "k"],
        &["FCALL", "nosuch", "0"],
        &["EVAL", "#!lua flags=allow-stale,no-writes\nreturn 1", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "return 1", "0"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "nomatch"],
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=x\nredis.register_function('x', function() end)",
        ],
    ];
    for c in cases {
        assert_eq!(
            String::from_utf8_lossy(&k.cmd(c)),
            String::from_utf8_lossy(&r.cmd(c)),
            "{c:?} on a stale replica"
        );
    }
}
