//! State-model tests, fed only by protocol items.

use lucid_protocol::testdata::{Workload, generate};
use lucid_protocol::{Decoder, Event, Hello, Location, MessageKind, TaskKind, TaskSpawned, Waker, WasmState};

use super::*;

fn ev(cpu: u32, ts: u64, message: Message<'_>) -> Item<'_> {
    Item::Event {
        stream: StreamId::new(cpu, Ring::Task),
        seq: 0,
        event: Event { ts, message },
    }
}

/// Feeds `items` through the time-ordered merge, as every console path does: for
/// events delivered out of order across CPUs.
fn merged(s: &mut State, items: &[Item<'_>]) {
    let mut m = crate::merge::Merge::default();
    let mut apply = |i: &Item<'_>| s.apply(i);
    for i in items {
        m.push(i, &mut apply);
    }
    m.flush(&mut apply);
}

#[test]
fn loss_before_a_console_attached_is_told_apart_from_loss_while_attached() {
    let hello = || {
        Message::Hello(Hello {
            major: 1,
            minor: lucid_protocol::MINOR,
            build_id: "k",
            tsc_hz: 1_000_000_000,
            cpus: 2,
            boot_tsc: 0,
        })
    };
    let loss = |count| Message::Loss {
        cpu: 0,
        ring: Ring::Task,
        count,
    };
    let mut s = State::new();
    // Attached 25 s after boot: the kernel reports the 1000 events nobody read in
    // its attach burst (Hello, losses, Heartbeat).
    s.apply(&ev(0, 1, hello()));
    s.apply(&ev(0, 2, loss(1000)));
    s.apply(&ev(0, 3, Message::Heartbeat));
    assert_eq!((s.dropped_events, s.loss.unattached), (1000, 1000));
    assert_eq!(s.loss.attached(s.dropped_events), 0);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // Then the reader falls behind: loss while attached is a warning, once.
    s.apply(&ev(0, 4, loss(5)));
    s.apply(&ev(0, 5, loss(5)));
    assert_eq!(s.loss.attached(s.dropped_events), 10);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].kind, WarningKind::SequenceGap);
    assert!(s.warnings[0].message.contains("while this console was attached"));
    // Away and back: what was dropped in between is reported in the next burst.
    s.apply(&ev(0, 6, hello()));
    s.apply(&ev(0, 7, loss(490)));
    s.apply(&ev(0, 8, Message::Heartbeat));
    assert_eq!(s.loss.unattached, 1490);
    assert_eq!(s.loss.attached(s.dropped_events), 10);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    let summary = crate::stats::Summary::new(&crate::stats::Collected {
        state: s,
        decoder: Default::default(),
        damage: None,
    });
    assert_eq!((summary.dropped_unattached, summary.dropped_attached), (1490, 10));
}

#[test]
fn loss_of_a_pause_the_console_asked_for_is_not_loss_while_attached() {
    let control = |ts, message| Item::Event {
        stream: StreamId::new(0, Ring::Control),
        seq: 0,
        event: Event { ts, message },
    };
    let loss = |count| Message::Loss {
        cpu: 0,
        ring: Ring::Task,
        count,
    };
    let mut s = State::new();
    s.apply(&control(
        1,
        Message::Hello(Hello {
            major: 1,
            minor: lucid_protocol::MINOR,
            build_id: "k",
            tsc_hz: 1_000_000_000,
            cpus: 1,
            boot_tsc: 0,
        }),
    ));
    s.apply(&control(2, Message::Heartbeat));
    // The kernel's resume burst: the 700 events the pause dropped.
    s.apply(&control(10, Message::Resume));
    s.apply(&control(11, loss(700)));
    s.apply(&control(12, Message::Heartbeat));
    assert_eq!((s.loss.unattached, s.loss.attached(s.dropped_events)), (700, 0));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // The console's own Resume rides the host ring and starts no burst: loss after
    // the kernel's burst is the reader's, a warning.
    let host = |ts, message| Item::Event {
        stream: StreamId::new(0, Ring::Host),
        seq: 0,
        event: Event { ts, message },
    };
    s.apply(&host(19, Message::Resume));
    s.apply(&control(20, loss(3)));
    assert_eq!(s.loss.attached(s.dropped_events), 3);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
}

#[test]
fn polls_accumulate_busy_time_per_task_and_cpu() {
    let mut s = State::new();
    s.apply(&ev(
        1,
        5,
        Message::TaskSpawned(TaskSpawned {
            task: TaskId(9),
            name: "t",
            kind: TaskKind::Kernel,
            location: lucid_protocol::Location {
                file: "f.rs",
                line: 1,
                column: 2,
            },
            parent: None,
        }),
    ));
    s.apply(&ev(1, 10, Message::PollStart { task: TaskId(9) }));
    s.apply(&ev(
        1,
        25,
        Message::PollEnd {
            task: TaskId(9),
            result: PollResult::Pending,
        },
    ));
    s.apply(&ev(1, 30, Message::PollStart { task: TaskId(9) }));
    s.apply(&ev(
        1,
        31,
        Message::PollEnd {
            task: TaskId(9),
            result: PollResult::Ready,
        },
    ));
    s.apply(&ev(
        1,
        31,
        Message::TaskCompleted {
            task: TaskId(9),
            outcome: Outcome::Ok,
        },
    ));
    let t = &s.tasks[&TaskId(9)];
    assert_eq!((t.polls, t.busy_ticks, t.poll_hist.max()), (2, Ticks(16), 15));
    assert_eq!(t.status, TaskStatus::Completed(Outcome::Ok));
    assert_eq!(t.location, "f.rs:1:2");
    assert_eq!(s.cpus[&1].busy_ticks, Ticks(16));
    assert_eq!((s.tasks_spawned, s.tasks_completed), (1, 1));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn unmatched_poll_end_and_backwards_time_are_warned_about() {
    let mut s = State::new();
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(1) }));
    s.apply(&ev(
        0,
        5,
        Message::PollEnd {
            task: TaskId(2),
            result: PollResult::Pending,
        },
    ));
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert_eq!(s.tasks[&TaskId(2)].busy_ticks, Ticks(0));
}

