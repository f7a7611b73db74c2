//! Loader/writer tests on hand-built and generated files: every opcode and
//! legacy encoding, expiry options, and corrupt input (never a panic).

use super::packed::LpWriter;
use super::*;
use crate::storage::hash::{Hash, HashLimits};
use crate::storage::list::List;
use crate::storage::set::Set;
use crate::storage::zset::ZSet;
use crate::storage::{Db, Record, Str, Value};

fn entry(value: Value, expire_at: u64) -> Record {
    Record {
        freq: crate::storage::evict::LFU_INIT_VAL,
        value,
        expire_at,
        lru: 0,
        raw: false,
    }
}

/// A small DB with every type in small and big encodings.
fn sample() -> Vec<Db> {
    let mut dbs: Vec<Db> = (0..3).map(|_| Db::default()).collect();
    let d = &mut dbs[0];
    let far = 4_102_444_800_000;
    d.insert_entry(b"s", entry(Value::Str(Str::from(b"hello".to_vec())), 0));
    d.insert_entry(b"i", entry(Value::Str(Str::from(b"-123".to_vec())), far));
    d.insert_entry(b"lz", entry(Value::Str(Str::from(b"abc".repeat(20))), 0));
    d.insert_entry(
        b"l",
        entry(
            Value::List(Box::new(List {
                items: ["a", "1", "-5", "70000", &"x".repeat(300)]
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect(),
            })),
            0,
        ),
    );
    d.insert_entry(
        b"si",
        entry(Value::Set(Set::from_members(["3", "1", "-2"], 512)), 0),
    );
    d.insert_entry(
        b"ss",
        entry(Value::Set(Set::from_members(["a", "b"], 512)), 0),
    );
    let lim = HashLimits {
        max_entries: 512,
        max_value: 64,
    };
    d.insert_entry(
        b"h",
        entry(
            Value::Hash(Hash::from_pairs([("f", "1"), ("g", "v")], lim)),
            0,
        ),
    );
    d.insert_entry(
        b"hb",
        entry(
            Value::Hash(Hash::from_pairs([("f", "v".repeat(100))], lim)),
            far,
        ),
    );
    let z = ZSet::from_sorted(vec![(b"a".to_vec(), -1.5), (b"b".to_vec(), 2.0)], true);
    d.insert_entry(b"z", entry(Value::ZSet(z), 0));
    let z = ZSet::from_sorted(
        vec![(b"a".to_vec(), 0.1), (b"b".to_vec(), f64::INFINITY)],
        false,
    );
    d.insert_entry(b"zb", entry(Value::ZSet(z), 0));
    let mut st = crate::storage::stream::Stream::default();
    use crate::storage::stream::StreamId;
    st.append(
        StreamId::new(1, 1),
        vec![(b"f".to_vec(), b"v".to_vec())],
        4096,
        100,
    );
    st.append(
        StreamId::new(2, 0),
        vec![
            (b"f".to_vec(), b"w".to_vec()),
            (b"g".to_vec(), b"1".to_vec()),
        ],
        4096,
        100,
    );
    d.insert_entry(b"x", entry(Value::Stream(Box::new(st)), 0));
    dbs[2].insert_entry(b"other-db", entry(Value::Str(Str::from(b"2".to_vec())), 0));
    dbs
}

fn save_sample(opts: SaveOpts) -> Vec<u8> {
    let aux = SaveAux {
        repl_id: Some("a".repeat(40)),
        repl_offset: 1234,
        repl_stream_db: 2,
        lua: vec![b"return 1".to_vec()],
        functions: vec![
            b"#!lua name=lib\nredis.register_function('f', function() return 1 end)".to_vec(),
        ],
        ..Default::default()
    };
    save_to_vec(sample().iter().enumerate(), &aux, opts)
}

type Loaded = Vec<(usize, Vec<u8>, Record)>;

fn load_all(data: &[u8], opts: &LoadOpts) -> Result<(Loaded, LoadInfo), RdbError> {
    let mut keys = Vec::new();
    let mut r = data;
    let info = load(
        &mut r,
        opts,
        |db, k, e| keys.push((db, k.to_vec(), e)),
        |_, _| {},
    )?;
    Ok((keys, info))
}

