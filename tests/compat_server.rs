//! Connection and server commands, inline protocol, pipelining, RESP3, AUTH:
//! keel vs stock redis-server.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Pair, Resp, encode, show, words};

pair_tests!(
    ping_echo,
    unknown_and_arity_errors,
    inline_commands,
    pipelining,
    resp3,
    client_name_and_id,
    config_get,
    info_sections,
    no_password_auth,
    quit,
    list_node_tuning_accepted,
);

fn ping_echo(p: &mut Pair) {
    p.checks(&[
        "PING",
        "PING hello",
        "PING \"\"",
        "PING a b",
        "ping",
        "PiNg x",
        "ECHO hi",
        "ECHO \"\"",
        "ECHO \"\\x00\\r\\n\"",
        "ECHO",
        "ECHO a b",
    ]);
}

fn unknown_and_arity_errors(p: &mut Pair) {
    let long = "a".repeat(200);
    p.checks(&[
        "FOO",
        "FOO a b",
        "foo a b c d e f",
        "FOO \"with space\" \"new\\nline\"",
        &format!("FOO {long}"),
        &format!("{long} x"),
        "\"\"",
        "\"\" a",
        "GET",
        "GET a b",
        "SET a",
        "MGET",
        "DEL",
        "SELECT",
        "PING a b c",
        "CLIENT",
        "CLIENT SETNAME",
        "CLIENT FOO",
        "CLIENT GETNAME extra",
        "CONFIG",
        "CONFIG FOO",
        "CONFIG GET",
        "CONFIG SET maxmemory",
        "OBJECT",
        "DEBUG FOO-BAR",
        "COMMAND FOO",
        "CONFIG HELP x",
    ]);
    // After errors the connection still works.
    p.check("SET ok 1");
    p.check("GET ok");
    // Empty multibulk is ignored, not answered.
    p.check_raw(b"*0\r\n*1\r\n$4\r\nPING\r\n", "*0 then PING");
    p.check_raw(b"*-1\r\n*1\r\n$4\r\nPING\r\n", "*-1 then PING");
}

fn inline_commands(p: &mut Pair) {
    let cases: &[&[u8]] = &[
        b"PING\r\n",
        b"PING\n",
        b"ping hello\r\n",
        b"SET ik iv\r\n",
        b"GET ik\r\n",
        b"GET ik\n",
        b"  GET   ik  \r\n",
        b"\r\nPING\r\n",
        b"\n\nPING\r\n",
        b"SET \"a b\" \"c\\x41\\n\"\r\n",
        b"GET \"a b\"\r\n",
        b"SET 'single q' 'it\\'s'\r\n",
        b"GET 'single q'\r\n",
        b"SET e \"\"\r\n",
        b"STRLEN e\r\n",
        b"ECHO \"tab\\there\"\r\n",
        b"ECHO \"\\xzz\"\r\n",
        b"FOO bar\r\n",
        b"GET\r\n",
        b"MSET x 1 y 2\r\n",
        b"MGET x y\r\n",
    ];
    for c in cases {
        let what = format!("inline {}", show(c));
        p.check_raw(c, &what);
    }
    // Inline and multibulk mixed in one write.
    let mut mixed = b"SET mix 1\r\n".to_vec();
    mixed.extend(encode(&["INCR", "mix"]));
    mixed.extend_from_slice(b"INCR mix\r\n");
    p.k.send(&mixed);
    p.r.send(&mixed);
    for i in 0..3 {
        let (a, b) = (p.k.read_reply(), p.r.read_reply());
        p.expect_eq(&format!("mixed inline/multibulk reply {i}"), &a, &b);
    }
    // A two-line inline command split across writes.
    p.k.send(b"ECHO sp");
    p.r.send(b"ECHO sp");
    std::thread::sleep(Duration::from_millis(50));
    p.check_raw(b"lit\r\n", "inline split across two writes");
}

