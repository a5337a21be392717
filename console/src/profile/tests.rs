use lucid_protocol::testdata::{Workload, generate};

use super::*;
use crate::replay::tests::TempDir;
use crate::state::Config;
use crate::window::{Window, scan};

fn recording(dir: &TempDir) -> std::path::PathBuf {
    dir.file(
        "p.lucid",
        &generate(&Workload {
            cpus: 3,
            tasks: 200,
            polls_per_task: 4,
            wasm_instances: 1,
            loss: 0,
            frame_buffer: 512,
            seed: 21,
            ..Workload::default()
        })
        .recording(800),
    )
}

fn profile(path: &std::path::Path, window: Window, top: usize) -> (Profile, crate::window::Scan) {
    let (p, scan) = scan(path, Config::default(), window, |s| {
        Profiler::new(s.state, s.from_ts, top)
    })
    .expect("scan");
    let prof = p.finish(scan.end.clock(), scan.origin_ts, (scan.from_ts, scan.to_ts));
    (prof, scan)
}

#[test]
fn whole_recording_matches_the_state_model() {
    let dir = TempDir::new();
    let path = recording(&dir);
    let (p, scan) = profile(&path, Window::default(), 5);
    let s = &scan.end;
    assert_eq!(p.tasks.len(), s.tasks.values().filter(|t| t.polls > 0).count());
    for t in &p.tasks {
        let st = &s.tasks[&t.task];
        assert_eq!(t.polls, st.polls, "task {}", t.task);
        assert_eq!(t.busy_ns, s.clock().ns(Ticks(st.busy_ticks.get())), "task {}", t.task);
        assert_eq!(
            t.max_poll_ns,
            s.clock().ns(Ticks(st.poll_hist.max())),
            "task {}",
            t.task
        );
        assert_eq!(t.location, st.location);
    }
    let cpu_busy: u64 = s.cpus.values().map(|c| c.busy_ticks.get()).sum();
    assert_eq!(p.busy_ns, s.clock().ns(Ticks(cpu_busy)));
    for c in &p.cpus {
        assert_eq!(c.steals_in, s.cpus[&c.cpu].steals_in);
        assert_eq!(c.steals_out, s.cpus[&c.cpu].steals_out);
        assert!((0.0..=1.0).contains(&c.utilization), "{}", c.utilization);
    }
    let share: f64 = p.tasks.iter().map(|t| t.cpu_share).sum();
    assert!(share > 0.0 && share <= 1.0, "{share}");
    // Locations add up to the tasks.
    let loc_busy: u64 = p.locations.iter().map(|l| l.busy_ns).sum();
    let task_busy: u64 = p.tasks.iter().map(|t| t.busy_ns).sum();
    assert!(
        loc_busy.abs_diff(task_busy) <= p.tasks.len() as u64,
        "{loc_busy} {task_busy}"
    );
}

#[test]
fn longest_polls_are_the_top_n_longest_first() {
    let dir = TempDir::new();
    let path = recording(&dir);
    let (p, _) = profile(&path, Window::default(), 7);
    assert_eq!(p.longest_polls.len(), 7);
    assert!(p.longest_polls.windows(2).all(|w| w[0].duration_ns >= w[1].duration_ns));
    let max = p.tasks.iter().map(|t| t.max_poll_ns).max().expect("tasks");
    assert_eq!(p.longest_polls[0].duration_ns, max);
    let text = p.to_text(3);
    assert!(
        text.contains("longest polls") && text.contains("spawn locations"),
        "{text}"
    );
}

#[test]
fn a_window_only_counts_polls_inside_it() {
    let dir = TempDir::new();
    let path = recording(&dir);
    let (whole, _) = profile(&path, Window::default(), 1000);
    let span = whole.to_ns - whole.from_ns;
    let w = Window {
        from_ns: Some(span / 4),
        to_ns: Some(span / 2),
    };
    let (part, _) = profile(&path, w, 1000);
    // ns → ticks → ns rounds down by at most a tick.
    assert!(
        part.from_ns.abs_diff(span / 4) <= 1 && part.to_ns.abs_diff(span / 2) <= 1,
        "{part:?}"
    );
    assert!(part.busy_ns > 0 && part.busy_ns < whole.busy_ns);
    for lp in &part.longest_polls {
        assert!(
            lp.at_ns + 1 >= span / 4 && lp.at_ns + lp.duration_ns <= span / 2 + 1,
            "{lp:?}"
        );
    }
}
