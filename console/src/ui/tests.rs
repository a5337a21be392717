//! Rendering tests: every view and the help overlay drawn on a `TestBackend` from a
//! generated workload, compared with committed insta snapshots.

use lucid_protocol::testdata::{Workload, frame, generate, sample_messages};
use lucid_protocol::{Message, Ring, StreamId, TaskId};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::source::IngestEvent;
use crate::state::{Config, TaskStatus};
use crate::time::{HostNs, Ticks};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The small two-CPU workload the fixtures are made of.
const SMALL: Workload = Workload {
    cpus: 2,
    tasks: 16,
    polls_per_task: 3,
    wasm_instances: 1,
    loss: 5,
    frame_buffer: 256,
    seed: 3,
    live: false,
    distinct_names: false,
};

/// Two thirds of a small two-CPU workload (so tasks are in every state), plus a
/// frame with a lost waker, a steal, run-queue samples, idle time, a log line and a
/// wasm instance that grows, calls the host and traps.
fn fixture() -> (App, Option<TaskId>) {
    let g = generate(&SMALL);
    // Windows short enough that the sub-millisecond workload fills the sparklines.
    let config = Config {
        util_window_ns: 20_000,
        ..Config::default()
    };
    let mut s = Session::new("unix:/tmp/lucid.sock".into(), config);
    s.handle(IngestEvent::Connected);
    for f in &g.frames[..g.frames.len() * 2 / 3] {
        s.feed(HostNs(1), f);
    }
    // The merge holds each stream's newest frame until the others catch up; the views
    // are drawn from everything fed so far.
    s.flush();
    let now = s.state.now().get();
    let idle = s
        .state
        .tasks
        .values()
        .find(|t| t.status == TaskStatus::Idle && t.polls > 0)
        .map(|t| t.id);
    let samples = sample_messages();
    let mut extra: Vec<(u64, Message<'_>)> = samples
        .iter()
        .filter(|m| {
            matches!(
                m,
                Message::Callsite(_)
                    | Message::TraceEvent(_)
                    | Message::WasmInstanceCreated(_)
                    | Message::WasmStateChanged { .. }
                    | Message::WasmMemoryGrow { .. }
                    | Message::WasmPoll { .. }
                    | Message::WasmHostcalls { .. }
                    | Message::WasmTrap(_)
                    | Message::WasmInstanceArgs(_)
            )
        })
        .map(|m| (now, *m))
        .collect();
    if let Some(task) = idle {
        extra.push((now, Message::WakerClone { task, wakers: 1 }));
        extra.push((now + 10, Message::WakerDrop { task, wakers: 0 }));
        // The kernel's verdict on that drop: the task waits with no waker left.
        extra.push((now + 10, Message::LostWaker(lucid_protocol::LostWaker { task })));
        extra.push((
            now + 20,
            Message::Steal {
                task,
                from_cpu: 0,
                to_cpu: 1,
            },
        ));
    }
    extra.push((now + 30, Message::RunQueueDepth { depth: 3 }));
    extra.push((now + 40, Message::CpuIdle));
    extra.push((now + 5_040, Message::CpuBusy));
    extra.push((now + 5_050, Message::RunQueueDepth { depth: 1 }));
    s.feed(HostNs(2), &frame(StreamId::new(1, Ring::Interrupt), 0, &extra));
    s.flush();
    (App::new(s), idle)
}

fn render(app: &mut App, w: u16, h: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal.draw(|f| draw(f, app)).expect("draw");
    terminal.backend().clone()
}

#[test]
fn tasks_view() {
    let (mut app, _) = fixture();
    insta::assert_snapshot!(render(&mut app, 130, 30));
}

#[test]
fn tasks_view_filtered_and_sorted_by_id() {
    let (mut app, _) = fixture();
    for c in "/idle".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    // Sort by id (three columns left of Busy), ascending.
    for _ in 0..6 {
        app.on_key(key(KeyCode::Left));
    }
    app.on_key(key(KeyCode::Char('i')));
    assert_eq!(app.tasks.sort, tasks::Column::Id);
    let idle = app
        .state()
        .tasks
        .values()
        .filter(|t| t.status == TaskStatus::Idle)
        .count();
    assert!(idle > 0);
    assert_eq!(app.tasks.rows(app.state()).len(), idle);
    insta::assert_snapshot!(render(&mut app, 130, 12));
}

/// The selection stays on its task when the order changes, and `f` follows the
/// newest task until a move.
#[test]
fn tasks_selection_sticks_to_its_task_and_f_follows_the_newest() {
    let (mut app, _) = fixture();
    render(&mut app, 130, 30);
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    let chosen = app.tasks.selected_task(app.state()).expect("a selected task");
    // Reverse the order: the same task must stay selected, on another row.
    app.on_key(key(KeyCode::Char('i')));
    render(&mut app, 130, 30);
    assert_eq!(app.tasks.selected_task(app.state()), Some(chosen));
    assert_ne!(
        app.tasks.selected, 2,
        "the task moved in the list and the selection with it"
    );

    app.on_key(key(KeyCode::Char('f')));
    render(&mut app, 130, 30);
    let newest = app.state().tasks.values().map(|t| t.id).max();
    assert_eq!(app.tasks.selected_task(app.state()), newest);
    assert!(format!("{:?}", render(&mut app, 130, 30)).contains("following the newest task"));
    app.on_key(key(KeyCode::Up));
    assert!(!app.tasks.follow, "a move stops following");
}

#[test]
fn task_detail_view() {
    let (mut app, idle) = fixture();
    let idle = idle.expect("the fixture has an idle task");
    app.view = View::Warnings;
    // The lost-waker warning is the newest one; Enter opens its task.
    app.on_key(key(KeyCode::Enter));
    assert_eq!((app.view, app.detail.task), (View::TaskDetail, Some(idle)));
    insta::assert_snapshot!(render(&mut app, 120, 34));
}

#[test]
fn task_detail_view_with_samples_and_a_long_poll() {
    let (mut app, idle) = fixture();
    let task = idle.expect("the fixture has an idle task");
    app.symbols = crate::symbols::Symbolizer::from_functions(vec![
        (0x1000, 0x100, "lucid_kernel::workload::hash_round".into()),
        (0x2000, 0x100, "lucid_kernel::workload::cpu_worker".into()),
    ]);
    let now = app.state().now().0;
    let sample = |pc: u64| {
        Message::Sample(lucid_protocol::Sample {
            context: lucid_protocol::SampleContext::Task,
            task: Some(task),
            pc,
            frames: lucid_protocol::Frames::Slice(&[]),
        })
    };
    let long = 1_000_000_000_000;
    let mut events = vec![
        (
            now + 6_000,
            Message::WasmFunction(lucid_protocol::WasmFunction {
                start: 0x8000,
                len: 0x100,
                module: "hasher",
                index: 1,
                name: "hash",
            }),
        ),
        (now + 6_010, Message::PollStart { task }),
    ];
    for (i, pc) in [0x1010, 0x1020, 0x1010, 0x2000, 0x8010, 0x9999].into_iter().enumerate() {
        events.push((now + 6_100 + i as u64, sample(pc)));
    }
    events.push((
        now + 6_010 + long,
        Message::PollEnd {
            task,
            result: lucid_protocol::PollResult::Pending,
        },
    ));
    app.session
        .feed(HostNs(3), &frame(StreamId::new(1, Ring::Interrupt), 1, &events));
    app.session.flush();
    app.view = View::TaskDetail;
    app.detail.task = Some(task);
    let backend = render(&mut app, 140, 34);
    let text = text_of(&backend);
    assert!(text.contains("Hottest functions (6 samples)"), "{text}");
    assert!(
        text.contains("50.0%      3  lucid_kernel::workload::hash_round"),
        "{text}"
    );
    assert!(text.contains("hasher!hash"), "{text}");
    assert!(text.contains("0x9999"), "an unknown address stays in hex: {text}");
    insta::assert_snapshot!(backend);
    app.view = View::Warnings;
    let text = text_of(&render(&mut app, 220, 34));
    assert!(
        text.contains("— doing: lucid_kernel::workload::hash_round ×3, 0x9999 ×1, hasher!hash ×1"),
        "the long poll says what it was doing: {text}"
    );
}

#[test]
fn task_detail_view_of_a_panicked_task() {
    let (mut app, idle) = fixture();
    let task = idle.expect("the fixture has an idle task");
    let now = app.state().now().0;
    let panicked = [
        (
            now + 6_000,
            Message::TaskPanicked(lucid_protocol::TaskPanicked {
                task,
                message: "called `Option::unwrap()` on a `None` value",
                location: Some(lucid_protocol::Location {
                    file: "kernel/src/workload.rs",
                    line: 212,
                    column: 9,
                }),
            }),
        ),
        (
            now + 6_010,
            Message::TaskCompleted {
                task,
                outcome: lucid_protocol::Outcome::Panicked,
            },
        ),
    ];
    app.session
        .feed(HostNs(3), &frame(StreamId::new(1, Ring::Interrupt), 0, &panicked));
    app.session.flush();
    app.view = View::Warnings;
    // The panic is the newest warning; Enter opens its task.
    app.on_key(key(KeyCode::Enter));
    assert_eq!((app.view, app.detail.task), (View::TaskDetail, Some(task)));
    let text = text_of(&render(&mut app, 120, 34));
    assert!(
        text.contains("state     panicked: called `Option::unwrap()` on a `None` value"),
        "{text}"
    );
    assert!(text.contains("panicked on CPU 1"), "{text}");
}

#[test]
fn timeline_view() {
    let (mut app, _) = fixture();
    app.view = View::Timeline;
    app.timeline.span_ns = 400_000;
    app.timeline.cursor = 20;
    insta::assert_snapshot!(render(&mut app, 120, 12));
}

#[test]
fn timeline_view_with_task_lanes_and_wakes() {
    let (mut app, _) = fixture();
    app.view = View::Timeline;
    app.timeline.span_ns = 100_000;
    app.timeline.end = Some(app.state().ts_range.unwrap().0 + Ticks(250_000));
    app.on_key(key(KeyCode::Char('t')));
    app.timeline.cursor = 40;
    insta::assert_snapshot!(render(&mut app, 120, 16));
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.view, View::TaskDetail);
    assert!(app.detail.task.is_some());
}

