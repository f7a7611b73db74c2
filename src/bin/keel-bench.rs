//! keel-bench: a small memtier-style load generator for keel and Redis.
//!
//! Each worker thread owns a few blocking connections. Per round it writes a
//! pipeline of up to `--pipeline` commands to every connection, then reads the
//! replies back, recording each request's latency (batch send -> reply parsed)
//! in an HdrHistogram. Only SET and GET are generated (ratio `--ratio S:G`).

use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: keel-bench [options]
  -h, --host HOST        server host (127.0.0.1)
  -p, --port PORT        server port (6379)
  -c, --connections N    total connections (50)
  -t, --threads N        worker threads (2)
  -P, --pipeline N       requests in flight per connection (1)
  -r, --ratio S:G        SET:GET ratio (1:10)
  -k, --keys N           key-space size (100000)
      --dist D           key distribution: uniform | zipf (uniform)
      --zipf-s S         zipf exponent (0.99)
  -d, --data-size N      value size in bytes (32)
  -D, --duration SECS    run time in seconds (10; ignored with --requests)
  -n, --requests N       total requests instead of a duration
      --prefill          SET every key once before the run (GETs then hit)
      --label NAME       label for the JSON line
      --json FILE        append a JSON result line to FILE ('-' = stdout)
      --hist FILE        write the latency percentile spectrum (percentile, us)
      --seed N           RNG seed (1)
  -q, --quiet            no progress line";

#[derive(Clone)]
struct Opts {
    host: String,
    port: u16,
    conns: usize,
    threads: usize,
    pipeline: usize,
    sets: u32,
    gets: u32,
    keys: u64,
    zipf: Option<f64>,
    data_size: usize,
    duration: f64,
    requests: Option<u64>,
    prefill: bool,
    label: String,
    json: Option<String>,
    hist: Option<String>,
    seed: u64,
    quiet: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 6379,
        conns: 50,
        threads: 2,
        pipeline: 1,
        sets: 1,
        gets: 10,
        keys: 100_000,
        zipf: None,
        data_size: 32,
        duration: 10.0,
        requests: None,
        prefill: false,
        label: String::new(),
        json: None,
        hist: None,
        seed: 1,
        quiet: false,
    };
    let mut dist = "uniform".to_string();
    let mut zipf_s = 0.99;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    fn num<T: std::str::FromStr>(name: &str, v: Option<&String>) -> Result<T, String> {
        v.ok_or(format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("bad value for {name}"))
    }
    while i < args.len() {
        let a = args[i].as_str();
        let v = args.get(i + 1);
        let mut took = true;
        match a {
            "-h" | "--host" => o.host = v.ok_or("--host needs a value")?.clone(),
            "-p" | "--port" => o.port = num(a, v)?,
            "-c" | "--connections" => o.conns = num(a, v)?,
            "-t" | "--threads" => o.threads = num(a, v)?,
            "-P" | "--pipeline" => o.pipeline = num(a, v)?,
            "-r" | "--ratio" => {
                let s = v.ok_or("--ratio needs a value")?;
                let (a, b) = s.split_once(':').ok_or("--ratio wants S:G")?;
                o.sets = a.parse().map_err(|_| "bad --ratio")?;
                o.gets = b.parse().map_err(|_| "bad --ratio")?;
            }
            "-k" | "--keys" => o.keys = num(a, v)?,
            "--dist" => dist = v.ok_or("--dist needs a value")?.clone(),
            "--zipf-s" => zipf_s = num(a, v)?,
            "-d" | "--data-size" => o.data_size = num(a, v)?,
            "-D" | "--duration" => o.duration = num(a, v)?,
            "-n" | "--requests" => o.requests = Some(num(a, v)?),
            "--label" => o.label = v.ok_or("--label needs a value")?.clone(),
            "--json" => o.json = Some(v.ok_or("--json needs a value")?.clone()),
            "--hist" => o.hist = Some(v.ok_or("--hist needs a value")?.clone()),
            "--seed" => o.seed = num(a, v)?,
            "--prefill" => {
                o.prefill = true;
                took = false;
            }
            "-q" | "--quiet" => {
                o.quiet = true;
                took = false;
            }
            "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
        i += if took { 2 } else { 1 };
    }
    match dist.as_str() {
        "uniform" => {}
        "zipf" => o.zipf = Some(zipf_s),
        _ => return Err("--dist is uniform or zipf".into()),
    }
    if o.conns == 0 || o.threads == 0 || o.pipeline == 0 || o.keys == 0 {
        return Err("connections, threads, pipeline and keys must be > 0".into());
    }
    if o.sets + o.gets == 0 {
        return Err("--ratio must not be 0:0".into());
    }
    o.threads = o.threads.min(o.conns);
    Ok(o)
}

