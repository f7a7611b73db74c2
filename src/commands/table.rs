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

/// Command flags, shared with the spec (`cmdspec::flags`).
pub use crate::cmdspec::flags;

/// For commands that may touch keys their arguments do not name (SORT's
/// BY/GET patterns): true when this request may, so it holds every shard.
pub type UnknownKeysFn = fn(&[Bytes]) -> bool;

/// The commands the request path treats in a way of their own (Redis
/// compares `cmd->proc` for these): the runtime matches on this, never on
/// a command's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    Multi,
    Exec,
    Discard,
    Watch,
    Quit,
    Reset,
    Ping,
    Select,
    Shutdown,
    Wait,
    Replconf,
    /// CLUSTER: some subcommands read one shard's data.
    Cluster,
    /// EVAL, EVALSHA and their _RO forms.
    Script {
        sha: bool,
        ro: bool,
    },
    /// FCALL and FCALL_RO.
    Function {
        ro: bool,
    },
    /// FUNCTION: its subcommands' flags decide write and stale.
    FunctionAdmin,
    /// SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE.
    Subscribe,
    /// SPUBLISH: its shard channel (argument 1) is routed by slot like a key.
    SPublish,
    /// SSUBSCRIBE / SUNSUBSCRIBE: every argument is a shard channel.
    SSubscribe,
    /// CLIENT: a CLIENT CACHING before it still applies to the next command.
    Client,
    /// ASKING: keeps its flag for the next command.
    Asking,
    /// MIGRATE: works in an open slot without an ASK check of its own.
    Migrate,
    /// FLUSHDB / FLUSHALL: tracking clients get a null invalidation.
    Flush,
}

impl Special {
    /// The commands a RESP2 client may send while subscribed.
    pub fn allowed_when_subscribed(self) -> bool {
        matches!(
            self,
            Special::Subscribe
                | Special::SSubscribe
                | Special::Ping
                | Special::Quit
                | Special::Reset
        )
    }

    /// Commands that act on the transaction itself instead of being queued.
    pub fn is_tx_control(self) -> bool {
        matches!(
            self,
            Special::Exec
                | Special::Discard
                | Special::Multi
                | Special::Watch
                | Special::Quit
                | Special::Reset
        )
    }
}

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
    /// Set at table build from the spec: the key positions depend on the
    /// arguments (numkeys, keywords, a subcommand), so `key_indexes` asks
    /// the spec instead of first/last/step.
    pub movable: bool,
    pub unknown_keys: Option<UnknownKeysFn>,
    pub scope: Scope,
    pub handler: Handler,
    /// Subcommands of a container that keel does not implement (COMMAND
    /// does not list them, and calling them is an unknown subcommand).
    pub lacks_subs: &'static [&'static str],
    /// Redis's spec of this command (None for keel-only commands).
    pub spec: Option<&'static crate::cmdspec::Spec>,
    pub special: Special,
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
        if self.movable {
            return self.spec_keys(args);
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

    /// The keys the spec finds (a container's: its subcommand's).
    #[cold]
    fn spec_keys(&self, args: &[Bytes]) -> Vec<usize> {
        let Some(mut s) = self.spec else {
            return Vec::new();
        };
        if !s.subs.is_empty() {
            match args.get(1).and_then(|a| s.sub(a)) {
                Some(sub) => s = sub,
                None => return Vec::new(),
            }
        }
        s.key_positions(args)
    }
}

