//! Shared harness for the real-process tests: starts keel and a stock
//! redis-server on free loopback ports, talks raw RESP to both, and compares
//! their replies byte for byte.
//!
//! `KEEL_TEST_SELF_CHECK=1` starts a second redis-server in place of keel, to
//! check the test sequences themselves against stock Redis.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod cmdgen;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod repl;
pub mod torture;

pub const RUN_ALL_HINT: &str = "run tests/run-all, which installs redis-server and redis-tools";

/// How long any single reply may take before the test gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A port that was free a moment ago, below the kernel's ephemeral range
/// (32768-60999 by default). A port handed out by binding :0 can be taken
/// again by any outgoing connection as its local port, e.g. while a server
/// restarts on it (seen as "Address already in use" and connection resets
/// in CI); ports from here are never picked that way, and each is handed
/// out once per process.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    if NEXT.load(Ordering::Relaxed) == usize::MAX {
        // Spread processes (test binaries, runs) over the range.
        let start = (std::process::id() * 7919) % SPAN;
        let _ = NEXT.compare_exchange(
            usize::MAX,
            start as usize,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) as u32;
        let port = (LOW + n % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// DEBUG DIGEST of the server behind `c`.
pub fn digest(c: &mut Conn) -> String {
    c.val("DEBUG DIGEST").as_str()
}

/// A field of INFO persistence.
pub fn info_field(c: &mut Conn, field: &str) -> String {
    let info = c.val("INFO persistence").as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .trim()
        .to_string()
}

/// A new empty directory under the system temp dir, unique to this process
/// and call: `keel-<tag>-<pid>-<ms>-<n>`.
pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "keel-{tag}-{}-{}-{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn self_check() -> bool {
    std::env::var("KEEL_TEST_SELF_CHECK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Fails the test (never skips) when a stock Redis tool is missing.
pub fn require_tool(name: &str) {
    match Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{name}` is not installed (not in PATH): {RUN_ALL_HINT}")
        }
        Err(e) => panic!("cannot run `{name}`: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Server processes

static LOG_SEQ: AtomicUsize = AtomicUsize::new(0);

/// keel is killed when its resident memory passes this: a runaway
/// allocation must fail its test, not push the shared machine into the OOM
/// killer.
const KEEL_RSS_LIMIT: u64 = 1 << 30;

pub struct Server {
    pub name: String,
    pub port: u16,
    pub log: PathBuf,
    child: Child,
    watchdog: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Server {
    /// keel with `--port P --shards N --save ""` plus `extra`.
    pub fn keel(shards: usize, extra: &[&str]) -> Server {
        if self_check() {
            return Server::redis(extra);
        }
        let shards = shards.to_string();
        let mut s = Server::start(
            &format!("keel-s{shards}"),
            env!("CARGO_BIN_EXE_keel"),
            |port| {
                let mut a: Vec<String> = ["--port", &port.to_string(), "--shards", &shards]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                a.extend(["--save".to_string(), String::new()]);
                // Tests compare DEBUG DIGEST etc.; DEBUG is refused by default.
                a.extend(["--enable-debug-command".to_string(), "yes".to_string()]);
                a.extend(extra.iter().map(|s| s.to_string()));
                a
            },
        );
        s.watch_memory(KEEL_RSS_LIMIT);
        s
    }

    fn watch_memory(&mut self, limit: u64) {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = self.child.id();
        let log = self.log.clone();
        let flag = stop.clone();
        let t = std::thread::spawn(move || {
            let statm = format!("/proc/{pid}/statm");
            while !flag.load(Ordering::Relaxed) {
                // Field 2 of statm: resident pages.
                let pages = std::fs::read_to_string(&statm)
                    .ok()
                    .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
                let Some(pages) = pages else { return };
                let rss = pages * 4096;
                if rss > limit {
                    // The child is reaped only after this thread is joined,
                    // so the pid still names it.
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                        let _ = writeln!(
                            f,
                            "### test harness: killed keel, resident memory {} MB > limit {} MB",
                            rss >> 20,
                            limit >> 20
                        );
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        self.watchdog = Some((stop, t));
    }

    /// Stock redis-server with persistence off, plus `extra`.
    pub fn redis(extra: &[&str]) -> Server {
        require_tool("redis-server");
        Server::start("redis", "redis-server", |port| {
            let mut a: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                // DEBUG DIGEST is compared (keel gets the same flag).
                "--enable-debug-command".into(),
                "yes".into(),
            ];
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        })
    }

    /// Starts `program` with `args(port)` on a free port, retrying on a
    /// port taken meanwhile; ready once it answers PING (not -LOADING:
    /// a dataset loading at startup is waited for).
    pub fn start(name: &str, program: &str, args: impl Fn(u16) -> Vec<String>) -> Server {
        Server::start_inner(name, program, args, false)
    }

    /// As `start`, but ready at the first reply, -LOADING included: for
    /// tests of the server while it loads.
    pub fn start_while_loading(
        name: &str,
        program: &str,
        args: impl Fn(u16) -> Vec<String>,
    ) -> Server {
        Server::start_inner(name, program, args, true)
    }

    fn start_inner(
        name: &str,
        program: &str,
        args: impl Fn(u16) -> Vec<String>,
        loading_ok: bool,
    ) -> Server {
        // A freed port can be taken by a parallel test before the server binds
        // it: retry on a new port when the server dies complaining about it.
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "keel-test-{}-{}-{}-{}.log",
                name,
                std::process::id(),
                LOG_SEQ.fetch_add(1, Ordering::Relaxed),
                port
            ));
            let out = File::create(&log).expect("create server log file");
            let err = out.try_clone().unwrap();
            let child = match Command::new(program)
                .args(args(port))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
            {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    panic!("`{program}` is not installed (not in PATH): {RUN_ALL_HINT}")
                }
                Err(e) => panic!("cannot start {program}: {e}"),
            };
            let mut s = Server {
                name: format!("{name}:{port}"),
                port,
                log,
                child,
                watchdog: None,
            };
            match s.wait_ready(loading_ok) {
                Ok(()) => return s,
                Err(exited) => {
                    last_log = s.log_text();
                    let l = last_log.to_ascii_lowercase();
                    if exited && (l.contains("in use") || l.contains("could not create server tcp"))
                    {
                        continue;
                    }
                    panic!(
                        "{} did not answer PING within {:?} ({}). Its log ({}):\n{}",
                        s.name,
                        START_TIMEOUT,
                        if exited { "it exited" } else { "still running" },
                        s.log.display(),
                        last_log
                    );
                }
            }
        }
        panic!("{name}: could not bind a free port after 5 attempts. Last log:\n{last_log}");
    }

    /// Ok once the server answers PING with any complete reply (NOAUTH
    /// counts; -LOADING only if `loading_ok`); Err(true) if the process
    /// exited, Err(false) on timeout.
    fn wait_ready(&mut self, loading_ok: bool) -> Result<(), bool> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(true);
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut c = Conn::from_stream(s, self.name.clone());
                c.send(b"*1\r\n$4\r\nPING\r\n");
                match c.try_read_reply(Duration::from_secs(2)) {
                    Ok(r) if loading_ok || !r.starts_with(b"-LOADING") => return Ok(()),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(false)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn conn(&self) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to {}: {e}\nlog:\n{}", self.name, self.log_text()));
        Conn::from_stream(s, self.name.clone())
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        // try_wait may reap the child: the watchdog must not outlive its pid.
        let watched = self.stop_watchdog();
        let alive = matches!(self.child.try_wait(), Ok(None));
        if watched && alive {
            self.watch_memory(KEEL_RSS_LIMIT);
        }
        alive
    }

    /// Stops the memory watchdog; true if there was one.
    fn stop_watchdog(&mut self) -> bool {
        let Some((stop, t)) = self.watchdog.take() else {
            return false;
        };
        stop.store(true, Ordering::Relaxed);
        let _ = t.join();
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_watchdog();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} ({}) -----\n{}\n----- end of log -----",
                self.name,
                self.log.display(),
                self.log_text()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

// ---------------------------------------------------------------------------
// RESP framing

/// Length of the first complete RESP2/RESP3 reply in `buf`; Ok(None) if it is
/// not complete yet.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    frame_at(buf, 0)
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

fn frame_at(buf: &[u8], pos: usize) -> Result<Option<usize>, String> {
    let Some(&t) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let head = &buf[pos + 1..eol];
    let after = eol + 2;
    let num = || -> Result<i64, String> {
        std::str::from_utf8(head)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("bad length {:?} in reply", show(head)))
    };
    match t {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'!' | b'=' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some(after));
            }
            let end = after + n as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err("bulk reply not terminated by CRLF".into());
            }
            Ok(Some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some(after));
            }
            let items = if t == b'%' || t == b'|' { 2 * n } else { n };
            let mut p = after;
            for _ in 0..items {
                match frame_at(buf, p)? {
                    Some(e) => p = e,
                    None => return Ok(None),
                }
            }
            // An attribute is followed by the reply it annotates.
            if t == b'|' {
                return frame_at(buf, p);
            }
            Ok(Some(p))
        }
        _ => Err(format!("unknown RESP type byte {:?}", t as char)),
    }
}

/// A parsed reply, for the few checks that cannot compare raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resp {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    /// Any other RESP3 scalar, kept as its header line.
    Other(Vec<u8>),
}

impl Resp {
    pub fn parse(buf: &[u8]) -> Resp {
        let (v, end) = parse_at(buf, 0);
        assert_eq!(end, buf.len(), "trailing bytes after reply {}", show(buf));
        v
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Resp::Simple(b) | Resp::Bulk(b) | Resp::Error(b) | Resp::Other(b) => b,
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    pub fn as_str(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    pub fn as_int(&self) -> i64 {
        match self {
            Resp::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
}

fn parse_at(buf: &[u8], pos: usize) -> (Resp, usize) {
    let t = buf[pos];
    let eol = line_end(buf, pos + 1).expect("incomplete reply");
    let head = &buf[pos + 1..eol];
    let after = eol + 2;
    let num = || -> i64 { std::str::from_utf8(head).unwrap().parse().unwrap() };
    match t {
        b'+' => (Resp::Simple(head.to_vec()), after),
        b'-' => (Resp::Error(head.to_vec()), after),
        b':' => (Resp::Int(num()), after),
        b'_' => (Resp::Null, after),
        b'$' | b'!' | b'=' => {
            let n = num();
            if n < 0 {
                return (Resp::Null, after);
            }
            let body = buf[after..after + n as usize].to_vec();
            let v = if t == b'!' {
                Resp::Error(body)
            } else {
                Resp::Bulk(body)
            };
            (v, after + n as usize + 2)
        }
        b'*' | b'~' | b'>' => {
            let n = num();
            if n < 0 {
                return (Resp::Null, after);
            }
            let mut p = after;
            let mut v = Vec::new();
            for _ in 0..n {
                let (x, e) = parse_at(buf, p);
                v.push(x);
                p = e;
            }
            (Resp::Array(v), p)
        }
        b'%' | b'|' => {
            let n = num();
            let mut p = after;
            let mut v = Vec::new();
            for _ in 0..n {
                let (k, e) = parse_at(buf, p);
                let (x, e) = parse_at(buf, e);
                v.push((k, x));
                p = e;
            }
            if t == b'|' {
                return parse_at(buf, p);
            }
            (Resp::Map(v), p)
        }
        _ => (Resp::Other(buf[pos..eol].to_vec()), after),
    }
}

/// Printable form of raw bytes: `\r\n` and non-printables escaped, long
/// replies cut.
pub fn show(b: &[u8]) -> String {
    const MAX: usize = 400;
    let mut s = String::new();
    for &c in b.iter().take(MAX) {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > MAX {
        s.push_str(&format!("...({} bytes in all)", b.len()));
    }
    format!("\"{s}\"")
}

/// Splits a command line like redis-cli does: whitespace-separated words,
/// "double quotes" with \n \r \t \" \\ \xHH escapes, 'single quotes'.
pub fn words(line: &str) -> Vec<Vec<u8>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut w = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    match b[i] {
                        b'n' => w.push(b'\n'),
                        b'r' => w.push(b'\r'),
                        b't' => w.push(b'\t'),
                        b'x' => {
                            let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                            w.push(u8::from_str_radix(h, 16).unwrap());
                            i += 2;
                        }
                        c => w.push(c),
                    }
                } else {
                    w.push(b[i]);
                }
                i += 1;
            }
            i += 1;
        } else if b[i] == b'\'' {
            i += 1;
            while b[i] != b'\'' {
                w.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        out.push(w);
    }
    out
}

pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

// ---------------------------------------------------------------------------
// Raw client

#[derive(Debug)]
pub enum ReadErr {
    Eof,
    Timeout,
    Io(std::io::Error),
}

pub struct Conn {
    pub who: String,
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// A connection to any server on a loopback port.
    pub fn connect(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
        Conn::from_stream(s, format!("port {port}"))
    }

    fn from_stream(s: TcpStream, who: String) -> Conn {
        s.set_nodelay(true).ok();
        s.set_write_timeout(Some(REPLY_TIMEOUT)).ok();
        Conn {
            who,
            s,
            buf: Vec::new(),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.s
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: write failed: {e}", self.who));
    }

    /// Writes, ignoring errors (the server may already have closed).
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// One complete reply, or why there is none within `timeout`.
    pub fn try_read_reply(&mut self, timeout: Duration) -> Result<Vec<u8>, ReadErr> {
        let deadline = Instant::now() + timeout;
        loop {
            match frame_len(&self.buf) {
                Ok(Some(n)) => return Ok(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => panic!("{}: malformed reply ({e}): {}", self.who, show(&self.buf)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadErr::Timeout);
            }
            self.s.set_read_timeout(Some(left)).ok();
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(ReadErr::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ReadErr::Timeout);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadErr::Io(e)),
            }
        }
    }

    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply(REPLY_TIMEOUT) {
            Ok(r) => r,
            Err(e) => panic!(
                "{}: no complete reply ({e:?}); buffered so far: {}",
                self.who,
                show(&self.buf)
            ),
        }
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply()
    }

    /// `line` split by [`words`], sent as a multibulk command.
    pub fn line(&mut self, line: &str) -> Vec<u8> {
        self.cmd(&words(line))
    }

    /// Parsed reply of `line`.
    pub fn val(&mut self, line: &str) -> Resp {
        Resp::parse(&self.line(line))
    }

    /// Everything the server sends until it closes the connection or stays
    /// silent for `quiet`; the flag says whether it closed (EOF or reset).
    pub fn read_until_close(&mut self, quiet: Duration) -> (Vec<u8>, bool) {
        let mut closed = false;
        loop {
            self.s.set_read_timeout(Some(quiet)).ok();
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        (std::mem::take(&mut self.buf), closed)
    }
}

// ---------------------------------------------------------------------------
// keel vs redis

/// How far keel's and stock's PTTL of the same key may differ: each
/// answers within a millisecond; the slack is for a loaded machine, small
/// enough to catch a second lost or gained (or a TTL kept in seconds).
pub const PTTL_TOLERANCE_MS: i64 = 250;

/// keel and stock redis-server side by side, one connection to each. Every
/// mismatch is recorded; the test fails at the end listing all of them.
pub struct Pair {
    pub shards: usize,
    pub keel: Server,
    pub redis: Server,
    pub k: Conn,
    pub r: Conn,
    failures: Vec<String>,
}

impl Pair {
    pub fn new(shards: usize) -> Pair {
        Pair::with_args(shards, &[], &[])
    }

    pub fn with_args(shards: usize, keel_extra: &[&str], redis_extra: &[&str]) -> Pair {
        let redis = Server::redis(redis_extra);
        let keel = Server::keel(shards, keel_extra);
        let k = keel.conn();
        let r = redis.conn();
        Pair {
            shards,
            keel,
            redis,
            k,
            r,
            failures: Vec::new(),
        }
    }

    /// A new connection to each server.
    pub fn conns(&self) -> (Conn, Conn) {
        (self.keel.conn(), self.redis.conn())
    }

    pub fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    pub fn expect_eq(&mut self, what: &str, keel: &[u8], redis: &[u8]) {
        if keel != redis {
            self.fail(format!(
                "{what}\n    keel:  {}\n    redis: {}",
                show(keel),
                show(redis)
            ));
        }
    }

    /// Sends `args` to both, compares the raw replies, returns redis's.
    pub fn check_args<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        let req = encode(args);
        self.check_raw(&req, &describe(args))
    }

    /// Sends raw bytes to both and compares one reply.
    pub fn check_raw(&mut self, req: &[u8], what: &str) -> Vec<u8> {
        self.k.send(req);
        self.r.send(req);
        let rr = match self.r.try_read_reply(REPLY_TIMEOUT) {
            Ok(b) => b,
            Err(e) => panic!("test bug: stock redis gave no reply ({e:?}) to {what}"),
        };
        let kr = match self.k.try_read_reply(REPLY_TIMEOUT) {
            Ok(b) => b,
            Err(e) => {
                // A dead or silent keel would make every later command fail
                // the same way: stop here with what we have.
                self.fail(format!(
                    "{what}\n    keel:  no reply ({e:?})\n    redis: {}",
                    show(&rr)
                ));
                self.finish();
                unreachable!();
            }
        };
        self.expect_eq(what, &kr, &rr);
        rr
    }

    pub fn check(&mut self, line: &str) -> Vec<u8> {
        self.check_args(&words(line))
    }

    pub fn checks(&mut self, lines: &[&str]) {
        for l in lines {
            self.check(l);
        }
    }

    /// Runs `line` on both without comparing; (keel, redis).
    pub fn both(&mut self, line: &str) -> (Vec<u8>, Vec<u8>) {
        (self.k.line(line), self.r.line(line))
    }

    /// Integer replies that may differ by timing (TTL/PTTL): equal when
    /// negative, else within `tol` (for PTTL: [`PTTL_TOLERANCE_MS`]).
    pub fn check_int_close(&mut self, line: &str, tol: i64) {
        let (k, r) = self.both(line);
        let (kv, rv) = (Resp::parse(&k), Resp::parse(&r));
        let ok = match (&kv, &rv) {
            (Resp::Int(a), Resp::Int(b)) if *a < 0 || *b < 0 => a == b,
            (Resp::Int(a), Resp::Int(b)) => (a - b).abs() <= tol,
            _ => k == r,
        };
        if !ok {
            self.fail(format!(
                "{line}   (integers within {tol})\n    keel:  {}\n    redis: {}",
                show(&k),
                show(&r)
            ));
        }
    }

    /// Array replies compared as sorted multisets (KEYS order is not defined).
    pub fn check_sorted(&mut self, line: &str) {
        let (k, r) = self.both(line);
        let sorted = |b: &[u8]| match Resp::parse(b) {
            Resp::Array(mut v) => {
                v.sort();
                Ok(v)
            }
            _ => Err(()),
        };
        match (sorted(&k), sorted(&r)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) if k == r => {}
            _ => self.fail(format!(
                "{line}   (compared as sorted sets)\n    keel:  {}\n    redis: {}",
                show(&k),
                show(&r)
            )),
        }
    }

    /// Replies compared by shape only: bulk strings and doubles blanked
    /// (random members), types and lengths kept.
    pub fn check_shape(&mut self, line: &str) {
        let (k, r) = self.both(line);
        // The first byte tells RESP3 sets and pushes from arrays.
        if k.first() != r.first() || shape(&Resp::parse(&k)) != shape(&Resp::parse(&r)) {
            self.fail(format!(
                "{line}   (compared by shape)\n    keel:  {}\n    redis: {}",
                show(&k),
                show(&r)
            ));
        }
    }

    /// Compares replies with arrays and maps sorted at every level (hash
    /// table iteration order is not defined).
    pub fn check_unordered(&mut self, line: &str) {
        let (k, r) = self.both(line);
        if k.first() != r.first() || unordered(&Resp::parse(&k)) != unordered(&Resp::parse(&r)) {
            self.fail(format!(
                "{line}   (compared unordered)\n    keel:  {}\n    redis: {}",
                show(&k),
                show(&r)
            ));
        }
    }

    /// Switches both connections to RESP3 (`true`) or RESP2; HELLO's reply
    /// carries ids and versions, so it is not compared.
    pub fn proto(&mut self, resp3: bool) {
        let line = if resp3 { "HELLO 3" } else { "HELLO 2" };
        let (k, r) = self.both(line);
        if k.first() != r.first() {
            self.fail(format!(
                "{line}\n    keel:  {}\n    redis: {}",
                show(&k),
                show(&r)
            ));
        }
    }

    /// Runs a script, one command per line: plain lines compared byte for
    /// byte, `%line` unordered, `~line` by shape, `!resp3` / `!resp2`
    /// switch protocol; blank lines and `#` comments skipped.
    pub fn script(&mut self, text: &str) {
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match l {
                "!resp3" => self.proto(true),
                "!resp2" => self.proto(false),
                _ => {
                    if let Some(rest) = l.strip_prefix('%') {
                        self.check_unordered(rest);
                    } else if let Some(rest) = l.strip_prefix('~') {
                        self.check_shape(rest);
                    } else {
                        self.check(l);
                    }
                }
            }
        }
    }

    /// Full SCAN iteration with `opts` (e.g. "MATCH k* COUNT 7") on both;
    /// compares the sorted, de-duplicated key sets.
    pub fn check_scan(&mut self, opts: &str) {
        let k = scan_all(&mut self.k, opts);
        let r = scan_all(&mut self.r, opts);
        match (k, r) {
            (Ok(k), Ok(r)) if k == r => {}
            (k, r) => self.fail(format!(
                "SCAN {opts} (full iteration, key sets)\n    keel:  {}\n    redis: {}",
                fmt_keys(&k),
                fmt_keys(&r)
            )),
        }
    }

    /// Panics listing every mismatch seen so far.
    pub fn finish(&mut self) {
        if self.failures.is_empty() {
            return;
        }
        let n = self.failures.len();
        let mut msg = format!(
            "{n} mismatch(es) between keel --shards {} and redis-server:\n",
            self.shards
        );
        for f in self.failures.drain(..).take(60) {
            msg.push_str("  * ");
            msg.push_str(&f);
            msg.push('\n');
        }
        if n > 60 {
            msg.push_str(&format!("  ... and {} more\n", n - 60));
        }
        panic!("{msg}");
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.finish();
        }
    }
}

