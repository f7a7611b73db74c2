//! BGSAVE takes a consistent cut across shards: while writers move amounts
//! between counters on different shards (MULTI/EXEC and EVAL, both atomic
//! across shards), every file saved holds the same total, in keel and in
//! stock redis-server, and passes redis-check-rdb.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::DirKeel as Keel;
use common::*;

const COUNTERS: usize = 8;
const START: i64 = 1000;
const TOTAL: i64 = START * COUNTERS as i64;
const WRITERS: usize = 4;
const READERS: usize = 2;
const MIN_FILES: usize = 5;
/// How long the writers run at least; longer if the saves are slow.
const WRITE_FOR: Duration = Duration::from_secs(5);
const WRITE_CAP: Duration = Duration::from_secs(60);

fn tempdir(name: &str) -> PathBuf {
    common::tempdir(&format!("bgsave-{name}"))
}

fn keys() -> Vec<String> {
    // Distinct names without hash tags spread over the shards.
    (0..COUNTERS).map(|i| format!("counter:{i}")).collect()
}

/// The counters' values, from one MGET.
fn values(c: &mut Conn) -> Vec<i64> {
    let mut args = vec!["MGET".to_string()];
    args.extend(keys());
    match Resp::parse(&c.cmd(&args)) {
        Resp::Array(v) => v
            .iter()
            .map(|x| match x {
                Resp::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
                other => panic!("counter missing or odd: {other:?}"),
            })
            .collect(),
        other => panic!("MGET: {other:?}"),
    }
}

/// xorshift64: enough randomness for picking pairs, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MOVE: &str = "redis.call('DECRBY', KEYS[1], ARGV[1]) \
                    redis.call('INCRBY', KEYS[2], ARGV[1]) return 1";

/// Moves random amounts between random pairs until `stop`; returns how many
/// transfers it made.
fn writer(port: u16, seed: u64, stop: Arc<AtomicBool>) -> usize {
    let mut c = Conn::connect(port);
    let keys = keys();
    let mut rng = Rng(seed | 1);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let a = rng.below(COUNTERS as u64) as usize;
        let b = (a + 1 + rng.below(COUNTERS as u64 - 1) as usize) % COUNTERS;
        let amount = (1 + rng.below(50)).to_string();
        if n % 2 == 0 {
            assert_eq!(c.line("MULTI"), b"+OK\r\n");
            assert_eq!(c.cmd(&["DECRBY", &keys[a], &amount]), b"+QUEUED\r\n");
            assert_eq!(c.cmd(&["INCRBY", &keys[b], &amount]), b"+QUEUED\r\n");
            match Resp::parse(&c.line("EXEC")) {
                Resp::Array(v) if v.len() == 2 => {
                    assert!(matches!(v[0], Resp::Int(_)) && matches!(v[1], Resp::Int(_)))
                }
                other => panic!("EXEC: {other:?}"),
            }
        } else {
            let r = c.cmd(&["EVAL", MOVE, "2", &keys[a], &keys[b], &amount]);
            assert_eq!(r, b":1\r\n", "EVAL: {}", show(&r));
        }
        n += 1;
    }
    n
}

/// MGETs all counters until `stop`; returns (reads, sums that were not TOTAL).
fn reader(port: u16, stop: Arc<AtomicBool>) -> (usize, Vec<(i64, Vec<i64>)>) {
    let mut c = Conn::connect(port);
    let mut reads = 0;
    let mut bad = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let v = values(&mut c);
        let sum: i64 = v.iter().sum();
        if sum != TOTAL && bad.len() < 10 {
            bad.push((sum, v));
        }
        reads += 1;
    }
    (reads, bad)
}