/// Key picker. The zipf mode samples a continuous power law by inverse CDF and
/// truncates it: "zipf-ish", close enough for hot-key skew without tables.
struct Keys {
    n: u64,
    zipf: Option<f64>,
}

impl Keys {
    fn pick(&self, rng: &mut fastrand::Rng) -> u64 {
        match self.zipf {
            None => rng.u64(0..self.n),
            Some(s) => {
                let u = rng.f64();
                let n = self.n as f64;
                let x = if (s - 1.0).abs() < 1e-9 {
                    n.powf(u)
                } else {
                    let e = 1.0 - s;
                    ((n.powf(e) - 1.0) * u + 1.0).powf(1.0 / e)
                };
                (x as u64).saturating_sub(1).min(self.n - 1)
            }
        }
    }
}

fn push_key(buf: &mut Vec<u8>, k: u64) {
    // Fixed width so every command has the same size, like redis-benchmark.
    let _ = write!(buf, "$16\r\nkey:{k:012}\r\n");
}

fn push_set(buf: &mut Vec<u8>, k: u64, value: &[u8]) {
    buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    push_key(buf, k);
    let _ = write!(buf, "${}\r\n", value.len());
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

fn push_get(buf: &mut Vec<u8>, k: u64) {
    buf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
    push_key(buf, k);
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

fn parse_int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Skips one RESP2/RESP3 reply starting at `pos`. Returns the end offset and
/// whether it was an error reply, or None if the buffer holds only part of it.
fn skip_reply(buf: &[u8], pos: usize) -> Option<(usize, bool)> {
    if pos >= buf.len() {
        return None;
    }
    let nl = find_crlf(buf, pos + 1)?;
    let line = &buf[pos + 1..nl];
    let after = nl + 2;
    match buf[pos] {
        b'+' | b':' | b',' | b'#' | b'_' | b'(' => Some((after, false)),
        b'-' => Some((after, true)),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n < 0 {
                return Some((after, false));
            }
            let end = after + n as usize + 2;
            (end <= buf.len()).then_some((end, buf[pos] == b'!'))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let mut n = parse_int(line)?;
            if buf[pos] == b'%' {
                n *= 2;
            }
            let mut p = after;
            for _ in 0..n.max(0) {
                p = skip_reply(buf, p)?.0;
            }
            Some((p, false))
        }
        c => panic!("protocol error: unexpected reply byte {c:#x}"),
    }
}

struct Conn {
    sock: TcpStream,
    rbuf: Vec<u8>,
    rpos: usize,
}

impl Conn {
    fn open(o: &Opts) -> std::io::Result<Conn> {
        let sock = TcpStream::connect((o.host.as_str(), o.port))?;
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
            rbuf: Vec::with_capacity(64 * 1024),
            rpos: 0,
        })
    }

    /// Reads until `n` replies are parsed; calls `each(is_error)` as each one lands.
    fn read_replies(&mut self, mut n: usize, mut each: impl FnMut(bool)) -> std::io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        while n > 0 {
            while n > 0 {
                match skip_reply(&self.rbuf, self.rpos) {
                    Some((end, err)) => {
                        self.rpos = end;
                        n -= 1;
                        each(err);
                    }
                    None => break,
                }
            }
            if self.rpos == self.rbuf.len() {
                self.rbuf.clear();
                self.rpos = 0;
            }
            if n == 0 {
                break;
            }
            let r = self.sock.read(&mut chunk)?;
            if r == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            self.rbuf.extend_from_slice(&chunk[..r]);
        }
        Ok(())
    }
}

