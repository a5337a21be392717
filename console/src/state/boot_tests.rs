//! Kernel restarts: two boots in one stream, built from real frames so the decoder
//! reports the restarts as it would.

use lucid_protocol::testdata::frame;
use lucid_protocol::{Decoder, Hello, Location, TaskKind, TaskSpawned, WasmInstanceCreated};

use super::*;

fn hello(boot_tsc: u64) -> Message<'static> {
    Message::Hello(Hello {
        major: 1,
        minor: 0,
        build_id: "k",
        tsc_hz: 1_000_000_000,
        cpus: 2,
        boot_tsc,
    })
}

fn spawned(task: u64) -> Message<'static> {
    Message::TaskSpawned(TaskSpawned {
        task: TaskId(task),
        name: "t",
        kind: TaskKind::Kernel,
        location: Location {
            file: "f.rs",
            line: 1,
            column: 1,
        },
        parent: None,
    })
}

const CONTROL: StreamId = StreamId::new(0, Ring::Control);
const TASKS: StreamId = StreamId::new(0, Ring::Task);

/// Boot 1 (TSC from 1000 to 9000): task 1 in a poll, task 2 completed, instance 7
/// running. Boot 2 (the TSC starts again at 100): task 1 spawned again and polled.
/// As frames; the last one is boot 2's task frame.
fn two_boots_frames() -> Vec<Vec<u8>> {
    vec![
        frame(CONTROL, 0, &[(1000, hello(1000))]),
        frame(
            TASKS,
            0,
            &[
                (2000, spawned(1)),
                (2100, spawned(2)),
                (
                    2200,
                    Message::TaskCompleted {
                        task: TaskId(2),
                        outcome: Outcome::Ok,
                    },
                ),
                (
                    2300,
                    Message::WasmInstanceCreated(WasmInstanceCreated {
                        instance: InstanceId(7),
                        task: TaskId(1),
                        module: "m.wasm",
                        memory_pages: 1,
                        fuel_per_slice: 10,
                    }),
                ),
                (8000, Message::PollStart { task: TaskId(1) }),
            ],
        ),
        frame(CONTROL, 1, &[(9000, Message::Heartbeat)]),
        // The new boot: every stream starts again at sequence 0.
        frame(CONTROL, 0, &[(150, hello(100))]),
        frame(
            TASKS,
            0,
            &[
                (200, spawned(1)),
                (300, Message::PollStart { task: TaskId(1) }),
                (
                    400,
                    Message::PollEnd {
                        task: TaskId(1),
                        result: PollResult::Pending,
                    },
                ),
            ],
        ),
    ]
}

fn two_boots() -> Vec<u8> {
    two_boots_frames().concat()
}

fn fold(wire: &[u8]) -> State {
    let mut s = State::new();
    let mut d = Decoder::new();
    let mut m = crate::merge::Merge::default();
    let mut apply = |i: &Item<'_>| s.apply(i);
    d.feed(wire, |item| m.push(&item, &mut apply));
    d.finish(|item| m.push(&item, &mut apply));
    m.flush(&mut apply);
    s
}

#[test]
fn a_restart_begins_a_new_boot_that_ends_the_old_ones_tasks_and_instances() {
    let s = fold(&two_boots());
    assert_eq!((s.kernel_restarts, s.boot, s.health.restarts), (1, 1, 2));
    let restarts: Vec<&Warning> = s
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::KernelRestart)
        .collect();
    assert_eq!(restarts.len(), 1, "{:?}", s.warnings);
    assert!(restarts[0].message.contains("boot 2 begins"), "{}", restarts[0].message);
    assert!(
        restarts[0]
            .message
            .contains("1 tasks and 1 wasm instances of boot 1 ended"),
        "{}",
        restarts[0].message
    );
    // Nothing else looks wrong: no time going backwards, no poll overlapping the
    // old boot's poll in progress.
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);

    // The boot begins just after the old boot's last timestamp.
    let mark = s.boot_marks.back().expect("a boot mark");
    assert_eq!((mark.boot, mark.ts, mark.tasks_ended), (2, Ticks(9001), 1));
    assert_eq!((s.boot_at(Ticks(9000)), s.boot_at(Ticks(9001))), (0, 1));
    assert!(s.task_of_boot(TaskId(1), 0).is_none() && s.task_of_boot(TaskId(1), 1).is_some());
    // The new boot's times follow: its Hello's boot time (100) is the mark.
    let t = &s.tasks[&TaskId(1)];
    assert_eq!(t.boot, 1);
    assert_eq!(t.spawned_ts, Ticks(9001 + 100));
    assert_eq!((t.polls, t.busy_ticks, t.status), (1, Ticks(100), TaskStatus::Idle));
    assert_eq!(s.ts_range, Some((Ticks(1000), Ticks(9001 + 300))));
    assert_eq!(s.now(), Ticks(9001 + 300));
    // The old instance ended with its boot.
    let w = &s.wasm[&InstanceId(7)];
    assert!(w.ended_by_restart && w.has_ended());
    assert!(w.state_text().starts_with("ended by restart"), "{}", w.state_text());
    assert_eq!((s.tasks_ended_by_restart, s.tasks_expired), (1, 1));
}

