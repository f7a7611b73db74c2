//! Keyspace of one shard: 16 (configurable) DBs of keys, values and expiry times.
//! Only the owning shard thread touches a store, except while a coordinator
//! holds the shard (see server::gate).

pub mod db;
pub mod dict;
pub mod digest;
pub mod evict;
pub mod expire;
pub mod hash;
pub mod hll;
pub mod list;
pub mod set;
pub mod slot;
pub mod stream;
pub mod strval;
pub mod zset;

pub use db::{Db, Entry, Key, Record, Str, Value};

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
    /// Clients blocked on (db, key), in arrival order; kept by the runtime.
    pub blocked: std::collections::HashMap<
        (usize, Key),
        std::collections::VecDeque<crate::server::blocking::BlockedEntry>,
    >,
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
