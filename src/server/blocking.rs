//! Blocked clients (BLPOP, BZPOPMIN, BLMOVE...).
//!
//! A blocking command that finds nothing to serve sets `ctx.block`. The shard
//! that ran it registers a `BlockedEntry` under each awaited key, in the same
//! synchronous step (so no push can slip in between). A command that adds
//! data calls `ctx.signal_ready(key)`; after it, the owner shard serves the
//! key's entries in FIFO order by re-running each waiter's command right
//! there, and sends the reply to the waiter's connection. A waiter whose keys
//! span shards is registered on each and, when signalled, is told to retry
//! its command through the normal routing.
//!
//! `Waiter::claimed` decides who finishes a waiter exactly once: the shard
//! serving it, or its connection on timeout or disconnect.

use std::sync::Arc;

use bytes::Bytes;

use super::shard::Job;
use crate::storage::{ShardStore, slot::key_shard};

pub use crate::storage::blocked::{BlockedEntry, Waiter};

/// Registers `waiter` under every key of `keys` that lives on `store`'s shard.
pub fn register(
    store: &mut ShardStore,
    nshards: usize,
    db: usize,
    keys: &[Bytes],
    waiter: &Arc<Waiter>,
    job: Option<&Job>,
) {
    for k in keys {
        if key_shard(k, nshards) != store.id {
            continue;
        }
        store
            .blocked
            .entry((db, k.as_ref().into()))
            .or_default()
            .push_back(BlockedEntry {
                waiter: waiter.clone(),
                job: job.map(|j| Box::new(j.clone()) as Box<dyn std::any::Any + Send>),
            });
    }
}

/// Drops entries whose waiter is finished (timed out, disconnected, served
/// through another key). Called from the shard cron.
pub fn sweep(store: &mut ShardStore) {
    store.blocked.retain(|_, q| {
        q.retain(|e| !e.waiter.is_claimed());
        !q.is_empty()
    });
}
