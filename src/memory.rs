//! Allocation accounting: keel's `used_memory` (what maxmemory compares
//! with) is the bytes currently allocated through the global allocator, as
//! Redis's zmalloc counts them, not what mimalloc keeps committed (freed
//! pages stay committed, so eviction would never see memory come back).
//!
//! Each thread adds to its own cache-line-sized slot with a plain load and
//! store (one writer per slot: no locked instruction, no line shared between
//! shard threads); a reader sums the slots. A thread that frees what another
//! allocated makes its own slot negative: the sum stays exact.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use mimalloc::MiMalloc;

const SLOTS: usize = 256;

#[repr(align(64))]
struct Slot(AtomicI64);

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot(AtomicI64::new(0));
static COUNTS: [Slot; SLOTS] = [EMPTY; SLOTS];
/// Threads past SLOTS share the last slot with atomic adds.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without Drop: usable inside the allocator.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn add(delta: i64) {
    let i = MY_SLOT
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1);
                s.set(i);
            }
            i
        })
        .unwrap_or(SLOTS - 1);
    let c = &COUNTS[i].0;
    if i == SLOTS - 1 {
        c.fetch_add(delta, Ordering::Relaxed);
    } else {
        c.store(c.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    }
}

/// Bytes allocated and not yet freed, process-wide (0 when the counting
/// allocator is not the global one, e.g. in unit tests).
pub fn used_memory() -> u64 {
    // Only the slots handed out so far (and the shared last one): maxmemory
    // reads this before every command, so not all 256 cache lines.
    let used = NEXT_SLOT.load(Ordering::Relaxed).min(SLOTS - 1);
    let n: i64 = COUNTS[..used]
        .iter()
        .chain(std::iter::once(&COUNTS[SLOTS - 1]))
        .map(|s| s.0.load(Ordering::Relaxed))
        .sum();
    n.max(0) as u64
}

/// mimalloc, counting what passes through it.
pub struct CountingAlloc;

// SAFETY: every call forwards to mimalloc with the same arguments; the
// counting touches only atomics and a const thread-local (no allocation).
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Returns this thread's freed pages to the OS. `force` = now (MEMORY
/// PURGE); otherwise only pages past mimalloc's purge delay, which the
/// shard cron does every second, as jemalloc's background thread does for
/// Redis (an idle shard never calls into the allocator, so without it a
/// freed 30 MB table stayed in RSS).
pub fn collect(force: bool) {
    // SAFETY: mi_collect takes no pointers; it only walks this thread's
    // mimalloc heap.
    unsafe { mi_collect(force) };
}
