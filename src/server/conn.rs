//! A client connection: read, parse, route each command to where its keys
//! live, write the replies back in request order.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::ThreadStats;
use super::blocking::{self, Waiter};
use super::client::{Client, ClientInfo, Queued, ReplyMode};
use super::cluster::{self, ClusterMap, Redirect};
use super::shard::{Job, JobResult, Payload, ReplyFuture, ShardRt, run_handler};
use crate::commands::{self, Command, Ctx, Scope, errors, flags, transactions};
use crate::protocol::{Out, ParseError, Parser, ParserLimits};
use crate::storage::slot::key_shard;

const READ_CHUNK: usize = 16 * 1024;

/// Where one command of a pipeline is executed.
#[derive(Clone)]
enum Route {
    /// All keys on one shard (or no key data needed).
    Shard(usize),
    /// Keys span shards, or the command needs every shard.
    Hold(Vec<usize>),
    Conn,
}

/// A command waiting for its reply within the current pipeline.
struct Slot {
    out: Option<Out>,
    /// Replies of remote batch `batch`, position `pos`.
    remote: Option<(usize, usize)>,
    suppress: bool,
}

/// Admits a TCP connection the accept task got and starts its task.
pub fn spawn(rt: &Rc<ShardRt>, stream: TcpStream) {
    let (peer, local) = tcp_addrs(&stream);
    spawn_client(rt, stream, peer, local)
}

