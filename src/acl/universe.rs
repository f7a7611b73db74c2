//! The ACL's command universe: Redis 7.0's command table (`cmdspec`),
//! subcommands included, in commands.c's order.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use bytes::Bytes;

/// Redis's categories, in its order (ACL CAT, rule descriptions).
pub use crate::cmdspec::CATEGORIES;

pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

pub(super) const KEY_READ: u8 = 1;
pub(super) const KEY_WRITE: u8 = 2;
pub(super) const KEY_ALL: u8 = 3;

pub use crate::cmdspec::KEY_FLAG_NAMES;

/// The permission a key with these spec flags needs (ACLSelectorCheckKey).
fn key_perm(flags: u16) -> u8 {
    use crate::cmdspec::kf;
    let mut p = 0;
    if flags & kf::ACCESS != 0 {
        p |= KEY_READ;
    }
    if flags & (kf::INSERT | kf::DELETE | kf::UPDATE) != 0 {
        p |= KEY_WRITE;
    }
    p
}

pub struct AclCommand {
    /// "get", "config|get".
    pub fullname: String,
    pub arity: i32,
    pub cats: u32,
    pub parent: Option<usize>,
    pub subs: Vec<usize>,
    spec: Option<&'static crate::cmdspec::Spec>,
}

pub struct Universe {
    pub cmds: Vec<AclCommand>,
    by_name: HashMap<String, usize>,
    /// Top-level commands (containers before their subcommands).
    pub(super) top: Vec<usize>,
}

pub fn universe() -> &'static Universe {
    static U: LazyLock<Universe> = LazyLock::new(|| {
        let mut cmds: Vec<AclCommand> = Vec::new();
        let mut by_name = HashMap::new();
        // Redis's commands.c order: by group, then upper-case name.
        let mut order: Vec<&'static crate::cmdspec::Spec> = crate::cmdspec::SPECS.iter().collect();
        order.sort_by_key(|s| (s.group, s.name.to_ascii_uppercase()));
        for s in order {
            let id = cmds.len();
            by_name.insert(s.name.to_string(), id);
            cmds.push(AclCommand {
                fullname: s.name.to_string(),
                arity: s.arity,
                cats: s.acl,
                parent: None,
                subs: Vec::new(),
                spec: Some(s),
            });
            for sub in s.subs {
                let sid = cmds.len();
                cmds[id].subs.push(sid);
                by_name.insert(sub.name.to_string(), sid);
                cmds.push(AclCommand {
                    fullname: sub.name.to_string(),
                    arity: sub.arity,
                    cats: sub.acl,
                    parent: Some(id),
                    subs: Vec::new(),
                    spec: Some(sub),
                });
            }
        }
        let top = (0..cmds.len())
            .filter(|&i| cmds[i].parent.is_none())
            .collect();
        Universe { cmds, by_name, top }
    });
    &U
}

/// What the ACL needs of one entry of the server's command table: its ACL
/// id and whether it runs without authentication (NO_AUTH).
#[derive(Clone, Copy)]
pub struct Registered {
    pub id: usize,
    pub no_auth: bool,
}

static REGISTERED: OnceLock<Vec<Registered>> = OnceLock::new();

/// Registers the server's command table (by its indexes), once, before any
/// check: the command layer hands its commands' names and NO_AUTH flags
/// down here so that this layer never reads that table. Every command must
/// be one of Redis's (the table's spec test guarantees it).
pub fn register_commands<'a>(cmds: impl Iterator<Item = (&'a str, bool)>) {
    let u = universe();
    let reg = cmds
        .map(|(name, no_auth)| Registered {
            id: u
                .lookup(name)
                .unwrap_or_else(|| panic!("command {name} is not in the ACL universe")),
            no_auth,
        })
        .collect();
    let _ = REGISTERED.set(reg);
}

/// The registration of command-table entry `idx`.
pub(super) fn registered(idx: usize) -> Registered {
    REGISTERED
        .get()
        .expect("acl::register_commands runs with the command table")[idx]
}

impl Universe {
    /// ACLLookupCommand: "name" or "container|sub", case-insensitive.
    pub fn lookup(&self, name: &str) -> Option<usize> {
        let l = name.to_ascii_lowercase();
        if l.matches('|').count() > 1 {
            return None;
        }
        self.by_name.get(&l).copied()
    }

    pub(super) fn words(&self) -> usize {
        self.cmds.len().div_ceil(64)
    }

    /// The command a request runs for ACL purposes: the subcommand of a
    /// container when there is one. None when Redis would reject the request
    /// before the ACL check (unknown subcommand, subcommand arity).
    pub fn resolve(&self, id: usize, args: &[Bytes]) -> Option<usize> {
        let c = &self.cmds[id];
        if c.subs.is_empty() {
            return Some(id);
        }
        let sub = args.get(1)?;
        let name = format!("{}|{}", c.fullname, String::from_utf8_lossy(sub));
        let sid = self.lookup(&name)?;
        let s = &self.cmds[sid];
        let n = args.len() as i32;
        if (s.arity > 0 && n != s.arity) || n < -s.arity {
            return None;
        }
        Some(sid)
    }

    /// Key positions and the access each needs (getKeysFromCommandWithSpecs).
    pub(super) fn keys(&self, id: usize, args: &[Bytes]) -> Vec<(usize, u8)> {
        self.keys_flags(id, args)
            .into_iter()
            .map(|(p, f)| (p, key_perm(f)))
            .collect()
    }

    /// Key positions with Redis's key flags.
    fn keys_flags(&self, id: usize, args: &[Bytes]) -> Vec<crate::cmdspec::KeyRef> {
        let mut out = Vec::new();
        if let Some(s) = self.cmds[id].spec {
            s.keys(args, &mut out);
        }
        out
    }
}

/// Channel arguments: (position, is_pattern), for the commands whose
/// channels the ACL checks (publish and subscribe, not unsubscribe).
pub(super) fn channels(name: &str, argc: usize) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" if argc > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}
