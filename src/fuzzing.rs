//! The fuzz targets' checks, in the library so that `fuzz/` (cargo fuzz,
//! libFuzzer) and the bounded run in the test suite (`tests/fuzz_smoke.rs`)
//! drive the same code. Each function takes arbitrary bytes and panics only
//! on a real defect.

use bytes::{Bytes, BytesMut};

use crate::protocol::{Out, ParseError, Parser, ParserLimits, parser_split_args};
use crate::rdb::{Limits, LoadOpts, RDB_VERSION, crc64, dump_payload, load, restore_payload};
use crate::storage::Value;
use crate::util::{glob_match, glob_match_reference};

/// The targets, by name: what `bench-scripts/fuzz` and the smoke test run.
/// A target: its name and its check.
pub type Target = (&'static str, fn(&[u8]));

pub const TARGETS: &[Target] = &[
    ("parser", parser),
    ("rdb_load", rdb_load),
    ("restore", restore),
    ("split_args", split_args),
    ("lua_reply", lua_reply),
    ("glob", glob),
    ("cluster_bus", cluster_bus),
];

// ---------------------------------------------------------------- parser

/// Below the parser's 64 KB header limit, chunking cannot change the outcome.
const MAX_PARSER_INPUT: usize = 60 * 1024;

type Outcome = (Vec<Vec<Bytes>>, Option<ParseError>);

/// Feeds `data` in chunks whose sizes come from `sizes` (cycled), parsing
/// after every read like the connection loop does; stops at the first error.
fn parse_chunked(data: &[u8], sizes: &[u8], limits: ParserLimits) -> Outcome {
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

/// RESP multibulk and inline parsing: byte 0 picks the limits, byte 1 how
/// many chunk-size bytes follow, then the stream. One-shot, random-chunk
/// and 1-byte reads must parse alike.
pub fn parser(input: &[u8]) {
    let [mode, nsizes, rest @ ..] = input else {
        return;
    };
    let nsizes = (*nsizes as usize % 16).min(rest.len());
    let (sizes, data) = rest.split_at(nsizes);
    if data.len() > MAX_PARSER_INPUT {
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
    let whole = parse_chunked(data, &[], limits);
    let chunked = parse_chunked(data, sizes, limits);
    assert_eq!(whole, chunked, "chunking changed the parse");
    if data.len() <= 4096 {
        assert_eq!(
            whole,
            parse_chunked(data, &[0], limits),
            "1-byte reads changed the parse"
        );
    }
}

// ---------------------------------------------------------------- RDB

const TINY: Limits = Limits {
    hash_max_listpack_entries: 2,
    hash_max_listpack_value: 4,
    set_max_intset_entries: 2,
    zset_max_listpack_entries: 2,
    zset_max_listpack_value: 4,
};

fn load_all(data: &[u8], opts: &LoadOpts) -> Option<(u64, Vec<Value>)> {
    let mut r = data;
    let mut vals = Vec::new();
    let info = load(&mut r, opts, |_, _, e| vals.push(e.value), |_, _| {}).ok()?;
    Some((info.keys_loaded, vals))
}

fn dump_round_trip(vals: &[Value], lim: &Limits) {
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

/// The RDB loader, strict (checksum, modules refused) and lenient (no
/// checksum, modules skipped, tiny encoding limits): what strict accepts
/// lenient accepts with at least as many keys, and every loaded value
/// survives DUMP + RESTORE.
pub fn rdb_load(data: &[u8]) {
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
    let s = load_all(data, &strict);
    let l = load_all(data, &lenient);
    if let Some((n, vals)) = &s {
        let (ln, _) = l
            .as_ref()
            .expect("lenient load refused what strict load accepted");
        assert!(ln >= n, "lenient load kept fewer keys");
        dump_round_trip(vals, &strict.limits);
    }
    if let Some((_, vals)) = &l {
        dump_round_trip(vals, &TINY);
    }
}

fn restore_check(payload: &[u8], lim: &Limits) {
    if let Ok(Some(v)) = restore_payload(payload, lim) {
        let p = dump_payload(&v, lim, true);
        match restore_payload(&p, lim) {
            Ok(Some(back)) => assert_eq!(back, v, "DUMP/RESTORE changed a restored value"),
            other => panic!("RESTORE refused keel's own DUMP: {other:?}"),
        }
    }
}

/// RESTORE payloads, as given and with a valid footer swapped in (so the
/// value decoder is reached): a decoded value DUMPs and RESTOREs to itself.
pub fn restore(data: &[u8]) {
    restore_check(data, &Limits::default());
    let body = &data[..data.len().saturating_sub(10)];
    let mut p = body.to_vec();
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    restore_check(&p, &Limits::default());
    restore_check(&p, &TINY);
}

// ---------------------------------------------------------------- inline words

fn quote(arg: &[u8]) -> Vec<u8> {
    let mut q = b"\"".to_vec();
    for &b in arg {
        q.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
    q.push(b'"');
    q
}

/// Inline command / config line splitting: the words re-quoted as
/// `"\xHH..."` split back to the same words.
pub fn split_args(line: &[u8]) {
    let Some(args) = parser_split_args(line) else {
        return;
    };
    let mut joined = Vec::new();
    for a in &args {
        joined.extend_from_slice(&quote(a));
        joined.push(b' ');
    }
    assert_eq!(
        parser_split_args(&joined).as_deref(),
        Some(&args[..]),
        "re-quoted round trip"
    );
}

// ---------------------------------------------------------------- glob

/// Longest pattern and string compared with the exponential reference.
const GLOB_REF_MAX: usize = 20;

/// `util::glob_match` (KEYS, SCAN MATCH, PSUBSCRIBE, ACL...): byte 0 holds
/// nocase (bit 0) and a repeat count (bits 2..), byte 1 the pattern length,
/// then pattern and string. Short inputs must match the plain recursive
/// reference; the pattern repeated up to 63 times against the string
/// repeated 500 times must still answer well within a second (an
/// exponential matcher takes forever there).
pub fn glob(input: &[u8]) {
    let [flags, plen, rest @ ..] = input else {
        return;
    };
    let nocase = flags & 1 == 1;
    let (pat, s) = rest.split_at((*plen as usize).min(rest.len()));
    let stars = pat.split(|&b| b != b'*').filter(|r| !r.is_empty()).count();
    if pat.len() <= GLOB_REF_MAX && s.len() <= GLOB_REF_MAX && stars <= 8 {
        assert_eq!(
            glob_match(pat, s, nocase),
            glob_match_reference(pat, s, nocase),
            "pattern {} string {} nocase {nocase}",
            crate::util::repr(pat),
            crate::util::repr(s)
        );
    }
    let times = (flags >> 2) as usize;
    if times > 1 && pat.len() <= 64 && s.len() <= 16 {
        let (pat, s) = (pat.repeat(times), s.repeat(500));
        let t = thread_cpu();
        let _ = glob_match(&pat, &s, nocase);
        let took = thread_cpu() - t;
        // The worst polynomial case (a class spanning the whole pattern,
        // tried at every string offset) takes ~20 ms in release and ~1 s of
        // wall time under the fuzzer's instrumentation on a loaded machine;
        // an exponential matcher takes years. CPU time, so load does not count.
        assert!(
            took < std::time::Duration::from_secs(5),
            "{took:?} of CPU for a {}-byte pattern on a {}-byte string",
            pat.len(),
            s.len()
        );
    }
}

/// CPU time this thread has used.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// ---------------------------------------------------------------- Lua replies

/// The fuzzer's bytes, read one at a time (zeros once used up).
struct Src<'a>(&'a [u8]);

impl Src<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn bytes8(&mut self) -> [u8; 8] {
        std::array::from_fn(|_| self.byte())
    }
    fn text(&mut self, out: &mut Vec<u8>) {
        let len = (self.byte() % 12) as usize;
        for _ in 0..len {
            let b = self.byte();
            out.push(b);
        }
    }
}

/// Builds one well-formed RESP2 or RESP3 reply from the fuzzer's bytes
/// (what a command can return to a script), at most `depth` levels deep.
fn gen_reply(src: &mut Src, resp3: bool, depth: u32, out: &mut Vec<u8>) {
    let kind = src.byte() % if resp3 { 15 } else { 6 };
    let n = (src.byte() % 6) as usize;
    let nested = depth > 0;
    match kind {
        0 | 1 => {
            out.extend_from_slice(if kind == 0 { b"+" } else { b"-ERR " });
            let start = out.len();
            src.text(out);
            sanitize_line(&mut out[start..]);
            out.extend_from_slice(b"\r\n");
        }
        2 => {
            let v = i64::from_le_bytes(src.bytes8());
            out.extend_from_slice(format!(":{v}\r\n").as_bytes());
        }
        3 => {
            let mut body = Vec::new();
            src.text(&mut body);
            out.extend_from_slice(format!("${}\r\n", body.len()).as_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n");
        }
        4 => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        5..=7 if nested => {
            let head = match kind {
                5 => b'*',
                6 => b'~',
                _ => b'%',
            };
            out.extend_from_slice(format!("{}{n}\r\n", head as char).as_bytes());
            let items = if head == b'%' { 2 * n } else { n };
            for _ in 0..items {
                gen_reply(src, resp3, depth - 1, out);
            }
        }
        5 => out.extend_from_slice(b"*-1\r\n"),
        8 => {
            let v = f64::from_le_bytes(src.bytes8());
            let s = if v.is_nan() {
                "nan".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "inf" } else { "-inf" }.to_string()
            } else {
                format!("{v}")
            };
            out.extend_from_slice(format!(",{s}\r\n").as_bytes());
        }
        9 => out.extend_from_slice(if src.byte().is_multiple_of(2) {
            b"#t\r\n"
        } else {
            b"#f\r\n"
        }),
        10 => {
            let len = src.byte() % 30 + 1;
            let digits: String = (0..len).map(|_| (b'0' + src.byte() % 10) as char).collect();
            out.extend_from_slice(format!("({digits}\r\n").as_bytes());
        }
        11 | 12 => {
            let mut body = if kind == 11 {
                b"txt:".to_vec()
            } else {
                b"ERR ".to_vec()
            };
            src.text(&mut body);
            let head = if kind == 11 { '=' } else { '!' };
            out.extend_from_slice(format!("{head}{}\r\n", body.len()).as_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n");
        }
        _ => out.extend_from_slice(b"+OK\r\n"),
    }
}

fn sanitize_line(s: &mut [u8]) {
    for b in s {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}

/// Length of one complete RESP frame at the start of `b`, None if it is
/// not one (what the client would fail to parse).
pub fn resp_frame_len(b: &[u8]) -> Option<usize> {
    let nl = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[1..nl]).ok();
    let after = nl + 2;
    let count = |h: Option<&str>| h.and_then(|s| s.parse::<i64>().ok());
    match *b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n = count(head)?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize;
            (b.get(end..end + 2)? == b"\r\n").then_some(end + 2)
        }
        b'*' | b'~' | b'%' | b'>' | b'|' => {
            let n = count(head)?;
            let items = if b[0] == b'%' || b[0] == b'|' {
                2 * n
            } else {
                n
            };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += resp_frame_len(&b[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// A script host whose every command returns the given reply.
struct ReplyHost {
    reply2: Vec<u8>,
    reply3: Vec<u8>,
}

impl crate::scripting::ScriptHost for ReplyHost {
    fn call(&mut self, _args: &[Bytes], resp3: bool) -> Result<Vec<u8>, String> {
        Ok(if resp3 {
            self.reply3.clone()
        } else {
            self.reply2.clone()
        })
    }

    fn log(&mut self, _level: i32, _msg: &str) {}
}

thread_local! {
    static ENGINE: std::cell::RefCell<Option<crate::scripting::Engine>> =
        const { std::cell::RefCell::new(None) };
}

/// Lua's conversion of command replies (Redis's redisProtocolToLuaType and
/// back), RESP2 and RESP3, from well-formed replies built from the bytes:
/// the script's reply must be one well-formed RESP frame.
pub fn lua_reply(data: &[u8]) {
    let mut src = Src(data);
    let mut reply2 = Vec::new();
    gen_reply(&mut src, false, 3, &mut reply2);
    let mut reply3 = Vec::new();
    gen_reply(&mut src, true, 3, &mut reply3);
    let mut host = ReplyHost { reply2, reply3 };
    let scripts: [&[u8]; 5] = [
        b"return redis.call('x')",
        b"return redis.pcall('x')",
        b"redis.setresp(3); return redis.call('x')",
        b"redis.setresp(3); local r = redis.pcall('x'); return {r, type(r)}",
        b"local r = redis.pcall('x'); if type(r) == 'table' then return #r end return tostring(r)",
    ];
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        let engine = e.get_or_insert_with(crate::scripting::Engine::new);
        for script in scripts {
            for resp3 in [false, true] {
                let args = [
                    Bytes::from_static(b"EVAL"),
                    Bytes::copy_from_slice(script),
                    Bytes::from_static(b"0"),
                ];
                let mut out = Out::new(resp3);
                engine.eval_command(&args, false, false, &mut host, &mut out);
                let n = resp_frame_len(&out.buf);
                assert_eq!(
                    n,
                    Some(out.buf.len()),
                    "script reply is not one RESP frame: {:?}",
                    String::from_utf8_lossy(&out.buf)
                );
            }
        }
    });
}

/// Cheap mutations for bounded runs without libFuzzer (the test suite):
/// flips, inserts, deletes, splices with another seed, truncation.
pub fn mutate(rng: &mut fastrand::Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.usize(1..=8) {
        match rng.u8(..6) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] ^= 1 << rng.u8(..8);
            }
            1 => {
                let i = rng.usize(..=v.len());
                v.insert(i, rng.u8(..));
            }
            2 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v.remove(i);
            }
            3 if !other.is_empty() => {
                let i = rng.usize(..=v.len());
                let a = rng.usize(..other.len());
                let b = rng.usize(a..=other.len());
                v.splice(i..i, other[a..b].iter().copied());
            }
            4 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] = *[b'\r', b'\n', b'$', b'*', b'0', b'-', 0xff, b'"', b'\\']
                    .get(rng.usize(..9))
                    .unwrap();
            }
            5 => v.truncate(rng.usize(..=v.len())),
            _ => {}
        }
    }
    v
}

