//! The append-only file: Redis 7's multi-part AOF (a manifest, one base,
//! incremental files), written from the replication core's merged stream.
//!
//! The merge thread (`replication::master`) hands every record, in LSN
//! order, to `feed`, which encodes it into a pending buffer (SELECT where
//! the DB changes, MULTI/EXEC around more than one effect, scripts in
//! their EVAL form): the AOF and the replicas see the same order and the
//! same atomic units. The `keel-aof` thread writes the pending buffer to
//! the current incremental file and fsyncs it per `appendfsync`; whatever
//! accumulated while it wrote (from every shard) goes out with the next
//! write and fsync: group commit. `SYNCED` is the LSN below which every
//! record is on disk; with `always` a connection holds its replies until
//! it passes the records its batch made.

mod cycle;
pub mod load;
pub mod manifest;
pub mod rewrite;

pub use cycle::{
    rewrite_begin, rewrite_done, rewrite_due, rewrite_in_progress, schedule_rewrite,
    set_auto_gc_disabled,
};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use manifest::Manifest;

use crate::replication::Effect;
use crate::server::Server;
use crate::server::stores::View;
use crate::storage::ShardStore;

pub const FSYNC_NO: u8 = 0;
pub const FSYNC_EVERYSEC: u8 = 1;
pub const FSYNC_ALWAYS: u8 = 2;

/// The AOF is on (records are fed and written).
static ENABLED: AtomicBool = AtomicBool::new(false);
static POLICY: AtomicU8 = AtomicU8::new(FSYNC_EVERYSEC);
/// Every record with an LSN below this is written (and fsynced with
/// `always`).
static SYNCED: AtomicU64 = AtomicU64::new(0);
/// The last write or fsync failed (INFO aof_last_write_status; writes are
/// refused while set).
static WRITE_ERR: AtomicBool = AtomicBool::new(false);
/// The writer is inside an fsync (aof_pending_bio_fsync).
static FSYNCING: AtomicBool = AtomicBool::new(false);
/// Everysec fsyncs that had to wait for a previous one (aof_delayed_fsync).
static DELAYED_FSYNC: AtomicU64 = AtomicU64::new(0);
/// Connections waiting (with `always`) for `SYNCED` to reach an LSN: the
/// writer wakes them when it publishes, instead of their polling a timer.
static WAITERS: Mutex<Vec<(u64, Waker)>> = Mutex::new(Vec::new());
/// `no-appendfsync-on-rewrite yes`: no fsync while a rewrite child runs
/// (writes still go to the file, as stock).
pub static NO_FSYNC_ON_REWRITE: AtomicBool = AtomicBool::new(false);
/// DEBUG AOF-FLUSH-SLEEP: microseconds the writer sleeps before each write.
static FLUSH_SLEEP_US: AtomicU64 = AtomicU64::new(0);

pub struct Aof {
    dir: PathBuf,
    prefix: String,
    pending: Mutex<Pending>,
    cond: Condvar,
    io: Mutex<Io>,
    pub stats: Stats,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// The LSN after the last record in `buf`.
    end_lsn: u64,
    /// The DB the file has selected (-1: the next record sends SELECT).
    seldb: i32,
    last_ts: u64,
    /// A rewrite began at this offset of `buf`: what follows goes to a new
    /// incremental file.
    rotate_at: Option<usize>,
}

struct Io {
    file: Option<File>,
    manifest: Manifest,
    /// Bytes written to the current incremental file.
    incr_size: u64,
    /// Size of every file of the AOF (aof_current_size).
    total_size: u64,
    last_fsync: Instant,
    /// The first incremental file made by the running rewrite (0: none yet).
    rewrite_incr_seq: i64,
    /// The base the running rewrite's child writes.
    rewrite_base: Option<manifest::FileInfo>,
    /// Turned on at run time, waiting for its first rewrite: the manifest
    /// on disk is not touched until the new base exists.
    starting: bool,
    /// The running rewrite is BGREWRITEAOF with `appendonly no`.
    offline: bool,
}

#[derive(Default)]
pub struct Stats {
    pub base_size: AtomicU64,
    pub current_size: AtomicU64,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    pub rewrites: AtomicU64,
    pub rewrite_failures: AtomicU64,
    pub last_rewrite_ok: AtomicBool,
    pub last_rewrite_secs: AtomicI64,
    pub rewrite_start_ms: AtomicU64,
}

