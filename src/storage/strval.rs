//! A string value: up to `INLINE` bytes live in the value itself (no
//! allocation, no pointer to follow), longer ones on the heap. Most values
//! are short (counters, flags, ids, small JSON), and a separate allocation
//! would cost more than the bytes themselves.

use std::fmt;
use std::ops::Deref;

/// Inline capacity: what fits beside a length byte and the enum tag in 40
/// bytes (the size of `Value`).
pub const INLINE: usize = 38;

#[derive(Clone)]
pub enum Str {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Str {
    pub fn new() -> Self {
        Str::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    #[inline]
    pub fn from_slice(s: &[u8]) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s);
            Str::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Str::Heap(s.to_vec())
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Str::Inline { len, bytes } => &bytes[..*len as usize],
            Str::Heap(v) => v,
        }
    }

    /// The bytes as a Vec to edit in place (APPEND, SETRANGE, SETBIT, PFADD):
    /// an inline value moves to the heap first, as such values tend to grow.
    pub fn make_vec(&mut self) -> &mut Vec<u8> {
        if let Str::Inline { .. } = self {
            *self = Str::Heap(self.as_slice().to_vec());
        }
        match self {
            Str::Heap(v) => v,
            Str::Inline { .. } => unreachable!("moved to the heap above"),
        }
    }

    /// Heap bytes owned beyond the value itself (MEMORY USAGE, INFO).
    pub fn heap_size(&self) -> usize {
        match self {
            Str::Inline { .. } => 0,
            Str::Heap(v) => v.capacity(),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Str::Heap(v) => v,
            s => s.as_slice().to_vec(),
        }
    }
}

impl Default for Str {
    fn default() -> Self {
        Str::new()
    }
}

impl Deref for Str {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Str {
    /// Short vectors are copied inline (their allocation freed), long ones kept.
    #[inline]
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            Str::from_slice(&v)
        } else {
            Str::Heap(v)
        }
    }
}

impl From<&[u8]> for Str {
    #[inline]
    fn from(s: &[u8]) -> Self {
        Str::from_slice(s)
    }
}

impl<const N: usize> From<&[u8; N]> for Str {
    fn from(s: &[u8; N]) -> Self {
        Str::from_slice(s)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Str {}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_agree() {
        assert_eq!(std::mem::size_of::<Str>(), 40);
        for n in [0, 1, INLINE - 1, INLINE, INLINE + 1, 200] {
            let v: Vec<u8> = (0..n as u8).collect();
            let s = Str::from(v.clone());
            assert_eq!(&*s, &v[..]);
            assert_eq!(matches!(s, Str::Inline { .. }), n <= INLINE);
            assert_eq!(Str::from(&v[..]), s);
            let mut t = s.clone();
            t.make_vec().push(7);
            assert_eq!(t.len(), n + 1);
            assert_eq!(t.into_vec()[..n], v[..]);
        }
    }
}
