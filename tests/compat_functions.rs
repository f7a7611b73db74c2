//! Redis 7 Functions (FUNCTION *, FCALL, FCALL_RO) and script flags: keel
//! vs stock redis-server, byte for byte, at 1 and 4 shards.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Conn, Pair, Resp, Server};

pair_tests!(
    load_and_call,
    load_errors,
    register_function_errors,
    list_forms,
    delete_flush,
    dump_restore_across_servers,
    restore_errors,
    flags_and_read_only,
    eval_shebang_flags,
    over_maxmemory,
    kill_and_busy,
    arity_and_help,
    monitor_shows_script_commands,
    monitor_live_at_its_ok,
);

shard_tests!(atomic_under_concurrent_writers);

const ATOMIC_LIB: &str = "#!lua name=atomic
redis.register_function('setall', function(keys, args)
  for _, k in ipairs(keys) do redis.call('set', k, args[1]) end
  return #keys
end)
redis.register_function('setall_undeclared', function(keys, args)
  for i = 1, 16 do redis.call('set', 'u' .. i, args[1]) end
  return 16
end)
redis.register_function{function_name='getall', callback=function(keys) return redis.call('mget', unpack(keys)) end, flags={'no-writes'}}
redis.register_function{function_name='getall_undeclared', callback=function()
  local out = {}
  for i = 1, 16 do out[i] = redis.call('get', 'u' .. i) end
  return out
end, flags={'no-writes'}}";

