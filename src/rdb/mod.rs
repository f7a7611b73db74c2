//! RDB files and DUMP payloads: the format Redis persists and replicates with.
//!
//! # Loading
//! [`load`] streams an RDB (versions 1..=12, i.e. anything Redis up to 7.4/8.0
//! writes) from any `Read`, handing each key to `on_key(db, key, entry)` and
//! each AUX field to `on_aux(key, value)`. It reads exactly up to the end of
//! the checksum and never past it, so a replica can pass the buffered socket
//! it keeps reading the replication stream from. It does many small reads:
//! give it a `BufReader`.
//!
//! * Every opcode is handled: AUX, SELECTDB (a DB >= `LoadOpts::databases` is
//!   an error), RESIZEDB (a hint, ignored: no allocation is trusted to it),
//!   EXPIRETIME / EXPIRETIME_MS, IDLE (back-dates `Entry::lru`), FREQ (read and
//!   ignored: keel keeps no LFU counter), FUNCTION2 (raw library source into
//!   `LoadInfo::functions`), FUNCTION_PRE_GA (converted to the `#!engine
//!   name=..` form as 7.0 does), MODULE_AUX and MODULE_2 values (skipped by
//!   walking their tagged values when `LoadOpts::skip_modules`, else an
//!   error, as stock Redis refuses them), SLOT_INFO (ignored), EOF.
//! * Every value type: string, list (linked, ziplist, quicklist 1 and 2 with
//!   PLAIN and PACKED nodes), set (hashtable, intset, listpack), zset (string
//!   and binary doubles, ziplist, listpack), hash (hashtable, zipmap, ziplist,
//!   listpack, and the 7.4 field-TTL types 22-25), stream listpacks 1-3.
//! * Hash field TTLs (7.4) are not modelled by keel: a field whose TTL has
//!   already passed is dropped when `drop_expired` is set (what a client of the
//!   7.4 master would see), every other field is kept **without** its TTL.
//! * The in-memory encoding flags are set as Redis 7.0 would after loading
//!   with the limits in `LoadOpts::limits` (hash/zset listpack, set intset).
//! * Keys whose TTL passed are dropped (and counted) when
//!   `LoadOpts::drop_expired` is set (a master), kept otherwise (a replica).
//! * Empty collections are skipped and counted, as Redis does.
//! * Corrupt input gives an `RdbError`, never a panic, and no allocation is
//!   sized from an unchecked length: strings are read in bounded chunks and
//!   collections grow as elements actually arrive.
//! * The CRC64 trailer is checked (unless `verify_checksum` is off or it is
//!   zero, which means "saved without checksum").
//!
//! # Saving
//! [`save`] writes RDB version 10, which Redis 7.0 loads: AUX redis-ver
//! 7.0.15, redis-bits, ctime, used-mem, the repl fields when given, aof-base,
//! one `lua` AUX per script body, FUNCTION2 records, then per non-empty DB
//! SELECTDB + RESIZEDB + keys (expiry as EXPIRETIME_MS), EOF and the CRC64
//! (8 zero bytes when `SaveOpts::checksum` is off). Values use the encodings
//! 7.0 writes: listpack hashes/zsets, intset sets, hashtable/skiplist forms
//! for big ones, quicklist 2 of listpacks for lists, stream listpacks 2.
//!
//! # DUMP / RESTORE
//! [`dump_payload`] / [`restore_payload`]: value, 2-byte RDB version, CRC64.

mod crc64;
mod load;
pub mod lzf;
pub mod packed;
mod save;
pub mod stream;
mod value;

pub use crc64::crc64;
pub use load::{
    FunctionsPayloadError, LoadInfo, LoadOpts, RestoreError, load, restore_functions,
    restore_payload,
};
pub use save::{SaveAux, SaveOpts, dump_functions, dump_payload, key_delay_us, save, save_to_vec};
pub use value::{Form, Limits, form};

/// The RDB version keel writes (what Redis 7.0 writes and accepts).
pub const RDB_VERSION: u16 = 10;
/// The newest version the loader understands (Redis 7.4 / 8.0).
pub const RDB_MAX_LOAD_VERSION: u32 = 12;

/// Why a load failed.
#[derive(Debug)]
pub enum RdbError {
    /// The reader failed (not a short read).
    Io(std::io::Error),
    /// The input ended early.
    Truncated,
    /// Not "REDIS" + 4 digits.
    BadSignature,
    /// A version this loader cannot handle.
    BadVersion(u32),
    /// The stored CRC64 differs from the computed one.
    BadChecksum { stored: u64, computed: u64 },
    /// A value type byte this loader does not know.
    UnknownType(u8),
    /// Module data for a module keel does not have.
    Module(String),
    /// SELECTDB beyond the configured number of databases.
    DbOutOfRange(u64),
    /// Anything else malformed (bad length, bad packed blob, duplicates...).
    Corrupt(String),
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Io(e) => write!(f, "I/O error: {e}"),
            RdbError::Truncated => write!(f, "Short read or unexpected end of file"),
            RdbError::BadSignature => write!(f, "Wrong signature trying to load DB from file"),
            RdbError::BadVersion(v) => write!(f, "Can't handle RDB format version {v}"),
            RdbError::BadChecksum { stored, computed } => write!(
                f,
                "Wrong RDB checksum expected: ({computed:x}) got: ({stored:x})"
            ),
            RdbError::UnknownType(t) => write!(f, "Unknown RDB encoding type {t}"),
            RdbError::Module(m) => write!(f, "{m}"),
            RdbError::DbOutOfRange(d) => write!(
                f,
                "Data file was created with a Redis server configured to handle more than {d} databases"
            ),
            RdbError::Corrupt(m) => write!(f, "Internal error in RDB reading: {m}"),
        }
    }
}

impl std::error::Error for RdbError {}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            RdbError::Truncated
        } else {
            RdbError::Io(e)
        }
    }
}

// Opcodes.
const OP_SLOT_INFO: u8 = 0xF4;
const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION_PRE_GA: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

// Value types.
const T_STRING: u8 = 0;
const T_LIST: u8 = 1;
const T_SET: u8 = 2;
const T_ZSET: u8 = 3;
const T_HASH: u8 = 4;
const T_ZSET_2: u8 = 5;
const T_MODULE_PRE_GA: u8 = 6;
const T_MODULE_2: u8 = 7;
const T_HASH_ZIPMAP: u8 = 9;
const T_LIST_ZIPLIST: u8 = 10;
const T_SET_INTSET: u8 = 11;
const T_ZSET_ZIPLIST: u8 = 12;
const T_HASH_ZIPLIST: u8 = 13;
const T_LIST_QUICKLIST: u8 = 14;
const T_STREAM_LISTPACKS: u8 = 15;
const T_HASH_LISTPACK: u8 = 16;
const T_ZSET_LISTPACK: u8 = 17;
const T_LIST_QUICKLIST_2: u8 = 18;
const T_STREAM_LISTPACKS_2: u8 = 19;
const T_SET_LISTPACK: u8 = 20;
const T_STREAM_LISTPACKS_3: u8 = 21;
const T_HASH_METADATA_PRE_GA: u8 = 22;
const T_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
const T_HASH_METADATA: u8 = 24;
const T_HASH_LISTPACK_EX: u8 = 25;

#[cfg(test)]
mod tests;
