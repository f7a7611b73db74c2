//! The glob matcher: same answers as a plain reference on short inputs,
//! bounded time on long repeated ones.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::glob(data));
