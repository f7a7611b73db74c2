//! Replication behaviours Redis's own integration files (replication-2,
//! -4, -buffer, replication.tcl) rely on, each run with keel and with
//! stock redis-server in the same roles and the outcomes compared:
//! min-replicas-to-write is a master's rule (a replica ignores it),
//! DEBUG REPLICATE sends a command only to the replicas,
//! repl-diskless-sync-max-replicas ends the diskless delay early, and the
//! keys SCAN and RANDOMKEY find expired are deleted outside MULTI/EXEC.

mod common;

use std::time::{Duration, Instant};

use common::repl::{RawReplica, StockReplica, TempDir, info_field, wait_for, wait_synced};
use common::{Conn, Server};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Stock,
    Keel,
}

fn start(kind: Kind, dir: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.path()];
    args.extend_from_slice(extra);
    match kind {
        Kind::Stock => Server::redis(&args),
        Kind::Keel => Server::keel(1, &args),
    }
}

/// A master and a replica of the same kind, synced.
struct Pair {
    master: Server,
    replica: Server,
    _dirs: (TempDir, TempDir),
}

fn pair(kind: Kind, replica_extra: &[&str]) -> Pair {
    let (md, rd) = (TempDir::new("suite-m"), TempDir::new("suite-r"));
    let master = start(kind, &md, &["--repl-diskless-sync-delay", "0"]);
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(replica_extra);
    let replica = start(kind, &rd, &args);
    wait_synced(
        &mut master.conn(),
        &mut replica.conn(),
        &format!("{kind:?} sync"),
    );
    Pair {
        master,
        replica,
        _dirs: (md, rd),
    }
}

fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

fn wait_value(c: &mut Conn, key: &str, want: &[u8], what: &str) {
    wait_for(10, what, || c.cmd(&["GET", key]) == want);
}

/// replication-2 "min-slaves-to-write is ignored by slaves": a replica
/// with min-replicas-to-write set still applies its master's stream and,
/// when writable, takes its own clients' writes.
fn min_replicas_on_a_replica(kind: Kind) -> Vec<String> {
    let p = pair(kind, &["--replica-read-only", "no"]);
    let (mut m, mut r) = (p.master.conn(), p.replica.conn());
    let mut out = vec![];
    for c in [&mut m, &mut r] {
        out.push(s(c.line("CONFIG SET min-replicas-to-write 1")));
        out.push(s(c.line("CONFIG SET min-replicas-max-lag 10")));
    }
    // The master takes writes once it counts its replica online.
    wait_for(10, "the master's write", || {
        m.line("SET foo aaabbb") == b"+OK\r\n"
    });
    let what = format!("the master's write on the replica ({kind:?}: {out:?})");
    wait_value(&mut r, "foo", b"$6\r\naaabbb\r\n", &what);
    out.push(s(r.line("SET local 1")));
    out.push(s(r.line("GET local")));
    // The replica has no replica of its own: its rule is not in force,
    // the master's is (one good replica).
    out.push(s(
        r.line("EVAL \"return redis.call('set','fromscript','1')\" 0")
    ));
    out.push(info_field(&mut m, "replication", "min_slaves_good_slaves"));
    out
}

#[test]
fn min_replicas_to_write_is_ignored_on_a_replica() {
    let stock = min_replicas_on_a_replica(Kind::Stock);
    let keel = min_replicas_on_a_replica(Kind::Keel);
    assert_eq!(stock[4], "+OK\r\n", "stock: {stock:?}");
    assert_eq!(keel, stock);
}

