//! LZF (liblzf format, as Redis uses it for RDB strings): no header, runs of
//! literals (`000LLLLL` + L+1 bytes) and back-references (`LLLooooo
//! [extra len] oooooooo`, copy len+2 bytes from distance off+1).

use super::RdbError;

const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3); // 264
const HLOG: u32 = 14;

/// Decompresses `input`; the result must be exactly `ulen` bytes.
pub fn decompress(input: &[u8], ulen: usize) -> Result<Vec<u8>, RdbError> {
    let bad = || RdbError::Corrupt("Invalid LZF compressed string".into());
    let mut out: Vec<u8> = Vec::with_capacity(ulen);
    let mut i = 0;
    while i < input.len() {
        let c = input[i] as usize;
        i += 1;
        if c < 0x20 {
            let n = c + 1;
            if i + n > input.len() || out.len() + n > ulen {
                return Err(bad());
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut len = c >> 5;
            if len == 7 {
                len += *input.get(i).ok_or_else(bad)? as usize;
                i += 1;
            }
            let lo = *input.get(i).ok_or_else(bad)? as usize;
            i += 1;
            let dist = ((c & 0x1F) << 8 | lo) + 1;
            let n = len + 2;
            if dist > out.len() || out.len() + n > ulen {
                return Err(bad());
            }
            let start = out.len() - dist;
            if dist >= n {
                out.extend_from_within(start..start + n);
            } else {
                // Overlapping copy: byte by byte (run-length behaviour).
                for k in 0..n {
                    let b = out[start + k];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != ulen {
        return Err(bad());
    }
    Ok(out)
}

fn hash3(p: &[u8], hlog: u32) -> usize {
    let v = (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - hlog)) as usize
}

/// Compresses `input`; None when the output would exceed `max_out` bytes
/// (Redis only keeps a compressed form that saves at least 4 bytes).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(max_out.min(n + n / 32 + 1));
    // Table sized to the input: short strings (the common case) must not
    // pay for zeroing a large one.
    let hlog = (usize::BITS - n.leading_zeros()).clamp(4, HLOG);
    let mut table = vec![0u32; 1 << hlog]; // position + 1, 0 = empty
    let mut lit_start = 0;
    let mut i = 0;
    let flush = |out: &mut Vec<u8>, lits: &[u8]| -> bool {
        for chunk in lits.chunks(MAX_LIT) {
            if out.len() + 1 + chunk.len() > max_out {
                return false;
            }
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
        true
    };
    while i + 2 < n {
        let h = hash3(&input[i..], hlog);
        let cand = table[h] as usize;
        table[h] = (i + 1) as u32;
        if cand > 0 {
            let r = cand - 1;
            let dist = i - r;
            if dist <= MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let max = MAX_REF.min(n - i);
                let mut len = 3;
                while len < max && input[r + len] == input[i + len] {
                    len += 1;
                }
                if !flush(&mut out, &input[lit_start..i]) {
                    return None;
                }
                let l = len - 2;
                let off = dist - 1;
                let need = if l < 7 { 2 } else { 3 };
                if out.len() + need > max_out {
                    return None;
                }
                if l < 7 {
                    out.push(((l << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push((off & 0xFF) as u8);
                // Index a couple of positions inside the match for later refs.
                let end = i + len;
                let mut k = i + 1;
                while k + 2 < n && k < end {
                    table[hash3(&input[k..], hlog)] = (k + 1) as u32;
                    k += 1;
                    if len > 16 && k > i + 2 {
                        break;
                    }
                }
                i = end;
                lit_start = i;
                continue;
            }
        }
        i += 1;
    }
    if !flush(&mut out, &input[lit_start..n]) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        // A 103-byte string of 'a' from a real 7.0 dump.
        let c = [0x01, 0x61, 0x61, 0xE0, 0x5A, 0x00, 0x01, 0x61, 0x61];
        assert_eq!(decompress(&c, 103).unwrap(), vec![b'a'; 103]);
        assert!(decompress(&c, 102).is_err());
        assert!(decompress(&c[..5], 103).is_err());
        assert!(decompress(&[0x20, 0x00], 3).is_err());
    }

    #[test]
    fn round_trips() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0usize, 1, 2, 3, 21, 100, 1000, 9000, 70000] {
            for alphabet in [2u8, 4, 26, 255] {
                let data: Vec<u8> = (0..len)
                    .map(|_| b'a' + rng.u8(..alphabet.min(100)))
                    .collect();
                if let Some(c) = compress(&data, len + len / 16 + 64) {
                    assert_eq!(decompress(&c, len).unwrap(), data);
                }
            }
        }
        let data = b"abc".repeat(1000);
        let c = compress(&data, data.len() - 4).unwrap();
        assert!(c.len() < 64, "{}", c.len());
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
        // Incompressible data does not fit in len - 4.
        let noise: Vec<u8> = (0..200).map(|_| rng.u8(..)).collect();
        assert!(compress(&noise, noise.len() - 4).is_none());
    }
}
