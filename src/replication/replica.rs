//! Replication, replica side: REPLICAOF, the link to the master (the
//! handshake a stock replica does, full sync into the shards, applying the
//! stream), promotion and demotion.
//!
//! The link is a task on one shard's executor. It hands each run of the
//! master's commands to `apply::apply_run` (every shard held, each shard
//! applying its single-shard commands on its own thread), which in the
//! same hold feeds their bytes verbatim into this node's backlog (for its
//! own replicas and its offset), so a snapshot always sees data and offset
//! agree. A MULTI block applies whole once its EXEC has arrived.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::apply::{StreamCmd, apply_run};
use super::backlog::Backlog;
use super::master::{self, disconnect_replicas};
use super::{random_id, set_active};
use crate::commands::Special;
use crate::protocol::{Parser, ParserLimits};
use crate::server::Server;
use crate::server::client::{Client, ClientInfo};
use crate::server::shard::ShardRt;
use crate::storage::{ShardStore, now_ms};

/// This node's replica side of the replication state (empty on a master).
#[derive(Default)]
pub struct ReplicaSide {
    /// Set while this node is a replica: its master and link.
    pub of: Option<MasterLink>,
    /// Bumped at every REPLICAOF: an old link task sees it and leaves.
    pub link_gen: u64,
}

/// The replica's view of its master (ROLE / INFO states).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Transfer,
    Connected,
}

pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    pub last_io_ms: u64,
    /// When the link went down (0: it never was up).
    pub down_since_ms: u64,
    pub read_reploff: i64,
    /// The DB the master's stream has selected (repl-stream-db).
    pub stream_db: i64,
    /// `replid`/`offset` of the shared state are a position to PSYNC from
    /// (a cached master, ourselves after a demotion, or a restart's RDB).
    pub cached: bool,
    pub sync_total: i64,
    pub sync_read: i64,
}

impl MasterLink {
    fn new(host: String, port: u16, cached: bool, stream_db: i64) -> MasterLink {
        MasterLink {
            host,
            port,
            state: LinkState::Connect,
            last_io_ms: 0,
            down_since_ms: 0,
            read_reploff: 0,
            stream_db,
            cached,
            sync_total: -1,
            sync_read: 0,
        }
    }

