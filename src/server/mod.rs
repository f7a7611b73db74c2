//! The process: shard executors, the connections they accept, and the
//! hops between them. See docs/architecture.md.

pub mod blocking;
mod busy;
pub mod client;
pub mod cluster;
mod conn;
mod pipeline;
mod process;
pub(crate) use pipeline::acl_log_for;
pub mod gate;
mod idle;
mod loading;
pub mod ops;
pub mod persist;
pub mod pubsub;
pub mod scripts;
pub mod shard;
pub mod stores;
pub mod tracking;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use client::ClientInfo;
use process::{
    bind_addrs, block_signals, daemonize, disable_thp, listen, listen_failed, listen_unix,
    probe_bind, show_logo, unix_socket_config, write_pidfile,
};

/// Counters one shard thread writes (single writer, relaxed atomics) and
/// INFO reads from any thread.
pub struct ThreadStats {
    pub cmd_calls: Vec<AtomicU64>,
    pub cmd_usec: Vec<AtomicU64>,
    pub cmd_failed: Vec<AtomicU64>,
    pub cmd_rejected: Vec<AtomicU64>,
    pub total_commands: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Commands run on this thread with another shard's store borrowed.
    pub borrowed_cmds: AtomicU64,
    /// Latency histograms and error counts of commands run on this shard.
    pub ops: Mutex<ops::ShardOps>,
}

impl ThreadStats {
    pub fn new(ncommands: usize) -> Self {
        let v = || (0..ncommands).map(|_| AtomicU64::new(0)).collect();
        ThreadStats {
            cmd_calls: v(),
            cmd_usec: v(),
            cmd_failed: v(),
            cmd_rejected: v(),
            total_commands: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            borrowed_cmds: AtomicU64::new(0),
            ops: Default::default(),
        }
    }

    /// Single-writer increment: a load and a store, no read-modify-write.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for v in [
            &self.cmd_calls,
            &self.cmd_usec,
            &self.cmd_failed,
            &self.cmd_rejected,
        ] {
            for c in v.iter() {
                c.store(0, Ordering::Relaxed);
            }
        }
        for c in [
            &self.total_commands,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.connections_received,
            &self.rejected_connections,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.ops.lock().unwrap().reset();
    }
}

/// Process-wide state shared by all shards. Nothing here is touched per
/// command except single-writer counters.
pub struct Server {
    pub config: RwLock<Config>,
    pub nshards: usize,
    pub databases: usize,
    pub port: u16,
    pub run_id: String,
    pub start_ms: u64,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    pub next_client_id: AtomicU64,
    pub stats: Vec<ThreadStats>,
    pub shutdown: AtomicBool,
    pub lastsave: AtomicU64,
    /// requirepass is set: new clients start unauthenticated.
    pub auth_required: AtomicBool,
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    /// min-replicas-to-write, read by every write.
    pub min_replicas_to_write: AtomicU64,
    /// `stop-writes-on-bgsave-error yes` with save rules: a failed BGSAVE
    /// refuses writes (MISCONF) until a save succeeds.
    pub stop_writes_on_bgsave_err: AtomicBool,
    /// Encoding thresholds the write commands read each call (a config
    /// lock and a map lookup per SADD/HSET/ZADD showed up at ~2 %).
    pub encoding: EncodingLimits,
    /// MONITOR clients: each gets every command line through its channel.
    pub monitors: Mutex<Vec<(u64, crossbeam::channel::Sender<Vec<u8>>)>>,
    pub monitor_count: std::sync::atomic::AtomicUsize,
    pub pubsub: pubsub::Global,
    pub persist: persist::Persist,
    /// Clients waiting in a blocking command (INFO blocked_clients).
    pub blocked_clients: std::sync::atomic::AtomicUsize,
    /// `cluster-enabled yes`: the slot map (static, or kept by the bus).
    pub cluster: Option<cluster::Cluster>,
    /// Slow log, latency events and the configs they read per command.
    pub ops: ops::Ops,
}

