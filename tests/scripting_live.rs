//! Live comparison of the scripting engine with a real redis-server 7.0:
//! each script runs once as EVAL on redis-server and once in keel's engine
//! whose `redis.call` is forwarded to the same redis-server; reply bytes
//! must be identical, for RESP2 and RESP3 clients.
//!
//! Each test starts its own stock redis-server (required, on PATH) on a
//! free port through the shared harness.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The script cache is one per process (`scripting::Registry`), as in a
/// server: the two tests run one at a time, or one's EVAL would refill the
/// cache right after the other's SCRIPT FLUSH.
static SCRIPT_CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

use bytes::Bytes;
use keel::protocol::Out;
use keel::scripting::{Engine, ScriptHost};

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A silent server fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }
    fn send(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&b).unwrap();
        let mut out = Vec::new();
        read_reply(&mut self.r, &mut out);
        out
    }
}

fn read_line(r: &mut BufReader<TcpStream>, out: &mut Vec<u8>) -> Vec<u8> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).unwrap();
    out.extend_from_slice(&line);
    line.truncate(line.len().saturating_sub(2));
    line
}

fn read_reply(r: &mut BufReader<TcpStream>, out: &mut Vec<u8>) {
    let line = read_line(r, out);
    assert!(!line.is_empty(), "connection closed");
    let n: i64 = std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match line[0] {
        b'$' | b'=' if n >= 0 => {
            let mut buf = vec![0u8; n as usize + 2];
            std::io::Read::read_exact(r, &mut buf).unwrap();
            out.extend_from_slice(&buf);
        }
        b'*' | b'~' | b'>' if n > 0 => {
            for _ in 0..n {
                read_reply(r, out);
            }
        }
        b'%' | b'|' if n > 0 => {
            for _ in 0..n * 2 {
                read_reply(r, out);
            }
            if line[0] == b'|' {
                read_reply(r, out);
            }
        }
        _ => {}
    }
}

/// A host forwarding commands to redis-server, with the checks Redis does
/// before running a command from a script.
struct TcpHost {
    c2: Conn,
    c3: Conn,
    info: HashMap<Vec<u8>, Option<(i64, Vec<String>)>>,
    read_only: bool,
    logs: Vec<(i32, String)>,
}

impl TcpHost {
    fn new(port: u16) -> TcpHost {
        let c2 = Conn::open(port);
        let mut c3 = Conn::open(port);
        c3.send(&[b"hello", b"3"]);
        TcpHost {
            c2,
            c3,
            info: HashMap::new(),
            read_only: false,
            logs: Vec::new(),
        }
    }

    fn cmd_info(&mut self, name: &[u8]) -> Option<(i64, Vec<String>)> {
        let key = name.to_ascii_lowercase();
        if let Some(i) = self.info.get(&key) {
            return i.clone();
        }
        let r = self.c2.send(&[b"command", b"info", &key]);
        let s = String::from_utf8_lossy(&r).to_string();
        let res = if !s.starts_with("*1\r\n*10") {
            None
        } else {
            let mut lines = s.split("\r\n");
            // *1, *10, $len, name, :arity, *nflags, +flag...
            lines.next();
            lines.next();
            lines.next();
            lines.next();
            let arity: i64 = lines.next().unwrap()[1..].parse().unwrap();
            let nflags: usize = lines.next().unwrap()[1..].parse().unwrap();
            let flags = (0..nflags)
                .map(|_| lines.next().unwrap()[1..].to_string())
                .collect();
            Some((arity, flags))
        };
        self.info.insert(key, res.clone());
        res
    }
}