static AOF: OnceLock<Aof> = OnceLock::new();

pub fn get() -> Option<&'static Aof> {
    AOF.get()
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

pub fn synced_lsn() -> u64 {
    SYNCED.load(Ordering::Acquire)
}

pub fn write_failed() -> bool {
    ENABLED.load(Ordering::Relaxed) && WRITE_ERR.load(Ordering::Relaxed)
}

pub fn delayed_fsyncs() -> u64 {
    DELAYED_FSYNC.load(Ordering::Relaxed)
}

/// CONFIG SET appendfsync.
pub fn set_policy(name: &str) {
    POLICY.store(policy_of(name), Ordering::Relaxed);
    if let Some(a) = AOF.get() {
        a.cond.notify_all();
    }
    wake_waiters();
}

/// DEBUG AOF-FLUSH-SLEEP <microsec>.
pub fn set_flush_sleep(us: u64) {
    FLUSH_SLEEP_US.store(us, Ordering::Relaxed);
}

/// Every record below `end` is on disk: publishes it and wakes the
/// connections that waited for it.
fn publish(end: u64) {
    SYNCED.fetch_max(end, Ordering::AcqRel);
    wake_waiters();
}

/// Wakes the waiters whose LSN is synced (all of them when the AOF is off).
fn wake_waiters() {
    let synced = SYNCED.load(Ordering::Acquire);
    let all = !enabled();
    let ready: Vec<Waker> = {
        let mut w = WAITERS.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_empty() {
            return;
        }
        let (ready, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut *w)
            .into_iter()
            .partition(|(lsn, _)| all || *lsn <= synced);
        *w = keep;
        ready.into_iter().map(|(_, wk)| wk).collect()
    };
    for wk in ready {
        wk.wake();
    }
}

fn policy_of(name: &str) -> u8 {
    match name {
        "always" => FSYNC_ALWAYS,
        "no" => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    }
}

fn paths(srv: &Server) -> (PathBuf, String) {
    let c = srv.config.read().unwrap();
    let dir = Path::new(c.get("dir")).join(c.get("appenddirname"));
    (dir, c.get("appendfilename").to_string())
}

