//! Shared immutable strings for what many tasks repeat (names, spawn locations), and
//! the interner that hands them out.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string shared by every task that has it: thousands of tasks spawned
/// at one place hold one copy. The empty string allocates nothing.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Option<Arc<str>>);

impl Text {
    /// The string.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::from(s)))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.as_str().to_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from(String::deserialize(d)?))
    }
}

/// Strings kept before those no task holds any more are first let go; after each
/// sweep the next one waits until the set has doubled, so interning stays linear in
/// time however many distinct strings tasks hold.
const MAX_INTERNED: usize = 4096;

/// Hands out one [`Text`] per distinct string. A cache: not serialised, not part of
/// the state's equality or debug output.
#[derive(Clone, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>, FxBuildHasher>,
    /// Set size at which the next sweep runs.
    sweep_at: usize,
    /// Sweeps so far.
    sweeps: u64,
    /// The latest location asked for: (file, line, column) and its text.
    last_location: Option<(Arc<str>, u32, u32, Text)>,
    buf: String,
}

impl PartialEq for Interner {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl Interner {
    /// The text of `s`.
    pub(crate) fn text(&mut self, s: &str) -> Text {
        if s.is_empty() {
            return Text(None);
        }
        if let Some(a) = self.set.get(s) {
            return Text(Some(Arc::clone(a)));
        }
        if self.set.len() >= self.sweep_at.max(MAX_INTERNED) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.sweep_at = self.set.len() * 2;
            self.sweeps += 1;
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&a));
        Text(Some(a))
    }

    /// The text `file:line:column`.
    pub(crate) fn location(&mut self, file: &str, line: u32, column: u32) -> Text {
        if let Some((f, l, c, t)) = &self.last_location
            && (*l, *c) == (line, column)
            && **f == *file
        {
            return t.clone();
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let _ = write!(buf, "{file}:{line}:{column}");
        let t = self.text(&buf);
        self.buf = buf;
        let f = self.text(file).0.unwrap_or_else(|| Arc::from(""));
        self.last_location = Some((f, line, column, t.clone()));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_strings_all_held_are_interned_in_linear_time() {
        let mut interner = Interner::default();
        let held: Vec<Text> = (0..200_000).map(|i| interner.text(&format!("task-{i}"))).collect();
        // Each sweep walks the whole set; sweeping on every insert past the bound
        // made this quadratic (196k sweeps here).
        assert!(interner.sweeps <= 8, "{} sweeps", interner.sweeps);
        assert_eq!(interner.set.len(), 200_000);
        assert_eq!(held[123_456], "task-123456");
    }

    #[test]
    fn strings_no_task_holds_are_let_go() {
        let mut interner = Interner::default();
        for i in 0..3 * MAX_INTERNED {
            let _dropped = interner.text(&format!("gone-{i}"));
        }
        assert!(interner.set.len() <= MAX_INTERNED, "{} kept", interner.set.len());
        let a = interner.text("same");
        let b = interner.text("same");
        assert!(Arc::ptr_eq(a.0.as_ref().expect("text"), b.0.as_ref().expect("text")));
    }
}