/// The values of an array reply (nil as "").
fn values(r: &[u8]) -> Vec<Vec<u8>> {
    match Resp::parse(r) {
        Resp::Array(v) => v
            .into_iter()
            .map(|x| match x {
                Resp::Bulk(b) => b,
                Resp::Null => Vec::new(),
                other => panic!("unexpected element {other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Functions writing 16 keys spread over every shard (declared, and
/// undeclared) while readers read them through functions and MGET: every
/// read sees all keys from one write, never a mix.
fn atomic_under_concurrent_writers(shards: usize) {
    let keel = Server::keel(shards, &[]);
    let mut c = keel.conn();
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", ATOMIC_LIB]),
        b"$6\r\natomic\r\n"
    );
    let keys: Vec<String> = (0..16).map(|i| format!("key:{i}")).collect();
    let mut set = vec!["FCALL".to_string(), "setall".into(), "16".into()];
    set.extend(keys.iter().cloned());
    set.push("init".into());
    c.cmd(&set);
    c.cmd(&["FCALL", "setall_undeclared", "0", "init"]);
    let stop = std::time::Instant::now() + Duration::from_millis(1500);
    std::thread::scope(|sc| {
        for w in 0..2 {
            let port = keel.port;
            let mut set = set.clone();
            sc.spawn(move || {
                let mut c = Conn::connect(port);
                let mut i = 0;
                while std::time::Instant::now() < stop {
                    let v = format!("w{w}-{i}");
                    *set.last_mut().unwrap() = v.clone();
                    assert_eq!(c.cmd(&set), b":16\r\n");
                    assert_eq!(c.cmd(&["FCALL", "setall_undeclared", "0", &v]), b":16\r\n");
                    i += 1;
                }
            });
        }
        let mut readers = Vec::new();
        for _ in 0..2 {
            let port = keel.port;
            let keys = keys.clone();
            readers.push(sc.spawn(move || {
                let mut c = Conn::connect(port);
                let mut get = vec!["FCALL_RO".to_string(), "getall".into(), "16".into()];
                get.extend(keys.iter().cloned());
                let mut mget = vec!["MGET".to_string()];
                mget.extend(keys.iter().cloned());
                let mut reads = 0;
                while std::time::Instant::now() < stop {
                    for req in [
                        get.clone(),
                        mget.clone(),
                        vec!["FCALL".into(), "getall_undeclared".into(), "0".into()],
                    ] {
                        let v = values(&c.cmd(&req));
                        assert!(
                            v.iter().all(|x| *x == v[0]),
                            "{} saw a partial write: {:?}",
                            req[1],
                            v.iter()
                                .map(|x| String::from_utf8_lossy(x))
                                .collect::<Vec<_>>()
                        );
                        reads += 1;
                    }
                }
                reads
            }));
        }
        let reads: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(reads > 30, "only {reads} reads ran");
    });
    let final_vals = values(&c.cmd(&["FCALL", "getall_undeclared", "0"]));
    assert_ne!(final_vals[0], b"init", "the writers ran");
}

fn load(p: &mut Pair, code: &str) -> Vec<u8> {
    p.check_args(&["FUNCTION", "LOAD", "REPLACE", code])
}

fn load_new(p: &mut Pair, code: &str) -> Vec<u8> {
    p.check_args(&["FUNCTION", "LOAD", code])
}

const LIB: &str = "#!lua name=mylib
local function set(keys, args) return redis.call('set', keys[1], args[1]) end
redis.register_function('set_it', set)
redis.register_function{function_name='get_it', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}
redis.register_function('mset2', function(keys, args)
  redis.call('set', keys[1], args[1]); redis.call('set', keys[2], args[1]); return redis.call('mget', keys[1], keys[2])
end)
redis.register_function('undeclared', function(keys, args)
  for i = 1, 20 do redis.call('set', 'u' .. i, args[1]) end
  local out = {} for i = 1, 20 do out[i] = redis.call('get', 'u' .. i) end return out
end)
redis.register_function('types', function(keys, args) return {1, 'two', {3}, redis.status_reply('OK'), false, 3.7} end)
redis.register_function('fails', function() return redis.call('incr', 'notnum') end)
redis.register_function('raises', function() error('custom failure') end)
redis.register_function('errtable', function() return redis.error_reply('MYCODE my message') end)
redis.register_function('resp3', function() redis.setresp(3); return redis.call('hgetall', 'h') end)
";

fn load_and_call(p: &mut Pair) {
    load_new(p, LIB);
    p.script(
        "FCALL set_it 1 k v
         FCALL get_it 1 k
         FCALL_RO get_it 1 k
         FCALL_RO set_it 1 k v2
         FCALL get_it 1 k
         FCALL mset2 2 {a}1 {a}2 x
         FCALL mset2 2 a1 b2 y
         MGET a1 b2
         FCALL undeclared 0 z
         MGET u1 u7 u20
         FCALL types 0
         SET notnum abc
         FCALL fails 0
         FCALL raises 0
         FCALL errtable 0
         HSET h f v
         FCALL resp3 0
         !resp3
         FCALL resp3 0
         FCALL types 0
         !resp2
         FCALL nosuch 0
         FCALL set_it x k v
         FCALL set_it 3 k v
         FCALL set_it -1 k
         FCALL set_it
         FCALL_RO nosuch 0
         FUNCTION STATS",
    );
    // A write through FCALL inside MULTI, and FUNCTION LOAD queued too.
    p.check("MULTI");
    p.check("FCALL set_it 1 txk 1");
    p.check_args(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=intx\nredis.register_function('tx_f', function() return 'tx' end)",
    ]);
    p.check("FCALL get_it 1 txk");
    p.check("EXEC");
    p.check("FCALL tx_f 0");
    // Functions are not callable from scripts, FUNCTION neither.
    p.check("EVAL \"return redis.call('fcall', 'get_it', 1, 'k')\" 0");
    p.check("EVAL \"return redis.call('function', 'list')\" 0");
    p.check("FCALL get_it 1 k");
}

fn load_errors(p: &mut Pair) {
    load_new(
        p,
        "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)",
    );
    for code in [
        // the header
        "redis.register_function('f', function() end)",
        "#!lua",
        "#!lua name=lib1",
        "#!lua\nreturn 1",
        "#!lua name=a name=b\nreturn 1",
        "#!lua foo=bar\nreturn 1",
        "#!lua name=\"unbalanced\nreturn 1",
        "#! name=x\nreturn 1",
        "#!LUA name=upper_engine\nredis.register_function('upper_f', function() return 'U' end)",
        "#!python name=py\nreturn 1",
        "#!lua name=bad-name\nreturn 1",
        "#!lua name=\nreturn 1",
        // the library itself
        "#!lua name=lib1\nredis.register_function('f1', function() return 2 end)",
        "#!lua name=lib2\nredis.register_function('f1', function() return 2 end)",
        "#!lua name=lib2\nlocal a = 1",
        "#!lua name=lib2\nlocal a = ",
        "#!lua name=lib2\nreturn math.random()",
        "#!lua name=lib2\nreturn redis.call('ping')",
        "#!lua name=lib2\nreturn redis.setresp(3)",
        "#!lua name=lib2\nreturn redis.set_repl(redis.REPL_NONE)",
        "#!lua name=lib2\nx = 1",
        "#!lua name=lib2\nerror('in load')",
        "#!lua name=lib2\nerror({err='MYERR in load'})",
        "#!lua name=lib2\nredis.log(redis.LOG_NOTICE, 'loading lib2')\nredis.register_function('lf', function() return redis.REDIS_VERSION ~= nil end)",
    ] {
        p.check_args(&["FUNCTION", "LOAD", code]);
    }
    p.check("FCALL f1 0");
    p.check("FCALL lf 0");
    p.check("FCALL upper_f 0");
    // Options.
    p.check_args(&["FUNCTION", "LOAD", "BADOPT", "#!lua name=x\nreturn 1"]);
    p.check_args(&["FUNCTION", "LOAD", "REPLACE"]);
    p.check_args(&[
        "FUNCTION",
        "LOAD",
        "replace",
        "replace",
        "#!lua name=lib1\nredis.register_function('f1', function() return 3 end)",
    ]);
    p.check("FCALL f1 0");
}

fn register_function_errors(p: &mut Pair) {
    for body in [
        "redis.register_function()",
        "redis.register_function('f1')",
        "redis.register_function('f1', function() return 1 end, {}, 'description', 'extra arg')",
        "redis.register_function(nil, function() return 1 end)",
        "redis.register_function('test\\0test', function() return 1 end)",
        "redis.register_function('', function() return 1 end)",
        "redis.register_function('f1', 'not a function')",
        "redis.register_function('f1', function() return 1 end)\nredis.register_function('f1', function() return 1 end)",
        "redis.register_function{function_name='f1'}",
        "redis.register_function{callback=function() return 1 end}",
        "redis.register_function{function_name='f1', callback='x'}",
        "redis.register_function{function_name=1.5, callback=function() return 1 end}",
        "redis.register_function{function_name={}, callback=function() return 1 end}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, flags='no-writes'}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, flags={'bad-flag'}}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, flags={1}}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, description={}}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, other=1}",
        "redis.register_function{function_name='f1', callback=function() return 1 end, flags={'NO-WRITES', 'Allow-Oom'}}",
        // the malicious-access cases of Redis's own suite
        "local lib = redis\nlib.register_function('f2', function() lib.register_function('f3', function() return 1 end) end)",
        "redis.math.random()",
        "redis.redis.call('ping')",
    ] {
        load(p, &format!("#!lua name=rf\n{body}"));
    }
    p.check("FCALL f2 0");
    p.check_unordered("FUNCTION LIST");
    load(
        p,
        "#!lua name=rf\nlocal lib = redis\nlib.register_function('f1', function() lib.redis = redis return 1 end)",
    );
    p.check("FCALL f1 0");
}

fn list_forms(p: &mut Pair) {
    p.check("FUNCTION LIST");
    load_new(
        p,
        "#!lua name=alpha\nredis.register_function{function_name='a1', callback=function() return 1 end, flags={'no-writes', 'allow-stale', 'allow-oom', 'no-cluster', 'allow-cross-slot-keys'}, description='all flags'}",
    );
    p.check("FUNCTION LIST");
    p.check("FUNCTION LIST WITHCODE");
    load_new(
        p,
        "#!lua name=Beta\nredis.register_function('b1', function() return 1 end)\nredis.register_function{function_name='b2', callback=function() return 2 end, description='second'}",
    );
    load_new(
        p,
        "#!lua name=gamma_2\nredis.register_function('g1', function() return 1 end)",
    );
    p.script(
        "%FUNCTION LIST
         %FUNCTION LIST WITHCODE
         %FUNCTION LIST LIBRARYNAME beta
         %FUNCTION LIST LIBRARYNAME a*
         %FUNCTION LIST LIBRARYNAME *a* WITHCODE
         %FUNCTION LIST withcode libraryname g?mma_[12]
         FUNCTION LIST LIBRARYNAME nomatch
         FUNCTION LIST bad_argument
         FUNCTION LIST libraryname
         FUNCTION LIST withcode withcode
         FUNCTION LIST withcode libraryname foo libraryname foo
         FUNCTION STATS
         !resp3
         %FUNCTION LIST
         FUNCTION LIST LIBRARYNAME alpha
         FUNCTION STATS
         !resp2",
    );
}

fn delete_flush(p: &mut Pair) {
    load_new(p, LIB);
    p.script(
        "FUNCTION DELETE nosuch
         FUNCTION DELETE MYLIB
         FUNCTION DELETE mylib
         FUNCTION DELETE mylib
         FCALL set_it 1 k v
         FUNCTION LIST
         FUNCTION STATS",
    );
    load_new(p, LIB);
    p.script(
        "FUNCTION FLUSH bad_arg
         FUNCTION FLUSH sync extra_arg
         FUNCTION FLUSH ASYNC
         FUNCTION LIST",
    );
    load_new(p, LIB);
    p.script(
        "FUNCTION FLUSH SYNC
         FUNCTION LIST
         FCALL get_it 1 k",
    );
    load_new(p, LIB);
    p.script(
        "FUNCTION FLUSH
         FUNCTION LIST
         FUNCTION DELETE",
    );
    // FLUSHALL does not touch the libraries.
    load_new(p, LIB);
    p.check("FLUSHALL");
    p.check("FCALL set_it 1 k v");
    p.check("SCRIPT FLUSH");
    p.check("FCALL get_it 1 k");
}

fn bulk(r: &[u8]) -> Vec<u8> {
    match Resp::parse(r) {
        Resp::Bulk(b) => b,
        other => panic!("expected a bulk payload, got {other:?}"),
    }
}

fn dump_restore_across_servers(p: &mut Pair) {
    // An empty dump is the same on both: just the footer.
    p.check("FUNCTION DUMP");
    load_new(
        p,
        "#!lua name=short\nredis.register_function('s1', function() return 's' end)",
    );
    // Short code is stored uncompressed: the payloads are equal.
    p.check("FUNCTION DUMP");
    load_new(p, LIB);
    let kd = bulk(&p.k.cmd(&["FUNCTION", "DUMP"]));
    let rd = bulk(&p.r.cmd(&["FUNCTION", "DUMP"]));
    p.check("FUNCTION FLUSH");
    load_new(p, LIB);
    let single = bulk(&p.r.cmd(&["FUNCTION", "DUMP"]));
    p.check("FUNCTION FLUSH");
    // Each server restores the other's payload.
    let a = p.k.cmd(&[&b"FUNCTION"[..], b"RESTORE", &rd]);
    let b = p.r.cmd(&[&b"FUNCTION"[..], b"RESTORE", &kd]);
    p.expect_eq("FUNCTION RESTORE <the other server's DUMP>", &a, &b);
    p.check_unordered("FUNCTION LIST WITHCODE");
    p.check("FCALL set_it 1 k restored");
    p.check("FCALL get_it 1 k");
    // Policies (a collision names the library: one library in the payload,
    // as stock names the first it meets in its hash table).
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &single]);
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &single, b"APPEND"]);
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &rd, b"replace"]);
    p.check_unordered("FUNCTION LIST");
    load_new(
        p,
        "#!lua name=extra\nredis.register_function('e1', function() return 'e' end)",
    );
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &rd, b"REPLACE"]);
    p.check("FCALL e1 0");
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &rd, b"FLUSH"]);
    p.check("FCALL e1 0");
    p.check_unordered("FUNCTION LIST");
    // A library whose function collides with one of another library.
    p.check("FUNCTION FLUSH");
    load_new(
        p,
        "#!lua name=other\nredis.register_function('set_it', function() return 'o' end)",
    );
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &rd, b"REPLACE"]);
    p.check("FCALL set_it 0");
}

