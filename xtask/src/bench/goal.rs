//! The goals of issues 8, 17 and 18: which rows are held to a bound, and whether a row
//! meets it.

/// A bound on the Lucid figure, or on the ratio Lucid / anchor.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
    RatioAtMost(f64),
    RatioAtLeast(f64),
}

impl Goal {
    pub fn text(self) -> String {
        match self {
            Goal::AtMost(v) => format!("<= {v}"),
            Goal::AtLeast(v) => format!(">= {v}"),
            Goal::RatioAtMost(v) => format!("ratio <= {v}"),
            Goal::RatioAtLeast(v) => format!("ratio >= {v}"),
        }
    }

    /// Whether a row with these figures meets the goal (`None`: a figure it needs is missing).
    pub fn met(self, lucid: Option<f64>, ratio: Option<f64>) -> Option<bool> {
        Some(match self {
            Goal::AtMost(v) => lucid? <= v,
            Goal::AtLeast(v) => lucid? >= v,
            Goal::RatioAtMost(v) => ratio? <= v,
            Goal::RatioAtLeast(v) => ratio? >= v,
        })
    }
}

/// The goals of issue 8 that rows of this benchmark can be held to.
pub fn goal_for(name: &str) -> Option<Goal> {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if name == "trace.ping_pong.overhead_ns_per_poll" {
        // Issue 17: "Trace overhead, producer + drain: … ≤ 40 ns/poll on ping_pong".
        Some(Goal::AtMost(40.0))
    } else if name.starts_with("trace.") && leaf == "overhead_ns_per_poll" {
        // Issue 17: "… ≤ 25 ns/poll on spawn_join" (and issue 8's bound for any other).
        Some(Goal::AtMost(25.0))
    } else if matches!(
        name,
        "spawn_join.1cpu.tasks_per_s"
            | "spawn_join.2cpu.tasks_per_s"
            | "ping_pong.1cpu.msgs_per_s"
            | "ping_pong.2cpu.msgs_per_s"
    ) {
        // Issue 17: "Executor ≥ 1.0× tokio on all four throughput rows".
        Some(Goal::RatioAtLeast(1.0))
    } else if name.starts_with("trace.") && leaf == "clock_reads_per_poll" {
        // Issue 17: "≤ 1.2 clock reads per poll reported as a row".
        Some(Goal::AtMost(1.2))
    } else if name.starts_with("trace.") && leaf == "paused_overhead_ns_per_poll" {
        // Issue 17: "Paused trace: ≤ 3 ns/poll over bare".
        Some(Goal::AtMost(3.0))
    } else if name.starts_with("bytes.") && matches!(leaf, "poll_start" | "poll_end" | "poll_start_end_avg") {
        // "Goal ≤ 8 B per PollStart/PollEnd."
        Some(Goal::AtMost(8.0))
    } else if name == "console.memory_per_retained_task_bytes" {
        // "console memory per retained task … ≤ 1 KiB per retained task."
        Some(Goal::AtMost(1024.0))
    } else if name == "console.ingest_events_per_s" {
        // "Goals: ≥ 20 M events/s … frame < 16 ms."
        Some(Goal::AtLeast(20e6))
    } else if name.starts_with("console.render_10k_tasks.") {
        Some(Goal::AtMost(16.0))
    } else if name == "console.tasks_1m.ingest_events_per_s" {
        // Issue 20: "With 1 M live tasks (distinct names) the console ingests at
        // ≥ 5 M events/s, holds ≤ 1 KiB per retained task, and every view draws a
        // frame in ≤ 16 ms".
        Some(Goal::AtLeast(5e6))
    } else if name == "console.tasks_1m.bytes_per_task" {
        Some(Goal::AtMost(1024.0))
    } else if name == "console.tasks_1m.slowest_view_ms" || name.starts_with("console.tasks_1m.render.") {
        Some(Goal::AtMost(16.0))
    } else if name == "e2e.trace_vs_link" {
        // Issue 8, row 3: "the highest event rate the kernel sustains … vs the raw
        // link rate … Goal ≥ 50% of link."
        Some(Goal::AtLeast(0.5))
    } else if name.starts_with("trace.") && leaf == "overhead_vs_console_subscriber" {
        // Issue 17: "Lucid overhead ÷ console-subscriber overhead ≤ 0.01 on both
        // workloads, like for like" (console-subscriber without its resource
        // instrumentation; the figure with it is reported beside, without a goal).
        Some(Goal::RatioAtMost(0.01))
    } else if name == "kernel.trace_bench.dropped_events" {
        // Issue 17: "`trace.dropped_events` must be 0 or the trace rows fail" (the
        // in-QEMU rows compare a recording that lost nothing).
        Some(Goal::AtMost(0.0))
    } else if name == "wait.not_taken.ns" {
        // Issue 18: "the cost of a wait that does not happen (≤ 3 ns)".
        Some(Goal::AtMost(3.0))
    } else if matches!(name, "wasm.guest_vs_native" | "wasm.rust_guest_vs_native") {
        // Issue 16: "`wasm.guest_vs_native` ≤ 2.5 and a new row for a Rust guest vs
        // the same Rust code compiled for the kernel".
        Some(Goal::AtMost(2.5))
    } else if name == "console.replay_seek_max_ms" {
        // Issue 20: "seeks anywhere in a 1 GiB recording in ≤ 30 ms (max of 40
        // random seeks)" (issue 7 asked for < 100 ms). `--quick` measures a 64 MiB
        // file against the same bound.
        Some(Goal::AtMost(30.0))
    } else if name == "console.replay_index_size_pct" {
        // Issue 20: "the index is ≤ 10 % of the recording".
        Some(Goal::AtMost(10.0))
    } else if name == "console.replay_index_build_mib_per_s" {
        // Issue 20: "builds at ≥ 100 MiB/s".
        Some(Goal::AtLeast(100.0))
    } else if name == "console.replay_open_indexed_ms" {
        // Issue 20: "opens in ≤ 5 ms".
        Some(Goal::AtMost(5.0))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_apply_to_the_rows_issue_8_names() {
        let bound = |name: &str| goal_for(name).map(Goal::text);
        let bound = |name: &str| bound(name).map(|t| t.trim_start_matches("<= ").parse::<f64>().unwrap_or(f64::NAN));
        assert_eq!(bound("trace.spawn_join.overhead_ns_per_poll"), Some(25.0));
        assert_eq!(bound("trace.ping_pong.overhead_ns_per_poll"), Some(40.0));
        assert_eq!(bound("trace.ping_pong.clock_reads_per_poll"), Some(1.2));
        assert_eq!(bound("trace.spawn_join.paused_overhead_ns_per_poll"), Some(3.0));
        assert_eq!(bound("trace.spawn_join.producer_overhead_ns_per_poll"), None);
        assert_eq!(bound("trace.spawn_join.drain_ns_per_event"), None);
        assert_eq!(bound("bytes.spawn_join.poll_start"), Some(8.0));
        assert_eq!(bound("bytes.spawn_join.poll_end"), Some(8.0));
        assert_eq!(bound("bytes.ping_pong.poll_start_end_avg"), Some(8.0));
        assert_eq!(bound("trace.spawn_join.noop_hooks_overhead_ns_per_poll"), None);
        assert_eq!(bound("bytes.spawn_join.per_poll"), None);
        assert_eq!(bound("bytes.spawn_join.task_spawned"), None);
        assert_eq!(bound("spawn_join.1cpu.ns_per_poll"), None);
        let tokio = goal_for("ping_pong.2cpu.msgs_per_s").expect("a goal");
        assert_eq!(tokio.met(Some(7e6), Some(1.05)), Some(true));
        assert_eq!(tokio.met(Some(4e6), Some(0.5)), Some(false));
        assert!(goal_for("spawn_join.2cpu.tasks_per_s").is_some());
        assert_eq!(bound("wait.not_taken.ns"), Some(3.0));
        assert_eq!(bound("wait.taken.ns"), None);
        let console = goal_for("console.ingest_events_per_s").expect("a goal");
        let met = |g: Goal, lucid: f64| g.met(Some(lucid), None) == Some(true);
        assert!(goal_for("kernel.trace_bench.dropped_events").is_some_and(|g| met(g, 0.0) && !met(g, 1.0)));
        assert!(goal_for("kernel.spawn_join.traced_vs_off").is_none());
        assert!(
            met(console, 25e6) && !met(console, 5e6),
            "the ingest goal is a lower bound"
        );
        assert!(goal_for("console.render_10k_tasks.tasks").is_some_and(|g| met(g, 2.0) && !met(g, 20.0)));
        assert!(goal_for("console.tasks_1m.ingest_events_per_s").is_some_and(|g| met(g, 6e6) && !met(g, 4e6)));
        assert!(goal_for("console.tasks_1m.bytes_per_task").is_some_and(|g| met(g, 900.0) && !met(g, 1100.0)));
        assert!(goal_for("console.tasks_1m.slowest_view_ms").is_some_and(|g| met(g, 10.0) && !met(g, 20.0)));
        assert!(goal_for("console.tasks_1m.render.tasks").is_some_and(|g| !met(g, 20.0)));
        assert!(goal_for("console.replay_seek_max_ms").is_some_and(|g| met(g, 25.0) && !met(g, 60.0)));
        assert!(goal_for("console.replay_index_size_pct").is_some_and(|g| met(g, 8.0) && !met(g, 98.0)));
        assert!(goal_for("console.replay_index_build_mib_per_s").is_some_and(|g| met(g, 120.0) && !met(g, 15.0)));
        assert!(goal_for("console.replay_open_indexed_ms").is_some_and(|g| met(g, 1.0) && !met(g, 6.0)));
        assert!(goal_for("console.replay_seek_p50_ms").is_none());
        assert!(goal_for("e2e.trace_vs_link").is_some_and(|g| met(g, 0.6) && !met(g, 0.3)));
        assert!(goal_for("e2e.trace_mib_per_s").is_none());
        assert!(goal_for("console.memory_per_retained_task_bytes").is_some_and(|g| met(g, 900.0) && !met(g, 2000.0)));
        assert!(goal_for("e2e.link_raw_mib_per_s").is_none());

        // 1/100 of console-subscriber's overhead bounds the ratio, whatever the figures.
        let vs = goal_for("trace.spawn_join.overhead_vs_console_subscriber").expect("a goal");
        assert_eq!(vs.met(Some(400.0), Some(0.01)), Some(true));
        assert_eq!(vs.met(Some(10.0), Some(0.015)), Some(false));
        assert!(goal_for("trace.spawn_join.overhead_vs_console_subscriber_all").is_none());
        assert_eq!(vs.met(Some(10.0), Some(0.5)), Some(false));
        assert_eq!(vs.met(Some(10.0), None), None);
        assert!(goal_for("trace.ping_pong.overhead_vs_console_subscriber").is_some());
        assert!(goal_for("anchor.console_subscriber.spawn_join.overhead_ns_per_poll").is_none());
        assert!(goal_for("bytes.spawn_join.per_poll_vs_console_recording").is_none());
    }
}
