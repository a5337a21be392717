//! The terminal UI: one file per view (render + input), an [`App`] that owns the
//! session and the views' own state, and the event loop.
//!
//! Views read the state model only; nothing here changes it.

pub mod help;
mod kept;
pub mod kernel_log;
pub mod logs;
mod ranks;
pub mod replay;
pub mod resources;
pub mod scheduler;
pub mod task_detail;
pub mod tasks;
pub mod timeline;
pub mod warnings;
pub mod wasm;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use lucid_protocol::TaskId;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::{DefaultTerminal, Frame};

use crate::live::{Link, Session};
use crate::source::{Ingest, IngestEvent};
use crate::state::State;
use crate::symbols::Symbolizer;
use crate::time::Ticks;

/// Smallest terminal the views are laid out for.
pub const MIN_WIDTH: u16 = 60;
/// Smallest terminal height the views are laid out for.
pub const MIN_HEIGHT: u16 = 12;
/// Time per frame spent folding ingested chunks before drawing.
const INGEST_BUDGET: Duration = Duration::from_millis(25);
/// How long the loop waits for a key when nothing is queued.
const TICK: Duration = Duration::from_millis(100);
/// Shortest time between two frames while ingesting.
const FRAME: Duration = Duration::from_millis(33);

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// All tasks.
    Tasks,
    /// One task.
    TaskDetail,
    /// Per-CPU poll lanes.
    Timeline,
    /// CPU utilisation and hotspots.
    Scheduler,
    /// Wasm instances.
    Wasm,
    /// Tracing events.
    Logs,
    /// Warnings and stream health.
    Warnings,
    /// Resources and the tasks waiting on them.
    Resources,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [Self; 8] = [
        Self::Tasks,
        Self::TaskDetail,
        Self::Timeline,
        Self::Scheduler,
        Self::Wasm,
        Self::Logs,
        Self::Warnings,
        Self::Resources,
    ];

    /// Tab title.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::Tasks => "Tasks",
            Self::TaskDetail => "Task",
            Self::Timeline => "Timeline",
            Self::Scheduler => "Scheduler",
            Self::Wasm => "Wasm",
            Self::Logs => "Logs",
            Self::Warnings => "Warnings",
            Self::Resources => "Resources",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// What a view's key handler asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the view's own state.
    None,
    /// Show this task's detail view.
    OpenTask(TaskId),
    /// Show this resource in the Resources view, its waiters listed.
    OpenResource(lucid_protocol::ResourceId),
    /// Go back to the task list.
    Back,
}

/// The console's UI state around a session.
#[derive(Debug)]
pub struct App {
    /// The session the views show.
    pub session: Session,
    /// The state as it was when the display was paused.
    frozen: Option<State>,
    /// The current view.
    pub view: View,
    /// The help overlay is shown.
    pub help: bool,
    /// The user asked to quit.
    pub quit: bool,
    /// Tasks view state.
    pub tasks: tasks::TasksView,
    /// Task detail view state.
    pub detail: task_detail::DetailView,
    /// Timeline view state.
    pub timeline: timeline::TimelineView,
    /// Scheduler view state.
    pub scheduler: scheduler::SchedulerView,
    /// Wasm view state.
    pub wasm: wasm::WasmView,
    /// Logs view state.
    pub logs: logs::LogsView,
    /// Warnings view state.
    pub warnings: warnings::WarningsView,
    /// Resources view state.
    pub resources: resources::ResourcesView,
    /// The kernel's console output, shown in a pane when given.
    pub kernel_log: Option<kernel_log::KernelLog>,
    /// Where the live state is exported, when `--metrics` is given.
    pub metrics: Option<crate::metrics::Server>,
    /// Replay position and controls, shown instead of the link status when replaying.
    pub transport: Option<replay::TransportBar>,
    /// Names sampled kernel code addresses (empty without a kernel ELF: addresses
    /// are then shown in hex).
    pub symbols: Symbolizer,
}

impl App {
    /// An app showing `session`.
    #[must_use]
    pub fn new(session: Session) -> Self {
        Self {
            session,
            frozen: None,
            view: View::Tasks,
            help: false,
            quit: false,
            tasks: tasks::TasksView::default(),
            detail: task_detail::DetailView::default(),
            timeline: timeline::TimelineView::default(),
            scheduler: scheduler::SchedulerView::default(),
            wasm: wasm::WasmView::default(),
            logs: logs::LogsView::default(),
            warnings: warnings::WarningsView::default(),
            resources: resources::ResourcesView::default(),
            kernel_log: None,
            metrics: None,
            transport: None,
            symbols: Symbolizer::default(),
        }
    }

    /// The state the views show: the live one, or the one frozen by a pause.
    #[must_use]
    pub fn state(&self) -> &State {
        self.frozen.as_ref().unwrap_or(&self.session.state)
    }

