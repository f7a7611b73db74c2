//! The packed blobs embedded in RDB values: listpack (read/write), ziplist
//! (read), intset (read/write) and zipmap (read). Every reader validates the
//! blob fully and fails with `RdbError::Corrupt`, never a panic.

use super::RdbError;

/// One element of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element as a string (integers in decimal, as Redis renders them).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Int(v) => v.to_string().into_bytes(),
            Elem::Str(s) => s.to_vec(),
        }
    }

    pub fn as_int(self) -> Option<i64> {
        match self {
            Elem::Int(v) => Some(v),
            Elem::Str(s) => canonical_i64(s),
        }
    }
}

fn corrupt(what: &str) -> RdbError {
    RdbError::Corrupt(what.to_string())
}

/// The integer `s` spells, when it is written exactly as i64 formats it
/// (listpack's lpStringToInt64 / string2ll rules: no '+', no leading zeros,
/// no "-0", at most 20 chars).
pub fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64)
}

// ---------------------------------------------------------------- listpack

const LP_HDR: usize = 6;

/// Number of bytes the backlen of an element of `l` bytes takes.
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn push_backlen(buf: &mut Vec<u8>, l: usize) {
    let n = backlen_size(l);
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 0x7F) as u8;
        buf.push(if i == n - 1 { group } else { group | 0x80 });
    }
}

/// Decodes and validates a listpack.
pub fn lp_decode(lp: &[u8]) -> Result<Vec<Elem<'_>>, RdbError> {
    if lp.len() < LP_HDR + 1 {
        return Err(corrupt("listpack too short"));
    }
    if le(&lp[0..4]) as usize != lp.len() || lp[lp.len() - 1] != 0xFF {
        return Err(corrupt("listpack header or terminator"));
    }
    let declared = le(&lp[4..6]) as usize;
    let end = lp.len() - 1;
    let mut out = Vec::with_capacity(declared.min(4096));
    let mut p = LP_HDR;
    let need = |p: usize, n: usize| -> Result<(), RdbError> {
        if p.checked_add(n).is_some_and(|e| e <= end) {
            Ok(())
        } else {
            Err(corrupt("listpack element out of range"))
        }
    };
    while p < end {
        let b = lp[p];
        let (elem, l) = match b {
            0x00..=0x7F => (Elem::Int(b as i64), 1),
            0x80..=0xBF => {
                let n = (b & 0x3F) as usize;
                need(p, 1 + n)?;
                (Elem::Str(&lp[p + 1..p + 1 + n]), 1 + n)
            }
            0xC0..=0xDF => {
                need(p, 2)?;
                let u = ((b & 0x1F) as i64) << 8 | lp[p + 1] as i64;
                (Elem::Int(if u >= 4096 { u - 8192 } else { u }), 2)
            }
            0xE0..=0xEF => {
                need(p, 2)?;
                let n = ((b & 0x0F) as usize) << 8 | lp[p + 1] as usize;
                need(p, 2 + n)?;
                (Elem::Str(&lp[p + 2..p + 2 + n]), 2 + n)
            }
            0xF0 => {
                need(p, 5)?;
                let n = le(&lp[p + 1..p + 5]) as usize;
                need(p, 5 + n)?;
                (Elem::Str(&lp[p + 5..p + 5 + n]), 5 + n)
            }
            0xF1..=0xF4 => {
                let w = [2, 3, 4, 8][(b - 0xF1) as usize];
                need(p, 1 + w)?;
                let raw = le(&lp[p + 1..p + 1 + w]);
                let shift = 64 - 8 * w as u32;
                (Elem::Int(((raw << shift) as i64) >> shift), 1 + w)
            }
            _ => return Err(corrupt("listpack bad encoding")),
        };
        let bl = backlen_size(l);
        need(p, l + bl)?;
        let mut expect = Vec::with_capacity(5);
        push_backlen(&mut expect, l);
        if lp[p + l..p + l + bl] != expect[..] {
            return Err(corrupt("listpack bad backlen"));
        }
        out.push(elem);
        p += l + bl;
    }
    if declared != 65535 && declared != out.len() {
        return Err(corrupt("listpack count mismatch"));
    }
    Ok(out)
}

