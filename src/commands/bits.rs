//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD(_RO).
//! Bit 0 is the most significant bit of the first byte, as in Redis.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::errors::{NOT_INT, SYNTAX, WRONGTYPE};
use super::strings::{proto_max_bulk_len, str_of, str_of_mut};
use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, parse_i64, with_out};
use crate::storage::{Str, Value};

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";

/// Parses a bit offset (getBitOffsetFromArgument). With `hash_bits` > 0 a
/// `#n` offset means n * bits. Offsets addressing a byte at or beyond
/// proto-max-bulk-len are rejected.
fn bit_offset(ctx: &mut Ctx, arg: &[u8], hash_bits: u32) -> Option<u64> {
    let use_hash = hash_bits > 0 && arg.first() == Some(&b'#');
    let parsed = parse_i64(if use_hash { &arg[1..] } else { arg });
    let ok = parsed.map(|v| {
        if use_hash {
            v.wrapping_mul(hash_bits as i64)
        } else {
            v
        }
    });
    match ok {
        Some(v) if v >= 0 && ((v >> 3) < 1024 * 1024 || (v >> 3) < proto_max_bulk_len(ctx)) => {
            Some(v as u64)
        }
        _ => {
            ctx.out.err(BIT_OFFSET_ERR);
            None
        }
    }
}

#[inline]
pub(crate) fn get_bit(p: &[u8], off: u64) -> bool {
    let byte = (off >> 3) as usize;
    byte < p.len() && p[byte] & (0x80 >> (off & 7)) != 0
}

/// Makes the string at `key` long enough to address `max_bit` (creating it
/// if missing) and runs `f` on it; `f` also learns whether the string was
/// created or grown. Replies WRONGTYPE and returns None for other types.
fn with_bit_string<R>(
    ctx: &mut Ctx,
    key: &[u8],
    max_bit: u64,
    f: impl FnOnce(&mut Vec<u8>, bool) -> R,
) -> Option<R> {
    let need = (max_bit >> 3) as usize + 1;
    let exists = match ctx.lookup_write(key) {
        None => false,
        Some(e) if str_of(&e.value).is_none() => {
            ctx.out.err(WRONGTYPE);
            return None;
        }
        Some(_) => true,
    };
    let now = ctx.now;
    let db = ctx.db(key);
    if !exists {
        db.set(key, Value::Str(Str::from(vec![0; need])));
    }
    let s = db
        .get_mut(key, now)
        .and_then(|e| str_of_mut(&mut e.value))?;
    let grown = !exists || s.len() < need;
    if s.len() < need {
        s.resize(need, 0);
    }
    let r = f(s, grown);
    db.mark_raw(key);
    Some(r)
}

fn setbit_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let Some(off) = bit_offset(ctx, &args[2], 0) else {
        return;
    };
    let on = match parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => {
            ctx.out.err("ERR bit is not an integer or out of range");
            return;
        }
    };
    let Some((old, changed)) = with_bit_string(ctx, key, off, |s, grown| {
        let byte = (off >> 3) as usize;
        let mask = 0x80u8 >> (off & 7);
        let old = s[byte] & mask != 0;
        if grown || old != on {
            if on {
                s[byte] |= mask;
            } else {
                s[byte] &= !mask;
            }
            (old, true)
        } else {
            (old, false)
        }
    }) else {
        return;
    };
    if changed {
        ctx.dirty(key, 1);
        ctx.notify(ev::STRING, "setbit", key);
    }
    ctx.out.int(old as i64);
}

fn getbit_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(off) = bit_offset(ctx, &args[2], 0) else {
        return;
    };
    match ctx
        .lookup_read(&args[1])
        .map(|e| str_of(&e.value).map(|s| get_bit(s, off)))
    {
        None => ctx.out.int(0),
        Some(None) => ctx.out.err(WRONGTYPE),
        Some(Some(b)) => ctx.out.int(b as i64),
    }
}

