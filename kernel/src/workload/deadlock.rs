//! `workload=deadlock`: the demo, plus every 2 s for three rounds (so a console that
//! connects late still sees one, and the last round is whole well before the e2e's
//! 11 s recording ends) three kinds of tasks that can never finish:
//!
//! - `deadlock-a` and `deadlock-b`, each awaiting the other's join handle: a real
//!   two-task deadlock;
//! - `chan-deadlock-a` and `chan-deadlock-b`, which exchange one message over two
//!   channels and then each wait for the other to speak first: a deadlock over
//!   channels, each receiving on the channel only the other sends on;
//! - `lock-deadlock-a` and `lock-deadlock-b`, which take two mutexes in opposite
//!   orders: the classic lock-order deadlock;
//! - `lost-waker`, which returns `Pending` after dropping its waker, so nothing can
//!   wake it;
//! - `stuck-joiner`, awaiting `lost-waker`'s join handle: a wait nothing alive can
//!   signal.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use alloc::sync::Arc;
use lucid_executor::JoinHandle;

use lucid_executor::sync::{Mutex, mpsc, oneshot};

use crate::sched;

/// Rounds of doomed tasks.
const ROUNDS: u32 = 3;
/// Time before the first round and between rounds.
const PERIOD: Duration = Duration::from_secs(2);

/// Runs the rounds.
pub async fn doomed_rounds() {
    for _ in 0..ROUNDS {
        sched::sleep(PERIOD).await;
        deadlock_pair();
        channel_pair();
        lock_pair();
        let lost = sched::runtime().builder().name("lost-waker").spawn(LoseWaker);
        sched::runtime().builder().name("stuck-joiner").spawn(async move {
            let _ = lost.await;
        });
    }
}

/// Two tasks, each handed the other's join handle, each awaiting it.
fn deadlock_pair() {
    let rt = sched::runtime();
    let (give_a, take_a) = oneshot::channel::<JoinHandle<()>>();
    let (give_b, take_b) = oneshot::channel::<JoinHandle<()>>();
    let a = rt.builder().name("deadlock-a").spawn(async move {
        if let Ok(b) = take_a.await {
            let _ = b.await;
        }
    });
    let b = rt.builder().name("deadlock-b").spawn(async move {
        if let Ok(a) = take_b.await {
            let _ = a.await;
        }
    });
    // Neither send can fail: both receivers are alive in their tasks.
    let _ = give_a.send(b);
    let _ = give_b.send(a);
}

/// Two tasks that each send the other one message, receive one, then wait for a
/// second that only the other could send.
fn channel_pair() {
    let rt = sched::runtime();
    let (to_a, mut at_a) = mpsc::named_channel::<u32>("to-a", 1);
    let (to_b, mut at_b) = mpsc::named_channel::<u32>("to-b", 1);
    rt.builder().name("chan-deadlock-a").spawn(async move {
        let _ = to_b.send(1).await;
        let _ = at_a.recv().await;
        let _ = at_a.recv().await;
        // Held (and used) all along: only this task could send to `b`.
        drop(to_b);
    });
    rt.builder().name("chan-deadlock-b").spawn(async move {
        let _ = to_a.send(1).await;
        let _ = at_b.recv().await;
        let _ = at_b.recv().await;
        drop(to_a);
    });
}

/// Two tasks taking two mutexes in opposite orders, each holding its first while
/// it waits for the second.
fn lock_pair() {
    let rt = sched::runtime();
    let first = Arc::new(Mutex::new(0u32));
    let second = Arc::new(Mutex::new(0u32));
    let (a_first, a_second) = (first.clone(), second.clone());
    rt.builder().name("lock-deadlock-a").spawn(async move {
        let mut held = a_first.lock().await;
        // Long enough for the other task to take its first mutex.
        sched::sleep(Duration::from_millis(20)).await;
        *a_second.lock().await += 1;
        *held += 1;
    });
    rt.builder().name("lock-deadlock-b").spawn(async move {
        let mut held = second.lock().await;
        sched::sleep(Duration::from_millis(20)).await;
        *first.lock().await += 1;
        *held += 1;
    });
}

/// Takes a waker, drops it, and returns `Pending`: a deliberate lost waker (nothing
/// is left that could wake the task).
struct LoseWaker;

impl Future for LoseWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        drop(cx.waker().clone());
        Poll::Pending
    }
}
