//! Replication test helpers: stock redis-server replicas on their own data
//! dirs, INFO fields, waiting for offsets to meet, and a raw replica that
//! speaks the PSYNC protocol itself to look at the stream byte by byte.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Conn, Server, encode, show};

/// A fresh temporary directory (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "keel-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stock redis-server replicating from `master_port`, in its own dir.
pub struct StockReplica {
    pub server: Server,
    pub dir: TempDir,
}

impl StockReplica {
    pub fn start(master_port: u16, extra: &[&str]) -> StockReplica {
        let dir = TempDir::new("replica");
        let port = master_port.to_string();
        let mut args = vec!["--dir", dir.path(), "--replicaof", "127.0.0.1", &port];
        args.extend_from_slice(extra);
        let server = Server::redis(&args);
        StockReplica { server, dir }
    }

    pub fn conn(&self) -> Conn {
        self.server.conn()
    }

    pub fn log(&self) -> String {
        self.server.log_text()
    }
}

/// The value of `field` in `INFO <section>`.
pub fn info_field(c: &mut Conn, section: &str, field: &str) -> String {
    let text = String::from_utf8_lossy(&c.cmd(&["INFO", section])).into_owned();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

pub fn info_int(c: &mut Conn, section: &str, field: &str) -> i64 {
    info_field(c, section, field).parse().unwrap_or(-1)
}

/// Polls `cond` every 20 ms for up to `secs`; panics with `what` after.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the replica's link is up and its offset equals the master's
/// (the master must be idle meanwhile, apart from PINGs).
pub fn wait_synced(master: &mut Conn, replica: &mut Conn, what: &str) {
    wait_for(30, what, || {
        info_field(replica, "replication", "master_link_status") == "up"
            && info_int(replica, "replication", "master_repl_offset")
                == info_int(master, "replication", "master_repl_offset")
    });
}

pub fn digest(c: &mut Conn) -> String {
    String::from_utf8_lossy(&c.cmd(&["DEBUG", "DIGEST"])).into_owned()
}

/// DBSIZE of DBs 0..n.
pub fn dbsizes(c: &mut Conn, n: usize) -> Vec<i64> {
    (0..n)
        .map(|d| {
            c.cmd(&["SELECT", &d.to_string()]);
            let r = c.cmd(&["DBSIZE"]);
            String::from_utf8_lossy(&r[1..r.len() - 2]).parse().unwrap()
        })
        .collect()
}

/// A hand-made replica: the test's own socket doing the handshake, so the
/// stream can be checked byte by byte.
pub struct RawReplica {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

impl RawReplica {
    pub fn connect(port: u16) -> RawReplica {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).ok();
        RawReplica { s, buf: Vec::new() }
    }

    pub fn send(&mut self, args: &[&str]) {
        self.s.write_all(&encode(args)).unwrap();
    }

    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.s.set_read_timeout(Some(left)).ok();
        let mut chunk = [0u8; 64 * 1024];
        match self.s.read(&mut chunk) {
            Ok(0) => panic!("master closed the link; buffered: {}", show(&self.buf)),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) => panic!("read from master: {e}"),
        }
    }

    /// One line without its CRLF (the master's newline keepalives give "").
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&l).trim_end().to_string();
            }
            assert!(self.fill(deadline), "no line from master");
        }
    }

    /// A reply line, skipping keepalive newlines.
    pub fn reply(&mut self) -> String {
        loop {
            let l = self.line();
            if !l.is_empty() {
                return l;
            }
        }
    }

    pub fn exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.buf.len() < n {
            assert!(self.fill(deadline), "short read: {} of {n}", self.buf.len());
        }
        self.buf.drain(..n).collect()
    }

    /// Handshake + `PSYNC id off`: the reply line (+FULLRESYNC / +CONTINUE).
    pub fn psync(&mut self, id: &str, off: i64, capa_eof: bool) -> String {
        self.send(&["PING"]);
        assert_eq!(self.reply(), "+PONG");
        self.send(&["REPLCONF", "listening-port", "1"]);
        assert_eq!(self.reply(), "+OK");
        if capa_eof {
            self.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]);
        } else {
            self.send(&["REPLCONF", "capa", "psync2"]);
        }
        assert_eq!(self.reply(), "+OK");
        self.send(&["PSYNC", id, &off.to_string()]);
        self.reply()
    }

    /// Reads the RDB payload after +FULLRESYNC ($len or $EOF: framing).
    pub fn read_rdb(&mut self) -> Vec<u8> {
        let pre = self.reply();
        if let Some(mark) = pre.strip_prefix("$EOF:") {
            let mark = mark.as_bytes().to_vec();
            assert_eq!(mark.len(), 40, "EOF mark length");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(i) = self.buf.windows(40).position(|w| w == mark.as_slice()) {
                    let rdb: Vec<u8> = self.buf.drain(..i).collect();
                    self.buf.drain(..40);
                    return rdb;
                }
                assert!(self.fill(deadline), "no EOF mark");
            }
        }
        let len: usize = pre
            .strip_prefix('$')
            .unwrap_or_else(|| panic!("bad RDB preamble {pre:?}"))
            .parse()
            .unwrap();
        self.exact(len)
    }

    pub fn ack(&mut self, off: i64) {
        self.send(&["REPLCONF", "ACK", &off.to_string()]);
    }

    /// The next command of the stream and its size in bytes.
    pub fn command(&mut self, wait: Duration) -> Option<(Vec<String>, usize)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(n)) = super::frame_len(&self.buf) {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                let args = match super::Resp::parse(&frame) {
                    super::Resp::Array(items) => items.iter().map(|i| i.as_str()).collect(),
                    other => panic!("stream item is not a command: {other:?}"),
                };
                return Some((args, n));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }
}
