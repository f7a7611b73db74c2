//! Operational commands and client limits: SLOWLOG, LATENCY HISTOGRAM,
//! INFO errorstats, MEMORY USAGE, CLIENT LIST fields, CLIENT PAUSE /
//! UNBLOCK, timeout, maxclients, pubsub output buffer limits.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Conn, Pair, Resp, Server, assert_held, encode, reply_within, show};

pair_tests!(
    slowlog,
    errorstats,
    memory_usage,
    client_list_states,
    client_unblock,
    latency_events,
    info_section_sets,
    slowlog_redacts_sensitive_arguments,
    credentials_are_redacted_in_slowlog_and_monitor,
    paused_clients_count_as_blocked,
    client_info_qbuf_holds_current_command,
    idle_client_gives_query_buffer_back,
    reply_buffer_size_and_peak_are_computed,
    pause_write_lets_errors_and_read_only_scripts_through,
    served_blocked_command_counts_once,
);

/// LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR after a slow command:
/// event names and reply shapes as stock (times and values blanked).
fn latency_events(p: &mut Pair) {
    p.checks(&[
        "LATENCY RESET",
        "LATENCY HISTORY command",
        "LATENCY GRAPH command",
        "LATENCY LATEST",
        "LATENCY HELP",
        "LATENCY BOGUS",
        "LATENCY HISTORY",
        "CONFIG SET latency-monitor-threshold 5",
        "DEBUG SLEEP 0.02",
    ]);
    let events = |b: &[u8]| match Resp::parse(b) {
        Resp::Array(v) => v
            .iter()
            .map(|e| match e {
                Resp::Array(f) => format!("{}:{}", f[0].as_str(), f.len()),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => format!("{other:?}"),
    };
    let (k, r) = p.both("LATENCY LATEST");
    p.expect_eq(
        "LATENCY LATEST events",
        events(&k).as_bytes(),
        events(&r).as_bytes(),
    );
    let (k, r) = p.both("LATENCY HISTORY command");
    let len = |b: &[u8]| match Resp::parse(b) {
        Resp::Array(v) => v.len(),
        _ => usize::MAX,
    };
    p.expect_eq(
        "LATENCY HISTORY command samples",
        len(&k).to_string().as_bytes(),
        len(&r).to_string().as_bytes(),
    );
    let (k, r) = p.both("LATENCY GRAPH command");
    let head = |b: &[u8]| {
        let t = Resp::parse(b).as_str();
        t.lines()
            .next()
            .unwrap_or("")
            .split(" - ")
            .next()
            .unwrap_or("")
            .to_string()
    };
    p.expect_eq(
        "LATENCY GRAPH title",
        head(&k).as_bytes(),
        head(&r).as_bytes(),
    );
    let (k, r) = p.both("LATENCY DOCTOR");
    let first = |b: &[u8]| {
        Resp::parse(b)
            .as_str()
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    p.expect_eq(
        "LATENCY DOCTOR first line",
        first(&k).as_bytes(),
        first(&r).as_bytes(),
    );
    p.checks(&[
        "LATENCY RESET command nosuchevent",
        "LATENCY LATEST",
        "CONFIG SET latency-monitor-threshold 0",
        "LATENCY DOCTOR",
    ]);
}

/// Which sections INFO, INFO default, INFO all and INFO everything include.
fn info_section_sets(p: &mut Pair) {
    for line in [
        "INFO",
        "INFO default",
        "INFO all",
        "INFO everything",
        "INFO commandstats errorstats",
        "INFO ALL latencystats",
        "INFO Server CLIENTS",
    ] {
        let (k, r) = p.both(line);
        let heads = |b: &[u8]| {
            Resp::parse(b)
                .as_str()
                .lines()
                .filter(|l| l.starts_with('#'))
                .collect::<Vec<_>>()
                .join(",")
        };
        p.expect_eq(
            &format!("{line} sections"),
            heads(&k).as_bytes(),
            heads(&r).as_bytes(),
        );
    }
}

/// A SLOWLOG GET reply with what differs between runs blanked: ids made
/// relative to the newest, timestamps, durations and client addresses.
fn norm_slowlog(r: &Resp) -> Resp {
    let Resp::Array(entries) = r else {
        return r.clone();
    };
    let first = match entries.first() {
        Some(Resp::Array(e)) => match &e[0] {
            Resp::Int(n) => *n,
            _ => 0,
        },
        _ => 0,
    };
    Resp::Array(
        entries
            .iter()
            .map(|e| match e {
                Resp::Array(f) if f.len() == 6 => Resp::Array(vec![
                    Resp::Int(first - f[0].as_int()),
                    Resp::Int(if f[1].as_int() > 1_600_000_000 { 1 } else { 0 }),
                    Resp::Int((f[2].as_int() >= 0) as i64),
                    f[3].clone(),
                    Resp::Int(f[4].as_bytes().starts_with(b"127.0.0.1:") as i64),
                    f[5].clone(),
                ]),
                other => other.clone(),
            })
            .collect(),
    )
}

fn check_slowlog(p: &mut Pair, line: &str) {
    let (k, r) = p.both(line);
    let (nk, nr) = (
        norm_slowlog(&Resp::parse(&k)),
        norm_slowlog(&Resp::parse(&r)),
    );
    if nk != nr {
        p.fail(format!(
            "{line} (normalised)\n    keel:  {}\n    redis: {}",
            show(&k),
            show(&r)
        ));
    }
}

fn slowlog(p: &mut Pair) {
    p.checks(&[
        "CONFIG SET slowlog-log-slower-than 0",
        "CONFIG SET slowlog-max-len 128",
        "SLOWLOG RESET",
        "CLIENT SETNAME logger",
        "SET k1 v1",
        "GET k1",
        "RPUSH list a b c",
    ]);
    // 40 arguments, one of them over 128 bytes.
    let mut args: Vec<Vec<u8>> = vec![b"DEL".to_vec(), vec![b'x'; 200]];
    args.extend((0..38).map(|i| format!("key{i}").into_bytes()));
    p.check_args(&args);
    check_slowlog(p, "SLOWLOG GET");
    check_slowlog(p, "SLOWLOG GET 2");
    check_slowlog(p, "SLOWLOG GET -1");
    p.checks(&[
        "SLOWLOG GET 0",
        "SLOWLOG GET -2",
        "SLOWLOG GET x",
        "SLOWLOG GET 1 2",
        "SLOWLOG HELP",
        "SLOWLOG BOGUS",
        "SLOWLOG LEN 1",
    ]);
    let (k, r) = p.both("SLOWLOG LEN");
    p.expect_eq("SLOWLOG LEN", &k, &r);
    // Trimming to slowlog-max-len on the next push.
    p.checks(&[
        "CONFIG SET slowlog-max-len 3",
        "SET a 1",
        "SET b 2",
        "SET c 3",
    ]);
    let (k, r) = p.both("SLOWLOG LEN");
    p.expect_eq("SLOWLOG LEN after max-len 3", &k, &r);
    check_slowlog(p, "SLOWLOG GET");
    p.checks(&[
        "SLOWLOG RESET",
        "CONFIG SET slowlog-log-slower-than -1",
        "SET d 4",
    ]);
    p.check("SLOWLOG LEN");
    p.checks(&[
        "CONFIG SET slowlog-log-slower-than 10000",
        "CONFIG SET slowlog-max-len 128",
    ]);
}

/// `field:count=N` lines of an INFO section, in order.
fn section(p: &mut Pair, name: &str) -> (Vec<u8>, Vec<u8>) {
    let (k, r) = p.both(&format!("INFO {name}"));
    (
        Resp::parse(&k).as_bytes().to_vec(),
        Resp::parse(&r).as_bytes().to_vec(),
    )
}

/// calls, rejected_calls and failed_calls of one commandstats line.
fn cmdstat(info: &[u8], cmd: &str) -> String {
    let text = String::from_utf8_lossy(info);
    let Some(line) = text
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
    else {
        return "absent".into();
    };
    line.split(',')
        .filter(|f| !f.contains("usec"))
        .collect::<Vec<_>>()
        .join(",")
}

fn field(info: &[u8], name: &str) -> String {
    String::from_utf8_lossy(info)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_default()
}

fn errorstats(p: &mut Pair) {
    p.check("CONFIG RESETSTAT");
    p.checks(&[
        "SET s v",
        "LPUSH s x",
        "GET",
        "NOSUCHCOMMAND a b",
        "INCR s",
        "SET a b NX XX",
        "ZADD z nan x",
        "MULTI",
        "GET s",
        "LPUSH s y",
        "EXEC",
        "MULTI",
        "SET",
        "EXEC",
        "EXEC",
        "DISCARD",
        "XADD st 0-0 f v",
        "OBJECT FREQ s",
    ]);
    let (k, r) = section(p, "errorstats");
    p.expect_eq("INFO errorstats", &k, &r);
    let (k, r) = section(p, "stats");
    p.expect_eq(
        "total_error_replies",
        field(&k, "total_error_replies").as_bytes(),
        field(&r, "total_error_replies").as_bytes(),
    );
    let (k, r) = section(p, "commandstats");
    for c in ["get", "lpush", "incr", "set", "zadd", "xadd"] {
        p.expect_eq(
            &format!("cmdstat_{c}"),
            cmdstat(&k, c).as_bytes(),
            cmdstat(&r, c).as_bytes(),
        );
    }
}

fn memory_usage(p: &mut Pair) {
    p.checks(&[
        "SET int 12345",
        "SET embstr hello",
        "SET raw xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "RPUSH list a b c 1 2 3",
        "SADD intset 1 2 3 400000",
        "SADD hset a b c d",
        "HSET hlp f1 v1 f2 v2",
        "ZADD zlp 1 a 2.5 b",
        "XADD st 1-1 f v",
        "MEMORY USAGE nosuchkey",
        "MEMORY USAGE int SAMPLES",
        "MEMORY USAGE int SAMPLES -1",
        "MEMORY USAGE int FOO 1",
        "MEMORY HELP",
        "MEMORY BOGUS",
        "MEMORY USAGE",
    ]);
    // Big encodings: hashtable hash and skiplist zset.
    let mut hargs: Vec<String> = vec!["HSET".into(), "hht".into()];
    let mut zargs: Vec<String> = vec!["ZADD".into(), "zsl".into()];
    let mut largs: Vec<String> = vec!["RPUSH".into(), "biglist".into()];
    for i in 0..300 {
        hargs.extend([format!("field{i}"), format!("value{i}")]);
        zargs.extend([format!("{i}"), format!("member{i}")]);
        largs.push(format!("element-{i}-{}", "y".repeat(40)));
    }
    p.check_args(&hargs);
    p.check_args(&zargs);
    p.check_args(&largs);
    for key in [
        "int", "embstr", "raw", "list", "intset", "hset", "hlp", "zlp", "st", "hht", "zsl",
        "biglist",
    ] {
        let (k, r) = p.both(&format!("MEMORY USAGE {key} SAMPLES 0"));
        let (k, r) = (Resp::parse(&k).as_int(), Resp::parse(&r).as_int());
        // An estimate of what Redis would use: within a factor of 1.5.
        if k * 2 < r * 3 / 2 || k * 2 > r * 3 {
            p.fail(format!("MEMORY USAGE {key}: keel {k}, redis {r}"));
        }
    }
    // MEMORY STATS: the same fields in the same order, integers where Redis has them.
    let (k, r) = p.both("MEMORY STATS");
    let kinds = |b: &[u8]| match Resp::parse(b) {
        Resp::Array(v) => v
            .iter()
            .map(|x| match x {
                Resp::Int(_) => "int".to_string(),
                Resp::Array(_) => "map".to_string(),
                other => format!("{:?}", common::shape(other)),
            })
            .collect::<Vec<_>>(),
        other => vec![format!("{other:?}")],
    };
    let names = |b: &[u8]| match Resp::parse(b) {
        Resp::Array(v) => v.iter().step_by(2).map(|x| x.as_str()).collect::<Vec<_>>(),
        _ => vec![],
    };
    p.expect_eq(
        "MEMORY STATS fields",
        names(&k).join(",").as_bytes(),
        names(&r).join(",").as_bytes(),
    );
    p.expect_eq(
        "MEMORY STATS kinds",
        kinds(&k).join(",").as_bytes(),
        kinds(&r).join(",").as_bytes(),
    );
    p.check("MEMORY PURGE");
}

/// The fields of a CLIENT LIST line, by name.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .filter_map(|f| f.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn client_list_states(p: &mut Pair) {
    // One client of each kind on both servers, then CLIENT LIST compared
    // field by field for the values that describe the state.
    let (mut km, mut rm) = p.conns();
    for c in [&mut km, &mut rm] {
        c.line("CLIENT SETNAME inmulti");
        c.line("MULTI");
        c.line("SET a b");
        c.line("GET a");
    }
    let (mut kb, mut rb) = p.conns();
    for c in [&mut kb, &mut rb] {
        c.line("CLIENT SETNAME blocked");
        c.send(&encode(&["BLPOP", "nokey", "0"]));
    }
    let (mut ks, mut rs) = p.conns();
    for c in [&mut ks, &mut rs] {
        c.line("CLIENT SETNAME subscriber");
        c.line("SUBSCRIBE ch1 ch2");
        let _ = c.read_reply();
    }
    let (mut kp, mut rp) = p.conns();
    for c in [&mut kp, &mut rp] {
        c.line("CLIENT SETNAME pipelined");
        c.send(b"PING\r\nPING\r\nPING\r\n");
        for _ in 0..3 {
            c.read_reply();
        }
    }
    // Until the blocked clients show up as blocked.
    for c in [&mut p.k, &mut p.r] {
        for _ in 0..200 {
            let l = c.val("CLIENT LIST").as_str();
            if l.contains("flags=b") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (k, r) = p.both("CLIENT LIST");
    let (k, r) = (Resp::parse(&k).as_str(), Resp::parse(&r).as_str());
    let pick = |text: &str, name: &str| -> Vec<(String, String)> {
        let line = text
            .lines()
            .find(|l| l.contains(&format!(" name={name} ")))
            .unwrap_or("");
        fields(line)
    };
    let keys = [
        "name",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "multi-mem",
        "argv-mem",
        "obl",
        "omem",
        "cmd",
        "resp",
        "events",
    ];
    for name in ["inmulti", "blocked", "subscriber", "pipelined"] {
        let (fk, fr) = (pick(&k, name), pick(&r, name));
        let names = |f: &[(String, String)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        if names(&fk) != names(&fr) {
            p.fail(format!(
                "CLIENT LIST field names for {name}\n    keel:  {fk:?}\n    redis: {fr:?}"
            ));
        }
        for key in keys {
            let v = |f: &[(String, String)]| {
                f.iter()
                    .find(|x| x.0 == key)
                    .map(|x| x.1.clone())
                    .unwrap_or_default()
            };
            p.expect_eq(
                &format!("CLIENT LIST {name} {key}"),
                v(&fk).as_bytes(),
                v(&fr).as_bytes(),
            );
        }
    }
    for c in [&mut km, &mut rm] {
        c.line("DISCARD");
    }
    p.checks(&["RPUSH nokey x"]);
    let (k, r) = (kb.read_reply(), rb.read_reply());
    p.expect_eq("BLPOP served", &k, &r);
}

fn client_unblock(p: &mut Pair) {
    let (mut kb, mut rb) = p.conns();
    let kid = kb.val("CLIENT ID").as_int();
    let rid = rb.val("CLIENT ID").as_int();
    for (c, other, id) in [(&mut kb, &mut p.k, kid), (&mut rb, &mut p.r, rid)] {
        c.send(&encode(&["BLPOP", "nokey", "0"]));
        wait_blocked(other, id);
    }
    let (k, r) = (
        p.k.cmd(&["CLIENT", "UNBLOCK", &kid.to_string()]),
        p.r.cmd(&["CLIENT", "UNBLOCK", &rid.to_string()]),
    );
    p.expect_eq("CLIENT UNBLOCK id", &k, &r);
    let (k, r) = (kb.read_reply(), rb.read_reply());
    p.expect_eq("unblocked as on timeout", &k, &r);
    for (c, other, id) in [(&mut kb, &mut p.k, kid), (&mut rb, &mut p.r, rid)] {
        c.send(&encode(&["BRPOP", "nokey", "0"]));
        wait_blocked(other, id);
    }
    let (k, r) = (
        p.k.cmd(&["CLIENT", "UNBLOCK", &kid.to_string(), "ERROR"]),
        p.r.cmd(&["CLIENT", "UNBLOCK", &rid.to_string(), "ERROR"]),
    );
    p.expect_eq("CLIENT UNBLOCK id ERROR", &k, &r);
    let (k, r) = (kb.read_reply(), rb.read_reply());
    p.expect_eq("unblocked with an error", &k, &r);
    let (k, r) = (
        p.k.cmd(&["CLIENT", "UNBLOCK", &kid.to_string()]),
        p.r.cmd(&["CLIENT", "UNBLOCK", &rid.to_string()]),
    );
    p.expect_eq("CLIENT UNBLOCK of a client not blocked", &k, &r);
    p.checks(&[
        "CLIENT UNBLOCK 999999",
        "CLIENT UNBLOCK x",
        "CLIENT UNBLOCK 1 MAYBE",
        "CLIENT PAUSE x",
        "CLIENT PAUSE -1",
        "CLIENT PAUSE 10 NONE",
        "CLIENT UNPAUSE",
    ]);
}

/// A blocked BLPOP / XREADGROUP that is then served (or times out) is one
/// call in commandstats, as stock.
fn served_blocked_command_counts_once(p: &mut Pair) {
    p.checks(&["XGROUP CREATE st g $ MKSTREAM", "CONFIG RESETSTAT"]);
    let (mut kb, mut rb) = p.conns();
    let kid = kb.val("CLIENT ID").as_int();
    let rid = rb.val("CLIENT ID").as_int();
    let steps: [(&[&str], &str); 3] = [
        (&["BLPOP", "bl", "0"], "RPUSH bl x"),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "st",
                ">",
            ],
            "XADD st 1-1 f v",
        ),
        (&["BRPOP", "nothere", "0.5"], "PING"),
    ];
    for (blocking, serve) in steps {
        for (c, other, id) in [(&mut kb, &mut p.k, kid), (&mut rb, &mut p.r, rid)] {
            c.send(&encode(blocking));
            wait_blocked(other, id);
        }
        p.check(serve);
        let (k, r) = (kb.read_reply(), rb.read_reply());
        p.expect_eq(&format!("{} served", blocking[0]), &k, &r);
    }
    let (k, r) = section(p, "commandstats");
    for c in ["blpop", "xreadgroup", "brpop", "rpush", "xadd"] {
        p.expect_eq(
            &format!("cmdstat_{c}"),
            cmdstat(&k, c).as_bytes(),
            cmdstat(&r, c).as_bytes(),
        );
    }
}

/// Waits until client `id` shows flag b in CLIENT LIST.
fn wait_blocked(c: &mut Conn, id: i64) {
    for _ in 0..500 {
        let l = c.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]);
        if Resp::parse(&l).as_str().contains("flags=b") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("client {id} never blocked");
}

shard_tests!(
    latency_histogram_counts_every_shard,
    timeout_closes_idle_clients_only,
    maxclients_error_as_redis,
    pubsub_client_over_its_output_limit_is_closed,
);

fn latency_histogram_counts_every_shard(shards: usize) {
    let p = Pair::new(shards);
    let (mut k, mut r) = p.conns();
    for c in [&mut k, &mut r] {
        c.line("CONFIG RESETSTAT");
        // Keys spread over every shard of keel.
        let mut pipeline = Vec::new();
        for i in 0..200 {
            pipeline.extend(encode(&["SET", &format!("key:{i}"), "v"]));
        }
        for i in 0..50 {
            pipeline.extend(encode(&["GET", &format!("key:{i}")]));
        }
        c.send(&pipeline);
        for _ in 0..250 {
            c.read_reply();
        }
        c.line("CONFIG GET maxmemory");
    }
    for (name, c) in [("keel", &mut k), ("redis", &mut r)] {
        let h = c.val("LATENCY HISTOGRAM set get config|get nosuchcommand");
        let Resp::Array(v) = &h else {
            panic!("{name}: LATENCY HISTOGRAM is not an array: {h:?}")
        };
        let mut seen = Vec::new();
        for pair in v.chunks(2) {
            let cmd = pair[0].as_str();
            let Resp::Array(m) = &pair[1] else {
                panic!("{name}: {h:?}")
            };
            assert_eq!(m[0].as_str(), "calls", "{name}");
            let calls = m[1].as_int();
            let want = match cmd.as_str() {
                "set" => 200,
                "get" => 50,
                "config|get" => 1,
                other => panic!("{name}: unexpected {other}"),
            };
            assert_eq!(calls, want, "{name}: calls of {cmd}");
            assert_eq!(m[2].as_str(), "histogram_usec", "{name}");
            let Resp::Array(b) = &m[3] else {
                panic!("{name}: {h:?}")
            };
            let counts: Vec<i64> = b.chunks(2).map(|x| x[1].as_int()).collect();
            assert!(
                counts.windows(2).all(|w| w[0] < w[1]),
                "{name}: cumulative {b:?}"
            );
            assert_eq!(counts.last(), Some(&want), "{name}: last bucket of {cmd}");
            seen.push(cmd);
        }
        seen.sort();
        assert_eq!(seen, ["config|get", "get", "set"], "{name}");
        let info = c.val("INFO latencystats").as_str();
        let line = info
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_set:"))
            .unwrap_or_else(|| panic!("{name}: no set line in {info}"));
        let keys: Vec<&str> = line
            .split(':')
            .nth(1)
            .unwrap()
            .split(',')
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(keys, ["p50", "p99", "p99.9"], "{name}: {line}");
    }
}

fn timeout_closes_idle_clients_only(shards: usize) {
    let s = Server::keel(shards, &["--timeout", "1"]);
    let mut idle = s.conn();
    idle.line("PING");
    let mut blocked = s.conn();
    blocked.send(&encode(&["BLPOP", "k", "0"]));
    let mut sub = s.conn();
    sub.line("SUBSCRIBE ch");
    let (_, closed) = idle.read_until_close(Duration::from_secs(5));
    assert!(closed, "the idle client was not closed");
    // The others outlived the idle one: they still answer.
    let mut c = s.conn();
    assert_eq!(c.line("RPUSH k v"), b":1\r\n");
    assert_eq!(
        show(&blocked.read_reply()),
        show(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n")
    );
    assert_eq!(
        show(&sub.line("PING")),
        show(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    );
}

fn maxclients_error_as_redis(shards: usize) {
    for s in [
        Server::keel(shards, &["--maxclients", "2"]),
        Server::redis(&["--maxclients", "2"]),
    ] {
        let mut a = s.conn();
        a.line("PING");
        let mut b = s.conn();
        b.line("PING");
        let mut c = Conn::connect(s.port);
        let (r, _) = c.read_until_close(Duration::from_secs(2));
        assert_eq!(
            show(&r),
            show(b"-ERR max number of clients reached\r\n"),
            "{}",
            s.name
        );
    }
}

fn pubsub_client_over_its_output_limit_is_closed(shards: usize) {
    let s = Server::keel(shards, &["--client-output-buffer-limit", "pubsub 4mb 0 0"]);
    let mut sub = s.conn();
    sub.line("CLIENT SETNAME slowreader");
    sub.line("SUBSCRIBE ch");
    let mut publ = s.conn();
    let msg = "m".repeat(64 * 1024);
    let mut max_omem = 0i64;
    let mut gone = false;
    // The subscriber never reads: its pending output grows until the limit.
    for _ in 0..2000 {
        publ.cmd(&["PUBLISH", "ch", &msg]);
        let list = publ.val("CLIENT LIST").as_str();
        match list.lines().find(|l| l.contains("name=slowreader")) {
            Some(l) => {
                let omem: i64 = fields(l)
                    .iter()
                    .find(|f| f.0 == "omem")
                    .map(|f| f.1.parse().unwrap())
                    .unwrap();
                max_omem = max_omem.max(omem);
            }
            None => {
                gone = true;
                break;
            }
        }
    }
    assert!(
        gone,
        "the subscriber was never disconnected (max omem {max_omem})"
    );
    assert!(max_omem > 0, "omem never rose");
    let (_, closed) = sub.read_until_close(Duration::from_secs(5));
    assert!(closed, "the subscriber's connection is still open");
    assert!(
        s.log_text()
            .contains("scheduled to be closed ASAP for overcoming of output buffer limits."),
        "no log line"
    );
}

shard_tests!(client_pause_write_holds_writes_not_reads);

/// CLIENT PAUSE WRITE holds writes, not reads; PAUSE ALL holds reads too,
/// until it ends. Shown by when replies arrive (a held command stays
/// silent, then answers after the unpause or the pause's end) and by order
/// (a read during the pause sees the value from before the held write),
/// on keel at `shards` and on stock, with the same replies on both.
fn client_pause_write_holds_writes_not_reads(shards: usize) {
    let keel = Server::keel(shards, &[]);
    let redis = Server::redis(&[]);
    let k = pause_steps(&keel);
    let r = pause_steps(&redis);
    assert_eq!(k, r, "replies of keel --shards {shards} vs redis-server");
}

/// Runs the pause scenario on `s`, asserting its timing; returns the replies.
fn pause_steps(s: &Server) -> Vec<String> {
    // A held command stays silent this long; a free one answers well within it.
    const HOLD: Duration = Duration::from_millis(300);
    const PAUSE_ALL_MS: u64 = 800;
    let name = &s.name;
    let mut log = Vec::new();
    let (mut admin, mut c, mut d) = (s.conn(), s.conn(), s.conn());
    let timed = |c: &mut Conn, line: &str, log: &mut Vec<String>| {
        let t = Instant::now();
        let r = c.line(line);
        assert!(
            t.elapsed() < HOLD,
            "{name}: {line} took {:?} (held?)",
            t.elapsed()
        );
        log.push(format!("{line} -> {}", show(&r)));
    };
    timed(&mut c, "SET k v1", &mut log);
    timed(&mut admin, "CLIENT PAUSE 100000 WRITE", &mut log);
    // Reads run during PAUSE WRITE, the pausing client's and others'.
    timed(&mut c, "GET k", &mut log);
    c.send(&encode(&["SET", "k", "v2"]));
    assert_held(&mut c, HOLD, &format!("{name}: SET during PAUSE WRITE"));
    d.send(&encode(&["INCR", "n"]));
    assert_held(&mut d, HOLD, &format!("{name}: INCR during PAUSE WRITE"));
    // The held SET has not run: another client still reads the old value.
    timed(&mut admin, "GET k", &mut log);
    timed(&mut admin, "EXISTS n", &mut log);
    timed(&mut admin, "CLIENT UNPAUSE", &mut log);
    log.push(format!("held SET -> {}", show(&c.read_reply())));
    log.push(format!("held INCR -> {}", show(&d.read_reply())));
    timed(&mut c, "GET k", &mut log);

    // PAUSE ALL holds reads (and PING) of every client until it ends.
    let start = Instant::now();
    timed(
        &mut admin,
        &format!("CLIENT PAUSE {PAUSE_ALL_MS} ALL"),
        &mut log,
    );
    c.send(&encode(&["GET", "k"]));
    d.send(&encode(&["PING"]));
    assert_held(&mut c, HOLD, &format!("{name}: GET during PAUSE ALL"));
    log.push(format!("held GET -> {}", show(&c.read_reply())));
    let waited = start.elapsed();
    log.push(format!("held PING -> {}", show(&d.read_reply())));
    // The read answered once the pause ended, not before, and not long after.
    assert!(
        waited >= Duration::from_millis(PAUSE_ALL_MS - 50),
        "{name}: GET answered after {waited:?}, before the {PAUSE_ALL_MS} ms pause ended"
    );
    assert!(
        waited < Duration::from_millis(PAUSE_ALL_MS + 1000),
        "{name}: GET answered only after {waited:?} ({PAUSE_ALL_MS} ms pause)"
    );
    timed(&mut c, "GET k", &mut log);
    log
}

/// ACL SETUSER's arguments and the values of sensitive configs in CONFIG SET
/// are logged as "(redacted)", also when the command fails.
fn slowlog_redacts_sensitive_arguments(p: &mut Pair) {
    p.checks(&[
        "CONFIG SET slowlog-log-slower-than 0",
        "SLOWLOG RESET",
        "ACL SETUSER \"bad name\" +get +set",
        "CONFIG SET masterauth \"\"",
        "ACL SETUSER slowlog-user +get >secret",
        "CONFIG SET maxmemory-policy noeviction requirepass \"\"",
        "CONFIG SET masteruser x masterauth",
        "ACL DELUSER slowlog-user",
        "CONFIG SET slowlog-log-slower-than -1",
    ]);
    check_slowlog(p, "SLOWLOG GET");
    p.check("SLOWLOG RESET");
}

/// The credentials of MIGRATE AUTH/AUTH2, AUTH and HELLO AUTH show as
/// "(redacted)" in SLOWLOG and MONITOR, also when the command fails. MIGRATE
/// of a missing key answers NOKEY before connecting anywhere.
const CREDENTIAL_LINES: [&str; 8] = [
    "MIGRATE 127.0.0.1 1 key 9 5000",
    "MIGRATE 127.0.0.1 1 key 9 5000 AUTH user",
    "MIGRATE 127.0.0.1 1 key 9 5000 COPY AUTH2 user password REPLACE",
    "MIGRATE 127.0.0.1 1 \"\" 9 5000 AUTH pw KEYS a AUTH b",
    "AUTH not-real",
    "AUTH not-real not-a-password",
    "HELLO 2 AUTH not-real not-a-password",
    "HELLO 4 AUTH not-real not-a-password",
];

fn credentials_are_redacted_in_slowlog_and_monitor(p: &mut Pair) {
    p.checks(&["CONFIG SET slowlog-log-slower-than 0", "SLOWLOG RESET"]);
    p.checks(&CREDENTIAL_LINES);
    p.check("CONFIG SET slowlog-log-slower-than -1");
    check_slowlog(p, "SLOWLOG GET");
    p.check("SLOWLOG RESET");
    let mut seen = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut m, mut c) = (s.conn(), s.conn());
        assert_eq!(m.line("MONITOR"), b"+OK\r\n");
        for line in CREDENTIAL_LINES {
            c.line(line);
        }
        c.line("PING marker");
        let mut lines = Vec::new();
        loop {
            let r = m
                .try_read_reply(Duration::from_secs(5))
                .unwrap_or_else(|e| {
                    panic!("{}: MONITOR line missing ({e:?}) after {lines:?}", s.name)
                });
            let l = String::from_utf8_lossy(&r).into_owned();
            let args = l.split_once("] ").map_or(l.clone(), |(_, a)| a.to_string());
            let done = args == "\"PING\" \"marker\"\r\n";
            lines.push(args);
            if done {
                break;
            }
        }
        seen.push(lines);
    }
    if seen[0] != seen[1] {
        p.fail(format!(
            "MONITOR\n    keel:  {:?}\n    redis: {:?}",
            seen[0], seen[1]
        ));
    }
}

/// A write waiting out CLIENT PAUSE WRITE counts in INFO blocked_clients
/// (Redis's postponed clients) until the pause ends.
fn paused_clients_count_as_blocked(p: &mut Pair) {
    let blocked = |c: &mut Conn| {
        let info = Resp::parse(&c.line("INFO clients")).as_str();
        info.lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut ctl, mut w) = (s.conn(), s.conn());
        ctl.line("CLIENT PAUSE 100000 WRITE");
        w.send(b"SET {a}paused v\r\n");
        std::thread::sleep(Duration::from_millis(200));
        let during = blocked(&mut ctl);
        ctl.line("CLIENT UNPAUSE");
        let reply = reply_within(&mut w, Duration::from_secs(3));
        let after = blocked(&mut ctl);
        got.push(format!(
            "during={during} reply={} after={after}",
            show(&reply)
        ));
    }
    let (k, r) = (got[0].clone(), got[1].clone());
    p.expect_eq("blocked_clients around a pause", k.as_bytes(), r.as_bytes());
}

/// CLIENT INFO/LIST show the command being run in the caller's qbuf (Redis
/// keeps it in the query buffer until it is done); an idle client shows 0.
fn client_info_qbuf_holds_current_command(p: &mut Pair) {
    let field = |line: &str, name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or("<absent>")
            .to_string()
    };
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut a, mut idle) = (s.conn(), s.conn());
        idle.line("CLIENT SETNAME idle");
        let mut seen = Vec::new();
        for line in ["CLIENT INFO", "client info", "CLIENT LIST"] {
            let text = Resp::parse(&a.line(line)).as_str();
            let mine = text
                .lines()
                // Not by position: at 4 shards the other client's id may be
                // the lower one (ids are taken on the accepting shard).
                .find(|l| l.contains("cmd=client|") && !l.contains("name=idle"))
                .unwrap_or("");
            seen.push(format!("{line}: qbuf={}", field(mine, "qbuf=")));
            if let Some(other) = text.lines().find(|l| l.contains("name=idle")) {
                seen.push(format!("idle: qbuf={}", field(other, "qbuf=")));
            }
        }
        got.push(seen.join(", "));
    }
    let (k, r) = (got[0].clone(), got[1].clone());
    p.expect_eq("qbuf in CLIENT INFO/LIST", k.as_bytes(), r.as_bytes());
}