    /// The display is paused (ingest goes on).
    #[must_use]
    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Pauses or resumes the display.
    pub fn toggle_pause(&mut self) {
        self.frozen = match self.frozen {
            Some(_) => None,
            None => Some(self.session.state.clone()),
        };
    }

    /// Applies one ingest event.
    pub fn ingest(&mut self, ev: IngestEvent) {
        self.session.handle(ev);
    }

    pub(crate) fn captures_input(&self) -> bool {
        match self.view {
            View::Tasks => self.tasks.editing,
            View::Logs => self.logs.editing,
            _ => false,
        }
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.help {
            if matches!(key.code, KeyCode::Char('?' | 'q') | KeyCode::Esc) {
                self.help = false;
            }
            return;
        }
        if !self.captures_input() {
            match key.code {
                KeyCode::Char('q') => {
                    self.quit = true;
                    return;
                }
                KeyCode::Char('?') => {
                    self.help = true;
                    return;
                }
                KeyCode::Char(' ') => {
                    self.toggle_pause();
                    return;
                }
                KeyCode::Tab => {
                    self.view = View::ALL[(self.view.index() + 1) % View::ALL.len()];
                    return;
                }
                KeyCode::BackTab => {
                    self.view = View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()];
                    return;
                }
                KeyCode::Char(c @ '1'..='8') => {
                    self.view = View::ALL[usize::from(c as u8 - b'1')];
                    return;
                }
                _ => {}
            }
        }
        let state = self.frozen.as_ref().unwrap_or(&self.session.state);
        let action = match self.view {
            View::Tasks => self.tasks.on_key(key, state),
            View::TaskDetail => self.detail.on_key(key),
            View::Timeline => self.timeline.on_key(key, state),
            View::Scheduler => self.scheduler.on_key(key),
            View::Wasm => self.wasm.on_key(key, state),
            View::Logs => self.logs.on_key(key),
            View::Warnings => self.warnings.on_key(key, state),
            View::Resources => self.resources.on_key(key, state),
        };
        match action {
            Action::None => {}
            Action::OpenTask(id) => {
                self.detail.task = Some(id);
                self.view = View::TaskDetail;
            }
            Action::OpenResource(id) => {
                let state = self.frozen.as_ref().unwrap_or(&self.session.state);
                self.resources.select(state, id);
                self.view = View::Resources;
            }
            Action::Back => self.view = View::Tasks,
        }
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &mut App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, lucid needs at least {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let bar = u16::from(app.transport.is_some());
    let [header, body, scrubber, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(bar),
        Constraint::Length(1),
    ])
    .areas(area);
    let body = match &app.kernel_log {
        Some(log) => {
            let [views, pane] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(body.height / 4 + 2)]).areas(body);
            log.render(f, pane);
            views
        }
        None => body,
    };
    draw_tabs(f, header, app);
    let state = app.frozen.as_ref().unwrap_or(&app.session.state);
    match app.view {
        View::Tasks => app.tasks.render(f, body, state),
        View::TaskDetail => app.detail.render(f, body, state, &app.symbols),
        View::Timeline => app.timeline.render(f, body, state),
        View::Scheduler => app.scheduler.render(f, body, state),
        View::Wasm => app.wasm.render(f, body, state),
        View::Logs => app.logs.render(f, body, state),
        View::Warnings => app.warnings.render(f, body, state, &app.symbols),
        View::Resources => app.resources.render(f, body, state),
    }
    match &app.transport {
        Some(t) => t.render(f, scrubber, status),
        None => draw_status(f, status, app),
    }
    if app.help {
        help::render(f, body, app.view, app.transport.is_some());
    }
}

