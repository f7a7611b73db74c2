//! RESP request parser: the input is split into random chunks (as reads
//! would deliver it) and parsed with small or default limits. Whatever the
//! chunking, the commands and the error must be those of a one-shot parse.
#![no_main]

use bytes::{Bytes, BytesMut};
use keel::protocol::{ParseError, Parser, ParserLimits};
use libfuzzer_sys::fuzz_target;

/// Below the parser's 64 KB header limit, chunking cannot change the outcome.
const MAX_INPUT: usize = 60 * 1024;

type Outcome = (Vec<Vec<Bytes>>, Option<ParseError>);

/// Feeds `data` in chunks whose sizes come from `sizes` (cycled), parsing
/// after every read like the connection loop does; stops at the first error.
fn run(data: &[u8], sizes: &[u8], limits: ParserLimits) -> Outcome {
    let mut p = Parser::new();
    let mut buf = BytesMut::new();
    let mut cmds = Vec::new();
    let mut off = 0;
    let mut i = 0;
    loop {
        let done = off >= data.len();
        if !done {
            let n = match sizes.get(i % sizes.len().max(1)) {
                Some(&s) => (s as usize % 64) + 1,
                None => data.len(),
            };
            let n = n.min(data.len() - off);
            buf.extend_from_slice(&data[off..off + n]);
            off += n;
            i += 1;
        }
        loop {
            match p.parse(&mut buf, limits) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "parser returned an empty command");
                    cmds.push(args);
                }
                Ok(None) => break,
                Err(e) => return (cmds, Some(e)),
            }
        }
        if done {
            return (cmds, None);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // Byte 0: limits; byte 1: how many chunk-size bytes follow; then the stream.
    let [mode, nsizes, rest @ ..] = input else {
        return;
    };
    let nsizes = (*nsizes as usize % 16).min(rest.len());
    let (sizes, data) = rest.split_at(nsizes);
    if data.len() > MAX_INPUT {
        return;
    }
    let limits = match mode % 4 {
        0 => ParserLimits::default(),
        1 => ParserLimits {
            proto_max_bulk_len: 16,
            authenticated: true,
        },
        2 => ParserLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            authenticated: false,
        },
        _ => ParserLimits {
            proto_max_bulk_len: 1,
            authenticated: false,
        },
    };
    let whole = run(data, &[], limits);
    let chunked = run(data, sizes, limits);
    assert_eq!(whole, chunked, "chunking changed the parse");
    // Byte-at-a-time is the harshest split.
    if data.len() <= 4096 {
        assert_eq!(
            whole,
            run(data, &[0], limits),
            "1-byte reads changed the parse"
        );
    }
});
