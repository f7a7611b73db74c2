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

use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::Duration;

use super::shard::ShardRt;
use crate::storage::db::{Key, Record};

/// Keys sent to a shard at once.
pub const BATCH: usize = 512;

/// (db, key, record) for one shard.
pub type Batch = Vec<(usize, Key, Record)>;

/// The accept loops wait for this.
static DOORS_OPEN: AtomicBool = AtomicBool::new(false);
/// Set once the startup load and what follows it (replica setup) is done.
static BOOTED: AtomicBool = AtomicBool::new(false);

type Feed = (Receiver<Batch>, Sender<()>);
static FEEDS: Mutex<Vec<Option<Feed>>> = Mutex::new(Vec::new());

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
pub fn make_feeds(nshards: usize) -> (Vec<SyncSender<Batch>>, Receiver<()>) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut feeds = FEEDS.lock().unwrap();
    let mut senders = Vec::new();
    feeds.clear();
    for _ in 0..nshards {
        // A few batches in flight: the parser never runs far ahead.
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        senders.push(tx);
        feeds.push(Some((rx, done_tx.clone())));
    }
    (senders, done_rx)
}

/// On shard `i`'s thread: the task applying its feed, if a load is running.
pub fn spawn_feed(rt: &Rc<ShardRt>) {
    let feed = FEEDS.lock().unwrap().get_mut(rt.id).and_then(Option::take);
    if let Some((rx, done)) = feed {
        glommio::spawn_local(apply_feed(rt.clone(), rx, done)).detach();
    }
}

async fn apply_feed(rt: Rc<ShardRt>, rx: Receiver<Batch>, done: Sender<()>) {
    loop {
        match rx.try_recv() {
            Ok(batch) => {
                rt.gate.acquire().await;
                // Owner thread holding its own gate: no command and no
                // holder touches the store meanwhile.
                let mut own = rt.own();
                let store = own.store(rt.id);
                for (db, key, rec) in batch {
                    store.dbs[db].insert_entry(&key, rec);
                }
                rt.gate.release();
                glommio::yield_if_needed().await;
            }
            Err(TryRecvError::Empty) => glommio::timer::sleep(Duration::from_millis(1)).await,
            Err(TryRecvError::Disconnected) => {
                let _ = done.send(());
                return;
            }
        }
    }
}