#[test]
fn losses_gaps_and_errors_are_counted() {
    let mut s = State::new();
    s.apply(&ev(
        0,
        1,
        Message::Loss {
            cpu: 3,
            ring: Ring::Interrupt,
            count: 7,
        },
    ));
    let stream = StreamId::new(3, Ring::Task);
    s.apply(&Item::Gap {
        stream,
        expected: 4,
        received: 6,
    });
    s.apply(&Item::Error {
        offset: 99,
        error: FrameError::Crc { expected: 1, actual: 2 },
    });
    assert_eq!(s.dropped_events, 7);
    assert_eq!(s.cpus[&3].dropped, 7);
    assert_eq!((s.health.sequence_gaps, s.health.missing_frames), (1, 2));
    assert_eq!(s.health.crc_errors, 1);
    assert!(s.warnings[1].message.contains("offset 99"));
}

#[test]
fn a_snapshot_makes_a_late_console_complete() {
    let mut s = State::new();
    let snap = lucid_protocol::testdata::sample_messages()
        .into_iter()
        .filter(|m| matches!(m, Message::TaskSnapshot(_) | Message::WasmInstanceSnapshot(_)))
        .collect::<Vec<_>>();
    for m in snap {
        s.apply(&ev(0, 1, m));
    }
    let t = &s.tasks[&TaskId(300)];
    assert_eq!((t.name.as_str(), t.polls, t.busy_ticks), ("net-rx", 10, Ticks(50_000)));
    assert_eq!(s.wasm[&InstanceId(1)].fuel, 120_000);
    assert_eq!(s.wasm[&InstanceId(1)].state, WasmState::Suspended);
}

#[test]
fn an_instance_snapshot_names_a_task_the_console_never_saw_spawn() {
    let mut s = State::new();
    let snap = lucid_protocol::testdata::sample_messages()
        .into_iter()
        .find_map(|m| match m {
            Message::WasmInstanceSnapshot(w) => Some(w),
            _ => None,
        })
        .expect("a sample instance snapshot");
    s.apply(&ev(0, 1, Message::WasmInstanceSnapshot(snap)));
    let t = &s.tasks[&snap.task];
    assert_eq!(
        (t.name.as_str(), t.kind, t.instance),
        (snap.module, TaskKind::Wasm, Some(snap.instance))
    );
    // A task whose spawn was seen keeps its name.
    let mut s = State::new();
    spawn(&mut s, 0, 1, snap.task);
    s.apply(&ev(0, 2, Message::WasmInstanceSnapshot(snap)));
    assert_eq!(s.tasks[&snap.task].name, "w");
}

#[test]
fn warnings_are_bounded() {
    let mut s = State::new();
    for i in 0..(MAX_WARNINGS as u64 + 5) {
        s.warn(Warning::new(WarningKind::Inconsistent, format!("w{i}")));
    }
    assert_eq!(s.warnings.len(), MAX_WARNINGS);
    assert_eq!(s.warnings_dropped, 5);
}

fn spawn(s: &mut State, cpu: u32, ts: u64, task: TaskId) {
    s.apply(&ev(
        cpu,
        ts,
        Message::TaskSpawned(TaskSpawned {
            task,
            name: "w",
            kind: TaskKind::Kernel,
            location: Location {
                file: "a.rs",
                line: 3,
                column: 4,
            },
            parent: Some(TaskId(1)),
        }),
    ));
}

fn hello(s: &mut State, tsc_hz: u64) {
    s.apply(&Item::Event {
        stream: StreamId::new(0, Ring::Control),
        seq: 0,
        event: Event {
            ts: 0,
            message: Message::Hello(Hello {
                major: 1,
                minor: 0,
                build_id: "t",
                tsc_hz,
                cpus: 2,
                boot_tsc: 0,
            }),
        },
    });
}

fn wake(task: TaskId, self_wake: bool) -> Message<'static> {
    Message::Wake {
        task,
        waker: if self_wake {
            Waker::Task(task)
        } else {
            Waker::Interrupt(0x30)
        },
        by_ref: true,
        self_wake,
    }
}

fn end(task: TaskId, result: PollResult) -> Message<'static> {
    Message::PollEnd { task, result }
}

fn waker_clone(task: TaskId, wakers: u64) -> Message<'static> {
    Message::WakerClone { task, wakers }
}

fn waker_drop(task: TaskId, wakers: u64) -> Message<'static> {
    Message::WakerDrop { task, wakers }
}

#[test]
fn states_and_times_follow_wake_poll_and_completion() {
    let mut s = State::new();
    spawn(&mut s, 0, 100, TaskId(5));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Idle);
    s.apply(&ev(0, 200, wake(TaskId(5), false)));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Scheduled);
    s.apply(&ev(0, 250, Message::PollStart { task: TaskId(5) }));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Running);
    s.apply(&ev(0, 290, end(TaskId(5), PollResult::Pending)));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Idle);
    s.apply(&ev(0, 400, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 410, end(TaskId(5), PollResult::Ready)));
    s.apply(&ev(
        0,
        410,
        Message::TaskCompleted {
            task: TaskId(5),
            outcome: Outcome::Cancelled,
        },
    ));
    let t = &s.tasks[&TaskId(5)];
    assert_eq!(t.status, TaskStatus::Completed(Outcome::Cancelled));
    assert_eq!(t.status.name(), "cancelled");
    assert_eq!(t.parent, Some(TaskId(1)));
    assert_eq!(
        (t.polls, t.wakes, t.busy_ticks, t.scheduled_ticks),
        (2, 1, Ticks(50), Ticks(50))
    );
    assert_eq!(t.total_ticks(Ticks(10_000)), Ticks(310));
    assert_eq!(t.idle_ticks_at(Ticks(10_000)), Ticks(310 - 50 - 50));
    assert_eq!((t.poll_hist.count(), t.poll_hist.max()), (2, 40));
    assert_eq!((t.sched_hist.count(), t.sched_hist.max()), (1, 50));
    assert_eq!(t.woken_by[&WokenBy::Interrupt(0x30)], 1);
    assert_eq!(s.cpus[&0].slices.len(), 2);
    assert!(s.cpus[&0].slices[1].ready);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn a_wake_during_a_poll_schedules_the_task_after_it() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 15, wake(TaskId(5), true)));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Running);
    s.apply(&ev(0, 20, end(TaskId(5), PollResult::Pending)));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Scheduled);
    s.apply(&ev(0, 32, Message::PollStart { task: TaskId(5) }));
    let t = &s.tasks[&TaskId(5)];
    assert_eq!((t.self_wakes, t.scheduled_ticks), (1, Ticks(12)));
}

