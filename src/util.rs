//! Small shared helpers.

/// Star runs a match may pass before giving up, as Redis since the
/// CVE-2024-31228 fix (its recursion depth limit): a pattern whose 1001st run
/// of `*` is followed by more pattern never matches.
const MAX_STAR_RUNS: usize = 1000;

/// Glob-style matching with the results of Redis's `stringmatchlen`: `*`,
/// `?`, `[...]` with ranges (either order) and `^` negation, `\` escapes;
/// `nocase` folds ASCII case. Stock's quirks are kept: only the empty
/// pattern matches the empty string (so `*` does not); an unterminated `[`
/// class ends with the pattern; `\x` inside a class ignores `nocase`;
/// range bounds compare as C's signed `char`, swapped before case folding.
///
/// Iterative, backtracking only to the last `*` (a longer match for an
/// earlier `*` cannot help once the rest failed everywhere after the last
/// one, which is Redis's "skip longer matches" short-cut): at most
/// O(string length x pattern length) steps, no recursion.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let (p, s) = (pattern, string);
    if s.is_empty() {
        return p.is_empty();
    }
    let (mut pi, mut si) = (0, 0);
    let mut runs = 0;
    // After the last star run: (pattern index after it, string index its
    // rest was last tried at, runs passed).
    let mut star: Option<(usize, usize, usize)> = None;
    loop {
        if si == s.len() {
            // The string is used up: only stars may remain.
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
        } else if pi < p.len() && p[pi] == b'*' {
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
            runs += 1;
            if runs > MAX_STAR_RUNS {
                // Every way to the end passes this run with string left.
                return false;
            }
            star = Some((pi, si, runs));
            continue;
        } else if pi < p.len() {
            let (ok, next) = token(p, pi, s[si], nocase);
            if ok {
                pi = next;
                si += 1;
                continue;
            }
        }
        // Mismatch: let the last star eat one more byte, if one is left
        // after it (the rest never starts on the empty tail).
        match star {
            Some((sp, ss, r)) if ss + 1 < s.len() => {
                star = Some((sp, ss + 1, r));
                (pi, si, runs) = (sp, ss + 1, r);
            }
            _ => return false,
        }
    }
}

fn lower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// Matches the one-byte token at `p[i]` (not `*`) against `c`; returns
/// whether it matched and where the next token starts.
fn token(p: &[u8], i: usize, c: u8, nocase: bool) -> (bool, usize) {
    let eq = |a: u8, b: u8| a == b || (nocase && a.eq_ignore_ascii_case(&b));
    match p[i] {
        b'?' => (true, i + 1),
        b'[' => class(p, i + 1, c, nocase),
        b'\\' if i + 1 < p.len() => (eq(p[i + 1], c), i + 2),
        b => (eq(b, c), i + 1),
    }
}

/// A `[...]` class whose body starts at `p[i]`.
fn class(p: &[u8], mut i: usize, c: u8, nocase: bool) -> (bool, usize) {
    let not = p.get(i) == Some(&b'^');
    if not {
        i += 1;
    }
    let mut hit = false;
    loop {
        let left = p.len() - i;
        if left >= 2 && p[i] == b'\\' {
            // Escaped member: exact, even with nocase (as stock).
            i += 1;
            hit |= p[i] == c;
        } else if left >= 1 && p[i] == b']' {
            break;
        } else if left == 0 {
            // Unterminated: the class ends with the pattern.
            return (hit != not, i);
        } else if left >= 3 && p[i + 1] == b'-' {
            // C's char is signed: bytes >= 0x80 sort below 0.
            let (mut lo, mut hi) = (p[i] as i8 as i32, p[i + 2] as i8 as i32);
            let mut x = c as i8 as i32;
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if nocase {
                (lo, hi, x) = (lower(lo), lower(hi), lower(x));
            }
            hit |= lo <= x && x <= hi;
            i += 2;
        } else {
            hit |= p[i] == c || (nocase && p[i].eq_ignore_ascii_case(&c));
        }
        i += 1;
    }
    (hit != not, i + 1)
}

