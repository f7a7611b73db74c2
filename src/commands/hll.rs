//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//! Values are plain strings in Redis 7.0's exact format (storage::hll), so
//! GET/SET/DUMP move them between keel and Redis unchanged.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::errors::WRONGTYPE;
use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic};
use crate::storage::hll::{self, REGISTERS};
use crate::storage::{Str, Value};

const HLL_WRONGTYPE: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const INVALIDOBJ: &str = "INVALIDOBJ Corrupted HLL object detected";

pub fn commands() -> Vec<Command> {
    vec![
        cmd("pfadd", -2, WRITE | DENYOOM | FAST, pfadd).keys(1, 1, 1),
        cmd("pfcount", -2, READONLY | MAY_REPLICATE, pfcount).keys(1, -1, 1),
        cmd("pfmerge", -2, WRITE | DENYOOM, pfmerge).keys(1, -1, 1),
        cmd("pfdebug", 3, WRITE | DENYOOM | ADMIN, pfdebug).keys(2, 2, 1),
        cmd("pfselftest", 1, ADMIN, pfselftest),
    ]
}

/// hll-sparse-max-bytes.
fn sparse_max(ctx: &Ctx) -> usize {
    let cfg = ctx.srv.config.read().unwrap_or_else(|e| e.into_inner());
    cfg.get_i64("hll-sparse-max-bytes").max(0) as usize
}

/// isHLLObjectOrReply: the error for a value that is not a usable HLL.
fn check(v: &Value) -> Result<(), &'static str> {
    match v {
        Value::Str(s) if hll::is_valid(s) => Ok(()),
        Value::Str(_) => Err(HLL_WRONGTYPE),
        _ => Err(WRONGTYPE),
    }
}

/// The stored string at `key` (already looked up and checked).
fn stored<'c>(ctx: &'c mut Ctx, key: &[u8]) -> &'c mut Vec<u8> {
    // HLL values are raw strings in Redis.
    ctx.db(key).mark_raw(key);
    match ctx.db(key).dict.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Str(s)) => s.make_vec(),
        _ => unreachable!("HLL value checked before"),
    }
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let max = sparse_max(ctx);
    let mut updated = 0u64;
    match ctx.lookup_write(key) {
        None => {
            ctx.db(key)
                .set(key, Value::Str(Str::from(hll::new_sparse())));
            updated += 1;
        }
        Some(e) => {
            if let Err(msg) = check(&e.value) {
                return ctx.out.err(msg);
            }
        }
    }
    let s = stored(ctx, key);
    for ele in &args[2..] {
        match hll::add(s, ele, max) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(_) => return ctx.out.err(INVALIDOBJ),
        }
    }
    if updated > 0 {
        hll::invalidate_cache(s);
        ctx.dirty(key, updated);
        ctx.notify(ev::STRING, "pfadd", key);
    }
    ctx.out.int((updated > 0) as i64);
}

fn pfcount(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 2 {
        // Union of several HLLs: nothing is written back.
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &args[1..] {
            let Some(e) = ctx.lookup_read(key) else {
                continue;
            };
            if let Err(msg) = check(&e.value) {
                return ctx.out.err(msg);
            }
            let Value::Str(s) = &e.value else {
                unreachable!()
            };
            if hll::merge_into(&mut max, s).is_err() {
                return ctx.out.err(INVALIDOBJ);
            }
        }
        let card = hll::estimate(&hll::raw_histogram(&max));
        return ctx.out.int(card as i64);
    }
    let key = &args[1];
    match ctx.lookup_read(key) {
        None => return ctx.out.int(0),
        Some(e) => {
            if let Err(msg) = check(&e.value) {
                return ctx.out.err(msg);
            }
        }
    }
    let s = stored(ctx, key);
    let card = match hll::cached_card(s) {
        Some(c) => c,
        None => {
            // Redis refreshes the cached cardinality in the value itself.
            let Ok(c) = hll::count(s) else {
                return ctx.out.err(INVALIDOBJ);
            };
            hll::set_cached_card(s, c);
            ctx.dirty(key, 1);
            c
        }
    };
    ctx.out.int(card as i64);
}

fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for key in &args[1..] {
        let Some(e) = ctx.lookup_read(key) else {
            continue;
        };
        if let Err(msg) = check(&e.value) {
            return ctx.out.err(msg);
        }
        let Value::Str(s) = &e.value else {
            unreachable!()
        };
        use_dense |= hll::encoding(s) == hll::DENSE;
        if hll::merge_into(&mut max, s).is_err() {
            return ctx.out.err(INVALIDOBJ);
        }
    }
    let dest = &args[1];
    let sparse_max = sparse_max(ctx);
    if ctx.lookup_write(dest).is_none() {
        ctx.db(dest)
            .set(dest, Value::Str(Str::from(hll::new_sparse())));
    }
    let s = stored(ctx, dest);
    if use_dense && hll::sparse_to_dense(s).is_err() {
        return ctx.out.err(INVALIDOBJ);
    }
    for (j, &m) in max.iter().enumerate() {
        if m != 0 {
            // The destination was validated as a source above.
            let _ = hll::set_register(s, j, m, sparse_max);
        }
    }
    hll::invalidate_cache(s);
    ctx.dirty(dest, 1);
    ctx.notify(ev::STRING, "pfadd", dest);
    ctx.out.ok();
}

fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = &args[1];
    let key = &args[2];
    match ctx.lookup_write(key) {
        None => return ctx.out.err("ERR The specified key does not exist"),
        Some(e) => {
            if let Err(msg) = check(&e.value) {
                return ctx.out.err(msg);
            }
        }
    }
    let s = stored(ctx, key);
    if eq_ic(sub, "getreg") {
        if hll::encoding(s) == hll::SPARSE {
            if hll::sparse_to_dense(s).is_err() {
                return ctx.out.err(INVALIDOBJ);
            }
            ctx.dirty(key, 1);
        }
        let s = stored(ctx, key);
        let regs: Vec<u8> = (0..REGISTERS)
            .map(|i| hll::dense_get(&s[hll::HDR_SIZE..], i))
            .collect();
        ctx.out.array(REGISTERS);
        for r in regs {
            ctx.out.int(r as i64);
        }
    } else if eq_ic(sub, "decode") {
        if hll::encoding(s) != hll::SPARSE {
            return ctx.out.err("ERR HLL encoding is not sparse");
        }
        let text = hll::decode(s);
        ctx.out.bulk(text.as_bytes());
    } else if eq_ic(sub, "encoding") {
        let enc = if hll::encoding(s) == hll::DENSE {
            "dense"
        } else {
            "sparse"
        };
        ctx.out.simple(enc);
    } else if eq_ic(sub, "todense") {
        let mut conv = false;
        if hll::encoding(s) == hll::SPARSE {
            if hll::sparse_to_dense(s).is_err() {
                return ctx.out.err(INVALIDOBJ);
            }
            conv = true;
            ctx.dirty(key, 1);
        }
        ctx.out.int(conv as i64);
    } else {
        ctx.out.err(&format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        ));
    }
}

fn pfselftest(ctx: &mut Ctx, _args: &[Bytes]) {
    let max = sparse_max(ctx);
    match selftest(max, crate::storage::now_us()) {
        Ok(()) => ctx.out.ok(),
        Err(msg) => ctx.out.err(&msg),
    }
}

/// PFSELFTEST's checks: dense register access, then sparse/dense agreement
/// and estimation error at 1, 10, ... 10^7 elements.
fn selftest(sparse_max: usize, seed: u64) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut rand = move || {
        // xorshift64*: any decent PRNG will do for the test.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut dense = vec![0u8; hll::DENSE_SIZE];
    let mut bytes = [0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (rand() >> 32) as u8 & hll::REGISTER_MAX;
            hll::dense_set(&mut dense[hll::HDR_SIZE..], i, *b);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let v = hll::dense_get(&dense[hll::HDR_SIZE..], i);
            if v != b {
                return Err(format!(
                    "ERR TESTFAILED Register {i} should be {b} but is {v}"
                ));
            }
        }
    }

    dense[hll::HDR_SIZE..].fill(0);
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed = rand();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let _ = hll::add(&mut dense, &ele, sparse_max);
        let _ = hll::add(&mut sparse, &ele, sparse_max);
        if j != checkpoint {
            continue;
        }
        if (j as usize) < sparse_max / 2 && hll::encoding(&sparse) != hll::SPARSE {
            return Err("ERR TESTFAILED sparse encoding not used".into());
        }
        let card = hll::count(&dense).unwrap_or(0);
        if hll::count(&sparse).ok() != Some(card) {
            return Err("ERR TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "ERR TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_errors() {
        assert_eq!(
            check(&Value::Str(Str::from(b"hello".to_vec()))),
            Err(HLL_WRONGTYPE)
        );
        assert_eq!(check(&Value::Str(Str::from(hll::new_sparse()))), Ok(()));
        let mut dense = hll::new_sparse();
        hll::sparse_to_dense(&mut dense).unwrap();
        assert_eq!(check(&Value::Str(Str::from(dense.clone()))), Ok(()));
        dense.push(0);
        assert_eq!(check(&Value::Str(Str::from(dense))), Err(HLL_WRONGTYPE));
        let mut bad_enc = hll::new_sparse();
        bad_enc[4] = 2;
        assert_eq!(check(&Value::Str(Str::from(bad_enc))), Err(HLL_WRONGTYPE));
    }
}