/// A TCP client's peer and local addresses as CLIENT LIST shows them.
fn tcp_addrs(stream: &TcpStream) -> (String, String) {
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
fn admit_connection(
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
    let port = Rc::new(Port::new(fd, info, client));
    let registered = busy::register(id, &port);
    Ok((port, registered))
}

/// Serves an admitted connection until it ends.
async fn run_connection(
    rt: Rc<ShardRt>,
    port: Rc<Port>,
    _registered: busy::Registered,
    mut stream: TcpStream,
) {
    let srv = rt.srv;
    let id = port.info.id;
    busy::set_waker(&port).await;
    serve(&rt, &port, &mut stream).await;
    let mut st = port.st.borrow_mut();
    let client = &mut st.client;
    if client.handed_off {
        return;
    }
    client.subs.clear(srv, rt.id, id);
    if client.watch_flag.is_some() {
        transactions::unwatch_all(client);
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

const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

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

struct Conn<'c> {
    rt: Rc<ShardRt>,
    client: &'c mut Client,
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
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut wbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        // Plain connections wait with their state released, so a script
        // that runs too long on this thread can answer them (`busy`).
        let subscribed = {
            let st = port.st.borrow();
            port.idle.set(servable(&st.client));
            subscribed(&st.client)
        };
        let n = if subscribed {
            let mut st = port.st.borrow_mut();
            let mut conn = Conn {
                rt: rt.clone(),
                client: &mut st.client,
            };
            conn.read(stream, &mut chunk).await
        } else {
            let r = read_plain(rt, port, stream, &mut chunk).await;
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
            let _ = conn.flush(stream, &mut wbuf).await;
            return;
        }
        if conn.client.info.killed.load(Ordering::Relaxed) {
            return;
        }
        if n != WOKEN {
            ThreadStats::bump(&rt.stats().net_input_bytes, n as u64);
            rbuf.extend_from_slice(&chunk[..n]);
        }
        let limits = ParserLimits {
            proto_max_bulk_len: srv.proto_max_bulk_len.load(Ordering::Relaxed) as i64,
            authenticated: conn.client.authenticated,
        };
        let mut proto_err = None;
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
                conn.run_pipeline(stream, std::mem::take(&mut cmds), &mut wbuf)
                    .await;
                if !conn.flush(stream, &mut wbuf).await || conn.client.close_after_reply {
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
            conn.run_pipeline(stream, cmds, &mut wbuf).await;
        }
        if let Some(m) = proto_err {
            // The message may quote a client byte (a CR or LF too).
            crate::protocol::err_line(&mut wbuf, format!("ERR {m}").as_bytes());
            crate::log::verbose(&format!(
                "Protocol error ({m}) from client: id={} addr={}",
                conn.client.id, conn.client.info.addr
            ));
            let _ = conn.flush(stream, &mut wbuf).await;
            return;
        }
        if !conn.flush(stream, &mut wbuf).await || conn.client.close_after_reply {
            return;
        }
        if conn.client.monitor {
            return conn.monitor_loop(stream).await;
        }
        if let Some(args) = conn.client.sync_request.take() {
            let pending = rbuf.to_vec();
            return crate::replication::sync::serve_replica(rt, stream, conn.client, args, pending)
                .await;
        }
        if rbuf.capacity() > 4 * READ_CHUNK && rbuf.is_empty() {
            *rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        // Between batches the hook may serve it too.
        port.idle.set(servable(conn.client));
        drop(st);
        // glommio's socket read returns at once when input is waiting,
        // so a busy client would never give way: take turns after each
        // batch, as Redis serves one read per client per event loop.
        futures_lite::future::yield_now().await;
    }
}

fn subscribed(c: &Client) -> bool {
    c.subs.any() || !c.subs.queue.is_empty()
}

/// Whether the busy-script hook may answer the connection while it waits:
/// not a subscriber (its own read loop), replies on.
fn servable(c: &Client) -> bool {
    !subscribed(c) && c.reply_mode == ReplyMode::On
}

/// `read` for a connection without subscriptions; returns [`WOKEN`] when
/// the busy-script hook left work for it. Closes an idle client after
/// `timeout` seconds as Redis's clientsCronHandleTimeout: never replicas,
/// masters or blocked clients (they wait elsewhere).
async fn read_plain(
    rt: &ShardRt,
    port: &Port,
    stream: &mut TcpStream,
    chunk: &mut [u8],
) -> std::io::Result<usize> {
    use futures_lite::future::{or, poll_fn};
    let read = poll_fn(|cx| {
        if port.dirty.get() {
            return std::task::Poll::Ready(Ok(WOKEN));
        }
        std::pin::Pin::new(&mut *stream).poll_read(cx, chunk)
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

impl Conn<'_> {
    /// Reads from the socket; a connection with subscriptions meanwhile
    /// writes the messages published to it.
    async fn read(&mut self, stream: &mut TcpStream, chunk: &mut [u8]) -> std::io::Result<usize> {
        use futures_lite::future::or;
        let queue = self.client.subs.queue.clone();
        if !self.client.subs.any() && queue.is_empty() {
            return stream.read(chunk).await;
        }
        queue
            .hard_limit
            .set(self.rt.srv.ops.pubsub_limits.lock().unwrap().hard);
        if queue.client.borrow().is_none() {
            *queue.client.borrow_mut() = Some(self.client.info.clone());
        }
        loop {
            let pending = queue.take();
            if !pending.is_empty() {
                self.write_pushed(stream, &pending, &queue).await?;
                ThreadStats::bump(&self.rt.stats().net_output_bytes, pending.len() as u64);
            }
            // Peek, not read: a read cancelled by a message could lose input.
            let mut b = [0u8; 1];
            let readable = or(async { stream.peek(&mut b).await.map(|_| true) }, async {
                queue.ready().await;
                Ok(false)
            })
            .await?;
            if readable {
                return stream.read(chunk).await;
            }
        }
    }

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
            let line = info.list_line(crate::storage::now_ms());
            crate::log::warning(&format!(
                "Client {line} scheduled to be closed ASAP for overcoming of output buffer limits."
            ));
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
        let r = or(stream.write_all(pending), watch).await;
        info.omem.store(queue.len(), Ordering::Relaxed);
        info.oll
            .store(queue.len().div_ceil(16384), Ordering::Relaxed);
        r
    }

    async fn flush(&mut self, stream: &mut TcpStream, wbuf: &mut Vec<u8>) -> bool {
        if wbuf.is_empty() {
            return true;
        }
        let ok = stream.write_all(wbuf).await.is_ok();
        ThreadStats::bump(&self.rt.stats().net_output_bytes, wbuf.len() as u64);
        if wbuf.capacity() > 1 << 20 {
            *wbuf = Vec::with_capacity(READ_CHUNK);
        } else {
            wbuf.clear();
        }
        ok
    }

    /// Runs a batch of parsed commands. Single-shard commands are grouped per
    /// shard and sent in one message per shard; anything else is a barrier
    /// that first completes the commands before it.
    async fn run_pipeline(
        &mut self,
        stream: &TcpStream,
        cmds: Vec<Vec<Bytes>>,
        wbuf: &mut Vec<u8>,
    ) {
        let mut slots: Vec<Slot> = Vec::with_capacity(cmds.len());
        let nshards = self.rt.srv.nshards;
        if cmds.len() > 1 && self.rt.gate.is_free() {
            self.prefetch_keys(&cmds);
        }
        let mut batches: Vec<Vec<Job>> = (0..nshards).map(|_| Vec::new()).collect();
        // Last-interaction time for CLIENT LIST: once per batch is enough.
        let batch_ms = crate::storage::now_ms();
        for args in cmds {
            // After QUIT (or a self CLIENT KILL, or PSYNC) nothing more runs.
            if self.client.close_after_reply || self.client.sync_request.is_some() {
                break;
            }
            if super::ops::writes_paused() {
                let write = self.may_write(&args);
                if super::ops::holds(write) {
                    // CLIENT PAUSE or FAILOVER: this command waits, after
                    // what came before it, until the pause ends (after a
                    // FAILOVER it then likely meets READONLY).
                    self.complete(&mut slots, &mut batches).await;
                    while super::ops::holds(write) {
                        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
            }
            let suppress = self.reply_suppressed();
            let resp3 = self.client.resp3;
            let Some((idx, cmd, args)) = self.admit(args, &mut slots, suppress, batch_ms) else {
                continue;
            };
            if cmd.name == "wait" {
                self.complete(&mut slots, &mut batches).await;
                let out = self.wait_replicas(&args).await;
                count_error(&self.rt, &out);
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            if cmd.name == "exec" {
                self.complete(&mut slots, &mut batches).await;
                let out = self.exec(idx).await;
                if out.buf.first() == Some(&b'-') {
                    // EXECABORT, EXEC without MULTI: a call that failed.
                    count_error(&self.rt, &out);
                    ThreadStats::bump(&self.rt.stats().cmd_calls[idx], 1);
                    ThreadStats::bump(&self.rt.stats().cmd_failed[idx], 1);
                }
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            let route = self.route(cmd, &args);
            if is_script(cmd) {
                self.complete(&mut slots, &mut batches).await;
                let mut job = Job::new(idx, cmd, args, self.client.db, resp3);
                job.caller = self.script_caller();
                let mut r = self.run_routed(job.clone(), &route).await;
                if r.need_all {
                    let all: Vec<usize> = (0..nshards).collect();
                    r = self.run_held(&job, &all).await;
                }
                slots.push(Slot {
                    out: Some(r.out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            if cmd.flags & flags::BLOCKING != 0 {
                self.complete(&mut slots, &mut batches).await;
                let Some(out) = self.run_blocking(stream, idx, cmd, args, route).await else {
                    // The client went away while blocked.
                    self.client.close_after_reply = true;
                    return;
                };
                slots.push(Slot {
                    out: Some(out),
                    remote: None,
                    suppress,
                });
                continue;
            }
            match route {
                // Local key, nothing in flight before it: run now, straight
                // into the write buffer (no job, no reply copy).
                Route::Shard(s)
                    if s == self.rt.id
                        && batches.iter().all(|b| b.is_empty())
                        && self.rt.gate.is_free() =>
                {
                    for sl in slots.drain(..) {
                        if let (false, Some(o)) = (sl.suppress, sl.out) {
                            wbuf.extend_from_slice(&o.buf);
                        }
                    }
                    let db = self.client.db;
                    if suppress {
                        let mut scratch = Out::new(resp3);
                        self.rt
                            .run_inline(idx, cmd, &args, db, &mut scratch, &self.client.info);
                    } else {
                        let mut out = Out {
                            buf: std::mem::take(wbuf),
                            resp3,
                        };
                        self.rt
                            .run_inline(idx, cmd, &args, db, &mut out, &self.client.info);
                        *wbuf = out.buf;
                    }
                }
                Route::Shard(s) => {
                    slots.push(Slot {
                        out: None,
                        remote: Some((s, batches[s].len())),
                        suppress,
                    });
                    batches[s].push(
                        Job::new(idx, cmd, args, self.client.db, resp3).by(&self.client.info),
                    );
                }
                Route::Hold(shards) => {
                    self.complete(&mut slots, &mut batches).await;
                    let job = Job::new(idx, cmd, args, self.client.db, resp3);
                    let out = self.run_held(&job, &shards).await.out;
                    slots.push(Slot {
                        out: Some(out),
                        remote: None,
                        suppress,
                    });
                }
                Route::Conn => {
                    self.complete(&mut slots, &mut batches).await;
                    let info = self.client.info.clone();
                    info.argv_mem
                        .store(args.iter().map(|a| a.len()).sum(), Ordering::Relaxed);
                    let out = self.run_conn(idx, cmd, &args);
                    info.argv_mem.store(0, Ordering::Relaxed);
                    slots.push(Slot {
                        out: Some(out),
                        remote: None,
                        suppress,
                    });
                }
            }
        }
        self.complete(&mut slots, &mut batches).await;
        // CLIENT LIST's multi / multi-mem (argv bytes + a pointer per argument).
        let (n, mem) = match &self.client.multi {
            Some(q) => (
                q.len() as i64,
                q.iter()
                    .map(|c| c.args.iter().map(|a| a.len() + 8).sum::<usize>())
                    .sum(),
            ),
            None => (-1, 0),
        };
        self.client.info.multi.store(n, Ordering::Relaxed);
        self.client.info.multi_mem.store(mem, Ordering::Relaxed);
        for s in slots {
            if !s.suppress
                && let Some(o) = s.out
            {
                wbuf.extend_from_slice(&o.buf);
            }
        }
    }

    /// The part of a command's way that needs no other shard: the checks
    /// (a rejection flags or ends the transaction), and queueing inside
    /// MULTI. Returns the command when it is to be run; otherwise its reply
    /// is in `slots`. The busy-script hook uses it too.
    fn admit(
        &mut self,
        args: Vec<Bytes>,
        slots: &mut Vec<Slot>,
        suppress: bool,
        now_ms: u64,
    ) -> Option<(usize, &'static Command, Vec<Bytes>)> {
        let Some((idx, cmd)) = self.check(&args, slots, suppress) else {
            if args[0].eq_ignore_ascii_case(b"exec") {
                // A rejected EXEC discards the transaction (execCommandAbort).
                self.client.multi = None;
                self.client.multi_error = false;
                transactions::unwatch_all(self.client);
            } else if self.client.multi.is_some() {
                self.client.multi_error = true;
            }
            return None;
        };
        self.client.info.touch(now_ms, idx, &args);
        if let Some(queue) = self.client.multi.as_mut()
            && !is_tx_control(cmd)
        {
            let mut out = Out::new(self.client.resp3);
            if cmd.flags & flags::NO_MULTI != 0 {
                out.err("ERR Command not allowed inside a transaction");
                count_error(&self.rt, &out);
                self.client.multi_error = true;
            } else {
                out.simple("QUEUED");
                queue.push(Queued { idx, cmd, args });
            }
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
            return None;
        }
        Some((idx, cmd, args))
    }

    /// Pipelines: the first key of each command that runs here is looked
    /// up ahead (a hint only: arguments that are not keys cost a wasted
    /// lookup), so the memory misses of the batch overlap.
    fn prefetch_keys(&self, cmds: &[Vec<Bytes>]) {
        // SAFETY: owner thread with the gate free (checked by the caller):
        // nobody else touches the store, and this only reads it.
        let store = unsafe { &*self.rt.store_ptr() };
        let Some(db) = store.dbs.get(self.client.db) else {
            return;
        };
        let (nshards, me) = (self.rt.srv.nshards, self.rt.id);
        let local = cmds
            .iter()
            .filter_map(|args| args.get(1))
            .filter(|key| key_shard(key, nshards) == me);
        // Two steps: table slots and entries, then (entries now cached)
        // string values.
        for key in local.clone() {
            db.prefetch(key);
        }
        for key in local {
            db.prefetch_value(key);
        }
    }

    /// What CLIENT PAUSE WRITE holds back: writes, commands that may
    /// replicate (scripts, PUBLISH) and an EXEC with either queued;
    /// commands being queued are not held.
    fn may_write(&self, args: &[Bytes]) -> bool {
        let Some((_, cmd)) = commands::lookup(&args[0]) else {
            return false;
        };
        let writes = |c: &Command| c.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0;
        match &self.client.multi {
            Some(q) if cmd.name == "exec" => q.iter().any(|q| writes(q.cmd)),
            Some(_) => false,
            None => writes(cmd),
        }
    }

    /// CLIENT REPLY OFF/SKIP: whether the next command's reply is dropped.
    fn reply_suppressed(&mut self) -> bool {
        match self.client.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::Skip => {
                self.client.reply_mode = ReplyMode::On;
                true
            }
            // Set by CLIENT REPLY SKIP itself: its own reply is dropped, the next one too.
            ReplyMode::SkipNext => {
                self.client.reply_mode = ReplyMode::Skip;
                true
            }
        }
    }

    /// Lookup, arity and auth checks; pushes an error slot and returns None on failure.
    fn check(
        &mut self,
        args: &[Bytes],
        slots: &mut Vec<Slot>,
        suppress: bool,
    ) -> Option<(usize, &'static Command)> {
        // A rejected EXEC also ends the transaction, as Redis's execCommandAbort.
        let is_exec = args[0].eq_ignore_ascii_case(b"exec");
        let resp3 = self.client.resp3;
        let in_multi = self.client.multi.is_some();
        let rt = self.rt.clone();
        let err = |msg: String, slots: &mut Vec<Slot>| {
            let mut out = Out::new(resp3);
            // Stock wraps every rejection of EXEC (rejectCommand); keel so
            // far only these.
            if is_exec
                && (in_multi || msg.starts_with("ERR Can't execute") || msg.starts_with("BUSY "))
            {
                let m = msg.strip_prefix("ERR ").unwrap_or(&msg);
                out.err(&format!("EXECABORT Transaction discarded because of: {m}"));
            } else {
                out.err(&msg);
            }
            count_error(&rt, &out);
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
        };
        let Some((idx, cmd)) = commands::lookup(&args[0]) else {
            err(errors::unknown_command(&args[0], &args[1..]), slots);
            return None;
        };
        // Redis's order: arity before authentication.
        if !cmd.arity_ok(args.len()) {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err(errors::wrong_args(cmd.name), slots);
            return None;
        }
        // Redis's CMD_PROTECTED check, after arity and before auth.
        if cmd.name == "debug" && !self.debug_allowed() {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err(DEBUG_REFUSED.into(), slots);
            return None;
        }
        if !self.client.authenticated && cmd.flags & flags::NO_AUTH == 0 {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            err("NOAUTH Authentication required.".into(), slots);
            return None;
        }
        // ACL: Redis checks after NOAUTH and the transaction's NO_MULTI.
        if crate::acl::generation() != self.client.acl_gen {
            self.refresh_user();
        }
        let skip_acl =
            self.client.user.unrestricted || (in_multi && cmd.flags & flags::NO_MULTI != 0);
        if !skip_acl && let Err((denied, object)) = crate::acl::check(&self.client.user, idx, args)
        {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            let context = if in_multi { "multi" } else { "toplevel" };
            self.acl_log(crate::acl::reason_name(denied), context, object);
            err(denied.noperm(&crate::acl::fullname(idx, args)), slots);
            return None;
        }
        // Redis's place for the cluster redirection: after auth, before the
        // replica/script-busy checks. The master's stream never comes here.
        if let Some(map) = &self.rt.srv.cluster
            && let Err(r) = self.cluster_check(map, cmd, args)
        {
            ThreadStats::bump(&self.rt.stats().cmd_rejected[idx], 1);
            // Not wrapped in EXECABORT: Redis discards the transaction and
            // replies the redirection itself.
            let mut out = Out::new(resp3);
            out.err(&map.message(&r));
            count_error(&self.rt, &out);
            slots.push(Slot {
                out: Some(out),
                remote: None,
                suppress,
            });
            return None;
        }
        // A script or function with declared flags: its flags decide (Redis's
        // scriptFlagsToCmdFlags).
        let (is_write, stale_ok) = commands::scripting::effective_flags(cmd, args)
            .unwrap_or((cmd.is_write(), cmd.flags & flags::STALE != 0));
        if is_write && crate::replication::replica::read_only_for_clients(self.rt.srv) {
            err(
                "READONLY You can't write against a read only replica.".into(),
                slots,
            );
            return None;
        }
        if !stale_ok && crate::replication::replica::stale_denied(self.rt.srv) {
            err(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                    .into(),
                slots,
            );
            return None;
        }
        // Queueing in MULTI may grow memory without bound: Redis refuses
        // every queued command when nothing can be evicted.
        let busy = commands::scripting::SCRIPT_BUSY.load(Ordering::Relaxed);
        if in_multi
            && !busy
            && !matches!(cmd.name, "exec" | "discard" | "quit" | "reset")
            && crate::storage::evict::out_of_memory()
        {
            err(crate::storage::evict::OOM_ERR.into(), slots);
            return None;
        }
        if (is_write || cmd.name == "ping") && self.rt.srv.writes_denied_by_disk_error() {
            err(MISCONF.into(), slots);
            return None;
        }
        if is_write && crate::replication::master::not_enough_replicas(self.rt.srv) {
            err(
                "NOREPLICAS Not enough good replicas to write.".into(),
                slots,
            );
            return None;
        }
        if !self.client.resp3
            && self.client.subs.any()
            && !commands::pubsub::allowed_when_subscribed(cmd.name)
        {
            // Redis names a subcommand by its full name (client|setname).
            let name = if args.len() > 1 && super::client::is_container(idx) {
                format!(
                    "{}|{}",
                    cmd.name,
                    String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
                )
            } else {
                cmd.name.to_string()
            };
            err(
                format!(
                    "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
                slots,
            );
            return None;
        }
        // Redis's place for the busy-script check: the last rejection.
        if busy {
            let nosave = args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave"));
            if cmd.name == "shutdown" && nosave && !in_multi {
                // The only way out of a script that already wrote: the shards
                // it holds will never be free, so no hold is attempted.
                crate::log::warning("SHUTDOWN NOSAVE during a busy script: exiting now.");
                std::process::exit(0);
            }
            // SHUTDOWN without NOSAVE refuses too (shutdownCommand); inside
            // MULTI it meets NO_MULTI when queued.
            let refused = !commands::scripting::allowed_while_busy(cmd, args)
                || (cmd.name == "shutdown" && !in_multi);
            if refused {
                err(commands::scripting::busy_err().into(), slots);
                return None;
            }
        }
        if self.rt.srv.monitor_count.load(Ordering::Relaxed) > 0
            && cmd.flags & (flags::SKIP_MONITOR | flags::ADMIN) == 0
        {
            self.rt
                .srv
                .feed_monitors(self.client.db, &self.client.info.addr, args);
        }
        Some((idx, cmd))
    }

    /// `enable-debug-command`: yes, or local for a loopback/unix client.
    fn debug_allowed(&self) -> bool {
        let c = self.rt.srv.config.read().unwrap();
        crate::config::protected_allowed(
            c.get("enable-debug-command"),
            crate::config::peer_is_local(&self.client.info.addr),
        )
    }

    /// The caller a script checks redis.call against (None: unrestricted).
    fn script_caller(&self) -> Option<crate::commands::Caller> {
        let c = &self.client;
        (!c.user.unrestricted).then(|| Arc::new((c.user.clone(), c.info.clone())))
    }

    /// Re-reads the connection's ACL user after a change. A deleted user
    /// leaves the connection with no permissions (DELUSER also kills it).
    fn refresh_user(&mut self) {
        let g = crate::acl::generation();
        let name = self.client.user.name.clone();
        let user =
            crate::acl::get_user(&name).unwrap_or_else(|| Arc::new(crate::acl::User::new(&name)));
        self.client.user = user;
        self.client.acl_gen = g;
    }

    fn acl_log(&self, reason: &'static str, context: &'static str, object: String) {
        acl_log_for(self.rt.srv, self.client, reason, context, object, None);
    }

    /// Whether this node serves the request (getNodeByQuery): its keys must
    /// hash to one slot of ours. EXEC checks every queued command together.
    fn cluster_check(
        &self,
        map: &ClusterMap,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Result<(), Redirect> {
        if cmd.name == "exec" {
            let Some(queued) = &self.client.multi else {
                return Ok(());
            };
            let keys = queued.iter().flat_map(|q| {
                cluster::request_keys(q.cmd, &q.args)
                    .into_iter()
                    .map(|i| &q.args[i][..])
            });
            let write = queued.iter().any(|q| q.cmd.is_write());
            return map.check(keys, write).map(|_| ());
        }
        let keys = cluster::request_keys(cmd, args);
        if keys.is_empty() {
            return Ok(());
        }
        map.check(keys.iter().map(|&i| &args[i][..]), cmd.is_write())
            .map(|_| ())
    }

    /// After MONITOR: stream the command feed until the client goes away.
    async fn monitor_loop(&mut self, stream: &mut TcpStream) {
        let srv = self.rt.srv;
        let (tx, rx) = crossbeam::channel::bounded(100_000);
        srv.monitors.lock().unwrap().push((self.client.id, tx));
        srv.monitor_count.fetch_add(1, Ordering::Relaxed);
        *self.client.info.flags.lock().unwrap() = "O".into();
        loop {
            let mut batch = Vec::new();
            while let Ok(line) = rx.try_recv() {
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
        let me = self.client.id;
        srv.monitors.lock().unwrap().retain(|(id, _)| *id != me);
        srv.monitor_count.fetch_sub(1, Ordering::Relaxed);
    }

    fn route(&self, cmd: &'static Command, args: &[Bytes]) -> Route {
        let nshards = self.rt.srv.nshards;
        match cmd.scope {
            Scope::Conn if cmd.name == "cluster" => {
                match commands::cluster::data_shard(self.rt.srv, args) {
                    Some(s) => Route::Shard(s),
                    None => Route::Conn,
                }
            }
            Scope::Conn => Route::Conn,
            // MEMORY STATS/DOCTOR...: every shard's key counts.
            Scope::Keys if cmd.name == "memory" && cmd.key_indexes(args).is_empty() => {
                Route::Hold((0..nshards).collect())
            }
            // WATCH inside MULTI only refuses: no data needed.
            Scope::KeysHeld if cmd.name == "watch" && self.client.multi.is_some() => Route::Conn,
            Scope::KeysHeld => {
                let mut shards: Vec<usize> = cmd
                    .key_indexes(args)
                    .iter()
                    .map(|&k| key_shard(&args[k], nshards))
                    .collect();
                shards.sort_unstable();
                shards.dedup();
                Route::Hold(shards)
            }
            Scope::AllShards => Route::Hold((0..nshards).collect()),
            Scope::Keys if is_script(cmd) && commands::scripting::needs_all_shards(args) => {
                Route::Hold((0..nshards).collect())
            }
            Scope::Keys if cmd.reaches_unknown_keys(args) => Route::Hold((0..nshards).collect()),
            // One shard: nothing to compute.
            Scope::Keys if nshards == 1 => Route::Shard(0),
            Scope::Keys => {
                let keys = cmd.key_indexes(args);
                let Some(&first) = keys.first() else {
                    return Route::Shard(self.rt.id);
                };
                let s0 = key_shard(&args[first], nshards);
                if keys[1..]
                    .iter()
                    .all(|&k| key_shard(&args[k], nshards) == s0)
                {
                    return Route::Shard(s0);
                }
                let mut shards: Vec<usize> =
                    keys.iter().map(|&k| key_shard(&args[k], nshards)).collect();
                shards.sort_unstable();
                shards.dedup();
                Route::Hold(shards)
            }
        }
    }

    /// Sends queued remote batches, runs the local one inline, and fills
    /// every slot's reply.
    async fn complete(&mut self, slots: &mut [Slot], batches: &mut [Vec<Job>]) {
        if batches.iter().all(|b| b.is_empty()) {
            return;
        }
        let me = self.rt.id;
        let mut futures: Vec<Option<ReplyFuture>> = (0..batches.len()).map(|_| None).collect();
        for (s, b) in batches.iter_mut().enumerate() {
            if s != me && !b.is_empty() {
                futures[s] = Some(self.rt.exec_remote(s, std::mem::take(b)).await);
            }
        }
        let mut results: Vec<Vec<JobResult>> = (0..batches.len()).map(|_| Vec::new()).collect();
        let local = std::mem::take(&mut batches[me]);
        if !local.is_empty() {
            if !self.rt.gate.is_free() {
                self.rt.gate.acquire().await;
                results[me] = local.iter().map(|j| self.rt.run_job(j)).collect();
                self.rt.serve_and_release();
            } else {
                results[me] = local.iter().map(|j| self.rt.run_job(j)).collect();
            }
        }
        for (s, f) in futures.into_iter().enumerate() {
            if let Some(f) = f {
                match f.await {
                    Payload::Outs(o) => results[s] = o,
                    _ => unreachable!("Exec answered without replies"),
                }
            }
        }
        let mut results: Vec<std::vec::IntoIter<JobResult>> =
            results.into_iter().map(|v| v.into_iter()).collect();
        for slot in slots.iter_mut() {
            if let Some((s, _)) = slot.remote.take() {
                slot.out = results[s].next().map(|r| r.out);
            }
        }
    }

    /// Runs a job with every shard in `shards` held. A blocking job that
    /// blocks is registered on every held shard before the holds go.
    async fn run_held(&mut self, job: &Job, shards: &[usize]) -> JobResult {
        let rt = self.rt.clone();
        let srv = rt.srv;
        let client = &mut *self.client;
        rt.with_shards(shards, |view| {
            let mut out = Out::new(client.resp3);
            let mut ctx = Ctx::new(&mut out, job.db, srv, Some(client), view);
            ctx.no_block = job.no_block || job.waiter.is_none();
            ctx.caller = job.caller.clone();
            run_handler(rt.stats(), job.cmd_idx, job.cmd, &mut ctx, &job.args);
            let block = ctx.block.take();
            let need_all = ctx.need_all_shards;
            if let (Some(b), Some(w)) = (&block, &job.waiter) {
                for &p in view.iter().filter(|p| !p.is_null()) {
                    // SAFETY: `view` holds exactly the stores we hold now.
                    let store = unsafe { &mut *p };
                    let local = local_job(job, store.id, srv.nshards);
                    blocking::register(store, srv.nshards, job.db, &b.keys, w, local.as_ref());
                }
            }
            JobResult {
                out,
                block,
                need_all,
            }
        })
        .await
    }

    /// Runs one job wherever `route` says, returning its result.
    async fn run_routed(&mut self, job: Job, route: &Route) -> JobResult {
        match route {
            Route::Shard(s) if *s == self.rt.id => {
                if !self.rt.gate.is_free() {
                    self.rt.gate.acquire().await;
                    let r = self.rt.run_job(&job);
                    self.rt.serve_and_release();
                    r
                } else {
                    self.rt.run_job(&job)
                }
            }
            Route::Shard(s) => match self.rt.exec_remote(*s, vec![job]).await.await {
                Payload::Outs(mut v) => v.pop().expect("one job, one reply"),
                _ => unreachable!("Exec answered without replies"),
            },
            Route::Hold(shards) => self.run_held(&job, shards).await,
            Route::Conn => unreachable!("blocking commands have keys"),
        }
    }

    /// Runs a blocking command: serve now, or wait until a shard serves it,
    /// the deadline passes (then it runs once more without blocking), or the
    /// client disconnects (None).
    async fn run_blocking(
        &mut self,
        stream: &TcpStream,
        idx: usize,
        cmd: &'static Command,
        mut args: Vec<Bytes>,
        route: Route,
    ) -> Option<Out> {
        let rt = self.rt.clone();
        loop {
            let (wake_id, wake) = rt.new_slot();
            let waiter = Arc::new(Waiter {
                claimed: false.into(),
                origin: rt.id,
                wake_id,
            });
            let mut job = Job::new(idx, cmd, args.clone(), self.client.db, self.client.resp3)
                .by(&self.client.info);
            job.waiter = Some(waiter.clone());
            let r = self.run_routed(job, &route).await;
            let Some(block) = r.block else {
                rt.drop_slot(wake_id);
                return Some(r.out);
            };
            if let Some(a) = &block.rerun_args {
                args = a.clone();
            }
            let info = self.client.info.clone();
            info.blocked.store(true, Ordering::Relaxed);
            info.argv_mem
                .store(args.iter().map(|a| a.len()).sum(), Ordering::Relaxed);
            let mut wake = wake;
            rt.srv.blocked_clients.fetch_add(1, Ordering::Relaxed);
            let outcome = wait_blocked(stream, &mut wake, block.deadline_ms, &info).await;
            rt.srv.blocked_clients.fetch_sub(1, Ordering::Relaxed);
            info.blocked.store(false, Ordering::Relaxed);
            info.argv_mem.store(0, Ordering::Relaxed);
            let outcome = match outcome {
                Wake::Timeout | Wake::Gone | Wake::Unblocked => {
                    settle(&waiter, &mut wake, outcome).await
                }
                other => other,
            };
            rt.drop_slot(wake_id);
            match outcome {
                Wake::Reply(Payload::Outs(mut v)) => return v.pop().map(|r| r.out),
                // Keys on several shards were signalled: run the command again.
                Wake::Reply(_) => continue,
                Wake::Gone => return None,
                Wake::Unblocked => {
                    let mut out = Out::new(self.client.resp3);
                    out.err("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                    return Some(out);
                }
                // As Redis: a null reply, whatever the key holds by now. It is
                // a null array for every list/zset/stream blocking command,
                // BLMOVE and BRPOPLPUSH included (replyToBlockedClientTimedOut).
                Wake::Timeout => {
                    let mut out = Out::new(self.client.resp3);
                    out.null_array();
                    return Some(out);
                }
            }
        }
    }

    /// EXEC: holds every shard the queued commands (and the watched keys)
    /// live on, checks WATCH, runs the commands in order, releases.
    async fn exec(&mut self, exec_idx: usize) -> Out {
        let resp3 = self.client.resp3;
        let mut out = Out::new(resp3);
        let Some(queued) = self.client.multi.take() else {
            out.err("ERR EXEC without MULTI");
            return out;
        };
        if std::mem::take(&mut self.client.multi_error) {
            transactions::unwatch_all(self.client);
            out.err(transactions::EXECABORT);
            return out;
        }
        // ACL rules may have changed since the commands were queued: each
        // is checked again, as Redis 7.0's execCommand does.
        if crate::acl::generation() != self.client.acl_gen {
            self.refresh_user();
        }
        let mut revoked: Vec<Option<String>> = vec![None; queued.len()];
        if !self.client.user.unrestricted {
            for (i, q) in queued.iter().enumerate() {
                if let Err((denied, object)) = crate::acl::check(&self.client.user, q.idx, &q.args)
                {
                    self.acl_log(crate::acl::reason_name(denied), "multi", object);
                    let reason = match denied {
                        crate::acl::Denied::Command => {
                            "no permission to execute the command or subcommand"
                        }
                        crate::acl::Denied::Key(_) => "no permission to touch the specified keys",
                        crate::acl::Denied::Channel(_) => {
                            "no permission to access one of the channels used as arguments"
                        }
                    };
                    revoked[i] = Some(format!(
                        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
                    ));
                }
            }
        }
        let nshards = self.rt.srv.nshards;
        let mut shards: Vec<usize> = Vec::new();
        for q in &queued {
            // A script inside MULTI may reach any key: hold everything.
            if is_script(q.cmd) {
                shards.extend(0..nshards);
            }
            match self.route(q.cmd, &q.args) {
                Route::Shard(s) => shards.push(s),
                Route::Hold(v) => shards.extend(v),
                Route::Conn => {}
            }
        }
        shards.extend(
            self.client
                .watched
                .iter()
                .map(|w| key_shard(&w.key, nshards)),
        );
        shards.sort_unstable();
        shards.dedup();
        let rt = self.rt.clone();
        let srv = rt.srv;
        let client = &mut *self.client;
        let out = rt
            .with_shards(&shards, |view| {
                // maxmemory is checked once, for the whole transaction.
                let denyoom = queued.iter().any(|q| q.cmd.flags & flags::DENYOOM != 0);
                let mut scratch = Out::new(resp3);
                let mut ctx = Ctx::new(&mut scratch, client.db, srv, Some(&mut *client), view);
                if super::shard::oom_refused(&mut ctx, denyoom) {
                    out.err(&format!(
                        "EXECABORT Transaction discarded because of: {}",
                        crate::storage::evict::OOM_ERR
                    ));
                    return out;
                }
                if transactions::watch_failed(client, crate::storage::now_ms()) {
                    out.null_array();
                    return out;
                }
                out.array(queued.len());
                let caller = (!client.user.unrestricted)
                    .then(|| Arc::new((client.user.clone(), client.info.clone())));
                // One unit: the transaction's effects replicate as one
                // MULTI/EXEC (or bare, if there is only one).
                let unit = crate::replication::enter();
                super::shard::nested(|| {
                    for (q, revoked) in queued.iter().zip(&revoked) {
                        if let Some(e) = revoked {
                            out.err(e);
                            continue;
                        }
                        let db = client.db;
                        let mut ctx = Ctx::new(&mut out, db, srv, Some(&mut *client), view);
                        // Blocking commands inside MULTI never block.
                        ctx.no_block = true;
                        ctx.caller = caller.clone();
                        run_handler(rt.stats(), q.idx, q.cmd, &mut ctx, &q.args);
                        // A command may switch protocol (HELLO) mid-transaction.
                        out.resp3 = client.resp3;
                    }
                });
                crate::replication::leave(unit, false, 0, &[]);
                out
            })
            .await;
        transactions::unwatch_all(self.client);
        ThreadStats::bump(&rt.stats().cmd_calls[exec_idx], 1);
        rt.serve_ready();
        out
    }

    /// WAIT numreplicas timeout: blocks until enough replicas acknowledged
    /// every write made so far, or the timeout.
    async fn wait_replicas(&mut self, args: &[Bytes]) -> Out {
        use crate::replication::master;
        let mut out = Out::new(self.client.resp3);
        let (n, timeout) = match commands::replication::wait_args(args) {
            Ok(v) => v,
            Err(e) => {
                out.err(e);
                return out;
            }
        };
        if crate::replication::replica::is_replica() {
            out.err(commands::replication::WAIT_ON_REPLICA);
            return out;
        }
        let target = master::current_offset();
        let deadline = (timeout > 0).then(|| crate::storage::now_ms() + timeout as u64);
        let mut asked = false;
        loop {
            let count = master::acked(target);
            if count as i64 >= n || deadline.is_some_and(|d| crate::storage::now_ms() >= d) {
                out.int(count as i64);
                return out;
            }
            if !asked {
                master::request_getack();
                asked = true;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    fn run_conn(&mut self, idx: usize, cmd: &'static Command, args: &[Bytes]) -> Out {
        let srv = self.rt.srv;
        let mut out = Out::new(self.client.resp3);
        let db = self.client.db;
        let none: Vec<*mut crate::storage::ShardStore> = vec![std::ptr::null_mut(); srv.nshards];
        let mut ctx = Ctx::new(&mut out, db, srv, Some(&mut *self.client), &none);
        run_handler(self.rt.stats(), idx, cmd, &mut ctx, args);
        out
    }
}

/// Counts an error reply produced outside a handler (rejections).
fn count_error(rt: &ShardRt, out: &Out) {
    if out.buf.first() == Some(&b'-') {
        rt.stats().ops.lock().unwrap().count_error(&out.buf);
    }
}

enum Wake {
    Reply(Payload),
    Timeout,
    Gone,
    /// CLIENT UNBLOCK ... ERROR (UNBLOCK ... TIMEOUT is a Timeout).
    Unblocked,
}

/// Waits for a blocked client's wake-up, its deadline, or its disconnection.
async fn wait_blocked(
    stream: &TcpStream,
    wake: &mut ReplyFuture,
    deadline_ms: Option<u64>,
    info: &ClientInfo,
) -> Wake {
    use futures_lite::future::or;
    let timer = async {
        match deadline_ms {
            Some(d) => {
                let now = crate::storage::now_ms();
                glommio::timer::sleep(std::time::Duration::from_millis(d.saturating_sub(now)))
                    .await;
                Wake::Timeout
            }
            None => futures_lite::future::pending().await,
        }
    };
    // EOF on the socket means the client is gone; pipelined input after the
    // blocking command just waits in the socket (then stop watching).
    let gone = async {
        let mut b = [0u8; 1];
        match stream.peek(&mut b).await {
            Ok(0) | Err(_) => Wake::Gone,
            Ok(_) => futures_lite::future::pending().await,
        }
    };
    // CLIENT UNBLOCK from another connection: a flag polled while blocked.
    info.unblock.store(0, Ordering::Relaxed);
    let unblock = async {
        loop {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            match info.unblock.swap(0, Ordering::Relaxed) {
                1 => return Wake::Timeout,
                2 => return Wake::Unblocked,
                _ => {}
            }
        }
    };
    or(
        async { Wake::Reply(wake.await) },
        or(timer, or(gone, unblock)),
    )
    .await
}

/// After a timeout or disconnect, decides the waiter's fate exactly once:
/// either we claim it (nobody will serve it any more), or a shard holds the
/// claim and is serving it right now — then its reply is coming, unless the
/// shard found nothing and released the claim, in which case we try again.
async fn settle(waiter: &Waiter, wake: &mut ReplyFuture, outcome: Wake) -> Wake {
    use futures_lite::future::or;
    loop {
        if waiter.claim() {
            return outcome;
        }
        let tick = async {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            None
        };
        if let Some(p) = or(async { Some((&mut *wake).await) }, tick).await {
            return match (p, &outcome) {
                (Payload::Outs(v), _) => Wake::Reply(Payload::Outs(v)),
                (_, Wake::Gone) => Wake::Gone,
                (_, Wake::Unblocked) => Wake::Unblocked,
                _ => Wake::Timeout,
            };
        }
    }
}

/// Adds an ACL LOG entry for a denial of `client`'s request.
pub(crate) fn acl_log_for(
    srv: &super::Server,
    client: &Client,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: Option<String>,
) {
    let max = srv.config.read().unwrap().get_i64("acllog-max-len").max(0) as usize;
    let cinfo = client.info.list_line(crate::storage::now_ms());
    crate::acl::log_denial(
        reason,
        context,
        object,
        username.unwrap_or_else(|| client.user.name.clone()),
        cinfo,
        max,
    );
}

/// Commands that act on the transaction itself instead of being queued.
fn is_tx_control(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// For a blocking command whose keys span shards: the same command reduced
/// to the keys of `shard`, so that shard can serve the waiter itself in
/// arrival order. Only for the `CMD key... timeout` shape (BLPOP, BRPOP,
/// BZPOPMIN, BZPOPMAX); other commands get None and retry when woken.
fn local_job(job: &Job, shard: usize, nshards: usize) -> Option<Job> {
    let c = job.cmd;
    if c.keys_fn.is_some() || c.first_key != 1 || c.last_key != -2 || c.step != 1 {
        return None;
    }
    let n = job.args.len();
    let mut args = vec![job.args[0].clone()];
    args.extend(
        job.args[1..n - 1]
            .iter()
            .filter(|k| key_shard(k, nshards) == shard)
            .cloned(),
    );
    args.push(job.args[n - 1].clone());
    Some(Job {
        args,
        ..job.clone()
    })
}

/// EVAL, EVALSHA, FCALL and their _RO forms.
fn is_script(cmd: &Command) -> bool {
    cmd.name.starts_with("eval") || cmd.name.starts_with("fcall")
}

/// What a connection shares with its shard's busy-script hook: all of its
/// state, borrowed by the connection task while it works and left in the
/// cell while it waits for input.
pub(super) struct Port {
    fd: std::os::fd::RawFd,
    info: Arc<ClientInfo>,
    /// Waiting for input with nothing in flight and replies on: the hook
    /// may serve it.
    idle: std::cell::Cell<bool>,
    /// The hook read or answered something: the task looks at `st` first.
    dirty: std::cell::Cell<bool>,
    /// The connection task, woken by the hook's owner when the script ends.
    waker: std::cell::RefCell<Option<std::task::Waker>>,
    st: std::cell::RefCell<ConnState>,
}

struct ConnState {
    client: Client,
    rbuf: BytesMut,
    parser: Parser,
    /// Replies the hook could not send yet: they go before anything newer.
    out: Vec<u8>,
    /// A command the hook may not run inside a script (WATCH, REPLCONF...):
    /// the task runs it first, then the input after it.
    deferred: Vec<Vec<Bytes>>,
    /// The hook stopped serving this connection until the script ends.
    stalled: bool,
    /// The peer closed, or the connection must be dropped.
    gone: bool,
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
                rbuf: BytesMut::with_capacity(READ_CHUNK),
                parser: Parser::new(),
                out: Vec::new(),
                deferred: Vec::new(),
                stalled: false,
                gone: false,
            }),
        }
    }
}

/// Serving a shard's connections while a script runs past
/// busy-reply-threshold on its thread (Redis's processEventsWhileBlocked,
/// called from the script's interrupt hook). The executor is stuck inside
/// Lua, so no task can run: the hook itself polls the sockets of the
/// connections that wait for input (an epoll set made once per busy
/// script), reads, parses and admits their commands with the connection's
/// own state, answers -BUSY and the like, runs the few commands allowed
/// meanwhile that need no data (MULTI, DISCARD, UNWATCH, QUIT, RESET,
/// SCRIPT KILL; SHUTDOWN NOSAVE exits) and writes the replies with
/// non-blocking sends. A command it may not run (WATCH...) is left for the
/// connection, which then stops being served until the script ends.
/// Connections in the middle of a batch, blocked or subscribed are not
/// read, as Redis does not process a blocked client's input. When the
/// script ends, every connection the hook touched is woken to take over.
pub(super) mod busy {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::rc::Rc;
    use std::sync::atomic::Ordering;

    use glommio::net::TcpStream;

    use super::{Conn, ConnState, Port, Route, Slot};
    use crate::protocol::{ParseError, ParserLimits};
    use crate::server::ThreadStats;
    use crate::server::shard::ShardRt;

    thread_local! {
        /// This shard's connections, by client id.
        static PORTS: RefCell<HashMap<u64, Rc<Port>>> = RefCell::new(HashMap::new());
        /// The running busy script's epoll set (None: no script is busy here).
        static EPISODE: RefCell<Option<Episode>> = const { RefCell::new(None) };
        /// This shard's listening sockets (SO_REUSEPORT: its own queues).
        static LISTENERS: RefCell<Vec<libc::c_int>> = const { RefCell::new(Vec::new()) };
    }

    /// A listening socket of this shard, from which the hook accepts new
    /// connections while a script is busy. Made non-blocking, so that an
    /// accept never waits (the accept task waits on readiness).
    pub(in crate::server) fn add_listener(fd: libc::c_int) {
        // SAFETY: fcntl on the caller's open listening socket.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        LISTENERS.with(|l| l.borrow_mut().push(fd));
    }

    /// epoll data of listener `j` (ports use their index).
    const LISTENER_TAG: u64 = 1 << 63;

    /// Removes the connection from its shard's table when it ends.
    pub(in crate::server) struct Registered(u64);

    impl Drop for Registered {
        fn drop(&mut self) {
            if let Some(p) = PORTS.with(|m| m.borrow_mut().remove(&self.0)) {
                // The waker refers to the task that owns the port.
                p.waker.borrow_mut().take();
            }
        }
    }

    /// Enters the connection in its shard's table.
    pub(in crate::server) fn register(id: u64, port: &Rc<Port>) -> Registered {
        PORTS.with(|m| m.borrow_mut().insert(id, port.clone()));
        Registered(id)
    }

    /// Notes the calling task (the connection's) as the one to wake.
    pub(in crate::server) async fn set_waker(port: &Port) {
        futures_lite::future::poll_fn(|cx| {
            *port.waker.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Ready(())
        })
        .await;
    }

    struct Episode {
        epoll: OwnedFd,
        ports: Vec<Rc<Port>>,
        /// Ports whose replies did not fit in the socket: retried each tick.
        backlog: Vec<usize>,
        listeners: Vec<libc::c_int>,
        /// Connections accepted meanwhile: their tasks start when it ends.
        accepted: Vec<(Rc<Port>, Registered, TcpStream)>,
    }

    impl Episode {
        fn start() -> Option<Episode> {
            // SAFETY: plain syscall; the fd is owned from here on.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: a fresh fd nobody else owns.
            let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
            let ports: Vec<Rc<Port>> = PORTS.with(|m| {
                m.borrow()
                    .values()
                    .filter(|p| p.idle.get())
                    .cloned()
                    .collect()
            });
            let ep = Episode {
                epoll,
                ports,
                backlog: Vec::new(),
                listeners: LISTENERS.with(|l| l.borrow().clone()),
                accepted: Vec::new(),
            };
            for (i, p) in ep.ports.iter().enumerate() {
                ep.ctl(libc::EPOLL_CTL_ADD, p.fd, i as u64);
            }
            for (j, &fd) in ep.listeners.iter().enumerate() {
                ep.ctl(libc::EPOLL_CTL_ADD, fd, LISTENER_TAG | j as u64);
            }
            Some(ep)
        }

        fn ctl(&self, op: libc::c_int, fd: libc::c_int, data: u64) {
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                u64: data,
            };
            // SAFETY: both fds are open; `ev` lives across the call.
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) };
        }

        fn tick(&mut self, rt: &Rc<ShardRt>) {
            for i in std::mem::take(&mut self.backlog) {
                self.serve(rt, i);
            }
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
            // SAFETY: `evs` has room for 64 events; timeout 0 never blocks.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 64, 0) };
            for ev in &evs[..n.max(0) as usize] {
                if ev.u64 & LISTENER_TAG != 0 {
                    self.accept(rt, self.listeners[(ev.u64 & !LISTENER_TAG) as usize]);
                    continue;
                }
                let i = ev.u64 as usize;
                if !self.backlog.contains(&i) {
                    self.serve(rt, i);
                }
            }
        }

        /// Admits the connections waiting on a listener, as the accept
        /// task would, and serves them from now on.
        fn accept(&mut self, rt: &Rc<ShardRt>, listener: libc::c_int) {
            for _ in 0..64 {
                // SAFETY: accept4 on our non-blocking listening socket.
                let fd = unsafe {
                    libc::accept4(
                        listener,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC,
                    )
                };
                if fd < 0 {
                    return;
                }
                // SAFETY: a connected socket we own from here on.
                let stream = unsafe { TcpStream::from_raw_fd(fd) };
                let (peer, local) = super::tcp_addrs(&stream);
                match super::admit_connection(rt, &stream, peer, local) {
                    Ok((port, registered)) => {
                        port.idle.set(true);
                        let i = self.ports.len();
                        self.ports.push(port.clone());
                        self.ctl(libc::EPOLL_CTL_ADD, fd, i as u64);
                        self.accepted.push((port, registered, stream));
                        // Input may have come with the connection.
                        self.serve(rt, i);
                    }
                    Err(msg) => {
                        // SAFETY: best effort on the socket we are closing.
                        unsafe {
                            libc::send(
                                fd,
                                msg.as_ptr().cast(),
                                msg.len(),
                                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                            )
                        };
                    }
                }
            }
        }

        /// Sends port `i` what is pending, reads what it sent and answers it.
        fn serve(&mut self, rt: &Rc<ShardRt>, i: usize) {
            let port = self.ports[i].clone();
            let Ok(mut st) = port.st.try_borrow_mut() else {
                return;
            };
            if !port.idle.get() || st.gone {
                return;
            }
            port.dirty.set(true);
            let mut ok = flush(rt, port.fd, &mut st);
            let mut reads = 0;
            let mut chunk = [0u8; 16 * 1024];
            while ok && !st.stalled && st.out.is_empty() && reads < 8 {
                reads += 1;
                // SAFETY: the fd is the connection's open socket; `chunk`
                // is writable for its length.
                let n = unsafe {
                    libc::recv(
                        port.fd,
                        chunk.as_mut_ptr().cast(),
                        chunk.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n < 0 {
                    let e = std::io::Error::last_os_error().kind();
                    if e == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    st.gone = e != std::io::ErrorKind::WouldBlock;
                    break;
                }
                if n == 0 || port.info.killed.load(Ordering::Relaxed) {
                    st.gone = true;
                    break;
                }
                ThreadStats::bump(&rt.stats().net_input_bytes, n as u64);
                st.rbuf.extend_from_slice(&chunk[..n as usize]);
                if answer(rt, &mut st) {
                    st.stalled = true;
                }
                ok = flush(rt, port.fd, &mut st);
            }
            if st.client.close_after_reply && st.out.is_empty() && !st.gone {
                // QUIT, a protocol error: closed once the last reply is out,
                // as stock does (the task ends when the script does).
                // SAFETY: shutdown(2) of the connection's open socket.
                unsafe { libc::shutdown(port.fd, libc::SHUT_RDWR) };
                st.gone = true;
            }
            if st.gone || st.stalled {
                self.ctl(libc::EPOLL_CTL_DEL, port.fd, 0);
            }
            if !st.gone && !st.out.is_empty() {
                self.backlog.push(i);
            }
        }
    }

    /// Parses and answers the complete commands in the connection's input.
    /// True when the hook must stop serving it (a command left for the
    /// connection, QUIT, a protocol error, a full query buffer).
    fn answer(rt: &Rc<ShardRt>, st: &mut ConnState) -> bool {
        let srv = rt.srv;
        let ConnState {
            client,
            rbuf,
            parser,
            out,
            deferred,
            gone,
            ..
        } = st;
        let mut conn = Conn {
            rt: rt.clone(),
            client,
        };
        loop {
            let limits = ParserLimits {
                proto_max_bulk_len: srv.proto_max_bulk_len.load(Ordering::Relaxed) as i64,
                authenticated: conn.client.authenticated,
            };
            let args = match parser.parse(rbuf, limits) {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(ParseError::Protocol(m)) => {
                    crate::protocol::err_line(out, format!("ERR {m}").as_bytes());
                    conn.client.close_after_reply = true;
                    return true;
                }
            };
            let mut slots: Vec<Slot> = Vec::new();
            let now = crate::storage::now_ms();
            if let Some((idx, cmd, args)) = conn.admit(args, &mut slots, false, now) {
                // Only commands allowed while busy get here; those that run
                // on the connection and touch no data run now.
                if !matches!(conn.route(cmd, &args), Route::Conn) {
                    deferred.push(args);
                    return true;
                }
                let o = conn.run_conn(idx, cmd, &args);
                out.extend_from_slice(&o.buf);
            }
            for s in slots {
                if let Some(o) = s.out {
                    out.extend_from_slice(&o.buf);
                }
            }
            if conn.client.close_after_reply {
                return true;
            }
        }
        if rbuf.len() as u64 > srv.client_query_buffer_limit.load(Ordering::Relaxed) {
            crate::log::warning(&format!(
                "Closing client that reached max query buffer length: id={} addr={}",
                conn.client.id, conn.client.info.addr
            ));
            *gone = true;
            return true;
        }
        false
    }

    /// Non-blocking send of as much of the pending replies as the socket
    /// takes. False (and the connection gone) if the socket is broken.
    fn flush(rt: &ShardRt, fd: libc::c_int, st: &mut ConnState) -> bool {
        let buf = &mut st.out;
        let mut sent = 0;
        let mut ok = true;
        while sent < buf.len() {
            // SAFETY: `buf[sent..]` is readable; fd is the client's socket.
            let n = unsafe {
                libc::send(
                    fd,
                    buf[sent..].as_ptr().cast(),
                    buf.len() - sent,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error().kind();
                if e == std::io::ErrorKind::Interrupted {
                    continue;
                }
                ok = e == std::io::ErrorKind::WouldBlock;
                break;
            }
            sent += n as usize;
        }
        buf.drain(..sent);
        ThreadStats::bump(&rt.stats().net_output_bytes, sent as u64);
        if !ok {
            st.gone = true;
        }
        ok
    }

    /// Called from the interrupt hook of a script past the threshold.
    pub fn tick() {
        crate::server::shard::with_current(|rt| {
            EPISODE.with(|e| {
                let mut e = e.borrow_mut();
                if e.is_none() {
                    *e = Episode::start();
                }
                if let Some(ep) = e.as_mut() {
                    ep.tick(rt);
                }
            })
        });
    }

    /// The script ended: the connections the hook touched take over, and
    /// those it accepted get their tasks.
    pub fn ended() {
        let Some(ep) = EPISODE.with(|e| e.borrow_mut().take()) else {
            return;
        };
        for p in &ep.ports {
            if p.dirty.get()
                && let Some(w) = p.waker.borrow().as_ref()
            {
                w.wake_by_ref();
            }
        }
        crate::server::shard::with_current(|rt| {
            for (port, registered, stream) in ep.accepted {
                let rt = rt.clone();
                glommio::spawn_local(super::run_connection(rt, port, registered, stream)).detach();
            }
        });
    }
}