/// A timeline zoomed out past the poll slices a CPU keeps: the older part of each
/// CPU lane is drawn from the session summary in shades, never as idle, and the
/// info line says from when polls are kept.
#[test]
fn timeline_zoomed_out_past_the_kept_polls_shows_the_summary() {
    let g = generate(&Workload {
        cpus: 2,
        tasks: 4000,
        polls_per_task: 5,
        wasm_instances: 0,
        seed: 5,
        ..Workload::default()
    });
    let mut s = Session::new("unix:/tmp/lucid.sock".into(), Config::default());
    s.handle(IngestEvent::Connected);
    for f in &g.frames {
        s.feed(HostNs(1), f);
    }
    s.flush();
    assert!(
        s.state
            .cpus
            .values()
            .all(|c| c.slices.len() == crate::state::MAX_SLICES_PER_CPU),
        "the workload must overflow every CPU's kept slices"
    );
    let (first, last) = s.state.ts_range.expect("events");
    let mut app = App::new(s);
    app.view = View::Timeline;
    app.timeline.span_ns = app.state().clock().ns(last - first) + 1;
    app.timeline.end = Some(last);
    let backend = render(&mut app, 120, 12);
    let buf = backend.buffer();
    let text: String = (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect();
    let cpu0 = text
        .lines()
        .find(|l| l.contains("cpu0"))
        .unwrap_or_else(|| panic!("no cpu0 lane:\n{text}"));
    let lane: String = cpu0.chars().skip(14).take(100).collect();
    assert!(
        lane.contains(['░', '▒', '▓', '█']),
        "the summary shows busy time: {cpu0}"
    );
    assert!(!lane.starts_with('·'), "the past is not drawn as idle: {cpu0}");
    assert!(text.contains("polls kept from"), "{text}");
    insta::assert_snapshot!(backend);

    // Task lanes: the busiest tasks of an early stretch, whose polls are no longer
    // kept, drawn from their own histories, and blank outside their lives.
    app.on_key(key(KeyCode::Char('t')));
    app.timeline.span_ns = app.state().clock().ns(last - first_ts(&app)) / 8;
    app.timeline.end = Some(first_ts(&app) + Ticks((last - first_ts(&app)).get() / 8));
    let text = text_of(&render(&mut app, 120, 12));
    let row = text.lines().nth(2).expect("a first lane").to_string();
    let first: TaskId = row
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .and_then(|id| id.parse().ok().map(TaskId))
        .unwrap_or_else(|| panic!("no task lane:\n{text}"));
    assert!(
        app.state()
            .cpus
            .values()
            .flat_map(|c| c.slices.iter())
            .all(|s| s.task != first),
        "none of task {first}'s polls are kept"
    );
    let cells: String = row.chars().skip(14).take(100).collect();
    assert!(cells.contains(['░', '▒', '▓', '█']), "its busy share is drawn: {row}");
    assert!(cells.contains(' '), "time outside its life is blank: {row}");

    // Its detail's lifetime strip, too.
    app.detail.task = Some(first);
    app.view = View::TaskDetail;
    let text = text_of(&render(&mut app, 120, 40));
    let strip = text
        .lines()
        .skip_while(|l| !l.contains("Polls over its lifetime"))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(strip.contains(['░', '▒', '▓', '█']), "{strip}");
}

/// The first timestamp of the session.
fn first_ts(app: &App) -> Ticks {
    app.state().ts_range.expect("events").0
}

/// The rendered screen as text, a line per row.
fn text_of(backend: &TestBackend) -> String {
    let buf = backend.buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

#[test]
fn scheduler_view() {
    let (mut app, _) = fixture();
    app.view = View::Scheduler;
    insta::assert_snapshot!(render(&mut app, 120, 20));
}

#[test]
fn wasm_view() {
    let (mut app, _) = fixture();
    app.on_key(key(KeyCode::Char('5')));
    assert_eq!(app.view, View::Wasm);
    insta::assert_snapshot!(render(&mut app, 120, 16));
}

#[test]
fn logs_view() {
    let (mut app, _) = fixture();
    app.view = View::Logs;
    insta::assert_snapshot!(render(&mut app, 100, 14));
}

#[test]
fn warnings_view() {
    let (mut app, _) = fixture();
    app.on_key(key(KeyCode::Char('7')));
    assert_eq!(app.view, View::Warnings);
    // Tall enough for every warning kind.
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn help_overlay() {
    let (mut app, _) = fixture();
    app.on_key(key(KeyCode::Char('?')));
    assert!(app.help);
    insta::assert_snapshot!(render(&mut app, 100, 24));
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help && !app.quit);
}

#[test]
fn too_small_terminal() {
    let (mut app, _) = fixture();
    insta::assert_snapshot!(render(&mut app, 40, 6));
}

#[test]
fn every_view_draws_at_every_size_without_panicking() {
    let (mut app, _) = fixture();
    let mut empty = App::new(Session::new("stdin".into(), Config::default()));
    for view in View::ALL {
        for a in [&mut app, &mut empty] {
            a.view = view;
            a.detail.task = Some(TaskId(1));
            for (w, h) in [(1, 1), (59, 11), (60, 12), (61, 13), (80, 14), (200, 60), (300, 12)] {
                render(a, w, h);
            }
        }
    }
}

#[test]
fn pause_freezes_the_display_while_ingest_goes_on() {
    let (mut app, _) = fixture();
    let before = app.state().events;
    app.on_key(key(KeyCode::Char(' ')));
    assert!(app.paused());
    let extra = frame(StreamId::new(3, Ring::Task), 0, &[(1, Message::Heartbeat)]);
    app.ingest(IngestEvent::Chunk(crate::source::Chunk {
        rx: HostNs(3),
        data: extra,
    }));
    assert_eq!(app.state().events, before);
    app.on_key(key(KeyCode::Char(' ')));
    assert_eq!(app.state().events, before + 1);
}

#[test]
fn navigation_keys() {
    let (mut app, _) = fixture();
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.view, View::TaskDetail);
    app.on_key(key(KeyCode::BackTab));
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.view, View::Resources, "back from the first view wraps to the last");
    app.on_key(key(KeyCode::Char('1')));
    app.on_key(key(KeyCode::Down));
    let second = app.tasks.selected_task(app.state());
    app.on_key(key(KeyCode::Enter));
    assert_eq!((app.view, app.detail.task), (View::TaskDetail, second));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.view, View::Tasks);
    app.on_key(key(KeyCode::Char('q')));
    assert!(app.quit);
}

