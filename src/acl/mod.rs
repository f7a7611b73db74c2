//! Redis 7.0 ACL: users, their rules, the permission check, the ACL log and
//! the ACL file.
//!
//! The ACL's command universe is Redis 7.0's command table (`cmdspec`: full
//! names, arity, categories with the flag-derived ones, key specs), in the
//! order of Redis's commands.c, so category rules, ACL CAT and the rule
//! descriptions of ACL LIST/GETUSER come out as Redis's. keel's own
//! commands map onto it by name.
//!
//! Sharing: the users live in one process-wide table behind a lock that
//! only ACL commands, AUTH and connection set-up take. Each connection keeps
//! an `Arc<User>` snapshot and a copy of `generation()`; every change bumps
//! the generation, and a connection that sees a new one re-reads its user
//! before its next command. Selectors `(...)` are not supported.

pub mod sha256;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;

use crate::util::glob_match;

/// Redis's categories, in its order (ACL CAT, rule descriptions).
pub use crate::cmdspec::CATEGORIES;

pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

// ---------------------------------------------------------------- universe

const KEY_READ: u8 = 1;
const KEY_WRITE: u8 = 2;
const KEY_ALL: u8 = 3;

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
    /// keel command table index → ACL id.
    keel: Vec<usize>,
    /// Top-level commands (containers before their subcommands).
    top: Vec<usize>,
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
        // keel commands Redis does not have: @slow, no keys.
        let table = crate::commands::table();
        let mut keel = Vec::with_capacity(table.commands.len());
        for c in &table.commands {
            let id = *by_name.entry(c.name.to_string()).or_insert_with(|| {
                cmds.push(AclCommand {
                    fullname: c.name.to_string(),
                    arity: c.arity,
                    cats: crate::cmdspec::cat::SLOW,
                    parent: None,
                    subs: Vec::new(),
                    spec: None,
                });
                cmds.len() - 1
            });
            keel.push(id);
        }
        let top = (0..cmds.len())
            .filter(|&i| cmds[i].parent.is_none())
            .collect();
        Universe {
            cmds,
            by_name,
            keel,
            top,
        }
    });
    &U
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

    fn words(&self) -> usize {
        self.cmds.len().div_ceil(64)
    }

    /// The command a request runs for ACL purposes: the subcommand of a
    /// container when there is one. None when Redis would reject the request
    /// before the ACL check (unknown subcommand, subcommand arity).
    pub fn resolve(&self, keel_idx: usize, args: &[Bytes]) -> Option<usize> {
        let id = self.keel[keel_idx];
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
    fn keys(&self, id: usize, args: &[Bytes]) -> Vec<(usize, u8)> {
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
fn channels(name: &str, argc: usize) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" if argc > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- users

pub const FLAG_ON: u8 = 1;
pub const FLAG_OFF: u8 = 2;
pub const FLAG_NOPASS: u8 = 4;
pub const FLAG_SKIP_SANITIZE: u8 = 8;
pub const FLAG_SANITIZE: u8 = 16;
const FLAG_NAMES: &[(u8, &str)] = &[
    (FLAG_ON, "on"),
    (FLAG_OFF, "off"),
    (FLAG_NOPASS, "nopass"),
    (FLAG_SKIP_SANITIZE, "skip-sanitize-payload"),
    (FLAG_SANITIZE, "sanitize-payload"),
];

#[derive(Clone, Default)]
pub struct User {
    pub name: String,
    pub flags: u8,
    /// Hex SHA-256 of each password, in the order added.
    pub passwords: Vec<String>,
    allowed: Vec<u64>,
    /// +@all was applied last among +@all/-@all: future commands allowed
    /// (Redis's reserved bit), so descriptions start with +@all.
    future: bool,
    firstargs: BTreeMap<usize, Vec<String>>,
    allkeys: bool,
    patterns: Vec<(Vec<u8>, u8)>,
    allchannels: bool,
    channels: Vec<Vec<u8>>,
    /// Every command, key and channel allowed: the check is skipped.
    pub unrestricted: bool,
}

/// Why a rule was rejected (the errno values of ACLSetUser).
#[derive(Debug, Clone, Copy)]
pub enum RuleError {
    Unknown,
    Syntax,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelsAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

impl User {
    /// ACLCreateUser: disabled, nothing allowed.
    pub fn new(name: &str) -> User {
        let mut u = User {
            name: name.to_string(),
            flags: FLAG_OFF,
            allowed: vec![0; universe().words()],
            ..Default::default()
        };
        // New users' channels follow `acl-pubsub-default` (Redis 7.0).
        if PUBSUB_DEFAULT_ALL.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = u.apply_inner(b"allchannels");
        }
        u.refresh();
        u
    }

    /// The default user: everything, no password.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            u.apply(op.as_bytes()).expect("default user rules");
        }
        u
    }

    pub fn enabled(&self) -> bool {
        self.flags & FLAG_OFF == 0
    }

    pub fn nopass(&self) -> bool {
        self.flags & FLAG_NOPASS != 0
    }

    fn refresh(&mut self) {
        let n = universe().cmds.len();
        let all_cmds = (0..n).all(|i| self.bit(i));
        self.unrestricted = all_cmds && self.allkeys && self.allchannels;
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, v: bool) {
        if v {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
        }
    }

    /// ACLChangeSelectorPerm: a container takes its subcommands along.
    fn change_perm(&mut self, id: usize, v: bool) {
        self.set_bit(id, v);
        self.firstargs.remove(&id);
        for &s in &universe().cmds[id].subs {
            self.set_bit(s, v);
        }
    }

    fn set_category(&mut self, cat: u32, v: bool) {
        let u = universe();
        for id in 0..u.cmds.len() {
            if u.cmds[id].cats & cat != 0 {
                self.change_perm(id, v);
            }
        }
    }

    fn count_category(&self, cat: u32) -> (usize, usize) {
        let u = universe();
        let (mut on, mut off) = (0, 0);
        for id in 0..u.cmds.len() {
            if u.cmds[id].cats & cat != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    fn all_commands(&mut self, v: bool) {
        for w in self.allowed.iter_mut() {
            *w = if v { u64::MAX } else { 0 };
        }
        self.future = v;
        self.firstargs.clear();
    }

    /// Applies one rule (ACLSetUser). On error the user may be half
    /// changed: callers work on a copy.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let r = self.apply_inner(op);
        self.refresh();
        r
    }

    fn apply_inner(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |kw: &str| op.eq_ignore_ascii_case(kw.as_bytes());
        if is("on") {
            self.flags = (self.flags | FLAG_ON) & !FLAG_OFF;
        } else if is("off") {
            self.flags = (self.flags | FLAG_OFF) & !FLAG_ON;
        } else if is("skip-sanitize-payload") {
            self.flags = (self.flags | FLAG_SKIP_SANITIZE) & !FLAG_SANITIZE;
        } else if is("sanitize-payload") {
            self.flags = (self.flags | FLAG_SANITIZE) & !FLAG_SKIP_SANITIZE;
        } else if is("nopass") {
            self.flags |= FLAG_NOPASS;
            self.passwords.clear();
        } else if is("resetpass") {
            self.flags &= !FLAG_NOPASS;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = if op[0] == b'>' {
                sha256::hex(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.flags &= !FLAG_NOPASS;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = if op[0] == b'<' {
                sha256::hex(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            let Some(i) = self.passwords.iter().position(|p| *p == h) else {
                return Err(RuleError::NoSuchPassword);
            };
            self.passwords.remove(i);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            // Selectors (Redis 7.0) are not supported by keel.
            return Err(RuleError::Syntax);
        } else if is("clearselectors") {
        } else if is("reset") {
            for r in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "sanitize-payload",
                "-@all",
            ] {
                self.apply_inner(r.as_bytes())?;
            }
            if PUBSUB_DEFAULT_ALL.load(std::sync::atomic::Ordering::Relaxed) {
                self.apply_inner(b"allchannels")?;
            }
        } else {
            return self.apply_selector(op);
        }
        Ok(())
    }

    /// ACLSetSelector: command, key and channel rules.
    fn apply_selector(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |kw: &str| op.eq_ignore_ascii_case(kw.as_bytes());
        let u = universe();
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.patterns.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.all_commands(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeysAfterAll);
            }
            let mut flags = 0;
            let mut off = 1;
            if op[0] == b'%' {
                while off < op.len() {
                    let c = op[off].to_ascii_uppercase();
                    if c == b'R' && flags & KEY_READ == 0 {
                        flags |= KEY_READ;
                    } else if c == b'W' && flags & KEY_WRITE == 0 {
                        flags |= KEY_WRITE;
                    } else if op[off] == b'~' {
                        off += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    off += 1;
                }
            } else {
                flags = KEY_ALL;
            }
            // "%R" without '~' ends with off == len: an empty pattern, as Redis.
            let pat = &op[off.min(op.len())..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            match self.patterns.iter_mut().find(|(p, _)| p == pat) {
                Some((_, f)) => *f |= flags,
                None => self.patterns.push((pat.to_vec(), flags)),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            let name = String::from_utf8_lossy(&op[1..]).into_owned();
            match name.rsplit_once('|') {
                None => {
                    let id = u.lookup(&name).ok_or(RuleError::Unknown)?;
                    self.change_perm(id, true);
                }
                Some((base, sub)) => {
                    let id = u.lookup(base).ok_or(RuleError::Unknown)?;
                    if u.cmds[id].parent.is_some() {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !u.cmds[id].subs.is_empty() {
                        let sid = u.lookup(&name).ok_or(RuleError::Unknown)?;
                        self.change_perm(sid, true);
                    } else {
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|s| s.eq_ignore_ascii_case(sub)) {
                            list.push(sub.to_string());
                        }
                    }
                }
            }
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let name = String::from_utf8_lossy(&op[1..]);
            let id = u.lookup(&name).ok_or(RuleError::Unknown)?;
            self.change_perm(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let cat = category_bit(&String::from_utf8_lossy(&op[2..])).ok_or(RuleError::Unknown)?;
            self.set_category(cat, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// The command rules (ACLDescribeSelectorCommandRules): +@all or -@all,
    /// the best-fitting categories, then single commands.
    pub fn describe_commands(&self) -> String {
        let u = universe();
        let additive = !self.future;
        let mut rules = String::new();
        let mut fake = User::new("");
        fake.all_commands(!additive);
        rules.push_str(if additive { "-@all " } else { "+@all " });
        let mut temp = self.clone();
        let mut applied = [false; 21];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for &id in &u.top {
            self.describe_single(&mut fake, id, &mut rules);
            for &s in &u.cmds[id].subs {
                self.describe_single(&mut fake, s, &mut rules);
            }
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, fake: &mut User, id: usize, rules: &mut String) {
        let u = universe();
        let userbit = self.bit(id);
        if userbit != fake.bit(id) {
            rules.push(if userbit { '+' } else { '-' });
            rules.push_str(&u.cmds[id].fullname);
            rules.push(' ');
            fake.change_perm(id, userbit);
        }
        if !userbit && let Some(list) = self.firstargs.get(&id) {
            for a in list {
                rules.push_str(&format!("+{}|{} ", u.cmds[id].fullname, a));
            }
        }
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    fn pattern_string(pat: &[u8], flags: u8) -> String {
        let prefix = match flags {
            KEY_READ => "%R~",
            KEY_WRITE => "%W~",
            _ => "~",
        };
        format!("{prefix}{}", String::from_utf8_lossy(pat))
    }

    /// GETUSER "keys".
    pub fn keys_string(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let v: Vec<String> = self
            .patterns
            .iter()
            .map(|(p, f)| Self::pattern_string(p, *f))
            .collect();
        v.join(" ")
    }

    /// GETUSER "channels".
    pub fn channels_string(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        v.join(" ")
    }

    /// ACLDescribeUser: the rules after "user <name> " in ACL LIST.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for f in self.flag_names() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        if self.allkeys {
            s.push_str("~* ");
        } else {
            for (p, f) in &self.patterns {
                s.push_str(&Self::pattern_string(p, *f));
                s.push(' ');
            }
        }
        if self.allchannels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }

    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled() {
            return false;
        }
        if self.nopass() {
            return true;
        }
        let h = sha256::hex(pass);
        // Compare every byte whatever the outcome (time-independent).
        self.passwords.iter().fold(false, |ok, p| {
            ok | (p.bytes().zip(h.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0)
        })
    }

    /// Any key may be read (ACLSelectorHasUnrestrictedKeyAccess for reads):
    /// SORT's BY and GET patterns need it.
    pub fn unrestricted_read_keys(&self) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|(p, f)| f & KEY_READ == KEY_READ && p.as_slice() == b"*")
    }

    fn check_key(&self, key: &[u8], need: u8) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|(p, f)| f & need == need && glob_match(p, key, false))
    }

    /// Whether a subscription to `ch` (a pattern subscription when
    /// `is_pattern`) is allowed (ACLKillPubsubClientsIfNeeded's test).
    pub fn channel_allowed(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.unrestricted || self.check_channel(ch, is_pattern)
    }

    fn check_channel(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == ch
                } else {
                    glob_match(p, ch, false)
                }
            })
    }

    /// ACLSelectorCheckCmd for request `args` of ACL command `id`.
    pub fn check_cmd(&self, id: usize, no_auth: bool, args: &[Bytes]) -> Result<(), Denied> {
        let u = universe();
        let c = &u.cmds[id];
        if !no_auth && !self.bit(id) {
            let pos = if c.parent.is_some() { 2 } else { 1 };
            let ok = args.len() >= 2
                && self.firstargs.get(&id).is_some_and(|l| {
                    args.get(pos)
                        .is_some_and(|a| l.iter().any(|s| a.eq_ignore_ascii_case(s.as_bytes())))
                });
            if !ok {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys {
            for (pos, need) in u.keys(id, args) {
                if !self.check_key(&args[pos], need) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            for (pos, pat) in channels(&c.fullname, args.len()) {
                if !self.check_channel(&args[pos], pat) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// The NOPERM error of a rejected top-level command.
    pub fn noperm(self, fullname: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{fullname}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .into()
            }
        }
    }

    /// getAclErrorMessage, for scripts.
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }
    }
}

/// The full check of a keel command by `user`: Ok when allowed or when the
/// request fails before Redis's ACL check would run (unknown subcommand).
/// On denial: the reason and the logged object.
pub fn check(user: &User, keel_idx: usize, args: &[Bytes]) -> Result<(), (Denied, String)> {
    if user.unrestricted {
        return Ok(());
    }
    let u = universe();
    let Some(id) = u.resolve(keel_idx, args) else {
        return Ok(());
    };
    let cmd = crate::commands::table().get(keel_idx);
    let no_auth = cmd.flags & crate::commands::flags::NO_AUTH != 0;
    user.check_cmd(id, no_auth, args).map_err(|d| {
        let obj = match d {
            Denied::Command => u.cmds[id].fullname.clone(),
            Denied::Key(p) | Denied::Channel(p) => String::from_utf8_lossy(&args[p]).into_owned(),
        };
        (d, obj)
    })
}

/// The full name of the command a request runs ("config|get").
pub fn fullname(keel_idx: usize, args: &[Bytes]) -> String {
    let u = universe();
    let id = u.resolve(keel_idx, args).unwrap_or(u.keel[keel_idx]);
    u.cmds[id].fullname.clone()
}

// ---------------------------------------------------------------- state

pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub ctime_ms: u64,
    pub cinfo: String,
}

pub struct State {
    pub users: BTreeMap<String, Arc<User>>,
    pub log: VecDeque<LogEntry>,
    /// The requirepass value last mirrored into the default user.
    requirepass: Option<String>,
}

static STATE: LazyLock<RwLock<State>> = LazyLock::new(|| {
    let mut users = BTreeMap::new();
    users.insert("default".to_string(), Arc::new(User::default_user()));
    RwLock::new(State {
        users,
        log: VecDeque::new(),
        requirepass: None,
    })
});

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Bumped by every change of any user.
/// `acl-pubsub-default allchannels`: what new users (and `reset`) get.
static PUBSUB_DEFAULT_ALL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub fn set_pubsub_default(cfg_value: &str) {
    PUBSUB_DEFAULT_ALL.store(
        cfg_value == "allchannels",
        std::sync::atomic::Ordering::Relaxed,
    );
}

pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

pub fn read() -> std::sync::RwLockReadGuard<'static, State> {
    STATE.read().unwrap()
}

/// Runs `f` on the state and publishes its changes to every connection.
pub fn write<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let r = {
        let mut s = STATE.write().unwrap();
        let r = f(&mut s);
        GENERATION.fetch_add(1, Ordering::AcqRel);
        r
    };
    // Subscribers that lost a channel are disconnected, as Redis does (the
    // server's hook has every shard check its own subscriptions).
    if let Some(f) = ON_CHANGE.get() {
        f();
    }
    r
}

static ON_CHANGE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// What runs after every change of the users (set once by the server).
pub fn on_change(f: fn()) {
    let _ = ON_CHANGE.set(f);
}

pub fn get_user(name: &str) -> Option<Arc<User>> {
    read().users.get(name).cloned()
}

pub fn default_user() -> Arc<User> {
    get_user("default").unwrap_or_else(|| Arc::new(User::default_user()))
}

/// Whether new connections must authenticate (Redis's authRequired for a
/// connection still on the default user).
pub fn auth_required() -> bool {
    let d = default_user();
    !d.nopass() || !d.enabled()
}

/// ACLUpdateDefaultUserPassword, when requirepass changed.
pub fn mirror_requirepass(pass: &str) {
    if read().requirepass.as_deref() == Some(pass) {
        return;
    }
    write(|s| {
        s.requirepass = Some(pass.to_string());
        let mut d = s
            .users
            .get("default")
            .map(|u| (**u).clone())
            .unwrap_or_else(User::default_user);
        let _ = d.apply(b"resetpass");
        if pass.is_empty() {
            let _ = d.apply(b"nopass");
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = d.apply(&op);
        }
        s.users.insert("default".into(), Arc::new(d));
    });
}

/// Applies rules to a copy of `base` (or a new user); nothing changes on error.
pub fn build_user(name: &str, base: Option<&User>, ops: &[&[u8]]) -> Result<User, String> {
    let mut u = base.cloned().unwrap_or_else(|| User::new(name));
    for op in ops {
        if let Err(e) = u.apply(op) {
            return Err(format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(op),
                e.message()
            ));
        }
    }
    Ok(u)
}