fn pipelining(p: &mut Pair) {
    let mut buf = Vec::new();
    let mut n = 0;
    for i in 0..1000 {
        let args = match i % 5 {
            0 => words(&format!("SET p:{} v{i}", i % 97)),
            1 => words(&format!("GET p:{}", (i * 7) % 97)),
            2 => words(&format!("INCR ctr:{}", i % 11)),
            3 => words(&format!("MGET p:{} p:{} nokey", i % 97, (i + 1) % 97)),
            _ => words(&format!("APPEND log:{} x{i}", i % 3)),
        };
        buf.extend(encode(&args));
        n += 1;
    }
    p.k.send(&buf);
    p.r.send(&buf);
    let mut kall = Vec::new();
    let mut rall = Vec::new();
    for _ in 0..n {
        rall.extend(p.r.read_reply());
        kall.extend(match p.k.try_read_reply(Duration::from_secs(10)) {
            Ok(r) => r,
            Err(e) => format!("<no reply: {e:?}>").into_bytes(),
        });
    }
    if kall != rall {
        let at = kall
            .iter()
            .zip(rall.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(kall.len().min(rall.len()));
        let from = at.saturating_sub(40);
        p.fail(format!(
            "1000 pipelined commands in one write: replies differ from byte {at}\n    keel:  {}\n    redis: {}",
            show(&kall[from..kall.len().min(at + 120)]),
            show(&rall[from..rall.len().min(at + 120)])
        ));
    }
    p.check("MGET ctr:0 ctr:5 ctr:10 log:0 log:1 log:2");
    // Replies come back in order even when a pipeline spans every shard and
    // is sent one byte at a time.
    let mut slow = Vec::new();
    for i in 0..20 {
        slow.extend(encode(&["SET", &format!("slow:{i}"), &i.to_string()]));
        slow.extend(encode(&["GET", &format!("slow:{}", 19 - i)]));
    }
    for chunk in slow.chunks(7) {
        p.k.send(chunk);
        p.r.send(chunk);
    }
    for i in 0..40 {
        let (a, b) = (p.k.read_reply(), p.r.read_reply());
        p.expect_eq(&format!("byte-dribbled pipeline reply {i}"), &a, &b);
    }
}

fn resp3(p: &mut Pair) {
    // HELLO's reply carries ids and versions: compare its shape.
    let (k, r) = p.both("HELLO 3");
    let shape = |raw: &[u8]| -> Vec<(String, String)> {
        match Resp::parse(raw) {
            Resp::Map(kv) => kv
                .into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str().as_str(), &v) {
                        ("proto" | "mode" | "role" | "server", _) => format!("{v:?}"),
                        (_, Resp::Int(_)) => "<int>".into(),
                        (_, Resp::Bulk(_)) => "<bulk>".into(),
                        (_, Resp::Array(a)) => format!("<array of {}>", a.len()),
                        (_, other) => format!("{other:?}"),
                    };
                    (k.as_str(), v)
                })
                .collect(),
            other => vec![("not a map".into(), format!("{other:?}"))],
        }
    };
    let (ks, rs) = (shape(&k), shape(&r));
    if ks != rs {
        p.fail(format!(
            "HELLO 3 reply shape\n    keel:  {ks:?}\n    redis: {rs:?}\n    raw keel: {}",
            show(&k)
        ));
    }
    p.checks(&[
        "PING",
        "PING x",
        "GET nokey",
        "SET a 1",
        "GET a",
        "MGET a nokey",
        "EXISTS a nokey",
        "TTL a",
        "INCRBYFLOAT f 1.5",
        "CLIENT GETNAME",
        "CONFIG GET maxmemory",
        "CONFIG GET nonexistent-param",
        "LCS a nokey IDX",
        "SET a 2 GET",
        "SET b 1 NX GET",
        "GETEX nokey",
        "GETDEL nokey",
        "OBJECT ENCODING nokey",
        "FOO",
        "GET",
        "HELLO 4",
        "HELLO 0",
        "HELLO abc",
        "HELLO 3 FOO",
        "HELLO 3 SETNAME",
        "HELLO 3 AUTH default",
    ]);
    p.check_sorted("KEYS *");
    let (k, r) = p.both("HELLO 3 SETNAME r3name");
    if shape(&k) != shape(&r) {
        p.fail(format!(
            "HELLO 3 SETNAME shape\n    keel:  {}\n    redis: {}",
            show(&k),
            show(&r)
        ));
    }
    p.check("CLIENT GETNAME");
    let (k, r) = p.both("HELLO 2");
    let flat = |raw: &[u8]| match Resp::parse(raw) {
        Resp::Array(v) => v.len(),
        _ => 0,
    };
    if flat(&k) != flat(&r) || flat(&r) != 14 {
        p.fail(format!(
            "HELLO 2 reply\n    keel:  {}\n    redis: {}",
            show(&k),
            show(&r)
        ));
    }
    p.checks(&[
        "GET nokey",
        "MGET a nokey",
        "CONFIG GET maxmemory",
        "INCRBYFLOAT f 1",
    ]);
    let (k, r) = p.both("HELLO");
    if shape_kind(&k) != shape_kind(&r) {
        p.fail(format!(
            "HELLO (no version)\n    keel:  {}\n    redis: {}",
            show(&k),
            show(&r)
        ));
    }
}

