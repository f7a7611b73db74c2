//! Hostile scripts against keel and stock redis-server side by side: the
//! trigger scripts of the Lua and Lua-library CVEs Redis fixed, and one
//! scenario per hostile class (ranges, lexer, GC during parse, metatables,
//! library widths and nesting, deep recursion, redis.* misuse, CR/LF in
//! errors). Every reply is compared byte for byte with stock's, and each
//! scenario ends with PING on the same connection, so a crashed or wedged
//! keel fails the test.
//!
//! Run: cargo test --release --test lua_hostile

mod common;

use common::{Conn, Pair, encode, show};

/// EVAL `script` 0 on both servers, replies compared byte for byte.
fn eval(p: &mut Pair, script: &str) {
    p.check_args(&["EVAL", script, "0"]);
}

/// Every script in `scripts`, then PING: the server must still answer.
fn evals(p: &mut Pair, scripts: &[&str]) {
    for s in scripts {
        eval(p, s);
    }
    p.check("PING");
}

// CVE-2025-46817: unpack's element count overflowed int; the worst ranges
// crashed keel (segfault) where stock answers "too many results to unpack".
fn cve_2025_46817_unpack_ranges(p: &mut Pair) {
    evals(
        p,
        &[
            "return {pcall(unpack, {}, -2147483648, 2147483647)}",
            "return {pcall(unpack, {}, 0, 2147483647)}",
            "return {pcall(unpack, {}, -2, 2147483647)}",
            "return {pcall(unpack, {}, 1, 1000000)}",
            "return {pcall(unpack, {}, 1, 7998)}",
            "return #{unpack({}, 1, 7997)}",
            "return {pcall(unpack, {}, 2147483640, 2147483647)}",
            "return {pcall(unpack, {}, -2147483648, -2147483640)}",
            "return {pcall(unpack, {1, 2, 3}, 2, 3)}",
            "return {pcall(unpack, {1, 2, 3}, 3, 2)}",
            "return {pcall(unpack, {1, 2, 3}, 2147483647, -2147483648)}",
            "return unpack({}, -2147483648, 2147483647)",
        ],
    );
}

fn concat_and_string_ranges(p: &mut Pair) {
    evals(
        p,
        &[
            "return {pcall(table.concat, {}, '', -2147483648, 2147483647)}",
            "return {pcall(table.concat, {}, '', 1, 2147483647)}",
            "return {pcall(table.concat, {'a'}, '', 2147483647, 2147483647)}",
            "return {pcall(string.sub, 'abc', -2147483648, 2147483647)}",
            "return {pcall(string.byte, 'abc', -2147483648, 2147483647)}",
            "return {pcall(string.char, unpack({}, 1, 7000))}",
            "return {pcall(string.rep, 'x', -1)}",
            "return {pcall(string.find, 'abc', 'b', -2147483648)}",
            "return {pcall(string.find, 'abc', 'b', 2147483647)}",
            "return {pcall(table.insert, {}, 2147483647, 1)}",
            "return {pcall(table.remove, {}, -2147483648)}",
            "return {pcall(select, -2147483648, 1)}",
            "return {pcall(select, 2147483647, 1)}",
        ],
    );
}