/// A plain recursive statement of the same rules as [`glob_match`], with
/// its own token parser: exponential on some patterns, the fuzz target's
/// reference on short inputs.
pub fn glob_match_reference(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    enum Member {
        Exact(u8),
        Range(u8, u8),
        Byte(u8),
    }
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    // The class body at p (after '['): its members, negation, length used.
    let parse_class = |p: &[u8]| {
        let not = p.first() == Some(&b'^');
        let mut i = not as usize;
        let mut members = Vec::new();
        while i < p.len() {
            let rest = &p[i..];
            if rest[0] == b'\\' && rest.len() >= 2 {
                members.push(Member::Exact(rest[1]));
                i += 2;
            } else if rest[0] == b']' {
                i += 1;
                break;
            } else if rest.len() >= 3 && rest[1] == b'-' {
                members.push(Member::Range(rest[0], rest[2]));
                i += 3;
            } else {
                members.push(Member::Byte(rest[0]));
                i += 1;
            }
        }
        (members, not, i)
    };
    let in_class = |members: &[Member], c: u8| {
        members.iter().any(|m| match *m {
            Member::Exact(x) => x == c,
            Member::Byte(x) => fold(x) == fold(c),
            Member::Range(a, b) => {
                let (a, b) = (a as i8, b as i8);
                let (lo, hi) = (a.min(b) as u8, a.max(b) as u8);
                let (lo, hi, c) = (fold(lo) as i8, fold(hi) as i8, fold(c) as i8);
                lo <= c && c <= hi
            }
        })
    };
    // One token of `p` against a byte: matched, pattern bytes used.
    type Token<'a> = &'a dyn Fn(&[u8], u8) -> (bool, usize);
    fn go(p: &[u8], s: &[u8], runs: usize, one: Token) -> bool {
        if s.is_empty() {
            return p.iter().all(|&b| b == b'*');
        }
        match p.first() {
            None => false,
            Some(b'*') => {
                let rest = &p[p.iter().take_while(|&&b| b == b'*').count()..];
                if rest.is_empty() {
                    return true;
                }
                if runs == MAX_STAR_RUNS {
                    return false;
                }
                (0..s.len()).any(|k| go(rest, &s[k..], runs + 1, one))
            }
            Some(_) => {
                let (ok, used) = one(p, s[0]);
                ok && go(&p[used..], &s[1..], runs, one)
            }
        }
    }
    let one = |p: &[u8], c: u8| match p[0] {
        b'?' => (true, 1),
        b'[' => {
            let (members, not, used) = parse_class(&p[1..]);
            (in_class(&members, c) != not, 1 + used)
        }
        b'\\' if p.len() >= 2 => (fold(p[1]) == fold(c), 2),
        b => (fold(b) == fold(c), 1),
    };
    if string.is_empty() {
        return pattern.is_empty();
    }
    go(pattern, string, 0, &one)
}

