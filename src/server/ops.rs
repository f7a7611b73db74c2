//! Operational statistics: the slow log, latency events (LATENCY LATEST /
//! HISTORY), per-command latency histograms (LATENCY HISTOGRAM, INFO
//! latencystats) and error counts by prefix (INFO errorstats).
//!
//! The slow log and latency events are process-wide behind a mutex: they
//! are only written when a command is slow. Histograms and error counts
//! are per shard (in `ThreadStats`, written only by that shard's thread)
//! and merged by the commands that read them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use hdrhistogram::Histogram;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC / SLOWLOG_ENTRY_MAX_STRING.
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;
/// Redis's LATENCY_TS_LEN.
const LATENCY_TS_LEN: usize = 160;
/// Redis's ERROR_STATS_NUMBER: distinct error prefixes tracked.
const ERROR_STATS_NUMBER: usize = 128;
/// LATENCY_HISTOGRAM_MIN_VALUE / MAX_VALUE (ns) and precision, as Redis.
const HIST_MIN: u64 = 1;
const HIST_MAX: u64 = 1_000_000_000;
const HIST_SIGFIG: u8 = 2;

pub struct SlowEntry {
    pub id: u64,
    pub time: u64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

#[derive(Default)]
struct SlowLog {
    entries: VecDeque<SlowEntry>,
    next_id: u64,
}

/// One latency event's samples (Redis's latencyTimeSeries).
#[derive(Clone)]
pub struct EventSeries {
    idx: usize,
    pub max: u64,
    samples: Vec<(u64, u64)>,
}

impl EventSeries {
    fn new() -> Self {
        EventSeries {
            idx: 0,
            max: 0,
            samples: vec![(0, 0); LATENCY_TS_LEN],
        }
    }

    /// Samples in time order (time, latency ms), empty slots skipped.
    pub fn samples(&self) -> Vec<(u64, u64)> {
        (0..LATENCY_TS_LEN)
            .map(|j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.0 != 0)
            .collect()
    }