fn new_hist() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap()
}

struct Shared {
    stop: AtomicBool,
    done: AtomicU64,
    errors: AtomicU64,
    budget: Option<AtomicU64>,
}

impl Shared {
    /// How many requests the next batch may send (0 = finished).
    fn claim(&self, want: usize) -> usize {
        if self.stop.load(Ordering::Relaxed) {
            return 0;
        }
        match &self.budget {
            None => want,
            Some(b) => {
                let mut cur = b.load(Ordering::Relaxed);
                loop {
                    let take = cur.min(want as u64);
                    if take == 0 {
                        return 0;
                    }
                    match b.compare_exchange_weak(
                        cur,
                        cur - take,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return take as usize,
                        Err(c) => cur = c,
                    }
                }
            }
        }
    }
}

fn worker(
    o: Arc<Opts>,
    sh: Arc<Shared>,
    mut conns: Vec<Conn>,
    tid: u64,
) -> std::io::Result<Histogram<u64>> {
    let mut hist = new_hist();
    let mut rng = fastrand::Rng::with_seed(o.seed.wrapping_mul(1_000_003) ^ tid);
    let keys = Keys {
        n: o.keys,
        zipf: o.zipf,
    };
    let value = vec![b'x'; o.data_size];
    let total_ratio = o.sets + o.gets;
    let mut wbuf = Vec::with_capacity(o.pipeline * (o.data_size + 64));
    let mut sent = vec![0usize; conns.len()];
    let mut started = vec![Instant::now(); conns.len()];
    loop {
        let mut any = false;
        for (i, c) in conns.iter_mut().enumerate() {
            let n = sh.claim(o.pipeline);
            sent[i] = n;
            if n == 0 {
                continue;
            }
            any = true;
            wbuf.clear();
            for _ in 0..n {
                let k = keys.pick(&mut rng);
                if rng.u32(0..total_ratio) < o.sets {
                    push_set(&mut wbuf, k, &value);
                } else {
                    push_get(&mut wbuf, k);
                }
            }
            started[i] = Instant::now();
            c.sock.write_all(&wbuf)?;
        }
        if !any {
            return Ok(hist);
        }
        for (i, c) in conns.iter_mut().enumerate() {
            if sent[i] == 0 {
                continue;
            }
            let t0 = started[i];
            let mut errs = 0u64;
            c.read_replies(sent[i], |err| {
                let ns = t0.elapsed().as_nanos() as u64;
                hist.saturating_record(ns.max(1));
                errs += err as u64;
            })?;
            sh.done.fetch_add(sent[i] as u64, Ordering::Relaxed);
            if errs > 0 {
                sh.errors.fetch_add(errs, Ordering::Relaxed);
            }
        }
    }
}