/// ACL LOG: adds a denial, merging with a recent similar entry.
pub fn log_denial(
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    cinfo: String,
    max_len: usize,
) {
    let now = crate::storage::now_ms();
    let mut s = STATE.write().unwrap();
    let found = s.log.iter().take(10).position(|e| {
        e.reason == reason
            && e.context == context
            && e.ctime_ms.abs_diff(now) <= 60_000
            && e.object == object
            && e.username == username
    });
    if let Some(i) = found {
        let mut e = s.log.remove(i).expect("found above");
        e.count += 1;
        e.ctime_ms = now;
        e.cinfo = cinfo;
        s.log.push_front(e);
        return;
    }
    s.log.push_front(LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime_ms: now,
        cinfo,
    });
    s.log.truncate(max_len);
}

pub fn reason_name(d: Denied) -> &'static str {
    match d {
        Denied::Command => "command",
        Denied::Key(_) => "key",
        Denied::Channel(_) => "channel",
    }
}

// ---------------------------------------------------------------- files

/// Splits a `user` line as Redis's ACL file loader: on single spaces.
fn file_words(line: &str) -> Vec<&str> {
    line.split(' ').filter(|w| !w.is_empty()).collect()
}

/// ACLLoadFromFile: every line checked; on any error nothing changes and
/// the errors are returned in one line.
pub fn load_file(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or("").to_string();
        format!("Error loading ACLs, opening file '{path}': {msg}")
    })?;
    let mut users: BTreeMap<String, Arc<User>> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_matches(|c| " \t\r\n".contains(c));
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let w = file_words(line);
        if w.is_empty() {
            continue;
        }
        if w[0] != "user" || w.len() < 2 {
            errors.push_str(&format!(
                "{path}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        if users.contains_key(w[1]) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {n}. ",
                w[1]
            ));
            continue;
        }
        let mut u = User::new(w[1]);
        let mut syntax = false;
        for op in &w[2..] {
            let op = op.trim_matches(|c| "\t\r\n".contains(c));
            if let Err(e) = u.apply(op.as_bytes()) {
                if matches!(e, RuleError::Unknown) {
                    errors.push_str(&format!(
                        "{path}:{n}: Error in applying operation '{op}': {}. ",
                        e.message()
                    ));
                } else if !syntax {
                    errors.push_str(&format!("{path}:{n}: {}. ", e.message()));
                    syntax = true;
                }
            }
        }
        users.insert(w[1].to_string(), Arc::new(u));
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    users
        .entry("default".into())
        .or_insert_with(|| Arc::new(User::default_user()));
    write(|s| s.users = users);
    Ok(())
}