fn shape_kind(raw: &[u8]) -> u8 {
    raw.first().copied().unwrap_or(0)
}

fn client_name_and_id(p: &mut Pair) {
    p.checks(&[
        "CLIENT GETNAME",
        "CLIENT SETNAME foo",
        "CLIENT GETNAME",
        "CLIENT SETNAME \"a b\"",
        "CLIENT SETNAME \"a\\nb\"",
        "CLIENT SETNAME \"\\x01\"",
        "CLIENT SETNAME ok-name_1:2",
        "CLIENT GETNAME",
        "CLIENT SETNAME \"\"",
        "CLIENT GETNAME",
        "CLIENT SETNAME a b",
        "client setname Mixed",
        "CLIENT GETNAME",
    ]);
    let ids = |c: &mut common::Conn| -> (Resp, Resp) { (c.val("CLIENT ID"), c.val("CLIENT ID")) };
    let (a, b) = ids(&mut p.k);
    let (k2, _) = p.conns();
    let mut k2 = k2;
    let c = k2.val("CLIENT ID");
    match (&a, &b, &c) {
        (Resp::Int(x), Resp::Int(y), Resp::Int(z)) if x == y && z > x => {}
        _ => p.fail(format!(
            "CLIENT ID: want one stable integer per connection, larger for a later one; got {a:?} {b:?}, then {c:?}"
        )),
    }
    // CLIENT LIST / INFO describe this connection.
    let Resp::Int(id) = a else { return };
    let list = p.k.val("CLIENT LIST");
    let info = p.k.val("CLIENT INFO");
    for (what, v) in [("CLIENT LIST", &list), ("CLIENT INFO", &info)] {
        let text = match v {
            Resp::Bulk(b) | Resp::Other(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        };
        let mine = text.lines().find(|l| l.starts_with(&format!("id={id} ")));
        match mine {
            Some(l)
                if l.contains(" name=Mixed ")
                    && l.contains(" db=0 ")
                    && l.contains(" cmd=client|") => {}
            _ => p.fail(format!(
                "{what}: no line `id={id} ... name=Mixed ... db=0 ... cmd=client|...`: {text:?}"
            )),
        }
    }
    let lines = |v: &Resp| match v {
        Resp::Bulk(b) => String::from_utf8_lossy(b).lines().count(),
        _ => 0,
    };
    if lines(&list) < 2 {
        p.fail(format!(
            "CLIENT LIST should list both connections: {list:?}"
        ));
    }
    p.check("CLIENT LIST FOO");
    p.check("CLIENT LIST TYPE foo");
    p.check("CLIENT NO-EVICT maybe");
}

fn config_get(p: &mut Pair) {
    p.checks(&[
        "CONFIG GET maxmemory",
        "CONFIG GET maxmemory-policy",
        "CONFIG GET databases",
        "CONFIG GET timeout",
        "CONFIG GET save",
        "CONFIG GET appendonly",
        "CONFIG GET hz",
        "CONFIG GET proto-max-bulk-len",
        "CONFIG GET requirepass",
        "CONFIG GET MAXMEMORY",
        "CONFIG GET slave-read-only",
        "CONFIG GET nonexistent-param",
        "CONFIG SET maxmemory 10mb",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 0",
        "CONFIG SET hz 20",
        "CONFIG GET hz",
        "CONFIG SET maxmemory-policy allkeys-lru",
        "CONFIG GET maxmemory-policy",
        "CONFIG SET maxmemory-policy bogus",
        "CONFIG SET nonexistent-param 1",
        "CONFIG SET databases 20",
        "CONFIG SET hz abc",
    ]);
    // Multi-name and glob replies: compare as sets of (name, value) pairs.
    for line in [
        "CONFIG GET maxmemory timeout",
        "CONFIG GET maxmemory*",
        "CONFIG GET *max-*-entries*",
        "CONFIG GET appendonly save databases",
    ] {
        let (k, r) = p.both(line);
        let (kp, rp) = (pairs(&k), pairs(&r));
        if kp != rp {
            p.fail(format!(
                "{line}   (as sorted pairs)\n    keel:  {kp:?}\n    redis: {rp:?}"
            ));
        }
    }
    let (k, _) = p.both("CONFIG GET port");
    let want = format!("port={}", p.keel.port);
    if pairs(&k) != vec![want.clone()] {
        p.fail(format!(
            "CONFIG GET port on keel: want {want}, got {}",
            show(&k)
        ));
    }
}

fn pairs(raw: &[u8]) -> Vec<String> {
    let v = Resp::parse(raw);
    let items: Vec<Resp> = match v {
        Resp::Array(a) => a,
        Resp::Map(m) => m.into_iter().flat_map(|(a, b)| [a, b]).collect(),
        other => return vec![format!("not an array: {other:?}")],
    };
    let mut out: Vec<String> = items
        .chunks(2)
        .map(|c| {
            let val = c.get(1).map(|v| v.as_str()).unwrap_or_default();
            format!("{}={}", c[0].as_str(), val)
        })
        .collect();
    out.sort();
    out
}

fn info_sections(p: &mut Pair) {
    p.check("SET a 1");
    p.check("SELECT 3");
    p.check("SET b 1 EX 1000");
    p.check("SELECT 0");
    let sections = |raw: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(Resp::parse(raw).as_bytes()).into_owned();
        text.lines()
            .filter(|l| l.starts_with("# "))
            .map(|l| l.trim().to_string())
            .collect()
    };
    for line in [
        "INFO",
        "INFO default",
        "INFO server",
        "INFO keyspace",
        "INFO server clients",
        "INFO all",
        "INFO everything",
    ] {
        let (k, r) = p.both(line);
        let (mut ks, mut rs) = (sections(&k), sections(&r));
        if line.starts_with("INFO all") || line.starts_with("INFO everything") {
            // Module sections and latencystats are optional extras.
            ks.retain(|s| s != "# Latencystats");
            rs.retain(|s| s != "# Latencystats");
        }
        if ks != rs {
            p.fail(format!(
                "{line}: section headers\n    keel:  {ks:?}\n    redis: {rs:?}"
            ));
        }
    }
    let (k, _) = p.both("INFO");
    let text = String::from_utf8_lossy(Resp::parse(&k).as_bytes()).into_owned();
    for field in [
        "redis_version:",
        "redis_mode:standalone",
        "process_id:",
        "run_id:",
        &format!("tcp_port:{}", p.keel.port),
        "uptime_in_seconds:",
        "connected_clients:",
        "used_memory:",
        "used_memory_human:",
        "rdb_changes_since_last_save:",
        "aof_enabled:0",
        "total_connections_received:",
        "total_commands_processed:",
        "instantaneous_ops_per_sec:",
        "keyspace_hits:",
        "keyspace_misses:",
        "role:master",
        "connected_slaves:0",
        "master_replid:",
        "master_repl_offset:",
        "used_cpu_sys:",
        "cluster_enabled:0",
        "db0:keys=1,expires=0,avg_ttl=0",
    ] {
        if !text.contains(field) {
            p.fail(format!("INFO lacks `{field}`"));
        }
    }
    if !text.contains("\r\n") {
        p.fail("INFO lines must end with \\r\\n".into());
    }
    // db3's avg_ttl depends on timing: compare keys= and expires= only.
    let (k, r) = p.both("INFO keyspace");
    let ks = String::from_utf8_lossy(Resp::parse(&k).as_bytes()).into_owned();
    let rs = String::from_utf8_lossy(Resp::parse(&r).as_bytes()).into_owned();
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split(",avg_ttl=").next().unwrap().to_string())
            .collect()
    };
    if strip(&ks) != strip(&rs) {
        p.fail(format!(
            "INFO keyspace\n    keel:  {ks:?}\n    redis: {rs:?}"
        ));
    }
    p.check("INFO nosuchsection");
}

