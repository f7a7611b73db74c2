//! Lua scripting through the server: keel vs stock redis-server, byte for
//! byte, with keys on one shard, on several, and undeclared.

#[macro_use]
mod common;

use common::Pair;

pair_tests!(
    conversions,
    calls_and_errors,
    declared_keys_across_shards,
    undeclared_keys,
    evalsha_and_script_cache,
    read_only_scripts,
    libraries,
    resp3_scripts,
    scripts_in_transactions,
    real_world_corpus,
);

fn ev(p: &mut Pair, script: &str, keys: &[&str], args: &[&str]) {
    let mut a: Vec<Vec<u8>> = vec![
        b"EVAL".to_vec(),
        script.as_bytes().to_vec(),
        keys.len().to_string().into_bytes(),
    ];
    a.extend(keys.iter().map(|k| k.as_bytes().to_vec()));
    a.extend(args.iter().map(|k| k.as_bytes().to_vec()));
    p.check_args(&a);
}

fn conversions(p: &mut Pair) {
    for s in [
        "return 1",
        "return 3.99",
        "return -2.5",
        "return 'str'",
        "return true",
        "return false",
        "return nil",
        "return {1, 2, {3, 'x', {}}, 'y'}",
        "return {1, 2, nil, 4}",
        "return {ok = 'fine'}",
        "return {err = 'MYERR custom'}",
        "return redis.status_reply('PONG')",
        "return redis.error_reply('My error')",
        "return redis.sha1hex('abc')",
        "return {1e20, -0.0, 1/0}",
        "return #KEYS + #ARGV",
    ] {
        ev(p, s, &[], &[]);
    }
    ev(
        p,
        "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}",
        &["a", "b"],
        &["x", "y"],
    );
}

fn calls_and_errors(p: &mut Pair) {
    ev(
        p,
        "return redis.call('set', KEYS[1], ARGV[1])",
        &["k"],
        &["v"],
    );
    ev(p, "return redis.call('get', KEYS[1])", &["k"], &[]);
    ev(p, "return redis.call('incr', KEYS[1])", &["k"], &[]);
    ev(p, "return redis.pcall('incr', KEYS[1])", &["k"], &[]);
    ev(
        p,
        "local r = redis.pcall('incr', KEYS[1]); return r['err']",
        &["k"],
        &[],
    );
    ev(p, "return redis.call('nosuchcommand')", &[], &[]);
    ev(p, "return redis.call('get')", &[], &[]);
    ev(p, "return redis.call('eval', 'return 1', 0)", &[], &[]);
    ev(p, "return undefined_global", &[], &[]);
    ev(p, "x = 1", &[], &[]);
    ev(p, "return (", &[], &[]);
    ev(p, "error('boom')", &[], &[]);
    ev(
        p,
        "return redis.call('blpop', KEYS[1], 0)",
        &["nolist"],
        &[],
    );
    ev(
        p,
        "redis.call('rpush', KEYS[1], 'a', 'b'); return redis.call('lrange', KEYS[1], 0, -1)",
        &["l"],
        &[],
    );
    ev(p, "return redis.call('hgetall', KEYS[1])", &["nohash"], &[]);
    p.checks(&[
        "EVAL \"return 1\" -1",
        "EVAL \"return 1\" 5 a",
        "EVAL \"return 1\" x",
        "GET k",
    ]);
}

fn declared_keys_across_shards(p: &mut Pair) {
    let keys = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"];
    ev(
        p,
        "for i, k in ipairs(KEYS) do redis.call('set', k, ARGV[1] .. i) end; return redis.call('mget', unpack(KEYS))",
        &keys,
        &["v"],
    );
    ev(p, "return redis.call('del', unpack(KEYS))", &keys[..4], &[]);
    p.checks(&["MGET k1 k2 k3 k4 k5 k6 k7 k8", "DEBUG DIGEST"]);
}