/// `r` with bulk strings and doubles blanked, for random replies.
pub fn shape(r: &Resp) -> Resp {
    match r {
        Resp::Bulk(_) => Resp::Bulk(Vec::new()),
        Resp::Other(h) if h.first() == Some(&b',') => Resp::Other(b",".to_vec()),
        Resp::Array(v) => Resp::Array(v.iter().map(shape).collect()),
        Resp::Map(v) => Resp::Map(v.iter().map(|(a, b)| (shape(a), shape(b))).collect()),
        other => other.clone(),
    }
}

/// `r` with arrays' items and maps' pairs sorted, at every level.
pub fn unordered(r: &Resp) -> Resp {
    match r {
        Resp::Array(v) => {
            let mut v: Vec<Resp> = v.iter().map(unordered).collect();
            v.sort();
            Resp::Array(v)
        }
        Resp::Map(v) => {
            let mut v: Vec<(Resp, Resp)> = v
                .iter()
                .map(|(a, b)| (unordered(a), unordered(b)))
                .collect();
            v.sort();
            Resp::Map(v)
        }
        other => other.clone(),
    }
}

fn fmt_keys(k: &Result<Vec<Vec<u8>>, Vec<u8>>) -> String {
    match k {
        Ok(keys) => {
            let shown: Vec<String> = keys.iter().take(50).map(|k| show(k)).collect();
            format!("{} keys: [{}]", keys.len(), shown.join(", "))
        }
        Err(reply) => format!("unexpected reply {}", show(reply)),
    }
}

