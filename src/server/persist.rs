//! RDB persistence in the running server: SAVE, fork-based BGSAVE at a
//! global cut, `save` rules, load at startup, save on shutdown.
//!
//! A snapshot is taken with every shard's gate held (the global cut: no
//! command runs anywhere). For BGSAVE the other shard threads are then
//! parked inside a message handler — a known point, not inside the
//! allocator or a mutation — while this thread forks. The child sees one
//! consistent image of every store, writes it with plain blocking I/O and
//! `_exit`s; the parent releases everything at once and carries on.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use super::Server;
use crate::rdb::{self, Limits, LoadOpts, SaveAux, SaveOpts};
use crate::replication::master::CutInfo;
use crate::storage::{ShardStore, slot::key_shard};

/// Persistence state shared by all shards.
#[derive(Default)]
pub struct Persist {
    /// Pid of the BGSAVE child, 0 when none.
    pub child_pid: AtomicI32,
    pub child_start_ms: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_secs: AtomicI64,
    /// BGSAVE SCHEDULE while a child runs: start one when it ends.
    pub scheduled: AtomicBool,
    pub saves: AtomicU64,
    /// Each shard's `dirty` counter, published by its cron (save rules).
    pub dirty: Vec<AtomicU64>,
    /// Each shard's `dirty` at the last fork, and a generation bumped when
    /// that BGSAVE succeeded: shards then subtract what the file now holds.
    pub dirty_at_fork: Vec<AtomicU64>,
    pub saved_gen: AtomicU64,
    /// Set by SIGTERM/SIGINT: shard 0 saves (if rules say so) and exits.
    pub shutdown_requested: AtomicBool,
    pub loading: AtomicBool,
    /// The running child streams a full sync to a replica's socket
    /// (diskless): not a save of the dataset file.
    pub child_to_socket: AtomicBool,
    /// The running child writes a new AOF base (BGREWRITEAOF).
    pub child_aof: AtomicBool,
    /// (pid << 1) | ok of the last child reaped.
    pub last_child: AtomicU64,
    /// (keys loaded << 32) | keys expired, of the last load at startup.
    pub last_load: AtomicU64,
    /// Forks done (BGSAVE, full syncs) and how long the last one took
    /// (INFO total_forks, latest_fork_usec).
    pub forks: AtomicU64,
    pub latest_fork_usec: AtomicU64,
    /// A replica's position (replid, offset, stream DB) read at startup.
    pub restored_position: std::sync::Mutex<Option<(String, i64, i64)>>,
    /// The load in course (INFO's loading_* fields while `loading`).
    pub progress: LoadProgress,
}

/// Redis's loading_start_time, loading_total_bytes, loading_rdb_used_mem
/// and loading_loaded_bytes.
#[derive(Default)]
pub struct LoadProgress {
    pub start_secs: AtomicI64,
    pub total_bytes: AtomicU64,
    pub rdb_used_mem: AtomicU64,
    pub loaded_bytes: AtomicU64,
}

/// Marks a load of `total` bytes (0: unknown) as started.
pub fn start_loading(srv: &Server, total: u64) {
    let p = &srv.persist.progress;
    p.start_secs
        .store((crate::storage::now_ms() / 1000) as i64, Ordering::Relaxed);
    p.total_bytes.store(total, Ordering::Relaxed);
    p.rdb_used_mem.store(0, Ordering::Relaxed);
    p.loaded_bytes.store(0, Ordering::Relaxed);
    srv.persist.loading.store(true, Ordering::Release);
}

pub fn stop_loading(srv: &Server) {
    srv.persist.loading.store(false, Ordering::Release);
}

/// A load while the server runs (DEBUG RELOAD, a replica's full sync):
/// `loading` from here until dropped, so the other shards' clients get
/// -LOADING meanwhile.
struct Loading<'a>(&'a Server);

impl<'a> Loading<'a> {
    fn start(srv: &'a Server, f: &std::fs::File) -> Loading<'a> {
        start_loading(srv, f.metadata().map(|m| m.len()).unwrap_or(0));
        Loading(srv)
    }
    fn reader(&self, f: std::fs::File) -> Counted<'a, std::io::BufReader<std::fs::File>> {
        Counted {
            inner: std::io::BufReader::with_capacity(1 << 20, f),
            bytes: &self.0.persist.progress.loaded_bytes,
        }
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        stop_loading(self.0);
    }
}