#[test]
fn timeline_zoom_pan_and_follow() {
    let (mut app, _) = fixture();
    app.view = View::Timeline;
    let span = app.timeline.span_ns;
    app.on_key(key(KeyCode::Char('+')));
    assert_eq!(app.timeline.span_ns, span / 2);
    app.on_key(key(KeyCode::Char('-')));
    app.on_key(key(KeyCode::Char('-')));
    assert_eq!(app.timeline.span_ns, span * 2);
    app.on_key(key(KeyCode::Left));
    assert!(app.timeline.end.is_some_and(|e| e < app.state().now()));
    app.on_key(key(KeyCode::Char('f')));
    assert_eq!(app.timeline.end, None);
}

#[test]
fn random_and_mutated_input_never_panics_the_session_or_the_views() {
    let g = generate(&Workload {
        cpus: 3,
        tasks: 60,
        polls_per_task: 3,
        ..Workload::default()
    });
    let wire = g.wire();
    let mut rng = lucid_protocol::testdata::Rng::new(99);
    for round in 0..12 {
        let mut app = App::new(Session::new("stdin".into(), Config::default()));
        let mut bytes = wire.clone();
        match round % 3 {
            // Flip random bytes.
            0 => {
                for _ in 0..40 {
                    let i = rng.range(0, bytes.len() as u64) as usize;
                    bytes[i] ^= rng.range(1, 256) as u8;
                }
            }
            // Pure noise.
            1 => bytes = (0..20_000).map(|_| rng.next_u64() as u8).collect(),
            // Drop random ranges.
            _ => {
                for _ in 0..10 {
                    let a = rng.range(0, bytes.len() as u64) as usize;
                    let b = (a + rng.range(1, 300) as usize).min(bytes.len());
                    bytes.drain(a..b);
                }
            }
        }
        for chunk in bytes.chunks(rng.range(1, 4000) as usize) {
            app.ingest(IngestEvent::Chunk(crate::source::Chunk {
                rx: HostNs(1),
                data: chunk.to_vec(),
            }));
        }
        for view in View::ALL {
            app.view = view;
            app.detail.task = app.state().tasks.keys().next().copied();
            render(&mut app, 120, 30);
        }
        if round % 3 != 1 {
            assert!(app.session.stream_problem().is_some(), "round {round}");
        }
    }
}

