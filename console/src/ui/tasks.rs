//! The task list: like tokio-console's, sortable by any column, filterable.

use std::cmp::Ordering;

use lucid_protocol::{TaskId, TaskKind};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{Action, dur, step};
use crate::state::{State, Task, TaskStatus};
use crate::time::Ticks;

mod keys;
mod text_order;

use keys::KeyCache;
use text_order::TextOrder;

/// A column of the task table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Task id.
    Id,
    /// Name.
    Name,
    /// Kernel or wasm.
    Kind,
    /// Status.
    State,
    /// Last CPU.
    Cpu,
    /// Lifetime.
    Total,
    /// Time polled.
    Busy,
    /// Time scheduled.
    Scheduled,
    /// Time idle.
    Idle,
    /// Polls.
    Polls,
    /// Wakes.
    Wakes,
    /// Self-wakes.
    SelfWakes,
    /// The resource the task waits on, the operation and for how long.
    Waiting,
    /// Spawn location.
    Location,
}

impl Column {
    /// Every column, left to right.
    pub const ALL: [Self; 14] = [
        Self::Id,
        Self::Name,
        Self::Kind,
        Self::State,
        Self::Cpu,
        Self::Total,
        Self::Busy,
        Self::Scheduled,
        Self::Idle,
        Self::Polls,
        Self::Wakes,
        Self::SelfWakes,
        Self::Waiting,
        Self::Location,
    ];

