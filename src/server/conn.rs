//! A client connection's socket I/O: admission, the read loop, parsing,
//! the query-buffer and pubsub output limits, flushing replies, MONITOR's
//! feed. What happens to the parsed commands is `pipeline`'s.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::busy;
use super::client::{Client, ClientInfo};
use super::shard::ShardRt;
use super::{Server, ThreadStats};
use crate::protocol::{ParseError, Parser, ParserLimits};
use crate::server::watch;

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where a socket read lands, shared by the shard's connections: the
    /// bytes move to the connection's query buffer in the same poll, so a
    /// connection waiting for input holds no read buffer of its own.
    static CHUNK: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// One non-blocking read of the socket into `rbuf` (glommio's poll_read
/// uses the buffer only during the call, never across a wait). An empty
/// query buffer is given READ_CHUNK bytes first, as Redis allocates
/// PROTO_IOBUF_LEN on a read.
fn poll_recv(
    stream: &mut TcpStream,
    cx: &mut std::task::Context<'_>,
    rbuf: &mut BytesMut,
) -> std::task::Poll<std::io::Result<usize>> {
    CHUNK.with(|c| {
        let mut c = c.borrow_mut();
        let r = std::pin::Pin::new(stream).poll_read(cx, &mut c);
        if let std::task::Poll::Ready(Ok(n)) = r {
            if rbuf.capacity() == 0 {
                rbuf.reserve(READ_CHUNK.max(n));
            }
            rbuf.extend_from_slice(&c[..n]);
        }
        r
    })
}

/// Redis's clientsCron share for buffers: a connection idle for more than
/// 2 s with nothing pending gives its query and reply buffers back (the
/// next read or reply allocates again). A connection busy in a batch, or
/// subscribed and waiting, keeps its state borrowed and is skipped.
pub(super) fn release_idle_buffers(now_ms: u64) {
    busy::for_each_port(|port| {
        if now_ms < port.info.last_interaction_ms.load(Ordering::Relaxed) + 2000 {
            return;
        }
        let Ok(mut st) = port.st.try_borrow_mut() else {
            return;
        };
        if st.rbuf.is_empty() && st.rbuf.capacity() > 0 {
            st.rbuf = BytesMut::new();
            port.info.qbuf_free.store(0, Ordering::Relaxed);
        }
        if st.wbuf.is_empty() && st.wbuf.capacity() > 0 {
            st.wbuf = Vec::new();
            port.info.rbs.store(0, Ordering::Relaxed);
            port.info.rbp.store(0, Ordering::Relaxed);
        }
    });
}

/// Admits a TCP connection the accept task got and starts its task.
pub fn spawn(rt: &Rc<ShardRt>, stream: TcpStream) {
    let (peer, local) = tcp_addrs(&stream);
    spawn_client(rt, stream, peer, local)
}

/// A TCP client's peer and local addresses as CLIENT LIST shows them.
pub(super) fn tcp_addrs(stream: &TcpStream) -> (String, String) {
    let peer = stream.peer_addr().map(|a| a.to_string());
    let local = stream.local_addr().map(|a| a.to_string());
    (peer.unwrap_or_default(), local.unwrap_or_default())
}

/// A client of the `unixsocket` (its stream is a unix socket behind the
/// TcpStream type: reads, writes and peeks are the same syscalls). Redis
/// shows such a client at `<path>:0` on both ends.
pub fn spawn_unix(rt: &Rc<ShardRt>, stream: TcpStream, path: &str) {
    let addr = format!("{path}:0");
    spawn_client(rt, stream, addr.clone(), addr)
}

/// The admission is synchronous: a script that goes busy before the task
/// first runs still finds the connection (`busy`).
fn spawn_client(rt: &Rc<ShardRt>, stream: TcpStream, peer: String, local: String) {
    let rt = rt.clone();
    match admit_connection(&rt, &stream, peer, local) {
        Ok((port, registered)) => {
            port.idle.set(true);
            glommio::spawn_local(run_connection(rt, port, registered, stream)).detach();
        }
        Err(msg) => {
            let mut stream = stream;
            glommio::spawn_local(async move {
                let _ = stream.write_all(msg.as_bytes()).await;
            })
            .detach();
        }
    }
}

