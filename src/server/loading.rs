//! Loading the RDB file at startup while serving clients, as Redis does:
//! the listeners are bound before the load, clients are accepted once the
//! loader has read `loading-process-events-interval-bytes` (Redis serves
//! events only that often, so a small file loads before anyone is served),
//! and until the load ends commands without the `loading` flag get
//! `-LOADING` (pipeline checks).
//!
//! The main thread parses the file; each key goes, in batches, to the
//! shard that owns it, whose `apply_feed` task inserts the batch while
//! holding its own gate, so the store is only ever touched by its owner
//! (or a holder) and holders such as INFO get their turn between batches.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use super::shard::ShardRt;
use crate::storage::db::{Key, Record};

/// Keys sent to a shard at once.
pub const BATCH: usize = 512;
/// Batches in flight per shard: the parser never runs far ahead.
const IN_FLIGHT: usize = 8;

/// (db, key, record) for one shard.
pub type Batch = Vec<(usize, Key, Record)>;

#[derive(Default)]
struct FeedState {
    batches: VecDeque<Batch>,
    /// The shard's feed task, parked on an empty queue.
    waker: Option<Waker>,
    closed: bool,
}

/// One shard's feed: the loader pushes, the shard's task pops; the task is
/// woken by the push (its executor's eventfd), never by a timer.
#[derive(Default)]
struct Feed {
    state: Mutex<FeedState>,
    /// Wakes the loader when the queue has room again.
    room: Condvar,
}

impl Feed {
    fn update(&self, f: impl FnOnce(&mut FeedState)) {
        let waker = {
            let mut st = self.state.lock().unwrap();
            f(&mut st);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The loader's end of a shard's feed; dropping it ends the feed.
pub struct FeedTx(Arc<Feed>);

impl FeedTx {
    /// Queues a batch, waiting while the shard is `IN_FLIGHT` behind.
    pub fn send(&self, b: Batch) {
        let feed = &self.0;
        let mut st = feed.state.lock().unwrap();
        while st.batches.len() >= IN_FLIGHT && !st.closed {
            st = feed.room.wait(st).unwrap();
        }
        drop(st);
        feed.update(|st| st.batches.push_back(b));
    }
}

impl Drop for FeedTx {
    fn drop(&mut self) {
        self.0.update(|st| st.closed = true);
    }
}

/// The accept loops wait for this.
static DOORS_OPEN: AtomicBool = AtomicBool::new(false);
/// Set once the startup load and what follows it (replica setup) is done.
static BOOTED: AtomicBool = AtomicBool::new(false);

type FeedRx = (Arc<Feed>, Sender<()>);
static FEEDS: Mutex<Vec<Option<FeedRx>>> = Mutex::new(Vec::new());

pub fn open_doors() {
    DOORS_OPEN.store(true, Ordering::Release);
}

pub fn set_booted() {
    BOOTED.store(true, Ordering::Release);
}

async fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::Acquire) {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Until clients may be accepted.
pub async fn doors() {
    wait_for(&DOORS_OPEN).await
}

/// Until the startup load is over.
pub async fn booted() {
    wait_for(&BOOTED).await
}

/// The loader's side: one bounded sender per shard, and the receiver of
/// each shard's "all applied" once the senders are dropped.
pub fn make_feeds(nshards: usize) -> (Vec<FeedTx>, Receiver<()>) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut feeds = FEEDS.lock().unwrap();
    let mut senders = Vec::new();
    feeds.clear();
    for _ in 0..nshards {
        let feed = Arc::new(Feed::default());
        senders.push(FeedTx(feed.clone()));
        feeds.push(Some((feed, done_tx.clone())));
    }
    (senders, done_rx)
}

/// On shard `i`'s thread: the task applying its feed, if a load is running.
pub fn spawn_feed(rt: &Rc<ShardRt>) {
    let feed = FEEDS.lock().unwrap().get_mut(rt.id).and_then(Option::take);
    if let Some((feed, done)) = feed {
        glommio::spawn_local(apply_feed(rt.clone(), feed, done)).detach();
    }
}

/// The next batch, or None once the loader is done and the queue empty.
async fn next_batch(feed: &Feed) -> Option<Batch> {
    std::future::poll_fn(|cx| {
        let mut st = feed.state.lock().unwrap();
        if let Some(b) = st.batches.pop_front() {
            feed.room.notify_one();
            return Poll::Ready(Some(b));
        }
        if st.closed {
            return Poll::Ready(None);
        }
        // Registered under the lock the loader pushes under: no lost wake.
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

async fn apply_feed(rt: Rc<ShardRt>, feed: Arc<Feed>, done: Sender<()>) {
    while let Some(batch) = next_batch(&feed).await {
        rt.gate.acquire().await;
        // Owner thread holding its own gate: no command and no holder
        // touches the store meanwhile.
        let mut own = rt.own();
        let store = own.store(rt.id);
        for (db, key, rec) in batch {
            store.dbs[db].insert_entry(&key, rec);
        }
        rt.gate.release();
        glommio::yield_if_needed().await;
    }
    let _ = done.send(());
}
