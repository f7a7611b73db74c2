//! The process: shard executors, the connections they accept, and the
//! hops between them. See docs/architecture.md.

pub mod client;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use client::ClientInfo;

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
        }
    }

    /// Single-writer increment: a load and a store, no read-modify-write.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for v in [&self.cmd_calls, &self.cmd_usec, &self.cmd_failed, &self.cmd_rejected] {
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
            config: RwLock::new(config),
        };
        srv.config_changed();
        srv
    }

    /// Refreshes the hot copies of config values after CONFIG SET.
    pub fn config_changed(&self) {
        let c = self.config.read().unwrap();
        self.auth_required
            .store(!c.get("requirepass").is_empty(), Ordering::Relaxed);
        self.proto_max_bulk_len
            .store(c.get_i64("proto-max-bulk-len") as u64, Ordering::Relaxed);
        self.client_query_buffer_limit
            .store(c.get_i64("client-query-buffer-limit") as u64, Ordering::Relaxed);
    }

    pub fn uptime_secs(&self) -> u64 {
        (crate::storage::now_ms() - self.start_ms) / 1000
    }
}

/// Starts the server; returns the process exit code.
pub fn run(_config: Config) -> i32 {
    0
}