/// A client's query buffer (qbuf + qbuf-free in CLIENT LIST) holds a read
/// chunk after a command, and is given back once the client has been idle
/// for more than 2 s (Redis's clientsCron; keel's shard cron frees the
/// query and reply buffers of such a connection).
fn idle_client_gives_query_buffer_back(p: &mut Pair) {
    let qbuf_total = |text: &str| {
        let line = text.lines().find(|l| l.contains("name=quiet"))?;
        let num = |name: &str| -> Option<u64> {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))?
                .parse()
                .ok()
        };
        Some((num("qbuf=")? + num("qbuf-free=")?, num("idle=")?))
    };
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut ctl, mut quiet) = (s.conn(), s.conn());
        quiet.line("CLIENT SETNAME quiet");
        let list = |c: &mut Conn| qbuf_total(&Resp::parse(&c.line("CLIENT LIST")).as_str());
        let fresh = list(&mut ctl).map(|(q, _)| (8192..32768).contains(&q));
        let deadline = Instant::now() + Duration::from_secs(8);
        let released = loop {
            match list(&mut ctl) {
                Some((0, idle)) if idle >= 3 => break true,
                _ if Instant::now() > deadline => break false,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        // Used again, it reads into a fresh buffer.
        quiet.line("PING");
        let again = list(&mut ctl).map(|(q, _)| q >= 8192);
        got.push(format!(
            "after a command: {fresh:?}, given back when idle: {released}, used again: {again:?}"
        ));
    }
    let (k, r) = (got[0].clone(), got[1].clone());
    assert!(r.contains("given back when idle: true"), "stock: {r}");
    p.expect_eq("query buffer of an idle client", k.as_bytes(), r.as_bytes());
}

