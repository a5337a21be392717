//! Lanes of poll slices over trace time — one per CPU, or one per task — with wakes
//! drawn as markers, zoom, pan, follow, and a cursor that names the slice and the
//! wakes under it.
//!
//! Poll slices are kept for the most recent stretch only. Zoomed out past it, a lane
//! shows how busy its CPU or task was from its summary (`░▒▓█` by share), and time
//! nothing is known about (before the stream, outside a task's life) stays blank: the
//! past is never drawn as idle.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use std::collections::BTreeMap;

use lucid_protocol::TaskId;

use super::{Action, at, dur, shade};
use crate::state::{
    BootMark, BusyHistory, Cpu, MAX_SLICES_PER_CPU, Slice, State, Task, TaskHistory, WakeMark, WokenBy, marks_between,
};
use crate::time::Ticks;

/// Colours for tasks, picked by id.
const PALETTE: [Color; 6] = [
    Color::Green,
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::LightRed,
];
/// The history of a task the state no longer holds: nothing known.
static EMPTY_HISTORY: TaskHistory = TaskHistory::new();
/// Width of the lane labels.
const LABEL: u16 = 13;
/// Narrowest window (ns).
const MIN_SPAN_NS: u64 = 1_000;

/// What a lane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// One lane per CPU; wakes are marked on the CPU that reported them.
    Cpus,
    /// One lane per task polled in the window (busiest first); wakes are marked on
    /// the woken task's lane.
    Tasks,
}

/// One lane to draw.
struct Lane<'a> {
    label: String,
    /// The task of a task lane.
    task: Option<TaskId>,
    slices: Vec<Slice>,
    wakes: Vec<WakeMark>,
    /// Task lanes: when the task waited on a resource (ended waits, then the ones
    /// in progress up to now), drawn as `─` where it was not polled.
    waits: Vec<(Ticks, Ticks)>,
    /// Task lanes: when the task woke another task (`▼`, above the `▲` on the woken
    /// task's lane in the same column: waker → wakee).
    woke: Vec<Ticks>,
    /// Slices are complete from here on; before it the lane shows `summary`, or
    /// nothing.
    detail_from: Ticks,
    summary: Summary<'a>,
}

/// Where a lane's busy share before its detail comes from.
#[derive(Clone, Copy)]
enum Summary<'a> {
    /// A CPU's session history.
    Cpu(&'a BusyHistory),
    /// A task's history, known only within its life.
    Task {
        history: &'a TaskHistory,
        from: Ticks,
        to: Ticks,
    },
}

impl Summary<'_> {
    fn for_task(t: &Task) -> Summary<'_> {
        Summary::Task {
            history: &t.history,
            from: t.spawned_ts,
            to: t.completed_ts.unwrap_or(Ticks::MAX),
        }
    }

    /// Whether `from..to` is within what the lane describes (a task's life).
    fn covers(self, from: Ticks, to: Ticks) -> bool {
        match self {
            Summary::Cpu(_) => true,
            Summary::Task { from: a, to: b, .. } => to > a && from < b,
        }
    }

    /// The busy share of `from..to`, `None` where nothing is known.
    fn share(self, from: Ticks, to: Ticks) -> Option<f64> {
        let (a, b) = (from.get(), to.get());
        match self {
            Summary::Cpu(h) => h.busy_share(a, b),
            Summary::Task { history, .. } => self.covers(from, to).then(|| history.busy_share(a, b)),
        }
    }
}

/// State of the timeline.
#[derive(Debug, Clone)]
pub struct TimelineView {
    /// CPU or task lanes.
    pub lanes: Lanes,
    /// Window width in trace nanoseconds.
    pub span_ns: u64,
    /// Window end; `None` follows the newest events.
    pub end: Option<Ticks>,
    /// Cursor column within the lanes.
    pub cursor: u16,
    /// Selected lane.
    pub lane: usize,
    /// Width of the lanes when last drawn, to map the cursor to time.
    width: u16,
}

impl Default for TimelineView {
    fn default() -> Self {
        Self {
            lanes: Lanes::Cpus,
            span_ns: 2_000_000,
            end: None,
            cursor: 0,
            lane: 0,
            width: 0,
        }
    }
}

