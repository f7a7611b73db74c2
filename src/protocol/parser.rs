//! Incremental request parser: multibulk (`*N\r\n$len\r\n...`) and inline commands.
//! Arguments are zero-copy slices of the connection's read buffer.

use bytes::{Bytes, BytesMut};

/// Redis refuses header lines (inline commands, `*N`, `$N`) longer than this.
const MAX_INLINE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct ParserLimits {
    pub proto_max_bulk_len: i64,
    /// Unauthenticated clients get tighter limits, as in Redis.
    pub authenticated: bool,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The message after `-ERR ` ("Protocol error: ...").
    Protocol(String),
}

fn perr(msg: &str) -> ParseError {
    ParseError::Protocol(format!("Protocol error: {msg}"))
}

/// Multibulk state kept across reads so a huge command is not rescanned.
#[derive(Default)]
pub struct Parser {
    pending: Option<Pending>,
}

struct Pending {
    remaining: usize,
    /// (start, len) of arguments parsed so far, relative to the buffer start.
    args: Vec<(usize, usize)>,
    pos: usize,
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    memchr_cr(&buf[from..]).map(|i| from + i)
}

fn memchr_cr(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = s[i..].iter().position(|&b| b == b'\r') {
        let at = i + p;
        if at + 1 < s.len() && s[at + 1] == b'\n' {
            return Some(at);
        }
        if at + 1 >= s.len() {
            return None;
        }
        i = at + 1;
    }
    None
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one command from the front of `buf`, consuming its bytes.
    /// `Ok(None)`: more input is needed. An empty `Vec` is never returned
    /// (empty inline lines and `*0` are skipped).
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: ParserLimits,
    ) -> Result<Option<Vec<Bytes>>, ParseError> {
        loop {
            if self.pending.is_none() {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.parse_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(end) = find_crlf(buf, 1) else {
                    if buf.len() > MAX_INLINE {
                        return Err(perr("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                let n = parse_i64(&buf[1..end]);
                let n = match n {
                    Some(n) if n <= i32::MAX as i64 => n,
                    _ => return Err(perr("invalid multibulk length")),
                };
                if n > 10 && !limits.authenticated {
                    return Err(perr("unauthenticated multibulk length"));
                }
                if n <= 0 {
                    let _ = buf.split_to(end + 2);
                    continue;
                }
                self.pending = Some(Pending {
                    remaining: n as usize,
                    args: Vec::with_capacity((n as usize).min(1024)),
                    pos: end + 2,
                });
            }
            let p = self.pending.as_mut().unwrap();
            while p.remaining > 0 {
                if p.pos >= buf.len() {
                    return Ok(None);
                }
                if buf[p.pos] != b'$' {
                    let got = buf[p.pos] as char;
                    return Err(perr(&format!("expected '$', got '{got}'")));
                }
                let Some(end) = find_crlf(buf, p.pos + 1) else {
                    if buf.len() - p.pos > MAX_INLINE {
                        return Err(perr("too big bulk count string"));
                    }
                    return Ok(None);
                };
                let len = match parse_i64(&buf[p.pos + 1..end]) {
                    Some(l) if l >= 0 && l <= limits.proto_max_bulk_len => l as usize,
                    _ => return Err(perr("invalid bulk length")),
                };
                if len > 16384 && !limits.authenticated {
                    return Err(perr("unauthenticated bulk length"));
                }
                let start = end + 2;
                if buf.len() < start + len + 2 {
                    // Reserve once so a big value is read without repeated regrowth.
                    let need = start + len + 2 - buf.len();
                    buf.reserve(need);
                    return Ok(None);
                }
                if &buf[start + len..start + len + 2] != b"\r\n" {
                    // Redis does not check the trailing CRLF strictly; it skips two bytes.
                }
                p.args.push((start, len));
                p.pos = start + len + 2;
                p.remaining -= 1;
            }
            let p = self.pending.take().unwrap();
            let frame = buf.split_to(p.pos).freeze();
            return Ok(Some(
                p.args
                    .into_iter()
                    .map(|(s, l)| frame.slice(s..s + l))
                    .collect(),
            ));
        }
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        // Redis finds the newline with strchr, which stops at a NUL byte: a
        // NUL before the newline leaves the line incomplete forever (until
        // the inline size limit), exactly like stock Redis.
        let Some(nl) = buf
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .filter(|&i| buf[i] == b'\n')
        else {
            if buf.len() > MAX_INLINE {
                return Err(perr("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1);
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        match split_args(&line[..end]) {
            Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
            None => Err(perr("unbalanced quotes in request")),
        }
    }
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits a line like Redis's sdssplitargs: whitespace separated, with
/// "double quotes" (C escapes, \xHH) and 'single quotes'. None on bad quoting.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // A C string ends at NUL; past it Redis sees nothing.
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    inq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    insq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        let _ = (inq, insq);
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut p = Parser::new();
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        while let Some(c) = p.parse(&mut buf, ParserLimits::default())? {
            out.push(c);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\nset k \"a b\\x41\"\r\n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], vec![Bytes::from("GET"), Bytes::from("a")]);
        assert_eq!(r[1], vec![Bytes::from("PING")]);
        assert_eq!(r[2][2], Bytes::from("a bA"));
    }

    #[test]
    fn incremental_feed_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let mut p = Parser::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(c) = p.parse(&mut buf, ParserLimits::default()).unwrap() {
                got = Some(c);
            }
        }
        assert_eq!(got.unwrap()[2], Bytes::from("value"));
        assert!(buf.is_empty());
    }

    #[test]
    fn nul_in_inline_waits_like_redis() {
        let mut p = Parser::new();
        let mut buf = BytesMut::from(&b"a\x00b\r\n"[..]);
        assert_eq!(p.parse(&mut buf, ParserLimits::default()), Ok(None));
        let mut big = BytesMut::from(&b"PING\x00"[..]);
        big.extend_from_slice(&vec![b'x'; 70 * 1024]);
        big.extend_from_slice(b"\r\n");
        assert_eq!(
            p.parse(&mut big, ParserLimits::default()),
            Err(ParseError::Protocol(
                "Protocol error: too big inline request".into()
            ))
        );
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(
            parse_all(b"*abc\r\n"),
            Err(ParseError::Protocol(
                "Protocol error: invalid multibulk length".into()
            ))
        );
        assert_eq!(
            parse_all(b"*1\r\n+foo\r\n"),
            Err(ParseError::Protocol(
                "Protocol error: expected '$', got '+'".into()
            ))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n"),
            Err(ParseError::Protocol(
                "Protocol error: invalid bulk length".into()
            ))
        );
        assert_eq!(
            parse_all(b"*1\r\n$999999999999\r\n"),
            Err(ParseError::Protocol(
                "Protocol error: invalid bulk length".into()
            ))
        );
        assert_eq!(
            parse_all(b"set \"a\n"),
            Err(ParseError::Protocol(
                "Protocol error: unbalanced quotes in request".into()
            ))
        );
    }
}
