//! High availability with the tools Redis deployments already use: the
//! coordinated FAILOVER command between keel and stock Redis, stock
//! redis-sentinel managing a keel master through a kill -9, and keel
//! behind twemproxy (nutcracker). Real processes, real sockets.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::repl::{TempDir, digest, info_field, info_int, wait_for};
use common::{Conn, DirKeel, Server, free_port, require_tool};

fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// A stock redis-server replica of `master` (or a master when None) in
/// its own dir, with `extra` options.
fn stock(master: Option<u16>, dir: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.path(), "--repl-diskless-sync-delay", "0"];
    let port;
    if let Some(m) = master {
        port = m.to_string();
        args.extend(["--replicaof", "127.0.0.1", &port]);
    }
    args.extend_from_slice(extra);
    Server::redis(&args)
}

fn role(c: &mut Conn) -> String {
    let r = s(c.cmd(&["ROLE"]));
    r.lines().nth(2).unwrap_or("").to_string()
}

fn master_of(c: &mut Conn) -> (String, i64, String) {
    (
        info_field(c, "replication", "master_host"),
        info_int(c, "replication", "master_port"),
        info_field(c, "replication", "master_link_status"),
    )
}

fn offset(c: &mut Conn) -> i64 {
    info_int(c, "replication", "master_repl_offset")
}

/// Every node at the same offset with equal digests (writes stopped).
fn converge(nodes: &mut [(&str, Conn)]) {
    wait_for(30, "every node at the master's offset", || {
        let offs: Vec<i64> = nodes.iter_mut().map(|(_, c)| offset(c)).collect();
        offs.iter().all(|&o| o == offs[0] && o > 0)
    });
    let digests: Vec<(String, String)> = nodes
        .iter_mut()
        .map(|(n, c)| (n.to_string(), digest(c)))
        .collect();
    assert!(
        digests.iter().all(|(_, d)| *d == digests[0].1),
        "digests differ: {digests:?}"
    );
}

/// A client that keeps writing to whichever of `ports` is the master:
/// INCR of a counter, a SET per value, and a set in DB 3. `acked` counts
/// the INCRs that answered, so the counter must equal it in the end
/// (FAILOVER loses nothing acknowledged).
struct RoleWriter {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    readonly: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RoleWriter {
    fn start(ports: Vec<u16>) -> RoleWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let readonly = Arc::new(AtomicU64::new(0));
        let (st, ack, ro) = (stop.clone(), acked.clone(), readonly.clone());
        let handle = std::thread::spawn(move || {
            'outer: while !st.load(Ordering::Relaxed) {
                let Some(mut c) = ports.iter().find_map(|&p| {
                    let mut c = Conn::connect(p);
                    (role(&mut c) == "master").then_some(c)
                }) else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                while !st.load(Ordering::Relaxed) {
                    let r = s(c.cmd(&["INCR", "ctr"]));
                    if r.starts_with("-READONLY") {
                        ro.fetch_add(1, Ordering::Relaxed);
                        continue 'outer;
                    }
                    assert!(r.starts_with(':'), "INCR answered {r}");
                    let v = r[1..].trim().to_string();
                    ack.fetch_add(1, Ordering::Relaxed);
                    // Later writes of this value may meet READONLY: the
                    // counter, not them, is what is checked exactly.
                    let r = s(c.cmd(&["SET", &format!("k:{v}"), &v]));
                    if !r.starts_with('+') {
                        assert!(r.starts_with("-READONLY"), "SET answered {r}");
                        ro.fetch_add(1, Ordering::Relaxed);
                        continue 'outer;
                    }
                    let mut tx = common::encode(&["SELECT", "3"]);
                    tx.extend(common::encode(&["SADD", "vals", &v]));
                    tx.extend(common::encode(&["SELECT", "0"]));
                    c.send(&tx);
                    let replies: Vec<String> = (0..3).map(|_| s(c.read_reply())).collect();
                    if replies.iter().any(|r| r.starts_with('-')) {
                        ro.fetch_add(1, Ordering::Relaxed);
                        c.cmd(&["SELECT", "0"]);
                        continue 'outer;
                    }
                }
            }
        });
        RoleWriter {
            stop,
            acked,
            readonly,
            handle: Some(handle),
        }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    fn readonly_seen(&self) -> u64 {
        self.readonly.load(Ordering::Relaxed)
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("writer panicked");
        self.acked()
    }
}