/// BGSAVEs into x-1.rdb, x-2.rdb, ... one after the other until `stop`;
/// returns the file names written.
fn saver(port: u16, dir: &Path, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<String> {
    let mut c = Conn::connect(port);
    let mut files = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let name = format!("x-{}.rdb", files.len() + 1);
        assert_eq!(c.cmd(&["CONFIG", "SET", "dbfilename", &name]), b"+OK\r\n");
        let t = Instant::now();
        loop {
            let r = c.line("BGSAVE");
            if r == b"+Background saving started\r\n" {
                break;
            }
            // Shards too busy to park in time: a documented, retryable error.
            let s = String::from_utf8_lossy(&r).into_owned();
            assert!(s.contains("try again"), "BGSAVE: {s}");
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "BGSAVE never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        while info_field(&mut c, "rdb_bgsave_in_progress") != "0" {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "BGSAVE {name} never finished"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
        assert!(dir.join(&name).exists(), "{name} not written");
        files.push(name);
        done.store(files.len(), Ordering::Relaxed);
    }
    files
}

#[test]
fn bgsave_under_cross_shard_transfers_keeps_the_total() {
    require_tool("redis-server");
    require_tool("redis-check-rdb");
    let dir = tempdir("consistency");
    let k = Keel::start(&dir, 4, &["--save", "", "--dbfilename", "x-0.rdb"]);
    let mut c = k.conn();
    for key in keys() {
        assert_eq!(
            c.cmd(&["SET", key.as_str(), &START.to_string()]),
            b"+OK\r\n"
        );
    }

    let stop_io = Arc::new(AtomicBool::new(false));
    let stop_save = Arc::new(AtomicBool::new(false));
    let saved = Arc::new(AtomicUsize::new(0));
    let port = k.port;
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let stop = stop_io.clone();
            let seed = now_ms() ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
            std::thread::spawn(move || writer(port, seed, stop))
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let stop = stop_io.clone();
            std::thread::spawn(move || reader(port, stop))
        })
        .collect();
    let save_thread = {
        let (stop, done, dir) = (stop_save.clone(), saved.clone(), dir.clone());
        std::thread::spawn(move || saver(port, &dir, stop, done))
    };

    // Every save must be taken while the writers run.
    let t = Instant::now();
    while (t.elapsed() < WRITE_FOR || saved.load(Ordering::Relaxed) < MIN_FILES)
        && t.elapsed() < WRITE_CAP
        && !save_thread.is_finished()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_save.store(true, Ordering::Relaxed);
    let files = save_thread.join().expect("saver failed");
    stop_io.store(true, Ordering::Relaxed);
    let transfers: usize = writers
        .into_iter()
        .map(|w| w.join().expect("writer failed"))
        .sum();
    let mut reads = 0;
    for r in readers {
        let (n, bad) = r.join().expect("reader failed");
        assert!(bad.is_empty(), "MGET saw a torn transfer: {bad:?}");
        reads += n;
    }
    eprintln!(
        "{transfers} transfers, {reads} MGETs, {} files in {:?}",
        files.len(),
        t.elapsed()
    );
    assert!(
        files.len() >= MIN_FILES,
        "only {} BGSAVEs finished",
        files.len()
    );
    assert!(transfers > 100, "writers barely ran: {transfers}");
    assert_eq!(values(&mut c).iter().sum::<i64>(), TOTAL);
    drop(c);
    drop(k);

    let dirs = dir.display().to_string();
    let mut distinct: Vec<Vec<i64>> = Vec::new();
    for f in &files {
        let check = Command::new("redis-check-rdb")
            .arg(dir.join(f))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "redis-check-rdb {f}:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );

        let k = Keel::start(&dir, 4, &["--save", "", "--dbfilename", f]);
        let in_keel = values(&mut k.conn());
        drop(k);
        let redis = Server::redis(&["--dir", &dirs, "--dbfilename", f]);
        let in_redis = values(&mut redis.conn());
        drop(redis);

        assert_eq!(
            in_keel.iter().sum::<i64>(),
            TOTAL,
            "{f} in keel: {in_keel:?}"
        );
        assert_eq!(
            in_keel, in_redis,
            "{f}: keel and stock Redis load other values"
        );
        if !distinct.contains(&in_keel) {
            distinct.push(in_keel);
        }
    }
    // The saves really were taken mid-stream, not all of one quiet state.
    assert!(
        distinct.len() >= 2,
        "all {} files hold the same values",
        files.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
