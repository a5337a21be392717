//! Host tests of the executor with std threads and a mock clock.

mod executor;
mod registry;
mod resource;
mod stealing;
mod sync;
mod time;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::{JoinHandle, Runtime, ThreadPlatform};

/// A one-CPU runtime driven by the test thread, which becomes CPU 0.
pub(crate) fn single() -> &'static Runtime {
    ThreadPlatform::enter(Some(0));
    Runtime::new(1, ThreadPlatform::new(1), None)
}

/// Ticks `cpu` until a tick polls nothing.
/// A ponger that answers each value with value + 1 over bounded channels, and a pinger
/// that plays `rounds` rounds with it; the pinger's handle yields the last answer.
pub(crate) fn ping_pong_pair(rt: &'static Runtime, rounds: u32) -> JoinHandle<u32> {
    let (tx_a, mut rx_a) = crate::sync::mpsc::channel::<u32>(1);
    let (tx_b, mut rx_b) = crate::sync::mpsc::channel::<u32>(1);
    rt.spawn(async move {
        while let Some(v) = rx_a.recv().await {
            if tx_b.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    rt.spawn(async move {
        let mut v = 0;
        for _ in 0..rounds {
            tx_a.send(v).await.unwrap();
            v = rx_b.recv().await.unwrap();
        }
        v
    })
}

pub(crate) fn run_until_idle(rt: &Runtime, cpu: usize) -> usize {
    let mut polled = 0;
    loop {
        let tick = rt.tick(cpu);
        polled += tick.polled;
        if tick.polled == 0 && tick.stolen == 0 {
            return polled;
        }
    }
}

/// Polls a future once from the test thread with a no-op waker.
pub(crate) fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

/// Takes a finished task's result.
pub(crate) fn output<T, M>(handle: &mut JoinHandle<T, M>) -> Result<T, crate::JoinError<T>> {
    match poll_once(handle) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("task {} has not finished", handle.id()),
    }
}

/// A future that stays pending until `fire` is called, keeping the latest
/// waker; counts its polls and records its drop.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    pub(crate) inner: Arc<GateInner>,
}

#[derive(Default)]
pub(crate) struct GateInner {
    pub(crate) open: std::sync::atomic::AtomicBool,
    pub(crate) waker: Mutex<Option<Waker>>,
    pub(crate) polls: AtomicUsize,
    pub(crate) dropped: AtomicUsize,
}

impl Gate {
    pub(crate) fn wait(&self) -> GateWait {
        GateWait(self.clone())
    }

    pub(crate) fn fire(&self) {
        self.inner.open.store(true, Ordering::SeqCst);
        if let Some(waker) = self.inner.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    /// Drops the stored waker without waking it: the waiting task is lost.
    pub(crate) fn forget(&self) {
        drop(self.inner.waker.lock().unwrap().take());
    }

    pub(crate) fn polls(&self) -> usize {
        self.inner.polls.load(Ordering::SeqCst)
    }

    pub(crate) fn dropped(&self) -> bool {
        self.inner.dropped.load(Ordering::SeqCst) > 0
    }
}

pub(crate) struct GateWait(Gate);

impl Future for GateWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.0.inner;
        inner.polls.fetch_add(1, Ordering::SeqCst);
        if inner.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *inner.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for GateWait {
    fn drop(&mut self) {
        self.0.inner.dropped.fetch_add(1, Ordering::SeqCst);
    }
}
