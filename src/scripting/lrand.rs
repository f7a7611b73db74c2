//! The 48-bit linear congruential generator Redis uses for math.random
//! (redisLrand48): same sequence on every platform.

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK48: u64 = (1 << 48) - 1;

#[derive(Clone, Debug)]
pub struct Lrand48 {
    x: u64,
}

impl Default for Lrand48 {
    fn default() -> Self {
        // Initial state of drand48 family: 0x1234ABCD330E.
        Lrand48 {
            x: 0x1234_ABCD_330E,
        }
    }
}

/// Redis's REDIS_LRAND48_MAX.
pub const LRAND48_MAX: i32 = i32::MAX;

impl Lrand48 {
    /// Returns a value in [0, 2^31).
    pub fn next(&mut self) -> i32 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK48;
        (self.x >> 17) as i32
    }

    /// srand48: high 32 bits from the seed, low 16 bits 0x330E.
    pub fn seed(&mut self, seed: i32) {
        self.x = (((seed as u32) as u64) << 16) | 0x330E;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lrand48() {
        // Values of glibc lrand48() after srand48(0) / default state.
        let mut r = Lrand48::default();
        let mut s: Vec<i32> = (0..2).map(|_| r.next()).collect();
        unsafe extern "C" {
            fn lrand48() -> libc::c_long;
            fn srand48(seed: libc::c_long);
        }
        unsafe { srand48(0x1234ABCD) };
        // srand48(0x1234ABCD) gives the default state 0x1234ABCD330E.
        let g: Vec<i32> = (0..2).map(|_| unsafe { lrand48() } as i32).collect();
        assert_eq!(s, g);
        r.seed(7);
        unsafe { srand48(7) };
        s = (0..3).map(|_| r.next()).collect();
        let g: Vec<i32> = (0..3).map(|_| unsafe { lrand48() } as i32).collect();
        assert_eq!(s, g);
    }
}