pub fn scan_all(c: &mut Conn, opts: &str) -> Result<Vec<Vec<u8>>, Vec<u8>> {
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    for _ in 0..100_000 {
        let mut args = vec![b"SCAN".to_vec(), cursor.clone()];
        args.extend(words(opts));
        let raw = c.cmd(&args);
        let v = Resp::parse(&raw);
        let Resp::Array(parts) = &v else {
            return Err(raw);
        };
        let [Resp::Bulk(next), Resp::Array(batch)] = parts.as_slice() else {
            return Err(raw);
        };
        for k in batch {
            keys.push(k.as_bytes().to_vec());
        }
        cursor = next.clone();
        if cursor == b"0" {
            keys.sort();
            keys.dedup();
            return Ok(keys);
        }
    }
    Err(b"SCAN did not finish within 100000 calls".to_vec())
}

pub fn describe<A: AsRef<[u8]>>(args: &[A]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| {
            let a = a.as_ref();
            let printable = !a.is_empty()
                && a.len() <= 60
                && a.iter()
                    .all(|c| c.is_ascii_graphic() && *c != b'"' && *c != b'\'');
            if printable {
                String::from_utf8_lossy(a).into_owned()
            } else {
                show(a)
            }
        })
        .collect();
    parts.join(" ")
}

