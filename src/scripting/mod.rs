//! Lua scripting engine with Redis 7.0 semantics (EVAL / EVALSHA / *_RO, SCRIPT).
//!
//! The engine is independent of command routing: the server implements
//! [`ScriptHost`] to run the commands a script calls, keeps one [`Engine`] per
//! shard thread, and shares script bodies through the process-wide
//! [`Registry`] (SCRIPT LOAD on one shard is visible on every shard).
//!
//! Typical server wiring:
//! - before routing EVAL/EVALSHA, [`script_flags`] gives the shebang flags
//!   (`no-writes`, `allow-cross-slot-keys`...) to decide read-only-ness and
//!   key routing (Redis's `evalGetCommandFlags`);
//! - the handler calls [`Engine::eval_command`] with the full argv;
//!   the host's `call` runs each `redis.call` and returns the reply bytes;
//! - SCRIPT LOAD/EXISTS/FLUSH/HELP: [`Engine::script_command`]; SCRIPT KILL
//!   from another connection: [`ScriptStatus::kill`] on the running engine's
//!   [`Engine::status`].

mod engine;
pub mod functions;
mod libs;
mod lrand;
mod lua;
mod resp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;

pub use engine::{Engine, LOAD_TIMEOUT_MS};

/// Implemented by the server: runs the Redis commands of one script run.
pub trait ScriptHost {
    /// Runs one command for `redis.call` / `redis.pcall`; `args[0]` is the
    /// command name. Returns the command's reply as RESP bytes, RESP3 when
    /// `resp3` (the script called `redis.setresp(3)`), else RESP2. Error
    /// replies of the command itself are ordinary `-ERR ...` reply bytes.
    ///
    /// `Err` is for errors raised before the command runs, as Redis's
    /// `scriptCall` does. Either "message" (the engine prefixes `ERR `) or
    /// "-CODE message". Redis's texts: "Unknown Redis command called from
    /// script", "Wrong number of args calling Redis command from script",
    /// "This Redis command is not allowed from script", "Write commands are
    /// not allowed from read-only scripts." (when
    /// [`ScriptFlags::read_only`] says so and the command is write or
    /// may-replicate), "-OOM command not allowed when used memory >
    /// 'maxmemory'." (deny-oom command before any write, unless allow-oom),
    /// "Script attempted to access keys that do not hash to the same slot"...
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Result<Vec<u8>, String>;

    /// `redis.log(level, ...)`: level is one of [`LOG_DEBUG`]..[`LOG_WARNING`];
    /// the host filters by its verbosity.
    fn log(&mut self, level: i32, msg: &str);

    /// True when used memory is over maxmemory at script start: scripts with a
    /// shebang and neither `allow-oom` nor `no-writes` are then refused.
    fn oom(&self) -> bool {
        false
    }

    /// `redis.set_repl(flags)`: [`REPL_AOF`] | [`REPL_REPLICA`] bits for the
    /// following commands' propagation.
    fn set_repl(&mut self, _flags: i32) {}

    /// `redis.acl_check_cmd(...)`: `None` when the command does not exist,
    /// else whether the calling user may run it.
    fn acl_check_cmd(&mut self, _args: &[Bytes]) -> Option<bool> {
        Some(true)
    }

    /// Called every 100000 Lua instructions once the script ran longer than
    /// the busy threshold (lua-time-limit); the server may serve other
    /// clients with BUSY here. SCRIPT KILL is seen through [`ScriptStatus`].
    fn busy(&mut self, _elapsed_ms: u64) {}

    /// A replica whose link is down with `replica-serve-stale-data no`
    /// (not for the master's stream): scripts without `allow-stale` (and
    /// flag-less ones) are refused.
    fn stale(&self) -> bool {
        false
    }

    /// Cluster mode (not for the master's stream): scripts flagged
    /// `no-cluster` are refused.
    fn cluster_enabled(&self) -> bool {
        false
    }
}

pub const LOG_DEBUG: i32 = 0;
pub const LOG_VERBOSE: i32 = 1;
pub const LOG_NOTICE: i32 = 2;
pub const LOG_WARNING: i32 = 3;
pub const REPL_NONE: i32 = 0;
pub const REPL_AOF: i32 = 1;
pub const REPL_REPLICA: i32 = 2;
pub const REPL_ALL: i32 = 3;

/// Stock's -BUSY text while a script runs: EVAL names SCRIPT KILL, a
/// function FUNCTION KILL.
pub fn busy_error(function: bool) -> &'static str {
    if function {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    }
}

