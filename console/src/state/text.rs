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

/// Strings kept at most before those no task holds any more are let go.
const MAX_INTERNED: usize = 4096;

/// Hands out one [`Text`] per distinct string. A cache: not serialised, not part of
/// the state's equality or debug output.
#[derive(Clone, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>, FxBuildHasher>,
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
        if self.set.len() >= MAX_INTERNED {
            self.set.retain(|a| Arc::strong_count(a) > 1);
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