/// A new connection's checks and state (maxclients, protected mode); Err
/// is the refusal to write before closing.
pub(super) fn admit_connection(
    rt: &ShardRt,
    stream: &TcpStream,
    peer: String,
    local: String,
) -> Result<(Rc<Port>, busy::Registered), String> {
    let srv = rt.srv;
    let id = srv.next_client_id.fetch_add(1, Ordering::Relaxed);
    let now = crate::storage::now_ms();
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let info = Arc::new(ClientInfo::new(id, peer.clone(), local, fd, rt.id, now));
    let maxclients = srv.config.read().unwrap().get_i64("maxclients") as usize;
    let too_many = {
        let mut clients = srv.clients.lock().unwrap();
        if clients.len() >= maxclients {
            true
        } else {
            clients.insert(id, info.clone());
            false
        }
    };
    ThreadStats::bump(&rt.stats().connections_received, 1);
    if too_many {
        ThreadStats::bump(&rt.stats().rejected_connections, 1);
        return Err("-ERR max number of clients reached\r\n".into());
    }
    if let Some(msg) = protected_mode_denial(srv, &peer) {
        ThreadStats::bump(&rt.stats().rejected_connections, 1);
        srv.clients.lock().unwrap().remove(&id);
        return Err(msg);
    }
    let _ = stream.set_nodelay(true);
    set_keepalive(stream, srv.ops.tcp_keepalive_secs.load(Ordering::Relaxed));
    let authenticated = !srv.auth_required.load(Ordering::Relaxed);
    let client = Client::new(info.clone(), authenticated);
    super::tracking::register(&info, &client.subs.queue);
    let port = Rc::new(Port::new(fd, info, client));
    let registered = busy::register(id, &port);
    Ok((port, registered))
}

/// Serves an admitted connection until it ends.
pub(super) async fn run_connection(
    rt: Rc<ShardRt>,
    port: Rc<Port>,
    _registered: busy::Registered,
    mut stream: TcpStream,
) {
    let srv = rt.srv;
    let id = port.info.id;
    busy::set_waker(&port).await;
    serve(&rt, &port, &mut stream).await;
    super::tracking::unregister(&port.info);
    let mut st = port.st.borrow_mut();
    let client = &mut st.client;
    if client.handed_off {
        return;
    }
    client.subs.clear(srv, rt.id, id);
    if client.watch_flag.is_some() {
        watch::unwatch_all(client);
    }
    srv.clients.lock().unwrap().remove(&id);
}

