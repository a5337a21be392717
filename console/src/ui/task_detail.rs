//! One task: its facts, waker statistics, poll and scheduling histograms, its own
//! timeline strip, its warnings (a long poll with what it was doing, from the
//! samples taken during it) and, when profiling samples were taken, its hottest
//! functions.

use lucid_protocol::TaskId;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{Action, at, doing, dur, sampled_functions, shade};
use crate::state::{Histogram, MAX_SLICES_PER_CPU, State, Task, WokenBy};
use crate::symbols::Symbolizer;
use crate::time::Ticks;

/// State of the detail view.
#[derive(Debug, Clone, Default)]
pub struct DetailView {
    /// The task shown.
    pub task: Option<TaskId>,
}

impl DetailView {
    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Char('b') => Action::Back,
            _ => Action::None,
        }
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State, symbols: &Symbolizer) {
        let Some(task) = self.task.and_then(|id| state.tasks.get(&id)) else {
            let msg = match self.task {
                None => "No task selected: pick one in the Tasks view (1) and press Enter.".to_string(),
                Some(id) => format!("Task {id} is no longer retained (completed longer ago than --retain)."),
            };
            f.render_widget(Paragraph::new(msg).block(Block::bordered().title(" Task ")), area);
            return;
        };
        let sampled = state.sampled.tasks.get(&task.id).filter(|s| s.total > 0);
        let [top, hists, strip, warns] = Layout::vertical([
            Constraint::Length(9),
            Constraint::Min(6),
            Constraint::Length(3),
            Constraint::Length(if sampled.is_some() { 8 } else { 5 }),
        ])
        .areas(area);
        let [info, wakers] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
        f.render_widget(info_paragraph(task, state), info);
        f.render_widget(waker_paragraph(task, state), wakers);
        let [polls, sched, parked] = Layout::horizontal([
            Constraint::Percentage(36),
            Constraint::Percentage(36),
            Constraint::Percentage(28),
        ])
        .areas(hists);
        f.render_widget(parked_paragraph(task, state), parked);
        f.render_widget(
            histogram(" Poll duration ", &task.poll_hist, state, polls.height),
            polls,
        );
        f.render_widget(
            histogram(
                " Scheduled latency (wake → poll) ",
                &task.sched_hist,
                state,
                sched.height,
            ),
            sched,
        );
        render_strip(f, strip, task, state);
        let warns = match sampled {
            Some(sampled) => {
                let [warns, hot] =
                    Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(warns);
                let functions =
                    sampled_functions(state, symbols, sampled.pcs.iter().map(|(&pc, &n)| (pc, u64::from(n))));
                let lines: Vec<Line<'_>> = functions
                    .iter()
                    .take(usize::from(hot.height.saturating_sub(2)))
                    .map(|(name, n)| {
                        let pct = *n as f64 * 100.0 / sampled.total as f64;
                        Line::from(format!("{pct:5.1}% {n:>6}  {name}"))
                    })
                    .collect();
                let title = format!(" Hottest functions ({} samples) ", sampled.total);
                f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), hot);
                warns
            }
            None => warns,
        };
        let lines: Vec<Line<'_>> = state
            .recent_warnings
            .iter()
            .rev()
            .filter(|w| w.task == Some(task.id))
            .take(usize::from(warns.height.saturating_sub(2)))
            .map(|w| {
                Line::from(format!(
                    "{} {}{}",
                    w.ts.map(|t| at(state, t)).unwrap_or_default(),
                    w.message,
                    doing(state, symbols, w)
                ))
            })
            .collect();
        let title = format!(" Warnings ({}) ", task.warnings);
        let body = if lines.is_empty() {
            Paragraph::new("none")
        } else {
            Paragraph::new(lines)
                .style(Style::new().fg(Color::Yellow))
                .wrap(Wrap { trim: true })
        };
        f.render_widget(body.block(Block::bordered().title(title)), warns);
    }
}

fn kv<'a>(k: &'a str, v: String) -> Line<'a> {
    Line::from(vec![Span::raw(format!("{k:<10}")).bold(), Span::raw(v)])
}