    pub fn latest(&self) -> (u64, u64) {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

/// Process-wide operational state, with hot copies of the configs read on
/// every command.
pub struct Ops {
    slowlog: Mutex<SlowLog>,
    events: Mutex<Vec<(String, EventSeries)>>,
    pub slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    pub latency_threshold_ms: AtomicU64,
    pub latency_tracking: AtomicBool,
    /// `timeout`: idle seconds before a client is closed (0: never).
    pub idle_timeout_secs: AtomicU64,
    /// `tcp-keepalive` seconds (0: off).
    pub tcp_keepalive_secs: AtomicU64,
    /// `client-output-buffer-limit` of the normal and pubsub classes.
    pub normal_limits: Mutex<OutputLimits>,
    pub pubsub_limits: Mutex<OutputLimits>,
}

/// One class of `client-output-buffer-limit`: hard bytes, soft bytes, soft seconds.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct OutputLimits {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

impl OutputLimits {
    /// checkClientOutputBufferLimits: over the hard limit, or over the soft
    /// one for longer than its seconds (`soft_since` tracks that).
    pub fn reached(&self, used: u64, soft_since: &mut Option<u64>, now_ms: u64) -> bool {
        if self.hard > 0 && used >= self.hard {
            return true;
        }
        if self.soft > 0 && used >= self.soft {
            let since = *soft_since.get_or_insert(now_ms);
            return now_ms.saturating_sub(since) / 1000 >= self.soft_secs;
        }
        *soft_since = None;
        false
    }
}

/// The limits of `class` in a `client-output-buffer-limit` value.
pub fn output_limits(spec: &str, class: &str) -> OutputLimits {
    let w: Vec<&str> = spec.split_whitespace().collect();
    let mut out = OutputLimits::default();
    for c in w.chunks(4) {
        let name = if c[0] == "slave" { "replica" } else { c[0] };
        if c.len() == 4 && name == class {
            let m = |s: &str| crate::config::parse_memory(s).unwrap_or(0) as u64;
            out = OutputLimits {
                hard: m(c[1]),
                soft: m(c[2]),
                soft_secs: c[3].parse().unwrap_or(0),
            };
        }
    }
    out
}

impl Default for Ops {
    fn default() -> Self {
        Ops {
            slowlog: Default::default(),
            events: Default::default(),
            slower_than: AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            latency_threshold_ms: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(true),
            idle_timeout_secs: AtomicU64::new(0),
            tcp_keepalive_secs: AtomicU64::new(300),
            normal_limits: Default::default(),
            pubsub_limits: Mutex::new(OutputLimits {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_secs: 60,
            }),
        }
    }
}

impl Ops {
    pub fn configure(&self, c: &crate::config::Config) {
        self.slower_than
            .store(c.get_i64("slowlog-log-slower-than"), Ordering::Relaxed);
        self.slowlog_max_len.store(
            c.get_i64("slowlog-max-len").max(0) as u64,
            Ordering::Relaxed,
        );
        self.latency_threshold_ms.store(
            c.get_i64("latency-monitor-threshold").max(0) as u64,
            Ordering::Relaxed,
        );
        self.latency_tracking
            .store(c.get_bool("latency-tracking"), Ordering::Relaxed);
        self.idle_timeout_secs
            .store(c.get_i64("timeout").max(0) as u64, Ordering::Relaxed);
        self.tcp_keepalive_secs
            .store(c.get_i64("tcp-keepalive").max(0) as u64, Ordering::Relaxed);
        let spec = c.get("client-output-buffer-limit");
        *self.normal_limits.lock().unwrap() = output_limits(spec, "normal");
        *self.pubsub_limits.lock().unwrap() = output_limits(spec, "pubsub");
    }

    /// Whether a command that took `us` goes into the slow log.
    pub fn is_slow(&self, us: u64) -> bool {
        let t = self.slower_than.load(Ordering::Relaxed);
        t >= 0 && us as i64 >= t
    }

    /// slowlogPushEntryIfNeeded, once `is_slow` said yes.
    pub fn slowlog_push(&self, args: &[Bytes], us: u64, addr: &str, name: &str) {
        let argc = args.len().min(SLOWLOG_MAX_ARGC);
        let mut v = Vec::with_capacity(argc);
        for (j, a) in args.iter().take(argc).enumerate() {
            if redacted(args, j) {
                v.push(Bytes::from_static(b"(redacted)"));
            } else if argc != args.len() && j == argc - 1 {
                v.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - argc + 1
                )));
            } else if a.len() > SLOWLOG_MAX_STRING {
                let mut s = a[..SLOWLOG_MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
                );
                v.push(Bytes::from(s));
            } else {
                // A copy: the argument may be a slice of a large read buffer.
                v.push(Bytes::copy_from_slice(a));
            }
        }
        let max = self.slowlog_max_len.load(Ordering::Relaxed) as usize;
        let mut log = self.slowlog.lock().unwrap();
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(SlowEntry {
            id,
            time: crate::storage::now_ms() / 1000,
            duration_us: us,
            args: v,
            addr: addr.to_string(),
            name: name.to_string(),
        });
        log.entries.truncate(max);
    }

    pub fn slowlog_len(&self) -> usize {
        self.slowlog.lock().unwrap().entries.len()
    }

    pub fn slowlog_reset(&self) {
        self.slowlog.lock().unwrap().entries.clear();
    }

    /// Runs `f` over the newest `count` entries.
    pub fn slowlog_get<R>(&self, count: usize, f: impl FnOnce(&[&SlowEntry]) -> R) -> R {
        let log = self.slowlog.lock().unwrap();
        let v: Vec<&SlowEntry> = log.entries.iter().take(count).collect();
        f(&v)
    }

