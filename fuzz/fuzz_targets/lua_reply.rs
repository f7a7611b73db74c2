//! Lua's conversion of command replies (RESP2/RESP3) and back: see keel::fuzzing::lua_reply.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::lua_reply(data));
