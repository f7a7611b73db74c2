//! The Lua state, the `redis` API given to scripts, and the Lua -> RESP
//! conversion. Written against the Lua C API (mlua's ffi) so errors, stack
//! discipline and the sandbox behave as in Redis 7.0's C implementation.
//!
//! Lua errors longjmp: Rust functions called by Lua never hold values with
//! destructors across a call that may raise. Failures are returned as
//! [`LErr`] and raised by the `cfn!` wrapper after everything is dropped.
//!
//! # Safety (every `unsafe` block in this module and in `libs/`)
//! The C API is used because Redis's semantics (errors as plain strings or
//! tables, read-only tables, stack discipline) cannot be expressed through
//! mlua's safe wrapper. The invariants every block relies on:
//! - a `lua_State` is created, used and closed by its `Engine` on the one
//!   shard thread that owns it; it never crosses threads;
//! - stack indexes are checked against `lua_gettop` (or come from values this
//!   code just pushed), and every function leaves the stack as it found it
//!   apart from its documented results;
//! - strings read with `lua_tolstring` are copied before anything that may
//!   pop or collect them;
//! - no Rust value with a destructor is alive across a call that may raise
//!   (see above), so a longjmp never skips a drop.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mlua::ffi::*;

use super::functions::{self, FunctionInfo, Library, LibrarySet};
use super::lrand::{LRAND48_MAX, Lrand48};
use super::{
    NOSCRIPT_ERR, Registry, SCRIPT_HELP, Script, ScriptFlags, ScriptHost, ScriptStatus,
    parse_shebang, sha1hex,
};
use crate::protocol::Out;

unsafe extern "C-unwind" {
    // Added to the vendored Lua (vendor/lua-src), as in Redis's Lua.
    fn lua_enablereadonlytable(l: *mut lua_State, idx: c_int, enabled: c_int);
    fn lua_isreadonlytable(l: *mut lua_State, idx: c_int) -> c_int;
}

const CTX_KEY: &CStr = c"__keel_script_ctx";
/// Registry keys of the functions state: what a library load sees as its
/// globals, and the globals functions run with.
const LIBRARY_API: &CStr = c"__keel_library_api";
const GLOBALS_API: &CStr = c"__keel_globals_api";
/// FUNCTION LOAD's time limit (Redis's LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT_MS: u64 = 500;
const REDIS_VERSION_NUM: f64 = 0x0007_000f as f64;

/// An error to raise in Lua once the Rust frame is gone.
pub(crate) enum LErr {
    /// A message raised like luaL_error ("user_script:1: " prefix).
    Msg(String),
    /// A message raised without position (luaG_runerror inside a C function).
    Raw(String),
    /// luaL_argerror(narg, msg).
    Arg(c_int, String),
    /// The error value is already on the stack top.
    Top,
}

/// Raises `e`. Only Lua-owned data is alive when lua_error jumps.
pub(crate) unsafe fn raise(l: *mut lua_State, e: LErr) -> c_int {
    unsafe {
        // Room for the message even when the failure was a full stack.
        lua_checkstack(l, 4);
        match e {
            LErr::Msg(s) => {
                // luaL_error: position of the calling Lua code first.
                luaL_where(l, 1);
                push_bytes(l, s.as_bytes());
                drop(s);
                lua_concat(l, 2);
                lua_error(l)
            }
            LErr::Raw(s) => {
                push_bytes(l, s.as_bytes());
                drop(s);
                lua_error(l)
            }
            LErr::Arg(n, s) => {
                push_bytes(l, s.as_bytes());
                drop(s);
                let p = lua_tolstring(l, -1, std::ptr::null_mut());
                luaL_argerror(l, n, p)
            }
            LErr::Top => lua_error(l),
        }
    }
}

/// Defines an `extern "C-unwind"` Lua function from a
/// `unsafe fn(*mut lua_State) -> Result<c_int, LErr>`.
macro_rules! cfn {
    ($name:ident, $inner:path) => {
        pub(crate) unsafe extern "C-unwind" fn $name(l: *mut mlua::ffi::lua_State) -> c_int {
            let r = unsafe { $inner(l) };
            match r {
                Ok(n) => n,
                Err(e) => unsafe { $crate::scripting::engine::raise(l, e) },
            }
        }
    };
}
pub(crate) use cfn;

pub(crate) unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    unsafe { lua_pushlstring_(l, b.as_ptr() as *const c_char, b.len()) }
}

/// The bytes of the string (or number, converted in place) at `idx`.
pub(crate) unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    unsafe {
        let mut len = 0usize;
        let p = lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts(p as *const u8, len))
        }
    }
}

/// Like lua_tostring seen as a C string: stops at the first NUL.
pub(crate) unsafe fn to_cstr_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    unsafe {
        to_bytes(l, idx).map(|b| match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        })
    }
}

pub(crate) unsafe fn set_bool_field(l: *mut lua_State, k: &CStr, v: bool) {
    unsafe {
        lua_pushboolean(l, v as c_int);
        lua_setfield(l, -2, k.as_ptr());
    }
}

unsafe fn set_fn(l: *mut lua_State, k: &CStr, f: lua_CFunction) {
    unsafe {
        lua_pushcfunction(l, f);
        lua_setfield(l, -2, k.as_ptr());
    }
}

unsafe fn set_num(l: *mut lua_State, k: &CStr, n: f64) {
    unsafe {
        lua_pushnumber(l, n);
        lua_setfield(l, -2, k.as_ptr());
    }
}

/// C's (long long) cast of a double as x86-64 does it (out of range and NaN
/// give i64::MIN), which is what Redis's replies show.
pub(crate) fn d2ll(d: f64) -> i64 {
    const LIM: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !(-LIM..LIM).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// printf-style `%.<prec>g`.
pub(crate) fn fmt_g(d: f64, prec: i32) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: one int and one double argument matching "%.*g"; snprintf
    // writes at most buf.len() bytes including the NUL.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            c"%.*g".as_ptr(),
            prec as c_int,
            d,
        )
    };
    String::from_utf8_lossy(&buf[..(n.max(0) as usize).min(63)]).into_owned()
}

/// Redis's luaPushErrorBuff: pushes `{err = "<CODE> <msg>"}` from either
/// "-CODE msg" or "msg" (code ERR).
pub(crate) unsafe fn push_error_buff(l: *mut lua_State, e: &[u8]) {
    // The C code works on NUL-terminated strings.
    let e = match e.iter().position(|&c| c == 0) {
        Some(n) => &e[..n],
        None => e,
    };
    let (code, msg): (&[u8], &[u8]) = if e.first() == Some(&b'-') {
        match e.iter().position(|&c| c == b' ') {
            Some(sp) => (&e[1..sp], &e[sp + 1..]),
            None => (b"ERR", &e[1..]),
        }
    } else {
        (b"ERR", e)
    };
    let msg = trim_crlf(msg);
    let mut fin = Vec::with_capacity(code.len() + msg.len() + 1);
    fin.extend_from_slice(code);
    fin.push(b' ');
    fin.extend_from_slice(msg);
    unsafe {
        lua_newtable(l);
        push_bytes(l, b"err");
        push_bytes(l, &fin);
        lua_settable(l, -3);
    }
}

pub(crate) unsafe fn push_error(l: *mut lua_State, e: &str) {
    unsafe { push_error_buff(l, e.as_bytes()) }
}

/// sdstrim(s, "\r\n"): both ends.
fn trim_crlf(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && (s[a] == b'\r' || s[a] == b'\n') {
        a += 1;
    }
    while b > a && (s[b - 1] == b'\r' || s[b - 1] == b'\n') {
        b -= 1;
    }
    &s[a..b]
}

