//! SORT and SORT_RO (Redis 7.0's sort.c semantics, keel's own code).
//!
//! BY and GET patterns name keys that are not in the arguments, so a SORT
//! with a `*` BY pattern or any GET holds every shard (`Command::unknown_keys`):
//! the whole command is atomic whichever shards those keys live on.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::storage::Value;
use crate::storage::list::List;

pub fn commands() -> Vec<Command> {
    vec![
        cmd("sort", -2, WRITE | DENYOOM, sort)
            .keys(1, 1, 1)
            .unknown_keys(reaches_other_keys),
        // A keys function (always just the key) so COMMAND INFO shows
        // movablekeys, as Redis's sortROGetKeys does.
        cmd("sort_ro", -2, READONLY, sort_ro)
            .keys(1, 1, 1)
            .unknown_keys(reaches_other_keys),
    ]
}

/// Whether the command may read keys named by patterns: any GET, or a BY
/// pattern with a `*`. A superset of what the parser accepts, so every
/// SORT that looks keys up holds every shard (and runs where the caller's
/// ACL user is known, for the full-key-access rule).
fn reaches_other_keys(args: &[Bytes]) -> bool {
    (2..args.len().saturating_sub(1)).any(|i| {
        eq_ic(&args[i], "get") || (eq_ic(&args[i], "by") && cstr(&args[i + 1]).contains(&b'*'))
    })
}

