//! RDB fixtures written by stock Redis 7.0.15 / 7.4.1: load them, compare
//! with their .expected.json, round-trip them, and (when redis-server is
//! installed) check that keel-written files load in stock Redis 7.0.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;

use keel::rdb::{self, LoadOpts, SaveAux, SaveOpts};
use keel::storage::{Db, Entry, Value, digest};
use serde_json::{Value as J, json};

/// Copies of shared/fixtures/rdb, kept in the repository so the test runs anywhere.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rdb");
const FILES: [&str; 2] = ["redis-7.0.15-all-types", "redis-7.4.1-all-types"];

/// The fixture's path; a missing fixture fails the test (never skips).
fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var("KEEL_RDB_FIXTURES").unwrap_or_else(|_| FIXTURES.into());
    let p = Path::new(&dir).join(format!("{name}.rdb"));
    assert!(p.exists(), "missing RDB fixture {}", p.display());
    p
}

fn load_bytes(data: &[u8]) -> (Vec<Db>, rdb::LoadInfo) {
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    let mut r = data;
    let info = rdb::load(
        &mut r,
        &LoadOpts::default(),
        |db, k, e| {
            assert!(dbs[db].dict.get(&k).is_none(), "duplicate key");
            dbs[db].insert_entry(&k, e)
        },
        |_, _| {},
    )
    .expect("load");
    assert!(r.is_empty(), "load must consume exactly the file");
    (dbs, info)
}

fn s(b: &[u8]) -> J {
    J::String(String::from_utf8_lossy(b).into_owned())
}