/// Runs `scenario` against keel `--shards n` and redis.
pub fn run_pair(shards: usize, scenario: fn(&mut Pair)) {
    let mut p = Pair::new(shards);
    scenario(&mut p);
    p.finish();
}

/// For each scenario `fn name(p: &mut Pair)`, a module `name` with the tests
/// `shards_1` and `shards_4`.
#[macro_export]
macro_rules! pair_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn shards_1() {
                    $crate::common::run_pair(1, super::$name);
                }
                #[test]
                fn shards_4() {
                    $crate::common::run_pair(4, super::$name);
                }
            }
        )*
    };
}

/// The shard counts a behaviour that can differ by shard count is tested
/// at: one (no hops at all) and four (keys spread, holds across shards).
pub const SHARD_MATRIX: [usize; 2] = [1, 4];

/// For each test body `fn name(shards: usize)`, a module `name` with the
/// tests `shards_1` and `shards_4` (the [`SHARD_MATRIX`]), for tests that
/// start their own servers rather than a [`Pair`].
#[macro_export]
macro_rules! shard_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn shards_1() {
                    super::$name($crate::common::SHARD_MATRIX[0]);
                }
                #[test]
                fn shards_4() {
                    super::$name($crate::common::SHARD_MATRIX[1]);
                }
            }
        )*
    };
}