    pub fn has_position(&self) -> bool {
        self.cached || self.state == LinkState::Connected
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

static IS_REPLICA: AtomicBool = AtomicBool::new(false);

pub fn is_replica() -> bool {
    IS_REPLICA.load(Ordering::Acquire)
}

thread_local! {
    static APPLYING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the synchronous execution of a command sent by our master (a
/// guard): logically expired keys still exist for it.
pub struct MasterApply(bool);

impl MasterApply {
    pub fn enter() -> MasterApply {
        MasterApply(APPLYING.with(|a| a.replace(true)))
    }

    pub fn active() -> bool {
        APPLYING.with(|a| a.get())
    }
}

impl Drop for MasterApply {
    fn drop(&mut self) {
        APPLYING.with(|a| a.set(self.0));
    }
}

/// Whether commands without the `stale` flag get -MASTERDOWN: a replica
/// whose link is not up, with replica-serve-stale-data no.
pub fn stale_denied(srv: &Server) -> bool {
    if !is_replica()
        || srv
            .config
            .read()
            .unwrap()
            .get_bool("replica-serve-stale-data")
    {
        return false;
    }
    master::repl().is_some_and(|r| {
        r.lock()
            .replica
            .of
            .as_ref()
            .is_some_and(|m| m.state != LinkState::Connected)
    })
}

/// Whether a client write must get -READONLY.
pub fn read_only_for_clients(srv: &Server) -> bool {
    is_replica() && srv.config.read().unwrap().get_bool("replica-read-only")
}

fn set_replica_mode(stores: &mut [&mut ShardStore], on: bool) {
    for s in stores.iter_mut() {
        for db in s.dbs.iter_mut() {
            db.replica_mode = on;
        }
    }
}

/// REPLICAOF host port, with every shard held (`stores`): from now on this
/// node follows `host:port`. A master first flushes its records into the
/// stream so its own position is exact, then PSYNCs from it.
pub fn set_master(stores: &mut [&mut ShardStore], host: String, port: u16) -> Result<bool, String> {
    let Some(r) = master::repl() else {
        return Err("ERR replication is not available".into());
    };
    let was_master = !is_replica();
    if was_master {
        master::cut(false);
        set_active(false);
    }
    let link_gen = {
        let mut st = r.lock();
        if let Some(m) = &st.replica.of
            && m.host == host
            && m.port == port
        {
            return Ok(false);
        }
        let (cached, db) = match &st.replica.of {
            Some(m) => (m.has_position(), m.stream_db),
            // Our own history: a former replica promoted in our place
            // holds it as replid2.
            None => (st.backlog.is_some(), 0),
        };
        st.replica.link_gen += 1;
        st.replica.of = Some(MasterLink::new(host.clone(), port, cached, db));
        disconnect_replicas(&st);
        st.replica.link_gen
    };
    IS_REPLICA.store(true, Ordering::Release);
    set_replica_mode(stores, true);
    crate::log::notice(&format!("Connecting to MASTER {host}:{port}"));
    crate::server::shard::with_current(|rt| {
        glommio::spawn_local(link_task(rt.clone(), link_gen)).detach();
    });
    Ok(true)
}

/// REPLICAOF NO ONE with every shard held: keep data and offset, move the
/// master's id to replid2, start a new history (replicas of the old master
/// PSYNC to us by replid2).
pub fn promote(stores: &mut [&mut ShardStore]) {
    let Some(r) = master::repl() else { return };
    {
        let mut st = r.lock();
        if st.replica.of.take().is_none() {
            return;
        }
        st.replid2 = std::mem::replace(&mut st.replid, random_id());
        st.second_offset = st.offset + 1;
        st.seldb = -1;
        st.data_offset = st.offset;
        if st.backlog.is_none() {
            st.backlog = Some(Backlog::new(master::backlog_size(r.srv), st.offset));
        }
        st.no_replicas_since_ms = now_ms();
        st.replica.link_gen += 1;
        disconnect_replicas(&st);
    }
    IS_REPLICA.store(false, Ordering::Release);
    set_replica_mode(stores, false);
    set_active(true);
    crate::log::notice("MASTER MODE enabled");
}

/// At startup with `replicaof` configured: follow it, from the RDB's
/// position when it had one (`restored`).
pub fn configure_at_startup(
    srv: &Server,
    host: String,
    port: u16,
    restored: Option<(String, i64, i64)>,
) {
    let Some(r) = master::repl() else { return };
    let mut st = r.lock();
    let (cached, db) = match restored {
        Some((id, off, db)) => {
            st.replid = id;
            st.offset = off;
            st.data_offset = off;
            (true, db)
        }
        None => (false, 0),
    };
    st.replica.link_gen += 1;
    st.replica.of = Some(MasterLink::new(host, port, cached, db));
    IS_REPLICA.store(true, Ordering::Release);
    // A replica makes no records of its own (the AOF turned them on).
    set_active(false);
    let _ = srv;
}

/// The link generation to start at boot (shard 0), if configured as a replica.
pub fn startup_gen() -> Option<u64> {
    let r = master::repl()?;
    let st = r.lock();
    st.replica.of.as_ref().map(|_| st.replica.link_gen)
}

pub(super) fn with_link<R>(link_gen: u64, f: impl FnOnce(&mut master::State) -> R) -> Option<R> {
    let r = master::repl()?;
    let mut st = r.lock();
    if st.replica.link_gen != link_gen || st.replica.of.is_none() {
        return None;
    }
    Some(f(&mut st))
}

fn set_state(link_gen: u64, s: LinkState) {
    with_link(link_gen, |st| {
        let m = st.replica.of.as_mut().unwrap();
        if m.state == LinkState::Connected && s != LinkState::Connected {
            m.down_since_ms = now_ms();
        }
        m.state = s;
    });
}

/// The link: connect, sync, apply; on any failure retry every second.
pub async fn link_task(rt: Rc<ShardRt>, link_gen: u64) {
    loop {
        let Some((host, port)) = with_link(link_gen, |st| {
            let m = st.replica.of.as_ref().unwrap();
            (m.host.clone(), m.port)
        }) else {
            return;
        };
        set_state(link_gen, LinkState::Connecting);
        let connect = glommio::net::TcpStream::connect(format!("{host}:{port}"));
        let res = futures_lite::future::or(async { Some(connect.await) }, async {
            glommio::timer::sleep(Duration::from_secs(5)).await;
            None
        })
        .await;
        match res {
            Some(Ok(mut stream)) => {
                crate::log::notice("MASTER <-> REPLICA sync started");
                let _ = stream.set_nodelay(true);
                // A failed attempt during a FAILOVER is retried like any
                // link (Redis too); only the target's refusal aborts it.
                if let Err(e) = session(&rt, link_gen, &mut stream).await {
                    crate::log::warning(&e);
                }
                set_state(link_gen, LinkState::Connect);
            }
            Some(Err(e)) => {
                crate::log::warning(&format!("Error condition on socket for SYNC: {e}"));
                set_state(link_gen, LinkState::Connect);
            }
            None => {
                crate::log::warning("Timeout connecting to the MASTER...");
                set_state(link_gen, LinkState::Connect);
            }
        }
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
}

/// Buffered line reads on the link (replies are read line by line; what
/// follows is RDB or stream).
struct Reader {
    buf: BytesMut,
}

impl Reader {
    async fn fill(&mut self, s: &mut TcpStream, link_gen: u64) -> Result<(), String> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("Error reading from MASTER: {e}"))?;
        if n == 0 {
            return Err("MASTER closed the connection".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        with_link(link_gen, |st| {
            st.replica.of.as_mut().unwrap().last_io_ms = now_ms();
        });
        Ok(())
    }

    async fn line(&mut self, s: &mut TcpStream, link_gen: u64) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l = self.buf.split_to(i + 1);
                return Ok(String::from_utf8_lossy(&l).trim_end().to_string());
            }
            if self.buf.len() > 64 * 1024 {
                return Err("MASTER sent an overlong line".into());
            }
            self.fill(s, link_gen).await?;
        }
    }
}

async fn send(s: &mut TcpStream, args: &[&str]) -> Result<(), String> {
    s.write_all(&super::encode(args))
        .await
        .map_err(|e| format!("Error writing to MASTER: {e}"))
}

/// One connection to the master: handshake, PSYNC, sync, stream.
async fn session(rt: &Rc<ShardRt>, link_gen: u64, s: &mut TcpStream) -> Result<(), String> {
    let srv = rt.srv;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    set_state(link_gen, LinkState::Handshake);
    let mut rd = Reader {
        buf: BytesMut::new(),
    };
    send(s, &["PING"]).await?;
    let pong = rd.line(s, link_gen).await?;
    if !(pong.starts_with('+')
        || pong.starts_with("-NOAUTH")
        || pong.starts_with("-NOPERM")
        || pong.starts_with("-ERR operation not permitted"))
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    crate::log::notice("Master replied to PING, replication can continue...");
    let (auth, user, port, ip) = {
        let c = srv.config.read().unwrap();
        let announce = c.get_i64("replica-announce-port");
        (
            c.get("masterauth").to_string(),
            c.get("masteruser").to_string(),
            if announce > 0 {
                announce
            } else {
                srv.port as i64
            },
            c.get("replica-announce-ip").to_string(),
        )
    };
    if !auth.is_empty() {
        if user.is_empty() {
            send(s, &["AUTH", &auth]).await?;
        } else {
            send(s, &["AUTH", &user, &auth]).await?;
        }
        let r = rd.line(s, link_gen).await?;
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    send(s, &["REPLCONF", "listening-port", &port.to_string()]).await?;
    rd.line(s, link_gen).await?;
    if !ip.is_empty() {
        send(s, &["REPLCONF", "ip-address", &ip]).await?;
        rd.line(s, link_gen).await?;
    }
    // keel-scripts: we keep script bodies across restarts (stock masters
    // ignore capabilities they do not know).
    send(
        s,
        &[
            "REPLCONF",
            "capa",
            "eof",
            "capa",
            "psync2",
            "capa",
            "keel-scripts",
        ],
    )
    .await?;
    rd.line(s, link_gen).await?;
    let (id, off) = with_link(link_gen, |st| {
        if st.replica.of.as_ref().unwrap().has_position() {
            (st.replid.clone(), st.offset + 1)
        } else {
            ("?".to_string(), -1)
        }
    })
    .ok_or("replication link reconfigured")?;
    if id == "?" {
        crate::log::notice("Partial resynchronization not possible (no cached master)");
    } else {
        crate::log::notice(&format!(
            "Trying a partial resynchronization (request {id}:{off})."
        ));
    }
    // A coordinated failover asks the target to take over as it accepts us.
    if super::failover::in_progress() {
        send(s, &["PSYNC", &id, &off.to_string(), "FAILOVER"]).await?;
    } else {
        send(s, &["PSYNC", &id, &off.to_string()]).await?;
    }
    let reply = loop {
        let l = rd.line(s, link_gen).await?;
        if !l.is_empty() {
            break l;
        }
    };
    let accepted = reply.starts_with("+FULLRESYNC ") || reply.starts_with("+CONTINUE");
    super::failover::psync_answered(rt, accepted, "Failover target rejected psync request").await;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut it = rest.split(' ');
        let new_id = it.next().unwrap_or("").to_string();
        let new_off: i64 = it.next().and_then(|o| o.parse().ok()).unwrap_or(-1);
        if new_id.len() != 40 || new_off < 0 {
            return Err(format!("Bad FULLRESYNC reply from master: {reply}"));
        }
        crate::log::notice(&format!("Full resync from master: {new_id}:{new_off}"));
        full_sync(rt, link_gen, s, &mut rd, new_id, new_off).await?;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let new_id = rest.trim();
        continue_sync(link_gen, new_id);
        crate::log::notice("Successful partial resynchronization with master.");
        crate::log::notice("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    stream(rt, link_gen, s, rd).await
}

/// +CONTINUE [id]: a new id shifts ours to replid2 and drops our replicas
/// (they come back by PSYNC and learn it).
fn continue_sync(link_gen: u64, new_id: &str) {
    let Some(r) = master::repl() else { return };
    with_link(link_gen, |st| {
        if new_id.len() == 40 && new_id != st.replid {
            st.replid2 = std::mem::replace(&mut st.replid, new_id.to_string());
            st.second_offset = st.offset + 1;
            disconnect_replicas(st);
            crate::log::notice(&format!("Master replication ID changed to {new_id}"));
        }
        if st.backlog.is_none() {
            st.backlog = Some(Backlog::new(master::backlog_size(r.srv), st.offset));
        }
        let m = st.replica.of.as_mut().unwrap();
        m.state = LinkState::Connected;
        m.cached = true;
    });
}

/// Receives the master's RDB into a file, then replaces the dataset with
/// it while holding every shard.
async fn full_sync(
    rt: &Rc<ShardRt>,
    link_gen: u64,
    s: &mut TcpStream,
    rd: &mut Reader,
    id: String,
    off: i64,
) -> Result<(), String> {
    let srv = rt.srv;
    set_state(link_gen, LinkState::Transfer);
    let timeout = srv.config.read().unwrap().get_i64("repl-timeout").max(1) as u64;
    let _ = s.set_read_timeout(Some(Duration::from_secs(timeout)));
    let pre = loop {
        let l = rd.line(s, link_gen).await?;
        if !l.is_empty() {
            break l;
        }
    };
    if pre.starts_with('-') {
        return Err(format!("MASTER aborted replication with an error: {pre}"));
    }
    let path = crate::server::persist::rdb_path(srv);
    let tmp = path.with_file_name(format!("temp-{}-{}.rdb", now_ms(), std::process::id()));
    let mut file =
        std::fs::File::create(&tmp).map_err(|e| format!("Opening the temp file: {e}"))?;
    use std::io::Write;
    let eof_mark = pre.strip_prefix("$EOF:").map(|m| m.as_bytes().to_vec());
    if let Some(mark) = &eof_mark {
        if mark.len() != 40 {
            return Err(format!("Bad EOF mark from master: {pre}"));
        }
        crate::log::notice(
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk",
        );
        // Everything but the last 40 bytes goes to the file; the stream
        // ends when those equal the mark.
        loop {
            if rd.buf.len() >= 40 && rd.buf[rd.buf.len() - 40..] == mark[..] {
                let n = rd.buf.len() - 40;
                file.write_all(&rd.buf[..n]).map_err(|e| e.to_string())?;
                rd.buf.clear();
                break;
            }
            if rd.buf.len() > 1 << 20 {
                let n = rd.buf.len() - 40;
                let head = rd.buf.split_to(n);
                file.write_all(&head).map_err(|e| e.to_string())?;
            }
            rd.fill(s, link_gen).await?;
        }
    } else {
        let len: usize = pre
            .strip_prefix('$')
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| format!("Bad protocol from MASTER, the first byte is not '$': {pre}"))?;
        crate::log::notice(&format!(
            "MASTER <-> REPLICA sync: receiving {len} bytes from master to disk"
        ));
        with_link(link_gen, |st| {
            st.replica.of.as_mut().unwrap().sync_total = len as i64
        });
        let mut left = len;
        loop {
            let n = left.min(rd.buf.len());
            let head = rd.buf.split_to(n);
            file.write_all(&head).map_err(|e| e.to_string())?;
            left -= n;
            with_link(link_gen, |st| {
                st.replica.of.as_mut().unwrap().sync_read = (len - left) as i64
            });
            if left == 0 {
                break;
            }
            rd.fill(s, link_gen).await?;
        }
    }
    drop(file);
    crate::log::notice("MASTER <-> REPLICA sync: Flushing old data");
    crate::log::notice("MASTER <-> REPLICA sync: Loading DB in memory");
    let all: Vec<usize> = (0..srv.nshards).collect();
    let loaded = rt
        .with_shards(&all, |view| {
            let mut stores = view.all_mut();
            if with_link(link_gen, |_| ()).is_none() {
                return Err("replication link reconfigured".to_string());
            }
            let r = crate::server::persist::load_for_replica(srv, &mut stores, &tmp);
            if r.is_ok() {
                // The AOF's files hold the old dataset: a new base follows.
                crate::aof::restart_after_full_sync(srv);
            }
            r
        })
        .await;
    let info = match loaded {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "Failed trying to load the MASTER synchronization DB from disk: {e}"
            ));
        }
    };
    let _ = std::fs::rename(&tmp, &path);
    let Some(r) = master::repl() else {
        return Ok(());
    };
    with_link(link_gen, |st| {
        st.replid = id;
        st.offset = off;
        st.data_offset = off;
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        st.backlog = Some(Backlog::new(master::backlog_size(r.srv), off));
        disconnect_replicas(st);
        let m = st.replica.of.as_mut().unwrap();
        m.stream_db = info.repl_stream_db.unwrap_or(0).max(0);
        m.state = LinkState::Connected;
        m.cached = true;
        m.sync_total = -1;
    })
    .ok_or("replication link reconfigured")?;
    crate::log::notice("MASTER <-> REPLICA sync: Finished with success");
    if eof_mark.is_some() {
        // The master holds the stream until this first ACK.
        send(s, &["REPLCONF", "ACK", &off.to_string()]).await?;
    }
    Ok(())
}