    /// latencyAddSampleIfNeeded.
    pub fn latency_sample(&self, event: &str, ms: u64) {
        let t = self.latency_threshold_ms.load(Ordering::Relaxed);
        if t == 0 || ms < t {
            return;
        }
        let now = crate::storage::now_ms() / 1000;
        let mut events = self.events.lock().unwrap();
        let ts = match events.iter().position(|(n, _)| n == event) {
            Some(i) => &mut events[i].1,
            None => {
                events.push((event.to_string(), EventSeries::new()));
                &mut events.last_mut().unwrap().1
            }
        };
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if ts.samples[prev].0 == now {
            ts.samples[prev].1 = ts.samples[prev].1.max(ms);
            return;
        }
        ts.samples[ts.idx] = (now, ms);
        ts.idx = (ts.idx + 1) % LATENCY_TS_LEN;
    }

    pub fn events(&self) -> Vec<(String, EventSeries)> {
        self.events.lock().unwrap().clone()
    }

    /// LATENCY RESET: the number of events dropped.
    pub fn latency_reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.events.lock().unwrap();
        let before = events.len();
        events.retain(|(n, _)| event.is_some_and(|e| !n.as_bytes().eq_ignore_ascii_case(e)));
        before - events.len()
    }
}

/// One shard's histograms and error counts.
#[derive(Default)]
pub struct ShardOps {
    /// By command table index.
    hist: Vec<Option<Box<Histogram<u64>>>>,
    /// Subcommands of containers ("config|get"), by full name.
    sub_hist: HashMap<&'static str, Box<Histogram<u64>>>,
    pub errors: BTreeMap<String, u64>,
    /// Every error reply (INFO total_error_replies).
    pub total_errors: u64,
}

fn new_hist() -> Box<Histogram<u64>> {
    Box::new(Histogram::new_with_bounds(HIST_MIN, HIST_MAX, HIST_SIGFIG).expect("valid bounds"))
}

impl ShardOps {
    /// updateCommandLatencyHistogram: `us` recorded in ns, clamped.
    pub fn record(&mut self, idx: usize, sub: Option<&'static str>, us: u64) {
        let ns = us.saturating_mul(1000).clamp(HIST_MIN, HIST_MAX);
        let h = match sub {
            Some(name) => self.sub_hist.entry(name).or_insert_with(new_hist),
            None => {
                if self.hist.len() <= idx {
                    self.hist.resize_with(idx + 1, || None);
                }
                self.hist[idx].get_or_insert_with(new_hist)
            }
        };
        let _ = h.record(ns);
    }

    /// Counts one error reply by its prefix (afterErrorReply).
    pub fn count_error(&mut self, reply: &[u8]) {
        self.total_errors += 1;
        let line = &reply[..reply
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(reply.len())];
        let head = &line[..line.len().min(32)];
        let prefix = match head.iter().position(|&b| b == b' ') {
            Some(p) if line.first() == Some(&b'-') => &line[1..p],
            _ => b"ERR".as_slice(),
        };
        let prefix = String::from_utf8_lossy(prefix).into_owned();
        if let Some(n) = self.errors.get_mut(&prefix) {
            *n += 1;
        } else if self.errors.len() < ERROR_STATS_NUMBER {
            self.errors.insert(prefix, 1);
        }
    }

    pub fn reset(&mut self) {
        *self = ShardOps::default();
    }
}

/// Every shard's histograms merged: full command name -> histogram.
pub fn merged_histograms(srv: &super::Server) -> BTreeMap<String, Histogram<u64>> {
    let table = crate::commands::table();
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for st in &srv.stats {
        let ops = st.ops.lock().unwrap();
        let named = ops
            .hist
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (table.get(i).name, h)))
            .chain(ops.sub_hist.iter().map(|(n, h)| (*n, h)));
        for (name, h) in named {
            match out.get_mut(name) {
                Some(m) => {
                    let _ = m.add(&**h);
                }
                None => {
                    out.insert(name.to_string(), (**h).clone());
                }
            }
        }
    }
    out
}