impl TimelineView {
    fn window(&self, state: &State) -> (Ticks, Ticks) {
        let end = self.end.unwrap_or_else(|| state.now());
        let span = state.clock().ticks(self.span_ns).max(Ticks(1));
        (end.saturating_sub(span), end)
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let (start, end) = self.window(state);
        let quarter = Ticks((end - start).get() / 4);
        match key.code {
            KeyCode::Char('+' | '=') => self.span_ns = (self.span_ns / 2).max(MIN_SPAN_NS),
            KeyCode::Char('-') => self.span_ns = self.span_ns.saturating_mul(2),
            KeyCode::Left | KeyCode::Char('h') => self.end = Some(end.saturating_sub(quarter)),
            KeyCode::Right | KeyCode::Char('l') => {
                let e = end.saturating_add(quarter);
                self.end = (e < state.now()).then_some(e);
            }
            KeyCode::Char('f') | KeyCode::End => self.end = None,
            KeyCode::Char(',') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Char('.') => self.cursor = self.cursor.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.lane = self.lane.saturating_sub(1),
            // Bounded by the lanes on screen when drawn.
            KeyCode::Down | KeyCode::Char('j') => self.lane = self.lane.saturating_add(1),
            KeyCode::Char('t') => {
                self.lanes = match self.lanes {
                    Lanes::Cpus => Lanes::Tasks,
                    Lanes::Tasks => Lanes::Cpus,
                };
                self.lane = 0;
            }
            KeyCode::Enter => {
                if let Some(task) = self.cursor_slice(state).map(|(_, s)| s.task) {
                    return Action::OpenTask(task);
                }
            }
            _ => {}
        }
        Action::None
    }