// ----------------------------------------------------------- cluster_bus

/// A cluster bus frame from arbitrary bytes: the signature, length and
/// version are set so the decoder's body checks are reached; the bytes
/// after them (type, count, gossip, extensions...) are the input's. As a
/// plain frame, the input itself is decoded too. A decoded message must
/// encode to bytes that decode to the same message.
pub fn cluster_bus(input: &[u8]) {
    use crate::cluster::codec::{self, Body, MF_EXT_DATA};
    let _ = codec::frame_len(input);
    let _ = codec::decode(input);
    let mut frame = codec::SIG.to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&codec::VERSION.to_be_bytes());
    frame.extend_from_slice(input);
    if frame.len() < codec::HEADER_LEN {
        frame.resize(codec::HEADER_LEN, 0);
    }
    let len = frame.len() as u32;
    frame[4..8].copy_from_slice(&len.to_be_bytes());
    let Ok(mut m) = codec::decode(&frame) else {
        return;
    };
    let again = codec::decode(&codec::encode(&m)).expect("an encoded message decodes");
    // Encoding keeps only what the decoder understood: the hostname
    // extension (when not empty) and the flag that announces it.
    m.mflags[0] &= !MF_EXT_DATA;
    if let Body::Ping { hostname, .. } = &mut m.body
        && hostname.as_deref().is_none_or(str::is_empty)
    {
        *hostname = None;
    }
    let mut again = again;
    again.mflags[0] &= !MF_EXT_DATA;
    assert_eq!(again, m);
}
