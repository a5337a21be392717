//! Console ingest and render cost: events per second decoded, put in time order and
//! folded into the state model on one thread (and with decoding and ordering on a
//! second thread), the heap the state model holds per
//! retained task, and the time to draw each view with 10k tasks; with `--million`,
//! the same at a million live tasks with distinct names.
//!
//! `cargo run --release -p lucid-console --example ingest_render [-- --json] [--million]`
//!
//! With `--json` it prints one JSON object per row (name, lucid, unit) for
//! `cargo xtask bench`.

use std::alloc::System;
use std::time::{Duration, Instant};

use cap::Cap;
use lucid_console::live::Session;
use lucid_console::state::{Config, MAX_TASKS};
use lucid_console::time::HostNs;
use lucid_console::ui::tasks::Column;
use lucid_console::ui::{App, View, draw};
use lucid_protocol::TaskId;
use lucid_protocol::testdata::{Workload, generate};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The system allocator, counting the bytes live on the heap.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn row(json: bool, name: &str, v: f64, unit: &str) {
    if json {
        println!(r#"{{"name":"{name}","lucid":{v:.3},"unit":"{unit}"}}"#);
    }
}

/// A million tasks, alive at the end (each polled twice, parked), with names of their
/// own: one ingest of the whole stream, the heap held per task, and each view's
/// frame once the first frame after the ingest has been drawn (what a user scrolling
/// a live session waits for).
fn million(json: bool) {
    const TASKS: u64 = 1_000_000;
    let t = Instant::now();
    let g = generate(&Workload {
        cpus: 4,
        tasks: TASKS,
        polls_per_task: 2,
        wasm_instances: 0,
        live: true,
        distinct_names: true,
        ..Workload::default()
    });
    let wire = g.wire();
    let events = g.events();
    eprintln!(
        "1m: generated {events} events, {} bytes in {:.1} s",
        wire.len(),
        t.elapsed().as_secs_f64()
    );
    let config = Config {
        max_tasks: MAX_TASKS.max(2 * TASKS as usize),
        ..Config::default()
    };
    let before = ALLOCATOR.allocated();
    let start = Instant::now();
    let mut s = Session::new("bench".into(), config);
    for chunk in wire.chunks(64 * 1024) {
        s.feed(HostNs(0), chunk);
    }
    s.flush();
    let secs = start.elapsed().as_secs_f64();
    let held = ALLOCATOR.allocated().saturating_sub(before);
    let tasks = s.state.tasks.len();
    assert_eq!(tasks as u64, TASKS, "every task is held");
    let per_s = events as f64 / secs;
    let per_task = held as f64 / tasks as f64;
    row(json, "console.tasks_1m.ingest_events_per_s", per_s, "events/s");
    row(json, "console.tasks_1m.bytes_per_task", per_task, "B/task");
    eprintln!(
        "1m: ingest {:.2} M events/s, {tasks} tasks, {per_task:.0} B per task",
        per_s / 1e6
    );
    let slowest = render_rows(
        json,
        s,
        "console.tasks_1m.render",
        3,
        Some("console.tasks_1m.first_frame"),
    );
    let live = live_rows(json, &wire, config);
    row(json, "console.tasks_1m.slowest_view_ms", slowest.max(live), "ms/frame");
}

/// Frames while input arrives: the stream but its last 8 MiB ingested and every
/// kept order built, then the rest fed a MiB at a time (about 13k new tasks and 75k
/// events, what a frame of a live session at 2 M events/s sees), the task list and
/// the scheduler view drawn after each. Rows `console.tasks_1m.render.{view}_live`
/// of the mean frame time; returns the slower view's.
fn live_rows(json: bool, wire: &[u8], config: Config) -> f64 {
    const STEP: usize = 1 << 20;
    let cut = wire.len().saturating_sub(8 * STEP);
    let mut s = Session::new("bench".into(), config);
    for chunk in wire[..cut].chunks(64 * 1024) {
        s.feed(HostNs(0), chunk);
    }
    let mut app = App::new(s);
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    let views = [("tasks_live", View::Tasks), ("scheduler_live", View::Scheduler)];
    for (_, view) in views {
        app.view = view;
        terminal.draw(|f| draw(f, &mut app)).expect("draw");
    }
    let mut spent = [Duration::ZERO; 2];
    let mut frames = 0u32;
    for chunk in wire[cut..].chunks(STEP) {
        app.session.feed(HostNs(0), chunk);
        for ((_, view), spent) in views.iter().zip(&mut spent) {
            app.view = *view;
            let t = Instant::now();
            terminal.draw(|f| draw(f, &mut app)).expect("draw");
            *spent += t.elapsed();
        }
        frames += 1;
    }
    let mut slowest = 0f64;
    for ((name, _), spent) in views.iter().zip(spent) {
        let ms = spent.as_secs_f64() * 1e3 / f64::from(frames.max(1));
        slowest = slowest.max(ms);
        row(json, &format!("console.tasks_1m.render.{name}"), ms, "ms/frame");
        eprintln!(
            "console.tasks_1m.render: {name:<13} {ms:>8.2} ms/frame ({frames} frames, a MiB of input before each)"
        );
    }
    slowest
}

/// Draws every view of `session`, and the task list sorted by name and by what tasks
/// wait on, `frames` times
/// (after a first frame if `first` names its rows `{first}.{view}`) on a 200×50
/// terminal, as rows `{prefix}.{view}` of the mean frame time; returns the slowest
/// view's.
fn render_rows(json: bool, session: Session, prefix: &str, frames: u32, first: Option<&str>) -> f64 {
    let mut app = App::new(session);
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    app.detail.task = Some(TaskId(1));
    let mut slowest = 0f64;
    // Every view as it opens, and the task list sorted by a text column.
    let screens = View::ALL
        .into_iter()
        .map(|view| (view.title().to_lowercase().replace(' ', "_"), view, Column::Busy, ""))
        .chain([
            ("tasks_by_name".to_string(), View::Tasks, Column::Name, ""),
            // What tasks wait on: the resources' state, outside the task journal.
            ("tasks_by_waiting".to_string(), View::Tasks, Column::Waiting, ""),
            // A filter that keeps few tasks: the kept order by name is walked far to
            // fill the window.
            ("tasks_by_name_filtered".to_string(), View::Tasks, Column::Name, "-4242"),
        ]);
    for (name, view, sort, filter) in screens {
        app.view = view;
        app.tasks.sort = sort;
        filter.clone_into(&mut app.tasks.filter);
        if let Some(first) = first {
            // The first frame keys every task again (the views keep what they
            // derive from tasks across frames, so later frames revisit only the
            // tasks that changed): what a sort change or a seek costs.
            let t = Instant::now();
            terminal.draw(|f| draw(f, &mut app)).expect("draw");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            row(json, &format!("{first}.{name}"), ms, "ms/frame");
            eprintln!("{first}: {name:<13} {ms:>8.2} ms/frame");
        }
        let t = Instant::now();
        for _ in 0..frames {
            terminal.draw(|f| draw(f, &mut app)).expect("draw");
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / f64::from(frames);
        slowest = slowest.max(ms);
        row(json, &format!("{prefix}.{name}"), ms, "ms/frame");
        eprintln!("{prefix}: {name:<13} {ms:>8.2} ms/frame");
    }
    slowest
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    if std::env::args().any(|a| a == "--million") {
        million(json);
    }
    let g = generate(&Workload {
        cpus: 4,
        tasks: 10_000,
        polls_per_task: 5,
        wasm_instances: 4,
        ..Workload::default()
    });
    let wire = g.wire();
    let events = g.events();

    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_secs(2) || rounds == 0 {
        let mut s = Session::new("bench".into(), Config::default());
        for chunk in wire.chunks(64 * 1024) {
            s.feed(HostNs(0), chunk);
        }
        // End of input: what the merge still holds goes to the state too.
        s.flush();
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_s = (events * rounds) as f64 / secs;
    row(json, "console.ingest_events_per_s", per_s, "events/s");
    eprintln!(
        "ingest: {:.2} M events/s ({:.1} MB/s), {events} events of {} bytes per round, {rounds} rounds",
        (events * rounds) as f64 / secs / 1e6,
        (wire.len() as u64 * rounds) as f64 / secs / 1e6,
        wire.len()
    );

    // The same with decoding and ordering on a thread of their own, the state model
    // on this one (`lucid live --ingest-threads 2`).
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_secs(2) || rounds == 0 {
        let mut s = Session::with_worker("bench".into(), Config::default()).expect("a thread");
        for chunk in wire.chunks(64 * 1024) {
            s.feed(HostNs(0), chunk);
        }
        s.flush();
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    row(
        json,
        "console.ingest_events_per_s_2threads",
        (events * rounds) as f64 / secs,
        "events/s",
    );
    eprintln!(
        "ingest on 2 threads: {:.2} M events/s, {rounds} rounds",
        (events * rounds) as f64 / secs / 1e6
    );

    // Everything the session holds once the workload is in: every task has completed
    // within the retention window (60 s of trace time by default), so all are kept.
    let before = ALLOCATOR.allocated();
    let mut s = Session::new("bench".into(), Config::default());
    s.feed(HostNs(0), &wire);
    s.flush();
    let held = ALLOCATOR.allocated().saturating_sub(before);
    let tasks = s.state.tasks.len();
    let per_task = held as f64 / tasks.max(1) as f64;
    row(json, "console.memory_per_retained_task_bytes", per_task, "B/task");
    eprintln!("state: {tasks} tasks, {held} heap bytes held ({per_task:.0} B per task, everything included)");
    render_rows(json, s, "console.render_10k_tasks", 20, None);
}