/// A replay of a small workload with one damaged frame (a warning to jump to).
fn replay_controls() -> (crate::replay::tests::TempDir, replay::ReplayControls) {
    let mut g = generate(&SMALL);
    let n = g.frames.len();
    g.frames[n / 2][2] = g.frames[n / 2][2].wrapping_add(1).max(1);
    let dir = crate::replay::tests::TempDir::new();
    let path = dir.file("ui.lucid", &g.recording(300));
    let r = crate::replay::open(&path).expect("open");
    (dir, replay::ReplayControls::new(r))
}

#[test]
fn replay_view() {
    let (_dir, mut c) = replay_controls();
    c.on_key(key(KeyCode::Char('n')));
    let mut app = App::new(Session::new("replay".into(), Config::default()));
    c.sync(&mut app);
    app.view = View::Scheduler;
    insta::assert_snapshot!(render(&mut app, 120, 20));
}

#[test]
fn replay_keys_move_the_cursor() {
    let (_dir, mut c) = replay_controls();
    assert_eq!(c.replay.position(), 0);
    assert!(c.on_key(key(KeyCode::Char('>'))));
    assert_eq!(c.replay.position(), 1);
    assert!(c.on_key(key(KeyCode::Char('}'))));
    let far = 1001.min(c.replay.len());
    assert_eq!(c.replay.position(), far);
    assert!(c.on_key(key(KeyCode::Char('<'))));
    assert_eq!(c.replay.position(), far - 1);
    assert!(c.on_key(key(KeyCode::Char('0'))));
    assert_eq!(c.replay.position(), 0);
    assert!(c.on_key(key(KeyCode::Char('n'))));
    let first = c.replay.index().summary().warnings[0];
    assert_eq!(c.replay.position(), first);
    assert!(
        c.message.as_deref().is_some_and(|m| m.contains("CRC")),
        "{:?}",
        c.message
    );
    assert!(c.on_key(key(KeyCode::Char('$'))));
    assert_eq!(c.replay.position(), c.replay.len());
    // A time typed after `:`.
    let half = c.replay.duration_ns() / 2;
    for ch in format!(":{}us", half / 1000).chars() {
        assert!(c.on_key(key(KeyCode::Char(ch))));
    }
    assert!(c.on_key(key(KeyCode::Enter)));
    assert!(
        c.replay.time_ns() <= half && c.replay.time_ns() + 50_000 > half,
        "{}",
        c.replay.time_ns()
    );
    // Speed and play: playing moves the cursor by trace time.
    assert!(c.on_key(key(KeyCode::Char(']'))));
    assert_eq!(c.transport.speed_label(), "2×");
    assert!(c.on_key(key(KeyCode::Char(' '))));
    let before = c.replay.time_ns();
    assert!(c.tick(Duration::from_micros(10)));
    assert!(c.replay.time_ns() > before && c.replay.time_ns() <= before + 20_000);
    // Playing crosses quiet stretches: many small ticks add up even when no event
    // falls inside a single one.
    c.transport.playing = false;
    assert!(c.on_key(key(KeyCode::Char('0'))));
    assert!(c.on_key(key(KeyCode::Char(' '))));
    let ticks = c.replay.duration_ns() / 200 + 100;
    for _ in 0..ticks {
        c.tick(Duration::from_nanos(100));
    }
    assert_eq!(c.replay.position(), c.replay.len());
    assert!(!c.transport.playing, "playing stops at the end");
    // Keys that are not transport keys go to the views.
    assert!(!c.on_key(key(KeyCode::Char('j'))));
}

