//! Command families and the one dispatch table.
//!
//! A handler is `fn(&mut Ctx, &[Bytes])`: `args[0]` is the command name, the
//! reply goes into `ctx.out`. Where a handler runs depends on its `Scope`:
//! - `Keys`: on the shard that owns its keys (inline when that is the
//!   connection's shard, else as a message), or, when its keys span shards,
//!   on the connection's thread with every involved shard held.
//! - `AllShards`: on the connection's thread with every shard held
//!   (DBSIZE, FLUSHDB, KEYS, SCAN, INFO...).
//! - `Conn`: on the connection's thread, touching no shard data
//!   (PING, SELECT, CLIENT...). `ctx.client` is always `Some` here.

pub mod acl;
pub mod bits;
pub mod cluster;
pub mod connection;
pub mod families;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod info;
pub mod keys;
pub mod lists;
pub mod ops;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod snapshot;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod transactions;
pub mod zsets;

use bytes::Bytes;

use crate::protocol::Out;
use crate::server::Server;
use crate::server::client::Client;
use crate::server::stores::View;
use crate::storage::{Db, ShardStore, slot::key_shard};

pub use table::{Command, Scope, Special, flags, lookup, table};

/// Execution context of one command.
pub struct Ctx<'a> {
    pub out: &'a mut Out,
    /// The client's selected DB.
    pub db: usize,
    /// Time of the command, cached like Redis's `mstime()` per command.
    pub now: u64,
    pub srv: &'a Server,
    /// The calling connection: present for `Conn` and `AllShards` commands and
    /// for multi-shard `Keys` commands; absent when running on a remote shard.
    pub client: Option<&'a mut Client>,
    stores: View<'a>,
    /// Set by a blocking command (BLPOP...) that found nothing to serve:
    /// the runtime parks the client until a key is signalled or the timeout.
    pub block: Option<BlockRequest>,
    /// Blocking commands must not block here (inside MULTI or a script):
    /// they reply as if the timeout had expired.
    pub no_block: bool,
    /// Set by a script that needs keys of shards this context does not
    /// hold (and changed nothing): the runtime re-runs it holding every shard.
    pub need_all_shards: bool,
    /// The ACL user of a script's caller, when restricted: redis.call
    /// checks each command against it.
    pub caller: Option<Caller>,
    /// The client a command runs for when `client` is absent (a job on
    /// another shard): its address and name go into the slow log.
    pub origin: Option<&'a crate::server::client::ClientInfo>,
    /// Run by a script's redis.call (Redis's CLIENT_SCRIPT).
    pub in_script: bool,
    /// The client that ran the script, for a command run by redis.call
    /// (CLIENT TRACKING remembers the keys it reads for that client).
    pub script_client: Option<&'a crate::server::client::ClientInfo>,
    /// The shard of the last key `store_of` placed (by content, keys up to
    /// `ShardMemo`'s size): a SET asks for its key's store four times and
    /// the slot's CRC16 was 1.5 % of a 2-shard server's CPU (issue 23).
    shard_memo: ShardMemo,
}

/// One key's shard, remembered by the key's bytes.
#[derive(Default)]
struct ShardMemo {
    len: u8,
    shard: u16,
    key: [u8; 32],
}

impl ShardMemo {
    fn get(&self, key: &[u8]) -> Option<usize> {
        (self.len != 0 && key.len() == self.len as usize && self.key[..key.len()] == *key)
            .then_some(self.shard as usize)
    }

    fn put(&mut self, key: &[u8], shard: usize) {
        if !key.is_empty() && key.len() <= self.key.len() && shard <= u16::MAX as usize {
            self.key[..key.len()].copy_from_slice(key);
            self.len = key.len() as u8;
            self.shard = shard as u16;
        }
    }
}

/// Who runs a script, for its ACL checks and ACL LOG entries.
pub type Caller = std::sync::Arc<(
    std::sync::Arc<crate::acl::User>,
    std::sync::Arc<crate::server::client::ClientInfo>,
)>;

/// What a blocked client waits for.
#[derive(Clone, Debug)]
pub struct BlockRequest {
    pub keys: Vec<Bytes>,
    /// Absolute deadline in ms since the epoch; None waits forever.
    pub deadline_ms: Option<u64>,
    /// The arguments to re-run the command with when woken, if not the
    /// original ones (XREAD ... $ pins `$` to the ID seen when it blocked).
    pub rerun_args: Option<Vec<Bytes>>,
}

