//! Redis-style log lines: `pid:M 25 Nov 2026 15:35:31.123 * message`.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(2);
static FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);
/// The log's descriptor for the crash report, which must not take a lock.
static FD: AtomicI32 = AtomicI32::new(1);
/// Role letter: M master, S replica, C forked child.
pub static ROLE: AtomicU8 = AtomicU8::new(b'M');

pub fn set_level(name: &str) {
    let l = match name {
        "debug" => 0,
        "verbose" => 1,
        "notice" => 2,
        "warning" => 3,
        _ => 4,
    };
    LEVEL.store(l, Ordering::Relaxed);
}

/// Sends the log to a file instead of stdout ("" = stdout).
pub fn set_file(path: &str) -> std::io::Result<()> {
    let f = if path.is_empty() {
        None
    } else {
        Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        )
    };
    let mut cur = FILE.lock().unwrap();
    FD.store(
        f.as_ref().map_or(1, std::os::fd::AsRawFd::as_raw_fd),
        Ordering::Relaxed,
    );
    *cur = f;
    Ok(())
}

/// The descriptor the log goes to (1 = stdout), for writes that cannot
/// wait on the log's lock (a crash report from a signal handler).
pub fn raw_fd() -> i32 {
    FD.load(Ordering::Relaxed)
}

fn emit(level: u8, mark: char, msg: &str) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: libc::tm is plain old data; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes only into the tm we pass.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let mut buf = [0u8; 64];
    // SAFETY: strftime writes at most buf.len() bytes and returns the count.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%d %b %Y %H:%M:%S".as_ptr(),
            &tm,
        )
    };
    let line = format!(
        "{}:{} {}.{:03} {} {}\n",
        std::process::id(),
        ROLE.load(Ordering::Relaxed) as char,
        String::from_utf8_lossy(&buf[..n]),
        now.subsec_millis(),
        mark,
        msg
    );
    if ROLE.load(Ordering::Relaxed) == b'C' {
        // A forked child: another thread of the parent may have held a lock
        // at fork time, so never wait on one here.
        let fd = match FILE.try_lock() {
            Ok(f) => f.as_ref().map_or(1, std::os::fd::AsRawFd::as_raw_fd),
            Err(_) => 2,
        };
        // SAFETY: write(2) from a live buffer to an open descriptor.
        unsafe { libc::write(fd, line.as_ptr() as *const libc::c_void, line.len()) };
        return;
    }
    let mut f = FILE.lock().unwrap_or_else(|e| e.into_inner());
    match f.as_mut() {
        Some(file) => {
            let _ = file.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().write_all(line.as_bytes());
        }
    }
}

/// Lines written as they are, without the pid/time prefix (the startup
/// logo), at notice level.
pub fn notice_raw(text: &str) {
    if LEVEL.load(Ordering::Relaxed) > 2 {
        return;
    }
    let mut f = FILE.lock().unwrap_or_else(|e| e.into_inner());
    match f.as_mut() {
        Some(file) => {
            let _ = file.write_all(text.as_bytes());
        }
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
}

pub fn debug(msg: &str) {
    emit(0, '.', msg);
}
pub fn verbose(msg: &str) {
    emit(1, '-', msg);
}
pub fn notice(msg: &str) {
    emit(2, '*', msg);
}
pub fn warning(msg: &str) {
    emit(3, '#', msg);
}