/// Panics unless `c` stays silent for `window` (a held command): a reply,
/// or a closed connection, within it fails with `what`.
pub fn assert_held(c: &mut Conn, window: Duration, what: &str) {
    match c.try_read_reply(window) {
        Err(ReadErr::Timeout) => {}
        Ok(r) => panic!("{what}: answered {} within {window:?}", show(&r)),
        Err(e) => panic!("{what}: connection lost ({e:?}) instead of held"),
    }
}

/// A member of a random-member source mapped to its value (hash), score
/// (sorted set) or nothing (set).
pub type Members = std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Runs `line` on both; each reply must be a valid draw from `src`.
pub fn check_random(p: &mut Pair, line: &str, src: &Members, n: Option<i64>, with_values: bool) {
    let (k, r) = p.both(line);
    if k.first() != r.first() {
        p.fail(format!(
            "{line}: reply types differ\n    keel:  {}\n    redis: {}",
            show(&k),
            show(&r)
        ));
    }
    for (who, raw) in [("keel", &k), ("redis", &r)] {
        if let Err(e) = check_random_reply(&Resp::parse(raw), src, n, with_values) {
            p.fail(format!("{line} ({who}): {e}"));
        }
    }
}

/// Checks a random-member reply (HRANDFIELD, SRANDMEMBER, SPOP,
/// ZRANDMEMBER) against the `source` it was drawn from: every member is in
/// it, with its value (scores compared as numbers), the count is the one
/// asked (`count` None: the single-member form; negative: repeats allowed),
/// and a positive count returns distinct members. Returns the members.
pub fn check_random_reply(
    reply: &Resp,
    source: &Members,
    count: Option<i64>,
    with_values: bool,
) -> Result<Vec<Vec<u8>>, String> {
    fn scalars(r: &Resp, out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        match r {
            Resp::Array(v) => v.iter().try_for_each(|x| scalars(x, out)),
            Resp::Bulk(b) => {
                out.push(b.clone());
                Ok(())
            }
            // A RESP3 double (a score).
            Resp::Other(h) if h.first() == Some(&b',') => {
                out.push(h[1..].to_vec());
                Ok(())
            }
            other => Err(format!("unexpected element {other:?}")),
        }
    }
    let mut flat = Vec::new();
    match (count, reply) {
        (None, Resp::Bulk(b)) => flat.push(b.clone()),
        (None, other) => return Err(format!("expected one member, got {other:?}")),
        (Some(_), Resp::Array(_)) => scalars(reply, &mut flat)?,
        (Some(_), other) => return Err(format!("expected an array, got {other:?}")),
    }
    let width = if with_values { 2 } else { 1 };
    if flat.len() % width != 0 {
        return Err(format!("{} elements, not pairs", flat.len()));
    }
    let mut members = Vec::new();
    for chunk in flat.chunks(width) {
        let m = &chunk[0];
        let Some(want) = source.get(m) else {
            return Err(format!("{} is not in the source", show(m)));
        };
        if with_values {
            let got = &chunk[1];
            let want = want.as_deref().unwrap_or_default();
            let num = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<f64>().ok();
            let same = got == want || matches!((num(got), num(want)), (Some(a), Some(b)) if a == b);
            if !same {
                return Err(format!(
                    "{}: value {} but the source has {}",
                    show(m),
                    show(got),
                    show(want)
                ));
            }
        }
        members.push(m.clone());
    }
    let n = members.len();
    let distinct = members
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let want = match count {
        None => 1,
        Some(c) if c >= 0 => (c as usize).min(source.len()),
        Some(c) => c.unsigned_abs() as usize,
    };
    if n != want {
        return Err(format!("{n} members, expected {want}"));
    }
    if count.is_some_and(|c| c >= 0) && distinct != n {
        return Err(format!("{n} members but only {distinct} distinct"));
    }
    Ok(members)
}

