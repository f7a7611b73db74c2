//! The PSYNC2 torture driver: five nodes (keel with several shard counts
//! and stock redis-server) on loopback, each behind a TCP proxy that the
//! replication links go through, so links can be cut or held. Every cycle
//! picks a new master, re-attaches the others (directly or chained), runs a
//! write load (every type, several DBs, MULTI/EXEC, scripts in both
//! replication modes, TTLs, counters), injects one fault, stops the load
//! and checks: same offsets, same digests, counters as written, no full
//! sync that Redis's rules would have avoided, no crash.
//!
//! The schedule comes from one seed; a failure names it and keeps the logs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Conn, encode, free_port};

// ---------------------------------------------------------------------------
// A TCP proxy that can cut and refuse connections.

struct ProxyState {
    conns: Mutex<Vec<TcpStream>>,
    refuse: AtomicBool,
    stop: AtomicBool,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let state = Arc::new(ProxyState {
            conns: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            while !st.stop.load(Ordering::Relaxed) {
                let (c, _) = match l.accept() {
                    Ok(x) => x,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if st.refuse.load(Ordering::Relaxed) {
                    drop(c);
                    continue;
                }
                c.set_nonblocking(false).ok();
                let Ok(up) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                c.set_nodelay(true).ok();
                up.set_nodelay(true).ok();
                {
                    let mut v = st.conns.lock().unwrap();
                    v.push(c.try_clone().unwrap());
                    v.push(up.try_clone().unwrap());
                }
                pipe(c.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, c);
            }
        });
        Proxy { port, state }
    }

    /// Breaks every connection through the proxy.
    pub fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// While set, new connections are closed at once.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

// ---------------------------------------------------------------------------
// Nodes

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Keel(usize),
    Redis,
}

pub struct Node {
    pub kind: Kind,
    pub name: String,
    pub port: u16,
    pub dir: PathBuf,
    pub proxy: Proxy,
    child: Option<Child>,
    /// Index of the node it replicates from (None: master).
    pub parent: Option<usize>,
    /// sync_full / sync_partial_ok of its previous lives (stats reset at restart).
    pub retired_full: i64,
    pub retired_partial: i64,
    pub restarts: u32,
}

impl Node {
    fn args(&self, replicaof: Option<u16>) -> (String, Vec<String>) {
        let mut a: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--save".into(),
            "3600 1".into(),
            "--repl-diskless-sync-delay".into(),
            "0".into(),
            "--repl-ping-replica-period".into(),
            "3600".into(),
            "--repl-timeout".into(),
            "3600".into(),
            "--repl-backlog-size".into(),
            "16mb".into(),
            "--logfile".into(),
            format!("{}-{}.log", self.name, self.restarts),
        ];
        if let Some(p) = replicaof {
            a.extend(["--replicaof".into(), "127.0.0.1".into(), p.to_string()]);
        }
        match self.kind {
            Kind::Keel(n) => {
                a.extend(["--shards".into(), n.to_string()]);
                a.extend(["--enable-debug-command".into(), "yes".into()]);
                (env!("CARGO_BIN_EXE_keel").to_string(), a)
            }
            Kind::Redis => {
                a.extend([
                    "--enable-debug-command".into(),
                    "yes".into(),
                    "--appendonly".into(),
                    "no".into(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                ]);
                ("redis-server".to_string(), a)
            }
        }
    }

