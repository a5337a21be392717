//! `workload=deadlock`: the demo, plus every 2 s for three rounds (so a console that
//! connects late still sees one, and the last round is whole well before the e2e's
//! 11 s recording ends) three kinds of tasks that can never finish:
//!
//! - `deadlock-a` and `deadlock-b`, each awaiting the other's join handle: a real
//!   two-task deadlock;
//! - `chan-deadlock-a` and `chan-deadlock-b`, which exchange one message over two
//!   channels and then each wait for the other to speak first: a deadlock over
//!   channels, each receiving on the channel only the other sends on;
//! - `lost-waker`, which returns `Pending` after dropping its waker, so nothing can
//!   wake it;
//! - `stuck-joiner`, awaiting `lost-waker`'s join handle: a wait nothing alive can
//!   signal.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use lucid_executor::JoinHandle;
use lucid_executor::sync::{mpsc, oneshot};

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
