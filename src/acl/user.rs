//! Users: flags, passwords, their selectors; the rules that are not
//! selector rules; the description of ACL LIST; the check over selectors.

use bytes::Bytes;

use super::selector::{Denied, KeyCache, RuleError, Selector};
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

#[derive(Clone)]
pub struct User {
    pub name: String,
    pub flags: u8,
    /// Hex SHA-256 of each password, in the order added.
    pub passwords: Vec<String>,
    /// The user's plain rules.
    root: Selector,
    /// `(...)` selectors, in the order added. Empty for most users, whose
    /// check is then the root's alone.
    selectors: Vec<Selector>,
    /// Every command, key and channel allowed: the check is skipped.
    pub unrestricted: bool,
}

/// ACLMergeSelectorArguments: a selector may come split over several
/// arguments ("(~k" "+get)"); they are joined with single spaces. Err: the
/// index of a selector's opening argument that never closes.
pub fn merge_selector_args<T: AsRef<[u8]>>(ops: &[T]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(ops.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, op) in ops.iter().enumerate() {
        let op = op.as_ref();
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().expect("open").1);
            }
        } else if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((i, op.to_vec()));
        } else {
            out.push(op.to_vec());
        }
    }
    match open {
        Some((i, _)) => Err(i),
        None => Ok(out),
    }
}

pub(super) fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

impl User {
    /// ACLCreateUser: disabled, nothing allowed.
    pub fn new(name: &str) -> User {
        // The root selector's channels follow `acl-pubsub-default`.
        let mut u = User {
            name: name.to_string(),
            flags: FLAG_OFF,
            passwords: Vec::new(),
            root: Selector::new(),
            selectors: Vec::new(),
            unrestricted: false,
        };
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

    /// Selectors only add rights: an unrestricted root is the whole story.
    fn refresh(&mut self) {
        self.unrestricted = self.root.unrestricted();
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
            let s = Selector::parse(&op[1..op.len() - 1])?;
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.clear();
        } else if is("reset") {
            for r in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "sanitize-payload",
                "clearselectors",
                "-@all",
            ] {
                self.apply_inner(r.as_bytes())?;
            }
            if PUBSUB_DEFAULT_ALL.load(std::sync::atomic::Ordering::Relaxed) {
                self.apply_inner(b"allchannels")?;
            }
        } else {
            return self.root.apply_selector(op);
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
        s.push_str(&self.root.describe());
        for sel in &self.selectors {
            s.push_str(" (");
            s.push_str(&sel.describe());
            s.push(')');
        }
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

    /// The root selector (GETUSER's top-level commands, keys, channels).
    pub fn root(&self) -> &Selector {
        &self.root
    }

    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// ACLCheckAllUserCommandPerm for request `args` of ACL command `id`:
    /// allowed when one selector allows all of it; else the denial Redis
    /// reports. With no selectors this is the root's check alone.
    pub fn check_cmd(&self, id: usize, no_auth: bool, args: &[Bytes]) -> Result<(), Denied> {
        let mut keys: KeyCache = None;
        let Err(mut worst) = self.root.check_cmd(id, no_auth, args, &mut keys) else {
            return Ok(());
        };
        for s in &self.selectors {
            match s.check_cmd(id, no_auth, args, &mut keys) {
                Ok(()) => return Ok(()),
                Err(d) if d.outranks(worst) => worst = d,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// ACLUserCheckCmdWithUnrestrictedKeyAccess for reads: one selector
    /// allows the request and any key to be read (SORT's BY and GET).
    pub fn read_all_keys(&self, id: usize, no_auth: bool, args: &[Bytes]) -> bool {
        let mut keys: KeyCache = None;
        std::iter::once(&self.root).chain(&self.selectors).any(|s| {
            s.check_cmd(id, no_auth, args, &mut keys).is_ok() && s.unrestricted_read_keys()
        })
    }

    /// Whether a subscription to `ch` (a pattern subscription when
    /// `is_pattern`) is allowed by any selector (ACLUserCheckChannelPerm).
    pub fn channel_allowed(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.unrestricted
            || std::iter::once(&self.root)
                .chain(&self.selectors)
                .any(|s| s.check_channel(ch, is_pattern))
    }
}