/// Builds a listpack the way Redis's lpAppend does.
pub struct LpWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for LpWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl LpWriter {
    pub fn new() -> Self {
        LpWriter {
            buf: vec![0; LP_HDR],
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the finished listpack so far (with the terminator).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Encoded size of `s` as an element, backlen included.
    pub fn elem_size(s: &[u8]) -> usize {
        let l = match canonical_i64(s) {
            Some(v) => int_size(v),
            None => str_hdr(s.len()) + s.len(),
        };
        l + backlen_size(l)
    }

    /// Appends a string, stored as an integer when it is canonical.
    pub fn push(&mut self, s: &[u8]) {
        match canonical_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_raw_str(s),
        }
    }

    fn push_raw_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xE0 | (n >> 8) as u8);
            self.buf.push((n & 0xFF) as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let l = self.buf.len() - start;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1FFF;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push((u & 0xFF) as u8);
        } else {
            let w = int_size(v) - 1;
            self.buf.push(match w {
                2 => 0xF1,
                3 => 0xF2,
                4 => 0xF3,
                _ => 0xF4,
            });
            self.buf.extend_from_slice(&v.to_le_bytes()[..w]);
        }
        let l = self.buf.len() - start;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn int_size(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-(1 << 15)..(1 << 15)).contains(&v) {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        4
    } else if (-(1i64 << 31)..(1i64 << 31)).contains(&v) {
        5
    } else {
        9
    }
}

fn str_hdr(n: usize) -> usize {
    if n < 64 {
        1
    } else if n < 4096 {
        2
    } else {
        5
    }
}

// ---------------------------------------------------------------- ziplist

/// Decodes and validates a ziplist (prevlens, tail offset and count checked).
pub fn zl_decode(zl: &[u8]) -> Result<Vec<Elem<'_>>, RdbError> {
    const HDR: usize = 10;
    if zl.len() < HDR + 1 {
        return Err(corrupt("ziplist too short"));
    }
    if le(&zl[0..4]) as usize != zl.len() || zl[zl.len() - 1] != 0xFF {
        return Err(corrupt("ziplist header or terminator"));
    }
    let tail = le(&zl[4..8]) as usize;
    let declared = le(&zl[8..10]) as usize;
    let end = zl.len() - 1;
    let mut out = Vec::with_capacity(declared.min(4096));
    let mut p = HDR;
    let mut prev_size = 0usize;
    let mut last = HDR;
    let need = |p: usize, n: usize| -> Result<(), RdbError> {
        if p.checked_add(n).is_some_and(|e| e <= end) {
            Ok(())
        } else {
            Err(corrupt("ziplist entry out of range"))
        }
    };
    while p < end {
        let start = p;
        let prevlen = if zl[p] < 254 {
            p += 1;
            zl[p - 1] as usize
        } else if zl[p] == 254 {
            need(p, 5)?;
            p += 5;
            le(&zl[p - 4..p]) as usize
        } else {
            return Err(corrupt("ziplist bad prevlen"));
        };
        if prevlen != prev_size {
            return Err(corrupt("ziplist prevlen mismatch"));
        }
        need(p, 1)?;
        let b = zl[p];
        let elem = match b >> 6 {
            0 => {
                let n = (b & 0x3F) as usize;
                need(p, 1 + n)?;
                p += 1 + n;
                Elem::Str(&zl[p - n..p])
            }
            1 => {
                need(p, 2)?;
                let n = ((b & 0x3F) as usize) << 8 | zl[p + 1] as usize;
                need(p, 2 + n)?;
                p += 2 + n;
                Elem::Str(&zl[p - n..p])
            }
            2 => {
                if b != 0x80 {
                    return Err(corrupt("ziplist bad string encoding"));
                }
                need(p, 5)?;
                let n = u32::from_be_bytes(zl[p + 1..p + 5].try_into().unwrap()) as usize;
                need(p, 5 + n)?;
                p += 5 + n;
                Elem::Str(&zl[p - n..p])
            }
            _ => {
                let w = match b {
                    0xC0 => 2,
                    0xD0 => 4,
                    0xE0 => 8,
                    0xF0 => 3,
                    0xFE => 1,
                    0xF1..=0xFD => 0,
                    _ => return Err(corrupt("ziplist bad int encoding")),
                };
                need(p, 1 + w)?;
                let v = if w == 0 {
                    (b & 0x0F) as i64 - 1
                } else {
                    let raw = le(&zl[p + 1..p + 1 + w]);
                    let shift = 64 - 8 * w as u32;
                    ((raw << shift) as i64) >> shift
                };
                p += 1 + w;
                Elem::Int(v)
            }
        };
        out.push(elem);
        prev_size = p - start;
        last = start;
    }
    if tail != last {
        return Err(corrupt("ziplist bad tail offset"));
    }
    if declared != 65535 && declared != out.len() {
        return Err(corrupt("ziplist count mismatch"));
    }
    Ok(out)
}