// CVE-2025-46819: long-bracket delimiters counted in an int; the lexer
// (skip_sep / read_long_string) is now size_t and its answers are stock's,
// including the accepted '[[a[[b]]' of the patched lexer.
fn cve_2025_46819_lexer_long_strings(p: &mut Pair) {
    evals(
        p,
        &[
            "return [[a]]",
            "return [==[a]=]b]==]",
            "return [=[\na]]b]=]",
            "return [[a[[b]]",
            "return [=[a[=[b]=]",
            "return [[\n]]",
            "--[==[ comment \n\n]] ]=] ]==] return 1",
            "--[= x\nreturn 2",
            "--[\nreturn 3",
            "return select(2, loadstring('return [==[' .. string.rep('x', 1000)))",
            "return select(2, loadstring('--[==[' .. string.rep('x', 1000)))",
            "return select(2, loadstring('x = [='))",
            "return select(2, loadstring('x = [====x'))",
            "return select(2, loadstring('x = ' .. string.rep('[', 1000)))",
            "return select(2, loadstring('x=[[' .. string.rep('\\n', 100) .. 'a'))",
            "return select(2, loadstring('x=[==[', '='))",
            "return select(2, loadstring('x=', '@' .. string.rep('x', 1000)))",
            "return select(2, loadstring('x=', 'a\\nb'))",
            "return select(2, loadstring('x=\"abc\\n\"'))",
            "return select(2, loadstring('x=' .. string.rep('9', 100000) .. 'z'))",
            "local f = loadstring('return [' .. string.rep('=', 100000) .. '[ab]' \
             .. string.rep('=', 100000) .. ']') return f()",
            "local f = loadstring('return [' .. string.rep('=', 1000) .. '[ab]' \
             .. string.rep('=', 999) .. ']') return f",
        ],
    );
    // The same errors at compile time of the script itself.
    evals(p, &["return [[a[[b]]]]", "x = [==x", "return [==[ab"]);
}

// CVE-2025-49844: the chunk name was not anchored while parsing, so a
// collection during parse could free it. Trigger as published: memory
// pressure and forced collections around many compilations of big sources
// with fresh chunk names, with an aggressive collector.
fn cve_2025_49844_gc_during_parse(p: &mut Pair) {
    evals(
        p,
        &[
            r#"
            collectgarbage('setpause', 10)
            collectgarbage('setstepmul', 1000)
            local parts = {}
            for i = 1, 300 do parts[i] = '"s' .. i .. '"' end
            local src = 'return {' .. table.concat(parts, ',') .. '}'
            local n = 0
            for i = 1, 60 do
                local junk = {}
                for j = 1, 50 do junk[j] = string.rep('g', 200) .. i .. ':' .. j end
                local f = loadstring(src, 'chunk' .. string.rep('n', 50) .. i)
                n = n + #f()
                collectgarbage('collect')
            end
            collectgarbage('setpause', 200)
            collectgarbage('setstepmul', 200)
            return n
            "#,
            r#"
            local bad = 0
            for i = 1, 40 do
                local f, e = loadstring('x = ' .. string.rep('{', i) .. '(', 'bad' .. i)
                if not f then bad = bad + 1 end
                collectgarbage('step', 100)
            end
            return bad
            "#,
        ],
    );
}

// CVE-2025-46818: basic-type metatables are shared by every script and user;
// the string metatable is read-only and the tools to reach others are gone.
fn cve_2025_46818_basic_type_metatables(p: &mut Pair) {
    evals(
        p,
        &[
            "getmetatable('').__index = {} return 1",
            "getmetatable('').x = 1 return 1",
            "getmetatable('').__index.upper = nil return 1",
            "return {pcall(rawset, getmetatable(''), 'x', 1)}",
            "return {pcall(setmetatable, getmetatable(''), {})}",
            "return {pcall(setmetatable, '', {})}",
            "return type(getmetatable(''))",
            "return tostring(getmetatable('').__metatable)",
            "return type(debug)",
            "return type(newproxy)",
            "return type(getfenv)",
            "return type(setfenv)",
            "return (1).x",
            "return ('abc'):upper()",
        ],
    );
}

// CVE-2024-46981: SCRIPT FLUSH closes the Lua state; no userdata with a __gc
// a script could set up survives into it, and the state comes back whole.
fn cve_2024_46981_flush_during_gc(p: &mut Pair) {
    evals(
        p,
        &[
            "local t = {} for i = 1, 1000 do t[i] = {string.rep('x', 100)} end return #t",
            "return {pcall(function() local u = newproxy(true) end)}",
        ],
    );
    p.check("SCRIPT FLUSH");
    evals(
        p,
        &["collectgarbage('collect') return 1", "return ('x'):rep(3)"],
    );
    p.check("SCRIPT FLUSH ASYNC");
    evals(p, &["return redis.call('ping')"]);
}