    /// The lanes for the window `start..=end`, at most `max` of them.
    fn build_lanes<'s>(&self, state: &'s State, start: Ticks, end: Ticks, max: usize) -> Vec<Lane<'s>> {
        let in_window = |s: &&Slice| s.end >= start && s.start <= end;
        let wakes = state.wake_marks.iter().filter(|w| w.ts >= start && w.ts <= end);
        match self.lanes {
            Lanes::Cpus => state
                .cpus
                .iter()
                .take(max)
                .map(|(cpu, c)| Lane {
                    task: None,
                    label: format!("cpu{cpu}"),
                    slices: c.slices.iter().filter(in_window).copied().collect(),
                    wakes: wakes.clone().filter(|w| w.cpu == *cpu).copied().collect(),
                    waits: Vec::new(),
                    woke: Vec::new(),
                    detail_from: detail_from(c),
                    summary: Summary::Cpu(&c.history),
                })
                .collect(),
            Lanes::Tasks => {
                // A task's polls are all known only where every CPU's are.
                let detail_from = state.cpus.values().map(detail_from).max().unwrap_or(Ticks::ZERO);
                // (busy ticks in the window, slices) per task: from the kept slices,
                // and before them from the tasks' histories.
                // By boot too: a task id of one boot is another task in the next.
                let mut by_task: BTreeMap<TaskOfBoot, (Ticks, Vec<Slice>)> = BTreeMap::new();
                for s in state.cpus.values().flat_map(|c| c.slices.iter()).filter(in_window) {
                    let e = by_task.entry((s.task, state.boot_at(s.start))).or_default();
                    e.0 += s.end.min(end) - s.start.max(start);
                    e.1.push(*s);
                }
                let summarised = end.min(detail_from);
                if start < summarised {
                    for t in state.tasks.values() {
                        if let Some(share) = Summary::for_task(t).share(start, summarised)
                            && share > 0.0
                        {
                            by_task.entry((t.id, t.boot)).or_default().0 +=
                                Ticks((share * (summarised - start).get() as f64) as u64);
                        }
                    }
                }
                let mut tasks: Vec<(TaskOfBoot, (Ticks, Vec<Slice>))> = by_task.into_iter().collect();
                tasks.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
                tasks
                    .into_iter()
                    .take(max)
                    .map(|((task, boot), (_, slices))| {
                        let t = state.task_of_boot(task, boot);
                        let mut label = match t {
                            Some(t) if !t.name.is_empty() => format!("{task} {}", t.name),
                            _ => format!("task {task}"),
                        };
                        // Labels are short: an earlier boot's lanes start with `b<boot>`.
                        if boot != state.boot {
                            label = format!("b{} {label}", u64::from(boot) + 1);
                        }
                        Lane {
                            label,
                            task: Some(task),
                            slices,
                            wakes: wakes
                                .clone()
                                .filter(|w| w.task == task && state.boot_at(w.ts) == boot)
                                .copied()
                                .collect(),
                            waits: waits_of(state, task, boot, start, end),
                            woke: wakes
                                .clone()
                                .filter(|w| w.waker == WokenBy::Task(task) && state.boot_at(w.ts) == boot)
                                .map(|w| w.ts)
                                .collect(),
                            detail_from,
                            summary: t.map_or(
                                Summary::Task {
                                    history: &EMPTY_HISTORY,
                                    from: Ticks::ZERO,
                                    to: Ticks::ZERO,
                                },
                                Summary::for_task,
                            ),
                        }
                    })
                    .collect()
            }
        }
    }

    /// The selected lane's label and the slice under the cursor, as last drawn.
    fn cursor_slice(&self, state: &State) -> Option<(String, Slice)> {
        let (start, end) = self.window(state);
        let lanes = self.build_lanes(state, start, end, self.lane + 1);
        let lane = lanes.get(self.lane)?;
        let w = u64::from(self.width);
        let span = (end - start).max(Ticks(1));
        lane.slices
            .iter()
            .find(|s| {
                let (a, b) = columns(s, start, span, w);
                (a..=b).contains(&u64::from(self.cursor))
            })
            .map(|s| (lane.label.clone(), *s))
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let (start, end) = self.window(state);
        let follow = if self.end.is_none() { "following" } else { "paused at" };
        let title = format!(
            " Timeline ({}): {} window, {follow} {} │ t lanes, +/- zoom, ←/→ pan, f follow, ,/. cursor ",
            match self.lanes {
                Lanes::Cpus => "CPUs",
                Lanes::Tasks => "tasks",
            },
            crate::fmt::duration_ns(self.span_ns),
            at(state, end)
        );
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let max_lanes = usize::from(inner.height.saturating_sub(3));
        let lanes = self.build_lanes(state, start, end, max_lanes);
        let lanes_h = u16::try_from(lanes.len()).unwrap_or(u16::MAX);
        let [lanes_area, axis, info] =
            Layout::vertical([Constraint::Length(lanes_h), Constraint::Length(1), Constraint::Min(1)]).areas(inner);
        let width = lanes_area.width.saturating_sub(LABEL);
        self.width = width;
        self.cursor = self.cursor.min(width.saturating_sub(1));
        self.lane = self.lane.min(lanes.len().saturating_sub(1));
        let span = (end - start).max(Ticks(1));
        let mut under_cursor: Option<(&Lane, Slice)> = None;
        let mut wakes_under_cursor: Vec<WakeMark> = Vec::new();
        for (i, lane) in lanes.iter().enumerate() {
            let Some(y) = u16::try_from(i).ok().filter(|&y| y < lanes_area.height) else {
                break;
            };
            let row = Rect::new(lanes_area.x, lanes_area.y + y, lanes_area.width, 1);
            let label_style = if i == self.lane {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            let label: String = lane.label.chars().take(usize::from(LABEL) - 1).collect();
            f.buffer_mut().set_string(row.x, row.y, label, label_style);
            let cells = Rect::new(row.x + LABEL, row.y, width, 1);
            let (hit, wakes) = draw_lane(f.buffer_mut(), cells, lane, start, span, self.cursor);
            if i == self.lane && width > 0 {
                under_cursor = hit.map(|s| (lane, s));
                wakes_under_cursor = wakes;
                let cell = &mut f.buffer_mut()[(cells.x + self.cursor, cells.y)];
                cell.set_style(Style::new().add_modifier(Modifier::REVERSED));
            }
        }
        if width > 0 {
            let shown = usize::from(lanes_area.height).min(lanes.len());
            draw_wake_links(f.buffer_mut(), lanes_area, &lanes[..shown], start, span, width);
        }
        f.render_widget(
            Paragraph::new(format!(
                "{:LABEL$}{}",
                "",
                axis_line(state, start, end, width),
                LABEL = usize::from(LABEL)
            )),
            axis,
        );
        // Where a kernel boot began: a line through every lane, `↻` on the axis.
        let boots: Vec<&BootMark> = marks_between(&state.boot_marks, start, end).collect();
        if width > 0 {
            let style = Style::new().fg(Color::Magenta);
            for m in &boots {
                let x = lanes_area.x
                    + LABEL
                    + column_of(m.ts, start, span, u64::from(width)).min(u64::from(width) - 1) as u16;
                for y in lanes_area.y..lanes_area.y + lanes_area.height {
                    f.buffer_mut()[(x, y)].set_char('┃').set_style(style);
                }
                if axis.height > 0 {
                    f.buffer_mut()[(x, axis.y)].set_char('↻').set_style(style);
                }
            }
        }
        let horizon = lanes.iter().map(|l| l.detail_from).min().unwrap_or(Ticks::MAX);
        let mut lines = vec![Line::from(match under_cursor {
            Some((lane, s)) => {
                let name = state
                    .task_of_boot(s.task, state.boot_at(s.start))
                    .map_or_else(String::new, |t| t.display_name());
                format!(
                    "cursor on {}: task {} ({name}), poll from {} for {}{} │ Enter opens it",
                    lane.label,
                    s.task,
                    at(state, s.start),
                    dur(state, s.end - s.start),
                    if s.ready { ", returned Ready" } else { "" }
                )
            }
            None if lanes.is_empty() => "no polls in this window".into(),
            None => "cursor: idle".into(),
        })];
        if horizon > start {
            lines.push(Line::from(format!(
                "polls kept from {}; before: busy share ░<25% ▒<50% ▓<75% █<100%, blank = not known",
                at(state, horizon)
            )));
        }
        for m in &boots {
            lines.push(Line::styled(
                format!(
                    "↻ kernel restarted at {}: boot {} begins ({} tasks of boot {} ended with it)",
                    at(state, m.ts),
                    m.boot,
                    m.tasks_ended,
                    m.boot - 1
                ),
                Style::new().fg(Color::Magenta),
            ));
        }
        let room = usize::from(info.height).saturating_sub(lines.len());
        for w in wakes_under_cursor.iter().take(room) {
            lines.push(Line::from(format!(
                "wake at {}: {} → task {}",
                at(state, w.ts),
                waker_name(w.waker),
                w.task
            )));
        }
        f.render_widget(Paragraph::new(lines), info);
    }
}

