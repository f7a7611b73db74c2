//! One spec per command: the facts Redis 7.0 publishes about each command
//! (arity, flags, key specs, ACL categories, tips, docs and arguments), as
//! static data generated from Redis's `src/commands/*.json` by
//! `tools/gen-command-spec.py`. The command table (`commands::table`) links
//! each of keel's commands to its spec; COMMAND INFO/DOCS/GETKEYS, the ACL
//! universe and key extraction for routing are all read from here.
//!
//! This is a lower layer: it imports nothing but `protocol`.

mod generated;

use bytes::Bytes;

use crate::protocol::Out;

pub use generated::SPECS;

/// Command flags. The visible ones are named as COMMAND INFO prints them.
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
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// Derived: key positions depend on the arguments.
    pub const MOVABLE_KEYS: u32 = 1 << 19;
    pub const PROTECTED: u32 = 1 << 20;
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 21;
    pub const SENTINEL: u32 = 1 << 22;
    /// keel's own, hidden: a container whose subcommands write (XGROUP), so
    /// it is replicated when it changed data without the write flag.
    pub const WRITE_SUBCOMMANDS: u32 = 1 << 23;
    /// keel's own, hidden: a keyless write that marks the watchers it
    /// affects itself (FLUSHDB, FLUSHALL, SWAPDB), so the after-write pass
    /// does not touch every watched key of the shard.
    pub const TOUCHES_OWN_WATCHES: u32 = 1 << 24;

    /// The flags COMMAND INFO shows, in Redis's order (the others are hidden).
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
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories, one bit each in the order of `CATEGORIES`.
pub mod cat {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
}

/// Redis's categories, in its order (ACL CAT, COMMAND INFO, rule descriptions).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Key-spec flags, one bit each in the order of `KEY_FLAG_NAMES`.
pub mod kf {
    pub const RO: u16 = 1 << 0;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;
}

/// Redis's key-spec flags, in the order COMMAND shows them.
pub const KEY_FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// Argument flags of COMMAND DOCS.
pub mod af {
    pub const OPTIONAL: u8 = 1 << 0;
    pub const MULTIPLE: u8 = 1 << 1;
    pub const MULTIPLE_TOKEN: u8 = 1 << 2;
}

pub const DOC_DEPRECATED: u8 = 1 << 0;
pub const DOC_SYSCMD: u8 = 1 << 1;

pub enum Begin {
    Index(i32),
    /// Keyword, startfrom (negative: from the end, searching backwards).
    Keyword(&'static str, i32),
    Unknown,
}

pub enum Find {
    /// lastkey, keystep, limit.
    Range(i32, i32, i32),
    /// keynumidx, firstkey, keystep.
    Keynum(i32, i32, i32),
    Unknown,
}

pub struct KeySpec {
    pub notes: &'static str,
    pub flags: u16,
    pub begin: Begin,
    pub find: Find,
}

/// The argument-parsing key finders Redis uses where key specs cannot say
/// (incomplete or variable-flag specs) or fail on the request.
#[derive(Clone, Copy)]
pub enum GetKeys {
    Sort,
    SortRo,
    Migrate,
    Set,
    Bitfield,
    Georadius,
    Xread,
    /// Redis's genericGetKeys(store, numkeys, first, step).
    Numkeys(usize, usize, usize, usize),
}

pub struct Arg {
    pub name: &'static str,
    pub kind: &'static str,
    pub key_spec: i32,
    pub token: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub deprecated_since: &'static str,
    pub flags: u8,
    pub sub: &'static [Arg],
}

/// One command or subcommand. Empty strings are absent fields.
pub struct Spec {
    /// Full name, lower case: "get", "config|get".
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// `cat` bits, with the ones Redis derives from the flags.
    pub acl: u32,
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    /// The legacy (first, last, step) COMMAND INFO shows.
    pub range: (i32, i32, i32),
    pub getkeys: Option<GetKeys>,
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub doc_flags: u8,
    pub deprecated_since: &'static str,
    pub replaced_by: &'static str,
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [Arg],
    /// Sorted by name.
    pub subs: &'static [Spec],
}

/// The spec of a top-level command by its lower-case name.
pub fn find(name: &str) -> Option<&'static Spec> {
    SPECS
        .binary_search_by(|s| s.name.cmp(name))
        .ok()
        .map(|i| &SPECS[i])
}