/// Counts the bytes the RDB parser consumes into `loading_loaded_bytes`.
struct Counted<'a, R> {
    inner: R,
    bytes: &'a AtomicU64,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The RDB `used-mem` aux field: Redis's estimate of the progress when
/// the size is unknown (a replica's diskless load).
fn note_used_mem(srv: &Server, k: &[u8], v: &[u8]) {
    if k == b"used-mem"
        && let Some(n) = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok())
    {
        srv.persist
            .progress
            .rdb_used_mem
            .store(n, Ordering::Relaxed);
    }
}

/// Redis's `key-load-delay`: µs per key; negative n sleeps 1 µs once per
/// -n keys on average.
fn key_load_delay(usec: i64, n: u64) {
    let us = match usec {
        0 => return,
        u if u < 0 => n.is_multiple_of(u.unsigned_abs()) as u64,
        u => u as u64,
    };
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

impl Persist {
    pub fn new(nshards: usize) -> Persist {
        Persist {
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            dirty: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            dirty_at_fork: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    pub fn bgsave_in_progress(&self) -> bool {
        self.child_pid.load(Ordering::Acquire) != 0
    }
}

/// `dir/dbfilename`.
pub fn rdb_path(srv: &Server) -> PathBuf {
    let c = srv.config.read().unwrap();
    PathBuf::from(c.get("dir")).join(c.get("dbfilename"))
}

pub(crate) fn limits(srv: &Server) -> Limits {
    let c = srv.config.read().unwrap();
    let get = |n: &str| c.get_i64(n).max(0) as usize;
    Limits {
        hash_max_listpack_entries: get("hash-max-listpack-entries"),
        hash_max_listpack_value: get("hash-max-listpack-value"),
        set_max_intset_entries: get("set-max-intset-entries"),
        zset_max_listpack_entries: get("zset-max-listpack-entries"),
        zset_max_listpack_value: get("zset-max-listpack-value"),
    }
}

/// The `save` rules as (seconds, changes) pairs.
pub fn save_rules(srv: &Server) -> Vec<(u64, u64)> {
    let c = srv.config.read().unwrap();
    let w: Vec<u64> = c
        .get("save")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    w.chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (p[0], p[1]))
        .collect()
}

/// Writes every store to `path` atomically (temp file, fsync, rename).
/// Only plain blocking I/O: safe in a forked child.
pub fn write_rdb(
    srv: &Server,
    stores: &[&ShardStore],
    path: &PathBuf,
    repl: Option<&CutInfo>,
) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!("temp-{}.rdb", std::process::id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        save_to(&mut w, srv, stores, repl)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The RDB of `stores`, with the stream position `repl` in its AUX fields.
fn save_to(
    w: &mut impl Write,
    srv: &Server,
    stores: &[&ShardStore],
    repl: Option<&CutInfo>,
) -> std::io::Result<()> {
    let (compression, checksum, key_save_delay) = {
        let c = srv.config.read().unwrap();
        (
            c.get_bool("rdbcompression"),
            c.get_bool("rdbchecksum"),
            c.get_i64("rdb-key-save-delay"),
        )
    };
    let dbs = (0..srv.databases).flat_map(|d| stores.iter().map(move |s| (d, &s.dbs[d])));
    // Script bodies travel with the data, so EVALSHA keeps working after
    // a restart or on a replica loading this file.
    let lua = crate::scripting::Registry::global()
        .bodies()
        .into_iter()
        .map(|b| b.to_vec())
        .collect();
    let aux = SaveAux {
        used_mem: 0,
        lua,
        functions: crate::scripting::functions::codes()
            .into_iter()
            .map(|c| c.to_vec())
            .collect(),
        repl_id: repl.map(|c| c.replid.clone()),
        repl_offset: repl.map_or(0, |c| c.offset),
        repl_stream_db: repl.map_or(0, |c| c.stream_db),
        ..Default::default()
    };
    let opts = SaveOpts {
        compression,
        checksum,
        limits: limits(srv),
        now_ms: crate::storage::now_ms(),
        key_save_delay,
    };
    rdb::save(w, dbs, &aux, opts)
}

/// SAVE: writes the file now, with every shard held by the caller (so the
/// stream holds every write the file holds: a cut).
pub fn save_now(srv: &Server, stores: &mut [&mut ShardStore]) -> std::io::Result<()> {
    let path = rdb_path(srv);
    let refs: Vec<&ShardStore> = stores.iter().map(|s| &**s).collect();
    let repl = crate::replication::master::cut(false);
    match write_rdb(srv, &refs, &path, repl.as_ref()) {
        Ok(()) => {
            crate::log::notice("DB saved on disk");
            for s in stores.iter_mut() {
                s.dirty = 0;
            }
            srv.lastsave
                .store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
            srv.persist.saves.fetch_add(1, Ordering::Relaxed);
            srv.persist.last_bgsave_ok.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            crate::log::warning(&format!("Failed saving the DB: {e}"));
            Err(e)
        }
    }
}

/// Kills a running BGSAVE child (FLUSHALL, SHUTDOWN): its file would
/// resurrect data the user just removed.
pub fn kill_child(srv: &Server) {
    let pid = srv.persist.child_pid.swap(0, Ordering::AcqRel);
    if pid != 0 {
        crate::log::warning("Killing the background saving child");
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        remove_temp_files(srv, pid);
        if srv.persist.child_aof.swap(false, Ordering::AcqRel) {
            crate::aof::rewrite_done(srv, false);
        }
    }
}

/// A child that did not finish (killed, failed) leaves its temp file:
/// removed as stock's rdbRemoveTempFile / aofRemoveTempFile.
fn remove_temp_files(srv: &Server, pid: i32) {
    let rdb_tmp = rdb_path(srv).with_file_name(format!("temp-{pid}.rdb"));
    for f in std::iter::once(rdb_tmp).chain(crate::aof::temp_files(pid)) {
        let _ = std::fs::remove_file(f);
    }
}

/// FLUSHALL as Redis 7.0: stop a BGSAVE, then write the (empty) dataset when
/// save rules exist. Every shard is held.
pub fn after_flushall(srv: &Server, stores: &mut [&mut ShardStore]) {
    kill_child(srv);
    if !save_rules(srv).is_empty() {
        let _ = save_now(srv, stores);
    }
}

/// A replica's full sync: replaces every store's data with the master's
/// RDB at `path` (every shard held). Expired keys are kept: the master's
/// DELs remove them. The file loads into fresh DBs swapped in only once it
/// all loaded: a corrupt file (or a bad checksum found at its end) leaves
/// the old data, never a half-loaded set.
pub fn load_for_replica(
    srv: &Server,
    stores: &mut [&mut ShardStore],
    path: &std::path::Path,
) -> Result<rdb::LoadInfo, String> {
    let mut staged: Vec<Vec<crate::storage::Db>> = stores
        .iter()
        .map(|s| {
            s.dbs
                .iter()
                .map(|d| crate::storage::Db {
                    index: d.index,
                    replica_mode: d.replica_mode,
                    ..Default::default()
                })
                .collect()
        })
        .collect();
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let loading = Loading::start(srv, &f);
    let mut r = loading.reader(f);
    let opts = LoadOpts {
        limits: limits(srv),
        databases: srv.databases,
        drop_expired: false,
        now_ms: crate::storage::now_ms(),
        ..Default::default()
    };
    let n = stores.len();
    let delay = srv.config.read().unwrap().get_i64("key-load-delay");
    let mut seen = 0u64;
    let info = rdb::load(
        &mut r,
        &opts,
        |db, key, entry| {
            seen += 1;
            key_load_delay(delay, seen);
            let s = key_shard(&key, n);
            staged[s][db].insert_entry(&key, entry);
        },
        |k, v| note_used_mem(srv, k, v),
    )
    .map_err(|e| e.to_string())?;
    for (s, dbs) in stores.iter_mut().zip(staged) {
        for (old, mut new) in s.dbs.iter_mut().zip(dbs) {
            // The old data is dropped here, after the new one is complete.
            std::mem::swap(&mut old.dict, &mut new.dict);
        }
    }
    load_scripts(&info.lua);
    // A full sync replaces the libraries with the master's.
    load_functions(&info.functions);
    crate::log::notice(&format!(
        "Done loading RDB, keys loaded: {}, keys expired: 0.",
        info.keys_loaded
    ));
    Ok(info)
}

/// DEBUG RELOAD's options (stock's NOSAVE, NOFLUSH, MERGE).
#[derive(Clone, Copy, Debug)]
pub struct ReloadOpts {
    pub save: bool,
    pub flush: bool,
    /// Libraries of the file replace existing ones of the same name
    /// (without it, NOFLUSH meets "already exists" and fails).
    pub merge: bool,
}

/// DEBUG RELOAD: save, empty every store, load the file back (keys and
/// function libraries). Every shard is held.
pub fn debug_reload(
    srv: &Server,
    stores: &mut [&mut ShardStore],
    o: ReloadOpts,
) -> Result<(), String> {
    use crate::scripting::functions;
    if o.save {
        save_now(srv, stores).map_err(|e| format!("ERR Error trying to save the DB: {e}"))?;
    }
    if o.flush {
        for s in stores.iter_mut() {
            for db in s.dbs.iter_mut() {
                db.clear();
            }
        }
    }
    let path = rdb_path(srv);
    let f = std::fs::File::open(&path)
        .map_err(|e| format!("ERR Error trying to load the RDB dump: {e}"))?;
    let loading = Loading::start(srv, &f);
    let mut r = loading.reader(f);
    let opts = LoadOpts {
        limits: limits(srv),
        databases: srv.databases,
        ..Default::default()
    };
    let n = stores.len();
    let delay = srv.config.read().unwrap().get_i64("key-load-delay");
    let mut seen = 0u64;
    let info = rdb::load(
        &mut r,
        &opts,
        |db, key, entry| {
            seen += 1;
            key_load_delay(delay, seen);
            let s = key_shard(&key, n);
            stores[s].dbs[db].insert_entry(&key, entry);
        },
        |k, v| note_used_mem(srv, k, v),
    )
    .map_err(|e| format!("ERR Error trying to load the RDB dump: {e}"))?;
    if o.flush {
        load_functions(&info.functions);
    } else if !info.functions.is_empty() {
        let mut engine = crate::scripting::Engine::new();
        let r = functions::update(|set| {
            for c in &info.functions {
                let lib = engine.compile_library(&bytes::Bytes::copy_from_slice(c), 0)?;
                set.add(lib, o.merge)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            crate::log::warning(&format!("Failed loading library from the RDB file: {e}"));
            return Err("ERR Error trying to load the RDB dump, check server logs.".into());
        }
    }
    crate::log::notice("DB reloaded by DEBUG RELOAD");
    Ok(())
}

/// Parks the threads of the other shards: each blocks inside the handler of
/// `Msg::Park` until `release` is set.
pub struct ParkBarrier {
    pub parked: AtomicUsize,
    pub release: AtomicBool,
}

impl ParkBarrier {
    /// Runs on a parked shard's thread.
    pub fn park(&self) {
        // The cut waits for every record taken so far, this thread's too.
        crate::replication::flush_local();
        self.parked.fetch_add(1, Ordering::AcqRel);
        while !self.release.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

/// What a fork-based snapshot is for.
pub enum Target<'a> {
    /// BGSAVE: the dataset file.
    File,
    /// BGREWRITEAOF: a new AOF base; the AOF switches to a new incremental
    /// file at the cut.
    AofRewrite,
    /// A full sync of the replica on socket `fd`: `+FULLRESYNC` is written
    /// at the cut, `on_cut` registers the replica at the cut's offset, and
    /// the RDB goes to the file (then the caller sends it) or, `diskless`,
    /// straight from the child to the socket in `$EOF:` framing.
    Replica {
        fd: i32,
        diskless: bool,
        /// PSYNC gets `+FULLRESYNC <replid> <offset>`; old SYNC nothing.
        fullresync_line: bool,
        on_cut: &'a mut dyn FnMut(&CutInfo),
    },
}

/// BGSAVE: with every gate held by the caller (`stores` are all shards),
/// parks the other threads, takes the replication cut, forks, and lets the
/// child write the snapshot. Returns the child's pid.
pub fn bgsave(
    rt: &std::rc::Rc<super::shard::ShardRt>,
    stores: &[&ShardStore],
    target: Target,
) -> Result<i32, String> {
    let srv = rt.srv;
    if srv.persist.bgsave_in_progress() {
        return Err("ERR Background save already in progress".into());
    }
    let barrier = Arc::new(ParkBarrier {
        parked: AtomicUsize::new(0),
        release: AtomicBool::new(false),
    });
    let others = srv.nshards - 1;
    for s in 0..srv.nshards {
        if s != rt.id && !rt.try_post(s, super::shard::Msg::Park(barrier.clone())) {
            barrier.release.store(true, Ordering::Release);
            return Err("ERR Background save could not start: shards are busy, try again".into());
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while barrier.parked.load(Ordering::Acquire) < others {
        if std::time::Instant::now() > deadline {
            barrier.release.store(true, Ordering::Release);
            return Err("ERR Background save could not start: shards did not park".into());
        }
        std::hint::spin_loop();
    }
    let release = || barrier.release.store(true, Ordering::Release);
    // Every record before this point has been sent: the stream position of
    // the cut is the snapshot's (and a new replica's FULLRESYNC offset).
    let mut aof_base = None;
    let (to_socket, repl) = match target {
        Target::File => (None, crate::replication::master::cut(false)),
        Target::AofRewrite => {
            crate::replication::master::cut(false);
            match crate::aof::rewrite_begin(srv) {
                Ok(p) => aof_base = Some(p),
                Err(e) => {
                    release();
                    return Err(e);
                }
            }
            (None, None)
        }
        Target::Replica {
            fd,
            diskless,
            fullresync_line,
            on_cut,
        } => {
            let Some(c) = crate::replication::master::cut(true) else {
                release();
                return Err("ERR replication stream unavailable".into());
            };
            let line = format!("+FULLRESYNC {} {}\r\n", c.replid, c.offset);
            if fullresync_line && !write_fd(fd, line.as_bytes()) {
                release();
                return Err("ERR replica went away".into());
            }
            on_cut(&c);
            (diskless.then_some(fd), Some(c))
        }
    };
    if to_socket.is_none() && aof_base.is_none() {
        for (i, s) in stores.iter().enumerate() {
            srv.persist.dirty_at_fork[i].store(s.dirty, Ordering::Relaxed);
        }
    }
    let path = aof_base.clone().unwrap_or_else(|| rdb_path(srv));
    // SAFETY: every other shard thread is parked in `ParkBarrier::park` and
    // the main thread waits in sigwait. The replication threads may hold
    // the replication lock or be inside the allocator's own (per-thread)
    // heap: the child never takes that lock, allocates only from this
    // thread's heap, and logs without waiting on the log lock. The child
    // only reads the stores (through `stores`), writes a file or the
    // replica's socket with blocking syscalls, and leaves with `_exit`: it
    // never touches the io_uring rings, runs no destructor, frees nothing
    // of the parent's and returns to no executor.
    let fork_start = std::time::Instant::now();
    let pid = unsafe { libc::fork() };
    if pid > 0 {
        let took = fork_start.elapsed();
        srv.ops.latency_sample("fork", took.as_millis() as u64);
        srv.persist.forks.fetch_add(1, Ordering::Relaxed);
        srv.persist
            .latest_fork_usec
            .store(took.as_micros() as u64, Ordering::Relaxed);
    }
    if pid == 0 {
        crate::log::ROLE.store(b'C', Ordering::Relaxed);
        let code = match to_socket {
            None => {
                let written = match &aof_base {
                    Some(base) => crate::aof::write_base(srv, stores, base),
                    None => write_rdb(srv, stores, &path, repl.as_ref()),
                };
                match written {
                    Ok(()) => {
                        if aof_base.is_some() {
                            crate::log::notice("Successfully created the temporary AOF base file");
                        } else {
                            crate::log::notice("DB saved on disk");
                        }
                        0
                    }
                    Err(e) => {
                        crate::log::warning(&format!("Write error saving DB on disk: {e}"));
                        1
                    }
                }
            }
            Some(fd) => {
                let mark = crate::replication::random_id();
                let r = (|| {
                    let mut w = BufWriter::with_capacity(1 << 20, FdWriter(fd));
                    w.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
                    save_to(&mut w, srv, stores, repl.as_ref())?;
                    w.write_all(mark.as_bytes())?;
                    w.flush()
                })();
                match r {
                    Ok(()) => {
                        crate::log::notice("Diskless replication sync completed");
                        0
                    }
                    Err(e) => {
                        crate::log::warning(&format!("Diskless replication sync failed: {e}"));
                        1
                    }
                }
            }
        };
        // SAFETY: leave the child without unwinding or running atexit hooks.
        unsafe { libc::_exit(code) };
    }
    release();
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        if aof_base.is_some() {
            crate::aof::rewrite_done(srv, false);
            return Err(format!(
                "ERR Can't rewrite append only file in background: fork: {e}"
            ));
        }
        srv.persist.last_bgsave_ok.store(false, Ordering::Relaxed);
        return Err(format!("ERR Can't save in background: fork: {e}"));
    }
    srv.persist
        .child_aof
        .store(aof_base.is_some(), Ordering::Release);
    srv.persist
        .child_to_socket
        .store(to_socket.is_some(), Ordering::Release);
    srv.persist.child_pid.store(pid, Ordering::Release);
    srv.persist
        .child_start_ms
        .store(crate::storage::now_ms(), Ordering::Relaxed);
    if to_socket.is_some() {
        crate::log::notice(&format!(
            "Starting BGSAVE for SYNC with target: replicas sockets (pid {pid})"
        ));
    } else if aof_base.is_some() {
        crate::log::notice(&format!(
            "Background append only file rewriting started by pid {pid}"
        ));
    } else {
        crate::log::notice(&format!("Background saving started by pid {pid}"));
    }
    Ok(pid)
}

/// Blocking write of all of `data` to `fd`, waiting out EAGAIN (the
/// socket may be in non-blocking mode).
fn write_fd(fd: i32, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: writing from a live slice to a descriptor we own.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if n < 0 && (err == Some(libc::EAGAIN) || err == Some(libc::EINTR)) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 1000) };
            continue;
        }
        return false;
    }
    true
}

/// `Write` over a raw socket descriptor (the forked child's side of a
/// diskless sync).
struct FdWriter(i32);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if write_fd(self.0, buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shard 0's cron: reaps a finished BGSAVE child.
pub fn reap_child(srv: &Server) {
    let pid = srv.persist.child_pid.load(Ordering::Acquire);
    if pid == 0 {
        return;
    }
    let mut status = 0;
    // SAFETY: non-blocking wait for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == 0 {
        return;
    }
    let ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        remove_temp_files(srv, pid);
    }
    let p = &srv.persist;
    p.last_child
        .store(((pid as u64) << 1) | ok as u64, Ordering::Release);
    if p.child_to_socket.swap(false, Ordering::AcqRel) {
        p.child_pid.store(0, Ordering::Release);
        return;
    }
    if p.child_aof.swap(false, Ordering::AcqRel) {
        crate::aof::rewrite_done(srv, ok);
        p.child_pid.store(0, Ordering::Release);
        return;
    }
    let secs = (crate::storage::now_ms() - p.child_start_ms.load(Ordering::Relaxed)) / 1000;
    p.last_bgsave_secs.store(secs as i64, Ordering::Relaxed);
    p.last_bgsave_ok.store(ok, Ordering::Relaxed);
    if ok {
        crate::log::notice("Background saving terminated with success");
        srv.lastsave
            .store(crate::storage::now_ms() / 1000, Ordering::Relaxed);
        p.saves.fetch_add(1, Ordering::Relaxed);
        p.saved_gen.fetch_add(1, Ordering::AcqRel);
    } else {
        crate::log::warning("Background saving error");
    }
    p.child_pid.store(0, Ordering::Release);
}

/// Every shard's cron: publishes its dirty counter and, after a successful
/// BGSAVE, forgets the changes the file now holds.
pub fn shard_cron(srv: &Server, store: &mut ShardStore, seen_gen: &mut u64) {
    let p = &srv.persist;
    let gen_now = p.saved_gen.load(Ordering::Acquire);
    if gen_now != *seen_gen {
        *seen_gen = gen_now;
        let at_fork = p.dirty_at_fork[store.id].load(Ordering::Relaxed);
        store.dirty = store.dirty.saturating_sub(at_fork);
    }
    p.dirty[store.id].store(store.dirty, Ordering::Relaxed);
}

/// Whether a `save` rule asks for a BGSAVE now (shard 0's cron).
pub fn rule_due(srv: &Server) -> Option<(u64, u64)> {
    let p = &srv.persist;
    if p.bgsave_in_progress() {
        return None;
    }
    let dirty: u64 = p.dirty.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    let now = crate::storage::now_ms() / 1000;
    let since = now.saturating_sub(srv.lastsave.load(Ordering::Relaxed));
    // After a failed BGSAVE, retry only every 5 seconds, like Redis.
    if !p.last_bgsave_ok.load(Ordering::Relaxed) && since < 5 {
        return None;
    }
    save_rules(srv)
        .into_iter()
        .find(|&(secs, changes)| dirty >= changes && since >= secs)
        .map(|(secs, _)| (dirty, secs))
}

/// Registers script bodies found in an RDB file. A body that is already
/// known is simply kept (Redis 4.0.4 crashed on exactly that); one that does
/// not compile is reported and skipped.
pub fn load_scripts(bodies: &[Vec<u8>]) {
    if bodies.is_empty() {
        return;
    }
    let mut engine = crate::scripting::Engine::new();
    for b in bodies {
        if let Err(e) = engine.script_load(&bytes::Bytes::copy_from_slice(b)) {
            crate::log::warning(&format!("Skipping a script body from the RDB file: {e}"));
        }
    }
}

/// Installs the function libraries of an RDB file (FUNCTION2 records) as
/// the whole library set. A library that does not load is logged and left
/// out.
pub fn load_functions(codes: &[Vec<u8>]) {
    use crate::scripting::functions;
    let mut set = functions::LibrarySet::default();
    if !codes.is_empty() {
        let mut engine = crate::scripting::Engine::new();
        for c in codes {
            let code = bytes::Bytes::copy_from_slice(c);
            if let Err(e) = engine
                .compile_library(&code, 0)
                .and_then(|lib| set.add(lib, false))
            {
                crate::log::warning(&format!("Failed loading library from the RDB file: {e}"));
            }
        }
    }
    let _ = functions::update(|s| {
        *s = set;
        Ok(())
    });
}

/// Loads `dir/dbfilename`, handing each key to `insert(shard, db, key,
/// record)` (server::loading sends it to its shard). Clients are let in
/// (`open_doors`) once `loading-process-events-interval-bytes` were read.
/// Ok(false) when there is no file.
pub fn load_at_startup(
    srv: &Server,
    n: usize,
    mut insert: impl FnMut(usize, usize, crate::storage::db::Key, crate::storage::Record),
    mut open_doors: impl FnMut(),
) -> Result<bool, String> {
    let path = rdb_path(srv);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(format!(
                "Error opening the RDB file {}: {e}",
                path.display()
            ));
        }
    };
    let start = std::time::Instant::now();
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    start_loading(srv, size);
    let (verify, interval, delay) = {
        let c = srv.config.read().unwrap();
        (
            c.get_bool("rdbchecksum"),
            c.get_i64("loading-process-events-interval-bytes").max(1) as u64,
            c.get_i64("key-load-delay"),
        )
    };
    let loaded_bytes = &srv.persist.progress.loaded_bytes;
    let mut r = Counted {
        inner: std::io::BufReader::with_capacity(1 << 20, f),
        bytes: loaded_bytes,
    };
    let opts = LoadOpts {
        limits: limits(srv),
        // Expired keys are dropped here, so a restarted master can send
        // its replicas a DEL for each (Redis 7.0, #8015).
        drop_expired: false,
        now_ms: crate::storage::now_ms(),
        verify_checksum: verify,
        databases: srv.databases,
        skip_modules: false,
    };
    let mut loaded = 0u64;
    let mut seen = 0u64;
    let mut doors_open = false;
    let mut last_log = std::time::Instant::now();
    let mut expired: Vec<(usize, Vec<u8>)> = Vec::new();
    let now = opts.now_ms;
    // A replica keeps expired keys: its master's DELs remove them.
    let replica = !srv.config.read().unwrap().get("replicaof").is_empty();
    let result = rdb::load(
        &mut r,
        &opts,
        |db, key, entry| {
            seen += 1;
            key_load_delay(delay, seen);
            if !doors_open && loaded_bytes.load(Ordering::Relaxed) >= interval {
                doors_open = true;
                open_doors();
            }
            if !replica && entry.expire_at != 0 && entry.expire_at <= now {
                expired.push((db, key.to_vec()));
            } else {
                insert(key_shard(&key, n), db, key, entry);
                loaded += 1;
            }
            // INFO's rdb_last_load_keys_* move while the load runs.
            srv.persist.last_load.store(
                (loaded << 32) | (expired.len() as u64).min(u32::MAX as u64),
                Ordering::Relaxed,
            );
            if loaded.is_multiple_of(1 << 20) && last_log.elapsed().as_secs() >= 2 {
                last_log = std::time::Instant::now();
                crate::log::notice(&format!("Loading RDB: {loaded} keys loaded so far"));
            }
        },
        |k, v| note_used_mem(srv, k, v),
    );
    let mut info = result.map_err(|e| format!("{e} (file {})", path.display()))?;
    info.keys_expired += expired.len() as u64;
    info.keys_loaded = info.keys_loaded.saturating_sub(expired.len() as u64);
    srv.persist.last_load.store(
        (info.keys_loaded << 32) | info.keys_expired.min(u32::MAX as u64),
        Ordering::Relaxed,
    );
    // A master restarting from its own file keeps serving its replicas'
    // PSYNCs: the file's id becomes replid2 (Redis 7.0).
    if let (Some(id), Some(off), Some(db)) = (&info.repl_id, info.repl_offset, info.repl_stream_db)
        && off >= 0
        && db >= 0
    {
        if replica {
            *srv.persist.restored_position.lock().unwrap() = Some((id.clone(), off, db));
        } else {
            crate::replication::master::restore_after_restart(id, off, &expired);
        }
    }
    load_scripts(&info.lua);
    load_functions(&info.functions);
    if let Some(v) = &info.redis_ver {
        crate::log::notice(&format!("Loading RDB produced by version {v}"));
    }
    if let Some(ct) = info.ctime {
        let age = (crate::storage::now_ms() / 1000) as i64 - ct;
        crate::log::notice(&format!("RDB age {age} seconds"));
    }
    crate::log::notice(&format!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        info.keys_loaded, info.keys_expired
    ));
    crate::log::notice(&format!(
        "DB loaded from disk: {:.3} seconds ({} bytes)",
        start.elapsed().as_secs_f64(),
        size
    ));
    Ok(true)
}

