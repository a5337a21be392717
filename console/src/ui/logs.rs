//! Tracing events with a minimum level and a target filter.

use lucid_protocol::Level;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Action, at};
use crate::state::{BootMark, LogLine, State, level_name};
use crate::time::Ticks;

/// State of the logs view.
#[derive(Debug, Clone, Default)]
pub struct LogsView {
    /// Lines below this level are hidden (`None`: all).
    pub min_level: Option<Level>,
    /// Only targets containing this text.
    pub target: String,
    /// The target filter is being edited.
    pub editing: bool,
    /// Lines scrolled back from the newest (0 follows).
    pub scroll: usize,
}

const fn next_level(l: Option<Level>) -> Option<Level> {
    match l {
        None => Some(Level::Debug),
        Some(Level::Trace) => Some(Level::Debug),
        Some(Level::Debug) => Some(Level::Info),
        Some(Level::Info) => Some(Level::Warn),
        Some(Level::Warn) => Some(Level::Error),
        Some(Level::Error) => None,
    }
}

fn level_style(l: Option<Level>) -> Style {
    match l {
        Some(Level::Error) => Style::new().fg(Color::Red),
        Some(Level::Warn) => Style::new().fg(Color::Yellow),
        Some(Level::Info) => Style::new().fg(Color::Green),
        Some(Level::Debug) => Style::new().fg(Color::Blue),
        Some(Level::Trace) | None => Style::new().fg(Color::DarkGray),
    }
}

/// A row of the view: a log line, or where a kernel boot began.
#[derive(Clone, Copy)]
enum Row<'s> {
    Log(&'s LogLine),
    Boot(&'s BootMark),
}

impl LogsView {
    fn shown<'s>(&self, state: &'s State) -> Vec<&'s LogLine> {
        state
            .logs
            .iter()
            .filter(|l| self.min_level.is_none_or(|m| l.level.is_some_and(|lv| lv >= m)))
            .filter(|l| self.target.is_empty() || l.target.contains(&self.target))
            .collect()
    }

    /// The shown lines with a row before the first line of every boot after the
    /// first (whatever the filter: a restart explains the lines around it).
    fn rows<'s>(shown: &[&'s LogLine], state: &'s State) -> Vec<Row<'s>> {
        let first = shown.first().map_or(Ticks::MAX, |l| l.ts);
        let mut marks = state.boot_marks.iter().filter(|m| m.ts > first).peekable();
        let mut rows = Vec::with_capacity(shown.len());
        for &l in shown {
            while let Some(m) = marks.next_if(|m| m.ts <= l.ts) {
                rows.push(Row::Boot(m));
            }
            rows.push(Row::Log(l));
        }
        rows.extend(marks.map(Row::Boot));
        rows
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.target.clear();
                }
                KeyCode::Backspace => {
                    self.target.pop();
                }
                KeyCode::Char(c) => self.target.push(c),
                _ => {}
            }
            return Action::None;
        }
        match key.code {
            KeyCode::Char('l') => self.min_level = next_level(self.min_level),
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(20),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(20),
            KeyCode::End | KeyCode::Char('G') => self.scroll = 0,
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let shown = self.shown(state);
        let all = Self::rows(&shown, state);
        let rows = usize::from(area.height.saturating_sub(2));
        self.scroll = self.scroll.min(all.len().saturating_sub(rows));
        let end = all.len() - self.scroll;
        let start = end.saturating_sub(rows);
        let lines: Vec<Line<'_>> = all[start..end]
            .iter()
            .map(|row| match *row {
                Row::Log(l) => Line::from(vec![
                    Span::raw(format!("{:>10} cpu{:<2} ", at(state, l.ts), l.cpu)),
                    Span::styled(format!("{:<5} ", level_name(l.level)), level_style(l.level)),
                    Span::styled(format!("{} ", l.target), Style::new().fg(Color::DarkGray)),
                    Span::raw(l.text.clone()),
                ]),
                Row::Boot(m) => Line::styled(
                    format!(
                        "{:>10} ── kernel restarted: boot {} begins ({} tasks ended with boot {}) ──",
                        at(state, m.ts),
                        m.boot,
                        m.tasks_ended,
                        m.boot - 1
                    ),
                    Style::new().fg(Color::Magenta),
                ),
            })
            .collect();
        let mut title = format!(
            " Logs: {} of {} ({} older dropped) │ level ≥ {} ",
            shown.len(),
            state.logs.len(),
            state.logs_dropped,
            self.min_level.map_or("any", |l| level_name(Some(l)))
        );
        if self.editing || !self.target.is_empty() {
            title.push_str(&format!(
                "│ target /{}{} ",
                self.target,
                if self.editing { "▏" } else { "" }
            ));
        }
        if self.scroll > 0 {
            title.push_str(&format!("│ {} lines back ", self.scroll));
        }
        let body = if lines.is_empty() {
            Paragraph::new("no tracing events yet")
        } else {
            Paragraph::new(lines)
        };
        f.render_widget(body.block(Block::bordered().title(title)), area);
    }
}
