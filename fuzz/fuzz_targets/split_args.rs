//! Inline argument splitting (sdssplitargs rules): never panics, and the
//! words it returns survive being quoted and split again.
#![no_main]

use keel::protocol::parser_split_args as split_args;
use libfuzzer_sys::fuzz_target;

fn quote(arg: &[u8]) -> Vec<u8> {
    let mut q = b"\"".to_vec();
    for &b in arg {
        q.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
    q.push(b'"');
    q
}

fuzz_target!(|line: &[u8]| {
    let Some(args) = split_args(line) else {
        return;
    };
    // Re-quoting every byte as \xHH must give the same words back.
    let mut joined = Vec::new();
    for a in &args {
        joined.extend_from_slice(&quote(a));
        joined.push(b' ');
    }
    assert_eq!(
        split_args(&joined).as_deref(),
        Some(&args[..]),
        "re-quoted round trip"
    );
});