/// A task id and the boot it belongs to (see [`State::boot`]).
type TaskOfBoot = (TaskId, u32);

fn waker_name(w: WokenBy) -> String {
    match w {
        WokenBy::Task(t) => format!("task {t}"),
        WokenBy::Interrupt(v) => format!("irq {v:#04x}"),
        WokenBy::Nobody | WokenBy::Other => "outside any task".into(),
    }
}

/// Where a CPU's poll slices start to be complete: its oldest kept slice once
/// older ones have been dropped, else the beginning of time.
fn detail_from(c: &Cpu) -> Ticks {
    match c.slices.front() {
        Some(s) if c.slices.len() >= MAX_SLICES_PER_CPU => s.start,
        _ => Ticks::ZERO,
    }
}

/// The time axis: the window's start, then ticks at a round step as offsets from
/// it, as many as fit.
fn axis_line(state: &State, start: Ticks, end: Ticks, width: u16) -> String {
    let width = usize::from(width);
    let mut line: Vec<char> = vec![' '; width];
    let mut put = |col: usize, text: &str| {
        for (i, ch) in text.chars().enumerate() {
            if let Some(c) = line.get_mut(col + i) {
                *c = ch;
            }
        }
    };
    let first = at(state, start);
    put(0, &first);
    let span_ns = state.clock().ns(end - start).max(1);
    // A label every 16 columns at least.
    let min_step = span_ns.saturating_mul(16) / width.max(1) as u64;
    let step = nice_step(min_step.max(1));
    let mut next_free = first.chars().count() + 2;
    let mut t = step;
    while t < span_ns {
        let col = (u128::from(t) * width as u128 / u128::from(span_ns)) as usize;
        let label = format!("|+{}", crate::fmt::duration_ns(t));
        if col >= next_free && col + label.chars().count() <= width {
            put(col, &label);
            next_free = col + label.chars().count() + 2;
        }
        t = t.saturating_add(step);
    }
    line.into_iter().collect()
}