// ---------------------------------------------------------------- intset

/// Decodes and validates an intset (width, exact size, strictly ascending, non-empty).
pub fn intset_decode(is: &[u8]) -> Result<Vec<i64>, RdbError> {
    if is.len() < 8 {
        return Err(corrupt("intset too short"));
    }
    let w = le(&is[0..4]) as usize;
    let n = le(&is[4..8]) as usize;
    if !matches!(w, 2 | 4 | 8) {
        return Err(corrupt("intset bad encoding"));
    }
    if n == 0 || n.checked_mul(w).and_then(|s| s.checked_add(8)) != Some(is.len()) {
        return Err(corrupt("intset bad length"));
    }
    let shift = 64 - 8 * w as u32;
    let mut out = Vec::with_capacity(n);
    for c in is[8..].chunks_exact(w) {
        let v = ((le(c) << shift) as i64) >> shift;
        if out.last().is_some_and(|&p| p >= v) {
            return Err(corrupt("intset not sorted"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes sorted, distinct integers as an intset of the smallest width.
pub fn intset_encode(vals: &[i64]) -> Vec<u8> {
    let w: usize = if vals.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if vals.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + w * vals.len());
    out.extend_from_slice(&(w as u32).to_le_bytes());
    out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    for v in vals {
        out.extend_from_slice(&v.to_le_bytes()[..w]);
    }
    out
}

// ---------------------------------------------------------------- zipmap

pub type BytePairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Decodes a zipmap into field/value pairs (duplicates and emptiness are the
/// caller's checks).
pub fn zipmap_decode(zm: &[u8]) -> Result<BytePairs<'_>, RdbError> {
    let bad = || corrupt("zipmap out of range");
    let mut p = 1;
    let mut out = Vec::new();
    if zm.is_empty() {
        return Err(bad());
    }
    let read_len = |p: &mut usize| -> Result<Option<usize>, RdbError> {
        match *zm.get(*p).ok_or_else(bad)? {
            0xFF => Ok(None),
            254 => {
                let b = zm.get(*p + 1..*p + 5).ok_or_else(bad)?;
                *p += 5;
                Ok(Some(le(b) as usize))
            }
            n => {
                *p += 1;
                Ok(Some(n as usize))
            }
        }
    };
    while let Some(kl) = read_len(&mut p)? {
        let k = zm
            .get(p..p.checked_add(kl).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        p += kl;
        let vl = read_len(&mut p)?.ok_or_else(bad)?;
        let free = *zm.get(p).ok_or_else(bad)? as usize;
        p += 1;
        let v = zm
            .get(p..p.checked_add(vl).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        p += vl + free;
        out.push((k, v));
    }
    if p != zm.len() - 1 {
        return Err(corrupt("zipmap trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_spec_example() {
        let mut w = LpWriter::new();
        for s in ["a", "b", "1", "-5", "300", "70000"] {
            w.push(s.as_bytes());
        }
        let lp = w.finish();
        let expect = [
            0x1A, 0, 0, 0, 6, 0, 0x81, 0x61, 2, 0x81, 0x62, 2, 1, 1, 0xDF, 0xFB, 2, 0xC1, 0x2C, 2,
            0xF2, 0x70, 0x11, 0x01, 4, 0xFF,
        ];
        assert_eq!(lp, expect);
        let d = lp_decode(&lp).unwrap();
        let strs: Vec<Vec<u8>> = d.iter().map(|e| e.to_vec()).collect();
        assert_eq!(strs, [&b"a"[..], b"b", b"1", b"-5", b"300", b"70000"]);
    }

    #[test]
    fn listpack_ints_and_strings_round_trip() {
        let vals: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-4097",
            "32767",
            "-32768",
            "32768",
            "8388607",
            "-8388608",
            "8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "007",
            "-0",
            "+1",
            "9223372036854775808",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            vec![b'x'; 63],
            vec![b'x'; 64],
            vec![b'x'; 4095],
            vec![b'y'; 4096],
            vec![b'z'; 16378],
        ])
        .collect();
        let mut w = LpWriter::new();
        let mut total = 6 + 1;
        for v in &vals {
            total += LpWriter::elem_size(v);
            w.push(v);
        }
        assert_eq!(w.bytes(), total);
        let lp = w.finish();
        let d = lp_decode(&lp).unwrap();
        assert_eq!(d.len(), vals.len());
        for (e, v) in d.iter().zip(&vals) {
            assert_eq!(&e.to_vec(), v);
        }
        // A 16378-byte value has l = 16383 and a 3-byte backlen 00 FF FF.
        let n = lp.len();
        assert_eq!(&lp[n - 4..n - 1], &[0x00, 0xFF, 0xFF]);
        // Every truncation / flip is an error or a different valid decode, never a panic.
        for cut in 0..lp.len().min(200) {
            let _ = lp_decode(&lp[..cut]);
        }
    }

    #[test]
    fn backlen_bounds() {
        for (l, n) in [
            (127, 1),
            (128, 2),
            (16382, 2),
            (16383, 3),
            (2097150, 3),
            (2097151, 4),
        ] {
            let mut b = Vec::new();
            push_backlen(&mut b, l);
            assert_eq!(b.len(), n, "l={l}");
        }
        let mut b = Vec::new();
        push_backlen(&mut b, 128);
        assert_eq!(b, [0x01, 0x80]);
    }

    #[test]
    fn ziplist_decode_forms() {
        // Hand-built: "ab", 12 (immediate), -2 (int8), 300 (int16), and a
        // second entry with an oversized 5-byte prevlen.
        let mut zl = vec![0u8; 10];
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let bodies: Vec<Vec<u8>> = vec![
            vec![0x02, b'a', b'b'],
            vec![0xFD],
            vec![0xFE, 0xFE],
            vec![0xC0, 0x2C, 0x01],
        ];
        let mut prev = 0usize;
        let mut tail = 10;
        for (i, b) in bodies.iter().enumerate() {
            let mut e = Vec::new();
            if i == 1 {
                e.push(0xFE);
                e.extend_from_slice(&(prev as u32).to_le_bytes());
            } else {
                e.push(prev as u8);
            }
            e.extend_from_slice(b);
            tail = zl.len() + entries.iter().map(|e| e.len()).sum::<usize>();
            prev = e.len();
            entries.push(e);
        }
        for e in &entries {
            zl.extend_from_slice(e);
        }
        zl.push(0xFF);
        let n = zl.len() as u32;
        zl[0..4].copy_from_slice(&n.to_le_bytes());
        zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        zl[8..10].copy_from_slice(&4u16.to_le_bytes());
        let d = zl_decode(&zl).unwrap();
        assert_eq!(
            d,
            [
                Elem::Str(b"ab"),
                Elem::Int(12),
                Elem::Int(-2),
                Elem::Int(300)
            ]
        );
        for cut in 0..zl.len() {
            assert!(zl_decode(&zl[..cut]).is_err());
        }
    }

    #[test]
    fn intset_round_trip() {
        for vals in [
            vec![1i64, 2, 3],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let b = intset_encode(&vals);
            assert_eq!(intset_decode(&b).unwrap(), vals);
        }
        assert_eq!(intset_encode(&[1, 2]).len(), 12);
        assert!(intset_decode(&intset_encode(&[])).is_err());
        assert!(intset_decode(&intset_encode(&[2, 1])).is_err());
    }

    #[test]
    fn zipmap_decode_pairs() {
        let zm = [
            2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 3, b'z', 0, 0, 0, 0xFF,
        ];
        let d = zipmap_decode(&zm).unwrap();
        assert_eq!(d, [(&b"a"[..], &b"xy"[..]), (&b"b"[..], &b"z"[..])]);
        for cut in 0..zm.len() {
            assert!(zipmap_decode(&zm[..cut]).is_err());
        }
    }
}
