//! HyperLogLog values, byte-compatible with Redis 7.0 (hyperloglog.c):
//! a string holding a 16-byte header ("HYLL", encoding, 3 unused bytes,
//! cached cardinality little endian with bit 63 meaning "stale") followed by
//! either 16384 dense 6-bit registers or the sparse ZERO/XZERO/VAL opcodes.
//! Every mutation replays Redis's exact steps so values stay byte-identical.

pub const HDR_SIZE: usize = 16;
pub const P: u32 = 14;
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
pub const REGISTER_MAX: u8 = 63;
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * 6).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
/// hll-sparse-max-bytes default.
pub const SPARSE_MAX_BYTES: usize = 3000;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7; // 0.5 / ln(2)
const SEED: u64 = 0xadc8_3b19;

/// A sparse value whose opcodes do not cover exactly 16384 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash64A as Redis uses it (little-endian reads on every arch).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Register index and run length of "000..1" (1..=Q+1) for an element.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---------------------------------------------------------------- header

/// The checks of Redis's isHLLObjectOrReply on a string value.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR_SIZE
        && &s[..4] == b"HYLL"
        && s[4] <= SPARSE
        && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

pub fn encoding(s: &[u8]) -> u8 {
    s[4]
}

/// The cached cardinality, if still valid.
pub fn cached_card(s: &[u8]) -> Option<u64> {
    if s[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes(s[8..16].try_into().unwrap()))
}

pub fn set_cached_card(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(s: &mut [u8]) {
    s[15] |= 0x80;
}

/// An empty HLL as PFADD creates it: sparse, one XZERO opcode, card 0.
pub fn new_sparse() -> Vec<u8> {
    let mut s = vec![0u8; HDR_SIZE];
    s[..4].copy_from_slice(b"HYLL");
    s[4] = SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut s, n);
        left -= n;
    }
    s
}

// ---------------------------------------------------------------- dense

/// Register `i` of a dense register area. The byte after the area reads as 0
/// (Redis relies on the sds terminator there).
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let fb8 = 8 - fb;
    let v = val as u32;
    let max = REGISTER_MAX as u32;
    regs[byte] = ((regs[byte] as u32 & !(max << fb)) | (v << fb)) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = ((*b as u32 & !(max >> fb8)) | (v >> fb8)) as u8;
    }
}

/// Raises register `i` to `count`; true when it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------- sparse

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
/// XZERO length; a truncated opcode reads 0 past the end, as Redis does.
fn xzero_len(s: &[u8], p: usize) -> usize {
    ((((s[p] & 0x3f) as usize) << 8) | s.get(p + 1).copied().unwrap_or(0) as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 3) as usize + 1
}
fn val_op(val: u8, len: usize) -> u8 {
    (((val - 1) << 2) | (len as u8 - 1)) | 0x80
}
fn push_xzero(s: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    s.push((l >> 8) as u8 | 0x40);
    s.push((l & 0xff) as u8);
}
fn push_zeros(s: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(s, len);
    } else {
        s.push((len - 1) as u8);
    }
}

/// One decoded opcode: (registers covered, value, bytes used).
fn opcode(s: &[u8], p: usize) -> (usize, u8, usize) {
    let b = s[p];
    if is_zero(b) {
        (zero_len(b), 0, 1)
    } else if is_xzero(b) {
        (xzero_len(s, p), 0, 2)
    } else {
        (val_len(b), val_value(b), 1)
    }
}

