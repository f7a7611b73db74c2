//! The rewrite cycle of the AOF: BGREWRITEAOF's begin at a cut and its end
//! (manifest switch, history and garbage collection), automatic rewrites
//! and their back-off after failures.

use super::*;

/// BGREWRITEAOF at the cut (every shard parked, every record before it fed):
/// what is fed from now on goes to a new incremental file. Returns the path
/// of the new base the child writes.
pub fn rewrite_begin(srv: &Server) -> Result<PathBuf, String> {
    if !enabled() && START_REQUESTED.load(Ordering::Acquire) {
        turn_on_at_cut(srv)?;
    }
    let offline = !enabled();
    if offline {
        offline_manifest(srv)?;
    }
    let Some(a) = AOF.get() else {
        return Err("ERR the AOF is off".into());
    };
    let base = {
        let mut io = a.lock_io();
        let mut m = io.manifest.clone();
        let b = m.new_base(&a.prefix, preamble(srv));
        io.rewrite_incr_seq = 0;
        io.rewrite_base = Some(b.clone());
        io.offline = offline;
        b
    };
    if !offline {
        let mut p = a.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.rotate_at = Some(p.buf.len());
        p.seldb = -1;
    }
    a.cond.notify_one();
    a.stats.rewrite_in_progress.store(true, Ordering::Release);
    a.stats.rewrite_scheduled.store(false, Ordering::Release);
    a.stats
        .rewrite_start_ms
        .store(crate::storage::now_ms(), Ordering::Relaxed);
    Ok(a.dir.join(base.name))
}

/// BGREWRITEAOF with `appendonly no` (as stock): a base of the data and a
/// manifest naming it alone; nothing is appended afterwards. The AOF state
/// takes the directory's manifest as it is on disk.
fn offline_manifest(srv: &Server) -> Result<(), String> {
    let (dir, prefix) = paths(srv);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("ERR Can't open or create append-only dir: {e}"))?;
    let m = read_manifest(&dir, &prefix).map_err(|e| format!("ERR {e}"))?;
    match AOF.get() {
        None => install(srv, dir, prefix, None, m, 0).map_err(|e| format!("ERR {e}")),
        Some(a) => {
            let mut io = a.lock_io();
            io.manifest = m;
            io.file = None;
            Ok(())
        }
    }
}

