//! The append-only file with real processes and real files: kill -9 under a
//! write load with `always` and `everysec`, AOF directories exchanged with
//! stock redis-server (and checked by redis-check-aof), BGREWRITEAOF under
//! load, truncated and corrupt files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::DirKeel as Keel;
use common::*;

fn tempdir(name: &str) -> PathBuf {
    common::tempdir(&format!("aof-{name}"))
}

/// SHUTDOWN NOSAVE (the AOF is flushed and fsynced first), waiting for
/// the connection to close.
fn shutdown(c: &mut Conn) {
    c.send_lossy(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    let (_, closed) = c.read_until_close(Duration::from_secs(10));
    assert!(closed, "SHUTDOWN did not close the connection");
}

fn aof_args(fsync: &str) -> Vec<&str> {
    vec!["--save", "", "--appendonly", "yes", "--appendfsync", fsync]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if !e.file_name().to_string_lossy().ends_with(".log") {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// redis-check-aof on the manifest: must exit 0.
fn check_aof(dir: &Path) {
    require_tool("redis-check-aof");
    let out = Command::new("redis-check-aof")
        .arg(dir.join("appendonlydir/appendonly.aof.manifest"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-check-aof failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stock redis-server with AOF on, on `dir`.
fn stock_on(dir: &Path, extra: &[&str]) -> Server {
    let d = dir.display().to_string();
    let mut a = vec!["--dir", d.as_str(), "--appendonly", "yes"];
    a.extend_from_slice(extra);
    Server::redis(&a)
}

/// A stock server on a copy of `dir` sees `want`.
fn stock_digest_matches(dir: &Path, want: &str) {
    let copy = PathBuf::from(format!("{}-stock", dir.display()));
    copy_dir(dir, &copy);
    let r = stock_on(&copy, &[]);
    let mut c = r.conn();
    // Stock answers commands (DEBUG included) while it loads.
    let t = Instant::now();
    while info_field(&mut c, "loading") != "0" {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "stock never finished loading"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        digest(&mut c),
        want,
        "stock Redis loads other data from keel's AOF"
    );
    drop(r);
    let _ = std::fs::remove_dir_all(&copy);
}

/// What one load client had acknowledged.
#[derive(Default)]
struct Acked {
    sets: Vec<u64>,
    incr: i64,
    lpush: u64,
    tx: Vec<u64>,
    eval: Vec<u64>,
    db5: Vec<u64>,
    /// Highest i attempted (a MULTI or script past it never started).
    tried: u64,
}

/// One client of the mixed write load; stops at the first error (the kill).
fn load_client(port: u16, t: usize, stop: Arc<AtomicBool>) -> Acked {
    let mut a = Acked::default();
    let mut c = Conn::connect(port);
    let ok = |r: &[u8]| !r.is_empty() && r[0] != b'-';
    let mut i = 0u64;
    let script = "redis.call('set',KEYS[1],ARGV[1]) redis.call('set',KEYS[2],ARGV[1]) return 1";
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        a.tried = i;
        let try_cmd = |c: &mut Conn, args: &[&str]| -> Option<Vec<u8>> {
            c.send(&encode(args));
            c.try_read_reply(Duration::from_secs(5)).ok()
        };
        let k = format!("k:{t}:{i}");
        match try_cmd(&mut c, &["SET", &k, &i.to_string()]) {
            Some(r) if ok(&r) => a.sets.push(i),
            _ => break,
        }
        let tk = format!("ttl:{t}:{i}");
        if try_cmd(&mut c, &["SET", &tk, "v", "EX", "100000"]).is_none() {
            break;
        }
        match try_cmd(&mut c, &["INCR", &format!("ctr:{t}")]) {
            Some(r) if r.first() == Some(&b':') => {
                a.incr = std::str::from_utf8(&r[1..r.len() - 2])
                    .unwrap()
                    .parse()
                    .unwrap()
            }
            _ => break,
        }
        match try_cmd(&mut c, &["LPUSH", &format!("list:{t}"), &i.to_string()]) {
            Some(r) if ok(&r) => a.lpush += 1,
            _ => break,
        }
        if try_cmd(&mut c, &["HSET", &format!("h:{t}"), &format!("f{i}"), "1"]).is_none() {
            break;
        }
        // A transaction over keys of different shards.
        c.send(&encode(&["MULTI"]));
        c.send(&encode(&["SET", &format!("txa:{t}:{i}"), "1"]));
        c.send(&encode(&["SET", &format!("txb:{t}:{i}"), "1"]));
        c.send(&encode(&["INCR", &format!("txc:{t}")]));
        c.send(&encode(&["EXEC"]));
        let mut exec = None;
        for _ in 0..5 {
            exec = c.try_read_reply(Duration::from_secs(5)).ok();
            if exec.is_none() {
                break;
            }
        }
        match exec {
            Some(r) if r.starts_with(b"*3") => a.tx.push(i),
            _ => break,
        }
        match try_cmd(
            &mut c,
            &[
                "EVAL",
                script,
                "2",
                &format!("ea:{t}:{i}"),
                &format!("eb:{t}:{i}"),
                "1",
            ],
        ) {
            Some(r) if r == b":1\r\n" => a.eval.push(i),
            _ => break,
        }
        match try_cmd(&mut c, &["SELECT", "5"]) {
            Some(r) if ok(&r) => {}
            _ => break,
        }
        match try_cmd(&mut c, &["SET", &format!("db5:{t}:{i}"), "1"]) {
            Some(r) if ok(&r) => a.db5.push(i),
            _ => break,
        }
        if try_cmd(&mut c, &["SELECT", "0"]).is_none() {
            break;
        }
    }
    a
}

fn exists(c: &mut Conn, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == b":1\r\n"
}

#[test]
fn always_kill9_keeps_every_acknowledged_write_and_stock_loads_it() {
    let dir = tempdir("always");
    let k = Keel::start(&dir, 2, &aof_args("always"));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            let port = k.port;
            std::thread::spawn(move || load_client(port, t, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // kill -9 while the clients are still writing.
    k.signal("-9");
    let acked: Vec<Acked> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    drop(k);
    assert!(
        acked.iter().map(|a| a.sets.len()).sum::<usize>() > 20,
        "the load made too few writes to mean anything"
    );

    let k2 = Keel::start(&dir, 2, &aof_args("always"));
    let mut c = k2.conn();
    for (t, a) in acked.iter().enumerate() {
        for i in &a.sets {
            assert!(
                exists(&mut c, &format!("k:{t}:{i}")),
                "acked SET k:{t}:{i} lost"
            );
        }
        let ctr = c.cmd(&["GET", &format!("ctr:{t}")]);
        let ctr: i64 = String::from_utf8_lossy(&ctr)
            .lines()
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap();
        assert!(
            ctr >= a.incr,
            "INCR ctr:{t} acked {} but {ctr} restored",
            a.incr
        );
        let len = c.cmd(&["LLEN", &format!("list:{t}")]);
        let len: u64 = std::str::from_utf8(&len[1..len.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            len >= a.lpush,
            "LPUSH list:{t}: {} acked, {len} restored",
            a.lpush
        );
        for i in &a.tx {
            assert!(
                exists(&mut c, &format!("txa:{t}:{i}")),
                "acked EXEC {t}:{i} lost"
            );
        }
        for i in &a.eval {
            assert!(
                exists(&mut c, &format!("ea:{t}:{i}")),
                "acked EVAL {t}:{i} lost"
            );
        }
        // Never a transaction or a script in part, acked or not.
        for i in 1..=a.tried {
            let (x, y) = (
                exists(&mut c, &format!("txa:{t}:{i}")),
                exists(&mut c, &format!("txb:{t}:{i}")),
            );
            assert_eq!(x, y, "MULTI {t}:{i} came back in part");
            let (x, y) = (
                exists(&mut c, &format!("ea:{t}:{i}")),
                exists(&mut c, &format!("eb:{t}:{i}")),
            );
            assert_eq!(x, y, "EVAL {t}:{i} came back in part");
        }
        c.line("SELECT 5");
        for i in &a.db5 {
            assert!(
                exists(&mut c, &format!("db5:{t}:{i}")),
                "acked SET in DB 5 lost"
            );
        }
        c.line("SELECT 0");
    }
    let ttl = c.cmd(&["TTL", &format!("ttl:0:{}", acked[0].sets[0])]);
    assert!(ttl.starts_with(b":9"), "TTL lost: {}", show(&ttl));
    let want = digest(&mut c);
    shutdown(&mut c);
    drop(k2);
    check_aof(&dir);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn everysec_kill9_keeps_writes_acked_two_seconds_before() {
    let dir = tempdir("everysec");
    let k = Keel::start(&dir, 1, &aof_args("everysec"));
    let mut c = k.conn();
    let mut acked: Vec<(u64, Instant)> = Vec::new();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < Duration::from_millis(3500) {
        i += 1;
        assert_eq!(c.cmd(&["SET", &format!("e:{i}"), "1"]), b"+OK\r\n");
        acked.push((i, Instant::now()));
    }
    let killed = Instant::now();
    k.signal("-9");
    drop(k);
    let k2 = Keel::start(&dir, 1, &aof_args("everysec"));
    let mut c2 = k2.conn();
    let mut checked = 0;
    for (i, at) in &acked {
        if killed.duration_since(*at) > Duration::from_secs(2) {
            checked += 1;
        }
        // As stock (a reply leaves after its write(2)), a crash of the
        // process alone loses no acknowledged write, even the last ones.
        assert!(
            exists(&mut c2, &format!("e:{i}")),
            "e:{i} acknowledged, lost by kill -9"
        );
    }
    assert!(
        checked > 100,
        "only {checked} writes were old enough to check"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every type, 16 DBs, a script, a transaction, streams.
fn fill(c: &mut Conn, tag: &str) {
    for db in 0..16 {
        c.line(&format!("SELECT {db}"));
        for i in 0..30 {
            c.line(&format!("SET {tag}str:{i} v{i}"));
            c.line(&format!("RPUSH {tag}list:{} {i}", i % 3));
            c.line(&format!("HSET {tag}hash:{} f{i} {i}", i % 3));
            c.line(&format!("SADD {tag}set {i}"));
            c.line(&format!("ZADD {tag}zset {i}.5 m{i}"));
        }
        c.line(&format!("SET {tag}ttl v EX 100000"));
        c.line(&format!("XADD {tag}stream 1-1 a 1"));
        c.line(&format!("XADD {tag}stream 2-1 b 2"));
        c.line(&format!("XGROUP CREATE {tag}stream g 0"));
        c.line(&format!(
            "XREADGROUP GROUP g alice COUNT 1 STREAMS {tag}stream >"
        ));
        c.line(&format!("PFADD {tag}hll a b c"));
    }
    c.line("SELECT 0");
    c.line(&format!(
        "EVAL \"redis.call('incr','{tag}e1') redis.call('lpush','{tag}e2','x') return 1\" 0"
    ));
    c.line("MULTI");
    c.line(&format!("INCRBY {tag}m1 5"));
    c.line(&format!("SADD {tag}m2 a b"));
    assert!(c.line("EXEC").starts_with(b"*2"));
}

fn wait_rewrite(c: &mut Conn, rewrites_before: u64) {
    let t = Instant::now();
    loop {
        let n: u64 = info_field(c, "aof_rewrites").parse().unwrap();
        if info_field(c, "aof_rewrite_in_progress") == "0" && n > rewrites_before {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the rewrite never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stock_aof_dirs_load_into_keel() {
    for preamble in ["yes", "no"] {
        let dir = tempdir(&format!("stock-{preamble}"));
        let r = stock_on(&dir, &["--aof-use-rdb-preamble", preamble]);
        let mut c = r.conn();
        fill(&mut c, "a");
        // A base holding data (RDB or commands), then more in the incr file.
        assert!(
            c.line("BGREWRITEAOF")
                .starts_with(b"+Background append only file rewriting")
        );
        wait_rewrite(&mut c, 0);
        fill(&mut c, "b");
        c.line("DEL alist:0 ahash:1");
        let want = digest(&mut c);
        shutdown(&mut c);
        drop(r);
        let base = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .find(|n| n.contains(".base."))
            .unwrap();
        let ext = if preamble == "yes" {
            ".base.rdb"
        } else {
            ".base.aof"
        };
        assert!(base.ends_with(ext), "stock wrote {base}");
        for shards in [1, 3] {
            let k = Keel::start(&dir, shards, &aof_args("everysec"));
            let mut kc = k.conn();
            assert_eq!(
                digest(&mut kc),
                want,
                "preamble {preamble}, {shards} shards"
            );
            shutdown(&mut kc);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn listed_files(dir: &Path) -> (String, Vec<String>) {
    let m = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let names = m
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    (m, names)
}

#[test]
fn bgrewriteaof_under_load_and_restart() {
    let dir = tempdir("rewrite");
    let k = Keel::start(&dir, 2, &aof_args("everysec"));
    let mut c = k.conn();
    fill(&mut c, "f");
    let stop = Arc::new(AtomicBool::new(false));
    let port = k.port;
    let s2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut w = Conn::connect(port);
        let mut i = 0u64;
        while !s2.load(Ordering::Relaxed) {
            i += 1;
            assert_eq!(
                w.cmd(&["SET", &format!("w:{}", i % 500), &i.to_string()]),
                b"+OK\r\n"
            );
            assert!(w.cmd(&["RPUSH", "wl", "x"]).starts_with(b":"));
        }
        i
    });
    for n in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            c.line("BGREWRITEAOF"),
            b"+Background append only file rewriting started\r\n"
        );
        wait_rewrite(&mut c, n);
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 100, "the load wrote only {writes} times");
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    let want = digest(&mut c);
    // Manifest as stock's: one base, the incr files after the last cut; no
    // other file left in the directory.
    let (m, names) = listed_files(&dir);
    let lines: Vec<&str> = m.lines().collect();
    assert!(
        lines[0].starts_with("file appendonly.aof.4.base.rdb seq 4 type b"),
        "{m}"
    );
    for l in &lines[1..] {
        assert!(
            l.starts_with("file appendonly.aof.") && l.ends_with(" type i"),
            "{m}"
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    on_disk.sort();
    let mut expect = names.clone();
    expect.push("appendonly.aof.manifest".into());
    expect.sort();
    assert_eq!(on_disk, expect, "old files left behind");
    let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    let real: u64 = names
        .iter()
        .map(|n| {
            std::fs::metadata(dir.join("appendonlydir").join(n))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(size, real, "aof_current_size");
    shutdown(&mut c);
    drop(k);
    check_aof(&dir);
    let k2 = Keel::start(&dir, 3, &aof_args("everysec"));
    let mut c2 = k2.conn();
    assert_eq!(digest(&mut c2), want, "restart after rewrites");
    shutdown(&mut c2);
    drop(k2);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// keel's AOF dir with a few writes, stopped; returns the incr file's path.
fn small_aof(dir: &Path) -> PathBuf {
    let k = Keel::start(dir, 1, &aof_args("always"));
    let mut c = k.conn();
    for i in 0..10 {
        c.line(&format!("SET k{i} {i}"));
    }
    shutdown(&mut c);
    drop(k);
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}

/// Starts `program` on `dir` with AOF on and `extra`; expects it to exit 1
/// and returns its output.
fn refused(program: &str, dir: &Path, extra: &[&str]) -> String {
    let d = dir.display().to_string();
    let port = free_port().to_string();
    let mut args = vec![
        "--port",
        &port,
        "--dir",
        &d,
        "--appendonly",
        "yes",
        "--save",
        "",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(program)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                st.code(),
                Some(1),
                "{program} must refuse to start:\n{text}"
            );
            return text;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn truncated_tail_and_corrupt_middle() {
    require_tool("redis-server");
    let keel = env!("CARGO_BIN_EXE_keel");
    // A truncated last command: refused with aof-load-truncated no (as stock)...
    let dir = tempdir("trunc");
    let incr = small_aof(&dir);
    let good = std::fs::metadata(&incr).unwrap().len();
    let mut data = std::fs::read(&incr).unwrap();
    data.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$2\r\nzz\r\n$5\r\nab");
    std::fs::write(&incr, &data).unwrap();
    let msg = "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof";
    for prog in [keel, "redis-server"] {
        let out = refused(prog, &dir, &["--aof-load-truncated", "no"]);
        assert!(out.contains(msg), "{prog}:\n{out}");
    }
    // ...loaded up to the last complete command and truncated there with yes.
    let k = Keel::start(&dir, 1, &aof_args("everysec"));
    let mut c = k.conn();
    assert_eq!(c.line("DBSIZE"), b":10\r\n");
    assert!(k.log_text().contains(&format!(
        "!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {good} !!!"
    )));
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good);
    shutdown(&mut c);
    drop(k);
    let _ = std::fs::remove_dir_all(&dir);

    // A MULTI without its EXEC at the end is reverted, not applied in part.
    let dir = tempdir("multi");
    let incr = small_aof(&dir);
    let good = std::fs::metadata(&incr).unwrap().len();
    let mut data = std::fs::read(&incr).unwrap();
    data.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$2\r\nzz\r\n$1\r\n1\r\n");
    std::fs::write(&incr, &data).unwrap();
    let k = Keel::start(&dir, 1, &aof_args("everysec"));
    let mut c = k.conn();
    assert_eq!(c.line("EXISTS zz"), b":0\r\n");
    assert_eq!(c.line("DBSIZE"), b":10\r\n");
    assert!(
        k.log_text()
            .contains("Revert incomplete MULTI/EXEC transaction")
    );
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good);
    shutdown(&mut c);
    drop(k);
    let _ = std::fs::remove_dir_all(&dir);

    // Garbage in the middle: both refuse with stock's message.
    let dir = tempdir("corrupt");
    let incr = small_aof(&dir);
    let data = std::fs::read(&incr).unwrap();
    let mid = data.len() / 2;
    let cut = mid + data[mid..].windows(3).position(|w| w == b"\n*3").unwrap() + 1;
    let mut bad = data[..cut].to_vec();
    bad.extend_from_slice(b"garbage\r\n");
    bad.extend_from_slice(&data[cut..]);
    std::fs::write(&incr, &bad).unwrap();
    let msg = "Bad file format reading the append only file appendonly.aof.1.incr.aof";
    for prog in [keel, "redis-server"] {
        let out = refused(prog, &dir, &[]);
        assert!(out.contains(msg), "{prog}:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timestamp_annotations_are_written_and_read() {
    let dir = tempdir("ts");
    let mut args = aof_args("always");
    args.extend(["--aof-timestamp-enabled", "yes"]);
    let k = Keel::start(&dir, 1, &args);
    let mut c = k.conn();
    c.line("SET a 1");
    c.line("SET b 2");
    let want = digest(&mut c);
    shutdown(&mut c);
    drop(k);
    let text =
        std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    assert!(text.starts_with("#TS:"), "{text}");
    check_aof(&dir);
    let k = Keel::start(&dir, 1, &aof_args("always"));
    assert_eq!(digest(&mut k.conn()), want);
    drop(k);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until `cond` holds (20 s at most).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keel replica with `appendonly yes` logs what it applies, as stock's
/// replica does: killed -9 and restarted from its AOF alone (no master),
/// it has the master's data; stock loads the same directory to it too. It
/// was a master with its own keys first: the full sync's data replaces
/// them in the AOF (a new base), as stock's restart of the AOF.
#[test]
fn replica_with_aof_logs_what_it_applies() {
    let dir = tempdir("replica");
    let master = Server::redis(&[]);
    let mut m = master.conn();
    fill(&mut m, "m");
    let k = Keel::start(&dir, 2, &aof_args("everysec"));
    let mut c = k.conn();
    c.line("SET own-key-before-replicaof 1");
    c.line("SELECT 3");
    c.line("SET own-db3 1");
    c.line("SELECT 0");
    let r = c.line(&format!("REPLICAOF 127.0.0.1 {}", master.port));
    assert_eq!(r, b"+OK\r\n", "{}", show(&r));
    // The full sync, then the new base that holds it.
    wait_for("the replica's AOF rewrite after the full sync", || {
        info_field(&mut c, "aof_rewrites") != "0"
            && info_field(&mut c, "aof_rewrite_in_progress") == "0"
    });
    // Then the stream: every DB, a transaction, a script, expiry, deletes.
    fill(&mut m, "s");
    m.line("SET ttl-key v PX 100000000");
    m.line("DEL mstr:1 mlist:0");
    m.line("SELECT 7");
    m.line("FLUSHDB");
    m.line("SELECT 0");
    let want = digest(&mut m);
    wait_for("the replica reaching the master's data", || {
        digest(&mut c) == want
    });
    // everysec: a second for the writer to reach the disk.
    std::thread::sleep(Duration::from_millis(1500));
    drop(k); // SIGKILL
    let (manifest, _) = listed_files(&dir);
    assert!(manifest.contains(".base.rdb seq 2 type b\n"), "{manifest}");
    check_aof(&dir);
    let k2 = Keel::start(&dir, 1, &aof_args("everysec"));
    let mut c2 = k2.conn();
    assert_eq!(
        digest(&mut c2),
        want,
        "the replica's AOF does not hold the master's data"
    );
    assert_eq!(c2.line("EXISTS own-key-before-replicaof"), b":0\r\n");
    shutdown(&mut c2);
    drop(k2);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// DEBUG LOADAOF empties the server and loads the AOF directory again, as
/// stock: what an outside hand appended to the incr file appears, the
/// base's function library survives, and stock answers the same.
#[test]
fn debug_loadaof_reloads_the_directory() {
    let lib = "#!lua name=aoflib\nredis.register_function('f1', function() return 1 end)";
    let mut finals = Vec::new();
    for stock in [false, true] {
        let dir = tempdir(if stock {
            "loadaof-stock"
        } else {
            "loadaof-keel"
        });
        let stock_server = stock.then(|| stock_on(&dir, &["--appendfsync", "always"]));
        let keel_server = (!stock).then(|| Keel::start(&dir, 2, &aof_args("always")));
        let mut c = match (&stock_server, &keel_server) {
            (Some(r), _) => r.conn(),
            (_, Some(k)) => k.conn(),
            _ => unreachable!(),
        };
        c.cmd(&["FUNCTION", "LOAD", lib]);
        fill(&mut c, "x");
        // The library goes into the RDB base.
        c.line("BGREWRITEAOF");
        wait_rewrite(&mut c, 0);
        c.line("SET after-rewrite 1");
        let before = digest(&mut c);
        assert_eq!(c.line("DEBUG LOADAOF"), b"+OK\r\n");
        assert_eq!(digest(&mut c), before, "stock={stock}");
        // A write the server never saw, appended to the last incr file.
        let (_, files) = listed_files(&dir);
        let incr = files.iter().rev().find(|f| f.contains(".incr.")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("appendonlydir").join(incr))
            .unwrap();
        std::io::Write::write_all(&mut f, &encode(&["SET", "injected", "yes"])).unwrap();
        drop(f);
        // A key made after the flush is gone after the load unless the file has it.
        assert_eq!(c.line("DEBUG LOADAOF"), b"+OK\r\n");
        assert_eq!(c.line("GET injected"), b"$3\r\nyes\r\n", "stock={stock}");
        assert_eq!(c.line("FCALL f1 0"), b":1\r\n", "stock={stock}");
        c.line("SET after-load 1");
        finals.push(digest(&mut c));
        shutdown(&mut c);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(
        finals[0], finals[1],
        "keel and stock differ after DEBUG LOADAOF"
    );
}

/// DEBUG AOF-FLUSH-SLEEP holds the AOF writer before each write: with
/// `always` a write's reply waits for it.
#[test]
fn debug_aof_flush_sleep_delays_the_write() {
    let dir = tempdir("flush-sleep");
    let k = Keel::start(&dir, 1, &aof_args("always"));
    let mut c = k.conn();
    assert_eq!(c.line("DEBUG AOF-FLUSH-SLEEP 300000"), b"+OK\r\n");
    let t = Instant::now();
    assert_eq!(c.line("INCR n"), b":1\r\n");
    let slow = t.elapsed();
    assert!(
        slow >= Duration::from_millis(280),
        "the write took {slow:?}"
    );
    assert_eq!(c.line("DEBUG AOF-FLUSH-SLEEP 0"), b"+OK\r\n");
    let t = Instant::now();
    assert_eq!(c.line("INCR n"), b":2\r\n");
    let fast = t.elapsed();
    assert!(fast < Duration::from_millis(250), "the write took {fast:?}");
    shutdown(&mut c);
    drop(k);
    let r = Server::redis(&[]);
    assert_eq!(r.conn().line("DEBUG AOF-FLUSH-SLEEP 0"), b"+OK\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pre-7.0 single `appendonly.aof` in `dir` (commands, or an RDB
/// preamble) becomes the base of the multi-part directory at startup, as
/// stock upgrades it: same manifest, same data, and stock loads the result.
#[test]
fn pre_7_single_file_is_upgraded() {
    for preamble in [false, true] {
        let src = tempdir(&format!("old-src-{preamble}"));
        let content = if preamble {
            let r = Server::redis(&["--dir", &src.display().to_string()]);
            let mut c = r.conn();
            fill(&mut c, "p");
            assert_eq!(c.line("SAVE"), b"+OK\r\n");
            drop(r);
            let mut v = std::fs::read(src.join("dump.rdb")).unwrap();
            v.extend_from_slice(&encode(&["SET", "after-preamble", "1"]));
            v
        } else {
            let mut v = encode(&["SET", "a", "1"]);
            v.extend_from_slice(&encode(&["SELECT", "2"]));
            v.extend_from_slice(&encode(&["RPUSH", "l", "x", "y"]));
            v.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
            v.extend_from_slice(&encode(&["INCRBY", "n", "5"]));
            v.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
            v
        };
        let mut seen = Vec::new();
        for stock in [true, false] {
            let dir = tempdir(&format!("old-{preamble}-{stock}"));
            std::fs::write(dir.join("appendonly.aof"), &content).unwrap();
            let (r, k);
            let mut c = if stock {
                r = stock_on(&dir, &[]);
                r.conn()
            } else {
                k = Keel::start(&dir, 2, &aof_args("everysec"));
                k.conn()
            };
            // Stock answers while it loads; the manifest is final after.
            wait_for("the load", || info_field(&mut c, "loading") == "0");
            assert!(
                !dir.join("appendonly.aof").exists(),
                "stock={stock}: not moved"
            );
            let (m, _) = listed_files(&dir);
            let want = digest(&mut c);
            assert_ne!(want, "0".repeat(40), "stock={stock}: nothing loaded");
            c.line("SET after-upgrade 1");
            let want = (m, want, digest(&mut c));
            shutdown(&mut c);
            if !stock {
                // The upgraded directory (with what came after) loads into stock.
                stock_digest_matches(&dir, &want.2);
            }
            seen.push(want);
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert_eq!(seen[0].0, seen[1].0, "manifests differ (stock, keel)");
        assert_eq!(seen[0].1, seen[1].1, "loaded data differs (stock, keel)");
        assert_eq!(seen[0].2, seen[1].2);
        let _ = std::fs::remove_dir_all(&src);
    }
}

/// BGREWRITEAOF with `appendonly no` writes a base and a manifest naming
/// it alone, as stock; stock loads keel's directory to the same data.
#[test]
fn bgrewriteaof_with_appendonly_no() {
    let mut seen = Vec::new();
    for stock in [true, false] {
        let dir = tempdir(&format!("rewrite-off-{stock}"));
        let d = dir.display().to_string();
        let (r, k);
        let mut c = if stock {
            r = Server::redis(&["--dir", &d]);
            r.conn()
        } else {
            k = Keel::start(&dir, 2, &["--save", ""]);
            k.conn()
        };
        fill(&mut c, "o");
        let reply = c.line("BGREWRITEAOF");
        assert!(
            reply.starts_with(b"+Background append only file rewriting started"),
            "stock={stock}: {}",
            show(&reply)
        );
        wait_rewrite(&mut c, 0);
        assert_eq!(info_field(&mut c, "aof_enabled"), "0");
        let want = digest(&mut c);
        let (m, _) = listed_files(&dir);
        // A second one replaces the first base.
        c.line("SET more 1");
        c.line("BGREWRITEAOF");
        wait_rewrite(&mut c, 1);
        let want2 = digest(&mut c);
        let (m2, files) = listed_files(&dir);
        let on_disk = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .count();
        assert_eq!(on_disk, files.len() + 1, "stock={stock}: old files left");
        if !stock {
            check_aof(&dir);
            stock_digest_matches(&dir, &want2);
        }
        seen.push((m, m2, want));
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0], seen[1], "(manifests, data): stock, keel");
}

/// `aof-use-rdb-preamble no`: bases of commands (at startup and by
/// BGREWRITEAOF), read back by keel and by stock to the same data, with
/// function libraries, expiry, streams with groups and pending entries.
#[test]
fn bases_without_rdb_preamble() {
    let dir = tempdir("no-preamble");
    let mut args = aof_args("everysec");
    args.extend(["--aof-use-rdb-preamble", "no"]);
    let k = Keel::start(&dir, 2, &args);
    let mut c = k.conn();
    let (m, _) = listed_files(&dir);
    assert!(
        m.starts_with("file appendonly.aof.1.base.aof seq 1 type b\n"),
        "{m}"
    );
    c.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=nolib\nredis.register_function('g1', function() return 7 end)",
    ]);
    fill(&mut c, "n");
    c.line("XADD emptied 5-1 a 1");
    c.line("XDEL emptied 5-1");
    c.line("XGROUP CREATECONSUMER nstream g idle-one");
    c.line("SET big-list-pad x");
    for i in 0..150 {
        c.line(&format!("RPUSH longlist {i}"));
        c.line(&format!("ZADD longz {i}.25 m{i}"));
    }
    c.line("PEXPIRE longz 100000000");
    assert!(
        c.line("BGREWRITEAOF")
            .starts_with(b"+Background append only file rewriting started")
    );
    wait_rewrite(&mut c, 0);
    c.line("SET after 1");
    let want = digest(&mut c);
    let groups = c.line("XINFO GROUPS nstream");
    let pending = c.line("XPENDING nstream g");
    assert!(pending.starts_with(b"*4\r\n:1\r\n"), "{}", show(&pending));
    let (m, files) = listed_files(&dir);
    assert!(
        m.starts_with("file appendonly.aof.2.base.aof seq 2 type b\n"),
        "{m}"
    );
    let base = std::fs::read(dir.join("appendonlydir").join(&files[0])).unwrap();
    assert!(base.starts_with(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n"));
    shutdown(&mut c);
    drop(k);
    check_aof(&dir);
    let k2 = Keel::start(&dir, 1, &args);
    let mut c2 = k2.conn();
    assert_eq!(digest(&mut c2), want);
    assert_eq!(c2.line("FCALL g1 0"), b":7\r\n");
    assert_eq!(c2.line("XINFO GROUPS nstream"), groups);
    assert_eq!(c2.line("XPENDING nstream g"), pending);
    shutdown(&mut c2);
    drop(k2);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_set_appendonly_at_run_time() {
    let dir = tempdir("runtime");
    let k = Keel::start(&dir, 2, &["--save", ""]);
    let mut c = k.conn();
    fill(&mut c, "r");
    assert!(!dir.join("appendonlydir").exists());
    assert_eq!(c.line("CONFIG SET appendonly yes"), b"+OK\r\n");
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    wait_rewrite(&mut c, 0);
    c.line("SET after-on 1");
    c.line("INCR after-on-ctr");
    let (m, _) = listed_files(&dir);
    assert!(
        m.starts_with("file appendonly.aof.1.base.rdb seq 1 type b\n"),
        "{m}"
    );
    assert!(m.contains(" type i\n"), "{m}");
    let want = digest(&mut c);
    // Off: the files stay as they are while writes go on.
    assert_eq!(c.line("CONFIG SET appendonly no"), b"+OK\r\n");
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    let size = |d: &Path| -> u64 {
        std::fs::read_dir(d.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let before = size(&dir);
    c.line("SET while-off 1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(&dir), before, "written while appendonly no");
    check_aof(&dir);
    stock_digest_matches(&dir, &want);
    // On again: a new base holds everything, including what came meanwhile.
    assert_eq!(c.line("CONFIG SET appendonly yes"), b"+OK\r\n");
    wait_rewrite(&mut c, 1);
    c.line("SET again 1");
    let want = digest(&mut c);
    shutdown(&mut c);
    drop(k);
    check_aof(&dir);
    let k2 = Keel::start(&dir, 1, &aof_args("everysec"));
    assert_eq!(digest(&mut k2.conn()), want);
    drop(k2);
    stock_digest_matches(&dir, &want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until the server stops loading (stock answers while it loads).
fn wait_loaded(c: &mut Conn) {
    wait_for("the load's end", || info_field(c, "loading") == "0");
}

/// EVAL, EVALSHA and FCALL lines in an AOF (stock <= 6.2 wrote scripts
/// verbatim, SCRIPT LOAD included) are run when the file loads, as stock
/// runs them, also inside MULTI/EXEC and on a read-only replica (the
/// file's writes are the master's): keel and stock load the same
/// directory to the same data.
#[test]
fn scripts_in_an_aof_are_run_on_load() {
    let body = "return redis.call('incrby',KEYS[1],ARGV[1])";
    let sha = {
        let r = Server::redis(&[]);
        let s = r.conn().cmd(&["SCRIPT", "LOAD", body]);
        String::from_utf8(s[5..45].to_vec()).unwrap()
    };
    let lib = "#!lua name=aoflib\nredis.register_function('setf', function(keys, args) return redis.call('set', keys[1], args[1]) end)";
    let cmds: Vec<Vec<&str>> = vec![
        vec!["SELECT", "9"],
        vec!["EVAL", "redis.call('set',KEYS[1],'100')", "1", "foo"],
        vec!["EVAL", "redis.call('incr',KEYS[1])", "1", "foo"],
        vec!["EVAL", "redis.call('incr',KEYS[1])", "1", "foo"],
        vec!["SCRIPT", "LOAD", body],
        vec!["EVALSHA", &sha, "1", "foo", "10"],
        vec!["FUNCTION", "LOAD", lib],
        vec!["FCALL", "setf", "1", "fkey", "fval"],
        vec!["MULTI"],
        vec!["EVAL", "redis.call('rpush',KEYS[1],'a','b')", "1", "txlist"],
        vec!["EVALSHA", &sha, "1", "txctr", "5"],
        vec!["EXEC"],
        vec!["SELECT", "2"],
        vec![
            "EVAL",
            "redis.call('hset',KEYS[1],'f',ARGV[1]) redis.call('pexpire',KEYS[1],ARGV[2])",
            "1",
            "h",
            "v",
            "100000000",
        ],
    ];
    let probe = |c: &mut Conn| -> Vec<Vec<u8>> {
        wait_loaded(c);
        let mut out = Vec::new();
        for l in [
            "SELECT 9",
            "GET foo",
            "GET fkey",
            "LRANGE txlist 0 -1",
            "GET txctr",
            "FCALL_RO setf 1 x y",
            "SELECT 2",
            "HGETALL h",
        ] {
            out.push(c.line(l));
        }
        out.push(digest(c).into_bytes());
        out
    };
    for replica in [false, true] {
        let dir = tempdir(&format!("eval-{replica}"));
        let ad = dir.join("appendonlydir");
        std::fs::create_dir_all(&ad).unwrap();
        std::fs::write(
            ad.join("appendonly.aof.manifest"),
            "file appendonly.aof.1.incr.aof seq 1 type i\n",
        )
        .unwrap();
        let data: Vec<u8> = cmds.iter().flat_map(|c| encode(c)).collect();
        std::fs::write(ad.join("appendonly.aof.1.incr.aof"), data).unwrap();
        let copy = PathBuf::from(format!("{}-stock", dir.display()));
        copy_dir(&dir, &copy);
        let mut extra = aof_args("everysec");
        if replica {
            extra.extend([
                "--replica-read-only",
                "yes",
                "--replicaof",
                "127.0.0.1",
                "0",
            ]);
        }
        let k = Keel::start(&dir, 2, &extra);
        let got = probe(&mut k.conn());
        drop(k);
        let r = stock_on(&copy, &extra[4..]);
        let want = probe(&mut r.conn());
        drop(r);
        assert_eq!(
            show(&got[1]),
            show(b"$3\r\n112\r\n"),
            "replica={replica}: the scripts did not run"
        );
        assert_eq!(got, want, "replica={replica}: keel and stock differ");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&copy);
    }
}

/// The pids of `pid`'s children (forked from any of its threads).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let f = t.unwrap().path().join("children");
        let text = std::fs::read_to_string(f).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Files whose name starts with "temp-" in `d` (missing dir: none).
fn temp_files(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("temp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// `rdb-key-save-delay` (stock's hidden test config) paces the child of
/// BGSAVE and BGREWRITEAOF (RDB base or command base) by µs per key, so
/// a save can be caught in progress; a child killed meanwhile leaves no
/// temp file and the save or rewrite is reported failed. Side by side
/// with stock: the same config answers and the same observations.
#[test]
fn rdb_key_save_delay_paces_the_child() {
    let mut seen: Vec<Vec<String>> = Vec::new();
    for stock in [false, true] {
        let dir = tempdir(if stock { "delay-stock" } else { "delay-keel" });
        std::fs::create_dir_all(&dir).unwrap();
        let stock_server = stock.then(|| stock_on(&dir, &["--save", ""]));
        let keel_server = (!stock).then(|| Keel::start(&dir, 2, &aof_args("everysec")));
        let (mut c, pid) = match (&stock_server, &keel_server) {
            (Some(r), _) => (r.conn(), r.pid()),
            (_, Some(k)) => (k.conn(), k.child.id()),
            _ => unreachable!(),
        };
        wait_loaded(&mut c);
        let mut obs = Vec::new();
        let mut note = |s: String| obs.push(s);
        for l in [
            "CONFIG GET rdb-key-save-delay",
            "CONFIG SET rdb-key-save-delay abc",
            "CONFIG SET rdb-key-save-delay 2147483648",
            "CONFIG SET rdb-key-save-delay -5",
            "CONFIG GET rdb-key-save-delay",
        ] {
            note(show(&c.line(l)));
        }
        for i in 0..4 {
            c.line(&format!("SET k{i} v{i}"));
        }
        // 4 keys at 0.3 s: the child runs >= 1.2 s and is seen in progress.
        for (preamble, start, flag, status) in [
            (
                "yes",
                "BGSAVE",
                "rdb_bgsave_in_progress",
                "rdb_last_bgsave_status",
            ),
            (
                "yes",
                "BGREWRITEAOF",
                "aof_rewrite_in_progress",
                "aof_last_bgrewrite_status",
            ),
            (
                "no",
                "BGREWRITEAOF",
                "aof_rewrite_in_progress",
                "aof_last_bgrewrite_status",
            ),
        ] {
            c.line(&format!("CONFIG SET aof-use-rdb-preamble {preamble}"));
            assert_eq!(c.line("CONFIG SET rdb-key-save-delay 300000"), b"+OK\r\n");
            let t = Instant::now();
            c.line(start);
            std::thread::sleep(Duration::from_millis(600));
            note(format!(
                "{start} {preamble} at 0.6s: {}",
                info_field(&mut c, flag)
            ));
            wait_for("the child's end", || info_field(&mut c, flag) == "0");
            let took = t.elapsed();
            note(format!(
                "{start} {preamble} slow: {}",
                took >= Duration::from_millis(1150)
            ));
            note(format!(
                "{start} {preamble}: {}",
                info_field(&mut c, status)
            ));
            // Killed in the middle: reported failed, its temp file removed.
            assert_eq!(c.line("CONFIG SET rdb-key-save-delay 10000000"), b"+OK\r\n");
            c.line(start);
            std::thread::sleep(Duration::from_millis(300));
            let kids = children(pid);
            assert_eq!(kids.len(), 1, "stock={stock}: the child of {start}");
            let ad = dir.join("appendonlydir");
            wait_for("the child's temp file", || {
                !temp_files(&dir).is_empty() || !temp_files(&ad).is_empty()
            });
            Command::new("kill")
                .args(["-9", &kids[0].to_string()])
                .status()
                .unwrap();
            wait_for("the killed child reaped", || {
                info_field(&mut c, flag) == "0"
            });
            note(format!(
                "{start} {preamble} killed: {}",
                info_field(&mut c, status)
            ));
            note(format!(
                "temp files left: {:?} {:?}",
                temp_files(&dir),
                temp_files(&ad)
            ));
        }
        c.line("CONFIG SET rdb-key-save-delay 0");
        shutdown(&mut c);
        drop((stock_server, keel_server));
        let _ = std::fs::remove_dir_all(&dir);
        seen.push(obs);
    }
    assert!(
        seen[0].iter().any(|o| o == "BGSAVE yes slow: true"),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[0], seen[1], "keel (left) and stock (right) differ");
}

/// A field of INFO `section`.
fn info_of(c: &mut Conn, section: &str, field: &str) -> String {
    let info = c.val(&format!("INFO {section}")).as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
        .trim()
        .to_string()
}

/// A replica with `appendonly yes` restarted from its AOF: the AOF carries
/// no replication id or offset (stock's preamble has no repl AUX fields
/// and stock does not read them from an AOF), so it asks for a full sync
/// and ends at the master's offset, as stock's replica does.
#[test]
fn replica_restarted_from_its_aof_full_syncs_as_stock() {
    let mut seen = Vec::new();
    for stock in [false, true] {
        // A disk-based sync writes the master's RDB: keep it out of the cwd.
        let mdir = tempdir(if stock {
            "rrestart-m-stock"
        } else {
            "rrestart-m-keel"
        });
        std::fs::create_dir_all(&mdir).unwrap();
        let mdir_s = mdir.display().to_string();
        let master = Server::redis(&["--repl-diskless-sync", "no", "--dir", &mdir_s]);
        let mut m = master.conn();
        fill(&mut m, "m");
        let dir = tempdir(if stock {
            "rrestart-stock"
        } else {
            "rrestart-keel"
        });
        std::fs::create_dir_all(&dir).unwrap();
        let mp = master.port.to_string();
        let mut extra = aof_args("always");
        extra.extend(["--replicaof", "127.0.0.1", &mp]);
        // A fresh port each time: the master does not care where from.
        let start = || -> (Option<Server>, Option<Keel>, Conn) {
            if stock {
                let r = stock_on(&dir, &extra);
                let c = r.conn();
                (Some(r), None, c)
            } else {
                let k = Keel::start(&dir, 2, &extra);
                let c = k.conn();
                (None, Some(k), c)
            }
        };
        // In sync, and the AOF's rewrite after the full sync done (stock
        // refuses SHUTDOWN while it writes that first base).
        let synced = |c: &mut Conn, m: &mut Conn| {
            let want = digest(m);
            wait_for("the replica in sync", || {
                info_of(c, "replication", "master_link_status") == "up"
                    && digest(c) == want
                    && info_field(c, "aof_rewrite_in_progress") == "0"
                    && info_field(c, "aof_rewrite_scheduled") == "0"
            });
        };
        let (s1, k1, mut c) = start();
        synced(&mut c, &mut m);
        fill(&mut m, "n");
        synced(&mut c, &mut m);
        let mut obs = vec![info_field(&mut c, "aof_enabled")];
        // The stream's part is in the AOF (always): the restart has it.
        shutdown(&mut c);
        drop((s1, k1));
        m.line("SET while-down 1");
        let (s2, k2, mut c) = start();
        synced(&mut c, &mut m);
        let off = info_of(&mut m, "replication", "master_repl_offset");
        wait_for("the replica at the master's offset", || {
            info_of(&mut c, "replication", "master_repl_offset") == off
        });
        for f in ["sync_full", "sync_partial_ok", "sync_partial_err"] {
            obs.push(format!("{f}:{}", info_of(&mut m, "stats", f)));
        }
        obs.push(format!(
            "same replid: {}",
            info_of(&mut c, "replication", "master_replid")
                == info_of(&mut m, "replication", "master_replid")
        ));
        shutdown(&mut c);
        drop((s2, k2));
        let _ = std::fs::remove_dir_all(&dir);
        seen.push(obs);
    }
    assert!(
        seen[1].contains(&"sync_full:2".to_string()),
        "{:?}",
        seen[1]
    );
    assert_eq!(seen[0], seen[1], "keel (left) and stock (right) differ");
}

/// Kills -9 the one child of `pid` (a rewrite in progress), waiting until
/// it exists and has started its temp file.
fn kill_the_child(pid: u32) {
    let mut kids = Vec::new();
    wait_for("the rewrite's child", || {
        kids = children(pid);
        kids.len() == 1
    });
    Command::new("kill")
        .args(["-9", &kids[0].to_string()])
        .status()
        .unwrap();
}

/// The manifest's text, or "none".
fn manifest_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest"))
        .unwrap_or_else(|_| "none".into())
}

/// The AOF directory's file names, sorted.
fn aof_dir_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Rewrites that fail (children killed -9) and the files they leave, side
/// by side with stock: `aof-disable-auto-gc` keeps replaced files as
/// history in stock's order until set back to no; three failures in a row
/// put automatic rewrites behind stock's limit (its log line), while
/// BGREWRITEAOF still runs; `CONFIG SET appendonly yes` starts its rewrite
/// inside the command, and when that rewrite is killed the incr file
/// opened for it is removed, no manifest appears, and it starts again.
#[test]
fn failed_rewrites_history_and_dynamic_enable_as_stock() {
    let mut seen: Vec<Vec<String>> = Vec::new();
    for stock in [false, true] {
        let mut obs = Vec::new();
        let dir = tempdir(if stock { "fail-stock" } else { "fail-keel" });
        std::fs::create_dir_all(&dir).unwrap();
        let r = stock.then(|| stock_on(&dir, &["--save", ""]));
        let k = (!stock).then(|| Keel::start(&dir, 2, &aof_args("everysec")));
        let (mut c, pid) = match (&r, &k) {
            (Some(r), _) => (r.conn(), r.pid()),
            (_, Some(k)) => (k.conn(), k.child.id()),
            _ => unreachable!(),
        };
        let log = |n: &str| -> usize {
            let text = match (&r, &k) {
                (Some(r), _) => r.log_text(),
                (_, Some(k)) => k.log_text(),
                _ => unreachable!(),
            };
            text.matches(n).count()
        };
        wait_loaded(&mut c);
        c.line("SET k v");
        // History kept, then collected.
        assert_eq!(c.line("CONFIG SET aof-disable-auto-gc yes"), b"+OK\r\n");
        for n in 0..2 {
            c.line("BGREWRITEAOF");
            wait_rewrite(&mut c, n);
            c.line(&format!("SET after{n} v"));
        }
        obs.push(manifest_text(&dir));
        obs.push(aof_dir_files(&dir).join(" "));
        assert_eq!(c.line("CONFIG SET aof-disable-auto-gc no"), b"+OK\r\n");
        obs.push(manifest_text(&dir));
        wait_for("history files deleted", || aof_dir_files(&dir).len() == 3);
        obs.push(aof_dir_files(&dir).join(" "));
        // Three killed rewrites: three incr files, then the limit.
        c.line("CONFIG SET rdb-key-save-delay 10000000");
        for _ in 0..3 {
            c.line("BGREWRITEAOF");
            kill_the_child(pid);
            wait_for("the killed rewrite reaped", || {
                info_field(&mut c, "aof_rewrite_in_progress") == "0"
            });
            obs.push(info_field(&mut c, "aof_last_bgrewrite_status"));
        }
        obs.push(manifest_text(&dir));
        c.line("CONFIG SET auto-aof-rewrite-percentage 1");
        c.line("CONFIG SET auto-aof-rewrite-min-size 1kb");
        c.cmd(&["SET", "x", &"x".repeat(2048)]);
        wait_for("the limit's log line", || log("triggered the limit") == 1);
        obs.push(info_field(&mut c, "aof_rewrite_in_progress"));
        c.line("CONFIG SET auto-aof-rewrite-percentage 0");
        c.line("CONFIG SET rdb-key-save-delay 0");
        let done: u64 = info_field(&mut c, "aof_rewrites").parse().unwrap();
        c.line("BGREWRITEAOF");
        wait_rewrite(&mut c, done);
        obs.push(manifest_text(&dir));
        let want = digest(&mut c);
        assert_eq!(c.line("DEBUG LOADAOF"), b"+OK\r\n");
        assert_eq!(digest(&mut c), want, "stock={stock}");
        // Off, then on again with a slow first rewrite that is killed.
        // (The manifest on disk stays as it is until that rewrite succeeds.)
        assert_eq!(c.line("CONFIG SET appendonly no"), b"+OK\r\n");
        c.line("CONFIG SET rdb-key-save-delay 10000000");
        assert_eq!(c.line("CONFIG SET appendonly yes"), b"+OK\r\n");
        obs.push(info_field(&mut c, "aof_rewrite_in_progress"));
        kill_the_child(pid);
        wait_for("the temp incr file removed", || {
            log("Removing the temp incr aof file") == 1
        });
        obs.push(manifest_text(&dir));
        wait_for("the rewrite started again", || {
            info_field(&mut c, "aof_rewrite_in_progress") == "1"
        });
        c.line("CONFIG SET rdb-key-save-delay 0");
        let done: u64 = info_field(&mut c, "aof_rewrites").parse().unwrap();
        kill_the_child(pid);
        wait_for("the third try's end", || {
            info_field(&mut c, "aof_rewrites").parse::<u64>().unwrap() > done
                && info_field(&mut c, "aof_rewrite_in_progress") == "0"
        });
        obs.push(format!(
            "temp incr removed {}",
            log("Removing the temp incr aof file")
        ));
        obs.push(manifest_text(&dir));
        c.line("SET last v");
        let want = digest(&mut c);
        assert_eq!(c.line("DEBUG LOADAOF"), b"+OK\r\n");
        assert_eq!(digest(&mut c), want, "stock={stock}");
        shutdown(&mut c);
        drop((r, k));
        let _ = std::fs::remove_dir_all(&dir);
        seen.push(obs);
    }
    assert_eq!(seen[0], seen[1], "keel (left) and stock (right) differ");
}

/// DEBUG LOADAOF is a load as stock's: while a slow script of the file
/// runs, another client's PING gets -LOADING (not -BUSY), then the load
/// finishes with the script's write in place.
#[test]
fn debug_loadaof_answers_loading_meanwhile() {
    let mut seen = Vec::new();
    for stock in [false, true] {
        let dir = tempdir(if stock {
            "loading-stock"
        } else {
            "loading-keel"
        });
        std::fs::create_dir_all(&dir).unwrap();
        let opts = ["--appendfsync", "always", "--lua-time-limit", "1"];
        let r = stock.then(|| stock_on(&dir, &opts));
        let mut kopts = aof_args("always");
        kopts.extend(["--lua-time-limit", "1"]);
        let k = (!stock).then(|| Keel::start(&dir, 2, &kopts));
        let (mut a, mut b) = match (&r, &k) {
            (Some(r), _) => (r.conn(), r.conn()),
            (_, Some(k)) => (k.conn(), k.conn()),
            _ => unreachable!(),
        };
        wait_loaded(&mut a);
        let (_, files) = listed_files(&dir);
        let incr = files.iter().rev().find(|f| f.contains(".incr.")).unwrap();
        let slow =
            "redis.call('set',KEYS[1],'y'); for i=1,3000000 do redis.call('ping') end return 'ok'";
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("appendonlydir").join(incr))
            .unwrap();
        std::io::Write::write_all(&mut f, &encode(&["EVAL", slow, "1", "x"])).unwrap();
        drop(f);
        a.send(&encode(&["DEBUG", "LOADAOF"]));
        let mut reply = Vec::new();
        wait_for("an error while loading", || {
            reply = b.line("PING");
            reply.starts_with(b"-")
        });
        seen.push(show(&reply));
        assert_eq!(
            a.try_read_reply(Duration::from_secs(60)).unwrap(),
            b"+OK\r\n"
        );
        seen.push(show(&b.line("GET x")));
        seen.push(info_field(&mut b, "loading"));
        shutdown(&mut b);
        drop((r, k));
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(seen[0].starts_with("\"-LOADING"), "{seen:?}");
    assert_eq!(seen[..3], seen[3..], "keel (left) and stock (right) differ");
}
