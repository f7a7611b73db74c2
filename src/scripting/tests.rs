//! Engine tests without a server (the live comparison against redis-server
//! is tests/scripting_live.rs).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::protocol::Out;

/// A tiny in-memory host: GET/SET/INCR/DEL and Redis's pre-call errors.
#[derive(Default)]
struct MemHost {
    kv: HashMap<Vec<u8>, Vec<u8>>,
    read_only: bool,
    logs: Vec<(i32, String)>,
    kill_on_busy: Option<Arc<ScriptStatus>>,
    busy_calls: usize,
}

impl ScriptHost for MemHost {
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Result<Vec<u8>, String> {
        let name = args[0].to_ascii_lowercase();
        let (arity, write) = match name.as_slice() {
            b"get" => (2, false),
            b"set" => (3, true),
            b"incr" => (2, true),
            b"ping" => (1, false),
            b"exec" => return Err("This Redis command is not allowed from script".into()),
            _ => return Err("Unknown Redis command called from script".into()),
        };
        if args.len() != arity {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        if write && self.read_only {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        Ok(match name.as_slice() {
            b"get" => match self.kv.get(&args[1][..]) {
                Some(v) => [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat(),
                None if resp3 => b"_\r\n".to_vec(),
                None => b"$-1\r\n".to_vec(),
            },
            b"set" => {
                self.kv.insert(args[1].to_vec(), args[2].to_vec());
                b"+OK\r\n".to_vec()
            }
            b"incr" => {
                let cur = self.kv.get(&args[1][..]).cloned().unwrap_or(b"0".to_vec());
                match std::str::from_utf8(&cur)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => {
                        self.kv
                            .insert(args[1].to_vec(), (n + 1).to_string().into_bytes());
                        format!(":{}\r\n", n + 1).into_bytes()
                    }
                    None => b"-ERR value is not an integer or out of range\r\n".to_vec(),
                }
            }
            _ => b"+PONG\r\n".to_vec(),
        })
    }
    fn log(&mut self, level: i32, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }
    fn busy(&mut self, _elapsed_ms: u64) {
        self.busy_calls += 1;
        if let Some(s) = &self.kill_on_busy {
            let _ = s.kill(false);
        }
    }
}

fn eval(
    e: &mut Engine,
    h: &mut MemHost,
    script: &str,
    keys: &[&str],
    argv: &[&str],
    resp3: bool,
) -> String {
    let mut args: Vec<Bytes> = vec![Bytes::from("eval"), Bytes::from(script.to_string())];
    args.push(Bytes::from(keys.len().to_string()));
    args.extend(keys.iter().map(|k| Bytes::from(k.to_string())));
    args.extend(argv.iter().map(|k| Bytes::from(k.to_string())));
    let mut out = Out::new(resp3);
    e.eval_command(&args, false, false, h, &mut out);
    String::from_utf8_lossy(&out.buf).into_owned()
}

fn ev(script: &str) -> String {
    eval(
        &mut Engine::new(),
        &mut MemHost::default(),
        script,
        &[],
        &[],
        false,
    )
}

fn sha(s: &str) -> String {
    sha1hex(s.as_bytes())
}

#[test]
fn conversions() {
    assert_eq!(ev("return 1.9"), ":1\r\n");
    assert_eq!(ev("return -1.9"), ":-1\r\n");
    assert_eq!(ev("return 0/0"), format!(":{}\r\n", i64::MIN));
    assert_eq!(ev("return 'x'"), "$1\r\nx\r\n");
    assert_eq!(ev("return true"), ":1\r\n");
    assert_eq!(ev("return false"), "$-1\r\n");
    assert_eq!(ev("return nil"), "$-1\r\n");
    assert_eq!(ev("return {1,2,nil,4}"), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(ev("return {ok='a\\nb'}"), "+a b\r\n");
    assert_eq!(ev("return {err='MY x'}"), "-MY x\r\n");
    assert_eq!(ev("return redis.error_reply('oops')"), "-ERR oops\r\n");
    assert_eq!(ev("return redis.error_reply('-ERR oops')"), "-ERR oops\r\n");
    assert_eq!(ev("return {double=1.5}"), "$3\r\n1.5\r\n");
    assert_eq!(ev("return {map={a=1}}"), "*2\r\n$1\r\na\r\n:1\r\n");
    let mut e = Engine::new();
    let mut h = MemHost::default();
    assert_eq!(
        eval(&mut e, &mut h, "return {double=1.5}", &[], &[], true),
        ",1.5\r\n"
    );
    assert_eq!(
        eval(&mut e, &mut h, "return {map={a=1}}", &[], &[], true),
        "%1\r\n$1\r\na\r\n:1\r\n"
    );
    assert_eq!(
        eval(&mut e, &mut h, "return {set={a=true}}", &[], &[], true),
        "~1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        eval(&mut e, &mut h, "return false", &[], &[], true),
        "_\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "redis.setresp(3) return false",
            &[],
            &[],
            true
        ),
        "#f\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "redis.setresp(3) return true",
            &[],
            &[],
            false
        ),
        ":1\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return {verbatim_string={format='txt',string='hi'}}",
            &[],
            &[],
            true
        ),
        "=6\r\ntxt:hi\r\n"
    );
}