/// CLIENT LIST rbs/rbp follow the reply buffer: a 5000-byte reply leaves a
/// peak of at least that within the buffer's size. (A fresh client's peak
/// is stock's initial buffer size, not compared.)
fn reply_buffer_size_and_peak_are_computed(p: &mut Pair) {
    let fields = |text: &str, name: &str| -> Option<(u64, u64)> {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("name={name} ")))?;
        let num = |f: &str| -> Option<u64> {
            line.split(' ')
                .find_map(|x| x.strip_prefix(f))?
                .parse()
                .ok()
        };
        Some((num("rbs=")?, num("rbp=")?))
    };
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut ctl, mut big) = (s.conn(), s.conn());
        ctl.line(&format!("SET rbtest {}", "x".repeat(5000)));
        big.line("CLIENT SETNAME big");
        big.line("GET rbtest");
        let list = Resp::parse(&ctl.line("CLIENT LIST")).as_str();
        let b = fields(&list, "big").map(|(rbs, rbp)| rbp >= 5000 && rbs >= rbp);
        got.push(format!("big reply peak within size: {b:?}"));
    }
    assert!(got[1].ends_with("Some(true)"), "stock: {}", got[1]);
    p.expect_eq("reply buffer fields", got[0].as_bytes(), got[1].as_bytes());
}