pub const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Flags from a `#!lua flags=...` shebang (bit values as Redis's SCRIPT_FLAG_*).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScriptFlags(pub u8);

impl ScriptFlags {
    pub const NO_WRITES: u8 = 1;
    pub const ALLOW_OOM: u8 = 2;
    pub const ALLOW_STALE: u8 = 4;
    pub const NO_CLUSTER: u8 = 8;
    /// No shebang: Redis's backwards-compatible EVAL mode.
    pub const EVAL_COMPAT: u8 = 16;
    pub const ALLOW_CROSS_SLOT: u8 = 32;

    pub fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }
    /// Script without shebang (no declared flags).
    pub fn compat(self) -> bool {
        self.has(Self::EVAL_COMPAT)
    }
    /// Whether write commands are refused inside the run (`ro`: EVAL_RO/EVALSHA_RO).
    pub fn read_only(self, ro: bool) -> bool {
        ro || (!self.compat() && self.has(Self::NO_WRITES))
    }
    /// Whether the EVAL command itself counts as a write command (routing,
    /// replica/MISCONF/min-replicas checks). Compat scripts keep EVAL's own flags.
    pub fn may_write(self) -> bool {
        self.compat() || !self.has(Self::NO_WRITES)
    }
    /// Whether deny-oom commands may run when over maxmemory.
    pub fn allow_oom(self) -> bool {
        !self.compat() && self.has(Self::ALLOW_OOM)
    }
    /// Whether the script may touch keys of several slots (Redis: compat scripts may).
    pub fn allow_cross_slot(self) -> bool {
        self.compat() || self.has(Self::ALLOW_CROSS_SLOT)
    }
}

pub(crate) const FLAG_NAMES: [(&str, u8); 5] = [
    ("no-writes", ScriptFlags::NO_WRITES),
    ("allow-oom", ScriptFlags::ALLOW_OOM),
    ("allow-stale", ScriptFlags::ALLOW_STALE),
    ("no-cluster", ScriptFlags::NO_CLUSTER),
    ("allow-cross-slot-keys", ScriptFlags::ALLOW_CROSS_SLOT),
];

/// Parses the shebang line. Returns the flags and the shebang length (the
/// body compiled is `body[len..]`, keeping the newline so line numbers hold).
/// Errors are the reply text without the `ERR ` prefix.
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags(ScriptFlags::EVAL_COMPAT), 0));
    }
    // Redis works on C strings: the line ends at the first '\n' (or NUL).
    let nul = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    let Some(end) = body[..nul].iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    let mut flags = 0u8;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(p)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for f in list.split(|&b| b == b',') {
            match FLAG_NAMES.iter().find(|(n, _)| n.as_bytes() == f) {
                Some((_, bit)) => flags |= bit,
                None => {
                    return Err(format!(
                        "Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(f)
                    ));
                }
            }
        }
    }
    Ok((ScriptFlags(flags), end))
}

/// Redis's sdssplitargs: spaces separate, "..." with C escapes, '...' with \'.
/// None on unbalanced quotes.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let h = |c: u8| (c as char).to_digit(16).unwrap() as u8;
                    cur.push(h(line[i + 2]) * 16 + h(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    // Closing quote must be followed by a space or the end.
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// Lowercase hex SHA1, as Redis's sha1hex (script names, redis.sha1hex).
pub fn sha1hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let d = Sha1::digest(data);
    let mut s = String::with_capacity(40);
    for b in d.iter() {
        s.push(char::from_digit((b >> 4) as u32, 16).unwrap());
        s.push(char::from_digit((b & 15) as u32, 16).unwrap());
    }
    s
}

/// Flags of a script for routing decisions before it runs (Redis's
/// evalGetCommandFlags): `arg` is EVAL's script or EVALSHA's sha.
/// None when unknown (EVALSHA of a missing script, or an invalid shebang:
/// the run itself reports the error).
pub fn script_flags(is_sha: bool, arg: &[u8]) -> Option<ScriptFlags> {
    if is_sha {
        if arg.len() != 40 {
            return None;
        }
        let sha = String::from_utf8_lossy(arg).to_ascii_lowercase();
        return Registry::global().get(&sha).map(|s| s.flags);
    }
    parse_shebang(arg).ok().map(|(f, _)| f)
}

/// A script known to the server.
#[derive(Debug)]
pub struct Script {
    pub sha: String,
    pub body: Bytes,
    pub flags: ScriptFlags,
}

/// Process-wide script bodies: sha1 hex -> script. Engines keep a per-thread
/// cache validated by the flush generation, so EVALSHA of a cached script
/// takes no lock.
pub struct Registry {
    map: RwLock<HashMap<String, Arc<Script>>>,
    generation: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    map: RwLock::new(HashMap::new()),
    generation: AtomicU64::new(0),
});

