use std::time::Duration;

use super::{output, poll_once, run_until_idle, single};
use crate::{Elapsed, Instant};

#[test]
fn sleep_fires_at_its_deadline_on_the_mock_clock() {
    let rt = single();
    let timer = rt.timer();
    let mut h = rt.spawn(async move {
        timer.sleep(Duration::from_millis(10)).await;
        timer.now()
    });
    run_until_idle(rt, 0);
    assert_eq!(timer.next_deadline(), Some(Instant::from_nanos(10_000_000)));
    assert_eq!(timer.advance(Duration::from_millis(9)), 0);
    run_until_idle(rt, 0);
    assert!(poll_once(&mut h).is_pending());
    assert_eq!(timer.turn(Instant::from_nanos(10_000_000)), 1);
    run_until_idle(rt, 0);
    assert_eq!(output(&mut h).unwrap(), Instant::from_nanos(10_000_000));
    assert_eq!(timer.next_deadline(), None);
}

#[test]
fn sleeps_fire_in_deadline_order_and_next_deadline_tracks_them() {
    let rt = single();
    let timer = rt.timer();
    let order = std::sync::Arc::new(std::sync::Mutex::new(std::vec::Vec::new()));
    for ms in [30u64, 10, 20] {
        let order = order.clone();
        rt.spawn(async move {
            timer.sleep_until(Instant::from_nanos(ms * 1_000_000)).await;
            order.lock().unwrap().push(ms);
        });
    }
    run_until_idle(rt, 0);
    assert_eq!(timer.pending(), 3);
    assert_eq!(timer.next_deadline(), Some(Instant::from_nanos(10_000_000)));
    timer.turn(Instant::from_nanos(25_000_000));
    run_until_idle(rt, 0);
    assert_eq!(*order.lock().unwrap(), [10, 20]);
    assert_eq!(timer.next_deadline(), Some(Instant::from_nanos(30_000_000)));
    timer.turn(Instant::from_nanos(40_000_000));
    run_until_idle(rt, 0);
    assert_eq!(*order.lock().unwrap(), [10, 20, 30]);
}

#[test]
fn timeout_elapses_or_passes_the_output_through() {
    let rt = single();
    let timer = rt.timer();
    let mut slow = rt.spawn(async move {
        timer
            .timeout(Duration::from_millis(5), timer.sleep(Duration::from_secs(1)))
            .await
    });
    let mut fast = rt.spawn(async move { timer.timeout(Duration::from_secs(1), async { 7 }).await });
    run_until_idle(rt, 0);
    assert_eq!(output(&mut fast).unwrap(), Ok(7));
    timer.advance(Duration::from_millis(5));
    run_until_idle(rt, 0);
    assert_eq!(output(&mut slow).unwrap(), Err(Elapsed));
    assert_eq!(timer.pending(), 0, "the inner sleep was deregistered on drop");
}

#[test]
fn cancelled_sleeper_deregisters() {
    let rt = single();
    let timer = rt.timer();
    let h = rt.spawn(async move { timer.sleep(Duration::from_millis(1)).await });
    run_until_idle(rt, 0);
    assert_eq!(timer.pending(), 1);
    assert!(h.cancel());
    run_until_idle(rt, 0);
    assert_eq!(timer.pending(), 0);
    assert_eq!(timer.next_deadline(), None);
}

#[test]
fn elapsed_deadline_is_ready_without_registering() {
    let rt = single();
    let timer = rt.timer();
    timer.turn(Instant::from_nanos(100));
    let mut s = timer.sleep_until(Instant::from_nanos(50));
    assert!(poll_once(&mut s).is_ready());
    assert_eq!(timer.pending(), 0);
}