/// Under CLIENT PAUSE WRITE a call with the wrong arity, a script declared
/// `no-writes`, EVAL_RO and a transaction of reads answer at once; a write
/// and a script without flags wait for the pause to end.
fn pause_write_lets_errors_and_read_only_scripts_through(p: &mut Pair) {
    let quick = Duration::from_millis(300);
    let mut got = Vec::new();
    for s in [&p.keel, &p.redis] {
        let (mut ctl, mut c) = (s.conn(), s.conn());
        ctl.line("SET {a}x y");
        ctl.line("CLIENT PAUSE 100000 WRITE");
        let mut seen = Vec::new();
        let mut send = |c: &mut Conn, args: &[&str], t: Duration| {
            c.send(&encode(args));
            let r = reply_within(c, t);
            seen.push(format!("{args:?} -> {}", show(&r)));
        };
        send(&mut c, &["SET", "{a}x"], quick);
        send(
            &mut c,
            &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
            quick,
        );
        send(
            &mut c,
            &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "{a}x"],
            quick,
        );
        send(&mut c, &["MULTI"], quick);
        send(&mut c, &["GET", "{a}x"], quick);
        send(&mut c, &["EXEC"], quick);
        // Held: no reply until UNPAUSE.
        send(&mut c, &["EVAL", "return 1", "0"], quick);
        ctl.line("CLIENT UNPAUSE");
        let r = reply_within(&mut c, Duration::from_secs(3));
        seen.push(format!("after unpause -> {}", show(&r)));
        got.push(seen.join("\n"));
    }
    let (k, r) = (got[0].clone(), got[1].clone());
    p.expect_eq(
        "commands under CLIENT PAUSE WRITE",
        k.as_bytes(),
        r.as_bytes(),
    );
}