fn undeclared_keys(p: &mut Pair) {
    // Legacy scripts that reach keys they did not declare must still work.
    ev(
        p,
        "redis.call('set', 'u1', '1'); redis.call('set', 'u2', '2'); redis.call('set', 'u3', '3'); return redis.call('mget', 'u1', 'u2', 'u3')",
        &[],
        &[],
    );
    ev(
        p,
        "return redis.call('get', 'u2') .. redis.call('get', 'u3')",
        &["u1"],
        &[],
    );
    // Reads of undeclared keys first, then writes: re-run holding every shard.
    ev(
        p,
        "local a = redis.call('get', 'u1'); local b = redis.call('get', 'u7'); redis.call('set', 'u9', a); return {a, b}",
        &["u4"],
        &[],
    );
    p.checks(&["MGET u1 u2 u3 u9", "DBSIZE", "DEBUG DIGEST"]);
}

fn evalsha_and_script_cache(p: &mut Pair) {
    p.checks(&[
        "SCRIPT LOAD \"return ARGV[1] .. 'x'\"",
        "EVALSHA 7b9fa6baf8c9b18a9a06e98b8dcf1bf8d5b0a5f4 0 a",
        "EVALSHA 0000000000000000000000000000000000000000 0",
        "EVALSHA short 0",
        "SCRIPT EXISTS 0000000000000000000000000000000000000000",
        "EVAL \"return 'cached'\" 0",
        "SCRIPT EXISTS 4a1e6d2b4e3d0c6bb2f0f4db9e4f7c5a7b8d2c18",
        "SCRIPT FLUSH",
        "SCRIPT FLUSH ASYNC",
        "SCRIPT FLUSH BAD",
        "SCRIPT NOPE",
        "SCRIPT LOAD",
        "SCRIPT KILL",
    ]);
    let sha = p.check("SCRIPT LOAD \"return redis.call('incr', KEYS[1])\"");
    let sha = String::from_utf8_lossy(&sha)
        .lines()
        .nth(1)
        .unwrap_or("")
        .to_string();
    p.check(&format!("EVALSHA {sha} 1 counter"));
    p.check(&format!("EVALSHA {} 1 counter", sha.to_uppercase()));
    p.check(&format!("SCRIPT EXISTS {sha} nosuch"));
}

fn read_only_scripts(p: &mut Pair) {
    p.checks(&[
        "SET ro 1",
        "EVAL_RO \"return redis.call('get', KEYS[1])\" 1 ro",
        "EVAL_RO \"return redis.call('set', KEYS[1], 2)\" 1 ro",
        "EVAL \"#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 3)\" 1 ro",
        "EVAL \"#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])\" 1 ro",
        "EVAL \"#!lua flags=bogus\nreturn 1\" 0",
        "EVAL \"#!notlua\nreturn 1\" 0",
        "GET ro",
    ]);
}

fn libraries(p: &mut Pair) {
    for s in [
        "return cjson.encode({1, 2, 3})",
        "return cjson.encode({a = 1})",
        "return cjson.decode('[1,2,{\"a\":3}]')[3]['a']",
        "return cmsgpack.unpack(cmsgpack.pack({1, 2, 'x'}))",
        "return bit.band(0xff, 0x0f)",
        "return bit.tohex(255)",
        "return struct.pack('>I2', 258)",
        "return {struct.unpack('>I2', '\\1\\2')}",
        "return tostring(math.random(100))",
        "return type(os)",
        "return loadstring == nil",
    ] {
        ev(p, s, &[], &[]);
    }
}

fn resp3_scripts(p: &mut Pair) {
    p.proto(true);
    p.checks(&[
        "HSET h a 1 b 2",
        "EVAL \"redis.setresp(3); return redis.call('hgetall', KEYS[1])\" 1 h",
        "EVAL \"return redis.call('hgetall', KEYS[1])\" 1 h",
        "EVAL \"redis.setresp(3); return redis.call('zscore', 'z', 'm')\" 0",
        "EVAL \"return {double = 3.5}\" 0",
        "EVAL \"return nil\" 0",
    ]);
    p.proto(false);
}