fn ctr(c: &mut Conn) -> u64 {
    let r = s(c.cmd(&["GET", "ctr"]));
    r.lines()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("GET ctr: {r}"))
}

/// Sends `sig` (e.g. "-STOP") to process `pid`.
fn kill(pid: u32, sig: &str) {
    std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
}

/// One command on a fresh connection; "" when the connection is refused or
/// killed meanwhile (Sentinel's CLIENT KILL TYPE normal at role changes).
fn probe(node: u16, args: &[&str]) -> String {
    let Ok(sock) = std::net::TcpStream::connect(("127.0.0.1", node)) else {
        return String::new();
    };
    let _ = sock.set_nodelay(true);
    let mut w = &sock;
    if std::io::Write::write_all(&mut w, &common::encode(args)).is_err() {
        return String::new();
    }
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Ok(Some(n)) = common::frame_len(&buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        match std::io::Read::read(&mut w, &mut chunk) {
            Ok(0) | Err(_) => return String::new(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn probe_info(node: u16, field: &str) -> String {
    let text = probe(node, &["INFO", "replication"]);
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn wait_role(node: u16, want: &str, what: &str) {
    wait_for(20, what, || {
        probe(node, &["ROLE"]).lines().nth(2) == Some(want)
    });
}

fn wait_following(node: u16, port: u16, what: &str) {
    wait_for(30, what, || {
        probe_info(node, "master_host") == "127.0.0.1"
            && probe_info(node, "master_port") == port.to_string()
            && probe_info(node, "master_link_status") == "up"
    });
}

#[test]
fn failover_command_errors_match_stock() {
    let kdir = TempDir::new("fo-err");
    let keel = DirKeel::start(&kdir.0, 2, &[]);
    let sdir = TempDir::new("fo-err-stock");
    let redis = stock(None, &sdir, &[]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    let cases: &[&[&str]] = &[
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "-5"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "10"],
        &["FAILOVER", "TO", "127.0.0.1", "notaport"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "FORCE"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "bogus"],
        &["FAILOVER", "TO", "127.0.0.1", "1", "FORCE"],
    ];
    for args in cases {
        assert_eq!(
            s(k.cmd(args)),
            s(r.cmd(args)),
            "{args:?} on a master without replicas"
        );
    }
    // With a replica attached: the target checks and FORCE's requirements.
    let rep_dir = TempDir::new("fo-err-rep");
    let kr = DirKeel::start(
        &rep_dir.0,
        1,
        &["--replicaof", "127.0.0.1", &keel.port.to_string()],
    );
    let srep_dir = TempDir::new("fo-err-srep");
    let sr = stock(Some(redis.port), &srep_dir, &[]);
    wait_following(kr.port, keel.port, "keel replica up");
    wait_following(sr.port, redis.port, "stock replica up");
    for args in [
        &["FAILOVER", "TO", "127.0.0.1", "1"][..],
        &["FAILOVER", "FORCE", "TIMEOUT", "100"],
        &["FAILOVER", "TO", "127.0.0.1", "1", "FORCE"],
    ] {
        assert_eq!(s(k.cmd(args)), s(r.cmd(args)), "{args:?} with a replica");
    }
    // On a replica.
    assert_eq!(
        s(kr.conn().cmd(&["FAILOVER"])),
        s(sr.conn().cmd(&["FAILOVER"])),
        "FAILOVER on a replica"
    );
    // PSYNC FAILOVER sent to a master, and to a replica with another replid.
    for (port_k, port_r, what) in [
        (keel.port, redis.port, "master"),
        (kr.port, sr.port, "replica"),
    ] {
        let a = s(Conn::connect(port_k).cmd(&[
            "PSYNC",
            "0123456789012345678901234567890123456789",
            "1",
            "FAILOVER",
        ]));
        let b = s(Conn::connect(port_r).cmd(&[
            "PSYNC",
            "0123456789012345678901234567890123456789",
            "1",
            "FAILOVER",
        ]));
        assert_eq!(a, b, "PSYNC FAILOVER to a {what}");
    }
}

/// keel master (2 shards) with a keel and a stock replica: FAILOVER TO the
/// keel replica under a write load. Nothing acknowledged is lost, writes
/// waited (then met READONLY and went to the new master), the old master
/// follows the new one by partial resync, the stock replica stays chained
/// to the old master, and no full sync happens after the first ones.
#[test]
fn failover_to_keel_replica_under_writes() {
    let adir = TempDir::new("fo-a");
    let a = DirKeel::start(&adir.0, 2, &["--repl-diskless-sync-delay", "0"]);
    let bdir = TempDir::new("fo-b");
    let b = DirKeel::start(
        &bdir.0,
        1,
        &["--replicaof", "127.0.0.1", &a.port.to_string()],
    );
    let sdir = TempDir::new("fo-s");
    let st = stock(Some(a.port), &sdir, &[]);
    let (mut ac, mut sc) = (a.conn(), st.conn());
    wait_following(b.port, a.port, "keel replica up");
    wait_following(st.port, a.port, "stock replica up");
    let full_before = info_int(&mut ac, "stats", "sync_full");

    let w = RoleWriter::start(vec![a.port, b.port]);
    wait_for(20, "writes before the failover", || w.acked() > 300);
    let r = s(ac.cmd(&["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()]));
    assert_eq!(r, "+OK\r\n");
    wait_role(b.port, "master", "the target promoted");
    wait_role(a.port, "slave", "the old master demoted");
    assert_eq!(
        info_field(&mut ac, "replication", "master_failover_state"),
        "no-failover"
    );
    wait_following(a.port, b.port, "old master follows the new one");
    let at_switch = w.acked();
    // The writer's command caught by the pause ran after the handover.
    wait_for(20, "a paused write met READONLY", || w.readonly_seen() > 0);
    wait_for(20, "writes on the new master", || {
        w.acked() > at_switch + 300
    });
    let acked = w.finish();

    // A write sent during the pause waited, then met READONLY.
    let mut bc2 = b.conn();
    assert_eq!(ctr(&mut bc2), acked, "counter = acknowledged INCRs");
    let (h, p, _) = master_of(&mut sc);
    assert_eq!(
        (h.as_str(), p),
        ("127.0.0.1", a.port as i64),
        "stock replica chained"
    );
    converge(&mut [
        ("new master", bc2),
        ("old master", a.conn()),
        ("stock", st.conn()),
    ]);
    let mut bc3 = b.conn();
    assert_eq!(
        info_int(&mut bc3, "stats", "sync_full"),
        0,
        "no full sync from the new master"
    );
    assert!(info_int(&mut bc3, "stats", "sync_partial_ok") >= 1);
    assert_eq!(
        info_int(&mut ac, "stats", "sync_full"),
        full_before,
        "no new full sync"
    );
    assert!(a.log_text().contains("Failover target 127.0.0.1:"));
    assert!(
        b.log_text()
            .contains("MASTER MODE enabled (failover request from")
    );
}

/// Stock Redis master -> FAILOVER (any replica) -> keel takes over and the
/// stock node follows it by partial resync; then keel FAILOVER back with a
/// TIMEOUT, partial again.
#[test]
fn failover_stock_master_to_keel_and_back() {
    let sdir = TempDir::new("fo2-s");
    let st = stock(None, &sdir, &[]);
    let full_before = 1; // keel's initial sync
    let kdir = TempDir::new("fo2-k");
    let k = DirKeel::start(
        &kdir.0,
        2,
        &["--replicaof", "127.0.0.1", &st.port.to_string()],
    );
    let (mut sc, mut kc) = (st.conn(), k.conn());
    wait_following(k.port, st.port, "keel follows stock");
    let w = RoleWriter::start(vec![st.port, k.port]);
    wait_for(20, "writes", || w.acked() > 300);
    assert_eq!(s(sc.cmd(&["FAILOVER"])), "+OK\r\n");
    wait_role(k.port, "master", "keel promoted by stock's FAILOVER");
    wait_following(st.port, k.port, "stock follows keel");
    let n = w.acked();
    wait_for(20, "writes on keel", || w.acked() > n + 300);
    assert_eq!(
        s(kc.cmd(&[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &st.port.to_string(),
            "TIMEOUT",
            "5000"
        ])),
        "+OK\r\n"
    );
    wait_role(st.port, "master", "stock promoted by keel's FAILOVER");
    wait_following(k.port, st.port, "keel follows stock again");
    let n = w.acked();
    wait_for(20, "writes on stock", || w.acked() > n + 300);
    let acked = w.finish();
    let mut sc2 = st.conn();
    assert_eq!(ctr(&mut sc2), acked, "counter = acknowledged INCRs");
    converge(&mut [("stock", sc2), ("keel", k.conn())]);
    let mut sc3 = st.conn();
    assert_eq!(
        info_int(&mut sc3, "stats", "sync_full"),
        full_before,
        "stock served no full sync after keel's first"
    );
    assert!(info_int(&mut sc3, "stats", "sync_partial_ok") >= 1);
    assert_eq!(
        info_int(&mut kc, "stats", "sync_full"),
        0,
        "keel served no full sync"
    );
    assert!(info_int(&mut kc, "stats", "sync_partial_ok") >= 1);
}

/// A target that cannot catch up (stopped with SIGSTOP): writes wait in
/// `waiting-for-sync`; FAILOVER ABORT releases them; a TIMEOUT without
/// FORCE ends the same way by itself.
#[test]
fn failover_abort_and_timeout_release_paused_writes() {
    let kdir = TempDir::new("fo3");
    let k = DirKeel::start(&kdir.0, 2, &[]);
    let sdir = TempDir::new("fo3-s");
    let st = stock(Some(k.port), &sdir, &[]);
    let mut kc = k.conn();
    wait_following(st.port, k.port, "replica up");
    kc.cmd(&["SET", "before", "1"]);
    let signal = |sig: &str| kill(st.pid(), sig);
    signal("-STOP");
    // One write the replica never acknowledges: it cannot catch up.
    kc.cmd(&["SET", "unacked", "1"]);
    for (how, abort) in [("ABORT", true), ("TIMEOUT", false)] {
        let args: Vec<&str> = if abort {
            vec!["FAILOVER"]
        } else {
            vec!["FAILOVER", "TIMEOUT", "1500"]
        };
        assert_eq!(s(kc.cmd(&args)), "+OK\r\n", "{how}");
        assert_eq!(
            info_field(&mut kc, "replication", "master_failover_state"),
            "waiting-for-sync"
        );
        let mut writer = k.conn();
        writer.send(&common::encode(&["INCR", "paused"]));
        assert!(
            writer.try_read_reply(Duration::from_millis(500)).is_err(),
            "a write answered during the pause ({how})"
        );
        // Reads still answer.
        assert_eq!(s(kc.cmd(&["GET", "before"])), "$1\r\n1\r\n");
        let t = Instant::now();
        if abort {
            assert_eq!(s(kc.cmd(&["FAILOVER", "ABORT"])), "+OK\r\n");
        }
        let r = writer
            .try_read_reply(Duration::from_secs(10))
            .expect("write released");
        assert!(s(r).starts_with(':'), "{how}: the paused write ran");
        if !abort {
            assert!(
                t.elapsed() >= Duration::from_millis(700),
                "released before the timeout"
            );
        }
        assert_eq!(
            info_field(&mut kc, "replication", "master_failover_state"),
            "no-failover"
        );
        assert_eq!(role(&mut kc), "master");
    }
    assert_eq!(
        s(kc.cmd(&["FAILOVER", "ABORT"])),
        "-ERR No failover in progress.\r\n"
    );
    assert!(
        k.log_text()
            .contains("FAILOVER to any replica aborted: Failover manually aborted")
    );
    assert!(
        k.log_text()
            .contains("Replica never caught up before timeout")
    );
    signal("-CONT");
    let mut sc = st.conn();
    wait_for(20, "replica catches up", || {
        offset(&mut sc) == offset(&mut kc)
    });
    assert_eq!(s(sc.cmd(&["GET", "paused"])), "$1\r\n2\r\n");
}

/// FAILOVER TO ... FORCE with a TIMEOUT hands over even to a replica that
/// never caught up (stopped with SIGSTOP): when it resumes it takes the
/// PSYNC FAILOVER, becomes master, and the old master follows it (by full
/// sync: it is ahead of the new history).
#[test]
fn failover_force_hands_over_to_a_lagging_replica() {
    let kdir = TempDir::new("fo4");
    let k = DirKeel::start(&kdir.0, 2, &[]);
    let sdir = TempDir::new("fo4-s");
    let st = stock(Some(k.port), &sdir, &[]);
    wait_following(st.port, k.port, "replica up");
    let mut kc = k.conn();
    kc.cmd(&["SET", "acked", "1"]);
    wait_for(10, "replica has it", || {
        offset(&mut st.conn()) == offset(&mut kc)
    });
    let signal = |sig: &str| kill(st.pid(), sig);
    signal("-STOP");
    kc.cmd(&["SET", "lost", "1"]);
    let r = s(kc.cmd(&[
        "FAILOVER",
        "TO",
        "127.0.0.1",
        &st.port.to_string(),
        "TIMEOUT",
        "500",
        "FORCE",
    ]));
    assert_eq!(r, "+OK\r\n");
    wait_for(10, "forced past the timeout", || {
        info_field(&mut kc, "replication", "master_failover_state") == "failover-in-progress"
    });
    assert_eq!(role(&mut kc), "slave");
    signal("-CONT");
    wait_role(st.port, "master", "the lagging replica took over");
    wait_following(k.port, st.port, "old master follows");
    assert_eq!(
        info_field(&mut kc, "replication", "master_failover_state"),
        "no-failover"
    );
    let mut sc = st.conn();
    assert_eq!(s(sc.cmd(&["GET", "acked"])), "$1\r\n1\r\n");
    converge(&mut [("new master", sc), ("old master", k.conn())]);
    assert!(k.log_text().contains("time out exceeded, failing over"));
}

// ---------------------------------------------------------------------------
// Sentinel

/// A stock redis-sentinel monitoring `mymaster` at `master_port`.
fn sentinel(dir: &TempDir, idx: usize, master_port: u16) -> Server {
    require_tool("redis-sentinel");
    let conf = dir.0.join(format!("sentinel-{idx}.conf"));
    let wd = dir.path().to_string();
    Server::start("sentinel", "redis-sentinel", move |port| {
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {wd}\n\
                 sentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 10000\n\
                 sentinel parallel-syncs mymaster 2\n"
            ),
        )
        .unwrap();
        vec![conf.display().to_string()]
    })
}

fn write_conf(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A Sentinel-aware client: asks the sentinels for the master, writes,
/// and asks again after an error. `durable` is the highest counter value
/// that WAIT confirmed on both replicas: it survives any failover.
struct SentinelWriter {
    stop: Arc<AtomicBool>,
    durable: Arc<AtomicU64>,
    ok_at: Arc<std::sync::Mutex<Vec<(u16, u64)>>>,
    handle: Option<JoinHandle<()>>,
}

impl SentinelWriter {
    fn start(sentinels: Vec<u16>) -> SentinelWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let durable = Arc::new(AtomicU64::new(0));
        let ok_at = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (st, dur, oks) = (stop.clone(), durable.clone(), ok_at.clone());
        let handle = std::thread::spawn(move || {
            let mut turn = 0;
            while !st.load(Ordering::Relaxed) {
                turn += 1;
                let sp = sentinels[turn % sentinels.len()];
                let Some(port) = ask_master(sp) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                    continue;
                };
                let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500))
                else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
                eprintln!("writer: connected to {port}");
                while !st.load(Ordering::Relaxed) {
                    let v: Result<u64, _> = redis::cmd("INCR").arg("ctr").query(&mut con);
                    let v = match v {
                        Ok(v) => v,
                        Err(e) => {
                            eprintln!("writer: INCR on {port}: {e}");
                            break;
                        }
                    };
                    let set: Result<(), _> = redis::pipe()
                        .cmd("SET")
                        .arg(format!("k:{v}"))
                        .arg(v)
                        .ignore()
                        .cmd("SELECT")
                        .arg(3)
                        .ignore()
                        .cmd("SADD")
                        .arg("vals")
                        .arg(v)
                        .ignore()
                        .cmd("SELECT")
                        .arg(0)
                        .ignore()
                        .query(&mut con);
                    if let Err(e) = set {
                        eprintln!("writer: SET on {port}: {e}");
                        break;
                    }
                    let n: Result<i64, _> = redis::cmd("WAIT").arg(2).arg(20).query(&mut con);
                    if let Err(e) = &n {
                        eprintln!("writer: WAIT on {port}: {e}");
                    }
                    if n == Ok(2) {
                        dur.fetch_max(v, Ordering::Relaxed);
                    }
                    oks.lock().unwrap().push((port, v));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        SentinelWriter {
            stop,
            durable,
            ok_at,
            handle: Some(handle),
        }
    }

    fn writes_on(&self, port: u16) -> usize {
        self.ok_at
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == port)
            .count()
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("writer panicked");
        self.durable.load(Ordering::Relaxed)
    }
}

fn ask_master(sentinel_port: u16) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{sentinel_port}/")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("mymaster")
        .query(&mut con)
        .ok()?;
    addr.map(|(_, p)| p)
}

/// 3 stock sentinels, a keel master (2 shards, started from a config
/// file), a keel replica (config file too) and a stock replica that
/// Sentinel may not promote (priority 0). kill -9 of the master under a
/// Sentinel-aware writer: the keel replica is elected, the stock replica
/// follows it by partial resync, writes continue, the old master comes
/// back as a replica (Sentinel's SLAVEOF + CONFIG REWRITE), every digest
/// is equal and nothing WAIT confirmed is lost.
#[test]
fn sentinel_failover_kill9_keel_master() {
    let dir = TempDir::new("sentinel");
    let (ap, bp) = (free_port(), free_port());
    let (adir, bdir) = (dir.0.join("a"), dir.0.join("b"));
    std::fs::create_dir_all(&adir).unwrap();
    std::fs::create_dir_all(&bdir).unwrap();
    let (aconf, bconf) = (adir.join("keel.conf"), bdir.join("keel.conf"));
    write_conf(
        &aconf,
        "# node A: starts as master\nbind 127.0.0.1\nrepl-diskless-sync-delay 0\n",
    );
    write_conf(
        &bconf,
        &format!("# node B\nreplica-priority 10\nreplicaof 127.0.0.1 {ap}\n"),
    );
    let mut a = DirKeel::start_conf(&aconf, ap, &adir, 2, &[]);
    let b = DirKeel::start_conf(&bconf, bp, &bdir, 2, &[]);
    let sdir = TempDir::new("sentinel-stock");
    let st = stock(Some(ap), &sdir, &["--replica-priority", "0"]);
    wait_following(b.port, ap, "keel replica up");
    wait_following(st.port, ap, "stock replica up");

    let sents: Vec<Server> = (0..3).map(|i| sentinel(&dir, i, ap)).collect();
    let sports: Vec<u16> = sents.iter().map(|s| s.port).collect();
    // Sentinel learns the replicas from the master's INFO and the other
    // sentinels from hello messages published through keel.
    wait_for(40, "sentinels see 2 replicas and each other", || {
        sports.iter().all(|&p| {
            let mut c = Conn::connect(p);
            let m = s(c.cmd(&["SENTINEL", "MASTER", "mymaster"]));
            let field = |name: &str| {
                let lines: Vec<&str> = m.lines().collect();
                lines
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| lines.get(i + 2))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            field("num-slaves") == "2" && field("num-other-sentinels") == "2"
        })
    });

    let w = SentinelWriter::start(sports.clone());
    wait_for(20, "writes on the first master", || w.writes_on(ap) > 200);
    a.signal("-9");
    a.wait_exit();
    wait_for(60, "sentinels elect the keel replica", || {
        sports.iter().all(|&p| ask_master(p) == Some(bp))
    });
    wait_role(b.port, "master", "keel replica promoted");
    wait_following(st.port, bp, "stock replica follows the new master");
    // (WAIT 2 times out at 20 ms while only one replica is attached.)
    wait_for(30, "writes on the new master", || w.writes_on(bp) > 50);

    // The old master returns empty (kill -9, nothing saved) as a master;
    // Sentinel turns it into a replica of the new one.
    let a2 = DirKeel::start_conf(&aconf, ap, &adir, 2, &[]);
    wait_following(a2.port, bp, "old master reconfigured as a replica");
    let more = w.writes_on(bp);
    wait_for(30, "writes after the old master returned", || {
        w.writes_on(bp) > more + 50
    });
    let durable = w.finish();

    assert!(durable > 0, "WAIT never confirmed a write");
    let mut bc2 = b.conn();
    let final_ctr = ctr(&mut bc2);
    assert!(
        final_ctr >= durable,
        "lost a confirmed write: {final_ctr} < {durable}"
    );
    converge(&mut [
        ("new master", bc2),
        ("old master", a2.conn()),
        ("stock", st.conn()),
    ]);
    // The stock replica resyncs partially wherever the offsets allow: the
    // old master may have sent it bytes the keel replica never got (then
    // even stock Redis must full-sync it). The old master's full sync is
    // expected (kill -9 lost its data).
    let mut bc3 = b.conn();
    let second = info_int(&mut bc3, "replication", "second_repl_offset");
    let asked: i64 = st
        .log_text()
        .lines()
        .filter_map(|l| {
            l.split("Trying a partial resynchronization (request ")
                .nth(1)
        })
        .next_back()
        .and_then(|r| r.trim_end_matches(").").rsplit(':').next()?.parse().ok())
        .expect("the stock replica tried a partial resync");
    let partial = info_int(&mut bc3, "stats", "sync_partial_ok");
    let full = info_int(&mut bc3, "stats", "sync_full");
    if asked <= second {
        assert!(
            partial >= 1,
            "stock replica at {asked} <= {second} not resynced partially"
        );
        assert_eq!(full, 1, "full syncs other than the old master's");
    } else {
        eprintln!("stock replica was ahead ({asked} > {second}): full sync expected");
        assert_eq!(
            full, 2,
            "full syncs other than the stock's and the old master's"
        );
    }
    // CONFIG REWRITE by Sentinel: comments kept, replicaof updated.
    let a_text = std::fs::read_to_string(&aconf).unwrap();
    assert!(
        a_text.starts_with("# node A: starts as master\n"),
        "{a_text}"
    );
    assert!(
        a_text.contains(&format!("replicaof 127.0.0.1 {bp}")),
        "{a_text}"
    );
    let b_text = std::fs::read_to_string(&bconf).unwrap();
    assert!(b_text.starts_with("# node B\n"), "{b_text}");
    assert!(
        !b_text.contains("replicaof"),
        "promoted node still has replicaof:\n{b_text}"
    );
    drop(sents);
}

// ---------------------------------------------------------------------------
// twemproxy

/// nutcracker (twemproxy) in front of two keel processes: a redis-benchmark
/// run through it passes and its keys spread over both backends.
#[test]
fn twemproxy_with_two_keel_backends() {
    // Debian installs it in /usr/sbin, outside a non-root PATH.
    let nutcracker = if Path::new("/usr/sbin/nutcracker").exists() {
        "/usr/sbin/nutcracker"
    } else {
        require_tool("nutcracker");
        "nutcracker"
    };
    require_tool("redis-benchmark");
    let dir = TempDir::new("twem");
    let k1 = DirKeel::start(&dir.0.join("k1").tap_mkdir(), 2, &[]);
    let k2 = DirKeel::start(&dir.0.join("k2").tap_mkdir(), 1, &[]);
    let conf = dir.0.join("nutcracker.yml");
    let proxy = Server::start("nutcracker", nutcracker, |port| {
        std::fs::write(
            &conf,
            format!(
                "keel:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
                 redis: true\n  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n   \
                 - 127.0.0.1:{}:1 k1\n   - 127.0.0.1:{}:1 k2\n",
                k1.port, k2.port
            ),
        )
        .unwrap();
        vec![
            "-c".into(),
            conf.display().to_string(),
            "-s".into(),
            free_port().to_string(),
            "-o".into(),
            dir.0
                .join(format!("nutcracker-{port}.log"))
                .display()
                .to_string(),
        ]
    });
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &proxy.port.to_string(),
            "-t",
            "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,mset",
            "-n",
            "20000",
            "-r",
            "10000",
            "-c",
            "20",
            "-q",
            "--csv",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "redis-benchmark failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for t in ["SET", "GET", "INCR", "LPUSH", "SADD", "HSET", "MSET"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("\"{t}"))),
            "no {t} result: {text}"
        );
    }
    let sizes: Vec<i64> = [&k1, &k2]
        .iter()
        .map(|k| s(k.conn().cmd(&["DBSIZE"]))[1..].trim().parse().unwrap())
        .collect();
    assert!(sizes.iter().all(|&n| n > 100), "keys not spread: {sizes:?}");
    // Every key is where the proxy hashes it: reads through it see them all.
    let mut pc = proxy.conn();
    for i in 0..200 {
        let k = format!("twem:{i}");
        assert_eq!(s(pc.cmd(&["SET", &k, &i.to_string()])), "+OK\r\n");
    }
    for i in 0..200 {
        let k = format!("twem:{i}");
        assert_eq!(
            s(pc.cmd(&["GET", &k])),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
    }
    let mut direct = 0;
    for k in [&k1, &k2] {
        let mut c = k.conn();
        for i in 0..200 {
            if s(c.cmd(&["EXISTS", &format!("twem:{i}")])) == ":1\r\n" {
                direct += 1;
            }
        }
    }
    assert_eq!(direct, 200, "each key on exactly one backend");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// replica-announce-ip/port (how Sentinel finds replicas behind NAT): a
/// keel master lists what stock and keel replicas announce, and a stock
/// master lists what a keel replica announces.
#[test]
fn replica_announce_reaches_masters() {
    let kdir = TempDir::new("announce");
    let k = DirKeel::start(&kdir.0, 2, &[]);
    let sdir = TempDir::new("announce-s");
    let kp = k.port.to_string();
    let st = stock(
        Some(k.port),
        &sdir,
        &[
            "--replica-announce-ip",
            "10.1.2.3",
            "--replica-announce-port",
            "4567",
        ],
    );
    let rdir = TempDir::new("announce-k");
    let announced = [
        "--replica-announce-ip",
        "10.9.9.9",
        "--replica-announce-port",
        "999",
    ];
    let mut args = vec!["--replicaof", "127.0.0.1", &kp];
    args.extend(announced);
    let kr = DirKeel::start(&rdir.0, 1, &args);
    wait_following(st.port, k.port, "stock replica up");
    wait_following(kr.port, k.port, "keel replica up");
    let mut kc = k.conn();
    wait_for(10, "both replicas listed", || {
        let info = s(kc.cmd(&["INFO", "replication"]));
        info.contains("ip=10.1.2.3,port=4567,state=online")
            && info.contains("ip=10.9.9.9,port=999,state=online")
    });
    let role = s(kc.cmd(&["ROLE"]));
    assert!(
        role.contains("10.1.2.3\r\n$4\r\n4567") && role.contains("10.9.9.9\r\n$3\r\n999"),
        "{role}"
    );

    let mdir = TempDir::new("announce-m");
    let master = stock(None, &mdir, &[]);
    let mp = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &mp];
    args.extend(announced);
    let rdir2 = TempDir::new("announce-k2");
    let kr2 = DirKeel::start(&rdir2.0, 2, &args);
    wait_following(kr2.port, master.port, "keel follows stock");
    let mut mc = master.conn();
    wait_for(10, "stock master lists keel's announced address", || {
        s(mc.cmd(&["INFO", "replication"])).contains("ip=10.9.9.9,port=999,state=online")
    });
}
