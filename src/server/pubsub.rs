//! Pub/sub registry.
//!
//! Each shard keeps its own subscribers (the connections it serves) in a
//! thread-local table and delivers to them. A process-wide table counts
//! subscriptions per channel and shard, so PUBLISH (also from MULTI or a
//! script) knows its exact receiver count synchronously and sends the message
//! only to shards that have subscribers. That table is read-locked per
//! PUBLISH and write-locked per (un)subscribe: the one shared structure of
//! pub/sub.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::RwLock;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::Server;
use crate::util::glob_match;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// Messages waiting to be written to one subscribed connection.
#[derive(Default)]
pub struct PushQueue {
    buf: RefCell<Vec<u8>>,
    waker: RefCell<Option<Waker>>,
    /// The connection's protocol, kept current by the connection.
    pub resp3: Cell<bool>,
    /// The `pubsub` hard output limit (0 = none), kept current by the
    /// connection; a push past it marks the queue `over` (Redis checks the
    /// limit as it appends to a client's output, not only while writing).
    pub hard_limit: Cell<u64>,
    pub over: Cell<bool>,
    /// Bytes taken from the queue that a write still holds: they count
    /// toward the limit as much as the queued ones.
    pub in_flight: Cell<usize>,
    /// Where CLIENT LIST reads omem/oll, updated by every push (the
    /// connection may not run before the limit closes it).
    pub client: RefCell<Option<std::sync::Arc<super::client::ClientInfo>>>,
}

impl PushQueue {
    fn push_message(&self, head: &[u8], parts: &[&[u8]]) {
        let mut b = self.buf.borrow_mut();
        b.push(if self.resp3.get() { b'>' } else { b'*' });
        b.extend_from_slice(format!("{}\r\n", parts.len() + 1).as_bytes());
        b.extend_from_slice(format!("${}\r\n", head.len()).as_bytes());
        b.extend_from_slice(head);
        b.extend_from_slice(b"\r\n");
        for p in parts {
            b.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
            b.extend_from_slice(p);
            b.extend_from_slice(b"\r\n");
        }
        drop(b);
        self.pushed();
    }

    /// Queues a frame built elsewhere (a tracking invalidation).
    pub fn push_raw(&self, frame: &[u8]) {
        self.buf.borrow_mut().extend_from_slice(frame);
        self.pushed();
    }

    /// After a push: the output limit, CLIENT LIST's omem, the waiting task.
    fn pushed(&self) {
        let used = self.buf.borrow().len() + self.in_flight.get();
        if let Some(info) = &*self.client.borrow() {
            use std::sync::atomic::Ordering::Relaxed;
            let omem = info.omem.load(Relaxed).max(used);
            info.omem.store(omem, Relaxed);
            info.oll.store(omem.div_ceil(16384), Relaxed);
            let hard = self.hard_limit.get();
            if hard > 0 && used as u64 >= hard {
                self.close_over_limit(info);
            }
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Past the output limit: closes the connection at once, as Redis's
    /// closeClientAsync (gone from CLIENT LIST, its socket shut down before
    /// its task, which may be far behind a flood of pushes, runs again).
    pub fn close_over_limit(&self, info: &super::client::ClientInfo) {
        if self.over.replace(true) {
            return;
        }
        let line = info.list_line(crate::storage::now_ms());
        crate::log::warning(&format!(
            "Client {line} scheduled to be closed ASAP for overcoming of output buffer limits."
        ));
        info.kill();
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.buf.borrow_mut())
    }

    pub fn len(&self) -> usize {
        self.buf.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.borrow().is_empty()
    }

    /// Resolves when there is something to write.
    pub fn ready(&self) -> Ready<'_> {
        Ready(self)
    }

    /// Resolves once a push went past the hard limit.
    pub fn over_limit(&self) -> OverLimit<'_> {
        OverLimit(self)
    }
}

pub struct OverLimit<'a>(&'a PushQueue);

impl Future for OverLimit<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.over.get() {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

pub struct Ready<'a>(&'a PushQueue);

impl Future for Ready<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.0.is_empty() {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Sub {
    client: u64,
    queue: Rc<PushQueue>,
}

#[derive(Default)]
struct Local {
    tables: HashMap<Kind, HashMap<Bytes, Vec<Sub>>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// Process-wide subscription counts: name -> subscribers per shard.
#[derive(Default)]
pub struct Global {
    tables: RwLock<HashMap<Kind, HashMap<Bytes, Vec<usize>>>>,
}

impl Global {
    fn change(&self, kind: Kind, name: &Bytes, shard: usize, nshards: usize, add: bool) {
        let mut t = self.tables.write().unwrap();
        let table = t.entry(kind).or_default();
        let counts = table
            .entry(name.clone())
            .or_insert_with(|| vec![0; nshards]);
        if add {
            counts[shard] += 1;
        } else {
            counts[shard] = counts[shard].saturating_sub(1);
            if counts.iter().all(|&c| c == 0) {
                table.remove(name);
            }
        }
    }

