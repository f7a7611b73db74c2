//! Replication effects: keel as a master with a stock `redis-server
//! --replicaof` attached. Commands are driven on keel only; once the
//! replica has caught up (its `master_repl_offset` equals keel's), both
//! must hold the same dataset: DEBUG DIGEST and DBSIZE of DBs 0-2, the
//! absolute expire time of every key (PEXPIRETIME; the digest only knows
//! whether a key has a TTL), and the consumer groups of every stream
//! (XINFO STREAM FULL without node counts and consumer times; the digest
//! leaves groups out).
//!
//! Whatever depends on time or randomness on the master must reach the
//! replica as its outcome (SET ... PXAT, PEXPIREAT, SREM for SPOP, the
//! actual ID for XADD *, exact trims for `~`, XCLAIM for XREADGROUP...).
//! The TTL cases run while the replica sleeps (DEBUG SLEEP), so a relative
//! TTL replayed late shows up as a different PEXPIRETIME.

#[macro_use]
mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::cmdgen::*;
use common::repl::{StockReplica, TempDir};
use common::{Conn, Resp, Server, describe, encode, show};

const SEED: u64 = 0xeffec7;
/// Generated commands per family.
const STEPS: usize = 250;

macro_rules! rig_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn shards_1() {
                    super::$name(&mut super::Rig::new(1));
                }
                #[test]
                fn shards_4() {
                    super::$name(&mut super::Rig::new(4));
                }
            }
        )*
    };
}

rig_tests!(
    ttl_rewrites,
    blocking_pops,
    random_and_floats,
    streams_and_groups,
    random_families,
);

// ---------------------------------------------------------------------------
// The rig: keel, a stock replica of it, and the checks

struct Rig {
    keel: Server,
    replica: StockReplica,
    _keel_dir: TempDir,
    /// Drives keel (its selected DB follows the generated SELECTs).
    k: Conn,
    /// Checks, in RESP3 so XINFO replies are maps.
    kc: Conn,
    rc: Conn,
    recent: VecDeque<String>,
}