fn map_crlf(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Per-run state reachable from Lua through the registry.
struct Ctx {
    host: Option<*mut (dyn ScriptHost + 'static)>,
    resp: i32,
    rand: Lrand48,
    status: Arc<ScriptStatus>,
    start: Instant,
    busy_ms: u64,
    timed_out: bool,
    /// Sha of the running script, or the function's name (log lines).
    sha: String,
    /// Set while a library loads: what redis.register_function registered.
    loading: Option<Vec<Registered>>,
    load_timeout_ms: u64,
}

/// A function registered during a library load; `fref` is its callback in
/// the Lua registry of the state that ran the load.
struct Registered {
    info: FunctionInfo,
    fref: c_int,
}

/// What a run calls: an EVAL script (by sha) or a function (registry ref).
#[derive(Clone, Copy)]
enum Callee<'a> {
    Script(&'a str),
    Function(c_int),
}

unsafe fn ctx<'a>(l: *mut lua_State) -> &'a mut Ctx {
    unsafe {
        lua_getfield_(l, LUA_REGISTRYINDEX, CTX_KEY.as_ptr());
        let p = lua_touserdata(l, -1) as *mut Ctx;
        lua_pop(l, 1);
        &mut *p
    }
}

/// The scripting engine of one thread: a Lua 5.1 state set up like Redis's.
pub struct Engine {
    l: *mut lua_State,
    ctx: Box<Ctx>,
    /// Flush generation the Lua state belongs to.
    generation: u64,
    /// Scripts compiled into this state (sha -> script).
    compiled: HashMap<String, Arc<Script>>,
    gc_count: u32,
    /// The functions state (Redis keeps functions apart from EVAL's
    /// state); null until the first FCALL.
    fl: *mut lua_State,
    /// The library set compiled into `fl`, its generation and the
    /// registry refs of its functions.
    fset: Arc<LibrarySet>,
    fgen: u64,
    frefs: HashMap<String, c_int>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the states are owned by this engine and not running.
        unsafe {
            lua_close(self.l);
            if !self.fl.is_null() {
                lua_close(self.fl);
            }
        }
    }
}

impl Engine {
    pub fn new() -> Engine {
        let mut ctx = Box::new(Ctx {
            host: None,
            resp: 2,
            rand: Lrand48::default(),
            status: Arc::new(ScriptStatus::default()),
            start: Instant::now(),
            busy_ms: 5000,
            timed_out: false,
            sha: String::new(),
            loading: None,
            load_timeout_ms: 0,
        });
        let l = unsafe { new_state(&mut *ctx) };
        Engine {
            l,
            ctx,
            generation: Registry::global().generation(),
            compiled: HashMap::new(),
            gc_count: 0,
            fl: std::ptr::null_mut(),
            fset: Arc::new(LibrarySet::default()),
            fgen: 0,
            frefs: HashMap::new(),
        }
    }

    /// Shared status of this engine's running script (SCRIPT KILL, BUSY).
    pub fn status(&self) -> Arc<ScriptStatus> {
        self.ctx.status.clone()
    }

    /// lua-time-limit / busy-reply-threshold in ms (0: never interrupt).
    pub fn set_busy_threshold(&mut self, ms: u64) {
        self.ctx.busy_ms = ms;
    }

    /// Memory used by the Lua state in bytes (INFO used_memory_lua).
    pub fn memory(&self) -> usize {
        unsafe { lua_gc(self.l, LUA_GCCOUNT, 0) as usize * 1024 }
    }

    /// Memory used by the functions state in bytes (INFO used_memory_vm_functions).
    pub fn functions_memory(&self) -> usize {
        if self.fl.is_null() {
            return 0;
        }
        unsafe { lua_gc(self.fl, LUA_GCCOUNT, 0) as usize * 1024 }
    }

    /// Compiles a library (`code` with its `#!lua name=...` header) in a
    /// fresh functions state, as FUNCTION LOAD does before linking it.
    /// Errors are the reply text without `ERR `. `timeout_ms` 0: no limit.
    pub fn compile_library(&mut self, code: &Bytes, timeout_ms: u64) -> Result<Library, String> {
        let meta = functions::parse_meta(code)?;
        if !functions::valid_name(&meta.name) {
            return Err(functions::NAME_ERR.into());
        }
        if !meta.engine.eq_ignore_ascii_case(b"lua") {
            return Err(format!(
                "Engine '{}' not found",
                String::from_utf8_lossy(&meta.engine)
            ));
        }
        // SAFETY: a state of our own, closed before returning.
        let regs = unsafe {
            let l = new_function_state(&mut *self.ctx);
            let r = self.load_into(l, &code[meta.body..], timeout_ms);
            lua_close(l);
            r
        }?;
        if regs.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(Library {
            name: String::from_utf8_lossy(&meta.name).into_owned(),
            engine: "LUA",
            code: code.clone(),
            functions: regs.into_iter().map(|r| r.info).collect(),
        })
    }

    /// Runs a library's body in `l` with the library API as globals; the
    /// functions it registered, or Redis's error text.
    unsafe fn load_into(
        &mut self,
        l: *mut lua_State,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<Vec<Registered>, String> {
        unsafe {
            set_globals_index(l, LIBRARY_API);
            if luaL_loadbuffer(
                l,
                body.as_ptr() as *const c_char,
                body.len(),
                c"@user_function".as_ptr(),
            ) != 0
            {
                let msg = String::from_utf8_lossy(to_cstr_bytes(l, -1).unwrap_or(b"")).into_owned();
                lua_pop(l, 1);
                set_globals_index(l, GLOBALS_API);
                return Err(format!("Error compiling function: {msg}"));
            }
            self.ctx.loading = Some(Vec::new());
            self.ctx.start = Instant::now();
            self.ctx.load_timeout_ms = timeout_ms;
            lua_sethook(l, Some(load_hook), LUA_MASKCOUNT, 100_000);
            let failed = lua_pcall(l, 0, 0, 0) != 0;
            let regs = self.ctx.loading.take().unwrap_or_default();
            let r = if failed {
                let info = error_info(l);
                lua_pop(l, 1);
                for r in &regs {
                    luaL_unref(l, LUA_REGISTRYINDEX, r.fref);
                }
                Err(format!(
                    "Error registering functions: {}",
                    String::from_utf8_lossy(&info.msg)
                ))
            } else {
                Ok(regs)
            };
            lua_sethook(l, None, 0, 0);
            set_globals_index(l, GLOBALS_API);
            r
        }
    }

    /// Brings the functions state up to the current library set (after a
    /// FUNCTION LOAD/DELETE/FLUSH/RESTORE anywhere): a fresh state with
    /// every library loaded, as the set changed as a whole.
    fn sync_functions(&mut self) {
        let g = functions::generation();
        if g == self.fgen && !self.fl.is_null() {
            return;
        }
        let set = functions::current();
        unsafe {
            if !self.fl.is_null() {
                lua_gc(self.fl, LUA_GCCOLLECT, 0);
                lua_close(self.fl);
            }
            self.fl = new_function_state(&mut *self.ctx);
        }
        self.frefs.clear();
        for lib in set.libs.values() {
            let Ok(meta) = functions::parse_meta(&lib.code) else {
                continue;
            };
            // SAFETY: fl is this engine's, not running.
            match unsafe { self.load_into(self.fl, &lib.code[meta.body..], 0) } {
                Ok(regs) => {
                    for r in regs {
                        self.frefs.insert(r.info.name.to_ascii_lowercase(), r.fref);
                    }
                }
                Err(e) => crate::log::warning(&format!(
                    "Library {} failed to load on this thread: {e}",
                    lib.name
                )),
            }
        }
        self.fset = set;
        self.fgen = g;
    }

    /// The flags of function `name` (routing before the run).
    pub fn function_flags(name: &[u8]) -> Option<ScriptFlags> {
        let set = functions::current();
        let name = std::str::from_utf8(name).ok()?;
        set.function(name).map(|(_, f)| f.flags)
    }

    /// FCALL / FCALL_RO with the full argv (arity already checked).
    pub fn fcall_command(
        &mut self,
        args: &[Bytes],
        ro: bool,
        host: &mut dyn ScriptHost,
        out: &mut Out,
    ) {
        self.sync_functions();
        let name = String::from_utf8_lossy(&args[1]).into_owned();
        let Some((_, f)) = self.fset.function(&name) else {
            out.err("ERR Function not found");
            return;
        };
        let flags = f.flags;
        let Some(numkeys) = crate::commands::parse_i64(&args[2]) else {
            out.err("ERR Bad number of keys provided");
            return;
        };
        if numkeys > (args.len() - 3) as i64 {
            out.err("ERR Number of keys can't be greater than number of args");
            return;
        } else if numkeys < 0 {
            out.err("ERR Number of keys can't be negative");
            return;
        }
        if !self.flags_allow(flags, ro, host, out) {
            return;
        }
        let Some(&fref) = self.frefs.get(&name.to_ascii_lowercase()) else {
            out.err("ERR Function not found");
            return;
        };
        let nk = numkeys as usize;
        self.ctx.status.set_detail(&name, args, true);
        let l = self.fl;
        self.run(
            l,
            &name,
            &args[3..3 + nk],
            &args[3 + nk..],
            Callee::Function(fref),
            host,
            out,
        );
    }

    /// Redis's scriptPrepareForRun checks of declared flags.
    fn flags_allow(
        &self,
        flags: ScriptFlags,
        ro: bool,
        host: &mut dyn ScriptHost,
        out: &mut Out,
    ) -> bool {
        if flags.compat() {
            if host.stale() {
                out.err(
                    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                );
                return false;
            }
            return true;
        }
        if flags.has(ScriptFlags::NO_CLUSTER) && host.cluster_enabled() {
            out.err("ERR Can not run script on cluster, 'no-cluster' flag is set.");
            return false;
        }
        if host.stale() && !flags.has(ScriptFlags::ALLOW_STALE) {
            out.err("MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.");
            return false;
        }
        if !flags.has(ScriptFlags::NO_WRITES) && ro {
            out.err("ERR Can not execute a script with write flag using *_ro command.");
            return false;
        }
        if host.oom() && !flags.has(ScriptFlags::ALLOW_OOM | ScriptFlags::NO_WRITES) {
            out.err(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
            );
            return false;
        }
        true
    }

    /// Recreates the Lua state after SCRIPT FLUSH (Redis's scriptingReset).
    /// The math.random state is process-wide in Redis and survives.
    fn sync_generation(&mut self) {
        let g = Registry::global().generation();
        if g != self.generation {
            unsafe {
                // A full collection first, while the state is whole, as
                // Redis does before closing it (CVE-2024-46981).
                lua_gc(self.l, LUA_GCCOLLECT, 0);
                lua_close(self.l);
                self.l = new_state(&mut *self.ctx);
            }
            self.compiled.clear();
            self.generation = g;
        }
    }

    /// Looks a script up for EVALSHA (sha already lowercased, 40 chars).
    fn lookup(&mut self, sha: &str) -> Option<Arc<Script>> {
        self.sync_generation();
        if let Some(s) = self.compiled.get(sha) {
            return Some(s.clone());
        }
        Registry::global().get(sha)
    }

    /// Compiles `body` into this state as `f_<sha>` and registers it
    /// globally. Err is the full error reply text (without '-').
    fn create_function(&mut self, sha: &str, body: &Bytes) -> Result<Arc<Script>, String> {
        if let Some(s) = self.compiled.get(sha) {
            return Ok(s.clone());
        }
        let known = Registry::global().get(sha);
        let (flags, skip) = match &known {
            Some(s) => (s.flags, parse_shebang(&s.body).map(|x| x.1).unwrap_or(0)),
            None => parse_shebang(body).map_err(|e| format!("ERR {e}"))?,
        };
        let src = &body[skip..];
        let l = self.l;
        unsafe {
            if luaL_loadbuffer(
                l,
                src.as_ptr() as *const c_char,
                src.len(),
                c"@user_script".as_ptr(),
            ) != 0
            {
                let msg = to_cstr_bytes(l, -1).unwrap_or(b"").to_vec();
                lua_pop(l, 1);
                let mut e = b"Error compiling script (new function): ".to_vec();
                e.extend_from_slice(&msg);
                return Err(format!(
                    "ERR {}",
                    String::from_utf8_lossy(&map_crlf(trim_crlf(&e)))
                ));
            }
            let name = std::ffi::CString::new(format!("f_{sha}")).unwrap();
            lua_setfield(l, LUA_REGISTRYINDEX, name.as_ptr());
        }
        let script = match known {
            Some(s) => s,
            None => Registry::global().insert(Script {
                sha: sha.to_string(),
                body: body.clone(),
                flags,
            }),
        };
        self.compiled.insert(sha.to_string(), script.clone());
        Ok(script)
    }

    /// SCRIPT LOAD: compiles and registers; returns the sha or the error text.
    pub fn script_load(&mut self, body: &Bytes) -> Result<String, String> {
        self.sync_generation();
        let sha = sha1hex(body);
        if Registry::global().get(&sha).is_some() {
            return Ok(sha);
        }
        self.create_function(&sha, body).map(|s| s.sha.clone())
    }

    /// SCRIPT subcommands LOAD, EXISTS, FLUSH and HELP (`args[0]` is
    /// "script"), plus Redis's arity and unknown-subcommand errors. Returns
    /// false, without replying, for KILL and DEBUG: KILL needs the running
    /// engine's [`ScriptStatus`] (server side), DEBUG (the Lua debugger) is
    /// not implemented.
    pub fn script_command(&mut self, args: &[Bytes], out: &mut Out) -> bool {
        let sub = args
            .get(1)
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        let arity_ok = match sub.as_slice() {
            b"help" | b"kill" => args.len() == 2,
            b"flush" => (2..=3).contains(&args.len()),
            b"exists" => args.len() >= 3,
            b"load" | b"debug" => args.len() == 3,
            _ => {
                out.err(&format!(
                    "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                    String::from_utf8_lossy(args.get(1).map(|a| &a[..]).unwrap_or(b""))
                ));
                return true;
            }
        };
        if !arity_ok {
            out.err(&format!(
                "ERR wrong number of arguments for 'script|{}' command",
                String::from_utf8_lossy(&sub)
            ));
            return true;
        }
        match (sub.as_slice(), args.len()) {
            (b"help", 2) => {
                out.array(SCRIPT_HELP.len());
                for h in SCRIPT_HELP {
                    out.simple(h);
                }
            }
            (b"flush", 2 | 3) => {
                if args.len() == 3
                    && !args[2].eq_ignore_ascii_case(b"sync")
                    && !args[2].eq_ignore_ascii_case(b"async")
                {
                    out.err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                    return true;
                }
                Registry::global().flush();
                self.sync_generation();
                out.ok();
            }
            (b"exists", n) => {
                out.array(n - 2);
                let r = Registry::global();
                for a in &args[2..] {
                    out.int(r.exists(a) as i64);
                }
            }
            (b"load", 3) => match self.script_load(&args[2]) {
                Ok(sha) => out.bulk(sha.as_bytes()),
                Err(e) => out.err(&e),
            },
            _ => return false,
        }
        true
    }

    /// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO with the full argv (arity
    /// already checked): `is_sha` for the EVALSHA forms, `ro` for the _RO ones.
    pub fn eval_command(
        &mut self,
        args: &[Bytes],
        is_sha: bool,
        ro: bool,
        host: &mut dyn ScriptHost,
        out: &mut Out,
    ) {
        let numkeys = match crate::util::parse_i64(&args[2]) {
            Some(n) => n,
            None => {
                out.err("ERR value is not an integer or out of range");
                return;
            }
        };
        if is_sha && args[1].len() != 40 {
            out.err(NOSCRIPT_ERR);
            return;
        }
        if numkeys > (args.len() - 3) as i64 {
            out.err("ERR Number of keys can't be greater than number of args");
            return;
        } else if numkeys < 0 {
            out.err("ERR Number of keys can't be negative");
            return;
        }
        let nk = numkeys as usize;
        let keys = &args[3..3 + nk];
        let argv = &args[3 + nk..];
        self.ctx.status.set_detail("", args, false);
        if is_sha {
            let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            match self.lookup(&sha) {
                Some(s) => {
                    let body = s.body.clone();
                    self.eval(&sha, &body, keys, argv, ro, host, out)
                }
                None => out.err(NOSCRIPT_ERR),
            }
        } else {
            let sha = sha1hex(&args[1]);
            self.eval(&sha, &args[1], keys, argv, ro, host, out)
        }
    }

    /// Runs the script `body` (whose sha1 is `sha`) with KEYS and ARGV and
    /// writes the reply into `out` (RESP2/3 per `out.resp3`). Compiles and
    /// registers the script first when needed (EVAL).
    #[allow(clippy::too_many_arguments)]
    pub fn eval(
        &mut self,
        sha: &str,
        body: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        ro: bool,
        host: &mut dyn ScriptHost,
        out: &mut Out,
    ) {
        self.sync_generation();
        let script = match self.compiled.get(sha) {
            Some(s) => s.clone(),
            None => match self.create_function(sha, &Bytes::copy_from_slice(body)) {
                Ok(s) => s,
                Err(e) => {
                    out.err(&e);
                    return;
                }
            },
        };
        if !self.flags_allow(script.flags, ro, host, out) {
            return;
        }
        let l = self.l;
        self.run(l, sha, keys, argv, Callee::Script(sha), host, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        l: *mut lua_State,
        sha: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        callee: Callee,
        host: &mut dyn ScriptHost,
        out: &mut Out,
    ) {
        // SAFETY: the host outlives this call; the pointer is cleared below
        // before returning, so Lua never sees a dangling host.
        let host_ptr: *mut (dyn ScriptHost + '_) = host;
        let host_ptr: *mut (dyn ScriptHost + 'static) = unsafe { std::mem::transmute(host_ptr) };
        self.ctx.host = Some(host_ptr);
        self.ctx.resp = 2;
        self.ctx.start = Instant::now();
        self.ctx.timed_out = false;
        self.ctx.sha.clear();
        self.ctx.sha.push_str(sha);
        self.ctx.status.begin();
        unsafe {
            lua_getglobal_(l, c"__redis__err__handler".as_ptr());
            let nargs = match callee {
                Callee::Script(sha) => {
                    let fname = std::ffi::CString::new(format!("f_{sha}")).unwrap();
                    lua_getfield_(l, LUA_REGISTRYINDEX, fname.as_ptr());
                    0
                }
                Callee::Function(r) => {
                    lua_rawgeti_(l, LUA_REGISTRYINDEX, r);
                    2
                }
            };
            if self.ctx.busy_ms > 0 {
                lua_sethook(l, Some(count_hook), LUA_MASKCOUNT, 100_000);
            }
            for (name, list) in [(c"KEYS", keys), (c"ARGV", argv)] {
                lua_createtable(l, list.len() as c_int, 0);
                for (j, a) in list.iter().enumerate() {
                    push_bytes(l, a);
                    lua_rawseti_(l, -2, j as c_int + 1);
                }
                // EVAL: as globals; functions: as the two arguments.
                if nargs == 0 {
                    lua_enablereadonlytable(l, LUA_GLOBALSINDEX, 0);
                    lua_setfield(l, LUA_GLOBALSINDEX, name.as_ptr());
                    lua_enablereadonlytable(l, LUA_GLOBALSINDEX, 1);
                }
            }
            let err = lua_pcall(l, nargs, 1, -2 - nargs);
            self.gc_count += 1;
            if self.gc_count == 50 {
                lua_gc(l, LUA_GCSTEP, 50);
                self.gc_count = 0;
            }
            let script_resp = self.ctx.resp;
            if err != 0 {
                error_reply(l, &self.ctx.sha, out);
                lua_pop(l, 1);
            } else {
                let mut w = Vec::new();
                lua_to_resp(l, &mut w, out.resp3, script_resp);
                out.raw(&w);
            }
            lua_pop(l, 1); // the error handler
            lua_sethook(l, None, 0, 0);
        }
        self.ctx.host = None;
        self.ctx.status.end();
    }
}

/// Redis's error reply for a failed run (luaCallFunction).
unsafe fn error_reply(l: *mut lua_State, sha: &str, out: &mut Out) {
    unsafe {
        if lua_type(l, -1) != LUA_TTABLE {
            let msg = if lua_isstring(l, -1) != 0 {
                to_cstr_bytes(l, -1).unwrap_or(b"").to_vec()
            } else {
                b"execution failure".to_vec()
            };
            let msg = &msg[..msg.len().min(100)];
            let mut e = format!("Error running script {sha}, ").into_bytes();
            e.extend_from_slice(msg);
            let mut line = b"ERR ".to_vec();
            line.extend_from_slice(trim_crlf(&e));
            crate::protocol::err_line(&mut out.buf, &line);
            return;
        }
        let info = error_info(l);
        let mut e = vec![b'-'];
        e.extend_from_slice(&info.msg);
        if let (Some(line), Some(source)) = (&info.line, &info.source) {
            e.extend_from_slice(b" script: ");
            e.extend_from_slice(sha.as_bytes());
            e.extend_from_slice(b", on ");
            e.extend_from_slice(source);
            e.push(b':');
            e.extend_from_slice(line);
            e.push(b'.');
        }
        // addReplyErrorFormat("-%s ..."): trimmed after the '-' is in
        // front, newlines become spaces (the packaged 7.0.15 does so;
        // upstream 7.0.15 sent them raw and broke the protocol).
        crate::protocol::err_line(&mut out.buf, &trim_crlf(&e)[1..]);
    }
}

struct ErrInfo {
    msg: Vec<u8>,
    source: Option<Vec<u8>>,
    line: Option<Vec<u8>>,
}

/// luaExtractErrorInformation on the value at the top.
unsafe fn error_info(l: *mut lua_State) -> ErrInfo {
    unsafe {
        let mut info = ErrInfo {
            msg: Vec::new(),
            source: None,
            line: None,
        };
        if lua_isstring(l, -1) != 0 {
            info.msg = b"ERR ".to_vec();
            info.msg
                .extend_from_slice(to_cstr_bytes(l, -1).unwrap_or(b""));
        }
        let field = |k: &CStr| -> Option<Vec<u8>> {
            lua_getfield_(l, -1, k.as_ptr());
            let r = if lua_isstring(l, -1) != 0 {
                Some(to_cstr_bytes(l, -1).unwrap_or(b"").to_vec())
            } else {
                None
            };
            lua_pop(l, 1);
            r
        };
        if let Some(m) = field(c"err") {
            info.msg = m;
        }
        info.source = field(c"source");
        info.line = field(c"line");
        info
    }
}

/// luaReplyToRedisReply: converts and pops the top value.
unsafe fn lua_to_resp(l: *mut lua_State, w: &mut Vec<u8>, resp3: bool, script_resp: i32) {
    unsafe {
        if lua_checkstack(l, 4) == 0 {
            w.extend_from_slice(b"-ERR reached lua stack limit\r\n");
            lua_pop(l, 1);
            return;
        }
        match lua_type(l, -1) {
            LUA_TSTRING => {
                let b = to_bytes(l, -1).unwrap_or(b"");
                bulk(w, b);
            }
            LUA_TBOOLEAN => {
                let b = lua_toboolean(l, -1) != 0;
                if script_resp == 2 {
                    if b {
                        w.extend_from_slice(b":1\r\n");
                    } else {
                        null(w, resp3);
                    }
                } else if resp3 {
                    w.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    w.extend_from_slice(if b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            LUA_TNUMBER => {
                let n = d2ll(lua_tonumber(l, -1));
                w.extend_from_slice(format!(":{n}\r\n").as_bytes());
            }
            LUA_TTABLE => {
                table_to_resp(l, w, resp3, script_resp);
                return;
            }
            _ => null(w, resp3),
        }
        lua_pop(l, 1);
    }
}

fn null(w: &mut Vec<u8>, resp3: bool) {
    w.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
}

fn bulk(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    w.extend_from_slice(b);
    w.extend_from_slice(b"\r\n");
}

/// Pushes t[k] (raw) and returns its type.
unsafe fn rawget_str(l: *mut lua_State, idx: c_int, k: &[u8]) -> c_int {
    unsafe {
        push_bytes(l, k);
        lua_rawget_(l, idx - 1);
        lua_type(l, -1)
    }
}

unsafe fn table_to_resp(l: *mut lua_State, w: &mut Vec<u8>, resp3: bool, script_resp: i32) {
    unsafe {
        if rawget_str(l, -1, b"err") == LUA_TSTRING {
            lua_pop(l, 1);
            let info = error_info(l);
            // addReplyErrorFormatEx("-%s"): trimmed with the '-' in front
            // (so a leading CR/LF stays, as a space), newlines mapped.
            let mut e = vec![b'-'];
            e.extend_from_slice(&info.msg);
            crate::protocol::err_line(w, &trim_crlf(&e)[1..]);
            lua_pop(l, 1);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"ok") == LUA_TSTRING {
            let s = map_crlf(to_cstr_bytes(l, -1).unwrap_or(b""));
            w.push(b'+');
            w.extend_from_slice(&s);
            w.extend_from_slice(b"\r\n");
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"double") == LUA_TNUMBER {
            let d = lua_tonumber(l, -1);
            double(w, d, resp3);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"big_number") == LUA_TSTRING {
            let s = map_crlf(to_bytes(l, -1).unwrap_or(b""));
            if resp3 {
                w.push(b'(');
                w.extend_from_slice(&s);
                w.extend_from_slice(b"\r\n");
            } else {
                bulk(w, &s);
            }
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"verbatim_string") == LUA_TTABLE {
            if rawget_str(l, -1, b"format") == LUA_TSTRING {
                let fmt = to_cstr_bytes(l, -1).unwrap_or(b"").to_vec();
                if rawget_str(l, -2, b"string") == LUA_TSTRING {
                    let s = to_bytes(l, -1).unwrap_or(b"");
                    if resp3 {
                        w.extend_from_slice(format!("={}\r\n", s.len() + 4).as_bytes());
                        for i in 0..3 {
                            w.push(*fmt.get(i).unwrap_or(&b' '));
                        }
                        w.push(b':');
                        w.extend_from_slice(s);
                        w.extend_from_slice(b"\r\n");
                    } else {
                        bulk(w, s);
                    }
                    lua_pop(l, 4);
                    return;
                }
                lua_pop(l, 1);
            }
            lua_pop(l, 1);
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"map") == LUA_TTABLE {
            let mut body = Vec::new();
            let mut n = 0usize;
            lua_pushnil(l);
            while lua_next(l, -2) != 0 {
                lua_pushvalue(l, -2);
                lua_to_resp(l, &mut body, resp3, script_resp);
                lua_to_resp(l, &mut body, resp3, script_resp);
                n += 1;
            }
            if resp3 {
                w.extend_from_slice(format!("%{n}\r\n").as_bytes());
            } else {
                w.extend_from_slice(format!("*{}\r\n", n * 2).as_bytes());
            }
            w.extend_from_slice(&body);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"set") == LUA_TTABLE {
            let mut body = Vec::new();
            let mut n = 0usize;
            lua_pushnil(l);
            while lua_next(l, -2) != 0 {
                lua_pop(l, 1);
                lua_pushvalue(l, -1);
                lua_to_resp(l, &mut body, resp3, script_resp);
                n += 1;
            }
            w.extend_from_slice(format!("{}{n}\r\n", if resp3 { '~' } else { '*' }).as_bytes());
            w.extend_from_slice(&body);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        // Array: stops at the first nil.
        let mut body = Vec::new();
        let mut j = 1;
        loop {
            lua_pushnumber(l, j as f64);
            lua_rawget_(l, -2);
            if lua_type(l, -1) == LUA_TNIL {
                lua_pop(l, 1);
                break;
            }
            lua_to_resp(l, &mut body, resp3, script_resp);
            j += 1;
        }
        w.extend_from_slice(format!("*{}\r\n", j - 1).as_bytes());
        w.extend_from_slice(&body);
        lua_pop(l, 1);
    }
}

fn double(w: &mut Vec<u8>, d: f64, resp3: bool) {
    if d.is_infinite() {
        let s: &[u8] = if d > 0.0 { b"inf" } else { b"-inf" };
        if resp3 {
            w.push(b',');
            w.extend_from_slice(s);
            w.extend_from_slice(b"\r\n");
        } else {
            bulk(w, s);
        }
    } else {
        let s = fmt_g(d, 17);
        if resp3 {
            w.push(b',');
            w.extend_from_slice(s.as_bytes());
            w.extend_from_slice(b"\r\n");
        } else {
            bulk(w, s.as_bytes());
        }
    }
}

/// Builds a sandboxed state like Redis's scriptingInit.
unsafe fn new_state(ctx: *mut Ctx) -> *mut lua_State {
    unsafe {
        let l = luaL_newstate();
        lua_pushlightuserdata(l, ctx as *mut c_void);
        lua_setfield(l, LUA_REGISTRYINDEX, CTX_KEY.as_ptr());

        // While loading libraries, only allow-listed globals may be created.
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_newtable(l);
        set_fn(l, c"__newindex", g_newindex_allow);
        lua_setmetatable(l, -2);
        lua_pop(l, 1);

        let libs: [(&CStr, lua_CFunction); 9] = [
            (c"", luaopen_base),
            (c"table", luaopen_table),
            (c"string", luaopen_string),
            (c"math", luaopen_math),
            (c"debug", luaopen_debug),
            (c"cjson", super::libs::cjson::open),
            (c"struct", super::libs::structlib::open),
            (c"cmsgpack", super::libs::cmsgpack::open),
            (c"bit", super::libs::bit::open),
        ];
        for (name, f) in libs {
            lua_pushcfunction(l, f);
            lua_pushstring_(l, name.as_ptr());
            lua_call(l, 1, 0);
        }

        lua_pushcfunction(l, g_pcall);
        lua_setfield(l, LUA_GLOBALSINDEX, c"pcall".as_ptr());

        lua_newtable(l);
        set_fn(l, c"call", r_call);
        set_fn(l, c"pcall", r_pcall);
        set_fn(l, c"log", r_log);
        set_num(l, c"LOG_DEBUG", 0.0);
        set_num(l, c"LOG_VERBOSE", 1.0);
        set_num(l, c"LOG_NOTICE", 2.0);
        set_num(l, c"LOG_WARNING", 3.0);
        set_num(l, c"REDIS_VERSION_NUM", REDIS_VERSION_NUM);
        push_bytes(l, crate::REDIS_VERSION.as_bytes());
        lua_setfield(l, -2, c"REDIS_VERSION".as_ptr());
        set_fn(l, c"setresp", r_setresp);
        set_fn(l, c"sha1hex", r_sha1hex);
        set_fn(l, c"error_reply", r_error_reply);
        set_fn(l, c"status_reply", r_status_reply);
        set_fn(l, c"set_repl", r_set_repl);
        set_num(l, c"REPL_NONE", 0.0);
        set_num(l, c"REPL_AOF", 1.0);
        set_num(l, c"REPL_SLAVE", 2.0);
        set_num(l, c"REPL_REPLICA", 2.0);
        set_num(l, c"REPL_ALL", 3.0);
        set_fn(l, c"acl_check_cmd", r_acl_check_cmd);
        set_fn(l, c"breakpoint", r_breakpoint);
        set_fn(l, c"debug", r_debug);
        set_fn(l, c"replicate_commands", r_replicate_commands);
        lua_setfield(l, LUA_GLOBALSINDEX, c"redis".as_ptr());

        lua_getfield_(l, LUA_GLOBALSINDEX, c"math".as_ptr());
        set_fn(l, c"random", m_random);
        set_fn(l, c"randomseed", m_randomseed);
        lua_pop(l, 1);

        // The pcall error handler: turns any error into a table carrying the
        // position of the Lua code that failed (the caller of a C function).
        let handler = b"local dbg = debug\n\
            debug = nil\n\
            function __redis__err__handler(err)\n\
            \x20 local i = dbg.getinfo(2, 'nSl')\n\
            \x20 if i and i.what == 'C' then i = dbg.getinfo(3, 'nSl') end\n\
            \x20 if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end\n\
            \x20 if i then\n\
            \x20   err['source'] = i.source\n\
            \x20   err['line'] = i.currentline\n\
            \x20 end\n\
            \x20 return err\n\
            end\n";
        luaL_loadbuffer(
            l,
            handler.as_ptr() as *const c_char,
            handler.len(),
            c"@err_handler_def".as_ptr(),
        );
        lua_pcall(l, 0, 0, 0);

        // Lock the globals: reading a missing one errors, and every table
        // reachable from _G (and their metatables) becomes read-only.
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_newtable(l);
        set_fn(l, c"__index", g_missing_global);
        lua_setmetatable(l, -2);
        protect_recursively(l);
        lua_pop(l, 1);
        // The string metatable is locked too (Redis security fix for
        // metatable tampering, present in the packaged 7.0.15).
        push_bytes(l, b"");
        if lua_getmetatable(l, -1) != 0 {
            protect_recursively(l);
            lua_pop(l, 1);
        }
        lua_pop(l, 1);
        l
    }
}

/// The functions state, as Redis's luaEngineInitEngine: the full API, a
/// library API (`redis.register_function`, `redis.log`, the versions) that
/// a library load sees as its globals, and fresh read-only globals whose
/// `__index` switches between the two.
unsafe fn new_function_state(ctx: *mut Ctx) -> *mut lua_State {
    unsafe {
        let l = new_state(ctx);
        lua_newtable(l); // the load's globals
        lua_newtable(l); // its `redis`
        set_fn(l, c"register_function", r_register_function);
        set_fn(l, c"log", r_log);
        set_num(l, c"LOG_DEBUG", 0.0);
        set_num(l, c"LOG_VERBOSE", 1.0);
        set_num(l, c"LOG_NOTICE", 2.0);
        set_num(l, c"LOG_WARNING", 3.0);
        set_num(l, c"REDIS_VERSION_NUM", REDIS_VERSION_NUM);
        push_bytes(l, crate::REDIS_VERSION.as_bytes());
        lua_setfield(l, -2, c"REDIS_VERSION".as_ptr());
        set_error_metatable(l);
        lua_setfield(l, -2, c"redis".as_ptr());
        set_error_metatable(l);
        protect_recursively(l);
        lua_setfield(l, LUA_REGISTRYINDEX, LIBRARY_API.as_ptr());

        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_setfield(l, LUA_REGISTRYINDEX, GLOBALS_API.as_ptr());

        lua_newtable(l); // new globals
        lua_newtable(l); // their metatable
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_setfield(l, -2, c"__index".as_ptr());
        lua_enablereadonlytable(l, -1, 1);
        lua_setmetatable(l, -2);
        lua_enablereadonlytable(l, -1, 1);
        lua_replace(l, LUA_GLOBALSINDEX);
        l
    }
}

/// A metatable on the table at the top whose `__index` raises Redis's
/// "nonexistent global variable" error.
unsafe fn set_error_metatable(l: *mut lua_State) {
    unsafe {
        lua_newtable(l);
        set_fn(l, c"__index", g_missing_global);
        lua_setmetatable(l, -2);
    }
}

/// Points the globals' `__index` at the registry table `key`.
unsafe fn set_globals_index(l: *mut lua_State, key: &CStr) {
    unsafe {
        if lua_getmetatable(l, LUA_GLOBALSINDEX) == 0 {
            return;
        }
        lua_enablereadonlytable(l, -1, 0);
        lua_getfield_(l, LUA_REGISTRYINDEX, key.as_ptr());
        lua_setfield(l, -2, c"__index".as_ptr());
        lua_enablereadonlytable(l, -1, 1);
        lua_pop(l, 1);
    }
}

/// FUNCTION LOAD's time limit.
unsafe extern "C-unwind" fn load_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    unsafe {
        let c = ctx(l);
        if c.load_timeout_ms > 0 && c.start.elapsed().as_millis() as u64 > c.load_timeout_ms {
            lua_sethook(l, Some(load_hook), LUA_MASKLINE, 0);
            push_error(l, "FUNCTION LOAD timeout");
            lua_error(l);
        }
    }
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=, callback=, flags=, description=}`.
unsafe fn r_register_function_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.loading.is_none() {
            push_error(
                l,
                "redis.register_function can only be called on FUNCTION LOAD command",
            );
            return Err(LErr::Top);
        }
        let argc = lua_gettop(l);
        if !(1..=2).contains(&argc) {
            push_error(l, "wrong number of arguments to redis.register_function");
            return Err(LErr::Top);
        }
        let read = if argc == 1 {
            register_named_args(l)
        } else {
            register_positional_args(l)
        };
        let (name, desc, flags, fref) = match read {
            Ok(r) => r,
            Err(e) => {
                push_error(l, e);
                return Err(LErr::Top);
            }
        };
        let regs = c.loading.as_mut().expect("checked above");
        let err = if !functions::valid_name(&name) {
            Some(functions::NAME_ERR)
        } else if regs.iter().any(|r| r.info.name.as_bytes() == &name[..]) {
            Some("Function already exists in the library")
        } else {
            None
        };
        if let Some(e) = err {
            luaL_unref(l, LUA_REGISTRYINDEX, fref);
            drop((name, desc));
            push_error(l, e);
            return Err(LErr::Top);
        }
        regs.push(Registered {
            info: FunctionInfo {
                name: String::from_utf8_lossy(&name).into_owned(),
                desc: desc.map(Bytes::from),
                flags: ScriptFlags(flags),
            },
            fref,
        });
        Ok(0)
    }
}
cfn!(r_register_function, r_register_function_);

type RegisterArgs = (Vec<u8>, Option<Vec<u8>>, u8, c_int);

unsafe fn register_positional_args(l: *mut lua_State) -> Result<RegisterArgs, &'static str> {
    unsafe {
        if lua_isstring(l, 1) == 0 {
            return Err("first argument to redis.register_function must be a string");
        }
        let name = to_bytes(l, 1).unwrap_or(b"").to_vec();
        if lua_type(l, 2) != LUA_TFUNCTION {
            return Err("second argument to redis.register_function must be a function");
        }
        let fref = luaL_ref(l, LUA_REGISTRYINDEX);
        Ok((name, None, 0, fref))
    }
}

unsafe fn register_named_args(l: *mut lua_State) -> Result<RegisterArgs, &'static str> {
    unsafe {
        if lua_type(l, 1) != LUA_TTABLE {
            return Err(
                "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
            );
        }
        let mut name = None;
        let mut desc = None;
        let mut flags = 0u8;
        let mut fref: Option<c_int> = None;
        let fail = |l: *mut lua_State, fref: Option<c_int>, e: &'static str| {
            if let Some(r) = fref {
                luaL_unref(l, LUA_REGISTRYINDEX, r);
            }
            Err(e)
        };
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            if lua_isstring(l, -2) == 0 {
                return fail(
                    l,
                    fref,
                    "named argument key given to redis.register_function is not a string",
                );
            }
            let key = to_cstr_bytes(l, -2).unwrap_or(b"").to_ascii_lowercase();
            match key.as_slice() {
                b"function_name" => {
                    if lua_isstring(l, -1) == 0 {
                        return fail(
                            l,
                            fref,
                            "function_name argument given to redis.register_function must be a string",
                        );
                    }
                    name = Some(to_bytes(l, -1).unwrap_or(b"").to_vec());
                }
                b"description" => {
                    if lua_isstring(l, -1) == 0 {
                        return fail(
                            l,
                            fref,
                            "description argument given to redis.register_function must be a string",
                        );
                    }
                    desc = Some(to_bytes(l, -1).unwrap_or(b"").to_vec());
                }
                b"callback" => {
                    if lua_type(l, -1) != LUA_TFUNCTION {
                        return fail(
                            l,
                            fref,
                            "callback argument given to redis.register_function must be a function",
                        );
                    }
                    if let Some(old) = fref {
                        luaL_unref(l, LUA_REGISTRYINDEX, old);
                    }
                    fref = Some(luaL_ref(l, LUA_REGISTRYINDEX));
                    continue; // luaL_ref popped the value
                }
                b"flags" => {
                    if lua_type(l, -1) != LUA_TTABLE {
                        return fail(
                            l,
                            fref,
                            "flags argument to redis.register_function must be a table representing function flags",
                        );
                    }
                    match read_flags(l) {
                        Some(f) => flags = f,
                        None => return fail(l, fref, "unknown flag given"),
                    }
                }
                _ => return fail(l, fref, "unknown argument given to redis.register_function"),
            }
            lua_pop(l, 1);
        }
        let Some(name) = name else {
            return fail(
                l,
                fref,
                "redis.register_function must get a function name argument",
            );
        };
        let Some(fref) = fref else {
            return Err("redis.register_function must get a callback argument");
        };
        Ok((name, desc, flags, fref))
    }
}

/// The flags table at the top: a list of flag names.
unsafe fn read_flags(l: *mut lua_State) -> Option<u8> {
    unsafe {
        let mut flags = 0u8;
        let mut j = 1;
        loop {
            lua_pushnumber(l, j as lua_Number);
            lua_gettable(l, -2);
            j += 1;
            match lua_type(l, -1) {
                LUA_TNIL => {
                    lua_pop(l, 1);
                    return Some(flags);
                }
                _ if lua_isstring(l, -1) == 0 => {
                    lua_pop(l, 1);
                    return None;
                }
                _ => {}
            }
            let bit = functions::flag_bit(to_cstr_bytes(l, -1).unwrap_or(b""));
            lua_pop(l, 1);
            flags |= bit?;
        }
    }
}

unsafe fn protect_recursively(l: *mut lua_State) {
    unsafe {
        if lua_isreadonlytable(l, -1) != 0 {
            return;
        }
        lua_enablereadonlytable(l, -1, 1);
        lua_checkstack(l, 2);
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            if lua_type(l, -1) == LUA_TTABLE {
                protect_recursively(l);
            }
            lua_pop(l, 1);
        }
        if lua_getmetatable(l, -1) != 0 {
            protect_recursively(l);
            lua_pop(l, 1);
        }
    }
}

/// Redis's globals allow list (getfenv, setfenv and newproxy were dropped by
/// a later security fix the packaged 7.0.15 carries).
const GLOBALS_ALLOWED: &[&[u8]] = &[
    b"string",
    b"cjson",
    b"bit",
    b"cmsgpack",
    b"math",
    b"table",
    b"struct",
    b"redis",
    b"__redis__err__handler",
    b"xpcall",
    b"tostring",
    b"setmetatable",
    b"next",
    b"assert",
    b"tonumber",
    b"rawequal",
    b"collectgarbage",
    b"getmetatable",
    b"rawset",
    b"pcall",
    b"coroutine",
    b"type",
    b"_G",
    b"select",
    b"unpack",
    b"gcinfo",
    b"pairs",
    b"rawget",
    b"loadstring",
    b"ipairs",
    b"_VERSION",
    b"load",
    b"error",
    b"debug",
];

unsafe fn g_newindex_allow_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 3 {
            return Err(LErr::Msg(
                "Wrong number of arguments to luaNewIndexAllowList".into(),
            ));
        }
        if lua_type(l, -3) != LUA_TTABLE {
            return Err(LErr::Msg(
                "first argument to luaNewIndexAllowList must be a table".into(),
            ));
        }
        if lua_isstring(l, -2) == 0 {
            return Err(LErr::Msg(
                "Second argument to luaNewIndexAllowList must be a string or number".into(),
            ));
        }
        let name = to_cstr_bytes(l, -2).unwrap_or(b"");
        if GLOBALS_ALLOWED.contains(&name) {
            lua_rawset(l, -3);
        }
        // Others (print, dofile, loadfile...) are silently left out.
        Ok(0)
    }
}
cfn!(g_newindex_allow, g_newindex_allow_);

unsafe fn g_missing_global_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 2 {
            return Err(LErr::Msg(
                "Wrong number of arguments to luaProtectedTableError".into(),
            ));
        }
        if lua_isstring(l, -1) == 0 {
            return Err(LErr::Msg(
                "Second argument to luaProtectedTableError must be a string or number".into(),
            ));
        }
        let name = String::from_utf8_lossy(to_cstr_bytes(l, -1).unwrap_or(b"")).into_owned();
        Err(LErr::Msg(format!(
            "Script attempted to access nonexistent global variable '{name}'"
        )))
    }
}
cfn!(g_missing_global, g_missing_global_);

/// The global `pcall`: Redis 7 errors are tables; pcall hands back their
/// `err` string as earlier versions did.
unsafe extern "C-unwind" fn g_pcall(l: *mut lua_State) -> c_int {
    unsafe {
        let argc = lua_gettop(l);
        if argc == 0 {
            lua_pushboolean(l, 0);
            // Redis's version calls the slot past the stack top, which holds
            // the placeholder boolean.
            push_bytes(l, b"attempt to call a boolean value");
            return 2;
        }
        lua_pushboolean(l, 1);
        lua_insert(l, 1);
        if lua_pcall(l, argc - 1, LUA_MULTRET, 0) != 0 {
            lua_remove(l, 1);
            if lua_type(l, -1) == LUA_TTABLE {
                lua_getfield_(l, -1, c"err".as_ptr());
                if lua_isstring(l, -1) != 0 {
                    lua_replace(l, -2);
                } else {
                    lua_pop(l, 1);
                }
            }
            lua_pushboolean(l, 0);
            lua_insert(l, 1);
        }
        lua_gettop(l)
    }
}

/// Arguments of redis.call & co as a command argv (numbers as %.17g).
unsafe fn lua_args(l: *mut lua_State) -> Result<Vec<Bytes>, &'static str> {
    unsafe {
        let argc = lua_gettop(l);
        if argc == 0 {
            return Err("Please specify at least one argument for this redis lib call");
        }
        let mut args = Vec::with_capacity(argc as usize);
        for j in 1..=argc {
            if lua_type(l, j) == LUA_TNUMBER {
                args.push(Bytes::from(fmt_g(lua_tonumber(l, j), 17)));
            } else {
                match to_bytes(l, j) {
                    Some(b) => args.push(Bytes::copy_from_slice(b)),
                    None => break,
                }
            }
        }
        lua_settop(l, 0);
        if args.len() != argc as usize {
            return Err("Lua redis lib command arguments must be strings or integers");
        }
        Ok(args)
    }
}

unsafe fn redis_generic(l: *mut lua_State, raise_error: bool) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        let Some(host) = c.host else {
            push_error(
                l,
                "redis.call/pcall can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        let args = match lua_args(l) {
            Ok(a) => a,
            Err(e) => {
                push_error(l, e);
                return if raise_error { Err(LErr::Top) } else { Ok(1) };
            }
        };
        let resp3 = c.resp == 3;
        let host = &mut *host;
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.call(&args, resp3)))
                .unwrap_or_else(|_| Err("command panicked".to_string()));
        drop(args);
        let is_err = match res {
            Err(e) => {
                push_error(l, &e);
                set_bool_field(l, c"ignore_error_stats_update", true);
                true
            }
            Ok(reply) => {
                super::resp::push_reply(l, &reply);
                reply.first() == Some(&b'-')
            }
        };
        if raise_error && is_err {
            Err(LErr::Top)
        } else {
            Ok(1)
        }
    }
}

unsafe fn r_call_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe { redis_generic(l, true) }
}
unsafe fn r_pcall_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe { redis_generic(l, false) }
}
cfn!(r_call, r_call_);
cfn!(r_pcall, r_pcall_);

unsafe fn r_sha1hex_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 1 {
            push_error(l, "wrong number of arguments");
            return Err(LErr::Top);
        }
        let h = sha1hex(to_bytes(l, 1).unwrap_or(b""));
        push_bytes(l, h.as_bytes());
        Ok(1)
    }
}
cfn!(r_sha1hex, r_sha1hex_);

unsafe extern "C-unwind" fn r_error_reply(l: *mut lua_State) -> c_int {
    unsafe {
        if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
            push_error(l, "wrong number or type of arguments");
            return 1;
        }
        let e = to_cstr_bytes(l, -1).unwrap_or(b"");
        if e.first() == Some(&b'-') {
            let e = e.to_vec();
            push_error_buff(l, &e);
        } else {
            let mut v = vec![b'-'];
            v.extend_from_slice(e);
            push_error_buff(l, &v);
        }
        1
    }
}

unsafe extern "C-unwind" fn r_status_reply(l: *mut lua_State) -> c_int {
    unsafe {
        if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
            push_error(l, "wrong number or type of arguments");
            return 1;
        }
        lua_newtable(l);
        push_bytes(l, b"ok");
        lua_pushvalue(l, -3);
        lua_settable(l, -3);
        1
    }
}

unsafe fn r_log_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let argc = lua_gettop(l);
        if argc < 2 {
            push_error(l, "redis.log() requires two arguments or more.");
            return Err(LErr::Top);
        }
        if lua_isnumber(l, -argc) == 0 {
            push_error(l, "First argument must be a number (log level).");
            return Err(LErr::Top);
        }
        let level = lua_tonumber(l, -argc) as i32;
        if !(0..=3).contains(&level) {
            push_error(l, "Invalid debug level.");
            return Err(LErr::Top);
        }
        let mut msg = Vec::new();
        for j in 1..argc {
            if let Some(s) = to_bytes(l, -argc + j) {
                if j != 1 {
                    msg.push(b' ');
                }
                msg.extend_from_slice(s);
            }
        }
        if let Some(h) = ctx(l).host {
            (*h).log(level, &String::from_utf8_lossy(&msg));
        }
        Ok(0)
    }
}
cfn!(r_log, r_log_);

unsafe fn r_setresp_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            push_error(
                l,
                "redis.setresp can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        }
        if lua_gettop(l) != 1 {
            push_error(l, "redis.setresp() requires one argument.");
            return Err(LErr::Top);
        }
        let resp = lua_tonumber(l, -1) as i32;
        if resp != 2 && resp != 3 {
            push_error(l, "RESP version must be 2 or 3.");
            return Err(LErr::Top);
        }
        c.resp = resp;
        Ok(0)
    }
}
cfn!(r_setresp, r_setresp_);

unsafe fn r_set_repl_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        let Some(h) = c.host else {
            push_error(
                l,
                "redis.set_repl can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        if lua_gettop(l) != 1 {
            push_error(l, "redis.set_repl() requires two arguments.");
            return Err(LErr::Top);
        }
        let flags = lua_tonumber(l, -1) as i32;
        if flags & !3 != 0 {
            push_error(
                l,
                "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
            );
            return Err(LErr::Top);
        }
        (*h).set_repl(flags);
        Ok(0)
    }
}
cfn!(r_set_repl, r_set_repl_);

unsafe fn r_acl_check_cmd_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let Some(h) = ctx(l).host else {
            push_error(
                l,
                "redis.acl_check_cmd can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        let args = match lua_args(l) {
            Ok(a) => a,
            Err(e) => {
                push_error(l, e);
                return Err(LErr::Top);
            }
        };
        let r = (*h).acl_check_cmd(&args);
        drop(args);
        match r {
            None => {
                push_error(l, "Invalid command passed to redis.acl_check_cmd()");
                Err(LErr::Top)
            }
            Some(ok) => {
                lua_pushboolean(l, ok as c_int);
                Ok(1)
            }
        }
    }
}
cfn!(r_acl_check_cmd, r_acl_check_cmd_);

/// The debugger (SCRIPT DEBUG) is not supported: never active.
unsafe extern "C-unwind" fn r_breakpoint(l: *mut lua_State) -> c_int {
    unsafe {
        lua_pushboolean(l, 0);
        1
    }
}

unsafe extern "C-unwind" fn r_debug(_l: *mut lua_State) -> c_int {
    0
}

unsafe extern "C-unwind" fn r_replicate_commands(l: *mut lua_State) -> c_int {
    unsafe {
        lua_pushboolean(l, 1);
        1
    }
}

unsafe fn m_random_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            return Err(LErr::Msg(
                "math.random can only be called inside a script invocation".into(),
            ));
        }
        let r = (c.rand.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
        match lua_gettop(l) {
            0 => lua_pushnumber(l, r),
            1 => {
                let u = luaL_checkinteger(l, 1) as c_int;
                if u < 1 {
                    return Err(LErr::Arg(1, "interval is empty".into()));
                }
                lua_pushnumber(l, (r * u as f64).floor() + 1.0);
            }
            2 => {
                let lo = luaL_checkinteger(l, 1) as c_int;
                let u = luaL_checkinteger(l, 2) as c_int;
                if lo > u {
                    return Err(LErr::Arg(2, "interval is empty".into()));
                }
                lua_pushnumber(l, (r * (u as f64 - lo as f64 + 1.0)).floor() + lo as f64);
            }
            _ => return Err(LErr::Msg("wrong number of arguments".into())),
        }
        Ok(1)
    }
}
cfn!(m_random, m_random_);

unsafe fn m_randomseed_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            return Err(LErr::Msg(
                "math.randomseed can only be called inside a script invocation".into(),
            ));
        }
        let s = luaL_checkinteger(l, 1) as c_int;
        c.rand.seed(s);
        Ok(0)
    }
}
cfn!(m_randomseed, m_randomseed_);

/// Runs every 100000 instructions: SCRIPT KILL and the busy threshold.
unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    unsafe {
        let c = ctx(l);
        if !c.timed_out {
            let elapsed = c.start.elapsed().as_millis() as u64;
            if elapsed < c.busy_ms {
                return;
            }
            c.timed_out = true;
            c.status
                .timed_out
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(h) = c.host {
                let msg = format!(
                    "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: {}.",
                    c.sha
                );
                (*h).log(super::LOG_WARNING, &msg);
            }
        }
        if let Some(h) = c.host {
            (*h).busy(c.start.elapsed().as_millis() as u64);
        }
        if c.status.killed.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(h) = c.host {
                (*h).log(
                    super::LOG_WARNING,
                    "Lua script killed by user with SCRIPT KILL.",
                );
            }
            // From now on fire on every line so pcall cannot swallow the kill.
            lua_sethook(l, Some(count_hook), LUA_MASKLINE, 0);
            push_error(l, "Script killed by user with SCRIPT KILL...");
            lua_error(l);
        }
    }
}