fn scripts_in_transactions(p: &mut Pair) {
    p.checks(&[
        "MULTI",
        "EVAL \"return redis.call('incr', KEYS[1])\" 1 tx1",
        "EVAL \"return redis.call('incr', 'tx2')\" 0",
        "SET tx3 x",
        "EXEC",
        "MGET tx1 tx2 tx3",
    ]);
}

/// Scripts as applications write them.
fn real_world_corpus(p: &mut Pair) {
    // Fixed-window rate limiter.
    let limiter = "local n = redis.call('incr', KEYS[1]) \
        if n == 1 then redis.call('expire', KEYS[1], ARGV[1]) end \
        if n > tonumber(ARGV[2]) then return 0 end return n";
    for _ in 0..5 {
        ev(p, limiter, &["rate:user1"], &["60", "3"]);
    }
    p.check("TTL rate:user1");
    // Lock release only by its owner.
    let release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    p.checks(&[
        "SET lock:res owner-a NX PX 30000",
        "SET lock:res owner-b NX PX 30000",
    ]);
    ev(p, release, &["lock:res"], &["owner-b"]);
    ev(p, release, &["lock:res"], &["owner-a"]);
    ev(p, release, &["lock:res"], &["owner-a"]);
    // Leaderboard update: keep the best score, return the rank.
    let best = "local cur = redis.call('zscore', KEYS[1], ARGV[1]) \
        if not cur or tonumber(ARGV[2]) > tonumber(cur) then redis.call('zadd', KEYS[1], ARGV[2], ARGV[1]) end \
        return redis.call('zrevrank', KEYS[1], ARGV[1])";
    for (who, score) in [
        ("ann", "10"),
        ("bob", "30"),
        ("ann", "5"),
        ("cat", "20"),
        ("ann", "40"),
    ] {
        ev(p, best, &["board"], &[who, score]);
    }
    p.check("ZRANGE board 0 -1 WITHSCORES");
    // cjson round trips through a hash.
    let store = "local o = cjson.decode(ARGV[1]) \
        for k, v in pairs(o) do redis.call('hset', KEYS[1], k, tostring(v)) end \
        return redis.call('hlen', KEYS[1])";
    ev(p, store, &["user:7"], &["{\"name\":\"ann\",\"age\":30}"]);
    ev(
        p,
        "local h = redis.call('hgetall', KEYS[1]) local o = {} \
        for i = 1, #h, 2 do o[h[i]] = h[i + 1] end return cjson.encode({o['age'], o['name']})",
        &["user:7"],
        &[],
    );
    ev(
        p,
        "return cjson.encode(cjson.decode('{\"a\":[1,2,3],\"b\":{\"c\":true}}'))",
        &[],
        &[],
    );
    ev(p, "return cjson.decode('[1,')", &[], &[]);
    // pcall error handling.
    ev(
        p,
        "local ok, err = pcall(function() return redis.call('incr', KEYS[1]) end) \
        if ok then return 'ok' end return err",
        &["user:7"],
        &[],
    );
    ev(
        p,
        "local r = redis.pcall('lpush', KEYS[1], 'x') return {type(r), r['err']}",
        &["user:7"],
        &[],
    );
    ev(
        p,
        "local ok = pcall(error, {err = 'custom'}) return ok",
        &[],
        &[],
    );
    // Every type back to the client.
    p.checks(&[
        "RPUSH l1 a b",
        "SADD s1 7",
        "HSET h1 f v",
        "ZADD z1 1.5 m",
        "SET s2 str",
    ]);
    ev(
        p,
        "return {redis.call('lrange', 'l1', 0, -1), redis.call('smembers', 's1'), \
        redis.call('hgetall', 'h1'), redis.call('zrange', 'z1', 0, -1, 'withscores'), \
        redis.call('get', 's2'), redis.call('get', 'missing'), redis.call('type', 'l1'), \
        redis.call('ping'), redis.call('incrbyfloat', 'f1', '0.1')}",
        &[],
        &[],
    );
    p.check("DEBUG DIGEST");
}