/// Every shard's error counts summed, in byte order (Redis's rax order).
pub fn merged_errors(srv: &super::Server) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for st in &srv.stats {
        for (k, v) in st.ops.lock().unwrap().errors.iter() {
            *out.entry(k.clone()).or_insert(0) += v;
        }
    }
    out
}

/// fillCommandCDF's buckets: Redis's log iterator (first bucket 1024 ns,
/// base 2) reports, per power of two, the highest value equivalent to it
/// in µs and the cumulative count, skipping steps that add nothing.
pub fn cdf(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    let total = h.len();
    let mut out = Vec::new();
    let mut prev = 0;
    let mut level: u64 = 1024;
    while prev < total && level <= HIST_MAX.next_power_of_two() {
        let top = h.highest_equivalent(level);
        let cum = h.count_between(0, top);
        if cum > prev {
            out.push((top / 1000, cum));
            prev = cum;
        }
        level *= 2;
    }
    out
}

/// hdr_value_at_percentile in µs, as INFO latencystats prints it.
pub fn percentile_us(h: &Histogram<u64>, p: f64) -> f64 {
    h.value_at_quantile(p / 100.0) as f64 / 1000.0
}

/// Redis's sparkline (LATENCY GRAPH): 4 rows, filled, 80 columns.
pub fn graph(event: &str, ts: &EventSeries) -> String {
    const COLS: usize = 80;
    const ROWS: usize = 4;
    let now = crate::storage::now_ms() / 1000;
    let samples = ts.samples();
    let (mut min, mut max) = (0u64, 0u64);
    let mut seq: Vec<(f64, String)> = Vec::new();
    for (i, &(t, l)) in samples.iter().enumerate() {
        if i == 0 {
            (min, max) = (l, l);
        } else {
            max = max.max(l);
            min = min.min(l);
        }
        let e = now.saturating_sub(t);
        let label = if e < 60 {
            format!("{e}s")
        } else if e < 3600 {
            format!("{}m", e / 60)
        } else if e < 86400 {
            format!("{}h", e / 3600)
        } else {
            format!("{}d", e / 86400)
        };
        seq.push((l as f64, label));
    }
    let mut g = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        ts.max
    );
    g.push_str(&"-".repeat(COLS));
    g.push('\n');
    let smin = seq.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let smax = seq.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let fill = b"_o#";
    for (n, chunk) in seq.chunks(COLS).enumerate() {
        if n > 0 {
            g.push('\n');
        }
        let mut relmax = smax - smin;
        if relmax == 0.0 {
            relmax = 1.0;
        }
        let steps = (3 * ROWS) as f64;
        let mut row = 0;
        loop {
            let mut any = false;
            let mut chars = vec![b' '; chunk.len()];
            for (j, (v, label)) in chunk.iter().enumerate() {
                let step = (((v - smin) * steps) as i64 as f64 / relmax) as i64;
                let step = step.clamp(0, steps as i64 - 1);
                if row < ROWS {
                    any = true;
                    let ci = step - ((ROWS - row - 1) * 3) as i64;
                    if (0..3).contains(&ci) {
                        chars[j] = fill[ci as usize];
                    } else if ci >= 3 {
                        chars[j] = b'|';
                    }
                } else {
                    // One blank line between the graph and the labels.
                    if row - ROWS < 1 {
                        any = true;
                        break;
                    }
                    let lc = row - ROWS - 1;
                    if label.len() > lc {
                        any = true;
                        chars[j] = label.as_bytes()[lc];
                    }
                }
            }
            if !any {
                break;
            }
            row += 1;
            g.push_str(&String::from_utf8_lossy(&chars));
            g.push('\n');
        }
    }
    g
}

