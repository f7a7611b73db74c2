//! Malformed and hostile input. For each case: the bad client's output is
//! compared with stock Redis (where Redis's answer is deterministic), then the
//! server must still answer PING on a new connection, and clients connected
//! before the bad one must still work with their data intact.

mod common;

use std::time::Duration;

use common::{Conn, Pair, Server, encode, show};

/// What the bad client does after sending its payload.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Read until the server closes or stays quiet, compare with Redis.
    Compare,
    /// Read until close/quiet; only survival and "closed or not" are compared.
    CompareClosedOnly,
    /// Close at once without reading.
    Disconnect,
}

/// Clients opened before the bad one: several, so that with SO_REUSEPORT
/// some share the bad client's shard.
struct Witnesses {
    conns: Vec<Conn>,
}

impl Witnesses {
    fn open(s: &Server) -> Witnesses {
        let mut conns: Vec<Conn> = (0..6).map(|_| s.conn()).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            let r = c.cmd(&[
                "MSET".to_string(),
                format!("w:{i}:a"),
                format!("A{i}"),
                format!("w:{i}:b"),
                "\0\r\n".to_string(),
            ]);
            assert_eq!(r, b"+OK\r\n", "{}: witness MSET", c.who);
            assert_eq!(c.cmd(&["SELECT", "2"]), b"+OK\r\n");
            assert_eq!(c.cmd(&["SET", &format!("w:{i}:db2"), "two"]), b"+OK\r\n");
        }
        Witnesses { conns }
    }

    /// Problems seen on these connections, if any.
    fn verify(&mut self) -> Vec<String> {
        let mut bad = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            let steps: [(Vec<String>, Vec<u8>); 4] = [
                (vec!["PING".into()], b"+PONG\r\n".to_vec()),
                (
                    vec!["GET".into(), format!("w:{i}:db2")],
                    b"$3\r\ntwo\r\n".to_vec(),
                ),
                (vec!["SELECT".into(), "0".into()], b"+OK\r\n".to_vec()),
                (
                    vec!["MGET".into(), format!("w:{i}:a"), format!("w:{i}:b")],
                    format!("*2\r\n$2\r\nA{i}\r\n$3\r\n\0\r\n\r\n").into_bytes(),
                ),
            ];
            for (args, want) in steps {
                c.send_lossy(&encode(&args));
                let got = c.try_read_reply(Duration::from_secs(10));
                if got.as_ref().is_ok_and(|g| *g == want) {
                    continue;
                }
                bad.push(format!(
                    "{}: earlier client #{i}: {} -> {:?}, want {}",
                    c.who,
                    args.join(" "),
                    got.as_ref().map(|g| show(g)),
                    show(&want)
                ));
                // A dead connection would only time out again.
                if got.is_err() {
                    break;
                }
            }
        }
        bad
    }
}

/// Sends `payload` from a fresh connection, concurrently reading what comes
/// back (a big payload may be cut off by the server closing).
fn bad_client(s: &Server, payload: &[u8], then: Then) -> (Vec<u8>, bool) {
    let mut c = s.conn();
    if then == Then::Disconnect {
        c.send_lossy(payload);
        return (Vec::new(), true);
    }
    let mut w = c.stream().try_clone().unwrap();
    let data = payload.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = w.write_all(&data);
    });
    let out = c.read_until_close(Duration::from_millis(700));
    // Unblocks the writer if the server stopped reading without closing.
    drop(c);
    writer.join().unwrap();
    out
}

fn new_conn_ping(s: &Server) -> Option<String> {
    let mut c = s.conn();
    c.send(&encode(&["PING"]));
    match c.try_read_reply(Duration::from_secs(10)) {
        Ok(r) if r == b"+PONG\r\n" => None,
        r => Some(format!(
            "{}: PING on a new connection: {:?}",
            s.name,
            r.map(|x| show(&x))
        )),
    }
}