/// After an ACL change: subscribers that lost a channel are disconnected;
/// every shard checks its own subscriptions.
fn acl_changed() {
    shard::with_current(|rt| {
        for s in 0..rt.srv.nshards {
            if s == rt.id {
                pubsub::kill_revoked(rt.srv, rt.id);
            } else {
                rt.post(s, shard::Msg::AclChanged);
            }
        }
    });
}

impl Server {
    pub fn new(config: Config, nshards: usize) -> Server {
        let ncommands = crate::commands::table().commands.len();
        let databases = config.get_i64("databases").clamp(1, 1 << 20) as usize;
        let port = config.get_i64("port") as u16;
        let run_id: String = (0..40)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
            .collect();
        let now = crate::storage::now_ms();
        let srv = Server {
            nshards,
            databases,
            port,
            run_id,
            start_ms: now,
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            stats: (0..nshards).map(|_| ThreadStats::new(ncommands)).collect(),
            shutdown: AtomicBool::new(false),
            lastsave: AtomicU64::new(now / 1000),
            auth_required: AtomicBool::new(false),
            proto_max_bulk_len: AtomicU64::new(0),
            client_query_buffer_limit: AtomicU64::new(0),
            min_replicas_to_write: AtomicU64::new(0),
            stop_writes_on_bgsave_err: AtomicBool::new(false),
            encoding: EncodingLimits::default(),
            monitors: Mutex::new(Vec::new()),
            monitor_count: Default::default(),
            pubsub: Default::default(),
            persist: persist::Persist::new(nshards),
            blocked_clients: Default::default(),
            cluster: match cluster::Cluster::from_config(&config) {
                Ok(c) => c,
                Err(e) => {
                    crate::log::warning(&e);
                    std::process::exit(1);
                }
            },
            ops: Default::default(),
            config: RwLock::new(config),
        };
        crate::storage::evict::init(nshards);
        crate::storage::install_hooks(crate::storage::Hooks {
            key_expired: key_gone,
            writes_paused: ops::writes_paused,
            applying_master: crate::replication::replica::MasterApply::active,
            is_replica: crate::replication::replica::is_replica,
            replica_extra_bytes: || {
                crate::replication::master::REPLICA_EXTRA_BYTES.load(Ordering::Relaxed)
            },
            ask_evict: shard::ask_evict,
            keyspace_event: pubsub::keyspace_event,
        });
        crate::acl::on_change(acl_changed);
        srv.config_changed();
        srv
    }

    /// Refreshes the hot copies of config values after CONFIG SET.
    pub fn config_changed(&self) {
        let c = self.config.read().unwrap();
        tracking::MAX_KEYS.store(
            c.get_i64("tracking-table-max-keys").max(0) as u64,
            Ordering::Relaxed,
        );
        crate::storage::evict::refresh(&c);
        crate::acl::set_pubsub_default(c.get("acl-pubsub-default"));
        crate::acl::mirror_requirepass(c.get("requirepass"));
        self.auth_required
            .store(crate::acl::auth_required(), Ordering::Relaxed);
        self.proto_max_bulk_len
            .store(c.get_i64("proto-max-bulk-len") as u64, Ordering::Relaxed);
        self.client_query_buffer_limit.store(
            c.get_i64("client-query-buffer-limit") as u64,
            Ordering::Relaxed,
        );
        self.encoding.refresh(&c);
        self.min_replicas_to_write.store(
            c.get_i64("min-replicas-to-write").max(0) as u64,
            Ordering::Relaxed,
        );
        crate::replication::master::refresh_good_replicas_with(c.get_i64("min-replicas-max-lag"));
        self.ops.configure(&c);
        self.stop_writes_on_bgsave_err.store(
            c.get_bool("stop-writes-on-bgsave-error") && !c.get("save").trim().is_empty(),
            Ordering::Relaxed,
        );
        crate::aof::set_policy(c.get("appendfsync"));
        crate::aof::TIMESTAMPS.store(c.get_bool("aof-timestamp-enabled"), Ordering::Relaxed);
        crate::aof::NO_FSYNC_ON_REWRITE
            .store(c.get_bool("no-appendfsync-on-rewrite"), Ordering::Relaxed);
        crate::aof::set_auto_gc_disabled(c.get_bool("aof-disable-auto-gc"));
        crate::aof::config_changed(self, c.get_bool("appendonly"));
        crate::storage::notify::set_flags(c.notify_flags);
        drop(c);
        if let Some(cl) = &self.cluster {
            cl.config_changed(self);
        }
    }