#[test]
fn a_late_wake_from_another_cpu_does_not_reschedule_a_polled_task() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    // Stamped before the poll started, delivered after it on cpu 1's stream: the
    // merge puts it first, so the poll consumes it.
    merged(
        &mut s,
        &[
            ev(0, 100, Message::PollStart { task: TaskId(5) }),
            ev(0, 120, end(TaskId(5), PollResult::Pending)),
            ev(1, 90, wake(TaskId(5), false)),
        ],
    );
    let t = &s.tasks[&TaskId(5)];
    assert_eq!((t.status, t.wakes), (TaskStatus::Idle, 1));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn lost_waker_is_reported_once_when_the_last_waker_of_an_idle_task_goes() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 11, waker_clone(TaskId(5), 1)));
    s.apply(&ev(0, 20, end(TaskId(5), PollResult::Pending)));
    assert!(s.warnings.is_empty());
    s.apply(&ev(0, 30, waker_drop(TaskId(5), 0)));
    s.apply(&ev(0, 31, waker_drop(TaskId(5), 0)));
    assert_eq!(s.warning_counts.get(&WarningKind::LostWaker), Some(&1));
    let w = &s.warnings[0];
    assert_eq!(
        (w.kind, w.task, w.ts),
        (WarningKind::LostWaker, Some(TaskId(5)), Some(Ticks(30)))
    );
    assert_eq!(s.tasks[&TaskId(5)].warnings, 1);
    let t = &s.tasks[&TaskId(5)];
    assert_eq!((t.wakers, t.waker_clones, t.waker_drops), (Some(0), 1, 2));
}

/// A kernel of protocol minor 1 or later, which sends its own lost-waker verdicts.
fn hello_judging_lost_wakers(s: &mut State) {
    s.apply(&ev(
        0,
        0,
        Message::Hello(Hello {
            major: 1,
            minor: 1,
            build_id: "t",
            tsc_hz: 1_000_000_000,
            cpus: 4,
            boot_tsc: 0,
        }),
    ));
}

#[test]
fn a_kernel_that_judges_lost_wakers_is_trusted_over_the_stream_order() {
    let mut s = State::new();
    hello_judging_lost_wakers(&mut s);
    spawn(&mut s, 0, 0, TaskId(5));
    // What a lagging CPU's late frame looks like: the wake by value that
    // rescheduled the task (CPU 2) arrives after the drop of the waker it consumed
    // (CPU 1). Inferred from that order, a lost waker; the kernel sent no verdict,
    // so none.
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 11, waker_clone(TaskId(5), 1)));
    s.apply(&ev(0, 20, end(TaskId(5), PollResult::Pending)));
    s.apply(&ev(1, 31, waker_drop(TaskId(5), 0)));
    s.apply(&ev(2, 30, wake(TaskId(5), false)));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // The verdict, from both sides of a race: one warning.
    let verdict = || Message::LostWaker(lucid_protocol::LostWaker { task: TaskId(5) });
    s.apply(&ev(0, 40, verdict()));
    s.apply(&ev(1, 41, verdict()));
    assert_eq!(s.warning_counts.get(&WarningKind::LostWaker), Some(&1));
    assert_eq!(s.warnings[0].ts, Some(Ticks(40)));
    // A verdict about a task that already ended (a stale frame) is no warning.
    spawn(&mut s, 0, 50, TaskId(6));
    s.apply(&ev(
        0,
        60,
        Message::TaskCompleted {
            task: TaskId(6),
            outcome: lucid_protocol::Outcome::Ok,
        },
    ));
    s.apply(&ev(
        0,
        61,
        Message::LostWaker(lucid_protocol::LostWaker { task: TaskId(6) }),
    ));
    assert_eq!(s.warning_counts.get(&WarningKind::LostWaker), Some(&1));
}

#[test]
fn a_consumed_waker_of_a_scheduled_task_is_not_lost() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 11, waker_clone(TaskId(5), 1)));
    s.apply(&ev(0, 20, end(TaskId(5), PollResult::Pending)));
    s.apply(&ev(1, 30, wake(TaskId(5), false)));
    s.apply(&ev(1, 31, waker_drop(TaskId(5), 0)));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Scheduled);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn a_pending_poll_that_leaves_no_waker_is_a_lost_waker() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 1, waker_clone(TaskId(5), 1)));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 12, waker_drop(TaskId(5), 0)));
    s.apply(&ev(0, 20, end(TaskId(5), PollResult::Pending)));
    assert_eq!(s.warning_counts.get(&WarningKind::LostWaker), Some(&1));
}

#[test]
fn long_polls_and_self_wake_storms_use_the_thresholds() {
    let mut s = State::with_config(Config {
        long_poll_ns: 1_000,
        self_wake_storm: 3,
        ..Config::default()
    });
    hello(&mut s, 2_000_000_000);
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 2_010, end(TaskId(5), PollResult::Pending)));
    s.apply(&ev(0, 3_000, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 5_001, end(TaskId(5), PollResult::Pending)));
    assert_eq!(s.warning_counts.get(&WarningKind::LongPoll), Some(&1));
    assert!(s.warnings[0].message.contains("1.00µs"), "{}", s.warnings[0]);
    assert_eq!(s.tasks[&TaskId(5)].long_polls, 1);
    for i in 0..5 {
        s.apply(&ev(0, 6_000 + i, wake(TaskId(5), true)));
    }
    assert_eq!(s.warning_counts.get(&WarningKind::SelfWakeStorm), Some(&1));
    s.apply(&ev(0, 7_000, wake(TaskId(5), false)));
    for i in 0..3 {
        s.apply(&ev(0, 8_000 + i, wake(TaskId(5), true)));
    }
    assert_eq!(s.warning_counts.get(&WarningKind::SelfWakeStorm), Some(&2));
}