/// Whether the keys of requests of `s` need the spec to be found: a key
/// spec that is not a fixed range (NOT_KEY specs name channels, not keys).
fn spec_is_movable(s: &crate::cmdspec::Spec) -> bool {
    use crate::cmdspec::{Begin, Find, kf};
    let movable = |s: &crate::cmdspec::Spec| {
        s.key_specs.iter().any(|k| {
            k.flags & kf::NOT_KEY == 0
                && (k.flags & kf::INCOMPLETE != 0
                    || !matches!((&k.begin, &k.find), (Begin::Index(_), Find::Range(..))))
        })
    };
    let keyed = |s: &crate::cmdspec::Spec| s.key_specs.iter().any(|k| k.flags & kf::NOT_KEY == 0);
    movable(s) || s.subs.iter().any(keyed)
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
        movable: false,
        unknown_keys: None,
        scope: Scope::Conn,
        handler,
        lacks_subs: &[],
        spec: None,
        special: Special::None,
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
    pub const fn unknown_keys(mut self, f: UnknownKeysFn) -> Self {
        self.unknown_keys = Some(f);
        self
    }
    /// Whether this request must hold every shard (see `UnknownKeysFn`).
    pub fn reaches_unknown_keys(&self, args: &[Bytes]) -> bool {
        self.unknown_keys.is_some_and(|f| f(args))
    }
    pub const fn lacks_subs(mut self, subs: &'static [&'static str]) -> Self {
        self.lacks_subs = subs;
        self
    }
    pub const fn held(mut self) -> Self {
        self.scope = Scope::KeysHeld;
        self
    }
    pub const fn all_shards(mut self) -> Self {
        self.scope = Scope::AllShards;
        self
    }
    pub const fn special(mut self, s: Special) -> Self {
        self.special = s;
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

/// The families' command lists (`commands::families::install`, at startup):
/// the table sits below the families, so it holds what they hand it
/// instead of naming them.
static FAMILIES: OnceLock<fn() -> Vec<Command>> = OnceLock::new();

pub fn register_families(all: fn() -> Vec<Command>) {
    let _ = FAMILIES.set(all);
}

/// The command table, built once from every family.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Unit tests have no entry point to install the families.
        #[cfg(test)]
        super::families::install();
        let all = FAMILIES
            .get()
            .expect("no command families: call keel::commands::families::install() first");
        let mut commands = all();
        for c in &mut commands {
            c.spec = crate::cmdspec::find(c.name);
            c.movable = c.spec.is_some_and(spec_is_movable);
        }
        let mut by_name = HashMap::default();
        for (i, c) in commands.iter().enumerate() {
            let prev = by_name.insert(c.name, i);
            assert!(prev.is_none(), "duplicate command {}", c.name);
        }
        // The ACL layer learns the table's commands from here (it does
        // not read the table).
        crate::acl::register_commands(
            commands
                .iter()
                .map(|c| (c.name, c.flags & flags::NO_AUTH != 0)),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdspec::flags::*;

    /// keel's runtime facts that deliberately differ from the spec's.
    const DEVIATIONS: &[(&str, &str)] = &[
        // keel lets a replica's SYNC/PSYNC through without the admin check.
        ("psync", "flags"),
        ("sync", "flags"),
        // Channels (NOT_KEY specs) do not route as keys.
        ("ssubscribe", "range"),
        ("sunsubscribe", "range"),
        ("spublish", "range"),
    ];

    /// Every command has a spec, and the runtime fields keel keeps next to
    /// it (arity, flags, legacy key range) agree with it, except the listed
    /// deviations; containers carry the union their subcommands need.
    #[test]
    fn table_agrees_with_spec() {
        let hidden = MOVABLE_KEYS | PROTECTED | TOUCHES_ARBITRARY_KEYS | SENTINEL;
        let mut bad = Vec::new();
        for c in &table().commands {
            let Some(s) = c.spec else {
                bad.push(format!("{}: no spec", c.name));
                continue;
            };
            let dev = |what: &str| DEVIATIONS.contains(&(c.name, what));
            if c.arity != s.arity {
                bad.push(format!("{}: arity {} vs {}", c.name, c.arity, s.arity));
            }
            let flags = s.flags & !hidden & !(NO_ASYNC_LOADING | NO_MANDATORY_KEYS);
            // PROTECTED (DEBUG), WRITE_SUBCOMMANDS (XGROUP) and TOUCHES_OWN_WATCHES
            // (FLUSHDB...) are runtime marks.
            let mine = c.flags & !(hidden | WRITE_SUBCOMMANDS | TOUCHES_OWN_WATCHES);
            if s.subs.is_empty() && mine != flags && !dev("flags") {
                bad.push(format!("{}: flags {:#x} vs {:#x}", c.name, mine, flags));
            }
            if s.subs.is_empty() && (c.first_key, c.last_key, c.step) != s.range && !dev("range") {
                bad.push(format!(
                    "{}: range {:?} vs {:?}",
                    c.name,
                    (c.first_key, c.last_key, c.step),
                    s.range
                ));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