fn restore_errors(p: &mut Pair) {
    load_new(
        p,
        "#!lua name=short\nredis.register_function('s1', function() return 's' end)",
    );
    let good = bulk(&p.r.cmd(&["FUNCTION", "DUMP"]));
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0xff;
    let mut newer = good[..n - 10].to_vec();
    newer.extend_from_slice(&[200, 0]);
    let mut not_function = vec![0u8, 1, b'k', 1, b'v'];
    not_function.extend_from_slice(&good[n - 10..n - 8]);
    let mut truncated = vec![0xF5u8, 0x0A, b'#'];
    truncated.extend_from_slice(&good[n - 10..n - 8]);
    for payload in [
        b"bad_payload".to_vec(),
        Vec::new(),
        bad_crc,
        with_crc(newer),
        with_crc(not_function),
        with_crc(truncated),
        with_crc(
            [
                &[0xF5u8, 20][..],
                b"#!lua name=x\nreturn 1",
                &good[n - 10..n - 8],
            ]
            .concat(),
        ),
        with_crc([&[0xF5u8, 16][..], b"no header here 1", &good[n - 10..n - 8]].concat()),
    ] {
        p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &payload]);
    }
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &good, b"badpolicy"]);
    p.check_args(&[&b"FUNCTION"[..], b"RESTORE", &good, b"flush", b"extra"]);
    p.check("FUNCTION RESTORE");
    p.check_unordered("FUNCTION LIST");
}