    /// Header text.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::Id => "ID",
            Self::Name => "Name",
            Self::Kind => "Kind",
            Self::State => "State",
            Self::Cpu => "CPU",
            Self::Total => "Total",
            Self::Busy => "Busy",
            Self::Scheduled => "Sched",
            Self::Idle => "Idle",
            Self::Polls => "Polls",
            Self::Wakes => "Wakes",
            Self::SelfWakes => "Self",
            Self::Waiting => "Waiting on",
            Self::Location => "Location",
        }
    }

    fn width(self) -> Constraint {
        match self {
            Self::Id | Self::Polls | Self::Wakes => Constraint::Length(7),
            Self::Name => Constraint::Length(14),
            Self::Kind => Constraint::Length(6),
            Self::State => Constraint::Length(9),
            Self::Cpu | Self::SelfWakes => Constraint::Length(5),
            Self::Total | Self::Busy | Self::Scheduled | Self::Idle => Constraint::Length(8),
            Self::Waiting => Constraint::Length(24),
            Self::Location => Constraint::Min(10),
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// Whether the filter `needle` (lowercase) keeps task `t` by what the task itself
/// says (id, name, location, kind, status); empty keeps every task.
fn task_matches(t: &Task, needle: &str) -> bool {
    needle.is_empty()
        || t.id.to_string() == needle
        || t.name.to_lowercase().contains(needle)
        || t.location.to_lowercase().contains(needle)
        || kind_name(t.kind) == needle
        || t.status.name() == needle
}

/// Whether the filter `needle` (lowercase) matches what `task` waits on.
fn waiting_matches(state: &State, task: TaskId, needle: &str) -> bool {
    let Some(w) = state.resources.current_wait(task) else {
        return false;
    };
    needle == "waiting" || needle == w.op.name() || state.resources.label(w.resource).to_lowercase().contains(needle)
}

const fn kind_name(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Kernel => "kernel",
        TaskKind::Wasm => "wasm",
    }
}

/// The sort key of column `c` as a number, for the columns that have one: sorting a
/// large list by a key computed once per task is several times faster than
/// recomputing both sides of every comparison.
fn numeric_key(c: Column, t: &Task, state: &State, now: Ticks) -> Option<u64> {
    Some(match c {
        Column::Id => t.id.get(),
        // As the names sort: "kernel" before "wasm".
        Column::Kind => match t.kind {
            TaskKind::Kernel => 0,
            TaskKind::Wasm => 1,
        },
        Column::State => u64::from(t.status.rank()),
        // `None` (no CPU yet) first, as `Option`'s order has it.
        Column::Cpu => t.cpu.map_or(0, |c| u64::from(c) + 1),
        Column::Total => t.total_ticks(now).0,
        Column::Busy => t.busy_ticks_at(now).0,
        Column::Scheduled => t.scheduled_ticks_at(now).0,
        Column::Idle => t.idle_ticks_at(now).0,
        Column::Polls => t.polls,
        Column::Wakes => t.wakes,
        Column::SelfWakes => t.self_wakes,
        // Not waiting first, so the longest wait leads when descending.
        Column::Waiting => state
            .resources
            .current_wait(t.id)
            .map_or(0, |w| now.saturating_sub(w.since).0.saturating_add(1)),
        Column::Name | Column::Location => return None,
    })
}

/// The order of column `c`'s text (the columns without a [`numeric_key`]).
fn compare_text(c: Column, a: &Task, b: &Task) -> Ordering {
    match c {
        Column::Name => a.name.cmp(&b.name),
        Column::Location => a.location.cmp(&b.location),
        _ => Ordering::Equal,
    }
}

/// The tasks the filter keeps, put in display order only as far as asked: with a
/// numeric sort column each task's key is computed once and a frame orders only the
/// rows on screen (two partial selections and a sort of the window), which at a
/// million tasks is several times cheaper than sorting every task each frame.
enum Ordered<'s> {
    /// `(key, id, task)` in no particular order; ascending by `(key, id)` unless
    /// `descending`.
    Keyed {
        keyed: Vec<(u64, TaskId, &'s Task)>,
        descending: bool,
    },
    /// Already in display order (a text column).
    Sorted(Vec<&'s Task>),
    /// The tasks the filter keeps, ordered from keys kept across frames (a column
    /// [`keys::cacheable`]); `keys` is up to date with `state` and the filter.
    Cached {
        keys: &'s KeyCache,
        state: &'s State,
        descending: bool,
    },
    /// Every task, by a text column, from the order kept across frames (no filter,
    /// a column [`text_order::orders`]); `order` is up to date with `state`.
    Text {
        order: &'s TextOrder,
        state: &'s State,
        descending: bool,
    },
    /// The tasks a filter keeps, by a text column: the kept order walked, skipping
    /// the tasks `keys` (kept for the filter, by id) says the filter drops.
    FilteredText {
        order: &'s TextOrder,
        keys: &'s KeyCache,
        state: &'s State,
        descending: bool,
    },
}

/// The orders the task list keeps across frames.
#[derive(Debug, Clone, Default)]
struct KeptOrders {
    keys: KeyCache,
    text: TextOrder,
}

impl KeptOrders {
    /// Brings the order `view` shows (its sort column and filter) up to date with
    /// `state`, where one is kept for them.
    fn sync(&mut self, view: &TasksView, state: &State) {
        if keys::cacheable(view.sort) {
            self.keys.sync(view.sort, &view.filter.to_lowercase(), state);
        } else if text_order::orders(view.sort) {
            self.text.sync(view.sort, state);
            if !view.filter.is_empty() {
                // The ids' column: only what the filter keeps is wanted of it.
                self.keys.sync(Column::Id, &view.filter.to_lowercase(), state);
            }
        }
    }
}

impl<'s> Ordered<'s> {
    fn len(&self) -> usize {
        match self {
            Ordered::Keyed { keyed, .. } => keyed.len(),
            Ordered::Sorted(rows) => rows.len(),
            Ordered::Cached { keys, .. } => keys.len(),
            Ordered::Text { order, .. } => order.len(),
            Ordered::FilteredText { keys, .. } => keys.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn max_id(&self) -> Option<TaskId> {
        match self {
            Ordered::Keyed { keyed, .. } => keyed.iter().map(|e| e.1).max(),
            Ordered::Sorted(rows) => rows.iter().map(|t| t.id).max(),
            Ordered::Cached { keys, state, .. } => keys.max_id(state),
            Ordered::Text { state, .. } => state.tasks.keys().next_back().copied(),
            Ordered::FilteredText { keys, state, .. } => keys.max_id(state),
        }
    }

    /// Where task `id` is in display order.
    fn position(&self, id: TaskId) -> Option<usize> {
        match self {
            Ordered::Keyed { keyed, descending } => {
                let &(key, _, _) = keyed.iter().find(|e| e.1 == id)?;
                Some(
                    keyed
                        .iter()
                        .filter(|e| display_order((e.0, e.1), (key, id), *descending).is_lt())
                        .count(),
                )
            }
            Ordered::Sorted(rows) => rows.iter().position(|t| t.id == id),
            Ordered::Cached {
                keys,
                state,
                descending,
            } => keys.position(state, id, *descending),
            Ordered::Text {
                order,
                state,
                descending,
            } => order.position(state, id, *descending),
            Ordered::FilteredText {
                order,
                keys,
                state,
                descending,
            } => {
                let slot = state.tasks.slot_of(&id)?;
                filtered_slots(order, keys, *descending).position(|s| s == slot)
            }
        }
    }

    /// The task at `row` in display order.
    fn at(&mut self, row: usize) -> Option<&'s Task> {
        self.window(row, 1).first().copied()
    }

    /// The tasks at rows `from..from + n` in display order.
    fn window(&mut self, from: usize, n: usize) -> Vec<&'s Task> {
        let (keyed, descending) = match self {
            Ordered::Keyed { keyed, descending } => (keyed, *descending),
            Ordered::Sorted(rows) => return rows.iter().skip(from).take(n).copied().collect(),
            Ordered::Cached {
                keys,
                state,
                descending,
            } => {
                return keys
                    .window(state, from, n, *descending)
                    .into_iter()
                    .filter_map(|slot| state.tasks.at_slot(slot))
                    .collect();
            }
            Ordered::Text {
                order,
                state,
                descending,
            } => {
                return order
                    .window(from, n, *descending)
                    .into_iter()
                    .filter_map(|slot| state.tasks.at_slot(slot))
                    .collect();
            }
            Ordered::FilteredText {
                order,
                keys,
                state,
                descending,
            } => {
                return filtered_slots(order, keys, *descending)
                    .skip(from)
                    .take(n)
                    .filter_map(|slot| state.tasks.at_slot(slot))
                    .collect();
            }
        };
        let order =
            |a: &(u64, TaskId, &Task), b: &(u64, TaskId, &Task)| display_order((a.0, a.1), (b.0, b.1), descending);
        let from = from.min(keyed.len());
        if from > 0 && from < keyed.len() {
            // Everything before `from` now orders before everything after it.
            keyed.select_nth_unstable_by(from, order);
        }
        let rest = &mut keyed[from..];
        let n = n.min(rest.len());
        if n > 0 && n < rest.len() {
            rest.select_nth_unstable_by(n - 1, order);
        }
        let window = &mut rest[..n];
        window.sort_unstable_by(order);
        window.iter().map(|e| e.2).collect()
    }
}

/// The slots of the tasks the filter keeps (as `keys` says), in `order`'s display
/// order.
fn filtered_slots<'a>(order: &'a TextOrder, keys: &'a KeyCache, descending: bool) -> impl Iterator<Item = u32> + 'a {
    order.slots(descending).filter(|&s| keys.keeps_slot(s))
}

/// The display order of two `(key, id)` entries: ascending, or descending.
fn display_order(a: (u64, TaskId), b: (u64, TaskId), descending: bool) -> Ordering {
    let o = a.cmp(&b);
    if descending { o.reverse() } else { o }
}

/// State of the task list.
#[derive(Debug, Clone)]
pub struct TasksView {
    /// Sort column.
    pub sort: Column,
    /// Largest first.
    pub descending: bool,
    /// Text filter (matched against id, name, kind, state, location and what the
    /// task waits on; `waiting` keeps the tasks that wait on a resource).
    pub filter: String,
    /// The filter is being edited.
    pub editing: bool,
    /// Selected row.
    pub selected: usize,
    /// The selected task: the selection stays on it while the rows re-sort.
    pub selected_id: Option<TaskId>,
    /// Keep selecting the newest task (`f`); any move stops it.
    pub follow: bool,
    /// First row on screen.
    offset: usize,
    table: TableState,
    /// The orders kept across frames.
    kept: KeptOrders,
}

impl Default for TasksView {
    fn default() -> Self {
        Self {
            sort: Column::Busy,
            descending: true,
            filter: String::new(),
            editing: false,
            selected: 0,
            selected_id: None,
            follow: false,
            offset: 0,
            table: TableState::default(),
            kept: KeptOrders::default(),
        }
    }
}

impl TasksView {
    /// The tasks shown, in display order.
    #[must_use]
    pub fn rows<'s>(&self, state: &'s State) -> Vec<&'s Task> {
        let mut ordered = self.ordered(state);
        let len = ordered.len();
        ordered.window(0, len)
    }

    /// The tasks shown, in display order, as ordered from the keys the view keeps
    /// (what [`Self::render`] draws from; [`Self::rows`] orders from the tasks).
    #[cfg(test)]
    pub(crate) fn kept_rows(&mut self, state: &State) -> Vec<TaskId> {
        let kept = self.take_kept(state);
        let mut ordered = self.ordered_with(state, &kept);
        let len = ordered.len();
        let rows = ordered.window(0, len).iter().map(|t| t.id).collect();
        self.kept = kept;
        rows
    }

    /// The tasks the filter keeps, ready to be put in display order.
    fn ordered<'s>(&self, state: &'s State) -> Ordered<'s> {
        let now = state.now();
        let needle = self.filter.to_lowercase();
        // In no order: `Ordered` orders what is asked of it (ties by id).
        let mut rows: Vec<&Task> = state
            .tasks
            .values_unordered()
            .filter(|t| task_matches(t, &needle) || waiting_matches(state, t.id, &needle))
            .collect();
        let keyed: Option<Vec<(u64, TaskId, &Task)>> = rows
            .iter()
            .map(|&t| numeric_key(self.sort, t, state, now).map(|k| (k, t.id, t)))
            .collect();
        if let Some(keyed) = keyed {
            return Ordered::Keyed {
                keyed,
                descending: self.descending,
            };
        }
        rows.sort_by(|a, b| {
            let o = compare_text(self.sort, a, b).then(a.id.cmp(&b.id));
            if self.descending { o.reverse() } else { o }
        });
        Ordered::Sorted(rows)
    }

    /// The kept sort keys, taken out of the view and brought up to date with
    /// `state` when the list can be ordered from them (give them back after).
    fn take_kept(&mut self, state: &State) -> KeptOrders {
        let mut kept = std::mem::take(&mut self.kept);
        kept.sync(self, state);
        kept
    }

    /// [`Self::ordered`], from `keys` (see [`Self::take_keys`]) where it can.
    fn ordered_with<'s>(&self, state: &'s State, kept: &'s KeptOrders) -> Ordered<'s> {
        if keys::cacheable(self.sort) {
            Ordered::Cached {
                keys: &kept.keys,
                state,
                descending: self.descending,
            }
        } else if self.filter.is_empty() && text_order::orders(self.sort) {
            Ordered::Text {
                order: &kept.text,
                state,
                descending: self.descending,
            }
        } else if text_order::orders(self.sort) {
            Ordered::FilteredText {
                order: &kept.text,
                keys: &kept.keys,
                state,
                descending: self.descending,
            }
        } else {
            self.ordered(state)
        }
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let kept = self.take_kept(state);
        let action = self.on_key_with(key, state, &kept);
        self.kept = kept;
        action
    }

    fn on_key_with(&mut self, key: KeyEvent, state: &State, kept: &KeptOrders) -> Action {
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            self.selected_id = None;
            return Action::None;
        }
        let mut rows = self.ordered_with(state, kept);
        let len = rows.len();
        if let Some(i) = self.selected_id.and_then(|id| rows.position(id)) {
            self.selected = i;
        }
        let col = self.sort.index();
        let moved = match key.code {
            KeyCode::Down | KeyCode::Char('j') => Some(step(self.selected, 1, len)),
            KeyCode::Up | KeyCode::Char('k') => Some(step(self.selected, -1, len)),
            KeyCode::PageDown => Some(step(self.selected, 20, len)),
            KeyCode::PageUp => Some(step(self.selected, -20, len)),
            KeyCode::Home | KeyCode::Char('g') => Some(0),
            KeyCode::End | KeyCode::Char('G') => Some(len.saturating_sub(1)),
            _ => None,
        };
        if let Some(row) = moved {
            self.selected = row;
            self.follow = false;
            self.selected_id = rows.at(row).map(|t| t.id);
            return Action::None;
        }
        match key.code {
            KeyCode::Left | KeyCode::Char('h') => {
                self.sort = Column::ALL[(col + Column::ALL.len() - 1) % Column::ALL.len()];
            }
            KeyCode::Right | KeyCode::Char('l') => self.sort = Column::ALL[(col + 1) % Column::ALL.len()],
            KeyCode::Char('i') => self.descending = !self.descending,
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Char('f') => self.follow = !self.follow,
            KeyCode::Enter => {
                if let Some(t) = rows.at(self.selected) {
                    return Action::OpenTask(t.id);
                }
            }
            KeyCode::Char('w') => {
                if let Some(w) = rows.at(self.selected).and_then(|t| state.resources.current_wait(t.id)) {
                    return Action::OpenResource(w.resource);
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Puts the selection on the followed or selected task in `rows`, and remembers
    /// which task it is on.
    fn place_selection(&mut self, rows: &mut Ordered<'_>) {
        if self.follow {
            self.selected_id = rows.max_id();
        }
        match self.selected_id.and_then(|id| rows.position(id)) {
            Some(i) => self.selected = i,
            None => {
                self.selected = self.selected.min(rows.len().saturating_sub(1));
                self.selected_id = rows.at(self.selected).map(|t| t.id);
            }
        }
    }

    /// The selected task, if any.
    #[must_use]
    pub fn selected_task(&self, state: &State) -> Option<TaskId> {
        let mut rows = self.ordered(state);
        self.selected_id
            .filter(|id| rows.position(*id).is_some())
            .or_else(|| rows.at(self.selected).map(|t| t.id))
    }

    /// Draws the list.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let kept = self.take_kept(state);
        self.render_with(f, area, state, &kept);
        self.kept = kept;
    }

    fn render_with(&mut self, f: &mut Frame<'_>, area: Rect, state: &State, kept: &KeptOrders) {
        let mut rows = self.ordered_with(state, kept);
        self.place_selection(&mut rows);
        // Only the rows on screen are formatted: with thousands of tasks, formatting
        // them all would cost more than everything else in a frame.
        let visible = usize::from(area.height.saturating_sub(3)).max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + visible {
            self.offset = self.selected + 1 - visible;
        }
        self.offset = self.offset.min(rows.len().saturating_sub(visible));
        let now = state.now();
        let header = Row::new(Column::ALL.iter().map(|c| {
            let arrow = match (*c == self.sort, self.descending) {
                (true, true) => "▼",
                (true, false) => "▲",
                _ => "",
            };
            let style = if *c == self.sort {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new().add_modifier(Modifier::BOLD)
            };
            Cell::from(format!("{}{arrow}", c.title())).style(style)
        }));
        let shown = rows.window(self.offset, visible);
        let body = shown.iter().map(|t| {
            let state_style = match t.status {
                TaskStatus::Running => Style::new().fg(Color::Green),
                TaskStatus::Scheduled => Style::new().fg(Color::Cyan),
                TaskStatus::Idle => Style::new(),
                TaskStatus::Completed(lucid_protocol::Outcome::Ok) => Style::new().fg(Color::DarkGray),
                TaskStatus::Completed(_) => Style::new().fg(Color::Red),
                TaskStatus::EndedByRestart => Style::new().fg(Color::Magenta),
            };
            let warn = if t.warnings > 0 { "⚠" } else { "" };
            Row::new(vec![
                Cell::from(format!("{warn}{}", t.id)),
                Cell::from(t.display_name()),
                Cell::from(kind_name(t.kind)),
                Cell::from(t.status.name()).style(state_style),
                Cell::from(t.cpu.map_or_else(|| "-".into(), |c| c.to_string())),
                Cell::from(dur(state, t.total_ticks(now))),
                Cell::from(dur(state, t.busy_ticks_at(now))),
                Cell::from(dur(state, t.scheduled_ticks_at(now))),
                Cell::from(dur(state, t.idle_ticks_at(now))),
                Cell::from(t.polls.to_string()),
                Cell::from(t.wakes.to_string()),
                Cell::from(t.self_wakes.to_string()),
                Cell::from(super::resources::waiting_on(state, t.id).unwrap_or_default()),
                Cell::from(t.location.to_string()),
            ])
        });
        let mut title = format!(
            " Tasks: {} shown of {} ({} expired) │ sort {} {} ",
            rows.len(),
            state.tasks.len(),
            state.tasks_expired,
            self.sort.title(),
            if self.descending { "desc" } else { "asc" }
        );
        if self.follow {
            title.push_str("│ following the newest task ");
        }
        if self.editing || !self.filter.is_empty() {
            title.push_str(&format!(
                "│ filter /{}{} ",
                self.filter,
                if self.editing { "▏" } else { "" }
            ));
        }
        let table = Table::new(body, Column::ALL.map(Column::width))
            .header(header)
            .block(Block::bordered().title(Line::from(title)))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        self.table = TableState::default().with_selected((!rows.is_empty()).then_some(self.selected - self.offset));
        f.render_stateful_widget(table, area, &mut self.table);
    }
}

#[cfg(test)]
mod tests {
    use lucid_protocol::testdata::{Workload, generate};

    use super::*;
    use crate::{live::Session, state::Config, time::HostNs};

    /// A window of the order is exactly the same rows as the same place in a full
    /// sort, for every column in both directions, including columns where most keys
    /// tie (the id breaks the tie), and a task's position is its index there.
    #[test]
    fn a_window_of_the_order_is_that_slice_of_the_full_sort() {
        let g = generate(&Workload {
            cpus: 3,
            tasks: 300,
            polls_per_task: 3,
            live: true,
            ..Workload::default()
        });
        let mut session = Session::new("test".into(), Config::default());
        session.feed(HostNs(0), &g.wire());
        session.flush();
        let state = &session.state;
        let now = state.now();
        assert!(state.tasks.len() >= 300, "{} tasks", state.tasks.len());
        for sort in Column::ALL {
            for descending in [false, true] {
                let view = TasksView {
                    sort,
                    descending,
                    ..TasksView::default()
                };
                // The oracle: every task sorted by the column, then the id.
                let mut all: Vec<&Task> = state.tasks.values_unordered().collect();
                all.sort_by(|a, b| {
                    let o = match (numeric_key(sort, a, state, now), numeric_key(sort, b, state, now)) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        _ => compare_text(sort, a, b),
                    }
                    .then(a.id.cmp(&b.id));
                    if descending { o.reverse() } else { o }
                });
                let all: Vec<TaskId> = all.iter().map(|t| t.id).collect();
                let len = all.len();
                for (from, n) in [
                    (0, 10),
                    (0, len),
                    (7, 13),
                    (150, 40),
                    (len - 20, 20),
                    (len - 1, 5),
                    (len + 5, 3),
                ] {
                    let mut ordered = view.ordered(state);
                    let got: Vec<TaskId> = ordered.window(from, n).iter().map(|t| t.id).collect();
                    let want = &all[from.min(len)..(from + n).min(len)];
                    assert_eq!(got, want, "{sort:?} descending={descending} rows {from}+{n}");
                    // Positions hold whatever order the window left the rows in.
                    for (i, id) in all.iter().enumerate().step_by(29) {
                        assert_eq!(ordered.position(*id), Some(i), "{sort:?} descending={descending}");
                    }
                }
            }
        }
    }

    /// The orders kept across frames order the list exactly as a full sort does,
    /// after every chunk of input (tasks spawned, polled, completed, evicted and moved
    /// to another spawn location between two frames: `after_every_chunk`), for every column in both
    /// directions, with and without a filter, whether a column's order was kept all
    /// along or made again after another column's.
    #[test]
    fn kept_orders_order_the_list_as_a_full_sort_after_every_chunk() {
        let columns: Vec<(Column, &str)> = Column::ALL
            .into_iter()
            .flat_map(|c| ["", "worker", "idle"].map(|needle| (c, needle)))
            .collect();
        let mut kept: Vec<KeptOrders> = columns.iter().map(|_| KeptOrders::default()).collect();
        let mut shared = KeptOrders::default();
        let mut compared = 0;
        crate::ui::kept::after_every_chunk(|state| {
            for (&(c, needle), keys) in columns.iter().zip(&mut kept) {
                for descending in [false, true] {
                    let view = TasksView {
                        sort: c,
                        descending,
                        filter: needle.into(),
                        ..TasksView::default()
                    };
                    keys.sync(&view, state);
                    shared.sync(&view, state);
                    let mut full = view.ordered(state);
                    let len = full.len();
                    let want: Vec<TaskId> = full.window(0, len).iter().map(|t| t.id).collect();
                    for keys in [&*keys, &shared] {
                        let mut cached = view.ordered_with(state, keys);
                        assert_eq!(cached.len(), len, "{c:?} /{needle}");
                        assert_eq!(cached.max_id(), want.iter().max().copied(), "{c:?} /{needle}");
                        for (from, n) in [(0, 10), (0, len), (len / 2, 7), (len.saturating_sub(3), 9)] {
                            let got: Vec<TaskId> = cached.window(from, n).iter().map(|t| t.id).collect();
                            let want = &want[from.min(len)..(from + n).min(len)];
                            assert_eq!(got, want, "{c:?} /{needle} descending={descending} rows {from}+{n}");
                        }
                        for (i, id) in want.iter().enumerate().step_by(17) {
                            assert_eq!(cached.position(*id), Some(i), "{c:?} /{needle} descending={descending}");
                        }
                    }
                    compared += len;
                }
            }
        });
        assert!(compared > 10_000, "{compared} rows compared");
    }
}