fn no_password_auth(p: &mut Pair) {
    p.checks(&[
        "AUTH foo",
        "AUTH default foo",
        "AUTH default \"\"",
        "AUTH a b c",
        "AUTH",
        "PING",
    ]);
}

fn quit(p: &mut Pair) {
    p.check("SET q 1");
    let (mut k2, mut r2) = p.conns();
    let mut bad = Vec::new();
    for (c, who) in [(&mut p.k, "keel"), (&mut p.r, "redis")] {
        c.send(&encode(&["QUIT"]));
        let reply = c.read_reply();
        let (rest, closed) = c.read_until_close(Duration::from_secs(3));
        if reply != b"+OK\r\n" || !rest.is_empty() || !closed {
            bad.push(format!(
                "{who}: QUIT should reply +OK and close: reply {}, then {}, closed={closed}",
                show(&reply),
                show(&rest)
            ));
        }
    }
    // Commands pipelined after QUIT are not executed.
    for (c, who) in [(&mut k2, "keel"), (&mut r2, "redis")] {
        let mut req = encode(&["QUIT"]);
        req.extend(encode(&["SET", "afterquit", "1"]));
        c.send(&req);
        let (out, closed) = c.read_until_close(Duration::from_secs(3));
        if out != b"+OK\r\n" || !closed {
            bad.push(format!(
                "{who}: QUIT then SET in one write: got {}, closed={closed}",
                show(&out)
            ));
        }
    }
    for m in bad {
        p.fail(m);
    }
    let (mut k3, mut r3) = p.conns();
    let (a, b) = (k3.line("MGET q afterquit"), r3.line("MGET q afterquit"));
    p.expect_eq("new connection after QUIT: MGET q afterquit", &a, &b);
}

