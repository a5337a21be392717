//! Per-CPU utilisation and run-queue depth over time, steals, and hotspots: tasks and
//! spawn locations ranked by busy time, longest poll or p99 scheduling latency.

use std::collections::BTreeMap;

mod hotspots;

use hotspots::Hotspots;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table};

use super::{Action, dur, spark};
use crate::state::{State, Task};
use crate::time::Ticks;

/// How hotspots are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ranking {
    /// Total busy time.
    #[default]
    Busy,
    /// Longest single poll.
    LongestPoll,
    /// p99 wake → poll latency.
    SchedP99,
}

impl Ranking {
    const fn name(self) -> &'static str {
        match self {
            Self::Busy => "busy time",
            Self::LongestPoll => "longest poll",
            Self::SchedP99 => "p99 scheduled latency",
        }
    }

    const fn next(self) -> Self {
        match self {
            Self::Busy => Self::LongestPoll,
            Self::LongestPoll => Self::SchedP99,
            Self::SchedP99 => Self::Busy,
        }
    }

    /// The key `t` ranks by at `now`, from the task itself (what the kept spots
    /// must agree with).
    #[cfg(test)]
    fn key(self, t: &Task, now: Ticks) -> Ticks {
        match self {
            Self::Busy => t.busy_ticks_at(now),
            Self::LongestPoll => Ticks(t.poll_hist.max()),
            Self::SchedP99 => Ticks(t.sched_hist.quantile(0.99)),
        }
    }
}

/// State of the scheduler view.
#[derive(Debug, Clone, Default)]
pub struct SchedulerView {
    /// Hotspot ranking.
    pub ranking: Ranking,
    /// What the hotspot panes show of every task, kept across frames.
    hotspots: Hotspots,
}

impl SchedulerView {
    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.code == KeyCode::Char('s') {
            self.ranking = self.ranking.next();
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let cpus = u16::try_from(state.cpus.len()).unwrap_or(u16::MAX);
        let [top, bottom] =
            Layout::vertical([Constraint::Length(cpus.saturating_add(3)), Constraint::Min(4)]).areas(area);
        render_cpus(f, top, state);
        let [tasks, locations] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
        // One pass over what is kept of every task for both panes.
        self.hotspots.sync(self.ranking, state);
        let ranked = self.hotspots.ranked(state, usize::from(tasks.height.saturating_sub(3)));
        self.render_tasks(f, tasks, state, ranked.tasks);
        self.render_locations(f, locations, state, ranked.locations);
    }

    /// Draws the top tasks (`ranked`: best first, as many as fit).
    fn render_tasks(&self, f: &mut Frame<'_>, area: Rect, state: &State, ranked: Vec<(Ticks, &Task)>) {
        let now = state.now();
        let rows = ranked.iter().map(|&(_, t)| {
            Row::new(vec![
                Cell::from(t.id.to_string()),
                Cell::from(t.display_name()),
                Cell::from(dur(state, t.busy_ticks_at(now))),
                Cell::from(t.polls.to_string()),
                Cell::from(dur(state, Ticks(t.poll_hist.quantile(0.99)))),
                Cell::from(dur(state, Ticks(t.poll_hist.max()))),
                Cell::from(dur(state, Ticks(t.sched_hist.quantile(0.99)))),
            ])
        });
        let title = format!(" Hotspot tasks by {} (s cycles) ", self.ranking.name());
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(6),
                    Constraint::Min(8),
                    Constraint::Length(8),
                    Constraint::Length(6),
                    Constraint::Length(8),
                    Constraint::Length(8),
                    Constraint::Length(8),
                ],
            )
            .header(bold_row([
                "ID", "Name", "Busy", "Polls", "P99Poll", "MaxPoll", "SchedP99",
            ]))
            .block(Block::bordered().title(title)),
            area,
        );
    }

    fn render_locations(&self, f: &mut Frame<'_>, area: Rect, state: &State, by_loc: BTreeMap<&str, LocationSums>) {
        let mut ranked: Vec<_> = by_loc.into_iter().collect();
        let key = |v: &LocationSums| match self.ranking {
            Ranking::Busy => v.1,
            Ranking::LongestPoll => v.2,
            Ranking::SchedP99 => v.3,
        };
        ranked.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(b.0)));
        let rows = ranked
            .iter()
            .take(usize::from(area.height.saturating_sub(3)))
            .map(|(loc, v)| {
                Row::new(vec![
                    Cell::from(if loc.is_empty() { "?" } else { loc }.to_string()),
                    Cell::from(v.0.to_string()),
                    Cell::from(dur(state, v.1)),
                    Cell::from(dur(state, v.2)),
                ])
            });
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Min(12),
                    Constraint::Length(6),
                    Constraint::Length(8),
                    Constraint::Length(8),
                ],
            )
            .header(bold_row(["Spawn location", "Tasks", "Busy", "MaxPoll"]))
            .block(Block::bordered().title(format!(" Spawn locations by {} ", self.ranking.name()))),
            area,
        );
    }
}