/// anetKeepAlive: SO_KEEPALIVE, first probe after `secs`, then every
/// secs/3, three probes.
fn set_keepalive(stream: &TcpStream, secs: u64) {
    if secs == 0 {
        return;
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let set = |level: libc::c_int, opt: libc::c_int, v: libc::c_int| {
        // SAFETY: setsockopt on our own open socket with a valid int option.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    };
    let secs = secs.min(i32::MAX as u64) as libc::c_int;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Redis's protected mode: no password for the default user, non-local peer.
fn protected_mode_denial(srv: &super::Server, peer: &str) -> Option<String> {
    if !srv.config.read().unwrap().get_bool("protected-mode")
        || !crate::acl::default_user().nopass()
    {
        return None;
    }
    if crate::config::peer_is_local(peer) {
        return None;
    }
    Some("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n".to_string())
}

pub(super) struct Conn<'c> {
    pub(super) rt: Rc<ShardRt>,
    pub(super) client: &'c mut Client,
}

/// Sentinel byte count from [`read_plain`]: no new input, but the busy-script
/// hook left work in the connection's state.
const WOKEN: usize = usize::MAX;

// The connection's state stays borrowed while a batch runs, awaits
// included: the only other user, the busy-script hook, runs on this thread,
// touches only connections marked idle (never one in a batch) and only
// through `try_borrow_mut`.
#[allow(clippy::await_holding_refcell_ref)]
async fn serve(rt: &Rc<ShardRt>, port: &Port, stream: &mut TcpStream) {
    let srv = rt.srv;
    loop {
        // Connections wait with their state released, so a script that
        // runs too long on this thread can answer them (`busy`).
        let n = if subscribed(&port.st.borrow().client) {
            // Boxed, as the batch and the rare paths below: the task's
            // future is as large as its largest state, and every
            // connection holds one.
            Box::pin(read_subscribed(rt, port, stream)).await
        } else {
            port.idle.set(true);
            let r = read_plain(rt, port, stream).await;
            port.idle.set(false);
            r
        };
        let n = match n {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut st = port.st.borrow_mut();
        let ConnState {
            client,
            rbuf,
            wbuf,
            parser,
            out,
            deferred,
            stalled,
            gone,
        } = &mut *st;
        let mut cmds = Vec::new();
        let mut closing = false;
        if port.dirty.replace(false) {
            // What the hook did while a script ran: its unsent replies go
            // out first, then the command it left for us, then the rest.
            if *gone {
                return;
            }
            *stalled = false;
            wbuf.append(out);
            cmds = std::mem::take(deferred);
            // QUIT or a protocol error answered by the hook.
            closing = client.close_after_reply;
        }
        let mut conn = Conn {
            rt: rt.clone(),
            client,
        };
        if closing {
            let _ = conn.flush(stream, wbuf).await;
            return;
        }
        if conn.client.info.killed.load(Ordering::Relaxed) {
            return;
        }
        if n != WOKEN {
            ThreadStats::bump(&rt.stats().net_input_bytes, n as u64);
        }
        let limits = ParserLimits {
            proto_max_bulk_len: srv.proto_max_bulk_len.load(Ordering::Relaxed) as i64,
            authenticated: conn.client.authenticated,
        };
        let mut proto_err = None;
        // Redis's query buffer holds the commands being run until they are
        // all done: CLIENT LIST shows them in qbuf meanwhile.
        let read = rbuf.len();
        loop {
            match parser.parse(rbuf, limits) {
                Ok(Some(c)) => cmds.push(c),
                Ok(None) => break,
                Err(ParseError::Protocol(m)) => {
                    proto_err = Some(m);
                    break;
                }
            }
            if cmds.len() >= 1024 {
                // Bound the batch so a huge pipeline streams its replies.
                Box::pin(conn.run_pipeline(stream, std::mem::take(&mut cmds), wbuf)).await;
                if !conn.flush(stream, wbuf).await || conn.client.close_after_reply {
                    return;
                }
            }
        }
        conn.client.info.qbuf.store(rbuf.len(), Ordering::Relaxed);
        conn.client
            .info
            .qbuf_free
            .store(rbuf.capacity() - rbuf.len(), Ordering::Relaxed);
        if rbuf.len() as u64 > srv.client_query_buffer_limit.load(Ordering::Relaxed) {
            crate::log::warning(&format!(
                "Closing client that reached max query buffer length: id={} addr={}",
                conn.client.id, conn.client.info.addr
            ));
            return;
        }
        if !cmds.is_empty() {
            let info = conn.client.info.clone();
            info.qbuf.store(read, Ordering::Relaxed);
            // Boxed: the batch's future is most of the task's size, which a
            // connection would otherwise hold while it waits for input.
            Box::pin(conn.run_pipeline(stream, cmds, wbuf)).await;
            info.qbuf.store(rbuf.len(), Ordering::Relaxed);
        }
        if let Some(m) = proto_err {
            // The message may quote a client byte (a CR or LF too).
            crate::protocol::err_line(wbuf, format!("ERR {m}").as_bytes());
            crate::log::verbose(&format!(
                "Protocol error ({m}) from client: id={} addr={}",
                conn.client.id, conn.client.info.addr
            ));
            let _ = conn.flush(stream, wbuf).await;
            return;
        }
        // Joined before MONITOR's +OK leaves, so whatever another client
        // sends once it has seen the +OK is fed.
        let feed = conn
            .client
            .monitor
            .then(|| MonitorFeed::join(srv, conn.client.id));
        if !conn.flush(stream, wbuf).await || conn.client.close_after_reply {
            return;
        }
        if let Some(feed) = feed {
            return Box::pin(conn.monitor_loop(stream, feed)).await;
        }
        if let Some(args) = conn.client.sync_request.take() {
            let pending = rbuf.to_vec();
            return Box::pin(crate::replication::sync::serve_replica(
                rt,
                stream,
                conn.client,
                args,
                pending,
            ))
            .await;
        }
        if rbuf.capacity() > 4 * READ_CHUNK && rbuf.is_empty() {
            *rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        // Between batches the hook may serve it too.
        port.idle.set(true);
        drop(st);
        // glommio's socket read returns at once when input is waiting,
        // so a busy client would never give way: take turns after each
        // batch, as Redis serves one read per client per event loop.
        futures_lite::future::yield_now().await;
    }
}

fn subscribed(c: &Client) -> bool {
    c.subs.any() || !c.subs.queue.is_empty() || gets_pushes(c)
}

/// A RESP3 tracking client, or the target of some client's redirection:
/// invalidations may arrive while it waits for input.
pub(super) fn gets_pushes(c: &Client) -> bool {
    super::tracking::ACTIVE.load(Ordering::Relaxed) > 0
        && ((c.resp3 && c.info.tracking.load(Ordering::Relaxed) != 0)
            || c.info.push_target.load(Ordering::Relaxed))
}

/// `read` for a connection without subscriptions; returns [`WOKEN`] when
/// the busy-script hook left work for it. Closes an idle client after
/// `timeout` seconds as Redis's clientsCronHandleTimeout: never replicas,
/// masters or blocked clients (they wait elsewhere).
async fn read_plain(rt: &ShardRt, port: &Port, stream: &mut TcpStream) -> std::io::Result<usize> {
    use futures_lite::future::{or, poll_fn};
    let read = poll_fn(|cx| {
        if port.dirty.get() {
            return std::task::Poll::Ready(Ok(WOKEN));
        }
        // The state is free while the task waits (the hook borrows it
        // only inside a script, never during this poll).
        poll_recv(stream, cx, &mut port.st.borrow_mut().rbuf)
    });
    let secs = rt.srv.ops.idle_timeout_secs.load(Ordering::Relaxed);
    if secs == 0 || !port.info.flags.lock().unwrap().is_empty() {
        return read.await;
    }
    let info = &port.info;
    let idle = async {
        loop {
            let last = info.last_interaction_ms.load(Ordering::Relaxed);
            let now = crate::storage::now_ms();
            // Redis compares whole seconds: idle > timeout.
            let due = last + (secs + 1) * 1000;
            if now >= due {
                crate::log::verbose("Closing idle client");
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
            }
            glommio::timer::sleep(std::time::Duration::from_millis(due - now)).await;
        }
    };
    or(read, idle).await
}

/// `read` for a connection with subscriptions (or tracking pushes): writes
/// what is published to it meanwhile. It waits with its state released, so
/// the busy-script hook may answer it too ([`WOKEN`] then).
#[allow(clippy::await_holding_refcell_ref)]
async fn read_subscribed(
    rt: &Rc<ShardRt>,
    port: &Port,
    stream: &mut TcpStream,
) -> std::io::Result<usize> {
    use futures_lite::future::{or, poll_fn};
    let queue = {
        let st = port.st.borrow();
        let queue = st.client.subs.queue.clone();
        queue
            .hard_limit
            .set(rt.srv.ops.pubsub_limits.lock().unwrap().hard);
        if queue.client.borrow().is_none() {
            *queue.client.borrow_mut() = Some(st.client.info.clone());
        }
        queue
    };
    loop {
        port.idle.set(false);
        let pending = queue.take();
        if !pending.is_empty() {
            // The hook skips a connection that is not idle.
            let mut st = port.st.borrow_mut();
            let mut conn = Conn {
                rt: rt.clone(),
                client: &mut st.client,
            };
            conn.write_pushed(stream, &pending, &queue).await?;
            ThreadStats::bump(&rt.stats().net_output_bytes, pending.len() as u64);
        }
        port.idle.set(true);
        // Peek, not read: a read cancelled by a message could lose input.
        let mut b = [0u8; 1];
        let ready = or(
            or(async { stream.peek(&mut b).await.map(|_| true) }, async {
                queue.ready().await;
                Ok(false)
            }),
            // The hook's owner wakes this task when the script ends.
            poll_fn(|_| {
                if port.dirty.get() {
                    std::task::Poll::Ready(Ok(false))
                } else {
                    std::task::Poll::Pending
                }
            }),
        )
        .await;
        port.idle.set(false);
        // The hook may have read what the peek saw.
        if port.dirty.get() {
            return Ok(WOKEN);
        }
        // Messages published before the input arrived go out first.
        if ready? && queue.is_empty() {
            return poll_fn(|cx| poll_recv(stream, cx, &mut port.st.borrow_mut().rbuf)).await;
        }
    }
}

impl Conn<'_> {
    /// Writes pushed messages while watching the `pubsub` output limits: a
    /// subscriber that does not read sees its pending output (omem) grow
    /// until the limit closes it.
    async fn write_pushed(
        &mut self,
        stream: &mut TcpStream,
        pending: &[u8],
        queue: &super::pubsub::PushQueue,
    ) -> std::io::Result<()> {
        use futures_lite::future::or;
        let info = self.client.info.clone();
        let limits = *self.rt.srv.ops.pubsub_limits.lock().unwrap();
        let over = |info: &super::client::ClientInfo| {
            queue.close_over_limit(info);
            Err(std::io::Error::other("output buffer limit"))
        };
        if queue.over.get() {
            return over(&info);
        }
        let watch = async {
            let mut soft_since = None;
            loop {
                let used = (pending.len() + queue.len()) as u64;
                info.omem.store(used as usize, Ordering::Relaxed);
                info.oll
                    .store(used.div_ceil(16384) as usize, Ordering::Relaxed);
                if limits.reached(used, &mut soft_since, crate::storage::now_ms()) {
                    return over(&info);
                }
                // The soft limit needs the clock; the hard one is also
                // checked by every push (the timer alone fell behind a
                // fast publisher).
                or(
                    async {
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    },
                    queue.over_limit(),
                )
                .await;
            }
        };
        queue.in_flight.set(pending.len());
        let r = or(stream.write_all(pending), watch).await;
        queue.in_flight.set(0);
        info.omem.store(queue.len(), Ordering::Relaxed);
        info.oll
            .store(queue.len().div_ceil(16384), Ordering::Relaxed);
        r
    }

    async fn flush(&mut self, stream: &mut TcpStream, wbuf: &mut Vec<u8>) -> bool {
        if wbuf.is_empty() {
            return true;
        }
        // With the AOF on no reply leaves before the records made so far are
        // written (fsynced with `always`), as stock: reads wait behind
        // concurrent writes.
        if crate::aof::enabled() {
            crate::replication::flush_local();
            crate::aof::wait_synced(crate::replication::next_lsn()).await;
        }
        // Several shards: the first try lends this shard's store meanwhile
        // (`ShardRt::send_lending`); what the socket does not take now, and
        // errors, go the usual way.
        let sent = if self.rt.srv.nshards > 1 {
            use std::os::fd::AsRawFd;
            self.rt.send_lending(stream.as_raw_fd(), wbuf).unwrap_or(0)
        } else {
            0
        };
        let ok = sent == wbuf.len() || stream.write_all(&wbuf[sent..]).await.is_ok();
        ThreadStats::bump(&self.rt.stats().net_output_bytes, wbuf.len() as u64);
        let info = &self.client.info;
        info.rbp.fetch_max(wbuf.len(), Ordering::Relaxed);
        if wbuf.capacity() > 1 << 20 {
            *wbuf = Vec::with_capacity(READ_CHUNK);
        } else {
            wbuf.clear();
        }
        info.rbs.store(wbuf.capacity(), Ordering::Relaxed);
        ok
    }

    /// After MONITOR: stream the command feed until the client goes away.
    async fn monitor_loop(&mut self, stream: &mut TcpStream, feed: MonitorFeed) {
        *self.client.info.flags.lock().unwrap() = "O".into();
        loop {
            let mut batch = Vec::new();
            while let Ok(line) = feed.rx.try_recv() {
                batch.extend_from_slice(&line);
            }
            if self.client.info.killed.load(Ordering::Relaxed)
                || (!batch.is_empty() && stream.write_all(&batch).await.is_err())
            {
                break;
            }
            // A peek with a short timeout notices a closed connection.
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(5)));
            let mut b = [0u8; 64];
            match stream.read(&mut b).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::TimedOut
                        || e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    }
}

/// A MONITOR client's place in the command feed; leaves it when dropped.
struct MonitorFeed {
    srv: &'static Server,
    id: u64,
    rx: crossbeam::channel::Receiver<Vec<u8>>,
}

impl MonitorFeed {
    fn join(srv: &'static Server, id: u64) -> MonitorFeed {
        let (tx, rx) = crossbeam::channel::bounded(100_000);
        srv.monitors.lock().unwrap().push((id, tx));
        srv.monitor_count.fetch_add(1, Ordering::Relaxed);
        MonitorFeed { srv, id, rx }
    }
}

impl Drop for MonitorFeed {
    fn drop(&mut self) {
        let me = self.id;
        self.srv
            .monitors
            .lock()
            .unwrap()
            .retain(|(id, _)| *id != me);
        self.srv.monitor_count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection shares with its shard's busy-script hook: all of its
/// state, borrowed by the connection task while it works and left in the
/// cell while it waits for input.
pub(super) struct Port {
    pub(super) fd: std::os::fd::RawFd,
    pub(super) info: Arc<ClientInfo>,
    /// Waiting for input with nothing in flight and replies on: the hook
    /// may serve it.
    pub(super) idle: std::cell::Cell<bool>,
    /// The hook read or answered something: the task looks at `st` first.
    pub(super) dirty: std::cell::Cell<bool>,
    /// The connection task, woken by the hook's owner when the script ends.
    pub(super) waker: std::cell::RefCell<Option<std::task::Waker>>,
    pub(super) st: std::cell::RefCell<ConnState>,
}

pub(super) struct ConnState {
    pub(super) client: Client,
    pub(super) rbuf: BytesMut,
    /// Replies of the batch being run, until flushed.
    pub(super) wbuf: Vec<u8>,
    pub(super) parser: Parser,
    /// Replies the hook could not send yet: they go before anything newer.
    pub(super) out: Vec<u8>,
    /// A command the hook may not run inside a script (WATCH, REPLCONF...):
    /// the task runs it first, then the input after it.
    pub(super) deferred: Vec<Vec<Bytes>>,
    /// The hook stopped serving this connection until the script ends.
    pub(super) stalled: bool,
    /// The peer closed, or the connection must be dropped.
    pub(super) gone: bool,
}

impl Port {
    fn new(fd: std::os::fd::RawFd, info: Arc<ClientInfo>, client: Client) -> Port {
        Port {
            fd,
            info,
            idle: false.into(),
            dirty: false.into(),
            waker: None.into(),
            st: std::cell::RefCell::new(ConnState {
                client,
                rbuf: BytesMut::new(),
                wbuf: Vec::new(),
                parser: Parser::new(),
                out: Vec::new(),
                deferred: Vec::new(),
                stalled: false,
                gone: false,
            }),
        }
    }
}
