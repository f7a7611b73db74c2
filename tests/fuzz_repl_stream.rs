//! Fuzzing the replica's stream applier as it runs: a real keel process
//! follows a fake master (this test's socket) that completes the handshake
//! (FULLRESYNC with an empty RDB, later +CONTINUE) and then sends random
//! command streams: write commands of every type with random arguments,
//! SELECT, MULTI/EXEC, scripts, unknown commands, wrong arities, and now and
//! then raw corruption of the bytes. After each input a REPLCONF GETACK
//! must be answered with the offset of exactly the bytes sent (when the
//! framing was intact), and keel must stay up and answer its clients.
//!
//! `KEEL_FUZZ_SECS` (default 4) bounds the run; `KEEL_FUZZ_SEED` repeats
//! one. `bench-scripts/fuzz-repl-stream SECS` runs it long.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::repl::TempDir;
use common::{DirKeel, encode};

const REPLID: &str = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed";

/// An empty RDB (CRC 0 means "not checked").
fn empty_rdb() -> Vec<u8> {
    let mut v = b"REDIS0010".to_vec();
    v.push(0xff);
    v.extend_from_slice(&[0; 8]);
    v
}

/// Reads one RESP array command from the replica (handshake, ACKs).
fn read_cmd(r: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut out = Vec::new();
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).ok()?;
        buf.truncate(len);
        out.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Some(out)
}

/// Accepts keel's link and answers its handshake; the first sync is a full
/// one, later ones continue.
/// Returns the link and the offset the replica asked to continue from.
fn accept_link(l: &TcpListener, first: bool) -> (TcpStream, BufReader<TcpStream>, i64) {
    l.set_nonblocking(false).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s.try_clone().unwrap();
    loop {
        let cmd = read_cmd(&mut r).expect("handshake command");
        match cmd[0].to_ascii_uppercase().as_str() {
            "PING" => w.write_all(b"+PONG\r\n").unwrap(),
            "PSYNC" => {
                let asked: i64 = cmd[2].parse().unwrap_or(-1);
                if first {
                    let rdb = empty_rdb();
                    w.write_all(format!("+FULLRESYNC {REPLID} 0\r\n${}\r\n", rdb.len()).as_bytes())
                        .unwrap();
                    w.write_all(&rdb).unwrap();
                } else {
                    w.write_all(format!("+CONTINUE {REPLID}\r\n").as_bytes())
                        .unwrap();
                }
                return (s, r, asked);
            }
            _ => w.write_all(b"+OK\r\n").unwrap(),
        }
    }
}

/// Random arguments: small ints, short strings, numbers with junk, empties.
fn arg(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..6) {
        0 => rng.i64(-5..100).to_string().into_bytes(),
        1 => format!("k{}", rng.u8(..20)).into_bytes(),
        2 => Vec::new(),
        3 => (0..rng.usize(..20)).map(|_| rng.u8(..)).collect(),
        4 => [
            "NX", "XX", "EX", "PX", "KEEPTTL", "GT", "*", "+", "-", "1.5", "inf", "0-1",
        ][rng.usize(..12)]
        .as_bytes()
        .to_vec(),
        _ => format!("v{}", rng.u32(..1000)).into_bytes(),
    }
}

const COMMANDS: &[(&str, usize)] = &[
    ("SET", 2),
    ("DEL", 1),
    ("INCR", 1),
    ("INCRBYFLOAT", 2),
    ("APPEND", 2),
    ("SETRANGE", 3),
    ("LPUSH", 2),
    ("RPOP", 1),
    ("LSET", 3),
    ("LTRIM", 3),
    ("HSET", 3),
    ("HDEL", 2),
    ("HINCRBY", 3),
    ("SADD", 2),
    ("SREM", 2),
    ("SMOVE", 3),
    ("ZADD", 3),
    ("ZINCRBY", 3),
    ("ZREMRANGEBYSCORE", 3),
    ("XADD", 4),
    ("XTRIM", 3),
    ("XGROUP", 4),
    ("PFADD", 2),
    ("SETBIT", 3),
    ("BITOP", 3),
    ("EXPIRE", 2),
    ("PEXPIREAT", 2),
    ("PERSIST", 1),
    ("RENAME", 2),
    ("COPY", 2),
    ("MOVE", 2),
    ("SWAPDB", 2),
    ("FLUSHDB", 0),
    ("SELECT", 1),
    ("RESTORE", 3),
    ("EVAL", 3),
    ("SCRIPT", 2),
    ("PUBLISH", 2),
    ("PING", 0),
    ("NOSUCHCOMMAND", 1),
    ("GET", 1),
];

