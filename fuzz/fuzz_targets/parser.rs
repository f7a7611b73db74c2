//! RESP request parser: the input is split into random chunks (as reads
//! would deliver it) and parsed with small or default limits. Whatever the
//! chunking, the commands and the error must be those of a one-shot parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::parser(data));
