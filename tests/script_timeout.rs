//! A script past busy-reply-threshold: other clients get -BUSY, SCRIPT KILL
//! stops it while it has not written, SHUTDOWN NOSAVE is the way out after.

mod common;

use std::time::Duration;

use common::{Conn, ReadErr, Server};

const BUSY: &[u8] =
    b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

/// Connections to the server; with two shards, some land on the shard that
/// does not run the script and can answer while it runs.
fn conns(s: &Server, n: usize) -> Vec<Conn> {
    (0..n).map(|_| s.conn()).collect()
}

/// Sends PING on every connection; returns the indexes that answered BUSY.
fn busy_ones(cs: &mut [Conn]) -> Vec<usize> {
    let mut busy = Vec::new();
    for (i, c) in cs.iter_mut().enumerate() {
        c.send(b"PING\r\n");
        match c.try_read_reply(Duration::from_millis(300)) {
            Ok(r) => {
                assert_eq!(r, BUSY, "while a script is busy");
                busy.push(i);
            }
            Err(ReadErr::Timeout) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    busy
}

#[test]
fn busy_script_is_killed_by_script_kill() {
    let keel = Server::keel(2, &["--busy-reply-threshold", "100"]);
    let mut runner = keel.conn();
    let mut others = conns(&keel, 12);
    runner.send(b"EVAL \"while true do end\" 0\r\n");
    std::thread::sleep(Duration::from_millis(400));
    let busy = busy_ones(&mut others);
    assert!(
        !busy.is_empty(),
        "no connection on the other shard answered BUSY"
    );
    let k = &mut others[busy[0]];
    assert_eq!(k.line("SCRIPT KILL"), b"+OK\r\n");
    let r = runner
        .try_read_reply(Duration::from_secs(5))
        .expect("script did not stop");
    assert!(
        r.starts_with(b"-ERR Script killed by user with SCRIPT KILL"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    // Everyone is served again (the stuck PINGs are answered too).
    for (i, c) in others.iter_mut().enumerate() {
        if !busy.contains(&i) {
            assert_eq!(c.read_reply(), b"+PONG\r\n");
        }
        assert_eq!(c.line("PING"), b"+PONG\r\n");
    }
    assert_eq!(
        runner.line("SCRIPT KILL"),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn script_that_wrote_is_unkillable_and_shutdown_nosave_stops_the_server() {
    let mut keel = Server::keel(2, &["--busy-reply-threshold", "100"]);
    let mut runner = keel.conn();
    let mut others = conns(&keel, 12);
    runner.send(b"EVAL \"redis.call('set', KEYS[1], 1) while true do end\" 1 k\r\n");
    std::thread::sleep(Duration::from_millis(400));
    let busy = busy_ones(&mut others);
    assert!(
        !busy.is_empty(),
        "no connection on the other shard answered BUSY"
    );
    let k = &mut others[busy[0]];
    let r = k.line("SCRIPT KILL");
    assert!(
        r.starts_with(b"-UNKILLABLE"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    k.send(b"SHUTDOWN NOSAVE\r\n");
    let t = std::time::Instant::now();
    while keel.alive() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "SHUTDOWN NOSAVE did not stop keel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
