//! The "listpack" encoding of a small sorted set: one packed buffer.

use super::before;
use crate::storage::packed::SmallBuf;

/// A score as a listpack gives it back: "-0" is stored as the integer 0.
#[inline]
pub(super) fn lp(s: f64) -> f64 {
    if s == 0.0 { 0.0 } else { s }
}

/// A small set's elements back to back in one exact-size buffer, sorted by
/// (score, member), as a listpack keeps them. Each element is a header
/// byte, the member, then the score in the fewest bytes that hold it
/// exactly: header bits 0-1 say how (0: f64, 1: f32, 2: i8, 3: i32), bits
/// 2-7 the member length (63: a LEB128 length follows). A 15-byte member
/// with a score like 1.5 or 42 takes 17-20 bytes instead of a 24-byte
/// slot plus a separate allocation.
#[derive(Clone, Default)]
pub(super) struct Lp {
    pub(super) buf: SmallBuf,
    pub(super) len: u32,
}

/// One element's encoding: header + length, and the score bytes.
pub(super) fn lp_encode(member: &[u8], score: f64, out: &mut Vec<u8>) {
    let (kind, sb): (u8, [u8; 8]) = if score.fract() == 0.0 && (-128.0..=127.0).contains(&score) {
        (2, {
            let mut b = [0; 8];
            b[0] = score as i8 as u8;
            b
        })
    } else if score.fract() == 0.0 && (i32::MIN as f64..=i32::MAX as f64).contains(&score) {
        (3, {
            let mut b = [0; 8];
            b[..4].copy_from_slice(&(score as i32).to_le_bytes());
            b
        })
    } else if (score as f32) as f64 == score {
        (1, {
            let mut b = [0; 8];
            b[..4].copy_from_slice(&(score as f32).to_le_bytes());
            b
        })
    } else {
        (0, score.to_le_bytes())
    };
    let n = member.len();
    if n < 63 {
        out.push(kind | (n as u8) << 2);
    } else {
        out.push(kind | 63 << 2);
        let mut l = n;
        loop {
            let b = (l & 0x7f) as u8;
            l >>= 7;
            if l == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    out.extend_from_slice(member);
    out.extend_from_slice(&sb[..[8, 4, 1, 4][kind as usize]]);
}

/// The element at byte `pos`: (member, score, where the next starts).
#[inline]
pub(super) fn lp_read(buf: &[u8], pos: usize) -> (&[u8], f64, usize) {
    let h = buf[pos];
    let kind = h & 3;
    let mut p = pos + 1;
    let mut n = (h >> 2) as usize;
    if n == 63 {
        n = 0;
        let mut shift = 0;
        loop {
            let b = buf[p];
            p += 1;
            n |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
    }
    let m = &buf[p..p + n];
    p += n;
    let (score, w) = match kind {
        0 => (f64::from_le_bytes(buf[p..p + 8].try_into().unwrap()), 8),
        1 => (
            f32::from_le_bytes(buf[p..p + 4].try_into().unwrap()) as f64,
            4,
        ),
        2 => (buf[p] as i8 as f64, 1),
        _ => (
            i32::from_le_bytes(buf[p..p + 4].try_into().unwrap()) as f64,
            4,
        ),
    };
    (m, score, p + w)
}

impl Lp {
    pub(super) fn from_sorted<'a>(items: impl Iterator<Item = (&'a [u8], f64)>) -> Self {
        let mut v = Vec::new();
        let mut len = 0;
        for (m, s) in items {
            lp_encode(m, lp(s), &mut v);
            len += 1;
        }
        Lp { buf: v.into(), len }
    }

    /// (member, score, byte range) in order.
    pub(super) fn elems(&self) -> impl Iterator<Item = (&[u8], f64, std::ops::Range<usize>)> {
        let buf = &self.buf[..];
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= buf.len() {
                return None;
            }
            let (m, s, next) = lp_read(buf, pos);
            let r = pos..next;
            pos = next;
            Some((m, s, r))
        })
    }

    /// Byte offset of rank `r` (the end of the buffer for r == len).
    pub(super) fn offset(&self, r: usize) -> usize {
        self.elems().nth(r).map_or(self.buf.len(), |e| e.2.start)
    }

    pub(super) fn find(&self, member: &[u8]) -> Option<(usize, f64, std::ops::Range<usize>)> {
        self.elems()
            .enumerate()
            .find(|(_, (m, _, _))| *m == member)
            .map(|(i, (_, s, r))| (i, s, r))
    }

    /// Replaces bytes `range` (whole elements) with `new`; `delta` is the
    /// change in the element count. The buffer stays exact-size.
    pub(super) fn splice(&mut self, range: std::ops::Range<usize>, new: &[u8], delta: isize) {
        let old = std::mem::take(&mut self.buf);
        let mut v = Vec::with_capacity(old.len() - range.len() + new.len());
        v.extend_from_slice(&old[..range.start]);
        v.extend_from_slice(new);
        v.extend_from_slice(&old[range.end..]);
        self.buf = v.into();
        self.len = (self.len as isize + delta) as u32;
    }

    /// Inserts at its sorted place a member known to be absent.
    pub(super) fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .elems()
            .find(|(m, s, _)| !before(*s, m, score, member))
            .map_or(self.buf.len(), |e| e.2.start);
        let mut e = Vec::new();
        lp_encode(member, lp(score), &mut e);
        self.splice(at..at, &e, 1);
    }
}