/// Redis's prepareForShutdown: unless NOW, give lagging replicas up to
/// shutdown-timeout to acknowledge everything (so they can PSYNC to the
/// restarted master); stop a BGSAVE child, save when save rules exist (or
/// SAVE was asked) unless NOSAVE. Every shard must be held.
pub fn prepare_for_shutdown(
    srv: &Server,
    stores: &mut [&mut ShardStore],
    save: bool,
    nosave: bool,
    now: bool,
) -> std::io::Result<()> {
    if !now {
        let secs = srv
            .config
            .read()
            .unwrap()
            .get_i64("shutdown-timeout")
            .max(0) as u64;
        crate::replication::master::wait_for_replicas(std::time::Duration::from_secs(secs));
    }
    kill_child(srv);
    crate::replication::master::freeze(true);
    crate::aof::flush_at_shutdown();
    // A half-loaded dataset is never saved (Redis: NOSAVE while loading).
    let nosave = nosave || srv.persist.loading.load(Ordering::Acquire);
    if nosave || (!save && save_rules(srv).is_empty()) {
        return Ok(());
    }
    crate::log::notice("Saving the final RDB snapshot before exiting.");
    let r = save_now(srv, stores);
    if r.is_err() {
        // The shutdown may be cancelled: the stream goes on.
        crate::replication::master::freeze(false);
    }
    r
}