#[test]
fn calls_and_errors() {
    let mut e = Engine::new();
    let mut h = MemHost::default();
    let r = eval(
        &mut e,
        &mut h,
        "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
        &["k"],
        &["v"],
        false,
    );
    assert_eq!(r, "$1\r\nv\r\n");
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.call('get', 'none')",
            &[],
            &[],
            false
        ),
        "$-1\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.call('get', 'none') == false",
            &[],
            &[],
            false
        ),
        ":1\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.call('set', 'n', 1.5)",
            &[],
            &[],
            false
        ),
        "+OK\r\n"
    );
    assert_eq!(h.kv[&b"n"[..]], b"1.5");
    let s = "return redis.call('incr', 'n')";
    assert_eq!(
        eval(&mut e, &mut h, s, &[], &[], false),
        format!(
            "-ERR value is not an integer or out of range script: {}, on @user_script:1.\r\n",
            sha(s)
        )
    );
    let s = "return redis.call('nosuch')";
    assert_eq!(
        eval(&mut e, &mut h, s, &[], &[], false),
        format!(
            "-ERR Unknown Redis command called from script script: {}, on @user_script:1.\r\n",
            sha(s)
        )
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.pcall('exec')",
            &[],
            &[],
            false
        ),
        "-ERR This Redis command is not allowed from script\r\n"
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "local ok, err = pcall(redis.call, 'nosuch') return err",
            &[],
            &[],
            false
        ),
        "$44\r\nERR Unknown Redis command called from script\r\n"
    );
    let s = "\nerror('boom')";
    assert_eq!(
        eval(&mut e, &mut h, s, &[], &[], false),
        format!(
            "-ERR user_script:2: boom script: {}, on @user_script:2.\r\n",
            sha(s)
        )
    );
    assert_eq!(
        eval(&mut e, &mut h, "return 1 +", &[], &[], false),
        "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"
    );
    redis_log(&mut e, &mut h);
}

fn redis_log(e: &mut Engine, h: &mut MemHost) {
    eval(
        e,
        h,
        "redis.log(redis.LOG_WARNING, 'a', 1, {}, 'b')",
        &[],
        &[],
        false,
    );
    assert_eq!(h.logs.last().unwrap(), &(3, "a 1 b".to_string()));
}

#[test]
fn sandbox() {
    let s = "x = 1";
    assert_eq!(
        ev(s),
        format!(
            "-ERR user_script:1: Attempt to modify a readonly table script: {}, on @user_script:1.\r\n",
            sha(s)
        )
    );
    let s = "return nosuch";
    assert_eq!(
        ev(s),
        format!(
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'nosuch' script: {}, on @user_script:1.\r\n",
            sha(s)
        )
    );
    assert!(ev("redis.call = nil").contains("Attempt to modify a readonly table"));
    assert!(ev("rawset(string, 'x', 1)").contains("Attempt to modify a readonly table"));
    assert!(ev("return os.time()").contains("nonexistent global variable 'os'"));
    assert!(
        ev("return loadstring('\\27Lua')").starts_with("$-1")
            || ev("return loadstring('\\27Lua')").starts_with("*")
    );
    assert_eq!(ev("local t = {} t.x = 5 return t.x"), ":5\r\n");
    // Each run sees fresh KEYS/ARGV.
    let mut e = Engine::new();
    let mut h = MemHost::default();
    assert_eq!(
        eval(&mut e, &mut h, "return #KEYS", &["a", "b"], &[], false),
        ":2\r\n"
    );
    assert_eq!(
        eval(&mut e, &mut h, "return #KEYS", &[], &[], false),
        ":0\r\n"
    );
}

#[test]
fn libraries() {
    assert_eq!(
        ev("return cjson.encode({1,'a',{b=true}})"),
        "$18\r\n[1,\"a\",{\"b\":true}]\r\n"
    );
    assert_eq!(
        ev("return cjson.decode('[1,2,{\"a\":\"b\"}]')[3].a"),
        "$1\r\nb\r\n"
    );
    assert!(
        ev("return cjson.decode('[1,')").contains("Expected value but found T_END at character 4")
    );
    assert_eq!(
        ev("return cmsgpack.unpack(cmsgpack.pack({1,2,3}))[3]"),
        ":3\r\n"
    );
    assert_eq!(ev("return cmsgpack.pack(1, 'a') == '\\1\\161a'"), ":1\r\n");
    assert_eq!(ev("return bit.band(0xff, 0x0f)"), ":15\r\n");
    assert_eq!(ev("return bit.tohex(-1)"), "$8\r\nffffffff\r\n");
    assert_eq!(ev("return struct.pack('>i2', 258)"), "$2\r\n\x01\x02\r\n");
    assert_eq!(ev("return struct.size('!8 b d')"), ":16\r\n");
    assert_eq!(
        ev("return redis.sha1hex('')"),
        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"
    );
}