// CVE-2024-31449: bit.tohex with extreme widths.
fn cve_2024_31449_bit_tohex(p: &mut Pair) {
    evals(
        p,
        &[
            "return bit.tohex(65535, -2147483648)",
            "return bit.tohex(65535, 2147483647)",
            "return bit.tohex(65535, -9)",
            "return bit.tohex(65535, 9)",
            "return bit.tohex(65535, -1e20)",
            "return bit.tohex(65535, 1e20)",
            "return bit.tohex(-1, 0/0)",
            "return bit.tohex(1/0)",
            "return bit.lshift(1, 1e300)",
            "return bit.band(0/0)",
        ],
    );
}

// CVE-2020-14147: struct sizes and counts past int range.
fn cve_2020_14147_struct_widths(p: &mut Pair) {
    evals(
        p,
        &[
            "return {pcall(struct.pack, 'i17', 1)}",
            "return {pcall(struct.pack, 'i2147483648', 1)}",
            "return {pcall(struct.pack, 'i99999999999999999999', 1)}",
            "return {pcall(struct.pack, 'c2147483647', 'a')}",
            "return {pcall(struct.pack, 'c4294967297', 'a')}",
            "return {pcall(struct.unpack, 'c2147483647', 'a')}",
            "return {pcall(struct.unpack, '!2147483648i4', 'aaaa')}",
            "return {pcall(struct.pack, '!3i4', 1)}",
            "return {pcall(struct.unpack, 'i4', 'aaaa', -5)}",
            "return {pcall(struct.unpack, 'i4', 'aaaa', 2147483647)}",
            "return {pcall(struct.unpack, 'i4', 'aaaa', 1e300)}",
            // A negative or NaN count for 'c0' is a huge size_t in C.
            "return {pcall(struct.unpack, 'ic0', '\\255\\255\\255\\255aaaa')}",
            "return {pcall(struct.unpack, 'ic0', '\\000\\000\\000\\000aaaa')}",
            "return {pcall(struct.unpack, 'dc0', struct.pack('d', 0/0) .. 'aaaa')}",
            "return {pcall(struct.unpack, 'dc0', struct.pack('d', 2^64) .. 'aaaa')}",
            "return {pcall(struct.unpack, 'dc0', struct.pack('d', 2.5) .. 'aaaa')}",
            "return {pcall(struct.size, 'c2147483647c2147483647c2147483647')}",
            "return {pcall(struct.unpack, '>i9', '\\255\\255\\255\\255\\255\\255\\255\\255\\255')}",
            "return {pcall(struct.pack, 'i', 1e300)}",
            "return {pcall(struct.pack, 'i', 0/0)}",
            "return {pcall(struct.unpack, string.rep('b', 10000), string.rep('a', 10000))}",
        ],
    );
}

// CVE-2022-24834 / CVE-2021-32627 / CVE-2021-32628: cjson and cmsgpack with
// hostile sizes, counts and nesting.
fn cve_2022_24834_cjson_cmsgpack(p: &mut Pair) {
    evals(
        p,
        &[
            "return {pcall(cjson.decode, string.rep('[', 100000))}",
            "return {pcall(cjson.decode, string.rep('{\"a\":', 100000))}",
            "return {pcall(cjson.decode, string.rep('[', 1100) .. string.rep(']', 1100))}",
            "local t = {} local c = t for i = 1, 2000 do c[1] = {} c = c[1] end \
             return {pcall(cjson.encode, t)}",
            "local t = {} t[1] = t return {pcall(cjson.encode, t)}",
            "local t = {} t[2147483647] = 1 return {pcall(cjson.encode, t)}",
            // A key past int range makes C's int max INT_MIN: an object.
            "local t = {} t[1e10] = 1 return {pcall(cjson.encode, t)}",
            "local t = {} t[2^31] = 1 t[1] = 2 return {pcall(cjson.encode, t)}",
            "local t = {1, 2, 3} t[100000] = 1 return {pcall(cjson.encode, t)}",
            "return {pcall(cjson.encode, string.rep('\\0', 100000)) ~= nil}",
            "return {pcall(cjson.decode, '\"\\\\ud800\"')}",
            "return {pcall(cjson.decode, '1e99999')}",
            "return {pcall(cjson.encode, 0/0)}",
            "return {pcall(cmsgpack.unpack, string.rep('\\145', 100000))}",
            "return {pcall(cmsgpack.unpack, '\\221\\255\\255\\255\\255')}",
            "return {pcall(cmsgpack.unpack, '\\223\\255\\255\\255\\255')}",
            "return {pcall(cmsgpack.unpack, '\\219\\255\\255\\255\\255')}",
            "return {pcall(cmsgpack.unpack, '\\199\\255\\255\\255\\255')}",
            "return #{pcall(cmsgpack.unpack, string.rep('\\1', 8000))}",
            "return {pcall(cmsgpack.unpack_limit, string.rep('\\1', 10), 3, -5)}",
            "return {pcall(cmsgpack.unpack_one, string.rep('\\1', 10), -2147483648)}",
            "return {pcall(cmsgpack.unpack_one, string.rep('\\1', 10), 1e300)}",
            "local t = {} local c = t for i = 1, 2000 do c[1] = {} c = c[1] end \
             return #cmsgpack.pack(t)",
            "local t = {} t[1] = t return #cmsgpack.pack(t)",
            "local t = {} for i = 1, 7990 do t[i] = i end return #cmsgpack.pack(unpack(t))",
        ],
    );
}