    /// writeCommandsDeniedByDiskError: a failed BGSAVE (with
    /// stop-writes-on-bgsave-error) or a failed AOF write.
    pub fn writes_denied_by_disk_error(&self) -> bool {
        (self.stop_writes_on_bgsave_err.load(Ordering::Relaxed)
            && !self.persist.last_bgsave_ok.load(Ordering::Relaxed))
            || crate::aof::write_failed()
    }

    /// Sends a command to every MONITOR client, formatted as Redis does:
    /// `+<secs>.<usecs> [<db> <addr>] "arg" "arg"...`.
    pub fn feed_monitors(&self, db: usize, addr: &str, args: &[bytes::Bytes]) {
        let us = crate::storage::now_us();
        let mut line = format!(
            "+{}.{:06} [{} {}]",
            us / 1_000_000,
            us % 1_000_000,
            db,
            addr
        );
        for (j, a) in args.iter().enumerate() {
            line.push(' ');
            if ops::redacted(args, j) {
                line.push_str("\"(redacted)\"");
            } else {
                line.push_str(&crate::util::repr(a));
            }
        }
        line.push_str("\r\n");
        let monitors = self.monitors.lock().unwrap();
        for (_, tx) in monitors.iter() {
            let _ = tx.try_send(line.clone().into_bytes());
        }
    }

    pub fn uptime_secs(&self) -> u64 {
        (crate::storage::now_ms() - self.start_ms) / 1000
    }
}

