//! Small maps of the per-event path, held as arrays or sorted vectors but seen (in
//! equality, debug output and serialisation) as the `BTreeMap`s they stand for.

use std::collections::BTreeMap;
use std::fmt;

use lucid_protocol::{MessageKind, StreamId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KINDS: usize = MessageKind::ALL.len();

/// Events by kind: a counter per [`MessageKind`]; kinds not seen count as absent.
#[derive(Clone, PartialEq, Eq)]
pub struct KindCounts([u64; KINDS]);

impl Default for KindCounts {
    fn default() -> Self {
        Self([0; KINDS])
    }
}

impl KindCounts {
    /// Events of `kind`, if any.
    #[must_use]
    pub fn get(&self, kind: &MessageKind) -> Option<&u64> {
        self.0.get(*kind as usize).filter(|n| **n > 0)
    }

    /// (kind, events) of the kinds seen, in kind order.
    pub fn iter(&self) -> impl Iterator<Item = (&MessageKind, &u64)> + '_ {
        MessageKind::ALL.iter().zip(&self.0).filter(|(_, n)| **n > 0)
    }

    /// Kinds seen.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.iter().filter(|n| **n > 0).count()
    }

    /// Whether no event was counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one event of `kind`.
    #[inline]
    pub fn add(&mut self, kind: MessageKind) {
        self.0[kind as usize] += 1;
    }
}

impl fmt::Debug for KindCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for KindCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, n) in self.iter() {
            m.serialize_entry(k, n)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for KindCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut c = Self::default();
        for (k, n) in BTreeMap::<MessageKind, u64>::deserialize(d)? {
            c.0[k as usize] = n;
        }
        Ok(c)
    }
}

/// The last timestamp per stream, sorted by stream (a handful of streams), with the
/// position of the stream asked for last (consecutive events mostly share one).
#[derive(Clone, Default)]
pub(crate) struct LastTs(Vec<(StreamId, u64)>, usize);

impl PartialEq for LastTs {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for LastTs {}

impl LastTs {
    /// Sets `stream`'s timestamp to `ts`; the previous one, if any.
    #[inline]
    pub(crate) fn replace(&mut self, stream: StreamId, ts: u64) -> Option<u64> {
        if let Some((s, t)) = self.0.get_mut(self.1)
            && *s == stream
        {
            return Some(std::mem::replace(t, ts));
        }
        match self.0.binary_search_by(|(s, _)| s.cmp(&stream)) {
            Ok(i) => {
                self.1 = i;
                Some(std::mem::replace(&mut self.0[i].1, ts))
            }
            Err(i) => {
                self.0.insert(i, (stream, ts));
                self.1 = i;
                None
            }
        }
    }
}

impl fmt::Debug for LastTs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(s, t)| (s, t))).finish()
    }
}

impl Serialize for LastTs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(s, t)| (s, t)))
    }
}

impl<'de> Deserialize<'de> for LastTs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(
            BTreeMap::<StreamId, u64>::deserialize(d)?.into_iter().collect(),
            0,
        ))
    }
}