fn prefill(o: &Opts) -> std::io::Result<()> {
    let mut c = Conn::open(o)?;
    let value = vec![b'x'; o.data_size];
    let mut buf = Vec::new();
    let batch = 1000u64;
    let mut k = 0;
    while k < o.keys {
        buf.clear();
        let end = (k + batch).min(o.keys);
        for i in k..end {
            push_set(&mut buf, i, &value);
        }
        c.sock.write_all(&buf)?;
        c.read_replies((end - k) as usize, |_| {})?;
        k = end;
    }
    Ok(())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn json_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => "\\\"".chars().collect::<Vec<_>>(),
            '\\' => "\\\\".chars().collect(),
            c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

fn main() {
    let o = match parse_args() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if o.prefill
        && let Err(e) = prefill(&o)
    {
        eprintln!("prefill failed: {e}");
        std::process::exit(1);
    }
    let sh = Arc::new(Shared {
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        budget: o.requests.map(AtomicU64::new),
    });
    // Connect everything before the clock starts.
    let mut per_thread: Vec<Vec<Conn>> = (0..o.threads).map(|_| Vec::new()).collect();
    for i in 0..o.conns {
        match Conn::open(&o) {
            Ok(c) => per_thread[i % o.threads].push(c),
            Err(e) => {
                eprintln!("connect {}:{} failed: {e}", o.host, o.port);
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now();
    let handles: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(t, conns)| {
            let (o, sh) = (o.clone(), sh.clone());
            std::thread::spawn(move || worker(o, sh, conns, t as u64))
        })
        .collect();

    let deadline = o
        .requests
        .is_none()
        .then(|| start + Duration::from_secs_f64(o.duration));
    let mut last = (start, 0u64);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            sh.stop.store(true, Ordering::Relaxed);
        }
        if !o.quiet && now.duration_since(last.0) >= Duration::from_secs(1) {
            let done = sh.done.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            eprint!(
                "\r[{:5.1}s] {:>10.0} ops/s  {:>11} ops  {} errors   ",
                now.duration_since(start).as_secs_f64(),
                rate,
                done,
                sh.errors.load(Ordering::Relaxed)
            );
            last = (now, done);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if !o.quiet {
        eprintln!();
    }
    let mut hist = new_hist();
    for h in handles {
        match h.join().expect("worker panicked") {
            Ok(h) => hist.add(h).unwrap(),
            Err(e) => {
                eprintln!("worker failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let ops = hist.len();
    let errors = sh.errors.load(Ordering::Relaxed);
    let rate = ops as f64 / elapsed;
    let (p50, p99, p999, max) = (
        us(hist.value_at_quantile(0.50)),
        us(hist.value_at_quantile(0.99)),
        us(hist.value_at_quantile(0.999)),
        us(hist.max()),
    );
    let mean = hist.mean() / 1000.0;
    println!(
        "{} conns x P{} on {}:{}  set:get {}:{}  keys {} ({})  value {} B",
        o.conns,
        o.pipeline,
        o.host,
        o.port,
        o.sets,
        o.gets,
        o.keys,
        if o.zipf.is_some() { "zipf" } else { "uniform" },
        o.data_size
    );
    println!(
        "ops {ops}  errors {errors}  time {elapsed:.2}s  ops/s {rate:.0}\n\
         latency us: mean {mean:.1}  p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}"
    );
    if let Some(path) = &o.json {
        let line = format!(
            "{{\"label\":\"{}\",\"host\":\"{}\",\"port\":{},\"connections\":{},\"threads\":{},\
             \"pipeline\":{},\"ratio\":\"{}:{}\",\"keys\":{},\"dist\":\"{}\",\"data_size\":{},\
             \"ops\":{},\"errors\":{},\"seconds\":{:.3},\"ops_per_sec\":{:.1},\"mean_us\":{:.1},\
             \"p50_us\":{:.1},\"p99_us\":{:.1},\"p99_9_us\":{:.1},\"max_us\":{:.1}}}\n",
            json_escape(&o.label),
            json_escape(&o.host),
            o.port,
            o.conns,
            o.threads,
            o.pipeline,
            o.sets,
            o.gets,
            o.keys,
            if o.zipf.is_some() { "zipf" } else { "uniform" },
            o.data_size,
            ops,
            errors,
            elapsed,
            rate,
            mean,
            p50,
            p99,
            p999,
            max
        );
        let res = if path == "-" {
            std::io::stdout().write_all(line.as_bytes())
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
        };
        if let Err(e) = res {
            eprintln!("writing {path}: {e}");
            std::process::exit(1);
        }
    }
    if let Some(path) = &o.hist {
        let mut out = String::from("percentile latency_us\n");
        for q in [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
        ] {
            out.push_str(&format!(
                "{q} {:.1}\n",
                us(hist.value_at_quantile(q / 100.0))
            ));
        }
        if let Err(e) = std::fs::write(path, out) {
            eprintln!("writing {path}: {e}");
            std::process::exit(1);
        }
    }
    if errors > 0 {
        std::process::exit(3);
    }
}
