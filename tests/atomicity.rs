//! Cross-shard atomicity under concurrency: clients move value between keys
//! on different shards with MULTI/EXEC and with scripts while readers check
//! that the total never changes; WATCH races between clients.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Conn, Resp, Server};
use keel::storage::slot::key_shard;

shard_tests!(
    transfers_across_shards_never_show_a_partial_state,
    watch_races_between_clients_lose_no_increment,
);

const ACCOUNTS: usize = 8;
const START: i64 = 1000;

fn account(i: usize) -> String {
    // Distinct names hash to different slots, so to different shards.
    format!(
        "acct:{i}:{}",
        ["x", "yy", "zzz", "w", "vv", "uuu", "t", "ss"][i]
    )
}

fn sum_of(r: &Resp) -> i64 {
    match r {
        Resp::Array(items) => items
            .iter()
            .map(|v| match v {
                Resp::Bulk(b) => String::from_utf8_lossy(b).parse::<i64>().unwrap(),
                other => panic!("unexpected element {other:?}"),
            })
            .sum(),
        Resp::Int(n) => *n,
        other => panic!("unexpected reply {other:?}"),
    }
}

/// A tiny deterministic generator per thread.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn transfers_across_shards_never_show_a_partial_state(shards: usize) {
    let keel = Server::keel(shards, &[]);
    if shards > 1 {
        let used: std::collections::BTreeSet<usize> = (0..ACCOUNTS)
            .map(|i| key_shard(account(i).as_bytes(), shards))
            .collect();
        assert_eq!(used.len(), shards, "the accounts do not cover every shard");
    }
    let mut c = keel.conn();
    for i in 0..ACCOUNTS {
        c.line(&format!("SET {} {START}", account(i)));
    }
    let transfer_script = "local v = redis.call('decrby', KEYS[1], ARGV[1]) \
        redis.call('incrby', KEYS[2], ARGV[1]) return v";
    let sum_script = "local s = 0 for _, k in ipairs(KEYS) do s = s + tonumber(redis.call('get', k)) end return s";
    let port = keel.port;
    let violations = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..4u64 {
        writers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut s = 0x9e3779b97f4a7c15u64 ^ (w + 1);
            for n in 0..600 {
                let a = (next(&mut s) % ACCOUNTS as u64) as usize;
                let b = (a + 1 + (next(&mut s) % (ACCOUNTS as u64 - 1)) as usize) % ACCOUNTS;
                let amount = next(&mut s) % 50;
                let (ka, kb) = (account(a), account(b));
                if n % 2 == 0 {
                    c.line("MULTI");
                    c.line(&format!("DECRBY {ka} {amount}"));
                    c.line(&format!("INCRBY {kb} {amount}"));
                    let r = c.val("EXEC");
                    assert!(matches!(r, Resp::Array(ref v) if v.len() == 2), "{r:?}");
                } else {
                    let r = c.cmd(&["EVAL", transfer_script, "2", &ka, &kb, &amount.to_string()]);
                    assert!(r.starts_with(b":"), "{}", String::from_utf8_lossy(&r));
                }
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2 {
        let (violations, reads, done) = (violations.clone(), reads.clone(), done.clone());
        readers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let keys: Vec<String> = (0..ACCOUNTS).map(account).collect();
            while !done.load(Ordering::Relaxed) {
                let reply = if r == 0 {
                    let mut args = vec!["MGET".to_string()];
                    args.extend(keys.iter().cloned());
                    Resp::parse(&c.cmd(&args))
                } else {
                    let mut args = vec![
                        "EVAL".to_string(),
                        sum_script.to_string(),
                        ACCOUNTS.to_string(),
                    ];
                    args.extend(keys.iter().cloned());
                    Resp::parse(&c.cmd(&args))
                };
                if sum_of(&reply) != START * ACCOUNTS as i64 {
                    violations.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 10, "readers barely ran");
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "a reader saw a partial transfer"
    );
    let mut args = vec!["MGET".to_string()];
    args.extend((0..ACCOUNTS).map(account));
    assert_eq!(sum_of(&Resp::parse(&c.cmd(&args))), START * ACCOUNTS as i64);
}

/// Two key names on different shards at `shards` (> 1), by keel's slot map.
fn keys_on_two_shards(shards: usize) -> (String, String) {
    let a = "counter".to_string();
    let on_a = key_shard(a.as_bytes(), shards);
    let b = (0..)
        .map(|i| format!("shadow:{i}"))
        .find(|k| shards == 1 || key_shard(k.as_bytes(), shards) != on_a)
        .unwrap();
    (a, b)
}

fn watch_races_between_clients_lose_no_increment(shards: usize) {
    let keel = Server::keel(shards, &[]);
    let port = keel.port;
    // The WATCHed keys live on two shards (at one shard, on the only one).
    let (counter, shadow) = keys_on_two_shards(shards);
    let per_client = 150;
    let mut clients = Vec::new();
    for t in 0..3 {
        let (counter, shadow) = (counter.clone(), shadow.clone());
        clients.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut retries = 0;
            for n in 0..per_client {
                // Each transaction increments one of the two keys, in turn:
                // a WATCH that misses either shard loses increments of it.
                let key = if (n + t) % 2 == 0 { &counter } else { &shadow };
                loop {
                    c.line(&format!("WATCH {counter} {shadow}"));
                    let v = match Resp::parse(&c.line(&format!("GET {key}"))) {
                        Resp::Bulk(b) => String::from_utf8_lossy(&b).parse::<i64>().unwrap(),
                        _ => 0,
                    };
                    c.line("MULTI");
                    c.line(&format!("SET {key} {}", v + 1));
                    match Resp::parse(&c.line("EXEC")) {
                        Resp::Array(_) => break,
                        Resp::Null => retries += 1,
                        other => panic!("EXEC: {other:?}"),
                    }
                }
            }
            retries
        }));
    }
    let retries: i32 = clients.into_iter().map(|t| t.join().unwrap()).sum();
    let mut c = keel.conn();
    // 3 clients x 150 increments, half of them on each key.
    for key in [&counter, &shadow] {
        assert_eq!(
            common::show(&c.line(&format!("GET {key}"))),
            common::show(format!("$3\r\n{}\r\n", 3 * per_client / 2).as_bytes()),
            "{key}: increments lost"
        );
    }
    // With three clients racing, some EXECs must have been refused.
    assert!(retries > 0, "no WATCH conflict ever happened");
}