fn read_manifest(dir: &Path, prefix: &str) -> Result<Manifest, String> {
    let path = dir.join(format!("{prefix}.manifest"));
    match std::fs::read(&path) {
        Ok(t) => Manifest::parse(&t).map_err(|(n, line, err)| {
            // Stock's block, line by line.
            crate::log::warning("\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
            if n > 0 {
                crate::log::warning(&format!("Reading the manifest file, at line {n}\n"));
                crate::log::warning(&format!(">>> '{line}'\n"));
            }
            crate::log::warning(&format!("{err}\n"));
            "the AOF manifest could not be read".to_string()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(format!(
            "Fatal error: can't open the AOF manifest {}: {e}",
            path.display()
        )),
    }
}

/// Writes the manifest through a temp file, fsync, rename, fsync of the dir.
fn write_manifest(dir: &Path, prefix: &str, m: &Manifest) -> std::io::Result<()> {
    let tmp = dir.join(format!("temp-{prefix}.manifest"));
    let path = dir.join(format!("{prefix}.manifest"));
    let mut f = File::create(&tmp)?;
    f.write_all(m.render().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()
}

/// `aof-use-rdb-preamble`: new bases are RDB files (else commands).
fn preamble(srv: &Server) -> bool {
    srv.config.read().unwrap().get_bool("aof-use-rdb-preamble")
}

/// Writes a new base at `path`: an RDB for a `.rdb` name, else commands.
pub fn write_base(srv: &Server, stores: &[&ShardStore], path: &Path) -> std::io::Result<()> {
    if path.extension().is_some_and(|e| e == "rdb") {
        crate::server::persist::write_rdb(srv, stores, &path.to_path_buf(), None)
    } else {
        rewrite::write_base(srv, stores, path)
    }
}

/// The temp files a rewrite child `pid` writes its base through.
pub fn temp_files(pid: i32) -> Vec<PathBuf> {
    AOF.get().map_or(Vec::new(), |a| {
        vec![
            a.dir.join(format!("temp-{pid}.rdb")),
            a.dir.join(format!("temp-rewriteaof-{pid}.aof")),
        ]
    })
}

/// Startup with `appendonly yes`: loads the AOF the manifest names into the
/// stores (before any shard runs). Ok(true) when it held data.
pub fn load_at_startup(
    srv: &Server,
    stores: &mut crate::server::stores::View<'_>,
) -> Result<bool, String> {
    let (dir, prefix) = paths(srv);
    let mut m = read_manifest(&dir, &prefix)?;
    upgrade_single_file(srv, &dir, &prefix, &mut m)?;
    srv.persist.loading.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let r = load::load_all(srv, &dir, &m, stores);
    srv.persist.loading.store(false, Ordering::Relaxed);
    match r? {
        None => Ok(false),
        Some(o) => {
            crate::log::notice(&format!(
                "DB loaded from append only file: {:.3} seconds",
                start.elapsed().as_secs_f64()
            ));
            let _ = o;
            Ok(true)
        }
    }
}

/// A pre-7.0 single `appendonly.aof` in `dir` becomes the base of the
/// multi-part directory, in the cases stock upgrades (no directory, no
/// files listed, or only that base listed and not yet moved): the manifest
/// names it first, then the file moves in.
fn upgrade_single_file(
    srv: &Server,
    dir: &Path,
    prefix: &str,
    m: &mut Manifest,
) -> Result<(), String> {
    let old = Path::new(srv.config.read().unwrap().get("dir")).join(prefix);
    if !old.is_file() {
        return Ok(());
    }
    let listed_not_moved = m.incrs.is_empty()
        && m.base.as_ref().is_some_and(|b| b.name == prefix)
        && !dir.join(prefix).exists();
    let empty = m.base.is_none() && m.incrs.is_empty();
    if dir.is_dir() && !empty && !listed_not_moved {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    m.base = Some(manifest::FileInfo {
        name: prefix.to_string(),
        seq: 1,
        kind: b'b',
    });
    m.base_seq = 1;
    write_manifest(dir, prefix, m).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    std::fs::rename(&old, dir.join(prefix)).map_err(|e| {
        format!(
            "Error trying to move the old AOF file {prefix} into dir {}: {e}",
            dir.display()
        )
    })?;
    crate::log::notice(&format!(
        "Successfully migrated an old-style AOF file ({prefix}) into the AOF directory ({}).",
        dir.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().to_string())
    ));
    Ok(())
}

/// Opens the AOF for appending (startup with `appendonly yes`, after the
/// load, before any shard runs): creates the directory, a base holding the
/// stores when there is none, the incremental file, the manifest; then
/// starts the writer and turns on the records it is fed from.
pub fn start(srv: &'static Server, stores: &[&ShardStore]) -> Result<(), String> {
    let (dir, prefix) = paths(srv);
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    let mut m = read_manifest(&dir, &prefix)?;
    if m.base.is_none() && m.incrs.is_empty() {
        let base = m.new_base(&prefix, preamble(srv));
        write_base(srv, stores, &dir.join(&base.name))
            .map_err(|e| format!("Can't write the AOF base file {}: {e}", base.name))?;
        crate::log::notice(&format!(
            "Creating AOF base file {} on server start",
            base.name
        ));
    }
    let created = m.incrs.is_empty();
    if created {
        m.new_incr(&prefix);
    }
    let incr = m.incrs.last().unwrap().name.clone();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(&incr))
        .map_err(|e| format!("Can't open the append-only file {incr}: {e}"))?;
    write_manifest(&dir, &prefix, &m)
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    crate::log::notice(&format!(
        "{} AOF incr file {incr} on server start",
        if created { "Creating" } else { "Opening" }
    ));
    let incr_size = file.metadata().map(|md| md.len()).unwrap_or(0);
    let base_size = m
        .base
        .as_ref()
        .and_then(|b| std::fs::metadata(dir.join(&b.name)).ok())
        .map_or(0, |md| md.len());
    let total_size = files_size(&dir, &m);
    install(srv, dir, prefix, Some(file), m, incr_size)?;
    let a = AOF.get().unwrap();
    a.stats.base_size.store(base_size, Ordering::Relaxed);
    a.stats.current_size.store(total_size, Ordering::Relaxed);
    SYNCED.store(crate::replication::next_lsn(), Ordering::Release);
    ENABLED.store(true, Ordering::Release);
    crate::replication::master::enable_records();
    Ok(())
}

/// Creates the AOF state and its writer thread (once per process).
fn install(
    srv: &Server,
    dir: PathBuf,
    prefix: String,
    file: Option<File>,
    m: Manifest,
    incr_size: u64,
) -> Result<(), String> {
    let total_size = files_size(&dir, &m);
    let policy = policy_of(srv.config.read().unwrap().get("appendfsync"));
    let aof = Aof {
        dir,
        prefix,
        pending: Mutex::new(Pending {
            seldb: -1,
            ..Default::default()
        }),
        cond: Condvar::new(),
        io: Mutex::new(Io {
            file,
            starting: false,
            offline: false,
            manifest: m,
            incr_size,
            total_size,
            last_fsync: Instant::now(),
            rewrite_incr_seq: 0,
            rewrite_base: None,
        }),
        stats: Stats {
            last_rewrite_ok: AtomicBool::new(true),
            last_rewrite_secs: AtomicI64::new(-1),
            ..Default::default()
        },
    };
    if AOF.set(aof).is_err() {
        return Err("the AOF was started twice".into());
    }
    POLICY.store(policy, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("keel-aof".into())
        .spawn(|| writer_loop(AOF.get().unwrap()))
        .map_err(|e| format!("can't start the AOF thread: {e}"))?;
    Ok(())
}

fn files_size(dir: &Path, m: &Manifest) -> u64 {
    m.base
        .iter()
        .chain(m.incrs.iter())
        .filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok())
        .map(|md| md.len())
        .sum()
}

/// Called by the merge thread for each record, in LSN order (`lsn` is the
/// record's).
pub fn feed(lsn: u64, effects: &[Effect]) {
    if !enabled() {
        return;
    }
    let Some(a) = AOF.get() else { return };
    let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
    let p = &mut *p;
    if TIMESTAMPS.load(Ordering::Relaxed) {
        let now = crate::storage::now_ms() / 1000;
        if now != p.last_ts {
            p.last_ts = now;
            p.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
        }
    }
    let multi = effects.len() > 1;
    let mut select = |buf: &mut Vec<u8>, db: i32| {
        if db >= 0 && db != p.seldb {
            let d = db.to_string();
            buf.extend_from_slice(&crate::replication::encode(&[
                b"SELECT".as_slice(),
                d.as_bytes(),
            ]));
            p.seldb = db;
        }
    };
    if multi {
        select(&mut p.buf, effects[0].db);
        p.buf.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
    }
    for e in effects {
        select(&mut p.buf, e.db);
        // The file has no script cache: a verbatim script goes as EVAL.
        match &e.eval_form {
            Some((_, eval)) => p.buf.extend_from_slice(eval),
            None => p.buf.extend_from_slice(&e.resp),
        }
    }
    if multi {
        p.buf.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
    }
    p.end_lsn = lsn + 1;
    a.cond.notify_one();
}

/// A replica applied one command of its master's stream (every shard held,
/// in stream order): the file gets it as stock's replica logs what it
/// applies, with its own SELECTs. Pings and REPLCONF are not data.
pub fn feed_applied(db: usize, args: &[bytes::Bytes], resp: &[u8]) {
    if !enabled() {
        return;
    }
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"ping") || name.eq_ignore_ascii_case(b"replconf") {
        return;
    }
    let Some(a) = AOF.get() else { return };
    let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
    let db = db as i32;
    if db != p.seldb {
        let d = db.to_string();
        let sel = crate::replication::encode(&[b"SELECT".as_slice(), d.as_bytes()]);
        p.buf.extend_from_slice(&sel);
        p.seldb = db;
    }
    p.buf.extend_from_slice(resp);
    a.cond.notify_one();
}

/// A replica loaded its master's full sync (every shard held): the files
/// hold the old dataset, so nothing more is appended to them; a rewrite
/// writes a base of the new one and the manifest switches to it (as
/// stock's stop and restart of the AOF). Until then a crash finds the old
/// files, whole.
pub fn restart_after_full_sync(srv: &Server) {
    let Some(a) = AOF.get().filter(|_| enabled()) else {
        return;
    };
    if rewrite_in_progress() {
        crate::server::persist::kill_child(srv);
    }
    {
        let mut io = a.lock_io();
        io.file = None;
        io.starting = true;
        io.incr_size = 0;
    }
    {
        let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.buf.clear();
        p.rotate_at = None;
        p.seldb = -1;
    }
    a.stats.rewrite_scheduled.store(true, Ordering::Release);
    crate::log::notice("AOF: a new base follows the full sync from the master");
}

/// `aof-timestamp-enabled` (read by the merge thread without the config lock).
pub static TIMESTAMPS: AtomicBool = AtomicBool::new(false);

impl Aof {
    fn lock_io(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what is pending to the current file (the caller holds `io`),
    /// fsyncing it when `sync`. Returns the LSN it covers.
    fn write_pending(&self, io: &mut Io, sync: bool) -> Option<u64> {
        let (mut buf, end, rotate) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut p.buf), p.end_lsn, p.rotate_at.take())
        };
        if let Some(at) = rotate {
            let rest = buf.split_off(at);
            self.write_buf(io, buf, true)?;
            if let Err(e) = self.open_next_incr(io) {
                crate::log::warning(&format!("Can't open a new AOF incr file: {e}"));
                // Keep appending to the current file; the rewrite fails.
                io.rewrite_incr_seq = -1;
            }
            buf = rest;
        }
        self.write_buf(io, buf, sync)?;
        if WRITE_ERR.swap(false, Ordering::AcqRel) {
            crate::log::warning("AOF write error looks solved, Redis can write again.");
        }
        Some(end)
    }

    /// The rewrite's switch: a new incremental file, in the manifest at once.
    fn open_next_incr(&self, io: &mut Io) -> std::io::Result<()> {
        let mut m = io.manifest.clone();
        let f = m.new_incr(&self.prefix);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join(&f.name))?;
        if !io.starting {
            write_manifest(&self.dir, &self.prefix, &m)?;
        }
        io.manifest = m;
        io.file = Some(file);
        io.incr_size = 0;
        io.rewrite_incr_seq = f.seq;
        crate::log::notice(&format!(
            "Creating AOF incr file {} on background rewrite",
            f.name
        ));
        Ok(())
    }

    fn write_buf(&self, io: &mut Io, buf: Vec<u8>, sync: bool) -> Option<()> {
        let Some(file) = io.file.as_mut() else {
            // Off, or on and waiting for its first incr file: nothing to write.
            return Some(());
        };
        if !buf.is_empty() {
            let sleep = FLUSH_SLEEP_US.load(Ordering::Relaxed);
            if sleep > 0 {
                std::thread::sleep(Duration::from_micros(sleep));
            }
            if let Err(e) = file.write_all(&buf) {
                self.write_error(&e, &buf);
                return None;
            }
            io.incr_size += buf.len() as u64;
            io.total_size += buf.len() as u64;
            self.stats
                .current_size
                .store(io.total_size, Ordering::Relaxed);
        }
        if sync {
            FSYNCING.store(true, Ordering::Relaxed);
            let t = Instant::now();
            let r = file.sync_data();
            FSYNCING.store(false, Ordering::Relaxed);
            if let Err(e) = r {
                self.write_error(&e, &[]);
                return None;
            }
            // An fsync past a second held back the next everysec one.
            if t.elapsed() > Duration::from_secs(1) {
                DELAYED_FSYNC.fetch_add(1, Ordering::Relaxed);
            }
            io.last_fsync = Instant::now();
        }
        Some(())
    }

    fn write_error(&self, e: &std::io::Error, lost: &[u8]) {
        if POLICY.load(Ordering::Relaxed) == FSYNC_ALWAYS {
            crate::log::warning(&format!(
                "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting... ({e})"
            ));
            std::process::exit(1);
        }
        crate::log::warning(&format!(
            "Error writing to the AOF file: {e} ({} bytes lost)",
            lost.len()
        ));
        WRITE_ERR.store(true, Ordering::Release);
        // Keep the bytes for the next attempt.
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut again = lost.to_vec();
        again.extend_from_slice(&p.buf);
        p.buf = again;
    }
}