/// Set bits in bit positions `first..=last` (both inside `p`).
pub(crate) fn count_bits(p: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut n = popcount(&p[fb..=lb]);
    // Drop the bits of the edge bytes that are outside the range.
    n -= (p[fb] & !(0xffu8 >> (first & 7))).count_ones() as u64;
    n -= (p[lb] & (0x7fu8 >> (last & 7))).count_ones() as u64;
    n
}

fn popcount(p: &[u8]) -> u64 {
    let mut chunks = p.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()).count_ones() as u64)
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>();
    n
}

/// BITCOUNT/BITPOS range conversion. `start`/`end` are in bytes or bits;
/// returns the inclusive bit range, or None if empty.
fn bit_range(mut start: i64, mut end: i64, len: usize, is_bit: bool) -> Option<(u64, u64)> {
    let total = if is_bit {
        (len as i64) << 3
    } else {
        len as i64
    };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    if is_bit {
        Some((start as u64, end as u64))
    } else {
        Some(((start as u64) << 3, ((end as u64) << 3) + 7))
    }
}

fn bitcount_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    // Redis looks the key up before parsing the range.
    let n = with_out(ctx, |ctx, out| {
        let s = match ctx.lookup_read(&args[1]).map(|e| str_of(&e.value)) {
            None => return Some(0),
            Some(None) => {
                out.err(WRONGTYPE);
                return None;
            }
            Some(Some(s)) => s,
        };
        let range = match args.len() {
            2 => bit_range(0, -1, s.len(), false),
            4 | 5 => {
                let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                    out.err(NOT_INT);
                    return None;
                };
                if start < 0 && end < 0 && start > end {
                    return Some(0);
                }
                let is_bit = if args.len() == 5 {
                    if eq_ic(&args[4], "bit") {
                        true
                    } else if eq_ic(&args[4], "byte") {
                        false
                    } else {
                        out.err(SYNTAX);
                        return None;
                    }
                } else {
                    false
                };
                bit_range(start, end, s.len(), is_bit)
            }
            _ => {
                out.err(SYNTAX);
                return None;
            }
        };
        Some(range.map_or(0, |(a, b)| count_bits(s, a, b)))
    });
    if let Some(n) = n {
        ctx.out.int(n as i64);
    }
}