/// LATENCY DOCTOR's report (the event statistics part of Redis's).
pub fn doctor(ops: &Ops) -> String {
    let events = ops.events();
    if events.is_empty() && ops.latency_threshold_ms.load(Ordering::Relaxed) == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".to_string();
    }
    let now = crate::storage::now_ms() / 1000;
    let mut r = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    for (n, (event, ts)) in events.iter().enumerate() {
        let s = ts.samples();
        let count = s.len() as u64;
        let sum: u64 = s.iter().map(|x| x.1).sum();
        let avg = sum / count.max(1);
        let mad = s.iter().map(|x| x.1.abs_diff(avg)).sum::<u64>() / count.max(1);
        let oldest = s.iter().map(|x| x.0).min().unwrap_or(now);
        let period = now.saturating_sub(oldest).max(1);
        r.push_str(&format!(
            "{}. {event}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.\n",
            n + 1,
            period as f64 / count.max(1) as f64,
            ts.max
        ));
    }
    r.push_str("\nI have a few advices for you:\n\n- Check your slowlog (SLOWLOG GET) and the LATENCY HISTOGRAM of your commands: keel runs one shard per core, so a slow command delays only the clients of its shard.\n");
    r
}

/// CLIENT PAUSE: 0 none, 1 WRITE, 2 ALL, until `PAUSE_END_MS`. FAILOVER's
/// own write pause (replication::failover) goes through `holds` too.
static PAUSE_MODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
static PAUSE_END_MS: AtomicU64 = AtomicU64::new(0);

pub fn pause_clients(all: bool, end_ms: u64) {
    // A second PAUSE keeps the stronger mode and the later end, as Redis.
    let mode = if all { 2 } else { 1 };
    let cur = PAUSE_MODE.load(Ordering::Acquire);
    let active = cur != 0 && PAUSE_END_MS.load(Ordering::Acquire) > crate::storage::now_ms();
    PAUSE_MODE.store(if active { cur.max(mode) } else { mode }, Ordering::Release);
    let end = if active {
        PAUSE_END_MS.load(Ordering::Acquire).max(end_ms)
    } else {
        end_ms
    };
    PAUSE_END_MS.store(end, Ordering::Release);
}

pub fn unpause_clients() {
    PAUSE_MODE.store(0, Ordering::Release);
}

/// Whether a command (that may write: `write`) must wait now.
pub fn holds(write: bool) -> bool {
    if write && crate::replication::failover::writes_paused() {
        return true;
    }
    match PAUSE_MODE.load(Ordering::Acquire) {
        0 => false,
        mode => {
            if PAUSE_END_MS.load(Ordering::Acquire) <= crate::storage::now_ms() {
                PAUSE_MODE.store(0, Ordering::Release);
                return false;
            }
            mode == 2 || write
        }
    }
}

/// Writes are held (active expiry and eviction stay off meanwhile).
pub fn writes_paused() -> bool {
    holds(true)
}

/// Arguments Redis redacts before logging a command (redactClientCommandArgument):
/// every argument of ACL SETUSER after the subcommand, the values of the
/// sensitive configs in CONFIG SET, AUTH's, HELLO's and MIGRATE's credentials.
pub(crate) fn redacted(args: &[Bytes], j: usize) -> bool {
    let is = |i: usize, s: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    if is(0, "acl") && is(1, "setuser") && args.len() >= 3 {
        return j >= 2;
    }
    if is(0, "config") && is(1, "set") && args.len() >= 4 && args.len().is_multiple_of(2) {
        return j >= 3
            && !j.is_multiple_of(2)
            && ["masteruser", "masterauth", "requirepass"]
                .iter()
                .any(|n| is(j - 1, n));
    }
    // authCommand refuses more than 2 arguments before redacting.
    if is(0, "auth") && args.len() <= 3 {
        return j >= 1;
    }
    // helloCommand: a protover in 2..3, then [AUTH user pass] [SETNAME name].
    if is(0, "hello") {
        let ver = args
            .get(1)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
        if !matches!(ver, Some(2..=3)) {
            return false;
        }
        let mut i = 2;
        while i < args.len() {
            let more = args.len() - 1 - i;
            if is(i, "auth") && more >= 2 {
                if j == i + 1 || j == i + 2 {
                    return true;
                }
                i += 3;
            } else if is(i, "setname") && more >= 1 {
                i += 2;
            } else {
                break;
            }
        }
        return false;
    }
    // migrateCommand's options from the 7th argument; KEYS ends them.
    if is(0, "migrate") {
        let mut i = 6;
        while i < args.len() {
            let more = args.len() - 1 - i;
            if is(i, "auth") && more >= 1 {
                if j == i + 1 {
                    return true;
                }
                i += 2;
            } else if is(i, "auth2") && more >= 2 {
                if j == i + 1 || j == i + 2 {
                    return true;
                }
                i += 3;
            } else if is(i, "copy") || is(i, "replace") {
                i += 1;
            } else {
                break;
            }
        }
    }
    false
}

