//! keel: a Redis-compatible in-memory server, thread-per-core.

pub mod commands;
pub mod config;
pub mod log;
pub mod protocol;
pub mod server;
pub mod storage;
pub mod util;