/// First bit equal to `bit` in bit positions `first..=last` of `p`.
pub(crate) fn find_bit(p: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let skip = if bit { 0u8 } else { 0xff };
    let mut i = first;
    // Leading partial byte.
    while i <= last && i & 7 != 0 {
        if get_bit(p, i) == bit {
            return Some(i);
        }
        i += 1;
    }
    // Whole bytes: skip those that cannot match, eight at a time.
    if i + 7 <= last {
        let from = (i >> 3) as usize;
        let to = ((last + 1) >> 3) as usize; // exclusive; all bytes fully in range
        let bytes = &p[from..to];
        let word_skip = u64::from_ne_bytes([skip; 8]);
        let mut k = 0;
        while k + 8 <= bytes.len()
            && u64::from_ne_bytes(bytes[k..k + 8].try_into().unwrap()) == word_skip
        {
            k += 8;
        }
        while k < bytes.len() && bytes[k] == skip {
            k += 1;
        }
        if k < bytes.len() {
            let b = if bit { bytes[k] } else { !bytes[k] };
            return Some(((from + k) as u64) * 8 + b.leading_zeros() as u64);
        }
        i = (to as u64) << 3;
    }
    // Trailing partial byte.
    while i <= last {
        if get_bit(p, i) == bit {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn bitpos_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let bit = match parse_i64(&args[2]) {
        None => return ctx.out.err(NOT_INT),
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return ctx.out.err("ERR The bit argument must be 1 or 0."),
    };
    let res = with_out(ctx, |ctx, out| {
        let s = match ctx.lookup_read(&args[1]).map(|e| str_of(&e.value)) {
            // A missing key is an infinite run of zeros.
            None => return Some(if bit { -1 } else { 0 }),
            Some(None) => {
                out.err(WRONGTYPE);
                return None;
            }
            Some(Some(s)) => s,
        };
        let mut end_given = false;
        let range = match args.len() {
            3 => bit_range(0, -1, s.len(), false),
            4..=6 => {
                let Some(start) = parse_i64(&args[3]) else {
                    out.err(NOT_INT);
                    return None;
                };
                let mut is_bit = false;
                if args.len() == 6 {
                    if eq_ic(&args[5], "bit") {
                        is_bit = true;
                    } else if !eq_ic(&args[5], "byte") {
                        out.err(SYNTAX);
                        return None;
                    }
                }
                let end = if args.len() >= 5 {
                    let Some(e) = parse_i64(&args[4]) else {
                        out.err(NOT_INT);
                        return None;
                    };
                    end_given = true;
                    e
                } else {
                    -1
                };
                bit_range(start, end, s.len(), is_bit)
            }
            _ => {
                out.err(SYNTAX);
                return None;
            }
        };
        let Some((first, last)) = range else {
            return Some(-1);
        };
        Some(match find_bit(s, bit, first, last) {
            Some(p) => p as i64,
            None if bit || end_given => -1,
            // Looking for 0 with no explicit end: the string is zero padded.
            None => (last + 1) as i64,
        })
    });
    if let Some(n) = res {
        ctx.out.int(n);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Folds `src` into `res` (which holds the result so far, zero padded to
/// the final length). Bytes past the end of `src` count as zero.
pub(crate) fn bitop_fold(op: BitOp, res: &mut [u8], src: &[u8]) {
    let n = src.len().min(res.len());
    match op {
        BitOp::And => {
            res[..n].iter_mut().zip(src).for_each(|(r, s)| *r &= s);
            res[n..].fill(0);
        }
        BitOp::Or => res[..n].iter_mut().zip(src).for_each(|(r, s)| *r |= s),
        BitOp::Xor => res[..n].iter_mut().zip(src).for_each(|(r, s)| *r ^= s),
        BitOp::Not => {}
    }
}

fn bitop_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    let op = &args[1][..];
    let op = if eq_ic(op, "and") {
        BitOp::And
    } else if eq_ic(op, "or") {
        BitOp::Or
    } else if eq_ic(op, "xor") {
        BitOp::Xor
    } else if eq_ic(op, "not") {
        BitOp::Not
    } else {
        return ctx.out.err(SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return ctx
            .out
            .err("ERR BITOP NOT must be called with a single source key.");
    }
    let dest = &args[2][..];
    let srcs = &args[3..];
    // Pass 1: type checks and the result length (one counted lookup per key).
    let mut max_len = 0;
    for key in srcs {
        match ctx
            .lookup_read(key)
            .map(|e| str_of(&e.value).map(|s| s.len()))
        {
            None => {}
            Some(None) => return ctx.out.err(WRONGTYPE),
            Some(Some(n)) => max_len = max_len.max(n),
        }
    }
    // Pass 2: fold the sources one at a time.
    let now = ctx.now;
    let mut res = Vec::new();
    if max_len > 0 {
        for (i, key) in srcs.iter().enumerate() {
            let src = ctx
                .db(key)
                .peek(key, now)
                .and_then(|e| str_of(&e.value))
                .map_or(&[][..], |s| &s[..]);
            if i == 0 {
                // One pass over the first source, then zero padding.
                res.reserve_exact(max_len);
                if op == BitOp::Not {
                    res.extend(src.iter().map(|b| !b));
                } else {
                    res.extend_from_slice(src);
                }
                res.resize(max_len, 0);
            } else {
                bitop_fold(op, &mut res, src);
            }
        }
    }
    let db = ctx.db(dest);
    let dirty = if max_len > 0 {
        db.set(dest, Value::Str(Str::from(res)));
        true
    } else {
        db.remove(dest).is_some()
    };
    if dirty {
        ctx.dirty(dest, 1);
        ctx.notify(
            if max_len > 0 { ev::STRING } else { ev::GENERIC },
            if max_len > 0 { "set" } else { "del" },
            dest,
        );
    }
    ctx.out.int(max_len as i64);
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Reads `bits` bits at bit `off` as unsigned; bits past the end read as 0.
pub(crate) fn get_unsigned(p: &[u8], off: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        v = (v << 1) | get_bit(p, off + j) as u64;
    }
    v
}

pub(crate) fn get_signed(p: &[u8], off: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, off, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v |= -1i64 << bits;
    }
    v
}

/// Writes the low `bits` bits of `value` at bit `off` (inside `p`).
pub(crate) fn set_unsigned(p: &mut [u8], off: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = value & (1u64 << (bits as u64 - 1 - j)) != 0;
        let pos = off + j;
        let mask = 0x80u8 >> (pos & 7);
        let byte = &mut p[(pos >> 3) as usize];
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// checkUnsignedBitfieldOverflow: (0 | 1 overflow | -1 underflow, value to
/// store when overflowing under WRAP/SAT).
pub(crate) fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > max_incr) {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        return (1, limit);
    }
    if incr < 0 && incr < min_incr {
        return match ow {
            Overflow::Wrap => (1, wrap()),
            Overflow::Sat => (-1, 0),
            Overflow::Fail => (-1, 0),
        };
    }
    (0, 0)
}

/// checkSignedBitfieldOverflow, same contract as `unsigned_overflow`.
pub(crate) fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        return (1, limit);
    }
    if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr)
    {
        return match ow {
            Overflow::Wrap => (1, wrap()),
            Overflow::Sat => (-1, min),
            Overflow::Fail => (-1, 0),
        };
    }
    (0, 0)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

#[derive(Clone, Copy, Debug)]
struct BitfieldOp {
    op: FieldOp,
    offset: u64,
    arg: i64,
    ow: Overflow,
    bits: u32,
    signed: bool,
}

const BITFIELD_TYPE_ERR: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Parses `i<1..64>` / `u<1..63>` (case-sensitive, like Redis).
fn bitfield_type(t: &[u8]) -> Option<(bool, u32)> {
    let signed = match t.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return None,
    };
    let n = parse_i64(&t[1..])?;
    if n < 1 || (signed && n > 64) || (!signed && n > 63) {
        return None;
    }
    Some((signed, n as u32))
}