/// Asks the process to shut down (SHUTDOWN command): the main thread's
/// signal wait picks it up.
pub fn request_shutdown() {
    // SAFETY: sending a signal to our own process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}

type Sender = glommio::channels::shared_channel::SharedSender<shard::Msg>;
type Receiver = glommio::channels::shared_channel::SharedReceiver<shard::Msg>;

/// The hop mesh: one bounded SPSC channel for every ordered pair of shards.
/// Entry i holds shard i's senders (indexed by destination, None for itself)
/// and its receivers.
pub fn build_mesh(n: usize) -> Vec<(Vec<Option<Sender>>, Vec<Receiver>)> {
    let mut senders: Vec<Vec<Option<Sender>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut receivers: Vec<Vec<Receiver>> = (0..n).map(|_| Vec::new()).collect();
    for (i, row) in senders.iter_mut().enumerate() {
        for (j, slot) in row.iter_mut().enumerate() {
            if i != j {
                let (tx, rx) = glommio::channels::shared_channel::new_bounded(4096);
                *slot = Some(tx);
                receivers[j].push(rx);
            }
        }
    }
    senders.into_iter().zip(receivers).collect()
}

/// Inside shard i's executor: connects its side of the mesh and starts
/// draining its inbound channels.
pub async fn start_shard(
    i: usize,
    srv: &'static Server,
    stores: shard::StoreRegistry,
    senders: Vec<Option<Sender>>,
    receivers: Vec<Receiver>,
) -> std::rc::Rc<shard::ShardRt> {
    // Each side of a shared channel waits for the other to connect:
    // connect receivers in the background so no pair of shards waits on
    // each other.
    let rx_tasks: Vec<_> = receivers
        .into_iter()
        .map(|rx| glommio::spawn_local(rx.connect()))
        .collect();
    let mut peers = Vec::new();
    for s in senders {
        peers.push(match s {
            Some(s) => Some(s.connect().await),
            None => None,
        });
    }
    let rt = std::rc::Rc::new(shard::ShardRt::new(i, srv, stores, peers));
    shard::set_current(&rt);
    crate::crash::thread_init();
    for t in rx_tasks {
        let rx = t.await;
        glommio::spawn_local(rt.clone().receive_loop(rx)).detach();
    }
    rt
}

/// Hands config the checks that need the command table and the cluster
/// map (config sits below both); call before reading the config.
pub fn register_config_checks() {
    crate::config::register_checks(crate::config::UpperChecks {
        renames: |r| crate::commands::table::renamed_names(r).map(|_| ()),
        loaded: |cfg| cluster::ClusterMap::from_config(cfg).map(|_| ()),
    });
}

/// Starts the server; returns the process exit code.
pub fn run(config: Config) -> i32 {
    // Before any thread exists: fork keeps only the calling one.
    let daemonized = config.get_bool("daemonize");
    if daemonized {
        daemonize();
    }
    crate::log::set_level(config.get("loglevel"));
    if let Err(e) = crate::log::set_file(config.get("logfile")) {
        eprintln!("Can't open the log file: {e}");
        return 1;
    }
    crate::crash::install();
    if let Err(e) = crate::commands::table::install_renames(&config.renames) {
        crate::log::warning(e);
        return 1;
    }
    if config.get("disable-thp") == "yes" {
        disable_thp();
    }
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_else(|| vec![0]);
    let nshards = match config.get_i64("shards") {
        n if n > 0 => n as usize,
        _ => cores.len().max(1),
    };
    let spin_us = config.get_i64("hop-spin-us").max(0) as u64;
    if let Err(e) = crate::acl::load_at_startup(
        config.get("requirepass"),
        config.get("aclfile"),
        &config.users,
    ) {
        crate::log::warning(&e);
        return 1;
    }
    let srv: &'static Server = Box::leak(Box::new(Server::new(config, nshards)));
    match &srv.cluster {
        // The bus moves slots at run time: a layout that spreads any set
        // of slots over every shard.
        Some(c) if c.bus.is_some() => crate::storage::slot::set_interleaved_layout(nshards),
        Some(c) => crate::storage::slot::set_cluster_layout(nshards, &c.map().owned()),
        None => {}
    }
    crate::replication::master::start(srv);
    crate::log::notice("oO0OoO0OoO0Oo keel is starting oO0OoO0OoO0Oo");
    crate::log::notice(&format!(
        "keel version={}, bits=64, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    ));
    crate::log::notice(&format!(
        "Configuration loaded ({} shards, {} databases)",
        nshards, srv.databases
    ));

    let addrs = bind_addrs(srv.config.read().unwrap().get("bind"), srv.port);
    let backlog = srv
        .config
        .read()
        .unwrap()
        .get_i64("tcp-backlog")
        .clamp(0, i32::MAX as i64) as i32;
    let unix = unix_socket_config(&srv.config.read().unwrap());
    // A probe bind without SO_REUSEPORT, so a port already in use fails like
    // in Redis instead of silently sharing it with another process.
    let mut usable = Vec::new();
    for (addr, optional) in &addrs {
        match probe_bind(addr) {
            Ok(()) => usable.push(addr.clone()),
            Err(e) if *optional => {
                crate::log::warning(&format!(
                    "Warning: Could not create server TCP listening socket {addr}: {e}"
                ));
            }
            Err(e) => {
                crate::log::warning(&format!(
                    "Warning: Could not create server TCP listening socket {addr}: {e}"
                ));
                crate::log::warning(&listen_failed(srv.port));
                return 1;
            }
        }
    }
    if usable.is_empty() {
        crate::log::warning(&listen_failed(srv.port));
        return 1;
    }

    let stores = shard::StoreRegistry::new(
        (0..nshards)
            .map(|i| crate::storage::ShardStore::new(i, srv.databases))
            .collect(),
    );
    // No shard thread exists yet: main owns every store until they start.
    let mut all_stores = stores.startup();

    // With `appendonly yes` the AOF is the dataset (as Redis: the RDB is
    // not read).
    let aof_on = srv.config.read().unwrap().get_bool("appendonly");
    // The AOF loads here, before the shards run; the RDB file once they
    // listen (server::loading), as Redis serves -LOADING meanwhile.
    if aof_on && let Err(e) = crate::aof::load_at_startup(srv, &mut all_stores) {
        // Stock has shown its logo (bound, then loading) before this
        // error: whoever waits for the PID line also sees the refusal.
        show_logo(srv);
        crate::log::warning(&format!("Fatal error loading the DB: {e}. Exiting."));
        return 1;
    }
    if aof_on && let Err(e) = crate::aof::start(srv, &all_stores.all()) {
        show_logo(srv);
        crate::log::warning(&e);
        return 1;
    }
    // A cluster replica (nodes.conf) follows its master as `replicaof` would.
    if let Some((host, port)) = srv.cluster.as_ref().and_then(|c| c.startup_master()) {
        let _ = srv
            .config
            .write()
            .unwrap()
            .set("replicaof", &format!("{host} {port}"));
    }
    if let Err(e) = crate::cluster::bus::start(srv) {
        crate::log::warning(&e);
        return 1;
    }
    crate::aof::booted();
    // `replicaof` in the config: follow that master from the file's position.
    let replicaof = srv.config.read().unwrap().get("replicaof").to_string();
    let mut words = replicaof.split_whitespace();
    let follow: Option<(String, u16)> =
        match (words.next(), words.next().and_then(|p| p.parse().ok())) {
            (Some(host), Some(port)) => Some((host.to_string(), port)),
            _ => None,
        };
    if follow.is_some() {
        for store in all_stores.all_mut() {
            for db in store.dbs.iter_mut() {
                db.replica_mode = true;
            }
        }
    }
    drop(all_stores);

    // The RDB's keys travel to their shards once those run.
    let feeds = (!aof_on).then(|| loading::make_feeds(nshards));
    if feeds.is_none() {
        loading::open_doors();
    }

    let mesh = build_mesh(nshards);

    let sigset = block_signals();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::new();
    for (i, (my_senders, my_receivers)) in mesh.into_iter().enumerate() {
        let cpu = cores[i % cores.len()];
        let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
            .name(&format!("keel-shard-{i}"))
            // glommio's registered-buffer arena serves DMA file I/O, which
            // keel does not use; its 10 MiB default per shard would be
            // counted against maxmemory and RSS.
            .io_memory(512 << 10);
        let stores = stores.clone();
        let usable = usable.clone();
        let unix = if i == 0 { unix.clone() } else { None };
        let ready_tx = ready_tx.clone();
        let h = builder
            .spawn(move || async move {
                let rt = start_shard(i, srv, stores, my_senders, my_receivers).await;
                if nshards > 1 {
                    // Lends the store while idle; spins (adaptively, up to
                    // hop-spin-us) before parking: waking a parked executor
                    // costs ~50 µs here (docs/performance.md).
                    idle::install(&rt, std::time::Duration::from_micros(spin_us));
                }
                loading::spawn_feed(&rt);
                glommio::spawn_local(cron(rt.clone())).detach();
                glommio::spawn_local(crate::replication::flusher()).detach();
                if i == 0 && srv.cluster.as_ref().is_some_and(|c| c.bus.is_some()) {
                    glommio::spawn_local(cluster::deliver_bus_publish(rt.clone())).detach();
                }
                if i == 0 {
                    // `replicaof` at startup: the link starts after the load.
                    let rt = rt.clone();
                    glommio::spawn_local(async move {
                        loading::booted().await;
                        if let Some(link_gen) = crate::replication::replica::startup_gen() {
                            glommio::spawn_local(crate::replication::replica::link_task(
                                rt, link_gen,
                            ))
                            .detach();
                        }
                    })
                    .detach();
                }
                let mut listeners = Vec::new();
                for addr in &usable {
                    match listen(addr, backlog) {
                        Ok(l) => listeners.push(l),
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("{addr}: {e}")));
                            return;
                        }
                    }
                }
                let mut accepts = Vec::new();
                // One shard serves the unix socket: there is no SO_REUSEPORT
                // spreading for it.
                if let Some((path, perm)) = unix {
                    match listen_unix(&path, perm, backlog) {
                        Ok(l) => {
                            let rt = rt.clone();
                            let path: std::rc::Rc<str> = path.into();
                            accepts.push(glommio::spawn_local(async move {
                                loop {
                                    match l.accept().await {
                                        Ok(s) => conn::spawn_unix(&rt, s, &path),
                                        Err(e) => {
                                            crate::log::warning(&format!(
                                                "Accepting client connection: {e}"
                                            ));
                                            glommio::timer::sleep(
                                                std::time::Duration::from_millis(10),
                                            )
                                            .await;
                                        }
                                    }
                                }
                            }));
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("unix socket {path}: {e}")));
                            return;
                        }
                    }
                }
                let _ = ready_tx.send(Ok(()));
                // Connections wait in the backlog until the load lets them in.
                loading::doors().await;
                for l in listeners {
                    // A script stuck on this thread accepts from it (busy).
                    busy::add_listener(std::os::fd::AsRawFd::as_raw_fd(&l));
                    let rt = rt.clone();
                    accepts.push(glommio::spawn_local(async move {
                        loop {
                            match l.accept().await {
                                Ok(s) => {
                                    conn::spawn(&rt, s);
                                }
                                Err(e) => {
                                    crate::log::warning(&format!(
                                        "Accepting client connection: {e}"
                                    ));
                                    glommio::timer::sleep(std::time::Duration::from_millis(10))
                                        .await;
                                }
                            }
                        }
                    }));
                }
                // Accept loops never end; the executor lives until the process exits.
                futures_lite::future::pending::<()>().await;
                drop(accepts);
            })
            .expect("spawn shard executor");
        handles.push(h);
    }
    drop(ready_tx);
    for _ in 0..nshards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                crate::log::warning(&format!("Could not listen on {e}"));
                // A port taken after the probe: the line supervisors (and
                // Redis's test suite, which then picks another port) wait for.
                crate::log::warning(&listen_failed(srv.port));
                return 1;
            }
            Err(_) => return 1,
        }
    }
    // As stock: the logo once the listeners are up, before taking clients.
    show_logo(srv);
    crate::log::notice(&format!(
        "Server initialized, listening on port {}",
        srv.port
    ));
    // The load runs beside the signal loop: a SIGTERM meanwhile exits
    // without saving, as Redis.
    let unix_path = unix.as_ref().map(|(p, _)| p.clone());
    std::thread::Builder::new()
        .name("keel-loader".into())
        .spawn(move || {
            if let Some((senders, done)) = feeds
                && let Err(e) = load_rdb(srv, nshards, senders, done)
            {
                crate::log::warning(&format!("Fatal error loading the DB: {e}. Exiting."));
                std::process::exit(1);
            }
            if let Some((host, port)) = follow {
                let restored = srv.persist.restored_position.lock().unwrap().take();
                crate::replication::replica::configure_at_startup(srv, host, port, restored);
            }
            persist::stop_loading(srv);
            loading::set_booted();
            loading::open_doors();
            crate::log::notice("Ready to accept connections tcp");
            if let Some(path) = &unix_path {
                crate::log::notice(&format!(
                    "The server is now ready to accept connections at {path}"
                ));
            }
        })
        .expect("spawn loader thread");
    write_pidfile(srv, daemonized);

    // The main thread only waits for a shutdown signal.
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on the set blocked above.
        let rc = unsafe { libc::sigwait(&sigset, &mut sig) };
        if rc != 0 {
            continue;
        }
        let name = if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        if srv.shutdown.load(Ordering::Relaxed) {
            // SHUTDOWN already saved what it had to.
            crate::log::notice("keel is now ready to exit, bye bye...");
            return 0;
        }
        if srv.persist.loading.load(Ordering::Acquire) {
            // Redis exits at once, saving nothing, when asked during a load.
            crate::log::warning(&format!("Received {name} while loading: exiting now."));
            return 0;
        }
        if srv.persist.shutdown_requested.swap(true, Ordering::AcqRel) {
            // A second signal while the final save runs: leave now, as Redis.
            crate::log::warning("You insist... exiting now.");
            return 1;
        }
        crate::log::notice(&format!("Received {name} scheduling shutdown..."));
        // Shard 0's cron saves (when save rules say so) and exits the process.
    }
}