/// Appends Redis's CRC64 (Jones, reflected) of `body`.
fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn flags_and_read_only(p: &mut Pair) {
    load_new(
        p,
        "#!lua name=fl
redis.register_function{function_name='ro_writes', callback=function(keys) return redis.call('set', keys[1], 'x') end, flags={'no-writes'}}
redis.register_function{function_name='ro_reads', callback=function(keys) return redis.call('exists', keys[1]) end, flags={'no-writes'}}
redis.register_function('rw', function(keys) return redis.call('set', keys[1], 'y') end)
redis.register_function{function_name='cross', callback=function(keys) return redis.call('mget', keys[1], keys[2]) end, flags={'allow-cross-slot-keys'}}
redis.register_function{function_name='publishes', callback=function() return redis.call('publish', 'ch', 'm') end, flags={'no-writes'}}
redis.register_function{function_name='pcall_write', callback=function(keys) local r = redis.pcall('set', keys[1], 'x') return r['err'] end, flags={'no-writes'}}",
    );
    p.script(
        "FCALL ro_writes 1 k
         FCALL_RO ro_writes 1 k
         FCALL ro_reads 1 k
         FCALL_RO ro_reads 1 k
         FCALL rw 1 k
         FCALL_RO rw 1 k
         FCALL cross 2 a b
         FCALL publishes 0
         FCALL pcall_write 1 k
         GET k",
    );
}

