//! The replication core: one thread that merges the shards' records by
//! LSN into the stream (SELECT and MULTI/EXEC inserted), appends it to the
//! backlog and runs the replication cron (PING, backlog TTL, timeouts,
//! output limits); plus two plain threads per online replica, one sending
//! the stream from the backlog, one reading its REPLCONF ACKs.
//!
//! The shards only ever send into an unbounded channel: the lock below is
//! taken by this core and the replica threads, never in a command's path.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::backlog::Backlog;
use super::{Effect, Record, random_id, set_active};
use crate::server::Server;
use crate::server::client::ClientInfo;
use crate::storage::now_ms;

const PING: &[u8] = b"*1\r\n$4\r\nping\r\n";
const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
/// Verbatim script cache size (Redis's repl_scriptcache).
const SCRIPT_CACHE_MAX: usize = 10_000;

/// Replica link states (INFO's state=).
pub const WAIT_BGSAVE: u8 = 0;
pub const SEND_BULK: u8 = 1;
pub const ONLINE: u8 = 2;

pub struct Repl {
    pub state: Mutex<State>,
    /// Signalled when the stream grows or a link changes.
    pub cond: Condvar,
    tx: Sender<Msg>,
    pub srv: &'static Server,
}

pub struct State {
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    /// master_repl_offset: the last byte of the stream.
    pub offset: i64,
    /// The offset after the last write record.
    pub data_offset: i64,
    pub backlog: Option<Backlog>,
    pub replicas: Vec<Arc<Link>>,
    pub no_replicas_since_ms: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// The DB the stream has selected (-1: the next command sends SELECT).
    pub seldb: i32,
    /// SHA1s every replica is known to hold (verbatim EVALSHA).
    scripts: HashSet<String>,
    /// A replica that forgets scripts when it restarts (stock Redis 7)
    /// attached once: it may PSYNC into any later part of the stream, so
    /// verbatim scripts always travel as EVAL.
    pub forgetful_replica_seen: bool,
    script_fifo: VecDeque<String>,
    /// Replicas online and acked within min-replicas-max-lag.
    pub good_replicas: usize,
    /// The replica side: this node's master, if any.
    pub replica: super::replica::ReplicaSide,
}

/// A replica connection, from PSYNC until it goes.
pub struct Link {
    pub info: Arc<ClientInfo>,
    pub ip: String,
    pub port: i64,
    pub state: AtomicU8,
    /// Offset of the next stream byte to send.
    pub next: AtomicI64,
    pub ack_off: AtomicI64,
    pub ack_ms: AtomicU64,
    /// Diskless sync: nothing after the EOF mark until the first ACK.
    pub hold_until_ack: AtomicBool,
    /// Old SYNC: no ACKs expected, never timed out.
    pub pre_psync: bool,
    pub killed: AtomicBool,
    /// When the lag first passed the soft output limit (0: not over).
    soft_since_ms: AtomicU64,
    fd: AtomicI64,
}

impl Link {
    pub fn new(info: Arc<ClientInfo>, ip: String, port: i64, next: i64, pre_psync: bool) -> Link {
        Link {
            info,
            ip,
            port,
            state: AtomicU8::new(WAIT_BGSAVE),
            next: AtomicI64::new(next),
            ack_off: AtomicI64::new(0),
            ack_ms: AtomicU64::new(now_ms()),
            hold_until_ack: AtomicBool::new(false),
            pre_psync,
            killed: AtomicBool::new(false),
            soft_since_ms: AtomicU64::new(0),
            fd: AtomicI64::new(-1),
        }
    }

    pub fn online(&self) -> bool {
        self.state.load(Ordering::Acquire) == ONLINE
    }

    /// Closes the link: both threads notice and leave.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        let fd = self.fd.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: shutdown(2) on the link's socket, which stays open
            // until the sender thread drops it.
            unsafe { libc::shutdown(fd as i32, libc::SHUT_RDWR) };
        }
        if let Some(r) = REPL.get() {
            r.cond.notify_all();
        }
    }
}

enum Msg {
    /// Records of one executor pass of a thread, in LSN order.
    Records(Vec<Record>),
    Cut {
        lsn: u64,
        full_sync: bool,
        reply: Sender<CutInfo>,
    },
}

