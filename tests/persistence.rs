//! RDB persistence with real processes and real files: SAVE, BGSAVE, restart
//! (also with another shard count), save on SIGTERM and SHUTDOWN, save rules,
//! kill -9, corrupt files, and files exchanged with stock redis-server.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::DirKeel as Keel;
use common::*;

fn tempdir(name: &str) -> PathBuf {
    common::tempdir(&format!("persist-{name}"))
}

/// Writes every type into several DBs, with and without TTLs.
fn fill(c: &mut Conn) {
    for db in [0, 3, 15] {
        c.line(&format!("SELECT {db}"));
        for i in 0..200 {
            c.line(&format!("SET str:{i} value-{i}-{}", "x".repeat(i % 50)));
            c.line(&format!("RPUSH list:{} {i} a{i}", i % 7));
            c.line(&format!("HSET hash:{} f{i} {i}", i % 5));
            c.line(&format!("SADD set:{} {i}", i % 3));
            c.line(&format!("SADD sset:{} m{i}", i % 3));
            c.line(&format!("ZADD zset:{} {i}.5 m{i}", i % 4));
        }
        c.line("SET withttl v EX 100000");
        c.line("XADD stream 1-1 a 1");
        c.line("XADD stream 2-1 b 2");
        c.line("XGROUP CREATE stream g 0");
        c.line("XREADGROUP GROUP g alice COUNT 1 STREAMS stream >");
        c.line("PFADD hll a b c d");
    }
    c.line("SELECT 0");
}