#[test]
fn completed_tasks_expire_after_the_retention_time() {
    let mut s = State::with_config(Config {
        retain_ns: 1_000,
        ..Config::default()
    });
    hello(&mut s, 1_000_000_000);
    spawn(&mut s, 0, 10, TaskId(1));
    spawn(&mut s, 0, 10, TaskId(2));
    s.apply(&ev(
        0,
        20,
        Message::TaskCompleted {
            task: TaskId(1),
            outcome: Outcome::Ok,
        },
    ));
    s.apply(&ev(0, 500, Message::Heartbeat));
    s.prune();
    assert!(s.tasks.contains_key(&TaskId(1)));
    s.apply(&ev(0, 1_100, Message::Heartbeat));
    s.prune();
    assert!(!s.tasks.contains_key(&TaskId(1)));
    assert!(s.tasks.contains_key(&TaskId(2)));
    assert_eq!((s.tasks_expired, s.tasks_completed), (1, 1));
    // A late wake and waker drop of the finished task do not bring it back.
    s.apply(&ev(1, 1_200, wake(TaskId(1), false)));
    s.apply(&ev(1, 1_201, waker_drop(TaskId(1), 0)));
    assert!(!s.tasks.contains_key(&TaskId(1)));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // The same id spawned again is a new task.
    spawn(&mut s, 0, 1_300, TaskId(1));
    assert_eq!(s.tasks[&TaskId(1)].status, TaskStatus::Idle);
}

#[test]
fn cpus_count_steals_idle_time_and_run_queue_depth() {
    let mut s = State::new();
    s.apply(&ev(
        0,
        5,
        Message::Steal {
            task: TaskId(3),
            from_cpu: 0,
            to_cpu: 1,
        },
    ));
    s.apply(&ev(1, 10, Message::CpuIdle));
    s.apply(&ev(1, 40, Message::CpuBusy));
    s.apply(&ev(1, 41, Message::RunQueueDepth { depth: 7 }));
    assert_eq!((s.cpus[&0].steals_out, s.cpus[&1].steals_in), (1, 1));
    assert_eq!(s.cpus[&1].idle_ticks, Ticks(30));
    assert_eq!(s.cpus[&1].run_queue_depth(), Some(7));
    assert_eq!(s.tasks[&TaskId(3)].cpu, Some(1));
}

#[test]
fn trace_events_become_log_lines_with_their_callsite() {
    let mut s = State::new();
    let samples = lucid_protocol::testdata::sample_messages();
    for m in samples
        .iter()
        .filter(|m| matches!(m, Message::Callsite(_) | Message::TraceEvent(_)))
    {
        s.apply(&ev(2, 9, *m));
    }
    let line = &s.logs[0];
    assert_eq!(line.level, Some(lucid_protocol::Level::Info));
    assert_eq!(line.target, "lucid_kernel");
    assert!(line.text.starts_with("hello bytes=4096"), "{}", line.text);
}

fn feed(s: &mut State, bytes: &[u8]) -> lucid_protocol::DecoderStats {
    let mut d = Decoder::new();
    for chunk in bytes.chunks(777) {
        d.feed(chunk, |item| s.apply(&item));
    }
    d.finish(|item| s.apply(&item));
    *d.stats()
}

#[test]
fn a_generated_workload_folds_into_consistent_totals() {
    let g = generate(&Workload {
        tasks: 200,
        polls_per_task: 4,
        ..Workload::default()
    });
    let mut s = State::new();
    feed(&mut s, &g.wire());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.tasks.len(), 202);
    let busy: u64 = s.tasks.values().map(|t| t.busy_ticks.get()).sum();
    let cpu_busy: u64 = s.cpus.values().map(|c| c.busy_ticks.get()).sum();
    assert_eq!(busy, cpu_busy);
    for t in s.tasks.values() {
        assert_eq!(t.status, TaskStatus::Completed(Outcome::Ok));
        assert_eq!((t.polls, t.poll_hist.count(), t.wakes), (4, 4, 3));
        assert_eq!(t.sched_hist.count(), 3);
        assert!(t.busy_ticks + t.scheduled_ticks <= t.total_ticks(s.now()));
    }
    assert_eq!(s.wasm.len(), 2);
    assert!(s.tasks.values().filter(|t| t.instance.is_some()).count() == 2);
}

#[test]
fn cpu_totals_equal_the_events_by_kind_and_survive_pruning() {
    let g = generate(&Workload {
        tasks: 300,
        polls_per_task: 3,
        ..Workload::default()
    });
    // Completed tasks expire at once, so the per-task figures go away.
    let mut s = State::with_config(Config {
        retain_ns: 0,
        ..Config::default()
    });
    feed(&mut s, &g.wire());
    s.prune();
    assert!(s.tasks_expired > 0);
    let sum = |f: fn(&CpuTotals) -> u64| s.cpus.values().map(|c| f(&c.totals)).sum::<u64>();
    let kind = |k| g.counts.get(&k).copied().unwrap_or(0);
    assert_eq!(sum(|t| t.polls), kind(MessageKind::PollStart));
    assert_eq!(sum(|t| t.wakes), kind(MessageKind::Wake));
    assert_eq!(sum(|t| t.spawns), kind(MessageKind::TaskSpawned));
    assert_eq!(sum(|t| t.completions), kind(MessageKind::TaskCompleted));
    assert_eq!(sum(|t| t.poll_latency.count()), kind(MessageKind::PollEnd));
    // Every poll after the first of a task follows a wake.
    assert_eq!(sum(|t| t.sched_latency.count()), kind(MessageKind::Wake));
    let busy_ns: u128 = s.cpus.values().map(|c| c.totals.poll_latency.sum_ns()).sum();
    let busy_ticks: u64 = s.cpus.values().map(|c| c.busy_ticks.get()).sum();
    // Each poll is converted to ns on its own, rounding down by less than 1 ns.
    let total_ns = u128::from(s.clock().ns(Ticks(busy_ticks)));
    let polls = u128::from(kind(MessageKind::PollEnd));
    assert!(
        busy_ns <= total_ns && busy_ns + polls >= total_ns,
        "{busy_ns} vs {total_ns}"
    );
}

