use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

use super::{output, ping_pong_pair, poll_once, run_until_idle, single};
use crate::sync::mpsc::{self, TrySendError};
use crate::sync::{Closed, Mutex, Semaphore, WaitQueue, oneshot};
use crate::yield_now;

#[test]
fn oneshot_delivers_and_reports_a_dropped_sender() {
    let rt = single();
    let (tx, rx) = oneshot::channel();
    let mut got = rt.spawn(rx);
    run_until_idle(rt, 0);
    assert!(poll_once(&mut got).is_pending());
    tx.send(3).unwrap();
    run_until_idle(rt, 0);
    assert_eq!(output(&mut got).unwrap(), Ok(3));

    let (tx, rx) = oneshot::channel::<u8>();
    let mut got = rt.spawn(rx);
    run_until_idle(rt, 0);
    drop(tx);
    run_until_idle(rt, 0);
    assert_eq!(output(&mut got).unwrap(), Err(oneshot::RecvError));

    let (tx, rx) = oneshot::channel();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));
}

#[test]
fn mpsc_is_fifo_bounded_and_closes() {
    let rt = single();
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    // A blocked sender resumes once the receiver makes room.
    let tx2 = tx.clone();
    let mut blocked = rt.spawn(async move { tx2.send(3).await.is_ok() });
    run_until_idle(rt, 0);
    assert!(poll_once(&mut blocked).is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    run_until_idle(rt, 0);
    assert!(output(&mut blocked).unwrap());
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(false));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(true), "all senders gone");

    let (tx, rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let tx2 = tx.clone();
    let mut waiting = rt.spawn(async move { tx2.send(1).await.map_err(|e| e.0) });
    run_until_idle(rt, 0);
    drop(rx);
    run_until_idle(rt, 0);
    assert_eq!(
        output(&mut waiting).unwrap(),
        Err(1),
        "receiver drop fails waiting sends"
    );
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
}

#[test]
fn mpsc_many_producers_deliver_everything_in_per_sender_order() {
    let rt = single();
    let (tx, mut rx) = mpsc::channel(4);
    for p in 0..8u32 {
        let tx = tx.clone();
        rt.spawn(async move {
            for i in 0..100u32 {
                tx.send((p, i)).await.unwrap();
            }
        });
    }
    drop(tx);
    let mut consumer = rt.spawn(async move {
        let mut last = [None::<u32>; 8];
        let mut n = 0;
        while let Some((p, i)) = rx.recv().await {
            assert!(last[p as usize].is_none_or(|l| l + 1 == i));
            last[p as usize] = Some(i);
            n += 1;
        }
        n
    });
    run_until_idle(rt, 0);
    assert_eq!(output(&mut consumer).unwrap(), 800);
}

#[test]
fn ping_pong_pairs_complete() {
    let rt = single();
    let handles: Vec<_> = (0..100).map(|_| ping_pong_pair(rt, 50)).collect();
    run_until_idle(rt, 0);
    for mut h in handles {
        assert_eq!(output(&mut h).unwrap(), 50);
    }
}

#[test]
fn wait_queue_wakes_in_order_keeps_one_wakeup_and_closes() {
    let rt = single();
    let q: &'static WaitQueue = Box::leak(Box::default());
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut hs: Vec<_> = (0..3)
        .map(|i| {
            let order = order.clone();
            rt.spawn(async move {
                q.wait().await.unwrap();
                order.lock().unwrap().push(i);
            })
        })
        .collect();
    run_until_idle(rt, 0);
    q.wake();
    run_until_idle(rt, 0);
    assert_eq!(*order.lock().unwrap(), [0]);
    q.wake_all();
    run_until_idle(rt, 0);
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    for h in &mut hs {
        output(h).unwrap();
    }
    // A wake with nobody waiting is kept for the next waiter.
    q.wake();
    let mut h = rt.spawn(q.wait());
    run_until_idle(rt, 0);
    assert_eq!(output(&mut h).unwrap(), Ok(()));
    let mut h = rt.spawn(q.wait());
    run_until_idle(rt, 0);
    q.close();
    run_until_idle(rt, 0);
    assert_eq!(output(&mut h).unwrap(), Err(Closed));
}

#[test]
fn wait_queue_wake_to_a_dropped_waiter_is_passed_on() {
    let rt = single();
    let q: &'static WaitQueue = Box::leak(Box::default());
    let first = rt.spawn(async move { q.wait().await });
    let mut second = rt.spawn(async move { q.wait().await });
    run_until_idle(rt, 0);
    q.wake();
    // The woken task is cancelled before it runs: its wake-up moves on.
    assert!(first.cancel());
    run_until_idle(rt, 0);
    assert_eq!(output(&mut second).unwrap(), Ok(()));
}

#[test]
fn semaphore_is_fifo_and_returns_permits_of_dropped_waiters() {
    let rt = single();
    let sem: &'static Semaphore = Box::leak(Box::new(Semaphore::new(3)));
    let big = rt.spawn(async move { sem.acquire(3).await.map(|p| p.permits()) });
    let held = sem.try_acquire(1).unwrap();
    run_until_idle(rt, 0);
    assert!(!big.is_finished());
    // FIFO: a small request does not overtake the waiting big one.
    assert!(sem.try_acquire(1).is_err());
    let mut small = rt.spawn(async move { sem.acquire(1).await.map(|p| p.permits()) });
    run_until_idle(rt, 0);
    assert!(!small.is_finished());
    // The big waiter gives up: the small one behind it gets a permit.
    assert!(big.cancel());
    run_until_idle(rt, 0);
    assert_eq!(output(&mut small).unwrap(), Ok(1));
    drop(held);
    assert_eq!(sem.available_permits(), 3);
    sem.close();
    assert_eq!(sem.try_acquire(1).unwrap_err(), Some(Closed));
}

#[test]
fn mutex_serializes_tasks() {
    let rt = single();
    let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
    let inside = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let inside = inside.clone();
            rt.spawn(async move {
                for _ in 0..10 {
                    let mut g = m.lock().await;
                    assert_eq!(inside.fetch_add(1, SeqCst), 0, "two tasks in the mutex");
                    let v = *g;
                    yield_now().await;
                    *g = v + 1;
                    inside.fetch_sub(1, SeqCst);
                }
            })
        })
        .collect();
    run_until_idle(rt, 0);
    assert!(hs.iter().all(|h| h.is_finished()));
    assert_eq!(*m.try_lock().unwrap(), 100);
}

use std::boxed::Box;

#[test]
fn wait_queue_wake_all_to_a_dropped_waiter_leaves_no_wakeup() {
    let rt = single();
    let q: &'static WaitQueue = Box::leak(Box::default());
    let first = rt.spawn(async move { q.wait().await });
    run_until_idle(rt, 0);
    q.wake_all();
    assert!(first.cancel());
    run_until_idle(rt, 0);
    let later = rt.spawn(async move { q.wait().await });
    run_until_idle(rt, 0);
    assert!(!later.is_finished(), "a spurious wake-up was stored");
}
