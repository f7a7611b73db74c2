//! PSYNC / SYNC on the master: partial resync from the backlog, or a full
//! sync from a fork at a global cut (disk-based `$len` or diskless `$EOF:`),
//! then the connection leaves its shard executor for the replication
//! threads (`master::run_link`).

use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::master::{self, CutInfo, Link, ONLINE, SEND_BULK, WAIT_BGSAVE};
use crate::server::client::Client;
use crate::server::persist::{self, Target};
use crate::server::shard::ShardRt;
use crate::storage::now_ms;

/// Full-sync requests not yet given their fork (any shard's thread).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// One replica counted in `WAITING` while it lives.
struct Waiting;

impl Waiting {
    fn enter() -> Waiting {
        WAITING.fetch_add(1, Ordering::AcqRel);
        Waiting
    }

    fn count() -> usize {
        WAITING.load(Ordering::Acquire)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `args` (PSYNC id offset, or SYNC) on `stream`. On success the
/// socket now belongs to the replication threads; either way the caller's
/// connection task ends.
pub async fn serve_replica(
    rt: &Rc<ShardRt>,
    stream: &mut TcpStream,
    client: &mut Client,
    args: Vec<Bytes>,
    pending: Vec<u8>,
) {
    let srv = rt.srv;
    let Some(r) = master::repl() else { return };
    // SYNC takes no argument (arity 1), PSYNC at least two.
    let psync = args.len() > 1;
    if psync && args.len() > 3 && args[3].eq_ignore_ascii_case(b"failover") {
        // Our master hands over: take its place if we follow its history.
        let id = String::from_utf8_lossy(&args[1]).into_owned();
        crate::log::warning(&format!("Failover request received for replid {id}."));
        if !super::replica::is_replica() {
            let _ = stream
                .write_all(b"-ERR PSYNC FAILOVER can't be sent to a master.\r\n")
                .await;
            return;
        }
        if r.lock().replid != id {
            let _ = stream
                .write_all(b"-ERR PSYNC FAILOVER replid must match my replid.\r\n")
                .await;
            return;
        }
        let all: Vec<usize> = (0..srv.nshards).collect();
        rt.with_shards(&all, |view| {
            let mut stores = view.all_mut();
            super::replica::promote(&mut stores);
        })
        .await;
        let _ = srv.config.write().unwrap().set("replicaof", "");
        crate::log::notice(&format!(
            "MASTER MODE enabled (failover request from '{}')",
            client.info.addr
        ));
    }
    if super::failover::active() {
        let _ = stream
            .write_all(b"-NOMASTERLINK Can't SYNC while failing over\r\n")
            .await;
        return;
    }
    let not_linked = r
        .lock()
        .replica
        .of
        .as_ref()
        .is_some_and(|m| m.state != super::replica::LinkState::Connected);
    if not_linked {
        // Sub-replicas wait until this node has its own master again.
        let _ = stream
            .write_all(b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n")
            .await;
        return;
    }
    let info = client.info.clone();
    *info.flags.lock().unwrap() = "S".into();
    if !client.replconf.capa_keel_scripts {
        r.lock().forgetful_replica_seen = true;
    }
    let addr_ip = info
        .addr
        .rsplit_once(':')
        .map_or(info.addr.clone(), |(h, _)| h.to_string());
    let ip = client.replconf.ip.clone().unwrap_or(addr_ip);
    let port = client.replconf.port;
    let name = format!("{ip}:{port}");

    if psync {
        let id = String::from_utf8_lossy(&args[1]).to_string();
        let off: i64 = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let accepted = {
            let mut st = r.lock();
            if master::can_continue(&st, &id, off) {
                st.sync_partial_ok += 1;
                let l = Arc::new(Link::new(info.clone(), ip.clone(), port, off, false));
                l.state.store(ONLINE, Ordering::Release);
                st.replicas.push(l.clone());
                Some((l, st.replid.clone(), st.offset))
            } else {
                if id != "?" {
                    st.sync_partial_err += 1;
                }
                None
            }
        };
        if let Some((link, replid, offset)) = accepted {
            master::refresh_good_replicas(srv);
            let line = if client.replconf.capa_psync2 {
                format!("+CONTINUE {replid}\r\n")
            } else {
                "+CONTINUE\r\n".to_string()
            };
            if stream.write_all(line.as_bytes()).await.is_err() {
                master::drop_link(r, &link);
                return;
            }
            crate::log::notice(&format!(
                "Partial resynchronization request from {name} accepted. Sending {} bytes of backlog starting from offset {off}.",
                offset + 1 - off
            ));
            handoff(stream, link, pending, client);
            return;
        }
        if id != "?" {
            crate::log::notice(&format!(
                "Partial resynchronization not accepted: replid/offset mismatch or out of backlog (asked {id} {off})"
            ));
        }
    }
    r.lock().sync_full += 1;
    crate::log::notice(&format!("Replica {name} asks for synchronization"));
    let diskless = psync && client.replconf.capa_eof && {
        let c = srv.config.read().unwrap();
        c.get_bool("repl-diskless-sync")
    };
    let delay_ms = if diskless {
        srv.config
            .read()
            .unwrap()
            .get_i64("repl-diskless-sync-delay")
            .max(0) as u64
            * 1000
    } else {
        0
    };
    let fd = stream.as_raw_fd();
    let all: Vec<usize> = (0..srv.nshards).collect();
    let start = now_ms();
    let mut last_newline = start;
    let waiting = Waiting::enter();
    let (link, pid) = loop {
        let now = now_ms();
        if now - last_newline >= 1000 {
            // Before +FULLRESYNC a newline means "keep waiting".
            last_newline = now;
            if stream.write_all(b"\n").await.is_err() {
                return;
            }
        }
        // repl-diskless-sync-max-replicas: the delay ends early once that
        // many replicas wait for a full sync.
        let enough = delay_ms > 0 && {
            let max = srv
                .config
                .read()
                .unwrap()
                .get_i64("repl-diskless-sync-max-replicas");
            max > 0 && Waiting::count() >= max as usize
        };
        if srv.persist.bgsave_in_progress() || (now - start < delay_ms && !enough) {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mut link: Option<Arc<Link>> = None;
        let res = rt
            .with_shards(&all, |view| {
                let stores = view.all();
                let mut on_cut = |c: &CutInfo| {
                    let l = Arc::new(Link::new(
                        info.clone(),
                        ip.clone(),
                        port,
                        c.offset + 1,
                        !psync,
                    ));
                    l.state.store(WAIT_BGSAVE, Ordering::Release);
                    r.lock().replicas.push(l.clone());
                    link = Some(l);
                };
                persist::bgsave(
                    rt,
                    &stores,
                    Target::Replica {
                        fd,
                        diskless,
                        fullresync_line: psync,
                        on_cut: &mut on_cut,
                    },
                )
            })
            .await;
        match (res, link) {
            (Ok(pid), Some(l)) => {
                if diskless {
                    l.state.store(SEND_BULK, Ordering::Release);
                }
                break (l, pid);
            }
            (Err(e), l) if e.contains("already in progress") => {
                if let Some(l) = l {
                    master::drop_link(r, &l);
                }
                continue;
            }
            (res, l) => {
                if let Some(l) = l {
                    master::drop_link(r, &l);
                }
                let e = res.err().unwrap_or_default();
                crate::log::warning(&format!("BGSAVE for replication failed: {e}"));
                let _ = stream
                    .write_all(b"-ERR BGSAVE failed, replication can't continue\r\n")
                    .await;
                return;
            }
        }
    };
    drop(waiting);
    // Wait for the child; a disk-based transfer keeps the replica's timer
    // alive with newlines meanwhile.
    let ok = loop {
        let v = srv.persist.last_child.load(Ordering::Acquire);
        if (v >> 1) as i32 == pid {
            break v & 1 == 1;
        }
        if link.killed.load(Ordering::Acquire) {
            break false;
        }
        let now = now_ms();
        if !diskless && now - last_newline >= 1000 {
            last_newline = now;
            if stream.write_all(b"\n").await.is_err() {
                break false;
            }
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    };
    if !ok {
        crate::log::warning(&format!("Full sync of replica {name} failed"));
        master::drop_link(r, &link);
        return;
    }
    if diskless {
        link.hold_until_ack.store(true, Ordering::Release);
        link.state.store(ONLINE, Ordering::Release);
    } else {
        link.state.store(SEND_BULK, Ordering::Release);
        if send_file(stream, &persist::rdb_path(srv)).await.is_err() {
            crate::log::warning(&format!("Sending the RDB to replica {name} failed"));
            master::drop_link(r, &link);
            return;
        }
    }
    // Online from now: its lag counts from here (stock's putSlaveOnline).
    link.ack_ms.store(now_ms(), Ordering::Release);
    link.state.store(ONLINE, Ordering::Release);
    master::refresh_good_replicas(srv);
    crate::log::notice(&format!("Synchronization with replica {name} succeeded"));
    handoff(stream, link, pending, client);
}

/// `$<len>\r\n` and the file's bytes (no trailing CRLF).
async fn send_file(stream: &mut TcpStream, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    stream.write_all(format!("${len}\r\n").as_bytes()).await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = n.min(left as usize);
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// Gives the socket to the replication threads: a duplicate descriptor
/// outlives the executor's, which the connection task closes.
fn handoff(stream: &TcpStream, link: Arc<Link>, pending: Vec<u8>, client: &mut Client) {
    // SAFETY: dup(2) of the live socket descriptor.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    let Some(r) = master::repl() else { return };
    if fd < 0 {
        master::drop_link(r, &link);
        return;
    }
    // SAFETY: `fd` is a fresh descriptor we own, of a connected TCP socket.
    let sock = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    client.handed_off = true;
    master::run_link(link, sock, pending);
}
