//! Floods of distinct stream ids: every collection keyed by them stays within its cap,
//! and the overflow is counted and warned about.

use lucid_protocol::{
    Callsite, CallsiteKind, Event, Level, List, TaskKind, TaskSpawned, WasmInstanceCreated, WasmTrap,
};

use super::*;

fn ev(cpu: u32, ts: u64, message: Message<'_>) -> Item<'_> {
    Item::Event {
        stream: StreamId::new(cpu, Ring::Task),
        seq: 0,
        event: Event { ts, message },
    }
}

fn capped(max_tasks: usize, max_instances: usize) -> State {
    State::with_config(Config {
        max_tasks,
        max_instances,
        ..Config::default()
    })
}

fn spawned(task: u64) -> Message<'static> {
    Message::TaskSpawned(TaskSpawned {
        task: TaskId(task),
        name: "t",
        kind: TaskKind::Kernel,
        location: lucid_protocol::Location {
            file: "f.rs",
            line: 1,
            column: 1,
        },
        parent: None,
    })
}

fn completed(task: u64) -> Message<'static> {
    Message::TaskCompleted {
        task: TaskId(task),
        outcome: Outcome::Ok,
    }
}

fn warnings_containing<'a>(s: &'a State, text: &str) -> Vec<&'a str> {
    s.warnings
        .iter()
        .filter(|w| w.message.contains(text))
        .map(|w| w.message.as_str())
        .collect()
}

#[test]
fn the_default_caps_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!((c.max_tasks, c.max_instances), (MAX_TASKS, MAX_INSTANCES));
}

#[test]
fn a_flood_of_task_ids_evicts_completed_tasks_first_and_keeps_live_ones() {
    let mut s = capped(100, 16);
    // 50 live tasks, then 10_000 that complete at once.
    for id in 0..50 {
        s.apply(&ev(0, id, spawned(id)));
    }
    for id in 1000..11_000 {
        s.apply(&ev(0, id, spawned(id)));
        s.apply(&ev(0, id, completed(id)));
    }
    assert_eq!(s.tasks.len(), 100);
    assert!(
        (0..50).all(|id| s.tasks.contains_key(&TaskId(id))),
        "a live task was evicted"
    );
    // The newest completed ones are the ones kept.
    assert!(s.tasks.contains_key(&TaskId(10_999)));
    assert!(!s.tasks.contains_key(&TaskId(1000)));
    assert_eq!((s.tasks_evicted, s.live_tasks_evicted), (10_000 - 50, 0));
    assert_eq!((s.tasks_spawned, s.tasks_completed), (10_050, 10_000));
    // Warnings name the count at powers of two: a few, not one per eviction.
    let warned = warnings_containing(&s, "more than 100 tasks");
    assert_eq!(warned.len(), 14, "{warned:?}");
    assert!(warned[13].contains("8192 evicted so far"), "{}", warned[13]);
    // A late wake of an evicted completed task does not bring it back.
    s.apply(&ev(
        0,
        20_000,
        Message::WakerDrop {
            task: TaskId(1000),
            wakers: 0,
        },
    ));
    assert!(!s.tasks.contains_key(&TaskId(1000)));
}

#[test]
fn when_every_task_is_live_the_smallest_ids_make_room() {
    let mut s = capped(64, 16);
    for id in 0..100_000u64 {
        s.apply(&ev(
            0,
            id,
            Message::Wake {
                task: TaskId(id),
                waker: lucid_protocol::Waker::None,
                by_ref: true,
                self_wake: false,
            },
        ));
    }
    assert_eq!(s.tasks.len(), 64);
    assert_eq!(s.tasks.keys().next(), Some(&TaskId(100_000 - 64)));
    assert_eq!((s.tasks_evicted, s.live_tasks_evicted), (100_000 - 64, 100_000 - 64));
    assert!(
        warnings_containing(&s, "more than 64 tasks")
            .last()
            .is_some_and(|w| w.contains("65536 evicted so far") && w.contains("65536 of them live")),
        "{:?}",
        s.warnings
    );
}

fn created(instance: u64, task: u64) -> Message<'static> {
    Message::WasmInstanceCreated(WasmInstanceCreated {
        instance: InstanceId(instance),
        task: TaskId(task),
        module: "m.wasm",
        memory_pages: 1,
        fuel_per_slice: 100,
    })
}