impl Registry {
    pub fn global() -> &'static Registry {
        &REGISTRY
    }

    /// `sha` must be lowercase hex.
    pub fn get(&self, sha: &str) -> Option<Arc<Script>> {
        self.map.read().unwrap().get(sha).cloned()
    }

    /// SCRIPT EXISTS semantics (case-insensitive).
    pub fn exists(&self, sha: &[u8]) -> bool {
        let s = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.map.read().unwrap().contains_key(&s)
    }

    /// Adds a script whose body compiled; keeps the existing entry if any.
    pub fn insert(&self, script: Script) -> Arc<Script> {
        let mut m = self.map.write().unwrap();
        m.entry(script.sha.clone())
            .or_insert_with(|| Arc::new(script))
            .clone()
    }

    /// Every script body (saved as `lua` AUX fields in RDB files).
    pub fn bodies(&self) -> Vec<Bytes> {
        self.map
            .read()
            .unwrap()
            .values()
            .map(|s| s.body.clone())
            .collect()
    }

    /// SCRIPT FLUSH: forgets every script; engines reset their Lua state on
    /// their next run (as Redis recreates its interpreter).
    pub fn flush(&self) {
        let mut m = self.map.write().unwrap();
        m.clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of body lengths (INFO used_memory_scripts approximation).
    pub fn memory(&self) -> usize {
        self.map
            .read()
            .unwrap()
            .values()
            .map(|s| s.body.len() + 40)
            .sum()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Shared state of the script running on one engine, for SCRIPT KILL and
/// BUSY replies from other threads.
#[derive(Debug, Default)]
pub struct ScriptStatus {
    running: AtomicBool,
    timed_out: AtomicBool,
    killed: AtomicBool,
    wrote: AtomicBool,
    /// The running script is a function (FCALL), not EVAL.
    function: AtomicBool,
    /// Name and argv of the run, for FUNCTION STATS.
    detail: std::sync::Mutex<Option<RunDetail>>,
}

/// What FUNCTION STATS shows of a running script.
#[derive(Clone, Debug)]
pub struct RunDetail {
    pub name: String,
    pub command: Vec<Bytes>,
    pub start: std::time::Instant,
    pub function: bool,
}

impl ScriptStatus {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    /// True once the run passed the busy threshold (Redis then answers BUSY).
    pub fn is_timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }
    /// The host calls this when a write command ran in the script: the script
    /// can no longer be killed.
    pub fn mark_write(&self) {
        self.wrote.store(true, Ordering::SeqCst);
    }
    /// Whether the running script is a function.
    pub fn is_function(&self) -> bool {
        self.function.load(Ordering::SeqCst)
    }
    /// The running script's name and command (FUNCTION STATS).
    pub fn detail(&self) -> Option<RunDetail> {
        self.detail.lock().unwrap().clone()
    }
    fn set_detail(&self, name: &str, args: &[Bytes], function: bool) {
        self.function.store(function, Ordering::SeqCst);
        *self.detail.lock().unwrap() = Some(RunDetail {
            name: name.to_string(),
            command: args.to_vec(),
            start: std::time::Instant::now(),
            function,
        });
    }
    /// SCRIPT KILL (`function` false) or FUNCTION KILL. Ok means "+OK";
    /// Err is the error reply text.
    pub fn kill(&self, function: bool) -> Result<(), &'static str> {
        if !self.is_running() {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        if self.wrote.load(Ordering::SeqCst) {
            return Err(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        if function != self.is_function() {
            return Err(busy_error(self.is_function()));
        }
        self.killed.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn begin(&self) {
        self.timed_out.store(false, Ordering::SeqCst);
        self.killed.store(false, Ordering::SeqCst);
        self.wrote.store(false, Ordering::SeqCst);
        self.running.store(true, Ordering::SeqCst);
    }
    fn end(&self) {
        self.running.store(false, Ordering::SeqCst);
        *self.detail.lock().unwrap() = None;
        self.timed_out.store(false, Ordering::SeqCst);
        self.killed.store(false, Ordering::SeqCst);
    }
}

pub const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests;
