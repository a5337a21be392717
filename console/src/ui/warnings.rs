//! Warnings by kind, stream health with dropped events per CPU, and the latest
//! warnings (newest first); Enter opens the task of the selected one.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{Action, at, doing, step};
use crate::state::{State, WarningKind};
use crate::symbols::Symbolizer;

/// State of the warnings view.
#[derive(Debug, Clone, Default)]
pub struct WarningsView {
    /// Selected row of the list (0 = newest).
    pub selected: usize,
    table: TableState,
}

impl WarningsView {
    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let len = state.recent_warnings.len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = step(self.selected, 1, len),
            KeyCode::Up | KeyCode::Char('k') => self.selected = step(self.selected, -1, len),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::Enter => {
                let w = state.recent_warnings.iter().rev().nth(self.selected);
                if let Some(task) = w.and_then(|w| w.task) {
                    return Action::OpenTask(task);
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State, symbols: &Symbolizer) {
        let cpus = u16::try_from(state.cpus.len()).unwrap_or(u16::MAX);
        let top_h = (WarningKind::ALL.len() as u16 + 3)
            .max(cpus.saturating_add(3))
            .min(area.height / 2);
        let [top, list] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(3)]).areas(area);
        let [kinds, health] = Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(top);

        let rows = WarningKind::ALL.iter().map(|k| {
            let n = state.warning_counts.get(k).copied().unwrap_or(0);
            let style = if n > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            Row::new(vec![Cell::from(k.name()), Cell::from(n.to_string())]).style(style)
        });
        f.render_widget(
            Table::new(rows, [Constraint::Length(18), Constraint::Min(6)])
                .header(Row::new(["Kind", "Count"]).style(Style::new().add_modifier(Modifier::BOLD)))
                .block(Block::bordered().title(" Warnings by kind ")),
            kinds,
        );

        let h = &state.health;
        let mut title = format!(
            " Stream: {} gaps ({} frames lost), {} CRC errors, {} malformed, {} wrong version, {} dropped ",
            h.sequence_gaps, h.missing_frames, h.crc_errors, h.malformed_frames, h.version_errors, state.dropped_events
        );
        if state.kernel_restarts > 0 {
            title.push_str(&format!("│ {} kernel restarts ", state.kernel_restarts));
        }
        let attached_loss = state.loss.attached(state.dropped_events) > 0;
        let rows = state.cpus.iter().map(|(cpu, c)| {
            let style = if c.dropped > 0 && attached_loss {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(format!("cpu {cpu}")),
                Cell::from(c.dropped.to_string()),
                Cell::from(c.events.to_string()),
            ])
            .style(style)
        });
        // Of the dropped, those no console read (before it attached, or while it had
        // the stream paused): expected, and not what red rows warn about.
        let unread = (state.loss.unattached > 0).then(|| {
            Row::new(vec![
                Cell::from("unread"),
                Cell::from(state.loss.unattached.to_string()),
                Cell::from("of the dropped: before this console attached, or paused"),
            ])
            .style(Style::new().fg(Color::DarkGray))
        });
        let rows = rows.chain(unread);
        f.render_widget(
            Table::new(
                rows,
                [Constraint::Length(8), Constraint::Length(10), Constraint::Min(8)],
            )
            .header(Row::new(["CPU", "Dropped", "Events"]).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(Block::bordered().title(title)),
            health,
        );

        let len = state.recent_warnings.len();
        self.selected = self.selected.min(len.saturating_sub(1));
        let rows = state.recent_warnings.iter().rev().map(|w| {
            Row::new(vec![
                Cell::from(w.ts.map(|t| at(state, t)).unwrap_or_default()),
                Cell::from(w.kind.name()),
                Cell::from(w.cpu.map(|c| c.to_string()).unwrap_or_default()),
                Cell::from(w.task.map(|t| t.to_string()).unwrap_or_default()),
                Cell::from(format!("{}{}", w.message, doing(state, symbols, w))),
            ])
        });
        let title = format!(
            " Latest warnings ({len} kept, {} in all) │ Enter opens the task ",
            state.warning_counts.values().sum::<u64>()
        );
        let table = Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(16),
                Constraint::Length(4),
                Constraint::Length(6),
                Constraint::Min(10),
            ],
        )
        .header(Row::new(["Time", "Kind", "CPU", "Task", "Message"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        self.table.select((len > 0).then_some(self.selected));
        f.render_stateful_widget(table, list, &mut self.table);
    }
}
