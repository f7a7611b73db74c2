//! CLIENT TRACKING: a real client-side cache (redis-py >= 5.1) against keel
//! at 2 shards, and what tracking clients receive compared with stock
//! Redis byte for byte at 1 and 4 shards.

mod common;

use std::time::Duration;

use common::{Conn, ReadErr, Server, show};

/// The next frame a connection receives, or `<none>` when it stays silent.
fn next(c: &mut Conn, wait: Duration) -> Vec<u8> {
    match c.try_read_reply(wait) {
        Ok(b) => b,
        Err(ReadErr::Timeout) => b"<none>".to_vec(),
        Err(e) => panic!("{}: connection failed: {e:?}", c.who),
    }
}

fn id_of(c: &mut Conn) -> String {
    let r = c.line("CLIENT ID");
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

/// A redirection target subscribed to `__redis__:invalidate`.
fn redirect_target(port: u16) -> (Conn, String) {
    let mut rd = Conn::connect(port);
    let id = id_of(&mut rd);
    let r = rd.line("SUBSCRIBE __redis__:invalidate");
    assert!(r.starts_with(b"*3\r\n$9\r\nsubscribe"), "{}", show(&r));
    (rd, id)
}

const SOON: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

/// Runs the scenarios on a server and returns everything the clients saw,
/// in order (client IDs left out: they differ between servers).
fn transcript(port: u16) -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = Vec::new();
    let mut w = Conn::connect(port);
    w.line("FLUSHALL");

    // Default mode, RESP2 redirection.
    let (mut rd, id) = redirect_target(port);
    let mut c = Conn::connect(port);
    t.push(c.line(&format!("CLIENT TRACKING on REDIRECT {id}")));
    t.push(w.line("MSET a 1 b 1 c 1 untouched 1"));
    t.push(c.line("GET a"));
    t.push(c.line("MGET b c"));
    t.push(c.line("CLIENT GETREDIR")[..1].to_vec());
    t.push(w.line("SET a 2"));
    t.push(next(&mut rd, SOON));
    t.push(w.line("SET untouched 2"));
    t.push(w.line("MSET b 2 c 2"));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, SOON));
    // Invalidated keys are forgotten until read again.
    t.push(w.line("SET a 3"));
    t.push(next(&mut rd, QUIET));
    t.push(c.line("CLIENT TRACKINGINFO")[..40].to_vec());
    t.push(c.line("CLIENT TRACKING off"));

    // BCAST with prefixes, and the overlap errors.
    t.push(c.line(&format!(
        "CLIENT TRACKING on BCAST REDIRECT {id} PREFIX user: PREFIX us"
    )));
    t.push(c.line(&format!(
        "CLIENT TRACKING on BCAST REDIRECT {id} PREFIX user: PREFIX obj:"
    )));
    t.push(c.line(&format!("CLIENT TRACKING on BCAST REDIRECT {id} PREFIX u")));
    t.push(c.line("CLIENT TRACKING on OPTIN"));
    t.push(w.line("SET user:1 x"));
    t.push(next(&mut rd, SOON));
    t.push(w.line("MSET user:2 a obj:1 b other c"));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, QUIET));
    let info = c.line("CLIENT TRACKINGINFO");
    let text = String::from_utf8_lossy(&info).replace(&format!(":{id}\r\n"), ":ID\r\n");
    t.push(text.into_bytes());
    t.push(c.line("CLIENT TRACKING off"));

    // OPTIN: only reads after CLIENT CACHING yes are tracked.
    t.push(c.line("CLIENT CACHING yes"));
    t.push(c.line(&format!("CLIENT TRACKING on OPTIN REDIRECT {id}")));
    t.push(c.line("CLIENT CACHING no"));
    t.push(c.line("GET k1"));
    t.push(c.line("CLIENT CACHING yes"));
    t.push(c.line("GET k2"));
    t.push(c.line("GET k3"));
    t.push(w.line("MSET k1 1 k2 1 k3 1"));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, QUIET));
    t.push(c.line("CLIENT TRACKING off"));

    // OPTOUT: reads after CLIENT CACHING no are not tracked.
    t.push(c.line(&format!("CLIENT TRACKING on OPTOUT REDIRECT {id}")));
    t.push(c.line("CLIENT CACHING no"));
    t.push(c.line("GET k4"));
    t.push(c.line("GET k5"));
    t.push(w.line("MSET k4 1 k5 1"));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, QUIET));
    t.push(c.line("CLIENT TRACKING off"));

    // RESP3 pushes and NOLOOP: its own writes are not reported.
    let mut p = Conn::connect(port);
    p.line("HELLO 3");
    t.push(p.line("CLIENT TRACKING on NOLOOP"));
    t.push(p.line("MGET n1 n2 n3"));
    t.push(p.line("SET n1 mine"));
    t.push(w.line("SET n2 theirs"));
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, QUIET));
    // Without NOLOOP its own write is reported after the reply.
    t.push(p.line("CLIENT TRACKING on"));
    t.push(p.line("GET n3"));
    t.push(p.line("SET n3 mine"));
    t.push(next(&mut p, SOON));

    // Expiry (active) invalidates.
    t.push(w.line("SET e v PX 100"));
    t.push(p.line("GET e"));
    t.push(next(&mut p, SOON));

    // FLUSHALL: a null for every tracking client, in its protocol.
    t.push(c.line(&format!("CLIENT TRACKING on REDIRECT {id}")));
    t.push(w.line("FLUSHALL"));
    let mut pushes = vec![next(&mut p, SOON), next(&mut rd, SOON)];
    pushes.sort();
    t.extend(pushes);
    t.push(next(&mut rd, QUIET));

    // The redirection target goes away: a RESP3 client is told.
    t.push(p.line("CLIENT TRACKING off"));
    t.push(p.line(&format!("CLIENT TRACKING on REDIRECT {id}")));
    t.push(p.line("GET gone"));
    drop(rd);
    std::thread::sleep(Duration::from_millis(200));
    t.push(w.line("SET gone 1"));
    let broken = next(&mut p, SOON);
    t.push(broken.split(|&b| b == b':').next().unwrap().to_vec());
    t.push(
        p.line("CLIENT TRACKINGINFO")
            .split(|&b| b == b':')
            .next()
            .unwrap()
            .to_vec(),
    );
    t
}