/// The `keel-aof` thread: writes and fsyncs per policy.
fn writer_loop(a: &'static Aof) {
    loop {
        {
            let p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.buf.is_empty() {
                let _ = a
                    .cond
                    .wait_timeout(p, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        if !enabled() {
            continue;
        }
        let policy = POLICY.load(Ordering::Relaxed);
        let mut io = a.lock_io();
        let held = NO_FSYNC_ON_REWRITE.load(Ordering::Relaxed)
            && a.stats.rewrite_in_progress.load(Ordering::Relaxed);
        let due = !held
            && (policy == FSYNC_ALWAYS
                || (policy == FSYNC_EVERYSEC && io.last_fsync.elapsed() >= Duration::from_secs(1)));
        if let Some(end) = a.write_pending(&mut io, due) {
            publish(end);
        } else if WRITE_ERR.load(Ordering::Relaxed) {
            drop(io);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Set by CONFIG SET appendonly yes: shard 0's cron starts the rewrite
/// that turns the AOF on (as Redis: the first base, then appends).
static START_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Startup is over: CONFIG SET appendonly acts from now on.
static BOOTED: AtomicBool = AtomicBool::new(false);

pub fn booted() {
    BOOTED.store(true, Ordering::Release);
}

/// After CONFIG SET: `appendonly` turned on or off.
pub fn config_changed(srv: &Server, on: bool) {
    if !BOOTED.load(Ordering::Acquire) {
        return;
    }
    if on {
        if !enabled() {
            START_REQUESTED.store(true, Ordering::Release);
        }
        return;
    }
    START_REQUESTED.store(false, Ordering::Release);
    if !enabled() {
        return;
    }
    if rewrite_in_progress() {
        crate::server::persist::kill_child(srv);
    }
    let Some(a) = AOF.get() else { return };
    let mut io = a.lock_io();
    if let Some(end) = a.write_pending(&mut io, true) {
        publish(end);
    }
    ENABLED.store(false, Ordering::Release);
    wake_waiters();
    io.file = None;
    let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
    p.buf.clear();
    p.rotate_at = None;
    p.seldb = -1;
    crate::log::notice("AOF turned off (CONFIG SET appendonly no)");
}

/// CONFIG SET appendonly yes, at the first rewrite's cut (every shard
/// parked): records are fed from here on; the new incr file and the
/// manifest follow from the rewrite.
fn turn_on_at_cut(srv: &Server) -> Result<(), String> {
    let (dir, prefix) = paths(srv);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("ERR Can't open or create append-only dir: {e}"))?;
    let m = read_manifest(&dir, &prefix).unwrap_or_default();
    match AOF.get() {
        None => install(srv, dir, prefix, None, m, 0).map_err(|e| format!("ERR {e}"))?,
        Some(a) => {
            let mut io = a.lock_io();
            io.manifest = m;
            io.file = None;
            io.incr_size = 0;
        }
    }
    let a = AOF.get().unwrap();
    a.lock_io().starting = true;
    {
        let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.buf.clear();
        p.seldb = -1;
    }
    SYNCED.store(crate::replication::next_lsn(), Ordering::Release);
    ENABLED.store(true, Ordering::Release);
    START_REQUESTED.store(false, Ordering::Release);
    // A replica's file is fed what it applies, not records of its own.
    if !crate::replication::replica::is_replica() {
        crate::replication::master::enable_records();
    }
    crate::log::notice("AOF turned on (CONFIG SET appendonly yes): writing its first base");
    Ok(())
}

/// CONFIG SET appendonly yes asked for the first rewrite, not started yet.
pub fn start_pending() -> bool {
    START_REQUESTED.load(Ordering::Acquire) && !enabled()
}

/// Before exiting (every shard held, the stream frozen at a cut): writes
/// and fsyncs everything fed so far.
pub fn flush_at_shutdown() {
    let Some(a) = AOF.get() else { return };
    if !enabled() {
        return;
    }
    let mut io = a.lock_io();
    if let Some(end) = a.write_pending(&mut io, true) {
        publish(end);
    }
}

/// DEBUG LOADAOF (every shard held): writes what is pending, empties the
/// stores and the function libraries and loads the AOF directory again.
/// A load that fails (or finds no AOF) ends the process, as stock.
pub fn debug_loadaof(srv: &Server, stores: &mut View<'_>) {
    // Every record made before this command reaches the file first.
    crate::replication::master::cut(false);
    flush_at_shutdown();
    for store in stores.all_mut() {
        for db in store.dbs.iter_mut() {
            db.clear();
        }
    }
    crate::server::persist::load_functions(&[]);
    let (dir, prefix) = paths(srv);
    let r = read_manifest(&dir, &prefix).and_then(|m| {
        // As stock, a load: the other clients get -LOADING meanwhile (a
        // slow script in the file answers them from its busy hook).
        crate::server::persist::start_loading(srv, files_size(&dir, &m));
        let r = load::load_all(srv, &dir, &m, stores);
        crate::server::persist::stop_loading(srv);
        r
    });
    match r {
        Ok(Some(_)) => {}
        Ok(None) => {
            crate::log::warning("DEBUG LOADAOF: there is no AOF to load. Exiting.");
            std::process::exit(1);
        }
        Err(e) => {
            crate::log::warning(&e);
            std::process::exit(1);
        }
    }
    // Not a change to persist or propagate: as stock (`dirty = 0`).
    for store in stores.all_mut() {
        store.dirty = 0;
    }
    crate::replication::discard_effects();
    crate::log::warning("Append Only File loaded by DEBUG LOADAOF");
}

/// Waits (on a shard's executor) until every record below `lsn` is
/// written (and fsynced with `always`), or the AOF is off: as stock, whose
/// replies leave after beforeSleep's write, an acknowledged write survives
/// a crash of the process. The writer wakes the task when it publishes (a
/// foreign wake: the executor's eventfd).
pub async fn wait_synced(lsn: u64) {
    let done = || !enabled() || SYNCED.load(Ordering::Acquire) >= lsn;
    std::future::poll_fn(|cx| {
        if done() {
            return Poll::Ready(());
        }
        WAITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((lsn, cx.waker().clone()));
        // Published between the check and the push: the writer may have
        // missed this waiter (a leftover entry is dropped at the next wake).
        if done() {
            return Poll::Ready(());
        }
        if let Some(a) = AOF.get() {
            a.cond.notify_one();
        }
        Poll::Pending
    })
    .await
}

/// INFO persistence's aof_* fields.
pub fn info_fields(srv: &Server) -> Vec<(&'static str, String)> {
    let on = enabled();
    let a = AOF.get();
    let st = a.map(|a| &a.stats);
    let b = |f: fn(&Stats) -> bool| st.is_some_and(f);
    let rewriting = b(|s| s.rewrite_in_progress.load(Ordering::Relaxed));
    let mut v = vec![
        (
            "aof_enabled",
            ((on || START_REQUESTED.load(Ordering::Relaxed)) as i32).to_string(),
        ),
        ("aof_rewrite_in_progress", (rewriting as i32).to_string()),
        (
            "aof_rewrite_scheduled",
            // CONFIG SET appendonly yes: its first rewrite waits for the cron.
            ((b(|s| s.rewrite_scheduled.load(Ordering::Relaxed))
                || (START_REQUESTED.load(Ordering::Relaxed) && !on)
                || cycle::OFFLINE_SCHEDULED.load(Ordering::Relaxed)) as i32)
                .to_string(),
        ),
        (
            "aof_last_rewrite_time_sec",
            st.map_or(-1, |s| s.last_rewrite_secs.load(Ordering::Relaxed))
                .to_string(),
        ),
        (
            "aof_current_rewrite_time_sec",
            match st {
                Some(s) if rewriting => {
                    ((crate::storage::now_ms() - s.rewrite_start_ms.load(Ordering::Relaxed)) / 1000)
                        .to_string()
                }
                _ => "-1".into(),
            },
        ),
        (
            "aof_last_bgrewrite_status",
            if st.is_none_or(|s| s.last_rewrite_ok.load(Ordering::Relaxed)) {
                "ok"
            } else {
                "err"
            }
            .into(),
        ),
        (
            "aof_rewrites",
            st.map_or(0, |s| s.rewrites.load(Ordering::Relaxed))
                .to_string(),
        ),
        (
            "aof_rewrites_consecutive_failures",
            st.map_or(0, |s| s.rewrite_failures.load(Ordering::Relaxed))
                .to_string(),
        ),
        (
            "aof_last_write_status",
            if WRITE_ERR.load(Ordering::Relaxed) {
                "err"
            } else {
                "ok"
            }
            .into(),
        ),
    ];
    let _ = srv;
    if on && let Some(a) = a {
        let pending = a
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buf
            .len();
        v.push((
            "aof_current_size",
            a.stats.current_size.load(Ordering::Relaxed).to_string(),
        ));
        v.push((
            "aof_base_size",
            a.stats.base_size.load(Ordering::Relaxed).to_string(),
        ));
        v.push((
            "aof_pending_rewrite",
            (a.stats.rewrite_scheduled.load(Ordering::Relaxed) as i32).to_string(),
        ));
        v.push(("aof_buffer_length", pending.to_string()));
        v.push((
            "aof_pending_bio_fsync",
            (FSYNCING.load(Ordering::Relaxed) as i32).to_string(),
        ));
        v.push(("aof_delayed_fsync", delayed_fsyncs().to_string()));
    }
    v
}
