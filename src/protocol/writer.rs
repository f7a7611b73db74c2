//! Reply encoding into a byte buffer, RESP2 or RESP3 (HELLO 3).

use std::io::Write;

/// A reply buffer. Handlers write replies straight into it; the bytes go to
/// the socket (or back across shards) unchanged.
#[derive(Default, Debug)]
pub struct Out {
    pub buf: Vec<u8>,
    pub resp3: bool,
}

/// Appends `-<msg>\r\n`. Every error reply goes through here: CR and LF in
/// `msg` (user data echoed in errors) become spaces, as stock does, so a
/// reply can never be split into two.
pub fn err_line(buf: &mut Vec<u8>, msg: &[u8]) {
    buf.reserve(msg.len() + 3);
    buf.push(b'-');
    buf.extend(
        msg.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    buf.extend_from_slice(b"\r\n");
}

impl Out {
    pub fn new(resp3: bool) -> Self {
        Out {
            buf: Vec::with_capacity(64),
            resp3,
        }
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `msg` is the whole error line after `-`, e.g. "ERR syntax error".
    pub fn err(&mut self, msg: &str) {
        err_line(&mut self.buf, msg.as_bytes());
    }

    pub fn int(&mut self, n: i64) {
        self.buf.push(b':');
        self.write_num(n);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn write_num(&mut self, n: i64) {
        self.buf.extend_from_slice(fmt_i64(&mut [0u8; 20], n));
    }

    pub fn bulk(&mut self, s: &[u8]) {
        self.buf.push(b'$');
        self.write_num(s.len() as i64);
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(n.to_string().as_bytes());
    }

    /// Null bulk string: `$-1` (RESP2) or `_` (RESP3).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// Null array: `*-1` (RESP2) or `_` (RESP3).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.buf.push(b'*');
        self.write_num(n as i64);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Map header: `%n` in RESP3, a flat array of 2n in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.buf.push(b'%');
            self.write_num(n as i64);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.array(n * 2);
        }
    }

    /// Set header: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.buf.push(b'~');
            self.write_num(n as i64);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }

    /// Double: `,d` in RESP3, a bulk string in RESP2 (Redis 7.0's `%.17g`).
    pub fn double(&mut self, d: f64) {
        if self.resp3 {
            self.buf.push(b',');
            if d.is_infinite() {
                self.buf
                    .extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
            } else {
                self.buf.extend_from_slice(fmt_double(d).as_bytes());
            }
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(fmt_double(d).as_bytes());
        }
    }

    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// Verbatim string (`=len\r\ntxt:...`) in RESP3, bulk in RESP2 (INFO, CLIENT LIST...).
    pub fn verbatim(&mut self, s: &[u8]) {
        if self.resp3 {
            self.buf.push(b'=');
            self.write_num(s.len() as i64 + 4);
            self.buf.extend_from_slice(b"\r\ntxt:");
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }

    /// Push header (`>n`) for RESP3 pub/sub; `*n` in RESP2.
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.buf.push(b'>');
            self.write_num(n as i64);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn write_fmt_args(&mut self, args: std::fmt::Arguments) {
        let _ = self.buf.write_fmt(args);
    }
}

/// `n` in decimal, written at the end of `buf` (20 bytes hold any i64):
/// no temporary string on the reply and replication paths.
pub fn fmt_i64(buf: &mut [u8; 20], n: i64) -> &[u8] {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Formats like C's `%.17g` (what Redis 7.0 uses for doubles in replies),
/// with "inf"/"-inf"/"nan" spelled as Redis does.
pub fn fmt_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    let mut buf = [0u8; 64];
    // SAFETY: the format takes exactly one double; the buffer is large enough
    // for any %.17g output and snprintf NUL-terminates within its length.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            d,
        )
    };
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_carry_crlf() {
        let mut o = Out::new(false);
        o.err("ERR a\r\n+OK\r\nb\n");
        assert_eq!(o.buf, b"-ERR a  +OK  b \r\n");
        let mut v = Vec::new();
        err_line(&mut v, b"ERR x\ry");
        assert_eq!(v, b"-ERR x y\r\n");
    }

    #[test]
    fn encodes() {
        let mut o = Out::new(false);
        o.int(-12);
        o.bulk(b"ab");
        o.null();
        o.map(1);
        assert_eq!(o.buf, b":-12\r\n$2\r\nab\r\n$-1\r\n*2\r\n");
        let mut o = Out::new(true);
        o.null();
        o.map(1);
        o.double(1.5);
        assert_eq!(o.buf, b"_\r\n%1\r\n,1.5\r\n");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(3.0), "3");
        assert_eq!(fmt_double(i64::MIN as f64), "-9.2233720368547758e+18");
    }
}