/// Executes one SET/INCRBY on `s`: (reply value or None for FAIL, changed).
fn bitfield_write(s: &mut [u8], o: &BitfieldOp) -> (Option<i64>, bool) {
    if o.signed {
        let old = get_signed(s, o.offset, o.bits);
        let (ovf, new, ret) = if o.op == FieldOp::Incr {
            let (ovf, lim) = signed_overflow(old, o.arg, o.bits, o.ow);
            let new = if ovf != 0 {
                lim
            } else {
                old.wrapping_add(o.arg)
            };
            (ovf, new, new)
        } else {
            let (ovf, lim) = signed_overflow(o.arg, 0, o.bits, o.ow);
            (ovf, if ovf != 0 { lim } else { o.arg }, old)
        };
        if ovf != 0 && o.ow == Overflow::Fail {
            return (None, false);
        }
        set_unsigned(s, o.offset, o.bits, new as u64);
        (Some(ret), old != new)
    } else {
        let old = get_unsigned(s, o.offset, o.bits);
        let (ovf, new, ret) = if o.op == FieldOp::Incr {
            let (ovf, lim) = unsigned_overflow(old, o.arg, o.bits, o.ow);
            let new = if ovf != 0 {
                lim
            } else {
                old.wrapping_add(o.arg as u64)
            };
            (ovf, new, new)
        } else {
            let v = o.arg as u64;
            let (ovf, lim) = unsigned_overflow(v, 0, o.bits, o.ow);
            (ovf, if ovf != 0 { lim } else { v }, old)
        };
        if ovf != 0 && o.ow == Overflow::Fail {
            return (None, false);
        }
        set_unsigned(s, o.offset, o.bits, new);
        (Some(ret as i64), old != new)
    }
}

