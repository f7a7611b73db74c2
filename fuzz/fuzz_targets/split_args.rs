//! Inline argument splitting (sdssplitargs rules): never panics, and the
//! words it returns survive being quoted and split again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::split_args(data));