    fn spawn(&mut self, replicaof: Option<u16>) {
        let (prog, args) = self.args(replicaof);
        let child = Command::new(prog)
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(
                    self.dir
                        .join(format!("{}-{}.stderr", self.name, self.restarts)),
                )
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
            )
            .spawn()
            .expect("start a node");
        self.child = Some(child);
        let t = Instant::now();
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut c = Conn::from_stream(s, self.name.clone());
                c.send_lossy(b"*1\r\n$4\r\nPING\r\n");
                if c.try_read_reply(Duration::from_secs(2)).is_ok() {
                    return;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn wait_dead(&mut self) {
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while !matches!(c.try_wait(), Ok(Some(_))) {
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "{} did not exit",
                    self.name
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn info(c: &mut Conn, section: &str) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(&c.cmd(&["INFO", section])).into_owned();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn field(c: &mut Conn, section: &str, f: &str) -> String {
    info(c, section).remove(f).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The write load

/// splitmix64
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const SCRIPT: &str =
    "redis.call('INCRBY', KEYS[1], ARGV[1]) redis.call('RPUSH', KEYS[2], ARGV[1]) return 1";

/// Writes to the master until stopped; counts what was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<HashMap<String, i64>, String>>,
}

fn start_writer(port: u16, seed: u64, expected: HashMap<String, i64>, keel_master: bool) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        let mut rng = Rng(seed);
        let mut exp = expected;
        let dbs = ["0", "3", "7"];
        let sha = {
            let r = c.cmd(&["SCRIPT", "LOAD", SCRIPT]);
            String::from_utf8_lossy(&r)
                .split("\r\n")
                .nth(1)
                .unwrap_or("")
                .to_string()
        };
        if keel_master {
            let mode = if rng.chance(50) { "no" } else { "yes" };
            c.cmd(&["CONFIG", "SET", "lua-replicate-commands", mode]);
        }
        let mut n = 0u64;
        while !st.load(Ordering::Relaxed) {
            n += 1;
            let db = dbs[rng.below(3) as usize];
            c.cmd(&["SELECT", db]);
            let k = rng.below(20);
            let ctr = format!("ctr:{k}");
            let key = |e: &str| format!("{db}/{e}");
            let check = |r: Vec<u8>, what: &str| -> Result<Vec<u8>, String> {
                if r.first() == Some(&b'-') {
                    Err(format!("{what}: {}", String::from_utf8_lossy(&r)))
                } else {
                    Ok(r)
                }
            };
            match rng.below(12) {
                0 | 1 => {
                    let by = rng.below(10) + 1;
                    check(c.cmd(&["INCRBY", &ctr, &by.to_string()]), "INCRBY")?;
                    *exp.entry(key(&ctr)).or_default() += by as i64;
                }
                2 => {
                    check(c.cmd(&["SET", &format!("s:{k}"), &n.to_string()]), "SET")?;
                }
                3 => {
                    let px = (rng.below(1500) + 20).to_string();
                    check(
                        c.cmd(&["SET", &format!("ttl:{k}"), "v", "PX", &px]),
                        "SET PX",
                    )?;
                }
                4 => {
                    check(
                        c.cmd(&["RPUSH", &format!("l:{k}"), &n.to_string()]),
                        "RPUSH",
                    )?;
                    if rng.chance(30) {
                        check(c.cmd(&["LPOP", &format!("l:{k}")]), "LPOP")?;
                    }
                }
                5 => {
                    check(
                        c.cmd(&["HINCRBY", &format!("h:{}", k % 5), &format!("f{k}"), "1"]),
                        "HINCRBY",
                    )?;
                }
                6 => {
                    check(
                        c.cmd(&["SADD", &format!("set:{}", k % 4), &n.to_string()]),
                        "SADD",
                    )?;
                    if rng.chance(30) {
                        check(c.cmd(&["SPOP", &format!("set:{}", k % 4)]), "SPOP")?;
                    }
                }
                7 => {
                    check(
                        c.cmd(&["ZINCRBY", &format!("z:{}", k % 3), "1.5", &format!("m{k}")]),
                        "ZINCRBY",
                    )?;
                }
                8 => {
                    // A transaction over several keys (and shards).
                    c.cmd(&["MULTI"]);
                    c.cmd(&["INCRBY", &ctr, "100"]);
                    c.cmd(&["RPUSH", &format!("tx:{k}"), &n.to_string()]);
                    c.cmd(&["SET", &format!("s:{}", k + 1), "tx"]);
                    check(c.cmd(&["EXEC"]), "EXEC")?;
                    *exp.entry(key(&ctr)).or_default() += 100;
                }
                9 => {
                    let r = if rng.chance(50) && !sha.is_empty() {
                        c.cmd(&["EVALSHA", &sha, "2", &ctr, &format!("sl:{k}"), "7"])
                    } else {
                        c.cmd(&["EVAL", SCRIPT, "2", &ctr, &format!("sl:{k}"), "7"])
                    };
                    check(r, "script")?;
                    *exp.entry(key(&ctr)).or_default() += 7;
                }
                10 => {
                    check(
                        c.cmd(&[
                            "XADD",
                            &format!("x:{}", k % 2),
                            "MAXLEN",
                            "~",
                            "50",
                            "*",
                            "n",
                            &n.to_string(),
                        ]),
                        "XADD",
                    )?;
                }
                _ => {
                    check(c.cmd(&["DEL", &format!("s:{k}")]), "DEL")?;
                }
            }
        }
        c.cmd(&["SELECT", "0"]);
        Ok(exp)
    });
    Writer { stop, handle }
}

// ---------------------------------------------------------------------------
// The driver

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    CutLink,
    Kill9Replica,
    RestartReplicaShutdown,
    RestartReplicaKill9,
    RestartMaster,
    BacklogOverflow,
}

