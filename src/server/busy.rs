//! Serving a shard's connections while a script runs past
//! busy-reply-threshold on its thread (Redis's processEventsWhileBlocked,
//! called from the script's interrupt hook). The executor is stuck inside
//! Lua, so no task can run: the hook itself polls the sockets of the
//! connections that wait for input (an epoll set made once per busy
//! script), reads, parses and admits their commands with the connection's
//! own state, answers -BUSY and the like, runs the few commands allowed
//! meanwhile that need no data (MULTI, DISCARD, UNWATCH, QUIT, RESET,
//! SCRIPT KILL; SHUTDOWN NOSAVE exits) and writes the replies with
//! non-blocking sends. A command it may not run (WATCH...) is left for the
//! connection, which then stops being served until the script ends.
//! Replies a client turned off (CLIENT REPLY OFF/SKIP) are dropped, as in
//! stock. Subscribers are served too (stock's pub/sub-context errors, then
//! -BUSY), after the messages queued for them. Connections in the middle of
//! a batch or blocked are not read, as Redis does not process a blocked
//! client's input. When the script ends, every connection the hook touched
//! is woken to take over.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use glommio::net::TcpStream;

use super::conn::{Conn, ConnState, Port};
use super::pipeline::Slot;
use super::pipeline::route::Route;
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

/// Calls `f` on each of this shard's connections (`f` must not admit or
/// drop one).
pub(in crate::server) fn for_each_port(mut f: impl FnMut(&Port)) {
    PORTS.with(|m| m.borrow().values().for_each(|p| f(p)));
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
            let (peer, local) = super::conn::tcp_addrs(&stream);
            match super::conn::admit_connection(rt, &stream, peer, local) {
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
        // Messages published before the script go out before its replies.
        let queued = st.client.subs.queue.take();
        st.out.extend_from_slice(&queued);
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
        // CLIENT REPLY OFF/SKIP hides the replies (-BUSY too) as stock does.
        let suppress = conn.reply_suppressed();
        if let Some((idx, cmd, args)) = conn.admit(args, &mut slots, suppress, now) {
            // Only commands allowed while busy get here; those that run
            // on the connection and touch no data run now.
            if !matches!(conn.route(cmd, &args), Route::Conn) {
                deferred.push(args);
                return true;
            }
            let o = conn.run_conn(idx, cmd, &args);
            if !suppress {
                out.extend_from_slice(&o.buf);
            }
        }
        for s in slots {
            if let (false, Some(o)) = (s.suppress, s.out) {
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
            glommio::spawn_local(super::conn::run_connection(rt, port, registered, stream))
                .detach();
        }
    });
}
