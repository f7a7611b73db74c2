//! INFO: the sections and fields of Redis 7.0's INFO, from keel's counters.

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{Ctx, table};
use crate::server::Server;
use crate::server::pubsub::Kind as PubsubKind;

// Linking: the symbols below come from the mimalloc crate's C library.
use mimalloc as _;

unsafe extern "C" {
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
    fn mi_version() -> libc::c_int;
}

/// Memory as INFO reports it.
#[derive(Clone, Copy, Default)]
pub struct MemSnapshot {
    /// Bytes allocated (keel's used_memory).
    pub used: u64,
    pub rss: u64,
    pub peak_commit: u64,
}

/// Resident set size from /proc/self/statm.
fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

pub fn mem_snapshot() -> MemSnapshot {
    let mut v = [0usize; 8];
    // SAFETY: mi_process_info writes one usize through each non-null pointer.
    unsafe {
        let [a, b, c, d, e, f, g, h] = &mut v;
        mi_process_info(a, b, c, d, e, f, g, h);
    }
    let rss = rss_bytes();
    // Bytes allocated (what maxmemory limits); mimalloc's committed pages
    // where the counting allocator is not installed.
    let counted = crate::memory::used_memory();
    let used = if counted > 0 {
        counted
    } else if v[5] > 0 {
        v[5] as u64
    } else {
        rss
    };
    MemSnapshot {
        used,
        rss,
        peak_commit: v[6] as u64,
    }
}

/// used_memory when the command table was built, i.e. at startup.
pub fn startup_memory() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| mem_snapshot().used)
}

static PEAK: AtomicU64 = AtomicU64::new(0);

/// mi_version(): major*10000 + minor*100 + patch (older releases: major*100 + minor*10 + patch).
fn mimalloc_version(v: libc::c_int) -> String {
    if v >= 10000 {
        format!("mimalloc-{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
    } else {
        format!("mimalloc-{}.{}.{}", v / 100, v / 10 % 10, v % 10)
    }
}

/// Like Redis's bytesToHuman.
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(&str, u32); 5] = [("K", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5)];
    if n < 1024 {
        return format!("{n}B");
    }
    for (u, p) in UNITS {
        if (n as u128) < 1024u128.pow(p + 1) {
            return format!("{:.2}{}", n as f64 / 1024f64.powi(p as i32), u);
        }
    }
    format!("{n}B")
}

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections were asked for.
struct Want {
    all: bool,
    names: Vec<String>,
}

impl Want {
    fn from_args(args: &[Bytes]) -> Want {
        let mut w = Want {
            all: false,
            names: Vec::new(),
        };
        if args.is_empty() {
            w.names = DEFAULT.iter().map(|s| s.to_string()).collect();
            return w;
        }
        for a in args {
            let s = String::from_utf8_lossy(a).to_ascii_lowercase();
            match s.as_str() {
                "default" => w.names.extend(DEFAULT.iter().map(|s| s.to_string())),
                // keel has no modules, so "everything" is "all".
                "all" | "everything" => w.all = true,
                _ => w.names.push(s),
            }
        }
        w
    }

    fn has(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }
}

/// Sums of every shard's counters.
#[derive(Default)]
struct Totals {
    /// Per DB: keys, keys with a TTL, and avg_ttl weighted by the latter.
    keys: Vec<(u64, u64, u128)>,
    dirty: u64,
    expired: u64,
    hits: u64,
    misses: u64,
    stale_perc: f64,
}

fn totals(ctx: &mut Ctx) -> Totals {
    let mut t = Totals {
        keys: vec![(0, 0, 0); ctx.srv.databases],
        ..Default::default()
    };
    let shards = ctx.held_shards();
    let n = shards.len().max(1) as f64;
    for i in shards {
        let s = ctx.store(i);
        for (d, db) in s.dbs.iter().enumerate() {
            if d < t.keys.len() {
                t.keys[d].0 += db.dict.len() as u64;
                t.keys[d].1 += db.expires_len() as u64;
                t.keys[d].2 += db.avg_ttl as u128 * db.expires_len() as u128;
            }
        }
        t.dirty += s.dirty;
        t.expired += s.stats.expired_keys;
        t.hits += s.stats.keyspace_hits;
        t.misses += s.stats.keyspace_misses;
        t.stale_perc += s.stats.expired_stale_perc / n;
    }
    t
}