/// replication-4 "Data divergence can happen under default conditions":
/// DEBUG REPLICATE sends its arguments to the replicas only, in order with
/// the other writes; one the replica cannot run is logged there.
fn debug_replicate(kind: Kind) -> Vec<String> {
    let p = pair(kind, &[]);
    let (mut m, mut r) = (p.master.conn(), p.replica.conn());
    let mut out = vec![
        s(m.line("DEBUG REPLICATE")),
        s(m.line("DEBUG REPLICATE SET only-on-replica 1")),
        s(m.line("DEBUG REPLICATE fake-command-1 x")),
        s(m.line("SET after 2")),
    ];
    wait_value(
        &mut r,
        "after",
        b"$1\r\n2\r\n",
        "the write after DEBUG REPLICATE",
    );
    out.push(s(r.line("GET only-on-replica")));
    out.push(s(m.line("GET only-on-replica")));
    out.push(s(m.line("WAIT 1 2000")));
    let log = p.replica.log_text();
    out.push(format!(
        "logged: {} {}",
        log.contains("fake-command-1"),
        log.contains("== CRITICAL ==")
    ));
    out
}

#[test]
fn debug_replicate_reaches_only_the_replicas() {
    let stock = debug_replicate(Kind::Stock);
    let keel = debug_replicate(Kind::Keel);
    assert_eq!(stock[4], "$1\r\n1\r\n", "stock: {stock:?}");
    assert_eq!(stock[7], "logged: true true", "stock: {stock:?}");
    assert_eq!(keel, stock);
}

/// With a long diskless delay, a replica's full sync starts as soon as
/// repl-diskless-sync-max-replicas replicas wait (here 1): the sync ends
/// well before the delay would have.
fn max_replicas(kind: Kind) -> (Vec<String>, Duration) {
    let md = TempDir::new("suite-maxr");
    let master = start(
        kind,
        &md,
        &[
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "30",
        ],
    );
    let mut m = master.conn();
    let mut out = vec![
        s(m.line("CONFIG GET repl-diskless-sync-max-replicas")),
        s(m.line("CONFIG SET repl-diskless-sync-max-replicas -1")),
        s(m.line("CONFIG SET repl-diskless-sync-max-replicas x")),
        s(m.line("CONFIG SET repl-diskless-sync-max-replicas 1")),
        s(m.line("CONFIG GET repl-diskless-sync-max-replicas")),
    ];
    m.line("SET k v");
    let t = Instant::now();
    let replica = StockReplica::start(master.port, &[]);
    let mut r = replica.conn();
    wait_for(25, "the replica's sync", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
    });
    let took = t.elapsed();
    out.push(s(r.line("GET k")));
    (out, took)
}

#[test]
fn diskless_sync_max_replicas_ends_the_delay() {
    let (stock, stock_took) = max_replicas(Kind::Stock);
    let (keel, keel_took) = max_replicas(Kind::Keel);
    assert_eq!(keel, stock);
    // The delay is 30 s: both well under it.
    assert!(
        stock_took < Duration::from_secs(15),
        "stock took {stock_took:?}"
    );
    assert!(
        keel_took < Duration::from_secs(15),
        "keel took {keel_took:?}"
    );
}