/// Redis's instantaneous metrics: a rate sampled every cron tick (shard
/// 0's, 100 ms at hz 10), averaged over the last 16 samples.
pub const INST_OPS: usize = 0;
pub const INST_NET_IN: usize = 1;
pub const INST_NET_OUT: usize = 2;
const INST_SAMPLES: usize = 16;

#[derive(Clone, Copy)]
struct Metric {
    last_ms: u64,
    last: u64,
    samples: [u64; INST_SAMPLES],
    idx: usize,
}

static INST: std::sync::Mutex<[Metric; 3]> = std::sync::Mutex::new(
    [Metric {
        last_ms: 0,
        last: 0,
        samples: [0; INST_SAMPLES],
        idx: 0,
    }; 3],
);

/// trackInstantaneousMetric for commands and network bytes (from the cron).
pub fn track_instantaneous(srv: &super::Server) {
    let now = crate::storage::now_ms();
    let values = [
        total(srv, |s| &s.total_commands),
        total(srv, |s| &s.net_input_bytes),
        total(srv, |s| &s.net_output_bytes),
    ];
    let mut m = INST.lock().unwrap();
    for (metric, v) in m.iter_mut().zip(values) {
        if metric.last_ms != 0 && now > metric.last_ms {
            let rate = v.saturating_sub(metric.last) * 1000 / (now - metric.last_ms);
            metric.samples[metric.idx] = rate;
            metric.idx = (metric.idx + 1) % INST_SAMPLES;
        }
        metric.last_ms = now;
        metric.last = v;
    }
}

pub fn instantaneous(which: usize) -> u64 {
    let m = INST.lock().unwrap();
    m[which].samples.iter().sum::<u64>() / INST_SAMPLES as u64
}

fn total(srv: &super::Server, f: impl Fn(&super::ThreadStats) -> &AtomicU64) -> u64 {
    srv.stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowlog_truncates_like_redis() {
        let ops = Ops::default();
        let mut args: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        args[1] = Bytes::from(vec![b'x'; 130]);
        ops.slowlog_push(&args, 5, "1.2.3.4:5", "n");
        ops.slowlog_get(10, |e| {
            assert_eq!(e[0].args.len(), 32);
            assert_eq!(&e[0].args[31][..], b"... (9 more arguments)");
            assert!(e[0].args[1].ends_with(b"x... (2 more bytes)"));
            assert_eq!(e[0].args[1].len(), 128 + "... (2 more bytes)".len());
        });
    }

    #[test]
    fn cdf_buckets_match_redis() {
        // Stock Redis reports 50 sub-µs SETs as {1: 50}.
        let mut h = new_hist();
        for _ in 0..50 {
            h.record(1).unwrap();
        }
        h.record(3000).unwrap();
        assert_eq!(cdf(&h), vec![(1, 50), (4, 51)]);
    }

    #[test]
    fn error_prefixes() {
        let mut o = ShardOps::default();
        o.count_error(b"-WRONGTYPE Operation against");
        o.count_error(b"-ERR unknown");
        o.count_error(b"-NOSPACE");
        assert_eq!(o.errors.get("WRONGTYPE"), Some(&1));
        assert_eq!(o.errors.get("ERR"), Some(&2));
    }
}
