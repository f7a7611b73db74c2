//! Command, key and channel rules (Redis's selector rules) and the
//! permission check.

use bytes::Bytes;

use super::universe::{CATEGORIES, KEY_ALL, KEY_READ, KEY_WRITE, category_bit, channels, universe};
use super::user::{RuleError, User, has_spaces};
use crate::util::glob_match;

impl User {
    pub(super) fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    pub(super) fn set_bit(&mut self, id: usize, v: bool) {
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

    pub(super) fn count_category(&self, cat: u32) -> (usize, usize) {
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

    pub(super) fn pattern_string(pat: &[u8], flags: u8) -> String {
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

    /// Any key may be read (ACLSelectorHasUnrestrictedKeyAccess for reads):
    /// SORT's BY and GET patterns need it.
    pub fn unrestricted_read_keys(&self) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|(p, f)| f & KEY_READ == KEY_READ && p.as_slice() == b"*")
    }

    pub(super) fn check_key(&self, key: &[u8], need: u8) -> bool {
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
