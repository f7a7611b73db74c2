//! Keyspace notifications (notify-keyspace-events): the classes, the one
//! hot flag word, and `notify`, which commands and the keyspace call after a
//! change. Publishing is the runtime's (`Hooks::keyspace_event`); storage
//! only decides, with one relaxed load, whether anyone asked for the class.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m (not part of A)
pub const MODULE: u32 = 1 << 13; // d (keel has no modules: never emitted)
pub const NEW: u32 = 1 << 14; // n (not part of A)
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The configured classes; 0 while notifications are off.
static FLAGS: AtomicU32 = AtomicU32::new(0);

pub fn set_flags(flags: u32) {
    FLAGS.store(flags, Relaxed);
}

pub fn flags() -> u32 {
    FLAGS.load(Relaxed)
}

/// Parses notify-keyspace-events ("KEA", "Kx"...); None for an unknown
/// character.
pub fn parse(classes: &str) -> Option<u32> {
    let mut flags = 0;
    for c in classes.chars() {
        flags |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The canonical form CONFIG GET shows (Redis's order; "A" when all of it).
pub fn to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Announces `event` of `class` on `key` of DB `db` when that class is on.
#[inline]
pub fn notify(class: u32, event: &'static str, key: &[u8], db: usize) {
    let flags = FLAGS.load(Relaxed);
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    if let Some(h) = super::hooks() {
        (h.keyspace_event)(flags, event, key, db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_canonical_form() {
        assert_eq!(parse("KEA").map(to_string).as_deref(), Some("AKE"));
        assert_eq!(parse("").map(to_string).as_deref(), Some(""));
        assert_eq!(parse("Elg$").map(to_string).as_deref(), Some("g$lE"));
        assert_eq!(parse("mnK").map(to_string).as_deref(), Some("nKm"));
        assert_eq!(parse("Ag").map(to_string).as_deref(), Some("A"));
        assert_eq!(parse("KEA?"), None);
        assert_eq!(parse("a"), None);
    }
}