/// Scripts and CLIENT REPLY OFF: what the caller sees, read
/// raw (pushes and replies in the order they arrive).
fn transcript_more(port: u16) -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = Vec::new();
    let mut w = Conn::connect(port);
    w.line("FLUSHALL");
    let mut p = Conn::connect(port);
    t.push(p.line("HELLO 3")[..1].to_vec());
    t.push(p.line("CLIENT TRACKING on"));

    // A script that only writes tracks nothing; one that reads tracks
    // every key it declared (not the key it read), EVAL_RO alike.
    t.push(w.line("MSET k1{t} 1 k2{t} 1"));
    t.push(p.line("EVAL \"redis.call('set', 'k3{t}', 'bar')\" 2 k1{t} k2{t}"));
    t.push(w.line("MSET k2{t} 2 k1{t} 2"));
    t.push(next(&mut p, QUIET));
    t.push(p.line("EVAL \"redis.call('get', 'k3{t}')\" 2 k1{t} k2{t}"));
    t.push(w.line("MSET k2{t} 3 k1{t} 3"));
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, SOON));
    t.push(w.line("SET k3{t} x"));
    t.push(next(&mut p, QUIET));
    t.push(p.line("EVAL_RO \"redis.call('ping')\" 2 k1{t} k2{t}"));
    t.push(w.line("MSET k2{t} 4 k1{t} 4"));
    t.push(next(&mut p, QUIET));
    t.push(p.line("EVAL_RO \"return redis.call('get', 'k1{t}')\" 2 k1{t} k2{t}"));
    t.push(w.line("MSET k2{t} 5 k1{t} 5"));
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, SOON));

    // CLIENT REPLY OFF: invalidations still arrive; REPLY ON answers +OK.
    t.push(p.line("GET foo"));
    p.send(&common::encode(&["CLIENT", "REPLY", "OFF"]));
    t.push(next(&mut p, QUIET));
    t.push(w.line("SET foo bar"));
    t.push(next(&mut p, SOON));
    p.send(&common::encode(&["GET", "foo"]));
    t.push(next(&mut p, QUIET));
    t.push(p.line("CLIENT REPLY ON"));
    t.push(p.line("PING"));

    t
}

/// A field of INFO (all sections).
fn info_any(c: &mut Conn, field: &str) -> String {
    let info = c.val("INFO everything").as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .trim()
        .to_string()
}