#[test]
fn a_lossy_stream_reports_gaps_and_keeps_what_arrived() {
    let g = generate(&Workload {
        tasks: 200,
        polls_per_task: 4,
        frame_buffer: 256,
        ..Workload::default()
    });
    let mut wire = Vec::new();
    for (i, f) in g.frames.iter().enumerate() {
        match i % 7 {
            3 => {}                                                                                  // lost
            5 => wire.extend(f.iter().enumerate().map(|(j, b)| if j == 3 { b ^ 0x5a } else { *b })), // corrupt
            _ => wire.extend_from_slice(f),
        }
    }
    wire.extend_from_slice(b"\x01garbage without a delimiter");
    let mut s = State::new();
    let stats = feed(&mut s, &wire);
    assert!(s.health.sequence_gaps > 0);
    assert_eq!(s.health.sequence_gaps, stats.sequence_gaps);
    assert!(s.health.crc_errors + s.health.malformed_frames > 0);
    assert_eq!(s.health.incomplete_frames, 1);
    assert!(s.events > 0 && s.events < g.events());
    assert!(s.warning_counts[&WarningKind::SequenceGap] > 0);
    for t in s.tasks.values() {
        assert!(t.polls <= 4 && t.poll_hist.count() <= t.polls);
    }
}

#[test]
fn events_of_one_cpu_arriving_before_another_cpus_older_ones_keep_per_task_state() {
    // Frames of the generated workload delivered stream by stream rather than
    // interleaved: every CPU's events arrive late relative to the others.
    let g = generate(&Workload {
        tasks: 40,
        polls_per_task: 3,
        ..Workload::default()
    });
    let mut frames = g.frames.clone();
    frames.reverse();
    let mut s = State::new();
    feed(&mut s, &frames.concat());
    assert_eq!(s.tasks_completed, 42);
    assert!(s.tasks.values().all(|t| t.polls == 3 && t.status.is_done()));
}