/// One input: 1-20 commands, MULTI blocks among them; `corrupt` garbles it.
fn input(rng: &mut fastrand::Rng, corrupt: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_multi = false;
    for _ in 0..rng.usize(1..=20) {
        if !in_multi && rng.u8(..10) == 0 {
            out.extend(encode(&["MULTI"]));
            in_multi = true;
        }
        let (name, n) = COMMANDS[rng.usize(..COMMANDS.len())];
        let mut args: Vec<Vec<u8>> = vec![name.as_bytes().to_vec()];
        // Mostly the right count, sometimes not (arity errors).
        let count = if rng.u8(..8) == 0 { rng.usize(..5) } else { n };
        for _ in 0..count {
            args.push(arg(rng));
        }
        match name {
            "SELECT" if args.len() == 2 => args[1] = rng.u8(..18).to_string().into_bytes(),
            "SWAPDB" if args.len() == 3 => {
                args[1] = rng.u8(..17).to_string().into_bytes();
                args[2] = rng.u8(..17).to_string().into_bytes();
            }
            "EVAL" if args.len() == 4 => {
                args[1] =
                    b"redis.call('set', KEYS[1], ARGV[1]) return redis.call('incr', 'n')".to_vec();
                args[2] = b"1".to_vec();
            }
            _ => {}
        }
        out.extend(encode(&args));
        if in_multi && rng.u8(..4) == 0 {
            out.extend(encode(&["EXEC"]));
            in_multi = false;
        }
    }
    if in_multi {
        out.extend(encode(&["EXEC"]));
    }
    if corrupt {
        out = keel::fuzzing::mutate(
            rng,
            &out,
            b"*3\r\n$3\r\nSET\r\n$-1\r\n*-5\r\n$999999999999\r\n",
        );
    }
    out
}

/// Reads REPLCONF ACKs: until one reports `want`, or (None) until none
/// comes for 300 ms, returning the highest. None if the link broke first.
fn acks_until(r: &mut BufReader<TcpStream>, want: Option<i64>) -> Option<i64> {
    let mut best = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let quiet = if best.is_some() && want.is_none() {
            Duration::from_millis(300)
        } else {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        r.get_ref().set_read_timeout(Some(quiet)).unwrap();
        let Some(a) = read_cmd(r) else {
            // Timed out after ACKs, or the link is gone.
            let alive = r
                .get_ref()
                .peek(&mut [0u8; 1])
                .map(|n| n > 0)
                .unwrap_or(true);
            return if best.is_some() && alive { best } else { None };
        };
        assert_eq!(a[..2], ["REPLCONF".to_string(), "ACK".to_string()], "{a:?}");
        let got: i64 = a[2].parse().unwrap();
        best = Some(best.map_or(got, |b: i64| b.max(got)));
        if want.is_some_and(|w| got >= w) || Instant::now() >= deadline {
            return best;
        }
    }
}

#[test]
fn replica_survives_random_master_streams() {
    let secs: u64 = std::env::var("KEEL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("KEEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(common::now_ms);
    eprintln!("repl stream fuzz: KEEL_FUZZ_SEED={seed} KEEL_FUZZ_SECS={secs}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mport = listener.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("fuzz-repl");
    let mut keel = DirKeel::start(&dir.0, 2, &["--replicaof", "127.0.0.1", &mport]);
    let (mut s, mut r, _) = accept_link(&listener, true);
    // Our offset: what the replica must report (bytes sent since the sync).
    let mut offset: i64 = 0;
    let (mut inputs, mut garbled, mut sent_bytes) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let corrupt = rng.u8(..20) == 0;
        let data = input(&mut rng, corrupt);
        inputs += 1;
        sent_bytes += data.len() as u64;
        if corrupt {
            // Garbled framing: keel may drop the link or wait inside a
            // bulk. Hang up; the PSYNC it comes back with says exactly
            // what it applied.
            garbled += 1;
            let _ = s.write_all(&data);
            let _ = s.shutdown(std::net::Shutdown::Both);
            let (s2, r2, asked) = accept_link(&listener, false);
            (s, r) = (s2, r2);
            assert!(
                (offset + 1..=offset + 1 + data.len() as i64).contains(&asked),
                "PSYNC offset {asked} outside what was sent ({offset} + {})",
                data.len()
            );
            offset = asked - 1;
            let mut probe = keel.conn();
            assert_eq!(probe.cmd(&["PING"]), b"+PONG\r\n");
            continue;
        }
        let getack = encode(&["REPLCONF", "GETACK", "*"]);
        s.write_all(&data).unwrap();
        s.write_all(&getack).unwrap();
        // The reply to GETACK covers everything before it; keel also ACKs
        // every second on its own (an older offset): read until it.
        let want = offset + data.len() as i64;
        let got = acks_until(&mut r, Some(want))
            .unwrap_or_else(|| panic!("the link broke on an intact input {inputs} (seed {seed})"));
        assert_eq!(
            got,
            want,
            "replica offset after input {inputs} (seed {seed}): {}",
            String::from_utf8_lossy(&data)
        );
        offset = want + getack.len() as i64;
        if inputs % 50 == 0 {
            assert!(
                keel.child.try_wait().unwrap().is_none(),
                "keel exited (seed {seed})"
            );
            let mut c = keel.conn();
            assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        }
    }
    assert!(
        keel.child.try_wait().unwrap().is_none(),
        "keel exited (seed {seed})"
    );
    let mut c = keel.conn();
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let digest = c.cmd(&["DEBUG", "DIGEST"]);
    assert!(
        digest.starts_with(b"+"),
        "{:?}",
        String::from_utf8_lossy(&digest)
    );
    eprintln!(
        "repl stream fuzz: {inputs} inputs ({garbled} garbled), {sent_bytes} bytes, no crash"
    );
    assert!(inputs > 10);
}