fn draw_tabs(f: &mut Frame<'_>, area: Rect, app: &App) {
    let warnings: u64 = app.state().warning_counts.values().sum();
    let mut spans = vec![Span::styled(" lucid ", Style::new().bold().reversed())];
    for (i, v) in View::ALL.iter().enumerate() {
        let label = if *v == View::Warnings && warnings > 0 {
            format!(" {} {} ({warnings}) ", i + 1, v.title())
        } else {
            format!(" {} {} ", i + 1, v.title())
        };
        let style = if *v == app.view {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else if *v == View::Warnings && warnings > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    f.render_widget(Line::from(spans), area);
}

fn draw_status(f: &mut Frame<'_>, area: Rect, app: &App) {
    let s = app.state();
    let link_style = match app.session.link {
        Link::Connected => Style::new().fg(Color::Green),
        Link::Connecting => Style::new().fg(Color::Yellow),
        Link::Disconnected { .. } => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    let mut spans = vec![Span::styled(app.session.link_status(), link_style)];
    if let Some(p) = app.session.stream_problem() {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(p, Style::new().fg(Color::Red)));
    }
    spans.push(Span::raw(format!(
        " │ {} events, {} tasks, {:.3}s",
        s.events,
        s.tasks.len(),
        s.duration_s()
    )));
    if app.paused() {
        spans.push(Span::styled(" │ PAUSED", Style::new().fg(Color::Yellow).bold()));
    }
    spans.push(Span::raw(" │ ? help"));
    f.render_widget(Paragraph::new(Line::from(spans)).style(Style::new().reversed()), area);
}

/// Runs the event loop until the user quits. Each turn folds ingested chunks for at
/// most [`INGEST_BUDGET`], draws at most every [`FRAME`] (or at once after a key), and
/// waits for a key: not at all while chunks are queued, else up to [`TICK`].
pub fn run(terminal: &mut DefaultTerminal, app: &mut App, ingest: &Ingest) -> io::Result<()> {
    let mut ingest_ended = false;
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut changed = true;
    while !app.quit {
        let start = Instant::now();
        let mut backlog = false;
        while !ingest_ended {
            if start.elapsed() >= INGEST_BUDGET {
                backlog = true;
                break;
            }
            match ingest.try_recv() {
                Ok(ev) => {
                    app.ingest(ev);
                    dirty = true;
                    changed = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => ingest_ended = true,
            }
        }
        // With the link idle, the last frames the merge holds for ordering are shown.
        if !backlog && app.session.tick(crate::source::now_ns()) {
            dirty = true;
            changed = true;
        }
        // Live data even while the display is paused.
        if changed && let Some(m) = &app.metrics {
            changed = !m.publish_if_due(&app.session.state);
        }
        if let Some(log) = app.kernel_log.as_mut()
            && log.poll()
        {
            dirty = true;
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            terminal.draw(|f| draw(f, app))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let wait = if backlog { Duration::ZERO } else { TICK };
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) => app.on_key(key),
                // Redraw at once: the view layout depends on the size.
                Event::Resize(..) => {}
                _ => continue,
            }
            dirty = true;
            last_draw = None;
        } else if !backlog {
            // Idle: redraw now and then so durations of running tasks advance with
            // new events and the status bar stays current.
            dirty = true;
        }
    }
    Ok(())
}

/// Ticks as a human-readable duration in the state's time base.
/// Sampled pcs with their counts, summed by the function each lies in (guest code
/// from the state's wasm code map, kernel code from `symbols`), most sampled first.
pub(crate) fn sampled_functions(
    state: &State,
    symbols: &Symbolizer,
    pcs: impl IntoIterator<Item = (u64, u64)>,
) -> Vec<(String, u64)> {
    let resolver = crate::symbols::Resolver {
        kernel: symbols,
        wasm: &state.wasm_code,
    };
    let mut by: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (pc, n) in pcs {
        *by.entry(resolver.name(pc)).or_default() += n;
    }
    let mut v: Vec<(String, u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// What a warning's samples say the task was doing (`" — doing: f ×3, g ×1"`), or
/// nothing for a warning without samples.
pub(crate) fn doing(state: &State, symbols: &Symbolizer, w: &crate::state::Warning) -> String {
    if w.samples.is_empty() {
        return String::new();
    }
    let functions = sampled_functions(state, symbols, w.samples.iter().map(|&(pc, n)| (pc, u64::from(n))));
    let list: Vec<String> = functions.iter().take(3).map(|(f, n)| format!("{f} ×{n}")).collect();
    format!(" — doing: {}", list.join(", "))
}

pub(crate) fn dur(state: &State, ticks: Ticks) -> String {
    crate::fmt::duration_ns(state.clock().ns(ticks))
}

/// Trace time relative to the first event, as a duration.
pub(crate) fn at(state: &State, ts: Ticks) -> String {
    let start = state.ts_range.map_or(Ticks::ZERO, |(a, _)| a);
    format!("+{}", dur(state, ts.saturating_sub(start)))
}

/// A busy share as one cell: `·` idle, then `░▒▓█` by quarters.
pub(crate) fn shade(share: f64) -> char {
    const SHADES: [char; 4] = ['░', '▒', '▓', '█'];
    if share <= 0.0 {
        '·'
    } else {
        SHADES[((share * 4.0).ceil() as usize).clamp(1, 4) - 1]
    }
}

/// A one-line text sparkline of values in 0.0..=1.0.
pub(crate) fn spark(values: &[f64]) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| BARS[((v.clamp(0.0, 1.0) * 8.0).round() as usize).min(8)])
        .collect()
}

/// Moves a selection index by `delta` within `0..len`.
pub(crate) fn step(i: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    i.saturating_add_signed(delta).min(len - 1)
}