/// The spec of "name" or "container|sub", case-insensitive.
pub fn find_full(name: &str) -> Option<&'static Spec> {
    let l = name.to_ascii_lowercase();
    match l.split_once('|') {
        None => find(&l),
        Some((c, s)) => find(c)?.sub(s.as_bytes()),
    }
}

/// A key of a request: its argument index and the spec's flags.
pub type KeyRef = (usize, u16);

/// C's atoi, which Redis's numkeys finders use.
fn atoi(s: &[u8]) -> i64 {
    let mut it = s.iter().skip_while(|b| b.is_ascii_whitespace()).peekable();
    let neg = match it.peek() {
        Some(b'-') => {
            it.next();
            true
        }
        Some(b'+') => {
            it.next();
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for &b in it {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add((b - b'0') as i64);
    }
    let n = if neg { -n } else { n };
    n.clamp(i32::MIN as i64, i32::MAX as i64)
}

/// Redis's string2ll as numkeys parsing in key specs needs it.
fn parse_ll(s: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with('+') || (t.len() > 1 && t.starts_with('0')) || t == "-0" {
        return None;
    }
    t.parse().ok()
}

impl Spec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The subcommand `name` (case-insensitive).
    pub fn sub(&self, name: &[u8]) -> Option<&'static Spec> {
        let n = self.name.len() + 1;
        // Subcommands live in static data, so the reference is 'static.
        let subs: &'static [Spec] = self.subs;
        subs.iter()
            .find(|s| s.name.as_bytes()[n..].eq_ignore_ascii_case(name))
    }

    /// True when `n` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 {
            n == self.arity as usize
        } else {
            n >= (-self.arity) as usize
        }
    }

    /// doesCommandHaveKeys: a key spec that is not NOT_KEY, or a finder.
    pub fn has_keys(&self) -> bool {
        self.getkeys.is_some() || self.key_specs.iter().any(|k| k.flags & kf::NOT_KEY == 0)
    }

    /// The keys of a request (args[0] is the command name), as Redis's
    /// getKeysFromCommandWithSpecs finds them: the key specs when they are
    /// complete and their flags fixed, else the command's key finder.
    pub fn keys(&self, args: &[Bytes], out: &mut Vec<KeyRef>) {
        out.clear();
        let varflags = self
            .key_specs
            .iter()
            .any(|k| k.flags & kf::VARIABLE_FLAGS != 0);
        let real = self.key_specs.iter().any(|k| k.flags & kf::NOT_KEY == 0);
        if real && !varflags && self.keys_from_specs(args, out) {
            return;
        }
        out.clear();
        if let Some(g) = self.getkeys {
            getkeys(g, args, out);
            // Finders trust the arity check; callers may not have made it.
            out.retain(|&(p, _)| p < args.len());
        }
    }

    /// Argument indexes of the keys, for routing: every key the command
    /// may touch. Where the specs and the command's finder disagree (the
    /// specs name GEORADIUS's first STORE, the command stores into the last
    /// one), that is both.
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        let mut v = Vec::new();
        self.keys(args, &mut v);
        let mut pos: Vec<usize> = v.iter().map(|k| k.0).collect();
        if let Some(g) = self.getkeys {
            v.clear();
            getkeys(g, args, &mut v);
            for (p, _) in v {
                if p < args.len() && !pos.contains(&p) {
                    pos.push(p);
                }
            }
        }
        pos
    }

    /// getKeysUsingKeySpecs; false where a spec cannot resolve the request.
    fn keys_from_specs(&self, args: &[Bytes], out: &mut Vec<KeyRef>) -> bool {
        let argc = args.len() as i64;
        for spec in self.key_specs {
            if spec.flags & kf::NOT_KEY != 0 {
                continue;
            }
            let first: i64 = match spec.begin {
                Begin::Index(p) => p as i64,
                Begin::Keyword(word, from) => {
                    let from = from as i64;
                    let (start, end) = if from > 0 {
                        (from, argc - 1)
                    } else {
                        (argc + from, 1)
                    };
                    let mut found = 0;
                    let mut i = start;
                    while i != end {
                        if i >= argc || i < 1 {
                            break;
                        }
                        if args[i as usize].eq_ignore_ascii_case(word.as_bytes()) {
                            found = i + 1;
                            break;
                        }
                        i += if start <= end { 1 } else { -1 };
                    }
                    if found == 0 {
                        continue;
                    }
                    found
                }
                Begin::Unknown => return false,
            };
            let (first, last, step) = match spec.find {
                Find::Range(lastkey, step, limit) => {
                    let (lastkey, limit) = (lastkey as i64, limit as i64);
                    let last = if lastkey >= 0 {
                        first + lastkey
                    } else if limit == 0 {
                        argc + lastkey
                    } else {
                        first + ((argc - first) / limit + lastkey)
                    };
                    (first, last, step as i64)
                }
                Find::Keynum(idx, firstkey, step) => {
                    if idx as i64 >= argc {
                        return false;
                    }
                    let Some(n) = args
                        .get((first + idx as i64) as usize)
                        .and_then(|a| parse_ll(a))
                        .filter(|n| *n >= 0)
                    else {
                        return false;
                    };
                    let f = first + firstkey as i64;
                    (f, f.saturating_add(n - 1), step as i64)
                }
                Find::Unknown => return false,
            };
            if last >= argc || last < first || first >= argc {
                return false;
            }
            let mut i = first;
            while i <= last {
                out.push((i as usize, spec.flags));
                i += step.max(1);
            }
            if spec.flags & kf::INCOMPLETE != 0 {
                return false;
            }
        }
        true
    }
}