fn info_paragraph<'a>(t: &'a Task, s: &State) -> Paragraph<'a> {
    let now = s.now();
    let instance = match t.instance.and_then(|i| s.wasm.get(&i).map(|w| (i, w))) {
        Some((i, w)) => format!("#{i} {} ({:?}, {} pages)", w.module, w.state, w.memory_pages),
        None => "-".into(),
    };
    let lines = vec![
        kv(
            "task",
            format!(
                "{} ({}, {:?}) on cpu {}",
                t.id,
                t.display_name(),
                t.kind,
                t.cpu.map_or_else(|| "-".into(), |c| c.to_string())
            ),
        ),
        kv(
            "state",
            match (
                &t.panic,
                s.resources.await_stack(t.id),
                super::resources::waiting_on(s, t.id),
            ) {
                (Some(panic), ..) => format!("{}: {panic}", t.status.name()),
                (None, Some(stack), _) => format!("{}, parked in {stack}", t.status.name()),
                (None, None, Some(wait)) => format!("{}, waiting on {wait}", t.status.name()),
                (None, None, None) => t.status.name().to_string(),
            },
        ),
        kv("spawned", format!("{} at {}", at(s, t.spawned_ts), t.location)),
        kv("parent", t.parent.map_or_else(|| "-".into(), |p| p.to_string())),
        kv("wasm", instance),
        kv(
            "time",
            format!(
                "total {}  busy {}  scheduled {}  idle {}",
                dur(s, t.total_ticks(now)),
                dur(s, t.busy_ticks_at(now)),
                dur(s, t.scheduled_ticks_at(now)),
                dur(s, t.idle_ticks_at(now))
            ),
        ),
        kv(
            "polls",
            format!("{} ({} longer than the threshold)", t.polls, t.long_polls),
        ),
    ];
    Paragraph::new(lines).block(Block::bordered().title(" Task "))
}

/// Time parked per resource waited on, longest first (ended waits).
fn parked_paragraph<'a>(t: &'a Task, s: &State) -> Paragraph<'a> {
    let mut parked: Vec<_> = t.parked.iter().collect();
    parked.sort_by(|a, b| b.ticks.cmp(&a.ticks).then(a.label().cmp(&b.label())));
    let lines: Vec<Line<'_>> = parked
        .iter()
        .map(|p| Line::from(format!("{:>9} ×{:<6} {}", dur(s, p.ticks), p.waits, p.label())))
        .collect();
    let body = if lines.is_empty() {
        Paragraph::new("no wait ended yet")
    } else {
        Paragraph::new(lines)
    };
    body.block(Block::bordered().title(" Parked on "))
}

fn woken_by_name(w: WokenBy) -> String {
    match w {
        WokenBy::Task(t) => format!("task {t}"),
        WokenBy::Interrupt(v) => format!("irq {v:#04x}"),
        WokenBy::Nobody => "no task".into(),
        WokenBy::Other => "others".into(),
    }
}

fn waker_paragraph<'a>(t: &'a Task, s: &State) -> Paragraph<'a> {
    let mut by: Vec<_> = t.woken_by.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let by = by
        .iter()
        .take(3)
        .map(|(w, n)| format!("{} ×{n}", woken_by_name(**w)))
        .collect::<Vec<_>>()
        .join(", ");
    let lines = vec![
        kv(
            "wakers",
            t.wakers.map_or_else(|| "unknown".into(), |n| n.to_string()) + " live",
        ),
        kv("clones", format!("{}  drops {}", t.waker_clones, t.waker_drops)),
        kv("wakes", format!("{}  self {}", t.wakes, t.self_wakes)),
        kv(
            "last woken",
            t.last_woken.map_or_else(|| "never".into(), |ts| at(s, ts)),
        ),
        kv("woken by", if by.is_empty() { "-".into() } else { by }),
        kv("recently", recent_wakers(t, s)),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Wakers "))
}