/// Hot copies of the `*-max-*` encoding thresholds (CONFIG SET refreshes them).
#[derive(Default)]
pub struct EncodingLimits {
    pub set_max_intset_entries: AtomicU64,
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
}

impl EncodingLimits {
    fn refresh(&self, c: &crate::config::Config) {
        let set =
            |a: &AtomicU64, name: &str| a.store(c.get_i64(name).max(0) as u64, Ordering::Relaxed);
        set(&self.set_max_intset_entries, "set-max-intset-entries");
        set(&self.hash_max_listpack_entries, "hash-max-listpack-entries");
        set(&self.hash_max_listpack_value, "hash-max-listpack-value");
        set(&self.zset_max_listpack_entries, "zset-max-listpack-entries");
        set(&self.zset_max_listpack_value, "zset-max-listpack-value");
    }
}

/// The startup load of the RDB file: keys go in batches to their shards'
/// feeds; returns once every shard applied its part.
fn load_rdb(
    srv: &'static Server,
    nshards: usize,
    senders: Vec<loading::FeedTx>,
    done: std::sync::mpsc::Receiver<()>,
) -> Result<(), String> {
    let mut batches: Vec<loading::Batch> = (0..nshards).map(|_| Vec::new()).collect();
    let loaded = persist::load_at_startup(
        srv,
        nshards,
        |shard, db, key, rec| {
            batches[shard].push((db, key, rec));
            if batches[shard].len() >= loading::BATCH {
                let b = std::mem::take(&mut batches[shard]);
                senders[shard].send(b);
            }
        },
        loading::open_doors,
    );
    for (tx, b) in senders.iter().zip(batches) {
        if !b.is_empty() {
            tx.send(b);
        }
    }
    drop(senders);
    loaded?;
    for _ in 0..nshards {
        let _ = done.recv();
    }
    Ok(())
}