// AUTH with --requirepass on both servers.
mod auth {
    use super::common::{Pair, Resp, show};

    fn scenario(shards: usize) {
        let mut p = Pair::with_args(
            shards,
            &["--requirepass", "s3cret"],
            &["--requirepass", "s3cret"],
        );
        p.checks(&[
            "PING",
            "GET a",
            "SET a 1",
            "SELECT 1",
            "CLIENT SETNAME x",
            "HELLO 3",
            "HELLO 2",
            "HELLO 3 AUTH default wrong",
            "AUTH wrong",
            "AUTH default wrong",
            "AUTH nouser s3cret",
            "AUTH a b c",
            "PING",
            "AUTH s3cret",
            "PING",
            "SET a 1",
            "GET a",
            "AUTH default s3cret",
            "AUTH wrong",
            "GET a",
            "CONFIG GET requirepass",
        ]);
        // A fresh connection starts unauthenticated again.
        let (mut k, mut r) = p.conns();
        for line in ["GET a", "AUTH default s3cret", "GET a"] {
            let (a, b) = (k.line(line), r.line(line));
            p.expect_eq(&format!("second connection: {line}"), &a, &b);
        }
        // HELLO with AUTH authenticates and switches protocol at once.
        let (mut k, mut r) = p.conns();
        let (a, b) = (
            k.line("HELLO 3 AUTH default s3cret"),
            r.line("HELLO 3 AUTH default s3cret"),
        );
        let is_map = |x: &[u8]| matches!(Resp::parse(x), Resp::Map(_));
        if !(is_map(&a) && is_map(&b)) {
            p.fail(format!(
                "HELLO 3 AUTH default s3cret\n    keel:  {}\n    redis: {}",
                show(&a),
                show(&b)
            ));
        }
        for line in ["GET a", "GET nokey"] {
            let (a, b) = (k.line(line), r.line(line));
            p.expect_eq(&format!("after HELLO 3 AUTH: {line}"), &a, &b);
        }
        // QUIT needs no authentication.
        let (mut k, mut r) = p.conns();
        let (a, b) = (k.cmd(&["QUIT"]), r.cmd(&["QUIT"]));
        p.expect_eq("unauthenticated QUIT", &a, &b);
        // Unauthenticated clients may not send big multibulk headers.
        let (mut k, mut r) = p.conns();
        k.send(b"*20\r\n");
        r.send(b"*20\r\n");
        let (a, b) = (
            k.read_until_close(std::time::Duration::from_secs(3)),
            r.read_until_close(std::time::Duration::from_secs(3)),
        );
        if a != b {
            p.fail(format!(
                "unauthenticated *20 header\n    keel:  {} closed={}\n    redis: {} closed={}",
                show(&a.0),
                a.1,
                show(&b.0),
                b.1
            ));
        }
        p.finish();
    }