#[test]
fn save_then_restart_with_another_shard_count() {
    let dir = tempdir("restart");
    let mut k = Keel::start(&dir, 2, &["--save", ""]);
    let mut c = k.conn();
    fill(&mut c);
    let before = digest(&mut c);
    let keys = c.val("DBSIZE").as_int();
    assert_eq!(c.line("SAVE"), b"+OK\r\n");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    // Written after the save: lost by kill -9, as in Redis.
    c.line("SET after-save 1");
    k.signal("-9");
    k.wait_exit();

    let k2 = Keel::start(&dir, 3, &["--save", ""]);
    let mut c2 = k2.conn();
    assert_eq!(digest(&mut c2), before);
    assert_eq!(c2.val("DBSIZE").as_int(), keys);
    assert_eq!(c2.line("EXISTS after-save"), b":0\r\n");
    let ttl = c2.val("TTL withttl").as_int();
    assert!(ttl > 99_000 && ttl <= 100_000, "ttl {ttl}");
    assert!(
        k2.log_text().contains("Done loading RDB"),
        "{}",
        k2.log_text()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_file_loads_in_stock_redis_and_passes_check_rdb() {
    require_tool("redis-server");
    require_tool("redis-check-rdb");
    let dir = tempdir("bgsave");
    let k = Keel::start(&dir, 4, &["--save", "", "--dbfilename", "bg.rdb"]);
    let mut c = k.conn();
    fill(&mut c);
    let want = digest(&mut c);
    assert_eq!(c.line("BGSAVE"), b"+Background saving started\r\n");
    let t = Instant::now();
    while info_field(&mut c, "rdb_bgsave_in_progress") != "0" || !dir.join("bg.rdb").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "BGSAVE never finished:\n{}",
            k.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert!(
        k.log_text()
            .contains("Background saving terminated with success")
    );

    let check = Command::new("redis-check-rdb")
        .arg(dir.join("bg.rdb"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let dirs = dir.display().to_string();
    let redis = Server::redis(&["--dir", &dirs, "--dbfilename", "bg.rdb"]);
    let mut r = redis.conn();
    assert_eq!(
        digest(&mut r),
        want,
        "stock Redis sees other data than keel saved"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stock_redis_file_loads_in_keel() {
    require_tool("redis-server");
    let dir = tempdir("fromredis");
    let dirs = dir.display().to_string();
    let redis = Server::redis(&["--dir", &dirs, "--dbfilename", "r.rdb"]);
    let mut r = redis.conn();
    fill(&mut r);
    let want = digest(&mut r);
    assert_eq!(r.line("SAVE"), b"+OK\r\n");
    drop(redis);
    let k = Keel::start(&dir, 2, &["--save", "", "--dbfilename", "r.rdb"]);
    let mut c = k.conn();
    assert_eq!(digest(&mut c), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_saves_when_rules_exist_and_shutdown_nosave_does_not() {
    let dir = tempdir("sigterm");
    let mut k = Keel::start(&dir, 2, &["--save", "3600 1"]);
    let mut c = k.conn();
    c.line("SET a 1");
    c.line("RPUSH l x y");
    k.signal("-TERM");
    assert_eq!(k.wait_exit(), Some(0));
    assert!(
        k.log_text()
            .contains("Saving the final RDB snapshot before exiting.")
    );

    let mut k2 = Keel::start(&dir, 2, &["--save", "3600 1"]);
    let mut c2 = k2.conn();
    assert_eq!(c2.line("GET a"), b"$1\r\n1\r\n");
    assert_eq!(c2.line("LLEN l"), b":2\r\n");
    c2.line("SET b 2");
    c2.send(b"SHUTDOWN NOSAVE\r\n");
    assert_eq!(k2.wait_exit(), Some(0));

    let k3 = Keel::start(&dir, 2, &["--save", "3600 1"]);
    let mut c3 = k3.conn();
    assert_eq!(c3.line("EXISTS a b"), b":1\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_rule_triggers_a_background_save() {
    let dir = tempdir("rules");
    let k = Keel::start(&dir, 2, &["--save", "1 2"]);
    let mut c = k.conn();
    c.line("SET a 1");
    c.line("SET b 2");
    c.line("SET c 3");
    let t = Instant::now();
    while !k
        .log_text()
        .contains("Background saving terminated with success")
    {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no automatic BGSAVE:\n{}",
            k.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(k.log_text().contains("changes in 1 seconds. Saving..."));
    assert!(dir.join("dump.rdb").exists());
    let t = Instant::now();
    while info_field(&mut c, "rdb_changes_since_last_save") != "0" {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "dirty counter not reset"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_file_at_startup_is_a_clear_error() {
    let dir = tempdir("corrupt");
    std::fs::write(
        dir.join("dump.rdb"),
        b"REDIS0010\xfa\x09redis-ver\x06garbage-truncated",
    )
    .unwrap();
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "--port",
            &port.to_string(),
            "--dir",
            &dir.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Fatal error loading the DB"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_reload_keeps_the_dataset_and_flushall_saves_an_empty_file() {
    let dir = tempdir("reload");
    let k = Keel::start(&dir, 3, &["--save", "3600 100"]);
    let mut c = k.conn();
    fill(&mut c);
    let want = digest(&mut c);
    assert_eq!(c.line("DEBUG RELOAD"), b"+OK\r\n");
    assert_eq!(digest(&mut c), want);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(c.line("FLUSHALL"), b"+OK\r\n");
    // Redis 7.0: FLUSHALL with save rules writes the empty dataset, then counts itself.
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "1");
    drop(k);
    let k2 = Keel::start(&dir, 3, &["--save", ""]);
    let mut c2 = k2.conn();
    assert_eq!(c2.line("DBSIZE"), b":0\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn script_bodies_survive_a_restart_and_duplicates_load_fine() {
    let dir = tempdir("scripts");
    let mut k = Keel::start(&dir, 2, &["--save", ""]);
    let mut c = k.conn();
    let sha = c
        .val("SCRIPT LOAD \"return redis.call('incr', KEYS[1])\"")
        .as_str();
    assert_eq!(c.line(&format!("EVALSHA {sha} 1 n")), b":1\r\n");
    assert_eq!(c.line("SAVE"), b"+OK\r\n");
    k.signal("-9");
    k.wait_exit();
    let k2 = Keel::start(&dir, 3, &["--save", ""]);
    let mut c2 = k2.conn();
    // The body came back from the file: EVALSHA works without a SCRIPT LOAD.
    assert_eq!(c2.line(&format!("EVALSHA {sha} 1 n")), b":2\r\n");
    // Loading the same body again (as a full sync would) is not an error.
    assert_eq!(
        c2.val("SCRIPT LOAD \"return redis.call('incr', KEYS[1])\"")
            .as_str(),
        sha
    );
    assert_eq!(c2.line("DEBUG RELOAD"), b"+OK\r\n");
    assert_eq!(c2.line(&format!("EVALSHA {sha} 1 n")), b":3\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}