    /// Active names of a kind, optionally filtered by a glob pattern.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let t = self.tables.read().unwrap();
        t.get(&kind)
            .map(|m| {
                m.keys()
                    .filter(|n| pattern.is_none_or(|p| glob_match(p, n, false)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        let t = self.tables.read().unwrap();
        t.get(&kind)
            .and_then(|m| m.get(name))
            .map(|c| c.iter().sum())
            .unwrap_or(0)
    }

    /// Number of distinct patterns subscribed (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        let t = self.tables.read().unwrap();
        t.get(&Kind::Pattern).map(|m| m.len()).unwrap_or(0)
    }

    /// Receivers of a message and the shards that host them.
    fn receivers(&self, kind: Kind, channel: &[u8], nshards: usize) -> (usize, Vec<bool>) {
        let t = self.tables.read().unwrap();
        let mut n = 0;
        let mut shards = vec![false; nshards];
        let mut add = |counts: &Vec<usize>| {
            for (s, &c) in counts.iter().enumerate() {
                n += c;
                shards[s] |= c > 0;
            }
        };
        if let Some(c) = t.get(&kind).and_then(|m| m.get(channel)) {
            add(c);
        }
        if kind == Kind::Channel
            && let Some(pats) = t.get(&Kind::Pattern)
        {
            for (p, c) in pats {
                if glob_match(p, channel, false) {
                    add(c);
                }
            }
        }
        (n, shards)
    }
}

/// After an ACL change: disconnects this shard's subscribers whose user may
/// no longer have one of their channels or patterns.
pub fn kill_revoked(srv: &Server, shard: usize) {
    let mut doomed: Vec<u64> = Vec::new();
    {
        let clients = srv.clients.lock().unwrap();
        LOCAL.with(|l| {
            for (kind, table) in &l.borrow().tables {
                for (name, subs) in table {
                    for s in subs {
                        if doomed.contains(&s.client) {
                            continue;
                        }
                        let Some(info) = clients.get(&s.client) else {
                            continue;
                        };
                        let user = info.user.lock().unwrap().clone();
                        let allowed = crate::acl::get_user(&user)
                            .is_some_and(|u| u.channel_allowed(name, *kind == Kind::Pattern));
                        if !allowed {
                            doomed.push(s.client);
                            info.kill();
                        }
                    }
                }
            }
        });
    }
    // Their subscriptions go now, not when their tasks next run: a command
    // right after the ACL change (PUBSUB NUMPAT) must not see them.
    let mut gone: Vec<(Kind, Bytes, u64)> = Vec::new();
    LOCAL.with(|l| {
        for (kind, table) in &l.borrow().tables {
            for (name, subs) in table {
                for s in subs.iter().filter(|s| doomed.contains(&s.client)) {
                    gone.push((*kind, name.clone(), s.client));
                }
            }
        }
    });
    for (kind, name, client) in gone {
        unsubscribe(srv, shard, kind, &name, client);
    }
}

/// Subscribes `queue` (client `client` on shard `shard`) to `name`.
/// Returns false if it was already subscribed.
pub fn subscribe(
    srv: &Server,
    shard: usize,
    kind: Kind,
    name: &Bytes,
    client: u64,
    queue: &Rc<PushQueue>,
) -> bool {
    let added = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let subs = l
            .tables
            .entry(kind)
            .or_default()
            .entry(name.clone())
            .or_default();
        if subs.iter().any(|s| s.client == client) {
            return false;
        }
        subs.push(Sub {
            client,
            queue: queue.clone(),
        });
        true
    });
    if added {
        srv.pubsub.change(kind, name, shard, srv.nshards, true);
    }
    added
}

pub fn unsubscribe(srv: &Server, shard: usize, kind: Kind, name: &Bytes, client: u64) -> bool {
    let removed = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let Some(table) = l.tables.get_mut(&kind) else {
            return false;
        };
        let Some(subs) = table.get_mut(name) else {
            return false;
        };
        let before = subs.len();
        subs.retain(|s| s.client != client);
        let removed = subs.len() != before;
        if subs.is_empty() {
            table.remove(name);
        }
        removed
    });
    if removed {
        srv.pubsub.change(kind, name, shard, srv.nshards, false);
    }
    removed
}