/// Redis's per-command key finders (db.c), reimplemented.
fn getkeys(g: GetKeys, args: &[Bytes], out: &mut Vec<KeyRef>) {
    let argc = args.len();
    let is = |i: usize, w: &str| args[i].eq_ignore_ascii_case(w.as_bytes());
    match g {
        GetKeys::Sort => {
            out.push((1, kf::RO | kf::ACCESS));
            // The last STORE wins; LIMIT, GET and BY take arguments.
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argc {
                    store = Some(i + 1);
                }
                i += 1;
            }
            if let Some(s) = store {
                out.push((s, kf::OW | kf::UPDATE));
            }
        }
        GetKeys::SortRo => out.push((1, kf::RO | kf::ACCESS)),
        GetKeys::Migrate => {
            let (mut first, mut num) = (3, 1);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    if is(i, "keys") {
                        if args[3].is_empty() {
                            first = i + 1;
                            num = argc - first;
                        } else {
                            num = 0;
                        }
                        break;
                    }
                    if is(i, "auth") {
                        i += 1;
                    } else if is(i, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            out.extend((first..first + num).map(|p| (p, kf::RW | kf::ACCESS | kf::DELETE)));
        }
        GetKeys::Set => {
            let get = (3..argc).any(|i| is(i, "get"));
            let f = if get {
                kf::RW | kf::ACCESS | kf::UPDATE
            } else {
                kf::OW | kf::UPDATE
            };
            out.push((1, f));
        }
        GetKeys::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rem = argc - i - 1;
                if is(i, "get") && rem >= 2 {
                    i += 2;
                } else if (is(i, "set") || is(i, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if is(i, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            let f = if readonly {
                kf::RO | kf::ACCESS
            } else {
                kf::RW | kf::ACCESS | kf::UPDATE
            };
            out.push((1, f));
        }
        GetKeys::Georadius => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (is(i, "store") || is(i, "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            out.push((1, 0));
            if let Some(s) = stored {
                out.push((s, 0));
            }
        }
        GetKeys::Xread => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                if is(i, "block") || is(i, "count") {
                    i += 1;
                } else if is(i, "group") {
                    i += 2;
                } else if is(i, "noack") {
                } else if is(i, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(s) = streams else { return };
            let num = argc - s - 1;
            if num == 0 || !num.is_multiple_of(2) {
                return;
            }
            out.extend((s + 1..argc - num / 2).map(|p| (p, 0)));
        }
        GetKeys::Numkeys(store, count, first, step) => {
            let Some(a) = args.get(count) else { return };
            let num = atoi(a);
            if num < 1 || num > (argc as i64 - first as i64) / step as i64 {
                return;
            }
            out.extend((0..num as usize).map(|i| (first + i * step, 0)));
            if store != 0 {
                out.push((store, 0));
            }
        }
    }
}

// ---------------------------------------------------------------- replies

fn write_flag_set<T: Copy + std::ops::BitAnd<Output = T> + PartialEq + Default>(
    out: &mut Out,
    flags: T,
    names: &[(T, &str)],
) {
    let on: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags & *f != T::default())
        .map(|(_, n)| *n)
        .collect();
    out.set(on.len());
    for n in on {
        out.simple(n);
    }
}

/// The key flags of a key reference as COMMAND shows them.
pub fn write_key_flags(out: &mut Out, flags: u16) {
    let names: Vec<(u16, &str)> = KEY_FLAG_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (1u16 << i, *n))
        .collect();
    write_flag_set(out, flags, &names);
}

fn write_key_specs(out: &mut Out, specs: &[KeySpec]) {
    out.set(specs.len());
    for ks in specs {
        out.map(3 + !ks.notes.is_empty() as usize);
        if !ks.notes.is_empty() {
            out.bulk_str("notes");
            out.bulk_str(ks.notes);
        }
        out.bulk_str("flags");
        write_key_flags(out, ks.flags);
        out.bulk_str("begin_search");
        out.map(2);
        out.bulk_str("type");
        match ks.begin {
            Begin::Index(p) => {
                out.bulk_str("index");
                out.bulk_str("spec");
                out.map(1);
                out.bulk_str("index");
                out.int(p as i64);
            }
            Begin::Keyword(k, from) => {
                out.bulk_str("keyword");
                out.bulk_str("spec");
                out.map(2);
                out.bulk_str("keyword");
                out.bulk_str(k);
                out.bulk_str("startfrom");
                out.int(from as i64);
            }
            Begin::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
        }
        out.bulk_str("find_keys");
        out.map(2);
        out.bulk_str("type");
        let (kind, fields): (&str, [(&str, i32); 3]) = match ks.find {
            Find::Range(l, s, lim) => ("range", [("lastkey", l), ("keystep", s), ("limit", lim)]),
            Find::Keynum(i, f, s) => (
                "keynum",
                [("keynumidx", i), ("firstkey", f), ("keystep", s)],
            ),
            Find::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
                continue;
            }
        };
        out.bulk_str(kind);
        out.bulk_str("spec");
        out.map(3);
        for (k, v) in fields {
            out.bulk_str(k);
            out.int(v as i64);
        }
    }
}

