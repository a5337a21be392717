//! The kernel's own console output (QEMU's COM1, written to a file by `cargo xtask
//! run`), tailed into a pane under the views so boot messages and panics stay in
//! sight while the trace views update.

use std::{
    collections::VecDeque,
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
};

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::Line,
    widgets::{Block, Paragraph},
};

/// Lines kept in memory.
const KEEP: usize = 1000;

/// A file followed like `tail -f`.
#[derive(Debug)]
pub struct KernelLog {
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    partial: Vec<u8>,
    lines: VecDeque<String>,
}

impl KernelLog {
    /// Follows `path` (which may not exist yet).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            pos: 0,
            partial: Vec::new(),
            lines: VecDeque::new(),
        }
    }

    /// Reads what was appended since the last call. Returns whether lines arrived.
    pub fn poll(&mut self) -> bool {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else { return false };
        // A file that shrank was started anew (QEMU restarted): read it from the top.
        if file.metadata().is_ok_and(|m| m.len() < self.pos) {
            self.pos = 0;
            self.partial.clear();
        }
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return false;
        }
        let mut buf = Vec::new();
        let Ok(n) = file.take(1 << 20).read_to_end(&mut buf) else {
            return false;
        };
        self.pos += n as u64;
        let mut got = false;
        for &b in &buf {
            match b {
                b'\n' => {
                    let line = String::from_utf8_lossy(&self.partial)
                        .trim_end_matches('\r')
                        .to_string();
                    self.partial.clear();
                    if self.lines.len() == KEEP {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(line);
                    got = true;
                }
                _ if self.partial.len() < 4096 => self.partial.push(b),
                _ => {}
            }
        }
        got
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// Draws the newest lines that fit.
    pub fn render(&self, f: &mut Frame<'_>, area: Rect) {
        let rows = area.height.saturating_sub(1) as usize;
        let mut shown: Vec<Line<'_>> = self
            .lines()
            .rev()
            .take(rows)
            .map(|l| {
                let style = if l.contains("PANIC") || l.contains("EXCEPTION") || l.contains("ERROR") {
                    Style::new().fg(Color::Red)
                } else if l.contains("WARN") {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                Line::styled(l.to_string(), style)
            })
            .collect();
        shown.reverse();
        let title = format!(" kernel console (COM1: {}) ", self.path.display());
        f.render_widget(Paragraph::new(shown).block(Block::bordered().title(title)), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_appended_lines_and_restarts_when_the_file_shrinks() {
        let dir = std::env::temp_dir().join(format!("lucid-kernel-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("com1.log");
        let mut log = KernelLog::new(path.clone());
        assert!(!log.poll(), "no file yet");
        let mut f = File::create(&path).unwrap();
        write!(f, "boot\r\nhalf").unwrap();
        assert!(log.poll());
        assert_eq!(log.lines().collect::<Vec<_>>(), ["boot"]);
        writeln!(f, " line").unwrap();
        assert!(log.poll());
        assert_eq!(log.lines().collect::<Vec<_>>(), ["boot", "half line"]);
        drop(f);
        std::fs::write(&path, "again\n").unwrap();
        assert!(log.poll());
        assert_eq!(log.lines().last(), Some("again"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