/// ACLSaveToFile: one `user` line per user, written to a temp file and
/// renamed over the ACL file.
pub fn save_file(path: &str) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, u) in read().users.iter() {
        text.push_str(&format!("user {name} {}\n", u.describe()));
    }
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::storage::now_ms()
    );
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Startup: `user` directives of the config file, then the ACL file.
/// Errors are fatal, as in Redis.
pub fn load_at_startup(config: &crate::config::Config) -> Result<(), String> {
    mirror_requirepass(config.get("requirepass"));
    let aclfile = config.get("aclfile");
    if !aclfile.is_empty() && !config.users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    for words in &config.users {
        let Some(name) = words.first() else { continue };
        let base = if name == "default" {
            let mut d = (*default_user()).clone();
            let _ = d.apply(b"reset");
            Some(d)
        } else {
            None
        };
        let ops: Vec<&[u8]> = words[1..].iter().map(|w| w.as_bytes()).collect();
        let u = build_user(name, base.as_ref(), &ops)
            .map_err(|e| format!("Error loading ACL rule for the user named '{name}': {e}"))?;
        write(|s| s.users.insert(name.clone(), Arc::new(u)));
    }
    if !aclfile.is_empty() {
        load_file(aclfile)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &str) -> User {
        let ops: Vec<&[u8]> = ops.split(' ').map(|s| s.as_bytes()).collect();
        build_user("u", None, &ops).unwrap()
    }

    #[test]
    fn describe_basic() {
        assert_eq!(User::default_user().describe(), "on nopass ~* &* +@all");
        assert_eq!(User::new("x").describe(), "off resetchannels -@all");
        assert_eq!(
            user("on >p ~a* %R~b %W~c &ch +get").describe(),
            "on #5a3d3bd4c2b1b5a1b9b9d3f6b7c3b56c2b0c7c6b6e1ccd3d2a89d01f39e98a09 ~a* %R~b %W~c resetchannels &ch -@all +get"
                .replace(
                    "5a3d3bd4c2b1b5a1b9b9d3f6b7c3b56c2b0c7c6b6e1ccd3d2a89d01f39e98a09",
                    &sha256::hex(b"p")
                )
        );
        assert_eq!(user("+@all -@string").describe_commands(), "+@all -@string");
        assert_eq!(user("-@all +@string").describe_commands(), "-@all +@string");
    }

    #[test]
    fn checks() {
        let t = crate::commands::table();
        let idx = |n: &str| crate::commands::lookup(n.as_bytes()).unwrap().0;
        let a =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
        let _ = t;
        let u = user("on nopass %R~r* %W~w* +@all");
        assert!(check(&u, idx("get"), &a(&["get", "r1"])).is_ok());
        assert!(check(&u, idx("get"), &a(&["get", "w1"])).is_err());
        assert!(check(&u, idx("set"), &a(&["set", "w1", "v"])).is_ok());
        assert!(check(&u, idx("set"), &a(&["set", "w1", "v", "get"])).is_err());
        assert!(check(&u, idx("copy"), &a(&["copy", "r1", "w1"])).is_ok());
        assert_eq!(
            check(&u, idx("copy"), &a(&["copy", "w1", "r1"]))
                .unwrap_err()
                .0,
            Denied::Key(1)
        );
        let c = user("on nopass -@all +config|get");
        assert!(check(&c, idx("config"), &a(&["config", "get", "x"])).is_ok());
        assert_eq!(
            check(&c, idx("config"), &a(&["config", "set", "x", "y"])).unwrap_err(),
            (Denied::Command, "config|set".to_string())
        );
    }
}