#[test]
fn round_trip_and_aux() {
    for compression in [true, false] {
        for checksum in [true, false] {
            let data = save_sample(SaveOpts {
                compression,
                checksum,
                ..Default::default()
            });
            assert_eq!(&data[..9], b"REDIS0010");
            if !checksum {
                assert_eq!(&data[data.len() - 8..], &[0; 8]);
            }
            let mut aux = Vec::new();
            let mut keys = Vec::new();
            let mut r = &data[..];
            let info = load(
                &mut r,
                &LoadOpts::default(),
                |db, k, e| keys.push((db, k, e)),
                |k, v| aux.push((k.to_vec(), v.to_vec())),
            )
            .unwrap();
            assert!(r.is_empty());
            assert_eq!(info.repl_id.as_deref(), Some(&*"a".repeat(40)));
            assert_eq!(info.repl_offset, Some(1234));
            assert_eq!(info.repl_stream_db, Some(2));
            assert_eq!(info.redis_ver.as_deref(), Some("7.0.15"));
            assert_eq!(info.redis_bits, Some(64));
            assert_eq!(info.aof_base, Some(false));
            assert_eq!(info.lua, vec![b"return 1".to_vec()]);
            assert_eq!(info.functions.len(), 1);
            assert!(aux.iter().any(|(k, _)| k == b"ctime"));
            let src = sample();
            assert_eq!(keys.len(), 12);
            for (db, k, e) in keys {
                let orig = src[db].dict.get(&k).unwrap();
                assert_eq!(e.value, orig.value, "{}", String::from_utf8_lossy(&k));
                assert_eq!(e.expire_at, src[db].expire_of(&k));
            }
        }
    }
}

#[test]
fn encodings_after_load() {
    let data = save_sample(SaveOpts::default());
    let (keys, _) = load_all(&data, &LoadOpts::default()).unwrap();
    let get = |name: &[u8]| &keys.iter().find(|k| k.1 == name).unwrap().2.value;
    match get(b"hb") {
        Value::Hash(h) => assert_eq!(h.encoding(), "hashtable"),
        _ => panic!(),
    }
    match get(b"h") {
        Value::Hash(h) => assert_eq!(h.encoding(), "listpack"),
        _ => panic!(),
    }
    match (get(b"si"), get(b"ss")) {
        (Value::Set(a), Value::Set(b)) => {
            assert_eq!(a.encoding(), "intset");
            assert_eq!(a.iter().collect::<Vec<_>>(), [&b"-2"[..], b"1", b"3"]);
            assert_eq!(b.encoding(), "hashtable");
        }
        _ => panic!(),
    }
    match (get(b"z"), get(b"zb")) {
        (Value::ZSet(a), Value::ZSet(b)) => {
            assert_eq!(a.encoding(), "listpack");
            // A small skiplist zset comes back as a listpack, as in Redis.
            assert_eq!(b.encoding(), "listpack");
        }
        _ => panic!(),
    }
    // Lower limits convert on load, as Redis does.
    let opts = LoadOpts {
        limits: Limits {
            hash_max_listpack_entries: 1,
            set_max_intset_entries: 2,
            zset_max_listpack_entries: 1,
            ..Limits::default()
        },
        ..Default::default()
    };
    let (keys, _) = load_all(&data, &opts).unwrap();
    let get = |name: &[u8]| &keys.iter().find(|k| k.1 == name).unwrap().2.value;
    assert!(matches!(get(b"h"), Value::Hash(h) if h.encoding() == "hashtable"));
    assert!(matches!(get(b"si"), Value::Set(s) if s.encoding() == "hashtable"));
    assert!(matches!(get(b"z"), Value::ZSet(z) if z.encoding() == "skiplist"));
}