/// INFO's tracking counters, as one line.
fn table_counts(c: &mut Conn) -> Vec<u8> {
    let f = info_any;
    format!(
        "keys={} items={} clients={}",
        f(c, "tracking_total_keys"),
        f(c, "tracking_total_items"),
        f(c, "tracking_clients")
    )
    .into_bytes()
}

/// The table's edges: a flush empties it even when nobody tracks any more,
/// the table limit and evictions tell a client before its next reply
/// (queued in MULTI included).
fn transcript_limits(port: u16) -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = Vec::new();
    let mut w = Conn::connect(port);
    w.line("FLUSHALL");

    // Keys read while tracking stay in the table after TRACKING off; the
    // flush drops them, so a later tracker hears nothing of them.
    let mut c = Conn::connect(port);
    t.push(c.line("CLIENT TRACKING on"));
    t.push(c.line("MGET x1 x2 x3"));
    t.push(c.line("CLIENT TRACKING off"));
    t.push(table_counts(&mut w));
    t.push(w.line("FLUSHALL"));
    t.push(table_counts(&mut w));
    let (mut rd, id) = redirect_target(port);
    t.push(c.line(&format!("CLIENT TRACKING on REDIRECT {id}")));
    t.push(c.line("GET x1"));
    t.push(w.line("MSET x1 1 x2 1"));
    t.push(next(&mut rd, SOON));
    t.push(next(&mut rd, QUIET));
    t.push(table_counts(&mut w));
    t.push(c.line("CLIENT TRACKING off"));
    t.push(w.line("FLUSHALL"));

    // Regression test for #11715: the limit applies before a queued command.
    let mut p = Conn::connect(port);
    p.line("HELLO 3");
    t.push(w.line("CONFIG SET tracking-table-max-keys 2"));
    t.push(w.line("DEBUG PAUSE-CRON 1"));
    t.push(p.line("CLIENT TRACKING on"));
    t.push(p.line("MGET 1{tag} 2{tag}"));
    t.push(p.line("MULTI"));
    t.push(w.line("CONFIG SET tracking-table-max-keys 1"));
    p.send(&common::encode(&["PING"]));
    p.send(&common::encode(&["EXEC"]));
    let pushed = next(&mut p, SOON);
    // Which of the two keys goes is random: the shape is compared.
    t.push(
        String::from_utf8_lossy(&pushed)
            .replace("2{tag}", "1{tag}")
            .into_bytes(),
    );
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, QUIET));
    t.push(w.line("DEBUG PAUSE-CRON 0"));
    t.push(w.line("CONFIG SET tracking-table-max-keys 1000000"));
    t.push(p.line("CLIENT TRACKING off"));
    t.push(w.line("FLUSHALL"));

    // A key evicted to make room for a command is told before its reply.
    let used: i64 = info_any(&mut w, "used_memory").parse().unwrap();
    t.push(w.line(&format!("CONFIG SET maxmemory {}", used + 100 * 1024)));
    t.push(w.line("CONFIG SET maxmemory-policy volatile-random"));
    t.push(p.line("CLIENT TRACKING on"));
    t.push(p.line("SETEX volatile-key 10000 x"));
    t.push(p.line("GET volatile-key"));
    t.push(p.line("SETBIT big-key 1600000 0"));
    t.push(p.line("GETBIT big-key 0"));
    t.push(next(&mut p, SOON));
    t.push(next(&mut p, QUIET));
    t.push(w.line("CONFIG SET maxmemory 0"));
    t.push(w.line("CONFIG SET maxmemory-policy noeviction"));
    t.push(p.line("CLIENT TRACKING off"));
    t
}

fn compare(shards: usize) {
    let redis = Server::redis(&[]);
    let keel = Server::keel(shards, &[]);
    let mut want = transcript(redis.port);
    let mut got = transcript(keel.port);
    want.extend(transcript_more(redis.port));
    got.extend(transcript_more(keel.port));
    want.extend(transcript_limits(redis.port));
    got.extend(transcript_limits(keel.port));
    let mut diffs = Vec::new();
    for (i, (k, r)) in got.iter().zip(&want).enumerate() {
        if k != r {
            diffs.push(format!(
                "step {i}\n    keel:  {}\n    redis: {}",
                show(k),
                show(r)
            ));
        }
    }
    assert_eq!(got.len(), want.len());
    assert!(diffs.is_empty(), "{shards} shards:\n{}", diffs.join("\n"));
}