/// Who woke the task in its latest wakes the state keeps (newest first, repeats
/// folded: `task 15 ×3, irq 0x30, task 15`).
fn recent_wakers(t: &Task, s: &State) -> String {
    let mut runs: Vec<(WokenBy, u32)> = Vec::new();
    for m in s.wake_marks.iter().rev().filter(|m| m.task == t.id) {
        if let Some((w, n)) = runs.last_mut()
            && *w == m.waker
        {
            *n += 1;
        } else if runs.len() == RECENT_WAKERS {
            break;
        } else {
            runs.push((m.waker, 1));
        }
    }
    if runs.is_empty() {
        return "-".into();
    }
    runs.iter()
        .map(|&(w, n)| {
            if n > 1 {
                format!("{} ×{n}", woken_by_name(w))
            } else {
                woken_by_name(w)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs of wakers the detail lists under "recently".
const RECENT_WAKERS: usize = 4;

fn histogram<'a>(title: &'a str, h: &Histogram, s: &State, height: u16) -> Paragraph<'a> {
    let mut lines = vec![Line::from(format!(
        "p50 {}  p90 {}  p99 {}  max {}  (n={})",
        dur(s, Ticks(h.quantile(0.5))),
        dur(s, Ticks(h.quantile(0.9))),
        dur(s, Ticks(h.quantile(0.99))),
        dur(s, Ticks(h.max())),
        h.count()
    ))];
    let buckets: Vec<(u64, u64)> = h.buckets().collect();
    let rows = usize::from(height.saturating_sub(3)).max(1);
    // Merge neighbouring buckets so the histogram fits the rows available.
    let per_row = buckets.len().div_ceil(rows).max(1);
    let merged: Vec<(u64, u64)> = buckets
        .chunks(per_row)
        .map(|c| (c.last().map_or(0, |b| b.0), c.iter().map(|b| b.1).sum()))
        .collect();
    let peak = merged.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    for (upper, count) in merged {
        let bar = "█".repeat(((count * 24).div_ceil(peak)) as usize);
        lines.push(Line::from(vec![
            Span::raw(format!("≤{:>8} ", dur(s, Ticks(upper.min(h.max()))))),
            Span::styled(bar, Style::new().fg(Color::Cyan)),
            Span::raw(format!(" {count}")),
        ]));
    }
    Paragraph::new(lines).block(Block::bordered().title(title))
}

fn render_strip(f: &mut Frame<'_>, area: Rect, t: &Task, s: &State) {
    let start = t.spawned_ts;
    let end = t.completed_ts.unwrap_or_else(|| s.now()).max(start + Ticks(1));
    // Polls are kept for the most recent stretch only: before every CPU's oldest kept
    // poll, the task's own history gives its busy share instead.
    let horizon = s
        .cpus
        .values()
        .filter(|c| c.slices.len() >= MAX_SLICES_PER_CPU)
        .filter_map(|c| c.slices.front().map(|x| x.start))
        .max()
        .unwrap_or(start);
    let title = if horizon > start {
        format!(
            " Polls over its lifetime (all CPUs; before {}: busy share ░▒▓█) ",
            at(s, horizon)
        )
    } else {
        " Polls over its lifetime (all CPUs) ".to_string()
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = usize::from(inner.width);
    if width == 0 {
        return;
    }
    // At least one tick: a task spawned at the last tick has no later `end`.
    let span = u128::from((end - start).get()).max(1);
    let column = |ts: Ticks| (u128::from(ts.saturating_sub(start).get()) * width as u128 / span) as usize;
    let time = |col: usize| start + Ticks((col as u128 * span / width as u128) as u64);
    let mut cells = vec![false; width];
    for slice in s.cpus.values().flat_map(|c| c.slices.iter()).filter(|x| x.task == t.id) {
        let (a, b) = (column(slice.start), column(slice.end));
        for c in cells.iter_mut().take(b.min(width - 1) + 1).skip(a.min(width - 1)) {
            *c = true;
        }
    }
    let line: String = cells
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let (t0, t1) = (time(i), time(i + 1));
            match b {
                true => '█',
                false if t1 > horizon => '·',
                false => shade(t.history.busy_share(t0.get(), t1.get())),
            }
        })
        .collect();
    f.render_widget(Paragraph::new(line).style(Style::new().fg(Color::Green)), inner);
}