/// Applies the master's stream until the link drops or is reconfigured.
async fn stream(
    rt: &Rc<ShardRt>,
    link_gen: u64,
    s: &mut TcpStream,
    rd: Reader,
) -> Result<(), String> {
    let srv = rt.srv;
    let (timeout, stream_db) = {
        let c = srv.config.read().unwrap().get_i64("repl-timeout").max(1) as u64;
        let db = with_link(link_gen, |st| st.replica.of.as_ref().unwrap().stream_db).unwrap_or(0);
        (c, db)
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let id = srv.next_client_id.fetch_add(1, Ordering::Relaxed);
    let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let now = now_ms();
    let info = ClientInfo::new(
        id,
        peer,
        local,
        std::os::fd::AsRawFd::as_raw_fd(&*s),
        rt.id,
        now,
    );
    *info.flags.lock().unwrap() = "M".into();
    let info = Arc::new(info);
    srv.clients.lock().unwrap().insert(id, info.clone());
    let mut client = Client::new(info.clone(), true);
    client.select(stream_db.clamp(0, srv.databases as i64 - 1) as usize);
    let r = apply_loop(rt, link_gen, s, rd, &mut client, timeout).await;
    srv.clients.lock().unwrap().remove(&id);
    // Cached master: a MULTI without its EXEC is dropped; the PSYNC offset
    // points before it, so the master sends it again whole.
    with_link(link_gen, |st| {
        let m = st.replica.of.as_mut().unwrap();
        m.cached = true;
    });
    crate::log::notice("Connection with master lost.");
    crate::log::notice("Caching the disconnected master state.");
    r
}

async fn apply_loop(
    rt: &Rc<ShardRt>,
    link_gen: u64,
    s: &mut TcpStream,
    rd: Reader,
    client: &mut Client,
    timeout_secs: u64,
) -> Result<(), String> {
    let mut parser = Parser::new();
    let mut rbuf = rd.buf;
    // Bytes read but not yet part of a complete command (the parser keeps
    // its own copy): each command's raw bytes are split off, no copy.
    let mut shadow = BytesMut::from(&rbuf[..]);
    // A MULTI block still waiting for its EXEC.
    let mut open_tx: Vec<StreamCmd> = Vec::new();
    let mut last_ack = 0u64;
    let mut last_io = now_ms();
    // Big reads when behind: each run of commands costs one hold.
    let mut chunk = vec![0u8; 256 * 1024];
    let limits = ParserLimits {
        proto_max_bulk_len: i64::MAX,
        authenticated: true,
    };
    loop {
        // Parse every complete command, with its raw bytes.
        let mut cmds: Vec<(Vec<Bytes>, Bytes)> = Vec::new();
        loop {
            match parser.parse(&mut rbuf, limits) {
                Ok(Some(args)) => {
                    let used = shadow.len() - rbuf.len();
                    let raw = shadow.split_to(used).freeze();
                    if raw.first() != Some(&b'*') {
                        return Err("Protocol error from MASTER: inline command".into());
                    }
                    cmds.push((args, raw));
                }
                Ok(None) => break,
                Err(e) => return Err(format!("Protocol error from MASTER: {e:?}")),
            }
        }
        if !cmds.is_empty() {
            apply(rt, link_gen, s, client, cmds, &mut open_tx).await?;
        }
        if with_link(link_gen, |_| ()).is_none() {
            return Ok(());
        }
        let now = now_ms();
        if now.saturating_sub(last_ack) >= 1000 {
            last_ack = now;
            ack(s, link_gen).await?;
        }
        match s.read(&mut chunk).await {
            Ok(0) => return Err("MASTER closed the connection".into()),
            Ok(n) => {
                last_io = now_ms();
                rbuf.extend_from_slice(&chunk[..n]);
                shadow.extend_from_slice(&chunk[..n]);
                with_link(link_gen, |st| {
                    let m = st.replica.of.as_mut().unwrap();
                    m.last_io_ms = last_io;
                    m.read_reploff += n as i64;
                });
            }
            Err(e) if is_timeout(&e) => {
                if now_ms().saturating_sub(last_io) > timeout_secs * 1000 {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
            }
            Err(e) => return Err(format!("Error reading from MASTER: {e}")),
        }
        if client.info.killed.load(Ordering::Relaxed) {
            return Err("Master link killed by CLIENT KILL".into());
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

async fn ack(s: &mut TcpStream, link_gen: u64) -> Result<(), String> {
    let off = master::repl().map_or(0, |r| r.lock().offset);
    let _ = link_gen;
    send(s, &["REPLCONF", "ACK", &off.to_string()]).await
}

/// Applies commands in stream order. A MULTI block waits in `open_tx`
/// until its EXEC arrives, then applies whole; GETACK is answered with the
/// offset before it.
async fn apply(
    rt: &Rc<ShardRt>,
    link_gen: u64,
    s: &mut TcpStream,
    client: &mut Client,
    cmds: Vec<(Vec<Bytes>, Bytes)>,
    open_tx: &mut Vec<StreamCmd>,
) -> Result<(), String> {
    let mut ready: Vec<StreamCmd> = Vec::new();
    for (args, raw) in cmds {
        let cmd = crate::commands::lookup(&args[0]);
        let special = cmd.map_or(Special::None, |(_, c)| c.special);
        let sc = StreamCmd {
            args: Some(args),
            cmd,
            raw,
        };
        if !open_tx.is_empty() {
            if special == Special::Exec {
                open_tx.push(sc);
                ready.append(open_tx);
            } else if special == Special::Discard {
                open_tx.push(sc);
                ready.extend(open_tx.drain(..).map(|c| StreamCmd { args: None, ..c }));
            } else {
                open_tx.push(sc);
            }
            continue;
        }
        if special == Special::Multi {
            open_tx.push(sc);
            continue;
        }
        let getack = special == Special::Replconf
            && sc
                .args
                .as_ref()
                .is_some_and(|a| a.len() >= 2 && a[1].eq_ignore_ascii_case(b"getack"));
        if getack {
            apply_run(rt, client, std::mem::take(&mut ready), link_gen).await;
            ack(s, link_gen).await?;
            master::feed_applied(link_gen, std::slice::from_ref(&sc.raw));
            continue;
        }
        ready.push(sc);
    }
    apply_run(rt, client, ready, link_gen).await;
    Ok(())
}

/// Runs one command of the master's stream (replies are dropped; errors
/// are logged, and the bytes count all the same, as in Redis).
pub(super) fn apply_one(
    rt: &Rc<ShardRt>,
    client: &mut Client,
    view: &mut crate::server::stores::View<'_>,
    args: &[Bytes],
) {
    let srv = rt.srv;
    let name = &args[0];
    let Some((idx, cmd)) = crate::commands::lookup(name) else {
        let err = crate::commands::errors::unknown_command(name, &args[1..]);
        return not_applied(
            rt,
            srv,
            &format!("-{err}\r\n").into_bytes(),
            "<unknown>",
            true,
        );
    };
    if cmd.special == Special::Select {
        // A master's malformed SELECT (found by tests/fuzz_repl_stream.rs).
        match args
            .get(1)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|d| d.parse::<usize>().ok())
        {
            Some(d) if d < srv.databases => client.select(d),
            _ => crate::log::warning("== CRITICAL == bad SELECT from the master"),
        }
        return;
    }
    if matches!(
        cmd.special,
        Special::Multi | Special::Exec | Special::Ping | Special::Replconf
    ) {
        return;
    }
    if !cmd.arity_ok(args.len()) {
        let err = crate::commands::errors::wrong_args(cmd.name);
        return not_applied(rt, srv, &format!("-{err}\r\n").into_bytes(), cmd.name, true);
    }
    let mut out = crate::protocol::Out::new(false);
    let db = client.db;
    let mut ctx = crate::commands::Ctx::new(&mut out, db, srv, Some(&mut *client), view.reborrow());
    ctx.no_block = true;
    crate::server::shard::run_handler(rt.stats(), idx, cmd, &mut ctx, args);
    if out.buf.first() == Some(&b'-') {
        // run_handler counted the error already.
        not_applied(rt, srv, &out.buf, cmd.name, false);
    }
}

/// Commands of the master's stream that failed here (INFO
/// unexpected_error_replies): this replica may now differ from its master.
pub static UNEXPECTED_ERRORS: AtomicU64 = AtomicU64::new(0);

/// A command of the master's stream that this replica could not apply
/// (Redis's afterErrorReply for the master client): logged, counted, and
/// with `propagation-error-behavior` panic or panic-on-replicas on a
/// read-only replica, fatal (Redis 7.2), since going on means diverging.
pub(super) fn not_applied(rt: &Rc<ShardRt>, srv: &Server, reply: &[u8], cmd: &str, count: bool) {
    if count {
        rt.stats().ops.lock().unwrap().count_error(reply);
    }
    let line = &reply[..reply.len().saturating_sub(2)];
    let msg = line
        .strip_prefix(b"-ERR ")
        .or_else(|| line.strip_prefix(b"-"))
        .unwrap_or(line);
    let msg = &msg[..msg.len().min(4096)];
    crate::log::warning(&format!(
        "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{cmd}'",
        String::from_utf8_lossy(msg)
    ));
    UNEXPECTED_ERRORS.fetch_add(1, Ordering::Relaxed);
    let (behavior, read_only) = {
        let c = srv.config.read().unwrap();
        (
            c.get("propagation-error-behavior").to_string(),
            c.get_bool("replica-read-only"),
        )
    };
    if read_only && matches!(behavior.as_str(), "panic" | "panic-on-replicas") {
        crate::log::warning(&format!(
            "Guru Meditation: This replica panicked sending an error to its master after processing the command '{cmd}'"
        ));
        std::process::abort();
    }
}