fn eval_shebang_flags(p: &mut Pair) {
    for (cmd, script, keys) in [
        (
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'x')",
            1,
        ),
        (
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
            1,
        ),
        ("EVAL_RO", "#!lua\nreturn 1", 0),
        ("EVAL_RO", "#!lua flags=no-writes\nreturn 1", 0),
        ("EVAL", "#!lua flags=bad\nreturn 1", 0),
        (
            "EVAL",
            "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
            0,
        ),
        ("EVAL", "#!lua flags=\nreturn 1", 0),
        ("EVAL", "#!lua badopt\nreturn 1", 0),
        ("EVAL", "#!luaxx\nreturn 1", 0),
        ("EVAL", "#!lua", 0),
    ] {
        ev(p, cmd, script, keys);
    }
}

fn ev(p: &mut Pair, cmd: &str, script: &str, keys: usize) {
    let mut a = vec![cmd.to_string(), script.to_string(), keys.to_string()];
    a.extend((0..keys).map(|i| format!("k{i}")));
    p.check_args(&a);
}

fn over_maxmemory(p: &mut Pair) {
    load_new(
        p,
        "#!lua name=oom
redis.register_function('plain', function(keys) return redis.call('set', keys[1], 'v') end)
redis.register_function{function_name='allow', callback=function(keys) return redis.call('set', keys[1], 'v') end, flags={'allow-oom'}}
redis.register_function{function_name='reader', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}",
    );
    p.check("SET k v");
    p.check("CONFIG SET maxmemory 1");
    p.script(
        "FCALL plain 1 k
         FCALL allow 1 k
         FCALL reader 1 k
         FCALL_RO reader 1 k",
    );
    ev(p, "EVAL", "#!lua\nreturn redis.call('get', KEYS[1])", 1);
    ev(
        p,
        "EVAL",
        "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'w')",
        1,
    );
    ev(
        p,
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
        1,
    );
    ev(p, "EVAL", "return redis.call('set', KEYS[1], 'w')", 1);
    p.check_args(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=oom2\nredis.register_function('x', function() return 1 end)",
    ]);
    p.check("FUNCTION DELETE oom");
    p.check("CONFIG SET maxmemory 0");
    p.check("FUNCTION LIST");
}