fn trap(instance: u64, code: u32) -> Message<'static> {
    Message::WasmTrap(WasmTrap {
        instance: InstanceId(instance),
        task: TaskId(instance),
        code,
        reason: "r",
    })
}

#[test]
fn a_flood_of_instance_ids_prunes_ended_instances_first() {
    let mut s = capped(1 << 20, 32);
    // Ten live instances, then a flood of instances that trap at once.
    for id in 0..10 {
        s.apply(&ev(0, id, created(id, id)));
    }
    for id in 100..10_100 {
        s.apply(&ev(0, id, created(id, id)));
        s.apply(&ev(0, id, trap(id, 0)));
    }
    assert_eq!(s.wasm.len(), 32);
    assert!(
        (0..10).all(|id| s.wasm.contains_key(&InstanceId(id))),
        "a live instance was evicted"
    );
    assert_eq!(s.instances_evicted, 10_000 - 22);
    assert!(
        warnings_containing(&s, "more than 32 wasm instances")
            .last()
            .is_some_and(|w| w.contains("8192 evicted")),
        "{:?}",
        s.warnings
    );
    // With only live ones left, the smallest ids make room.
    let mut s = capped(1 << 20, 8);
    for id in 0..1000 {
        s.apply(&ev(0, id, created(id, id)));
    }
    assert_eq!(s.wasm.keys().next(), Some(&InstanceId(992)));
}

#[test]
fn floods_of_trap_codes_and_hostcall_kinds_go_to_other() {
    let mut s = State::new();
    s.apply(&ev(0, 1, created(1, 1)));
    for code in 0..10_000u32 {
        s.apply(&ev(0, 2, trap(1, code)));
        s.apply(&ev(
            0,
            2,
            Message::WasmHostcalls {
                instance: InstanceId(1),
                hostcall: code,
                calls: 1,
                ticks: 10,
            },
        ));
    }
    let w = &s.wasm[&InstanceId(1)];
    assert_eq!(w.traps_by_code.len(), MAX_TRAP_CODES + 1);
    assert_eq!(w.traps_by_code[&OTHER_TRAP_CODES], 10_000 - MAX_TRAP_CODES as u64);
    assert_eq!(w.traps, 10_000);
    assert_eq!(w.hostcalls.len(), MAX_HOSTCALL_KINDS + 1);
    assert_eq!(w.hostcalls[&OTHER_HOSTCALLS].calls, 10_000 - MAX_HOSTCALL_KINDS as u64);
    assert_eq!(s.traps_in_other, 10_000 - MAX_TRAP_CODES as u64);
    assert_eq!(s.hostcalls_in_other, 10_000 - MAX_HOSTCALL_KINDS as u64);
    assert_eq!(warnings_containing(&s, "distinct trap codes").len(), 1);
    assert_eq!(warnings_containing(&s, "hostcall kinds").len(), 1);
}

#[test]
fn a_flood_of_callsites_stops_at_the_cap() {
    let mut s = State::new();
    for id in 0..(MAX_CALLSITES as u64 + 1000) {
        s.apply(&ev(
            0,
            1,
            Message::Callsite(Callsite {
                id: CallsiteId(id),
                kind: CallsiteKind::Span,
                level: Level::Info,
                name: "n",
                target: "t",
                file: "f.rs",
                line: 1,
                fields: List::Slice(&[]),
            }),
        ));
    }
    assert_eq!(s.callsites.len(), MAX_CALLSITES);
    assert_eq!(s.callsites_ignored, 1000);
    assert_eq!(warnings_containing(&s, "callsites registered").len(), 1);
}

#[test]
fn a_hello_claiming_billions_of_cpus_does_not_lift_the_cpu_bound() {
    let mut s = State::new();
    s.apply(&ev(
        0,
        1,
        Message::Hello(lucid_protocol::Hello {
            major: 1,
            minor: 0,
            build_id: "k",
            tsc_hz: 1_000_000_000,
            cpus: u32::MAX,
            boot_tsc: 0,
        }),
    ));
    for cpu in (0..u32::MAX).step_by(65_537) {
        s.apply(&ev(cpu, 2, Message::CpuIdle));
    }
    assert!(s.cpus.len() <= MAX_CPUS as usize, "{} CPUs", s.cpus.len());
    assert!(s.events_beyond_cpus > 0);
}