/// The rewrite's child ended: on success the new base and the incremental
/// files from the cut on replace the old ones in the manifest, and the old
/// files are deleted.
pub fn rewrite_done(srv: &Server, ok: bool) {
    let _ = srv;
    let Some(a) = AOF.get() else { return };
    let st = &a.stats;
    let mut io = a.lock_io();
    // The switch to the new incr file may still be pending.
    let always = POLICY.load(Ordering::Relaxed) == FSYNC_ALWAYS;
    if let Some(end) = a.write_pending(&mut io, always) {
        publish(end);
    }
    let base = io.rewrite_base.take();
    let secs = (crate::storage::now_ms() - st.rewrite_start_ms.load(Ordering::Relaxed)) / 1000;
    st.last_rewrite_secs.store(secs as i64, Ordering::Relaxed);
    st.rewrite_in_progress.store(false, Ordering::Release);
    let first_new = io.rewrite_incr_seq;
    let done = match base {
        Some(b) if ok && (first_new > 0 || io.offline) => {
            let mut m = io.manifest.clone();
            let hist_before = m.history.len();
            let nb = m.new_base(&a.prefix, b.name.ends_with(".rdb"));
            debug_assert_eq!(nb.name, b.name);
            let old_base: Vec<_> = m.history.drain(hist_before..).collect();
            // Offline, the base alone holds the data.
            let (keep, old): (Vec<_>, Vec<_>) = m
                .incrs
                .drain(..)
                .partition(|f| !io.offline && f.seq >= first_new);
            m.incrs = keep;
            // As stock, the old base and then each rewritten incr file go
            // to the head of the history.
            let mut hist: Vec<_> = old
                .into_iter()
                .rev()
                .map(|mut f| {
                    f.kind = b'h';
                    f
                })
                .collect();
            hist.extend(old_base);
            hist.append(&mut m.history);
            m.history = hist;
            // The new manifest names no old file: they go once it is in
            // place (unless aof-disable-auto-gc keeps them as history).
            let old = if NO_AUTO_GC.load(Ordering::Relaxed) {
                Vec::new()
            } else {
                std::mem::take(&mut m.history)
            };
            match write_manifest(&a.dir, &a.prefix, &m) {
                Ok(()) => {
                    io.starting = false;
                    remove_history(a, old);
                    io.manifest = m;
                    io.total_size = files_size(&a.dir, &io.manifest);
                    let base_size = std::fs::metadata(a.dir.join(&b.name)).map_or(0, |md| md.len());
                    st.base_size.store(base_size, Ordering::Relaxed);
                    st.current_size.store(io.total_size, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    crate::log::warning(&format!("Can't persist the AOF manifest: {e}"));
                    let _ = std::fs::remove_file(a.dir.join(&b.name));
                    false
                }
            }
        }
        Some(b) => {
            let _ = std::fs::remove_file(a.dir.join(&b.name));
            false
        }
        None => false,
    };
    st.last_rewrite_ok.store(done, Ordering::Relaxed);
    if done {
        st.rewrites.fetch_add(1, Ordering::Relaxed);
        st.rewrite_failures.store(0, Ordering::Relaxed);
        crate::log::notice("Background AOF rewrite finished successfully");
    } else {
        st.rewrite_failures.fetch_add(1, Ordering::Relaxed);
        crate::log::warning("Background AOF rewrite terminated with error");
        if io.starting && ENABLED.load(Ordering::Relaxed) {
            drop_first_incr(a, &mut io, first_new);
        }
    }
}

/// The first rewrite after `CONFIG SET appendonly yes` failed: as stock's
/// temp incr file, the incr file opened at its cut (named in no manifest
/// on disk) is deleted and its number given back; what is written until
/// the next cut goes nowhere (that cut's base holds it), and the rewrite
/// is tried again at once.
fn drop_first_incr(a: &Aof, io: &mut Io, first_new: i64) {
    if first_new > 0 {
        for f in io.manifest.incrs.iter().filter(|f| f.seq >= first_new) {
            crate::log::notice(&format!(
                "Removing the temp incr aof file {} in the background",
                f.name
            ));
            let _ = std::fs::remove_file(a.dir.join(&f.name));
        }
        io.manifest.incrs.retain(|f| f.seq < first_new);
        io.manifest.incr_seq = first_new - 1;
        io.file = None;
        io.incr_size = 0;
    }
    a.stats.rewrite_scheduled.store(true, Ordering::Release);
}

/// `aof-disable-auto-gc`: history files stay (named in the manifest).
static NO_AUTO_GC: AtomicBool = AtomicBool::new(false);

/// After CONFIG SET: `aof-disable-auto-gc`; turned off, the history files
/// the manifest names are deleted at once, as stock.
pub fn set_auto_gc_disabled(disabled: bool) {
    let was = NO_AUTO_GC.swap(disabled, Ordering::Relaxed);
    if disabled || !was {
        return;
    }
    let Some(a) = AOF.get() else { return };
    let mut io = a.lock_io();
    if io.manifest.history.is_empty() {
        return;
    }
    let mut m = io.manifest.clone();
    let old = std::mem::take(&mut m.history);
    match write_manifest(&a.dir, &a.prefix, &m) {
        Ok(()) => {
            remove_history(a, old);
            io.manifest = m;
        }
        Err(e) => crate::log::warning(&format!("Can't persist the AOF manifest: {e}")),
    }
}

/// Whether the AOF grew enough for an automatic rewrite
/// (auto-aof-rewrite-percentage / -min-size), or one was scheduled.
pub fn rewrite_due(srv: &Server) -> bool {
    if START_REQUESTED.load(Ordering::Acquire) && !enabled() {
        return true;
    }
    if OFFLINE_SCHEDULED.load(Ordering::Acquire) && !rewrite_in_progress() {
        OFFLINE_SCHEDULED.store(false, Ordering::Release);
        return true;
    }
    let Some(a) = AOF.get() else {
        return false;
    };
    if a.stats.rewrite_in_progress.load(Ordering::Relaxed) {
        return false;
    }
    if a.stats.rewrite_scheduled.load(Ordering::Relaxed) {
        return true;
    }
    if !enabled() {
        return false;
    }
    let (perc, min) = {
        let c = srv.config.read().unwrap();
        (
            c.get_i64("auto-aof-rewrite-percentage"),
            crate::config::parse_memory(c.get("auto-aof-rewrite-min-size")).unwrap_or(0),
        )
    };
    let cur = a.stats.current_size.load(Ordering::Relaxed) as i64;
    let base = (a.stats.base_size.load(Ordering::Relaxed) as i64).max(1);
    if perc <= 0 || cur < min {
        return false;
    }
    (cur - base) * 100 / base >= perc && !rewrite_limited(a)
}

/// Stock's limit on automatic rewrites that keep failing: after 3
/// failures in a row the next one waits 1 minute, then 2, 4, ... up to 60.
/// (minutes of delay, unix ms of the next try; 0: not limited now)
static LIMIT: Mutex<(u64, u64)> = Mutex::new((0, 0));

fn rewrite_limited(a: &Aof) -> bool {
    let mut l = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    if a.stats.rewrite_failures.load(Ordering::Relaxed) < 3 {
        *l = (0, 0);
        return false;
    }
    let now = crate::storage::now_ms();
    if l.1 != 0 {
        if now < l.1 {
            return true;
        }
        l.1 = 0;
        return false;
    }
    l.0 = if l.0 == 0 { 1 } else { (l.0 * 2).min(60) };
    l.1 = now + l.0 * 60_000;
    crate::log::warning(&format!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        l.0
    ));
    true
}

/// BGREWRITEAOF while another child runs: it starts when that one ends.
pub fn schedule_rewrite() {
    match AOF.get() {
        Some(a) => a.stats.rewrite_scheduled.store(true, Ordering::Release),
        None => OFFLINE_SCHEDULED.store(true, Ordering::Release),
    }
}

/// BGREWRITEAOF scheduled with `appendonly no` before the AOF state exists.
pub(super) static OFFLINE_SCHEDULED: AtomicBool = AtomicBool::new(false);

pub fn rewrite_in_progress() -> bool {
    AOF.get()
        .is_some_and(|a| a.stats.rewrite_in_progress.load(Ordering::Relaxed))
}

/// Deletes history files the manifest no longer lists (stock's log line).
fn remove_history(a: &Aof, old: Vec<manifest::FileInfo>) {
    for f in old {
        crate::log::notice(&format!(
            "Removing the history file {} in the background",
            f.name
        ));
        let _ = std::fs::remove_file(a.dir.join(&f.name));
    }
}
