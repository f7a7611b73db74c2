//! RESTORE payload decoding. The input is tried as a whole payload, and
//! again with its last 10 bytes replaced by a valid footer (version +
//! CRC64) so the value decoder is reached. A decoded value must DUMP and
//! RESTORE back to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::restore(data));