/// Delivers a published message to this shard's subscribers.
pub fn deliver_local(kind: Kind, channel: &[u8], message: &[u8]) {
    LOCAL.with(|l| {
        let l = l.borrow();
        let (head, direct): (&[u8], Kind) = match kind {
            Kind::Shard => (b"smessage", Kind::Shard),
            _ => (b"message", Kind::Channel),
        };
        if let Some(subs) = l.tables.get(&direct).and_then(|m| m.get(channel)) {
            for s in subs {
                s.queue.push_message(head, &[channel, message]);
            }
        }
        if kind == Kind::Channel
            && let Some(pats) = l.tables.get(&Kind::Pattern)
        {
            for (p, subs) in pats {
                if glob_match(p, channel, false) {
                    for s in subs {
                        s.queue.push_message(b"pmessage", &[p, channel, message]);
                    }
                }
            }
        }
    });
}

/// PUBLISH / SPUBLISH: delivers here and sends to the other shards that
/// have receivers; returns the receiver count.
pub fn publish(srv: &Server, kind: Kind, channel: &Bytes, message: &Bytes) -> usize {
    let (n, shards) = srv.pubsub.receivers(kind, channel, srv.nshards);
    if n == 0 {
        return 0;
    }
    super::shard::with_current(|rt| {
        for (s, &has) in shards.iter().enumerate() {
            if !has {
                continue;
            }
            if s == rt.id {
                deliver_local(kind, channel, message);
            } else {
                rt.post(
                    s,
                    super::shard::Msg::Publish {
                        kind,
                        channel: channel.clone(),
                        message: message.clone(),
                    },
                );
            }
        }
    });
    n
}

/// A connection's subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    pub queue: Rc<PushQueue>,
    pub names: HashMap<Kind, Vec<Bytes>>,
}

impl Subscriptions {
    /// Channels + patterns: the count Redis reports in (un)subscribe replies.
    pub fn count(&self) -> usize {
        self.len(Kind::Channel) + self.len(Kind::Pattern)
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.names.get(&kind).map(|v| v.len()).unwrap_or(0)
    }

    pub fn any(&self) -> bool {
        self.names.values().any(|v| !v.is_empty())
    }

    /// Shows the counts to other threads (CLIENT LIST, KILL TYPE pubsub).
    pub fn publish_counts(&self, info: &super::client::ClientInfo) {
        for (i, kind) in [Kind::Channel, Kind::Pattern, Kind::Shard]
            .into_iter()
            .enumerate()
        {
            info.subs[i].store(self.len(kind), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Drops every subscription (connection closed, RESET).
    pub fn clear(&mut self, srv: &Server, shard: usize, client: u64) {
        for (kind, names) in self.names.drain() {
            for n in names {
                unsubscribe(srv, shard, kind, &n, client);
            }
        }
    }
}

/// `storage::Hooks::keyspace_event`: publishes `__keyspace@<db>__:<key>
/// <event>` and/or `__keyevent@<db>__:<event> <key>` through PUBLISH's own
/// path, so subscribers on every shard hear it, in the order this thread
/// produced it. Without a shard runtime (loading at startup) nobody can be
/// subscribed yet.
pub fn keyspace_event(flags: u32, event: &'static str, key: &[u8], db: usize) {
    use crate::storage::notify::{KEYEVENT, KEYSPACE};
    super::shard::with_current(|rt| {
        let event = Bytes::from_static(event.as_bytes());
        let key = Bytes::copy_from_slice(key);
        if flags & KEYSPACE != 0 {
            let mut chan = Vec::with_capacity(16 + key.len());
            chan.extend_from_slice(format!("__keyspace@{db}__:").as_bytes());
            chan.extend_from_slice(&key);
            publish(rt.srv, Kind::Channel, &Bytes::from(chan), &event);
        }
        if flags & KEYEVENT != 0 {
            let chan = format!(
                "__keyevent@{db}__:{}",
                std::str::from_utf8(&event).unwrap_or("")
            );
            publish(rt.srv, Kind::Channel, &Bytes::from(chan), &key);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_encoding() {
        let q = PushQueue::default();
        q.push_message(b"message", &[b"ch", b"hi"]);
        assert_eq!(q.take(), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        q.resp3.set(true);
        q.push_message(b"smessage", &[b"c", b""]);
        assert_eq!(q.take(), b">3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$0\r\n\r\n");
    }
}