/// DEBUG PAUSE-CRON: the periodic work is skipped while set.
pub static PAUSE_CRON: AtomicBool = AtomicBool::new(false);

/// Periodic per-shard work (Redis's serverCron share for this shard).
async fn cron(rt: std::rc::Rc<shard::ShardRt>) {
    let mut saved_gen = 0;
    let mut last_collect = std::time::Instant::now();
    let mut last_cpu_sample = std::time::Instant::now();
    loop {
        let hz = rt.srv.config.read().unwrap().get_i64("hz").clamp(1, 500) as u64;
        glommio::timer::sleep(std::time::Duration::from_millis(1000 / hz)).await;
        if PAUSE_CRON.load(Ordering::Relaxed) {
            continue;
        }
        if last_collect.elapsed() >= std::time::Duration::from_secs(1) {
            last_collect = std::time::Instant::now();
            conn::release_idle_buffers(crate::storage::now_ms());
            crate::memory::collect(false);
        }
        // Nothing expires, is evicted or saved while the dataset loads.
        if rt.gate.is_free()
            && !rt
                .srv
                .persist
                .loading
                .load(std::sync::atomic::Ordering::Acquire)
        {
            // Owner thread with its gate free: nobody else touches the store.
            let mut own = rt.own();
            let store = own.store(rt.id);
            let now = crate::storage::now_ms();
            crate::storage::db::set_command_time(now);
            if crate::storage::expire::active_expire_enabled()
                && !crate::server::ops::writes_paused()
            {
                // Redis's slow cycle: at most 25% of the cron period.
                let t = std::time::Instant::now();
                // active-expire-effort 1..10 raises it to 43%, as in Redis.
                let effort = rt
                    .srv
                    .config
                    .read()
                    .unwrap()
                    .get_i64("active-expire-effort");
                let percent = 25 + 2 * (effort.clamp(1, 10) as u64 - 1);
                crate::storage::expire::active_expire_cycle(store, now, percent * 10_000 / hz);
                rt.srv
                    .ops
                    .latency_sample("expire-cycle", t.elapsed().as_millis() as u64);
            }
            // Every shard gives back its part when over maxmemory, writes or not.
            crate::storage::evict::make_room(store, now, 100_000, 1000);
            blocking::sweep(store);
            watch::prune_watched(store);
            tracking::limit(rt.srv, rt.id);
            tracking::flush_pending(rt.srv);
            persist::shard_cron(rt.srv, store, &mut saved_gen);
        }
        if rt.id == 0 {
            if rt.srv.nshards > 1 && last_cpu_sample.elapsed() >= std::time::Duration::from_secs(1)
            {
                last_cpu_sample = std::time::Instant::now();
                idle::sample_cpu(rt.srv.nshards);
            }
            ops::track_instantaneous(rt.srv);
            crate::replication::failover::tick(&rt).await;
            persistence_cron(&rt).await;
        }
    }
}