/// Runs one bad-input case on keel `--shards shards` and redis. `expect`:
/// what Redis is known to send back (checked, so the test itself is right).
fn case(shards: usize, name: &str, payload: impl AsRef<[u8]>, then: Then, expect: Option<&[u8]>) {
    let payload = payload.as_ref();
    let mut p = Pair::new(shards);
    let mut wk = Witnesses::open(&p.keel);
    let mut wr = Witnesses::open(&p.redis);
    let (kout, kclosed) = bad_client(&p.keel, payload, then);
    let (rout, rclosed) = bad_client(&p.redis, payload, then);
    if let Some(want) = expect {
        assert_eq!(
            show(&rout),
            show(want),
            "test expectation is wrong: stock redis answered differently to {name}"
        );
    }
    match then {
        Then::Compare => {
            if (&kout, kclosed) != (&rout, rclosed) {
                p.fail(format!(
                    "{name}: bad client's output\n    keel:  {} (closed={kclosed})\n    redis: {} (closed={rclosed})",
                    show(&kout),
                    show(&rout)
                ));
            }
        }
        Then::CompareClosedOnly => {
            if kclosed != rclosed {
                p.fail(format!(
                    "{name}: connection closed: keel {kclosed}, redis {rclosed}; keel sent {}",
                    show(&kout)
                ));
            }
        }
        Then::Disconnect => {}
    }
    if !p.keel.alive() {
        p.fail(format!("{name}: keel exited"));
        p.finish();
    }
    for m in [new_conn_ping(&p.keel), new_conn_ping(&p.redis)]
        .into_iter()
        .flatten()
    {
        p.fail(format!("{name}: {m}"));
    }
    for m in wk.verify().into_iter().chain(wr.verify()) {
        p.fail(format!("{name}: {m}"));
    }
    if !p.keel.alive() {
        p.fail(format!("{name}: keel exited (see its log)"));
    }
    // Nothing of a half-sent command may have been executed.
    p.check("EXISTS half trunc");
    p.check("DBSIZE");
    p.finish();
}

fn garbage(len: usize, seed: u64, exclude_newlines: bool) -> Vec<u8> {
    let mut x = seed;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        // xorshift64: reproducible noise.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = (x >> 24) as u8;
        if exclude_newlines && (b == b'\n' || b == b'\r') {
            continue;
        }
        v.push(b);
    }
    v
}

macro_rules! cases {
    ($($name:ident => ($payload:expr, $then:expr, $expect:expr);)*) => {
        $(
            mod $name {
                use super::*;
                #[test]
                fn shards_1() {
                    case(1, stringify!($name), $payload, $then, $expect);
                }
                #[test]
                fn shards_4() {
                    case(4, stringify!($name), $payload, $then, $expect);
                }
            }
        )*
    };
}

const INVALID_MULTIBULK: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
const INVALID_BULK: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";

