//! keel: a Redis-compatible in-memory server, thread-per-core.

pub mod acl;
pub mod aof;
pub mod cluster;
pub mod cmdspec;
pub mod commands;
pub mod config;
pub mod crash;
#[doc(hidden)]
pub mod fuzzing;
pub mod log;
pub mod memory;
pub mod protocol;
pub mod rdb;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod storage;
pub mod util;

/// The Redis version keel reports (INFO, HELLO) so clients enable 7.0 features.
pub const REDIS_VERSION: &str = "7.0.15";
