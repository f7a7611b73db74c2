//! Every shard's store, and the rule for reaching one from a thread that
//! does not own it: the lend/borrow protocol (issue 23's borrowed-store
//! path) lives here, in one place.
//!
//! A store is reached by
//! - its owner thread, while its lend state is `OWNED` (always, except
//!   while the owner's executor idles with the store lent);
//! - a coordinator holding the owner's gate (docs/architecture.md, "Holds");
//! - a borrower: another shard's thread that won `LENT -> BORROWED`, for one
//!   single-shard command, never waiting (`try_borrow`).
//!
//! The owner lends only from its executor's idle hook (no task of its runs
//! until it reclaims) and only with its gate free, so a lent store has no
//! holder; a hold starts with owner code (`Msg::Hold`), which runs only
//! after the owner reclaimed the store. The transitions are Acquire/Release,
//! so each side's writes happen before the other side's next reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::storage::ShardStore;

const OWNED: u8 = 0;
const LENT: u8 = 1;
const BORROWED: u8 = 2;

/// Raw pointers to every shard's store, set up before the executors start,
/// with each store's lend state.
#[derive(Clone)]
pub struct StoreRegistry {
    ptrs: Vec<*mut ShardStore>,
    lend: Arc<[AtomicU8]>,
}

// SAFETY: the pointers are dereferenced only under the protocol of this
// module's documentation; the registry itself is immutable.
unsafe impl Send for StoreRegistry {}
unsafe impl Sync for StoreRegistry {}

impl StoreRegistry {
    pub fn new(ptrs: Vec<*mut ShardStore>) -> StoreRegistry {
        let lend = ptrs.iter().map(|_| AtomicU8::new(OWNED)).collect();
        StoreRegistry { ptrs, lend }
    }

    pub fn len(&self) -> usize {
        self.ptrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ptrs.is_empty()
    }

    /// Shard `i`'s store pointer, for its owner or a holder of its gate.
    pub fn ptr(&self, i: usize) -> *mut ShardStore {
        self.ptrs[i]
    }

    /// Every store's pointer (startup loading, before the executors run).
    pub fn all(&self) -> &[*mut ShardStore] {
        &self.ptrs
    }

    /// Owner thread, from its idle hook, gate free: other shards may
    /// borrow the store until `reclaim`.
    pub(crate) fn lend(&self, i: usize) {
        self.lend[i].store(LENT, Ordering::Release);
    }

    /// Owner thread, before any of its tasks runs again: takes the store
    /// back, waiting out a borrower's command (a few µs) if one is running.
    pub(crate) fn reclaim(&self, i: usize) {
        let st = &self.lend[i];
        let mut tries = 0u32;
        while st
            .compare_exchange_weak(LENT, OWNED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if st.load(Ordering::Relaxed) == OWNED {
                return;
            }
            tries += 1;
            if tries < 64 {
                std::hint::spin_loop();
            } else {
                // The borrower's thread may have been preempted.
                std::thread::yield_now();
            }
        }
    }

    /// Borrows shard `i`'s store if its owner lent it and nobody else
    /// borrowed it: never waits.
    pub fn try_borrow(&self, i: usize) -> Option<Borrowed<'_>> {
        self.lend[i]
            .compare_exchange(LENT, BORROWED, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let mut view = vec![std::ptr::null_mut(); self.ptrs.len()];
        view[i] = self.ptrs[i];
        Some(Borrowed {
            reg: self,
            shard: i,
            view,
        })
    }
}

/// Shard `shard`'s store, borrowed by this thread until dropped.
pub struct Borrowed<'a> {
    reg: &'a StoreRegistry,
    shard: usize,
    view: Vec<*mut ShardStore>,
}

impl Borrowed<'_> {
    /// A `Ctx` view holding only the borrowed store (`Ctx::new`'s contract:
    /// exclusive for as long as this guard lives).
    pub fn view(&self) -> &[*mut ShardStore] {
        &self.view
    }

    pub fn store(&mut self) -> &mut ShardStore {
        // SAFETY: this thread won LENT -> BORROWED (try_borrow) and holds it
        // until drop: neither the owner (it reclaims only from LENT) nor a
        // holder (a lent store has none) nor another borrower touches it.
        unsafe { &mut *self.view[self.shard] }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.reg.lend[self.shard].store(LENT, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lend_borrow_reclaim() {
        let s = Box::into_raw(Box::new(ShardStore::new(0, 1)));
        let reg = StoreRegistry::new(vec![s]);
        assert!(reg.try_borrow(0).is_none(), "owned stores are not lent");
        reg.lend(0);
        let b = reg.try_borrow(0).expect("lent");
        assert!(reg.try_borrow(0).is_none(), "one borrower at a time");
        drop(b);
        reg.reclaim(0);
        assert!(reg.try_borrow(0).is_none(), "reclaimed");
        reg.reclaim(0); // not lent: returns at once
        // SAFETY: made by Box::into_raw above, no longer referenced.
        drop(unsafe { Box::from_raw(s) });
    }
}