/// Calls `f(first_register, run, value)` for every VAL run of a sparse value,
/// stopping (Err) when a run would pass register 16383 or the opcodes do not
/// cover exactly 16384 registers (hllSparseToDense / hllMerge rules).
fn sparse_vals(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let mut p = HDR_SIZE;
    let mut idx = 0usize;
    while p < s.len() {
        let (run, val, len) = opcode(s, p);
        if val != 0 {
            if run + idx > REGISTERS {
                break;
            }
            f(idx, run, val);
        }
        idx += run;
        p += len;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse value to dense in place (no-op when already dense).
/// The header, cached cardinality included, is kept.
pub fn sparse_to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&s[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    sparse_vals(s, |first, run, val| {
        for i in first..first + run {
            dense_set(regs, i, val);
        }
    })?;
    *s = dense;
    Ok(())
}

/// Raises register `index` to `count` in a sparse value (hllSparseSet),
/// promoting to dense when the value needs more than 32 or the string would
/// exceed `max_bytes`. Ok(true) when a register changed.
pub fn sparse_set(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let mut end = s.len();
    let mut p = HDR_SIZE;
    let mut first = 0usize;
    let mut prev = None;
    let mut span = 0usize;
    while p < end {
        let (run, _, len) = opcode(s, p);
        span = run;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += len;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let b = s[p];
    let oldlen = if is_xzero(b) { 2 } else { 1 };
    let next = (p + oldlen < end).then_some(p + oldlen);
    let runlen = opcode(s, p).0;

    // Step 2: trivial in-place updates, else split the opcode.
    let mut in_place = false;
    if is_val(b) {
        if val_value(b) >= count {
            return Ok(false);
        }
        if runlen == 1 {
            s[p] = val_op(count, 1);
            in_place = true;
        }
    } else if is_zero(b) && runlen == 1 {
        s[p] = val_op(count, 1);
        in_place = true;
    }
    if !in_place {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if is_val(b) {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        } else {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
        // Step 3: replace the opcode with the sequence, or promote if too big.
        let delta = seq.len() as isize - oldlen as isize;
        if delta > 0 && s.len() + delta as usize > max_bytes {
            return promote(s, index, count);
        }
        let newlen = (s.len() as isize + delta) as usize;
        match next {
            Some(n) => {
                s.splice(p..n, seq);
            }
            None => {
                s.truncate(p);
                s.extend_from_slice(&seq);
                s.truncate(newlen);
            }
        }
        end = s.len();
    }

    // Step 4: merge adjacent VAL opcodes of equal value, scanning at most
    // five iterations from the previous opcode (as Redis does).
    let mut p = prev.unwrap_or(HDR_SIZE);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let b = s[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val(s[p + 1]) {
            let v1 = val_value(b);
            let v2 = val_value(s[p + 1]);
            if v1 == v2 {
                let len = val_len(b) + val_len(s[p + 1]);
                if len <= SPARSE_VAL_MAX_LEN {
                    s[p + 1] = val_op(v1, len);
                    s.remove(p);
                    end -= 1;
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    sparse_to_dense(s)?;
    dense_raise(&mut s[HDR_SIZE..], index, count);
    Ok(true)
}

/// Adds an element (hllAdd). Ok(true) when a register changed.
pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set_register(s, index, count, max_bytes)
}

/// Raises one register in either encoding.
pub fn set_register(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    match s[4] {
        DENSE => Ok(dense_raise(&mut s[HDR_SIZE..], index, count)),
        SPARSE => sparse_set(s, index, count, max_bytes),
        _ => Err(Corrupt),
    }
}

// ---------------------------------------------------------------- counting

/// Register histogram (64 slots, as Redis sizes it).
pub type Histo = [u32; 64];

/// Histogram of a value; Err for a sparse value not covering 16384 registers.
pub fn histogram(s: &[u8]) -> Result<Histo, Corrupt> {
    let mut h = [0u32; 64];
    if s[4] == DENSE {
        let regs = &s[HDR_SIZE..];
        for i in 0..REGISTERS {
            h[dense_get(regs, i) as usize] += 1;
        }
        return Ok(h);
    }
    let mut p = HDR_SIZE;
    let mut idx = 0;
    while p < s.len() {
        let (run, val, len) = opcode(s, p);
        h[val as usize] += run as u32;
        idx += run;
        p += len;
    }
    if idx == REGISTERS {
        Ok(h)
    } else {
        Err(Corrupt)
    }
}

/// Histogram of raw one-byte registers (multi-key PFCOUNT).
pub fn raw_histogram(regs: &[u8; REGISTERS]) -> Histo {
    let mut h = [0u32; 64];
    for &r in regs.iter() {
        h[r as usize & 63] += 1;
    }
    h
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        z -= (1.0 - x).powf(2.0) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator, as Redis 5+ computes it, including C's
/// conversions: llroundl, then double -> uint64_t (exact for any i64, and
/// a negative i64 wraps like gcc's x86-64 conversion does).
pub fn estimate(h: &Histo) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    llround(ALPHA_INF * m * m / z) as u64
}

/// llroundl on x86-64: out of range or NaN gives i64::MIN.
fn llround(x: f64) -> i64 {
    const TWO63: f64 = (1u64 << 63) as f64;
    let r = x.round();
    if (-TWO63..TWO63).contains(&r) {
        r as i64
    } else {
        i64::MIN
    }
}

/// Cardinality of one value (hllCount).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&histogram(s)?))
}

/// max[i] = MAX(max[i], register i of `s`) (hllMerge).
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        let regs = &s[HDR_SIZE..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    sparse_vals(s, |first, run, val| {
        for m in &mut max[first..first + run] {
            *m = (*m).max(val);
        }
    })
}

/// PFDEBUG DECODE text of a sparse value.
pub fn decode(s: &[u8]) -> String {
    let mut out = String::new();
    let mut p = HDR_SIZE;
    while p < s.len() {
        let b = s[p];
        let (run, val, len) = opcode(s, p);
        if is_zero(b) {
            out.push_str(&format!("z:{run} "));
        } else if is_xzero(b) {
            out.push_str(&format!("Z:{run} "));
        } else {
            out.push_str(&format!("v:{val},{run} "));
        }
        p += len;
    }
    out.trim_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs_of(s: &[u8]) -> Vec<u8> {
        let mut d = s.to_vec();
        sparse_to_dense(&mut d).unwrap();
        (0..REGISTERS)
            .map(|i| dense_get(&d[HDR_SIZE..], i))
            .collect()
    }

    #[test]
    fn empty_value_layout() {
        let s = new_sparse();
        assert_eq!(s, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_valid(&s));
        assert_eq!(count(&s), Ok(0));
        assert_eq!(decode(&s), "Z:16384");
    }

    #[test]
    fn hash_matches_redis() {
        // PFDEBUG DECODE after one PFADD on redis-server 7.0.15.
        for (ele, want) in [
            (&b"a"[..], "Z:12711 v:2,1 Z:3672"),
            (b"hello", "Z:9216 v:1,1 Z:7167"),
            (b"", "Z:5938 v:2,1 Z:10445"),
        ] {
            let mut s = new_sparse();
            assert_eq!(add(&mut s, ele, SPARSE_MAX_BYTES), Ok(true));
            assert_eq!(decode(&s), want);
        }
    }

    #[test]
    fn dense_registers_roundtrip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        let mut x: u32 = 12345;
        let mut want = vec![0u8; REGISTERS];
        for (i, w) in want.iter_mut().enumerate() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *w = (x >> 16) as u8 & 63;
            dense_set(&mut regs, i, *w);
        }
        for (i, w) in want.iter().enumerate() {
            assert_eq!(dense_get(&regs, i), *w);
        }
    }

    #[test]
    fn sparse_split_and_merge() {
        let mut s = new_sparse();
        assert_eq!(sparse_set(&mut s, 1000, 2, 3000), Ok(true));
        assert_eq!(sparse_set(&mut s, 1020, 3, 3000), Ok(true));
        assert_eq!(sparse_set(&mut s, 1021, 3, 3000), Ok(true));
        assert_eq!(decode(&s), "Z:1000 v:2,1 z:19 v:3,2 Z:15362");
        assert_eq!(sparse_set(&mut s, 1021, 3, 3000), Ok(false));
        let r = regs_of(&s);
        assert_eq!((r[1000], r[1020], r[1021], r[999]), (2, 3, 3, 0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sp = new_sparse();
        let mut de = new_sparse();
        sparse_to_dense(&mut de).unwrap();
        for j in 0..5000u64 {
            let e = j.to_le_bytes();
            add(&mut sp, &e, SPARSE_MAX_BYTES).unwrap();
            add(&mut de, &e, SPARSE_MAX_BYTES).unwrap();
            if j % 500 == 0 {
                assert_eq!(count(&sp), count(&de));
            }
        }
        assert_eq!(encoding(&sp), DENSE);
        assert_eq!(sp[HDR_SIZE..], de[HDR_SIZE..]);
    }

    #[test]
    fn corrupt_sparse_detected() {
        let mut s = new_sparse();
        s.truncate(HDR_SIZE);
        assert_eq!(histogram(&s), Err(Corrupt));
        assert_eq!(add(&mut s, b"x", 3000), Err(Corrupt));
        let mut s = new_sparse();
        s.push(0x00); // one register too many
        assert_eq!(sparse_to_dense(&mut s), Err(Corrupt));
    }

    #[test]
    fn estimator_edges() {
        let mut h = [0u32; 64];
        h[0] = REGISTERS as u32;
        assert_eq!(estimate(&h), 0);
    }
}