#[test]
fn a_poll_that_does_not_return_is_reported_once_by_the_next_heartbeat() {
    let mut s = State::with_config(Config {
        long_poll_ns: 1_000,
        ..Config::default()
    });
    hello(&mut s, 1_000_000_000);
    spawn(&mut s, 1, 0, TaskId(5));
    s.apply(&ev(1, 100, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(0, 900, Message::Heartbeat));
    assert!(!s.warning_counts.contains_key(&WarningKind::NeverYields));
    s.apply(&ev(0, 2_000, Message::Heartbeat));
    s.apply(&ev(0, 3_000, Message::Heartbeat));
    assert_eq!(s.warning_counts.get(&WarningKind::NeverYields), Some(&1));
    let w = &s.warnings[0];
    assert_eq!((w.task, w.cpu), (Some(TaskId(5)), Some(1)));
    assert!(w.message.contains("1.90µs"), "{}", w.message);
}

#[test]
fn wasm_instances_track_memory_fuel_hostcalls_and_traps() {
    let mut s = State::new();
    let samples = lucid_protocol::testdata::sample_messages();
    let wasm: Vec<Message<'_>> = samples
        .iter()
        .copied()
        .filter(|m| {
            matches!(
                m,
                Message::WasmInstanceCreated(_)
                    | Message::WasmStateChanged { .. }
                    | Message::WasmMemoryGrow { .. }
                    | Message::WasmPoll { .. }
                    | Message::WasmHostcalls { .. }
                    | Message::WasmTrap(_)
            )
        })
        .collect();
    for (i, m) in wasm.iter().enumerate() {
        s.apply(&ev(0, 50 + i as u64, *m));
    }
    // Poll and hostcall reports are increments.
    for m in wasm
        .iter()
        .filter(|m| matches!(m, Message::WasmPoll { .. } | Message::WasmHostcalls { .. }))
    {
        s.apply(&ev(0, 100, *m));
    }
    let w = &s.wasm[&InstanceId(1)];
    assert_eq!(
        (w.module.as_str(), w.task, w.fuel_per_slice),
        ("fib.wasm", TaskId(301), Some(10_000))
    );
    assert_eq!((w.fuel, w.slices, w.traps, w.hostcalls_total), (20_000, 2, 1, 24));
    let h = w.hostcalls[&3];
    assert_eq!((h.calls, h.ticks), (24, 9_600));
    // Two reports of 12 calls in 4_800 ticks: 400 ticks (ns at the default 1 GHz) each.
    assert_eq!((h.latency.count(), h.latency.sum_ns()), (24, 9_600));
    assert_eq!(h.latency.cumulative().next(), Some((1_000, 24)));
    assert_eq!(w.traps_by_code.get(&7), Some(&1));
    assert_eq!(w.memory_history.iter().map(|&(_, p)| p).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(w.state, WasmState::Trapped);
    assert_eq!(
        w.last_trap.as_deref(),
        Some("integer_division_by_zero: integer divide by zero")
    );
    assert_eq!(s.tasks[&TaskId(301)].instance, Some(InstanceId(1)));
}

#[test]
fn an_ended_instance_keeps_its_last_stderr_lines() {
    let mut s = State::new();
    let samples = lucid_protocol::testdata::sample_messages();
    let created = samples
        .iter()
        .copied()
        .find(|m| matches!(m, Message::WasmInstanceCreated(_)))
        .expect("a creation sample");
    s.apply(&ev(0, 10, created));
    s.apply(&ev(
        0,
        20,
        Message::WasmStderrTail(lucid_protocol::WasmStderrTail {
            instance: InstanceId(1),
            lines: "first\nlast",
        }),
    ));
    // An instance the console never saw is ignored.
    s.apply(&ev(
        0,
        30,
        Message::WasmStderrTail(lucid_protocol::WasmStderrTail {
            instance: InstanceId(99),
            lines: "x",
        }),
    ));
    assert_eq!(s.wasm[&InstanceId(1)].stderr_tail.as_deref(), Some("first\nlast"));
    assert_eq!(s.wasm.len(), 1);
}

#[test]
fn only_an_unnamed_task_older_than_the_snapshot_counts_as_missed_by_it() {
    let snapshot = Message::TaskSnapshot(lucid_protocol::TaskSnapshot {
        task: TaskId(1),
        name: "named",
        kind: lucid_protocol::TaskKind::Kernel,
        location: Location {
            file: "k.rs",
            line: 1,
            column: 1,
        },
        parent: None,
        state: lucid_protocol::TaskState::Idle,
        cpu: 0,
        spawned_tsc: 1,
        polls: 0,
        wakes: 0,
        self_wakes: 0,
        wakers: 1,
        busy_ticks: 0,
        scheduled_ticks: 0,
    });
    let mut s = State::new();
    // Task 7 was seen (a wake) before the snapshot, which did not name it; task 8
    // only after it, its spawn cut off by the end of the stream.
    s.apply(&ev(0, 10, wake(TaskId(7), false)));
    s.apply(&ev(0, 20, snapshot));
    s.apply(&ev(0, 30, wake(TaskId(8), false)));
    let summary = crate::stats::Summary::new(&crate::stats::Collected {
        state: s,
        decoder: Default::default(),
        damage: None,
    });
    assert_eq!((summary.tasks_unnamed, summary.tasks_unnamed_unfinished), (2, 1));
}

#[test]
fn an_instance_shows_its_arguments_as_a_command_line() {
    let mut s = State::new();
    let samples = lucid_protocol::testdata::sample_messages();
    let created = samples
        .iter()
        .copied()
        .find(|m| matches!(m, Message::WasmInstanceCreated(_)))
        .expect("a creation sample");
    s.apply(&ev(0, 10, created));
    s.apply(&ev(
        0,
        20,
        Message::WasmInstanceArgs(lucid_protocol::WasmInstanceArgs {
            instance: InstanceId(1),
            args: "sieve.wasm\0--limit\0two words\0it's\0\0",
            // Cut by the kernel's length cap: the last string lost its NUL.
            env: "A=1\0B=2",
        }),
    ));
    let w = &s.wasm[&InstanceId(1)];
    assert_eq!(w.args, ["sieve.wasm", "--limit", "two words", "it's"]);
    assert_eq!(w.env, ["A=1", "B=2"]);
    assert_eq!(w.command_line(), "sieve.wasm --limit 'two words' 'it'\\''s'");
    // A flood of arguments is kept to a bound.
    let many = "a\0".repeat(10_000);
    s.apply(&ev(
        0,
        30,
        Message::WasmInstanceArgs(lucid_protocol::WasmInstanceArgs {
            instance: InstanceId(1),
            args: &many,
            env: "",
        }),
    ));
    assert_eq!(s.wasm[&InstanceId(1)].args.len(), 256);
}

#[test]
fn a_wake_during_a_poll_read_first_from_another_cpu_is_not_a_lost_waker() {
    let mut state = State::default();
    // CPU 0's frame (a by-value wake at t=150 that consumed the last waker) arrives
    // before CPU 1's frame with the poll that ran from t=100 to t=200.
    merged(
        &mut state,
        &[
            ev(
                0,
                150,
                Message::Wake {
                    task: TaskId(7),
                    waker: Waker::Task(TaskId(3)),
                    by_ref: false,
                    self_wake: false,
                },
            ),
            ev(0, 151, waker_drop(TaskId(7), 0)),
            ev(1, 100, Message::PollStart { task: TaskId(7) }),
            ev(
                1,
                200,
                Message::PollEnd {
                    task: TaskId(7),
                    result: PollResult::Pending,
                },
            ),
        ],
    );
    assert_eq!(
        state.warning_counts.get(&WarningKind::LostWaker).copied().unwrap_or(0),
        0
    );
    // Without that wake, the same poll ending with no waker is a lost waker.
    state.apply(&ev(1, 300, Message::PollStart { task: TaskId(7) }));
    state.apply(&ev(
        1,
        400,
        Message::PollEnd {
            task: TaskId(7),
            result: PollResult::Pending,
        },
    ));
    assert_eq!(state.warning_counts.get(&WarningKind::LostWaker).copied(), Some(1));
}

#[test]
fn an_overtaken_poll_end_does_not_make_a_scheduled_task_idle() {
    // As in a real 4-CPU recording: CPU 0 stamps the end of its poll of task 4 after
    // CPU 1 has already polled the task again (the kernel releases the task before
    // it stamps PollEnd, and CPU 0 stalled in between). By then the task is
    // scheduled with its waker consumed: not lost.
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(4));
    s.apply(&ev(0, 100, Message::PollStart { task: TaskId(4) }));
    s.apply(&ev(0, 110, waker_clone(TaskId(4), 1)));
    s.apply(&ev(1, 200, Message::PollStart { task: TaskId(4) }));
    s.apply(&ev(1, 205, waker_clone(TaskId(4), 1)));
    s.apply(&ev(1, 210, end(TaskId(4), PollResult::Pending)));
    s.apply(&ev(1, 220, wake(TaskId(4), false)));
    s.apply(&ev(1, 221, waker_drop(TaskId(4), 0)));
    s.apply(&ev(0, 300, end(TaskId(4), PollResult::Pending)));
    let t = &s.tasks[&TaskId(4)];
    assert_eq!((t.status, t.polls), (TaskStatus::Scheduled, 2));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // The next poll ends with no waker left: that one is lost.
    s.apply(&ev(0, 400, Message::PollStart { task: TaskId(4) }));
    s.apply(&ev(0, 410, end(TaskId(4), PollResult::Pending)));
    assert_eq!(s.warning_counts.get(&WarningKind::LostWaker).copied(), Some(1));
}

#[test]
fn control_messages_do_not_move_now_past_the_task_streams() {
    let mut state = State::default();
    state.apply(&ev(0, 100, Message::PollStart { task: TaskId(1) }));
    state.apply(&ev(
        0,
        200,
        Message::PollEnd {
            task: TaskId(1),
            result: PollResult::Pending,
        },
    ));
    // A heartbeat on the control stream, newer than any task event.
    state.apply(&Item::Event {
        stream: StreamId::new(0, Ring::Control),
        seq: 0,
        event: Event {
            ts: 900,
            message: Message::Heartbeat,
        },
    });
    assert_eq!(state.now(), Ticks(200));
    state.apply(&ev(1, 300, Message::CpuIdle));
    assert_eq!(state.now(), Ticks(300));
}

#[test]
fn steals_are_counted_by_the_cpu_they_came_from_within_a_bound() {
    let mut s = State::new();
    let steal = |task, from_cpu, to_cpu| Message::Steal { task, from_cpu, to_cpu };
    s.apply(&ev(1, 1, steal(TaskId(5), 0, 1)));
    s.apply(&ev(1, 2, steal(TaskId(6), 0, 1)));
    s.apply(&ev(1, 3, steal(TaskId(7), 3, 1)));
    s.apply(&ev(2, 4, steal(TaskId(8), 1, 2)));
    assert_eq!(s.cpus[&1].steals_from, [(0, 2), (3, 1)]);
    assert_eq!(s.cpus[&2].steals_from, [(1, 1)]);
    assert_eq!((s.cpus[&0].steals_out, s.cpus[&1].steals_in), (2, 3));
    // A hostile stream naming endless victims cannot grow the list.
    for victim in 0..200 {
        s.apply(&ev(1, 10 + u64::from(victim), steal(TaskId(9), victim, 1)));
    }
    assert_eq!(s.cpus[&1].steals_from.len(), crate::state::MAX_STEAL_SOURCES);
    assert_eq!(s.cpus[&1].steals_in, 203);
}

#[test]
fn a_contained_panic_is_kept_with_its_task_warned_about_and_counted() {
    let mut s = State::new();
    spawn(&mut s, 0, 0, TaskId(5));
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&ev(
        0,
        12,
        Message::TaskPanicked(TaskPanicked {
            task: TaskId(5),
            message: "index out of bounds: the len is 3 but the index is 7",
            location: Some(Location {
                file: "kernel/src/workload.rs",
                line: 40,
                column: 5,
            }),
        }),
    ));
    s.apply(&ev(0, 13, end(TaskId(5), PollResult::Ready)));
    s.apply(&ev(
        0,
        14,
        Message::TaskCompleted {
            task: TaskId(5),
            outcome: Outcome::Panicked,
        },
    ));
    let t = &s.tasks[&TaskId(5)];
    assert_eq!(t.status, TaskStatus::Completed(Outcome::Panicked));
    assert_eq!(
        t.panic.as_deref(),
        Some("index out of bounds: the len is 3 but the index is 7 (at kernel/src/workload.rs:40:5)")
    );
    assert_eq!((s.task_panics, s.panics.len()), (1, 1));
    assert_eq!(s.panics[0].location, "kernel/src/workload.rs:40:5");
    assert_eq!(s.warning_counts.get(&WarningKind::TaskPanicked), Some(&1));
    let w = &s.warnings[0];
    assert_eq!(
        (w.kind, w.task, w.ts),
        (WarningKind::TaskPanicked, Some(TaskId(5)), Some(Ticks(12)))
    );
    assert!(
        w.message.contains("panicked on CPU 0: index out of bounds"),
        "{}",
        w.message
    );
}

