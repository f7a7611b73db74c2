//! Users: flags, passwords and the rules that are not selector rules;
//! the description of ACL LIST.

use std::collections::BTreeMap;

use super::universe::universe;
use super::{PUBSUB_DEFAULT_ALL, sha256};

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
    pub(super) allowed: Vec<u64>,
    /// +@all was applied last among +@all/-@all: future commands allowed
    /// (Redis's reserved bit), so descriptions start with +@all.
    pub(super) future: bool,
    pub(super) firstargs: BTreeMap<usize, Vec<String>>,
    pub(super) allkeys: bool,
    pub(super) patterns: Vec<(Vec<u8>, u8)>,
    pub(super) allchannels: bool,
    pub(super) channels: Vec<Vec<u8>>,
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

pub(super) fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

pub(super) fn valid_hash(h: &[u8]) -> bool {
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

    pub(super) fn refresh(&mut self) {
        let n = universe().cmds.len();
        let all_cmds = (0..n).all(|i| self.bit(i));
        self.unrestricted = all_cmds && self.allkeys && self.allchannels;
    }

    /// Applies one rule (ACLSetUser). On error the user may be half
    /// changed: callers work on a copy.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let r = self.apply_inner(op);
        self.refresh();
        r
    }

    pub(super) fn apply_inner(&mut self, op: &[u8]) -> Result<(), RuleError> {
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

    pub fn flag_names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
            .collect()
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
}
