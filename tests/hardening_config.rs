//! Startup refusals, DEBUG and protected configs, crash reports, the unix
//! socket, pidfile, daemonize, rename-command and INFO counters: real keel
//! and stock redis-server processes side by side.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::repl::TempDir;
use common::{Conn, Server, free_port, require_tool, show};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// Runs `program args` to its end (a refused start): status, stderr and stdout.
fn run_to_exit(program: &str, args: &[String]) -> (ExitStatus, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let status = wait_exit(&mut child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{program} {args:?} did not exit (it should refuse to start)"));
    let (mut err, mut out) = (String::new(), String::new());
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    (status, err, out)
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bad_config_files_and_flags_are_refused_as_stock() {
    require_tool("redis-server");
    let dir = TempDir::new("badconf");
    // (config file text or None, command-line flags)
    let cases: Vec<(Option<&str>, Vec<&str>)> = vec![
        (Some("port 0\nmaxmemry 1gb\n"), vec![]),
        (Some("\n# comment\nmaxmemory-policy bogus\n"), vec![]),
        (Some("port 0\n"), vec!["--maxmemry", "1gb"]),
        (None, vec!["--port", "0", "--hz", "abc"]),
        (None, vec!["--port", "0", "--maxmemory", "12xb"]),
        (None, vec!["--port", "0", "--daemonize"]),
        (Some("save 900 1\nbind \"127.0.0.1\n"), vec![]),
        (Some("appendfsync sometimes\n"), vec![]),
        (Some("enable-debug-command maybe\n"), vec![]),
        (Some("protected-mode perhaps\n"), vec![]),
        (Some("tcp-keepalive 1 2\n"), vec![]),
        (Some("user alice on\nuser alice off\n"), vec![]),
        (Some("user\n"), vec![]),
        (Some("rename-command NOSUCHCOMMAND foo\n"), vec![]),
        (Some("rename-command GET SET\n"), vec![]),
        (
            Some("rename-command GET \"\"\nrename-command GET foo\n"),
            vec![],
        ),
        (Some("include /nonexistent/keel-test.conf\n"), vec![]),
        (
            None,
            vec!["--port", "0", "--logfile", "/nonexistent/dir/x.log"],
        ),
        (None, vec!["--port", "70000"]),
        (None, vec!["--port", "0", "--maxclients", "0"]),
        (None, vec!["--port", "0", "--proto-max-bulk-len", "10"]),
        (None, vec!["--port", "0", "--active-expire-effort", "11"]),
        (Some("databases 0\n"), vec![]),
        (Some("unixsocketperm 999\n"), vec![]),
        (Some("unixsocketperm 1777\n"), vec![]),
    ];
    for (i, (text, flags)) in cases.iter().enumerate() {
        let mut args = Vec::new();
        if let Some(t) = text {
            let p = dir.0.join(format!("bad{i}.conf"));
            std::fs::write(&p, t).unwrap();
            args.push(p.display().to_string());
        }
        args.extend(strings(flags));
        let (ks, kerr, kout) = run_to_exit(KEEL, &args);
        let (rs, rerr, rout) = run_to_exit("redis-server", &args);
        assert_eq!(ks.code(), rs.code(), "exit status for {text:?} {flags:?}");
        assert_eq!(ks.code(), Some(1), "{text:?} {flags:?} must be refused");
        assert_eq!(kerr, rerr, "stderr for {text:?} {flags:?}");
        if text.is_some_and(|t| t.starts_with("include")) {
            // A log line (pid and time differ): compare the message.
            let msg = "# Fatal error, can't open config file '/nonexistent/keel-test.conf': No such file or directory";
            assert!(kout.contains(msg), "{kout}");
            assert!(rout.contains(msg), "{rout}");
        } else {
            assert!(
                kerr.starts_with("\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"),
                "{kerr}"
            );
        }
    }
}

#[test]
fn directives_keel_does_not_act_on_are_refused() {
    let dir = TempDir::new("noact");
    for (line, why) in [
        ("io-threads 4", "only '1' is accepted"),
        ("lazyfree-lazy-user-del yes", "only 'no' is accepted"),
        ("supervised systemd", "only 'no' is accepted"),
    ] {
        let p = dir.0.join("x.conf");
        std::fs::write(&p, format!("port 0\n{line}\n")).unwrap();
        let (st, err, _) = run_to_exit(KEEL, &[p.display().to_string()]);
        assert_eq!(st.code(), Some(1), "{line} must refuse to start");
        assert!(
            err.contains("*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***"),
            "{err}"
        );
        assert!(err.contains(&format!("at line 2\n>>> '{line}'\n")), "{err}");
        assert!(err.contains(why), "{line}: {err}");
    }
    // The values keel does act on start fine.
    let s = Server::keel(1, &["--appendonly", "no", "--io-threads", "1"]);
    let mut c = s.conn();
    assert_eq!(c.line("PING"), b"+PONG\r\n");
    // And CONFIG SET refuses the others at run time.
    let r = c.line("CONFIG SET lazyfree-lazy-user-del yes");
    assert!(
        r.starts_with(b"-ERR CONFIG SET failed (possibly related to argument 'lazyfree-lazy-user-del') - keel does not implement"),
        "{}",
        show(&r)
    );
    assert_eq!(
        c.line("CONFIG GET lazyfree-lazy-user-del"),
        b"*2\r\n$22\r\nlazyfree-lazy-user-del\r\n$2\r\nno\r\n"
    );
}

/// A directive keel accepts without acting on it is never silent: the
/// value is kept (CONFIG GET answers it as stock does) and the log says
/// why it has no effect.
#[test]
fn directives_without_effect_are_accepted_with_a_warning() {
    let s = Server::keel(1, &["--list-max-ziplist-size", "8"]);
    let mut c = s.conn();
    assert_eq!(
        c.line("CONFIG GET list-max-listpack-size"),
        b"*2\r\n$22\r\nlist-max-listpack-size\r\n$1\r\n8\r\n"
    );
    assert_eq!(c.line("CONFIG SET list-max-listpack-size -5"), b"+OK\r\n");
    let r = c.line("CONFIG SET list-max-listpack-size 1x");
    assert!(r.starts_with(b"-ERR CONFIG SET failed"), "{}", show(&r));
    let log = s.log_text();
    for v in ["8", "-5"] {
        assert!(
            log.contains(&format!(
                "'list-max-listpack-size {v}' has no effect in keel"
            )),
            "no warning for {v} in the log:\n{log}"
        );
    }
}

/// The startup banner: with `always-show-logo yes` both print a logo whose
/// ` PID: <pid>` line Redis's test suite waits for; without it (stdout is
/// a file here) one `Running mode=` line. The directive is immutable in both.
#[test]
fn startup_logo_names_the_pid_as_stock() {
    require_tool("redis-server");
    let flags = [
        "--always-show-logo",
        "yes",
        "--no-appendfsync-on-rewrite",
        "no",
    ];
    let (keel, redis) = pair_with(&flags);
    for s in [&keel, &redis] {
        let log = s.log_text();
        assert!(
            log.contains(&format!(" PID: {}\n", s.pid())),
            "{}:\n{log}",
            s.name
        );
        assert!(
            log.contains(&format!("Port: {}\n", s.port)),
            "{}:\n{log}",
            s.name
        );
        assert!(
            log.contains("Running in standalone mode"),
            "{}:\n{log}",
            s.name
        );
        assert!(!log.contains("Running mode="), "{}:\n{log}", s.name);
    }
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for line in [
        "CONFIG GET always-show-logo",
        "CONFIG SET always-show-logo no",
        "CONFIG GET no-appendfsync-on-rewrite",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
    let (keel, redis) = pair_with(&[]);
    for s in [&keel, &redis] {
        let log = s.log_text();
        let want = format!("Running mode=standalone, port={}.", s.port);
        assert!(log.contains(&want), "{}:\n{log}", s.name);
        assert!(!log.contains(" PID: "), "{}:\n{log}", s.name);
    }
}

/// A port bound by a socket that does not listen (an outgoing connection's
/// local port) refuses the start with stock's line, which Redis's test
/// suite reads to retry on another port; no logo is shown before it.
#[test]
fn a_port_bound_elsewhere_is_refused_with_stocks_line() {
    require_tool("redis-server");
    use socket2::{Domain, Socket, Type};
    let port = free_port();
    let held = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let args = strings(&[
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--always-show-logo",
        "yes",
    ]);
    for prog in [KEEL, "redis-server"] {
        let (st, err, out) = run_to_exit(prog, &args);
        assert_eq!(st.code(), Some(1), "{prog}: {out}{err}");
        let want = format!("Failed listening on port {port} (TCP), aborting.");
        assert!(out.contains(&want), "{prog}:\n{out}{err}");
        assert!(!out.contains(" PID: "), "{prog}:\n{out}");
    }
}

/// The min-slaves-* names of min-replicas-* (replication-2/-4 set them).
#[test]
fn min_slaves_names_are_aliases_as_stock() {
    require_tool("redis-server");
    let (keel, redis) = pair_with(&[]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for line in [
        "CONFIG SET min-slaves-to-write 1",
        "CONFIG GET min-replicas-to-write",
        "CONFIG GET min-slaves-to-write",
        "SET k v",
        "CONFIG SET min-slaves-max-lag 7",
        "CONFIG GET min-replicas-max-lag",
        "CONFIG SET min-slaves-to-write 0",
        "SET k v",
        "CONFIG SET min-slaves-max-lag -1",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
}

/// keel and stock started with the same flags (no enable-debug-command).
fn pair_with(extra: &[&str]) -> (Server, Server) {
    let x: Vec<String> = strings(extra);
    let args = move |port: u16| {
        let mut a = strings(&[
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--bind",
            "127.0.0.1",
        ]);
        a.extend(x.clone());
        a
    };
    let keel = Server::start("keel", KEEL, args.clone());
    let redis = Server::start("redis", "redis-server", args);
    (keel, redis)
}

#[test]
fn debug_and_protected_configs_are_refused_as_stock() {
    require_tool("redis-server");
    let (keel, redis) = pair_with(&[]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for line in [
        "DEBUG DIGEST",
        "DEBUG SEGFAULT",
        "DEBUG HELP",
        "CONFIG SET enable-debug-command yes",
        "CONFIG SET enable-protected-configs yes",
        "CONFIG SET dir /tmp",
        "CONFIG SET dbfilename x.rdb",
        "CONFIG GET enable-debug-command",
        "CONFIG GET enable-protected-configs",
        "MULTI",
        "DEBUG DIGEST",
        "EXEC",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
    assert!(
        k.line("DEBUG DIGEST")
            .starts_with(b"-ERR DEBUG command not allowed.")
    );
    // `local`: a loopback client may run DEBUG and set protected configs.
    let (keel, redis) = pair_with(&[
        "--enable-debug-command",
        "local",
        "--enable-protected-configs",
        "local",
    ]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    let dir = TempDir::new("protected");
    for line in [
        "SET a 1",
        "DEBUG DIGEST",
        &format!("CONFIG SET dir {}", dir.path()),
        "CONFIG SET dbfilename x.rdb",
        "CONFIG GET dbfilename",
        "CONFIG SET enable-debug-command yes",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
}

/// A keel on its own log file, for the crash tests.
fn spawn_keel(dir: &TempDir, extra: &[&str]) -> (Child, u16, std::path::PathBuf) {
    let port = free_port();
    let log = dir.0.join(format!("keel-{port}.log"));
    let mut args = strings(&["--port", &port.to_string(), "--save", ""]);
    args.extend(strings(&["--logfile", log.to_str().unwrap()]));
    args.extend(strings(extra));
    let mut child = Command::new(KEEL)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut b = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut b).is_ok() {
                assert_eq!(&b, b"+PONG\r\n");
                break;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "keel exited ({st}) at start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(t.elapsed() < Duration::from_secs(15), "keel did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port, log)
}

#[test]
fn debug_segfault_writes_a_crash_report_and_ends_the_process() {
    let dir = TempDir::new("segv");
    let (mut child, port, log) =
        spawn_keel(&dir, &["--shards", "2", "--enable-debug-command", "yes"]);
    let mut c = Conn::connect(port);
    c.send(&common::encode(&["DEBUG", "SEGFAULT"]));
    let status = wait_exit(&mut child, Duration::from_secs(20))
        .expect("keel still running after DEBUG SEGFAULT");
    assert_eq!(status.signal(), Some(11), "died of SIGSEGV: {status}");
    let text = std::fs::read_to_string(&log).unwrap();
    for want in [
        "=== KEEL BUG REPORT START",
        "(Redis 7.0.15) crashed by signal: 11 (SIGSEGV)",
        "Accessing address: 0x",
        "current command: debug",
        "------ STACK TRACE ------",
        "keel::crash::segfault",
        "keel::commands::keys::debug",
        "=== KEEL BUG REPORT END.",
    ] {
        assert!(text.contains(want), "crash report lacks `{want}`:\n{text}");
    }
    port_closes(port);
}

#[test]
fn a_panic_in_a_non_zero_shard_ends_the_whole_process() {
    let dir = TempDir::new("panic");
    let (mut child, port, log) =
        spawn_keel(&dir, &["--shards", "3", "--enable-debug-command", "yes"]);
    let mut c = Conn::connect(port);
    assert_eq!(
        c.line("DEBUG PANIC 3"),
        b"-ERR shard index out of range\r\n"
    );
    assert_eq!(c.line("SET k v"), b"+OK\r\n");
    c.send(&common::encode(&["DEBUG", "PANIC", "2"]));
    let status = wait_exit(&mut child, Duration::from_secs(20))
        .expect("keel still running after a shard panicked");
    assert_eq!(status.signal(), Some(6), "ended by abort: {status}");
    let text = std::fs::read_to_string(&log).unwrap();
    for want in [
        "=== KEEL BUG REPORT START",
        "panicked: DEBUG PANIC called at Unix time ",
        "thread: keel-shard-2",
        "current command: debug",
        "------ STACK TRACE ------",
        "keel::commands::keys::debug_panic",
        "=== KEEL BUG REPORT END.",
    ] {
        assert!(text.contains(want), "crash report lacks `{want}`:\n{text}");
    }
    port_closes(port);
}

/// The port stops accepting (a dead process's io_uring listener can linger
/// a moment while the kernel tears it down).
fn port_closes(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "port {port} still open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis_cli(args: &[&str]) -> String {
    require_tool("redis-cli");
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `field=value` of a CLIENT INFO line.
fn client_field(line: &str, name: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        .to_string()
}

#[test]
fn unixsocket_serves_redis_cli_as_stock() {
    require_tool("redis-server");
    let dir = TempDir::new("unix");
    let ksock = dir.0.join("keel.sock").display().to_string();
    let rsock = dir.0.join("redis.sock").display().to_string();
    // A stale file at the path is replaced, as stock does.
    std::fs::write(&ksock, b"stale").unwrap();
    let keel = Server::keel(2, &["--unixsocket", &ksock, "--unixsocketperm", "700"]);
    let redis = Server::redis(&["--unixsocket", &rsock, "--unixsocketperm", "700"]);
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    for p in [&ksock, &rsock] {
        let m = std::fs::metadata(p).unwrap();
        assert!(m.file_type().is_socket(), "{p} is a socket");
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{p} mode");
    }
    for (sock, srv) in [(&ksock, &keel), (&rsock, &redis)] {
        assert_eq!(redis_cli(&["-s", sock, "PING"]), "PONG\n");
        assert_eq!(redis_cli(&["-s", sock, "SET", "k", "v"]), "OK\n");
        assert_eq!(
            srv.conn().line("GET k"),
            b"$1\r\nv\r\n",
            "same data over TCP"
        );
        let info = redis_cli(&["-s", sock, "CLIENT", "INFO"]);
        assert_eq!(client_field(&info, "addr"), format!("{sock}:0"));
        assert_eq!(client_field(&info, "laddr"), format!("{sock}:0"));
        assert_eq!(client_field(&info, "flags"), "U");
        assert_eq!(
            redis_cli(&["-s", sock, "CONFIG", "GET", "unixsocketperm"]),
            "unixsocketperm\n700\n"
        );
        let _ = Command::new("redis-cli")
            .args(["-s", sock, "SHUTDOWN", "NOSAVE"])
            .output();
    }
    assert_removed_at_shutdown(&[(&ksock, "keel's socket"), (&rsock, "stock's socket")]);
}

#[test]
fn pidfile_holds_the_pid_and_goes_at_shutdown() {
    require_tool("redis-server");
    let dir = TempDir::new("pid");
    let kpid = dir.0.join("keel.pid").display().to_string();
    let rpid = dir.0.join("redis.pid").display().to_string();
    let keel = Server::keel(1, &["--pidfile", &kpid]);
    let redis = Server::redis(&["--pidfile", &rpid]);
    for (path, srv) in [(&kpid, &keel), (&rpid, &redis)] {
        let t = Instant::now();
        while !std::path::Path::new(path).exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            format!("{}\n", srv.pid())
        );
        assert_eq!(srv.conn().line("CONFIG SET pidfile /tmp/x.pid"), b"-ERR CONFIG SET failed (possibly related to argument 'pidfile') - can't set immutable config\r\n");
        srv.conn().send(&common::encode(&["SHUTDOWN", "NOSAVE"]));
    }
    assert_removed_at_shutdown(&[(&kpid, "keel's pidfile"), (&rpid, "stock's pidfile")]);
}

/// Waits up to 10 s for every file to be gone (the servers were told to
/// shut down), then asserts each one is.
fn assert_removed_at_shutdown(files: &[(&str, &str)]) {
    let exists = |f: &str| std::path::Path::new(f).exists();
    let t = Instant::now();
    while files.iter().any(|(f, _)| exists(f)) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (f, what) in files {
        assert!(!exists(f), "{what} is removed at shutdown ({f})");
    }
}

#[test]
fn daemonize_detaches_and_writes_the_pidfile() {
    let dir = TempDir::new("daemon");
    let port = free_port();
    let pidfile = dir.0.join("d.pid");
    let log = dir.0.join("d.log");
    let mut child = Command::new(KEEL)
        .args(strings(&[
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--logfile",
            log.to_str().unwrap(),
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("the launching process returns");
    assert_eq!(st.code(), Some(0));
    let t = Instant::now();
    let pid: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&pidfile)
            && let Ok(p) = s.trim().parse()
        {
            break p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no pidfile; log: {:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(pid, child.id(), "the daemon is a forked child");
    let mut c = Conn::connect(port);
    assert_eq!(c.line("PING"), b"+PONG\r\n");
    let info = String::from_utf8_lossy(&c.line("INFO server")).into_owned();
    assert!(info.contains(&format!("process_id:{pid}\r\n")), "{info}");
    c.send(&common::encode(&["SHUTDOWN", "NOSAVE"]));
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "daemon still running"
    );
    assert!(!pidfile.exists(), "pidfile removed at shutdown");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("Ready to accept connections")
    );
}

#[test]
fn rename_command_from_the_config_file_as_stock() {
    require_tool("redis-server");
    let dir = TempDir::new("rename");
    let conf = dir.0.join("r.conf");
    std::fs::write(
        &conf,
        "rename-command GET \"\"\nrename-command set MySet\nrename-command FLUSHALL \"\"\n",
    )
    .unwrap();
    let c = conf.display().to_string();
    let args = move |port: u16| {
        strings(&[
            &c,
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--bind",
            "127.0.0.1",
        ])
    };
    let keel = Server::start("keel", KEEL, args.clone());
    let redis = Server::start("redis", "redis-server", args);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for line in [
        "GET a",
        "SET a 1",
        "MYSET a 1",
        "myset b 2",
        "FLUSHALL",
        "MGET a b",
        "CONFIG SET rename-command GET x",
        "CONFIG GET rename-command",
        "MULTI",
        "GET a",
        "EXEC",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
    assert_eq!(k.line("MGET a b"), b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
}

fn info_field(c: &mut Conn, section: &str, name: &str) -> String {
    let text = String::from_utf8_lossy(&c.line(&format!("INFO {section}"))).into_owned();
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} lacks {name}:\n{text}"))
        .to_string()
}

/// INFO keyspace's avg_ttl is the active expiry's estimate, as stock's:
/// 0 before any key has a TTL, then close to the TTLs set, on both servers
/// (keel at 4 shards: every shard's estimate, weighted).
#[test]
fn info_keyspace_avg_ttl_is_estimated_as_stock() {
    let mut p = common::Pair::new(4);
    let avg_ttl = |c: &mut Conn| -> i64 {
        let info = c.val("INFO keyspace").as_str();
        let line = info
            .lines()
            .find(|l| l.starts_with("db0:"))
            .unwrap_or("")
            .to_string();
        line.split(',')
            .find_map(|f| f.strip_prefix("avg_ttl="))
            .unwrap_or_else(|| panic!("no avg_ttl in {line:?}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (mut k, mut r) = p.conns();
    for c in [&mut k, &mut r] {
        for i in 0..200 {
            c.line(&format!("SET plain{i} v"));
        }
        assert_eq!(avg_ttl(c), 0, "no key has a TTL yet");
        for i in 0..200 {
            c.line(&format!("SET k{i} v EX 1000"));
        }
    }
    // Several active-expiry cycles (hz 10) sample the TTLs.
    std::thread::sleep(Duration::from_millis(1500));
    let (kt, rt) = (avg_ttl(&mut k), avg_ttl(&mut r));
    for (who, t) in [("keel", kt), ("redis", rt)] {
        assert!(
            (990_000..=1_000_000).contains(&t),
            "{who}: avg_ttl {t} for keys set with EX 1000"
        );
    }
    p.finish();
}

#[test]
fn info_counters_move_with_what_they_count() {
    require_tool("redis-server");
    let dir = TempDir::new("info");
    let keel = Server::keel(2, &["--dir", dir.path()]);
    let redis = Server::redis(&["--dir", dir.path(), "--dbfilename", "stock.rdb"]);
    for srv in [&keel, &redis] {
        let mut c = srv.conn();
        let mut sub = srv.conn();
        assert_eq!(info_field(&mut c, "stats", "pubsub_channels"), "0");
        sub.send(&common::encode(&["SUBSCRIBE", "a", "b"]));
        sub.read_reply();
        sub.read_reply();
        let mut psub = srv.conn();
        psub.send(&common::encode(&["PSUBSCRIBE", "n*"]));
        psub.read_reply();
        assert_eq!(
            info_field(&mut c, "stats", "pubsub_channels"),
            "2",
            "{}",
            srv.name
        );
        assert_eq!(
            info_field(&mut c, "stats", "pubsub_patterns"),
            "1",
            "{}",
            srv.name
        );
        drop(psub);
        let t = Instant::now();
        while info_field(&mut c, "stats", "pubsub_patterns") != "0" {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{}: pattern count stays",
                srv.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            info_field(&mut c, "memory", "number_of_cached_scripts"),
            "0"
        );
        c.line("SCRIPT LOAD \"return 1\"");
        c.line("SCRIPT LOAD \"return 2\"");
        assert_eq!(
            info_field(&mut c, "memory", "number_of_cached_scripts"),
            "2",
            "{}",
            srv.name
        );
        let forks: u64 = info_field(&mut c, "stats", "total_forks").parse().unwrap();
        assert_eq!(c.line("SET k v"), b"+OK\r\n");
        assert_eq!(c.line("BGSAVE"), b"+Background saving started\r\n");
        let t = Instant::now();
        while info_field(&mut c, "persistence", "rdb_bgsave_in_progress") != "0" {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            info_field(&mut c, "stats", "total_forks")
                .parse::<u64>()
                .unwrap(),
            forks + 1
        );
        assert_ne!(
            info_field(&mut c, "stats", "latest_fork_usec"),
            "0",
            "{}",
            srv.name
        );
    }
    // Instantaneous ops: a steady load shows up within the 1.6 s window.
    let mut c = keel.conn();
    let mut load = keel.conn();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1200) {
        load.line("PING");
    }
    let ops: u64 = info_field(&mut c, "stats", "instantaneous_ops_per_sec")
        .parse()
        .unwrap();
    assert!(ops > 100, "instantaneous_ops_per_sec {ops} under load");
    let kbps: f64 = info_field(&mut c, "stats", "instantaneous_input_kbps")
        .parse()
        .unwrap();
    assert!(kbps > 0.0, "instantaneous_input_kbps {kbps}");
}

/// A non-loopback IPv4 address of this machine (protected mode's "remote").
fn outside_ip() -> std::net::Ipv4Addr {
    let mut found = None;
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        assert_eq!(libc::getifaddrs(&mut list), 0, "getifaddrs");
        let mut p = list;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(ip);
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.expect("this test needs a non-loopback IPv4 interface (none found)")
}

fn first_reply_from(ip: std::net::Ipv4Addr, port: u16) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"PING\r\n");
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    // The DENIED reply is followed by a close; a served PING is one line.
    loop {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&b[..n]);
                if out.ends_with(b"\r\n") && !out.starts_with(b"-DENIED") {
                    break;
                }
            }
            // The unread PING makes the close of a denied connection a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => break,
            Err(e) => panic!("read from {ip}:{port}: {e} (got {})", show(&out)),
        }
    }
    out
}

#[test]
fn protected_mode_refuses_remote_clients_as_stock() {
    require_tool("redis-server");
    let ip = outside_ip();
    for extra in [
        vec![],
        vec!["--requirepass", "pw"],
        vec!["--protected-mode", "no"],
    ] {
        let mut flags = vec!["--bind", "0.0.0.0"];
        flags.extend(extra.iter().copied());
        let x = strings(&flags);
        let args = move |port: u16| {
            let mut a = strings(&["--port", &port.to_string(), "--save", ""]);
            a.extend(x.clone());
            a
        };
        let keel = Server::start("keel", KEEL, args.clone());
        let redis = Server::start("redis", "redis-server", args);
        let k = first_reply_from(ip, keel.port);
        let r = first_reply_from(ip, redis.port);
        assert_eq!(show(&k), show(&r), "{extra:?}");
        if extra.is_empty() {
            assert!(
                k.starts_with(b"-DENIED Redis is running in protected mode"),
                "{}",
                show(&k)
            );
            // Loopback clients are still served.
            assert_eq!(keel.conn().line("PING"), b"+PONG\r\n");
        }
    }
}

#[test]
fn a_failed_bgsave_stops_writes_as_stock() {
    require_tool("redis-server");
    let kdir = TempDir::new("misconf-k");
    let rdir = TempDir::new("misconf-r");
    let keel = Server::keel(2, &["--save", "3600 1", "--dir", kdir.path()]);
    let redis = Server::redis(&["--save", "3600 1", "--dir", rdir.path()]);
    let (mut k, mut r) = (keel.conn(), redis.conn());
    for (c, d) in [(&mut k, &kdir), (&mut r, &rdir)] {
        assert_eq!(c.line("SET a 1"), b"+OK\r\n");
        std::fs::remove_dir_all(&d.0).unwrap();
        assert_eq!(c.line("BGSAVE"), b"+Background saving started\r\n");
        let t = Instant::now();
        while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            info_field(c, "persistence", "rdb_last_bgsave_status"),
            "err"
        );
    }
    for line in [
        "SET b 2",
        "PING",
        "GET a",
        "INCR a",
        "CONFIG SET stop-writes-on-bgsave-error no",
        "SET b 2",
    ] {
        let (a, b) = (k.line(line), r.line(line));
        assert_eq!(show(&a), show(&b), "{line}");
    }
    assert!(show(&k.line("CONFIG SET stop-writes-on-bgsave-error yes")).contains("OK"));
    assert!(
        k.line("SET c 3")
            .starts_with(b"-MISCONF Redis is configured to save RDB snapshots")
    );
    std::fs::create_dir_all(&kdir.0).unwrap();
}