const FAULTS: [Fault; 6] = [
    Fault::CutLink,
    Fault::Kill9Replica,
    Fault::RestartReplicaShutdown,
    Fault::RestartReplicaKill9,
    Fault::RestartMaster,
    Fault::BacklogOverflow,
];

#[derive(Default, Debug)]
pub struct Summary {
    pub cycles: usize,
    pub faults: HashMap<String, usize>,
    pub full_syncs: i64,
    pub partial_syncs: i64,
    pub divergences: usize,
}

pub struct Torture {
    pub seed: u64,
    pub nodes: Vec<Node>,
    pub master: usize,
    rng: Rng,
    expected: HashMap<String, i64>,
    pub workdir: PathBuf,
    /// Full syncs the faults so far were allowed to cause.
    allowed_full: i64,
    pub log: Vec<String>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Torture {
    pub fn new(seed: u64) -> Torture {
        let workdir = std::env::temp_dir().join(format!(
            "keel-torture-{}-{}-{seed}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&workdir);
        std::fs::create_dir_all(&workdir).unwrap();
        let kinds = [
            Kind::Keel(1),
            Kind::Keel(2),
            Kind::Keel(4),
            Kind::Redis,
            Kind::Redis,
        ];
        let mut nodes = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let name = match kind {
                Kind::Keel(n) => format!("n{i}-keel{n}"),
                Kind::Redis => format!("n{i}-redis"),
            };
            let dir = workdir.join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let port = free_port();
            let mut node = Node {
                kind,
                name,
                port,
                dir,
                proxy: Proxy::start(port),
                child: None,
                parent: None,
                retired_full: 0,
                retired_partial: 0,
                restarts: 0,
            };
            node.spawn(None);
            nodes.push(node);
        }
        let mut t = Torture {
            seed,
            nodes,
            master: 0,
            rng: Rng(seed),
            expected: HashMap::new(),
            workdir,
            allowed_full: 0,
            log: Vec::new(),
        };
        // The initial topology: everyone follows node 0; four full syncs.
        t.allowed_full = (t.nodes.len() - 1) as i64;
        t.attach_all(0, false);
        t
    }

    fn note(&mut self, s: String) {
        self.log.push(s);
    }

    fn cmd(&self, i: usize, args: &[&str]) -> Vec<u8> {
        self.nodes[i].conn().cmd(args)
    }

    /// Makes `m` the master and the others its replicas (chained at random).
    fn attach_all(&mut self, m: usize, chain: bool) {
        if self.nodes[m].parent.is_some() {
            assert_eq!(self.cmd(m, &["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
            self.nodes[m].parent = None;
        }
        self.master = m;
        let mut order: Vec<usize> = (0..self.nodes.len()).filter(|&i| i != m).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let mut attached = vec![m];
        for x in order {
            let parent = if chain && self.rng.chance(50) {
                attached[self.rng.below(attached.len() as u64) as usize]
            } else {
                m
            };
            let pp = self.nodes[parent].proxy.port.to_string();
            let r = self.cmd(x, &["REPLICAOF", "127.0.0.1", &pp]);
            assert!(
                r.starts_with(b"+OK"),
                "{}: REPLICAOF: {}",
                self.nodes[x].name,
                String::from_utf8_lossy(&r)
            );
            self.nodes[x].parent = Some(parent);
            attached.push(x);
        }
        let topo: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}<-{}",
                    n.name,
                    n.parent
                        .map_or("-".to_string(), |p| self.nodes[p].name.clone())
                )
            })
            .collect();
        self.note(format!(
            "topology: master {} | {}",
            self.nodes[m].name,
            topo.join(" ")
        ));
        self.wait_linked();
    }

    /// Every replica's link is up and reports the master's replid.
    fn wait_linked(&mut self) {
        let m = self.master;
        let t = Instant::now();
        loop {
            let id = field(&mut self.nodes[m].conn(), "replication", "master_replid");
            let ok = (0..self.nodes.len()).filter(|&i| i != m).all(|i| {
                let inf = info(&mut self.nodes[i].conn(), "replication");
                inf.get("master_link_status").map(String::as_str) == Some("up")
                    && inf.get("master_replid") == Some(&id)
            });
            if ok {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "links did not come up: {}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the master's volatile keys have all expired (their DELs
    /// move the offset: a failover before they reach every node would
    /// rightly cost full syncs).
    fn wait_expired(&mut self) {
        let m = self.master;
        let t = Instant::now();
        loop {
            let text = String::from_utf8_lossy(&self.nodes[m].conn().cmd(&["INFO", "keyspace"]))
                .into_owned();
            if !text
                .lines()
                .any(|l| l.contains("expires=") && !l.contains("expires=0,"))
            {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "volatile keys did not expire: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every node's offset equals the master's.
    fn wait_converged(&mut self) {
        let m = self.master;
        let t = Instant::now();
        loop {
            let off = field(
                &mut self.nodes[m].conn(),
                "replication",
                "master_repl_offset",
            );
            let all = (0..self.nodes.len()).all(|i| {
                let inf = info(&mut self.nodes[i].conn(), "replication");
                inf.get("master_repl_offset") == Some(&off)
                    && (i == m || inf.get("master_link_status").map(String::as_str) == Some("up"))
            });
            if all {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "offsets did not converge: {}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn report(&mut self) -> String {
        let mut s = format!(
            "\nseed {} (replay: KEEL_TORTURE_SEED={}), logs in {}\n",
            self.seed,
            self.seed,
            self.workdir.display()
        );
        for i in 0..self.nodes.len() {
            let alive = self.nodes[i].alive();
            let line = if alive {
                let mut c = self.nodes[i].conn();
                let r = info(&mut c, "replication");
                let st = info(&mut c, "stats");
                format!(
                    "{}: role={} link={} offset={} replid={} replid2={} second={} sync_full={} partial_ok={} partial_err={}",
                    self.nodes[i].name,
                    r.get("role").cloned().unwrap_or_default(),
                    r.get("master_link_status").cloned().unwrap_or_default(),
                    r.get("master_repl_offset").cloned().unwrap_or_default(),
                    r.get("master_replid").cloned().unwrap_or_default(),
                    r.get("master_replid2").cloned().unwrap_or_default(),
                    r.get("second_repl_offset").cloned().unwrap_or_default(),
                    st.get("sync_full").cloned().unwrap_or_default(),
                    st.get("sync_partial_ok").cloned().unwrap_or_default(),
                    st.get("sync_partial_err").cloned().unwrap_or_default(),
                )
            } else {
                format!("{}: DEAD", self.nodes[i].name)
            };
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str("schedule:\n");
        for l in &self.log {
            s.push_str("  ");
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    fn total(&mut self, f: &str) -> i64 {
        let mut t = 0;
        for i in 0..self.nodes.len() {
            let v: i64 = field(&mut self.nodes[i].conn(), "stats", f)
                .parse()
                .unwrap_or(0);
            t += v + match f {
                "sync_full" => self.nodes[i].retired_full,
                "sync_partial_ok" => self.nodes[i].retired_partial,
                _ => 0,
            };
        }
        t
    }

    /// Node `i` and every node replicating from it, directly or not.
    fn subtree(&self, i: usize) -> usize {
        1 + (0..self.nodes.len())
            .filter(|&j| self.nodes[j].parent == Some(i))
            .map(|j| self.subtree(j))
            .sum::<usize>()
    }

    /// Restarts node `i` (SHUTDOWN or kill -9), keeping its `replicaof`.
    fn restart(&mut self, i: usize, kill9: bool) {
        self.restart_after(i, kill9, Duration::ZERO);
    }

    /// `restart`, staying down for `down` first.
    fn restart_after(&mut self, i: usize, kill9: bool, down: Duration) {
        let stats = info(&mut self.nodes[i].conn(), "stats");
        let n = |f: &str| {
            stats
                .get(f)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        self.nodes[i].retired_full += n("sync_full");
        self.nodes[i].retired_partial += n("sync_partial_ok");
        if kill9 {
            if let Some(c) = self.nodes[i].child.as_mut() {
                let _ = c.kill();
            }
        } else {
            let mut c = self.nodes[i].conn();
            c.send_lossy(&encode(&["SHUTDOWN"]));
        }
        self.nodes[i].wait_dead();
        std::thread::sleep(down);
        self.nodes[i].restarts += 1;
        let replicaof = self.nodes[i].parent.map(|p| self.nodes[p].proxy.port);
        self.nodes[i].spawn(replicaof);
    }

    /// One cycle; returns the fault injected.
    pub fn cycle(&mut self, n: usize) -> Fault {
        let m = self.rng.below(self.nodes.len() as u64) as usize;
        self.note(format!("cycle {n}: new master {}", self.nodes[m].name));
        self.attach_all(m, true);
        let keel_master = matches!(self.nodes[m].kind, Kind::Keel(_));
        let wseed = self.rng.next();
        let writer = start_writer(
            self.nodes[m].port,
            wseed,
            std::mem::take(&mut self.expected),
            keel_master,
        );
        std::thread::sleep(Duration::from_millis(150 + self.rng.below(250)));
        let fault = FAULTS[self.rng.below(FAULTS.len() as u64) as usize];
        let replicas: Vec<usize> = (0..self.nodes.len()).filter(|&i| i != m).collect();
        let victim = replicas[self.rng.below(replicas.len() as u64) as usize];
        self.note(format!(
            "  fault {fault:?} on {}",
            self.nodes[if fault == Fault::RestartMaster {
                m
            } else {
                victim
            }]
            .name
        ));
        let mut writer = Some(writer);
        match fault {
            Fault::CutLink => {
                let p = self.nodes[victim].parent.unwrap();
                self.nodes[p].proxy.cut();
            }
            Fault::Kill9Replica | Fault::RestartReplicaKill9 => {
                // Its last RDB may be old or missing: it may full-sync, and
                // then so must the replicas below it (its backlog is new).
                self.allowed_full += self.subtree(victim) as i64;
                // Kill9Replica leaves it dead a while under the write load.
                let down = if fault == Fault::Kill9Replica { 300 } else { 0 };
                self.restart_after(victim, true, Duration::from_millis(down));
            }
            Fault::RestartReplicaShutdown => {
                self.restart(victim, false);
            }
            Fault::RestartMaster => {
                // Writes pause around the master's restart: a write in
                // flight at SHUTDOWN would be neither lost nor counted.
                let w = writer.take().unwrap();
                w.stop.store(true, Ordering::Relaxed);
                self.expected = w
                    .handle
                    .join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("writer: {e}"));
                self.wait_converged();
                self.restart(m, false);
            }
            Fault::BacklogOverflow => {
                // The victim's link stays down while more than the backlog is written.
                let p = self.nodes[victim].parent.unwrap();
                self.nodes[p].proxy.refuse(true);
                self.nodes[p].proxy.cut();
                let big = "x".repeat(100 * 1024);
                let mut c = self.nodes[m].conn();
                for i in 0..200 {
                    c.cmd(&["SET", &format!("big:{}", i % 10), &big]);
                }
                std::thread::sleep(Duration::from_millis(200));
                self.nodes[p].proxy.refuse(false);
                // Every replica behind that proxy (the victim and its
                // siblings), and whatever hangs below them, resync in full.
                let behind: usize = (0..self.nodes.len())
                    .filter(|&j| self.nodes[j].parent == Some(p))
                    .map(|j| self.subtree(j))
                    .sum();
                self.allowed_full += behind as i64;
            }
        }
        std::thread::sleep(Duration::from_millis(100 + self.rng.below(200)));
        if let Some(w) = writer {
            w.stop.store(true, Ordering::Relaxed);
            self.expected = w
                .handle
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("writer: {e}\n{}", self.report()));
        }
        self.wait_linked();
        self.wait_expired();
        self.wait_converged();
        self.check(n);
        fault
    }

    fn check(&mut self, n: usize) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive() {
                let name = self.nodes[i].name.clone();
                panic!("cycle {n}: {name} crashed{}", self.report());
            }
        }
        let m = self.master;
        let d0 = String::from_utf8_lossy(&self.cmd(m, &["DEBUG", "DIGEST"])).into_owned();
        for i in 0..self.nodes.len() {
            let d = String::from_utf8_lossy(&self.cmd(i, &["DEBUG", "DIGEST"])).into_owned();
            if d != d0 {
                let r = self.report();
                panic!(
                    "cycle {n}: {} digest {d} differs from the master's {d0}{r}",
                    self.nodes[i].name
                );
            }
        }
        let mut c = self.nodes[m].conn();
        let expected: Vec<(String, i64)> =
            self.expected.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (k, v) in expected {
            let (db, key) = k.split_once('/').unwrap();
            c.cmd(&["SELECT", db]);
            let got = String::from_utf8_lossy(&c.cmd(&["GET", key])).into_owned();
            let want = format!("${}\r\n{v}\r\n", v.to_string().len());
            if got != want {
                let r = self.report();
                panic!("cycle {n}: counter {k} is {got:?}, the writer acknowledged {v}{r}");
            }
        }
        let full = self.total("sync_full");
        if full > self.allowed_full {
            let r = self.report();
            panic!(
                "cycle {n}: {full} full syncs where only {} were needed{r}",
                self.allowed_full
            );
        }
        // Unused allowances do not carry over.
        self.allowed_full = full;
    }

    pub fn run(&mut self, cycles: usize) -> Summary {
        let mut sum = Summary::default();
        for n in 0..cycles {
            let f = self.cycle(n);
            *sum.faults.entry(format!("{f:?}")).or_default() += 1;
            sum.cycles += 1;
        }
        sum.full_syncs = self.total("sync_full");
        sum.partial_syncs = self.total("sync_partial_ok");
        sum
    }
}

impl Drop for Torture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.workdir);
        }
    }
}