    #[test]
    fn shards_1() {
        scenario(1);
    }

    #[test]
    fn shards_4() {
        scenario(4);
    }
}

/// Quicklist tuning that only changes memory figures in Redis: CONFIG
/// list-compress-depth and DEBUG QUICKLIST-PACKED-THRESHOLD are accepted
/// with stock's bounds and errors, and lists behave the same under them.
fn list_node_tuning_accepted(p: &mut Pair) {
    p.checks(&[
        "CONFIG SET list-compress-depth 2",
        "CONFIG GET list-compress-depth",
        "CONFIG SET list-compress-depth -1",
        "CONFIG SET list-compress-depth abc",
        "CONFIG SET list-compress-depth 2147483648",
        "CONFIG GET list-compress-depth",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 1b",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 100",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 5gb",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 4294967296",
        "DEBUG QUICKLIST-PACKED-THRESHOLD abc",
        "DEBUG QUICKLIST-PACKED-THRESHOLD -1",
        "DEBUG QUICKLIST-PACKED-THRESHOLD",
        "DEBUG QUICKLIST-PACKED-THRESHOLD 1b",
    ]);
    let big = "x".repeat(500);
    let lines = [
        format!("RPUSH l a {big} b {big}x c"),
        "LINDEX l 1".to_string(),
        format!("LINSERT l BEFORE c {big}y"),
        "LRANGE l 0 -1".to_string(),
        format!("LREM l 0 {big}"),
        format!("LPOS l {big}x"),
        "LSET l 0 z".to_string(),
        "LTRIM l 1 -1".to_string(),
        "LRANGE l 0 -1".to_string(),
    ];
    for l in &lines {
        p.check(l);
    }
    p.checks(&[
        "DEBUG QUICKLIST-PACKED-THRESHOLD 0",
        "CONFIG SET list-compress-depth 0",
    ]);
}