/// The stream position of a global cut, for the snapshot's AUX fields.
#[derive(Clone, Debug)]
pub struct CutInfo {
    pub replid: String,
    pub offset: i64,
    pub stream_db: i64,
    /// The offset after the last write record (PINGs and GETACKs excluded).
    pub data_offset: i64,
}

static REPL: OnceLock<Repl> = OnceLock::new();

pub fn repl() -> Option<&'static Repl> {
    REPL.get()
}

/// Starts the replication core (once, at server start).
pub fn start(srv: &'static Server) {
    let (tx, rx) = crossbeam::channel::unbounded();
    let r = Repl {
        state: Mutex::new(State {
            replid: random_id(),
            replid2: "0".repeat(40),
            second_offset: -1,
            offset: 0,
            data_offset: 0,
            backlog: None,
            replicas: Vec::new(),
            no_replicas_since_ms: now_ms(),
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            seldb: -1,
            scripts: HashSet::new(),
            forgetful_replica_seen: false,
            script_fifo: VecDeque::new(),
            good_replicas: 0,
            replica: Default::default(),
        }),
        cond: Condvar::new(),
        tx,
        srv,
    };
    if REPL.set(r).is_err() {
        return;
    }
    std::thread::Builder::new()
        .name("keel-repl".into())
        .spawn(move || merge_loop(REPL.get().unwrap(), rx))
        .expect("spawn the replication thread");
}

pub(super) fn submit(records: Vec<Record>) {
    if let Some(r) = REPL.get() {
        let _ = r.tx.send(Msg::Records(records));
    }
}