#[test]
fn the_old_boots_live_tasks_end_with_it_and_expire_like_completed_ones() {
    let mut frames = two_boots_frames();
    // Without the new boot's task frame: task 1 of boot 1 is still held.
    frames.pop();
    let s = fold(&frames.concat());
    let t = &s.tasks[&TaskId(1)];
    assert_eq!((t.boot, t.status), (0, TaskStatus::EndedByRestart));
    assert_eq!(t.completed_ts, Some(Ticks(9000)));
    assert!(t.status.is_done());
    // A late event of the old boot's id in the new boot is the new boot's task.
    let mut s = s;
    s.apply(&Item::Event {
        stream: TASKS,
        seq: 0,
        event: lucid_protocol::Event {
            ts: 500,
            message: Message::PollStart { task: TaskId(1) },
        },
    });
    let t = &s.tasks[&TaskId(1)];
    assert_eq!((t.boot, t.status, t.polls), (1, TaskStatus::Running, 1));
}

#[test]
fn hellos_of_one_boot_are_not_restarts_but_a_hello_of_another_boot_is() {
    let mut s = State::new();
    let ev = |ts, message| Item::Event {
        stream: CONTROL,
        seq: 0,
        event: lucid_protocol::Event { ts, message },
    };
    s.apply(&ev(1000, hello(1000)));
    s.apply(&ev(2000, hello(1000)));
    assert_eq!(s.kernel_restarts, 0);
    // A console that connected again to a rebooted kernel with a fresh decoder: no
    // restart of a sequence, only the new boot time says it.
    s.apply(&ev(50, hello(40)));
    assert_eq!((s.kernel_restarts, s.boot), (1, 1));
    assert_eq!(s.ts_range.map(|r| r.1), Some(Ticks(2001 + 10)));
}

#[test]
fn restarts_of_each_stream_of_one_reboot_count_as_one_boot() {
    let cpu1 = StreamId::new(1, Ring::Task);
    let mut frames = two_boots_frames();
    frames.insert(2, frame(cpu1, 0, &[(3000, spawned(5))]));
    // CPU 1's stream starts again after CPU 0's did: the same reboot.
    frames.push(frame(cpu1, 0, &[(500, spawned(6))]));
    let s = fold(&frames.concat());
    assert_eq!((s.kernel_restarts, s.health.restarts), (1, 3));
    assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::EndedByRestart);
    assert_eq!(s.tasks[&TaskId(6)].boot, 1);
}

#[test]
fn a_restart_forgets_the_old_boots_resources_and_waits() {
    use lucid_protocol::{ResourceCreated, ResourceId, ResourceKind, WaitBegin, WaitOp};
    let mut s = State::new();
    let ev = |ts, stream, message| Item::Event {
        stream,
        seq: 0,
        event: lucid_protocol::Event { ts, message },
    };
    s.apply(&ev(1000, CONTROL, hello(1000)));
    s.apply(&ev(1100, TASKS, spawned(1)));
    s.apply(&ev(
        1200,
        TASKS,
        Message::ResourceCreated(ResourceCreated {
            id: ResourceId(5),
            kind: ResourceKind::Channel,
            name: "c",
            location: Location {
                file: "f.rs",
                line: 1,
                column: 1,
            },
            capacity: Some(1),
        }),
    ));
    s.apply(&ev(
        1300,
        TASKS,
        Message::WaitBegin(WaitBegin {
            task: TaskId(1),
            resource: ResourceId(5),
            op: WaitOp::Recv,
        }),
    ));
    assert!(s.resources.current_wait(TaskId(1)).is_some());
    assert_eq!(s.resources.live.len(), 1);
    s.apply(&ev(50, CONTROL, hello(40)));
    assert_eq!(s.kernel_restarts, 1);
    assert!(s.resources.current_wait(TaskId(1)).is_none(), "a wait of the old boot");
    assert!(s.resources.live.is_empty(), "a resource of the old boot");
    assert_eq!(s.resources.created, 1, "counters stay");
}
