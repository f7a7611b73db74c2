//! A dataset loading at startup: keel and stock Redis, started on copies of
//! the same RDB file (written by stock) with `key-load-delay` slowing the
//! load, answer the same thing meanwhile byte for byte (-LOADING for
//! commands without the `loading` flag), show the load's progress in INFO,
//! then serve the whole dataset; at 1 and 4 shards.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Conn, Server, info_field, show, tempdir};

const KEYS: usize = 20_000;

/// A dump.rdb written by stock Redis: KEYS strings from DEBUG POPULATE
/// plus a few typed keys and a key with a TTL.
fn stock_rdb(tag: &str) -> PathBuf {
    let dir = tempdir(&format!("loading-src-{tag}"));
    let d = dir.display().to_string();
    let r = Server::redis(&["--dir", &d]);
    let mut c = r.conn();
    assert_eq!(
        c.line(&format!("DEBUG POPULATE {KEYS}")),
        b"+OK\r\n".to_vec()
    );
    for l in [
        "RPUSH list a b c",
        "HSET hash f v g w",
        "SADD set x y z",
        "ZADD zset 1 a 2 b",
        "SET ttl v EX 1000",
        "SELECT 3",
        "SET other v",
    ] {
        let r = c.line(l);
        assert!(!r.starts_with(b"-"), "{l}: {}", show(&r));
    }
    assert_eq!(c.line("SAVE"), b"+OK\r\n".to_vec());
    dir.join("dump.rdb")
}

/// A server (keel when `shards` is Some) started on a copy of `rdb`,
/// returned as soon as it answers anything (-LOADING included).
fn start_on(rdb: &Path, shards: Option<usize>, extra: &[&str]) -> (Server, PathBuf) {
    let tag = match shards {
        Some(n) => format!("keel{n}"),
        None => "redis".into(),
    };
    let dir = tempdir(&format!("loading-{tag}"));
    std::fs::copy(rdb, dir.join("dump.rdb")).unwrap();
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.display().to_string(),
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let s = match shards {
        Some(n) => Server::start_while_loading("keel", env!("CARGO_BIN_EXE_keel"), move |p| {
            let mut a = vec![
                "--port".into(),
                p.to_string(),
                "--shards".into(),
                n.to_string(),
            ];
            a.extend(args.iter().cloned());
            a
        }),
        None => Server::start_while_loading("redis", "redis-server", move |p| {
            let mut a = vec!["--port".into(), p.to_string()];
            a.extend(args.iter().cloned());
            a
        }),
    };
    (s, dir)
}

fn loading(c: &mut Conn) -> bool {
    match info_field(c, "loading").as_str() {
        "1" => true,
        "0" => false,
        other => panic!("{}: INFO loading is {other:?}", c.who),
    }
}

fn num(c: &mut Conn, field: &str) -> f64 {
    let v = info_field(c, field);
    v.parse()
        .unwrap_or_else(|_| panic!("{}: INFO {field} is {v:?}", c.who))
}