#[test]
fn expired_keys_dropped_or_kept() {
    let mut dbs = [Db::default()];
    dbs[0].insert_entry(b"old", entry(Value::Str(Str::from(b"v".to_vec())), 1000));
    dbs[0].insert_entry(b"new", entry(Value::Str(Str::from(b"v".to_vec())), 0));
    let data = save_to_vec(
        dbs.iter().enumerate(),
        &SaveAux::default(),
        SaveOpts::default(),
    );
    let (keys, info) = load_all(&data, &LoadOpts::default()).unwrap();
    assert_eq!((keys.len(), info.keys_expired), (1, 1));
    let replica = LoadOpts {
        drop_expired: false,
        ..Default::default()
    };
    let (keys, info) = load_all(&data, &replica).unwrap();
    assert_eq!((keys.len(), info.keys_expired), (2, 0));
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let data = save_sample(SaveOpts::default());
    for cut in 0..data.len() {
        let r = load_all(&data[..cut], &LoadOpts::default());
        assert!(r.is_err(), "truncated at {cut} loaded");
    }
}

#[test]
fn byte_flips_never_panic() {
    let data = save_sample(SaveOpts::default());
    let mut rng = fastrand::Rng::with_seed(42);
    let no_crc = LoadOpts {
        verify_checksum: false,
        ..Default::default()
    };
    for i in 0..4000 {
        let mut d = data.clone();
        for _ in 0..1 + i % 3 {
            let p = rng.usize(..d.len());
            d[p] = if i % 2 == 0 {
                rng.u8(..)
            } else {
                d[p] ^ (1 << rng.u8(..8))
            };
        }
        if d != data {
            // With the checksum on, any change is caught.
            assert!(load_all(&d, &LoadOpts::default()).is_err());
        }
        let _ = load_all(&d, &no_crc);
    }
}

#[test]
fn dump_payloads() {
    let lim = Limits::default();
    for (_, e) in &sample()[0].dict {
        let p = dump_payload(&e.value, &lim, true);
        let v = restore_payload(&p, &lim).unwrap().unwrap();
        assert_eq!(v, e.value);
        for cut in 0..p.len() {
            assert!(restore_payload(&p[..cut], &lim).is_err() || cut == p.len());
        }
        let mut bad = p.clone();
        bad[0] ^= 0x40;
        assert!(matches!(
            restore_payload(&bad, &lim),
            Err(RestoreError::Footer)
        ));
    }
    // "hello" as Redis 7.0 dumps it.
    let p = dump_payload(&Value::Str(Str::from(b"hello".to_vec())), &lim, true);
    assert_eq!(&p[..8], b"\x00\x05hello\x0a");
}

// ------------------------------------------------------------ hand-built files

/// Builds RDB bytes by hand.
struct B(Vec<u8>);

impl B {
    fn new(version: u32) -> B {
        B(format!("REDIS{version:04}").into_bytes())
    }
    fn u8(mut self, b: u8) -> B {
        self.0.push(b);
        self
    }
    fn raw(mut self, b: &[u8]) -> B {
        self.0.extend_from_slice(b);
        self
    }
    fn len(self, n: u64) -> B {
        if n < 64 {
            self.u8(n as u8)
        } else if n < 16384 {
            self.raw(&[0x40 | (n >> 8) as u8, n as u8])
        } else {
            self.u8(0x81).raw(&n.to_be_bytes())
        }
    }
    fn s(self, b: &[u8]) -> B {
        self.len(b.len() as u64).raw(b)
    }
    fn finish(self, with_crc: bool) -> Vec<u8> {
        let mut v = self.u8(OP_EOF).0;
        if with_crc {
            let c = crc64(0, &v);
            v.extend_from_slice(&c.to_le_bytes());
        }
        v
    }
}

