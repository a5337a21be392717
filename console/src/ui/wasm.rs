//! Wasm instances: module, task, state, memory with a growth sparkline, fuel and
//! slices, hostcalls (by kind for the selected instance) and traps.

use lucid_protocol::InstanceId;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::{Action, dur, spark, step};
use crate::state::{OTHER_HOSTCALLS, State, WasmInstance};
use crate::time::Ticks;

/// State of the wasm view.
#[derive(Debug, Clone, Default)]
pub struct WasmView {
    /// Selected row.
    pub selected: usize,
    table: TableState,
}

fn memory_spark(w: &WasmInstance) -> String {
    let max = w.memory_history.iter().map(|&(_, p)| p).max().unwrap_or(0).max(1);
    let values: Vec<f64> = w
        .memory_history
        .iter()
        .rev()
        .take(16)
        .rev()
        .map(|&(_, p)| f64::from(p) / f64::from(max))
        .collect();
    spark(&values)
}

impl WasmView {
    fn selected_instance<'s>(&self, state: &'s State) -> Option<(InstanceId, &'s WasmInstance)> {
        state.wasm.iter().nth(self.selected).map(|(i, w)| (*i, w))
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: KeyEvent, state: &State) -> Action {
        let len = state.wasm.len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = step(self.selected, 1, len),
            KeyCode::Up | KeyCode::Char('k') => self.selected = step(self.selected, -1, len),
            KeyCode::Enter => {
                if let Some((_, w)) = self.selected_instance(state) {
                    return Action::OpenTask(w.task);
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn render(&mut self, f: &mut Frame<'_>, area: Rect, state: &State) {
        let [list, calls] = Layout::vertical([Constraint::Min(4), Constraint::Length(8)]).areas(area);
        self.selected = self.selected.min(state.wasm.len().saturating_sub(1));
        let rows = state.wasm.iter().map(|(id, w)| {
            let style = if w.traps > 0 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(id.to_string()),
                Cell::from(w.module.clone()),
                Cell::from(w.task.to_string()),
                Cell::from(w.state_text()),
                Cell::from(w.memory_pages.to_string()),
                Cell::from(memory_spark(w)).style(Style::new().fg(Color::Green)),
                Cell::from(w.fuel.to_string()),
                Cell::from(w.slices.to_string()),
                Cell::from(w.hostcalls_total.to_string()),
                Cell::from(w.traps.to_string()),
                // An instance that ended without a trap shows its last stderr line.
                Cell::from(w.last_trap.clone().unwrap_or_else(|| {
                    w.stderr_tail
                        .as_deref()
                        .and_then(|t| t.lines().last())
                        .map(|l| format!("stderr: {l}"))
                        .unwrap_or_default()
                })),
            ])
            .style(style)
        });
        let header = Row::new([
            "ID",
            "Module",
            "Task",
            "State",
            "Pages",
            "Growth",
            "Fuel",
            "Slices",
            "Hostcalls",
            "Traps",
            "Last trap",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD));
        let table = Table::new(
            rows,
            [
                Constraint::Length(5),
                Constraint::Length(14),
                Constraint::Length(6),
                Constraint::Length(28),
                Constraint::Length(6),
                Constraint::Length(16),
                Constraint::Length(12),
                Constraint::Length(7),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Min(10),
            ],
        )
        .header(header)
        .block(Block::bordered().title(format!(
            " Wasm instances: {} │ Enter opens the driving task ",
            state.wasm.len()
        )))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        self.table.select((!state.wasm.is_empty()).then_some(self.selected));
        f.render_stateful_widget(table, list, &mut self.table);

        let (title, rows): (String, Vec<Row<'_>>) = match self.selected_instance(state) {
            Some((id, w)) => (
                match (w.args.is_empty(), w.env.is_empty()) {
                    (true, true) => format!(" Hostcalls of instance {id} ({}) ", w.module),
                    (_, true) => format!(" Hostcalls of instance {id} ({}) │ {} ", w.module, w.command_line()),
                    _ => format!(
                        " Hostcalls of instance {id} ({}) │ {} │ env {} ",
                        w.module,
                        w.command_line(),
                        w.env.join(" ")
                    ),
                },
                w.hostcalls
                    .iter()
                    .map(|(n, h)| {
                        let mean = h.ticks.checked_div(h.calls).unwrap_or(0);
                        Row::new(vec![
                            if *n == OTHER_HOSTCALLS {
                                "others".to_string()
                            } else {
                                lucid_protocol::wasm_hostcall_name(*n).into_owned()
                            },
                            h.calls.to_string(),
                            dur(state, Ticks(h.ticks)),
                            dur(state, Ticks(mean)),
                        ])
                    })
                    .collect(),
            ),
            None => (" Hostcalls ".into(), Vec::new()),
        };
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(12),
                    Constraint::Length(10),
                    Constraint::Length(10),
                    Constraint::Min(10),
                ],
            )
            .header(Row::new(["Hostcall", "Calls", "Time", "Mean"]).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(Block::bordered().title(title)),
            calls,
        );
    }
}