#[test]
fn shebang() {
    assert_eq!(
        parse_shebang(b"return 1").unwrap().0,
        ScriptFlags(ScriptFlags::EVAL_COMPAT)
    );
    let (f, len) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
    assert!(f.has(ScriptFlags::NO_WRITES) && f.has(ScriptFlags::ALLOW_OOM) && !f.compat());
    assert_eq!(len, 31);
    assert!(f.read_only(false) && !f.may_write() && !f.allow_cross_slot());
    assert_eq!(
        parse_shebang(b"#!lua").unwrap_err(),
        "Invalid script shebang"
    );
    assert_eq!(
        parse_shebang(b"#!lua flags=x\n").unwrap_err(),
        "Unexpected flag in script shebang: x"
    );
    assert_eq!(
        parse_shebang(b"#!py\n").unwrap_err(),
        "Unexpected engine in script shebang: #!py"
    );
    assert_eq!(
        parse_shebang(b"#!lua a=b\n").unwrap_err(),
        "Unknown lua shebang option: a=b"
    );
    let mut e = Engine::new();
    let mut h = MemHost {
        read_only: true,
        ..Default::default()
    };
    let s = "#!lua flags=no-writes\nreturn redis.call('set','a','b')";
    assert_eq!(
        eval(&mut e, &mut h, s, &[], &[], false),
        format!(
            "-ERR Write commands are not allowed from read-only scripts. script: {}, on @user_script:2.\r\n",
            sha(s)
        )
    );
    let mut args: Vec<Bytes> = ["eval_ro", "#!lua\nreturn 1", "0"]
        .iter()
        .map(|s| Bytes::from(*s))
        .collect();
    let mut out = Out::new(false);
    e.eval_command(&args, false, true, &mut h, &mut out);
    assert_eq!(
        out.buf,
        b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    args[1] = Bytes::from("#!lua flags=no-writes\nreturn 1");
    let mut out = Out::new(false);
    e.eval_command(&args, false, true, &mut h, &mut out);
    assert_eq!(out.buf, b":1\r\n");
}

/// Everything touching the global registry's flush lives in this one test
/// (tests run in parallel and share the registry).
#[test]
fn registry_and_evalsha() {
    let mut a = Engine::new();
    let mut b = Engine::new();
    let mut h = MemHost::default();
    let body = Bytes::from("return 'registry test'");
    let s = a.script_load(&body).unwrap();
    assert_eq!(s, sha1hex(&body));
    assert!(Registry::global().exists(s.to_uppercase().as_bytes()));
    // Loaded on engine a, run through engine b (another shard).
    let args: Vec<Bytes> = vec![
        Bytes::from("EVALSHA"),
        Bytes::from(s.to_uppercase()),
        Bytes::from("0"),
    ];
    let mut out = Out::new(false);
    b.eval_command(&args, true, false, &mut h, &mut out);
    assert_eq!(out.buf, b"$13\r\nregistry test\r\n");
    assert_eq!(
        script_flags(true, s.as_bytes()),
        Some(ScriptFlags(ScriptFlags::EVAL_COMPAT))
    );
    let mut out = Out::new(false);
    a.script_command(&[Bytes::from("script"), Bytes::from("flush")], &mut out);
    assert_eq!(out.buf, b"+OK\r\n");
    let mut out = Out::new(false);
    b.eval_command(&args, true, false, &mut h, &mut out);
    assert_eq!(
        out.buf,
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    let mut out = Out::new(false);
    a.script_command(
        &[
            Bytes::from("script"),
            Bytes::from("load"),
            Bytes::from("return +"),
        ],
        &mut out,
    );
    assert!(
        out.buf
            .starts_with(b"-ERR Error compiling script (new function): user_script:1:")
    );
}

#[test]
fn kill_and_busy() {
    let mut e = Engine::new();
    e.set_busy_threshold(1);
    let status = e.status();
    let mut h = MemHost {
        kill_on_busy: Some(status.clone()),
        ..Default::default()
    };
    let s = "local i = 0 while true do i = i + 1 end";
    let r = eval(&mut e, &mut h, s, &[], &[], false);
    assert_eq!(
        r,
        format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {}, on @user_script:1.\r\n",
            sha(s)
        )
    );
    assert!(h.busy_calls > 0);
    assert!(
        h.logs
            .iter()
            .any(|(_, m)| m.starts_with("Slow script detected"))
    );
    assert!(!status.is_running());
    assert_eq!(
        status.kill(false),
        Err("NOTBUSY No scripts in execution right now.")
    );
    // pcall cannot swallow the kill.
    let s = "while true do pcall(function() while true do end end) end";
    let r = eval(&mut e, &mut h, s, &[], &[], false);
    assert!(
        r.contains("Script killed by user with SCRIPT KILL..."),
        "{r}"
    );
    // The engine keeps working afterwards.
    assert_eq!(eval(&mut e, &mut h, "return 7", &[], &[], false), ":7\r\n");
}

#[test]
fn unkillable_after_write() {
    let st = ScriptStatus::default();
    st.begin();
    st.mark_write();
    assert!(st.kill(false).unwrap_err().starts_with("UNKILLABLE"));
    st.end();
}