// ---------------------------------------------------------------------------
// Multi-client scenarios: each server runs the same steps, logs compared.

/// (step label, raw reply) in the order they happened.
pub type Log = Vec<(String, Vec<u8>)>;

pub fn reply_within(c: &mut Conn, t: Duration) -> Vec<u8> {
    match c.try_read_reply(t) {
        Ok(r) => r,
        Err(ReadErr::Timeout) => b"<no reply>".to_vec(),
        Err(e) => format!("<{e:?}>").into_bytes(),
    }
}

pub fn compare(p: &mut Pair, what: &str, steps: fn(&Server, &mut Log)) {
    let mut k = Log::new();
    let mut r = Log::new();
    steps(&p.redis, &mut r);
    steps(&p.keel, &mut k);
    for (i, ((kl, kv), (_, rv))) in k.iter().zip(&r).enumerate() {
        p.expect_eq(&format!("{what} step {i}: {kl}"), kv, rv);
    }
    if k.len() != r.len() {
        p.fail(format!(
            "{what}: {} steps on keel, {} on redis",
            k.len(),
            r.len()
        ));
    }
}

pub fn step(log: &mut Log, c: &mut Conn, line: &str) {
    let r = c.line(line);
    log.push((line.to_string(), r));
}

// ---------------------------------------------------------------------------
// keel on a data dir