#[test]
fn tracking_matches_stock_1_shard() {
    compare(1);
}

#[test]
fn tracking_matches_stock_4_shards() {
    compare(4);
}

#[test]
fn info_tracking_fields_are_computed() {
    let keel = Server::keel(2, &[]);
    let mut c = keel.conn();
    let field = |c: &mut Conn, name: &str| -> i64 {
        let info = String::from_utf8_lossy(&c.line("INFO everything")).into_owned();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("INFO has no {name}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(field(&mut c, "tracking_clients"), 0);
    c.line("HELLO 3");
    c.line("CLIENT TRACKING on");
    c.line("MGET x1 x2 x3 x4");
    let mut d = keel.conn();
    d.line("HELLO 3");
    d.line("CLIENT TRACKING on");
    d.line("GET x1");
    assert_eq!(field(&mut c, "tracking_clients"), 2);
    assert_eq!(field(&mut c, "tracking_total_keys"), 4);
    assert_eq!(field(&mut c, "tracking_total_items"), 5);
    let mut b = keel.conn();
    b.line("CLIENT TRACKING on BCAST PREFIX p: PREFIX q:");
    assert_eq!(field(&mut c, "tracking_total_prefixes"), 2);
    // tracking-table-max-keys: the table is cut back and clients told.
    c.line("CONFIG SET tracking-table-max-keys 1");
    c.line("GET x5");
    let mut told = 0;
    while let Ok(f) = d.try_read_reply(Duration::from_millis(500)) {
        assert!(f.starts_with(b">2\r\n$10\r\ninvalidate"), "{}", show(&f));
        told += 1;
    }
    assert_eq!(told, 1, "d cached x1, which must have left the table");
    assert!(field(&mut b, "tracking_total_keys") <= 1);
    b.line("CLIENT TRACKING off");
    assert_eq!(field(&mut b, "tracking_total_prefixes"), 0);
}

const CACHE_SCRIPT: &str = r#"
import sys, random
try:
    import redis
    from redis.cache import CacheConfig
except Exception as e:
    print("cannot import redis-py with client-side caching (pip install 'redis>=5.1'):", e)
    sys.exit(3)
# redis-py refuses its cache below server version 7.4 as a policy; keel
# reports 7.0.15, whose CLIENT TRACKING protocol the cache uses unchanged.
redis.connection.CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"
port = int(sys.argv[1])
cached = redis.Redis(port=port, protocol=3, cache_config=CacheConfig())
writer = redis.Redis(port=port)
keys = ["csc:%d" % i for i in range(200)]
for k in keys:
    writer.set(k, "v0")
def gets():
    info = writer.info("commandstats")
    return info.get("cmdstat_get", {}).get("calls", 0)
for k in keys:
    assert cached.get(k) == b"v0"
before = gets()
for _ in range(3):
    for k in keys:
        assert cached.get(k) == b"v0"
served = gets() - before
assert served == 0, "reads did not come from the client-side cache: %d GETs reached the server" % served
rnd = random.Random(7)
for i in range(2000):
    k = rnd.choice(keys)
    if rnd.random() < 0.5:
        v = ("v%d" % i).encode()
        writer.set(k, v)
        # Redis gives no order between two connections' sockets (stock too
        # can serve the old value right after another client's write); a
        # round trip on the cached connection after the write is acknowledged
        # must bring the invalidation in.
        cached.ping()
        got = cached.get(k)
        assert got == v, "stale read of %s: %r, wrote %r" % (k, got, v)
    else:
        assert cached.get(k) == writer.get(k)
writer.delete(*keys[:50])
cached.ping()
for k in keys[:50]:
    assert cached.get(k) is None, "stale read after DEL of " + k
writer.flushall()
cached.ping()
for k in keys:
    assert cached.get(k) is None, "stale read after FLUSHALL of " + k
print("ok")
"#;

#[test]
fn redis_py_client_side_cache_never_stale_2_shards() {
    let keel = Server::keel(2, &[]);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(CACHE_SCRIPT)
        .arg(keel.port.to_string())
        .output()
        .expect("python3 must be installed for this test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("ok"), "{text}");
}