/// The smallest 1, 2 or 5 × 10^k nanoseconds at least `min`.
fn nice_step(min: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step.saturating_mul(m);
            if s >= min {
                return s;
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// First and last column of a slice.
fn columns(s: &Slice, start: Ticks, span: Ticks, w: u64) -> (u64, u64) {
    let w = w.max(1);
    let (a, b) = (column_of(s.start, start, span, w), column_of(s.end, start, span, w));
    (a.min(w - 1), b.min(w - 1))
}

/// The column of `ts` in `w` columns showing `span` from `start` (unclamped).
fn column_of(ts: Ticks, start: Ticks, span: Ticks, w: u64) -> u64 {
    (u128::from(ts.saturating_sub(start).get()) * u128::from(w) / u128::from(span.get())) as u64
}

/// Where column `x` of `w` columns showing `span` from `start` begins.
fn column_time(x: u64, start: Ticks, span: Ticks, w: u64) -> Ticks {
    start + Ticks((u128::from(x) * u128::from(span.get()) / u128::from(w)) as u64)
}

/// Paints one lane: where polls ran, the share of the column they took (`░▒▓█`,
/// coloured by the task that took most), `·` where nothing ran,
/// When `task` (of `boot`) waited on a resource within `start..end`: its ended waits
/// the state keeps, then those in progress (up to now).
fn waits_of(state: &State, task: TaskId, boot: u32, start: Ticks, end: Ticks) -> Vec<(Ticks, Ticks)> {
    let ended = state
        .wait_marks
        .iter()
        .filter(|w| w.task == task && w.end >= start && w.start <= end && state.boot_at(w.start) == boot)
        .map(|w| (w.start, w.end));
    let now = state.now();
    let open = state
        .resources
        .waits
        .get(&task)
        .filter(|_| boot == state.boot)
        .into_iter()
        .flatten()
        .filter(|w| w.op != lucid_protocol::WaitOp::Inside && w.since <= end)
        .map(move |w| (w.since, now));
    ended.chain(open).collect()
}

/// Task lanes: links each wake between two lanes shown, `│` from the waker's `▼`
/// down (or up) to the woken task's `▲`, through the blank cells between them (a
/// busy cell or a wait bar is left as it is).
fn draw_wake_links(buf: &mut Buffer, lanes_area: Rect, lanes: &[Lane<'_>], start: Ticks, span: Ticks, width: u16) {
    let w = u64::from(width);
    let rows: BTreeMap<TaskId, usize> = lanes
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((l.task?, i)))
        .collect();
    let row_of = |task: TaskId| rows.get(&task).copied();
    let style = Style::new().fg(Color::Magenta);
    for (to, lane) in lanes.iter().enumerate() {
        for m in lane.wakes.iter().filter(|m| m.ts >= lane.detail_from) {
            let WokenBy::Task(waker) = m.waker else { continue };
            let Some(from) = row_of(waker).filter(|&from| from != to) else {
                continue;
            };
            if m.ts < lanes[from].detail_from {
                continue;
            }
            let x = lanes_area.x + LABEL + column_of(m.ts, start, span, w).min(w - 1) as u16;
            for row in from.min(to) + 1..from.max(to) {
                let cell = &mut buf[(x, lanes_area.y + row as u16)];
                if matches!(cell.symbol(), " " | "·") {
                    cell.set_char('│').set_style(style);
                }
            }
        }
    }
}

/// `─` where the lane's task waited on a resource, `▲` for a wake on an otherwise
/// empty cell, `▼` (over its poll) where it woke another task; before the lane's detail, its summary
/// as grey shades by busy share (without wakes), or blank. Returns the slice and the
/// wakes under the cursor column.
fn draw_lane(
    buf: &mut Buffer,
    cells: Rect,
    lane: &Lane,
    start: Ticks,
    span: Ticks,
    cursor: u16,
) -> (Option<Slice>, Vec<WakeMark>) {
    let w = u64::from(cells.width);
    if w == 0 {
        return (None, Vec::new());
    }
    let idle = Style::new().fg(Color::DarkGray);
    for x in 0..cells.width {
        let t0 = column_time(u64::from(x), start, span, w);
        let t1 = column_time(u64::from(x) + 1, start, span, w);
        let ch = if t1 > lane.detail_from {
            if lane.summary.covers(t0, t1) { '·' } else { ' ' }
        } else {
            match lane.summary.share(t0, t1) {
                None => ' ',
                Some(share) => shade(share),
            }
        };
        buf[(cells.x + x, cells.y)].set_char(ch).set_style(idle);
    }
    let waiting = Style::new().fg(Color::Blue);
    for &(a, b) in lane.waits.iter().filter(|w| w.1 >= lane.detail_from) {
        let from = column_of(a.max(start).max(lane.detail_from), start, span, w).min(w - 1);
        let to = column_of(b.min(start + span), start, span, w).min(w - 1);
        for x in from..=to {
            buf[(cells.x + x as u16, cells.y)].set_char('─').set_style(waiting);
        }
    }
    let mut wakes = Vec::new();
    // Before the lane's detail only its summary is drawn: wakes there would bury it.
    for m in lane.wakes.iter().filter(|m| m.ts >= lane.detail_from) {
        let x = column_of(m.ts, start, span, w).min(w - 1);
        buf[(cells.x + x as u16, cells.y)]
            .set_char('▲')
            .set_style(Style::new().fg(Color::Yellow));
        if x == u64::from(cursor) {
            wakes.push(*m);
        }
    }
    // Each column shows the share of its time the polls in it took, in the colour of
    // the task that took most of it, so a zoomed-out stretch of kept polls reads like
    // the summarised one beside it; zoomed in, a poll fills its columns.
    let mut busy: Vec<(Ticks, Ticks, TaskId)> = vec![(Ticks::ZERO, Ticks::ZERO, TaskId(0)); cells.width.into()];
    let mut hit = None;
    for s in &lane.slices {
        let (a, b) = columns(s, start, span, w);
        for x in a..=b {
            let t0 = column_time(x, start, span, w);
            let t1 = column_time(x + 1, start, span, w);
            let overlap = s.end.min(t1).saturating_sub(s.start.max(t0));
            // A column the poll only touches at its edge takes nothing from it; a poll
            // too short to measure still shows in its own.
            if overlap == Ticks::ZERO && s.end > s.start {
                continue;
            }
            let ticks = overlap.max(Ticks(1));
            let cell = &mut busy[x as usize];
            cell.0 += ticks;
            if ticks > cell.1 {
                (cell.1, cell.2) = (ticks, s.task);
            }
        }
        if (a..=b).contains(&u64::from(cursor)) {
            hit = Some(*s);
        }
    }
    for (x, &(ticks, _, task)) in busy.iter().enumerate().filter(|(_, c)| c.0 > Ticks::ZERO) {
        let x = x as u64;
        let t0 = column_time(x, start, span, w);
        let t1 = column_time(x + 1, start, span, w);
        let color = PALETTE[(task.get() % PALETTE.len() as u64) as usize];
        buf[(cells.x + x as u16, cells.y)]
            .set_char(shade(ticks.get() as f64 / t1.saturating_sub(t0).get().max(1) as f64))
            .set_style(Style::new().fg(color));
    }
    // A task wakes another while it is polled: drawn over its busy column.
    for &ts in lane.woke.iter().filter(|&&ts| ts >= lane.detail_from) {
        let x = column_of(ts, start, span, w).min(w - 1);
        buf[(cells.x + x as u16, cells.y)]
            .set_char('▼')
            .set_style(Style::new().fg(Color::Magenta));
    }
    (hit, wakes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_between_lanes_apart_is_linked_through_the_blank_cells_between() {
        let lane = |task: u64, wakes: Vec<WakeMark>| Lane {
            label: String::new(),
            task: Some(TaskId(task)),
            slices: Vec::new(),
            wakes,
            waits: Vec::new(),
            woke: Vec::new(),
            detail_from: Ticks::ZERO,
            summary: Summary::Task {
                history: &EMPTY_HISTORY,
                from: Ticks::ZERO,
                to: Ticks::ZERO,
            },
        };
        let wake = WakeMark {
            ts: Ticks(50),
            cpu: 0,
            task: TaskId(4),
            waker: WokenBy::Task(TaskId(1)),
        };
        let lanes = [
            lane(1, Vec::new()),
            lane(2, Vec::new()),
            lane(3, Vec::new()),
            lane(4, vec![wake]),
        ];
        let area = Rect::new(0, 0, LABEL + 10, 4);
        let mut buf = Buffer::empty(area);
        // Task 3 is busy in that column: its cell stays.
        buf[(LABEL + 5, 2)].set_char('█');
        draw_wake_links(&mut buf, area, &lanes, Ticks(0), Ticks(100), 10);
        let at = |row: u16| buf[(LABEL + 5, row)].symbol().to_string();
        assert_eq!([at(0), at(1), at(2), at(3)], [" ", "│", "█", " "]);
        assert_eq!(buf[(LABEL + 4, 1)].symbol(), " ", "only the wake's column");
    }
}