fn score(f: f64) -> J {
    if f.is_infinite() {
        J::String(if f > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        json!(f)
    }
}

/// An entry in the fixture's JSON shape.
fn to_json(e: &Entry, expire_at: u64) -> J {
    let (t, v) = match &e.value {
        Value::Str(b) => ("string", s(b)),
        Value::List(l) => ("list", J::Array(l.items.iter().map(|x| s(x)).collect())),
        Value::Set(set) => {
            let mut m: Vec<String> = set
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect();
            m.sort();
            ("set", json!(m))
        }
        Value::Hash(h) => (
            "hash",
            J::Object(
                h.iter()
                    .map(|(f, v)| (String::from_utf8_lossy(f).into_owned(), s(v)))
                    .collect(),
            ),
        ),
        Value::ZSet(z) => {
            let v: Vec<(&[u8], f64)> = z.iter().collect();
            (
                "zset",
                J::Array(
                    v.into_iter()
                        .map(|(m, f)| json!([s(m), score(f)]))
                        .collect(),
                ),
            )
        }
        Value::Stream(st) => (
            "stream",
            J::Array(
                st.entries
                    .iter()
                    .map(|(id, fields)| {
                        let obj: serde_json::Map<String, J> = fields
                            .iter()
                            .map(|(f, v)| (String::from_utf8_lossy(f).into_owned(), s(v)))
                            .collect();
                        json!([id.to_string(), obj])
                    })
                    .collect(),
            ),
        ),
    };
    let exp = if expire_at == 0 {
        J::Null
    } else {
        json!(expire_at)
    };
    json!({"type": t, "value": v, "pexpireat": exp})
}

fn normalize_expected(j: &mut J) {
    // Sets compare sorted by bytes; the JSON is sorted by Python's str order.
    if let J::Object(dbs) = j {
        for keys in dbs.values_mut() {
            if let J::Object(keys) = keys {
                for e in keys.values_mut() {
                    if e["type"] == "set"
                        && let J::Array(a) = &mut e["value"]
                    {
                        a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
                    }
                }
            }
        }
    }
}

fn expected(name: &str) -> J {
    let p = Path::new(FIXTURES).join(format!("{name}.expected.json"));
    let text = std::fs::read_to_string(p).unwrap();
    // Python writes non-standard Infinity tokens for inf scores.
    let text = text
        .replace("-Infinity", "\"-inf\"")
        .replace("Infinity", "\"inf\"");
    let mut j: J = serde_json::from_str(&text).unwrap();
    normalize_expected(&mut j);
    j
}

/// JSON equality, numbers within a few ulps: serde_json's default float
/// parser is not exact, so the expected file's scores can be off by one ulp.
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn dataset_json(dbs: &[Db]) -> J {
    let mut out = serde_json::Map::new();
    for (i, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let keys: BTreeMap<String, J> = db
            .dict
            .iter_with_expire()
            .map(|(k, e, at)| (String::from_utf8_lossy(k).into_owned(), to_json(e, at)))
            .collect();
        out.insert(i.to_string(), json!(keys));
    }
    J::Object(out)
}

fn dataset_digest(dbs: &[Db]) -> String {
    let mut f = [0u8; 20];
    for (i, db) in dbs.iter().enumerate() {
        if !db.is_empty() {
            digest::add_db(&mut f, i, &digest::db_keys_xor(db));
        }
    }
    digest::hex(&f)
}

fn save(dbs: &[Db]) -> Vec<u8> {
    rdb::save_to_vec(
        dbs.iter().enumerate(),
        &SaveAux::default(),
        SaveOpts::default(),
    )
}

#[test]
fn fixtures_load_as_expected() {
    let mut ran = 0;
    for name in FILES {
        let p = fixture(name);
        let data = std::fs::read(p).unwrap();
        let (dbs, info) = load_bytes(&data);
        assert_eq!(info.keys_loaded, 654, "{name}");
        assert_eq!(info.functions.len(), 1, "{name}");
        assert!(info.functions[0].starts_with(b"#!lua name=fixlib"));
        assert!(info.redis_ver.is_some());
        let got = dataset_json(&dbs);
        let want = expected(name);
        for (db, keys) in want.as_object().unwrap() {
            for (k, e) in keys.as_object().unwrap() {
                assert!(
                    same(&got[db][k], e),
                    "{name} db {db} key {k}: {} vs {e}",
                    got[db][k]
                );
            }
            assert_eq!(
                got[db].as_object().unwrap().len(),
                keys.as_object().unwrap().len(),
                "{name} db {db} key count"
            );
        }
        assert_eq!(
            got.as_object().unwrap().len(),
            want.as_object().unwrap().len()
        );
        ran += 1;
    }
    assert_eq!(ran, FILES.len(), "fixtures checked");
}

#[test]
fn fixtures_round_trip() {
    let mut ran = 0;
    for name in FILES {
        let p = fixture(name);
        let data = std::fs::read(p).unwrap();
        let (dbs, _) = load_bytes(&data);
        ran += 1;
        for compression in [true, false] {
            let out = rdb::save_to_vec(
                dbs.iter().enumerate(),
                &SaveAux::default(),
                SaveOpts {
                    compression,
                    ..Default::default()
                },
            );
            let (again, info) = load_bytes(&out);
            assert_eq!(info.version, 10);
            for (a, b) in dbs.iter().zip(&again) {
                assert_eq!(a.dict.len(), b.dict.len());
                for (k, e) in &a.dict {
                    let e2 = b.dict.get(k).unwrap();
                    assert_eq!(
                        e.value,
                        e2.value,
                        "{name} key {}",
                        String::from_utf8_lossy(k)
                    );
                    assert_eq!(a.expire_of(k), b.expire_of(k));
                }
            }
            assert_eq!(dataset_digest(&dbs), dataset_digest(&again));
        }
    }
    assert_eq!(ran, FILES.len(), "fixtures round-tripped");
}

// ------------------------------------------------------------------ live

struct Server {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("keel-rdb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts stock redis-server (from PATH, required) on a free port, loading
/// `rdb` bytes (None = empty).
fn start_redis(rdb_bytes: Option<&[u8]>) -> Server {
    common::require_tool("redis-server");
    let port = common::free_port();
    let dir = tmpdir(&format!("srv{port}"));
    if let Some(b) = rdb_bytes {
        std::fs::write(dir.join("dump.rdb"), b).unwrap();
    }
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .arg("--dir")
        .arg(&dir)
        .args(["--dbfilename", "dump.rdb", "--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let srv = Server {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..200 {
        if let Ok(mut c) = conn(port)
            && redis::cmd("PING").query::<String>(&mut c).is_ok()
        {
            // Wait for the load to finish.
            let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
            if info.contains("loading:0") {
                return srv;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server on {port} did not start (rdb rejected?)");
}

fn conn(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()
}

fn check_rdb(bytes: &[u8], tag: &str) {
    let p = tmpdir(tag).join("check.rdb");
    std::fs::write(&p, bytes).unwrap();
    common::require_tool("redis-check-rdb");
    let out = Command::new("redis-check-rdb").arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb: {text}"
    );
}

#[test]
fn stock_redis_loads_keel_files() {
    let mut ran = 0;
    for (i, name) in FILES.iter().enumerate() {
        let p = fixture(name);
        let data = std::fs::read(p).unwrap();
        let (dbs, _) = load_bytes(&data);
        let ours = save(&dbs);
        check_rdb(&ours, &format!("check{i}"));
        let srv = start_redis(Some(&ours));
        let mut c = conn(srv.port).unwrap();
        let d: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
        assert_eq!(
            d,
            dataset_digest(&dbs),
            "{name}: digest of keel's file in redis"
        );
        if name.contains("7.0.15") {
            // The original file in stock Redis gives the same digest.
            let orig = start_redis(Some(&data));
            let mut c2 = conn(orig.port).unwrap();
            let d2: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c2).unwrap();
            assert_eq!(d, d2, "{name}: digest of the original");
            ran += 1;
        }
        ran += 1;
    }
    // Both keel-written files, and the 7.0.15 original, were loaded in stock.
    assert_eq!(ran, FILES.len() + 1, "files loaded in stock redis-server");
}

#[test]
fn dump_restore_with_stock_redis() {
    let srv = start_redis(None);
    let mut c = conn(srv.port).unwrap();
    let setup: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["SET", "n", "12345"],
        &["SET", "long", &"abc".repeat(100)],
        &["RPUSH", "l", "a", "b", "1", "-5", "300", "70000"],
        &["SADD", "si", "1", "2", "3", "-100000"],
        &["SADD", "ss", "a", "b", "c"],
        &["HSET", "h", "f1", "v1", "f2", "2"],
        &["ZADD", "z", "1", "a", "2.5", "b", "-inf", "c", "1e300", "d"],
        &["XADD", "x", "1-1", "f", "v", "g", "w"],
        &["XADD", "x", "2-0", "f", "v2", "g", "w2"],
        &["XADD", "x", "3-5", "other", "1"],
    ];
    for cmd in setup {
        let mut r = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            r.arg(*a);
        }
        r.query::<redis::Value>(&mut c).unwrap();
    }
    // Big hash and zset (hashtable / skiplist encodings).
    for i in 0..300 {
        redis::cmd("HSET")
            .arg("hb")
            .arg(format!("f{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
        redis::cmd("ZADD")
            .arg("zb")
            .arg(i as f64 / 3.0)
            .arg(format!("m{i}"))
            .query::<()>(&mut c)
            .unwrap();
        redis::cmd("RPUSH")
            .arg("lb")
            .arg("x".repeat(i))
            .query::<()>(&mut c)
            .unwrap();
    }
    let lim = keel::rdb::Limits::default();
    for key in [
        "s", "n", "long", "l", "si", "ss", "h", "z", "x", "hb", "zb", "lb",
    ] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        let v = rdb::restore_payload(&payload, &lim).unwrap().unwrap();
        let entry = Entry::new(v, 0);
        let want: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(key)
            .query(&mut c)
            .unwrap();
        let want = &want[0];
        assert_eq!(
            &digest::hex(&digest::value_digest(Some(&entry))),
            want,
            "{key}"
        );
        // And back: keel's DUMP restores in stock Redis to the same value.
        let ours = rdb::dump_payload(&entry.value, &lim, true);
        let copy = format!("{key}:copy");
        redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(ours)
            .query::<()>(&mut c)
            .unwrap();
        let got: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(&copy)
            .query(&mut c)
            .unwrap();
        assert_eq!(&got[0], want, "{key} restored in redis");
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut c)
            .unwrap();
        let enc2: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&copy)
            .query(&mut c)
            .unwrap();
        assert_eq!(enc, enc2, "{key} encoding");
    }
}