fn sum(srv: &Server, f: impl Fn(&crate::server::ThreadStats) -> &AtomicU64) -> u64 {
    srv.stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
}

fn uname() -> (String, String, String) {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let f = |s: &[libc::c_char]| {
        let b: Vec<u8> = s
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (f(&u.sysname), f(&u.release), f(&u.machine))
}

fn rusage(who: libc::c_int) -> (String, String) {
    // SAFETY: getrusage fills the struct we own.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut r) };
    (
        format!("{}.{:06}", r.ru_stime.tv_sec, r.ru_stime.tv_usec),
        format!("{}.{:06}", r.ru_utime.tv_sec, r.ru_utime.tv_usec),
    )
}

fn abs_path(p: &str) -> String {
    std::fs::canonicalize(p)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

/// Builds the INFO text for `args` (the section names).
pub fn gen_info(ctx: &mut Ctx, args: &[Bytes]) -> String {
    let want = Want::from_args(args);
    let t = totals(ctx);
    let srv = ctx.srv;
    let cfg = srv.config.read().unwrap().clone();
    let mut s = String::with_capacity(4096);
    let mut sections = 0;
    let mut header = |s: &mut String, name: &str| {
        if sections > 0 {
            s.push_str("\r\n");
        }
        sections += 1;
        let _ = write!(s, "# {name}\r\n");
    };
    macro_rules! kv {
        ($($k:literal => $v:expr),* $(,)?) => {
            $( let _ = write!(s, concat!($k, ":{}\r\n"), $v); )*
        };
    }

    if want.has("server") {
        header(&mut s, "Server");
        let (sys, rel, mach) = uname();
        let uptime = srv.uptime_secs();
        let now_ms = crate::storage::now_ms();
        kv! {
            "redis_version" => "7.0.15",
            "redis_mode" => if srv.cluster.is_some() { "cluster" } else { "standalone" },
            "os" => format!("{sys} {rel} {mach}"),
            "arch_bits" => usize::BITS,
            "monotonic_clock" => "POSIX clock_gettime",
            "multiplexing_api" => "io_uring",
            "atomicvar_api" => "c11-builtin",
            "process_id" => std::process::id(),
            "process_supervised" => cfg.get("supervised"),
            "run_id" => srv.run_id,
            "tcp_port" => srv.port,
            "server_time_usec" => crate::storage::now_us(),
            "uptime_in_seconds" => uptime,
            "uptime_in_days" => uptime / 86400,
            "hz" => cfg.get_i64("hz"),
            "configured_hz" => cfg.get_i64("hz"),
            "lru_clock" => (now_ms / 1000) & ((1 << 24) - 1),
            "executable" => std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            "config_file" => cfg.file.as_deref().map(abs_path).unwrap_or_default(),
            "keel_version" => env!("CARGO_PKG_VERSION"),
            "keel_shards" => srv.nshards,
            "keel_borrowed_commands" => sum(srv, |s| &s.borrowed_cmds),
        }
    }

    if want.has("clients") {
        header(&mut s, "Clients");
        kv! {
            "connected_clients" => srv.clients.lock().unwrap().len(),
            "maxclients" => cfg.get_i64("maxclients"),
            "blocked_clients" => srv.blocked_clients.load(Ordering::Relaxed),
            "tracking_clients" => crate::server::tracking::ACTIVE.load(Ordering::Relaxed),
        }
    }

    if want.has("memory") {
        header(&mut s, "Memory");
        let m = mem_snapshot();
        let peak = PEAK
            .fetch_max(m.used, Ordering::Relaxed)
            .max(m.used)
            .max(m.peak_commit);
        let startup = startup_memory().min(m.used);
        let dataset = m.used - startup;
        let maxmem = cfg.get_i64("maxmemory").max(0) as u64;
        // SAFETY: sysconf has no memory effects.
        let total_sys = unsafe {
            libc::sysconf(libc::_SC_PHYS_PAGES) as u64 * libc::sysconf(libc::_SC_PAGESIZE) as u64
        };
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let v = unsafe { mi_version() };
        let scripts = crate::scripting::Registry::global();
        let scripts_mem = scripts.memory();
        kv! {
            "used_memory" => m.used,
            "used_memory_human" => bytes_to_human(m.used),
            "used_memory_rss" => m.rss,
            "used_memory_rss_human" => bytes_to_human(m.rss),
            "used_memory_peak" => peak,
            "used_memory_peak_human" => bytes_to_human(peak),
            "used_memory_peak_perc" => format!("{:.2}%", ratio(m.used, peak) * 100.0),
            "used_memory_overhead" => startup,
            "used_memory_startup" => startup,
            "used_memory_dataset" => dataset,
            "used_memory_dataset_perc" => format!("{:.2}%", ratio(dataset, m.used) * 100.0),
            "allocator_allocated" => m.used,
            "allocator_resident" => m.rss,
            "total_system_memory" => total_sys,
            "total_system_memory_human" => bytes_to_human(total_sys),
            "used_memory_scripts_eval" => scripts_mem,
            "number_of_cached_scripts" => scripts.len(),
            "used_memory_scripts" => scripts_mem,
            "used_memory_scripts_human" => bytes_to_human(scripts_mem as u64),
            "maxmemory" => maxmem,
            "maxmemory_human" => bytes_to_human(maxmem),
            "maxmemory_policy" => cfg.get("maxmemory-policy"),
            "allocator_rss_ratio" => format!("{:.2}", ratio(m.rss, m.used)),
            "allocator_rss_bytes" => m.rss as i64 - m.used as i64,
            "mem_fragmentation_ratio" => format!("{:.2}", ratio(m.rss, m.used)),
            "mem_fragmentation_bytes" => m.rss as i64 - m.used as i64,
            "mem_not_counted_for_evict" => crate::storage::evict::not_counted(),
            "mem_replication_backlog" => super::replication::backlog_memory(),
            "mem_allocator" => mimalloc_version(v),
            "lazyfree_pending_objects" => super::keys::LAZYFREE_PENDING.load(Ordering::Relaxed),
            "lazyfreed_objects" => super::keys::LAZYFREED.load(Ordering::Relaxed),
        }
    }

    if want.has("persistence") {
        header(&mut s, "Persistence");
        let p = &srv.persist;
        let in_progress = p.bgsave_in_progress();
        let current_secs = if in_progress {
            ((crate::storage::now_ms() - p.child_start_ms.load(Ordering::Relaxed)) / 1000) as i64
        } else {
            -1
        };
        kv! {
            "loading" => p.loading.load(Ordering::Relaxed) as i32,
            // keel has no asynchronous load (repl-diskless-load swapdb).
            "async_loading" => 0,
            "rdb_changes_since_last_save" => t.dirty,
            "rdb_bgsave_in_progress" => in_progress as i32,
            "rdb_last_save_time" => srv.lastsave.load(Ordering::Relaxed),
            "rdb_last_bgsave_status" => if p.last_bgsave_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            "rdb_last_bgsave_time_sec" => p.last_bgsave_secs.load(Ordering::Relaxed),
            "rdb_current_bgsave_time_sec" => current_secs,
            "rdb_saves" => p.saves.load(Ordering::Relaxed),
            "rdb_last_load_keys_expired" => srv.persist.last_load.load(Ordering::Relaxed) & 0xffff_ffff,
            "rdb_last_load_keys_loaded" => srv.persist.last_load.load(Ordering::Relaxed) >> 32,
        }
        for (k, v) in crate::aof::info_fields(srv) {
            let _ = write!(s, "{k}:{v}\r\n");
        }
        if p.loading.load(Ordering::Relaxed) {
            loading_fields(&mut s, &p.progress);
        }
    }

    if want.has("stats") {
        header(&mut s, "Stats");
        let tracking = crate::server::tracking::totals();
        let failed: u64 = srv
            .stats
            .iter()
            .map(|s| s.ops.lock().unwrap().total_errors)
            .sum();
        let sync = super::replication::sync_counters();
        kv! {
            "total_connections_received" => sum(srv, |s| &s.connections_received),
            "total_commands_processed" => sum(srv, |s| &s.total_commands),
            "instantaneous_ops_per_sec" => crate::server::ops::instantaneous(crate::server::ops::INST_OPS),
            "total_net_input_bytes" => sum(srv, |s| &s.net_input_bytes),
            "total_net_output_bytes" => sum(srv, |s| &s.net_output_bytes),
            "total_net_repl_output_bytes" => crate::replication::master::REPL_OUTPUT_BYTES.load(std::sync::atomic::Ordering::Relaxed),
            "instantaneous_input_kbps" => format!("{:.2}", crate::server::ops::instantaneous(crate::server::ops::INST_NET_IN) as f64 / 1024.0),
            "instantaneous_output_kbps" => format!("{:.2}", crate::server::ops::instantaneous(crate::server::ops::INST_NET_OUT) as f64 / 1024.0),
            "rejected_connections" => sum(srv, |s| &s.rejected_connections),
            "sync_full" => sync.0,
            "sync_partial_ok" => sync.1,
            "sync_partial_err" => sync.2,
            "expired_keys" => t.expired,
            "expired_stale_perc" => format!("{:.2}", t.stale_perc * 100.0),
            "evicted_keys" => crate::storage::evict::EVICTED.load(std::sync::atomic::Ordering::Relaxed),
            "keyspace_hits" => t.hits,
            "keyspace_misses" => t.misses,
            "pubsub_channels" => srv.pubsub.names(PubsubKind::Channel, None).len(),
            "pubsub_patterns" => srv.pubsub.numpat(),
            "pubsubshard_channels" => srv.pubsub.names(PubsubKind::Shard, None).len(),
            "latest_fork_usec" => srv.persist.latest_fork_usec.load(Ordering::Relaxed),
            "total_forks" => srv.persist.forks.load(Ordering::Relaxed),
            "tracking_total_keys" => tracking.0,
            "tracking_total_items" => tracking.1,
            "tracking_total_prefixes" => tracking.2,
            "unexpected_error_replies" => crate::replication::replica::UNEXPECTED_ERRORS.load(std::sync::atomic::Ordering::Relaxed),
            "total_error_replies" => failed,
        }
    }

    if want.has("replication") {
        header(&mut s, "Replication");
        for (k, v) in super::replication::info_fields(cfg.get_i64("min-replicas-to-write")) {
            let _ = write!(s, "{k}:{v}\r\n");
        }
    }

    if want.has("cpu") {
        header(&mut s, "CPU");
        let (sys, user) = rusage(libc::RUSAGE_SELF);
        let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
        let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
        kv! {
            "used_cpu_sys" => sys,
            "used_cpu_user" => user,
            "used_cpu_sys_children" => csys,
            "used_cpu_user_children" => cuser,
            "used_cpu_sys_main_thread" => tsys,
            "used_cpu_user_main_thread" => tuser,
        }
    }

    if want.has("module_list") || want.has("modules") {
        header(&mut s, "Modules");
    }

    if want.has("commandstats") {
        header(&mut s, "Commandstats");
        for (i, c) in table().commands.iter().enumerate() {
            let get = |v: fn(&crate::server::ThreadStats) -> &Vec<AtomicU64>| -> u64 {
                srv.stats
                    .iter()
                    .map(|st| v(st).get(i).map_or(0, |a| a.load(Ordering::Relaxed)))
                    .sum()
            };
            let calls = get(|s| &s.cmd_calls);
            let usec = get(|s| &s.cmd_usec);
            let failed = get(|s| &s.cmd_failed);
            let rejected = get(|s| &s.cmd_rejected);
            if calls == 0 && failed == 0 && rejected == 0 {
                continue;
            }
            let per = if calls == 0 {
                0.0
            } else {
                usec as f32 / calls as f32
            };
            let _ = write!(
                s,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                c.name
            );
        }
    }

    if want.has("errorstats") {
        header(&mut s, "Errorstats");
        for (k, n) in crate::server::ops::merged_errors(srv) {
            let _ = write!(s, "errorstat_{}:count={n}\r\n", safe_info_string(&k));
        }
    }

    if want.has("latencystats") {
        header(&mut s, "Latencystats");
        if cfg.get_bool("latency-tracking") {
            let percentiles: Vec<f64> = cfg
                .get("latency-tracking-info-percentiles")
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            for (name, h) in crate::server::ops::merged_histograms(srv) {
                let _ = write!(s, "latency_percentiles_usec_{}:", safe_info_string(&name));
                for (j, p) in percentiles.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    let _ = write!(
                        s,
                        "p{}={:.3}",
                        trim_double(*p),
                        crate::server::ops::percentile_us(&h, *p)
                    );
                }
                s.push_str("\r\n");
            }
        }
    }

    if want.has("cluster") {
        header(&mut s, "Cluster");
        kv! { "cluster_enabled" => srv.cluster.is_some() as u8 }
    }

    if want.has("keyspace") {
        header(&mut s, "Keyspace");
        for (d, (keys, expires, ttl)) in t.keys.iter().enumerate() {
            if *keys > 0 || *expires > 0 {
                // Every shard's estimate, weighted by its keys with a TTL.
                let avg_ttl = if *expires > 0 {
                    ttl / *expires as u128
                } else {
                    0
                };
                let _ = write!(
                    s,
                    "db{d}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
                );
            }
        }
    }
    s
}

/// INFO's progress of the load in course, computed as Redis does (the
/// file's size, else the RDB's `used-mem` as a bad estimate of it).
fn loading_fields(s: &mut String, p: &crate::server::persist::LoadProgress) {
    let start = p.start_secs.load(Ordering::Relaxed);
    let total = p.total_bytes.load(Ordering::Relaxed);
    let used_mem = p.rdb_used_mem.load(Ordering::Relaxed);
    let loaded = p.loaded_bytes.load(Ordering::Relaxed);
    let (mut perc, mut remaining) = (0.0, 1i64);
    if total > 0 {
        perc = loaded as f64 / total as f64 * 100.0;
        remaining = total as i64 - loaded as i64;
    } else if used_mem > 0 {
        perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
        remaining = (used_mem as i64 - loaded as i64).max(1);
    }
    let elapsed = (crate::storage::now_ms() / 1000) as i64 - start;
    let eta = if elapsed == 0 {
        1
    } else {
        elapsed * remaining / (loaded as i64 + 1)
    };
    let _ = write!(
        s,
        "loading_start_time:{start}\r\nloading_total_bytes:{total}\r\n\
         loading_rdb_used_mem:{used_mem}\r\nloading_loaded_bytes:{loaded}\r\n\
         loading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n"
    );
}

/// Redis's getSafeInfoString: ':' and control characters become '_'.
fn safe_info_string(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ':' || c == '\r' || c == '\n' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// "%f" then trimDoubleString: 99.9 -> "99.9", 50 -> "50".
fn trim_double(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

/// INFO [section ...]
pub fn info(ctx: &mut Ctx, args: &[Bytes]) {
    let text = gen_info(ctx, &args[1..]);
    ctx.out.verbatim(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(bytes_to_human(1000), "1000B");
        assert_eq!(bytes_to_human(916256), "894.78K");
        assert_eq!(bytes_to_human(12173312), "11.61M");
        assert_eq!(bytes_to_human(25276514304), "23.54G");
    }

    #[test]
    fn memory_is_measured() {
        let m = mem_snapshot();
        assert!(m.used > 0 && m.rss > 0);
    }
}
