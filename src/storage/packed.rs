//! Byte buffers of the small encodings (packed hashes, string sets,
//! intsets and sorted sets).
//!
//! `SmallBuf` keeps up to `INLINE` bytes in the value itself, so a tiny
//! collection (an intset of ten small numbers, a hash of one short field)
//! costs no allocation at all, and longer buffers in one exact-size heap
//! block: a small collection is mostly short strings, so slack capacity
//! would be a large share of it. `Packed` is the element list the packed
//! hash and string set share.

use std::ops::{Deref, DerefMut};

/// Bytes kept inline: what fits beside the tag and a length byte in the 24
/// bytes a boxed slice and a tag take anyway (a `Value` stays 40 bytes).
pub const INLINE: usize = 22;

#[derive(Clone)]
pub(crate) enum SmallBuf {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<SmallBuf>() == 24);

impl Default for SmallBuf {
    fn default() -> Self {
        SmallBuf::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl SmallBuf {
    /// The bytes as a Vec (a copy when inline).
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            SmallBuf::Heap(b) => b.into_vec(),
            s => s.to_vec(),
        }
    }
}

impl From<Vec<u8>> for SmallBuf {
    /// Inline when it fits, else the Vec's block shrunk to its length
    /// (no copy when it is exact already).
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..v.len()].copy_from_slice(&v);
            SmallBuf::Inline {
                len: v.len() as u8,
                bytes,
            }
        } else {
            SmallBuf::Heap(v.into_boxed_slice())
        }
    }
}

impl Deref for SmallBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            SmallBuf::Inline { len, bytes } => &bytes[..*len as usize],
            SmallBuf::Heap(b) => b,
        }
    }
}

impl DerefMut for SmallBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            SmallBuf::Inline { len, bytes } => &mut bytes[..*len as usize],
            SmallBuf::Heap(b) => b,
        }
    }
}

impl PartialEq for SmallBuf {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl std::fmt::Debug for SmallBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self[..], f)
    }
}

/// Elements packed back to back, each a LEB128 length then its bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Packed {
    buf: SmallBuf,
}

/// Reads the element starting at `pos`: (its bytes, where the next starts).
#[inline]
pub(crate) fn read_elem(buf: &[u8], pos: usize) -> (&[u8], usize) {
    let b = buf[pos];
    let (len, start) = if b < 0x80 {
        (b as usize, pos + 1)
    } else {
        let mut len = 0usize;
        let mut shift = 0;
        let mut p = pos;
        loop {
            let b = buf[p];
            p += 1;
            len |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        (len, p)
    };
    (&buf[start..start + len], start + len)
}

/// The LEB128 header for a length: (bytes, how many are used).
pub(crate) fn len_header(mut len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            h[n] = b;
            return (h, n + 1);
        }
        h[n] = b | 0x80;
        n += 1;
    }
}

impl Packed {
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Elements in order.
    pub(crate) fn elems(&self) -> PackedIter<'_> {
        PackedIter {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// Runs `f` on the buffer as a Vec; `f` grows it with reserve_exact so
    /// that turning it back into a boxed slice does not reallocate (the
    /// allocator grows and shrinks in place within a size class).
    fn edit(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        f(&mut v);
        self.buf = v.into();
    }

    /// Appends elements.
    pub(crate) fn push(&mut self, elems: &[&[u8]]) {
        self.edit(|v| {
            let need: usize = elems.iter().map(|e| len_header(e.len()).1 + e.len()).sum();
            v.reserve_exact(need);
            for e in elems {
                let (h, n) = len_header(e.len());
                v.extend_from_slice(&h[..n]);
                v.extend_from_slice(e);
            }
        });
    }

    /// Replaces the bytes in `range` (whole elements) with element `e`.
    pub(crate) fn replace(&mut self, range: std::ops::Range<usize>, e: &[u8]) {
        let (h, n) = len_header(e.len());
        let new = n + e.len();
        let old = range.end - range.start;
        if new != old {
            self.edit(|v| {
                let len = v.len();
                if new > old {
                    let extra = new - old;
                    v.reserve_exact(extra);
                    v.resize(len + extra, 0);
                    v.copy_within(range.end..len, range.end + extra);
                } else {
                    v.copy_within(range.end..len, range.start + new);
                    v.truncate(len - (old - new));
                }
            });
        }
        self.buf[range.start..range.start + n].copy_from_slice(&h[..n]);
        self.buf[range.start + n..range.start + new].copy_from_slice(e);
    }

    /// Removes the bytes in `range` (whole elements), shifting the rest down.
    pub(crate) fn remove(&mut self, range: std::ops::Range<usize>) {
        self.edit(|v| {
            let len = v.len();
            v.copy_within(range.end..len, range.start);
            v.truncate(len - (range.end - range.start));
        });
    }
}

/// Elements of a `Packed`, each with the byte range it occupies.
pub(crate) struct PackedIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> PackedIter<'a> {
    /// The next element and the range of bytes it occupies.
    #[inline]
    pub(crate) fn next_with_range(&mut self) -> Option<(&'a [u8], std::ops::Range<usize>)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (e, next) = read_elem(self.buf, start);
        self.pos = next;
        Some((e, start..next))
    }
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.next_with_range().map(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buf_inline_until_it_does_not_fit() {
        for n in [0, 1, INLINE - 1, INLINE, INLINE + 1, 300] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut b = SmallBuf::from(v.clone());
            assert_eq!(&b[..], &v[..]);
            assert_eq!(matches!(b, SmallBuf::Inline { .. }), n <= INLINE);
            if n > 0 {
                b[0] = 0xff;
                assert_eq!(b[0], 0xff);
            }
            assert_eq!(b.clone(), b);
            assert_eq!(b.into_vec().len(), n);
        }
    }

    #[test]
    fn packed_moves_between_inline_and_heap() {
        let mut p = Packed::default();
        p.push(&[b"ab", b"cd"]);
        assert!(matches!(p.buf, SmallBuf::Inline { .. }));
        let long = vec![b'x'; 300]; // a two-byte length header
        p.push(&[&long]);
        assert_eq!(p.elems().collect::<Vec<_>>(), [&b"ab"[..], b"cd", &long]);
        assert!(matches!(p.buf, SmallBuf::Heap(_)));
        let mut it = p.elems();
        it.next();
        it.next();
        let (_, r) = it.next_with_range().unwrap();
        p.replace(r, b"y");
        assert!(matches!(p.buf, SmallBuf::Inline { .. }));
        assert_eq!(p.elems().collect::<Vec<_>>(), [&b"ab"[..], b"cd", b"y"]);
        let (_, r) = p.elems().next_with_range().unwrap();
        p.remove(r);
        assert_eq!(p.elems().collect::<Vec<_>>(), [&b"cd"[..], b"y"]);
    }
}
