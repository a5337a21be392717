//! `lucid replay` in the terminal: the live views over a [`Replay`]'s state, with
//! transport controls, a scrubber and a status line showing the position.

use std::io;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::{DefaultTerminal, Frame};

use super::{App, draw};
use crate::fmt::{duration_ns, parse_duration};
use crate::replay::transport::{Step, Transport};
use crate::replay::{Replay, ReplayError};

/// Time between frames while playing.
const FRAME: Duration = Duration::from_millis(33);
/// Items one `{`/`}` moves.
const BIG_STEP: i64 = 1000;

/// What the bottom two lines show.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportBar {
    /// Cursor position in the recording, 0.0..=1.0.
    pub fraction: f64,
    /// Position, speed and counts.
    pub status: String,
    /// A problem or the result of the last command.
    pub message: Option<String>,
}

impl TransportBar {
    /// Draws the scrubber into `scrubber` and the status line into `status`.
    pub fn render(&self, f: &mut Frame<'_>, scrubber: Rect, status: Rect) {
        let w = usize::from(scrubber.width);
        let at =
            ((self.fraction.clamp(0.0, 1.0) * w.saturating_sub(1) as f64).round() as usize).min(w.saturating_sub(1));
        let line = Line::from(vec![
            Span::styled("━".repeat(at), Style::new().fg(Color::Cyan)),
            Span::styled("●", Style::new().fg(Color::Cyan).bold()),
            Span::styled("─".repeat(w.saturating_sub(at + 1)), Style::new().fg(Color::DarkGray)),
        ]);
        f.render_widget(Paragraph::new(line), scrubber);
        let mut spans = vec![Span::raw(self.status.clone())];
        if let Some(m) = &self.message {
            spans.push(Span::raw(" │ "));
            spans.push(Span::styled(m.clone(), Style::new().fg(Color::Yellow)));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(Style::new().reversed()), status);
    }
}

/// A replay and its controls.
#[derive(Debug)]
pub struct ReplayControls {
    /// The recording at the cursor.
    pub replay: Replay,
    /// Play state and speed.
    pub transport: Transport,
    /// Text typed after `:` (a time to jump to), while typing.
    pub prompt: Option<String>,
    /// The result of the last command, or a problem.
    pub message: Option<String>,
    /// Trace time the playback has reached (nanoseconds after the first event): ahead
    /// of the cursor's latest event while the trace is quiet, so playing crosses gaps
    /// in real time instead of stalling at the last event.
    playhead_ns: u64,
}

impl ReplayControls {
    /// Controls over `replay`, paused at its cursor.
    #[must_use]
    pub fn new(mut replay: Replay) -> Self {
        let notice = replay.take_notice();
        let message = replay
            .damage()
            .map(|d| format!("replay ends at damage: {}", d.message))
            .or(notice);
        let playhead_ns = replay.time_ns();
        Self {
            replay,
            transport: Transport::default(),
            prompt: None,
            message,
            playhead_ns,
        }
    }