/// Runs a busy function (or script) on `busy` and the killing sequence on
/// `other`: the replies, in order.
fn busy_sequence(
    busy: &mut Conn,
    other: &mut Conn,
    start: &[&str],
    kills: &[&[&str]],
) -> Vec<Vec<u8>> {
    busy.send(&common::encode(start));
    // Past busy-reply-threshold (set to 100 ms by the caller).
    std::thread::sleep(Duration::from_millis(400));
    let mut out = Vec::new();
    for k in kills {
        let r = other.cmd(k);
        // FUNCTION STATS shows a duration: only its shape is compared.
        out.push(
            if k.len() > 1 && k[1].eq_ignore_ascii_case("stats") && r.starts_with(b"*") {
                let v = format!("{:?}", common::shape(&Resp::parse(&r)));
                // The running script's duration_ms (the first integer): the
                // busy threshold has passed, its exact value is the clock's.
                let start = v.find("Int(").expect("running_script has a duration") + 4;
                let end = start + v[start..].find(')').unwrap();
                let ms: u64 = v[start..end].parse().unwrap();
                assert!(ms >= 300, "duration_ms {ms} in {v}");
                format!("{}duration{}", &v[..start], &v[end..]).into_bytes()
            } else {
                r
            },
        );
    }
    out.push(busy.read_reply());
    out
}

fn kill_and_busy(p: &mut Pair) {
    p.check("CONFIG SET busy-reply-threshold 100");
    load_new(
        p,
        "#!lua name=busy
redis.register_function{function_name='loop', callback=function() local i = 0 while true do i = i + 1 end end, flags={'no-writes'}}
redis.register_function('wloop', function(keys)
  redis.call('set', keys[1], '1')
  local t0 = tonumber(redis.call('time')[1])
  local i = 0
  while true do
    i = i + 1
    if i % 100000 == 0 and tonumber(redis.call('time')[1]) - t0 >= 2 then return 'done' end
  end
end)",
    );
    p.check("FUNCTION KILL");
    p.check("SCRIPT KILL");
    let kills: &[&[&str]] = &[
        &["PING"],
        &["SCRIPT", "KILL"],
        &["FUNCTION", "STATS"],
        &["FUNCTION", "KILL"],
    ];
    let (mut k2, mut r2) = p.conns();
    let k = busy_sequence(&mut p.k, &mut k2, &["FCALL", "loop", "0"], kills);
    let r = busy_sequence(&mut p.r, &mut r2, &["FCALL", "loop", "0"], kills);
    p.expect_eq(
        "busy FCALL: PING / SCRIPT KILL / FUNCTION STATS / FUNCTION KILL / the FCALL",
        &k.concat(),
        &r.concat(),
    );
    let kills: &[&[&str]] = &[
        &["FUNCTION", "STATS"],
        &["FUNCTION", "KILL"],
        &["SCRIPT", "KILL"],
    ];
    let script = ["EVAL", "local i = 0 while true do i = i + 1 end", "0"];
    let k = busy_sequence(&mut p.k, &mut k2, &script, kills);
    let r = busy_sequence(&mut p.r, &mut r2, &script, kills);
    p.expect_eq(
        "busy EVAL: FUNCTION STATS / FUNCTION KILL / SCRIPT KILL / the EVAL",
        &k.concat(),
        &r.concat(),
    );
    // A function that wrote cannot be killed; it ends by itself.
    let kills: &[&[&str]] = &[&["FUNCTION", "KILL"]];
    let k = busy_sequence(&mut p.k, &mut k2, &["FCALL", "wloop", "1", "wk"], kills);
    let r = busy_sequence(&mut p.r, &mut r2, &["FCALL", "wloop", "1", "wk"], kills);
    p.expect_eq(
        "busy writing FCALL: FUNCTION KILL / the FCALL",
        &k.concat(),
        &r.concat(),
    );
    p.check("PING");
    p.check("CONFIG SET busy-reply-threshold 5000");
}

