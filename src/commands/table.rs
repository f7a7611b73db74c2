//! The command table: name, arity, flags, key positions, scope, handler.
//! It feeds dispatch, routing to shards, COMMAND, and later the replication stream.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::Ctx;

pub type Handler = fn(&mut Ctx, &[Bytes]);

/// Where a command runs; see the module docs of `commands`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Keys,
    /// Like Keys, but always run with the key shards held on the
    /// connection's thread, so the handler sees `ctx.client` (WATCH).
    KeysHeld,
    AllShards,
    Conn,
}

/// Command flags, named as COMMAND INFO prints them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const MAY_REPLICATE: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Key positions for commands whose keys do not follow first/last/step
/// (numkeys-style commands): returns the argument indexes that are keys.
pub type KeysFn = fn(&[Bytes]) -> Vec<usize>;

/// For commands that may touch keys their arguments do not name (SORT's
/// BY/GET patterns): true when this request may, so it holds every shard.
pub type UnknownKeysFn = fn(&[Bytes]) -> bool;

pub struct Command {
    /// Lower case, as COMMAND reports it.
    pub name: &'static str,
    /// Redis arity: N = exactly N args (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Legacy key spec (1-based positions; last_key -1 = last arg).
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub keys_fn: Option<KeysFn>,
    /// The key positions depend on the arguments (not first/last/step).
    pub movable: bool,
    pub unknown_keys: Option<UnknownKeysFn>,
    pub scope: Scope,
    pub handler: Handler,
    /// ACL categories without '@' (e.g. "string", "fast").
    pub acl: &'static [&'static str],
    /// COMMAND DOCS: summary, since, group.
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
}

impl Command {
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    /// True when `n` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 {
            n == self.arity as usize
        } else {
            n >= (-self.arity) as usize
        }
    }

    /// Argument indexes that are keys.
    pub fn key_indexes(&self, args: &[Bytes]) -> Vec<usize> {
        if let Some(f) = self.keys_fn {
            return f(args).into_iter().filter(|&i| i < args.len()).collect();
        }
        if self.first_key <= 0 {
            return Vec::new();
        }
        let n = args.len() as i32;
        let last = if self.last_key < 0 {
            n + self.last_key
        } else {
            self.last_key.min(n - 1)
        };
        let step = self.step.max(1);
        let mut out = Vec::new();
        let mut i = self.first_key;
        while i <= last {
            out.push(i as usize);
            i += step;
        }
        out
    }
}

/// A table entry with defaults; families override the fields they need.
pub const fn cmd(name: &'static str, arity: i32, flags: u32, handler: Handler) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
        keys_fn: None,
        movable: false,
        unknown_keys: None,
        scope: Scope::Conn,
        handler,
        acl: &[],
        summary: "",
        since: "1.0.0",
        group: "generic",
    }
}

/// Builder helpers so family tables stay one line per command.
impl Command {
    /// Keys at first..=last stepping by step; scope Keys.
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self.scope = Scope::Keys;
        self
    }
    pub const fn keys_fn(mut self, f: KeysFn, first: i32, last: i32, step: i32) -> Self {
        self.keys_fn = Some(f);
        self.movable = true;
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self.scope = Scope::Keys;
        self
    }
    pub const fn unknown_keys(mut self, f: UnknownKeysFn) -> Self {
        self.unknown_keys = Some(f);
        self
    }
    /// Whether this request must hold every shard (see `UnknownKeysFn`).
    pub fn reaches_unknown_keys(&self, args: &[Bytes]) -> bool {
        self.unknown_keys.is_some_and(|f| f(args))
    }
    pub const fn held(mut self) -> Self {
        self.scope = Scope::KeysHeld;
        self
    }
    pub const fn all_shards(mut self) -> Self {
        self.scope = Scope::AllShards;
        self
    }
    pub const fn acl(mut self, acl: &'static [&'static str]) -> Self {
        self.acl = acl;
        self
    }
    pub const fn doc(
        mut self,
        group: &'static str,
        since: &'static str,
        summary: &'static str,
    ) -> Self {
        self.group = group;
        self.since = since;
        self.summary = summary;
        self
    }
}

pub struct Table {
    pub commands: Vec<Command>,
    by_name: HashMap<&'static str, usize, ahash::RandomState>,
}

impl Table {
    pub fn get(&self, idx: usize) -> &Command {
        &self.commands[idx]
    }
}

/// The command table, built once from every family.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut commands = Vec::new();
        commands.extend(super::connection::commands());
        commands.extend(super::server::commands());
        commands.extend(super::strings::commands());
        commands.extend(super::keys::commands());
        commands.extend(super::sort::commands());
        commands.extend(super::transactions::commands());
        commands.extend(super::scripting::commands());
        commands.extend(super::snapshot::commands());
        commands.extend(super::pubsub::commands());
        commands.extend(super::lists::commands());
        commands.extend(super::hashes::commands());
        commands.extend(super::sets::commands());
        commands.extend(super::zsets::commands());
        commands.extend(super::geo::commands());
        commands.extend(super::hll::commands());
        commands.extend(super::streams::commands());
        commands.extend(super::persistence::commands());
        commands.extend(super::replication::commands());
        commands.extend(super::cluster::commands());
        commands.extend(super::acl::commands());
        commands.extend(super::ops::commands());
        let mut by_name = HashMap::default();
        for (i, c) in commands.iter().enumerate() {
            let prev = by_name.insert(c.name, i);
            assert!(prev.is_none(), "duplicate command {}", c.name);
        }
        Table { commands, by_name }
    })
}

/// The names clients use when `rename-command` is in the config (set once
/// at startup); absent, the table's own names.
static RENAMED: OnceLock<HashMap<String, usize>> = OnceLock::new();

/// The name -> command map after `renames` (in order; "" removes the
/// command), with redis-server's refusals.
pub fn renamed_names(renames: &[(String, String)]) -> Result<HashMap<String, usize>, &'static str> {
    let t = table();
    let mut names: HashMap<String, usize> =
        t.by_name.iter().map(|(k, &i)| (k.to_string(), i)).collect();
    for (from, to) in renames {
        let Some(i) = names.remove(&from.to_ascii_lowercase()) else {
            return Err("No such command in rename-command");
        };
        if !to.is_empty() && names.insert(to.to_ascii_lowercase(), i).is_some() {
            return Err("Target command name already exists");
        }
    }
    Ok(names)
}

/// Puts the config's `rename-command`s in effect (before any client).
pub fn install_renames(renames: &[(String, String)]) -> Result<(), &'static str> {
    if renames.is_empty() {
        return Ok(());
    }
    let _ = RENAMED.set(renamed_names(renames)?);
    Ok(())
}

/// Finds a command by name, case-insensitively. Returns its index too
/// (per-command statistics are indexed by it).
pub fn lookup(name: &[u8]) -> Option<(usize, &'static Command)> {
    let t = table();
    if let Some(names) = RENAMED.get() {
        let s = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        return names.get(&s).map(|&i| (i, &t.commands[i]));
    }
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let s = std::str::from_utf8(&lower[..name.len()]).ok()?;
    t.by_name.get(s).map(|&i| (i, &t.commands[i]))
}