/// Until INFO says the load is over (a load that never ends fails).
fn wait_loaded(c: &mut Conn) {
    let t = Instant::now();
    while loading(c) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{}: still loading after 120 s",
            c.who
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Commands sent while loading; replies compared with stock byte for byte.
const WHILE_LOADING: &[&str] = &[
    "GET key:1",
    "SET a b",
    "PING",
    "DBSIZE",
    "EXISTS key:1",
    "SCAN 0",
    "ECHO hi",
    "CONFIG GET key-load-delay",
    "CONFIG GET loading-process-events-interval-bytes",
    "CONFIG SET key-load-delay 100",
    "SELECT 3",
    "GET other",
    "SELECT 0",
    "CLIENT SETNAME loader",
    "CLIENT GETNAME",
    "CLIENT NOSUCH",
    "NOSUCHCOMMAND",
    "PUBLISH ch msg",
    "MULTI",
    "PING",
    "GET key:1",
    "EXEC",
    "MULTI",
    "ECHO x",
    "EXEC",
    "FLUSHALL",
];

fn during_load(shards: usize) {
    let rdb = stock_rdb(&format!("s{shards}"));
    let size = std::fs::metadata(&rdb).unwrap().len();
    // ~100 µs per key: seconds of loading, clients served every KB.
    let extra = [
        "--key-load-delay",
        "100",
        "--loading-process-events-interval-bytes",
        "1024",
        "--save",
        "",
    ];
    let (redis, _rd) = start_on(&rdb, None, &extra);
    let (keel, _kd) = start_on(&rdb, Some(shards), &extra);
    let mut r = redis.conn();
    let mut k = keel.conn();
    assert!(loading(&mut r), "stock finished loading too soon");
    assert!(
        loading(&mut k),
        "keel is not loading (or finished too soon)"
    );

    for line in WHILE_LOADING {
        let (kv, rv) = (k.line(line), r.line(line));
        assert_eq!(show(&kv), show(&rv), "while loading, {line}: keel vs stock");
    }

    // The progress, as Redis computes it.
    for c in [&mut k, &mut r] {
        assert_eq!(info_field(c, "async_loading"), "0", "{}", c.who);
        assert_eq!(num(c, "loading_total_bytes") as u64, size, "{}", c.who);
        let used_mem = num(c, "loading_rdb_used_mem");
        assert!(used_mem > 0.0, "{}: loading_rdb_used_mem {used_mem}", c.who);
        let start = num(c, "loading_start_time");
        let now = common::now_ms() as f64 / 1000.0;
        assert!(
            start <= now && start > now - 60.0,
            "{}: loading_start_time {start}",
            c.who
        );
        let b1 = num(c, "loading_loaded_bytes");
        let p1 = num(c, "loading_loaded_perc");
        assert!(
            b1 > 0.0 && b1 < size as f64,
            "{}: loading_loaded_bytes {b1} of {size}",
            c.who
        );
        assert!(
            (p1 - b1 / size as f64 * 100.0).abs() < 1.0,
            "{}: perc {p1} vs bytes {b1}",
            c.who
        );
        assert!(num(c, "loading_eta_seconds") >= 0.0, "{}", c.who);
        std::thread::sleep(Duration::from_millis(300));
        let b2 = num(c, "loading_loaded_bytes");
        assert!(
            b2 > b1,
            "{}: loaded bytes did not move ({b1} -> {b2})",
            c.who
        );
        let keys = num(c, "rdb_last_load_keys_loaded");
        assert!(
            keys > 0.0 && keys < KEYS as f64,
            "{}: rdb_last_load_keys_loaded {keys} while loading",
            c.who
        );
    }

    wait_loaded(&mut k);
    wait_loaded(&mut r);
    for c in [&mut k, &mut r] {
        let info = c.line("INFO persistence");
        assert!(
            !show(&info).contains("loading_loaded_bytes"),
            "{}: progress fields after the load: {}",
            c.who,
            show(&info)
        );
    }
    for line in [
        "DBSIZE",
        "GET key:1",
        &format!("GET key:{}", KEYS - 1),
        "LRANGE list 0 -1",
        "HGETALL hash",
        "SORT set ALPHA",
        "ZRANGE zset 0 -1 WITHSCORES",
        "PING",
        "DEBUG DIGEST",
        "SELECT 3",
        "GET other",
    ] {
        let (kv, rv) = (k.line(line), r.line(line));
        assert_eq!(show(&kv), show(&rv), "after loading, {line}");
    }
    assert_eq!(
        info_field(&mut k, "rdb_last_load_keys_loaded"),
        info_field(&mut r, "rdb_last_load_keys_loaded")
    );
}

#[test]
fn startup_load_answers_loading_1_shard() {
    during_load(1);
}

#[test]
fn startup_load_answers_loading_4_shards() {
    during_load(4);
}

/// A file smaller than `loading-process-events-interval-bytes` loads
/// before any client is served: the first reply is already the data's,
/// as stock (Redis serves clients only every that many bytes).
#[test]
fn small_file_loads_before_serving() {
    let rdb = stock_rdb("small");
    let extra = ["--key-load-delay", "50", "--save", ""];
    for shards in [None, Some(1), Some(4)] {
        let (s, _d) = start_on(&rdb, shards, &extra);
        let mut c = s.conn();
        let r = c.line("DBSIZE");
        assert_eq!(
            show(&r),
            show(format!(":{}\r\n", KEYS + 5).as_bytes()),
            "{}: first reply",
            s.name
        );
    }
}

/// SHUTDOWN during the load exits without saving the half-loaded data
/// over the file, as stock (save rules set).
#[test]
fn shutdown_while_loading_does_not_save() {
    let rdb = stock_rdb("shutdown");
    let before = std::fs::read(&rdb).unwrap();
    let extra = [
        "--key-load-delay",
        "200",
        "--loading-process-events-interval-bytes",
        "1024",
        "--save",
        "3600 1",
    ];
    for shards in [None, Some(1), Some(4)] {
        let (mut s, dir) = start_on(&rdb, shards, &extra);
        let mut c = s.conn();
        assert!(loading(&mut c), "{}: not loading", s.name);
        c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
        let t = Instant::now();
        while s.alive() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{}: SHUTDOWN during the load did not exit",
                s.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = std::fs::read(dir.join("dump.rdb")).unwrap();
        assert!(
            after == before,
            "{}: the file changed ({} -> {} bytes)",
            s.name,
            before.len(),
            after.len()
        );
    }
}