/// Per spawn location: tasks, busy ticks, longest poll, worst p99 latency.
type LocationSums = (u64, Ticks, Ticks, Ticks);

fn bold_row<const N: usize>(cells: [&'static str; N]) -> Row<'static> {
    Row::new(cells).style(Style::new().add_modifier(Modifier::BOLD))
}

/// The CPUs a CPU stole from, most first, as `cpu:count` (the first three).
fn stolen_from(from: &[(u32, u64)]) -> String {
    let mut v = from.to_vec();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut text: Vec<String> = v.iter().take(3).map(|(c, n)| format!("{c}:{n}")).collect();
    if v.len() > 3 {
        text.push("…".into());
    }
    if text.is_empty() { "-".into() } else { text.join(" ") }
}

fn render_cpus(f: &mut Frame<'_>, area: Rect, state: &State) {
    let (first, now) = state.ts_range.unwrap_or_default();
    let elapsed = now.saturating_sub(first).max(Ticks(1));
    let window = state.clock().ticks(state.config.util_window_ns).get();
    let spark_w = usize::from(area.width.saturating_sub(96)).clamp(8, 60);
    let rows = state.cpus.iter().map(|(cpu, c)| {
        let util = c.busy_ticks.get() as f64 / elapsed.get() as f64 * 100.0;
        let rq_max = c.run_queue.iter().map(|&(_, d)| d).max().unwrap_or(0).max(1);
        let rq: Vec<f64> = c
            .run_queue
            .iter()
            .rev()
            .take(16)
            .rev()
            .map(|&(_, d)| f64::from(d) / f64::from(rq_max))
            .collect();
        let style = if c.dropped > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(format!("cpu {cpu}")),
            Cell::from(format!("{util:5.1}%")),
            Cell::from(dur(state, c.busy_ticks)),
            Cell::from(dur(state, c.idle_ticks)),
            Cell::from(format!("{}/{}", c.steals_in, c.steals_out)),
            Cell::from(stolen_from(&c.steals_from)),
            Cell::from(c.run_queue_depth().map_or_else(|| "-".into(), |d| d.to_string())),
            Cell::from(spark(&rq)),
            Cell::from(spark(&c.utilisation(now.get(), window, spark_w))).style(Style::new().fg(Color::Green)),
        ])
        .style(style)
    });
    let title = format!(
        " CPUs: utilisation per {} window ",
        crate::fmt::duration_ns(state.config.util_window_ns)
    );
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(13),
                Constraint::Length(20),
                Constraint::Length(5),
                Constraint::Length(16),
                Constraint::Min(8),
            ],
        )
        .header(bold_row([
            "CPU",
            "Util",
            "Busy",
            "Idle",
            "Steal i/o",
            "Stole from cpu:n",
            "RunQ",
            "RunQ history",
            "Utilisation",
        ]))
        .block(Block::bordered().title(title)),
        area,
    );
}