/// The categories of `acl` bits as COMMAND INFO shows them ("@read").
fn write_categories(out: &mut Out, acl: u32) {
    let on: Vec<&str> = (0..CATEGORIES.len())
        .filter(|i| acl & (1 << i) != 0)
        .map(|i| CATEGORIES[i])
        .collect();
    out.set(on.len());
    for c in on {
        out.simple(&format!("@{c}"));
    }
}

/// One COMMAND INFO entry; `has_sub` says which subcommands keel has.
pub fn write_info(out: &mut Out, s: &Spec, has_sub: &dyn Fn(&Spec) -> bool) {
    out.array(10);
    out.bulk_str(s.name);
    out.int(s.arity as i64);
    write_flag_set(out, s.flags, flags::NAMES);
    out.int(s.range.0 as i64);
    out.int(s.range.1 as i64);
    out.int(s.range.2 as i64);
    write_categories(out, s.acl);
    out.set(s.tips.len());
    for t in s.tips {
        out.bulk_str(t);
    }
    write_key_specs(out, s.key_specs);
    if s.subs.is_empty() {
        out.set(0);
        return;
    }
    let subs: Vec<&Spec> = s.subs.iter().filter(|x| has_sub(x)).collect();
    out.array(subs.len());
    for x in subs {
        write_info(out, x, has_sub);
    }
}

fn write_args(out: &mut Out, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let nested = matches!(a.kind, "oneof" | "block");
        // A pure token always has one, even empty (MIGRATE's `""`).
        let has_token = !a.token.is_empty() || a.kind == "pure-token";
        let n = 2
            + (a.key_spec >= 0) as usize
            + has_token as usize
            + !a.summary.is_empty() as usize
            + !a.since.is_empty() as usize
            + !a.deprecated_since.is_empty() as usize
            + (a.flags != 0) as usize
            + nested as usize;
        out.map(n);
        out.bulk_str("name");
        out.bulk_str(a.name);
        out.bulk_str("type");
        out.bulk_str(a.kind);
        if a.key_spec >= 0 {
            out.bulk_str("key_spec_index");
            out.int(a.key_spec as i64);
        }
        if has_token {
            out.bulk_str("token");
            out.bulk_str(a.token);
        }
        for (k, v) in [
            ("summary", a.summary),
            ("since", a.since),
            ("deprecated_since", a.deprecated_since),
        ] {
            if !v.is_empty() {
                out.bulk_str(k);
                out.bulk_str(v);
            }
        }
        if a.flags != 0 {
            out.bulk_str("flags");
            write_flag_set(
                out,
                a.flags,
                &[
                    (af::OPTIONAL, "optional"),
                    (af::MULTIPLE, "multiple"),
                    (af::MULTIPLE_TOKEN, "multiple_token"),
                ],
            );
        }
        if nested {
            out.bulk_str("arguments");
            write_args(out, a.sub);
        }
    }
}

