//! Guest text on its way into the kernel log: one line, nothing that a terminal
//! or a reader could take for something else.

use core::fmt;

/// Displays guest text with control characters (newlines included), Unicode line
/// and paragraph separators, bidirectional overrides and backslashes escaped
/// (`\n`, `\u{1b}`, `\\`), so it is always one line, cannot move the cursor or
/// recolour a terminal, and an escape in the output is never the guest's own text.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

/// Characters [`Escaped`] writes as escapes.
#[must_use]
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\\' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// The longest prefix of `bytes` of at most `max` bytes that is valid UTF-8 when
/// the whole of `bytes[..max]` is (a cut through a character drops that
/// character); `None` if the bytes up to `max` are not UTF-8.
#[must_use]
pub fn utf8_prefix(bytes: &[u8], max: usize) -> Option<&str> {
    let cut = &bytes[..bytes.len().min(max)];
    match core::str::from_utf8(cut) {
        Ok(s) => Some(s),
        // An incomplete character at the very end of a cut message.
        Err(e) if e.error_len().is_none() && cut.len() < bytes.len() => {
            core::str::from_utf8(&cut[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_make_one_inert_line() {
        let forged = "ok\n[   0.000001] ERROR kernel: panic\r\x1b[2J\t\\n\u{202e}end\u{7f}";
        let out = Escaped(forged).to_string();
        assert_eq!(
            out,
            "ok\\n[   0.000001] ERROR kernel: panic\\r\\u{1b}[2J\\t\\\\n\\u{202e}end\\u{7f}"
        );
        assert!(!out.chars().any(needs_escape_but_backslash), "{out}");
        assert_eq!(Escaped("plain text, ünïcode").to_string(), "plain text, ünïcode");
    }

    fn needs_escape_but_backslash(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }

    #[test]
    fn utf8_prefix_cuts_between_characters() {
        assert_eq!(utf8_prefix(b"hello", 3), Some("hel"));
        assert_eq!(utf8_prefix(b"hello", 10), Some("hello"));
        // "é" is two bytes: a cut after its first byte drops it.
        assert_eq!(utf8_prefix("aé".as_bytes(), 2), Some("a"));
        assert_eq!(utf8_prefix(b"a\xffb", 3), None);
        // A message that ends in half a character is not UTF-8.
        assert_eq!(utf8_prefix(b"a\xc3", 10), None);
    }
}
