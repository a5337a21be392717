//! The `?` overlay: global keys and the current view's keys.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::View;

const GLOBAL: &[(&str, &str)] = &[
    ("1-8, Tab", "switch view (Shift-Tab back)"),
    ("space", "pause / resume the display (ingest goes on)"),
    ("?", "this help; Esc or ? closes it"),
    ("q, Ctrl-C", "quit"),
];

/// Transport keys of `lucid replay` (space plays instead of freezing the display).
pub const REPLAY: &[(&str, &str)] = &[
    ("space", "play / pause"),
    ("[ / ]", "slower / faster (0.1× … 100×, max)"),
    ("< / >", "one item back / forward ({ / } a thousand)"),
    ("n / N", "next / previous warning"),
    (":", "jump to a time (1.5s, 250ms, 40us; Enter)"),
    ("0 / $", "start / end"),
];

/// Keys of one view.
#[must_use]
pub fn view_keys(view: View) -> &'static [(&'static str, &'static str)] {
    match view {
        View::Tasks => &[
            ("↑/↓ j/k", "select a task (PgUp/PgDn, g/G)"),
            ("←/→ h/l", "sort column"),
            ("i", "invert the sort order"),
            ("/", "filter by text (Enter keeps, Esc clears)"),
            ("f", "follow the newest task (a move stops it)"),
            ("Enter", "open the task"),
            ("w", "show the resource it waits on"),
        ],
        View::TaskDetail => &[("Esc, b", "back to the task list")],
        View::Timeline => &[
            ("+ / -", "zoom in / out"),
            ("←/→ h/l", "pan (stops following)"),
            ("f, End", "follow the newest events"),
            (", / .", "move the cursor"),
            ("↑/↓ j/k", "select a lane"),
            ("t", "lanes per CPU or per task (task lanes: ─ waiting on a resource)"),
            ("Enter", "open the task under the cursor"),
        ],
        View::Scheduler => &[("s", "cycle the hotspot ranking")],
        View::Wasm => &[("↑/↓ j/k", "select an instance"), ("Enter", "open its task")],
        View::Logs => &[
            ("l", "cycle the minimum level"),
            ("/", "filter by target (Enter keeps, Esc clears)"),
            ("↑/↓ j/k", "scroll; End follows"),
        ],
        View::Warnings => &[("↑/↓ j/k", "select a warning"), ("Enter", "open its task")],
        View::Resources => &[
            ("↑/↓ j/k", "select a resource"),
            ("Enter", "list the tasks waiting on it"),
        ],
    }
}

/// Draws the overlay centred in `area`, with the transport keys when `replay`.
pub fn render(f: &mut Frame<'_>, area: Rect, view: View, replay: bool) {
    let mut lines = vec![Line::from(Span::styled(
        "Global",
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    let row = |(k, v): &(&str, &str)| Line::from(format!("  {k:<12} {v}"));
    lines.extend(GLOBAL.iter().filter(|(k, _)| !replay || *k != "space").map(row));
    if replay {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "Replay",
            Style::new().add_modifier(Modifier::BOLD),
        )));
        lines.extend(REPLAY.iter().map(row));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("{} view", view.title()),
        Style::new().add_modifier(Modifier::BOLD),
    )));
    lines.extend(view_keys(view).iter().map(row));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let [popup] = Layout::horizontal([Constraint::Length(64)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(popup);
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Keys ")), popup);
}