impl<'a> Ctx<'a> {
    /// `stores`: the stores the command may use (server::stores).
    pub fn new(
        out: &'a mut Out,
        db: usize,
        srv: &'a Server,
        client: Option<&'a mut Client>,
        stores: View<'a>,
    ) -> Self {
        let now = crate::storage::now_ms();
        crate::storage::db::set_command_time(now);
        Ctx {
            out,
            db,
            now,
            srv,
            client,
            stores,
            block: None,
            no_block: false,
            need_all_shards: false,
            caller: None,
            origin: None,
            in_script: false,
            script_client: None,
            shard_memo: ShardMemo::default(),
        }
    }

    /// A context over the same stores and DB for a command run from inside
    /// another (redis.call), writing into `out`.
    pub fn nested<'n>(&'n mut self, out: &'n mut Out) -> Ctx<'n> {
        let script_client = match &self.client {
            Some(c) => Some(&*c.info),
            None => self.origin.or(self.script_client),
        };
        Ctx {
            out,
            db: self.db,
            now: self.now,
            srv: self.srv,
            client: None,
            stores: self.stores.reborrow(),
            block: None,
            no_block: self.no_block,
            need_all_shards: false,
            // The script's restricted user, for checks inside commands
            // (SORT's BY/GET patterns).
            caller: self.caller.clone(),
            origin: None,
            in_script: true,
            script_client,
            shard_memo: ShardMemo::default(),
        }
    }

    /// Asks the runtime to block the client on `keys` (see `BlockRequest`).
    /// The handler writes no reply in that case.
    pub fn block_on(&mut self, keys: Vec<Bytes>, deadline_ms: Option<u64>) {
        self.block = Some(BlockRequest {
            keys,
            deadline_ms,
            rerun_args: None,
        });
    }

    /// Like `block_on`, re-running with `rerun_args` when woken.
    pub fn block_on_with(
        &mut self,
        keys: Vec<Bytes>,
        deadline_ms: Option<u64>,
        rerun_args: Vec<Bytes>,
    ) {
        self.block = Some(BlockRequest {
            keys,
            deadline_ms,
            rerun_args: Some(rerun_args),
        });
    }

    /// Tells clients blocked on `key` (selected DB) that it may now serve
    /// them (after LPUSH, ZADD, XADD...).
    pub fn signal_ready(&mut self, key: &[u8]) {
        let db = self.db;
        let store = self.store_of(key);
        if !store.blocked.is_empty() && store.blocked.contains_key(&(db, Box::<[u8]>::from(key))) {
            store.ready_keys.push((db, key.into()));
        }
    }

    pub fn nshards(&self) -> usize {
        self.stores.len()
    }

    /// The store of shard `i`; panics if the shard is not held (a routing bug).
    pub fn store(&mut self, i: usize) -> &mut ShardStore {
        self.stores.store(i)
    }

    /// The store of shard `i` if this context holds it.
    pub fn try_store(&mut self, i: usize) -> Option<&mut ShardStore> {
        self.stores.get(i)
    }

    /// The store that owns `key`.
    pub fn store_of(&mut self, key: &[u8]) -> &mut ShardStore {
        let n = self.stores.len();
        let s = if n == 1 {
            0
        } else if let Some(s) = self.shard_memo.get(key) {
            s
        } else {
            let s = key_shard(key, n);
            self.shard_memo.put(key, s);
            s
        };
        self.store(s)
    }

    /// The selected DB on the shard that owns `key`.
    pub fn db(&mut self, key: &[u8]) -> &mut Db {
        let db = self.db;
        &mut self.store_of(key).dbs[db]
    }

    /// DB number `n` on the shard that owns `key`.
    pub fn db_n(&mut self, key: &[u8], n: usize) -> &mut Db {
        &mut self.store_of(key).dbs[n]
    }

    /// Indexes of the shards this context holds.
    pub fn held_shards(&self) -> Vec<usize> {
        (0..self.stores.len())
            .filter(|&i| self.stores.holds(i))
            .collect()
    }