/// One COMMAND DOCS value (the name is written by the caller).
pub fn write_docs(out: &mut Out, s: &Spec, has_sub: &dyn Fn(&Spec) -> bool) {
    let strs = [
        ("summary", s.summary),
        ("since", s.since),
        ("group", s.group),
        ("complexity", s.complexity),
    ];
    let n = strs.iter().filter(|(_, v)| !v.is_empty()).count()
        + (s.doc_flags != 0) as usize
        + !s.deprecated_since.is_empty() as usize
        + !s.replaced_by.is_empty() as usize
        + !s.history.is_empty() as usize
        + !s.args.is_empty() as usize
        + !s.subs.is_empty() as usize;
    out.map(n);
    for (k, v) in strs {
        if !v.is_empty() {
            out.bulk_str(k);
            out.bulk_str(v);
        }
    }
    if s.doc_flags != 0 {
        out.bulk_str("doc_flags");
        write_flag_set(
            out,
            s.doc_flags,
            &[(DOC_DEPRECATED, "deprecated"), (DOC_SYSCMD, "syscmd")],
        );
    }
    for (k, v) in [
        ("deprecated_since", s.deprecated_since),
        ("replaced_by", s.replaced_by),
    ] {
        if !v.is_empty() {
            out.bulk_str(k);
            out.bulk_str(v);
        }
    }
    if !s.history.is_empty() {
        out.bulk_str("history");
        out.set(s.history.len());
        for (since, what) in s.history {
            out.array(2);
            out.bulk_str(since);
            out.bulk_str(what);
        }
    }
    if !s.args.is_empty() {
        out.bulk_str("arguments");
        write_args(out, s.args);
    }
    if !s.subs.is_empty() {
        out.bulk_str("subcommands");
        let subs: Vec<&Spec> = s.subs.iter().filter(|x| has_sub(x)).collect();
        out.map(subs.len());
        for x in subs {
            out.bulk_str(x.name);
            write_docs(out, x, has_sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_sorted_for_binary_search() {
        assert!(SPECS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(find("get").unwrap().arity, 2);
        assert_eq!(find_full("CONFIG|GET").unwrap().name, "config|get");
        assert!(find("nosuch").is_none());
    }

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn keys_follow_specs_and_finders() {
        let pos = |c: &str, a: &str| find(c).unwrap().key_positions(&argv(a));
        assert_eq!(pos("zunionstore", "zunionstore d 2 a b"), vec![1, 3, 4]);
        assert_eq!(pos("eval", "eval s 2 a b c"), vec![3, 4]);
        assert_eq!(pos("eval", "eval s 3 a b"), Vec::<usize>::new());
        assert_eq!(pos("xread", "xread count 2 streams a b 0 0"), vec![4, 5]);
        assert_eq!(pos("sort", "sort k by x store d"), vec![1, 5]);
        assert_eq!(
            pos("migrate", "migrate h 1 \"\" 0 5 keys a b"),
            Vec::<usize>::new()
        );
        assert_eq!(pos("migrate", "migrate h 1  0 5 keys a b"), vec![7, 8]);
        assert_eq!(pos("georadius", "georadius k 1 2 3 m store d"), vec![1, 7]);
        // The last STORE is where the result goes: routing holds it too.
        assert_eq!(
            pos("georadius", "georadius k 1 2 3 m store d store e"),
            vec![1, 7, 9]
        );
        assert_eq!(pos("mset", "mset a 1 b 2"), vec![1, 3]);
        // Hostile numkeys: no overflow, no keys.
        assert!(pos("eval", "eval s 9223372036854775807 a").is_empty());
        assert!(pos("zunionstore", "zunionstore d 9223372036854775807 a").is_empty());
        assert!(pos("lmpop", "lmpop -9223372036854775808 a left").is_empty());
    }
}
