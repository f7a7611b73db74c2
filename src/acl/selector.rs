//! Selectors (Redis 7.0): a set of command, key and channel rules. A user
//! has a root selector (its plain rules) and any number of `(...)` ones; a
//! request is allowed when one selector allows all of it.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::PUBSUB_DEFAULT_ALL;
use super::universe::{CATEGORIES, KEY_ALL, KEY_READ, KEY_WRITE, category_bit, channels, universe};
use crate::util::glob_match;

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

pub(super) fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

#[derive(Clone)]
pub struct Selector {
    /// One bit per ACL command id.
    allowed: Vec<u64>,
    /// +@all was applied last among +@all/-@all: future commands allowed
    /// (Redis's reserved bit), so descriptions start with +@all.
    future: bool,
    firstargs: BTreeMap<usize, Vec<String>>,
    allkeys: bool,
    patterns: Vec<(Vec<u8>, u8)>,
    allchannels: bool,
    channels: Vec<Vec<u8>>,
}

/// The keys of one request, found once for all of a user's selectors.
pub(super) type KeyCache = Option<Vec<(usize, u8)>>;

impl Selector {
    /// ACLCreateSelector: nothing allowed; channels as `acl-pubsub-default`.
    pub(super) fn new() -> Selector {
        Selector {
            allowed: vec![0; universe().words()],
            future: false,
            firstargs: BTreeMap::new(),
            allkeys: false,
            patterns: Vec::new(),
            allchannels: PUBSUB_DEFAULT_ALL.load(std::sync::atomic::Ordering::Relaxed),
            channels: Vec::new(),
        }
    }

    /// A `(...)` selector: its rules split as sdssplitargs does (bad quoting
    /// gives an empty selector, as Redis).
    pub(super) fn parse(body: &[u8]) -> Result<Selector, RuleError> {
        let mut s = Selector::new();
        for op in crate::protocol::parser_split_args(body).unwrap_or_default() {
            s.apply_selector(&op)?;
        }
        Ok(s)
    }

    /// Every command, key and channel.
    pub(super) fn unrestricted(&self) -> bool {
        let n = universe().cmds.len();
        self.allkeys && self.allchannels && (0..n).all(|i| self.bit(i))
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
    pub(super) fn change_perm(&mut self, id: usize, v: bool) {
        self.set_bit(id, v);
        self.firstargs.remove(&id);
        for &s in &universe().cmds[id].subs {
            self.set_bit(s, v);
        }
    }

    pub(super) fn set_category(&mut self, cat: u32, v: bool) {
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

    pub(super) fn all_commands(&mut self, v: bool) {
        for w in self.allowed.iter_mut() {
            *w = if v { u64::MAX } else { 0 };
        }
        self.future = v;
        self.firstargs.clear();
    }

    /// ACLSetSelector: command, key and channel rules.
    pub(super) fn apply_selector(&mut self, op: &[u8]) -> Result<(), RuleError> {
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
        let mut fake = Selector::new();
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

    fn describe_single(&self, fake: &mut Selector, id: usize, rules: &mut String) {
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

    fn pattern_string(pat: &[u8], flags: u8) -> String {
        let prefix = match flags {
            KEY_READ => "%R~",
            KEY_WRITE => "%W~",
            _ => "~",
        };
        format!("{prefix}{}", String::from_utf8_lossy(pat))
    }

    /// ACLDescribeSelector: keys, channels, then command rules.
    pub(super) fn describe(&self) -> String {
        let mut s = String::new();
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

    /// Any key may be read (ACLSelectorHasUnrestrictedKeyAccess for reads):
    /// SORT's BY and GET patterns need it.
    pub(super) fn unrestricted_read_keys(&self) -> bool {
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

    pub(super) fn check_channel(&self, ch: &[u8], is_pattern: bool) -> bool {
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
    pub(super) fn check_cmd(
        &self,
        id: usize,
        no_auth: bool,
        args: &[Bytes],
        keys: &mut KeyCache,
    ) -> Result<(), Denied> {
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
            for &(pos, need) in keys.get_or_insert_with(|| u.keys(id, args)).iter() {
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
    /// Which denial of several selectors is reported (ACLCheckAllUserCommandPerm):
    /// channel over key over command, then the later argument.
    pub(super) fn outranks(self, other: Denied) -> bool {
        let rank = |d: Denied| match d {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        };
        rank(self) > rank(other)
    }

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