/// storage's `key_expired` hook: replicas get a DEL, trackers an invalidation.
fn key_gone(db: usize, key: &[u8]) {
    crate::replication::expired(db, key);
    tracking::key_gone(key);
}

/// Shard 0's share of persistence: reap the BGSAVE child, apply the `save`
/// rules, and carry out a shutdown asked for by a signal.
async fn persistence_cron(rt: &std::rc::Rc<shard::ShardRt>) {
    let srv = rt.srv;
    let p = &srv.persist;
    persist::reap_child(srv);
    let all: Vec<usize> = (0..srv.nshards).collect();
    if p.shutdown_requested.load(Ordering::Acquire) {
        let ok = rt
            .with_shards(&all, |view| {
                let mut stores = view.all_mut();
                persist::prepare_for_shutdown(srv, &mut stores, false, false, false)
            })
            .await;
        if ok.is_err() {
            crate::log::warning(
                "Errors trying to shut down the server. Check the logs for more information.",
            );
            p.shutdown_requested.store(false, Ordering::Release);
            return;
        }
        crate::log::notice("keel is now ready to exit, bye bye...");
        std::process::exit(0);
    }
    if !p.bgsave_in_progress() && crate::aof::rewrite_due(srv) {
        let r = rt
            .with_shards(&all, |view| {
                let stores = view.all();
                persist::bgsave(rt, &stores, persist::Target::AofRewrite)
            })
            .await;
        if let Err(e) = r {
            crate::log::warning(&e);
        }
        return;
    }
    let due = persist::rule_due(srv);
    let scheduled = !p.bgsave_in_progress() && p.scheduled.swap(false, Ordering::AcqRel);
    if due.is_none() && !scheduled {
        return;
    }
    if let Some((changes, secs)) = due {
        crate::log::notice(&format!("{changes} changes in {secs} seconds. Saving..."));
    }
    let r = rt
        .with_shards(&all, |view| {
            let stores = view.all();
            persist::bgsave(rt, &stores, persist::Target::File)
        })
        .await;
    if let Err(e) = r {
        crate::log::warning(&e);
    }
}