#[test]
fn sums_of_hostile_stream_values_saturate_and_say_so_instead_of_wrapping() {
    let mut s = State::new();
    let loss = |count| Message::Loss {
        cpu: 1,
        ring: Ring::Task,
        count,
    };
    s.apply(&ev(1, 10, loss(u64::MAX - 5)));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    s.apply(&ev(1, 11, loss(u64::MAX - 5)));
    s.apply(&ev(1, 12, loss(7)));
    assert_eq!(s.dropped_events, u64::MAX, "the sum wrapped");
    assert_eq!(s.cpus[&1].dropped, u64::MAX);
    let saturated: Vec<_> = s.warnings.iter().filter(|w| w.message.contains("saturated")).collect();
    assert_eq!(saturated.len(), 1, "{:?}", s.warnings);
    assert!(
        saturated[0].message.starts_with("dropped events"),
        "{}",
        saturated[0].message
    );
}

#[test]
fn events_naming_cpus_the_kernel_does_not_have_create_none() {
    let mut s = State::new();
    s.apply(&ev(
        0,
        1,
        Message::Hello(Hello {
            major: 1,
            minor: 0,
            build_id: "k",
            tsc_hz: 1_000_000_000,
            cpus: 4,
            boot_tsc: 0,
        }),
    ));
    for cpu in 0..100_000u32 {
        s.apply(&ev(
            1,
            2,
            Message::Steal {
                task: TaskId(9),
                from_cpu: cpu,
                to_cpu: u32::MAX - cpu,
            },
        ));
        s.apply(&ev(cpu, 3, Message::CpuIdle));
    }
    assert!(s.cpus.len() <= 4 + CPU_MARGIN as usize, "{} CPUs", s.cpus.len());
    assert_eq!(s.events_beyond_cpus, 100_000 + 100_000 - 12);
    let warned = s
        .warnings
        .iter()
        .filter(|w| w.message.contains("beyond the 12 CPUs"))
        .count();
    assert_eq!(warned, 1, "{:?}", s.warnings);
}

fn sample_of(cpu: u32, ts: u64, task: Option<TaskId>, pc: u64) -> Item<'static> {
    Item::Event {
        stream: StreamId::new(cpu, Ring::Interrupt),
        seq: 0,
        event: Event {
            ts,
            message: Message::Sample(lucid_protocol::Sample {
                context: if task.is_some() {
                    lucid_protocol::SampleContext::Task
                } else {
                    lucid_protocol::SampleContext::Idle
                },
                task,
                pc,
                frames: lucid_protocol::Frames::Slice(&[]),
            }),
        },
    }
}