// CVE-2021-32626 and deep recursion: Lua and C stack limits, deep replies.
fn deep_recursion(p: &mut Pair) {
    evals(
        p,
        &[
            "local function f(n) return f(n + 1) + 1 end return f(1)",
            "local function f(n) return f(n + 1) + 1 end return {pcall(f, 1)}",
            "local function f() return select(2, pcall(f)) end return f()",
            "local t = {} for i = 1, 100000 do t = {t} end return t",
            "local t = {} for i = 1, 100000 do t = {t} end return {pcall(cjson.encode, t)}",
            "local t = {} for i = 1, 100000 do t = {t} end return #cmsgpack.pack(t)",
            "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) \
             return {pcall(function() return t.x end)}",
            "local t = setmetatable({}, {__index = function() error('x') end}) return t",
            "return {pcall(string.find, string.rep('a', 10000), \
             string.rep('a?', 5000) .. string.rep('a', 5000))}",
            "return {pcall(string.match, string.rep('x', 300), string.rep('(x)', 40))}",
            "return select(2, loadstring('return ' .. string.rep('{', 100000)))",
            "return select(2, loadstring(string.rep('(', 300) .. 'x'))",
            "local co = coroutine.create(function() coroutine.yield(redis.call('ping')) end) \
             return {coroutine.resume(co)}",
        ],
    );
}

// redis.* called wrongly: no arguments, wrong types, huge argument lists,
// forbidden commands, bad levels and modes.
fn redis_api_misuse(p: &mut Pair) {
    evals(
        p,
        &[
            "return redis.call()",
            "return redis.pcall()",
            "return redis.call({})",
            "return redis.call(nil)",
            "return redis.call('get', {})",
            "return redis.call('get', 'k', nil)",
            "return redis.call('ping', true)",
            "return redis.call('ping', 1.5)",
            "return redis.call('nosuch\\r\\ncmd')",
            "return redis.pcall('nosuch\\r\\ncmd')",
            "return redis.call('ping', unpack({}, 1, 7000))",
            "local t = {'rpush', 'hostile:list'} for i = 1, 7000 do t[#t + 1] = tostring(i) end \
             return redis.call(unpack(t))",
            "return redis.call('lrange', 'hostile:list', 0, 4)",
            "return redis.call('del', 'hostile:list')",
            "return redis.call('set', 'hostile:k', string.rep('x', 1000000))",
            "return redis.call('strlen', 'hostile:k')",
            "return redis.call('eval', 'return 1', '0')",
            "return redis.pcall('eval', 'return 1', '0')",
            "return redis.call('multi')",
            "return redis.call('subscribe', 'x')",
            "return redis.call('script', 'flush')",
            "return {pcall(redis.setresp, 5)}",
            "return {pcall(redis.setresp)}",
            "return {pcall(redis.set_repl, 99)}",
            "return {pcall(redis.log, 99, 'x')}",
            "return {pcall(redis.log)}",
            "return {pcall(redis.sha1hex)}",
            "return redis.error_reply({})",
            "return redis.error_reply()",
            "return redis.status_reply(nil)",
            "return redis.breakpoint()",
            "return redis.replicate_commands()",
            "return {pcall(rawset, redis, 'call', 1)}",
            "return {pcall(setmetatable, _G, {})}",
        ],
    );
    p.check("DEL hostile:k");
}

