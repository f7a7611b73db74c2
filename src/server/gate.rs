//! The shard gate: a FIFO, single-thread "hold" on a shard's data.
//!
//! A coordinator that needs several shards at once (multi-key commands whose
//! keys span shards, keyspace-wide commands) acquires each involved shard's gate
//! in ascending shard order, so two coordinators can never wait on each other.
//! While a gate is held, its owner thread runs no command on the shard's data;
//! the coordinator reads and writes that data directly. Only the owner thread
//! touches a gate: remote holders go through Hold/Release messages. Plain
//! single-shard commands check `is_free()` (a Cell read) and run inline.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Waiter {
    granted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

#[derive(Default)]
pub struct Gate {
    held: Cell<bool>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
}

impl Gate {
    /// Nobody holds the gate and nobody waits for it.
    pub fn is_free(&self) -> bool {
        !self.held.get() && self.queue.borrow().is_empty()
    }

    pub fn is_held(&self) -> bool {
        self.held.get()
    }

    /// Waits for the gate in FIFO order.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire {
            gate: self,
            waiter: None,
        }
    }

    /// Hands the gate to the next waiter, or frees it.
    pub fn release(&self) {
        debug_assert!(self.held.get());
        let next = self.queue.borrow_mut().pop_front();
        match next {
            Some(w) => {
                w.granted.set(true);
                if let Some(wk) = w.waker.borrow_mut().take() {
                    wk.wake();
                }
            }
            None => self.held.set(false),
        }
    }
}

pub struct Acquire<'a> {
    gate: &'a Gate,
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let gate = self.gate;
        match &self.waiter {
            None => {
                if gate.is_free() {
                    gate.held.set(true);
                    return Poll::Ready(());
                }
                let w = Rc::new(Waiter::default());
                *w.waker.borrow_mut() = Some(cx.waker().clone());
                gate.queue.borrow_mut().push_back(w.clone());
                self.waiter = Some(w);
                Poll::Pending
            }
            Some(w) => {
                if w.granted.get() {
                    self.waiter = None;
                    Poll::Ready(())
                } else {
                    *w.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Acquire<'_> {
    /// A waiter dropped before completion must not keep the gate forever.
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            if w.granted.get() {
                self.gate.release();
            } else {
                self.gate.queue.borrow_mut().retain(|x| !Rc::ptr_eq(x, &w));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn fifo_handoff_and_cancel() {
        let g = Gate::default();
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut a = Box::pin(g.acquire());
        assert!(a.as_mut().poll(&mut cx).is_ready());
        drop(a);
        assert!(g.is_held());
        let mut b = Box::pin(g.acquire());
        let mut c = Box::pin(g.acquire());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        assert!(c.as_mut().poll(&mut cx).is_pending());
        drop(b); // cancelled before its turn
        g.release();
        assert!(c.as_mut().poll(&mut cx).is_ready());
        g.release();
        assert!(g.is_free());
    }
}