#[test]
fn a_long_poll_warning_keeps_the_pcs_sampled_during_that_poll() {
    let mut s = State::with_config(Config {
        long_poll_ns: 1_000,
        ..Config::default()
    });
    hello(&mut s, 2_000_000_000);
    spawn(&mut s, 0, 0, TaskId(5));
    // A short poll's sample is not the long poll's.
    s.apply(&ev(0, 10, Message::PollStart { task: TaskId(5) }));
    s.apply(&sample_of(0, 20, Some(TaskId(5)), 0x9000));
    s.apply(&ev(0, 30, end(TaskId(5), PollResult::Pending)));
    s.apply(&ev(0, 100, Message::PollStart { task: TaskId(5) }));
    for (ts, pc) in [(200, 0x1000), (300, 0x2000), (400, 0x1000), (500, 0x1000)] {
        s.apply(&sample_of(0, ts, Some(TaskId(5)), pc));
    }
    // Another CPU's sample and an idle one are not this poll's.
    s.apply(&sample_of(1, 600, Some(TaskId(6)), 0x3000));
    s.apply(&sample_of(0, 650, None, 0x4000));
    s.apply(&ev(0, 5_000, end(TaskId(5), PollResult::Pending)));
    let long = s
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::LongPoll)
        .expect("a long poll warning");
    assert_eq!(long.samples, [(0x1000, 3), (0x2000, 1)]);
    let t = &s.sampled.tasks[&TaskId(5)];
    assert_eq!(t.total, 5);
    assert_eq!(t.pcs.get(&0x1000), Some(&3));
    assert_eq!(s.sampled.total, 7);
    assert_eq!(s.sampled.by_context, [6, 0, 1, 0]);
}

#[test]
fn wasm_functions_of_a_snapshot_answer_name_guest_code_until_a_restart() {
    let mut s = State::default();
    hello(&mut s, 2_000_000_000);
    s.apply(&ev(
        0,
        10,
        Message::WasmFunction(lucid_protocol::WasmFunction {
            start: 0x5000,
            len: 0x100,
            module: "hasher",
            index: 2,
            name: "hash",
        }),
    ));
    let name = |s: &State| s.wasm_code.function(0x5010).map(CodeFunction::display_name);
    assert_eq!(name(&s).as_deref(), Some("hasher!hash"));
    s.apply(&Item::Restart {
        stream: StreamId::new(0, Ring::Task),
    });
    hello(&mut s, 2_000_000_000);
    assert_eq!(name(&s), None, "a new boot's code is elsewhere");
}

/// A state with every rare field of its long sequences set, at the edges of their
/// ranges (timestamps before the spawn, the largest ids and counts).
fn state_with_rare_fields(seed: u64) -> State {
    let g = generate(&Workload {
        cpus: 3,
        tasks: 300,
        polls_per_task: 4,
        wasm_instances: 2,
        loss: seed % 2,
        seed,
        live: seed.is_multiple_of(2),
        distinct_names: seed.is_multiple_of(3),
        ..Workload::default()
    });
    let mut s = State::new();
    feed(&mut s, &g.wire());
    let ids: Vec<TaskId> = s.tasks.keys().copied().collect();
    let statuses = [
        TaskStatus::Running,
        TaskStatus::Scheduled,
        TaskStatus::Idle,
        TaskStatus::Completed(Outcome::Ok),
        TaskStatus::Completed(Outcome::Cancelled),
        TaskStatus::Completed(Outcome::Panicked),
        TaskStatus::EndedByRestart,
    ];
    for (n, id) in ids.iter().step_by(7).enumerate() {
        let t = s.tasks.get_mut(id).expect("task");
        t.status = statuses[n % statuses.len()];
        t.kind = TaskKind::Wasm;
        t.panic = Some(format!("boom {n}").into());
        t.add_parked(Some(lucid_protocol::ResourceKind::Channel), "ping", Ticks(u64::MAX));
        t.wakers = Some(u64::MAX - n as u64);
        t.completed_ts = Some(Ticks(0));
        t.last_woken = Some(Ticks(u64::MAX));
        t.poll_started = Some(t.spawned_ts.0.wrapping_add(1 << 63));
        t.scheduled_since = Some(t.spawned_ts.0.wrapping_add((1 << 63) - 1));
        t.cpu = Some(u32::MAX);
        t.parent = Some(TaskId(u64::MAX));
        t.instance = Some(lucid_protocol::InstanceId(n as u64));
        t.storm_warned = n.is_multiple_of(2);
        t.lost_warned = n.is_multiple_of(3);
        t.busy_ticks = Ticks(u64::MAX);
        for v in 0..200 {
            t.poll_hist.record(v * 37);
        }
        t.sched_hist.record(u64::MAX);
        t.sched_hist.record(0);
    }
    let c = s.cpus.entry(1).or_default();
    c.slices.push_back(Slice {
        task: TaskId(u64::MAX),
        start: Ticks(u64::MAX),
        end: Ticks(0),
        ready: true,
    });
    for (i, waker) in [
        WokenBy::Nobody,
        WokenBy::Other,
        WokenBy::Interrupt(255),
        WokenBy::Task(TaskId(0)),
    ]
    .into_iter()
    .enumerate()
    {
        s.wake_marks.push_back(WakeMark {
            ts: Ticks(u64::MAX - i as u64),
            cpu: u32::MAX,
            task: TaskId(u64::MAX),
            waker,
        });
    }
    s
}

#[test]
fn a_state_round_trips_through_its_keyframe_form() {
    for seed in 1..=4 {
        let s = state_with_rare_fields(seed);
        let bytes = postcard::to_allocvec(&s).expect("serialise");
        let back: State = postcard::from_bytes(&bytes).expect("deserialise");
        assert_eq!(back, s, "seed {seed}");
        // Equal twice over: what the views read, task by task.
        for ((a, x), (b, y)) in back.tasks.iter().zip(s.tasks.iter()) {
            assert_eq!((a, x), (b, y));
            assert_eq!(x.poll_hist.quantile(0.5), y.poll_hist.quantile(0.5));
        }
    }
}

#[test]
fn a_damaged_keyframe_form_is_refused_or_read_without_panicking() {
    let s = state_with_rare_fields(2);
    let bytes = postcard::to_allocvec(&s).expect("serialise");
    let mut rng = lucid_protocol::testdata::Rng::new(9);
    let mut refused = 0;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..rng.range(1, 4) {
            let i = rng.range(0, b.len() as u64) as usize;
            b[i] ^= 1 << rng.range(0, 8);
        }
        refused += usize::from(postcard::from_bytes::<State>(&b).is_err());
    }
    assert!(refused > 100, "most damage is noticed: {refused} of 300 refused");
    assert!(postcard::from_bytes::<State>(&bytes[..bytes.len() / 2]).is_err());
}