impl ScriptHost for TcpHost {
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Result<Vec<u8>, String> {
        let Some((arity, flags)) = self.cmd_info(&args[0]) else {
            return Err("Unknown Redis command called from script".into());
        };
        let n = args.len() as i64;
        if (arity > 0 && arity != n) || n < -arity {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        if flags.iter().any(|f| f == "noscript") {
            return Err("This Redis command is not allowed from script".into());
        }
        if self.read_only && flags.iter().any(|f| f == "write" || f == "may_replicate") {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        let a: Vec<&[u8]> = args.iter().map(|b| &b[..]).collect();
        Ok(if resp3 {
            self.c3.send(&a)
        } else {
            self.c2.send(&a)
        })
    }
    fn acl_check_cmd(&mut self, args: &[Bytes]) -> Option<bool> {
        self.cmd_info(&args[0]).map(|_| true)
    }
    fn log(&mut self, level: i32, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }
}

/// (script, keys, args) cases.
fn cases() -> Vec<(String, Vec<&'static str>, Vec<&'static str>)> {
    let mut v: Vec<(String, Vec<&str>, Vec<&str>)> = Vec::new();
    let mut s = |src: &str| v.push((src.to_string(), vec![], vec![]));
    for src in [
        // Lua -> RESP
        "return 1",
        "return -1",
        "return 1.9",
        "return -1.9",
        "return 1e20",
        "return -1e300",
        "return 0/0",
        "return 1/0",
        "return 'hello'",
        "return ''",
        "return 'a\\0b'",
        "return true",
        "return false",
        "return nil",
        "return",
        "return {}",
        "return {1,2,3}",
        "return {1,nil,3}",
        "return {1,'a',{2,{3,'x'}},false,true}",
        "return {1,2,3,'ciao',{1,2}}",
        "return {a=1,b=2}",
        "return {ok='fine'}",
        "return {ok='li\\r\\nne'}",
        "return {err='bad thing'}",
        "return {err='MYCODE bad thing'}",
        "return {err='a\\nb'}",
        "return {err=''}",
        "return {ok=1}",
        "return {err=1}",
        "return {'x',{err='ERR inner'},{ok='OK'}}",
        "return redis.status_reply('PONG')",
        "return redis.status_reply(1)",
        "return redis.error_reply('My Error')",
        "return redis.error_reply('-MY Error')",
        "return redis.error_reply('-NOSPACE')",
        "return redis.error_reply()",
        "return redis.error_reply('ERR x\\r\\n')",
        "return {double=3.14}",
        "return {double=1/0}",
        "return {double=-1/0}",
        "return {double=0/0}",
        "return {double='x'}",
        "return {map={a=1,b={1,2}}}",
        "return {map={}}",
        "return {set={a=true,b=true}}",
        "return {big_number='123456789012345678901234567890'}",
        "return {big_number='1\\r\\n2'}",
        "return {verbatim_string={format='txt',string='hello'}}",
        "return {verbatim_string={format='mkd',string='# x'}}",
        "return {verbatim_string={format='t',string='hi'}}",
        "return {verbatim_string={string='hi'}}",
        "return {function() end}",
        "return function() end",
        "return coroutine.create(function() end)",
        "return {1,2,3,nil,5}",
        "return {[1]=1,[2]=2,[4]=4}",
        "return {KEYS, ARGV}",
        "redis.setresp(3) return true",
        "redis.setresp(3) return false",
        "redis.setresp(3) return {true,false}",
        "redis.setresp(2) return {true,false}",
        "redis.setresp(3) return redis.call('hgetall','nokey')",
        "redis.setresp(3); redis.call('hset','h','a','1','b','2'); return redis.call('hgetall','h')",
        "redis.setresp(3); redis.call('hset','h','a','1'); local r = redis.call('hgetall','h'); return type(r.map)",
        "redis.setresp(3); redis.call('zadd','z','1.5','a'); return redis.call('zscore','z','a')",
        "redis.setresp(3); redis.call('zadd','z','1.5','a'); return redis.call('zscore','z','a').double",
        "redis.setresp(3); redis.call('sadd','s','a'); return redis.call('smembers','s')",
        "redis.setresp(3); return redis.call('get','nokey')",
        "redis.setresp(3); return {redis.call('get','nokey')}",
        "redis.setresp(3); return redis.call('exists','x') == 0",
        "redis.setresp(4)",
        "redis.setresp()",
        "redis.setresp(3); return redis.call('lpos','l','x')",
        "redis.setresp(3); return redis.call('info','server') ~= nil",
        "redis.setresp(3); local r = redis.call('debug','protocol','verbatim'); return {r.verbatim_string.format, r.verbatim_string.string}",
        "redis.setresp(3); return redis.call('debug','protocol','verbatim')",
        "redis.setresp(3); return redis.call('debug','protocol','bignum')",
        "redis.setresp(3); return redis.call('debug','protocol','true')",
        "redis.setresp(3); return redis.call('debug','protocol','false')",
        "redis.setresp(3); return redis.call('debug','protocol','double')",
        "redis.setresp(3); return redis.call('debug','protocol','null')",
        "redis.setresp(3); return redis.call('debug','protocol','map')",
        "redis.setresp(3); return redis.call('debug','protocol','set')",
        "redis.setresp(3); return redis.call('debug','protocol','attrib')",
        "return redis.call('debug','protocol','attrib')",
        "redis.setresp(3); local r = redis.call('memory','doctor'); return {r.verbatim_string.format, type(r.verbatim_string.string)}",
        "return redis.call('debug','protocol','double')",
        // redis.call / pcall
        "return redis.call('set','k','v')",
        "redis.call('set','k','v'); return redis.call('get','k')",
        "return redis.call('get','nokey')",
        "return redis.call('incr','n')",
        "redis.call('set','n', 1.5); return redis.call('get','n')",
        "redis.call('set','n', 0.1); return redis.call('get','n')",
        "redis.call('set','n', 1e100); return redis.call('get','n')",
        "redis.call('set','n', -0); return redis.call('get','n')",
        "return redis.call('ping')",
        "return redis.call('type','nokey')",
        "return redis.call('lpush','l','a','b')",
        "redis.call('lpush','l','a','b'); return redis.call('lrange','l',0,-1)",
        "redis.call('set','k','v'); return redis.call('lpush','k','a')",
        "redis.call('set','k','v'); return redis.pcall('lpush','k','a')",
        "redis.call('set','k','v'); local e = redis.pcall('lpush','k','a'); return e.err",
        "redis.call('set','k','v'); local ok, e = pcall(redis.call, 'lpush','k','a'); return {tostring(ok), e}",
        "return redis.call('nosuchcommand')",
        "return redis.pcall('nosuchcommand')",
        "return redis.call('get')",
        "return redis.call('get','a','b')",
        "return redis.call('eval','return 1','0')",
        "return redis.pcall('multi')",
        "return redis.call()",
        "return redis.pcall()",
        "return redis.call('get', {})",
        "return redis.pcall('get', {})",
        "return redis.call('get', nil)",
        "return redis.call('get', true)",
        "return redis.call('incrbyfloat','f','1.5')",
        "return redis.call('hset','h','f','v')",
        "local t = redis.call('hgetall','h'); return #t",
        "return redis.call('object','encoding','nokey')",
        "return redis.pcall('incr','n','x')",
        "redis.call('set','k','x'); return redis.call('incr','k')",
        "return {pcall(function() redis.call('nosuch') end)}",
        "return {pcall(function() error('boom') end)}",
        "return {pcall(function() error({err='TBL x'}) end)}",
        "return {pcall(function() error({x=1}) end)}",
        "return {pcall(error)}",
        "return {pcall()}",
        "return {xpcall(function() error('x') end, function(e) return 'handled: ' .. e end)}",
        "return redis.sha1hex('')",
        "return redis.sha1hex('Pizza & Mandolino')",
        "return redis.sha1hex(1)",
        "return redis.sha1hex()",
        "return redis.sha1hex('a','b')",
        "return redis.REDIS_VERSION",
        "return redis.REDIS_VERSION_NUM",
        "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
        "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}",
        "redis.log(redis.LOG_WARNING, 'hello', 'world', 1) return 1",
        "redis.log(redis.LOG_DEBUG, 'x') return 1",
        "redis.log(10, 'x')",
        "redis.log('x', 'x')",
        "redis.log(1)",
        "return redis.replicate_commands()",
        "return redis.breakpoint()",
        "return redis.debug('x')",
        "redis.set_repl(redis.REPL_ALL) return 1",
        "redis.set_repl(redis.REPL_NONE) return 1",
        "redis.set_repl(10)",
        "redis.set_repl()",
        "return redis.acl_check_cmd('set','x','y')",
        "return redis.acl_check_cmd('nosuch')",
        "return redis.acl_check_cmd()",
        // errors
        "return 1 +",
        "x = = 1",
        "return 'unterminated",
        "error('boom')",
        "error('boom', 0)",
        "error('boom', 2)",
        "error({err='CUSTOM failed'})",
        "error({err='nocode'})",
        "error(nil)",
        "error(12)",
        "error()",
        "\n\nlocal a = nil; return a.b",
        "return nosuchvar",
        "return _G.nosuchvar",
        "x = 1",
        "_G.x = 1",
        "rawset(_G, 'x', 1)",
        "setmetatable(_G, nil)",
        "redis.call = nil",
        "redis.newfield = 1",
        "string.foo = 1",
        "string.len = nil",
        "cjson.encode = nil",
        "math.pi = 3",
        "table.insert(redis, 1)",
        "local t = {} t.x = 1 return t.x",
        "local t = {1,2} table.insert(t, 3) return t",
        "getmetatable('').__index = nil; return 1",
        "return getmetatable(_G) ~= nil",
        "getmetatable(_G).__index = nil",
        "return type(os)",
        "return type(io)",
        "return type(print)",
        "return type(loadfile)",
        "return type(dofile)",
        "return type(require)",
        "return type(package)",
        "return type(debug)",
        "return type(newproxy)",
        "return type(gcinfo())",
        "return type(__redis__err__handler)",
        "return _VERSION",
        "return type(loadstring)",
        "return loadstring('return 5')()",
        "local f = loadstring('\\27Lua'); return type(f)",
        "return {loadstring('\\27Lua')}",
        "return {load(function() return nil end)}",
        "return tostring(KEYS ~= nil)",
        "local n = 0 for k,v in pairs(_G) do n = n + 1 end return n",
        "local t = {} for k,v in pairs(redis) do t[#t+1] = k end table.sort(t) return t",
        "local t = {} for k,v in pairs(_G) do t[#t+1] = k end table.sort(t) return t",
        "local t = {} for k,v in pairs(cjson) do t[#t+1] = k end table.sort(t) return t",
        "local t = {} for k,v in pairs(cmsgpack) do t[#t+1] = k end table.sort(t) return t",
        "local t = {} for k,v in pairs(math) do t[#t+1] = k end table.sort(t) return t",
        "local t = {} for k,v in pairs(string) do t[#t+1] = k end table.sort(t) return t",
        "return select('#', 1, 2, 3)",
        "return tostring(1e15)",
        "return tostring(0.1)",
        "return 2^53",
        "return string.format('%d %s %5.2f', 3, 'x', 1.234)",
        "return tonumber('0x10')",
        "return #KEYS + #ARGV",
        "return coroutine.wrap(function() coroutine.yield(7) end)()",
        // math.random
        "return {math.random(), math.random(10), math.random(5, 8)}",
        "return math.random(0)",
        "return math.random(1, 2, 3)",
        "return math.random('x')",
        "math.randomseed(42); return {math.random(100), math.random(100)}",
        "return {math.random(100), math.random(100)}",
        // cjson
        "return cjson.encode({1,2,3})",
        "return cjson.encode({a=1})",
        "return cjson.encode({})",
        "return cjson.encode('he said \"hi\"/\\\\ \\1 \\127 \\200')",
        "return cjson.encode(1.5)",
        "return cjson.encode(0.1)",
        "return cjson.encode(1e300)",
        "return cjson.encode(123456789012345)",
        "return cjson.encode(-0)",
        "return cjson.encode(1/0)",
        "return cjson.encode(0/0)",
        "return cjson.encode(nil)",
        "return cjson.encode(cjson.null)",
        "return cjson.encode(true)",
        "return cjson.encode({[1]=1,[2]=2,[4]=4})",
        "return cjson.encode({[1]=1,[20]=2})",
        "return cjson.encode({[1]=1,[3]=2})",
        "return cjson.encode({[0]=1})",
        "return cjson.encode({[1.5]=1})",
        "return cjson.encode({[true]=1})",
        "return cjson.encode({f=function() end})",
        "return cjson.encode(function() end)",
        "return cjson.encode()",
        "return cjson.encode(1, 2)",
        "return cjson.encode({a={b={c={1,2,{d='e'}}}}, x='y', [5]=3})",
        "return cjson.encode({1,'two',{three=3},false,cjson.null})",
        "local t = {} t.t = t return cjson.encode(t)",
        "local t = {} local c = t for i=1,1100 do c[1] = {} c = c[1] end return cjson.encode(t)",
        "return cjson.encode({alpha=1,beta=2,gamma=3,delta=4,epsilon=5,zeta=6,eta=7,theta=8})",
        "return cjson.encode({['10']=1, [10]=2})",
        "return cjson.decode('[1,2,3]')",
        "return cjson.decode('{\"a\":1}').a",
        "return cjson.decode('\"\\\\u00e8\\\\ud83d\\\\ude00\\\\n\\\\/\"')",
        "return cjson.decode('  [1, \"a\", true, false, null, {\"k\":[]}]  ')[2]",
        "return type(cjson.decode('null'))",
        "return cjson.decode('null') == cjson.null",
        "return cjson.decode('[1,null,3]')",
        "return cjson.decode('1e2')",
        "return cjson.decode('-0.5')",
        "return cjson.decode('0x10')",
        "return cjson.decode('+1')",
        "return tostring(cjson.decode('inf'))",
        "return tostring(cjson.decode('-Infinity'))",
        "return tostring(cjson.decode('nan'))",
        "return cjson.decode('01')",
        "return cjson.decode('')",
        "return cjson.decode('   ')",
        "return cjson.decode('x')",
        "return cjson.decode('[1,2')",
        "return cjson.decode('[1,2,]')",
        "return cjson.decode('{\"a\" 1}')",
        "return cjson.decode('{1:2}')",
        "return cjson.decode('{\"a\":1,}')",
        "return cjson.decode('[1] x')",
        "return cjson.decode('\"abc')",
        "return cjson.decode('\"\\\\x\"')",
        "return cjson.decode('\"\\\\u12\"')",
        "return cjson.decode('\"\\\\ud800\"')",
        "return cjson.decode('\"\\\\udc00\"')",
        "return cjson.decode('tru')",
        "return cjson.decode('a\\0b')",
        "return cjson.decode('[1]\\0garbage')",
        "return cjson.decode()",
        "return cjson.decode({})",
        "return cjson.decode(123)",
        "return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))",
        "return cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000)) ~= nil",
        "return {pcall(cjson.decode, '{')}",
        "return cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}'))",
        "return {cjson.encode_keep_buffer()}",
        "return {cjson.encode_keep_buffer(false)}",
        "return {cjson.encode_max_depth()}",
        "return {cjson.encode_max_depth(0)}",
        "return {cjson.decode_max_depth(5)}",
        "return {cjson.encode_number_precision(3)}",
        "return {cjson.encode_number_precision(15)}",
        "return {cjson.encode_sparse_array()}",
        "return {cjson.encode_sparse_array(true, 3, 5)}",
        "return {cjson.encode_invalid_numbers('null')}",
        "return {cjson.encode_invalid_numbers('bad')}",
        "return {cjson.decode_invalid_numbers()}",
        "return {cjson.encode_max_depth(1, 2)}",
        "local c = cjson.new(); c.encode_number_precision(3); return c.encode(3.14159)",
        "local c = cjson.new(); c.encode_invalid_numbers(true); return c.encode({1/0, 0/0})",
        "local c = cjson.new(); c.encode_invalid_numbers('null'); return c.encode({1/0})",
        "local c = cjson.new(); c.encode_sparse_array(true); return c.encode({[1]=1,[20]=2})",
        "local c = cjson.new(); c.decode_invalid_numbers(false); return c.decode('0x10')",
        "local c = cjson.new(); c.encode_max_depth(2); return c.encode({{{1}}})",
        "local c = cjson.new(); c.decode_max_depth(2); return c.decode('[[[1]]]')",
        "return {cjson._NAME, cjson._VERSION, type(cjson.null)}",
        // cmsgpack
        "return cmsgpack.pack(1, -1, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769, 2^32, -2^31-1, 2^53)",
        "return cmsgpack.pack(1.5, 0.1, 1/0, -1/0, 1e300, 2^63, -2^63)",
        "return cmsgpack.pack('a', string.rep('x', 40), string.rep('y', 300), string.rep('z', 70000))",
        "return cmsgpack.pack({1,2,3}, {a=1}, {}, true, false, nil)",
        "return cmsgpack.pack({[1]=1,[3]=3})",
        "local t = {} for i=1,20 do t[i]=i end return cmsgpack.pack(t)",
        "local t = {} t.t = t return cmsgpack.pack(t)",
        "return cmsgpack.pack()",
        "return cmsgpack.pack(function() end)",
        "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3, 4}, {a=5}, true, 1.5))}",
        "local t = cmsgpack.unpack(cmsgpack.pack({a={b={1,2}}})) return t.a.b",
        "return {cmsgpack.unpack('')}",
        "return cmsgpack.unpack('\\145')",
        "return cmsgpack.unpack('\\193')",
        "return cmsgpack.unpack('\\129\\192\\1')",
        "return {cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')}",
        "return {cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\0')}",
        "return {cmsgpack.unpack('\\202\\63\\192\\0\\0')}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), -1)}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1), 5)}",
        "return cmsgpack.unpack()",
        "return cmsgpack.unpack({})",
        "return {cmsgpack._NAME, cmsgpack._VERSION}",
        "return #{cmsgpack.unpack(cmsgpack.pack(unpack((function() local t = {} for i=1,100 do t[i]=i end return t end)())))}",
        // bit
        "return {bit.tobit(1), bit.tobit(2^32+5), bit.tobit(-1), bit.tobit(1.5), bit.tobit(2^31)}",
        "return {bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.bnot(0)}",
        "return {bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8)}",
        "return {bit.lshift(1, 32), bit.lshift(1, 33), bit.rol(5, 0)}",
        "return {bit.bswap(0x12345678), bit.tohex(255), bit.tohex(-1), bit.tohex(255, 2), bit.tohex(255, -4), bit.tohex(1, 10), bit.tohex(1, 0)}",
        "return bit.band()",
        "return bit.band('x')",
        "return bit.band('12', 4)",
        "return bit.tobit({})",
        // struct
        "return struct.pack('>i2', 258)",
        "return struct.pack('<i2', 258)",
        "return struct.pack('bBhHlLiI', -1, 255, -2, 65535, -3, 4, -5, 6)",
        "return struct.pack('i3', 70000)",
        "return struct.pack('>I16', 1)",
        "return struct.pack('>i16', -1)",
        "return struct.pack('d', 1.5)",
        "return struct.pack('>f', 0.1)",
        "return struct.pack('s', 'hello')",
        "return struct.pack('c3', 'abcdef')",
        "return struct.pack('c0', 'abcdef')",
        "return struct.pack('c10', 'abc')",
        "return struct.pack('!4 b i', 1, 2)",
        "return struct.pack('!3i', 1)",
        "return struct.pack('i33', 1)",
        "return struct.pack('q', 1)",
        "return struct.pack('i')",
        "return struct.pack()",
        "return struct.pack('x b x', 7)",
        "return {struct.unpack('>i2', '\\1\\2')}",
        "return {struct.unpack('bBhH', '\\255\\255\\254\\255\\255\\255')}",
        "return {struct.unpack('s', 'abc\\0def')}",
        "return {struct.unpack('s', 'abc')}",
        "return {struct.unpack('b c0', '\\3abcdef')}",
        "return {struct.unpack('c0', 'abc')}",
        "return {struct.unpack('i4', 'ab')}",
        "return {struct.unpack('b', 'abc', 2)}",
        "return {struct.unpack('b', 'abc', 0)}",
        "return {struct.unpack('b', 'abc', -1)}",
        "return {struct.unpack('b', 'abc', 4)}",
        "return {struct.unpack('>d', struct.pack('>d', 3.25))}",
        "return {struct.unpack('>I16', struct.pack('>I16', 258))}",
        "return {struct.unpack('>i3', struct.pack('>i3', -2))}",
        "return {struct.size('bhi'), struct.size('!8 b d'), struct.size('c5'), struct.size('>i16')}",
        "return struct.size('s')",
        "return struct.size('c0')",
        "return struct.size('z')",
        // shebang
        "#!lua\nreturn 1",
        "#!lua flags=no-writes\nreturn redis.call('get','x')",
        "#!lua flags=no-writes\nreturn redis.call('set','x','1')",
        "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 2",
        "#!lua flags=\nreturn 3",
        "#!lua flags=bad\nreturn 1",
        "#!lua flags=no-writes,\nreturn 1",
        "#!lua foo=bar\nreturn 1",
        "#!python\nreturn 1",
        "#!lua",
        "#! lua\nreturn 1",
        "#!\nreturn 1",
        "#!lua \"unbalanced\nreturn 1",
        "#!lua\nerror('line two')",
        "#!lua\nreturn 1 +",
        "local e = redis.pcall('nosuch'); return {e.err, tostring(e.ignore_error_stats_update)}",
        "local e = redis.pcall('get','a','b'); return e",
        "return redis.error_reply('ERR line\\nbreak')",
        "return {err='ERR x\\r\\ny'}",
        "error('multi\\nline')",
        "return {1,{2,{3,{4,{5,{6,{7,{8,{9,{10}}}}}}}}}}",
        "local t = {} for i=1,300 do t[i] = {i, tostring(i)} end return t",
        "local t = {} local c = t for i=1,500 do c[1] = {} c = c[1] end return t",
        "return redis.call('set','k','v','px','100')",
        "return redis.call('setnx','k', 5)",
        "redis.call('rpush','l','a','b','c'); return redis.call('lrange','l', 0, -1.5)",
        "return redis.call('hset','h', 1, 2, 3, 4)",
        "return string.format('%.17g', 0.1)",
        "return tostring(nil) .. tostring(true)",
        "return table.concat({1,2,3}, ',')",
        "return string.byte('A')",
        "return {string.find('hello world', 'o w')}",
        "return string.gsub('hello', 'l', 'L')",
        "return #string.rep('ab', 1000)",
        "local s = 0 for i=1,100000 do s = s + i end return s",
        "return unpack({1,2,3})",
        "return {unpack({1,2,3})}",
        "return select(2, 'a', 'b', 'c')",
        "return tostring(math.huge)",
        "return math.floor(-3.5)",
        "return math.fmod(7, 3)",
        "return 7 % -3",
        "return -7 % 3",
        "return 2^63",
        "return -2^63",
        "return 2^64",
        "return 9007199254740993",
        "return '10' + 5",
        "return 10 .. 20",
        "return nil == false",
        "return rawequal(1, 1)",
        "return collectgarbage('count') > 0",
        "return type(gcinfo())",
        "return next({})",
        "return {next({5})}",
        "return {ipairs({})}",
        "local t = setmetatable({}, {__index = function(t, k) return k .. '!' end}) return t.x",
        "local t = setmetatable({}, {__newindex = function(t, k, v) rawset(t, k, v * 2) end}) t.x = 2 return t.x",
        "local t = setmetatable({}, {__tostring = function() return 'T' end}) return tostring(t)",
        "return setmetatable({}, {__index = {1, 2}})",
        "return coroutine.resume(coroutine.create(function() return 1 end))",
        "return {coroutine.resume(coroutine.create(function() error('co') end))}",
        "return {pcall(redis.call, 'nosuch')}",
        "return {pcall(redis.pcall, 'nosuch')}",
        "return {pcall(string.rep)}",
        "return {pcall(setmetatable, _G, {})}",
        "return {pcall(rawset, redis, 'x', 1)}",
        "return {pcall(function() KEYS = 1 end)}",
        "return {pcall(function() return undefinedvar end)}",
        "local ok, e = pcall(cjson.decode, '{bad') return e",
        "local ok, e = pcall(error, {err='X y'}) return e",
        "local ok, e = pcall(error, {foo='X y'}) return type(e)",
        "return redis.status_reply('')",
        "return redis.error_reply('')",
        "return {redis.error_reply('x'), redis.status_reply('y')}",
        "return cjson.decode('[1,2,3,4]')[4]",
        "return cjson.encode({['a']={}, ['b']={[1]={}}})",
        "return cjson.encode(cjson.decode('[{}, [], {\"a\": []}]'))",
        "return cjson.encode({1, 2, nil, 4})",
        "return cjson.encode({[1]=1, [2]=2, [3]=nil, [4]=4, [5]=5, [6]=6, [7]=7, [8]=8, [9]=9, [10]=10, [11]=11, [12]=12, [30]=30})",
        "return cjson.encode('\\u00e9')",
        "return cjson.encode('\\195\\169')",
        "return cjson.encode(2^53)",
        "return cjson.encode(-1e-7)",
        "return cjson.encode(12345678901234567890)",
        "return cjson.decode('12345678901234567890')",
        "return tostring(cjson.decode('1.5e400'))",
        "return cjson.decode('\"\\\\\\\"\"')",
        "return cmsgpack.pack(-0.0)",
        "return cmsgpack.pack(0/0)",
        "return {cmsgpack.unpack(cmsgpack.pack(0.1))}",
        "return {cmsgpack.unpack(cmsgpack.pack({1, nil, 3}))}",
        "return {bit.tohex(65535, -2147483648)}",
        "return {bit.tobit(2^53), bit.tobit(-2^53), bit.tobit(1e300), bit.tobit(0/0)}",
        "return {struct.unpack('>I4', '\\255\\255\\255\\255')}",
        "return {struct.unpack('<l', struct.pack('<l', -2^62))}",
        "return struct.pack('>L', 2^64)",
        "return struct.pack('>l', -1.5)",
        "return struct.pack('b', 300)",
    ] {
        s(src);
    }
    v.push((
        "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}".into(),
        vec!["k1", "k2"],
        vec!["a1", "a2"],
    ));
    v.push(("return #KEYS".into(), vec!["a", "b", "c"], vec![]));
    v.push((
        "return redis.call('set', KEYS[1], ARGV[1])".into(),
        vec!["key"],
        vec!["val"],
    ));
    v.push(("return tonumber(ARGV[1]) + 1".into(), vec![], vec!["41"]));
    v
}

/// Command sequences (EVALSHA, SCRIPT ...) compared reply by reply.
fn commands() -> Vec<Vec<&'static str>> {
    let v: Vec<Vec<&str>> = vec![
        vec!["script", "flush"],
        vec!["evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        vec!["evalsha", "abc", "0"],
        vec!["evalsha", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
        vec!["script", "load", "return 1"],
        vec![
            "script",
            "exists",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
            "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB",
            "nope",
        ],
        vec!["evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        vec!["evalsha", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
        vec![
            "evalsha_ro",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
            "0",
        ],
        vec!["script", "load", "return 1 +"],
        vec!["script", "load", "#!lua flags=bad\nreturn 1"],
        vec![
            "script",
            "load",
            "#!lua flags=no-writes\nreturn redis.call('set','x','y')",
        ],
        vec!["evalsha", "ad3f5d5f5b93b1d4f1f3f7e4bbd6b0f8a5d7f0a1", "0"],
        vec!["eval", "return KEYS[1]", "2", "a"],
        vec!["eval", "return KEYS[1]", "-1"],
        vec!["eval", "return KEYS[1]", "x"],
        vec!["eval", "return KEYS[1]", "01"],
        vec!["eval", "return KEYS[1]", "1", "a"],
        vec!["eval_ro", "return redis.call('set','x','1')", "0"],
        vec!["eval_ro", "#!lua\nreturn redis.call('get','x')", "0"],
        vec![
            "eval_ro",
            "#!lua flags=no-writes\nreturn redis.call('get','x')",
            "0",
        ],
        vec![
            "eval",
            "redis.call('set','x','1'); return redis.call('get','x')",
            "0",
        ],
        vec!["eval", "return redis.call('get','x')", "0"],
        vec!["script", "exists"],
        vec!["script", "flush", "async"],
        vec!["script", "flush", "bad"],
        vec![
            "script",
            "exists",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
        ],
        vec!["evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        vec!["eval", "return redis.sha1hex('x')", "0"],
        vec!["script", "help"],
    ];
    v
}

/// Fails listing the mismatches (at most 40 shown).
fn report(what: &str, total: usize, mismatches: &[String]) {
    eprintln!("{what}: {total} compared, {} mismatched", mismatches.len());
    assert!(total > 0, "{what}: nothing compared");
    if !mismatches.is_empty() {
        let shown: Vec<&str> = mismatches.iter().take(40).map(|s| s.as_str()).collect();
        panic!(
            "{what}: {} of {total} differ from redis-server:\n{}",
            mismatches.len(),
            shown.join("\n")
        );
    }
}

#[test]
fn live_commands() {
    let _cache = SCRIPT_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let srv = common::Server::redis(&[]);
    let port = srv.port;
    let mut direct = Conn::open(port);
    let mut host = TcpHost::new(port);
    let mut engine = Engine::new();
    let mut mismatches = Vec::new();
    let all = commands();
    for argv in &all {
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        let want = direct.send(&a);
        let bargs: Vec<Bytes> = a.iter().map(|x| Bytes::copy_from_slice(x)).collect();
        let mut out = Out::new(false);
        if argv[0] == "script" {
            assert!(engine.script_command(&bargs, &mut out));
        } else {
            host.read_only = argv[0].ends_with("_ro");
            let sha = argv[0].starts_with("evalsha");
            engine.eval_command(&bargs, sha, host.read_only, &mut host, &mut out);
        }
        if out.buf != want {
            mismatches.push(format!(
                "{argv:?}\n  redis: {}\n  keel:  {}",
                common::show(&want),
                common::show(&out.buf)
            ));
        }
    }
    report("script commands", all.len(), &mismatches);
}

#[test]
fn live_compare() {
    let _cache = SCRIPT_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let srv = common::Server::redis(&[]);
    let port = srv.port;
    let mut direct2 = Conn::open(port);
    let mut direct3 = Conn::open(port);
    direct3.send(&[b"hello", b"3"]);
    let mut ctl = Conn::open(port);
    let mut host = TcpHost::new(port);
    let mut engine = Engine::new();
    let mut mismatches = Vec::new();
    let mut total = 0;
    for (src, keys, args) in cases() {
        for resp3 in [false, true] {
            for ro in [false, true] {
                if ro && !src.starts_with("#!") && !src.contains("set") {
                    continue;
                }
                total += 1;
                let nk = keys.len().to_string();
                let cmd: &[u8] = if ro { b"eval_ro" } else { b"eval" };
                let mut argv: Vec<&[u8]> = vec![cmd, src.as_bytes(), nk.as_bytes()];
                argv.extend(keys.iter().map(|k| k.as_bytes()));
                argv.extend(args.iter().map(|k| k.as_bytes()));
                ctl.send(&[b"flushall"]);
                let conn = if resp3 { &mut direct3 } else { &mut direct2 };
                let want = conn.send(&argv);
                ctl.send(&[b"flushall"]);
                let bargs: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
                let mut out = Out::new(resp3);
                host.read_only = ro
                    || keel::scripting::script_flags(false, src.as_bytes())
                        .is_some_and(|f| f.read_only(false));
                engine.eval_command(&bargs, false, ro, &mut host, &mut out);
                if out.buf != want {
                    mismatches.push(format!(
                        "resp3={resp3} ro={ro} script={src:?}\n  redis: {}\n  keel:  {}",
                        common::show(&want),
                        common::show(&out.buf)
                    ));
                }
            }
        }
    }
    // About 480 scripts, each in RESP2 and RESP3 (and read-only where it
    // makes sense): a shrunken case list fails rather than passing quietly.
    assert!(total >= 1100, "only {total} script runs");
    report("scripts", total, &mismatches);
}