impl Repl {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// At a global cut (every shard held or parked, so every record before it
/// has been sent): waits until the stream holds all of them and returns
/// its position. `full_sync` creates the backlog (and a new replid) if
/// there is none, and makes the next command send SELECT. None when no
/// backlog exists (and none was asked for).
pub fn cut(full_sync: bool) -> Option<CutInfo> {
    let r = REPL.get()?;
    {
        // A replica's snapshot position is its master's stream as applied;
        // its own replicas get that stream verbatim, never a SELECT of ours.
        let mut st = r.lock();
        if let Some(m) = &st.replica.of {
            if !m.has_position() {
                return None;
            }
            let db = m.stream_db;
            if full_sync && st.backlog.is_none() {
                let size = backlog_size(r.srv);
                st.backlog = Some(Backlog::new(size, st.offset));
            }
            return Some(CutInfo {
                replid: st.replid.clone(),
                offset: st.offset,
                stream_db: db,
                data_offset: st.offset,
            });
        }
    }
    if full_sync && !super::active() {
        let mut st = r.lock();
        let size = backlog_size(r.srv);
        st.replid = random_id();
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        st.backlog = Some(Backlog::new(size, st.offset));
        set_active(true);
        crate::log::notice("Replication backlog created, my new replication IDs are set");
    }
    if !super::active() {
        return None;
    }
    // This thread's own records first: the cut waits for them.
    super::flush_local();
    let (tx, rx) = crossbeam::channel::bounded(1);
    let lsn = super::next_lsn();
    r.tx.send(Msg::Cut {
        lsn,
        full_sync,
        reply: tx,
    })
    .ok()?;
    rx.recv_timeout(Duration::from_secs(10)).ok()
}

pub(crate) fn backlog_size(srv: &Server) -> usize {
    srv.config
        .read()
        .unwrap()
        .get_i64("repl-backlog-size")
        .max(16 * 1024) as usize
}

/// A replica appends what it applied of its master's stream: same bytes,
/// same offsets, for its own replicas and a later PSYNC.
/// Only while `link_gen` is the current link: a link replaced by REPLICAOF
/// must not add a byte after its successor asked for its position.
/// `parts`: consecutive pieces of the stream (a run's commands).
pub fn feed_applied(link_gen: u64, parts: &[impl AsRef<[u8]>]) {
    let Some(r) = REPL.get() else { return };
    let mut st = r.lock();
    if FROZEN.load(Ordering::Acquire) {
        return;
    }
    if st.replica.link_gen != link_gen || st.replica.of.is_none() {
        return;
    }
    if st.backlog.is_none() {
        st.offset += parts.iter().map(|p| p.as_ref().len() as i64).sum::<i64>();
        return;
    }
    for p in parts {
        append(&mut st, p.as_ref());
    }
    trim(&mut st);
    drop(st);
    r.cond.notify_all();
}

/// The AOF is on: records must be made from now on. Called with no record
/// in flight (at startup before the shards run, or at a global cut).
pub fn enable_records() {
    let Some(r) = REPL.get() else { return };
    if super::active() {
        return;
    }
    let mut st = r.lock();
    if st.backlog.is_none() {
        let size = backlog_size(r.srv);
        st.backlog = Some(Backlog::new(size, st.offset));
    }
    set_active(true);
}

/// Closes every replica link (they come back by PSYNC).
pub fn disconnect_replicas(st: &State) {
    for l in &st.replicas {
        l.kill();
    }
}

/// Startup of a master whose RDB carried replication info: the file's id
/// becomes replid2 (valid up to its offset + 1), a backlog starts at that
/// offset, and keys found expired on load go into it as DELs, so replicas
/// of the previous run resync partially (Redis 7.0, #8015).
pub fn restore_after_restart(id: &str, offset: i64, expired: &[(usize, Vec<u8>)]) {
    let Some(r) = REPL.get() else { return };
    let mut st = r.lock();
    st.replid2 = id.to_string();
    st.second_offset = offset + 1;
    st.offset = offset;
    st.data_offset = offset;
    st.backlog = Some(Backlog::new(backlog_size(r.srv), offset));
    st.no_replicas_since_ms = now_ms();
    set_active(true);
    let mut out = Vec::new();
    for (db, key) in expired {
        let e = Effect {
            db: *db as i32,
            resp: super::encode(&[b"DEL".as_slice(), key]),
            eval_form: None,
        };
        write_record(&mut st, std::slice::from_ref(&e), &mut out);
    }
    crate::log::notice(&format!(
        "Replication info restored from the RDB: replid2 {id}, offset {offset}"
    ));
}

/// The master's PSYNC acceptance rule (psync2.md 4.3).
pub fn can_continue(st: &State, id: &str, off: i64) -> bool {
    if id == "?" {
        return false;
    }
    let id_ok = id.eq_ignore_ascii_case(&st.replid)
        || (id.eq_ignore_ascii_case(&st.replid2) && off <= st.second_offset);
    if !id_ok {
        return false;
    }
    match &st.backlog {
        Some(b) => off >= b.first_byte() && off <= st.offset + 1,
        None => false,
    }
}

/// Starts the sender and ACK reader threads of an online (or about to be)
/// link over `sock`; `pending` holds bytes already read from it.
pub fn run_link(link: Arc<Link>, sock: TcpStream, pending: Vec<u8>) {
    let Some(r) = REPL.get() else { return };
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_nodelay(true);
    link.fd.store(
        std::os::fd::AsRawFd::as_raw_fd(&sock) as i64,
        Ordering::Release,
    );
    link.info
        .fd
        .store(std::os::fd::AsRawFd::as_raw_fd(&sock), Ordering::Relaxed);
    let reader = match sock.try_clone() {
        Ok(s) => s,
        Err(_) => {
            link.kill();
            forget_link(r, &link);
            return;
        }
    };
    let l2 = link.clone();
    let _ = std::thread::Builder::new()
        .name("keel-replica-ack".into())
        .spawn(move || read_acks(r, &l2, reader, pending));
    let _ = std::thread::Builder::new()
        .name("keel-replica-tx".into())
        .spawn(move || {
            send_stream(r, &link, sock);
            link.kill();
            forget_link(r, &link);
        });
}

/// Closes a link and forgets it.
pub fn drop_link(r: &Repl, link: &Arc<Link>) {
    link.kill();
    forget_link(r, link);
}

fn forget_link(r: &Repl, link: &Arc<Link>) {
    let mut st = r.lock();
    st.replicas.retain(|l| !Arc::ptr_eq(l, link));
    if st.replicas.is_empty() {
        st.no_replicas_since_ms = now_ms();
    }
    drop(st);
    r.srv.clients.lock().unwrap().remove(&link.info.id);
    crate::log::notice(&format!(
        "Connection with replica {}:{} lost.",
        link.ip, link.port
    ));
}

/// Sends the stream from the link's position as it grows.
fn send_stream(r: &Repl, link: &Link, mut sock: TcpStream) {
    let mut buf = Vec::with_capacity(256 * 1024);
    loop {
        {
            let mut st = r.lock();
            loop {
                if link.killed.load(Ordering::Acquire) {
                    return;
                }
                let ready = link.online() && !link.hold_until_ack.load(Ordering::Acquire);
                if ready && link.next.load(Ordering::Acquire) <= st.offset {
                    break;
                }
                st = r
                    .cond
                    .wait_timeout(st, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let next = link.next.load(Ordering::Acquire);
            match &st.backlog {
                Some(b) if next >= b.first_byte() => {
                    buf.clear();
                    b.copy_from(next, 256 * 1024, &mut buf);
                }
                _ => {
                    crate::log::warning(&format!(
                        "Replica {}:{} fell behind the replication backlog: closing it",
                        link.ip, link.port
                    ));
                    return;
                }
            }
        }
        if sock.write_all(&buf).is_err() {
            return;
        }
        link.next.fetch_add(buf.len() as i64, Ordering::AcqRel);
        REPL_OUTPUT_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
}

/// Reads what a replica sends: REPLCONF ACK <offset> and newlines.
fn read_acks(r: &Repl, link: &Link, sock: TcpStream, pending: Vec<u8>) {
    let mut rd = BufReader::new(std::io::Cursor::new(pending).chain(sock));
    let mut line = Vec::new();
    loop {
        line.clear();
        match rd.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > 64 * 1024 {
            break;
        }
        let args: Vec<Vec<u8>> = if line.first() == Some(&b'*') {
            let Some(n) = parse_len(&line[1..]) else {
                break;
            };
            if n > 16 {
                break;
            }
            let mut v = Vec::with_capacity(n);
            let mut ok = true;
            for _ in 0..n {
                line.clear();
                if rd.read_until(b'\n', &mut line).unwrap_or(0) == 0 || line.first() != Some(&b'$')
                {
                    ok = false;
                    break;
                }
                let Some(len) = parse_len(&line[1..]).filter(|&l| l <= 1024) else {
                    ok = false;
                    break;
                };
                let mut a = vec![0u8; len + 2];
                if rd.read_exact(&mut a).is_err() {
                    ok = false;
                    break;
                }
                a.truncate(len);
                v.push(a);
            }
            if !ok {
                break;
            }
            v
        } else {
            line.split(|c| c.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(|w| w.to_vec())
                .collect()
        };
        link.ack_ms.store(now_ms(), Ordering::Release);
        if args.len() >= 3
            && crate::commands::lookup(&args[0])
                .is_some_and(|(_, c)| c.special == crate::commands::Special::Replconf)
            && args[1].eq_ignore_ascii_case(b"ack")
        {
            if let Some(off) = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                link.ack_off.fetch_max(off, Ordering::AcqRel);
            }
            if link.hold_until_ack.swap(false, Ordering::AcqRel) {
                r.cond.notify_all();
            }
        }
        // Anything else is ignored: replies never go into the link.
    }
    link.kill();
}

fn parse_len(s: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(s).ok()?.trim_end();
    s.parse::<usize>().ok()
}

/// The merge's pace while records keep arriving (see `merge_loop`).
const MERGE_TICK: Duration = Duration::from_millis(1);

/// Merges records by LSN into the backlog and runs the cron.
fn merge_loop(r: &'static Repl, rx: Receiver<Msg>) {
    let mut next_lsn = 0u64;
    let mut pending: BTreeMap<u64, Vec<Effect>> = BTreeMap::new();
    let mut cuts: Vec<(u64, bool, Sender<CutInfo>)> = Vec::new();
    let mut last_cron = now_ms();
    let mut last_ping = now_ms();
    let mut out = Vec::with_capacity(64 * 1024);
    // While records keep coming, the thread sleeps a tick between merges
    // instead of being woken by each batch: one wake-up here (and one for
    // each replica's sender) per tick under load, not per shard pass.
    // With the AOF on, replies wait for the merge: no tick then.
    let mut busy = false;
    loop {
        let first = if busy && !crate::aof::enabled() {
            std::thread::sleep(MERGE_TICK);
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => {
                    busy = false;
                    None
                }
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => {
                    busy = true;
                    Some(m)
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut take = |m: Msg| match m {
            Msg::Records(records) => {
                for rec in records {
                    pending.insert(rec.lsn, rec.effects);
                }
            }
            Msg::Cut {
                lsn,
                full_sync,
                reply,
            } => cuts.push((lsn, full_sync, reply)),
        };
        if let Some(m) = first {
            take(m);
            for m in rx.try_iter().take(4096) {
                take(m);
            }
        }
        if !pending.is_empty() || !cuts.is_empty() {
            let mut st = r.lock();
            let before = st.offset;
            while let Some(effects) = pending.remove(&next_lsn) {
                write_record(&mut st, &effects, &mut out);
                crate::aof::feed(next_lsn, &effects);
                next_lsn += 1;
            }
            cuts.retain(|(lsn, full_sync, reply)| {
                if *lsn > next_lsn {
                    return true;
                }
                if *full_sync {
                    st.seldb = -1;
                    st.scripts.clear();
                    st.script_fifo.clear();
                }
                let _ = reply.send(CutInfo {
                    replid: st.replid.clone(),
                    offset: st.offset,
                    stream_db: st.seldb.max(0) as i64,
                    data_offset: st.data_offset,
                });
                false
            });
            if st.offset != before {
                trim(&mut st);
                drop(st);
                r.cond.notify_all();
            }
        }
        let now = now_ms();
        if now.saturating_sub(last_cron) >= 100 {
            last_cron = now;
            cron(r, &mut last_ping);
        }
    }
}

/// Appends one record: SELECT where the DB changes, MULTI/EXEC around
/// more than one effect.
fn write_record(st: &mut State, effects: &[Effect], out: &mut Vec<u8>) {
    if st.backlog.is_none() {
        return;
    }
    out.clear();
    let multi = effects.len() > 1;
    let mut seldb = st.seldb;
    let mut select = |out: &mut Vec<u8>, db: i32| {
        if db >= 0 && db != seldb {
            let d = db.to_string();
            out.extend_from_slice(&super::encode(&[b"SELECT".as_slice(), d.as_bytes()]));
            seldb = db;
        }
    };
    if multi {
        select(out, effects[0].db);
        out.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
    }
    for e in effects {
        select(out, e.db);
        match &e.eval_form {
            Some((sha, eval)) if st.forgetful_replica_seen || !st.scripts.contains(sha) => {
                out.extend_from_slice(eval);
                st.scripts.insert(sha.clone());
                st.script_fifo.push_back(sha.clone());
                if st.script_fifo.len() > SCRIPT_CACHE_MAX
                    && let Some(old) = st.script_fifo.pop_front()
                {
                    st.scripts.remove(&old);
                }
            }
            _ => out.extend_from_slice(&e.resp),
        }
    }
    if multi {
        out.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
    }
    st.seldb = seldb;
    append(st, out);
    st.data_offset = st.offset;
}

/// Set once a shutdown has taken its final snapshot: nothing more enters
/// the stream, so replicas stop exactly at the offset the file records
/// (active expiry would otherwise send DELs after it).
static FROZEN: AtomicBool = AtomicBool::new(false);

/// Freezes the stream at a cut (every shard held): see FROZEN.
pub fn freeze(on: bool) {
    if on {
        cut(false);
    }
    if let Some(r) = REPL.get() {
        let _st = r.lock();
        FROZEN.store(on, Ordering::Release);
    }
}

fn append(st: &mut State, bytes: &[u8]) {
    if FROZEN.load(Ordering::Acquire) {
        return;
    }
    if let Some(b) = st.backlog.as_mut() {
        b.append(bytes);
        st.offset += bytes.len() as i64;
    }
}

/// Trims the backlog, keeping what connected replicas have yet to get.
fn trim(st: &mut State) {
    let keep = st
        .replicas
        .iter()
        .filter(|l| !l.killed.load(Ordering::Acquire))
        .map(|l| l.next.load(Ordering::Acquire))
        .min()
        .unwrap_or(i64::MAX);
    if let Some(b) = st.backlog.as_mut() {
        b.trim(keep);
        // What lagging replicas hold past the backlog's size is theirs, not
        // the dataset's: maxmemory does not count it (as Redis 7).
        let extra = b.memory().saturating_sub(b.size + b.size / 16);
        REPLICA_EXTRA_BYTES.store(extra as u64, Ordering::Relaxed);
    }
}

/// Stream memory kept only for lagging replicas (past the backlog size).
pub static REPLICA_EXTRA_BYTES: AtomicU64 = AtomicU64::new(0);

/// Once every 100 ms: PING, GETACK for WAIT, output limits, timeouts,
/// killed links, backlog TTL, good replicas.
fn cron(r: &Repl, last_ping: &mut u64) {
    let srv = r.srv;
    let (ping_period, timeout, ttl, max_lag, limits) = {
        let c = srv.config.read().unwrap();
        (
            c.get_i64("repl-ping-replica-period").max(1) as u64 * 1000,
            c.get_i64("repl-timeout").max(1) as u64 * 1000,
            c.get_i64("repl-backlog-ttl"),
            c.get_i64("min-replicas-max-lag"),
            replica_limits(c.get("client-output-buffer-limit")),
        )
    };
    let now = now_ms();
    let mut st = r.lock();
    let mut grew = false;
    // Only a top-level master makes PINGs; a replica forwards its master's.
    // Not while FAILOVER waits for the stream to stand still.
    if st.replica.of.is_none()
        && !st.replicas.is_empty()
        && now.saturating_sub(*last_ping) >= ping_period
        && !super::failover::writes_paused()
    {
        *last_ping = now;
        append(&mut st, PING);
        grew = true;
    }
    let offset = st.offset;
    let mut good = 0;
    for l in &st.replicas {
        if l.info.killed.load(Ordering::Acquire) && !l.killed.load(Ordering::Acquire) {
            l.kill();
            continue;
        }
        let lag = offset + 1 - l.next.load(Ordering::Acquire);
        let (hard, soft, soft_secs) = limits;
        let over_soft = soft > 0 && lag as u64 > soft;
        if !over_soft {
            l.soft_since_ms.store(0, Ordering::Relaxed);
        } else if l.soft_since_ms.load(Ordering::Relaxed) == 0 {
            l.soft_since_ms.store(now, Ordering::Relaxed);
        }
        let soft_expired =
            over_soft && now - l.soft_since_ms.load(Ordering::Relaxed) > soft_secs * 1000;
        if l.online() && ((hard > 0 && lag as u64 > hard) || soft_expired) {
            crate::log::warning(&format!(
                "Client id={} addr={} flags=S scheduled to be closed ASAP for overcoming of output buffer limits.",
                l.info.id, l.info.addr
            ));
            l.kill();
            continue;
        }
        let since_ack = now.saturating_sub(l.ack_ms.load(Ordering::Acquire));
        if l.online() && !l.pre_psync && since_ack > timeout {
            crate::log::warning(&format!(
                "Disconnecting timedout replica (streaming sync): {}:{}",
                l.ip, l.port
            ));
            l.kill();
            continue;
        }
        if l.online() && since_ack <= max_lag.max(0) as u64 * 1000 {
            good += 1;
        }
    }
    st.good_replicas = good;
    GOOD_REPLICAS.store(good, Ordering::Release);
    // The AOF is fed from the stream: records go on while it is on.
    if st.replicas.is_empty()
        && st.replica.of.is_none()
        && st.backlog.is_some()
        && !crate::aof::enabled()
        && ttl > 0
        && now.saturating_sub(st.no_replicas_since_ms) > ttl as u64 * 1000
    {
        // Without a backlog the offset stops: keeping the id would let a
        // PSYNC by it skip writes (Redis 4.0.3, #4412).
        st.backlog = None;
        st.replid = random_id();
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        set_active(false);
        crate::log::notice(&format!(
            "Replication backlog freed after {ttl} seconds without connected replicas."
        ));
    }
    if grew {
        trim(&mut st);
        drop(st);
        r.cond.notify_all();
    }
}

/// Stream bytes sent to replicas (total_net_repl_output_bytes).
pub static REPL_OUTPUT_BYTES: AtomicU64 = AtomicU64::new(0);

/// Online replicas that acked within min-replicas-max-lag (the write check).
pub static GOOD_REPLICAS: AtomicUsize = AtomicUsize::new(0);

/// `client-output-buffer-limit`'s replica class: (hard, soft, soft seconds).
fn replica_limits(spec: &str) -> (u64, u64, u64) {
    let w: Vec<&str> = spec.split_whitespace().collect();
    for c in w.chunks(4) {
        if c.len() == 4 && (c[0] == "slave" || c[0] == "replica") {
            let m = |s: &str| crate::config::parse_memory(s).unwrap_or(0) as u64;
            return (m(c[1]), m(c[2]), c[3].parse().unwrap_or(0));
        }
    }
    (256 << 20, 64 << 20, 60)
}

/// Whether writes are refused by min-replicas-to-write (a master's rule:
/// a replica ignores it, as in stock, so its master's stream and the
/// writes of a writable replica go through).
pub fn not_enough_replicas(srv: &Server) -> bool {
    let need = srv.min_replicas_to_write.load(Ordering::Relaxed);
    need > 0
        && !super::replica::is_replica()
        && (GOOD_REPLICAS.load(Ordering::Acquire) as u64) < need
}

/// Recounts the good replicas at once (stock's refreshGoodSlavesCount)
/// when a replica goes online or the min-replicas configs change, so a
/// write right after either is not judged by the last cron's count.
pub fn refresh_good_replicas(srv: &Server) {
    let max_lag = srv.config.read().unwrap().get_i64("min-replicas-max-lag");
    refresh_good_replicas_with(max_lag);
}

/// As `refresh_good_replicas`, for a caller holding the config.
pub fn refresh_good_replicas_with(max_lag: i64) {
    let Some(r) = REPL.get() else { return };
    let now = now_ms();
    let mut st = r.lock();
    let good = st
        .replicas
        .iter()
        .filter(|l| {
            l.online()
                && now.saturating_sub(l.ack_ms.load(Ordering::Acquire))
                    <= max_lag.max(0) as u64 * 1000
        })
        .count();
    st.good_replicas = good;
    GOOD_REPLICAS.store(good, Ordering::Release);
}

/// Replicas whose ACK reached `offset`.
pub fn acked(offset: i64) -> usize {
    let Some(r) = REPL.get() else { return 0 };
    r.lock()
        .replicas
        .iter()
        .filter(|l| l.online() && l.ack_off.load(Ordering::Acquire) >= offset)
        .count()
}

/// The offset of the last write once every record taken so far is in
/// the stream (WAIT's target; Redis uses the client's last write).
pub fn current_offset() -> i64 {
    match cut(false) {
        Some(c) => c.data_offset,
        None => REPL.get().map_or(0, |r| r.lock().data_offset),
    }
}

/// Before a shutdown (every shard held, so nothing more is written): asks
/// the online replicas for an ACK and waits up to `timeout` until each has
/// acknowledged the whole stream (Redis 7.0, #9872).
pub fn wait_for_replicas(timeout: Duration) {
    let Some(r) = REPL.get() else { return };
    if r.lock().replica.of.is_some() || cut(false).is_none() {
        return;
    }
    let lagging = |st: &State| {
        st.replicas
            .iter()
            .filter(|l| l.online() && !l.pre_psync && l.ack_off.load(Ordering::Acquire) < st.offset)
            .count()
    };
    if lagging(&r.lock()) == 0 || timeout.is_zero() {
        return;
    }
    crate::log::notice("Waiting for replicas before shutting down.");
    request_getack();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let n = lagging(&r.lock());
        if n == 0 {
            crate::log::notice("All replicas are in sync; shutting down.");
            return;
        }
        if std::time::Instant::now() >= deadline {
            crate::log::warning(&format!("{n} replicas lagging at shutdown"));
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SCRIPT FLUSH: replicas will not hold any script any more.
pub fn forget_scripts() {
    if let Some(r) = REPL.get() {
        let mut st = r.lock();
        st.scripts.clear();
        st.script_fifo.clear();
    }
}

/// Puts a REPLCONF GETACK in the stream (WAIT wants fresh ACKs).
pub fn request_getack() {
    let Some(r) = REPL.get() else { return };
    let mut st = r.lock();
    if st.replicas.is_empty() || super::failover::writes_paused() {
        return;
    }
    append(&mut st, GETACK);
    trim(&mut st);
    drop(st);
    r.cond.notify_all();
}