/// The stream a raw replica reads while `steps` run on the master (with
/// active expiry off and two keys just expired), up to a marker write:
/// command names, and the keys deleted, sorted (the scan order differs).
fn lazy_expire_stream(kind: Kind, steps: &[&str]) -> (Vec<String>, Vec<String>) {
    let md = TempDir::new("suite-lazy");
    let master = match kind {
        Kind::Stock => Server::redis(&["--dir", md.path()]),
        Kind::Keel => Server::keel(2, &["--dir", md.path()]),
    };
    let mut raw = RawReplica::connect(master.port);
    let reply = raw.psync("?", -1, false);
    assert!(reply.starts_with("+FULLRESYNC "), "{reply}");
    raw.read_rdb();
    let mut c = master.conn();
    assert_eq!(s(c.line("DEBUG SET-ACTIVE-EXPIRE 0")), "+OK\r\n");
    c.line("SET foo1 bar PX 1");
    c.line("SET foo2 bar PX 1");
    std::thread::sleep(Duration::from_millis(20));
    for st in steps {
        c.line(st);
    }
    c.line("SET marker 1");
    let (mut names, mut deleted) = (vec![], vec![]);
    loop {
        let (args, _) = raw
            .command(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{kind:?}: stream ended before the marker: {names:?}"));
        let name = args[0].to_ascii_lowercase();
        if name == "ping" {
            continue;
        }
        if name == "del" {
            deleted.extend(args[1..].iter().cloned());
        }
        let marker = name == "set" && args[1] == "marker";
        names.push(name);
        if marker {
            break;
        }
    }
    deleted.sort();
    assert_eq!(s(c.line("DEBUG SET-ACTIVE-EXPIRE 1")), "+OK\r\n");
    (names, deleted)
}

#[test]
fn lazy_expiry_of_scan_and_randomkey_is_not_a_transaction() {
    for steps in [
        &["SCAN 0"][..],
        &["RANDOMKEY", "RANDOMKEY", "RANDOMKEY"][..],
        // Inside EXEC the deletions stay in the transaction.
        &["MULTI", "SCAN 0", "EXEC"][..],
    ] {
        let stock = lazy_expire_stream(Kind::Stock, steps);
        let keel = lazy_expire_stream(Kind::Keel, steps);
        assert_eq!(stock.1, ["foo1", "foo2"], "stock {steps:?}: {stock:?}");
        assert_eq!(keel, stock, "{steps:?}");
    }
}

/// Command names of the stream a raw replica reads while `steps` run,
/// up to a marker write.
fn stream_names(kind: Kind, steps: &[&str]) -> Vec<String> {
    let md = TempDir::new("suite-pub");
    let master = start(kind, &md, &[]);
    let mut raw = RawReplica::connect(master.port);
    let reply = raw.psync("?", -1, false);
    assert!(reply.starts_with("+FULLRESYNC "), "{reply}");
    raw.read_rdb();
    let mut c = master.conn();
    for st in steps {
        c.line(st);
    }
    c.line("SET marker 1");
    let mut names = vec![];
    loop {
        let (args, _) = raw
            .command(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{kind:?}: stream ended before the marker: {names:?}"));
        let name = args[0].to_ascii_lowercase();
        if name == "ping" {
            continue;
        }
        let marker = name == "set" && args[1] == "marker";
        names.push(args.join(" ").to_ascii_lowercase());
        if marker {
            break;
        }
    }
    names
}

/// A subscriber on the replica gets what is published on the master.
fn publish_on_replica(kind: Kind) -> Vec<u8> {
    let p = pair(kind, &[]);
    let mut sub = p.replica.conn();
    sub.line("SUBSCRIBE news");
    let mut m = p.master.conn();
    assert_eq!(s(m.line("PUBLISH news hello")), ":0\r\n");
    sub.try_read_reply(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{kind:?}: no message on the replica: {e:?}"))
}

#[test]
fn publish_is_replicated() {
    let stock = publish_on_replica(Kind::Stock);
    let keel = publish_on_replica(Kind::Keel);
    assert_eq!(
        stock,
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    assert_eq!(keel, stock);
    for steps in [
        &["PUBLISH bla bla", "SPUBLISH sbla bla"][..],
        // One effect: not wrapped in MULTI/EXEC.
        &["MULTI", "PUBLISH bla bla", "EXEC"][..],
        &["MULTI", "PUBLISH bla bla", "SET k v", "EXEC"][..],
    ] {
        let stock = stream_names(Kind::Stock, steps);
        let keel = stream_names(Kind::Keel, steps);
        assert!(stock.contains(&"publish bla bla".to_string()), "{stock:?}");
        assert_eq!(keel, stock, "{steps:?}");
    }
}

/// replication.tcl "GETSET replication": GETSET goes out as SET, SET ... GET
/// without its GET.
#[test]
fn getset_is_replicated_as_set() {
    let steps = ["SET test foo", "GETSET test bar", "SET test vaz GET"];
    let stock = stream_names(Kind::Stock, &steps);
    let keel = stream_names(Kind::Keel, &steps);
    assert!(stock.contains(&"set test bar".to_string()), "{stock:?}");
    assert_eq!(keel, stock);
}
