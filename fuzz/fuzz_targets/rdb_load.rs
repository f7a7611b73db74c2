//! RDB loader over arbitrary bytes (seed with tests/fixtures/rdb/*.rdb).
//! Loaded twice: strict (checksum verified, modules refused, expired keys
//! dropped, default limits) and lenient (no checksum, modules skipped, keys
//! kept, tiny encoding limits). Whatever strict accepts, lenient must too;
//! every loaded value must survive DUMP + RESTORE unchanged.
#![no_main]

use keel::rdb::{Limits, LoadOpts, dump_payload, load, restore_payload};
use keel::storage::Value;
use libfuzzer_sys::fuzz_target;

const TINY: Limits = Limits {
    hash_max_listpack_entries: 2,
    hash_max_listpack_value: 4,
    set_max_intset_entries: 2,
    zset_max_listpack_entries: 2,
    zset_max_listpack_value: 4,
};

fn run(data: &[u8], opts: &LoadOpts) -> Option<(u64, Vec<Value>)> {
    let mut r = data;
    let mut vals = Vec::new();
    let info = load(&mut r, opts, |_, _, e| vals.push(e.value), |_, _| {}).ok()?;
    Some((info.keys_loaded, vals))
}

fn round_trip(vals: &[Value], lim: &Limits) {
    for v in vals {
        for compress in [false, true] {
            let p = dump_payload(v, lim, compress);
            match restore_payload(&p, lim) {
                Ok(Some(back)) => assert_eq!(&back, v, "DUMP/RESTORE changed a loaded value"),
                other => panic!("RESTORE refused a DUMP of a loaded value: {other:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let strict = LoadOpts {
        now_ms: 1_700_000_000_000,
        ..LoadOpts::default()
    };
    let lenient = LoadOpts {
        limits: TINY,
        drop_expired: false,
        verify_checksum: false,
        skip_modules: true,
        ..strict.clone()
    };
    let s = run(data, &strict);
    let l = run(data, &lenient);
    if let Some((n, vals)) = &s {
        let (ln, _) = l
            .as_ref()
            .expect("lenient load refused what strict load accepted");
        assert!(ln >= n, "lenient load kept fewer keys");
        round_trip(vals, &strict.limits);
    }
    if let Some((_, vals)) = &l {
        round_trip(vals, &TINY);
    }
});