    /// The stores this command holds, as the view loaders take.
    pub fn held_view(&mut self) -> View<'_> {
        self.stores.reborrow()
    }

    /// Every store this context holds, in shard order.
    pub fn held_stores(&mut self) -> Vec<&mut ShardStore> {
        self.stores.all_mut()
    }

    /// Counts `n` changes for the shard owning `key` (rdb_changes_since_last_save).
    pub fn dirty(&mut self, key: &[u8], n: u64) {
        self.store_of(key).dirty += n;
        // A stream overwritten by another type (SET, a DEL then SADD in a
        // transaction) must answer its XREADGROUP waiters, as Redis's
        // dbOverwrite does; waiters on other types re-check and stay put.
        if !self.store_of(key).blocked.is_empty() {
            self.signal_ready(key);
        }
    }

    /// A keyspace notification for `key` in the selected DB (see
    /// `storage::notify`; one relaxed load when notifications are off).
    pub fn notify(&self, class: u32, event: &'static str, key: &[u8]) {
        crate::storage::notify::notify(class, event, key, self.db);
    }

    /// Lookup for reading with expiry and hit/miss counting.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&crate::storage::Entry> {
        let now = self.now;
        let db = self.db;
        let ShardStore { dbs, stats, .. } = self.store_of(key);
        let (e, expired) = dbs[db].lookup(key, now);
        stats.expired_keys += expired as u64;
        if e.is_some() {
            stats.keyspace_hits += 1;
        } else {
            stats.keyspace_misses += 1;
            crate::storage::notify::notify(crate::storage::notify::KEY_MISS, "keymiss", key, db);
        }
        e.map(|e| &*e)
    }

    /// Lookup for writing: expired keys are deleted (and counted) first.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut crate::storage::Entry> {
        let now = self.now;
        let db = self.db;
        let ShardStore { dbs, stats, .. } = self.store_of(key);
        let (e, expired) = dbs[db].lookup(key, now);
        stats.expired_keys += expired as u64;
        e
    }
}

/// Redis's common error strings.
pub mod errors {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
    pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

    pub fn wrong_args(name: &str) -> String {
        format!(
            "ERR wrong number of arguments for '{}' command",
            name.to_ascii_lowercase()
        )
    }

    /// As Redis: the name cut to 128 bytes, then quoted arguments while
    /// their text is under 128 bytes, each cut to what is left of the 128.
    /// Like C's %s, each stops at a NUL byte.
    pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> String {
        let cstr = |b: &[u8]| -> Vec<u8> { b.iter().take_while(|&&c| c != 0).copied().collect() };
        let mut quoted: Vec<u8> = Vec::new();
        for a in args {
            if quoted.len() >= 128 {
                break;
            }
            let room = 128 - quoted.len();
            let a = cstr(a);
            quoted.push(b'\'');
            quoted.extend_from_slice(&a[..a.len().min(room)]);
            quoted.extend_from_slice(b"' ");
        }
        let name = cstr(name);
        format!(
            "ERR unknown command '{}', with args beginning with: {}",
            String::from_utf8_lossy(&name[..name.len().min(128)]),
            String::from_utf8_lossy(&quoted)
        )
    }

    pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> String {
        format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(sub),
            cmd.to_ascii_uppercase()
        )
    }
}

pub use crate::util::parse_i64;

/// Runs `f` with the reply buffer moved out of the context, so a handler can
/// hold a borrow of a stored value while it writes the reply (no copy).
/// `ctx.out` must not be used inside `f`.
#[inline]
pub(crate) fn with_out<R>(ctx: &mut Ctx, f: impl FnOnce(&mut Ctx, &mut Out) -> R) -> R {
    let mut out = std::mem::take(&mut *ctx.out);
    let r = f(ctx, &mut out);
    *ctx.out = out;
    r
}

/// Parses a float like Redis's string2ld: C's strtod over the whole
/// argument (so hex floats and "inf" work), no leading space, no trailing
/// bytes, no NaN, no overflow or underflow to zero.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    parse_c_double(s, false)
}

/// Like `parse_f64`, for arguments Redis reads as long double (timeouts):
/// values beyond a double's range (1e400) are still numbers there, so
/// overflow and underflow are accepted (as inf / 0).
pub fn parse_long_double(s: &[u8]) -> Option<f64> {
    parse_c_double(s, true)
}

fn parse_c_double(s: &[u8], allow_range: bool) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() || s.contains(&0) {
        return None;
    }
    let mut buf = s.to_vec();
    buf.push(0);
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod only
    // reads it and stores a pointer into it in `end`.
    let (v, consumed, erange) = unsafe {
        *libc::__errno_location() = 0;
        let start = buf.as_ptr() as *const libc::c_char;
        let v = libc::strtod(start, &mut end);
        let erange = *libc::__errno_location() == libc::ERANGE;
        (v, end.offset_from(start) as usize, erange)
    };
    if consumed != s.len()
        || v.is_nan()
        || (erange && !allow_range && (v.is_infinite() || v == 0.0))
    {
        return None;
    }
    Some(v)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn eq_ic(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

pub type Args = [Bytes];

/// Whether command `idx` has subcommands (its spec lists them), so CLIENT
/// LIST `cmd=`, latency and error names show "container|sub" as Redis 7
/// does (computed once for the table).
pub(crate) fn is_container(idx: usize) -> bool {
    static FLAGS: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        table()
            .commands
            .iter()
            .map(|c| c.spec.is_some_and(|s| !s.subs.is_empty()))
            .collect()
    })[idx]
}
