//! What the request path knows of scripts and functions: whether one runs
//! past busy-reply-threshold, the flags a request's script declares, and
//! whether it must hold every shard. EVAL, FCALL, SCRIPT and FUNCTION
//! themselves are in `commands::scripting`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::commands::{Command, Special, flags};
use crate::scripting::{Engine, ScriptFlags};

/// A script has run past busy-reply-threshold: other clients get -BUSY
/// (except for the commands that may run meanwhile), as in Redis.
pub static SCRIPT_BUSY: AtomicBool = AtomicBool::new(false);

/// The busy script is a function: -BUSY names FUNCTION KILL.
pub static SCRIPT_BUSY_FUNCTION: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Scripts seen touching undeclared keys of other shards: they start
    /// holding every shard.
    static GLOBAL_SHAS: RefCell<HashSet<Vec<u8>>> = RefCell::new(HashSet::new());
}

/// The -BUSY reply while a script is busy (stock's text depends on whether
/// EVAL or FCALL runs).
pub fn busy_err() -> &'static str {
    crate::scripting::busy_error(SCRIPT_BUSY_FUNCTION.load(Ordering::Relaxed))
}

/// Whether `args` may run while a script is busy: the command's or its
/// subcommand's allow_busy flag (SCRIPT KILL, FUNCTION KILL / STATS,
/// SHUTDOWN...).
pub fn allowed_while_busy(cmd: &Command, args: &[Bytes]) -> bool {
    cmd.flags & flags::ALLOW_BUSY != 0
        || (args.len() == 2
            && cmd
                .spec
                .and_then(|s| s.sub(&args[1]))
                .is_some_and(|s| s.flags & flags::ALLOW_BUSY != 0))
}

/// KEYS of EVAL-like commands (EVAL's spec; the others share its shape).
pub fn script_keys(args: &[Bytes]) -> Vec<usize> {
    crate::cmdspec::find("eval").map_or(Vec::new(), |s| s.key_positions(args))
}

/// The declared flags of the script or function a request runs (None: no
/// shebang problem known yet, or an unknown function / sha).
pub fn request_flags(cmd: &Command, args: &[Bytes]) -> Option<ScriptFlags> {
    match cmd.special {
        Special::Function { .. } => Engine::function_flags(&args[1]),
        Special::Script { sha, .. } => crate::scripting::script_flags(sha, &args[1]),
        _ => None,
    }
}

/// Redis's scriptFlagsToCmdFlags: a script or function with declared flags
/// is a write command unless `no-writes`, and may run on a stale replica
/// only with `allow-stale`. Returns (write, stale_ok) for the checks before
/// the run; None keeps the command's own flags.
/// FUNCTION's subcommands answer with their own flags (write ones:
/// LOAD/DELETE/FLUSH/RESTORE; only HELP runs on a stale replica).
pub fn effective_flags(cmd: &Command, args: &[Bytes]) -> Option<(bool, bool)> {
    if cmd.special == Special::FunctionAdmin {
        let sub = cmd.spec?.sub(args.get(1)?)?;
        return Some((sub.flags & flags::WRITE != 0, sub.flags & flags::STALE != 0));
    }
    if args.len() < 2 {
        return None;
    }
    let f = request_flags(cmd, args).filter(|f| !f.compat())?;
    Some((
        !f.has(ScriptFlags::NO_WRITES),
        f.has(ScriptFlags::ALLOW_STALE),
    ))
}

/// The script identity used to remember "global" scripts: EVALSHA's sha,
/// EVAL's body, or the function's name.
fn script_id(function: bool, sha: bool, args: &[Bytes]) -> Vec<u8> {
    if function {
        let mut id = b"fcall:".to_vec();
        id.extend_from_slice(&args[1]);
        id
    } else if sha {
        args[1].to_ascii_lowercase()
    } else {
        crate::scripting::sha1hex(&args[1]).into_bytes()
    }
}

/// The script touched undeclared keys of other shards: from now on it runs
/// with every shard held.
pub fn mark_global(function: bool, sha: bool, args: &[Bytes]) {
    GLOBAL_SHAS.with(|g| g.borrow_mut().insert(script_id(function, sha, args)));
}

/// Whether a script must run with every shard held (routing, conn side).
pub fn needs_all_shards(cmd: &Command, args: &[Bytes]) -> bool {
    let (function, sha) = match cmd.special {
        Special::Function { .. } => (true, false),
        Special::Script { sha, .. } => (false, sha),
        _ => (false, false),
    };
    script_keys(args).is_empty()
        || GLOBAL_SHAS.with(|g| g.borrow().contains(&script_id(function, sha, args)))
}