/// Quotes bytes like Redis's sdscatrepr: "..." with C escapes and \\xHH.
pub fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Parses a whole argument as i64 the way Redis's string2ll does
/// (no spaces, no '+', no leading zeros).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s.len() > 1 && (s[0] == b'0' || (s[0] == b'-' && s[1] == b'0')) {
        return None;
    }
    if s[0] == b'+' {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{glob_match, glob_match_reference};
    use std::time::{Duration, Instant};

    fn both(p: &[u8], s: &[u8], nocase: bool) -> bool {
        let got = glob_match(p, s, nocase);
        let want = glob_match_reference(p, s, nocase);
        assert_eq!(
            got,
            want,
            "{} vs {} nocase={nocase}",
            super::repr(p),
            super::repr(s)
        );
        got
    }

    #[test]
    fn globs() {
        assert!(both(b"*", b"anything", false));
        assert!(both(b"h?llo", b"hello", false));
        assert!(both(b"h[ae]llo", b"hallo", false));
        assert!(!both(b"h[^e]llo", b"hello", false));
        assert!(both(b"h[a-b]llo", b"hbllo", false));
        assert!(both(b"user:*:name", b"user:42:name", false));
        assert!(!both(b"a*b", b"acd", false));
        assert!(both(b"MAXMEM*", b"maxmemory", true));
        assert!(both(b"a\\*", b"a*", false));
        assert!(both(b"a*", b"a", false));
        assert!(both(b"a**", b"a", false));
        assert!(!both(b"a*b", b"a", false));
        // As Redis: "*" does not match "" (KEYS/SCAN special-case a lone "*").
        assert!(!both(b"*", b"", false));
        assert!(both(b"", b"", false));
    }

    /// Stock's answers on malformed and corner-case patterns (checked
    /// against redis-server 7.0.15 by tests/hostile_input.rs as well).
    #[test]
    fn stock_quirks() {
        // Reversed ranges.
        assert!(both(b"[z-a]", b"m", false));
        // An unterminated class ends with the pattern.
        assert!(both(b"a[bc", b"ab", false));
        assert!(!both(b"[", b"[", false));
        assert!(both(b"[^", b"x", false));
        // "[a-]": a range from 'a' to ']' (reversed), unterminated.
        assert!(both(b"[a-]", b"^", false));
        assert!(!both(b"[a-]", b"-", false));
        // "[]" is an empty class, "[^]" matches any byte.
        assert!(!both(b"[]", b"]", false));
        assert!(both(b"[^]", b"]", false));
        // Escapes inside a class ignore nocase, outside they do not.
        assert!(!both(b"[\\A]", b"a", true));
        assert!(both(b"[A]", b"a", true));
        assert!(both(b"\\A", b"a", true));
        // A trailing backslash is a literal one.
        assert!(both(b"a\\", b"a\\", false));
        // Ranges swap before folding: [Z-a] folds to z..a, which is empty.
        assert!(!both(b"[Z-a]", b"_", true));
        assert!(both(b"[Z-a]", b"_", false));
        // Signed char: 0x80..0xff sort below 0.
        assert!(both(b"[\x01-\xff]", b"\xff", false));
        assert!(!both(b"[\x01-\xff]", b"a", false));
        assert!(both(b"[\xff-a]", b"\x00", false));
        assert!(!both(b"[\xff-a]", b"\x80", false));
    }

    #[test]
    fn star_run_limit_as_stock() {
        let key = vec![b'a'; 5000];
        let runs = |n: usize| b"*?".repeat(n);
        assert!(glob_match(&runs(1000), &key, false));
        assert!(!glob_match(&runs(1001), &key, false));
        let mut p = runs(1000);
        p.push(b'*');
        assert!(glob_match(&p, &key, false));
        p.push(b'a');
        assert!(!glob_match(&p, &key, false));
    }

    /// The nested patterns of Redis's keyspace tests, and worse, return at once.
    #[test]
    fn pathological_patterns_are_fast() {
        let t = Instant::now();
        let a40 = vec![b'a'; 40];
        assert!(!glob_match(
            &[b"a*".repeat(20), b"b".to_vec()].concat(),
            &a40,
            false
        ));
        let a50k = vec![b'a'; 50_000];
        assert!(!glob_match(&b"*?".repeat(50_000), &a50k, false));
        assert!(!glob_match(
            &[b"a*".repeat(900), b"b".to_vec()].concat(),
            &a50k,
            false
        ));
        assert!(!glob_match(
            &[b"*a".repeat(900), b"b".to_vec()].concat(),
            &a50k,
            true
        ));
        assert!(!glob_match(
            &[b"*[a-z]".repeat(900), b"b".to_vec()].concat(),
            &a50k,
            true
        ));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// Every pattern over a small alphabet up to 5 bytes against every
    /// string up to 3: the matcher equals the reference.
    #[test]
    fn exhaustive_small() {
        let alpha: &[u8] = b"a*?[]^-\\A";
        let strs: &[u8] = b"aA-]";
        let mut pats = vec![Vec::new()];
        let mut all = vec![Vec::new()];
        for _ in 0..5 {
            pats = pats
                .iter()
                .flat_map(|p: &Vec<u8>| alpha.iter().map(move |&c| [&p[..], &[c]].concat()))
                .collect();
            all.extend(pats.iter().cloned());
        }
        let mut ss = vec![Vec::new()];
        let mut cur = vec![Vec::new()];
        for _ in 0..3 {
            cur = cur
                .iter()
                .flat_map(|s: &Vec<u8>| strs.iter().map(move |&c| [&s[..], &[c]].concat()))
                .collect();
            ss.extend(cur.iter().cloned());
        }
        for p in &all {
            for s in &ss {
                both(p, s, false);
                both(p, s, true);
            }
        }
    }
}
