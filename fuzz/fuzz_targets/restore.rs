//! RESTORE payload decoding. The input is tried as a whole payload, and
//! again with its last 10 bytes replaced by a valid footer (version +
//! CRC64) so the value decoder is reached. A decoded value must DUMP and
//! RESTORE back to itself.
#![no_main]

use keel::rdb::{Limits, RDB_VERSION, crc64, dump_payload, restore_payload};
use libfuzzer_sys::fuzz_target;

const TINY: Limits = Limits {
    hash_max_listpack_entries: 2,
    hash_max_listpack_value: 4,
    set_max_intset_entries: 2,
    zset_max_listpack_entries: 2,
    zset_max_listpack_value: 4,
};

fn check(payload: &[u8], lim: &Limits) {
    if let Ok(Some(v)) = restore_payload(payload, lim) {
        let p = dump_payload(&v, lim, true);
        match restore_payload(&p, lim) {
            Ok(Some(back)) => assert_eq!(back, v, "DUMP/RESTORE changed a restored value"),
            other => panic!("RESTORE refused keel's own DUMP: {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, &Limits::default());
    // Seeds are full DUMP payloads: swap their footer for a valid one.
    let body = &data[..data.len().saturating_sub(10)];
    let mut p = body.to_vec();
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    check(&p, &Limits::default());
    check(&p, &TINY);
});