fn bitfield_read(s: &[u8], o: &BitfieldOp) -> i64 {
    if o.signed {
        get_signed(s, o.offset, o.bits)
    } else {
        get_unsigned(s, o.offset, o.bits) as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], ro: bool) {
    let key = &args[1][..];
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest = 0u64;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = &args[j][..];
        let op = if eq_ic(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if eq_ic(sub, "set") && rem >= 3 {
            FieldOp::Set
        } else if eq_ic(sub, "incrby") && rem >= 3 {
            FieldOp::Incr
        } else if eq_ic(sub, "overflow") && rem >= 1 {
            let t = &args[j + 1][..];
            ow = if eq_ic(t, "wrap") {
                Overflow::Wrap
            } else if eq_ic(t, "sat") {
                Overflow::Sat
            } else if eq_ic(t, "fail") {
                Overflow::Fail
            } else {
                return ctx.out.err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return ctx.out.err(SYNTAX);
        };
        let Some((signed, bits)) = bitfield_type(&args[j + 1]) else {
            return ctx.out.err(BITFIELD_TYPE_ERR);
        };
        let Some(offset) = bit_offset(ctx, &args[j + 2], bits) else {
            return;
        };
        let mut arg = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            match parse_i64(&args[j + 3]) {
                Some(v) => arg = v,
                None => return ctx.out.err(NOT_INT),
            }
        }
        ops.push(BitfieldOp {
            op,
            offset,
            arg,
            ow,
            bits,
            signed,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }

    if readonly {
        with_out(ctx, |ctx, out| {
            let s = match ctx.lookup_read(key).map(|e| str_of(&e.value)) {
                None => &[][..],
                Some(None) => return out.err(WRONGTYPE),
                Some(Some(s)) => &s[..],
            };
            out.array(ops.len());
            for o in &ops {
                out.int(bitfield_read(s, o));
            }
        });
        return;
    }
    if ro {
        return ctx
            .out
            .err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let Some((replies, changes)) = with_bit_string(ctx, key, highest, |s, grown| {
        let mut replies = Vec::with_capacity(ops.len());
        let mut changes = 0u64;
        for o in &ops {
            if o.op == FieldOp::Get {
                replies.push(Some(bitfield_read(s, o)));
                continue;
            }
            let (r, changed) = bitfield_write(s, o);
            if r.is_some() && (grown || changed) {
                changes += 1;
            }
            replies.push(r);
        }
        (replies, changes)
    }) else {
        return;
    };
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    if changes > 0 {
        ctx.dirty(key, changes);
        ctx.notify(ev::STRING, "setbit", key);
    }
}

fn bitfield_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    bitfield_generic(ctx, args, false);
}

fn bitfield_ro_cmd(ctx: &mut Ctx, args: &[Bytes]) {
    bitfield_generic(ctx, args, true);
}

pub fn commands() -> Vec<Command> {
    vec![
        cmd("setbit", 4, WRITE | DENYOOM, setbit_cmd).keys(1, 1, 1),
        cmd("getbit", 3, READONLY | FAST, getbit_cmd).keys(1, 1, 1),
        cmd("bitcount", -2, READONLY, bitcount_cmd).keys(1, 1, 1),
        cmd("bitpos", -3, READONLY, bitpos_cmd).keys(1, 1, 1),
        cmd("bitop", -4, WRITE | DENYOOM, bitop_cmd).keys(2, -1, 1),
        cmd("bitfield", -2, WRITE | DENYOOM, bitfield_cmd).keys(1, 1, 1),
        cmd("bitfield_ro", -2, READONLY | FAST, bitfield_ro_cmd).keys(1, 1, 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: scan bit by bit.
    fn naive_find(p: &[u8], bit: bool, a: u64, b: u64) -> Option<u64> {
        (a..=b).find(|&i| get_bit(p, i) == bit)
    }

    #[test]
    fn find_bit_matches_naive() {
        let mut seed = 12345u64;
        for _ in 0..300 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 33) as usize % 40 + 1;
            let fill = if seed & 1 == 0 { 0x00 } else { 0xff };
            let mut p = vec![fill; len];
            let flip = (seed >> 7) as usize % (len * 8);
            p[flip / 8] ^= 0x80 >> (flip % 8);
            let a = (seed >> 17) % (len as u64 * 8);
            let b = a + (seed >> 23) % (len as u64 * 8 - a);
            for bit in [false, true] {
                assert_eq!(find_bit(&p, bit, a, b), naive_find(&p, bit, a, b));
            }
        }
    }

    #[test]
    fn counts() {
        let p = [0xffu8, 0xf0, 0x0f];
        assert_eq!(count_bits(&p, 0, 23), 16);
        assert_eq!(count_bits(&p, 4, 11), 8);
        assert_eq!(count_bits(&p, 12, 19), 0);
        assert_eq!(count_bits(&p, 5, 5), 1);
        assert_eq!(bit_range(0, -1, 3, false), Some((0, 23)));
        assert_eq!(bit_range(-2, -1, 3, true), Some((22, 23)));
        assert_eq!(bit_range(2, 1, 3, false), None);
        assert_eq!(bit_range(0, 100, 3, true), Some((0, 23)));
    }

    #[test]
    fn bitop() {
        let mut r = vec![0xff, 0x0f, 0xaa];
        bitop_fold(BitOp::And, &mut r, &[0xf0, 0xff]);
        assert_eq!(r, [0xf0, 0x0f, 0x00]);
        let mut r = vec![0x01, 0x00];
        bitop_fold(BitOp::Or, &mut r, &[0x10]);
        assert_eq!(r, [0x11, 0x00]);
        bitop_fold(BitOp::Xor, &mut r, &[0x11, 0x01]);
        assert_eq!(r, [0x00, 0x01]);
    }

    #[test]
    fn bitfields() {
        let mut p = vec![0u8; 2];
        // Redis's docs example: u5 value 23 at offset 7 -> 00000001 01110000.
        set_unsigned(&mut p, 7, 5, 23);
        assert_eq!(p, [0x01, 0x70]);
        assert_eq!(get_unsigned(&p, 7, 5), 23);
        assert_eq!(get_signed(&p, 7, 5), 23 - 32);
        assert_eq!(get_unsigned(&p, 12, 16), 0); // past the end reads zero
        assert_eq!(get_signed(&[0xff; 8], 0, 64), -1);

        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (1, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (1, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (-1, 0));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Wrap), (1, 251));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Wrap).0, 0);
        // SET u8 to -1 is seen as a huge unsigned value.
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Overflow::Wrap), (1, 255));
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), (1, -128));
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Sat), (1, 127));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (-1, -128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Wrap), (1, 127));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (1, i64::MIN)
        );
        assert_eq!(
            signed_overflow(i64::MIN, -1, 64, Overflow::Sat),
            (-1, i64::MIN)
        );
        assert_eq!(signed_overflow(-5, 3, 8, Overflow::Fail).0, 0);
        assert_eq!(bitfield_type(b"i64"), Some((true, 64)));
        assert_eq!(bitfield_type(b"u63"), Some((false, 63)));
        assert_eq!(bitfield_type(b"u64"), None);
        assert_eq!(bitfield_type(b"I8"), None);
        assert_eq!(bitfield_type(b"i0"), None);
        assert_eq!(bitfield_type(b"u08"), None);
    }
}
