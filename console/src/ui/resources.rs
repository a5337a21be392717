//! The resources tasks wait on: kind, name, creation site, capacity, values
//! queued in a channel (sends less receives, as of the latest operation counts),
//! current waiters and age; Enter lists the tasks waiting on the selected one and who
//! holds a channel's senders or a mutex's lock.

use std::collections::BTreeSet;

use lucid_protocol::{ResourceId, TaskId};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{Action, dur, step};
use crate::state::State;

/// `chan#12 ping recv 1.2ms`: what `task` waits on, and for how long (`None` if it
/// does not wait).
#[must_use]
pub fn waiting_on(state: &State, task: TaskId) -> Option<String> {
    let w = state.resources.current_wait(task)?;
    Some(format!(
        "{} {} {}",
        state.resources.label(w.resource),
        w.op.name(),
        dur(state, state.now().saturating_sub(w.since))
    ))
}

/// One row: a live resource, or one known only from the waits on it (created
/// before the console connected).
struct ResourceRow {
    id: ResourceId,
    waiters: usize,
}

/// State of the resources view.
#[derive(Debug, Clone, Default)]
pub struct ResourcesView {
    /// Selected row.
    pub selected: usize,
    /// The selected resource's waiting tasks are listed.
    pub open: bool,
    table: TableState,
}

impl ResourcesView {
    /// Resources in display order: most waiters first, then by id.
    fn rows(state: &State) -> Vec<ResourceRow> {
        let res = &state.resources;
        let waited: BTreeSet<ResourceId> = res.waits.values().flatten().map(|w| w.resource).collect();
        let ids: BTreeSet<ResourceId> = res.live.keys().copied().chain(waited).collect();
        let mut rows: Vec<ResourceRow> = ids
            .into_iter()
            .map(|id| ResourceRow {
                id,
                waiters: res.waiter_count(id),
            })
            .collect();
        rows.sort_by(|a, b| b.waiters.cmp(&a.waiters).then(a.id.cmp(&b.id)));
        rows
    }

    /// The selected resource, if any.
    #[must_use]
    pub fn selected_resource(&self, state: &State) -> Option<ResourceId> {
        Self::rows(state).get(self.selected).map(|r| r.id)
    }

    /// Selects resource `id` (if listed) with its waiters open.
    pub fn select(&mut self, state: &State, id: ResourceId) {
        if let Some(i) = Self::rows(state).iter().position(|r| r.id == id) {
            self.selected = i;
            self.open = true;
        }
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let len = Self::rows(state).len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = step(self.selected, 1, len),
            KeyCode::Up | KeyCode::Char('k') => self.selected = step(self.selected, -1, len),
            KeyCode::PageDown => self.selected = step(self.selected, 20, len),
            KeyCode::PageUp => self.selected = step(self.selected, -20, len),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = len.saturating_sub(1),
            KeyCode::Enter => self.open = !self.open,
            KeyCode::Esc => self.open = false,
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let rows = Self::rows(state);
        self.selected = self.selected.min(rows.len().saturating_sub(1));
        let res = &state.resources;
        let now = state.now();
        let (table_area, waiters_area) = if self.open {
            let [t, w] = Layout::vertical([Constraint::Min(4), Constraint::Length(8)]).areas(area);
            (t, Some(w))
        } else {
            (area, None)
        };
        let header = Row::new(
            [
                "ID", "Kind", "Name", "Cap", "Queued", "Waiters", "Waits", "Ops", "Age", "Location",
            ]
            .map(|h| Cell::from(h).style(Style::new().add_modifier(Modifier::BOLD))),
        );
        let body = rows.iter().map(|r| {
            let cells = match res.get(r.id) {
                Some(live) => [
                    r.id.to_string(),
                    live.kind.name().to_string(),
                    live.name.clone(),
                    live.capacity.map_or_else(|| "-".into(), |c| c.to_string()),
                    live.queued().map_or_else(|| "-".into(), |n| n.to_string()),
                    r.waiters.to_string(),
                    live.waits.to_string(),
                    live.ops_text(),
                    dur(state, now.saturating_sub(live.created)),
                    live.location.clone(),
                ],
                None => [
                    r.id.to_string(),
                    "?".into(),
                    String::new(),
                    "-".into(),
                    "-".into(),
                    r.waiters.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "(created before this console connected)".into(),
                ],
            };
            Row::new(cells.map(Cell::from))
        });
        let waiting = res.waits.len();
        let title = format!(
            " Resources: {} live ({} created, {} dropped) │ {waiting} tasks waiting │ Enter: waiting tasks ",
            res.live.len(),
            res.created,
            res.dropped
        );
        let widths = [
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(20),
            Constraint::Length(8),
            Constraint::Min(10),
        ];
        let table = Table::new(body, widths)
            .header(header)
            .block(Block::bordered().title(Line::from(title)))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        self.table = TableState::default().with_selected((!rows.is_empty()).then_some(self.selected));
        f.render_stateful_widget(table, table_area, &mut self.table);
        if let Some(area) = waiters_area {
            let selected = rows.get(self.selected).map(|r| r.id);
            let lines: Vec<Line<'_>> = selected
                .map(|id| {
                    res.waiters(id)
                        .map(|(task, w)| {
                            Line::from(format!(
                                "{}  {} for {}",
                                state.task_label(task),
                                w.op.name(),
                                dur(state, now.saturating_sub(w.since))
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let title = match selected {
                Some(id) => format!(" Waiting on {} ({}) ", res.label(id), lines.len()),
                None => " Waiting ".into(),
            };
            let mut lines = if lines.is_empty() {
                vec![Line::from("no task waits on it")]
            } else {
                lines
            };
            // Who could end a wait: the holders of a channel's senders, a mutex's
            // lock.
            if let Some(r) = selected.and_then(|id| res.get(id))
                && let Some(h) = &r.holders
            {
                let held = h.text(|t| state.task_label(t));
                let held = if held.is_empty() { "none".into() } else { held };
                let what = if r.kind == lucid_protocol::ResourceKind::Mutex {
                    "held by"
                } else {
                    "senders held by"
                };
                lines.insert(0, Line::from(format!("{what}: {held}")));
            }
            let body = Paragraph::new(lines);
            f.render_widget(body.block(Block::bordered().title(title)), area);
        }
    }
}