// CR and LF from user data never reach the wire inside an error or status
// line: they become spaces, so one reply can never be read as two.
fn crlf_in_error_replies(p: &mut Pair) {
    evals(
        p,
        &[
            "return redis.error_reply('a\\r\\n+OK\\r\\nb')",
            "return redis.error_reply('\\r\\n-ERR x\\r\\n')",
            "return redis.error_reply('-\\r\\n')",
            "return redis.status_reply('a\\r\\n:1\\r\\nb')",
            "return {err = 'x\\r\\n+OK'}",
            "return {ok = 'x\\r\\n+OK'}",
            "return {err = '\\n'}",
            "error('x\\r\\n+OK\\r\\ny')",
            "error({err = 'x\\r\\n+OK'})",
            "return redis.pcall('nosuch\\r\\n+OK')",
            "return redis.call('config', 'set', 'x\\r\\n+OK', '1')",
            "return redis.call('incrby', 'k', 'x\\r\\n')",
            "return redis.call('client', 'setname', 'a\\r\\n+OK')",
        ],
    );
    // Arguments echoed in command errors.
    for args in [
        &["nosuch\r\n+OK\r\n"][..],
        &["OBJECT", "nosuch\r\n+OK"],
        &["CONFIG", "SET", "a\r\n+OK", "1"],
        &["SCRIPT", "nosuch\r\n+OK"],
        &["EVALSHA", "x\r\n+OK", "0"],
        &["EVAL", "return 1", "x\r\n"],
    ] {
        p.check_args(args);
    }
    p.check("PING");
    // A protocol error quoting the offending byte (a CR or LF here): the
    // connection is closed after it, so each gets its own.
    for req in [
        &b"*1\r\n\r\n"[..],
        b"*1\r\n\nx\r\n",
        b"*2\r\n$1\r\na\r\n\r\n",
    ] {
        let (mut k, mut r) = p.conns();
        let kr = raw_reply(&mut k, req);
        let rr = raw_reply(&mut r, req);
        p.expect_eq(&format!("protocol error for {}", show(req)), &kr, &rr);
    }
    p.check("PING");
}

fn raw_reply(c: &mut Conn, req: &[u8]) -> Vec<u8> {
    c.send(req);
    c.read_reply()
}

/// The classes above through EVALSHA too: a cached script runs the same
/// paths, and SCRIPT LOAD compiles with the patched lexer.
fn hostile_via_evalsha(p: &mut Pair) {
    let body = "return {pcall(unpack, {}, -2147483648, 2147483647)}";
    let sha = p.check_args(&["SCRIPT", "LOAD", body]);
    assert!(sha.starts_with(b"$40"), "SCRIPT LOAD: {}", show(&sha));
    let sha = String::from_utf8_lossy(&sha[5..45]).into_owned();
    p.check_raw(&encode(&["EVALSHA", sha.as_str(), "0"]), "EVALSHA unpack");
    p.check_args(&["SCRIPT", "LOAD", "return [[a[[b]]"]);
    p.check("PING");
}

pair_tests!(
    cve_2025_46817_unpack_ranges,
    concat_and_string_ranges,
    cve_2025_46819_lexer_long_strings,
    cve_2025_49844_gc_during_parse,
    cve_2025_46818_basic_type_metatables,
    cve_2024_46981_flush_during_gc,
    cve_2024_31449_bit_tohex,
    cve_2020_14147_struct_widths,
    cve_2022_24834_cjson_cmsgpack,
    deep_recursion,
    redis_api_misuse,
    crlf_in_error_replies,
    hostile_via_evalsha,
);