/// A ziplist of short entries (strings, or small ints as immediates).
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10;
    for it in items {
        tail = 10 + body.len();
        let start = body.len();
        body.push(prev as u8);
        match super::packed::canonical_i64(it) {
            Some(v @ 0..=12) => body.push(0xF1 + v as u8),
            Some(v) if i16::try_from(v).is_ok() => {
                body.push(0xC0);
                body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            _ => {
                body.push(it.len() as u8);
                body.extend_from_slice(it);
            }
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((11 + body.len()) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

fn lp(items: &[&[u8]]) -> Vec<u8> {
    let mut w = LpWriter::new();
    items.iter().for_each(|i| w.push(i));
    w.finish()
}

fn one(data: &[u8], opts: &LoadOpts) -> (Loaded, LoadInfo) {
    load_all(data, opts).unwrap_or_else(|e| panic!("{e}"))
}

fn strs(v: &Value) -> Vec<String> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match v {
        Value::Str(b) => vec![s(b)],
        Value::List(l) => l.items.iter().map(|x| s(x)).collect(),
        Value::Set(st) => {
            let mut m: Vec<_> = st.iter().map(s).collect();
            m.sort();
            m
        }
        Value::Hash(h) => h.iter().flat_map(|(f, v)| [s(f), s(v)]).collect(),
        Value::ZSet(z) => z
            .iter()
            .flat_map(|(m, sc)| [s(m), sc.to_string()])
            .collect(),
        Value::Stream(st) => st.entries.keys().map(|id| id.to_string()).collect(),
    }
}

#[test]
fn legacy_types_and_opcodes() {
    let zm = [
        2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 3, b'z', 0, 0, 0, 0xFF,
    ];
    let data = B::new(9)
        .u8(OP_AUX)
        .s(b"redis-ver")
        .s(b"5.0.0")
        .u8(OP_AUX)
        .s(b"unknown-field")
        .s(b"whatever")
        .u8(OP_AUX)
        .s(b"lua")
        .s(b"return 2")
        .u8(OP_SELECTDB)
        .len(1)
        .u8(OP_RESIZEDB)
        .len(1_000_000_000)
        .len(1_000_000_000)
        .u8(OP_EXPIRETIME)
        .raw(&2_000_000_000i32.to_le_bytes())
        .u8(T_LIST)
        .s(b"list1")
        .len(2)
        .s(b"a")
        .raw(&[0xC0, 0xF9])
        .u8(OP_IDLE)
        .len(10)
        .u8(OP_FREQ)
        .u8(5)
        .u8(T_ZSET)
        .s(b"zset1")
        .len(2)
        .s(b"m")
        .u8(3)
        .raw(b"1.5")
        .s(b"n")
        .u8(255)
        .u8(T_HASH_ZIPMAP)
        .s(b"zm")
        .s(&zm)
        .u8(T_LIST_ZIPLIST)
        .s(b"zl")
        .s(&ziplist(&[b"a", b"7", b"-300"]))
        .u8(T_ZSET_ZIPLIST)
        .s(b"zz")
        .s(&ziplist(&[b"a", b"1", b"b", b"2.5"]))
        .u8(T_HASH_ZIPLIST)
        .s(b"hz")
        .s(&ziplist(&[b"f", b"1"]))
        .u8(T_LIST_QUICKLIST)
        .s(b"ql")
        .len(2)
        .s(&ziplist(&[b"a"]))
        .s(&ziplist(&[b"b", b"c"]))
        .u8(T_SET_INTSET)
        .s(b"is")
        .s(&super::packed::intset_encode(&[-1, 5]))
        .u8(T_SET)
        .s(b"emptyset")
        .len(0)
        .u8(T_ZSET_2)
        .s(b"z2")
        .len(1)
        .s(b"q")
        .raw(&2.5f64.to_le_bytes())
        .finish(true);
    let (keys, info) = one(&data, &LoadOpts::default());
    assert_eq!(info.redis_ver.as_deref(), Some("5.0.0"));
    assert_eq!(info.lua, vec![b"return 2".to_vec()]);
    assert_eq!(info.empty_keys_skipped, 1);
    let get = |n: &str| {
        keys.iter()
            .find(|k| k.1 == n.as_bytes())
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(get("list1").0, 1);
    assert_eq!(get("list1").2.expire_at, 2_000_000_000_000);
    assert_eq!(strs(&get("list1").2.value), ["a", "-7"]);
    assert!(get("zset1").2.lru + 9 < (crate::storage::now_ms() / 1000) as u32 + 1);
    assert_eq!(strs(&get("zset1").2.value), ["n", "-inf", "m", "1.5"]);
    assert_eq!(strs(&get("zm").2.value), ["a", "xy", "b", "z"]);
    assert_eq!(strs(&get("zl").2.value), ["a", "7", "-300"]);
    assert_eq!(strs(&get("zz").2.value), ["a", "1", "b", "2.5"]);
    assert_eq!(strs(&get("hz").2.value), ["f", "1"]);
    assert_eq!(strs(&get("ql").2.value), ["a", "b", "c"]);
    assert_eq!(strs(&get("is").2.value), ["-1", "5"]);
    assert_eq!(strs(&get("z2").2.value), ["q", "2.5"]);
}

#[test]
fn v12_types_functions_modules() {
    let now = crate::storage::now_ms();
    let past = 1000u64;
    let future = now + 3_600_000;
    // Type 25: field, value, expireAt triples.
    let mut w = LpWriter::new();
    for (f, v, t) in [("a", "1", past), ("b", "2", future), ("c", "3", 0)] {
        w.push(f.as_bytes());
        w.push(v.as_bytes());
        w.push_int(t as i64);
    }
    let lpex = w.finish();
    // Type 24: min expire, then (ttl, field, value) with relative TTLs.
    let min = past;
    let mut mod_id = 0u64;
    for c in b"mymodtype" {
        let idx = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .iter()
            .position(|x| x == c)
            .unwrap() as u64;
        mod_id = mod_id << 6 | idx;
    }
    mod_id = mod_id << 10 | 3;
    let data = B::new(12)
        .u8(OP_FUNCTION2)
        .s(b"#!lua name=x\nredis.register_function('f', function() return 1 end)")
        .u8(OP_FUNCTION_PRE_GA)
        .s(b"old")
        .s(b"LUA")
        .len(1)
        .s(b"desc")
        .s(b"return 1")
        .u8(OP_MODULE_AUX)
        .len(mod_id)
        .len(2)
        .len(1)
        .len(2)
        .len(7)
        .len(5)
        .s(b"blob")
        .len(4)
        .raw(&[0; 8])
        .len(3)
        .raw(&[0; 4])
        .len(0)
        .u8(OP_SELECTDB)
        .len(0)
        .u8(OP_SLOT_INFO)
        .len(5)
        .len(1)
        .len(0)
        .u8(T_HASH_LISTPACK_EX)
        .s(b"hx")
        .raw(&(past as i64).to_le_bytes())
        .s(&lpex)
        .u8(T_HASH_METADATA)
        .s(b"hm")
        .raw(&(min as i64).to_le_bytes())
        .len(3)
        .len(1)
        .s(b"a")
        .s(b"1")
        .len(future - min + 1)
        .s(b"b")
        .s(b"2")
        .len(0)
        .s(b"c")
        .s(b"3")
        .u8(T_SET_LISTPACK)
        .s(b"sl")
        .s(&lp(&[b"x", b"1"]))
        .u8(T_MODULE_2)
        .s(b"mv")
        .len(mod_id)
        .len(2)
        .len(1)
        .len(5)
        .s(b"x")
        .len(0)
        .u8(T_STRING)
        .s(b"after")
        .s(b"ok")
        .finish(true);
    let skip = LoadOpts {
        skip_modules: true,
        ..Default::default()
    };
    let (keys, info) = one(&data, &skip);
    assert_eq!(info.functions.len(), 2);
    assert_eq!(info.functions[1], b"#!LUA name=old\nreturn 1");
    assert_eq!(info.modules_skipped, 2);
    assert_eq!(info.hash_fields_expired, 2);
    let get = |n: &str| &keys.iter().find(|k| k.1 == n.as_bytes()).unwrap().2.value;
    assert_eq!(strs(get("hx")), ["b", "2", "c", "3"]);
    assert_eq!(strs(get("hm")), ["b", "2", "c", "3"]);
    assert_eq!(strs(get("sl")), ["1", "x"]);
    assert_eq!(strs(get("after")), ["ok"]);
    // Without skip_modules, module data is an error; replicas keep expired fields.
    assert!(matches!(
        load_all(&data, &LoadOpts::default()),
        Err(RdbError::Module(_))
    ));
    let keep = LoadOpts {
        drop_expired: false,
        ..skip
    };
    let (keys, _) = one(&data, &keep);
    let hx = &keys.iter().find(|k| k.1 == b"hx").unwrap().2.value;
    assert_eq!(strs(hx).len(), 6);
}

#[test]
fn bad_inputs_give_errors() {
    let lo = LoadOpts::default();
    let err = |d: &[u8]| load_all(d, &lo).err().unwrap_or_else(|| panic!("loaded"));
    assert!(matches!(err(b"RADIS0010"), RdbError::BadSignature));
    assert!(matches!(err(b"REDIS0013\xff"), RdbError::BadVersion(13)));
    assert!(matches!(err(b"REDIS0000\xff"), RdbError::BadVersion(0)));
    assert!(matches!(err(b""), RdbError::Truncated));
    // Bad CRC; a zero CRC is not checked; version < 5 has none.
    let mut d = B::new(10).finish(true);
    let n = d.len();
    d[n - 1] ^= 1;
    assert!(matches!(err(&d), RdbError::BadChecksum { .. }));
    d[n - 8..].fill(0);
    assert!(load_all(&d, &lo).is_ok());
    assert!(load_all(&B::new(4).finish(false), &lo).is_ok());
    // Huge claimed lengths fail on the missing bytes, without allocating them.
    let huge = B::new(10)
        .u8(T_STRING)
        .s(b"k")
        .u8(0x81)
        .raw(&(1u64 << 60).to_be_bytes())
        .finish(true);
    assert!(matches!(err(&huge), RdbError::Truncated));
    let huge = B::new(10)
        .u8(T_LIST)
        .s(b"k")
        .len(1 << 60)
        .s(b"a")
        .finish(true);
    assert!(matches!(
        err(&huge),
        RdbError::Truncated | RdbError::Corrupt(_)
    ));
    let lzf = B::new(10)
        .u8(T_STRING)
        .s(b"k")
        .u8(0xC3)
        .len(2)
        .len(1 << 40)
        .raw(&[0, b'a'])
        .finish(true);
    assert!(matches!(err(&lzf), RdbError::Corrupt(_)));
    // Unknown type, bad length prefix, bad string encoding, bad DB, bad blobs.
    assert!(matches!(
        err(&B::new(10).u8(30).s(b"k").finish(true)),
        RdbError::UnknownType(30)
    ));
    assert!(matches!(
        err(&B::new(10).u8(T_STRING).s(b"k").u8(0x85).finish(true)),
        RdbError::Corrupt(_)
    ));
    assert!(matches!(
        err(&B::new(10).u8(T_STRING).s(b"k").u8(0xC5).finish(true)),
        RdbError::Corrupt(_)
    ));
    assert!(matches!(
        err(&B::new(10).u8(OP_SELECTDB).len(16).finish(true)),
        RdbError::DbOutOfRange(16)
    ));
    for t in [
        T_HASH_LISTPACK,
        T_ZSET_LISTPACK,
        T_SET_INTSET,
        T_HASH_ZIPLIST,
        T_HASH_ZIPMAP,
    ] {
        let d = B::new(10)
            .u8(t)
            .s(b"k")
            .s(b"\x05\x00\x00\x00\x00")
            .finish(true);
        assert!(matches!(err(&d), RdbError::Corrupt(_)), "type {t}");
    }
    // Duplicates and NaN.
    let d = B::new(10)
        .u8(T_SET)
        .s(b"k")
        .len(2)
        .s(b"a")
        .s(b"a")
        .finish(true);
    assert!(matches!(err(&d), RdbError::Corrupt(_)));
    let d = B::new(10)
        .u8(T_HASH_LISTPACK)
        .s(b"k")
        .s(&lp(&[b"f", b"1", b"f", b"2"]))
        .finish(true);
    assert!(matches!(err(&d), RdbError::Corrupt(_)));
    let d = B::new(10)
        .u8(T_ZSET_2)
        .s(b"k")
        .len(1)
        .s(b"m")
        .raw(&f64::NAN.to_le_bytes())
        .finish(true);
    assert!(matches!(err(&d), RdbError::Corrupt(_)));
    // Quicklist container other than 1/2, and an empty node.
    let d = B::new(10)
        .u8(T_LIST_QUICKLIST_2)
        .s(b"k")
        .len(1)
        .len(3)
        .s(b"x")
        .finish(true);
    assert!(matches!(err(&d), RdbError::Corrupt(_)));
    let d = B::new(10)
        .u8(T_LIST_QUICKLIST_2)
        .s(b"k")
        .len(1)
        .len(1)
        .s(b"")
        .finish(true);
    assert!(matches!(err(&d), RdbError::Corrupt(_)));
}

fn stream_with_groups() -> super::stream::StreamData {
    use super::stream::*;
    let entries: Vec<(Id, Fields)> = (0..150u64)
        .map(|i| {
            (
                (1000 + i / 2, i % 2),
                vec![(b"f".to_vec(), i.to_string().into_bytes())],
            )
        })
        .collect();
    StreamData {
        length: entries.len() as u64,
        last_id: (2000, 0),
        first_id: entries[0].0,
        max_deleted_id: (5, 5),
        entries_added: 200,
        entries,
        groups: vec![GroupData {
            name: b"g1".to_vec(),
            last_id: (1001, 1),
            entries_read: -1,
            pel: vec![
                PendingData {
                    id: (1000, 0),
                    delivery_time: 1_700_000_000_000,
                    delivery_count: 2,
                },
                PendingData {
                    id: (1001, 1),
                    delivery_time: 1_700_000_000_001,
                    delivery_count: 1,
                },
            ],
            consumers: vec![
                ConsumerData {
                    name: b"alice".to_vec(),
                    seen_time: 1_700_000_000_001,
                    active_time: 1_700_000_000_001,
                    pel: vec![(1000, 0), (1001, 1)],
                },
                ConsumerData {
                    name: b"bob".to_vec(),
                    seen_time: 5,
                    active_time: 5,
                    pel: vec![],
                },
            ],
        }],
        nodes: Vec::new(),
    }
}

#[test]
fn stream_groups_round_trip_and_stock_check() {
    let sd = stream_with_groups();
    let rec = super::save::stream_record(&sd);
    let mut r = &rec[..];
    let mut rd = super::load::Rd::new(&mut r);
    let mut back = super::load::read_stream(&mut rd, T_STREAM_LISTPACKS_2).unwrap();
    assert_eq!(back.nodes.len(), 2);
    back.nodes.clear();
    assert_eq!(back, sd);
    assert!(r.is_empty());
    // As a whole file, stock redis-check-rdb accepts it. The tool is
    // required (found on PATH): a missing one fails, never skips.
    let data = B::new(10)
        .u8(OP_SELECTDB)
        .len(0)
        .u8(T_STREAM_LISTPACKS_2)
        .s(b"st")
        .raw(&rec)
        .finish(true);
    let dir = std::env::temp_dir().join(format!("keel-rdb-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("stream.rdb");
    std::fs::write(&p, &data).unwrap();
    let out = match std::process::Command::new("redis-check-rdb")
        .arg(&p)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`redis-check-rdb` is not installed (not in PATH): run tests/run-all, \
             which installs redis-server and redis-tools"
        ),
        Err(e) => panic!("cannot run redis-check-rdb: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb rejected keel's stream record: {text}"
    );
    if std::env::var("KEEL_KEEP_RDB").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Rough throughput check: `cargo test --release -- --ignored rdb_speed --nocapture`.
#[test]
#[ignore]
fn rdb_speed() {
    let mut db = Db::default();
    for i in 0..1_000_000u32 {
        let v = format!("value-{i}-{}", "x".repeat((i % 40) as usize));
        db.insert_entry(
            format!("key:{i}").as_bytes(),
            entry(Value::Str(Str::from(v.into_bytes())), 0),
        );
    }
    let t = std::time::Instant::now();
    let data = save_to_vec([(0, &db)], &SaveAux::default(), SaveOpts::default());
    let saved = t.elapsed();
    let t = std::time::Instant::now();
    let mut n = 0;
    let mut r = &data[..];
    load(&mut r, &LoadOpts::default(), |_, _, _| n += 1, |_, _| {}).unwrap();
    eprintln!(
        "1M keys, {} bytes: save {saved:?}, load {:?}",
        data.len(),
        t.elapsed()
    );
    assert_eq!(n, 1_000_000);
}
