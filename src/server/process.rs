//! The process around the shards: the addresses and unix socket it
//! listens on, the pidfile, daemonizing, signals, the startup logo and
//! transparent huge pages.

use std::sync::Mutex;

use super::Server;
use crate::config::Config;

/// The addresses to listen on: `bind` words, a leading '-' marks an
/// address that may be unavailable (as Redis's default "-::1").
pub(super) fn bind_addrs(bind: &str, port: u16) -> Vec<(String, bool)> {
    bind.split_whitespace()
        .map(|w| {
            let (optional, host) = match w.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, w),
            };
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            (addr, optional)
        })
        .collect()
}

/// Blocks SIGINT/SIGTERM in this thread (and the threads it spawns after).
pub(super) fn block_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a zeroed, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// `addr`'s first address and an unbound TCP socket for it with
/// SO_REUSEADDR (ports in TIME_WAIT rebind, as Redis).
fn tcp_socket(addr: &str) -> std::io::Result<(std::net::SocketAddr, socket2::Socket)> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let a = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("empty address"))?;
    let sk = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    Ok((a, sk))
}

/// Binds `addr` without SO_REUSEPORT and without listening: fails if the
/// port is taken, never accepts (a connection made meanwhile would be reset).
pub(super) fn probe_bind(addr: &str) -> std::io::Result<()> {
    let (a, sk) = tcp_socket(addr)?;
    match sk.bind(&a.into()) {
        // Connections of a killed predecessor linger on the port (kill -9
        // leaves them half closed): the port is free unless someone listens.
        // A killed predecessor's listeners also linger while the kernel
        // tears its io_uring down: wait a little for them to go.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let t = std::time::Duration::from_millis(300);
                if std::net::TcpStream::connect_timeout(&a, t).is_err() {
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        r => r,
    }
}

/// A listening socket shared by every shard (SO_REUSEPORT) that rebinds a
/// port whose old connections linger in TIME_WAIT (SO_REUSEADDR, as Redis).
pub(super) fn listen(addr: &str, backlog: i32) -> std::io::Result<glommio::net::TcpListener> {
    let (a, sk) = tcp_socket(addr)?;
    sk.set_reuse_port(true)?;
    sk.bind(&a.into())?;
    sk.listen(backlog)?;
    // SAFETY: a bound, listening socket whose ownership moves to the listener.
    Ok(unsafe {
        <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(
            std::os::fd::IntoRawFd::into_raw_fd(sk),
        )
    })
}

/// Stock's line for a port it could not bind.
pub(super) fn listen_failed(port: u16) -> String {
    format!("Failed listening on port {port} (TCP), aborting.")
}

/// The startup banner with the mode, port and pid (tools such as Redis's
/// test suite find the server's pid in its ` PID: ` line), shown as stock
/// does: with `always-show-logo yes`, or when logging to a terminal;
/// otherwise one line.
pub(super) fn show_logo(srv: &Server) {
    let mode = if srv.cluster.is_some() {
        "cluster"
    } else {
        "standalone"
    };
    let (show, to_stdout) = {
        let c = srv.config.read().unwrap();
        (c.get_bool("always-show-logo"), c.get("logfile").is_empty())
    };
    // SAFETY: isatty only inspects the descriptor.
    let tty = to_stdout && unsafe { libc::isatty(1) } == 1;
    if !show && !tty {
        crate::log::notice(&format!("Running mode={mode}, port={}.", srv.port));
        return;
    }
    crate::log::notice_raw(&format!(
        "\n    _/|_     keel {} (64 bit)\n   ( o.o )    Running in {mode} mode\n    > ^ <     Port: {}\n   /     \\    PID: {}\n\n",
        env!("CARGO_PKG_VERSION"),
        srv.port,
        std::process::id()
    ));
}

/// `unixsocket` and its `unixsocketperm` (0: the umask's), if set.
pub(super) fn unix_socket_config(c: &Config) -> Option<(String, u32)> {
    let path = c.get("unixsocket");
    if path.is_empty() {
        return None;
    }
    let perm = u32::from_str_radix(c.get("unixsocketperm"), 8).unwrap_or(0);
    Some((path.to_string(), perm))
}

/// anetUnixServer: a stale socket file is replaced; the mode applied
/// after bind. Accepted through glommio's TcpListener (accept(2) is the
/// same for any stream socket; the peer's address is never asked).
pub(super) fn listen_unix(
    path: &str,
    perm: u32,
    backlog: i32,
) -> std::io::Result<glommio::net::TcpListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let _ = std::fs::remove_file(path);
    let sk = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sk.bind(&SockAddr::unix(path)?)?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    sk.listen(backlog)?;
    remove_at_exit(path);
    // SAFETY: a bound, listening socket whose ownership moves to the listener.
    Ok(unsafe {
        <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(
            std::os::fd::IntoRawFd::into_raw_fd(sk),
        )
    })
}

/// Files the process removes when it exits normally (the pid file, the
/// unix socket), as Redis's prepareForShutdown does. A crash leaves them.
static AT_EXIT: Mutex<Vec<std::ffi::CString>> = Mutex::new(Vec::new());

pub(super) fn remove_at_exit(path: &str) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        extern "C" fn cleanup() {
            // try_lock: exit may run while another thread holds it.
            if let Ok(paths) = AT_EXIT.try_lock() {
                for p in paths.iter() {
                    // SAFETY: unlink of a NUL-terminated path we own.
                    unsafe { libc::unlink(p.as_ptr()) };
                }
            }
        }
        // SAFETY: registers a plain function run by exit(3).
        unsafe { libc::atexit(cleanup) };
    });
    if let Ok(c) = std::ffi::CString::new(path) {
        AT_EXIT.lock().unwrap().push(c);
    }
}

/// createPidFile: `pidfile`, or Redis's default path when daemonized.
pub(super) fn write_pidfile(srv: &Server, daemonized: bool) {
    let configured = srv.config.read().unwrap().get("pidfile").to_string();
    let path = match (configured.is_empty(), daemonized) {
        (false, _) => configured,
        (true, true) => "/var/run/redis.pid".to_string(),
        (true, false) => return,
    };
    match std::fs::write(&path, format!("{}\n", std::process::id())) {
        Ok(()) => remove_at_exit(&path),
        Err(e) => crate::log::warning(&format!("Failed to write PID file: {e}")),
    }
}

/// daemonize yes: the parent exits at once, the child leaves the session
/// and its standard descriptors go to /dev/null (the log needs `logfile`).
pub(super) fn daemonize() {
    // SAFETY: called before any other thread exists; the parent only _exits.
    unsafe {
        match libc::fork() {
            -1 => {
                eprintln!("fork: {}", std::io::Error::last_os_error());
                libc::_exit(1);
            }
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// As Redis's `disable-thp`: no transparent huge pages for this process.
/// mimalloc asks for them (madvise), and a 2 MB page copied on write after
/// BGSAVE's fork costs latency and memory; they also make RSS jump by MBs
/// with a few touched bytes.
pub(super) fn disable_thp() {
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this
    // process; no memory is passed.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        crate::log::warning("Failed to disable transparent huge pages (prctl)");
    }
}