fn arity_and_help(p: &mut Pair) {
    p.script(
        "FUNCTION
         FUNCTION FOO
         FUNCTION HELP
         FUNCTION HELP extra
         FUNCTION STATS extra
         FUNCTION KILL extra
         FUNCTION DUMP extra
         FUNCTION DELETE a b
         FUNCTION LOAD
         FCALL
         FCALL f
         FCALL_RO f
         function list
         FuNcTiOn StAtS",
    );
}

/// MONITOR lines until the one of `PING marker`, with the timestamp cut and
/// the client's address (a different port per server) replaced.
fn monitor_lines(m: &mut Conn) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let r = m
            .try_read_reply(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("MONITOR line missing ({e:?}) after {out:?}"));
        let line = String::from_utf8_lossy(&r).into_owned();
        let (_, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("not a MONITOR line: {line:?}"));
        let (who, args) = rest.split_once("] ").unwrap();
        let who = match who.split_once(' ') {
            Some((db, "lua")) => format!("{db} lua"),
            Some((db, _)) => format!("{db} client"),
            None => who.to_string(),
        };
        let done = args == "\"PING\" \"marker\"\r\n";
        out.push(format!("{who}] {args}"));
        if done {
            return out;
        }
    }
}

/// Commands run by scripts and functions show in MONITOR as `[db lua]`
/// after the EVAL/FCALL line, in order, including a script re-run holding
/// every shard (undeclared keys) and a SELECT inside the script.
fn monitor_shows_script_commands(p: &mut Pair) {
    let (mut mk, mut mr) = p.conns();
    for m in [&mut mk, &mut mr] {
        assert_eq!(m.line("MONITOR"), b"+OK\r\n");
    }
    load_new(p, LIB);
    p.script(
        "EVAL \"redis.call('set', KEYS[1], 'a'); redis.call('select', '3'); return redis.call('get', KEYS[1])\" 1 k
         FCALL mset2 2 {a}1 {a}2 x
         FCALL_RO get_it 1 k
         FCALL undeclared 0 z
         EVAL \"return redis.call('nosuchcmd')\" 0
         SCRIPT FLUSH
         PING marker",
    );
    let (keel, redis) = (monitor_lines(&mut mk), monitor_lines(&mut mr));
    p.expect_eq(
        "MONITOR lines",
        keel.join("").as_bytes(),
        redis.join("").as_bytes(),
    );
}

/// MONITOR's feed is live once its +OK has been read: a command another
/// client sends right after it is the first line shown, every time, on any
/// pair of shards (new connections spread over them).
fn monitor_live_at_its_ok(p: &mut Pair) {
    for i in 0..50 {
        let (mut mk, mut mr) = p.conns();
        let (mut ck, mut cr) = p.conns();
        for (m, c, who) in [(&mut mk, &mut ck, "keel"), (&mut mr, &mut cr, "redis")] {
            assert_eq!(m.line("MONITOR"), b"+OK\r\n", "{who}");
            assert_eq!(c.line(&format!("SET live{i} v")), b"+OK\r\n", "{who}");
            let line = m
                .try_read_reply(Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("{who}: SET live{i} not fed ({e:?})"));
            assert!(
                line.ends_with(format!("\"SET\" \"live{i}\" \"v\"\r\n").as_bytes()),
                "{who}: first MONITOR line {:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}
