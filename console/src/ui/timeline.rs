//! Per-CPU lanes of poll slices over trace time, with zoom, pan, follow and a cursor
//! that names the slice under it.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::{Action, at, dur, step};
use crate::state::{Slice, State};

/// Colours for tasks, picked by id.
const PALETTE: [Color; 6] = [
    Color::Green,
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::LightRed,
];
/// Width of the lane labels.
const LABEL: u16 = 7;
/// Narrowest window (ns).
const MIN_SPAN_NS: u64 = 1_000;

/// State of the timeline.
#[derive(Debug, Clone)]
pub struct TimelineView {
    /// Window width in trace nanoseconds.
    pub span_ns: u64,
    /// Window end (TSC); `None` follows the newest events.
    pub end: Option<u64>,
    /// Cursor column within the lanes.
    pub cursor: u16,
    /// Selected lane (index into the CPUs).
    pub lane: usize,
}

impl Default for TimelineView {
    fn default() -> Self {
        Self {
            span_ns: 2_000_000,
            end: None,
            cursor: 0,
            lane: 0,
        }
    }
}

impl TimelineView {
    fn window(&self, state: &State) -> (u64, u64) {
        let end = self.end.unwrap_or_else(|| state.now());
        let span = state.ns_to_ticks(self.span_ns).max(1);
        (end.saturating_sub(span), end)
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let (start, end) = self.window(state);
        let quarter = (end - start) / 4;
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
            KeyCode::Up | KeyCode::Char('k') => self.lane = step(self.lane, -1, state.cpus.len()),
            KeyCode::Down | KeyCode::Char('j') => self.lane = step(self.lane, 1, state.cpus.len()),
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let (start, end) = self.window(state);
        let follow = if self.end.is_none() { "following" } else { "paused at" };
        let title = format!(
            " Timeline: {} window, {follow} {} │ +/- zoom, ←/→ pan, f follow, ,/. cursor ",
            crate::fmt::duration_ns(self.span_ns),
            at(state, end)
        );
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let lanes_h = u16::try_from(state.cpus.len()).unwrap_or(u16::MAX);
        let [lanes, axis, info] =
            Layout::vertical([Constraint::Max(lanes_h), Constraint::Length(1), Constraint::Min(1)]).areas(inner);
        let width = lanes.width.saturating_sub(LABEL);
        self.cursor = self.cursor.min(width.saturating_sub(1));
        self.lane = self.lane.min(state.cpus.len().saturating_sub(1));
        let span = (end - start).max(1);
        let mut under_cursor: Option<(u32, Slice)> = None;
        for (i, (cpu, c)) in state.cpus.iter().enumerate() {
            let Some(y) = u16::try_from(i).ok().filter(|&y| y < lanes.height) else {
                break;
            };
            let row = Rect::new(lanes.x, lanes.y + y, lanes.width, 1);
            let label_style = if i == self.lane {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            f.buffer_mut()
                .set_string(row.x, row.y, format!("cpu{cpu:<3}"), label_style);
            let lane = Rect::new(row.x + LABEL, row.y, width, 1);
            let hit = draw_lane(f.buffer_mut(), lane, c.slices.iter(), start, span, self.cursor);
            if i == self.lane {
                under_cursor = hit.map(|s| (*cpu, s));
            }
            if i == self.lane && width > 0 {
                let cell = &mut f.buffer_mut()[(lane.x + self.cursor, lane.y)];
                cell.set_style(Style::new().add_modifier(Modifier::REVERSED));
            }
        }
        let left = at(state, start);
        let right = at(state, end);
        let pad = usize::from(width).saturating_sub(left.len() + right.len());
        f.render_widget(
            Paragraph::new(format!(
                "{:LABEL$}{left}{}{right}",
                "",
                " ".repeat(pad),
                LABEL = usize::from(LABEL)
            )),
            axis,
        );
        let text = match under_cursor {
            Some((cpu, s)) => {
                let name = state.tasks.get(&s.task).map_or_else(String::new, |t| t.display_name());
                format!(
                    "cursor: task {} ({name}) on cpu {cpu}, poll from {} for {}{}",
                    s.task,
                    at(state, s.start),
                    dur(state, s.end - s.start),
                    if s.ready { ", returned Ready" } else { "" }
                )
            }
            None if state.cpus.is_empty() => "no events yet".into(),
            None => "cursor: idle".into(),
        };
        f.render_widget(Paragraph::new(Line::from(text)), info);
    }
}

/// Paints one lane: `█` where a poll ran (coloured by task), `·` where the CPU was
/// idle. Returns the slice under the cursor column.
fn draw_lane<'a>(
    buf: &mut Buffer,
    lane: Rect,
    slices: impl Iterator<Item = &'a Slice>,
    start: u64,
    span: u64,
    cursor: u16,
) -> Option<Slice> {
    let w = u64::from(lane.width);
    if w == 0 {
        return None;
    }
    for x in 0..lane.width {
        buf[(lane.x + x, lane.y)]
            .set_char('·')
            .set_style(Style::new().fg(Color::DarkGray));
    }
    let end = start + span;
    let mut hit = None;
    for s in slices.filter(|s| s.end >= start && s.start <= end) {
        let a = (u128::from(s.start.saturating_sub(start)) * u128::from(w) / u128::from(span)) as u64;
        let b = (u128::from(s.end.saturating_sub(start)) * u128::from(w) / u128::from(span)) as u64;
        let (a, b) = (a.min(w - 1), b.min(w - 1));
        let color = PALETTE[(s.task % PALETTE.len() as u64) as usize];
        for x in a..=b {
            let x = x as u16;
            buf[(lane.x + x, lane.y)]
                .set_char('█')
                .set_style(Style::new().fg(color));
        }
        if (a..=b).contains(&u64::from(cursor)) {
            hit = Some(*s);
        }
    }
    hit
}