/// A stream with two boots: the Timeline and Logs views show where the second began.
#[test]
fn a_kernel_restart_is_marked_in_the_timeline_and_logs() {
    let g = generate(&SMALL);
    let logs: Vec<Message<'_>> = sample_messages()
        .into_iter()
        .filter(|m| matches!(m, Message::Callsite(_) | Message::TraceEvent(_)))
        .collect();
    let mut s = Session::new("unix:/tmp/lucid.sock".into(), Config::default());
    s.handle(IngestEvent::Connected);
    let irq = StreamId::new(1, Ring::Interrupt);
    for f in &g.frames[..g.frames.len() * 2 / 3] {
        s.feed(HostNs(1), f);
    }
    let log_frame = |ts: u64| frame(irq, 0, &logs.iter().map(|m| (ts, *m)).collect::<Vec<_>>());
    s.feed(HostNs(1), &log_frame(1_050_000));
    for f in &g.frames {
        s.feed(HostNs(2), f);
    }
    s.feed(HostNs(2), &log_frame(1_100_000));
    s.flush();
    assert_eq!(s.state.kernel_restarts, 1);
    let mut app = App::new(s);
    app.view = View::Logs;
    let logs = text_of(&render(&mut app, 120, 14));
    let marker = logs.find("kernel restarted: boot 2 begins").expect(&logs);
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("INFO")).collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(
        logs.find(lines[0]).unwrap() < marker && marker < logs.find(lines[1]).unwrap(),
        "{logs}"
    );
    app.view = View::Timeline;
    let whole = app.state().clock().ns(app.state().now() - first_ts(&app));
    app.timeline.span_ns = whole + 1000;
    let timeline = text_of(&render(&mut app, 120, 14));
    assert!(timeline.contains('↻'), "{timeline}");
    assert!(timeline.contains("kernel restarted at"), "{timeline}");
    // Task lanes: the same id in two boots is two tasks, the old one labelled so.
    app.on_key(key(KeyCode::Char('t')));
    let lanes = text_of(&render(&mut app, 120, 40));
    let old: Vec<&str> = lanes
        .lines()
        .filter_map(|l| l.strip_prefix("│b1 task "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(!old.is_empty(), "no lane of boot 1: {lanes}");
    assert!(
        old.iter().any(|id| lanes.contains(&format!("│{id} worker"))),
        "no task id has a lane in each boot: {lanes}"
    );
}

/// The fixture plus a named channel two idle tasks wait on (one to receive, one to
/// send), a join handle a third task waits on, and a wait on a resource created
/// before the console connected.
fn fixture_with_waits() -> (App, [TaskId; 3]) {
    use lucid_protocol::{Location, ResourceCreated, ResourceId, ResourceKind, WaitBegin, WaitOp};
    let (mut app, _) = fixture();
    let now = app.state().now().get();
    let mut idle: Vec<TaskId> = app
        .state()
        .tasks
        .values()
        .filter(|t| t.status == TaskStatus::Idle)
        .map(|t| t.id)
        .collect();
    idle.truncate(3);
    let [a, b, c] = idle[..] else {
        panic!("the fixture has three idle tasks: {idle:?}");
    };
    let at = Location {
        file: "kernel/src/workload.rs",
        line: 108,
        column: 33,
    };
    let created = |id, kind, name| {
        Message::ResourceCreated(ResourceCreated {
            id: ResourceId(id),
            kind,
            name,
            location: at,
            capacity: (kind == ResourceKind::Channel).then_some(1),
        })
    };
    let wait = |task, id, op| {
        Message::WaitBegin(WaitBegin {
            task,
            resource: ResourceId(id),
            op,
        })
    };
    let events = [
        (now + 6_000, created(12, ResourceKind::Channel, "ping")),
        (now + 6_000, created(13, ResourceKind::Join, "")),
        (now + 6_000, created(14, ResourceKind::Semaphore, "")),
        (now + 6_100, wait(a, 12, WaitOp::Recv)),
        (now + 6_200, wait(b, 12, WaitOp::Send)),
        (now + 6_300, wait(c, 99, WaitOp::Wait)),
        (
            now + 6_400,
            Message::ResourceOps(lucid_protocol::ResourceOps {
                id: ResourceId(12),
                op: WaitOp::Send,
                count: 40,
            }),
        ),
        (
            now + 6_400,
            Message::ResourceOps(lucid_protocol::ResourceOps {
                id: ResourceId(12),
                op: WaitOp::Recv,
                count: 39,
            }),
        ),
        (
            now + 6_500,
            Message::Holders(lucid_protocol::Holders {
                resource: ResourceId(12),
                tasks: [Some(c), None, None, None],
                unknown: 1,
            }),
        ),
        (now + 9_000, Message::RunQueueDepth { depth: 1 }),
    ];
    app.session
        .feed(HostNs(3), &frame(StreamId::new(0, Ring::Interrupt), 0, &events));
    app.session.flush();
    (app, [a, b, c])
}

#[test]
fn tasks_view_shows_what_each_task_waits_on() {
    let (mut app, [a, b, c]) = fixture_with_waits();
    for c in "/waiting".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    let rows: Vec<TaskId> = app.tasks.rows(app.state()).iter().map(|t| t.id).collect();
    assert_eq!(rows.len(), 3, "the filter keeps the waiting tasks");
    assert!(rows.contains(&a) && rows.contains(&b) && rows.contains(&c));
    // Sort by the Waiting column (one right of Self-wakes, which is right of Busy).
    for _ in 0..6 {
        app.on_key(key(KeyCode::Right));
    }
    assert_eq!(app.tasks.sort, tasks::Column::Waiting);
    let rows: Vec<TaskId> = app.tasks.rows(app.state()).iter().map(|t| t.id).collect();
    assert_eq!(rows, [a, b, c], "longest wait first");
    insta::assert_snapshot!(render(&mut app, 150, 14));
}

/// The list ordered from the keys the view keeps holds what the filter keeps, the
/// tasks it keeps for what they wait on included, in the order of a full sort; and
/// it follows the filter as it is typed.
#[test]
fn kept_keys_filter_as_the_full_pass_does() {
    let (mut app, [a, b, c]) = fixture_with_waits();
    for sort in [tasks::Column::Busy, tasks::Column::Id, tasks::Column::Total] {
        app.tasks.sort = sort;
        for filter in ["", "waiting", "chan", "send", "idle", "task", "zzz"] {
            app.tasks.filter = filter.into();
            let state = &app.session.state;
            let want: Vec<TaskId> = app.tasks.rows(state).iter().map(|t| t.id).collect();
            assert_eq!(app.tasks.kept_rows(state), want, "{sort:?} /{filter}");
            if filter == "waiting" {
                assert_eq!(want.len(), 3);
                assert!(want.contains(&a) && want.contains(&b) && want.contains(&c));
            }
        }
    }
}

/// Sorted by what tasks wait on, the list ordered from kept keys follows waits as
/// they begin, end and move to another resource (changes the task journal does not
/// see), in both directions and through filters, as a full sort does.
#[test]
fn the_waiting_order_follows_waits_as_they_begin_and_end() {
    use lucid_protocol::{ResourceId, WaitBegin, WaitEnd, WaitOp, WaitOutcome};
    let (mut app, [a, b, _]) = fixture_with_waits();
    let d = app
        .state()
        .tasks
        .values()
        .map(|t| t.id)
        .find(|&t| app.state().resources.current_wait(t).is_none())
        .expect("a task that does not wait");
    let begin = |task, id| {
        Message::WaitBegin(WaitBegin {
            task,
            resource: ResourceId(id),
            op: WaitOp::Acquire,
        })
    };
    let end = |task, id| {
        Message::WaitEnd(WaitEnd {
            task,
            resource: ResourceId(id),
            outcome: WaitOutcome::Ready,
        })
    };
    let steps = [
        vec![begin(d, 14)],
        vec![end(a, 12)],
        vec![end(b, 12), begin(b, 14)],
        vec![begin(a, 14), end(d, 14)],
    ];
    let views: Vec<(bool, &str)> = [false, true]
        .into_iter()
        .flat_map(|descending| ["", "waiting", "sem", "chan"].map(|f| (descending, f)))
        .collect();
    let mut kept: Vec<tasks::TasksView> = views.iter().map(|_| tasks::TasksView::default()).collect();
    let mut waiting_seen = Vec::new();
    for (seq, step) in std::iter::once(Vec::new()).chain(steps).enumerate() {
        if !step.is_empty() {
            let at = app.state().now().get() + 1_000;
            let events: Vec<(u64, Message)> = step.into_iter().map(|m| (at, m)).collect();
            let stream = StreamId::new(0, Ring::Interrupt);
            app.session.feed(HostNs(4), &frame(stream, seq as u32, &events));
            app.session.flush();
        }
        let state = &app.session.state;
        waiting_seen.push(state.resources.waits.len());
        for (&(descending, filter), view) in views.iter().zip(&mut kept) {
            view.sort = tasks::Column::Waiting;
            view.descending = descending;
            view.filter = filter.into();
            let want: Vec<TaskId> = view.rows(state).iter().map(|t| t.id).collect();
            assert_eq!(
                view.kept_rows(state),
                want,
                "step {seq} /{filter} descending={descending}"
            );
        }
    }
    assert!(
        waiting_seen.windows(2).any(|w| w[0] != w[1]),
        "waits began and ended: {waiting_seen:?}"
    );
}

#[test]
fn resources_view_lists_waiters_and_enter_opens_them() {
    let (mut app, [a, b, _]) = fixture_with_waits();
    app.on_key(key(KeyCode::Char('8')));
    assert_eq!(app.view, View::Resources);
    // Most waiters first: the channel.
    assert_eq!(
        app.resources.selected_resource(app.state()),
        Some(lucid_protocol::ResourceId(12))
    );
    app.on_key(key(KeyCode::Enter));
    let screen = render(&mut app, 120, 20);
    let text = text_of(&screen);
    assert!(
        text.contains(&format!("task {a}")) && text.contains(&format!("task {b}")),
        "{text}"
    );
    let (_, [_, _, c]) = fixture_with_waits();
    assert!(
        text.contains(&format!("senders held by: task {c}")) && text.contains("1 unknown"),
        "{text}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn w_on_a_waiting_task_shows_its_resource_with_its_waiters() {
    let (mut app, [_, b, _]) = fixture_with_waits();
    // Select b (waiting on chan#12 send) in the Tasks view.
    let row = app
        .tasks
        .rows(app.state())
        .iter()
        .position(|t| t.id == b)
        .expect("b is listed");
    for _ in 0..row {
        app.on_key(key(KeyCode::Down));
    }
    app.on_key(key(KeyCode::Char('w')));
    assert_eq!(app.view, View::Resources);
    assert_eq!(
        app.resources.selected_resource(app.state()),
        Some(lucid_protocol::ResourceId(12))
    );
    assert!(app.resources.open, "its waiters are listed");
}

#[test]
fn task_detail_shows_the_current_wait() {
    use lucid_protocol::{ResourceId, ResourceKind, WaitBegin, WaitOp};
    let (mut app, [a, ..]) = fixture_with_waits();
    app.detail.task = Some(a);
    app.view = View::TaskDetail;
    let text = text_of(&render(&mut app, 120, 34));
    assert!(text.contains("idle, waiting on chan#12 ping recv"), "{text}");
    assert!(text.contains("no wait ended yet"), "{text}");
    // A wait on the semaphore that ends: its time is parked on it.
    let t0 = app.state().now().0 + 1_000;
    let events = [
        (
            t0,
            Message::WaitBegin(WaitBegin {
                task: a,
                resource: ResourceId(14),
                op: WaitOp::Acquire,
            }),
        ),
        (
            t0 + 5_000,
            Message::WaitEnd(lucid_protocol::WaitEnd {
                task: a,
                resource: ResourceId(14),
                outcome: lucid_protocol::WaitOutcome::Ready,
            }),
        ),
    ];
    app.session
        .feed(HostNs(4), &frame(StreamId::new(0, Ring::Interrupt), 1, &events));
    app.session.flush();
    let text = text_of(&render(&mut app, 120, 34));
    let sem = ResourceKind::Semaphore.name();
    assert!(text.lines().any(|l| l.contains("×1") && l.contains(sem)), "{text}");
}

/// A session fed `events` per CPU stream (CPU i gets `per_cpu[i]`), merged and flushed.
fn session_of(per_cpu: &[Vec<(u64, Message<'_>)>]) -> Session {
    let mut s = Session::new("test".into(), Config::default());
    s.handle(IngestEvent::Connected);
    for (cpu, events) in per_cpu.iter().enumerate() {
        s.feed(HostNs(1), &frame(StreamId::new(cpu as u32, Ring::Task), 0, events));
    }
    s.flush();
    s
}

#[test]
fn scheduler_view_sums_busy_time_past_the_tick_range_without_overflow() {
    // Two tasks of one spawn location, each busy for more than half the tick range
    // (on two CPUs, so both polls overlap): their sum does not fit in a u64.
    let spawned = sample_messages()
        .into_iter()
        .find_map(|m| match m {
            Message::TaskSpawned(t) => Some(t),
            _ => None,
        })
        .expect("a spawn sample");
    let busy = |task, start: u64| {
        vec![
            (
                start,
                Message::TaskSpawned(lucid_protocol::TaskSpawned { task, ..spawned }),
            ),
            (start, Message::PollStart { task }),
            (
                start + (1 << 63) + 100,
                Message::PollEnd {
                    task,
                    result: lucid_protocol::PollResult::Pending,
                },
            ),
        ]
    };
    let mut app = App::new(session_of(&[busy(TaskId(1), 1), busy(TaskId(2), 2)]));
    assert_eq!(app.state().tasks.len(), 2);
    app.view = View::Scheduler;
    let screen = format!("{:?}", render(&mut app, 120, 30).buffer());
    assert!(screen.contains("Scheduler"), "{screen}");
}

#[test]
fn task_detail_of_a_task_spawned_at_the_last_tick() {
    let spawned = sample_messages()
        .into_iter()
        .find_map(|m| match m {
            Message::TaskSpawned(t) => Some(t),
            _ => None,
        })
        .expect("a spawn sample");
    let task = spawned.task;
    let poll = |m| (u64::MAX, m);
    let mut app = App::new(session_of(&[vec![
        poll(Message::TaskSpawned(spawned)),
        poll(Message::PollStart { task }),
        poll(Message::PollEnd {
            task,
            result: lucid_protocol::PollResult::Pending,
        }),
    ]]));
    assert_eq!(app.state().tasks[&task].spawned_ts, Ticks::MAX);
    app.detail.task = Some(task);
    app.view = View::TaskDetail;
    let screen = format!("{:?}", render(&mut app, 120, 30).buffer());
    assert!(screen.contains("Polls over its lifetime"), "{screen}");
}

#[test]
fn timeline_task_lanes_draw_waits_as_bars_and_wakers() {
    use lucid_protocol::{PollResult, ResourceId, WaitBegin, WaitEnd, WaitOp, WaitOutcome};
    let (mut app, [a, b, _]) = fixture_with_waits();
    let now = app.state().now().get();
    let events = [
        (now + 1_000, Message::PollStart { task: a }),
        (
            now + 1_050,
            Message::PollEnd {
                task: a,
                result: PollResult::Pending,
            },
        ),
        (
            now + 1_200,
            Message::WaitEnd(WaitEnd {
                task: a,
                resource: ResourceId(12),
                outcome: WaitOutcome::Ready,
            }),
        ),
        (
            now + 30_000,
            Message::WaitBegin(WaitBegin {
                task: a,
                resource: ResourceId(12),
                op: WaitOp::Recv,
            }),
        ),
        (now + 44_000, Message::PollStart { task: b }),
        (
            now + 45_000,
            Message::Wake {
                task: a,
                waker: lucid_protocol::Waker::Task(b),
                by_ref: false,
                self_wake: false,
            },
        ),
        (
            now + 46_000,
            Message::PollEnd {
                task: b,
                result: PollResult::Pending,
            },
        ),
        (
            now + 60_000,
            Message::WaitEnd(WaitEnd {
                task: a,
                resource: ResourceId(12),
                outcome: WaitOutcome::Ready,
            }),
        ),
        (now + 60_010, Message::PollStart { task: a }),
        (
            now + 60_100,
            Message::PollEnd {
                task: a,
                result: PollResult::Pending,
            },
        ),
    ];
    app.session
        .feed(HostNs(4), &frame(StreamId::new(0, Ring::Interrupt), 1, &events));
    app.session.flush();
    assert_eq!(app.state().wait_marks.len(), 2, "two waits of task {a} ended");
    app.view = View::Timeline;
    app.timeline.span_ns = 100_000;
    app.timeline.end = Some(Ticks(now + 61_000));
    app.on_key(key(KeyCode::Char('t')));
    let text = text_of(&render(&mut app, 120, 16));
    let lane = text
        .lines()
        .find(|l| l.contains(&format!("{a} ")))
        .unwrap_or_else(|| panic!("a lane for task {a}: {text}"));
    assert!(lane.contains("───"), "the wait from +30000 to +60000 is a bar: {text}");
    let waker = text
        .lines()
        .find(|l| l.contains(&format!("{b} ")))
        .unwrap_or_else(|| panic!("a lane for task {b}: {text}"));
    assert!(waker.contains('▼'), "task {b} woke task {a}: {text}");
}
