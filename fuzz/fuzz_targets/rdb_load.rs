//! RDB loader over arbitrary bytes (seed with tests/fixtures/rdb/*.rdb).
//! Loaded twice: strict (checksum verified, modules refused, expired keys
//! dropped, default limits) and lenient (no checksum, modules skipped, keys
//! kept, tiny encoding limits). Whatever strict accepts, lenient must too;
//! every loaded value must survive DUMP + RESTORE unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::rdb_load(data));