    /// Handles a transport key; false if the key is not one (the views get it).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        let before = self.replay.position();
        let handled = self.handle_key(key);
        if self.replay.position() != before {
            // A jump or a step moves the playhead to the cursor.
            self.playhead_ns = self.replay.time_ns();
        }
        handled
    }

    fn handle_key(&mut self, key: KeyEvent) -> bool {
        if let Some(text) = &mut self.prompt {
            match key.code {
                KeyCode::Enter => {
                    let text = std::mem::take(text);
                    self.prompt = None;
                    match parse_duration(&text) {
                        Ok(d) => {
                            let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                            let r = self.replay.seek_time(ns);
                            self.report(r, format!("at +{}", duration_ns(ns)));
                        }
                        Err(e) => self.message = Some(e),
                    }
                }
                KeyCode::Esc => self.prompt = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return true;
        }
        match key.code {
            KeyCode::Char(' ') => self.transport.toggle(),
            KeyCode::Char(']') => self.transport.faster(),
            KeyCode::Char('[') => self.transport.slower(),
            KeyCode::Char('>') => self.step(1),
            KeyCode::Char('<') => self.step(-1),
            KeyCode::Char('}') => self.step(BIG_STEP),
            KeyCode::Char('{') => self.step(-BIG_STEP),
            KeyCode::Char('n') => {
                let r = self.replay.next_warning();
                self.found(r, "no later warning");
            }
            KeyCode::Char('N') => {
                let r = self.replay.prev_warning();
                self.found(r, "no earlier warning");
            }
            KeyCode::Char('0') => {
                let r = self.replay.seek(0);
                self.report(r, "at the start".into());
            }
            KeyCode::Char('$') => {
                let r = self.replay.seek(self.replay.len());
                self.report(r, "at the end".into());
            }
            KeyCode::Char(':') => {
                self.transport.playing = false;
                self.prompt = Some(String::new());
            }
            _ => return false,
        }
        true
    }

    fn step(&mut self, delta: i64) {
        self.transport.playing = false;
        let r = self.replay.step(delta);
        self.report(r, String::new());
    }

    fn found(&mut self, r: Result<bool, ReplayError>, none: &str) {
        self.transport.playing = false;
        match r {
            Ok(true) => {
                self.message = self
                    .replay
                    .take_notice()
                    .or_else(|| self.replay.state().recent_warnings.back().map(|w| w.to_string()));
            }
            Ok(false) => self.message = Some(none.into()),
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    fn report(&mut self, r: Result<(), ReplayError>, ok: String) {
        self.message = match r {
            Ok(()) => self.replay.take_notice().or((!ok.is_empty()).then_some(ok)),
            Err(e) => Some(e.to_string()),
        };
    }

    /// Moves the cursor for `wall` of real time; true if it moved. Playing stops at
    /// the end.
    pub fn tick(&mut self, wall: Duration) -> bool {
        let before = self.replay.position();
        match self.transport.tick(wall) {
            Step::None => return false,
            Step::Items(n) => {
                self.replay.play_items(n);
                self.playhead_ns = self.replay.time_ns();
            }
            Step::TraceNs(ns) => {
                self.playhead_ns = self.playhead_ns.max(self.replay.time_ns()).saturating_add(ns);
                let r = self.replay.seek_time(self.playhead_ns);
                self.report(r, String::new());
            }
        }
        if self.replay.position() >= self.replay.len() {
            self.transport.playing = false;
        }
        self.replay.position() != before
    }

    /// The bottom lines.
    #[must_use]
    pub fn bar(&self) -> TransportBar {
        let r = &self.replay;
        let total = r.len();
        let play = if self.transport.playing { "▶" } else { "❚❚" };
        let warnings = r.index().summary().warnings.len();
        let passed = r.index().summary().warnings.partition_point(|&w| w <= r.position());
        let mut status = format!(
            " {play} {} │ +{} / {} │ item {}/{total} │ warning {passed}/{warnings} │ {} tasks",
            self.transport.speed_label(),
            duration_ns(self.playhead_ns.max(r.time_ns())),
            duration_ns(r.duration_ns()),
            r.position(),
            r.state().tasks.len(),
        );
        match &self.prompt {
            Some(p) => status.push_str(&format!(" │ jump to time: {p}▏")),
            None => status.push_str(" │ space ▶ [] speed <> step nN warning : time ? help"),
        }
        TransportBar {
            fraction: if total == 0 {
                0.0
            } else {
                r.position() as f64 / total as f64
            },
            status,
            message: self.message.clone().or_else(|| match r.keyframe_failures() {
                (0, _) => None,
                (n, why) => Some(format!(
                    "{n} index keyframe(s) did not restore, seeks played from the start: {}",
                    why.unwrap_or("?")
                )),
            }),
        }
    }

    /// Shows the cursor's state and the bar in `app` (the views draw from the app's
    /// own copy, so a paused display stays as it was).
    pub fn sync(&self, app: &mut App) {
        app.session.state.clone_from(self.replay.state());
        app.transport = Some(self.bar());
    }
}

/// Runs the replay UI until the user quits.
pub fn run(terminal: &mut DefaultTerminal, app: &mut App, controls: &mut ReplayControls) -> io::Result<()> {
    controls.sync(app);
    if let Some(m) = &app.metrics {
        m.publish(&app.session.state);
    }
    let mut pending_metrics = false;
    let mut last = Instant::now();
    while !app.quit {
        terminal.draw(|f| draw(f, app))?;
        let wait = if controls.transport.playing {
            FRAME.saturating_sub(last.elapsed())
        } else {
            Duration::from_millis(250)
        };
        let mut changed = false;
        if event::poll(wait)?
            && let Event::Key(key) = event::read()?
        {
            if !app.help && !app.captures_input() && controls.on_key(key) {
                changed = true;
            } else {
                app.on_key(key);
            }
        }
        let now = Instant::now();
        changed |= controls.tick(now - last);
        last = now;
        if changed {
            controls.sync(app);
            // The metrics follow the cursor; a moved cursor that is not yet
            // published is published on a later turn.
            pending_metrics = true;
        }
        if pending_metrics && let Some(m) = &app.metrics {
            pending_metrics = !m.publish_if_due(&app.session.state);
        }
    }
    Ok(())
}