/// What stock Redis answers (checked, so the test itself is right).
fn ex(reply: &'static [u8]) -> Option<&'static [u8]> {
    Some(reply)
}

fn with_ping_after(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    v
}

fn garbage_no_newline() -> Vec<u8> {
    let mut g = garbage(1 << 20, 7, true);
    g[0] = b'x';
    g
}

fn garbage_with_star() -> Vec<u8> {
    let mut g = garbage(1 << 20, 11, false);
    g[0] = b'*';
    g
}

cases! {
    // Truncated frames: no reply, then the client goes away.
    truncated_header => (b"*2\r\n$3\r\nGE", Then::Compare, ex(b"")) ;
    truncated_count => (b"*2", Then::Compare, ex(b""));
    truncated_bulk_len => (b"*2\r\n$3", Then::Compare, ex(b""));
    truncated_second_arg => (b"*3\r\n$3\r\nSET\r\n$5\r\ntrunc\r\n$10\r\nabc", Then::Compare, ex(b""));
    truncated_inline => (b"SET trunc 1", Then::Compare, ex(b""));
    half_command_then_disconnect => (b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nhel", Then::Disconnect, None);
    half_pipeline_then_disconnect => ({
        let mut v = encode(&["SET", "w:ok", "1"]);
        v.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nhe");
        v
    }, Then::Disconnect, None);

    invalid_multibulk_length => (with_ping_after(b"*abc\r\n"), Then::Compare, ex(INVALID_MULTIBULK));
    multibulk_length_overflow => (with_ping_after(b"*99999999999999999999\r\n"), Then::Compare, ex(INVALID_MULTIBULK));
    multibulk_length_too_big => (with_ping_after(b"*2147483648\r\n"), Then::Compare, ex(INVALID_MULTIBULK));
    multibulk_empty_count => (with_ping_after(b"*\r\n"), Then::Compare, ex(INVALID_MULTIBULK));
    bad_bulk_length => (with_ping_after(b"*1\r\n$abc\r\n"), Then::Compare, ex(INVALID_BULK));
    empty_bulk_length => (with_ping_after(b"*1\r\n$\r\n"), Then::Compare, ex(INVALID_BULK));
    negative_bulk_length => (with_ping_after(b"*1\r\n$-1\r\n"), Then::Compare, ex(INVALID_BULK));
    bulk_over_proto_max => (with_ping_after(b"*1\r\n$536870913\r\n"), Then::Compare, ex(INVALID_BULK));
    expected_dollar => (with_ping_after(b"*1\r\n+x\r\n"), Then::Compare, ex(b"-ERR Protocol error: expected '$', got '+'\r\n"));
    expected_dollar_colon => (with_ping_after(b"*2\r\n$3\r\nGET\r\n:1\r\n"), Then::Compare, ex(b"-ERR Protocol error: expected '$', got ':'\r\n"));
    unbalanced_double_quote => (with_ping_after(b"SET \"abc def\r\n"), Then::Compare, ex(b"-ERR Protocol error: unbalanced quotes in request\r\n"));
    unbalanced_single_quote => (with_ping_after(b"SET 'abc\r\n"), Then::Compare, ex(b"-ERR Protocol error: unbalanced quotes in request\r\n"));
    quote_not_followed_by_space => (with_ping_after(b"SET \"a\"b c\r\n"), Then::Compare, ex(b"-ERR Protocol error: unbalanced quotes in request\r\n"));
    good_then_bad => ({
        let mut v = encode(&["SET", "w:gb", "1"]);
        v.extend(encode(&["GET", "w:gb"]));
        v.extend_from_slice(b"*x\r\n");
        v.extend(encode(&["SET", "half", "never"]));
        v
    }, Then::Compare, ex(b"+OK\r\n$1\r\n1\r\n-ERR Protocol error: invalid multibulk length\r\n"));
    too_big_inline => (garbage_no_newline(), Then::Compare, ex(b"-ERR Protocol error: too big inline request\r\n"));
    too_big_multibulk_header => ({
        let mut v = b"*1".to_vec();
        v.extend(std::iter::repeat_n(b'1', 70 * 1024));
        v
    }, Then::Compare, ex(b"-ERR Protocol error: too big mbulk count string\r\n"));
    too_big_bulk_header => ({
        let mut v = b"*1\r\n$1".to_vec();
        v.extend(std::iter::repeat_n(b'1', 70 * 1024));
        v
    }, Then::Compare, ex(b"-ERR Protocol error: too big bulk count string\r\n"));
    // Redis looks for the inline newline with strchr: a NUL hides it.
    nul_in_inline => (with_ping_after(b"a\x00b\r\n"), Then::Compare, ex(b""));
    binary_garbage_1mb => (garbage(1 << 20, 3, false), Then::CompareClosedOnly, None);
    binary_garbage_1mb_multibulk => (garbage_with_star(), Then::CompareClosedOnly, None);
}
