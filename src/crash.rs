//! Crash reports: a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT)
//! or a Rust panic in any thread writes a report to the log (version, the
//! signal or panic message, the thread, the command it was running, a stack
//! trace) and ends the whole process, as Redis's bug report does. A panic
//! must not leave a half-alive server (one shard thread gone, the others
//! still accepting connections that land on it).

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The command this thread runs (a static name: readable from a signal
    /// handler without allocating).
    static CURRENT: Cell<&'static str> = const { Cell::new("") };
}

/// Notes the command this thread is about to run, for a crash report.
#[inline]
pub fn set_current(name: &'static str) {
    CURRENT.with(|c| c.set(name));
}

fn current() -> &'static str {
    CURRENT.try_with(|c| c.get()).unwrap_or("")
}

/// One report at a time: a second crash while reporting just dies.
static REPORTING: AtomicBool = AtomicBool::new(false);

const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
];

unsafe extern "C" {
    // glibc's execinfo: backtrace_symbols_fd writes without allocating.
    fn backtrace(buffer: *mut *mut libc::c_void, size: libc::c_int) -> libc::c_int;
}

/// Installs the signal handlers and the panic hook (once, at startup).
pub fn install() {
    thread_init();
    // The first backtrace() loads libgcc: do it now, not inside a handler.
    let mut frames = [std::ptr::null_mut(); 4];
    // SAFETY: backtrace writes at most 4 pointers into `frames`.
    unsafe { backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int) };
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction with our handler and an empty mask.
        // SA_ONSTACK: Rust gives every thread an alternate signal stack,
        // so a stack overflow can still be reported. SA_RESETHAND: a fault
        // inside the handler kills the process instead of looping.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as *const () as usize;
            act.sa_flags =
                libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND | libc::SA_NODEFER;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
    std::panic::set_hook(Box::new(on_panic));
}

/// Alternate signal stack big enough to symbolize a backtrace on (Rust's
/// own is a few pages: gimli overflows it). Call once per long-lived thread.
pub fn thread_init() {
    const SIZE: usize = 1 << 20;
    // SAFETY: a fresh anonymous mapping handed to sigaltstack; it stays
    // mapped for the life of the process (threads that call this live as
    // long as it does).
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        let ss = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: SIZE,
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
    }
}

/// Whether this handler has room to symbolize: not on a small altstack.
fn stack_roomy() -> bool {
    // SAFETY: sigaltstack with a null new stack only reads the current one.
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut cur);
        cur.ss_flags & libc::SS_ONSTACK == 0 || cur.ss_size >= 1 << 20
    }
}

/// A fixed buffer formatted into without allocating (signal handlers).
struct StackBuf {
    buf: [u8; 1024],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn write_fd(fd: i32, b: &[u8]) {
    let mut off = 0;
    while off < b.len() {
        // SAFETY: write(2) from a live buffer; async-signal-safe.
        let n = unsafe { libc::write(fd, b[off..].as_ptr() as *const libc::c_void, b.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        _ => "?",
    }
}

/// This thread's name (prctl: no allocation).
fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}

fn header(fd: i32, what: &str) {
    write_fd(
        fd,
        b"\n\n=== KEEL BUG REPORT START: Cut & paste starting from here ===\n",
    );
    let name = thread_name();
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let mut b = StackBuf {
        buf: [0; 1024],
        len: 0,
    };
    let _ = write!(
        b,
        "{}:M # keel {} (Redis {}) {}\nthread: {}\ncurrent command: {}\n",
        std::process::id(),
        env!("CARGO_PKG_VERSION"),
        crate::REDIS_VERSION,
        what,
        std::str::from_utf8(&name[..end]).unwrap_or("?"),
        match current() {
            "" => "(none)",
            c => c,
        },
    );
    write_fd(fd, &b.buf[..b.len]);
}

fn footer(fd: i32) {
    write_fd(
        fd,
        b"\n=== KEEL BUG REPORT END. Make sure to include from START to END. ===\n\n",
    );
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    if REPORTING.swap(true, Ordering::AcqRel) {
        // Another thread is reporting: wait for it to end the process.
        // SAFETY: pause(2) is async-signal-safe.
        loop {
            unsafe { libc::pause() };
        }
    }
    let fd = crate::log::raw_fd();
    let mut b = StackBuf {
        buf: [0; 1024],
        len: 0,
    };
    let _ = write!(b, "crashed by signal: {sig} ({})", signal_name(sig));
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr()) };
    let _ = write!(b, ", si_code: {code}");
    if sig == libc::SIGSEGV || sig == libc::SIGBUS {
        let _ = write!(b, "\nAccessing address: {addr:p}");
    }
    let what = std::str::from_utf8(&b.buf[..b.len]).unwrap_or("crashed by signal");
    header(fd, what);
    write_fd(fd, b"\n------ STACK TRACE ------\n");
    let mut frames = [std::ptr::null_mut(); 100];
    // SAFETY: backtrace fills at most 100 frames (libgcc preloaded at
    // install); backtrace_symbols_fd writes them without allocating.
    unsafe {
        let n = backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int);
        libc::backtrace_symbols_fd(frames.as_ptr(), n, fd);
    }
    // Best effort: function names and lines need the allocator and the
    // debug info. A watchdog ends the process should that deadlock (the
    // crash may have happened inside the allocator).
    default_action(libc::SIGALRM);
    // SAFETY: alarm and sigprocmask-style calls are async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::alarm(3);
    }
    if stack_roomy() {
        write_fd(fd, b"\n------ STACK TRACE (symbols) ------\n");
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        write_fd(fd, bt.as_bytes());
    }
    footer(fd);
    // Die of the same signal, as Redis.
    default_action(sig);
    // SAFETY: signalling our own process.
    unsafe {
        // raise: to this thread, where the signal is not blocked
        // (SA_NODEFER), so it is delivered before raise returns.
        libc::raise(sig);
        libc::_exit(128 + sig);
    }
}

fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    if REPORTING.swap(true, Ordering::AcqRel) {
        loop {
            // SAFETY: pause(2) only waits for a signal.
            unsafe { libc::pause() };
        }
    }
    let fd = crate::log::raw_fd();
    let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    };
    let location = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    header(fd, &format!("panicked: {msg}{location}"));
    write_fd(fd, b"\n------ STACK TRACE ------\n");
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    write_fd(fd, bt.as_bytes());
    footer(fd);
    // End the whole process as Redis's serverPanic does (abort), without
    // reporting the SIGABRT a second time.
    default_action(libc::SIGABRT);
    std::process::abort();
}

/// Puts back the default action of `sig` (async-signal-safe).
fn default_action(sig: libc::c_int) {
    // SAFETY: sigaction with a zeroed struct and SIG_DFL only resets `sig`.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

/// DEBUG SEGFAULT: a real invalid write (to a read-only page), so the
/// report comes from the kernel's SIGSEGV like in Redis.
pub fn segfault() -> ! {
    // SAFETY: deliberately faults: the page is mapped read-only, the write
    // raises SIGSEGV and the handler ends the process; nothing after runs.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        std::ptr::write_volatile(p, b'x');
        libc::raise(libc::SIGSEGV);
    }
    unreachable!("DEBUG SEGFAULT survived its fault")
}
