//! The live-task registry and the per-task totals a late trace consumer is sent.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::vec::Vec;

use super::{Gate, run_until_idle, single};
use crate::hooks::{Hooks, SpawnInfo};
use crate::{LiveState, LiveTask, PollResult, Runtime, TaskId, TaskStats, ThreadPlatform, yield_now};

/// Hooks with a clock that advances by one on every event, so times are exact.
#[derive(Default)]
struct Clock(AtomicU64);

impl Clock {
    fn tick(&self) -> u64 {
        self.0.fetch_add(1, SeqCst) + 1
    }
}

impl Hooks for Clock {
    fn on_spawn(&self, info: &SpawnInfo<'_>) {
        info.stats.spawned(self.tick());
    }
    fn on_poll_start(&self, _cpu: usize, _task: TaskId, stats: &TaskStats) {
        stats.poll_started(self.tick());
    }
    fn on_poll_end(&self, _cpu: usize, _task: TaskId, _result: PollResult, stats: &TaskStats) {
        stats.poll_ended(self.tick());
    }
    fn on_wake(&self, _task: TaskId, _by_ref: bool, _self_wake: bool, _waker: Option<TaskId>, stats: &TaskStats) {
        stats.woken(self.tick());
    }
}

fn traced() -> (&'static Runtime, &'static Clock) {
    let hooks: &'static Clock = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    (Runtime::new(1, ThreadPlatform::new(1), Some(hooks)), hooks)
}

fn find(tasks: &[LiveTask], name: &str) -> LiveTask {
    *tasks
        .iter()
        .find(|t| t.name == Some(name))
        .unwrap_or_else(|| panic!("no live task named {name} in {tasks:?}"))
}

#[test]
fn a_task_is_listed_from_spawn_until_its_memory_is_freed() {
    let (rt, _) = traced();
    let gate = Gate::default();
    let g = gate.clone();
    let handle = rt.builder().name("waiter").spawn(async move { g.wait().await });
    let listed = rt.live_tasks();
    assert_eq!(listed.len(), 1);
    let t = listed[0];
    assert_eq!(
        (t.id, t.state, t.counters.polls),
        (handle.id(), LiveState::Scheduled, 0)
    );
    assert_eq!(t.location.file(), file!(), "the spawn location is the caller's");

    run_until_idle(rt, 0);
    let t = rt.live_tasks()[0];
    assert_eq!((t.state, t.counters.polls, t.wakers), (LiveState::Idle, 1, 1));

    gate.fire();
    let t = rt.live_tasks()[0];
    assert_eq!(
        (t.state, t.counters.wakes, t.counters.self_wakes),
        (LiveState::Scheduled, 1, 0)
    );

    run_until_idle(rt, 0);
    assert_eq!(
        rt.live_tasks()[0].state,
        LiveState::Completed,
        "the JoinHandle keeps it"
    );
    assert_eq!(rt.live_task_count(), 1);
    drop(handle);
    assert!(rt.live_tasks().is_empty(), "freed tasks leave the registry");
    assert_eq!(rt.live_task_count(), 0);
}

#[test]
fn the_parent_is_the_task_that_spawned_it() {
    let (rt, _) = traced();
    let gate = Gate::default();
    let g = gate.clone();
    let parent = rt
        .builder()
        .name("parent")
        .spawn(async move { rt.builder().name("child").spawn(async move { g.wait().await }).id() });
    run_until_idle(rt, 0);
    let tasks = rt.live_tasks();
    let child = find(&tasks, "child");
    assert_eq!(child.parent, Some(parent.id()));
    assert_eq!(find(&tasks, "parent").parent, None, "spawned from the test thread");
    gate.fire();
    run_until_idle(rt, 0);
}

#[test]
fn totals_count_polls_wakes_and_time_with_the_hooks_clock() {
    let (rt, _) = traced();
    let handle = rt.builder().name("yielder").spawn(async {
        for _ in 0..3 {
            yield_now().await;
        }
    });
    run_until_idle(rt, 0);
    let t = rt.live_tasks()[0];
    let c = t.counters;
    assert_eq!(c.polls, 4, "three yields and the final poll");
    assert_eq!((c.wakes, c.self_wakes), (3, 3), "every yield wakes itself");
    assert_eq!(c.spawned_at, 1);
    // Each yielding poll: start, wake, end (3 ticks apart: busy 2); the last: start,
    // end (busy 1). Scheduled time: spawn → first start is 1 tick; each wake → the
    // next start is 2 ticks (the wake, the end, then the start).
    assert_eq!(c.busy, 3 * 2 + 1);
    assert_eq!(c.scheduled, 1 + 3 * 2);
    drop(handle);
}

#[test]
fn no_hooks_no_registry() {
    let rt = single();
    let _handle = rt.spawn(async {});
    assert!(rt.live_tasks().is_empty());
    assert_eq!(rt.live_task_count(), 0);
}

#[test]
fn many_tasks_across_shards_are_all_listed_in_id_order() {
    let hooks: &'static Clock = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(4, ThreadPlatform::new(4), Some(hooks));
    let handles: Vec<_> = (0..100).map(|i| rt.builder().on_cpu(i % 4).spawn(async {})).collect();
    let ids: Vec<TaskId> = rt.live_tasks().iter().map(|t| t.id).collect();
    let expected: Vec<TaskId> = handles.iter().map(|h| h.id()).collect();
    assert_eq!(ids, expected);
    drop(handles);
    for cpu in 0..4 {
        run_until_idle(rt, cpu);
    }
    assert_eq!(
        rt.live_task_count(),
        0,
        "completed tasks whose handles are gone are freed"
    );
}
