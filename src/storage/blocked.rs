//! Clients blocked on keys, as a shard's store keeps them: in arrival order
//! under (db, key), so a write can tell that a key is awaited. What a waiter
//! runs when served belongs to the runtime (`server::blocking`); storage only
//! holds it and never looks inside.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Waiter {
    pub claimed: AtomicBool,
    /// Shard of the waiting connection, and the reply id it waits on.
    pub origin: usize,
    pub wake_id: u64,
}

impl Waiter {
    pub fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    pub fn unclaim(&self) {
        self.claimed.store(false, Ordering::Release);
    }
}

pub struct BlockedEntry {
    pub waiter: Arc<Waiter>,
    /// The runtime's command to re-run when its keys all live on this shard;
    /// None when they span shards (the connection retries it itself).
    pub job: Option<Box<dyn Any + Send>>,
}