/// A keel process on its own data dir that a test starts, signals and
/// restarts itself (persistence tests).
pub struct DirKeel {
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
}

impl DirKeel {
    pub fn start(dir: &std::path::Path, shards: usize, extra: &[&str]) -> DirKeel {
        DirKeel::start_on(free_port(), dir, shards, extra)
    }

    /// Like `start`, on a given port (a restart where replicas expect it).
    pub fn start_on(port: u16, dir: &std::path::Path, shards: usize, extra: &[&str]) -> DirKeel {
        DirKeel::spawn(None, port, dir, shards, extra)
    }

    /// Like `start_on`, reading the config file `conf` first (CONFIG
    /// REWRITE's target).
    pub fn start_conf(
        conf: &std::path::Path,
        port: u16,
        dir: &std::path::Path,
        shards: usize,
        extra: &[&str],
    ) -> DirKeel {
        DirKeel::spawn(Some(conf), port, dir, shards, extra)
    }

    fn spawn(
        conf: Option<&std::path::Path>,
        port: u16,
        dir: &std::path::Path,
        shards: usize,
        extra: &[&str],
    ) -> DirKeel {
        let log = dir.join(format!("keel-{port}.log"));
        let mut args: Vec<String> = conf.iter().map(|c| c.display().to_string()).collect();
        args.extend([
            "--port".into(),
            port.to_string(),
            "--shards".into(),
            shards.to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--enable-debug-command".into(),
            "yes".into(),
            // Persistence tests switch dbfilename at run time.
            "--enable-protected-configs".into(),
            "yes".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(&args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut k = DirKeel { port, child, log };
        let t = Instant::now();
        // A PING answered, not just a connect: a killed predecessor's
        // listener can linger a moment (its io_uring being torn down).
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut c = Conn::from_stream(s, format!("keel:{port}"));
                c.send_lossy(b"*1\r\n$4\r\nPING\r\n");
                // Past a startup load: its data is what tests read.
                match c.try_read_reply(Duration::from_secs(2)) {
                    Ok(r) if !r.starts_with(b"-LOADING") => break,
                    _ => {}
                }
            }
            if t.elapsed() > Duration::from_secs(15) || matches!(k.child.try_wait(), Ok(Some(_))) {
                panic!("keel did not start:\n{}", k.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        k
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// SHUTDOWN through `c` (its own connection, closed after), then waits
    /// for the process to exit.
    pub fn shutdown(&mut self, mut c: Conn) {
        c.send_lossy(b"*1\r\n$8\r\nSHUTDOWN\r\n");
        self.wait_exit();
    }

    /// Waits for the process to exit; returns its exit code (None: killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "keel did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DirKeel {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            eprintln!("----- keel had exited: {st:?}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- keel log -----\n{}", self.log_text());
        }
    }
}