fn info_field(c: &mut Conn, section: &str, field: &str) -> Option<String> {
    let text = Resp::parse(&c.cmd(&["INFO", section])).as_str();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

impl Rig {
    fn new(shards: usize) -> Rig {
        // Own dirs: no dump.rdb shared with other tests. No wait for more
        // replicas before the full sync.
        let dir = TempDir::new("effects");
        let keel = Server::keel(
            shards,
            &["--dir", dir.path(), "--repl-diskless-sync-delay", "0"],
        );
        let replica = StockReplica::start(keel.port, &[]);
        let k = keel.conn();
        let mut kc = keel.conn();
        let mut rc = replica.conn();
        kc.cmd(&["HELLO", "3"]);
        rc.cmd(&["HELLO", "3"]);
        let mut rig = Rig {
            keel,
            replica,
            _keel_dir: dir,
            k,
            kc,
            rc,
            recent: VecDeque::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while info_field(&mut rig.rc, "replication", "master_link_status").as_deref() != Some("up")
        {
            if Instant::now() > deadline {
                rig.fail("the replica did not reach master_link_status:up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        rig
    }

    fn fail(&self, msg: &str) -> ! {
        let v: Vec<&str> = self
            .recent
            .iter()
            .rev()
            .take(40)
            .rev()
            .map(|s| s.as_str())
            .collect();
        panic!(
            "{msg}\n  last commands on keel (oldest first):\n    {}\n  replica log tail:\n{}",
            v.join("\n    "),
            tail(&self.replica.log(), 30)
        );
    }

    fn note(&mut self, what: String) {
        self.recent.push_back(what);
        if self.recent.len() > 5000 {
            self.recent.pop_front();
        }
    }

    /// Runs a command on keel (driving connection), returns the raw reply.
    fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.note(describe(args));
        self.k.cmd(args)
    }

    /// `line` split on spaces.
    fn run(&mut self, line: &str) -> Vec<u8> {
        let args: Vec<&str> = line.split(' ').collect();
        self.cmd(&args)
    }

    fn runs(&mut self, lines: &[&str]) {
        for l in lines {
            self.run(l);
        }
    }

    /// Like `run`, failing on an error reply.
    fn ok(&mut self, line: &str) -> Vec<u8> {
        let r = self.run(line);
        if r.first() == Some(&b'-') {
            self.fail(&format!("{line}: {}", show(&r)));
        }
        r
    }

    fn offsets(&mut self) -> (i64, i64) {
        let off = |c: &mut Conn| {
            info_field(c, "replication", "master_repl_offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1)
        };
        (off(&mut self.kc), off(&mut self.rc))
    }

    /// Waits until the replica has applied everything keel sent.
    fn sync(&mut self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (k, r) = self.offsets();
            if k == r && k > 0 {
                return k;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "replica did not catch up: keel master_repl_offset {k}, replica {r}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn both(&mut self, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
        (self.kc.cmd(args), self.rc.cmd(args))
    }

    /// Every difference between keel and the replica, once caught up.
    /// Retried when keel's offset moved meanwhile (active expiry).
    fn verify(&mut self, what: &str) {
        let mut diffs = Vec::new();
        for _attempt in 0..5 {
            let off = self.sync();
            diffs = self.differences();
            if diffs.is_empty() || self.offsets().0 == off {
                break;
            }
        }
        if !diffs.is_empty() {
            // The commands that named a key found to differ.
            let keys: Vec<String> = diffs
                .iter()
                .filter_map(|d| {
                    d.split(' ')
                        .nth(3)
                        .map(|k| k.trim_end_matches(':').to_string())
                })
                .collect();
            let mut touching = Vec::new();
            for c in &self.recent {
                if keys
                    .iter()
                    .any(|k| c.split(' ').any(|w| w.trim_matches('"') == k))
                {
                    touching.push(c.clone());
                }
            }
            let n = touching.len().saturating_sub(30);
            self.fail(&format!(
                "{what}: keel ({}) and its replica differ:\n  {}\n  commands naming those keys (last 30):\n    {}",
                self.keel.name,
                diffs.join("\n  "),
                touching[n..].join("\n    ")
            ));
        }
    }

    fn differences(&mut self) -> Vec<String> {
        let mut d = Vec::new();
        let (kd, rd) = self.both(&["DEBUG", "DIGEST"]);
        if kd != rd {
            d.push(format!(
                "DEBUG DIGEST: keel {} replica {}",
                show(&kd),
                show(&rd)
            ));
        }
        for db in 0..3 {
            let db = db.to_string();
            self.both(&["SELECT", &db]);
            let (kn, rn) = self.both(&["DBSIZE"]);
            if kn != rn {
                d.push(format!(
                    "db {db} DBSIZE: keel {} replica {}",
                    show(&kn),
                    show(&rn)
                ));
            }
            let mut keys = match Resp::parse(&self.kc.cmd(&["KEYS", "*"])) {
                Resp::Array(v) => v.into_iter().map(|k| k.as_bytes().to_vec()).collect(),
                _ => Vec::new(),
            };
            if let Resp::Array(v) = Resp::parse(&self.rc.cmd(&["KEYS", "*"])) {
                keys.extend(v.into_iter().map(|k| k.as_bytes().to_vec()));
            }
            keys.sort();
            keys.dedup();
            for key in keys {
                let ks = String::from_utf8_lossy(&key).into_owned();
                let args = [b"PEXPIRETIME".as_slice(), &key];
                let (kt, rt) = (self.kc.cmd(&args), self.rc.cmd(&args));
                if kt != rt {
                    d.push(format!(
                        "db {db} PEXPIRETIME {ks}: keel {} replica {}",
                        show(&kt),
                        show(&rt)
                    ));
                }
                let args = [b"TYPE".as_slice(), &key];
                let (kty, rty) = (self.kc.cmd(&args), self.rc.cmd(&args));
                if kty != rty {
                    d.push(format!(
                        "db {db} TYPE {ks}: keel {} replica {}",
                        show(&kty),
                        show(&rty)
                    ));
                } else if kty == b"+stream\r\n" {
                    let args = [b"XINFO".as_slice(), b"STREAM", &key, b"FULL"];
                    let (kx, rx) = (
                        stream_state(&self.kc.cmd(&args)),
                        stream_state(&self.rc.cmd(&args)),
                    );
                    if kx != rx {
                        d.push(format!(
                            "db {db} XINFO STREAM {ks} FULL (filtered):\n    keel    {}\n    replica {}",
                            text(&kx),
                            text(&rx)
                        ));
                    }
                }
            }
        }
        self.both(&["SELECT", "0"]);
        d
    }

    /// Sends `cmd` on a second keel connection without waiting: a client
    /// that blocks. Returns the connection, to read the reply later.
    fn blocked(&mut self, line: &str) -> Conn {
        let mut c = self.keel.conn();
        let args: Vec<&str> = line.split(' ').collect();
        self.note(format!("(blocking client) {}", describe(&args)));
        c.send(&encode(&args));
        // Until keel has registered it (it shows in INFO clients).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n: i64 = info_field(&mut self.kc, "clients", "blocked_clients")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if n > 0 {
                break;
            }
            if Instant::now() > deadline {
                self.fail(&format!("{line} did not block"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        c
    }

    /// Keeps the replica busy for `ms` (DEBUG SLEEP): what keel sends
    /// meanwhile is applied late, which exposes relative TTLs.
    fn replica_sleep(&mut self, ms: u64) -> Conn {
        let mut c = self.replica.conn();
        c.send(&encode(&[
            "DEBUG",
            "SLEEP",
            &format!("{}", ms as f64 / 1000.0),
        ]));
        std::thread::sleep(Duration::from_millis(10));
        c
    }
}

/// A parsed reply in a readable one-line form.
fn text(r: &Resp) -> String {
    match r {
        Resp::Simple(b) | Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Resp::Error(b) => format!("-{}", String::from_utf8_lossy(b)),
        Resp::Int(n) => format!(":{n}"),
        Resp::Null => "nil".into(),
        Resp::Array(v) => format!("[{}]", v.iter().map(text).collect::<Vec<_>>().join(" ")),
        Resp::Map(v) => format!(
            "{{{}}}",
            v.iter()
                .map(|(k, x)| format!("{}: {}", text(k), text(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Resp::Other(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// XINFO STREAM FULL without what differs between implementations or
/// depends on each server's clock: node counts, the consumer list (Redis
/// itself does not replicate consumers that read nothing), seen times.
fn stream_state(raw: &[u8]) -> Resp {
    fn strip(r: Resp) -> Resp {
        match r {
            Resp::Map(pairs) => Resp::Map(
                pairs
                    .into_iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k,
                            Resp::Bulk(b) | Resp::Simple(b)
                                if matches!(
                                    b.as_slice(),
                                    b"radix-tree-keys" | b"radix-tree-nodes" | b"consumers"
                                        | b"seen-time" | b"active-time"
                                )
                        )
                    })
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Resp::Array(v) => Resp::Array(v.into_iter().map(strip).collect()),
            other => other,
        }
    }
    strip(Resp::parse(raw))
}

// ---------------------------------------------------------------------------
// Targeted cases

fn ttl_rewrites(rig: &mut Rig) {
    let far = (common::now_ms() / 1000 + 100_000).to_string();
    let far_ms = (common::now_ms() + 90_000_000).to_string();
    let mut sleeper = rig.replica_sleep(300);
    rig.runs(&[
        "SET s1 v EX 1000",
        "SET s2 v PX 1000000",
        &format!("SET s3 v EXAT {far}"),
        &format!("SET s4 v PXAT {far_ms}"),
        "SETEX s5 1000 v",
        "PSETEX s6 1000000 v",
        "SET s7 v EX 2000 GET",
        "SET s7 w EX 3000 GET",
        "SET s8 v NX PX 500000",
        "SET s8 v NX PX 600000",
        "SET s8 w XX EX 700",
        "SET s8 x XX KEEPTTL",
        "SET s8 y XX KEEPTTL GET",
        "SET s9 v",
        "GETEX s9 EX 1000",
        "SET s10 v",
        "GETEX s10 PX 1000000",
        "SET s11 v EX 100",
        "GETEX s11 PERSIST",
        "SET s12 v",
        &format!("GETEX s12 EXAT {far}"),
        "SET s13 v",
        "GETEX s13 EXAT 1",
        "SET s14 v",
        "GETEX s14 PX -5",
        "GETEX missing EX 100",
        "SET e1 v",
        "EXPIRE e1 1000",
        "SET e2 v",
        "PEXPIRE e2 1000000",
        "SET e3 v",
        &format!("EXPIREAT e3 {far}"),
        "SET e4 v",
        &format!("PEXPIREAT e4 {far_ms}"),
        "SET e5 v",
        "EXPIRE e5 -1",
        "SET e6 v",
        "EXPIREAT e6 1",
        "SET e7 v",
        "PEXPIRE e7 0",
        "SET e8 v EX 100",
        "EXPIRE e8 50 GT",
        "EXPIRE e8 200 GT",
        "EXPIRE e8 500 NX",
        "EXPIRE e8 10 LT",
        "SET e9 v",
        "EXPIRE e9 100 XX",
        "PERSIST e8",
        "SET f1 1.5 EX 1000",
        "INCRBYFLOAT f1 2.25",
        "INCRBYFLOAT f1 0.1",
        "SET f2 10",
        "INCRBYFLOAT f2 1e3",
        "HSET h f 1.5",
        "HINCRBYFLOAT h f 0.1",
        "HINCRBYFLOAT h g 3",
        "SET i1 5 EX 1000",
        "INCR i1",
        "APPEND i1 x",
        "SET g1 v PX 1000000",
        "GETDEL g1",
        "GETDEL g1",
        "SET b1 v EX 1000",
        "SETRANGE b1 5 x",
        "SETBIT b1 100 1",
    ]);
    // RESTORE: relative TTL, ABSTTL, no TTL, and a TTL already in the past.
    let payload = Resp::parse(&rig.cmd(&["DUMP", "h"]));
    let Resp::Bulk(payload) = payload else {
        rig.fail(&format!("DUMP h: {payload:?}"))
    };
    let past = (common::now_ms() - 1000).to_string();
    for (key, ttl, extra) in [
        ("r1", "1000000".to_string(), None),
        ("r2", far_ms.clone(), Some("ABSTTL")),
        ("r3", "0".into(), None),
        ("r4", past, Some("ABSTTL")),
        ("r1", "2000000".into(), Some("REPLACE")),
    ] {
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), ttl.as_bytes(), &payload];
        if let Some(x) = extra {
            args.push(x.as_bytes());
        }
        let r = rig.cmd(&args);
        if r != b"+OK\r\n" {
            rig.fail(&format!("RESTORE {key}: {}", show(&r)));
        }
    }
    // MULTI and a script: the same rewrites inside.
    rig.runs(&[
        "MULTI",
        "SET m1 v EX 1000",
        "EXPIRE s9 5000",
        "INCRBYFLOAT f1 1",
        "EXEC",
    ]);
    rig.cmd(&[
        "EVAL",
        "redis.call('SET', KEYS[1], 'v', 'PX', 1000000); redis.call('EXPIRE', KEYS[2], 4000); \
         return redis.call('GETEX', KEYS[3], 'EX', 3000)",
        "3",
        "{x}1",
        "{x}1",
        "{x}2",
    ]);
    // Keys that expire on keel: the DELs reach the replica.
    rig.runs(&["SET x1 v PX 30", "SET x2 v PX 30", "SET x3 v PX 30"]);
    sleeper.read_reply();
    std::thread::sleep(Duration::from_millis(100));
    rig.runs(&["GET x1", "EXISTS x2", "SET x3 w"]);
    rig.verify("TTL rewrites");
}

fn blocking_pops(rig: &mut Rig) {
    // Served at once.
    rig.runs(&[
        "RPUSH {l}1 a b c d e f g h",
        "BLPOP {l}1 {l}2 1",
        "BRPOP {l}2 {l}1 1",
        "BLMOVE {l}1 {l}3 LEFT RIGHT 1",
        "BRPOPLPUSH {l}1 {l}3 1",
        "BLMPOP 1 2 {l}2 {l}1 LEFT COUNT 2",
        "BLMPOP 1 1 {l}1 RIGHT",
        "BLMOVE {l}3 other RIGHT LEFT 1",
        "ZADD {z}1 1 a 2 b 3 c 4 d 5 e 6 f",
        "BZPOPMIN {z}1 1",
        "BZPOPMAX {z}2 {z}1 1",
        "BZMPOP 1 2 {z}2 {z}1 MIN COUNT 2",
        "BZMPOP 1 1 {z}1 MAX",
        "BLPOP {l}9 0.01",
    ]);
    // Served later, by a push from another client.
    let cases: [(&str, &str); 10] = [
        ("BLPOP w1 0", "RPUSH w1 a b"),
        ("BRPOP w2 w2b 0", "LPUSH w2b a b c"),
        ("BLMOVE w3 w4 RIGHT LEFT 0", "RPUSH w3 a b"),
        ("BRPOPLPUSH w5 k9 0", "RPUSH w5 x y"),
        ("BLMPOP 0 2 w6 w7 RIGHT COUNT 5", "RPUSH w7 1 2 3"),
        ("BLMPOP 0 1 w8 LEFT", "RPUSH w8 1 2 3"),
        ("BZPOPMIN z1 0", "ZADD z1 1 a 2 b"),
        ("BZPOPMAX z2 z3 0", "ZADD z3 1 a 2 b"),
        ("BZMPOP 0 2 z4 z5 MIN COUNT 10", "ZADD z5 1 a 2 b 3 c"),
        ("BZMPOP 0 1 z6 MAX", "ZADD z6 1 a 2 b"),
    ];
    for (block, push) in cases {
        let mut c = rig.blocked(block);
        rig.ok(push);
        let r = match c.try_read_reply(Duration::from_secs(10)) {
            Ok(r) => r,
            Err(e) => rig.fail(&format!("{block} not woken by {push}: {e:?}")),
        };
        if r.starts_with(b"*-1") || r.starts_with(b"-") {
            rig.fail(&format!("{block} woken by {push}: {}", show(&r)));
        }
    }
    // Two waiters on one key, one push serving both.
    let mut c1 = rig.blocked("BLPOP q1 0");
    let mut c2 = rig.keel.conn();
    c2.send(&encode(&["BRPOP", "q1", "0"]));
    std::thread::sleep(Duration::from_millis(50));
    rig.ok("RPUSH q1 a b c");
    c1.read_reply();
    c2.read_reply();
    // Woken by a MULTI and by a script.
    let mut c = rig.blocked("BLPOP q2 0");
    rig.runs(&["MULTI", "RPUSH q2 a b", "LPUSH q2 c", "EXEC"]);
    c.read_reply();
    let mut c = rig.blocked("BZPOPMIN q3 0");
    rig.cmd(&[
        "EVAL",
        "return redis.call('ZADD', KEYS[1], 1, 'a', 2, 'b')",
        "1",
        "q3",
    ]);
    c.read_reply();
    // Inside MULTI: never blocks.
    rig.runs(&[
        "RPUSH q4 a b c",
        "MULTI",
        "BLPOP q4 0",
        "BRPOP q4 0",
        "BLPOP q5 0",
        "EXEC",
    ]);
    rig.verify("blocking pops");
}

fn random_and_floats(rig: &mut Rig) {
    let mut small = vec!["SADD", "s1"];
    let members: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    small.extend(members.iter().take(6).map(|s| s.as_str()));
    rig.cmd(&small);
    let mut big = vec!["SADD", "s2"];
    big.extend(members.iter().map(|s| s.as_str()));
    rig.cmd(&big);
    let mut ints = vec!["SADD".to_string(), "s3".into()];
    ints.extend((0..300).map(|i| (i * 7).to_string()));
    rig.cmd(&ints);
    rig.runs(&[
        "SPOP s1",
        "SPOP s1 2",
        "SPOP s2 3",
        "SPOP s2 30",
        "SPOP s3 5",
        "SPOP s3 250",
        "SPOP s1 100",
        "SPOP s1",
        "SPOP nosuch 3",
        "SADD s4 a b c",
        "SPOP s4 0",
        "SPOP s4 3",
        "SRANDMEMBER s2 3",
        "SRANDMEMBER s2 -10",
        "ZADD z 1 a 2 b 3 c",
        "ZRANDMEMBER z 2 WITHSCORES",
        "HSET h a 1 b 2",
        "HRANDFIELD h -5 WITHVALUES",
        "RANDOMKEY",
        "MULTI",
        "SPOP s2",
        "SPOP s3 3",
        "EXEC",
        "SET f 0.1",
        "INCRBYFLOAT f 0.2",
        "INCRBYFLOAT f 1e-10",
        "INCRBYFLOAT f2 5.0e3",
        "HINCRBYFLOAT h a 0.7",
        "HINCRBYFLOAT h c 1e-3",
        "HINCRBYFLOAT h2 x 10.50",
        "SET sx 1",
        "HSET hx f 1",
    ]);
    rig.cmd(&[
        "EVAL",
        "redis.call('SPOP', KEYS[1]); redis.call('SPOP', KEYS[1], 4); \
         return redis.call('INCRBYFLOAT', KEYS[2], '0.3')",
        "2",
        "{s}1",
        "{s}2",
    ]);
    rig.verify("SPOP and floats");
}

fn streams_and_groups(rig: &mut Rig) {
    for i in 0..250 {
        let v = i.to_string();
        rig.cmd(&["XADD", "x1", "*", "f", &v]);
        rig.cmd(&["XADD", "x2", "MAXLEN", "~", "120", "*", "f", &v]);
        rig.cmd(&["XADD", "x3", &format!("{}-*", 1000 + i / 3), "f", &v]);
    }
    rig.runs(&[
        "XADD x4 * a 1",
        "XADD x4 MINID ~ 0 * a 2",
        "XADD x4 NOMKSTREAM MAXLEN ~ 1 LIMIT 10 * a 3",
        "XADD x5 NOMKSTREAM * a 1",
        "XTRIM x1 MAXLEN ~ 150",
        "XTRIM x1 MAXLEN 140",
        "XTRIM x3 MINID ~ 1050",
        "XTRIM x3 MAXLEN ~ 10 LIMIT 100",
        "XGROUP CREATE x1 g1 0",
        "XGROUP CREATE x1 g2 $",
        "XGROUP CREATE x3 g1 0 ENTRIESREAD 3",
        "XGROUP CREATE x9 g1 $ MKSTREAM",
        "XREADGROUP GROUP g1 alice COUNT 5 STREAMS x1 >",
        "XREADGROUP GROUP g1 bob COUNT 3 STREAMS x1 >",
        "XREADGROUP GROUP g1 carol COUNT 4 NOACK STREAMS x1 >",
        "XREADGROUP GROUP g1 dave COUNT 2 STREAMS x1 0",
        "XREADGROUP GROUP g1 alice COUNT 2 STREAMS x1 0",
        "XREADGROUP GROUP g1 erin COUNT 7 STREAMS x3 >",
        "XREADGROUP GROUP g1 erin NOACK COUNT 2 STREAMS x3 >",
        "XGROUP CREATECONSUMER x1 g1 frank",
        "XGROUP DELCONSUMER x1 g1 bob",
    ]);
    // XCLAIM / XAUTOCLAIM of what alice holds, and the ID of one entry.
    let pending = Resp::parse(&rig.run("XPENDING x1 g1 - + 10 alice"));
    let ids: Vec<String> = match pending {
        Resp::Array(v) => v
            .into_iter()
            .filter_map(|e| match e {
                Resp::Array(f) => Some(f[0].as_str()),
                _ => None,
            })
            .collect(),
        other => rig.fail(&format!("XPENDING: {other:?}")),
    };
    if ids.len() < 3 {
        rig.fail(&format!("XPENDING for alice: {ids:?}"));
    }
    rig.ok(&format!("XCLAIM x1 g1 zed 0 {}", ids[0]));
    rig.ok(&format!(
        "XCLAIM x1 g1 zed 0 {} JUSTID RETRYCOUNT 5",
        ids[1]
    ));
    rig.ok(&format!("XCLAIM x1 g1 yan 0 {} IDLE 5000", ids[2]));
    rig.ok(&format!("XACK x1 g1 {}", ids[3]));
    rig.ok(&format!("XDEL x1 {}", ids[4]));
    rig.runs(&[
        "XAUTOCLAIM x1 g1 walt 0 0 COUNT 3",
        "XAUTOCLAIM x1 g1 walt 0 0 COUNT 100 JUSTID",
        "XGROUP SETID x1 g2 0 ENTRIESREAD 0",
        "XREADGROUP GROUP g2 amy COUNT 2 STREAMS x1 >",
        "XGROUP SETID x1 g2 $",
        "XSETID x9 5-5",
        "XSETID x9 10-0 ENTRIESADDED 20 MAXDELETEDID 5-0",
        "XGROUP DESTROY x3 g1",
    ]);
    // XREADGROUP blocked, served by a later XADD from another client.
    let mut c = rig.blocked("XREADGROUP GROUP g1 bea BLOCK 0 COUNT 2 STREAMS x9 >");
    rig.ok("XADD x9 * f v");
    let r = c.read_reply();
    if !r.starts_with(b"*1") {
        rig.fail(&format!("blocked XREADGROUP: {}", show(&r)));
    }
    let mut c = rig.blocked("XREADGROUP GROUP g1 bea2 BLOCK 0 NOACK STREAMS x9 >");
    rig.runs(&["MULTI", "XADD x9 * f 1", "XADD x9 * f 2", "EXEC"]);
    c.read_reply();
    // Inside MULTI and scripts.
    rig.runs(&[
        "MULTI",
        "XADD x6 * f 1",
        "XADD x6 MAXLEN ~ 0 * f 2",
        "XGROUP CREATE x6 g 0",
        "XREADGROUP GROUP g c STREAMS x6 >",
        "EXEC",
    ]);
    rig.cmd(&[
        "EVAL",
        "redis.call('XADD', KEYS[1], '*', 'a', 1); redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0'); \
         return redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], '>')",
        "1",
        "x7",
    ]);
    rig.verify("streams and consumer groups");
}

// ---------------------------------------------------------------------------
// Seeded random mix

/// Commands whose outcome depends on time or randomness.
fn effects(g: &mut G) -> Cmd {
    let k = g.key();
    let k2 = g.key();
    let v = g.val();
    let far = (common::now_ms() / 1000 + 50_000 + g.rng.below(1000)).to_string();
    let r = &mut g.rng;
    let ttl = r.pick(&["100", "5000", "-3", "0"]).to_string();
    match r.below(16) {
        0 => {
            let mut a = vec!["SET".to_string(), k, v];
            let opt = r.pick(&["EX", "PX", "EXAT", "PXAT"]);
            a.push(opt.into());
            a.push(match opt {
                "EX" => "3000".into(),
                "PX" => "3000000".into(),
                "EXAT" => far,
                _ => format!("{far}123"),
            });
            if r.chance(30) {
                a.push(r.pick(&["NX", "XX"]).into());
            }
            if r.chance(30) {
                a.push("GET".into());
            }
            owned(a, Cmp::Exact)
        }
        1 => cmd(&[r.pick(&["SETEX", "PSETEX"]), &k, "5000", &v]),
        2 => match r.below(5) {
            0 => cmd(&["GETEX", &k, "EX", &ttl]),
            1 => cmd(&["GETEX", &k, "PX", "4000000"]),
            2 => cmd(&["GETEX", &k, "EXAT", &far]),
            3 => cmd(&["GETEX", &k, "PERSIST"]),
            _ => cmd(&["GETEX", &k, "PXAT", "1"]),
        },
        3 => cmd(&[r.pick(&["EXPIRE", "PEXPIRE"]), &k, &ttl]),
        4 => {
            let n = r.below(4).to_string();
            cmd(&["SPOP", &k, &n])
        }
        5 => cmd(&["SPOP", &k]),
        6 => {
            let mut a = vec!["SADD".to_string(), k];
            for i in 0..r.below(12) {
                a.push(format!("{}", i * 3 + r.below(3)));
            }
            a.push("m".into());
            owned(a, Cmp::Exact)
        }
        7 => {
            let f = g.float();
            cmd(&["INCRBYFLOAT", &k, &f])
        }
        8 => {
            let f = g.float();
            cmd(&["HINCRBYFLOAT", &k, "f", &f])
        }
        9 => cmd(&[r.pick(&["BLPOP", "BRPOP"]), &k, &k2, "0.01"]),
        10 => cmd(&[
            r.pick(&["BLMOVE", "LMOVE"]),
            &k,
            &k2,
            "LEFT",
            "RIGHT",
            "0.01",
        ]),
        11 => cmd(&[r.pick(&["BZPOPMIN", "BZPOPMAX"]), &k, "0.01"]),
        12 => cmd(&["BZMPOP", "0.01", "2", &k, &k2, "MIN", "COUNT", "2"]),
        13 => cmd(&["BLMPOP", "0.01", "1", &k, "RIGHT", "COUNT", "2"]),
        14 => cmd(&["XADD", &k, "MAXLEN", "~", "2", "*", "f", &v]),
        _ => cmd(&["XTRIM", &k, "MINID", "~", "0"]),
    }
}

fn random_families(rig: &mut Rig) {
    let families: [(&str, Gen); 10] = [
        ("strings", |g| {
            if g.rng.chance(8) {
                foreign(g)
            } else {
                strings(g)
            }
        }),
        ("keyspace", keyspace),
        ("lists", lists_cmd),
        ("hashes", hashes_cmd),
        ("sets", sets_cmd),
        ("zsets", zsets_cmd),
        ("hll_streams", hll_and_streams_gen),
        ("effects", |g| {
            if g.rng.chance(50) { effects(g) } else { any(g) }
        }),
        ("scripts", eval),
        ("mixed", any),
    ];
    for (name, make) in families {
        let salt = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) ^ b as u64);
        let mut g = G::new(SEED ^ salt.rotate_left(17));
        rig.cmd(&["SELECT", "0"]);
        for _ in 0..STEPS {
            if g.rng.chance(5) {
                rig.cmd(&["MULTI"]);
                for _ in 0..1 + g.rng.below(4) {
                    let c = make(&mut g);
                    rig.cmd(&c.args);
                }
                rig.cmd(&["EXEC"]);
            } else {
                let c = make(&mut g);
                rig.cmd(&c.args);
            }
        }
        rig.verify(&format!("family {name} (seed {SEED:#x})"));
    }
}
