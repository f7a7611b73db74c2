//! Keyspace of one shard: 16 (configurable) DBs of keys, values and expiry times.
//! Only the owning shard thread touches a store, except while a coordinator
//! holds the shard (see server::gate).

pub mod blocked;
pub mod db;
pub mod dict;
pub mod digest;
pub mod evict;
pub mod expire;
pub mod hash;
pub mod hll;
pub mod keyhash;
pub mod list;
pub mod notify;
pub mod packed;
pub mod set;
pub mod slot;
pub mod slot_index;
pub mod stream;
pub mod strval;
pub mod value;
pub mod zset;

pub use db::{Db, Entry, Key, Record, Str, Value};

/// What storage tells, or asks, the layers above it (it imports nothing of
/// theirs). Installed once at startup by the server; while none is
/// installed (unit tests, fuzzing) nothing is asked or told.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// A key left because its TTL passed or it was evicted: replicas and
    /// the stream get a DEL.
    pub key_expired: fn(db: usize, key: &[u8]),
    /// Writes are held (CLIENT PAUSE WRITE, FAILOVER): nothing is expired
    /// or evicted.
    pub writes_paused: fn() -> bool,
    /// On a replica, a command of the master is running: it still sees
    /// expired keys (the master's DEL ends them).
    pub applying_master: fn() -> bool,
    /// This node is a replica (replica-ignore-maxmemory).
    pub is_replica: fn() -> bool,
    /// Replication buffers maxmemory does not count.
    pub replica_extra_bytes: fn() -> u64,
    /// Asks a shard to evict soon, without waiting; false when the request
    /// could not be sent. The shard may be the caller's own thread, or one
    /// the caller holds (a multi-shard command): it evicts once free.
    pub ask_evict: fn(usize) -> bool,
    /// Publishes a keyspace notification (`notify::notify` already checked
    /// that its class is on; `flags` says whether K and/or E are).
    pub keyspace_event: fn(flags: u32, event: &'static str, key: &[u8], db: usize),
}

static HOOKS: std::sync::OnceLock<Hooks> = std::sync::OnceLock::new();

pub fn install_hooks(hooks: Hooks) {
    let _ = HOOKS.set(hooks);
}

pub(crate) fn hooks() -> Option<&'static Hooks> {
    HOOKS.get()
}

/// Per-shard counters, summed across shards for INFO.
#[derive(Default, Debug, Clone)]
pub struct ShardStats {
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_stale_perc: f64,
}

/// Everything a shard owns.
pub struct ShardStore {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub stats: ShardStats,
    /// Writes since the last save (rdb_changes_since_last_save, summed).
    pub dirty: u64,
    /// Clients blocked on (db, key), in arrival order; served by the runtime.
    pub blocked:
        std::collections::HashMap<(usize, Key), std::collections::VecDeque<blocked::BlockedEntry>>,
    /// Dirty flags of clients WATCHing (db, key).
    pub watched:
        std::collections::HashMap<(usize, Key), Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>>,
    /// Keys signalled ready by the last command, served by the runtime.
    pub ready_keys: Vec<(usize, Key)>,
}

impl ShardStore {
    pub fn new(id: usize, databases: usize) -> Self {
        ShardStore {
            id,
            dbs: (0..databases)
                .map(|index| Db {
                    index,
                    ..Db::default()
                })
                .collect(),
            stats: ShardStats::default(),
            dirty: 0,
            blocked: Default::default(),
            ready_keys: Vec::new(),
            watched: Default::default(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