/// The bytes of `s` up to its first NUL: Redis reads patterns with C string
/// functions (strchr, strstr) while it takes lengths from the whole string.
fn cstr(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

fn sort(ctx: &mut Ctx, args: &[Bytes]) {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) {
    sort_generic(ctx, args, true)
}

struct Opts {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY without `*`: keep the value's own order (sticky, as in Redis).
    dontsort: bool,
    gets: Vec<Bytes>,
}

/// Parses the options as sortCommandGeneric does, replying the first error.
fn parse(ctx: &mut Ctx, args: &[Bytes], readonly: bool) -> Option<Opts> {
    let mut o = Opts {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let cluster = ctx.srv.cluster.is_some();
    let mut full_access: Option<bool> = None;
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            match (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) {
                (Some(s), Some(c)) => {
                    o.limit_start = s;
                    o.limit_count = c;
                }
                _ => {
                    ctx.out.err(errors::NOT_INT);
                    return None;
                }
            }
            j += 2;
        } else if !readonly && eq_ic(a, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let pat = args[j + 1].clone();
            if !cstr(&pat).contains(&b'*') {
                o.dontsort = true;
            } else {
                if cluster {
                    ctx.out.err("ERR BY option of SORT denied in Cluster mode.");
                    return None;
                }
                if !*full_access.get_or_insert_with(|| full_key_access(ctx, args, readonly)) {
                    ctx.out
                        .err("ERR BY option of SORT denied due to insufficient ACL permissions.");
                    return None;
                }
            }
            o.by = Some(pat);
            j += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            if cluster {
                ctx.out
                    .err("ERR GET option of SORT denied in Cluster mode.");
                return None;
            }
            if !*full_access.get_or_insert_with(|| full_key_access(ctx, args, readonly)) {
                ctx.out
                    .err("ERR GET option of SORT denied due to insufficient ACL permissions.");
                return None;
            }
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            ctx.out.err(errors::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// Whether the caller may read any key (ACLUserCheckCmdWithUnrestrictedKeyAccess):
/// BY and GET patterns reach keys the ACL check never saw.
fn full_key_access(ctx: &Ctx, args: &[Bytes], readonly: bool) -> bool {
    if crate::replication::replica::MasterApply::active() {
        return true;
    }
    let name = if readonly { "sort_ro" } else { "sort" };
    let allowed = |u: &crate::acl::User| crate::acl::read_all_keys(u, name, args);
    if let Some(c) = ctx.client.as_ref() {
        return allowed(&c.user);
    }
    // Inside a script: its caller, when restricted. Routing runs every SORT
    // with BY/GET patterns on the connection's thread (`client` set), so
    // nothing else gets here.
    ctx.caller.as_ref().is_none_or(|c| allowed(&c.0))
}

/// One element to sort: its value, and what it sorts by.
struct Item {
    obj: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

impl Item {
    fn new(obj: Vec<u8>) -> Item {
        Item {
            obj,
            score: 0.0,
            cmp: None,
        }
    }
}

/// What the sorted key holds, copied out so other keys can be looked up.
enum Source {
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Members in rank order.
    ZSet(Vec<Vec<u8>>),
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], readonly: bool) {
    let Some(mut o) = parse(ctx, args, readonly) else {
        return;
    };
    let key = &args[1];
    let src = match ctx.lookup_read(key).map(|e| &e.value) {
        None => Source::List(Vec::new()),
        Some(Value::List(l)) => Source::List(l.iter().map(<[u8]>::to_vec).collect()),
        Some(Value::Set(s)) => Source::Set(s.iter().map(<[u8]>::to_vec).collect()),
        Some(Value::ZSet(z)) => Source::ZSet(z.iter().map(|(m, _)| m.to_vec()).collect()),
        Some(_) => return ctx.out.err(errors::WRONGTYPE),
    };
    if let Source::ZSet(_) = src {
        // Redis converts a listpack zset for SORT, for good (OBJECT ENCODING).
        let now = ctx.now;
        if let Some(e) = ctx.db(key).get_mut(key, now)
            && let Value::ZSet(z) = &mut e.value
        {
            z.to_skiplist();
        }
    }
    // A set in its own order is not repeatable: sorted when stored or when
    // a script reads it, so replicas and scripts see one result.
    if o.dontsort && matches!(src, Source::Set(_)) && (o.store.is_some() || ctx.in_script) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = match &src {
        Source::List(v) | Source::Set(v) | Source::ZSet(v) => v.len() as i64,
    };

    // LIMIT, clamped as Redis does.
    let mut start = o.limit_start.max(0).min(len);
    let count = o.limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let ordered = matches!(src, Source::List(_) | Source::ZSet(_));
    let mut vector: Vec<Item> = if ordered && o.dontsort {
        // The value's own order (reversed by DESC), just the LIMIT range.
        let (Source::List(v) | Source::ZSet(v)) = src else {
            unreachable!()
        };
        let want = if start != 0 || end != len - 1 {
            (end - start + 1).max(0) as usize
        } else {
            len as usize
        };
        let skip = start.max(0) as usize;
        let items: Vec<Item> = if o.desc {
            let it = v.into_iter().rev().skip(skip).take(want);
            it.map(Item::new).collect()
        } else {
            let it = v.into_iter().skip(skip).take(want);
            it.map(Item::new).collect()
        };
        // The output range is now relative to what was loaded.
        end -= start;
        start = 0;
        items
    } else {
        let (Source::List(v) | Source::Set(v) | Source::ZSet(v)) = src;
        v.into_iter().map(Item::new).collect()
    };

    let mut conversion_error = false;
    if !o.dontsort {
        for it in vector.iter_mut() {
            let by_val = match &o.by {
                Some(p) => match lookup_by_pattern(ctx, p, &it.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => {
                    if !o.alpha {
                        match strtod_whole(&it.obj) {
                            Some(s) => it.score = s,
                            None => conversion_error = true,
                        }
                    }
                    continue;
                }
            };
            if o.alpha {
                it.cmp = Some(by_val);
            } else {
                match strtod_whole(&by_val) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let by = o.by.is_some();
        let store = o.store.is_some();
        let (alpha, desc) = (o.alpha, o.desc);
        vector.sort_by(|a, b| {
            let c = compare(a, b, alpha, by, store);
            if desc { c.reverse() } else { c }
        });
    }

    let ranged = (end - start + 1).max(0) as usize;
    let outputlen = if o.gets.is_empty() {
        ranged
    } else {
        o.gets.len() * ranged
    };
    if conversion_error {
        return ctx
            .out
            .err("ERR One or more scores can't be converted into double");
    }
    let range = if ranged == 0 {
        &vector[..0]
    } else {
        &vector[start as usize..=end as usize]
    };
    let Some(dst) = o.store.take() else {
        ctx.out.array(outputlen);
        for it in range {
            if o.gets.is_empty() {
                ctx.out.bulk(&it.obj);
            }
            for g in &o.gets {
                match lookup_by_pattern(ctx, g, &it.obj) {
                    Some(v) => ctx.out.bulk(&v),
                    None => ctx.out.null(),
                }
            }
        }
        return;
    };
    let mut list = List::new();
    for it in range {
        if o.gets.is_empty() {
            list.items.push_back(it.obj.clone());
        }
        for g in &o.gets {
            list.items
                .push_back(lookup_by_pattern(ctx, g, &it.obj).unwrap_or_default());
        }
    }
    // A stale destination expires first, as Redis's lookups do.
    let _ = ctx.lookup_write(&dst);
    if outputlen > 0 {
        ctx.db(&dst).set(&dst, Value::List(Box::new(list)));
        ctx.dirty(&dst, outputlen as u64);
        ctx.notify(ev::LIST, "sortstore", &dst);
        ctx.signal_ready(&dst);
    } else if ctx.db(&dst).remove(&dst).is_some() {
        ctx.dirty(&dst, 1);
        ctx.notify(ev::GENERIC, "del", &dst);
    }
    ctx.out.int(outputlen as i64);
}

/// sortCompare: numbers (ties by the element's bytes), or ALPHA on the
/// element or on its BY value (missing values first). STORE compares bytes;
/// a reply collates as strcoll in the C locale (up to a NUL).
fn compare(a: &Item, b: &Item, alpha: bool, by: bool, store: bool) -> Ordering {
    if !alpha {
        return match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.obj.cmp(&b.obj),
            Some(o) => o,
        };
    }
    let text = |x: &[u8], y: &[u8]| {
        if store {
            x.cmp(y)
        } else {
            cstr(x).cmp(cstr(y))
        }
    };
    if by {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => text(x, y),
        }
    } else {
        text(&a.obj, &b.obj)
    }
}

/// A sort weight as Redis reads it: C's strtod over the string up to a NUL,
/// leading spaces allowed, nothing after the number, no NaN, no overflow
/// or underflow (ERANGE).
fn strtod_whole(s: &[u8]) -> Option<f64> {
    let s = cstr(s);
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod only
    // reads it and stores a pointer into it in `end`.
    let (v, consumed, erange) = unsafe {
        *libc::__errno_location() = 0;
        let p = buf.as_ptr() as *const libc::c_char;
        let v = libc::strtod(p, &mut end);
        let erange = *libc::__errno_location() == libc::ERANGE;
        (v, end.offset_from(p) as usize, erange)
    };
    (consumed == s.len() && !erange && !v.is_nan()).then_some(v)
}

/// lookupKeyByPattern: `#` is the element itself; otherwise the first `*`
/// is replaced by the element, and `key->field` reads a hash field. Only
/// strings (and hash fields) are returned.
fn lookup_by_pattern(ctx: &mut Ctx, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    let c = cstr(pattern);
    if c == b"#" {
        return Some(subst.to_vec());
    }
    let star = c.iter().position(|&b| b == b'*')?;
    let field_len = c[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| star + 1 + p)
        .filter(|&arrow| arrow + 2 < c.len())
        .map(|arrow| pattern.len() - arrow - 2);
    let post_end = pattern.len() - field_len.map_or(0, |f| f + 2);
    let mut key = Vec::with_capacity(pattern.len() + subst.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..post_end.max(star + 1)]);
    let entry = ctx.lookup_read(&key)?;
    match (field_len, &entry.value) {
        (Some(f), Value::Hash(h)) => h.get(&pattern[pattern.len() - f..]).map(<[u8]>::to_vec),
        (None, Value::Str(s)) => Some(s.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn keys_follow_sortgetkeys() {
        let keys = |v: &[&str]| crate::cmdspec::find(v[0]).unwrap().key_positions(&a(v));
        assert_eq!(keys(&["sort", "k"]), vec![1]);
        assert_eq!(keys(&["sort", "k", "store", "d"]), vec![1, 3]);
        assert_eq!(keys(&["sort", "k", "store", "d", "STORE", "e"]), vec![1, 5]);
        assert_eq!(keys(&["sort", "k", "get", "store", "x"]), vec![1]);
        assert_eq!(keys(&["sort", "k", "limit", "store", "x", "y"]), vec![1]);
        assert_eq!(keys(&["sort", "k", "store"]), vec![1]);
        assert_eq!(keys(&["sort_ro", "k", "store", "d"]), vec![1]);
    }

    #[test]
    fn reach_needs_get_or_a_star_pattern() {
        assert!(!reaches_other_keys(&a(&["sort", "k", "by", "nosort"])));
        assert!(reaches_other_keys(&a(&["sort", "k", "by", "w_*"])));
        assert!(reaches_other_keys(&a(&["sort", "k", "get", "#"])));
        assert!(!reaches_other_keys(&a(&["sort", "k", "alpha", "get"])));
    }

    #[test]
    fn weights_parse_like_strtod() {
        assert_eq!(strtod_whole(b""), Some(0.0));
        assert_eq!(strtod_whole(b" 3"), Some(3.0));
        assert_eq!(strtod_whole(b"3 "), None);
        assert_eq!(strtod_whole(b"0x10"), Some(16.0));
        assert_eq!(strtod_whole(b"1\0zz"), Some(1.0));
        assert_eq!(strtod_whole(b"nan"), None);
        assert_eq!(strtod_whole(b"1e400"), None);
        assert_eq!(strtod_whole(b"-inf"), Some(f64::NEG_INFINITY));
    }
}
