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

/// Every shard's store, set up before the executors start, with each
/// store's lend state. The stores live for the whole process.
#[derive(Clone)]
pub struct StoreRegistry {
    ptrs: Arc<[*mut ShardStore]>,
    /// Row i: only shard i's pointer (the view of its owner), so that a
    /// command run inline makes no allocation for its view.
    owners: Arc<[Box<[*mut ShardStore]>]>,
    lend: Arc<[AtomicU8]>,
}

// SAFETY: the pointers are dereferenced only through `View::get`, under
// the protocol of this module's documentation; the registry is immutable.
unsafe impl Send for StoreRegistry {}
unsafe impl Sync for StoreRegistry {}

impl StoreRegistry {
    /// Takes `stores` (shard i's at index i) for the life of the process.
    pub fn new(stores: Vec<ShardStore>) -> StoreRegistry {
        let ptrs: Arc<[*mut ShardStore]> = stores
            .into_iter()
            .map(|s| Box::into_raw(Box::new(s)))
            .collect();
        let owners = (0..ptrs.len())
            .map(|i| {
                (0..ptrs.len())
                    .map(|j| {
                        if i == j {
                            ptrs[i]
                        } else {
                            std::ptr::null_mut()
                        }
                    })
                    .collect()
            })
            .collect();
        let lend = ptrs.iter().map(|_| AtomicU8::new(OWNED)).collect();
        StoreRegistry { ptrs, owners, lend }
    }

    pub fn len(&self) -> usize {
        self.ptrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ptrs.is_empty()
    }

    /// Shard `i`'s own store, for its owner thread while its gate is free or
    /// its own (never while lent: no task runs then).
    pub fn owner(&self, i: usize) -> View<'_> {
        debug_assert_ne!(self.lend[i].load(Ordering::Relaxed), BORROWED);
        View {
            ptrs: Ptrs::Shared(&self.owners[i]),
        }
    }

    /// The stores of `shards`, for a coordinator that holds all their gates
    /// (`ShardRt::with_shards`, a replica's apply holding every shard).
    pub fn held(&self, shards: &[usize]) -> View<'static> {
        let mut v = vec![std::ptr::null_mut(); self.ptrs.len()];
        for &s in shards {
            v[s] = self.ptrs[s];
        }
        View {
            ptrs: Ptrs::Owned(v.into()),
        }
    }

    /// Every store, for startup (loading, before any shard thread runs).
    pub fn startup(&self) -> View<'_> {
        View {
            ptrs: Ptrs::Shared(&self.ptrs),
        }
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
        Some(Borrowed {
            reg: self,
            shard: i,
        })
    }
}

/// Shard `shard`'s store, borrowed by this thread until dropped.
pub struct Borrowed<'a> {
    reg: &'a StoreRegistry,
    shard: usize,
}

impl Borrowed<'_> {
    /// A view holding only the borrowed store, for as long as this guard.
    pub fn view(&mut self) -> View<'_> {
        View {
            ptrs: Ptrs::Shared(&self.reg.owners[self.shard]),
        }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.reg.lend[self.shard].store(LENT, Ordering::Release);
    }
}

enum Ptrs<'a> {
    Shared(&'a [*mut ShardStore]),
    Owned(Box<[*mut ShardStore]>),
}

/// The stores this thread may use, one `&mut` at a time, while the view
/// lives: made only by `StoreRegistry::owner` (owner thread), `held`
/// (gates held), `startup` (no shard thread yet), `Borrowed::view` (a won
/// borrow) and `none`. Entries for other shards are null.
pub struct View<'a> {
    ptrs: Ptrs<'a>,
}

impl View<'_> {
    /// A view holding no store (commands that touch no data).
    pub fn none(nshards: usize) -> View<'static> {
        View {
            ptrs: Ptrs::Owned(vec![std::ptr::null_mut(); nshards].into()),
        }
    }

    fn ptrs(&self) -> &[*mut ShardStore] {
        match &self.ptrs {
            Ptrs::Shared(p) => p,
            Ptrs::Owned(p) => p,
        }
    }

    /// The number of shards (held or not).
    pub fn len(&self) -> usize {
        self.ptrs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ptrs().is_empty()
    }

    /// Whether this view holds shard `i`'s store.
    pub fn holds(&self, i: usize) -> bool {
        !self.ptrs()[i].is_null()
    }

    /// Shard `i`'s store, if this view holds it.
    pub fn get(&mut self, i: usize) -> Option<&mut ShardStore> {
        let p = self.ptrs()[i];
        // SAFETY: a non-null entry is a store (never freed) that this thread
        // may use exclusively while the view lives, by how the view was
        // made: its owner thread runs only while the store is not lent (a
        // lent store comes back in `reclaim` before any task runs), and
        // never while a coordinator holds its gate; a holder got the gate
        // from the owner through the mesh channel (which orders the owner's
        // writes before its reads and its writes before the owner's next
        // reads, on Release); a borrower won LENT -> BORROWED (Acquire) and
        // gives it back with a Release store; at startup no other thread
        // exists. `&mut self` keeps the reference unique within this view,
        // and the runtime never makes two views of one store at a time on
        // one thread (a coordinator's closure runs no jobs of its own shard).
        (!p.is_null()).then(|| unsafe { &mut *p })
    }

    /// Shard `i`'s store; panics if this view does not hold it (a routing bug).
    pub fn store(&mut self, i: usize) -> &mut ShardStore {
        match self.get(i) {
            Some(s) => s,
            None => panic!("shard {i} accessed without being held"),
        }
    }

    /// The same stores, for a shorter use (a nested command's context).
    pub fn reborrow(&mut self) -> View<'_> {
        View {
            ptrs: Ptrs::Shared(self.ptrs()),
        }
    }

    /// Every store held, in shard order.
    pub fn all_mut(&mut self) -> Vec<&mut ShardStore> {
        self.ptrs()
            .iter()
            .filter(|p| !p.is_null())
            // SAFETY: as `get`; distinct shards' stores, and `&mut self`
            // stays borrowed for as long as the references live.
            .map(|&p| unsafe { &mut *p })
            .collect()
    }

    /// Every store held, read-only, in shard order.
    pub fn all(&self) -> Vec<&ShardStore> {
        self.ptrs()
            .iter()
            .filter(|p| !p.is_null())
            // SAFETY: as `get`; `&self` excludes a `&mut` from this view
            // while these live.
            .map(|&p| unsafe { &*p })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lend_borrow_reclaim() {
        let reg = StoreRegistry::new(vec![ShardStore::new(0, 1)]);
        assert!(reg.try_borrow(0).is_none(), "owned stores are not lent");
        reg.lend(0);
        let mut b = reg.try_borrow(0).expect("lent");
        assert!(reg.try_borrow(0).is_none(), "one borrower at a time");
        b.view().store(0).dirty += 1;
        drop(b);
        reg.reclaim(0);
        assert!(reg.try_borrow(0).is_none(), "reclaimed");
        reg.reclaim(0); // not lent: returns at once
        assert_eq!(reg.owner(0).store(0).dirty, 1, "the borrower's write");
    }
}
