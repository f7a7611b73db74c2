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

mod api;
mod register;
mod reply;
mod state;

use super::lua::*;
use api::*;
use register::*;
use reply::*;
use state::*;

const CTX_KEY: &CStr = c"__keel_script_ctx";
/// Registry keys of the functions state: what a library load sees as its
/// globals, and the globals functions run with.
const LIBRARY_API: &CStr = c"__keel_library_api";
const GLOBALS_API: &CStr = c"__keel_globals_api";
/// FUNCTION LOAD's time limit (Redis's LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT_MS: u64 = 500;
const REDIS_VERSION_NUM: f64 = 0x0007_000f as f64;

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
        let Some(numkeys) = crate::util::parse_i64(&args[2]) else {
            out.err("ERR Bad number of keys provided");
            return;
        };
        if let Some(e) = numkeys_error(numkeys, args.len() - 3) {
            out.err(e);
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
        if let Some(e) = numkeys_error(numkeys, args.len() - 3) {
            out.err(e);
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

/// EVAL's and FCALL's numkeys check against the arguments after it.
fn numkeys_error(numkeys: i64, after: usize) -> Option<&'static str> {
    if numkeys > after as i64 {
        Some("ERR Number of keys can't be greater than number of args")
    } else if numkeys < 0 {
        Some("ERR Number of keys can't be negative")
    } else {
        None
    }
}
